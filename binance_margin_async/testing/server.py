"""`FakeExchange`: an in-process Binance margin venue (REST, WebSocket API, risk stream).

One aiohttp server on a random free port serves:

* REST (``rest_url``): every endpoint of :mod:`binance_margin_async.endpoints`, checked as Binance
  checks them (API key, signature over the exact received bytes for HMAC/Ed25519/RSA keys,
  ``timestamp``/``recvWindow``, parameters), weighted per pool with the real response headers,
  429 + ``Retry-After`` and 418 bans, and backed by the pure :class:`~.ledger.Ledger`;
* the WebSocket API (``ws_api_url`` = ``/ws-api/v3``): listen-token subscriptions, events wrapped
  as ``{"subscriptionId": N, "event": {...}}``, pings, ``eventStreamTerminated``;
* the risk stream (``risk_stream_url``; ``/ws/<listenKey>`` and ``/stream?streams=<listenKey>``):
  the ledger's ``USER_LIABILITY_CHANGE``/``MARGIN_LEVEL_STATUS_CHANGE`` events and
  ``listenKeyExpired``.

Answers the fake gives to questions Binance's docs leave open (PROTOCOL.md §9):

* subscribe ``expirationTime`` is in **milliseconds**, like the REST token answer (§9 item 5);
* renewal (§9 item 6): subscribing with a *new* token of an account that is already subscribed on
  the connection extends that subscription **in place**: same ``subscriptionId``, the new token's
  expiration. The *same* token again is ``-2035``. Creating a token does not revoke older ones:
  every token stays usable until its own ``expirationTime`` (so a reconnect may reuse it);
* ``userListenToken`` and the listen-key endpoints need the API key only; a ``timestamp``/
  ``signature`` sent anyway is ignored, not rejected (§9 item 4);
* order-count 429s carry ``Retry-After`` (§9 item 9);
* weight headers keep Binance's names (``...-1M``) even when ``window`` is shrunk for tests: the
  fake's "minute" simply lasts ``window`` seconds.

Docs: https://developers.binance.com/docs/margin_trading/general-info
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from ..endpoints import Pool, Security
from ._conn import Connection
from ._keys import Credentials, KeyType, Verifier, make_credentials
from ._limits import BanBook, OrderCounts, WeightBook, retry_after_seconds
from ._params import ApiError, Params, check_timestamp, illegal, mandatory, parse_payload
from ._rest import MARGIN, TRADE, Call, Handler, Route, build_routes

__all__ = ["ExchangeStats", "FakeExchange"]

log = logging.getLogger(__name__)

_API_KEY_RE: Final = re.compile(r"[A-Za-z0-9]{64}")
_TOKEN_ALPHABET: Final = string.ascii_letters + string.digits + "+/"
_LISTEN_KEY_ALPHABET: Final = string.ascii_letters + string.digits
_JSON_HEADERS: Final = {"Content-Type": "application/json;charset=UTF-8"}
_MAX_TOKEN_VALIDITY_MS: Final = 86_400_000
_MAX_SUBSCRIPTION_IDS: Final = 65_535
_CLOSE_TIMEOUT: Final = 2.0

_UNKNOWN_ERROR: Final = ApiError(
    -1000, "An unknown error occurred while processing the request.", 500
)
_INVALID_SIGNATURE: Final = ApiError(-1022, "Signature for this request is not valid.")
_BAD_KEY_FORMAT: Final = ApiError(-2014, "API-key format invalid.", 401)
_REJECTED_KEY: Final = ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


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
    credentials: Credentials
    verifier: Verifier
    permissions: frozenset[str]


@dataclass(slots=True)
class _Token:
    account_id: str
    scope: str  # "CROSS" or the isolated symbol
    expires_ms: int


@dataclass(slots=True, eq=False)
class _Subscription:
    conn: Connection
    sid: int
    account_id: str
    scope: str
    token: str
    expires_ms: int


@dataclass(slots=True, eq=False)
class _ListenKey:
    key: str
    account_id: str
    expires_at: float  # epoch seconds (exchange clock)
    streams: dict[Connection, bool] = field(default_factory=dict)  # conn -> combined format


@dataclass(slots=True)
class _WsApiSession:
    """Per-connection WebSocket API state."""

    connected_ms: int
    return_rate_limits: bool
    next_id: int = 0
    subscriptions: dict[int, _Subscription] = field(default_factory=dict)
    by_account: dict[tuple[str, str], _Subscription] = field(default_factory=dict)
    # Frames a request causes that must follow its response (eventStreamTerminated on unsubscribe).
    after_reply: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Failure:
    remaining: int
    error: ApiError


class _Reply:
    """A REST answer under construction: status, headers, JSON body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = dict(_JSON_HEADERS)
        self.body: bytes = b"{}"

    def error(self, err: ApiError) -> None:
        self.status = err.status
        self.body = orjson.dumps({"code": err.code, "msg": err.msg})

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)


class _RateLimitedError(Exception):
    """Internal: answer 429 or 418 with ``Retry-After``."""

    def __init__(self, error: ApiError, until: float) -> None:
        super().__init__(error.msg)
        self.error = error
        self.until = until


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
            creds = ex.add_account(balances={"USDT": "10000"})
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
        self._seed = seed
        self._rng = random.Random(f"binance-margin-async-fake:{seed}")
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
        self._account_ids: dict[str, _Account] = {}
        self._tokens: dict[str, _Token] = {}
        self._listen_keys: dict[str, _ListenKey] = {}
        self._listen_key_by_account: dict[str, _ListenKey] = {}
        self._subscribers: dict[tuple[str, str], dict[Connection, _Subscription]] = {}
        self._sessions: dict[Connection, _WsApiSession] = {}
        self._connections: set[Connection] = set()
        self._failures: dict[tuple[str | None, str], list[_Failure]] = {}
        self._stalled_until = 0.0  # loop time

        self._requests = 0
        self._ws_requests = 0
        self._responses_429 = 0
        self._responses_418 = 0
        self._connections_opened = 0
        self._events: Counter[str] = Counter()
        self._requests_by_path: Counter[str] = Counter()

        self._routes: dict[tuple[str, str], Route] = build_routes(self._handlers())
        self._methods_by_path: dict[str, list[str]] = {}
        for method, path in self._routes:
            self._methods_by_path.setdefault(path, []).append(method)
        self._ws_methods: dict[
            str, tuple[int, Callable[[Connection, _WsApiSession, dict[str, Any], int], Any]]
        ] = {
            "userDataStream.subscribe.listenToken": (2, self._ws_subscribe),
            "userDataStream.unsubscribe": (2, self._ws_unsubscribe),
            "session.subscriptions": (2, self._ws_subscriptions),
            "session.status": (2, self._ws_status),
            "time": (1, self._ws_time),
            "ping": (1, self._ws_ping),
        }

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
        self._spawn(self._expiry_loop())

    async def close(self) -> None:
        """Close every connection and stop the server (``async with`` does this)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in self._tasks:
            task.cancel()
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

    # Accounts

    def add_account(
        self,
        balances: Mapping[str, Any] | None = None,
        *,
        key_type: KeyType = "HMAC",
        permissions: Iterable[str] = (TRADE, MARGIN),
        read_only: bool = False,
    ) -> Credentials:
        """Create an account and return its credentials (keys derived from the seed).

        ``permissions``: ``"TRADE"`` (orders) and/or ``"MARGIN"`` (borrow, repay, transfers and
        other margin writes); ``read_only=True`` grants neither. A key without the permission an
        endpoint needs gets ``-2015``, as on Binance. ``key_type``: ``"HMAC"`` (returns
        ``api_secret``), ``"ED25519"`` or ``"RSA"`` (return a PKCS#8 PEM ``private_key``).
        """
        granted = frozenset() if read_only else frozenset(permissions)
        unknown = granted - {TRADE, MARGIN}
        if unknown:
            raise ValueError(f"unknown permissions {sorted(unknown)}; use 'TRADE' and/or 'MARGIN'")
        number = len(self._account_ids) + 1
        account_id = f"acct{number}"
        credentials, verifier = make_credentials(self._seed, number, account_id, key_type)
        account = _Account(account_id, credentials, verifier, granted)
        self._accounts[credentials.api_key] = account
        self._account_ids[account_id] = account
        return credentials

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
    ) -> None:
        """Answer the next ``count`` calls of ``path`` (any method unless ``method``) with
        ``status`` and ``{"code": code, "msg": msg}``.

        ``path`` is a REST path (``"/sapi/v1/margin/order"``) or a WebSocket API method name
        (``"userDataStream.subscribe.listenToken"``). The failure applies after rate limiting and
        before authentication; nothing is executed.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        key = (method.upper() if method else None, path)
        self._failures.setdefault(key, []).append(_Failure(count, ApiError(code, msg, status)))

    def _take_failure(self, method: str, path: str) -> ApiError | None:
        for key in ((method, path), (None, path)):
            queue = self._failures.get(key)
            if queue:
                failure = queue[0]
                failure.remaining -= 1
                if failure.remaining == 0:
                    queue.pop(0)
                return failure.error
        return None

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
        self._tokens.clear()
        for subs in list(self._subscribers.values()):
            for sub in list(subs.values()):
                self._terminate(sub, self.server_time_ms())

    def expire_listen_keys(self) -> None:
        """Expire every risk-stream listen key now (``listenKeyExpired``, then close)."""
        for listen_key in list(self._listen_keys.values()):
            self._expire_listen_key(listen_key)

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

    def _emit(self, account_id: str, scope: str, channel: str, event: Mapping[str, Any]) -> None:
        """Route one event to its subscribers: trade events to the WS API subscriptions of
        ``(account, scope)``, risk events to the account's listen-key streams."""
        self._count_event(event)
        if channel == "trade":
            subs = self._subscribers.get((account_id, scope))
            if subs:
                data = orjson.dumps(event).decode()
                for conn, sub in subs.items():
                    conn.send(f'{{"subscriptionId":{sub.sid},"event":{data}}}')
        elif channel == "risk":
            listen_key = self._listen_key_by_account.get(account_id)
            if listen_key is not None and listen_key.streams:
                self._send_risk(listen_key, orjson.dumps(event).decode())

    @staticmethod
    def _send_risk(listen_key: _ListenKey, data: str) -> None:
        for conn, combined in listen_key.streams.items():
            conn.send(f'{{"stream":"{listen_key.key}","data":{data}}}' if combined else data)

    # Expiry

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(self._expiry_interval)
            self._expire_due()

    def _expire_due(self) -> None:
        now_ms = self.server_time_ms()
        for token, record in list(self._tokens.items()):
            if record.expires_ms <= now_ms:
                del self._tokens[token]
        for subs in list(self._subscribers.values()):
            for sub in list(subs.values()):
                if sub.expires_ms <= now_ms:
                    self._terminate(sub, now_ms)
        now = self._clock()
        for listen_key in list(self._listen_keys.values()):
            if listen_key.expires_at <= now:
                self._expire_listen_key(listen_key)

    def _terminate(self, sub: _Subscription, now_ms: int) -> None:
        """End an expired subscription with ``eventStreamTerminated``."""
        self._drop_subscription(sub)
        sub.conn.send(self._terminated_frame(sub.sid, now_ms))

    def _terminated_frame(self, sid: int, now_ms: int) -> str:
        event = {"e": "eventStreamTerminated", "E": now_ms}
        self._count_event(event)
        return orjson.dumps({"subscriptionId": sid, "event": event}).decode()

    def _drop_subscription(self, sub: _Subscription) -> None:
        session = self._sessions.get(sub.conn)
        if session is not None:
            session.subscriptions.pop(sub.sid, None)
            session.by_account.pop((sub.account_id, sub.scope), None)
        subs = self._subscribers.get((sub.account_id, sub.scope))
        if subs is not None:
            subs.pop(sub.conn, None)
            if not subs:
                del self._subscribers[(sub.account_id, sub.scope)]

    def _expire_listen_key(self, listen_key: _ListenKey) -> None:
        self._remove_listen_key(listen_key)
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

    def _remove_listen_key(self, listen_key: _ListenKey) -> None:
        self._listen_keys.pop(listen_key.key, None)
        if self._listen_key_by_account.get(listen_key.account_id) is listen_key:
            del self._listen_key_by_account[listen_key.account_id]

    # REST

    def _handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("GET", "/api/v3/time"): self._h_time,
            ("POST", "/sapi/v1/userListenToken"): self._h_listen_token,
            ("POST", "/sapi/v1/margin/listen-key"): self._h_listen_key_create,
            ("PUT", "/sapi/v1/margin/listen-key"): self._h_listen_key_keepalive,
            ("DELETE", "/sapi/v1/margin/listen-key"): self._h_listen_key_close,
            ("GET", "/sapi/v1/margin/rateLimit/order"): self._h_order_rate_limit,
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
            reply.headers["Retry-After"] = str(retry_after_seconds(exc.until, now))
            reply.error(exc.error)
            if exc.error.status == 429:
                self._responses_429 += 1
            else:
                self._responses_418 += 1
        except ApiError as exc:
            reply.error(exc)

    def _no_route(self, method: str, path: str) -> ApiError:
        if path in self._methods_by_path:
            allowed = ", ".join(sorted(self._methods_by_path[path]))
            return ApiError(
                -1020, f"Request method '{method}' not supported for {path}; use {allowed}.", 405
            )
        return ApiError(-1020, f"Unknown endpoint: {path}.", 404)

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
        ep = route.endpoint
        account: _Account | None = None
        key_error: ApiError | None = None
        if ep.security is not Security.NONE:
            api_key = request.headers.get("X-MBX-APIKEY")
            if api_key is None or _API_KEY_RE.fullmatch(api_key) is None:
                key_error = _BAD_KEY_FORMAT
            else:
                account = self._accounts.get(api_key)
                if account is None:
                    key_error = _REJECTED_KEY
        parse_error: ApiError | None = None
        try:
            payload = parse_payload(query, body.decode("utf-8"))
        except (ApiError, UnicodeDecodeError) as exc:
            parse_error = (
                exc
                if isinstance(exc, ApiError)
                else ApiError(-1100, "Illegal characters found in a parameter.")
            )
            payload = None
        params = Params(payload.params if payload is not None else {})
        weight = ep.weight_for(params.items()) if payload is not None else ep.weight
        if ep.pool is Pool.SAPI_UID:
            if account is None:
                # A UID pool is charged to the account: no valid key, nothing to charge.
                raise key_error or _REJECTED_KEY
            subject = account.account_id
        else:
            subject = ip
        used = self._charge(ep.pool, ep.pool_key, subject, weight, ip, now)
        reply.headers[_WEIGHT_HEADERS[ep.pool]] = str(used)
        if ep.pool is Pool.API_IP:
            reply.headers["X-MBX-USED-WEIGHT"] = str(used)
        failure = self._take_failure(ep.method, ep.path)
        if failure is not None:
            raise failure
        if key_error is not None:
            raise key_error
        if parse_error is not None:
            raise parse_error
        assert payload is not None  # parse_error is None
        now_ms = self.server_time_ms()
        if ep.security is Security.SIGNED:
            assert account is not None  # key_error is None
            check_timestamp(params, now_ms)
            if payload.signature is None:
                raise mandatory("signature")
            params.skip("signature")
            if not account.verifier.check(payload.signed, payload.signature):
                raise _INVALID_SIGNATURE
        elif ep.security is Security.USER_STREAM:
            # Key-only endpoints: a signature sent anyway is not checked (PROTOCOL.md §9 item 4).
            params.skip("timestamp", "recvWindow", "signature")
        if route.permission is not None:
            assert account is not None
            if route.permission not in account.permissions:
                raise _REJECTED_KEY
        if ep.counts_order:
            assert account is not None
            full = self._orders.place(account.account_id, now)
            self._order_headers(reply, account.account_id, now)
            if full is not None:
                interval, until = full
                limit = self._orders.limit_10s if interval == "10 SECOND" else self._orders.limit_1d
                raise _RateLimitedError(
                    ApiError(
                        -1015,
                        f"Too many new orders; current limit is {limit} orders per {interval}.",
                        429,
                    ),
                    until,
                )
        call = Call(params, account.account_id if account is not None else None, now_ms)
        try:
            result = route.handler(call)
        finally:
            self._pump()
        reply.body = orjson.dumps(result)

    def _order_headers(self, reply: _Reply, account_id: str, now: float) -> None:
        count_10s, count_1d = self._orders.counts(account_id, now)
        reply.headers["X-MBX-ORDER-COUNT-10S"] = str(count_10s)
        reply.headers["X-MBX-ORDER-COUNT-1D"] = str(count_1d)

    def _charge(
        self, pool: Pool, pool_key: str, subject: str, weight: int, ip: str, now: float
    ) -> int:
        """Charge ``weight`` to ``pool_key`` for ``subject``; 429 (or a 418 ban) when full."""
        limit = self._limits[pool]
        used = self._weights.charge(f"{pool_key}|{subject}", weight, limit, now)
        if used is not None:
            return used
        ban = self._bans.strike(ip, now)
        if ban is not None:
            raise _RateLimitedError(self._ban_error(ban.until), ban.until)
        error = ApiError(
            -1003,
            f"Too much request weight used; current limit is {limit} request weight per "
            f"{_interval_text(self._weights.window)}. Please use WebSocket Streams for live "
            "updates to avoid polling the API.",
            429,
        )
        raise _RateLimitedError(error, self._weights.window_end(now))

    @staticmethod
    def _ban_error(until: float) -> ApiError:
        return ApiError(
            -1003,
            f"Way too much request weight used; IP banned until {int(until * 1000)}. Please use "
            "WebSocket Streams for live updates to avoid bans.",
            418,
        )

    def _pump(self) -> None:
        """Deliver what the ledger emitted. Overridden point of contact with the ledger."""

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
        count_10s, count_1d = self._orders.counts(call.account_id, self._clock())
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

    def _new_secret(self, alphabet: str, length: int) -> str:
        return "".join(self._rng.choices(alphabet, k=length))

    def _h_listen_token(self, call: Call) -> Any:
        p = call.params
        is_isolated = p.enum("isIsolated", ("true", "false", "TRUE", "FALSE")) or "false"
        symbol = p.text("symbol", required=is_isolated.lower() == "true")
        validity = p.long("validity")
        p.finish()
        assert call.account_id is not None
        if validity is None:
            validity = self._token_validity_ms
        elif not 0 < validity <= _MAX_TOKEN_VALIDITY_MS:
            raise ApiError(-1130, "Data sent for parameter 'validity' is not valid.")
        if is_isolated.lower() == "true":
            assert symbol is not None
            scope = self._isolated_scope(call.account_id, symbol)
        elif symbol is not None:
            raise ApiError(-1106, "Parameter 'symbol' sent when not required.")
        else:
            scope = "CROSS"
        token = self._new_secret(_TOKEN_ALPHABET, 70)
        expires_ms = call.now_ms + validity
        self._tokens[token] = _Token(call.account_id, scope, expires_ms)
        return {"token": token, "expirationTime": expires_ms}

    def _isolated_scope(self, account_id: str, symbol: str) -> str:
        """The scope of an isolated account; overridden once the ledger knows the accounts."""
        return symbol

    def _listen_key_for(self, call: Call, key: str | None) -> _ListenKey:
        listen_key = self._listen_keys.get(key) if key is not None else None
        if listen_key is None or listen_key.account_id != call.account_id:
            raise ApiError(-1125, "This listenKey does not exist.")
        return listen_key

    def _h_listen_key_create(self, call: Call) -> Any:
        call.params.finish()
        assert call.account_id is not None
        expires_at = self._clock() + self._listen_key_validity
        listen_key = self._listen_key_by_account.get(call.account_id)
        if listen_key is None:
            listen_key = _ListenKey(
                self._new_secret(_LISTEN_KEY_ALPHABET, 64), call.account_id, expires_at
            )
            self._listen_keys[listen_key.key] = listen_key
            self._listen_key_by_account[call.account_id] = listen_key
        else:
            # An active key is returned again and extended (MRISK).
            listen_key.expires_at = expires_at
        return {"listenKey": listen_key.key}

    def _h_listen_key_keepalive(self, call: Call) -> Any:
        key = call.params.text("listenKey", required=True)
        call.params.finish()
        listen_key = self._listen_key_for(call, key)
        listen_key.expires_at = self._clock() + self._listen_key_validity
        return {}

    def _h_listen_key_close(self, call: Call) -> Any:
        key = call.params.text("listenKey")
        call.params.finish()
        assert call.account_id is not None
        if key is None:
            active = self._listen_key_by_account.get(call.account_id)
            key = active.key if active is not None else None
        listen_key = self._listen_key_for(call, key)
        self._remove_listen_key(listen_key)
        for conn in listen_key.streams:
            conn.close_soon(WSCloseCode.OK, "listen key closed")
        return {}

    # WebSockets

    def _refuse_ws(self, ip: str, now: float) -> web.Response | None:
        """Bans, the connection-attempt limit and the connection weight (2, API pool)."""
        reply = _Reply()
        try:
            banned_until = self._bans.banned_until(ip, now)
            if banned_until is not None:
                raise _RateLimitedError(self._ban_error(banned_until), banned_until)
            if self._connects.charge(f"connect|{ip}", 1, self._ws_connect_limit, now) is None:
                raise _RateLimitedError(
                    ApiError(
                        -1003,
                        f"Too many connection attempts; current limit is {self._ws_connect_limit} "
                        f"per {_interval_text(self._connects.window)}.",
                        429,
                    ),
                    self._connects.window_end(now),
                )
            self._charge(Pool.API_IP, "API_IP", ip, 2, ip, now)
        except _RateLimitedError as exc:
            reply.headers["Retry-After"] = str(retry_after_seconds(exc.until, now))
            reply.error(exc.error)
            if exc.error.status == 429:
                self._responses_429 += 1
            else:
                self._responses_418 += 1
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
                    if not conn.stalled(loop.time()):
                        with contextlib.suppress(ConnectionError):
                            await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    conn.pong(msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._connections.discard(conn)
            await conn.stop(_CLOSE_TIMEOUT)

    async def _serve_ws_api(self, request: web.Request) -> web.StreamResponse:
        refused = self._refuse_ws(request.remote or "unknown", self._clock())
        if refused is not None:
            return refused
        ws, conn = await self._accept(request, "ws-api")
        session = _WsApiSession(
            connected_ms=self.server_time_ms(),
            return_rate_limits=request.query.get("returnRateLimits", "true").lower() != "false",
        )
        self._sessions[conn] = session
        try:
            await self._read_loop(ws, conn, lambda text: self._ws_request(conn, session, text))
        finally:
            for sub in list(session.subscriptions.values()):
                self._drop_subscription(sub)
            del self._sessions[conn]
        return ws

    async def _serve_risk_stream(self, request: web.Request) -> web.StreamResponse:
        combined = "listen_key" not in request.match_info
        key = request.query.get("streams", "") if combined else request.match_info["listen_key"]
        listen_key = self._listen_keys.get(key)
        if listen_key is None:
            reply = _Reply()
            reply.error(ApiError(-1125, "This listenKey does not exist."))
            return reply.response()
        refused = self._refuse_ws(request.remote or "unknown", self._clock())
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

    def _ws_request(self, conn: Connection, session: _WsApiSession, text: str) -> None:
        self._ws_requests += 1
        now = self._clock()
        request_id: Any = None
        weight_used: int | None = None
        try:
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ApiError(-1135, "Invalid JSON Request") from None
            if not isinstance(message, dict):
                raise ApiError(-1135, "Invalid JSON Request")
            request_id = message.get("id")
            if not (request_id is None or isinstance(request_id, (int, str))) or isinstance(
                request_id, bool
            ):
                request_id = None
                raise ApiError(-1135, "JSON sent for parameter 'id' is not valid")
            method = message.get("method")
            if not isinstance(method, str) or not method:
                raise mandatory("method")
            params = message.get("params", {})
            if not isinstance(params, dict):
                raise ApiError(-1135, "Invalid 'params' in JSON request; expected an object.")
            name = method.removeprefix("v3/")
            weight, handler = self._ws_methods.get(name, (1, None))
            banned_until = self._bans.banned_until(conn.ip, now)
            if banned_until is not None:
                raise _RateLimitedError(self._ban_error(banned_until), banned_until)
            weight_used = self._charge(Pool.API_IP, "API_IP", conn.ip, weight, conn.ip, now)
            if handler is None:
                raise ApiError(
                    -1100,
                    f"Illegal characters found in parameter 'method'; unknown method '{method}'.",
                )
            failure = self._take_failure("WS", name)
            if failure is not None:
                raise failure
            return_rate_limits = params.get("returnRateLimits", session.return_rate_limits)
            result = handler(conn, session, params, self.server_time_ms())
            frame: dict[str, Any] = {"id": request_id, "status": 200, "result": result}
        except _RateLimitedError as exc:
            if exc.error.status == 429:
                self._responses_429 += 1
            else:
                self._responses_418 += 1
            frame = {
                "id": request_id,
                "status": exc.error.status,
                "error": {
                    "code": exc.error.code,
                    "msg": exc.error.msg,
                    "data": {
                        "serverTime": self.server_time_ms(),
                        "retryAfter": int(exc.until * 1000),
                    },
                },
            }
            return_rate_limits = session.return_rate_limits
        except ApiError as exc:
            frame = {
                "id": request_id,
                "status": exc.status,
                "error": {"code": exc.code, "msg": exc.msg},
            }
            return_rate_limits = session.return_rate_limits
        if return_rate_limits is not False:
            count = (
                weight_used
                if weight_used is not None
                else self._weights.used(f"API_IP|{conn.ip}", now)
            )
            frame["rateLimits"] = [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self._limits[Pool.API_IP],
                    "count": count,
                }
            ]
        conn.send(orjson.dumps(frame).decode())
        for after in session.after_reply:
            conn.send(after)
        session.after_reply.clear()

    def _ws_subscribe(
        self, conn: Connection, session: _WsApiSession, params: dict[str, Any], now_ms: int
    ) -> Any:
        token = params.get("listenToken")
        if not isinstance(token, str) or not token:
            raise mandatory("listenToken")
        record = self._tokens.get(token)
        if record is None or record.expires_ms <= now_ms:
            raise ApiError(-1209, "Invalid listen token.")
        account = (record.account_id, record.scope)
        existing = session.by_account.get(account)
        if existing is not None:
            if existing.token == token:
                raise ApiError(-2035, "User Data Stream subscription already active.")
            # Renewal: the same subscription carries on with the new token's expiry.
            existing.token = token
            existing.expires_ms = record.expires_ms
            return {"subscriptionId": existing.sid, "expirationTime": existing.expires_ms}
        if session.next_id > _MAX_SUBSCRIPTION_IDS:
            raise ApiError(-2042, "Maximum subscription ID reached for this connection.")
        sub = _Subscription(
            conn, session.next_id, record.account_id, record.scope, token, record.expires_ms
        )
        session.next_id += 1
        session.subscriptions[sub.sid] = sub
        session.by_account[account] = sub
        self._subscribers.setdefault(account, {})[conn] = sub
        return {"subscriptionId": sub.sid, "expirationTime": sub.expires_ms}

    def _ws_unsubscribe(
        self, conn: Connection, session: _WsApiSession, params: dict[str, Any], now_ms: int
    ) -> Any:
        sid = params.get("subscriptionId")
        if sid is None:
            subs = list(session.subscriptions.values())
        else:
            if isinstance(sid, bool) or not isinstance(sid, int):
                raise illegal("subscriptionId", "^[0-9]{1,20}$")
            sub = session.subscriptions.get(sid)
            if sub is None:
                raise ApiError(-2036, "User Data Stream subscription not active.")
            subs = [sub]
        for sub in subs:
            self._drop_subscription(sub)
            # The answer first, then eventStreamTerminated for each subscription (SPOT docs).
            session.after_reply.append(self._terminated_frame(sub.sid, now_ms))
        return {}

    def _ws_subscriptions(
        self, conn: Connection, session: _WsApiSession, params: dict[str, Any], now_ms: int
    ) -> Any:
        return [{"subscriptionId": sid} for sid in session.subscriptions]

    def _ws_status(
        self, conn: Connection, session: _WsApiSession, params: dict[str, Any], now_ms: int
    ) -> Any:
        return {
            "apiKey": None,
            "authorizedSince": None,
            "connectedSince": session.connected_ms,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": now_ms,
            "userDataStream": bool(session.subscriptions),
        }

    def _ws_time(
        self, conn: Connection, session: _WsApiSession, params: dict[str, Any], now_ms: int
    ) -> Any:
        return {"serverTime": now_ms}

    def _ws_ping(
        self, conn: Connection, session: _WsApiSession, params: dict[str, Any], now_ms: int
    ) -> Any:
        return {}


_WEIGHT_HEADERS: Final = {
    Pool.API_IP: "X-MBX-USED-WEIGHT-1M",
    Pool.SAPI_IP: "X-SAPI-USED-IP-WEIGHT-1M",
    Pool.SAPI_UID: "X-SAPI-USED-UID-WEIGHT-1M",
}
