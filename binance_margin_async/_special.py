"""The parameters of a special key's spot order requests, from those of the margin methods.

Pure. A margin special key sends the :class:`~.api.MarginAPI` order methods to the spot routes
(``/api/v3/*``, and the same methods on the WebSocket API); two things differ from SAPI:

* the key itself selects the margin account (cross, or the isolated pair it was created for), so
  ``isIsolated`` is not sent (the spot routes do not know it);
* an OCO takes the current spot shape, an *above* and a *below* order
  (``POST /api/v3/orderList/oco``, ``orderList.place.oco``), where margin still takes the older
  limit-plus-stop shape: a SELL OCO's limit order is the above leg (``LIMIT_MAKER``) and its
  stop the below leg (``STOP_LOSS`` or, with a limit price, ``STOP_LOSS_LIMIT``); a BUY's the
  reverse. Binance's migration note for the deprecated ``/api/v3/order/oco`` describes this same
  correspondence.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints
"""

from __future__ import annotations

from typing import Final

__all__ = ["spot_params"]

# Margin OCO parameter -> (leg, spot suffix); the leg is "limit" or "stop".
_OCO_LEGS: Final = {
    "price": ("limit", "Price"),
    "limitClientOrderId": ("limit", "ClientOrderId"),
    "limitIcebergQty": ("limit", "IcebergQty"),
    "stopPrice": ("stop", "StopPrice"),
    "stopLimitPrice": ("stop", "Price"),
    "stopClientOrderId": ("stop", "ClientOrderId"),
    "stopIcebergQty": ("stop", "IcebergQty"),
    "stopLimitTimeInForce": ("stop", "TimeInForce"),
}


def spot_params(name: str, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``params`` of the ``MarginAPI`` method ``name`` as its special-key spot route takes them."""
    spot = [item for item in params if item[0] != "isIsolated"]
    if name == "new_oco":
        return _above_below(spot)
    return spot


def _above_below(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    side = next(value for key, value in params if key == "side")
    prefix = (
        {"limit": "above", "stop": "below"}
        if side == "SELL"
        else {"limit": "below", "stop": "above"}
    )
    has_stop_limit = any(key == "stopLimitPrice" for key, _ in params)
    out: list[tuple[str, str]] = []
    for key, value in params:
        leg = _OCO_LEGS.get(key)
        if leg is None:
            out.append((key, value))
            if key == "quantity":
                out.append((prefix["limit"] + "Type", "LIMIT_MAKER"))
                out.append(
                    (prefix["stop"] + "Type", "STOP_LOSS_LIMIT" if has_stop_limit else "STOP_LOSS")
                )
        else:
            out.append((prefix[leg[0]] + leg[1], value))
    return out
