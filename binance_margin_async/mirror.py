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
  :class:`~binance_margin_async.events.LiabilityChange` (risk stream, cross only), read as the
  amounts *of the change*: ``BORROW`` and ``INTEREST`` add ``p``/``i``, ``REPAY`` subtracts them.
  Binance documents neither that reading nor the type names beyond ``BORROW`` (UNCONFIRMED; the
  fake exchange's ledger emits exactly this); changes of other types are left to the next REST
  reload. Without a snapshot the base is unknown, so ``borrowed``/``interest`` stay ``None``;
* margin level and status: REST snapshot (the cross account has no status there), then
  :class:`~binance_margin_async.events.MarginLevelStatusChange`;
* open orders: :class:`~binance_margin_async.events.ExecutionReport`, and REST open orders.

Re-applying events (the overlap of a make-before-break reconnect, or a replay after a resync)
never double counts:

* balances and the margin level are absolute values stamped with their server time (``u`` of the
  position, ``E`` of the event); an update older than the stored stamp is ignored, an equal one
  writes the same values again;
* orders are keyed by ``order_id`` and ordered by (transaction time, cumulative filled quantity,
  final status, execution id); a report older than the stored one is ignored, the same report
  stores the same state again, and a finished order's id is remembered (the last
  ``replay_memory`` per account) so a late replay of its ``NEW`` cannot resurrect it;
* liability changes are deltas, so each one is remembered by (asset, ``E``, type, ``p``, ``i``)
  (the last ``replay_memory`` per account) and applied once; those stamped at or before a
  snapshot's ``as_of`` are taken as already in it. Binance gives these events no sequence number:
  one that lands during the snapshot request's round trip may be counted twice or missed until
  the next reload.

REST shapes: https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Account-Details,
https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Account-Info,
https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol, TypeAlias

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
    """One asset of one account. ``borrowed``/``interest`` are ``None`` until a snapshot."""

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
    # Server time (ms) of the event or snapshot it came from; None: a snapshot without as_of.
    updated: int | None


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


_FINAL_STATUSES: Final = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH,
    }
)
_LIABILITY_SIGN: Final = {"BORROW": 1, "INTEREST": 1, "REPAY": -1}
_BEFORE_EVERYTHING: Final = -1  # stamp of a snapshot loaded without as_of
_ZERO: Final = Decimal(0)

# (time ms, cumulative filled, status is final, execution id): a later state compares greater.
_OrderKey: TypeAlias = tuple[int, Decimal, bool, int]
_OrderSource: TypeAlias = ExecutionReport | Mapping[str, Any]
_Stamped: TypeAlias = tuple[int, Decimal, Decimal]  # (server time ms, amount, amount)
_LiabilityId: TypeAlias = tuple[str, int, str, Decimal, Decimal]
_OWES_NOTHING: Final[_Stamped] = (_BEFORE_EVERYTHING, _ZERO, _ZERO)  # an asset no snapshot listed


class _Account:
    """Mutable state of one account. Values are plain tuples: cheap to store on every event."""

    __slots__ = (
        "balances",
        "closed",
        "liabilities",
        "liabilities_seen",
        "margin",
        "margin_stamp",
        "orders",
    )

    def __init__(self) -> None:
        self.balances: dict[str, _Stamped] = {}  # asset -> (u, free, locked)
        # asset -> (snapshot stamp, borrowed, interest); None until a snapshot gives the base.
        self.liabilities: dict[str, _Stamped] | None = None
        self.liabilities_seen: dict[_LiabilityId, None] = {}  # oldest first
        self.margin: MarginLevel | None = None
        self.margin_stamp = _BEFORE_EVERYTHING
        # order id -> (key, source); the source becomes an OpenOrder only when queried.
        self.orders: dict[int, tuple[_OrderKey, _OrderSource]] = {}
        self.closed: dict[int, None] = {}  # ids of finished orders, oldest first


def _raw(snapshot: Snapshot) -> Mapping[str, Any]:
    return snapshot if isinstance(snapshot, Mapping) else snapshot.raw


def _remember(memory: dict[Any, None], key: Any, limit: int) -> None:
    memory[key] = None
    if len(memory) > limit:
        del memory[next(iter(memory))]


class AccountMirror:
    """Local state of margin accounts, built from REST snapshots and stream events.

    Args:
        replay_memory: how many finished order ids, and how many applied liability changes, to
            remember per account, so that a replayed event is recognised as one.

    Snapshots take an optional ``as_of``: the server time (ms) the snapshot reflects, e.g.
    ``ServerClock.timestamp_ms(now)`` when the request was sent. With it, what the stream stamped
    later is kept over the snapshot and what it stamped earlier is taken as included. Without it
    the snapshot supersedes everything the mirror holds for the account and every event applied
    afterwards lands on top: right when events received meanwhile are queued behind the reload,
    as :class:`~binance_margin_async.stream.UserDataStream` does.
    """

    __slots__ = ("_accounts", "_memory")

    def __init__(self, *, replay_memory: int = 10_000) -> None:
        self._accounts: dict[str, _Account] = {}
        self._memory = replay_memory

    # ---------------------------------------------------------------- snapshots

    def load_cross_snapshot(
        self, snapshot: Snapshot, *, as_of: int | None = None, received: int | None = None
    ) -> None:
        """Load ``GET /sapi/v1/margin/account`` (cross): balances, liabilities, margin level.

        ``received`` (server ms the answer arrived, after any retry) stamps the liabilities:
        they change by deltas, so every change stamped up to it is taken as included and none
        is applied twice. Default: ``as_of``.

        https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Account-Details
        """
        raw = _raw(snapshot)
        self._load_account("CROSS", raw, raw["userAssets"], as_of, received)

    def load_isolated_snapshot(
        self, snapshot: Snapshot, *, as_of: int | None = None, received: int | None = None
    ) -> None:
        """Load ``GET /sapi/v1/margin/isolated/account``: each pair listed is one account.

        Pairs not listed (e.g. a ``symbols=`` subset was requested) are left as they are.
        ``received`` as in :meth:`load_cross_snapshot`.

        https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Account-Info
        """
        for pair in _raw(snapshot)["assets"]:
            assets = (pair["baseAsset"], pair["quoteAsset"])
            self._load_account(pair["symbol"], pair, assets, as_of, received)

    def load_open_orders(
        self, account: str, orders: Iterable[Snapshot], *, as_of: int | None = None
    ) -> None:
        """Replace the open orders of ``account`` with ``GET /sapi/v1/margin/openOrders``.

        For an isolated account pass that pair's orders (``symbol=..., isIsolated=TRUE``); for
        ``"CROSS"`` all cross orders. Known open orders missing from the list are taken as
        finished, except (with ``as_of``) those the stream updated after ``as_of``.

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
        """
        state = self._account(account)
        fresh: dict[int, tuple[_OrderKey, _OrderSource]] = {}
        for order in orders:
            raw = _raw(order)
            order_id = raw["orderId"]
            if order_id in state.closed:
                continue  # the stream already saw it finish: the snapshot is older
            updated = raw.get("updateTime", raw["time"])
            fresh[order_id] = ((updated, Decimal(raw["executedQty"]), False, -1), raw)
        for order_id, entry in state.orders.items():
            newer = as_of is not None and entry[0][0] > as_of
            if newer and (order_id not in fresh or entry[0] > fresh[order_id][0]):
                fresh[order_id] = entry
            elif order_id not in fresh:
                _remember(state.closed, order_id, self._memory)
        state.orders = fresh

    def _load_account(
        self,
        account: str,
        raw: Mapping[str, Any],
        assets: Iterable[Mapping[str, Any]],
        as_of: int | None,
        received: int | None = None,
    ) -> None:
        state = self._account(account)
        stamp = _BEFORE_EVERYTHING if as_of is None else as_of
        owed_as_of = as_of if received is None else received
        owed_stamp = stamp if owed_as_of is None else owed_as_of
        balances: dict[str, _Stamped] = {}
        liabilities: dict[str, _Stamped] = {}
        for entry in assets:
            asset = entry["asset"]
            balances[asset] = (stamp, Decimal(entry["free"]), Decimal(entry["locked"]))
            liabilities[asset] = (
                owed_stamp,
                Decimal(entry["borrowed"]),
                Decimal(entry["interest"]),
            )
        if as_of is not None:
            # Entries the stream stamped after the snapshot's time are newer than it: keep them.
            for asset, held in state.balances.items():
                if held[0] > as_of:
                    balances[asset] = held
            for asset, owed in (state.liabilities or {}).items():
                if owed_as_of is not None and owed[0] > owed_as_of:
                    liabilities[asset] = owed
        state.balances = balances
        state.liabilities = liabilities
        if as_of is None or state.margin_stamp <= as_of:
            level = raw.get("marginLevel")
            status = raw.get("marginLevelStatus")  # isolated only; cross keeps the last known
            if status is not None:
                status = _MARGIN_LEVEL_STATUS[status]
            elif state.margin is not None:
                status = state.margin.status
            state.margin = MarginLevel(None if level is None else Decimal(level), status, as_of)
            state.margin_stamp = stamp

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
        state = self._account(event.account)
        sign = _LIABILITY_SIGN.get(event.liability_type)
        if sign is None or state.liabilities is None:
            return  # unknown kind of change, or no base to apply it to: the next reload tells
        asset = event.asset
        change: _LiabilityId = (
            asset,
            event.event_time,
            event.liability_type,
            event.principal,
            event.interest,
        )
        if change in state.liabilities_seen:
            return
        _remember(state.liabilities_seen, change, self._memory)
        stamp, borrowed, interest = state.liabilities.get(asset, _OWES_NOTHING)
        if event.event_time <= stamp:
            return  # already in the snapshot
        state.liabilities[asset] = (
            stamp,
            borrowed + sign * event.principal,
            interest + sign * event.interest,
        )

    def _apply_margin_level(self, event: MarginLevelStatusChange) -> None:
        state = self._account(event.account)
        if event.event_time >= state.margin_stamp:
            state.margin = MarginLevel(event.margin_level, event.status, event.event_time)
            state.margin_stamp = event.event_time

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
            _remember(state.closed, order_id, self._memory)
        else:
            state.orders[order_id] = (key, event)

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
        owed = None if state.liabilities is None else state.liabilities.get(asset)
        if held is None and owed is None:
            return None
        return _asset_balance(asset, held, owed, state.liabilities is not None)

    def balances(self, account: str) -> dict[str, AssetBalance]:
        """Every known asset of ``account``."""
        state = self._accounts.get(account)
        if state is None:
            return {}
        liabilities = state.liabilities
        known = liabilities is not None
        owed = liabilities or {}
        return {
            asset: _asset_balance(asset, state.balances.get(asset), owed.get(asset), known)
            for asset in dict.fromkeys([*state.balances, *owed])
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


_HANDLERS: Final[dict[type[Any], Callable[[AccountMirror, Any], None]]] = {
    AccountPosition: AccountMirror._apply_position,
    LiabilityChange: AccountMirror._apply_liability,
    MarginLevelStatusChange: AccountMirror._apply_margin_level,
    ExecutionReport: AccountMirror._apply_execution,
}


def _asset_balance(
    asset: str, held: _Stamped | None, owed: _Stamped | None, liabilities_known: bool
) -> AssetBalance:
    """Join free/locked and borrowed/interest; an asset a snapshot did not list owes nothing."""
    if owed is None:
        borrowed = interest = _ZERO if liabilities_known else None
    else:
        borrowed, interest = owed[1], owed[2]
    if held is None:
        return AssetBalance(asset, _ZERO, _ZERO, borrowed, interest)
    return AssetBalance(asset, held[1], held[2], borrowed, interest)


def _open_order(source: _OrderSource) -> OpenOrder:
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
