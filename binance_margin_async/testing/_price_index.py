"""``GET /sapi/v1/margin/priceIndex`` on the fake exchange: the venue price of a symbol.

Binance computes its margin price index from several venues; the fake has one venue, so the
index is the price last set with :meth:`~.server.FakeExchange.set_price`, the same price the
ledger values margin levels with.

https://developers.binance.com/docs/margin_trading/market-data/Query-Margin-PriceIndex
"""

from __future__ import annotations

from typing import Any

from ._rest import Call, Handler
from .ledger import Ledger, LedgerError

__all__ = ["price_index_handlers"]


def price_index_handlers(ledger: Ledger) -> dict[tuple[str, str], Handler]:
    """The route of the price index, backed by ``ledger``'s prices."""

    def price_index(call: Call) -> Any:
        symbol = call.params.text("symbol", required=True)
        call.params.finish()
        assert symbol is not None  # required=True
        prices = {spec.symbol: spec.price for spec in ledger.symbols()}
        if symbol not in prices:
            raise LedgerError(-1121, f"Invalid symbol: {symbol}.")
        return {"calcTime": call.now_ms, "price": f"{prices[symbol]:.8f}", "symbol": symbol}

    return {("GET", "/sapi/v1/margin/priceIndex"): price_index}
