"""`python -m binance_margin_async.testing`: serves, prints URLs and keys, stops on Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import orjson
import pytest

from binance_margin_async.signing import encode_params, load_signer
from binance_margin_async.testing import FakeExchange
from binance_margin_async.testing.__main__ import main


async def test_standalone_server_prints_working_urls_and_keys() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "binance_margin_async.testing", "--port", "0", "--seed", "4",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines: dict[str, str] = {}
        while "api_secret" not in lines:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "the server exited before printing its keys"
            name, _, value = line.strip().partition(": ")
            lines[name.strip()] = value.strip()
        rest_url, api_key = lines["REST"], lines["api_key"]
        assert lines["WS API"] == rest_url.replace("http://", "ws://") + "/ws-api/v3"
        signer = load_signer(api_secret=lines["api_secret"])
        async with aiohttp.ClientSession() as session:
            async with session.get(rest_url + "/api/v3/time") as resp:
                server_time = orjson.loads(await resp.read())["serverTime"]
            query = encode_params([("timestamp", str(server_time))])
            query += "&signature=" + signer.sign(query.encode())
            url = f"{rest_url}/sapi/v1/margin/account?{query}"
            async with session.get(url, headers={"X-MBX-APIKEY": api_key}) as resp:
                assert resp.status == 200
                account = orjson.loads(await resp.read())
        assert account["created"] is True
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 130  # 128 + SIGINT, like the monitor
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_busy_port_is_one_line_and_status_2() -> None:
    async with FakeExchange() as busy:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "binance_margin_async.testing", "--port", str(busy.port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert not out
    lines = err.decode().splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{busy.port}" in lines[0], lines


def test_version() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
