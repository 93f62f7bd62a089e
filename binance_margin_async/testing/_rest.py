"""REST routes of the fake exchange: the endpoint table mapped to handlers.

Routes come from :data:`binance_margin_async.endpoints.ENDPOINTS_BY_ROUTE` (plus ``GET
/api/v3/time``), so the fake charges exactly the weights and pools the client's limiter expects.
Every route in that table is served: the checks (key, signature, timestamp, weights) always run;
endpoints the ledger cannot back answer ``-1020`` "not supported" after those checks.

A handler gets a :class:`Call` and returns the JSON-able response body. It must read every
parameter it accepts and call ``call.params.finish()`` *before* changing any state, so that a
request with an unknown parameter (``-1104``) changes nothing, as on Binance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..endpoints import ENDPOINTS_BY_ROUTE, SERVER_TIME, Endpoint, Security
from ._params import ApiError, Params

__all__ = ["Call", "Handler", "Route", "build_routes"]


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated request, as a handler sees it."""

    params: Params
    account_id: str | None  # None on Security.NONE endpoints
    now_ms: int  # server time (clock skew applied)


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
    return TRADE if ep.path in _ORDER_PATHS else MARGIN


def _unsupported(call: Call) -> Any:
    # Read nothing: the request passed every generic check, only the business logic is missing.
    raise ApiError(-1020, "This operation is not supported by the fake exchange.")


def build_routes(handlers: Mapping[tuple[str, str], Handler]) -> dict[tuple[str, str], Route]:
    """One :class:`Route` per table entry; ``handlers`` maps ``(method, path)`` to its handler."""
    table: dict[tuple[str, str], Endpoint] = dict(ENDPOINTS_BY_ROUTE)
    table[(SERVER_TIME.method, SERVER_TIME.path)] = SERVER_TIME
    unknown = set(handlers) - set(table)
    if unknown:
        raise ValueError(f"handlers for routes missing from the endpoint table: {sorted(unknown)}")
    return {
        route: Route(ep, handlers.get(route, _unsupported), _permission(ep))
        for route, ep in table.items()
    }
