"""Pure in-memory ledger of the fake Binance margin venue: accounts, loans, orders, risk, events.

No I/O, no event loop, no wall clock: every method that changes state takes ``now`` (epoch
milliseconds) and every time it writes (``E``, ``T``, ``transactTime``...) is that ``now``. The
server shell (:mod:`binance_margin_async.testing.server`) turns REST/WS requests into calls here and
ships :meth:`Ledger.drain_events` over its sockets.

Conventions the shell can rely on
---------------------------------
* Keyword arguments are the snake_case of Binance's parameter names (``newClientOrderId`` →
  ``new_client_order_id``, ``isIsolated`` → ``is_isolated``...). Amounts accept
  ``Decimal | str | int``; flags accept ``bool`` or ``"TRUE"``/``"FALSE"`` (any case).
* Return values are the JSON-able REST bodies, shaped like Binance's (keys in Binance's order).
* A rejected request raises :class:`LedgerError` (Binance code, message, HTTP status) **before**
  changing anything: a failed call leaves no state change and no event.
* Events go to an outbox of :class:`LedgerEvent`: ``channel="trade"`` for the listen-token stream
  of ``scope`` (``"CROSS"`` or the isolated symbol), ``channel="risk"`` (scope ``"CROSS"``) for the
  risk stream. Payloads are the wire dicts of PROTOCOL.md §4 (without the ``subscriptionId``
  envelope).

The venue
---------
The venue is the counterparty of every trade: it has one price per symbol (:meth:`Ledger.set_price`)
and optionally a finite ``liquidity`` (base quantity) at that price, shared by takers and resting
makers until the next ``set_price``. ``None`` means unlimited, so fills are complete unless a test
asks for partial fills. MARKET orders (and triggered STOP_LOSS/TAKE_PROFIT) and LIMIT orders that
cross fill as takers at the current price; LIMIT orders rest and, when a later price crosses them,
fill as makers at their own limit price (price priority, then time).

Decisions where Binance's docs are silent (PROTOCOL.md §9 lists the open questions)
----------------------------------------------------------------------------------
* Margin level = total asset value / (borrowed + interest) value, valued in BTC through the
  configured symbols' prices (shortest conversion path); no debt → ``999``. Cross uses the whole
  account, isolated the pair. Statuses (per :class:`RiskConfig`, cross defaults): ``EXCESSIVE`` ≥ 2,
  ``NORMAL`` ≥ 1.5, ``MARGIN_CALL`` < 1.5, ``PRE_LIQUIDATION`` < 1.25, ``FORCE_LIQUIDATION`` < 1.1.
  Isolated defaults: 5x, margin call < 1.2, pre-liquidation < 1.15, force liquidation < 1.1.
* Borrowing and transfers out must keep the margin level ≥ the *initial* level
  ``L / (L - 1)`` of the max leverage ``L`` (cross 3x → 1.5, isolated 5x → 1.25); that bound is
  ``maxBorrowable``/``maxTransferable``. ``-3006`` above it, ``-3045`` above the optional
  per-asset system inventory (shared by all accounts; repaid principal returns to it).
* Interest accrues only in :meth:`Ledger.accrue_interest`: each loan is charged
  ``borrowed × hourly rate`` for every whole hour since its anchor (the time it was opened, then
  the last charge), rounded up to 8 decimals. No interest is charged at borrow time.
* ``USER_LIABILITY_CHANGE``: ``t`` is ``BORROW``, ``REPAY`` or ``INTEREST``; ``p`` and ``i`` are the
  principal and interest amounts *of this change* (not the totals). Auto-borrows and auto-repays
  of orders use ``BORROW``/``REPAY`` too. Cross only (the risk stream is cross only).
* ``MARGIN_LEVEL_STATUS_CHANGE`` is emitted once per change of the cross status, up or down,
  after whatever operation caused it (price, borrow, repay, trade, transfer, interest); ``l`` is
  the level as an 8-decimal string.
* Events per change: transfers and :meth:`Ledger.deposit` emit ``balanceUpdate`` (signed delta)
  then ``outboundAccountPosition`` in each margin account involved (the spot wallet has no stream
  here); orders emit ``executionReport`` (and ``listStatus``); borrows, repays, fills and
  reservations end with one ``outboundAccountPosition`` per touched account listing the assets
  whose free/locked changed. Interest changes no free/locked balance, so it emits no position.
* ``executionReport`` carries every field of the PROTOCOL.md §4.3 example except ``v``
  (prevented match id: self-trade prevention never happens against the venue); ``W`` only once
  the order works (on the book or executing); ``eR`` only on ``EXPIRED`` reports. ``c`` of a
  ``CANCELED`` report is the cancel's client id and ``C`` the order's own (Binance's rule).
* OCO: when one leg fills (even partially) or its stop triggers, the other leg is ``EXPIRED`` with
  ``eR`` ``OCO_TRIGGER`` and the list is ``ALL_DONE``. OTO: the pending order is ``PENDING_NEW``
  (``x`` ``NEW``) until the working order is fully filled, then placed (``x`` ``NEW``, ``X``
  ``NEW``) and the list is ``ALL_DONE``. OTOCO: after the working fill the two pending orders form
  an OCO (a new ``EXEC_STARTED`` listStatus), ``ALL_DONE`` when that OCO resolves. Cancelling any
  order of an unresolved list cancels the whole list; a working order that expires expires its
  pending orders (``OTO_PHASE_ONE_EXPIRED``). A pending order that cannot be funded when placed
  expires with ``eR`` ``REJECTED``.
* Order lists always answer with ``orderReports`` (newOrderRespType only shapes single orders).
  ``orderId`` is an int in every REST answer (the margin cancel doc example shows a string).
* Funds: SELL orders lock the base quantity, BUY orders lock ``quantity × price`` (the stop
  price for STOP_LOSS/TAKE_PROFIT) of the quote; an OCO locks once for both legs (the larger
  need). MARGIN_BUY/AUTO_BORROW_REPAY borrow the shortfall when funds are locked (resting orders)
  or spent (takers), and ``autoRepayAtCancel`` repays, when such an order is canceled or expires,
  what it borrowed, up to the funds its cancellation released. AUTO_REPAY/AUTO_BORROW_REPAY repay
  the received asset's liability (interest first) with the proceeds of each fill. Commission is
  ``rate × received`` in the received asset, rounded up to 8 decimals.
* Universal transfer types: Binance's ``MAIN_MARGIN``, ``MARGIN_MAIN``, ``MARGIN_ISOLATEDMARGIN``,
  ``ISOLATEDMARGIN_MARGIN``, ``ISOLATEDMARGIN_ISOLATEDMARGIN``, plus the fake-only
  ``MAIN_ISOLATEDMARGIN``/``ISOLATEDMARGIN_MAIN``; each also spelt with ``ISOLATED_MARGIN``.
  Moving funds out of the spot wallet beyond its free balance is ``-3041``.

Not modelled: liquidation (FORCE_LIQUIDATION is only a status), collateral haircuts and tiers,
iceberg display (``icebergQty`` is stored and echoed only), trailing stops, self-trade prevention
(echoed only), order-count limits (the server counts orders), VIP borrow limits, BNB fee discount,
the -15%/+15% price band (-3064), min borrow/repay amounts, other wallets (futures, funding).

Docs: https://developers.binance.com/docs/margin_trading
"""

from __future__ import annotations

from ._ledger_lists import _ListLedger
from ._ledger_state import (
    DEFAULT_CROSS_RISK,
    DEFAULT_ISOLATED_RISK,
    DEFAULT_SYMBOLS,
    Amount,
    BalanceView,
    Channel,
    InvariantViolation,
    LedgerError,
    LedgerEvent,
    RiskConfig,
    SymbolSpec,
)

__all__ = [
    "DEFAULT_CROSS_RISK",
    "DEFAULT_ISOLATED_RISK",
    "DEFAULT_SYMBOLS",
    "Amount",
    "BalanceView",
    "Channel",
    "InvariantViolation",
    "Ledger",
    "LedgerError",
    "LedgerEvent",
    "RiskConfig",
    "SymbolSpec",
]


class Ledger(_ListLedger):
    """The fake venue's books: wallets, loans, orders, margin levels and the event outbox.

    Construct it once per fake exchange; every mutating method takes ``now`` (epoch ms).
    ``seed`` makes the generated client order ids deterministic; all other ids are counters.

    The behaviour lives in layers, one module per concern, each building on the one before:
    ``_ledger_state`` (types, books, lookups), ``_ledger_risk`` (margin levels and limits),
    ``_ledger_wire`` (events and REST bodies), ``_ledger_wallets`` (accounts, transfers, loans,
    interest), ``_ledger_orders`` (orders and matching) and ``_ledger_lists`` (OCO/OTO/OTOCO).
    """
