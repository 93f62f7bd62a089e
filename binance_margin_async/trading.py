"""`TradingSession`: a margin special key trading over one WebSocket API connection.

The low-latency path Binance offers margin traders (PROTOCOL.md §10): a *special key*
(``MarginClient.create_special_key``) places, replaces and cancels orders of the margin account it
was created for through the spot WebSocket API methods (``order.place``, ``order.cancel``,
``order.status``, ``order.cancelReplace``, ``orderList.place.oco|oto|otoco``, ``orderList.cancel``,
``openOrders.status``, ``openOrders.cancelAll``), and receives that account's own events on the
same connection (``userDataStream.subscribe``).

* The order methods are :class:`~.api.MarginAPI`'s own (same names, arguments, validation and
  result types as :class:`~.rest.MarginClient`); only the transport differs.
* Authentication: an Ed25519 key logs the connection on once (``session.logon``) and then sends
  only ``timestamp``; HMAC and RSA keys (Binance allows logon for Ed25519 only) sign every request
  (``apiKey`` + ``signature`` over the parameters sorted by name).
* Requests are pipelined (many in flight, answers matched by id) and pass the shared limiter
  (the ``/api`` IP pool; orders also the order counts); every answer's ``rateLimits`` feeds it.
* A write whose answer is lost is never resent: it raises
  :class:`~.errors.ExecutionStatusUnknown` with its client order id.
* The connection is replaced make-before-break before Binance's 24 h cut and on
  ``serverShutdown``; after an unplanned drop it reconnects with backoff, logs on and subscribes
  again, and reports a :class:`~.events.StreamGap` for the events it may have missed. Problems it
  cannot repair (e.g. the key no longer logs on) go to :meth:`TradingSession.on_error`.

The decisions live in the pure :mod:`._tradecore`; this module only moves frames.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/trading-requests
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, Final, Generic, ParamSpec, TypeVar, overload

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ._special import spot_params
from ._tradecore import DEFAULT_MAX_AGE, Answer, TradingCore, signed_params
from ._wslink import RedactingLogger
from .api import MarginAPI
from .endpoints import SPOT_ORDER_ENDPOINTS, Endpoint
from .errors import (
    BinanceAPIError,
    BinanceError,
    InvalidTimestamp,
    ParameterError,
    StreamError,
    TransportError,
)
from .events import StreamGap, decode_event
from .symbols import SymbolInfo

if TYPE_CHECKING:
    from .rest import MarginClient

__all__ = ["TradingSession", "TradingSessionConfig"]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_E = TypeVar("_E")

#: ``MarginAPI`` method → WebSocket API method (spot WebSocket API trading requests).
WS_METHODS: Final[Mapping[str, str]] = {
    "new_order": "order.place",
    "cancel_order": "order.cancel",
    "get_order": "order.status",
    "cancel_replace_order": "order.cancelReplace",
    "new_oco": "orderList.place.oco",
    "new_oto": "orderList.place.oto",
    "new_otoco": "orderList.place.otoco",
    "cancel_order_list": "orderList.cancel",
    "get_open_orders": "openOrders.status",
    "cancel_open_orders": "openOrders.cancelAll",
}
# Requests that change state: a lost answer means "unknown", never "retry".
_WRITES: Final = frozenset(
    name for name in WS_METHODS if name not in ("get_order", "get_open_orders")
)


@dataclass(frozen=True, slots=True)
class _Route:
    """Everything a ``MarginAPI`` order method needs on the WebSocket API, looked up once."""

    endpoint: Endpoint  # the spot endpoint: weights, pool, order counts
    method: str
    write: bool


_ROUTES: Final[Mapping[str, _Route]] = {
    name: _Route(SPOT_ORDER_ENDPOINTS[name], method, name in _WRITES)
    for name, method in WS_METHODS.items()
}
# session.logon, userDataStream.subscribe(.signature): weight 2 each (spot WebSocket API).
_SESSION_WEIGHT: Final = 2
_NO_HEADERS: Final[Mapping[str, str]] = {}

ErrorCallback = Callable[[Exception], object]


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingSessionConfig:
    """Tuning of a :class:`TradingSession` (defaults suit production; tests shrink them).

    Args:
        account: the margin account the special key trades, as events name it: ``"CROSS"`` or
            the isolated symbol the key was created for.
        user_data: subscribe the account's own events (``True``/``False``); ``None`` subscribes
            when a callback is registered with :meth:`TradingSession.on` before ``async with``.
        request_timeout: seconds to wait for an answer; a write without one raises
            :class:`~.errors.ExecutionStatusUnknown`.
        max_connection_age: seconds after which the connection is replaced (Binance cuts at 24 h).
        overlap: seconds the old connection stays open after a planned move, for answers and
            events still in flight on it (duplicates are dropped).
        reconnect_min, reconnect_max: bounds of the jittered exponential reconnect backoff.
        open_timeout: seconds for the WebSocket handshake.
        max_backlog: events waiting for callbacks before an overflow is reported.
    """

    account: str = "CROSS"
    user_data: bool | None = None
    request_timeout: float = 10.0
    max_connection_age: float = DEFAULT_MAX_AGE
    overlap: float = 1.0
    reconnect_min: float = 0.1
    reconnect_max: float = 10.0
    open_timeout: float = 10.0
    max_backlog: int = 100_000


class _Link:
    """One WebSocket API connection of the session."""

    __slots__ = ("dead", "ident", "logged_on", "reader", "subscribed", "ws")

    def __init__(self, ident: int, ws: ClientConnection) -> None:
        self.ident = ident
        self.ws = ws
        self.logged_on = False
        self.subscribed = False
        self.dead = False
        self.reader: asyncio.Task[None] | None = None


class _Orders(MarginAPI):
    """``MarginAPI``'s order methods with the WebSocket API as transport (REST for the rest)."""

    __slots__ = ("_session",)

    def __init__(self, session: TradingSession) -> None:
        self._session = session

    def _call(
        self,
        endpoint: Endpoint,
        params: list[tuple[str, str]],
        *,
        client_order_id: str | None = None,
    ) -> Coroutine[Any, Any, Any]:
        # Only the order methods are forwarded, and get_symbol_info goes to the client: every
        # endpoint reaching here has a WebSocket API method. A plain function handing back the
        # request's coroutine: one coroutine frame less to resume on every answer.
        return self._session._request(_ROUTES[endpoint.name], params, client_order_id)

    async def get_symbol_info(self, symbol: str, *, refresh: bool = False) -> SymbolInfo:
        # One cache per client: the session and REST round with the same rules.
        return await self._session.client.get_symbol_info(symbol, refresh=refresh)


class _Forward(Generic[_P, _R]):
    """A :class:`~.api.MarginAPI` method exposed on the session, running on its ``_Orders``."""

    def __init__(self, method: Callable[Concatenate[MarginAPI, _P], Coroutine[Any, Any, _R]]):
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Forward[_P, _R]: ...
    @overload
    def __get__(
        self, obj: TradingSession, owner: type[Any]
    ) -> Callable[_P, Coroutine[Any, Any, _R]]: ...
    def __get__(
        self, obj: TradingSession | None, owner: type[Any]
    ) -> _Forward[_P, _R] | Callable[_P, Coroutine[Any, Any, _R]]:
        if obj is None:
            return self
        return functools.partial(self._method, obj._orders)


class TradingSession:
    """Orders of a margin special key over one WebSocket API connection; async context manager.

    Create it with :meth:`MarginClient.trading_session() <.rest.MarginClient.trading_session>`
    on a client holding the special key (its ``api_key`` and ``api_secret``/``private_key``);
    ``async with`` connects, logs on (Ed25519) and subscribes the key's own events when wanted.

    ``new_order``, ``cancel_order``, ``get_order``, ``cancel_replace_order``, ``new_oco``,
    ``new_oto``, ``new_otoco``, ``cancel_order_list``, ``get_open_orders`` and
    ``cancel_open_orders`` take the arguments of the :class:`~.rest.MarginClient` methods of the
    same name and return the same types (``round=True`` included); ``is_isolated`` is not sent:
    the key selects its account.

    Docs: https://developers.binance.com/docs/margin_trading/trade/Create-Special-Key-of-Low-Latency-Trading
    """

    new_order = _Forward(MarginAPI.new_order)
    cancel_order = _Forward(MarginAPI.cancel_order)
    get_order = _Forward(MarginAPI.get_order)
    cancel_replace_order = _Forward(MarginAPI.cancel_replace_order)
    new_oco = _Forward(MarginAPI.new_oco)
    new_oto = _Forward(MarginAPI.new_oto)
    new_otoco = _Forward(MarginAPI.new_otoco)
    cancel_order_list = _Forward(MarginAPI.cancel_order_list)
    get_open_orders = _Forward(MarginAPI.get_open_orders)
    cancel_open_orders = _Forward(MarginAPI.cancel_open_orders)

    def __init__(self, client: MarginClient, *, config: TradingSessionConfig | None = None) -> None:
        signer = client._signer
        if signer is None:
            raise ParameterError("api_secret", "a trading session needs api_secret or private_key")
        self.client = client
        self.config = config if config is not None else TradingSessionConfig()
        self._signer = signer
        self._logon = signer.key_type == "ED25519"  # Binance allows session.logon for Ed25519 only
        self._core = TradingCore(max_age=self.config.max_connection_age)
        self._orders = _Orders(self)
        self._registrations: list[tuple[Any, Callable[[Any], object]]] = []
        self._error_callbacks: list[ErrorCallback] = []
        self._futures: dict[int, asyncio.Future[Answer]] = {}
        self._link: _Link | None = None
        self._links: set[_Link] = set()
        self._next_link = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._backlog: deque[object] = deque()
        self._backlog_ready = asyncio.Event()
        self._shutdown_seen = False
        self._lost_at: float | None = None
        self._user_data = False
        self._state = "idle"

    def __repr__(self) -> str:
        return f"TradingSession(account={self.config.account!r}, state={self._state})"

    # Public API

    @property
    def state(self) -> str:
        """``idle``, ``live``, ``reconnecting`` or ``closed``."""
        return self._state

    @overload
    def on(self, event_type: type[_E], callback: Callable[[_E], object]) -> None: ...
    @overload
    def on(self, event_type: Any, callback: Callable[[Any], object]) -> None: ...
    def on(self, event_type: Any, callback: Callable[[Any], object]) -> None:
        """Call ``callback(event)`` (sync or async) for each own event that is an ``event_type``.

        Events are the typed ones of :mod:`.events` (``ExecutionReport``, ``AccountPosition``,
        ``BalanceUpdate``, ``ListStatus``, ...), delivered in order; ``StreamGap`` reports a
        reconnect during which events may have been missed. A callback that raises goes to
        :meth:`on_error`.
        """
        if not callable(callback):
            raise ParameterError("callback", "must be callable")
        self._registrations.append((event_type, callback))

    def on_error(self, callback: ErrorCallback) -> None:
        """Call ``callback(exc)`` for problems the session handles by itself (lost connection,
        failed re-logon, malformed frames, callback errors). Without one they are logged."""
        if not callable(callback):
            raise ParameterError("callback", "must be callable")
        self._error_callbacks.append(callback)

    async def __aenter__(self) -> TradingSession:
        if self._state != "idle":
            raise RuntimeError("a TradingSession can be entered once")
        self._user_data = (
            self.config.user_data
            if self.config.user_data is not None
            else bool(self._registrations)
        )
        await self.client._ensure_clock()
        self._link = await self._open_link()
        self._state = "live"
        self._spawn(self._supervise())
        self._spawn(self._dispatch())
        self._spawn(self._sweep())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection and stop the background tasks."""
        if self._state == "closed":
            return
        self._state = "closed"
        for link in list(self._links):
            await self._close_link(link)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # Requests

    async def _request(
        self,
        route: _Route,
        params: list[tuple[str, str]],
        client_order_id: str | None,
    ) -> Any:
        """One order-endpoint request over the active connection; its ``result`` or its error."""
        limiter = self.client.limiter
        endpoint, method, write = route.endpoint, route.method, route.write
        weight = endpoint.weight_for(params)
        plain = dict(spot_params(endpoint.name, params))
        resynced = False
        while True:
            link = self._live_link(method)
            if endpoint.orders:
                # acquire() also takes an order count; its answer is reported below, same task.
                await limiter.acquire(endpoint, weight, account=self.client.account)
            else:
                await limiter.acquire_ws(
                    weight, critical=endpoint.critical, account=self.client.account
                )
            stamped = signed_params(
                plain,
                api_key=self.client._api_key,
                signer=None if link.logged_on else self._signer,
                timestamp_ms=self.client.clock.timestamp_ms(time.time()),
                recv_window=self.client._recv_window,
            )
            answer = await self._exchange(link, method, stamped, write, client_order_id, endpoint)
            if answer.status and endpoint.orders:
                limiter.on_response(
                    endpoint, answer.status, _NO_HEADERS, account=self.client.account
                )
            if answer.error is None:
                return answer.result
            if isinstance(answer.error, InvalidTimestamp) and not resynced:
                # Rejected before execution: resync the clock and sign again, once.
                resynced = True
                await self.client.sync_clock()
                continue
            raise answer.error

    def _live_link(self, method: str) -> _Link:
        link = self._link
        if self._state != "live" or link is None or link.dead:
            raise TransportError(
                f"{method}: the trading session is {self._state}, nothing was sent",
                request_may_have_been_sent=False,
            )
        return link

    async def _exchange(
        self,
        link: _Link,
        method: str,
        params: Mapping[str, str],
        write: bool,
        client_order_id: str | None,
        endpoint: Endpoint | None = None,
    ) -> Answer:
        """Send one frame on ``link`` and wait for its answer (limiter fed with its rateLimits)."""
        name = endpoint.name if endpoint is not None else method
        request_id, frame = self._core.request(
            link.ident,
            method,
            params,
            time.time(),
            write=write,
            client_order_id=client_order_id,
            endpoint=name,
        )
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        try:
            try:
                await link.ws.send(frame, text=True)
            except ConnectionClosed:
                raise self._core.send_failed(request_id) from None
            # Resolved by the reader, by the loss of the link, or by the sweeper's timeout.
            answer = await future
        finally:
            self._futures.pop(request_id, None)
            if not future.done():  # cancelled by the caller: stop tracking it
                self._core.forget(request_id)
        self.client.limiter.on_ws_response(
            answer.status, answer.rate_limits, answer.error_data, account=self.client.account
        )
        return answer

    async def _session_call(self, link: _Link, method: str, params: Mapping[str, str]) -> Any:
        """A session request (logon, subscribe) on a specific link; its result or its error."""
        await self.client.limiter.acquire_ws(
            _SESSION_WEIGHT, critical=True, account=self.client.account
        )
        answer = await self._exchange(link, method, params, False, None)
        if answer.error is not None:
            raise answer.error
        return answer.result

    # Connections

    async def _open_link(self) -> _Link:
        """Connect, log on (Ed25519) and subscribe the own events (when wanted)."""
        await self.client.limiter.acquire_ws_connect()
        try:
            ws = await connect(
                self.client.ws_api_url,
                open_timeout=self.config.open_timeout,
                compression=None,  # per-message deflate costs CPU and latency on every frame
                max_size=2**22,
                # websockets logs every frame at DEBUG: the API key and signatures are masked
                logger=RedactingLogger(set(self.client._secrets)),
            )
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            raise TransportError(f"cannot connect to the WebSocket API: {exc!r}") from exc
        except Exception as exc:  # websockets' handshake errors (InvalidStatus, ...)
            raise TransportError(f"WebSocket API handshake failed: {exc!r}") from exc
        self._next_link += 1
        link = _Link(self._next_link, ws)
        self._links.add(link)
        self._core.link_opened(link.ident, time.time())
        link.reader = self._spawn(self._read(link))
        try:
            if self._logon:
                params = signed_params(
                    {},
                    api_key=self.client._api_key,
                    signer=self._signer,
                    timestamp_ms=self.client.clock.timestamp_ms(time.time()),
                    recv_window=None,
                )
                await self._session_call(link, "session.logon", params)
                link.logged_on = True
            if self._user_data:
                await self._subscribe(link)
        except BaseException:
            await self._close_link(link)
            raise
        return link

    async def _subscribe(self, link: _Link) -> None:
        """Subscribe the key's own events on ``link``; a refusal is reported, not fatal.

        Binance does not document this path for margin special keys (README, "Assumptions"): if
        the exchange refuses it, the session still trades, and the account's events remain
        available through ``MarginClient.user_stream()`` with the account's own key.
        """
        if link.logged_on:
            method, params = "userDataStream.subscribe", {}
        else:
            method = "userDataStream.subscribe.signature"
            params = signed_params(
                {},
                api_key=self.client._api_key,
                signer=self._signer,
                timestamp_ms=self.client.clock.timestamp_ms(time.time()),
                recv_window=None,
            )
        try:
            await self._session_call(link, method, params)
        except BinanceAPIError as exc:
            self._report(
                StreamError(
                    f"{method} refused ({exc}): no own events on this session; "
                    "use MarginClient.user_stream() with the account's key for them"
                )
            )
            return
        link.subscribed = True

    async def _close_link(self, link: _Link) -> None:
        link.dead = True
        await link.ws.close()
        if link.reader is not None and link.reader is not asyncio.current_task():
            await asyncio.gather(link.reader, return_exceptions=True)
        self._links.discard(link)

    async def _read(self, link: _Link) -> None:
        core = self._core
        futures = self._futures
        account = self.config.account
        try:
            async for message in link.ws:
                received = core.receive(link.ident, message, time.time())
                for answer in received.answers:
                    future = futures.get(answer.request_id)
                    if future is not None and not future.done():
                        future.set_result(answer)  # inline: the hot path
                for event in received.events:
                    self._enqueue(decode_event(event, account))
                if received.shutdown:
                    self._shutdown_seen = True
                    self._wake.set()
                if received.malformed is not None:
                    self._report(StreamError(f"malformed frame: {received.malformed!r}"))
        except ConnectionClosed:
            pass
        finally:
            self._resolve(core.link_lost(link.ident))
            if not link.dead:  # not closed by us: an unplanned loss
                link.dead = True
                if link is self._link and self._state == "live":
                    self._lost_at = time.time()
                    self._state = "reconnecting"
                    self._report(StreamError("trading session connection lost; reconnecting"))
                    self._wake.set()

    def _resolve(self, answers: list[Answer]) -> None:
        futures = self._futures
        for answer in answers:
            future = futures.get(answer.request_id)
            if future is not None and not future.done():
                future.set_result(answer)

    async def _sweep(self) -> None:
        """End requests that got no answer in time (a quarter of the timeout late at most)."""
        timeout = self.config.request_timeout
        while True:
            await asyncio.sleep(timeout / 4)
            self._resolve(self._core.expired(time.time(), timeout))

    async def _supervise(self) -> None:
        """Replace the connection: planned (age, serverShutdown) or after a loss."""
        while True:
            link = self._link
            due = self._core.rotation_at(link.ident) if link is not None else None
            timeout = None if due is None else max(due - time.time(), 0.0)
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._state == "reconnecting":
                await self._reconnect()
            elif self._shutdown_seen or (
                link is not None and self._core.rotation_due(link.ident, time.time())
            ):
                self._shutdown_seen = False
                await self._rotate()

    async def _rotate(self) -> None:
        """Make-before-break: the new connection is live before the old one closes."""
        old = self._link
        self._core.begin_overlap()
        try:
            new = await self._open_link()
        except BinanceError as exc:
            self._core.end_overlap()
            self._report(StreamError(f"planned reconnect failed, keeping the old one: {exc}"))
            await asyncio.sleep(self.config.reconnect_max)
            self._shutdown_seen = True  # try again
            self._wake.set()
            return
        self._link = new
        if self._state == "reconnecting":
            # The old connection died while the new one was opening: no longer a clean move.
            self._state = "live"
            self._report_gap()
        if old is not None:
            # Answers and events still on the way on the old connection: wait for them.
            waiting = [
                future
                for request_id in self._core.in_flight(old.ident)
                if (future := self._futures.get(request_id)) is not None
            ]
            if waiting:
                await asyncio.wait(waiting, timeout=self.config.request_timeout)
            await asyncio.sleep(self.config.overlap)
            await self._close_link(old)
        self._core.end_overlap()

    async def _reconnect(self) -> None:
        """After an unplanned loss: reconnect with backoff, log on, subscribe, report the gap."""
        attempt = 0
        while self._state == "reconnecting":
            try:
                link = await self._open_link()
            except BinanceError as exc:
                attempt += 1
                self._report(
                    StreamError(f"trading session could not reconnect and log on again: {exc}")
                )
                ceiling = min(self.config.reconnect_max, self.config.reconnect_min * 2**attempt)
                await asyncio.sleep(random.uniform(self.config.reconnect_min, ceiling))
                continue
            self._link = link
            self._state = "live"
            self._report_gap()

    def _report_gap(self) -> None:
        """Own events may have been missed since the connection was lost: say so."""
        if self._user_data:
            started = self._lost_at if self._lost_at is not None else time.time()
            self._enqueue(StreamGap(self.config.account, started, time.time()))

    # Events

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _enqueue(self, item: object) -> None:
        if len(self._backlog) >= self.config.max_backlog and not isinstance(item, Exception):
            self._report(StreamError(f"{len(self._backlog)} events wait for slow callbacks"))
        self._backlog.append(item)
        self._backlog_ready.set()

    def _report(self, error: Exception) -> None:
        self._backlog.append(error)
        self._backlog_ready.set()

    async def _dispatch(self) -> None:
        """Hand events to callbacks and errors to ``on_error``, in order, off the read path."""
        while True:
            await self._backlog_ready.wait()
            self._backlog_ready.clear()
            while self._backlog:
                item = self._backlog.popleft()
                if isinstance(item, Exception):
                    await self._deliver_error(item)
                    continue
                for event_type, callback in self._registrations:
                    if not isinstance(item, event_type):
                        continue
                    try:
                        result = callback(item)
                        if inspect.isawaitable(result):
                            await result
                    except Exception as exc:
                        exc.add_note(f"in a callback for {type(item).__name__}")
                        await self._deliver_error(exc)

    async def _deliver_error(self, error: Exception) -> None:
        if not self._error_callbacks:
            log.warning("trading session: %s", error)
            return
        for callback in self._error_callbacks:
            try:
                result = callback(error)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_error callback failed")
