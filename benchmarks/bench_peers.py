"""DESIGN.md §9 peer targets: python-binance and ccxt on the same local servers as our benchmarks.

REST (CPU per signed ``GET /sapi/v1/margin/account``, target: ours ≥ 2x cheaper): the server of
:mod:`benchmarks.bench_rest` runs in a child process, so ``time.process_time`` counts the client
only. Each round measures, in this order, :meth:`MarginClient.get_account` (the
``bench_rest`` loop), python-binance ``AsyncClient.get_margin_account()`` (``API_URL`` /
``MARGIN_API_URL`` pointed at the server) and ccxt ``binance.sapi_get_margin_account()`` (implicit
API, ``urls['api']`` pointed at the server, its client-side throttle off since our limiter is sized
not to wait either; no ``load_markets``, no time sync).

Stream (events/s of CPU, target: ours ≥ 5x): the WebSocket API server and frames of
:mod:`benchmarks.bench_stream`. python-binance 1.0.37's margin sockets subscribe over the WebSocket
API with a listenToken, which that server speaks, so its real path is driven end to end:
``BinanceSocketManager.margin_socket()`` plus ``isolated_margin_socket()`` for the two isolated
symbols, sharing ``client.ws_api`` (pointed at the server), and one consumer task per socket
awaiting ``recv()``. Only the REST call minting the listenToken is stubbed (as ``bench_stream``
stubs ours). Ours is ``bench_stream``'s ``UserDataStream`` run over the same frames.

The peers are optional (``pip install -e '.[bench]'``, done by ``make bench``); one that is not
importable is reported and skipped. They are untyped, so they are imported with :mod:`importlib`
and handled as ``Any``.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import statistics
import time
from types import ModuleType
from typing import Any

from benchmarks import bench_rest, bench_stream

# Rounds of the stream comparison: peers are 5-12x slower, so bench_stream's 7 rounds would take
# minutes; their median over 3 is ample against a 5x target.
_STREAM_ROUNDS = 3


def _peer(module: str, skipped: list[str]) -> ModuleType | None:
    """The peer module, or None after noting in ``skipped`` why it cannot be imported."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        skipped.append(f"{module} not importable ({exc}); skipped (pip install -e '.[bench]')")
        return None


async def _python_binance_rest(async_client: ModuleType, base: str) -> float:
    client: Any = async_client.AsyncClient(bench_rest.API_KEY, bench_rest.SECRET)
    # Plain attributes, formatted once in BaseClient.__init__; SAPI/API URLs are built from them.
    client.API_URL = f"{base}/api"
    client.MARGIN_API_URL = f"{base}/sapi"
    try:
        await client.get_margin_account()  # opens the connection outside the measurement
        start = time.process_time()
        for _ in range(bench_rest.REQUESTS):
            await client.get_margin_account()
        return (time.process_time() - start) / bench_rest.REQUESTS
    finally:
        await client.close_connection()


async def _ccxt_rest(ccxt_async: ModuleType, base: str) -> float:
    exchange: Any = ccxt_async.binance(
        {"apiKey": bench_rest.API_KEY, "secret": bench_rest.SECRET, "enableRateLimit": False}
    )
    exchange.urls["api"]["sapi"] = f"{base}/sapi/v1"
    exchange.urls["api"]["public"] = f"{base}/api/v3"
    try:
        await exchange.sapi_get_margin_account()
        start = time.process_time()
        for _ in range(bench_rest.REQUESTS):
            await exchange.sapi_get_margin_account()
        return (time.process_time() - start) / bench_rest.REQUESTS
    finally:
        await exchange.close()


def _rest(skipped: list[str]) -> list[str]:
    python_binance = _peer("binance.async_client", skipped)
    ccxt_async = _peer("ccxt.async_support", skipped)
    ours: list[float] = []
    peers: dict[str, list[float]] = {}
    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = ctx.Queue()
    server = ctx.Process(target=bench_rest._serve, args=(ports,), daemon=True)
    server.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=30)}"
        for _ in range(bench_rest.ROUNDS):  # interleaved, so drift hits every client alike
            ours.append(asyncio.run(bench_rest._ours(base)))
            if python_binance is not None:
                peers.setdefault("python-binance AsyncClient.get_margin_account()", []).append(
                    asyncio.run(_python_binance_rest(python_binance, base))
                )
            if ccxt_async is not None:
                peers.setdefault("ccxt async binance.sapi_get_margin_account()", []).append(
                    asyncio.run(_ccxt_rest(ccxt_async, base))
                )
    finally:
        server.terminate()
        server.join()
    mine = statistics.median(ours)
    lines = [
        f"rest: signed GET /sapi/v1/margin/account, median CPU per request over "
        f"{bench_rest.REQUESTS} x {bench_rest.ROUNDS} rounds (target: peers >= 2x ours)",
        f"  {'MarginClient.get_account()':<50} {mine * 1e6:8.1f} µs",
    ]
    for name, samples in peers.items():
        theirs = statistics.median(samples)
        lines.append(f"  {name:<50} {theirs * 1e6:8.1f} µs  ({theirs / mine:.2f}x ours)")
    return lines


async def _python_binance_stream(
    async_client: ModuleType, streams: ModuleType, websocket_api: ModuleType, url: str, total: int
) -> float:
    client: Any = async_client.AsyncClient(bench_stream.ACCOUNTS[0], "unused-secret")
    # The sockets subscribe through client.ws_api, built in __init__ from the production URL.
    client.ws_api = websocket_api.WebsocketAPI(url=url)

    async def listen_token(symbol: str | None = None, is_isolated: bool = False) -> dict[str, Any]:
        return {"token": f"token-{symbol}", "expirationTime": 4_000_000_000_000}

    client.margin_create_listen_token = listen_token
    manager: Any = streams.BinanceSocketManager(client)
    sockets = [manager.margin_socket()]
    sockets += [manager.isolated_margin_socket(symbol) for symbol in bench_stream.ACCOUNTS[1:]]
    seen = 0
    done = asyncio.Event()

    def callback(message: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == total:
            done.set()

    async def consume(socket: Any) -> None:
        while True:
            callback(await socket.recv())

    start = time.process_time()
    try:
        for socket in sockets:
            await socket.__aenter__()
        consumers = [asyncio.create_task(consume(socket)) for socket in sockets]
        await done.wait()
        elapsed = time.process_time() - start
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        for socket in sockets:
            await socket.__aexit__(None, None, None)
    finally:
        await client.close_connection()
    return elapsed


def _stream(skipped: list[str]) -> list[str]:
    async_client = _peer("binance.async_client", skipped)
    streams = _peer("binance.ws.streams", skipped)
    websocket_api = _peer("binance.ws.websocket_api", skipped)
    python_binance = None
    if async_client is not None and streams is not None and websocket_api is not None:
        python_binance = (async_client, streams, websocket_api)
    total = bench_stream.FRAMES
    ours: list[float] = []
    theirs: list[float] = []
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=bench_stream._server_main, args=(child, total), daemon=True)
    server.start()
    try:
        url = f"ws://127.0.0.1:{parent.recv()}/ws-api/v3"
        for _ in range(_STREAM_ROUNDS):
            ours.append(asyncio.run(bench_stream._ours(url, total))[0])
            if python_binance is not None:
                theirs.append(asyncio.run(_python_binance_stream(*python_binance, url, total)))
    finally:
        parent.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
    ours_us = statistics.median(ours) / total * 1e6
    lines = [
        f"stream: {total} user-data frames x {_STREAM_ROUNDS} rounds (bench_stream mix, "
        f"3 accounts), median CPU (target: ours >= 5x peer events/s)",
        f"  {'UserDataStream (typed events + dispatch)':<50} {ours_us:6.2f} µs/event "
        f"{1e6 / ours_us:>10,.0f} events/s",
    ]
    if theirs:
        theirs_us = statistics.median(theirs) / total * 1e6
        lines.append(
            f"  {'python-binance margin+isolated sockets, recv()':<50} {theirs_us:6.2f} µs/event "
            f"{1e6 / theirs_us:>10,.0f} events/s  (ours {theirs_us / ours_us:.2f}x the events/s)"
        )
    return lines


def run() -> list[str]:
    """REST CPU per request and stream events/s of the peers, each next to ours from this run."""
    skipped: list[str] = []
    lines = _rest(skipped) + _stream(skipped)
    return lines + [f"  {line}" for line in dict.fromkeys(skipped)]


if __name__ == "__main__":
    for line in run():
        print(line)
