"""One process of the RedisRateLimiter fleet tests (tests/test_limiter_fleet.py).

Run as ``python tests/_limiter_child.py '<json job>'``; prints one JSON line with what happened.
The job names the Redis URL, the fake exchange's URL, the account's key and secret, the source
address (``ip``: the client binds its connections to it and labels the limiter with it), the
limiter settings and what to do:

* ``burst``: create ``<dir>/ready-<pid>``, wait for ``<dir>/go`` and the start time (epoch
  seconds) it holds, then send ``accounts`` x ``get_account`` and ``orders`` x ``new_order``
  concurrently; report when the last answer came.
* ``trip``: send ``get_account`` until the exchange answers 418 (the limiter's limits are set
  above the exchange's on purpose); report the error types.
* ``probe``: one ``get_all_assets``; report whether the limiter refused it before sending.
* ``loop``: ``get_account`` back to back until the file ``<dir>/stop`` exists (after the first
  answer it creates ``<dir>/ready-<pid>``); report the statuses the limiter went through, when
  each began and how many answers came in each, and the error types.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp

from binance_margin_async import MarginClient
from binance_margin_async.errors import BinanceError
from binance_margin_async.redis import RedisRateLimiter


async def _run(job: dict[str, Any]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(local_addr=(job["ip"], 0))
    result: dict[str, Any] = {"errors": [], "statuses": []}
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        RedisRateLimiter(job["redis"], ip=job["ip"], **job["limiter"]) as limiter,
        MarginClient(
            job["api_key"],
            job["api_secret"],
            base_url=job["rest_url"],
            limiter=limiter,
            session=session,
        ) as client,
    ):
        mode = job["mode"]
        if mode != "probe":  # a probe's one call needs no signature, hence no clock
            await client.sync_clock()
        if mode == "burst":
            directory = Path(job["dir"])
            (directory / f"ready-{os.getpid()}").touch()
            go = directory / "go"
            # The parent's start signal is a file: there is no event to wait on across processes.
            while not go.exists():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await asyncio.sleep(max(0.0, float(go.read_text()) - time.time()))
            result["began"] = time.time()
            calls: list[Awaitable[object]] = [client.get_account() for _ in range(job["accounts"])]
            calls += [
                client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.0001")
                for _ in range(job["orders"])
            ]
            answers = await asyncio.gather(*calls, return_exceptions=True)
            result["errors"] = [type(a).__name__ for a in answers if isinstance(a, BaseException)]
        elif mode == "trip":
            for _ in range(1000):
                try:
                    await client.get_account()
                except BinanceError as exc:
                    result["errors"].append(type(exc).__name__)
                    if type(exc).__name__ == "IPBanned":
                        break
        elif mode == "probe":
            try:
                await client.get_all_assets()
            except BinanceError as exc:
                result["errors"].append(type(exc).__name__)
        elif mode == "loop":
            directory = Path(job["dir"])
            while not (directory / "stop").exists():
                try:
                    await client.get_account()
                except BinanceError as exc:
                    result["errors"].append(type(exc).__name__)
                    await asyncio.sleep(0.05)
                if not result["statuses"] or result["statuses"][-1] != limiter.status:
                    result["statuses"].append(limiter.status)
                    result.setdefault("changed", []).append(time.time())
                    result.setdefault("answers", []).append(0)
                result["answers"][-1] += 1
                (directory / f"ready-{os.getpid()}").touch()
        result["finished"] = time.time()
    return result


def main() -> None:
    job = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(_run(job))), flush=True)


if __name__ == "__main__":
    main()
