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

import random
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation
from typing import Any, Final, Literal

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

Amount = Decimal | str | int
"""An amount as the ledger accepts it: a Decimal, a decimal string (``"0.001"``) or an int."""

Channel = Literal["trade", "risk"]
"""The stream an event goes to: the listen-token trade stream or the (cross-only) risk stream."""


class LedgerError(Exception):
    """A request the venue rejects: Binance's ``code``/``msg`` and the HTTP ``status``.

    Raised before any state changes. Codes and messages follow PROTOCOL.md §6 and Binance's
    error page: https://developers.binance.com/docs/binance-spot-api-docs/errors
    """

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"HTTP {status}, code {code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        """The REST error body: ``{"code": ..., "msg": ...}``."""
        return {"code": self.code, "msg": self.msg}


class InvariantViolation(AssertionError):
    """:meth:`Ledger.check_invariants` found an inconsistent state (a ledger bug)."""


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One event for the outbox: who gets it, on which stream, and the wire payload.

    ``scope`` is ``"CROSS"`` or the isolated symbol (the listen-token subscription it belongs to);
    ``channel`` is ``"trade"`` (listen-token stream) or ``"risk"`` (risk stream, cross only).
    """

    account_id: str
    scope: str
    channel: Channel
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A tradable pair: assets, initial price and the filters the venue applies.

    ``tick_size`` (PRICE_FILTER), ``step_size`` (LOT_SIZE) and ``min_notional`` (NOTIONAL) are
    checked like Binance's symbol filters (``-1013 Filter failure: ...``).
    """

    symbol: str
    base: str
    quote: str
    price: Decimal
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.00001")
    min_notional: Decimal = Decimal("5")


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """Leverage and margin-level thresholds of one account kind (cross or isolated).

    A margin level ``>= excessive`` is ``EXCESSIVE``, ``>= margin_call`` ``NORMAL``,
    ``>= pre_liquidation`` ``MARGIN_CALL``, ``>= force_liquidation`` ``PRE_LIQUIDATION``, below
    that ``FORCE_LIQUIDATION``. Borrowing and transfers out keep the level ``>= initial_level``.
    https://www.binance.com/en/support/faq/detail/360030493931
    """

    max_leverage: Decimal
    excessive: Decimal = Decimal(2)
    margin_call: Decimal = Decimal("1.5")
    pre_liquidation: Decimal = Decimal("1.25")
    force_liquidation: Decimal = Decimal("1.1")

    def __post_init__(self) -> None:
        if self.max_leverage <= 1:
            raise ValueError("max_leverage must be greater than 1")
        if not 1 < self.force_liquidation < self.pre_liquidation < self.margin_call:
            raise ValueError("need 1 < force_liquidation < pre_liquidation < margin_call")
        if not self.margin_call <= self.initial_level <= self.excessive:
            # Otherwise borrowing the maximum would itself put the account into a margin call.
            raise ValueError("need margin_call <= initial level (L/(L-1)) <= excessive")

    @property
    def initial_level(self) -> Decimal:
        """The lowest margin level borrowing or a transfer out may leave: ``L / (L - 1)``."""
        return self.max_leverage / (self.max_leverage - 1)

    def status(self, level: Decimal) -> str:
        """The ``marginLevelStatus`` of a margin level."""
        if level >= self.excessive:
            return "EXCESSIVE"
        if level >= self.margin_call:
            return "NORMAL"
        if level >= self.pre_liquidation:
            return "MARGIN_CALL"
        if level >= self.force_liquidation:
            return "PRE_LIQUIDATION"
        return "FORCE_LIQUIDATION"


@dataclass(frozen=True, slots=True)
class BalanceView:
    """A snapshot of one asset in one wallet (:meth:`Ledger.balance`)."""

    asset: str
    free: Decimal
    locked: Decimal
    borrowed: Decimal
    interest: Decimal

    @property
    def net_asset(self) -> Decimal:
        """``free + locked - borrowed - interest``, Binance's ``netAsset``."""
        return self.free + self.locked - self.borrowed - self.interest


DEFAULT_SYMBOLS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTCUSDT", "BTC", "USDT", Decimal("60000"), Decimal("0.01"), Decimal("0.00001")),
    SymbolSpec("ETHUSDT", "ETH", "USDT", Decimal("3000"), Decimal("0.01"), Decimal("0.0001")),
    SymbolSpec("BNBUSDT", "BNB", "USDT", Decimal("600"), Decimal("0.01"), Decimal("0.001")),
    SymbolSpec(
        "ETHBTC", "ETH", "BTC", Decimal("0.05"), Decimal("0.00001"), Decimal("0.0001"),
        Decimal("0.0001"),
    ),
)  # fmt: skip
"""BTCUSDT 60000, ETHUSDT 3000, BNBUSDT 600, ETHBTC 0.05, with Binance-like filters."""

DEFAULT_CROSS_RISK: Final = RiskConfig(max_leverage=Decimal(3))
"""Cross Margin Classic 3x: initial level 1.5, margin call < 1.5, liquidation < 1.1."""

DEFAULT_ISOLATED_RISK: Final = RiskConfig(
    max_leverage=Decimal(5),
    margin_call=Decimal("1.2"),
    pre_liquidation=Decimal("1.15"),
    force_liquidation=Decimal("1.1"),
)
"""Isolated 5x: initial level 1.25, margin call < 1.2, liquidation < 1.1."""

# ---------------------------------------------------------------------------------------------
# Wire constants

_Q8: Final = Decimal("0.00000001")
_ZERO: Final = Decimal(0)
_ZERO8: Final = "0.00000000"
_HOUR_MS: Final = 3_600_000
_NO_DEBT_LEVEL: Final = Decimal(999)

_BUY: Final = "BUY"
_SELL: Final = "SELL"
_SIDES: Final = frozenset({_BUY, _SELL})
_MARKET: Final = "MARKET"
_LIMIT: Final = "LIMIT"
_LIMIT_MAKER: Final = "LIMIT_MAKER"
_STOP_LOSS: Final = "STOP_LOSS"
_STOP_LOSS_LIMIT: Final = "STOP_LOSS_LIMIT"
_TAKE_PROFIT: Final = "TAKE_PROFIT"
_TAKE_PROFIT_LIMIT: Final = "TAKE_PROFIT_LIMIT"
_STOP_TYPES: Final = frozenset({_STOP_LOSS, _STOP_LOSS_LIMIT, _TAKE_PROFIT, _TAKE_PROFIT_LIMIT})
_STOP_MARKET_TYPES: Final = frozenset({_STOP_LOSS, _TAKE_PROFIT})
_LOSS_TYPES: Final = frozenset({_STOP_LOSS, _STOP_LOSS_LIMIT})
_ICEBERG_TYPES: Final = frozenset({_LIMIT, _LIMIT_MAKER, _STOP_LOSS_LIMIT, _TAKE_PROFIT_LIMIT})
# type -> (needs timeInForce, needs price, needs stopPrice)
_TYPE_RULES: Final[Mapping[str, tuple[bool, bool, bool]]] = {
    _LIMIT: (True, True, False),
    _MARKET: (False, False, False),
    _STOP_LOSS: (False, False, True),
    _STOP_LOSS_LIMIT: (True, True, True),
    _TAKE_PROFIT: (False, False, True),
    _TAKE_PROFIT_LIMIT: (True, True, True),
    _LIMIT_MAKER: (False, True, False),
}
_GTC: Final = "GTC"
_IOC: Final = "IOC"
_FOK: Final = "FOK"
_TIFS: Final = frozenset({_GTC, _IOC, _FOK})
_RESP_TYPES: Final = frozenset({"ACK", "RESULT", "FULL"})
_NO_SIDE_EFFECT: Final = "NO_SIDE_EFFECT"
_SIDE_EFFECTS: Final = frozenset({_NO_SIDE_EFFECT, "MARGIN_BUY", "AUTO_REPAY", "AUTO_BORROW_REPAY"})
_BORROWING: Final = frozenset({"MARGIN_BUY", "AUTO_BORROW_REPAY"})
_REPAYING: Final = frozenset({"AUTO_REPAY", "AUTO_BORROW_REPAY"})
_STP_MODES: Final = frozenset({"NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"})

_NEW: Final = "NEW"
_PENDING_NEW: Final = "PENDING_NEW"
_PARTIALLY_FILLED: Final = "PARTIALLY_FILLED"
_FILLED: Final = "FILLED"
_CANCELED: Final = "CANCELED"
_EXPIRED: Final = "EXPIRED"
_LIVE: Final = frozenset({_NEW, _PENDING_NEW, _PARTIALLY_FILLED})

# Order roles inside a list.
_ROLE_NONE: Final = ""
_ROLE_LEG: Final = "LEG"  # a leg of a plain OCO
_ROLE_WORKING: Final = "WORKING"
_ROLE_PENDING: Final = "PENDING"
# List phases: which contingency is still unresolved.
_PHASE_WORKING: Final = "WORKING"
_PHASE_OCO: Final = "OCO"
_PHASE_DONE: Final = "DONE"
# What the wire calls each list kind: Binance answers an OTOCO with contingencyType "OTO" (SPOT
# rest-api trading-endpoints, "New Order list - OTOCO" response example).
_WIRE_CONTINGENCY: Final = {"OCO": "OCO", "OTO": "OTO", "OTOCO": "OTO"}

_SPOT: Final = "SPOT"
_CROSS: Final = "CROSS"
_ISOLATED: Final = "ISOLATED"
# Universal transfer type -> (from kind, to kind); kinds are SPOT, CROSS, ISOLATED.
_TRANSFER_TYPES: Final[Mapping[str, tuple[str, str]]] = {
    "MAIN_MARGIN": (_SPOT, _CROSS),
    "MARGIN_MAIN": (_CROSS, _SPOT),
    "MARGIN_ISOLATEDMARGIN": (_CROSS, _ISOLATED),
    "ISOLATEDMARGIN_MARGIN": (_ISOLATED, _CROSS),
    "ISOLATEDMARGIN_ISOLATEDMARGIN": (_ISOLATED, _ISOLATED),
    "MAIN_ISOLATEDMARGIN": (_SPOT, _ISOLATED),
    "ISOLATEDMARGIN_MAIN": (_ISOLATED, _SPOT),
    "MARGIN_ISOLATED_MARGIN": (_CROSS, _ISOLATED),
    "ISOLATED_MARGIN_MARGIN": (_ISOLATED, _CROSS),
    "ISOLATED_MARGIN_ISOLATED_MARGIN": (_ISOLATED, _ISOLATED),
    "MAIN_ISOLATED_MARGIN": (_SPOT, _ISOLATED),
    "ISOLATED_MARGIN_MAIN": (_ISOLATED, _SPOT),
}
_TRANSFER_WALLET_NAMES: Final[Mapping[str, str]] = {
    _SPOT: "SPOT",
    _CROSS: "CROSS_MARGIN",
    _ISOLATED: "ISOLATED_MARGIN",
}

_DECIMAL_RANGE: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_DECIMAL_RE: Final = re.compile(r"([0-9]{1,20})(?:\.([0-9]{1,20}))?")
_CLIENT_ID_RE: Final = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
_ID_ALPHABET: Final = string.ascii_letters + string.digits

_INSUFFICIENT: Final = "Account has insufficient balance for requested action."


# ---------------------------------------------------------------------------------------------
# The ledger


class Ledger:
    """The fake venue's books: wallets, loans, orders, margin levels and the event outbox.

    Construct it once per fake exchange; every mutating method takes ``now`` (epoch ms).
    ``seed`` makes the generated client order ids deterministic; all other ids are counters.
    """

    # -- construction --------------------------------------------------------------------------

    def __init__(
        self,
        *,
        symbols: Iterable[SymbolSpec] = DEFAULT_SYMBOLS,
        btc_asset: str = "BTC",
        usdt_asset: str = "USDT",
        cross_risk: RiskConfig = DEFAULT_CROSS_RISK,
        isolated_risk: RiskConfig = DEFAULT_ISOLATED_RISK,
        maker_commission: Amount = "0.001",
        taker_commission: Amount = "0.001",
        hourly_interest_rate: Amount = "0.00001",
        interest_rates: Mapping[str, Amount] | None = None,
        inventory: Mapping[str, Amount] | None = None,
        seed: int = 0,
    ) -> None:
        """Configure the venue.

        ``symbols``: the tradable pairs with their initial prices (every asset must be
        convertible to ``btc_asset`` through them). ``cross_risk``/``isolated_risk``: leverage and
        status thresholds. ``maker_commission``/``taker_commission``: fee rates on the received
        asset. ``hourly_interest_rate``: default hourly rate, ``interest_rates`` per asset.
        ``inventory``: per-asset amount the system can lend (absent = unlimited; ``-3045``).
        Raises ``ValueError`` on an inconsistent configuration.
        """
        self._symbols: dict[str, _Symbol] = {}
        self._graph: dict[str, list[tuple[str, _Symbol, bool]]] = {}
        for spec in symbols:
            if spec.symbol in self._symbols:
                raise ValueError(f"duplicate symbol {spec.symbol}")
            if spec.price <= 0 or spec.tick_size <= 0 or spec.step_size <= 0:
                raise ValueError(f"{spec.symbol}: price, tick_size and step_size must be > 0")
            sym = _Symbol(spec)
            self._symbols[spec.symbol] = sym
            self._graph.setdefault(spec.base, []).append((spec.quote, sym, True))
            self._graph.setdefault(spec.quote, []).append((spec.base, sym, False))
        self._assets: tuple[str, ...] = tuple(sorted(self._graph))
        self._asset_set = frozenset(self._assets)
        self._btc = btc_asset
        self._usdt = usdt_asset if usdt_asset in self._graph else None
        self._rates: dict[str, Decimal] = {}
        if btc_asset not in self._graph:
            raise ValueError(f"btc_asset {btc_asset} is not an asset of any symbol")
        for asset in self._assets:
            if self._rate_or_none(asset) is None:
                raise ValueError(f"{asset} cannot be valued in {btc_asset}")
        self._cross_risk = cross_risk
        self._isolated_risk = isolated_risk
        self._maker_rate = _config_amount(maker_commission, "maker_commission")
        self._taker_rate = _config_amount(taker_commission, "taker_commission")
        self._default_interest = _config_amount(hourly_interest_rate, "hourly_interest_rate")
        self._interest_rates = {
            asset: _config_amount(rate, f"interest_rates[{asset}]")
            for asset, rate in (interest_rates or {}).items()
        }
        self._inventory_initial = {
            asset: _config_amount(qty, f"inventory[{asset}]")
            for asset, qty in (inventory or {}).items()
        }
        self._inventory = dict(self._inventory_initial)
        self._rng = random.Random(seed)
        self._accounts: dict[str, _Account] = {}
        self._book: dict[str, dict[int, _Order]] = {name: {} for name in self._symbols}
        self._outbox: list[LedgerEvent] = []
        # Ids: monotonic counters, each starting where Binance's doc examples look plausible.
        self._next_order_id = 1000
        self._next_list_id = 1
        self._next_trade_id = 1
        self._next_tran_id = 100_000_001
        self._next_exec_id = 1
        # Per-operation scratch: touched wallets (for outboundAccountPosition), accounts whose
        # margin status must be re-checked, trades made (for FULL responses).
        self._touched: dict[tuple[str, str], dict[str, None]] = {}
        self._dirty: dict[str, None] = {}
        self._all_dirty = False
        self._op_trades: list[_Trade] = []
        # Flow counters for check_invariants (kept apart from the balances they check).
        self._deposits: dict[str, Decimal] = {}
        self._trade_net: dict[str, Decimal] = {}
        self._fees: dict[str, Decimal] = {}
        self._interest_charged: dict[str, Decimal] = {}
        self._interest_paid: dict[str, Decimal] = {}
        self._lent: dict[str, Decimal] = {}

    # -- accounts and market ------------------------------------------------------------------

    def add_account(
        self,
        account_id: str,
        *,
        spot: Mapping[str, Amount] | None = None,
        cross: Mapping[str, Amount] | None = None,
        isolated: Mapping[str, Mapping[str, Amount]] | None = None,
    ) -> None:
        """Open an account (its cross margin account is activated) with initial balances.

        ``spot``/``cross`` map asset → amount; ``isolated`` maps symbol → {asset: amount} and
        creates those isolated accounts. Emits nothing. ``ValueError`` on a duplicate id or an
        unknown symbol/asset.
        """
        if account_id in self._accounts:
            raise ValueError(f"account {account_id!r} already exists")
        acct = _Account(account_id, self._cross_risk.status(_NO_DEBT_LEVEL), self._asset_set)
        plan: list[tuple[_Wallet, str, Decimal]] = []
        for wallet, balances in ((acct.spot, spot), (acct.cross, cross)):
            for asset, amount in (balances or {}).items():
                plan.append((wallet, self._config_asset(asset), _config_amount(amount, asset)))
        for symbol, balances in (isolated or {}).items():
            if symbol not in self._symbols:
                raise ValueError(f"unknown symbol {symbol}")
            wallet = acct.isolated.setdefault(symbol, self._new_isolated(symbol))
            for asset, amount in balances.items():
                if asset not in wallet.allowed:
                    raise ValueError(f"{asset} is not an asset of {symbol}")
                plan.append((wallet, asset, _config_amount(amount, asset)))
        self._accounts[account_id] = acct
        for wallet, asset, amount in plan:
            wallet.bal(asset).free += amount
            _add(self._deposits, asset, amount)
        acct.cross_status = self._cross_risk.status(self._level(acct.cross))

    def has_account(self, account_id: str) -> bool:
        """Whether ``account_id`` exists."""
        return account_id in self._accounts

    def account_ids(self) -> list[str]:
        """All account ids, in creation order."""
        return list(self._accounts)

    def deposit(
        self, account_id: str, asset: str, amount: Amount, now: int, *, wallet: str = "SPOT"
    ) -> None:
        """Credit ``amount`` of ``asset`` from outside the venue (a test helper, not an endpoint).

        ``wallet`` is ``"SPOT"``, ``"CROSS"`` or an isolated symbol (created if needed). A margin
        wallet gets ``balanceUpdate`` + ``outboundAccountPosition``.
        """
        acct = self._account(account_id)
        qty = _positive(amount, "amount")
        if wallet == _SPOT:
            target = acct.spot
            self._known_asset(asset)
        elif wallet == _CROSS:
            target = acct.cross
            self._known_asset(asset)
        else:
            self._margin_pair(wallet)
            if asset not in self._symbols[wallet].assets:
                raise LedgerError(-3027, "Not a valid margin asset.")
            target = acct.isolated.setdefault(wallet, self._new_isolated(wallet))
        target.bal(asset).free += qty
        _add(self._deposits, asset, qty)
        self._balance_update(acct, target, asset, qty, now)
        self._flush(now)

    def create_isolated_account(self, account_id: str, symbol: str, now: int) -> dict[str, Any]:
        """Enable an isolated margin account (``POST /sapi/v1/margin/isolated/account``).

        Idempotent. Returns ``{"success": true, "symbol": ...}``.
        https://developers.binance.com/docs/margin_trading/account/Enable-Isolated-Margin-Account
        """
        acct = self._account(account_id)
        self._margin_pair(symbol)
        acct.isolated.setdefault(symbol, self._new_isolated(symbol))
        self._flush(now)
        return {"success": True, "symbol": symbol}

    def isolated_symbols(self, account_id: str) -> list[str]:
        """The symbols of the account's isolated margin accounts, in creation order."""
        return list(self._account(account_id).isolated)

    def balance(self, account_id: str, asset: str, *, wallet: str = "CROSS") -> BalanceView:
        """A snapshot of ``asset`` in ``wallet`` (``"SPOT"``, ``"CROSS"`` or an isolated symbol).

        Unknown wallets and assets read as zero.
        """
        acct = self._account(account_id)
        if wallet == _SPOT:
            target: _Wallet | None = acct.spot
        elif wallet == _CROSS:
            target = acct.cross
        else:
            target = acct.isolated.get(wallet)
        bal = target.balances.get(asset) if target is not None else None
        if bal is None:
            return BalanceView(asset, _ZERO, _ZERO, _ZERO, _ZERO)
        return BalanceView(asset, bal.free, bal.locked, bal.borrowed, bal.interest)

    def symbols(self) -> list[SymbolSpec]:
        """The configured symbols with their current prices."""
        return [
            SymbolSpec(s.name, s.base, s.quote, s.price, s.tick_size, s.step_size, s.min_notional)
            for s in self._symbols.values()
        ]

    def price(self, symbol: str) -> Decimal:
        """The current price of ``symbol`` (``-1121`` if unknown)."""
        return self._order_symbol(symbol).price

    def set_price(
        self, symbol: str, price: Amount, now: int, *, liquidity: Amount | None = None
    ) -> None:
        """Move the market: fill crossed resting orders, trigger stops, re-check margin levels.

        ``liquidity`` is the base quantity the venue trades at this price until the next
        ``set_price`` (``None``: unlimited). Emits every resulting ``executionReport``/
        ``listStatus``/``outboundAccountPosition`` and ``MARGIN_LEVEL_STATUS_CHANGE``.
        """
        sym = self._order_symbol(symbol)
        sym.price = _positive(price, "price")
        sym.liquidity = None if liquidity is None else _non_negative(liquidity, "liquidity")
        self._rates.clear()
        self._all_dirty = True
        self._match(sym, now)
        self._flush(now)

    # -- transfers ----------------------------------------------------------------------------

    def transfer(
        self,
        account_id: str,
        type: str,
        asset: str,
        amount: Amount,
        now: int,
        *,
        from_symbol: str | None = None,
        to_symbol: str | None = None,
    ) -> dict[str, Any]:
        """Universal transfer between spot, cross and isolated wallets → ``{"tranId": n}``.

        ``-3020`` when a margin wallet would send more than :meth:`max_transferable`, ``-3041``
        when the spot wallet lacks the free balance, ``-3027``/``-3028`` for an asset/pair that is
        not a valid margin asset/pair. An isolated destination is created on first transfer in.
        https://developers.binance.com/docs/wallet/asset/user-universal-transfer
        """
        acct = self._account(account_id)
        kinds = _TRANSFER_TYPES.get(type)
        if kinds is None:
            raise _illegal("type", ", ".join(sorted(_TRANSFER_TYPES)))
        qty = _amount(amount, "amount")
        src_kind, dst_kind = kinds
        self._known_asset(asset)
        if src_kind == _ISOLATED:
            if from_symbol is None:
                raise _mandatory("fromSymbol")
        elif from_symbol is not None:
            raise _not_required("fromSymbol")
        if dst_kind == _ISOLATED:
            if to_symbol is None:
                raise _mandatory("toSymbol")
        elif to_symbol is not None:
            raise _not_required("toSymbol")
        if src_kind == dst_kind == _ISOLATED and from_symbol == to_symbol:
            raise LedgerError(-1130, "Data sent for parameter 'toSymbol' is not valid.")
        if to_symbol is not None:
            self._margin_pair(to_symbol)
            if asset not in self._symbols[to_symbol].assets:
                raise LedgerError(-3027, "Not a valid margin asset.")
        src = self._transfer_wallet(acct, src_kind, from_symbol)
        if src.kind == _SPOT:
            if _free(src, asset) < qty:
                raise LedgerError(-3041, "Balance is not enough.")
        elif qty > self._max_transferable(src, asset):
            raise LedgerError(-3020, "Transfer out amount exceeds max amount.")
        # Validated: change state.
        if dst_kind == _ISOLATED:
            assert to_symbol is not None
            dst = acct.isolated.setdefault(to_symbol, self._new_isolated(to_symbol))
        else:
            dst = self._transfer_wallet(acct, dst_kind, None)
        src.bal(asset).free -= qty
        dst.bal(asset).free += qty
        tran_id = self._tran_id()
        acct.transfers.append(_TransferRecord(tran_id, asset, qty, src, dst, now))
        self._balance_update(acct, src, asset, -qty, now)
        self._balance_update(acct, dst, asset, qty, now)
        self._flush(now)
        return {"tranId": tran_id}

    def max_transferable(
        self, account_id: str, asset: str, *, isolated_symbol: str | None = None
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/maxTransferable`` → ``{"amount": "..."}``.

        The most of ``asset`` that can leave the margin wallet with its level kept at or above
        the initial level.
        https://developers.binance.com/docs/margin_trading/transfer/Query-Max-Transfer-Out-Amount
        """
        acct = self._account(account_id)
        self._known_asset(asset)
        wallet = self._margin_wallet(acct, isolated_symbol)
        if asset not in wallet.allowed:
            raise LedgerError(-3027, "Not a valid margin asset.")
        return {"amount": _fmt(self._max_transferable(wallet, asset))}

    def transfer_history(
        self,
        account_id: str,
        *,
        asset: str | None = None,
        type: str | None = None,
        isolated_symbol: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int = 1,
        size: int = 10,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/transfer``: transfers of the cross (or ``isolated_symbol``) wallet.

        ``type`` is ``ROLL_IN`` or ``ROLL_OUT`` seen from that wallet; newest first, paged.
        https://developers.binance.com/docs/margin_trading/transfer/Get-Cross-Margin-Transfer-History
        """
        acct = self._account(account_id)
        if type is not None and type not in ("ROLL_IN", "ROLL_OUT"):
            raise _illegal("type", "ROLL_IN, ROLL_OUT")
        scope = _CROSS if isolated_symbol is None else isolated_symbol
        rows: list[dict[str, Any]] = []
        for rec in reversed(acct.transfers):
            if scope not in (rec.src.scope, rec.dst.scope):
                continue
            direction = "ROLL_IN" if rec.dst.scope == scope else "ROLL_OUT"
            if (type is not None and direction != type) or not _in_range(
                rec.time, start_time, end_time
            ):
                continue
            if asset is not None and rec.asset != asset:
                continue
            row: dict[str, Any] = {
                "amount": _fmt(rec.amount),
                "asset": rec.asset,
                "status": "CONFIRMED",
                "timestamp": rec.time,
                "txId": rec.tran_id,
                "type": direction,
                "transFrom": _TRANSFER_WALLET_NAMES[rec.src.kind],
                "transTo": _TRANSFER_WALLET_NAMES[rec.dst.kind],
            }
            if rec.src.kind == _ISOLATED:
                row["fromSymbol"] = rec.src.scope
            if rec.dst.kind == _ISOLATED:
                row["toSymbol"] = rec.dst.scope
            rows.append(row)
        return _page(rows, current, size)

    # -- loans --------------------------------------------------------------------------------

    def borrow(
        self, account_id: str, asset: str, amount: Amount, now: int, *, symbol: str | None = None
    ) -> dict[str, Any]:
        """Borrow into the cross wallet (or the isolated wallet of ``symbol``) → ``{"tranId"}``.

        ``-3006`` above :meth:`max_borrowable` (margin level rule), ``-3045`` above the system
        inventory. Emits ``outboundAccountPosition`` and, cross only, ``USER_LIABILITY_CHANGE``.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Margin-Account-Borrow-Repay
        """
        return self.borrow_repay(
            account_id, "BORROW", asset, amount, now, is_isolated=symbol is not None, symbol=symbol
        )

    def repay(
        self, account_id: str, asset: str, amount: Amount, now: int, *, symbol: str | None = None
    ) -> dict[str, Any]:
        """Repay (interest first, then principal) → ``{"tranId": n}``.

        ``-3015`` when ``amount`` exceeds borrowed + interest, ``-3041`` when the free balance
        is short. Emits ``outboundAccountPosition`` and, cross only, ``USER_LIABILITY_CHANGE``.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Margin-Account-Borrow-Repay
        """
        return self.borrow_repay(
            account_id, "REPAY", asset, amount, now, is_isolated=symbol is not None, symbol=symbol
        )

    def borrow_repay(
        self,
        account_id: str,
        type: str,
        asset: str,
        amount: Amount,
        now: int,
        *,
        is_isolated: bool | str = False,
        symbol: str | None = None,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/borrow-repay``: ``type`` ``BORROW`` or ``REPAY``.

        See :meth:`borrow` and :meth:`repay`. ``symbol`` is mandatory when ``is_isolated``.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Margin-Account-Borrow-Repay
        """
        acct = self._account(account_id)
        if type not in ("BORROW", "REPAY"):
            raise _illegal("type", "BORROW, REPAY")
        qty = _amount(amount, "amount")
        wallet = self._loan_wallet(acct, _flag(is_isolated, "isIsolated"), symbol, asset)
        if type == "BORROW":
            err = self._borrow_error(wallet, asset, qty)
            if err is not None:
                raise err
            tran_id = self._borrow_now(acct, wallet, asset, qty, now, auto=False)
        else:
            bal = wallet.balances.get(asset) or _Balance()
            if qty > bal.borrowed + bal.interest:
                raise LedgerError(-3015, "Repay amount exceeds borrow amount.")
            if qty > bal.free:
                raise LedgerError(-3041, "Balance is not enough.")
            tran_id = self._repay_now(acct, wallet, asset, qty, now, auto=False)
        self._flush(now)
        return {"tranId": tran_id}

    def max_borrowable(
        self, account_id: str, asset: str, *, isolated_symbol: str | None = None
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/maxBorrowable`` → ``{"amount", "borrowLimit"}``.

        ``amount``: the most that can be borrowed now (margin-level rule, capped by the system
        inventory); ``borrowLimit``: the margin-level bound alone.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Query-Max-Borrow
        """
        acct = self._account(account_id)
        wallet = self._loan_wallet(acct, isolated_symbol is not None, isolated_symbol, asset)
        limit = self._risk_max_borrow(wallet, asset)
        amount = limit
        remaining = self._inventory.get(asset)
        if remaining is not None:
            amount = min(amount, remaining)
        return {"amount": _fmt(amount), "borrowLimit": _fmt(limit)}

    def accrue_interest(self, now: int) -> None:
        """Charge hourly interest on every open loan for each whole hour since its anchor.

        Adds to ``interest``, records ``PERIODIC`` interest history and emits
        ``USER_LIABILITY_CHANGE`` (``t`` ``INTEREST``) for cross loans; margin statuses are
        re-checked.
        """
        for acct in self._accounts.values():
            for wallet in acct.margin_wallets():
                for asset, anchor in list(wallet.anchors.items()):
                    bal = wallet.bal(asset)
                    hours = (now - anchor) // _HOUR_MS
                    if hours <= 0:
                        continue
                    wallet.anchors[asset] = anchor + hours * _HOUR_MS
                    rate = self._interest_rates.get(asset, self._default_interest)
                    charge = (bal.borrowed * rate * hours).quantize(_Q8, ROUND_UP)
                    if charge <= 0:
                        continue
                    bal.interest += charge
                    _add(self._interest_charged, asset, charge)
                    acct.interests.append(
                        _InterestRecord(
                            self._tran_id(), wallet.scope, asset, bal.borrowed, charge, rate, now
                        )
                    )
                    self._liability_event(acct, wallet, asset, "INTEREST", _ZERO, charge, now)
                    self._dirty[acct.account_id] = None
        self._flush(now)

    def borrow_repay_history(
        self,
        account_id: str,
        type: str,
        *,
        asset: str | None = None,
        isolated_symbol: str | None = None,
        tx_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int = 1,
        size: int = 10,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/borrow-repay``: ``BORROW`` or ``REPAY`` records, newest first.

        Cross records unless ``isolated_symbol``. Rows carry ``type`` ``MANUAL`` or ``AUTO``.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Query-Borrow-Repay
        """
        acct = self._account(account_id)
        if type not in ("BORROW", "REPAY"):
            raise _illegal("type", "BORROW, REPAY")
        scope = _CROSS if isolated_symbol is None else isolated_symbol
        rows: list[dict[str, Any]] = []
        for rec in reversed(acct.loans):
            if rec.kind != type or rec.scope != scope:
                continue
            if asset is not None and rec.asset != asset:
                continue
            if tx_id is not None and rec.tran_id != tx_id:
                continue
            if not _in_range(rec.time, start_time, end_time):
                continue
            row: dict[str, Any] = {"type": "AUTO" if rec.auto else "MANUAL"}
            if rec.scope != _CROSS:
                row["isolatedSymbol"] = rec.scope
            row.update(
                amount=_fmt(rec.principal + rec.interest),
                asset=rec.asset,
                interest=_fmt(rec.interest),
                principal=_fmt(rec.principal),
                status="CONFIRMED",
                timestamp=rec.time,
                txId=rec.tran_id,
            )
            rows.append(row)
        return _page(rows, current, size)

    def interest_history(
        self,
        account_id: str,
        *,
        asset: str | None = None,
        isolated_symbol: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int = 1,
        size: int = 10,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/interestHistory``: charged interest, newest first, paged.

        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Get-Interest-History
        """
        acct = self._account(account_id)
        scope = _CROSS if isolated_symbol is None else isolated_symbol
        rows: list[dict[str, Any]] = []
        for rec in reversed(acct.interests):
            if rec.scope != scope or (asset is not None and rec.asset != asset):
                continue
            if not _in_range(rec.time, start_time, end_time):
                continue
            row: dict[str, Any] = {
                "txId": rec.tran_id,
                "interestAccuredTime": rec.time,
                "asset": rec.asset,
                "rawAsset": rec.asset,
                "principal": _fmt(rec.principal),
                "interest": _fmt(rec.interest),
                "interestRate": _fmt(rec.rate),
                "type": "PERIODIC",
            }
            if rec.scope != _CROSS:
                row["isolatedSymbol"] = rec.scope
            rows.append(row)
        return _page(rows, current, size)

    # -- orders -------------------------------------------------------------------------------

    def new_order(
        self,
        account_id: str,
        symbol: str,
        side: str,
        type: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        quantity: Amount | None = None,
        quote_order_qty: Amount | None = None,
        price: Amount | None = None,
        stop_price: Amount | None = None,
        new_client_order_id: str | None = None,
        iceberg_qty: Amount | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        time_in_force: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/order``: place an order; the ACK/RESULT/FULL response.

        Rejections: ``-2010`` (insufficient balance, duplicate client id, LIMIT_MAKER that would
        match, stop that would trigger), ``-3006``/``-3045`` (MARGIN_BUY borrow), ``-1013``
        filters, ``-1102``/``-1106``/``-1128`` parameter combinations, ``-1121`` symbol,
        ``-3003`` isolated account missing.
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-Order
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        spec = self._parse_spec(
            sym, side, type, time_in_force, quantity, quote_order_qty, price, stop_price,
            iceberg_qty, new_client_order_id, "",
        )  # fmt: skip
        default_resp = "FULL" if spec.type in (_MARKET, _LIMIT) else "ACK"
        resp_type, effect, stp, auto_repay = _order_options(
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel, default_resp,
        )  # fmt: skip
        self._check_client_ids(acct, wallet, sym, [spec.client_id])
        self._check_placement(sym, spec)
        if spec.type == _MARKET:
            asset, need = self._market_cost(sym, spec)
        else:
            asset, need = _reserve_asset(sym, spec.side), _spec_need(spec)
        self._check_funding(wallet, asset, need, effect)
        # Validated: change state.
        order = self._make_order(acct, wallet, sym, spec, now, effect, auto_repay, stp)
        self._open(order, now)
        if order.type != _MARKET:
            order.res = _Reservation(wallet, asset, [order])
            self._fund(acct, order.res, effect, now, order)
        self._report(order, now, "NEW")
        self._match(sym, now)
        fills = [t for t in self._op_trades if t.order_id == order.order_id]
        response = self._order_response(order, resp_type, now, fills)
        self._flush(now)
        return response

    def cancel_order(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        order_id: int | str | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """``DELETE /sapi/v1/margin/order``: cancel one open order → its cancel response.

        ``-2011 Unknown order sent.`` when no open order matches. An order of an unresolved list
        cancels the whole list (every order gets a ``CANCELED`` report, then ``listStatus``).
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-Order
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(order_id, "orderId")
        _one_of(("origClientOrderId", orig_client_order_id), ("orderId", oid))
        cancel_id = self._client_id(new_client_order_id, "newClientOrderId")
        order = self._find_order(acct, wallet, sym, oid, orig_client_order_id, live_only=True)
        if order is None:
            raise LedgerError(-2011, "Unknown order sent.")
        lst = acct.lists.get(order.list_id)
        if lst is not None and lst.phase != _PHASE_DONE:
            self._cancel_list(acct, lst, now, chosen=(order.order_id, cancel_id))
        else:
            self._close(order, _CANCELED, now, cancel_id=cancel_id)
        response = self._cancel_json(order, now)
        self._flush(now)
        return response

    def cancel_open_orders(
        self, account_id: str, symbol: str, now: int, *, is_isolated: bool | str = False
    ) -> list[dict[str, Any]]:
        """``DELETE /sapi/v1/margin/openOrders``: cancel every open order (and list) of ``symbol``.

        Answers one cancel response per standalone order and one list response per list;
        ``-2011`` when nothing is open.
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-All-Open-Orders
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        open_orders = self._live_orders(acct, wallet, sym.name)
        if not open_orders:
            raise LedgerError(-2011, "Unknown order sent.")
        result: list[dict[str, Any]] = []
        done_lists: set[int] = set()
        for order in open_orders:
            if not order.is_live:
                continue
            lst = acct.lists.get(order.list_id)
            if lst is not None and lst.phase != _PHASE_DONE:
                if lst.list_id not in done_lists:
                    done_lists.add(lst.list_id)
                    self._cancel_list(acct, lst, now)
                    result.append(self._list_json(lst, now, reports="cancel"))
                continue
            self._close(order, _CANCELED, now, cancel_id=self._gen_id())
            result.append(self._cancel_json(order, now))
        self._flush(now)
        return result

    def get_order(
        self,
        account_id: str,
        symbol: str,
        *,
        is_isolated: bool | str = False,
        order_id: int | str | None = None,
        orig_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/order``: one order (``-2013 Order does not exist.``).

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Order
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(order_id, "orderId")
        _one_of(("origClientOrderId", orig_client_order_id), ("orderId", oid))
        order = self._find_order(acct, wallet, sym, oid, orig_client_order_id, live_only=False)
        if order is None:
            raise LedgerError(-2013, "Order does not exist.")
        return self._order_json(order)

    def open_orders(
        self, account_id: str, symbol: str | None = None, *, is_isolated: bool | str = False
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/openOrders``: open orders (all cross symbols without ``symbol``).

        ``is_isolated`` needs ``symbol`` (``-1102``). Pending OTO orders are included.
        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
        """
        acct = self._account(account_id)
        isolated = _flag(is_isolated, "isIsolated")
        if symbol is None:
            if isolated:
                raise _mandatory("symbol")
            return [self._order_json(o) for o in acct.live.values() if o.scope == _CROSS]
        sym = self._order_symbol(symbol)
        wallet = self._trading_wallet(acct, sym, isolated)
        return [self._order_json(o) for o in self._live_orders(acct, wallet, sym.name)]

    def all_orders(
        self,
        account_id: str,
        symbol: str,
        *,
        is_isolated: bool | str = False,
        order_id: int | str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/allOrders``: orders of ``symbol``, oldest first.

        From ``order_id`` on when given, else the most recent ``limit`` (max 500).
        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-All-Orders
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(order_id, "orderId")
        size = _limit(limit, 500)
        orders = [
            o
            for o in self._scope_orders(acct, wallet, sym.name)
            if (oid is None or o.order_id >= oid) and _in_range(o.time, start_time, end_time)
        ]
        chosen = orders[:size] if oid is not None else orders[-size:]
        return [self._order_json(o) for o in chosen]

    def my_trades(
        self,
        account_id: str,
        symbol: str,
        *,
        is_isolated: bool | str = False,
        order_id: int | str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/myTrades``: fills of ``symbol``, oldest first.

        From trade ``from_id`` on when given, else the most recent ``limit`` (max 1000).
        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Trade-List
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(order_id, "orderId")
        fid = _opt_int(from_id, "fromId")
        size = _limit(limit, 1000)
        trades = [
            t
            for t in acct.trades
            if t.scope == wallet.scope
            and t.symbol == sym.name
            and (oid is None or t.order_id == oid)
            and (fid is None or t.trade_id >= fid)
            and _in_range(t.time, start_time, end_time)
        ]
        chosen = trades[:size] if fid is not None else trades[-size:]
        return [
            {
                "commission": _fmt(t.commission),
                "commissionAsset": t.commission_asset,
                "id": t.trade_id,
                "isBestMatch": True,
                "isBuyer": t.is_buyer,
                "isMaker": t.is_maker,
                "orderId": t.order_id,
                "price": _fmt(t.price),
                "qty": _fmt(t.qty),
                "symbol": t.symbol,
                "isIsolated": t.scope != _CROSS,
                "time": t.time,
            }
            for t in chosen
        ]

    def new_oco(
        self,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Amount,
        price: Amount,
        stop_price: Amount,
        now: int,
        *,
        is_isolated: bool | str = False,
        list_client_order_id: str | None = None,
        limit_client_order_id: str | None = None,
        limit_iceberg_qty: Amount | None = None,
        stop_client_order_id: str | None = None,
        stop_limit_price: Amount | None = None,
        stop_iceberg_qty: Amount | None = None,
        stop_limit_time_in_force: str | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/order/oco``: a LIMIT_MAKER leg at ``price`` and a STOP_LOSS
        (STOP_LOSS_LIMIT with ``stop_limit_price``) leg at ``stop_price``, one lock for both.

        SELL needs ``price > current > stop_price``, BUY the reverse (``-1013`` otherwise).
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OCO
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        side_v = _enum(side, _SIDES, -1117, "Invalid side.")
        if stop_limit_price is None and stop_limit_time_in_force is not None:
            raise _not_required("stopLimitTimeInForce")
        stop_type = _STOP_LOSS if stop_limit_price is None else _STOP_LOSS_LIMIT
        stop_spec = self._parse_spec(
            sym, side_v, stop_type, stop_limit_time_in_force, quantity, None, stop_limit_price,
            stop_price, stop_iceberg_qty, stop_client_order_id, "",
            names={"price": "stopLimitPrice", "timeInForce": "stopLimitTimeInForce",
                   "icebergQty": "stopIcebergQty", "newClientOrderId": "stopClientOrderId"},
        )  # fmt: skip
        limit_spec = self._parse_spec(
            sym, side_v, _LIMIT_MAKER, None, quantity, None, price, None, limit_iceberg_qty,
            limit_client_order_id, "",
            names={"icebergQty": "limitIcebergQty", "newClientOrderId": "limitClientOrderId"},
        )  # fmt: skip
        list_client_id = self._list_client_id(acct, wallet, sym, list_client_order_id)
        self._check_oco_prices(sym, side_v, limit_spec, stop_spec)
        return self._place_list(
            acct, wallet, sym, "OCO", list_client_id, [stop_spec, limit_spec], [], now,
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel,
        )  # fmt: skip

    def new_oto(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        list_client_order_id: str | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
        working_type: str | None = None,
        working_side: str | None = None,
        working_client_order_id: str | None = None,
        working_price: Amount | None = None,
        working_quantity: Amount | None = None,
        working_iceberg_qty: Amount | None = None,
        working_time_in_force: str | None = None,
        pending_type: str | None = None,
        pending_side: str | None = None,
        pending_client_order_id: str | None = None,
        pending_price: Amount | None = None,
        pending_stop_price: Amount | None = None,
        pending_quantity: Amount | None = None,
        pending_iceberg_qty: Amount | None = None,
        pending_time_in_force: str | None = None,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/order/oto``: a LIMIT/LIMIT_MAKER working order whose full fill
        places the pending order (any type but MARKET by quote quantity).

        Only the working order is funded at placement; the pending one when it is placed.
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OTO
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        working = self._working_spec(
            sym, working_type, working_side, working_time_in_force, working_quantity,
            working_price, working_iceberg_qty, working_client_order_id,
        )  # fmt: skip
        if pending_type is None:
            raise _mandatory("pendingType")
        if pending_side is None:
            raise _mandatory("pendingSide")
        pending = self._parse_spec(
            sym, pending_side, pending_type, pending_time_in_force, pending_quantity, None,
            pending_price, pending_stop_price, pending_iceberg_qty, pending_client_order_id,
            "pending",
        )  # fmt: skip
        list_client_id = self._list_client_id(acct, wallet, sym, list_client_order_id)
        return self._place_list(
            acct, wallet, sym, "OTO", list_client_id, [working], [pending], now,
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel,
        )  # fmt: skip

    def new_otoco(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        list_client_order_id: str | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
        working_type: str | None = None,
        working_side: str | None = None,
        working_client_order_id: str | None = None,
        working_price: Amount | None = None,
        working_quantity: Amount | None = None,
        working_iceberg_qty: Amount | None = None,
        working_time_in_force: str | None = None,
        pending_side: str | None = None,
        pending_quantity: Amount | None = None,
        pending_above_type: str | None = None,
        pending_above_client_order_id: str | None = None,
        pending_above_price: Amount | None = None,
        pending_above_stop_price: Amount | None = None,
        pending_above_iceberg_qty: Amount | None = None,
        pending_above_time_in_force: str | None = None,
        pending_below_type: str | None = None,
        pending_below_client_order_id: str | None = None,
        pending_below_price: Amount | None = None,
        pending_below_stop_price: Amount | None = None,
        pending_below_iceberg_qty: Amount | None = None,
        pending_below_time_in_force: str | None = None,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/order/otoco``: a working order whose full fill places an OCO of
        a pending-above and (optionally) a pending-below order.

        A SELL pair takes LIMIT_MAKER/TAKE_PROFIT[_LIMIT] above and STOP_LOSS[_LIMIT] below, a BUY
        pair the reverse (``-1116`` otherwise); the above trigger price must exceed the below one
        (``-1013``).
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OTOCO
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        working = self._working_spec(
            sym, working_type, working_side, working_time_in_force, working_quantity,
            working_price, working_iceberg_qty, working_client_order_id,
        )  # fmt: skip
        if pending_side is None:
            raise _mandatory("pendingSide")
        if pending_above_type is None:
            raise _mandatory("pendingAboveType")
        side_v = _enum(pending_side, _SIDES, -1117, "Invalid side.")
        above = self._parse_spec(
            sym, side_v, pending_above_type, pending_above_time_in_force, pending_quantity, None,
            pending_above_price, pending_above_stop_price, pending_above_iceberg_qty,
            pending_above_client_order_id, "pendingAbove",
            names={"quantity": "pendingQuantity"},
        )  # fmt: skip
        pendings = [above]
        if pending_below_type is not None:
            below = self._parse_spec(
                sym, side_v, pending_below_type, pending_below_time_in_force, pending_quantity,
                None, pending_below_price, pending_below_stop_price, pending_below_iceberg_qty,
                pending_below_client_order_id, "pendingBelow",
                names={"quantity": "pendingQuantity"},
            )  # fmt: skip
            pendings.append(below)
        self._check_otoco_legs(side_v, pendings)
        list_client_id = self._list_client_id(acct, wallet, sym, list_client_order_id)
        return self._place_list(
            acct, wallet, sym, "OTOCO", list_client_id, [working], pendings, now,
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel,
        )  # fmt: skip

    def cancel_order_list(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        order_list_id: int | str | None = None,
        list_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """``DELETE /sapi/v1/margin/orderList``: cancel an unresolved list → the list response.

        ``-2011 Unknown order list sent.`` when no unresolved list matches.
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-OCO
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        lid = _opt_int(order_list_id, "orderListId")
        _one_of(("listClientOrderId", list_client_order_id), ("orderListId", lid))
        # Validated and accepted; the list keeps its own listClientOrderId in the answer.
        self._client_id(new_client_order_id, "newClientOrderId")
        lst = self._find_list(acct, wallet, sym.name, lid, list_client_order_id)
        if lst is None or lst.phase == _PHASE_DONE:
            raise LedgerError(-2011, "Unknown order list sent.")
        self._cancel_list(acct, lst, now)
        response = self._list_json(lst, now, reports="cancel")
        self._flush(now)
        return response

    def get_order_list(
        self,
        account_id: str,
        *,
        is_isolated: bool | str = False,
        symbol: str | None = None,
        order_list_id: int | str | None = None,
        orig_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/orderList``: one list (``-2013 Order list does not exist.``).

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-OCO
        """
        acct = self._account(account_id)
        wallet, name = self._list_scope(acct, is_isolated, symbol)
        lid = _opt_int(order_list_id, "orderListId")
        _one_of(("origClientOrderId", orig_client_order_id), ("orderListId", lid))
        lst = self._find_list(acct, wallet, name, lid, orig_client_order_id)
        if lst is None:
            raise LedgerError(-2013, "Order list does not exist.")
        return self._list_json(lst, lst.time, reports=None)

    def open_order_lists(
        self, account_id: str, *, is_isolated: bool | str = False, symbol: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/openOrderList``: unresolved lists, oldest first.

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-OCO
        """
        acct = self._account(account_id)
        wallet, name = self._list_scope(acct, is_isolated, symbol)
        return [
            self._list_json(lst, lst.time, reports=None)
            for lst in self._scope_lists(acct, wallet, name)
            if lst.phase != _PHASE_DONE
        ]

    def all_order_lists(
        self,
        account_id: str,
        *,
        is_isolated: bool | str = False,
        symbol: str | None = None,
        from_id: int | str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/allOrderList``: lists, oldest first (``from_id`` on, or the most
        recent ``limit``, max 1000).

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-all-OCO
        """
        acct = self._account(account_id)
        wallet, name = self._list_scope(acct, is_isolated, symbol)
        fid = _opt_int(from_id, "fromId")
        size = _limit(limit, 1000)
        lists = [
            lst
            for lst in self._scope_lists(acct, wallet, name)
            if (fid is None or lst.list_id >= fid) and _in_range(lst.time, start_time, end_time)
        ]
        chosen = lists[:size] if fid is not None else lists[-size:]
        return [self._list_json(lst, lst.time, reports=None) for lst in chosen]

    # -- risk and account snapshots -----------------------------------------------------------

    def margin_level(self, account_id: str, *, symbol: str | None = None) -> Decimal:
        """The margin level of the cross account (or the isolated one of ``symbol``); 999 when
        there is no debt."""
        return self._level(self._margin_wallet(self._account(account_id), symbol))

    def margin_level_status(self, account_id: str, *, symbol: str | None = None) -> str:
        """``EXCESSIVE`` / ``NORMAL`` / ``MARGIN_CALL`` / ``PRE_LIQUIDATION`` /
        ``FORCE_LIQUIDATION`` of the cross account (or the isolated one of ``symbol``)."""
        wallet = self._margin_wallet(self._account(account_id), symbol)
        return self._risk(wallet).status(self._level(wallet))

    def cross_account(self, account_id: str) -> dict[str, Any]:
        """``GET /sapi/v1/margin/account``: the cross margin account, every asset listed.

        https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Account-Details
        """
        acct = self._account(account_id)
        wallet = acct.cross
        assets_btc, liabilities_btc = self._values(wallet)
        level = _level_of(assets_btc, liabilities_btc)
        body: dict[str, Any] = {
            "created": True,
            "borrowEnabled": True,
            "marginLevel": _fmt(level),
            "collateralMarginLevel": _fmt(level),
            "totalAssetOfBtc": _fmt(assets_btc),
            "totalLiabilityOfBtc": _fmt(liabilities_btc),
            "totalNetAssetOfBtc": _fmt(assets_btc - liabilities_btc),
        }
        if self._usdt is not None:
            body["TotalCollateralValueInUSDT"] = _fmt(assets_btc / self._rate(self._usdt))
            body["totalOpenOrderLossInUsdt"] = _ZERO8
        body.update(
            tradeEnabled=True,
            transferEnabled=True,
            transferInEnabled=True,
            transferOutEnabled=True,
            accountType="MARGIN_1",
            marginLevelStatus=self._cross_risk.status(level),
            userAssets=[self._user_asset(wallet, asset) for asset in self._assets],
        )
        return body

    def isolated_account(
        self, account_id: str, symbols: str | Sequence[str] | None = None
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/isolated/account``: the isolated accounts (all, or the listed
        ``symbols``, comma-separated or a sequence, max 5; totals only without ``symbols``).

        https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Account-Info
        """
        acct = self._account(account_id)
        wanted: list[str] | None = None
        if symbols is not None:
            wanted = symbols.split(",") if isinstance(symbols, str) else list(symbols)
            if not 0 < len(wanted) <= 5:
                raise LedgerError(-1130, "Data sent for parameter 'symbols' is not valid.")
        wallets = [w for s, w in acct.isolated.items() if wanted is None or s in wanted]
        body: dict[str, Any] = {"assets": [self._isolated_json(w) for w in wallets]}
        if wanted is None:
            total_assets = total_liabilities = _ZERO
            for wallet in wallets:
                assets_btc, liabilities_btc = self._values(wallet)
                total_assets += assets_btc
                total_liabilities += liabilities_btc
            body["totalAssetOfBtc"] = _fmt(total_assets)
            body["totalLiabilityOfBtc"] = _fmt(total_liabilities)
            body["totalNetAssetOfBtc"] = _fmt(total_assets - total_liabilities)
        return body

    # -- outbox and invariants ----------------------------------------------------------------

    def drain_events(self) -> list[LedgerEvent]:
        """Take every event emitted since the last call, in emission order."""
        events, self._outbox = self._outbox, []
        return events

    def check_invariants(self) -> None:
        """Raise :class:`InvariantViolation` unless the books are consistent.

        Checked: no negative free/locked/borrowed/interest, spot wallets without debt or locks;
        every wallet's locked amount equals what its open orders reserve (and each reservation
        equals its orders' need); per asset, holdings minus liabilities equal deposits + venue
        trade flow - commissions - interest charged; borrowed totals equal the lent counter and
        the inventory used; open client order ids are unique; order quantities and statuses
        agree with the order book; the recorded cross status equals the computed one.
        """
        holdings: dict[str, Decimal] = {}
        borrowed: dict[str, Decimal] = {}
        interest: dict[str, Decimal] = {}
        for acct in self._accounts.values():
            reserved: dict[tuple[str, str], Decimal] = {}
            seen_res: set[int] = set()
            open_ids: set[tuple[str, str, str]] = set()
            for order in acct.orders.values():
                self._check_order(acct, order, open_ids)
                res = order.res
                if res is not None and order.is_live and id(res) not in seen_res:
                    seen_res.add(id(res))
                    key = (res.wallet.scope, res.asset)
                    reserved[key] = reserved.get(key, _ZERO) + res.amount
                    if res.amount != self._res_need(res):
                        _fail(f"{acct.account_id}: reservation {res.amount} != need of orders")
            for wallet in (acct.spot, *acct.margin_wallets()):
                for asset, bal in wallet.balances.items():
                    where = f"{acct.account_id}/{wallet.scope}/{asset}"
                    if min(bal.free, bal.locked, bal.borrowed, bal.interest) < 0:
                        _fail(f"{where}: negative balance {bal!r}")
                    if wallet.kind == _SPOT and (bal.locked or bal.borrowed or bal.interest):
                        _fail(f"{where}: spot wallet with locks or debt")
                    if bal.locked != reserved.pop((wallet.scope, asset), _ZERO):
                        _fail(f"{where}: locked {bal.locked} != reserved by open orders")
                    _add(holdings, asset, bal.free + bal.locked)
                    _add(borrowed, asset, bal.borrowed)
                    _add(interest, asset, bal.interest)
                    if bal.borrowed > 0 and asset not in wallet.anchors:
                        _fail(f"{where}: loan without an interest anchor")
            if any(reserved.values()):
                _fail(f"{acct.account_id}: reservations on unknown balances {reserved}")
            status = self._cross_risk.status(self._level(acct.cross))
            if status != acct.cross_status:
                _fail(f"{acct.account_id}: cross status {acct.cross_status} != {status}")
        for asset in self._assets:
            expected = (
                self._deposits.get(asset, _ZERO)
                + self._trade_net.get(asset, _ZERO)
                - self._fees.get(asset, _ZERO)
                - self._interest_charged.get(asset, _ZERO)
            )
            net = holdings.get(asset, _ZERO) - borrowed.get(asset, _ZERO)
            net -= interest.get(asset, _ZERO)
            if net != expected:
                _fail(f"{asset}: holdings - liabilities {net} != tracked flows {expected}")
            if borrowed.get(asset, _ZERO) != self._lent.get(asset, _ZERO):
                _fail(f"{asset}: borrowed total != lent counter")
            owed = self._interest_charged.get(asset, _ZERO) - self._interest_paid.get(asset, _ZERO)
            if interest.get(asset, _ZERO) != owed:
                _fail(f"{asset}: interest total != charged - paid")
            if asset in self._inventory_initial:
                used = self._inventory_initial[asset] - self._inventory[asset]
                if used != borrowed.get(asset, _ZERO) or self._inventory[asset] < 0:
                    _fail(f"{asset}: inventory used {used} != borrowed")
        for name, book in self._book.items():
            for order in book.values():
                if order.symbol != name or order.status not in (_NEW, _PARTIALLY_FILLED):
                    _fail(f"order {order.order_id} in the {name} book with {order.status}")
        if self._touched or self._dirty or self._all_dirty or self._op_trades:
            _fail("per-operation scratch state left behind")

    # =========================================================================================
    # Internals. Nothing below is API.

    # -- lookups -------------------------------------------------------------------------------

    def _account(self, account_id: str) -> _Account:
        acct = self._accounts.get(account_id)
        if acct is None:
            raise LedgerError(-3003, "Margin account does not exist.")
        return acct

    def _order_symbol(self, symbol: str) -> _Symbol:
        sym = self._symbols.get(symbol)
        if sym is None:
            raise LedgerError(-1121, "Invalid symbol.")
        return sym

    def _margin_pair(self, symbol: str) -> _Symbol:
        sym = self._symbols.get(symbol)
        if sym is None:
            raise LedgerError(-3028, "Not a valid margin pair.")
        return sym

    def _known_asset(self, asset: str) -> None:
        if asset not in self._graph:
            raise LedgerError(-3027, "Not a valid margin asset.")

    def _config_asset(self, asset: str) -> str:
        if asset not in self._graph:
            raise ValueError(f"unknown asset {asset}")
        return asset

    def _new_isolated(self, symbol: str) -> _Wallet:
        return _Wallet(_ISOLATED, symbol, self._symbols[symbol].assets)

    def _margin_wallet(self, acct: _Account, symbol: str | None) -> _Wallet:
        """The cross wallet, or the existing isolated wallet of ``symbol`` (``-3003``)."""
        if symbol is None:
            return acct.cross
        self._margin_pair(symbol)
        wallet = acct.isolated.get(symbol)
        if wallet is None:
            raise LedgerError(-3003, "Margin account does not exist.")
        return wallet

    def _trading_wallet(self, acct: _Account, sym: _Symbol, isolated: bool) -> _Wallet:
        if not isolated:
            return acct.cross
        wallet = acct.isolated.get(sym.name)
        if wallet is None:
            raise LedgerError(-3003, "Margin account does not exist.")
        return wallet

    def _order_scope(
        self, account_id: str, symbol: str, is_isolated: bool | str
    ) -> tuple[_Account, _Symbol, _Wallet]:
        """What an order endpoint works on: the account, the symbol and the cross wallet, or
        the symbol's isolated one."""
        acct = self._account(account_id)
        sym = self._order_symbol(symbol)
        return acct, sym, self._trading_wallet(acct, sym, _flag(is_isolated, "isIsolated"))

    def _loan_wallet(
        self, acct: _Account, isolated: bool, symbol: str | None, asset: str
    ) -> _Wallet:
        self._known_asset(asset)
        if isolated:
            if symbol is None:
                raise _mandatory("symbol")
            wallet = self._margin_wallet(acct, symbol)
            if asset not in wallet.allowed:
                raise LedgerError(-3027, "Not a valid margin asset.")
            return wallet
        return acct.cross

    def _transfer_wallet(self, acct: _Account, kind: str, symbol: str | None) -> _Wallet:
        if kind == _SPOT:
            return acct.spot
        if kind == _CROSS:
            return acct.cross
        assert symbol is not None
        return self._margin_wallet(acct, symbol)

    def _list_scope(
        self, acct: _Account, is_isolated: bool | str, symbol: str | None
    ) -> tuple[_Wallet, str | None]:
        if _flag(is_isolated, "isIsolated"):
            if symbol is None:
                raise _mandatory("symbol")
            return self._trading_wallet(acct, self._order_symbol(symbol), True), symbol
        if symbol is not None:
            self._order_symbol(symbol)
        return acct.cross, symbol

    def _scope_orders(self, acct: _Account, wallet: _Wallet, symbol: str) -> list[_Order]:
        return [o for o in acct.orders.values() if o.scope == wallet.scope and o.symbol == symbol]

    def _live_orders(self, acct: _Account, wallet: _Wallet, symbol: str) -> list[_Order]:
        return [o for o in acct.live.values() if o.scope == wallet.scope and o.symbol == symbol]

    def _scope_lists(self, acct: _Account, wallet: _Wallet, symbol: str | None) -> list[_OrderList]:
        """The wallet's order lists (of ``symbol`` only, when given), oldest first."""
        return [
            lst
            for lst in acct.lists.values()
            if lst.scope == wallet.scope and (symbol is None or lst.symbol == symbol)
        ]

    def _find_order(
        self,
        acct: _Account,
        wallet: _Wallet,
        sym: _Symbol,
        order_id: int | None,
        client_id: str | None,
        *,
        live_only: bool,
    ) -> _Order | None:
        """Binance's lookup: by ``orderId`` (then its client id must match, if given), else the
        most recent order with that client id."""
        if order_id is not None:
            order = acct.orders.get(order_id)
            if order is None or order.scope != wallet.scope or order.symbol != sym.name:
                return None
            if client_id is not None and order.client_order_id != client_id:
                return None
            return order if order.is_live or not live_only else None
        candidates = acct.live if live_only else acct.orders
        for order in reversed(candidates.values()):
            if (
                order.scope == wallet.scope
                and order.symbol == sym.name
                and order.client_order_id == client_id
                and (order.is_live or not live_only)
            ):
                return order
        return None

    def _find_list(
        self,
        acct: _Account,
        wallet: _Wallet,
        symbol: str | None,
        list_id: int | None,
        client_id: str | None,
    ) -> _OrderList | None:
        for lst in reversed(acct.lists.values()):
            if lst.scope != wallet.scope or (symbol is not None and lst.symbol != symbol):
                continue
            if list_id is not None and lst.list_id != list_id:
                continue
            if client_id is not None and lst.client_id != client_id:
                continue
            return lst
        return None

    # -- ids ------------------------------------------------------------------------------------

    def _gen_id(self) -> str:
        """A Binance-looking 22-character client id from the seeded generator."""
        return "".join(self._rng.choices(_ID_ALPHABET, k=22))

    def _client_id(self, value: str | None, name: str) -> str:
        if value is None:
            return self._gen_id()
        if _CLIENT_ID_RE.fullmatch(value) is None:
            raise _illegal(name, "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")
        return value

    def _tran_id(self) -> int:
        self._next_tran_id += 1
        return self._next_tran_id - 1

    # -- valuation and risk -------------------------------------------------------------------

    def _rate_or_none(self, asset: str) -> Decimal | None:
        """Value of one ``asset`` in BTC through the shortest chain of symbols (cached per
        price set)."""
        cached = self._rates.get(asset)
        if cached is not None:
            return cached
        frontier: list[tuple[str, Decimal]] = [(asset, Decimal(1))]
        seen = {asset}
        while frontier:
            nxt: list[tuple[str, Decimal]] = []
            for current, factor in frontier:
                if current == self._btc:
                    self._rates[asset] = factor
                    return factor
                for other, sym, is_base in self._graph[current]:
                    if other not in seen:
                        seen.add(other)
                        step = sym.price if is_base else 1 / sym.price
                        nxt.append((other, factor * step))
            frontier = nxt
        return None

    def _rate(self, asset: str) -> Decimal:
        rate = self._rate_or_none(asset)
        assert rate is not None  # checked for every asset at construction
        return rate

    def _values(self, wallet: _Wallet) -> tuple[Decimal, Decimal]:
        """(total asset value, total liability value) of a margin wallet, in BTC."""
        assets = liabilities = _ZERO
        for asset, bal in wallet.balances.items():
            total = bal.free + bal.locked
            owed = bal.borrowed + bal.interest
            if total or owed:
                rate = self._rate(asset)
                assets += total * rate
                liabilities += owed * rate
        return assets, liabilities

    def _level(self, wallet: _Wallet) -> Decimal:
        return _level_of(*self._values(wallet))

    def _risk(self, wallet: _Wallet) -> RiskConfig:
        return self._cross_risk if wallet.kind == _CROSS else self._isolated_risk

    def _risk_max_borrow(self, wallet: _Wallet, asset: str) -> Decimal:
        """The most of ``asset`` a borrow may add while the level stays >= the initial level.

        Borrowing x adds x·r to both assets and liabilities: (A + xr) / (L + xr) >= I
        ⇔ x <= (A - I·L) / ((I - 1)·r).
        """
        initial = self._risk(wallet).initial_level
        assets, liabilities = self._values(wallet)
        room = (assets - initial * liabilities) / ((initial - 1) * self._rate(asset))
        return max(_ZERO, room.quantize(_Q8, ROUND_DOWN))

    def _max_transferable(self, wallet: _Wallet, asset: str) -> Decimal:
        """Free balance, capped so that (A - x·r) / L >= initial level when there is debt."""
        free = _free(wallet, asset)
        assets, liabilities = self._values(wallet)
        if liabilities == 0:
            return free
        room = (assets - self._risk(wallet).initial_level * liabilities) / self._rate(asset)
        return max(_ZERO, min(free, room.quantize(_Q8, ROUND_DOWN)))

    def _borrow_error(self, wallet: _Wallet, asset: str, amount: Decimal) -> LedgerError | None:
        if amount > self._risk_max_borrow(wallet, asset):
            return LedgerError(-3006, "Your borrow amount has exceed maximum borrow amount.")
        remaining = self._inventory.get(asset)
        if remaining is not None and amount > remaining:
            return LedgerError(-3045, "The system does not have enough asset now.")
        return None

    def _funding_error(
        self, wallet: _Wallet, asset: str, need: Decimal, effect: str
    ) -> LedgerError | None:
        free = _free(wallet, asset)
        if need <= free:
            return None
        if effect in _BORROWING:
            return self._borrow_error(wallet, asset, need - free)
        return LedgerError(-2010, _INSUFFICIENT)

    def _check_funding(self, wallet: _Wallet, asset: str, need: Decimal, effect: str) -> None:
        err = self._funding_error(wallet, asset, need, effect)
        if err is not None:
            raise err

    # -- loans ----------------------------------------------------------------------------------

    def _borrow_now(
        self, acct: _Account, wallet: _Wallet, asset: str, amount: Decimal, now: int, *, auto: bool
    ) -> int:
        bal = wallet.bal(asset)
        if bal.borrowed == 0:
            wallet.anchors[asset] = now
        bal.borrowed += amount
        bal.free += amount
        _add(self._lent, asset, amount)
        if asset in self._inventory:
            self._inventory[asset] -= amount
        return self._record_loan(acct, wallet, "BORROW", asset, amount, _ZERO, now, auto)

    def _repay_now(
        self, acct: _Account, wallet: _Wallet, asset: str, amount: Decimal, now: int, *, auto: bool
    ) -> int:
        """Repay ``amount`` (<= free, <= owed): interest first, then principal."""
        bal = wallet.bal(asset)
        interest = min(amount, bal.interest)
        principal = amount - interest
        bal.free -= amount
        bal.interest -= interest
        bal.borrowed -= principal
        if bal.borrowed == 0:
            wallet.anchors.pop(asset, None)
        _add(self._lent, asset, -principal)
        _add(self._interest_paid, asset, interest)
        if asset in self._inventory:
            self._inventory[asset] += principal
        return self._record_loan(acct, wallet, "REPAY", asset, principal, interest, now, auto)

    def _record_loan(
        self,
        acct: _Account,
        wallet: _Wallet,
        kind: str,
        asset: str,
        principal: Decimal,
        interest: Decimal,
        now: int,
        auto: bool,
    ) -> int:
        """Record a ``BORROW``/``REPAY`` that changed the balances: history row, liability
        event, position; returns its ``tranId``."""
        tran_id = self._tran_id()
        acct.loans.append(
            _LoanRecord(kind, tran_id, wallet.scope, asset, principal, interest, now, auto)
        )
        self._liability_event(acct, wallet, asset, kind, principal, interest, now)
        self._touch(acct, wallet, asset)
        return tran_id

    def _auto_repay(
        self, acct: _Account, wallet: _Wallet, asset: str, cap: Decimal, now: int
    ) -> None:
        """Repay up to ``cap`` of ``asset``'s liability from its free balance."""
        bal = wallet.bal(asset)
        amount = min(cap, bal.borrowed + bal.interest, bal.free)
        if amount > 0:
            self._repay_now(acct, wallet, asset, amount, now, auto=True)

    # -- order parsing and checks ---------------------------------------------------------------

    def _parse_spec(
        self,
        sym: _Symbol,
        side: str,
        type_: str,
        time_in_force: str | None,
        quantity: Amount | None,
        quote_order_qty: Amount | None,
        price: Amount | None,
        stop_price: Amount | None,
        iceberg_qty: Amount | None,
        client_id: str | None,
        prefix: str,
        *,
        names: Mapping[str, str] | None = None,
    ) -> _Spec:
        """Parse one order's parameters with Binance's mandatory/not-required rules per type.

        ``prefix`` names the parameters in errors (``"pending"`` → ``pendingPrice``); ``names``
        overrides single names (the OCO's ``stopLimitPrice``...).
        """

        def name(base: str) -> str:
            if names is not None and base in names:
                return names[base]
            if not prefix:
                return base
            if base == "newClientOrderId":
                return prefix + "ClientOrderId"
            return prefix + base[0].upper() + base[1:]

        side_v = _enum(side, _SIDES, -1117, "Invalid side.")
        type_v = _enum(type_, _TYPE_RULES.keys(), -1116, "Invalid orderType.")
        tif = None
        if time_in_force is not None:
            tif = _enum(time_in_force, _TIFS, -1115, "Invalid timeInForce.")
        qty = _opt_amount(quantity, name("quantity"))
        quote_qty = _opt_amount(quote_order_qty, "quoteOrderQty")
        px = _opt_amount(price, name("price"))
        stop = _opt_amount(stop_price, name("stopPrice"))
        iceberg = _opt_amount(iceberg_qty, name("icebergQty"))
        needs_tif, needs_price, needs_stop = _TYPE_RULES[type_v]
        if type_v == _MARKET:
            _one_of(("quantity", qty), ("quoteOrderQty", quote_qty))
            if qty is not None and quote_qty is not None:
                raise LedgerError(-1128, "Combination of optional parameters invalid.")
        else:
            if quote_qty is not None:
                raise _not_required("quoteOrderQty")
            if qty is None:
                raise _mandatory(name("quantity"))
        for needed, value, param in (
            (needs_tif, tif, "timeInForce"),
            (needs_price, px, "price"),
            (needs_stop, stop, "stopPrice"),
        ):
            if needed and value is None:
                raise _mandatory(name(param))
            if not needed and value is not None:
                raise _not_required(name(param))
        if iceberg is not None and type_v not in _ICEBERG_TYPES:
            raise _not_required(name("icebergQty"))
        if qty is not None and (qty <= 0 or qty % sym.step_size):
            raise LedgerError(-1013, "Filter failure: LOT_SIZE")
        for value in (px, stop):
            if value is not None and (value <= 0 or value % sym.tick_size):
                raise LedgerError(-1013, "Filter failure: PRICE_FILTER")
        return _Spec(
            side=side_v,
            type=type_v,
            tif=tif if tif is not None else _GTC,
            qty=qty if qty is not None else _ZERO,
            price=px,
            stop=stop,
            quote_qty=quote_qty,
            iceberg=iceberg,
            client_id=self._client_id(client_id, name("newClientOrderId")),
        )

    def _working_spec(
        self,
        sym: _Symbol,
        working_type: str | None,
        working_side: str | None,
        time_in_force: str | None,
        quantity: Amount | None,
        price: Amount | None,
        iceberg: Amount | None,
        client_id: str | None,
    ) -> _Spec:
        if working_type is None:
            raise _mandatory("workingType")
        if working_side is None:
            raise _mandatory("workingSide")
        if working_type not in (_LIMIT, _LIMIT_MAKER):
            raise LedgerError(-1116, "Invalid orderType.")
        spec = self._parse_spec(
            sym, working_side, working_type, time_in_force, quantity, None, price, None, iceberg,
            client_id, "working",
        )  # fmt: skip
        self._check_placement(sym, spec)
        return spec

    def _check_placement(self, sym: _Symbol, spec: _Spec) -> None:
        """Checks that depend on the current price: NOTIONAL, LIMIT_MAKER, stop triggers."""
        if spec.type == _MARKET:
            notional = spec.quote_qty if spec.quote_qty is not None else spec.qty * sym.price
        else:
            ref = spec.price if spec.price is not None else spec.stop
            assert ref is not None  # every non-MARKET type has a price or a stop price
            notional = spec.qty * ref
        if notional < sym.min_notional:
            raise LedgerError(-1013, "Filter failure: NOTIONAL")
        if spec.type == _LIMIT_MAKER:
            assert spec.price is not None
            if _crosses(spec.side, spec.price, sym.price):
                raise LedgerError(-2010, "Order would immediately match and take.")
        if spec.type in _STOP_TYPES:
            assert spec.stop is not None
            if _stop_hit(spec.type, spec.side, spec.stop, sym.price):
                raise LedgerError(-2010, "Order would trigger immediately.")

    def _check_oco_prices(self, sym: _Symbol, side: str, limit: _Spec, stop: _Spec) -> None:
        assert limit.price is not None and stop.stop is not None
        if side == _SELL:
            ok = limit.price > sym.price > stop.stop
        else:
            ok = limit.price < sym.price < stop.stop
        if not ok:
            raise LedgerError(
                -1013, "The relationship of the prices for the orders is not correct."
            )
        for spec in (limit, stop):
            self._check_placement(sym, spec)

    def _check_otoco_legs(self, side: str, legs: list[_Spec]) -> None:
        upper = {_LIMIT_MAKER, _TAKE_PROFIT, _TAKE_PROFIT_LIMIT}
        lower = {_STOP_LOSS, _STOP_LOSS_LIMIT}
        above_ok, below_ok = (upper, lower) if side == _SELL else (lower, upper)
        if legs[0].type not in above_ok or (len(legs) > 1 and legs[1].type not in below_ok):
            raise LedgerError(-1116, "Invalid orderType.")
        for leg in legs:
            if leg.tif != _GTC:
                # Pending OCO legs rest until triggered: IOC/FOK would expire them at once.
                raise LedgerError(-1115, "Invalid timeInForce.")
        if len(legs) > 1 and _trigger_price(legs[0]) <= _trigger_price(legs[1]):
            raise LedgerError(
                -1013, "The relationship of the prices for the orders is not correct."
            )

    def _check_client_ids(
        self, acct: _Account, wallet: _Wallet, sym: _Symbol, client_ids: list[str]
    ) -> None:
        """``-2010 Duplicate order sent.`` for a client id already open (or repeated)."""
        if len(set(client_ids)) != len(client_ids):
            raise LedgerError(-2010, "Duplicate order sent.")
        wanted = set(client_ids)
        for order in acct.live.values():
            if (
                order.scope == wallet.scope
                and order.symbol == sym.name
                and order.client_order_id in wanted
            ):
                raise LedgerError(-2010, "Duplicate order sent.")

    def _list_client_id(
        self, acct: _Account, wallet: _Wallet, sym: _Symbol, value: str | None
    ) -> str:
        """``listClientOrderId`` (generated when absent); ``-2010`` if an unresolved list of the
        symbol already has it."""
        client_id = self._client_id(value, "listClientOrderId")
        for lst in acct.lists.values():
            if (
                lst.phase != _PHASE_DONE
                and lst.scope == wallet.scope
                and lst.symbol == sym.name
                and lst.client_id == client_id
            ):
                raise LedgerError(-2010, "Duplicate order sent.")
        return client_id

    def _market_cost(self, sym: _Symbol, spec: _Spec) -> tuple[str, Decimal]:
        """What a MARKET order would spend right now: (asset, amount); fixes ``spec.qty`` for
        a quote-quantity order (rounded down to the step size)."""
        if spec.quote_qty is not None:
            spec.qty = (spec.quote_qty / sym.price // sym.step_size) * sym.step_size
            if spec.qty <= 0:
                raise LedgerError(-1013, "Filter failure: LOT_SIZE")
        qty = spec.qty if sym.liquidity is None else min(spec.qty, sym.liquidity)
        if spec.side == _BUY:
            return sym.quote, qty * sym.price
        return sym.base, qty

    # -- order lifecycle ------------------------------------------------------------------------

    def _make_order(
        self,
        acct: _Account,
        wallet: _Wallet,
        sym: _Symbol,
        spec: _Spec,
        now: int,
        effect: str,
        auto_repay: bool,
        stp: str,
        *,
        list_id: int = -1,
        role: str = _ROLE_NONE,
    ) -> _Order:
        order = _Order(
            account_id=acct.account_id,
            scope=wallet.scope,
            symbol=sym.name,
            order_id=self._next_order_id,
            spec=spec,
            time=now,
            list_id=list_id,
            role=role,
            side_effect=effect,
            auto_repay_at_cancel=auto_repay,
            stp=stp,
        )
        self._next_order_id += 1
        acct.orders[order.order_id] = order
        acct.live[order.order_id] = order
        return order

    def _open(self, order: _Order, now: int) -> None:
        """Put a NEW order to work: into the book, flags for the matching loop. No funds, no
        events (callers fund, then report)."""
        order.status = _NEW
        order.update_time = now
        self._book[order.symbol][order.order_id] = order
        sym = self._symbols[order.symbol]
        if order.type == _MARKET:
            order.working_time = now
            order.taker_due = True
        elif order.type in _STOP_TYPES:
            order.on_book = False
        else:
            order.working_time = now
            order.on_book = order.tif == _GTC
            if order.type == _LIMIT:
                assert order.price is not None
                order.taker_due = order.tif != _GTC or _crosses(order.side, order.price, sym.price)

    def _fund(
        self, acct: _Account, res: _Reservation, effect: str, now: int, owner: _Order
    ) -> None:
        """Lock what ``res``'s orders need, borrowing the shortfall when ``effect`` allows
        (callers checked :meth:`_funding_error` first)."""
        need = self._res_need(res)
        delta = need - res.amount
        if delta <= 0:
            return
        bal = res.wallet.bal(res.asset)
        if bal.free < delta:
            short = delta - bal.free
            self._borrow_now(acct, res.wallet, res.asset, short, now, auto=True)
            res.borrowed += short
            owner.borrowed += short
        bal.free -= delta
        bal.locked += delta
        res.amount = need
        self._touch(acct, res.wallet, res.asset)

    def _rebalance(self, res: _Reservation) -> Decimal:
        """Release what ``res`` holds beyond its live orders' need; returns the amount freed."""
        need = self._res_need(res)
        surplus = res.amount - need
        if surplus:
            bal = res.wallet.bal(res.asset)
            bal.locked -= surplus
            bal.free += surplus
            res.amount = need
        return surplus

    def _res_need(self, res: _Reservation) -> Decimal:
        return max((_need(o) for o in res.holders if o.is_live), default=_ZERO)

    def _place_list(
        self,
        acct: _Account,
        wallet: _Wallet,
        sym: _Symbol,
        contingency: str,
        list_client_id: str,
        first: list[_Spec],
        pending: list[_Spec],
        now: int,
        new_order_resp_type: str | None,
        side_effect_type: str | None,
        self_trade_prevention_mode: str | None,
        auto_repay_at_cancel: bool | str,
    ) -> dict[str, Any]:
        """Validate funding and place an OCO (``first`` = both legs), OTO or OTOCO (``first`` =
        the working order, ``pending`` = what its fill places)."""
        # The response type is validated only: list answers always carry orderReports (see the
        # module docstring).
        _, effect, stp, auto_repay = _order_options(
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel, "ACK",
        )  # fmt: skip
        self._check_client_ids(acct, wallet, sym, [s.client_id for s in first + pending])
        asset = _reserve_asset(sym, first[0].side)
        need = max(_spec_need(s) for s in first)
        self._check_funding(wallet, asset, need, effect)
        # Validated: change state.
        lst = _OrderList(
            self._next_list_id, list_client_id, contingency, sym.name, wallet.scope, now
        )
        self._next_list_id += 1
        acct.lists[lst.list_id] = lst
        first_role = _ROLE_LEG if contingency == "OCO" else _ROLE_WORKING
        lst.phase = _PHASE_OCO if contingency == "OCO" else _PHASE_WORKING
        orders = [
            self._make_order(acct, wallet, sym, spec, now, effect, auto_repay, stp,
                             list_id=lst.list_id, role=first_role)
            for spec in first
        ] + [
            self._make_order(acct, wallet, sym, spec, now, effect, auto_repay, stp,
                             list_id=lst.list_id, role=_ROLE_PENDING)
            for spec in pending
        ]  # fmt: skip
        lst.orders = orders
        active = orders[: len(first)]
        res = _Reservation(wallet, asset, active)
        for order in active:
            order.res = res
            self._open(order, now)
        self._fund(acct, res, effect, now, active[0])
        for order in orders:
            if order.role == _ROLE_PENDING:
                order.status = _PENDING_NEW
                order.update_time = now
            self._report(order, now, "NEW")
        self._list_status(lst, now)
        self._match(sym, now)
        response = self._list_json(lst, now, reports="new", borrowed=res.borrowed, asset=asset)
        self._flush(now)
        return response

    def _activate(self, acct: _Account, lst: _OrderList, now: int) -> None:
        """The working order filled: place the pending order(s) (an OCO pair for OTOCO)."""
        pending = [o for o in lst.orders if o.role == _ROLE_PENDING and o.status == _PENDING_NEW]
        if not pending:
            return
        wallet = self._wallet(acct, lst.scope)
        sym = self._symbols[lst.symbol]
        asset = _reserve_asset(sym, pending[0].side)
        res = _Reservation(wallet, asset, pending)
        for order in pending:
            order.status = _NEW  # so that its need counts
        need = self._res_need(res)
        if self._funding_error(wallet, asset, need, pending[0].side_effect) is not None:
            for order in pending:
                self._retire(acct, order, _EXPIRED, now)
                self._report(order, now, "EXPIRED", reason="REJECTED")
            self._end_list(lst, now)
            return
        for order in pending:
            order.res = res
            self._open(order, now)
        self._fund(acct, res, pending[0].side_effect, now, pending[0])
        for order in pending:
            self._report(order, now, "NEW")
        if lst.contingency == "OTOCO":
            lst.phase = _PHASE_OCO
            self._list_status(lst, now)
        else:
            self._end_list(lst, now)

    def _retire(self, acct: _Account, order: _Order, status: str, now: int) -> None:
        """The one place a live order takes a final status: off the book and the live index."""
        order.status = status
        order.on_book = False
        order.taker_due = False
        order.update_time = now
        self._book[order.symbol].pop(order.order_id, None)
        acct.live.pop(order.order_id, None)

    def _end_list(self, lst: _OrderList, now: int) -> None:
        lst.phase = _PHASE_DONE
        lst.status_type = "ALL_DONE"
        lst.order_status = "ALL_DONE"
        self._list_status(lst, now)

    def _cancel_list(
        self, acct: _Account, lst: _OrderList, now: int, *, chosen: tuple[int, str] | None = None
    ) -> None:
        """Cancel every live order of ``lst``; ``chosen`` = (order id, its cancel client id)."""
        for order in lst.orders:
            if order.is_live:
                if chosen is not None and chosen[0] == order.order_id:
                    cancel_id = chosen[1]
                else:
                    cancel_id = self._gen_id()
                self._close(order, _CANCELED, now, cancel_id=cancel_id, cascade=False)
        self._end_list(lst, now)

    def _close(
        self,
        order: _Order,
        status: str,
        now: int,
        *,
        reason: str | None = None,
        cancel_id: str | None = None,
        cascade: bool = True,
    ) -> None:
        """End a live order as CANCELED or EXPIRED: unbook, release its funds, report, repay
        what it borrowed (``autoRepayAtCancel``), and end its list when the list depended on
        it."""
        acct = self._accounts[order.account_id]
        was_pending = order.status == _PENDING_NEW
        self._retire(acct, order, status, now)
        released = _ZERO
        res = order.res
        if res is not None:
            released = self._rebalance(res)
            self._touch(acct, res.wallet, res.asset)
        if status == _CANCELED:
            order.cancel_client_id = cancel_id
            self._report(order, now, "CANCELED")
        else:
            self._report(order, now, "EXPIRED", reason=reason)
        if (
            res is not None
            and order.auto_repay_at_cancel
            and res.borrowed > 0
            and released > 0
            and not any(o.is_live for o in res.holders)
        ):
            cap = min(res.borrowed, released)
            res.borrowed -= cap
            self._auto_repay(acct, res.wallet, res.asset, cap, now)
        lst = acct.lists.get(order.list_id)
        if cascade and lst is not None and lst.phase != _PHASE_DONE and not was_pending:
            # The list's contingency can no longer happen: its other orders go too.
            why = "OTO_PHASE_ONE_EXPIRED" if order.role == _ROLE_WORKING else "OCO_TRIGGER"
            for other in lst.orders:
                if other.is_live:
                    if status == _CANCELED:
                        self._close(other, _CANCELED, now, cancel_id=self._gen_id(), cascade=False)
                    else:
                        self._close(other, _EXPIRED, now, reason=why, cascade=False)
            self._end_list(lst, now)

    def _resolve_oco(
        self, acct: _Account, order: _Order, now: int
    ) -> tuple[_OrderList | None, list[_Order]]:
        """``order``, an OCO leg, filled or triggered: its siblings expire (state only; the
        caller reports them with :meth:`_announce`) and the list is resolved."""
        lst = acct.lists.get(order.list_id)
        if lst is None or lst.phase != _PHASE_OCO or order.role not in (_ROLE_LEG, _ROLE_PENDING):
            return None, []
        siblings = [o for o in lst.orders if o is not order and o.is_live and o.role == order.role]
        for other in siblings:
            self._retire(acct, other, _EXPIRED, now)
        if order.res is not None:
            self._rebalance(order.res)
            self._touch(acct, order.res.wallet, order.res.asset)
        lst.phase = _PHASE_DONE
        lst.status_type = "ALL_DONE"
        lst.order_status = "ALL_DONE"
        return lst, siblings

    def _announce(self, lst: _OrderList, siblings: list[_Order], now: int) -> None:
        for other in siblings:
            self._report(other, now, "EXPIRED", reason="OCO_TRIGGER")
        self._list_status(lst, now)

    # -- matching -------------------------------------------------------------------------------

    def _match(self, sym: _Symbol, now: int) -> None:
        """Run the symbol's book to a fixed point at the current price: pending taker
        executions, stop triggers, then maker fills of crossed resting orders (price, then time
        priority) within the available liquidity."""
        book = self._book[sym.name]
        while True:
            progressed = False
            for order in list(book.values()):
                if not order.is_live:
                    continue
                if order.taker_due:
                    order.taker_due = False
                    self._execute_taker(order, now)
                    progressed = True
                elif (
                    order.type in _STOP_TYPES
                    and not order.triggered
                    and _stop_hit(order.type, order.side, _stop_of(order), sym.price)
                ):
                    self._trigger(order, now)
                    progressed = True
            crossed = [
                o
                for o in book.values()
                if o.on_book
                and not o.taker_due
                and o.price is not None
                and _crosses(o.side, o.price, sym.price)
            ]
            crossed.sort(key=_maker_priority)
            for order in crossed:
                if not (order.is_live and order.on_book):
                    continue
                if sym.liquidity is not None and sym.liquidity <= 0:
                    break
                assert order.price is not None
                self._fill(order, _take(order.remaining, sym.liquidity), order.price, True, now)
                progressed = True
            if not progressed:
                return

    def _execute_taker(self, order: _Order, now: int) -> None:
        sym = self._symbols[order.symbol]
        market_like = order.type == _MARKET or order.type in _STOP_MARKET_TYPES
        if not market_like:
            assert order.price is not None
            if not _crosses(order.side, order.price, sym.price):
                if order.tif == _IOC:
                    self._close(order, _EXPIRED, now, reason="UNFILLED_IOC_QUANTITY_EXPIRED")
                elif order.tif == _FOK:
                    self._close(order, _EXPIRED, now, reason="UNFILLED_FOK_ORDER_EXPIRED")
                return
            if order.tif == _FOK and sym.liquidity is not None and sym.liquidity < order.remaining:
                self._close(order, _EXPIRED, now, reason="UNFILLED_FOK_ORDER_EXPIRED")
                return
        qty = _take(order.remaining, sym.liquidity)
        if qty > 0:
            if market_like and not self._affordable(order, qty, sym.price):
                self._close(order, _EXPIRED, now, reason="REJECTED")
                return
            self._fill(order, qty, sym.price, False, now)
        if order.is_live:
            if market_like:
                self._close(order, _EXPIRED, now, reason="INSUFFICIENT_LIQUIDITY")
            elif order.tif == _IOC:
                self._close(order, _EXPIRED, now, reason="UNFILLED_IOC_QUANTITY_EXPIRED")

    def _affordable(self, order: _Order, qty: Decimal, price: Decimal) -> bool:
        """Whether a market-like fill of ``qty`` can be paid (its whole reservation is released
        for it, the rest from free, borrowed if the side effect allows)."""
        sym = self._symbols[order.symbol]
        wallet = self._wallet(self._accounts[order.account_id], order.scope)
        asset = _reserve_asset(sym, order.side)
        cost = qty * price if order.side == _BUY else qty
        held = order.res.amount if order.res is not None else _ZERO
        need = max(_ZERO, cost - held)
        return self._funding_error(wallet, asset, need, order.side_effect) is None

    def _trigger(self, order: _Order, now: int) -> None:
        acct = self._accounts[order.account_id]
        order.triggered = True
        order.working_time = now
        order.update_time = now
        resolved, siblings = self._resolve_oco(acct, order, now)
        if resolved is not None:
            self._announce(resolved, siblings, now)
        if order.type in _STOP_MARKET_TYPES:
            order.taker_due = True
        else:
            assert order.price is not None
            sym = self._symbols[order.symbol]
            order.on_book = order.tif == _GTC
            order.taker_due = order.tif != _GTC or _crosses(order.side, order.price, sym.price)
        if order.res is not None:
            self._rebalance(order.res)  # a triggered stop-market keeps nothing locked

    def _fill(self, order: _Order, qty: Decimal, price: Decimal, maker: bool, now: int) -> None:
        """One execution of ``qty`` at ``price`` against the venue."""
        acct = self._accounts[order.account_id]
        wallet = self._wallet(acct, order.scope)
        sym = self._symbols[order.symbol]
        resolved, siblings = self._resolve_oco(acct, order, now)
        quote_qty = qty * price
        order.executed += qty
        order.cum_quote += quote_qty
        order.update_time = now
        if order.executed == order.orig_qty:
            self._retire(acct, order, _FILLED, now)
        else:
            order.status = _PARTIALLY_FILLED
        if sym.liquidity is not None:
            sym.liquidity -= qty
        if order.res is not None:
            self._rebalance(order.res)
        if order.side == _BUY:
            spend, cost, receive, gross = sym.quote, quote_qty, sym.base, qty
        else:
            spend, cost, receive, gross = sym.base, qty, sym.quote, quote_qty
        spend_bal = wallet.bal(spend)
        if spend_bal.free < cost:
            short = cost - spend_bal.free  # affordability was checked: MARGIN_BUY borrows it
            self._borrow_now(acct, wallet, spend, short, now, auto=True)
            order.borrowed += short
        spend_bal.free -= cost
        rate = self._maker_rate if maker else self._taker_rate
        commission = (gross * rate).quantize(_Q8, ROUND_UP)
        wallet.bal(receive).free += gross - commission
        _add(self._trade_net, receive, gross)
        _add(self._trade_net, spend, -cost)
        _add(self._fees, receive, commission)
        trade = _Trade(self._next_trade_id, order, price, qty, commission, receive, now, maker)
        self._next_trade_id += 1
        acct.trades.append(trade)
        self._op_trades.append(trade)
        self._touch(acct, wallet, spend)
        self._touch(acct, wallet, receive)
        self._report(order, now, "TRADE", trade=trade)
        if resolved is not None:
            self._announce(resolved, siblings, now)
        if order.side_effect in _REPAYING:
            self._auto_repay(acct, wallet, receive, gross - commission, now)
        if order.status == _FILLED:
            lst = acct.lists.get(order.list_id)
            if lst is not None and order.role == _ROLE_WORKING and lst.phase == _PHASE_WORKING:
                self._activate(acct, lst, now)

    # -- events ---------------------------------------------------------------------------------

    def _emit(self, acct: _Account, scope: str, channel: Channel, payload: dict[str, Any]) -> None:
        self._outbox.append(LedgerEvent(acct.account_id, scope, channel, payload))

    def _touch(self, acct: _Account, wallet: _Wallet, asset: str) -> None:
        """Note a free/locked change for the operation's closing ``outboundAccountPosition``."""
        self._dirty[acct.account_id] = None
        if wallet.kind != _SPOT:
            self._touched.setdefault((acct.account_id, wallet.scope), {})[asset] = None

    def _balance_update(
        self, acct: _Account, wallet: _Wallet, asset: str, delta: Decimal, now: int
    ) -> None:
        self._touch(acct, wallet, asset)
        if wallet.kind != _SPOT:
            payload = {"e": "balanceUpdate", "E": now, "a": asset, "d": _fmt(delta), "T": now}
            self._emit(acct, wallet.scope, "trade", payload)

    def _liability_event(
        self,
        acct: _Account,
        wallet: _Wallet,
        asset: str,
        kind: str,
        principal: Decimal,
        interest: Decimal,
        now: int,
    ) -> None:
        if wallet.kind == _CROSS:  # the risk stream is cross only
            payload = {
                "e": "USER_LIABILITY_CHANGE",
                "E": now,
                "a": asset,
                "t": kind,
                "p": _fmt(principal),
                "i": _fmt(interest),
            }
            self._emit(acct, _CROSS, "risk", payload)

    def _report(
        self,
        order: _Order,
        now: int,
        execution: str,
        *,
        trade: _Trade | None = None,
        reason: str | None = None,
    ) -> None:
        """An ``executionReport`` with the full field set of PROTOCOL.md §4.3."""
        canceled = execution == _CANCELED
        payload: dict[str, Any] = {
            "e": "executionReport",
            "E": now,
            "s": order.symbol,
            "c": order.cancel_client_id if canceled else order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.tif,
            "q": _fmt(order.orig_qty),
            "p": _fmt_opt(order.price),
            "P": _fmt_opt(order.stop_price),
            "F": _fmt_opt(order.iceberg),
            "g": order.list_id,
            "C": order.client_order_id if canceled else "",
            "x": execution,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": _fmt(trade.qty) if trade is not None else _ZERO8,
            "z": _fmt(order.executed),
            "L": _fmt(trade.price) if trade is not None else _ZERO8,
            "n": _fmt(trade.commission) if trade is not None else "0",
            "N": trade.commission_asset if trade is not None else None,
            "T": now,
            "t": trade.trade_id if trade is not None else -1,
            "I": self._next_exec_id,
            "w": order.on_book,
            "m": trade.is_maker if trade is not None else False,
            "M": False,
            "O": order.time,
            "Z": _fmt(order.cum_quote),
            "Y": _fmt(trade.qty * trade.price) if trade is not None else _ZERO8,
            "Q": _fmt_opt(order.quote_qty),
        }
        self._next_exec_id += 1
        if order.working_time is not None:
            payload["W"] = order.working_time
        payload["V"] = order.stp
        if execution == _EXPIRED and reason is not None:
            payload["eR"] = reason
        self._emit(self._accounts[order.account_id], order.scope, "trade", payload)

    def _list_status(self, lst: _OrderList, now: int) -> None:
        payload = {
            "e": "listStatus",
            "E": now,
            "s": lst.symbol,
            "g": lst.list_id,
            "c": _WIRE_CONTINGENCY[lst.contingency],
            "l": lst.status_type,
            "L": lst.order_status,
            "r": "NONE",
            "C": lst.client_id,
            "T": now,
            "O": [{"s": o.symbol, "i": o.order_id, "c": o.client_order_id} for o in lst.orders],
        }
        acct = self._accounts[lst.orders[0].account_id]
        self._emit(acct, lst.scope, "trade", payload)

    def _flush(self, now: int) -> None:
        """Close an operation: one ``outboundAccountPosition`` per touched margin wallet, then a
        ``MARGIN_LEVEL_STATUS_CHANGE`` for each account whose cross status moved."""
        for (account_id, scope), assets in self._touched.items():
            acct = self._accounts[account_id]
            wallet = self._wallet(acct, scope)
            balances = [
                {"a": a, "f": _fmt(wallet.bal(a).free), "l": _fmt(wallet.bal(a).locked)}
                for a in assets
            ]
            payload = {"e": "outboundAccountPosition", "E": now, "u": now, "B": balances}
            self._emit(acct, scope, "trade", payload)
        self._touched.clear()
        targets = self._accounts if self._all_dirty else self._dirty
        for account_id in targets:
            acct = self._accounts[account_id]
            level = self._level(acct.cross)
            status = self._cross_risk.status(level)
            if status != acct.cross_status:
                acct.cross_status = status
                payload = {
                    "e": "MARGIN_LEVEL_STATUS_CHANGE",
                    "E": now,
                    "l": _fmt(level),
                    "s": status,
                }
                self._emit(acct, _CROSS, "risk", payload)
        self._dirty.clear()
        self._all_dirty = False
        self._op_trades.clear()

    # -- REST shapes ----------------------------------------------------------------------------

    def _wallet(self, acct: _Account, scope: str) -> _Wallet:
        return acct.cross if scope == _CROSS else acct.isolated[scope]

    def _order_response(
        self, order: _Order, resp_type: str, now: int, fills: list[_Trade]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "clientOrderId": order.client_order_id,
            "isIsolated": order.scope != _CROSS,
            "transactTime": now,
        }
        if resp_type == "ACK":
            return body
        del body["isIsolated"]
        body.update(_result_json(order))
        if order.borrowed > 0:
            body["marginBuyBorrowAmount"] = _fmt(order.borrowed)
            body["marginBuyBorrowAsset"] = _reserve_asset(self._symbols[order.symbol], order.side)
        body["isIsolated"] = order.scope != _CROSS
        body["selfTradePreventionMode"] = order.stp
        if resp_type == "FULL":
            body["fills"] = [
                {
                    "price": _fmt(t.price),
                    "qty": _fmt(t.qty),
                    "commission": _fmt(t.commission),
                    "commissionAsset": t.commission_asset,
                    "tradeId": t.trade_id,
                }
                for t in fills
            ]
        return body

    def _order_json(self, order: _Order) -> dict[str, Any]:
        """The query shape (``GET /sapi/v1/margin/order``, openOrders, allOrders)."""
        return {
            "clientOrderId": order.client_order_id,
            "cummulativeQuoteQty": _fmt(order.cum_quote),
            "executedQty": _fmt(order.executed),
            "icebergQty": _fmt_opt(order.iceberg),
            "isWorking": order.on_book,
            "orderId": order.order_id,
            "orderListId": order.list_id,
            "origQty": _fmt(order.orig_qty),
            "price": _fmt_opt(order.price),
            "side": order.side,
            "status": order.status,
            "stopPrice": _fmt_opt(order.stop_price),
            "symbol": order.symbol,
            "isIsolated": order.scope != _CROSS,
            "time": order.time,
            "timeInForce": order.tif,
            "type": order.type,
            "selfTradePreventionMode": order.stp,
            "updateTime": order.update_time,
        }

    def _cancel_json(self, order: _Order, now: int) -> dict[str, Any]:
        return {
            "symbol": order.symbol,
            "isIsolated": order.scope != _CROSS,
            "orderId": order.order_id,
            "origClientOrderId": order.client_order_id,
            "clientOrderId": order.cancel_client_id or order.client_order_id,
            "orderListId": order.list_id,
            **_result_json(order),
            "selfTradePreventionMode": order.stp,
        }

    def _list_json(
        self,
        lst: _OrderList,
        now: int,
        *,
        reports: Literal["new", "cancel"] | None,
        borrowed: Decimal = _ZERO,
        asset: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "orderListId": lst.list_id,
            "contingencyType": _WIRE_CONTINGENCY[lst.contingency],
            "listStatusType": lst.status_type,
            "listOrderStatus": lst.order_status,
            "listClientOrderId": lst.client_id,
            "transactionTime": now,
            "symbol": lst.symbol,
        }
        if borrowed > 0:
            body["marginBuyBorrowAmount"] = _fmt(borrowed)
            body["marginBuyBorrowAsset"] = asset
        body["isIsolated"] = lst.scope != _CROSS
        body["orders"] = [
            {"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
            for o in lst.orders
        ]
        if reports is not None:
            body["orderReports"] = [self._list_report(o, now, reports) for o in lst.orders]
        return body

    def _list_report(self, order: _Order, now: int, kind: str) -> dict[str, Any]:
        report: dict[str, Any] = {"symbol": order.symbol}
        if kind == "cancel":
            report["origClientOrderId"] = order.client_order_id
        report.update(
            orderId=order.order_id,
            orderListId=order.list_id,
            clientOrderId=order.cancel_client_id
            if kind == "cancel" and order.cancel_client_id is not None
            else order.client_order_id,
            transactTime=now,
            **_result_json(order),
        )
        if order.stop_price is not None:
            report["stopPrice"] = _fmt(order.stop_price)
        report["selfTradePreventionMode"] = order.stp
        return report

    def _user_asset(self, wallet: _Wallet, asset: str) -> dict[str, Any]:
        return {"asset": asset, **_balance_json(wallet.balances.get(asset) or _Balance())}

    def _isolated_json(self, wallet: _Wallet) -> dict[str, Any]:
        sym = self._symbols[wallet.scope]
        risk = self._isolated_risk
        level = self._level(wallet)

        def block(asset: str) -> dict[str, Any]:
            bal = wallet.balances.get(asset) or _Balance()
            return {
                "asset": asset,
                "borrowEnabled": True,
                **_balance_json(bal),
                "netAssetOfBtc": _fmt(bal.net * self._rate(asset)),
                "repayEnabled": True,
                "totalAsset": _fmt(bal.free + bal.locked),
            }

        return {
            "baseAsset": block(sym.base),
            "quoteAsset": block(sym.quote),
            "symbol": sym.name,
            "isolatedCreated": True,
            "enabled": True,
            "marginLevel": _fmt(level),
            "marginLevelStatus": risk.status(level),
            "marginRatio": _fmt(risk.max_leverage),
            "indexPrice": _fmt(sym.price),
            "liquidatePrice": _fmt(self._liquidation_price(wallet, sym)),
            "liquidateRate": _fmt(risk.force_liquidation),
            "tradeEnabled": True,
        }

    def _liquidation_price(self, wallet: _Wallet, sym: _Symbol) -> Decimal:
        """The base price at which the pair's level falls to the force-liquidation threshold:
        (b·P + q) / (bL·P + qL) = k ⇔ P = (k·qL - q) / (b - k·bL); 0 when there is none."""
        base = wallet.balances.get(sym.base) or _Balance()
        quote = wallet.balances.get(sym.quote) or _Balance()
        k = self._isolated_risk.force_liquidation
        base_owed = base.borrowed + base.interest
        quote_owed = quote.borrowed + quote.interest
        if not base_owed and not quote_owed:
            return _ZERO
        denominator = base.free + base.locked - k * base_owed
        if denominator == 0:
            return _ZERO
        price = (k * quote_owed - quote.free - quote.locked) / denominator
        return max(_ZERO, price)

    # -- invariants -----------------------------------------------------------------------------

    def _check_order(
        self, acct: _Account, order: _Order, open_ids: set[tuple[str, str, str]]
    ) -> None:
        where = f"{acct.account_id}/order {order.order_id}"
        if not _ZERO <= order.executed <= order.orig_qty:
            _fail(f"{where}: executed {order.executed} outside [0, {order.orig_qty}]")
        if (order.order_id in acct.live) != order.is_live:
            _fail(f"{where}: status {order.status} but live index disagrees")
        booked = order.order_id in self._book[order.symbol]
        if booked != (order.status in (_NEW, _PARTIALLY_FILLED)):
            _fail(f"{where}: status {order.status} but booked={booked}")
        if order.status == _FILLED and order.executed != order.orig_qty:
            _fail(f"{where}: FILLED with executed {order.executed}")
        if order.taker_due:
            _fail(f"{where}: taker execution left pending")
        if order.is_live:
            key = (order.scope, order.symbol, order.client_order_id)
            if key in open_ids:
                _fail(f"{where}: duplicate open client order id")
            open_ids.add(key)


# ---------------------------------------------------------------------------------------------
# Internal state


class _Symbol:
    __slots__ = ("assets", "base", "liquidity", "min_notional", "name", "price", "quote",
                 "step_size", "tick_size")  # fmt: skip

    def __init__(self, spec: SymbolSpec) -> None:
        self.name = spec.symbol
        self.base = spec.base
        self.quote = spec.quote
        self.assets = frozenset({spec.base, spec.quote})
        self.price = spec.price
        self.tick_size = spec.tick_size
        self.step_size = spec.step_size
        self.min_notional = spec.min_notional
        self.liquidity: Decimal | None = None


class _Balance:
    __slots__ = ("borrowed", "free", "interest", "locked")

    def __init__(self) -> None:
        self.free = _ZERO
        self.locked = _ZERO
        self.borrowed = _ZERO
        self.interest = _ZERO

    @property
    def net(self) -> Decimal:
        """Binance's ``netAsset``: held minus owed."""
        return self.free + self.locked - self.borrowed - self.interest

    def __repr__(self) -> str:
        return (
            f"_Balance(free={self.free}, locked={self.locked}, borrowed={self.borrowed}, "
            f"interest={self.interest})"
        )


class _Wallet:
    """Spot, cross or one isolated margin wallet. ``anchors``: asset → ms time from which the
    next interest hour of its loan counts."""

    __slots__ = ("allowed", "anchors", "balances", "kind", "scope")

    def __init__(self, kind: str, scope: str, allowed: frozenset[str]) -> None:
        self.kind = kind
        self.scope = scope
        self.allowed = allowed
        self.balances: dict[str, _Balance] = {}
        self.anchors: dict[str, int] = {}

    def bal(self, asset: str) -> _Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = _Balance()
        return bal


class _Account:
    __slots__ = ("account_id", "cross", "cross_status", "interests", "isolated", "lists", "live",
                 "loans", "orders", "spot", "trades", "transfers")  # fmt: skip

    def __init__(self, account_id: str, cross_status: str, assets: frozenset[str]) -> None:
        self.account_id = account_id
        self.spot = _Wallet(_SPOT, _SPOT, assets)
        self.cross = _Wallet(_CROSS, _CROSS, assets)
        self.isolated: dict[str, _Wallet] = {}
        self.orders: dict[int, _Order] = {}  # every order ever placed, by id (= time order)
        self.live: dict[int, _Order] = {}  # the open ones (NEW, PARTIALLY_FILLED, PENDING_NEW)
        self.lists: dict[int, _OrderList] = {}
        self.trades: list[_Trade] = []
        self.loans: list[_LoanRecord] = []
        self.interests: list[_InterestRecord] = []
        self.transfers: list[_TransferRecord] = []
        self.cross_status = cross_status

    def margin_wallets(self) -> list[_Wallet]:
        return [self.cross, *self.isolated.values()]


@dataclass(slots=True)
class _Spec:
    """Parsed parameters of one order, before it exists."""

    side: str
    type: str
    tif: str
    qty: Decimal
    price: Decimal | None
    stop: Decimal | None
    quote_qty: Decimal | None
    iceberg: Decimal | None
    client_id: str


class _Reservation:
    """Funds locked for one order, or once for both legs of an OCO (``holders``)."""

    __slots__ = ("amount", "asset", "borrowed", "holders", "wallet")

    def __init__(self, wallet: _Wallet, asset: str, holders: list[_Order]) -> None:
        self.wallet = wallet
        self.asset = asset
        self.amount = _ZERO
        self.borrowed = _ZERO  # borrowed to fund it and not yet auto-repaid at cancel
        self.holders = holders


class _Order:
    __slots__ = ("account_id", "auto_repay_at_cancel", "borrowed", "cancel_client_id",
                 "client_order_id", "cum_quote", "executed", "iceberg", "list_id", "on_book",
                 "order_id", "orig_qty", "price", "quote_qty", "res", "role", "scope",
                 "side", "side_effect", "status", "stop_price", "stp", "symbol", "taker_due",
                 "tif", "time", "triggered", "type", "update_time", "working_time")  # fmt: skip

    def __init__(
        self,
        *,
        account_id: str,
        scope: str,
        symbol: str,
        order_id: int,
        spec: _Spec,
        time: int,
        list_id: int,
        role: str,
        side_effect: str,
        auto_repay_at_cancel: bool,
        stp: str,
    ) -> None:
        self.account_id = account_id
        self.scope = scope
        self.symbol = symbol
        self.order_id = order_id
        self.client_order_id = spec.client_id
        self.side = spec.side
        self.type = spec.type
        self.tif = spec.tif
        self.orig_qty = spec.qty
        self.price = spec.price
        self.stop_price = spec.stop
        self.quote_qty = spec.quote_qty
        self.iceberg = spec.iceberg
        self.time = time
        self.update_time = time
        self.list_id = list_id
        self.role = role
        self.side_effect = side_effect
        self.auto_repay_at_cancel = auto_repay_at_cancel
        self.stp = stp
        self.status = _NEW
        self.executed = _ZERO
        self.cum_quote = _ZERO
        self.working_time: int | None = None
        self.on_book = False
        self.triggered = False
        self.taker_due = False
        self.res: _Reservation | None = None
        self.borrowed = _ZERO
        self.cancel_client_id: str | None = None

    @property
    def is_live(self) -> bool:
        return self.status in _LIVE

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed


class _OrderList:
    __slots__ = ("client_id", "contingency", "list_id", "order_status",
                 "orders", "phase", "scope", "status_type", "symbol", "time")  # fmt: skip

    def __init__(
        self, list_id: int, client_id: str, contingency: str, symbol: str, scope: str, time: int
    ) -> None:
        self.list_id = list_id
        self.client_id = client_id
        self.contingency = contingency
        self.symbol = symbol
        self.scope = scope
        self.time = time
        self.orders: list[_Order] = []
        self.phase = _PHASE_WORKING
        self.status_type = "EXEC_STARTED"
        self.order_status = "EXECUTING"


class _Trade:
    __slots__ = ("commission", "commission_asset", "is_buyer", "is_maker", "order_id", "price",
                 "qty", "scope", "symbol", "time", "trade_id")  # fmt: skip

    def __init__(
        self,
        trade_id: int,
        order: _Order,
        price: Decimal,
        qty: Decimal,
        commission: Decimal,
        commission_asset: str,
        time: int,
        is_maker: bool,
    ) -> None:
        self.trade_id = trade_id
        self.order_id = order.order_id
        self.symbol = order.symbol
        self.scope = order.scope
        self.is_buyer = order.side == _BUY
        self.price = price
        self.qty = qty
        self.commission = commission
        self.commission_asset = commission_asset
        self.time = time
        self.is_maker = is_maker


@dataclass(frozen=True, slots=True)
class _LoanRecord:
    kind: str  # BORROW | REPAY
    tran_id: int
    scope: str
    asset: str
    principal: Decimal
    interest: Decimal
    time: int
    auto: bool


@dataclass(frozen=True, slots=True)
class _InterestRecord:
    tran_id: int
    scope: str
    asset: str
    principal: Decimal
    interest: Decimal
    rate: Decimal
    time: int


@dataclass(frozen=True, slots=True)
class _TransferRecord:
    tran_id: int
    asset: str
    amount: Decimal
    src: _Wallet
    dst: _Wallet
    time: int


# ---------------------------------------------------------------------------------------------
# Small pure helpers


def _fmt(value: Decimal) -> str:
    """Binance's 8-decimal amount string (never ``-0.00000000``)."""
    q = value.quantize(_Q8)
    return _ZERO8 if q.is_zero() else format(q, "f")


def _fmt_opt(value: Decimal | None) -> str:
    return _ZERO8 if value is None else _fmt(value)


def _result_json(order: _Order) -> dict[str, Any]:
    """The order fields of a ``RESULT`` answer, shared by new, cancel and list reports."""
    return {
        "price": _fmt_opt(order.price),
        "origQty": _fmt(order.orig_qty),
        "executedQty": _fmt(order.executed),
        "cummulativeQuoteQty": _fmt(order.cum_quote),
        "status": order.status,
        "timeInForce": order.tif,
        "type": order.type,
        "side": order.side,
    }


def _balance_json(bal: _Balance) -> dict[str, Any]:
    """The amounts of a ``userAssets`` row (cross account) or isolated asset block."""
    return {
        "borrowed": _fmt(bal.borrowed),
        "free": _fmt(bal.free),
        "interest": _fmt(bal.interest),
        "locked": _fmt(bal.locked),
        "netAsset": _fmt(bal.net),
    }


def _free(wallet: _Wallet, asset: str) -> Decimal:
    bal = wallet.balances.get(asset)
    return _ZERO if bal is None else bal.free


def _add(counter: dict[str, Decimal], asset: str, amount: Decimal) -> None:
    counter[asset] = counter.get(asset, _ZERO) + amount


def _fail(message: str) -> None:
    raise InvariantViolation(message)


def _level_of(assets: Decimal, liabilities: Decimal) -> Decimal:
    return _NO_DEBT_LEVEL if liabilities == 0 else assets / liabilities


def _crosses(side: str, limit: Decimal, price: Decimal) -> bool:
    """Whether a limit order at ``limit`` trades at market ``price``."""
    return limit >= price if side == _BUY else limit <= price


def _stop_hit(type_: str, side: str, stop: Decimal, price: Decimal) -> bool:
    """Binance's trigger rule: stop-loss BUY at price >= stop, SELL at <= stop; take-profit the
    reverse."""
    rising = (type_ in _LOSS_TYPES) == (side == _BUY)
    return price >= stop if rising else price <= stop


def _stop_of(order: _Order) -> Decimal:
    assert order.stop_price is not None
    return order.stop_price


def _trigger_price(spec: _Spec) -> Decimal:
    value = spec.price if spec.type == _LIMIT_MAKER else spec.stop
    assert value is not None
    return value


def _maker_priority(order: _Order) -> tuple[Decimal, int]:
    assert order.price is not None
    return (-order.price if order.side == _BUY else order.price, order.order_id)


def _take(remaining: Decimal, liquidity: Decimal | None) -> Decimal:
    return remaining if liquidity is None else max(_ZERO, min(remaining, liquidity))


def _reserve_asset(sym: _Symbol, side: str) -> str:
    return sym.quote if side == _BUY else sym.base


def _spec_need(spec: _Spec) -> Decimal:
    """What placing ``spec`` locks (MARKET orders lock nothing: they execute at once)."""
    if spec.type == _MARKET:
        return _ZERO
    if spec.side == _SELL:
        return spec.qty
    ref = spec.price if spec.price is not None else spec.stop
    assert ref is not None
    return spec.qty * ref


def _need(order: _Order) -> Decimal:
    """What a live order must keep locked for its remaining quantity."""
    if order.status == _PENDING_NEW or order.type == _MARKET:
        return _ZERO
    if order.type in _STOP_MARKET_TYPES and order.triggered:
        return _ZERO
    if order.side == _SELL:
        return order.remaining
    ref = order.price if order.price is not None else order.stop_price
    assert ref is not None
    return order.remaining * ref


def _in_range(time: int, start: int | None, end: int | None) -> bool:
    return (start is None or time >= start) and (end is None or time <= end)


def _page(rows: list[dict[str, Any]], current: int, size: int) -> dict[str, Any]:
    if current < 1:
        raise LedgerError(-1130, "Data sent for parameter 'current' is not valid.")
    size = _limit(size, 100)
    start = (current - 1) * size
    return {"rows": rows[start : start + size], "total": len(rows)}


def _limit(value: int, maximum: int) -> int:
    if not 1 <= value <= maximum:
        raise LedgerError(-1130, "Data sent for parameter 'limit' is not valid.")
    return value


def _one_of(first: tuple[str, object], second: tuple[str, object]) -> None:
    """``-1102`` when neither of two alternative parameters (name, value) was sent."""
    if first[1] is None and second[1] is None:
        raise LedgerError(
            -1102, f"Param '{first[0]}' or '{second[0]}' must be sent, but both were empty/null!"
        )


def _mandatory(name: str) -> LedgerError:
    return LedgerError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _not_required(name: str) -> LedgerError:
    return LedgerError(-1106, f"Parameter '{name}' sent when not required.")


def _illegal(name: str, legal: str) -> LedgerError:
    return LedgerError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def _opt_amount(value: Amount | None, name: str) -> Decimal | None:
    """A non-negative decimal parameter with at most 8 decimals (``-1100``/``-1111``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _illegal(name, _DECIMAL_RANGE)
    if isinstance(value, int):
        if value < 0:
            raise _illegal(name, _DECIMAL_RANGE)
        return Decimal(value)
    if isinstance(value, str):
        match = _DECIMAL_RE.fullmatch(value)
        if match is None:
            raise _illegal(name, _DECIMAL_RANGE)
        result = Decimal(value)
    else:
        if not value.is_finite() or value < 0:
            raise _illegal(name, _DECIMAL_RANGE)
        result = value
    if result != result.quantize(_Q8, ROUND_DOWN):
        raise LedgerError(-1111, f"Parameter '{name}' has too much precision.")
    return result


def _amount(value: Amount, name: str) -> Decimal:
    """A mandatory, strictly positive amount (zero is ``-1102``, as Binance treats it)."""
    result = _opt_amount(value, name)
    if result is None or result <= 0:
        raise _mandatory(name)
    return result


def _positive(value: Amount, name: str) -> Decimal:
    result = _opt_amount(value, name)
    if result is None or result <= 0:
        raise LedgerError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return result


def _non_negative(value: Amount, name: str) -> Decimal:
    result = _opt_amount(value, name)
    assert result is not None  # _opt_amount returns None only for None
    return result


def _config_amount(value: Amount, name: str) -> Decimal:
    """A configuration amount (any precision); ``ValueError`` unless finite and >= 0."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a finite non-negative amount")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{name} must be a finite non-negative amount") from None
    if not result.is_finite() or result < 0:
        raise ValueError(f"{name} must be a finite non-negative amount")
    return result


def _opt_int(value: int | str | None, name: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise _illegal(name, "^[0-9]{1,20}$")


def _flag(value: bool | str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    upper = value.upper()
    if upper not in ("TRUE", "FALSE"):
        raise _illegal(name, "TRUE, FALSE")
    return upper == "TRUE"


def _enum(value: str, allowed: Iterable[str], code: int, msg: str) -> str:
    if value not in allowed:
        raise LedgerError(code, msg)
    return value


def _order_options(
    resp_type: str | None,
    side_effect_type: str | None,
    self_trade_prevention_mode: str | None,
    auto_repay_at_cancel: bool | str,
    default_resp: str,
) -> tuple[str, str, str, bool]:
    """The options of every order endpoint, validated in this order: ``newOrderRespType``,
    ``sideEffectType``, ``selfTradePreventionMode``, ``autoRepayAtCancel``."""
    return (
        _enum_or(resp_type, _RESP_TYPES, "newOrderRespType", default_resp),
        _enum_or(side_effect_type, _SIDE_EFFECTS, "sideEffectType", _NO_SIDE_EFFECT),
        _enum_or(self_trade_prevention_mode, _STP_MODES, "selfTradePreventionMode", "NONE"),
        _flag(auto_repay_at_cancel, "autoRepayAtCancel"),
    )


def _enum_or(value: str | None, allowed: frozenset[str], name: str, default: str) -> str:
    """An optional enum parameter: ``default`` when absent, ``-1100`` when not in ``allowed``."""
    if value is None:
        return default
    if value not in allowed:
        raise _illegal(name, ", ".join(sorted(allowed)))
    return value
