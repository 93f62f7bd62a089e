"""A foreign client against FakeExchange: python-binance's ``AsyncClient``, unchanged but for its
URLs (a subclass that only sets the REST and WebSocket API base URLs).

It checks that the fake serves what another library needs, in Binance's wire format:
``create()`` (``ping`` and ``time``), ``exchangeInfo``, the margin account, a borrow, a margin
order and its ``executionReport`` through python-binance's margin socket (a listen token from
``POST /sapi/v1/userListenToken`` subscribed on the WebSocket API). No network: only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
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


async def test_ccxt_loads_the_fakes_markets_and_trades_margin() -> None:
    ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a dev dependency")
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
