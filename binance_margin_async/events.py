"""Typed user-data events and their decoder.

Every event the streams deliver is one of the frozen, slotted dataclasses below. Each carries
``account`` (``"CROSS"`` or the isolated symbol it was received for) and ``raw`` (the decoded wire
dict, so fields this module does not model are never lost). Amounts are :class:`~decimal.Decimal`,
times are ``int`` milliseconds, and fields with a Binance enum hold a :class:`~enum.StrEnum` member,
or the plain ``str`` when Binance sends a value this version does not know yet.

:func:`decode_event` turns one wire event dict into an event. It is on the path of every fill, so
it is one dict lookup on ``"e"`` plus a hand-written decoder per type; see its docstring for what
happens to unknown and malformed events (they are delivered as :class:`UnknownEvent`, never
dropped and never raised).

Wire references:

* Trade stream (``executionReport``, ``outboundAccountPosition``, ``balanceUpdate``,
  ``listStatus``, ``eventStreamTerminated``):
  https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream and
  https://developers.binance.com/docs/margin_trading/trade-data-stream/Listen-Token-Websocket-API
* Risk stream (``USER_LIABILITY_CHANGE``, ``MARGIN_LEVEL_STATUS_CHANGE``, ``listenKeyExpired``):
  https://developers.binance.com/docs/margin_trading/risk-data-stream
* ``serverShutdown``: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

import orjson

from .models import (
    ContingencyType,
    ListOrderStatus,
    ListStatusType,
    MarginLevelStatus,
    OrderSide,
    OrderStatus,
    OrderType,
    SelfTradePreventionMode,
    TimeInForce,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "EVENT_TYPES",
    "AccountPosition",
    "Balance",
    "BalanceUpdate",
    "ContingencyType",
    "Event",
    "EventStreamTerminated",
    "ExecutionReport",
    "ExecutionType",
    "ExpiryReason",
    "LiabilityChange",
    "ListOrder",
    "ListOrderStatus",
    "ListStatus",
    "ListStatusType",
    "ListenKeyExpired",
    "MarginLevelStatus",
    "MarginLevelStatusChange",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Resynced",
    "SelfTradePreventionMode",
    "ServerShutdown",
    "StateChanged",
    "StreamGap",
    "TimeInForce",
    "UnknownEvent",
    "decode_event",
    "normalize_ms",
]


# --------------------------------------------------------------------------------------------
# Enums. Values as Binance spells them:
# https://developers.binance.com/docs/binance-spot-api-docs/enums
# The ones REST results share (side, type, status, ...) live in models.py and are re-exported here;
# the two below only occur in the stream.
# --------------------------------------------------------------------------------------------


class ExecutionType(StrEnum):
    """What happened to the order in this report (``x``)."""

    NEW = "NEW"
    CANCELED = "CANCELED"
    REPLACED = "REPLACED"
    REJECTED = "REJECTED"
    TRADE = "TRADE"
    EXPIRED = "EXPIRED"
    TRADE_PREVENTION = "TRADE_PREVENTION"


class ExpiryReason(StrEnum):
    """Why an order expired (``eR``, added to the stream 2026-03-26)."""

    REJECTED = "REJECTED"
    EXCHANGE_CANCELED = "EXCHANGE_CANCELED"
    OCO_TRIGGER = "OCO_TRIGGER"
    OTO_PHASE_ONE_EXPIRED = "OTO_PHASE_ONE_EXPIRED"
    UNFILLED_IOC_QUANTITY_EXPIRED = "UNFILLED_IOC_QUANTITY_EXPIRED"
    UNFILLED_FOK_ORDER_EXPIRED = "UNFILLED_FOK_ORDER_EXPIRED"
    INSUFFICIENT_LIQUIDITY = "INSUFFICIENT_LIQUIDITY"
    EXECUTION_RULE_PRICE_RANGE_EXCEEDED = "EXECUTION_RULE_PRICE_RANGE_EXCEEDED"


# --------------------------------------------------------------------------------------------
# Event dataclasses. Field comments name the wire key. ``raw`` keeps what we do not model; it is
# not part of equality, hashing or repr.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """Order update (``executionReport``): new, canceled, traded, expired, rejected.

    Sentinels are kept as Binance sends them: ``order_list_id`` and ``trade_id`` are ``-1`` when
    not applicable, ``orig_client_order_id`` is ``""`` unless the report is for a cancel.
    Conditional fields are ``None`` when absent. Rarely used conditional fields (``b`` match type,
    ``a`` allocation id, ``k`` working floor, ``uS`` used SOR, pegged-order ``gP``/``gOT``/``gOV``/
    ``gp``) stay in ``raw``. Average fill price is ``cumulative_quote_quantity /
    cumulative_filled_quantity``.

    https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream#order-update
    """

    account: str
    event_time: int  # E
    symbol: str  # s
    client_order_id: str  # c
    side: OrderSide | str  # S
    order_type: OrderType | str  # o
    time_in_force: TimeInForce | str  # f
    quantity: Decimal  # q
    price: Decimal  # p
    stop_price: Decimal  # P
    iceberg_quantity: Decimal  # F
    order_list_id: int  # g
    orig_client_order_id: str  # C
    execution_type: ExecutionType | str  # x
    order_status: OrderStatus | str  # X
    reject_reason: str  # r: "NONE", a reason name, or an error code such as "-2010"
    order_id: int  # i
    last_executed_quantity: Decimal  # l
    cumulative_filled_quantity: Decimal  # z
    last_executed_price: Decimal  # L
    commission: Decimal  # n
    commission_asset: str | None  # N
    transaction_time: int  # T
    trade_id: int  # t
    is_on_book: bool  # w
    is_maker: bool  # m
    order_creation_time: int  # O
    cumulative_quote_quantity: Decimal  # Z
    last_quote_quantity: Decimal  # Y
    quote_order_quantity: Decimal  # Q
    self_trade_prevention_mode: SelfTradePreventionMode | str  # V
    execution_id: int | None = None  # I (documented "Ignore" on the margin page)
    working_time: int | None = None  # W, only once the order is on the book
    trailing_delta: int | None = None  # d
    trailing_time: int | None = None  # D
    strategy_id: int | None = None  # j
    strategy_type: int | None = None  # J
    prevented_match_id: int | None = None  # v
    prevented_quantity: Decimal | None = None  # A
    last_prevented_quantity: Decimal | None = None  # B
    trade_group_id: int | None = None  # u
    counter_order_id: int | None = None  # U
    counter_symbol: str | None = None  # Cs
    prevented_execution_quantity: Decimal | None = None  # pl
    prevented_execution_price: Decimal | None = None  # pL
    prevented_execution_quote_quantity: Decimal | None = None  # pY
    expiry_reason: ExpiryReason | str | None = None  # eR
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def order_client_id(self) -> str:
        """The client order id of the order itself, whatever request the report answers.

        A cancel's report carries the cancel request's own id in ``client_order_id`` (``c``) and
        the canceled order's in ``orig_client_order_id`` (``C``); every other report has the
        order's id in ``c`` and ``""`` in ``C``. This is ``C`` when set, else ``c``: the key to
        match reports with the orders you placed.
        """
        return self.orig_client_order_id or self.client_order_id


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset of an :class:`AccountPosition`: absolute free and locked amounts."""

    asset: str  # a
    free: Decimal  # f
    locked: Decimal  # l


@dataclass(frozen=True, slots=True)
class AccountPosition:
    """Absolute balances of the assets a change touched (``outboundAccountPosition``).

    Margin balances here have no borrowed/interest: those come from REST or
    :class:`LiabilityChange`.

    https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream#account-update
    """

    account: str
    event_time: int  # E
    last_update_time: int  # u
    balances: tuple[Balance, ...]  # B
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    """A deposit, withdrawal or transfer changed ``asset`` by ``delta`` (``balanceUpdate``).

    https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream#balance-update
    """

    account: str
    event_time: int  # E
    asset: str  # a
    delta: Decimal  # d, signed
    clear_time: int  # T
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ListOrder:
    """One order of a :class:`ListStatus`."""

    symbol: str  # s
    order_id: int  # i
    client_order_id: str  # c


@dataclass(frozen=True, slots=True)
class ListStatus:
    """Order list (OCO/OTO/OTOCO) update (``listStatus``).

    https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream#order-update
    """

    account: str
    event_time: int  # E
    symbol: str  # s
    order_list_id: int  # g
    contingency_type: ContingencyType | str  # c
    list_status_type: ListStatusType | str  # l
    list_order_status: ListOrderStatus | str  # L
    list_reject_reason: str  # r
    list_client_order_id: str  # C
    transaction_time: int  # T
    orders: tuple[ListOrder, ...]  # O
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class LiabilityChange:
    """Borrow, repay or interest changed a liability (risk stream ``USER_LIABILITY_CHANGE``).

    ``liability_type`` is a plain ``str``: only ``"BORROW"`` is documented (other values,
    presumably repay and interest types, are UNCONFIRMED).

    https://developers.binance.com/docs/margin_trading/risk-data-stream/Event-Liability-Update
    """

    account: str
    event_time: int  # E
    asset: str  # a
    liability_type: str  # t
    principal: Decimal  # p
    interest: Decimal  # i
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MarginLevelStatusChange:
    """The margin level moved to another band, e.g. a margin call (``MARGIN_LEVEL_STATUS_CHANGE``).

    ``status`` values are assumed to be those of the account's ``marginLevelStatus``
    (:class:`MarginLevelStatus`); Binance does not list them for the event (UNCONFIRMED).

    https://developers.binance.com/docs/margin_trading/risk-data-stream
    """

    account: str
    event_time: int  # E
    margin_level: Decimal  # l
    status: MarginLevelStatus | str  # s
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    recovered: bool = field(default=False, kw_only=True)
    """True when the stream did not receive this event but learnt the status from REST after a
    gap of the risk channel (``event_time`` is then the server time it was read)."""


@dataclass(frozen=True, slots=True)
class EventStreamTerminated:
    """The listenToken subscription ended (expired or unsubscribed); no more events follow on it.

    https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream#event-stream-terminated
    """

    account: str
    event_time: int  # E
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ListenKeyExpired:
    """The risk stream's listen key expired (``listenKeyExpired``); the stream reconnects.

    https://developers.binance.com/docs/margin_trading/trade-data-stream/Event-Listen-Key-Expire
    """

    account: str
    event_time: int  # E (a string on the wire in Binance's own example)
    listen_key: str | None = field(default=None, repr=False)  # listenKey: a credential, not shown
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """The WS API server is about to go away (``serverShutdown``); the stream moves connections.

    https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api
    """

    account: str
    event_time: int  # E
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Synthetic: events of ``account`` may have been missed between ``started`` and ``ended``.

    ``started`` and ``ended`` are local epoch seconds. Emitted after an unplanned reconnect; with
    ``mirror=True`` a :class:`Resynced` follows once the mirror has been reloaded from REST.

    ``started_ms`` and ``ended_ms`` are the same window on the *server's* clock, in epoch ms, for
    REST queries (``startTime=gap.started_ms, endTime=gap.ended_ms``, e.g. ``get_my_trades`` or
    ``get_all_orders``): converted with the client's measured server-time offset and widened by
    that measurement's error bound plus one second for events in flight around the cut, so
    every event that may have been missed lies inside. ``None`` when the server time could not
    be measured. Keyword-only, so ``StreamGap(account, started, ended)`` keeps its meaning.
    """

    account: str
    started: float
    ended: float
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    started_ms: int | None = field(default=None, kw_only=True)
    ended_ms: int | None = field(default=None, kw_only=True)
    channel: str = field(default="trade", kw_only=True)
    """The channel that had the gap: ``"trade"`` or ``"risk"``."""
    reason: str = field(default="", kw_only=True)
    """Why, e.g. ``"stalled: nothing received for 60.0 s"`` or ``"subscription terminated"``."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    """Synthetic: a channel of the stream changed state (``stream.state`` has the current one).

    ``channel`` is ``"trade"`` or ``"risk"``; ``state`` and ``previous`` are ``"connecting"``,
    ``"live"``, ``"recovering"`` or ``"closed"``. ``account`` is ``""``: the whole channel.
    """

    channel: str
    state: str
    previous: str
    account: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Resynced:
    """Synthetic: the account mirror of ``account`` was reloaded from REST after a gap."""

    account: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event this version does not model, or a known one that could not be decoded.

    Delivered, never dropped. ``event_type`` is the wire ``"e"`` (``None`` when missing);
    ``error`` is ``None`` for a well-formed event of an unknown type and says what was wrong
    otherwise (e.g. ``"malformed executionReport: KeyError: 'q'"``). ``raw`` is the whole payload.
    """

    account: str
    event_type: str | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    error: str | None = None


Event: TypeAlias = (
    ExecutionReport
    | AccountPosition
    | BalanceUpdate
    | ListStatus
    | LiabilityChange
    | MarginLevelStatusChange
    | EventStreamTerminated
    | ListenKeyExpired
    | ServerShutdown
    | StreamGap
    | StateChanged
    | Resynced
    | UnknownEvent
)
"""Any event a stream delivers."""

EVENT_TYPES: Final[tuple[type[Event], ...]] = (
    ExecutionReport,
    AccountPosition,
    BalanceUpdate,
    ListStatus,
    LiabilityChange,
    MarginLevelStatusChange,
    EventStreamTerminated,
    ListenKeyExpired,
    ServerShutdown,
    StreamGap,
    Resynced,
    UnknownEvent,
)
"""Every event class, e.g. to validate ``stream.on(EventType, ...)``."""


# --------------------------------------------------------------------------------------------
# Fast construction.
#
# A frozen dataclass __init__ assigns each field through object.__setattr__ (~90 ns per field, so
# ~4.5 us for ExecutionReport: more than orjson needs to parse the whole frame). The decoders
# instead call a "builder" class, fill the instance with ordinary attribute stores (STORE_ATTR on
# a slot, specialised by the interpreter: a few ns each), and then switch its __class__ to the
# real one. CPython only allows that switch between layout-identical heap types and raises
# TypeError otherwise, so the trick cannot corrupt memory; the result is an ordinary frozen
# instance (tests check equality, repr, hash, copy and pickle against the normal constructor).
# The builder is a subclass of the real class that adds no slot and restores object's plain
# __init__/__setattr__: CPython then finds the two layouts identical by walking to the common base,
# where a separate class with the same __slots__ costs a comparison of both slot tuples on every
# switch (~1,000 CPU instructions per event on the bench_stream mix).
#
# The stores are written out in each decoder rather than passed to a generated positional
# constructor: a call with ~50 arguments plus a second frame cost ~0.8 us per report more.
# Every decoder must store every slot (an unset slot would raise AttributeError on access);
# tests/test_events.py reads every field of every decoded fixture.
# --------------------------------------------------------------------------------------------

_T = TypeVar("_T", bound="DataclassInstance")


def _builder(cls: type[_T]) -> Any:
    """A subclass of frozen slotted dataclass ``cls`` that adds no slot and can be written to."""
    return type(
        f"_{cls.__name__}Builder",
        (cls,),
        {
            "__slots__": (),
            "__init__": object.__init__,
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        },
    )


_EXECUTION_REPORT_BUILDER: Final = _builder(ExecutionReport)
_ACCOUNT_POSITION_BUILDER: Final = _builder(AccountPosition)
_BALANCE_BUILDER: Final = _builder(Balance)
_BALANCE_UPDATE_BUILDER: Final = _builder(BalanceUpdate)
_LIST_ORDER_BUILDER: Final = _builder(ListOrder)
_LIST_STATUS_BUILDER: Final = _builder(ListStatus)
_LIABILITY_CHANGE_BUILDER: Final = _builder(LiabilityChange)
_MARGIN_LEVEL_STATUS_CHANGE_BUILDER: Final = _builder(MarginLevelStatusChange)


# --------------------------------------------------------------------------------------------
# Field converters.
# --------------------------------------------------------------------------------------------

_E = TypeVar("_E", bound=StrEnum)


class _EnumTable(dict[str, _E | str]):
    """value -> enum member; an unknown value maps to itself (the plain str) instead of failing.

    A dict subclass so a hit is one C-level lookup (``table[value]``); only misses call Python.
    """

    __slots__ = ()

    def __init__(self, enum: type[_E]) -> None:
        super().__init__((member.value, member) for member in enum)

    def __missing__(self, key: str) -> str:
        return key


_SIDE = _EnumTable(OrderSide)
_ORDER_TYPE = _EnumTable(OrderType)
_TIF = _EnumTable(TimeInForce)
_EXEC_TYPE = _EnumTable(ExecutionType)
_ORDER_STATUS = _EnumTable(OrderStatus)
_STP = _EnumTable(SelfTradePreventionMode)
_EXPIRY = _EnumTable(ExpiryReason)
_CONTINGENCY = _EnumTable(ContingencyType)
_LIST_STATUS_TYPE = _EnumTable(ListStatusType)
_LIST_ORDER_STATUS = _EnumTable(ListOrderStatus)
_MARGIN_LEVEL_STATUS = _EnumTable(MarginLevelStatus)

# Most amount fields of a report are zero, spelled "0.00000000" (commission: "0"). Comparing the
# string costs ~20 ns against ~125 ns for Decimal(); the shared Decimal is the very value (same
# exponent) that Decimal() would give.
_ZERO8S: Final = "0.00000000"
_ZERO8: Final = Decimal(_ZERO8S)
_ZERO: Final = Decimal("0")


def normalize_ms(value: int | str) -> int:
    """Epoch time in ms from an int or digit string; more than 13 digits is read as µs.

    Binance documents ``expirationTime`` once with 16 digits (µs) and once with 13 (ms), and
    ``listenKeyExpired.E`` as a string.
    """
    number = int(value)
    # 10**13 ms is the year 2286: anything that large is a µs timestamp.
    return number // 1000 if number >= 10**13 else number


# --------------------------------------------------------------------------------------------
# Decoders, one per wire type: (event dict, account) -> event.
# --------------------------------------------------------------------------------------------


def wire_key(text: str) -> str:
    """orjson's own ``str`` object for object key ``text``, to look ``text`` up in its dicts.

    orjson takes object keys from a cache of ``str`` objects (one per key text) and builds dicts of
    more than five keys in CPython's general layout, where a lookup first compares the key objects
    by identity and only then calls ``str.__eq__`` (~150 CPU instructions, half the lookup). A
    literal ``"q"`` is another object than orjson's ``"q"`` (and code constants are interned, so
    they cannot be swapped), so the hot decoders look keys up with these objects instead. Should
    orjson's cache ever drop a key, lookups fall back to comparing: slower, never wrong.
    """
    key: str = next(iter(orjson.loads(orjson.dumps({text: 0}))))
    return key


# The keys every report has but "e", read in one call: the amounts first, then in wire order, the
# order the decoder used to index them in (a missing key raises KeyError naming the first one
# missing).
_EXEC_FIELD_KEYS: Final = "qplzLZYEscSofPFgCxXrinNTtwmOQV"
_EXEC_FIELDS: Final = itemgetter(*map(wire_key, _EXEC_FIELD_KEYS))
# Keys every report has (the decoder indexes them all, so a missing one makes it malformed).
_EXEC_MANDATORY_KEYS: Final = ("e", *_EXEC_FIELD_KEYS)
_KEY_I: Final = wire_key("I")
_KEY_W: Final = wire_key("W")
_KEY_M: Final = wire_key("M")
_KEY_B: Final = wire_key("B")
_POSITION_TIMES: Final = itemgetter(*map(wire_key, "Eu"))
_BALANCE_FIELDS: Final = itemgetter(*map(wire_key, "afl"))
_BALANCE_UPDATE_FIELDS: Final = itemgetter(*map(wire_key, "EadT"))
_KEY_TYPE: Final = wire_key("e")


def _execution_extras(o: Any, ev: dict[str, Any]) -> None:
    """Store the conditional fields of a report (trailing_delta on) into builder ``o``.

    Inline conversions rather than helper calls: a Python call costs as much as the lookup. Ints
    go through int() because the SDK models several of them as strings.
    """
    get = ev.get
    o.trailing_delta = None if (v := get("d")) is None else int(v)
    o.trailing_time = None if (v := get("D")) is None else int(v)
    o.strategy_id = None if (v := get("j")) is None else int(v)
    o.strategy_type = None if (v := get("J")) is None else int(v)
    o.prevented_match_id = None if (v := get("v")) is None else int(v)
    o.prevented_quantity = None if (v := get("A")) is None else Decimal(v)
    o.last_prevented_quantity = None if (v := get("B")) is None else Decimal(v)
    o.trade_group_id = None if (v := get("u")) is None else int(v)
    o.counter_order_id = None if (v := get("U")) is None else int(v)
    o.counter_symbol = get("Cs")
    o.prevented_execution_quantity = None if (v := get("pl")) is None else Decimal(v)
    o.prevented_execution_price = None if (v := get("pL")) is None else Decimal(v)
    o.prevented_execution_quote_quantity = None if (v := get("pY")) is None else Decimal(v)
    o.expiry_reason = None if (v := get("eR")) is None else _EXPIRY[v]


def _execution_report(ev: dict[str, Any], account: str) -> ExecutionReport:
    # Local aliases: a LOAD_FAST instead of a global lookup for each of ~40 uses.
    D = Decimal
    z8s = _ZERO8S
    z8 = _ZERO8
    # Amounts: Decimal() is the costliest step (~140 ns each). Most amounts of a report are zero
    # (see _ZERO8), and within one report several are often the same text: a single fill has
    # z == l and Y == Z, a whole fill l == q, a fill at the limit price L == p. The same text is
    # the very same Decimal (value and exponent), so those reuse the one already parsed; a string
    # comparison costs ~15 ns.
    (
        quantity_s,
        price_s,
        last_s,
        filled_s,
        last_price_s,
        quote_s,
        last_quote_s,
        event_time,
        symbol,
        client_order_id,
        side,
        order_type,
        time_in_force,
        stop_price_s,
        iceberg_s,
        order_list_id,
        orig_client_order_id,
        execution_type,
        order_status,
        reject_reason,
        order_id,
        commission_s,
        commission_asset,
        transaction_time,
        trade_id,
        is_on_book,
        is_maker,
        order_creation_time,
        quote_order_s,
        stp,
    ) = _EXEC_FIELDS(ev)
    quantity = z8 if quantity_s == z8s else D(quantity_s)
    price = z8 if price_s == z8s else D(price_s)
    last_quantity = z8 if last_s == z8s else quantity if last_s == quantity_s else D(last_s)
    if filled_s == z8s:
        filled = z8
    elif filled_s == last_s:  # the first fill
        filled = last_quantity
    elif filled_s == quantity_s:  # the order is filled
        filled = quantity
    else:
        filled = D(filled_s)
    cumulative_quote = z8 if quote_s == z8s else D(quote_s)
    o = _EXECUTION_REPORT_BUILDER()  # see "Fast construction"
    o.account = account
    o.event_time = event_time
    o.symbol = symbol
    o.client_order_id = client_order_id
    o.side = _SIDE[side]
    o.order_type = _ORDER_TYPE[order_type]
    o.time_in_force = _TIF[time_in_force]
    o.quantity = quantity
    o.price = price
    o.stop_price = z8 if stop_price_s == z8s else D(stop_price_s)
    o.iceberg_quantity = z8 if iceberg_s == z8s else D(iceberg_s)
    o.order_list_id = order_list_id
    o.orig_client_order_id = orig_client_order_id
    o.execution_type = _EXEC_TYPE[execution_type]
    o.order_status = _ORDER_STATUS[order_status]
    o.reject_reason = reject_reason
    o.order_id = order_id
    o.last_executed_quantity = last_quantity
    o.cumulative_filled_quantity = filled
    o.last_executed_price = (
        z8 if last_price_s == z8s else price if last_price_s == price_s else D(last_price_s)
    )
    # "0" when there is none
    o.commission = _ZERO if commission_s == "0" else D(commission_s)
    o.commission_asset = commission_asset
    o.transaction_time = transaction_time
    o.trade_id = trade_id
    o.is_on_book = is_on_book
    o.is_maker = is_maker
    o.order_creation_time = order_creation_time
    o.cumulative_quote_quantity = cumulative_quote
    o.last_quote_quantity = (
        z8
        if last_quote_s == z8s
        else cumulative_quote
        if last_quote_s == quote_s
        else D(last_quote_s)
    )
    o.quote_order_quantity = z8 if quote_order_s == z8s else D(quote_order_s)
    o.self_trade_prevention_mode = _STP[stp]
    o.execution_id = execution_id = ev.get(_KEY_I)
    o.working_time = working_time = ev.get(_KEY_W)
    # Keys besides the mandatory ones and the usual optional ones (execution id, working time,
    # "M" ignore). Without any, the report has no conditional field: skip the ~14 lookups.
    others = len(ev) - (execution_id is not None) - (working_time is not None) - (_KEY_M in ev)
    if others > len(_EXEC_MANDATORY_KEYS):
        _execution_extras(o, ev)
    else:
        o.trailing_delta = None
        o.trailing_time = None
        o.strategy_id = None
        o.strategy_type = None
        o.prevented_match_id = None
        o.prevented_quantity = None
        o.last_prevented_quantity = None
        o.trade_group_id = None
        o.counter_order_id = None
        o.counter_symbol = None
        o.prevented_execution_quantity = None
        o.prevented_execution_price = None
        o.prevented_execution_quote_quantity = None
        o.expiry_reason = None
    o.raw = ev
    o.__class__ = ExecutionReport
    report: ExecutionReport = o
    return report


def _account_position(ev: dict[str, Any], account: str) -> AccountPosition:
    D = Decimal
    z8s = _ZERO8S
    z8 = _ZERO8
    builder = _BALANCE_BUILDER
    balances = []
    fields = _BALANCE_FIELDS
    for entry in ev[_KEY_B]:
        asset, free_s, locked_s = fields(entry)
        b = builder()
        b.asset = asset
        b.free = z8 if free_s == z8s else D(free_s)
        b.locked = z8 if locked_s == z8s else D(locked_s)
        b.__class__ = Balance
        balances.append(b)
    event_time, last_update_time = _POSITION_TIMES(ev)
    o = _ACCOUNT_POSITION_BUILDER()
    o.account = account
    o.event_time = event_time
    o.last_update_time = last_update_time
    o.balances = tuple(balances)
    o.raw = ev
    o.__class__ = AccountPosition
    position: AccountPosition = o
    return position


def _balance_update(ev: dict[str, Any], account: str) -> BalanceUpdate:
    event_time, asset, delta_s, clear_time = _BALANCE_UPDATE_FIELDS(ev)
    o = _BALANCE_UPDATE_BUILDER()
    o.account = account
    o.event_time = event_time
    o.asset = asset
    o.delta = Decimal(delta_s)
    o.clear_time = clear_time
    o.raw = ev
    o.__class__ = BalanceUpdate
    update: BalanceUpdate = o
    return update


def _list_status(ev: dict[str, Any], account: str) -> ListStatus:
    builder = _LIST_ORDER_BUILDER
    orders = []
    for entry in ev["O"]:
        order = builder()
        order.symbol = entry["s"]
        order.order_id = entry["i"]
        order.client_order_id = entry["c"]
        order.__class__ = ListOrder
        orders.append(order)
    o = _LIST_STATUS_BUILDER()
    o.account = account
    o.event_time = ev["E"]
    o.symbol = ev["s"]
    o.order_list_id = ev["g"]
    o.contingency_type = _CONTINGENCY[ev["c"]]
    o.list_status_type = _LIST_STATUS_TYPE[ev["l"]]
    o.list_order_status = _LIST_ORDER_STATUS[ev["L"]]
    o.list_reject_reason = ev["r"]
    o.list_client_order_id = ev["C"]
    o.transaction_time = ev["T"]
    o.orders = tuple(orders)
    o.raw = ev
    o.__class__ = ListStatus
    status: ListStatus = o
    return status


def _liability_change(ev: dict[str, Any], account: str) -> LiabilityChange:
    o = _LIABILITY_CHANGE_BUILDER()
    o.account = account
    o.event_time = ev["E"]
    o.asset = ev["a"]
    o.liability_type = ev["t"]
    o.principal = Decimal(ev["p"])
    o.interest = Decimal(ev["i"])
    o.raw = ev
    o.__class__ = LiabilityChange
    change: LiabilityChange = o
    return change


def _margin_level_status_change(ev: dict[str, Any], account: str) -> MarginLevelStatusChange:
    o = _MARGIN_LEVEL_STATUS_CHANGE_BUILDER()
    o.account = account
    o.event_time = ev["E"]
    o.margin_level = Decimal(ev["l"])
    o.status = _MARGIN_LEVEL_STATUS[ev["s"]]
    o.raw = ev
    o.recovered = False
    o.__class__ = MarginLevelStatusChange
    change: MarginLevelStatusChange = o
    return change


# Control events are rare: plain constructors, and lenient about E (string E is documented for
# listenKeyExpired; the others get the same tolerance since a bad E must not hide a shutdown).


def _event_stream_terminated(ev: dict[str, Any], account: str) -> EventStreamTerminated:
    return EventStreamTerminated(account, normalize_ms(ev["E"]), ev)


def _listen_key_expired(ev: dict[str, Any], account: str) -> ListenKeyExpired:
    return ListenKeyExpired(account, normalize_ms(ev["E"]), ev.get("listenKey"), ev)


def _server_shutdown(ev: dict[str, Any], account: str) -> ServerShutdown:
    return ServerShutdown(account, normalize_ms(ev["E"]), ev)


_DECODERS: Final[dict[str, Callable[[dict[str, Any], str], Event]]] = {
    "executionReport": _execution_report,
    "outboundAccountPosition": _account_position,
    "balanceUpdate": _balance_update,
    "listStatus": _list_status,
    "USER_LIABILITY_CHANGE": _liability_change,
    "MARGIN_LEVEL_STATUS_CHANGE": _margin_level_status_change,
    "eventStreamTerminated": _event_stream_terminated,
    "listenKeyExpired": _listen_key_expired,
    "serverShutdown": _server_shutdown,
}

# Exceptions a decoder raises on a payload of the wrong shape: missing key (KeyError), wrong
# container or None (TypeError, AttributeError), bad number (ValueError; decimal.InvalidOperation
# is an ArithmeticError).
_SHAPE_ERRORS: Final = (KeyError, TypeError, AttributeError, ValueError, ArithmeticError)


def decode_event(event: dict[str, Any], account: str) -> Event:
    """Decode one user-data event dict (as orjson gives it) received for ``account``.

    ``event`` is the inner event (``{"e": ..., "E": ..., ...}``). The WS API envelope
    ``{"subscriptionId": N, "event": {...}}`` and the combined-stream envelope
    ``{"stream": ..., "data": {...}}`` are unwrapped as well, at no cost to bare events; routing
    by ``subscriptionId`` is the caller's job.

    Never raises for a payload problem, because one bad frame must not kill a stream that has to
    live for days:

    * unknown ``"e"`` → :class:`UnknownEvent` with ``error=None``;
    * a known type with a missing/ill-typed field → :class:`UnknownEvent` whose ``error`` names the
      problem (``raw`` keeps the payload, so nothing is lost);
    * no ``"e"`` at all, or not a dict → :class:`UnknownEvent` with ``event_type=None``.

    Unknown fields are ignored (kept in ``raw``); unknown enum values are kept as plain ``str``.
    """
    try:
        decoder = _DECODERS[event[_KEY_TYPE]]
    except _SHAPE_ERRORS:
        return _decode_irregular(event, account)
    try:
        return decoder(event, account)
    except _SHAPE_ERRORS as exc:
        return UnknownEvent(
            account, event["e"], event, f"malformed {event['e']}: {type(exc).__name__}: {exc}"
        )


def _decode_irregular(event: Any, account: str) -> Event:
    """Slow path of :func:`decode_event`: unknown type, envelope, or not an event at all."""
    if not isinstance(event, dict):
        return UnknownEvent(
            account, None, {"payload": event}, f"not an event object: {type(event).__name__}"
        )
    event_type = event.get("e")
    if isinstance(event_type, str):
        return UnknownEvent(account, event_type, event)
    if event_type is None:
        for key in ("event", "data"):
            inner = event.get(key)
            if isinstance(inner, dict) and "e" in inner:
                return decode_event(inner, account)
    return UnknownEvent(account, None, event, "missing or non-string event type")
