"""AccountMirror: state from REST snapshots and events, idempotent under replays."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_margin_async.events import (
    Event,
    MarginLevelStatus,
    OrderSide,
    OrderStatus,
    OrderType,
    Resynced,
    StreamGap,
    TimeInForce,
    decode_event,
)
from binance_margin_async.mirror import AccountMirror, AssetBalance, MarginLevel, OpenOrder
from binance_margin_async.models import IsolatedMarginAccount, MarginAccount, Order, decode

# REST shapes from the Binance docs (seeds 001/002), values made up.
CROSS_ACCOUNT: dict[str, Any] = orjson.loads(
    (Path(__file__).parent / "data" / "rest" / "margin_account.json").read_bytes()
)


def isolated_asset(asset: str, free: str, borrowed: str) -> dict[str, Any]:
    return {
        "asset": asset,
        "borrowEnabled": True,
        "borrowed": borrowed,
        "free": free,
        "interest": "0.00000000",
        "locked": "0.00000000",
        "netAsset": free,
        "netAssetOfBtc": "0.00000000",
        "repayEnabled": True,
        "totalAsset": free,
    }


ISOLATED_ACCOUNT: dict[str, Any] = {
    "assets": [
        {
            "baseAsset": isolated_asset("BTC", "0.50000000", "0.10000000"),
            "quoteAsset": isolated_asset("USDT", "1000.00000000", "0.00000000"),
            "symbol": "BTCUSDT",
            "isolatedCreated": True,
            "enabled": True,
            "marginLevel": "3.50000000",
            "marginLevelStatus": "NORMAL",
            "marginRatio": "5.00000000",
            "indexPrice": "87000.00000000",
            "liquidatePrice": "60000.00000000",
            "liquidateRate": "1.00000000",
            "tradeEnabled": True,
        },
        {
            "baseAsset": isolated_asset("ETH", "2.00000000", "0.00000000"),
            "quoteAsset": isolated_asset("USDT", "0.00000000", "500.00000000"),
            "symbol": "ETHUSDT",
            "marginLevel": "1.20000000",
            "marginLevelStatus": "BRAND_NEW_STATUS",
        },
    ],
    "totalAssetOfBtc": "0.00000000",
    "totalLiabilityOfBtc": "0.00000000",
    "totalNetAssetOfBtc": "0.00000000",
}

REST_OPEN_ORDER: dict[str, Any] = {
    "clientOrderId": "qhcZw71gAkCCTv0t0k8LUK",
    "cummulativeQuoteQty": "0.00100000",
    "executedQty": "0.10000000",
    "icebergQty": "0.00000000",
    "isWorking": True,
    "orderId": 211842552,
    "origQty": "0.30000000",
    "price": "0.00475010",
    "side": "SELL",
    "status": "PARTIALLY_FILLED",
    "stopPrice": "0.00000000",
    "symbol": "BNBBTC",
    "isIsolated": False,
    "time": 1562040170089,
    "timeInForce": "GTC",
    "type": "LIMIT",
    "selfTradePreventionMode": "NONE",
    "updateTime": 1562040170095,
}


def position(u: int, **balances: tuple[str, str]) -> Event:
    return decode_event(
        {
            "e": "outboundAccountPosition",
            "E": u + 1,
            "u": u,
            "B": [{"a": a, "f": f, "l": lk} for a, (f, lk) in balances.items()],
        },
        "CROSS",
    )


def report(
    order_id: int,
    status: str,
    *,
    filled: str = "0.00000000",
    time: int = 1000,
    execution_id: int | None = None,
    account: str = "CROSS",
) -> Event:
    execution = {"NEW": "NEW", "PARTIALLY_FILLED": "TRADE", "FILLED": "TRADE"}.get(status, status)
    ev: dict[str, Any] = {
        "e": "executionReport",
        "E": time + 1,
        "s": "BTCUSDT",
        "c": f"client-{order_id}",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "1.00000000",
        "p": "87000.00000000",
        "P": "0.00000000",
        "F": "0.00000000",
        "g": -1,
        "C": "",
        "x": execution,
        "X": status,
        "r": "NONE",
        "i": order_id,
        "l": "0.00000000",
        "z": filled,
        "L": "0.00000000",
        "n": "0",
        "N": None,
        "T": time,
        "t": -1,
        "I": order_id * 100 + time if execution_id is None else execution_id,
        "w": True,
        "m": False,
        "M": False,
        "O": 900,
        "Z": "0.00000000",
        "Y": "0.00000000",
        "Q": "0.00000000",
        "V": "NONE",
    }
    return decode_event(ev, account)


def liability(
    time: int, kind: str, principal: str, interest: str = "0", asset: str = "BTC"
) -> Event:
    return decode_event(
        {
            "e": "USER_LIABILITY_CHANGE",
            "E": time,
            "a": asset,
            "t": kind,
            "p": principal,
            "i": interest,
        },
        "CROSS",
    )


def margin_call(time: int, level: str, status: str) -> Event:
    return decode_event(
        {"e": "MARGIN_LEVEL_STATUS_CHANGE", "E": time, "l": level, "s": status}, "CROSS"
    )


def state(mirror: AccountMirror, account: str = "CROSS") -> Any:
    return mirror.balances(account), mirror.open_orders(account), mirror.margin_level(account)


# ------------------------------------------------------------------------------ snapshots


@pytest.mark.parametrize("snapshot", [CROSS_ACCOUNT, decode(MarginAccount, CROSS_ACCOUNT)])
def test_cross_snapshot_from_dict_or_model(snapshot: Any) -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(snapshot, as_of=5000)
    assert mirror.accounts() == ("CROSS",)
    assert mirror.balance("CROSS", "BNB") == AssetBalance(
        asset="BNB",
        free=Decimal("2346.5"),
        locked=Decimal("1"),
        borrowed=Decimal("201.66666672"),
        interest=Decimal("0.001"),
    )
    assert set(mirror.balances("CROSS")) == {"BTC", "BNB"}
    # The cross REST account has no status: unknown until the risk stream says.
    assert mirror.margin_level("CROSS") == MarginLevel(Decimal("11.64405625"), None, 5000)


def test_isolated_snapshot_one_account_per_pair() -> None:
    mirror = AccountMirror()
    mirror.load_isolated_snapshot(decode(IsolatedMarginAccount, ISOLATED_ACCOUNT), as_of=5000)
    assert mirror.accounts() == ("BTCUSDT", "ETHUSDT")
    assert mirror.balance("BTCUSDT", "BTC") == AssetBalance(
        "BTC", Decimal("0.5"), Decimal("0"), Decimal("0.1"), Decimal("0")
    )
    assert mirror.balance("ETHUSDT", "USDT") == AssetBalance(
        "USDT", Decimal("0"), Decimal("0"), Decimal("500"), Decimal("0")
    )
    assert mirror.balance("BTCUSDT", "ETH") is None  # isolated accounts are separate
    level = mirror.margin_level("BTCUSDT")
    assert level == MarginLevel(Decimal("3.5"), MarginLevelStatus.NORMAL, 5000)
    other = mirror.margin_level("ETHUSDT")
    assert other is not None
    assert other.status == "BRAND_NEW_STATUS"


def test_isolated_snapshot_of_a_subset_keeps_other_pairs() -> None:
    mirror = AccountMirror()
    mirror.load_isolated_snapshot(ISOLATED_ACCOUNT, as_of=5000)
    mirror.load_isolated_snapshot({"assets": ISOLATED_ACCOUNT["assets"][1:]}, as_of=6000)
    assert mirror.balance("BTCUSDT", "BTC") is not None


def test_snapshot_without_as_of_supersedes_and_events_land_on_top() -> None:
    # UserDataStream reloads from its dispatcher: what was applied before is older than the
    # snapshot, what is applied after came in later.
    mirror = AccountMirror()
    mirror.apply(position(9000, BNB=("1.0", "0"), DOGE=("5", "0")))
    mirror.apply(margin_call(9000, "1.1", "MARGIN_CALL"))
    mirror.load_cross_snapshot(decode(MarginAccount, CROSS_ACCOUNT))
    bnb = mirror.balance("CROSS", "BNB")
    assert bnb is not None
    assert bnb.free == Decimal("2346.5")
    assert mirror.balance("CROSS", "DOGE") is None
    assert mirror.margin_level("CROSS") == MarginLevel(
        Decimal("11.64405625"), MarginLevelStatus.MARGIN_CALL, None
    )
    mirror.apply(position(100, BNB=("7.0", "0")))
    mirror.apply(liability(100, "BORROW", "1.0", asset="BNB"))
    mirror.apply(margin_call(100, "1.3", "NORMAL"))
    assert mirror.balance("CROSS", "BNB") == AssetBalance(
        "BNB", Decimal(7), Decimal(0), Decimal("202.66666672"), Decimal("0.001")
    )
    level = mirror.margin_level("CROSS")
    assert level is not None
    assert level.status is MarginLevelStatus.NORMAL


def test_queries_on_unknown_account() -> None:
    mirror = AccountMirror()
    assert mirror.balance("CROSS", "BTC") is None
    assert mirror.balances("CROSS") == {}
    assert mirror.open_orders("CROSS") == ()
    assert mirror.margin_level("CROSS") is None
    assert mirror.accounts() == ()


# ------------------------------------------------------------------------------ balances


def test_position_sets_absolute_balances_and_keeps_liabilities() -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    mirror.apply(position(6000, BNB=("2000.00000000", "0.50000000"), ETH=("3.0", "0")))
    assert mirror.balance("CROSS", "BNB") == AssetBalance(
        "BNB", Decimal("2000"), Decimal("0.5"), Decimal("201.66666672"), Decimal("0.001")
    )
    # An asset the snapshot did not list owes nothing.
    assert mirror.balance("CROSS", "ETH") == AssetBalance(
        "ETH", Decimal("3"), Decimal("0"), Decimal(0), Decimal(0)
    )


def test_position_replay_and_stale_position_change_nothing() -> None:
    mirror = AccountMirror()
    newer = position(7000, BTC=("1.0", "0"))
    mirror.apply(newer)
    before = state(mirror)
    mirror.apply(newer)  # replay
    mirror.apply(position(6500, BTC=("0.5", "0")))  # late, older
    assert state(mirror) == before
    assert mirror.balance("CROSS", "BTC") == AssetBalance(
        "BTC", Decimal("1"), Decimal("0"), None, None
    )


def test_balance_update_delta_is_not_added() -> None:
    # outboundAccountPosition follows every change with the absolute result; adding the delta
    # too would count it twice.
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    before = state(mirror)
    mirror.apply(
        decode_event(
            {"e": "balanceUpdate", "E": 6000, "a": "BTC", "d": "100.00000000", "T": 5999}, "CROSS"
        )
    )
    assert state(mirror) == before


def test_snapshot_keeps_what_the_stream_changed_after_as_of() -> None:
    mirror = AccountMirror()
    mirror.apply(position(4000, BTC=("9.0", "0"), DOGE=("5", "0")))  # older than the snapshot
    mirror.apply(position(6000, BNB=("1.0", "0")))  # newer than the snapshot
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    btc = mirror.balance("CROSS", "BTC")
    bnb = mirror.balance("CROSS", "BNB")
    assert btc is not None
    assert bnb is not None
    assert btc.free == Decimal("0.004995")  # snapshot wins over the older event
    assert bnb.free == Decimal("1")  # the newer event wins over the snapshot ...
    assert bnb.borrowed == Decimal("201.66666672")  # ... while its liability comes from REST
    assert mirror.balance("CROSS", "DOGE") is None  # gone from the account by the snapshot


# ------------------------------------------------------------------------------ liabilities, level


def test_liability_changes_are_deltas_applied_once() -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    changes = [
        liability(6000, "BORROW", "0.50000000"),
        liability(6100, "INTEREST", "0.00000000", "0.00100000"),
        liability(6200, "REPAY", "0.20000000", "0.00100000"),
    ]
    for change in changes:
        mirror.apply(change)
    expected = AssetBalance("BTC", Decimal("0.004995"), Decimal(0), Decimal("0.3"), Decimal(0))
    assert mirror.balance("CROSS", "BTC") == expected
    for change in changes:  # replayed after a reconnect
        mirror.apply(change)
    assert mirror.balance("CROSS", "BTC") == expected


def test_liability_changes_before_the_snapshot_are_in_it() -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    mirror.apply(liability(5000, "BORROW", "1.0", asset="BNB"))
    mirror.apply(liability(4000, "REPAY", "1.0", asset="BNB"))
    bnb = mirror.balance("CROSS", "BNB")
    assert bnb is not None
    assert (bnb.borrowed, bnb.interest) == (Decimal("201.66666672"), Decimal("0.001"))


def test_liability_change_of_unknown_type_is_left_to_the_next_reload() -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    mirror.apply(liability(6000, "FORCED_LIQUIDATION", "1.0", asset="BNB"))
    bnb = mirror.balance("CROSS", "BNB")
    assert bnb is not None
    assert bnb.borrowed == Decimal("201.66666672")


def test_liabilities_unknown_without_a_snapshot() -> None:
    mirror = AccountMirror()
    mirror.apply(position(6000, BTC=("1.0", "0")))
    mirror.apply(liability(6001, "BORROW", "0.5"))  # no base to add it to
    assert mirror.balance("CROSS", "BTC") == AssetBalance("BTC", Decimal(1), Decimal(0), None, None)


def test_liability_for_an_asset_the_snapshot_did_not_list() -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    mirror.apply(liability(6000, "BORROW", "2.5", asset="ETH"))
    assert mirror.balance("CROSS", "ETH") == AssetBalance(
        "ETH", Decimal(0), Decimal(0), Decimal("2.5"), Decimal(0)
    )
    assert list(mirror.balances("CROSS")) == ["BTC", "BNB", "ETH"]


def test_replay_memory_bounds_liability_dedupe() -> None:
    mirror = AccountMirror(replay_memory=1)
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    first = liability(6000, "BORROW", "1")
    mirror.apply(first)
    mirror.apply(liability(6001, "BORROW", "1"))
    mirror.apply(first)  # forgotten: counted again (the documented limit of the memory)
    btc = mirror.balance("CROSS", "BTC")
    assert btc is not None
    assert btc.borrowed == Decimal(3)


def test_margin_level_status_change() -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    mirror.apply(margin_call(6000, "1.1", "MARGIN_CALL"))
    mirror.apply(margin_call(5900, "3.0", "NORMAL"))  # late, older
    assert mirror.margin_level("CROSS") == MarginLevel(
        Decimal("1.1"), MarginLevelStatus.MARGIN_CALL, 6000
    )
    # A later cross snapshot updates the level and keeps the last known status.
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=7000)
    assert mirror.margin_level("CROSS") == MarginLevel(
        Decimal("11.64405625"), MarginLevelStatus.MARGIN_CALL, 7000
    )
    # An older snapshot does not override the event.
    mirror.apply(margin_call(8000, "1.05", "PRE_LIQUIDATION"))
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=7500)
    level = mirror.margin_level("CROSS")
    assert level is not None
    assert level.status is MarginLevelStatus.PRE_LIQUIDATION


# ------------------------------------------------------------------------------ orders


def test_order_lifecycle() -> None:
    mirror = AccountMirror()
    mirror.apply(report(1, "NEW", time=1000))
    assert mirror.open_orders("CROSS") == (
        OpenOrder(
            symbol="BTCUSDT",
            order_id=1,
            client_order_id="client-1",
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.GTC,
            price=Decimal("87000"),
            quantity=Decimal("1"),
            stop_price=Decimal("0"),
            executed_quantity=Decimal("0"),
            cumulative_quote_quantity=Decimal("0"),
            status=OrderStatus.NEW,
            order_list_id=-1,
            created=900,
            updated=1000,
        ),
    )
    mirror.apply(report(1, "PARTIALLY_FILLED", filled="0.40000000", time=1100))
    (order,) = mirror.open_orders("CROSS")
    assert (order.status, order.executed_quantity, order.updated) == (
        OrderStatus.PARTIALLY_FILLED,
        Decimal("0.4"),
        1100,
    )
    mirror.apply(report(1, "FILLED", filled="1.00000000", time=1200))
    assert mirror.open_orders("CROSS") == ()


@pytest.mark.parametrize(
    "status", ["FILLED", "CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH"]
)
def test_final_statuses_close_the_order(status: str) -> None:
    mirror = AccountMirror()
    mirror.apply(report(1, "NEW", time=1000))
    mirror.apply(report(1, status, time=1100))
    assert mirror.open_orders("CROSS") == ()


def test_unknown_status_keeps_the_order_open() -> None:
    mirror = AccountMirror()
    mirror.apply(report(1, "PENDING_AMEND", time=1000))
    (order,) = mirror.open_orders("CROSS")
    assert order.status == "PENDING_AMEND"


def test_replay_of_a_finished_order_does_not_resurrect_it() -> None:
    mirror = AccountMirror()
    events = [
        report(1, "NEW", time=1000),
        report(1, "PARTIALLY_FILLED", filled="0.40000000", time=1100),
        report(1, "FILLED", filled="1.00000000", time=1200),
        report(2, "NEW", time=1150),
    ]
    for event in events:
        mirror.apply(event)
    before = state(mirror)
    for event in events:  # the overlap of a make-before-break reconnect, one event at a time
        mirror.apply(event)
        assert state(mirror) == before
    assert [o.order_id for o in mirror.open_orders("CROSS")] == [2]


def test_late_report_does_not_roll_an_order_back() -> None:
    mirror = AccountMirror()
    mirror.apply(report(1, "PARTIALLY_FILLED", filled="0.40000000", time=1100))
    mirror.apply(report(1, "NEW", time=1000))
    (order,) = mirror.open_orders("CROSS")
    assert order.executed_quantity == Decimal("0.4")


def test_same_millisecond_reports_ordered_by_fill_then_finality() -> None:
    mirror = AccountMirror()
    # A market order: NEW and its fills share the transaction time; a cancel after a partial
    # fill in the same ms repeats the fill and may carry a smaller (ignorable) execution id.
    mirror.apply(report(1, "PARTIALLY_FILLED", filled="0.40000000", time=1000, execution_id=50))
    mirror.apply(report(1, "NEW", time=1000, execution_id=10))
    assert len(mirror.open_orders("CROSS")) == 1
    mirror.apply(report(1, "CANCELED", filled="0.40000000", time=1000, execution_id=7))
    assert mirror.open_orders("CROSS") == ()


def test_orders_are_per_account() -> None:
    mirror = AccountMirror()
    mirror.apply(report(1, "NEW", account="BTCUSDT"))
    assert mirror.open_orders("CROSS") == ()
    assert len(mirror.open_orders("BTCUSDT")) == 1


def test_closed_order_memory_is_bounded() -> None:
    mirror = AccountMirror(replay_memory=2)
    for order_id in (1, 2, 3):
        mirror.apply(report(order_id, "FILLED", filled="1.00000000", time=1000 + order_id))
    mirror.apply(report(3, "NEW", time=1000))
    assert mirror.open_orders("CROSS") == ()  # remembered: replay ignored
    mirror.apply(report(1, "NEW", time=1000))
    # Forgotten (the bound): a replay that old would reopen the order until the next resync.
    assert [o.order_id for o in mirror.open_orders("CROSS")] == [1]


def test_load_open_orders_from_rest() -> None:
    mirror = AccountMirror()
    mirror.load_open_orders("CROSS", [decode(Order, REST_OPEN_ORDER)], as_of=1562040170100)
    assert mirror.open_orders("CROSS") == (
        OpenOrder(
            symbol="BNBBTC",
            order_id=211842552,
            client_order_id="qhcZw71gAkCCTv0t0k8LUK",
            side=OrderSide.SELL,
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.GTC,
            price=Decimal("0.0047501"),
            quantity=Decimal("0.3"),
            stop_price=Decimal("0"),
            executed_quantity=Decimal("0.1"),
            cumulative_quote_quantity=Decimal("0.001"),
            status=OrderStatus.PARTIALLY_FILLED,
            order_list_id=-1,
            created=1562040170089,
            updated=1562040170095,
        ),
    )
    # The stream's fill of that order, newer than the snapshot, then applies on top.
    later = report(211842552, "FILLED", filled="0.30000000", time=1562040170200)
    mirror.apply(later)
    assert mirror.open_orders("CROSS") == ()


def test_load_open_orders_merges_with_the_stream() -> None:
    mirror = AccountMirror()
    mirror.apply(report(1, "NEW", time=1000))  # finished during the gap: not in REST any more
    mirror.apply(report(2, "NEW", time=1000))  # still open: in REST
    mirror.apply(report(3, "NEW", time=6000))  # placed after the snapshot was requested
    mirror.apply(report(4, "FILLED", filled="1.00000000", time=1000))  # REST lags behind it
    rest = [
        {**REST_OPEN_ORDER, "orderId": 2, "updateTime": 4000},
        {**REST_OPEN_ORDER, "orderId": 4, "updateTime": 900},
    ]
    mirror.load_open_orders("CROSS", rest, as_of=5000)
    assert [o.order_id for o in mirror.open_orders("CROSS")] == [2, 3]
    (two,) = (o for o in mirror.open_orders("CROSS") if o.order_id == 2)
    assert two.symbol == "BNBBTC"  # the REST version replaced the older stream version
    mirror.apply(report(1, "NEW", time=1000))  # a stale replay after the resync
    assert [o.order_id for o in mirror.open_orders("CROSS")] == [2, 3]


def test_load_open_orders_without_as_of_replaces_the_set() -> None:
    mirror = AccountMirror()
    mirror.apply(report(1, "NEW", time=9000))
    mirror.apply(report(5, "NEW", time=9000, account="BNBBTC"))
    mirror.load_open_orders("BNBBTC", [REST_OPEN_ORDER])
    assert [o.order_id for o in mirror.open_orders("BNBBTC")] == [211842552]
    assert [o.order_id for o in mirror.open_orders("CROSS")] == [1]  # other account untouched
    mirror.apply(report(5, "NEW", time=9000, account="BNBBTC"))  # replay: it finished meanwhile
    assert [o.order_id for o in mirror.open_orders("BNBBTC")] == [211842552]


def test_stateless_events_change_nothing() -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=5000)
    before = (mirror.accounts(), state(mirror))
    stateless: list[Event] = [
        StreamGap("CROSS", 1.0, 2.0),
        Resynced("CROSS"),
        StreamGap("ETHUSDT", 1.0, 2.0),
        decode_event({"e": "eventStreamTerminated", "E": 1}, "CROSS"),
        decode_event({"e": "somethingNew", "E": 1}, "CROSS"),
        decode_event({"e": "serverShutdown", "E": 1}, "CROSS"),
    ]
    for event in stateless:
        mirror.apply(event)
    assert (mirror.accounts(), state(mirror)) == before


# ------------------------------------------------------------------------------ property


def order_stream(draw: st.DrawFn) -> list[Event]:
    """A plausible event history: each order moves forward in time, positions are absolute."""
    events: list[Event] = []
    for order_id in range(1, draw(st.integers(1, 4)) + 1):
        time = draw(st.integers(1000, 2000))
        events.append(report(order_id, "NEW", time=time))
        filled = 0
        for _ in range(draw(st.integers(0, 3))):
            time += draw(st.integers(0, 5))
            filled += draw(st.integers(1, 3))
            events.append(report(order_id, "PARTIALLY_FILLED", filled=f"{filled}.0", time=time))
        if draw(st.booleans()):
            events.append(report(order_id, "CANCELED", filled=f"{filled}.0", time=time + 1))
    for u in sorted(draw(st.lists(st.integers(1000, 3000), max_size=4))):
        events.append(position(u, BTC=(str(u), "0")))
    for time in sorted(draw(st.sets(st.integers(1000, 3000), max_size=4))):
        kind = draw(st.sampled_from(["BORROW", "REPAY", "INTEREST"]))
        events.append(liability(time, kind, str(draw(st.integers(0, 9))), "0.1"))
    return events


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_replaying_any_suffix_changes_nothing(data: st.DataObject) -> None:
    events = data.draw(st.composite(order_stream)())
    mirror = AccountMirror()
    mirror.load_cross_snapshot(CROSS_ACCOUNT, as_of=0)
    for event in events:
        mirror.apply(event)
    expected = state(mirror)
    start = data.draw(st.integers(0, len(events)))
    for event in events[start:]:
        mirror.apply(event)
        assert state(mirror) == expected
