"""The Spot API routes of the fake exchange: ``ping``, ``exchangeInfo`` and the order endpoints that
margin special keys trade through.

Binance (margin trade docs, "How to use the Margin Special Key"; PROTOCOL.md §10): a special key
created with ``POST /sapi/v1/margin/apiKey`` trades the margin account it belongs to (cross, or
the isolated pair of its ``symbol``) "via Spot REST API (``/api/v3/*``) endpoints", with the Spot
API's weights (the shared ``/api`` IP pool), order counts and answer shapes. The same handlers back
the WebSocket API's order methods (``order.place`` is ``POST /api/v3/order``...).

The fake's answers where Binance's documents are silent (see also :mod:`._special`):

* ``sideEffectType`` and ``autoRepayAtCancel`` are accepted on ``/api/v3`` orders of special keys
  and act as on ``/sapi/v1/margin/order`` (UNCONFIRMED; a special key trades a margin account);
* an isolated key given another symbol: ``-2010 This symbol is restricted for this account.`` on
  placements (Binance's message for an isolated account trading another symbol), ``-2011``/
  ``-2013`` on cancels and queries, as for an order that does not exist;
* the account's own API key on these order routes: ``-1020`` (the fake has no spot trading);
* list answers shape their ``orderReports`` by ``newOrderRespType``, ``RESULT`` by default;
* every symbol is ``TRADING`` with permission sets ``[["SPOT", "MARGIN"]]``; ``exchangeInfo``
  publishes the filters the ledger enforces (:class:`~.ledger.SymbolSpec`).

Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import orjson

from ..endpoints import EXCHANGE_INFO, SPOT_ORDER_ENDPOINTS, Endpoint, Pool, Security
from ._rest import Call, Handler, _LedgerRoute, _pending
from .ledger import Ledger, LedgerError, SymbolSpec

__all__ = ["SPOT_ENDPOINTS", "spot_handlers"]

_DOCS: Final = "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/"

#: The Spot API routes the fake serves. The ones the client calls come from the client's own
#: table (``exchangeInfo`` and the special key's order routes): the weights, pools and order
#: counting that the client's limiter charges are the ones the fake enforces, from one source.
#: ``ping`` is the fake's own: the client never calls it, foreign clients do (python-binance's
#: ``create()``).
SPOT_ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint(
        "ping",
        "GET",
        "/api/v3/ping",
        Security.NONE,
        Pool.API_IP,
        1,
        doc=_DOCS + "general-endpoints",
    ),
    EXCHANGE_INFO,
    *SPOT_ORDER_ENDPOINTS.values(),
)


_RESTRICTED: Final = LedgerError(-2010, "This symbol is restricted for this account.")
_UNKNOWN_ORDER: Final = LedgerError(-2011, "Unknown order sent.")
_NO_SUCH_ORDER: Final = LedgerError(-2013, "Order does not exist.")
_UNKNOWN_LIST: Final = LedgerError(-2011, "Unknown order list sent.")
_OPTIONS: Final = (
    "newOrderRespType",
    "sideEffectType",
    "selfTradePreventionMode",
    "autoRepayAtCancel",
)
_NOT_MODELLED: Final = ("strategyId", "strategyType", "pegPriceType", "pegOffsetValue",
                        "pegOffsetType")  # fmt: skip
_NEW_ORDER: Final = ("quantity", "quoteOrderQty", "price", "stopPrice", "newClientOrderId",
                     "icebergQty", "timeInForce", *_OPTIONS)  # fmt: skip
_WORKING: Final = ("workingType", "workingSide", "workingClientOrderId", "workingPrice",
                   "workingQuantity", "workingIcebergQty", "workingTimeInForce")  # fmt: skip


def _leg(prefix: str) -> tuple[str, ...]:
    return tuple(
        prefix + suffix
        for suffix in ("ClientOrderId", "IcebergQty", "Price", "StopPrice", "TimeInForce")
    )


def _unmodelled(*prefixes: str) -> tuple[str, ...]:
    return tuple(
        prefix + (name if not prefix else name[0].upper() + name[1:])
        for prefix in prefixes
        for name in ("trailingDelta", *_NOT_MODELLED)
    )


_SPOT_ROUTES: Final[Mapping[tuple[str, str], _LedgerRoute]] = {
    ("POST", "/api/v3/order"): _LedgerRoute(
        "new_order", ("symbol", "side", "type"), _NEW_ORDER, takes_now=True,
        unmodelled=_unmodelled(""), spot=_RESTRICTED,
    ),
    ("DELETE", "/api/v3/order"): _LedgerRoute(
        "cancel_order", ("symbol",), ("orderId", "origClientOrderId", "newClientOrderId"),
        takes_now=True, unmodelled=("cancelRestrictions",), spot=_UNKNOWN_ORDER,
    ),
    ("GET", "/api/v3/order"): _LedgerRoute(
        "get_order", ("symbol",), ("orderId", "origClientOrderId"), spot=_NO_SUCH_ORDER
    ),
    ("POST", "/api/v3/order/cancelReplace"): _LedgerRoute(
        "cancel_replace_order", ("symbol", "side", "type", "cancelReplaceMode"),
        ("cancelOrderId", "cancelOrigClientOrderId", "cancelNewClientOrderId", *_NEW_ORDER),
        takes_now=True,
        unmodelled=(*_unmodelled(""), "cancelRestrictions", "orderRateLimitExceededMode"),
        spot=_RESTRICTED,
    ),
    ("POST", "/api/v3/orderList/oco"): _LedgerRoute(
        "new_order_list_oco", ("symbol", "side", "quantity", "aboveType", "belowType"),
        ("listClientOrderId", *_leg("above"), *_leg("below"), *_OPTIONS), takes_now=True,
        unmodelled=_unmodelled("above", "below"), spot=_RESTRICTED,
    ),
    ("POST", "/api/v3/orderList/oto"): _LedgerRoute(
        "new_oto", ("symbol",),
        ("listClientOrderId", *_OPTIONS, *_WORKING, "pendingSide", "pendingQuantity",
         *_pending("pending")),
        takes_now=True, unmodelled=_unmodelled("working", "pending"), spot=_RESTRICTED,
    ),
    ("POST", "/api/v3/orderList/otoco"): _LedgerRoute(
        "new_otoco", ("symbol",),
        ("listClientOrderId", *_OPTIONS, *_WORKING, "pendingSide", "pendingQuantity",
         *_pending("pendingAbove"), *_pending("pendingBelow")),
        takes_now=True, unmodelled=_unmodelled("working", "pendingAbove", "pendingBelow"),
        spot=_RESTRICTED,
    ),
    ("DELETE", "/api/v3/orderList"): _LedgerRoute(
        "cancel_order_list", ("symbol",), ("orderListId", "listClientOrderId", "newClientOrderId"),
        takes_now=True, spot=_UNKNOWN_LIST,
    ),
    ("GET", "/api/v3/openOrders"): _LedgerRoute("open_orders", (), ("symbol",), spot=_RESTRICTED),
    ("DELETE", "/api/v3/openOrders"): _LedgerRoute(
        "cancel_open_orders", ("symbol",), takes_now=True, spot=_UNKNOWN_ORDER
    ),
}  # fmt: skip

_ORDER_TYPES: Final = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                       "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")  # fmt: skip
_STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
_STATUSES: Final = frozenset({"TRADING", "HALT", "BREAK"})
_Q8: Final = Decimal("0.00000001")


def _fmt(value: Decimal) -> str:
    return format(value.quantize(_Q8), "f")


def _symbol_json(spec: SymbolSpec, permission_sets: bool) -> dict[str, Any]:
    """One ``symbols`` entry of ``exchangeInfo`` with the filters the ledger enforces."""
    lot = {
        "minQty": _fmt(spec.step_size),
        "maxQty": _fmt(spec.max_qty),
        "stepSize": _fmt(spec.step_size),
    }
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(_ORDER_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "amendAllowed": False,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _fmt(spec.tick_size),
                "maxPrice": _fmt(spec.max_price),
                "tickSize": _fmt(spec.tick_size),
            },
            {"filterType": "LOT_SIZE", **lot},
            # The ledger checks MARKET quantities with the same step and bounds.
            {"filterType": "MARKET_LOT_SIZE", **lot},
            {
                "filterType": "NOTIONAL",
                "minNotional": _fmt(spec.min_notional),
                "applyMinToMarket": True,
                # Implied by the other filters: the ledger checks no separate maximum.
                "maxNotional": _fmt(spec.max_price * spec.max_qty),
                "applyMaxToMarket": False,
                # The ledger values MARKET orders at the last price.
                "avgPriceMins": 0,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]] if permission_sets else [],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": list(_STP_MODES),
    }


def _names(value: str, name: str) -> list[str]:
    """A Spot ``ARRAY OF STRING`` parameter: a JSON array (``["BTCUSDT","ETHUSDT"]``)."""
    try:
        names = orjson.loads(value)
    except orjson.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise LedgerError(-1100, f"Illegal characters found in parameter '{name}'.")
    if len(set(names)) != len(names):
        raise LedgerError(-1151, "Symbol is present multiple times in the list.")
    return names


def _exchange_info(ledger: Ledger, rate_limits: Sequence[Mapping[str, Any]]) -> Handler:
    """``GET /api/v3/exchangeInfo`` (``symbol``, ``symbols``, ``permissions``,
    ``showPermissionSets``, ``symbolStatus``)."""

    def handle(call: Call) -> Any:
        p = call.params
        symbol = p.text("symbol")
        symbols = p.text("symbols")
        permissions = p.text("permissions")
        show_sets = p.enum("showPermissionSets", ("true", "false")) != "false"
        status = p.enum("symbolStatus", _STATUSES)
        p.finish()
        # symbol, symbols and the filters (permissions, symbolStatus) exclude each other.
        groups = (symbol, symbols, permissions if permissions is not None else status)
        if sum(group is not None for group in groups) > 1:
            raise LedgerError(-1128, "Combination of optional parameters invalid.")
        specs = {spec.symbol: spec for spec in ledger.symbols()}
        if symbol is not None:
            wanted = [symbol]
        elif symbols is not None:
            wanted = _names(symbols, "symbols")
        else:
            wanted = list(specs) if status in (None, "TRADING") else []
        for name in wanted:
            if name not in specs:
                raise LedgerError(-1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": call.now_ms,
            "rateLimits": [dict(limit) for limit in rate_limits],
            "exchangeFilters": [],
            "symbols": [_symbol_json(specs[name], show_sets) for name in wanted],
        }

    return handle


def _ping(call: Call) -> Any:
    call.params.finish()
    return {}


def spot_handlers(
    ledger: Ledger, rate_limits: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], Handler]:
    """Handlers of :data:`SPOT_ENDPOINTS`; ``rate_limits`` is what ``exchangeInfo`` publishes."""
    handlers = {route: spec.handler(ledger) for route, spec in _SPOT_ROUTES.items()}
    handlers[("GET", "/api/v3/ping")] = _ping
    handlers[("GET", "/api/v3/exchangeInfo")] = _exchange_info(ledger, rate_limits)
    return handlers
