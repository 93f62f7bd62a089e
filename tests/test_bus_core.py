"""The pure core of RedisEventBus (binance_margin_async.redis._buscore): no Redis, no event loop."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from binance_margin_async.errors import ParameterError
from binance_margin_async.events import (
    ExecutionReport,
    ListenKeyExpired,
    MarginLevelStatus,
    Resynced,
    StreamGap,
    UnknownEvent,
    decode_event,
)
from binance_margin_async.redis._buscore import (
    BUS_CHANNEL,
    Lease,
    Position,
    Progress,
    SafePoint,
    _coerce,
    decode_payload,
    encode_event,
    gap_events,
    gap_window,
    hole_between,
    parse_entry_id,
    resynced_events,
)

DATA = Path(__file__).parent / "data" / "events"


def wire_events() -> list[tuple[str, Any]]:
    """Every documented payload of tests/data/events, decoded as the stream decodes it."""
    found = []
    for path in sorted(DATA.glob("*.json")):
        found.append((path.stem, decode_event(orjson.loads(path.read_bytes()), "BTCUSDT")))
    return found


# ------------------------------------------------------------------------------ serialization


@pytest.mark.parametrize(("name", "event"), wire_events())
def test_every_wire_event_crosses_the_bus_unchanged(name: str, event: Any) -> None:
    back = decode_payload(encode_event(event))
    assert type(back) is type(event)
    if isinstance(event, ListenKeyExpired):  # the credential is left out (see below)
        event = dataclasses.replace(event, listen_key=None)
    assert back == event
    assert back.account == "BTCUSDT"
    assert {k: v for k, v in back.raw.items() if k != "listenKey"} == {
        k: v for k, v in event.raw.items() if k != "listenKey"
    }


def test_the_listen_key_does_not_go_to_redis() -> None:
    event = decode_event(orjson.loads((DATA / "listen_key_expired.json").read_bytes()), "CROSS")
    assert isinstance(event, ListenKeyExpired) and event.listen_key
    payload = encode_event(event)
    assert event.listen_key.encode() not in payload
    back = decode_payload(payload)
    assert isinstance(back, ListenKeyExpired)
    assert back.listen_key is None
    assert back.event_time == event.event_time


@pytest.mark.parametrize(
    "event",
    [
        StreamGap("CROSS", 1.5, 2.25, {"channel": "trade", "reason": "reconnect"}),
        StreamGap("ETHUSDT", 1.5, 2.25, started_ms=1499, ended_ms=2251),
        Resynced("CROSS", {"channel": "risk"}),
        UnknownEvent("CROSS", "newEvent", {"e": "newEvent", "x": [1, 2]}),
        UnknownEvent("CROSS", "executionReport", {"e": "executionReport"}, "malformed: KeyError"),
        UnknownEvent("CROSS", None, {"payload": [1]}, "not an event object: list"),
    ],
)
def test_synthetic_events_cross_the_bus_field_by_field(event: Any) -> None:
    back = decode_payload(encode_event(event))
    assert type(back) is type(event)
    assert back == event
    assert back.raw == event.raw
    for f in dataclasses.fields(event):
        assert getattr(back, f.name) == getattr(event, f.name)


def test_fields_of_a_newer_publisher_are_ignored_and_missing_ones_defaulted() -> None:
    newer = {"a": "CROSS", "k": "StreamGap", "f": {"started": 1.0, "ended": 2.0, "colour": "red"}}
    back = decode_payload(orjson.dumps(newer))
    assert back == StreamGap("CROSS", 1.0, 2.0)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"not json", "unreadable bus entry"),
        (b'{"k": "StreamGap"}', "unreadable bus entry"),
        (b'{"a": "CROSS", "k": "Teleported", "f": {}}', "unknown to this version"),
        (b'{"a": "CROSS", "k": "StreamGap", "f": {"started": 1.0}}', "malformed StreamGap"),
    ],
)
def test_an_unreadable_entry_is_delivered_as_an_unknown_event(payload: bytes, error: str) -> None:
    back = decode_payload(payload)
    assert isinstance(back, UnknownEvent)
    assert back.error is not None and error in back.error


def test_json_losses_are_undone_from_the_annotations() -> None:
    hint = MarginLevelStatus | str
    assert _coerce("MARGIN_CALL", hint) is MarginLevelStatus.MARGIN_CALL
    assert _coerce("SOMETHING_NEW", hint) == "SOMETHING_NEW"
    assert _coerce("1.50", Decimal | None) == Decimal("1.50")
    assert _coerce([1, 2], tuple[int, ...]) == (1, 2)
    assert _coerce(3, int) == 3


def test_a_wire_event_keeps_its_decoded_type_and_account() -> None:
    raw = orjson.loads((DATA / "execution_report_trade.json").read_bytes())
    event = decode_event(raw, "ETHUSDT")
    assert isinstance(event, ExecutionReport)
    back = decode_payload(encode_event(event))
    assert isinstance(back, ExecutionReport)
    assert (back.account, back.trade_id, back.cumulative_filled_quantity) == (
        "ETHUSDT",
        event.trade_id,
        event.cumulative_filled_quantity,
    )


# ------------------------------------------------------------------------------ lease


def test_lease_deadline_counts_from_when_the_request_was_sent() -> None:
    lease = Lease(3.0, 1.0)
    assert not lease.held(0.0)
    lease.acquired(7, sent=100.0)
    assert lease.token == 7
    assert lease.held(102.9) and not lease.held(103.0)
    assert lease.next_renewal(100.0) == 101.0
    lease.renewed(sent=101.5)
    assert lease.deadline == 104.5
    lease.renewed(sent=101.0)  # a late confirmation of an older renewal never shortens it
    assert lease.deadline == 104.5
    lease.lost()
    assert not lease.held(101.6)
    assert [lease.token] == [None]  # (a list: mypy narrowed the attribute to int above)


@pytest.mark.parametrize(("ttl", "every"), [(0.0, 0.1), (-1.0, 0.1), (3.0, 3.0), (3.0, 0.0)])
def test_lease_rejects_impossible_timings(ttl: float, every: float) -> None:
    with pytest.raises(ParameterError):
        Lease(ttl, every)


# ------------------------------------------------------------------------------ gap windows


def test_handover_window_is_widened_by_both_clock_errors_and_the_margin() -> None:
    since = SafePoint(100.0, 100_000, 2.5)
    until = SafePoint(104.0, 104_010, 1.2)
    assert gap_window(since, until, 1000.0) == (100.0, 104.0, 98_997, 105_012)
    # Without an exchange time on either side there is no exchange-time window.
    assert gap_window(SafePoint(100.0), until, 1000.0) == (100.0, 104.0, None, None)


def test_gap_and_resynced_markers_name_the_bus_channel_and_reason() -> None:
    gaps = gap_events(["CROSS", "BTCUSDT"], (1.0, 2.0, 900, 2100), "publisher handover")
    assert [gap.account for gap in gaps] == ["CROSS", "BTCUSDT"]
    assert all(
        (gap.started, gap.ended, gap.started_ms, gap.ended_ms) == (1.0, 2.0, 900, 2100)
        for gap in gaps
    )
    assert gaps[0].raw == {"channel": BUS_CHANNEL, "reason": "publisher handover"}
    resynced = resynced_events(["CROSS"], "publisher handover")
    assert resynced == [Resynced("CROSS")]
    assert resynced[0].raw["reason"] == "publisher handover"


def test_safe_point_round_trips_through_redis_strings() -> None:
    point = SafePoint(1700000000.123456, 1700000000123, 1.75)
    assert SafePoint.parse(*(text.encode() for text in point.fields())) == point
    assert SafePoint.parse(*SafePoint(5.0).fields()) == SafePoint(5.0)
    assert SafePoint.parse(None, None, None) is None


# ------------------------------------------------------------------------------ positions


def test_position_text_round_trip_and_order() -> None:
    position = Position((1700000000123, 4), 42, 1700000000.125, 1700000000124)
    assert str(position) == "1700000000123-4/42/1700000000.125/1700000000124"
    assert Position.parse(str(position)) == position
    assert Position.parse(str(position)).n == 42
    assert Position.parse("5-1") == Position((5, 1))
    assert Position.START < Position((0, 1)) < Position((1, 0))
    assert position.entry_id == "1700000000123-4"
    assert parse_entry_id("7-0") == (7, 0)
    with pytest.raises(ParameterError, match="not a bus position"):
        Position.parse("yesterday")


def test_holes_are_found_from_the_sequence_numbers() -> None:
    last = Position((1000, 0), 10, 1.0, 1000)
    assert hole_between(last, 11, 2.0, 2000, 500.0) is None
    assert hole_between(Position((1000, 0)), 57, 2.0, 2000, 500.0) is None  # fresh start
    assert hole_between(last, 15, 2.0, 2000, 500.0) == ("retention", (1.0, 2.0, 500, 2500))
    assert hole_between(last, 1, 2.0, None, 500.0) == ("reset", (1.0, 2.0, None, None))


def test_progress_commits_the_oldest_unfinished_entry() -> None:
    p = [Position((i, 0), i) for i in range(6)]
    progress = Progress(p[0])
    assert progress.committable == p[0]
    progress.handed_out(p[1])
    progress.done(Progress.CALLBACKS, p[1])
    assert progress.committable == p[1]  # callbacks only

    reader, late = object(), object()
    progress.attach(reader)
    progress.handed_out(p[2])
    progress.done(Progress.CALLBACKS, p[2])
    assert progress.committable == p[1]  # the reader has not finished p[2]
    progress.attach(late)  # joins now: nothing before p[2] is waited for
    progress.handed_out(p[3])
    progress.done(Progress.CALLBACKS, p[3])
    progress.done(reader, p[3])
    assert progress.committable == p[2]  # `late` holds it back
    progress.done(late, p[2])
    assert progress.committable == p[2]
    progress.detach(late)
    assert progress.committable == p[3]
    progress.done(reader, p[1])  # never moves back
    assert progress.committable == p[3]
    progress.done(object(), p[5])  # unknown readers are ignored
    assert progress.last == p[3]
    assert math.isclose(progress.committable.wall, 0.0)
