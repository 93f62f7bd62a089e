"""Pure decisions of the user-data stream: schedules, backoff, routing, dedupe, handler tables.

Nothing here touches a socket, an event loop or the wall clock: every time is an argument and every
random draw comes from an injected callable, so the stream's policy is tested exhaustively without
an event loop (``tests/test_stream_core.py``). :mod:`.stream` is the asyncio shell around it.

Binance docs: https://developers.binance.com/docs/margin_trading/trade-data-stream
"""

from __future__ import annotations

import math
import random
import types
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Protocol,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

import orjson

if TYPE_CHECKING:
    from .clock import ServerClock
    from .models import IsolatedMarginAccount, ListenKey, ListenToken, MarginAccount, Order
    from .ratelimit import Limiter

__all__ = [
    "BackoffPolicy",
    "HandlerTable",
    "OverlapFilter",
    "RenewalPolicy",
    "StreamClient",
    "StreamStats",
    "event_key",
    "expand_event_types",
    "exponential_backoff",
    "handlers_for",
    "normalize_epoch_ms",
    "planned_reconnect_at",
    "server_window_ms",
    "spread_jitter",
    "stall_deadline",
]

H = TypeVar("H")

# A listen token's `expirationTime` is ms in the REST answer but the subscribe example shows µs
# (PROTOCOL.md §3.3, unconfirmed which one is real). Epoch ms has 13 digits until the year 2286, so
# anything with more digits is a finer unit.
_MS_UPPER: Final = 10**13
_US_UPPER: Final = 10**16


def normalize_epoch_ms(value: int | float | str) -> int:
    """Return an epoch timestamp in milliseconds, whatever unit (s, ms, µs, ns) it came in.

    Raises:
        ValueError: ``value`` is not a positive number.
    """
    number = int(value)
    if number <= 0:
        raise ValueError(f"not an epoch timestamp: {value!r}")
    if number < 10**11:  # fewer than 12 digits: seconds (ms would be before 1973)
        return number * 1000
    if number < _MS_UPPER:
        return number
    if number < _US_UPPER:
        return number // 1000
    return number // 1_000_000


def spread_jitter(index: int, count: int, draw: float) -> float:
    """Stratified jitter in ``[0, 1)``: account ``index`` of ``count`` draws within its own slice.

    Independent draws can still bunch; one slice per account keeps the renewals of many isolated
    symbols apart, so they never hit ``POST /sapi/v1/userListenToken`` in one burst.
    """
    if count <= 0 or not 0 <= index < count:
        raise ValueError(f"index {index} out of range for {count} accounts")
    return (index + min(max(draw, 0.0), 0.999_999)) / count


@dataclass(frozen=True, slots=True)
class RenewalPolicy:
    """When to renew a listen token: at a jittered fraction of its remaining validity.

    Binance does not renew a subscription by itself; a new token subscribed on the same connection
    extends it (PROTOCOL.md §3.3). Renewing at 60-80 % leaves the remaining 20-40 % of the validity
    for retries when the renewal fails (rate limit, network).
    """

    low: float = 0.6
    high: float = 0.8
    min_delay: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.low <= self.high < 1.0:
            raise ValueError("renewal fractions must satisfy 0 < low <= high < 1")
        if self.min_delay < 0:
            raise ValueError("min_delay must be >= 0")

    def delay(self, now_ms: int, expiration_ms: int, jitter: float) -> float:
        """Seconds from ``now_ms`` until the renewal of a token expiring at ``expiration_ms``.

        ``jitter`` in ``[0, 1)`` picks the point between ``low`` and ``high``. The result is never
        below ``min_delay`` (a token that claims to be expired already must not cause a tight
        renewal loop) unless the whole remaining validity is shorter than that.
        """
        remaining = max(0, expiration_ms - now_ms) / 1000.0
        fraction = self.low + (self.high - self.low) * jitter
        return max(remaining * fraction, min(self.min_delay, remaining * self.high))

    def retry_delay(
        self, now_ms: int, expiration_ms: int, attempt: int, *, at_least: float = 0.0
    ) -> float:
        """Seconds before retrying a failed renewal (``attempt`` = 1 for the first retry).

        Doubling from 1 s up to 60 s; while the token still lives, at most half of what remains,
        so a few retries fit before it dies (never under 50 ms). ``at_least`` is what the
        server asked for (a rate limit's ``retry_after``).
        """
        backoff = float(min(2 ** max(attempt - 1, 0), 60))
        remaining = (expiration_ms - now_ms) / 1000.0
        if remaining > 0:
            backoff = max(0.05, min(backoff, remaining / 2))
        return max(backoff, at_least)


BackoffPolicy = Callable[[], Iterator[float]]
"""Factory of reconnect delays: called once per outage, so a success resets the backoff."""


def exponential_backoff(
    *,
    initial: float = 0.5,
    factor: float = 2.0,
    maximum: float = 30.0,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Jittered exponential reconnect delays, in seconds (the default :data:`BackoffPolicy`).

    The first delay is uniform in ``[0, initial)`` (RFC 6455 §7.2.3: spread the reconnects of many
    clients cut by the same outage); later ones use "equal jitter", half fixed and half random, so
    a long outage never degrades into immediate retries. Connection attempts are also limited by
    the rate limiter (300 per 5 min per IP).
    """
    if initial <= 0 or factor < 1 or maximum < initial:
        raise ValueError("need initial > 0, factor >= 1, maximum >= initial")
    yield rng() * initial
    delay = initial
    while True:
        yield delay / 2 + rng() * delay / 2
        delay = min(delay * factor, maximum)


def planned_reconnect_at(opened_at: float, lifetime: float, margin: float) -> float:
    """When to start the make-before-break replacement of a connection opened at ``opened_at``.

    Binance cuts WebSocket connections after 24 h; replacing the connection ``margin`` seconds
    early leaves time to subscribe the new one before the old is cut. A margin larger than the
    lifetime (a configuration slip) still waits half of the lifetime instead of reconnecting in a
    loop.
    """
    return opened_at + max(lifetime - margin, lifetime / 2)


def stall_deadline(last_received: float, ping_interval: float, grace: float) -> float:
    """The time after which a connection that has received nothing since ``last_received`` is dead.

    The server pings every ``ping_interval`` seconds (20 s on Binance), so silence longer than the
    interval plus ``grace`` means the path is broken even if TCP has not noticed yet.
    """
    return last_received + ping_interval + grace


def server_window_ms(
    started: float, ended: float, offset_ms: float, error_ms: float, margin_ms: float
) -> tuple[int, int]:
    """The local window ``[started, ended]`` (epoch seconds) on the server's clock, in epoch ms.

    ``offset_ms`` is the estimated server-minus-local offset and ``error_ms`` how far it may be
    off; the window is widened by that error and by ``margin_ms`` on both sides (and rounded
    outwards), so it contains every server time that corresponds to a local time inside.
    """
    widen = error_ms + margin_ms
    return (
        math.floor(started * 1000.0 + offset_ms - widen),
        math.ceil(ended * 1000.0 + offset_ms + widen),
    )


def event_key(event: Any) -> bytes:
    """The identity of one wire event: its whole content, canonically serialised.

    Two deliveries of one event on two connections are equal; two different events differ in
    some field. A subset of fields is not enough: two ``outboundAccountPosition`` of one account
    in the same millisecond share ``E`` and ``u`` and differ only in their balances.
    """
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


class OverlapFilter:
    """Delivers each event once while two sources carry one account (make-before-break).

    The old source is authoritative: everything it delivers is delivered, and its keys are
    recorded in order. The new source's events are held until the old one is closed and
    drained; both carry the exchange's order and the old one had everything until it closed, so
    the new source's events begin with a contiguous run of the old one's, then continue with
    events the old one never had. Each new event is matched against every alignment still
    consistent with what the new source delivered so far: while one alignment matches, it is a
    copy; the first event no alignment explains is new, and from there on nothing can be a copy
    (:attr:`done`). Genuinely identical events (same content, same millisecond) therefore stay
    distinct unless the old source repeats a whole run of them. At most ``capacity`` recorded
    keys are kept (the oldest are forgotten first).
    """

    __slots__ = ("_base", "_candidates", "_capacity", "_index", "_keys", "done")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._keys: deque[Hashable] = deque()  # the old source's keys; _keys[0] is at _base
        self._base = 0
        self._index: dict[Hashable, list[int]] = {}  # key -> positions, for the first match
        self._candidates: set[int] | None = None  # positions the new source may be at next
        self.done = False

    def __len__(self) -> int:
        """Recorded keys still remembered."""
        return len(self._keys)

    def record(self, key: Hashable) -> None:
        """The old source delivered the event with ``key``."""
        if self.done:
            return
        keys = self._keys
        if self._candidates is None:
            self._index.setdefault(key, []).append(self._base + len(keys))
        keys.append(key)
        if len(keys) > self._capacity:
            forgotten = keys.popleft()
            if self._candidates is None:
                positions = self._index[forgotten]
                del positions[0]
                if not positions:
                    del self._index[forgotten]
            self._base += 1

    def duplicate(self, key: Hashable) -> bool:
        """The new source has the event with ``key``: True when it is a copy (drop it)."""
        if self.done:
            return False
        keys, base = self._keys, self._base
        end = base + len(keys)
        candidates = self._candidates
        if candidates is None:  # the new source's first event: any position may be its start
            following = {position + 1 for position in self._index.get(key, ())}
            self._index.clear()
        else:
            following = {
                position + 1
                for position in candidates
                if base <= position < end and keys[position - base] == key
            }
        if not following:
            self.done = True
            self._keys.clear()
            self._candidates = None
            return False
        self._candidates = following
        return True


def expand_event_types(event_type: Any) -> tuple[type, ...]:
    """The classes named by ``event_type``: a class, a ``A | B`` union or ``Union[A, B]``.

    Raises:
        TypeError: something else (an instance, a string, ...).
    """
    if isinstance(event_type, types.UnionType) or get_origin(event_type) is Union:
        found: list[type] = []
        for arg in get_args(event_type):
            found.extend(expand_event_types(arg))
        return tuple(found)
    if isinstance(event_type, type):
        return (event_type,)
    raise TypeError(f"expected an event class or a union of them, got {event_type!r}")


def handlers_for(cls: type, registrations: Sequence[tuple[type, H]]) -> tuple[H, ...]:
    """Handlers that apply to events of class ``cls``, in registration order.

    A handler registered for a base class receives every subclass; the stream computes this once
    per concrete class so dispatch is one dict lookup.
    """
    return tuple(handler for registered, handler in registrations if issubclass(cls, registered))


class HandlerTable(Generic[H]):
    """The ``on()`` registrations of a stream or bus consumer, looked up per concrete class.

    ``cache`` maps each class seen so far to its handlers (:func:`handlers_for`), so dispatch is one
    dict lookup; a registration clears it and it is rebuilt lazily, one class at a time.
    """

    __slots__ = ("_registrations", "cache")

    def __init__(self) -> None:
        self._registrations: list[tuple[type, H]] = []
        self.cache: dict[type, tuple[H, ...]] = {}

    def add(self, classes: Sequence[type], handler: H) -> None:
        """Register ``handler`` for each of ``classes`` (and their subclasses)."""
        for cls in classes:
            self._registrations.append((cls, handler))
        self.cache.clear()

    def lookup(self, cls: type) -> tuple[H, ...]:
        """The handlers of events of class ``cls``, in registration order (cached)."""
        handlers = self.cache.get(cls)
        if handlers is None:
            handlers = self.cache[cls] = handlers_for(cls, self._registrations)
        return handlers


@dataclass(slots=True)
class StreamStats:
    """Counters of one :class:`~.stream.UserDataStream` (observability; all start at zero)."""

    events_delivered: int = 0
    """Events handed to callbacks and ``events()`` readers."""
    reconnects: int = 0
    """Unplanned reconnects (drops, stalls, expired listen keys)."""
    planned_reconnects: int = 0
    """Make-before-break replacements (connection lifetime, ``serverShutdown``)."""
    renewals: int = 0
    """Listen-token renewals on a live connection."""
    keepalives: int = 0
    """Risk-stream listen-key keepalives."""
    gaps: int = 0
    """``StreamGap`` events emitted (one per account and discontinuity)."""
    duplicates_dropped: int = 0
    """Copies dropped because another connection (or subscription) delivered the event."""
    malformed_frames: int = 0
    """Frames that were not valid JSON or had an unexpected shape (skipped, reported)."""
    callback_errors: int = 0
    """Exceptions raised by user callbacks (reported, the stream went on)."""
    overflows: int = 0
    """``events()`` readers that fell behind by more than their ``maxsize``."""


class StreamClient(Protocol):
    """What the stream needs from the REST client (:class:`~.rest.MarginClient` satisfies it).

    A small seam instead of an import of :mod:`.rest`: no import cycle, and tests can drive the
    stream with any object that has these.
    """

    ws_api_url: str
    risk_stream_url: str
    limiter: Limiter

    @property
    def account(self) -> str: ...
    @property
    def clock(self) -> ServerClock: ...
    async def sync_clock(self) -> None: ...
    async def create_listen_token(
        self, *, symbol: str | None = None, validity_ms: int | None = None
    ) -> ListenToken: ...
    async def start_risk_data_stream(self) -> ListenKey: ...
    async def keepalive_risk_data_stream(self, listen_key: str) -> None: ...
    async def get_account(self) -> MarginAccount: ...
    async def get_isolated_account(
        self, symbols: str | Sequence[str] | None = None
    ) -> IsolatedMarginAccount: ...
    async def get_open_orders(
        self, symbol: str | None = None, *, is_isolated: bool = False
    ) -> list[Order]: ...
