"""The first-version risk-unit queries, end to end against the fake exchange's risk units."""

from __future__ import annotations

from decimal import Decimal

import pytest

from binance_margin_async.models import LoanGroupDetail
from binance_margin_async.testing import FakeExchange


async def test_parent_and_credit_accounts_see_their_risk_units() -> None:
    async with FakeExchange(seed=3) as ex:
        parent, credit, collateral, other_credit, outsider = (ex.add_account() for _ in range(5))
        first = ex.loan_groups.add(
            parent=parent.account_id,
            credit=credit.account_id,
            credit_wallets={"SPOT": ("5", "0")},
            collateral={collateral.account_id: {"SPOT": ("15", "0"), "CROSS_MARGIN": ("5", "1")}},
            liabilities={"USDT": ("12", "0.5")},
        )
        second = ex.loan_groups.add(parent=parent.account_id, credit=other_credit.account_id)
        assert (first.group_id, second.group_id) == (1, 2)

        async with ex.client(parent) as client:
            both = await client.get_loan_groups()
            (only,) = await client.get_loan_groups(group_id=2)
            assert await client.get_loan_groups(group_id=3) == []
            # The credit-account query is for credit accounts: the parent has none of its own.
            assert await client.get_loan_group() == []
        async with ex.client(credit) as client:
            (own,) = await client.get_loan_group()
            assert await client.get_loan_groups() == []  # not a parent
        async with ex.client(outsider) as client:
            assert await client.get_loan_group() == []

    assert [unit.group_id for unit in both] == [1, 2]
    assert only.group_id == 2 and only.total_liability == 0 and only.ltv == 0
    assert isinstance(own, LoanGroupDetail)
    assert own == both[0]
    assert own.parent_email == f"{parent.account_id}@fake.binance.invalid"
    assert own.credit_email == f"{credit.account_id}@fake.binance.invalid"
    assert own.total_net_equity == Decimal("25")
    assert own.total_maintenance_margin == Decimal("1")
    assert own.total_liability == Decimal("12.5")
    assert own.ltv == Decimal("0.5")  # 12.5 / 25
    assert [(item.asset_name, item.principal, item.interest) for item in own.liabilities] == [
        ("USDT", Decimal("12"), Decimal("0.5"))
    ]
    members = {member.email: member for member in own.collateral_accounts}
    assert [m.type for m in own.collateral_accounts] == ["CREDIT", "COLLATERAL"]
    wallets = members[f"{collateral.account_id}@fake.binance.invalid"].wallets
    assert [(w.account_type, w.net_equity, w.maintain_margin) for w in wallets] == [
        ("SPOT", Decimal("15"), Decimal("0")),
        ("CROSS_MARGIN", Decimal("5"), Decimal("1")),
    ]
    assert own.update_time is not None and own.update_time > 0


async def test_risk_unit_setup_mistakes_are_value_errors() -> None:
    async with FakeExchange(seed=3) as ex:
        parent, credit, other = (ex.add_account() for _ in range(3))
        ex.loan_groups.add(parent=parent.account_id, credit=credit.account_id)
        with pytest.raises(ValueError, match="already the credit account"):
            ex.loan_groups.add(parent=parent.account_id, credit=credit.account_id)
        with pytest.raises(ValueError, match="must differ"):
            ex.loan_groups.add(
                parent=parent.account_id,
                credit=other.account_id,
                collateral={other.account_id: {}},
            )
        assert len(ex.loan_groups.units()) == 1
