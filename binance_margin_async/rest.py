"""`MarginClient`: the aiohttp shell around the pure request core.

Everything that decides *what* goes on the wire is pure and lives elsewhere: the endpoint table
(:mod:`.endpoints`), parameter validation and request building (:mod:`.api`, :mod:`.params`),
percent-encoding and signatures (:mod:`.signing`), the clock offset (:mod:`.clock`) and the limiter
core (:mod:`.ratelimit`). This module only sends bytes, reads bytes, and applies the retry policy:

* the query is percent-encoded once, signed over exactly those bytes, and sent as those bytes
  (``yarl.URL(..., encoded=True)`` stops aiohttp from re-quoting it, which would break the
  signature);
* every request passes the shared :class:`~.ratelimit.RateLimiter` first and feeds it the
  response headers afterwards;
* ``-1021`` resyncs the clock and re-signs once: the server rejected the request before
  executing it;
* idempotent ``GET`` requests retry on 5xx and network errors with bounded, jittered backoff;
  nothing else is retried blindly. A non-``GET`` whose outcome is unknown raises
  :class:`~.errors.ExecutionStatusUnknown` carrying the client order id, so the caller can
  reconcile; one cancelled while it may be on the wire gets the id as a note on its
  ``CancelledError``;
* redirects are never followed (:class:`~.errors.RedirectRefused`), bodies are read in chunks up
  to ``max_response_bytes``, and a 2xx body shaped like an error (``{"code": <0, "msg"}``) raises
  the mapped error;
* transport errors are rebuilt as :class:`~.errors.TransportError` with a redacted message and no
  chained aiohttp exception (those carry the request, headers included).

Binance docs: https://developers.binance.com/docs/margin_trading/general-info
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
import warnings
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import orjson
from yarl import URL

# The stream and trading machinery (websockets, the mirror stream.py imports lazily for
# mirror=True) comes with this module, not with the first `user_stream()` or
# `trading_session()`: that import would block the running event loop for tens of ms.
from . import mirror as _mirror  # noqa: F401
from . import params as P
from ._context import request_context, unknown_outcome_hint
from ._special import spot_params
from .api import MarginAPI
from .clock import ServerClock
from .endpoints import SERVER_TIME, SPOT_ORDER_ENDPOINTS, Endpoint, Security
from .errors import (
    UNKNOWN_OUTCOME_CODES,
    BinanceAPIError,
    BinanceError,
    ExecutionStatusUnknown,
    InvalidResponse,
    InvalidTimestamp,
    IPBanned,
    ParameterError,
    RedirectRefused,
    ResponseTooLarge,
    TransportError,
    error_from_response,
)
from .params import generate_client_order_id
from .ratelimit import Limiter, RateLimiter
from .redaction import mask, redact
from .signing import Signer, encode_params, load_signer, signed_query
from .stream import UserDataStream
from .symbols import SymbolInfo, SymbolRules
from .trading import TradingSession

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .models import MarginPair, OrderCountUsage
    from .stream import StreamConfig
    from .trading import TradingSessionConfig

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "MarginClient", "new_client_order_id"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api.binance.com"
DEFAULT_WS_API_URL: Final = "wss://ws-api.binance.com:443/ws-api/v3"
DEFAULT_RISK_STREAM_URL: Final = "wss://margin-stream.binance.com"

# Codes worth retrying for an idempotent read: transient server-side trouble.
_RETRYABLE_READ_CODES: Final = frozenset({-1000, -1001, -1004, -1006, -1007, -1008, -3044})
_EXCERPT: Final = 800
#: Default ``max_response_bytes``: 16 MiB. Binance's largest margin answers (``allPairs``, a
#: margin account listing every asset) stay well under 1 MiB.
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
_CHUNK: Final = 64 * 1024
_CANCEL_REPLACE: Final = SPOT_ORDER_ENDPOINTS["cancel_replace_order"]


def _with_context(hint: str, params: list[tuple[str, str]]) -> str:
    context = request_context(params)
    return f"{hint} (request: {context})" if context else hint


def new_client_order_id() -> str:
    """A fresh client order id (``"bma"`` + 32 random hex digits), for ``new_client_order_id=``.

    Generate it before placing an order and keep it: if the call is cancelled or times out after
    the request may have left, ``get_order(symbol, orig_client_order_id=...)`` tells whether the
    order exists (``NoSuchOrder`` if it never arrived). The methods generate the same kind of id
    when none is given.

    Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Order
    """
    return generate_client_order_id()


def _account_label(api_key: str) -> str:
    """A stable, non-secret label for the limiter: a short digest of the API key, never the key."""
    digest = hashlib.sha256(b"binance-margin-async account\0" + api_key.encode()).hexdigest()
    return f"key-{digest[:16]}"


class MarginClient(MarginAPI):
    """Async client for the Binance Margin REST SAPI and the margin user-data streams.

    ``api_secret`` (HMAC) or ``private_key`` (PEM text/bytes, Ed25519 or RSA, detected from the key)
    signs ``SIGNED`` endpoints; an API key alone is enough for market data and stream tokens. Pass
    one :class:`RateLimiter` (or any :class:`~.ratelimit.Limiter`) to every client of the process:
    IP budgets are shared, and UID budgets and order counts are kept per ``account`` label
    (default: a digest of the API key; give keys of one Binance account the same label, e.g. its
    UID). The client never reads environment variables or files.

    ``special_key=True`` says the key is a margin special key (``create_special_key``): its orders
    go to the spot routes ``/api/v3/order``, ``/api/v3/orderList/*`` and ``/api/v3/openOrders``
    (charged to the ``/api`` pool with the spot weights and to the order counts) instead of
    ``/sapi/v1/margin/*``; the key itself selects the margin account (cross, or the isolated pair
    it was created for), so ``is_isolated`` is not sent. :meth:`trading_session` trades with the
    same key over the WebSocket API.

    Use it as an async context manager; it owns its aiohttp session unless one is passed in. (A
    session you pass is used as is: aiohttp may then resend a GET/PUT/DELETE once by itself when a
    kept-alive connection drops, which the client's own session does not allow.)

    Docs: https://developers.binance.com/docs/margin_trading/general-info
    """

    def __init__(
        self,
        api_key: str,
        api_secret: str | None = None,
        *,
        private_key: str | bytes | None = None,
        private_key_password: str | bytes | None = None,
        base_url: str = DEFAULT_BASE_URL,
        ws_api_url: str = DEFAULT_WS_API_URL,
        risk_stream_url: str = DEFAULT_RISK_STREAM_URL,
        recv_window: int = 5000,
        limiter: Limiter | None = None,
        account: str | None = None,
        session: aiohttp.ClientSession | None = None,
        special_key: bool = False,
        # Symbol rules (get_symbol_info, round=True): seconds they are trusted before a refresh
        symbol_rules_max_age: float = 3600.0,
        # Timeouts and retries
        timeout: float = 10.0,
        max_read_retries: int = 3,
        time_sync_interval: float = 300.0,
        # Limits
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if not isinstance(api_key, str) or not api_key or api_key.strip() != api_key:
            raise ParameterError("api_key", "must be a non-empty string without whitespace")
        if isinstance(recv_window, bool) or not isinstance(recv_window, int):
            raise ParameterError("recv_window", "must be an int number of milliseconds")
        if not 1 <= recv_window <= 60_000:
            raise ParameterError("recv_window", "must be between 1 and 60000 ms")
        if timeout <= 0:
            raise ParameterError("timeout", "must be positive")
        if max_read_retries < 0:
            raise ParameterError("max_read_retries", "must be >= 0")
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise ParameterError("max_response_bytes", "must be a positive int number of bytes")
        self._signer: Signer | None = None
        if api_secret is not None or private_key is not None:
            self._signer = load_signer(
                api_secret=api_secret,
                private_key=private_key,
                private_key_password=private_key_password,
            )
        self._api_key = api_key
        # Exact strings redact() masks in every message this client builds from foreign text.
        self._secrets = (api_key,) if api_secret is None else (api_key, api_secret)
        self._max_response_bytes = max_response_bytes
        self._headers: Final = {"X-MBX-APIKEY": api_key}
        self.base_url = base_url.rstrip("/")
        self.ws_api_url = ws_api_url
        self.risk_stream_url = risk_stream_url.rstrip("/")
        if account is not None and (not isinstance(account, str) or not account):
            raise ParameterError("account", "must be a non-empty label")
        self.limiter: Limiter = limiter if limiter is not None else RateLimiter()
        self._account = account if account is not None else _account_label(api_key)
        self._recv_window = str(recv_window)
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_read_retries = max_read_retries
        self._clock = ServerClock(refresh_interval=time_sync_interval)
        self._clock_synced = False
        self._sync_lock = asyncio.Lock()
        self._closed = False
        self._special_key = P.boolean("special_key", special_key)
        self._symbol_rules = SymbolRules(max_age=symbol_rules_max_age)
        # The loop the session was created on: aiohttp sessions cannot move between loops.
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        key_type = self._signer.key_type if self._signer is not None else "NONE"
        return (
            f"MarginClient(api_key={mask(self._api_key)!r}, key_type={key_type}, "
            f"base_url={self.base_url!r})"
        )

    @property
    def account(self) -> str:
        """This client's account label in the limiter (UID budgets and order counts)."""
        return self._account

    # Lifecycle

    async def __aenter__(self) -> MarginClient:
        self._get_session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        self._closed = True
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # getattr: __init__ may have raised (e.g. a bad key) before the session slot existed.
        session = getattr(self, "_session", None)
        if session is None or not self._owns_session or session.closed:
            return
        _warn(
            f"{self!r} was never closed: use `async with MarginClient(...) as client:` "
            "or `await client.close()` before its event loop ends",
            ResourceWarning,
            source=self,
        )
        # Our warning says it all: close the session now, so that aiohttp does not add its own
        # "Unclosed client session"/"Unclosed connector" noise.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(session.close(), loop)
            return
        connector = session.connector
        session.detach()
        if connector is not None:
            # With its loop closed, the connector's close() has no transport left to wait for:
            # it finishes in its first step.
            closing = connector.close()
            if asyncio.iscoroutine(closing):
                with contextlib.suppress(StopIteration):
                    closing.send(None)
                closing.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this MarginClient is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is not None and loop is not self._loop:
            raise RuntimeError(
                "this MarginClient is bound to the event loop it was first used on (its aiohttp "
                "session lives there) and cannot be used from another one, e.g. a second "
                "asyncio.run(): create the client inside the coroutine that uses it"
            )
        self._loop = loop
        if self._session is None:
            session = aiohttp.ClientSession(timeout=self._timeout)
            # aiohttp silently resends GET/PUT/DELETE once when a kept-alive connection drops
            # mid-request. For a cancel that means a second DELETE after the first one executed
            # (-2011 for a cancel that worked). Our own policy retries reads and reports
            # everything else as ExecutionStatusUnknown, so switch aiohttp's off. There is no
            # public switch: `_retry_connection` exists since aiohttp 3.11.0 (our floor). A
            # release without it would bring back the silent resend, so refuse to run instead.
            if not hasattr(session, "_retry_connection"):
                raise RuntimeError(
                    f"aiohttp {aiohttp.__version__} has no ClientSession._retry_connection: "
                    "cannot disable its silent resend of DELETE/PUT; use aiohttp 3.11 to 3.14"
                )
            session._retry_connection = False
            self._session = session
        return self._session

    # Streams

    def user_stream(
        self,
        *,
        cross: bool = True,
        isolated_symbols: Iterable[str] = (),
        risk: bool = False,
        mirror: bool = False,
        config: StreamConfig | None = None,
    ) -> UserDataStream:
        """Create a :class:`~.stream.UserDataStream` for this client's accounts.

        ``cross`` follows the cross margin account, ``isolated_symbols`` one isolated account
        each (all on one WebSocket API connection); ``risk`` adds the margin risk stream
        (margin calls, liabilities; cross only); ``mirror`` keeps an :class:`~.mirror.AccountMirror`
        up to date. ``config`` tunes intervals (tests shrink them). Nothing connects until
        ``async with stream``.

        Docs: https://developers.binance.com/docs/margin_trading/trade-data-stream
        """
        return UserDataStream(
            self,
            cross=cross,
            isolated_symbols=isolated_symbols,
            risk=risk,
            mirror=mirror,
            config=config,
        )

    def trading_session(self, *, config: TradingSessionConfig | None = None) -> TradingSession:
        """Create a :class:`~.trading.TradingSession`: this client's special key trading over one
        WebSocket API connection (``ws_api_url``), with :meth:`new_order` and the other order
        methods under the same names and result types. Nothing connects until ``async with``.

        Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/trading-requests
        """
        return TradingSession(self, config=config)

    @property
    def special_key(self) -> bool:
        """Whether orders take the special-key routes (``/api/v3``) instead of SAPI."""
        return self._special_key

    # Symbol rules cache (used by get_symbol_info and round=True)

    def _cached_symbol_rules(self, symbol: str) -> SymbolInfo | None:
        return self._symbol_rules.get(symbol, time.time())

    def _store_symbol_rules(self, symbols: Sequence[SymbolInfo]) -> None:
        self._symbol_rules.store(symbols, time.time())

    # Clock

    @property
    def clock(self) -> ServerClock:
        """The server-time offset estimate used to stamp signed requests."""
        return self._clock

    async def sync_clock(self) -> None:
        """Measure the server-time offset with ``GET /api/v3/time`` (corrected by RTT/2).

        Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints
        """
        async with self._sync_lock:
            await self._sync_clock_locked()

    async def _sync_clock_locked(self) -> None:
        await self.limiter.acquire(SERVER_TIME, SERVER_TIME.weight, account=self._account)
        url = URL(self.base_url + SERVER_TIME.path, encoded=True)
        sent = time.time()
        status, headers, body = await self._send("GET", url, SERVER_TIME, None)
        received = time.time()
        self.limiter.on_response(SERVER_TIME, status, headers, account=self._account)
        if status != 200:
            raise self._error(status, headers, body)
        data = self._loads(status, body)
        server_time = data.get("serverTime") if isinstance(data, dict) else None
        if not isinstance(server_time, int):
            excerpt = body[:_EXCERPT].decode("utf-8", "replace")
            raise InvalidResponse(status, redact(excerpt, self._secrets))
        self._clock.observe(sent, received, server_time)
        self._clock_synced = True

    async def _ensure_clock(self) -> None:
        if self._clock_synced and not self._clock.is_stale(time.time()):
            return
        async with self._sync_lock:
            # Another task may have synced while this one waited for the lock.
            if self._clock_synced and not self._clock.is_stale(time.time()):
                return
            try:
                await self._sync_clock_locked()
            except BinanceError as exc:
                if not self._clock_synced:
                    raise
                # A stale offset is still far better than none; the -1021 path corrects it.
                log.warning("clock refresh failed, keeping the previous offset: %s", exc)

    # The request core

    async def _call(
        self,
        endpoint: Endpoint,
        params: list[tuple[str, str]],
        *,
        client_order_id: str | None = None,
    ) -> Any:
        """Send one request for ``endpoint`` and return its decoded JSON body."""
        if self._special_key:
            spot = SPOT_ORDER_ENDPOINTS.get(endpoint.name)
            if spot is not None:
                params = spot_params(endpoint.name, params)
                endpoint = spot
        elif endpoint is _CANCEL_REPLACE:
            raise ParameterError(
                "special_key", "cancel_replace_order exists only for special keys (/api/v3)"
            )
        security = endpoint.security
        if security is Security.SIGNED and self._signer is None:
            raise ParameterError(
                "api_secret",
                f"{endpoint.name} is a SIGNED endpoint: pass api_secret or private_key",
            )
        weight = endpoint.weight_for(params, self.limiter.trading_symbols)
        headers = self._headers if security is not Security.NONE else None
        idempotent = endpoint.method == "GET"
        resynced = False
        attempt = 0
        while True:
            if security is Security.SIGNED:
                if not self._clock_synced or self._clock.is_stale(time.time()):
                    await self._ensure_clock()
                # Stamp after the limiter: a request that waited for budget longer than
                # recvWindow would otherwise be rejected with -1021, its weight spent for nothing.
                await self.limiter.acquire(endpoint, weight, account=self._account)
                query = self._signed_query(params)
            else:
                await self.limiter.acquire(endpoint, weight, account=self._account)
                query = encode_params(params)
            url = URL(
                f"{self.base_url}{endpoint.path}?{query}"
                if query
                else self.base_url + endpoint.path,
                encoded=True,
            )
            try:
                status, resp_headers, body = await self._send(
                    endpoint.method, url, endpoint, headers
                )
            except asyncio.CancelledError as exc:
                if not idempotent:
                    exc.add_note(_cancelled_note(endpoint, client_order_id))
                raise
            except ResponseTooLarge as exc:
                if idempotent:
                    raise
                # The write reached the server and got an answer we refused to read.
                raise ExecutionStatusUnknown(
                    str(exc),
                    client_order_id=client_order_id,
                    endpoint=endpoint.name,
                    status=exc.status,
                ) from exc
            except TransportError as exc:
                if idempotent and attempt < self._max_read_retries:
                    attempt += 1
                    await self._backoff(attempt)
                    continue
                if not idempotent and exc.request_may_have_been_sent:
                    raise ExecutionStatusUnknown(
                        str(exc),
                        client_order_id=client_order_id,
                        endpoint=endpoint.name,
                        hint=_with_context(unknown_outcome_hint(endpoint.name), params),
                    ) from exc
                raise
            self.limiter.on_response(endpoint, status, resp_headers, account=self._account)
            if 200 <= status < 300:
                data = self._loads(status, body)
                # Binance's errors are negative codes; some gateways answer them with a 200.
                if type(data) is not dict or "code" not in data or not _is_error(data):
                    return data
            error = self._error(status, resp_headers, body)
            if isinstance(error, InvalidTimestamp) and not resynced:
                # Rejected before execution: re-signing with a fresh offset is safe for any method.
                resynced = True
                self._clock_synced = False
                await self._ensure_clock()
                continue
            if idempotent and attempt < self._max_read_retries and self._retryable_read(error):
                attempt += 1
                await self._backoff(attempt)
                continue
            if not idempotent and self._outcome_unknown(status, error):
                raise ExecutionStatusUnknown(
                    f"{endpoint.method} {endpoint.path}: {error}",
                    client_order_id=client_order_id,
                    endpoint=endpoint.name,
                    status=status,
                    code=error.code if isinstance(error, BinanceAPIError) else None,
                    hint=_with_context(unknown_outcome_hint(endpoint.name), params),
                ) from error
            context = request_context(params)
            if context:
                # Binance's text names no parameter ("-1121 Invalid symbol."); the request did.
                error.args = (f"{error.args[0]} [{endpoint.name}: {context}]",)
            raise error

    def _on_order_count_usage(self, usage: list[OrderCountUsage]) -> None:
        """Teach the shared limiter the account's order-count limits and current counts.

        Only an answer that lists ``ORDERS`` limits replaces the limiter's order windows: one
        without them (empty, or other types only) would otherwise drop every order window.
        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Current-Margin-Order-Count-Usage
        """
        if any(entry.rate_limit_type == "ORDERS" for entry in usage):
            self.limiter.set_order_limits([entry.raw for entry in usage], account=self._account)

    def _on_all_pairs(self, pairs: list[MarginPair]) -> None:
        """Teach the shared limiter how many symbols trade: the weight of ``get_open_orders()``
        without ``symbol``.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
        """
        if pairs:
            self.limiter.set_trading_symbols(len(pairs))

    def _signed_query(self, params: list[tuple[str, str]]) -> str:
        assert self._signer is not None  # checked in _call before the loop
        stamped = [
            *params,
            ("recvWindow", self._recv_window),
            ("timestamp", str(self._clock.timestamp_ms(time.time()))),
        ]
        return signed_query(self._signer, encode_params(stamped))

    async def _send(
        self,
        method: str,
        url: URL,
        endpoint: Endpoint,
        headers: dict[str, str] | None,
    ) -> tuple[int, Any, bytes]:
        """The one place where transport exceptions are translated.

        Raises :class:`RedirectRefused` for a 3xx, :class:`ResponseTooLarge` past
        ``max_response_bytes`` and :class:`TransportError` when no response arrived.
        """
        session = self._session
        if session is None or self._loop is not asyncio.get_running_loop():
            session = self._get_session()  # creates it, or explains the loop it is bound to
        try:
            # Not `async with`: read() already releases the connection, and the context manager
            # costs a measurable slice of a request on this hot path.
            resp = await session.request(method, url, headers=headers, allow_redirects=False)
            try:
                status = resp.status
                if 300 <= status < 400:
                    raise RedirectRefused(status, _location_host(resp.headers.get("Location")))
                length = resp.content_length
                # Content-Length bounds what read() takes, unless the body is compressed (aiohttp
                # inflates it, and a small gzip can inflate to gigabytes): then count chunks.
                if length is not None and "Content-Encoding" not in resp.headers:
                    if length > self._max_response_bytes:
                        raise ResponseTooLarge(status, "", self._max_response_bytes)
                    return status, resp.headers, await resp.read()
                return status, resp.headers, await self._read_capped(resp)
            finally:
                resp.release()
        except aiohttp.ClientConnectorError as exc:
            # The TCP connection never opened: nothing reached the server.
            error = TransportError(
                self._transport_text(method, endpoint, "cannot connect", exc),
                request_may_have_been_sent=False,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = TransportError(
                self._transport_text(method, endpoint, type(exc).__name__, exc),
                request_may_have_been_sent=True,
            )
        # Raised outside the handlers, so that neither __cause__ nor __context__ holds aiohttp's
        # exception: its request info carries every header, the API key included.
        raise error

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        """Read the body in chunks, stopping as soon as it exceeds ``max_response_bytes``."""
        limit = self._max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                # The rest stays unread: close the connection rather than drain it.
                resp.close()
                first = chunks[0] if chunks else chunk
                raise ResponseTooLarge(
                    resp.status, first[:_EXCERPT].decode("utf-8", "replace"), limit
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _transport_text(
        self, method: str, endpoint: Endpoint, what: str, exc: BaseException
    ) -> str:
        """A transport failure as text: aiohttp's message without URLs' queries or secrets."""
        detail = redact(str(exc), self._secrets)
        return f"{method} {endpoint.path}: {what}" + (f" ({detail})" if detail else "")

    def _error(self, status: int, headers: Any, body: bytes) -> BinanceError:
        # Redacted of this client's own key too: a hostile or broken server may echo it.
        body = redact(body.decode("utf-8", "replace"), self._secrets).encode()
        error = error_from_response(status, headers, body, now=time.time())
        if isinstance(error, IPBanned):
            self.limiter.ban(error.until)
        return error

    def _loads(self, status: int, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            excerpt = body[:_EXCERPT].decode("utf-8", "replace")
            error = InvalidResponse(status, redact(excerpt, self._secrets))
        raise error  # outside the handler: no orjson error in __context__

    @staticmethod
    def _retryable_read(error: BinanceError) -> bool:
        if isinstance(error, BinanceAPIError):
            return error.status >= 500 or error.code in _RETRYABLE_READ_CODES
        return isinstance(error, InvalidResponse) and error.status >= 500

    @staticmethod
    def _outcome_unknown(status: int, error: BinanceError) -> bool:
        if status >= 500:
            return True
        return isinstance(error, BinanceAPIError) and error.code in UNKNOWN_OUTCOME_CODES

    @staticmethod
    async def _backoff(attempt: int) -> None:
        # Full jitter (AWS architecture blog): spreads retries of many clients hitting one outage.
        await asyncio.sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))


def _is_error(data: dict[str, Any]) -> bool:
    """``{"code": <negative int>, "msg": str}``: Binance's error shape, whatever the status."""
    code = data.get("code")
    return type(code) is int and code < 0 and isinstance(data.get("msg"), str)


def _location_host(location: str | None) -> str | None:
    """``host[:port]`` of a ``Location`` header; ``None`` for a relative or missing one.

    Never the user-info part of the URL, nor its path or query.
    """
    if not location:
        return None
    try:
        url = URL(location)
    except ValueError:
        return None
    if url.host is None:
        return None
    return url.host if url.explicit_port is None else f"{url.host}:{url.explicit_port}"


def _cancelled_note(endpoint: Endpoint, client_order_id: str | None) -> str:
    """The note added to the ``CancelledError`` of a write that may have been sent."""
    if client_order_id is not None:
        how = f"newClientOrderId={client_order_id}: query the order by it before retrying"
    else:
        how = "check the account's history before retrying"
    return (
        f"binance_margin_async: {endpoint.method} {endpoint.path} was cancelled after it may "
        f"have been sent; {how}"
    )
