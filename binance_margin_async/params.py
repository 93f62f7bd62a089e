"""Validation and wire formatting of request parameters. Pure: no I/O, no clock.

Every check runs before anything is sent and raises
:class:`~binance_margin_async.errors.ParameterError` naming the offending parameter (by its Python
name, the one the caller typed). Validators take ``None`` for "not given" and then return ``None``,
so the request builders in :mod:`.api` can pass optional arguments straight through; with
``required=True`` a ``None`` is an error instead (a required value is never sent as ``"None"``).
The validators are plain functions so that every request builder (REST and WebSocket API) shares
them.

Rules (PROTOCOL.md §1, §3.1, §8; the README's "Validation" section says the same):

* amounts go out as plain decimal strings, never in exponent form, with at most
  :data:`MAX_INTEGER_DIGITS` digits before and :data:`MAX_FRACTION_DIGITS` after the point
  (Binance's ``^([0-9]{1,20})([.][0-9]{1,20})?$``); a string amount is ASCII digits with an optional
  point and a short exponent, nothing else (no sign, spaces, ``_``, other scripts' digits), at
  most :data:`MAX_AMOUNT_CHARS` characters; floats are converted through ``repr`` so ``0.1``
  becomes ``"0.1"``; NaN, infinities, booleans and (where Binance needs a positive amount) zero or
  negative values are refused. Nothing is rounded: an amount that does not fit is an error;
* integers are ``int`` (not ``bool``) within Binance's LONG range; times are epoch milliseconds up
  to :data:`MAX_TIMESTAMP_MS` (year 9999);
* symbols and assets match Binance's ``^[A-Z0-9-_.]{1,20}$``; client order ids Binance's
  ``^[.A-Z:/a-z0-9_-]{1,36}$`` (its ``-1100`` message gives this legal range);
* free text (key names, e-mails, keys, PEM) is non-empty, without surrounding whitespace or
  control characters, encodable as UTF-8 (no lone surrogates) and bounded in length;
* ``isIsolated`` on order/borrow endpoints is the string ``"TRUE"``/``"FALSE"``; ``userListenToken``
  wants lower-case ``"true"``/``"false"``;
* windowed walks (capital flow) cover at most :data:`MAX_WINDOWS` windows, generated lazily.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final, TypeVar, overload

from .errors import ParameterError

__all__ = [
    "CAPITAL_FLOW_WINDOW_MS",
    "MAX_AMOUNT_CHARS",
    "MAX_FRACTION_DIGITS",
    "MAX_INTEGER_DIGITS",
    "MAX_LIST_ITEMS",
    "MAX_LONG",
    "MAX_TEXT_CHARS",
    "MAX_TIMESTAMP_MS",
    "MAX_WINDOWS",
    "AmountLike",
    "amount",
    "as_sequence",
    "boolean",
    "client_order_id",
    "email",
    "enum_value",
    "generate_client_order_id",
    "integer",
    "ip_list",
    "joined",
    "key",
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

_CLIENT_ORDER_ID: Final = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
_SYMBOL: Final = re.compile(r"[A-Z0-9_.-]{1,20}")
# An amount as text: ASCII digits, an optional point, an optional short exponent. ``[0-9]`` (not
# ``\d``) so that other scripts' digits, which ``Decimal`` would accept, are refused.
_AMOUNT_TEXT: Final = re.compile(r"(?=\.?[0-9])[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]{1,4})?")
# An amount already in the form :func:`amount` returns: positive, no leading zero before the point,
# no trailing zero after it, within Binance's 20 + 20 digits. Such a text is its own result, so the
# hot path (prices and quantities passed as the strings they are sent as) skips ``Decimal``.
_CANONICAL_AMOUNT: Final = re.compile(
    r"[1-9][0-9]{0,19}(?:\.[0-9]{0,19}[1-9])?|0\.[0-9]{0,19}[1-9]"
)
# API keys and listen keys are ASCII tokens (Binance's are 64 alphanumerics); base64 allowed.
_KEY: Final = re.compile(r"[A-Za-z0-9_.~+/=-]{1,512}")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")
# Control characters never belong in a parameter (NUL, CR/LF, DEL...); PEM keys may keep "\n".
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_NEWLINE: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")

#: Longest amount string accepted (Binance's 20 + 1 + 20 digits, with room for an exponent).
MAX_AMOUNT_CHARS: Final = 64
#: Most digits Binance takes before the decimal point of an amount.
MAX_INTEGER_DIGITS: Final = 20
#: Most digits Binance takes after the decimal point of an amount.
MAX_FRACTION_DIGITS: Final = 20
#: Largest integer parameter (Binance's LONG is a signed 64-bit integer).
MAX_LONG: Final = 2**63 - 1
#: Latest time accepted, in epoch milliseconds: 9999-12-31T23:59:59.999Z.
MAX_TIMESTAMP_MS: Final = 253_402_300_799_999
#: Default longest free-text parameter (key names, e-mails, API keys); PEM keys allow more.
MAX_TEXT_CHARS: Final = 512
#: Most values in a list parameter whose endpoint documents no maximum.
MAX_LIST_ITEMS: Final = 100
#: Most windows one windowed walk may cover (for 7-day capital-flow windows: about 19 years).
MAX_WINDOWS: Final = 1000

#: Capital-flow queries may span at most 7 days (margin change log 2026-01-16, ``-4047``).
CAPITAL_FLOW_WINDOW_MS: Final = 7 * 24 * 60 * 60 * 1000

_ENUM_LOOKUPS: dict[type[StrEnum], dict[str, str]] = {}


def _missing(name: str, value: object, required: bool) -> bool:
    """True if ``value`` is "not given"; an error if it is ``None`` but ``required``."""
    if value is not None:
        return False
    if required:
        raise ParameterError(name, "is required")
    return True


def _type_name(value: object) -> str:
    return type(value).__name__


def _plain_decimal(name: str, number: Decimal, allow_zero: bool) -> str:
    """``number`` (finite) as Binance's plain decimal string, checked against its digit bounds.

    Works on the digit tuple only, with no context arithmetic: no rounding, and no
    ``decimal.Overflow`` for exponents like ``6e99872863``.
    """
    sign, digit_tuple, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # "n", "N" or "F": callers check is_finite() first
        raise ParameterError(name, "must be a finite number")
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        if not allow_zero:
            raise ParameterError(name, "must be positive")
        return "0"
    if sign:
        raise ParameterError(name, "must be positive" if not allow_zero else "must not be negative")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    if len(digits) + exponent > MAX_INTEGER_DIGITS:
        raise ParameterError(name, f"must be below 10^{MAX_INTEGER_DIGITS}")
    if -exponent > MAX_FRACTION_DIGITS:
        raise ParameterError(name, f"must have at most {MAX_FRACTION_DIGITS} decimal places")
    if exponent >= 0:
        return digits + "0" * exponent
    whole, fraction = digits[:exponent], digits[exponent:]
    return (whole or "0") + "." + fraction.rjust(-exponent, "0")


@overload
def amount(name: str, value: None, *, allow_zero: bool = False, required: bool = False) -> None: ...
@overload
def amount(
    name: str, value: AmountLike, *, allow_zero: bool = False, required: bool = False
) -> str: ...
def amount(
    name: str, value: AmountLike | None, *, allow_zero: bool = False, required: bool = False
) -> str | None:
    """A positive (with ``allow_zero``: non-negative) finite amount as a plain decimal string."""
    if type(value) is str and _CANONICAL_AMOUNT.fullmatch(value):
        return value
    if _missing(name, value, required):
        return None
    if isinstance(value, bool):
        raise ParameterError(name, "must be a decimal amount, not a bool")
    if isinstance(value, Decimal):
        number = value
        if len(number.as_tuple().digits) > MAX_AMOUNT_CHARS:
            raise ParameterError(name, f"has more than {MAX_AMOUNT_CHARS} digits")
    elif isinstance(value, int):
        if abs(value) >= 10**MAX_INTEGER_DIGITS:
            raise ParameterError(name, f"must be below 10^{MAX_INTEGER_DIGITS}")
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(name, "must be a finite number")
        # repr() is the shortest string that round-trips: 0.1 -> "0.1", 1e-07 -> "1e-07".
        number = Decimal(repr(value))
    elif isinstance(value, str):
        if len(value) > MAX_AMOUNT_CHARS:
            raise ParameterError(name, f"must be at most {MAX_AMOUNT_CHARS} characters")
        if not _AMOUNT_TEXT.fullmatch(value):
            raise ParameterError(
                name, "must be a plain decimal number: ASCII digits, '.', optional exponent"
            )
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
            raise ParameterError(name, "must be a decimal number") from None
    else:
        raise ParameterError(name, f"must be Decimal, str, int or float, not {_type_name(value)}")
    if not number.is_finite():
        raise ParameterError(name, "must be a finite number")
    return _plain_decimal(name, number, allow_zero)


@overload
def integer(
    name: str,
    value: None,
    *,
    minimum: int = 0,
    maximum: int | None = MAX_LONG,
    required: bool = False,
) -> None: ...
@overload
def integer(
    name: str,
    value: int,
    *,
    minimum: int = 0,
    maximum: int | None = MAX_LONG,
    required: bool = False,
) -> str: ...
def integer(
    name: str,
    value: int | None,
    *,
    minimum: int = 0,
    maximum: int | None = MAX_LONG,
    required: bool = False,
) -> str | None:
    """An ``int`` (not a bool) within ``[minimum, maximum]`` (``None``: :data:`MAX_LONG`)."""
    if _missing(name, value, required):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(name, f"must be an int, not {_type_name(value)}")
    if value < minimum:
        raise ParameterError(name, f"must be >= {minimum}")
    if maximum is None:
        maximum = MAX_LONG
    if value > maximum:
        raise ParameterError(name, f"must be <= {maximum}")
    return str(value)


@overload
def timestamp(name: str, value: None, *, required: bool = False) -> None: ...
@overload
def timestamp(name: str, value: int, *, required: bool = False) -> str: ...
def timestamp(name: str, value: int | None, *, required: bool = False) -> str | None:
    """A time in epoch milliseconds, at most :data:`MAX_TIMESTAMP_MS`."""
    return integer(name, value, minimum=0, maximum=MAX_TIMESTAMP_MS, required=required)


def time_range(
    start_time: int | None,
    end_time: int | None,
    *,
    max_span_ms: int | None = None,
    span_text: str = "",
    required: bool = False,
) -> tuple[str | None, str | None]:
    """Validate ``start_time``/``end_time`` (ms) and return them formatted.

    ``end_time`` before ``start_time`` is an error; so is a span above ``max_span_ms`` when both
    are given (``span_text`` says what the limit is, for the message). With ``required``, both
    must be given.
    """
    start = timestamp("start_time", start_time, required=required)
    end = timestamp("end_time", end_time, required=required)
    if start_time is not None and end_time is not None:
        if end_time < start_time:
            raise ParameterError("end_time", "must not be before start_time")
        if max_span_ms is not None and end_time - start_time > max_span_ms:
            raise ParameterError("end_time", f"must be at most {span_text} after start_time")
    return start, end


def time_windows(start_time: int, end_time: int, window_ms: int) -> Iterator[tuple[int, int]]:
    """Split the inclusive range ``[start_time, end_time]`` (ms) into consecutive inclusive
    windows, each spanning less than ``window_ms``, in chronological order.

    The range is checked now (at most :data:`MAX_WINDOWS` windows); the windows are generated
    lazily, one per step of the returned iterator.
    """
    time_range(start_time, end_time, required=True)
    integer("window_ms", window_ms, minimum=1, required=True)
    count = (end_time - start_time) // window_ms + 1
    if count > MAX_WINDOWS:
        raise ParameterError(
            "end_time", f"the range must fit in {MAX_WINDOWS} windows of {window_ms} ms"
        )
    return _windows(start_time, end_time, window_ms)


def _windows(start_time: int, end_time: int, window_ms: int) -> Iterator[tuple[int, int]]:
    start = start_time
    while start <= end_time:
        end = min(start + window_ms - 1, end_time)
        yield start, end
        start = end + 1


@overload
def symbol(name: str, value: None, *, required: bool = False) -> None: ...
@overload
def symbol(name: str, value: str, *, required: bool = False) -> str: ...
def symbol(name: str, value: str | None, *, required: bool = False) -> str | None:
    """A symbol or asset name: Binance's ``^[A-Z0-9-_.]{1,20}$`` (upper case ASCII)."""
    if _missing(name, value, required):
        return None
    if not isinstance(value, str):
        raise ParameterError(name, f"must be a str, not {_type_name(value)}")
    if not _SYMBOL.fullmatch(value):
        raise ParameterError(name, "must be 1-20 characters of A-Z 0-9 - _ .")
    return value


@overload
def text(
    name: str,
    value: None,
    *,
    required: bool = False,
    max_length: int = MAX_TEXT_CHARS,
    multiline: bool = False,
) -> None: ...
@overload
def text(
    name: str,
    value: str,
    *,
    required: bool = False,
    max_length: int = MAX_TEXT_CHARS,
    multiline: bool = False,
) -> str: ...
def text(
    name: str,
    value: str | None,
    *,
    required: bool = False,
    max_length: int = MAX_TEXT_CHARS,
    multiline: bool = False,
) -> str | None:
    """A free-text value (name, e-mail, key, PEM): non-empty, no surrounding whitespace, no
    control characters (``multiline`` allows line feeds, for PEM), no lone surrogates, at most
    ``max_length`` characters."""
    if _missing(name, value, required):
        return None
    if not isinstance(value, str):
        raise ParameterError(name, f"must be a str, not {_type_name(value)}")
    if not value or value.strip() != value:
        raise ParameterError(name, "must be non-empty without leading or trailing whitespace")
    if len(value) > max_length:
        raise ParameterError(name, f"must be at most {max_length} characters")
    if (_CONTROL_BUT_NEWLINE if multiline else _CONTROL).search(value):
        raise ParameterError(name, "must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParameterError(name, "must be valid Unicode text (no lone surrogates)") from None
    return value


@overload
def key(name: str, value: None, *, required: bool = False) -> None: ...
@overload
def key(name: str, value: str, *, required: bool = False) -> str: ...
def key(name: str, value: str | None, *, required: bool = False) -> str | None:
    """An API key or listen key: 1-512 ASCII letters, digits and ``_ . ~ + / = -``."""
    if _missing(name, value, required):
        return None
    if not isinstance(value, str):
        raise ParameterError(name, f"must be a str, not {_type_name(value)}")
    if not _KEY.fullmatch(value):
        raise ParameterError(name, "must be 1-512 ASCII letters, digits or _ . ~ + / = -")
    return value


@overload
def email(name: str, value: None, *, required: bool = False) -> None: ...
@overload
def email(name: str, value: str, *, required: bool = False) -> str: ...
def email(name: str, value: str | None, *, required: bool = False) -> str | None:
    """An e-mail address (a sub-account's): :func:`text` with one ``@`` and no spaces."""
    checked = text(name, value, required=required, max_length=254)
    if checked is not None and not _EMAIL.fullmatch(checked):
        raise ParameterError(name, "must be an e-mail address")
    return checked


def _items(name: str, values: object, max_count: int | None) -> list[str]:
    """The items of a list parameter: a comma-separated str or an iterable of str, non-empty
    and (read no further than needed) at most ``max_count`` long."""
    bound = MAX_LIST_ITEMS if max_count is None else max_count
    items: list[object]
    if values is None:
        raise ParameterError(name, "is required")
    if isinstance(values, str):
        items = list(values.split(","))
    elif isinstance(values, (bytes, bytearray, Mapping)) or not isinstance(values, Iterable):
        raise ParameterError(name, f"must be a str or a sequence of str, not {_type_name(values)}")
    else:
        items = list(itertools.islice(values, bound + 1))
    if not items:
        raise ParameterError(name, "must not be empty")
    if len(items) > bound:
        raise ParameterError(name, f"at most {bound} values are allowed")
    strings: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ParameterError(name, f"must hold str values, not {_type_name(item)}")
        strings.append(item)
    return strings


def joined(name: str, values: str | Iterable[str], *, max_count: int | None = None) -> str:
    """Several symbols/assets as Binance's comma-separated list (a str is taken as one list)."""
    items = _items(name, values, max_count)
    return ",".join(symbol(name, item, required=True) for item in items)


def ip_list(name: str, values: str | Iterable[str], *, max_count: int = 30) -> str:
    """IP addresses (IPv4 or IPv6) as Binance's comma-separated list, at most ``max_count``."""
    addresses: list[str] = []
    for item in _items(name, values, max_count):
        if not item.isascii():
            raise ParameterError(name, "must hold IP addresses in ASCII")
        try:
            addresses.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ParameterError(name, "must hold IPv4 or IPv6 addresses") from None
    return ",".join(addresses)


@overload
def client_order_id(name: str, value: None, *, required: bool = False) -> None: ...
@overload
def client_order_id(name: str, value: str, *, required: bool = False) -> str: ...
def client_order_id(name: str, value: str | None, *, required: bool = False) -> str | None:
    """A client order id matching Binance's pattern ``^[.A-Z:/a-z0-9_-]{1,36}$``."""
    if _missing(name, value, required):
        return None
    if not isinstance(value, str) or not _CLIENT_ORDER_ID.fullmatch(value):
        raise ParameterError(name, "must be 1-36 characters of A-Z a-z 0-9 . : / _ -")
    return value


def _new_id_source() -> None:
    """A fresh random half for this process's client order ids, and a counter for the other."""
    global _id_prefix, _id_counter
    _id_prefix = "bma" + secrets.token_hex(8)
    _id_counter = itertools.count()


_id_prefix = ""
_id_counter = itertools.count()
_new_id_source()
# A forked child would otherwise repeat its parent's ids.
os.register_at_fork(after_in_child=_new_id_source)


def generate_client_order_id() -> str:
    """A fresh client order id: ``"bma"`` + 32 hex digits (35 characters).

    The first 16 digits are random per process (drawn again in a forked child), the last 16 count
    up: ids stay unique across processes and restarts, and the order hot path makes no
    ``os.urandom`` call per order. The prefix tells this library's orders apart from others in
    the account.
    """
    return f"{_id_prefix}{next(_id_counter):016x}"


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
def enum_value(name: str, value: None, enum: type[E], *, required: bool = False) -> None: ...
@overload
def enum_value(name: str, value: E | str, enum: type[E], *, required: bool = False) -> str: ...
def enum_value(
    name: str, value: E | str | None, enum: type[E], *, required: bool = False
) -> str | None:
    """The wire value of ``value``, given as an ``enum`` member or its string."""
    if type(value) is str:  # the common case first: a plain string
        found = (_ENUM_LOOKUPS.get(enum) or _lookup(enum)).get(value)
        if found is not None:
            return found
    if _missing(name, value, required):
        return None
    if isinstance(value, enum):
        return value.value
    if isinstance(value, str):
        found = _lookup(enum).get(value)
        if found is not None:
            return found
        allowed = ", ".join(member.value for member in enum)
        raise ParameterError(name, f"must be one of {allowed}")
    raise ParameterError(name, f"must be a {enum.__name__} or str, not {_type_name(value)}")


def boolean(name: str, value: bool) -> bool:
    """Check that a flag really is a bool (``"false"`` would otherwise be truthy)."""
    if not isinstance(value, bool):
        raise ParameterError(name, f"must be a bool, not {_type_name(value)}")
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


def as_sequence(
    name: str, values: str | Sequence[str], *, max_count: int | None = None
) -> list[str]:
    """Several symbols/assets sent as a repeated parameter (``asset=A&asset=B``); a str is one."""
    items = _items(name, [values] if isinstance(values, str) else values, max_count)
    return [symbol(name, item, required=True) for item in items]
