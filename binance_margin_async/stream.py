"""`UserDataStream`: the margin user-data feed, alive for days, typed, in order, exactly once.

Two Binance channels are merged into one feed of typed events (:mod:`.events`), each tagged with
its ``account`` (``"CROSS"`` or the isolated symbol):

* **trade** (``executionReport``, ``outboundAccountPosition``, ``balanceUpdate``, ``listStatus``):
  ONE WebSocket API connection; per account ``POST /sapi/v1/userListenToken`` then
  ``userDataStream.subscribe.listenToken``; events arrive as ``{"subscriptionId": N, "event": …}``
  and are routed by id. https://developers.binance.com/docs/margin_trading/trade-data-stream
* **risk** (``USER_LIABILITY_CHANGE``, ``MARGIN_LEVEL_STATUS_CHANGE``; cross only):
  ``POST /sapi/v1/margin/listen-key`` then ``<risk_stream_url>/ws/<listenKey>``, kept alive with
  ``PUT`` every 30 min. https://developers.binance.com/docs/margin_trading/risk-data-stream

How it stays alive (every background task lives in one :class:`asyncio.TaskGroup` owned by
``async with``; the pure policy is in :mod:`._streamcore`):

* **Token renewal** at a jittered 60-80 % of the validity (each account in its own slice of the
  window), on the same connection. The answer may keep the ``subscriptionId`` (renewed in place)
  or bring a new one: then the new id's events are held until the old id is unsubscribed and
  released minus the copies the old id delivered. ``-2035`` counts as success, ``-1209`` mints a
  new token, ``eventStreamTerminated`` renews at once and reports a :class:`~.events.StreamGap`
  (events may have been missed while the subscription was down).
* **Planned reconnects** (connection age near ``connection_lifetime``, ``serverShutdown``) are
  make-before-break: the new connection is opened and subscribed while the old one still
  delivers; its events are held back until the old connection has been closed and drained, then
  released minus the copies the old one already delivered (matched in exchange order on their
  full content, see :class:`~._streamcore.OverlapFilter`). No gap, no duplicate, exchange order.
* **Unplanned losses** (TCP reset, 1000/1001/1006 closes, a stall: nothing received for longer
  than the server's ping interval plus a grace, or no pong to our pings, ``listenKeyExpired``)
  reconnect with jittered exponential backoff (injectable, reset after a success), resubscribe
  every account, then emit ``StreamGap(account, started, ended)`` per account; with
  ``mirror=True`` the mirror is reloaded from REST and :class:`~.events.Resynced` follows.
* **Every** listen-token/listen-key call goes through the client (and so its rate limiter); every
  WS API request through ``limiter.acquire_ws`` + ``on_ws_response``; every connection attempt
  through ``limiter.acquire_ws_connect``.

Delivery: each connection's frame handler runs as frames are parsed (from the socket's
``data_received``, not a ``recv()`` loop) and only parses and routes them, appending them to one
dispatch backlog (control events, and every event while an account needs a closer look, are
decoded there and then; ordinary trade events are decoded by the dispatcher, see
``_trade_handler``); a single dispatcher task feeds the callbacks (sync ones called, async ones
awaited, in order) and the bounded ``events()`` readers. A slow consumer
therefore never stops the socket from being read (pings keep being answered). The backlog is
bounded by ``StreamConfig.max_backlog`` (100,000 events): past it the stream reports a
:class:`~.errors.StreamError` and pauses reading the socket until the callbacks have worked it
down to half; if that takes so long that the server drops the connection, the reconnect reports
a ``StreamGap``. Memory stays bounded and nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast, overload

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.protocol import Event as WsEvent
from websockets.protocol import State
from websockets.typing import BytesLike

from ._streamcore import (
    BackoffPolicy,
    OverlapFilter,
    RenewalPolicy,
    StreamStats,
    SubscriptionTable,
    event_key,
    expand_event_types,
    exponential_backoff,
    handlers_for,
    normalize_epoch_ms,
    planned_reconnect_at,
    server_window_ms,
    spread_jitter,
    stall_deadline,
)
from .errors import (
    BinanceError,
    EventQueueOverflow,
    InvalidListenKey,
    InvalidListenToken,
    IPBanned,
    ListenKeyNotFound,
    ParameterError,
    RateLimited,
    StreamError,
    SubscriptionActive,
    error_from_ws,
)
from .events import (
    Event,
    EventStreamTerminated,
    ListenKeyExpired,
    Resynced,
    StreamGap,
    UnknownEvent,
    decode_event,
)

if TYPE_CHECKING:
    from .mirror import AccountMirror
    from .rest import MarginClient

__all__ = ["EventIterator", "StreamConfig", "StreamStats", "UserDataStream"]

log = logging.getLogger(__name__)

CROSS: Final = "CROSS"
_SUBSCRIBE: Final = "userDataStream.subscribe.listenToken"
_UNSUBSCRIBE: Final = "userDataStream.unsubscribe"
# userDataStream.subscribe.listenToken and userDataStream.unsubscribe both weigh 2 (§3.3-3.4).
_WS_REQUEST_WEIGHT: Final = 2
_TASK_PREFIX: Final = "binance-stream:"
_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT
# websockets parses every frame of one socket read (up to 256 KiB, ~400 events) before it hands
# the first one on, so all their Frame objects live at once; fed in slices, only a slice's frames
# do. That keeps the garbage collector, which runs as the dispatch backlog grows during a burst,
# from finding (and promoting towards the costly full collections) hundreds of live frames.
_SLICE: Final = 64 * 1024
E = TypeVar("E")
Callback = Callable[[Any], object]
ErrorCallback = Callable[[Exception], object]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    """Tuning of a :class:`UserDataStream`. Defaults follow Binance; tests shrink the intervals.

    Listen tokens:
        token_validity_ms: ``validity`` asked for each listen token (``None``: Binance's default,
            24 h). renewal: when to renew (fraction window of the validity, see
            :class:`~._streamcore.RenewalPolicy`).

    Connections:
        connection_lifetime: the server cuts connections after this many seconds (24 h);
            lifetime_margin: start the make-before-break replacement this much earlier.
        open_timeout, close_timeout, request_timeout: seconds for the opening handshake, the
            closing handshake and a WS API answer. max_message_size: larger messages close
            the connection (websockets' ``max_size``).

    Liveness:
        server_ping_interval, stall_grace: the server pings every 20 s; a connection that
            received nothing for their sum (60 s, DESIGN §6) is dead. ping_interval,
            ping_timeout: our own pings (websockets' keepalive), ``None`` disables them.

    Risk stream:
        risk_keepalive_interval: ``PUT /sapi/v1/margin/listen-key`` period (key valid 60 min).

    Recovery:
        backoff: factory of reconnect delays, called once per outage (so a success resets it).
        dedupe_capacity: copies remembered per account during a make-before-break overlap.
            dedupe_grace: longest life of that memory after the old connection closed (it
            normally ends at the new connection's first new event).
        resync_attempts: REST attempts to reload the mirror after a gap.

    Delivery:
        max_backlog: events that may wait for the dispatcher before reading pauses.
        seed: seeds the renewal jitter (``None``: random), for reproducible tests.
    """

    token_validity_ms: int | None = None
    renewal: RenewalPolicy = field(default_factory=RenewalPolicy)
    connection_lifetime: float = 86_400.0
    lifetime_margin: float = 600.0
    open_timeout: float = 10.0
    close_timeout: float = 2.0
    request_timeout: float = 10.0
    max_message_size: int = 1 << 20
    server_ping_interval: float = 20.0
    stall_grace: float = 40.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    risk_keepalive_interval: float = 1800.0
    backoff: BackoffPolicy = exponential_backoff
    dedupe_capacity: int = 10_000
    dedupe_grace: float = 30.0
    resync_attempts: int = 3
    max_backlog: int = 100_000
    seed: int | None = None

    def __post_init__(self) -> None:
        positive = {
            "connection_lifetime": self.connection_lifetime,
            "open_timeout": self.open_timeout,
            "close_timeout": self.close_timeout,
            "request_timeout": self.request_timeout,
            "server_ping_interval": self.server_ping_interval,
            "risk_keepalive_interval": self.risk_keepalive_interval,
            "max_message_size": self.max_message_size,
            "dedupe_capacity": self.dedupe_capacity,
            "resync_attempts": self.resync_attempts,
            "max_backlog": self.max_backlog,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ParameterError(name, "must be positive")
        for name, value in (
            ("lifetime_margin", self.lifetime_margin),
            ("stall_grace", self.stall_grace),
            ("dedupe_grace", self.dedupe_grace),
        ):
            if value < 0:
                raise ParameterError(name, "must be >= 0")
        if self.token_validity_ms is not None and not 0 < self.token_validity_ms <= 86_400_000:
            raise ParameterError("token_validity_ms", "must be in (0, 86400000]")


class _State(Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class _Connection(ClientConnection):
    """websockets client connection that hands every message to ``on_message`` as it is parsed.

    websockets' own path queues messages for ``recv()`` and stops reading the socket when the
    queue is full. Here the stream's frame handler runs straight from ``data_received``: a
    message is routed and decoded the moment its frame is parsed, nothing waits for a consumer,
    and control frames (pings) are always processed. Flow control is explicit instead: after
    each read ``on_read`` wakes the dispatcher and pauses the transport when the dispatch
    backlog is over its bound.

    ``last_received`` is the loop time bytes last arrived (any bytes prove the path works:
    pings, pongs, events); stamped per TCP read, not per frame.
    """

    last_received: float = 0.0
    on_message: Callable[[BytesLike], None] | None = None
    on_read: Callable[[], None] | None = None
    _fragments: list[BytesLike] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.last_received = self.loop.time()

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        if len(data) <= _SLICE:  # see _SLICE
            super().data_received(data)
        else:
            for start in range(0, len(data), _SLICE):
                super().data_received(data[start : start + _SLICE])
        on_read = self.on_read
        if on_read is not None:
            on_read()

    def process_event(self, event: WsEvent) -> None:
        # The handshake Response is the first event; every later one is a Frame.
        handler = self.on_message
        if handler is not None and type(event) is Frame:
            opcode = event.opcode
            if opcode is _TEXT or opcode is _BINARY:
                if event.fin:
                    handler(event.data)
                else:
                    self._fragments = [event.data]
                return
            if opcode is _CONT:
                # The protocol layer already checked the sequence and the total size.
                fragments = self._fragments
                assert fragments is not None
                fragments.append(event.data)
                if event.fin:
                    self._fragments = None
                    handler(b"".join(fragments))
                return
        super().process_event(event)


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' own logger (``websockets.client``), minus one connection's credentials.

    At DEBUG, websockets logs the opening request line (the risk stream's URL carries its listen
    key) and every frame (the listen tokens we subscribe with, the listen key inside a
    ``listenKeyExpired`` event). Records are formatted here and the text redacted before the
    wrapped logger sees it; frames are redacted in their whole payload first, since websockets
    elides the middle of long payloads and could leave a fragment of a secret. ``secrets`` is the
    connection's live set (tokens join it as they are subscribed). Costs nothing unless a record
    is emitted.
    """

    def __init__(self, secrets: set[str]) -> None:
        super().__init__(logging.getLogger("websockets.client"))
        self.secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log like the wrapped logger, with every secret replaced by ``<redacted>``."""
        if not self.isEnabledFor(level):
            return
        if self.secrets:
            args = tuple(self._redact_frame(arg) for arg in args)
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):  # never raise into websockets from a log call
                text = f"{msg} {args!r}"
            exc_info = kwargs.get("exc_info")
            if exc_info:
                # A traceback is formatted by the handler, out of our reach: format it here and
                # send it, redacted, as part of the message instead.
                if exc_info is True:
                    exc_info = sys.exc_info()
                if isinstance(exc_info, BaseException):
                    exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
                kwargs["exc_info"] = None
                text += "\n" + "".join(traceback.format_exception(*exc_info)).rstrip()
            for secret in self.secrets:
                text = text.replace(secret, "<redacted>")
            msg, args = text, ()
        self.logger.log(level, msg, *args, **kwargs)

    def _redact_frame(self, value: object) -> object:
        if not isinstance(value, Frame):
            return value
        data = bytes(value.data)
        for secret in self.secrets:
            data = data.replace(secret.encode(), b"<redacted>")
        return Frame(value.opcode, data, value.fin)


def _connection_factory(
    on_message: Callable[[BytesLike], None], on_read: Callable[[], None]
) -> type[ClientConnection]:
    """A ``create_connection`` for websockets' ``connect`` whose connections call the handlers.

    Set before the handshake, so not even a message sent right after it can miss them.
    """

    def create(*args: Any, **kwargs: Any) -> _Connection:
        connection = _Connection(*args, **kwargs)
        connection.on_message = on_message
        connection.on_read = on_read
        return connection

    # websockets calls it like the class it expects; a factory function is what it needs here.
    return cast("type[ClientConnection]", create)


class _Route:
    """Delivery state of one account on one channel: overlap filter, held events."""

    __slots__ = (
        "holding",
        "name",
        "overlap",
        "overlap_generation",
        "plain",
        "primary",
        "primary_sid",
        "shadow",
        "shadow_held",
        "stale_sid",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        # While two sources carry this account, the old one (``primary`` connection, and
        # ``primary_sid`` if only one subscription of it) is delivered and recorded; the new
        # one's copies of it are dropped by the filter.
        self.overlap: OverlapFilter | None = None
        self.primary: _Link | None = None
        self.primary_sid: int | None = None
        self.overlap_generation = 0
        # A renewal answered with a new subscriptionId (``shadow``) while the old one
        # (``stale_sid``) still delivers, on the same connection: the new id's events wait in
        # ``shadow_held`` until the old one is unsubscribed, then go through the filter; later
        # events of the old id are copies.
        self.shadow: int | None = None
        self.shadow_held: list[tuple[_Link, Any, Event, int | None]] = []
        self.stale_sid: int | None = None
        # Events received while a terminated subscription is being restored: they follow the
        # StreamGap, so they wait here until it is emitted.
        self.holding: list[tuple[_Link, Any, Event, int | None]] | None = None
        # True when none of the above applies: the frame handler enqueues without looking.
        self.plain = True

    def refresh(self) -> None:
        self.plain = (
            self.overlap is None
            and self.stale_sid is None
            and self.shadow is None
            and self.holding is None
        )


class _Account(_Route):
    """One trade-stream account (cross or an isolated symbol) and its listen-token subscription."""

    __slots__ = (
        "expiration_ms",
        "gap_started",
        "index",
        "link",
        "renew_at",
        "renew_now",
        "sid",
        "symbol",
        "token",
    )

    def __init__(self, name: str, symbol: str | None, index: int) -> None:
        super().__init__(name)
        self.symbol = symbol
        self.index = index
        self.token: str | None = None
        self.expiration_ms = 0
        self.renew_at = 0.0  # loop time
        self.renew_now = asyncio.Event()
        self.link: _Link | None = None  # the connection of the current subscription
        self.sid: int | None = None  # its id; None after an unexpected termination
        self.gap_started = 0.0


class _Link:
    """One WebSocket connection of a channel and what its frame handler needs."""

    __slots__ = (
        "buffer",
        "channel",
        "closed",
        "died_at",
        "last_raw",
        "live_at",
        "live_wall",
        "next_id",
        "opened_at",
        "pending",
        "reason",
        "retiring",
        "secrets",
        "shutdown",
        "table",
        "wakeup",
        "watcher",
        "ws",
    )

    def __init__(self, channel: _Channel, *, buffering: bool) -> None:
        self.ws: _Connection  # set once connected
        self.channel = channel
        self.table: SubscriptionTable[_Account] = SubscriptionTable()
        self.pending: dict[int, tuple[asyncio.Future[dict[str, Any]], _Account | None]] = {}
        self.next_id = 0
        self.opened_at = 0.0
        self.live_at = 0.0
        self.live_wall = 0.0
        # While not None, routed events are held here (a replacement that is not live yet).
        self.buffer: list[tuple[_Route, Any, Event, int | None]] | None = [] if buffering else None
        self.retiring = False  # closed on purpose: its end is not a loss
        self.shutdown = False  # serverShutdown received: replace it now
        self.died_at: float | None = None  # loop time of an unexpected end
        self.reason = ""
        self.last_raw: Any = None
        # Credentials that travel on this connection (the risk listen key in its URL, the listen
        # tokens subscribed with): websockets' log lines never show them (see _RedactingLogger).
        self.secrets: set[str] = set()
        self.closed = asyncio.Event()
        self.wakeup = asyncio.Event()  # died or asked to be replaced
        self.watcher: asyncio.Task[None] | None = None

    def mark_live(self) -> None:
        self.live_at = self.ws.loop.time()
        self.live_wall = time.time()

    @property
    def dead(self) -> bool:
        return self.closed.is_set()

    def received_wall(self) -> float:
        """Wall time the connection last received anything: events after it may be lost."""
        loop = self.ws.loop
        return time.time() - max(0.0, loop.time() - self.ws.last_received)


class _Failure:
    """Dispatcher item: an error to hand to the ``on_error`` callbacks."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Resync:
    """Dispatcher item: reload the mirror of ``account`` from REST, then announce it."""

    __slots__ = ("account", "announce", "channel", "done")

    def __init__(
        self,
        account: str,
        channel: str,
        *,
        announce: bool = True,
        done: asyncio.Event | None = None,
    ) -> None:
        self.account = account
        self.channel = channel
        self.announce = announce
        self.done = done


class EventIterator:
    """A bounded pull-style view of a :class:`UserDataStream` (see :meth:`UserDataStream.events`).

    Yields every event in delivery order. When the reader falls ``maxsize`` events behind, the
    events already queued are still returned, then :class:`~.errors.EventQueueOverflow` is raised
    and the iterator ends: events after that point were not queued for it (callbacks still got
    them). Call ``stream.events()`` again to resume, and treat the overflow like a gap. The
    iterator also ends (``StopAsyncIteration``) when the stream closes, or after :meth:`close`.
    """

    __slots__ = ("_closed", "_maxsize", "_overflowed", "_queue", "_stream", "_waiter")

    def __init__(self, stream: UserDataStream, maxsize: int) -> None:
        self._stream = stream
        self._maxsize = maxsize
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False
        self._closed = False

    def __aiter__(self) -> EventIterator:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._overflowed:
                self._overflowed = False
                self._closed = True
                raise EventQueueOverflow(
                    f"events() reader fell more than {self._maxsize} events behind; later events "
                    "were not queued for it. Call events() again and resynchronise."
                )
            if self._closed:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Stop receiving events; the iterator ends once the queued ones are consumed."""
        self._stream._detach(self)
        self._end()

    def _offer(self, event: Event) -> bool:
        if len(self._queue) >= self._maxsize:
            self._overflowed = True
            self._wake()
            return False
        self._queue.append(event)
        self._wake()
        return True

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class UserDataStream:
    """Margin user-data events of one API key: cross, isolated symbols and the risk stream.

    Usually created by :meth:`MarginClient.user_stream`. Register callbacks with :meth:`on` and
    :meth:`on_error`, then ``async with stream:`` (returns once every subscription is live); pull
    with :meth:`events` as an alternative. Leaving the block unsubscribes, closes every socket and
    cancels every task of the stream; events still waiting for the dispatcher are not delivered.

    Args:
        client: the REST client (tokens, listen keys, snapshots, URLs and the shared limiter).
        cross: subscribe the cross-margin account.
        isolated_symbols: isolated-margin symbols to subscribe, one subscription each.
        risk: also follow the cross-margin risk stream (margin calls, liabilities).
        mirror: keep an :class:`~.mirror.AccountMirror` (``stream.mirror``) loaded from REST at
            start and after every gap, updated by every event before the callbacks see it.
        config: intervals and limits (:class:`StreamConfig`).

    Docs: https://developers.binance.com/docs/margin_trading/trade-data-stream
    """

    def __init__(
        self,
        client: MarginClient,
        *,
        cross: bool = True,
        isolated_symbols: Iterable[str] = (),
        risk: bool = False,
        mirror: bool = False,
        config: StreamConfig | None = None,
    ) -> None:
        if isinstance(isolated_symbols, str):
            raise ParameterError("isolated_symbols", "expected a sequence of symbols, not a str")
        symbols = tuple(isolated_symbols)
        for symbol in symbols:
            if not isinstance(symbol, str) or not symbol.isalnum() or not symbol.isupper():
                raise ParameterError("isolated_symbols", "symbols are upper-case, e.g. 'BTCUSDT'")
        if len(set(symbols)) != len(symbols):
            raise ParameterError("isolated_symbols", "each symbol may appear once")
        if not (cross or symbols or risk):
            raise ParameterError("cross", "nothing to subscribe: enable cross, isolated or risk")
        self._client = client
        self._config = config if config is not None else StreamConfig()
        self._rng = random.Random(self._config.seed)
        names = ([CROSS] if cross else []) + list(symbols)
        self._accounts = [
            _Account(name, None if name == CROSS else name, index)
            for index, name in enumerate(names)
        ]
        self._trade = _TradeChannel(self, self._accounts) if self._accounts else None
        self._risk = _RiskChannel(self) if risk else None
        self._mirror: AccountMirror | None = None
        if mirror:
            from .mirror import AccountMirror

            self._mirror = AccountMirror()
        self._registrations: list[tuple[type, Callback]] = []
        self._handlers: dict[type, tuple[Callback, ...]] = {}
        self._error_callbacks: list[ErrorCallback] = []
        self._readers: tuple[EventIterator, ...] = ()
        # Items for the dispatcher: events, _Failure, _Resync, or the raw dict of a trade event
        # it decodes itself (see _trade_handler), whose account name is then the next entry of
        # _backlog_accounts (a parallel queue rather than a tuple per event: no allocation).
        self._backlog: deque[Any] = deque()
        self._backlog_accounts: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._paused: list[_Link] = []
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._state = _State.NEW
        self._closing = False
        self.stats = StreamStats()
        """Counters: reconnects, renewals, gaps, events delivered, duplicates dropped, ..."""

    def __repr__(self) -> str:
        names = [account.name for account in self._accounts]
        return (
            f"UserDataStream(accounts={names}, risk={self._risk is not None}, "
            f"state={self._state.value})"
        )

    # Public API

    @overload
    def on(self, event_type: type[E], callback: Callable[[E], object]) -> None: ...
    @overload
    def on(self, event_type: Any, callback: Callable[[Any], object]) -> None: ...

    def on(self, event_type: Any, callback: Callable[[Any], object]) -> None:
        """Call ``callback(event)`` for every event of ``event_type``.

        ``event_type`` is an event class from :mod:`.events`, a union of them
        (``ExecutionReport | ListStatus``, or :data:`~.events.Event` for all), or any base class.
        ``callback`` may be sync or async; async ones are awaited, so events reach callbacks in
        order (per account, in exchange order). A callback that raises is reported to the
        :meth:`on_error` callbacks (or logged) and the stream goes on. Several callbacks for one
        type run in registration order. May be called while the stream runs.
        """
        if not callable(callback):
            raise ParameterError("callback", "must be callable")
        for cls in expand_event_types(event_type):
            self._registrations.append((cls, callback))
        # Rebuilt lazily, one lookup per concrete class, on the next event of each class.
        self._handlers.clear()

    def on_error(self, callback: ErrorCallback) -> None:
        """Call ``callback(exc)`` for every problem the stream handles by itself.

        That is: exceptions raised by event callbacks (the original exception, with a note naming
        the event), and :class:`~.errors.StreamError` reports of lost connections, reconnect and
        renewal failures, malformed frames and a full dispatch backlog. Sync or async. Without
        any ``on_error`` callback these are logged.
        """
        if not callable(callback):
            raise ParameterError("callback", "must be callable")
        self._error_callbacks.append(callback)

    def events(self, maxsize: int = 10_000) -> EventIterator:
        """A bounded async iterator over every event, in delivery order.

        ``async for event in stream.events(): ...``. It fills from the moment it is created;
        when it falls ``maxsize`` events behind it raises :class:`~.errors.EventQueueOverflow`
        (after the events queued before the overflow) instead of dropping silently. The
        connection is never affected.
        """
        if maxsize <= 0:
            raise ParameterError("maxsize", "must be positive")
        iterator = EventIterator(self, maxsize)
        if self._state is _State.CLOSED:
            iterator._end()
        else:
            self._readers = (*self._readers, iterator)
        return iterator

    @property
    def mirror(self) -> AccountMirror:
        """The account mirror (only with ``mirror=True``)."""
        if self._mirror is None:
            raise AttributeError("this stream was created with mirror=False")
        return self._mirror

    @property
    def backlog(self) -> int:
        """Events waiting for the dispatcher right now (callbacks behind the socket)."""
        return len(self._backlog)

    @property
    def last_event_lag(self) -> float | None:
        """Seconds between the exchange's event time ``E`` of the latest trade event and its
        arrival on the socket (includes clock skew); ``None`` before the first event."""
        link = self._trade.link if self._trade is not None else None
        if link is None or not isinstance(link.last_raw, dict):
            return None
        event_time = link.last_raw.get("E")
        if not isinstance(event_time, int):
            return None
        return link.received_wall() - event_time / 1000.0

    # Lifecycle

    async def __aenter__(self) -> UserDataStream:
        if self._state is not _State.NEW:
            raise RuntimeError("a UserDataStream can be started once; create a new one")
        self._state = _State.RUNNING
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._task_group = group
        try:
            await self._start()
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _start(self) -> None:
        self._dispatcher = self._spawn(self._dispatch(), "dispatch")
        if self._trade is not None:
            self._trade.link = await self._trade.open(buffering=False)
            self._trade.live.set()
            self._spawn(self._supervise(self._trade), "trade-supervisor")
            for account in self._accounts:
                self._spawn(self._renewal_loop(account), f"renew-{account.name}")
        if self._risk is not None:
            self._risk.link = await self._risk.open(buffering=False, fresh_key=True)
            self._risk.live.set()
            self._spawn(self._supervise(self._risk), "risk-supervisor")
            self._spawn(self._keepalive_loop(self._risk), "risk-keepalive")
        if self._mirror is not None:
            # Loaded through the dispatcher so that every event received from here on is applied
            # after the snapshot, in order.
            loaded = asyncio.Event()
            names = [account.name for account in self._accounts] or [CROSS]
            for index, name in enumerate(names):
                last = index == len(names) - 1
                self._enqueue(_Resync(name, "start", announce=False, done=loaded if last else None))
            await loaded.wait()

    async def _shutdown(self) -> None:
        """Stop everything; runs once, from ``__aexit__`` or a failed ``__aenter__``."""
        if self._state is _State.CLOSED:
            return
        self._closing = True
        self._state = _State.CLOSED
        group = self._task_group
        try:
            # Supervisors, renewals and keepalives first, so that nothing reconnects behind our
            # back; watchers and the dispatcher keep running for the polite unsubscribe's answer.
            watchers = {link.watcher for link in self._links}
            workers = [t for t in self._tasks if t is not self._dispatcher and t not in watchers]
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self._close_links()
        finally:
            self._task_group = None  # from here on nothing new is spawned
            while self._tasks:
                pending = list(self._tasks)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
            for reader in self._readers:
                reader._end()
            self._readers = ()
            if group is not None:
                # Not the body's exception: TaskGroup would wrap it in an ExceptionGroup. Only a
                # crashed task of ours (a bug) surfaces here, as an ExceptionGroup.
                await group.__aexit__(None, None, None)

    async def _close_links(self) -> None:
        trade = self._trade.link if self._trade is not None else None
        if trade is not None and not trade.dead:
            # Polite: end every subscription of the session (no subscriptionId = all of them).
            with contextlib.suppress(BinanceError, TimeoutError):
                async with asyncio.timeout(self._config.close_timeout):
                    await self._ws_request(trade, _UNSUBSCRIBE, {})
        await asyncio.gather(*[self._retire(link) for link in list(self._links)])

    async def _retire(self, link: _Link) -> None:
        """Close a connection on purpose; when this returns, every frame it received before the
        close was handled, and its watcher has finished."""
        if not link.dead:
            link.retiring = True
        try:
            await link.ws.close()  # bounded by close_timeout, then websockets aborts
        except (OSError, WebSocketException) as exc:
            log.debug("closing a %s connection: %s", link.channel.kind, exc)
        if link.watcher is not None:
            await asyncio.wait([link.watcher])
        self._links.discard(link)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        group = self._task_group
        if group is None:  # shutting down: whatever this was for is moot
            coro.close()
            raise StreamError("the stream is closing")
        task = group.create_task(coro, name=_TASK_PREFIX + name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _detach(self, iterator: EventIterator) -> None:
        self._readers = tuple(r for r in self._readers if r is not iterator)

    # Connections

    async def _connect(
        self, url: str, channel: _Channel, *, buffering: bool, display: str, secret: str = ""
    ) -> _Link:
        cfg = self._config
        await self._client.limiter.acquire_ws_connect()
        link = _Link(channel, buffering=buffering)
        if secret:
            link.secrets.add(secret)
        handler = self._trade_handler(link) if channel.kind == "trade" else self._risk_handler(link)
        try:
            ws = await connect(
                url,
                create_connection=_connection_factory(handler, self._after_read(link)),
                logger=_RedactingLogger(link.secrets),
                open_timeout=cfg.open_timeout,
                ping_interval=cfg.ping_interval,
                ping_timeout=cfg.ping_timeout,
                close_timeout=cfg.close_timeout,
                max_size=cfg.max_message_size,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            text = f"{type(exc).__name__}: {exc}"
            if secret:
                text = text.replace(secret, "<listenKey>")
            message = f"cannot connect the {channel.kind} stream to {display}: {text}"
            if secret:  # not chained: the cause's text may contain the listen key of the URL
                raise StreamError(message) from None
            raise StreamError(message) from exc
        assert isinstance(ws, _Connection)
        link.ws = ws
        link.opened_at = ws.loop.time()
        link.mark_live()
        self._links.add(link)
        link.watcher = self._spawn(self._watch(link), f"{channel.kind}-watcher")
        return link

    async def _watch(self, link: _Link) -> None:
        """Wait for the connection to end; abort it first if it goes silent (a stall).

        Silence means nothing at all for longer than the server's ping period plus a grace: not
        even a ping. Our own pings (websockets' keepalive) catch the other direction.
        """
        cfg = self._config
        ws = link.ws
        loop = ws.loop
        try:
            while True:
                deadline = stall_deadline(
                    ws.last_received, cfg.server_ping_interval, cfg.stall_grace
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        await ws.wait_closed()
                    return
                silent = loop.time() - ws.last_received
                if silent >= cfg.server_ping_interval + cfg.stall_grace:
                    link.reason = f"stalled: nothing received for {silent:.1f} s"
                    ws.transport.abort()
                    await ws.wait_closed()
                    return
        finally:
            self._link_lost(link)

    def _link_lost(self, link: _Link) -> None:
        """Watcher epilogue: fail pending requests, wake the supervisor, report a loss."""
        if not link.reason:
            close = link.ws.protocol.close_exc if link.ws.protocol.state is State.CLOSED else None
            link.reason = str(close) if close is not None else "closed"
        unexpected = not (link.retiring or self._closing)
        if unexpected:
            link.died_at = link.ws.loop.time()
        for future, _ in link.pending.values():
            if not future.done():
                future.set_exception(StreamError(f"{link.channel.kind} connection closed"))
        link.pending.clear()
        self._paused = [paused for paused in self._paused if paused is not link]
        link.closed.set()
        link.wakeup.set()
        if unexpected and link.channel.link is link:
            link.channel.live.clear()
            self._report(StreamError(f"{link.channel.kind} connection lost: {link.reason}"))

    async def _ws_request(
        self,
        link: _Link,
        method: str,
        params: dict[str, Any],
        *,
        critical: bool = False,
        account: _Account | None = None,
    ) -> Any:
        """Send one WS API request on ``link`` and return its ``result``; raise its error."""
        if link.dead:
            raise StreamError(f"{method}: the {link.channel.kind} connection is closed")
        await self._client.limiter.acquire_ws(_WS_REQUEST_WEIGHT, critical=critical)
        link.next_id += 1
        request_id = link.next_id
        future: asyncio.Future[dict[str, Any]] = link.ws.loop.create_future()
        link.pending[request_id] = (future, account)
        try:
            await link.ws.send(
                orjson.dumps({"id": request_id, "method": method, "params": params}), text=True
            )
            async with asyncio.timeout(self._config.request_timeout):
                answer = await future
        except ConnectionClosed as exc:
            raise StreamError(f"{method}: connection closed ({exc})") from exc
        except TimeoutError:
            raise StreamError(
                f"{method}: no answer within {self._config.request_timeout:g} s"
            ) from None
        finally:
            link.pending.pop(request_id, None)
        status = answer.get("status")
        if status == 200:
            return answer.get("result")
        error = answer.get("error")
        raise error_from_ws(
            status if isinstance(status, int) else 0,
            error if isinstance(error, dict) else {},
            now=time.time(),
        )

    # Frame handlers (the hot path: frame → orjson → route → decode → backlog). They run inside
    # the connection's data_received: synchronous, and never raising into websockets.

    def _trade_handler(self, link: _Link) -> Callable[[BytesLike], None]:
        loads = orjson.loads
        decode = decode_event
        by_id = link.table.by_id
        append = self._backlog.append
        special = _TRADE_SPECIAL
        deferred = _DEFERRED_TYPES
        append_account = self._backlog_accounts.append

        def on_message(frame: BytesLike) -> None:
            try:
                try:
                    message = loads(frame)
                    sid = message.get("subscriptionId")
                    if sid is not None:
                        account = by_id.get(sid)
                        raw = message["event"]
                except Exception:  # not JSON, not an object, no "event", unhashable id
                    self._malformed(link, frame)
                    return
                if sid is None:
                    self._trade_message(link, message, frame)
                    return
                if account is None:
                    self._unroutable(sid, frame)
                    return
                link.last_raw = raw
                if (
                    account.plain
                    and link.buffer is None
                    and raw.__class__ is dict
                    and raw.get("e") in deferred
                ):
                    # The common case: an ordinary event of an account with nothing held back.
                    # The dispatcher decodes it right before its callbacks, not this handler: a
                    # burst of a socket read waits in the backlog, and typed events there are
                    # large GC-tracked objects that the collector traverses (and promotes towards
                    # full collections) again and again, while the raw dict of an
                    # executionReport is not even tracked. Same CPU for decoding, ~10x less GC.
                    append(raw)
                    append_account(account.name)
                    return
                event = decode(raw, account.name)
                if event.__class__ in special and self._trade_special(link, sid, account, event):
                    return
                if account.plain and link.buffer is None:
                    append(event)
                else:
                    self._route_slow(link, account, raw, event, sid)
            except Exception as exc:  # a bug of ours: report it and start over on a new connection
                self._handler_failed(link, exc)

        return on_message

    def _risk_handler(self, link: _Link) -> Callable[[BytesLike], None]:
        channel = link.channel
        assert isinstance(channel, _RiskChannel)
        route = channel.route
        loads = orjson.loads
        decode = decode_event
        append = self._backlog.append

        def on_message(frame: BytesLike) -> None:
            try:
                try:
                    raw = loads(frame)
                except orjson.JSONDecodeError:
                    self._malformed(link, frame)
                    return
                event = decode(raw, CROSS)
                cls = event.__class__
                if cls is ListenKeyExpired:
                    self._risk_key_expired(link, event)
                    return
                if cls is UnknownEvent:
                    self._undecodable(event, CROSS)
                if route.plain and link.buffer is None:
                    append(event)
                else:
                    self._route_slow(link, route, raw, event, None)
            except Exception as exc:  # see _trade_handler
                self._handler_failed(link, exc)

        return on_message

    def _after_read(self, link: _Link) -> Callable[[], None]:
        """Once per socket read (not per frame): wake the dispatcher, enforce the bound."""
        backlog = self._backlog
        high = self._config.max_backlog

        def after_read() -> None:
            if backlog:
                if self._waiter is not None:
                    self._wake()
                if len(backlog) > high:
                    self._pause(link)

        return after_read

    def _risk_key_expired(self, link: _Link, event: Event) -> None:
        """The listen key is dead: no more events here. A new key and connection follow (the
        unplanned path, with a StreamGap)."""
        channel = link.channel
        assert isinstance(channel, _RiskChannel)
        if link.retiring or link.dead:
            return
        channel.key = None
        link.reason = "listen key expired"
        self._enqueue(event)
        link.ws.transport.abort()

    def _handler_failed(self, link: _Link, exc: Exception) -> None:
        self._report(StreamError(f"{link.channel.kind} frame handler failed: {exc!r}"))
        link.reason = f"frame handler failed: {exc!r}"
        link.ws.transport.abort()

    def _trade_message(self, link: _Link, message: Any, frame: BytesLike) -> None:
        """A trade frame without ``subscriptionId``: a WS API answer or a connection event."""
        if "id" in message or "status" in message:
            self._on_answer(link, message)
            return
        inner = message.get("event")
        if isinstance(inner, dict) and inner.get("e") == "serverShutdown":
            # The server will close this connection soon: move to a new one first.
            link.shutdown = True
            link.wakeup.set()
            return
        self._malformed(link, frame)

    def _on_answer(self, link: _Link, message: dict[str, Any]) -> None:
        status = message.get("status")
        error = message.get("error")
        data = error.get("data") if isinstance(error, dict) else None
        rate_limits = message.get("rateLimits")
        self._client.limiter.on_ws_response(
            status if isinstance(status, int) else 0,
            rate_limits if isinstance(rate_limits, list) else None,
            data if isinstance(data, dict) else None,
        )
        request_id = message.get("id")
        pending = link.pending.pop(request_id, None) if isinstance(request_id, int) else None
        if pending is None:
            return  # the answer to a request that timed out
        future, account = pending
        result = message.get("result")
        if account is not None and status == 200 and isinstance(result, dict):
            sid = result.get("subscriptionId")
            if isinstance(sid, int) and not isinstance(sid, bool):
                # Bound here, before any later frame is read: the new subscription's first events
                # may directly follow this answer.
                self._bind(link, account, sid)
        if not future.done():
            future.set_result(message)

    def _bind(self, link: _Link, account: _Account, sid: int) -> None:
        old = account.sid
        if account.link is link and old is not None and old != sid:
            # A renewal answered with a new id while the old one still delivers: the old one's
            # end is expected (not a gap) and until then the new one's events are held back.
            link.table.retire(old)
            account.stale_sid = old
            account.shadow = sid
            self._begin_overlap([account], link, old)
        elif account.link is not link:
            # Ids are per connection: whatever was pending on the previous one is moot here.
            self._end_shadow(account)
            account.stale_sid = None
            account.refresh()
        link.table.bind(sid, account)
        account.link = link
        account.sid = sid

    def _end_shadow(self, account: _Account) -> None:
        """The old subscription is gone: release the new one's held events, minus copies."""
        if account.shadow is None:
            return
        account.shadow = None
        account.refresh()
        held, account.shadow_held = account.shadow_held, []
        for link, raw, event, sid in held:
            self._admit(link, account, raw, event, sid)

    def _trade_special(self, link: _Link, sid: int, account: _Account, event: Event) -> bool:
        """Handle a control or undecodable event; True if it must not be delivered."""
        if isinstance(event, UnknownEvent):
            self._undecodable(event, account.name)
            return False
        # eventStreamTerminated
        _, expected = link.table.terminated(sid)
        if expected and sid == account.stale_sid:
            account.stale_sid = None  # the replaced subscription is gone for good
            self._end_shadow(account)
            account.refresh()
        if expected or link.retiring or self._closing:
            return True  # our own unsubscribe
        if account.link is not link or account.sid != sid:
            return True  # an older subscription of the account; the current one carries on
        # The account's live subscription ended (expired before renewal, or ended by the
        # server): renew at once; events until the new subscription is live may be lost.
        account.sid = None
        account.gap_started = self._terminated_at(event)
        if account.holding is None:
            account.holding = []
            account.refresh()
        account.renew_now.set()
        self._enqueue(event)
        return True

    def _terminated_at(self, event: Event) -> float:
        """Local epoch seconds from which events of a terminated subscription may be missing.

        Not the notice's arrival: a notice held up on the wire (a stall shorter than the stall
        detector) arrives late, and what the exchange dropped came after it ended the
        subscription, at the event's ``E``. That server time is mapped to the local clock with
        the measured offset, less the offset's error (half the RTT); without a measured offset
        the arrival time is all we know.
        """
        now = time.time()
        clock = self._client.clock
        rtt = clock.best_rtt
        event_time = getattr(event, "event_time", None)
        if rtt is None or not isinstance(event_time, int):
            return now
        return min(now, (event_time - clock.offset_ms) / 1000.0 - rtt / 2 - 0.001)

    def _route_slow(
        self, link: _Link, route: _Route, raw: Any, event: Event, sid: int | None
    ) -> None:
        if link.buffer is not None:
            link.buffer.append((route, raw, event, sid))
        else:
            self._admit(link, route, raw, event, sid)

    def _admit(self, link: _Link, route: _Route, raw: Any, event: Event, sid: int | None) -> None:
        """Deliver an event that needs a look: held, or while two sources carry the account."""
        if sid is not None:
            if sid == route.shadow:
                route.shadow_held.append((link, raw, event, sid))
                return
            if sid == route.stale_sid and route.shadow is None:
                self.stats.duplicates_dropped += 1  # the new subscription delivers these now
                return
        if route.holding is not None:
            route.holding.append((link, raw, event, sid))
            return
        overlap = route.overlap
        if overlap is not None:
            if link is route.primary and (route.primary_sid is None or sid == route.primary_sid):
                overlap.record(event_key(raw))
            elif overlap.duplicate(event_key(raw)):
                self.stats.duplicates_dropped += 1
                return
            elif overlap.done:
                self._end_overlap(route)
        self._enqueue(event)

    def _flush(self, link: _Link) -> None:
        """Release the events a replacement connection held while it was not live yet."""
        buffer, link.buffer = link.buffer, None
        for route, raw, event, sid in buffer or ():
            self._admit(link, route, raw, event, sid)

    def _malformed(self, link: _Link, frame: BytesLike) -> None:
        """A frame that is not a well-formed message: skip it, report it, and report a gap.

        Which account it was for cannot be known, and it may have been an event, so every
        account of the connection gets a (zero-length) StreamGap; with a mirror, a resync.
        """
        self.stats.malformed_frames += 1
        excerpt = bytes(frame[:120]).decode("utf-8", "replace")
        self._report(StreamError(f"malformed {link.channel.kind} frame skipped: {excerpt!r}"))
        now = time.time()
        for route in link.channel.routes():
            self._emit_gap(route, link.channel.kind, now, now, "malformed frame", restored=False)

    def _undecodable(self, event: Event, account: str) -> None:
        """A known event type with a bad field: delivered as UnknownEvent, and reported."""
        if isinstance(event, UnknownEvent) and event.error is not None:
            self._report(_undecodable(account, event.error))

    def _unroutable(self, sid: Any, frame: BytesLike) -> None:
        self.stats.malformed_frames += 1
        excerpt = bytes(frame[:120]).decode("utf-8", "replace")
        self._report(StreamError(f"event for unknown subscriptionId {sid!r}: {excerpt!r}"))

    # Dispatch

    def _enqueue(self, item: object) -> None:
        self._backlog.append(item)
        if self._waiter is not None:
            self._wake()

    def _wake(self) -> None:
        """Wake the dispatcher, which waits on ``_waiter`` when the backlog is empty."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _report(self, error: Exception) -> None:
        """Hand ``error`` to the ``on_error`` callbacks, in order with the events."""
        self._enqueue(_Failure(error))

    def _pause(self, link: _Link) -> None:
        """Stop reading ``link`` while the dispatch backlog is over its bound (slow callbacks).

        Explicit, never silent: reported once per episode. If it lasts longer than the server
        tolerates unanswered pings, the connection is cut and the reconnect reports a StreamGap.
        """
        if link in self._paused:
            return
        if not self._paused:
            text = (
                f"{len(self._backlog)} events wait for slow callbacks; "
                "reading paused until they catch up"
            )
            log.warning("user-data stream: %s", text)
            self._report(StreamError(text))
        self._paused.append(link)
        link.ws.transport.pause_reading()

    def _relieved(self) -> None:
        """Dispatcher side of :meth:`_pause`: resume reading once half the backlog is gone."""
        if self._paused and len(self._backlog) <= self._config.max_backlog // 2:
            paused, self._paused = self._paused, []
            for link in paused:
                if not link.dead:
                    link.ws.transport.resume_reading()

    def _handlers_for(self, cls: type) -> tuple[Callback, ...]:
        handlers = handlers_for(cls, self._registrations)
        self._handlers[cls] = handlers
        return handlers

    async def _dispatch(self) -> None:
        """The one consumer of the backlog: mirror, callbacks, ``events()`` readers, in order."""
        loop = asyncio.get_running_loop()
        backlog = self._backlog
        popleft = backlog.popleft
        table = self._handlers
        stats = self.stats
        mirror = self._mirror
        isawaitable = inspect.isawaitable
        decode = decode_event
        next_account = self._backlog_accounts.popleft
        while True:
            if not backlog:
                self._relieved()
                waiter = loop.create_future()
                self._waiter = waiter
                await waiter
                continue
            # One batch = what is queued now (typically the events of one socket read); then the
            # loop gets a turn, so socket reads and pings interleave with long bursts.
            delivered = 0
            for _ in range(len(backlog)):
                item = popleft()
                cls = item.__class__
                if cls is dict:
                    # A trade event left to us by _trade_handler. A malformed one decodes to
                    # UnknownEvent: reported first, as the handler does with what it decodes.
                    item = decode(item, next_account())
                    cls = item.__class__
                    if cls is UnknownEvent:
                        await self._deliver_undecodable(item)
                handlers = table.get(cls)
                if handlers is None:
                    if cls is _Failure:
                        await self._deliver_error(item.error)
                        continue
                    if cls is _Resync:
                        await self._resync(item)
                        continue
                    handlers = self._handlers_for(cls)
                if mirror is not None:
                    try:
                        mirror.apply(item)
                    except Exception as exc:
                        await self._deliver_error(exc)
                for handler in handlers:
                    try:
                        result = handler(item)
                        if result is not None and isawaitable(result):
                            await result
                    except Exception as exc:
                        stats.callback_errors += 1
                        exc.add_note(f"raised by {handler!r} for {item!r}")
                        await self._deliver_error(exc)
                delivered += 1
                readers = self._readers
                if readers:
                    for reader in readers:
                        if not reader._offer(item):
                            stats.overflows += 1
                            self._detach(reader)
            stats.events_delivered += delivered
            if backlog:
                self._relieved()
                await asyncio.sleep(0)

    async def _deliver_undecodable(self, event: Event) -> None:
        """Dispatcher side of :meth:`_undecodable`, for the events it decodes itself."""
        if isinstance(event, UnknownEvent) and event.error is not None:
            await self._deliver_error(_undecodable(event.account, event.error))

    async def _deliver_error(self, error: Exception) -> None:
        if not self._error_callbacks:
            log.error("user-data stream: %s", error, exc_info=error)
            return
        for callback in self._error_callbacks:
            try:
                result = callback(error)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_error callback %r raised", callback)

    async def _resync(self, item: _Resync) -> None:
        """Reload the mirror of one account from REST (in the dispatcher: later events wait).

        Balances, liabilities, margin level and open orders. ``as_of`` is the server time the
        requests were sent: the mirror keeps whatever the stream stamped later, so events that
        arrived meanwhile and are applied after the snapshot are never double counted.
        """
        mirror = self._mirror
        try:
            if mirror is None:
                return
            delays = self._config.backoff()
            for attempt in range(self._config.resync_attempts):
                try:
                    await self._load_snapshot(mirror, item.account)
                except BinanceError as exc:
                    await self._deliver_error(
                        StreamError(f"mirror resync of {item.account} failed: {exc}")
                    )
                    if attempt + 1 < self._config.resync_attempts:
                        await asyncio.sleep(next(delays))
                    continue
                if item.announce:
                    # Next in line: before any event received after the gap.
                    self._backlog.appendleft(Resynced(item.account, {"channel": item.channel}))
                return
            await self._deliver_error(
                StreamError(f"mirror of {item.account} could not be reloaded; it may be stale")
            )
        finally:
            if item.done is not None:
                item.done.set()

    async def _load_snapshot(self, mirror: AccountMirror, account: str) -> None:
        client = self._client
        as_of = client.clock.timestamp_ms(time.time())
        if account == CROSS:
            mirror.load_cross_snapshot(await client.get_account(), as_of=as_of)
            orders = await client.get_open_orders()
        else:
            mirror.load_isolated_snapshot(
                await client.get_isolated_account(symbols=[account]), as_of=as_of
            )
            orders = await client.get_open_orders(account, is_isolated=True)
        mirror.load_open_orders(account, orders, as_of=as_of)

    async def _measure_server_time(self) -> None:
        """Measure the server-time offset (if not fresh) before announcing a gap, for its
        server-time window. Best effort: without it the gap still comes, with what the clock
        knows (an older offset, or none: ``started_ms``/``ended_ms`` are then None)."""
        clock = self._client.clock
        if clock.best_rtt is not None and not clock.is_stale(time.time()):
            return
        try:
            async with asyncio.timeout(self._config.request_timeout):
                await self._client.sync_clock()
        except (BinanceError, TimeoutError) as exc:
            self._report(StreamError(f"measuring the server time for a gap window: {exc}"))

    def _emit_gap(
        self,
        route: _Route,
        channel: str,
        started: float,
        ended: float,
        reason: str,
        *,
        restored: bool = True,
    ) -> None:
        """Announce a discontinuity of ``route``; once ``restored``, release what it held."""
        self.stats.gaps += 1
        started_ms: int | None = None
        ended_ms: int | None = None
        clock = self._client.clock
        rtt = clock.best_rtt
        if rtt is not None:
            # The offset is off by at most half the round trip it was measured with, plus the
            # 1 ms resolution of serverTime (see ServerClock).
            started_ms, ended_ms = server_window_ms(
                started, ended, clock.offset_ms, rtt * 500.0 + 1.0, _GAP_IN_FLIGHT_MS
            )
        self._enqueue(
            StreamGap(
                route.name,
                started,
                ended,
                {"channel": channel, "reason": reason},
                started_ms=started_ms,
                ended_ms=ended_ms,
            )
        )
        if self._mirror is not None:
            self._enqueue(_Resync(route.name, channel))
        if not restored:
            return
        held, route.holding = route.holding, None
        route.refresh()
        for link, raw, event, sid in held or ():
            self._admit(link, route, raw, event, sid)

    # Dedupe windows

    def _begin_overlap(
        self, routes: Iterable[_Route], primary: _Link, primary_sid: int | None = None
    ) -> None:
        for route in routes:
            route.overlap_generation += 1
            route.overlap = OverlapFilter(self._config.dedupe_capacity)
            route.primary = primary
            route.primary_sid = primary_sid
            route.refresh()

    def _end_overlap(self, route: _Route) -> None:
        route.overlap = None
        route.primary = None
        route.primary_sid = None
        route.refresh()

    async def _end_overlap_later(self, routes: Sequence[_Route]) -> None:
        """Safety net: a filter normally ends at the new source's first new event."""
        generations = [(route, route.overlap_generation) for route in routes]
        await asyncio.sleep(self._config.dedupe_grace)
        for route, generation in generations:
            if route.overlap_generation == generation:  # no newer overlap began meanwhile
                if isinstance(route, _Account):
                    self._end_shadow(route)
                self._end_overlap(route)

    # Supervision: planned replacement and unplanned recovery

    async def _supervise(self, channel: _Channel) -> None:
        cfg = self._config
        while True:
            link = channel.link
            assert link is not None
            due = planned_reconnect_at(link.opened_at, cfg.connection_lifetime, cfg.lifetime_margin)
            if not link.wakeup.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(due):
                        await link.wakeup.wait()
            if link.dead:
                await self._recover(channel, link)
            else:
                log.info(
                    "replacing the %s connection (%s)",
                    channel.kind,
                    "serverShutdown" if link.shutdown else "lifetime",
                )
                await self._replace(channel, link)

    async def _replace(self, channel: _Channel, old: _Link) -> None:
        """Make-before-break: subscribe a new connection, then close and drain the old one."""
        delays: Any = None
        while not old.dead:
            async with channel.lock:
                routes = channel.routes()
                self._begin_overlap(routes, old)
                try:
                    new = await channel.open(buffering=True)
                except Exception as exc:  # the old connection still serves: report, retry later
                    self._report(StreamError(f"replacing the {channel.kind} connection: {exc}"))
                else:
                    channel.link = new
                    self.stats.planned_reconnects += 1
                    await self._retire(old)
                    if old.died_at is not None and old.died_at < new.live_at:
                        # Cut before the replacement was live: a real gap, however short.
                        await self._measure_server_time()
                        for route in routes:
                            self._emit_gap(
                                route, channel.kind, old.received_wall(), new.live_wall, old.reason
                            )
                    self._flush(new)
                    channel.live.set()
                    self._spawn(self._end_overlap_later(routes), "overlap-expiry")
                    return
                for route in routes:
                    self._end_overlap(route)
            if delays is None:
                delays = self._config.backoff()
            # Retry later, unless the old connection dies meanwhile (then recovery takes over).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next(delays)):
                    await old.closed.wait()

    async def _recover(self, channel: _Channel, old: _Link) -> None:
        """Reconnect after a loss with backoff, resubscribe, then report the gap."""
        started = old.received_wall()
        reason = old.reason
        await self._retire(old)
        self.stats.reconnects += 1
        delays = self._config.backoff()
        async with channel.lock:
            while True:
                await asyncio.sleep(next(delays))
                try:
                    new = await channel.open(buffering=True, fresh_key=True)
                except Exception as exc:  # keep trying (with backoff); the user sees each failure
                    self._report(StreamError(f"reconnecting the {channel.kind} stream: {exc}"))
                    await asyncio.sleep(_server_wait(exc))
                    continue
                break
            channel.link = new
            await self._measure_server_time()
            for route in channel.routes():
                since = started
                if isinstance(route, _Account) and route.holding is not None:
                    since = min(since, route.gap_started)  # terminated before the loss
                self._emit_gap(route, channel.kind, since, new.live_wall, reason)
            self._flush(new)
            channel.live.set()

    # Trade tokens

    async def _mint(self, account: _Account) -> tuple[str, int]:
        token = await self._client.create_listen_token(
            symbol=account.symbol, validity_ms=self._config.token_validity_ms
        )
        expiration = token.expiration_time
        if expiration is None:  # not in the answer: assume the validity we asked for
            validity = self._config.token_validity_ms or 86_400_000
            return token.token, int(time.time() * 1000) + validity
        return token.token, normalize_epoch_ms(expiration)

    async def _subscribe(self, link: _Link, account: _Account, *, reuse: bool) -> None:
        """Subscribe ``account`` on ``link`` (a new token unless the current one is not due)."""
        loop = link.ws.loop
        if reuse and account.token is not None and loop.time() < account.renew_at:
            token, expiration = account.token, account.expiration_ms
        else:
            token, expiration = await self._mint(account)
        result: Any = None
        for attempt in range(2):
            link.secrets.add(token)
            try:
                result = await self._ws_request(
                    link, _SUBSCRIBE, {"listenToken": token}, critical=True, account=account
                )
            except InvalidListenToken:
                if attempt:
                    raise
                token, expiration = await self._mint(account)  # expired or revoked: a new one
                continue
            except SubscriptionActive:
                # One subscription per account and connection (PROTOCOL.md §3.4): the account is
                # already live on this connection, which is what we wanted.
                if account.link is not link:
                    raise
            break
        if isinstance(result, dict) and "expirationTime" in result:
            with contextlib.suppress(TypeError, ValueError):
                expiration = normalize_epoch_ms(result["expirationTime"])
        account.token = token
        account.expiration_ms = expiration
        account.renew_now.clear()
        self._schedule_renewal(account)

    def _schedule_renewal(self, account: _Account) -> None:
        now_ms = int(time.time() * 1000)
        jitter = spread_jitter(account.index, len(self._accounts), self._rng.random())
        delay = self._config.renewal.delay(now_ms, account.expiration_ms, jitter)
        account.renew_at = asyncio.get_running_loop().time() + delay

    async def _renewal_loop(self, account: _Account) -> None:
        channel = self._trade
        assert channel is not None
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            delay = account.renew_at - loop.time()
            if delay > 0 and not account.renew_now.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await account.renew_now.wait()
            await channel.live.wait()
            async with channel.lock:
                link = channel.link
                urgent = account.renew_now.is_set()
                account.renew_now.clear()
                if link is None or link.dead:
                    continue  # the supervisor resubscribes every account
                if not urgent and account.sid is not None and loop.time() < account.renew_at:
                    continue  # a reconnect subscribed a fresh token meanwhile
                try:
                    await self._renew(link, account)
                except Exception as exc:
                    attempt += 1
                    self._report(StreamError(f"renewing the {account.name} subscription: {exc}"))
                    retry = self._config.renewal.retry_delay(
                        int(time.time() * 1000),
                        account.expiration_ms,
                        attempt,
                        at_least=_server_wait(exc),
                    )
                    account.renew_at = loop.time() + retry
                else:
                    attempt = 0

    async def _renew(self, link: _Link, account: _Account) -> None:
        terminated = account.sid is None
        await self._subscribe(link, account, reuse=False)
        self.stats.renewals += 1
        if account.shadow is not None and account.stale_sid is not None:
            # Answered with a new id (see _bind): end the old subscription. Its answer follows
            # every event the old id delivered, so from here the held events can be released.
            try:
                await self._ws_request(link, _UNSUBSCRIBE, {"subscriptionId": account.stale_sid})
            except BinanceError as exc:
                self._report(StreamError(f"unsubscribing a replaced subscription: {exc}"))
            self._end_shadow(account)
            self._spawn(self._end_overlap_later([account]), "overlap-expiry")
        if terminated:
            await self._measure_server_time()
            self._emit_gap(
                account, "trade", account.gap_started, time.time(), "subscription terminated"
            )

    # Risk listen key

    async def _keepalive_loop(self, channel: _RiskChannel) -> None:
        interval = self._config.risk_keepalive_interval
        delay = interval
        while True:
            await asyncio.sleep(delay)
            key = channel.key
            delay = interval
            if key is None:
                continue  # a reconnect is getting a new key
            try:
                await self._client.keepalive_risk_data_stream(key)
            except (InvalidListenKey, ListenKeyNotFound) as exc:
                # Gone on the server: a new key and a new connection (the recovery path).
                self._report(StreamError(f"risk listen key rejected on keepalive: {exc}"))
                channel.key = None
                link = channel.link
                if link is not None and not link.dead:
                    link.reason = "listen key rejected"
                    link.ws.transport.abort()
            except Exception as exc:
                self._report(StreamError(f"risk listen key keepalive failed: {exc}"))
                delay = min(interval, 60.0) / 4  # the key lives 60 min: retry well before
            else:
                self.stats.keepalives += 1


class _Channel:
    """One logical stream (trade or risk) and its current connection."""

    kind: str

    def __init__(self, stream: UserDataStream) -> None:
        self.stream = stream
        self.link: _Link | None = None
        self.lock = asyncio.Lock()
        self.live = asyncio.Event()  # set while `link` is subscribed and alive

    def routes(self) -> Sequence[_Route]:
        raise NotImplementedError

    async def open(self, *, buffering: bool, fresh_key: bool = False) -> _Link:
        """Connect and subscribe; the link is live (or holding events, if ``buffering``)."""
        raise NotImplementedError


class _TradeChannel(_Channel):
    kind = "trade"

    def __init__(self, stream: UserDataStream, accounts: list[_Account]) -> None:
        super().__init__(stream)
        self.accounts = accounts

    def routes(self) -> Sequence[_Route]:
        return self.accounts

    async def open(self, *, buffering: bool, fresh_key: bool = False) -> _Link:
        stream = self.stream
        url = stream._client.ws_api_url
        link = await stream._connect(url, self, buffering=buffering, display=url)
        previous = [(account, account.link, account.sid) for account in self.accounts]
        try:
            if len(self.accounts) == 1:
                await stream._subscribe(link, self.accounts[0], reuse=True)
            else:
                try:
                    async with asyncio.TaskGroup() as group:
                        for account in self.accounts:
                            group.create_task(stream._subscribe(link, account, reuse=True))
                except ExceptionGroup as failed:
                    raise _first_leaf(failed) from None
        except BaseException:
            # Accounts already bound to the failed connection go back to the one still serving.
            for account, old_link, old_sid in previous:
                if account.link is link:
                    account.link, account.sid = old_link, old_sid
            await stream._retire(link)
            raise
        link.mark_live()
        return link


class _RiskChannel(_Channel):
    kind = "risk"

    def __init__(self, stream: UserDataStream) -> None:
        super().__init__(stream)
        self.route = _Route(CROSS)
        self.key: str | None = None

    def routes(self) -> Sequence[_Route]:
        return (self.route,)

    async def open(self, *, buffering: bool, fresh_key: bool = False) -> _Link:
        stream = self.stream
        if fresh_key or self.key is None:
            # While a key is active Binance returns it again and extends it (§4.6), so this is
            # also the cheapest way to know the current key after a loss.
            self.key = (await stream._client.start_risk_data_stream()).listen_key
        base = stream._client.risk_stream_url
        return await stream._connect(
            f"{base}/ws/{self.key}",
            self,
            buffering=buffering,
            display=f"{base}/ws/<listenKey>",
            secret=self.key,
        )


def _server_wait(exc: BaseException) -> float:
    """Seconds the server asked us to wait (rate limit or ban), 0 when it did not."""
    if isinstance(exc, IPBanned):
        return max(0.0, exc.until - time.time())
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return exc.retry_after
    return 0.0


def _undecodable(account: str, error: str) -> StreamError:
    return StreamError(f"undecodable event for {account}: {error}")


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


# A StreamGap's server-time window is widened by this much on each side beyond the clock error:
# an event is stamped (E) a little before it is sent, and the cut is seen a little after it.
_GAP_IN_FLIGHT_MS: Final = 1000.0
_TRADE_SPECIAL: Final = frozenset({EventStreamTerminated, UnknownEvent})
# Wire types whose typed event needs no decision in the frame handler (no control event; a
# malformed one becomes an UnknownEvent, reported by whoever decodes it): the dispatcher decodes
# them. Risk events stay decoded in their handler: they are rare.
_DEFERRED_TYPES: Final = frozenset(
    {"executionReport", "outboundAccountPosition", "balanceUpdate", "listStatus"}
)
