"""MarginClient end to end against FakeExchange: real sockets on 127.0.0.1, every served endpoint.

Every endpoint the fake backs (``testing/_rest.py`` routes plus the server's own handlers) is called
through the public client methods and the typed result is checked against the fake's state (its
ledger): ``Decimal`` amounts, ``int`` ids and times, enums. The signed flows run once per key type
(HMAC, Ed25519, RSA). Endpoints the fake does not back answer ``-1020``; one sweep checks that the
list below is exactly the fake's, through the client's transport.

Faults: a read-only key (``-2015``), clock skew (``-1021`` → resync), a 503 on a GET (retried) and
on an order (``ExecutionStatusUnknown``, never duplicated), and an order executed whose answer is
lost (a 503 or a dropped connection: found by its client id) or that executes after its answer
(not found, then found). Waits are bounded polls, never timing assertions.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, Literal

import pytest

from binance_margin_async import (
    BinanceAPIError,
    ExecutionStatusUnknown,
    MarginClient,
    ParameterError,
    RateLimited,
    RateLimiter,
    TransportError,
)
from binance_margin_async.endpoints import ENDPOINTS
from binance_margin_async.errors import (
    BadSymbol,
    ExceedMaxBorrowable,
    InvalidListenKey,
    InvalidMarginAsset,
    MarginAccountNotFound,
    NoSuchOrder,
    RejectedApiKey,
    RepayExceedsLiability,
    TransferOutExceedsMax,
)
from binance_margin_async.models import (
    BorrowRepayRecords,
    CapitalFlowType,
    ContingencyType,
    InterestType,
    ListOrderStatus,
    ListStatusType,
    MarginAccountType,
    MarginLevelStatus,
    Order,
    OrderList,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    TransferStatus,
    TransferType,
)
from binance_margin_async.testing import Credentials, FakeExchange

KeyType = Literal["HMAC", "ED25519", "RSA"]
KEY_TYPES: tuple[KeyType, ...] = ("HMAC", "ED25519", "RSA")

SEED = 11  # every exchange of this module: account 1's RSA key is generated once, then cached
SPOT = {"USDT": "20000"}
CROSS = {"USDT": "50000", "BTC": "1"}
ISOLATED = {"BTCUSDT": {"USDT": "10000", "BTC": "0.1"}}
Q8 = Decimal("0.00000001")  # Binance's 8-decimal amount strings
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: fail_next arguments of Binance's "execution status unknown" answer.
BACKEND_TIMEOUT: dict[str, Any] = {
    "status": 503,
    "code": -1007,
    "msg": "Timeout waiting for response from backend server. Send status unknown; execution "
    "status unknown.",
}

#: Client methods whose endpoint the fake backs: the ``_LEDGER_ROUTES`` of testing/_rest.py, its
#: universal transfer history, capital flow and market data handlers, the special-key handlers
#: and the server's own handlers (stream tokens, listen keys, order-count usage, risk units).
#: ``server_time`` is outside ENDPOINTS.
SERVED = frozenset(
    {
        # Orders and order lists
        "new_order", "cancel_order", "get_order", "get_open_orders", "cancel_open_orders",
        "get_all_orders", "get_my_trades", "new_oco", "new_oto", "new_otoco",
        "cancel_order_list", "get_order_list", "get_open_order_lists", "get_all_order_lists",
        "get_order_count_usage",
        # Loans
        "borrow", "repay", "get_borrow_repay_records", "get_interest_history",
        "get_max_borrowable",
        # Accounts
        "get_account", "get_isolated_account", "enable_isolated_account", "get_capital_flow",
        # Transfers
        "transfer", "get_universal_transfer_history", "get_transfer_history",
        "get_max_transferable",
        # Market data
        "get_all_assets", "get_all_pairs", "get_all_isolated_pairs", "get_price_index",
        # Streams
        "create_listen_token", "start_risk_data_stream", "keepalive_risk_data_stream",
        "close_risk_data_stream",
        # Institutional loan (testing/_loan_groups.py)
        "get_loan_groups", "get_loan_group",
        # Special keys (testing/_special.py)
        "create_special_key", "delete_special_key", "edit_special_key_ip", "get_special_key",
        "get_special_key_list",
    }
)  # fmt: skip


# Fixtures and helpers


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    # Expiry/interest checks every 50 ms, so that interest after a clock jump shows up at once.
    async with FakeExchange(seed=SEED, expiry_check_interval=0.05) as ex:
        yield ex


@pytest.fixture(params=KEY_TYPES)
def key_type(request: pytest.FixtureRequest) -> KeyType:
    value: KeyType = request.param
    return value


@pytest.fixture
def creds(exchange: FakeExchange, key_type: KeyType) -> Credentials:
    return exchange.add_account(SPOT, margin_balances=CROSS, isolated=ISOLATED, key_type=key_type)


@pytest.fixture
async def client(exchange: FakeExchange, creds: Credentials) -> AsyncIterator[MarginClient]:
    async with exchange.client(creds) as c:
        yield c


def requests_to(exchange: FakeExchange, path: str) -> int:
    return exchange.stats.requests_by_path.get(path, 0)


async def until(predicate: Callable[[], bool], what: str, limit: float = 5.0) -> None:
    """Wait (bounded) for ``predicate``; fail naming ``what``."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def clear_of_boundary(length: float, margin: float = 1.0) -> None:
    """Return at least ``margin`` seconds away from a multiple of ``length`` (a fixed window
    boundary), so that counts taken next are all in one window."""
    while True:
        phase = time.time() % length
        if margin <= phase <= length - margin:
            return
        await asyncio.sleep(margin)


def dec(value: str | Decimal) -> Decimal:
    return Decimal(value)


# Orders


async def test_orders_market_limit_fill_cancel_queries(
    exchange: FakeExchange, creds: Credentials, client: MarginClient
) -> None:
    ledger, acct = exchange.ledger, creds.account_id

    market = await client.new_order("BTCUSDT", OrderSide.BUY, OrderType.MARKET, quantity="0.01")
    assert isinstance(market.order_id, int)
    assert market.client_order_id is not None and market.client_order_id.startswith("bma")
    assert (market.status, market.type, market.side) == (
        OrderStatus.FILLED,
        OrderType.MARKET,
        OrderSide.BUY,
    )
    assert (market.executed_qty, market.cumulative_quote_qty) == (dec("0.01"), dec("600"))
    [fill] = market.fills
    assert (fill.price, fill.qty, fill.commission, fill.commission_asset) == (
        dec("60000"),
        dec("0.01"),
        dec("0.00001"),
        "BTC",
    )
    assert isinstance(fill.trade_id, int)
    assert ledger.balance(acct, "USDT").free == dec("49400")
    assert ledger.balance(acct, "BTC").free == dec("1.00999")

    # A LIMIT BUY below the market rests, locking its quote; a lower price fills it as maker.
    resting = await client.new_order(
        "BTCUSDT", "BUY", "LIMIT", quantity=Decimal("0.02"), price=59000, time_in_force="GTC"
    )
    assert (resting.status, resting.executed_qty, resting.price) == (
        OrderStatus.NEW,
        dec("0"),
        dec("59000"),
    )
    assert ledger.balance(acct, "USDT").locked == dec("1180")
    assert [o.order_id for o in await client.get_open_orders("BTCUSDT")] == [resting.order_id]
    assert [o.order_id for o in await client.get_open_orders()] == [resting.order_id]
    exchange.set_price("BTCUSDT", "58900")
    filled = await client.get_order("BTCUSDT", order_id=resting.order_id)
    assert (filled.status, filled.executed_qty, filled.cumulative_quote_qty) == (
        OrderStatus.FILLED,
        dec("0.02"),
        dec("1180"),
    )
    assert (filled.time_in_force, filled.is_working, filled.order_list_id) == (
        TimeInForce.GTC,
        False,
        -1,
    )
    assert ledger.balance(acct, "USDT").locked == 0
    assert await client.get_open_orders("BTCUSDT") == []

    sell = await client.new_order(
        "BTCUSDT", "SELL", "LIMIT", quantity="0.01", price="65000", time_in_force="GTC"
    )
    assert ledger.balance(acct, "BTC").locked == dec("0.01")
    canceled = await client.cancel_order("BTCUSDT", order_id=sell.order_id)
    assert (canceled.order_id, canceled.status) == (sell.order_id, OrderStatus.CANCELED)
    assert canceled.orig_client_order_id == sell.client_order_id
    assert ledger.balance(acct, "BTC").locked == 0

    orders = await client.get_all_orders("BTCUSDT")
    assert [(o.order_id, o.status) for o in orders] == [
        (market.order_id, OrderStatus.FILLED),
        (resting.order_id, OrderStatus.FILLED),
        (sell.order_id, OrderStatus.CANCELED),
    ]
    since = await client.get_all_orders("BTCUSDT", order_id=sell.order_id)
    assert [o.order_id for o in since] == [sell.order_id]

    trades = await client.get_my_trades("BTCUSDT")
    assert [(t.order_id, t.price, t.qty, t.is_buyer, t.is_maker, t.commission) for t in trades] == [
        (market.order_id, dec("60000"), dec("0.01"), True, False, dec("0.00001")),
        (resting.order_id, dec("59000"), dec("0.02"), True, True, dec("0.00002")),
    ]
    assert trades[0].id == fill.trade_id and all(isinstance(t.time, int) for t in trades)
    [only] = await client.get_my_trades("BTCUSDT", order_id=resting.order_id)
    assert only.id == trades[1].id

    # Cancel all: plain orders come back as Orders, an order list as one OrderList.
    buy = await client.new_order(
        "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="50000", time_in_force="GTC"
    )
    ask = await client.new_order(
        "BTCUSDT", "SELL", "LIMIT", quantity="0.01", price="70000", time_in_force="GTC"
    )
    oco = await client.new_oco("BTCUSDT", "SELL", "0.01", "70000", "50000")
    result = await client.cancel_open_orders("BTCUSDT")
    plain = sorted((r.order_id, r.status) for r in result if isinstance(r, Order))
    assert plain == [(buy.order_id, OrderStatus.CANCELED), (ask.order_id, OrderStatus.CANCELED)]
    [lst] = [r for r in result if isinstance(r, OrderList)]
    assert (lst.order_list_id, lst.list_order_status) == (
        oco.order_list_id,
        ListOrderStatus.ALL_DONE,
    )
    assert {r.status for r in lst.order_reports} == {OrderStatus.CANCELED}
    assert await client.get_open_orders() == []
    assert ledger.balance(acct, "USDT").locked == ledger.balance(acct, "BTC").locked == 0

    # Isolated: a MARKET buy by quote amount moves exactly the isolated wallet.
    iso = await client.new_order(
        "BTCUSDT", "BUY", "MARKET", quote_order_qty="100", is_isolated=True
    )
    assert iso.is_isolated is True and iso.status is OrderStatus.FILLED
    assert iso.cumulative_quote_qty is not None and iso.executed_qty is not None
    fee = sum((f.commission or Decimal(0) for f in iso.fills), Decimal(0))
    assert ledger.balance(acct, "USDT", wallet="BTCUSDT").free == 10000 - iso.cumulative_quote_qty
    assert ledger.balance(acct, "BTC", wallet="BTCUSDT").free == dec("0.1") + iso.executed_qty - fee
    [iso_trade] = await client.get_my_trades("BTCUSDT", is_isolated=True)
    assert iso_trade.order_id == iso.order_id and iso_trade.is_isolated is True


async def place_list(client: MarginClient, name: str) -> OrderList:
    """One OCO, OTO or OTOCO on BTCUSDT (by ``MarginAPI`` method name), resting on the book."""
    if name == "new_oco":
        return await client.new_oco("BTCUSDT", "SELL", "0.01", "65000", "55000")
    if name == "new_oto":
        return await client.new_oto(
            "BTCUSDT",
            "LIMIT",
            "BUY",
            "58000",
            "0.01",
            "LIMIT",
            "SELL",
            "0.01",
            working_time_in_force="GTC",
            pending_price="70000",
            pending_time_in_force="GTC",
        )
    return await client.new_otoco(
        "BTCUSDT",
        "LIMIT",
        "BUY",
        "57000",
        "0.01",
        "SELL",
        "0.01",
        "LIMIT_MAKER",
        working_time_in_force="GTC",
        pending_above_price="70000",
        pending_below_type="STOP_LOSS",
        pending_below_stop_price="50000",
    )


async def test_order_lists_oco_oto_otoco(
    exchange: FakeExchange, creds: Credentials, client: MarginClient
) -> None:
    ledger, acct = exchange.ledger, creds.account_id

    oco = await place_list(client, "new_oco")
    assert (oco.contingency_type, oco.list_status_type, oco.list_order_status) == (
        ContingencyType.OCO,
        ListStatusType.EXEC_STARTED,
        ListOrderStatus.EXECUTING,
    )
    assert isinstance(oco.order_list_id, int) and len(oco.orders) == 2
    assert {r.type for r in oco.order_reports} == {OrderType.STOP_LOSS, OrderType.LIMIT_MAKER}
    assert {r.order_list_id for r in oco.order_reports} == {oco.order_list_id}
    assert ledger.balance(acct, "BTC").locked == dec("0.01")  # one lock for both legs

    oto = await place_list(client, "new_oto")
    assert oto.contingency_type is ContingencyType.OTO
    assert [r.status for r in oto.order_reports] == [OrderStatus.NEW, OrderStatus.PENDING_NEW]

    otoco = await place_list(client, "new_otoco")
    # Binance answers an OTOCO with contingencyType "OTO" (it has no OTOCO value).
    assert otoco.contingency_type is ContingencyType.OTO
    assert [(r.type, r.status) for r in otoco.order_reports] == [
        (OrderType.LIMIT, OrderStatus.NEW),
        (OrderType.LIMIT_MAKER, OrderStatus.PENDING_NEW),
        (OrderType.STOP_LOSS, OrderStatus.PENDING_NEW),
    ]
    ids = [oco.order_list_id, oto.order_list_id, otoco.order_list_id]
    assert [lst.order_list_id for lst in await client.get_open_order_lists()] == ids

    got = await client.get_order_list(order_list_id=oto.order_list_id)
    assert [o.order_id for o in got.orders] == [o.order_id for o in oto.orders]
    assert got.list_client_order_id == oto.list_client_order_id
    by_client_id = await client.get_order_list(orig_client_order_id=oco.list_client_order_id)
    assert by_client_id.order_list_id == oco.order_list_id

    # The OTO's working BUY fills: its pending SELL goes live and the list is done.
    exchange.set_price("BTCUSDT", "57900")
    done = await client.get_order_list(order_list_id=oto.order_list_id)
    assert done.list_order_status is ListOrderStatus.ALL_DONE
    pending = await client.get_order("BTCUSDT", order_id=oto.orders[1].order_id)
    assert (pending.status, pending.side, pending.price) == (
        OrderStatus.NEW,
        OrderSide.SELL,
        dec("70000"),
    )
    assert ledger.balance(acct, "BTC").locked == dec("0.02")  # the OCO and the pending SELL
    open_ids = [lst.order_list_id for lst in await client.get_open_order_lists()]
    assert open_ids == [oco.order_list_id, otoco.order_list_id]

    canceled = await client.cancel_order_list("BTCUSDT", order_list_id=otoco.order_list_id)
    assert canceled.list_order_status is ListOrderStatus.ALL_DONE
    assert [r.status for r in canceled.order_reports] == [OrderStatus.CANCELED] * 3
    assert oco.list_client_order_id is not None
    canceled = await client.cancel_order_list(
        "BTCUSDT", list_client_order_id=oco.list_client_order_id
    )
    assert [r.status for r in canceled.order_reports] == [OrderStatus.CANCELED] * 2
    assert await client.get_open_order_lists() == []
    every = await client.get_all_order_lists()
    assert [(lst.order_list_id, lst.list_order_status) for lst in every] == [
        (list_id, ListOrderStatus.ALL_DONE) for list_id in ids
    ]
    assert ledger.balance(acct, "BTC").locked == dec("0.01")  # only the OTO's pending SELL


# Accounts


async def test_cross_and_isolated_accounts_match_the_ledger(
    exchange: FakeExchange, creds: Credentials, client: MarginClient
) -> None:
    ledger, acct = exchange.ledger, creds.account_id
    await client.borrow("BTC", "0.2")  # a liability, so that the margin level is not 999

    account = await client.get_account()
    assets = sorted({a for s in ledger.symbols() for a in (s.base, s.quote)})
    assert sorted(a.asset for a in account.user_assets if a.asset) == assets
    for asset in account.user_assets:
        assert asset.asset is not None
        bal = ledger.balance(acct, asset.asset)
        assert (asset.free, asset.locked, asset.borrowed, asset.interest, asset.net_asset) == (
            bal.free,
            bal.locked,
            bal.borrowed,
            bal.interest,
            bal.net_asset,
        ), asset.asset
    assert account.margin_level == ledger.margin_level(acct).quantize(Q8)
    assert account.margin_level is not None and account.margin_level < 999
    assert (account.account_type, account.trade_enabled, account.borrow_enabled) == (
        MarginAccountType.MARGIN_1,
        True,
        True,
    )
    assert account.total_liability_of_btc == dec("0.2")

    isolated = await client.get_isolated_account()
    assert [a.symbol for a in isolated.assets] == ledger.isolated_symbols(acct) == ["BTCUSDT"]
    [pair] = isolated.assets
    assert pair.base_asset is not None and pair.quote_asset is not None
    assert (pair.base_asset.asset, pair.base_asset.free) == ("BTC", dec("0.1"))
    assert (pair.quote_asset.asset, pair.quote_asset.free) == ("USDT", dec("10000"))
    assert pair.margin_level == ledger.margin_level(acct, symbol="BTCUSDT").quantize(Q8)
    assert pair.margin_level_status == MarginLevelStatus(
        ledger.margin_level_status(acct, symbol="BTCUSDT")
    )
    assert isolated.total_asset_of_btc is not None and isolated.total_asset_of_btc > 0
    # With `symbols`, Binance leaves the BTC totals out.
    assert (await client.get_isolated_account("BTCUSDT")).total_asset_of_btc is None

    toggled = await client.enable_isolated_account("ETHUSDT")
    assert (toggled.success, toggled.symbol) == (True, "ETHUSDT")
    assert ledger.isolated_symbols(acct) == ["BTCUSDT", "ETHUSDT"]
    both = await client.get_isolated_account(["BTCUSDT", "ETHUSDT"])
    assert [a.symbol for a in both.assets] == ["BTCUSDT", "ETHUSDT"]


# Loans


async def test_borrow_repay_interest_and_their_history(
    exchange: FakeExchange, creds: Credentials, client: MarginClient
) -> None:
    ledger, acct = exchange.ledger, creds.account_id
    start = exchange.server_time_ms()

    most = await client.get_max_borrowable("BTC")
    expected = ledger.max_borrowable(acct, "BTC")
    assert (most.amount, most.borrow_limit) == (
        dec(expected["amount"]),
        dec(expected["borrowLimit"]),
    )
    assert most.amount is not None and most.amount > 0
    with pytest.raises(ExceedMaxBorrowable) as info:
        await client.borrow("BTC", most.amount + 1)
    assert info.value.code == -3006
    assert ledger.balance(acct, "BTC").borrowed == 0

    borrowed = await client.borrow("BTC", "0.1")
    assert isinstance(borrowed.tran_id, int)
    assert ledger.balance(acct, "BTC").borrowed == dec("0.1")
    assert ledger.balance(acct, "BTC").free == dec("1.1")
    iso_most = await client.get_max_borrowable("USDT", isolated_symbol="BTCUSDT")
    assert iso_most.amount == dec(
        ledger.max_borrowable(acct, "USDT", isolated_symbol="BTCUSDT")["amount"]
    )
    iso_borrowed = await client.borrow("USDT", "500", symbol="BTCUSDT")
    assert ledger.balance(acct, "USDT", wallet="BTCUSDT").borrowed == dec("500")

    # Two hours later (the fake's clock jumps; the client resyncs on -1021) interest is charged.
    exchange.set_clock_skew(2 * HOUR_MS + 60_000)
    await until(
        lambda: (
            ledger.balance(acct, "BTC").interest > 0
            and ledger.balance(acct, "USDT", wallet="BTCUSDT").interest > 0
        ),
        "hourly interest",
    )
    interest = ledger.balance(acct, "BTC").interest
    assert interest == dec("0.000002")  # 0.1 × 0.00001/h × 2 h
    history = await client.get_interest_history(asset="BTC")
    assert {(r.asset, r.principal, r.interest_rate, r.type) for r in history.rows} == {
        ("BTC", dec("0.1"), dec("0.00001"), InterestType.PERIODIC)
    }
    assert sum(r.interest or 0 for r in history.rows) == interest
    assert all(
        isinstance(r.tx_id, int) and isinstance(r.interest_accrued_time, int) for r in history.rows
    )
    iso_history = await client.get_interest_history(isolated_symbol="BTCUSDT")
    assert {(r.asset, r.isolated_symbol) for r in iso_history.rows} == {("USDT", "BTCUSDT")}
    assert (
        sum(r.interest or 0 for r in iso_history.rows)
        == ledger.balance(acct, "USDT", wallet="BTCUSDT").interest
    )

    # Repayment pays the interest first, then principal.
    repaid = await client.repay("BTC", "0.05")
    assert ledger.balance(acct, "BTC").interest == 0
    assert ledger.balance(acct, "BTC").borrowed == dec("0.1") - (dec("0.05") - interest)
    with pytest.raises(RepayExceedsLiability):
        await client.repay("BTC", "10")

    borrows = await client.get_borrow_repay_records("BORROW", tx_id=borrowed.tran_id)
    [row] = borrows.rows
    assert (row.tx_id, row.asset, row.amount, row.principal, row.interest) == (
        borrowed.tran_id,
        "BTC",
        dec("0.1"),
        dec("0.1"),
        dec("0"),
    )
    assert (row.status, row.type, borrows.total) == (TransferStatus.CONFIRMED, "MANUAL", 1)
    repays = await client.get_borrow_repay_records("REPAY", start_time=start)
    [row] = repays.rows
    assert (row.tx_id, row.amount, row.interest, row.principal) == (
        repaid.tran_id,
        dec("0.05"),
        interest,
        dec("0.05") - interest,
    )
    iso_rows: BorrowRepayRecords = await client.get_borrow_repay_records(
        "BORROW", isolated_symbol="BTCUSDT", start_time=start
    )
    assert [(r.tx_id, r.isolated_symbol, r.amount) for r in iso_rows.rows] == [
        (iso_borrowed.tran_id, "BTCUSDT", dec("500"))
    ]


# Transfers


async def test_transfers_their_histories_and_max_transferable(
    exchange: FakeExchange, creds: Credentials, client: MarginClient
) -> None:
    ledger, acct = exchange.ledger, creds.account_id

    most = await client.get_max_transferable("USDT")
    assert most.amount == dec(ledger.max_transferable(acct, "USDT")["amount"])
    iso_most = await client.get_max_transferable("USDT", isolated_symbol="BTCUSDT")
    assert iso_most.amount == dec(
        ledger.max_transferable(acct, "USDT", isolated_symbol="BTCUSDT")["amount"]
    )
    assert most.amount is not None and most.amount > 0
    with pytest.raises(TransferOutExceedsMax):
        await client.transfer("MARGIN_MAIN", "USDT", most.amount + 1)

    t1 = await client.transfer(TransferType.MAIN_MARGIN, "USDT", Decimal("1000"))
    assert ledger.balance(acct, "USDT", wallet="SPOT").free == dec("19000")
    assert ledger.balance(acct, "USDT").free == dec("51000")
    t2 = await client.transfer("MARGIN_ISOLATEDMARGIN", "USDT", "200", to_symbol="BTCUSDT")
    t3 = await client.transfer("ISOLATEDMARGIN_MARGIN", "USDT", "50", from_symbol="BTCUSDT")
    t4 = await client.transfer("MARGIN_MAIN", "USDT", "100")
    assert ledger.balance(acct, "USDT", wallet="BTCUSDT").free == dec("10150")
    assert ledger.balance(acct, "USDT").free == dec("50750")
    assert len({t1.tran_id, t2.tran_id, t3.tran_id, t4.tran_id}) == 4

    for kind, source, target, record, amount in (
        (TransferType.MAIN_MARGIN, None, None, t1, "1000"),
        (TransferType.MARGIN_ISOLATED_MARGIN, None, "BTCUSDT", t2, "200"),
        (TransferType.ISOLATED_MARGIN_MARGIN, "BTCUSDT", None, t3, "50"),
        (TransferType.MARGIN_MAIN, None, None, t4, "100"),
    ):
        page = await client.get_universal_transfer_history(
            kind, from_symbol=source, to_symbol=target
        )
        assert page.total == 1, kind
        [row] = page.rows
        assert (row.tran_id, row.type, row.asset, row.amount, row.status) == (
            record.tran_id,
            kind,
            "USDT",
            dec(amount),
            TransferStatus.CONFIRMED,
        )
        assert isinstance(row.timestamp, int)

    cross = await client.get_transfer_history()
    assert cross.total == 4
    assert [(r.tx_id, r.type, r.amount, r.trans_from, r.trans_to) for r in cross.rows] == [
        (t4.tran_id, "ROLL_OUT", dec("100"), "CROSS_MARGIN", "SPOT"),
        (t3.tran_id, "ROLL_IN", dec("50"), "ISOLATED_MARGIN", "CROSS_MARGIN"),
        (t2.tran_id, "ROLL_OUT", dec("200"), "CROSS_MARGIN", "ISOLATED_MARGIN"),
        (t1.tran_id, "ROLL_IN", dec("1000"), "SPOT", "CROSS_MARGIN"),
    ]
    assert [r.tx_id for r in (await client.get_transfer_history(type="ROLL_IN")).rows] == [
        t3.tran_id,
        t1.tran_id,
    ]
    isolated = await client.get_transfer_history(isolated_symbol="BTCUSDT")
    assert [(r.tx_id, r.type, r.from_symbol, r.to_symbol) for r in isolated.rows] == [
        (t3.tran_id, "ROLL_OUT", "BTCUSDT", None),
        (t2.tran_id, "ROLL_IN", None, "BTCUSDT"),
    ]
    paged = [r.tx_id async for r in client.iter_transfer_history(size=3)]
    assert paged == [r.tx_id for r in cross.rows]


async def test_capital_flow_and_iter_capital_flow_over_more_than_seven_days(
    exchange: FakeExchange, creds: Credentials, client: MarginClient
) -> None:
    # Three transfers into cross margin, 10 days ago, 3 days ago and now (the fake's clock is
    # moved back; the client follows it through -1021 resyncs).
    now = exchange.server_time_ms()
    amounts = {-10 * DAY_MS: "100", -3 * DAY_MS: "200", 0: "300"}
    tran_ids = []
    for offset, amount in amounts.items():
        exchange.set_clock_skew(offset)
        tran_ids.append((await client.transfer("MAIN_MARGIN", "USDT", amount)).tran_id)
    end = exchange.server_time_ms()
    start = now - 12 * DAY_MS
    path = "/sapi/v1/margin/capital-flow"

    with pytest.raises(ParameterError, match="end_time"):
        await client.get_capital_flow(start_time=start, end_time=end)  # > 7 days: never sent
    assert requests_to(exchange, path) == 0

    rows = [row async for row in client.iter_capital_flow(start, end, asset="USDT")]
    # Two windows of at most 7 days ([-12 d, -5 d), [-5 d, now]), one request each.
    assert requests_to(exchange, path) == 2
    assert [(r.tran_id, r.type, r.asset, r.amount) for r in rows] == [
        (tran_id, CapitalFlowType.TRANSFER, "USDT", dec(amount))
        for tran_id, amount in zip(tran_ids, amounts.values(), strict=True)
    ]
    times = [r.timestamp for r in rows if r.timestamp is not None]
    assert len(times) == len(rows) and times == sorted(times)
    assert times[0] < now - 9 * DAY_MS

    recent = await client.get_capital_flow(type=CapitalFlowType.TRANSFER)
    assert [r.tran_id for r in recent] == tran_ids
    later = await client.get_capital_flow(from_id=recent[0].id, limit=1)
    assert [r.id for r in later] == [recent[1].id]


# Market data, time, order counts


async def test_market_data_server_time_and_order_count_usage(
    exchange: FakeExchange, client: MarginClient
) -> None:
    before = exchange.server_time_ms()
    server_time = await client.server_time()
    assert before <= server_time <= exchange.server_time_ms()

    await clear_of_boundary(10.0)  # both orders in one 10 s window
    for _ in range(2):
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001")
    usage = await client.get_order_count_usage()
    assert [(u.rate_limit_type, u.interval, u.interval_num, u.limit, u.count) for u in usage] == [
        ("ORDERS", "SECOND", 10, 10_000, 2),
        ("ORDERS", "DAY", 1, 200_000, 2),
    ]
    iso_usage = await client.get_order_count_usage(symbol="BTCUSDT", is_isolated=True)
    assert [u.interval for u in iso_usage] == ["SECOND", "DAY"]

    specs = exchange.ledger.symbols()
    assets = await client.get_all_assets()
    assert [a.asset_name for a in assets] == sorted({x for s in specs for x in (s.base, s.quote)})
    assert all(a.is_borrowable is True and a.user_min_borrow == 0 for a in assets)
    assert [a.asset_name for a in await client.get_all_assets(asset="ETH")] == ["ETH"]
    with pytest.raises(InvalidMarginAsset):
        await client.get_all_assets(asset="NOPE")

    pairs = await client.get_all_pairs()
    assert [(p.symbol, p.base, p.quote) for p in pairs] == [
        (s.symbol, s.base, s.quote) for s in specs
    ]
    assert [p.id for p in pairs] == list(range(1, len(specs) + 1))
    assert all(p.is_margin_trade and p.is_buy_allowed and p.is_sell_allowed for p in pairs)
    [ethbtc] = await client.get_all_pairs(symbol="ETHBTC")
    assert (ethbtc.base, ethbtc.quote) == ("ETH", "BTC")
    with pytest.raises(BadSymbol):
        await client.get_all_pairs(symbol="NOPEUSDT")
    isolated_pairs = await client.get_all_isolated_pairs()
    assert [(p.symbol, p.base, p.quote) for p in isolated_pairs] == [
        (s.symbol, s.base, s.quote) for s in specs
    ]
    assert [p.symbol for p in await client.get_all_isolated_pairs(symbol="BNBUSDT")] == ["BNBUSDT"]


# Stream tokens and risk-stream listen keys


async def test_listen_tokens_and_risk_listen_keys(
    exchange: FakeExchange, client: MarginClient
) -> None:
    before = exchange.server_time_ms()
    cross = await client.create_listen_token()
    isolated = await client.create_listen_token(symbol="BTCUSDT", validity_ms=60_000)
    after = exchange.server_time_ms()
    assert cross.token and isolated.token and cross.token != isolated.token
    assert cross.expiration_time is not None and isolated.expiration_time is not None
    assert before + DAY_MS <= cross.expiration_time <= after + DAY_MS  # default validity: 24 h
    assert before + 60_000 <= isolated.expiration_time <= after + 60_000
    with pytest.raises(MarginAccountNotFound):
        await client.create_listen_token(symbol="ETHUSDT")  # no isolated ETHUSDT account

    key = await client.start_risk_data_stream()
    assert len(key.listen_key) == 64
    # While a key is active, POST answers the same key (and extends it).
    assert (await client.start_risk_data_stream()).listen_key == key.listen_key
    await client.keepalive_risk_data_stream(key.listen_key)
    await client.close_risk_data_stream(key.listen_key)
    with pytest.raises(InvalidListenKey):
        await client.keepalive_risk_data_stream(key.listen_key)
    assert (await client.start_risk_data_stream()).listen_key != key.listen_key


# Client ids with reserved characters, non-ASCII parameters


async def test_reserved_characters_in_client_ids_round_trip_signed(
    exchange: FakeExchange, client: MarginClient
) -> None:
    # Valid ids (Binance's ^[.A-Z:/a-z0-9_-]{1,36}$) whose `/` and `:` are percent-encoded on the
    # wire: the signature must cover the encoded bytes, for every key type.
    order = await client.new_order(
        "BTCUSDT",
        "BUY",
        "LIMIT",
        quantity="0.01",
        price="50000",
        time_in_force="GTC",
        new_client_order_id="a/b:c.d_e-f",
    )
    assert order.client_order_id == "a/b:c.d_e-f"
    got = await client.get_order("BTCUSDT", orig_client_order_id="a/b:c.d_e-f")
    assert (got.order_id, got.client_order_id) == (order.order_id, "a/b:c.d_e-f")
    canceled = await client.cancel_order(
        "BTCUSDT", orig_client_order_id="a/b:c.d_e-f", new_client_order_id="x:y/z.1"
    )
    assert (canceled.status, canceled.orig_client_order_id, canceled.client_order_id) == (
        OrderStatus.CANCELED,
        "a/b:c.d_e-f",
        "x:y/z.1",
    )

    oco = await client.new_oco(
        "BTCUSDT",
        "SELL",
        "0.01",
        "65000",
        "55000",
        list_client_order_id="l/1:2.3_4-5",
        limit_client_order_id="lim/1:a",
        stop_client_order_id="stp/1:b",
    )
    assert oco.list_client_order_id == "l/1:2.3_4-5"
    assert {r.client_order_id for r in oco.order_reports} == {"lim/1:a", "stp/1:b"}
    got_list = await client.get_order_list(orig_client_order_id="l/1:2.3_4-5")
    assert got_list.order_list_id == oco.order_list_id
    canceled_list = await client.cancel_order_list("BTCUSDT", list_client_order_id="l/1:2.3_4-5")
    assert canceled_list.list_order_status is ListOrderStatus.ALL_DONE

    # The typed methods refuse non-ASCII symbols and assets (ParameterError); the transport still
    # sends such values as percent-encoded UTF-8 and signs them as such: the fake accepts the
    # signature and rejects only the unknown symbol/asset.
    with pytest.raises(ParameterError):
        await client.get_order("ＢＴＣUSDT", order_id=1)
    with pytest.raises(BadSymbol):
        await client._call(ENDPOINTS["get_order"], [("symbol", "ＢＴＣUSDT"), ("orderId", "1")])
    with pytest.raises(InvalidMarginAsset):
        await client._call(ENDPOINTS["get_max_transferable"], [("asset", "币")])


# Endpoints the fake does not back


async def test_every_other_endpoint_answers_1020_through_the_client(
    exchange: FakeExchange,
) -> None:
    creds = exchange.add_account(margin_balances=CROSS)
    async with exchange.client(creds) as client:
        with pytest.raises(BinanceAPIError) as info:
            await client.disable_isolated_account("BTCUSDT")
        assert type(info.value) is BinanceAPIError
        assert (info.value.status, info.value.code) == (400, -1020)
        assert "not supported" in info.value.msg

        # The same transport every method uses, with no parameters: unsupported routes answer
        # -1020 whatever they are sent; served ones answer or name a missing parameter. This ties
        # SERVED to the fake's routes.
        assert set(ENDPOINTS) >= SERVED
        for name, endpoint in ENDPOINTS.items():
            try:
                await client._call(endpoint, [])
            except BinanceAPIError as exc:
                assert (exc.code == -1020) is (name not in SERVED), (name, exc)
            else:
                assert name in SERVED, name
    assert exchange.stats.responses_429 == 0


# Keys, clocks and failures


async def test_read_only_key_gets_the_typed_2015_and_changes_nothing(
    exchange: FakeExchange, key_type: KeyType
) -> None:
    creds = exchange.add_account(SPOT, margin_balances=CROSS, key_type=key_type, read_only=True)
    async with exchange.client(creds) as client:
        account = await client.get_account()  # reads need no permission
        assert {a.asset: a.free for a in account.user_assets}["USDT"] == dec("50000")
        attempts: list[Any] = [
            client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01"),
            client.borrow("BTC", "0.1"),
            client.transfer("MAIN_MARGIN", "USDT", "10"),
            client.cancel_open_orders("BTCUSDT"),
        ]
        for attempt in attempts:
            with pytest.raises(RejectedApiKey) as info:
                await attempt
            assert (info.value.status, info.value.code) == (401, -2015)
        assert await client.get_all_orders("BTCUSDT") == []
    assert exchange.ledger.balance(creds.account_id, "BTC").borrowed == 0
    assert exchange.ledger.balance(creds.account_id, "USDT", wallet="SPOT").free == dec("20000")


@pytest.mark.parametrize(
    ("skew_ms", "recv_window"),
    [
        (3000, 2000),  # server ahead: the request is older than recvWindow
        (-3000, 5000),  # server behind: the request is more than 1 s in its future
    ],
)
async def test_clock_skew_is_resynced_on_1021(
    exchange: FakeExchange, skew_ms: int, recv_window: int
) -> None:
    creds = exchange.add_account(margin_balances=CROSS)
    async with exchange.client(creds, recv_window=recv_window) as client:
        await client.get_account()  # first use: one clock sync
        assert requests_to(exchange, "/api/v3/time") == 1
        exchange.set_clock_skew(skew_ms)
        account = await client.get_account()
        assert account.trade_enabled is True
    # Rejected with -1021, resynced, re-signed and resent once.
    assert requests_to(exchange, "/api/v3/time") == 2
    assert requests_to(exchange, "/sapi/v1/margin/account") == 3
    assert abs(client.clock.offset_ms - skew_ms) < 1000


async def test_get_503_is_retried_and_succeeds(exchange: FakeExchange) -> None:
    creds = exchange.add_account(margin_balances=CROSS)
    async with exchange.client(creds) as client:
        exchange.fail_next("/sapi/v1/margin/account", status=503, method="GET")
        account = await client.get_account()
    assert {a.asset: a.free for a in account.user_assets}["BTC"] == dec("1")
    assert requests_to(exchange, "/sapi/v1/margin/account") == 2


async def test_order_503_is_unknown_outcome_and_never_duplicated(exchange: FakeExchange) -> None:
    creds = exchange.add_account(margin_balances=CROSS)
    path = "/sapi/v1/margin/order"
    async with exchange.client(creds) as client:
        exchange.fail_next(path, status=503, method="POST")
        with pytest.raises(ExecutionStatusUnknown) as info:
            await client.new_order(
                "BTCUSDT", "BUY", "MARKET", quantity="0.01", new_client_order_id="e2e-unknown-1"
            )
        assert (info.value.client_order_id, info.value.endpoint) == ("e2e-unknown-1", "new_order")
        assert requests_to(exchange, path) == 1  # an order is never resent blindly
        # Reconcile by client id: the order does not exist, so placing it again is safe.
        with pytest.raises(NoSuchOrder):
            await client.get_order("BTCUSDT", orig_client_order_id="e2e-unknown-1")

        exchange.fail_next(path, status=503, method="POST")
        with pytest.raises(ExecutionStatusUnknown) as info:
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
        generated = info.value.client_order_id
        assert generated is not None and generated.startswith("bma")
        with pytest.raises(NoSuchOrder):
            await client.get_order("BTCUSDT", orig_client_order_id=generated)

        placed = await client.new_order(
            "BTCUSDT", "BUY", "MARKET", quantity="0.01", new_client_order_id="e2e-unknown-1"
        )
        assert placed.status is OrderStatus.FILLED
        orders = await client.get_all_orders("BTCUSDT")
    assert [o.client_order_id for o in orders] == ["e2e-unknown-1"]
    assert exchange.ledger.balance(creds.account_id, "BTC").free == dec("1.00999")


@pytest.mark.parametrize(
    "lost",
    [
        pytest.param(BACKEND_TIMEOUT, id="answered-503"),
        pytest.param({"disconnect": True}, id="connection-dropped"),
    ],
)
async def test_order_executed_with_its_answer_lost_is_unknown_and_found_by_client_id(
    exchange: FakeExchange, lost: dict[str, Any]
) -> None:
    creds = exchange.add_account(margin_balances=CROSS)
    path = "/sapi/v1/margin/order"
    async with exchange.client(creds) as client:
        await client.get_account()  # a kept-alive connection, as in a running strategy
        exchange.fail_next(path, method="POST", execute=True, **lost)
        with pytest.raises(ExecutionStatusUnknown) as info:
            await client.new_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="59000", time_in_force="GTC",
                new_client_order_id="e2e-lost-1",
            )  # fmt: skip
        assert (info.value.client_order_id, info.value.endpoint) == ("e2e-lost-1", "new_order")
        if "disconnect" in lost:
            assert isinstance(info.value.__cause__, TransportError)
        else:
            assert (info.value.status, info.value.code) == (503, -1007)
        assert requests_to(exchange, path) == 1  # never resent blindly
        # It was executed: the order is on the book, found by its client id.
        found = await client.get_order("BTCUSDT", orig_client_order_id="e2e-lost-1")
        assert (found.status, found.price, found.orig_qty) == (
            OrderStatus.NEW,
            dec("59000"),
            dec("0.01"),
        )
        assert [o.client_order_id for o in await client.get_open_orders("BTCUSDT")] == [
            "e2e-lost-1"
        ]
    assert exchange.ledger.balance(creds.account_id, "USDT").locked == dec("590")


async def test_cancel_whose_connection_drops_after_executing_is_not_resent(
    exchange: FakeExchange,
) -> None:
    creds = exchange.add_account(margin_balances=CROSS)
    path = "/sapi/v1/margin/order"
    async with exchange.client(creds) as client:
        placed = await client.new_order(
            "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="59000", time_in_force="GTC"
        )
        exchange.fail_next(path, method="DELETE", execute=True, disconnect=True)
        with pytest.raises(ExecutionStatusUnknown) as info:
            await client.cancel_order("BTCUSDT", order_id=placed.order_id)
        assert isinstance(info.value.__cause__, TransportError)
        # One DELETE reached the exchange: no transport-level resend turned a cancel that
        # worked into a -2011 "Unknown order sent.".
        assert exchange.stats.requests_by_path[path] == 2  # the POST and one DELETE
        found = await client.get_order("BTCUSDT", order_id=placed.order_id)
        assert found.status is OrderStatus.CANCELED


async def test_order_executed_after_its_answer_is_not_there_then_is(
    exchange: FakeExchange,
) -> None:
    creds = exchange.add_account(margin_balances=CROSS)
    async with exchange.client(creds) as client:
        exchange.fail_next(
            "/sapi/v1/margin/order", method="POST", execute="later", **BACKEND_TIMEOUT
        )
        with pytest.raises(ExecutionStatusUnknown) as info:
            await client.new_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="59000", time_in_force="GTC",
                new_client_order_id="e2e-late-1",
            )  # fmt: skip
        assert info.value.client_order_id == "e2e-late-1"
        # Asked at once, Binance does not know it: a reconciliation can conclude the wrong thing.
        with pytest.raises(NoSuchOrder):
            await client.get_order("BTCUSDT", orig_client_order_id="e2e-late-1")
        assert exchange.run_deferred() == 1
        found = await client.get_order("BTCUSDT", orig_client_order_id="e2e-late-1")
        assert found.status is OrderStatus.NEW
        assert exchange.run_deferred() == 0


async def test_fake_client_for_each_key_type_with_options_passed_through(
    exchange: FakeExchange, creds: Credentials
) -> None:
    limiter = RateLimiter()
    client = exchange.client(creds, limiter=limiter, recv_window=9000)
    assert (client.base_url, client.ws_api_url, client.risk_stream_url) == (
        exchange.rest_url,
        exchange.ws_api_url,
        exchange.risk_stream_url,
    )
    assert client.limiter is limiter
    assert f"key_type={creds.key_type}" in repr(client)
    assert exchange.stats.requests == 0  # not entered, nothing sent
    async with client:
        await client.get_account()  # signed with the issued secret or private key
        # 6 s behind is inside the 9 s recvWindow passed through: no -1021, no resync.
        exchange.set_clock_skew(6000)
        await client.get_account()
    assert requests_to(exchange, "/sapi/v1/margin/account") == 2
    assert requests_to(exchange, "/api/v3/time") == 1
    with pytest.raises(TypeError):
        exchange.client(creds, base_url="https://api.binance.com")


async def test_signed_request_is_stamped_after_the_limiter_wait() -> None:
    window = 2.0
    async with FakeExchange(seed=SEED, window=window, sapi_ip_limit=10) as exchange:
        creds = exchange.add_account(margin_balances=CROSS)
        limiter = RateLimiter(window=window, sapi_ip_limit=10, critical_reserve=0.0)
        async with exchange.client(creds, limiter=limiter, recv_window=1000) as client:
            await client.sync_clock()
            # Just after a window boundary, two get_account (weight 10 each, the whole budget):
            # the second waits about one window (2 s) in the limiter, longer than recvWindow.
            boundary = (math.floor(time.time() / window) + 1) * window
            await asyncio.sleep(boundary + 0.26 - time.time())
            accounts = await asyncio.gather(client.get_account(), client.get_account())
        assert [a.trade_enabled for a in accounts] == [True, True]
        assert requests_to(exchange, "/sapi/v1/margin/account") == 2  # no -1021 resend
        assert requests_to(exchange, "/api/v3/time") == 1  # no resync


async def test_order_count_limits_learned_from_the_exchange_stop_orders_before_sending() -> None:
    # The exchange allows 3 orders per 10 s; the limiter starts with Binance's doc defaults
    # (10,000) and only knows better after get_order_count_usage().
    async with FakeExchange(seed=SEED, order_limit_10s=3) as exchange:
        creds = exchange.add_account(margin_balances=CROSS)
        path = "/sapi/v1/margin/order"
        # No critical reserve: all 3 orders are ordinary ones.
        limiter = RateLimiter(max_wait=0.1, critical_reserve=0.0)
        async with exchange.client(creds, limiter=limiter) as client:
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001")
            usage = await client.get_order_count_usage()
            assert (usage[0].interval_num, usage[0].limit, usage[0].count) == (10, 3, 1)
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001")
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001")
            # The fourth would be the exchange's -1015: the limiter refuses it locally.
            with pytest.raises(RateLimited):
                await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001")
        assert requests_to(exchange, path) == 3
        assert exchange.stats.responses_429 == 0


@pytest.mark.parametrize(("name", "orders"), [("new_oco", 2), ("new_oto", 2), ("new_otoco", 3)])
async def test_order_lists_charge_each_of_their_orders_to_the_order_count(
    name: str, orders: int
) -> None:
    # Binance counts every order of a list. With room for one list and one more order, the
    # second list must be refused locally: charged as a single order it would be sent, and the
    # exchange would answer -1015. Both clocks stand still in the middle of a 10 s window (so no
    # window boundary can pass), a little ahead of the real time the client signs with.
    frozen = math.floor(time.time() / 10) * 10 + 15.0
    async with FakeExchange(
        seed=SEED, order_limit_10s=orders + 1, clock=lambda: frozen
    ) as exchange:
        creds = exchange.add_account(margin_balances=CROSS)
        limiter = RateLimiter(max_wait=0.1, critical_reserve=0.0, clock=lambda: frozen)
        async with exchange.client(creds, limiter=limiter, recv_window=60_000) as client:
            await client.get_order_count_usage()

            await place_list(client, name)
            assert limiter.usage(account=client.account)["ORDERS:10S"] == orders
            with pytest.raises(RateLimited):
                await place_list(client, name)
        assert requests_to(exchange, ENDPOINTS[name].path) == 1
        assert exchange.stats.responses_429 == 0
