"""RedisEventBus across real processes: a real Redis-compatible server, FakeExchange in this
process, publishers and consumers as child processes (tests/_bus_child.py).

Fan-out: two publisher candidates and three consumers; the leading publisher is SIGKILLed in the
middle of the traffic, the other takes over, and every consumer must have received exactly the
events the exchange emitted, in order per account, except events inside the reported handover gap;
one consumer is restarted midway and must resume with nothing lost and nothing repeated.

Waits are bounded polls for a condition (scaled by BMA_TEST_TIMEOUT_SCALE), never timing
assertions; the failover time is printed, not asserted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from _redis import RedisServer, scaled

from binance_margin_async.testing import FakeExchange

CHILD = str(Path(__file__).with_name("_bus_child.py"))
ACCOUNT = "fleet"
LEASE_TTL = scaled(1.5)
# Seconds added around gap windows for events in flight. Small here, so that most of the traffic
# before the kill lies outside the handover gap and its delivery is really checked.
MARGIN = 0.25
SYMBOL = "BTCUSDT"


class Child:
    """A child process whose stdout lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str, env: Mapping[str, str] | None = None) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            CHILD,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode().strip())

    def go(self) -> None:
        """Release a child started with ``--after-go``."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")

    def send(self, sig: int) -> None:
        if self.process.returncode is None:
            self.process.send_signal(sig)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        self.send(sig)
        try:
            async with asyncio.timeout(scaled(15)):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        await self.reader
        return code


async def until(condition: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after a generous ``within`` s."""
    deadline = time.monotonic() + scaled(within)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def latest_token(publisher: Child) -> int:
    """The fencing token of the publisher's latest term (0 if it never published)."""
    return max((int(line.split()[1]) for line in publisher.lines if "LEADING" in line), default=0)


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def check_against_emitted(
    emitted: list[tuple[str, dict[str, Any]]], received: list[dict[str, Any]]
) -> tuple[int, list[dict[str, Any]]]:
    """Every emitted event is received once, in order per account, unless it lies inside a gap
    reported for its account; nothing else is received. Returns (events matched outside every
    gap, gaps)."""
    gaps = [r for r in received if r["type"] == "StreamGap"]
    matched = 0
    for account in {scope for scope, _ in emitted}:
        windows = [(g["started_ms"], g["ended_ms"]) for g in gaps if g["account"] == account]
        want = [event for scope, event in emitted if scope == account]
        got = [r["raw"] for r in received if r["account"] == account and "e" in r["raw"]]
        position = 0
        for event in want:
            in_gap = any(lo <= event["E"] <= hi for lo, hi in windows)
            if position < len(got) and got[position] == event:
                position += 1
                matched += not in_gap
                continue
            assert in_gap, (
                f"{account}: {event['e']} at {event['E']} lost outside every gap {windows}"
            )
        assert position == len(got), (
            f"{account}: unexpected, repeated or reordered: {got[position]}"
        )
    return matched, gaps


@pytest.mark.timeout(120)
async def test_fan_out_survives_a_killed_publisher_and_a_restarted_consumer(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with FakeExchange(seed=3) as ex:
        creds = ex.add_account(
            margin_balances={"USDT": "100000"},
            isolated={SYMBOL: {"USDT": "100000"}},
        )
        emitted: list[tuple[str, dict[str, Any]]] = []
        ex.on_emit(lambda scope, event, at: emitted.append((scope, dict(event))))
        common = [redis_server.url, ACCOUNT, str(LEASE_TTL), str(MARGIN)]
        keys = {"BMA_API_KEY": creds.api_key, "BMA_API_SECRET": creds.api_secret or ""}
        outputs = [tmp_path / f"c{i}.jsonl" for i in range(3)]
        restarted = tmp_path / "c1-after-restart.jsonl"
        children: list[Child] = []
        try:
            consumers = [
                await Child.start("consumer", *common, f"c{i}", str(outputs[i])) for i in range(3)
            ]
            children += consumers
            urls = [ex.rest_url, ex.ws_api_url, ex.risk_stream_url]
            publishers = [
                await Child.start("publisher", *common, *urls, SYMBOL, env=keys) for _ in range(2)
            ]
            children += publishers
            await until(lambda: all("READY" in c.lines for c in consumers), 30, "consumers")
            await until(lambda: any(p.lines for p in publishers), 30, "a publisher")

            deposits: list[tuple[int, str, Decimal]] = []  # (server ms, wallet, amount)
            stop_traffic = asyncio.Event()

            async def traffic() -> None:
                step = 0
                while not stop_traffic.is_set():
                    step += 1
                    wallet = "CROSS" if step % 2 else SYMBOL
                    amount = Decimal(step) / 1000
                    deposits.append((ex.server_time_ms(), wallet, amount))
                    ex.deposit(creds.account_id, "USDT", amount, wallet=wallet)
                    await asyncio.sleep(0.01)

            traffic_task = asyncio.create_task(traffic())
            await until(lambda: len(records(outputs[0])) >= 150, 30, "traffic before the kill")

            # The publisher now is the one with the newest term.
            first = max(publishers, key=latest_token)
            second = next(p for p in publishers if p is not first)
            killed_token = latest_token(first)
            killed_at = ex.server_time_ms()
            killed = time.monotonic()
            await first.stop(signal.SIGKILL)
            await until(lambda: latest_token(second) > killed_token, 30, "the takeover")
            failover = time.monotonic() - killed
            print(f"\nfailover: SIGKILL to the new publisher's stream live in {failover:.2f} s")

            # Restart a consumer mid-traffic: it must resume exactly where it stopped. (The new
            # process is started first and waits for "go": Python's start-up is not the point.)
            replacement = await Child.start("consumer", *common, "c1", str(restarted), "--after-go")
            children.append(replacement)
            before = len(records(outputs[1]))
            assert await consumers[1].stop(signal.SIGTERM) == 0
            await asyncio.sleep(0.2)  # events keep coming while it is away
            replacement.go()
            consumers[1] = replacement
            await until(lambda: "READY" in replacement.lines, 30, "the restarted consumer")
            await until(lambda: len(records(restarted)) >= 20, 30, "events after the restart")
            stop_traffic.set()
            await traffic_task

            # A last event everyone must see: then every consumer has read everything before it.
            ex.deposit(creds.account_id, "USDT", "777", wallet="CROSS")
            final = {"e": "balanceUpdate", "d": "777.00000000"}

            def has_final(paths: list[Path]) -> bool:
                return any(
                    r["raw"].get("e") == final["e"] and r["raw"].get("d") == final["d"]
                    for path in paths
                    for r in records(path)
                )

            streams = [[outputs[0]], [outputs[1], restarted], [outputs[2]]]
            await until(lambda: all(has_final(paths) for paths in streams), 30, "the last event")
        finally:
            await asyncio.gather(*(child.stop() for child in children))

        checked = 0
        for paths in streams:
            received = [r for path in paths for r in records(path)]
            matched, gaps = check_against_emitted(emitted, received)
            assert matched >= 50  # not vacuous: most events lie outside every gap
            checked += matched
            handover = [g for g in gaps if g["raw"].get("reason") == "publisher handover"]
            assert {g["account"] for g in handover} == {"CROSS", SYMBOL}
            assert any(g["started_ms"] <= killed_at <= g["ended_ms"] for g in handover)
            # Deposits made while nobody published are inside the gap of their account.
            seen = {
                (r["account"], Decimal(r["raw"]["d"]))
                for r in received
                if r["raw"].get("e") == "balanceUpdate"
            }
            for at, wallet, amount in deposits:
                if (wallet, amount) not in seen:
                    assert any(
                        g["account"] == wallet and g["started_ms"] <= at <= g["ended_ms"]
                        for g in gaps
                    ), f"deposit {amount} to {wallet} at {at} missing outside every gap"
            # The mirror is on: a Resynced follows each handover gap.
            types = [r["type"] for r in received]
            assert "Resynced" in types[types.index("StreamGap") :]
        assert len(records(outputs[1])) >= before  # nothing was appended twice by the restart
        print(f"events checked outside gaps: {checked} across 3 consumers ({len(emitted)} emitted)")
