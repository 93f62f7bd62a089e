"""The first hour: no import on the loop, a clear loop-binding error, our own unclosed warning."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import warnings

import pytest

from binance_margin_async import MarginClient
from binance_margin_async.testing import FakeExchange

_FRESH_INTERPRETER = """
import sys
import binance_margin_async.rest
before = set(sys.modules)
client = binance_margin_async.rest.MarginClient("k" * 20, "s" * 20)
client.user_stream(risk=True, mirror=True)
print(sorted(m for m in set(sys.modules) - before if m.startswith(("websockets", "binance"))))
"""


def test_user_stream_imports_nothing_new_once_the_client_module_is_loaded() -> None:
    # The first user_stream() used to import the stream machinery on the running loop (tens of
    # ms of blocking); now `import binance_margin_async.rest` brings it.
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_INTERPRETER],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


def test_a_client_used_on_a_second_event_loop_says_it_is_bound_to_its_first() -> None:
    async def fake_and_client() -> tuple[FakeExchange, MarginClient]:
        ex = FakeExchange()
        await ex.__aenter__()
        return ex, ex.client(ex.add_account(margin_balances={"USDT": "1"}))

    loop = asyncio.new_event_loop()
    try:
        ex, client = loop.run_until_complete(fake_and_client())
        loop.run_until_complete(client.get_account())
        with pytest.raises(RuntimeError, match="bound to the event loop it was first used on"):
            asyncio.run(client.get_account())
        loop.run_until_complete(client.close())
        loop.run_until_complete(ex.__aexit__(None, None, None))
    finally:
        loop.close()


async def test_a_client_left_open_warns_once_naming_margin_client() -> None:
    async with FakeExchange() as ex:
        client = ex.client(ex.add_account(margin_balances={"USDT": "1"}))
        await client.get_account()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del client
            gc.collect()
            await asyncio.sleep(0.05)  # the session closes on its loop
            gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert len(messages) == 1, messages
    assert messages[0].startswith("MarginClient(") and "was never closed" in messages[0]
    assert "async with MarginClient" in messages[0]
