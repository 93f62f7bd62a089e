"""Server-time offset estimate, so signed requests carry a timestamp Binance accepts. Pure.

Binance rejects a SIGNED request with ``-1021`` when ``timestamp`` is ≥ 1 s ahead of its clock or
older than ``recvWindow`` (https://developers.binance.com/docs/margin_trading/general-info).
The shell measures ``GET /api/v3/time`` (or the WS API ``time`` method) and feeds each exchange to
:meth:`ServerClock.observe`; every signed request then asks :meth:`ServerClock.timestamp_ms`.

How the offset is estimated (NTP's clock filter, simplified):

* One exchange sent at local ``t0``, answered at ``t1`` with ``server_ms``. The server read its
  clock somewhere in ``[t0, t1]``; without knowing where, the midpoint is the best guess, so
  ``offset = server_ms - (t0 + t1) / 2 * 1000`` with an error of at most ``RTT / 2``.
* Of the recent samples the one with the **smallest RTT** wins: queueing, retransmits and
  asymmetric routes only ever *add* delay, so the fastest exchange bounds the error tightest.
  A single slow sample (a GC pause, a congested uplink) can then not drag the offset off.
* Samples are only "recent" (the last ``max_samples``): the local clock drifts, so an old sample's
  offset slowly goes wrong however small its RTT was. And when the local clock *steps* (NTP
  correction, VM resume), a new sample disagrees with the kept ones by more than both error bounds
  together; the kept samples are then dropped and the new one is trusted alone.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from .errors import ParameterError

__all__ = ["ServerClock"]

# Binance's serverTime has 1 ms resolution: an otherwise exact sample can be off by this much.
_RESOLUTION_MS = 1.0


class _Sample(NamedTuple):
    offset_ms: float
    rtt: float  # seconds
    received: float  # local epoch seconds


class ServerClock:
    """Estimates ``server time - local time`` from request round trips.

    Args:
        refresh_interval: seconds after the last accepted sample when :meth:`is_stale` turns True
            and the shell should measure again.
        max_samples: how many recent samples the smallest-RTT choice looks at.
    """

    __slots__ = ("_best", "_last_rtt", "_samples", "max_samples", "refresh_interval")

    def __init__(self, *, refresh_interval: float = 300.0, max_samples: int = 8) -> None:
        if not refresh_interval > 0:  # also rejects NaN
            raise ParameterError("refresh_interval", "must be a positive number of seconds")
        if max_samples < 1:
            raise ParameterError("max_samples", "must be at least 1")
        self.refresh_interval = refresh_interval
        self.max_samples = max_samples
        self._samples: deque[_Sample] = deque(maxlen=max_samples)
        self._best: _Sample | None = None
        self._last_rtt: float | None = None

    @property
    def offset_ms(self) -> float:
        """Server time minus local time, in milliseconds (0.0 before the first sample)."""
        return 0.0 if self._best is None else self._best.offset_ms

    @property
    def last_rtt(self) -> float | None:
        """Round-trip time in seconds of the most recent accepted sample, ``None`` before any."""
        return self._last_rtt

    @property
    def best_rtt(self) -> float | None:
        """RTT in seconds of the sample the offset comes from; the offset error is at most half."""
        return None if self._best is None else self._best.rtt

    @property
    def error_ms(self) -> float | None:
        """Bound of the offset's error in ms: half the RTT it was measured with, plus the 1 ms
        resolution of ``serverTime`` (``None`` before the first sample)."""
        return None if self._best is None else self._best.rtt * 500.0 + _RESOLUTION_MS

    def observe(self, sent: float, received: float, server_time_ms: int) -> None:
        """Record one exchange: local epoch seconds when the request was sent and the answer
        received, and the server's ``serverTime`` (ms) from that answer.

        A sample with ``received < sent`` means the local clock stepped back mid-request; it
        carries no information and is ignored (the clock stays stale, so the shell measures again).
        """
        rtt = received - sent
        if not rtt >= 0:
            return
        sample = _Sample(server_time_ms - (sent + received) * 500.0, rtt, received)
        best = self._best
        if best is not None:
            # Each sample says "true offset within ±(rtt/2 + resolution)". Disjoint intervals
            # cannot both hold: the local clock stepped, so everything kept is obsolete.
            tolerance = (rtt + best.rtt) * 500.0 + 2 * _RESOLUTION_MS
            if abs(sample.offset_ms - best.offset_ms) > tolerance:
                self._samples.clear()
        self._samples.append(sample)
        self._last_rtt = rtt
        self._best = min(self._samples, key=_rtt_of)

    def timestamp_ms(self, now: float) -> int:
        """The server's time in ms for local epoch seconds ``now``: the ``timestamp`` to sign."""
        return int(now * 1000.0 + self.offset_ms)

    def earliest_ms(self, now: float) -> int:
        """The earliest the server's time can be at local epoch seconds ``now`` (the estimate
        minus :attr:`error_ms`): a stamp that must not claim what happens after ``now``."""
        return int(now * 1000.0 + self.offset_ms - (self.error_ms or 0.0))

    def is_stale(self, now: float) -> bool:
        """True before the first sample, ``refresh_interval`` after the last one, or when ``now``
        lies before the last sample (the local clock went backwards)."""
        if not self._samples:
            return True
        age = now - self._samples[-1].received
        return not 0.0 <= age < self.refresh_interval

    def __repr__(self) -> str:
        return (
            f"ServerClock(offset_ms={self.offset_ms:.1f}, best_rtt={self.best_rtt}, "
            f"samples={len(self._samples)})"
        )


def _rtt_of(sample: _Sample) -> float:
    return sample.rtt
