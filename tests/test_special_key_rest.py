"""REST with a margin special key: orders on the spot /api/v3 routes, pools and weights."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest
from aioresponses import aioresponses

from binance_margin_async import MarginClient, ParameterError, RateLimiter
from binance_margin_async._special import spot_params
from binance_margin_async.ratelimit import API_IP_KEY, ORDERS_KEY

BASE = "https://api.test"
KEY = "special-key-0123456789"
SECRET = "special-secret"
ORDER = {"symbol": "BTCUSDT", "orderId": 5, "clientOrderId": "c1", "status": "NEW"}


def _url(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(BASE + path) + r"(\?.*)?$")


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        m.get(_url("/api/v3/time"), payload={"serverTime": int(time.time() * 1000)}, repeat=True)
        yield m


def _queries(m: aioresponses, method: str, path: str) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(url.query_string))
        for (verb, url), calls in m.requests.items()
        if verb == method and url.path == path
        for _ in calls
    ]


async def test_orders_go_to_api_v3_without_is_isolated(mocked: aioresponses) -> None:
    mocked.post(_url("/api/v3/order"), payload=ORDER)
    mocked.delete(_url("/api/v3/order"), payload=ORDER)
    mocked.get(_url("/api/v3/openOrders"), payload=[ORDER])
    mocked.post(_url("/api/v3/orderList/oco"), payload={"orderListId": 1})
    limiter = RateLimiter()
    async with MarginClient(
        KEY, SECRET, base_url=BASE, limiter=limiter, special_key=True
    ) as client:
        assert client.special_key
        order = await client.new_order(
            "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="100", time_in_force="GTC",
            is_isolated=True,
        )  # fmt: skip
        assert order.order_id == 5
        await client.cancel_order("BTCUSDT", order_id=5, is_isolated=True)
        assert len(await client.get_open_orders("BTCUSDT")) == 1
        await client.new_oco("BTCUSDT", "SELL", "1", "30000", "25000")
        usage = limiter.usage(account=client.account)
    (placed,) = _queries(mocked, "POST", "/api/v3/order")
    assert "isIsolated" not in placed and placed["symbol"] == "BTCUSDT"
    assert "signature" in placed and "timestamp" in placed
    assert "isIsolated" not in _queries(mocked, "DELETE", "/api/v3/order")[0]
    assert not any(path.startswith("/sapi") for (_, url) in mocked.requests for path in [url.path])
    # Spot weights on the shared /api pool: time 1 + order 1 + cancel 1 + openOrders 6 + oco 1;
    # the order and the OCO took one order count each.
    assert usage[API_IP_KEY] == 10
    assert usage[f"{ORDERS_KEY}:10S"] == 2


async def test_cancel_replace_needs_the_special_key(mocked: aioresponses) -> None:
    mocked.post(
        _url("/api/v3/order/cancelReplace"),
        payload={"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS"},
    )
    kwargs = {"cancel_replace_mode": "STOP_ON_FAILURE", "cancel_order_id": 1, "quantity": "1"}
    async with MarginClient(KEY, SECRET, base_url=BASE) as client:
        with pytest.raises(ParameterError) as info:
            await client.cancel_replace_order("BTCUSDT", "SELL", "MARKET", **kwargs)  # type: ignore[arg-type]
        assert info.value.param == "special_key"
    async with MarginClient(KEY, SECRET, base_url=BASE, special_key=True) as client:
        result = await client.cancel_replace_order("BTCUSDT", "SELL", "MARKET", **kwargs)  # type: ignore[arg-type]
    assert result.new_order_result == "SUCCESS"
    (query,) = _queries(mocked, "POST", "/api/v3/order/cancelReplace")
    assert query["cancelReplaceMode"] == "STOP_ON_FAILURE" and query["type"] == "MARKET"


async def test_exchange_info_is_cached_until_refresh(mocked: aioresponses) -> None:
    info = {"symbols": [{"symbol": "BTCUSDT", "filters": []}]}
    mocked.get(_url("/api/v3/exchangeInfo"), payload=info, repeat=True)
    async with MarginClient(KEY, SECRET, base_url=BASE, symbol_rules_max_age=60.0) as client:
        first = await client.get_symbol_info("BTCUSDT")
        assert await client.get_symbol_info("BTCUSDT") is first
        await client.get_symbol_info("BTCUSDT", refresh=True)
    assert len(_queries(mocked, "GET", "/api/v3/exchangeInfo")) == 2


def test_special_key_must_be_a_bool() -> None:
    with pytest.raises(ParameterError):
        MarginClient(KEY, SECRET, special_key="yes")  # type: ignore[arg-type]


# The spot request shapes (pure)


def test_spot_params_drop_is_isolated() -> None:
    params = [("symbol", "BTCUSDT"), ("isIsolated", "TRUE"), ("side", "BUY")]
    assert spot_params("new_order", params) == [("symbol", "BTCUSDT"), ("side", "BUY")]


def test_spot_oco_sell_limit_above_stop_limit_below() -> None:
    margin = [
        ("symbol", "BTCUSDT"), ("listClientOrderId", "L"), ("side", "SELL"), ("quantity", "1"),
        ("limitClientOrderId", "A"), ("price", "65000"), ("limitIcebergQty", "0.1"),
        ("stopClientOrderId", "B"), ("stopPrice", "55000"), ("stopLimitPrice", "54900"),
        ("stopIcebergQty", "0.2"), ("stopLimitTimeInForce", "GTC"),
        ("sideEffectType", "AUTO_REPAY"),
    ]  # fmt: skip
    assert dict(spot_params("new_oco", margin)) == {
        "symbol": "BTCUSDT", "listClientOrderId": "L", "side": "SELL", "quantity": "1",
        "aboveType": "LIMIT_MAKER", "belowType": "STOP_LOSS_LIMIT",
        "aboveClientOrderId": "A", "abovePrice": "65000", "aboveIcebergQty": "0.1",
        "belowClientOrderId": "B", "belowStopPrice": "55000", "belowPrice": "54900",
        "belowIcebergQty": "0.2", "belowTimeInForce": "GTC", "sideEffectType": "AUTO_REPAY",
    }  # fmt: skip


def test_spot_oco_buy_stop_above_limit_below() -> None:
    margin = [("symbol", "BTCUSDT"), ("side", "BUY"), ("quantity", "1"), ("price", "50000"),
              ("stopPrice", "60000")]  # fmt: skip
    assert dict(spot_params("new_oco", margin)) == {
        "symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "belowType": "LIMIT_MAKER",
        "aboveType": "STOP_LOSS", "belowPrice": "50000", "aboveStopPrice": "60000",
    }  # fmt: skip


async def test_rest_oco_goes_out_above_below(mocked: aioresponses) -> None:
    mocked.post(_url("/api/v3/orderList/oco"), payload={"orderListId": 3})
    async with MarginClient(KEY, SECRET, base_url=BASE, special_key=True) as client:
        result = await client.new_oco("BTCUSDT", "SELL", "1", "65000", "55000", is_isolated=True)
    assert result.order_list_id == 3
    (query,) = _queries(mocked, "POST", "/api/v3/orderList/oco")
    assert query["aboveType"] == "LIMIT_MAKER" and query["belowType"] == "STOP_LOSS"
    assert "isIsolated" not in query and "stopPrice" not in query
