"""FakeExchange streams: WebSocket API (listen tokens), risk stream (listen keys), fault switches.

Real sockets with the `websockets` client (and aiohttp where a client must misbehave). Intervals
are shrunk so that expiries and keepalives happen within a fraction of a second; assertions are
about what arrives and in which order, never about how long it took.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import orjson
import pytest
import websockets
from test_fake_exchange import FakeRest, exchange_fixtures, open_rest
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from binance_margin_async.testing import Credentials, FakeExchange

SUBSCRIBE = "userDataStream.subscribe.listenToken"


rest, exchange = exchange_fixtures(seed=2, expiry_check_interval=0.02)


async def listen_token(
    rest: FakeRest, creds: Credentials, params: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    status, _, body = await rest.call(
        "POST", "/sapi/v1/userListenToken", creds, params or [], signed=False
    )
    assert status == 200, body
    assert isinstance(body, dict)
    return body


async def listen_key(rest: FakeRest, creds: Credentials) -> str:
    status, _, body = await rest.call("POST", "/sapi/v1/margin/listen-key", creds, signed=False)
    assert status == 200, body
    key = body["listenKey"]
    assert isinstance(key, str)
    return key


async def request(
    ws: ClientConnection, method: str, params: dict[str, Any] | None = None, request_id: Any = 1
) -> dict[str, Any]:
    message: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    await ws.send(orjson.dumps(message).decode())
    return await receive(ws)


async def receive(ws: ClientConnection) -> dict[str, Any]:
    frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    assert isinstance(frame, dict)
    return frame


# WebSocket API requests


async def test_a_pong_follows_every_frame_queued_before_its_ping(exchange: FakeExchange) -> None:
    """A stream may take a pong as proof that everything sent before its ping has arrived
    (make-before-break does): the fake's pongs queue behind its other frames, like one ordered
    stream. Sans-I/O client, so the order of frames on the wire is what the test sees."""
    uri = parse_uri(exchange.ws_api_url)
    reader, writer = await asyncio.open_connection(uri.host, uri.port)
    client = ClientProtocol(uri)
    client.send_request(client.connect())
    writer.write(b"".join(client.data_to_send()))
    answers = 0
    try:
        async with asyncio.timeout(30):
            while client.state is not State.OPEN:
                client.receive_data(await reader.read(65536))
                client.events_received()  # the handshake response
            # 200 requests and a ping in one write: the server reads them all before it writes.
            for n in range(200):
                client.send_text(orjson.dumps({"id": n, "method": "time"}))
            client.send_ping(b"proof")
            writer.write(b"".join(client.data_to_send()))
            while True:
                client.receive_data(await reader.read(65536))
                frames = [e for e in client.events_received() if isinstance(e, Frame)]
                for frame in frames:
                    if frame.opcode is Opcode.TEXT:
                        answers += 1
                    elif frame.opcode is Opcode.PONG and frame.data == b"proof":
                        assert answers == 200  # it overtook queued answers before
                        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_envelope_time_ping_and_rate_limits(exchange: FakeExchange) -> None:
    async with websockets.connect(exchange.ws_api_url) as ws:
        answer = await request(ws, "time", request_id="abc")
        assert answer["id"] == "abc" and answer["status"] == 200
        assert abs(answer["result"]["serverTime"] - exchange.server_time_ms()) < 10_000
        (limit,) = answer["rateLimits"]
        assert limit["rateLimitType"] == "REQUEST_WEIGHT" and limit["limit"] == 6000
        assert limit["count"] == 3  # 2 for the connection, 1 for `time`
        answer = await request(ws, "v3/ping", {}, request_id=None)
        assert answer == {
            "id": None,
            "status": 200,
            "result": {},
            "rateLimits": [limit | {"count": 4}],
        }
        answer = await request(ws, "ping", {"returnRateLimits": False})
        assert "rateLimits" not in answer
    async with websockets.connect(exchange.ws_api_url + "?returnRateLimits=false") as ws:
        answer = await request(ws, "ping")
        assert answer == {"id": 1, "status": 200, "result": {}}
        answer = await request(ws, "session.status")
        assert answer["result"]["returnRateLimits"] is False
        assert answer["result"]["userDataStream"] is False


async def test_bad_requests_get_error_frames_and_the_connection_survives(
    exchange: FakeExchange,
) -> None:
    async with websockets.connect(exchange.ws_api_url) as ws:
        for frame, code in (
            ("not json", -1135),
            ("[1, 2]", -1135),
            ('{"id": 1}', -1102),
            ('{"id": 2, "method": "time", "params": [1]}', -1135),
            ('{"id": {"x": 1}, "method": "time"}', -1135),
            ('{"id": 3, "method": "order.amend.keepPriority", "params": {}}', -1100),
        ):
            await ws.send(frame)
            answer = await receive(ws)
            assert answer["status"] == 400, frame
            assert answer["error"]["code"] == code, frame
        await ws.send(b'{"id": 4, "method": "ping"}')  # binary frames are read too
        assert (await receive(ws))["status"] == 200
        assert (await request(ws, "ping"))["status"] == 200


# Listen-token subscriptions (PROTOCOL.md §3)


async def test_subscribe_events_duplicate_and_unsubscribe(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    token = await listen_token(rest, creds)
    assert token["expirationTime"] > exchange.server_time_ms() + 86_000_000
    async with websockets.connect(exchange.ws_api_url) as ws:
        answer = await request(ws, SUBSCRIBE, {"listenToken": token["token"]})
        assert answer["status"] == 200
        assert answer["result"] == {"subscriptionId": 0, "expirationTime": token["expirationTime"]}
        answer = await request(ws, SUBSCRIBE, {"listenToken": token["token"]})
        assert (answer["status"], answer["error"]["code"]) == (400, -2035)
        answer = await request(ws, "session.subscriptions")
        assert answer["result"] == [{"subscriptionId": 0}]
        assert (await request(ws, "session.status"))["result"]["userDataStream"] is True
        answer = await request(ws, "userDataStream.unsubscribe", {"subscriptionId": 5})
        assert answer["error"]["code"] == -2036
        answer = await request(ws, "userDataStream.unsubscribe", {"subscriptionId": 0})
        assert answer["result"] == {}
        terminated = await receive(ws)
        assert terminated["subscriptionId"] == 0
        assert terminated["event"]["e"] == "eventStreamTerminated"
        assert (await request(ws, "session.subscriptions"))["result"] == []
        # The token is still valid: subscribing again opens a new subscription id.
        answer = await request(ws, SUBSCRIBE, {"listenToken": token["token"]})
        assert answer["result"]["subscriptionId"] == 1


async def test_invalid_tokens(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    async with websockets.connect(exchange.ws_api_url) as ws:
        answer = await request(ws, SUBSCRIBE, {"listenToken": "nope"})
        assert (answer["status"], answer["error"]["code"]) == (400, -1209)
        answer = await request(ws, SUBSCRIBE, {})
        assert answer["error"]["code"] == -1102
        short = await listen_token(rest, creds, [("validity", "1")])
        await asyncio.sleep(0.01)
        answer = await request(ws, SUBSCRIBE, {"listenToken": short["token"]})
        assert answer["error"]["code"] == -1209
    for params, code in (
        ([("validity", "86400001")], -1130),
        ([("validity", "0")], -1130),
        ([("isIsolated", "true")], -1102),
        ([("symbol", "BTCUSDT")], -1106),
        ([("isIsolated", "yes")], -1100),
    ):
        status, _, body = await rest.call(
            "POST", "/sapi/v1/userListenToken", creds, params, signed=False
        )
        assert (status, body["code"]) == (400, code), params


async def test_renewal_extends_the_same_subscription(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    first = await listen_token(rest, creds, [("validity", "600000")])
    second = await listen_token(rest, creds)
    assert second["token"] != first["token"]
    async with websockets.connect(exchange.ws_api_url) as ws:
        answer = await request(ws, SUBSCRIBE, {"listenToken": first["token"]})
        assert answer["result"]["expirationTime"] == first["expirationTime"]
        answer = await request(ws, SUBSCRIBE, {"listenToken": second["token"]})
        assert answer["result"] == {
            "subscriptionId": 0,
            "expirationTime": second["expirationTime"],
        }
        assert (await request(ws, "session.subscriptions"))["result"] == [{"subscriptionId": 0}]


async def test_token_expiry_terminates_the_subscription(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    token = await listen_token(rest, creds, [("validity", "600")])
    async with websockets.connect(exchange.ws_api_url) as ws:
        answer = await request(ws, SUBSCRIBE, {"listenToken": token["token"]})
        assert answer["status"] == 200
        event = await receive(ws)
        assert event == {
            "subscriptionId": 0,
            "event": {"e": "eventStreamTerminated", "E": event["event"]["E"]},
        }
        assert event["event"]["E"] >= token["expirationTime"]
        assert (await request(ws, "session.subscriptions"))["result"] == []


async def test_expire_listen_tokens_switch(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    token = await listen_token(rest, creds)
    async with websockets.connect(exchange.ws_api_url) as ws:
        await request(ws, SUBSCRIBE, {"listenToken": token["token"]})
        exchange.expire_listen_tokens()
        assert (await receive(ws))["event"]["e"] == "eventStreamTerminated"
        answer = await request(ws, SUBSCRIBE, {"listenToken": token["token"]})
        assert answer["error"]["code"] == -1209
    assert exchange.stats.events["eventStreamTerminated"] == 1


async def test_one_subscription_per_account_per_connection_but_many_connections(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    first, second = exchange.add_account(), exchange.add_account()
    token_a = await listen_token(rest, first)
    token_b = await listen_token(rest, second)
    async with (
        websockets.connect(exchange.ws_api_url) as ws1,
        websockets.connect(exchange.ws_api_url) as ws2,
    ):
        assert (await request(ws1, SUBSCRIBE, {"listenToken": token_a["token"]}))["status"] == 200
        answer = await request(ws1, SUBSCRIBE, {"listenToken": token_b["token"]})
        assert answer["result"]["subscriptionId"] == 1
        # The same account on another connection is a separate subscription.
        assert (await request(ws2, SUBSCRIBE, {"listenToken": token_a["token"]}))["status"] == 200
        assert exchange.stats.open_connections == 2
        answer = await request(ws1, "userDataStream.unsubscribe")
        assert answer["result"] == {}
        ended = {(await receive(ws1))["subscriptionId"] for _ in range(2)}
        assert ended == {0, 1}
        assert (await request(ws2, "session.subscriptions"))["result"] == [{"subscriptionId": 0}]


async def test_ws_api_fail_next_by_method_name(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    token = await listen_token(rest, creds)
    exchange.fail_next(SUBSCRIBE, status=400, code=-1209, msg="Invalid listen token.")
    async with websockets.connect(exchange.ws_api_url) as ws:
        answer = await request(ws, SUBSCRIBE, {"listenToken": token["token"]})
        assert answer["error"] == {"code": -1209, "msg": "Invalid listen token."}
        assert (await request(ws, SUBSCRIBE, {"listenToken": token["token"]}))["status"] == 200


async def test_ws_api_fail_next_execute_later_and_disconnect(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    token = (await listen_token(rest, exchange.add_account()))["token"]
    subscribed = [{"subscriptionId": 0}]
    exchange.fail_next(SUBSCRIBE, status=503, code=-1007, msg="Timeout", execute=True)
    async with websockets.connect(exchange.ws_api_url) as ws:
        answer = await request(ws, SUBSCRIBE, {"listenToken": token})
        assert (answer["status"], answer["error"]["code"]) == (503, -1007)
        # Executed all the same.
        assert (await request(ws, "session.subscriptions"))["result"] == subscribed
    exchange.fail_next(SUBSCRIBE, execute="later")
    async with websockets.connect(exchange.ws_api_url) as ws:
        assert (await request(ws, SUBSCRIBE, {"listenToken": token}))["error"]["code"] == -1001
        assert (await request(ws, "session.subscriptions"))["result"] == []
        assert exchange.run_deferred() == 1
        assert (await request(ws, "session.subscriptions"))["result"] == subscribed
    exchange.fail_next("ping", disconnect=True)
    async with websockets.connect(exchange.ws_api_url) as ws:
        await ws.send(orjson.dumps({"id": 1, "method": "ping"}).decode())
        with pytest.raises(websockets.ConnectionClosedError) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is None  # no answer, no close frame


async def test_a_held_ws_request_of_a_closed_connection_has_no_effect(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    token = (await listen_token(rest, creds))["token"]
    sent: list[str] = []
    exchange.on_emit(lambda scope, event, at: sent.append(event["e"]))
    exchange.fail_next(SUBSCRIBE, execute="later")
    async with websockets.connect(exchange.ws_api_url) as ws:
        assert (await request(ws, SUBSCRIBE, {"listenToken": token}))["status"] == 500
    for _ in range(1000):  # until the server side has seen the close (bounded)
        if not exchange.stats.open_connections:
            break
        await asyncio.sleep(0.01)
    assert exchange.run_deferred() == 1
    exchange.deposit(creds.account_id, "USDT", "1", wallet="CROSS")
    assert sent == []  # no subscription was left behind for the dead connection


async def test_ws_api_weight_shares_the_api_pool_and_gets_429() -> None:
    now = [5000.0]
    async with open_rest(api_ip_limit=6, ban_after_429s=5, clock=lambda: now[0]) as rest:
        ex = rest.exchange
        await rest.call("GET", "/api/v3/time")  # 1
        async with websockets.connect(ex.ws_api_url) as ws:  # 3
            assert (await request(ws, "time"))["rateLimits"][0]["count"] == 4
            assert (await request(ws, "session.status"))["rateLimits"][0]["count"] == 6
            answer = await request(ws, "time")
            assert answer["status"] == 429
            assert answer["error"]["code"] == -1003
            assert answer["error"]["data"]["retryAfter"] == 5040_000
            assert answer["rateLimits"][0]["count"] == 6
            status, _, _ = await rest.call("GET", "/api/v3/time")
            assert status == 429
        # A new connection costs 2 weight: refused at the handshake.
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(ex.ws_api_url):
                pass
        assert info.value.response.status_code == 429


async def test_banned_ip_gets_418_on_ws_api_and_handshake() -> None:
    now = [7200.0]
    async with (
        FakeExchange(api_ip_limit=4, ban_after_429s=0, clock=lambda: now[0]) as ex,
        websockets.connect(ex.ws_api_url) as ws,
    ):
        assert (await request(ws, "ping"))["status"] == 200
        assert (await request(ws, "ping"))["status"] == 200
        answer = await request(ws, "ping")
        assert answer["status"] == 418
        assert answer["error"]["data"]["retryAfter"] == 7320_000
        assert (await request(ws, "ping"))["status"] == 418
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(ex.ws_api_url):
                pass
        assert info.value.response.status_code == 418
        assert info.value.response.headers["Retry-After"] == "120"


async def test_plain_http_on_websocket_paths_is_a_binance_error(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    key = await listen_key(rest, exchange.add_account())
    for path in ("/ws-api/v3", f"/ws/{key}"):
        async with rest.session.get(exchange.rest_url + path) as resp:
            assert resp.status == 400
            assert orjson.loads(await resp.read())["code"] == -1020
    assert exchange.stats.connections_opened == 0


async def test_connection_attempts_are_limited() -> None:
    async with FakeExchange(ws_connect_limit=2, ws_connect_window=300.0) as ex:
        for _ in range(2):
            async with websockets.connect(ex.ws_api_url):
                pass
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(ex.ws_api_url):
                pass
        assert info.value.response.status_code == 429
        assert ex.stats.connections_opened == 2


# Risk stream (PROTOCOL.md §4.6)


async def test_listen_key_lifecycle(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    other = exchange.add_account()
    key = await listen_key(rest, creds)
    assert await listen_key(rest, creds) == key  # an active key is returned again
    assert await listen_key(rest, other) != key
    put = [("listenKey", key)]
    status, _, body = await rest.call("PUT", "/sapi/v1/margin/listen-key", creds, put, signed=False)
    assert (status, body) == (200, {})
    status, _, body = await rest.call("PUT", "/sapi/v1/margin/listen-key", other, put, signed=False)
    assert body["code"] == -1125  # not this account's key
    status, _, body = await rest.call("PUT", "/sapi/v1/margin/listen-key", creds, signed=False)
    assert body["code"] == -1102
    status, _, body = await rest.call(
        "DELETE", "/sapi/v1/margin/listen-key", creds, put, signed=False
    )
    assert (status, body) == (200, {})
    status, _, body = await rest.call("PUT", "/sapi/v1/margin/listen-key", creds, put, signed=False)
    assert body["code"] == -1125
    assert await listen_key(rest, creds) != key


async def test_risk_stream_closed_with_its_key_and_unknown_key_refused(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    key = await listen_key(rest, creds)
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(f"{exchange.risk_stream_url}/ws/{'x' * 64}"):
            pass
    assert info.value.response.status_code == 400
    async with websockets.connect(f"{exchange.risk_stream_url}/ws/{key}") as ws:
        await rest.call("DELETE", "/sapi/v1/margin/listen-key", creds, signed=False)
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), 10)


async def test_listen_key_expiry_event_then_close() -> None:
    async with open_rest(listen_key_validity=0.6, expiry_check_interval=0.02) as rest:
        ex = rest.exchange
        creds = ex.add_account()
        key = await listen_key(rest, creds)
        async with (
            websockets.connect(f"{ex.risk_stream_url}/ws/{key}") as bare,
            websockets.connect(f"{ex.risk_stream_url}/stream?streams={key}") as combined,
        ):
            event = await receive(bare)
            assert event["e"] == "listenKeyExpired"
            assert isinstance(event["E"], str) and event["E"].isdigit()
            assert event["listenKey"] == key
            assert await receive(combined) == {"stream": key, "data": event}
            for ws in (bare, combined):
                with pytest.raises(websockets.ConnectionClosedOK):
                    await asyncio.wait_for(ws.recv(), 10)
        _, _, body = await rest.call(
            "PUT", "/sapi/v1/margin/listen-key", creds, [("listenKey", key)], signed=False
        )
        assert body["code"] == -1125


async def test_expire_listen_keys_switch(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    key = await listen_key(rest, creds)
    async with websockets.connect(f"{exchange.risk_stream_url}/ws/{key}") as ws:
        exchange.expire_listen_keys()
        assert (await receive(ws))["e"] == "listenKeyExpired"
        assert exchange.stats.events["listenKeyExpired"] == 1
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), 10)


# Fault switches


async def test_drop_connections_is_abrupt(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    key = await listen_key(rest, creds)
    async with (
        websockets.connect(exchange.ws_api_url) as api,
        websockets.connect(f"{exchange.risk_stream_url}/ws/{key}") as risk,
    ):
        assert exchange.stats.open_connections == 2
        exchange.drop_connections()
        for ws in (api, risk):
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await asyncio.wait_for(ws.recv(), 10)
            assert info.value.rcvd is None  # no close frame
    async with websockets.connect(exchange.ws_api_url) as api:  # the server keeps serving
        assert (await request(api, "ping"))["status"] == 200


async def test_server_shutdown_event_then_close(exchange: FakeExchange) -> None:
    async with websockets.connect(exchange.ws_api_url) as ws:
        exchange.server_shutdown(grace=0.05)
        event = await receive(ws)
        assert set(event) == {"event"}
        assert event["event"]["e"] == "serverShutdown"
        assert isinstance(event["event"]["E"], int)
        with pytest.raises(websockets.ConnectionClosedOK) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


async def test_malformed_frame_then_business_as_usual(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    key = await listen_key(rest, creds)
    async with (
        websockets.connect(exchange.ws_api_url) as api,
        websockets.connect(f"{exchange.risk_stream_url}/ws/{key}") as risk,
    ):
        exchange.send_malformed_frame()
        for ws in (api, risk):
            frame = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(frame, str)
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(frame)
        assert (await request(api, "ping"))["status"] == 200


async def test_stall_freezes_output_and_pongs() -> None:
    async with (
        FakeExchange(ws_ping_interval=0.05) as ex,
        websockets.connect(ex.ws_api_url, ping_interval=None) as ws,
    ):
        ex.stall(0.5)
        await ws.send(orjson.dumps({"id": 1, "method": "ping"}).decode())
        pong_waiter = await ws.ping(b"hello")
        assert isinstance(pong_waiter, asyncio.Future)
        # Nothing comes back while stalled; afterwards the held response is delivered...
        answer = await receive(ws)
        assert answer["id"] == 1
        # ...but the ping sent during the stall was never answered.
        assert not pong_waiter.done()
        assert (await request(ws, "ping"))["status"] == 200


async def test_stall_trips_a_client_keepalive() -> None:
    async with (
        FakeExchange() as ex,
        websockets.connect(ex.ws_api_url, ping_interval=0.05, ping_timeout=0.1) as ws,
    ):
        ex.stall(30)
        with pytest.raises(websockets.ConnectionClosedError) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.sent is not None and info.value.sent.code == 1011  # ping timeout


async def test_server_pings_and_drops_a_peer_that_never_pongs() -> None:
    async with (
        FakeExchange(ws_ping_interval=0.02, ws_pong_timeout=0.1) as ex,
        aiohttp.ClientSession() as session,
        session.ws_connect(ex.ws_api_url, autoping=False) as ws,
    ):
        kinds = []
        async for msg in ws:
            kinds.append(msg.type)
        assert kinds[0] is aiohttp.WSMsgType.PING
        assert ws.closed
        assert ex.stats.open_connections == 0


async def test_answered_pings_keep_the_connection() -> None:
    async with (
        FakeExchange(ws_ping_interval=0.02, ws_pong_timeout=0.1) as ex,
        websockets.connect(ex.ws_api_url, ping_interval=None) as ws,
    ):
        await asyncio.sleep(0.3)  # several pong deadlines pass; websockets answers each ping
        assert (await request(ws, "ping"))["status"] == 200


async def test_connection_lifetime_cut() -> None:
    async with (
        FakeExchange(connection_lifetime=0.1) as ex,
        websockets.connect(ex.ws_api_url) as ws,
    ):
        with pytest.raises(websockets.ConnectionClosedOK) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000


async def test_exit_closes_open_connections() -> None:
    async with FakeExchange() as ex:
        ws = await websockets.connect(ex.ws_api_url)
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    await ws.close()


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FakeExchange(ws_ping_interval=0)
    with pytest.raises(ValueError):
        FakeExchange(listen_token_validity_default_ms=86_400_001)
