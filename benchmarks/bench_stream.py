"""CPU per user-data event: `UserDataStream` against a websockets + orjson floor, same frames.

A server in a child process (so its CPU is not counted; ``time.process_time`` covers this process
only) speaks just enough WebSocket API: it answers ``userDataStream.subscribe.listenToken`` with
subscription ids 0, 1, 2 and, once all three accounts are subscribed, writes FRAMES pre-framed
events as fast as the socket takes them: 70 % ``executionReport``, 20 %
``outboundAccountPosition``, 10 % ``balanceUpdate``, each in the ``{"subscriptionId": N,
"event": …}`` envelope, spread over the three accounts. Writing pre-encoded bytes keeps the
server far ahead of either client, so both measure a saturated client.

* **floor**: a websockets client (``recv(decode=False)``), ``orjson.loads`` and a trivial callback
  per frame; what a hand-written listener costs at minimum.
* **ours**: ``async with UserDataStream(...)`` over the same kind of connection: the real reader
  (route by subscriptionId, typed event from :mod:`.events`, dispatch backlog) and dispatcher
  (handler table, stats) to a trivial callback per typed event.

Both include connecting and subscribing (three WS API round trips), negligible next to the
events. CPU time on a shared machine only ever grows under load, so rounds are interleaved (the
side that goes first alternates) and both the min (the least disturbed run) and the median are
reported, with the ratio at the min and the median of the per-round ratios.

**Latency**: a second server paces ``balanceUpdate`` events at ``LATENCY_RATE`` per second, each
stamped (``T``, µs) with the wall clock right before its write; the callback subtracts that from
its own wall clock (same machine, same clock): p50/p99 from the server's send to our callback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import orjson
from websockets.asyncio.client import connect

from binance_margin_async import RateLimiter
from binance_margin_async.clock import ServerClock
from binance_margin_async.events import AccountPosition, BalanceUpdate, ExecutionReport, wire_key
from binance_margin_async.models import ListenToken
from binance_margin_async.stream import UserDataStream

FRAMES = 200_000
ROUNDS = 7
FLOOR_MAX_QUEUE = 16
ACCOUNTS = ("CROSS", "BTCUSDT", "ETHUSDT")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_DISTINCT = 4000  # distinct frames, cycled
_CHUNK = 2000  # frames per socket write
LATENCY_RATE = 1000  # events/s
LATENCY_EVENTS = 3000
_R = TypeVar("_R")


def _execution_report(n: int) -> dict[str, Any]:
    filled = n % 3 == 0
    return {
        "e": "executionReport",
        "E": 1_760_000_000_000 + n,
        "s": "BTCUSDT",
        "c": f"web_{n:016d}",
        "S": "BUY" if n % 2 else "SELL",
        "o": "LIMIT",
        "f": "GTC",
        "q": "0.01000000",
        "p": f"{60000 + n % 500}.12000000",
        "P": "0.00000000",
        "F": "0.00000000",
        "g": -1,
        "C": "",
        "x": "TRADE" if filled else "NEW",
        "X": "FILLED" if filled else "NEW",
        "r": "NONE",
        "i": 4_293_153 + n,
        "l": "0.01000000" if filled else "0.00000000",
        "z": "0.01000000" if filled else "0.00000000",
        "L": f"{60000 + n % 500}.12000000" if filled else "0.00000000",
        "n": "0.00000750" if filled else "0",
        "N": "BNB" if filled else None,
        "T": 1_760_000_000_000 + n,
        "t": 90_000 + n if filled else -1,
        "I": 8_641_984 + n,
        "w": not filled,
        "m": False,
        "M": False,
        "O": 1_760_000_000_000 + n,
        "Z": "600.00000000" if filled else "0.00000000",
        "Y": "600.00000000" if filled else "0.00000000",
        "Q": "0.00000000",
        "W": 1_760_000_000_000 + n,
        "V": "EXPIRE_MAKER",
    }


def _account_position(n: int) -> dict[str, Any]:
    return {
        "e": "outboundAccountPosition",
        "E": 1_760_000_000_000 + n,
        "u": 1_760_000_000_000 + n,
        "B": [
            {"a": "BTC", "f": f"0.{n % 100000:05d}000", "l": "0.00000000"},
            {"a": "USDT", "f": f"{10000 + n % 1000}.50000000", "l": "600.00000000"},
        ],
    }


def _balance_update(n: int) -> dict[str, Any]:
    return {
        "e": "balanceUpdate",
        "E": 1_760_000_000_000 + n,
        "a": "USDT",
        "d": f"{n % 1000}.00000000",
        "T": 1_760_000_000_000 + n,
    }


def _ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server → client frame."""
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, size])
    elif size < 65536:
        header = bytes([0x80 | opcode, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 127]) + size.to_bytes(8, "big")
    return header + payload


def _event_frames() -> list[bytes]:
    frames = []
    for n in range(_DISTINCT):
        kind = n % 10
        if kind < 7:
            event = _execution_report(n)
        elif kind < 9:
            event = _account_position(n)
        else:
            event = _balance_update(n)
        envelope = {"subscriptionId": n % len(ACCOUNTS), "event": event}
        frames.append(_ws_frame(orjson.dumps(envelope)))
    return frames


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One masked client → server frame (opcode, payload)."""
    head = await reader.readexactly(2)
    opcode = head[0] & 0x0F
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(size)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def _paced(writer: asyncio.StreamWriter, total: int, rate: int) -> None:
    """``total`` balanceUpdate events at ``rate`` per second, stamped at their write."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(total):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now_us = time.time_ns() // 1000
        event = {"e": "balanceUpdate", "E": now_us // 1000, "a": "USDT", "d": "1", "T": now_us}
        writer.write(_ws_frame(orjson.dumps({"subscriptionId": n % 3, "event": event})))
        await writer.drain()


async def _serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    frames: list[bytes],
    total: int,
    rate: int,
) -> None:
    request = await reader.readuntil(b"\r\n\r\n")
    key = b""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    subscribed = 0
    try:
        while True:
            opcode, payload = await _read_frame(reader)
            if opcode == 0x8:  # close: echo it and stop
                writer.write(_ws_frame(payload[:2], 0x8))
                await writer.drain()
                return
            if opcode == 0x9:
                writer.write(_ws_frame(payload, 0xA))
                continue
            if opcode != 0x1:
                continue
            message = orjson.loads(payload)
            result: Any = {}
            if message.get("method") == "userDataStream.subscribe.listenToken":
                result = {"subscriptionId": subscribed, "expirationTime": 4_000_000_000_000}
                subscribed += 1
            answer = {"id": message.get("id"), "status": 200, "result": result}
            writer.write(_ws_frame(orjson.dumps(answer)))
            if (
                subscribed == len(ACCOUNTS)
                and message.get("method") != "userDataStream.unsubscribe"
            ):
                subscribed += 1  # send once
                if rate:
                    asyncio.get_running_loop().create_task(_paced(writer, total, rate))
                    continue
                for start in range(0, total, _CHUNK):
                    count = min(_CHUNK, total - start)
                    writer.write(b"".join(frames[(start + i) % len(frames)] for i in range(count)))
                    await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    finally:
        writer.close()


def _server_main(pipe: Connection, total: int, rate: int = 0) -> None:
    async def main() -> None:
        frames = _event_frames()
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(r, w, frames, total, rate), "127.0.0.1", 0
        )
        pipe.send(server.sockets[0].getsockname()[1])
        async with server:
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(main())


class _BenchClient:
    """Just what UserDataStream needs from MarginClient; tokens come without any REST."""

    def __init__(self, url: str) -> None:
        self.ws_api_url = url
        self.risk_stream_url = url
        self.account = "bench"
        self.limiter = RateLimiter()
        self.clock = ServerClock()  # the local clock stands in for the server's

    async def sync_clock(self) -> None:
        """No server time here."""

    async def create_listen_token(
        self, *, symbol: str | None = None, validity_ms: int | None = None
    ) -> ListenToken:
        return ListenToken(token=f"token-{symbol}", expiration_time=4_000_000_000_000)


async def _floor(url: str, total: int) -> tuple[float, int]:
    """CPU seconds and events counted for ``total`` events through the hand-written floor."""
    seen = 0

    def callback(message: Any) -> None:
        nonlocal seen
        seen += 1

    loads = orjson.loads
    start = time.process_time()
    async with connect(url, max_queue=FLOOR_MAX_QUEUE) as ws:
        for sid in range(len(ACCOUNTS)):
            request = {"id": sid, "method": "userDataStream.subscribe.listenToken"}
            await ws.send(orjson.dumps({**request, "params": {"listenToken": "t"}}), text=True)
        recv = ws.recv
        while seen < total:
            message = loads(await recv(False))
            if "subscriptionId" in message:
                callback(message)
        elapsed = time.process_time() - start
    return elapsed, seen


async def _ours(url: str, total: int) -> tuple[float, int]:
    """CPU seconds and events counted for ``total`` events through ``UserDataStream``."""
    seen = 0
    done = asyncio.Event()

    def callback(event: object) -> None:
        nonlocal seen
        seen += 1
        if seen == total:
            done.set()

    stream = UserDataStream(
        _BenchClient(url),  # type: ignore[arg-type]
        isolated_symbols=ACCOUNTS[1:],
    )
    stream.on(ExecutionReport | AccountPosition | BalanceUpdate, callback)
    start = time.process_time()
    async with stream:
        await done.wait()
        elapsed = time.process_time() - start
    return elapsed, seen


async def _latency(url: str, total: int) -> list[float]:
    """Microseconds from the server's write to our callback, per event."""
    latencies: list[float] = []
    done = asyncio.Event()

    def callback(event: BalanceUpdate) -> None:
        latencies.append(time.time_ns() // 1000 - event.clear_time)
        if len(latencies) == total:
            done.set()

    stream = UserDataStream(_BenchClient(url), isolated_symbols=ACCOUNTS[1:])  # type: ignore[arg-type]
    stream.on(BalanceUpdate, callback)
    async with stream:
        await done.wait()
    return latencies


def _with_server(total: int, rate: int, job: Callable[[str], _R]) -> _R:
    """``job(url)`` against a server (child process) that sends ``total`` events per connection."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_server_main, args=(child, total, rate), daemon=True)
    server.start()
    try:
        return job(f"ws://127.0.0.1:{parent.recv()}/ws-api/v3")
    finally:
        parent.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.kill()


@dataclass(frozen=True)
class Rounds:
    """CPU seconds per round of each side and the events each round counted."""

    frames: int
    floor: list[float]
    ours: list[float]
    floor_seen: list[int]
    ours_seen: list[int]

    def us_per_event(self, side: list[float], pick: Callable[[list[float]], float]) -> float:
        """``pick`` (min or median) of ``side``'s rounds, in CPU µs per event."""
        return pick(side) / self.frames * 1e6

    def paired_ratios(self) -> list[float]:
        """ours / floor of each round: the two ran back to back, under the same load."""
        return [ours / floor for floor, ours in zip(self.floor, self.ours, strict=True)]


def measure(frames: int, rounds: int) -> Rounds:
    """``rounds`` interleaved runs of the floor and of ``UserDataStream``, ``frames`` events each.

    Which side goes first alternates, so a load spike or a warming cache favours neither.
    """

    def job(url: str) -> Rounds:
        result = Rounds(frames, [], [], [], [])
        for n in range(rounds):
            sides = [
                (_floor, result.floor, result.floor_seen),
                (_ours, result.ours, result.ours_seen),
            ]
            for fn, times, counts in sides if n % 2 == 0 else sides[::-1]:
                elapsed, seen = asyncio.run(fn(url, frames))
                times.append(elapsed)
                counts.append(seen)
        return result

    return _with_server(frames, 0, job)


def latencies(total: int, rate: int) -> list[float]:
    """Sorted µs from the server's write to our callback, ``total`` events at ``rate`` per s."""
    return sorted(_with_server(total, rate, lambda url: asyncio.run(_latency(url, total))))


def wire_keys_shared() -> bool:
    """Whether orjson hands out :func:`~binance_margin_async.events.wire_key`'s objects for the
    keys of every frame: the decoders' lookups stop at the identity test only while it does
    (decoding is right either way, so this is a performance fact, reported, not tested)."""
    frame = orjson.dumps({"subscriptionId": 0, "event": _execution_report(1)})
    msgs = [orjson.loads(frame) for _ in range(2)]
    return all(key is wire_key(key) for msg in msgs for key in [*msg, *msg["event"]])


def run() -> list[str]:
    """CPU µs per event (min and median of interleaved rounds), ratio and latency."""
    lat = latencies(LATENCY_EVENTS, LATENCY_RATE)
    p50 = lat[len(lat) // 2]
    p99 = lat[int(len(lat) * 0.99)]
    result = measure(FRAMES, ROUNDS)
    floor_min = result.us_per_event(result.floor, min)
    ours_min = result.us_per_event(result.ours, min)
    floor_med = result.us_per_event(result.floor, statistics.median)
    ours_med = result.us_per_event(result.ours, statistics.median)
    ratios = result.paired_ratios()
    return [
        f"frames per run: {FRAMES} (70% executionReport, 20% outboundAccountPosition, "
        f"10% balanceUpdate), {ROUNDS} interleaved rounds, server in a child process",
        f"floor (websockets recv + orjson.loads + callback): min {floor_min:.2f}, "
        f"median {floor_med:.2f} µs CPU/event ({1e6 / floor_min:,.0f} events/s of CPU at min)",
        f"UserDataStream (route + typed event + dispatch + callback): min {ours_min:.2f}, "
        f"median {ours_med:.2f} µs CPU/event ({1e6 / ours_min:,.0f} events/s of CPU at min)",
        f"ratio: {ours_min / floor_min:.2f}x floor at min, median of paired rounds "
        f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}; "
        "target <= 1.25x)",
        f"latency server send -> callback at {LATENCY_RATE} events/s ({LATENCY_EVENTS} events): "
        f"p50 {p50:.0f} µs, p99 {p99:.0f} µs",
        "orjson shares the decoders' key objects: "
        + ("yes" if wire_keys_shared() else "NO (decoding is slower)"),
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
