"""The per-account limiter against the fake exchange: pools keyed as Binance keys them.

* **3-account burst**: three clients (three accounts, one IP) share one ``RateLimiter`` and place
  50 orders each, every account within its own UID budget (25 orders per window). The fake keeps
  UID pools per account, so the burst needs 2 windows, not the 6 a limiter pooling the accounts
  took; it must end with 0 x 429 and 0 x 418. The elapsed time over the theoretical minimum is
  printed (and recorded as the ``accounts_burst_ratio`` report property), never asserted tightly.
* **Weight rules that depend on parameters**: ``openOrders`` without ``symbol`` costs the number of
  trading symbols, learned from ``allPairs``; ``max-leverage`` takes 1 request per window per IP.
* **Several IPs**: the fake keys IP pools by the client's source address; clients bound to
  127.0.0.2 and 127.0.0.3 (``TCPConnector(local_addr=...)``) each get a full IP budget.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
import pytest

from binance_margin_async import MarginClient, RateLimiter
from binance_margin_async.endpoints import ENDPOINTS
from binance_margin_async.errors import BinanceAPIError, ParameterError
from binance_margin_async.models import Order
from binance_margin_async.testing import FakeExchange, Ledger, SymbolSpec
from binance_margin_async.testing.ledger import DEFAULT_SYMBOLS

WINDOW = 1.0  # seconds, for the fake and the limiter alike
MARGIN = 0.25  # the limiter's default boundary margin
ORDER_WEIGHT = ENDPOINTS["new_order"].weight
UID_LIMIT = 25 * ORDER_WEIGHT  # 25 orders per window per account
ORDERS = 50  # per account: exactly two windows of its own budget
ACCOUNTS = 3
#: Every margin order of the burst: a market buy of the smallest BTC step the fake allows.
QUANTITY = "0.0001"

T = TypeVar("T")


async def _after_boundary() -> float:
    """Sleeps until just after the margin following the next window boundary; returns it."""
    boundary = (math.floor((time.time() + 2 * MARGIN) / WINDOW) + 1) * WINDOW
    await asyncio.sleep(max(0.0, boundary + MARGIN + 0.01 - time.time()))
    return boundary


async def _gather(*calls: Awaitable[T]) -> list[T | BaseException]:
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_three_accounts_sharing_one_limiter_each_get_their_full_uid_budget(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    async with FakeExchange(seed=8, window=WINDOW, sapi_uid_limit=UID_LIMIT) as exchange:
        limiter = RateLimiter(
            window=WINDOW,
            sapi_uid_limit=UID_LIMIT,
            critical_reserve=0.0,  # nothing critical in the burst: the whole budget is usable
            boundary_margin=MARGIN,
            max_wait=30.0,
        )
        accounts = [
            exchange.add_account(margin_balances={"USDT": "100000"}) for _ in range(ACCOUNTS)
        ]
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(exchange.client(creds, limiter=limiter))
                for creds in accounts
            ]
            assert len({client.account for client in clients}) == ACCOUNTS
            await asyncio.gather(*(client.sync_clock() for client in clients))
            boundary = await _after_boundary()
            started_at = time.time()
            started = time.perf_counter()
            results = await _gather(
                *(
                    client.new_order("BTCUSDT", "BUY", "MARKET", quantity=QUANTITY)
                    for _ in range(ORDERS)
                    for client in clients
                )
            )
            elapsed = time.perf_counter() - started

    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} failed, first: {failures[0]!r}"
    assert all(isinstance(r, Order) for r in results)
    stats = exchange.stats
    assert (stats.responses_429, stats.responses_418) == (0, 0)
    assert stats.requests_by_path["/sapi/v1/margin/order"] == ACCOUNTS * ORDERS
    # Binance's minimum: each account's total weight / its limit x window (= 2 windows).
    minimum = ORDERS * ORDER_WEIGHT / UID_LIMIT * WINDOW
    ratio = elapsed / minimum
    # With fixed windows the second window's budget opens one window after the first boundary.
    fixed_minimum = boundary + WINDOW - started_at
    request.node.user_properties.extend(
        [("accounts_burst_elapsed_s", round(elapsed, 3)), ("accounts_burst_ratio", round(ratio, 4))]
    )
    with capsys.disabled():
        print(
            f"\naccounts burst: {ACCOUNTS} accounts x {ORDERS} orders sharing one RateLimiter, "
            f"window {WINDOW:g} s, 0 x 429, 0 x 418; elapsed {elapsed:.2f} s; theoretical "
            f"minimum {minimum:.2f} s -> ratio {ratio:.3f}; fixed-window minimum "
            f"{fixed_minimum:.2f} s -> ratio {elapsed / fixed_minimum:.3f}"
        )
    # A sanity bound only: a limiter pooling the accounts needs 6 windows (the ratio shows it).
    assert elapsed < 10 * minimum


def _many_symbols(count: int) -> Ledger:
    extra = [
        SymbolSpec(f"C{i}USDT", f"C{i}", "USDT", Decimal("1"), Decimal("0.01"), Decimal("0.01"))
        for i in range(count - len(DEFAULT_SYMBOLS))
    ]
    return Ledger(symbols=[*DEFAULT_SYMBOLS, *extra], seed=9)


async def test_open_orders_without_symbol_are_charged_the_trading_symbols() -> None:
    # 15 symbols: each call without symbol costs 15 of the 100 per window, so 12 concurrent calls
    # need 2 windows; charged a flat 10 they went out at once and met a 429 and then a 418.
    symbols = 15
    async with FakeExchange(
        ledger=_many_symbols(symbols), window=WINDOW, sapi_ip_limit=100, ban_after_429s=1
    ) as exchange:
        creds = exchange.add_account(margin_balances={"USDT": "1000"})
        limiter = RateLimiter(window=WINDOW, sapi_ip_limit=100, critical_reserve=0.0, max_wait=30.0)
        async with exchange.client(creds, limiter=limiter) as client:
            # Until the count is known, the documented upper bound never fits this small budget.
            with pytest.raises(ParameterError):
                await client.get_open_orders()
            assert len(await client.get_all_pairs()) == symbols
            assert limiter.trading_symbols == symbols
            results = await _gather(*(client.get_open_orders() for _ in range(12)))
    assert [r for r in results if not isinstance(r, list)] == []
    stats = exchange.stats
    assert (stats.responses_429, stats.responses_418) == (0, 0)
    assert stats.requests_by_path["/sapi/v1/margin/openOrders"] == 12


async def test_max_leverage_waits_for_its_one_request_per_window_per_ip() -> None:
    # Two accounts on one IP: the second call's UID budget is its own, but the per-IP rule of
    # 1 request per window makes it wait for the next window instead of earning a 429.
    async with FakeExchange(seed=10, window=WINDOW, ban_after_429s=0) as exchange:
        limiter = RateLimiter(window=WINDOW, critical_reserve=0.0, max_wait=30.0)
        async with AsyncExitStack() as stack:
            clients: list[MarginClient] = [
                await stack.enter_async_context(
                    exchange.client(exchange.add_account(), limiter=limiter)
                )
                for _ in range(2)
            ]
            await asyncio.gather(*(client.sync_clock() for client in clients))
            results = await _gather(*(client.adjust_max_leverage(3) for client in clients))
    # The fake does not model leverage (-1020): what matters is that neither call was a 429.
    assert [r.code for r in results if isinstance(r, BinanceAPIError)] == [-1020, -1020]
    stats = exchange.stats
    assert (stats.responses_429, stats.responses_418) == (0, 0)
    assert stats.requests_by_path["/sapi/v1/margin/max-leverage"] == 2


async def test_clients_on_two_source_addresses_each_get_the_full_ip_budget() -> None:
    # The fake keys IP pools by the source address, as Binance does: each address has 100 per
    # window of get_account (weight 10), so 10 calls from each address fit in one window.
    async with FakeExchange(seed=11, window=WINDOW, sapi_ip_limit=100, ban_after_429s=0) as ex:
        creds = ex.add_account(margin_balances={"USDT": "1000"})
        async with AsyncExitStack() as stack:
            clients: list[MarginClient] = []
            for address in ("127.0.0.2", "127.0.0.3"):
                session = await stack.enter_async_context(
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
                )
                limiter = RateLimiter(
                    window=WINDOW, sapi_ip_limit=100, critical_reserve=0.0, ip=address
                )
                client = ex.client(creds, limiter=limiter, session=session)
                clients.append(await stack.enter_async_context(client))
            await asyncio.gather(*(client.sync_clock() for client in clients))
            await _after_boundary()
            results: list[Any] = await _gather(
                *(client.get_account() for client in clients for _ in range(10))
            )
            usage = [client.limiter.usage() for client in clients]
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (ex.stats.responses_429, ex.stats.responses_418) == (0, 0)
    # Each address spent its own budget (a window boundary may have split it, never merged it).
    assert all(u[ENDPOINTS["get_account"].pool_key] <= 100 for u in usage)


def test_client_account_label_is_a_stable_digest_of_the_key_never_the_key() -> None:
    key = "k" * 64
    first, second = MarginClient(key), MarginClient(key)
    assert first.account == second.account != MarginClient("j" * 64).account
    assert key not in first.account and key[:8] not in first.account
    assert MarginClient(key, account="uid-123").account == "uid-123"
    with pytest.raises(ParameterError) as info:
        MarginClient(key, account="")
    assert info.value.param == "account"
