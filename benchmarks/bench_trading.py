"""Order round trip with a margin special key on the fake exchange: session vs REST vs raw floor.

One ``FakeExchange`` runs in a child process (so only the client's CPU is counted here); one
account, one Ed25519 special key. Each contender places a LIMIT order far below the price
(it rests, nothing fills) and cancels it, ``PAIRS`` times, one request at a time; every request
is timed from send to answer (``perf_counter``) and the CPU of this process is summed over the
loop (``process_time``):

* ``TradingSession.new_order`` / ``cancel_order`` (WebSocket API, logged on once);
* ``MarginClient(special_key=True)`` REST ``new_order`` / ``cancel_order`` on ``/api/v3/order``;
* the floor: ``websockets`` + ``orjson`` with ``session.logon`` signed by hand, the same two
  requests built as dicts, matched by id, decoded with ``orjson.loads`` (no validation, no
  limiter, no typed result).

Rounds alternate between the three so that drift on a shared machine hits them alike.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from websockets.asyncio.client import connect

from binance_margin_async import MarginClient, RateLimiter
from binance_margin_async.signing import load_signer, ws_api_payload

PAIRS = 1000
ROUNDS = 3
SYMBOL = "BTCUSDT"
PRICE = "1000"  # far below the fake's BTCUSDT price: the order rests
QTY = "0.01"
_BIG = 10**9


def _serve(queue: multiprocessing.Queue[tuple[str, str, str, str]]) -> None:
    from binance_margin_async.testing import FakeExchange

    async def main() -> None:
        async with FakeExchange(
            seed=1,
            api_ip_limit=_BIG,
            sapi_ip_limit=_BIG,
            sapi_uid_limit=_BIG,
            order_limit_10s=_BIG,
            order_limit_1d=_BIG,
        ) as ex:
            creds = ex.add_account(margin_balances={"USDT": "100000000"})
            assert creds.api_secret is not None
            queue.put((ex.rest_url, ex.ws_api_url, creds.api_key, creds.api_secret))
            await asyncio.Event().wait()

    asyncio.run(main())


def _limiter() -> RateLimiter:
    return RateLimiter(api_ip_limit=_BIG, sapi_ip_limit=_BIG, sapi_uid_limit=_BIG)


class _Result:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.cpu: list[float] = []  # CPU seconds per request, one figure per round

    def line(self, name: str, floor: _Result | None) -> str:
        ms = sorted(self.latencies)
        n = len(ms)

        def pct(q: float) -> float:
            return ms[min(n - 1, int(q * n))] * 1e3

        cpu = statistics.median(self.cpu) * 1e6
        ratio = f" ({cpu / (statistics.median(floor.cpu) * 1e6):.2f}x floor)" if floor else ""
        return (
            f"  {name:<24} p50 {pct(0.5):6.3f} ms  p99 {pct(0.99):6.3f} ms  "
            f"p99.9 {pct(0.999):6.3f} ms  CPU {cpu:6.1f} µs/request{ratio}"
        )


async def _measure(result: _Result, step: Callable[[int], Awaitable[None]]) -> None:
    """Run ``PAIRS`` place+cancel pairs through ``step`` (0 = place, 1 = cancel)."""
    latencies = result.latencies
    start_cpu = time.process_time()
    for i in range(PAIRS * 2):
        started = time.perf_counter()
        await step(i)
        latencies.append(time.perf_counter() - started)
    result.cpu.append((time.process_time() - start_cpu) / (PAIRS * 2))


async def _session_round(special: dict[str, Any], result: _Result) -> None:
    client = MarginClient(limiter=_limiter(), special_key=True, **special)
    async with client, client.trading_session() as session:
        await session.get_open_orders(SYMBOL)  # warm up (connection, logon, clock)
        order_ids: list[int] = []

        async def step(i: int) -> None:
            if i % 2 == 0:
                order = await session.new_order(
                    SYMBOL, "BUY", "LIMIT", quantity=QTY, price=PRICE, time_in_force="GTC"
                )
                assert order.order_id is not None
                order_ids.append(order.order_id)
            else:
                await session.cancel_order(SYMBOL, order_id=order_ids.pop())

        await _measure(result, step)


async def _rest_round(special: dict[str, Any], result: _Result) -> None:
    async with MarginClient(limiter=_limiter(), special_key=True, **special) as client:
        await client.get_open_orders(SYMBOL)  # warm up (connection, clock)
        order_ids: list[int] = []

        async def step(i: int) -> None:
            if i % 2 == 0:
                order = await client.new_order(
                    SYMBOL, "BUY", "LIMIT", quantity=QTY, price=PRICE, time_in_force="GTC"
                )
                assert order.order_id is not None
                order_ids.append(order.order_id)
            else:
                await client.cancel_order(SYMBOL, order_id=order_ids.pop())

        await _measure(result, step)


async def _floor_round(special: dict[str, Any], result: _Result) -> None:
    """What a careful user writes by hand: logon once, then dicts, orjson and ids."""
    signer = load_signer(private_key=special["private_key"])
    api_key = special["api_key"]
    ids = itertools.count(1)
    async with connect(special["ws_api_url"], compression=None) as ws:

        async def call(method: str, params: dict[str, Any]) -> Any:
            request_id = next(ids)
            await ws.send(
                orjson.dumps({"id": request_id, "method": method, "params": params}), text=True
            )
            while True:
                answer = orjson.loads(await ws.recv())
                if answer.get("id") == request_id:
                    if answer["status"] != 200:
                        raise RuntimeError(answer)
                    return answer["result"]

        logon = {"apiKey": api_key, "timestamp": int(time.time() * 1000)}
        logon["signature"] = signer.sign(ws_api_payload(logon))
        await call("session.logon", logon)
        order_ids: list[int] = []

        async def step(i: int) -> None:
            now = int(time.time() * 1000)
            if i % 2 == 0:
                params = {
                    "symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                    "quantity": QTY, "price": PRICE, "timestamp": now,
                }  # fmt: skip
                order_ids.append((await call("order.place", params))["orderId"])
            else:
                params = {"symbol": SYMBOL, "orderId": order_ids.pop(), "timestamp": now}
                await call("order.cancel", params)

        await _measure(result, step)


async def _special_key(rest_url: str, ws_url: str, api_key: str, secret: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with MarginClient(api_key, secret, base_url=rest_url, limiter=_limiter()) as master:
        special = await master.create_special_key("bench", public_key=public.decode())
    assert special.api_key is not None
    return {
        "api_key": special.api_key,
        "private_key": private,
        "base_url": rest_url,
        "ws_api_url": ws_url,
    }


def run() -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple[str, str, str, str]] = ctx.Queue()
    server = ctx.Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    try:
        rest_url, ws_url, api_key, secret = queue.get(timeout=60)
        special = asyncio.run(_special_key(rest_url, ws_url, api_key, secret))
        floor, session, rest = _Result(), _Result(), _Result()
        for _ in range(ROUNDS):
            asyncio.run(_floor_round(special, floor))
            asyncio.run(_session_round(special, session))
            asyncio.run(_rest_round(special, rest))
    finally:
        server.terminate()
        server.join()
    return [
        f"trading: order round trip on the fake (place + cancel, {PAIRS * 2} requests x {ROUNDS})",
        floor.line("floor (websockets+orjson)", None),
        session.line("TradingSession", floor),
        rest.line("REST special_key", floor),
    ]
