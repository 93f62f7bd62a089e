"""Types, wire constants, internal state and pure helpers of the fake venue's ledger.

Split out of :mod:`.ledger` (the facade); the behaviour layers build on :class:`_LedgerCore`
in this order: risk → wire rendering → wallets and loans → orders and matching → order lists.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Final, Literal

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


def _res_need(res: _Reservation) -> Decimal:
    """What a reservation must hold: the largest need of its live orders (one lock per OCO)."""
    return max((_need(o) for o in res.holders if o.is_live), default=_ZERO)


# ---------------------------------------------------------------------------------------------
# The ledger's state and lookups, shared by every layer of :class:`~.ledger.Ledger`


class _LedgerCore:
    """Configuration, books, id counters and lookups; the layers above add behaviour."""

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

    def _wallet(self, acct: _Account, scope: str) -> _Wallet:
        return acct.cross if scope == _CROSS else acct.isolated[scope]
