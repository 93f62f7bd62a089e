"""Pure stream policy (:mod:`binance_margin_async._streamcore`): no event loop, no sockets."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Union

import pytest

from binance_margin_async._streamcore import (
    HandlerTable,
    OverlapFilter,
    RenewalPolicy,
    StreamStats,
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

# --- expirationTime units (PROTOCOL.md §3.3: ms from REST, µs in the subscribe example) ---------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1758792204196, 1758792204196),  # ms, REST answer
        (1749094553955907, 1749094553955),  # µs, subscribe example
        (1749094553955907123, 1749094553955),  # ns
        (1749094553, 1749094553000),  # s
        ("1699596037418", 1699596037418),  # listenKeyExpired sends E as a string
        (1758792204196.0, 1758792204196),
    ],
)
def test_normalize_epoch_ms(value: int | float | str, expected: int) -> None:
    assert normalize_epoch_ms(value) == expected


@pytest.mark.parametrize("value", [0, -5, "x"])
def test_normalize_epoch_ms_rejects_garbage(value: int | str) -> None:
    with pytest.raises(ValueError):
        normalize_epoch_ms(value)


# --- renewal schedule ---------------------------------------------------------------------------


def test_renewal_delay_is_within_the_jitter_window() -> None:
    policy = RenewalPolicy(low=0.6, high=0.8)
    now = 1_000_000
    expiry = now + 86_400_000
    assert policy.delay(now, expiry, 0.0) == pytest.approx(0.6 * 86_400)
    assert policy.delay(now, expiry, 0.5) == pytest.approx(0.7 * 86_400)
    assert policy.delay(now, expiry, 0.999) == pytest.approx(0.7998 * 86_400)
    rng = random.Random(7)
    for _ in range(1000):
        delay = policy.delay(now, expiry, rng.random())
        assert 0.6 * 86_400 <= delay < 0.8 * 86_400


def test_renewal_of_a_short_token_stays_before_expiry() -> None:
    policy = RenewalPolicy()
    delay = policy.delay(0, 3_000, 0.5)
    assert 1.8 <= delay <= 2.4


def test_renewal_never_spins_on_an_expired_token() -> None:
    policy = RenewalPolicy(min_delay=1.0)
    # Already expired: no remaining validity → renew now; the new token brings a fresh expiry.
    assert policy.delay(10_000, 5_000, 0.3) == 0.0
    # Nearly expired: min_delay is capped by what remains, so the renewal still precedes expiry.
    assert policy.delay(0, 500, 0.0) == pytest.approx(0.4)
    # Normal tokens are untouched by min_delay.
    assert policy.delay(0, 10_000, 0.0) == pytest.approx(6.0)


def test_renewal_retry_is_bounded_by_the_remaining_validity() -> None:
    policy = RenewalPolicy()
    assert [policy.retry_delay(0, 3_600_000, n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert policy.retry_delay(0, 4_000, 5) == 2.0  # half of what remains
    assert policy.retry_delay(0, 50, 1) == 0.05  # never a busy loop


def test_renewal_retry_after_expiry_backs_off_and_honours_the_server() -> None:
    policy = RenewalPolicy()
    expired = [policy.retry_delay(10_000, 5_000, n) for n in range(1, 10)]
    assert expired == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert policy.retry_delay(0, 3_600_000, 1, at_least=30.0) == 30.0


@pytest.mark.parametrize(("low", "high"), [(0.0, 0.5), (0.8, 0.6), (0.5, 1.0)])
def test_renewal_policy_validates_fractions(low: float, high: float) -> None:
    with pytest.raises(ValueError):
        RenewalPolicy(low=low, high=high)


def test_spread_jitter_gives_each_account_its_own_slice() -> None:
    count = 5
    values = [spread_jitter(i, count, 0.5) for i in range(count)]
    assert values == sorted(values)
    for i in range(count):
        assert i / count <= spread_jitter(i, count, 0.0) < (i + 1) / count
        assert i / count <= spread_jitter(i, count, 1.0) < (i + 1) / count
    with pytest.raises(ValueError):
        spread_jitter(5, 5, 0.1)


def test_jittered_renewals_of_many_accounts_do_not_bunch() -> None:
    policy = RenewalPolicy()
    rng = random.Random(1)
    count = 40
    delays = sorted(
        policy.delay(0, 86_400_000, spread_jitter(i, count, rng.random())) for i in range(count)
    )
    gaps = [b - a for a, b in itertools.pairwise(delays)]
    # Stratified: consecutive renewals are never closer than one slice apart minus one slice width.
    assert min(gaps) > 0
    assert delays[-1] - delays[0] > 0.9 * 0.2 * 86_400 * (count - 1) / count


# --- backoff ------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_equal_jitter_and_caps() -> None:
    draws = itertools.cycle([0.0, 1.0])
    delays = exponential_backoff(
        initial=1.0, factor=2.0, maximum=8.0, rng=lambda: next(draws) * 0.999_999
    )
    got = [round(next(delays), 3) for _ in range(8)]
    # first: uniform in [0, initial); then delay/2 + U*delay/2 with delay 1, 2, 4, 8, 8, ...
    assert got == [0.0, 1.0, 1.0, 4.0, 4.0, 8.0, 4.0, 8.0]


def test_backoff_bounds_hold_for_random_draws() -> None:
    rng = random.Random(3)
    delays = exponential_backoff(initial=0.5, maximum=30.0, rng=rng.random)
    assert 0 <= next(delays) < 0.5
    expected = 0.5
    for _ in range(20):
        delay = next(delays)
        assert expected / 2 <= delay <= expected
        expected = min(expected * 2, 30.0)


def test_backoff_reset_is_a_new_generator() -> None:
    draws = iter([0.5, 0.5, 0.5, 0.5, 0.5])

    def policy() -> Iterator[float]:
        return exponential_backoff(initial=1.0, rng=lambda: next(draws))

    first = policy()
    assert [next(first), next(first), next(first)] == [0.5, 0.75, 1.5]
    second = policy()
    assert next(second) == 0.5


def test_backoff_validates() -> None:
    with pytest.raises(ValueError):
        next(exponential_backoff(initial=0))
    with pytest.raises(ValueError):
        next(exponential_backoff(initial=5, maximum=1))


# --- lifetimes and liveness ----------------------------------------------------------------------


def test_planned_reconnect_happens_margin_before_the_cut() -> None:
    assert planned_reconnect_at(100.0, 86_400.0, 600.0) == 100.0 + 85_800.0
    # A margin longer than the lifetime still waits half of it (no reconnect loop).
    assert planned_reconnect_at(0.0, 10.0, 60.0) == 5.0


def test_stall_deadline() -> None:
    assert stall_deadline(50.0, 20.0, 40.0) == 110.0


# --- gap windows on the server clock -----------------------------------------------------------


def test_server_window_shifts_by_the_offset_and_widens_by_error_and_margin() -> None:
    # Server 3.6 s ahead, offset known to ±2.5 ms, 1 s margin: local 100.0-105.5 s.
    assert server_window_ms(100.0, 105.5, 3600.0, 2.5, 1000.0) == (102_597, 110_103)
    # A server behind the local clock shifts the other way; no error, no margin: exact.
    assert server_window_ms(100.0, 100.0, -250.0, 0.0, 0.0) == (99_750, 99_750)


@pytest.mark.parametrize("offset", [-1234.567, 0.0, 0.4, 98_765.5])
def test_server_window_rounds_outwards(offset: float) -> None:
    start, end = server_window_ms(1_700_000_000.1234, 1_700_000_001.9876, offset, 0.3, 0.0)
    assert start <= 1_700_000_000_123.4 + offset - 0.3 < start + 1
    assert end - 1 < 1_700_000_001_987.6 + offset + 0.3 <= end


# --- dedupe -------------------------------------------------------------------------------------


EXECUTION = {
    "e": "executionReport",
    "E": 1499405658658,
    "s": "ETHBTC",
    "i": 4293153,
    "I": 8641984,
    "x": "TRADE",
    "X": "PARTIALLY_FILLED",
    "t": 17,
    "z": "0.5",
    "T": 1499405658657,
}


def test_event_key_identifies_the_same_event_across_connections() -> None:
    copy = dict(reversed(list(EXECUTION.items())))  # another parse, another key order
    assert event_key(EXECUTION) == event_key(copy)
    second = {**EXECUTION, "I": 8641985, "t": 18, "z": "1.0"}
    assert event_key(second) != event_key(EXECUTION)


def test_event_key_separates_positions_of_the_same_millisecond() -> None:
    # The case that breaks field-subset keys: same E and u, different balances.
    first = {"e": "outboundAccountPosition", "E": 1, "u": 1, "B": [{"a": "BTC", "f": "1"}]}
    second = {"e": "outboundAccountPosition", "E": 1, "u": 1, "B": [{"a": "BTC", "f": "2"}]}
    assert event_key(first) != event_key(second)
    assert event_key(first) == event_key(
        {"u": 1, "B": [{"f": "1", "a": "BTC"}], "E": 1, "e": "outboundAccountPosition"}
    )


def merge(old: list[str], new: list[str], capacity: int = 64) -> list[str]:
    """What the stream delivers: the old connection fully, then the new one through the filter."""
    overlap = OverlapFilter(capacity)
    for event in old:
        overlap.record(event)
    return old + [event for event in new if not overlap.duplicate(event)]


@pytest.mark.parametrize(
    ("old_end", "new_start"),
    [(12, 7), (7, 7), (7, 3), (20, 0), (3, 3)],
    ids=["overlap", "touching", "new-started-earlier", "new-lags", "nothing-shared"],
)
def test_overlap_merge_is_exactly_once_and_in_order(old_end: int, new_start: int) -> None:
    events = [f"e{n}" for n in range(20)]
    old = events[:old_end]  # the old connection delivered up to here before it closed
    new = events[new_start:]  # the new subscription started here
    assert merge(old, new) == events


def test_overlap_keeps_genuinely_identical_events() -> None:
    # Two identical events (same content, same millisecond) are two events, on either side.
    events = ["a", "x", "x", "b", "x", "c"]
    assert merge(events[:4], events[2:]) == events
    assert merge(events[:2], events[1:]) == events
    assert merge(events[:5], events[5:]) == events


def is_done(overlap: OverlapFilter) -> bool:
    return overlap.done


def test_overlap_filter_is_done_at_the_first_new_event() -> None:
    overlap = OverlapFilter(8)
    for event in ["a", "b", "c"]:
        overlap.record(event)
    assert len(overlap) == 3
    assert overlap.duplicate("b")  # the new subscription started after "a"
    assert overlap.duplicate("c")
    assert not is_done(overlap)
    assert not overlap.duplicate("d")
    assert is_done(overlap) and len(overlap) == 0
    # From there on nothing is a copy, not even a replay of an old value.
    assert not overlap.duplicate("a")
    overlap.record("z")
    assert not overlap.duplicate("z")


def test_overlap_filter_narrows_ambiguous_alignments() -> None:
    # After "x" the new source may be at either "x"; "b" settles it on the second one.
    overlap = OverlapFilter(8)
    for event in ["a", "x", "x", "b"]:
        overlap.record(event)
    assert overlap.duplicate("x")
    assert overlap.duplicate("b")
    assert not overlap.duplicate("x")  # new: the old source had nothing after "b"
    assert is_done(overlap)


def test_overlap_filter_forgets_the_oldest_beyond_capacity() -> None:
    overlap = OverlapFilter(3)
    for event in ["a", "b", "c", "d"]:
        overlap.record(event)
    assert len(overlap) == 3
    assert not overlap.duplicate("a")  # forgotten: taken as new
    fresh = OverlapFilter(3)
    for event in ["a", "b", "c", "d"]:
        fresh.record(event)
    assert fresh.duplicate("b") and fresh.duplicate("c") and fresh.duplicate("d")
    assert not fresh.duplicate("e")
    with pytest.raises(ValueError):
        OverlapFilter(0)


def test_overlap_filter_memory_is_bounded() -> None:
    overlap = OverlapFilter(100)
    for n in range(10_000):
        overlap.record(n % 7)
    assert len(overlap) == 100
    assert sum(len(positions) for positions in overlap._index.values()) == 100
    # The last 100 keys are 9900 % 7 ... 9999 % 7: the run starting at 9995 matches.
    assert all(overlap.duplicate(n % 7) for n in range(9995, 10_000))
    assert not overlap.duplicate("new")


# --- routing ------------------------------------------------------------------------------------


# --- handler tables -----------------------------------------------------------------------------


class Base:
    pass


class Fill(Base):
    pass


class Position(Base):
    pass


class Other:
    pass


def test_expand_event_types() -> None:
    assert expand_event_types(Fill) == (Fill,)
    assert expand_event_types(Fill | Position) == (Fill, Position)
    assert expand_event_types(Union[Fill, Other]) == (Fill, Other)  # noqa: UP007
    with pytest.raises(TypeError):
        expand_event_types("Fill")
    with pytest.raises(TypeError):
        expand_event_types(Fill())


def test_handlers_for_includes_base_registrations_in_order() -> None:
    registrations: list[tuple[type, str]] = [
        (Fill, "fill-1"),
        (Base, "any"),
        (Position, "pos"),
        (Fill, "fill-2"),
        (object, "everything"),
    ]
    assert handlers_for(Fill, registrations) == ("fill-1", "any", "fill-2", "everything")
    assert handlers_for(Position, registrations) == ("any", "pos", "everything")
    assert handlers_for(Other, registrations) == ("everything",)
    assert handlers_for(Other, []) == ()


def test_handler_table_caches_per_class_and_a_registration_invalidates() -> None:
    table: HandlerTable[str] = HandlerTable()
    assert table.lookup(Fill) == ()
    table.add((Fill, Position), "a")
    assert table.lookup(Fill) == ("a",)  # not the () cached before the registration
    table.add((object,), "b")
    assert table.lookup(Fill) == ("a", "b")
    assert table.lookup(Other) == ("b",)
    assert table.cache == {Fill: ("a", "b"), Other: ("b",)}


def test_stats_start_at_zero() -> None:
    stats = StreamStats()
    assert stats.events_delivered == stats.reconnects == stats.gaps == 0
    stats.reconnects += 1
    assert stats.reconnects == 1
