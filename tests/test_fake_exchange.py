"""FakeExchange REST front door: routing, keys, signatures, timestamps, parameters, weights, bans.

Real sockets on 127.0.0.1 with a plain aiohttp session: the fake must answer what Binance answers
to any client, not only to ours. Requests are signed with :mod:`binance_margin_async.signing`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from binance_margin_async.signing import encode_params, load_signer
from binance_margin_async.testing import Credentials, FakeExchange

RATE_LIMIT_ORDER = "/sapi/v1/margin/rateLimit/order"


class FakeRest:
    """A minimal REST caller: exact bytes on the wire, signed with the project's signers."""

    def __init__(self, session: aiohttp.ClientSession, exchange: FakeExchange) -> None:
        self.session = session
        self.exchange = exchange

    async def call(
        self,
        method: str,
        path: str,
        creds: Credentials | None = None,
        params: Sequence[tuple[str, str]] = (),
        *,
        signed: bool = True,
        timestamp: int | None = None,
        in_body: bool = False,
        headers: dict[str, str] | None = None,
        raw_query: str | None = None,
    ) -> tuple[int, Any, Any]:
        """Send one request; returns ``(status, headers, decoded JSON body)``."""
        query = encode_params(params)
        if creds is not None and signed:
            stamp = timestamp if timestamp is not None else self.exchange.server_time_ms()
            query = encode_params([*params, ("timestamp", str(stamp))])
            signer = load_signer(api_secret=creds.api_secret, private_key=creds.private_key)
            query += "&signature=" + encode_params([("s", signer.sign(query.encode()))])[2:]
        if raw_query is not None:
            query = raw_query
        send_headers = dict(headers or {})
        if creds is not None:
            send_headers.setdefault("X-MBX-APIKEY", creds.api_key)
        url = self.exchange.rest_url + path
        data = None
        if in_body:
            data = query.encode()
            send_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif query:
            url += "?" + query
        async with self.session.request(
            method, URL(url, encoded=True), headers=send_headers, data=data
        ) as resp:
            return resp.status, resp.headers, orjson.loads(await resp.read())


@asynccontextmanager
async def open_rest(**options: Any) -> AsyncIterator[FakeRest]:
    """A started ``FakeExchange(**options)`` and a :class:`FakeRest` calling it."""
    async with FakeExchange(**options) as exchange, aiohttp.ClientSession() as session:
        yield FakeRest(session, exchange)


def exchange_fixtures(**options: Any) -> tuple[Any, Any]:
    """The ``rest`` and ``exchange`` fixtures of a module testing ``FakeExchange(**options)``;
    bind both at module level: ``rest, exchange = exchange_fixtures(seed=3)``."""

    @pytest.fixture
    async def rest() -> AsyncIterator[FakeRest]:
        async with open_rest(**options) as caller:
            yield caller

    @pytest.fixture
    def exchange(rest: FakeRest) -> FakeExchange:
        return rest.exchange

    return rest, exchange


rest, exchange = exchange_fixtures(seed=1)


def error_code(body: Any) -> int:
    assert isinstance(body, dict) and set(body) == {"code", "msg"}, body
    assert isinstance(body["msg"], str) and body["msg"]
    code = body["code"]
    assert isinstance(code, int)
    return code


# Routing


async def test_server_time_and_api_weight_header(rest: FakeRest, exchange: FakeExchange) -> None:
    status, headers, body = await rest.call("GET", "/api/v3/time")
    assert status == 200
    assert abs(body["serverTime"] - time.time() * 1000) < 60_000
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert headers["Content-Type"].startswith("application/json")
    _, headers, _ = await rest.call("GET", "/api/v3/time")
    assert headers["X-MBX-USED-WEIGHT-1M"] == "2"
    assert exchange.stats.requests_by_path["/api/v3/time"] == 2


async def test_unknown_path_and_wrong_method_get_binance_json(rest: FakeRest) -> None:
    status, _, body = await rest.call("GET", "/sapi/v1/margin/nothing-here")
    assert status == 404 and error_code(body) == -1020
    status, _, body = await rest.call("PATCH", "/sapi/v1/margin/order")
    assert status == 405 and error_code(body) == -1020
    assert "DELETE, GET, POST" in body["msg"]
    status, _, _ = await rest.call("GET", "/api/v3/time")
    assert status == 200


async def test_garbage_body_is_a_binance_error_and_the_server_keeps_serving(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    url = exchange.rest_url + "/sapi/v1/userListenToken"
    headers = {"X-MBX-APIKEY": creds.api_key, "Content-Type": "application/json"}
    for data in (b'{"not": "form"}', b"\xff\xfe\x00garbage", b"a=%FF%FE"):
        async with rest.session.post(url, data=data, headers=headers) as resp:
            assert resp.status == 400
            assert error_code(orjson.loads(await resp.read())) in (-1100, -1104)
    status, _, body = await rest.call("POST", "/sapi/v1/userListenToken", creds, signed=False)
    assert status == 200 and "token" in body


# API keys and permissions


async def test_api_key_header_checks(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    status, _, body = await rest.call("POST", "/sapi/v1/margin/listen-key")
    assert (status, error_code(body)) == (401, -2014)
    status, _, body = await rest.call(
        "POST", "/sapi/v1/margin/listen-key", headers={"X-MBX-APIKEY": "short"}
    )
    assert (status, error_code(body)) == (401, -2014)
    status, _, body = await rest.call(
        "POST", "/sapi/v1/margin/listen-key", headers={"X-MBX-APIKEY": "A" * 64}
    )
    assert (status, error_code(body)) == (401, -2015)
    status, _, body = await rest.call("POST", "/sapi/v1/margin/listen-key", creds, signed=False)
    assert status == 200 and len(body["listenKey"]) == 64


async def test_read_only_key_cannot_trade_or_borrow(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account(read_only=True)
    for method, path in (
        ("POST", "/sapi/v1/margin/order"),
        ("DELETE", "/sapi/v1/margin/openOrders"),
        ("POST", "/sapi/v1/margin/borrow-repay"),
        ("POST", "/sapi/v1/asset/transfer"),
    ):
        status, _, body = await rest.call(method, path, creds)
        assert (status, error_code(body)) == (401, -2015), path
    status, _, _ = await rest.call("GET", RATE_LIMIT_ORDER, creds)
    assert status == 200


async def test_margin_only_key_cannot_place_orders(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account(permissions=["MARGIN"])
    status, _, body = await rest.call("POST", "/sapi/v1/margin/order", creds)
    assert (status, error_code(body)) == (401, -2015)


def test_add_account_rejects_unknown_permissions_and_key_types(exchange: FakeExchange) -> None:
    with pytest.raises(ValueError, match="permissions"):
        exchange.add_account(permissions=["WITHDRAW"])
    with pytest.raises(ValueError, match="key_type"):
        exchange.add_account(key_type="DSA")  # type: ignore[arg-type]


# Signatures (PROTOCOL.md §1)


@pytest.mark.parametrize("key_type", ["HMAC", "ED25519", "RSA"])
async def test_each_key_type_signs_and_tampering_is_rejected(
    rest: FakeRest, exchange: FakeExchange, key_type: Any
) -> None:
    creds = exchange.add_account(key_type=key_type)
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds)
    assert status == 200, body
    assert [item["interval"] for item in body] == ["SECOND", "DAY"]
    # Same signature, different payload.
    signer = load_signer(api_secret=creds.api_secret, private_key=creds.private_key)
    stamp = str(exchange.server_time_ms())
    signature = encode_params([("s", signer.sign(f"timestamp={stamp}".encode()))])[2:]
    tampered = f"recvWindow=6000&timestamp={stamp}&signature={signature}"
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, raw_query=tampered)
    assert (status, error_code(body)) == (400, -1022)
    # Another account's key material.
    other = exchange.add_account(key_type=key_type)
    good = f"timestamp={stamp}&signature={signature}"
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, other, raw_query=good)
    assert (status, error_code(body)) == (400, -1022)


async def test_signature_must_be_sent_and_last(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    stamp = exchange.server_time_ms()
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, [("timestamp", str(stamp))],
                                      signed=False)  # fmt: skip
    assert (status, error_code(body)) == (400, -1102)
    assert "'signature'" in body["msg"]
    signer = load_signer(api_secret=creds.api_secret)
    payload = f"timestamp={stamp}"
    moved = f"signature={signer.sign(payload.encode())}&{payload}"
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, raw_query=moved)
    assert (status, error_code(body)) == (400, -1022)


async def test_signature_covers_the_percent_encoded_bytes(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    signer = load_signer(api_secret=creds.api_secret)
    stamp = str(exchange.server_time_ms())
    params = [("isIsolated", "TRUE"), ("symbol", "１２３４５６"), ("timestamp", stamp)]
    encoded = encode_params(params)
    # Signed over the encoded bytes that are sent: authentication passes, the symbol does not.
    query = encoded + "&signature=" + signer.sign(encoded.encode())
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, raw_query=query)
    assert error_code(body) not in (-1022, -1100), body
    # Signed over the raw text but sent encoded (the pre-2026 habit): rejected.
    raw = "&".join(f"{k}={v}" for k, v in params)
    query = encoded + "&signature=" + signer.sign(raw.encode())
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, raw_query=query)
    assert (status, error_code(body)) == (400, -1022)


async def test_signed_params_in_the_form_body(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account(key_type="ED25519")
    status, _, body = await rest.call("POST", "/sapi/v1/margin/order", creds, in_body=True)
    # Authenticated from the body; the order itself lacks its mandatory parameters.
    assert (status, error_code(body)) == (400, -1102)


async def test_signature_over_query_plus_body(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    signer = load_signer(api_secret=creds.api_secret)
    query = "symbol=BTCUSDT"
    body = f"recvWindow=5000&timestamp={exchange.server_time_ms()}"
    url = URL(f"{exchange.rest_url}/sapi/v1/margin/openOrders?{query}", encoded=True)
    headers = {"X-MBX-APIKEY": creds.api_key, "Content-Type": "application/x-www-form-urlencoded"}

    async def delete(signed: str) -> Any:
        data = f"{body}&signature={signer.sign(signed.encode())}".encode()
        async with rest.session.delete(url, data=data, headers=headers) as resp:
            return orjson.loads(await resp.read())

    assert error_code(await delete(body)) == -1022  # the query string must be signed too
    assert error_code(await delete(query + "&" + body)) == -1022  # no separator in between
    answer = await delete(query + body)
    assert not isinstance(answer, dict) or answer.get("code") != -1022, answer


# Timestamps (PROTOCOL.md §1.5)


async def test_timestamp_window(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    now = exchange.server_time_ms()
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, timestamp=now - 10_000)
    assert (status, error_code(body)) == (400, -1021)
    assert "recvWindow" in body["msg"]
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, timestamp=now + 5_000)
    assert (status, error_code(body)) == (400, -1021)
    assert "ahead" in body["msg"]
    status, _, _ = await rest.call(
        "GET", RATE_LIMIT_ORDER, creds, [("recvWindow", "20000")], timestamp=now - 10_000
    )
    assert status == 200
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, [("recvWindow", "60001")])
    assert error_code(body) == -1131
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, [("recvWindow", "5000.5")])
    assert error_code(body) == -1100


async def test_clock_skew_moves_server_time(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    local_ms = int(time.time() * 1000)
    exchange.set_clock_skew(30_000)
    _, _, body = await rest.call("GET", "/api/v3/time")
    assert body["serverTime"] >= local_ms + 29_000
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, timestamp=local_ms)
    assert error_code(body) == -1021
    status, _, _ = await rest.call("GET", RATE_LIMIT_ORDER, creds)  # stamped with server time
    assert status == 200


# Parameters (PROTOCOL.md §6)


async def test_parameter_errors(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    cases: list[tuple[list[tuple[str, str]], int]] = [
        ([("isIsolated", "TRUE")], -1102),  # symbol is mandatory for isolated
        ([("isIsolated", "maybe")], -1100),
        ([("bogus", "1")], -1104),
        ([("isIsolated", "FALSE"), ("isIsolated", "TRUE")], -1101),
    ]
    for params, code in cases:
        status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, params)
        assert (status, error_code(body)) == (400, code), params


async def test_user_stream_endpoints_ignore_a_signature(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    status, _, body = await rest.call("POST", "/sapi/v1/userListenToken", creds, signed=True)
    assert status == 200 and body["token"]
    status, _, body = await rest.call(
        "POST", "/sapi/v1/userListenToken", creds, [("unknown", "1")], signed=False
    )
    assert error_code(body) == -1104


# Weights and headers (PROTOCOL.md §2)


async def test_each_sapi_endpoint_has_its_own_pool(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    _, headers, _ = await rest.call("GET", RATE_LIMIT_ORDER, creds)
    assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "20"
    assert "X-MBX-USED-WEIGHT-1M" not in headers
    _, headers, _ = await rest.call("GET", RATE_LIMIT_ORDER, creds)
    assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "40"
    _, headers, _ = await rest.call("GET", "/sapi/v1/margin/allPairs", creds, signed=False)
    assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "1"  # another endpoint, another pool
    _, headers, _ = await rest.call("POST", "/sapi/v1/userListenToken", creds, signed=False)
    assert headers["X-SAPI-USED-UID-WEIGHT-1M"] == "1"
    assert "X-SAPI-USED-IP-WEIGHT-1M" not in headers


async def test_uid_pools_are_per_account(rest: FakeRest, exchange: FakeExchange) -> None:
    first, second = exchange.add_account(), exchange.add_account()
    for expected in ("1", "2"):
        _, headers, _ = await rest.call("POST", "/sapi/v1/margin/listen-key", first, signed=False)
        assert headers["X-SAPI-USED-UID-WEIGHT-1M"] == expected
    _, headers, _ = await rest.call("POST", "/sapi/v1/margin/listen-key", second, signed=False)
    assert headers["X-SAPI-USED-UID-WEIGHT-1M"] == "1"


async def test_weight_is_charged_for_rejected_requests(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    status, headers, _ = await rest.call("GET", RATE_LIMIT_ORDER, creds, timestamp=1)
    assert status == 400
    assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "20"


async def test_429_then_418_for_an_ip_that_keeps_sending() -> None:
    now = [1_000_000.0]  # an injected clock: the test never straddles a window boundary
    async with open_rest(
        sapi_ip_limit=50, window=60.0, ban_after_429s=1, clock=lambda: now[0]
    ) as rest:
        ex = rest.exchange
        creds = ex.add_account()
        for used in ("20", "40"):
            status, headers, _ = await rest.call("GET", RATE_LIMIT_ORDER, creds)
            assert (status, headers["X-SAPI-USED-IP-WEIGHT-1M"]) == (200, used)
        # Another pool of the same IP is not affected.
        status, _, _ = await rest.call("GET", "/api/v3/time")
        assert status == 200
        status, headers, body = await rest.call("GET", RATE_LIMIT_ORDER, creds)
        assert (status, error_code(body)) == (429, -1003)
        assert headers["Retry-After"] == "20"  # the window ends at 1_000_020
        assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "40"  # the rejected 20 is not counted
        assert "12000" not in body["msg"] and "50" in body["msg"]
        status, headers, body = await rest.call("GET", RATE_LIMIT_ORDER, creds)
        assert (status, error_code(body)) == (418, -1003)
        assert headers["Retry-After"] == "120"
        assert "banned until 1000120000" in body["msg"]
        # The ban covers the whole IP, every pool.
        status, headers, _ = await rest.call("GET", "/api/v3/time")
        assert status == 418 and headers["Retry-After"] == "120"
        now[0] += 121.0
        status, _, _ = await rest.call("GET", "/api/v3/time")
        assert status == 200
        assert (ex.stats.responses_429, ex.stats.responses_418) == (1, 2)


async def test_429_window_is_fixed_and_reopens_at_the_boundary() -> None:
    now = [600.5]
    async with open_rest(api_ip_limit=3, window=10.0, clock=lambda: now[0]) as rest:
        for _ in range(3):
            assert (await rest.call("GET", "/api/v3/time"))[0] == 200
        status, headers, _ = await rest.call("GET", "/api/v3/time")
        assert status == 429 and headers["Retry-After"] == "10"
        now[0] = 610.0
        status, headers, _ = await rest.call("GET", "/api/v3/time")
        assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "1"


# fail_next


async def test_fail_next_injects_errors_then_recovers(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    exchange.fail_next("/api/v3/time", 2, status=503, code=-1008, msg="Server is busy.")
    exchange.fail_next("/api/v3/time", 1, status=400, code=-1000, msg="later", method="GET")
    results = [await rest.call("GET", "/api/v3/time") for _ in range(4)]
    assert [(status, body.get("code")) for status, _, body in results] == [
        (400, -1000),  # method-specific failures are consumed first
        (503, -1008),
        (503, -1008),
        (200, None),
    ]
    assert "X-MBX-USED-WEIGHT-1M" in results[0][1]  # still weighed
    with pytest.raises(ValueError):
        exchange.fail_next("/api/v3/time", 0)


async def test_fail_next_other_method_is_untouched(rest: FakeRest, exchange: FakeExchange) -> None:
    creds = exchange.add_account()
    exchange.fail_next("/sapi/v1/margin/listen-key", method="PUT", status=500, code=-1001, msg="x")
    status, _, body = await rest.call("POST", "/sapi/v1/margin/listen-key", creds, signed=False)
    assert status == 200
    key = body["listenKey"]
    params = [("listenKey", key)]
    status, _, body = await rest.call("PUT", "/sapi/v1/margin/listen-key", creds, params,
                                      signed=False)  # fmt: skip
    assert (status, error_code(body)) == (500, -1001)
    status, _, _ = await rest.call("PUT", "/sapi/v1/margin/listen-key", creds, params, signed=False)
    assert status == 200


async def test_fail_next_execute_answers_the_error_even_for_a_rejected_call(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    exchange.fail_next(RATE_LIMIT_ORDER, status=503, code=-1007, msg="Timeout", execute=True)
    # A stale timestamp (-1021) is checked as usual, but that answer is lost too.
    status, headers, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, timestamp=1)
    assert (status, error_code(body)) == (503, -1007)
    assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "20"
    status, _, body = await rest.call("GET", RATE_LIMIT_ORDER, creds, timestamp=1)
    assert (status, error_code(body)) == (400, -1021)
    with pytest.raises(ValueError, match="execute"):
        exchange.fail_next(RATE_LIMIT_ORDER, execute="sometimes")  # type: ignore[arg-type]


async def test_fail_next_disconnect_drops_the_http_connection(
    rest: FakeRest, exchange: FakeExchange
) -> None:
    creds = exchange.add_account()
    path = "/sapi/v1/margin/listen-key"
    # A POST: aiohttp resends an idempotent method (GET, PUT, DELETE) once on a dropped
    # connection by itself, which would hide the drop from this test.
    exchange.fail_next(path, disconnect=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await rest.call("POST", path, creds, signed=False)
    status, _, _ = await rest.call("POST", path, creds, signed=False)
    assert status == 200
    assert exchange.stats.requests_by_path[path] == 2


# Stats and lifecycle


async def test_stats_snapshot(rest: FakeRest, exchange: FakeExchange) -> None:
    before = exchange.stats
    await rest.call("GET", "/api/v3/time")
    after = exchange.stats
    assert after.requests == before.requests + 1
    assert after.open_connections == 0
    with pytest.raises(TypeError):
        after.events["x"] = 1  # type: ignore[index]


async def test_urls_and_restart_guard() -> None:
    ex = FakeExchange()
    with pytest.raises(RuntimeError):
        _ = ex.rest_url
    async with ex:
        assert ex.rest_url == f"http://127.0.0.1:{ex.port}"
        assert ex.ws_api_url == f"ws://127.0.0.1:{ex.port}/ws-api/v3"
        assert ex.risk_stream_url == f"ws://127.0.0.1:{ex.port}"
        with pytest.raises(RuntimeError):
            await ex.start()


def test_same_seed_same_keys() -> None:
    first = FakeExchange(seed=5).add_account(key_type="ED25519")
    second = FakeExchange(seed=5).add_account(key_type="ED25519")
    third = FakeExchange(seed=6).add_account(key_type="ED25519")
    assert first == second
    assert first.private_key != third.private_key
