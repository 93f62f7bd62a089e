"""Validation and wire formatting of request parameters. Pure: no I/O, no clock.

Every check runs before anything is sent and raises
:class:`~binance_margin_async.errors.ParameterError` naming the offending parameter (by its Python
name, the one the caller typed). Validators take ``None`` for "not given" and then return ``None``,
so the request builders in :mod:`.api` can pass optional arguments straight through.

Formatting rules (PROTOCOL.md §1, §3.1, §8):

* amounts go out as plain decimal strings, never in exponent form; floats are converted through
  ``repr`` so ``0.1`` becomes ``"0.1"``, not the binary expansion; NaN, infinities, booleans and
  (where Binance needs a positive amount) zero or negative values are refused;
* ``isIsolated`` on order/borrow endpoints is the string ``"TRUE"``/``"FALSE"``; ``userListenToken``
  wants lower-case ``"true"``/``"false"``;
* client order ids match ``^[.A-Z:/a-z0-9_-]{1,36}$``.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final, TypeVar, overload

from .errors import ParameterError

__all__ = [
    "CAPITAL_FLOW_WINDOW_MS",
    "AmountLike",
    "amount",
    "as_sequence",
    "boolean",
    "client_order_id",
    "enum_value",
    "generate_client_order_id",
    "integer",
    "joined",
    "lower_bool",
    "require_isolated_symbol",
    "require_one_of",
    "symbol",
    "text",
    "time_range",
    "time_windows",
    "timestamp",
    "transfer_symbols",
    "upper_bool",
]

#: What callers may pass as an amount or price.
AmountLike = Decimal | str | int | float

E = TypeVar("E", bound=StrEnum)

_CLIENT_ORDER_ID: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
# Symbols and asset names: no whitespace or separators that would change the query's meaning.
_FORBIDDEN_IN_NAME: Final = re.compile(r"[\s,&=]")

#: Capital-flow queries may span at most 7 days (margin change log 2026-01-16, ``-4047``).
CAPITAL_FLOW_WINDOW_MS: Final = 7 * 24 * 60 * 60 * 1000

_ENUM_LOOKUPS: dict[type[StrEnum], dict[str, str]] = {}


@overload
def amount(name: str, value: None, *, allow_zero: bool = False) -> None: ...
@overload
def amount(name: str, value: AmountLike, *, allow_zero: bool = False) -> str: ...
def amount(name: str, value: AmountLike | None, *, allow_zero: bool = False) -> str | None:
    """A positive (with ``allow_zero``: non-negative) finite amount as a plain decimal string."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParameterError(name, "must be a decimal amount, not a bool")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(name, "must be a finite number")
        # repr() is the shortest string that round-trips: 0.1 -> "0.1", 1e-07 -> "1e-07".
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ParameterError(name, "must be a decimal number") from None
    else:
        raise ParameterError(
            name, f"must be Decimal, str, int or float, not {type(value).__name__}"
        )
    if not number.is_finite():
        raise ParameterError(name, "must be a finite number")
    if number < 0 or (number == 0 and not allow_zero):
        raise ParameterError(name, "must be positive" if not allow_zero else "must not be negative")
    if number == 0:
        return "0"
    # normalize() drops trailing zeros; format "f" never uses exponent notation.
    return format(number.normalize(), "f")


@overload
def integer(name: str, value: None, *, minimum: int = 0, maximum: int | None = None) -> None: ...
@overload
def integer(name: str, value: int, *, minimum: int = 0, maximum: int | None = None) -> str: ...
def integer(
    name: str, value: int | None, *, minimum: int = 0, maximum: int | None = None
) -> str | None:
    """An ``int`` (not a bool) within ``[minimum, maximum]``, as a string."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(name, f"must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ParameterError(name, f"must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ParameterError(name, f"must be <= {maximum}")
    return str(value)


@overload
def timestamp(name: str, value: None) -> None: ...
@overload
def timestamp(name: str, value: int) -> str: ...
def timestamp(name: str, value: int | None) -> str | None:
    """A time in epoch milliseconds."""
    return integer(name, value, minimum=0)


def time_range(
    start_time: int | None,
    end_time: int | None,
    *,
    max_span_ms: int | None = None,
    span_text: str = "",
) -> tuple[str | None, str | None]:
    """Validate ``start_time``/``end_time`` (ms) and return them formatted.

    ``end_time`` before ``start_time`` is an error; so is a span above ``max_span_ms`` when both
    are given (``span_text`` says what the limit is, for the message).
    """
    start = timestamp("start_time", start_time)
    end = timestamp("end_time", end_time)
    if start_time is not None and end_time is not None:
        if end_time < start_time:
            raise ParameterError("end_time", "must not be before start_time")
        if max_span_ms is not None and end_time - start_time > max_span_ms:
            raise ParameterError("end_time", f"must be at most {span_text} after start_time")
    return start, end


def time_windows(start_time: int, end_time: int, window_ms: int) -> list[tuple[int, int]]:
    """Split the inclusive range ``[start_time, end_time]`` (ms) into consecutive inclusive
    windows, each spanning less than ``window_ms``, in chronological order."""
    time_range(start_time, end_time)
    if window_ms <= 0:
        raise ParameterError("window_ms", "must be positive")
    windows: list[tuple[int, int]] = []
    start = start_time
    while start <= end_time:
        end = min(start + window_ms - 1, end_time)
        windows.append((start, end))
        start = end + 1
    return windows


@overload
def symbol(name: str, value: None) -> None: ...
@overload
def symbol(name: str, value: str) -> str: ...
def symbol(name: str, value: str | None) -> str | None:
    """A symbol or asset name: a non-empty string without spaces, commas, ``&`` or ``=``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParameterError(name, f"must be a str, not {type(value).__name__}")
    if not value:
        raise ParameterError(name, "must not be empty")
    if _FORBIDDEN_IN_NAME.search(value):
        raise ParameterError(name, "must not contain spaces, ',', '&' or '='")
    return value


@overload
def text(name: str, value: None) -> None: ...
@overload
def text(name: str, value: str) -> str: ...
def text(name: str, value: str | None) -> str | None:
    """A free-text value (name, email, key, PEM): non-empty, no surrounding whitespace."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParameterError(name, f"must be a str, not {type(value).__name__}")
    if not value or value.strip() != value:
        raise ParameterError(name, "must be non-empty without leading or trailing whitespace")
    return value


def joined(name: str, values: str | Iterable[str], *, max_count: int | None = None) -> str:
    """Several symbols/assets as Binance's comma-separated list (a str is taken as one list)."""
    items = values.split(",") if isinstance(values, str) else list(values)
    if not items:
        raise ParameterError(name, "must not be empty")
    if max_count is not None and len(items) > max_count:
        raise ParameterError(name, f"at most {max_count} values are allowed")
    for item in items:
        symbol(name, item)
    return ",".join(items)


@overload
def client_order_id(name: str, value: None) -> None: ...
@overload
def client_order_id(name: str, value: str) -> str: ...
def client_order_id(name: str, value: str | None) -> str | None:
    """A client order id matching Binance's pattern ``^[.A-Z:/a-z0-9_-]{1,36}$``."""
    if value is None:
        return None
    if not isinstance(value, str) or not _CLIENT_ORDER_ID.match(value):
        raise ParameterError(name, "must be 1-36 characters of A-Z a-z 0-9 . : / _ -")
    return value


def generate_client_order_id() -> str:
    """A fresh client order id: ``"bma"`` + 32 random hex digits (35 characters).

    Random rather than a counter so ids stay unique across processes and restarts; the prefix
    tells this library's orders apart from others in the account.
    """
    return "bma" + secrets.token_hex(16)


def _lookup(enum: type[StrEnum]) -> dict[str, str]:
    table = _ENUM_LOOKUPS.get(enum)
    if table is None:
        # Accept the wire value and the member name (TransferType.MAIN_ISOLATED_MARGIN is sent as
        # "MAIN_ISOLATEDMARGIN"; callers may type either).
        table = {member.value: member.value for member in enum}
        for member_name, member in enum.__members__.items():
            table.setdefault(member_name, member.value)
        _ENUM_LOOKUPS[enum] = table
    return table


@overload
def enum_value(name: str, value: None, enum: type[E]) -> None: ...
@overload
def enum_value(name: str, value: E | str, enum: type[E]) -> str: ...
def enum_value(name: str, value: E | str | None, enum: type[E]) -> str | None:
    """The wire value of ``value``, given as an ``enum`` member or its string."""
    if value is None:
        return None
    if isinstance(value, enum):
        return value.value
    if isinstance(value, str):
        found = _lookup(enum).get(value)
        if found is not None:
            return found
        allowed = ", ".join(member.value for member in enum)
        raise ParameterError(name, f"must be one of {allowed}")
    raise ParameterError(name, f"must be a {enum.__name__} or str, not {type(value).__name__}")


def boolean(name: str, value: bool) -> bool:
    """Check that a flag really is a bool (``"false"`` would otherwise be truthy)."""
    if not isinstance(value, bool):
        raise ParameterError(name, f"must be a bool, not {type(value).__name__}")
    return value


def upper_bool(name: str, value: bool) -> str:
    """``"TRUE"``/``"FALSE"``: ``isIsolated`` on order/borrow endpoints, ``autoRepayAtCancel``."""
    return "TRUE" if boolean(name, value) else "FALSE"


def lower_bool(name: str, value: bool) -> str:
    """``"true"``/``"false"``: ``isIsolated`` of ``userListenToken``, BNB-burn switches."""
    return "true" if boolean(name, value) else "false"


def require_isolated_symbol(is_isolated: bool, symbol_value: str | None) -> None:
    """Isolated-margin calls need the isolated pair."""
    if boolean("is_isolated", is_isolated) and symbol_value is None:
        raise ParameterError("symbol", "is required when is_isolated=True")


def require_one_of(*named: tuple[str, object]) -> None:
    """At least one of the ``(name, value)`` pairs must be given (not ``None``)."""
    if all(value is None for _, value in named):
        names = " or ".join(name for name, _ in named)
        raise ParameterError(named[0][0], f"one of {names} is required")


def transfer_symbols(
    transfer_type: str, from_symbol: str | None, to_symbol: str | None
) -> tuple[str | None, str | None]:
    """Universal-transfer symbol rules: an isolated source needs ``from_symbol``, an isolated
    target needs ``to_symbol``, and neither may be sent otherwise."""
    source, _, target = transfer_type.partition("_")
    if transfer_type.startswith("ISOLATEDMARGIN_"):
        source, target = "ISOLATEDMARGIN", transfer_type.removeprefix("ISOLATEDMARGIN_")
    checked: list[str | None] = []
    for name, value, side in (
        ("from_symbol", from_symbol, source),
        ("to_symbol", to_symbol, target),
    ):
        if side == "ISOLATEDMARGIN" and value is None:
            raise ParameterError(name, f"is required for transfer type {transfer_type}")
        if side != "ISOLATEDMARGIN" and value is not None:
            raise ParameterError(name, f"is not allowed for transfer type {transfer_type}")
        checked.append(symbol(name, value))
    return checked[0], checked[1]


def as_sequence(name: str, values: str | Sequence[str]) -> list[str]:
    """Several values sent as a repeated parameter (``asset=A&asset=B``)."""
    items = [values] if isinstance(values, str) else list(values)
    if not items:
        raise ParameterError(name, "must not be empty")
    return [symbol(name, item) for item in items]
