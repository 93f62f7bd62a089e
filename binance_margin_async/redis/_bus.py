"""`RedisEventBus`: one user-data stream per account, read by any number of processes and hosts.

One process (the *publisher*) runs the account's :class:`~binance_margin_async.UserDataStream` and
appends every event it delivers, ``StreamGap`` and ``Resynced`` included, to a Redis Stream.
*Consumers* in other processes read typed events from it with the stream's own API (``on``,
``on_error``, ``async for event in consumer.events()``); a named consumer stores its position in
Redis and resumes there after a restart.

How it holds together:

* **One publisher per account.** Every candidate publisher polls for a lease (a key with a TTL,
  ``lease_ttl``, renewed every third of it). Taking it increments a fencing token, and the lease
  holds ``<token>:<holder>`` (the holder's unique id, so that a token reissued by a Redis that lost
  its data cannot let an old publisher through); every publish is a Lua script that appends only
  if the lease still holds *that* value, so a publisher that
  stalled past its lease (GC pause, partition) can never write after its successor. A publisher
  that dies stops renewing; a standby takes over within ``lease_ttl`` plus one poll, opens its own
  stream, and publishes a ``StreamGap`` per account covering the handover: from the predecessor's
  last *safe point* (the last moment it had published everything its stream had delivered,
  recorded in Redis with every batch and renewal) to the moment the new stream was live, on the
  exchange's clock (``started_ms``/``ended_ms``) widened by both clock errors and ``margin``.
  With ``mirror=True`` a ``Resynced`` per account follows (the new stream loaded its mirror
  from REST after subscribing).
* **Exactly once into Redis.** Events are batched; every entry carries the publisher's sequence
  number ``n``, and the publish script applies a batch only if it continues the sequence, so a
  batch retried after a lost reply is not written twice.
* **Bounded.** ``XADD MAXLEN ~ retention``: Redis keeps at least the last ``retention`` entries
  (a little more, trimming whole nodes). A consumer that falls further behind than that, or
  finds the numbering restarted (the Redis data was lost), reports a ``StreamGap`` with reason
  ``"retention"`` or ``"reset"`` before the next entry, never a silent hole.
* **Resume without loss or repeat.** A consumer's position is committed after the callbacks have
  returned for an entry and every ``events()`` reader has asked for the next one. A consumer that
  is stopped (``async with`` left, SIGTERM handled) resumes right after its last handled event;
  one killed outright may get again the entries it was handling when it died (at least once).
  ``consumer.position`` is also there to be stored with your own state for exactly once.
* **Redis down.** The publisher keeps its stream and buffers (up to ``max_outbox`` events, then
  the stream's own backlog bound applies); if its lease runs out meanwhile it stops, and takes
  part in the next election when Redis is back (the gap covers the outage). Consumers retry with
  backoff and resume from their position. Each outage is reported once to ``on_error`` as a
  :class:`~binance_margin_async.errors.StreamError`.

Redis Cluster: every key of one account carries the hash tag ``{<account>}``, so the scripts
(which touch the lease, the state hash and the stream together) run on one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import os
import re
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError, ResponseError

from .._reader import QueueReader
from .._streamcore import HandlerTable, expand_event_types
from ..errors import ParameterError, StreamError
from ..events import Event
from ._buscore import (
    Lease,
    Position,
    Progress,
    SafePoint,
    decode_payload,
    encode_event,
    gap_events,
    gap_window,
    hole_between,
    parse_entry_id,
    resynced_events,
)

if TYPE_CHECKING:
    from ..rest import MarginClient
    from ..stream import StreamConfig, UserDataStream

__all__ = ["BusConsumer", "BusEventIterator", "BusPublisher", "RedisEventBus"]

log = logging.getLogger(__name__)

E = TypeVar("E")
Callback = Callable[[Any], object]
ErrorCallback = Callable[[Exception], object]

_ACCOUNT_RE: Final = re.compile(r"[A-Za-z0-9_.:@-]{1,100}")
_REDIS_ERRORS: Final = (RedisError, OSError, TimeoutError)

# KEYS: lease, state, accounts. ARGV: holder, ttl ms, account names...
# Returns {token, last n, safe wall, safe server ms, safe error ms}; token 0 = someone holds it.
_ACQUIRE: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local token = redis.call('HINCRBY', KEYS[2], 'fence', 1)
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'holder', ARGV[1])
for i = 3, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
local s = redis.call('HMGET', KEYS[2], 'n', 'safe_wall', 'safe_server_ms', 'safe_error_ms')
return {token, s[1], s[2], s[3], s[4]}
"""

# KEYS: lease, state. ARGV: lease value, ttl ms, safe wall, safe server ms, safe error ms
# ("" = none).
# Returns 1 when renewed, 0 when the lease is gone or someone else's.
_RENEW: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'safe_wall', ARGV[3], 'safe_server_ms', ARGV[4],
             'safe_error_ms', ARGV[5])
end
return 1
"""

# KEYS: lease. ARGV: lease value. Deletes the lease only if it is still ours.
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lease, state, events. ARGV: lease value, maxlen, first n, safe wall, safe server ms,
# safe error ms, then (wall ms, server ms, payload) per event.
# Returns the last n written (or already written: a retried batch), -1 when fenced.
_PUBLISH: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = tonumber(redis.call('HGET', KEYS[2], 'n') or '0')
local first = tonumber(ARGV[3])
local count = (#ARGV - 6) / 3
local last = first + count - 1
if n >= last then return n end
if n ~= first - 1 then
  return redis.error_reply('bus sequence at ' .. n .. ', batch starts at ' .. first)
end
for i = 0, count - 1 do
  local b = 7 + i * 3
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
             'n', first + i, 'w', ARGV[b], 's', ARGV[b + 1], 'e', ARGV[b + 2])
end
redis.call('HSET', KEYS[2], 'n', last)
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'safe_wall', ARGV[4], 'safe_server_ms', ARGV[5],
             'safe_error_ms', ARGV[6])
end
return last
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _stop(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait for it to end.

    The cancellation is repeated: redis-py (8.2) can swallow one that lands while a blocking
    command such as ``XREAD BLOCK`` is reading its reply, and the task would go on.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    if not task.cancelled():
        task.exception()  # retrieved: _reporting has already reported it to on_error


async def _reporting(
    work: Coroutine[Any, Any, None],
    errors: _Reporter,
    on_failure: Callable[[Exception], None] | None = None,
) -> None:
    """Run a background loop; if it fails for good (a bug, or an error retrying cannot fix),
    say so to ``on_error`` rather than dying silently."""
    try:
        await work
    except Exception as exc:
        failure = StreamError(f"{errors.what} stopped for good: {exc!r}")
        failure.__cause__ = exc
        await errors.report(failure)
        if on_failure is not None:
            on_failure(failure)
        raise


class _LeaseLost(Exception):
    """Internal: this publisher no longer holds the lease."""


class _Reporter:
    """``on_error`` callbacks, with each outage reported once rather than at every retry."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._callbacks: list[ErrorCallback] = []
        self._outage: str | None = None

    def add(self, callback: ErrorCallback) -> None:
        if not callable(callback):
            raise ParameterError("callback", "must be callable")
        self._callbacks.append(callback)

    async def report(self, error: Exception) -> None:
        if not self._callbacks:
            log.warning("%s: %s", self.what, error)
            return
        for callback in self._callbacks:
            try:
                result = callback(error)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%s: on_error callback failed", self.what)

    async def outage(self, exc: BaseException) -> None:
        """Redis failed: reported at the first failure of an outage only."""
        if self._outage is None:
            self._outage = f"{type(exc).__name__}: {exc}"
            await self.report(StreamError(f"{self.what}: Redis unreachable ({self._outage})"))

    def recovered(self) -> None:
        if self._outage is not None:
            log.info("%s: Redis reachable again after %s", self.what, self._outage)
            self._outage = None


class RedisEventBus:
    """The event feed of one Binance account, shared through Redis by many processes and hosts.

    ::

        # the process that owns the stream (run it in two places for failover)
        async with RedisEventBus("redis://10.0.0.5:6379/0", account="main") as bus:
            async with bus.publisher(client, isolated_symbols=["BTCUSDT"], mirror=True):
                await asyncio.Event().wait()

        # any number of readers, anywhere
        async with RedisEventBus("redis://10.0.0.5:6379/0", account="main") as bus:
            consumer = bus.consumer("risk-monitor")      # named: resumes after a restart
            consumer.on(MarginLevelStatusChange, on_margin_call)
            async with consumer:
                async for event in consumer.events():
                    ...

    Args:
        redis: a ``redis://`` / ``rediss://`` / ``unix://`` URL (one server), or a client to
            share: ``redis.asyncio.Redis``, or ``redis.asyncio.RedisCluster`` for a cluster
            (then not closed by :meth:`aclose`).
        account: a label for the Binance account, the same in every process of that account
            (e.g. its UID or your own name): letters, digits and ``_.:@-``.
        prefix: first part of every key (``<prefix>:{<account>}:events`` ...).
        retention: entries Redis keeps (``XADD MAXLEN ~``; at least that many). Size it for the
            longest consumer downtime you want to bridge: a consumer further behind gets a
            ``StreamGap`` (reason ``"retention"``). ~1 KB per execution report.
        lease_ttl: seconds a publisher's lease lasts without renewal (renewed every third of
            it). A dead publisher is replaced after at most ``lease_ttl`` plus one poll
            (``lease_ttl / 3``) plus the time to subscribe.
        margin: seconds added on both sides of every reported window for events in flight.
        max_outbox: events a publisher buffers while Redis is slow before its stream callbacks
            wait (then the stream's own backlog bound applies).
    """

    def __init__(
        self,
        redis: str | aioredis.Redis | RedisCluster,
        *,
        account: str,
        prefix: str = "bma",
        retention: int = 100_000,
        lease_ttl: float = 3.0,
        margin: float = 1.0,
        max_outbox: int = 100_000,
    ) -> None:
        if not isinstance(account, str) or not _ACCOUNT_RE.fullmatch(account):
            raise ParameterError("account", "1-100 letters, digits or _.:@- characters")
        if not isinstance(prefix, str) or not _ACCOUNT_RE.fullmatch(prefix):
            raise ParameterError("prefix", "1-100 letters, digits or _.:@- characters")
        if not isinstance(retention, int) or retention < 1:
            raise ParameterError("retention", "must be a positive number of entries")
        if not (isinstance(lease_ttl, int | float) and 0.1 <= lease_ttl <= 3600):
            raise ParameterError("lease_ttl", "must be between 0.1 and 3600 seconds")
        if not (isinstance(margin, int | float) and 0 <= margin <= 3600):
            raise ParameterError("margin", "must be between 0 and 3600 seconds")
        if not isinstance(max_outbox, int) or max_outbox < 1:
            raise ParameterError("max_outbox", "must be a positive number of events")
        self._redis: aioredis.Redis | RedisCluster
        if isinstance(redis, str):
            self._redis = aioredis.Redis.from_url(redis)
            self._owns_redis = True
        else:
            self._redis = redis
            self._owns_redis = False
        self.account = account
        self.retention = retention
        self.lease_ttl = float(lease_ttl)
        self.margin = float(margin)
        self.max_outbox = max_outbox
        base = f"{prefix}:{{{account}}}"
        # One hash slot per account (the {tag}): the scripts touch several of these at once.
        self.keys: Final = {
            "events": f"{base}:events",
            "lease": f"{base}:lease",
            "state": f"{base}:state",
            "accounts": f"{base}:accounts",
            "positions": f"{base}:positions",
        }
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._publish = self._redis.register_script(_PUBLISH)

    def __repr__(self) -> str:
        # Not the URL: it may carry a password.
        return f"RedisEventBus(account={self.account!r}, retention={self.retention})"

    @property
    def redis(self) -> aioredis.Redis | RedisCluster:
        """The redis-py client in use."""
        return self._redis

    def publisher(
        self,
        client: MarginClient,
        *,
        cross: bool = True,
        isolated_symbols: Iterable[str] = (),
        risk: bool = False,
        mirror: bool = False,
        config: StreamConfig | None = None,
    ) -> BusPublisher:
        """A publisher candidate for this account: ``async with`` it to take part in the election.

        The arguments are those of :meth:`MarginClient.user_stream`, used each time this process
        becomes the publisher. Run one in two or more processes (or hosts) for failover.
        """
        if isinstance(isolated_symbols, str):
            raise ParameterError("isolated_symbols", "expected a sequence of symbols, not a str")
        symbols = tuple(isolated_symbols)
        stream_kwargs: dict[str, Any] = {
            "cross": cross,
            "isolated_symbols": symbols,
            "risk": risk,
            "mirror": mirror,
            "config": config,
        }
        # The accounts a handover gap is reported for: those the stream's events are tagged with.
        accounts = (["CROSS"] if cross or risk else []) + list(symbols)
        return BusPublisher(self, client, stream_kwargs, accounts, mirror=mirror)

    def consumer(self, name: str | None = None, *, start: str = "latest") -> BusConsumer:
        """A reader of the feed (``async with`` it to start reading).

        Args:
            name: a durable consumer: its position is stored in Redis under this name and a
                later consumer of the same name resumes there. Give each reader its own name
                (two live consumers of one name would overwrite each other's position).
                ``None``: nothing is stored.
            start: where to begin when there is no stored position: ``"latest"`` (only events
                published from now on), ``"earliest"`` (everything still retained), or a
                :attr:`BusConsumer.position` text saved earlier (resume right after it).
        """
        if name is not None and not (isinstance(name, str) and 0 < len(name) <= 200):
            raise ParameterError("name", "a non-empty string of at most 200 characters")
        if start not in ("latest", "earliest"):
            Position.parse(start)  # raises ParameterError for a malformed position
        return BusConsumer(self, name, start)

    async def aclose(self) -> None:
        """Close the Redis connections (only those this bus opened from a URL)."""
        if self._owns_redis:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisEventBus:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class BusPublisher:
    """Takes part in the publisher election of one account; see :meth:`RedisEventBus.publisher`.

    ``async with publisher:`` starts a background task that waits for the lease, then runs the
    stream and publishes until the block is left (the lease is then released at once, so a
    standby takes over without waiting for it to expire) or the lease is lost (then it goes back
    to waiting). Problems (Redis unreachable, the stream failing to start, the lease lost) go to
    the :meth:`on_error` callbacks, or are logged.
    """

    def __init__(
        self,
        bus: RedisEventBus,
        client: MarginClient,
        stream_kwargs: dict[str, Any],
        accounts: Sequence[str],
        *,
        mirror: bool,
    ) -> None:
        self._bus = bus
        self._client = client
        self._stream_kwargs = stream_kwargs
        self._accounts = tuple(accounts)
        self._mirror = mirror
        self.holder: Final = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        """This candidate's identity, as recorded in Redis while it publishes."""
        self._lease = Lease(bus.lease_ttl, bus.lease_ttl / 3)
        self._errors = _Reporter(f"event bus publisher {bus.account!r}")
        self._outbox: deque[tuple[Event, float]] = deque()
        self._has_items = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()
        self._stream: UserDataStream | None = None
        self._live = False
        self._next_n = 1
        self._own_safe: SafePoint | None = None
        self._leading = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.terms = 0
        """How many times this candidate became the publisher."""

    def __repr__(self) -> str:
        return f"BusPublisher(account={self._bus.account!r}, leading={self.leading})"

    def on_error(self, callback: ErrorCallback) -> None:
        """Call ``callback(exc)`` (sync or async) for each problem handled in the background,
        the stream's own ``on_error`` reports included."""
        self._errors.add(callback)

    @property
    def leading(self) -> bool:
        """True while this process is the account's publisher."""
        return self._leading.is_set()

    @property
    def token(self) -> int | None:
        """The fencing token of the current term (``None`` when not publishing)."""
        return self._lease.token

    @property
    def stream(self) -> UserDataStream | None:
        """The running stream while publishing (its ``mirror``, ``stats``...), else ``None``."""
        return self._stream

    async def wait_leading(self) -> None:
        """Return once this process is the publisher and its stream is live.

        Raises :class:`~binance_margin_async.errors.StreamError` if the publisher failed for
        good (an error that retrying cannot fix, such as keys in different cluster slots).
        """
        task = self._task
        if task is None:
            raise RuntimeError("enter the publisher (async with) first")
        leading = asyncio.ensure_future(self._leading.wait())
        try:
            await asyncio.wait([leading, task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            leading.cancel()
        if not self._leading.is_set():
            cause = None if task.cancelled() else task.exception()
            raise StreamError("the publisher stopped for good") from cause

    async def __aenter__(self) -> BusPublisher:
        if self._task is not None:
            raise RuntimeError("a BusPublisher can be started once; create a new one")
        self._task = asyncio.create_task(
            _reporting(self._run(), self._errors), name=f"bus-publisher-{self._bus.account}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await _stop(self._task)
        await self._give_back()
        self._end_term()

    # The election loop

    async def _run(self) -> None:
        delay = 0.0
        while True:
            if delay:
                await asyncio.sleep(delay)
            since = await self._acquire()
            delay = 0.0
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._keep_lease())
                    group.create_task(self._lead(since))
            except* _LeaseLost as lost:
                why = lost.exceptions[0]
                await self._errors.report(StreamError(f"publisher lost its lease: {why}"))
            except* Exception as failed:
                # The stream could not start or failed: give the lease back, let others try.
                error = failed.exceptions[0]
                await self._errors.report(StreamError(f"publisher stopped: {error!r}"))
                delay = self._bus.lease_ttl
                await self._give_back()
            # Cancelled (the block was left): __aexit__ gives the lease back and ends the term.
            self._end_term()

    def _lease_value(self) -> str | None:
        """What the lease key holds during our term: ``<token>:<holder>``."""
        token = self._lease.token
        return None if token is None else f"{token}:{self.holder}"

    def _end_term(self) -> None:
        self._leading.clear()
        self._live = False
        self._stream = None
        self._lease.lost()
        self._outbox.clear()
        self._has_room.set()

    async def _give_back(self) -> None:
        """Release the lease if it is still ours, so a standby need not wait for it to expire
        (best effort: Redis may be down)."""
        value = self._lease_value()
        if value is None:
            return
        with contextlib.suppress(*_REDIS_ERRORS):
            async with asyncio.timeout(self._bus.lease_ttl):
                await self._bus._release(keys=[self._bus.keys["lease"]], args=[value])

    async def _acquire(self) -> SafePoint | None:
        """Poll until this process holds the lease; returns the previous safe point, if any."""
        bus = self._bus
        poll = bus.lease_ttl / 3
        while True:
            sent = time.monotonic()
            try:
                async with asyncio.timeout(bus.lease_ttl):
                    reply = await bus._acquire(
                        keys=[bus.keys["lease"], bus.keys["state"], bus.keys["accounts"]],
                        args=[self.holder, math.ceil(bus.lease_ttl * 1000), *self._accounts],
                    )
            except _REDIS_ERRORS as exc:
                await self._errors.outage(exc)
                await asyncio.sleep(poll)
                continue
            self._errors.recovered()
            token = int(reply[0])
            if token > 0:
                break
            await asyncio.sleep(poll)
        self._lease.acquired(token, sent)
        self.terms += 1
        last_n = int(reply[1]) if reply[1] is not None else 0
        self._next_n = last_n + 1
        since = SafePoint.parse(*(reply[2:5] if len(reply) >= 5 else (None, None, None)))
        if since is None and last_n == 0:
            # The state is gone (a wiped or new Redis): our own last safe point, if we had one.
            since = self._own_safe
        log.info("event bus %r: publishing with token %d", bus.account, token)
        return since

    async def _keep_lease(self) -> None:
        bus = self._bus
        lease = self._lease
        sent = time.monotonic()
        while True:
            await asyncio.sleep(max(0.0, lease.next_renewal(sent) - time.monotonic()))
            sent = time.monotonic()
            safe = self._safe_now()
            args: list[Any] = [self._lease_value(), math.ceil(bus.lease_ttl * 1000)]
            args += safe.fields() if safe is not None else ("", "", "")
            try:
                async with asyncio.timeout(max(0.05, lease.deadline - sent)):
                    renewed = await bus._renew(
                        keys=[bus.keys["lease"], bus.keys["state"]], args=args
                    )
            except _REDIS_ERRORS as exc:
                await self._errors.outage(exc)
                if not lease.held(time.monotonic()):
                    raise _LeaseLost("it expired while Redis was unreachable") from exc
                continue
            self._errors.recovered()
            if not int(renewed):
                raise _LeaseLost("another publisher holds it")
            lease.renewed(sent)
            if safe is not None:
                self._own_safe = safe

    async def _lead(self, since: SafePoint | None) -> None:
        await self._sync_clock()
        stream = self._client.user_stream(**self._stream_kwargs)
        stream.on(Event, self._on_event)
        stream.on_error(self._errors.report)
        async with stream:
            self._stream = stream
            live = self._safe_point(time.time())
            markers: list[Event] = []
            if since is not None:
                window = gap_window(since, live, self._bus.margin * 1000.0)
                markers += gap_events(self._accounts, window, "publisher handover")
                if self._mirror:
                    markers += resynced_events(self._accounts, "publisher handover")
            # Ahead of whatever the stream delivered while it started.
            self._outbox.extendleft((marker, live.wall) for marker in reversed(markers))
            self._has_items.set()
            self._live = True
            self._leading.set()
            await self._send_loop(stream)

    # Publishing

    async def _on_event(self, event: Event) -> None:
        """The stream's callback for every event: queue it for the sender."""
        self._outbox.append((event, time.time()))
        self._has_items.set()
        if len(self._outbox) >= self._bus.max_outbox:
            # Redis is slow or down: hold the stream's dispatcher (its backlog takes over).
            self._has_room.clear()
            await self._has_room.wait()

    def _safe_point(self, wall: float) -> SafePoint:
        clock = self._client.clock
        rtt = clock.best_rtt
        if rtt is None:
            return SafePoint(wall)
        # ServerClock: the offset is off by at most half the RTT plus serverTime's 1 ms.
        return SafePoint(wall, clock.timestamp_ms(wall), rtt * 500.0 + 1.0)

    def _safe_now(self) -> SafePoint | None:
        """Now, if everything the stream has delivered so far is published; else None."""
        stream = self._stream
        if not self._live or stream is None or self._outbox or stream.backlog:
            return None
        return self._safe_point(time.time())

    async def _sync_clock(self) -> None:
        """Measure the exchange's clock, for the gap windows (best effort)."""
        try:
            await self._client.sync_clock()
        except Exception as exc:  # any failure: the gap windows then lack exchange times
            log.info("event bus: could not measure the exchange clock: %r", exc)

    async def _send_loop(self, stream: UserDataStream) -> None:
        bus = self._bus
        outbox = self._outbox
        batch_limit = 256
        while True:
            if not outbox:
                self._has_items.clear()
                await self._has_items.wait()
                continue
            count = min(len(outbox), batch_limit)
            batch = [outbox[i] for i in range(count)]
            safe = (
                self._safe_point(time.time())
                if count == len(outbox) and not stream.backlog
                else None
            )
            args: list[Any] = [
                self._lease_value(),
                bus.retention,
                self._next_n,
                *(safe.fields() if safe is not None else ("", "", "")),
            ]
            for event, wall in batch:
                server = self._safe_point(wall).server_ms
                args += (
                    math.floor(wall * 1000),
                    "" if server is None else server,
                    encode_event(event),
                )
            await self._publish(args)
            for _ in range(count):
                outbox.popleft()
            self._next_n += count
            if safe is not None:
                self._own_safe = safe
            if len(outbox) < bus.max_outbox:
                self._has_room.set()

    async def _publish(self, args: list[Any]) -> None:
        bus = self._bus
        delay = 0.05
        while True:
            try:
                async with asyncio.timeout(bus.lease_ttl):
                    last = await bus._publish(
                        keys=[bus.keys["lease"], bus.keys["state"], bus.keys["events"]], args=args
                    )
            except ResponseError as exc:
                # The sequence in Redis is not ours to continue: start a new term from scratch.
                raise _LeaseLost(f"unexpected bus state: {exc}") from exc
            except _REDIS_ERRORS as exc:
                await self._errors.outage(exc)
                if not self._lease.held(time.monotonic()):
                    raise _LeaseLost("it expired while Redis was unreachable") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, bus.lease_ttl / 3)
                continue
            self._errors.recovered()
            if int(last) < 0:
                raise _LeaseLost("another publisher holds it (fenced)")
            return


class BusConsumer:
    """A reader of an account's feed; see :meth:`RedisEventBus.consumer`.

    Same delivery API as :class:`~binance_margin_async.UserDataStream`: :meth:`on` (sync or
    async callbacks, awaited in order), :meth:`on_error`, :meth:`events` (bounded async
    iterators), ``async with``. Events arrive in the order the publisher's stream delivered them,
    typed exactly as there.
    """

    def __init__(self, bus: RedisEventBus, name: str | None, start: str) -> None:
        self._bus = bus
        self.name = name
        self._start = start
        self._handlers: HandlerTable[Callback] = HandlerTable()
        self._errors = _Reporter(f"event bus consumer {name or '(anonymous)'} of {bus.account!r}")
        self._readers: list[BusEventIterator] = []
        self._progress: Progress | None = None
        self._committed: Position | None = None
        self._commit_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.events_delivered = 0
        """How many entries this consumer has handed to its callbacks and readers."""
        self.gaps = 0
        """How many StreamGaps the consumer itself reported (retention, reset)."""
        self._seen: set[str] = set()  # accounts of the events delivered so far

    def __repr__(self) -> str:
        return f"BusConsumer(account={self._bus.account!r}, name={self.name!r})"

    @overload
    def on(self, event_type: type[E], callback: Callable[[E], object]) -> None: ...
    @overload
    def on(self, event_type: Any, callback: Callable[[Any], object]) -> None: ...

    def on(self, event_type: Any, callback: Callable[[Any], object]) -> None:
        """Call ``callback(event)`` for every event of ``event_type`` (a class, a union of them,
        or :data:`~binance_margin_async.events.Event` for all), as
        :meth:`UserDataStream.on <binance_margin_async.UserDataStream.on>`."""
        if not callable(callback):
            raise ParameterError("callback", "must be callable")
        self._handlers.add(expand_event_types(event_type), callback)

    def on_error(self, callback: ErrorCallback) -> None:
        """Call ``callback(exc)`` for exceptions raised by callbacks and for Redis outages."""
        self._errors.add(callback)

    def events(self, maxsize: int = 10_000) -> BusEventIterator:
        """A bounded async iterator over every event, from the moment it is created.

        An entry counts as handled by it when the loop asks for the next one (so a restart does
        not skip the one it was working on). Falling ``maxsize`` behind raises
        :class:`~binance_margin_async.errors.EventQueueOverflow` to it, as on the stream.
        """
        if maxsize <= 0:
            raise ParameterError("maxsize", "must be positive")
        iterator = BusEventIterator(self, maxsize)
        if self._closed:
            iterator._end()
        else:
            self._readers.append(iterator)
            if self._progress is not None:
                self._progress.attach(iterator)
        return iterator

    @property
    def position(self) -> str | None:
        """The text of the newest position every reader has finished (``None`` before start);
        pass it as ``start=`` to resume right after it."""
        return None if self._progress is None else str(self._progress.committable)

    # Lifecycle

    async def __aenter__(self) -> BusConsumer:
        if self._task is not None or self._closed:
            raise RuntimeError("a BusConsumer can be started once; create a new one")
        try:
            await self._resolve_start()
        except _REDIS_ERRORS as exc:
            await self._errors.outage(exc)  # the reader retries
        self._task = asyncio.create_task(
            _reporting(self._read_loop(), self._errors, on_failure=self._fail),
            name=f"bus-consumer-{self.name}",
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        await _stop(self._task)
        for reader in self._readers:
            reader._end()
        self._readers.clear()
        with contextlib.suppress(*_REDIS_ERRORS):
            async with asyncio.timeout(self._bus.lease_ttl):
                await self._commit()

    async def _resolve_start(self) -> None:
        bus = self._bus
        start: Position | None = None
        if self.name is not None:
            stored = await bus.redis.hget(bus.keys["positions"], self.name)
            if stored is not None:
                start = Position.parse(_text(stored))
        if start is None:
            if self._start == "earliest":
                start = Position.START
            elif self._start == "latest":
                newest: Any = await bus.redis.xrevrange(bus.keys["events"], count=1)
                start = self._position(*newest[0]) if newest else Position.START
            else:
                start = Position.parse(self._start)
        self._progress = Progress(start)
        self._committed = start
        for reader in self._readers:
            self._progress.attach(reader)

    @staticmethod
    def _position(entry_id: Any, fields: dict[Any, Any]) -> Position:
        get = {_text(key): value for key, value in fields.items()}.get
        server = get("s")
        return Position(
            parse_entry_id(_text(entry_id)),
            int(get("n") or 0),
            int(get("w") or 0) / 1000.0,
            int(server) if server not in (None, b"", "") else None,
        )

    async def _read_loop(self) -> None:
        bus = self._bus
        delay = 0.05
        while True:
            try:
                if self._progress is None:
                    await self._resolve_start()
                assert self._progress is not None
                async with asyncio.timeout(bus.lease_ttl + 1.0):
                    reply: Any = await bus.redis.xread(
                        {bus.keys["events"]: self._progress.last.entry_id}, count=256, block=1000
                    )
            except _REDIS_ERRORS as exc:
                await self._errors.outage(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._errors.recovered()
            delay = 0.05
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    await self._handle(entry_id, fields)

    async def _handle(self, entry_id: Any, fields: dict[Any, Any]) -> None:
        progress = self._progress
        assert progress is not None
        position = self._position(entry_id, fields)
        hole = hole_between(
            progress.last, position.n, position.wall, position.server_ms, self._bus.margin * 1000
        )
        if hole is not None:
            reason, window = hole
            try:
                accounts = await self._bus.redis.smembers(self._bus.keys["accounts"])
            except _REDIS_ERRORS as exc:
                await self._errors.outage(exc)
                accounts = set()
            # The accounts the publisher registered; else those seen here (else the cross one).
            names = sorted({_text(account) for account in accounts} or self._seen or {"CROSS"})
            for gap in gap_events(names, window, reason):
                self.gaps += 1
                await self._deliver(gap, progress.last)
        payload = fields.get(b"e", fields.get("e", b""))
        event = decode_payload(payload if isinstance(payload, bytes) else str(payload).encode())
        await self._deliver(event, position)

    async def _deliver(self, event: Event, position: Position) -> None:
        progress = self._progress
        assert progress is not None
        progress.handed_out(position)
        self.events_delivered += 1
        if event.account:
            self._seen.add(event.account)
        for reader in list(self._readers):
            if not reader._offer((event, position)):
                self._detach(reader)
        for callback in self._handlers.lookup(type(event)):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                exc.add_note(f"in a callback for {type(event).__name__} of {event.account!r}")
                await self._errors.report(exc)
        progress.done(Progress.CALLBACKS, position)
        await self._commit_or_report()

    def _fail(self, error: Exception) -> None:
        """The reader stopped for good: every ``events()`` loop raises ``error``."""
        for reader in self._readers:
            reader._fail(error)

    def _detach(self, reader: BusEventIterator) -> None:
        if reader in self._readers:
            self._readers.remove(reader)
        if self._progress is not None:
            self._progress.detach(reader)

    async def _commit(self) -> None:
        """Store the committable position (named consumers), in order, skipping no-ops."""
        if self.name is None or self._progress is None:
            return
        async with self._commit_lock:
            position = self._progress.committable
            if position == self._committed:
                return
            await self._bus.redis.hset(self._bus.keys["positions"], self.name, str(position))
            self._committed = position

    async def _commit_or_report(self) -> None:
        """Commit; if Redis is away, report it and go on (a later commit stores the position)."""
        try:
            async with asyncio.timeout(self._bus.lease_ttl):
                await self._commit()
        except _REDIS_ERRORS as exc:
            await self._errors.outage(exc)

    async def _reader_done(self, reader: BusEventIterator, position: Position) -> None:
        if self._progress is not None:
            self._progress.done(reader, position)
        await self._commit_or_report()


class BusEventIterator(QueueReader[tuple[Event, Position]]):
    """A bounded pull-style view of a :class:`BusConsumer` (see :meth:`BusConsumer.events`)."""

    __slots__ = ("_consumer", "_current")

    def __init__(self, consumer: BusConsumer, maxsize: int) -> None:
        super().__init__(maxsize)
        self._consumer = consumer
        self._current: Position | None = None

    def __aiter__(self) -> BusEventIterator:
        return self

    async def __anext__(self) -> Event:
        current, self._current = self._current, None
        if current is not None:
            await self._consumer._reader_done(self, current)
        event, self._current = await self._next()
        return event

    def close(self) -> None:
        """Stop receiving events (and stop holding the consumer's position back)."""
        self._consumer._detach(self)
        self._end()
