"""A child process of the RedisEventBus multi-process tests (tests/test_bus_fleet.py).

Common arguments: ``REDIS_URL ACCOUNT LEASE_TTL MARGIN`` (those of RedisEventBus), then

* ``publisher COMMON REST WS_API RISK [SYMBOL...]`` (API key and secret in ``BMA_API_KEY`` /
  ``BMA_API_SECRET``): a publisher candidate; prints ``LEADING <token>`` each time it becomes
  the publisher;
* ``consumer COMMON NAME OUTFILE [--after-go]``: a named consumer (``start="earliest"``); appends
  one JSON line per event to OUTFILE, flushed, and prints ``READY`` once reading. With
  ``--after-go`` it starts up (imports, connections) and then waits for a line on stdin before
  it starts reading: a warm replacement for a consumer being restarted.

Both run until SIGTERM (then stop cleanly: the consumer commits its position) or SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import IO, Any

import orjson

from binance_margin_async import MarginClient
from binance_margin_async.events import Event, StreamGap
from binance_margin_async.redis import RedisEventBus


def _line(event: Event) -> bytes:
    record: dict[str, Any] = {"type": type(event).__name__, "account": event.account}
    record["raw"] = event.raw
    if isinstance(event, StreamGap):
        record["started_ms"] = event.started_ms
        record["ended_ms"] = event.ended_ms
    return orjson.dumps(record) + b"\n"


async def _until_terminated() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


async def publisher(bus: RedisEventBus, urls: list[str], symbols: list[str]) -> None:
    rest, ws_api, risk = urls
    client = MarginClient(
        os.environ["BMA_API_KEY"],
        os.environ["BMA_API_SECRET"],
        base_url=rest,
        ws_api_url=ws_api,
        risk_stream_url=risk,
    )
    async with client, bus:
        candidate = bus.publisher(client, isolated_symbols=symbols, mirror=True)
        async with candidate:
            waiter = asyncio.create_task(_until_terminated())
            while not waiter.done():
                leading = asyncio.create_task(candidate.wait_leading())
                await asyncio.wait([leading, waiter], return_when=asyncio.FIRST_COMPLETED)
                if leading.done():
                    print(f"LEADING {candidate.token}", flush=True)
                    while candidate.leading and not waiter.done():
                        await asyncio.wait([waiter], timeout=0.05)
                else:
                    leading.cancel()


async def consumer(bus: RedisEventBus, name: str, out: IO[bytes], after_go: bool) -> None:
    if after_go:
        await asyncio.to_thread(sys.stdin.readline)
    async with bus:
        reader = bus.consumer(name, start="earliest")

        def write(event: Event) -> None:
            out.write(_line(event))
            out.flush()

        reader.on(Event, write)
        async with reader:
            print("READY", flush=True)
            await _until_terminated()


def main(argv: list[str]) -> None:
    role, redis_url, account, ttl, margin, *rest = argv

    def bus() -> RedisEventBus:
        return RedisEventBus(redis_url, account=account, lease_ttl=float(ttl), margin=float(margin))

    if role == "publisher":
        asyncio.run(publisher(bus(), rest[:3], rest[3:]))
    else:
        with open(rest[1], "ab") as out:
            asyncio.run(consumer(bus(), rest[0], out, "--after-go" in rest))


if __name__ == "__main__":
    main(sys.argv[1:])
