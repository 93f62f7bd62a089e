"""ServerClock: RTT/2 offset, smallest-RTT choice, clock steps, staleness (pure, no event loop)."""

from __future__ import annotations

import math

import pytest

from binance_margin_async.clock import ServerClock
from binance_margin_async.errors import ParameterError

T0 = 1_700_000_000.0
TRUE_OFFSET_MS = 500.0  # the simulated server runs half a second ahead of the local clock


def approx_s(seconds: float) -> object:
    # Epoch-sized floats resolve ~0.2 µs, so RTTs computed from them carry that much noise.
    return pytest.approx(seconds, abs=1e-6)


def exchange(clock: ServerClock, sent: float, outbound: float, inbound: float) -> None:
    """Simulate one time request: ``outbound``/``inbound`` are the one-way delays in seconds."""
    server_ms = round((sent + outbound) * 1000.0 + TRUE_OFFSET_MS)
    clock.observe(sent, sent + outbound + inbound, server_ms)


def test_before_any_sample() -> None:
    clock = ServerClock()
    assert clock.offset_ms == 0.0
    assert clock.last_rtt is None and clock.best_rtt is None
    assert clock.is_stale(T0)
    assert clock.timestamp_ms(T0) == int(T0 * 1000)


def test_symmetric_rtt_is_exact() -> None:
    clock = ServerClock()
    exchange(clock, T0, 0.05, 0.05)
    assert clock.offset_ms == pytest.approx(TRUE_OFFSET_MS)
    assert clock.last_rtt == approx_s(0.1)
    assert clock.timestamp_ms(T0 + 1.0) == int((T0 + 1.0) * 1000 + TRUE_OFFSET_MS)


def test_asymmetric_rtt_error_is_within_half_rtt() -> None:
    clock = ServerClock()
    exchange(clock, T0, 0.02, 0.18)  # fast request, slow answer
    # The server read its clock 80 ms before the local midpoint: the estimate is 80 ms low.
    assert clock.offset_ms == pytest.approx(TRUE_OFFSET_MS - 80.0)
    assert abs(clock.offset_ms - TRUE_OFFSET_MS) <= 0.2 / 2 * 1000


def test_smallest_rtt_sample_wins() -> None:
    clock = ServerClock()
    exchange(clock, T0, 0.02, 0.18)  # rtt 200 ms, estimate 80 ms off
    exchange(clock, T0 + 10, 0.005, 0.005)  # rtt 10 ms, exact
    exchange(clock, T0 + 20, 0.25, 0.05)  # rtt 300 ms, estimate 100 ms high
    assert clock.offset_ms == pytest.approx(TRUE_OFFSET_MS)
    assert clock.best_rtt == approx_s(0.01)
    assert clock.last_rtt == approx_s(0.3)


def test_only_recent_samples_compete() -> None:
    clock = ServerClock(max_samples=3)
    exchange(clock, T0, 0.001, 0.001)  # the best sample ever, soon too old
    exchange(clock, T0 + 1, 0.04, 0.06)
    exchange(clock, T0 + 2, 0.01, 0.03)  # best of the recent three: estimate 10 ms low
    exchange(clock, T0 + 3, 0.06, 0.04)
    assert clock.best_rtt == approx_s(0.04)
    assert clock.offset_ms == pytest.approx(TRUE_OFFSET_MS - 10.0)


def test_local_clock_step_discards_old_samples() -> None:
    clock = ServerClock()
    exchange(clock, T0, 0.005, 0.005)
    # The local clock is stepped 2 s back: the same server instant now reads 2 s later locally,
    # so the offset jumps by +2000 ms. The new sample's RTT is worse but it is the truth now.
    sent = T0 + 60
    clock.observe(sent - 2.0, sent - 2.0 + 0.1, round((sent + 0.05) * 1000 + TRUE_OFFSET_MS))
    assert clock.offset_ms == pytest.approx(TRUE_OFFSET_MS + 2000.0)
    assert clock.best_rtt == approx_s(0.1)


def test_consistent_slower_sample_does_not_reset() -> None:
    clock = ServerClock()
    exchange(clock, T0, 0.005, 0.005)
    exchange(clock, T0 + 60, 0.19, 0.01)  # 90 ms high, inside its own ±100 ms bound
    assert clock.offset_ms == pytest.approx(TRUE_OFFSET_MS)


def test_negative_rtt_is_ignored() -> None:
    clock = ServerClock()
    clock.observe(T0, T0 - 0.5, int(T0 * 1000))
    assert clock.last_rtt is None
    assert clock.offset_ms == 0.0
    assert clock.is_stale(T0)


def test_staleness() -> None:
    clock = ServerClock(refresh_interval=300.0)
    exchange(clock, T0 - 0.1, 0.05, 0.05)  # received at T0
    assert not clock.is_stale(T0)
    assert not clock.is_stale(T0 + 299.9)
    assert clock.is_stale(T0 + 300.0)
    assert clock.is_stale(T0 - 10.0)  # the local clock went backwards: measure again


def test_timestamp_is_int() -> None:
    clock = ServerClock()
    exchange(clock, T0, 0.0004, 0.0003)
    stamp = clock.timestamp_ms(T0 + 0.123456)
    assert isinstance(stamp, int)
    assert stamp == math.floor((T0 + 0.123456) * 1000 + clock.offset_ms)


@pytest.mark.parametrize("interval", [0.0, -1.0, math.nan])
def test_rejects_bad_refresh_interval(interval: float) -> None:
    with pytest.raises(ParameterError) as info:
        ServerClock(refresh_interval=interval)
    assert info.value.param == "refresh_interval"


def test_rejects_bad_max_samples() -> None:
    with pytest.raises(ParameterError) as info:
        ServerClock(max_samples=0)
    assert info.value.param == "max_samples"


def test_repr_shows_state() -> None:
    clock = ServerClock()
    exchange(clock, T0, 0.005, 0.005)
    assert "offset_ms=500.0" in repr(clock)
