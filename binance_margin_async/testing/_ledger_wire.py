"""Wire rendering: the event outbox (executionReport, listStatus, positions, risk events) and
the REST bodies.

A layer of :class:`~.ledger.Ledger` (see that module for the venue's rules)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from ._ledger_risk import _RiskLedger
from ._ledger_state import (
    _CANCELED,
    _CROSS,
    _EXPIRED,
    _SPOT,
    _WIRE_CONTINGENCY,
    _ZERO,
    _ZERO8,
    Channel,
    LedgerError,
    LedgerEvent,
    _Account,
    _Balance,
    _balance_json,
    _fmt,
    _fmt_opt,
    _level_of,
    _Order,
    _OrderList,
    _reserve_asset,
    _result_json,
    _Trade,
    _Wallet,
)


class _WireLedger(_RiskLedger):
    """Events to the outbox and the JSON shapes of REST answers, account snapshots included."""

    def cross_account(self, account_id: str) -> dict[str, Any]:
        """``GET /sapi/v1/margin/account``: the cross margin account, every asset listed.

        https://developers.binance.com/docs/margin_trading/account/Query-Cross-Margin-Account-Details
        """
        acct = self._account(account_id)
        wallet = acct.cross
        assets_btc, liabilities_btc = self._values(wallet)
        level = _level_of(assets_btc, liabilities_btc)
        body: dict[str, Any] = {
            "created": True,
            "borrowEnabled": True,
            "marginLevel": _fmt(level),
            "collateralMarginLevel": _fmt(level),
            "totalAssetOfBtc": _fmt(assets_btc),
            "totalLiabilityOfBtc": _fmt(liabilities_btc),
            "totalNetAssetOfBtc": _fmt(assets_btc - liabilities_btc),
        }
        if self._usdt is not None:
            body["TotalCollateralValueInUSDT"] = _fmt(assets_btc / self._rate(self._usdt))
            body["totalOpenOrderLossInUsdt"] = _ZERO8
        body.update(
            tradeEnabled=True,
            transferEnabled=True,
            transferInEnabled=True,
            transferOutEnabled=True,
            accountType="MARGIN_1",
            marginLevelStatus=self._cross_risk.status(level),
            userAssets=[self._user_asset(wallet, asset) for asset in self._assets],
        )
        return body

    def isolated_account(
        self, account_id: str, symbols: str | Sequence[str] | None = None
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/isolated/account``: the isolated accounts (all, or the listed
        ``symbols``, comma-separated or a sequence, max 5; totals only without ``symbols``).

        https://developers.binance.com/docs/margin_trading/account/Query-Isolated-Margin-Account-Info
        """
        acct = self._account(account_id)
        wanted: list[str] | None = None
        if symbols is not None:
            wanted = symbols.split(",") if isinstance(symbols, str) else list(symbols)
            if not 0 < len(wanted) <= 5:
                raise LedgerError(-1130, "Data sent for parameter 'symbols' is not valid.")
        wallets = [w for s, w in acct.isolated.items() if wanted is None or s in wanted]
        body: dict[str, Any] = {"assets": [self._isolated_json(w) for w in wallets]}
        if wanted is None:
            total_assets = total_liabilities = _ZERO
            for wallet in wallets:
                assets_btc, liabilities_btc = self._values(wallet)
                total_assets += assets_btc
                total_liabilities += liabilities_btc
            body["totalAssetOfBtc"] = _fmt(total_assets)
            body["totalLiabilityOfBtc"] = _fmt(total_liabilities)
            body["totalNetAssetOfBtc"] = _fmt(total_assets - total_liabilities)
        return body

    def drain_events(self) -> list[LedgerEvent]:
        """Take every event emitted since the last call, in emission order."""
        events, self._outbox = self._outbox, []
        return events

    def _emit(self, acct: _Account, scope: str, channel: Channel, payload: dict[str, Any]) -> None:
        self._outbox.append(LedgerEvent(acct.account_id, scope, channel, payload))

    def _touch(self, acct: _Account, wallet: _Wallet, asset: str) -> None:
        """Note a free/locked change for the operation's closing ``outboundAccountPosition``."""
        self._dirty[acct.account_id] = None
        if wallet.kind != _SPOT:
            self._touched.setdefault((acct.account_id, wallet.scope), {})[asset] = None

    def _balance_update(
        self, acct: _Account, wallet: _Wallet, asset: str, delta: Decimal, now: int
    ) -> None:
        self._touch(acct, wallet, asset)
        if wallet.kind != _SPOT:
            payload = {"e": "balanceUpdate", "E": now, "a": asset, "d": _fmt(delta), "T": now}
            self._emit(acct, wallet.scope, "trade", payload)

    def _liability_event(
        self,
        acct: _Account,
        wallet: _Wallet,
        asset: str,
        kind: str,
        principal: Decimal,
        interest: Decimal,
        now: int,
    ) -> None:
        if wallet.kind == _CROSS:  # the risk stream is cross only
            payload = {
                "e": "USER_LIABILITY_CHANGE",
                "E": now,
                "a": asset,
                "t": kind,
                "p": _fmt(principal),
                "i": _fmt(interest),
            }
            self._emit(acct, _CROSS, "risk", payload)

    def _report(
        self,
        order: _Order,
        now: int,
        execution: str,
        *,
        trade: _Trade | None = None,
        reason: str | None = None,
    ) -> None:
        """An ``executionReport`` with the full field set of PROTOCOL.md §4.3."""
        canceled = execution == _CANCELED
        payload: dict[str, Any] = {
            "e": "executionReport",
            "E": now,
            "s": order.symbol,
            "c": order.cancel_client_id if canceled else order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.tif,
            "q": _fmt(order.orig_qty),
            "p": _fmt_opt(order.price),
            "P": _fmt_opt(order.stop_price),
            "F": _fmt_opt(order.iceberg),
            "g": order.list_id,
            "C": order.client_order_id if canceled else "",
            "x": execution,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": _fmt(trade.qty) if trade is not None else _ZERO8,
            "z": _fmt(order.executed),
            "L": _fmt(trade.price) if trade is not None else _ZERO8,
            "n": _fmt(trade.commission) if trade is not None else "0",
            "N": trade.commission_asset if trade is not None else None,
            "T": now,
            "t": trade.trade_id if trade is not None else -1,
            "I": self._next_exec_id,
            "w": order.on_book,
            "m": trade.is_maker if trade is not None else False,
            "M": False,
            "O": order.time,
            "Z": _fmt(order.cum_quote),
            "Y": _fmt(trade.qty * trade.price) if trade is not None else _ZERO8,
            "Q": _fmt_opt(order.quote_qty),
        }
        self._next_exec_id += 1
        if order.working_time is not None:
            payload["W"] = order.working_time
        payload["V"] = order.stp
        if execution == _EXPIRED and reason is not None:
            payload["eR"] = reason
        self._emit(self._accounts[order.account_id], order.scope, "trade", payload)

    def _list_status(self, lst: _OrderList, now: int) -> None:
        payload = {
            "e": "listStatus",
            "E": now,
            "s": lst.symbol,
            "g": lst.list_id,
            "c": _WIRE_CONTINGENCY[lst.contingency],
            "l": lst.status_type,
            "L": lst.order_status,
            "r": "NONE",
            "C": lst.client_id,
            "T": now,
            "O": [{"s": o.symbol, "i": o.order_id, "c": o.client_order_id} for o in lst.orders],
        }
        acct = self._accounts[lst.orders[0].account_id]
        self._emit(acct, lst.scope, "trade", payload)

    def _flush(self, now: int) -> None:
        """Close an operation: one ``outboundAccountPosition`` per touched margin wallet, then a
        ``MARGIN_LEVEL_STATUS_CHANGE`` for each account whose cross status moved."""
        for (account_id, scope), assets in self._touched.items():
            acct = self._accounts[account_id]
            wallet = self._wallet(acct, scope)
            balances = [
                {"a": a, "f": _fmt(wallet.bal(a).free), "l": _fmt(wallet.bal(a).locked)}
                for a in assets
            ]
            payload = {"e": "outboundAccountPosition", "E": now, "u": now, "B": balances}
            self._emit(acct, scope, "trade", payload)
        self._touched.clear()
        targets = self._accounts if self._all_dirty else self._dirty
        for account_id in targets:
            acct = self._accounts[account_id]
            level = self._level(acct.cross)
            status = self._cross_risk.status(level)
            if status != acct.cross_status:
                acct.cross_status = status
                payload = {
                    "e": "MARGIN_LEVEL_STATUS_CHANGE",
                    "E": now,
                    "l": _fmt(level),
                    "s": status,
                }
                self._emit(acct, _CROSS, "risk", payload)
        self._dirty.clear()
        self._all_dirty = False
        self._op_trades.clear()

    def _order_response(
        self, order: _Order, resp_type: str, now: int, fills: list[_Trade], *, spot: bool = False
    ) -> dict[str, Any]:
        if spot:
            return _spot_order_response(order, resp_type, now, fills)
        body: dict[str, Any] = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "clientOrderId": order.client_order_id,
            "isIsolated": order.scope != _CROSS,
            "transactTime": now,
        }
        if resp_type == "ACK":
            return body
        del body["isIsolated"]
        body.update(_result_json(order))
        if order.borrowed > 0:
            body["marginBuyBorrowAmount"] = _fmt(order.borrowed)
            body["marginBuyBorrowAsset"] = _reserve_asset(self._symbols[order.symbol], order.side)
        body["isIsolated"] = order.scope != _CROSS
        body["selfTradePreventionMode"] = order.stp
        if resp_type == "FULL":
            body["fills"] = _fills_json(fills)
        return body

    def _order_json(self, order: _Order, *, spot: bool = False) -> dict[str, Any]:
        """The query shape (``GET /sapi/v1/margin/order``, openOrders, allOrders)."""
        if spot:
            return _spot_order_json(order)
        return {
            "clientOrderId": order.client_order_id,
            "cummulativeQuoteQty": _fmt(order.cum_quote),
            "executedQty": _fmt(order.executed),
            "icebergQty": _fmt_opt(order.iceberg),
            "isWorking": order.on_book,
            "orderId": order.order_id,
            "orderListId": order.list_id,
            "origQty": _fmt(order.orig_qty),
            "price": _fmt_opt(order.price),
            "side": order.side,
            "status": order.status,
            "stopPrice": _fmt_opt(order.stop_price),
            "symbol": order.symbol,
            "isIsolated": order.scope != _CROSS,
            "time": order.time,
            "timeInForce": order.tif,
            "type": order.type,
            "selfTradePreventionMode": order.stp,
            "updateTime": order.update_time,
        }

    def _cancel_json(self, order: _Order, now: int, *, spot: bool = False) -> dict[str, Any]:
        if spot:
            return _spot_cancel_json(order, now)
        return {
            "symbol": order.symbol,
            "isIsolated": order.scope != _CROSS,
            "orderId": order.order_id,
            "origClientOrderId": order.client_order_id,
            "clientOrderId": order.cancel_client_id or order.client_order_id,
            "orderListId": order.list_id,
            **_result_json(order),
            "selfTradePreventionMode": order.stp,
        }

    def _list_json(
        self,
        lst: _OrderList,
        now: int,
        *,
        reports: Literal["new", "cancel"] | None,
        borrowed: Decimal = _ZERO,
        asset: str | None = None,
        spot: bool = False,
        resp_type: str = "RESULT",
    ) -> dict[str, Any]:
        """A list answer; ``spot``: the Spot API's shape, whose new-order reports follow
        ``resp_type`` (ACK/RESULT/FULL, with this operation's fills)."""
        body: dict[str, Any] = {
            "orderListId": lst.list_id,
            "contingencyType": _WIRE_CONTINGENCY[lst.contingency],
            "listStatusType": lst.status_type,
            "listOrderStatus": lst.order_status,
            "listClientOrderId": lst.client_id,
            "transactionTime": now,
            "symbol": lst.symbol,
        }
        if spot:
            body["orders"] = _list_orders_json(lst)
            if reports == "new":
                body["orderReports"] = [
                    _spot_order_response(
                        o, resp_type, now, [t for t in self._op_trades if t.order_id == o.order_id]
                    )
                    for o in lst.orders
                ]
            elif reports == "cancel":
                body["orderReports"] = [_spot_cancel_json(o, now) for o in lst.orders]
            return body
        if borrowed > 0:
            body["marginBuyBorrowAmount"] = _fmt(borrowed)
            body["marginBuyBorrowAsset"] = asset
        body["isIsolated"] = lst.scope != _CROSS
        body["orders"] = [
            {"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
            for o in lst.orders
        ]
        if reports is not None:
            body["orderReports"] = [self._list_report(o, now, reports) for o in lst.orders]
        return body

    def _list_report(self, order: _Order, now: int, kind: str) -> dict[str, Any]:
        report: dict[str, Any] = {"symbol": order.symbol}
        if kind == "cancel":
            report["origClientOrderId"] = order.client_order_id
        report.update(
            orderId=order.order_id,
            orderListId=order.list_id,
            clientOrderId=order.cancel_client_id
            if kind == "cancel" and order.cancel_client_id is not None
            else order.client_order_id,
            transactTime=now,
            **_result_json(order),
        )
        if order.stop_price is not None:
            report["stopPrice"] = _fmt(order.stop_price)
        report["selfTradePreventionMode"] = order.stp
        return report

    def _user_asset(self, wallet: _Wallet, asset: str) -> dict[str, Any]:
        return {"asset": asset, **_balance_json(wallet.balances.get(asset) or _Balance())}

    def _isolated_json(self, wallet: _Wallet) -> dict[str, Any]:
        sym = self._symbols[wallet.scope]
        risk = self._isolated_risk
        level = self._level(wallet)

        def block(asset: str) -> dict[str, Any]:
            bal = wallet.balances.get(asset) or _Balance()
            return {
                "asset": asset,
                "borrowEnabled": True,
                **_balance_json(bal),
                "netAssetOfBtc": _fmt(bal.net * self._rate(asset)),
                "repayEnabled": True,
                "totalAsset": _fmt(bal.free + bal.locked),
            }

        return {
            "baseAsset": block(sym.base),
            "quoteAsset": block(sym.quote),
            "symbol": sym.name,
            "isolatedCreated": True,
            "enabled": True,
            "marginLevel": _fmt(level),
            "marginLevelStatus": risk.status(level),
            "marginRatio": _fmt(risk.max_leverage),
            "indexPrice": _fmt(sym.price),
            "liquidatePrice": _fmt(self._liquidation_price(wallet, sym)),
            "liquidateRate": _fmt(risk.force_liquidation),
            "tradeEnabled": True,
        }


# ---------------------------------------------------------------------------------------------
# The Spot API's shapes (``/api/v3/*`` and the WebSocket API), used for margin special keys.
# https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints


def _fills_json(fills: Sequence[_Trade]) -> list[dict[str, Any]]:
    return [
        {
            "price": _fmt(t.price),
            "qty": _fmt(t.qty),
            "commission": _fmt(t.commission),
            "commissionAsset": t.commission_asset,
            "tradeId": t.trade_id,
        }
        for t in fills
    ]


def _list_orders_json(lst: _OrderList) -> list[dict[str, Any]]:
    return [
        {"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
        for o in lst.orders
    ]


def _spot_result(order: _Order) -> dict[str, Any]:
    """The order fields of a Spot ``RESULT``/cancel answer, with the conditional ``stopPrice``
    (stop types) and ``icebergQty`` (when sent)."""
    body: dict[str, Any] = {
        "price": _fmt_opt(order.price),
        "origQty": _fmt(order.orig_qty),
        "executedQty": _fmt(order.executed),
        "origQuoteOrderQty": _fmt_opt(order.quote_qty),
        "cummulativeQuoteQty": _fmt(order.cum_quote),
        "status": order.status,
        "timeInForce": order.tif,
        "type": order.type,
        "side": order.side,
    }
    if order.stop_price is not None:
        body["stopPrice"] = _fmt(order.stop_price)
    if order.iceberg is not None:
        body["icebergQty"] = _fmt(order.iceberg)
    return body


def _spot_order_response(
    order: _Order, resp_type: str, now: int, fills: Sequence[_Trade]
) -> dict[str, Any]:
    """``POST /api/v3/order`` (and ``order.place``): ACK, RESULT or FULL."""
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.list_id,
        "clientOrderId": order.client_order_id,
        "transactTime": now,
    }
    if resp_type == "ACK":
        return body
    body.update(_spot_result(order))
    # -1 until the order works (a stop not yet triggered, a pending list order).
    body["workingTime"] = order.working_time if order.working_time is not None else -1
    body["selfTradePreventionMode"] = order.stp
    if resp_type == "FULL":
        body["fills"] = _fills_json(fills)
    return body


def _spot_cancel_json(order: _Order, now: int) -> dict[str, Any]:
    """``DELETE /api/v3/order`` (and ``order.cancel``)."""
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": order.list_id,
        "clientOrderId": order.cancel_client_id or order.client_order_id,
        "transactTime": now,
        **_spot_result(order),
        "selfTradePreventionMode": order.stp,
    }


def _spot_order_json(order: _Order) -> dict[str, Any]:
    """``GET /api/v3/order`` and ``/api/v3/openOrders`` (and ``order.status``...)."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.list_id,
        "clientOrderId": order.client_order_id,
        **_result_json(order),
        "stopPrice": _fmt_opt(order.stop_price),
        "icebergQty": _fmt_opt(order.iceberg),
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.on_book,
        "workingTime": order.working_time if order.working_time is not None else -1,
        "origQuoteOrderQty": _fmt_opt(order.quote_qty),
        "selfTradePreventionMode": order.stp,
    }
