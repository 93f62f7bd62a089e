"""Tests of the fake venue's pure ledger (no event loop, no clock: ``now`` is passed in)."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from binance_margin_async.events import UnknownEvent, decode_event
from binance_margin_async.testing.ledger import (
    DEFAULT_CROSS_RISK,
    InvariantViolation,
    Ledger,
    LedgerError,
    LedgerEvent,
    RiskConfig,
    SymbolSpec,
)

HOUR = 3_600_000
D = Decimal

# Every field of the executionReport example in PROTOCOL.md §4.3 except the conditional ``v``
# (prevented match id) and ``W`` (working time, only once the order works).
REPORT_FIELDS = frozenset(
    ("e", "E", "s", "c", "S", "o", "f", "q", "p", "P", "F", "g", "C", "x", "X", "r", "i", "l",
     "z", "L", "n", "N", "T", "t", "I", "w", "m", "M", "O", "Z", "Y", "Q", "V")
)  # fmt: skip
LIST_STATUS_FIELDS = frozenset(("e", "E", "s", "g", "c", "l", "L", "r", "C", "T", "O"))


def make(**kwargs: Any) -> Ledger:
    return Ledger(seed=7, **kwargs)


def funded(usdt: str = "10000", btc: str = "0", **kwargs: Any) -> Ledger:
    """A ledger with account "a" whose cross wallet holds ``usdt`` and ``btc``."""
    ledger = make(**kwargs)
    cross = {"USDT": usdt}
    if D(btc):
        cross["BTC"] = btc
    ledger.add_account("a", cross=cross, spot={"USDT": "5000"})
    return ledger


def payloads(
    events: list[LedgerEvent], kind: str | None = None, channel: str | None = None
) -> list[dict[str, Any]]:
    return [
        e.payload
        for e in events
        if (kind is None or e.payload["e"] == kind) and (channel is None or e.channel == channel)
    ]


def reports(events: list[LedgerEvent]) -> list[dict[str, Any]]:
    return payloads(events, "executionReport")


def xs(events: list[LedgerEvent]) -> list[tuple[int, str, str]]:
    """(orderId, x, X) of every executionReport, in order."""
    return [(p["i"], p["x"], p["X"]) for p in reports(events)]


def bal(ledger: Ledger, asset: str, wallet: str = "CROSS") -> tuple[Decimal, ...]:
    b = ledger.balance("a", asset, wallet=wallet)
    return (b.free, b.locked, b.borrowed, b.interest)


# -- configuration ------------------------------------------------------------------------------


def test_risk_config_rejects_inconsistent_thresholds() -> None:
    with pytest.raises(ValueError, match="max_leverage"):
        RiskConfig(max_leverage=D(1))
    with pytest.raises(ValueError, match="force_liquidation"):
        RiskConfig(max_leverage=D(3), pre_liquidation=D("1.05"))
    with pytest.raises(ValueError, match="initial level"):
        RiskConfig(max_leverage=D(10))  # initial 1.11 < margin call 1.5
    assert DEFAULT_CROSS_RISK.initial_level == D("1.5")
    assert [DEFAULT_CROSS_RISK.status(D(x)) for x in ("2", "1.9", "1.4", "1.2", "1.09")] == [
        "EXCESSIVE",
        "NORMAL",
        "MARGIN_CALL",
        "PRE_LIQUIDATION",
        "FORCE_LIQUIDATION",
    ]


def test_ledger_configuration_errors() -> None:
    with pytest.raises(ValueError, match="cannot be valued"):
        Ledger(symbols=[SymbolSpec("BTCUSDT", "BTC", "USDT", D(1)),
                        SymbolSpec("XYZABC", "XYZ", "ABC", D(1))])  # fmt: skip
    with pytest.raises(ValueError, match="duplicate"):
        Ledger(symbols=[SymbolSpec("BTCUSDT", "BTC", "USDT", D(1))] * 2)
    with pytest.raises(ValueError, match="hourly_interest_rate"):
        Ledger(hourly_interest_rate="abc")
    ledger = make()
    ledger.add_account("a")
    with pytest.raises(ValueError, match="already exists"):
        ledger.add_account("a")
    with pytest.raises(ValueError, match="unknown symbol"):
        ledger.add_account("b", isolated={"NOPE": {}})
    with pytest.raises(ValueError, match="not an asset"):
        ledger.add_account("c", isolated={"BTCUSDT": {"ETH": "1"}})
    assert ledger.account_ids() == ["a"]


# -- rejections: code, and no state change, no event ----------------------------------------------


def _setup_rejections() -> Ledger:
    ledger = funded(usdt="10000", btc="0.1", inventory={"ETH": "1"})
    ledger.new_order("a", "BTCUSDT", "SELL", "LIMIT", 1, quantity="0.01", price="70000",
                     time_in_force="GTC", new_client_order_id="open-1")  # fmt: skip
    ledger.new_order("a", "BTCUSDT", "BUY", "MARKET", 1, quantity="0.001",
                     new_client_order_id="done-1")  # fmt: skip
    ledger.borrow("a", "USDT", "100", 1)
    ledger.drain_events()
    return ledger


Call = Callable[[Ledger], object]

REJECTIONS: list[tuple[str, Call, int]] = [
    ("unknown account", lambda x: x.borrow("zz", "USDT", "1", 2), -3003),
    ("unknown symbol", lambda x: x.new_order("a", "XXXUSDT", "BUY", "MARKET", 2, quantity="1"),
     -1121),
    ("bad side", lambda x: x.new_order("a", "BTCUSDT", "HOLD", "MARKET", 2, quantity="1"), -1117),
    ("bad type", lambda x: x.new_order("a", "BTCUSDT", "BUY", "ICEBERG", 2, quantity="1"), -1116),
    ("bad tif", lambda x: x.new_order("a", "BTCUSDT", "BUY", "LIMIT", 2, quantity="0.001",
                                      price="50000", time_in_force="GTX"), -1115),
    ("limit without price", lambda x: x.new_order("a", "BTCUSDT", "BUY", "LIMIT", 2,
                                                  quantity="0.001", time_in_force="GTC"), -1102),
    ("market without qty", lambda x: x.new_order("a", "BTCUSDT", "BUY", "MARKET", 2), -1102),
    ("market with price", lambda x: x.new_order("a", "BTCUSDT", "BUY", "MARKET", 2,
                                                quantity="0.001", price="1"), -1106),
    ("qty and quote qty", lambda x: x.new_order("a", "BTCUSDT", "BUY", "MARKET", 2,
                                                quantity="0.001", quote_order_qty="10"), -1128),
    ("malformed qty", lambda x: x.new_order("a", "BTCUSDT", "BUY", "MARKET", 2, quantity="-1"),
     -1100),
    ("too precise", lambda x: x.borrow("a", "USDT", "1.000000001", 2), -1111),
    ("lot size", lambda x: x.new_order("a", "BTCUSDT", "BUY", "MARKET", 2, quantity="0.000001"),
     -1013),
    ("price filter", lambda x: x.new_order("a", "BTCUSDT", "BUY", "LIMIT", 2, quantity="0.001",
                                           price="50000.001", time_in_force="GTC"), -1013),
    ("notional", lambda x: x.new_order("a", "BTCUSDT", "BUY", "LIMIT", 2, quantity="0.00001",
                                       price="50000", time_in_force="GTC"), -1013),
    ("insufficient", lambda x: x.new_order("a", "BTCUSDT", "BUY", "MARKET", 2, quantity="1"),
     -2010),
    ("duplicate client id", lambda x: x.new_order("a", "BTCUSDT", "SELL", "LIMIT", 2,
                                                  quantity="0.01", price="71000",
                                                  time_in_force="GTC",
                                                  new_client_order_id="open-1"), -2010),
    ("limit maker would match", lambda x: x.new_order("a", "BTCUSDT", "BUY", "LIMIT_MAKER", 2,
                                                      quantity="0.001", price="60000"), -2010),
    ("stop would trigger", lambda x: x.new_order("a", "BTCUSDT", "SELL", "STOP_LOSS", 2,
                                                 quantity="0.001", stop_price="61000"), -2010),
    ("cancel unknown", lambda x: x.cancel_order("a", "BTCUSDT", 2, order_id=999_999), -2011),
    ("cancel filled", lambda x: x.cancel_order("a", "BTCUSDT", 2, orig_client_order_id="done-1"),
     -2011),
    ("cancel nothing open", lambda x: x.cancel_open_orders("a", "ETHUSDT", 2), -2011),
    ("cancel unknown list", lambda x: x.cancel_order_list("a", "BTCUSDT", 2, order_list_id=5),
     -2011),
    ("query unknown", lambda x: x.get_order("a", "BTCUSDT", order_id=999_999), -2013),
    ("query unknown list", lambda x: x.get_order_list("a", order_list_id=77), -2013),
    ("isolated missing", lambda x: x.new_order("a", "BTCUSDT", "BUY", "MARKET", 2,
                                               is_isolated="TRUE", quantity="0.001"), -3003),
    ("borrow above max", lambda x: x.borrow("a", "BTC", "1", 2), -3006),
    ("margin buy above max", lambda x: x.new_order("a", "BTCUSDT", "BUY", "MARKET", 2,
                                                   quantity="1",
                                                   side_effect_type="MARGIN_BUY"), -3006),
    ("inventory", lambda x: x.borrow("a", "ETH", "1.5", 2), -3045),
    ("repay above owed", lambda x: x.repay("a", "USDT", "100.00000001", 2), -3015),
    ("repay nothing owed", lambda x: x.repay("a", "BTC", "0.001", 2), -3015),
    ("transfer above free", lambda x: x.transfer("a", "MARGIN_MAIN", "BTC", "0.2", 2), -3020),
    ("spot short", lambda x: x.transfer("a", "MAIN_MARGIN", "USDT", "5000.01", 2), -3041),
    ("not a margin asset", lambda x: x.transfer("a", "MARGIN_ISOLATEDMARGIN", "ETH", "1", 2,
                                                to_symbol="BTCUSDT"), -3027),
    ("not a margin pair", lambda x: x.transfer("a", "MARGIN_ISOLATEDMARGIN", "USDT", "1", 2,
                                               to_symbol="DOGEUSDT"), -3028),
    ("transfer type", lambda x: x.transfer("a", "MAIN_FUNDING", "USDT", "1", 2), -1100),
    ("missing toSymbol", lambda x: x.transfer("a", "MARGIN_ISOLATEDMARGIN", "USDT", "1", 2),
     -1102),
    ("zero amount", lambda x: x.borrow("a", "USDT", "0", 2), -1102),
    ("oco bad prices", lambda x: x.new_oco("a", "BTCUSDT", "SELL", "0.01", "59000", "58000", 2),
     -1013),
    ("otoco bad leg types", lambda x: x.new_otoco(
        "a", "BTCUSDT", 2, working_type="LIMIT", working_side="BUY", working_price="59000",
        working_quantity="0.01", working_time_in_force="GTC", pending_side="SELL",
        pending_quantity="0.01", pending_above_type="STOP_LOSS", pending_above_stop_price="70000",
    ), -1116),
]  # fmt: skip


@pytest.mark.parametrize(("call", "code"), [(c, k) for _, c, k in REJECTIONS],
                         ids=[name for name, _, _ in REJECTIONS])  # fmt: skip
def test_rejection_codes_leave_no_trace(call: Call, code: int) -> None:
    ledger = _setup_rejections()
    before = (ledger.cross_account("a"), ledger.open_orders("a"), ledger.isolated_account("a"))
    with pytest.raises(LedgerError) as info:
        call(ledger)
    assert info.value.code == code, info.value.msg
    assert info.value.status == 400
    assert str(info.value).startswith(f"HTTP 400, code {code}: ")
    assert info.value.body() == {"code": code, "msg": info.value.msg}
    assert ledger.drain_events() == []
    assert (ledger.cross_account("a"), ledger.open_orders("a"),
            ledger.isolated_account("a")) == before  # fmt: skip
    ledger.check_invariants()


def test_rejection_messages_are_binances() -> None:
    ledger = _setup_rejections()
    cases: list[tuple[Call, str]] = [
        (REJECTIONS[14][1], "Account has insufficient balance for requested action."),
        (REJECTIONS[15][1], "Duplicate order sent."),
        (REJECTIONS[16][1], "Order would immediately match and take."),
        (REJECTIONS[18][1], "Unknown order sent."),
        (REJECTIONS[25][1], "Your borrow amount has exceed maximum borrow amount."),
        (REJECTIONS[27][1], "The system does not have enough asset now."),
        (REJECTIONS[28][1], "Repay amount exceeds borrow amount."),
        (REJECTIONS[30][1], "Transfer out amount exceeds max amount."),
    ]
    for call, msg in cases:
        with pytest.raises(LedgerError) as info:
            call(ledger)
        assert info.value.msg == msg


def test_repay_needs_free_balance() -> None:
    ledger = funded(usdt="1000")
    ledger.borrow("a", "BTC", "0.01", 0)
    ledger.transfer("a", "MARGIN_MAIN", "BTC", "0.005", 0)
    with pytest.raises(LedgerError) as info:
        ledger.repay("a", "BTC", "0.006", 1)
    assert (info.value.code, info.value.msg) == (-3041, "Balance is not enough.")


# -- borrow, repay, interest ----------------------------------------------------------------------


def test_borrow_and_repay_interest_first() -> None:
    ledger = funded(usdt="10000", hourly_interest_rate="0.0001")
    assert ledger.borrow("a", "USDT", "1000", 0) == {"tranId": 100_000_001}
    ledger.accrue_interest(HOUR - 1)  # no whole hour yet
    assert bal(ledger, "USDT")[2:] == (D(1000), D(0))
    ledger.accrue_interest(2 * HOUR + 5)
    ledger.accrue_interest(2 * HOUR + 10)  # same hour: not charged twice
    assert bal(ledger, "USDT") == (D(11000), D(0), D(1000), D("0.2"))
    events = ledger.drain_events()
    assert payloads(events, "USER_LIABILITY_CHANGE") == [
        {"e": "USER_LIABILITY_CHANGE", "E": 0, "a": "USDT", "t": "BORROW",
         "p": "1000.00000000", "i": "0.00000000"},
        {"e": "USER_LIABILITY_CHANGE", "E": 2 * HOUR + 5, "a": "USDT", "t": "INTEREST",
         "p": "0.00000000", "i": "0.20000000"},
    ]  # fmt: skip
    ledger.repay("a", "USDT", "0.15", 3 * HOUR)  # interest only
    assert bal(ledger, "USDT")[2:] == (D(1000), D("0.05"))
    ledger.repay("a", "USDT", "500", 3 * HOUR)  # rest of the interest, then principal
    assert bal(ledger, "USDT") == (D("10499.85"), D(0), D("500.05"), D(0))
    events = ledger.drain_events()
    assert [(p["p"], p["i"]) for p in payloads(events, "USER_LIABILITY_CHANGE")] == [
        ("0.00000000", "0.15000000"),
        ("499.95000000", "0.05000000"),
    ]
    assert payloads(events, "outboundAccountPosition")[-1]["B"] == [
        {"a": "USDT", "f": "10499.85000000", "l": "0.00000000"}
    ]
    history = ledger.borrow_repay_history("a", "REPAY")
    assert history["total"] == 2
    assert history["rows"][0] == {
        "type": "MANUAL", "amount": "500.00000000", "asset": "USDT", "interest": "0.05000000",
        "principal": "499.95000000", "status": "CONFIRMED", "timestamp": 3 * HOUR,
        "txId": 100_000_004,
    }  # fmt: skip
    assert ledger.borrow_repay_history("a", "BORROW")["rows"][0]["principal"] == "1000.00000000"
    interest = ledger.interest_history("a")["rows"]
    assert interest == [{
        "txId": 100_000_002, "interestAccuredTime": 2 * HOUR + 5, "asset": "USDT",
        "rawAsset": "USDT", "principal": "1000.00000000", "interest": "0.20000000",
        "interestRate": "0.00010000", "type": "PERIODIC",
    }]  # fmt: skip
    ledger.check_invariants()


def test_max_borrowable_keeps_initial_level() -> None:
    ledger = funded(usdt="10000")
    # 3x cross: borrow up to (3 - 1) x equity.
    assert ledger.max_borrowable("a", "USDT") == {
        "amount": "20000.00000000",
        "borrowLimit": "20000.00000000",
    }
    assert ledger.max_borrowable("a", "BTC")["amount"] == "0.33333333"
    with pytest.raises(LedgerError) as info:
        ledger.borrow("a", "USDT", "20000.00000001", 0)
    assert info.value.code == -3006
    ledger.borrow("a", "USDT", "20000", 0)
    assert ledger.margin_level("a") == D("1.5")
    assert ledger.margin_level_status("a") == "NORMAL"
    assert ledger.max_borrowable("a", "BTC")["amount"] == "0.00000000"
    assert ledger.max_transferable("a", "USDT") == {"amount": "0.00000000"}
    ledger.check_invariants()


def test_inventory_caps_max_borrowable_and_returns_on_repay() -> None:
    ledger = funded(usdt="10000", inventory={"USDT": "500"})
    assert ledger.max_borrowable("a", "USDT") == {
        "amount": "500.00000000",
        "borrowLimit": "20000.00000000",
    }
    ledger.borrow("a", "USDT", "500", 0)
    with pytest.raises(LedgerError) as info:
        ledger.borrow("a", "USDT", "0.1", 0)
    assert info.value.code == -3045
    ledger.repay("a", "USDT", "200", 1)
    ledger.borrow("a", "USDT", "200", 2)
    ledger.check_invariants()


def test_isolated_borrow_uses_isolated_leverage_and_no_risk_events() -> None:
    ledger = funded()
    ledger.transfer("a", "MARGIN_ISOLATEDMARGIN", "USDT", "1000", 0, to_symbol="BTCUSDT")
    # 5x isolated: (5 - 1) x 1000 USDT.
    assert ledger.max_borrowable("a", "USDT", isolated_symbol="BTCUSDT")["amount"] == (
        "4000.00000000"
    )
    ledger.drain_events()
    ledger.borrow("a", "BTC", "0.05", 1, symbol="BTCUSDT")
    events = ledger.drain_events()
    assert payloads(events, channel="risk") == []
    assert [(e.scope, e.payload["e"]) for e in events] == [("BTCUSDT", "outboundAccountPosition")]
    with pytest.raises(LedgerError) as info:
        ledger.borrow("a", "ETH", "1", 1, symbol="BTCUSDT")
    assert info.value.code == -3027
    # (1000 + 0.05 x 60000) / (0.05 x 60000) = 1.33: NORMAL with the isolated thresholds.
    assert ledger.margin_level_status("a", symbol="BTCUSDT") == "NORMAL"
    ledger.check_invariants()


# -- transfers ----------------------------------------------------------------------------------


def test_transfers_between_all_wallets() -> None:
    ledger = make()
    ledger.add_account("a", spot={"USDT": "1000", "BTC": "1"})
    t1 = ledger.transfer("a", "MAIN_MARGIN", "USDT", "600", 10)["tranId"]
    t2 = ledger.transfer("a", "MARGIN_ISOLATEDMARGIN", "USDT", "200", 11, to_symbol="BTCUSDT")
    t3 = ledger.transfer("a", "ISOLATED_MARGIN_ISOLATED_MARGIN", "USDT", "50", 12,
                         from_symbol="BTCUSDT", to_symbol="ETHUSDT")  # fmt: skip
    t4 = ledger.transfer("a", "ISOLATEDMARGIN_MARGIN", "USDT", "20", 13, from_symbol="ETHUSDT")
    t5 = ledger.transfer("a", "MAIN_ISOLATEDMARGIN", "BTC", "0.5", 14, to_symbol="BTCUSDT")
    t6 = ledger.transfer("a", "ISOLATEDMARGIN_MAIN", "BTC", "0.1", 15, from_symbol="BTCUSDT")
    t7 = ledger.transfer("a", "MARGIN_MAIN", "USDT", "100", 16)
    assert [t1, t2["tranId"], t3["tranId"], t4["tranId"], t5["tranId"], t6["tranId"],
            t7["tranId"]] == list(range(100_000_001, 100_000_008))  # fmt: skip
    assert ledger.isolated_symbols("a") == ["BTCUSDT", "ETHUSDT"]
    assert bal(ledger, "USDT", "SPOT")[0] == D(500)
    assert bal(ledger, "USDT")[0] == D(320)
    assert bal(ledger, "USDT", "BTCUSDT")[0] == D(150)
    assert bal(ledger, "USDT", "ETHUSDT")[0] == D(30)
    assert bal(ledger, "BTC", "BTCUSDT")[0] == D("0.4")
    events = ledger.drain_events()
    updates = [(e.scope, e.payload["a"], e.payload["d"]) for e in events
               if e.payload["e"] == "balanceUpdate"]  # fmt: skip
    assert updates == [
        ("CROSS", "USDT", "600.00000000"),
        ("CROSS", "USDT", "-200.00000000"),
        ("BTCUSDT", "USDT", "200.00000000"),
        ("BTCUSDT", "USDT", "-50.00000000"),
        ("ETHUSDT", "USDT", "50.00000000"),
        ("ETHUSDT", "USDT", "-20.00000000"),
        ("CROSS", "USDT", "20.00000000"),
        ("BTCUSDT", "BTC", "0.50000000"),
        ("BTCUSDT", "BTC", "-0.10000000"),
        ("CROSS", "USDT", "-100.00000000"),
    ]
    # Each transfer ends with the position of every margin wallet it touched.
    first = [e for e in events if e.payload["E"] == 11]
    assert [(e.scope, e.payload["e"]) for e in first] == [
        ("CROSS", "balanceUpdate"),
        ("BTCUSDT", "balanceUpdate"),
        ("CROSS", "outboundAccountPosition"),
        ("BTCUSDT", "outboundAccountPosition"),
    ]
    assert first[3].payload == {
        "e": "outboundAccountPosition",
        "E": 11,
        "u": 11,
        "B": [{"a": "USDT", "f": "200.00000000", "l": "0.00000000"}],
    }
    history = ledger.transfer_history("a")
    assert [(r["type"], r["amount"]) for r in history["rows"]] == [
        ("ROLL_OUT", "100.00000000"),
        ("ROLL_IN", "20.00000000"),
        ("ROLL_OUT", "200.00000000"),
        ("ROLL_IN", "600.00000000"),
    ]
    assert history["rows"][1] == {
        "amount": "20.00000000", "asset": "USDT", "status": "CONFIRMED", "timestamp": 13,
        "txId": t4["tranId"], "type": "ROLL_IN", "transFrom": "ISOLATED_MARGIN",
        "transTo": "CROSS_MARGIN", "fromSymbol": "ETHUSDT",
    }  # fmt: skip
    iso = ledger.transfer_history("a", isolated_symbol="BTCUSDT", type="ROLL_IN", size=1)
    assert iso["total"] == 2
    assert iso["rows"][0]["transFrom"] == "SPOT"
    ledger.check_invariants()


@pytest.mark.parametrize(
    ("kind", "source", "target"),
    [
        ("MAIN_MARGIN", "SPOT", "CROSS"),
        ("MARGIN_MAIN", "CROSS", "SPOT"),
        ("MAIN_ISOLATED_MARGIN", "SPOT", "BTCUSDT"),
        ("ISOLATED_MARGIN_MAIN", "BTCUSDT", "SPOT"),
        ("MARGIN_ISOLATED_MARGIN", "CROSS", "BTCUSDT"),
        ("ISOLATED_MARGIN_MARGIN", "BTCUSDT", "CROSS"),
        ("ISOLATED_MARGIN_ISOLATED_MARGIN", "BTCUSDT", "ETHUSDT"),
        ("ISOLATEDMARGIN_ISOLATEDMARGIN", "BTCUSDT", "ETHUSDT"),
    ],
)
def test_transfer_type_spellings(kind: str, source: str, target: str) -> None:
    ledger = make()
    ledger.add_account("a", spot={"USDT": "100"}, cross={"USDT": "100"},
                       isolated={"BTCUSDT": {"USDT": "100"}})  # fmt: skip
    kw: dict[str, str] = {}
    if source not in ("SPOT", "CROSS"):
        kw["from_symbol"] = source
    if target not in ("SPOT", "CROSS"):
        kw["to_symbol"] = target
    ledger.transfer("a", kind, "USDT", "40", 1, **kw)
    assert bal(ledger, "USDT", source)[0] == D(60)
    assert bal(ledger, "USDT", target)[0] == D(140) if target != "ETHUSDT" else D(40)
    ledger.check_invariants()


def test_deposit_and_read_helpers() -> None:
    ledger = make()
    ledger.add_account("a")
    assert ledger.has_account("a") and not ledger.has_account("b")
    ledger.deposit("a", "BTC", "0.5", 3, wallet="CROSS")
    ledger.deposit("a", "USDT", "10", 3)
    ledger.deposit("a", "USDT", "20", 4, wallet="BNBUSDT")
    assert ledger.isolated_symbols("a") == ["BNBUSDT"]
    events = ledger.drain_events()
    assert [(e.scope, e.payload["e"], e.payload.get("d")) for e in events] == [
        ("CROSS", "balanceUpdate", "0.50000000"),
        ("CROSS", "outboundAccountPosition", None),
        ("BNBUSDT", "balanceUpdate", "20.00000000"),
        ("BNBUSDT", "outboundAccountPosition", None),
    ]
    assert ledger.balance("a", "USDT", wallet="SPOT").free == D(10)
    assert ledger.balance("a", "USDT", wallet="ETHUSDT").free == D(0)
    assert ledger.balance("a", "BTC").net_asset == D("0.5")
    with pytest.raises(LedgerError) as info:
        ledger.deposit("a", "BTC", "1", 5, wallet="BNBUSDT")
    assert info.value.code == -3027
    assert ledger.price("ETHBTC") == D("0.05")
    ledger.set_price("ETHBTC", "0.051", 6)
    assert [(s.symbol, s.price) for s in ledger.symbols()][-1] == ("ETHBTC", D("0.051"))
    assert ledger.create_isolated_account("a", "ETHBTC", 7) == {"success": True,
                                                                "symbol": "ETHBTC"}  # fmt: skip
    assert ledger.isolated_symbols("a") == ["BNBUSDT", "ETHBTC"]
    with pytest.raises(LedgerError) as info:
        ledger.create_isolated_account("a", "DOGEUSDT", 7)
    assert info.value.code == -3028
    ledger.check_invariants()


def test_isolated_orders_report_in_their_own_scope() -> None:
    ledger = make()
    ledger.add_account("a", isolated={"ETHUSDT": {"USDT": "1000"}})
    resp = ledger.new_order("a", "ETHUSDT", "BUY", "MARKET", 1, is_isolated="TRUE",
                            quantity="0.1")  # fmt: skip
    assert resp["isIsolated"] is True
    assert {e.scope for e in ledger.drain_events()} == {"ETHUSDT"}
    assert bal(ledger, "ETH", "ETHUSDT")[0] == D("0.0999")
    assert ledger.open_orders("a", "ETHUSDT", is_isolated=True) == []
    assert [t["isIsolated"] for t in ledger.my_trades("a", "ETHUSDT", is_isolated=True)] == [True]
    assert ledger.my_trades("a", "ETHUSDT") == []  # the cross account has no ETHUSDT trades
    ledger.check_invariants()


def test_max_transferable_keeps_margin_level() -> None:
    ledger = funded(usdt="1000")
    ledger.borrow("a", "USDT", "1000", 0)
    # (2000 - x) / 1000 >= 1.5  =>  x <= 500
    assert ledger.max_transferable("a", "USDT") == {"amount": "500.00000000"}
    with pytest.raises(LedgerError) as info:
        ledger.transfer("a", "MARGIN_MAIN", "USDT", "500.01", 1)
    assert info.value.code == -3020
    ledger.transfer("a", "MARGIN_MAIN", "USDT", "500", 1)
    assert ledger.margin_level("a") == D("1.5")
    ledger.check_invariants()


# -- orders -------------------------------------------------------------------------------------


def test_market_orders_by_quantity_and_quote_quantity() -> None:
    ledger = funded(usdt="10000")
    full = ledger.new_order("a", "BTCUSDT", "BUY", "MARKET", 5, quantity="0.01",
                            new_client_order_id="m1")  # fmt: skip
    assert full == {
        "symbol": "BTCUSDT", "orderId": 1000, "clientOrderId": "m1", "transactTime": 5,
        "price": "0.00000000", "origQty": "0.01000000", "executedQty": "0.01000000",
        "cummulativeQuoteQty": "600.00000000", "status": "FILLED", "timeInForce": "GTC",
        "type": "MARKET", "side": "BUY", "isIsolated": False, "selfTradePreventionMode": "NONE",
        "fills": [{"price": "60000.00000000", "qty": "0.01000000", "commission": "0.00001000",
                   "commissionAsset": "BTC", "tradeId": 1}],
    }  # fmt: skip
    assert bal(ledger, "BTC")[0] == D("0.00999")
    assert bal(ledger, "USDT")[0] == D(9400)
    # 100 USDT / 60000 = 0.0016666.. -> 0.00166 (step 0.00001)
    result = ledger.new_order("a", "BTCUSDT", "SELL", "MARKET", 6, quote_order_qty="100",
                              new_order_resp_type="RESULT")  # fmt: skip
    assert "fills" not in result
    assert (result["origQty"], result["cummulativeQuoteQty"]) == ("0.00166000", "99.60000000")
    assert bal(ledger, "USDT")[0] == D(9400) + D("99.6") - D("0.0996")
    ack = ledger.new_order("a", "BTCUSDT", "BUY", "MARKET", 7, quantity="0.001",
                           new_order_resp_type="ACK")  # fmt: skip
    assert ack == {"symbol": "BTCUSDT", "orderId": 1002, "clientOrderId": ack["clientOrderId"],
                   "isIsolated": False, "transactTime": 7}  # fmt: skip
    events = ledger.drain_events()
    assert xs(events) == [(1000, "NEW", "NEW"), (1000, "TRADE", "FILLED"),
                          (1001, "NEW", "NEW"), (1001, "TRADE", "FILLED"),
                          (1002, "NEW", "NEW"), (1002, "TRADE", "FILLED")]  # fmt: skip
    trade = reports(events)[1]
    assert (trade["l"], trade["L"], trade["n"], trade["N"], trade["m"], trade["t"]) == (
        "0.01000000",
        "60000.00000000",
        "0.00001000",
        "BTC",
        False,
        1,
    )
    assert reports(events)[3]["Q"] == "100.00000000"
    ledger.check_invariants()


def test_limit_rests_locks_and_fills_as_maker_on_set_price() -> None:
    ledger = funded(usdt="10000")
    resp = ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 1, quantity="0.1", price="55000",
                            time_in_force="GTC")  # fmt: skip
    assert (resp["status"], resp["fills"]) == ("NEW", [])
    assert bal(ledger, "USDT")[:2] == (D(4500), D(5500))
    events = ledger.drain_events()
    assert payloads(events, "outboundAccountPosition") == [
        {"e": "outboundAccountPosition", "E": 1, "u": 1,
         "B": [{"a": "USDT", "f": "4500.00000000", "l": "5500.00000000"}]}
    ]  # fmt: skip
    new = reports(events)[0]
    assert (new["w"], new["W"], new["p"]) == (True, 1, "55000.00000000")
    ledger.set_price("BTCUSDT", "56000", 2)
    assert ledger.drain_events() == []  # not crossed, status unchanged
    ledger.set_price("BTCUSDT", "54000", 3)  # gapped through: fills at the limit price
    events = ledger.drain_events()
    (trade,) = reports(events)
    assert (trade["x"], trade["X"], trade["L"], trade["m"], trade["w"]) == (
        "TRADE",
        "FILLED",
        "55000.00000000",
        True,
        False,
    )
    assert bal(ledger, "USDT")[:2] == (D(4500), D(0))
    assert bal(ledger, "BTC")[0] == D("0.0999")
    assert ledger.get_order("a", "BTCUSDT", order_id=1000)["status"] == "FILLED"
    ledger.check_invariants()


def test_crossing_limit_is_a_taker_at_the_better_price() -> None:
    ledger = funded(usdt="10000")
    resp = ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 1, quantity="0.1", price="61000",
                            time_in_force="GTC")  # fmt: skip
    assert resp["status"] == "FILLED"
    assert resp["fills"][0]["price"] == "60000.00000000"
    assert bal(ledger, "USDT")[:2] == (D(4000), D(0))  # the 100 USDT price improvement is free
    ledger.check_invariants()


def test_partial_fills_with_limited_liquidity() -> None:
    ledger = funded(usdt="100000")
    ledger.set_price("BTCUSDT", "60000", 0, liquidity="0.3")
    gtc = ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 1, quantity="0.2", price="60000",
                           time_in_force="GTC")  # fmt: skip
    ioc = ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 1, quantity="0.2", price="60000",
                           time_in_force="IOC")  # fmt: skip
    fok = ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 1, quantity="0.2", price="60000",
                           time_in_force="FOK")  # fmt: skip
    mkt = ledger.new_order("a", "BTCUSDT", "BUY", "MARKET", 1, quantity="0.2")
    assert [(r["status"], r["executedQty"]) for r in (gtc, ioc, fok, mkt)] == [
        ("FILLED", "0.20000000"),
        ("EXPIRED", "0.10000000"),
        ("EXPIRED", "0.00000000"),
        ("EXPIRED", "0.00000000"),
    ]
    events = ledger.drain_events()
    expired = {p["i"]: p["eR"] for p in reports(events) if p["x"] == "EXPIRED"}
    assert expired == {
        1001: "UNFILLED_IOC_QUANTITY_EXPIRED",
        1002: "UNFILLED_FOK_ORDER_EXPIRED",
        1003: "INSUFFICIENT_LIQUIDITY",
    }
    # A resting order fills partially when the next price brings little liquidity.
    ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 2, quantity="0.5", price="59000",
                     time_in_force="GTC")  # fmt: skip
    ledger.drain_events()
    ledger.set_price("BTCUSDT", "58000", 3, liquidity="0.2")
    ledger.set_price("BTCUSDT", "58500", 4, liquidity="1")
    events = ledger.drain_events()
    assert [(p["x"], p["X"], p["l"], p["z"]) for p in reports(events)] == [
        ("TRADE", "PARTIALLY_FILLED", "0.20000000", "0.20000000"),
        ("TRADE", "FILLED", "0.30000000", "0.50000000"),
    ]
    assert bal(ledger, "USDT")[1] == D(0)
    ledger.check_invariants()


def test_stop_and_take_profit_orders_trigger_on_set_price() -> None:
    ledger = funded(usdt="10000", btc="1")
    ledger.new_order("a", "BTCUSDT", "SELL", "STOP_LOSS", 1, quantity="0.1", stop_price="58000")
    ledger.new_order("a", "BTCUSDT", "SELL", "TAKE_PROFIT_LIMIT", 1, quantity="0.1",
                     price="65000", stop_price="64000", time_in_force="GTC")  # fmt: skip
    ledger.new_order("a", "BTCUSDT", "BUY", "STOP_LOSS", 1, quantity="0.1", stop_price="62000")
    assert bal(ledger, "BTC")[1] == D("0.2")
    assert bal(ledger, "USDT")[1] == D(6200)
    events = ledger.drain_events()
    assert all(p["w"] is False and "W" not in p for p in reports(events))
    ledger.set_price("BTCUSDT", "57000", 2)  # the sell stop fires at market
    assert xs(ledger.drain_events()) == [(1000, "TRADE", "FILLED")]
    ledger.set_price("BTCUSDT", "64000", 3)  # buy stop fires and pays 6400 (6200 locked)
    ledger.drain_events()
    assert ledger.get_order("a", "BTCUSDT", order_id=1002)["cummulativeQuoteQty"] == (
        "6400.00000000"
    )
    # The take-profit limit triggered at 64000 and rests at 65000 until the price reaches it.
    order = ledger.get_order("a", "BTCUSDT", order_id=1001)
    assert (order["status"], order["isWorking"]) == ("NEW", True)
    ledger.set_price("BTCUSDT", "65000", 4)
    (fill,) = reports(ledger.drain_events())
    assert (fill["i"], fill["X"], fill["L"], fill["m"], fill["W"]) == (
        1001,
        "FILLED",
        "65000.00000000",
        True,
        3,
    )
    assert bal(ledger, "USDT")[1] == D(0) and bal(ledger, "BTC")[1] == D(0)
    ledger.check_invariants()


def test_cancel_by_id_and_client_id_and_all_open() -> None:
    ledger = funded(usdt="10000")
    for i, price in enumerate(("50000", "51000", "52000")):
        ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 1, quantity="0.01", price=price,
                         time_in_force="GTC", new_client_order_id=f"c{i}")  # fmt: skip
    ledger.drain_events()
    resp = ledger.cancel_order("a", "BTCUSDT", 2, order_id=1000, new_client_order_id="kill0")
    assert resp == {
        "symbol": "BTCUSDT", "isIsolated": False, "orderId": 1000, "origClientOrderId": "c0",
        "clientOrderId": "kill0", "orderListId": -1, "price": "50000.00000000",
        "origQty": "0.01000000", "executedQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000", "status": "CANCELED", "timeInForce": "GTC",
        "type": "LIMIT", "side": "BUY", "selfTradePreventionMode": "NONE",
    }  # fmt: skip
    (report,) = reports(ledger.drain_events())
    assert (report["x"], report["c"], report["C"], report["w"]) == (
        "CANCELED",
        "kill0",
        "c0",
        False,
    )
    ledger.cancel_order("a", "BTCUSDT", 3, orig_client_order_id="c1")
    with pytest.raises(LedgerError) as info:  # both given but not the same order
        ledger.cancel_order("a", "BTCUSDT", 3, order_id=1002, orig_client_order_id="c0")
    assert info.value.code == -2011
    assert [o["clientOrderId"] for o in ledger.open_orders("a", "BTCUSDT")] == ["c2"]
    canceled = ledger.cancel_open_orders("a", "BTCUSDT", 4)
    assert [(c["orderId"], c["status"]) for c in canceled] == [(1002, "CANCELED")]
    assert bal(ledger, "USDT")[:2] == (D(10000), D(0))
    assert ledger.open_orders("a") == []
    # A canceled client id may be used again.
    ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 5, quantity="0.01", price="50000",
                     time_in_force="GTC", new_client_order_id="c0")  # fmt: skip
    assert ledger.get_order("a", "BTCUSDT", orig_client_order_id="c0")["orderId"] == 1003
    ledger.check_invariants()


def test_order_queries() -> None:
    ledger = funded(usdt="10000")
    for _ in range(3):
        ledger.new_order("a", "BTCUSDT", "BUY", "MARKET", 1, quantity="0.001")
    ledger.new_order("a", "ETHUSDT", "BUY", "MARKET", 2, quantity="0.01")
    assert [o["orderId"] for o in ledger.all_orders("a", "BTCUSDT")] == [1000, 1001, 1002]
    assert [o["orderId"] for o in ledger.all_orders("a", "BTCUSDT", limit=2)] == [1001, 1002]
    assert [o["orderId"] for o in ledger.all_orders("a", "BTCUSDT", order_id=1001, limit=1)] == [
        1001
    ]
    trades = ledger.my_trades("a", "BTCUSDT", from_id=2)
    assert [t["id"] for t in trades] == [2, 3]
    assert trades[0] == {
        "commission": "0.00000100", "commissionAsset": "BTC", "id": 2, "isBestMatch": True,
        "isBuyer": True, "isMaker": False, "orderId": 1001, "price": "60000.00000000",
        "qty": "0.00100000", "symbol": "BTCUSDT", "isIsolated": False, "time": 1,
    }  # fmt: skip
    assert [t["id"] for t in ledger.my_trades("a", "BTCUSDT", order_id=1000)] == [1]
    assert ledger.my_trades("a", "ETHUSDT", start_time=3) == []
    order = ledger.get_order("a", "BTCUSDT", order_id="1000")
    assert set(order) == {
        "clientOrderId", "cummulativeQuoteQty", "executedQty", "icebergQty", "isWorking",
        "orderId", "orderListId", "origQty", "price", "side", "status", "stopPrice", "symbol",
        "isIsolated", "time", "timeInForce", "type", "selfTradePreventionMode", "updateTime",
    }  # fmt: skip
    with pytest.raises(LedgerError) as info:
        ledger.open_orders("a", is_isolated=True)
    assert info.value.code == -1102


# -- order lists ----------------------------------------------------------------------------------


def test_oco_limit_leg_fills_and_stop_leg_expires() -> None:
    ledger = funded(usdt="1000", btc="1")
    resp = ledger.new_oco("a", "BTCUSDT", "SELL", "0.5", "65000", "55000", 1,
                          list_client_order_id="L1", limit_client_order_id="lim",
                          stop_client_order_id="stp")  # fmt: skip
    assert (resp["contingencyType"], resp["listStatusType"], resp["listOrderStatus"]) == (
        "OCO",
        "EXEC_STARTED",
        "EXECUTING",
    )
    assert [(r["type"], r["status"]) for r in resp["orderReports"]] == [
        ("STOP_LOSS", "NEW"), ("LIMIT_MAKER", "NEW")
    ]  # fmt: skip
    assert bal(ledger, "BTC")[:2] == (D("0.5"), D("0.5"))  # one lock for both legs
    events = ledger.drain_events()
    assert [p["e"] for p in payloads(events)] == [
        "executionReport", "executionReport", "listStatus", "outboundAccountPosition"
    ]  # fmt: skip
    (started,) = payloads(events, "listStatus")
    assert started == {
        "e": "listStatus", "E": 1, "s": "BTCUSDT", "g": 1, "c": "OCO", "l": "EXEC_STARTED",
        "L": "EXECUTING", "r": "NONE", "C": "L1", "T": 1,
        "O": [{"s": "BTCUSDT", "i": 1000, "c": "stp"}, {"s": "BTCUSDT", "i": 1001, "c": "lim"}],
    }  # fmt: skip
    assert all(p["g"] == 1 for p in reports(events))
    ledger.set_price("BTCUSDT", "66000", 2)
    events = ledger.drain_events()
    assert xs(events) == [(1001, "TRADE", "FILLED"), (1000, "EXPIRED", "EXPIRED")]
    assert reports(events)[1]["eR"] == "OCO_TRIGGER"
    (done,) = payloads(events, "listStatus")
    assert (done["l"], done["L"]) == ("ALL_DONE", "ALL_DONE")
    assert bal(ledger, "BTC")[:2] == (D("0.5"), D(0))
    assert ledger.get_order_list("a", order_list_id=1)["listStatusType"] == "ALL_DONE"
    assert ledger.open_order_lists("a") == []
    assert [lst["orderListId"] for lst in ledger.all_order_lists("a")] == [1]
    ledger.check_invariants()


def test_buy_oco_stop_leg_triggers_and_locks_the_larger_need() -> None:
    ledger = funded(usdt="10000")
    ledger.new_oco("a", "BTCUSDT", "BUY", "0.1", "55000", "62000", 1,
                   stop_limit_price="62500", stop_limit_time_in_force="GTC")  # fmt: skip
    assert bal(ledger, "USDT")[1] == D(6250)  # max(0.1 x 55000, 0.1 x 62500)
    ledger.drain_events()
    ledger.set_price("BTCUSDT", "62100", 2)  # the stop-limit triggers and takes at 62100
    events = ledger.drain_events()
    assert xs(events) == [(1001, "EXPIRED", "EXPIRED"), (1000, "TRADE", "FILLED")]
    assert [p["l"] for p in payloads(events, "listStatus")] == ["ALL_DONE"]
    assert bal(ledger, "USDT")[:2] == (D(10000) - D(6210), D(0))
    ledger.check_invariants()


def test_cancelling_one_leg_cancels_the_list() -> None:
    ledger = funded(usdt="1000", btc="1")
    ledger.new_oco("a", "BTCUSDT", "SELL", "0.5", "65000", "55000", 1)
    ledger.drain_events()
    resp = ledger.cancel_order("a", "BTCUSDT", 2, order_id=1001, new_client_order_id="x")
    assert (resp["status"], resp["clientOrderId"], resp["orderListId"]) == ("CANCELED", "x", 1)
    events = ledger.drain_events()
    assert xs(events) == [(1000, "CANCELED", "CANCELED"), (1001, "CANCELED", "CANCELED")]
    assert reports(events)[1]["c"] == "x"
    assert [p["L"] for p in payloads(events, "listStatus")] == ["ALL_DONE"]
    assert bal(ledger, "BTC")[:2] == (D(1), D(0))
    ledger.new_oco("a", "BTCUSDT", "SELL", "0.5", "65000", "55000", 3)
    resp = ledger.cancel_order_list("a", "BTCUSDT", 4, order_list_id=2)
    assert resp["listOrderStatus"] == "ALL_DONE"
    assert [r["status"] for r in resp["orderReports"]] == ["CANCELED", "CANCELED"]
    assert all("origClientOrderId" in r for r in resp["orderReports"])
    ledger.new_oco("a", "BTCUSDT", "SELL", "0.5", "65000", "55000", 5)
    (listed,) = ledger.cancel_open_orders("a", "BTCUSDT", 6)
    assert listed["orderListId"] == 3
    ledger.check_invariants()


def oto_buying_at_59000(ledger: Ledger, **pending: str) -> dict[str, Any]:
    """Account "a" places (at 1) an OTO: working LIMIT BUY 0.1 BTC @ 59000 GTC, then ``pending``
    (the ``pending_*`` parameters)."""
    return ledger.new_oto(
        "a", "BTCUSDT", 1, working_type="LIMIT", working_side="BUY", working_price="59000",
        working_quantity="0.1", working_time_in_force="GTC", **pending,
    )  # fmt: skip


def test_oto_places_the_pending_order_when_the_working_order_fills() -> None:
    ledger = funded(usdt="10000")
    resp = oto_buying_at_59000(
        ledger, pending_type="LIMIT_MAKER", pending_side="SELL", pending_price="61000",
        pending_quantity="0.09",
    )  # fmt: skip
    assert [r["status"] for r in resp["orderReports"]] == ["NEW", "PENDING_NEW"]
    events = ledger.drain_events()
    assert xs(events) == [(1000, "NEW", "NEW"), (1001, "NEW", "PENDING_NEW")]
    assert [p["l"] for p in payloads(events, "listStatus")] == ["EXEC_STARTED"]
    assert bal(ledger, "USDT")[1] == D(5900)  # the pending sell locks nothing yet
    ledger.set_price("BTCUSDT", "58000", 2)
    events = ledger.drain_events()
    assert xs(events) == [(1000, "TRADE", "FILLED"), (1001, "NEW", "NEW")]
    assert [(p["l"], p["L"]) for p in payloads(events, "listStatus")] == [("ALL_DONE", "ALL_DONE")]
    assert bal(ledger, "BTC")[:2] == (D("0.0099"), D("0.09"))
    ledger.set_price("BTCUSDT", "61000", 3)
    assert xs(ledger.drain_events()) == [(1001, "TRADE", "FILLED")]
    ledger.check_invariants()


def test_oto_cancel_before_the_working_fill_cancels_both() -> None:
    ledger = funded(usdt="10000")
    oto_buying_at_59000(ledger, pending_type="MARKET", pending_side="SELL", pending_quantity="0.09")
    ledger.drain_events()
    ledger.cancel_order("a", "BTCUSDT", 2, order_id=1001)  # the pending one
    events = ledger.drain_events()
    assert xs(events) == [(1000, "CANCELED", "CANCELED"), (1001, "CANCELED", "CANCELED")]
    assert bal(ledger, "USDT")[:2] == (D(10000), D(0))
    ledger.check_invariants()


def test_oto_pending_that_cannot_be_funded_expires() -> None:
    ledger = funded(usdt="10000")
    oto_buying_at_59000(
        ledger, pending_type="LIMIT", pending_side="SELL", pending_price="70000",
        pending_quantity="0.1", pending_time_in_force="GTC",
    )  # fmt: skip
    ledger.drain_events()
    ledger.set_price("BTCUSDT", "58000", 2)  # 0.0999 BTC after commission < 0.1
    events = ledger.drain_events()
    assert xs(events) == [(1000, "TRADE", "FILLED"), (1001, "EXPIRED", "EXPIRED")]
    assert reports(events)[1]["eR"] == "REJECTED"
    assert [p["l"] for p in payloads(events, "listStatus")] == ["ALL_DONE"]
    ledger.check_invariants()


def _otoco(ledger: Ledger, tif: str = "GTC", now: int = 1) -> dict[str, Any]:
    return ledger.new_otoco(
        "a", "BTCUSDT", now, working_type="LIMIT", working_side="BUY", working_price="59000",
        working_quantity="0.1", working_time_in_force=tif, pending_side="SELL",
        pending_quantity="0.09", pending_above_type="LIMIT_MAKER", pending_above_price="62000",
        pending_below_type="STOP_LOSS", pending_below_stop_price="57000",
        list_client_order_id="otoco",
    )  # fmt: skip


def test_otoco_flow() -> None:
    ledger = funded(usdt="10000")
    resp = _otoco(ledger)
    assert [(r["type"], r["status"]) for r in resp["orderReports"]] == [
        ("LIMIT", "NEW"), ("LIMIT_MAKER", "PENDING_NEW"), ("STOP_LOSS", "PENDING_NEW")
    ]  # fmt: skip
    ledger.drain_events()
    ledger.set_price("BTCUSDT", "58500", 2)
    events = ledger.drain_events()
    assert xs(events) == [(1000, "TRADE", "FILLED"), (1001, "NEW", "NEW"), (1002, "NEW", "NEW")]
    assert [(p["l"], p["L"]) for p in payloads(events, "listStatus")] == [
        ("EXEC_STARTED", "EXECUTING")
    ]
    assert bal(ledger, "BTC")[1] == D("0.09")  # one lock for the pending pair
    ledger.set_price("BTCUSDT", "62000", 3)
    events = ledger.drain_events()
    assert xs(events) == [(1001, "TRADE", "FILLED"), (1002, "EXPIRED", "EXPIRED")]
    assert reports(events)[1]["eR"] == "OCO_TRIGGER"
    assert [(p["l"], p["L"], p["C"]) for p in payloads(events, "listStatus")] == [
        ("ALL_DONE", "ALL_DONE", "otoco")
    ]
    ledger.check_invariants()


def test_otoco_working_order_that_expires_expires_the_pending_pair() -> None:
    ledger = funded(usdt="10000")
    _otoco(ledger, tif="IOC")  # 59000 does not cross 60000: expires at once
    events = ledger.drain_events()
    assert [(p["i"], p["X"], p.get("eR")) for p in reports(events)][3:] == [
        (1000, "EXPIRED", "UNFILLED_IOC_QUANTITY_EXPIRED"),
        (1001, "EXPIRED", "OTO_PHASE_ONE_EXPIRED"),
        (1002, "EXPIRED", "OTO_PHASE_ONE_EXPIRED"),
    ]
    assert [p["l"] for p in payloads(events, "listStatus")] == ["EXEC_STARTED", "ALL_DONE"]
    assert ledger.open_orders("a") == []
    ledger.check_invariants()


# -- side effects ---------------------------------------------------------------------------------


def test_margin_buy_borrows_the_shortfall() -> None:
    ledger = funded(usdt="1000")
    resp = ledger.new_order("a", "BTCUSDT", "BUY", "MARKET", 1, quantity="0.05",
                            side_effect_type="MARGIN_BUY")  # fmt: skip
    assert (resp["marginBuyBorrowAmount"], resp["marginBuyBorrowAsset"]) == (
        "2000.00000000",
        "USDT",
    )
    assert bal(ledger, "USDT") == (D(0), D(0), D(2000), D(0))
    events = ledger.drain_events()
    assert payloads(events, channel="risk")[0] == {
        "e": "USER_LIABILITY_CHANGE", "E": 1, "a": "USDT", "t": "BORROW",
        "p": "2000.00000000", "i": "0.00000000",
    }  # fmt: skip
    (row,) = ledger.borrow_repay_history("a", "BORROW")["rows"]
    assert (row["type"], row["principal"]) == ("AUTO", "2000.00000000")
    ledger.check_invariants()


def test_margin_buy_limit_borrows_at_placement_and_repays_at_cancel() -> None:
    ledger = funded(usdt="1000")
    resp = ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 1, quantity="0.05", price="50000",
                            time_in_force="GTC", side_effect_type="MARGIN_BUY")  # fmt: skip
    assert resp["marginBuyBorrowAmount"] == "1500.00000000"
    assert bal(ledger, "USDT") == (D(0), D(2500), D(1500), D(0))
    ledger.drain_events()
    ledger.cancel_order("a", "BTCUSDT", 2, order_id=1000)
    assert bal(ledger, "USDT") == (D(1000), D(0), D(0), D(0))
    events = ledger.drain_events()
    assert [(p["t"], p["p"]) for p in payloads(events, "USER_LIABILITY_CHANGE")] == [
        ("REPAY", "1500.00000000"),
    ]
    assert [e.payload["e"] for e in events if e.channel == "trade"] == [
        "executionReport", "outboundAccountPosition"
    ]  # fmt: skip
    assert ledger.borrow_repay_history("a", "REPAY")["rows"][0]["type"] == "AUTO"
    # autoRepayAtCancel=false keeps the loan.
    ledger.new_order("a", "BTCUSDT", "BUY", "LIMIT", 3, quantity="0.05", price="50000",
                     time_in_force="GTC", side_effect_type="MARGIN_BUY",
                     auto_repay_at_cancel="false")  # fmt: skip
    ledger.cancel_order("a", "BTCUSDT", 4, order_id=1001)
    assert bal(ledger, "USDT") == (D(2500), D(0), D(1500), D(0))
    ledger.check_invariants()


def test_list_margin_buy_borrows_once_and_repays_when_the_list_is_canceled() -> None:
    ledger = funded(usdt="1100")
    resp = ledger.new_oco("a", "BTCUSDT", "BUY", "0.05", "55000", "62000", 1,
                          side_effect_type="MARGIN_BUY")  # fmt: skip
    # One lock of max(0.05 x 55000, 0.05 x 62000) = 3100; 2000 borrowed.
    assert (resp["marginBuyBorrowAmount"], resp["marginBuyBorrowAsset"]) == (
        "2000.00000000",
        "USDT",
    )
    assert bal(ledger, "USDT") == (D(0), D(3100), D(2000), D(0))
    ledger.drain_events()
    ledger.cancel_order_list("a", "BTCUSDT", 2, list_client_order_id=resp["listClientOrderId"])
    assert bal(ledger, "USDT") == (D(1100), D(0), D(0), D(0))
    events = ledger.drain_events()
    assert [(p["t"], p["p"]) for p in payloads(events, "USER_LIABILITY_CHANGE")] == [
        ("REPAY", "2000.00000000")
    ]
    ledger.check_invariants()


def test_auto_repay_uses_the_proceeds() -> None:
    ledger = funded(usdt="1000", btc="0.1")
    ledger.borrow("a", "USDT", "2000", 0)
    ledger.drain_events()
    ledger.new_order("a", "BTCUSDT", "SELL", "MARKET", 1, quantity="0.02",
                     side_effect_type="AUTO_REPAY")  # fmt: skip
    # Proceeds 1200 - 1.2 commission repay 1198.8 of the 2000 loan.
    assert bal(ledger, "USDT") == (D(3000), D(0), D("801.2"), D(0))
    events = ledger.drain_events()
    assert [(p["t"], p["p"]) for p in payloads(events, channel="risk")] == [
        ("REPAY", "1198.80000000")
    ]
    ledger.check_invariants()


def test_auto_borrow_repay_shorts_and_covers() -> None:
    ledger = funded(usdt="10000")
    ledger.new_order("a", "BTCUSDT", "SELL", "MARKET", 1, quantity="0.1",
                     side_effect_type="AUTO_BORROW_REPAY")  # fmt: skip
    assert bal(ledger, "BTC") == (D(0), D(0), D("0.1"), D(0))
    ledger.set_price("BTCUSDT", "50000", 2)
    ledger.new_order("a", "BTCUSDT", "BUY", "MARKET", 3, quantity="0.1",
                     side_effect_type="AUTO_BORROW_REPAY")  # fmt: skip
    # 0.1 bought, 0.0001 commission: 0.0999 repays, 0.0001 stays borrowed.
    assert bal(ledger, "BTC") == (D(0), D(0), D("0.0001"), D(0))
    assert bal(ledger, "USDT")[0] == D(10000) + D(6000) - D(6) - D(5000)
    ledger.check_invariants()


# -- margin level -------------------------------------------------------------------------------


def test_margin_level_status_changes_once_per_change() -> None:
    ledger = funded(usdt="0", btc="0.1")
    ledger.borrow("a", "USDT", "6000", 0)  # (0.1 P + 6000) / 6000 at P = 60000: 2.0
    ledger.drain_events()
    steps = [("50000", "NORMAL"), ("45000", None), ("29000", "MARGIN_CALL"),
             ("14000", "PRE_LIQUIDATION"), ("13000", None), ("5000", "FORCE_LIQUIDATION"),
             ("70000", "EXCESSIVE"), ("80000", None)]  # fmt: skip
    for now, (price, expected) in enumerate(steps, start=1):
        ledger.set_price("BTCUSDT", price, now)
        changes = payloads(ledger.drain_events(), "MARGIN_LEVEL_STATUS_CHANGE", "risk")
        assert [c["s"] for c in changes] == ([expected] if expected else [])
        assert ledger.margin_level_status("a") == ledger.cross_account("a")["marginLevelStatus"]
        ledger.check_invariants()
    ledger.set_price("BTCUSDT", "50000", 20)
    (change,) = payloads(ledger.drain_events(), "MARGIN_LEVEL_STATUS_CHANGE")
    assert change == {"e": "MARGIN_LEVEL_STATUS_CHANGE", "E": 20, "l": "1.83333333",
                      "s": "NORMAL"}  # fmt: skip
    # Repaying the debt changes it too.
    ledger.repay("a", "USDT", "6000", 21)
    (change,) = payloads(ledger.drain_events(), "MARGIN_LEVEL_STATUS_CHANGE")
    assert (change["l"], change["s"]) == ("999.00000000", "EXCESSIVE")


def test_account_snapshots() -> None:
    ledger = funded(usdt="10000", btc="0.5")
    ledger.borrow("a", "USDT", "3000", 0)
    account = ledger.cross_account("a")
    # assets 13000 USDT + 0.5 BTC = 0.71666667 BTC, liabilities 0.05 BTC
    assert {k: account[k] for k in ("marginLevel", "totalAssetOfBtc", "totalLiabilityOfBtc",
                                    "totalNetAssetOfBtc", "marginLevelStatus")} == {
        "marginLevel": "14.33333333", "totalAssetOfBtc": "0.71666667",
        "totalLiabilityOfBtc": "0.05000000", "totalNetAssetOfBtc": "0.66666667",
        "marginLevelStatus": "EXCESSIVE",
    }  # fmt: skip
    assert [a["asset"] for a in account["userAssets"]] == ["BNB", "BTC", "ETH", "USDT"]
    assert account["userAssets"][3] == {
        "asset": "USDT", "borrowed": "3000.00000000", "free": "13000.00000000",
        "interest": "0.00000000", "locked": "0.00000000", "netAsset": "10000.00000000",
    }  # fmt: skip
    assert account["tradeEnabled"] and account["transferEnabled"] and account["borrowEnabled"]
    ledger.transfer("a", "MARGIN_ISOLATEDMARGIN", "USDT", "1000", 1, to_symbol="BTCUSDT")
    ledger.borrow("a", "BTC", "0.02", 2, symbol="BTCUSDT")
    iso = ledger.isolated_account("a")
    assert set(iso) == {"assets", "totalAssetOfBtc", "totalLiabilityOfBtc", "totalNetAssetOfBtc"}
    (pair,) = iso["assets"]
    # (0.02 P + 1000) / (0.02 P) = 1.1  =>  P = 1000 / 0.002 = 500000
    assert {k: pair[k] for k in ("symbol", "marginLevel", "marginLevelStatus", "indexPrice",
                                 "liquidatePrice", "isolatedCreated")} == {
        "symbol": "BTCUSDT", "marginLevel": "1.83333333", "marginLevelStatus": "NORMAL",
        "indexPrice": "60000.00000000", "liquidatePrice": "500000.00000000",
        "isolatedCreated": True,
    }  # fmt: skip
    assert pair["baseAsset"] == {
        "asset": "BTC", "borrowEnabled": True, "borrowed": "0.02000000", "free": "0.02000000",
        "interest": "0.00000000", "locked": "0.00000000", "netAsset": "0.00000000",
        "netAssetOfBtc": "0.00000000", "repayEnabled": True, "totalAsset": "0.02000000",
    }  # fmt: skip
    assert set(ledger.isolated_account("a", "BTCUSDT,ETHUSDT")) == {"assets"}
    assert ledger.isolated_account("a", ["ETHUSDT"])["assets"] == []


# -- event shapes ---------------------------------------------------------------------------------


def _busy_ledger() -> tuple[Ledger, list[LedgerEvent]]:
    ledger = funded(usdt="10000", btc="1")
    events: list[LedgerEvent] = []
    ledger.transfer("a", "MARGIN_ISOLATEDMARGIN", "USDT", "2000", 1, to_symbol="ETHUSDT")
    ledger.new_order("a", "ETHUSDT", "BUY", "LIMIT", 2, is_isolated=True, quantity="0.1",
                     price="2900", time_in_force="GTC")  # fmt: skip
    ledger.new_order("a", "BTCUSDT", "BUY", "MARKET", 2, quantity="0.01",
                     side_effect_type="MARGIN_BUY")  # fmt: skip
    ledger.new_oco("a", "BTCUSDT", "SELL", "0.1", "65000", "55000", 3)
    _otoco(ledger, now=3)
    ledger.new_order("a", "BTCUSDT", "SELL", "LIMIT", 3, quantity="0.1", price="70000",
                     time_in_force="GTC")  # fmt: skip
    ledger.borrow("a", "USDT", "100000", 4)  # EXCESSIVE -> NORMAL
    ledger.cancel_order("a", "BTCUSDT", 5, order_id=ledger.open_orders("a", "BTCUSDT")[-1][
        "orderId"])  # fmt: skip
    for now, price in enumerate(("57000", "58500", "66000", "40000"), start=6):
        ledger.set_price("BTCUSDT", price, now)
    ledger.set_price("ETHUSDT", "2800", 10)
    ledger.accrue_interest(10 + 2 * HOUR)
    ledger.check_invariants()
    events.extend(ledger.drain_events())
    return ledger, events


def test_event_shapes() -> None:
    _, events = _busy_ledger()
    kinds = {e.payload["e"] for e in events}
    assert kinds == {
        "executionReport",
        "listStatus",
        "outboundAccountPosition",
        "balanceUpdate",
        "USER_LIABILITY_CHANGE",
        "MARGIN_LEVEL_STATUS_CHANGE",
    }
    for event in events:
        p = event.payload
        assert (event.channel == "risk") == (
            p["e"] in ("USER_LIABILITY_CHANGE", "MARGIN_LEVEL_STATUS_CHANGE")
        )
        if event.channel == "risk":
            assert event.scope == "CROSS"
        if p["e"] == "executionReport":
            assert REPORT_FIELDS <= set(p) <= REPORT_FIELDS | {"W", "eR"}
            assert ("eR" in p) == (p["x"] == "EXPIRED")
            assert p["E"] == p["T"] and isinstance(p["I"], int)
            traded = p["x"] == "TRADE"
            assert (p["t"] != -1) == traded and (p["N"] is not None) == traded
            if not traded:
                assert (p["l"], p["L"], p["n"], p["Y"]) == ("0.00000000",) * 2 + ("0",) + (
                    "0.00000000",
                )
        elif p["e"] == "listStatus":
            assert set(p) == LIST_STATUS_FIELDS
        elif p["e"] == "outboundAccountPosition":
            assert set(p) == {"e", "E", "u", "B"} and p["B"]
            assert all(set(b) == {"a", "f", "l"} for b in p["B"])
        elif p["e"] == "balanceUpdate":
            assert set(p) == {"e", "E", "a", "d", "T"}
        elif p["e"] == "USER_LIABILITY_CHANGE":
            assert set(p) == {"e", "E", "a", "t", "p", "i"}
            assert p["t"] in ("BORROW", "REPAY", "INTEREST")
        else:
            assert set(p) == {"e", "E", "l", "s"} and isinstance(p["l"], str)
    assert {e.scope for e in events if e.channel == "trade"} == {"CROSS", "ETHUSDT"}
    # Ids are monotonic.
    exec_ids = [e.payload["I"] for e in events if e.payload["e"] == "executionReport"]
    assert exec_ids == sorted(exec_ids) and len(set(exec_ids)) == len(exec_ids)
    trade_ids = [e.payload["t"] for e in events
                 if e.payload["e"] == "executionReport" and e.payload["t"] != -1]  # fmt: skip
    assert trade_ids == sorted(trade_ids)


def test_events_decode_into_the_typed_events() -> None:
    _, events = _busy_ledger()
    for event in events:
        decoded = decode_event(event.payload, event.scope)
        assert not isinstance(decoded, UnknownEvent), decoded


def test_same_seed_same_story() -> None:
    first = [e.payload for e in _busy_ledger()[1]]
    second = [e.payload for e in _busy_ledger()[1]]
    assert first == second
    # Generated client ids are distinct (an OTO pending order reports NEW twice: same id).
    generated = {p["i"]: p["c"] for p in first if p["e"] == "executionReport"}
    assert len(set(generated.values())) == len(generated)


def test_check_invariants_detects_corruption() -> None:
    ledger, _ = _busy_ledger()
    ledger._accounts["a"].cross.bal("USDT").locked += 1
    with pytest.raises(InvariantViolation, match="locked"):
        ledger.check_invariants()
    ledger._accounts["a"].cross.bal("USDT").locked -= 1
    ledger.check_invariants()
    ledger._accounts["a"].cross.bal("BNB").free += D("0.00000001")  # money from nowhere
    with pytest.raises(InvariantViolation, match="tracked flows"):
        ledger.check_invariants()


# -- randomised sequences -------------------------------------------------------------------------


class _Driver:
    """Random but valid-looking requests against three accounts; most succeed, some are
    rejected, and the ledger must stay consistent either way."""

    ACCOUNTS = ("a", "b", "c")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ledger = Ledger(seed=seed, inventory={"BNB": "50"})
        for name in self.ACCOUNTS:
            self.ledger.add_account(name, spot={"USDT": "50000", "BTC": "1"},
                                    cross={"USDT": "20000", "BTC": "0.5", "ETH": "3"})  # fmt: skip
        self.now = 0
        self.ok = 0
        self.rejected = 0

    def qty(self, symbol: str) -> str:
        step = {"BTCUSDT": 5, "ETHUSDT": 4, "BNBUSDT": 3, "ETHBTC": 4}[symbol]
        return f"{self.rng.uniform(0.01, 1) * (100 if symbol == 'BNBUSDT' else 1) / 10:.{step}f}"

    def price(self, symbol: str, spread: float) -> str:
        tick = 5 if symbol == "ETHBTC" else 2
        ref = float(self.ledger.price(symbol))
        return f"{ref * (1 + self.rng.uniform(-spread, spread)):.{tick}f}"

    def step(self) -> None:
        rng, ledger = self.rng, self.ledger
        self.now += rng.randint(1, 600_000)
        acct = rng.choice(self.ACCOUNTS)
        symbol = rng.choice(("BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC"))
        sym = next(s for s in ledger.symbols() if s.symbol == symbol)
        isolated = symbol in ledger.isolated_symbols(acct) and rng.random() < 0.3
        side = rng.choice(("BUY", "SELL"))
        effect = rng.choice(("NO_SIDE_EFFECT", "NO_SIDE_EFFECT", "MARGIN_BUY", "AUTO_REPAY",
                             "AUTO_BORROW_REPAY"))  # fmt: skip
        op = rng.randrange(14)
        now = self.now
        if op == 0:
            liquidity = rng.choice((None, None, self.qty(symbol), "0"))
            ledger.set_price(symbol, self.price(symbol, 0.04), now, liquidity=liquidity)
        elif op == 1:
            asset = rng.choice((sym.base, sym.quote))
            amount = f"{rng.uniform(0.001, 2) * (10000 if asset == 'USDT' else 1):.4f}"
            symbol_kw = symbol if isolated else None
            if rng.random() < 0.6:
                ledger.borrow(acct, asset, amount, now, symbol=symbol_kw)
            else:
                ledger.repay(acct, asset, amount, now, symbol=symbol_kw)
        elif op == 2:
            kind = rng.choice(("MAIN_MARGIN", "MARGIN_MAIN", "MARGIN_ISOLATEDMARGIN",
                               "ISOLATEDMARGIN_MARGIN", "MAIN_ISOLATEDMARGIN"))  # fmt: skip
            asset = rng.choice((sym.base, sym.quote))
            amount = f"{rng.uniform(0.001, 1) * (3000 if asset == 'USDT' else 0.3):.4f}"
            kw: dict[str, str] = {}
            if kind.endswith("ISOLATEDMARGIN"):
                kw["to_symbol"] = symbol
            elif kind.startswith("ISOLATEDMARGIN"):
                kw["from_symbol"] = symbol
            ledger.transfer(acct, kind, asset, amount, now, **kw)
        elif op in (3, 4, 5, 6):
            kind = rng.choice(("LIMIT", "LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS",
                               "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"))  # fmt: skip
            kwargs: dict[str, Any] = {"quantity": self.qty(symbol)}
            if kind in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
                kwargs["price"] = self.price(symbol, 0.03)
            if kind in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
                kwargs["time_in_force"] = rng.choice(("GTC", "GTC", "IOC", "FOK"))
            if kind.startswith(("STOP", "TAKE")):
                kwargs["stop_price"] = self.price(symbol, 0.03)
            if kind == "MARKET" and rng.random() < 0.3:
                del kwargs["quantity"]
                kwargs["quote_order_qty"] = f"{rng.uniform(20, 500):.2f}"
            ledger.new_order(acct, symbol, side, kind, now, side_effect_type=effect,
                             auto_repay_at_cancel=rng.random() < 0.7, is_isolated=isolated,
                             **kwargs)  # fmt: skip
        elif op == 7:
            ref = float(ledger.price(symbol))
            tick = 5 if symbol == "ETHBTC" else 2
            up, down = f"{ref * 1.02:.{tick}f}", f"{ref * 0.98:.{tick}f}"
            limit, stop = (up, down) if side == "SELL" else (down, up)
            ledger.new_oco(acct, symbol, side, self.qty(symbol), limit, stop, now,
                           side_effect_type=effect, is_isolated=isolated)  # fmt: skip
        elif op == 8:
            other = "SELL" if side == "BUY" else "BUY"
            self._oto(acct, symbol, side, other, effect, isolated)
        elif op == 9:
            self._otoco(acct, symbol, side, effect, isolated)
        elif op in (10, 11):
            open_orders = ledger.open_orders(acct, symbol, is_isolated=isolated)
            if open_orders:
                ledger.cancel_order(acct, symbol, now,
                                    order_id=rng.choice(open_orders)["orderId"],
                                    is_isolated=isolated)  # fmt: skip
            else:
                ledger.cancel_open_orders(acct, symbol, now, is_isolated=isolated)
        elif op == 12:
            ledger.accrue_interest(now)
        else:
            lists = ledger.open_order_lists(acct, is_isolated=isolated,
                                            symbol=symbol if isolated else None)  # fmt: skip
            if lists:
                chosen = rng.choice(lists)
                ledger.cancel_order_list(acct, chosen["symbol"], now,
                                         order_list_id=chosen["orderListId"],
                                         is_isolated=isolated)  # fmt: skip
            else:
                ledger.cancel_open_orders(acct, symbol, now, is_isolated=isolated)

    def _oto(self, acct: str, symbol: str, side: str, other: str, effect: str, iso: bool) -> None:
        rng = self.rng
        pending = rng.choice(("LIMIT_MAKER", "MARKET", "LIMIT"))
        kwargs: dict[str, Any] = {}
        if pending != "MARKET":
            kwargs["pending_price"] = self.price(symbol, 0.03)
        if pending == "LIMIT":
            kwargs["pending_time_in_force"] = "GTC"
        self.ledger.new_oto(
            acct, symbol, self.now, is_isolated=iso, working_type="LIMIT", working_side=side,
            working_price=self.price(symbol, 0.02), working_quantity=self.qty(symbol),
            working_time_in_force=rng.choice(("GTC", "IOC")), pending_type=pending,
            pending_side=other, pending_quantity=self.qty(symbol), side_effect_type=effect,
            **kwargs,
        )  # fmt: skip

    def _otoco(self, acct: str, symbol: str, side: str, effect: str, iso: bool) -> None:
        other = "SELL" if side == "BUY" else "BUY"
        ref = float(self.ledger.price(symbol))
        tick = 5 if symbol == "ETHBTC" else 2
        hi, lo = f"{ref * 1.03:.{tick}f}", f"{ref * 0.97:.{tick}f}"
        above = (
            ("LIMIT_MAKER", {"pending_above_price": hi})
            if other == "SELL"
            else ("STOP_LOSS", {"pending_above_stop_price": hi})
        )
        below = ("STOP_LOSS", {"pending_below_stop_price": lo}) if other == "SELL" else (
            "LIMIT_MAKER", {"pending_below_price": lo})  # fmt: skip
        self.ledger.new_otoco(
            acct, symbol, self.now, is_isolated=iso, working_type="LIMIT", working_side=side,
            working_price=self.price(symbol, 0.02), working_quantity=self.qty(symbol),
            working_time_in_force="GTC", pending_side=other, pending_quantity=self.qty(symbol),
            pending_above_type=above[0], pending_below_type=below[0], side_effect_type=effect,
            **above[1], **below[1],
        )  # fmt: skip

    def run(self, steps: int) -> list[LedgerEvent]:
        events: list[LedgerEvent] = []
        for _ in range(steps):
            try:
                self.step()
            except LedgerError:
                self.rejected += 1
                assert self.ledger.drain_events() == []  # a rejection emits nothing
            else:
                self.ok += 1
                events.extend(self.ledger.drain_events())
            self.ledger.check_invariants()
        return events


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequences_keep_invariants(seed: int) -> None:
    driver = _Driver(seed)
    events = driver.run(1500)
    kinds = [e.payload["e"] for e in events]
    fills = sum(1 for e in events if e.payload["e"] == "executionReport"
                and e.payload["x"] == "TRADE")  # fmt: skip
    # The run must actually exercise the ledger, not just collect rejections.
    assert driver.ok > 600, (driver.ok, driver.rejected)
    assert fills > 200
    assert {"listStatus", "USER_LIABILITY_CHANGE", "MARGIN_LEVEL_STATUS_CHANGE",
            "balanceUpdate"} <= set(kinds)  # fmt: skip
    for event in events:
        assert not isinstance(decode_event(event.payload, event.scope), UnknownEvent)
