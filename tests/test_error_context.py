"""Errors say what the request was about: account, symbol, order, and where to look."""

from __future__ import annotations

import pytest

from binance_margin_async._context import request_context, unknown_outcome_hint
from binance_margin_async.errors import BadSymbol, ExecutionStatusUnknown, MarginAccountNotFound
from binance_margin_async.testing import FakeExchange


def test_context_lists_identifying_parameters_only() -> None:
    params = [("asset", "USDT"), ("amount", "10"), ("isIsolated", "TRUE"), ("symbol", "BTCUSDT")]
    assert request_context(params) == "symbol=BTCUSDT, isIsolated=TRUE, asset=USDT"
    assert request_context([("amount", "1")]) == ""
    assert "get_borrow_repay_records(type='REPAY'" in unknown_outcome_hint("repay")
    assert unknown_outcome_hint("anything_else") == "the account's state and history"


async def test_errors_name_the_account_symbol_or_records_at_fault() -> None:
    async with FakeExchange() as ex:
        client = ex.client(ex.add_account(margin_balances={"USDT": "100"}))
        async with client:
            with pytest.raises(MarginAccountNotFound, match=r"symbol=BTCUSDT, isIsolated=true"):
                await client.create_listen_token(symbol="BTCUSDT")
            with pytest.raises(BadSymbol, match=r"\[get_order: symbol=FOOUSDT, orderId=1\]"):
                await client.get_order("FOOUSDT", order_id=1)
            ex.fail_next("/sapi/v1/margin/borrow-repay", execute=True, status=503, code=-1006)
            with pytest.raises(ExecutionStatusUnknown) as info:
                await client.borrow("USDT", "10")
    assert info.value.hint is not None
    assert "get_borrow_repay_records(type='BORROW'" in str(info.value)
    assert "asset=USDT, type=BORROW" in str(info.value)
    with pytest.raises(ValueError, match="unknown symbol 'FOOUSDT'"):
        ex.set_price("FOOUSDT", "1")
