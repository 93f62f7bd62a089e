"""Strategy skeleton: an event-driven margin strategy, from first quote to repaid loan.

What it shows, in the order a live strategy needs it:

* LIMIT orders with your own ``new_client_order_id`` (a per-run prefix plus a counter), recorded
  *before* the request goes out: the stream may report an order, even its fills, before the REST
  answer arrives;
* fills taken from the user-data stream (``ExecutionReport`` with execution type ``TRADE``), the
  one ordered record of every order of the account, not from REST answers;
* :class:`~binance_margin_async.errors.ExecutionStatusUnknown`: a timeout or 5xx on an order
  means it may or may not exist, so the strategy asks ``get_order(orig_client_order_id=...)`` and
  carries on from Binance's answer (an order given up on that turns up later on the stream is
  adopted);
* cancel/replace when the price has moved away, tolerating orders that filled meanwhile;
* a clean exit: cancel its own open orders, sell what it holds, repay what it borrowed.

The trading rule is deliberately trivial: one BUY a little under the price while the position is
below a limit, one SELL a little over it while holding. The extension points:

* market data: :func:`price_feed` (one call of ``Strategy.on_tick`` per price);
* the signal: ``Strategy.quotes`` (price and position in, wanted orders out);
* fills: ``Strategy.on_fill`` (bookkeeping, hedging, risk limits);
* the exit policy: ``Strategy.stop``.

Run it::

    python examples/strategy_skeleton.py --fake --duration 10     # in-process fake exchange

With ``--fake`` a background task moves the fake BTCUSDT price in a random walk and feeds each
price to the strategy, which borrows 1,000 USDT at start (``--borrow``), trades, and at the end
flattens and repays. It also makes two order placements end in ``ExecutionStatusUnknown``: one
answered HTTP 500 and never executed (Binance has no such order), and one answered with a backend
timeout (``-1007``) that reaches the book only after the strategy asked for it (the order turns
up on the stream after all).

On production Binance (``BINANCE_API_KEY`` plus ``BINANCE_API_SECRET`` or
``BINANCE_PRIVATE_KEY_FILE`` in the environment) there is no price feed until you plug one into
:func:`price_feed`: without one it places no order and only listens; it borrows only what
``--borrow`` asks for, and repays that at exit. Real orders spend real money: try it on the fake
first.

Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-Order
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import secrets
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from _common import Venue, fmt, make_parser, open_venue, run_main, run_until_stopped

from binance_margin_async import BinanceError, ExecutionStatusUnknown, MarginClient
from binance_margin_async.errors import CancelRejected, NewOrderRejected, NoSuchOrder
from binance_margin_async.events import ExecutionReport, ExecutionType, OrderStatus
from binance_margin_async.testing import FakeExchange

ZERO = Decimal(0)
BUY, SELL = "BUY", "SELL"
FINISHED = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH,
    }
)


@dataclass(frozen=True, slots=True)
class Settings:
    """What the strategy trades and how. Filters are BTCUSDT's; read yours from exchangeInfo."""

    symbol: str = "BTCUSDT"
    base: str = "BTC"
    quote: str = "USDT"
    quantity: Decimal = Decimal("0.01")  # per order
    max_position: Decimal = Decimal("0.03")  # never hold more base than this
    spread: Decimal = Decimal("0.001")  # quote 0.1 % away from the price
    reprice: Decimal = Decimal("0.002")  # replace an order 0.2 % away from where it should be
    tick_size: Decimal = Decimal("0.01")  # PRICE_FILTER
    step_size: Decimal = Decimal("0.00001")  # LOT_SIZE
    min_notional: Decimal = Decimal("5")  # NOTIONAL
    borrow: Decimal = ZERO  # quote asset to borrow at start (and repay at exit)


@dataclass(slots=True)
class Working:
    """One of our orders that is (or may be) on the book."""

    client_order_id: str
    side: str
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """An order the signal wants on the book."""

    price: Decimal
    quantity: Decimal


class Strategy:
    """Quotes around the price; fills come from the stream; see the module doc."""

    def __init__(self, client: MarginClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        # Every id starts with this run's prefix: our fills are recognised even after the order
        # left `working`, and orders placed by hand or by another program are left alone.
        self._prefix = f"skel-{secrets.token_hex(3)}-"
        self._ids = itertools.count(1)
        self.working: dict[str, Working] = {}  # by client order id
        self._idle = asyncio.Event()  # set while `working` is empty
        self._idle.set()
        # Orders whose placement had an unknown outcome and that Binance did not know when asked.
        self._given_up: set[str] = set()
        self.position = ZERO  # base asset bought minus sold, net of commission
        self.cash = ZERO  # quote asset received minus paid, net of commission
        self.fills = 0
        self.borrowed = ZERO
        self.last_price: Decimal | None = None

    # ---------------------------------------------------------------- extension points

    def quotes(self, price: Decimal) -> dict[str, Quote | None]:
        """The signal: which order each side should have on the book now (``None``: none)."""
        s = self.settings
        buy = sell = None
        if self.position + s.quantity <= s.max_position:
            buy = Quote(_round(price * (1 - s.spread), s.tick_size, ROUND_FLOOR), s.quantity)
        held = _round(min(self.position, s.quantity), s.step_size, ROUND_FLOOR)
        if held * price >= s.min_notional:
            sell = Quote(_round(price * (1 + s.spread), s.tick_size, ROUND_CEILING), held)
        return {BUY: buy, SELL: sell}

    def on_fill(self, report: ExecutionReport) -> None:
        """Bookkeeping of one fill of ours; hedge or adjust risk limits here."""
        s = self.settings
        quantity, quote = report.last_executed_quantity, report.last_quote_quantity
        fee = report.commission
        if report.side == BUY:
            self.position += quantity - (fee if report.commission_asset == s.base else ZERO)
            self.cash -= quote
        else:
            self.position -= quantity
            self.cash += quote - (fee if report.commission_asset == s.quote else ZERO)
        self.fills += 1
        print(
            f"FILL {report.side} {fmt(quantity)} @ {fmt(report.last_executed_price)} "
            f"({report.client_order_id}) -> position {fmt(self.position)} {s.base}, "
            f"cash {fmt(self.cash)} {s.quote}",
        )

    async def stop(self) -> None:
        """The exit policy: cancel our orders, sell what we hold, repay what we borrowed.

        Each step reports its own failure and the next one still runs: whatever is left has to
        be cleared by hand, and the output says what.
        """
        s = self.settings
        for order in list(self.working.values()):
            await self._step("cancel", self._cancel(order))
        held = _round(self.position, s.step_size, ROUND_FLOOR)
        if self.last_price is not None and held * self.last_price >= s.min_notional:
            await self._step("flatten", self._place(SELL, held, None))
        # Let the stream deliver the last reports (the flattening fill) before the books close.
        await self._settle()
        if self.borrowed:
            await self._step("repay", self._repay())

    # ---------------------------------------------------------------- reacting

    async def start(self) -> None:
        """Borrow what the settings ask for."""
        s = self.settings
        if s.borrow:
            await self.client.borrow(s.quote, s.borrow)
            self.borrowed = s.borrow
            print(f"borrowed {fmt(s.borrow)} {s.quote}")

    async def on_tick(self, price: Decimal) -> None:
        """A new market price: bring the book in line with :meth:`quotes`."""
        self.last_price = price
        for side, wanted in self.quotes(price).items():
            current = next((o for o in self.working.values() if o.side == side), None)
            if current is not None:
                off = (
                    wanted is None
                    or abs(current.price - wanted.price) > price * self.settings.reprice
                )
                if not off:
                    continue
                await self._cancel(current)
            if wanted is not None:
                await self._place(side, wanted.quantity, wanted.price)

    def on_execution(self, report: ExecutionReport) -> None:
        """Stream callback: every order update of the account (also ones that are not ours)."""
        # A cancel's report carries the cancel request's id in `client_order_id` and the
        # order's own id in `orig_client_order_id`.
        client_id = report.orig_client_order_id or report.client_order_id
        if not client_id.startswith(self._prefix):
            return
        if report.execution_type == ExecutionType.TRADE:
            self.on_fill(report)
        if report.order_status in FINISHED:
            self._forget(client_id)
            self._given_up.discard(client_id)
        elif client_id in self._given_up:
            # Placed after all, later than Binance answered our query: track it from now on.
            self._given_up.discard(client_id)
            print(f"order {client_id} turned up after all; tracking it")
            self._track(Working(client_id, str(report.side), report.price, report.quantity))

    # ---------------------------------------------------------------- orders

    async def _place(self, side: str, quantity: Decimal, price: Decimal | None) -> None:
        """A LIMIT (GTC) order at ``price``, or a MARKET order when ``price`` is ``None``."""
        s = self.settings
        client_id = f"{self._prefix}{next(self._ids)}"
        # Recorded before sending: its reports may arrive before the answer does.
        self._track(Working(client_id, side, price or ZERO, quantity))
        try:
            await self.client.new_order(
                s.symbol,
                side,
                "LIMIT" if price is not None else "MARKET",
                quantity=quantity,
                price=price,
                time_in_force="GTC" if price is not None else None,
                new_client_order_id=client_id,
            )
        except ExecutionStatusUnknown:
            print(f"order {client_id}: outcome unknown; asking Binance")
            await self._reconcile(client_id)
        except NewOrderRejected as exc:
            self._forget(client_id)
            print(f"order {client_id} rejected: {exc.msg}")
        else:
            at = f"@ {fmt(price)}" if price is not None else "at market"
            print(f"placed {client_id}: {side} {fmt(quantity)} {at}")

    async def _cancel(self, order: Working) -> None:
        client_id = order.client_order_id
        try:
            await self.client.cancel_order(self.settings.symbol, orig_client_order_id=client_id)
        except (CancelRejected, NoSuchOrder):
            # Finished meanwhile (filled, most likely); its fills still arrive on the stream.
            self._forget(client_id)
        except ExecutionStatusUnknown:
            await self._reconcile(client_id)
        else:
            self._forget(client_id)
            print(f"canceled {client_id} ({order.side} @ {fmt(order.price)})")

    async def _reconcile(self, client_id: str) -> None:
        """Settle an unknown outcome by asking Binance for the order by its client id."""
        try:
            order = await self.client.get_order(
                self.settings.symbol, orig_client_order_id=client_id
            )
        except NoSuchOrder:
            # Not there: the request never took effect. Should it still appear (a slow
            # backend), on_execution adopts it.
            self._forget(client_id)
            self._given_up.add(client_id)
            print(f"order {client_id}: Binance has no such order; it was not placed")
            return
        if order.status in FINISHED:
            self._forget(client_id)
        print(f"order {client_id}: Binance has it, status {order.status}")

    async def _repay(self) -> None:
        """Repay what :meth:`start` borrowed (plus the asset's interest), as far as funds allow.

        Binance applies a repayment to interest first. Only this strategy's loan is repaid, not
        other loans of the account in the same asset.
        """
        asset = self.settings.quote
        account = await self.client.get_account()
        row = next((a for a in account.user_assets if a.asset == asset), None)
        if row is None:
            return
        interest = row.interest or ZERO
        owed = (row.borrowed or ZERO) + interest
        amount = min(self.borrowed + interest, owed, row.free or ZERO)
        if amount <= 0:
            print(f"nothing to repay in {asset}")
            return
        await self.client.repay(asset, amount)
        self.borrowed = max(ZERO, self.borrowed - (amount - interest))
        left = f", {fmt(self.borrowed)} still borrowed" if self.borrowed else ""
        print(f"repaid {fmt(amount)} {asset}{left}")

    def _track(self, order: Working) -> None:
        self.working[order.client_order_id] = order
        self._idle.clear()

    def _forget(self, client_id: str) -> None:
        self.working.pop(client_id, None)
        if not self.working:
            self._idle.set()

    async def _settle(self, within: float = 5.0) -> None:
        """Wait (at most ``within`` s) until the stream has reported the end of our orders."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)

    @staticmethod
    async def _step(name: str, action: Coroutine[Any, Any, None]) -> None:
        try:
            await action
        except BinanceError as exc:
            print(f"{name} failed: {exc}; check the account by hand")


def _round(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` on the grid of ``step`` (a price tick or a lot step)."""
    return (value / step).to_integral_value(rounding) * step


# -------------------------------------------------------------------- market data


def price_feed(venue: Venue, settings: Settings) -> AsyncIterator[Decimal] | None:
    """Where prices come from (extension point); ``None``: no feed, the strategy only listens.

    On the fake exchange: :func:`simulated_prices`. On Binance, plug a market data stream in
    here, e.g. the public ``<symbol>@bookTicker`` stream (``wss://stream.binance.com:9443/ws/
    btcusdt@bookTicker``; websockets is installed) yielding the mid price, or your own feed.
    This skeleton ships none for production, so there it places no order.
    """
    if venue.exchange is not None:
        return simulated_prices(venue.exchange, settings.symbol)
    return None


async def simulated_prices(exchange: FakeExchange, symbol: str) -> AsyncIterator[Decimal]:
    """A mean-reverting random walk around 60,000, set on the fake exchange tick by tick.

    ``set_price`` fills the resting orders the move crosses before the strategy sees the price,
    as on a real market. At the fourth tick the next two order placements are made to fail
    (``fail_next``), so that both ``ExecutionStatusUnknown`` outcomes happen: the first gets
    HTTP 500 and is not executed; the second gets a backend timeout and is held by the exchange,
    which executes it after the strategy has dealt with the tick (``run_deferred``): by then the
    strategy has asked for the order and been told it does not exist.
    """
    rng = random.Random(3)
    price = Decimal(60000)
    order_path = "/sapi/v1/margin/order"
    for tick in itertools.count(1):
        if tick == 4:
            print("(fake) the next order placement will get HTTP 500")
            exchange.fail_next(order_path, method="POST")
            print("(fake) the one after will time out and reach the book late")
            exchange.fail_next(
                order_path, method="POST", status=503, code=-1007, execute="later",
                msg="Timeout waiting for response from backend server. Send status unknown; "
                "execution status unknown.",
            )  # fmt: skip
        price += rng.randint(-90, 90) + (60000 - price) // 8
        exchange.set_price(symbol, price)
        yield price
        exchange.run_deferred()
        await asyncio.sleep(0.1)


async def trade(strategy: Strategy, feed: AsyncIterator[Decimal]) -> None:
    """Feed every price to the strategy; a failed tick is reported and the next one runs."""
    async for price in feed:
        try:
            await strategy.on_tick(price)
        except BinanceError as exc:
            # Your policy here: pause, retry, or stop on errors that will not go away.
            print(f"tick at {fmt(price)} failed: {exc}")


# -------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The command line of this example."""
    parser = make_parser(__doc__)
    parser.add_argument(
        "--borrow",
        type=Decimal,
        default=None,
        metavar="USDT",
        help="borrow this much USDT at start, repaid at exit (default: 1000 with --fake, else 0)",
    )
    return parser


async def run(args: argparse.Namespace) -> int:
    """Trade until ``args.duration`` elapses or Ctrl-C, then stop cleanly."""
    borrow = args.borrow if args.borrow is not None else Decimal(1000 if args.fake else 0)
    settings = Settings(borrow=borrow)
    async with open_venue(args, margin_balances={"USDT": "2000"}) as venue:
        strategy = Strategy(venue.client, settings)
        stream = venue.client.user_stream()
        stream.on(ExecutionReport, strategy.on_execution)
        stream.on_error(lambda exc: print(f"stream: {exc!r}"))
        async with stream:
            await strategy.start()
            feed = price_feed(venue, settings)
            activities = [] if feed is None else [trade(strategy, feed)]
            if feed is None:
                print("no market data feed plugged in (see price_feed): listening only")
            try:
                await run_until_stopped(args.duration, *activities)
            finally:
                print("stopping: cancel, flatten, repay")
                await strategy.stop()
        print(
            f"done: {strategy.fills} fills seen, position {fmt(strategy.position)} "
            f"{settings.base}, cash {fmt(strategy.cash)} {settings.quote}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
