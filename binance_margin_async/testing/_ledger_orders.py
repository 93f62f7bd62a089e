"""Orders and matching: placement, cancels, queries, funds reservation and the venue's matching
loop, with the list contingencies that fire while matching.

A layer of :class:`~.ledger.Ledger` (see that module for the venue's rules)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_UP, Decimal
from typing import Any, Final

from ._ledger_state import (
    _BUY,
    _CANCELED,
    _CROSS,
    _EXPIRED,
    _FILLED,
    _FOK,
    _GTC,
    _ICEBERG_TYPES,
    _IOC,
    _LIMIT,
    _LIMIT_MAKER,
    _MARKET,
    _NEW,
    _PARTIALLY_FILLED,
    _PENDING_NEW,
    _PHASE_DONE,
    _PHASE_OCO,
    _PHASE_WORKING,
    _Q8,
    _REPAYING,
    _ROLE_LEG,
    _ROLE_NONE,
    _ROLE_PENDING,
    _ROLE_WORKING,
    _SIDES,
    _STOP_MARKET_TYPES,
    _STOP_TYPES,
    _TIFS,
    _TYPE_RULES,
    _ZERO,
    Amount,
    LedgerError,
    SymbolSpec,
    _Account,
    _add,
    _crosses,
    _enum,
    _flag,
    _fmt,
    _illegal,
    _in_range,
    _limit,
    _maker_priority,
    _mandatory,
    _non_negative,
    _not_required,
    _one_of,
    _opt_amount,
    _opt_int,
    _Order,
    _order_options,
    _OrderList,
    _positive,
    _res_need,
    _Reservation,
    _reserve_asset,
    _Spec,
    _spec_need,
    _stop_hit,
    _stop_of,
    _Symbol,
    _take,
    _Trade,
    _Wallet,
)
from ._ledger_wallets import _WalletLedger


class _OrderLedger(_WalletLedger):
    """Single orders, the market, and the matching loop every order (and list) goes through."""

    def symbols(self) -> list[SymbolSpec]:
        """The configured symbols with their current prices."""
        return [
            SymbolSpec(
                s.name,
                s.base,
                s.quote,
                s.price,
                s.tick_size,
                s.step_size,
                s.min_notional,
                s.max_price,
                s.max_qty,
            )
            for s in self._symbols.values()
        ]

    def price(self, symbol: str) -> Decimal:
        """The current price of ``symbol`` (``-1121`` if unknown)."""
        return self._order_symbol(symbol).price

    def set_price(
        self, symbol: str, price: Amount, now: int, *, liquidity: Amount | None = None
    ) -> None:
        """Move the market: fill crossed resting orders, trigger stops, re-check margin levels.

        ``liquidity`` is the base quantity the venue trades at this price until the next
        ``set_price`` (``None``: unlimited). Emits every resulting ``executionReport``/
        ``listStatus``/``outboundAccountPosition`` and ``MARGIN_LEVEL_STATUS_CHANGE``.
        """
        sym = self._order_symbol(symbol)
        sym.price = _positive(price, "price")
        sym.liquidity = None if liquidity is None else _non_negative(liquidity, "liquidity")
        self._rates.clear()
        self._all_dirty = True
        self._match(sym, now)
        self._flush(now)

    def new_order(
        self,
        account_id: str,
        symbol: str,
        side: str,
        type: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        quantity: Amount | None = None,
        quote_order_qty: Amount | None = None,
        price: Amount | None = None,
        stop_price: Amount | None = None,
        new_client_order_id: str | None = None,
        iceberg_qty: Amount | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        time_in_force: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
        spot: bool | str = False,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/order``: place an order; the ACK/RESULT/FULL response.

        Rejections: ``-2010`` (insufficient balance, duplicate client id, LIMIT_MAKER that would
        match, stop that would trigger), ``-3006``/``-3045`` (MARGIN_BUY borrow), ``-1013``
        filters, ``-1102``/``-1106``/``-1128`` parameter combinations, ``-1121`` symbol,
        ``-3003`` isolated account missing.
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-New-Order
        """
        spot = _flag(spot, "spot")
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        spec = self._parse_spec(
            sym, side, type, time_in_force, quantity, quote_order_qty, price, stop_price,
            iceberg_qty, new_client_order_id, "",
        )  # fmt: skip
        options = _single_order_options(
            spec, new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel,
        )  # fmt: skip
        response = self._place_order(acct, sym, wallet, spec, options, now, spot)
        self._flush(now)
        return response

    def cancel_replace_order(
        self,
        account_id: str,
        symbol: str,
        side: str,
        type: str,
        cancel_replace_mode: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        cancel_order_id: int | str | None = None,
        cancel_orig_client_order_id: str | None = None,
        cancel_new_client_order_id: str | None = None,
        quantity: Amount | None = None,
        quote_order_qty: Amount | None = None,
        price: Amount | None = None,
        stop_price: Amount | None = None,
        new_client_order_id: str | None = None,
        iceberg_qty: Amount | None = None,
        new_order_resp_type: str | None = None,
        side_effect_type: str | None = None,
        time_in_force: str | None = None,
        self_trade_prevention_mode: str | None = None,
        auto_repay_at_cancel: bool | str = True,
        spot: bool | str = False,
    ) -> dict[str, Any]:
        """``POST /api/v3/order/cancelReplace`` (``order.cancelReplace``): cancel an open order,
        then place a new one on the same symbol.

        Parameter and filter errors (``-1102``, ``-1013``...) reject the whole request before
        anything happens. Otherwise the cancel runs first (``-2011`` when no open order matches)
        and the placement sees the funds it released. Both succeed: ``{"cancelResult": "SUCCESS",
        "newOrderResult": "SUCCESS", "cancelResponse", "newOrderResponse"}``. A failed part gives
        :class:`LedgerError` with Binance's ``data`` body: ``-2022`` (400) when the cancel failed
        with ``STOP_ON_FAILURE`` (new order ``NOT_ATTEMPTED``) or both failed, ``-2021`` (409)
        when one part failed; unlike every other call, the part that succeeded stays done.
        https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints
        """
        spot = _flag(spot, "spot")
        if cancel_replace_mode not in _CANCEL_REPLACE_MODES:
            raise _illegal("cancelReplaceMode", ", ".join(sorted(_CANCEL_REPLACE_MODES)))
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(cancel_order_id, "cancelOrderId")
        _one_of(("cancelOrigClientOrderId", cancel_orig_client_order_id), ("cancelOrderId", oid))
        cancel_id = self._client_id(cancel_new_client_order_id, "cancelNewClientOrderId")
        spec = self._parse_spec(
            sym, side, type, time_in_force, quantity, quote_order_qty, price, stop_price,
            iceberg_qty, new_client_order_id, "",
        )  # fmt: skip
        options = _single_order_options(
            spec, new_order_resp_type, side_effect_type, self_trade_prevention_mode,
            auto_repay_at_cancel,
        )  # fmt: skip
        # Filters are checked before the cancel (Binance: "Filters and Order Count are evaluated
        # before the processing of the cancellation and order placement").
        self._check_notional(sym, spec)
        order = self._find_order(
            acct, wallet, sym, oid, cancel_orig_client_order_id, live_only=True
        )
        cancel_body: dict[str, Any] | None = None
        if order is not None:
            self._cancel_one(acct, order, cancel_id, now)
            cancel_body = self._cancel_json(order, now, spot=spot)
        elif cancel_replace_mode == "STOP_ON_FAILURE":
            raise _cancel_replace_error(-2022, _UNKNOWN_ORDER.body(), None)
        new_body: dict[str, Any]
        try:
            new_body = self._place_order(acct, sym, wallet, spec, options, now, spot)
            placed = True
        except LedgerError as exc:
            new_body, placed = exc.body(), False
        self._flush(now)
        if cancel_body is not None and placed:
            return {
                "cancelResult": "SUCCESS",
                "newOrderResult": "SUCCESS",
                "cancelResponse": cancel_body,
                "newOrderResponse": new_body,
            }
        if cancel_body is None and not placed:
            raise _cancel_replace_error(-2022, _UNKNOWN_ORDER.body(), new_body)
        raise _cancel_replace_error(
            -2021, cancel_body if cancel_body is not None else _UNKNOWN_ORDER.body(), new_body,
            cancel_ok=cancel_body is not None, new_ok=placed,
        )  # fmt: skip

    def cancel_order(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        order_id: int | str | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
        spot: bool | str = False,
    ) -> dict[str, Any]:
        """``DELETE /sapi/v1/margin/order``: cancel one open order → its cancel response.

        ``-2011 Unknown order sent.`` when no open order matches. An order of an unresolved list
        cancels the whole list (every order gets a ``CANCELED`` report, then ``listStatus``).
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-Order
        """
        spot = _flag(spot, "spot")
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(order_id, "orderId")
        _one_of(("origClientOrderId", orig_client_order_id), ("orderId", oid))
        cancel_id = self._client_id(new_client_order_id, "newClientOrderId")
        order = self._find_order(acct, wallet, sym, oid, orig_client_order_id, live_only=True)
        if order is None:
            raise _UNKNOWN_ORDER
        self._cancel_one(acct, order, cancel_id, now)
        response = self._cancel_json(order, now, spot=spot)
        self._flush(now)
        return response

    def cancel_open_orders(
        self,
        account_id: str,
        symbol: str,
        now: int,
        *,
        is_isolated: bool | str = False,
        spot: bool | str = False,
    ) -> list[dict[str, Any]]:
        """``DELETE /sapi/v1/margin/openOrders``: cancel every open order (and list) of ``symbol``.

        Answers one cancel response per standalone order and one list response per list;
        ``-2011`` when nothing is open.
        https://developers.binance.com/docs/margin_trading/trade/Margin-Account-Cancel-All-Open-Orders
        """
        spot = _flag(spot, "spot")
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        open_orders = self._live_orders(acct, wallet, sym.name)
        if not open_orders:
            raise LedgerError(-2011, "Unknown order sent.")
        result: list[dict[str, Any]] = []
        done_lists: set[int] = set()
        for order in open_orders:
            if not order.is_live:
                continue
            lst = acct.lists.get(order.list_id)
            if lst is not None and lst.phase != _PHASE_DONE:
                if lst.list_id not in done_lists:
                    done_lists.add(lst.list_id)
                    self._cancel_list(acct, lst, now)
                    result.append(self._list_json(lst, now, reports="cancel", spot=spot))
                continue
            self._close(order, _CANCELED, now, cancel_id=self._gen_id())
            result.append(self._cancel_json(order, now, spot=spot))
        self._flush(now)
        return result

    def get_order(
        self,
        account_id: str,
        symbol: str,
        *,
        is_isolated: bool | str = False,
        order_id: int | str | None = None,
        orig_client_order_id: str | None = None,
        spot: bool | str = False,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/order``: one order (``-2013 Order does not exist.``).

        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Order
        """
        spot = _flag(spot, "spot")
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(order_id, "orderId")
        _one_of(("origClientOrderId", orig_client_order_id), ("orderId", oid))
        order = self._find_order(acct, wallet, sym, oid, orig_client_order_id, live_only=False)
        if order is None:
            raise LedgerError(-2013, "Order does not exist.")
        return self._order_json(order, spot=spot)

    def open_orders(
        self,
        account_id: str,
        symbol: str | None = None,
        *,
        is_isolated: bool | str = False,
        spot: bool | str = False,
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/openOrders``: open orders (all cross symbols without ``symbol``).

        ``is_isolated`` needs ``symbol`` (``-1102``). Pending OTO orders are included.
        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
        """
        spot = _flag(spot, "spot")
        acct = self._account(account_id)
        isolated = _flag(is_isolated, "isIsolated")
        if symbol is None:
            if isolated:
                raise _mandatory("symbol")
            live = [o for o in acct.live.values() if o.scope == _CROSS]
        else:
            sym = self._order_symbol(symbol)
            live = self._live_orders(acct, self._trading_wallet(acct, sym, isolated), sym.name)
        return [self._order_json(o, spot=spot) for o in live]

    def all_orders(
        self,
        account_id: str,
        symbol: str,
        *,
        is_isolated: bool | str = False,
        order_id: int | str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/allOrders``: orders of ``symbol``, oldest first.

        From ``order_id`` on when given, else the most recent ``limit`` (max 500).
        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-All-Orders
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(order_id, "orderId")
        size = _limit(limit, 500)
        orders = [
            o
            for o in self._scope_orders(acct, wallet, sym.name)
            if (oid is None or o.order_id >= oid) and _in_range(o.time, start_time, end_time)
        ]
        chosen = orders[:size] if oid is not None else orders[-size:]
        return [self._order_json(o) for o in chosen]

    def my_trades(
        self,
        account_id: str,
        symbol: str,
        *,
        is_isolated: bool | str = False,
        order_id: int | str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """``GET /sapi/v1/margin/myTrades``: fills of ``symbol``, oldest first.

        From trade ``from_id`` on when given, else the most recent ``limit`` (max 1000).
        https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Trade-List
        """
        acct, sym, wallet = self._order_scope(account_id, symbol, is_isolated)
        oid = _opt_int(order_id, "orderId")
        fid = _opt_int(from_id, "fromId")
        size = _limit(limit, 1000)
        trades = [
            t
            for t in acct.trades
            if t.scope == wallet.scope
            and t.symbol == sym.name
            and (oid is None or t.order_id == oid)
            and (fid is None or t.trade_id >= fid)
            and _in_range(t.time, start_time, end_time)
        ]
        chosen = trades[:size] if fid is not None else trades[-size:]
        return [
            {
                "commission": _fmt(t.commission),
                "commissionAsset": t.commission_asset,
                "id": t.trade_id,
                "isBestMatch": True,
                "isBuyer": t.is_buyer,
                "isMaker": t.is_maker,
                "orderId": t.order_id,
                "price": _fmt(t.price),
                "qty": _fmt(t.qty),
                "symbol": t.symbol,
                "isIsolated": t.scope != _CROSS,
                "time": t.time,
            }
            for t in chosen
        ]

    def _parse_spec(
        self,
        sym: _Symbol,
        side: str,
        type_: str,
        time_in_force: str | None,
        quantity: Amount | None,
        quote_order_qty: Amount | None,
        price: Amount | None,
        stop_price: Amount | None,
        iceberg_qty: Amount | None,
        client_id: str | None,
        prefix: str,
        *,
        names: Mapping[str, str] | None = None,
    ) -> _Spec:
        """Parse one order's parameters with Binance's mandatory/not-required rules per type.

        ``prefix`` names the parameters in errors (``"pending"`` → ``pendingPrice``); ``names``
        overrides single names (the OCO's ``stopLimitPrice``...).
        """

        def name(base: str) -> str:
            if names is not None and base in names:
                return names[base]
            if not prefix:
                return base
            if base == "newClientOrderId":
                return prefix + "ClientOrderId"
            return prefix + base[0].upper() + base[1:]

        side_v = _enum(side, _SIDES, -1117, "Invalid side.")
        type_v = _enum(type_, _TYPE_RULES.keys(), -1116, "Invalid orderType.")
        tif = None
        if time_in_force is not None:
            tif = _enum(time_in_force, _TIFS, -1115, "Invalid timeInForce.")
        qty = _opt_amount(quantity, name("quantity"))
        quote_qty = _opt_amount(quote_order_qty, "quoteOrderQty")
        px = _opt_amount(price, name("price"))
        stop = _opt_amount(stop_price, name("stopPrice"))
        iceberg = _opt_amount(iceberg_qty, name("icebergQty"))
        needs_tif, needs_price, needs_stop = _TYPE_RULES[type_v]
        if type_v == _MARKET:
            _one_of(("quantity", qty), ("quoteOrderQty", quote_qty))
            if qty is not None and quote_qty is not None:
                raise LedgerError(-1128, "Combination of optional parameters invalid.")
        else:
            if quote_qty is not None:
                raise _not_required("quoteOrderQty")
            if qty is None:
                raise _mandatory(name("quantity"))
        for needed, value, param in (
            (needs_tif, tif, "timeInForce"),
            (needs_price, px, "price"),
            (needs_stop, stop, "stopPrice"),
        ):
            if needed and value is None:
                raise _mandatory(name(param))
            if not needed and value is not None:
                raise _not_required(name(param))
        if iceberg is not None and type_v not in _ICEBERG_TYPES:
            raise _not_required(name("icebergQty"))
        if qty is not None and (qty <= 0 or qty > sym.max_qty or qty % sym.step_size):
            raise LedgerError(-1013, "Filter failure: LOT_SIZE")
        for value in (px, stop):
            if value is not None and (value <= 0 or value > sym.max_price or value % sym.tick_size):
                raise LedgerError(-1013, "Filter failure: PRICE_FILTER")
        return _Spec(
            side=side_v,
            type=type_v,
            tif=tif if tif is not None else _GTC,
            qty=qty if qty is not None else _ZERO,
            price=px,
            stop=stop,
            quote_qty=quote_qty,
            iceberg=iceberg,
            client_id=self._client_id(client_id, name("newClientOrderId")),
        )

    def _place_order(
        self,
        acct: _Account,
        sym: _Symbol,
        wallet: _Wallet,
        spec: _Spec,
        options: tuple[str, str, str, bool],
        now: int,
        spot: bool,
    ) -> dict[str, Any]:
        """Check and place one parsed order (``options``: resp type, side effect, STP mode,
        autoRepayAtCancel); its answer. The caller flushes."""
        resp_type, effect, stp, auto_repay = options
        self._check_client_ids(acct, wallet, sym, [spec.client_id])
        self._check_placement(sym, spec)
        if spec.type == _MARKET:
            asset, need = self._market_cost(sym, spec)
        else:
            asset, need = _reserve_asset(sym, spec.side), _spec_need(spec)
        self._check_funding(wallet, asset, need, effect)
        # Validated: change state.
        order = self._make_order(acct, wallet, sym, spec, now, effect, auto_repay, stp)
        self._open(order, now)
        if order.type != _MARKET:
            order.res = _Reservation(wallet, asset, [order])
            self._fund(acct, order.res, effect, now, order)
        self._report(order, now, "NEW")
        self._match(sym, now)
        fills = [t for t in self._op_trades if t.order_id == order.order_id]
        return self._order_response(order, resp_type, now, fills, spot=spot)

    def _cancel_one(self, acct: _Account, order: _Order, cancel_id: str, now: int) -> None:
        """Cancel a live order; one of an unresolved list cancels the whole list."""
        lst = acct.lists.get(order.list_id)
        if lst is not None and lst.phase != _PHASE_DONE:
            self._cancel_list(acct, lst, now, chosen=(order.order_id, cancel_id))
        else:
            self._close(order, _CANCELED, now, cancel_id=cancel_id)

    def _check_notional(self, sym: _Symbol, spec: _Spec) -> None:
        """The NOTIONAL filter (MARKET orders at the current price)."""
        if spec.type == _MARKET:
            notional = spec.quote_qty if spec.quote_qty is not None else spec.qty * sym.price
        else:
            ref = spec.price if spec.price is not None else spec.stop
            assert ref is not None  # every non-MARKET type has a price or a stop price
            notional = spec.qty * ref
        if notional < sym.min_notional:
            raise LedgerError(-1013, "Filter failure: NOTIONAL")

    def _check_placement(self, sym: _Symbol, spec: _Spec) -> None:
        """Checks that depend on the current price: NOTIONAL, LIMIT_MAKER, stop triggers."""
        self._check_notional(sym, spec)
        if spec.type == _LIMIT_MAKER:
            assert spec.price is not None
            if _crosses(spec.side, spec.price, sym.price):
                raise LedgerError(-2010, "Order would immediately match and take.")
        if spec.type in _STOP_TYPES:
            assert spec.stop is not None
            if _stop_hit(spec.type, spec.side, spec.stop, sym.price):
                raise LedgerError(-2010, "Order would trigger immediately.")

    def _check_client_ids(
        self, acct: _Account, wallet: _Wallet, sym: _Symbol, client_ids: list[str]
    ) -> None:
        """``-2010 Duplicate order sent.`` for a client id already open (or repeated)."""
        if len(set(client_ids)) != len(client_ids):
            raise LedgerError(-2010, "Duplicate order sent.")
        wanted = set(client_ids)
        for order in acct.live.values():
            if (
                order.scope == wallet.scope
                and order.symbol == sym.name
                and order.client_order_id in wanted
            ):
                raise LedgerError(-2010, "Duplicate order sent.")

    def _market_cost(self, sym: _Symbol, spec: _Spec) -> tuple[str, Decimal]:
        """What a MARKET order would spend right now: (asset, amount); fixes ``spec.qty`` for
        a quote-quantity order (rounded down to the step size)."""
        if spec.quote_qty is not None:
            spec.qty = (spec.quote_qty / sym.price // sym.step_size) * sym.step_size
            if spec.qty <= 0:
                raise LedgerError(-1013, "Filter failure: LOT_SIZE")
        qty = spec.qty if sym.liquidity is None else min(spec.qty, sym.liquidity)
        if spec.side == _BUY:
            return sym.quote, qty * sym.price
        return sym.base, qty

    def _make_order(
        self,
        acct: _Account,
        wallet: _Wallet,
        sym: _Symbol,
        spec: _Spec,
        now: int,
        effect: str,
        auto_repay: bool,
        stp: str,
        *,
        list_id: int = -1,
        role: str = _ROLE_NONE,
    ) -> _Order:
        order = _Order(
            account_id=acct.account_id,
            scope=wallet.scope,
            symbol=sym.name,
            order_id=self._next_order_id,
            spec=spec,
            time=now,
            list_id=list_id,
            role=role,
            side_effect=effect,
            auto_repay_at_cancel=auto_repay,
            stp=stp,
        )
        self._next_order_id += 1
        acct.orders[order.order_id] = order
        acct.live[order.order_id] = order
        return order

    def _open(self, order: _Order, now: int) -> None:
        """Put a NEW order to work: into the book, flags for the matching loop. No funds, no
        events (callers fund, then report)."""
        order.status = _NEW
        order.update_time = now
        self._book[order.symbol][order.order_id] = order
        sym = self._symbols[order.symbol]
        if order.type == _MARKET:
            order.working_time = now
            order.taker_due = True
        elif order.type in _STOP_TYPES:
            order.on_book = False
        else:
            order.working_time = now
            order.on_book = order.tif == _GTC
            if order.type == _LIMIT:
                assert order.price is not None
                order.taker_due = order.tif != _GTC or _crosses(order.side, order.price, sym.price)

    def _fund(
        self, acct: _Account, res: _Reservation, effect: str, now: int, owner: _Order
    ) -> None:
        """Lock what ``res``'s orders need, borrowing the shortfall when ``effect`` allows
        (callers checked :meth:`_funding_error` first)."""
        need = _res_need(res)
        delta = need - res.amount
        if delta <= 0:
            return
        bal = res.wallet.bal(res.asset)
        if bal.free < delta:
            short = delta - bal.free
            self._borrow_now(acct, res.wallet, res.asset, short, now, auto=True)
            res.borrowed += short
            owner.borrowed += short
        bal.free -= delta
        bal.locked += delta
        res.amount = need
        self._touch(acct, res.wallet, res.asset)

    def _rebalance(self, res: _Reservation) -> Decimal:
        """Release what ``res`` holds beyond its live orders' need; returns the amount freed."""
        need = _res_need(res)
        surplus = res.amount - need
        if surplus:
            bal = res.wallet.bal(res.asset)
            bal.locked -= surplus
            bal.free += surplus
            res.amount = need
        return surplus

    def _activate(self, acct: _Account, lst: _OrderList, now: int) -> None:
        """The working order filled: place the pending order(s) (an OCO pair for OTOCO)."""
        pending = [o for o in lst.orders if o.role == _ROLE_PENDING and o.status == _PENDING_NEW]
        if not pending:
            return
        wallet = self._wallet(acct, lst.scope)
        sym = self._symbols[lst.symbol]
        asset = _reserve_asset(sym, pending[0].side)
        res = _Reservation(wallet, asset, pending)
        for order in pending:
            order.status = _NEW  # so that its need counts
        need = _res_need(res)
        if self._funding_error(wallet, asset, need, pending[0].side_effect) is not None:
            for order in pending:
                self._retire(acct, order, _EXPIRED, now)
                self._report(order, now, "EXPIRED", reason="REJECTED")
            self._end_list(lst, now)
            return
        for order in pending:
            order.res = res
            self._open(order, now)
        self._fund(acct, res, pending[0].side_effect, now, pending[0])
        for order in pending:
            self._report(order, now, "NEW")
        if lst.contingency == "OTOCO":
            lst.phase = _PHASE_OCO
            self._list_status(lst, now)
        else:
            self._end_list(lst, now)

    def _retire(self, acct: _Account, order: _Order, status: str, now: int) -> None:
        """The one place a live order takes a final status: off the book and the live index."""
        order.status = status
        order.on_book = False
        order.taker_due = False
        order.update_time = now
        self._book[order.symbol].pop(order.order_id, None)
        acct.live.pop(order.order_id, None)

    def _end_list(self, lst: _OrderList, now: int) -> None:
        lst.phase = _PHASE_DONE
        lst.status_type = "ALL_DONE"
        lst.order_status = "ALL_DONE"
        self._list_status(lst, now)

    def _cancel_list(
        self, acct: _Account, lst: _OrderList, now: int, *, chosen: tuple[int, str] | None = None
    ) -> None:
        """Cancel every live order of ``lst``; ``chosen`` = (order id, its cancel client id)."""
        for order in lst.orders:
            if order.is_live:
                if chosen is not None and chosen[0] == order.order_id:
                    cancel_id = chosen[1]
                else:
                    cancel_id = self._gen_id()
                self._close(order, _CANCELED, now, cancel_id=cancel_id, cascade=False)
        self._end_list(lst, now)

    def _close(
        self,
        order: _Order,
        status: str,
        now: int,
        *,
        reason: str | None = None,
        cancel_id: str | None = None,
        cascade: bool = True,
    ) -> None:
        """End a live order as CANCELED or EXPIRED: unbook, release its funds, report, repay
        what it borrowed (``autoRepayAtCancel``), and end its list when the list depended on
        it."""
        acct = self._accounts[order.account_id]
        was_pending = order.status == _PENDING_NEW
        self._retire(acct, order, status, now)
        released = _ZERO
        res = order.res
        if res is not None:
            released = self._rebalance(res)
            self._touch(acct, res.wallet, res.asset)
        if status == _CANCELED:
            order.cancel_client_id = cancel_id
            self._report(order, now, "CANCELED")
        else:
            self._report(order, now, "EXPIRED", reason=reason)
        if (
            res is not None
            and order.auto_repay_at_cancel
            and res.borrowed > 0
            and released > 0
            and not any(o.is_live for o in res.holders)
        ):
            cap = min(res.borrowed, released)
            res.borrowed -= cap
            self._auto_repay(acct, res.wallet, res.asset, cap, now)
        lst = acct.lists.get(order.list_id)
        if cascade and lst is not None and lst.phase != _PHASE_DONE and not was_pending:
            # The list's contingency can no longer happen: its other orders go too.
            why = "OTO_PHASE_ONE_EXPIRED" if order.role == _ROLE_WORKING else "OCO_TRIGGER"
            for other in lst.orders:
                if other.is_live:
                    if status == _CANCELED:
                        self._close(other, _CANCELED, now, cancel_id=self._gen_id(), cascade=False)
                    else:
                        self._close(other, _EXPIRED, now, reason=why, cascade=False)
            self._end_list(lst, now)

    def _resolve_oco(
        self, acct: _Account, order: _Order, now: int
    ) -> tuple[_OrderList | None, list[_Order]]:
        """``order``, an OCO leg, filled or triggered: its siblings expire (state only; the
        caller reports them with :meth:`_announce`) and the list is resolved."""
        lst = acct.lists.get(order.list_id)
        if lst is None or lst.phase != _PHASE_OCO or order.role not in (_ROLE_LEG, _ROLE_PENDING):
            return None, []
        siblings = [o for o in lst.orders if o is not order and o.is_live and o.role == order.role]
        for other in siblings:
            self._retire(acct, other, _EXPIRED, now)
        if order.res is not None:
            self._rebalance(order.res)
            self._touch(acct, order.res.wallet, order.res.asset)
        lst.phase = _PHASE_DONE
        lst.status_type = "ALL_DONE"
        lst.order_status = "ALL_DONE"
        return lst, siblings

    def _announce(self, lst: _OrderList, siblings: list[_Order], now: int) -> None:
        for other in siblings:
            self._report(other, now, "EXPIRED", reason="OCO_TRIGGER")
        self._list_status(lst, now)

    def _match(self, sym: _Symbol, now: int) -> None:
        """Run the symbol's book to a fixed point at the current price: pending taker
        executions, stop triggers, then maker fills of crossed resting orders (price, then time
        priority) within the available liquidity."""
        book = self._book[sym.name]
        while True:
            progressed = False
            for order in list(book.values()):
                if not order.is_live:
                    continue
                if order.taker_due:
                    order.taker_due = False
                    self._execute_taker(order, now)
                    progressed = True
                elif (
                    order.type in _STOP_TYPES
                    and not order.triggered
                    and _stop_hit(order.type, order.side, _stop_of(order), sym.price)
                ):
                    self._trigger(order, now)
                    progressed = True
            crossed = [
                o
                for o in book.values()
                if o.on_book
                and not o.taker_due
                and o.price is not None
                and _crosses(o.side, o.price, sym.price)
            ]
            crossed.sort(key=_maker_priority)
            for order in crossed:
                if not (order.is_live and order.on_book):
                    continue
                if sym.liquidity is not None and sym.liquidity <= 0:
                    break
                assert order.price is not None
                self._fill(order, _take(order.remaining, sym.liquidity), order.price, True, now)
                progressed = True
            if not progressed:
                return

    def _execute_taker(self, order: _Order, now: int) -> None:
        sym = self._symbols[order.symbol]
        market_like = order.type == _MARKET or order.type in _STOP_MARKET_TYPES
        if not market_like:
            assert order.price is not None
            if not _crosses(order.side, order.price, sym.price):
                if order.tif == _IOC:
                    self._close(order, _EXPIRED, now, reason="UNFILLED_IOC_QUANTITY_EXPIRED")
                elif order.tif == _FOK:
                    self._close(order, _EXPIRED, now, reason="UNFILLED_FOK_ORDER_EXPIRED")
                return
            if order.tif == _FOK and sym.liquidity is not None and sym.liquidity < order.remaining:
                self._close(order, _EXPIRED, now, reason="UNFILLED_FOK_ORDER_EXPIRED")
                return
        qty = _take(order.remaining, sym.liquidity)
        if qty > 0:
            if market_like and not self._affordable(order, qty, sym.price):
                self._close(order, _EXPIRED, now, reason="REJECTED")
                return
            self._fill(order, qty, sym.price, False, now)
        if order.is_live:
            if market_like:
                self._close(order, _EXPIRED, now, reason="INSUFFICIENT_LIQUIDITY")
            elif order.tif == _IOC:
                self._close(order, _EXPIRED, now, reason="UNFILLED_IOC_QUANTITY_EXPIRED")

    def _affordable(self, order: _Order, qty: Decimal, price: Decimal) -> bool:
        """Whether a market-like fill of ``qty`` can be paid (its whole reservation is released
        for it, the rest from free, borrowed if the side effect allows)."""
        sym = self._symbols[order.symbol]
        wallet = self._wallet(self._accounts[order.account_id], order.scope)
        asset = _reserve_asset(sym, order.side)
        cost = qty * price if order.side == _BUY else qty
        held = order.res.amount if order.res is not None else _ZERO
        need = max(_ZERO, cost - held)
        return self._funding_error(wallet, asset, need, order.side_effect) is None

    def _trigger(self, order: _Order, now: int) -> None:
        acct = self._accounts[order.account_id]
        order.triggered = True
        order.working_time = now
        order.update_time = now
        resolved, siblings = self._resolve_oco(acct, order, now)
        if resolved is not None:
            self._announce(resolved, siblings, now)
        if order.type in _STOP_MARKET_TYPES:
            order.taker_due = True
        else:
            assert order.price is not None
            sym = self._symbols[order.symbol]
            order.on_book = order.tif == _GTC
            order.taker_due = order.tif != _GTC or _crosses(order.side, order.price, sym.price)
        if order.res is not None:
            self._rebalance(order.res)  # a triggered stop-market keeps nothing locked

    def _fill(self, order: _Order, qty: Decimal, price: Decimal, maker: bool, now: int) -> None:
        """One execution of ``qty`` at ``price`` against the venue."""
        acct = self._accounts[order.account_id]
        wallet = self._wallet(acct, order.scope)
        sym = self._symbols[order.symbol]
        resolved, siblings = self._resolve_oco(acct, order, now)
        quote_qty = qty * price
        order.executed += qty
        order.cum_quote += quote_qty
        order.update_time = now
        if order.executed == order.orig_qty:
            self._retire(acct, order, _FILLED, now)
        else:
            order.status = _PARTIALLY_FILLED
        if sym.liquidity is not None:
            sym.liquidity -= qty
        if order.res is not None:
            self._rebalance(order.res)
        if order.side == _BUY:
            spend, cost, receive, gross = sym.quote, quote_qty, sym.base, qty
        else:
            spend, cost, receive, gross = sym.base, qty, sym.quote, quote_qty
        spend_bal = wallet.bal(spend)
        if spend_bal.free < cost:
            short = cost - spend_bal.free  # affordability was checked: MARGIN_BUY borrows it
            self._borrow_now(acct, wallet, spend, short, now, auto=True)
            order.borrowed += short
        spend_bal.free -= cost
        rate = self._maker_rate if maker else self._taker_rate
        commission = (gross * rate).quantize(_Q8, ROUND_UP)
        wallet.bal(receive).free += gross - commission
        _add(self._trade_net, receive, gross)
        _add(self._trade_net, spend, -cost)
        _add(self._fees, receive, commission)
        trade = _Trade(self._next_trade_id, order, price, qty, commission, receive, now, maker)
        self._next_trade_id += 1
        acct.trades.append(trade)
        self._op_trades.append(trade)
        self._touch(acct, wallet, spend)
        self._touch(acct, wallet, receive)
        self._report(order, now, "TRADE", trade=trade)
        if resolved is not None:
            self._announce(resolved, siblings, now)
        if order.side_effect in _REPAYING:
            self._auto_repay(acct, wallet, receive, gross - commission, now)
        if order.status == _FILLED:
            lst = acct.lists.get(order.list_id)
            if lst is not None and order.role == _ROLE_WORKING and lst.phase == _PHASE_WORKING:
                self._activate(acct, lst, now)


_CANCEL_REPLACE_MODES: Final = frozenset({"STOP_ON_FAILURE", "ALLOW_FAILURE"})
_UNKNOWN_ORDER: Final = LedgerError(-2011, "Unknown order sent.")


def _single_order_options(
    spec: _Spec,
    resp_type: str | None,
    side_effect_type: str | None,
    self_trade_prevention_mode: str | None,
    auto_repay_at_cancel: bool | str,
) -> tuple[str, str, str, bool]:
    """:func:`_order_options` of one order (new or cancel-replace): ``newOrderRespType``
    defaults to ``FULL`` for MARKET and LIMIT orders and to ``ACK`` for the other types."""
    default_resp = "FULL" if spec.type in (_MARKET, _LIMIT) else "ACK"
    return _order_options(
        resp_type, side_effect_type, self_trade_prevention_mode, auto_repay_at_cancel,
        default_resp,
    )  # fmt: skip


def _cancel_replace_error(
    code: int,
    cancel: dict[str, Any],
    new: dict[str, Any] | None,
    *,
    cancel_ok: bool = False,
    new_ok: bool = False,
) -> LedgerError:
    """Binance's cancel-replace failure: ``-2022`` (400, nothing done or the cancel failed
    first) or ``-2021`` (409, one part done), the parts' answers in ``data``."""
    if code == -2022:
        msg, status = "Order cancel-replace failed.", 400
        new_result = "NOT_ATTEMPTED" if new is None else "FAILURE"
    else:
        msg, status = "Order cancel-replace partially failed.", 409
        new_result = "SUCCESS" if new_ok else "FAILURE"
    data = {
        "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
        "newOrderResult": new_result,
        "cancelResponse": cancel,
        "newOrderResponse": new,
    }
    return LedgerError(code, msg, status, data=data)
