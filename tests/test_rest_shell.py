"""Narrow unit tests of the REST shell with aioresponses: request shape and the retry policy.

Everything end to end (real sockets, the fake exchange) lives in test_e2e_*.py; these only pin what
`MarginClient._call` puts on the wire and how it reacts to canned answers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from aioresponses import aioresponses
from yarl import URL

from binance_margin_async import MarginClient, RateLimiter
from binance_margin_async.errors import (
    ExecutionStatusUnknown,
    InvalidResponse,
    IPBanned,
    NewOrderRejected,
    ParameterError,
    RateLimited,
)

BASE = "http://binance.test"
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

# The doc example of GET /sapi/v1/margin/account (values made up), shared with test_mirror.
ACCOUNT = orjson.loads(
    (Path(__file__).parent / "data" / "rest" / "margin_account.json").read_bytes()
)


def _url(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(BASE + path) + r"(\?.*)?$")


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[MarginClient]:
    limiter = RateLimiter(max_wait=0.5)
    async with MarginClient(KEY, SECRET, base_url=BASE, limiter=limiter) as c:
        c._max_read_retries = 2
        # Record the exact URL objects given to aiohttp, to check the bytes on the wire.
        sent: list[URL] = []
        send = c._send

        async def spy(method: str, url: URL, *args: Any) -> Any:
            sent.append(url)
            return await send(method, url, *args)

        c._send = spy  # type: ignore[method-assign,assignment]
        c.sent_urls = sent  # type: ignore[attr-defined]
        yield c


def _calls(m: aioresponses, method: str, path: str) -> list[tuple[URL, dict[str, Any]]]:
    return [
        (url, call.kwargs)
        for (verb, url), calls in m.requests.items()
        if verb == method and url.path == path
        for call in calls
    ]


def _wire_queries(client: MarginClient, path: str) -> list[str]:
    """The raw query strings the shell handed to aiohttp (aioresponses records them re-sorted)."""
    return [url.raw_query_string for url in client.sent_urls if url.path == path]  # type: ignore[attr-defined]


def _time_ok(m: aioresponses, *, repeat: bool = True) -> None:
    m.get(_url("/api/v3/time"), payload={"serverTime": _now_ms()}, repeat=repeat)


async def test_signed_get_puts_everything_in_the_query_with_signature_last(
    mocked: aioresponses, client: MarginClient
) -> None:
    _time_ok(mocked)
    mocked.get(_url("/sapi/v1/margin/account"), payload=ACCOUNT)
    account = await client.get_account()
    assert account.margin_level == Decimal("11.64405625")
    [(_, kwargs)] = _calls(mocked, "GET", "/sapi/v1/margin/account")
    assert kwargs["headers"] == {"X-MBX-APIKEY": KEY}
    [query] = _wire_queries(client, "/sapi/v1/margin/account")
    names = [name for name, _ in parse_qsl(query)]
    assert names == ["recvWindow", "timestamp", "signature"]
    payload, signature = query.rsplit("&signature=", 1)
    expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    assert signature == expected


async def test_post_sends_params_in_the_query_and_signs_the_encoded_bytes(
    mocked: aioresponses, client: MarginClient
) -> None:
    _time_ok(mocked)
    mocked.post(
        _url("/sapi/v1/margin/order"),
        payload={"symbol": "BTCUSDT", "orderId": 1, "clientOrderId": "x", "transactTime": 1},
    )
    await client.new_order(
        "BTCUSDT",
        "BUY",
        "LIMIT",
        quantity="0.01",
        price=Decimal("50000"),
        time_in_force="GTC",
        new_client_order_id="my/order:1",
    )
    [(_, kwargs)] = _calls(mocked, "POST", "/sapi/v1/margin/order")
    assert kwargs.get("data") is None
    [query] = _wire_queries(client, "/sapi/v1/margin/order")
    assert query.startswith("symbol=BTCUSDT&side=BUY&type=LIMIT&")
    # `/` and `:` are percent-encoded once, and the signature covers exactly that text.
    assert "newClientOrderId=my%2Forder%3A1" in query
    payload, signature = query.rsplit("&signature=", 1)
    assert signature == hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


async def test_user_stream_endpoint_sends_the_key_but_no_signature(
    mocked: aioresponses, client: MarginClient
) -> None:
    mocked.post(_url("/sapi/v1/userListenToken"), payload={"token": "tok+/=", "expirationTime": 17})
    token = await client.create_listen_token(symbol="BNBUSDT", validity_ms=86_400_000)
    assert token.token == "tok+/="
    [(url, kwargs)] = _calls(mocked, "POST", "/sapi/v1/userListenToken")
    assert kwargs["headers"] == {"X-MBX-APIKEY": KEY}
    params = dict(parse_qsl(url.raw_query_string))
    assert params == {"isIsolated": "true", "symbol": "BNBUSDT", "validity": "86400000"}
    assert not _calls(mocked, "GET", "/api/v3/time"), "USER_STREAM calls need no clock"


async def test_invalid_timestamp_resyncs_the_clock_and_resends_once(
    mocked: aioresponses, client: MarginClient
) -> None:
    _time_ok(mocked)
    mocked.get(
        _url("/sapi/v1/margin/account"),
        status=400,
        payload={"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
    )
    mocked.get(_url("/sapi/v1/margin/account"), payload=ACCOUNT)
    await client.get_account()
    assert len(_calls(mocked, "GET", "/sapi/v1/margin/account")) == 2
    assert len(_calls(mocked, "GET", "/api/v3/time")) == 2  # first sync, then the resync


async def test_get_retries_on_503_then_succeeds(mocked: aioresponses, client: MarginClient) -> None:
    _time_ok(mocked)
    mocked.get(_url("/sapi/v1/margin/account"), status=503, body="Service Unavailable")
    mocked.get(_url("/sapi/v1/margin/account"), payload=ACCOUNT)
    account = await client.get_account()
    assert account.trade_enabled is True
    assert len(_calls(mocked, "GET", "/sapi/v1/margin/account")) == 2


async def test_get_gives_up_after_bounded_retries(
    mocked: aioresponses, client: MarginClient
) -> None:
    _time_ok(mocked)
    mocked.get(_url("/sapi/v1/margin/account"), status=503, body="<html>down</html>", repeat=True)
    with pytest.raises(InvalidResponse) as info:
        await client.get_account()
    assert info.value.status == 503
    assert "down" in info.value.excerpt
    assert len(_calls(mocked, "GET", "/sapi/v1/margin/account")) == 3  # 1 + 2 retries


async def test_order_is_never_retried_and_unknown_outcome_carries_the_client_order_id(
    mocked: aioresponses, client: MarginClient
) -> None:
    _time_ok(mocked)
    mocked.post(_url("/sapi/v1/margin/order"), status=503, body="Service Unavailable")
    with pytest.raises(ExecutionStatusUnknown) as info:
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
    assert len(_calls(mocked, "POST", "/sapi/v1/margin/order")) == 1
    [(url, _)] = _calls(mocked, "POST", "/sapi/v1/margin/order")
    sent_id = dict(parse_qsl(url.raw_query_string))["newClientOrderId"]
    assert info.value.client_order_id == sent_id


async def test_order_timeout_is_unknown_outcome(mocked: aioresponses, client: MarginClient) -> None:
    _time_ok(mocked)
    mocked.post(_url("/sapi/v1/margin/order"), exception=TimeoutError())
    with pytest.raises(ExecutionStatusUnknown) as info:
        await client.new_order("BTCUSDT", "SELL", "MARKET", quantity="1", new_client_order_id="c1")
    assert info.value.client_order_id == "c1"


async def test_order_rejection_is_a_typed_error_not_unknown(
    mocked: aioresponses, client: MarginClient
) -> None:
    _time_ok(mocked)
    mocked.post(
        _url("/sapi/v1/margin/order"),
        status=400,
        payload={"code": -2010, "msg": "Account has insufficient balance for requested action."},
    )
    with pytest.raises(NewOrderRejected) as info:
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
    assert info.value.code == -2010
    assert "insufficient balance" in info.value.msg


async def test_418_bans_the_ip_and_later_calls_fail_fast_without_sending(
    mocked: aioresponses, client: MarginClient
) -> None:
    _time_ok(mocked)
    mocked.get(
        _url("/sapi/v1/margin/account"),
        status=418,
        headers={"Retry-After": "120"},
        payload={"code": -1003, "msg": "Way too much request weight used; IP banned until 1."},
    )
    with pytest.raises(IPBanned):
        await client.get_account()
    with pytest.raises(IPBanned) as info:
        await client.get_all_assets()
    assert info.value.until > time.time() + 100
    assert not _calls(mocked, "GET", "/sapi/v1/margin/allAssets")


async def test_429_is_rate_limited_with_retry_after(
    mocked: aioresponses, client: MarginClient
) -> None:
    mocked.get(
        _url("/sapi/v1/margin/allAssets"),
        status=429,
        headers={"Retry-After": "7"},
        payload={"code": -1003, "msg": "Too much request weight used."},
    )
    with pytest.raises(RateLimited) as info:
        await client.get_all_assets()
    assert info.value.retry_after == 7
    # The pool is closed for 7 s, longer than max_wait: the next call fails locally.
    with pytest.raises(RateLimited):
        await client.get_all_assets()
    assert len(_calls(mocked, "GET", "/sapi/v1/margin/allAssets")) == 1


async def test_non_json_success_body_is_invalid_response(
    mocked: aioresponses, client: MarginClient
) -> None:
    mocked.get(_url("/sapi/v1/margin/allAssets"), status=200, body="not json")
    with pytest.raises(InvalidResponse) as info:
        await client.get_all_assets()
    assert info.value.status == 200


async def test_bad_input_raises_before_anything_is_sent(
    mocked: aioresponses, client: MarginClient
) -> None:
    with pytest.raises(ParameterError, match="quantity"):
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity=float("nan"))
    with pytest.raises(ParameterError, match="amount"):
        await client.borrow("BTC", "-1")
    assert not mocked.requests


async def test_signed_call_without_secret_is_a_clear_error(mocked: aioresponses) -> None:
    async with MarginClient(KEY, base_url=BASE) as keyless:
        with pytest.raises(ParameterError, match="api_secret"):
            await keyless.get_account()
    assert not mocked.requests


def test_repr_never_shows_the_secret() -> None:
    client = MarginClient(KEY, SECRET, base_url=BASE)
    assert SECRET not in repr(client)
    assert KEY not in repr(client)


@pytest.mark.parametrize("recv_window", [0, 60_001, True])
def test_recv_window_is_validated(recv_window: int) -> None:
    with pytest.raises(ParameterError, match="recv_window"):
        MarginClient(KEY, SECRET, recv_window=recv_window)


async def test_order_count_usage_teaches_the_limiter_the_account_order_limits(
    mocked: aioresponses,
) -> None:
    # A frozen limiter clock in the middle of a 10 s window: the refusal below cannot be undone
    # by a window boundary passing during the test.
    limiter = RateLimiter(max_wait=0.5, clock=lambda: 1_700_000_005.0)
    order = {"symbol": "BTCUSDT", "orderId": 1, "clientOrderId": "x", "transactTime": 1}
    _time_ok(mocked)
    mocked.post(_url("/sapi/v1/margin/order"), payload=order, repeat=True)
    usage = [
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": 10,
            "count": 8,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": 20000,
            "count": 9,
        },
    ]
    mocked.get(_url("/sapi/v1/margin/rateLimit/order"), payload=usage)
    async with MarginClient(KEY, SECRET, base_url=BASE, limiter=limiter) as client:
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")  # default limits: fine
        assert limiter.usage(account=client.account)["ORDERS:10S"] == 1
        learned = await client.get_order_count_usage()
        assert [entry.limit for entry in learned] == [10, 20000]
        # The server's count (8) replaces the local one; 9 of 10 is the non-critical share.
        assert limiter.usage(account=client.account)["ORDERS:10S"] == 8
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
        with pytest.raises(RateLimited):
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
    assert len(_calls(mocked, "POST", "/sapi/v1/margin/order")) == 2


async def test_order_count_usage_without_order_limits_keeps_the_limiter_windows(
    mocked: aioresponses, client: MarginClient
) -> None:
    mocked.get(_url("/sapi/v1/margin/rateLimit/order"), payload=[])
    _time_ok(mocked)
    assert await client.get_order_count_usage() == []
    assert {"ORDERS:10S", "ORDERS:1D"} <= set(client.limiter.usage(account=client.account))
