"""Symbol rules: exchangeInfo decoding, tick/step rounding, notional checks, the cache, round=True.

Pure: no loop for the helpers; the request building runs on a recording MarginAPI.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_api_build import Recorder

from binance_margin_async.endpoints import EXCHANGE_INFO
from binance_margin_async.errors import InvalidResponse, ParameterError
from binance_margin_async.models import DecodeError
from binance_margin_async.symbols import SymbolInfo, SymbolRules, decode_exchange_info

BTCUSDT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "status": "TRADING",
    "baseAsset": "BTC",
    "baseAssetPrecision": 8,
    "quoteAsset": "USDT",
    "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"],
    "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": True,
    "permissionSets": [["SPOT", "MARGIN"]],
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001000",
            "maxQty": "9000.00000000",
            "stepSize": "0.00001000",
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": "0.00000000",
            "maxQty": "100.00000000",
            "stepSize": "0.00000000",
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
    ],
}
# An older symbol shape: MIN_NOTIONAL and a plain permissions list, a coarse 0.1 step.
#: The least an order answer carries (its required fields).
ORDER: Final = {"symbol": "ETHBTC", "orderId": 1}

LEGACY: dict[str, Any] = {
    "symbol": "ETHBTC",
    "permissions": ["SPOT"],
    "isMarginTradingAllowed": False,
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0", "maxPrice": "0", "tickSize": "0.00001"},
        {"filterType": "LOT_SIZE", "minQty": "0.1", "maxQty": "1000", "stepSize": "0.1"},
        {
            "filterType": "MIN_NOTIONAL",
            "minNotional": "0.001",
            "applyToMarket": False,
            "avgPriceMins": 5,
        },
    ],
}


def _info(data: dict[str, Any] = BTCUSDT) -> SymbolInfo:
    return decode_exchange_info({"serverTime": 1, "symbols": [data]}).symbols[0]


def test_decode_reads_the_filters_and_flags() -> None:
    info = _info()
    assert info.symbol == "BTCUSDT" and info.quote_asset == "USDT"
    assert info.is_margin_trading_allowed is True
    assert info.permissions == ("SPOT", "MARGIN")
    assert info.price_filter is not None and info.price_filter.tick_size == Decimal("0.01")
    assert info.lot_size is not None and info.lot_size.step_size == Decimal("0.00001")
    assert info.market_lot_size is not None and info.market_lot_size.max_qty == Decimal(100)
    assert info.notional is not None and info.notional.min_notional == Decimal(5)
    assert info.notional.avg_price_mins == 5
    assert len(info.filters) == 5  # unmodelled filters are kept as sent


def test_decode_legacy_min_notional_and_permissions() -> None:
    info = _info(LEGACY)
    assert info.permissions == ("SPOT",)
    assert info.is_margin_trading_allowed is False
    assert info.notional is not None
    assert info.notional.min_notional == Decimal("0.001")
    assert info.notional.apply_min_to_market is False
    assert info.notional.max_notional is None


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"symbols": {}},
        {"symbols": [{"filters": []}]},
        {"symbols": [{"symbol": "X", "filters": 1}]},
    ],
)
def test_decode_rejects_wrong_shapes(bad: Any) -> None:
    with pytest.raises(DecodeError):
        decode_exchange_info(bad)


def test_float_noise_never_reaches_the_wire() -> None:
    info = _info(LEGACY)
    # 0.1 + 0.2 is 0.30000000000000004: read through its shortest repr, rounded to the 0.1 step.
    assert str(info.round_quantity(0.1 + 0.2)) == "0.3"
    assert str(_info().round_quantity(0.1 + 0.2)) == "0.30000"
    assert format(_info().round_quantity(0.1 + 0.2).normalize(), "f") == "0.3"


@pytest.mark.parametrize(
    ("price", "rounding", "expected"),
    [
        ("65000.129", "down", "65000.12"),
        ("65000.129", "up", "65000.13"),
        ("65000.124", "nearest", "65000.12"),
        ("65000.126", "nearest", "65000.13"),
        (65000.1, "down", "65000.10"),
        ("0.01", "down", "0.01"),
    ],
)
def test_round_price(price: Any, rounding: Any, expected: str) -> None:
    assert str(_info().round_price(price, rounding=rounding)) == expected


def test_round_price_bounds() -> None:
    with pytest.raises(ParameterError, match="minPrice"):
        _info().round_price("0.009")
    with pytest.raises(ParameterError, match="maxPrice"):
        _info().round_price("1000001")
    with pytest.raises(ParameterError, match="rounding"):
        _info().round_price("1", rounding="sideways")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="price"):
        _info().round_price(math.nan)


def test_round_quantity_down_never_up_and_bounds() -> None:
    info = _info()
    assert str(info.round_quantity("0.123456789")) == "0.12345"
    assert str(info.round_quantity("0.123456789", rounding="up")) == "0.12346"
    with pytest.raises(ParameterError, match="minQty"):
        info.round_quantity("0.000009")  # rounds down to nothing
    with pytest.raises(ParameterError, match="maxQty"):
        info.round_quantity("9000.5")
    # MARKET orders also pass MARKET_LOT_SIZE (max 100 here; its zero step leaves the value).
    assert str(info.round_quantity("99.999999", market=True)) == "99.99999"
    with pytest.raises(ParameterError, match="maxQty"):
        info.round_quantity("150", market=True)


def test_check_notional() -> None:
    info = _info()
    assert info.check_notional("100", "0.05") == Decimal(5)
    with pytest.raises(ParameterError, match="minNotional"):
        info.check_notional("100", "0.04")
    with pytest.raises(ParameterError, match="maxNotional"):
        info.check_notional("1000000", "10")
    # maxNotional does not apply to MARKET orders here (applyMaxToMarket false).
    assert info.check_notional("1000000", "10", market=True) == Decimal(10_000_000)
    legacy = _info(LEGACY)
    assert legacy.check_notional("0.0001", "1", market=True) == Decimal("0.0001")
    with pytest.raises(ParameterError, match="minNotional"):
        legacy.check_notional("0.0001", "1")


def test_no_filters_leave_values_alone() -> None:
    bare = SymbolInfo(symbol="X")
    assert bare.round_price("1.23456") == Decimal("1.23456")
    assert bare.round_quantity(0.3) == Decimal("0.3")
    assert bare.check_notional("1", "1") == Decimal(1)


@given(
    st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(9000), places=12),
    st.sampled_from(["down", "up", "nearest"]),
)
def test_rounded_quantity_is_on_the_step_and_within_one_step(value: Decimal, rounding: Any) -> None:
    info = _info()
    result = info.round_quantity(value, rounding=rounding)
    step = Decimal("0.00001")
    assert (result - Decimal("0.00001")) % step == 0
    assert abs(result - value) < step
    if rounding == "down":
        assert result <= value
    elif rounding == "up":
        assert result >= value


def test_cache_keeps_rules_for_max_age() -> None:
    rules = SymbolRules(max_age=60.0)
    info = _info()
    assert rules.get("BTCUSDT", 0.0) is None
    rules.store([info], 100.0)
    assert rules.get("BTCUSDT", 159.9) is info
    assert rules.get("BTCUSDT", 160.0) is None
    rules.clear()
    assert rules.get("BTCUSDT", 100.0) is None
    with pytest.raises(ParameterError):
        SymbolRules(max_age=0)


# Requests (recording transport)


async def test_get_exchange_info_one_and_several_symbols() -> None:
    api = Recorder({"symbols": [BTCUSDT]}, {"symbols": [BTCUSDT, LEGACY]})
    info = await api.get_exchange_info("BTCUSDT")
    assert info.symbols[0].symbol == "BTCUSDT"
    await api.get_exchange_info(["BTCUSDT", "ETHBTC"])
    assert api.calls[0].endpoint is EXCHANGE_INFO
    assert api.calls[0].params == [("symbol", "BTCUSDT")]
    assert api.calls[1].params == [("symbols", '["BTCUSDT","ETHBTC"]')]
    with pytest.raises(ParameterError):
        await api.get_exchange_info([])


async def test_get_exchange_info_bad_body_is_invalid_response() -> None:
    with pytest.raises(InvalidResponse):
        await Recorder([]).get_exchange_info()


async def test_get_symbol_info_unknown_symbol() -> None:
    with pytest.raises(ParameterError, match="not listed"):
        await Recorder({"symbols": []}).get_symbol_info("NOPE")


async def test_new_order_round_true_rounds_and_checks_before_sending() -> None:
    api = Recorder({"symbols": [LEGACY]}, ORDER)
    await api.new_order(
        "ETHBTC", "BUY", "LIMIT", quantity=0.1 + 0.2, price=0.0512345678, time_in_force="GTC",
        round=True,
    )  # fmt: skip
    params = dict(api.calls[1].params)
    assert params["quantity"] == "0.3"
    assert params["price"] == "0.05123"
    # Below the minimum notional after rounding: refused before anything is sent.
    api = Recorder({"symbols": [LEGACY]})
    with pytest.raises(ParameterError, match="minNotional"):
        await api.new_order(
            "ETHBTC", "BUY", "LIMIT", quantity="0.1", price="0.001", time_in_force="GTC",
            round=True,
        )  # fmt: skip
    assert [call.endpoint for call in api.calls] == [EXCHANGE_INFO]


async def test_new_order_without_round_sends_what_it_is_given() -> None:
    api = Recorder(ORDER)
    await api.new_order(
        "ETHBTC", "BUY", "LIMIT", quantity=0.1 + 0.2, price="1", time_in_force="GTC"
    )
    assert dict(api.params)["quantity"] == "0.30000000000000004"


async def test_cancel_replace_order_params() -> None:
    api = Recorder(
        {
            "cancelResult": "SUCCESS",
            "newOrderResult": "SUCCESS",
            "cancelResponse": {"symbol": "BTCUSDT", "orderId": 1, "status": "CANCELED"},
            "newOrderResponse": {"symbol": "BTCUSDT", "orderId": 2, "status": "NEW"},
        }
    )
    result = await api.cancel_replace_order(
        "BTCUSDT",
        "BUY",
        "LIMIT",
        cancel_replace_mode="STOP_ON_FAILURE",
        cancel_order_id=1,
        quantity="0.01",
        price="30000",
        time_in_force="GTC",
        new_client_order_id="mine-2",
    )
    assert result.cancel_result == "SUCCESS"
    assert result.cancel_response is not None and result.cancel_response.order_id == 1
    assert result.new_order_response is not None and result.new_order_response.order_id == 2
    (call,) = api.calls
    assert call.endpoint.path == "/api/v3/order/cancelReplace"
    assert call.client_order_id == "mine-2"
    params = dict(call.params)
    assert params["cancelReplaceMode"] == "STOP_ON_FAILURE"
    assert params["cancelOrderId"] == "1"
    assert params["newClientOrderId"] == "mine-2"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"cancel_replace_mode": "MAYBE", "cancel_order_id": 1}, "cancel_replace_mode"),
        ({"cancel_replace_mode": "ALLOW_FAILURE"}, "cancel_order_id"),
        (
            {
                "cancel_replace_mode": "ALLOW_FAILURE",
                "cancel_order_id": 1,
                "cancel_restrictions": "X",
            },
            "cancel_restrictions",
        ),
        (
            {"cancel_replace_mode": "ALLOW_FAILURE", "cancel_order_id": 1, "price": "1"},
            "time_in_force",
        ),
    ],
)
async def test_cancel_replace_order_rejects_bad_input(kwargs: dict[str, Any], name: str) -> None:
    api = Recorder()
    with pytest.raises(ParameterError) as info:
        await api.cancel_replace_order("BTCUSDT", "BUY", "LIMIT", quantity="1", **kwargs)
    assert info.value.param == name
    assert api.calls == []
