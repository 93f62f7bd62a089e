"""Narrow tests of the REST shell against a tiny local aiohttp server: request shape and retries.

Everything end to end against the fake exchange lives in test_e2e_*.py; these pin what
`MarginClient._call` puts on the wire (read back as the server received it) and how it reacts to
canned answers. :class:`LocalServer` is shared with test_rest_hardening.py.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from binance_margin_async import MarginClient, RateLimiter
from binance_margin_async.errors import (
    ExecutionStatusUnknown,
    InvalidResponse,
    IPBanned,
    NewOrderRejected,
    ParameterError,
    RateLimited,
)

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

# The doc example of GET /sapi/v1/margin/account (values made up), shared with test_mirror.
ACCOUNT = orjson.loads(
    (Path(__file__).parent / "data" / "rest" / "margin_account.json").read_bytes()
)
ORDER = {"symbol": "BTCUSDT", "orderId": 1, "clientOrderId": "x", "transactTime": 1}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: str  # the raw query string, exactly as sent
    headers: dict[str, str]
    body: bytes

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query))


@dataclass
class LocalServer:
    """An aiohttp app on 127.0.0.1 answering each (method, path) from a queue of canned replies.

    The last reply of a queue repeats; a path with no reply answers 404. Every request is
    recorded in ``seen``, in arrival order.
    """

    seen: list[Seen] = field(default_factory=list)
    replies: dict[tuple[str, str], list[Handler]] = field(default_factory=dict)
    server: TestServer | None = None

    def reply(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        status: int = 200,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue a JSON (``payload``) or raw (``body``) answer to ``method path``."""
        data = body.encode() if isinstance(body, str) else body
        if data is None:
            data = orjson.dumps(payload)

        async def answer(request: web.Request) -> web.StreamResponse:
            return web.Response(
                status=status,
                body=data,
                headers=headers,
                content_type=None if body is not None else "application/json",
            )

        self.handle(method, path, answer)

    def handle(self, method: str, path: str, handler: Handler) -> None:
        """Queue a custom handler for ``method path``."""
        self.replies.setdefault((method, path), []).append(handler)

    def time_ok(self) -> None:
        self.handle("GET", "/api/v3/time", _server_time)

    def calls(self, method: str, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method and seen.path == path]

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.method,
                request.path,
                request.raw_path.partition("?")[2],
                dict(request.headers),
                await request.read(),
            )
        )
        queue = self.replies.get((request.method, request.path))
        if not queue:
            return web.Response(status=404, text="no canned reply")
        handler = queue.pop(0) if len(queue) > 1 else queue[0]
        return await handler(request)

    async def __aenter__(self) -> LocalServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        await self.server.close()


async def _server_time(request: web.Request) -> web.StreamResponse:
    return web.json_response({"serverTime": int(time.time() * 1000)})


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer() as local:
        yield local


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[MarginClient]:
    limiter = RateLimiter(max_wait=0.5)
    async with MarginClient(
        KEY, SECRET, base_url=server.url, limiter=limiter, max_read_retries=2
    ) as c:
        yield c


def _signature_ok(query: str) -> bool:
    payload, signature = query.rsplit("&signature=", 1)
    expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return signature == expected


async def test_signed_get_puts_everything_in_the_query_with_signature_last(
    server: LocalServer, client: MarginClient
) -> None:
    server.time_ok()
    server.reply("GET", "/sapi/v1/margin/account", ACCOUNT)
    account = await client.get_account()
    assert account.margin_level == Decimal("11.64405625")
    [seen] = server.calls("GET", "/sapi/v1/margin/account")
    assert seen.headers["X-MBX-APIKEY"] == KEY
    assert [name for name, _ in parse_qsl(seen.query)] == ["recvWindow", "timestamp", "signature"]
    assert _signature_ok(seen.query)


async def test_post_sends_params_in_the_query_and_signs_the_encoded_bytes(
    server: LocalServer, client: MarginClient
) -> None:
    server.time_ok()
    server.reply("POST", "/sapi/v1/margin/order", ORDER)
    await client.new_order(
        "BTCUSDT",
        "BUY",
        "LIMIT",
        quantity="0.01",
        price=Decimal("50000"),
        time_in_force="GTC",
        new_client_order_id="my/order:1",
    )
    [seen] = server.calls("POST", "/sapi/v1/margin/order")
    assert seen.body == b""
    assert seen.query.startswith("symbol=BTCUSDT&side=BUY&type=LIMIT&")
    # `/` and `:` are percent-encoded once, and the signature covers exactly that text.
    assert "newClientOrderId=my%2Forder%3A1" in seen.query
    assert _signature_ok(seen.query)


async def test_user_stream_endpoint_sends_the_key_but_no_signature(
    server: LocalServer, client: MarginClient
) -> None:
    server.reply("POST", "/sapi/v1/userListenToken", {"token": "tok+/=", "expirationTime": 17})
    token = await client.create_listen_token(symbol="BNBUSDT", validity_ms=86_400_000)
    assert token.token == "tok+/="
    [seen] = server.calls("POST", "/sapi/v1/userListenToken")
    assert seen.headers["X-MBX-APIKEY"] == KEY
    assert seen.params == {"isIsolated": "true", "symbol": "BNBUSDT", "validity": "86400000"}
    assert not server.calls("GET", "/api/v3/time"), "USER_STREAM calls need no clock"


async def test_invalid_timestamp_resyncs_the_clock_and_resends_once(
    server: LocalServer, client: MarginClient
) -> None:
    server.time_ok()
    server.reply(
        "GET",
        "/sapi/v1/margin/account",
        {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
        status=400,
    )
    server.reply("GET", "/sapi/v1/margin/account", ACCOUNT)
    await client.get_account()
    assert len(server.calls("GET", "/sapi/v1/margin/account")) == 2
    assert len(server.calls("GET", "/api/v3/time")) == 2  # first sync, then the resync


async def test_get_retries_on_503_then_succeeds(server: LocalServer, client: MarginClient) -> None:
    server.time_ok()
    server.reply("GET", "/sapi/v1/margin/account", status=503, body="Service Unavailable")
    server.reply("GET", "/sapi/v1/margin/account", ACCOUNT)
    account = await client.get_account()
    assert account.trade_enabled is True
    assert len(server.calls("GET", "/sapi/v1/margin/account")) == 2


async def test_get_gives_up_after_bounded_retries(
    server: LocalServer, client: MarginClient
) -> None:
    server.time_ok()
    server.reply("GET", "/sapi/v1/margin/account", status=503, body="<html>down</html>")
    with pytest.raises(InvalidResponse) as info:
        await client.get_account()
    assert info.value.status == 503
    assert "down" in info.value.excerpt
    assert len(server.calls("GET", "/sapi/v1/margin/account")) == 3  # 1 + 2 retries


async def test_order_is_never_retried_and_unknown_outcome_carries_the_client_order_id(
    server: LocalServer, client: MarginClient
) -> None:
    server.time_ok()
    server.reply("POST", "/sapi/v1/margin/order", status=503, body="Service Unavailable")
    with pytest.raises(ExecutionStatusUnknown) as info:
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
    [seen] = server.calls("POST", "/sapi/v1/margin/order")
    assert info.value.client_order_id == seen.params["newClientOrderId"]


async def test_order_whose_connection_drops_is_unknown_outcome(
    server: LocalServer, client: MarginClient
) -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # no answer at all: the client sees a dropped connection
        return web.Response()

    server.time_ok()
    server.handle("POST", "/sapi/v1/margin/order", drop)
    with pytest.raises(ExecutionStatusUnknown) as info:
        await client.new_order("BTCUSDT", "SELL", "MARKET", quantity="1", new_client_order_id="c1")
    assert info.value.client_order_id == "c1"
    assert len(server.calls("POST", "/sapi/v1/margin/order")) == 1


async def test_order_rejection_is_a_typed_error_not_unknown(
    server: LocalServer, client: MarginClient
) -> None:
    server.time_ok()
    server.reply(
        "POST",
        "/sapi/v1/margin/order",
        {"code": -2010, "msg": "Account has insufficient balance for requested action."},
        status=400,
    )
    with pytest.raises(NewOrderRejected) as info:
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
    assert info.value.code == -2010
    assert "insufficient balance" in info.value.msg


async def test_418_bans_the_ip_and_later_calls_fail_fast_without_sending(
    server: LocalServer, client: MarginClient
) -> None:
    server.time_ok()
    server.reply(
        "GET",
        "/sapi/v1/margin/account",
        {"code": -1003, "msg": "Way too much request weight used; IP banned until 1."},
        status=418,
        headers={"Retry-After": "120"},
    )
    with pytest.raises(IPBanned):
        await client.get_account()
    with pytest.raises(IPBanned) as info:
        await client.get_all_assets()
    assert info.value.until > time.time() + 100
    assert not server.calls("GET", "/sapi/v1/margin/allAssets")


async def test_429_is_rate_limited_with_retry_after(
    server: LocalServer, client: MarginClient
) -> None:
    server.reply(
        "GET",
        "/sapi/v1/margin/allAssets",
        {"code": -1003, "msg": "Too much request weight used."},
        status=429,
        headers={"Retry-After": "7"},
    )
    with pytest.raises(RateLimited) as info:
        await client.get_all_assets()
    assert info.value.retry_after == 7
    # The pool is closed for 7 s, longer than max_wait: the next call fails locally.
    with pytest.raises(RateLimited):
        await client.get_all_assets()
    assert len(server.calls("GET", "/sapi/v1/margin/allAssets")) == 1


async def test_non_json_success_body_is_invalid_response(
    server: LocalServer, client: MarginClient
) -> None:
    server.reply("GET", "/sapi/v1/margin/allAssets", body="not json")
    with pytest.raises(InvalidResponse) as info:
        await client.get_all_assets()
    assert info.value.status == 200
    assert info.value.__cause__ is None and info.value.__context__ is None


async def test_bad_input_raises_before_anything_is_sent(
    server: LocalServer, client: MarginClient
) -> None:
    with pytest.raises(ParameterError, match="quantity"):
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity=float("nan"))
    with pytest.raises(ParameterError, match="amount"):
        await client.borrow("BTC", "-1")
    assert not server.seen


async def test_signed_call_without_secret_is_a_clear_error(server: LocalServer) -> None:
    async with MarginClient(KEY, base_url=server.url) as keyless:
        with pytest.raises(ParameterError, match="api_secret"):
            await keyless.get_account()
    assert not server.seen


def test_repr_never_shows_the_secret() -> None:
    client = MarginClient(KEY, SECRET)
    assert SECRET not in repr(client)
    assert KEY not in repr(client)
    assert "api_key='vmPU…'" in repr(client)


@pytest.mark.parametrize("recv_window", [0, 60_001, True])
def test_recv_window_is_validated(recv_window: int) -> None:
    with pytest.raises(ParameterError, match="recv_window"):
        MarginClient(KEY, SECRET, recv_window=recv_window)


async def test_order_count_usage_teaches_the_limiter_the_account_order_limits(
    server: LocalServer,
) -> None:
    # A frozen limiter clock in the middle of a 10 s window: the refusal below cannot be undone
    # by a window boundary passing during the test.
    limiter = RateLimiter(max_wait=0.5, clock=lambda: 1_700_000_005.0)
    server.time_ok()
    server.reply("POST", "/sapi/v1/margin/order", ORDER)
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
    server.reply("GET", "/sapi/v1/margin/rateLimit/order", usage)
    async with MarginClient(KEY, SECRET, base_url=server.url, limiter=limiter) as client:
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")  # default limits: fine
        assert limiter.usage(account=client.account)["ORDERS:10S"] == 1
        learned = await client.get_order_count_usage()
        assert [entry.limit for entry in learned] == [10, 20000]
        # The server's count (8) replaces the local one; 9 of 10 is the non-critical share.
        assert limiter.usage(account=client.account)["ORDERS:10S"] == 8
        await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
        with pytest.raises(RateLimited):
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
    assert len(server.calls("POST", "/sapi/v1/margin/order")) == 2


async def test_order_count_usage_without_order_limits_keeps_the_limiter_windows(
    server: LocalServer, client: MarginClient
) -> None:
    server.reply("GET", "/sapi/v1/margin/rateLimit/order", [])
    server.time_ok()
    assert await client.get_order_count_usage() == []
    assert {"ORDERS:10S", "ORDERS:1D"} <= set(client.limiter.usage(account=client.account))
