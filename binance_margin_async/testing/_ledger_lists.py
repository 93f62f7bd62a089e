"""Order lists: OCO, OTO and OTOCO placement, cancels and queries.

A layer of :class:`~.ledger.Ledger` (see that module for the venue's rules)."""

from __future__ import annotations

from typing import Any

from ._ledger_orders import _OrderLedger
from ._ledger_state import (
    _GTC,
    _LIMIT,
    _LIMIT_MAKER,
    _PENDING_NEW,
    _PHASE_DONE,
    _PHASE_OCO,
    _PHASE_WORKING,
    _ROLE_LEG,
    _ROLE_PENDING,
    _ROLE_WORKING,
    _SELL,
    _SIDES,
    _STOP_LOSS,
    _STOP_LOSS_LIMIT,
    _TAKE_PROFIT,
    _TAKE_PROFIT_LIMIT,
    Amount,
    LedgerError,
    _Account,
    _enum,
    _in_range,
    _limit,
    _mandatory,
    _not_required,
    _one_of,
    _opt_int,
    _order_options,
    _OrderList,
    _Reservation,
    _reserve_asset,
    _Spec,
    _spec_need,
    _Symbol,
    _trigger_price,
    _Wallet,
)


class _ListLedger(_OrderLedger):
    """OCO/OTO/OTOCO placement on top of the order machinery, and list queries."""

    def new_oco(
        self,
        account_id: str,
        symbol: str,
        side: str,
        quantity: Amount,
        price: Amount,
        stop_price: Amount,
        now: int,
        *,
        is_isolated: bool | str = False,
        list_client_order_id: str | None = None,
        limit_client_order_id: str | None = None,
        limit_iceberg_qty: Amount | None = None,
        stop_client_order_id: str | None = None,
        stop_limit_price: Amount | None = None,
        stop_iceberg_qty: Amount | None = None,
        stop_limit_time_in_force: str | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/order/oco``: a LIMIT_MAKER leg at ``price`` and a STOP_LOSS
        (STOP_LOSS_LIMIT with ``stop_limit_price``) leg at ``stop_price``, one lock for both.

        SELL needs ``price > current > stop_price``, BUY the reverse (``-1013`` otherwise).
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OCO
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        side_v = _enum(side, _SIDES, -1117, "Invalid side.")
        if stop_limit_price is None and stop_limit_time_in_force is not None:
            raise _not_required("stopLimitTimeInForce")
        stop_type = _STOP_LOSS if stop_limit_price is None else _STOP_LOSS_LIMIT
        stop_spec = self._parse_spec(
            sym, side_v, stop_type, stop_limit_time_in_force, quantity, None, stop_limit_price,
            stop_price, stop_iceberg_qty, stop_client_order_id, "",
            names={"price": "stopLimitPrice", "timeInForce": "stopLimitTimeInForce",
                   "icebergQty": "stopIcebergQty", "newClientOrderId": "stopClientOrderId"},
        )  # fmt: skip
        limit_spec = self._parse_spec(
            sym, side_v, _LIMIT_MAKER, None, quantity, None, price, None, limit_iceberg_qty,
            limit_client_order_id, "",
            names={"icebergQty": "limitIcebergQty", "newClientOrderId": "limitClientOrderId"},
        )  # fmt: skip
        list_client_id = self._list_client_id(acct, wallet, sym, list_client_order_id)
        self._check_oco_prices(sym, side_v, limit_spec, stop_spec)
        return self._place_list(
            acct, wallet, sym, "OCO", list_client_id, [stop_spec, limit_spec], [], now,
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel,
        )  # fmt: skip

    def new_oto(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        list_client_order_id: str | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
        working_type: str | None = None,
        working_side: str | None = None,
        working_client_order_id: str | None = None,
        working_price: Amount | None = None,
        working_quantity: Amount | None = None,
        working_iceberg_qty: Amount | None = None,
        working_time_in_force: str | None = None,
        pending_type: str | None = None,
        pending_side: str | None = None,
        pending_client_order_id: str | None = None,
        pending_price: Amount | None = None,
        pending_stop_price: Amount | None = None,
        pending_quantity: Amount | None = None,
        pending_iceberg_qty: Amount | None = None,
        pending_time_in_force: str | None = None,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/order/oto``: a LIMIT/LIMIT_MAKER working order whose full fill
        places the pending order (any type but MARKET by quote quantity).

        Only the working order is funded at placement; the pending one when it is placed.
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OTO
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        working = self._working_spec(
            sym, working_type, working_side, working_time_in_force, working_quantity,
            working_price, working_iceberg_qty, working_client_order_id,
        )  # fmt: skip
        if pending_type is None:
            raise _mandatory("pendingType")
        if pending_side is None:
            raise _mandatory("pendingSide")
        pending = self._parse_spec(
            sym, pending_side, pending_type, pending_time_in_force, pending_quantity, None,
            pending_price, pending_stop_price, pending_iceberg_qty, pending_client_order_id,
            "pending",
        )  # fmt: skip
        list_client_id = self._list_client_id(acct, wallet, sym, list_client_order_id)
        return self._place_list(
            acct, wallet, sym, "OTO", list_client_id, [working], [pending], now,
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel,
        )  # fmt: skip

    def new_otoco(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        list_client_order_id: str | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
        working_type: str | None = None,
        working_side: str | None = None,
        working_client_order_id: str | None = None,
        working_price: Amount | None = None,
        working_quantity: Amount | None = None,
        working_iceberg_qty: Amount | None = None,
        working_time_in_force: str | None = None,
        pending_side: str | None = None,
        pending_quantity: Amount | None = None,
        pending_above_type: str | None = None,
        pending_above_client_order_id: str | None = None,
        pending_above_price: Amount | None = None,
        pending_above_stop_price: Amount | None = None,
        pending_above_iceberg_qty: Amount | None = None,
        pending_above_time_in_force: str | None = None,
        pending_below_type: str | None = None,
        pending_below_client_order_id: str | None = None,
        pending_below_price: Amount | None = None,
        pending_below_stop_price: Amount | None = None,
        pending_below_iceberg_qty: Amount | None = None,
        pending_below_time_in_force: str | None = None,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/order/otoco``: a working order whose full fill places an OCO of
        a pending-above and (optionally) a pending-below order.

        A SELL pair takes LIMIT_MAKER/TAKE_PROFIT[_LIMIT] above and STOP_LOSS[_LIMIT] below, a BUY
        pair the reverse (``-1116`` otherwise); the above trigger price must exceed the below one
        (``-1013``).
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-OTOCO
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        working = self._working_spec(
            sym, working_type, working_side, working_time_in_force, working_quantity,
            working_price, working_iceberg_qty, working_client_order_id,
        )  # fmt: skip
        if pending_side is None:
            raise _mandatory("pendingSide")
        if pending_above_type is None:
            raise _mandatory("pendingAboveType")
        side_v = _enum(pending_side, _SIDES, -1117, "Invalid side.")
        above = self._parse_spec(
            sym, side_v, pending_above_type, pending_above_time_in_force, pending_quantity, None,
            pending_above_price, pending_above_stop_price, pending_above_iceberg_qty,
            pending_above_client_order_id, "pendingAbove",
            names={"quantity": "pendingQuantity"},
        )  # fmt: skip
        pendings = [above]
        if pending_below_type is not None:
            below = self._parse_spec(
                sym, side_v, pending_below_type, pending_below_time_in_force, pending_quantity,
                None, pending_below_price, pending_below_stop_price, pending_below_iceberg_qty,
                pending_below_client_order_id, "pendingBelow",
                names={"quantity": "pendingQuantity"},
            )  # fmt: skip
            pendings.append(below)
        self._check_otoco_legs(side_v, pendings)
        list_client_id = self._list_client_id(acct, wallet, sym, list_client_order_id)
        return self._place_list(
            acct, wallet, sym, "OTOCO", list_client_id, [working], pendings, now,
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel,
        )  # fmt: skip

    def cancel_order_list(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        order_list_id: int | str | None = None,
        list_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """``DELETE /sapi/v1/margin/orderList``: cancel an unresolved list → the list response.

        ``-2011 Unknown order list sent.`` when no unresolved list matches.
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-OCO
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        lid = _opt_int(order_list_id, "orderListId")
        _one_of(("listClientOrderId", list_client_order_id), ("orderListId", lid))
        # Validated and accepted; the list keeps its own listClientOrderId in the answer.
        self._client_id(new_client_order_id, "newClientOrderId")
        lst = self._find_list(acct, wallet, sym.name, lid, list_client_order_id)
        if lst is None or lst.phase == _PHASE_DONE:
            raise LedgerError(-2011, "Unknown order list sent.")
        self._cancel_list(acct, lst, now)
        response = self._list_json(lst, now, reports="cancel")
        self._flush(now)
        return response

    def get_order_list(
        self,
        account_id: str,
        *,
        is_isolated: bool | str = False,
        symbol: str | None = None,
        order_list_id: int | str | None = None,
        orig_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/orderList``: one list (``-2013 Order list does not exist.``).

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-OCO
        """
        acct = self._account(account_id)
        wallet, name = self._list_scope(acct, is_isolated, symbol)
        lid = _opt_int(order_list_id, "orderListId")
        _one_of(("origClientOrderId", orig_client_order_id), ("orderListId", lid))
        lst = self._find_list(acct, wallet, name, lid, orig_client_order_id)
        if lst is None:
            raise LedgerError(-2013, "Order list does not exist.")
        return self._list_json(lst, lst.time, reports=None)

    def open_order_lists(
        self, account_id: str, *, is_isolated: bool | str = False, symbol: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/openOrderList``: unresolved lists, oldest first.

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-OCO
        """
        acct = self._account(account_id)
        wallet, name = self._list_scope(acct, is_isolated, symbol)
        return [
            self._list_json(lst, lst.time, reports=None)
            for lst in self._scope_lists(acct, wallet, name)
            if lst.phase != _PHASE_DONE
        ]

    def all_order_lists(
        self,
        account_id: str,
        *,
        is_isolated: bool | str = False,
        symbol: str | None = None,
        from_id: int | str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/allOrderList``: lists, oldest first (``from_id`` on, or the most
        recent ``limit``, max 1000).

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-all-OCO
        """
        acct = self._account(account_id)
        wallet, name = self._list_scope(acct, is_isolated, symbol)
        fid = _opt_int(from_id, "fromId")
        size = _limit(limit, 1000)
        lists = [
            lst
            for lst in self._scope_lists(acct, wallet, name)
            if (fid is None or lst.list_id >= fid) and _in_range(lst.time, start_time, end_time)
        ]
        chosen = lists[:size] if fid is not None else lists[-size:]
        return [self._list_json(lst, lst.time, reports=None) for lst in chosen]

    def _working_spec(
        self,
        sym: _Symbol,
        working_type: str | None,
        working_side: str | None,
        time_in_force: str | None,
        quantity: Amount | None,
        price: Amount | None,
        iceberg: Amount | None,
        client_id: str | None,
    ) -> _Spec:
        if working_type is None:
            raise _mandatory("workingType")
        if working_side is None:
            raise _mandatory("workingSide")
        if working_type not in (_LIMIT, _LIMIT_MAKER):
            raise LedgerError(-1116, "Invalid orderType.")
        spec = self._parse_spec(
            sym, working_side, working_type, time_in_force, quantity, None, price, None, iceberg,
            client_id, "working",
        )  # fmt: skip
        self._check_placement(sym, spec)
        return spec

    def _check_oco_prices(self, sym: _Symbol, side: str, limit: _Spec, stop: _Spec) -> None:
        assert limit.price is not None and stop.stop is not None
        if side == _SELL:
            ok = limit.price > sym.price > stop.stop
        else:
            ok = limit.price < sym.price < stop.stop
        if not ok:
            raise LedgerError(
                -1013, "The relationship of the prices for the orders is not correct."
            )
        for spec in (limit, stop):
            self._check_placement(sym, spec)

    def _check_otoco_legs(self, side: str, legs: list[_Spec]) -> None:
        upper = {_LIMIT_MAKER, _TAKE_PROFIT, _TAKE_PROFIT_LIMIT}
        lower = {_STOP_LOSS, _STOP_LOSS_LIMIT}
        above_ok, below_ok = (upper, lower) if side == _SELL else (lower, upper)
        if legs[0].type not in above_ok or (len(legs) > 1 and legs[1].type not in below_ok):
            raise LedgerError(-1116, "Invalid orderType.")
        for leg in legs:
            if leg.tif != _GTC:
                # Pending OCO legs rest until triggered: IOC/FOK would expire them at once.
                raise LedgerError(-1115, "Invalid timeInForce.")
        if len(legs) > 1 and _trigger_price(legs[0]) <= _trigger_price(legs[1]):
            raise LedgerError(
                -1013, "The relationship of the prices for the orders is not correct."
            )

    def _list_client_id(
        self, acct: _Account, wallet: _Wallet, sym: _Symbol, value: str | None
    ) -> str:
        """``listClientOrderId`` (generated when absent); ``-2010`` if an unresolved list of the
        symbol already has it."""
        client_id = self._client_id(value, "listClientOrderId")
        for lst in acct.lists.values():
            if (
                lst.phase != _PHASE_DONE
                and lst.scope == wallet.scope
                and lst.symbol == sym.name
                and lst.client_id == client_id
            ):
                raise LedgerError(-2010, "Duplicate order sent.")
        return client_id

    def _place_list(
        self,
        acct: _Account,
        wallet: _Wallet,
        sym: _Symbol,
        contingency: str,
        list_client_id: str,
        first: list[_Spec],
        pending: list[_Spec],
        now: int,
        new_order_resp_type: str | None,
        side_effect_type: str | None,
        self_trade_prevention_mode: str | None,
        auto_repay_at_cancel: bool | str,
    ) -> dict[str, Any]:
        """Validate funding and place an OCO (``first`` = both legs), OTO or OTOCO (``first`` =
        the working order, ``pending`` = what its fill places)."""
        # The response type is validated only: list answers always carry orderReports (see the
        # module docstring).
        _, effect, stp, auto_repay = _order_options(
            new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel, "ACK",
        )  # fmt: skip
        self._check_client_ids(acct, wallet, sym, [s.client_id for s in first + pending])
        asset = _reserve_asset(sym, first[0].side)
        need = max(_spec_need(s) for s in first)
        self._check_funding(wallet, asset, need, effect)
        # Validated: change state.
        lst = _OrderList(
            self._next_list_id, list_client_id, contingency, sym.name, wallet.scope, now
        )
        self._next_list_id += 1
        acct.lists[lst.list_id] = lst
        first_role = _ROLE_LEG if contingency == "OCO" else _ROLE_WORKING
        lst.phase = _PHASE_OCO if contingency == "OCO" else _PHASE_WORKING
        orders = [
            self._make_order(acct, wallet, sym, spec, now, effect, auto_repay, stp,
                             list_id=lst.list_id, role=first_role)
            for spec in first
        ] + [
            self._make_order(acct, wallet, sym, spec, now, effect, auto_repay, stp,
                             list_id=lst.list_id, role=_ROLE_PENDING)
            for spec in pending
        ]  # fmt: skip
        lst.orders = orders
        active = orders[: len(first)]
        res = _Reservation(wallet, asset, active)
        for order in active:
            order.res = res
            self._open(order, now)
        self._fund(acct, res, effect, now, active[0])
        for order in orders:
            if order.role == _ROLE_PENDING:
                order.status = _PENDING_NEW
                order.update_time = now
            self._report(order, now, "NEW")
        self._list_status(lst, now)
        self._match(sym, now)
        response = self._list_json(lst, now, reports="new", borrowed=res.borrowed, asset=asset)
        self._flush(now)
        return response
