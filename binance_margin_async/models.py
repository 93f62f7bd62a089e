"""Typed results of the margin REST endpoints, and the one generic decoder that builds them.

Every model is a frozen, slotted, keyword-only dataclass: ``Decimal`` for amounts and prices,
``int`` milliseconds for times, StrEnums where Binance has enums (typed ``Enum | str``: a value
Binance adds tomorrow is kept as the plain string, never an error), and ``raw`` holding the decoded
JSON object untouched, so fields this library does not model yet are never lost.

:func:`decode` is driven by the class's annotations, read once per class on first use: for each
field the wire name (camelCase, or an explicit override for Binance's irregular names) and a
converter. From them it generates and compiles a decoder specialised for that class (see "The
decoder" below for why), so a call does no reflection. Unknown fields are ignored (they stay in
``raw``); missing or ``null`` fields take the field's default. A payload of the wrong shape (a list
where an object is expected, a non-numeric amount, ...) raises :class:`DecodeError` naming the
field, a ``ValueError`` that the REST layer reports as
:class:`~binance_margin_async.errors.InvalidResponse`.

Docs: https://developers.binance.com/docs/margin_trading
"""

from __future__ import annotations

import dataclasses
import functools
import linecache
import operator
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar, cast

__all__ = [
    "ActiveLoanGroup",
    "AssetAmount",
    "AvailableInventory",
    "BnbBurnStatus",
    "BorrowRepayRecord",
    "BorrowRepayRecords",
    "BorrowRepayType",
    "CapitalFlow",
    "CapitalFlowType",
    "ClosedLoanGroup",
    "ClosedLoanGroups",
    "CollateralRatio",
    "CollateralTier",
    "ContingencyType",
    "CrossMarginFeeData",
    "DecodeError",
    "DelistSchedule",
    "DustAccountType",
    "DustAsset",
    "DustAssets",
    "DustConversion",
    "DustLog",
    "DustLogDetail",
    "DustLogEntry",
    "DustTransferResult",
    "Fill",
    "ForceLiquidationRecord",
    "ForceLiquidationRecords",
    "InterestHistory",
    "InterestRate",
    "InterestRecord",
    "InterestType",
    "IsolatedAccountLimit",
    "IsolatedAccountToggle",
    "IsolatedAsset",
    "IsolatedMarginAccount",
    "IsolatedMarginFeeAsset",
    "IsolatedMarginFeeData",
    "IsolatedMarginPair",
    "IsolatedMarginTier",
    "IsolatedPairAccount",
    "LimitPricePairs",
    "LiquidationLoan",
    "LiquidationLoanRepayment",
    "LiquidationLoanRepayments",
    "LiquidationTransfer",
    "ListOrderStatus",
    "ListSchedule",
    "ListStatusType",
    "ListenKey",
    "ListenToken",
    "LoanGroupBorrowRepayRecord",
    "LoanGroupBorrowRepayRecords",
    "LoanGroupClosed",
    "LoanGroupDetail",
    "LoanGroupForceLiquidation",
    "LoanGroupForceLiquidations",
    "LoanGroupInterestHistory",
    "LoanGroupInterestRecord",
    "LoanGroupLiability",
    "LoanGroupLiquidationTransferRecord",
    "LoanGroupLiquidationTransfers",
    "LoanGroupLtv",
    "LoanGroupMember",
    "LoanGroupMemberAccount",
    "LoanGroupTransaction",
    "LoanGroupWallet",
    "ManualLiquidationResult",
    "MarginAccount",
    "MarginAccountType",
    "MarginAsset",
    "MarginLevelStatus",
    "MarginPair",
    "MarginSummary",
    "MarginTransfer",
    "MarginTransferHistory",
    "MarginType",
    "MaxBorrowable",
    "MaxLeverageResult",
    "MaxTransferable",
    "NewOrderRespType",
    "NextHourlyInterestRate",
    "Order",
    "OrderCountUsage",
    "OrderList",
    "OrderListEntry",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Page",
    "PreventedMatch",
    "PriceIndex",
    "RestrictedAssets",
    "RiskBasedLiquidationRatio",
    "SelfTradePreventionMode",
    "SideEffectType",
    "SmallLiabilityCoin",
    "SmallLiabilityExchangeRecord",
    "SmallLiabilityExchangeRecords",
    "SpecialKey",
    "SpecialKeyInfo",
    "SpecialKeyPermissionMode",
    "TimeInForce",
    "Trade",
    "TransactionId",
    "TransferStatus",
    "TransferType",
    "UniversalTransfer",
    "UniversalTransferHistory",
    "UserAsset",
    "decode",
    "decode_list",
]


class DecodeError(ValueError):
    """A response had the wrong shape for its model (the REST layer raises ``InvalidResponse``)."""


# Enums. Members are Binance's wire values; decoded fields are typed ``Enum | str`` so a value
# Binance adds later stays a plain string instead of failing the whole response.


class OrderSide(StrEnum):
    """Order side."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """Margin order types (same as spot)."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"


class TimeInForce(StrEnum):
    """How long an order stays on the book."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class SideEffectType(StrEnum):
    """Automatic borrow/repay attached to an order (MARGIN_BUY / AUTO_BORROW_REPAY cost 1500)."""

    NO_SIDE_EFFECT = "NO_SIDE_EFFECT"
    MARGIN_BUY = "MARGIN_BUY"
    AUTO_REPAY = "AUTO_REPAY"
    AUTO_BORROW_REPAY = "AUTO_BORROW_REPAY"


class OrderStatus(StrEnum):
    """Order status."""

    NEW = "NEW"
    PENDING_NEW = "PENDING_NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PENDING_CANCEL = "PENDING_CANCEL"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"


class NewOrderRespType(StrEnum):
    """How much of the order the placement response carries."""

    ACK = "ACK"
    RESULT = "RESULT"
    FULL = "FULL"


class SelfTradePreventionMode(StrEnum):
    """Self-trade prevention modes (the spot set, which the margin order endpoints accept).

    https://developers.binance.com/docs/binance-spot-api-docs/faqs/stp_faq
    """

    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"
    DECREMENT = "DECREMENT"


class ContingencyType(StrEnum):
    """Order-list kind."""

    OCO = "OCO"
    OTO = "OTO"


class ListStatusType(StrEnum):
    """Order-list status type."""

    RESPONSE = "RESPONSE"
    EXEC_STARTED = "EXEC_STARTED"
    UPDATED = "UPDATED"
    ALL_DONE = "ALL_DONE"


class ListOrderStatus(StrEnum):
    """Order-list order status."""

    EXECUTING = "EXECUTING"
    ALL_DONE = "ALL_DONE"
    REJECT = "REJECT"


class MarginLevelStatus(StrEnum):
    """Risk band of a margin account, from safest to liquidation."""

    EXCESSIVE = "EXCESSIVE"
    NORMAL = "NORMAL"
    MARGIN_CALL = "MARGIN_CALL"
    PRE_LIQUIDATION = "PRE_LIQUIDATION"
    FORCE_LIQUIDATION = "FORCE_LIQUIDATION"


class MarginAccountType(StrEnum):
    """Cross margin account mode."""

    MARGIN_1 = "MARGIN_1"  # Cross Margin Classic
    MARGIN_2 = "MARGIN_2"  # Cross Margin Pro


class TransferType(StrEnum):
    """Universal-transfer directions that touch a margin account (member names spell out
    ``ISOLATED_MARGIN``; values are Binance's ``ISOLATEDMARGIN`` spelling).

    Isolated sources need ``from_symbol``, isolated targets need ``to_symbol``.
    https://developers.binance.com/docs/wallet/asset/user-universal-transfer
    """

    MAIN_MARGIN = "MAIN_MARGIN"
    MARGIN_MAIN = "MARGIN_MAIN"
    # Direct spot <-> isolated moves: used by other clients but not in the wallet page's list
    # at the time of writing; Binance rejects them with an API error if unsupported.
    MAIN_ISOLATED_MARGIN = "MAIN_ISOLATEDMARGIN"
    ISOLATED_MARGIN_MAIN = "ISOLATEDMARGIN_MAIN"
    MARGIN_ISOLATED_MARGIN = "MARGIN_ISOLATEDMARGIN"
    ISOLATED_MARGIN_MARGIN = "ISOLATEDMARGIN_MARGIN"
    ISOLATED_MARGIN_ISOLATED_MARGIN = "ISOLATEDMARGIN_ISOLATEDMARGIN"
    UMFUTURE_MARGIN = "UMFUTURE_MARGIN"
    MARGIN_UMFUTURE = "MARGIN_UMFUTURE"
    CMFUTURE_MARGIN = "CMFUTURE_MARGIN"
    MARGIN_CMFUTURE = "MARGIN_CMFUTURE"
    FUNDING_MARGIN = "FUNDING_MARGIN"
    MARGIN_FUNDING = "MARGIN_FUNDING"
    OPTION_MARGIN = "OPTION_MARGIN"
    MARGIN_OPTION = "MARGIN_OPTION"


class TransferStatus(StrEnum):
    """Status of a transfer or borrow/repay record."""

    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"


class BorrowRepayType(StrEnum):
    """Operation of ``/sapi/v1/margin/borrow-repay``."""

    BORROW = "BORROW"
    REPAY = "REPAY"


class InterestType(StrEnum):
    """How an interest charge arose."""

    PERIODIC = "PERIODIC"
    ON_BORROW = "ON_BORROW"
    PERIODIC_CONVERTED = "PERIODIC_CONVERTED"
    ON_BORROW_CONVERTED = "ON_BORROW_CONVERTED"
    PORTFOLIO = "PORTFOLIO"


class CapitalFlowType(StrEnum):
    """Capital-flow entry types."""

    TRANSFER = "TRANSFER"
    BORROW = "BORROW"
    REPAY = "REPAY"
    BUY_INCOME = "BUY_INCOME"
    BUY_EXPENSE = "BUY_EXPENSE"
    SELL_INCOME = "SELL_INCOME"
    SELL_EXPENSE = "SELL_EXPENSE"
    TRADING_COMMISSION = "TRADING_COMMISSION"
    BUY_LIQUIDATION = "BUY_LIQUIDATION"
    SELL_LIQUIDATION = "SELL_LIQUIDATION"
    REPAY_LIQUIDATION = "REPAY_LIQUIDATION"
    OTHER_LIQUIDATION = "OTHER_LIQUIDATION"
    LIQUIDATION_FEE = "LIQUIDATION_FEE"
    SMALL_BALANCE_CONVERT = "SMALL_BALANCE_CONVERT"
    COMMISSION_RETURN = "COMMISSION_RETURN"
    SMALL_CONVERT = "SMALL_CONVERT"


class MarginType(StrEnum):
    """Cross (``MARGIN``) or isolated, for manual liquidation and inventory queries."""

    MARGIN = "MARGIN"
    ISOLATED = "ISOLATED"


class SpecialKeyPermissionMode(StrEnum):
    """Permissions of an Ed25519 special key."""

    TRADE = "TRADE"
    READ = "READ"


class DustAccountType(StrEnum):
    """Which wallet a small-balance conversion reads from."""

    SPOT = "SPOT"
    MARGIN = "MARGIN"


# Pages

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of a ``current``/``size`` history: ``{"rows": [...], "total": n}``.

    Each history has its own subclass (``InterestHistory`` is ``Page[InterestRecord]``) so that
    ``rows`` decode into that history's record model. ``total`` counts the rows of every page;
    Binance leaves it out on some histories.
    """

    rows: tuple[T, ...] = ()
    total: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Orders


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One fill in a ``FULL`` order response."""

    price: Decimal | None = None
    qty: Decimal | None = None
    commission: Decimal | None = None
    commission_asset: str | None = None
    trade_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A margin order: placement (ACK/RESULT/FULL), query, cancel and order-list report shapes.

    Fields absent from a given shape are ``None``.
    https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-Order
    """

    symbol: str | None = None
    order_id: int | None = None
    client_order_id: str | None = None
    orig_client_order_id: str | None = None
    order_list_id: int | None = None
    transact_time: int | None = None
    time: int | None = None
    update_time: int | None = None
    price: Decimal | None = None
    orig_qty: Decimal | None = None
    executed_qty: Decimal | None = None
    cumulative_quote_qty: Decimal | None = field(
        default=None, metadata={"wire": "cummulativeQuoteQty"}
    )
    orig_quote_order_qty: Decimal | None = None
    status: OrderStatus | str | None = None
    time_in_force: TimeInForce | str | None = None
    type: OrderType | str | None = None
    side: OrderSide | str | None = None
    stop_price: Decimal | None = None
    iceberg_qty: Decimal | None = None
    is_working: bool | None = None
    is_isolated: bool | None = None
    self_trade_prevention_mode: SelfTradePreventionMode | str | None = None
    margin_buy_borrow_amount: Decimal | None = None
    margin_buy_borrow_asset: str | None = None
    fills: tuple[Fill, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderListEntry:
    """An order of an order list, by id."""

    symbol: str | None = None
    order_id: int | None = None
    client_order_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderList:
    """An OCO / OTO / OTOCO order list.

    https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OCO
    """

    order_list_id: int | None = None
    contingency_type: ContingencyType | str | None = None
    list_status_type: ListStatusType | str | None = None
    list_order_status: ListOrderStatus | str | None = None
    list_client_order_id: str | None = None
    transaction_time: int | None = None
    symbol: str | None = None
    is_isolated: bool | None = None
    margin_buy_borrow_amount: Decimal | None = None
    margin_buy_borrow_asset: str | None = None
    orders: tuple[OrderListEntry, ...] = ()
    order_reports: tuple[Order, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """A margin trade (fill) from ``myTrades``.

    ``quote_qty`` and ``order_list_id`` are in the spot trade list, not in the margin one: Binance's
    margin ``myTrades`` response (doc page and examples) carries neither, so both stay ``None`` for
    margin trades; compute the quote amount as ``qty * price``. They are kept so that a response
    that does carry them (and code written against the spot shape) still works.
    https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Trade-List
    """

    id: int | None = None
    symbol: str | None = None
    order_id: int | None = None
    order_list_id: int | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    quote_qty: Decimal | None = None
    commission: Decimal | None = None
    commission_asset: str | None = None
    time: int | None = None
    is_buyer: bool | None = None
    is_maker: bool | None = None
    is_best_match: bool | None = None
    is_isolated: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCountUsage:
    """Current order-count usage for one interval (``rateLimit/order``)."""

    rate_limit_type: str | None = None
    interval: str | None = None
    interval_num: int | None = None
    limit: int | None = None
    count: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreventedMatch:
    """An order expired by self-trade prevention."""

    symbol: str | None = None
    prevented_match_id: int | None = None
    taker_order_id: int | None = None
    maker_symbol: str | None = None
    maker_order_id: int | None = None
    trade_group_id: int | None = None
    self_trade_prevention_mode: SelfTradePreventionMode | str | None = None
    price: Decimal | None = None
    maker_prevented_quantity: Decimal | None = None
    transact_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceLiquidationRecord:
    """A forced-liquidation order."""

    avg_price: Decimal | None = None
    executed_qty: Decimal | None = None
    order_id: int | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    side: OrderSide | str | None = None
    symbol: str | None = None
    time_in_force: TimeInForce | str | None = None
    is_isolated: bool | None = None
    updated_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceLiquidationRecords(Page[ForceLiquidationRecord]):
    """One page of forced-liquidation records."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Liability:
    """A liability (principal and interest of ``asset``) valued in ``liability_asset``."""

    asset: str | None = None
    interest: Decimal | None = None
    principal: Decimal | None = None
    liability_asset: str | None = None
    liability_qty: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualLiquidationResult(_Liability):
    """One liability settled by a manual liquidation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SmallLiabilityCoin(_Liability):
    """A liability eligible for small-liability exchange."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SmallLiabilityExchangeRecord:
    """One small-liability exchange."""

    asset: str | None = None
    amount: Decimal | None = None
    target_asset: str | None = None
    target_amount: Decimal | None = None
    biz_type: str | None = None
    timestamp: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SmallLiabilityExchangeRecords(Page[SmallLiabilityExchangeRecord]):
    """One page of small-liability exchanges."""


# Special (low-latency) keys


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecialKey:
    """A newly created special key. ``secret_key`` is ``None`` for RSA/Ed25519 keys."""

    api_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    type: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecialKeyInfo:
    """An existing special key (never carries a secret)."""

    api_name: str | None = None
    api_key: str | None = None
    ip: str | None = None
    type: str | None = None
    permission_mode: SpecialKeyPermissionMode | str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Liquidation loan


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationLoan:
    """Outstanding cross-margin liquidation loan (bankruptcy deficit)."""

    asset: str | None = None
    amount: Decimal | None = None
    repaid_amount: Decimal | None = None
    remaining_amount: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationLoanRepayment:
    """One liquidation-loan repayment (status ``SUCCESS`` or ``PENDING``)."""

    repay_id: int | None = None
    asset: str | None = None
    amount: Decimal | None = None
    status: str | None = None
    create_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationLoanRepayments(Page[LiquidationLoanRepayment]):
    """One page of liquidation-loan repayments."""


# Borrow / repay / interest


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionId:
    """The transaction id returned by borrow/repay and universal transfer."""

    tran_id: int
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BorrowRepayRecord:
    """One borrow or repay (``type`` is ``AUTO``/``MANUAL`` for repays)."""

    type: str | None = None
    isolated_symbol: str | None = None
    asset: str | None = None
    amount: Decimal | None = None
    principal: Decimal | None = None
    interest: Decimal | None = None
    status: TransferStatus | str | None = None
    timestamp: int | None = None
    tx_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BorrowRepayRecords(Page[BorrowRepayRecord]):
    """One page of borrow/repay records."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InterestRecord:
    """One interest charge."""

    tx_id: int | None = None
    interest_accrued_time: int | None = field(
        default=None, metadata={"wire": "interestAccuredTime"}
    )
    asset: str | None = None
    raw_asset: str | None = None
    principal: Decimal | None = None
    interest: Decimal | None = None
    interest_rate: Decimal | None = None
    type: InterestType | str | None = None
    isolated_symbol: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class InterestHistory(Page[InterestRecord]):
    """One page of interest charges."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InterestRate:
    """A historical daily interest rate."""

    asset: str | None = None
    daily_interest_rate: Decimal | None = None
    timestamp: int | None = None
    vip_level: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class NextHourlyInterestRate:
    """The estimated interest rate of the next hour."""

    asset: str | None = None
    next_hourly_interest_rate: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class _AmountAndLimit:
    """An amount available now, and the account's borrow limit."""

    amount: Decimal | None = None
    borrow_limit: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxBorrowable(_AmountAndLimit):
    """Maximum borrowable amount now, and the account's borrow limit."""


# Accounts


@dataclass(frozen=True, slots=True, kw_only=True)
class _Balance:
    """Balance and liability of one asset of a margin account."""

    asset: str | None = None
    free: Decimal | None = None
    locked: Decimal | None = None
    borrowed: Decimal | None = None
    interest: Decimal | None = None
    net_asset: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAsset(_Balance):
    """One asset of the cross margin account."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginAccount:
    """Cross margin account details.

    https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Account-Details
    """

    created: bool | None = None
    borrow_enabled: bool | None = None
    trade_enabled: bool | None = None
    transfer_in_enabled: bool | None = None
    transfer_out_enabled: bool | None = None
    margin_level: Decimal | None = None
    collateral_margin_level: Decimal | None = None
    total_asset_of_btc: Decimal | None = None
    total_liability_of_btc: Decimal | None = None
    total_net_asset_of_btc: Decimal | None = None
    total_collateral_value_in_usdt: Decimal | None = field(
        default=None, metadata={"wire": "TotalCollateralValueInUSDT"}
    )
    total_open_order_loss_in_usdt: Decimal | None = field(
        default=None, metadata={"wire": "totalOpenOrderLossInUSDT"}
    )
    account_type: MarginAccountType | str | None = None
    user_assets: tuple[UserAsset, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedAsset(_Balance):
    """Base or quote asset of one isolated margin account."""

    borrow_enabled: bool | None = None
    repay_enabled: bool | None = None
    net_asset_of_btc: Decimal | None = None
    total_asset: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedPairAccount:
    """One isolated margin account (one trading pair)."""

    symbol: str | None = None
    base_asset: IsolatedAsset | None = None
    quote_asset: IsolatedAsset | None = None
    isolated_created: bool | None = None
    enabled: bool | None = None
    trade_enabled: bool | None = None
    margin_level: Decimal | None = None
    margin_level_status: MarginLevelStatus | str | None = None
    margin_ratio: Decimal | None = None
    index_price: Decimal | None = None
    liquidate_price: Decimal | None = None
    liquidate_rate: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginAccount:
    """Isolated margin accounts; the BTC totals are absent when ``symbols`` was sent.

    https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Account-Info
    """

    assets: tuple[IsolatedPairAccount, ...] = ()
    total_asset_of_btc: Decimal | None = None
    total_liability_of_btc: Decimal | None = None
    total_net_asset_of_btc: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedAccountToggle:
    """Result of enabling or disabling an isolated account."""

    success: bool | None = None
    symbol: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedAccountLimit:
    """How many isolated accounts are enabled, and the maximum."""

    enabled_account: int | None = None
    max_account: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxLeverageResult:
    """Result of adjusting the cross margin max leverage."""

    success: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapitalFlow:
    """One capital-flow entry (``note`` added 2026-07-10 for institutional loans)."""

    id: int | None = None
    tran_id: int | None = None
    timestamp: int | None = None
    asset: str | None = None
    symbol: str | None = None
    type: CapitalFlowType | str | None = None
    amount: Decimal | None = None
    note: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossMarginFeeData:
    """Cross margin interest and limits for one coin at one VIP level."""

    vip_level: int | None = None
    coin: str | None = None
    transfer_in: bool | None = None
    borrowable: bool | None = None
    daily_interest: Decimal | None = None
    yearly_interest: Decimal | None = None
    borrow_limit: Decimal | None = None
    marginable_pairs: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginFeeAsset:
    """Interest and limit of one asset of an isolated pair."""

    coin: str | None = None
    daily_interest: Decimal | None = None
    borrow_limit: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginFeeData:
    """Isolated margin interest and limits for one pair at one VIP level."""

    vip_level: int | None = None
    symbol: str | None = None
    leverage: Decimal | None = None
    data: tuple[IsolatedMarginFeeAsset, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginSummary:
    """Margin-level thresholds of the account (``tradeCoeff``)."""

    normal_bar: Decimal | None = None
    margin_call_bar: Decimal | None = None
    force_liquidation_bar: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BnbBurnStatus:
    """Whether BNB pays spot fees and margin interest."""

    spot_bnb_burn: bool | None = field(default=None, metadata={"wire": "spotBNBBurn"})
    interest_bnb_burn: bool | None = field(default=None, metadata={"wire": "interestBNBBurn"})
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Transfers


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginTransfer:
    """One transfer into or out of a margin account."""

    amount: Decimal | None = None
    asset: str | None = None
    status: TransferStatus | str | None = None
    timestamp: int | None = None
    tx_id: int | None = None
    type: str | None = None
    trans_from: str | None = None
    trans_to: str | None = None
    from_symbol: str | None = None
    to_symbol: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginTransferHistory(Page[MarginTransfer]):
    """One page of margin transfers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UniversalTransfer:
    """One universal transfer."""

    asset: str | None = None
    amount: Decimal | None = None
    type: TransferType | str | None = None
    status: TransferStatus | str | None = None
    tran_id: int | None = None
    timestamp: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UniversalTransferHistory(Page[UniversalTransfer]):
    """One page of universal transfers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxTransferable(_AmountAndLimit):
    """Maximum amount that can be transferred out now, and the account's borrow limit."""


# Small-balance (dust) conversion


@dataclass(frozen=True, slots=True, kw_only=True)
class DustAsset:
    """An asset that can be converted into BNB."""

    asset: str | None = None
    asset_full_name: str | None = None
    amount_free: Decimal | None = None
    to_btc: Decimal | None = field(default=None, metadata={"wire": "toBTC"})
    to_bnb: Decimal | None = field(default=None, metadata={"wire": "toBNB"})
    to_bnb_off_exchange: Decimal | None = field(default=None, metadata={"wire": "toBNBOffExchange"})
    exchange: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DustAssets:
    """Assets convertible into BNB, and the totals."""

    details: tuple[DustAsset, ...] = ()
    total_transfer_btc: Decimal | None = field(default=None, metadata={"wire": "totalTransferBtc"})
    total_transfer_bnb: Decimal | None = field(default=None, metadata={"wire": "totalTransferBNB"})
    dribblet_percentage: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class _DustTransfer:
    """One asset converted into BNB: ``amount`` in, ``transferred_amount`` BNB out, fee."""

    amount: Decimal | None = None
    from_asset: str | None = None
    operate_time: int | None = None
    service_charge_amount: Decimal | None = None
    transferred_amount: Decimal | None = field(default=None, metadata={"wire": "transferedAmount"})
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DustTransferResult(_DustTransfer):
    """One asset converted into BNB."""

    tran_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DustConversion:
    """Result of converting small balances into BNB."""

    total_service_charge: Decimal | None = None
    total_transferred: Decimal | None = field(default=None, metadata={"wire": "totalTransfered"})
    transfer_result: tuple[DustTransferResult, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DustLogDetail(_DustTransfer):
    """One asset of a past dust conversion (``trans_id``: Binance's spelling on this endpoint)."""

    trans_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DustLogEntry:
    """One past dust conversion."""

    operate_time: int | None = None
    total_transferred_amount: Decimal | None = field(
        default=None, metadata={"wire": "totalTransferedAmount"}
    )
    total_service_charge_amount: Decimal | None = None
    trans_id: int | None = None
    user_asset_dribblet_details: tuple[DustLogDetail, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DustLog:
    """Past dust conversions."""

    total: int | None = None
    user_asset_dribblets: tuple[DustLogEntry, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Market data


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginAsset:
    """A margin asset and its borrow/repay minimums."""

    asset_name: str | None = None
    asset_full_name: str | None = None
    is_borrowable: bool | None = None
    is_mortgageable: bool | None = None
    user_min_borrow: Decimal | None = None
    user_min_repay: Decimal | None = None
    delist_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pair:
    """A margin trading pair and what it allows."""

    symbol: str | None = None
    base: str | None = None
    quote: str | None = None
    is_margin_trade: bool | None = None
    is_buy_allowed: bool | None = None
    is_sell_allowed: bool | None = None
    delist_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginPair(_Pair):
    """A cross margin trading pair."""

    id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginPair(_Pair):
    """An isolated margin trading pair."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CollateralTier:
    """One value band of a collateral ratio (no ``max_usd_value`` for the open top band)."""

    min_usd_value: Decimal | None = None
    max_usd_value: Decimal | None = None
    discount_rate: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CollateralRatio:
    """Cross margin collateral ratio tiers shared by a group of assets."""

    collaterals: tuple[CollateralTier, ...] = ()
    asset_names: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginTier:
    """One tier of an isolated pair."""

    symbol: str | None = None
    tier: int | None = None
    effective_multiple: Decimal | None = None
    initial_risk_ratio: Decimal | None = None
    liquidation_risk_ratio: Decimal | None = None
    base_asset_max_borrowable: Decimal | None = None
    quote_asset_max_borrowable: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Schedule:
    """Cross margin assets and isolated pairs affected by one scheduled change."""

    cross_margin_assets: tuple[str, ...] = ()
    isolated_margin_symbols: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DelistSchedule(_Schedule):
    """Assets and pairs leaving margin at ``delist_time``."""

    delist_time: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListSchedule(_Schedule):
    """Assets and pairs joining margin at ``list_time``."""

    list_time: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AvailableInventory:
    """Lendable inventory per asset."""

    assets: dict[str, Decimal] = field(default_factory=dict)
    update_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceIndex:
    """Margin price index of a symbol."""

    symbol: str | None = None
    price: Decimal | None = None
    calc_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitPricePairs:
    """Pairs whose limit price must stay within a band around the index price."""

    cross_margin_symbols: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskBasedLiquidationRatio:
    """Risk-based liquidation ratio of an asset."""

    asset: str | None = None
    risk_based_liquidation_ratio: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestrictedAssets:
    """Assets that cannot open longs, or whose collateral cap is exhausted."""

    open_long_restricted_asset: tuple[str, ...] = ()
    max_collateral_exceeded_asset: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Streams


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenToken:
    """A user-data listen token and its expiry (ms).

    https://developers.binance.com/docs/margin_trading/trade-data-stream/Listen-Token-Websocket-API
    """

    token: str
    expiration_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenKey:
    """A risk-stream listen key."""

    listen_key: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# Institutional loan (risk units)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupLiability:
    """A liability of a risk unit."""

    asset_name: str | None = None
    principal: Decimal | None = None
    interest: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupWallet:
    """One wallet of a risk-unit member."""

    account_type: str | None = None
    net_equity: Decimal | None = None
    maintain_margin: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupMemberAccount:
    """A risk-unit member account and its wallets."""

    email: str | None = None
    type: str | None = None
    wallets: tuple[LoanGroupWallet, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupLtv:
    """Risk-unit LTV details.

    https://developers.binance.com/docs/institutional_loan/account
    """

    group_id: int | None = None
    parent_email: str | None = None
    credit_email: str | None = None
    update_time: int | None = None
    ltv: Decimal | None = None
    total_net_equity: Decimal | None = None
    total_maintenance_margin: Decimal | None = None
    total_liability: Decimal | None = None
    parent_account_frozen_amount: Decimal | None = None
    max_transfer_out_amount: Decimal | None = None
    max_allowed_borrow_limit: Decimal | None = None
    liabilities: tuple[LoanGroupLiability, ...] = ()
    collateral_accounts: tuple[LoanGroupMemberAccount, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupDetail(LoanGroupLtv):
    """A risk unit's details from the first-version queries (``GET /sapi/v1/margin/loan-groups``
    for the parent account, ``GET /sapi/v1/margin/loan-group`` for the credit account).

    Binance's change log (institutional loan, 2025-05-16) names these endpoints but documents no
    response; this model assumes the risk-unit detail record that ``ltv-details`` documents (its
    fields, all optional), and keeps whatever else Binance sends in ``raw``.

    https://developers.binance.com/docs/institutional_loan/change-log
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupMember:
    """A member of an active risk unit."""

    email: str | None = None
    type: str | None = None
    enable_margin: bool | None = None
    enable_spot: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveLoanGroup:
    """An active risk unit and its members."""

    group_id: int | None = None
    members: tuple[LoanGroupMember, ...] = ()
    create_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedLoanGroup:
    """A closed risk unit."""

    group_id: int | None = None
    parent_email: str | None = None
    credit_email: str | None = None
    enabled: bool | None = None
    create_time: int | None = None
    close_time: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedLoanGroups(Page[ClosedLoanGroup]):
    """One page of closed risk units."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupClosed:
    """Result of closing a risk unit."""

    group_id: int | None = None
    status: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupTransaction:
    """Result of a risk-unit borrow or repay."""

    transaction_id: int | None = None
    amount: Decimal | None = None
    status: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupBorrowRepayRecord:
    """One risk-unit borrow or repay."""

    tran_id: int | None = None
    asset_name: str | None = None
    amount: Decimal | None = None
    principal: Decimal | None = None
    interest: Decimal | None = None
    status: str | None = None
    type: str | None = None
    timestamp: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupBorrowRepayRecords(Page[LoanGroupBorrowRepayRecord]):
    """One page of risk-unit borrows/repays."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupInterestRecord:
    """One risk-unit interest charge."""

    group_id: int | None = None
    asset_name: str | None = None
    principal: Decimal | None = None
    interest_rate: Decimal | None = None
    interest: Decimal | None = None
    interest_timestamp: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupInterestHistory(Page[LoanGroupInterestRecord]):
    """One page of risk-unit interest charges."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupForceLiquidation:
    """One risk-unit forced liquidation (``liquidation_snapshot`` kept as decoded JSON)."""

    group_id: int | None = None
    start_ltv: Decimal | None = None
    end_ltv: Decimal | None = None
    liquidation_start_time: int | None = None
    liquidation_end_time: int | None = None
    total_net_equity: Decimal | None = None
    total_maintenance_margin: Decimal | None = None
    total_liability: Decimal | None = None
    liquidation_snapshot: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupForceLiquidations(Page[LoanGroupForceLiquidation]):
    """One page of risk-unit forced liquidations."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetAmount:
    """An asset and an amount."""

    asset_name: str | None = None
    amount: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationTransfer:
    """One transfer made during a risk-unit liquidation."""

    transfer_time: int | None = None
    from_uid: int | None = None
    from_account_type: str | None = None
    to_uid: int | None = None
    to_account_type: str | None = None
    status: str | None = None
    assets: tuple[AssetAmount, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupLiquidationTransferRecord:
    """Transfers of one risk-unit liquidation."""

    liquidation_id: int | None = None
    liquidation_transfer_record: tuple[LiquidationTransfer, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoanGroupLiquidationTransfers(Page[LoanGroupLiquidationTransferRecord]):
    """One page of risk-unit liquidation transfers."""


# The decoder
#
# Two decoders with one meaning. The *reference* decoder (`_decode_reference`) walks a plan of
# (wire name, field name, converter) built from the annotations and calls the model's `__init__`:
# short, obviously right, and precise in its errors. It is also slow for a hot path (~25 µs for a
# MarginAccount with 5 assets, ten times `orjson.loads` of the same body): one converter call per
# field, a kwargs dict, and the frozen dataclass `__init__`, which alone costs more than all the
# conversions. So `decode` runs a decoder *generated* per class instead (`_build_decoder`): Python
# source specialised for that class, compiled once with `exec`, with the common conversions inlined
# (`type(v) is str` checks, `Decimal(v)`, an enum table lookup), nested models calling their own
# generated decoder, and the instance filled through its slot descriptors, which is what the frozen
# dataclass `__init__` ends up doing, minus the call and the `object.__setattr__` lookups. Only the
# expected shapes take the inlined path; other values go to the reference converters (numbers sent
# as strings and the like). If anything fails, the generated decoder re-runs the reference decoder
# on the same object, which raises the `DecodeError` naming the field: errors are rare, paying twice
# for them keeps a single source for messages.

M = TypeVar("M")
_Converter = Callable[[Any], Any]

#: Reference plans by class: ``(wire name, field name, converter)``; built once per class.
_PLANS: dict[type, tuple[tuple[str, str, _Converter], ...]] = {}
#: Generated decoders by class; built once per class, on first use.
_DECODERS: dict[type, _Converter] = {}


class _ItemError(DecodeError):
    """A wrong array item or object value; its message starts with ``[index]`` or ``['key']``,
    which joins the field name in the path: ``MarginAccount.user_assets[2]: UserAsset.free: ...``.
    """


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _to_decimal(value: Any) -> Decimal:
    kind = type(value)
    if kind is str:
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise DecodeError(f"expected a decimal, got {_describe(value)}") from None
        if result.is_nan():
            raise DecodeError(f"expected a decimal, got {_describe(value)}")
        return result
    if kind is int:
        return Decimal(value)
    if kind is float:
        # repr() is the shortest round-tripping form: 0.1 -> Decimal("0.1"), not the binary value
        return Decimal(repr(value))
    raise DecodeError(f"expected a decimal, got {_describe(value)}")


def _to_int(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return cast(int, value)
    if kind is str:
        try:
            return int(value)
        except ValueError:
            raise DecodeError(f"expected an integer, got {_describe(value)}") from None
    if kind is float and value.is_integer():
        return int(value)
    raise DecodeError(f"expected an integer, got {_describe(value)}")


def _to_str(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return cast(str, value)
    # Binance sends some identifiers (uids, ids) as numbers where the docs say string.
    if kind is int or kind is float:
        return str(value)
    raise DecodeError(f"expected a string, got {_describe(value)}")


_BOOL_STRINGS: Final = {"true": True, "false": False, "TRUE": True, "FALSE": False}


def _to_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    if type(value) is str:
        found = _BOOL_STRINGS.get(value)
        if found is not None:
            return found
    raise DecodeError(f"expected a boolean, got {_describe(value)}")


def _to_dict(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise DecodeError(f"expected an object, got {_describe(value)}")
    return cast(dict[str, Any], value)


def _identity(value: Any) -> Any:
    return value


_SCALARS: Final[dict[Any, _Converter]] = {
    Decimal: _to_decimal,
    int: _to_int,
    str: _to_str,
    bool: _to_bool,
    Any: _identity,
}


def _enum_members(enum: type[StrEnum]) -> dict[str, StrEnum]:
    return {member.value: member for member in enum}


def _enum_converter(enum: type[StrEnum]) -> _Converter:
    members = _enum_members(enum)

    def convert(value: Any) -> StrEnum | str:
        if type(value) is not str:
            raise DecodeError(f"expected a {enum.__name__} string, got {_describe(value)}")
        # An unknown value is kept as the plain string: Binance adds enum values without notice.
        return members.get(value, value)

    return convert


def _optional(inner: _Converter, *, blank_is_none: bool) -> _Converter:
    def convert(value: Any) -> Any:
        if value is None or (blank_is_none and value == ""):
            return None
        return inner(value)

    return convert


def _sequence(item: _Converter) -> _Converter:
    def convert(value: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise DecodeError(f"expected an array, got {_describe(value)}")
        items = []
        for index, element in enumerate(value):
            try:
                items.append(item(element))
            except DecodeError as exc:
                raise _ItemError(f"[{index}]: {exc}") from None
        return tuple(items)

    return convert


def _mapping(item: _Converter) -> _Converter:
    def convert(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise DecodeError(f"expected an object, got {_describe(value)}")
        items = {}
        for key, element in value.items():
            try:
                items[str(key)] = item(element)
            except DecodeError as exc:
                raise _ItemError(f"[{key!r}]: {exc}") from None
        return items

    return convert


def _model(cls: type) -> _Converter:
    def convert(value: Any) -> Any:
        return _decode_reference(cls, value)

    return convert


def _core(annotation: Any) -> tuple[Any, bool]:
    """Split ``X | None`` into ``(X, True)``; ``Enum | str`` stays whole (it is one value kind)."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        args = typing.get_args(annotation)
        members = [arg for arg in args if arg is not type(None)]
        if len(members) < len(args):
            return functools.reduce(operator.or_, members), True
    return annotation, False


def _enum_of(annotation: Any) -> type[StrEnum] | None:
    """The enum of an ``Enum | str`` annotation, else None."""
    if typing.get_origin(annotation) not in (types.UnionType, typing.Union):
        return None
    members = typing.get_args(annotation)
    enums = [arg for arg in members if isinstance(arg, type) and issubclass(arg, StrEnum)]
    return enums[0] if enums and str in members and len(members) == 2 else None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def _converter(annotation: Any) -> _Converter:
    """Turn a field annotation into a reference converter (runs once per field, at plan time)."""
    scalar = _SCALARS.get(annotation)
    if scalar is not None:
        return scalar
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return _enum_converter(annotation)
    if _is_model(annotation):
        return _model(annotation)
    core, optional = _core(annotation)
    if optional:
        # "" means "no value" for optional numbers (Binance sends it for unset prices).
        return _optional(_converter(core), blank_is_none=core in (Decimal, int))
    enum = _enum_of(annotation)
    if enum is not None:
        return _enum_converter(enum)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if (origin is tuple and args[1:] == (Ellipsis,)) or (origin is list and len(args) == 1):
        return _sequence(_converter(args[0]))
    if origin is dict and len(args) == 2 and args[0] is str:
        return _to_dict if args[1] is Any else _mapping(_converter(args[1]))
    raise TypeError(f"unsupported field annotation {annotation!r}")


def _hints(cls: type) -> dict[str, Any]:
    """The field annotations of ``cls``, with the type arguments of its generic bases filled in.

    ``InterestHistory(Page[InterestRecord])`` inherits ``rows: tuple[T, ...]``; decoding needs
    ``tuple[InterestRecord, ...]``. A type variable no base binds (``Page`` itself) is ``Any``:
    its values stay decoded JSON.
    """
    bindings: dict[Any, Any] = {}
    # Subclass first: a binding found here resolves the type arguments of the bases further up.
    for klass in cls.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            params = getattr(typing.get_origin(base), "__parameters__", ())
            args = [bindings.get(arg, arg) for arg in typing.get_args(base)]
            bindings.update(zip(params, args, strict=False))
    hints = typing.get_type_hints(cls)
    for name, hint in hints.items():
        if isinstance(hint, TypeVar):
            hints[name] = bindings.get(hint, Any)
        elif getattr(hint, "__parameters__", ()):
            hints[name] = hint[tuple(bindings.get(param, Any) for param in hint.__parameters__)]
    return hints


def _plan(cls: type) -> tuple[tuple[str, str, _Converter], ...]:
    if not _is_model(cls):
        raise TypeError(f"{cls!r} is not a model class")
    hints = _hints(cls)
    plan = tuple(
        (_wire(f), f.name, _converter(hints[f.name]))
        for f in dataclasses.fields(cls)
        if f.name != "raw"
    )
    _PLANS[cls] = plan
    return plan


def _wire(f: dataclasses.Field[Any]) -> str:
    return cast(str, f.metadata.get("wire") or _camel(f.name))


def _decode_reference(cls: type[M], data: Any) -> M:
    """Plan-driven decoder: the meaning of :func:`decode`, and the source of its error messages."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _plan(cls)
    if type(data) is not dict:
        raise DecodeError(f"{cls.__name__}: expected an object, got {_describe(data)}")
    kwargs: dict[str, Any] = {"raw": data}
    name = ""
    try:
        for wire, name, convert in plan:
            value = data.get(wire)
            if value is not None:
                kwargs[name] = convert(value)
    except _ItemError as exc:
        raise DecodeError(f"{cls.__name__}.{name}{exc}") from None
    except DecodeError as exc:
        raise DecodeError(f"{cls.__name__}.{name}: {exc}") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        # A required field (e.g. ListenToken.token) was missing or null.
        raise DecodeError(f"{cls.__name__}: {exc}") from None


# Source of one field in a generated decoder, by kind of value. `v` holds `data.get(wire)`; the
# first branch is the inlined common case, `_convert_<name>` the field's reference converter
# (lenient forms, or the DecodeError that sends the object to the reference decoder). `{default}`
# is the field's default, used for a missing or null field, like `__init__` would.
_FIELD_SOURCE: Final = {
    "str": """\
if type(v) is not str:
    v = {default} if v is None else _convert_{name}(v)""",
    "int": """\
if type(v) is not int:
    v = {default} if v is None else _convert_{name}(v)""",
    "bool": """\
if v is not True and v is not False:
    v = {default} if v is None else _convert_{name}(v)""",
    # "" is left to the converter: None for optional fields, an error otherwise.
    "decimal": """\
if type(v) is str and v:
    d = _memo_get(v)
    v = _new_decimal(v) if d is None else d
else:
    v = {default} if v is None else _convert_{name}(v)""",
    "enum": """\
if type(v) is str:
    v = _members_{name}.get(v, v)
else:
    v = {default} if v is None else _convert_{name}(v)""",
    "model": """\
if type(v) is dict:
    v = _decode_{name}(v)
else:
    v = {default} if v is None else _convert_{name}(v)""",
    "sequence": """\
if type(v) is list:
    v = tuple(map(_item_{name}, v))
else:
    v = {default} if v is None else _convert_{name}(v)""",
    "other": """\
v = {default} if v is None else _convert_{name}(v)""",
}

_DECODER_HEAD: Final = """\
def decode_{cls}(data):
    if type(data) is not dict:
        return _reference(_cls, data)  # raises the DecodeError
    get = data.get
    self = _new(_cls)
    try:
"""

_DECODER_TAIL: Final = """\
    except (DecodeError, ArithmeticError):  # ArithmeticError: decimal.InvalidOperation
        # A wrong shape somewhere: the reference decoder raises the error naming the field.
        return _reference(_cls, data)
    return self
"""


#: Decimals by wire text, for the generated decoders. Binance repeats a few texts a lot (a margin
#: account lists every margin asset, most of them "0.00000000"), and a dict hit costs a quarter of
#: `Decimal(text)` plus its NaN check. Decimals are immutable, so sharing them is safe. The memo is
#: emptied when full: that bounds its memory with no bookkeeping on hits.
_DECIMAL_MEMO: dict[str, Decimal] = {}
_DECIMAL_MEMO_SIZE: Final = 1024


def _new_decimal(text: str) -> Decimal:
    """``Decimal(text)`` for a non-empty string, remembered; NaN raises (to the reference path)."""
    result = Decimal(text)
    if result.is_nan():
        raise DecodeError(text)
    if len(_DECIMAL_MEMO) >= _DECIMAL_MEMO_SIZE:
        _DECIMAL_MEMO.clear()
    _DECIMAL_MEMO[text] = result
    return result


def _missing() -> Any:
    """Default of a required field: its absence sends the object to the reference decoder."""
    raise DecodeError("missing required field")


def _field_kind(annotation: Any, namespace: dict[str, Any], name: str) -> str:
    """Pick the source template of a field, adding what it refers to to ``namespace``."""
    core, _ = _core(annotation)
    if core is str or core is int or core is bool:
        return core.__name__
    if core is Decimal:
        return "decimal"
    enum = _enum_of(core)
    if enum is not None:
        namespace[f"_members_{name}"] = _enum_members(enum)
        return "enum"
    if _is_model(core):
        namespace[f"_decode_{name}"] = _decoder(core)
        return "model"
    origin, args = typing.get_origin(core), typing.get_args(core)
    if (origin is tuple and args[1:] == (Ellipsis,)) or (origin is list and len(args) == 1):
        item = args[0]
        namespace[f"_item_{name}"] = _decoder(item) if _is_model(item) else _converter(item)
        return "sequence"
    return "other"


def _build_decoder(cls: type) -> _Converter:
    """Generate, compile and register the fast decoder of ``cls`` (see "The decoder" above)."""
    # The reference plan validates cls, and its converters are the generated code's slow branches.
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _plan(cls)
    if hasattr(cls, "__post_init__") or any(
        "__slots__" not in klass.__dict__ for klass in cls.__mro__ if klass is not object
    ):
        raise TypeError(f"{cls.__name__}: models must be slotted, without __post_init__")
    hints = _hints(cls)
    converters = {name: convert for _, name, convert in plan}
    namespace: dict[str, Any] = {
        "_cls": cls,
        "_new": object.__new__,
        "_reference": _decode_reference,
        "_missing": _missing,
        "_memo_get": _DECIMAL_MEMO.get,
        "_new_decimal": _new_decimal,
        "DecodeError": DecodeError,
    }
    source = [_DECODER_HEAD.format(cls=cls.__name__)]
    for f in dataclasses.fields(cls):
        name = f.name
        # The slot's own setter: bypasses the frozen __setattr__, as the dataclass __init__ does.
        # Found on the class that declares the field: a base class for inherited fields.
        slot = next(klass.__dict__[name] for klass in cls.__mro__ if name in klass.__dict__)
        namespace[f"_set_{name}"] = slot.__set__
        if name == "raw":
            source.append("        _set_raw(self, data)\n")
            continue
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = f.default
            default = f"_default_{name}"
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = f.default_factory
            default = f"_factory_{name}()"
        else:
            default = "_missing()"
        namespace[f"_convert_{name}"] = converters[name]
        kind = _field_kind(hints[name], namespace, name)
        body = _FIELD_SOURCE[kind].format(name=name, default=default)
        source.append(f"        v = get({_wire(f)!r})\n")
        source.append(textwrap.indent(body, " " * 8) + "\n")
        source.append(f"        _set_{name}(self, v)\n")
    source.append(_DECODER_TAIL)
    text = "".join(source)
    filename = f"<generated decoder of {cls.__module__}.{cls.__qualname__}>"
    exec(compile(text, filename, "exec"), namespace)
    # Let tracebacks and debuggers show the generated lines.
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    decoder = cast(_Converter, namespace[f"decode_{cls.__name__}"])
    _DECODERS[cls] = decoder
    return decoder


def _decoder(cls: type) -> _Converter:
    return _DECODERS.get(cls) or _build_decoder(cls)


def decode(cls: type[M], data: Any) -> M:
    """Build a ``cls`` model from decoded JSON ``data`` (a dict).

    Unknown fields and enum values are kept (in ``raw``, and as plain strings); missing or null
    fields take their default; ``""`` is ``None`` for optional numbers. Raises
    :class:`DecodeError` naming the field (``Order.fills[1]: Fill.price: ...``) when ``data`` or
    one of its fields has the wrong shape.
    """
    decoder = _DECODERS.get(cls) or _build_decoder(cls)
    return cast(M, decoder(data))


def decode_list(cls: type[M], data: Any) -> list[M]:
    """Build a list of ``cls`` models from a decoded JSON array."""
    if type(data) is not list:
        raise DecodeError(f"list of {cls.__name__}: expected an array, got {_describe(data)}")
    decoder = _DECODERS.get(cls) or _build_decoder(cls)
    items: list[M] = []
    for index, item in enumerate(cast(Sequence[Any], data)):
        try:
            items.append(decoder(item))
        except DecodeError as exc:
            raise DecodeError(f"list of {cls.__name__}[{index}]: {exc}") from None
    return items
