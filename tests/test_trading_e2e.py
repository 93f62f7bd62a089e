"""Special keys end to end on the fake exchange: TradingSession and REST (special_key=True).

A strategy creates a special key through the SAPI, opens a TradingSession, places, replaces and
cancels margin orders over the WebSocket API and receives its own fills; the same key over REST;
the fake's faults (lost answers, dropped connections, serverShutdown) through the real client.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from binance_margin_async import ExecutionStatusUnknown, MarginClient, trading
from binance_margin_async._tradecore import signed_params
from binance_margin_async.errors import (
    BinanceAPIError,
    CancelRejected,
    InvalidMessage,
    NewOrderRejected,
    ParameterError,
    TransportError,
)
from binance_margin_async.events import ExecutionReport, StreamGap
from binance_margin_async.models import OrderList
from binance_margin_async.testing import FakeExchange
from binance_margin_async.trading import TradingSessionConfig

WAIT = 10.0


@dataclass
class Special:
    exchange: FakeExchange
    master: MarginClient
    api_key: str
    secret: str | None
    private_key: bytes | None

    def client(self, **kwargs: object) -> MarginClient:
        return MarginClient(
            self.api_key,
            self.secret,
            private_key=self.private_key,
            base_url=self.exchange.rest_url,
            ws_api_url=self.exchange.ws_api_url,
            special_key=True,
            **kwargs,  # type: ignore[arg-type]
        )


def _ed25519() -> tuple[bytes, str]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


async def _special(
    ex: FakeExchange, master: MarginClient, *, ed25519: bool = True, symbol: str | None = None
) -> Special:
    if ed25519:
        private, public = _ed25519()
        key = await master.create_special_key("bot", public_key=public, symbol=symbol)
        assert key.api_key is not None and key.secret_key is None
        return Special(ex, master, key.api_key, None, private)
    key = await master.create_special_key("bot", symbol=symbol)
    assert key.api_key is not None and key.secret_key is not None
    return Special(ex, master, key.api_key, key.secret_key, None)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeExchange, MarginClient]]:
    async with FakeExchange(seed=3) as ex:
        ex.set_price("BTCUSDT", "60000")
        creds = ex.add_account(
            margin_balances={"USDT": "100000", "BTC": "1"},
            isolated={"ETHUSDT": {"USDT": "5000"}},
        )
        async with ex.client(creds) as master:
            yield ex, master


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        for _ in itertools.count():
            if check():
                return
            await asyncio.sleep(0.01)


async def test_place_replace_cancel_and_own_fills_over_the_ws_api(
    fake: tuple[FakeExchange, MarginClient],
) -> None:
    ex, master = fake
    special = await _special(ex, master)
    reports: list[ExecutionReport] = []
    async with special.client() as client:
        session = client.trading_session()
        session.on(ExecutionReport, reports.append)
        async with session:
            # round=True: the fake's published tick (0.01) and step; 0.1 + 0.2 goes out as 0.3.
            order = await session.new_order(
                "BTCUSDT", "BUY", "LIMIT", quantity=0.1 + 0.2, price=59000.129,
                time_in_force="GTC", round=True,
            )  # fmt: skip
            assert order.orig_qty == Decimal("0.3") and order.price == Decimal("59000.12")
            assert order.status == "NEW"
            fetched = await session.get_order("BTCUSDT", order_id=order.order_id)
            assert fetched.client_order_id == order.client_order_id
            assert [o.order_id for o in await session.get_open_orders("BTCUSDT")] == [
                order.order_id
            ]
            replaced = await session.cancel_replace_order(
                "BTCUSDT", "BUY", "LIMIT", cancel_replace_mode="STOP_ON_FAILURE",
                cancel_order_id=order.order_id, quantity="0.2", price="59500",
                time_in_force="GTC",
            )  # fmt: skip
            assert replaced.cancel_result == "SUCCESS"
            assert replaced.new_order_result == "SUCCESS"
            new = replaced.new_order_response
            assert new is not None and new.order_id is not None
            ex.set_price("BTCUSDT", "59400")  # the replacement fills
            await _until(lambda: any(r.execution_type == "TRADE" for r in reports))
            with pytest.raises(CancelRejected):
                await session.cancel_order("BTCUSDT", order_id=new.order_id)
            resting = await session.new_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.1", price="70000", time_in_force="GTC"
            )
            cancelled = await session.cancel_order("BTCUSDT", order_id=resting.order_id)
            assert cancelled.status == "CANCELED"
    trade = next(r for r in reports if r.execution_type == "TRADE")
    assert trade.order_id == new.order_id and trade.account == "CROSS"
    assert trade.last_executed_quantity == Decimal("0.2")
    # The fill is the special key's margin account's: the master sees the BTC arrive.
    account = await master.get_account()
    btc = next(a for a in account.user_assets if a.asset == "BTC")
    assert trade.commission_asset == "BTC"
    assert btc.free == Decimal("1.2") - trade.commission


async def test_order_lists_and_cancel_all(fake: tuple[FakeExchange, MarginClient]) -> None:
    ex, master = fake
    special = await _special(ex, master)
    async with special.client() as client, client.trading_session() as session:
        oco = await session.new_oco("BTCUSDT", "SELL", "0.1", "65000", "55000")
        assert isinstance(oco, OrderList) and len(oco.orders) == 2
        cancelled = await session.cancel_order_list("BTCUSDT", order_list_id=oco.order_list_id)
        assert cancelled.list_order_status == "ALL_DONE"
        await session.new_order(
            "BTCUSDT", "BUY", "LIMIT", quantity="0.1", price="50000", time_in_force="GTC"
        )
        gone = await session.cancel_open_orders("BTCUSDT")
        assert len(gone) == 1
        assert await session.get_open_orders("BTCUSDT") == []


async def test_binance_errors_come_back_typed(fake: tuple[FakeExchange, MarginClient]) -> None:
    ex, master = fake
    special = await _special(ex, master)
    async with special.client() as client, client.trading_session() as session:
        with pytest.raises(InvalidMessage):  # -1013: price off the tick, not rounded
            await session.new_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.1", price="59000.123", time_in_force="GTC"
            )
        with pytest.raises(NewOrderRejected):  # -2010: more than the account holds
            await session.new_order("BTCUSDT", "SELL", "MARKET", quantity="500")
        with pytest.raises(ParameterError):  # round=True refuses below the minimum notional
            await session.new_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.00001", price="1", time_in_force="GTC",
                round=True,
            )  # fmt: skip


async def test_hmac_special_key_signs_each_request_and_gets_its_events(
    fake: tuple[FakeExchange, MarginClient],
) -> None:
    ex, master = fake
    special = await _special(ex, master, ed25519=False)
    reports: list[ExecutionReport] = []
    async with special.client() as client:
        session = client.trading_session()
        session.on(ExecutionReport, reports.append)
        async with session:
            order = await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
            await _until(lambda: any(r.order_id == order.order_id for r in reports))
    assert order.status == "FILLED"


async def test_isolated_special_key_trades_its_pair(
    fake: tuple[FakeExchange, MarginClient],
) -> None:
    ex, master = fake
    ex.set_price("ETHUSDT", "3000")
    special = await _special(ex, master, symbol="ETHUSDT")
    reports: list[ExecutionReport] = []
    async with special.client() as client:
        session = client.trading_session(config=TradingSessionConfig(account="ETHUSDT"))
        session.on(ExecutionReport, reports.append)
        async with session:
            order = await session.new_order("ETHUSDT", "BUY", "MARKET", quantity="0.1")
            await _until(lambda: any(r.order_id == order.order_id for r in reports))
    assert {r.account for r in reports} == {"ETHUSDT"}
    trade = next(r for r in reports if r.execution_type == "TRADE")
    isolated = await master.get_isolated_account(["ETHUSDT"])
    # The isolated pair's account got the ETH (less the commission), not the cross account.
    base = isolated.assets[0].base_asset
    assert base is not None and base.free == Decimal("0.1") - trade.commission
    cross = await master.get_account()
    assert all(a.asset != "ETH" or a.free == 0 for a in cross.user_assets)


async def test_rest_special_key_routes(fake: tuple[FakeExchange, MarginClient]) -> None:
    ex, master = fake
    special = await _special(ex, master)
    async with special.client() as client:
        order = await client.new_order(
            "BTCUSDT", "BUY", "LIMIT", quantity="0.1", price="50000", time_in_force="GTC"
        )
        result = await client.cancel_replace_order(
            "BTCUSDT", "BUY", "LIMIT", cancel_replace_mode="ALLOW_FAILURE",
            cancel_order_id=order.order_id, quantity="0.1", price="50001", time_in_force="GTC",
        )  # fmt: skip
        assert result.new_order_response is not None
        assert len(await client.get_open_orders("BTCUSDT")) == 1
        assert len(await client.cancel_open_orders("BTCUSDT")) == 1
    # The special key trades the master's margin account, on /api/v3 only.
    paths = ex.stats.requests_by_path
    assert paths.get("/api/v3/order", 0) >= 1 and paths.get("/sapi/v1/margin/order", 0) == 0


async def test_lost_answer_is_unknown_and_the_order_can_be_found(
    fake: tuple[FakeExchange, MarginClient],
) -> None:
    ex, master = fake
    special = await _special(ex, master)
    errors: list[Exception] = []
    gaps: list[StreamGap] = []
    config = TradingSessionConfig(user_data=True, reconnect_min=0.01, reconnect_max=0.1)
    async with special.client() as client:
        session = client.trading_session(config=config)
        session.on_error(errors.append)
        session.on(StreamGap, gaps.append)
        async with session:
            # Executed, then the connection drops instead of the answer.
            ex.fail_next("order.place", execute=True, disconnect=True)
            with pytest.raises(ExecutionStatusUnknown) as info:
                await session.new_order(
                    "BTCUSDT", "BUY", "LIMIT", quantity="0.1", price="50000",
                    time_in_force="GTC", new_client_order_id="lost-order-1",
                )  # fmt: skip
            assert info.value.client_order_id == "lost-order-1"
            await _until(lambda: session.state == "live" and bool(gaps))
            found = await session.get_order("BTCUSDT", orig_client_order_id="lost-order-1")
            assert found.status == "NEW"  # it was executed once, never resent
            assert len(await session.get_open_orders("BTCUSDT")) == 1
    assert any("lost" in str(error) for error in errors)


async def test_server_shutdown_moves_without_a_gap(fake: tuple[FakeExchange, MarginClient]) -> None:
    ex, master = fake
    special = await _special(ex, master)
    gaps: list[StreamGap] = []
    reports: list[ExecutionReport] = []
    config = TradingSessionConfig(overlap=0.05)
    async with special.client() as client:
        session = client.trading_session(config=config)
        session.on(StreamGap, gaps.append)
        session.on(ExecutionReport, reports.append)
        async with session:
            before = ex.stats.connections_opened
            ex.server_shutdown(grace=0.5)
            await _until(lambda: ex.stats.connections_opened > before)
            order = await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
            await _until(lambda: any(r.order_id == order.order_id for r in reports))
            await asyncio.sleep(0.6)  # past the grace: the old connection is gone by now
            again = await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
            assert again.status == "FILLED"
    assert gaps == [] and session.state == "closed"
    assert sum(1 for r in reports if r.order_id == order.order_id) == 2  # NEW + TRADE, once each


async def test_deleted_key_cannot_log_on_and_says_so(
    fake: tuple[FakeExchange, MarginClient],
) -> None:
    ex, master = fake
    special = await _special(ex, master)
    await master.delete_special_key(api_key=special.api_key)
    async with special.client() as client:
        with pytest.raises(BinanceAPIError):
            await client.trading_session().__aenter__()


async def test_clock_drift_is_resynced_and_signed_again(
    fake: tuple[FakeExchange, MarginClient],
) -> None:
    ex, master = fake
    special = await _special(ex, master)
    async with special.client() as client, client.trading_session() as session:
        offset = client.clock.offset_ms
        ex.set_clock_skew(-3000)  # the exchange's clock now runs 3 s behind: -1021 once
        order = await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
        assert order.status == "FILLED"
        assert client.clock.offset_ms < offset - 2000  # measured again after the rejection


async def test_a_key_that_can_no_longer_log_on_is_reported(
    fake: tuple[FakeExchange, MarginClient],
) -> None:
    ex, master = fake
    special = await _special(ex, master)
    errors: list[Exception] = []
    config = TradingSessionConfig(reconnect_min=0.01, reconnect_max=0.05)
    async with special.client() as client:
        session = client.trading_session(config=config)
        session.on_error(errors.append)
        async with session:
            await master.delete_special_key(api_key=special.api_key)
            ex.drop_connections()
            await _until(lambda: any("log on again" in str(e) for e in errors))
            assert session.state == "reconnecting"
            with pytest.raises(TransportError) as info:
                await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
            assert not info.value.request_may_have_been_sent


async def test_refused_own_events_are_reported_and_the_account_stream_has_them() -> None:
    # The fake's switch for the alternative Binance may have chosen: no userDataStream.subscribe
    # for special keys; the account's listen token (its own key) carries their orders' events.
    async with FakeExchange(seed=4, special_key_user_stream="listen_token") as ex:
        ex.set_price("BTCUSDT", "60000")
        creds = ex.add_account(margin_balances={"USDT": "100000"})
        async with ex.client(creds) as master:
            special = await _special(ex, master)
            errors: list[Exception] = []
            account_reports: list[ExecutionReport] = []
            stream = master.user_stream()
            stream.on(ExecutionReport, account_reports.append)
            async with stream, special.client() as client:
                session = client.trading_session(config=TradingSessionConfig(user_data=True))
                session.on_error(errors.append)
                async with session:
                    order = await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
                    await _until(lambda: any(r.order_id == order.order_id for r in account_reports))
                    await _until(lambda: bool(errors))
    assert "refused" in str(errors[0]) and "user_stream()" in str(errors[0])


@pytest.mark.parametrize("ed25519", [True, False], ids=["ed25519", "hmac"])
async def test_debug_logs_never_show_the_api_key_or_a_signature(
    fake: tuple[FakeExchange, MarginClient],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    ed25519: bool,
) -> None:
    ex, master = fake
    special = await _special(ex, master, ed25519=ed25519)
    signatures: list[str] = []

    def recording(params: Mapping[str, str], **kwargs: Any) -> dict[str, str]:
        stamped = signed_params(params, **kwargs)
        signatures.extend(v for k, v in stamped.items() if k == "signature")
        return stamped

    monkeypatch.setattr(trading, "signed_params", recording)
    caplog.set_level(logging.DEBUG)  # websockets logs every frame at DEBUG
    async with special.client() as client, client.trading_session() as session:
        await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
    assert signatures  # session.logon (Ed25519) or every request (HMAC) was signed
    assert any(r.getMessage().startswith("> TEXT") for r in caplog.records)  # frames were logged
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    # The masked form shows 4 characters; websockets shows a long payload's first 48 and last 24
    # (a signature's tail unless the frame was masked before it was cut). 12 characters: no
    # chance match with the rest of the log.
    for secret in (special.api_key, *signatures):
        assert secret[:12] not in text and secret[-12:] not in text
