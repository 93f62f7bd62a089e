"""CPU per signed ``GET /sapi/v1/margin/account``: `MarginClient` against a hand-written floor.

Both sides talk to the same local aiohttp server, which runs in a child process so that only the
client's CPU is counted (``time.process_time`` in this process). The floor is what a careful user
would write by hand: one aiohttp session, stdlib ``hmac``, ``orjson.loads``. Ours adds everything
the library promises: validation, the limiter, the clock offset, percent-encoding, error mapping
and the typed ``MarginAccount`` decode.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import multiprocessing
import socket
import statistics
import time
from urllib.parse import urlencode

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from binance_margin_async import MarginClient, RateLimiter

REQUESTS = 2000
ROUNDS = 5
API_KEY = "bench-key-0123456789"
SECRET = "bench-secret-0123456789abcdef"

_ACCOUNT = orjson.dumps(
    {
        "created": True,
        "borrowEnabled": True,
        "marginLevel": "11.64405625",
        "collateralMarginLevel": "3.2",
        "totalAssetOfBtc": "6.82728457",
        "totalLiabilityOfBtc": "0.58633215",
        "totalNetAssetOfBtc": "6.24095242",
        "TotalCollateralValueInUSDT": "5.82728457",
        "totalOpenOrderLossInUSDT": "582.82728457",
        "tradeEnabled": True,
        "transferInEnabled": True,
        "transferOutEnabled": True,
        "accountType": "MARGIN_1",
        "marginLevelStatus": "EXCESSIVE",
        "userAssets": [
            {
                "asset": asset,
                "borrowed": "0.00000000",
                "free": "0.00499500",
                "interest": "0.00000000",
                "locked": "0.00000000",
                "netAsset": "0.00499500",
            }
            for asset in ("BTC", "BNB", "ETH", "USDT", "SOL")
        ],
    }
)


def _serve(port_queue: multiprocessing.Queue[int]) -> None:
    async def account(_: web.Request) -> web.Response:
        return web.Response(
            body=_ACCOUNT,
            content_type="application/json",
            headers={"X-SAPI-USED-IP-WEIGHT-1M": "10"},
        )

    async def server_time(_: web.Request) -> web.Response:
        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/sapi/v1/margin/account", account)
        app.router.add_get("/api/v3/time", server_time)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, sock)
        await site.start()
        port_queue.put(sock.getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def _floor(base: str) -> float:
    key = SECRET.encode()
    async with aiohttp.ClientSession() as session:
        start = time.process_time()
        for _ in range(REQUESTS):
            query = urlencode({"recvWindow": 5000, "timestamp": int(time.time() * 1000)})
            sig = hmac.new(key, query.encode(), hashlib.sha256).hexdigest()
            url = URL(f"{base}/sapi/v1/margin/account?{query}&signature={sig}", encoded=True)
            async with session.get(url, headers={"X-MBX-APIKEY": API_KEY}) as resp:
                orjson.loads(await resp.read())
        return (time.process_time() - start) / REQUESTS


async def _ours(base: str) -> float:
    limiter = RateLimiter(sapi_ip_limit=10**9, api_ip_limit=10**9)
    async with MarginClient(API_KEY, SECRET, base_url=base, limiter=limiter) as client:
        await client.get_account()  # syncs the clock once, outside the measurement
        start = time.process_time()
        for _ in range(REQUESTS):
            await client.get_account()
        return (time.process_time() - start) / REQUESTS


def run() -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=30)}"
        floors, ours = [], []
        for _ in range(ROUNDS):  # interleaved, so drift on a shared machine hits both alike
            floors.append(asyncio.run(_floor(base)))
            ours.append(asyncio.run(_ours(base)))
    finally:
        server.terminate()
        server.join()
    floor, mine = statistics.median(floors), statistics.median(ours)
    return [
        f"rest: signed GET /sapi/v1/margin/account, CPU per request over {REQUESTS} x {ROUNDS}",
        f"  floor (aiohttp + hmac + orjson): {floor * 1e6:8.1f} µs",
        f"  MarginClient.get_account():      {mine * 1e6:8.1f} µs  ({mine / floor:.2f}x floor)",
    ]
