"""REST with a margin special key: orders on the spot /api/v3 routes, pools and weights."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_rest_shell import LocalServer

from binance_margin_async import MarginClient, ParameterError, RateLimiter
from binance_margin_async._special import spot_params
from binance_margin_async.ratelimit import API_IP_KEY, ORDERS_KEY

KEY = "special-key-0123456789"
SECRET = "special-secret"
ORDER = {"symbol": "BTCUSDT", "orderId": 5, "clientOrderId": "c1", "status": "NEW"}


@pytest.fixture
async def srv() -> AsyncIterator[LocalServer]:
    """A local HTTP server on 127.0.0.1 answering canned replies (and the server time)."""
    async with LocalServer() as server:
        server.time_ok()
        yield server


def _queries(server: LocalServer, method: str, path: str) -> list[dict[str, str]]:
    return [seen.params for seen in server.calls(method, path)]


async def test_orders_go_to_api_v3_without_is_isolated(srv: LocalServer) -> None:
    srv.reply("POST", "/api/v3/order", ORDER)
    srv.reply("DELETE", "/api/v3/order", ORDER)
    srv.reply("GET", "/api/v3/openOrders", [ORDER])
    srv.reply("POST", "/api/v3/orderList/oco", {"orderListId": 1})
    limiter = RateLimiter()
    async with MarginClient(
        KEY, SECRET, base_url=srv.url, limiter=limiter, special_key=True
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
    (placed,) = _queries(srv, "POST", "/api/v3/order")
    assert "isIsolated" not in placed and placed["symbol"] == "BTCUSDT"
    assert "signature" in placed and "timestamp" in placed
    assert "isIsolated" not in _queries(srv, "DELETE", "/api/v3/order")[0]
    assert not any(seen.path.startswith("/sapi") for seen in srv.seen)
    # Spot weights on the shared /api pool: time 1 + order 1 + cancel 1 + openOrders 6 + oco 1;
    # the order took one order count and the OCO two (Binance counts both of its orders).
    assert usage[API_IP_KEY] == 10
    assert usage[f"{ORDERS_KEY}:10S"] == 3


async def test_cancel_replace_needs_the_special_key(srv: LocalServer) -> None:
    srv.reply(
        "POST",
        "/api/v3/order/cancelReplace",
        {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS"},
    )
    kwargs = {"cancel_replace_mode": "STOP_ON_FAILURE", "cancel_order_id": 1, "quantity": "1"}
    async with MarginClient(KEY, SECRET, base_url=srv.url) as client:
        with pytest.raises(ParameterError) as info:
            await client.cancel_replace_order("BTCUSDT", "SELL", "MARKET", **kwargs)  # type: ignore[arg-type]
        assert info.value.param == "special_key"
    async with MarginClient(KEY, SECRET, base_url=srv.url, special_key=True) as client:
        result = await client.cancel_replace_order("BTCUSDT", "SELL", "MARKET", **kwargs)  # type: ignore[arg-type]
    assert result.new_order_result == "SUCCESS"
    (query,) = _queries(srv, "POST", "/api/v3/order/cancelReplace")
    assert query["cancelReplaceMode"] == "STOP_ON_FAILURE" and query["type"] == "MARKET"


async def test_exchange_info_is_cached_until_refresh(srv: LocalServer) -> None:
    info = {"symbols": [{"symbol": "BTCUSDT", "filters": []}]}
    srv.reply("GET", "/api/v3/exchangeInfo", info)
    async with MarginClient(KEY, SECRET, base_url=srv.url, symbol_rules_max_age=60.0) as client:
        first = await client.get_symbol_info("BTCUSDT")
        assert await client.get_symbol_info("BTCUSDT") is first
        await client.get_symbol_info("BTCUSDT", refresh=True)
    assert len(_queries(srv, "GET", "/api/v3/exchangeInfo")) == 2


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


async def test_rest_oco_goes_out_above_below(srv: LocalServer) -> None:
    srv.reply("POST", "/api/v3/orderList/oco", {"orderListId": 3})
    async with MarginClient(KEY, SECRET, base_url=srv.url, special_key=True) as client:
        result = await client.new_oco("BTCUSDT", "SELL", "1", "65000", "55000", is_isolated=True)
    assert result.order_list_id == 3
    (query,) = _queries(srv, "POST", "/api/v3/orderList/oco")
    assert query["aboveType"] == "LIMIT_MAKER" and query["belowType"] == "STOP_LOSS"
    assert "isIsolated" not in query and "stopPrice" not in query
