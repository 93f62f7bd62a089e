"""Request building in MarginAPI, through a recording `_call`: params, ids, pages, windows."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import pytest

from binance_margin_async.api import MarginAPI
from binance_margin_async.endpoints import ENDPOINTS, SERVER_TIME, Endpoint
from binance_margin_async.errors import InvalidResponse, ParameterError
from binance_margin_async.models import (
    ListenToken,
    Order,
    OrderList,
    SideEffectType,
    TransferType,
)
from binance_margin_async.params import CAPITAL_FLOW_WINDOW_MS, MAX_TIMESTAMP_MS, MAX_WINDOWS

_GENERATED_ID = re.compile(r"bma[0-9a-f]{32}")
_DAY = 24 * 60 * 60 * 1000


@dataclass
class Call:
    endpoint: Endpoint
    params: list[tuple[str, str]]
    client_order_id: str | None


Reply = Callable[[Endpoint, list[tuple[str, str]]], Any]


class Recorder(MarginAPI):
    """A MarginAPI whose transport records each request and returns canned JSON."""

    def __init__(self, *replies: Any, reply: Reply | None = None) -> None:
        self.calls: list[Call] = []
        self._replies = list(replies)
        self._reply = reply

    async def _call(
        self,
        endpoint: Endpoint,
        params: list[tuple[str, str]],
        *,
        client_order_id: str | None = None,
    ) -> Any:
        self.calls.append(Call(endpoint, list(params), client_order_id))
        if self._reply is not None:
            return self._reply(endpoint, params)
        return self._replies.pop(0) if self._replies else {}

    @property
    def params(self) -> list[tuple[str, str]]:
        (call,) = self.calls
        return call.params


# The least an order / order list answer must hold (their models' required fields).
ORDER: Final = {"symbol": "BTCUSDT", "orderId": 1}
ORDER_LIST: Final = {"orderListId": 1}

# One valid call per endpoint: (method, args, kwargs, canned reply).
SMOKE: list[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = [
    ("new_order", ("BTCUSDT", "BUY", "MARKET"), {"quantity": "1"}, ORDER),
    ("cancel_order", ("BTCUSDT",), {"order_id": 1}, ORDER),
    ("get_order", ("BTCUSDT",), {"order_id": 1}, ORDER),
    ("get_open_orders", (), {}, []),
    ("cancel_open_orders", ("BTCUSDT",), {}, []),
    ("get_all_orders", ("BTCUSDT",), {}, []),
    ("get_my_trades", ("BTCUSDT",), {}, []),
    ("new_oco", ("BTCUSDT", "SELL", "1", "30000", "25000"), {}, ORDER_LIST),
    (
        "new_oto",
        ("BTCUSDT", "LIMIT", "BUY", "100", "1", "MARKET", "SELL", "1"),
        {"working_time_in_force": "GTC"},
        ORDER_LIST,
    ),
    (
        "new_otoco",
        ("BTCUSDT", "LIMIT", "BUY", "100", "1", "SELL", "1", "LIMIT_MAKER"),
        {
            "working_time_in_force": "GTC",
            "pending_above_price": "110",
            "pending_below_type": "STOP_LOSS",
            "pending_below_stop_price": "90",
        },
        ORDER_LIST,
    ),
    ("cancel_order_list", ("BTCUSDT",), {"order_list_id": 1}, ORDER_LIST),
    ("get_order_list", (), {"order_list_id": 1}, ORDER_LIST),
    ("get_all_order_lists", (), {}, []),
    ("get_open_order_lists", (), {}, []),
    ("get_order_count_usage", (), {}, []),
    ("get_prevented_matches", ("BTCUSDT",), {"order_id": 1}, []),
    ("get_force_liquidation_records", (), {}, {}),
    ("manual_liquidation", ("MARGIN",), {}, []),
    ("get_small_liability_exchange_coins", (), {}, []),
    ("small_liability_exchange", (["BTC", "ETH"],), {}, {}),
    ("get_small_liability_exchange_history", (), {}, {}),
    ("create_special_key", ("bot",), {}, {}),
    ("delete_special_key", (), {"api_name": "bot"}, {}),
    ("edit_special_key_ip", ("1.2.3.4",), {"api_key": "k"}, {}),
    ("get_special_key", ("k",), {}, {}),
    ("get_special_key_list", (), {}, []),
    ("exit_special_key_mode", (), {}, {}),
    ("get_liquidation_loan", (), {}, {}),
    ("repay_liquidation_loan", ("USDC", "1"), {}, {}),
    ("get_liquidation_loan_repay_history", (), {}, {}),
    ("borrow", ("BTC", "1"), {}, {"tranId": 1}),
    ("repay", ("BTC", "1"), {}, {"tranId": 1}),
    ("get_borrow_repay_records", ("BORROW",), {"start_time": 1}, {}),
    ("get_interest_history", (), {}, {}),
    ("get_interest_rate_history", ("BTC",), {}, []),
    ("get_max_borrowable", ("BTC",), {}, {}),
    ("get_next_hourly_interest_rate", ("BTC",), {}, []),
    ("get_account", (), {}, {}),
    ("get_isolated_account", (), {}, {}),
    ("enable_isolated_account", ("BTCUSDT",), {}, {}),
    ("disable_isolated_account", ("BTCUSDT",), {}, {}),
    ("get_isolated_account_limit", (), {}, {}),
    ("adjust_max_leverage", (3,), {}, {}),
    ("get_capital_flow", (), {}, []),
    ("get_cross_margin_fee_data", (), {}, []),
    ("get_isolated_margin_fee_data", (), {}, []),
    ("get_margin_summary", (), {}, {}),
    ("get_bnb_burn_status", (), {}, {}),
    ("toggle_bnb_burn", (), {"spot_bnb_burn": True}, {}),
    ("transfer", ("MAIN_MARGIN", "USDT", "10"), {}, {"tranId": 1}),
    ("get_universal_transfer_history", ("MAIN_MARGIN",), {}, {}),
    ("get_transfer_history", (), {}, {}),
    ("get_max_transferable", ("BTC",), {}, {}),
    ("get_dust_assets", (), {}, {}),
    ("convert_dust", (["ADA", "DOT"],), {}, {}),
    ("get_dust_log", (), {}, {}),
    ("get_all_assets", (), {}, []),
    ("get_all_pairs", (), {}, []),
    ("get_all_isolated_pairs", (), {}, []),
    ("get_cross_margin_collateral_ratio", (), {}, []),
    ("get_isolated_margin_tier_data", ("BTCUSDT",), {}, []),
    ("get_delist_schedule", (), {}, []),
    ("get_list_schedule", (), {}, []),
    ("get_available_inventory", ("MARGIN",), {}, {}),
    ("get_price_index", ("BTCUSDT",), {}, {}),
    ("get_limit_price_pairs", (), {}, {}),
    ("get_risk_based_liquidation_ratio", (), {}, []),
    ("get_restricted_assets", (), {}, {}),
    ("create_listen_token", (), {}, {"token": "t", "expirationTime": 1}),
    ("start_risk_data_stream", (), {}, {"listenKey": "k"}),
    ("keepalive_risk_data_stream", ("k",), {}, {}),
    ("close_risk_data_stream", ("k",), {}, {}),
    ("get_loan_group_ltv_details", (), {}, []),
    ("get_loan_groups", (), {"group_id": 1}, []),
    ("get_loan_group", (), {}, []),
    ("get_active_loan_groups", (), {}, []),
    ("get_closed_loan_groups", (), {}, {}),
    ("close_loan_group", (1,), {}, {}),
    (
        "add_loan_group_collateral_account",
        (1, "member@example.com"),
        {"enable_spot": True, "enable_margin": True},
        {},
    ),
    ("borrow_loan_group", (1, "USDT", "10"), {}, {}),
    ("repay_loan_group", (1, "USDT", "10"), {}, {}),
    ("get_loan_group_borrow_repay_records", ("BORROW",), {}, {}),
    ("get_loan_group_interest_history", (), {}, {}),
    ("get_loan_group_force_liquidation_records", (), {}, {}),
    ("get_loan_group_force_liquidation_transfer_records", (), {}, {}),
    ("transfer_out_loan_group", ("USDT", "1"), {}, None),
]


def test_smoke_table_covers_every_endpoint() -> None:
    assert {name for name, *_ in SMOKE} == set(ENDPOINTS)


@pytest.mark.parametrize(("name", "args", "kwargs", "reply"), SMOKE, ids=[s[0] for s in SMOKE])
async def test_each_method_calls_its_endpoint_once(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any
) -> None:
    api = Recorder(reply)
    await getattr(api, name)(*args, **kwargs)
    (call,) = api.calls
    assert call.endpoint is ENDPOINTS[name]
    keys = [key for key, _ in call.params]
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in call.params)
    # The transport adds these; the builder never does.
    assert not {"timestamp", "recvWindow", "signature"} & set(keys)
    if name != "convert_dust":  # its asset list is a repeated parameter
        assert len(keys) == len(set(keys)), keys


# Orders


async def test_new_order_params_in_documented_order_with_generated_id() -> None:
    api = Recorder({"symbol": "BTCUSDT", "orderId": 7})
    order = await api.new_order(
        "BTCUSDT",
        "BUY",
        "LIMIT",
        quantity=0.1,
        price=Decimal("30000.00"),
        time_in_force="GTC",
        side_effect_type=SideEffectType.MARGIN_BUY,
        self_trade_prevention_mode="EXPIRE_TAKER",
        auto_repay_at_cancel=False,
        is_isolated=True,
    )
    assert isinstance(order, Order) and order.order_id == 7
    (call,) = api.calls
    client_id = dict(call.params)["newClientOrderId"]
    assert _GENERATED_ID.fullmatch(client_id)
    assert call.client_order_id == client_id
    assert call.params == [
        ("symbol", "BTCUSDT"),
        ("isIsolated", "TRUE"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("quantity", "0.1"),
        ("price", "30000"),
        ("newClientOrderId", client_id),
        ("sideEffectType", "MARGIN_BUY"),
        ("timeInForce", "GTC"),
        ("selfTradePreventionMode", "EXPIRE_TAKER"),
        ("autoRepayAtCancel", "FALSE"),
    ]
    assert call.endpoint.weight_for(call.params) == 1500


async def test_new_order_cross_sends_no_isolated_flag_and_keeps_given_id() -> None:
    api = Recorder(ORDER)
    await api.new_order(
        "BTCUSDT", "SELL", "MARKET", quote_order_qty="25.5", new_client_order_id="my-1"
    )
    params = api.params
    assert ("isIsolated", "TRUE") not in params and "isIsolated" not in dict(params)
    assert dict(params)["newClientOrderId"] == "my-1"
    assert dict(params)["quoteOrderQty"] == "25.5"
    assert api.calls[0].client_order_id == "my-1"
    assert api.calls[0].endpoint.weight_for(params) == 6


async def test_generated_ids_differ_between_orders() -> None:
    api = Recorder(ORDER, ORDER)
    await api.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
    await api.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
    first, second = (call.client_order_id for call in api.calls)
    assert first != second


@pytest.mark.parametrize(
    ("args", "kwargs", "param"),
    [
        (("BTCUSDT", "buy", "MARKET"), {"quantity": "1"}, "side"),
        (("BTCUSDT", "BUY", "ICEBERG"), {"quantity": "1"}, "type"),
        (("BTC USDT", "BUY", "MARKET"), {"quantity": "1"}, "symbol"),
        (("BTCUSDT", "BUY", "MARKET"), {}, "quantity"),
        (("BTCUSDT", "BUY", "MARKET"), {"quantity": "1", "quote_order_qty": "1"}, "quantity"),
        (("BTCUSDT", "BUY", "MARKET"), {"quantity": float("nan")}, "quantity"),
        (("BTCUSDT", "BUY", "MARKET"), {"quantity": -1}, "quantity"),
        (("BTCUSDT", "BUY", "LIMIT"), {"quantity": "1", "time_in_force": "GTC"}, "price"),
        (("BTCUSDT", "BUY", "LIMIT"), {"quantity": "1", "price": "1"}, "time_in_force"),
        (("BTCUSDT", "BUY", "LIMIT"), {"price": "1", "time_in_force": "GTC"}, "quantity"),
        (("BTCUSDT", "BUY", "LIMIT"), {"quantity": "1", "quote_order_qty": "1"}, "quote_order_qty"),
        (("BTCUSDT", "BUY", "STOP_LOSS"), {"quantity": "1"}, "stop_price"),
        (("BTCUSDT", "BUY", "LIMIT_MAKER"), {"quantity": "1"}, "price"),
        (
            ("BTCUSDT", "BUY", "MARKET"),
            {"quantity": "1", "new_client_order_id": "no spaces allowed"},
            "new_client_order_id",
        ),
        (
            ("BTCUSDT", "BUY", "MARKET"),
            {"quantity": "1", "side_effect_type": "BORROW"},
            "side_effect_type",
        ),
        (("BTCUSDT", "BUY", "MARKET"), {"quantity": "1", "is_isolated": "TRUE"}, "is_isolated"),
        (
            ("BTCUSDT", "BUY", "MARKET"),
            {"quantity": "1", "auto_repay_at_cancel": 1},
            "auto_repay_at_cancel",
        ),
    ],
)
async def test_bad_order_input_raises_before_sending(
    args: tuple[Any, ...], kwargs: dict[str, Any], param: str
) -> None:
    api = Recorder()
    with pytest.raises(ParameterError) as info:
        await api.new_order(*args, **kwargs)
    assert info.value.param == param
    assert api.calls == []


async def test_stop_orders_accept_trailing_delta_instead_of_stop_price() -> None:
    api = Recorder(ORDER)
    await api.new_order("BTCUSDT", "SELL", "STOP_LOSS", quantity="1", trailing_delta=100)
    assert dict(api.params)["trailingDelta"] == "100"


async def test_cancel_order() -> None:
    api = Recorder({"symbol": "BTCUSDT", "orderId": "28", "status": "CANCELED"})
    order = await api.cancel_order("BTCUSDT", orig_client_order_id="bma1", is_isolated=True)
    assert order.order_id == 28
    (call,) = api.calls
    assert call.params == [
        ("symbol", "BTCUSDT"),
        ("isIsolated", "TRUE"),
        ("origClientOrderId", "bma1"),
    ]
    assert call.client_order_id == "bma1"
    with pytest.raises(ParameterError) as info:
        await api.cancel_order("BTCUSDT")
    assert info.value.param == "order_id"
    assert len(api.calls) == 1


async def test_isolated_calls_need_a_symbol() -> None:
    api = Recorder()
    with pytest.raises(ParameterError) as info:
        await api.get_open_orders(is_isolated=True)
    assert info.value.param == "symbol"
    with pytest.raises(ParameterError):
        await api.get_order_count_usage(is_isolated=True)
    with pytest.raises(ParameterError):
        await api.get_open_order_lists(is_isolated=True)
    with pytest.raises(ParameterError) as info:
        await api.get_open_order_lists(symbol="BTCUSDT")  # cross: symbol not supported
    assert info.value.param == "symbol"
    with pytest.raises(ParameterError):
        await api.manual_liquidation("ISOLATED")
    assert api.calls == []
    api = Recorder([])
    await api.get_open_orders("BTCUSDT", is_isolated=True)
    assert api.params == [("symbol", "BTCUSDT"), ("isIsolated", "TRUE")]


async def test_cancel_open_orders_decodes_orders_and_order_lists() -> None:
    api = Recorder(
        [
            {"symbol": "BTCUSDT", "orderId": 1, "status": "CANCELED"},
            {"orderListId": 5, "contingencyType": "OCO", "orders": []},
        ]
    )
    first, second = await api.cancel_open_orders("BTCUSDT")
    assert isinstance(first, Order) and first.order_id == 1
    assert isinstance(second, OrderList) and second.order_list_id == 5


async def test_history_ranges_are_checked() -> None:
    api = Recorder()
    with pytest.raises(ParameterError) as info:
        await api.get_my_trades("BTCUSDT", start_time=10, end_time=5)
    assert info.value.param == "end_time"
    with pytest.raises(ParameterError):
        await api.get_all_orders("BTCUSDT", start_time=0, end_time=_DAY + 1)
    with pytest.raises(ParameterError):
        await api.get_interest_history(start_time=0, end_time=31 * _DAY)
    with pytest.raises(ParameterError):
        await api.get_capital_flow(start_time=0, end_time=CAPITAL_FLOW_WINDOW_MS + 1)
    with pytest.raises(ParameterError) as info:
        await api.get_all_order_lists(from_id=1, start_time=1)
    assert info.value.param == "from_id"
    with pytest.raises(ParameterError) as info:
        await api.get_borrow_repay_records("REPAY")
    assert info.value.param == "tx_id"
    assert api.calls == []


# Order lists


async def test_new_oco_generates_list_client_order_id() -> None:
    api = Recorder({"orderListId": 1, "listClientOrderId": "x"})
    await api.new_oco(
        "BTCUSDT",
        "SELL",
        "0.5",
        "31000",
        "29000",
        stop_limit_price="28900",
        stop_limit_time_in_force="GTC",
        side_effect_type="AUTO_REPAY",
        is_isolated=True,
    )
    (call,) = api.calls
    list_id = dict(call.params)["listClientOrderId"]
    assert _GENERATED_ID.fullmatch(list_id)
    assert call.client_order_id == list_id
    assert [key for key, _ in call.params] == [
        "symbol",
        "isIsolated",
        "listClientOrderId",
        "side",
        "quantity",
        "price",
        "stopPrice",
        "stopLimitPrice",
        "stopLimitTimeInForce",
        "sideEffectType",
    ]
    with pytest.raises(ParameterError) as info:
        await api.new_oco("BTCUSDT", "SELL", "1", "2", "1", stop_limit_price="1")
    assert info.value.param == "stop_limit_time_in_force"
    assert len(api.calls) == 1


async def test_new_oto_rules_and_params() -> None:
    api = Recorder(ORDER_LIST)
    await api.new_oto(
        "BTCUSDT",
        "LIMIT",
        "BUY",
        "100",
        "1",
        "STOP_LOSS_LIMIT",
        "SELL",
        "1",
        working_time_in_force="GTC",
        pending_price="95",
        pending_trailing_delta=50,
        pending_time_in_force="GTC",
        list_client_order_id="list-1",
    )
    (call,) = api.calls
    assert call.client_order_id == "list-1"
    assert [key for key, _ in call.params] == [
        "symbol",
        "listClientOrderId",
        "workingType",
        "workingSide",
        "workingPrice",
        "workingQuantity",
        "workingTimeInForce",
        "pendingSide",
        "pendingQuantity",
        "pendingType",
        "pendingPrice",
        "pendingTrailingDelta",
        "pendingTimeInForce",
    ]
    bad: list[tuple[dict[str, Any], str]] = [
        ({"working_type": "MARKET"}, "working_type"),
        ({"working_time_in_force": None}, "working_time_in_force"),
        ({"pending_price": None}, "pending_price"),
        (
            {"pending_type": "STOP_LOSS", "pending_price": None, "pending_time_in_force": None},
            "pending_price",
        ),
        ({"pending_type": "STOP_LOSS"}, "pending_time_in_force"),
        ({"pending_type": "MARKET", "pending_trailing_delta": None}, "pending_price"),
    ]
    for change, param in bad:
        kwargs: dict[str, Any] = {
            "working_type": "LIMIT",
            "working_time_in_force": "GTC",
            "pending_type": "STOP_LOSS_LIMIT",
            "pending_price": "95",
            "pending_trailing_delta": 50,
            "pending_time_in_force": "GTC",
        }
        kwargs.update(change)
        with pytest.raises(ParameterError) as info:
            await api.new_oto(
                "BTCUSDT",
                kwargs.pop("working_type"),
                "BUY",
                "100",
                "1",
                kwargs.pop("pending_type"),
                "SELL",
                "1",
                **kwargs,
            )
        assert info.value.param == param, change
    assert len(api.calls) == 1


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"type": "MARKET", "quantity": "1", "price": "1"}, "price"),
        ({"type": "MARKET", "quantity": "1", "stop_price": "1"}, "stop_price"),
        ({"type": "MARKET", "quantity": "1", "time_in_force": "GTC"}, "time_in_force"),
        ({"type": "MARKET", "quantity": "1", "iceberg_qty": "1"}, "iceberg_qty"),
        ({"type": "MARKET", "quantity": "1", "trailing_delta": 5}, "trailing_delta"),
        ({"type": "LIMIT", "quantity": "1", "price": "1", "time_in_force": "GTC",
          "stop_price": "1"}, "stop_price"),
        ({"type": "LIMIT_MAKER", "quantity": "1", "price": "1", "time_in_force": "GTC"},
         "time_in_force"),
        ({"type": "STOP_LOSS", "quantity": "1", "stop_price": "1", "price": "1"}, "price"),
        ({"type": "TAKE_PROFIT", "quantity": "1", "stop_price": "1", "iceberg_qty": "1"},
         "iceberg_qty"),
    ],
)  # fmt: skip
async def test_order_parameters_an_order_type_does_not_take_are_refused(
    kwargs: dict[str, Any], param: str
) -> None:
    # Binance answers these with -1106 "sent when not required"; refused before sending.
    api = Recorder()
    with pytest.raises(ParameterError) as info:
        await api.new_order("BTCUSDT", "BUY", **kwargs)
    assert info.value.param == param
    assert api.calls == []


async def test_oco_stop_leg_options_need_a_stop_limit_price() -> None:
    api = Recorder()
    cases: list[dict[str, Any]] = [{"stop_iceberg_qty": "1"}, {"stop_limit_time_in_force": "GTC"}]
    for options in cases:
        (name,) = options
        with pytest.raises(ParameterError) as info:
            await api.new_oco("BTCUSDT", "SELL", "1", "30000", "25000", **options)
        assert info.value.param == name
    assert api.calls == []


async def test_new_otoco_legs() -> None:
    api = Recorder(ORDER_LIST)
    await api.new_otoco(
        "BTCUSDT",
        "LIMIT",
        "BUY",
        "100",
        "1",
        "SELL",
        "1",
        "LIMIT_MAKER",
        working_time_in_force="GTC",
        pending_above_price="110",
        pending_below_type="STOP_LOSS_LIMIT",
        pending_below_price="89",
        pending_below_stop_price="90",
        pending_below_time_in_force="GTC",
    )
    params = api.params
    assert dict(params)["pendingAboveType"] == "LIMIT_MAKER"
    assert dict(params)["pendingAbovePrice"] == "110"
    assert dict(params)["pendingBelowType"] == "STOP_LOSS_LIMIT"
    assert dict(params)["pendingBelowStopPrice"] == "90"
    assert _GENERATED_ID.fullmatch(dict(params)["listClientOrderId"])
    with pytest.raises(ParameterError) as info:
        await api.new_otoco(
            "BTCUSDT", "LIMIT", "BUY", "100", "1", "SELL", "1", "LIMIT",
            working_time_in_force="GTC", pending_above_price="1",
        )  # fmt: skip
    assert info.value.param == "pending_above_type"
    with pytest.raises(ParameterError) as info:
        await api.new_otoco(
            "BTCUSDT", "LIMIT", "BUY", "100", "1", "SELL", "1", "STOP_LOSS",
            working_time_in_force="GTC",
        )  # fmt: skip
    assert info.value.param == "pending_above_stop_price"
    with pytest.raises(ParameterError) as info:
        await api.new_otoco(
            "BTCUSDT", "LIMIT", "BUY", "100", "1", "SELL", "1", "LIMIT_MAKER",
            working_time_in_force="GTC", pending_above_price="1", pending_below_price="2",
        )  # fmt: skip
    assert info.value.param == "pending_below_type"
    assert len(api.calls) == 1


async def test_order_list_queries() -> None:
    api = Recorder(ORDER_LIST)
    await api.get_order_list(orig_client_order_id="abc", symbol="BTCUSDT", is_isolated=True)
    assert api.params == [
        ("isIsolated", "TRUE"),
        ("symbol", "BTCUSDT"),
        ("origClientOrderId", "abc"),
    ]
    with pytest.raises(ParameterError) as info:
        await api.cancel_order_list("BTCUSDT")
    assert info.value.param == "order_list_id"


# Borrow, repay, transfer


async def test_borrow_and_repay() -> None:
    api = Recorder({"tranId": 11}, {"tranId": 12}, {"tranId": 13})
    borrowed = await api.borrow("BTC", Decimal("0.5"))
    repaid = await api.repay("USDT", 100, symbol="BTCUSDT")
    await api.repay("USDT", 1.25)
    assert (borrowed.tran_id, repaid.tran_id) == (11, 12)
    first, second, third = api.calls
    assert first.endpoint is ENDPOINTS["borrow"] and not first.endpoint.critical
    assert first.params == [
        ("asset", "BTC"),
        ("isIsolated", "FALSE"),
        ("amount", "0.5"),
        ("type", "BORROW"),
    ]
    assert second.endpoint is ENDPOINTS["repay"] and second.endpoint.critical
    assert second.params == [
        ("asset", "USDT"),
        ("isIsolated", "TRUE"),
        ("symbol", "BTCUSDT"),
        ("amount", "100"),
        ("type", "REPAY"),
    ]
    assert dict(third.params)["amount"] == "1.25"
    for bad in (0, -1, float("inf"), "x", True):
        with pytest.raises(ParameterError) as info:
            await api.borrow("BTC", bad)
        assert info.value.param == "amount"
    assert len(api.calls) == 3


async def test_universal_transfer() -> None:
    api = Recorder({"tranId": 5}, {"tranId": 6}, {"tranId": 7})
    result = await api.transfer(TransferType.MAIN_MARGIN, "USDT", "10")
    assert result.tran_id == 5
    await api.transfer("MARGIN_ISOLATEDMARGIN", "USDT", 10, to_symbol="BTCUSDT")
    await api.transfer(
        "ISOLATED_MARGIN_ISOLATED_MARGIN", "BTC", "1", from_symbol="A", to_symbol="B"
    )
    first, second, third = (call.params for call in api.calls)
    assert first == [("type", "MAIN_MARGIN"), ("asset", "USDT"), ("amount", "10")]
    assert second == [
        ("type", "MARGIN_ISOLATEDMARGIN"),
        ("asset", "USDT"),
        ("amount", "10"),
        ("toSymbol", "BTCUSDT"),
    ]
    assert third[0] == ("type", "ISOLATEDMARGIN_ISOLATEDMARGIN")
    assert third[-2:] == [("fromSymbol", "A"), ("toSymbol", "B")]
    for kind, kwargs, param in [
        ("MARGIN_ISOLATEDMARGIN", {}, "to_symbol"),
        ("ISOLATEDMARGIN_MARGIN", {}, "from_symbol"),
        ("MAIN_MARGIN", {"from_symbol": "BTCUSDT"}, "from_symbol"),
        ("MAIN_SPOT", {}, "type"),
    ]:
        with pytest.raises(ParameterError) as info:
            await api.transfer(kind, "USDT", "1", **kwargs)
        assert info.value.param == param
    assert len(api.calls) == 3


# Streams


async def test_listen_token_params() -> None:
    reply = {"token": "6xXx+/=", "expirationTime": 1758792204196}
    api = Recorder(reply, reply)
    token = await api.create_listen_token(symbol="BNBUSDT", validity_ms=86_400_000)
    assert isinstance(token, ListenToken)
    assert (token.token, token.expiration_time) == ("6xXx+/=", 1758792204196)
    await api.create_listen_token()
    first, second = api.calls
    assert first.params == [("isIsolated", "true"), ("symbol", "BNBUSDT"), ("validity", "86400000")]
    assert second.params == []
    with pytest.raises(ParameterError) as info:
        await api.create_listen_token(validity_ms=86_400_001)
    assert info.value.param == "validity_ms"
    assert len(api.calls) == 2


async def test_risk_stream_listen_key() -> None:
    api = Recorder({"listenKey": "abc"}, {}, {})
    key = await api.start_risk_data_stream()
    assert key.listen_key == "abc"
    await api.keepalive_risk_data_stream("abc")
    await api.close_risk_data_stream("abc")
    assert [call.params for call in api.calls] == [
        [],
        [("listenKey", "abc")],
        [("listenKey", "abc")],
    ]
    assert [call.endpoint.method for call in api.calls] == ["POST", "PUT", "DELETE"]


# Other builders


async def test_isolated_account_symbols_and_max_borrowable() -> None:
    api = Recorder({}, {"amount": "1.5", "borrowLimit": "60"})
    await api.get_isolated_account(["BTCUSDT", "ETHUSDT"])
    result = await api.get_max_borrowable("BTC", isolated_symbol="BTCUSDT")
    assert result.amount == Decimal("1.5")
    assert api.calls[0].params == [("symbols", "BTCUSDT,ETHUSDT")]
    assert api.calls[1].params == [("asset", "BTC"), ("isolatedSymbol", "BTCUSDT")]
    with pytest.raises(ParameterError) as info:
        await api.get_isolated_account(["A", "B", "C", "D", "E", "F"])
    assert info.value.param == "symbols"


async def test_lists_and_flags_on_the_wire() -> None:
    api = Recorder({}, {}, [], None, None)
    await api.convert_dust(["ADA", "DOT"])
    await api.toggle_bnb_burn(spot_bnb_burn=True, interest_bnb_burn=False)
    await api.get_next_hourly_interest_rate(["BTC", "ETH"], is_isolated=True)
    await api.small_liability_exchange("BTC,ETH")
    await api.add_loan_group_collateral_account(
        7, "member@example.com", enable_spot=False, enable_margin=True
    )
    dust, burn, rate, small, member = (call.params for call in api.calls)
    assert dust == [("asset", "ADA"), ("asset", "DOT"), ("accountType", "MARGIN")]
    assert burn == [("spotBNBBurn", "true"), ("interestBNBBurn", "false")]
    assert rate == [("assets", "BTC,ETH"), ("isIsolated", "TRUE")]
    assert small == [("assetNames", "BTC,ETH")]
    assert member == [
        ("groupId", "7"),
        ("subEmail", "member@example.com"),
        ("enableSpot", "FALSE"),
        ("enableMargin", "TRUE"),
    ]
    with pytest.raises(ParameterError):
        await api.toggle_bnb_burn()
    with pytest.raises(ParameterError) as info:
        await api.adjust_max_leverage(4)
    assert info.value.param == "max_leverage"


async def test_server_time() -> None:
    api = Recorder({"serverTime": 1499827319559}, {"serverTime": "soon"})
    assert await api.server_time() == 1499827319559
    assert api.calls[0].endpoint is SERVER_TIME and api.calls[0].params == []
    with pytest.raises(InvalidResponse):
        await api.server_time()


async def test_wrong_shape_becomes_invalid_response() -> None:
    api = Recorder([{"symbol": "X"}], {"orderId": "not-a-number"}, {"listenKey": None})
    with pytest.raises(InvalidResponse) as info:
        await api.get_account()
    assert "MarginAccount" in str(info.value)
    with pytest.raises(InvalidResponse):
        await api.get_order("BTCUSDT", order_id=1)
    with pytest.raises(InvalidResponse):
        await api.start_risk_data_stream()


async def test_secrets_stay_out_of_invalid_response() -> None:
    secret = "87ssWB7azoy6ACRfyp6OVOL5U3rtZptX31QWw2kWjl1jHEYRbyM1pd6qykRBQw8p"
    api = Recorder({"apiKey": 5.5j, "secretKey": secret})
    with pytest.raises(InvalidResponse) as info:
        await api.create_special_key("bot")
    assert secret not in str(info.value) and secret not in info.value.excerpt
    assert "'secretKey': '87ss…'" in info.value.excerpt  # the redaction rule's masked prefix


async def test_special_key_pem_loses_its_final_line_break_only() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"
    api = Recorder({"apiKey": "k"})
    await api.create_special_key("bot", public_key=pem + "\n")  # as PEM files end
    assert dict(api.calls[0].params)["publicKey"] == pem
    with pytest.raises(ParameterError) as info:
        await api.create_special_key("bot", public_key=" " + pem + "\n")
    assert info.value.param == "public_key"


# Pagination


def _page(start: int, count: int, total: int | None = None) -> dict[str, Any]:
    rows = [{"txId": start + i, "asset": "BTC"} for i in range(count)]
    return {"rows": rows, "total": total} if total is not None else {"rows": rows}


async def test_current_size_pages_until_a_short_page() -> None:
    api = Recorder(_page(0, 3), _page(3, 3), _page(6, 1))
    ids = [record.tx_id async for record in api.iter_interest_history(asset="BTC", size=3)]
    assert ids == list(range(7))
    assert [dict(call.params)["current"] for call in api.calls] == ["1", "2", "3"]
    assert all(dict(call.params)["size"] == "3" for call in api.calls)
    assert all(call.endpoint is ENDPOINTS["get_interest_history"] for call in api.calls)


async def test_pages_stop_at_total_and_on_empty_page() -> None:
    api = Recorder(_page(0, 2, total=4), _page(2, 2, total=4))
    rows = [row async for row in api.iter_borrow_repay_records("BORROW", start_time=1, size=2)]
    assert len(rows) == 4 and len(api.calls) == 2  # no third request for an empty page
    empty = Recorder({"rows": [], "total": 0})
    assert [row async for row in empty.iter_transfer_history()] == []
    assert len(empty.calls) == 1


async def test_total_wins_over_a_server_capped_page_size() -> None:
    api = Recorder(_page(0, 2, total=5), _page(2, 2, total=5), _page(4, 1, total=5))
    rows = [row async for row in api.iter_liquidation_loan_repay_history(size=100)]
    assert len(rows) == 5 and len(api.calls) == 3


async def test_iterators_validate_before_the_first_request() -> None:
    api = Recorder()
    with pytest.raises(ParameterError):
        api.iter_interest_history(size=101)
    with pytest.raises(ParameterError):
        api.iter_capital_flow(10, 5)
    with pytest.raises(ParameterError):
        api.iter_universal_transfer_history("MARGIN_ISOLATEDMARGIN")
    with pytest.raises(ParameterError):
        api.iter_my_trades("BTC USDT")
    assert api.calls == []


async def test_from_id_cursor_pages() -> None:
    def reply(endpoint: Endpoint, params: list[tuple[str, str]]) -> Any:
        start = int(dict(params)["fromId"])
        # 5 trades exist, ids 10..14; 2 per page.
        return [{"id": i, "symbol": "BTCUSDT", "orderId": i} for i in range(max(start, 10), 15)][:2]

    api = Recorder(reply=reply)
    ids = [trade.id async for trade in api.iter_my_trades("BTCUSDT", from_id=0, limit=2)]
    assert ids == [10, 11, 12, 13, 14]
    assert [dict(call.params)["fromId"] for call in api.calls] == ["0", "12", "14"]


async def test_capital_flow_is_split_into_7_day_windows_and_paged() -> None:
    def reply(endpoint: Endpoint, params: list[tuple[str, str]]) -> Any:
        query = dict(params)
        start, end = int(query["startTime"]), int(query["endTime"])
        assert end - start < CAPITAL_FLOW_WINDOW_MS
        # The first window holds 3 entries (2 per page); the others 1 each.
        base = start // 1000
        if start == 0:
            after = int(query["fromId"])
            rows = [{"id": i, "timestamp": i, "amount": "1"} for i in (1, 2, 3) if i > after]
            return rows[:2]
        return [{"id": base, "timestamp": start, "amount": "1"}]

    api = Recorder(reply=reply)
    end = 20 * _DAY
    flows = [flow async for flow in api.iter_capital_flow(0, end, asset="USDT", limit=2)]
    windows = [(dict(c.params)["startTime"], dict(c.params)["endTime"]) for c in api.calls]
    assert windows[0] == ("0", str(CAPITAL_FLOW_WINDOW_MS - 1))
    assert windows[-1][1] == str(end)
    distinct = sorted(set(windows), key=lambda w: int(w[0]))
    assert len(distinct) == 3
    for (_, prev_end), (next_start, _) in itertools.pairwise(distinct):
        assert int(next_start) == int(prev_end) + 1
    assert [flow.id for flow in flows][:3] == [1, 2, 3]
    assert len(flows) == 5
    first_window = [c for c in api.calls if dict(c.params)["startTime"] == "0"]
    assert [dict(c.params)["fromId"] for c in first_window] == ["0", "2"]
    assert all(dict(c.params)["asset"] == "USDT" for c in api.calls)


async def test_capital_flow_windows_are_generated_lazily_and_bounded() -> None:
    # The longest range allowed: its 1,000 windows are not built up front, only as walked.
    api = Recorder(reply=lambda endpoint, params: [])
    longest = MAX_WINDOWS * CAPITAL_FLOW_WINDOW_MS - 1
    flows = api.iter_capital_flow(0, longest)
    assert api.calls == []
    with pytest.raises(StopAsyncIteration):
        await anext(flows)
    assert len(api.calls) == MAX_WINDOWS
    assert dict(api.calls[-1].params)["endTime"] == str(longest)
    for end in (longest + 1, MAX_TIMESTAMP_MS, 2**63):
        with pytest.raises(ParameterError) as info:
            api.iter_capital_flow(0, end)
        assert info.value.param == "end_time"


async def test_special_key_queries_need_the_api_key() -> None:
    api = Recorder({}, {})
    await api.get_special_key("k1", symbol="BTCUSDT")
    await api.edit_special_key_ip(["1.2.3.4", "::1"], api_key="k1")
    assert [call.params for call in api.calls] == [
        [("apiKey", "k1"), ("symbol", "BTCUSDT")],
        [("apiKey", "k1"), ("ip", "1.2.3.4,::1")],
    ]
    with pytest.raises(ParameterError) as info:
        await api.get_special_key(None)  # type: ignore[arg-type]
    assert info.value.param == "api_key"
    with pytest.raises(ParameterError) as info:
        await api.edit_special_key_ip("1.2.3.4", api_key=None)  # type: ignore[arg-type]
    assert info.value.param == "api_key"
    assert len(api.calls) == 2


async def test_first_version_loan_group_queries() -> None:
    record = {"groupId": 7, "ltv": "0.5", "totalLiability": "10", "newField": 1}
    api = Recorder([record], record, [record])
    (parent,) = await api.get_loan_groups(group_id=7)
    assert (parent.group_id, parent.ltv, parent.raw["newField"]) == (7, Decimal("0.5"), 1)
    # The credit account's query: an object is taken as an array of one.
    assert await api.get_loan_group() == [parent] == await api.get_loan_group()
    assert [call.params for call in api.calls] == [[("groupId", "7")], [], []]
    with pytest.raises(InvalidResponse):
        await Recorder("not a record").get_loan_group()


def _binance_capital_flow(rows: list[dict[str, Any]]) -> Reply:
    """``_call`` of Binance's capital flow: ``id > fromId`` oldest first, else the latest rows."""

    def reply(endpoint: Endpoint, params: list[tuple[str, str]]) -> Any:
        assert endpoint is ENDPOINTS["get_capital_flow"]
        query = dict(params)
        limit = int(query["limit"])
        start, end = int(query["startTime"]), int(query["endTime"])
        found = [row for row in rows if start <= row["timestamp"] <= end]
        if "fromId" not in query:
            return found[-limit:]
        return [row for row in found if row["id"] > int(query["fromId"])][:limit]

    return reply


async def test_capital_flow_walks_a_crowded_window_from_its_oldest_row() -> None:
    # 7 rows in the first 7-day window and 2 in the second, 3 per request: a walk that started
    # from the latest rows of a window (no fromId) would never see ids 1-4.
    rows = [{"id": i, "timestamp": i * 1000, "asset": "USDT", "amount": "1"} for i in range(1, 8)]
    rows += [{"id": 20 + i, "timestamp": 8 * _DAY + i, "amount": "2"} for i in range(2)]
    api = Recorder(reply=_binance_capital_flow(rows))
    flows = [flow async for flow in api.iter_capital_flow(0, 10 * _DAY, limit=3)]
    assert [flow.id for flow in flows] == [*range(1, 8), 20, 21]
    assert [dict(call.params)["fromId"] for call in api.calls] == ["0", "3", "6", "0"]
    # Without the walk, one request returns only the latest rows of the window.
    latest = await api.get_capital_flow(start_time=0, end_time=_DAY, limit=3)
    assert [flow.id for flow in latest] == [5, 6, 7]


async def test_id_walks_drop_rows_below_the_cursor_and_stop() -> None:
    # A server that ignores fromId answers every request with the same rows: they are yielded
    # once, then the walk stops instead of looping.
    api = Recorder(reply=lambda endpoint, params: [{**ORDER, "id": n} for n in (10, 11)])
    ids = [trade.id async for trade in api.iter_my_trades("BTCUSDT", from_id=0, limit=2)]
    assert ids == [10, 11]
    assert [dict(call.params)["fromId"] for call in api.calls] == ["0", "12"]


async def test_all_orders_walk_by_order_id() -> None:
    def reply(endpoint: Endpoint, params: list[tuple[str, str]]) -> Any:
        start = int(dict(params)["orderId"])
        return [{"orderId": i, "symbol": "BTCUSDT"} for i in range(max(start, 3), 6)][:2]

    api = Recorder(reply=reply)
    orders = api.iter_all_orders("BTCUSDT", order_id=1, limit=2, is_isolated=True)
    assert [order.order_id async for order in orders] == [3, 4, 5]
    assert api.calls[0].params == [
        ("symbol", "BTCUSDT"),
        ("isIsolated", "TRUE"),
        ("orderId", "1"),
        ("limit", "2"),
    ]
    assert all(call.endpoint is ENDPOINTS["get_all_orders"] for call in api.calls)


# Each paged history: (get method, iterator, positional args, filter kwargs), for the check that
# the iterator sends exactly what the get method sends for the same filters.
PAGED: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
    (
        "get_force_liquidation_records",
        "iter_force_liquidation_records",
        (),
        {"start_time": 1, "end_time": 2, "isolated_symbol": "BTCUSDT"},
    ),
    ("get_small_liability_exchange_history", "iter_small_liability_exchange_history", (), {}),
    ("get_liquidation_loan_repay_history", "iter_liquidation_loan_repay_history", (), {}),
    (
        "get_borrow_repay_records",
        "iter_borrow_repay_records",
        ("REPAY",),
        {"start_time": 5, "asset": "BTC", "isolated_symbol": "BTCUSDT"},
    ),
    ("get_interest_history", "iter_interest_history", (), {"asset": "BTC", "end_time": 9}),
    (
        "get_universal_transfer_history",
        "iter_universal_transfer_history",
        ("MARGIN_ISOLATEDMARGIN",),
        {"to_symbol": "BTCUSDT"},
    ),
    ("get_transfer_history", "iter_transfer_history", (), {"type": "ROLL_IN"}),
    ("get_closed_loan_groups", "iter_closed_loan_groups", (), {}),
    (
        "get_loan_group_borrow_repay_records",
        "iter_loan_group_borrow_repay_records",
        ("BORROW",),
        {"group_id": 3, "asset": "USDT"},
    ),
    ("get_loan_group_interest_history", "iter_loan_group_interest_history", (), {"group_id": 3}),
    (
        "get_loan_group_force_liquidation_records",
        "iter_loan_group_force_liquidation_records",
        (),
        {"start_time": 1},
    ),
    (
        "get_loan_group_force_liquidation_transfer_records",
        "iter_loan_group_force_liquidation_transfer_records",
        (),
        {"end_time": 1},
    ),
]


def test_paged_table_covers_every_iterator() -> None:
    iterators = {name for name in dir(MarginAPI) if name.startswith("iter_")}
    cursors = {"iter_all_orders", "iter_my_trades", "iter_capital_flow"}
    assert {iterator for _, iterator, *_ in PAGED} == iterators - cursors


@pytest.mark.parametrize(("get", "iterator", "args", "filters"), PAGED, ids=[p[1] for p in PAGED])
async def test_iterators_send_what_their_get_method_sends(
    get: str, iterator: str, args: tuple[Any, ...], filters: dict[str, Any]
) -> None:
    api = Recorder({"rows": [{}], "total": 1}, {"rows": [{}], "total": 1})
    page = await getattr(api, get)(*args, current=1, size=5, **filters)
    rows = [row async for row in getattr(api, iterator)(*args, size=5, **filters)]
    fetched, walked = api.calls
    assert walked.endpoint is fetched.endpoint is ENDPOINTS[get]
    assert walked.params == fetched.params
    # Decoded into the history's record model, like the page's rows (a raw dict would differ).
    assert rows == list(page.rows)


@pytest.mark.parametrize(
    ("iterator", "args", "kwargs", "param"),
    [
        ("iter_force_liquidation_records", (), {"isolated_symbol": "A B"}, "isolated_symbol"),
        ("iter_small_liability_exchange_history", (), {"start_time": 2, "end_time": 1}, "end_time"),
        ("iter_liquidation_loan_repay_history", (), {"size": 0}, "size"),
        ("iter_borrow_repay_records", ("LEND",), {"start_time": 1}, "type"),
        ("iter_borrow_repay_records", ("BORROW",), {"start_time": None}, "start_time"),
        ("iter_interest_history", (), {"start_time": 0, "end_time": 31 * _DAY}, "end_time"),
        ("iter_transfer_history", (), {"type": "SIDEWAYS"}, "type"),
        ("iter_closed_loan_groups", (), {"size": 101}, "size"),
        ("iter_loan_group_interest_history", (), {"group_id": -1}, "group_id"),
        ("iter_loan_group_borrow_repay_records", ("BORROW",), {"asset": ""}, "asset"),
        ("iter_all_orders", ("BTCUSDT",), {"limit": 501}, "limit"),
        ("iter_my_trades", ("BTCUSDT",), {"is_isolated": "TRUE"}, "is_isolated"),
        ("iter_capital_flow", (0, 1), {"type": "GIFT"}, "type"),
        ("iter_capital_flow", (0, 1), {"limit": 1001}, "limit"),
    ],
)
def test_every_iterator_checks_its_arguments_before_any_request(
    iterator: str, args: tuple[Any, ...], kwargs: dict[str, Any], param: str
) -> None:
    api = Recorder()
    with pytest.raises(ParameterError) as info:
        getattr(api, iterator)(*args, **kwargs)
    assert info.value.param == param
    assert api.calls == []


# The cases the review found (issue 8): each used to send "None", raise an untyped error or
# exhaust memory; each is now a ParameterError naming the parameter, and nothing is sent.
@pytest.mark.parametrize(
    ("method", "args", "kwargs", "param"),
    [
        ("transfer", (None, "USDT", "1"), {}, "type"),
        ("convert_dust", (None,), {}, "assets"),
        ("get_next_hourly_interest_rate", (123,), {}, "assets"),
        ("close_loan_group", (None,), {}, "group_id"),
        ("borrow_loan_group", (None, "USDT", "1"), {}, "group_id"),
        ("new_order", (None, "BUY", "MARKET"), {"quantity": "1"}, "symbol"),
        ("borrow", ("BTC", "6e99872863"), {}, "amount"),
        ("borrow", ("BTC", "1e999999"), {}, "amount"),
        ("borrow", ("BTC", "1_000"), {}, "amount"),
        ("borrow", ("BTC", "١٢"), {}, "amount"),
        ("borrow", ("BTC", "１２"), {}, "amount"),
        ("borrow", ("BTC", " 12"), {}, "amount"),
        ("borrow", ("btc", "1"), {}, "asset"),
        ("get_price_index", ("BTC\ud800",), {}, "symbol"),
        ("create_special_key", ("bot\ud800",), {}, "api_name"),
        ("get_price_index", ("BTCUSDT" * 700,), {}, "symbol"),
        ("keepalive_risk_data_stream", (None,), {}, "listen_key"),
    ],
)
async def test_review_cases_are_parameter_errors(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any], param: str
) -> None:
    api = Recorder()
    with pytest.raises(ParameterError) as info:
        await getattr(api, method)(*args, **kwargs)
    assert info.value.param == param
    assert api.calls == []
