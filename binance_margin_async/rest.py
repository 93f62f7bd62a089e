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
  reconcile.

Binance docs: https://developers.binance.com/docs/margin_trading/general-info
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import orjson
from yarl import URL

from .api import MarginAPI
from .clock import ServerClock
from .endpoints import SERVER_TIME, Endpoint, Security
from .errors import (
    BinanceAPIError,
    BinanceError,
    ExecutionStatusUnknown,
    InvalidResponse,
    InvalidTimestamp,
    IPBanned,
    ParameterError,
    TransportError,
    error_from_response,
)
from .ratelimit import Limiter, RateLimiter
from .signing import Signer, encode_params, load_signer, signed_query

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .models import MarginPair, OrderCountUsage
    from .stream import StreamConfig, UserDataStream

__all__ = ["MarginClient"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api.binance.com"
DEFAULT_WS_API_URL: Final = "wss://ws-api.binance.com:443/ws-api/v3"
DEFAULT_RISK_STREAM_URL: Final = "wss://margin-stream.binance.com"

# Codes that mean "the server may or may not have executed it" (PROTOCOL.md §6). For a GET that
# only costs a retry; for anything else the caller has to reconcile.
_UNKNOWN_OUTCOME_CODES: Final = frozenset({-1000, -1006, -1007})
# Codes worth retrying for an idempotent read: transient server-side trouble.
_RETRYABLE_READ_CODES: Final = frozenset({-1000, -1001, -1004, -1006, -1007, -1008, -3044})
_EXCERPT: Final = 200


def _account_label(api_key: str) -> str:
    """A stable, non-secret label for the limiter: a short digest of the API key, never the key."""
    digest = hashlib.sha256(b"binance-margin-async account\0" + api_key.encode()).hexdigest()
    return f"key-{digest[:16]}"


def _mask(api_key: str) -> str:
    """Show enough of an API key to tell keys apart in logs, never the whole thing."""
    return f"{api_key[:4]}…{api_key[-3:]}" if len(api_key) > 10 else "…"


class MarginClient(MarginAPI):
    """Async client for the Binance Margin REST SAPI and the margin user-data streams.

    ``api_secret`` (HMAC) or ``private_key`` (PEM text/bytes, Ed25519 or RSA, detected from the key)
    signs ``SIGNED`` endpoints; an API key alone is enough for market data and stream tokens. Pass
    one :class:`RateLimiter` (or any :class:`~.ratelimit.Limiter`) to every client of the process:
    IP budgets are shared, and UID budgets and order counts are kept per ``account`` label
    (default: a digest of the API key; give keys of one Binance account the same label, e.g. its
    UID). The client never reads environment variables or files.

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
        # Timeouts and retries
        timeout: float = 10.0,
        max_read_retries: int = 3,
        time_sync_interval: float = 300.0,
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
        self._signer: Signer | None = None
        if api_secret is not None or private_key is not None:
            self._signer = load_signer(
                api_secret=api_secret,
                private_key=private_key,
                private_key_password=private_key_password,
            )
        self._api_key = api_key
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

    def __repr__(self) -> str:
        key_type = self._signer.key_type if self._signer is not None else "NONE"
        return (
            f"MarginClient(api_key={_mask(self._api_key)!r}, key_type={key_type}, "
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

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this MarginClient is closed; create a new one")
        if self._session is None:
            session = aiohttp.ClientSession(timeout=self._timeout)
            # aiohttp silently resends GET/PUT/DELETE once when a kept-alive connection drops
            # mid-request. For a cancel that means a second DELETE after the first one executed
            # (-2011 for a cancel that worked). Our own policy retries reads and reports
            # everything else as ExecutionStatusUnknown, so switch aiohttp's off. There is no
            # public switch; the attribute exists since aiohttp 3.9 (getattr keeps it harmless).
            if hasattr(session, "_retry_connection"):
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
        from .stream import UserDataStream

        return UserDataStream(
            self,
            cross=cross,
            isolated_symbols=isolated_symbols,
            risk=risk,
            mirror=mirror,
            config=config,
        )

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
            raise InvalidResponse(status, body[:_EXCERPT].decode("utf-8", "replace"))
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
            except TransportError as exc:
                if idempotent and attempt < self._max_read_retries:
                    attempt += 1
                    await self._backoff(attempt)
                    continue
                if not idempotent and exc.request_may_have_been_sent:
                    raise ExecutionStatusUnknown(
                        str(exc), client_order_id=client_order_id, endpoint=endpoint.name
                    ) from exc
                raise
            self.limiter.on_response(endpoint, status, resp_headers, account=self._account)
            if 200 <= status < 300:
                return self._loads(status, body)
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
                ) from error
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
        """The one place where transport exceptions are translated."""
        session = self._session if self._session is not None else self._get_session()
        try:
            # Not `async with`: read() already releases the connection, and the context manager
            # costs a measurable slice of a request on this hot path.
            resp = await session.request(method, url, headers=headers)
            try:
                return resp.status, resp.headers, await resp.read()
            finally:
                resp.release()
        except aiohttp.ClientConnectorError as exc:
            # The TCP connection never opened: nothing reached the server.
            raise TransportError(
                f"{method} {endpoint.path}: cannot connect ({exc.os_error})",
                request_may_have_been_sent=False,
            ) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc)
            raise TransportError(
                f"{method} {endpoint.path}: {reason or type(exc).__name__}",
                request_may_have_been_sent=True,
            ) from exc

    def _error(self, status: int, headers: Any, body: bytes) -> BinanceError:
        error = error_from_response(status, headers, body, now=time.time())
        if isinstance(error, IPBanned):
            self.limiter.ban(error.until)
        return error

    @staticmethod
    def _loads(status: int, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidResponse(status, body[:_EXCERPT].decode("utf-8", "replace")) from None

    @staticmethod
    def _retryable_read(error: BinanceError) -> bool:
        if isinstance(error, BinanceAPIError):
            return error.status >= 500 or error.code in _RETRYABLE_READ_CODES
        return isinstance(error, InvalidResponse) and error.status >= 500

    @staticmethod
    def _outcome_unknown(status: int, error: BinanceError) -> bool:
        if status >= 500:
            return True
        return isinstance(error, BinanceAPIError) and error.code in _UNKNOWN_OUTCOME_CODES

    @staticmethod
    async def _backoff(attempt: int) -> None:
        # Full jitter (AWS architecture blog): spreads retries of many clients hitting one outage.
        await asyncio.sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))
