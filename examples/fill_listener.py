"""Fill listener: print every fill of a Binance margin account as it happens, with running totals.

What it shows:

* one user-data stream for the cross margin account plus one isolated account per
  ``--isolated SYMBOL`` (all on one WebSocket API connection, see ``client.user_stream``);
* a typed callback for :class:`~binance_margin_async.events.ExecutionReport` that keeps only fills
  (execution type ``TRADE``) and prints side, quantity, price, quote amount, commission, maker or
  taker, and running totals per account and symbol (fills, bought, sold, notional, commission per
  asset);
* :class:`~binance_margin_async.events.StreamGap`: after an unplanned reconnect Binance does not
  replay what was sent meanwhile, so the listener warns and fetches the trades of the gap from REST
  (``GET /sapi/v1/margin/myTrades``). Each trade is counted once, by trade id, whether it arrived
  on the stream, from REST, or both. For the cross account only symbols that already had a fill
  are checked: the stream does not say which symbols a missed event was about.

Run it::

    python examples/fill_listener.py --fake --duration 10     # in-process fake exchange, no keys
    python examples/fill_listener.py --fake --isolated ETHUSDT

    export BINANCE_API_KEY=...
    export BINANCE_API_SECRET=...                              # or BINANCE_PRIVATE_KEY_FILE=key.pem
    python examples/fill_listener.py --isolated ETHUSDT        # production Binance, read-only

On Binance it only reads (listen tokens, trade history); it never places an order. With ``--fake``
a background task trades on the fake account (market orders, and resting limit orders that price
moves fill) and cuts every connection once, so there are fills and a gap to see.

Docs: https://developers.binance.com/docs/margin_trading/trade-data-stream
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from _common import fmt, make_parser, open_venue, run_main, run_until_stopped

from binance_margin_async import MarginClient
from binance_margin_async.errors import CancelRejected
from binance_margin_async.events import ExecutionReport, ExecutionType, StreamGap
from binance_margin_async.models import Trade
from binance_margin_async.testing import FakeExchange

ZERO = Decimal(0)
CROSS = "CROSS"
# REST trade times are server time, StreamGap times local time: look back a little further.
CLOCK_SLACK_MS = 60_000
# How many trade ids to remember for deduplication: far more than one gap can hold.
DEDUPE_MEMORY = 100_000


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one order, from the stream or from REST."""

    account: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    quote: Decimal
    commission: Decimal
    commission_asset: str | None
    trade_id: int
    order_id: int
    maker: bool

    @classmethod
    def from_report(cls, report: ExecutionReport) -> Fill:
        """The fill an ``executionReport`` with execution type ``TRADE`` describes."""
        return cls(
            report.account,
            report.symbol,
            str(report.side),
            report.last_executed_quantity,
            report.last_executed_price,
            report.last_quote_quantity,
            report.commission,
            report.commission_asset,
            report.trade_id,
            report.order_id,
            report.is_maker,
        )

    @classmethod
    def from_trade(cls, account: str, trade: Trade) -> Fill:
        """The same fill as ``GET /sapi/v1/margin/myTrades`` reports it."""
        # REST models leave every field optional; myTrades always sends these but quoteQty,
        # which the margin endpoint does not have (the spot one does).
        quantity = trade.qty or ZERO
        price = trade.price or ZERO
        return cls(
            account,
            trade.symbol or "",
            "BUY" if trade.is_buyer else "SELL",
            quantity,
            price,
            trade.quote_qty if trade.quote_qty is not None else quantity * price,
            trade.commission or ZERO,
            trade.commission_asset,
            trade.id if trade.id is not None else -1,
            trade.order_id if trade.order_id is not None else -1,
            bool(trade.is_maker),
        )


@dataclass(slots=True)
class Totals:
    """Running totals of one symbol on one account."""

    fills: int = 0
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    notional: Decimal = ZERO
    commission: dict[str, Decimal] = field(default_factory=dict)

    def add(self, fill: Fill) -> None:
        """Count one fill."""
        self.fills += 1
        if fill.side == "BUY":
            self.bought += fill.quantity
        else:
            self.sold += fill.quantity
        self.notional += fill.quote
        if fill.commission and fill.commission_asset:
            asset = fill.commission_asset
            self.commission[asset] = self.commission.get(asset, ZERO) + fill.commission

    def __str__(self) -> str:
        fees = " + ".join(f"{fmt(v)} {a}" for a, v in self.commission.items()) or "0"
        return (
            f"fills {self.fills}, bought {fmt(self.bought)}, sold {fmt(self.sold)}, "
            f"notional {fmt(self.notional)}, fees {fees}"
        )


class FillListener:
    """Prints fills and keeps totals; fills in stream gaps are fetched from REST."""

    def __init__(self, client: MarginClient) -> None:
        self._client = client
        self.totals: dict[tuple[str, str], Totals] = {}  # (account, symbol) -> totals
        # (symbol, trade id) of the fills already counted, oldest first (a dict keeps order).
        self._seen: dict[tuple[str, int], None] = {}

    def on_report(self, report: ExecutionReport) -> None:
        """Stream callback: every order update; only fills are of interest here."""
        if report.execution_type == ExecutionType.TRADE:
            self._record(Fill.from_report(report), "")

    async def on_gap(self, gap: StreamGap) -> None:
        """Stream callback: events of ``gap.account`` may have been lost; ask REST for fills.

        Async callbacks are awaited before the next event is delivered, so fills that arrive
        after the gap are printed after the recovered ones.
        """
        print(
            f"WARNING stream gap on {gap.account}: {gap.ended - gap.started:.2f} s without "
            "events, fills may be missing; checking REST",
        )
        isolated = gap.account != CROSS
        if isolated:
            symbols = [gap.account]
        else:
            symbols = sorted(symbol for account, symbol in self.totals if account == CROSS)
        since = int(gap.started * 1000) - CLOCK_SLACK_MS
        recovered = 0
        for symbol in symbols:
            trades = await self._client.get_my_trades(
                symbol, start_time=since, is_isolated=isolated
            )
            for trade in trades:
                recovered += self._record(Fill.from_trade(gap.account, trade), " (from REST)")
        print(f"         {recovered} missed fill(s) recovered on {gap.account}")

    def _record(self, fill: Fill, note: str) -> bool:
        """Count and print ``fill`` unless it was counted already; True when it was new."""
        key = (fill.symbol, fill.trade_id)  # trade ids are unique per symbol
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > DEDUPE_MEMORY:
            del self._seen[next(iter(self._seen))]
        totals = self.totals.setdefault((fill.account, fill.symbol), Totals())
        totals.add(fill)
        fee = f"{fmt(fill.commission)} {fill.commission_asset}" if fill.commission else "0"
        print(
            f"FILL [{fill.account}] {fill.symbol} {fill.side} {fmt(fill.quantity)} "
            f"@ {fmt(fill.price)} = {fmt(fill.quote)}, fee {fee}, "
            f"{'maker' if fill.maker else 'taker'}, trade #{fill.trade_id} "
            f"order #{fill.order_id}{note}\n"
            f"     {fill.symbol} on {fill.account}: {totals}",
        )
        return True


async def fake_market(
    exchange: FakeExchange, client: MarginClient, isolated: Sequence[str]
) -> None:
    """Trading on the fake account, so there is something to hear (``--fake`` only).

    Every round: a market order on cross BTCUSDT and on each isolated symbol, sides alternating
    so balances stay level; a limit order resting just off the price; a random-walk price move
    that may fill it. In round 3 every connection is cut and an order trades before the stream
    is back: its fill reaches the listener through the gap recovery.
    """
    rng = random.Random(7)
    price = Decimal(60000)
    resting: int | None = None
    for round_ in itertools.count(1):
        side = "BUY" if round_ % 2 else "SELL"
        if round_ == 3:
            print("(fake) cutting every connection: the next fill happens while offline")
            exchange.drop_connections()
        await client.new_order("BTCUSDT", side, "MARKET", quote_order_qty="300")
        for symbol in isolated:
            # Buys spend 100 USDT, sells raise 50: the isolated account keeps some base to sell.
            amount = "100" if side == "BUY" else "50"
            await client.new_order(symbol, side, "MARKET", quote_order_qty=amount, is_isolated=True)
        if resting is not None:
            with contextlib.suppress(CancelRejected):  # it filled already
                await client.cancel_order("BTCUSDT", order_id=resting)
        limit = price - 20 if side == "BUY" else price + 20
        order = await client.new_order(
            "BTCUSDT", side, "LIMIT", quantity="0.002", price=limit, time_in_force="GTC"
        )
        resting = order.order_id
        # Mean-reverting walk around 60,000, in whole dollars.
        price += rng.randint(-60, 60) + (60000 - price) // 10
        exchange.set_price("BTCUSDT", price)
        await asyncio.sleep(0.3)


def build_parser() -> argparse.ArgumentParser:
    """The command line of this example."""
    parser = make_parser(__doc__)
    parser.add_argument(
        "--isolated",
        action="append",
        default=[],
        metavar="SYMBOL",
        help="also follow this isolated margin account (repeatable), e.g. ETHUSDT",
    )
    return parser


async def run(args: argparse.Namespace) -> int:
    """Listen until ``args.duration`` elapses or Ctrl-C, then print the totals."""
    symbols: list[str] = [s.upper() for s in args.isolated]
    async with open_venue(
        args,
        margin_balances={"USDT": "50000", "BTC": "1"},
        isolated={symbol: {"USDT": "5000"} for symbol in symbols},
    ) as venue:
        listener = FillListener(venue.client)
        stream = venue.client.user_stream(isolated_symbols=symbols)
        stream.on(ExecutionReport, listener.on_report)
        stream.on(StreamGap, listener.on_gap)
        stream.on_error(lambda exc: print(f"stream: {exc!r}"))
        async with stream:
            print(f"listening for fills on {', '.join([CROSS, *symbols])}")
            if venue.exchange is None:
                await run_until_stopped(args.duration)
            else:
                market = fake_market(venue.exchange, venue.client, symbols)
                await run_until_stopped(args.duration, market)
    print("\ntotals")
    for (account, symbol), totals in sorted(listener.totals.items()):
        print(f"  {symbol} on {account}: {totals}")
    if not listener.totals:
        print("  no fills")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
