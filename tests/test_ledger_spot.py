"""The ledger's Spot API dialect (margin special keys): Spot OCO, cancel-replace, Spot shapes.

Pure: no event loop, ``now`` passed in; every scenario ends with ``check_invariants``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from binance_margin_async.testing.ledger import Ledger, LedgerError, SymbolSpec

NOW = 1_700_000_000_000
D = Decimal


def funded() -> Ledger:
    ledger = Ledger(seed=3)
    ledger.add_account("a", cross={"USDT": "10000", "BTC": "1"})
    return ledger


def limit_buy(ledger: Ledger, price: str, **extra: Any) -> dict[str, Any]:
    return ledger.new_order(
        "a", "BTCUSDT", "BUY", "LIMIT", NOW, quantity="0.01", price=price, time_in_force="GTC",
        spot=True, **extra,
    )  # fmt: skip


def code_of(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(LedgerError) as info:
        call(*args, **kwargs)
    return info.value.code


def test_spot_oco_orders_legs_like_binance_and_checks_them() -> None:
    ledger = funded()
    answer = ledger.new_order_list_oco(
        "a", "BTCUSDT", "BUY", "0.01", "STOP_LOSS", "LIMIT_MAKER", NOW,
        above_stop_price="61000", below_price="59000", spot=True,
    )  # fmt: skip
    # The stop-loss leg first, on either side (rest-api.md examples).
    assert [r["type"] for r in answer["orderReports"]] == ["STOP_LOSS", "LIMIT_MAKER"]
    assert answer["contingencyType"] == "OCO" and "isIsolated" not in answer
    assert [r["workingTime"] for r in answer["orderReports"]] == [-1, NOW]
    # One lock for both legs: the larger need (0.01 x 61000).
    assert ledger.balance("a", "USDT").locked == D("610")
    ledger.drain_events()
    ledger.set_price("BTCUSDT", "59000", NOW + 1)  # the limit leg fills, the stop expires
    statuses = [(p["o"], p["X"]) for p in (e.payload for e in ledger.drain_events())
                if p["e"] == "executionReport"]  # fmt: skip
    assert statuses == [("LIMIT_MAKER", "FILLED"), ("STOP_LOSS", "EXPIRED")]
    ledger.check_invariants()
    # The market is at 59,000 now.
    for above, below, params, code in (
        ("LIMIT_MAKER", "STOP_LOSS", {"above_price": "61000", "below_stop_price": "58000"},
         -1116),  # a BUY's limit leg belongs below
        ("STOP_LOSS", "LIMIT_MAKER", {"above_stop_price": "58500", "below_price": "58000"},
         -1013),  # the above stop is below the market
        ("STOP_LOSS_LIMIT", "LIMIT_MAKER", {"above_stop_price": "61000", "above_price": "61000",
         "above_time_in_force": "IOC", "below_price": "58000"}, -1115),
    ):  # fmt: skip
        got = code_of(
            ledger.new_order_list_oco, "a", "BTCUSDT", "BUY", "0.01", above, below, NOW,
            spot=True, **params,
        )  # fmt: skip
        assert got == code, (above, below)
    ledger.check_invariants()


def test_cancel_replace_allow_failure_places_even_when_the_cancel_fails() -> None:
    ledger = funded()
    with pytest.raises(LedgerError) as info:
        ledger.cancel_replace_order(
            "a", "BTCUSDT", "BUY", "LIMIT", "ALLOW_FAILURE", NOW, cancel_order_id=42,
            quantity="0.01", price="59000", time_in_force="GTC", spot=True,
        )  # fmt: skip
    err = info.value
    assert (err.code, err.status) == (-2021, 409)
    assert err.data is not None
    assert (err.data["cancelResult"], err.data["newOrderResult"]) == ("FAILURE", "SUCCESS")
    assert err.data["newOrderResponse"]["status"] == "NEW"
    assert [o["price"] for o in ledger.open_orders("a", "BTCUSDT", spot=True)] == ["59000.00000000"]
    with pytest.raises(LedgerError) as info:
        ledger.cancel_replace_order(
            "a", "BTCUSDT", "BUY", "LIMIT", "ALLOW_FAILURE", NOW, cancel_order_id=42,
            quantity="1", price="59000", time_in_force="GTC", spot=True,
        )  # fmt: skip
    assert (info.value.code, info.value.status) == (-2022, 400)
    assert info.value.data is not None
    assert info.value.data["newOrderResponse"]["code"] == -2010  # 59,000 USDT: not enough
    ledger.check_invariants()


def test_cancel_replace_checks_filters_before_cancelling() -> None:
    ledger = funded()
    order = limit_buy(ledger, "59000")
    for changes, code in (
        ({"quantity": "0.000015"}, -1013),  # LOT_SIZE
        ({"price": "0.05"}, -1013),  # NOTIONAL: 0.0005 USDT
        ({"cancel_replace_mode": "MAYBE"}, -1100),
    ):
        params: dict[str, Any] = {
            "cancel_order_id": order["orderId"], "quantity": "0.01", "price": "58000",
            "time_in_force": "GTC", "spot": True,
        }  # fmt: skip
        mode = changes.pop("cancel_replace_mode", "STOP_ON_FAILURE")
        params.update(changes)
        got = code_of(
            ledger.cancel_replace_order, "a", "BTCUSDT", "BUY", "LIMIT", mode, NOW, **params
        )
        assert got == code, changes
    assert [o["orderId"] for o in ledger.open_orders("a", spot=True)] == [order["orderId"]]
    ledger.check_invariants()


def test_spot_answers_have_the_spot_shapes() -> None:
    ledger = funded()
    ack = limit_buy(ledger, "59000", new_order_resp_type="ACK")
    assert list(ack) == ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
    margin = ledger.get_order("a", "BTCUSDT", order_id=ack["orderId"])
    spot = ledger.get_order("a", "BTCUSDT", order_id=ack["orderId"], spot=True)
    assert "isIsolated" in margin and "isIsolated" not in spot
    assert (spot["orderListId"], spot["workingTime"], spot["origQuoteOrderQty"]) == (
        -1, NOW, "0.00000000",
    )  # fmt: skip
    cancels = ledger.cancel_open_orders("a", "BTCUSDT", NOW, spot=True)
    assert cancels[0]["origClientOrderId"] == ack["clientOrderId"]
    assert "isIsolated" not in cancels[0]


def test_symbol_specs_bound_quantities_and_prices() -> None:
    spec = SymbolSpec("BTCUSDT", "BTC", "USDT", D("60000"), max_price=D("100000"), max_qty=D("5"))
    ledger = Ledger(symbols=[spec])
    ledger.add_account("a", cross={"USDT": "1000000"})
    assert ledger.symbols() == [spec]
    for quantity, price, failure in (
        ("6", "60000", "LOT_SIZE"),
        ("1", "100000.01", "PRICE_FILTER"),
    ):
        with pytest.raises(LedgerError, match=failure):
            ledger.new_order(
                "a", "BTCUSDT", "BUY", "LIMIT", NOW, quantity=quantity, price=price,
                time_in_force="GTC",
            )  # fmt: skip
    ledger.new_order(
        "a", "BTCUSDT", "BUY", "LIMIT", NOW, quantity="5", price="100000", time_in_force="GTC"
    )
    ledger.check_invariants()
