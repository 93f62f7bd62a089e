"""Low-latency maker: quote both sides with a margin special key over the WebSocket API.

What it shows:

* a margin **special key** (``create_special_key``, Ed25519) and a ``TradingSession`` on it: one
  WebSocket API connection, logged on once, orders pipelined, the key's own fills on the same
  connection (``session.on(ExecutionReport, ...)``);
* prices and quantities put on the symbol's tick and step with ``round=True`` (the rules come from
  ``exchangeInfo``, cached);
* quotes that follow the price with ``cancel_replace_order`` (one request per move, no window in
  which the quote is missing), and a clean exit with ``cancel_open_orders``;
* ``ExecutionStatusUnknown``: an order whose answer was lost is looked up by its client order id,
  never sent twice.

Run it::

    python examples/low_latency_maker.py --fake --duration 10

With ``--fake`` it creates the special key on an in-process fake exchange, moves the BTCUSDT price
in a random walk so that quotes fill, and prints every quote, replace and fill, then the round
trip latencies it measured. On production Binance put the special key in ``BINANCE_API_KEY`` and
``BINANCE_PRIVATE_KEY_FILE`` and give ``--mid``: it then quotes around that price until stopped
(real orders: try the fake first).

Docs: https://developers.binance.com/docs/margin_trading/trade/Create-Special-Key-of-Low-Latency-Trading
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Sequence
from decimal import Decimal

from _common import SetupError, fmt, make_parser, open_venue, run_main

from binance_margin_async import (
    BinanceError,
    ExecutionStatusUnknown,
    MarginClient,
    TradingSession,
    TradingSessionConfig,
)
from binance_margin_async.cli import client_from_env
from binance_margin_async.events import ExecutionReport, StreamGap
from binance_margin_async.testing import FakeExchange

SYMBOL = "BTCUSDT"


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--spread",
        type=Decimal,
        default=Decimal("0.001"),
        help="half spread as a fraction of the mid price (default 0.001)",
    )
    parser.add_argument("--size", type=float, default=0.01, help="quote size in BTC")
    parser.add_argument("--mid", type=Decimal, help="mid price to quote around (production)")
    return parser  # fmt: skip


def _ed25519_pair() -> tuple[bytes, str]:
    """A fresh Ed25519 key: (PKCS#8 private PEM, public PEM for ``create_special_key``)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:  # pragma: no cover - the [rsa] extra brings it
        raise SetupError("--fake needs the 'cryptography' package (pip install '.[rsa]')") from None
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


class Maker:
    """Two quotes around a mid price, replaced as it moves; fills counted from the stream."""

    def __init__(self, session: TradingSession, spread: Decimal, size: float) -> None:
        self.session = session
        self.spread = spread
        self.size = size
        self.quotes: dict[str, str] = {}  # side -> client order id of the live quote
        self.latencies: list[float] = []
        self.replaced = 0
        self.filled: dict[str, Decimal] = {"BUY": Decimal(0), "SELL": Decimal(0)}

    def on_report(self, report: ExecutionReport) -> None:
        if report.execution_type == "TRADE" and report.last_executed_quantity:
            self.filled[str(report.side)] += report.last_executed_quantity
            print(
                f"FILL {report.side} {fmt(report.last_executed_quantity)} @ "
                f"{fmt(report.last_executed_price)} ({report.client_order_id})"
            )
            if report.order_status == "FILLED":
                self.quotes.pop(str(report.side), None)

    async def quote(self, mid: Decimal) -> None:
        """Place or move both quotes (both requests in flight at once)."""
        offset = mid * self.spread
        await asyncio.gather(self._side("BUY", mid - offset), self._side("SELL", mid + offset))

    async def _side(self, side: str, price: Decimal) -> None:
        started = time.perf_counter()
        live = self.quotes.get(side)
        try:
            if live is None:
                order = await self.session.new_order(
                    SYMBOL, side, "LIMIT", quantity=self.size, price=price,
                    time_in_force="GTC", round=True,
                )  # fmt: skip
                new_id = order.client_order_id
                qty, at = order.orig_qty or Decimal(0), order.price or Decimal(0)
                print(f"QUOTE {side} {fmt(qty)} @ {fmt(at)}")
            else:
                result = await self.session.cancel_replace_order(
                    SYMBOL, side, "LIMIT", cancel_replace_mode="STOP_ON_FAILURE",
                    cancel_orig_client_order_id=live, quantity=self.size, price=price,
                    time_in_force="GTC", round=True,
                )  # fmt: skip
                new = result.new_order_response
                new_id = new.client_order_id if new is not None else None
                self.replaced += 1
                if new is not None:
                    print(f"MOVE  {side} -> {fmt(new.price or Decimal(0))}")
        except ExecutionStatusUnknown as exc:
            # Never resend: find out what happened to exactly this order.
            self.quotes.pop(side, None)
            print(f"UNKNOWN {side} {exc.client_order_id}: asking the exchange")
            if exc.client_order_id is not None:
                try:
                    found = await self.session.get_order(
                        SYMBOL, orig_client_order_id=exc.client_order_id
                    )
                    if found.status == "NEW":
                        self.quotes[side] = exc.client_order_id
                except BinanceError as lookup:
                    print(f"  not found ({lookup}); it was not placed")
            return
        except BinanceError as exc:
            # Typically the quote filled while the replace was on its way: quote anew next time.
            print(f"REJECTED {side}: {exc}")
            self.quotes.pop(side, None)
            return
        self.latencies.append(time.perf_counter() - started)
        if new_id is not None:
            self.quotes[side] = new_id


async def _market(exchange: FakeExchange, maker: Maker, start: Decimal, seconds: float) -> None:
    """The fake market: a seeded random walk of one step per 50 ms, each step quoted."""
    rng = random.Random(7)
    mid = start
    # A fixed number of steps: the same prices, and so the same fills, on a busy machine.
    for _ in range(max(1, int(seconds / 0.05))):
        mid = (mid * Decimal(1 + rng.gauss(0, 0.0015))).quantize(Decimal("0.01"))
        exchange.set_price(SYMBOL, mid)
        await maker.quote(mid)
        await asyncio.sleep(0.05)


async def _trade(
    client: MarginClient, args: argparse.Namespace, exchange: FakeExchange | None
) -> None:
    config = TradingSessionConfig(request_timeout=5.0)
    session = client.trading_session(config=config)
    maker = Maker(session, args.spread, args.size)
    session.on(ExecutionReport, maker.on_report)
    session.on(StreamGap, lambda gap: print(f"WARNING gap in own events on {gap.account}"))
    session.on_error(lambda exc: print(f"session: {exc}"))
    async with session:
        rules = await client.get_symbol_info(SYMBOL)
        tick = rules.price_filter.tick_size if rules.price_filter else Decimal(0)
        step = rules.lot_size.step_size if rules.lot_size else Decimal(0)
        print(f"{SYMBOL}: tick {fmt(tick)}, step {fmt(step)}")
        try:
            if exchange is not None:
                await _market(exchange, maker, Decimal(60000), args.duration or 10.0)
            else:
                await maker.quote(args.mid)
                await asyncio.sleep(args.duration if args.duration is not None else 3600.0)
        finally:
            cancelled = await session.cancel_open_orders(SYMBOL)
            print(f"cancelled {len(cancelled)} open orders")
    if maker.latencies:
        ms = sorted(value * 1000 for value in maker.latencies)
        print(
            f"summary: {len(ms)} requests, {maker.replaced} replaces, "
            f"bought {fmt(maker.filled['BUY'])}, sold {fmt(maker.filled['SELL'])}; "
            f"round trip p50 {statistics.median(ms):.2f} ms, max {ms[-1]:.2f} ms"
        )


async def run(args: argparse.Namespace) -> int:
    if args.fake:
        async with open_venue(args, margin_balances={"USDT": "100000", "BTC": "2"}) as venue:
            private_pem, public_pem = _ed25519_pair()
            key = await venue.client.create_special_key("maker", public_key=public_pem)
            if key.api_key is None:
                raise SetupError("the exchange returned no special key")
            exchange = venue.exchange
            assert exchange is not None
            special = MarginClient(
                key.api_key,
                private_key=private_pem,
                base_url=exchange.rest_url,
                ws_api_url=exchange.ws_api_url,
                special_key=True,
            )
            async with special:
                await _trade(special, args, exchange)
        return 0
    async with client_from_env(os.environ, args, special_key=True) as client:
        if args.mid is None:
            raise SetupError("on production give --mid PRICE to quote around (or pass --fake)")
        await _trade(client, args, None)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
