"""Models and the generic decoder, fed the response examples of Binance's docs."""

from __future__ import annotations

import dataclasses
import decimal
import inspect
import typing
from decimal import Decimal
from typing import Any

import orjson
import pytest

from binance_margin_async import models
from binance_margin_async.models import (
    ActiveLoanGroup,
    AvailableInventory,
    BnbBurnStatus,
    BorrowRepayRecords,
    CapitalFlow,
    CapitalFlowType,
    CollateralRatio,
    CrossMarginFeeData,
    DecodeError,
    DelistSchedule,
    DustAssets,
    DustConversion,
    DustLog,
    DustLogDetail,
    DustTransferResult,
    Fill,
    ForceLiquidationRecords,
    InterestHistory,
    InterestRate,
    InterestType,
    IsolatedAsset,
    IsolatedMarginAccount,
    IsolatedMarginFeeData,
    IsolatedMarginPair,
    IsolatedPairAccount,
    ListenKey,
    ListenToken,
    ListSchedule,
    LoanGroupBorrowRepayRecords,
    LoanGroupForceLiquidations,
    LoanGroupLiquidationTransfers,
    LoanGroupLtv,
    ManualLiquidationResult,
    MarginAccount,
    MarginAccountType,
    MarginAsset,
    MarginLevelStatus,
    MarginPair,
    MarginTransferHistory,
    MaxBorrowable,
    MaxTransferable,
    Order,
    OrderCountUsage,
    OrderList,
    OrderSide,
    OrderStatus,
    OrderType,
    Page,
    PreventedMatch,
    RestrictedAssets,
    RiskBasedLiquidationRatio,
    SelfTradePreventionMode,
    SmallLiabilityCoin,
    SmallLiabilityExchangeRecords,
    SpecialKey,
    TimeInForce,
    Trade,
    TransactionId,
    TransferStatus,
    UniversalTransferHistory,
    UserAsset,
    decode,
    decode_list,
)

D = Decimal


def _json(text: str) -> Any:
    return orjson.loads(text)


NEW_ORDER_FULL = _json("""{
  "symbol": "BTCUSDT", "orderId": 28, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
  "isIsolated": true, "transactTime": 1507725176595, "price": "1.00000000",
  "origQty": "10.00000000", "executedQty": "10.00000000", "cummulativeQuoteQty": "10.00000000",
  "status": "FILLED", "timeInForce": "GTC", "type": "MARKET", "side": "SELL",
  "marginBuyBorrowAmount": 5, "marginBuyBorrowAsset": "BTC",
  "selfTradePreventionMode": "NONE",
  "fills": [
    {"price": "4000.00000000", "qty": "1.00000000", "commission": "4.00000000",
     "commissionAsset": "USDT", "tradeId": 56},
    {"price": "3999.00000000", "qty": "5.00000000", "commission": "19.99500000",
     "commissionAsset": "USDT", "tradeId": 57}
  ]
}""")

ACCOUNT = _json("""{
  "created": true, "borrowEnabled": true, "marginLevel": "11.64405625",
  "collateralMarginLevel": "3.2", "totalAssetOfBtc": "6.82728457",
  "totalLiabilityOfBtc": "0.58633215", "totalNetAssetOfBtc": "6.24095242",
  "TotalCollateralValueInUSDT": "5.82728457", "totalOpenOrderLossInUSDT": "582.728457",
  "tradeEnabled": true, "transferInEnabled": true, "transferOutEnabled": true,
  "accountType": "MARGIN_1",
  "userAssets": [
    {"asset": "BTC", "borrowed": "0.00000000", "free": "0.00499500", "interest": "0.00000000",
     "locked": "0.00000000", "netAsset": "0.00499500"},
    {"asset": "BNB", "borrowed": "201.66666672", "free": "2346.50000000",
     "interest": "0.00000000", "locked": "0.00000000", "netAsset": "2144.83333328"}
  ]
}""")

ISOLATED_ASSET = {
    "asset": "BTC",
    "borrowEnabled": True,
    "borrowed": "0.00000000",
    "free": "0.00000000",
    "interest": "0.00000000",
    "locked": "0.00000000",
    "netAsset": "0.00000000",
    "netAssetOfBtc": "0.00000000",
    "repayEnabled": True,
    "totalAsset": "0.00000000",
}
ISOLATED_ACCOUNT = {
    "assets": [
        {
            "baseAsset": ISOLATED_ASSET,
            "quoteAsset": dict(ISOLATED_ASSET, asset="USDT"),
            "symbol": "BTCUSDT",
            "isolatedCreated": True,
            "enabled": True,
            "marginLevel": "0.00000000",
            "marginLevelStatus": "EXCESSIVE",
            "marginRatio": "0.00000000",
            "indexPrice": "10000.00000000",
            "liquidatePrice": "1000.00000000",
            "liquidateRate": "1.00000000",
            "tradeEnabled": True,
        }
    ],
    "totalAssetOfBtc": "0.00000000",
    "totalLiabilityOfBtc": "0.00000000",
    "totalNetAssetOfBtc": "0.00000000",
}

OCO = _json("""{
  "orderListId": 0, "contingencyType": "OCO", "listStatusType": "EXEC_STARTED",
  "listOrderStatus": "EXECUTING", "listClientOrderId": "JYVpp3F0f5CAG15DhtrqLp",
  "transactionTime": 1563417480525, "symbol": "LTCBTC", "marginBuyBorrowAmount": "5",
  "marginBuyBorrowAsset": "BTC", "isIsolated": false,
  "orders": [
    {"symbol": "LTCBTC", "orderId": 2, "clientOrderId": "Kk7sqHb9J6mJWTMDVW7Vos"},
    {"symbol": "LTCBTC", "orderId": 3, "clientOrderId": "xTXKaGYd4bluPVp78IVRvl"}
  ],
  "orderReports": [
    {"symbol": "LTCBTC", "orderId": 2, "orderListId": 0,
     "clientOrderId": "Kk7sqHb9J6mJWTMDVW7Vos", "transactTime": 1563417480525,
     "price": "0.000000", "origQty": "0.624363", "executedQty": "0.000000",
     "cummulativeQuoteQty": "0.000000", "status": "NEW", "timeInForce": "GTC",
     "type": "STOP_LOSS", "side": "BUY", "stopPrice": "0.960664"}
  ]
}""")

# (model, payload, expected field values): one realistic example per response shape.
SINGLE_CASES: list[tuple[type, Any, dict[str, Any]]] = [
    (
        Order,
        NEW_ORDER_FULL,
        {
            "order_id": 28,
            "is_isolated": True,
            "cumulative_quote_qty": D("10"),
            "status": OrderStatus.FILLED,
            "type": OrderType.MARKET,
            "side": OrderSide.SELL,
            "time_in_force": TimeInForce.GTC,
            "margin_buy_borrow_amount": D(5),
            "self_trade_prevention_mode": SelfTradePreventionMode.NONE,
        },
    ),
    (
        Order,
        {
            "symbol": "LTCBTC",
            "isIsolated": True,
            "orderId": "28",
            "origClientOrderId": "myOrder1",
            "clientOrderId": "cancelMyOrder1",
            "price": "1.00000000",
            "status": "CANCELED",
        },
        {"order_id": 28, "orig_client_order_id": "myOrder1", "status": OrderStatus.CANCELED},
    ),
    (
        MarginAccount,
        ACCOUNT,
        {
            "margin_level": D("11.64405625"),
            "total_collateral_value_in_usdt": D("5.82728457"),
            "total_open_order_loss_in_usdt": D("582.728457"),
            "account_type": MarginAccountType.MARGIN_1,
            "transfer_out_enabled": True,
        },
    ),
    (IsolatedMarginAccount, ISOLATED_ACCOUNT, {"total_asset_of_btc": D(0)}),
    (
        OrderList,
        OCO,
        {
            "order_list_id": 0,
            "list_client_order_id": "JYVpp3F0f5CAG15DhtrqLp",
            "is_isolated": False,
        },
    ),
    (TransactionId, {"tranId": 100000001}, {"tran_id": 100000001}),
    (MaxBorrowable, {"amount": "1.69248805", "borrowLimit": "60"}, {"borrow_limit": D(60)}),
    (
        BorrowRepayRecords,
        {
            "rows": [
                {
                    "type": "AUTO",
                    "isolatedSymbol": "BNBUSDT",
                    "amount": "14.00000000",
                    "asset": "BNB",
                    "interest": "0.01866667",
                    "principal": "13.98133333",
                    "status": "CONFIRMED",
                    "timestamp": 1563438204000,
                    "txId": 2970933056,
                }
            ],
            "total": 1,
        },
        {"total": 1},
    ),
    (
        InterestHistory,
        {
            "rows": [
                {
                    "txId": 1352286576452864727,
                    "interestAccuredTime": 1672160400000,
                    "asset": "USDT",
                    "rawAsset": "USDT",
                    "principal": "45.3313",
                    "interest": "0.00024995",
                    "interestRate": "0.00013233",
                    "type": "ON_BORROW",
                    "isolatedSymbol": "BNBUSDT",
                }
            ],
            "total": 1,
        },
        {"total": 1},
    ),
    (
        MarginTransferHistory,
        {
            "rows": [
                {
                    "amount": "0.10000000",
                    "asset": "BNB",
                    "status": "CONFIRMED",
                    "timestamp": 1566898617,
                    "txId": 5240372201,
                    "type": "ROLL_IN",
                    "transFrom": "SPOT",
                    "transTo": "ISOLATED_MARGIN",
                }
            ],
            "total": 1,
        },
        {"total": 1},
    ),
    (
        UniversalTransferHistory,
        {
            "total": 2,
            "rows": [
                {
                    "asset": "USDT",
                    "amount": "1",
                    "type": "MAIN_MARGIN",
                    "status": "CONFIRMED",
                    "tranId": 11415955596,
                    "timestamp": 1544433328000,
                }
            ],
        },
        {"total": 2},
    ),
    (
        ForceLiquidationRecords,
        {
            "rows": [
                {
                    "avgPrice": "0.00388359",
                    "executedQty": "31.39000000",
                    "orderId": 180015097,
                    "price": "0.00388110",
                    "qty": "31.39000000",
                    "side": "SELL",
                    "symbol": "BNBBTC",
                    "timeInForce": "GTC",
                    "isIsolated": True,
                    "updatedTime": 1558941374745,
                }
            ],
            "total": 1,
        },
        {"total": 1},
    ),
    (
        SmallLiabilityExchangeRecords,
        {
            "total": 1,
            "rows": [
                {
                    "asset": "ETH",
                    "amount": "0.00083434",
                    "targetAsset": "BUSD",
                    "targetAmount": "1.37576819",
                    "bizType": "EXCHANGE_SMALL_LIABILITY",
                    "timestamp": 1672801339253,
                }
            ],
        },
        {"total": 1},
    ),
    (
        AvailableInventory,
        {"assets": {"MATIC": "100000000", "SHIB": "97409653"}, "updateTime": 1699272487},
        {"assets": {"MATIC": D(100000000), "SHIB": D(97409653)}, "update_time": 1699272487},
    ),
    (
        RestrictedAssets,
        {"openLongRestrictedAsset": ["CHZ"], "maxCollateralExceededAsset": ["CHZ", "BNX"]},
        {"open_long_restricted_asset": ("CHZ",), "max_collateral_exceeded_asset": ("CHZ", "BNX")},
    ),
    (BnbBurnStatus, {"spotBNBBurn": True, "interestBNBBurn": False}, {"interest_bnb_burn": False}),
    (
        SpecialKey,
        {
            "apiKey": "npOzOAeLVgr2TuxWfNo43AaPWpBbJEoKezh1o8mSQb6ryE2odE11A4AoVlJbQoGx",
            "secretKey": "87ssWB7azoy6ACRfyp6OVOL5U3rtZptX31QWw2kWjl1jHEYRbyM1pd6qykRBQw8p",
            "type": "HMAC_SHA256",
        },
        {"type": "HMAC_SHA256"},
    ),
    (
        ListenToken,
        {
            "token": "6xXxePXwZRjVSHKhzUCCGnmN3fkvMTXru+pYJS8RwijXk9Vcyr3rkwfVOTcP2OkONqciYA",
            "expirationTime": 1758792204196,
        },
        {"expiration_time": 1758792204196},
    ),
    (ListenKey, {"listenKey": "T3ee22BIYuWqmvne0HNq2A2WsFlEtLhvWCtItw6ffhhdmjifQ2tRbuKkTHhr"}, {}),
    (
        DustAssets,
        {
            "details": [
                {
                    "asset": "ADA",
                    "assetFullName": "ADA",
                    "amountFree": "6.21",
                    "toBTC": "0.00016848",
                    "toBNB": "0.01777302",
                    "toBNBOffExchange": "0.01741756",
                    "exchange": "0.00035546",
                }
            ],
            "totalTransferBtc": "0.00016848",
            "totalTransferBNB": "0.01777302",
            "dribbletPercentage": "0.02",
        },
        {"total_transfer_bnb": D("0.01777302"), "dribblet_percentage": D("0.02")},
    ),
    (
        DustConversion,
        {
            "totalServiceCharge": "0.02102542",
            "totalTransfered": "1.05127099",
            "transferResult": [
                {
                    "amount": "0.03000000",
                    "fromAsset": "ETH",
                    "operateTime": 1563368549307,
                    "serviceChargeAmount": "0.00500000",
                    "tranId": 2970932918,
                    "transferedAmount": "0.25000000",
                }
            ],
        },
        {"total_transferred": D("1.05127099")},
    ),
    (
        DustLog,
        {
            "total": 1,
            "userAssetDribblets": [
                {
                    "operateTime": 1615985535000,
                    "totalTransferedAmount": "0.00132256",
                    "totalServiceChargeAmount": "0.00002699",
                    "transId": 45178372831,
                    "userAssetDribbletDetails": [
                        {
                            "transId": 4359321,
                            "serviceChargeAmount": "0.000009",
                            "amount": "0.0009",
                            "operateTime": 1615985535000,
                            "transferedAmount": "0.000441",
                            "fromAsset": "USDT",
                        }
                    ],
                }
            ],
        },
        {"total": 1},
    ),
    (
        LoanGroupBorrowRepayRecords,
        {
            "total": 1,
            "rows": [
                {
                    "tranId": 1648963682,
                    "assetName": "USDT",
                    "amount": 300,
                    "principal": 298,
                    "interest": 2,
                    "status": "CONFIRM",
                    "type": "REPAY",
                    "timestamp": 1750420899036,
                }
            ],
        },
        {"total": 1},
    ),
    (
        LoanGroupForceLiquidations,
        {
            "total": 1,
            "rows": [
                {
                    "groupId": 6,
                    "startLtv": 1,
                    "endLtv": 0,
                    "liquidationStartTime": 1748381716906,
                    "liquidationEndTime": 1748525848742,
                    "totalNetEquity": 16671.5507973,
                    "totalMaintenanceMargin": 0,
                    "totalLiability": 16667.926,
                    "liquidationSnapshot": {"snapshots": [{"memberType": "CREDIT"}]},
                }
            ],
        },
        {"total": 1},
    ),
    (
        LoanGroupLiquidationTransfers,
        {
            "total": 1,
            "rows": [
                {
                    "liquidationId": 56,
                    "liquidationTransferRecord": [
                        {
                            "transferTime": 1765378400855,
                            "fromUid": 1000277033525,
                            "fromAccountType": "PORTFOLIO_MARGIN",
                            "toUid": 1000277033505,
                            "toAccountType": "PORTFOLIO_MARGIN",
                            "status": "CONFIRM",
                            "assets": [{"assetName": "USDT", "amount": "17750.6316"}],
                        }
                    ],
                }
            ],
        },
        {"total": 1},
    ),
]

LIST_CASES: list[tuple[type, Any]] = [
    (Order, [NEW_ORDER_FULL, {"symbol": "BNBBTC", "orderId": 1, "isWorking": True}]),
    (
        Trade,
        [
            {
                "commission": "0.00006000",
                "commissionAsset": "BTC",
                "id": 34,
                "isBestMatch": True,
                "isBuyer": False,
                "isMaker": False,
                "orderId": 39324,
                "price": "0.02000000",
                "qty": "3.00000000",
                "symbol": "BNBBTC",
                "isIsolated": False,
                "time": 1561973357171,
            }
        ],
    ),
    (
        OrderCountUsage,
        [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": 10000,
                "count": 0,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": 20000,
                "count": 0,
            },
        ],
    ),
    (
        PreventedMatch,
        [
            {
                "symbol": "BTCUSDT",
                "preventedMatchId": 1,
                "takerOrderId": 5,
                "makerSymbol": "BTCUSDT",
                "makerOrderId": 3,
                "tradeGroupId": 1,
                "selfTradePreventionMode": "EXPIRE_MAKER",
                "price": "1.100000",
                "makerPreventedQuantity": "1.300000",
                "transactTime": 1669101687094,
            }
        ],
    ),
    (
        CapitalFlow,
        [
            {
                "id": 123456,
                "tranId": 123123,
                "timestamp": 1691116657000,
                "asset": "USDT",
                "symbol": "BTCUSDT",
                "type": "BORROW",
                "amount": "101",
            }
        ],
    ),
    (
        InterestRate,
        [
            {
                "asset": "BTC",
                "dailyInterestRate": "0.00025000",
                "timestamp": 1611544731000,
                "vipLevel": 1,
            }
        ],
    ),
    (
        CrossMarginFeeData,
        [
            {
                "vipLevel": 0,
                "coin": "BTC",
                "transferIn": True,
                "borrowable": True,
                "dailyInterest": "0.00026125",
                "yearlyInterest": "0.0953",
                "borrowLimit": "180",
                "marginablePairs": ["BNBBTC", "TRXBTC", "ETHBTC", "BTCUSDT"],
            }
        ],
    ),
    (
        IsolatedMarginFeeData,
        [
            {
                "vipLevel": 0,
                "symbol": "BTCUSDT",
                "leverage": "10",
                "data": [{"coin": "BTC", "dailyInterest": "0.00026125", "borrowLimit": "270"}],
            }
        ],
    ),
    (
        CollateralRatio,
        [
            {
                "collaterals": [
                    {"minUsdValue": "0", "maxUsdValue": "13000000", "discountRate": "1"},
                    {"minUsdValue": "20000000", "discountRate": "0"},
                ],
                "assetNames": ["BNX"],
            }
        ],
    ),
    (
        DelistSchedule,
        [
            {
                "delistTime": 1686161202000,
                "crossMarginAssets": ["BTC", "USDT"],
                "isolatedMarginSymbols": ["ADAUSDT", "BNBUSDT"],
            }
        ],
    ),
    (
        ListSchedule,
        [{"listTime": 1686161202000, "crossMarginAssets": ["ADA"], "isolatedMarginSymbols": []}],
    ),
    (RiskBasedLiquidationRatio, [{"asset": "USDC", "riskBasedLiquidationRatio": "0.01"}]),
    (
        MarginAsset,
        [
            {
                "assetFullName": "USD coin",
                "assetName": "USDC",
                "isBorrowable": True,
                "isMortgageable": True,
                "userMinBorrow": "0.00000000",
                "userMinRepay": "0.00000000",
                "delistTime": 1704973040,
            }
        ],
    ),
    (
        LoanGroupLtv,
        [
            {
                "groupId": 1,
                "parentEmail": "parent@test.com",
                "creditEmail": "credit@test.com",
                "updateTime": 1752137105623,
                "ltv": "0.592",
                "totalNetEquity": "26.35196946",
                "maxTransferOutAmount": "0",
                "liabilities": [{"assetName": "USDT", "principal": "15.30718771", "interest": "0"}],
                "collateralAccounts": [
                    {
                        "email": "collateral001@test.com",
                        "type": "COLLATERAL",
                        "wallets": [
                            {"accountType": "SPOT", "netEquity": "5", "maintainMargin": "0"}
                        ],
                    }
                ],
            }
        ],
    ),
    (
        ActiveLoanGroup,
        [
            {
                "groupId": 10001,
                "members": [
                    {
                        "email": "1001@test.com",
                        "type": "CREDIT",
                        "enableMargin": True,
                        "enableSpot": True,
                    }
                ],
                "createTime": 1747637956083,
            }
        ],
    ),
]


def _example(cls: type) -> Any:
    """The doc example payload of ``cls`` from the tables above."""
    for case_cls, payload, *_ in [*SINGLE_CASES, *LIST_CASES]:
        if case_cls is cls:
            return payload
    raise LookupError(cls)


@pytest.mark.parametrize(("cls", "payload", "expected"), SINGLE_CASES)
def test_decode_doc_examples(cls: type, payload: Any, expected: dict[str, Any]) -> None:
    model: Any = decode(cls, payload)
    assert model.raw is payload
    for name, value in expected.items():
        assert getattr(model, name) == value, name


@pytest.mark.parametrize(("cls", "payload"), LIST_CASES)
def test_decode_list_doc_examples(cls: type, payload: list[Any]) -> None:
    items: list[Any] = decode_list(cls, payload)
    assert len(items) == len(payload)
    assert all(type(item) is cls for item in items)
    assert [item.raw for item in items] == payload


def test_decoded_values_are_typed() -> None:
    order = decode(Order, NEW_ORDER_FULL)
    assert type(order.price) is Decimal and order.price == D("1")
    assert type(order.transact_time) is int
    assert [fill.trade_id for fill in order.fills] == [56, 57]
    assert order.fills[1].commission == D("19.995")
    account = decode(IsolatedMarginAccount, ISOLATED_ACCOUNT)
    pair = account.assets[0]
    assert pair.margin_level_status is MarginLevelStatus.EXCESSIVE
    assert pair.base_asset is not None and pair.base_asset.repay_enabled is True
    assert pair.quote_asset is not None and pair.quote_asset.asset == "USDT"
    oco = decode(OrderList, OCO)
    assert [entry.order_id for entry in oco.orders] == [2, 3]
    assert oco.order_reports[0].stop_price == D("0.960664")
    flow = decode_list(CapitalFlow, _example(CapitalFlow))[0]
    assert flow.type is CapitalFlowType.BORROW
    interest = decode(InterestHistory, _example(InterestHistory)).rows[0]
    assert interest.type is InterestType.ON_BORROW
    assert interest.interest_accrued_time == 1672160400000
    history = decode(UniversalTransferHistory, _example(UniversalTransferHistory))
    assert history.rows[0].status is TransferStatus.CONFIRMED
    ltv = decode(LoanGroupForceLiquidations, _example(LoanGroupForceLiquidations)).rows[0]
    assert ltv.total_net_equity == D("16671.5507973")  # a JSON float, kept exactly
    assert ltv.liquidation_snapshot == {"snapshots": [{"memberType": "CREDIT"}]}


def test_unknown_fields_and_enum_values_are_tolerated() -> None:
    payload = dict(NEW_ORDER_FULL, status="SOMETHING_NEW", type="PEGGED", brandNewField=[1, 2])
    order = decode(Order, payload)
    assert order.status == "SOMETHING_NEW" and not isinstance(order.status, OrderStatus)
    assert order.type == "PEGGED"
    assert order.raw["brandNewField"] == [1, 2]


def test_missing_and_null_fields_take_defaults() -> None:
    order = decode(
        Order, {"symbol": "BTCUSDT", "orderId": 1, "price": None, "stopPrice": "", "fills": None}
    )
    assert order.price is None and order.stop_price is None and order.fills == ()
    assert decode(MarginAccount, {}).user_assets == ()
    assert decode(AvailableInventory, {}).assets == {}


def test_raw_is_not_compared_or_shown() -> None:
    first = decode(MaxBorrowable, {"amount": "1", "borrowLimit": "2"})
    second = decode(MaxBorrowable, {"amount": "1", "borrowLimit": "2", "extra": True})
    assert first == second and hash(first) == hash(second)
    assert "raw" not in repr(first)


def test_secret_key_is_not_in_repr() -> None:
    key = decode(SpecialKey, _example(SpecialKey))
    assert key.secret_key is not None
    assert key.secret_key not in repr(key)


@pytest.mark.parametrize(
    ("cls", "payload", "where"),
    [
        (Order, [NEW_ORDER_FULL], "expected an object"),
        (Order, "nope", "expected an object"),
        (Order, {"price": "abc"}, "Order.price"),
        (Order, {"price": True}, "Order.price"),
        (Order, {"price": "NaN"}, "Order.price"),
        (Order, {"orderId": "x28"}, "Order.order_id"),
        (Order, {"orderId": 1.5}, "Order.order_id"),
        (Order, {"fills": {"price": "1"}}, "Order.fills"),
        (Order, {"fills": [["1"]]}, "Fill"),
        (Order, {"status": 3}, "Order.status"),
        (Order, {"symbol": {"a": 1}}, "Order.symbol"),
        (Order, {"isIsolated": "maybe"}, "Order.is_isolated"),
        (MarginAccount, {"userAssets": [{"free": []}]}, "UserAsset.free"),
        (AvailableInventory, {"assets": ["BTC"]}, "AvailableInventory.assets"),
        (LoanGroupForceLiquidations, {"rows": [{"liquidationSnapshot": [1]}]}, "snapshot"),
        (ListenToken, {"expirationTime": 1}, "ListenToken"),
        (ListenToken, {"token": None}, "ListenToken"),
    ],
)
def test_wrong_shape_raises_decode_error(cls: type, payload: Any, where: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(cls, payload)
    assert isinstance(info.value, ValueError)
    assert where in str(info.value)


def test_decode_list_needs_an_array() -> None:
    with pytest.raises(DecodeError):
        decode_list(Trade, {"id": 1})
    with pytest.raises(DecodeError):
        decode_list(Trade, [1])


def test_lenient_scalar_forms() -> None:
    order = decode(
        Order, {"symbol": "X", "orderId": "28", "price": 1.1, "origQty": 3, "isWorking": "true"}
    )
    assert order.order_id == 28
    assert order.price == D("1.1")  # via repr, not the binary expansion
    assert order.orig_qty == D(3)
    assert order.is_working is True
    trade = decode(Trade, {"id": 5.0, "symbol": "X", "orderId": "7"})
    assert trade.id == 5
    transfer = decode(LoanGroupLiquidationTransfers, _example(LoanGroupLiquidationTransfers))
    record = transfer.rows[0].liquidation_transfer_record[0]
    assert record.from_uid == 1000277033525 and record.assets[0].amount == D("17750.6316")


def test_plans_and_decoders_are_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    decode(Order, NEW_ORDER_FULL)
    plan, decoder = models._PLANS[Order], models._DECODERS[Order]

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("decode must not reflect on annotations or compile per call")

    monkeypatch.setattr(typing, "get_type_hints", forbidden)
    monkeypatch.setattr(models, "_build_decoder", forbidden)
    decode(Order, NEW_ORDER_FULL)
    decode_list(Order, [NEW_ORDER_FULL])
    with pytest.raises(DecodeError):  # the error path reuses the reference plan
        decode(Order, {"price": "abc"})
    assert models._PLANS[Order] is plan and models._DECODERS[Order] is decoder


def _model_classes() -> list[type]:
    return [
        obj
        for name in models.__all__
        if dataclasses.is_dataclass(obj := getattr(models, name)) and inspect.isclass(obj)
    ]


@pytest.mark.parametrize("cls", _model_classes(), ids=lambda cls: cls.__name__)
def test_every_model_is_frozen_slotted_and_keeps_raw(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in cls.__dict__
    fields = {f.name: f for f in dataclasses.fields(cls)}
    raw = fields["raw"]
    assert raw.compare is False and raw.repr is False and raw.kw_only is True
    required = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    payload: dict[str, Any] = {"unknownField": {"nested": [1]}}
    # Required identity fields get a value; every other field is optional.
    hints = typing.get_type_hints(cls)
    for name in required:
        payload[models._wire(fields[name])] = 1 if hints[name] is int else "x"
    if not required:
        # A model without required fields needs one of its own keys (null: its default).
        first = next(f for f in fields.values() if f.name != "raw")
        payload[models._wire(first)] = None
    model: Any = decode(cls, payload)
    assert model.raw is payload
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.raw = {}
    # The generated decoder fills every slot with the same defaults as __init__ would.
    built = cls(**{name: getattr(model, name) for name in required})
    assert _snapshot(model, raw=False) == _snapshot(built, raw=False)


def _snapshot(value: Any, *, raw: bool = True) -> Any:
    """``value`` with the exact type of every part: ``==`` alone equates an enum and its string."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (
            type(value),
            id(value.raw) if raw else None,  # type: ignore[attr-defined]  # the input itself
            [
                (f.name, _snapshot(getattr(value, f.name), raw=raw))
                for f in fields
                if f.name != "raw"
            ],
        )
    if isinstance(value, tuple | list):
        return (type(value), [_snapshot(item, raw=raw) for item in value])
    if isinstance(value, dict):
        return (type(value), {key: _snapshot(item, raw=raw) for key, item in value.items()})
    return (type(value), value)


def _outcome(decoder: Any, cls: type, payload: Any) -> Any:
    try:
        return _snapshot(decoder(cls, payload))
    except DecodeError as exc:
        return ("DecodeError", str(exc))


# Values of every JSON kind, well and badly formed for each field type.
ODD_VALUES: list[Any] = [
    *(None, "", "1.5", "7", "-0.00000001", "1e3", "Infinity", "NaN", "sNaN", "abc", "NEW"),
    *("true", "FALSE", 3, -4, 2.0, 2.5, True, False, [], [{}], ["a", 1], [[1]], {}, {"a": "1"}),
]


@pytest.mark.parametrize("cls", _model_classes(), ids=lambda cls: cls.__name__)
def test_generated_decoder_agrees_with_the_reference(cls: type) -> None:
    # Same model (every type included) or the same DecodeError message, field by field and value
    # by value: the generated code is only a faster spelling of the plan-driven reference.
    base = {"tranId": 1, "token": "t", "listenKey": "k"}
    for f in dataclasses.fields(cls):
        wire = f.metadata.get("wire") or models._camel(f.name)
        for value in ODD_VALUES:
            payload = dict(base, **{wire: value})
            expected = _outcome(models._decode_reference, cls, payload)
            assert _outcome(decode, cls, payload) == expected, (f.name, value)
    examples = [payload for case_cls, payload, _ in SINGLE_CASES if case_cls is cls]
    examples += [item for case_cls, items in LIST_CASES if case_cls is cls for item in items]
    for payload in [*examples, {}, [], "x", None]:
        expected = _outcome(models._decode_reference, cls, payload)
        assert _outcome(decode, cls, payload) == expected


# Valid but unusual forms: blank optional numbers, numbers as strings and back, unknown enums.
LENIENT_CASES: list[tuple[type, Any]] = [
    (
        Order,
        {
            "stopPrice": "",
            "orderId": "28",
            "price": 1.1,
            "origQty": 3,
            "isWorking": "true",
            "symbol": 5,
            "status": "BRAND_NEW",
            "fills": [],
        },
    ),
    (AvailableInventory, {"assets": {"BTC": 1}, "updateTime": ""}),
]


@pytest.mark.parametrize(
    ("cls", "payload"), [*((cls, payload) for cls, payload, _ in SINGLE_CASES), *LENIENT_CASES]
)
def test_valid_payloads_never_take_the_reference_path(
    monkeypatch: pytest.MonkeyPatch, cls: type, payload: Any
) -> None:
    decode(cls, payload)  # builds the decoders of cls and of its nested models

    def forbidden(*args: Any) -> Any:
        raise AssertionError("a valid payload fell back to the reference decoder")

    for decoder in models._DECODERS.values():
        monkeypatch.setitem(decoder.__globals__, "_reference", forbidden)
    model: Any = decode(cls, payload)
    assert _snapshot(model) == _snapshot(models._decode_reference(cls, payload))


@pytest.mark.parametrize(
    ("cls", "payload", "message"),
    [
        (
            MarginAccount,
            {"userAssets": [{"free": "1"}, {"free": []}]},
            "MarginAccount.user_assets[1]: UserAsset.free: expected a decimal, got list []",
        ),
        (
            Order,
            {"fills": [{"tradeId": 1}, "x"]},
            "Order.fills[1]: Fill: expected an object, got str 'x'",
        ),
        (
            LoanGroupLiquidationTransfers,
            {"rows": [{"liquidationTransferRecord": [{"assets": [{}, {"amount": "abc"}]}]}]},
            "LoanGroupLiquidationTransfers.rows[0]: "
            "LoanGroupLiquidationTransferRecord.liquidation_transfer_record[0]: "
            "LiquidationTransfer.assets[1]: AssetAmount.amount: expected a decimal, got str 'abc'",
        ),
        (
            IsolatedMarginAccount,
            {"assets": [{"baseAsset": {"free": "x"}}]},
            "IsolatedMarginAccount.assets[0]: IsolatedPairAccount.base_asset: "
            "IsolatedAsset.free: expected a decimal, got str 'x'",
        ),
        (
            AvailableInventory,
            {"assets": {"BTC": "1", "ETH": "one"}},
            "AvailableInventory.assets['ETH']: expected a decimal, got str 'one'",
        ),
        (
            RestrictedAssets,
            {"openLongRestrictedAsset": ["CHZ", None]},
            "RestrictedAssets.open_long_restricted_asset[1]: expected a string, got NoneType None",
        ),
        (
            IsolatedPairAccount,
            {"marginLevelStatus": 1},
            "IsolatedPairAccount.margin_level_status: "
            "expected a MarginLevelStatus string, got int 1",
        ),
    ],
)
def test_wrong_shape_names_the_path(cls: type, payload: Any, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(cls, payload)
    assert str(info.value) == message


def test_decode_list_names_the_item() -> None:
    with pytest.raises(DecodeError) as info:
        decode_list(
            Trade, [{"id": n, "symbol": "X", "orderId": 1} for n in (1, 2)] + [{"price": "abc"}]
        )
    assert str(info.value) == "list of Trade[2]: Trade.price: expected a decimal, got str 'abc'"


def test_invalid_decimal_is_rejected_even_without_the_trap() -> None:
    # With InvalidOperation untrapped, Decimal("abc") is NaN instead of an exception.
    with decimal.localcontext() as context:
        context.traps[decimal.InvalidOperation] = False
        with pytest.raises(DecodeError, match=r"^Fill\.price: expected a decimal"):
            decode(Fill, {"price": "abc"})
        with pytest.raises(DecodeError, match=r"^Fill\.qty: expected a decimal"):
            decode(Fill, {"qty": "-sNaN"})
    assert "abc" not in models._DECIMAL_MEMO and "-sNaN" not in models._DECIMAL_MEMO


def test_decimal_memo_is_bounded() -> None:
    size = models._DECIMAL_MEMO_SIZE
    texts = [f"{index}.25" for index in range(size + 10)]
    for text in texts:
        assert decode(Fill, {"price": text}).price == Decimal(text)
    assert len(models._DECIMAL_MEMO) <= size
    # Entries cleared on the way come back right.
    assert decode(Fill, {"price": texts[0]}).price == Decimal(texts[0])
    assert decode(Fill, {"qty": texts[-1]}).qty == Decimal(texts[-1])


def test_default_factories_give_fresh_objects() -> None:
    first, second = decode(AvailableInventory, {}), decode(AvailableInventory, {})
    assert first.assets == {} and first.assets is not second.assets


def test_generated_source_is_inspectable() -> None:
    decode(Fill, {})
    source = inspect.getsource(models._DECODERS[Fill])
    assert source.startswith("def decode_Fill(data):")
    assert "get('commissionAsset')" in source


def test_self_trade_prevention_modes_are_the_spot_set() -> None:
    assert [mode.value for mode in SelfTradePreventionMode] == [
        "NONE",
        "EXPIRE_TAKER",
        "EXPIRE_MAKER",
        "EXPIRE_BOTH",
        "DECREMENT",
    ]
    order = decode(Order, {"symbol": "X", "orderId": 1, "selfTradePreventionMode": "DECREMENT"})
    assert order.self_trade_prevention_mode is SelfTradePreventionMode.DECREMENT


def test_margin_trades_carry_no_quote_qty() -> None:
    # The margin myTrades example (like the doc page) has neither field: they stay None.
    (trade,) = decode_list(Trade, _example(Trade))
    assert "quoteQty" not in trade.raw and trade.quote_qty is None
    assert trade.order_list_id is None
    spot_shaped = decode(
        Trade, {"id": 1, "symbol": "X", "orderId": 1, "quoteQty": "12.5", "orderListId": -1}
    )
    assert spot_shaped.quote_qty == D("12.5") and spot_shaped.order_list_id == -1


def _page_classes() -> list[type]:
    return [cls for cls in _model_classes() if issubclass(cls, Page) and cls is not Page]


@pytest.mark.parametrize("cls", _page_classes(), ids=lambda cls: cls.__name__)
def test_every_page_decodes_its_rows_into_its_record_model(cls: type) -> None:
    (base,) = cls.__orig_bases__  # type: ignore[attr-defined]
    (record,) = typing.get_args(base)
    page: Any = decode(cls, {"rows": [{}, {}], "total": 2})
    assert [type(row) for row in page.rows] == [record, record]
    assert page.total == 2 and repr(page).startswith(cls.__name__ + "(")


def test_page_names_a_dozen_histories_and_keeps_unbound_rows_as_json() -> None:
    assert len(_page_classes()) == 12
    page: Any = decode(Page, {"rows": [{"a": 1}], "total": 1})
    assert page.rows == ({"a": 1},) and page.total == 1


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (ManualLiquidationResult, "asset interest principal liability_asset liability_qty"),
        (SmallLiabilityCoin, "asset interest principal liability_asset liability_qty"),
        (MaxBorrowable, "amount borrow_limit"),
        (MaxTransferable, "amount borrow_limit"),
        (UserAsset, "asset free locked borrowed interest net_asset"),
        (
            IsolatedAsset,
            "asset free locked borrowed interest net_asset "
            "borrow_enabled repay_enabled net_asset_of_btc total_asset",
        ),
        (
            DustTransferResult,
            "amount from_asset operate_time service_charge_amount transferred_amount tran_id",
        ),
        (
            DustLogDetail,
            "amount from_asset operate_time service_charge_amount transferred_amount trans_id",
        ),
        (
            MarginPair,
            "symbol base quote is_margin_trade is_buy_allowed is_sell_allowed delist_time id",
        ),
        (
            IsolatedMarginPair,
            "symbol base quote is_margin_trade is_buy_allowed is_sell_allowed delist_time",
        ),
        (DelistSchedule, "cross_margin_assets isolated_margin_symbols delist_time"),
        (ListSchedule, "cross_margin_assets isolated_margin_symbols list_time"),
    ],
)
def test_models_sharing_a_base_keep_their_public_fields(cls: type, fields: str) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    assert [name for name in names if name != "raw"] == fields.split() and "raw" in names


def test_shared_bases_keep_each_wire_name() -> None:
    dust = decode(DustLogDetail, {"transId": 7, "transferedAmount": "0.5"})
    result = decode(DustTransferResult, {"tranId": 8, "transferedAmount": "0.25"})
    assert (dust.trans_id, dust.transferred_amount) == (7, D("0.5"))
    assert (result.tran_id, result.transferred_amount) == (8, D("0.25"))
    pair = decode(MarginPair, {"id": 3, "symbol": "BNBBTC", "isBuyAllowed": True})
    assert (pair.id, pair.symbol, pair.is_buy_allowed) == (3, "BNBBTC", True)
    asset = decode(IsolatedAsset, {"asset": "BTC", "free": "1", "totalAsset": "2"})
    assert (asset.free, asset.total_asset) == (D(1), D(2))
    # Same fields, still different types: equality never mixes them up.
    borrowable: Any = decode(MaxBorrowable, {"amount": "1"})
    assert borrowable != decode(MaxTransferable, {"amount": "1"})
