"""UserDataStream end to end: real sockets against FakeExchange, shrunken intervals.

Traffic is generated through the public API only (transfers, orders, borrows, ``set_price``) and
every assertion is about what a user sees: typed events, their account tags, exactly-once and
per-account order, StreamGap/Resynced after discontinuities, errors on ``on_error``, and nothing
left behind (no task of ours, zero open connections on the exchange). Waits are bounded polls for
a condition, never timing assertions.

Load-proof on a busy machine (tests/_timing.py): the liveness thresholds (stall detection, ping
and pong timeouts, token and listen-key validity, lifetime margins, shutdown grace) are seconds
above anything a loaded event loop stalls for, so no test sees a fault it did not inject. Only
the tests about stall detection shrink it (``DETECT_STALLS``), and they stall far longer than
that, and assert only what also holds if a loaded loop adds a spurious gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pytest
from _timing import SCALE, until
from aiohttp import web
from websockets.frames import Frame, Opcode

from binance_margin_async import MarginClient, RateLimiter
from binance_margin_async._streamcore import exponential_backoff
from binance_margin_async._wslink import RedactingLogger
from binance_margin_async.clock import ServerClock
from binance_margin_async.endpoints import SERVER_TIME
from binance_margin_async.errors import EventQueueOverflow, MarginAccountNotFound, StreamError
from binance_margin_async.events import (
    AccountPosition,
    BalanceUpdate,
    Event,
    EventStreamTerminated,
    ExecutionReport,
    LiabilityChange,
    ListenKeyExpired,
    MarginLevelStatus,
    MarginLevelStatusChange,
    Resynced,
    StateChanged,
    StreamGap,
    UnknownEvent,
)
from binance_margin_async.models import ListenKey, ListenToken
from binance_margin_async.redaction import mask
from binance_margin_async.stream import StreamConfig, UserDataStream
from binance_margin_async.testing import FakeExchange

CROSS = "CROSS"
ISOLATED = ("BTCUSDT", "ETHUSDT")
ACCOUNTS = (CROSS, *ISOLATED)
UNLIMITED: dict[str, Any] = {"api_ip_limit": 10**9, "sapi_ip_limit": 10**9, "sapi_uid_limit": 10**9}
PING = 0.25  # the fake's ping interval, and what the stream expects
# The fake drops a peer whose pong is this late: far above a loaded loop's stalls.
PONG_TIMEOUT = 5.0 * SCALE

# Pings stay frequent (cheap), but a connection is only declared dead after seconds of silence:
# a test that asserts zero gaps must not get one because the machine was busy.
CONFIG = StreamConfig(
    server_ping_interval=PING,
    stall_grace=5.0 * SCALE,
    ping_interval=PING,
    ping_timeout=5.0 * SCALE,
    open_timeout=10.0 * SCALE,
    close_timeout=3.0 * SCALE,
    request_timeout=10.0 * SCALE,
    dedupe_grace=5.0 * SCALE,
    seed=7,
    backoff=functools.partial(exponential_backoff, initial=0.05, maximum=0.3),
)
# For the tests about stall detection: silence is a stall after PING + 0.5 s. A busy machine may
# add a spurious one; those tests assert only what holds with it.
DETECT_STALLS: dict[str, Any] = {"stall_grace": 0.5 * SCALE, "ping_timeout": 0.5 * SCALE}
# Longer than detection by seconds: it is detected however late the checks run on a busy loop.
STALL = 2.5 * SCALE
# Wire types the fake counts once per emission, whatever the number of connections.
COUNTED = {
    "executionReport": ExecutionReport,
    "outboundAccountPosition": AccountPosition,
    "balanceUpdate": BalanceUpdate,
    "USER_LIABILITY_CHANGE": LiabilityChange,
    "MARGIN_LEVEL_STATUS_CHANGE": MarginLevelStatusChange,
}


def config(**overrides: Any) -> StreamConfig:
    return dataclasses.replace(CONFIG, **overrides)


class SpyLimiter(RateLimiter):
    """A real limiter that also counts what the stream asked of it."""

    def __init__(self) -> None:
        super().__init__(**UNLIMITED)
        self.calls: Counter[str] = Counter()

    async def acquire_ws(self, weight: int, *, critical: bool = False, **identity: Any) -> None:
        self.calls["acquire_ws"] += 1
        self.calls["critical"] += critical
        await super().acquire_ws(weight, critical=critical, **identity)

    async def acquire_ws_connect(self, **identity: Any) -> None:
        self.calls["acquire_ws_connect"] += 1
        await super().acquire_ws_connect(**identity)

    def on_ws_response(
        self, status: int, rate_limits: Any, error_data: Any, **identity: Any
    ) -> None:
        self.calls["on_ws_response"] += 1
        super().on_ws_response(status, rate_limits, error_data, **identity)


@dataclasses.dataclass
class Venue:
    exchange: FakeExchange
    client: MarginClient
    limiter: SpyLimiter


@contextlib.asynccontextmanager
async def venue(
    *, cross_usdt: str = "1000000", cross_btc: str = "10", **fake: Any
) -> AsyncIterator[Venue]:
    """A fake exchange with one account (cross + BTCUSDT + ETHUSDT) and a client for it."""
    options: dict[str, Any] = {
        "ws_ping_interval": PING,
        "ws_pong_timeout": PONG_TIMEOUT,
        "expiry_check_interval": 0.05,
        **UNLIMITED,
        **fake,
    }
    async with FakeExchange(**options) as exchange:
        creds = exchange.add_account(
            margin_balances={"USDT": cross_usdt, "BTC": cross_btc},
            isolated={symbol: {"USDT": "100000"} for symbol in ISOLATED},
        )
        limiter = SpyLimiter()
        async with MarginClient(
            creds.api_key,
            creds.api_secret,
            base_url=exchange.rest_url,
            ws_api_url=exchange.ws_api_url,
            risk_stream_url=exchange.risk_stream_url,
            limiter=limiter,
        ) as client:
            yield Venue(exchange, client, limiter)


class Recorder:
    """Every event and error a stream delivered, in delivery order."""

    def __init__(self, stream: UserDataStream) -> None:
        self.events: list[Event] = []
        self.errors: list[Exception] = []
        self.states: list[StateChanged] = []
        stream.on(Event, self._record)
        stream.on_error(self.errors.append)

    def _record(self, event: Event) -> None:
        # State changes are recorded apart: the tests compare the account events.
        if isinstance(event, StateChanged):
            self.states.append(event)
        else:
            self.events.append(event)

    def of(self, cls: type[Any], account: str | None = None) -> list[Any]:
        return [
            e
            for e in self.events
            if isinstance(e, cls) and (account is None or e.account == account)
        ]

    def deltas(self, account: str) -> list[Decimal]:
        return [e.delta for e in self.of(BalanceUpdate, account)]

    def borrowed(self) -> list[Decimal]:
        return [e.principal for e in self.of(LiabilityChange) if e.liability_type == "BORROW"]

    def gaps(self, channel: str | None = None) -> list[StreamGap]:
        return [g for g in self.of(StreamGap) if channel is None or g.raw["channel"] == channel]


class Traffic:
    """Universal transfers cross → isolated with unique amounts (plus borrows for the risk
    stream), one after the other, so the exchange order is the call order."""

    def __init__(self, client: MarginClient, *, borrow_every: int = 0) -> None:
        self.client = client
        self.borrow_every = borrow_every
        self.sent: dict[str, list[Decimal]] = {name: [] for name in ACCOUNTS}
        self.borrowed: list[Decimal] = []
        self.steps = 0

    async def step(self) -> None:
        self.steps += 1
        n = self.steps
        amount = Decimal(n) / 10**6  # unique, and small: thousands of steps per second
        symbol = ISOLATED[n % 2]
        await self.client.transfer("MARGIN_ISOLATEDMARGIN", "USDT", amount, to_symbol=symbol)
        self.sent[CROSS].append(-amount)
        self.sent[symbol].append(amount)
        if self.borrow_every and n % self.borrow_every == 0:
            principal = Decimal(n) / 10**7
            await self.client.borrow("BTC", principal)
            self.borrowed.append(principal)

    async def steps_(self, count: int) -> None:
        for _ in range(count):
            await self.step()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Keep stepping in the background for the duration of the block."""
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                await self.step()

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            stop.set()
            await task

    def delivered(self, recorder: Recorder, accounts: Sequence[str] = ACCOUNTS) -> bool:
        """Whether the last step of every account (and the last borrow) has arrived."""
        return (
            all(recorder.deltas(name)[-1:] == self.sent[name][-1:] for name in accounts)
            and recorder.borrowed()[-1:] == self.borrowed[-1:]
        )

    async def settle(self, recorder: Recorder, accounts: Sequence[str] = ACCOUNTS) -> None:
        await until(lambda: self.delivered(recorder, accounts), "the last events of the traffic")

    async def settle_after_faults(self, recorder: Recorder) -> None:
        """:meth:`settle` when a gap may still be open (a recovery under way, or a spurious stall
        on a busy machine) and swallow the last steps: step on until a round's last events
        arrive."""
        for _ in range(20):
            await self.steps_(max(2, self.borrow_every))  # every account, and a borrow
            with contextlib.suppress(AssertionError):
                await until(lambda: self.delivered(recorder), "a round of traffic", limit=3.0)
                return
        raise AssertionError("the stream never caught up with the traffic")


def each_gap_resynced(recorder: Recorder) -> bool:
    """Whether each gap is followed (not necessarily at once) by its account's Resynced."""
    events = recorder.events
    return all(
        any(isinstance(e, Resynced) and e.account == gap.account for e in events[n:])
        for n, gap in enumerate(events)
        if isinstance(gap, StreamGap)
    )


def assert_exactly_once(recorder: Recorder, traffic: Traffic) -> None:
    for name in ACCOUNTS:
        assert recorder.deltas(name) == traffic.sent[name], name
    assert recorder.borrowed() == traffic.borrowed


def assert_ordered_subset(got: Sequence[Decimal], sent: Sequence[Decimal]) -> None:
    """No duplicate and exchange order kept; events may be missing (a reported gap)."""
    assert len(set(got)) == len(got), "duplicate event"
    remaining = iter(sent)
    assert all(any(x == y for y in remaining) for x in got), "out of order"


def assert_counts_match(recorder: Recorder, exchange: FakeExchange) -> None:
    """Every event the exchange emitted arrived once (per type)."""
    emitted = exchange.stats.events
    for wire, cls in COUNTED.items():
        assert len(recorder.of(cls)) == emitted.get(wire, 0), wire


def counts_match(recorder: Recorder, exchange: FakeExchange) -> bool:
    """Whether :func:`assert_counts_match` holds now."""
    emitted = exchange.stats.events
    return all(len(recorder.of(cls)) == emitted.get(wire, 0) for wire, cls in COUNTED.items())


async def assert_released(exchange: FakeExchange) -> None:
    ours = [t for t in asyncio.all_tasks() if t.get_name().startswith("binance-stream:")]
    assert ours == []
    websockets_tasks = [
        t
        for t in asyncio.all_tasks()
        if "/websockets/" in getattr(getattr(t.get_coro(), "cr_code", None), "co_filename", "")
    ]
    assert websockets_tasks == []
    await until(lambda: exchange.stats.open_connections == 0, "the exchange to see no connection")


# --- a scripted trading run ----------------------------------------------------------------------


async def test_trading_run_is_delivered_once_in_order_typed_and_tagged() -> None:
    async with venue(cross_usdt="10000", cross_btc="0") as v:
        ex, client = v.exchange, v.client
        stream = UserDataStream(client, isolated_symbols=ISOLATED, risk=True, config=config(seed=1))
        assert "risk=True" in repr(stream)
        rec = Recorder(stream)
        async with stream:
            # returns once every subscription is live: a connection per channel
            assert ex.stats.open_connections == 2
            cross_buy = await client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
            resting = await client.new_order(
                "ETHUSDT",
                "BUY",
                "LIMIT",
                quantity="0.1",
                price="2900",
                time_in_force="GTC",
                is_isolated=True,
            )
            ex.set_price("ETHUSDT", "2850")  # the isolated order fills as maker
            await client.transfer("MARGIN_ISOLATEDMARGIN", "USDT", "5", to_symbol="BTCUSDT")
            await client.borrow("BTC", "0.3")  # EXCESSIVE -> NORMAL
            ex.set_price("BTCUSDT", "70000")  # -> MARGIN_CALL
            await client.repay("BTC", "0.1")
            await until(
                lambda: any(
                    e.status == MarginLevelStatus.MARGIN_CALL
                    for e in rec.of(MarginLevelStatusChange)
                ),
                "the margin call",
            )
            await until(
                lambda: len(rec.of(LiabilityChange)) == 2 and len(rec.of(ExecutionReport)) >= 4,
                "the liability changes and fills",
            )
            # The other events of the last call (its balance positions) may still be in flight.
            await until(lambda: counts_match(rec, ex), "every event the exchange emitted")
            lag = stream.last_event_lag
        assert ex.stats.events["eventStreamTerminated"] == 3  # polite unsubscribe on exit
        await assert_released(ex)

    assert rec.errors == []
    assert stream.stats.events_delivered == len(rec.events) + len(rec.states)
    assert stream.stats.gaps == stream.stats.reconnects == 0
    assert isinstance(lag, float)
    # Tagged with the account each was received for.
    reports = rec.of(ExecutionReport)
    assert {e.account for e in reports if e.order_id == cross_buy.order_id} == {CROSS}
    assert {e.account for e in reports if e.order_id == resting.order_id} == {"ETHUSDT"}
    assert [e.delta for e in rec.of(BalanceUpdate)] == [Decimal("-5"), Decimal("5")]
    assert [e.account for e in rec.of(BalanceUpdate)] == [CROSS, "BTCUSDT"]
    assert {e.account for e in rec.of(LiabilityChange) + rec.of(MarginLevelStatusChange)} == {CROSS}
    # Typed: enums and Decimals, not strings.
    assert [(e.liability_type, e.principal) for e in rec.of(LiabilityChange)] == [
        ("BORROW", Decimal("0.3")),
        ("REPAY", Decimal("0.1")),
    ]
    assert all(isinstance(e.cumulative_filled_quantity, Decimal) for e in reports)
    # In exchange order per account and per order: NEW before TRADE.
    for name in ACCOUNTS:
        times = [e.event_time for e in rec.events if e.account == name and hasattr(e, "event_time")]
        assert times == sorted(times)
    resting_states = [e.execution_type for e in reports if e.order_id == resting.order_id]
    assert resting_states == ["NEW", "TRADE"]
    # Everything went through the shared limiter: 2 connections, 3 critical subscriptions and
    # the polite unsubscribe, each answer fed back.
    assert v.limiter.calls["acquire_ws_connect"] == 2
    assert v.limiter.calls["acquire_ws"] == 4
    assert v.limiter.calls["critical"] == 3
    assert v.limiter.calls["on_ws_response"] == 4


# --- token renewal, risk keepalive -----------------------------------------------------------


# Short validities, renewed well before they run out (tokens at 60-80 % of the validity, 0.6 s or
# more ahead; listen keys every 0.3 s): a renewal or keepalive delayed by a busy machine still
# lands in time.
TOKEN_VALIDITY_MS = int(3000 * SCALE)
LISTEN_KEY_VALIDITY = 3.0 * SCALE


async def test_short_tokens_are_renewed_on_the_same_connection_without_loss() -> None:
    async with venue(listen_key_validity=LISTEN_KEY_VALIDITY) as v:
        ex, client = v.exchange, v.client
        stream = UserDataStream(
            client,
            isolated_symbols=ISOLATED,
            risk=True,
            config=config(token_validity_ms=TOKEN_VALIDITY_MS, risk_keepalive_interval=0.3),
        )
        rec = Recorder(stream)
        traffic = Traffic(client, borrow_every=5)
        async with stream:
            async with traffic.running():
                await until(lambda: traffic.steps >= 20, "some traffic")
                # A renewal answered -1209 mints a new token and subscribes again, at once.
                ex.fail_next(
                    "userDataStream.subscribe.listenToken", status=400, code=-1209, msg="Invalid."
                )
                await until(lambda: stream.stats.renewals >= 3 * 2, "two renewals per account")
                await until(lambda: stream.stats.keepalives >= 2, "two keepalives")
            # Inside the stream's block: events still in flight when it closes are not delivered.
            await traffic.settle(rec)
        await assert_released(ex)

    assert rec.errors == []
    assert stream.stats.gaps == stream.stats.reconnects == stream.stats.planned_reconnects == 0
    assert rec.of(EventStreamTerminated) == [] and rec.of(ListenKeyExpired) == []
    assert ex.stats.connections_opened == 2  # renewed in place, never reconnected
    assert_exactly_once(rec, traffic)


async def test_a_renewal_answered_2035_counts_as_success_and_a_later_termination_is_a_gap() -> None:
    async with venue() as v:
        ex, client = v.exchange, v.client
        stream = UserDataStream(
            client, cross=True, config=config(token_validity_ms=TOKEN_VALIDITY_MS)
        )
        rec = Recorder(stream)
        traffic = Traffic(client)
        async with stream:
            # The renewal's subscribe is refused as "already active": the stream keeps its
            # subscription. The fake did not extend it, so it terminates at the old expiry; the
            # stream renews at once and says events may have been missed.
            ex.fail_next(
                "userDataStream.subscribe.listenToken", status=400, code=-2035, msg="Active."
            )
            async with traffic.running():
                await until(lambda: len(rec.gaps()) == 1, "the termination gap")
                renewed = stream.stats.renewals
                await until(lambda: stream.stats.renewals > renewed, "a renewal after the gap")
            await until(
                lambda: rec.deltas(CROSS)[-1:] == traffic.sent[CROSS][-1:], "the last transfer"
            )
        await assert_released(ex)

    assert rec.errors == []
    [terminated] = rec.of(EventStreamTerminated)
    [gap] = rec.gaps()
    assert (gap.account, gap.raw["reason"]) == (CROSS, "subscription terminated")
    assert gap.started <= gap.ended
    # The termination comes first, then the gap, then the events of the new subscription.
    assert rec.events.index(terminated) < rec.events.index(gap)
    assert_ordered_subset(rec.deltas(CROSS), traffic.sent[CROSS])


class RenewingWithNewIds:
    """A scripted WS API that answers each renewal with a NEW subscriptionId and keeps the old
    one delivering until it is unsubscribed (PROTOCOL.md §9 item 6 leaves this open; the fake
    renews in place). Expirations are sent in microseconds (the other open question)."""

    def __init__(self, validity_ms: int) -> None:
        self.validity_ms = validity_ms
        self.subscriptions: dict[int, web.WebSocketResponse] = {}
        self.next_id = 0
        self.unsubscribed: list[int] = []
        # Set by an emit that went to more than one subscription: the overlap a renewal makes.
        self.overlapped = asyncio.Event()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        assert self.runner is not None
        return f"ws://127.0.0.1:{self.runner.addresses[0][1]}/ws-api/v3"

    async def __aenter__(self) -> RenewingWithNewIds:
        app = web.Application()
        app.router.add_get("/ws-api/v3", self.serve)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            call = orjson.loads(message.data)
            result: Any = {}
            after: list[bytes] = []
            if call["method"] == "userDataStream.subscribe.listenToken":
                sid, self.next_id = self.next_id, self.next_id + 1
                self.subscriptions[sid] = ws
                expiry_us = (int(time.time() * 1000) + self.validity_ms) * 1000
                result = {"subscriptionId": sid, "expirationTime": expiry_us}
            elif call["method"] == "userDataStream.unsubscribe":
                sid = call["params"].get("subscriptionId")
                if sid is not None and len(self.subscriptions) > 1:
                    # A renewal's old id: it ends only after an event went to both ids (however
                    # slowly the emitter runs), so every renewal makes a copy to drop.
                    await self.overlapped.wait()
                    self.overlapped.clear()
                ended = [sid] if sid is not None else list(self.subscriptions)
                for old in ended:
                    self.subscriptions.pop(old, None)
                    self.unsubscribed.append(old)
                    terminated = {"e": "eventStreamTerminated", "E": int(time.time() * 1000)}
                    after.append(orjson.dumps({"subscriptionId": old, "event": terminated}))
            await ws.send_bytes(orjson.dumps({"id": call["id"], "status": 200, "result": result}))
            for frame in after:
                await ws.send_bytes(frame)
        return ws

    async def emit(self, event: dict[str, Any]) -> None:
        """Send ``event`` on every live subscription (the copies a renewal overlap makes)."""
        live = [(sid, ws) for sid, ws in self.subscriptions.items() if not ws.closed]
        for sid, ws in live:
            await ws.send_str(orjson.dumps({"subscriptionId": sid, "event": event}).decode())
        if len(live) > 1:
            self.overlapped.set()


class TokenOnlyClient:
    """The part of MarginClient a trade stream uses, with tokens minted locally."""

    def __init__(self, ws_api_url: str, validity_ms: int) -> None:
        self.ws_api_url = ws_api_url
        self.risk_stream_url = ws_api_url
        self.limiter = RateLimiter()
        self.clock = ServerClock()  # never measured: the local clock stands in for the server's
        self.validity_ms = validity_ms
        self.minted = 0
        self.account = "test-account"

    async def sync_clock(self) -> None:
        """No server time here; the stream carries on with the local clock."""

    async def create_listen_token(
        self, *, symbol: str | None = None, validity_ms: int | None = None
    ) -> ListenToken:
        self.minted += 1
        expiry = int(time.time() * 1000) + self.validity_ms
        return ListenToken(token=f"token-{self.minted}", expiration_time=expiry)


async def test_renewal_answered_with_a_new_id_delivers_each_event_once() -> None:
    validity = 1500
    async with RenewingWithNewIds(validity) as server:
        client: Any = TokenOnlyClient(server.url, validity)
        stream = UserDataStream(client, cross=True, config=config())
        rec = Recorder(stream)
        sent: list[Decimal] = []
        async with stream:
            n = 0
            while len(server.unsubscribed) < 3:  # three renewals, each with a new id
                n += 1
                delta = Decimal(n) / 100
                event = {"e": "balanceUpdate", "E": n, "a": "USDT", "d": str(delta), "T": n}
                await server.emit(event)
                sent.append(delta)
                await asyncio.sleep(0.002)
            await until(lambda: rec.deltas(CROSS)[-1:] == sent[-1:], "the last event")
        await until(lambda: not server.subscriptions, "the polite unsubscribe")

    assert rec.errors == []
    assert rec.deltas(CROSS) == sent
    assert stream.stats.duplicates_dropped > 0  # both ids delivered during each renewal
    assert stream.stats.renewals >= 3 and stream.stats.gaps == 0
    assert rec.of(EventStreamTerminated) == []
    assert server.unsubscribed[:3] == [0, 1, 2]


# --- planned reconnects: make-before-break ----------------------------------------------------


# The replacement starts seconds before the cut (and before a shutdown's close): on a busy
# machine it is still up in time, so the move stays planned.
LIFETIME = 3.0 * SCALE
LIFETIME_MARGIN = 1.5 * SCALE
SHUTDOWN_GRACE = 2.0 * SCALE


async def test_lifetime_cut_and_server_shutdown_lose_and_duplicate_nothing() -> None:
    async with venue(connection_lifetime=LIFETIME) as v:
        ex, client = v.exchange, v.client
        stream = UserDataStream(
            client,
            isolated_symbols=ISOLATED,
            risk=True,
            config=config(connection_lifetime=LIFETIME, lifetime_margin=LIFETIME_MARGIN),
        )
        rec = Recorder(stream)
        traffic = Traffic(client, borrow_every=3)
        async with stream:
            async with traffic.running():
                await until(lambda: stream.stats.planned_reconnects >= 2, "two lifetime reconnects")
                before = stream.stats.planned_reconnects
                ex.server_shutdown(grace=SHUTDOWN_GRACE)
                await until(lambda: stream.stats.planned_reconnects > before, "the shutdown move")
                await until(lambda: stream.stats.planned_reconnects >= 5, "more reconnects")
            # Inside the stream's block: events still in flight when it closes are not delivered
            # (the last step's outboundAccountPosition may follow its balanceUpdate).
            await traffic.settle(rec)
            await until(lambda: counts_match(rec, ex), "every event the exchange emitted")
        await assert_released(ex)

    assert rec.errors == []
    assert stream.stats.reconnects == stream.stats.gaps == 0
    assert_exactly_once(rec, traffic)
    assert_counts_match(rec, ex)


# --- unplanned: drops and stalls --------------------------------------------------------------


async def test_drop_and_stall_reconnect_report_gaps_and_resync_the_mirror() -> None:
    async with venue() as v:
        ex, client = v.exchange, v.client
        stream = UserDataStream(
            client,
            isolated_symbols=ISOLATED,
            risk=True,
            mirror=True,
            config=config(**DETECT_STALLS),
        )
        rec = Recorder(stream)
        traffic = Traffic(client, borrow_every=4)
        started = time.time()
        async with stream:
            assert stream.mirror.balance(CROSS, "USDT") is not None  # loaded before returning
            async with traffic.running():
                await until(lambda: traffic.steps >= 20, "some traffic")
                ex.drop_connections()
                await until(lambda: len(rec.of(Resynced)) >= 4, "a resync per account and channel")
                await until(lambda: traffic.steps >= 60, "traffic after the drop")
                ex.stall(STALL)
                await until(lambda: len(rec.gaps()) >= 8, "the stall gaps")
                await until(lambda: traffic.steps >= 100, "traffic after the stall")
            await traffic.settle_after_faults(rec)
            await until(lambda: each_gap_resynced(rec), "a resync after each gap")
            # The traffic has stopped: the mirror converges to the exchange's state.
            cross = await client.get_account()
            usdt = next(a for a in cross.raw["userAssets"] if a["asset"] == "USDT")

            def mirror_usdt() -> Decimal | None:
                balance = stream.mirror.balance(CROSS, "USDT")
                return None if balance is None else balance.free

            await until(lambda: mirror_usdt() == Decimal(usdt["free"]), "the mirror to converge")
        await assert_released(ex)

    assert stream.stats.reconnects >= 4
    for name in ACCOUNTS:
        assert_ordered_subset(rec.deltas(name), traffic.sent[name])
    assert_ordered_subset(rec.borrowed(), traffic.borrowed)
    gaps = rec.gaps()
    assert {(g.account, g.raw["channel"]) for g in gaps} == {
        *((name, "trade") for name in ACCOUNTS),
        (CROSS, "risk"),
    }
    assert all(started <= g.started <= g.ended <= time.time() for g in gaps)
    lost = [e for e in rec.errors if isinstance(e, StreamError) and "connection lost" in str(e)]
    assert lost, rec.errors


async def test_a_gap_carries_its_window_on_the_server_clock() -> None:
    skew = 3_600_000  # the exchange's clock is an hour ahead of ours
    async with venue() as v:
        ex, client = v.exchange, v.client
        ex.set_clock_skew(skew)
        stream = UserDataStream(client, cross=True, config=config())
        rec = Recorder(stream)
        async with stream:
            # The stream measured the offset at start: renewal and gap windows use it.
            assert client.clock.best_rtt is not None
            ex.drop_connections()
            await until(lambda: len(rec.gaps()) == 1, "the gap")
        await assert_released(ex)

    [gap] = rec.gaps()
    assert gap.started_ms is not None and gap.ended_ms is not None
    # On the server's clock (the skew), widened by at least the in-flight second on both sides
    # (plus the offset's error bound, well under a few seconds here).
    assert gap.started * 1000 + skew - 5000 < gap.started_ms <= gap.started * 1000 + skew - 1000
    assert gap.ended * 1000 + skew + 1000 <= gap.ended_ms < gap.ended * 1000 + skew + 5000
    assert rec.errors[1:] == []  # just the "connection lost" report


async def test_a_borrow_right_after_start_reaches_the_mirror_despite_a_slow_clock_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The only clock sample came from a slow round trip (a loaded machine: the request waited
    before it left), so the offset estimate is ahead of the server by up to half of it, within
    its error bound. The mirror's snapshot stamps must not take a borrow made after
    ``async with stream`` for part of the snapshot: examples/position_monitor lost its first
    LiabilityChange from the mirror this way under load."""
    async with venue() as v:
        client = v.client
        send = client._send

        async def send_late(method: str, url: Any, endpoint: Any, *args: Any) -> Any:
            if endpoint is SERVER_TIME:
                await asyncio.sleep(0.6)
            return await send(method, url, endpoint, *args)

        monkeypatch.setattr(client, "_send", send_late)
        stream = UserDataStream(client, cross=True, risk=True, mirror=True, config=config())
        rec = Recorder(stream)
        async with stream:
            assert (client.clock.best_rtt or 0) >= 0.6  # the one, slow, sample
            await client.borrow("BTC", "0.3")
            await until(lambda: len(rec.of(LiabilityChange)) == 1, "the borrow")
            owed = stream.mirror.balance(CROSS, "BTC")
        await assert_released(v.exchange)
    assert owed is not None and owed.borrowed == Decimal("0.3")


# --- expiries -------------------------------------------------------------------------------------


async def test_expired_tokens_and_listen_key_are_replaced_and_reported() -> None:
    async with venue() as v:
        ex, client = v.exchange, v.client
        stream = UserDataStream(client, isolated_symbols=ISOLATED, risk=True, config=config())
        rec = Recorder(stream)
        traffic = Traffic(client, borrow_every=2)
        async with stream:
            await traffic.steps_(4)
            await traffic.settle(rec)
            ex.expire_listen_tokens()
            await until(lambda: len(rec.gaps("trade")) == 3, "a gap per trade account")
            ex.expire_listen_keys()
            await until(lambda: len(rec.gaps("risk")) == 1, "the risk gap")
            await traffic.steps_(4)
            await traffic.settle(rec)
        await assert_released(ex)

    assert {e.account for e in rec.of(EventStreamTerminated)} == set(ACCOUNTS)
    assert len(rec.of(ListenKeyExpired)) == 1
    assert {g.raw["reason"] for g in rec.gaps("trade")} == {"subscription terminated"}
    assert rec.gaps("risk")[0].raw["reason"] == "listen key expired"
    # Nothing was in flight during the expiries: all traffic arrived exactly once.
    assert_exactly_once(rec, traffic)


async def test_listen_key_rejected_on_keepalive_gets_a_new_connection_and_a_gap() -> None:
    async with venue() as v:
        ex, client = v.exchange, v.client
        stream = UserDataStream(
            client, cross=False, risk=True, config=config(risk_keepalive_interval=0.2)
        )
        rec = Recorder(stream)
        async with stream:
            ex.fail_next(
                "/sapi/v1/margin/listen-key", method="PUT", status=400, code=-1125, msg="Gone."
            )
            await until(lambda: len(rec.gaps("risk")) == 1, "the risk gap")
            await client.borrow("BTC", "0.001")
            await until(lambda: len(rec.of(LiabilityChange)) == 1, "a risk event afterwards")
            await until(lambda: stream.stats.keepalives >= 1, "a keepalive that works again")
        await assert_released(ex)

    assert rec.gaps("risk")[0].raw["reason"] == "listen key rejected"
    assert stream.stats.reconnects == 1
    assert any("rejected on keepalive" in str(e) for e in rec.errors)


# --- malformed frames and failing callbacks -----------------------------------------------------


async def test_malformed_frame_is_skipped_reported_and_the_stream_goes_on() -> None:
    async with venue() as v:
        ex, client = v.exchange, v.client
        stream = UserDataStream(client, isolated_symbols=ISOLATED, risk=True, config=config())
        rec = Recorder(stream)
        traffic = Traffic(client, borrow_every=2)
        async with stream:
            await traffic.steps_(4)
            ex.send_malformed_frame()
            await until(lambda: len(rec.errors) == 2, "one report per connection")
            await traffic.steps_(4)
            await traffic.settle(rec)
        await assert_released(ex)

    assert all("malformed" in str(e) for e in rec.errors)
    assert stream.stats.malformed_frames == 2 and stream.stats.reconnects == 0
    # It may have been an event: a zero-length gap per account of each connection.
    assert len(rec.gaps()) == 4 and all(g.started == g.ended for g in rec.gaps())
    assert_exactly_once(rec, traffic)


async def test_undecodable_trade_event_is_reported_then_delivered_as_unknown() -> None:
    async with RenewingWithNewIds(validity_ms=60_000) as server:
        client = TokenOnlyClient(server.url, validity_ms=60_000)
        stream = UserDataStream(client, cross=True, config=config())  # type: ignore[arg-type]
        seen: list[object] = []
        stream.on(Event, lambda e: None if isinstance(e, StateChanged) else seen.append(e))
        stream.on_error(seen.append)
        async with stream:
            broken = {"e": "executionReport", "E": 1, "s": "BTCUSDT"}  # most keys missing
            await server.emit(broken)
            await server.emit({"e": "balanceUpdate", "E": 2, "a": "USDT", "d": "1.5", "T": 2})
            await until(lambda: len(seen) == 3, "the report, the event and the next event")

    report, unknown, update = seen
    assert isinstance(report, StreamError)
    assert str(report) == "undecodable event for CROSS: malformed executionReport: KeyError: 'q'"
    assert isinstance(unknown, UnknownEvent)
    assert (unknown.account, unknown.event_type, unknown.raw) == (CROSS, "executionReport", broken)
    assert isinstance(update, BalanceUpdate) and update.delta == Decimal("1.5")
    assert stream.stats.malformed_frames == stream.stats.reconnects == 0


async def test_websockets_debug_logs_never_show_listen_keys_or_tokens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # websockets logs request lines and every frame at DEBUG
    credentials: list[str] = []
    async with venue() as v:
        ex, client = v.exchange, v.client
        mint_token, mint_key = client.create_listen_token, client.start_risk_data_stream

        async def create_listen_token(**kwargs: Any) -> ListenToken:
            token = await mint_token(**kwargs)
            credentials.append(token.token)
            return token

        async def start_risk_data_stream() -> ListenKey:
            key = await mint_key()
            credentials.append(key.listen_key)
            return key

        client.create_listen_token = create_listen_token  # type: ignore[method-assign]
        client.start_risk_data_stream = start_risk_data_stream  # type: ignore[method-assign]
        stream = UserDataStream(client, isolated_symbols=ISOLATED[:1], risk=True, config=config())
        rec = Recorder(stream)
        async with stream:
            await client.borrow("BTC", "0.001")
            await until(lambda: len(rec.of(LiabilityChange)) == 1, "a risk event")
            ex.expire_listen_keys()  # listenKeyExpired carries the key in its payload
            await until(lambda: len(rec.gaps("risk")) == 1, "the new risk connection")
        await assert_released(ex)

    assert len(credentials) == 4  # two tokens, two listen keys
    ours = [r for r in caplog.records if r.name.startswith(("websockets", "binance_margin_async"))]
    ours = [r for r in ours if not r.name.startswith("binance_margin_async.testing")]
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in ours)
    for secret in credentials:  # masked: 4 characters shown, never 12 (nor a cut-off tail)
        assert secret[:12] not in text and secret[-12:] not in text
    # websockets did log the lines that carried them: the request line of the risk stream, the
    # subscribe requests and the listenKeyExpired event.
    ws_lines = [r.getMessage() for r in ours if r.name == "websockets.client"]
    masked = {mask(secret) for secret in credentials}
    assert (
        sum(line.startswith("> GET /ws/") and line.split()[2][4:] in masked for line in ws_lines)
        == 2
    )
    subscribes = [line for line in ws_lines if line.startswith("> TEXT") and "listenToken" in line]
    assert len(subscribes) == 2 and all(any(m in line for m in masked) for line in subscribes)
    assert any("listenKeyExpired" in line and any(m in line for m in masked) for line in ws_lines)


def test_redacting_logger_covers_arguments_elided_frames_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "SECRETlistenKEY0123456789abcdefXYZ"
    logger = RedactingLogger({secret})
    # websockets shows the first 48 and the last 24 characters of a long payload: this secret
    # straddles the cut, so redacting the logged text alone would leave "SECRETlist..." visible.
    payload = b'{"e":"listenKeyExpired","listenKey":"' + secret.encode() + b'","pad":"'
    payload += b"x" * 400 + b'"}'
    with caplog.at_level(logging.DEBUG, logger="websockets.client"):
        logger.debug("> GET %s HTTP/1.1", f"/ws/{secret}")
        logger.debug("< %s", Frame(Opcode.TEXT, payload))
        try:
            raise ValueError(f"bad key {secret}")
        except ValueError:
            logger.error("failed", exc_info=True)
        logger.debug("%d frames", "not a number")  # a bad format must not raise
        logger.log(logging.DEBUG - 1, "below the level: %s", secret)
    assert [r.name for r in caplog.records] == ["websockets.client"] * 4
    assert secret[:6] not in caplog.text
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "> GET /ws/SECR… HTTP/1.1"
    assert messages[1].startswith('< TEXT \'{"e":"listenKeyExpired","listenKey":"SECR…"')
    assert "ValueError: bad key SECR…" in messages[2]
    assert caplog.records[2].exc_info is None
    assert messages[3] == "%d frames ('not a number',)"


async def test_raising_callback_goes_to_on_error_and_delivery_goes_on() -> None:
    async with venue() as v:
        stream = UserDataStream(v.client, cross=True, config=config())
        rec = Recorder(stream)
        seen: list[Decimal] = []

        def fragile(event: BalanceUpdate) -> None:
            seen.append(event.delta)
            if len(seen) == 2:
                raise ValueError("boom")

        stream.on(BalanceUpdate, fragile)
        after: list[BalanceUpdate] = []
        stream.on(BalanceUpdate, after.append)  # registered later: still called for each event
        traffic = Traffic(v.client)
        async with stream:
            await traffic.steps_(4)
            await until(lambda: len(after) == 4, "every balance update")
        await assert_released(v.exchange)

    [error] = rec.errors
    assert isinstance(error, ValueError) and str(error) == "boom"
    assert any("BalanceUpdate" in note for note in error.__notes__)
    assert seen == [e.delta for e in after] == traffic.sent[CROSS]
    assert stream.stats.callback_errors == 1


async def test_without_on_error_callback_failures_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with venue() as v:
        stream = UserDataStream(v.client, cross=True, config=config())
        got: list[BalanceUpdate] = []

        async def failing(event: BalanceUpdate) -> None:
            got.append(event)
            raise RuntimeError("async boom")

        stream.on(BalanceUpdate, failing)
        with caplog.at_level(logging.ERROR, logger="binance_margin_async.stream"):
            async with stream:
                await Traffic(v.client).steps_(2)
                await until(lambda: len(got) == 2, "both updates")
                await until(lambda: len(caplog.records) == 2, "both logs")
        await assert_released(v.exchange)
    assert all("async boom" in r.getMessage() for r in caplog.records)


# --- slow consumers -----------------------------------------------------------------------------


async def test_slow_async_callback_keeps_order_and_the_connection() -> None:
    # The fake drops a peer that does not answer a ping within 1.5 s; the callbacks below lag
    # for longer (held while the traffic runs, then ~2.4 s). Reading never waits for them, so
    # pings are answered throughout.
    async with venue(ws_pong_timeout=1.5 * SCALE) as v:
        stream = UserDataStream(v.client, isolated_symbols=ISOLATED, config=config())
        rec = Recorder(stream)
        slow: list[tuple[str, Decimal]] = []
        held = asyncio.Event()

        async def sluggish(event: BalanceUpdate) -> None:
            await held.wait()
            await asyncio.sleep(0.02)
            slow.append((event.account, event.delta))

        stream.on(BalanceUpdate, sluggish)
        traffic = Traffic(v.client)
        async with stream:
            await traffic.steps_(60)  # 120 balance updates
            await until(lambda: stream.backlog > 0, "a backlog behind the held callback")
            held.set()
            await until(lambda: len(slow) == 120, "the slow callbacks")
        await assert_released(v.exchange)

    assert stream.stats.reconnects == 0 and rec.errors == []
    for name in ACCOUNTS:
        assert [d for a, d in slow if a == name] == traffic.sent[name]


async def test_a_full_backlog_costs_a_reported_gap_never_the_connection() -> None:
    """Past max_backlog the stream drops events (memory bounded) and says so: a StreamGap per
    account that lost any, with a resync; the socket keeps being read and pings answered."""
    async with venue() as v:
        stream = UserDataStream(
            v.client, isolated_symbols=ISOLATED, mirror=True, config=config(max_backlog=20)
        )
        rec = Recorder(stream)
        # The consumer is stuck until the backlog overflowed: however fast the machine runs
        # the traffic, more than max_backlog events pile up.
        stuck = asyncio.Event()

        async def slow(event: AccountPosition) -> None:
            await stuck.wait()

        stream.on(AccountPosition, slow)
        traffic = Traffic(v.client)
        async with stream:
            await traffic.steps_(100)  # 400 events: all but one wait behind the stuck one
            await until(lambda: stream.backlog > 20, "a full backlog")
            stuck.set()
            await until(lambda: len(rec.gaps()) >= 1, "the slow consumer's gap")
            await until(lambda: len(rec.of(Resynced)) >= len(rec.gaps()), "the resyncs")
            # Caught up: the traffic below is delivered, not dropped as the tail of the overflow.
            await until(lambda: stream.backlog == 0, "the consumer to catch up")
            await traffic.steps_(5)
            await traffic.settle(rec)
        await assert_released(v.exchange)

    assert any("slow callbacks" in str(e) for e in rec.errors)
    assert stream.stats.reconnects == 0
    assert all(g.reason.startswith("slow consumer") and g.channel == "trade" for g in rec.gaps())
    for name in ACCOUNTS:
        got = rec.deltas(name)
        assert_ordered_subset(got, traffic.sent[name])
        if len(got) < len(traffic.sent[name]):
            assert any(g.account == name for g in rec.gaps()), name


async def test_events_reader_overflow_is_an_error_to_the_reader_only() -> None:
    async with venue() as v:
        stream = UserDataStream(v.client, cross=True, config=config())
        rec = Recorder(stream)
        traffic = Traffic(v.client)
        async with stream:
            lagging = stream.events(maxsize=3)
            keeping_up = stream.events()
            await traffic.steps_(4)  # 8 events for the cross account
            await traffic.settle(rec, (CROSS,))
            pulled = [await lagging.__anext__() for _ in range(3)]
            with pytest.raises(EventQueueOverflow):
                await lagging.__anext__()
            with pytest.raises(StopAsyncIteration):  # it ended; events() gives a new one
                await lagging.__anext__()
            more = [await keeping_up.__anext__() for _ in range(8)]
        rest = [event async for event in keeping_up]  # ends when the stream closes
        await assert_released(v.exchange)

    # StateChanged events reach readers as well; the account events are compared here.
    pulled = [e for e in pulled if not isinstance(e, StateChanged)]
    more = [e for e in more if not isinstance(e, StateChanged)]
    rest = [e for e in rest if not isinstance(e, StateChanged)]
    assert pulled == rec.events[: len(pulled)]
    assert more + rest == rec.events
    assert stream.stats.overflows == 1
    assert stream.stats.reconnects == 0 and rec.errors == []
    assert rec.deltas(CROSS) == traffic.sent[CROSS]


async def test_pull_style_iteration_and_early_close() -> None:
    async with venue() as v:
        stream = UserDataStream(v.client, cross=True, config=config())
        events = stream.events()
        traffic = Traffic(v.client)
        deltas: list[Decimal] = []
        async with stream:
            await traffic.steps_(3)
            async for event in events:
                if isinstance(event, BalanceUpdate):
                    deltas.append(event.delta)
                    if len(deltas) == 3:
                        break
            events.close()
            with pytest.raises(StopAsyncIteration):
                while True:  # drains what was queued, then ends
                    await events.__anext__()
        await assert_released(v.exchange)
    assert deltas == traffic.sent[CROSS]


# --- lifecycle ---------------------------------------------------------------------------------


async def test_failed_start_raises_and_leaves_nothing_behind() -> None:
    async with venue() as v:
        stream = UserDataStream(v.client, isolated_symbols=("BNBUSDT",), config=config())
        with pytest.raises(MarginAccountNotFound):
            async with stream:
                pytest.fail("must not start")  # pragma: no cover
        await assert_released(v.exchange)
        with pytest.raises(RuntimeError):
            async with stream:
                pytest.fail("a stream starts once")  # pragma: no cover


async def test_body_exception_propagates_unchanged_and_everything_closes() -> None:
    async with venue() as v:
        stream = v.client.user_stream(isolated_symbols=ISOLATED, risk=True)
        assert isinstance(stream, UserDataStream)
        with pytest.raises(KeyError, match="user bug"):
            async with stream:
                raise KeyError("user bug")
        await assert_released(v.exchange)


def test_constructor_validates_its_arguments() -> None:
    client: Any = object()
    with pytest.raises(ValueError, match="nothing to subscribe"):
        UserDataStream(client, cross=False)
    with pytest.raises(ValueError, match="isolated_symbols"):
        UserDataStream(client, isolated_symbols="BTCUSDT")
    with pytest.raises(ValueError, match="isolated_symbols"):
        UserDataStream(client, isolated_symbols=["btcusdt"])
    with pytest.raises(ValueError, match="isolated_symbols"):
        UserDataStream(client, isolated_symbols=["BTCUSDT", "BTCUSDT"])
    with pytest.raises(ValueError, match="max_backlog"):
        StreamConfig(max_backlog=0)
    stream = UserDataStream(client)
    with pytest.raises(ValueError, match="maxsize"):
        stream.events(maxsize=0)
    with pytest.raises(ValueError, match="callback"):
        stream.on(BalanceUpdate, "not callable")  # type: ignore[call-overload]
    with pytest.raises(AttributeError, match="mirror=False"):
        _ = stream.mirror
    assert stream.last_event_lag is None


# --- honest API and the driver's share of the review's defects ----------------------------------


def test_risk_events_without_risk_true_are_refused_and_unstarted_iteration_raises() -> None:
    client: Any = object()
    stream = UserDataStream(client, cross=True)
    with pytest.raises(ValueError, match="risk=True"):
        stream.on(MarginLevelStatusChange, print)
    with pytest.raises(ValueError, match="risk=True"):
        stream.on(LiabilityChange | MarginLevelStatusChange, print)
    stream.on(Event, print)  # every event: fine, the trade ones do come
    stream.on(LiabilityChange | BalanceUpdate, print)
    UserDataStream(client, risk=True).on(MarginLevelStatusChange, print)
    assert stream.state == {"trade": "connecting"}

    async def pull() -> None:
        async for _ in stream.events():
            pass  # pragma: no cover

    with pytest.raises(StreamError, match="never started"):
        asyncio.run(pull())


async def test_state_per_channel_and_state_changes() -> None:
    async with venue() as v:
        stream = UserDataStream(v.client, cross=True, risk=True, config=config())
        rec = Recorder(stream)
        async with stream:
            assert stream.state == {"trade": "live", "risk": "live"}
            v.exchange.drop_connections()
            await until(lambda: len(rec.gaps()) == 2, "both channels' gaps")
            await until(lambda: stream.state == {"trade": "live", "risk": "live"}, "live again")
        assert stream.state == {"trade": "closed", "risk": "closed"}
        await assert_released(v.exchange)
    trade = [(s.previous, s.state) for s in rec.states if s.channel == "trade"]
    assert trade[:3] == [("connecting", "live"), ("live", "recovering"), ("recovering", "live")]
    assert {g.channel for g in rec.gaps()} == {"trade", "risk"}
    assert all(g.reason and g.raw["reason"] == g.reason for g in rec.gaps())


async def test_a_recovered_reconnect_is_a_warning_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with venue() as v:
        stream = UserDataStream(v.client, cross=True, config=config())
        with caplog.at_level(logging.WARNING, logger="binance_margin_async.stream"):
            async with stream:
                v.exchange.drop_connections()
                await until(lambda: stream.stats.gaps == 1, "the gap")
        await assert_released(v.exchange)
    [record] = [r for r in caplog.records if "connection lost" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None


async def test_a_hanging_snapshot_does_not_stall_other_accounts_and_a_bad_one_is_retried() -> None:
    """Resync runs beside the dispatcher: one account's hung snapshot delays nobody, and a
    snapshot of the wrong shape is an on_error report and a retry, never a crash."""
    async with venue() as v:
        client = v.client
        hang = asyncio.Event()
        calls: Counter[str] = Counter()
        real_isolated, real_account = client.get_isolated_account, client.get_account

        async def get_isolated_account(symbols: Any = None) -> Any:
            calls["isolated"] += 1
            if calls["isolated"] > 2:  # the resyncs after the drop
                await hang.wait()
            return await real_isolated(symbols=symbols)

        async def get_account() -> Any:
            calls["cross"] += 1
            account = await real_account()
            if calls["cross"] == 2:  # the first resync: a 200 without userAssets
                return dataclasses.replace(account, raw={"marginLevel": "999"})
            return account

        client.get_isolated_account = get_isolated_account  # type: ignore[method-assign]
        client.get_account = get_account  # type: ignore[method-assign]
        stream = UserDataStream(
            client, isolated_symbols=ISOLATED, mirror=True, config=config(resync_attempts=5)
        )
        rec = Recorder(stream)
        traffic = Traffic(client)
        async with stream:
            v.exchange.drop_connections()
            await until(lambda: len(rec.gaps()) == 3, "the gaps")
            await traffic.steps_(10)
            await traffic.settle(rec)  # every account flows while two snapshots hang
            await until(lambda: [r.account for r in rec.of(Resynced)] == [CROSS], "CROSS resync")
            hang.set()
            await until(lambda: len(rec.of(Resynced)) == 3, "every resync")
        await assert_released(v.exchange)
    assert any("userAssets" in str(e) for e in rec.errors)
    assert stream.stats.gaps == 3
