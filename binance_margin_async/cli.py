"""Command line: ``python -m binance_margin_async demo`` and ``... monitor``.

``demo`` runs a whole margin lifecycle end to end against the in-process fake exchange, through the
real client and streams, and prints every event as it arrives, then a summary. ``monitor`` is a live
terminal view of an account: real keys from the environment, or ``--fake``.

This shell is the only part of the project that reads the environment or files; the library itself
never does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from .events import (
    AccountPosition,
    BalanceUpdate,
    ExecutionReport,
    LiabilityChange,
    ListStatus,
    MarginLevelStatusChange,
    Resynced,
    StreamGap,
    UnknownEvent,
)
from .rest import MarginClient
from .testing import FakeExchange

__all__ = ["main"]

# The events the demo and the monitor show; `stream.on` takes the union as it is.
_Event = (
    ExecutionReport
    | AccountPosition
    | BalanceUpdate
    | ListStatus
    | LiabilityChange
    | MarginLevelStatusChange
    | StreamGap
    | Resynced
    | UnknownEvent
)


def describe(event: _Event) -> str:
    """One human line per event (used by the demo, the monitor and the examples)."""
    match event:
        case ExecutionReport():
            fill = ""
            if event.last_executed_quantity:
                fill = f" filled {event.last_executed_quantity:f} @ {event.last_executed_price:f}"
            return (
                f"executionReport  {event.symbol} {event.side} {event.order_type} "
                f"#{event.order_id} {event.execution_type}/{event.order_status}{fill}"
            )
        case AccountPosition():
            balances = ", ".join(f"{b.asset} {b.free:f}/{b.locked:f}" for b in event.balances)
            return f"accountPosition  free/locked: {balances}"
        case BalanceUpdate():
            return f"balanceUpdate    {event.asset} {event.delta:+f}"
        case ListStatus():
            return (
                f"listStatus       {event.symbol} list #{event.order_list_id} "
                f"{event.list_order_status}"
            )
        case LiabilityChange():
            return (
                f"liabilityChange  {event.asset} {event.liability_type} "
                f"principal {event.principal:f} interest {event.interest:f}"
            )
        case MarginLevelStatusChange():
            return f"MARGIN LEVEL     {event.status} (level {event.margin_level:f})"
        case StreamGap():
            return f"STREAM GAP       {event.ended - event.started:.3f} s"
        case Resynced():
            return "resynced         mirror reloaded from REST"
        case UnknownEvent():
            return f"unknown event    {event.event_type}"


class _Latency:
    """Matches each delivered event with the moment the fake exchange sent it.

    Events of one account arrive in the order they were sent, so a FIFO of send times per
    (account, event type) pairs them without touching the payloads.
    """

    def __init__(self) -> None:
        self._sent: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.samples: list[float] = []

    def sent(self, scope: str, payload: Mapping[str, Any], at: float) -> None:
        self._sent[(scope, str(payload.get("e")))].append(at)

    def delivered(self, account: str, raw: Mapping[str, Any]) -> None:
        queue = self._sent.get((account, str(raw.get("e"))))
        if queue:
            self.samples.append(time.perf_counter() - queue.popleft())


async def _quiet(total: Callable[[], int], *, still: float = 0.05, limit: float = 2.0) -> None:
    """Return once ``total()`` (events seen) has not moved for ``still`` seconds."""
    deadline = time.monotonic() + limit
    last = total()
    while time.monotonic() < deadline:
        await asyncio.sleep(still)
        now = total()
        if now == last:
            return
        last = now


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for stream callbacks to have seen something (they run on their own tasks)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the expected stream events did not arrive in time")
        await asyncio.sleep(0.01)


async def run_demo(out: TextIO = sys.stdout) -> dict[str, Any]:
    """The margin lifecycle of ``make demo``. Returns the summary it prints (for tests)."""
    started = time.perf_counter()
    counts: Counter[str] = Counter()
    statuses: list[str] = []
    latency = _Latency()

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    async def step(text: str) -> None:
        # Let the previous step's events print first, so the log reads in cause-effect order.
        await _quiet(lambda: sum(counts.values()))
        say(text)

    def on_event(event: _Event) -> None:
        counts[type(event).__name__] += 1
        if isinstance(event, MarginLevelStatusChange):
            statuses.append(str(event.status))
        if event.raw:
            latency.delivered(event.account, event.raw)
        say(f"  {time.perf_counter() - started:6.3f}s  [{event.account:>8}]  {describe(event)}")

    async with FakeExchange(seed=7) as ex:
        ex.on_emit(latency.sent)
        creds = ex.add_account(balances={"USDT": "25000", "BNB": "10"})
        say(f"fake exchange on {ex.rest_url}; account {creds}")
        async with ex.client(creds) as client:
            # An isolated pair must be enabled before a listen token can be made for it.
            await client.enable_isolated_account("ETHUSDT")
            stream = client.user_stream(isolated_symbols=["ETHUSDT"], risk=True)
            stream.on(_Event, on_event)
            stream.on_error(lambda exc: say(f"  callback error: {exc!r}"))
            async with stream:
                say("streams live: trade stream (CROSS, ETHUSDT) + risk stream\n")
                await _lifecycle(ex, client, statuses, step)
                await _quiet(lambda: sum(counts.values()))
            usage = client.limiter.usage(account=client.account)
    elapsed = time.perf_counter() - started
    summary: dict[str, Any] = {
        "events": dict(counts),
        "latency_ms_p50": _percentile(latency.samples, 0.50) * 1e3 if latency.samples else None,
        "latency_ms_p99": _percentile(latency.samples, 0.99) * 1e3 if latency.samples else None,
        "weight_used": sum(usage.values()),
        "seconds": elapsed,
        "statuses": statuses,
    }
    say("\nsummary")
    for name, count in sorted(counts.items()):
        say(f"  {name:<24} {count}")
    if latency.samples:
        say(
            f"  latency fake→callback    p50 {summary['latency_ms_p50']:.3f} ms, "
            f"p99 {summary['latency_ms_p99']:.3f} ms over {len(latency.samples)} events"
        )
    say(f"  request weight used      {summary['weight_used']} (by pool: {len(usage)} pools)")
    say(f"  wall time                {elapsed:.2f} s")
    return summary


async def _lifecycle(
    ex: FakeExchange,
    client: MarginClient,
    statuses: list[str],
    step: Callable[[str], Awaitable[None]],
) -> None:
    await step("1. fund: spot → cross margin 22,000 USDT, cross → isolated ETHUSDT 2,000 USDT")
    await client.transfer("MAIN_MARGIN", "USDT", "22000")
    await client.transfer("MARGIN_ISOLATED_MARGIN", "USDT", "2000", to_symbol="ETHUSDT")

    await step("2. borrow 20,000 USDT on cross margin")
    await client.borrow("USDT", "20000")

    await step(
        "3. trade: market-buy 0.5 BTC, rest a limit sell, buy ETH on isolated with MARGIN_BUY"
    )
    await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.5")
    limit = await client.new_order(
        "BTCUSDT", "SELL", "LIMIT", quantity="0.1", price="61000", time_in_force="GTC"
    )
    await client.new_order(
        "ETHUSDT", "BUY", "MARKET", quantity="1", side_effect_type="MARGIN_BUY", is_isolated=True
    )
    await step("   price rises to 61,500: the resting sell fills")
    ex.set_price("BTCUSDT", "61500")
    await client.get_order("BTCUSDT", order_id=limit.order_id)

    await step("4. price falls until Binance would make a margin call")
    price = Decimal("61500")
    while "MARGIN_CALL" not in statuses and price > 1000:
        price -= Decimal("2500")
        ex.set_price("BTCUSDT", price)
        await asyncio.sleep(0.05)
    await _until(lambda: "MARGIN_CALL" in statuses or "PRE_LIQUIDATION" in statuses)
    account = await client.get_account()
    await step(f"   REST agrees: cross margin level is {account.margin_level}")

    await step("5. de-risk: sell the BTC with AUTO_REPAY, then repay what is left")
    await client.new_order(
        "BTCUSDT", "SELL", "MARKET", quantity="0.39", side_effect_type="AUTO_REPAY"
    )
    account = await client.get_account()
    owed = {a.asset: (a.borrowed or 0) + (a.interest or 0) for a in account.user_assets}
    if owed.get("USDT"):
        await client.repay("USDT", owed["USDT"])
    await _until(lambda: statuses[-1:] != ["MARGIN_CALL"])
    account = await client.get_account()
    await step(f"   cross margin level now {account.margin_level}, last status {statuses[-1]}")


async def run_monitor(
    *,
    fake: bool,
    duration: float | None,
    interval: float,
    env: Mapping[str, str],
    out: TextIO = sys.stdout,
) -> int:
    """A live view of an account's balances, liabilities, margin level and events."""
    async with contextlib.AsyncExitStack() as stack:
        if fake:
            ex = await stack.enter_async_context(FakeExchange(seed=11))
            creds = ex.add_account(margin_balances={"USDT": "10000", "BTC": "0.1"})
            client = await stack.enter_async_context(ex.client(creds))
            stack.push_async_callback(_cancel, asyncio.create_task(_fake_activity(ex, client)))
        else:
            key = env.get("BINANCE_API_KEY")
            secret = env.get("BINANCE_API_SECRET")
            key_file = env.get("BINANCE_PRIVATE_KEY_FILE")
            if not key or not (secret or key_file):
                print(
                    "set BINANCE_API_KEY and BINANCE_API_SECRET (or BINANCE_PRIVATE_KEY_FILE), "
                    "or pass --fake",
                    file=sys.stderr,
                )
                return 2
            private_key = None
            if key_file:
                # Read once at start-up, before any connection exists: blocking here is harmless.
                private_key = Path(key_file).read_bytes()  # noqa: ASYNC240
            client = await stack.enter_async_context(
                MarginClient(key, secret, private_key=private_key)
            )
        stream = client.user_stream(risk=True, mirror=True)
        log: deque[str] = deque(maxlen=12)
        status = "(no risk event yet)"

        def on_status(event: MarginLevelStatusChange) -> None:
            nonlocal status
            status = str(event.status)

        stream.on(MarginLevelStatusChange, on_status)
        stream.on(_Event, lambda e: log.append(f"[{e.account}] {describe(e)}"))
        stream.on_error(lambda exc: log.append(f"error: {exc!r}"))
        await stack.enter_async_context(stream)
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            account = await client.get_account()
            orders = await client.get_open_orders()
            if out.isatty():
                out.write("\x1b[2J\x1b[H")
            out.write(
                f"margin level {account.margin_level}  status {status}  "
                f"net {account.total_net_asset_of_btc} BTC\n\n"
                f"{'asset':<8}{'free':>16}{'locked':>16}{'borrowed':>16}{'interest':>16}\n"
            )
            for a in account.user_assets:
                if a.free or a.locked or a.borrowed or a.interest:
                    out.write(
                        f"{a.asset:<8}{a.free:>16}{a.locked:>16}{a.borrowed:>16}{a.interest:>16}\n"
                    )
            out.write(f"\nopen orders: {len(orders)}\n")
            for o in orders:
                out.write(f"  {o.symbol} {o.side} {o.type} {o.orig_qty} @ {o.price}\n")
            out.write("\nevents:\n" + "".join(f"  {line}\n" for line in log) + "\n")
            out.flush()
            await asyncio.sleep(interval)
    return 0


async def _fake_activity(ex: FakeExchange, client: MarginClient) -> None:
    """Something to watch in ``monitor --fake``: trades and a wandering BTC price."""
    price = Decimal("60000")
    step = Decimal("400")
    while True:
        await client.new_order(
            "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price=price - 200, time_in_force="GTC"
        )
        price += step if price < 60000 else -step
        step = -step if abs(price - 60000) > 2000 else step
        ex.set_price("BTCUSDT", price)
        await asyncio.sleep(1.0)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m binance_margin_async``."""
    parser = argparse.ArgumentParser(prog="python -m binance_margin_async")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="a margin lifecycle end to end on the in-process fake exchange")
    monitor = sub.add_parser("monitor", help="live view of a margin account")
    monitor.add_argument("--fake", action="store_true", help="watch a fake exchange account")
    monitor.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    monitor.add_argument("--interval", type=float, default=1.0, help="refresh period, seconds")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            asyncio.run(run_demo())
            return 0
        return asyncio.run(
            run_monitor(
                fake=args.fake, duration=args.duration, interval=args.interval, env=os.environ
            )
        )
    except KeyboardInterrupt:
        return 130
