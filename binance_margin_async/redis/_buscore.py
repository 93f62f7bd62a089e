"""The pure part of :class:`~binance_margin_async.redis.RedisEventBus`: no I/O, no clock, no loop.

* :func:`encode_event` / :func:`decode_payload`: one event <-> the bytes of one Redis Stream entry.
  Exchange events travel as their wire dict (``.raw``) and are decoded again by
  :func:`~binance_margin_async.events.decode_event` on the consumer side, so a consumer gets
  exactly the object the publisher's stream delivered. Synthetic events (``StreamGap``,
  ``Resynced``, ``UnknownEvent``, and any added later) travel as their dataclass fields, found
  generically with :func:`dataclasses.fields`, so new fields cross the bus without a change here.
* :class:`Lease`: the publisher's view of its lease (acquired, renewed, lost) in local monotonic
  time. The fencing itself is in Redis (a token checked by every publish script).
* :class:`SafePoint` and :func:`gap_window`: the window a publisher handover reports.
* :class:`Position` and :func:`hole_between`: a consumer's place in the feed and the gaps it can
  detect by itself (entries trimmed by retention before it read them, a wiped server).
* :class:`Progress`: which position a consumer may commit when callbacks and several ``events()``
  readers each finish entries at their own pace.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, Final

import orjson

from .. import events as _events
from ..errors import ParameterError
from ..events import Event, Resynced, StreamGap, UnknownEvent, decode_event

__all__ = [
    "BUS_CHANNEL",
    "Lease",
    "Position",
    "Progress",
    "SafePoint",
    "decode_payload",
    "encode_event",
    "gap_events",
    "gap_window",
    "hole_between",
    "parse_entry_id",
    "resynced_events",
]

BUS_CHANNEL: Final = "bus"
"""The ``channel`` of the gaps the bus itself reports (handover, retention, reset)."""

# Wire keys that are credentials: dropped before an event is written to Redis.
_SECRET_KEYS: Final = frozenset({"listenKey"})


# --------------------------------------------------------------------------------------------
# Events <-> entry payloads
# --------------------------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot put a {type(value).__name__} on the bus")


def _is_wire(event: Event) -> bool:
    """True for an exchange event that :func:`decode_event` rebuilds from its ``raw``."""
    raw = getattr(event, "raw", None)
    return (
        not isinstance(event, UnknownEvent)
        and isinstance(raw, dict)
        and isinstance(raw.get("e"), str)
    )


def encode_event(event: Event) -> bytes:
    """The entry payload of ``event``: ``{"a": account, "r": wire dict}`` for exchange events,
    ``{"a": account, "k": class name, "f": {field: value}}`` for synthetic ones.

    Credentials in the wire dict (the risk stream's ``listenKey``) are left out.
    """
    if _is_wire(event):
        raw: dict[str, Any] = event.raw
        if not _SECRET_KEYS.isdisjoint(raw):
            raw = {key: value for key, value in raw.items() if key not in _SECRET_KEYS}
        return orjson.dumps({"a": event.account, "r": raw})
    values = {
        f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "account"
    }
    return orjson.dumps(
        {"a": event.account, "k": type(event).__name__, "f": values}, default=_default
    )


@cache
def _synthetic_types() -> dict[str, tuple[type[Any], dict[str, Any]]]:
    """Event class name -> (class, resolved field annotations), for every class in events."""
    found: dict[str, tuple[type[Any], dict[str, Any]]] = {}
    for cls in _events.EVENT_TYPES:
        found[cls.__name__] = (cls, typing.get_type_hints(cls, vars(_events)))
    return found


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as JSON gave it, turned back into the annotated type where JSON lost it."""
    if not isinstance(value, str | list):
        return value
    members = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    for member in members:
        if isinstance(value, str) and isinstance(member, type) and issubclass(member, Enum):
            try:
                return member(value)
            except ValueError:
                continue  # an enum value this version does not know: kept as str
        if isinstance(value, str) and member is Decimal:
            return Decimal(value)
        if isinstance(value, list) and typing.get_origin(member) is tuple:
            return tuple(value)
    return value


def decode_payload(data: bytes) -> Event:
    """The event of one entry payload (the inverse of :func:`encode_event`).

    Never raises: a payload this version cannot read becomes an :class:`UnknownEvent` whose
    ``error`` says why (as the stream does with frames it cannot decode).
    """
    try:
        message = orjson.loads(data)
        account = message["a"]
        raw = message.get("r")
        if raw is not None:
            return decode_event(raw, account)
        name = message["k"]
        values = message["f"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        text = bytes(data[:200]).decode("utf-8", "replace")
        return UnknownEvent("", None, {"payload": text}, f"unreadable bus entry: {exc!r}")
    known = _synthetic_types().get(name)
    if known is None:
        return UnknownEvent(account, name, values, f"event type {name!r} unknown to this version")
    cls, hints = known
    # Fields this version does not have (a newer publisher) are ignored; missing ones take
    # their defaults.
    kwargs = {
        f.name: _coerce(values[f.name], hints.get(f.name))
        for f in dataclasses.fields(cls)
        if f.name in values and f.name != "account"
    }
    try:
        event: Event = cls(account, **kwargs)
    except (TypeError, ValueError, ArithmeticError) as exc:
        return UnknownEvent(account, name, values, f"malformed {name} on the bus: {exc}")
    return event


# --------------------------------------------------------------------------------------------
# Publisher lease
# --------------------------------------------------------------------------------------------


class Lease:
    """The publisher's lease as this process knows it, in local monotonic seconds.

    Redis expires the lease ``ttl`` after the last successful acquire or renew *as Redis received
    it*, which is never earlier than when we sent the request: so ``sent + ttl`` is a safe local
    deadline. Past it the lease must be taken as lost even if Redis cannot be asked (it may have
    been given to someone else); every publish is checked against the token in Redis anyway.

    Args:
        ttl: seconds Redis keeps the lease without a renewal.
        renew_every: seconds between renewals (well under ``ttl``).
    """

    __slots__ = ("_deadline", "renew_every", "token", "ttl")

    def __init__(self, ttl: float, renew_every: float) -> None:
        if not ttl > 0:
            raise ParameterError("lease_ttl", "must be a positive number of seconds")
        if not 0 < renew_every < ttl:
            raise ParameterError("renew_every", "must be positive and shorter than the lease ttl")
        self.ttl = ttl
        self.renew_every = renew_every
        self.token: int | None = None
        self._deadline = -math.inf

    def acquired(self, token: int, sent: float) -> None:
        """Redis gave us the lease with fencing ``token`` for a request sent at ``sent``."""
        self.token = token
        self._deadline = sent + self.ttl

    def renewed(self, sent: float) -> None:
        """A renewal sent at ``sent`` was confirmed."""
        self._deadline = max(self._deadline, sent + self.ttl)

    def lost(self) -> None:
        """Redis refused a renewal or a publish with our token: someone else holds the lease."""
        self.token = None
        self._deadline = -math.inf

    def held(self, now: float) -> bool:
        """True while we hold a token and its local deadline has not passed."""
        return self.token is not None and now < self._deadline

    def next_renewal(self, last_sent: float) -> float:
        """When to send the next renewal after one sent at ``last_sent``."""
        return last_sent + self.renew_every

    @property
    def deadline(self) -> float:
        """Local monotonic time after which the lease may belong to someone else."""
        return self._deadline


@dataclass(frozen=True, slots=True)
class SafePoint:
    """A moment up to which the publisher had published everything its stream had delivered.

    ``wall`` is the publisher's epoch seconds, ``server_ms`` the exchange time it estimated for
    that moment (``None`` when its clock was not measured) with ``error_ms`` of uncertainty.
    """

    wall: float
    server_ms: int | None = None
    error_ms: float = 0.0

    def fields(self) -> tuple[str, str, str]:
        """As three strings for a script argument list (``""`` for no server time)."""
        server = "" if self.server_ms is None else str(self.server_ms)
        return (repr(self.wall), server, repr(self.error_ms))

    @classmethod
    def parse(cls, wall: Any, server_ms: Any, error_ms: Any) -> SafePoint | None:
        """From the strings (or bytes) stored in Redis; ``None`` when nothing was stored."""
        if wall in (None, b"", ""):
            return None
        server = None if server_ms in (None, b"", "") else int(server_ms)
        return cls(float(wall), server, float(error_ms or 0.0))


def gap_window(
    since: SafePoint, until: SafePoint, margin_ms: float
) -> tuple[float, float, int | None, int | None]:
    """``(started, ended, started_ms, ended_ms)`` of a :class:`StreamGap` from ``since`` to
    ``until``: local epoch seconds as each side saw them, and the exchange-time window widened by
    both clock errors and ``margin_ms`` (events in flight around each end), rounded outwards.
    ``started_ms``/``ended_ms`` are ``None`` unless both sides measured the exchange's clock.
    """
    if since.server_ms is None or until.server_ms is None:
        return since.wall, until.wall, None, None
    return (
        since.wall,
        until.wall,
        math.floor(since.server_ms - since.error_ms - margin_ms),
        math.ceil(until.server_ms + until.error_ms + margin_ms),
    )


def _gap(
    account: str, window: tuple[float, float, int | None, int | None], reason: str
) -> StreamGap:
    started, ended, started_ms, ended_ms = window
    info = {"channel": BUS_CHANNEL, "reason": reason}
    # StreamGap may carry channel/reason as typed fields (newer versions) or only in raw.
    names = {f.name for f in dataclasses.fields(StreamGap)}
    typed = {key: value for key, value in info.items() if key in names}
    return StreamGap(
        account, started, ended, info, started_ms=started_ms, ended_ms=ended_ms, **typed
    )


def resynced_events(accounts: Iterable[str], reason: str) -> list[Resynced]:
    """One :class:`Resynced` per account: the publisher's mirror was reloaded from REST."""
    info = {"channel": BUS_CHANNEL, "reason": reason}
    names = {f.name for f in dataclasses.fields(Resynced)}
    typed = {key: value for key, value in info.items() if key in names}
    return [Resynced(account, info, **typed) for account in accounts]


def gap_events(
    accounts: Iterable[str], window: tuple[float, float, int | None, int | None], reason: str
) -> list[StreamGap]:
    """One :class:`StreamGap` per account for ``window`` (see :func:`gap_window`)."""
    return [_gap(account, window, reason) for account in accounts]


# --------------------------------------------------------------------------------------------
# Consumer positions
# --------------------------------------------------------------------------------------------


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a consumer stands: the last entry it handled.

    ``entry_id`` is the Redis Stream id, ``n`` the publisher's sequence number of that entry
    (``0`` when unknown: a fresh start), ``wall``/``server_ms`` when it was published (for gap
    windows). Its text form (``str(position)``, :meth:`parse`) is what consumers store.
    """

    key: tuple[int, int]
    n: int = dataclasses.field(default=0, compare=False)
    wall: float = dataclasses.field(default=0.0, compare=False)
    server_ms: int | None = dataclasses.field(default=None, compare=False)

    START: typing.ClassVar[Position]

    @property
    def entry_id(self) -> str:
        """The Redis Stream id to read after."""
        return f"{self.key[0]}-{self.key[1]}"

    def __str__(self) -> str:
        server = "" if self.server_ms is None else str(self.server_ms)
        return f"{self.entry_id}/{self.n}/{self.wall!r}/{server}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """From :func:`str` of a position, or a bare entry id (sequence unknown)."""
        try:
            entry_id, _, rest = text.partition("/")
            n, _, rest = rest.partition("/")
            wall, _, server = rest.partition("/")
            return cls(
                parse_entry_id(entry_id),
                int(n or 0),
                float(wall or 0.0),
                int(server) if server else None,
            )
        except ValueError:
            raise ParameterError("start", f"not a bus position: {text[:80]!r}") from None


Position.START = Position((0, 0))


def hole_between(
    last: Position, n: int, wall: float, server_ms: int | None, margin_ms: float
) -> tuple[str, tuple[float, float, int | None, int | None]] | None:
    """The gap a consumer must report before an entry numbered ``n`` that follows ``last``.

    ``None`` when the entry is the next one (or when ``last`` has no known number: a fresh
    start has nothing to miss). Otherwise ``(reason, window)``: ``"retention"`` when entries were
    trimmed before this consumer read them (the number jumps ahead), ``"reset"`` when the
    numbering started again (the Redis data was lost). The window runs from when ``last`` was
    published to when this entry was, widened by ``margin_ms``.
    """
    if last.n == 0 or n == last.n + 1:
        return None
    reason = "retention" if n > last.n else "reset"
    since = SafePoint(last.wall, last.server_ms)
    until = SafePoint(wall, server_ms)
    return reason, gap_window(since, until, margin_ms)


class Progress:
    """Which position a consumer may commit, when several readers finish entries at their pace.

    Every entry is first handed out (:meth:`handed_out`) to the callbacks and to every attached
    ``events()`` reader; each of them then reports it :meth:`done` in order. The position to
    commit is the oldest one still unfinished by anybody, so a restart never skips an entry one
    reader had not finished. A detached reader (closed, or overflowed) no longer holds it back.
    """

    __slots__ = ("_done", "_last")

    CALLBACKS: Final = "callbacks"

    def __init__(self, start: Position) -> None:
        self._last = start
        self._done: dict[object, Position] = {self.CALLBACKS: start}

    def handed_out(self, position: Position) -> None:
        """A new entry was handed to everyone attached."""
        self._last = position

    def attach(self, reader: object) -> None:
        """A new reader; it only gets entries handed out from now on."""
        self._done[reader] = self._last

    def detach(self, reader: object) -> None:
        """The reader is gone and holds nothing back any more."""
        self._done.pop(reader, None)

    def done(self, reader: object, position: Position) -> None:
        """``reader`` has finished the entry at ``position`` (and every earlier one)."""
        if reader in self._done:
            self._done[reader] = max(self._done[reader], position)

    @property
    def last(self) -> Position:
        """The newest entry handed out."""
        return self._last

    @property
    def committable(self) -> Position:
        """The newest position every attached reader has finished."""
        return min(self._done.values())
