"""RedisRateLimiter across real processes (tests/_limiter_child.py), a real Redis-compatible server
(tests/_redis.py) and the fake exchange, which keys IP pools by the client's source address and
UID pools and order counts by account. Processes bind their connections to 127.0.0.2 or
127.0.0.3 and label their limiter with that address.

* **Burst**: 8 processes, 2 IPs x 2 accounts, share small budgets: 0 x 429, 0 x 418; elapsed over
  the theoretical minimum printed (``fleet_burst_ratio`` report property), never asserted tightly.
* **Ban**: a 418 caught by one process stops the others on that IP before they send.
* **Redis down**: the server is stopped mid-run and started again: both processes fall back to
  their local share (together within the budget: no 429), then rejoin.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _redis import RedisServer, scaled

from binance_margin_async.endpoints import ENDPOINTS
from binance_margin_async.testing import Credentials, FakeExchange

CHILD = str(Path(__file__).with_name("_limiter_child.py"))
IPS = ("127.0.0.2", "127.0.0.3")
WINDOW = 1.0
ACCOUNT_WEIGHT = ENDPOINTS["get_account"].weight  # SAPI_IP, per IP
ORDER_WEIGHT = ENDPOINTS["new_order"].weight  # SAPI_UID, per account
PER_PROCESS = 6  # get_account calls and orders per process of the burst
SAPI_IP_LIMIT = 12 * ACCOUNT_WEIGHT  # 4 processes per IP x 6 calls = 2 windows
SAPI_UID_LIMIT = 12 * ORDER_WEIGHT  # 4 processes per account x 6 orders = 2 windows
LIMITS: dict[str, Any] = {
    "window": WINDOW,
    "sapi_ip_limit": SAPI_IP_LIMIT,
    "sapi_uid_limit": SAPI_UID_LIMIT,
    "critical_reserve": 0.0,
    "boundary_margin": 0.25,
    "max_wait": 30.0,
}


async def _run(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs one child process per job concurrently and returns their reports."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            CHILD,
            json.dumps(job),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for job in jobs
    ]
    outputs = await asyncio.wait_for(
        asyncio.gather(*(p.communicate() for p in processes)), scaled(60)
    )
    reports = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-2000:]
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))
    return reports


def _job(
    server: RedisServer, ex: FakeExchange, creds: Credentials, ip: str, **fields: Any
) -> dict[str, Any]:
    return {
        "redis": server.url,
        "rest_url": ex.rest_url,
        "api_key": creds.api_key,
        "api_secret": creds.api_secret,
        "ip": ip,
        "limiter": LIMITS,
        **fields,
    }


async def test_eight_processes_two_ips_two_accounts_burst_without_a_429(
    redis_server: RedisServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    async with FakeExchange(
        seed=12, window=WINDOW, sapi_ip_limit=SAPI_IP_LIMIT, sapi_uid_limit=SAPI_UID_LIMIT
    ) as ex:
        accounts = [ex.add_account(margin_balances={"USDT": "100000"}) for _ in range(2)]
        jobs = [
            _job(
                redis_server,
                ex,
                creds,
                ip,
                mode="burst",
                dir=str(tmp_path),
                accounts=PER_PROCESS,
                orders=PER_PROCESS,
            )
            for ip in IPS
            for creds in accounts
            for _ in range(2)
        ]
        run = asyncio.create_task(_run(jobs))
        # Every process started (interpreters start slowly on a loaded machine): go just after
        # a window's margin, so that the burst needs exactly 2 windows of every pool.
        await _until(lambda: len(list(tmp_path.glob("ready-*"))) == len(jobs), run)
        start = (math.floor((time.time() + 0.2) / WINDOW) + 1) * WINDOW + 0.26
        (tmp_path / "go.tmp").write_text(repr(start))
        (tmp_path / "go.tmp").rename(tmp_path / "go")
        reports = await run
        stats = ex.stats
    assert [r["errors"] for r in reports] == [[]] * 8
    assert (stats.responses_429, stats.responses_418) == (0, 0)
    assert stats.requests_by_path["/sapi/v1/margin/order"] == 8 * PER_PROCESS
    assert stats.requests_by_path["/sapi/v1/margin/account"] == 8 * PER_PROCESS
    elapsed = max(r["finished"] for r in reports) - start
    late = max(r["began"] for r in reports) - start
    # Every pool (each IP's account pool, each account's order pool) needs 2 windows of budget.
    minimum = 4 * PER_PROCESS * ACCOUNT_WEIGHT / SAPI_IP_LIMIT * WINDOW
    ratio = elapsed / minimum
    # With fixed windows the second window's budget opens one window after the boundary.
    fixed_minimum = WINDOW - 0.26
    request.node.user_properties.append(("fleet_burst_ratio", round(ratio, 4)))
    with capsys.disabled():
        print(
            f"\nfleet burst: 8 processes (2 IPs x 2 accounts) sharing RedisRateLimiter budgets, "
            f"window {WINDOW:g} s, 0 x 429, 0 x 418; elapsed {elapsed:.2f} s; theoretical "
            f"minimum {minimum:.2f} s -> ratio {ratio:.3f}; fixed-window minimum "
            f"{fixed_minimum:.2f} s -> ratio {elapsed / fixed_minimum:.3f} (the last process "
            f"began {late:.3f} s late)"
        )


async def test_a_418_in_one_process_stops_the_others_on_its_ip_before_they_send(
    redis_server: RedisServer,
) -> None:
    async with FakeExchange(
        seed=13, window=60.0, sapi_ip_limit=3 * ACCOUNT_WEIGHT, ban_after_429s=0
    ) as ex:
        creds = ex.add_account(margin_balances={"USDT": "1000"})
        # This process's limiter thinks the budget is 100 times larger: it meets the ban.
        tripper = _job(redis_server, ex, creds, IPS[0], mode="trip")
        tripper["limiter"] = {**LIMITS, "window": 60.0, "sapi_ip_limit": 100 * SAPI_IP_LIMIT}
        [tripped] = await _run([tripper])
        assert tripped["errors"][-1] == "IPBanned"
        assert ex.stats.responses_418 == 1
        probes = [
            _job(redis_server, ex, creds, ip, mode="probe", limiter={**LIMITS, "window": 60.0})
            for ip in (IPS[0], IPS[0], IPS[1])
        ]
        reports = await _run(probes)
        stats = ex.stats
    # Both other processes on the banned IP refused before sending; the other IP went through.
    assert [r["errors"] for r in reports] == [["IPBanned"], ["IPBanned"], []]
    assert stats.requests_by_path["/sapi/v1/margin/allAssets"] == 1
    assert stats.responses_418 == 1


async def test_redis_down_mid_run_both_processes_hold_the_budget_and_rejoin(
    redis_server: RedisServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeExchange(seed=14, window=WINDOW, sapi_ip_limit=SAPI_IP_LIMIT) as ex:
        creds = ex.add_account(margin_balances={"USDT": "1000"})
        settings = {**LIMITS, "local_share": 0.5, "retry_interval": 0.5, "redis_timeout": 0.5}
        jobs = [
            _job(redis_server, ex, creds, IPS[0], mode="loop", dir=str(tmp_path), limiter=settings)
            for _ in range(2)
        ]
        run = asyncio.create_task(_run(jobs))
        # Both processes share through Redis, then Redis is away for 1.2 s (a crash: it comes
        # back empty), then they run on for 1.5 s.
        await _until(lambda: len(list(tmp_path.glob("ready-*"))) == 2, run)
        stopped = time.time()
        redis_server.stop()
        await asyncio.sleep(1.2)
        started = time.time()
        redis_server.start()
        await asyncio.sleep(1.5)
        (tmp_path / "stop").touch()
        reports = await run
        stats = ex.stats
    # Known limit (README, "When Redis fails"): in the window in which a process falls back or
    # rejoins, what the other process spent there is unknown to it, so one request may find the
    # window full at Binance (seen in about 1 run of 10 on a loaded box). Never more, never a 418.
    errors = [e for r in reports for e in r["errors"]]
    assert set(errors) <= {"TooManyRequests"} and len(errors) <= 1, errors
    assert stats.responses_429 <= 1 and stats.responses_418 == 0
    for report in reports:
        assert report["statuses"] == ["shared", "fallback", "shared"], report
    with capsys.disabled():
        for n, report in enumerate(reports):
            _, fell, rejoined = report["changed"]
            shared, local, again = report["answers"]
            print(
                f"\nRedis down, process {n}: fell back {fell - stopped:.3f} s after the stop, "
                f"rejoined {rejoined - started:.3f} s after the restart; answers shared/local/"
                f"shared again {shared}/{local}/{again}; {stats.responses_429} x 429 (local share "
                f"0.5 of "
                f"{SAPI_IP_LIMIT} per {WINDOW:g} s window each)"
            )


async def _until(predicate: Callable[[], bool], run: asyncio.Task[Any]) -> None:
    """Polls ``predicate`` (files the children write: no event to wait on) while they run."""
    deadline = time.monotonic() + scaled(30)
    while not predicate():
        assert not run.done(), run.result()
        assert time.monotonic() < deadline, "the children did not start"
        await asyncio.sleep(0.02)
