"""Institutional-loan risk units of the fake exchange, and the two first-version queries.

``GET /sapi/v1/margin/loan-groups`` (parent account: all its risk units, or the ``groupId`` one) and
``GET /sapi/v1/margin/loan-group`` (credit account: its own risk unit) answer with the risk-unit
detail records that ``ltv-details`` documents (institutional loan change log 2025-05-16; Binance
documents no response for these two, see :class:`~binance_margin_async.models.LoanGroupDetail`).
Any other account gets an empty list, as ``ltv-details`` answers accounts outside a risk unit.

Risk units are set up by the test through :meth:`LoanGroups.add` (``FakeExchange.loan_groups``):
the members' wallet figures and the liabilities are given, the totals and the LTV
(total liability / total net equity) are derived. Nothing here touches the margin ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from ._rest import Call, Handler

__all__ = ["LoanGroups", "RiskUnit", "RiskUnitMember"]

Amount = Decimal | int | str

#: Wallet figures of a member: account type (``SPOT``, ``CROSS_MARGIN``...) → (net equity,
#: maintenance margin).
Wallets = Mapping[str, tuple[Amount, Amount]]

_LTV_PLACES: Final = Decimal("0.001")  # Binance's example shows "0.592"


def _email(account_id: str) -> str:
    return f"{account_id}@fake.binance.invalid"


def _text(value: Decimal) -> str:
    # Binance renders amounts as plain decimal strings.
    return format(value.normalize(), "f") if value else "0"


@dataclass(frozen=True, slots=True)
class RiskUnitMember:
    """A member account of a risk unit (``CREDIT`` or ``COLLATERAL``) and its wallets."""

    account_id: str
    type: str
    wallets: tuple[tuple[str, Decimal, Decimal], ...]

    @property
    def net_equity(self) -> Decimal:
        """The member's net equity over its wallets."""
        return sum((equity for _, equity, _ in self.wallets), Decimal(0))

    @property
    def maintenance_margin(self) -> Decimal:
        """The member's maintenance margin over its wallets."""
        return sum((margin for _, _, margin in self.wallets), Decimal(0))

    def render(self) -> dict[str, Any]:
        """The member as a ``collateralAccounts`` entry."""
        return {
            "email": _email(self.account_id),
            "type": self.type,
            "wallets": [
                {"accountType": kind, "netEquity": _text(equity), "maintainMargin": _text(margin)}
                for kind, equity, margin in self.wallets
            ],
        }


@dataclass(frozen=True, slots=True)
class RiskUnit:
    """One risk unit: its parent and credit accounts, members and liabilities (asset →
    principal, interest; valued 1:1 in the unit's quote, as the test sets them up)."""

    group_id: int
    parent: str
    credit: str
    members: tuple[RiskUnitMember, ...]
    liabilities: tuple[tuple[str, Decimal, Decimal], ...]
    update_time: int

    def render(self) -> dict[str, Any]:
        """The detail record, in ``ltv-details``'s shape."""
        equity = sum((member.net_equity for member in self.members), Decimal(0))
        margin = sum((member.maintenance_margin for member in self.members), Decimal(0))
        liability = sum((p + i for _, p, i in self.liabilities), Decimal(0))
        ltv = (liability / equity).quantize(_LTV_PLACES) if equity else Decimal(0)
        return {
            "groupId": self.group_id,
            "parentEmail": _email(self.parent),
            "creditEmail": _email(self.credit),
            "updateTime": self.update_time,
            "ltv": _text(ltv),
            "totalNetEquity": _text(equity),
            "totalMaintenanceMargin": _text(margin),
            "totalLiability": _text(liability),
            "liabilities": [
                {"assetName": asset, "principal": _text(p), "interest": _text(i)}
                for asset, p, i in self.liabilities
            ],
            "collateralAccounts": [member.render() for member in self.members],
        }


def _wallets(wallets: Wallets) -> tuple[tuple[str, Decimal, Decimal], ...]:
    return tuple(
        (kind, Decimal(equity), Decimal(margin)) for kind, (equity, margin) in wallets.items()
    )


class LoanGroups:
    """The fake exchange's risk units, served on the first-version loan-group queries.

    ``clock`` gives the exchange's server time in ms (stamped as ``updateTime``).
    """

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._units: dict[int, RiskUnit] = {}

    def add(
        self,
        *,
        parent: str,
        credit: str,
        credit_wallets: Wallets | None = None,
        collateral: Mapping[str, Wallets] | None = None,
        liabilities: Mapping[str, tuple[Amount, Amount]] | None = None,
    ) -> RiskUnit:
        """Create a risk unit and return it (its ``group_id`` is 1, 2, ... in creation order).

        ``parent`` and ``credit`` are account ids (``Credentials.account_id``); ``collateral``
        maps collateral account ids to their wallets; ``liabilities`` maps an asset to
        ``(principal, interest)``. Raises ``ValueError`` if the credit account already has a risk
        unit or an account is both credit and collateral.
        """
        if any(unit.credit == credit for unit in self._units.values()):
            raise ValueError(f"account {credit!r} is already the credit account of a risk unit")
        collateral = collateral or {}
        if credit in collateral or parent == credit:
            raise ValueError("the credit account must differ from the parent and collateral")
        members = [RiskUnitMember(credit, "CREDIT", _wallets(credit_wallets or {}))]
        members += [
            RiskUnitMember(account, "COLLATERAL", _wallets(wallets))
            for account, wallets in collateral.items()
        ]
        unit = RiskUnit(
            group_id=len(self._units) + 1,
            parent=parent,
            credit=credit,
            members=tuple(members),
            liabilities=tuple(
                (asset, Decimal(principal), Decimal(interest))
                for asset, (principal, interest) in (liabilities or {}).items()
            ),
            update_time=self._clock(),
        )
        self._units[unit.group_id] = unit
        return unit

    def units(self) -> Sequence[RiskUnit]:
        """Every risk unit, in creation order."""
        return tuple(self._units.values())

    def handlers(self) -> dict[tuple[str, str], Handler]:
        """The REST handlers, by ``(method, path)``, for the fake's routing table."""
        return {
            ("GET", "/sapi/v1/margin/loan-groups"): self._h_parent,
            ("GET", "/sapi/v1/margin/loan-group"): self._h_credit,
        }

    def _h_parent(self, call: Call) -> Any:
        group_id = call.params.long("groupId")
        call.params.finish()
        return [
            unit.render()
            for unit in self._units.values()
            if unit.parent == call.account_id and group_id in (None, unit.group_id)
        ]

    def _h_credit(self, call: Call) -> Any:
        call.params.finish()
        return [unit.render() for unit in self._units.values() if unit.credit == call.account_id]
