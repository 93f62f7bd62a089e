"""An in-process fake Binance margin exchange, for tests, demos and offline strategy runs.

:class:`FakeExchange` serves Binance's margin REST API, the WebSocket API (listen-token user data
stream, and the order methods of margin special keys) and the risk stream on 127.0.0.1, plus the
Spot API routes special keys trade through (``/api/v3/order``..., ``exchangeInfo``, ``ping``),
checks requests the way Binance does (API keys, HMAC/Ed25519/RSA signatures, timestamps,
parameters, weights, bans) and keeps a margin ledger that emits the same events Binance would.
Fault switches (dropped connections, stalls, ``serverShutdown``, expiries, injected errors, clock
skew, malformed frames) make reconnect logic testable::

    from binance_margin_async.testing import FakeExchange

    async with FakeExchange(seed=1) as ex:
        creds = ex.add_account(margin_balances={"USDT": "10000"})
        async with ex.client(creds) as client:  # a MarginClient pointed at the fake
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")

The venue (symbols, prices, fees, interest, risk thresholds) is a :class:`Ledger`; pass your own
``FakeExchange(ledger=Ledger(symbols=[SymbolSpec(...)]))`` to change it. Run the exchange
standalone with ``python -m binance_margin_async.testing --port 8080``.
"""

from ._keys import Credentials
from .ledger import Ledger, LedgerError, SymbolSpec
from .server import ExchangeStats, FakeExchange

__all__ = ["Credentials", "ExchangeStats", "FakeExchange", "Ledger", "LedgerError", "SymbolSpec"]
