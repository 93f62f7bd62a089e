"""Margin special keys (low-latency trading) of the fake exchange: their book and the SAPI
endpoints that manage them. Pure: no sockets, no clock.

Binance (margin trade docs, "Create Special Key (Low-Latency Trading)"; PROTOCOL.md §10):
``POST /sapi/v1/margin/apiKey`` with ``apiName``, ``symbol`` (an isolated pair; none for cross),
``ip`` and ``publicKey`` (a PKCS#8 ``BEGIN PUBLIC KEY`` PEM: an Ed25519 or RSA key; without it an
HMAC key and its secret are issued) answers ``{"apiKey", "secretKey", "type"}``; the key then
trades that margin account through ``/api/v3/*`` and the WebSocket API (:mod:`._spot`).
``permissionMode`` (``TRADE`` or ``READ``) applies to Ed25519 keys only.

The fake's answers where the documents are silent: ``type`` is ``HMAC_SHA256``, ``RSA`` or
``Ed25519``; ``ip`` restrictions are stored and echoed but not enforced (every client of the fake is
local); special keys are rejected on ``/sapi`` (``-2015``), as they are made for ``/api/v3``; an
unknown ``apiKey`` in a query is ``-2015``; a pair without an isolated account is ``-3003``.
``exit-special-key-mode`` is not modelled.

Docs: https://developers.binance.com/docs/margin_trading/trade/Create-Special-Key-of-Low-Latency-Trading
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from ._keys import Verifier, hmac_verifier, public_key_verifier
from ._rest import TRADE, Call, Handler
from .ledger import LedgerError

__all__ = ["SpecialKey", "SpecialKeyBook", "special_key_handlers"]

_ALNUM: Final = string.ascii_letters + string.digits
_WIRE_TYPES: Final = {"HMAC": "HMAC_SHA256", "RSA": "RSA", "ED25519": "Ed25519"}
_PERMISSION_MODES: Final = ("TRADE", "READ")
_MAX_IPS: Final = 30
_UNKNOWN_KEY: Final = LedgerError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


@dataclass(slots=True, eq=False)
class SpecialKey:
    """One special key: whose margin account it trades (``scope``: ``"CROSS"`` or the isolated
    symbol) and how its requests are verified. Never holds a secret or private key."""

    api_key: str
    account_id: str
    scope: str
    name: str
    verifier: Verifier
    ip: str
    permission_mode: str

    @property
    def wire_type(self) -> str:
        """``type`` as the special-key endpoints spell it."""
        return _WIRE_TYPES[self.verifier.key_type]

    @property
    def permissions(self) -> frozenset[str]:
        """What the key may do beyond reads: ``{"TRADE"}`` unless it is a ``READ`` key."""
        return frozenset({TRADE}) if self.permission_mode == "TRADE" else frozenset()

    def json(self) -> dict[str, Any]:
        """The query shape (``GET /sapi/v1/margin/apiKey``, ``api-key-list``)."""
        return {
            "apiName": self.name,
            "apiKey": self.api_key,
            "ip": self.ip,
            "type": self.wire_type,
            "permissionMode": self.permission_mode,
        }


class SpecialKeyBook:
    """Every special key of the exchange, by API key."""

    __slots__ = ("_keys", "_rng")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._keys: dict[str, SpecialKey] = {}

    def get(self, api_key: str) -> SpecialKey | None:
        """The special key ``api_key``, if it exists."""
        return self._keys.get(api_key)

    def create(
        self,
        account_id: str,
        scope: str,
        name: str,
        *,
        ip: str = "0.0.0.0",
        public_key: str | None = None,
    ) -> tuple[SpecialKey, str | None]:
        """A new key and its HMAC secret (``None`` for a ``public_key``): ``-1130`` for a
        public key that is not an Ed25519/RSA ``BEGIN PUBLIC KEY`` PEM."""
        secret: str | None = None
        if public_key is None:
            secret = "".join(self._rng.choices(_ALNUM, k=64))
            verifier = hmac_verifier(secret)
        else:
            verifier = _verifier(public_key)
        api_key = "".join(self._rng.choices(_ALNUM, k=64))
        key = SpecialKey(api_key, account_id, scope, name, verifier, ip, "TRADE")
        self._keys[api_key] = key
        return key, secret

    def of(self, account_id: str, scope: str) -> list[SpecialKey]:
        """The keys of one margin account, oldest first."""
        return [k for k in self._keys.values() if (k.account_id, k.scope) == (account_id, scope)]

    def delete(self, key: SpecialKey) -> None:
        """Forget ``key``: it is rejected from the next request on."""
        self._keys.pop(key.api_key, None)


def _verifier(public_key: str) -> Verifier:
    # Binance asks for the PEM URL-encoded inside the (also encoded) request: accept it decoded
    # once (the form decoding) or twice.
    for candidate in (public_key, unquote(public_key)):
        try:
            return public_key_verifier(candidate)
        except ValueError:
            continue
    raise LedgerError(-1130, "Data sent for parameter 'publicKey' is not valid.")


def special_key_handlers(
    book: SpecialKeyBook, isolated_scope: Callable[[str, str], str]
) -> dict[tuple[str, str], Handler]:
    """The special-key SAPI routes; ``isolated_scope(account_id, symbol)`` checks an isolated
    pair (``-1121``/``-3003``) and returns its scope."""

    def scope_of(call: Call, symbol: str | None) -> str:
        assert call.account_id is not None  # SIGNED routes
        return "CROSS" if symbol is None else isolated_scope(call.account_id, symbol)

    def owned(call: Call, api_key: str, scope: str) -> SpecialKey:
        key = book.get(api_key)
        if key is None or (key.account_id, key.scope) != (call.account_id, scope):
            raise _UNKNOWN_KEY
        return key

    def ips(value: str | None) -> str:
        if value is None:
            return "0.0.0.0"  # Binance's "initial state" value
        if len(value.split(",")) > _MAX_IPS:
            raise LedgerError(-1130, "Data sent for parameter 'ip' is not valid.")
        return value

    def create(call: Call) -> Any:
        p = call.params
        name = p.text("apiName", required=True)
        symbol = p.text("symbol")
        ip = ips(p.text("ip"))
        public_key = p.text("publicKey")
        mode = p.enum("permissionMode", _PERMISSION_MODES)
        p.finish()
        assert name is not None and call.account_id is not None
        scope = scope_of(call, symbol)
        key, secret = book.create(call.account_id, scope, name, ip=ip, public_key=public_key)
        if mode is not None and key.verifier.key_type == "ED25519":
            # Binance: permissionMode "does not effact for other encryption methods".
            key.permission_mode = mode
        return {"apiKey": key.api_key, "secretKey": secret, "type": key.wire_type}

    def query(call: Call) -> Any:
        p = call.params
        api_key = p.text("apiKey", required=True)
        symbol = p.text("symbol")
        p.finish()
        assert api_key is not None
        return owned(call, api_key, scope_of(call, symbol)).json()

    def listing(call: Call) -> Any:
        p = call.params
        symbol = p.text("symbol")
        p.finish()
        assert call.account_id is not None
        return [key.json() for key in book.of(call.account_id, scope_of(call, symbol))]

    def delete(call: Call) -> Any:
        p = call.params
        api_key = p.text("apiKey")
        api_name = p.text("apiName")
        symbol = p.text("symbol")
        p.finish()
        assert call.account_id is not None
        scope = scope_of(call, symbol)
        # "If apiKey is given, apiName will be ignored. If apiName is given with no apiKey, all
        # apikeys with given apiName will be deleted."
        if api_key is not None:
            doomed = [owned(call, api_key, scope)]
        elif api_name is not None:
            doomed = [k for k in book.of(call.account_id, scope) if k.name == api_name]
        else:
            raise LedgerError(
                -1102, "Param 'apiKey' or 'apiName' must be sent, but both were empty/null!"
            )
        for key in doomed:
            book.delete(key)
        return {}

    def edit_ip(call: Call) -> Any:
        p = call.params
        api_key = p.text("apiKey", required=True)
        ip = ips(p.text("ip", required=True))
        symbol = p.text("symbol")
        p.finish()
        assert api_key is not None
        owned(call, api_key, scope_of(call, symbol)).ip = ip
        return {}

    return {
        ("POST", "/sapi/v1/margin/apiKey"): create,
        ("GET", "/sapi/v1/margin/apiKey"): query,
        ("GET", "/sapi/v1/margin/api-key-list"): listing,
        ("DELETE", "/sapi/v1/margin/apiKey"): delete,
        ("PUT", "/sapi/v1/margin/apiKey/ip"): edit_ip,
    }
