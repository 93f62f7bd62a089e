"""What an error says about the request it answers: which account, symbol or order, and where to
look when the outcome is unknown.

Binance's messages name no parameter (``-1121 Invalid symbol.``, ``-3003 Margin account does not
exist.``); the request did. These pure helpers give the rest shell the words to add.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["request_context", "unknown_outcome_hint"]

# Parameters that say which account, pair, asset or order a request was about. Never a secret,
# never the signature, the timestamp or an amount.
_IDENTIFYING: Final = (
    "symbol",
    "symbols",
    "isIsolated",
    "asset",
    "type",
    "fromSymbol",
    "toSymbol",
    "orderId",
    "origClientOrderId",
    "newClientOrderId",
    "orderListId",
    "listClientOrderId",
)

_BORROW_REPAY: Final = (
    "the {kind} records, get_borrow_repay_records(type='{kind}', start_time=<when it was sent>)"
)
_ORDER: Final = "the order by its client id, get_order(symbol, orig_client_order_id=...)"
_HINTS: Final = {
    "borrow": _BORROW_REPAY.format(kind="BORROW"),
    "repay": _BORROW_REPAY.format(kind="REPAY"),
    "transfer": (
        "the transfer history, get_universal_transfer_history(type, start_time=<when it was sent>)"
    ),
    "new_order": _ORDER,
    "cancel_order": _ORDER,
    "cancel_open_orders": "the open orders, get_open_orders(symbol)",
    "new_oco": "the order list by its client id, get_order_list(orig_client_order_id=...)",
    "new_oto": "the order list by its client id, get_order_list(orig_client_order_id=...)",
    "new_otoco": "the order list by its client id, get_order_list(orig_client_order_id=...)",
    "cancel_order_list": "the order list, get_order_list(...)",
    "enable_isolated_account": "the isolated accounts, get_isolated_account()",
    "disable_isolated_account": "the isolated accounts, get_isolated_account()",
}


def request_context(params: Iterable[tuple[str, str]]) -> str:
    """``"symbol=FOOUSDT, isIsolated=TRUE"``: the identifying parameters of a request, or ``""``."""
    sent = dict(params)
    return ", ".join(f"{name}={sent[name]}" for name in _IDENTIFYING if name in sent)


def unknown_outcome_hint(endpoint: str) -> str:
    """Which records show whether a call of ``endpoint`` (its name) executed."""
    return _HINTS.get(endpoint, "the account's state and history")
