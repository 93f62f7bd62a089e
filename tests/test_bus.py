"""RedisEventBus in one process against a real Redis-compatible server and FakeExchange.

The multi-process scenario (SIGKILLed publisher, restarted consumer) is tests/test_bus_fleet.py;
here are the pieces that are easier to pin down in one process: fencing, positions and the
``events()`` reader, retention gaps, a Redis crash, and argument checks. Waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from _redis import RedisServer, scaled
from redis.asyncio.cluster import RedisCluster

import binance_margin_async.redis
from binance_margin_async import MarginClient
from binance_margin_async.errors import ParameterError, StreamError
from binance_margin_async.events import (
    AccountPosition,
    BalanceUpdate,
    Event,
    Resynced,
    StreamGap,
)
from binance_margin_async.redis import RedisEventBus
from binance_margin_async.testing import FakeExchange
from binance_margin_async.testing._keys import Credentials


async def until(condition: Callable[[], bool], within: float = 15, what: str = "it") -> None:
    deadline = time.monotonic() + scaled(within)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


Setup = tuple[FakeExchange, Credentials, MarginClient, RedisEventBus]


@asynccontextmanager
async def setup(server: RedisServer, **bus_kwargs: Any) -> AsyncIterator[Setup]:
    """A fake exchange with a funded account, a client for it, and a bus on ``server``."""
    async with FakeExchange(seed=5) as ex:
        creds = ex.add_account(margin_balances={"USDT": "1000"})
        async with (
            ex.client(creds) as client,
            RedisEventBus(server.url, account="acct", **bus_kwargs) as bus,
        ):
            yield ex, creds, client, bus


def deltas(events: list[Event]) -> list[Decimal]:
    return [event.delta for event in events if isinstance(event, BalanceUpdate)]


async def test_publish_and_consume_typed_events_in_order(redis_server: RedisServer) -> None:
    async with setup(redis_server, lease_ttl=1.0) as (ex, creds, client, bus):
        got: list[Event] = []
        positions: list[AccountPosition] = []
        consumer = bus.consumer(start="earliest")
        consumer.on(Event, got.append)
        consumer.on(AccountPosition, positions.append)
        pulled: list[Event] = []
        reader = consumer.events()
        async with consumer, bus.publisher(client) as publisher:
            await asyncio.wait_for(publisher.wait_leading(), scaled(10))
            assert publisher.leading and publisher.token == 1
            for i in range(1, 21):
                ex.deposit(creds.account_id, "USDT", i, wallet="CROSS")
            await until(lambda: len(deltas(got)) == 20, what="20 deposits")
            async for event in reader:
                pulled.append(event)
                if len(deltas(pulled)) == 20:
                    break
        assert deltas(got) == [Decimal(i) for i in range(1, 21)]
        assert pulled == got[: len(pulled)]  # the same events, in the same order
        assert len(pulled) == len(got) - 1  # stopped before deposit 20's AccountPosition
        assert [p.balances[0].free for p in positions] == [
            Decimal(1000 + i * (i + 1) // 2) for i in range(1, 21)
        ]
        assert consumer.events_delivered == len(got)
        assert [publisher.leading] == [False]  # (a list: mypy narrowed it to True above)
        # Released on exit: a new candidate gets the lease at once.
        assert await bus.redis.exists(bus.keys["lease"]) == 0


async def test_every_script_and_command_keeps_to_one_cluster_slot() -> None:
    # A one-node Redis Cluster enforces the slot rules (CROSSSLOT) as a real cluster does.
    with RedisServer(cluster=True) as server:
        cluster = RedisCluster.from_url(server.url)
        async with FakeExchange(seed=5) as ex:
            creds = ex.add_account(margin_balances={"USDT": "1000"})
            async with (
                ex.client(creds) as client,
                RedisEventBus(cluster, account="acct", lease_ttl=1.0) as bus,
            ):
                got: list[Event] = []
                consumer = bus.consumer("on-a-cluster", start="earliest")
                consumer.on(Event, got.append)
                async with consumer, bus.publisher(client) as publisher:
                    await asyncio.wait_for(publisher.wait_leading(), scaled(10))
                    ex.deposit(creds.account_id, "USDT", 7, wallet="CROSS")
                    await until(lambda: Decimal(7) in deltas(got), what="deposit 7")
                assert await cluster.hget(bus.keys["positions"], "on-a-cluster")
        await cluster.aclose()


async def test_a_fenced_publisher_cannot_append(redis_server: RedisServer) -> None:
    async with RedisEventBus(redis_server.url, account="acct", lease_ttl=5.0) as bus:
        lease, state, events = bus.keys["lease"], bus.keys["state"], bus.keys["events"]

        async def acquire() -> int:
            reply = await bus._acquire(keys=[lease, state, bus.keys["accounts"]], args=["t", 5000])
            return int(reply[0])

        async def publish(token: int, first: int) -> int:
            args: list[str | int | bytes] = [token, 100, first, "", "", "", 1, ""]
            args.append(b'{"a":"CROSS","k":"Resynced","f":{}}')
            return int(await bus._publish(keys=[lease, state, events], args=args))

        assert await acquire() == 1
        assert await acquire() == 0  # held
        assert await publish(1, 1) == 1
        assert await publish(1, 1) == 1  # a retried batch is not appended twice
        await bus.redis.delete(lease)  # token 1's lease expires...
        assert await acquire() == 2  # ...and another publisher takes over
        assert await publish(1, 2) == -1  # the old one is fenced
        assert await publish(2, 2) == 2
        assert await bus.redis.xlen(events) == 2


async def test_a_named_consumer_resumes_after_its_last_handled_event(
    redis_server: RedisServer,
) -> None:
    async with (
        setup(redis_server, lease_ttl=1.0) as (ex, creds, client, bus),
        bus.publisher(client) as publisher,
    ):
        await asyncio.wait_for(publisher.wait_leading(), scaled(10))
        for i in range(1, 11):
            ex.deposit(creds.account_id, "USDT", i, wallet="CROSS")

        first: list[Event] = []
        consumer = bus.consumer("worker", start="earliest")
        reader = consumer.events()
        async with consumer:
            async for event in reader:
                first.append(event)
                if len(deltas(first)) == 4:
                    break  # while handling deposit 4: it is not finished
        stored = await bus.redis.hget(bus.keys["positions"], "worker")
        assert isinstance(stored, bytes) and stored.decode() == consumer.position

        for i in range(11, 16):
            ex.deposit(creds.account_id, "USDT", i, wallet="CROSS")
        second: list[Event] = []
        again = bus.consumer("worker", start="latest")  # the stored position wins
        again.on(Event, second.append)
        async with again:
            await until(lambda: Decimal(15) in deltas(second), what="deposit 15")
        # The event being handled at exit comes again (it was never finished); nothing else.
        assert second[0] == first[-1]
        assert deltas(first[:-1] + second) == [Decimal(i) for i in range(1, 16)]
        assert [type(e) for e in first[:-1] + second] == [BalanceUpdate, AccountPosition] * 15

        # A saved position resumes right after it, for a consumer without a name too.
        mark = again.position
        assert mark is not None
        ex.deposit(creds.account_id, "USDT", 99, wallet="CROSS")
        third: list[Event] = []
        explicit = bus.consumer(start=mark)
        explicit.on(Event, third.append)
        async with explicit:
            await until(lambda: Decimal(99) in deltas(third), what="deposit 99")
        assert deltas(third) == [Decimal(99)]


async def test_a_consumer_behind_the_retention_gets_a_gap_first(redis_server: RedisServer) -> None:
    async with (
        setup(redis_server, lease_ttl=1.0, retention=10) as (ex, creds, client, bus),
        bus.publisher(client) as publisher,
    ):
        # Small stream nodes, so that MAXLEN ~ can trim at this tiny scale.
        await bus.redis.config_set("stream-node-max-entries", 4)
        await asyncio.wait_for(publisher.wait_leading(), scaled(10))
        view: list[Event] = []
        live = bus.consumer()  # only to know when everything has been published
        live.on(Event, view.append)
        await live.__aenter__()
        ex.deposit(creds.account_id, "USDT", 1, wallet="CROSS")
        early: list[Event] = []
        consumer = bus.consumer("slow", start="earliest")
        consumer.on(Event, early.append)
        async with consumer:
            await until(lambda: Decimal(1) in deltas(early), what="deposit 1")
        for i in range(2, 40):
            ex.deposit(creds.account_id, "USDT", i, wallet="CROSS")
        await until(lambda: Decimal(39) in deltas(view), what="deposit 39 published")
        await live.__aexit__(None, None, None)
        assert await bus.redis.xlen(bus.keys["events"]) < 30

        late: list[Event] = []
        again = bus.consumer("slow")
        again.on(Event, late.append)
        async with again:
            await until(lambda: Decimal(39) in deltas(late), what="deposit 39")
        gap = late[0]
        assert isinstance(gap, StreamGap)
        assert (gap.account, gap.raw["reason"]) == ("CROSS", "retention")
        assert again.gaps == 1
        assert deltas(late)[0] > 2  # the oldest deposits were trimmed
        assert deltas(late) == [Decimal(i) for i in range(int(deltas(late)[0]), 40)]


async def test_redis_crash_is_reported_and_bridged_by_a_gap(redis_server: RedisServer) -> None:
    async with setup(redis_server, lease_ttl=0.6) as (ex, creds, client, bus):
        publisher_errors: list[Exception] = []
        consumer_errors: list[Exception] = []
        got: list[Event] = []
        publisher = bus.publisher(client, mirror=True)
        publisher.on_error(publisher_errors.append)
        consumer = bus.consumer("watcher", start="earliest")
        consumer.on(Event, got.append)
        consumer.on_error(consumer_errors.append)
        async with publisher, consumer:
            await asyncio.wait_for(publisher.wait_leading(), scaled(10))
            ex.deposit(creds.account_id, "USDT", 1, wallet="CROSS")
            await until(lambda: Decimal(1) in deltas(got), what="deposit 1")

            redis_server.stop()  # a crash: and it comes back empty (no persistence)
            at = ex.server_time_ms()
            ex.deposit(creds.account_id, "USDT", 2, wallet="CROSS")  # lost with Redis
            await until(lambda: not publisher.leading, what="the lease to run out")
            await until(lambda: bool(consumer_errors), what="the consumer to notice")
            redis_server.start()
            await until(lambda: publisher.leading, what="the publisher to come back")
            ex.deposit(creds.account_id, "USDT", 3, wallet="CROSS")
            await until(lambda: Decimal(3) in deltas(got), what="deposit 3")

        assert Decimal(2) not in deltas(got)
        gaps = [event for event in got if isinstance(event, StreamGap)]
        assert any(
            gap.started_ms is not None
            and gap.ended_ms is not None
            and gap.started_ms <= at <= gap.ended_ms
            for gap in gaps
        )
        assert any(isinstance(event, Resynced) for event in got[got.index(gaps[0]) :])
        for errors in (publisher_errors, consumer_errors):
            unreachable = [e for e in errors if "Redis unreachable" in str(e)]
            assert unreachable and all(isinstance(e, StreamError) for e in unreachable)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"account": ""}, "account"),
        ({"account": "a{b}"}, "account"),
        ({"account": "ok", "retention": 0}, "retention"),
        ({"account": "ok", "lease_ttl": 0.01}, "lease_ttl"),
        ({"account": "ok", "margin": -1}, "margin"),
        ({"account": "ok", "prefix": "x y"}, "prefix"),
        ({"account": "ok", "max_outbox": 0}, "max_outbox"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_sent(
    kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(ParameterError) as caught:
        RedisEventBus("redis://127.0.0.1:1/0", **kwargs)
    assert caught.value.param == param


async def test_bad_consumer_arguments_are_rejected() -> None:
    async with RedisEventBus("redis://127.0.0.1:1/0", account="ok") as bus:
        assert "127.0.0.1" not in repr(bus)
        with pytest.raises(ParameterError):
            bus.consumer("")
        with pytest.raises(ParameterError, match="not a bus position"):
            bus.consumer(start="sometime")
        with pytest.raises(ParameterError):
            bus.consumer().on(Event, "not callable")  # type: ignore[call-overload]
        with pytest.raises(ParameterError):
            bus.consumer().events(0)
        with pytest.raises(ParameterError):
            bus.publisher(None, isolated_symbols="BTCUSDT")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", binance_margin_async.redis.__all__)
def test_public_names_resolve_to_their_home_module(name: str) -> None:
    value = getattr(binance_margin_async.redis, name)
    assert getattr(importlib.import_module(value.__module__), name) is value
    assert sorted(binance_margin_async.redis.__all__) == binance_margin_async.redis.__all__


def test_without_redis_py_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    package = binance_margin_async.redis
    for module in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, "binance_margin_async.redis._bus")
    monkeypatch.delitem(vars(package), "RedisEventBus", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'binance-margin-async\[redis\]'"):
        package.RedisEventBus  # noqa: B018
    with pytest.raises(AttributeError, match="no_such_thing"):
        package.no_such_thing  # noqa: B018
