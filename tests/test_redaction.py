"""The one redaction rule: no text the library produces shows more than a masked prefix of a secret.

Three layers: the pure rule (:mod:`binance_margin_async.redaction`) on generated secrets and
contexts; the REST shell against a hostile local server (echoed keys, unparseable bodies with
listen keys, dropped connections); and a property-based session against the fake exchange with
random faults, which searches every produced text (every exception with its whole cause/context
chain and notes, every log record at DEBUG with its traceback, the reprs of results, clients,
credentials and streams) for every secret the session knew: API key, API secret or private key,
and every listen token and listen key the client received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_rest_shell import KEY, SECRET, LocalServer

from binance_margin_async import BinanceError, MarginClient, RateLimiter
from binance_margin_async.endpoints import Endpoint
from binance_margin_async.errors import ExecutionStatusUnknown, InvalidResponse, TransportError
from binance_margin_async.events import ExecutionReport
from binance_margin_async.models import ListenKey, ListenToken, SpecialKey, SpecialKeyInfo, decode
from binance_margin_async.redaction import MASK_PREFIX, mask, redact
from binance_margin_async.testing import FakeExchange

# A secret "appears" in a text when any run of this many of its characters does: twice what the
# mask shows, so a masked prefix never counts, while a cut or partial copy does.
WINDOW = 2 * MASK_PREFIX

_SECRET_CHARS = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_",
    min_size=16,
    max_size=96,
)


def leaks(secret: str, texts: Iterable[str]) -> list[str]:
    """The texts that contain a run of ``WINDOW`` characters of ``secret``."""
    windows = {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}
    return [text for text in texts if any(window in text for window in windows)]


# The pure rule


def test_mask_shows_a_short_prefix_only() -> None:
    assert mask(KEY) == "vmPU…"
    assert mask("12345678") == "…" and mask("") == "…"


@given(secret=_SECRET_CHARS, cut=st.integers(min_value=0, max_value=200))
@settings(max_examples=100, deadline=None)
def test_redact_masks_secrets_by_their_names_in_every_form(secret: str, cut: int) -> None:
    contexts = [
        orjson.dumps({"listenKey": secret, "x": 1}).decode(),
        repr({"token": secret, "expirationTime": 1}),
        repr({"apiKey": secret}),
        f"PUT /sapi/v1/margin/listen-key?listenKey={secret}&x=1",
        f"url='https://api.binance.com/sapi/v1/x?a=1&signature={secret}'",
        f"X-MBX-APIKEY: {secret}",
        f"connecting to wss://margin-stream.binance.com/ws/{secret} failed",
        repr({"X-MBX-APIKEY": secret, "User-Agent": "x"}),
        f'{{"secretKey":"{secret}"}}',
    ]
    for context in contexts:
        if leaks(secret, [context.replace(secret, "")]):
            continue  # the secret shares a run of characters with the context around it
        # An excerpt may be cut anywhere, even inside the secret: the rest must still be masked.
        for text in (context, context[: cut + 10]):
            assert not leaks(secret, [redact(text)]), text


@given(secret=_SECRET_CHARS, before=st.text(max_size=30), after=st.text(max_size=30))
@settings(max_examples=100, deadline=None)
def test_redact_masks_known_secrets_anywhere(secret: str, before: str, after: str) -> None:
    assume(not leaks(secret, [before, after]))
    text = redact(before + secret + after, [secret])
    assert not leaks(secret, [text])
    assert mask(secret) in text


def test_redact_leaves_ordinary_text_alone_and_is_idempotent() -> None:
    text = "HTTP 400, code -1121: Invalid symbol. listenTokenCount=5"
    assert redact(text) == text
    once = redact(f"GET https://h/p?listenKey={KEY} and apiKey={KEY}")
    assert redact(once) == once and KEY[:WINDOW] not in once


def test_redact_removes_pem_private_keys_whole() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGx1\n-----END PRIVATE KEY-----\n"
    assert redact(f"bad key: {pem}") == "bad key: <private key>\n"
    assert redact(pem[:40]) == "<private key>"  # cut before its end line


def test_credential_models_show_masked_reprs() -> None:
    token = decode(ListenToken, {"token": KEY, "expirationTime": 5})
    key = decode(ListenKey, {"listenKey": SECRET})
    special = decode(SpecialKey, {"apiKey": KEY, "secretKey": SECRET, "type": "HMAC_SHA256"})
    info = decode(SpecialKeyInfo, {"apiName": "bot", "apiKey": KEY})
    assert repr(token) == "ListenToken(token='vmPU…', expiration_time=5)"
    assert repr(key) == "ListenKey(listen_key='Nhq…')".replace("Nhq…", mask(SECRET))
    for model in (token, key, special, info):
        assert not leaks(KEY, [repr(model), str(model)])
        assert not leaks(SECRET, [repr(model), str(model)])


# The REST shell against a hostile server


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer() as local:
        local.time_ok()
        yield local


async def test_echoed_keys_and_listen_keys_in_answers_are_masked(server: LocalServer) -> None:
    listen_key = "Zq8mT3vX9pL2wR7yK4nB6cH1jF5dG0sAeU8iO3tYxW2vQ9rM7kN4bP6lJ1hC5gD0"
    # An unparseable 200 with the listen key in it, an HTML error page echoing the API key, and
    # a JSON error whose message echoes the key and a signed URL.
    server.reply(
        "PUT",
        "/sapi/v1/margin/listen-key",
        status=200,
        body=f"<html>url=https://x/sapi/v1/margin/listen-key?listenKey={listen_key}",
    )
    server.reply("POST", "/sapi/v1/margin/order", status=502, body=f"<p>bad key {KEY}</p>")
    server.reply(
        "GET",
        "/sapi/v1/margin/account",
        {"code": -2015, "msg": f"Invalid API-key {KEY}, see /x?signature=abcdef0123456789"},
        status=401,
    )
    texts: list[str] = []
    async with MarginClient(KEY, SECRET, base_url=server.url, max_read_retries=0) as client:
        for call in (
            client.keepalive_risk_data_stream(listen_key),
            client.new_order("BTCUSDT", "BUY", "MARKET", quantity="1"),
            client.get_account(),
        ):
            with pytest.raises(BinanceError) as info:
                await call
            texts.extend(exception_texts(info.value))
    assert not leaks(listen_key, texts)
    assert not leaks(KEY, texts)
    assert not leaks(SECRET, texts)
    assert any("bad key vmPU…" in text for text in texts)


async def test_transport_errors_chain_no_foreign_exception(server: LocalServer) -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    server.handle("POST", "/sapi/v1/margin/borrow-repay", drop)
    async with MarginClient(KEY, SECRET, base_url=server.url) as client:
        with pytest.raises(ExecutionStatusUnknown) as info:
            await client.borrow("BTC", "1")
    cause = info.value.__cause__
    assert isinstance(cause, TransportError)
    assert cause.__cause__ is None and cause.__context__ is None
    assert not leaks(KEY, exception_texts(info.value))


async def test_non_json_body_has_no_orjson_error_in_its_context(server: LocalServer) -> None:
    server.reply("GET", "/sapi/v1/margin/allAssets", body="<html>")
    async with MarginClient(KEY, base_url=server.url) as client:
        with pytest.raises(InvalidResponse) as info:
            await client.get_all_assets()
    assert info.value.__context__ is None


# A whole session against the fake exchange, with faults


def exception_texts(exc: BaseException) -> list[str]:
    """str, repr and notes of ``exc`` and of everything in its cause and context chain."""
    texts: list[str] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *getattr(current, "__notes__", ())]
        texts += (
            [repr(value) for value in vars(current).values()]
            if hasattr(current, "__dict__")
            else []
        )
        stack += [current.__cause__, current.__context__]
    return texts


class Collector(logging.Handler):
    """Every record at DEBUG and above, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@pytest.fixture
def all_logs() -> Iterator[Collector]:
    collector = Collector()
    root = logging.getLogger()
    level = root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    try:
        yield collector
    finally:
        root.removeHandler(collector)
        root.setLevel(level)


_SECRET_FIELDS = frozenset({"token", "listenKey", "apiKey", "secretKey"})


def _harvest(data: Any, into: set[str]) -> None:
    """Every credential value in a decoded answer (tokens, listen keys, keys)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _SECRET_FIELDS and isinstance(value, str):
                into.add(value)
            _harvest(value, into)
    elif isinstance(data, list):
        for item in data:
            _harvest(item, into)


# One fault per step: (kind, HTTP status, Binance code). "echo" errors repeat the API key and a
# listen-key URL in Binance's message, as a hostile or broken gateway might.
FAULTS = st.sampled_from(
    [
        ("none", 0, 0),
        ("none", 0, 0),
        ("error", 400, -1121),
        ("error", 503, -1007),
        ("error", 200, -1121),  # error-shaped 200
        ("error", 429, -1003),
        ("echo", 400, -2015),
        ("echo", 200, -1000),
        ("disconnect", 0, 0),
        ("executed", 503, -1006),
    ]
)

# The steps of the session: (REST path the fault applies to, the call).
STEPS = [
    "/sapi/v1/margin/account",
    "/sapi/v1/userListenToken",
    "/sapi/v1/margin/listen-key",
    "/sapi/v1/margin/order",
    "/sapi/v1/margin/borrow-repay",
    "/sapi/v1/margin/listen-key#keepalive",
    "/sapi/v1/margin/listen-key#close",
]


# Faults on the streams, applied once they are live: each makes the stream log and recover.
STREAM_FAULTS = st.sampled_from(
    ["none", "drop", "malformed", "expire_tokens", "expire_keys", "shutdown", None]
)


async def _session(
    faults: list[tuple[str, int, int]], key_type: str, stream_fault: str | None, logs: Collector
) -> tuple[set[str], list[str], int]:
    """Run the session; return (secrets, texts produced, exceptions raised)."""
    secrets: set[str] = set()
    texts: list[str] = []
    raised = 0
    async with FakeExchange(seed=len(faults)) as ex:
        creds = ex.add_account(
            margin_balances={"USDT": "100000", "BTC": "2"},
            key_type=key_type,  # type: ignore[arg-type]
        )
        ex.set_price("BTCUSDT", "50000")
        secrets.add(creds.api_key)
        if creds.api_secret is not None:
            secrets.add(creds.api_secret)
        if creds.private_key is not None:
            # The key material: the PEM's base64 lines, without its BEGIN/END armour.
            lines = creds.private_key.splitlines()
            secrets.add("".join(line for line in lines if "-----" not in line))
        client = ex.client(creds, limiter=RateLimiter(max_wait=0.2), max_read_retries=0)
        texts += [repr(creds), str(creds), repr(client), str(client)]
        call = client._call

        async def spy(endpoint: Endpoint, params: list[tuple[str, str]], **kwargs: Any) -> Any:
            data = await call(endpoint, params, **kwargs)
            _harvest(data, secrets)
            return data

        client._call = spy  # type: ignore[method-assign]
        async with client:
            listen_key = "unknown-listen-key-0123456789"
            for path, (kind, status, code) in zip(STEPS, faults, strict=False):
                route = path.split("#")[0]
                if kind != "none":
                    msg = "Internal error."
                    if kind == "echo":
                        msg = f"key {creds.api_key} at {ex.rest_url}{route}?listenKey={listen_key}"
                    ex.fail_next(
                        route,
                        status=status or 500,
                        code=code or -1001,
                        msg=msg,
                        disconnect=kind == "disconnect",
                        execute=kind == "executed",
                    )
                try:
                    result: Any = await _step(client, path, listen_key)
                except BinanceError as exc:
                    raised += 1
                    texts += exception_texts(exc)
                else:
                    texts += [repr(result), str(result)]
                    if isinstance(result, ListenKey):
                        listen_key = result.listen_key
            if stream_fault is not None:
                raised += await _stream_phase(ex, client, stream_fault, texts)
    texts += logs.texts
    return secrets, texts, raised


async def _stream_phase(
    ex: FakeExchange, client: MarginClient, fault: str, texts: list[str]
) -> int:
    """Run the streams through ``fault`` and a fill; return how many exceptions were raised."""
    stream = client.user_stream(risk=True)
    filled = asyncio.Event()
    stream.on(ExecutionReport, lambda event: filled.set())
    texts.append(repr(stream))
    try:  # a 429 above may have closed a pool the stream or the order needs
        async with stream:
            texts.append(repr(stream))
            {
                "none": lambda: None,
                "drop": ex.drop_connections,
                "malformed": ex.send_malformed_frame,
                "expire_tokens": ex.expire_listen_tokens,
                "expire_keys": ex.expire_listen_keys,
                "shutdown": ex.server_shutdown,
            }[fault]()
            await client.new_order("BTCUSDT", "SELL", "MARKET", quantity="0.01")
            # Give the stream a moment to log its recovery; the fill ends the wait early.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await filled.wait()
            texts.append(repr(stream))
    except BinanceError as exc:
        texts += exception_texts(exc)
        return 1
    finally:
        texts.append(repr(stream))
    return 0


async def _step(client: MarginClient, path: str, listen_key: str) -> Any:
    if path == "/sapi/v1/margin/account":
        return await client.get_account()
    if path == "/sapi/v1/userListenToken":
        return await client.create_listen_token()
    if path == "/sapi/v1/margin/listen-key":
        return await client.start_risk_data_stream()
    if path == "/sapi/v1/margin/order":
        return await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
    if path == "/sapi/v1/margin/borrow-repay":
        return await client.borrow("USDT", "10")
    if path.endswith("#keepalive"):
        return await client.keepalive_risk_data_stream(listen_key)
    return await client.close_risk_data_stream(listen_key)


@pytest.fixture(scope="module")
def totals(request: pytest.FixtureRequest) -> Iterator[dict[str, int]]:
    """Counts over every example of the property test, printed for the issue's closing note."""
    counts = {"examples": 0, "secrets": 0, "texts": 0, "exceptions": 0}
    yield counts
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and counts["examples"]:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nredaction: {counts['examples']} faulty sessions, {counts['secrets']} secrets "
                f"searched in {counts['texts']} texts ({counts['exceptions']} exceptions)"
            )


@given(
    faults=st.lists(FAULTS, min_size=len(STEPS), max_size=len(STEPS)),
    key_type=st.sampled_from(["HMAC", "ED25519"]),
    stream_fault=STREAM_FAULTS,
)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_text_of_a_faulty_session_shows_a_secret(
    all_logs: Collector,
    totals: dict[str, int],
    faults: list[tuple[str, int, int]],
    key_type: str,
    stream_fault: str | None,
) -> None:
    all_logs.texts.clear()
    secrets, texts, raised = asyncio.run(_session(faults, key_type, stream_fault, all_logs))
    assert len(secrets) >= 2  # the key and the secret (or private key), at least
    for secret in secrets:
        found = leaks(secret, texts)
        assert not found, f"{mask(secret)} leaked in: {found[0][:500]}"
    totals["examples"] += 1
    totals["secrets"] += len(secrets)
    totals["texts"] += len(texts)
    totals["exceptions"] += raised
