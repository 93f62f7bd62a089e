"""Decoding of user-data events (binance_margin_async.events).

Fixtures in tests/data/events/ are Binance's documented payloads (PROTOCOL.md §3.2-§4, byte for
byte where the docs give one) plus captured-style variants whose values are all distinct, so a
field mapped to the wrong slot cannot go unnoticed.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_margin_async.events import (
    _EXEC_MANDATORY_KEYS,
    EVENT_TYPES,
    AccountPosition,
    Balance,
    BalanceUpdate,
    ContingencyType,
    EventStreamTerminated,
    ExecutionReport,
    ExecutionType,
    ExpiryReason,
    LiabilityChange,
    ListenKeyExpired,
    ListOrder,
    ListOrderStatus,
    ListStatus,
    ListStatusType,
    MarginLevelStatus,
    MarginLevelStatusChange,
    OrderSide,
    OrderStatus,
    OrderType,
    Resynced,
    SelfTradePreventionMode,
    ServerShutdown,
    StreamGap,
    TimeInForce,
    UnknownEvent,
    decode_event,
    normalize_ms,
)

DATA = Path(__file__).parent / "data" / "events"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((DATA / f"{name}.json").read_bytes())
    return data


def bare(name: str) -> dict[str, Any]:
    """The event without its WS API / combined-stream envelope."""
    data = load(name)
    inner: dict[str, Any] = data.get("event") or data.get("data") or data
    return inner


def same_decimal(a: Decimal | None, b: Decimal | None) -> bool:
    """Equal *and* spelled the same (exponent too): Decimal == ignores trailing zeros."""
    return a is not None and b is not None and a.as_tuple() == b.as_tuple()


# ------------------------------------------------------------------------------ executionReport


def test_execution_report_doc_example() -> None:
    event = decode_event(load("execution_report"), "CROSS")
    assert event == ExecutionReport(
        account="CROSS",
        event_time=1499405658658,
        symbol="ETHBTC",
        client_order_id="mUvoqJxFIILMdfAW5iGSOW",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        quantity=Decimal("1.00000000"),
        price=Decimal("0.10264410"),
        stop_price=Decimal("0"),
        iceberg_quantity=Decimal("0"),
        order_list_id=-1,
        orig_client_order_id="",
        execution_type=ExecutionType.NEW,
        order_status=OrderStatus.NEW,
        reject_reason="NONE",
        order_id=4293153,
        last_executed_quantity=Decimal("0"),
        cumulative_filled_quantity=Decimal("0"),
        last_executed_price=Decimal("0"),
        commission=Decimal("0"),
        commission_asset=None,
        transaction_time=1499405658657,
        trade_id=-1,
        is_on_book=True,
        is_maker=False,
        order_creation_time=1499405658657,
        cumulative_quote_quantity=Decimal("0"),
        last_quote_quantity=Decimal("0"),
        quote_order_quantity=Decimal("0"),
        self_trade_prevention_mode=SelfTradePreventionMode.NONE,
        execution_id=8641984,
        working_time=1499405658657,
        prevented_match_id=3,
    )
    assert event.raw == bare("execution_report")


def test_envelope_and_bare_decode_alike() -> None:
    envelope = load("execution_report")
    from_envelope = decode_event(envelope, "BTCUSDT")
    from_bare = decode_event(envelope["event"], "BTCUSDT")
    assert from_envelope == from_bare
    assert from_envelope.raw is envelope["event"]  # raw is the event, not the envelope
    assert from_bare.raw is envelope["event"]


def test_execution_report_every_field() -> None:
    ev = bare("execution_report_trade")
    event = decode_event(ev, "BTCUSDT")
    assert event == ExecutionReport(
        account="BTCUSDT",
        event_time=1764000000123,
        symbol="BTCUSDT",
        client_order_id="bma-7f3a91",
        side=OrderSide.SELL,
        order_type=OrderType.STOP_LOSS_LIMIT,
        time_in_force=TimeInForce.IOC,
        quantity=Decimal("0.05"),
        price=Decimal("87000.1"),
        stop_price=Decimal("86500"),
        iceberg_quantity=Decimal("0.01"),
        order_list_id=42,
        orig_client_order_id="orig-55",
        execution_type=ExecutionType.TRADE,
        order_status=OrderStatus.PARTIALLY_FILLED,
        reject_reason="NONE",
        order_id=31415926,
        last_executed_quantity=Decimal("0.02"),
        cumulative_filled_quantity=Decimal("0.03"),
        last_executed_price=Decimal("87000.2"),
        commission=Decimal("1.740004"),
        commission_asset="USDT",
        transaction_time=1764000000120,
        trade_id=271828,
        is_on_book=False,
        is_maker=True,
        order_creation_time=1764000000001,
        cumulative_quote_quantity=Decimal("2610.006"),
        last_quote_quantity=Decimal("1740.004"),
        quote_order_quantity=Decimal("0.00000007"),
        self_trade_prevention_mode=SelfTradePreventionMode.EXPIRE_MAKER,
        execution_id=99887766,
    )
    assert event.raw is ev
    # Amounts keep Binance's spelling (exponent), as Decimal(str) would.
    assert isinstance(event, ExecutionReport)
    assert same_decimal(event.price, Decimal("87000.10000000"))
    assert same_decimal(event.stop_price, Decimal("86500.00000000"))


def test_conditional_fields_strings_and_unknown_fields() -> None:
    ev = bare("execution_report_conditional")
    event = decode_event(ev, "CROSS")
    assert isinstance(event, ExecutionReport)
    # d, j, v, u arrive as strings here (the SDK models them so): parsed as ints all the same.
    assert event.trailing_delta == 50
    assert event.trailing_time == 1764000000450
    assert event.strategy_id == 7
    assert event.strategy_type == 1000000
    assert event.prevented_match_id == 12
    assert event.prevented_quantity == Decimal("1.5")
    assert event.last_prevented_quantity == Decimal("0.5")
    assert event.trade_group_id == 99
    assert event.counter_order_id == 778
    assert event.counter_symbol == "BNBUSDT"
    assert event.prevented_execution_quantity == Decimal("0.5")
    assert event.prevented_execution_price == Decimal("600")
    assert event.prevented_execution_quote_quantity == Decimal("300")
    assert event.expiry_reason is ExpiryReason.UNFILLED_IOC_QUANTITY_EXPIRED
    assert event.execution_type is ExecutionType.TRADE_PREVENTION
    assert event.order_status is OrderStatus.EXPIRED_IN_MATCH
    assert event.working_time is None
    # Fields not modelled stay reachable.
    assert event.raw["uS"] is True
    assert event.raw["brandNewField"] == {"nested": [1, 2, 3]}


@pytest.mark.parametrize("dropped", [("M",), ("I",), ("W",), ("M", "I", "W")])
def test_conditional_fields_found_without_usual_optional_keys(dropped: tuple[str, ...]) -> None:
    # The decoder skips the conditional lookups when a report has no keys beyond the usual ones;
    # that shortcut must not hide a conditional field when a usual key is missing.
    ev = {k: v for k, v in bare("execution_report").items() if k not in dropped and k != "v"}
    ev["j"] = 5
    event = decode_event(ev, "CROSS")
    assert isinstance(event, ExecutionReport)
    assert event.strategy_id == 5
    assert event.execution_id == (None if "I" in dropped else 8641984)


@pytest.mark.parametrize("key", [k for k in _EXEC_MANDATORY_KEYS if k != "e"])
def test_every_mandatory_report_key_is_required(key: str) -> None:
    # The conditional-field shortcut counts on the decoder indexing every key of this list.
    ev = {k: v for k, v in bare("execution_report").items() if k != key}
    event = decode_event(ev, "CROSS")
    assert isinstance(event, UnknownEvent)
    assert event.error == f"malformed executionReport: KeyError: {key!r}"


def test_report_without_conditional_fields_has_them_none() -> None:
    ev = {k: v for k, v in bare("execution_report").items() if k != "v"}
    event = decode_event(ev, "CROSS")
    assert isinstance(event, ExecutionReport)
    assert event.prevented_match_id is None
    assert event.trailing_delta is None
    assert event.expiry_reason is None


def test_unknown_enum_values_kept_as_str() -> None:
    event = decode_event(load("execution_report_unknown_enums"), "ETHUSDT")
    assert isinstance(event, ExecutionReport)
    for value, expected, enum in [
        (event.side, "SHORT", OrderSide),
        (event.order_type, "PEGGED_LIMIT", OrderType),
        (event.time_in_force, "GTD", TimeInForce),
        (event.execution_type, "AMENDMENT", ExecutionType),
        (event.order_status, "PENDING_AMEND", OrderStatus),
        (event.self_trade_prevention_mode, "TRANSFER", SelfTradePreventionMode),
        (event.expiry_reason, "SOMETHING_NEW", ExpiryReason),
    ]:
        assert value == expected
        assert type(value) is str, enum
    assert event.reject_reason == "-2010"


def test_known_enum_values_are_members() -> None:
    event = decode_event(load("execution_report_trade"), "CROSS")
    assert isinstance(event, ExecutionReport)
    assert event.side is OrderSide.SELL
    assert event.execution_type is ExecutionType.TRADE
    assert event.side == "SELL"  # StrEnum: compares equal to the wire string


def test_null_commission_asset_and_zero_commission() -> None:
    event = decode_event(load("execution_report"), "CROSS")
    assert isinstance(event, ExecutionReport)
    assert event.commission_asset is None
    assert same_decimal(event.commission, Decimal("0"))


def test_order_client_id_is_the_orders_own_id() -> None:
    new = decode_event(bare("execution_report"), "CROSS")
    assert isinstance(new, ExecutionReport)
    assert new.orig_client_order_id == ""
    assert new.order_client_id == new.client_order_id == "mUvoqJxFIILMdfAW5iGSOW"
    # A cancel: "c" is the cancel request's own id, "C" the canceled order's.
    cancel_ev = {
        **bare("execution_report"),
        "c": "cancelRequest42",
        "C": "mUvoqJxFIILMdfAW5iGSOW",
        "x": "CANCELED",
        "X": "CANCELED",
    }
    cancel = decode_event(cancel_ev, "CROSS")
    assert isinstance(cancel, ExecutionReport)
    assert cancel.client_order_id == "cancelRequest42"
    assert cancel.order_client_id == "mUvoqJxFIILMdfAW5iGSOW" == new.order_client_id
    # A property, not a field: equality, replace and the constructor are unchanged.
    assert "order_client_id" not in {f.name for f in dataclasses.fields(cancel)}
    assert dataclasses.replace(cancel, orig_client_order_id="").order_client_id == "cancelRequest42"


# ------------------------------------------------------------------------------ malformed / unknown


def test_malformed_known_event_is_delivered_as_unknown() -> None:
    ev = bare("execution_report_malformed")  # no "q"
    event = decode_event(ev, "CROSS")
    assert isinstance(event, UnknownEvent)
    assert event.event_type == "executionReport"
    assert event.raw is ev
    assert event.error == "malformed executionReport: KeyError: 'q'"


@pytest.mark.parametrize(
    ("name", "change", "error_type"),
    [
        ("execution_report", {"q": "one"}, "InvalidOperation"),
        ("execution_report", {"q": None}, "TypeError"),
        ("execution_report", {"S": ["BUY"]}, "TypeError"),
        ("execution_report", {"d": "soon", "j": 1}, "ValueError"),
        ("outbound_account_position", {"B": "ETH"}, "TypeError"),
        ("outbound_account_position", {"B": [{"a": "ETH", "f": "1"}]}, "KeyError"),
        ("list_status", {"O": [None]}, "TypeError"),
        ("balance_update", {"d": {}}, "TypeError"),
        ("user_liability_change", {"p": "1,5"}, "InvalidOperation"),
        ("margin_level_status_change", {"l": None}, "TypeError"),
        ("event_stream_terminated", {"E": "yesterday"}, "ValueError"),
        ("server_shutdown", {"E": None}, "TypeError"),
        ("listen_key_expired", {"E": 1.5e400}, "OverflowError"),
    ],
)
def test_malformed_variants_never_raise(name: str, change: dict[str, Any], error_type: str) -> None:
    ev = {**bare(name), **change}
    event = decode_event(ev, "CROSS")
    assert isinstance(event, UnknownEvent)
    assert event.event_type == ev["e"]
    assert event.error is not None
    assert event.error.startswith(f"malformed {ev['e']}: {error_type}")
    assert event.raw is ev


@pytest.mark.parametrize("name", ["unknown_event_type", "external_lock_update"])
def test_unknown_event_type_is_delivered(name: str) -> None:
    ev = bare(name)
    event = decode_event(load(name), "CROSS")
    assert event == UnknownEvent(account="CROSS", event_type=ev["e"], raw=ev, error=None)
    assert event.raw == ev


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"E": 1}, "missing or non-string event type"),
        ({"e": 5, "E": 1}, "missing or non-string event type"),
        ({"e": ["executionReport"]}, "missing or non-string event type"),
        ({"subscriptionId": 0, "event": {"E": 1}}, "missing or non-string event type"),
        ({"subscriptionId": 0, "event": "executionReport"}, "missing or non-string event type"),
    ],
)
def test_event_without_type(payload: dict[str, Any], error: str) -> None:
    event = decode_event(payload, "CROSS")
    assert isinstance(event, UnknownEvent)
    assert event.event_type is None
    assert event.error == error
    assert event.raw is payload


@pytest.mark.parametrize("payload", [[1, 2], None, "executionReport", 42])
def test_not_an_object(payload: Any) -> None:
    event = decode_event(payload, "CROSS")
    assert isinstance(event, UnknownEvent)
    assert event.event_type is None
    assert event.raw == {"payload": payload}
    assert event.error == f"not an event object: {type(payload).__name__}"


# ------------------------------------------------------------------------------ other event types


def test_outbound_account_position() -> None:
    event = decode_event(load("outbound_account_position"), "CROSS")
    assert event == AccountPosition(
        account="CROSS",
        event_time=1564034571105,
        last_update_time=1564034571073,
        balances=(Balance(asset="ETH", free=Decimal("10000"), locked=Decimal("0")),),
    )
    assert isinstance(event, AccountPosition)
    assert same_decimal(event.balances[0].free, Decimal("10000.000000"))


def test_outbound_account_position_many_assets_and_8_decimal_zero() -> None:
    ev = {
        "e": "outboundAccountPosition",
        "E": 2,
        "u": 1,
        "B": [
            {"a": "BTC", "f": "0.00000000", "l": "0.50000000"},
            {"a": "USDT", "f": "120.5", "l": "0.00000000"},
        ],
    }
    event = decode_event(ev, "BTCUSDT")
    assert isinstance(event, AccountPosition)
    assert [(b.asset, b.free, b.locked) for b in event.balances] == [
        ("BTC", Decimal(0), Decimal("0.5")),
        ("USDT", Decimal("120.5"), Decimal(0)),
    ]
    assert same_decimal(event.balances[0].free, Decimal("0.00000000"))


def test_balance_update() -> None:
    event = decode_event(load("balance_update"), "CROSS")
    assert event == BalanceUpdate(
        account="CROSS",
        event_time=1573200697110,
        asset="BTC",
        delta=Decimal("100"),
        clear_time=1573200697068,
    )
    negative = decode_event({**bare("balance_update"), "d": "-0.5"}, "CROSS")
    assert isinstance(negative, BalanceUpdate)
    assert negative.delta == Decimal("-0.5")


def test_list_status() -> None:
    event = decode_event(load("list_status"), "CROSS")
    assert event == ListStatus(
        account="CROSS",
        event_time=1564035303637,
        symbol="ETHBTC",
        order_list_id=2,
        contingency_type=ContingencyType.OCO,
        list_status_type=ListStatusType.EXEC_STARTED,
        list_order_status=ListOrderStatus.EXECUTING,
        list_reject_reason="NONE",
        list_client_order_id="F4QN4G8DlFATFlIUQ0cjdD",
        transaction_time=1564035303625,
        orders=(
            ListOrder(symbol="ETHBTC", order_id=17, client_order_id="AJYsMjErWJesZvqlJCTUgL"),
            ListOrder(symbol="ETHBTC", order_id=18, client_order_id="bfYPSQdLoqAJeNrOr9adzq"),
        ),
    )


def test_list_status_unknown_enums() -> None:
    ev = {**bare("list_status"), "c": "OTOCO", "l": "REPLANNED", "L": "PAUSED"}
    event = decode_event(ev, "CROSS")
    assert isinstance(event, ListStatus)
    assert (event.contingency_type, event.list_status_type, event.list_order_status) == (
        "OTOCO",
        "REPLANNED",
        "PAUSED",
    )
    assert type(event.contingency_type) is str


def test_user_liability_change() -> None:
    event = decode_event(load("user_liability_change"), "CROSS")
    assert event == LiabilityChange(
        account="CROSS",
        event_time=1701949801133,
        asset="BTC",
        liability_type="BORROW",
        principal=Decimal("0.000001"),
        interest=Decimal("0"),
    )


def test_margin_level_status_change() -> None:
    event = decode_event(load("margin_level_status_change"), "CROSS")
    assert event == MarginLevelStatusChange(
        account="CROSS",
        event_time=1701949763462,
        margin_level=Decimal("1.1"),
        status=MarginLevelStatus.MARGIN_CALL,
    )


def test_combined_stream_envelope() -> None:
    event = decode_event(load("margin_level_status_change_combined"), "CROSS")
    assert event == MarginLevelStatusChange(
        account="CROSS",
        event_time=1701949763999,
        margin_level=Decimal("1.05"),
        status=MarginLevelStatus.PRE_LIQUIDATION,
    )


def test_margin_level_unknown_status() -> None:
    event = decode_event({**bare("margin_level_status_change"), "s": "AUTO_DELEVERAGE"}, "CROSS")
    assert isinstance(event, MarginLevelStatusChange)
    assert event.status == "AUTO_DELEVERAGE"
    assert type(event.status) is str


def test_event_stream_terminated() -> None:
    event = decode_event(load("event_stream_terminated"), "BTCUSDT")
    assert event == EventStreamTerminated(account="BTCUSDT", event_time=1759089357377)


def test_server_shutdown_envelope_without_subscription_id() -> None:
    event = decode_event(load("server_shutdown"), "CROSS")
    assert event == ServerShutdown(account="CROSS", event_time=1770123456789)


def test_listen_key_expired_string_event_time() -> None:
    event = decode_event(load("listen_key_expired"), "CROSS")
    assert event == ListenKeyExpired(
        account="CROSS",
        event_time=1699596037418,
        listen_key="OfYGbUzi3PraNagEkdKuFwUHn48brFsItTdsuiIXrucEvD0rhRXZ7I6URWfE8YE8",
    )
    assert "OfYG" not in repr(event)  # the key is a credential: kept out of logs


def test_listen_key_expired_microsecond_and_int_event_time() -> None:
    ev = bare("listen_key_expired")
    micro = decode_event({**ev, "E": "1699596037418123"}, "CROSS")
    integer = decode_event({**ev, "E": 1699596037418}, "CROSS")
    assert isinstance(micro, ListenKeyExpired)
    assert isinstance(integer, ListenKeyExpired)
    assert micro.event_time == integer.event_time == 1699596037418
    no_key = decode_event({"e": "listenKeyExpired", "E": 1}, "CROSS")
    assert isinstance(no_key, ListenKeyExpired)
    assert no_key.listen_key is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1758792204196, 1758792204196),
        ("1758792204196", 1758792204196),
        (1749094553955907, 1749094553955),  # the µs example of userDataStream.subscribe
        ("1749094553955907", 1749094553955),
        (9_999_999_999_999, 9_999_999_999_999),  # 13 digits: still ms
        (10_000_000_000_000, 10_000_000_000),  # 14 digits: µs
        (0, 0),
    ],
)
def test_normalize_ms(value: int | str, expected: int) -> None:
    assert normalize_ms(value) == expected


def test_normalize_ms_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        normalize_ms("soon")


# ------------------------------------------------------------------------------ the dataclasses


DECODED = {
    "execution_report": ExecutionReport,
    "execution_report_trade": ExecutionReport,
    "execution_report_conditional": ExecutionReport,
    "execution_report_unknown_enums": ExecutionReport,
    "execution_report_malformed": UnknownEvent,
    "outbound_account_position": AccountPosition,
    "balance_update": BalanceUpdate,
    "list_status": ListStatus,
    "external_lock_update": UnknownEvent,
    "event_stream_terminated": EventStreamTerminated,
    "server_shutdown": ServerShutdown,
    "user_liability_change": LiabilityChange,
    "margin_level_status_change": MarginLevelStatusChange,
    "margin_level_status_change_combined": MarginLevelStatusChange,
    "listen_key_expired": ListenKeyExpired,
    "unknown_event_type": UnknownEvent,
}


def test_every_fixture_is_covered() -> None:
    assert {p.stem for p in DATA.glob("*.json")} == set(DECODED)


@pytest.mark.parametrize(("name", "cls"), sorted(DECODED.items()))
def test_decoded_events_are_real_frozen_instances(name: str, cls: type[Any]) -> None:
    event = decode_event(load(name), "CROSS")
    assert type(event) is cls
    assert event.account == "CROSS"
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.account = "BTCUSDT"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    # Built through the fast path, yet indistinguishable from the regular constructor.
    rebuilt = cls(**{f.name: getattr(event, f.name) for f in dataclasses.fields(event)})
    assert rebuilt == event
    assert repr(rebuilt) == repr(event)
    assert copy.copy(event) == event
    assert pickle.loads(pickle.dumps(event)) == event
    if cls is not UnknownEvent:
        assert hash(rebuilt) == hash(event)
        assert "raw=" not in repr(event)


def test_replace_works_on_decoded_events() -> None:
    event = decode_event(load("execution_report"), "CROSS")
    assert isinstance(event, ExecutionReport)
    moved = dataclasses.replace(event, account="ETHBTC")
    assert moved.account == "ETHBTC"
    assert moved.order_id == event.order_id


def test_raw_is_not_compared() -> None:
    a = decode_event(bare("balance_update"), "CROSS")
    b = decode_event({**bare("balance_update"), "extra": 1}, "CROSS")
    assert a == b


def test_event_types_lists_every_event_class() -> None:
    assert set(EVENT_TYPES) == {*(set(DECODED.values())), StreamGap, Resynced}
    assert len(EVENT_TYPES) == len(set(EVENT_TYPES))
    for cls in EVENT_TYPES:
        names = [f.name for f in dataclasses.fields(cls)]
        assert names[0] == "account"
        assert "raw" in names
        assert vars(cls)["__dataclass_params__"].frozen
        assert "__slots__" in vars(cls)


def test_synthetic_events() -> None:
    gap = StreamGap(account="CROSS", started=100.0, ended=105.5)
    assert gap.raw == {}
    assert Resynced(account="BTCUSDT").raw == {}
    assert gap == StreamGap("CROSS", 100.0, 105.5)
    assert (gap.started_ms, gap.ended_ms) == (None, None)


def test_stream_gap_server_times_are_keyword_only() -> None:
    # The positional contract StreamGap(account, started, ended[, raw]) is unchanged.
    gap = StreamGap("CROSS", 100.0, 105.5, {"channel": "trade"}, started_ms=7, ended_ms=9)
    assert (gap.account, gap.started, gap.ended) == ("CROSS", 100.0, 105.5)
    assert gap.raw == {"channel": "trade"}
    assert (gap.started_ms, gap.ended_ms) == (7, 9)
    assert gap != StreamGap("CROSS", 100.0, 105.5)  # a different window on the server clock
    assert StreamGap.__match_args__ == ("account", "started", "ended", "raw")
    with pytest.raises(TypeError):
        StreamGap("CROSS", 100.0, 105.5, {}, 7)  # type: ignore[call-arg]


def test_enum_values_match_their_names() -> None:
    for enum in (
        OrderSide,
        OrderType,
        TimeInForce,
        ExecutionType,
        OrderStatus,
        SelfTradePreventionMode,
        ExpiryReason,
        ContingencyType,
        ListStatusType,
        ListOrderStatus,
        MarginLevelStatus,
    ):
        for member in enum:
            assert member.value == member.name


# ------------------------------------------------------------------------------ properties

amounts = st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False).map(
    lambda d: f"{d:.8f}"
)


@settings(max_examples=200, deadline=None)
@given(q=amounts, price=amounts, last=amounts, commission=st.sampled_from(["0", "0.1", "1.00"]))
def test_amounts_equal_decimal_of_the_wire_string(
    q: str, price: str, last: str, commission: str
) -> None:
    ev = {**bare("execution_report"), "q": q, "p": price, "l": last, "Z": q, "n": commission}
    event = decode_event(ev, "CROSS")
    assert isinstance(event, ExecutionReport)
    for got, wire in [
        (event.quantity, q),
        (event.price, price),
        (event.last_executed_quantity, last),
        (event.cumulative_quote_quantity, q),
        (event.commission, commission),
    ]:
        assert same_decimal(got, Decimal(wire))


# Few distinct texts, so that amounts of one report are often equal (the decoder reuses the
# Decimal of an equal text) and often differ only in their exponent ("1.0" vs "1.00").
pooled = st.sampled_from(["0", "0.00000000", "1.0", "1.00", "1.00000000", "0.5", "60000.12"])


@settings(max_examples=300, deadline=None)
@given(amounts=st.fixed_dictionaries({key: pooled for key in "qpPFlzLnZYQ"}))
def test_equal_amount_texts_give_the_same_decimals_as_separate_parsing(
    amounts: dict[str, str],
) -> None:
    event = decode_event({**bare("execution_report"), **amounts}, "CROSS")
    assert isinstance(event, ExecutionReport)
    fields = {
        "q": event.quantity,
        "p": event.price,
        "P": event.stop_price,
        "F": event.iceberg_quantity,
        "l": event.last_executed_quantity,
        "z": event.cumulative_filled_quantity,
        "L": event.last_executed_price,
        "n": event.commission,
        "Z": event.cumulative_quote_quantity,
        "Y": event.last_quote_quantity,
        "Q": event.quote_order_quantity,
    }
    for key, got in fields.items():
        assert same_decimal(got, Decimal(amounts[key])), key


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(DECODED)),
    changes=st.dictionaries(
        st.sampled_from(["E", "s", "q", "p", "B", "O", "l", "a", "d", "T", "S", "x", "j", "u"]),
        json_values,
        max_size=4,
    ),
)
def test_decode_never_raises(name: str, changes: dict[str, Any]) -> None:
    ev = {**bare(name), **changes}
    event = decode_event(ev, "CROSS")
    assert isinstance(event, EVENT_TYPES)
    assert event.account == "CROSS"
