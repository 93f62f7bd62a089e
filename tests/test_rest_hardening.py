"""The REST shell against a hostile or broken server: redirects, huge bodies, error-shaped 2xx,
dropped connections and cancelled writes. Real sockets on 127.0.0.1 (:class:`LocalServer`)."""

from __future__ import annotations

import asyncio
import gzip
import pickle
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from test_rest_shell import ACCOUNT, KEY, ORDER, SECRET, LocalServer

from binance_margin_async import MarginClient, RateLimiter, new_client_order_id
from binance_margin_async.endpoints import ENDPOINTS
from binance_margin_async.errors import (
    BadSymbol,
    BinanceError,
    ExecutionStatusUnknown,
    InvalidResponse,
    MarginAccountNotFound,
    ParameterError,
    RedirectRefused,
    ResponseTooLarge,
)

MIB = 1024 * 1024


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer() as local:
        local.time_ok()
        yield local


@pytest.fixture
async def elsewhere() -> AsyncIterator[LocalServer]:
    """The origin a redirect points to: it must never receive anything."""
    async with LocalServer() as local:
        yield local


def _client(server: LocalServer, **kwargs: Any) -> MarginClient:
    return MarginClient(
        KEY, SECRET, base_url=server.url, limiter=RateLimiter(max_wait=0.5), **kwargs
    )


# Redirects


@pytest.mark.parametrize(
    ("status", "method", "path"),
    [(307, "POST", "/sapi/v1/margin/borrow-repay"), (302, "GET", "/sapi/v1/margin/account")],
)
async def test_a_redirect_is_refused_and_nothing_reaches_the_other_host(
    server: LocalServer, elsewhere: LocalServer, status: int, method: str, path: str
) -> None:
    # `localhost` resolves to the same loopback, under a name the error can show.
    target = elsewhere.url.replace("127.0.0.1", "localhost") + path
    server.reply(method, path, status=status, body="", headers={"Location": target})
    async with _client(server) as client:
        with pytest.raises(RedirectRefused) as info:
            if method == "POST":
                await client.borrow("BTC", "1")
            else:
                await client.get_account()
    assert info.value.status == status
    assert info.value.target_host == f"localhost:{target.split(':')[2].split('/')[0]}"
    assert "nothing was re-sent" in str(info.value)
    assert elsewhere.seen == []
    assert len(server.calls(method, path)) == 1  # and not re-sent to the first host either


async def test_a_relative_redirect_is_refused_too_even_on_a_session_the_caller_owns(
    server: LocalServer,
) -> None:
    server.reply("GET", "/sapi/v1/margin/account", status=301, headers={"Location": "/x"}, body="")
    async with aiohttp.ClientSession() as session, _client(server, session=session) as client:
        with pytest.raises(RedirectRefused) as info:
            await client.get_account()
    assert info.value.target_host is None
    assert not server.calls("GET", "/x")


# Response size


async def test_a_body_over_the_limit_is_refused_from_its_content_length(
    server: LocalServer,
) -> None:
    server.reply("GET", "/sapi/v1/margin/allAssets", body=b"[" + b" " * (2 * MIB) + b"]")
    async with _client(server, max_response_bytes=MIB) as client:
        with pytest.raises(ResponseTooLarge) as info:
            await client.get_all_assets()
    assert info.value.limit == MIB and info.value.status == 200
    assert isinstance(info.value, InvalidResponse)


async def test_a_streamed_50_mb_body_is_cut_off_while_reading(server: LocalServer) -> None:
    written = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal written
        response = web.StreamResponse()  # chunked: no Content-Length to refuse it up front
        await response.prepare(request)
        chunk = b"[" + b"0," * (32 * 1024)
        try:
            while written < 50 * MIB:
                await response.write(chunk)
                written += len(chunk)
        except ConnectionError:
            pass  # the client hung up, as it should
        return response

    server.handle("GET", "/sapi/v1/margin/allAssets", endless)
    async with _client(server, max_response_bytes=MIB) as client:
        with pytest.raises(ResponseTooLarge) as info:
            await client.get_all_assets()
    assert info.value.excerpt.startswith("[0,0,")
    # The server could push what the socket buffers took before the client hung up, no more.
    assert written < 50 * MIB


async def test_a_write_whose_answer_is_too_large_is_unknown_outcome(server: LocalServer) -> None:
    server.reply("POST", "/sapi/v1/margin/order", body=b"{" + b" " * (2 * MIB) + b"}")
    async with _client(server, max_response_bytes=MIB) as client:
        with pytest.raises(ExecutionStatusUnknown) as info:
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
    assert isinstance(info.value.__cause__, ResponseTooLarge)
    assert info.value.client_order_id is not None and info.value.status == 200


async def test_a_gzip_bomb_is_measured_inflated(server: LocalServer) -> None:
    bomb = gzip.compress(b"[" + b"0," * MIB + b"0]")  # ~2 MiB inflated, a few KiB on the wire
    assert len(bomb) < 64 * 1024
    server.reply(
        "GET", "/sapi/v1/margin/allAssets", body=bomb, headers={"Content-Encoding": "gzip"}
    )
    async with _client(server, max_response_bytes=MIB) as client:
        with pytest.raises(ResponseTooLarge):
            await client.get_all_assets()


async def test_a_body_within_the_limit_passes(server: LocalServer) -> None:
    server.reply("GET", "/sapi/v1/margin/account", ACCOUNT)
    async with _client(server, max_response_bytes=64 * 1024) as client:
        assert (await client.get_account()).trade_enabled is True


@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_max_response_bytes_is_validated(limit: object) -> None:
    with pytest.raises(ParameterError, match="max_response_bytes"):
        MarginClient(KEY, SECRET, max_response_bytes=limit)  # type: ignore[arg-type]


# Answers are checked


async def test_an_error_shaped_200_raises_the_mapped_error(server: LocalServer) -> None:
    server.reply("GET", "/sapi/v1/margin/account", {"code": -1121, "msg": "Invalid symbol."})
    exit_mode = ENDPOINTS["exit_special_key_mode"]
    server.reply(
        exit_mode.method, exit_mode.path, {"code": -3003, "msg": "Margin account does not exist."}
    )
    async with _client(server) as client:
        with pytest.raises(BadSymbol) as info:
            await client.get_account()
        assert info.value.status == 200 and info.value.code == -1121
        with pytest.raises(MarginAccountNotFound):
            await client.exit_special_key_mode()


async def test_an_error_shaped_200_on_a_write_with_unknown_outcome_is_unknown(
    server: LocalServer,
) -> None:
    server.reply("POST", "/sapi/v1/margin/order", {"code": -1007, "msg": "Timeout waiting."})
    async with _client(server) as client:
        with pytest.raises(ExecutionStatusUnknown) as info:
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")
    assert info.value.code == -1007 and info.value.client_order_id is not None


async def test_a_wrong_shaped_200_is_invalid_response_with_an_excerpt(server: LocalServer) -> None:
    server.reply("GET", "/sapi/v1/margin/account", {"unexpected": "shape"})
    server.reply("POST", "/sapi/v1/margin/order", {"symbol": "BTCUSDT"})  # no orderId
    async with _client(server) as client:
        with pytest.raises(InvalidResponse) as info:
            await client.get_account()
        assert info.value.status == 200 and "unexpected" in info.value.excerpt
        with pytest.raises(InvalidResponse, match="order_id"):
            await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1")


# aiohttp's silent resend


async def test_a_dropped_delete_on_a_kept_alive_connection_is_not_resent(
    server: LocalServer,
) -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    server.handle("DELETE", "/sapi/v1/margin/order", drop)
    async with _client(server) as client:
        await client.sync_clock()  # opens the connection the DELETE then reuses
        with pytest.raises(ExecutionStatusUnknown):
            await client.cancel_order("BTCUSDT", order_id=1)
    # aiohttp's default would have sent it twice (it resends DELETE on a reused connection).
    assert len(server.calls("DELETE", "/sapi/v1/margin/order")) == 1


async def test_a_session_without_the_resend_switch_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class OldSession:  # what an aiohttp before 3.11 looks like to the client
        def __init__(self, **kwargs: object) -> None:
            pass

    monkeypatch.setattr(aiohttp, "ClientSession", OldSession)
    client = MarginClient(KEY, SECRET)
    try:
        with pytest.raises(RuntimeError, match="_retry_connection"):
            client._get_session()
    finally:
        await client.close()


# Cancelled writes


async def test_a_write_cancelled_on_the_wire_names_its_client_order_id(
    server: LocalServer,
) -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def hold(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.json_response(ORDER)

    server.handle("POST", "/sapi/v1/margin/order", hold)
    server.reply("GET", "/sapi/v1/margin/order", ORDER)
    async with _client(server) as client:
        wanted = new_client_order_id()
        task = asyncio.create_task(
            client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1", new_client_order_id=wanted)
        )
        async with asyncio.timeout(30):
            await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        release.set()
        [note] = info.value.__notes__
        assert f"newClientOrderId={wanted}" in note
        [sent] = server.calls("POST", "/sapi/v1/margin/order")
        assert sent.params["newClientOrderId"] == wanted
        # Reconcile as the README says: query the order by the id kept from the start.
        order = await client.get_order("BTCUSDT", orig_client_order_id=wanted)
        assert order.order_id == 1
        assert server.calls("GET", "/sapi/v1/margin/order")[0].params["origClientOrderId"] == wanted


async def test_a_cancelled_borrow_says_to_check_the_history(server: LocalServer) -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def hold(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.json_response({"tranId": 1})

    server.handle("POST", "/sapi/v1/margin/borrow-repay", hold)
    async with _client(server) as client:
        task = asyncio.create_task(client.borrow("BTC", "1"))
        async with asyncio.timeout(30):
            await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        release.set()
    [note] = info.value.__notes__
    assert "borrow-repay" in note and "history" in note


def test_new_client_order_ids_are_fresh_and_valid() -> None:
    ids = {new_client_order_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 35 and i.startswith("bma") and i.isalnum() for i in ids)


def test_redirect_refused_is_a_binance_error_and_pickles() -> None:
    error = pickle.loads(pickle.dumps(RedirectRefused(307, "evil.example:8443")))
    assert isinstance(error, RedirectRefused) and isinstance(error, BinanceError)
    assert error.status == 307 and error.target_host == "evil.example:8443"
