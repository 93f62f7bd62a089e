"""Symbol trading rules (``GET /api/v3/exchangeInfo``) and the pure helpers that apply them.

:class:`SymbolInfo` carries the filters an order has to pass (``PRICE_FILTER``, ``LOT_SIZE``,
``MARKET_LOT_SIZE``, ``NOTIONAL`` or the older ``MIN_NOTIONAL``) and the margin permission flag.
Its methods round a price to the tick and a quantity to the step (towards zero by default: never a
bigger order, never a worse limit price than the caller asked for on the buy side) and check the
minimum notional, so an order can be made valid before it is sent instead of being rejected with
``-1013 Filter failure`` or ``-1111`` (too much precision).

Amounts go through :func:`.params.amount` first: a float is read through its shortest ``repr``
(``0.1 + 0.2`` is ``0.30000000000000004``, which rounds to ``0.3`` on a ``0.1`` step), never
through its binary expansion. Results are ``Decimal`` with the step's exponent, so they format
without noise or exponent notation.

:class:`SymbolRules` is the cache: symbol → rules with the time they were fetched (``now`` passed
in, so it is pure). Pure module: no I/O, no clock.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/filters
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Literal

from . import params as P
from .errors import ParameterError
from .models import DecodeError, decode

__all__ = [
    "ExchangeInfo",
    "LotSize",
    "NotionalFilter",
    "PriceFilter",
    "Rounding",
    "SymbolInfo",
    "SymbolRules",
    "decode_exchange_info",
]

#: How a value that is not on the grid is moved onto it. ``"down"`` (the default everywhere) goes
#: towards zero (all amounts are positive), ``"up"`` away from zero, ``"nearest"`` to the closest
#: grid point (ties to even).
Rounding = Literal["down", "up", "nearest"]

_MODES: Final = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceFilter:
    """``PRICE_FILTER``: price bounds and tick (a 0 disables that part of the check)."""

    min_price: Decimal = _ZERO
    max_price: Decimal = _ZERO
    tick_size: Decimal = _ZERO
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LotSize:
    """``LOT_SIZE`` or ``MARKET_LOT_SIZE``: quantity bounds and step (0 disables a part)."""

    min_qty: Decimal = _ZERO
    max_qty: Decimal = _ZERO
    step_size: Decimal = _ZERO
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotionalFilter:
    """``NOTIONAL`` (or the older ``MIN_NOTIONAL``, whose ``applyToMarket`` maps to
    ``apply_min_to_market`` and which has no maximum): bounds of ``price * quantity``."""

    min_notional: Decimal | None = None
    max_notional: Decimal | None = None
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    avg_price_mins: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _on_grid(
    name: str, value: Decimal, base: Decimal, step: Decimal, rounding: Rounding
) -> Decimal:
    """``value`` moved onto ``base + k * step`` (k integer), carrying ``step``'s exponent."""
    mode = _MODES.get(rounding)
    if mode is None:
        raise ParameterError("rounding", "must be 'down', 'up' or 'nearest'")
    if step <= 0:
        return value
    steps = ((value - base) / step).to_integral_value(rounding=mode)
    result = base + steps * step
    # Quantize to the finer of the step's and the base's exponents: "0.30000" on a 0.1 step
    # becomes "0.3" once normalized by the caller's formatting, never "0.30000000000000004".
    exponent = min(step.normalize().as_tuple().exponent, base.normalize().as_tuple().exponent, 0)
    if not isinstance(exponent, int):  # pragma: no cover - finite Decimals have int exponents
        raise ParameterError(name, "must be a finite number")
    return result.quantize(Decimal(1).scaleb(exponent))


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolInfo:
    """One symbol of ``exchangeInfo``: its assets, status, permissions and order filters.

    ``filters`` keeps every filter as sent (``PERCENT_PRICE_BY_SIDE``, ``MAX_NUM_ORDERS``, ...);
    the ones orders are rounded against are decoded into ``price_filter``, ``lot_size``,
    ``market_lot_size`` and ``notional``.
    https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints
    """

    symbol: str
    status: str | None = None
    base_asset: str | None = None
    base_asset_precision: int | None = None
    quote_asset: str | None = None
    quote_asset_precision: int | None = None
    order_types: tuple[str, ...] = ()
    is_spot_trading_allowed: bool | None = None
    is_margin_trading_allowed: bool | None = None
    permissions: tuple[str, ...] = ()
    price_filter: PriceFilter | None = None
    lot_size: LotSize | None = None
    market_lot_size: LotSize | None = None
    notional: NotionalFilter | None = None
    filters: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def round_price(self, price: P.AmountLike, *, rounding: Rounding = "down") -> Decimal:
        """``price`` on the tick grid (``minPrice + k * tickSize``), rounded down by default.

        Raises:
            ParameterError: not a positive finite amount, or outside ``[minPrice, maxPrice]``
                after rounding.
        """
        value = Decimal(P.amount("price", price))
        rule = self.price_filter
        if rule is None:
            return value
        result = _on_grid("price", value, rule.min_price, rule.tick_size, rounding)
        if rule.min_price > 0 and result < rule.min_price:
            raise ParameterError("price", f"{value} is below minPrice {rule.min_price}")
        if rule.max_price > 0 and result > rule.max_price:
            raise ParameterError("price", f"{value} is above maxPrice {rule.max_price}")
        return result

    def round_quantity(
        self, quantity: P.AmountLike, *, market: bool = False, rounding: Rounding = "down"
    ) -> Decimal:
        """``quantity`` on the step grid of ``LOT_SIZE`` (``MARKET_LOT_SIZE`` with ``market``,
        where it sets a step), rounded down by default.

        Raises:
            ParameterError: not a positive finite amount, or outside ``[minQty, maxQty]`` after
                rounding (e.g. rounded down to nothing).
        """
        value = Decimal(P.amount("quantity", quantity))
        result = value
        for rule in self._lot_rules(market):
            result = _on_grid("quantity", result, rule.min_qty, rule.step_size, rounding)
            if result < rule.min_qty or result <= 0:
                raise ParameterError(
                    "quantity", f"{value} rounds to {result}, below minQty {rule.min_qty}"
                )
            if rule.max_qty > 0 and result > rule.max_qty:
                raise ParameterError("quantity", f"{value} is above maxQty {rule.max_qty}")
        return result

    def check_notional(
        self, price: P.AmountLike, quantity: P.AmountLike, *, market: bool = False
    ) -> Decimal:
        """Check ``price * quantity`` against ``NOTIONAL``/``MIN_NOTIONAL`` and return it.

        For a MARKET order pass the expected price (Binance uses the average price over
        ``avg_price_mins``); the minimum applies to MARKET orders only with
        ``apply_min_to_market``, the maximum only with ``apply_max_to_market``.

        Raises:
            ParameterError: the notional is outside the allowed range.
        """
        notional = Decimal(P.amount("price", price)) * Decimal(P.amount("quantity", quantity))
        rule = self.notional
        if rule is None:
            return notional
        if (
            rule.min_notional is not None
            and (not market or rule.apply_min_to_market)
            and notional < rule.min_notional
        ):
            raise ParameterError(
                "quantity", f"notional {notional} is below minNotional {rule.min_notional}"
            )
        if (
            rule.max_notional is not None
            and rule.max_notional > 0
            and (not market or rule.apply_max_to_market)
            and notional > rule.max_notional
        ):
            raise ParameterError(
                "quantity", f"notional {notional} is above maxNotional {rule.max_notional}"
            )
        return notional

    def _lot_rules(self, market: bool) -> tuple[LotSize, ...]:
        rules = [] if self.lot_size is None else [self.lot_size]
        # A MARKET order must pass both LOT_SIZE and MARKET_LOT_SIZE; a MARKET_LOT_SIZE with a
        # zero step (common) only bounds the quantity.
        if market and self.market_lot_size is not None:
            rules.append(self.market_lot_size)
        return tuple(rules)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeInfo:
    """The answer of ``GET /api/v3/exchangeInfo``: server time and the requested symbols.

    https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints
    """

    server_time: int | None = None
    timezone: str | None = None
    symbols: tuple[SymbolInfo, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _decode_symbol(data: Any) -> SymbolInfo:
    if not isinstance(data, dict) or not isinstance(data.get("symbol"), str):
        raise DecodeError("symbols: each entry needs a string 'symbol'")
    info = decode(SymbolInfo, {k: v for k, v in data.items() if k != "filters"})
    # Newer answers list permissions in permissionSets (a list of lists); older ones in permissions.
    permissions = data.get("permissions") or [
        name for group in data.get("permissionSets") or () for name in group
    ]
    raw_filters = data.get("filters")
    if raw_filters is None:
        raw_filters = []
    if not isinstance(raw_filters, list):
        raise DecodeError("filters: expected a list")
    decoded: dict[str, Any] = {}
    for entry in raw_filters:
        if not isinstance(entry, dict):
            raise DecodeError("filters: expected objects")
        kind = entry.get("filterType")
        if kind == "PRICE_FILTER":
            decoded["price_filter"] = decode(PriceFilter, entry)
        elif kind == "LOT_SIZE":
            decoded["lot_size"] = decode(LotSize, entry)
        elif kind == "MARKET_LOT_SIZE":
            decoded["market_lot_size"] = decode(LotSize, entry)
        elif kind == "NOTIONAL":
            decoded["notional"] = decode(NotionalFilter, entry)
        elif kind == "MIN_NOTIONAL" and "notional" not in decoded:
            legacy = decode(NotionalFilter, entry)
            apply = entry.get("applyToMarket")
            decoded["notional"] = dataclasses.replace(
                legacy, apply_min_to_market=apply if isinstance(apply, bool) else True
            )
    return dataclasses.replace(
        info,
        permissions=tuple(str(name) for name in permissions),
        filters=tuple(raw_filters),
        raw=data,
        **decoded,
    )


def decode_exchange_info(data: Any) -> ExchangeInfo:
    """Decode the JSON of ``exchangeInfo``; raises :class:`~.models.DecodeError` on a bad shape."""
    if not isinstance(data, dict):
        raise DecodeError("exchangeInfo: expected an object")
    symbols = data.get("symbols")
    if symbols is None:
        symbols = []
    if not isinstance(symbols, list):
        raise DecodeError("symbols: expected a list")
    server_time = data.get("serverTime")
    timezone = data.get("timezone")
    return ExchangeInfo(
        server_time=server_time if type(server_time) is int else None,
        timezone=timezone if isinstance(timezone, str) else None,
        symbols=tuple(_decode_symbol(item) for item in symbols),
        raw=data,
    )


class SymbolRules:
    """Cache of :class:`SymbolInfo` by symbol, each with the time it was fetched.

    ``max_age`` (seconds) is how long rules are trusted: Binance changes ticks and steps rarely
    and announces it, so the default is an hour. Pure: ``now`` is passed in.
    """

    __slots__ = ("_entries", "max_age")

    def __init__(self, *, max_age: float = 3600.0) -> None:
        if not max_age > 0:
            raise ParameterError("max_age", "must be a positive number of seconds")
        self.max_age = max_age
        self._entries: dict[str, tuple[SymbolInfo, float]] = {}

    def store(self, symbols: Iterable[SymbolInfo], now: float) -> None:
        """Remember fresh rules (from an ``exchangeInfo`` answer received at ``now``)."""
        for info in symbols:
            self._entries[info.symbol] = (info, now)

    def get(self, symbol: str, now: float) -> SymbolInfo | None:
        """The cached rules of ``symbol`` if fetched less than ``max_age`` ago, else ``None``."""
        entry = self._entries.get(symbol)
        if entry is None or now - entry[1] >= self.max_age:
            return None
        return entry[0]

    def clear(self) -> None:
        """Forget everything (the next lookup fetches again)."""
        self._entries.clear()
