"""``monitor``: a live risk view of margin accounts, redrawn when the mirror changes.

Pure part: :class:`MonitorState` collects what the streams and the price poller report, and
:func:`frame` lays out one screen as lines of styled segments from that state, the mirror and
the estimator. Shell part: :func:`run_monitor` wires a client, its user-data stream (with the
mirror), the price-index poller and (``--fake``) the scenario, and draws each frame with rich
(``pip install 'binance-margin-async[cli]'``: colours, in place, no flicker) or as plain text
(cursor home and overwrite on a terminal, whole frames on a pipe).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TextIO

from ._scenario import CROSS_FUNDS, ISOLATED_FUNDS, Scenario
from .events import Event, MarginLevelStatusChange, StateChanged, StreamGap
from .formatting import format_amount
from .mirror import AccountMirror
from .models import MarginLevelStatus
from .risk import MarginLevelEstimate, PriceBook, PriceIndexPoller, RiskEstimator
from .testing import FakeExchange

__all__ = ["MonitorState", "Segment", "frame", "render_plain", "run_monitor"]

CROSS: Final = "CROSS"
Segment = tuple[str, str]  # (text, style name); style "" is plain
Line = list[Segment]

STATUS_STYLE: Final[Mapping[str, str]] = {
    MarginLevelStatus.EXCESSIVE: "green",
    MarginLevelStatus.NORMAL: "green",
    MarginLevelStatus.MARGIN_CALL: "bold yellow",
    MarginLevelStatus.PRE_LIQUIDATION: "bold red",
    MarginLevelStatus.FORCE_LIQUIDATION: "bold white on red",
}
_EVENT_LINES: Final = 10
_CENT: Final = Decimal("0.01")


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def _age(ms: int) -> str:
    seconds = max(0, ms // 1000)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _money(amount: Decimal) -> str:
    return format_amount(amount.quantize(_CENT))


def _pct(price: Decimal, now: Decimal) -> str:
    return f"{(price - now) / now * 100:+.1f}%"


@dataclass(slots=True)
class _Channel:
    state: str = "connecting"
    since: float = 0.0
    gaps: int = 0
    last_gap: float | None = None


class MonitorState:
    """What the monitor learnt from the stream and the poller (pure: times are passed in)."""

    def __init__(self, accounts: Sequence[str], *, risk: bool = True) -> None:
        self.accounts = tuple(accounts)
        self.events: deque[tuple[float, str, str]] = deque(maxlen=_EVENT_LINES)
        self.binance: dict[str, MarginLevelStatusChange] = {}
        self.estimates: dict[str, MarginLevelEstimate] = {}
        self.channels: dict[str, _Channel] = {"trade": _Channel()}
        if risk:
            self.channels["risk"] = _Channel()
        self.note = ""

    def live(self, at: float) -> None:
        """Every subscription is live (the stream's ``async with`` returned)."""
        for channel in self.channels.values():
            channel.state, channel.since = "live", at

    def on_event(self, account: str, text: str, event: object, at: float) -> None:
        """One stream event, already described as ``text``."""
        self.events.append((at, account, text))
        if isinstance(event, MarginLevelStatusChange):
            self.binance[event.account] = event
        elif isinstance(event, StateChanged):
            channel = self.channels.get(event.channel)
            if channel is not None:
                channel.state, channel.since = event.state, at
        elif isinstance(event, StreamGap):
            # The risk stream is the cross account's only; a gap of an isolated account is the
            # trade connection's. A cross gap may be either: both are counted.
            names = ("trade", "risk") if event.account == CROSS else ("trade",)
            for name in names:
                channel = self.channels.get(name)
                if channel is not None:
                    channel.gaps += 1
                    channel.last_gap = at

    def on_estimate(self, estimate: MarginLevelEstimate, at: float) -> None:
        """A change of estimated status (from :class:`~.risk.RiskEstimator`)."""
        self.estimates[estimate.account] = estimate
        before = f"{estimate.previous} → " if estimate.previous else ""
        level = estimate.margin_level.quantize(Decimal("0.001"))
        self.events.append(
            (at, estimate.account, f"estimate         {before}{estimate.status} (level {level})")
        )


def frame(
    state: MonitorState,
    mirror: AccountMirror,
    estimator: RiskEstimator,
    *,
    usage: Mapping[str, int],
    now: float,
    now_ms: int,
    title: str,
) -> list[Line]:
    """One screen: a list of lines, each a list of ``(text, style)`` segments."""
    lines: list[Line] = [[(title, "bold"), (f"   {_clock(now)} UTC", "dim")]]
    channels = []
    for name, channel in state.channels.items():
        style = "green" if channel.state == "live" else "yellow"
        text = f"{name}: {channel.state}"
        if channel.state == "live":
            text += f" since {_clock(channel.since)}"
        gaps = f", gaps {channel.gaps}" if channel.gaps else ", no gap"
        if channel.last_gap is not None:
            gaps += f" (last {_clock(channel.last_gap)})"
        channels.append([(text, style), (gaps, "red" if channel.gaps else "dim")])
    lines.append([("streams  ", "dim")] + [seg for c in channels for seg in [*c, ("   ", "")]])
    if state.note:
        lines.append([(state.note, "dim")])
    for account in state.accounts:
        lines.append([])
        lines.extend(_account_lines(account, mirror, estimator, state, now_ms))
    lines.append([])
    lines.append([("last events", "bold")])
    for at, account, text in reversed(state.events):
        style = "yellow" if "MARGIN" in text or "estimate" in text else ""
        lines.append([(f"  {_clock(at)}  ", "dim"), (f"[{account:>8}] ", "cyan"), (text, style)])
    if not state.events:
        lines.append([("  (none yet)", "dim")])
    used = sorted(((w, pool) for pool, w in usage.items() if w), reverse=True)
    lines.append([])
    lines.append([("weight used this minute, per pool", "bold")])
    for weight, pool in used[:8]:
        lines.append([(f"  {pool:<44}{weight:>7}", "")])
    if len(used) > 8:
        lines.append([(f"  … {len(used) - 8} more pools", "dim")])
    return lines


def _account_lines(
    account: str,
    mirror: AccountMirror,
    estimator: RiskEstimator,
    state: MonitorState,
    now_ms: int,
) -> list[Line]:
    quote = estimator.quote_of(account)
    title = "cross margin" if account == CROSS else f"isolated {account}"
    lines: list[Line] = [[(f"── {title} ", "bold cyan"), ("─" * max(0, 60 - len(title)), "dim")]]
    valued = estimator.valuation(account)
    if valued is None:
        lines.append([("  margin level: waiting for balances and prices", "dim")])
    else:
        status_style = STATUS_STYLE.get(valued.status, "")
        level = "999 (no debt)" if valued.level >= 999 else f"{valued.level:.3f}"
        lines.append(
            [
                ("  margin level ", ""),
                (f"{level} {valued.status}", status_style),
                (f"   net {_money(valued.net)} {quote}", ""),
                (
                    f"   assets {_money(valued.total_asset)}"
                    f"   liabilities {_money(valued.total_liability)}",
                    "",
                ),
            ]
        )
        exposure = valued.exposure
        if exposure is not None:
            price = exposure.price
            parts: Line = [(f"  {exposure.asset} {_money(price)}", "")]
            for label, at, style in (
                ("MARGIN_CALL", exposure.margin_call, "yellow"),
                ("FORCE_LIQUIDATION", exposure.force_liquidation, "red"),
            ):
                if at is None:
                    parts.append((f"   {label}: unreachable", "dim"))
                else:
                    shown = format_amount(at.quantize(Decimal("0.01")))
                    parts.append((f"   {label} at {shown} ({_pct(at, price)})", style))
            lines.append(parts)
    binance = state.binance.get(account)
    known = mirror.margin_level(account)
    if binance is not None:
        lines.append(
            [(f"  Binance: {binance.status} at level {format_amount(binance.margin_level)}", "dim")]
        )
    elif known is not None and known.level is not None:
        status = f" {known.status}" if known.status else ""
        lines.append([(f"  REST snapshot: level {format_amount(known.level)}{status}", "dim")])
    header = f"  {'asset':<6}{'free':>16}{'locked':>14}{'borrowed':>16}{'interest':>14}"
    lines.append([(header, "dim")])
    for balance in mirror.balances(account).values():
        amounts = (balance.free, balance.locked, balance.borrowed, balance.interest)
        if not any(amounts):
            continue
        free, locked, borrowed, interest = (format_amount(a) for a in amounts)
        owes = "yellow" if balance.borrowed or balance.interest else ""
        lines.append(
            [
                (f"  {balance.asset:<6}{free:>16}{locked:>14}", ""),
                (f"{borrowed:>16}{interest:>14}", owes),
            ]
        )
    orders = mirror.open_orders(account)
    if orders:
        lines.append([(f"  open orders ({len(orders)})", "dim")])
    for order in orders:
        lines.append(
            [
                (
                    f"    #{order.order_id:<7} {order.client_order_id[:22]:<23}{order.symbol:<9}"
                    f"{order.side:<5}{order.order_type:<7}{format_amount(order.quantity):>9} @ "
                    f"{format_amount(order.price):<10}",
                    "",
                ),
                (f"age {_age(now_ms - order.created)}", "dim"),
            ]
        )
    return lines


def render_plain(lines: Sequence[Line]) -> str:
    """The frame as plain text, one ``\\n``-terminated line per line."""
    return "".join("".join(text for text, _ in line) + "\n" for line in lines)


def _rich_renderable(lines: Sequence[Line]) -> Any:
    from rich.text import Text

    text = Text()
    for line in lines:
        for segment, style in line:
            text.append(segment, style=style or None)
        text.append("\n")
    return text


class _Screen:
    """Draws frames: rich Live when available and wanted, plain text otherwise."""

    def __init__(self, out: TextIO, *, plain: bool) -> None:
        self._out = out
        self._tty = out.isatty()
        self._live: Any = None
        if not plain and self._tty and importlib.util.find_spec("rich") is not None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=out)
            self._live = Live(console=console, auto_refresh=False, screen=True, transient=True)

    def __enter__(self) -> _Screen:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.stop()

    def draw(self, lines: Sequence[Line]) -> None:
        if self._live is not None:
            self._live.update(_rich_renderable(lines), refresh=True)
            return
        text = render_plain(lines)
        if self._tty:
            # Overwrite in place (home, each line cleared to its end, rest of screen cleared): no
            # blank screen between frames, so no flicker.
            text = "\x1b[H" + text.replace("\n", "\x1b[K\n") + "\x1b[J"
        else:
            text += "\n"
        self._out.write(text)
        self._out.flush()


async def run_monitor(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str],
    out: TextIO | None = None,
    describe: Callable[[Any], str],
    client_from_env: Callable[[Mapping[str, str], argparse.Namespace], Any],
) -> int:
    """Run the view until ``args.duration`` elapses (0) or the task is cancelled (Ctrl-C)."""
    out = out if out is not None else sys.stdout
    symbols = [s.upper() for s in args.isolated]
    speed = args.speed if args.fake else 1.0
    async with contextlib.AsyncExitStack() as stack:
        scenario = None
        if args.fake:
            ex = await stack.enter_async_context(FakeExchange(seed=11))
            symbols = sorted({*symbols, *ISOLATED_FUNDS})
            creds = ex.add_account(
                margin_balances=CROSS_FUNDS,
                isolated={s: ISOLATED_FUNDS.get(s, {"USDT": "1000"}) for s in symbols},
            )
            client = await stack.enter_async_context(ex.client(creds))
        else:
            client = await stack.enter_async_context(client_from_env(env, args))
        state = MonitorState([CROSS, *symbols])
        dirty = asyncio.Event()

        def on_event(event: Event) -> None:
            state.on_event(event.account, describe(event), event, time.time())
            dirty.set()

        def on_estimate(estimate: MarginLevelEstimate) -> None:
            state.on_estimate(estimate, time.time())
            dirty.set()

        def on_error(exc: BaseException) -> None:
            # Callback failures and connection trouble both arrive here.
            state.events.append((time.time(), "-", f"stream error: {exc!r}"))
            dirty.set()

        if args.fake:

            def say(text: str) -> None:
                state.events.append((time.time(), "scenario", text.removeprefix("scenario: ")))
                dirty.set()

            scenario = Scenario(ex, client, speed=speed, say=say)
        pairs = [
            (p.symbol, p.base, p.quote)
            for p in await client.get_all_pairs()
            if p.symbol and p.base and p.quote
        ]
        isolated = {
            p.symbol: (p.base, p.quote)
            for p in await client.get_all_isolated_pairs()
            if p.symbol and p.base and p.quote
        }
        stream = client.user_stream(isolated_symbols=symbols, risk=True, mirror=True)
        stream.on(Event, on_event)
        stream.on_error(on_error)
        await stack.enter_async_context(stream)
        state.live(time.time())
        estimator = RiskEstimator(
            stream.mirror,
            PriceBook(pairs),
            isolated_pairs={s: isolated[s] for s in symbols if s in isolated},
        )
        poller = PriceIndexPoller(
            client, estimator, interval=args.price_interval / speed, budget=0.5
        )
        poller.on(on_estimate)
        await stack.enter_async_context(poller)
        screen = stack.enter_context(_Screen(out, plain=args.plain))
        tasks: list[asyncio.Task[None]] = []
        if scenario is not None:
            tasks.append(asyncio.create_task(scenario.run(), name="fake-scenario"))
        deadline = None if args.duration is None else time.monotonic() + args.duration
        title = "binance margin monitor"
        if args.fake:
            title += f" — fake exchange, clock x{speed:g}"
        try:
            while deadline is None or time.monotonic() < deadline:
                await poller.publish()  # balances changed since the last prices, maybe
                if scenario is not None:
                    elapsed = _age(int(scenario.elapsed * 1000))
                    state.note = f"scenario time {elapsed}, cycles done {scenario.cycles}"
                screen.draw(
                    frame(
                        state,
                        stream.mirror,
                        estimator,
                        usage=client.limiter.usage(),
                        now=time.time(),
                        now_ms=client.clock.timestamp_ms(time.time()),
                        title=title,
                    )
                )
                dirty.clear()
                # Redraw when something changed (at most ~10 frames/s), at least once a second
                # for the clock and the order ages.
                timeout = 1.0
                if deadline is not None:
                    timeout = max(0.0, min(timeout, deadline - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(dirty.wait(), timeout)
                await asyncio.sleep(0.1)
                for task in tasks:
                    if task.done():
                        task.result()  # a scenario bug ends the monitor with its error
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return 0
