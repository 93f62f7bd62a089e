"""Wallets and loans: accounts, deposits, transfers, borrow/repay, interest and their histories.

A layer of :class:`~.ledger.Ledger` (see that module for the venue's rules)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_UP, Decimal
from typing import Any

from ._ledger_state import (
    _CROSS,
    _HOUR_MS,
    _ISOLATED,
    _NO_DEBT_LEVEL,
    _Q8,
    _SPOT,
    _TRANSFER_TYPES,
    _TRANSFER_WALLET_NAMES,
    _ZERO,
    Amount,
    BalanceView,
    LedgerError,
    _Account,
    _add,
    _amount,
    _Balance,
    _config_amount,
    _flag,
    _fmt,
    _free,
    _illegal,
    _in_range,
    _InterestRecord,
    _LoanRecord,
    _mandatory,
    _not_required,
    _page,
    _positive,
    _TransferRecord,
    _Wallet,
)
from ._ledger_wire import _WireLedger


class _WalletLedger(_WireLedger):
    """Accounts and balances, universal transfers, loans and interest."""

    def add_account(
        self,
        account_id: str,
        *,
        spot: Mapping[str, Amount] | None = None,
        cross: Mapping[str, Amount] | None = None,
        isolated: Mapping[str, Mapping[str, Amount]] | None = None,
    ) -> None:
        """Open an account (its cross margin account is activated) with initial balances.

        ``spot``/``cross`` map asset → amount; ``isolated`` maps symbol → {asset: amount} and
        creates those isolated accounts. Emits nothing. ``ValueError`` on a duplicate id or an
        unknown symbol/asset.
        """
        if account_id in self._accounts:
            raise ValueError(f"account {account_id!r} already exists")
        acct = _Account(account_id, self._cross_risk.status(_NO_DEBT_LEVEL), self._asset_set)
        plan: list[tuple[_Wallet, str, Decimal]] = []
        for wallet, balances in ((acct.spot, spot), (acct.cross, cross)):
            for asset, amount in (balances or {}).items():
                plan.append((wallet, self._config_asset(asset), _config_amount(amount, asset)))
        for symbol, balances in (isolated or {}).items():
            if symbol not in self._symbols:
                raise ValueError(f"unknown symbol {symbol}")
            wallet = acct.isolated.setdefault(symbol, self._new_isolated(symbol))
            for asset, amount in balances.items():
                if asset not in wallet.allowed:
                    raise ValueError(f"{asset} is not an asset of {symbol}")
                plan.append((wallet, asset, _config_amount(amount, asset)))
        self._accounts[account_id] = acct
        for wallet, asset, amount in plan:
            wallet.bal(asset).free += amount
            _add(self._deposits, asset, amount)
        acct.cross_status = self._cross_risk.status(self._level(acct.cross))

    def has_account(self, account_id: str) -> bool:
        """Whether ``account_id`` exists."""
        return account_id in self._accounts

    def account_ids(self) -> list[str]:
        """All account ids, in creation order."""
        return list(self._accounts)

    def deposit(
        self, account_id: str, asset: str, amount: Amount, now: int, *, wallet: str = "SPOT"
    ) -> None:
        """Credit ``amount`` of ``asset`` from outside the venue (a test helper, not an endpoint).

        ``wallet`` is ``"SPOT"``, ``"CROSS"`` or an isolated symbol (created if needed). A margin
        wallet gets ``balanceUpdate`` + ``outboundAccountPosition``.
        """
        acct = self._account(account_id)
        qty = _positive(amount, "amount")
        if wallet == _SPOT:
            target = acct.spot
            self._known_asset(asset)
        elif wallet == _CROSS:
            target = acct.cross
            self._known_asset(asset)
        else:
            self._margin_pair(wallet)
            if asset not in self._symbols[wallet].assets:
                raise LedgerError(-3027, "Not a valid margin asset.")
            target = acct.isolated.setdefault(wallet, self._new_isolated(wallet))
        target.bal(asset).free += qty
        _add(self._deposits, asset, qty)
        self._balance_update(acct, target, asset, qty, now)
        self._flush(now)

    def create_isolated_account(self, account_id: str, symbol: str, now: int) -> dict[str, Any]:
        """Enable an isolated margin account (``POST /sapi/v1/margin/isolated/account``).

        Idempotent. Returns ``{"success": true, "symbol": ...}``.
        https://developers.binance.com/docs/margin_trading/account/Enable-Isolated-Margin-Account
        """
        acct = self._account(account_id)
        self._margin_pair(symbol)
        acct.isolated.setdefault(symbol, self._new_isolated(symbol))
        self._flush(now)
        return {"success": True, "symbol": symbol}

    def isolated_symbols(self, account_id: str) -> list[str]:
        """The symbols of the account's isolated margin accounts, in creation order."""
        return list(self._account(account_id).isolated)

    def balance(self, account_id: str, asset: str, *, wallet: str = "CROSS") -> BalanceView:
        """A snapshot of ``asset`` in ``wallet`` (``"SPOT"``, ``"CROSS"`` or an isolated symbol).

        Unknown wallets and assets read as zero.
        """
        acct = self._account(account_id)
        if wallet == _SPOT:
            target: _Wallet | None = acct.spot
        elif wallet == _CROSS:
            target = acct.cross
        else:
            target = acct.isolated.get(wallet)
        bal = target.balances.get(asset) if target is not None else None
        if bal is None:
            return BalanceView(asset, _ZERO, _ZERO, _ZERO, _ZERO)
        return BalanceView(asset, bal.free, bal.locked, bal.borrowed, bal.interest)

    def transfer(
        self,
        account_id: str,
        type: str,
        asset: str,
        amount: Amount,
        now: int,
        *,
        from_symbol: str | None = None,
        to_symbol: str | None = None,
    ) -> dict[str, Any]:
        """Universal transfer between spot, cross and isolated wallets → ``{"tranId": n}``.

        ``-3020`` when a margin wallet would send more than :meth:`max_transferable`, ``-3041``
        when the spot wallet lacks the free balance, ``-3027``/``-3028`` for an asset/pair that is
        not a valid margin asset/pair. An isolated destination is created on first transfer in.
        https://developers.binance.com/docs/wallet/asset/user-universal-transfer
        """
        acct = self._account(account_id)
        kinds = _TRANSFER_TYPES.get(type)
        if kinds is None:
            raise _illegal("type", ", ".join(sorted(_TRANSFER_TYPES)))
        qty = _amount(amount, "amount")
        src_kind, dst_kind = kinds
        self._known_asset(asset)
        if src_kind == _ISOLATED:
            if from_symbol is None:
                raise _mandatory("fromSymbol")
        elif from_symbol is not None:
            raise _not_required("fromSymbol")
        if dst_kind == _ISOLATED:
            if to_symbol is None:
                raise _mandatory("toSymbol")
        elif to_symbol is not None:
            raise _not_required("toSymbol")
        if src_kind == dst_kind == _ISOLATED and from_symbol == to_symbol:
            raise LedgerError(-1130, "Data sent for parameter 'toSymbol' is not valid.")
        if to_symbol is not None:
            self._margin_pair(to_symbol)
            if asset not in self._symbols[to_symbol].assets:
                raise LedgerError(-3027, "Not a valid margin asset.")
        src = self._transfer_wallet(acct, src_kind, from_symbol)
        if src.kind == _SPOT:
            if _free(src, asset) < qty:
                raise LedgerError(-3041, "Balance is not enough.")
        elif qty > self._max_transferable(src, asset):
            raise LedgerError(-3020, "Transfer out amount exceeds max amount.")
        # Validated: change state.
        if dst_kind == _ISOLATED:
            assert to_symbol is not None
            dst = acct.isolated.setdefault(to_symbol, self._new_isolated(to_symbol))
        else:
            dst = self._transfer_wallet(acct, dst_kind, None)
        src.bal(asset).free -= qty
        dst.bal(asset).free += qty
        tran_id = self._tran_id()
        acct.transfers.append(_TransferRecord(tran_id, asset, qty, src, dst, now))
        self._balance_update(acct, src, asset, -qty, now)
        self._balance_update(acct, dst, asset, qty, now)
        self._flush(now)
        return {"tranId": tran_id}

    def max_transferable(
        self, account_id: str, asset: str, *, isolated_symbol: str | None = None
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/maxTransferable`` → ``{"amount": "..."}``.

        The most of ``asset`` that can leave the margin wallet with its level kept at or above
        the initial level.
        https://developers.binance.com/docs/margin_trading/transfer/Query-Max-Transfer-Out-Amount
        """
        acct = self._account(account_id)
        self._known_asset(asset)
        wallet = self._margin_wallet(acct, isolated_symbol)
        if asset not in wallet.allowed:
            raise LedgerError(-3027, "Not a valid margin asset.")
        return {"amount": _fmt(self._max_transferable(wallet, asset))}

    def transfer_history(
        self,
        account_id: str,
        *,
        asset: str | None = None,
        type: str | None = None,
        isolated_symbol: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int = 1,
        size: int = 10,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/transfer``: transfers of the cross (or ``isolated_symbol``) wallet.

        ``type`` is ``ROLL_IN`` or ``ROLL_OUT`` seen from that wallet; newest first, paged.
        https://developers.binance.com/docs/margin_trading/transfer/Get-Cross-Margin-Transfer-History
        """
        acct = self._account(account_id)
        if type is not None and type not in ("ROLL_IN", "ROLL_OUT"):
            raise _illegal("type", "ROLL_IN, ROLL_OUT")
        scope = _CROSS if isolated_symbol is None else isolated_symbol
        rows: list[dict[str, Any]] = []
        for rec in reversed(acct.transfers):
            if scope not in (rec.src.scope, rec.dst.scope):
                continue
            direction = "ROLL_IN" if rec.dst.scope == scope else "ROLL_OUT"
            if (type is not None and direction != type) or not _in_range(
                rec.time, start_time, end_time
            ):
                continue
            if asset is not None and rec.asset != asset:
                continue
            row: dict[str, Any] = {
                "amount": _fmt(rec.amount),
                "asset": rec.asset,
                "status": "CONFIRMED",
                "timestamp": rec.time,
                "txId": rec.tran_id,
                "type": direction,
                "transFrom": _TRANSFER_WALLET_NAMES[rec.src.kind],
                "transTo": _TRANSFER_WALLET_NAMES[rec.dst.kind],
            }
            if rec.src.kind == _ISOLATED:
                row["fromSymbol"] = rec.src.scope
            if rec.dst.kind == _ISOLATED:
                row["toSymbol"] = rec.dst.scope
            rows.append(row)
        return _page(rows, current, size)

    def borrow(
        self, account_id: str, asset: str, amount: Amount, now: int, *, symbol: str | None = None
    ) -> dict[str, Any]:
        """Borrow into the cross wallet (or the isolated wallet of ``symbol``) → ``{"tranId"}``.

        ``-3006`` above :meth:`max_borrowable` (margin level rule), ``-3045`` above the system
        inventory. Emits ``outboundAccountPosition`` and, cross only, ``USER_LIABILITY_CHANGE``.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Margin-Account-Borrow-Repay
        """
        return self.borrow_repay(
            account_id, "BORROW", asset, amount, now, is_isolated=symbol is not None, symbol=symbol
        )

    def repay(
        self, account_id: str, asset: str, amount: Amount, now: int, *, symbol: str | None = None
    ) -> dict[str, Any]:
        """Repay (interest first, then principal) → ``{"tranId": n}``.

        ``-3015`` when ``amount`` exceeds borrowed + interest, ``-3041`` when the free balance
        is short. Emits ``outboundAccountPosition`` and, cross only, ``USER_LIABILITY_CHANGE``.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Margin-Account-Borrow-Repay
        """
        return self.borrow_repay(
            account_id, "REPAY", asset, amount, now, is_isolated=symbol is not None, symbol=symbol
        )

    def borrow_repay(
        self,
        account_id: str,
        type: str,
        asset: str,
        amount: Amount,
        now: int,
        *,
        is_isolated: bool | str = False,
        symbol: str | None = None,
    ) -> dict[str, Any]:
        """``POST /sapi/v1/margin/borrow-repay``: ``type`` ``BORROW`` or ``REPAY``.

        See :meth:`borrow` and :meth:`repay`. ``symbol`` is mandatory when ``is_isolated``.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Margin-Account-Borrow-Repay
        """
        acct = self._account(account_id)
        if type not in ("BORROW", "REPAY"):
            raise _illegal("type", "BORROW, REPAY")
        qty = _amount(amount, "amount")
        wallet = self._loan_wallet(acct, _flag(is_isolated, "isIsolated"), symbol, asset)
        if type == "BORROW":
            err = self._borrow_error(wallet, asset, qty)
            if err is not None:
                raise err
            tran_id = self._borrow_now(acct, wallet, asset, qty, now, auto=False)
        else:
            bal = wallet.balances.get(asset) or _Balance()
            if qty > bal.borrowed + bal.interest:
                raise LedgerError(-3015, "Repay amount exceeds borrow amount.")
            if qty > bal.free:
                raise LedgerError(-3041, "Balance is not enough.")
            tran_id = self._repay_now(acct, wallet, asset, qty, now, auto=False)
        self._flush(now)
        return {"tranId": tran_id}

    def max_borrowable(
        self, account_id: str, asset: str, *, isolated_symbol: str | None = None
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/maxBorrowable`` → ``{"amount", "borrowLimit"}``.

        ``amount``: the most that can be borrowed now (margin-level rule, capped by the system
        inventory); ``borrowLimit``: the margin-level bound alone.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Query-Max-Borrow
        """
        acct = self._account(account_id)
        wallet = self._loan_wallet(acct, isolated_symbol is not None, isolated_symbol, asset)
        limit = self._risk_max_borrow(wallet, asset)
        amount = limit
        remaining = self._inventory.get(asset)
        if remaining is not None:
            amount = min(amount, remaining)
        return {"amount": _fmt(amount), "borrowLimit": _fmt(limit)}

    def accrue_interest(self, now: int) -> None:
        """Charge hourly interest on every open loan for each whole hour since its anchor.

        Adds to ``interest``, records ``PERIODIC`` interest history and emits
        ``USER_LIABILITY_CHANGE`` (``t`` ``INTEREST``) for cross loans; margin statuses are
        re-checked.
        """
        for acct in self._accounts.values():
            for wallet in acct.margin_wallets():
                for asset, anchor in list(wallet.anchors.items()):
                    bal = wallet.bal(asset)
                    hours = (now - anchor) // _HOUR_MS
                    if hours <= 0:
                        continue
                    wallet.anchors[asset] = anchor + hours * _HOUR_MS
                    rate = self._interest_rates.get(asset, self._default_interest)
                    charge = (bal.borrowed * rate * hours).quantize(_Q8, ROUND_UP)
                    if charge <= 0:
                        continue
                    bal.interest += charge
                    _add(self._interest_charged, asset, charge)
                    acct.interests.append(
                        _InterestRecord(
                            self._tran_id(), wallet.scope, asset, bal.borrowed, charge, rate, now
                        )
                    )
                    self._liability_event(acct, wallet, asset, "INTEREST", _ZERO, charge, now)
                    self._dirty[acct.account_id] = None
        self._flush(now)

    def borrow_repay_history(
        self,
        account_id: str,
        type: str,
        *,
        asset: str | None = None,
        isolated_symbol: str | None = None,
        tx_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int = 1,
        size: int = 10,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/borrow-repay``: ``BORROW`` or ``REPAY`` records, newest first.

        Cross records unless ``isolated_symbol``. Rows carry ``type`` ``MANUAL`` or ``AUTO``.
        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Query-Borrow-Repay
        """
        acct = self._account(account_id)
        if type not in ("BORROW", "REPAY"):
            raise _illegal("type", "BORROW, REPAY")
        scope = _CROSS if isolated_symbol is None else isolated_symbol
        rows: list[dict[str, Any]] = []
        for rec in reversed(acct.loans):
            if rec.kind != type or rec.scope != scope:
                continue
            if asset is not None and rec.asset != asset:
                continue
            if tx_id is not None and rec.tran_id != tx_id:
                continue
            if not _in_range(rec.time, start_time, end_time):
                continue
            row: dict[str, Any] = {"type": "AUTO" if rec.auto else "MANUAL"}
            if rec.scope != _CROSS:
                row["isolatedSymbol"] = rec.scope
            row.update(
                amount=_fmt(rec.principal + rec.interest),
                asset=rec.asset,
                interest=_fmt(rec.interest),
                principal=_fmt(rec.principal),
                status="CONFIRMED",
                timestamp=rec.time,
                txId=rec.tran_id,
            )
            rows.append(row)
        return _page(rows, current, size)

    def interest_history(
        self,
        account_id: str,
        *,
        asset: str | None = None,
        isolated_symbol: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        current: int = 1,
        size: int = 10,
    ) -> dict[str, Any]:
        """``GET /sapi/v1/margin/interestHistory``: charged interest, newest first, paged.

        https://developers.binance.com/docs/margin_trading/borrow-and-repay/Get-Interest-History
        """
        acct = self._account(account_id)
        scope = _CROSS if isolated_symbol is None else isolated_symbol
        rows: list[dict[str, Any]] = []
        for rec in reversed(acct.interests):
            if rec.scope != scope or (asset is not None and rec.asset != asset):
                continue
            if not _in_range(rec.time, start_time, end_time):
                continue
            row: dict[str, Any] = {
                "txId": rec.tran_id,
                "interestAccuredTime": rec.time,
                "asset": rec.asset,
                "rawAsset": rec.asset,
                "principal": _fmt(rec.principal),
                "interest": _fmt(rec.interest),
                "interestRate": _fmt(rec.rate),
                "type": "PERIODIC",
            }
            if rec.scope != _CROSS:
                row["isolatedSymbol"] = rec.scope
            rows.append(row)
        return _page(rows, current, size)

    def _borrow_now(
        self, acct: _Account, wallet: _Wallet, asset: str, amount: Decimal, now: int, *, auto: bool
    ) -> int:
        bal = wallet.bal(asset)
        if bal.borrowed == 0:
            wallet.anchors[asset] = now
        bal.borrowed += amount
        bal.free += amount
        _add(self._lent, asset, amount)
        if asset in self._inventory:
            self._inventory[asset] -= amount
        return self._record_loan(acct, wallet, "BORROW", asset, amount, _ZERO, now, auto)

    def _repay_now(
        self, acct: _Account, wallet: _Wallet, asset: str, amount: Decimal, now: int, *, auto: bool
    ) -> int:
        """Repay ``amount`` (<= free, <= owed): interest first, then principal."""
        bal = wallet.bal(asset)
        interest = min(amount, bal.interest)
        principal = amount - interest
        bal.free -= amount
        bal.interest -= interest
        bal.borrowed -= principal
        if bal.borrowed == 0:
            wallet.anchors.pop(asset, None)
        _add(self._lent, asset, -principal)
        _add(self._interest_paid, asset, interest)
        if asset in self._inventory:
            self._inventory[asset] += principal
        return self._record_loan(acct, wallet, "REPAY", asset, principal, interest, now, auto)

    def _record_loan(
        self,
        acct: _Account,
        wallet: _Wallet,
        kind: str,
        asset: str,
        principal: Decimal,
        interest: Decimal,
        now: int,
        auto: bool,
    ) -> int:
        """Record a ``BORROW``/``REPAY`` that changed the balances: history row, liability
        event, position; returns its ``tranId``."""
        tran_id = self._tran_id()
        acct.loans.append(
            _LoanRecord(kind, tran_id, wallet.scope, asset, principal, interest, now, auto)
        )
        self._liability_event(acct, wallet, asset, kind, principal, interest, now)
        self._touch(acct, wallet, asset)
        return tran_id

    def _auto_repay(
        self, acct: _Account, wallet: _Wallet, asset: str, cap: Decimal, now: int
    ) -> None:
        """Repay up to ``cap`` of ``asset``'s liability from its free balance."""
        bal = wallet.bal(asset)
        amount = min(cap, bal.borrowed + bal.interest, bal.free)
        if amount > 0:
            self._repay_now(acct, wallet, asset, amount, now, auto=True)
