"""Request parsing for the fake exchange: payload split, signature extraction, typed parameter
reads with Binance's error codes, timestamp window. Pure.

Binance rules followed here (PROTOCOL.md §1):

* parameters come from the query string and, for POST/PUT/DELETE, from an
  ``application/x-www-form-urlencoded`` body; the signed payload is the query string concatenated
  with the body, **as received** (still percent-encoded), minus the ``signature`` parameter, which
  must be the last parameter of the part that carries it;
* a parameter present in both parts: the query string wins; twice in one part: ``-1101``, except
  where Binance documents a repeated parameter (:data:`REPEATABLE`: ``asset=BTC&asset=USDT`` of the
  dust conversion), whose values are then read as one comma-separated list;
* every parameter sent must be read by the endpoint (``-1104``); a mandatory one missing or empty is
  ``-1102``; malformed values are ``-1100`` (amounts, enums and the like are checked by the
  ledger, with the same codes);
* ``timestamp`` must satisfy ``serverTime - recvWindow <= timestamp < serverTime + 1000``
  (``-1021``); ``recvWindow`` above 60000 is ``-1131``.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/errors
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote_plus

from .ledger import LedgerError

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = [
    "REPEATABLE",
    "Params",
    "Payload",
    "check_timestamp",
    "illegal",
    "mandatory",
    "not_required",
    "parse_payload",
]

_LONG_RANGE: Final = "^[0-9]{1,20}$"
_LONG_RE: Final = re.compile(r"[0-9]{1,20}")
_MAX_RECV_WINDOW: Final = 60_000
_DEFAULT_RECV_WINDOW: Final = 5_000


#: Parameters Binance documents as repeated, by route (method, path); everywhere else a repeated
#: parameter is ``-1101``. https://developers.binance.com/docs/wallet/asset/dust-transfer
REPEATABLE: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("POST", "/sapi/v1/asset/dust"): frozenset({"asset"}),
}


def mandatory(name: str) -> LedgerError:
    """``-1102`` for a missing, empty or malformed mandatory parameter."""
    return LedgerError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal(name: str, legal_range: str) -> LedgerError:
    """``-1100`` for a value outside its legal range."""
    return LedgerError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal_range}'."
    )


def not_required(name: str) -> LedgerError:
    """``-1106`` for a parameter that this combination does not take."""
    return LedgerError(-1106, f"Parameter '{name}' sent when not required.")


@dataclass(frozen=True, slots=True)
class Payload:
    """A parsed request: decoded parameters, the bytes that were signed, the signature."""

    params: dict[str, str]
    signed: bytes
    signature: str | None


def _split(
    part: str, params: dict[str, str], repeatable: Collection[str]
) -> tuple[str, str | None]:
    """Decode ``part`` into ``params`` (keys already in ``params`` from the query string win) and
    return ``(part without the signature, signature)``."""
    if not part:
        return "", None
    segments = part.split("&")
    signature = None
    signed = part
    values: dict[str, list[str]] = {}
    for position, segment in enumerate(segments):
        if not segment:
            continue
        raw_key, _, raw_value = segment.partition("=")
        try:
            key = unquote_plus(raw_key, errors="strict")
            value = unquote_plus(raw_value, errors="strict")
        except UnicodeDecodeError:
            raise LedgerError(-1100, "Illegal characters found in a parameter.") from None
        seen = values.get(key)
        if seen is not None:
            if key not in repeatable:
                raise LedgerError(-1101, "Duplicate values for a parameter detected.")
            seen.append(value)
            continue
        values[key] = [value]
        if key == "signature":
            if position != len(segments) - 1:
                # Binance signs "everything before the signature": anything after it is unsigned.
                raise LedgerError(-1022, "Signature for this request is not valid.")
            signature = value
            signed = "&".join(segments[:position])
    for key, found in values.items():
        if key != "signature":
            params.setdefault(key, ",".join(found))
    return signed, signature


def parse_payload(query: str, body: bytes, repeatable: Collection[str] = ()) -> Payload:
    """Parse the raw (still percent-encoded) query string and form body of one request;
    ``repeatable`` names the parameters that may be repeated (:data:`REPEATABLE`)."""
    try:
        body_text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise LedgerError(-1100, "Illegal characters found in a parameter.") from None
    params: dict[str, str] = {}
    query_signed, query_signature = _split(query, params, repeatable)
    body_signed, body_signature = _split(body_text, params, repeatable)
    if query_signature is not None and body_signature is not None:
        raise LedgerError(-1101, "Duplicate values for a parameter detected.")
    signature = query_signature if query_signature is not None else body_signature
    if signature is not None:
        params["signature"] = signature
    return Payload(params, (query_signed + body_signed).encode(), signature)


class Params:
    """Typed, read-tracking access to one request's parameters.

    Every accessor marks the parameter as read; :meth:`finish` raises ``-1104`` when the request
    carried parameters that the endpoint never looked at (Binance's "Not all sent parameters were
    read"). Call it before the request changes any state.
    """

    __slots__ = ("_read", "_values")

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self._read: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def items(self) -> list[tuple[str, str]]:
        """All parameters as sent (decoded), for weight rules; marks nothing as read."""
        return list(self._values.items())

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A string parameter: ``-1102`` if required and missing or empty, ``-1105`` if empty."""
        self._read.add(name)
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise mandatory(name)
            if value == "":
                raise LedgerError(-1105, f"Parameter '{name}' was empty.")
            return None
        return value

    def long(self, name: str, *, required: bool = False) -> int | None:
        """A non-negative integer parameter (``LONG``)."""
        value = self.text(name, required=required)
        if value is None:
            return None
        if _LONG_RE.fullmatch(value) is None:
            raise illegal(name, _LONG_RANGE)
        return int(value)

    def flag(self, name: str) -> bool:
        """A ``TRUE``/``FALSE`` parameter (any case); absent means false."""
        value = self.text(name)
        if value is None:
            return False
        upper = value.upper()
        if upper not in ("TRUE", "FALSE"):
            raise illegal(name, "TRUE, FALSE")
        return upper == "TRUE"

    def enum(
        self,
        name: str,
        allowed: Collection[str],
        *,
        required: bool = False,
        error: LedgerError | None = None,
    ) -> str | None:
        """One of ``allowed``; else ``error`` (default ``-1100`` listing the legal values)."""
        value = self.text(name, required=required)
        if value is None:
            return None
        if value not in allowed:
            raise error if error is not None else illegal(name, ", ".join(sorted(allowed)))
        return value

    def skip(self, *names: str) -> None:
        """Mark parameters as read without using them (e.g. a signature that is not checked)."""
        self._read.update(names)

    def finish(self) -> None:
        """``-1104`` when some parameter was sent but never read."""
        if not self._read.issuperset(self._values):
            read = len(self._read.intersection(self._values))
            raise LedgerError(
                -1104,
                "Not all sent parameters were read; read "
                f"'{read}' parameter(s) but was sent '{len(self._values)}'.",
            )


def check_timestamp(params: Params, server_ms: int) -> None:
    """The ``timestamp``/``recvWindow`` rule of SIGNED endpoints (``-1102``/``-1100``/``-1131``/
    ``-1021``)."""
    timestamp = params.long("timestamp", required=True)
    recv_window = params.long("recvWindow")
    assert timestamp is not None  # required=True
    if recv_window is None:
        recv_window = _DEFAULT_RECV_WINDOW
    elif recv_window > _MAX_RECV_WINDOW:
        raise LedgerError(-1131, f"recvWindow must be less than {_MAX_RECV_WINDOW}.")
    if timestamp >= server_ms + 1000:
        raise LedgerError(
            -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if server_ms - timestamp > recv_window:
        raise LedgerError(-1021, "Timestamp for this request is outside of the recvWindow.")
