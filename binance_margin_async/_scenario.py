"""The market ``monitor --fake`` shows: a leveraged account through a margin call and back.

One cycle, in scenario time (the clock runs ``speed`` times faster than real time):

1. cross: borrow 15,000 USDT and buy 0.4 BTC at 60,000 (margin level 1.67, ``NORMAL``); rest a
   limit BUY below and a limit SELL above the market; isolated ETHUSDT: borrow 3,000 USDT and
   buy 1.3 ETH (level 1.33);
2. BTC walks down to 50,000 and ETH with it to 2,650: both accounts enter ``MARGIN_CALL``
   (cross below 1.5, isolated below 1.2) and the resting BUY fills;
3. it stays there a while, then walks back up to 62,000: the resting SELL fills, both recover;
4. de-risk: cancel what still rests, sell every BTC and ETH with ``AUTO_REPAY``, repay what is
   left. The account ends each cycle debt-free with more USDT than it started with (it bought
   low and sold high), so the scenario runs forever without exhausting it.

Every step is a real request through the client to the fake exchange; an error is reported to
``say`` and the cycle goes on from the de-risk step, never silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Final

from .errors import BinanceError
from .rest import MarginClient
from .testing import FakeExchange

__all__ = ["CROSS_FUNDS", "ISOLATED_FUNDS", "Scenario"]

CROSS_FUNDS: Final = {"USDT": "10000"}
ISOLATED_FUNDS: Final = {"ETHUSDT": {"USDT": "1000"}}
_TOP: Final = Decimal(60000)
_BOTTOM: Final = Decimal(50000)
_HIGH: Final = Decimal(62000)
_STEP: Final = Decimal(500)
_ETH_PER_BTC_DOLLAR: Final = Decimal("0.035")  # ETH moves 35 USDT per 1,000 USDT of BTC


def eth_price(btc: Decimal) -> Decimal:
    """ETH follows BTC: 3,000 at 60,000, 2,650 at 50,000."""
    return Decimal(3000) - (_TOP - btc) * _ETH_PER_BTC_DOLLAR


class Scenario:
    """Drives the fake market and one account through endless margin-call cycles.

    ``speed``: scenario seconds per real second. ``say``: where to report what happens.
    """

    def __init__(
        self,
        exchange: FakeExchange,
        client: MarginClient,
        *,
        speed: float = 1.0,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._ex = exchange
        self._client = client
        self._speed = speed
        self._say = say
        self.cycles = 0
        """Completed cycles."""
        self.elapsed = 0.0
        """Scenario seconds slept so far (the accelerated clock)."""

    async def _wait(self, seconds: float) -> None:
        self.elapsed += seconds
        await asyncio.sleep(seconds / self._speed)

    def _price(self, btc: Decimal) -> None:
        eth = eth_price(btc)
        self._ex.set_price("BTCUSDT", btc)
        self._ex.set_price("ETHUSDT", eth)
        # The fake values ETH in BTC through ETHBTC: keep it consistent with the two others.
        self._ex.set_price("ETHBTC", (eth / btc).quantize(Decimal("0.00001")))

    async def run(self) -> None:
        """Cycle forever (cancel the task to stop)."""
        while True:
            try:
                await self._cycle()
            except BinanceError as exc:
                self._say(f"scenario: {exc}; de-risking and starting over")
            try:
                await self._derisk()
            except BinanceError as exc:
                self._say(f"scenario: de-risking failed ({exc}); trying again")
                await self._wait(10)
                continue
            self.cycles += 1

    async def _cycle(self) -> None:
        client = self._client
        self._price(_TOP)
        self._say("scenario: borrow 15,000 USDT, buy 0.4 BTC; isolated: borrow 3,000, buy 1.3 ETH")
        await client.borrow("USDT", "15000")
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.4")
        await client.new_order(
            "BTCUSDT", "BUY", "LIMIT", quantity="0.015", price="55000", time_in_force="GTC"
        )
        await client.new_order(
            "BTCUSDT", "SELL", "LIMIT", quantity="0.02", price="61500", time_in_force="GTC"
        )
        await client.borrow("USDT", "3000", symbol="ETHUSDT")
        await client.new_order("ETHUSDT", "BUY", "MARKET", quantity="1.3", is_isolated=True)
        await self._wait(20)
        self._say("scenario: BTC falls towards 50,000 (ETH to 2,650): margin calls ahead")
        await self._walk(_TOP, _BOTTOM)
        await self._wait(60)
        self._say("scenario: BTC recovers to 62,000")
        await self._walk(_BOTTOM, _HIGH)
        await self._wait(30)

    async def _walk(self, start: Decimal, end: Decimal) -> None:
        step = _STEP if end > start else -_STEP
        price = start
        while price != end:
            price += step
            self._price(price)
            await self._wait(5)

    async def _derisk(self) -> None:
        """Cancel, sell everything with AUTO_REPAY, repay the rest: a debt-free account."""
        client = self._client
        self._say("scenario: de-risk: cancel, sell with AUTO_REPAY, repay every loan")
        for symbol, isolated in (("BTCUSDT", False), ("ETHUSDT", True)):
            if await client.get_open_orders(symbol, is_isolated=isolated):
                await client.cancel_open_orders(symbol, is_isolated=isolated)
        account = await client.get_account()
        btc = next((a.free for a in account.user_assets if a.asset == "BTC"), None) or 0
        btc = Decimal(btc).quantize(Decimal("0.00001"), ROUND_DOWN)
        if btc:
            await client.new_order(
                "BTCUSDT", "SELL", "MARKET", quantity=btc, side_effect_type="AUTO_REPAY"
            )
        for asset in (await client.get_account()).user_assets:
            owed = (asset.borrowed or 0) + (asset.interest or 0)
            if owed and asset.asset:
                await client.repay(asset.asset, owed)
        for pair in (await client.get_isolated_account(symbols=["ETHUSDT"])).assets:
            base = pair.base_asset
            eth = Decimal(base.free or 0) if base is not None else Decimal(0)
            eth = eth.quantize(Decimal("0.0001"), ROUND_DOWN)
            if eth:
                await client.new_order(
                    "ETHUSDT", "SELL", "MARKET", quantity=eth, side_effect_type="AUTO_REPAY",
                    is_isolated=True,
                )  # fmt: skip
        for pair in (await client.get_isolated_account(symbols=["ETHUSDT"])).assets:
            for side in (pair.base_asset, pair.quote_asset):
                if side is None or not side.asset:
                    continue
                owed = (side.borrowed or 0) + (side.interest or 0)
                if owed:
                    await client.repay(side.asset, owed, symbol="ETHUSDT")
        await self._wait(10)
