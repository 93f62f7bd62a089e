"""RedisRateLimiter against a real Redis-compatible server (tests/_redis.py): several limiters in
one test stand for several processes; the multi-process proof is tests/test_redis_fleet.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis
from _redis import RedisServer, find_server_binary, scaled
from redis.asyncio.cluster import RedisCluster

from binance_margin_async.endpoints import ENDPOINTS
from binance_margin_async.errors import IPBanned, ParameterError, RateLimited
from binance_margin_async.events import BalanceUpdate
from binance_margin_async.ratelimit import API_IP_KEY, WS_CONNECT_KEY, Limiter, RateLimiter
from binance_margin_async.redis import RedisRateLimiter
from binance_margin_async.testing import FakeExchange

ACCOUNT = ENDPOINTS["get_account"]  # SAPI_IP, weight 10
ORDER = ENDPOINTS["new_order"]  # SAPI_UID, weight 6, one order
WINDOW = 3600.0  # long windows: a boundary passing during a test is all but impossible
SMALL: dict[str, Any] = {
    "window": WINDOW,
    "sapi_ip_limit": 30,
    "sapi_uid_limit": 12,
    "api_ip_limit": 20,
    "critical_reserve": 0.0,
    "max_wait": 0.0,  # refuse instead of waiting: every test is about who may send now
}


@asynccontextmanager
async def limiters(
    server: RedisServer, count: int, **kwargs: Any
) -> AsyncIterator[list[RedisRateLimiter]]:
    settings = {**SMALL, "ip": "10.0.0.1", **kwargs}
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(RedisRateLimiter(server.url, **settings))
            for _ in range(count)
        ]


async def settled(limiter: RedisRateLimiter) -> None:
    """Waits for the feedback writes an ``on_response`` started in the background."""
    for _ in range(100):
        await asyncio.sleep(0)
    await asyncio.gather(*limiter._tasks)


def test_it_satisfies_the_limiter_protocol(redis_server: RedisServer) -> None:
    limiter: Limiter = RedisRateLimiter(redis_server.url, ip="x")
    local: Limiter = RateLimiter()
    assert limiter.trading_symbols == local.trading_symbols
    with pytest.raises(ParameterError):
        RedisRateLimiter(redis_server.url, ip="a{b}")
    with pytest.raises(ParameterError):
        RedisRateLimiter(redis_server.url, on_failure="open")  # type: ignore[arg-type]


def test_the_default_ip_label_is_the_local_address_towards_redis(
    redis_server: RedisServer,
) -> None:
    assert RedisRateLimiter(redis_server.url).ip == "127.0.0.1"


async def test_two_processes_share_one_ip_budget(redis_server: RedisServer) -> None:
    async with limiters(redis_server, 2) as (a, b):
        for _ in range(2):
            await a.acquire(ACCOUNT, 10)
        await b.acquire(ACCOUNT, 10)
        with pytest.raises(RateLimited):
            await b.acquire(ACCOUNT, 10)
        with pytest.raises(RateLimited):
            await a.acquire(ACCOUNT, 1)
        # Another IP label is another budget; each process reports what it spent itself.
        async with limiters(redis_server, 1, ip="10.0.0.2") as (c,):
            await c.acquire(ACCOUNT, 30)
        assert a.usage()[ACCOUNT.pool_key] == 20 and b.usage()[ACCOUNT.pool_key] == 10
        assert a.status == b.status == "shared"


async def test_uid_budgets_and_order_counts_are_per_account_across_processes(
    redis_server: RedisServer,
) -> None:
    async with limiters(redis_server, 2) as (a, b):
        await a.acquire(ORDER, 6, account="alice")
        await b.acquire(ORDER, 6, account="alice")
        with pytest.raises(RateLimited):
            await b.acquire(ORDER, 6, account="alice")
        # Bob's UID budget is his own, even from another IP.
        async with limiters(redis_server, 1, ip="10.0.0.2") as (c,):
            await c.acquire(ORDER, 6, account="bob")
            await c.acquire(ORDER, 6, account="bob")
        # Order counts: carol's limit of 1 per hour, learned in each process, counted in Redis.
        limits = [{"rateLimitType": "ORDERS", "interval": "HOUR", "intervalNum": 1, "limit": 1}]
        a.set_order_limits(limits, account="carol")
        b.set_order_limits(limits, account="carol")
        await a.acquire(ORDER, 6, account="carol")
        with pytest.raises(RateLimited):
            await b.acquire(ORDER, 6, account="carol")


async def test_a_418_in_one_process_stops_the_others_before_they_send(
    redis_server: RedisServer,
) -> None:
    async with limiters(redis_server, 2) as (a, b):
        a.on_response(ACCOUNT, 418, {"Retry-After": "120"})
        await settled(a)
        with pytest.raises(IPBanned) as info:
            await b.acquire(ORDER, 6, account="alice")
        assert 100 < (info.value.retry_after or 0) <= 121
        with pytest.raises(IPBanned):
            await b.acquire_ws_connect()
        async with limiters(redis_server, 1, ip="10.0.0.2") as (c,):
            await c.acquire(ACCOUNT, 10)  # another IP is not banned
        # A ban from a message body too, capped at three days.
        async with limiters(redis_server, 2, ip="10.0.0.3") as (d, e):
            d.ban(time.time() + 1e9)
            await settled(d)
            with pytest.raises(IPBanned) as info:
                await e.acquire(ACCOUNT, 1)
            assert 0 < (info.value.retry_after or 0) <= 3 * 86400 + 1


async def test_a_429_closes_the_pool_for_every_process_until_retry_after(
    redis_server: RedisServer,
) -> None:
    async with limiters(redis_server, 2) as (a, b):
        a.on_response(ACCOUNT, 429, {"Retry-After": "30"})
        await settled(a)
        with pytest.raises(RateLimited) as info:
            await b.acquire(ACCOUNT, 1)
        assert 25 < (info.value.retry_after or 0) <= 31
        await b.acquire(ENDPOINTS["get_all_assets"], 1)  # another pool is open


async def test_the_servers_count_wins_when_higher_for_every_process(
    redis_server: RedisServer,
) -> None:
    async with limiters(redis_server, 2) as (a, b):
        await a.acquire(ACCOUNT, 10)
        a.on_response(ACCOUNT, 200, {"X-SAPI-USED-IP-WEIGHT-1M": "25"})
        await settled(a)
        with pytest.raises(RateLimited):
            await b.acquire(ACCOUNT, 10)
        await b.acquire(ACCOUNT, 5)
        # WebSocket API rateLimits feed the IP's API pool the same way.
        rate_limits = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 20, "count": 19},
        ]  # fmt: skip
        b.on_ws_response(200, rate_limits, None)
        await settled(b)
        await a.acquire_ws(1)
        with pytest.raises(RateLimited):
            await a.acquire_ws(1)


async def test_windows_follow_the_redis_clock_not_the_hosts(redis_server: RedisServer) -> None:
    # Two hosts whose clocks are 40 s apart (behind and ahead) share one window.
    def skewed(seconds: float) -> Callable[[], float]:
        return lambda: time.time() + seconds

    async with (
        limiters(redis_server, 1, clock=skewed(-20.0)) as (a,),
        limiters(redis_server, 1, clock=skewed(20.0)) as (b,),
    ):
        granted = 0
        for limiter in (a, b, a, b):
            try:
                await limiter.acquire(ACCOUNT, 10)
                granted += 10
            except RateLimited:
                pass
    # 30 per window: 3 grants, unless a boundary of the Redis clock passed in between.
    assert granted in (30, 40)


async def test_redis_down_falls_back_to_the_local_share_and_rejoins(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    now = [time.time()]
    async with limiters(
        redis_server,
        1,
        local_share=0.5,
        redis_timeout=0.5,
        retry_interval=5.0,
        clock=lambda: now[0],
    ) as (a,):
        await a.acquire(ACCOUNT, 10)
        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="binance_margin_async.redis._limiter"):
            # The local share is 15 of 30: with 10 already spent here, 5 more and no further.
            await a.acquire(ACCOUNT, 5)
            assert a.status == "fallback"
            with pytest.raises(RateLimited):
                await a.acquire(ACCOUNT, 1)
            redis_server.start()
            await a.acquire(ENDPOINTS["get_all_assets"], 1)  # before retry_interval: still local
            statuses = [a.status]
            now[0] += 5.0
            await a.acquire(ENDPOINTS["get_all_assets"], 1)
            statuses.append(a.status)
            assert statuses == ["fallback", "shared"]
        messages = [record.getMessage() for record in caplog.records]
        # A ban met while Redis was away reaches the other processes once it is back.
        redis_server.stop()
        now[0] += 5.0
        a.on_response(ACCOUNT, 418, {"Retry-After": "60"}, ip="10.0.0.9")
        await a.acquire(ENDPOINTS["get_all_assets"], 1)  # Redis away: local share
        redis_server.start()
        now[0] += 5.0
        await a.acquire(ENDPOINTS["get_all_assets"], 1)  # rejoins, and shares the ban
        async with limiters(redis_server, 1, ip="10.0.0.9") as (c,):
            with pytest.raises(IPBanned):
                await c.acquire(ACCOUNT, 1)
        assert any("Redis unreachable" in m for m in messages)
        assert any("Redis is back" in m for m in messages)
        # What this process spent while Redis was away (and before: the restarted Redis is
        # empty) is in the shared count again: another process finds 15 of 30 used.
        async with limiters(redis_server, 1) as (b,):
            await b.acquire(ACCOUNT, 15)
            with pytest.raises(RateLimited):
                await b.acquire(ACCOUNT, 1)


async def test_a_restarted_redis_counts_the_local_spending_before_its_first_grant(
    redis_server: RedisServer,
) -> None:
    # Two processes spend their whole local share (15 + 15 of 30) while Redis is away; Redis
    # comes back empty. The first request each makes on rejoining must find the window full:
    # it was granted against the empty Redis before, one too many each (a 429 from Binance).
    now = [time.time()]
    async with limiters(
        redis_server, 2, local_share=0.5, redis_timeout=0.5, retry_interval=5.0,
        clock=lambda: now[0],
    ) as (a, b):  # fmt: skip
        await a.acquire(ENDPOINTS["get_all_assets"], 1)  # connected: shared
        redis_server.stop()
        for limiter in (a, b):
            await limiter.acquire(ACCOUNT, 10)
            await limiter.acquire(ACCOUNT, 5)
            assert limiter.status == "fallback"
        redis_server.start()
        now[0] += 5.0
        for limiter in (a, b):
            with pytest.raises(RateLimited):
                await limiter.acquire(ACCOUNT, 1)
            assert limiter.status == "shared"


async def test_nothing_to_add_still_needs_an_answer_before_redis_is_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    now = [time.time()]
    async with limiters(
        redis_server, 1, redis_timeout=0.5, retry_interval=5.0, clock=lambda: now[0]
    ) as (a,):
        await a.acquire(ACCOUNT, 10)
        redis_server.stop()
        await a.acquire(ENDPOINTS["get_all_assets"], 1)  # the local share
        assert a.status == "fallback"
        now[0] += 30 * 86_400.0  # every local window is over: nothing to add on rejoining
        with caplog.at_level(logging.WARNING, logger="binance_margin_async.redis._limiter"):
            await a.acquire(ENDPOINTS["get_all_assets"], 1)  # Redis still away: local share
        assert a.status == "fallback"
        assert not any("Redis is back" in r.getMessage() for r in caplog.records)
        redis_server.start()


async def test_fail_closed_refuses_while_redis_is_away(redis_server: RedisServer) -> None:
    async with limiters(redis_server, 1, on_failure="closed", redis_timeout=0.5) as (a,):
        redis_server.stop()
        with pytest.raises(RateLimited):
            await a.acquire(ACCOUNT, 1)
        assert a.status == "closed"
        with pytest.raises(RateLimited):
            await a.acquire(ACCOUNT, 1)


async def test_keys_carry_one_hash_tag_for_redis_cluster(redis_server: RedisServer) -> None:
    async with limiters(redis_server, 1, hash_tag="desk-1") as (a,):
        await a.acquire(ORDER, 6, account="alice")
        await a.acquire_ws(1)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        keys = [k.decode() if isinstance(k, bytes) else k for k in await client.keys("*")]
    finally:
        await client.aclose()
    assert keys and all(key.startswith("bma:rl:{desk-1}:") for key in keys)
    assert any(f":ip:10.0.0.1:{API_IP_KEY}:" in key for key in keys)
    assert any(":account:alice:ORDERS:10S:" in key for key in keys)


async def _counted(server: RedisServer, pattern: str) -> int:
    """The shared count of the one window key matching ``pattern``."""
    client = aioredis.Redis.from_url(server.url)
    try:
        [key] = await client.keys(pattern)
        return int(await client.get(key) or 0)
    finally:
        await client.aclose()


async def test_leases_are_spent_locally_and_never_exceed_the_shared_budget(
    redis_server: RedisServer,
) -> None:
    pattern = f"*:ip:10.0.0.1:{ACCOUNT.pool_key}:3600000:*"
    async with limiters(redis_server, 2, lease=0.5) as (a, b):
        await a.acquire(ACCOUNT, 5)  # leases half the window (15): 10 left in this process
        await b.acquire(ACCOUNT, 5)  # the other half: the window is all reserved
        assert await _counted(redis_server, pattern) == 30
        await a.acquire(ACCOUNT, 10)  # from its lease: Redis is not asked
        await b.acquire(ACCOUNT, 6)
        assert await _counted(redis_server, pattern) == 30
        with pytest.raises(RateLimited):
            await a.acquire(ACCOUNT, 1)
        with pytest.raises(RateLimited):
            await b.acquire(ACCOUNT, 5)
        await b.acquire(ACCOUNT, 4)
    async with limiters(redis_server, 1, lease=0.5, ip="10.0.0.2") as (c,):
        await c.acquire(ACCOUNT, 5)
    # Closing gave back the 10 leased and not used.
    assert await _counted(redis_server, pattern.replace("10.0.0.1", "10.0.0.2")) == 5


async def test_a_shared_client_is_used_and_left_open(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        async with RedisRateLimiter(client, **SMALL) as a:
            assert a.ip == "127.0.0.1"
            await a.acquire(ACCOUNT, 30)
            with pytest.raises(RateLimited):
                await a.acquire(ACCOUNT, 1)
        assert await client.ping()
    finally:
        await client.aclose()


async def test_every_script_keeps_to_one_cluster_slot() -> None:
    # A one-node Redis Cluster enforces the slot rules (CROSSSLOT) as a real cluster does: a
    # request charging an account's UID pool and its IP's ban and rule in one script works.
    binary = find_server_binary()
    if binary is None:
        pytest.skip("no Redis-compatible server binary")
    with RedisServer(binary, cluster=True) as server:
        cluster = RedisCluster.from_url(server.url)
        try:
            async with RedisRateLimiter(cluster, **{**SMALL, "sapi_uid_limit": 6000}) as a:
                leverage = ENDPOINTS["adjust_max_leverage"]
                await a.acquire(leverage, 3000, account="alice")  # UID pool + per-IP rule
                with pytest.raises(RateLimited):
                    await a.acquire(leverage, 3000, account="bob")  # the IP's 1 per window
                a.on_response(ORDER, 429, {"Retry-After": "5"}, account="alice")
                await settled(a)
                with pytest.raises(RateLimited):
                    await a.acquire(ORDER, 6, account="alice")
                assert a.status == "shared"
        finally:
            await cluster.aclose()


async def test_a_client_and_its_stream_run_on_the_shared_limiter(redis_server: RedisServer) -> None:
    async with FakeExchange(seed=21) as ex:
        creds = ex.add_account(margin_balances={"USDT": "1000"})
        async with (
            RedisRateLimiter(redis_server.url, ip="10.0.0.1", max_wait=5.0) as limiter,
            ex.client(creds, limiter=limiter) as client,
        ):
            await client.get_account()
            got: asyncio.Queue[BalanceUpdate] = asyncio.Queue()
            stream = client.user_stream()
            stream.on(BalanceUpdate, got.put_nowait)
            async with stream:  # entered once subscribed
                ex.deposit(creds.account_id, "USDT", 7, wallet="CROSS")
                update = await asyncio.wait_for(got.get(), scaled(10))
            assert update.delta == Decimal(7)
            # The REST call, the connection attempt and the subscription were charged in Redis.
            usage = limiter.usage(account=client.account)
            assert usage[ENDPOINTS["get_account"].pool_key] == 10
            assert usage[WS_CONNECT_KEY] >= 1
            assert limiter.status == "shared"


async def test_a_grant_is_carried_into_the_next_window_until_its_answer_settles_it(
    redis_server: RedisServer,
) -> None:
    pattern = f"*:ip:10.0.0.1:{ACCOUNT.pool_key}:3600000:*"
    client = aioredis.Redis.from_url(redis_server.url)

    async def windows() -> list[int]:
        keys = sorted(await client.keys(pattern), key=_window_index)
        return [int(await client.get(key) or 0) for key in keys]

    try:
        async with limiters(redis_server, 1) as (a,):
            await a.acquire(ACCOUNT, 10)
            # Still in flight: the server may count it in the next window, so it holds it too.
            assert await windows() == [10, 10]
            a.on_response(ACCOUNT, 200, {})
            await settled(a)
            assert await windows() == [10, 0]
            # An answer reported by a task that did not acquire it settles nothing.
            go = asyncio.Event()
            reporter = asyncio.get_running_loop().create_task(_report(a, go))
            await a.acquire(ACCOUNT, 5)
            go.set()
            await reporter
            await settled(a)
            assert await windows() == [15, 5]
    finally:
        await client.aclose()


def _window_index(key: bytes | str) -> int:
    text = key.decode() if isinstance(key, bytes) else key
    return int(text.rsplit(":", 1)[1])


async def _report(limiter: RedisRateLimiter, go: asyncio.Event) -> None:
    await go.wait()
    limiter.on_response(ACCOUNT, 200, {})
