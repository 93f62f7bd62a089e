"""Margin levels, borrow/transfer limits, funding checks and the invariant audit.

A layer of :class:`~.ledger.Ledger` (see that module for the venue's rules)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from ._ledger_state import (
    _BORROWING,
    _CROSS,
    _FILLED,
    _INSUFFICIENT,
    _NEW,
    _PARTIALLY_FILLED,
    _Q8,
    _SPOT,
    _ZERO,
    LedgerError,
    RiskConfig,
    _Account,
    _add,
    _Balance,
    _fail,
    _free,
    _LedgerCore,
    _level_of,
    _Order,
    _res_need,
    _Symbol,
    _Wallet,
)


class _RiskLedger(_LedgerCore):
    """Valuation in BTC, the margin-level rules of :class:`RiskConfig`, :meth:`check_invariants`."""

    def margin_level(self, account_id: str, *, symbol: str | None = None) -> Decimal:
        """The margin level of the cross account (or the isolated one of ``symbol``); 999 when
        there is no debt."""
        return self._level(self._margin_wallet(self._account(account_id), symbol))

    def margin_level_status(self, account_id: str, *, symbol: str | None = None) -> str:
        """``EXCESSIVE`` / ``NORMAL`` / ``MARGIN_CALL`` / ``PRE_LIQUIDATION`` /
        ``FORCE_LIQUIDATION`` of the cross account (or the isolated one of ``symbol``)."""
        wallet = self._margin_wallet(self._account(account_id), symbol)
        return self._risk(wallet).status(self._level(wallet))

    def check_invariants(self) -> None:
        """Raise :class:`InvariantViolation` unless the books are consistent.

        Checked: no negative free/locked/borrowed/interest, spot wallets without debt or locks;
        every wallet's locked amount equals what its open orders reserve (and each reservation
        equals its orders' need); per asset, holdings minus liabilities equal deposits + venue
        trade flow - commissions - interest charged; borrowed totals equal the lent counter and
        the inventory used; open client order ids are unique; order quantities and statuses
        agree with the order book; the recorded cross status equals the computed one.
        """
        holdings: dict[str, Decimal] = {}
        borrowed: dict[str, Decimal] = {}
        interest: dict[str, Decimal] = {}
        for acct in self._accounts.values():
            reserved: dict[tuple[str, str], Decimal] = {}
            seen_res: set[int] = set()
            open_ids: set[tuple[str, str, str]] = set()
            for order in acct.orders.values():
                self._check_order(acct, order, open_ids)
                res = order.res
                if res is not None and order.is_live and id(res) not in seen_res:
                    seen_res.add(id(res))
                    key = (res.wallet.scope, res.asset)
                    reserved[key] = reserved.get(key, _ZERO) + res.amount
                    if res.amount != _res_need(res):
                        _fail(f"{acct.account_id}: reservation {res.amount} != need of orders")
            for wallet in (acct.spot, *acct.margin_wallets()):
                for asset, bal in wallet.balances.items():
                    where = f"{acct.account_id}/{wallet.scope}/{asset}"
                    if min(bal.free, bal.locked, bal.borrowed, bal.interest) < 0:
                        _fail(f"{where}: negative balance {bal!r}")
                    if wallet.kind == _SPOT and (bal.locked or bal.borrowed or bal.interest):
                        _fail(f"{where}: spot wallet with locks or debt")
                    if bal.locked != reserved.pop((wallet.scope, asset), _ZERO):
                        _fail(f"{where}: locked {bal.locked} != reserved by open orders")
                    _add(holdings, asset, bal.free + bal.locked)
                    _add(borrowed, asset, bal.borrowed)
                    _add(interest, asset, bal.interest)
                    if bal.borrowed > 0 and asset not in wallet.anchors:
                        _fail(f"{where}: loan without an interest anchor")
            if any(reserved.values()):
                _fail(f"{acct.account_id}: reservations on unknown balances {reserved}")
            status = self._cross_risk.status(self._level(acct.cross))
            if status != acct.cross_status:
                _fail(f"{acct.account_id}: cross status {acct.cross_status} != {status}")
        for asset in self._assets:
            expected = (
                self._deposits.get(asset, _ZERO)
                + self._trade_net.get(asset, _ZERO)
                - self._fees.get(asset, _ZERO)
                - self._interest_charged.get(asset, _ZERO)
            )
            net = holdings.get(asset, _ZERO) - borrowed.get(asset, _ZERO)
            net -= interest.get(asset, _ZERO)
            if net != expected:
                _fail(f"{asset}: holdings - liabilities {net} != tracked flows {expected}")
            if borrowed.get(asset, _ZERO) != self._lent.get(asset, _ZERO):
                _fail(f"{asset}: borrowed total != lent counter")
            owed = self._interest_charged.get(asset, _ZERO) - self._interest_paid.get(asset, _ZERO)
            if interest.get(asset, _ZERO) != owed:
                _fail(f"{asset}: interest total != charged - paid")
            if asset in self._inventory_initial:
                used = self._inventory_initial[asset] - self._inventory[asset]
                if used != borrowed.get(asset, _ZERO) or self._inventory[asset] < 0:
                    _fail(f"{asset}: inventory used {used} != borrowed")
        for name, book in self._book.items():
            for order in book.values():
                if order.symbol != name or order.status not in (_NEW, _PARTIALLY_FILLED):
                    _fail(f"order {order.order_id} in the {name} book with {order.status}")
        if self._touched or self._dirty or self._all_dirty or self._op_trades:
            _fail("per-operation scratch state left behind")

    def _values(self, wallet: _Wallet) -> tuple[Decimal, Decimal]:
        """(total asset value, total liability value) of a margin wallet, in BTC."""
        assets = liabilities = _ZERO
        for asset, bal in wallet.balances.items():
            total = bal.free + bal.locked
            owed = bal.borrowed + bal.interest
            if total or owed:
                rate = self._rate(asset)
                assets += total * rate
                liabilities += owed * rate
        return assets, liabilities

    def _level(self, wallet: _Wallet) -> Decimal:
        return _level_of(*self._values(wallet))

    def _risk(self, wallet: _Wallet) -> RiskConfig:
        return self._cross_risk if wallet.kind == _CROSS else self._isolated_risk

    def _risk_max_borrow(self, wallet: _Wallet, asset: str) -> Decimal:
        """The most of ``asset`` a borrow may add while the level stays >= the initial level.

        Borrowing x adds x·r to both assets and liabilities: (A + xr) / (L + xr) >= I
        ⇔ x <= (A - I·L) / ((I - 1)·r).
        """
        initial = self._risk(wallet).initial_level
        assets, liabilities = self._values(wallet)
        room = (assets - initial * liabilities) / ((initial - 1) * self._rate(asset))
        return max(_ZERO, room.quantize(_Q8, ROUND_DOWN))

    def _max_transferable(self, wallet: _Wallet, asset: str) -> Decimal:
        """Free balance, capped so that (A - x·r) / L >= initial level when there is debt."""
        free = _free(wallet, asset)
        assets, liabilities = self._values(wallet)
        if liabilities == 0:
            return free
        room = (assets - self._risk(wallet).initial_level * liabilities) / self._rate(asset)
        return max(_ZERO, min(free, room.quantize(_Q8, ROUND_DOWN)))

    def _borrow_error(self, wallet: _Wallet, asset: str, amount: Decimal) -> LedgerError | None:
        if amount > self._risk_max_borrow(wallet, asset):
            return LedgerError(-3006, "Your borrow amount has exceed maximum borrow amount.")
        remaining = self._inventory.get(asset)
        if remaining is not None and amount > remaining:
            return LedgerError(-3045, "The system does not have enough asset now.")
        return None

    def _funding_error(
        self, wallet: _Wallet, asset: str, need: Decimal, effect: str
    ) -> LedgerError | None:
        free = _free(wallet, asset)
        if need <= free:
            return None
        if effect in _BORROWING:
            return self._borrow_error(wallet, asset, need - free)
        return LedgerError(-2010, _INSUFFICIENT)

    def _check_funding(self, wallet: _Wallet, asset: str, need: Decimal, effect: str) -> None:
        err = self._funding_error(wallet, asset, need, effect)
        if err is not None:
            raise err

    def _liquidation_price(self, wallet: _Wallet, sym: _Symbol) -> Decimal:
        """The base price at which the pair's level falls to the force-liquidation threshold:
        (b·P + q) / (bL·P + qL) = k ⇔ P = (k·qL - q) / (b - k·bL); 0 when there is none."""
        base = wallet.balances.get(sym.base) or _Balance()
        quote = wallet.balances.get(sym.quote) or _Balance()
        k = self._isolated_risk.force_liquidation
        base_owed = base.borrowed + base.interest
        quote_owed = quote.borrowed + quote.interest
        if not base_owed and not quote_owed:
            return _ZERO
        denominator = base.free + base.locked - k * base_owed
        if denominator == 0:
            return _ZERO
        price = (k * quote_owed - quote.free - quote.locked) / denominator
        return max(_ZERO, price)

    def _check_order(
        self, acct: _Account, order: _Order, open_ids: set[tuple[str, str, str]]
    ) -> None:
        where = f"{acct.account_id}/order {order.order_id}"
        if not _ZERO <= order.executed <= order.orig_qty:
            _fail(f"{where}: executed {order.executed} outside [0, {order.orig_qty}]")
        if (order.order_id in acct.live) != order.is_live:
            _fail(f"{where}: status {order.status} but live index disagrees")
        booked = order.order_id in self._book[order.symbol]
        if booked != (order.status in (_NEW, _PARTIALLY_FILLED)):
            _fail(f"{where}: status {order.status} but booked={booked}")
        if order.status == _FILLED and order.executed != order.orig_qty:
            _fail(f"{where}: FILLED with executed {order.executed}")
        if order.taker_due:
            _fail(f"{where}: taker execution left pending")
        if order.is_live:
            key = (order.scope, order.symbol, order.client_order_id)
            if key in open_ids:
                _fail(f"{where}: duplicate open client order id")
            open_ids.add(key)
