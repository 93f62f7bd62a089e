"""Limiter hot path: one uncontended ``await RateLimiter.acquire`` and one ``LimiterCore.reserve``;
and one ``await RedisRateLimiter.acquire`` through a real Redis-compatible server on loopback
(p50/p99 latency, without and with leasing), when the server binary of ``make test`` is there.

Floor: one trivial awaited coroutine (what any ``await`` on the request path costs at least).
Budget (DESIGN.md §9): ``acquire`` under 2 µs median, measured as the REST client calls it (with
its ``account`` label). The limits are set so high that the budget
never runs out, so every call takes the fast path a real request takes when budget is available.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib.util
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

from benchmarks._util import median_ns, ratio_line
from binance_margin_async.endpoints import ENDPOINTS, Pool
from binance_margin_async.ratelimit import LimiterCore, RateLimiter

_HUGE = 2**62
_BUDGET_NS = 2_000.0
_REPEAT = 31
# The label MarginClient passes by default: a digest of its API key.
_ACCOUNT = "key-0123456789abcdef"


async def _trivial() -> None:
    return None


async def _run_ns(fn: Callable[[], Awaitable[None]], number: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(number):
        await fn()
    return (time.perf_counter_ns() - start) / number


async def _compare_async(
    candidate: Callable[[], Awaitable[None]], floor: Callable[[], Awaitable[None]]
) -> tuple[float, float]:
    """Median ns per awaited call of ``candidate`` and ``floor``, alternating ~5 ms runs.

    The async twin of ``benchmarks._util.compare_ns``: both run inside one coroutine on the loop.
    """
    number = 1
    while await _run_ns(candidate, number) * number < 5e6:
        number *= 2
    ours: list[float] = []
    raw: list[float] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(_REPEAT):
            ours.append(await _run_ns(candidate, number))
            raw.append(await _run_ns(floor, number))
    finally:
        if enabled:
            gc.enable()
    return statistics.median(ours), statistics.median(raw)


def _unlimited() -> RateLimiter:
    limiter = RateLimiter(api_ip_limit=_HUGE, sapi_ip_limit=_HUGE, sapi_uid_limit=_HUGE)
    limiter.set_order_limits(
        [
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": _HUGE},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": _HUGE},
        ],
        account=_ACCOUNT,
    )
    return limiter


async def _measure() -> tuple[list[str], float]:
    limiter = _unlimited()
    lines: list[str] = []
    floors: list[float] = []
    for name in ("get_account", "new_order"):
        endpoint = ENDPOINTS[name]
        acquire = functools.partial(limiter.acquire, endpoint, endpoint.weight, account=_ACCOUNT)
        ours, floor = await _compare_async(acquire, _trivial)
        floors.append(floor)
        verdict = "within" if ours < _BUDGET_NS else "OVER"
        lines.append(
            ratio_line(f"await RateLimiter.acquire({name}) vs await trivial coroutine", ours, floor)
            + f" [{verdict} the 2 µs budget]"
        )
    return lines, statistics.median(floors)


def _redis_helper() -> ModuleType | None:
    """The tests' Redis server helper (tests/_redis.py), the one server recipe of the project."""
    path = Path(__file__).resolve().parent.parent / "tests" / "_redis.py"
    spec = importlib.util.spec_from_file_location("_bma_redis_helper", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _redis_latencies(url: str, lease: float, calls: int = 3000) -> tuple[float, float]:
    """p50 and p99 microseconds of one ``acquire`` through Redis."""
    from binance_margin_async.redis import RedisRateLimiter

    endpoint = ENDPOINTS["get_account"]
    limit = 10**9
    async with RedisRateLimiter(
        url, api_ip_limit=limit, sapi_ip_limit=limit, sapi_uid_limit=limit, ip="bench", lease=lease
    ) as limiter:
        for _ in range(200):  # connection, script load, clock offset
            await limiter.acquire(endpoint, endpoint.weight, account=_ACCOUNT)
        latencies: list[int] = []
        for _ in range(calls):
            start = time.perf_counter_ns()
            await limiter.acquire(endpoint, endpoint.weight, account=_ACCOUNT)
            latencies.append(time.perf_counter_ns() - start)
    latencies.sort()
    return latencies[calls // 2] / 1000.0, latencies[calls * 99 // 100] / 1000.0


def _redis_lines() -> list[str]:
    helper = _redis_helper()
    binary = helper.find_server_binary() if helper is not None else None
    if helper is None or binary is None:
        return ["RedisRateLimiter: skipped (no valkey-server/redis-server binary)"]
    lines = []
    with helper.RedisServer(binary) as server:
        # A lease of 50 requests' weight: one Redis round trip per 50 acquires.
        for label, lease in (("no leasing", 0.0), ("lease of 50 requests", 500 / 10**9)):
            p50, p99 = asyncio.run(_redis_latencies(server.url, lease))
            lines.append(
                f"await RedisRateLimiter.acquire(get_account), Redis on loopback, {label}: "
                f"p50 {p50:.1f} µs, p99 {p99:.1f} µs"
            )
    return lines


def run() -> list[str]:
    """Median cost per call of the limiter hot path, as ratios to one awaited trivial coroutine;
    then the latency of one acquire through Redis."""
    lines, floor = asyncio.run(_measure())
    core = LimiterCore(api_ip_limit=_HUGE, sapi_ip_limit=_HUGE, sapi_uid_limit=_HUGE)
    key = ENDPOINTS["get_account"].pool_key
    now = time.time()
    ours = median_ns(lambda: core.reserve(Pool.SAPI_IP, key, 10, now))
    lines.append(ratio_line("LimiterCore.reserve (sync) vs await trivial coroutine", ours, floor))
    lines.append(f"floor: one awaited trivial coroutine = {floor:.0f} ns")
    lines += _redis_lines()
    return lines
