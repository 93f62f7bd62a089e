"""REST routes of the fake exchange: the endpoint table mapped to handlers.

Routes come from :data:`binance_margin_async.endpoints.ENDPOINTS_BY_ROUTE` (plus ``GET
/api/v3/time``), so the fake charges exactly the weights and pools the client's limiter expects.
Every route in that table is served: the checks (key, signature, timestamp, weights) always run;
endpoints the ledger cannot back answer ``-1020`` "not supported" after those checks.

A handler gets a :class:`Call` and returns the JSON-able response body. It must read every
parameter it accepts and call ``call.params.finish()`` *before* changing any state, so that a
request with an unknown parameter (``-1104``) changes nothing, as on Binance.

Most ledger-backed routes are declared as data (:class:`_LedgerRoute`): which Binance parameters
are mandatory, which are passed through as text (the ledger validates amounts, enums and flags
with Binance's codes), which are integers; the parameter ``fooBar`` becomes the keyword ``foo_bar``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from ..endpoints import ENDPOINTS_BY_ROUTE, SERVER_TIME, Endpoint, Security
from ._params import Params
from .ledger import Ledger, LedgerError

__all__ = ["MARGIN", "TRADE", "Call", "Handler", "Route", "build_routes", "ledger_handlers"]


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated request, as a handler sees it."""

    params: Params
    account_id: str | None  # None on Security.NONE endpoints
    now_ms: int  # server time (clock skew applied)
    # The margin account a special key trades ("CROSS" or its isolated symbol); None for the
    # account's own API key.
    scope: str | None = None


Handler = Callable[[Call], Any]

#: Permission an API key needs for a state-changing SIGNED route: "TRADE" (orders) or "MARGIN"
#: (loans, repayments, transfers and every other margin write). Reads need none.
TRADE: Final = "TRADE"
MARGIN: Final = "MARGIN"
_ORDER_PATHS: Final = frozenset(
    {
        "/sapi/v1/margin/order",
        "/sapi/v1/margin/order/oco",
        "/sapi/v1/margin/order/oto",
        "/sapi/v1/margin/order/otoco",
        "/sapi/v1/margin/openOrders",
        "/sapi/v1/margin/orderList",
    }
)


@dataclass(frozen=True, slots=True)
class Route:
    """A served ``(method, path)``: its table entry, handler and needed permission."""

    endpoint: Endpoint
    handler: Handler
    permission: str | None


def _permission(ep: Endpoint) -> str | None:
    if ep.security is not Security.SIGNED or ep.method == "GET":
        return None
    # Every signed write the fake serves under /api/v3 is an order endpoint.
    return TRADE if ep.path in _ORDER_PATHS or ep.path.startswith("/api/") else MARGIN


def _unsupported(call: Call) -> Any:
    # Read nothing: the request passed every generic check, only the business logic is missing.
    raise LedgerError(-1020, "This operation is not supported by the fake exchange.")


def build_routes(
    handlers: Mapping[tuple[str, str], Handler], extra: Iterable[Endpoint] = ()
) -> dict[tuple[str, str], Route]:
    """One :class:`Route` per table entry; ``handlers`` maps ``(method, path)`` to its handler.

    ``extra``: routes the fake serves beyond the client's table (the Spot API routes of special
    keys); an entry the client's table already has keeps the client's weights.
    """
    table: dict[tuple[str, str], Endpoint] = dict(ENDPOINTS_BY_ROUTE)
    table[(SERVER_TIME.method, SERVER_TIME.path)] = SERVER_TIME
    for ep in extra:
        table.setdefault((ep.method, ep.path), ep)
    unknown = set(handlers) - set(table)
    if unknown:
        raise ValueError(f"handlers for routes missing from the endpoint table: {sorted(unknown)}")
    return {
        route: Route(ep, handlers.get(route, _unsupported), _permission(ep))
        for route, ep in table.items()
    }


_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


@dataclass(frozen=True, slots=True)
class _LedgerRoute:
    """``ledger.<method>(account_id, *mandatory, [now,] **optional)``."""

    method: str
    mandatory: tuple[str, ...] = ()
    text: tuple[str, ...] = ()  # optional, passed as sent
    ints: tuple[str, ...] = ()  # optional integers
    takes_now: bool = False
    # Binance parameters the ledger does not model: an explicit -1020, not a silent ignore.
    unmodelled: tuple[str, ...] = ()
    # A Spot API route of margin special keys: the key's margin account sets ``is_isolated``, the
    # answer takes the Spot shape, and a symbol outside an isolated key's pair gets this error.
    spot: LedgerError | None = None

    def handler(self, ledger: Ledger) -> Handler:
        function = getattr(ledger, self.method)
        mandatory = self.mandatory
        # Keyword names computed once, not per request.
        text = tuple((name, _snake(name)) for name in self.text)
        ints = tuple((name, _snake(name)) for name in self.ints)
        takes_now = self.takes_now
        unmodelled = self.unmodelled
        spot = self.spot
        symbol_arg = mandatory.index("symbol") if "symbol" in mandatory else None

        def handle(call: Call) -> Any:
            p = call.params
            for name in unmodelled:
                if p.text(name) is not None:
                    raise LedgerError(
                        -1020, f"Parameter '{name}' is not supported by the fake exchange."
                    )
            args: list[Any] = [p.text(name, required=True) for name in mandatory]
            kwargs: dict[str, Any] = {}
            for name, keyword in text:
                value = p.text(name)
                if value is not None:
                    kwargs[keyword] = value
            for name, keyword in ints:
                number = p.long(name)
                if number is not None:
                    kwargs[keyword] = number
            p.finish()
            if spot is not None:
                symbol = args[symbol_arg] if symbol_arg is not None else kwargs.get("symbol")
                kwargs["spot"] = True
                kwargs["is_isolated"] = _special_key_scope(call, symbol, spot)
                if kwargs["is_isolated"] and symbol is None:
                    kwargs["symbol"] = call.scope  # an isolated key's only pair
            if takes_now:
                args.append(call.now_ms)
            return function(call.account_id, *args, **kwargs)

        return handle


_SPOT_NOT_MODELLED: Final = LedgerError(
    -1020, "The fake exchange has no spot account: /api/v3 trading needs a margin special key."
)


def _special_key_scope(call: Call, symbol: str | None, wrong_symbol: LedgerError) -> bool:
    """Whether a special key's request trades an isolated pair (``symbol`` must be that pair)."""
    if call.scope is None:
        raise _SPOT_NOT_MODELLED
    if call.scope == "CROSS":
        return False
    if symbol is not None and symbol != call.scope:
        raise wrong_symbol
    return True


_ISO: Final = ("isIsolated",)
_PAGE: Final = ("startTime", "endTime", "current", "size")
_ORDER_OPTIONS: Final = (
    "newOrderRespType",
    "sideEffectType",
    "selfTradePreventionMode",
    "autoRepayAtCancel",
)
_WORKING: Final = (
    "workingType",
    "workingSide",
    "workingClientOrderId",
    "workingPrice",
    "workingQuantity",
    "workingIcebergQty",
    "workingTimeInForce",
)


def _pending(prefix: str) -> tuple[str, ...]:
    return tuple(
        prefix + suffix
        for suffix in ("Type", "ClientOrderId", "Price", "StopPrice", "IcebergQty", "TimeInForce")
    )


_LEDGER_ROUTES: Final[Mapping[tuple[str, str], _LedgerRoute]] = {
    # Orders
    ("POST", "/sapi/v1/margin/order"): _LedgerRoute(
        "new_order",
        ("symbol", "side", "type"),
        (*_ISO, "quantity", "quoteOrderQty", "price", "stopPrice", "newClientOrderId",
         "icebergQty", "timeInForce", *_ORDER_OPTIONS),
        takes_now=True,
        unmodelled=("trailingDelta",),
    ),
    ("DELETE", "/sapi/v1/margin/order"): _LedgerRoute(
        "cancel_order",
        ("symbol",),
        (*_ISO, "orderId", "origClientOrderId", "newClientOrderId"),
        takes_now=True,
    ),
    ("GET", "/sapi/v1/margin/order"): _LedgerRoute(
        "get_order", ("symbol",), (*_ISO, "orderId", "origClientOrderId")
    ),
    ("DELETE", "/sapi/v1/margin/openOrders"): _LedgerRoute(
        "cancel_open_orders", ("symbol",), _ISO, takes_now=True
    ),
    ("GET", "/sapi/v1/margin/openOrders"): _LedgerRoute("open_orders", (), (*_ISO, "symbol")),
    ("GET", "/sapi/v1/margin/allOrders"): _LedgerRoute(
        "all_orders", ("symbol",), (*_ISO, "orderId"), ("startTime", "endTime", "limit")
    ),
    ("GET", "/sapi/v1/margin/myTrades"): _LedgerRoute(
        "my_trades", ("symbol",), (*_ISO, "orderId", "fromId"), ("startTime", "endTime", "limit")
    ),
    ("POST", "/sapi/v1/margin/order/oco"): _LedgerRoute(
        "new_oco",
        ("symbol", "side", "quantity", "price", "stopPrice"),
        (*_ISO, "listClientOrderId", "limitClientOrderId", "limitIcebergQty",
         "stopClientOrderId", "stopLimitPrice", "stopIcebergQty", "stopLimitTimeInForce",
         *_ORDER_OPTIONS),
        takes_now=True,
    ),
    ("POST", "/sapi/v1/margin/order/oto"): _LedgerRoute(
        "new_oto",
        ("symbol",),
        (*_ISO, "listClientOrderId", *_ORDER_OPTIONS, *_WORKING, "pendingSide",
         "pendingQuantity", *_pending("pending")),
        takes_now=True,
        unmodelled=("pendingTrailingDelta",),
    ),
    ("POST", "/sapi/v1/margin/order/otoco"): _LedgerRoute(
        "new_otoco",
        ("symbol",),
        (*_ISO, "listClientOrderId", *_ORDER_OPTIONS, *_WORKING, "pendingSide",
         "pendingQuantity", *_pending("pendingAbove"), *_pending("pendingBelow")),
        takes_now=True,
        unmodelled=("pendingAboveTrailingDelta", "pendingBelowTrailingDelta"),
    ),
    ("DELETE", "/sapi/v1/margin/orderList"): _LedgerRoute(
        "cancel_order_list",
        ("symbol",),
        (*_ISO, "orderListId", "listClientOrderId", "newClientOrderId"),
        takes_now=True,
    ),
    ("GET", "/sapi/v1/margin/orderList"): _LedgerRoute(
        "get_order_list", (), (*_ISO, "symbol", "orderListId", "origClientOrderId")
    ),
    ("GET", "/sapi/v1/margin/openOrderList"): _LedgerRoute(
        "open_order_lists", (), (*_ISO, "symbol")
    ),
    ("GET", "/sapi/v1/margin/allOrderList"): _LedgerRoute(
        "all_order_lists", (), (*_ISO, "symbol", "fromId"), ("startTime", "endTime", "limit")
    ),
    # Loans
    ("POST", "/sapi/v1/margin/borrow-repay"): _LedgerRoute(
        "borrow_repay", ("type", "asset", "amount"), (*_ISO, "symbol"), takes_now=True
    ),
    ("GET", "/sapi/v1/margin/borrow-repay"): _LedgerRoute(
        "borrow_repay_history", ("type",), ("asset", "isolatedSymbol"), ("txId", *_PAGE)
    ),
    ("GET", "/sapi/v1/margin/interestHistory"): _LedgerRoute(
        "interest_history", (), ("asset", "isolatedSymbol"), _PAGE
    ),
    ("GET", "/sapi/v1/margin/maxBorrowable"): _LedgerRoute(
        "max_borrowable", ("asset",), ("isolatedSymbol",)
    ),
    # Accounts
    ("GET", "/sapi/v1/margin/account"): _LedgerRoute("cross_account"),
    ("GET", "/sapi/v1/margin/isolated/account"): _LedgerRoute("isolated_account", (), ("symbols",)),
    ("POST", "/sapi/v1/margin/isolated/account"): _LedgerRoute(
        "create_isolated_account", ("symbol",), takes_now=True
    ),
    # Transfers
    ("POST", "/sapi/v1/asset/transfer"): _LedgerRoute(
        "transfer", ("type", "asset", "amount"), ("fromSymbol", "toSymbol"), takes_now=True
    ),
    ("GET", "/sapi/v1/margin/transfer"): _LedgerRoute(
        "transfer_history", (), ("asset", "type", "isolatedSymbol"), _PAGE
    ),
    ("GET", "/sapi/v1/margin/maxTransferable"): _LedgerRoute(
        "max_transferable", ("asset",), ("isolatedSymbol",)
    ),
}  # fmt: skip

# Universal transfer history: wallet names as the margin history reports them → as the
# universal transfer types spell them (MAIN_MARGIN, MARGIN_ISOLATEDMARGIN, ...).
_UNIVERSAL_WALLETS: Final = {
    "SPOT": "MAIN",
    "CROSS_MARGIN": "MARGIN",
    "ISOLATED_MARGIN": "ISOLATEDMARGIN",
}
_UNIVERSAL_TYPES: Final = frozenset(
    f"{src}_{dst}"
    for src in _UNIVERSAL_WALLETS.values()
    for dst in _UNIVERSAL_WALLETS.values()
    if (src, dst) != ("MAIN", "MAIN") and (src, dst) != ("MARGIN", "MARGIN")
)
_MAX_PAGE_SIZE: Final = 100


def _all_pages(fetch: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row of a paged ledger history (``fetch(current)`` → ``{"rows", "total"}``)."""
    rows: list[dict[str, Any]] = []
    current = 1
    while True:
        page = fetch(current)
        rows.extend(page["rows"])
        if len(rows) >= page["total"] or not page["rows"]:
            return rows
        current += 1


def _all_rows(
    ledger: Ledger, account_id: str, scope: str | None, start: int | None, end: int | None
) -> list[dict[str, Any]]:
    """Every transfer row of one margin wallet (the ledger pages by at most 100)."""
    return _all_pages(
        lambda current: ledger.transfer_history(
            account_id,
            isolated_symbol=scope,
            start_time=start,
            end_time=end,
            current=current,
            size=_MAX_PAGE_SIZE,
        )
    )


def _universal_history(ledger: Ledger) -> Handler:
    """``GET /sapi/v1/asset/transfer``, assembled from the ledger's per-wallet histories.

    https://developers.binance.com/docs/wallet/asset/query-user-universal-transfer
    """

    def handle(call: Call) -> Any:
        p = call.params
        kind = p.enum("type", _UNIVERSAL_TYPES, required=True)
        from_symbol = p.text("fromSymbol")
        to_symbol = p.text("toSymbol")
        start, end = p.long("startTime"), p.long("endTime")
        current = p.long("current") or 1
        size = p.long("size") or 10
        p.finish()
        if not 1 <= size <= _MAX_PAGE_SIZE:
            raise LedgerError(-1130, "Data sent for parameter 'size' is not valid.")
        if current < 1:
            raise LedgerError(-1130, "Data sent for parameter 'current' is not valid.")
        assert call.account_id is not None
        rows: dict[int, dict[str, Any]] = {}
        for scope in (None, *ledger.isolated_symbols(call.account_id)):
            for row in _all_rows(ledger, call.account_id, scope, start, end):
                row_type = (
                    f"{_UNIVERSAL_WALLETS[row['transFrom']]}_{_UNIVERSAL_WALLETS[row['transTo']]}"
                )
                if row_type != kind or row["txId"] in rows:
                    continue
                if from_symbol is not None and row.get("fromSymbol") != from_symbol:
                    continue
                if to_symbol is not None and row.get("toSymbol") != to_symbol:
                    continue
                rows[row["txId"]] = {
                    "asset": row["asset"],
                    "amount": row["amount"],
                    "type": kind,
                    "status": row["status"],
                    "tranId": row["txId"],
                    "timestamp": row["timestamp"],
                }
        ordered = sorted(rows.values(), key=lambda r: (r["timestamp"], r["tranId"]), reverse=True)
        first = (current - 1) * size
        return {"total": len(ordered), "rows": ordered[first : first + size]}

    return handle


_Q8: Final = Decimal("0.00000001")
_CAPITAL_FLOW_TYPES: Final = frozenset(
    {"TRANSFER", "BORROW", "REPAY", "BUY_INCOME", "BUY_EXPENSE", "SELL_INCOME", "SELL_EXPENSE",
     "TRADING_COMMISSION", "BUY_LIQUIDATION", "SELL_LIQUIDATION", "REPAY_LIQUIDATION",
     "OTHER_LIQUIDATION", "LIQUIDATION_FEE", "SMALL_BALANCE_CONVERT", "COMMISSION_RETURN",
     "SMALL_CONVERT"}
)  # fmt: skip
_SEVEN_DAYS_MS: Final = 7 * 86_400_000
_MAX_TRADES_PAGE: Final = 1000


def _flow(
    time: int, tran_id: int, asset: str, kind: str, amount: Decimal, symbol: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"tranId": tran_id, "timestamp": time, "asset": asset}
    if symbol is not None:
        row["symbol"] = symbol
    row["type"] = kind
    row["amount"] = str(amount.quantize(_Q8))
    return row


def _capital_flows(ledger: Ledger, account_id: str, symbol: str | None) -> list[dict[str, Any]]:
    """The wallet's whole capital flow, oldest first, from the ledger's histories: transfers,
    borrows, repayments and trades (income, expense, commission). Outflows are negative."""
    flows: list[dict[str, Any]] = []
    for row in _all_rows(ledger, account_id, symbol, None, None):
        sign = 1 if row["type"] == "ROLL_IN" else -1
        flows.append(_flow(row["timestamp"], row["txId"], row["asset"], "TRANSFER",
                           sign * Decimal(row["amount"]), symbol))  # fmt: skip
    for kind, sign in (("BORROW", 1), ("REPAY", -1)):

        def fetch(current: int, kind: str = kind) -> dict[str, Any]:
            return ledger.borrow_repay_history(
                account_id, kind, isolated_symbol=symbol, current=current, size=_MAX_PAGE_SIZE
            )

        for row in _all_pages(fetch):
            flows.append(_flow(row["timestamp"], row["txId"], row["asset"], kind,
                               sign * Decimal(row["amount"]), symbol))  # fmt: skip
    specs = {spec.symbol: spec for spec in ledger.symbols()}
    for pair in [symbol] if symbol is not None else list(specs):
        spec = specs[pair]
        from_id = 0  # from the first trade: without it the ledger answers the latest ones
        while True:
            trades = ledger.my_trades(
                account_id, pair, is_isolated=symbol is not None, from_id=from_id,
                limit=_MAX_TRADES_PAGE,
            )  # fmt: skip
            for trade in trades:
                qty = Decimal(trade["qty"])
                quote = qty * Decimal(trade["price"])
                time, tid = trade["time"], trade["id"]
                if trade["isBuyer"]:
                    legs = ((spec.base, "BUY_INCOME", qty), (spec.quote, "BUY_EXPENSE", -quote))
                else:
                    legs = ((spec.base, "SELL_EXPENSE", -qty), (spec.quote, "SELL_INCOME", quote))
                for asset, kind, amount in legs:
                    flows.append(_flow(time, tid, asset, kind, amount, pair))
                fee = Decimal(trade["commission"])
                if fee:
                    flows.append(_flow(time, tid, trade["commissionAsset"], "TRADING_COMMISSION",
                                       -fee, pair))  # fmt: skip
            if len(trades) < _MAX_TRADES_PAGE:
                break
            from_id = trades[-1]["id"] + 1
    flows.sort(key=lambda row: (row["timestamp"], row["tranId"]))
    return [{"id": number, **row} for number, row in enumerate(flows, start=1)]


def _capital_flow(ledger: Ledger) -> Handler:
    """``GET /sapi/v1/margin/capital-flow``: rows with ``id > fromId`` (oldest first), or the
    latest ``limit``; a ``startTime``-``endTime`` span over 7 days is ``-4047``.

    https://developers.binance.com/docs/margin_trading/account/Query-Cross-Isolated-Margin-Capital-Flow
    """

    def handle(call: Call) -> Any:
        p = call.params
        asset = p.text("asset")
        symbol = p.text("symbol")
        kind = p.enum("type", _CAPITAL_FLOW_TYPES)
        start, end = p.long("startTime"), p.long("endTime")
        from_id = p.long("fromId")
        limit = p.long("limit") or 500
        p.finish()
        assert call.account_id is not None
        if not 1 <= limit <= _MAX_TRADES_PAGE:
            raise LedgerError(-1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and not 0 <= end - start <= _SEVEN_DAYS_MS:
            raise LedgerError(-4047, "Time interval must be within 0-7 days")
        if symbol is not None and symbol not in ledger.isolated_symbols(call.account_id):
            raise LedgerError(-3003, "Margin account does not exist.")
        rows = [
            row
            for row in _capital_flows(ledger, call.account_id, symbol)
            if (asset is None or row["asset"] == asset)
            and (kind is None or row["type"] == kind)
            and (start is None or row["timestamp"] >= start)
            and (end is None or row["timestamp"] <= end)
            and (from_id is None or row["id"] > from_id)
        ]
        return rows[:limit] if from_id is not None else rows[-limit:]

    return handle


def _market_data(ledger: Ledger) -> dict[tuple[str, str], Handler]:
    """Margin assets and pairs from the ledger's configured symbols (all margin-enabled)."""
    specs = {spec.symbol: spec for spec in ledger.symbols()}
    pair_ids = {symbol: number for number, symbol in enumerate(specs, start=1)}
    assets = sorted({asset for spec in specs.values() for asset in (spec.base, spec.quote)})

    def one_or_all(name: str, universe: Any, p: Params, error: LedgerError) -> list[str]:
        wanted = p.text(name)
        p.finish()
        if wanted is None:
            return list(universe)
        if wanted not in universe:
            raise error
        return [wanted]

    def all_assets(call: Call) -> Any:
        chosen = one_or_all(
            "asset", assets, call.params, LedgerError(-3027, "Not a valid margin asset.")
        )
        return [
            {
                "assetFullName": asset,
                "assetName": asset,
                "isBorrowable": True,
                "isMortgageable": True,
                "userMinBorrow": "0.00000000",
                "userMinRepay": "0.00000000",
                "delistTime": None,
            }
            for asset in chosen
        ]

    def pairs(call: Call, *, with_id: bool) -> Any:
        chosen = one_or_all("symbol", specs, call.params, LedgerError(-1121, "Invalid symbol."))
        rows = []
        for symbol in chosen:
            spec = specs[symbol]
            row: dict[str, Any] = {"id": pair_ids[symbol]} if with_id else {}
            row.update(
                symbol=symbol,
                base=spec.base,
                quote=spec.quote,
                isMarginTrade=True,
                isBuyAllowed=True,
                isSellAllowed=True,
                delistTime=None,
            )
            rows.append(row)
        return rows

    return {
        ("GET", "/sapi/v1/margin/allAssets"): all_assets,
        ("GET", "/sapi/v1/margin/allPairs"): lambda call: pairs(call, with_id=True),
        ("GET", "/sapi/v1/margin/isolated/allPairs"): lambda call: pairs(call, with_id=False),
    }


def ledger_handlers(ledger: Ledger) -> dict[tuple[str, str], Handler]:
    """Handlers for every route the ledger can back."""
    handlers = {route: spec.handler(ledger) for route, spec in _LEDGER_ROUTES.items()}
    handlers[("GET", "/sapi/v1/asset/transfer")] = _universal_history(ledger)
    handlers[("GET", "/sapi/v1/margin/capital-flow")] = _capital_flow(ledger)
    handlers.update(_market_data(ledger))
    return handlers
