"""`FakeExchange`: an in-process Binance margin venue (REST, WebSocket API, risk stream).

One aiohttp server on a random free port serves:

* REST (``rest_url``): every endpoint of :mod:`binance_margin_async.endpoints`, checked as Binance
  checks them (API key, signature over the exact received bytes for HMAC/Ed25519/RSA keys,
  ``timestamp``/``recvWindow``, parameters), weighted per pool with the real response headers,
  429 + ``Retry-After`` and 418 bans, and backed by the pure :class:`~.ledger.Ledger`;
* the Spot API routes of margin special keys (``/api/v3/order``, order lists, open orders),
  ``/api/v3/ping`` and ``/api/v3/exchangeInfo`` (:mod:`._spot`);
* the WebSocket API (``ws_api_url`` = ``/ws-api/v3``): listen-token subscriptions, events wrapped
  as ``{"subscriptionId": N, "event": {...}}``, pings, ``eventStreamTerminated``; for special
  keys ``session.logon``/``status``/``logout``, signed requests (parameters sorted by name), the
  order methods backed by the ``/api/v3`` routes and ``userDataStream.subscribe[.signature]``;
* the risk stream (``risk_stream_url``; ``/ws/<listenKey>`` and ``/stream?streams=<listenKey>``):
  the ledger's ``USER_LIABILITY_CHANGE``/``MARGIN_LEVEL_STATUS_CHANGE`` events and
  ``listenKeyExpired``.

Public surface: ``add_account``, ``client`` (a :class:`~binance_margin_async.MarginClient`
pointed here), ``deposit``, ``set_price``, ``ledger`` (inspection), ``stats``, ``on_emit`` (a
probe on every event sent), ``server_time_ms`` and the fault switches ``drop_connections``,
``stall``, ``server_shutdown``, ``expire_listen_tokens``, ``expire_listen_keys``, ``fail_next``
(with ``run_deferred``), ``set_clock_skew``, ``send_malformed_frame``.

Answers the fake gives to questions Binance's docs leave open (PROTOCOL.md §9):

* subscribe ``expirationTime`` is in **milliseconds**, like the REST token answer (§9 item 5);
* renewal (§9 item 6): subscribing with a *new* token of an account that is already subscribed on
  the connection extends that subscription **in place**: same ``subscriptionId``, the new token's
  expiration. The *same* token again is ``-2035``. Creating a token does not revoke older ones:
  every token stays usable until its own ``expirationTime`` (so a reconnect may reuse it);
* ``userListenToken`` and the listen-key endpoints need the API key only; a ``timestamp``/
  ``signature`` sent anyway is ignored, not rejected (§9 item 4);
* order-count 429s carry ``Retry-After`` (§9 item 9); order counts are per account (cross and
  isolated together);
* unknown paths answer 404 and wrong methods 405, both with ``{"code": -1020, "msg": ...}``;
  WebSocket API frames that are not JSON get ``-1135``, unknown methods ``-1100``;
* weight headers keep Binance's names (``...-1M``) even when ``window`` is shrunk for tests: the
  fake's "minute" simply lasts ``window`` seconds.

Docs: https://developers.binance.com/docs/margin_trading/general-info
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from ..endpoints import Endpoint, Pool, Security
from ._conn import Connection
from ._keys import Credentials, KeyType, Verifier, make_credentials
from ._limits import BanBook, OrderCounts, WeightBook, retry_after_seconds
from ._loan_groups import LoanGroups
from ._params import (
    REPEATABLE,
    Params,
    Payload,
    check_timestamp,
    illegal,
    mandatory,
    not_required,
    parse_payload,
)
from ._price_index import price_index_handlers
from ._rest import MARGIN, TRADE, Call, Handler, Route, build_routes, ledger_handlers
from ._special import SpecialKeyBook, special_key_handlers
from ._spot import SPOT_ENDPOINTS, spot_handlers
from ._streams import ListenKey, Session, StreamBook, Subscription
from ._wsapi import WS_ROUTES, signature_payload, text_params
from .ledger import Amount, Ledger, LedgerError

if TYPE_CHECKING:
    from ..rest import MarginClient

__all__ = ["ExchangeStats", "FakeExchange"]

log = logging.getLogger(__name__)

#: "Unfilled Order Count" of the order-placing routes that count more than one order (every other
#: one counts 1): Binance counts every order of a list (Margin-Account-New-OCO "an OCO counts as 2
#: orders", New-OTO 2, New-OTOCO 3; the spot pages likewise). The fake's own numbers, not the
#: client's table, so that a client charging the wrong count meets the exchange's -1015.
_UNFILLED_ORDER_COUNTS: Final[Mapping[str, int]] = {
    "/sapi/v1/margin/order/oco": 2,
    "/sapi/v1/margin/order/oto": 2,
    "/sapi/v1/margin/order/otoco": 3,
    "/api/v3/orderList/oco": 2,
    "/api/v3/orderList/oto": 2,
    "/api/v3/orderList/otoco": 3,
}
_API_KEY_RE: Final = re.compile(r"[A-Za-z0-9]{64}")
_JSON_HEADERS: Final = {"Content-Type": "application/json;charset=UTF-8"}
_MAX_TOKEN_VALIDITY_MS: Final = 86_400_000
_CLOSE_TIMEOUT: Final = 2.0
_WEIGHT_HEADERS: Final = {
    Pool.API_IP: "X-MBX-USED-WEIGHT-1M",
    Pool.SAPI_IP: "X-SAPI-USED-IP-WEIGHT-1M",
    Pool.SAPI_UID: "X-SAPI-USED-UID-WEIGHT-1M",
}

_UNKNOWN_ERROR: Final = LedgerError(
    -1000, "An unknown error occurred while processing the request.", 500
)
_INVALID_SIGNATURE: Final = LedgerError(-1022, "Signature for this request is not valid.")
_BAD_KEY_FORMAT: Final = LedgerError(-2014, "API-key format invalid.", 401)
_REJECTED_KEY: Final = LedgerError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
_NOT_A_WEBSOCKET: Final = LedgerError(-1020, "This endpoint only accepts WebSocket connections.")


@dataclass(frozen=True, slots=True)
class ExchangeStats:
    """A snapshot of what the exchange has seen (:attr:`FakeExchange.stats`).

    ``requests`` counts REST requests (every status), ``ws_requests`` WebSocket API requests;
    ``responses_429``/``responses_418`` count rate-limit and ban answers on REST, WS API and WS
    handshakes; ``events`` counts events emitted by type (``"executionReport"``, ...), each once,
    however many connections it went to; ``requests_by_path`` counts REST requests per path.
    """

    requests: int
    ws_requests: int
    responses_429: int
    responses_418: int
    connections_opened: int
    open_connections: int
    events: Mapping[str, int]
    requests_by_path: Mapping[str, int]


@dataclass(slots=True)
class _Account:
    account_id: str
    credentials: Credentials | None  # None for a special key (the fake keeps no secret of it)
    verifier: Verifier
    permissions: frozenset[str]
    scope: str | None = None  # a special key's margin account: "CROSS" or its isolated symbol


@dataclass(slots=True)
class _Failure:
    """One :meth:`FakeExchange.fail_next` entry: the answer given instead of the real one."""

    remaining: int
    error: LedgerError
    execute: bool | Literal["later"]
    disconnect: bool


class _AnswerLost(Exception):
    """Internal: answer a REST request as ``failure`` says instead of with its real answer."""

    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.error.msg)
        self.failure = failure


class _Reply:
    """A REST answer under construction: status, headers, JSON body; or no answer at all."""

    __slots__ = ("body", "dropped", "headers", "status")

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = dict(_JSON_HEADERS)
        self.body: bytes = b"{}"
        self.dropped = False  # close the connection instead of answering

    def error(self, err: LedgerError) -> None:
        self.status = err.status
        self.body = orjson.dumps(err.body())

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)


class _RateLimitedError(Exception):
    """Internal: answer 429 or 418 with ``Retry-After``."""

    def __init__(self, error: LedgerError, until: float) -> None:
        super().__init__(error.msg)
        self.error = error
        self.until = until


#: A WebSocket API method: (session, params, server time ms, frames to send after the answer).
_WsMethod = Callable[[Session, dict[str, Any], int, list[str]], Any]


def _interval_text(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)} DAY"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} MINUTE"
    return f"{seconds:g} SECOND"


class FakeExchange:
    """An in-process Binance margin venue for tests, demos and offline strategy runs.

    Use as an async context manager; it listens on ``host`` (127.0.0.1) at ``port`` (0 = a free
    port) and exposes :attr:`rest_url`, :attr:`ws_api_url` and :attr:`risk_stream_url`::

        async with FakeExchange(seed=1) as ex:
            creds = ex.add_account(margin_balances={"USDT": "10000"})
            ...  # point a client at ex.rest_url / ex.ws_api_url / ex.risk_stream_url
            ex.set_price("BTCUSDT", "60000")

    Limits (Binance defaults; shrink them in tests): ``api_ip_limit`` for ``/api`` + WS API per IP,
    ``sapi_ip_limit``/``sapi_uid_limit`` per SAPI endpoint, all over FIXED windows of ``window``
    seconds aligned to epoch multiples; ``ban_after_429s`` 429s within one window are tolerated,
    the next one becomes a 418 ban of ``ban_duration`` s (doubling per repeat, max 3 days);
    ``order_limit_10s``/``order_limit_1d`` per account; ``ws_connect_limit`` WebSocket connection
    attempts per ``ws_connect_window`` s per IP.

    Streams: ``ws_ping_interval``/``ws_pong_timeout`` (server pings, peer dropped without pong),
    ``connection_lifetime`` (connections closed after it), ``listen_token_validity_default_ms``
    (``userListenToken`` without ``validity``), ``listen_key_validity`` (risk-stream listen keys,
    extended by keepalive), ``expiry_check_interval`` (how often expiries are checked).

    Margin special keys (:mod:`._special`, :mod:`._spot`): created through ``POST
    /sapi/v1/margin/apiKey``, they trade their margin account on ``/api/v3`` and the WebSocket API.
    ``special_key_user_stream`` says how such a key gets its account's events, where Binance's
    margin documents are unconfirmed: ``"subscribe"`` (default, the spot WebSocket API's way:
    ``userDataStream.subscribe`` on a logged-on session, or ``.signature``) or ``"listen_token"``
    (those are refused with ``-2015``; the events come only by the account's listen token).

    ``seed`` makes keys, tokens and listen keys reproducible; ``clock`` (epoch seconds) is the
    exchange's wall clock, injectable for tests.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        # Weight limits
        api_ip_limit: int = 6000,
        sapi_ip_limit: int = 12000,
        sapi_uid_limit: int = 180000,
        window: float = 60.0,
        ban_after_429s: int = 5,
        ban_duration: float = 120.0,
        order_limit_10s: int = 10_000,
        order_limit_1d: int = 200_000,
        ws_connect_limit: int = 300,
        ws_connect_window: float = 300.0,
        # Streams
        ws_ping_interval: float = 20.0,
        ws_pong_timeout: float = 60.0,
        connection_lifetime: float = 86400.0,
        listen_token_validity_default_ms: int = 86_400_000,
        listen_key_validity: float = 3600.0,
        expiry_check_interval: float = 1.0,
        special_key_user_stream: Literal["subscribe", "listen_token"] = "subscribe",
        # Venue
        ledger: Ledger | None = None,
        # Plumbing
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("ws_ping_interval", ws_ping_interval),
            ("ws_pong_timeout", ws_pong_timeout),
            ("connection_lifetime", connection_lifetime),
            ("listen_key_validity", listen_key_validity),
            ("expiry_check_interval", expiry_check_interval),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive")
        if not 0 < listen_token_validity_default_ms <= _MAX_TOKEN_VALIDITY_MS:
            raise ValueError("listen_token_validity_default_ms must be in (0, 86400000]")
        if special_key_user_stream not in ("subscribe", "listen_token"):
            raise ValueError("special_key_user_stream must be 'subscribe' or 'listen_token'")
        self._seed = seed
        self._rng = random.Random(f"binance-margin-async-fake:{seed}")
        self._ledger = ledger if ledger is not None else Ledger(seed=seed)
        self._symbols = frozenset(spec.symbol for spec in self._ledger.symbols())
        self._limits: Final = {
            Pool.API_IP: api_ip_limit,
            Pool.SAPI_IP: sapi_ip_limit,
            Pool.SAPI_UID: sapi_uid_limit,
        }
        self._weights = WeightBook(window)
        self._bans = BanBook(
            window=window, ban_after_429s=ban_after_429s, ban_duration=ban_duration
        )
        self._orders = OrderCounts(limit_10s=order_limit_10s, limit_1d=order_limit_1d)
        self._connects = WeightBook(ws_connect_window)
        self._ws_connect_limit = ws_connect_limit
        self._ping_interval = ws_ping_interval
        self._pong_timeout = ws_pong_timeout
        self._lifetime = connection_lifetime
        self._token_validity_ms = listen_token_validity_default_ms
        self._listen_key_validity = listen_key_validity
        self._expiry_interval = expiry_check_interval
        self._host = host
        self._port = port
        self._clock = clock
        self._skew_ms = 0

        self._accounts: dict[str, _Account] = {}  # by API key
        self._special = SpecialKeyBook(random.Random(f"binance-margin-async-fake:{seed}:special"))
        self._special_user_stream = special_key_user_stream
        self._ws_orders_of: str | None = None  # the account a WS API request counted orders for
        self._book = StreamBook(self._rng)
        self._connections: set[Connection] = set()
        self._failures: dict[tuple[str | None, str], list[_Failure]] = {}
        self._deferred: list[Callable[[], object]] = []  # fail_next(execute="later")
        self._stalled_until = 0.0  # loop time
        self._emit_hooks: list[Callable[[str, Mapping[str, Any], float], object]] = []

        self._requests = 0
        self._ws_requests = 0
        self._responses_429 = 0
        self._responses_418 = 0
        self._connections_opened = 0
        self._events: Counter[str] = Counter()
        self._requests_by_path: Counter[str] = Counter()

        self._loan_groups = LoanGroups(self.server_time_ms)
        self._routes: dict[tuple[str, str], Route] = build_routes(
            {
                **ledger_handlers(self._ledger),
                **spot_handlers(self._ledger, self._published_limits()),
                **special_key_handlers(self._special, self._isolated_scope),
                **price_index_handlers(self._ledger),
                **self._handlers(),
            },
            SPOT_ENDPOINTS,
        )
        self._methods_by_path: dict[str, list[str]] = {}
        for method, path in self._routes:
            self._methods_by_path.setdefault(path, []).append(method)
        self._ws_methods: dict[str, tuple[int | Callable[[dict[str, Any]], int], _WsMethod]] = {
            "userDataStream.subscribe.listenToken": (2, self._ws_subscribe),
            "userDataStream.subscribe": (2, self._ws_subscribe_logon),
            "userDataStream.subscribe.signature": (2, self._ws_subscribe_signature),
            "userDataStream.unsubscribe": (2, self._ws_unsubscribe),
            "session.subscriptions": (2, self._ws_subscriptions),
            "session.logon": (2, self._ws_logon),
            "session.status": (2, self._ws_status),
            "session.logout": (2, self._ws_logout),
            "time": (1, self._ws_time),
            "ping": (1, self._ws_ping),
        }
        for name, route_key in WS_ROUTES.items():
            route = self._routes[route_key]
            self._ws_methods[name] = (self._ws_weight(route), self._ws_route(route))

        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._url_port: int | None = None

    # Lifecycle and URLs

    async def __aenter__(self) -> FakeExchange:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start listening (``async with`` does this)."""
        if self._runner is not None:
            raise RuntimeError("FakeExchange already started")
        app = web.Application(client_max_size=1024**2)
        app.router.add_get("/ws-api/v3", self._serve_ws_api)
        app.router.add_get("/ws/{listen_key}", self._serve_risk_stream)
        app.router.add_get("/stream", self._serve_risk_stream)
        app.router.add_route("*", "/{tail:.*}", self._serve_rest)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_CLOSE_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        self._url_port = runner.addresses[0][1]
        self._spawn(self._background_loop())

    async def close(self) -> None:
        """Close every connection and stop the server (``async with`` does this)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in self._tasks:
            task.cancel()
        self._stalled_until = 0.0  # a stalled writer would hold its close frame back
        for conn in list(self._connections):
            conn.close_soon(WSCloseCode.GOING_AWAY, "exchange shutting down")
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await runner.cleanup()

    @property
    def port(self) -> int:
        """The TCP port the exchange listens on."""
        if self._url_port is None:
            raise RuntimeError("FakeExchange not started: use `async with FakeExchange() as ex`")
        return self._url_port

    @property
    def rest_url(self) -> str:
        """REST base URL, e.g. ``http://127.0.0.1:PORT`` (pass as ``base_url``)."""
        return f"http://{self._host}:{self.port}"

    @property
    def ws_api_url(self) -> str:
        """WebSocket API URL, ``ws://127.0.0.1:PORT/ws-api/v3``."""
        return f"ws://{self._host}:{self.port}/ws-api/v3"

    @property
    def risk_stream_url(self) -> str:
        """Risk stream base URL, ``ws://127.0.0.1:PORT``; streams live at ``/ws/<listenKey>``."""
        return f"ws://{self._host}:{self.port}"

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Time

    def server_time_ms(self) -> int:
        """The exchange's current time in ms (wall clock plus :meth:`set_clock_skew`)."""
        return int(self._clock() * 1000) + self._skew_ms

    # Accounts and market

    @property
    def ledger(self) -> Ledger:
        """The venue's books, for inspection (balances, margin levels, orders).

        Change state through :class:`FakeExchange` methods or the API: events the ledger emits
        are delivered after each request and each :meth:`set_price`.
        """
        return self._ledger

    @property
    def loan_groups(self) -> LoanGroups:
        """The institutional-loan risk units served on ``GET /sapi/v1/margin/loan-groups`` and
        ``GET /sapi/v1/margin/loan-group``; create them with ``loan_groups.add(...)``."""
        return self._loan_groups

    def add_account(
        self,
        balances: Mapping[str, Amount] | None = None,
        *,
        margin_balances: Mapping[str, Amount] | None = None,
        isolated: Mapping[str, Mapping[str, Amount]] | None = None,
        key_type: KeyType = "HMAC",
        permissions: Iterable[str] = (TRADE, MARGIN),
        read_only: bool = False,
    ) -> Credentials:
        """Create an account and return its credentials (keys derived from the seed).

        ``balances`` fund the spot wallet (move them to margin with a ``MAIN_MARGIN`` universal
        transfer), ``margin_balances`` the cross margin wallet directly, ``isolated`` maps a symbol
        to the initial balances of that isolated margin account (which is created). Amounts are
        ``Decimal``, ``int`` or decimal strings.

        ``permissions``: ``"TRADE"`` (orders) and/or ``"MARGIN"`` (borrow, repay, transfers and
        other margin writes); ``read_only=True`` grants neither. A key without the permission an
        endpoint needs gets ``-2015``, as on Binance. ``key_type``: ``"HMAC"`` (returns
        ``api_secret``), ``"ED25519"`` or ``"RSA"`` (return a PKCS#8 PEM ``private_key``).

        Raises ``ValueError`` for an unknown permission, key type, asset or symbol.
        """
        granted = frozenset() if read_only else frozenset(permissions)
        unknown = granted - {TRADE, MARGIN}
        if unknown:
            raise ValueError(f"unknown permissions {sorted(unknown)}; use 'TRADE' and/or 'MARGIN'")
        number = len(self._accounts) + 1
        account_id = f"acct{number}"
        credentials, verifier = make_credentials(self._seed, number, account_id, key_type)
        self._ledger.add_account(
            account_id, spot=balances, cross=margin_balances, isolated=isolated
        )
        account = _Account(account_id, credentials, verifier, granted)
        self._accounts[credentials.api_key] = account
        return credentials

    def client(self, credentials: Credentials, **client_kwargs: Any) -> MarginClient:
        """A :class:`~binance_margin_async.MarginClient` for ``credentials`` pointed at this
        exchange: REST, WebSocket API and risk stream URLs, and the HMAC secret or the Ed25519/RSA
        private key, whichever :meth:`add_account` issued::

            async with ex.client(creds) as client:
                await client.get_account()

        Not entered: use ``async with`` (or call ``close()``). ``client_kwargs`` go to
        ``MarginClient`` unchanged (``limiter=``, ``recv_window=``, ``timeout=``, ``session=``...);
        the URLs are the exchange's, so passing ``base_url`` and the like is a ``TypeError``.
        """
        # Imported here: the client's modules do not need to load for a bare fake exchange.
        from ..rest import MarginClient

        return MarginClient(
            credentials.api_key,
            credentials.api_secret,
            private_key=credentials.private_key,
            base_url=self.rest_url,
            ws_api_url=self.ws_api_url,
            risk_stream_url=self.risk_stream_url,
            **client_kwargs,
        )

    def deposit(self, account_id: str, asset: str, amount: Amount, *, wallet: str = "SPOT") -> None:
        """Credit ``amount`` of ``asset`` from outside (a deposit): ``wallet`` is ``"SPOT"``,
        ``"CROSS"`` or an isolated symbol. A margin wallet's subscribers get ``balanceUpdate`` and
        ``outboundAccountPosition``."""
        self._ledger.deposit(account_id, asset, amount, self.server_time_ms(), wallet=wallet)
        self._pump()

    def set_price(self, symbol: str, price: Amount, *, liquidity: Amount | None = None) -> None:
        """Move the market price of ``symbol``: resting orders that cross fill, stops trigger,
        margin levels move; the resulting events go out on the streams.

        ``liquidity`` caps the base quantity traded at this price until the next call (partial
        fills); ``None`` is unlimited. Raises ``ValueError`` naming the symbol for one the
        exchange does not list, :class:`~.ledger.LedgerError` for a non-positive price.
        """
        listed = [spec.symbol for spec in self._ledger.symbols()]
        if symbol not in listed:
            # A local call, not a request: a plain error, not an HTTP-style -1121.
            raise ValueError(f"unknown symbol {symbol!r}: this fake exchange lists {listed}")
        self._ledger.set_price(symbol, price, self.server_time_ms(), liquidity=liquidity)
        self._pump()

    # Faults

    def set_clock_skew(self, ms: int) -> None:
        """Shift the exchange's clock by ``ms`` (server time = wall clock + ms)."""
        self._skew_ms = int(ms)

    def fail_next(
        self,
        path: str,
        count: int = 1,
        *,
        status: int = 500,
        code: int = -1001,
        msg: str = "Internal error; unable to process your request. Please try again.",
        method: str | None = None,
        execute: bool | Literal["later"] = False,
        disconnect: bool = False,
    ) -> None:
        """Make the next ``count`` calls of ``path`` (any method unless ``method``) fail.

        ``path`` is a REST path (``"/sapi/v1/margin/order"``) or a WebSocket API method name
        (``"userDataStream.subscribe.listenToken"``). The failure applies after rate limiting
        (the call is still weighed). ``execute`` says what becomes of the call itself:

        * ``False`` (default): rejected before anything else, authentication included; nothing
          is executed. The answer is ``status`` with ``{"code": code, "msg": msg}``.
        * ``True``: processed as usual (checks, ledger, events on the streams), and then its
          answer is lost: the client gets the error above instead. The dangerous case behind
          Binance's 5xx, ``-1006`` and ``-1007`` ("execution status unknown"), e.g.
          ``fail_next(path, status=503, code=-1007, msg="Timeout waiting for response from
          backend server. Send status unknown; execution status unknown.", execute=True)``.
        * ``"later"``: checked as usual and answered with the error, but held: it takes effect
          (ledger, events) only when :meth:`run_deferred` is called, like a backend that executes
          a request after the gateway gave up on it. Until then a query does not find it.

        ``disconnect=True`` sends no answer at all: the request's HTTP connection is closed (the
        WebSocket aborted for a WS API method), so the client sees a network error;
        ``status``/``code``/``msg`` are then unused. With ``execute`` it is the executed request
        whose answer never arrives.

        Failures queue per ``(method, path)``; method-specific ones are used before any-method
        ones. Raises ``ValueError`` for ``count < 1`` or an unknown ``execute``.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        if execute not in (False, True, "later"):
            raise ValueError("execute must be False, True or 'later'")
        key = (method.upper() if method else None, path)
        failure = _Failure(count, LedgerError(code, msg, status), execute, disconnect)
        self._failures.setdefault(key, []).append(failure)

    def run_deferred(self) -> int:
        """Execute the calls held by ``fail_next(..., execute="later")`` now, in arrival order.

        Each takes effect as if it had been executed normally (ledger state, events on the
        streams); one the ledger now rejects (funds moved meanwhile...) has no effect. Returns
        how many were held.
        """
        held, self._deferred = self._deferred, []
        for execute in held:
            execute()
        return len(held)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for key in ((method, path), (None, path)):
            queue = self._failures.get(key)
            if queue:
                failure = queue[0]
                failure.remaining -= 1
                if failure.remaining == 0:
                    queue.pop(0)
                return failure
        return None

    def _execute_unanswered(self, failure: _Failure, execute: Callable[[], object]) -> None:
        """Run the call whose answer ``failure`` replaces: now, held for :meth:`run_deferred`,
        or not at all."""
        if failure.execute == "later":
            self._deferred.append(functools.partial(self._execute_quietly, execute))
        elif failure.execute:
            self._execute_quietly(execute)

    @staticmethod
    def _execute_quietly(execute: Callable[[], object]) -> None:
        try:
            execute()
        except LedgerError as exc:
            # Nobody waits for this answer any more; a rejection simply has no effect.
            log.info("fake exchange: a call whose answer was lost was rejected: %s", exc)

    def drop_connections(self) -> None:
        """Abort every WebSocket connection: TCP reset, no close frame (a network failure)."""
        for conn in list(self._connections):
            conn.abort()

    def stall(self, seconds: float) -> None:
        """Freeze every WebSocket for ``seconds``: no frames (responses, events), no pings, no
        pongs. Frames produced meanwhile are delivered afterwards if the peer is still there."""
        self._stalled_until = asyncio.get_running_loop().time() + seconds

    def server_shutdown(self, *, grace: float = 1.0) -> None:
        """Send ``{"event": {"e": "serverShutdown", "E": ...}}`` on every WebSocket API
        connection, then close them after ``grace`` seconds."""
        event = {"e": "serverShutdown", "E": self.server_time_ms()}
        self._count_event(event)
        frame = orjson.dumps({"event": event}).decode()
        conns = [conn for conn in self._connections if conn.kind == "ws-api"]
        for conn in conns:
            conn.send(frame)
        self._spawn(self._close_later(conns, grace))

    async def _close_later(self, conns: list[Connection], delay: float) -> None:
        await asyncio.sleep(delay)
        for conn in conns:
            conn.close_soon(WSCloseCode.GOING_AWAY, "server shutdown")

    def expire_listen_tokens(self) -> None:
        """Expire every listen token and subscription now (``eventStreamTerminated`` is sent)."""
        self._terminate(self._book.expire_tokens(None), self.server_time_ms())

    def expire_listen_keys(self) -> None:
        """Expire every risk-stream listen key now (``listenKeyExpired``, then close)."""
        self._listen_keys_expired(self._book.expired_listen_keys(None))

    def send_malformed_frame(self) -> None:
        """Send one text frame that is not JSON on every WebSocket connection."""
        for conn in self._connections:
            conn.send('{"e": malformed')

    # Stats

    @property
    def stats(self) -> ExchangeStats:
        """A snapshot of request, rate-limit, connection and event counters."""
        return ExchangeStats(
            requests=self._requests,
            ws_requests=self._ws_requests,
            responses_429=self._responses_429,
            responses_418=self._responses_418,
            connections_opened=self._connections_opened,
            open_connections=len(self._connections),
            events=MappingProxyType(dict(self._events)),
            requests_by_path=MappingProxyType(dict(self._requests_by_path)),
        )

    # Events

    def _count_event(self, event: Mapping[str, Any]) -> None:
        self._events[str(event.get("e"))] += 1

    def on_emit(self, callback: Callable[[str, Mapping[str, Any], float], object]) -> None:
        """Call ``callback(scope, event, at)`` for every account event the exchange sends.

        ``scope`` is ``"CROSS"`` or the isolated symbol, ``event`` the wire payload (without the
        ``subscriptionId`` envelope), ``at`` the :func:`time.perf_counter` reading when it was
        handed to the connections. Called once per event that reaches at least one connection
        (so each call pairs with what a client receives), synchronously; an exception in the
        callback is logged and ignored. Meant for latency measurements and test probes.
        """
        self._emit_hooks.append(callback)

    def _emit(self, account_id: str, scope: str, channel: str, event: Mapping[str, Any]) -> None:
        """Route one event: trade events to the WS API subscriptions of ``(account, scope)``, risk
        events to the streams of the account's listen key. Serialized once, however many
        subscribers."""
        self._count_event(event)
        sent = False
        if channel == "trade":
            subs = self._book.subscribers(account_id, scope)
            if subs:
                data = orjson.dumps(event).decode()
                for conn, sub in subs.items():
                    conn.send(f'{{"subscriptionId":{sub.sid},"event":{data}}}')
                sent = True
        elif channel == "risk":
            listen_key = self._book.listen_key_of(account_id)
            if listen_key is not None and listen_key.streams:
                self._send_risk(listen_key, orjson.dumps(event).decode())
                sent = True
        if sent and self._emit_hooks:
            at = time.perf_counter()
            for hook in self._emit_hooks:
                try:
                    hook(scope, event, at)
                except Exception:
                    log.exception("fake exchange: on_emit callback failed")

    @staticmethod
    def _send_risk(listen_key: ListenKey, data: str) -> None:
        for conn, combined in listen_key.streams.items():
            conn.send(f'{{"stream":"{listen_key.key}","data":{data}}}' if combined else data)

    # Background work: expiries and interest

    async def _background_loop(self) -> None:
        while True:
            await asyncio.sleep(self._expiry_interval)
            now_ms = self.server_time_ms()
            self._terminate(self._book.expire_tokens(now_ms), now_ms)
            self._listen_keys_expired(self._book.expired_listen_keys(self._clock()))
            # The ledger charges whole hours elapsed since each loan's anchor, so polling is exact.
            self._ledger.accrue_interest(now_ms)
            self._pump()

    def _terminated_frame(self, sid: int, now_ms: int) -> str:
        event = {"e": "eventStreamTerminated", "E": now_ms}
        self._count_event(event)
        return orjson.dumps({"subscriptionId": sid, "event": event}).decode()

    def _terminate(self, subs: Sequence[Subscription], now_ms: int) -> None:
        """Tell the connections of expired subscriptions (``eventStreamTerminated``)."""
        for sub in subs:
            sub.session.conn.send(self._terminated_frame(sub.sid, now_ms))

    def _listen_keys_expired(self, listen_keys: Sequence[ListenKey]) -> None:
        """``listenKeyExpired`` on the streams of expired keys, then close them."""
        for listen_key in listen_keys:
            # Binance sends E as a string in this event (MDOC Event-Listen-Key-Expire).
            event = {
                "e": "listenKeyExpired",
                "E": str(self.server_time_ms()),
                "listenKey": listen_key.key,
            }
            self._count_event(event)
            self._send_risk(listen_key, orjson.dumps(event).decode())
            for conn in listen_key.streams:
                conn.close_soon(WSCloseCode.OK, "listen key expired")

    # REST

    def _handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("GET", "/api/v3/time"): self._h_time,
            ("POST", "/sapi/v1/userListenToken"): self._h_listen_token,
            ("POST", "/sapi/v1/margin/listen-key"): self._h_listen_key_create,
            ("PUT", "/sapi/v1/margin/listen-key"): self._h_listen_key_keepalive,
            ("DELETE", "/sapi/v1/margin/listen-key"): self._h_listen_key_close,
            ("GET", "/sapi/v1/margin/rateLimit/order"): self._h_order_rate_limit,
            **self._loan_groups.handlers(),
        }

    async def _serve_rest(self, request: web.Request) -> web.StreamResponse:
        reply = _Reply()
        try:
            path, _, query = request.raw_path.partition("?")
            body = b""
            if request.method in ("POST", "PUT", "DELETE"):
                body = await request.read()
            self._rest(reply, request, path, query, body)
        except Exception:
            log.exception("fake exchange: internal error on %s %s", request.method, request.path)
            reply = _Reply()
            reply.error(_UNKNOWN_ERROR)
        if reply.dropped and request.transport is not None:
            # fail_next(disconnect=True): the client sees the connection close, no answer.
            request.transport.abort()
        return reply.response()

    def _rest(
        self, reply: _Reply, request: web.Request, path: str, query: str, body: bytes
    ) -> None:
        """Handle one REST request synchronously, so that the ledger, the weights and the events
        it causes are one atomic step (no other request interleaves)."""
        self._requests += 1
        self._requests_by_path[path] += 1
        now = self._clock()
        ip = request.remote or "unknown"
        try:
            banned_until = self._bans.banned_until(ip, now)
            if banned_until is not None:
                raise _RateLimitedError(self._ban_error(banned_until), banned_until)
            route = self._routes.get((request.method, path))
            if route is None:
                raise self._no_route(request.method, path)
            self._rest_route(reply, route, request, query, body, ip, now)
        except _RateLimitedError as exc:
            self._rate_limited_reply(reply, exc, now)
        except LedgerError as exc:
            reply.error(exc)
        except _AnswerLost as exc:
            if exc.failure.disconnect:
                reply.dropped = True
            else:
                reply.error(exc.failure.error)

    def _no_route(self, method: str, path: str) -> LedgerError:
        if path in self._methods_by_path:
            allowed = ", ".join(sorted(self._methods_by_path[path]))
            return LedgerError(
                -1020, f"Request method '{method}' not supported for {path}; use {allowed}.", 405
            )
        return LedgerError(-1020, f"Unknown endpoint: {path}.", 404)

    def _rest_route(
        self,
        reply: _Reply,
        route: Route,
        request: web.Request,
        query: str,
        body: bytes,
        ip: str,
        now: float,
    ) -> None:
        """Binance's order of checks: weight first (every request costs, even a rejected one),
        then the API key, the parameters, the signature and timestamp, the key's permissions,
        the order count, and only then the business logic. A :meth:`fail_next` failure is
        taken right after the weight."""
        ep = route.endpoint
        account, key_error = self._identify(ep, request.headers.get("X-MBX-APIKEY"))
        payload: Payload | None = None
        parse_error: LedgerError | None = None
        try:
            payload = parse_payload(query, body, REPEATABLE.get((ep.method, ep.path), ()))
        except LedgerError as exc:
            parse_error = exc
        params = Params(payload.params if payload is not None else {})
        # openOrders without symbol costs one per symbol trading here (the allPairs answer).
        weight = (
            ep.weight_for(params.items(), len(self._symbols)) if payload is not None else ep.weight
        )
        if ep.pool is Pool.SAPI_UID and account is None:
            # A UID pool is charged to the account: without a valid key there is nothing to charge.
            raise key_error or _REJECTED_KEY
        subject = account.account_id if ep.pool is Pool.SAPI_UID and account else ip
        try:
            used = self._charge(ep.pool, ep.pool_key, subject, weight, ip, now)
        except _RateLimitedError:
            # A 429 still reports the window's usage, so a client can see why.
            self._weight_headers(
                reply, ep.pool, self._weights.used(f"{ep.pool_key}|{subject}", now)
            )
            raise
        self._weight_headers(reply, ep.pool, used)
        if ep.ip_requests is not None:
            self._count_ip_request(ep, ep.ip_requests, ip, now)
        failure = self._take_failure(ep.method, ep.path)
        if failure is not None and not failure.execute:
            raise _AnswerLost(failure)
        try:
            for error in (key_error, parse_error):
                if error is not None:
                    raise error
            assert payload is not None  # no parse error
            call = self._authorize(reply, route, account, payload, params, now)
        except (LedgerError, _RateLimitedError):
            if failure is None:
                raise
            raise _AnswerLost(failure) from None  # rejected, and even that answer is lost
        if failure is not None:
            restamped = functools.partial(self._execute_restamped, route, call)
            self._execute_unanswered(failure, restamped)
            raise _AnswerLost(failure)
        reply.body = orjson.dumps(self._execute(route, call))

    def _authorize(
        self,
        reply: _Reply,
        route: Route,
        account: _Account | None,
        payload: Payload,
        params: Params,
        now: float,
    ) -> Call:
        """The checks after the weight, up to the order count: the call to execute."""
        ep = route.endpoint
        now_ms = self.server_time_ms()
        if ep.security is Security.SIGNED:
            assert account is not None  # no key error
            check_timestamp(params, now_ms)
            if payload.signature is None:
                raise mandatory("signature")
            params.skip("signature")
            if not account.verifier.check(payload.signed, payload.signature):
                raise _INVALID_SIGNATURE
        elif ep.security is Security.USER_STREAM:
            # Key-only endpoints: a signature sent anyway is not checked (PROTOCOL.md §9 item 4).
            params.skip("timestamp", "recvWindow", "signature")
        if route.permission is not None and (
            account is None or route.permission not in account.permissions
        ):
            raise _REJECTED_KEY
        if ep.orders and account is not None:
            self._count_order(
                reply, account.account_id, now, _UNFILLED_ORDER_COUNTS.get(ep.path, 1)
            )
        if account is None:
            return Call(params, None, now_ms)
        return Call(params, account.account_id, now_ms, account.scope)

    def _execute(self, route: Route, call: Call) -> Any:
        """Run the handler, then deliver the events it caused."""
        try:
            return route.handler(call)
        finally:
            self._pump()

    def _execute_restamped(self, route: Route, call: Call) -> None:
        """:meth:`_execute` at the current server time: a held call runs after its checks."""
        self._execute(route, replace(call, now_ms=self.server_time_ms()))

    @staticmethod
    def _weight_headers(reply: _Reply, pool: Pool, used: int) -> None:
        reply.headers[_WEIGHT_HEADERS[pool]] = str(used)
        if pool is Pool.API_IP:
            # /api answers carry both spellings (the legacy one without the interval).
            reply.headers["X-MBX-USED-WEIGHT"] = str(used)

    def _identify(
        self, ep: Endpoint, api_key: str | None
    ) -> tuple[_Account | None, LedgerError | None]:
        """The account of the ``X-MBX-APIKEY`` header, or the error it earns (none needed for
        ``NONE`` endpoints)."""
        if ep.security is Security.NONE:
            return None, None
        if api_key is None or _API_KEY_RE.fullmatch(api_key) is None:
            return None, _BAD_KEY_FORMAT
        # Special keys are made for the Spot API (/api/v3) and the WebSocket API only.
        account = self._key_account(api_key, special=ep.path.startswith("/api/"))
        return account, (_REJECTED_KEY if account is None else None)

    def _key_account(self, api_key: str, *, special: bool) -> _Account | None:
        """The holder of ``api_key``: an account's own key, or (``special``) a special key."""
        account = self._accounts.get(api_key)
        if account is not None or not special:
            return account
        key = self._special.get(api_key)
        if key is None:
            return None
        return _Account(key.account_id, None, key.verifier, key.permissions, key.scope)

    def _count_order(self, reply: _Reply, account_id: str, now: float, count: int = 1) -> None:
        """Count ``count`` new orders (``X-MBX-ORDER-COUNT-*``); 429 ``-1015`` when a limit is
        full."""
        try:
            self._place_orders(account_id, now, count)
        finally:
            count_10s, count_1d = self._orders.counts(account_id, now)
            reply.headers["X-MBX-ORDER-COUNT-10S"] = str(count_10s)
            reply.headers["X-MBX-ORDER-COUNT-1D"] = str(count_1d)

    def _place_orders(self, account_id: str, now: float, count: int) -> None:
        """Count ``count`` new orders of ``account_id``; 429 ``-1015`` when a limit is full."""
        for _ in range(count):
            full = self._orders.place(account_id, now)
            if full is not None:
                limit, interval, until = full
                error = LedgerError(
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {interval}.",
                    429,
                )
                raise _RateLimitedError(error, until)

    def _charge(
        self, pool: Pool, pool_key: str, subject: str, weight: int, ip: str, now: float
    ) -> int:
        """Charge ``weight`` to ``pool_key`` for ``subject``; 429 (or a 418 ban) when full."""
        limit = self._limits[pool]
        used = self._weights.charge(f"{pool_key}|{subject}", weight, limit, now)
        if used is not None:
            return used
        self._strike(ip, now)
        error = LedgerError(
            -1003,
            f"Too much request weight used; current limit is {limit} request weight per "
            f"{_interval_text(self._weights.window)}. Please use WebSocket Streams for live "
            "updates to avoid polling the API.",
            429,
        )
        raise _RateLimitedError(error, self._weights.window_end(now))

    def _count_ip_request(self, ep: Endpoint, limit: int, ip: str, now: float) -> None:
        """An endpoint's extra per-IP request limit (``max-leverage``: 1 per minute per IP)."""
        if self._weights.charge(f"IP_REQUESTS:{ep.pool_key}|{ip}", 1, limit, now) is not None:
            return
        self._strike(ip, now)
        error = LedgerError(
            -1003,
            f"Too many requests; current limit is {limit} requests per "
            f"{_interval_text(self._weights.window)} for {ep.path}.",
            429,
        )
        raise _RateLimitedError(error, self._weights.window_end(now))

    def _strike(self, ip: str, now: float) -> None:
        """Count a 429 for ``ip``, or ban it (418) when it ignored enough of them."""
        ban = self._bans.strike(ip, now)
        if ban is not None:
            raise _RateLimitedError(self._ban_error(ban.until), ban.until)

    def _count_rate_limited(self, error: LedgerError) -> None:
        if error.status == 429:
            self._responses_429 += 1
        else:
            self._responses_418 += 1

    def _rate_limited_reply(self, reply: _Reply, exc: _RateLimitedError, now: float) -> None:
        self._count_rate_limited(exc.error)
        reply.headers["Retry-After"] = str(retry_after_seconds(exc.until, now))
        reply.error(exc.error)

    @staticmethod
    def _ban_error(until: float) -> LedgerError:
        return LedgerError(
            -1003,
            f"Way too much request weight used; IP banned until {int(until * 1000)}. Please use "
            "WebSocket Streams for live updates to avoid bans.",
            418,
        )

    def _pump(self) -> None:
        """Deliver everything the ledger emitted since the last call, in emission order."""
        for event in self._ledger.drain_events():
            self._emit(event.account_id, event.scope, event.channel, event.payload)

    # REST handlers owned by the server (time, stream tokens and listen keys)

    def _h_time(self, call: Call) -> Any:
        call.params.finish()
        return {"serverTime": call.now_ms}

    def _h_order_rate_limit(self, call: Call) -> Any:
        p = call.params
        isolated = p.flag("isIsolated")
        symbol = p.text("symbol", required=isolated)
        p.finish()
        assert call.account_id is not None
        if isolated:
            assert symbol is not None
            self._isolated_scope(call.account_id, symbol)
        return self._order_limits(call.account_id, self._clock())

    def _order_limits(self, account_id: str, now: float) -> list[dict[str, Any]]:
        """The ``ORDERS`` rate limits of an account with their current counts."""
        count_10s, count_1d = self._orders.counts(account_id, now)
        return [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": self._orders.limit_10s,
                "count": count_10s,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": self._orders.limit_1d,
                "count": count_1d,
            },
        ]

    def _published_limits(self) -> list[dict[str, Any]]:
        """The ``rateLimits`` of ``exchangeInfo``: request weight and order counts."""
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self._limits[Pool.API_IP],
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": self._orders.limit_10s,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": self._orders.limit_1d,
            },
        ]

    def _h_listen_token(self, call: Call) -> Any:
        p = call.params
        # A lower-case boolean here, unlike the "TRUE"/"FALSE" of order endpoints (MLT).
        is_isolated = (p.enum("isIsolated", ("true", "false", "TRUE", "FALSE")) or "").lower()
        symbol = p.text("symbol", required=is_isolated == "true")
        validity = p.long("validity")
        p.finish()
        assert call.account_id is not None
        if validity is None:
            validity = self._token_validity_ms
        elif not 0 < validity <= _MAX_TOKEN_VALIDITY_MS:
            raise LedgerError(-1130, "Data sent for parameter 'validity' is not valid.")
        if is_isolated == "true":
            assert symbol is not None
            scope = self._isolated_scope(call.account_id, symbol)
        elif symbol is not None:
            raise not_required("symbol")
        else:
            scope = "CROSS"
        expires_ms = call.now_ms + validity
        token = self._book.issue_token(call.account_id, scope, expires_ms)
        return {"token": token, "expirationTime": expires_ms}

    def _isolated_scope(self, account_id: str, symbol: str) -> str:
        """``symbol`` if the account has that isolated margin account (``-1121``/``-3003``)."""
        if symbol not in self._symbols:
            raise LedgerError(-1121, "Invalid symbol.")
        if symbol not in self._ledger.isolated_symbols(account_id):
            raise LedgerError(-3003, "Margin account does not exist.")
        return symbol

    def _h_listen_key_create(self, call: Call) -> Any:
        call.params.finish()
        assert call.account_id is not None
        expires_at = self._clock() + self._listen_key_validity
        return {"listenKey": self._book.open_listen_key(call.account_id, expires_at).key}

    def _h_listen_key_keepalive(self, call: Call) -> Any:
        key = call.params.text("listenKey", required=True)
        call.params.finish()
        assert call.account_id is not None
        listen_key = self._book.owned_listen_key(call.account_id, key)
        listen_key.expires_at = self._clock() + self._listen_key_validity
        return {}

    def _h_listen_key_close(self, call: Call) -> Any:
        key = call.params.text("listenKey")
        call.params.finish()
        assert call.account_id is not None
        listen_key = self._book.owned_listen_key(call.account_id, key)
        self._book.remove_listen_key(listen_key)
        # Closed on request: no listenKeyExpired (that event is for expiry only).
        for conn in listen_key.streams:
            conn.close_soon(WSCloseCode.OK, "listen key closed")
        return {}

    # WebSockets

    def _refuse_ws(self, request: web.Request) -> web.Response | None:
        """A plain HTTP request, a banned IP, the connection-attempt limit or the connection
        weight (2, API pool) refuse the handshake with a Binance-style answer."""
        reply = _Reply()
        if not web.WebSocketResponse().can_prepare(request).ok:
            reply.error(_NOT_A_WEBSOCKET)
            return reply.response()
        ip = request.remote or "unknown"
        now = self._clock()
        try:
            banned_until = self._bans.banned_until(ip, now)
            if banned_until is not None:
                raise _RateLimitedError(self._ban_error(banned_until), banned_until)
            if self._connects.charge(f"connect|{ip}", 1, self._ws_connect_limit, now) is None:
                raise _RateLimitedError(
                    LedgerError(
                        -1003,
                        f"Too many connection attempts; current limit is {self._ws_connect_limit} "
                        f"per {_interval_text(self._connects.window)}.",
                        429,
                    ),
                    self._connects.window_end(now),
                )
            self._charge(Pool.API_IP, "API_IP", ip, 2, ip, now)
        except _RateLimitedError as exc:
            self._rate_limited_reply(reply, exc, now)
            return reply.response()
        return None

    async def _accept(
        self, request: web.Request, kind: str
    ) -> tuple[web.WebSocketResponse, Connection]:
        ws = web.WebSocketResponse(autoping=False, compress=False, timeout=_CLOSE_TIMEOUT)
        await ws.prepare(request)
        conn = Connection(ws, request, kind, lambda: self._stalled_until)
        self._connections.add(conn)
        self._connections_opened += 1
        conn.start(
            ping_interval=self._ping_interval,
            pong_timeout=self._pong_timeout,
            lifetime=self._lifetime,
        )
        return ws, conn

    async def _read_loop(
        self, ws: web.WebSocketResponse, conn: Connection, on_text: Callable[[str], None]
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    on_text(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    on_text(msg.data.decode("utf-8", "replace"))
                elif msg.type is WSMsgType.PING:
                    if not conn.stalled(loop.time()):  # a stalled server answers nothing
                        conn.answer_ping(msg.data)
                elif msg.type is WSMsgType.PONG:
                    conn.pong(msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._connections.discard(conn)
            await conn.stop(_CLOSE_TIMEOUT)

    async def _serve_ws_api(self, request: web.Request) -> web.StreamResponse:
        refused = self._refuse_ws(request)
        if refused is not None:
            return refused
        ws, conn = await self._accept(request, "ws-api")
        session = Session(
            conn,
            connected_ms=self.server_time_ms(),
            return_rate_limits=request.query.get("returnRateLimits", "true").lower() != "false",
        )
        try:
            await self._read_loop(ws, conn, lambda text: self._ws_request(session, text))
        finally:
            self._book.close_session(session)
        return ws

    async def _serve_risk_stream(self, request: web.Request) -> web.StreamResponse:
        combined = "listen_key" not in request.match_info
        key = request.query.get("streams", "") if combined else request.match_info["listen_key"]
        listen_key = self._book.listen_key(key)
        if listen_key is None:
            reply = _Reply()
            reply.error(LedgerError(-1125, "This listenKey does not exist."))
            return reply.response()
        refused = self._refuse_ws(request)
        if refused is not None:
            return refused
        ws, conn = await self._accept(request, "risk")
        listen_key.streams[conn] = combined
        try:
            # Frames from the peer carry nothing on a user stream; only control frames matter.
            await self._read_loop(ws, conn, lambda text: None)
        finally:
            listen_key.streams.pop(conn, None)
        return ws

    # WebSocket API

    def _ws_request(self, session: Session, text: str) -> None:
        """Answer one WebSocket API request frame; a bug answers ``-1000``, never kills the
        connection."""
        try:
            self._ws_answer(session, text)
        except Exception:
            log.exception("fake exchange: internal error on a WebSocket API request")
            error = {"code": _UNKNOWN_ERROR.code, "msg": _UNKNOWN_ERROR.msg}
            session.conn.send(orjson.dumps({"id": None, "status": 500, "error": error}).decode())

    def _ws_answer(self, session: Session, text: str) -> None:
        """Answer one request synchronously, like a REST request: one atomic step."""
        self._ws_requests += 1
        conn = session.conn
        now = self._clock()
        request_id: Any = None
        weight_used: int | None = None
        after: list[str] = []
        return_rate_limits: object = session.return_rate_limits
        self._ws_orders_of = None
        try:
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise LedgerError(-1135, "Invalid JSON Request") from None
            if not isinstance(message, dict):
                raise LedgerError(-1135, "Invalid JSON Request")
            request_id = message.get("id")
            if isinstance(request_id, bool) or not isinstance(request_id, (int, str, type(None))):
                request_id = None
                raise LedgerError(-1135, "JSON sent for parameter 'id' is not valid")
            method = message.get("method")
            if not isinstance(method, str) or not method:
                raise mandatory("method")
            params = message.get("params", {})
            if not isinstance(params, dict):
                raise LedgerError(-1135, "Invalid 'params' in JSON request; expected an object.")
            return_rate_limits = params.get("returnRateLimits", return_rate_limits)
            name = method.removeprefix("v3/")
            weight_rule, handler = self._ws_methods.get(name, (1, None))
            weight = weight_rule(params) if callable(weight_rule) else weight_rule
            banned_until = self._bans.banned_until(conn.ip, now)
            if banned_until is not None:
                raise _RateLimitedError(self._ban_error(banned_until), banned_until)
            weight_used = self._charge(Pool.API_IP, "API_IP", conn.ip, weight, conn.ip, now)
            if handler is None:
                raise LedgerError(
                    -1100,
                    f"Illegal characters found in parameter 'method'; unknown method '{method}'.",
                )
            failure = self._take_failure("WS", name)
            if failure is not None:
                unanswered = self._ws_unanswered(failure, session, name, handler, params)
                self._execute_unanswered(failure, unanswered)
                if failure.disconnect:
                    conn.abort()
                    return
                raise failure.error
            result = handler(session, params, self.server_time_ms(), after)
            frame: dict[str, Any] = {"id": request_id, "status": 200, "result": result}
        except _RateLimitedError as exc:
            self._count_rate_limited(exc.error)
            error = exc.error.body()
            # WS API 429/418 carry when to come back, in ms (SPOT web-socket-api.md).
            error["data"] = {
                "serverTime": self.server_time_ms(),
                "retryAfter": int(exc.until * 1000),
            }
            frame = {"id": request_id, "status": exc.error.status, "error": error}
        except LedgerError as exc:
            frame = {"id": request_id, "status": exc.status, "error": exc.body()}
        if return_rate_limits is not False:
            if weight_used is None:
                weight_used = self._weights.used(f"API_IP|{conn.ip}", now)
            # Order methods also report the account's order counts, first (SPOT docs).
            limits = (
                [] if self._ws_orders_of is None else self._order_limits(self._ws_orders_of, now)
            )
            limits.append(
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self._limits[Pool.API_IP],
                    "count": weight_used,
                }
            )
            frame["rateLimits"] = limits
        conn.send(orjson.dumps(frame).decode())
        for frame_after in after:
            conn.send(frame_after)
        # The answer goes out before the events the request caused (a trading session subscribed
        # on this connection sees its order's answer, then its executionReport).
        self._pump()

    def _ws_execute_unanswered(
        self, session: Session, handler: _WsMethod, params: dict[str, Any]
    ) -> None:
        """Run a WebSocket API method whose answer was lost (now or held); its follow-up frames
        still go out."""
        if session.conn.closed:
            # Session state (subscriptions) ended with its connection: nothing left to act on.
            return
        after: list[str] = []
        try:
            handler(session, params, self.server_time_ms(), after)
        finally:
            self._pump()
        for frame in after:
            session.conn.send(frame)

    def _ws_subscribe(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        token = params.get("listenToken")
        if not isinstance(token, str) or not token:
            raise mandatory("listenToken")
        sub = self._book.subscribe(session, token, now_ms)
        return {"subscriptionId": sub.sid, "expirationTime": sub.expires_ms}

    def _ws_unsubscribe(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        sid = params.get("subscriptionId")
        if sid is not None and (isinstance(sid, bool) or not isinstance(sid, int)):
            raise illegal("subscriptionId", "^[0-9]{1,20}$")
        for sub in self._book.unsubscribe(session, sid):
            # The answer first, then eventStreamTerminated for each subscription (SPOT docs).
            after.append(self._terminated_frame(sub.sid, now_ms))
        return {}

    def _ws_subscriptions(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        return [{"subscriptionId": sid} for sid in session.subscriptions]

    def _ws_status(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        """``session.status`` (also the answer of ``session.logon`` and ``session.logout``)."""
        return {
            "apiKey": session.api_key,
            "authorizedSince": session.authorized_since,
            "connectedSince": session.connected_ms,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": now_ms,
            "userDataStream": bool(session.subscriptions),
        }

    def _ws_time(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        return {"serverTime": now_ms}

    def _ws_ping(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        return {}

    # WebSocket API: authentication, special-key trading and account subscriptions

    @staticmethod
    def _ws_weight(route: Route) -> int | Callable[[dict[str, Any]], int]:
        ep = route.endpoint
        if ep.weight_without is None:
            return ep.weight
        return lambda params: ep.weight_for([(name, "") for name in params])

    def _ws_route(self, route: Route) -> _WsMethod:
        """A WebSocket API method backed by a REST route: same parameters, checks, weight,
        order counts and answer (the ``result``)."""

        def handle(session: Session, params: dict[str, Any], now_ms: int, after: list[str]) -> Any:
            return route.handler(self._ws_authorize(route, session, params, now_ms))

        return handle

    def _ws_authorize(
        self, route: Route, session: Session, params: dict[str, Any], now_ms: int
    ) -> Call:
        """The checks of a route-backed method up to the order count (as REST's
        :meth:`_authorize`): the call to execute."""
        p = Params(text_params(params))
        p.skip("returnRateLimits")
        if route.endpoint.security is Security.NONE:
            return Call(p, None, now_ms)
        account = self._ws_authenticate(session, p, now_ms)
        if route.permission is not None and route.permission not in account.permissions:
            raise _REJECTED_KEY
        if route.endpoint.orders:
            self._ws_orders_of = account.account_id
            count = _UNFILLED_ORDER_COUNTS.get(route.endpoint.path, 1)
            self._place_orders(account.account_id, self._clock(), count)
        return Call(p, account.account_id, now_ms, account.scope)

    def _ws_unanswered(
        self,
        failure: _Failure,
        session: Session,
        name: str,
        handler: _WsMethod,
        params: dict[str, Any],
    ) -> Callable[[], object]:
        """What a :meth:`fail_next` on a WebSocket API method executes. A route-backed method
        acts on the account, not the connection: checked now, executed (now or held) at the
        current server time even if its connection is gone, like its REST route."""
        route_key = WS_ROUTES.get(name)
        if route_key is None or not failure.execute:
            return functools.partial(self._ws_execute_unanswered, session, handler, params)
        route = self._routes[route_key]
        try:
            call = self._ws_authorize(route, session, params, self.server_time_ms())
        except (LedgerError, _RateLimitedError):
            return lambda: None  # rejected, and even that answer is lost
        return functools.partial(self._execute_restamped, route, call)

    def _ws_key(self, api_key: str) -> _Account:
        if _API_KEY_RE.fullmatch(api_key) is None:
            raise _BAD_KEY_FORMAT
        account = self._key_account(api_key, special=True)
        if account is None:
            raise _REJECTED_KEY
        return account

    def _ws_authenticate(self, session: Session, p: Params, now_ms: int) -> _Account:
        """A SIGNED request's key: ``apiKey`` + ``signature`` over the sorted parameters, or the
        session's logged-on key (then only ``timestamp``). Reads the auth parameters."""
        api_key = p.text("apiKey")
        signature = p.text("signature")
        check_timestamp(p, now_ms)
        if api_key is None and session.api_key is not None:
            if signature is not None:
                raise not_required("signature")
            account = self._key_account(session.api_key, special=True)
            if account is None:
                # The logged-on key was deleted: Binance revokes the session's authentication.
                session.api_key = session.authorized_since = None
                raise _REJECTED_KEY
            return account
        if api_key is None:
            raise mandatory("apiKey")
        if signature is None:
            raise mandatory("signature")
        account = self._ws_key(api_key)
        if not account.verifier.check(signature_payload(dict(p.items())), signature):
            raise _INVALID_SIGNATURE
        return account

    def _ws_logon(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        """``session.logon``: Ed25519 keys only (Binance); a new logon replaces the key."""
        p = Params(text_params(params))
        p.skip("returnRateLimits")
        api_key = p.text("apiKey", required=True)
        signature = p.text("signature", required=True)
        check_timestamp(p, now_ms)
        p.finish()
        assert api_key is not None and signature is not None
        account = self._ws_key(api_key)
        if not account.verifier.check(signature_payload(dict(p.items())), signature):
            raise _INVALID_SIGNATURE
        if account.verifier.key_type != "ED25519":
            # Binance documents logon for Ed25519 keys only; its error for others is not
            # documented: the fake answers "unauthorized".
            raise LedgerError(-1002, "You are not authorized to execute this request.", 401)
        if session.api_key != api_key:
            self._ws_end_logon_subscription(session, now_ms, after)
        session.api_key = api_key
        session.authorized_since = now_ms
        return self._ws_status(session, params, self.server_time_ms(), after)

    def _ws_logout(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        """``session.logout``: forget the key; only the ``userDataStream.subscribe``
        subscription ends with it (``eventStreamTerminated`` after the answer)."""
        self._ws_end_logon_subscription(session, now_ms, after)
        session.api_key = session.authorized_since = None
        return self._ws_status(session, params, now_ms, after)

    def _ws_end_logon_subscription(self, session: Session, now_ms: int, after: list[str]) -> None:
        for sub in list(session.subscriptions.values()):
            if sub.kind == "logon":
                self._book.unsubscribe(session, sub.sid)
                after.append(self._terminated_frame(sub.sid, now_ms))

    def _ws_subscribe_logon(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        """``userDataStream.subscribe``: the logged-on key's account events on this connection."""
        p = Params(text_params(params))
        p.skip("returnRateLimits")
        p.finish()
        if session.api_key is None:
            raise LedgerError(-1002, "You are not authorized to execute this request.", 401)
        account = self._key_account(session.api_key, special=True)
        if account is None:
            session.api_key = session.authorized_since = None
            raise _REJECTED_KEY
        return self._ws_subscribe_account(session, account, "logon")

    def _ws_subscribe_signature(
        self, session: Session, params: dict[str, Any], now_ms: int, after: list[str]
    ) -> Any:
        """``userDataStream.subscribe.signature``: any key type, signed per request."""
        p = Params(text_params(params))
        p.skip("returnRateLimits")
        api_key = p.text("apiKey", required=True)
        signature = p.text("signature", required=True)
        check_timestamp(p, now_ms)
        p.finish()
        assert api_key is not None and signature is not None
        account = self._ws_key(api_key)
        if not account.verifier.check(signature_payload(dict(p.items())), signature):
            raise _INVALID_SIGNATURE
        return self._ws_subscribe_account(session, account, "signature")

    def _ws_subscribe_account(self, session: Session, account: _Account, kind: str) -> Any:
        if account.scope is None:
            # An account's own key would get its spot account's events: the fake has none.
            raise LedgerError(
                -1020, "The fake exchange has no spot account: subscribe with a special key."
            )
        if self._special_user_stream == "listen_token":
            # The alternative where margin special keys get no WebSocket API user data stream
            # of their own (see the constructor): their events come by listen token only.
            raise _REJECTED_KEY
        sub = self._book.subscribe_account(session, (account.account_id, account.scope), kind)
        return {"subscriptionId": sub.sid}
