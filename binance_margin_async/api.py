"""`MarginAPI`: one typed async method per margin REST endpoint, built on one abstract `_call`.

Each method validates its arguments (:mod:`.params`, raising ``ParameterError`` before anything is
sent), builds ``params`` as ``(name, value)`` string pairs (mostly in Binance's documented order;
the server does not depend on it, and the signature covers the query exactly as sent), calls
:meth:`MarginAPI._call` with the endpoint from :data:`.endpoints.ENDPOINTS`, and decodes the JSON
result into a model (:mod:`.models`). ``timestamp``, ``recvWindow`` and ``signature`` are added by
the transport (``MarginClient`` in :mod:`.rest`), never here. A response of the wrong shape
raises :class:`~.errors.InvalidResponse`.

Orders and order lists always carry a client id (``newClientOrderId`` / ``listClientOrderId``),
generated when the caller gives none and passed to ``_call`` as ``client_order_id`` so that an
unknown outcome (:class:`~.errors.ExecutionStatusUnknown`) can be resolved by querying it.

History endpoints have ``iter_*`` companions: async iterators that walk ``current``/``size`` pages,
``fromId`` cursors or (capital flow) 7-day windows until the data is exhausted. An iterator builds
its filters with the same private builder as its ``get_*`` method, so it validates them once, when
called, not at the first ``async for`` step; one shared walker per paging style does the requests.

Docs: https://developers.binance.com/docs/margin_trading
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final, TypeVar

import orjson

from . import params as P
from .endpoints import ENDPOINTS, EXCHANGE_INFO, SERVER_TIME, SPOT_ORDER_ENDPOINTS, Endpoint
from .errors import InvalidResponse, ParameterError
from .models import (
    ActiveLoanGroup,
    AvailableInventory,
    BnbBurnStatus,
    BorrowRepayRecord,
    BorrowRepayRecords,
    BorrowRepayType,
    CancelReplaceResult,
    CapitalFlow,
    CapitalFlowType,
    ClosedLoanGroup,
    ClosedLoanGroups,
    CollateralRatio,
    CrossMarginFeeData,
    DecodeError,
    DelistSchedule,
    DustAccountType,
    DustAssets,
    DustConversion,
    DustLog,
    ForceLiquidationRecord,
    ForceLiquidationRecords,
    InterestHistory,
    InterestRate,
    InterestRecord,
    IsolatedAccountLimit,
    IsolatedAccountToggle,
    IsolatedMarginAccount,
    IsolatedMarginFeeData,
    IsolatedMarginPair,
    IsolatedMarginTier,
    LimitPricePairs,
    LiquidationLoan,
    LiquidationLoanRepayment,
    LiquidationLoanRepayments,
    ListenKey,
    ListenToken,
    ListSchedule,
    LoanGroupBorrowRepayRecord,
    LoanGroupBorrowRepayRecords,
    LoanGroupClosed,
    LoanGroupDetail,
    LoanGroupForceLiquidation,
    LoanGroupForceLiquidations,
    LoanGroupInterestHistory,
    LoanGroupInterestRecord,
    LoanGroupLiquidationTransferRecord,
    LoanGroupLiquidationTransfers,
    LoanGroupLtv,
    LoanGroupTransaction,
    ManualLiquidationResult,
    MarginAccount,
    MarginAsset,
    MarginPair,
    MarginSummary,
    MarginTransfer,
    MarginTransferHistory,
    MarginType,
    MaxBorrowable,
    MaxLeverageResult,
    MaxTransferable,
    NewOrderRespType,
    NextHourlyInterestRate,
    Order,
    OrderCountUsage,
    OrderList,
    OrderSide,
    OrderType,
    Page,
    PreventedMatch,
    PriceIndex,
    RestrictedAssets,
    RiskBasedLiquidationRatio,
    SelfTradePreventionMode,
    SideEffectType,
    SmallLiabilityCoin,
    SmallLiabilityExchangeRecord,
    SmallLiabilityExchangeRecords,
    SpecialKey,
    SpecialKeyInfo,
    SpecialKeyPermissionMode,
    TimeInForce,
    Trade,
    TransactionId,
    TransferType,
    UniversalTransfer,
    UniversalTransferHistory,
    decode,
    decode_list,
)
from .params import AmountLike
from .symbols import ExchangeInfo, SymbolInfo, decode_exchange_info

__all__ = ["MarginAPI"]

M = TypeVar("M")
R = TypeVar("R")
PG = TypeVar("PG", bound=Page[Any])

_DAY_MS: Final = 24 * 60 * 60 * 1000
_CAPITAL_FLOW_DAYS: Final = P.CAPITAL_FLOW_WINDOW_MS // _DAY_MS
#: Maximum ``limit`` of allOrders; the other ``limit`` parameters go up to ``_MAX_LIMIT``.
_MAX_ORDERS_LIMIT: Final = 500
_MAX_LIMIT: Final = 1000
# More than InvalidResponse keeps: it redacts secrets (by their names) first, then cuts.
_EXCERPT_CHARS: Final = 800

_STOP_TYPES: Final = frozenset({"STOP_LOSS", "TAKE_PROFIT"})
_STOP_LIMIT_TYPES: Final = frozenset({"STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
# Which order types take each optional order parameter (Binance answers -1106 "sent when not
# required" otherwise): a price for limit kinds, a trigger for stop kinds, a time in force for
# LIMIT and stop-limit kinds, an iceberg quantity for limit kinds.
_PRICED_TYPES: Final = frozenset({"LIMIT", "LIMIT_MAKER"}) | _STOP_LIMIT_TYPES
_TRIGGERED_TYPES: Final = _STOP_TYPES | _STOP_LIMIT_TYPES
_TIME_IN_FORCE_TYPES: Final = frozenset({"LIMIT"}) | _STOP_LIMIT_TYPES
_PRICED_OR_TRIGGERED_TYPES: Final = _PRICED_TYPES | _TRIGGERED_TYPES
# OTOCO pending legs follow the OCO rules: a LIMIT_MAKER leg and/or stop (limit) legs.
_OTOCO_LEG_TYPES: Final = frozenset({"LIMIT_MAKER"}) | _STOP_TYPES | _STOP_LIMIT_TYPES


def _excerpt(data: Any) -> str:
    return repr(data)[:_EXCERPT_CHARS]


def _one(cls: type[M], data: Any) -> M:
    try:
        return decode(cls, data)
    except DecodeError as exc:
        raise InvalidResponse(200, _excerpt(data), str(exc)) from None


def _many(cls: type[M], data: Any) -> list[M]:
    try:
        return decode_list(cls, data)
    except DecodeError as exc:
        raise InvalidResponse(200, _excerpt(data), str(exc)) from None


def _put(params: list[tuple[str, str]], key: str, value: str | None) -> None:
    if value is not None:
        params.append((key, value))


def _put_isolated(params: list[tuple[str, str]], is_isolated: bool) -> None:
    # Default is FALSE (cross), so only the isolated case is sent.
    if P.boolean("is_isolated", is_isolated):
        params.append(("isIsolated", "TRUE"))


def _range(
    start_time: int | None, end_time: int | None, *, max_days: int | None = None
) -> list[tuple[str, str]]:
    """``startTime``/``endTime`` of a history query, checked (span of at most ``max_days``)."""
    if max_days is None:
        start, end = P.time_range(start_time, end_time)
    else:
        span = "24 hours" if max_days == 1 else f"{max_days} days"
        start, end = P.time_range(
            start_time, end_time, max_span_ms=max_days * _DAY_MS, span_text=span
        )
    params: list[tuple[str, str]] = []
    _put(params, "startTime", start)
    _put(params, "endTime", end)
    return params


def _client_id(name: str, value: str | None) -> str:
    """The caller's client order id, checked, or a generated one."""
    return P.client_order_id(name, value) or P.generate_client_order_id()


def _put_order_options(
    params: list[tuple[str, str]],
    new_order_resp_type: NewOrderRespType | str | None,
    side_effect_type: SideEffectType | str | None,
    self_trade_prevention_mode: SelfTradePreventionMode | str | None,
    auto_repay_at_cancel: bool | None,
    time_in_force: str | None = None,
) -> None:
    """The options shared by orders and order lists (``time_in_force``: plain orders only)."""
    _put(
        params,
        "newOrderRespType",
        P.enum_value("new_order_resp_type", new_order_resp_type, NewOrderRespType),
    )
    _put(
        params,
        "sideEffectType",
        P.enum_value("side_effect_type", side_effect_type, SideEffectType),
    )
    _put(params, "timeInForce", time_in_force)
    _put(
        params,
        "selfTradePreventionMode",
        P.enum_value(
            "self_trade_prevention_mode", self_trade_prevention_mode, SelfTradePreventionMode
        ),
    )
    if auto_repay_at_cancel is not None:
        params.append(
            ("autoRepayAtCancel", P.upper_bool("auto_repay_at_cancel", auto_repay_at_cancel))
        )


def _list_head(
    symbol: str, is_isolated: bool, list_client_order_id: str | None
) -> tuple[list[tuple[str, str]], str]:
    """The first parameters of every order list, and its (given or generated) client id."""
    list_id = _client_id("list_client_order_id", list_client_order_id)
    params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
    _put_isolated(params, is_isolated)
    params.append(("listClientOrderId", list_id))
    return params, list_id


def _working_leg(
    working_type: OrderType | str,
    working_side: OrderSide | str,
    working_price: AmountLike,
    working_quantity: AmountLike,
    client_order_id: str | None,
    iceberg_qty: AmountLike | None,
    time_in_force: TimeInForce | str | None,
) -> list[tuple[str, str]]:
    """The working order of an OTO or OTOCO (LIMIT or LIMIT_MAKER), checked and formatted."""
    kind = P.enum_value("working_type", working_type, OrderType, required=True)
    if kind not in ("LIMIT", "LIMIT_MAKER"):
        raise ParameterError("working_type", "must be LIMIT or LIMIT_MAKER")
    price = P.amount("working_price", working_price, required=True)
    quantity = P.amount("working_quantity", working_quantity, required=True)
    tif = P.enum_value("working_time_in_force", time_in_force, TimeInForce)
    iceberg = P.amount("working_iceberg_qty", iceberg_qty)
    _order_leg_rules(
        "working_",
        kind,
        quantity=quantity,
        price=price,
        stop_price=None,
        trailing_delta=None,
        time_in_force=tif,
        iceberg_qty=iceberg,
    )
    leg = [
        ("workingType", kind),
        ("workingSide", P.enum_value("working_side", working_side, OrderSide, required=True)),
    ]
    _put(leg, "workingClientOrderId", P.client_order_id("working_client_order_id", client_order_id))
    leg += [("workingPrice", price), ("workingQuantity", quantity)]
    _put(leg, "workingIcebergQty", iceberg)
    _put(leg, "workingTimeInForce", tif)
    return leg


def _pending_leg(
    prefix: str,
    wire: str,
    kind: str,
    quantity: str,
    client_order_id: str | None,
    price: AmountLike | None,
    stop_price: AmountLike | None,
    trailing_delta: int | None,
    iceberg_qty: AmountLike | None,
    time_in_force: TimeInForce | str | None,
) -> list[tuple[str, str]]:
    """A pending order of an OTO (``pending``) or OTOCO (``pendingAbove``/``pendingBelow``), checked
    and formatted; ``prefix`` is the Python prefix of its arguments, for error messages.

    ``quantity`` is checked against the leg's type but sent by the caller: an OTOCO's two legs
    share one ``pendingQuantity``.
    """
    price_s = P.amount(prefix + "price", price)
    stop = P.amount(prefix + "stop_price", stop_price)
    trailing = P.integer(prefix + "trailing_delta", trailing_delta, minimum=1)
    tif = P.enum_value(prefix + "time_in_force", time_in_force, TimeInForce)
    iceberg = P.amount(prefix + "iceberg_qty", iceberg_qty)
    _order_leg_rules(
        prefix,
        kind,
        quantity=quantity,
        price=price_s,
        stop_price=stop,
        trailing_delta=trailing,
        time_in_force=tif,
        iceberg_qty=iceberg,
    )
    # Margin change log 2026-06-15: a trailing pending order needs its price.
    if trailing is not None and price_s is None:
        raise ParameterError(prefix + "price", f"is required with {prefix}trailing_delta")
    leg = [(wire + "Type", kind)]
    _put(
        leg, wire + "ClientOrderId", P.client_order_id(prefix + "client_order_id", client_order_id)
    )
    _put(leg, wire + "Price", price_s)
    _put(leg, wire + "StopPrice", stop)
    _put(leg, wire + "TrailingDelta", trailing)
    _put(leg, wire + "IcebergQty", iceberg)
    _put(leg, wire + "TimeInForce", tif)
    return leg


def _symbol_history(
    symbol: str,
    is_isolated: bool,
    order_id: int | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
) -> list[tuple[str, str]]:
    """Filters of the per-symbol order and trade lists (ranges of less than 24 hours)."""
    params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
    _put_isolated(params, is_isolated)
    _put(params, "orderId", P.integer("order_id", order_id))
    params += _range(start_time, end_time, max_days=1)
    return params


def _cross_symbol(symbol: str | None, is_isolated: bool) -> str | None:
    """Order-list queries: ``symbol`` is mandatory for isolated and not supported for cross."""
    P.require_isolated_symbol(is_isolated, symbol)
    if not is_isolated and symbol is not None:
        raise ParameterError("symbol", "is only supported with is_isolated=True")
    return P.symbol("symbol", symbol)


def _order_leg_rules(
    prefix: str,
    order_type: str,
    *,
    quantity: str | None,
    price: str | None,
    stop_price: str | None,
    trailing_delta: str | None,
    time_in_force: str | None,
    iceberg_qty: str | None = None,
) -> None:
    """The parameters each order type needs, and refuses (spot/margin order rules), checked
    before sending. MARKET's quantity rule (quantity or quote_order_qty) is the caller's."""
    # A trailing stop may carry a price (OTO/OTOCO pending legs need one, change log 2026-06-15).
    # Written out flat, not as a loop over a table: this runs for every order.
    priced = _PRICED_TYPES if trailing_delta is None else _PRICED_OR_TRIGGERED_TYPES
    if price is not None and order_type not in priced:
        raise _not_allowed(prefix + "price", order_type)
    if stop_price is not None and order_type not in _TRIGGERED_TYPES:
        raise _not_allowed(prefix + "stop_price", order_type)
    if trailing_delta is not None and order_type not in _TRIGGERED_TYPES:
        raise _not_allowed(prefix + "trailing_delta", order_type)
    if time_in_force is not None and order_type not in _TIME_IN_FORCE_TYPES:
        raise _not_allowed(prefix + "time_in_force", order_type)
    if iceberg_qty is not None and order_type not in _PRICED_TYPES:
        raise _not_allowed(prefix + "iceberg_qty", order_type)
    if order_type == "MARKET":
        return
    why = f"{order_type} orders"
    if quantity is None:
        raise ParameterError(prefix + "quantity", f"is required for {why}")
    stop_limit = order_type in _STOP_LIMIT_TYPES
    if price is None and (order_type == "LIMIT" or order_type == "LIMIT_MAKER" or stop_limit):
        raise ParameterError(prefix + "price", f"is required for {why}")
    if time_in_force is None and (order_type == "LIMIT" or stop_limit):
        raise ParameterError(prefix + "time_in_force", f"is required for {why}")
    if stop_price is None and trailing_delta is None and (stop_limit or order_type in _STOP_TYPES):
        raise ParameterError(prefix + "stop_price", f"is required for {why} (or trailing_delta)")


def _not_allowed(name: str, order_type: str) -> ParameterError:
    return ParameterError(name, f"is not allowed for {order_type} orders")


def _new_order_params(
    symbol: str,
    side: OrderSide | str,
    type: OrderType | str,
    *,
    quantity: AmountLike | None,
    quote_order_qty: AmountLike | None,
    price: AmountLike | None,
    stop_price: AmountLike | None,
    new_client_order_id: str | None,
    iceberg_qty: AmountLike | None,
    new_order_resp_type: NewOrderRespType | str | None,
    side_effect_type: SideEffectType | str | None,
    time_in_force: TimeInForce | str | None,
    self_trade_prevention_mode: SelfTradePreventionMode | str | None,
    trailing_delta: int | None,
    auto_repay_at_cancel: bool | None,
    is_isolated: bool,
) -> tuple[list[tuple[str, str]], str]:
    """The checked parameters of a new order (``new_order``, and the new half of
    ``cancel_replace_order``) and its (given or generated) client order id."""
    order_type = P.enum_value("type", type, OrderType, required=True)
    qty = P.amount("quantity", quantity)
    quote_qty = P.amount("quote_order_qty", quote_order_qty)
    price_s = P.amount("price", price)
    stop = P.amount("stop_price", stop_price)
    tif = P.enum_value("time_in_force", time_in_force, TimeInForce)
    trailing = P.integer("trailing_delta", trailing_delta, minimum=1)
    iceberg = P.amount("iceberg_qty", iceberg_qty)
    if order_type == "MARKET":
        if (qty is None) == (quote_qty is None):
            raise ParameterError(
                "quantity", "MARKET orders take exactly one of quantity or quote_order_qty"
            )
    elif quote_qty is not None:
        raise ParameterError("quote_order_qty", "is only allowed for MARKET orders")
    _order_leg_rules(
        "",
        order_type,
        quantity=qty,
        price=price_s,
        stop_price=stop,
        trailing_delta=trailing,
        time_in_force=tif,
        iceberg_qty=iceberg,
    )
    client_id = _client_id("new_client_order_id", new_client_order_id)
    params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
    _put_isolated(params, is_isolated)
    params.append(("side", P.enum_value("side", side, OrderSide, required=True)))
    params.append(("type", order_type))
    _put(params, "quantity", qty)
    _put(params, "quoteOrderQty", quote_qty)
    _put(params, "price", price_s)
    _put(params, "stopPrice", stop)
    params.append(("newClientOrderId", client_id))
    _put(params, "icebergQty", iceberg)
    _put_order_options(
        params,
        new_order_resp_type,
        side_effect_type,
        self_trade_prevention_mode,
        auto_repay_at_cancel,
        time_in_force=tif,
    )
    _put(params, "trailingDelta", trailing)
    return params, client_id


class MarginAPI(abc.ABC):
    """Every Binance margin REST endpoint as a typed async method.

    Subclasses provide the transport by implementing :meth:`_call`; ``MarginClient`` does it with
    aiohttp, signing and the shared rate limiter. Method names follow the endpoint table
    (:data:`~binance_margin_async.endpoints.ENDPOINTS`); the README lists them all.
    """

    __slots__ = ()

    @abc.abstractmethod
    async def _call(
        self,
        endpoint: Endpoint,
        params: list[tuple[str, str]],
        *,
        client_order_id: str | None = None,
    ) -> Any:
        """Send one request and return the orjson-decoded body (implemented by the transport)."""

    # Paging, shared by the get_* methods of paged histories and by every iter_* method

    async def _get_page(
        self,
        page: type[PG],
        name: str,
        params: list[tuple[str, str]],
        current: int | None,
        size: int | None,
        max_size: int | None = 100,
    ) -> PG:
        """One ``current``/``size`` page of the history ``name``, whose filters are ``params``."""
        _put(params, "current", P.integer("current", current, minimum=1))
        _put(params, "size", P.integer("size", size, minimum=1, maximum=max_size))
        return _one(page, await self._call(ENDPOINTS[name], params))

    def _iter_pages(
        self,
        page: type[Page[R]],
        name: str,
        params: list[tuple[str, str]],
        size: int,
        max_size: int | None = 100,
    ) -> AsyncIterator[R]:
        """Every row of the history ``name`` (filters ``params``), ``size`` rows per request.

        ``params`` come from the builder the ``get_*`` method uses, so every argument is checked
        before this returns, not at the first ``async for`` step.
        """
        P.integer("size", size, minimum=1, maximum=max_size, required=True)
        return self._walk_pages(page, ENDPOINTS[name], params, size)

    async def _walk_pages(
        self, page: type[Page[R]], endpoint: Endpoint, params: list[tuple[str, str]], size: int
    ) -> AsyncIterator[R]:
        """Yield rows page by page (``current`` = 1, 2, ...) until the data is exhausted.

        With a ``total`` in the response, paging runs until that many rows were seen (the server may
        cap ``size`` below what was asked); without one, a short page is the last one.
        """
        current = 1
        seen = 0
        while True:
            query = [*params, ("current", str(current)), ("size", str(size))]
            result = _one(page, await self._call(endpoint, query))
            for row in result.rows:
                yield row
            seen += len(result.rows)
            if not result.rows:
                return
            if result.total is not None:
                if seen >= result.total:
                    return
            elif len(result.rows) < size:
                return
            current += 1

    async def _walk_ids(
        self,
        endpoint: Endpoint,
        model: type[M],
        params: list[tuple[str, str]],
        cursor: str,
        first_id: int,
        limit: int,
        row_id: Callable[[M], int | None],
        *,
        exclusive: bool = False,
    ) -> AsyncIterator[M]:
        """Yield rows from id ``first_id`` upwards, ``limit`` per request, until a short page.

        The ``cursor`` parameter is inclusive (rows with id >= cursor: ``fromId`` of myTrades,
        ``orderId`` of allOrders) or, with ``exclusive``, exclusive (id > cursor: ``fromId`` of
        capital flow). Rows below the cursor, which only a server ignoring it would send, are
        dropped, so the cursor always advances and the walk cannot loop.
        """
        low = first_id + 1 if exclusive else first_id  # the lowest id this request may return
        while True:
            query = [*params, (cursor, str(first_id)), ("limit", str(limit))]
            batch = _many(model, await self._call(endpoint, query))
            top = -1
            for row in batch:
                ident = row_id(row)
                if ident is None or ident >= low:
                    yield row
                    if ident is not None and ident > top:
                        top = ident
            if len(batch) < limit or top < low:
                return
            first_id = top if exclusive else top + 1
            low = top + 1

    # Server time

    async def server_time(self) -> int:
        """Binance server time in epoch milliseconds (``GET /api/v3/time``).

        Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints
        """
        data = await self._call(SERVER_TIME, [])
        value = data.get("serverTime") if isinstance(data, dict) else None
        if type(value) is not int:
            raise InvalidResponse(200, _excerpt(data), "serverTime missing or not an integer")
        return value

    # Market data: symbol rules

    async def get_exchange_info(self, symbols: str | Sequence[str] | None = None) -> ExchangeInfo:
        """Trading rules of ``symbols`` (one or several; all symbols when ``None``: heavy).

        ``GET /api/v3/exchangeInfo``, weight 20 on the shared ``/api`` pool. Every symbol
        returned also refreshes the cache :meth:`get_symbol_info` reads.

        Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints
        """
        params: list[tuple[str, str]] = []
        if symbols is not None:
            names = P.as_sequence("symbols", symbols)
            if len(names) == 1:
                params.append(("symbol", names[0]))
            else:
                # Binance's JSON-array form, ["BTCUSDT","BNBBTC"] (percent-encoded on the wire).
                params.append(("symbols", orjson.dumps(names).decode()))
        data = await self._call(EXCHANGE_INFO, params)
        try:
            info = decode_exchange_info(data)
        except DecodeError as exc:
            raise InvalidResponse(200, _excerpt(data), str(exc)) from exc
        self._store_symbol_rules(info.symbols)
        return info

    async def get_symbol_info(self, symbol: str, *, refresh: bool = False) -> SymbolInfo:
        """The cached trading rules of ``symbol``, fetched when missing, stale or ``refresh``.

        Raises:
            ParameterError: Binance does not list ``symbol``.
        """
        name = P.symbol("symbol", symbol, required=True)
        if not refresh:
            cached = self._cached_symbol_rules(name)
            if cached is not None:
                return cached
        for info in (await self.get_exchange_info(name)).symbols:
            if info.symbol == name:
                return info
        raise ParameterError("symbol", f"{name} is not listed by exchangeInfo")

    def _cached_symbol_rules(self, symbol: str) -> SymbolInfo | None:
        """Fresh cached rules of ``symbol``; the transport keeps the cache (none here)."""
        return None

    def _store_symbol_rules(self, symbols: Sequence[SymbolInfo]) -> None:  # noqa: B027
        """Remember rules just fetched; the transport keeps the cache (nothing here)."""

    async def _round_order(
        self,
        symbol: str,
        type: OrderType | str,
        quantity: AmountLike | None,
        price: AmountLike | None,
        stop_price: AmountLike | None,
        iceberg_qty: AmountLike | None,
    ) -> tuple[AmountLike | None, AmountLike | None, AmountLike | None, AmountLike | None]:
        """``round=True``: quantities on the step, prices on the tick (down), notional checked."""
        market = P.enum_value("type", type, OrderType) == "MARKET"
        rules = await self.get_symbol_info(symbol)
        qty = None if quantity is None else rules.round_quantity(quantity, market=market)
        price_d = None if price is None else rules.round_price(price)
        stop = None if stop_price is None else rules.round_price(stop_price)
        iceberg = None if iceberg_qty is None else rules.round_quantity(iceberg_qty)
        if qty is not None and price_d is not None:
            rules.check_notional(price_d, qty)
        return qty, price_d, stop, iceberg

    # Trade: orders

    async def new_order(
        self,
        symbol: str,
        side: OrderSide | str,
        type: OrderType | str,
        *,
        quantity: AmountLike | None = None,
        quote_order_qty: AmountLike | None = None,
        price: AmountLike | None = None,
        stop_price: AmountLike | None = None,
        new_client_order_id: str | None = None,
        iceberg_qty: AmountLike | None = None,
        new_order_resp_type: NewOrderRespType | str | None = None,
        side_effect_type: SideEffectType | str | None = None,
        time_in_force: TimeInForce | str | None = None,
        self_trade_prevention_mode: SelfTradePreventionMode | str | None = None,
        trailing_delta: int | None = None,
        auto_repay_at_cancel: bool | None = None,
        is_isolated: bool = False,
        round: bool = False,
    ) -> Order:
        """Place a margin order (``POST /sapi/v1/margin/order``).

        Costs 6 UID weight, 1500 with ``side_effect_type`` MARGIN_BUY or AUTO_BORROW_REPAY. A
        ``newClientOrderId`` is generated when none is given; it is on the returned order and on
        :class:`~binance_margin_async.errors.ExecutionStatusUnknown` if the outcome is unknown.

        With ``round=True`` the symbol's rules (:meth:`get_symbol_info`, cached) put ``quantity``
        and ``iceberg_qty`` on the lot step and ``price``/``stop_price`` on the tick, rounding
        down, and the minimum notional of a priced order is checked: an order that cannot be made
        valid raises :class:`~binance_margin_async.errors.ParameterError` before anything is sent.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-Order
        """
        if round:
            quantity, price, stop_price, iceberg_qty = await self._round_order(
                symbol, type, quantity, price, stop_price, iceberg_qty
            )
        params, client_id = _new_order_params(
            symbol,
            side,
            type,
            quantity=quantity,
            quote_order_qty=quote_order_qty,
            price=price,
            stop_price=stop_price,
            new_client_order_id=new_client_order_id,
            iceberg_qty=iceberg_qty,
            new_order_resp_type=new_order_resp_type,
            side_effect_type=side_effect_type,
            time_in_force=time_in_force,
            self_trade_prevention_mode=self_trade_prevention_mode,
            trailing_delta=trailing_delta,
            auto_repay_at_cancel=auto_repay_at_cancel,
            is_isolated=is_isolated,
        )
        data = await self._call(ENDPOINTS["new_order"], params, client_order_id=client_id)
        return _one(Order, data)

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
        is_isolated: bool = False,
    ) -> Order:
        """Cancel a margin order by ``order_id`` or ``orig_client_order_id``.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-Order
        """
        if order_id is None and orig_client_order_id is None:
            P.require_one_of(("order_id", None), ("orig_client_order_id", None))  # raises
        orig = P.client_order_id("orig_client_order_id", orig_client_order_id)
        params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
        _put_isolated(params, is_isolated)
        _put(params, "orderId", P.integer("order_id", order_id))
        _put(params, "origClientOrderId", orig)
        _put(
            params,
            "newClientOrderId",
            P.client_order_id("new_client_order_id", new_client_order_id),
        )
        data = await self._call(ENDPOINTS["cancel_order"], params, client_order_id=orig)
        return _one(Order, data)

    async def cancel_replace_order(
        self,
        symbol: str,
        side: OrderSide | str,
        type: OrderType | str,
        *,
        cancel_replace_mode: str,
        cancel_order_id: int | None = None,
        cancel_orig_client_order_id: str | None = None,
        cancel_new_client_order_id: str | None = None,
        quantity: AmountLike | None = None,
        quote_order_qty: AmountLike | None = None,
        price: AmountLike | None = None,
        stop_price: AmountLike | None = None,
        new_client_order_id: str | None = None,
        iceberg_qty: AmountLike | None = None,
        new_order_resp_type: NewOrderRespType | str | None = None,
        side_effect_type: SideEffectType | str | None = None,
        time_in_force: TimeInForce | str | None = None,
        self_trade_prevention_mode: SelfTradePreventionMode | str | None = None,
        trailing_delta: int | None = None,
        auto_repay_at_cancel: bool | None = None,
        cancel_restrictions: str | None = None,
        is_isolated: bool = False,
        round: bool = False,
    ) -> CancelReplaceResult:
        """Cancel an order and place a new one in one request (special keys only).

        ``cancel_replace_mode`` is ``STOP_ON_FAILURE`` (no new order if the cancel fails) or
        ``ALLOW_FAILURE``; ``cancel_restrictions`` ``ONLY_NEW`` or ``ONLY_PARTIALLY_FILLED``. The
        new order takes :meth:`new_order`'s arguments (``round`` included). SAPI has no margin
        cancel-replace: this is ``POST /api/v3/order/cancelReplace`` or the WebSocket API's
        ``order.cancelReplace``, so a :class:`~.rest.MarginClient` needs ``special_key=True``.
        A failed half answers HTTP 409 with code ``-2021`` or ``-2022``, raised as an error.

        Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints
        """
        if cancel_replace_mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise ParameterError("cancel_replace_mode", "must be STOP_ON_FAILURE or ALLOW_FAILURE")
        if cancel_restrictions not in (None, "ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
            raise ParameterError("cancel_restrictions", "must be ONLY_NEW or ONLY_PARTIALLY_FILLED")
        P.require_one_of(
            ("cancel_order_id", cancel_order_id),
            ("cancel_orig_client_order_id", cancel_orig_client_order_id),
        )
        cancel: list[tuple[str, str]] = [("cancelReplaceMode", cancel_replace_mode)]
        _put(cancel, "cancelOrderId", P.integer("cancel_order_id", cancel_order_id))
        _put(
            cancel,
            "cancelOrigClientOrderId",
            P.client_order_id("cancel_orig_client_order_id", cancel_orig_client_order_id),
        )
        _put(
            cancel,
            "cancelNewClientOrderId",
            P.client_order_id("cancel_new_client_order_id", cancel_new_client_order_id),
        )
        _put(cancel, "cancelRestrictions", cancel_restrictions)
        if round:
            quantity, price, stop_price, iceberg_qty = await self._round_order(
                symbol, type, quantity, price, stop_price, iceberg_qty
            )
        params, client_id = _new_order_params(
            symbol,
            side,
            type,
            quantity=quantity,
            quote_order_qty=quote_order_qty,
            price=price,
            stop_price=stop_price,
            new_client_order_id=new_client_order_id,
            iceberg_qty=iceberg_qty,
            new_order_resp_type=new_order_resp_type,
            side_effect_type=side_effect_type,
            time_in_force=time_in_force,
            self_trade_prevention_mode=self_trade_prevention_mode,
            trailing_delta=trailing_delta,
            auto_repay_at_cancel=auto_repay_at_cancel,
            is_isolated=is_isolated,
        )
        endpoint = SPOT_ORDER_ENDPOINTS["cancel_replace_order"]
        data = await self._call(endpoint, params + cancel, client_order_id=client_id)
        return _one(CancelReplaceResult, data)

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        is_isolated: bool = False,
    ) -> Order:
        """Query one margin order by ``order_id`` or ``orig_client_order_id``.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Order
        """
        P.require_one_of(("order_id", order_id), ("orig_client_order_id", orig_client_order_id))
        params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
        _put_isolated(params, is_isolated)
        _put(params, "orderId", P.integer("order_id", order_id))
        _put(
            params,
            "origClientOrderId",
            P.client_order_id("orig_client_order_id", orig_client_order_id),
        )
        return _one(Order, await self._call(ENDPOINTS["get_order"], params))

    async def get_open_orders(
        self, symbol: str | None = None, *, is_isolated: bool = False
    ) -> list[Order]:
        """Open margin orders of one symbol, or of all symbols (cross only) without ``symbol``.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
        """
        P.require_isolated_symbol(is_isolated, symbol)
        params: list[tuple[str, str]] = []
        _put(params, "symbol", P.symbol("symbol", symbol))
        _put_isolated(params, is_isolated)
        return _many(Order, await self._call(ENDPOINTS["get_open_orders"], params))

    async def cancel_open_orders(
        self, symbol: str, *, is_isolated: bool = False
    ) -> list[Order | OrderList]:
        """Cancel every open order of a symbol, order lists included.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-All-Open-Orders
        """
        params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
        _put_isolated(params, is_isolated)
        data = await self._call(ENDPOINTS["cancel_open_orders"], params)
        if not isinstance(data, list):
            raise InvalidResponse(200, _excerpt(data), "expected an array of orders")
        # Plain orders and order lists come back mixed; order lists carry a contingency type.
        return [
            _one(OrderList, item)
            if isinstance(item, dict) and "contingencyType" in item
            else _one(Order, item)
            for item in data
        ]

    async def get_all_orders(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
        is_isolated: bool = False,
    ) -> list[Order]:
        """All margin orders of a symbol: from ``order_id`` on, or within less than 24 hours.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-All-Orders
        """
        params = _symbol_history(symbol, is_isolated, order_id, start_time, end_time)
        _put(params, "limit", P.integer("limit", limit, minimum=1, maximum=_MAX_ORDERS_LIMIT))
        return _many(Order, await self._call(ENDPOINTS["get_all_orders"], params))

    def iter_all_orders(
        self, symbol: str, *, order_id: int = 0, limit: int = 500, is_isolated: bool = False
    ) -> AsyncIterator[Order]:
        """Walk all orders of a symbol from ``order_id`` upwards, ``limit`` per request."""
        params = _symbol_history(symbol, is_isolated)
        P.integer("order_id", order_id, required=True)
        P.integer("limit", limit, minimum=1, maximum=_MAX_ORDERS_LIMIT, required=True)
        endpoint = ENDPOINTS["get_all_orders"]
        return self._walk_ids(
            endpoint, Order, params, "orderId", order_id, limit, lambda order: order.order_id
        )

    async def get_my_trades(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int | None = None,
        is_isolated: bool = False,
    ) -> list[Trade]:
        """Margin trades of a symbol: from ``from_id`` on, or within less than 24 hours.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Trade-List
        """
        params = _symbol_history(symbol, is_isolated, order_id, start_time, end_time)
        _put(params, "fromId", P.integer("from_id", from_id))
        _put(params, "limit", P.integer("limit", limit, minimum=1, maximum=_MAX_LIMIT))
        return _many(Trade, await self._call(ENDPOINTS["get_my_trades"], params))

    def iter_my_trades(
        self, symbol: str, *, from_id: int = 0, limit: int = 1000, is_isolated: bool = False
    ) -> AsyncIterator[Trade]:
        """Walk all trades of a symbol from trade id ``from_id`` upwards, ``limit`` per request."""
        params = _symbol_history(symbol, is_isolated)
        P.integer("from_id", from_id, required=True)
        P.integer("limit", limit, minimum=1, maximum=_MAX_LIMIT, required=True)
        endpoint = ENDPOINTS["get_my_trades"]
        return self._walk_ids(
            endpoint, Trade, params, "fromId", from_id, limit, lambda trade: trade.id
        )

    # Trade: order lists

    async def new_oco(
        self,
        symbol: str,
        side: OrderSide | str,
        quantity: AmountLike,
        price: AmountLike,
        stop_price: AmountLike,
        *,
        list_client_order_id: str | None = None,
        limit_client_order_id: str | None = None,
        limit_iceberg_qty: AmountLike | None = None,
        stop_client_order_id: str | None = None,
        stop_limit_price: AmountLike | None = None,
        stop_iceberg_qty: AmountLike | None = None,
        stop_limit_time_in_force: TimeInForce | str | None = None,
        new_order_resp_type: NewOrderRespType | str | None = None,
        side_effect_type: SideEffectType | str | None = None,
        self_trade_prevention_mode: SelfTradePreventionMode | str | None = None,
        auto_repay_at_cancel: bool | None = None,
        is_isolated: bool = False,
    ) -> OrderList:
        """Place a margin OCO (a limit leg and a stop-loss / stop-loss-limit leg).

        ``listClientOrderId`` is generated when none is given. Costs 6 UID weight, 1500 with
        ``side_effect_type`` MARGIN_BUY or AUTO_BORROW_REPAY.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OCO
        """
        stop_limit = P.amount("stop_limit_price", stop_limit_price)
        stop_tif = P.enum_value("stop_limit_time_in_force", stop_limit_time_in_force, TimeInForce)
        stop_iceberg = P.amount("stop_iceberg_qty", stop_iceberg_qty)
        if stop_limit is not None and stop_tif is None:
            raise ParameterError(
                "stop_limit_time_in_force", "is required when stop_limit_price is given"
            )
        # Without a stop-limit price the stop leg is a STOP_LOSS: no time in force, no iceberg.
        for name, value in (
            ("stop_limit_time_in_force", stop_tif),
            ("stop_iceberg_qty", stop_iceberg),
        ):
            if stop_limit is None and value is not None:
                raise ParameterError(name, "is only allowed with stop_limit_price")
        params, list_id = _list_head(symbol, is_isolated, list_client_order_id)
        params.append(("side", P.enum_value("side", side, OrderSide, required=True)))
        params.append(("quantity", P.amount("quantity", quantity, required=True)))
        _put(
            params,
            "limitClientOrderId",
            P.client_order_id("limit_client_order_id", limit_client_order_id),
        )
        params.append(("price", P.amount("price", price, required=True)))
        _put(params, "limitIcebergQty", P.amount("limit_iceberg_qty", limit_iceberg_qty))
        _put(
            params,
            "stopClientOrderId",
            P.client_order_id("stop_client_order_id", stop_client_order_id),
        )
        params.append(("stopPrice", P.amount("stop_price", stop_price, required=True)))
        _put(params, "stopLimitPrice", stop_limit)
        _put(params, "stopIcebergQty", stop_iceberg)
        _put(params, "stopLimitTimeInForce", stop_tif)
        _put_order_options(
            params,
            new_order_resp_type,
            side_effect_type,
            self_trade_prevention_mode,
            auto_repay_at_cancel,
        )
        data = await self._call(ENDPOINTS["new_oco"], params, client_order_id=list_id)
        return _one(OrderList, data)

    async def new_oto(
        self,
        symbol: str,
        working_type: OrderType | str,
        working_side: OrderSide | str,
        working_price: AmountLike,
        working_quantity: AmountLike,
        pending_type: OrderType | str,
        pending_side: OrderSide | str,
        pending_quantity: AmountLike,
        *,
        list_client_order_id: str | None = None,
        new_order_resp_type: NewOrderRespType | str | None = None,
        side_effect_type: SideEffectType | str | None = None,
        self_trade_prevention_mode: SelfTradePreventionMode | str | None = None,
        auto_repay_at_cancel: bool | None = None,
        working_client_order_id: str | None = None,
        working_iceberg_qty: AmountLike | None = None,
        working_time_in_force: TimeInForce | str | None = None,
        pending_client_order_id: str | None = None,
        pending_price: AmountLike | None = None,
        pending_stop_price: AmountLike | None = None,
        pending_trailing_delta: int | None = None,
        pending_iceberg_qty: AmountLike | None = None,
        pending_time_in_force: TimeInForce | str | None = None,
        is_isolated: bool = False,
    ) -> OrderList:
        """Place a margin OTO: a LIMIT/LIMIT_MAKER working order that triggers a pending order.

        ``pending_price`` is required with ``pending_trailing_delta`` (margin change log
        2026-06-15). ``listClientOrderId`` is generated when none is given.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OTO
        """
        working = _working_leg(
            working_type,
            working_side,
            working_price,
            working_quantity,
            working_client_order_id,
            working_iceberg_qty,
            working_time_in_force,
        )
        p_qty = P.amount("pending_quantity", pending_quantity, required=True)
        pending = _pending_leg(
            "pending_",
            "pending",
            P.enum_value("pending_type", pending_type, OrderType, required=True),
            p_qty,
            pending_client_order_id,
            pending_price,
            pending_stop_price,
            pending_trailing_delta,
            pending_iceberg_qty,
            pending_time_in_force,
        )
        params, list_id = _list_head(symbol, is_isolated, list_client_order_id)
        _put_order_options(
            params,
            new_order_resp_type,
            side_effect_type,
            self_trade_prevention_mode,
            auto_repay_at_cancel,
        )
        params += working
        params.append(
            ("pendingSide", P.enum_value("pending_side", pending_side, OrderSide, required=True))
        )
        params.append(("pendingQuantity", p_qty))
        params += pending
        data = await self._call(ENDPOINTS["new_oto"], params, client_order_id=list_id)
        return _one(OrderList, data)

    async def new_otoco(
        self,
        symbol: str,
        working_type: OrderType | str,
        working_side: OrderSide | str,
        working_price: AmountLike,
        working_quantity: AmountLike,
        pending_side: OrderSide | str,
        pending_quantity: AmountLike,
        pending_above_type: OrderType | str,
        *,
        pending_below_type: OrderType | str | None = None,
        list_client_order_id: str | None = None,
        new_order_resp_type: NewOrderRespType | str | None = None,
        side_effect_type: SideEffectType | str | None = None,
        self_trade_prevention_mode: SelfTradePreventionMode | str | None = None,
        auto_repay_at_cancel: bool | None = None,
        working_client_order_id: str | None = None,
        working_iceberg_qty: AmountLike | None = None,
        working_time_in_force: TimeInForce | str | None = None,
        pending_above_client_order_id: str | None = None,
        pending_above_price: AmountLike | None = None,
        pending_above_stop_price: AmountLike | None = None,
        pending_above_trailing_delta: int | None = None,
        pending_above_iceberg_qty: AmountLike | None = None,
        pending_above_time_in_force: TimeInForce | str | None = None,
        pending_below_client_order_id: str | None = None,
        pending_below_price: AmountLike | None = None,
        pending_below_stop_price: AmountLike | None = None,
        pending_below_trailing_delta: int | None = None,
        pending_below_iceberg_qty: AmountLike | None = None,
        pending_below_time_in_force: TimeInForce | str | None = None,
        is_isolated: bool = False,
    ) -> OrderList:
        """Place a margin OTOCO: a working order that triggers an OCO pair (above / below).

        ``listClientOrderId`` is generated when none is given.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OTOCO
        """
        working = _working_leg(
            working_type,
            working_side,
            working_price,
            working_quantity,
            working_client_order_id,
            working_iceberg_qty,
            working_time_in_force,
        )
        p_qty = P.amount("pending_quantity", pending_quantity, required=True)
        above = self._otoco_leg(
            "above",
            pending_above_type,
            pending_above_client_order_id,
            pending_above_price,
            pending_above_stop_price,
            pending_above_trailing_delta,
            pending_above_iceberg_qty,
            pending_above_time_in_force,
            p_qty,
        )
        below = self._otoco_leg(
            "below",
            pending_below_type,
            pending_below_client_order_id,
            pending_below_price,
            pending_below_stop_price,
            pending_below_trailing_delta,
            pending_below_iceberg_qty,
            pending_below_time_in_force,
            p_qty,
        )
        params, list_id = _list_head(symbol, is_isolated, list_client_order_id)
        _put_order_options(
            params,
            new_order_resp_type,
            side_effect_type,
            self_trade_prevention_mode,
            auto_repay_at_cancel,
        )
        params += working
        params.append(
            ("pendingSide", P.enum_value("pending_side", pending_side, OrderSide, required=True))
        )
        params.append(("pendingQuantity", p_qty))
        params.extend(above)
        params.extend(below)
        data = await self._call(ENDPOINTS["new_otoco"], params, client_order_id=list_id)
        return _one(OrderList, data)

    @staticmethod
    def _otoco_leg(
        leg: str,
        leg_type: OrderType | str | None,
        client_id: str | None,
        price: AmountLike | None,
        stop_price: AmountLike | None,
        trailing_delta: int | None,
        iceberg_qty: AmountLike | None,
        time_in_force: TimeInForce | str | None,
        quantity: str,
    ) -> list[tuple[str, str]]:
        """Validate and format the pending above/below leg of an OTOCO."""
        prefix = f"pending_{leg}_"
        kind = P.enum_value(prefix + "type", leg_type, OrderType, required=leg == "above")
        if kind is None:
            # Only the below leg is optional; its details without a type would be dropped silently.
            details = (client_id, price, stop_price, trailing_delta, iceberg_qty, time_in_force)
            if any(value is not None for value in details):
                raise ParameterError(prefix + "type", f"is required with other {prefix}* arguments")
            return []
        if kind not in _OTOCO_LEG_TYPES:
            raise ParameterError(prefix + "type", "must be LIMIT_MAKER or a stop/take-profit type")
        return _pending_leg(
            prefix,
            "pendingAbove" if leg == "above" else "pendingBelow",
            kind,
            quantity,
            client_id,
            price,
            stop_price,
            trailing_delta,
            iceberg_qty,
            time_in_force,
        )

    async def cancel_order_list(
        self,
        symbol: str,
        *,
        order_list_id: int | None = None,
        list_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
        is_isolated: bool = False,
    ) -> OrderList:
        """Cancel a whole order list (OCO/OTO/OTOCO) by ``order_list_id`` or client id.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-OCO
        """
        P.require_one_of(
            ("order_list_id", order_list_id), ("list_client_order_id", list_client_order_id)
        )
        list_id = P.client_order_id("list_client_order_id", list_client_order_id)
        params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
        _put_isolated(params, is_isolated)
        _put(params, "orderListId", P.integer("order_list_id", order_list_id))
        _put(params, "listClientOrderId", list_id)
        _put(
            params,
            "newClientOrderId",
            P.client_order_id("new_client_order_id", new_client_order_id),
        )
        data = await self._call(ENDPOINTS["cancel_order_list"], params, client_order_id=list_id)
        return _one(OrderList, data)

    async def get_order_list(
        self,
        *,
        order_list_id: int | None = None,
        orig_client_order_id: str | None = None,
        symbol: str | None = None,
        is_isolated: bool = False,
    ) -> OrderList:
        """Query one order list; ``symbol`` only (and always) for isolated margin.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-OCO
        """
        P.require_one_of(
            ("order_list_id", order_list_id), ("orig_client_order_id", orig_client_order_id)
        )
        symbol_s = _cross_symbol(symbol, is_isolated)
        params: list[tuple[str, str]] = []
        _put_isolated(params, is_isolated)
        _put(params, "symbol", symbol_s)
        _put(params, "orderListId", P.integer("order_list_id", order_list_id))
        _put(
            params,
            "origClientOrderId",
            P.client_order_id("orig_client_order_id", orig_client_order_id),
        )
        return _one(OrderList, await self._call(ENDPOINTS["get_order_list"], params))

    async def get_all_order_lists(
        self,
        *,
        symbol: str | None = None,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
        is_isolated: bool = False,
    ) -> list[OrderList]:
        """All order lists, from ``from_id`` on or within a time range (not both).

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-all-OCO
        """
        symbol_s = _cross_symbol(symbol, is_isolated)
        time_range = _range(start_time, end_time)
        if from_id is not None and time_range:
            raise ParameterError("from_id", "cannot be combined with start_time or end_time")
        params: list[tuple[str, str]] = []
        _put_isolated(params, is_isolated)
        _put(params, "symbol", symbol_s)
        _put(params, "fromId", P.integer("from_id", from_id))
        params += time_range
        _put(params, "limit", P.integer("limit", limit, minimum=1, maximum=_MAX_LIMIT))
        return _many(OrderList, await self._call(ENDPOINTS["get_all_order_lists"], params))

    async def get_open_order_lists(
        self, *, symbol: str | None = None, is_isolated: bool = False
    ) -> list[OrderList]:
        """Open order lists; ``symbol`` only (and always) for isolated margin.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-OCO
        """
        symbol_s = _cross_symbol(symbol, is_isolated)
        params: list[tuple[str, str]] = []
        _put_isolated(params, is_isolated)
        _put(params, "symbol", symbol_s)
        return _many(OrderList, await self._call(ENDPOINTS["get_open_order_lists"], params))

    # Trade: other

    async def get_order_count_usage(
        self, *, symbol: str | None = None, is_isolated: bool = False
    ) -> list[OrderCountUsage]:
        """Current order-count usage per interval (the account's order-rate limits).

        ``MarginClient`` also hands the answer to its rate limiter, which from then on holds
        orders to these limits instead of its defaults (see :meth:`_on_order_count_usage`).

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Current-Margin-Order-Count-Usage
        """
        P.require_isolated_symbol(is_isolated, symbol)
        params: list[tuple[str, str]] = []
        _put_isolated(params, is_isolated)
        _put(params, "symbol", P.symbol("symbol", symbol))
        data = await self._call(ENDPOINTS["get_order_count_usage"], params)
        usage = _many(OrderCountUsage, data)
        self._on_order_count_usage(usage)
        return usage

    # An optional hook, not an abstract method: a transport without a limiter has nothing to do.
    def _on_order_count_usage(self, usage: list[OrderCountUsage]) -> None:  # noqa: B027
        """Hook called with every answer of :meth:`get_order_count_usage`, before it is returned.

        The answer carries the account's real order-count limits and counts; a transport with a
        rate limiter overrides this to feed them to it (``MarginClient`` does). Here, without a
        limiter, there is nothing to learn.
        """

    def _on_all_pairs(self, pairs: list[MarginPair]) -> None:  # noqa: B027
        """Hook called with every full answer of :meth:`get_all_pairs`, before it is returned.

        Their number is what ``get_open_orders()`` without ``symbol`` costs; a transport with a
        rate limiter overrides this to feed it (``MarginClient`` does).
        """

    async def get_prevented_matches(
        self,
        symbol: str,
        *,
        prevented_match_id: int | None = None,
        order_id: int | None = None,
        from_prevented_match_id: int | None = None,
        is_isolated: bool = False,
    ) -> list[PreventedMatch]:
        """Orders expired by self-trade prevention, by match id or by order id.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Prevented-Matches
        """
        P.require_one_of(("prevented_match_id", prevented_match_id), ("order_id", order_id))
        if from_prevented_match_id is not None and order_id is None:
            raise ParameterError("from_prevented_match_id", "requires order_id")
        params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
        _put(params, "preventedMatchId", P.integer("prevented_match_id", prevented_match_id))
        _put(params, "orderId", P.integer("order_id", order_id))
        _put(
            params,
            "fromPreventedMatchId",
            P.integer("from_prevented_match_id", from_prevented_match_id),
        )
        _put_isolated(params, is_isolated)
        return _many(PreventedMatch, await self._call(ENDPOINTS["get_prevented_matches"], params))

    async def get_force_liquidation_records(
        self,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        isolated_symbol: str | None = None,
        current: int | None = None,
        size: int | None = None,
    ) -> ForceLiquidationRecords:
        """One page of forced-liquidation records (newest first).

        Docs: https://developers.binance.com/docs/margin_trading/trade/Get-Force-Liquidation-Record
        """
        params = self._force_liquidation_filters(start_time, end_time, isolated_symbol)
        return await self._get_page(
            ForceLiquidationRecords, "get_force_liquidation_records", params, current, size
        )

    @staticmethod
    def _force_liquidation_filters(
        start_time: int | None, end_time: int | None, isolated_symbol: str | None
    ) -> list[tuple[str, str]]:
        params = _range(start_time, end_time)
        _put(params, "isolatedSymbol", P.symbol("isolated_symbol", isolated_symbol))
        return params

    def iter_force_liquidation_records(
        self,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        isolated_symbol: str | None = None,
        size: int = 100,
    ) -> AsyncIterator[ForceLiquidationRecord]:
        """Walk every page of forced-liquidation records."""
        params = self._force_liquidation_filters(start_time, end_time, isolated_symbol)
        return self._iter_pages(
            ForceLiquidationRecords, "get_force_liquidation_records", params, size
        )

    async def manual_liquidation(
        self, type: MarginType | str, *, symbol: str | None = None
    ) -> list[ManualLiquidationResult]:
        """Liquidate the cross (``MARGIN``) or an isolated (``ISOLATED`` + ``symbol``) account.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Margin-Manual-Liquidation
        """
        kind = P.enum_value("type", type, MarginType, required=True)
        if kind == "ISOLATED" and symbol is None:
            raise ParameterError("symbol", "is required for type ISOLATED")
        params: list[tuple[str, str]] = [("type", kind)]
        _put(params, "symbol", P.symbol("symbol", symbol))
        data = await self._call(ENDPOINTS["manual_liquidation"], params)
        return _many(ManualLiquidationResult, data)

    async def get_small_liability_exchange_coins(self) -> list[SmallLiabilityCoin]:
        """Liabilities eligible for small-liability exchange.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Get-Small-Liability-Exchange-Coin-List
        """
        data = await self._call(ENDPOINTS["get_small_liability_exchange_coins"], [])
        return _many(SmallLiabilityCoin, data)

    async def small_liability_exchange(self, asset_names: str | Sequence[str]) -> None:
        """Exchange small liabilities (at most 10 assets, once per 6 hours).

        Docs: https://developers.binance.com/docs/margin_trading/trade/Small-Liability-Exchange
        """
        names = P.joined("asset_names", asset_names, max_count=10)
        await self._call(ENDPOINTS["small_liability_exchange"], [("assetNames", names)])

    async def get_small_liability_exchange_history(
        self,
        *,
        current: int = 1,
        size: int = 10,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> SmallLiabilityExchangeRecords:
        """One page of small-liability exchanges.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Get-Small-Liability-Exchange-History
        """
        return await self._get_page(
            SmallLiabilityExchangeRecords,
            "get_small_liability_exchange_history",
            _range(start_time, end_time),
            current,
            size,
        )

    def iter_small_liability_exchange_history(
        self, *, start_time: int | None = None, end_time: int | None = None, size: int = 100
    ) -> AsyncIterator[SmallLiabilityExchangeRecord]:
        """Walk every page of small-liability exchanges."""
        return self._iter_pages(
            SmallLiabilityExchangeRecords,
            "get_small_liability_exchange_history",
            _range(start_time, end_time),
            size,
        )

    # Trade: special (low-latency) keys

    async def create_special_key(
        self,
        api_name: str,
        *,
        symbol: str | None = None,
        ip: str | Sequence[str] | None = None,
        public_key: str | None = None,
        permission_mode: SpecialKeyPermissionMode | str | None = None,
    ) -> SpecialKey:
        """Create a low-latency special key (``symbol`` for an isolated pair, else cross).

        ``ip`` takes up to 30 addresses; ``public_key`` (PEM) creates an RSA or Ed25519 key, for
        which ``permission_mode`` applies; the line break a PEM file or serializer ends with is
        dropped. The returned ``secret_key`` is kept out of ``repr``.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Create-Special-Key-of-Low-Latency-Trading
        """
        if isinstance(public_key, str):
            # Not part of the key; every other surrounding blank is still refused.
            public_key = public_key.rstrip("\n")
        params: list[tuple[str, str]] = [("apiName", P.text("api_name", api_name, required=True))]
        _put(params, "symbol", P.symbol("symbol", symbol))
        if ip is not None:
            params.append(("ip", P.ip_list("ip", ip, max_count=30)))
        _put(params, "publicKey", P.text("public_key", public_key, max_length=8192, multiline=True))
        _put(
            params,
            "permissionMode",
            P.enum_value("permission_mode", permission_mode, SpecialKeyPermissionMode),
        )
        return _one(SpecialKey, await self._call(ENDPOINTS["create_special_key"], params))

    async def delete_special_key(
        self, *, api_key: str | None = None, api_name: str | None = None, symbol: str | None = None
    ) -> None:
        """Delete a special key by ``api_key``, or every key named ``api_name``.

        Deleting alone does not leave special-key mode: see :meth:`exit_special_key_mode`.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Delete-Special-Key-of-Low-Latency-Trading
        """
        P.require_one_of(("api_key", api_key), ("api_name", api_name))
        params: list[tuple[str, str]] = []
        _put(params, "apiKey", P.key("api_key", api_key))
        _put(params, "apiName", P.text("api_name", api_name))
        _put(params, "symbol", P.symbol("symbol", symbol))
        await self._call(ENDPOINTS["delete_special_key"], params)

    async def edit_special_key_ip(
        self, ip: str | Sequence[str], *, api_key: str, symbol: str | None = None
    ) -> None:
        """Replace the IP restriction of the special key ``api_key`` (up to 30 addresses).

        ``api_key`` is mandatory (special-key reference).

        Docs: https://developers.binance.com/docs/margin_trading/trade/Edit-Ip-for-Special-Key-of-Low-Latency-Trading
        """
        params: list[tuple[str, str]] = [("apiKey", P.key("api_key", api_key, required=True))]
        params.append(("ip", P.ip_list("ip", ip, max_count=30)))
        _put(params, "symbol", P.symbol("symbol", symbol))
        await self._call(ENDPOINTS["edit_special_key_ip"], params)

    async def get_special_key(self, api_key: str, *, symbol: str | None = None) -> SpecialKeyInfo:
        """Query the special key ``api_key`` (mandatory, per the special-key reference).

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Special-key-of-Low-Latency-Trading
        """
        params: list[tuple[str, str]] = [("apiKey", P.key("api_key", api_key, required=True))]
        _put(params, "symbol", P.symbol("symbol", symbol))
        return _one(SpecialKeyInfo, await self._call(ENDPOINTS["get_special_key"], params))

    async def get_special_key_list(self, *, symbol: str | None = None) -> list[SpecialKeyInfo]:
        """List the special keys of the cross account or of an isolated pair.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Special-key-List-of-Low-Latency-Trading
        """
        params: list[tuple[str, str]] = []
        _put(params, "symbol", P.symbol("symbol", symbol))
        data = await self._call(ENDPOINTS["get_special_key_list"], params)
        return _many(SpecialKeyInfo, data)

    async def exit_special_key_mode(self) -> dict[str, Any]:
        """Leave special-key mode (Cross Margin Classic, no liabilities); deletes all special keys.

        Returns Binance's answer as decoded JSON: its shape is not documented.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Exit-Special-Key-Mode
        """
        data = await self._call(ENDPOINTS["exit_special_key_mode"], [])
        if not isinstance(data, dict):
            raise InvalidResponse(200, _excerpt(data), "expected an object")
        return data

    # Trade: liquidation loan

    async def get_liquidation_loan(self) -> LiquidationLoan:
        """The outstanding cross-margin liquidation loan (bankruptcy deficit, in USDC).

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Liquidation-Loan
        """
        return _one(LiquidationLoan, await self._call(ENDPOINTS["get_liquidation_loan"], []))

    async def repay_liquidation_loan(
        self, asset: str, amount: AmountLike
    ) -> LiquidationLoanRepayment:
        """Repay the liquidation loan from the spot wallet.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Liquidation-Loan-Repay
        """
        params = [
            ("asset", P.symbol("asset", asset, required=True)),
            ("amount", P.amount("amount", amount, required=True)),
        ]
        data = await self._call(ENDPOINTS["repay_liquidation_loan"], params)
        return _one(LiquidationLoanRepayment, data)

    async def get_liquidation_loan_repay_history(
        self,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
    ) -> LiquidationLoanRepayments:
        """One page of liquidation-loan repayments (90 days at most).

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Liquidation-Loan-Repay-History
        """
        return await self._get_page(
            LiquidationLoanRepayments,
            "get_liquidation_loan_repay_history",
            _range(start_time, end_time),
            current,
            size,
            max_size=None,
        )

    def iter_liquidation_loan_repay_history(
        self, *, start_time: int | None = None, end_time: int | None = None, size: int = 50
    ) -> AsyncIterator[LiquidationLoanRepayment]:
        """Walk every page of liquidation-loan repayments."""
        return self._iter_pages(
            LiquidationLoanRepayments,
            "get_liquidation_loan_repay_history",
            _range(start_time, end_time),
            size,
            max_size=None,
        )

    # Borrow and repay

    async def borrow(
        self, asset: str, amount: AmountLike, *, symbol: str | None = None
    ) -> TransactionId:
        """Borrow ``amount`` of ``asset`` into the cross account, or the isolated ``symbol`` one.

        Costs 1500 UID weight.

        Docs: https://developers.binance.com/docs/margin_trading/borrow-and-repay/Margin-Account-Borrow-Repay
        """
        params = self._borrow_repay_params(asset, amount, symbol, "BORROW")
        return _one(TransactionId, await self._call(ENDPOINTS["borrow"], params))

    async def repay(
        self, asset: str, amount: AmountLike, *, symbol: str | None = None
    ) -> TransactionId:
        """Repay ``amount`` of ``asset`` (interest first) in the cross or isolated account.

        May use the limiter's reserved slice: repaying reduces risk.

        Docs: https://developers.binance.com/docs/margin_trading/borrow-and-repay/Margin-Account-Borrow-Repay
        """
        params = self._borrow_repay_params(asset, amount, symbol, "REPAY")
        return _one(TransactionId, await self._call(ENDPOINTS["repay"], params))

    @staticmethod
    def _borrow_repay_params(
        asset: str, amount: AmountLike, symbol: str | None, kind: str
    ) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = [
            ("asset", P.symbol("asset", asset, required=True)),
            # Mandatory on this endpoint, unlike on the order endpoints.
            ("isIsolated", "TRUE" if symbol is not None else "FALSE"),
        ]
        _put(params, "symbol", P.symbol("symbol", symbol))
        params.append(("amount", P.amount("amount", amount, required=True)))
        params.append(("type", kind))
        return params

    async def get_borrow_repay_records(
        self,
        type: BorrowRepayType | str,
        *,
        asset: str | None = None,
        isolated_symbol: str | None = None,
        tx_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
    ) -> BorrowRepayRecords:
        """One page of borrow or repay records (``tx_id`` or ``start_time`` is required).

        Docs: https://developers.binance.com/docs/margin_trading/borrow-and-repay/Query-Borrow-Repay
        """
        P.require_one_of(("tx_id", tx_id), ("start_time", start_time))
        params = self._borrow_repay_filters(type, asset, isolated_symbol, start_time, end_time)
        _put(params, "txId", P.integer("tx_id", tx_id))
        return await self._get_page(
            BorrowRepayRecords, "get_borrow_repay_records", params, current, size
        )

    @staticmethod
    def _borrow_repay_filters(
        type: BorrowRepayType | str,
        asset: str | None,
        isolated_symbol: str | None,
        start_time: int | None,
        end_time: int | None,
    ) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = [
            ("type", P.enum_value("type", type, BorrowRepayType, required=True))
        ]
        _put(params, "asset", P.symbol("asset", asset))
        _put(params, "isolatedSymbol", P.symbol("isolated_symbol", isolated_symbol))
        params += _range(start_time, end_time)
        return params

    def iter_borrow_repay_records(
        self,
        type: BorrowRepayType | str,
        *,
        start_time: int,
        end_time: int | None = None,
        asset: str | None = None,
        isolated_symbol: str | None = None,
        size: int = 100,
    ) -> AsyncIterator[BorrowRepayRecord]:
        """Walk every page of borrow or repay records from ``start_time``."""
        if start_time is None:  # the get method's "tx_id or start_time" rule, for a walk
            raise ParameterError("start_time", "is required")
        params = self._borrow_repay_filters(type, asset, isolated_symbol, start_time, end_time)
        return self._iter_pages(BorrowRepayRecords, "get_borrow_repay_records", params, size)

    async def get_interest_history(
        self,
        *,
        asset: str | None = None,
        isolated_symbol: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
    ) -> InterestHistory:
        """One page of interest charges (the range may span 30 days at most).

        Docs: https://developers.binance.com/docs/margin_trading/borrow-and-repay/Get-Interest-History
        """
        params = self._interest_filters(asset, isolated_symbol, start_time, end_time)
        return await self._get_page(InterestHistory, "get_interest_history", params, current, size)

    @staticmethod
    def _interest_filters(
        asset: str | None, isolated_symbol: str | None, start_time: int | None, end_time: int | None
    ) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        _put(params, "asset", P.symbol("asset", asset))
        _put(params, "isolatedSymbol", P.symbol("isolated_symbol", isolated_symbol))
        params += _range(start_time, end_time, max_days=30)
        return params

    def iter_interest_history(
        self,
        *,
        asset: str | None = None,
        isolated_symbol: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        size: int = 100,
    ) -> AsyncIterator[InterestRecord]:
        """Walk every page of interest charges."""
        params = self._interest_filters(asset, isolated_symbol, start_time, end_time)
        return self._iter_pages(InterestHistory, "get_interest_history", params, size)

    async def get_interest_rate_history(
        self,
        asset: str,
        *,
        vip_level: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[InterestRate]:
        """Historical daily interest rates of an asset (the range may span 30 days at most).

        Docs: https://developers.binance.com/docs/margin_trading/borrow-and-repay/Query-Margin-Interest-Rate-History
        """
        params: list[tuple[str, str]] = [("asset", P.symbol("asset", asset, required=True))]
        _put(params, "vipLevel", P.integer("vip_level", vip_level))
        params += _range(start_time, end_time, max_days=30)
        data = await self._call(ENDPOINTS["get_interest_rate_history"], params)
        return _many(InterestRate, data)

    async def get_max_borrowable(
        self, asset: str, *, isolated_symbol: str | None = None
    ) -> MaxBorrowable:
        """How much of ``asset`` can be borrowed now (750 UID weight since 2026-04-16).

        Docs: https://developers.binance.com/docs/margin_trading/borrow-and-repay/Query-Max-Borrow
        """
        params: list[tuple[str, str]] = [("asset", P.symbol("asset", asset, required=True))]
        _put(params, "isolatedSymbol", P.symbol("isolated_symbol", isolated_symbol))
        return _one(MaxBorrowable, await self._call(ENDPOINTS["get_max_borrowable"], params))

    async def get_next_hourly_interest_rate(
        self, assets: str | Sequence[str], *, is_isolated: bool = False
    ) -> list[NextHourlyInterestRate]:
        """Estimated next-hour interest rates of up to 20 assets.

        Docs: https://developers.binance.com/docs/margin_trading/borrow-and-repay/Get-future-hourly-interest-rate
        """
        params = [
            ("assets", P.joined("assets", assets, max_count=20)),
            ("isIsolated", P.upper_bool("is_isolated", is_isolated)),
        ]
        data = await self._call(ENDPOINTS["get_next_hourly_interest_rate"], params)
        return _many(NextHourlyInterestRate, data)

    # Account

    async def get_account(self) -> MarginAccount:
        """Cross margin account: balances, liabilities, margin level.

        Docs: https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Account-Details
        """
        return _one(MarginAccount, await self._call(ENDPOINTS["get_account"], []))

    async def get_isolated_account(
        self, symbols: str | Sequence[str] | None = None
    ) -> IsolatedMarginAccount:
        """Isolated margin accounts: all, or up to 5 ``symbols``.

        Docs: https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Account-Info
        """
        params: list[tuple[str, str]] = []
        if symbols is not None:
            params.append(("symbols", P.joined("symbols", symbols, max_count=5)))
        data = await self._call(ENDPOINTS["get_isolated_account"], params)
        return _one(IsolatedMarginAccount, data)

    async def enable_isolated_account(self, symbol: str) -> IsolatedAccountToggle:
        """Re-enable a previously disabled isolated margin account.

        Docs: https://developers.binance.com/docs/margin_trading/account/Enable-Isolated-Margin-Account
        """
        params = [("symbol", P.symbol("symbol", symbol, required=True))]
        data = await self._call(ENDPOINTS["enable_isolated_account"], params)
        return _one(IsolatedAccountToggle, data)

    async def disable_isolated_account(self, symbol: str) -> IsolatedAccountToggle:
        """Disable an isolated margin account (once per pair per 24 hours).

        Docs: https://developers.binance.com/docs/margin_trading/account/Disable-Isolated-Margin-Account
        """
        params = [("symbol", P.symbol("symbol", symbol, required=True))]
        data = await self._call(ENDPOINTS["disable_isolated_account"], params)
        return _one(IsolatedAccountToggle, data)

    async def get_isolated_account_limit(self) -> IsolatedAccountLimit:
        """How many isolated accounts are enabled, and the maximum.

        Docs: https://developers.binance.com/docs/margin_trading/account/Query-Enabled-Isolated-Margin-Account-Limit
        """
        data = await self._call(ENDPOINTS["get_isolated_account_limit"], [])
        return _one(IsolatedAccountLimit, data)

    async def adjust_max_leverage(self, max_leverage: int) -> MaxLeverageResult:
        """Set the cross margin max leverage: 3 or 5 (Classic), 10 or 20 (Pro).

        Docs: https://developers.binance.com/docs/margin_trading/account/Adjust-cross-margin-max-leverage
        """
        value = P.integer("max_leverage", max_leverage, required=True)
        if max_leverage not in (3, 5, 10, 20):
            raise ParameterError("max_leverage", "must be one of 3, 5, 10, 20")
        data = await self._call(ENDPOINTS["adjust_max_leverage"], [("maxLeverage", value)])
        return _one(MaxLeverageResult, data)

    async def get_capital_flow(
        self,
        *,
        asset: str | None = None,
        symbol: str | None = None,
        type: CapitalFlowType | str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int | None = None,
    ) -> list[CapitalFlow]:
        """Cross (or isolated ``symbol``) capital flow; a time range may span 7 days at most.

        With ``from_id``, the rows with a greater id; without it, the latest ``limit`` rows. Use
        :meth:`iter_capital_flow` for longer ranges.

        Docs: https://developers.binance.com/docs/margin_trading/account/Query-Cross-Isolated-Margin-Capital-Flow
        """
        params = self._capital_flow_filters(asset, symbol, type)
        params += _range(start_time, end_time, max_days=_CAPITAL_FLOW_DAYS)
        _put(params, "fromId", P.integer("from_id", from_id))
        _put(params, "limit", P.integer("limit", limit, minimum=1, maximum=_MAX_LIMIT))
        return _many(CapitalFlow, await self._call(ENDPOINTS["get_capital_flow"], params))

    @staticmethod
    def _capital_flow_filters(
        asset: str | None, symbol: str | None, type: CapitalFlowType | str | None
    ) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        _put(params, "asset", P.symbol("asset", asset))
        _put(params, "symbol", P.symbol("symbol", symbol))
        _put(params, "type", P.enum_value("type", type, CapitalFlowType))
        return params

    def iter_capital_flow(
        self,
        start_time: int,
        end_time: int,
        *,
        asset: str | None = None,
        symbol: str | None = None,
        type: CapitalFlowType | str | None = None,
        limit: int = 1000,
    ) -> AsyncIterator[CapitalFlow]:
        """Capital flow over any range, oldest first.

        The range is split into windows of less than 7 days (the ``-4047`` rule), in
        chronological order. Each window is walked upwards from ``fromId=0`` (rows with a greater
        id), ``limit`` rows per request, until a short page: without ``fromId`` Binance answers
        with the *latest* rows of the window, and walking up from those would skip the older ones.
        """
        windows = P.time_windows(start_time, end_time, P.CAPITAL_FLOW_WINDOW_MS)
        filters = self._capital_flow_filters(asset, symbol, type)
        P.integer("limit", limit, minimum=1, maximum=_MAX_LIMIT, required=True)
        endpoint = ENDPOINTS["get_capital_flow"]

        async def walk() -> AsyncIterator[CapitalFlow]:
            for window_start, window_end in windows:
                params = [*filters, *_range(window_start, window_end)]
                rows = self._walk_ids(
                    endpoint,
                    CapitalFlow,
                    params,
                    "fromId",
                    0,
                    limit,
                    lambda flow: flow.id,
                    exclusive=True,
                )
                async for row in rows:
                    yield row

        return walk()

    async def get_cross_margin_fee_data(
        self, *, vip_level: int | None = None, coin: str | None = None
    ) -> list[CrossMarginFeeData]:
        """Cross margin interest rates and limits (weight 1 with ``coin``, 5 without).

        Docs: https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Fee-Data
        """
        params: list[tuple[str, str]] = []
        _put(params, "vipLevel", P.integer("vip_level", vip_level))
        _put(params, "coin", P.symbol("coin", coin))
        data = await self._call(ENDPOINTS["get_cross_margin_fee_data"], params)
        return _many(CrossMarginFeeData, data)

    async def get_isolated_margin_fee_data(
        self, *, vip_level: int | None = None, symbol: str | None = None
    ) -> list[IsolatedMarginFeeData]:
        """Isolated margin interest rates and limits (weight 1 with ``symbol``, 10 without).

        Docs: https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Fee-Data
        """
        params: list[tuple[str, str]] = []
        _put(params, "vipLevel", P.integer("vip_level", vip_level))
        _put(params, "symbol", P.symbol("symbol", symbol))
        data = await self._call(ENDPOINTS["get_isolated_margin_fee_data"], params)
        return _many(IsolatedMarginFeeData, data)

    async def get_margin_summary(self) -> MarginSummary:
        """The account's margin-level thresholds (normal, margin call, liquidation).

        Docs: https://developers.binance.com/docs/margin_trading/account/Get-Summary-of-Margin-account
        """
        return _one(MarginSummary, await self._call(ENDPOINTS["get_margin_summary"], []))

    async def get_bnb_burn_status(self) -> BnbBurnStatus:
        """Whether BNB pays spot fees and margin interest.

        Docs: https://developers.binance.com/docs/margin_trading/account/Get-BNB-Burn-Status
        """
        return _one(BnbBurnStatus, await self._call(ENDPOINTS["get_bnb_burn_status"], []))

    async def toggle_bnb_burn(
        self, *, spot_bnb_burn: bool | None = None, interest_bnb_burn: bool | None = None
    ) -> BnbBurnStatus:
        """Switch BNB payment of spot fees and/or margin interest (at least one switch).

        Docs: https://developers.binance.com/docs/wallet/asset/Toggle-BNB-Burn-On-Spot-Trade-And-Margin-Interest
        """
        P.require_one_of(("spot_bnb_burn", spot_bnb_burn), ("interest_bnb_burn", interest_bnb_burn))
        params: list[tuple[str, str]] = []
        if spot_bnb_burn is not None:
            params.append(("spotBNBBurn", P.lower_bool("spot_bnb_burn", spot_bnb_burn)))
        if interest_bnb_burn is not None:
            params.append(("interestBNBBurn", P.lower_bool("interest_bnb_burn", interest_bnb_burn)))
        return _one(BnbBurnStatus, await self._call(ENDPOINTS["toggle_bnb_burn"], params))

    # Transfers

    async def transfer(
        self,
        type: TransferType | str,
        asset: str,
        amount: AmountLike,
        *,
        from_symbol: str | None = None,
        to_symbol: str | None = None,
    ) -> TransactionId:
        """Universal transfer into, out of or between margin accounts.

        Isolated sources need ``from_symbol``, isolated targets ``to_symbol``; neither is allowed
        otherwise. Costs 900 UID weight.

        Docs: https://developers.binance.com/docs/wallet/asset/user-universal-transfer
        """
        kind = P.enum_value("type", type, TransferType, required=True)
        source, target = P.transfer_symbols(kind, from_symbol, to_symbol)
        params: list[tuple[str, str]] = [
            ("type", kind),
            ("asset", P.symbol("asset", asset, required=True)),
            ("amount", P.amount("amount", amount, required=True)),
        ]
        _put(params, "fromSymbol", source)
        _put(params, "toSymbol", target)
        return _one(TransactionId, await self._call(ENDPOINTS["transfer"], params))

    async def get_universal_transfer_history(
        self,
        type: TransferType | str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
        from_symbol: str | None = None,
        to_symbol: str | None = None,
    ) -> UniversalTransferHistory:
        """One page of universal transfers of one direction (last 6 months at most).

        Docs: https://developers.binance.com/docs/wallet/asset/query-user-universal-transfer
        """
        params = self._universal_transfer_filters(
            type, start_time, end_time, from_symbol, to_symbol
        )
        return await self._get_page(
            UniversalTransferHistory, "get_universal_transfer_history", params, current, size
        )

    @staticmethod
    def _universal_transfer_filters(
        type: TransferType | str,
        start_time: int | None,
        end_time: int | None,
        from_symbol: str | None,
        to_symbol: str | None,
    ) -> list[tuple[str, str]]:
        kind = P.enum_value("type", type, TransferType, required=True)
        source, target = P.transfer_symbols(kind, from_symbol, to_symbol)
        params: list[tuple[str, str]] = [("type", kind), *_range(start_time, end_time)]
        _put(params, "fromSymbol", source)
        _put(params, "toSymbol", target)
        return params

    def iter_universal_transfer_history(
        self,
        type: TransferType | str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        from_symbol: str | None = None,
        to_symbol: str | None = None,
        size: int = 100,
    ) -> AsyncIterator[UniversalTransfer]:
        """Walk every page of universal transfers of one direction."""
        params = self._universal_transfer_filters(
            type, start_time, end_time, from_symbol, to_symbol
        )
        return self._iter_pages(
            UniversalTransferHistory, "get_universal_transfer_history", params, size
        )

    async def get_transfer_history(
        self,
        *,
        asset: str | None = None,
        type: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
        isolated_symbol: str | None = None,
    ) -> MarginTransferHistory:
        """One page of transfers in (``ROLL_IN``) and out (``ROLL_OUT``) of margin accounts.

        The range may span 30 days at most.

        Docs: https://developers.binance.com/docs/margin_trading/transfer
        """
        params = self._transfer_filters(asset, type, start_time, end_time, isolated_symbol)
        return await self._get_page(
            MarginTransferHistory, "get_transfer_history", params, current, size
        )

    @staticmethod
    def _transfer_filters(
        asset: str | None,
        type: str | None,
        start_time: int | None,
        end_time: int | None,
        isolated_symbol: str | None,
    ) -> list[tuple[str, str]]:
        if type is not None and type not in ("ROLL_IN", "ROLL_OUT"):
            raise ParameterError("type", "must be one of ROLL_IN, ROLL_OUT")
        params: list[tuple[str, str]] = []
        _put(params, "asset", P.symbol("asset", asset))
        _put(params, "type", type)
        params += _range(start_time, end_time, max_days=30)
        _put(params, "isolatedSymbol", P.symbol("isolated_symbol", isolated_symbol))
        return params

    def iter_transfer_history(
        self,
        *,
        asset: str | None = None,
        type: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        isolated_symbol: str | None = None,
        size: int = 100,
    ) -> AsyncIterator[MarginTransfer]:
        """Walk every page of margin transfers."""
        params = self._transfer_filters(asset, type, start_time, end_time, isolated_symbol)
        return self._iter_pages(MarginTransferHistory, "get_transfer_history", params, size)

    async def get_max_transferable(
        self, asset: str, *, isolated_symbol: str | None = None
    ) -> MaxTransferable:
        """How much of ``asset`` can be transferred out of the cross or isolated account now.

        Docs: https://developers.binance.com/docs/margin_trading/transfer/Query-Max-Transfer-Out-Amount
        """
        params: list[tuple[str, str]] = [("asset", P.symbol("asset", asset, required=True))]
        _put(params, "isolatedSymbol", P.symbol("isolated_symbol", isolated_symbol))
        data = await self._call(ENDPOINTS["get_max_transferable"], params)
        return _one(MaxTransferable, data)

    # Small-balance conversion (replacements of the retired margin dust endpoints)

    async def get_dust_assets(
        self, *, account_type: DustAccountType | str = DustAccountType.MARGIN
    ) -> DustAssets:
        """Assets of the margin (default) or spot wallet that can be converted into BNB.

        Docs: https://developers.binance.com/docs/wallet/asset/assets-can-convert-bnb
        """
        params = [
            (
                "accountType",
                P.enum_value("account_type", account_type, DustAccountType, required=True),
            )
        ]
        return _one(DustAssets, await self._call(ENDPOINTS["get_dust_assets"], params))

    async def convert_dust(
        self,
        assets: str | Sequence[str],
        *,
        account_type: DustAccountType | str = DustAccountType.MARGIN,
    ) -> DustConversion:
        """Convert small balances of the margin (default) or spot wallet into BNB.

        Docs: https://developers.binance.com/docs/wallet/asset/dust-transfer
        """
        names = P.as_sequence("assets", assets)
        kind = P.enum_value("account_type", account_type, DustAccountType, required=True)
        # The endpoint takes the asset list as a repeated parameter.
        params = [("asset", name) for name in names]
        params.append(("accountType", kind))
        return _one(DustConversion, await self._call(ENDPOINTS["convert_dust"], params))

    async def get_dust_log(
        self, *, start_time: int | None = None, end_time: int | None = None
    ) -> DustLog:
        """Past conversions of small balances into BNB.

        Docs: https://developers.binance.com/docs/wallet/asset/dust-log
        """
        params = _range(start_time, end_time)
        return _one(DustLog, await self._call(ENDPOINTS["get_dust_log"], params))

    # Market data

    async def get_all_assets(self, *, asset: str | None = None) -> list[MarginAsset]:
        """Margin assets with borrow/repay minimums (one ``asset`` or all).

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Get-All-Margin-Assets
        """
        params: list[tuple[str, str]] = []
        _put(params, "asset", P.symbol("asset", asset))
        return _many(MarginAsset, await self._call(ENDPOINTS["get_all_assets"], params))

    async def get_all_pairs(self, *, symbol: str | None = None) -> list[MarginPair]:
        """Cross margin pairs (one ``symbol`` or all).

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Get-All-Cross-Margin-Pairs
        """
        params: list[tuple[str, str]] = []
        _put(params, "symbol", P.symbol("symbol", symbol))
        pairs = _many(MarginPair, await self._call(ENDPOINTS["get_all_pairs"], params))
        if symbol is None:
            self._on_all_pairs(pairs)
        return pairs

    async def get_all_isolated_pairs(
        self, *, symbol: str | None = None
    ) -> list[IsolatedMarginPair]:
        """Isolated margin pairs (one ``symbol`` or all).

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Get-All-Isolated-Margin-Symbol
        """
        params: list[tuple[str, str]] = []
        _put(params, "symbol", P.symbol("symbol", symbol))
        data = await self._call(ENDPOINTS["get_all_isolated_pairs"], params)
        return _many(IsolatedMarginPair, data)

    async def get_cross_margin_collateral_ratio(self) -> list[CollateralRatio]:
        """Cross margin collateral ratio tiers.

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Cross-margin-collateral-ratio
        """
        data = await self._call(ENDPOINTS["get_cross_margin_collateral_ratio"], [])
        return _many(CollateralRatio, data)

    async def get_isolated_margin_tier_data(
        self, symbol: str, *, tier: int | None = None
    ) -> list[IsolatedMarginTier]:
        """Tiers of an isolated pair (all, or one ``tier``).

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Query-Isolated-Margin-Tier-Data
        """
        params: list[tuple[str, str]] = [("symbol", P.symbol("symbol", symbol, required=True))]
        _put(params, "tier", P.integer("tier", tier, minimum=1))
        data = await self._call(ENDPOINTS["get_isolated_margin_tier_data"], params)
        return _many(IsolatedMarginTier, data)

    async def get_delist_schedule(self) -> list[DelistSchedule]:
        """Upcoming delistings of cross assets and isolated pairs.

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Get-Delist-Schedule
        """
        return _many(DelistSchedule, await self._call(ENDPOINTS["get_delist_schedule"], []))

    async def get_list_schedule(self) -> list[ListSchedule]:
        """Upcoming listings of cross assets and isolated pairs.

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Get-list-Schedule
        """
        return _many(ListSchedule, await self._call(ENDPOINTS["get_list_schedule"], []))

    async def get_available_inventory(self, type: MarginType | str) -> AvailableInventory:
        """Lendable inventory for cross (``MARGIN``) or isolated (``ISOLATED``) borrowing.

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Query-margin-avaliable-inventory
        """
        params = [("type", P.enum_value("type", type, MarginType, required=True))]
        data = await self._call(ENDPOINTS["get_available_inventory"], params)
        return _one(AvailableInventory, data)

    async def get_price_index(self, symbol: str) -> PriceIndex:
        """Margin price index of a symbol.

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Query-Margin-PriceIndex
        """
        params = [("symbol", P.symbol("symbol", symbol, required=True))]
        return _one(PriceIndex, await self._call(ENDPOINTS["get_price_index"], params))

    async def get_limit_price_pairs(self) -> LimitPricePairs:
        """Pairs whose limit price must stay within a band around the index price.

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Get-Limit-Price-Pairs
        """
        return _one(LimitPricePairs, await self._call(ENDPOINTS["get_limit_price_pairs"], []))

    async def get_risk_based_liquidation_ratio(self) -> list[RiskBasedLiquidationRatio]:
        """Risk-based liquidation ratio per asset.

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Get-Margin-Asset-Risk-Based-Liquidation-Ratio
        """
        data = await self._call(ENDPOINTS["get_risk_based_liquidation_ratio"], [])
        return _many(RiskBasedLiquidationRatio, data)

    async def get_restricted_assets(self) -> RestrictedAssets:
        """Assets that cannot open longs, or whose collateral cap is exhausted.

        Docs: https://developers.binance.com/docs/margin_trading/market-data/Get-Margin-Restricted-Assets
        """
        return _one(RestrictedAssets, await self._call(ENDPOINTS["get_restricted_assets"], []))

    # Streams

    async def create_listen_token(
        self, *, symbol: str | None = None, validity_ms: int | None = None
    ) -> ListenToken:
        """Create a user-data listen token for the cross account, or the isolated ``symbol``.

        ``validity_ms`` defaults to (and may not exceed) 24 hours. API key only, no signature.

        Docs: https://developers.binance.com/docs/margin_trading/trade-data-stream/Listen-Token-Websocket-API
        """
        params: list[tuple[str, str]] = []
        if symbol is not None:
            params.append(("isIsolated", P.lower_bool("is_isolated", True)))
            params.append(("symbol", P.symbol("symbol", symbol)))
        validity = P.integer("validity_ms", validity_ms, minimum=1, maximum=_DAY_MS)
        _put(params, "validity", validity)
        return _one(ListenToken, await self._call(ENDPOINTS["create_listen_token"], params))

    async def start_risk_data_stream(self) -> ListenKey:
        """Get the risk-stream listen key (an active key is returned and extended by 60 min).

        Docs: https://developers.binance.com/docs/margin_trading/risk-data-stream/Start-User-Data-Stream
        """
        return _one(ListenKey, await self._call(ENDPOINTS["start_risk_data_stream"], []))

    async def keepalive_risk_data_stream(self, listen_key: str) -> None:
        """Extend a risk-stream listen key by 60 minutes (send about every 30 minutes).

        Docs: https://developers.binance.com/docs/margin_trading/risk-data-stream/Keepalive-User-Data-Stream
        """
        params = [("listenKey", P.key("listen_key", listen_key, required=True))]
        await self._call(ENDPOINTS["keepalive_risk_data_stream"], params)

    async def close_risk_data_stream(self, listen_key: str) -> None:
        """Close a risk-stream listen key.

        Docs: https://developers.binance.com/docs/margin_trading/risk-data-stream/Close-User-Data-Stream
        """
        params = [("listenKey", P.key("listen_key", listen_key, required=True))]
        await self._call(ENDPOINTS["close_risk_data_stream"], params)

    # Institutional loan (risk units)

    async def get_loan_group_ltv_details(
        self, *, group_id: int | None = None
    ) -> list[LoanGroupLtv]:
        """LTV details of the risk units (parent: all or ``group_id``; credit account: its own).

        Docs: https://developers.binance.com/docs/institutional_loan/account
        """
        params: list[tuple[str, str]] = []
        _put(params, "groupId", P.integer("group_id", group_id))
        data = await self._call(ENDPOINTS["get_loan_group_ltv_details"], params)
        return _many(LoanGroupLtv, data)

    async def get_loan_groups(self, *, group_id: int | None = None) -> list[LoanGroupDetail]:
        """Details of the parent account's risk units: all, or the one ``group_id``.

        First-version query (institutional loan change log 2025-05-16), parent account only.
        Binance documents no response: the records are decoded as the ltv-details records
        (see :class:`~binance_margin_async.models.LoanGroupDetail`).

        Docs: https://developers.binance.com/docs/institutional_loan/change-log
        """
        params: list[tuple[str, str]] = []
        _put(params, "groupId", P.integer("group_id", group_id))
        return _many(LoanGroupDetail, await self._call(ENDPOINTS["get_loan_groups"], params))

    async def get_loan_group(self) -> list[LoanGroupDetail]:
        """Details of the credit account's own risk unit (credit account only).

        First-version query (institutional loan change log 2025-05-16). Binance documents no
        response: an array of detail records, as ltv-details answers, is assumed; a single
        object is taken as an array of one.

        Docs: https://developers.binance.com/docs/institutional_loan/change-log
        """
        data = await self._call(ENDPOINTS["get_loan_group"], [])
        return _many(LoanGroupDetail, [data] if isinstance(data, dict) else data)

    async def get_active_loan_groups(self) -> list[ActiveLoanGroup]:
        """Active risk units and their members (parent account).

        Docs: https://developers.binance.com/docs/institutional_loan/account/Query-Institution-Loan-Group_Activated
        """
        return _many(ActiveLoanGroup, await self._call(ENDPOINTS["get_active_loan_groups"], []))

    async def get_closed_loan_groups(
        self, *, current: int | None = None, size: int | None = None
    ) -> ClosedLoanGroups:
        """One page of closed risk units (credit account).

        Docs: https://developers.binance.com/docs/institutional_loan/account/Query-Closed-Group-Record
        """
        return await self._get_page(ClosedLoanGroups, "get_closed_loan_groups", [], current, size)

    def iter_closed_loan_groups(self, *, size: int = 100) -> AsyncIterator[ClosedLoanGroup]:
        """Walk every page of closed risk units."""
        return self._iter_pages(ClosedLoanGroups, "get_closed_loan_groups", [], size)

    async def close_loan_group(self, group_id: int) -> LoanGroupClosed:
        """Close a risk unit whose liabilities are repaid (credit account).

        Docs: https://developers.binance.com/docs/institutional_loan/account/Institution-Loan-Group-Close
        """
        params = [("groupId", P.integer("group_id", group_id, required=True))]
        return _one(LoanGroupClosed, await self._call(ENDPOINTS["close_loan_group"], params))

    async def add_loan_group_collateral_account(
        self, group_id: int, sub_email: str, *, enable_spot: bool, enable_margin: bool
    ) -> None:
        """Add a collateral sub-account to a risk unit (parent account; cannot be undone by API).

        Docs: https://developers.binance.com/docs/institutional_loan/account/Institution-Loan-Group-Edit-Member
        """
        params = [
            ("groupId", P.integer("group_id", group_id, required=True)),
            ("subEmail", P.email("sub_email", sub_email, required=True)),
            ("enableSpot", P.upper_bool("enable_spot", enable_spot)),
            ("enableMargin", P.upper_bool("enable_margin", enable_margin)),
        ]
        await self._call(ENDPOINTS["add_loan_group_collateral_account"], params)

    async def borrow_loan_group(
        self, group_id: int, asset_name: str, amount: AmountLike
    ) -> LoanGroupTransaction:
        """Borrow for a risk unit (credit account).

        Docs: https://developers.binance.com/docs/institutional_loan/borrow-and-repay
        """
        params = self._loan_group_amount(group_id, asset_name, amount)
        data = await self._call(ENDPOINTS["borrow_loan_group"], params)
        return _one(LoanGroupTransaction, data)

    async def repay_loan_group(
        self, group_id: int, asset_name: str, amount: AmountLike
    ) -> LoanGroupTransaction:
        """Repay a risk unit's loan (credit account); repays min(available, ``amount``).

        Docs: https://developers.binance.com/docs/institutional_loan/borrow-and-repay/Institution-Loan-Group-Repay
        """
        params = self._loan_group_amount(group_id, asset_name, amount)
        data = await self._call(ENDPOINTS["repay_loan_group"], params)
        return _one(LoanGroupTransaction, data)

    @staticmethod
    def _loan_group_amount(
        group_id: int, asset_name: str, amount: AmountLike
    ) -> list[tuple[str, str]]:
        return [
            ("groupId", P.integer("group_id", group_id, required=True)),
            ("assetName", P.symbol("asset_name", asset_name, required=True)),
            ("amount", P.amount("amount", amount, required=True)),
        ]

    async def get_loan_group_borrow_repay_records(
        self,
        type: BorrowRepayType | str,
        *,
        group_id: int | None = None,
        asset: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
    ) -> LoanGroupBorrowRepayRecords:
        """One page of risk-unit borrows or repays (range of 100 days at most).

        Docs: https://developers.binance.com/docs/institutional_loan/borrow-and-repay/Institution-Loan-Group-Borrow-Repay-Records
        """
        params = self._loan_group_filters(
            group_id, start_time, end_time, asset=asset, type=type, typed=True
        )
        return await self._get_page(
            LoanGroupBorrowRepayRecords,
            "get_loan_group_borrow_repay_records",
            params,
            current,
            size,
        )

    @staticmethod
    def _loan_group_filters(
        group_id: int | None,
        start_time: int | None,
        end_time: int | None,
        *,
        asset: str | None = None,
        type: BorrowRepayType | str | None = None,
        typed: bool = False,
    ) -> list[tuple[str, str]]:
        """Filters of the risk-unit histories (ranges of 100 days at most); ``typed``: the
        borrow/repay records, whose ``type`` is mandatory."""
        params: list[tuple[str, str]] = []
        _put(params, "groupId", P.integer("group_id", group_id))
        _put(params, "type", P.enum_value("type", type, BorrowRepayType, required=typed))
        _put(params, "asset", P.symbol("asset", asset))
        params += _range(start_time, end_time, max_days=100)
        return params

    def iter_loan_group_borrow_repay_records(
        self,
        type: BorrowRepayType | str,
        *,
        group_id: int | None = None,
        asset: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        size: int = 100,
    ) -> AsyncIterator[LoanGroupBorrowRepayRecord]:
        """Walk every page of risk-unit borrows or repays."""
        params = self._loan_group_filters(
            group_id, start_time, end_time, asset=asset, type=type, typed=True
        )
        return self._iter_pages(
            LoanGroupBorrowRepayRecords, "get_loan_group_borrow_repay_records", params, size
        )

    async def get_loan_group_interest_history(
        self,
        *,
        group_id: int | None = None,
        asset: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
    ) -> LoanGroupInterestHistory:
        """One page of risk-unit interest charges (range of 100 days at most).

        Docs: https://developers.binance.com/docs/institutional_loan/borrow-and-repay/Institution-Loan-Group-Interest-History
        """
        params = self._loan_group_filters(group_id, start_time, end_time, asset=asset)
        return await self._get_page(
            LoanGroupInterestHistory, "get_loan_group_interest_history", params, current, size
        )

    def iter_loan_group_interest_history(
        self,
        *,
        group_id: int | None = None,
        asset: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        size: int = 100,
    ) -> AsyncIterator[LoanGroupInterestRecord]:
        """Walk every page of risk-unit interest charges."""
        params = self._loan_group_filters(group_id, start_time, end_time, asset=asset)
        return self._iter_pages(
            LoanGroupInterestHistory, "get_loan_group_interest_history", params, size
        )

    async def get_loan_group_force_liquidation_records(
        self,
        *,
        group_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
    ) -> LoanGroupForceLiquidations:
        """One page of risk-unit forced liquidations (range of 100 days at most).

        Docs: https://developers.binance.com/docs/institutional_loan/trade
        """
        return await self._get_page(
            LoanGroupForceLiquidations,
            "get_loan_group_force_liquidation_records",
            self._loan_group_filters(group_id, start_time, end_time),
            current,
            size,
        )

    def iter_loan_group_force_liquidation_records(
        self,
        *,
        group_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        size: int = 100,
    ) -> AsyncIterator[LoanGroupForceLiquidation]:
        """Walk every page of risk-unit forced liquidations."""
        return self._iter_pages(
            LoanGroupForceLiquidations,
            "get_loan_group_force_liquidation_records",
            self._loan_group_filters(group_id, start_time, end_time),
            size,
        )

    async def get_loan_group_force_liquidation_transfer_records(
        self,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int | None = None,
        size: int | None = None,
    ) -> LoanGroupLiquidationTransfers:
        """One page of transfers made during risk-unit liquidations (credit account).

        Docs: https://developers.binance.com/docs/institutional_loan/transfer/Query-Institution-Loan-Forced-Liquidation-Transfer-Records
        """
        return await self._get_page(
            LoanGroupLiquidationTransfers,
            "get_loan_group_force_liquidation_transfer_records",
            _range(start_time, end_time, max_days=100),
            current,
            size,
        )

    def iter_loan_group_force_liquidation_transfer_records(
        self, *, start_time: int | None = None, end_time: int | None = None, size: int = 100
    ) -> AsyncIterator[LoanGroupLiquidationTransferRecord]:
        """Walk every page of risk-unit liquidation transfers."""
        return self._iter_pages(
            LoanGroupLiquidationTransfers,
            "get_loan_group_force_liquidation_transfer_records",
            _range(start_time, end_time, max_days=100),
            size,
        )

    async def transfer_out_loan_group(
        self, asset: str, amount: AmountLike, *, sub_email: str | None = None
    ) -> None:
        """Move assets out of a risk unit to the same UID's spot wallet (``sub_email`` is
        required when the parent account calls).

        Docs: https://developers.binance.com/docs/institutional_loan/transfer
        """
        params: list[tuple[str, str]] = []
        _put(params, "subEmail", P.email("sub_email", sub_email))
        params.append(("asset", P.symbol("asset", asset, required=True)))
        params.append(("amount", P.amount("amount", amount, required=True)))
        await self._call(ENDPOINTS["transfer_out_loan_group"], params)
