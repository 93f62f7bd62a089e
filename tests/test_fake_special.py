"""FakeExchange: margin special keys on the Spot REST API and the WebSocket API.

Real sockets: special keys are created through ``POST /sapi/v1/margin/apiKey`` and then trade the
margin account they belong to through ``/api/v3/*`` (signed with the project's signers) and the
WebSocket API (``session.logon`` for Ed25519, per-request signatures otherwise). Assertions are
about shapes, codes and ledger effects, never about timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from test_fake_exchange import FakeRest, error_code, exchange_fixtures, open_rest
from websockets.asyncio.client import ClientConnection

from binance_margin_async.signing import load_signer, ws_api_payload
from binance_margin_async.testing import Credentials, FakeExchange
from binance_margin_async.testing._wsapi import WS_ROUTES

rest, exchange = exchange_fixtures(seed=5)

LIMIT_BUY = [
    ("symbol", "BTCUSDT"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "0.01"),
    ("price", "59000"),
]
# POST /api/v3/order RESULT/FULL keys, in Binance's order (rest-api.md "New order").
SPOT_RESULT_KEYS = [
    "symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty",
    "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type",
    "side", "workingTime", "selfTradePreventionMode",
]  # fmt: skip


def ed25519_pair() -> tuple[str, str]:
    """(private PKCS#8 PEM, public SPKI PEM) of a fresh Ed25519 key."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


async def special_key(
    rest: FakeRest,
    owner: Credentials,
    *,
    symbol: str | None = None,
    ed25519_key: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> Credentials:
    """Create a special key of ``owner``'s cross account (or isolated ``symbol``)."""
    params = [("apiName", "hft")]
    private = None
    if symbol is not None:
        params.append(("symbol", symbol))
    if ed25519_key:
        private, public = ed25519_pair()
        params.append(("publicKey", public))
    status, _, body = await rest.call(
        "POST", "/sapi/v1/margin/apiKey", owner, [*params, *(extra or [])]
    )
    assert status == 200, body
    assert list(body) == ["apiKey", "secretKey", "type"]
    assert body["type"] == ("Ed25519" if ed25519_key else "HMAC_SHA256")
    if ed25519_key:
        assert body["secretKey"] is None
        return Credentials(owner.account_id, "ED25519", body["apiKey"], private_key=private)
    return Credentials(owner.account_id, "HMAC", body["apiKey"], api_secret=body["secretKey"])


@pytest.fixture
async def owner(exchange: FakeExchange) -> Credentials:
    return exchange.add_account(
        margin_balances={"USDT": "10000", "BTC": "1"}, isolated={"ETHUSDT": {"USDT": "1000"}}
    )


# -- SAPI key management ---------------------------------------------------------------------


async def test_special_keys_are_created_queried_listed_edited_and_deleted(
    rest: FakeRest, owner: Credentials
) -> None:
    hmac_key = await special_key(rest, owner)
    ed_key = await special_key(rest, owner, ed25519_key=True, extra=[("permissionMode", "READ")])
    iso_key = await special_key(rest, owner, symbol="ETHUSDT")
    status, _, info = await rest.call(
        "GET", "/sapi/v1/margin/apiKey", owner, [("apiKey", ed_key.api_key)]
    )
    assert status == 200
    assert info == {
        "apiName": "hft", "apiKey": ed_key.api_key, "ip": "0.0.0.0", "type": "Ed25519",
        "permissionMode": "READ",
    }  # fmt: skip
    _, _, listed = await rest.call("GET", "/sapi/v1/margin/api-key-list", owner)
    assert [k["apiKey"] for k in listed] == [hmac_key.api_key, ed_key.api_key]
    _, _, isolated = await rest.call(
        "GET", "/sapi/v1/margin/api-key-list", owner, [("symbol", "ETHUSDT")]
    )
    assert [k["apiKey"] for k in isolated] == [iso_key.api_key]
    status, _, _ = await rest.call(
        "PUT", "/sapi/v1/margin/apiKey/ip", owner,
        [("apiKey", hmac_key.api_key), ("ip", "1.2.3.4,5.6.7.8")],
    )  # fmt: skip
    assert status == 200
    _, _, info = await rest.call(
        "GET", "/sapi/v1/margin/apiKey", owner, [("apiKey", hmac_key.api_key)]
    )
    assert info["ip"] == "1.2.3.4,5.6.7.8"
    assert info["permissionMode"] == "TRADE"
    status, _, _ = await rest.call("DELETE", "/sapi/v1/margin/apiKey", owner, [("apiName", "hft")])
    assert status == 200
    _, _, listed = await rest.call("GET", "/sapi/v1/margin/api-key-list", owner)
    assert listed == []
    status, _, body = await rest.call("GET", "/api/v3/openOrders", hmac_key)
    assert (status, error_code(body)) == (401, -2015)  # deleted keys are rejected at once
    status, _, body = await rest.call("GET", "/api/v3/openOrders", iso_key)
    assert status == 200  # the isolated pair's key was not deleted with the cross ones


async def test_the_clients_special_key_methods_work_against_the_fake(
    exchange: FakeExchange, owner: Credentials
) -> None:
    _, public = ed25519_pair()
    async with exchange.client(owner) as client:
        created = await client.create_special_key("bot", public_key=public)  # PEM ends with "\n"
        assert (created.type, created.secret_key) == ("Ed25519", None)
        hmac_key = await client.create_special_key("bot2", symbol="ETHUSDT", ip=["10.0.0.1"])
        assert hmac_key.type == "HMAC_SHA256" and hmac_key.secret_key and hmac_key.api_key
        (listed,) = await client.get_special_key_list()
        assert (listed.api_key, listed.api_name, listed.type) == (created.api_key, "bot", "Ed25519")
        info = await client.get_special_key(api_key=hmac_key.api_key, symbol="ETHUSDT")
        assert info.ip == "10.0.0.1"
        await client.delete_special_key(api_key=created.api_key)
        assert await client.get_special_key_list() == []


async def test_special_key_creation_errors(rest: FakeRest, owner: Credentials) -> None:
    for params, code in (
        ([("apiName", "x"), ("symbol", "BNBUSDT")], -3003),  # no isolated account there
        ([("apiName", "x"), ("symbol", "NOPE")], -1121),
        ([("apiName", "x"), ("publicKey", "-----BEGIN PUBLIC KEY-----\nAAAA\n")], -1130),
        ([("apiName", "x"), ("permissionMode", "ALL")], -1100),
        ([], -1102),
    ):
        status, _, body = await rest.call("POST", "/sapi/v1/margin/apiKey", owner, params)
        assert (status, error_code(body)) == (400, code), params
    hmac_key = await special_key(rest, owner)
    # A special key is made for /api/v3: the SAPI rejects it.
    status, _, body = await rest.call("GET", "/sapi/v1/margin/account", hmac_key)
    assert (status, error_code(body)) == (401, -2015)


async def test_rsa_public_keys_make_rsa_special_keys(rest: FakeRest, owner: Credentials) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    status, _, body = await rest.call(
        "POST", "/sapi/v1/margin/apiKey", owner, [("apiName", "r"), ("publicKey", public.decode())]
    )
    assert (status, body["type"], body["secretKey"]) == (200, "RSA", None)
    creds = Credentials(owner.account_id, "RSA", body["apiKey"], private_key=private.decode())
    status, _, orders = await rest.call("GET", "/api/v3/openOrders", creds)
    assert (status, orders) == (200, [])


# -- REST /api/v3 ----------------------------------------------------------------------------


async def test_a_special_key_trades_its_cross_account_on_api_v3(
    rest: FakeRest, exchange: FakeExchange, owner: Credentials
) -> None:
    key = await special_key(rest, owner)
    status, headers, body = await rest.call("POST", "/api/v3/order", key, LIMIT_BUY)
    assert status == 200, body
    assert list(body) == [*SPOT_RESULT_KEYS, "fills"]
    assert (body["orderListId"], body["status"], body["fills"]) == (-1, "NEW", [])
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"  # the spot /api pool, weight 1
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1"
    balance = exchange.ledger.balance(owner.account_id, "USDT")
    assert balance.locked == Decimal("590")  # the cross margin wallet holds the order
    order_id = body["orderId"]
    status, headers, query = await rest.call(
        "GET", "/api/v3/order", key, [("symbol", "BTCUSDT"), ("orderId", str(order_id))]
    )
    assert status == 200 and query["isWorking"] is True and query["workingTime"] > 0
    assert "isIsolated" not in query
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) == 1 + 4
    status, headers, listed = await rest.call("GET", "/api/v3/openOrders", key)
    assert [o["orderId"] for o in listed] == [order_id]
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) == 1 + 4 + 80  # no symbol: 80
    status, _, cancel = await rest.call(
        "DELETE", "/api/v3/order", key, [("symbol", "BTCUSDT"), ("orderId", str(order_id))]
    )
    assert status == 200 and cancel["status"] == "CANCELED"
    assert list(cancel)[:6] == [
        "symbol", "origClientOrderId", "orderId", "orderListId", "clientOrderId", "transactTime",
    ]  # fmt: skip
    status, _, body = await rest.call(
        "DELETE", "/api/v3/order", key, [("symbol", "BTCUSDT"), ("orderId", str(order_id))]
    )
    assert (status, error_code(body)) == (400, -2011)
    # The account's own key has no spot account to trade on the fake.
    status, _, body = await rest.call("POST", "/api/v3/order", owner, LIMIT_BUY)
    assert (status, error_code(body)) == (400, -1020)


async def test_an_isolated_special_key_trades_only_its_pair(
    rest: FakeRest, exchange: FakeExchange, owner: Credentials
) -> None:
    key = await special_key(rest, owner, symbol="ETHUSDT")
    status, _, body = await rest.call("POST", "/api/v3/order", key, LIMIT_BUY)
    assert (status, body) == (
        400,
        {"code": -2010, "msg": "This symbol is restricted for this account."},
    )
    params = [("symbol", "ETHUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.1")]
    status, _, body = await rest.call("POST", "/api/v3/order", key, params)
    assert status == 200 and body["status"] == "FILLED"
    assert exchange.ledger.balance(owner.account_id, "ETH", wallet="ETHUSDT").free > 0
    assert exchange.ledger.balance(owner.account_id, "ETH").free == 0  # cross untouched
    status, _, listed = await rest.call("GET", "/api/v3/openOrders", key)
    assert (status, listed) == (200, [])
    status, _, body = await rest.call(
        "GET", "/api/v3/order", key, [("symbol", "BTCUSDT"), ("orderId", "1")]
    )
    assert (status, error_code(body)) == (400, -2013)


async def test_api_v3_orders_are_checked_against_the_published_filters(
    rest: FakeRest, owner: Credentials
) -> None:
    key = await special_key(rest, owner)
    status, _, info = await rest.call("GET", "/api/v3/exchangeInfo", None, [("symbol", "BTCUSDT")])
    assert status == 200
    (symbol,) = info["symbols"]
    assert symbol["isMarginTradingAllowed"] is True
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    base = dict(LIMIT_BUY)
    for change, failure in (
        ({"price": "59000.005"}, "PRICE_FILTER"),
        ({"price": str(Decimal(filters["PRICE_FILTER"]["maxPrice"]) + 1)}, "PRICE_FILTER"),
        ({"quantity": "0.000015"}, "LOT_SIZE"),
        ({"quantity": "0.00001"}, "NOTIONAL"),  # 0.59 USDT < 5
    ):
        status, _, body = await rest.call(
            "POST", "/api/v3/order", key, list({**base, **change}.items())
        )
        assert (status, body) == (400, {"code": -1013, "msg": f"Filter failure: {failure}"})
    status, _, body = await rest.call(
        "GET", "/api/v3/exchangeInfo", None, [("symbols", '["ETHBTC","BTCUSDT"]')]
    )
    assert [s["symbol"] for s in body["symbols"]] == ["ETHBTC", "BTCUSDT"]
    status, _, body = await rest.call("GET", "/api/v3/exchangeInfo", None, [("symbol", "NOPE")])
    assert (status, error_code(body)) == (400, -1121)
    status, _, body = await rest.call("GET", "/api/v3/ping")
    assert (status, body) == (200, {})


async def test_order_lists_and_cancel_replace_on_api_v3(
    rest: FakeRest, exchange: FakeExchange, owner: Credentials
) -> None:
    key = await special_key(rest, owner)
    oco = [
        ("symbol", "BTCUSDT"), ("side", "SELL"), ("quantity", "0.01"),
        ("aboveType", "LIMIT_MAKER"), ("abovePrice", "61000"),
        ("belowType", "STOP_LOSS_LIMIT"), ("belowStopPrice", "59000"), ("belowPrice", "58900"),
        ("belowTimeInForce", "GTC"),
    ]  # fmt: skip
    status, headers, body = await rest.call("POST", "/api/v3/orderList/oco", key, oco)
    assert status == 200, body
    assert headers["X-MBX-ORDER-COUNT-10S"] == "2"  # an OCO counts 2 orders
    assert [r["type"] for r in body["orderReports"]] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    assert body["orderReports"][0]["workingTime"] == -1  # the stop does not work yet
    assert "isIsolated" not in body
    status, _, cancel = await rest.call(
        "DELETE", "/api/v3/orderList", key,
        [("symbol", "BTCUSDT"), ("orderListId", str(body["orderListId"]))],
    )  # fmt: skip
    assert status == 200 and cancel["listOrderStatus"] == "ALL_DONE"
    assert {r["status"] for r in cancel["orderReports"]} == {"CANCELED"}
    otoco = [
        ("symbol", "BTCUSDT"), ("workingType", "LIMIT"), ("workingSide", "BUY"),
        ("workingPrice", "59000"), ("workingQuantity", "0.01"), ("workingTimeInForce", "GTC"),
        ("pendingSide", "SELL"), ("pendingQuantity", "0.01"),
        ("pendingAboveType", "LIMIT_MAKER"), ("pendingAbovePrice", "62000"),
        ("pendingBelowType", "STOP_LOSS"), ("pendingBelowStopPrice", "57000"),
        ("newOrderRespType", "ACK"),
    ]  # fmt: skip
    status, headers, body = await rest.call("POST", "/api/v3/orderList/otoco", key, otoco)
    assert status == 200, body
    assert headers["X-MBX-ORDER-COUNT-10S"] == "5"
    assert list(body["orderReports"][0]) == [
        "symbol", "orderId", "orderListId", "clientOrderId", "transactTime",
    ]  # fmt: skip
    working = body["orderReports"][0]["orderId"]
    replace = [
        ("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
        ("quantity", "0.01"), ("price", "58000"), ("cancelReplaceMode", "STOP_ON_FAILURE"),
        ("cancelOrderId", str(working)), ("newOrderRespType", "RESULT"),
    ]  # fmt: skip
    status, _, body = await rest.call("POST", "/api/v3/order/cancelReplace", key, replace)
    assert status == 200, body
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert body["cancelResponse"]["status"] == "CANCELED"
    assert body["newOrderResponse"]["price"] == "58000.00000000"
    new_id = body["newOrderResponse"]["orderId"]
    # The same cancel again fails: STOP_ON_FAILURE does not attempt the new order.
    status, _, body = await rest.call("POST", "/api/v3/order/cancelReplace", key, replace)
    assert status == 400
    assert body == {
        "code": -2022,
        "msg": "Order cancel-replace failed.",
        "data": {
            "cancelResult": "FAILURE",
            "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
            "newOrderResponse": None,
        },
    }
    # Cancel succeeds, the new LIMIT_MAKER would take: 409, the cancel stays done.
    taker = [*replace[:2], ("type", "LIMIT_MAKER"), replace[4], ("price", "61000"),
             replace[6], ("cancelOrderId", str(new_id))]  # fmt: skip
    status, _, body = await rest.call("POST", "/api/v3/order/cancelReplace", key, taker)
    assert (status, body["code"]) == (409, -2021)
    assert (body["data"]["cancelResult"], body["data"]["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert body["data"]["newOrderResponse"]["code"] == -2010
    assert exchange.ledger.balance(owner.account_id, "USDT").locked == 0
    status, _, body = await rest.call("DELETE", "/api/v3/openOrders", key, [("symbol", "BTCUSDT")])
    assert (status, error_code(body)) == (400, -2011)  # nothing left open


# -- WebSocket API ---------------------------------------------------------------------------


class WsApi:
    """A WebSocket API caller: requests by id, events kept apart."""

    def __init__(self, ws: ClientConnection, exchange: FakeExchange) -> None:
        self.ws = ws
        self.exchange = exchange
        self.events: list[dict[str, Any]] = []
        self.next_id = 1

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, sign: Credentials | None = None
    ) -> dict[str, Any]:
        params = self.signed(params or {}, sign) if sign is not None else dict(params or {})
        request_id = self.next_id
        self.next_id += 1
        await self.ws.send(orjson.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            frame = await self.receive()
            if "event" in frame:
                self.events.append(frame)
            else:
                assert frame["id"] == request_id
                return frame

    def signed(self, params: dict[str, Any], key: Credentials) -> dict[str, Any]:
        """``params`` with ``apiKey``, ``timestamp`` and the signature over them, sorted."""
        params = {**params, "apiKey": key.api_key}
        params.setdefault("timestamp", self.exchange.server_time_ms())
        signer = load_signer(api_secret=key.api_secret, private_key=key.private_key)
        return {**params, "signature": signer.sign(ws_api_payload(params))}

    async def receive(self) -> dict[str, Any]:
        frame = orjson.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert isinstance(frame, dict)
        return frame

    async def event(self) -> dict[str, Any]:
        if self.events:
            return self.events.pop(0)
        frame = await self.receive()
        assert "event" in frame, frame
        return frame


@pytest.fixture
async def ws_api(exchange: FakeExchange) -> AsyncIterator[WsApi]:
    async with websockets.connect(exchange.ws_api_url) as ws:
        yield WsApi(ws, exchange)


def stamp(exchange: FakeExchange, **params: Any) -> dict[str, Any]:
    return {**params, "timestamp": exchange.server_time_ms()}


async def test_an_ed25519_session_logs_on_trades_and_receives_its_own_events(
    rest: FakeRest, exchange: FakeExchange, owner: Credentials, ws_api: WsApi
) -> None:
    key = await special_key(rest, owner, ed25519_key=True)
    answer = await ws_api.call("session.logon", sign=key)
    assert answer["status"] == 200, answer
    assert answer["result"]["apiKey"] == key.api_key
    assert answer["result"]["authorizedSince"] is not None
    answer = await ws_api.call("userDataStream.subscribe")
    assert answer["result"] == {"subscriptionId": 0}
    assert (await ws_api.call("session.status"))["result"]["userDataStream"] is True
    place = stamp(exchange, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                  quantity="0.01", price="59000", newClientOrderId="mine-1")  # fmt: skip
    answer = await ws_api.call("order.place", place)
    assert answer["status"] == 200, answer
    assert answer["result"]["clientOrderId"] == "mine-1"
    limits = answer["rateLimits"]
    assert [(r["rateLimitType"], r["interval"]) for r in limits] == [
        ("ORDERS", "SECOND"), ("ORDERS", "DAY"), ("REQUEST_WEIGHT", "MINUTE"),
    ]  # fmt: skip
    assert limits[0]["count"] == 1
    report = await ws_api.event()
    assert report["subscriptionId"] == 0
    assert report["event"]["e"] == "executionReport" and report["event"]["c"] == "mine-1"
    assert (await ws_api.event())["event"]["e"] == "outboundAccountPosition"
    exchange.set_price("BTCUSDT", "58000")  # the order fills as maker
    fill = await ws_api.event()
    assert (fill["event"]["x"], fill["event"]["X"]) == ("TRADE", "FILLED")
    assert (await ws_api.event())["event"]["e"] == "outboundAccountPosition"
    answer = await ws_api.call(
        "order.status", stamp(exchange, symbol="BTCUSDT", origClientOrderId="mine-1")
    )
    assert answer["result"]["status"] == "FILLED"
    assert [r["rateLimitType"] for r in answer["rateLimits"]] == ["REQUEST_WEIGHT"]
    answer = await ws_api.call("session.logout")
    assert answer["result"]["apiKey"] is None
    ended = await ws_api.event()
    assert ended["event"]["e"] == "eventStreamTerminated"
    answer = await ws_api.call("order.place", stamp(exchange, **place))
    assert answer["error"]["code"] == -1102  # apiKey needed again after logout


async def test_hmac_keys_sign_each_request_and_cannot_log_on(
    rest: FakeRest, exchange: FakeExchange, owner: Credentials, ws_api: WsApi
) -> None:
    key = await special_key(rest, owner)
    answer = await ws_api.call("session.logon", sign=key)
    assert (answer["status"], answer["error"]["code"]) == (401, -1002)
    answer = await ws_api.call("userDataStream.subscribe.signature", sign=key)
    assert answer["result"] == {"subscriptionId": 0}
    place = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.001"}
    answer = await ws_api.call("order.place", place, sign=key)
    assert answer["result"]["status"] == "FILLED"
    assert (await ws_api.event())["event"]["x"] == "NEW"
    bad = dict(place, timestamp=exchange.server_time_ms(), apiKey=key.api_key, signature="0" * 64)
    answer = await ws_api.call("order.place", bad)
    assert (answer["status"], answer["error"]["code"]) == (400, -1022)
    for method, params, code in (
        ("order.cancel", {"symbol": "BTCUSDT", "orderId": 1}, -2011),
        ("order.place", {**place, "quantity": "0.000000001"}, -1111),
        ("order.place", {**place, "quantity": "0.000015"}, -1013),
        ("order.place", {**place, "quantity": "100"}, -2010),  # 100 BTC: not enough
        ("orderList.cancel", {"symbol": "BTCUSDT", "orderListId": 9}, -2011),
    ):
        answer = await ws_api.call(method, params, sign=key)
        assert answer["error"]["code"] == code, (method, answer)
    oto = {"symbol": "BTCUSDT", "workingType": "LIMIT", "workingSide": "BUY",
           "workingPrice": "59000", "workingQuantity": "0.01", "workingTimeInForce": "GTC",
           "pendingType": "LIMIT_MAKER", "pendingSide": "SELL", "pendingPrice": "61000",
           "pendingQuantity": "0.01"}  # fmt: skip
    answer = await ws_api.call("orderList.place.oto", oto, sign=key)
    assert answer["result"]["contingencyType"] == "OTO", answer
    # Counted: the market order, the three rejected placements (checked after counting) and the
    # OTO's two orders; not the request with a bad signature.
    assert answer["rateLimits"][0]["count"] == 1 + 3 + 2
    answer = await ws_api.call("openOrders.status", {"symbol": "BTCUSDT"}, sign=key)
    assert len(answer["result"]) == 2
    answer = await ws_api.call("openOrders.cancelAll", {"symbol": "BTCUSDT"}, sign=key)
    assert answer["result"][0]["listOrderStatus"] == "ALL_DONE"
    answer = await ws_api.call("exchangeInfo", {"symbols": ["BNBUSDT"]})
    assert answer["result"]["symbols"][0]["symbol"] == "BNBUSDT"
    assert (await ws_api.call("userDataStream.unsubscribe"))["result"] == {}
    while (await ws_api.event())["event"]["e"] != "eventStreamTerminated":
        pass  # the events of the orders above, then the end of the subscription


async def test_the_user_stream_switch_withholds_special_key_subscriptions() -> None:
    async with open_rest(seed=6, special_key_user_stream="listen_token") as rest:
        exchange = rest.exchange
        owner = exchange.add_account(margin_balances={"USDT": "1000"})
        key = await special_key(rest, owner, ed25519_key=True)
        async with websockets.connect(exchange.ws_api_url) as ws:
            api = WsApi(ws, exchange)
            assert (await api.call("session.logon", sign=key))["status"] == 200
            answer = await api.call("userDataStream.subscribe")
            assert (answer["status"], answer["error"]["code"]) == (401, -2015)
            # Trading still works; the account's events come by listen token only.
            place = stamp(exchange, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
            assert (await api.call("order.place", place))["status"] == 200
    with pytest.raises(ValueError, match="special_key_user_stream"):
        FakeExchange(special_key_user_stream="sometimes")  # type: ignore[arg-type]


async def test_a_lost_ws_order_answer_still_places_the_order_once(
    rest: FakeRest, exchange: FakeExchange, owner: Credentials
) -> None:
    key = await special_key(rest, owner)
    place = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.01", "price": "59000", "newClientOrderId": "lost-1"}  # fmt: skip
    exchange.fail_next("order.place", execute=True, status=503, code=-1007, msg="Timeout.")
    async with websockets.connect(exchange.ws_api_url) as ws:
        api = WsApi(ws, exchange)
        answer = await api.call("order.place", place, sign=key)
        assert (answer["status"], answer["error"]["code"]) == (503, -1007)
        # Checked and counted at request time, like the REST route.
        assert answer["rateLimits"][0]["rateLimitType"] == "ORDERS"
        exchange.fail_next("order.place", execute="later", disconnect=True)
        lost = api.signed({**place, "newClientOrderId": "lost-2"}, key)
        await api.ws.send(orjson.dumps({"id": 99, "method": "order.place", "params": lost}))
        with pytest.raises(websockets.ConnectionClosed):
            await api.receive()
    assert [o["clientOrderId"] for o in exchange.ledger.open_orders(owner.account_id)] == ["lost-1"]
    assert exchange.run_deferred() == 1  # the backend executes it after the connection is gone
    orders = exchange.ledger.open_orders(owner.account_id)
    assert [o["clientOrderId"] for o in orders] == ["lost-1", "lost-2"]


async def test_every_ws_trading_method_is_served_with_its_rest_checks(
    rest: FakeRest, exchange: FakeExchange, owner: Credentials, ws_api: WsApi
) -> None:
    key = await special_key(rest, owner)
    for method in WS_ROUTES:
        answer = await ws_api.call(method, sign=key if method != "exchangeInfo" else None)
        if method in ("exchangeInfo", "openOrders.status"):
            assert answer["status"] == 200, (method, answer)
        else:
            # Known and authenticated; then the REST route's own mandatory parameters.
            assert answer["error"]["code"] == -1102, (method, answer)
            assert "symbol" in answer["error"]["msg"], (method, answer)
