"""WebSocket API request helpers of the fake exchange: which REST route backs each trading
method, parameters as text, and the signature payload. Pure.

Binance (SPOT web-socket-api.md, PROTOCOL.md §1.4 and §10):

* a SIGNED request carries ``apiKey``, ``timestamp`` (``recvWindow``) and ``signature`` over every
  other parameter **sorted by name**, joined as ``k=v`` with ``&``, not percent-encoded; or the
  session is logged on (``session.logon``, Ed25519 keys only) and requests carry ``timestamp`` only;
* each trading method takes the parameters of its REST endpoint and answers its ``result``;
  weights and order counts are the REST ones, shared with the ``/api`` IP pool.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/request-security
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from .ledger import LedgerError

__all__ = ["WS_ROUTES", "signature_payload", "text_params"]

#: WebSocket API method → the ``(method, path)`` of the REST route that backs it.
WS_ROUTES: Final[Mapping[str, tuple[str, str]]] = {
    "exchangeInfo": ("GET", "/api/v3/exchangeInfo"),
    "order.place": ("POST", "/api/v3/order"),
    "order.cancel": ("DELETE", "/api/v3/order"),
    "order.status": ("GET", "/api/v3/order"),
    "order.cancelReplace": ("POST", "/api/v3/order/cancelReplace"),
    "orderList.place.oco": ("POST", "/api/v3/orderList/oco"),
    "orderList.place.oto": ("POST", "/api/v3/orderList/oto"),
    "orderList.place.otoco": ("POST", "/api/v3/orderList/otoco"),
    "orderList.cancel": ("DELETE", "/api/v3/orderList"),
    "openOrders.status": ("GET", "/api/v3/openOrders"),
    "openOrders.cancelAll": ("DELETE", "/api/v3/openOrders"),
}


def _text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        # ARRAY OF STRING parameters (exchangeInfo ``symbols``) read as the REST JSON text.
        return orjson.dumps(value).decode()
    raise LedgerError(-1100, f"Illegal characters found in parameter '{name}'.")


def text_params(params: Mapping[str, Any]) -> dict[str, str]:
    """A request's ``params`` as the text values REST handlers read (``true``/``false``,
    numbers as written); ``null`` counts as not sent."""
    return {name: _text(name, value) for name, value in params.items() if value is not None}


def signature_payload(params: Mapping[str, str]) -> bytes:
    """What a WebSocket API signature signs: every parameter but ``signature``, sorted by name,
    ``k=v`` joined with ``&``, raw UTF-8."""
    return "&".join(
        f"{name}={value}" for name, value in sorted(params.items()) if name != "signature"
    ).encode()
