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
import os
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, Final, TextIO

from . import __version__
from ._monitor import run_monitor as _run_monitor
from .errors import BinanceError, ParameterError
from .events import (
    AccountPosition,
    BalanceUpdate,
    ExecutionReport,
    LiabilityChange,
    ListStatus,
    MarginLevelStatusChange,
    Resynced,
    StateChanged,
    StreamGap,
    UnknownEvent,
)
from .formatting import format_amount as _amount
from .models import IsolatedAsset, IsolatedPairAccount
from .rest import DEFAULT_BASE_URL, DEFAULT_RISK_STREAM_URL, DEFAULT_WS_API_URL, MarginClient
from .testing import FakeExchange

__all__ = [
    "ENVIRONMENT_HELP",
    "SetupError",
    "add_connection_options",
    "client_from_env",
    "main",
    "monitor_main",
]

ENVIRONMENT_HELP: Final = """\
environment (read without --fake; never printed):
  BINANCE_API_KEY                API key
  BINANCE_API_SECRET             its HMAC secret, or instead
  BINANCE_PRIVATE_KEY_FILE       path to its Ed25519 or RSA private key (PKCS#8 PEM)
  BINANCE_PRIVATE_KEY_PASSWORD   password of that PEM file, if it has one

exit status: 0 done, 130 interrupted (Ctrl-C), 2 bad command line or environment,
1 Binance or the network refused (one line on stderr)"""

# Exit statuses, the shell's conventions: 130 = 128 + SIGINT.
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_SETUP: Final = 2
EXIT_INTERRUPTED: Final = 130


class SetupError(Exception):
    """The command line or the environment does not say how to run; the text is one line."""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--base-url``, ``--ws-api-url``, ``--risk-stream-url``: where the client connects.

    They default to Binance production; point them at a standalone fake exchange
    (``binance-margin-fake``) to run with its demo keys.
    """
    group = parser.add_argument_group("where to connect (default: Binance production)")
    group.add_argument("--base-url", metavar="URL", help=f"REST base URL ({DEFAULT_BASE_URL})")
    group.add_argument(
        "--ws-api-url", metavar="URL", help=f"WebSocket API URL ({DEFAULT_WS_API_URL})"
    )
    group.add_argument(
        "--risk-stream-url", metavar="URL", help=f"risk stream URL ({DEFAULT_RISK_STREAM_URL})"
    )


def client_from_env(
    env: Mapping[str, str], args: argparse.Namespace, **options: Any
) -> MarginClient:
    """A :class:`MarginClient` with the keys of ``env`` (see :data:`ENVIRONMENT_HELP`), the
    URLs of ``args`` (:func:`add_connection_options`) and further ``MarginClient`` ``options``
    (e.g. ``special_key=True``).

    Raises :class:`SetupError` with one line saying what is missing or unusable; the key
    material itself is never part of it.
    """
    api_key = env.get("BINANCE_API_KEY")
    secret = env.get("BINANCE_API_SECRET")
    key_file = env.get("BINANCE_PRIVATE_KEY_FILE")
    if not api_key or not (secret or key_file):
        raise SetupError(
            "set BINANCE_API_KEY and BINANCE_API_SECRET (or BINANCE_PRIVATE_KEY_FILE), "
            "or pass --fake"
        )
    private_key = None
    if key_file:
        try:
            private_key = Path(key_file).read_bytes()
        except OSError as exc:
            raise SetupError(
                f"cannot read BINANCE_PRIVATE_KEY_FILE {key_file!r}: {exc.strerror or exc}"
            ) from None
    urls = {
        name: value
        for name in ("base_url", "ws_api_url", "risk_stream_url")
        if (value := getattr(args, name, None))
    }
    try:
        return MarginClient(
            api_key,
            None if private_key is not None else secret,
            private_key=private_key,
            private_key_password=env.get("BINANCE_PRIVATE_KEY_PASSWORD") or None,
            **urls,
            **options,
        )
    except ParameterError as exc:
        source = {
            "api_key": "BINANCE_API_KEY",
            "api_secret": "BINANCE_API_SECRET",
            "private_key": f"BINANCE_PRIVATE_KEY_FILE {key_file!r}",
            "private_key_password": "BINANCE_PRIVATE_KEY_PASSWORD",
        }.get(exc.param, exc.param)
        raise SetupError(f"{source}: {exc.message}") from None


# The events the demo and the monitor show; `stream.on` takes the union as it is.
_Event = (
    ExecutionReport
    | AccountPosition
    | BalanceUpdate
    | ListStatus
    | LiabilityChange
    | MarginLevelStatusChange
    | StreamGap
    | StateChanged
    | Resynced
    | UnknownEvent
)


def describe(event: _Event) -> str:
    """One human line per event (used by the demo, the monitor and the examples)."""
    match event:
        case ExecutionReport():
            fill = ""
            if event.last_executed_quantity:
                quantity, price = event.last_executed_quantity, event.last_executed_price
                fill = f" filled {_amount(quantity)} @ {_amount(price)}"
            return (
                f"executionReport  {event.symbol} {event.side} {event.order_type} "
                f"#{event.order_id} {event.execution_type}/{event.order_status}{fill}"
            )
        case AccountPosition():
            balances = ", ".join(
                f"{b.asset} {_amount(b.free)}/{_amount(b.locked)}" for b in event.balances
            )
            return f"accountPosition  free/locked: {balances}"
        case BalanceUpdate():
            sign = "+" if event.delta > 0 else ""
            return f"balanceUpdate    {event.asset} {sign}{_amount(event.delta)}"
        case ListStatus():
            return (
                f"listStatus       {event.symbol} list #{event.order_list_id} "
                f"{event.list_order_status}"
            )
        case LiabilityChange():
            return (
                f"liabilityChange  {event.asset} {event.liability_type} "
                f"principal {_amount(event.principal)} interest {_amount(event.interest)}"
            )
        case MarginLevelStatusChange():
            return f"MARGIN LEVEL     {event.status} (level {_amount(event.margin_level)})"
        case StreamGap():
            return f"STREAM GAP       {event.ended - event.started:.3f} s"
        case StateChanged():
            return f"STREAM {event.channel:<9} {event.previous} → {event.state}"
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
        "weight_by_pool": {pool: used for pool, used in usage.items() if used},
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
    say(f"  request weight used      {summary['weight_used']}, by pool:")
    for pool, used in sorted(usage.items()):
        if used:
            say(f"    {pool:<40} {used}")
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

    await step(
        "5. de-risk: sell the BTC with AUTO_REPAY, sell the isolated ETH with AUTO_REPAY, "
        "then repay every loan that is left"
    )
    await client.new_order(
        "BTCUSDT", "SELL", "MARKET", quantity="0.39", side_effect_type="AUTO_REPAY"
    )
    (pair,) = (await client.get_isolated_account(symbols=["ETHUSDT"])).assets
    eth = pair.base_asset.free if pair.base_asset and pair.base_asset.free else Decimal(0)
    await client.new_order(
        "ETHUSDT",
        "SELL",
        "MARKET",
        quantity=eth.quantize(Decimal("0.0001"), ROUND_DOWN),  # what the commission left
        side_effect_type="AUTO_REPAY",
        is_isolated=True,
    )
    account = await client.get_account()
    for asset in account.user_assets:
        owed = (asset.borrowed or 0) + (asset.interest or 0)
        if owed and asset.asset:
            await client.repay(asset.asset, owed)
    for pair in (await client.get_isolated_account(symbols=["ETHUSDT"])).assets:
        for side in _sides(pair):
            owed = (side.borrowed or 0) + (side.interest or 0)
            if owed and side.asset and pair.symbol:
                await client.repay(side.asset, owed, symbol=pair.symbol)
    await _until(lambda: statuses[-1:] != ["MARGIN_CALL"])
    account = await client.get_account()
    isolated = await client.get_isolated_account(symbols=["ETHUSDT"])
    left = [f"{a.asset} (cross)" for a in account.user_assets if a.borrowed or a.interest] + [
        f"{side.asset} ({pair.symbol})"
        for pair in isolated.assets
        for side in _sides(pair)
        if side.borrowed or side.interest
    ]
    await step(
        f"   cross margin level now {_amount(account.margin_level)}, last status {statuses[-1]}; "
        f"loans left: {', '.join(left) or 'none'}"
    )


def _sides(pair: IsolatedPairAccount) -> list[IsolatedAsset]:
    return [side for side in (pair.base_asset, pair.quote_asset) if side is not None]


async def run_monitor(
    args: argparse.Namespace, *, env: Mapping[str, str], out: TextIO | None = None
) -> int:
    """The live risk view (see :mod:`binance_margin_async._monitor`)."""
    return await _run_monitor(
        args, env=env, out=out, describe=describe, client_from_env=client_from_env
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m binance_margin_async",
        description="Binance Margin in the terminal: a demo on the fake exchange, a live monitor.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="a margin lifecycle end to end on the in-process fake exchange")
    monitor = sub.add_parser(
        "monitor",
        help="live risk view of a margin account",
        description="Live risk view of a margin account (cross and isolated pairs).",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_monitor_options(monitor)
    return parser


def add_monitor_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``monitor`` (also the whole command line of ``binance-margin-monitor``)."""
    parser.add_argument(
        "--fake",
        action="store_true",
        help="watch an in-process fake exchange running a scenario (borrow, trade, margin call)",
    )
    parser.add_argument(
        "--isolated",
        action="append",
        default=[],
        metavar="SYMBOL",
        help="also watch this isolated margin pair (repeatable), e.g. ETHUSDT",
    )
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="--fake only: run the scenario X times faster than real time (default 1)",
    )
    parser.add_argument(
        "--price-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="poll the margin price index every SECONDS (default 2; weight 10 per symbol)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="plain text frames even when rich is installed"
    )
    add_connection_options(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m binance_margin_async``: 0 done, 2 setup error, 130 Ctrl-C."""
    args = _parser().parse_args(argv)
    return _run(args)


def monitor_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``binance-margin-monitor`` console script."""
    parser = argparse.ArgumentParser(
        prog="binance-margin-monitor",
        description="Live risk view of a Binance margin account (cross and isolated pairs).",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_monitor_options(parser)
    args = parser.parse_args(argv)
    args.command = "monitor"
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "demo":
            asyncio.run(run_demo())
            return EXIT_OK
        return asyncio.run(run_monitor(args, env=os.environ))
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except BinanceError as exc:
        # e.g. -2015 (key rejected), no route to Binance: one line, not a traceback.
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
