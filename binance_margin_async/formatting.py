"""How the command line and the examples print amounts."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["format_amount"]


def format_amount(amount: Decimal | None, *, missing: str = "-") -> str:
    """``amount`` without the wire's trailing zeros and never in exponent form.

    ``Decimal("0E-8")`` (how a zero balance with 8 decimals decodes) prints ``0``,
    ``Decimal("60000.00000000")`` prints ``60000``, ``None`` prints ``missing``.
    """
    if amount is None:
        return missing
    if not amount:
        return "0"  # also drops the sign of -0
    return f"{amount.normalize():f}"
