"""Position monitor: alert on the cross margin level, earlier than Binance's margin call.

What it shows:

* ``client.user_stream(risk=True, mirror=True)``: the cross account's trade stream plus the risk
  stream, and an :class:`~binance_margin_async.mirror.AccountMirror` (``stream.mirror``) loaded
  from REST at start and kept current by every event before any callback sees it;
* :class:`~binance_margin_async.events.MarginLevelStatusChange`: Binance's own bands (on Cross
  Margin Classic 3x: ``NORMAL``, ``MARGIN_CALL`` below 1.5, ``PRE_LIQUIDATION`` below 1.25,
  ``FORCE_LIQUIDATION`` below 1.1); a change to ``MARGIN_CALL`` or worse prints a loud alert;
* an earlier alert of your own at ``--alert-below`` (default 1.6). Binance pushes the margin
  level only when its band changes, so the monitor also polls ``GET /sapi/v1/margin/account``
  every ``--interval`` seconds (IP weight 10 in that endpoint's own 12,000/min pool: a 2 s poll
  uses 300/min) and alerts when the level falls below the threshold, and again when it is back;
* :class:`~binance_margin_async.events.LiabilityChange`: every borrow, repay and interest charge,
  with what is owed in that asset afterwards (from the mirror).

Run it::

    python examples/position_monitor.py --fake --duration 10    # in-process fake exchange
    export BINANCE_API_KEY=...
    export BINANCE_API_SECRET=...                               # or BINANCE_PRIVATE_KEY_FILE
    python examples/position_monitor.py --alert-below 1.8       # production Binance, read-only

It only reads. With ``--fake`` the account borrows 15,000 USDT, buys 0.4 BTC with it, and the
BTC price then swings between 60,000 and 43,500, through both alerts and back.

The risk stream covers the cross account only; for isolated pairs poll
``client.get_isolated_account()`` (``margin_level`` per pair) the same way.

Docs: https://developers.binance.com/docs/margin_trading/risk-data-stream
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from decimal import Decimal

from _common import fmt, make_parser, open_venue, run_main, run_until_stopped

from binance_margin_async import BinanceError, MarginClient
from binance_margin_async.events import (
    LiabilityChange,
    MarginLevelStatus,
    MarginLevelStatusChange,
)
from binance_margin_async.mirror import AccountMirror
from binance_margin_async.testing import FakeExchange

ZERO = Decimal(0)
CROSS = "CROSS"
DANGER = frozenset(
    {
        MarginLevelStatus.MARGIN_CALL,
        MarginLevelStatus.PRE_LIQUIDATION,
        MarginLevelStatus.FORCE_LIQUIDATION,
    }
)


def alert(text: str) -> None:
    """A line nobody can miss (and a terminal bell when a person is watching)."""
    bell = "\a" if sys.stdout.isatty() else ""
    print(f"{bell}!!!!! ALERT: {text} !!!!!")


class Monitor:
    """Checks the cross margin level against a threshold and reports risk events."""

    def __init__(self, client: MarginClient, mirror: AccountMirror, threshold: Decimal) -> None:
        self._client = client
        self._mirror = mirror
        self._threshold = threshold
        self._below = False
        self._last_line = ""

    def check(self, level: Decimal, source: str) -> None:
        """Alert when ``level`` crosses the threshold downwards; note when it is back above."""
        if level < self._threshold and not self._below:
            self._below = True
            alert(f"margin level {fmt(level)} fell below {fmt(self._threshold)} ({source})")
        elif level >= self._threshold and self._below:
            self._below = False
            print(f"margin level {fmt(level)} is back above {fmt(self._threshold)}")

    def on_status(self, event: MarginLevelStatusChange) -> None:
        """Risk stream: Binance moved the account to another margin level band."""
        if event.status in DANGER:
            alert(f"Binance says {event.status}: margin level {fmt(event.margin_level)}")
        else:
            print(f"status {event.status} (margin level {fmt(event.margin_level)})")
        self.check(event.margin_level, "risk stream")

    def on_liability(self, event: LiabilityChange) -> None:
        """Risk stream: a borrow, repay or interest charge (amounts of this change)."""
        owed = self._mirror.balance(event.account, event.asset)
        after = ""
        if owed is not None and owed.borrowed is not None and owed.interest is not None:
            after = f"; owed now {fmt(owed.borrowed)} + {fmt(owed.interest)} interest"
        print(
            f"LIABILITY {event.asset} {event.liability_type}: principal {fmt(event.principal)}, "
            f"interest {fmt(event.interest)}{after}",
        )

    async def poll(self, interval: float) -> None:
        """Read the margin level over REST every ``interval`` seconds (see the module doc)."""
        while True:
            try:
                account = await self._client.get_account()
            except BinanceError as exc:
                # GETs are already retried inside the client; keep watching through an outage.
                print(f"poll failed: {exc}")
            else:
                if account.margin_level is not None:
                    self.check(account.margin_level, "REST poll")
                    self._summary(account.margin_level)
            await asyncio.sleep(interval)

    def _summary(self, level: Decimal) -> None:
        """One line with the level, Binance's status and the balances, printed when it changes."""
        known = self._mirror.margin_level(CROSS)
        status = known.status if known is not None and known.status is not None else "?"
        held = []
        owed = []
        for asset, balance in self._mirror.balances(CROSS).items():
            if balance.free or balance.locked:
                held.append(f"{asset} {fmt(balance.free + balance.locked)}")
            debt = (balance.borrowed or ZERO) + (balance.interest or ZERO)
            if debt:
                owed.append(f"{asset} {fmt(debt)}")
        line = (
            f"margin level {level:.4f} (status {status}) | holds {', '.join(held) or '-'} "
            f"| owes {', '.join(owed) or '-'}"
        )
        if line != self._last_line:
            self._last_line = line
            print(line)


async def fake_market(exchange: FakeExchange, client: MarginClient) -> None:
    """A leveraged long whose price swings through both alerts (``--fake`` only)."""
    print("(fake) borrowing 15,000 USDT and buying 0.4 BTC at 60,000")
    await client.borrow("USDT", "15000")
    await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.4")
    price, step = 60000, -1500
    while True:
        await asyncio.sleep(0.15)
        price += step
        exchange.set_price("BTCUSDT", price)
        if not 43500 < price < 60000:
            step = -step
            print(f"(fake) BTC at {price}, turning {'up' if step > 0 else 'down'}")


def build_parser() -> argparse.ArgumentParser:
    """The command line of this example."""
    parser = make_parser(__doc__)
    parser.add_argument(
        "--alert-below",
        type=Decimal,
        default=Decimal("1.6"),
        metavar="LEVEL",
        help="alert when the cross margin level falls below LEVEL (default 1.6)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often to read the margin level over REST (default 2)",
    )
    return parser


async def run(args: argparse.Namespace) -> int:
    """Monitor until ``args.duration`` elapses or Ctrl-C."""
    async with open_venue(args, margin_balances={"USDT": "10000"}) as venue:
        stream = venue.client.user_stream(risk=True, mirror=True)
        monitor = Monitor(venue.client, stream.mirror, args.alert_below)
        stream.on(MarginLevelStatusChange, monitor.on_status)
        stream.on(LiabilityChange, monitor.on_liability)
        stream.on_error(lambda exc: print(f"stream: {exc!r}"))
        async with stream:
            print(f"watching the cross margin level; alert below {fmt(args.alert_below)}")
            activities = [monitor.poll(args.interval)]
            if venue.exchange is not None:
                activities.append(fake_market(venue.exchange, venue.client))
            await run_until_stopped(args.duration, *activities)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
