"""A foreign client against FakeExchange: python-binance's ``AsyncClient``, unchanged but for its
URLs (a subclass that only sets the REST and WebSocket API base URLs).

It checks that the fake serves what another library needs, in Binance's wire format:
``create()`` (``ping`` and ``time``), ``exchangeInfo``, the margin account, a borrow, a margin
order and its ``executionReport`` through python-binance's margin socket (a listen token from
``POST /sapi/v1/userListenToken`` subscribed on the WebSocket API), a special key's orders on
``/api/v3`` and the WebSocket API signed by python-binance, and ccxt's markets, margin balance,
borrow and margin order. No network: only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import decimal
from decimal import Decimal
from typing import Any

import pytest

from binance_margin_async.testing import FakeExchange

binance = pytest.importorskip("binance", reason="python-binance is a dev dependency")


def python_binance_client(exchange: FakeExchange) -> type[Any]:
    """python-binance's AsyncClient with the fake's URLs; nothing else differs."""
    return type(
        "FakeAsyncClient",
        (binance.AsyncClient,),
        {
            "API_URL": exchange.rest_url + "/api",
            "MARGIN_API_URL": exchange.rest_url + "/sapi",
            "WS_API_URL": exchange.ws_api_url,
        },
    )


async def test_python_binance_trades_margin_against_the_fake() -> None:
    exchange = FakeExchange(seed=11)
    await exchange.start()
    try:
        creds = exchange.add_account(margin_balances={"USDT": "10000"})
        client = await python_binance_client(exchange).create(creds.api_key, creds.api_secret)
        try:
            info = await client.get_symbol_info("BTCUSDT")
            assert info is not None and info["isMarginTradingAllowed"] is True
            account = await client.get_margin_account()
            usdt = next(a for a in account["userAssets"] if a["asset"] == "USDT")
            assert Decimal(usdt["free"]) == 10000
            loan = await client.margin_borrow_repay(
                asset="BTC", amount="0.01", isIsolated="FALSE", type="BORROW"
            )
            assert isinstance(loan["tranId"], int)
            assert exchange.ledger.balance(creds.account_id, "BTC").borrowed == Decimal("0.01")
            manager = binance.BinanceSocketManager(client)
            async with manager.margin_socket() as socket:
                order = await client.create_margin_order(
                    symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01"
                )
                assert order["status"] == "FILLED"
                reports: list[dict[str, Any]] = []
                while not reports or reports[-1]["X"] != "FILLED":
                    event = await asyncio.wait_for(socket.recv(), 10)
                    if event["e"] == "executionReport":
                        reports.append(event)
            assert [r["i"] for r in reports] == [order["orderId"]] * len(reports)
            assert (reports[0]["x"], reports[-1]["x"]) == ("NEW", "TRADE")
        finally:
            # python-binance's close waits for its WebSocket API read loop, which only looks up
            # between frames or after a 10 s receive timeout: the server closing the connection
            # (as Binance does at its 24 h cut) ends that wait at once.
            closing = asyncio.create_task(client.close_connection())
            await exchange.close()
            await closing
    finally:
        await exchange.close()


async def test_python_binance_trades_with_a_special_key_on_api_v3_and_the_ws_api() -> None:
    """python-binance signs the Spot REST API and the WebSocket API (parameters sorted by name)
    its own way: a special key's orders go through both, against the margin account."""
    exchange = FakeExchange(seed=13)
    await exchange.start()
    try:
        creds = exchange.add_account(margin_balances={"USDT": "10000", "BTC": "1"})
        async with exchange.client(creds) as ours:
            key = await ours.create_special_key("python-binance")
        client = await python_binance_client(exchange).create(key.api_key, key.secret_key)
        try:
            resting = await client.create_order(
                symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                quantity="0.01", price="59000",
            )  # fmt: skip
            assert (resting["status"], resting["orderListId"]) == ("NEW", -1)
            taken = await client.ws_create_order(
                symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.001"
            )
            assert taken["status"] == "FILLED" and taken["fills"][0]["price"] == "60000.00000000"
            status = await client.ws_get_order(symbol="BTCUSDT", orderId=resting["orderId"])
            assert status["isWorking"] is True
            canceled = await client.ws_cancel_order(symbol="BTCUSDT", orderId=resting["orderId"])
            assert canceled["status"] == "CANCELED"
            assert exchange.ledger.balance(creds.account_id, "BTC").free == Decimal("0.999")
        finally:
            closing = asyncio.create_task(client.close_connection())
            await exchange.close()
            await closing
    finally:
        await exchange.close()


async def test_ccxt_loads_the_fakes_markets_and_trades_margin() -> None:
    ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a dev dependency")
    # ccxt sets the thread's decimal context (ROUND_HALF_UP, Underflow trap): keep that change
    # away from every other test.
    with decimal.localcontext():
        async with FakeExchange(seed=12) as exchange:
            creds = exchange.add_account(margin_balances={"USDT": "10000"})
            client = ccxt.binance(
                {
                    "apiKey": creds.api_key,
                    "secret": creds.api_secret,
                    # Only the venues the fake serves: no futures markets, no wallet currencies.
                    "options": {"fetchMarkets": ["spot"], "fetchCurrencies": False},
                }
            )
            api = client.urls["api"]
            for name, url in list(api.items()):
                if isinstance(url, str) and url.startswith("https://api.binance.com/"):
                    api[name] = exchange.rest_url + url.removeprefix("https://api.binance.com")
            try:
                markets = await client.load_markets()
                btc = markets["BTC/USDT"]  # parsed from the fake's exchangeInfo filters
                assert (btc["precision"]["price"], btc["precision"]["amount"]) == (0.01, 0.00001)
                assert btc["limits"]["cost"]["min"] == 5
                balance = await client.fetch_balance({"type": "margin"})
                assert balance["USDT"]["free"] == 10000
                loan = await client.borrow_cross_margin("BTC", 0.01)
                assert loan["info"]["tranId"] > 0
                order = await client.create_order(
                    "BTC/USDT", "market", "sell", 0.01, params={"marginMode": "cross"}
                )
                assert (order["status"], order["filled"]) == ("closed", 0.01)
                assert exchange.ledger.balance(creds.account_id, "BTC").free == 0
            finally:
                await client.close()
