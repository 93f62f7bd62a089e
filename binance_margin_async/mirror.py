"""Local mirror of margin account state, kept from REST snapshots and stream events.

:class:`AccountMirror` is pure: no I/O, no clock. Feed it REST snapshots
(:meth:`~AccountMirror.load_cross_snapshot`, :meth:`~AccountMirror.load_isolated_snapshot`,
:meth:`~AccountMirror.load_open_orders`) and every event (:meth:`~AccountMirror.apply`); query it
per account (``"CROSS"`` or the isolated symbol).

What it tracks, and from where:

* free/locked per asset: REST snapshot, then :class:`~binance_margin_async.events.AccountPosition`
  (absolute amounts). :class:`~binance_margin_async.events.BalanceUpdate` deltas are *not* added:
  Binance follows every balance change with an ``outboundAccountPosition`` carrying the result;
* borrowed/interest per asset: REST snapshot, then
  :class:`~binance_margin_async.events.LiabilityChange` (risk stream, cross only);
* margin level and status: REST snapshot (the cross account has no status there), then
  :class:`~binance_margin_async.events.MarginLevelStatusChange`;
* open orders: :class:`~binance_margin_async.events.ExecutionReport`, and REST open orders.

Re-applying events (the overlap of a make-before-break reconnect, or a replay after a resync) never
double counts, because nothing is accumulated:

* balances and liabilities are absolute values stamped with their server time (``u`` of the
  position, ``E`` of the liability event, ``as_of`` of a snapshot); an update older than the stored
  stamp is ignored, an equal one rewrites the same values;
* orders are keyed by ``order_id`` and ordered by (transaction time, cumulative filled quantity,
  final status, execution id); a report older than the stored one is ignored, the same report
  stores the same state again, and a finished order's id is remembered (the last
  ``closed_order_memory`` per account) so a late replay of its ``NEW`` cannot resurrect it.

One assumption Binance's docs do not settle: the liability event's ``p``/``i`` are read as the
asset's outstanding principal and interest after the change, not as the change itself
(UNCONFIRMED; a REST reload corrects any drift).

REST shapes: https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Account-Details,
https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Account-Info,
https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeAlias

from .events import (
    _MARGIN_LEVEL_STATUS,
    _ORDER_STATUS,
    _ORDER_TYPE,
    _SIDE,
    _TIF,
    AccountPosition,
    Event,
    ExecutionReport,
    LiabilityChange,
    MarginLevelStatus,
    MarginLevelStatusChange,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)

__all__ = ["AccountMirror", "AssetBalance", "MarginLevel", "OpenOrder", "Snapshot"]


class _HasRaw(Protocol):
    """Any REST model of :mod:`binance_margin_async.models`: they all keep the decoded JSON."""

    @property
    def raw(self) -> dict[str, Any]: ...


Snapshot: TypeAlias = Mapping[str, Any] | _HasRaw
"""A REST response: the decoded JSON dict, or a model object carrying it as ``.raw``."""


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """One asset of one account. ``borrowed``/``interest`` are ``None`` until known."""

    asset: str
    free: Decimal
    locked: Decimal
    borrowed: Decimal | None
    interest: Decimal | None


@dataclass(frozen=True, slots=True)
class MarginLevel:
    """Margin level of one account; ``status`` is ``None`` until an event or snapshot gives it."""

    level: Decimal | None
    status: MarginLevelStatus | str | None
    updated: int  # server time (ms) of the snapshot or event it came from


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order of the account that is still working."""

    symbol: str
    order_id: int
    client_order_id: str
    side: OrderSide | str
    order_type: OrderType | str
    time_in_force: TimeInForce | str
    price: Decimal
    quantity: Decimal
    stop_price: Decimal
    executed_quantity: Decimal
    cumulative_quote_quantity: Decimal
    status: OrderStatus | str
    order_list_id: int  # -1 when not part of a list
    created: int  # ms
    updated: int  # ms


_FINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH,
    }
)

# (time ms, cumulative filled, status is final, execution id): a later state compares greater.
_OrderKey: TypeAlias = tuple[int, Decimal, bool, int]
_Stamped: TypeAlias = tuple[int, Decimal, Decimal]  # (server time ms, amount, amount)


class _Account:
    """Mutable state of one account. Values are plain tuples: cheap to store on every event."""

    __slots__ = ("balances", "closed", "liabilities", "margin", "orders")

    def __init__(self) -> None:
        self.balances: dict[str, _Stamped] = {}  # asset -> (time, free, locked)
        self.liabilities: dict[str, _Stamped] = {}  # asset -> (time, borrowed, interest)
        self.margin: MarginLevel | None = None
        # order id -> (key, source); the source (event or REST dict) becomes an OpenOrder on query.
        self.orders: dict[int, tuple[_OrderKey, ExecutionReport | Mapping[str, Any]]] = {}
        self.closed: dict[int, None] = {}  # ids of finished orders, oldest first


def _raw(snapshot: Snapshot) -> Mapping[str, Any]:
    return snapshot if isinstance(snapshot, Mapping) else snapshot.raw


def _replace_stamped(
    old: dict[str, _Stamped], snapshot: dict[str, _Stamped], as_of: int
) -> dict[str, _Stamped]:
    """The snapshot, except entries the stream updated after it was taken."""
    for asset, entry in old.items():
        if entry[0] > as_of:
            snapshot[asset] = entry
    return snapshot


class AccountMirror:
    """Local state of margin accounts, built from REST snapshots and stream events.

    Args:
        closed_order_memory: how many finished order ids to remember per account, so that a
            replayed report of an old order is not mistaken for a new one.

    Snapshots take ``as_of``: the server time (ms) at which the REST request was *sent*
    (e.g. ``ServerClock.timestamp_ms(now)``). Everything the stream stamped later than that is
    kept over the snapshot; everything stamped earlier is already in the snapshot.
    """

    __slots__ = ("_accounts", "_closed_order_memory")

    def __init__(self, *, closed_order_memory: int = 10_000) -> None:
        self._accounts: dict[str, _Account] = {}
        self._closed_order_memory = closed_order_memory

    # ---------------------------------------------------------------- snapshots

    def load_cross_snapshot(self, snapshot: Snapshot, *, as_of: int) -> None:
        """Load ``GET /sapi/v1/margin/account`` (cross): balances, liabilities, margin level.

        https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Account-Details
        """
        raw = _raw(snapshot)
        self._load_account("CROSS", raw, raw["userAssets"], as_of)

    def load_isolated_snapshot(self, snapshot: Snapshot, *, as_of: int) -> None:
        """Load ``GET /sapi/v1/margin/isolated/account``: each pair listed is one account.

        Pairs not listed (e.g. a ``symbols=`` subset was requested) are left as they are.

        https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Account-Info
        """
        for pair in _raw(snapshot)["assets"]:
            self._load_account(pair["symbol"], pair, (pair["baseAsset"], pair["quoteAsset"]), as_of)

    def load_open_orders(self, account: str, orders: Iterable[Snapshot], *, as_of: int) -> None:
        """Replace the open orders of ``account`` with ``GET /sapi/v1/margin/openOrders``.

        For an isolated account pass that pair's orders (``symbol=..., isIsolated=TRUE``); for
        ``"CROSS"`` all cross orders. Orders the stream opened after ``as_of`` are kept; known
        open orders missing from the list are taken as finished.

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
        """
        state = self._account(account)
        fresh: dict[int, tuple[_OrderKey, ExecutionReport | Mapping[str, Any]]] = {}
        for order in orders:
            raw = _raw(order)
            order_id = raw["orderId"]
            if order_id in state.closed:
                continue  # the stream already saw it finish: the snapshot is older
            updated = raw.get("updateTime", raw["time"])
            fresh[order_id] = ((updated, Decimal(raw["executedQty"]), False, -1), raw)
        for order_id, entry in state.orders.items():
            if entry[0][0] > as_of and (order_id not in fresh or entry[0] > fresh[order_id][0]):
                fresh[order_id] = entry
            elif order_id not in fresh:
                self._close(state, order_id)
        state.orders = fresh

    def _load_account(
        self, account: str, raw: Mapping[str, Any], assets: Iterable[Mapping[str, Any]], as_of: int
    ) -> None:
        state = self._account(account)
        balances: dict[str, _Stamped] = {}
        liabilities: dict[str, _Stamped] = {}
        for entry in assets:
            asset = entry["asset"]
            balances[asset] = (as_of, Decimal(entry["free"]), Decimal(entry["locked"]))
            liabilities[asset] = (as_of, Decimal(entry["borrowed"]), Decimal(entry["interest"]))
        state.balances = _replace_stamped(state.balances, balances, as_of)
        state.liabilities = _replace_stamped(state.liabilities, liabilities, as_of)
        if state.margin is None or state.margin.updated <= as_of:
            level = raw.get("marginLevel")
            status = raw.get("marginLevelStatus")  # isolated only; cross keeps the last known
            state.margin = MarginLevel(
                None if level is None else Decimal(level),
                _MARGIN_LEVEL_STATUS[status]
                if status is not None
                else (None if state.margin is None else state.margin.status),
                as_of,
            )

    # ---------------------------------------------------------------- events

    def apply(self, event: Event) -> None:
        """Update the state from one event; events that carry no state are ignored."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _apply_position(self, event: AccountPosition) -> None:
        balances = self._account(event.account).balances
        stamp = event.last_update_time
        for balance in event.balances:
            current = balances.get(balance.asset)
            if current is None or stamp >= current[0]:
                balances[balance.asset] = (stamp, balance.free, balance.locked)

    def _apply_liability(self, event: LiabilityChange) -> None:
        liabilities = self._account(event.account).liabilities
        current = liabilities.get(event.asset)
        if current is None or event.event_time >= current[0]:
            liabilities[event.asset] = (event.event_time, event.principal, event.interest)

    def _apply_margin_level(self, event: MarginLevelStatusChange) -> None:
        state = self._account(event.account)
        if state.margin is None or event.event_time >= state.margin.updated:
            state.margin = MarginLevel(event.margin_level, event.status, event.event_time)

    def _apply_execution(self, event: ExecutionReport) -> None:
        state = self._account(event.account)
        order_id = event.order_id
        if order_id in state.closed:
            return  # a replay of an order that already finished
        final = event.order_status in _FINAL_STATUSES
        key = (
            event.transaction_time,
            event.cumulative_filled_quantity,
            final,
            -1 if event.execution_id is None else event.execution_id,
        )
        current = state.orders.get(order_id)
        if current is not None and key < current[0]:
            return  # older than what we have: arrived late or replayed
        if final:
            state.orders.pop(order_id, None)
            self._close(state, order_id)
        else:
            state.orders[order_id] = (key, event)

    def _close(self, state: _Account, order_id: int) -> None:
        closed = state.closed
        closed[order_id] = None
        if len(closed) > self._closed_order_memory:
            del closed[next(iter(closed))]

    def _account(self, account: str) -> _Account:
        state = self._accounts.get(account)
        if state is None:
            state = self._accounts[account] = _Account()
        return state

    # ---------------------------------------------------------------- queries

    def accounts(self) -> tuple[str, ...]:
        """Every account the mirror has state for."""
        return tuple(self._accounts)

    def balance(self, account: str, asset: str) -> AssetBalance | None:
        """``asset`` of ``account``, or ``None`` when nothing is known about it."""
        state = self._accounts.get(account)
        if state is None:
            return None
        held = state.balances.get(asset)
        owed = state.liabilities.get(asset)
        if held is None and owed is None:
            return None
        return _asset_balance(asset, held, owed)

    def balances(self, account: str) -> dict[str, AssetBalance]:
        """Every known asset of ``account``."""
        state = self._accounts.get(account)
        if state is None:
            return {}
        get_held = state.balances.get
        get_owed = state.liabilities.get
        return {
            asset: _asset_balance(asset, get_held(asset), get_owed(asset))
            for asset in dict.fromkeys([*state.balances, *state.liabilities])
        }

    def open_orders(self, account: str) -> tuple[OpenOrder, ...]:
        """Working orders of ``account``, in the order the mirror learnt of them."""
        state = self._accounts.get(account)
        if state is None:
            return ()
        return tuple(_open_order(source) for _, source in state.orders.values())

    def margin_level(self, account: str) -> MarginLevel | None:
        """Last known margin level and status of ``account``."""
        state = self._accounts.get(account)
        return None if state is None else state.margin


_HANDLERS: dict[type[Any], Callable[[AccountMirror, Any], None]] = {
    AccountPosition: AccountMirror._apply_position,
    LiabilityChange: AccountMirror._apply_liability,
    MarginLevelStatusChange: AccountMirror._apply_margin_level,
    ExecutionReport: AccountMirror._apply_execution,
}


def _asset_balance(asset: str, held: _Stamped | None, owed: _Stamped | None) -> AssetBalance:
    zero = Decimal(0)
    return AssetBalance(
        asset,
        zero if held is None else held[1],
        zero if held is None else held[2],
        None if owed is None else owed[1],
        None if owed is None else owed[2],
    )


def _open_order(source: ExecutionReport | Mapping[str, Any]) -> OpenOrder:
    if isinstance(source, ExecutionReport):
        return OpenOrder(
            symbol=source.symbol,
            order_id=source.order_id,
            client_order_id=source.client_order_id,
            side=source.side,
            order_type=source.order_type,
            time_in_force=source.time_in_force,
            price=source.price,
            quantity=source.quantity,
            stop_price=source.stop_price,
            executed_quantity=source.cumulative_filled_quantity,
            cumulative_quote_quantity=source.cumulative_quote_quantity,
            status=source.order_status,
            order_list_id=source.order_list_id,
            created=source.order_creation_time,
            updated=source.transaction_time,
        )
    return OpenOrder(
        symbol=source["symbol"],
        order_id=source["orderId"],
        client_order_id=source["clientOrderId"],
        side=_SIDE[source["side"]],
        order_type=_ORDER_TYPE[source["type"]],
        time_in_force=_TIF[source["timeInForce"]],
        price=Decimal(source["price"]),
        quantity=Decimal(source["origQty"]),
        stop_price=Decimal(source.get("stopPrice", "0")),
        executed_quantity=Decimal(source["executedQty"]),
        cumulative_quote_quantity=Decimal(source["cummulativeQuoteQty"]),  # Binance's spelling
        status=_ORDER_STATUS[source["status"]],
        order_list_id=source.get("orderListId", -1),
        created=source["time"],
        updated=source.get("updateTime", source["time"]),
    )
