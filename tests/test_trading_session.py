"""TradingSession's shell against a small scripted WebSocket API server on 127.0.0.1.

The server checks what Binance checks on this path (logon for Ed25519, per-request signatures for
HMAC over the parameters sorted by name) and has switches for the faults the session must survive:
an answer that never comes, a dropped connection, serverShutdown. Deterministic: no timing
assertions; waits are bounded by generous timeouts.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from test_rest_shell import LocalServer
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from binance_margin_async import ExecutionStatusUnknown, MarginClient, RateLimiter
from binance_margin_async.errors import CancelRejected, TransportError
from binance_margin_async.events import ExecutionReport, StreamGap
from binance_margin_async.ratelimit import API_IP_KEY, ORDERS_KEY
from binance_margin_async.signing import HmacSigner, ws_api_payload
from binance_margin_async.trading import TradingSessionConfig

KEY = "special-0123456789abcdef"
SECRET = "special-secret"
ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIIJEYWtGBrhACmb9Dvy+qa8WEf0lQOl1s4CLIAB9m89u\n"
    "-----END PRIVATE KEY-----\n"
)
ETHBTC = {
    "symbol": "ETHBTC",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0", "maxPrice": "0", "tickSize": "0.00001"},
        {"filterType": "LOT_SIZE", "minQty": "0.1", "maxQty": "1000", "stepSize": "0.1"},
    ],
}
WAIT = 10.0  # generous: CI is a loaded 2-core box


@dataclass
class Script:
    """The server's behaviour and what it saw."""

    hmac: HmacSigner | None = None
    connections: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Fault switches, consumed by the next order.place.
    swallow_next_order: bool = False
    drop_on_next_order: bool = False
    order_ids: Any = field(default_factory=lambda: itertools.count(1))
    live: list[ServerConnection] = field(default_factory=list)
    subscribed: set[ServerConnection] = field(default_factory=set)
    received_shutdown: asyncio.Event = field(default_factory=asyncio.Event)

    def methods(self) -> list[str]:
        return [request["method"] for request in self.requests]


def _answer(request_id: int, result: Any, *, orders: int = 0) -> bytes:
    limits: list[dict[str, Any]] = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": 6000, "count": 50},
    ]  # fmt: skip
    if orders:
        limits.append(
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": 100, "count": orders}
        )  # fmt: skip
    return orjson.dumps({"id": request_id, "status": 200, "result": result, "rateLimits": limits})


def _error(request_id: int, status: int, code: int, msg: str) -> bytes:
    return orjson.dumps({"id": request_id, "status": status, "error": {"code": code, "msg": msg}})


def _execution_report(params: dict[str, str], order_id: int) -> dict[str, Any]:
    """The NEW executionReport of an order just placed (spot field set, PROTOCOL.md §4.3)."""
    now = int(time.time() * 1000)
    return {
        "e": "executionReport", "E": now, "s": params["symbol"], "c": params["newClientOrderId"],
        "S": params["side"], "o": params["type"], "f": params.get("timeInForce", "GTC"),
        "q": params.get("quantity", "0"), "p": params.get("price", "0"), "P": "0", "F": "0",
        "g": -1, "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": order_id, "l": "0",
        "z": "0", "L": "0", "n": "0", "N": None, "T": now, "t": -1, "I": order_id, "w": True,
        "m": False, "M": False, "O": now, "Z": "0", "Y": "0", "Q": "0", "W": now, "V": "NONE",
    }  # fmt: skip


async def _handler(script: Script, ws: ServerConnection) -> None:
    script.connections += 1
    script.live.append(ws)
    logged_on = False
    try:
        async for frame in ws:
            request = orjson.loads(frame)
            script.requests.append(request)
            rid, method, params = request["id"], request["method"], request.get("params", {})
            if method == "session.logon":
                logged_on = True
                await ws.send(_answer(rid, {"apiKey": params["apiKey"]}).decode())
                continue
            if method.startswith("userDataStream.subscribe"):
                script.subscribed.add(ws)
                await ws.send(_answer(rid, {"subscriptionId": 0}).decode())
                continue
            if not logged_on:
                assert script.hmac is not None
                expected = script.hmac.sign(ws_api_payload(params))
                if params.get("apiKey") != KEY or params.get("signature") != expected:
                    await ws.send(
                        _error(rid, 400, -1022, "Signature for this request is not valid.").decode()
                    )
                    continue
            elif "signature" in params or "apiKey" in params:
                await ws.send(
                    _error(rid, 400, -1104, "Not all sent parameters were read.").decode()
                )
                continue
            if method == "order.place":
                if script.drop_on_next_order:
                    script.drop_on_next_order = False
                    await ws.close()
                    return
                if script.swallow_next_order:
                    script.swallow_next_order = False
                    continue
                order_id = next(script.order_ids)
                result = {
                    "symbol": params["symbol"], "orderId": order_id,
                    "clientOrderId": params["newClientOrderId"], "status": "NEW",
                    "price": params.get("price"), "origQty": params.get("quantity"),
                }  # fmt: skip
                await ws.send(_answer(rid, result, orders=order_id).decode())
                event = _execution_report(params, order_id)
                for conn in list(script.subscribed):
                    await conn.send(orjson.dumps({"subscriptionId": 0, "event": event}).decode())
            elif method == "order.cancel":
                await ws.send(_error(rid, 400, -2011, "Unknown order sent.").decode())
            elif method == "openOrders.status":
                await ws.send(_answer(rid, []).decode())
            else:
                await ws.send(_error(rid, 400, -1100, f"unknown method {method}").decode())
    except ConnectionClosed:
        pass
    finally:
        script.live.remove(ws)
        script.subscribed.discard(ws)


@dataclass
class Env:
    script: Script
    server: Server
    url: str
    rest_url: str

    def client(self, *, private_key: str | None = None) -> MarginClient:
        secret = None if private_key else SECRET
        return MarginClient(
            KEY,
            secret,
            private_key=private_key,
            base_url=self.rest_url,
            ws_api_url=self.url,
            limiter=RateLimiter(),
            special_key=True,
        )


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    script = Script(hmac=HmacSigner(SECRET))
    async with LocalServer() as rest:
        rest.time_ok()
        rest.reply("GET", "/api/v3/exchangeInfo", {"symbols": [ETHBTC]})
        async with serve(lambda ws: _handler(script, ws), "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            yield Env(script, server, f"ws://127.0.0.1:{port}", rest.url)


async def _until(check: Callable[[], bool]) -> None:
    """Poll ``check`` (state of the shell or of the server) until true, within WAIT seconds."""
    async with asyncio.timeout(WAIT):
        for _ in itertools.count():
            if check():
                return
            await asyncio.sleep(0.005)


async def test_hmac_signs_every_request_and_pipelines(env: Env) -> None:
    async with env.client() as client, client.trading_session() as session:
        orders = await asyncio.gather(
            *(
                session.new_order(
                    "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price=str(100 + i),
                    time_in_force="GTC", is_isolated=True,
                )
                for i in range(20)
            )
        )  # fmt: skip
        assert sorted(order.order_id for order in orders if order.order_id) == list(range(1, 21))
        assert all(order.client_order_id for order in orders)
        with pytest.raises(CancelRejected):
            await session.cancel_order("BTCUSDT", order_id=99)
        assert await session.get_open_orders("BTCUSDT") == []
        usage = client.limiter.usage(account=client.account)
    assert "session.logon" not in env.script.methods()
    placed = [r["params"] for r in env.script.requests if r["method"] == "order.place"]
    assert all("isIsolated" not in params and "signature" in params for params in placed)
    # The server's counts (rateLimits) win when higher than the local ones.
    assert usage[API_IP_KEY] >= 50
    assert usage[f"{ORDERS_KEY}:10S"] >= 20


async def test_ed25519_logs_on_once_and_receives_its_own_events(env: Env) -> None:
    reports: list[ExecutionReport] = []
    async with env.client(private_key=ED25519_PEM) as client:
        session = client.trading_session()
        session.on(ExecutionReport, reports.append)
        async with session:
            order = await session.new_order("BTCUSDT", "SELL", "MARKET", quantity="0.5")
            await _until(lambda: len(reports) == 1)
    assert env.script.methods()[:2] == ["session.logon", "userDataStream.subscribe"]
    assert reports[0].order_id == order.order_id
    assert reports[0].client_order_id == order.client_order_id
    assert reports[0].account == "CROSS"


async def test_lost_answer_is_unknown_never_resent(env: Env) -> None:
    config = TradingSessionConfig(request_timeout=0.2)
    async with env.client() as client, client.trading_session(config=config) as session:
        env.script.swallow_next_order = True
        with pytest.raises(ExecutionStatusUnknown) as info:
            await session.new_order(
                "BTCUSDT", "BUY", "MARKET", quantity="1", new_client_order_id="lost-1"
            )
        assert info.value.client_order_id == "lost-1"
        # The session goes on; the lost order was sent exactly once.
        await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
    sent = [r for r in env.script.requests if r["method"] == "order.place"]
    assert [r["params"]["newClientOrderId"] for r in sent].count("lost-1") == 1


async def test_dropped_connection_unknown_then_reconnect_with_gap(env: Env) -> None:
    gaps: list[StreamGap] = []
    errors: list[Exception] = []
    config = TradingSessionConfig(user_data=True, reconnect_min=0.01, reconnect_max=0.05)
    async with env.client(private_key=ED25519_PEM) as client:
        session = client.trading_session(config=config)
        session.on(StreamGap, gaps.append)
        session.on_error(errors.append)
        async with session:
            env.script.drop_on_next_order = True
            with pytest.raises(ExecutionStatusUnknown) as info:
                await session.new_order(
                    "BTCUSDT", "BUY", "MARKET", quantity="1", new_client_order_id="drop-1"
                )
            assert info.value.client_order_id == "drop-1"
            await _until(lambda: session.state == "live" and env.script.connections == 2)
            await _until(lambda: len(gaps) == 1)
            order = await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
            assert order.order_id == 1
    # Logged on and subscribed again on the new connection.
    assert env.script.methods().count("session.logon") == 2
    assert env.script.methods().count("userDataStream.subscribe") == 2
    assert gaps[0].account == "CROSS" and gaps[0].started <= gaps[0].ended
    assert any("lost" in str(error) for error in errors)


async def test_requests_while_reconnecting_are_refused_unsent(env: Env) -> None:
    config = TradingSessionConfig(reconnect_min=5.0, reconnect_max=5.0)
    async with env.client() as client, client.trading_session(config=config) as session:
        env.server.close(close_connections=True)
        await _until(lambda: session.state == "reconnecting")
        with pytest.raises(TransportError) as info:
            await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
        assert not info.value.request_may_have_been_sent


async def test_server_shutdown_moves_make_before_break(env: Env) -> None:
    reports: list[ExecutionReport] = []
    config = TradingSessionConfig(overlap=0.05)
    async with env.client(private_key=ED25519_PEM) as client:
        session = client.trading_session(config=config)
        session.on(ExecutionReport, reports.append)
        async with session:
            first = env.script.live[0]
            await first.send(orjson.dumps({"event": {"e": "serverShutdown", "E": 1}}).decode())
            await _until(lambda: env.script.connections == 2 and len(env.script.live) == 1)
            assert env.script.live[0] is not first
            await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
            await _until(lambda: len(reports) == 1)
    assert env.script.methods().count("session.logon") == 2


async def test_connection_age_triggers_a_planned_move(env: Env) -> None:
    config = TradingSessionConfig(max_connection_age=0.2, overlap=0.01)
    async with env.client() as client, client.trading_session(config=config) as session:
        await _until(lambda: env.script.connections >= 2)
        await session.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
        assert session.state == "live"


async def test_round_true_uses_the_clients_symbol_rules(env: Env) -> None:
    async with env.client() as client, client.trading_session() as session:
        await session.new_order(
            "ETHBTC", "BUY", "LIMIT", quantity=0.1 + 0.2, price=0.0512345678,
            time_in_force="GTC", round=True,
        )  # fmt: skip
        # The session's rounding reads the client's cache: no second exchangeInfo request.
        assert await client.get_symbol_info("ETHBTC") is await client.get_symbol_info("ETHBTC")
    (placed,) = [r["params"] for r in env.script.requests if r["method"] == "order.place"]
    assert placed["quantity"] == "0.3" and placed["price"] == "0.05123"
