"""Pure decisions of the user-data stream: schedules, backoff, routing, dedupe, handler tables.

Nothing here touches a socket, an event loop or the wall clock: every time is an argument and every
random draw comes from an injected callable, so the stream's policy is tested exhaustively without
an event loop (``tests/test_stream_core.py``). :mod:`.stream` is the asyncio shell around it.

Binance docs: https://developers.binance.com/docs/margin_trading/trade-data-stream
"""

from __future__ import annotations

import random
import types
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, Union, get_args, get_origin

import orjson

__all__ = [
    "BackoffPolicy",
    "RecentSet",
    "RenewalPolicy",
    "StreamStats",
    "SubscriptionTable",
    "dedupe_key",
    "expand_event_types",
    "exponential_backoff",
    "handlers_for",
    "normalize_epoch_ms",
    "planned_reconnect_at",
    "spread_jitter",
    "stall_deadline",
]

A = TypeVar("A")
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

    def retry_delay(self, now_ms: int, expiration_ms: int, attempt: int) -> float:
        """Seconds before retrying a failed renewal: doubling from 1 s, never past the expiry.

        The delay is capped at half of what remains so several retries still fit before the token
        dies; once it has died the caller is on the reconnect path anyway.
        """
        remaining = max(0, expiration_ms - now_ms) / 1000.0
        return max(0.05, min(float(2 ** min(attempt, 10)) / 2, remaining / 2))


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


class RecentSet:
    """A bounded set of recently seen keys, oldest evicted first (the per-account dedupe memory).

    A ``set`` answers membership, a ``deque`` remembers insertion order; both are O(1) per key.
    """

    __slots__ = ("_capacity", "_keys", "_order")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._keys: set[Hashable] = set()
        self._order: deque[Hashable] = deque()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def seen(self, key: Hashable) -> bool:
        """Record ``key``; return True when it was already recorded (a duplicate)."""
        keys = self._keys
        if key in keys:
            return True
        keys.add(key)
        order = self._order
        order.append(key)
        if len(order) > self._capacity:
            keys.discard(order.popleft())
        return False


# Fields that identify one event of each type (PROTOCOL.md §4). Two deliveries of the same event on
# two connections carry the same values; two different events differ in at least one of them:
# an execution report has a unique execution id `I` (plus trade id, status and cumulative qty in
# case `I` is absent), an account position its update time `u`, and so on.
_KEY_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "executionReport": ("E", "i", "I", "x", "X", "t", "z", "T"),
    "outboundAccountPosition": ("E", "u"),
    "balanceUpdate": ("E", "a", "d", "T"),
    "listStatus": ("E", "g", "l", "L", "T"),
    "externalLockUpdate": ("E", "a", "d", "T"),
    "USER_LIABILITY_CHANGE": ("E", "a", "t", "p", "i"),
    "MARGIN_LEVEL_STATUS_CHANGE": ("E", "l", "s"),
}


def dedupe_key(event: Mapping[str, Any]) -> Hashable:
    """The identity of one wire event, for dropping the copy delivered twice during an overlap.

    Unknown event types fall back to their whole canonical content.
    """
    kind = event.get("e")
    fields = _KEY_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        return (kind, orjson.dumps(event, option=orjson.OPT_SORT_KEYS))
    get = event.get
    return (kind, *[get(name) for name in fields])


class SubscriptionTable(Generic[A]):
    """Routes ``subscriptionId`` → account on one WS API connection.

    ``by_id`` is read directly on the hot path. Ids that the stream unsubscribed itself are
    *retired*: their events are still routed (the server may send a few before it processes the
    unsubscribe) and their ``eventStreamTerminated`` is expected rather than a gap.
    """

    __slots__ = ("by_id", "retired")

    def __init__(self) -> None:
        self.by_id: dict[int, A] = {}
        self.retired: set[int] = set()

    def bind(self, subscription_id: int, account: A) -> None:
        """Route ``subscription_id`` to ``account``."""
        self.by_id[subscription_id] = account
        self.retired.discard(subscription_id)

    def retire(self, subscription_id: int) -> None:
        """Mark an id the stream is about to unsubscribe (its termination is not a gap)."""
        if subscription_id in self.by_id:
            self.retired.add(subscription_id)

    def terminated(self, subscription_id: int) -> tuple[A | None, bool]:
        """Forget an id whose ``eventStreamTerminated`` arrived.

        Returns the account it served (None if unknown) and whether the end was expected
        (retired by the stream itself).
        """
        expected = subscription_id in self.retired
        self.retired.discard(subscription_id)
        return self.by_id.pop(subscription_id, None), expected

    def ids_of(self, account: A) -> list[int]:
        """Every id currently routed to ``account`` (more than one only during a renewal)."""
        return [sid for sid, acct in self.by_id.items() if acct is account]


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
    """Listen-token renewals on a live connection (plus risk listen-key keepalives)."""
    gaps: int = 0
    """``StreamGap`` events emitted (one per account and discontinuity)."""
    duplicates_dropped: int = 0
    """Events seen twice during an overlap and delivered once."""
    malformed_frames: int = 0
    """Frames that were not valid JSON or had an unexpected shape (skipped, reported)."""
    callback_errors: int = 0
    """Exceptions raised by user callbacks (reported, the stream went on)."""
    overflows: int = 0
    """``events()`` readers that fell behind by more than their ``maxsize``."""
