"""Rate-limit bookkeeping of the fake exchange: weight pools, order counts, IP bans. Pure.

Windows are FIXED and aligned to epoch multiples of their length (a minute window runs from
``k*60`` to ``(k+1)*60``), which is how Binance's counters reset and how the client's limiter
models them. ``now`` is epoch seconds, passed in.

Ban escalation (PROTOCOL.md §2.1): an IP that keeps sending into a 429 is banned with 418. Here an
IP that has already received ``ban_after_429s`` 429s in the current window and would receive
another one is banned instead; bans last ``ban_duration`` seconds, doubling for each repeat
offence up to 3 days ("from 2 minutes to 3 days").

Docs: https://developers.binance.com/docs/margin_trading/general-info (LIMITS)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["Ban", "BanBook", "OrderCounts", "WeightBook", "retry_after_seconds"]

_MAX_BAN: Final = 3 * 86400.0


def retry_after_seconds(until: float, now: float) -> int:
    """``Retry-After`` header value: whole seconds, at least 1 (Binance never sends 0)."""
    return max(1, math.ceil(until - now))


class _Counter:
    __slots__ = ("index", "used")

    def __init__(self, index: int) -> None:
        self.index = index
        self.used = 0


class WeightBook:
    """Fixed-window counters keyed by an opaque string (pool key + subject)."""

    __slots__ = ("_counters", "window")

    def __init__(self, window: float) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.window: Final = window
        self._counters: dict[str, _Counter] = {}

    def _counter(self, key: str, now: float) -> _Counter:
        index = int(now // self.window)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = _Counter(index)
        elif counter.index != index:
            counter.index = index
            counter.used = 0
        return counter

    def charge(self, key: str, weight: int, limit: int, now: float) -> int | None:
        """Record ``weight`` and return the new usage, or ``None`` (nothing recorded) when the
        request would take the window past ``limit``."""
        counter = self._counter(key, now)
        if counter.used + weight > limit:
            return None
        counter.used += weight
        return counter.used

    def used(self, key: str, now: float) -> int:
        """Weight used by ``key`` in the current window."""
        return self._counter(key, now).used

    def window_end(self, now: float) -> float:
        """When the current window closes (epoch seconds)."""
        return (now // self.window + 1) * self.window


@dataclass(frozen=True, slots=True)
class Ban:
    """An IP ban: requests fail with 418 until ``until`` (epoch seconds)."""

    until: float


class BanBook:
    """429 strikes and 418 bans per IP."""

    __slots__ = ("_bans", "_offences", "_strikes", "ban_after_429s", "ban_duration", "window")

    def __init__(self, *, window: float, ban_after_429s: int, ban_duration: float) -> None:
        if ban_after_429s < 0:
            raise ValueError("ban_after_429s must be >= 0")
        if ban_duration <= 0:
            raise ValueError("ban_duration must be positive")
        self.window: Final = window
        self.ban_after_429s: Final = ban_after_429s
        self.ban_duration: Final = ban_duration
        self._strikes: dict[str, tuple[int, int]] = {}  # ip -> (window index, 429s in it)
        self._bans: dict[str, float] = {}  # ip -> banned until
        self._offences: dict[str, int] = {}  # ip -> number of bans so far (escalation)

    def banned_until(self, ip: str, now: float) -> float | None:
        """End of the IP's current ban, or ``None``."""
        until = self._bans.get(ip)
        if until is None:
            return None
        if until <= now:
            del self._bans[ip]
            return None
        return until

    def strike(self, ip: str, now: float) -> Ban | None:
        """The IP is about to get a 429: count it, or ban the IP when it ignored enough 429s."""
        index = int(now // self.window)
        last_index, count = self._strikes.get(ip, (index, 0))
        if last_index != index:
            count = 0
        if count >= self.ban_after_429s:
            return self.ban(ip, now)
        self._strikes[ip] = (index, count + 1)
        return None

    def ban(self, ip: str, now: float) -> Ban:
        """Ban ``ip`` now for the next escalation step."""
        offences = self._offences.get(ip, 0)
        self._offences[ip] = offences + 1
        until = now + min(_MAX_BAN, self.ban_duration * 2**offences)
        self._bans[ip] = until
        self._strikes.pop(ip, None)
        return Ban(until)


class OrderCounts:
    """Per-account order counters over a 10 s and a 1 day fixed window (``X-MBX-ORDER-COUNT-*``)."""

    __slots__ = ("_book_1d", "_book_10s", "limit_1d", "limit_10s")

    def __init__(self, *, limit_10s: int, limit_1d: int) -> None:
        self.limit_10s: Final = limit_10s
        self.limit_1d: Final = limit_1d
        self._book_10s = WeightBook(10.0)
        self._book_1d = WeightBook(86400.0)

    def counts(self, account: str, now: float) -> tuple[int, int]:
        """Orders placed by ``account`` in the current 10 s and 1 day windows."""
        return self._book_10s.used(account, now), self._book_1d.used(account, now)

    def place(self, account: str, now: float) -> tuple[int, str, float] | None:
        """Count one new order; ``None`` when accepted, else ``(limit, interval, window_end)``
        of the limit that is full (nothing counted)."""
        if self._book_10s.used(account, now) >= self.limit_10s:
            return self.limit_10s, "10 SECOND", self._book_10s.window_end(now)
        if self._book_1d.used(account, now) >= self.limit_1d:
            return self.limit_1d, "1 DAY", self._book_1d.window_end(now)
        self._book_10s.charge(account, 1, self.limit_10s, now)
        self._book_1d.charge(account, 1, self.limit_1d, now)
        return None
