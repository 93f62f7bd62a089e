"""The Redis test helper itself: a real server starts, answers, crashes on demand and comes back."""

from __future__ import annotations

import socket

import pytest
import redis.asyncio as aioredis
from _redis import RedisServer, find_server_binary


async def test_server_answers_and_keeps_nothing_across_a_restart(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert await client.ping()
        await client.set("k", "v")
        info = await client.info("persistence")
        assert info["aof_enabled"] == 0
        assert await client.config_get("save") == {"save": ""}

        redis_server.stop()
        assert not redis_server.running
        with pytest.raises(ConnectionError):
            socket.create_connection(("127.0.0.1", redis_server.port), timeout=1).close()

        redis_server.start()
    finally:
        await client.aclose()
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert await client.get("k") is None  # no persistence: a crash loses the data
    finally:
        await client.aclose()


def test_a_taken_port_given_by_the_caller_is_an_error(redis_server: RedisServer) -> None:
    other = RedisServer(find_server_binary(), port=redis_server.port)
    try:
        with pytest.raises(RuntimeError, match="exited"):
            other.start()
    finally:
        other.close()
    assert redis_server.running
