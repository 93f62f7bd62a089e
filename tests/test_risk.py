"""The price-aware margin level: pure valuation, and the estimate against the fake's own level."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

from binance_margin_async.errors import ParameterError
from binance_margin_async.mirror import AccountMirror, AssetBalance
from binance_margin_async.models import MarginLevelStatus
from binance_margin_async.risk import (
    CROSS_BANDS,
    NO_DEBT_LEVEL,
    MarginLevelEstimate,
    PriceBook,
    PriceIndexPoller,
    RiskEstimator,
    value_account,
)
from binance_margin_async.testing import FakeExchange

D = Decimal
PAIRS = [
    ("BTCUSDT", "BTC", "USDT"),
    ("ETHUSDT", "ETH", "USDT"),
    ("BNBUSDT", "BNB", "USDT"),
    ("ETHBTC", "ETH", "BTC"),
]


def book(**prices: str) -> PriceBook:
    result = PriceBook(PAIRS)
    for symbol, price in prices.items():
        result.update(symbol, D(price), 1)
    return result


def bal(asset: str, held: str, owed: str = "0") -> AssetBalance:
    return AssetBalance(asset, D(held), D(0), D(owed), D(0))


@pytest.mark.parametrize(
    ("level", "status"),
    [
        ("2", "EXCESSIVE"),
        ("1.99", "NORMAL"),
        ("1.5", "NORMAL"),
        ("1.4999", "MARGIN_CALL"),
        ("1.25", "MARGIN_CALL"),
        ("1.2", "PRE_LIQUIDATION"),
        ("1.1", "PRE_LIQUIDATION"),
        ("1.09", "FORCE_LIQUIDATION"),
    ],
)
def test_cross_bands_follow_binance(level: str, status: str) -> None:
    assert CROSS_BANDS.status(D(level)) == status


def test_price_book_values_along_the_shortest_chain_and_reports_the_oldest_price() -> None:
    prices = PriceBook(PAIRS)
    assert prices.path("BNB", "BTC") == ("BNBUSDT", "BTCUSDT")
    assert prices.path("USDT", "USDT") == ()
    assert prices.rate("BNB", "BTC") is None  # not priced yet
    prices.update("BNBUSDT", D("600"), 5)
    prices.update("BTCUSDT", D("60000"), 7)
    prices.update("BTCUSDT", D("1"), 6)  # older: ignored
    assert prices.rate("BNB", "BTC") == (D("0.01"), 5)
    assert prices.rate("USDT", "BTC") == (D(1) / D(60000), 7)
    with pytest.raises(ParameterError, match="FOOUSDT"):
        prices.update("FOOUSDT", D(1), 1)


def test_valuation_level_and_the_prices_of_the_next_bands() -> None:
    prices = book(BTCUSDT="60000")
    # 0.5 BTC bought with 20,000 borrowed USDT on top of 10,000 own: A = 40,000, L = 20,000.
    balances = {"BTC": bal("BTC", "0.5"), "USDT": bal("USDT", "10000", "20000")}
    valued = value_account("CROSS", balances, prices, quote="USDT", bands=CROSS_BANDS)
    assert valued is not None
    assert (valued.total_asset, valued.total_liability, valued.net) == (
        D(40000),
        D(20000),
        D(20000),
    )
    assert valued.level == 2 and valued.status == MarginLevelStatus.EXCESSIVE
    exposure = valued.exposure
    assert exposure is not None and exposure.asset == "BTC" and exposure.price == 60000
    assert exposure.margin_call is not None and exposure.force_liquidation is not None
    # At those prices the level is exactly the threshold.
    for price, threshold in (
        (exposure.margin_call, D("1.5")),
        (exposure.force_liquidation, D("1.1")),
    ):
        at = book(BTCUSDT=str(price))
        again = value_account("CROSS", balances, at, quote="USDT", bands=CROSS_BANDS)
        assert again is not None and again.level == threshold
    assert exposure.force_liquidation < exposure.margin_call < 60000


def test_no_debt_is_999_and_unknown_liabilities_or_prices_give_no_estimate() -> None:
    prices = book(BTCUSDT="60000")
    free = {"BTC": bal("BTC", "1"), "USDT": bal("USDT", "5")}
    valued = value_account("CROSS", free, prices, quote="USDT", bands=CROSS_BANDS)
    assert valued is not None and valued.level == NO_DEBT_LEVEL
    assert valued.exposure is not None and valued.exposure.margin_call is None
    unknown = {"BTC": AssetBalance("BTC", D(1), D(0), None, None)}
    assert value_account("CROSS", unknown, prices, quote="USDT", bands=CROSS_BANDS) is None
    unpriced = {"ETH": bal("ETH", "1", "0.1")}
    assert value_account("CROSS", unpriced, prices, quote="USDT", bands=CROSS_BANDS) is None


def test_estimator_reports_each_status_change_once() -> None:
    mirror = AccountMirror()
    mirror.load_cross_snapshot(
        {
            "marginLevel": "2",
            "userAssets": [
                {"asset": "BTC", "free": "0.5", "locked": "0", "borrowed": "0", "interest": "0"},
                {"asset": "USDT", "free": "10000", "locked": "0", "borrowed": "20000",
                 "interest": "0"},
                {"asset": "BNB", "free": "0", "locked": "0", "borrowed": "0", "interest": "0"},
            ],
        }
    )  # fmt: skip
    prices = PriceBook(PAIRS)
    estimator = RiskEstimator(mirror, prices)
    assert estimator.symbols_needed() == ["BTCUSDT"]  # not BNBUSDT: none held or owed
    assert estimator.update(1) == []  # no price yet
    prices.update("BTCUSDT", D("60000"), 10)
    first = estimator.update(11)
    assert [(e.status, e.previous, e.event_time) for e in first] == [("EXCESSIVE", None, 10)]
    prices.update("BTCUSDT", D("59000"), 12)
    assert [e.status for e in estimator.update(13)] == ["NORMAL"]
    prices.update("BTCUSDT", D("58000"), 14)
    assert estimator.update(15) == []  # still NORMAL
    prices.update("BTCUSDT", D("30000"), 16)
    (call,) = estimator.update(17)
    assert (call.status, call.previous) == ("MARGIN_CALL", "NORMAL")
    assert call.margin_level == D(25000) / D(20000)


async def _estimate_matches_the_fake(
    ex: FakeExchange, account_id: str, estimator: RiskEstimator, poller: PriceIndexPoller
) -> None:
    await poller.poll_once()
    for account in ("CROSS", "ETHUSDT"):
        valued = estimator.valuation(account)
        assert valued is not None, account
        symbol = None if account == "CROSS" else account
        expected = ex.ledger.margin_level(account_id, symbol=symbol)
        assert abs(valued.level - expected) <= expected * D("1e-20"), (account, valued.level)
        assert valued.status == ex.ledger.margin_level_status(account_id, symbol=symbol)


async def test_estimate_equals_the_fake_exchange_level_over_a_random_price_walk() -> None:
    rng = random.Random(2026)
    async with FakeExchange(seed=3) as ex:
        creds = ex.add_account(
            margin_balances={"USDT": "12000", "BNB": "5"}, isolated={"ETHUSDT": {"USDT": "3000"}}
        )
        async with ex.client(creds) as client:
            await client.borrow("USDT", "10000")
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.3")
            await client.borrow("USDT", "6000", symbol="ETHUSDT")
            await client.new_order("ETHUSDT", "BUY", "MARKET", quantity="2.5", is_isolated=True)
            pairs = [
                (p.symbol, p.base, p.quote)
                for p in await client.get_all_pairs()
                if p.symbol and p.base and p.quote
            ]
            mirror = AccountMirror()
            estimator = RiskEstimator(
                mirror, PriceBook(pairs), isolated_pairs={"ETHUSDT": ("ETH", "USDT")}
            )
            poller = PriceIndexPoller(client, estimator, interval=1)
            seen: list[MarginLevelEstimate] = []
            poller.on(seen.append)
            statuses: set[tuple[str, str]] = set()
            for step in range(40):
                # Keep the fake's own cross rate (ETHBTC) consistent with ETHUSDT / BTCUSDT, so
                # that valuing in USDT and the fake's valuing in BTC agree.
                btc = D(rng.randrange(30, 75) * 1000)
                eth_btc = D(rng.randrange(3000, 6000)) / D(100_000)
                ex.set_price("BTCUSDT", btc)
                ex.set_price("ETHBTC", eth_btc)
                ex.set_price("ETHUSDT", eth_btc * btc)
                ex.set_price("BNBUSDT", D(rng.randrange(30_000, 90_000)) / 100)
                if step % 10 == 5:  # the balances move too
                    await client.new_order("BTCUSDT", "SELL", "MARKET", quantity="0.01")
                mirror.load_cross_snapshot(await client.get_account())
                mirror.load_isolated_snapshot(await client.get_isolated_account())
                await _estimate_matches_the_fake(ex, creds.account_id, estimator, poller)
                statuses.update((e.account, e.status) for e in seen)
    # The walk crossed bands on both accounts, and each change was reported as an event.
    assert len({status for account, status in statuses if account == "CROSS"}) >= 2
    assert len({status for account, status in statuses if account == "ETHUSDT"}) >= 2
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
