"""Fleet: one account's user-data stream shared by many processes through Redis (RedisEventBus).

What it shows:

* **publisher candidates** (``fleet.py publisher``): each runs ``bus.publisher(client)``; exactly
  one of them holds the account's lease at a time, runs the user-data stream and appends every
  event to a Redis Stream. Run two (on two hosts, ideally): when the publishing one dies, the
  other takes over within a few seconds and reports the handover as a ``StreamGap``;
* **consumers** (``fleet.py consumer NAME``): each reads every event, typed, with the same
  ``on(...)`` API as ``client.user_stream()``; a named consumer resumes after a restart where it
  stopped, with nothing lost and nothing repeated;
* ``fleet.py`` alone starts two publisher candidates and two consumers on this machine as child
  processes and relays what they print. With ``--fake`` it also starts a fake exchange in this
  process, makes deposits and trades on it, and SIGKILLs the publishing process halfway, so the
  takeover and its gap show in every consumer's output.

Run it (a Redis or Valkey server must be listening at ``--redis``)::

    python examples/fleet.py --fake --duration 10 --redis redis://127.0.0.1:6379/0

    export BINANCE_API_KEY=... BINANCE_API_SECRET=...     # or BINANCE_PRIVATE_KEY_FILE=key.pem
    python examples/fleet.py publisher --redis redis://10.0.0.5:6379/0 --account main  # host A
    python examples/fleet.py publisher --redis redis://10.0.0.5:6379/0 --account main  # host B
    python examples/fleet.py consumer risk --redis redis://10.0.0.5:6379/0 --account main

On Binance it only reads (listen tokens and the account snapshot of the mirror).

Docs: README "Running many processes"; https://developers.binance.com/docs/margin_trading/trade-data-stream
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence

from _common import SetupError, fmt, make_parser, open_venue, run_main, run_until_stopped

from binance_margin_async import MarginClient
from binance_margin_async.events import (
    AccountPosition,
    BalanceUpdate,
    Event,
    ExecutionReport,
    Resynced,
    StreamGap,
)
from binance_margin_async.redis import RedisEventBus
from binance_margin_async.testing import FakeExchange

# The fake exchange's URLs, handed to the child processes of `fleet.py --fake`.
FAKE_URLS_ENV = "FLEET_FAKE_URLS"
CONSUMER_NAMES = ("alpha", "beta", "gamma", "delta")


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument(
        "role",
        nargs="?",
        choices=("all", "publisher", "consumer"),
        default="all",
        help="run everything here as child processes (default), or one publisher or consumer",
    )
    parser.add_argument("name", nargs="?", default="main", help="the consumer's name")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument("--account", default="main", help="the account's label on the bus")
    parser.add_argument(
        "--lease-ttl", type=float, default=3.0, help="publisher lease, seconds (default 3)"
    )
    parser.add_argument(
        "--consumers",
        type=int,
        choices=range(1, len(CONSUMER_NAMES) + 1),
        default=2,
        help="consumer processes to start (default 2)",
    )
    return parser


def describe(event: Event) -> str:
    """One line per event."""
    if isinstance(event, BalanceUpdate):
        return f"balance {event.asset} {event.delta:+f}"
    if isinstance(event, AccountPosition):
        held = ", ".join(f"{b.asset} {fmt(b.free)}" for b in event.balances)
        return f"position {held}"
    if isinstance(event, ExecutionReport):
        if event.execution_type == "TRADE":
            done = f"{fmt(event.last_executed_quantity)} @ {fmt(event.last_executed_price)}"
        else:
            done = f"{fmt(event.quantity)} {event.order_type}"
        return f"order {event.symbol} {event.side} {event.execution_type} {done}"
    if isinstance(event, StreamGap):
        return f"GAP of {event.ended - event.started:.1f} s ({event.raw.get('reason')})"
    if isinstance(event, Resynced):
        return "RESYNCED from REST"
    return type(event).__name__


def child_client() -> MarginClient | None:
    """In a child of `fleet.py --fake`: a client of the parent's fake exchange."""
    urls = os.environ.get(FAKE_URLS_ENV)
    if not urls:
        return None
    rest, ws_api, risk = urls.split()
    return MarginClient(
        os.environ["BINANCE_API_KEY"],
        os.environ["BINANCE_API_SECRET"],
        base_url=rest,
        ws_api_url=ws_api,
        risk_stream_url=risk,
    )


async def publish(args: argparse.Namespace) -> None:
    bus = RedisEventBus(args.redis, account=args.account, lease_ttl=args.lease_ttl)
    client = child_client()
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            venue = await stack.enter_async_context(open_venue(False))
            client = venue.client
        else:
            await stack.enter_async_context(client)
        await stack.enter_async_context(bus)
        candidate = bus.publisher(client, mirror=True)
        candidate.on_error(lambda exc: print(f"publisher {os.getpid()}: {exc}"))
        async with candidate:
            print(f"publisher {os.getpid()}: standing by")

            async def announce() -> None:
                await candidate.wait_leading()
                print(f"publisher {os.getpid()}: publishing (fencing token {candidate.token})")

            await run_until_stopped(args.duration, announce())


async def consume(args: argparse.Namespace) -> None:
    async with RedisEventBus(args.redis, account=args.account) as bus:
        consumer = bus.consumer(args.name)
        consumer.on(Event, lambda event: print(f"[{args.name}] {event.account}: {describe(event)}"))
        consumer.on_error(lambda exc: print(f"[{args.name}] error: {exc}"))
        async with consumer:
            print(f"[{args.name}] reading from {consumer.position}")
            await run_until_stopped(args.duration)


class Child:
    """A child process of this script; its output is relayed line by line."""

    def __init__(self, process: asyncio.subprocess.Process, label: str) -> None:
        self.process = process
        self.label = label
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self.relay = asyncio.create_task(self._relay())

    @classmethod
    async def start(cls, label: str, argv: list[str], env: dict[str, str]) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **env},
        )
        return cls(process, label)

    async def _relay(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode().rstrip()
            self.lines.append(line)
            self._changed.set()
            print(f"{self.label:>6} | {line}")
        self._changed.set()

    async def wait_for(self, text: str) -> bool:
        """Wait until the child printed a line containing ``text``; False if it exited first."""
        while not any(text in line for line in self.lines):
            if self.relay.done():
                return False
            self._changed.clear()
            await self._changed.wait()
        return True

    async def stop(self, sig: int = signal.SIGINT) -> None:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            async with asyncio.timeout(15):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self.relay


async def fake_market(exchange: FakeExchange, account_id: str, client: MarginClient) -> None:
    """Deposits and small market orders on the fake account, every few hundred ms."""
    step = 0
    while True:
        step += 1
        await asyncio.sleep(0.25)
        if step % 3:
            exchange.deposit(account_id, "USDT", step, wallet="CROSS")
        else:
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001")


async def run_all(args: argparse.Namespace) -> None:
    common = ["--redis", args.redis, "--account", args.account, "--lease-ttl", str(args.lease_ttl)]
    env: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        exchange: FakeExchange | None = None
        if args.fake:
            exchange = await stack.enter_async_context(FakeExchange(seed=1))
            creds = exchange.add_account(margin_balances={"USDT": "100000"})
            client = await stack.enter_async_context(exchange.client(creds))
            env = {
                FAKE_URLS_ENV: f"{exchange.rest_url} {exchange.ws_api_url} "
                f"{exchange.risk_stream_url}",
                "BINANCE_API_KEY": creds.api_key,
                "BINANCE_API_SECRET": creds.api_secret or "",
            }
        names = CONSUMER_NAMES[: args.consumers]
        children = [await Child.start(name, ["consumer", name, *common], env) for name in names]
        publishers = [await Child.start(f"pub{i}", ["publisher", *common], env) for i in (1, 2)]
        children += publishers
        try:
            # Python and the library take a while to import on a busy machine: start the clock
            # once every child is up.
            await asyncio.gather(*(child.wait_for(" ") for child in children))
            if exchange is None:
                await run_until_stopped(args.duration)
            else:
                # Half the time with the first publisher, then the failover, then the rest.
                half = (args.duration or 10.0) / 2
                market = asyncio.create_task(fake_market(exchange, creds.account_id, client))
                try:
                    await run_until_stopped(half)
                    await failover(publishers)
                    await run_until_stopped(half)
                finally:
                    market.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await market
        finally:
            await asyncio.gather(*(child.stop() for child in children))
    for name in names:
        label = f"[{name}]"
        lines = [
            line
            for child in children
            for line in child.lines
            if line.startswith(label) and " error: " not in line
        ]
        gaps = sum("GAP" in line for line in lines)
        print(f"consumer {name}: {len(lines)} events, {gaps} reported gaps")


async def failover(publishers: Sequence[Child]) -> None:
    """SIGKILL the publishing process (once there is one); report how long the other took to
    take over."""
    waits = {asyncio.create_task(p.wait_for("publishing")): p for p in publishers}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    leader = waits[done.pop()]
    standby = next(p for p in publishers if p is not leader)
    print(f"fleet: SIGKILL {leader.label} (pid {leader.process.pid})")
    killed = time.monotonic()
    await leader.stop(signal.SIGKILL)
    await standby.wait_for("publishing")
    print(f"fleet: {standby.label} took over after {time.monotonic() - killed:.1f} s")


async def run(args: argparse.Namespace) -> int:
    if args.role == "publisher":
        await publish(args)
    elif args.role == "consumer":
        await consume(args)
    elif args.fake or os.environ.get("BINANCE_API_KEY"):
        await run_all(args)
    else:
        raise SetupError(
            "set BINANCE_API_KEY and BINANCE_API_SECRET (or BINANCE_PRIVATE_KEY_FILE), "
            "or pass --fake"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
