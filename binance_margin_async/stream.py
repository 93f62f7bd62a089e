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

This module is the thin asyncio driver of :class:`~._session.StreamSession`, which holds the whole
policy (renewal on the server clock, make-before-break replacement, recovery with backoff, gaps,
resync, the first mirror load, risk recovery, the backlog bound). The driver carries out the
session's actions and owns the timer and the dispatcher:

* the connections are a :class:`~._links.LinkSet`, each one websockets' documented sans-I/O
  ``ClientProtocol`` on our own :class:`asyncio.Protocol` (:class:`~._wslink.WsLink`): every
  message is handed to the session the moment it is parsed, and pings are answered by the
  protocol as they arrive, whatever the callbacks are doing;
* the REST calls (tokens, the listen key, snapshots, the margin level) are made by
  :class:`~._streamrest.StreamRest`, which feeds each outcome back to the session;
* one dispatcher task feeds the callbacks (sync ones called, async ones awaited, in order) and
  the bounded ``events()`` readers from the session's outbox. A slow consumer never stops the
  socket from being read: past ``StreamConfig.max_backlog`` waiting events the session drops
  events and reports the loss as a :class:`~.events.StreamGap` (and a resync), so memory stays
  bounded and nothing is lost silently;
* every listen-token/listen-key call goes through the client (and so its rate limiter); every
  WS API request through ``limiter.acquire_ws`` + ``on_ws_response``; every connection attempt
  through ``limiter.acquire_ws_connect``; every background task lives in one
  :class:`asyncio.TaskGroup` owned by ``async with``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from ._links import LinkSet
from ._reader import QueueReader
from ._session import (
    CROSS,
    ChannelState,
    CloseLink,
    Failure,
    Now,
    OpenLink,
    Ping,
    RestAction,
    Send,
    StreamConfig,
    StreamSession,
)
from ._streamcore import (
    HandlerTable,
    StreamClient,
    StreamStats,
    expand_event_types,
)
from ._streamrest import StreamRest
from .errors import BinanceError, ParameterError, StreamError
from .events import (
    Event,
    LiabilityChange,
    ListenKeyExpired,
    MarginLevelStatusChange,
    UnknownEvent,
    decode_event,
)

if TYPE_CHECKING:
    from .mirror import AccountMirror

__all__ = [
    "ChannelState",
    "EventIterator",
    "StreamClient",
    "StreamConfig",
    "StreamStats",
    "UserDataStream",
]

log = logging.getLogger(__name__)

_TASK_PREFIX: Final = "binance-stream:"
# Events that only the risk channel carries: registering for them without risk=True is a mistake.
_RISK_ONLY: Final = (LiabilityChange, MarginLevelStatusChange, ListenKeyExpired)
E = TypeVar("E")
Callback = Callable[[Any], object]
ErrorCallback = Callable[[Exception], object]


class _State(Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class EventIterator(QueueReader[Event]):
    """A bounded pull-style view of a :class:`UserDataStream` (see :meth:`UserDataStream.events`).

    Yields every event in delivery order. When the reader falls ``maxsize`` events behind, the
    events already queued are still returned, then :class:`~.errors.EventQueueOverflow` is raised
    and the iterator ends: events after that point were not queued for it (callbacks still got
    them). Call ``stream.events()`` again to resume, and treat the overflow like a gap. The
    iterator also ends (``StopAsyncIteration``) when the stream closes, or after :meth:`close`.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: UserDataStream, maxsize: int) -> None:
        super().__init__(maxsize)
        self._stream = stream

    def __aiter__(self) -> EventIterator:
        return self

    async def __anext__(self) -> Event:
        if self._stream._state is _State.NEW:
            raise StreamError(
                "events() iterated on a stream that was never started: use `async with stream`"
            )
        return await self._next()

    def close(self) -> None:
        """Stop receiving events; the iterator ends once the queued ones are consumed."""
        self._stream._detach(self)
        self._end()


class UserDataStream:
    """Margin user-data events of one API key: cross, isolated symbols and the risk stream.

    Usually created by :meth:`MarginClient.user_stream`. Register callbacks with :meth:`on` and
    :meth:`on_error`, then ``async with stream:`` (returns once every subscription is live); pull
    with :meth:`events` as an alternative. Leaving the block unsubscribes, closes every socket and
    cancels every task of the stream; events still waiting for the dispatcher are not delivered.

    Args:
        client: the REST client (tokens, listen keys, snapshots, URLs and the shared limiter),
            anything with the :class:`StreamClient` methods.
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
        client: StreamClient,
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
        self._risk = risk
        self._accounts = ([CROSS] if cross else []) + list(symbols)
        self._mirror: AccountMirror | None = None
        if mirror:
            from .mirror import AccountMirror

            self._mirror = AccountMirror()
        self._session = StreamSession(
            self._accounts,
            risk=risk,
            config=self._config.session_config(mirror=mirror),
            rng=random.Random(self._config.seed),
            on_answer=self._on_ws_answer,
        )
        self.stats: StreamStats = self._session.stats
        """Counters: reconnects, renewals, gaps, events delivered, duplicates dropped, ..."""
        self._handlers: HandlerTable[Callback] = HandlerTable()
        self._error_callbacks: list[ErrorCallback] = []
        self._readers: tuple[EventIterator, ...] = ()
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._task_group: asyncio.TaskGroup | None = None
        self._state = _State.NEW
        self._starting: asyncio.Future[None] | None = None
        self._loaded: asyncio.Future[None] | None = None  # the first mirror load is done
        self._last_lag: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._final_answer: asyncio.Future[None] | None = None
        self._links = LinkSet(
            client,
            self._session,
            self._config,
            now=self._now,
            after_input=self._after_input,
            spawn=self._spawn,
            claim_start_error=self._fail_start,
            running=lambda: self._state is _State.RUNNING,
        )
        self._rest_calls = StreamRest(
            client, self._session, self._mirror, self._now, self._fail_start
        )

    def __repr__(self) -> str:
        return (
            f"UserDataStream(accounts={self._accounts}, risk={self._risk}, "
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

        Raises:
            ParameterError: ``callback`` is not callable, or ``event_type`` only names risk
                events (``MarginLevelStatusChange``, ``LiabilityChange``, ``ListenKeyExpired``)
                on a stream created without ``risk=True``: it would never be called.
        """
        if not callable(callback):
            raise ParameterError("callback", "must be callable")
        classes = expand_event_types(event_type)
        if not self._risk and classes and all(issubclass(c, _RISK_ONLY) for c in classes):
            names = ", ".join(c.__name__ for c in classes)
            raise ParameterError(
                "event_type", f"{names} come from the risk stream: create it with risk=True"
            )
        self._handlers.add(classes, callback)

    def on_error(self, callback: ErrorCallback) -> None:
        """Call ``callback(exc)`` for every problem the stream handles by itself.

        That is: exceptions raised by event callbacks (the original exception, with a note naming
        the event), and :class:`~.errors.StreamError` reports of lost connections, reconnect and
        renewal failures, malformed frames and a full dispatch backlog. Sync or async. Without
        any ``on_error`` callback these are logged (losses the stream recovered from at WARNING,
        without a traceback).
        """
        if not callable(callback):
            raise ParameterError("callback", "must be callable")
        self._error_callbacks.append(callback)

    def events(self, maxsize: int = 10_000) -> EventIterator:
        """A bounded async iterator over every event, in delivery order.

        ``async for event in stream.events(): ...``. It fills from the moment it is created;
        when it falls ``maxsize`` events behind it raises :class:`~.errors.EventQueueOverflow`
        (after the events queued before the overflow) instead of dropping silently. The
        connection is never affected. Iterating it on a stream that was never started raises
        :class:`~.errors.StreamError` (it would wait forever).
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
    def state(self) -> dict[str, ChannelState]:
        """Each channel's state now: ``{"trade": ChannelState.LIVE, "risk": ...}``.

        ``connecting`` until first live, ``live``, ``recovering`` after a loss (a
        :class:`~.events.StreamGap` follows once live again), ``closed`` after the block. Every
        change is also delivered as a :class:`~.events.StateChanged` event.
        """
        return {channel.value: state for channel, state in self._session.state.items()}

    @property
    def mirror(self) -> AccountMirror:
        """The account mirror (only with ``mirror=True``)."""
        if self._mirror is None:
            raise AttributeError("this stream was created with mirror=False")
        return self._mirror

    @property
    def backlog(self) -> int:
        """Events waiting for the dispatcher right now (callbacks behind the socket)."""
        return len(self._session.outbox)

    @property
    def last_event_lag(self) -> float | None:
        """Seconds between the exchange's event time ``E`` of the latest trade event and its
        delivery (includes clock skew and callback delays); ``None`` before the first event."""
        return self._last_lag

    # Lifecycle

    async def __aenter__(self) -> UserDataStream:
        if self._state is not _State.NEW:
            raise RuntimeError("a UserDataStream can be started once; create a new one")
        self._state = _State.RUNNING
        self._loop = asyncio.get_running_loop()
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
        clock = self._client.clock
        if clock.best_rtt is None or clock.is_stale(time.time()):
            # Renewal runs on the server's clock, and gap windows are stamped with it.
            with contextlib.suppress(BinanceError, TimeoutError):
                async with asyncio.timeout(self._config.request_timeout):
                    await self._client.sync_clock()
        self._spawn(self._dispatch(), "dispatch")
        self._spawn(self._links.sender(), "sender")
        self._starting = asyncio.get_running_loop().create_future()
        self._session.start(self._now())
        self._after_input()
        await self._starting
        self._starting = None
        # With a mirror, ``async with`` also waits for its first load (what to load, and how
        # often to retry, is the session's policy: StreamSession.load_mirror).
        self._session.load_mirror(self._now())
        self._after_input()
        if self._session.loading:
            self._loaded = asyncio.get_running_loop().create_future()
            await self._loaded
            self._loaded = None

    async def _shutdown(self) -> None:
        """Stop everything; runs once, from ``__aexit__`` or a failed ``__aenter__``."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        group = self._task_group
        try:
            await self._unsubscribe_all()
            self._session.close(self._now())
            self._after_input()  # the session's CloseLink actions start every closing handshake
            await self._links.close_all()
        finally:
            if self._timer is not None:
                self._timer.cancel()
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

    async def _unsubscribe_all(self) -> None:
        """Polite: end every subscription of the trade session, wait (bounded) for the answer."""
        if not self._session.unsubscribe_all(self._now()):
            return
        self._final_answer = asyncio.get_running_loop().create_future()
        self._after_input()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.close_timeout):
                await self._final_answer

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

    # Driving the session

    def _now(self) -> Now:
        loop = self._loop
        assert loop is not None
        clock = self._client.clock
        error = clock.error_ms
        if error is None:
            return Now(loop.time(), time.time())
        return Now(loop.time(), time.time(), clock.offset_ms, error)

    def _after_input(self) -> None:
        """After every input: carry out the actions, wake the dispatcher, re-arm the timer."""
        session = self._session
        if session.actions:
            self._run_actions()
        if session.outbox and self._waiter is not None:
            self._wake()
        deadline = session.deadline
        if deadline != self._armed and self._state is _State.RUNNING:
            if self._timer is not None:
                self._timer.cancel()
            self._armed = deadline
            self._timer = (
                None
                if deadline is None or self._loop is None
                else self._loop.call_at(deadline, self._on_timer)
            )
        starting = self._starting
        if starting is not None and not starting.done() and session.is_live():
            starting.set_result(None)

    def _on_timer(self) -> None:
        self._timer = None
        self._armed = None
        self._session.tick(self._now())
        self._after_input()

    def _fail_start(self, error: BaseException) -> bool:
        """During ``__aenter__``, the first failure is raised to the caller."""
        starting = self._starting
        if starting is not None and not starting.done():
            starting.set_exception(error)
            return True
        return False

    def _run_actions(self) -> None:
        """Link actions to the links, REST actions to tasks of their own."""
        session = self._session
        links = self._links
        actions, session.actions = session.actions, []
        for action in actions:
            cls = action.__class__
            if cls is Send:
                assert isinstance(action, Send)
                links.send(action)
            elif cls is Ping:
                assert isinstance(action, Ping)
                links.ping(action)
            elif cls is CloseLink:
                assert isinstance(action, CloseLink)
                links.close(action)
            elif cls is OpenLink:
                assert isinstance(action, OpenLink)
                links.open(action)
            elif self._task_group is not None:
                assert isinstance(action, RestAction)
                self._spawn(self._rest(action), "rest")

    async def _rest(self, action: RestAction) -> None:
        """One REST call the session asked for; then whatever its outcome set off."""
        try:
            await self._rest_calls.run(action)
        finally:
            self._after_input()
            loaded = self._loaded
            if loaded is not None and not loaded.done() and not self._session.loading:
                loaded.set_result(None)

    def _on_ws_answer(self, status: int, rate_limits: Any, error_data: Any) -> None:
        self._client.limiter.on_ws_response(
            status, rate_limits, error_data, account=self._client.account
        )
        final = self._final_answer
        if final is not None and not final.done():
            final.set_result(None)

    # Dispatch

    def _wake(self) -> None:
        """Wake the dispatcher, which waits on ``_waiter`` when the outbox is empty."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _dispatch(self) -> None:
        """The one consumer of the outbox: mirror, callbacks, ``events()`` readers, in order."""
        loop = asyncio.get_running_loop()
        session = self._session
        backlog = session.outbox
        popleft = backlog.popleft
        next_account = session.outbox_accounts.popleft
        table = self._handlers.cache
        stats = self.stats
        mirror = self._mirror
        isawaitable = inspect.isawaitable
        decode = decode_event
        while True:
            if not backlog:
                waiter = loop.create_future()
                self._waiter = waiter
                await waiter
                continue
            # One batch = what is queued now (typically the events of one socket read); then the
            # loop gets a turn, so socket reads and pings interleave with long bursts.
            raw: Any = None
            for _ in range(len(backlog)):
                item = popleft()
                cls = item.__class__
                if cls is dict:
                    # A trade event routed by the session; decoded here, right before its
                    # callbacks: raw dicts in a long backlog cost the GC far less than events.
                    raw = item
                    item = decode(item, next_account())
                    cls = item.__class__
                    if isinstance(item, UnknownEvent) and item.error is not None:
                        await self._deliver_error(
                            StreamError(f"undecodable event for {item.account}: {item.error}")
                        )
                handlers = table.get(cls)
                if handlers is None:
                    if cls is Failure:
                        await self._deliver_error(item.error, recovered=item.recovered)
                        continue
                    handlers = self._handlers.lookup(cls)
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
                # Counted as delivered, not per batch: the counter never lags what callbacks saw.
                stats.events_delivered += 1
                readers = self._readers
                if readers:
                    for reader in readers:
                        if not reader._offer(item):
                            stats.overflows += 1
                            self._detach(reader)
            if raw is not None:
                event_time = raw.get("E")
                if isinstance(event_time, int):
                    self._last_lag = time.time() - event_time / 1000.0
            if backlog:
                await asyncio.sleep(0)

    async def _deliver_error(self, error: Exception, *, recovered: bool = False) -> None:
        if not self._error_callbacks:
            if recovered:
                log.warning("user-data stream: %s (recovering)", error)
            else:
                log.error("user-data stream: %s", error, exc_info=error)
            return
        for callback in self._error_callbacks:
            try:
                result = callback(error)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_error callback %r raised", callback)
