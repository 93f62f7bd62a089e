"""`StreamSession`: the whole policy of the user-data stream, as a sans-I/O state machine.

Nothing here touches a socket, an event loop or a clock. The driver (:mod:`.stream`) feeds it what
happened, each input with the time it happened (:class:`Now`: local monotonic and wall seconds
plus the server-clock estimate), and carries out what it asks for:

* inputs: :meth:`StreamSession.start`, once live :meth:`~StreamSession.load_mirror`, a link
  opened (:meth:`~StreamSession.link_opened`) or lost (:meth:`~StreamSession.link_lost`), bytes
  read (:meth:`~StreamSession.received`), each message (:meth:`~StreamSession.message`), each pong
  (:meth:`~StreamSession.pong`), a timer due (:meth:`~StreamSession.tick`), and REST results
  (tokens, listen keys, keepalives, snapshots, margin levels);
* outputs: :attr:`~StreamSession.outbox` (typed events, raw trade events with their account in
  :attr:`~StreamSession.outbox_accounts`, and :class:`Failure` reports, in delivery order),
  :attr:`~StreamSession.actions` (open/close a link, send a frame or a ping, mint a token, get or
  keep alive a listen key, fetch a snapshot or a margin level) and :attr:`~StreamSession.deadline`.

Two channels: **trade** (one WebSocket API connection, one listen-token subscription per account,
events ``{"subscriptionId": N, "event": …}`` routed by id) and **risk** (one listen-key connection,
cross only). Per channel, per link and per account the phase is an explicit enum. Renewal (on the
server's clock), keepalive, make-before-break replacement (lifetime, ``serverShutdown``), recovery
with one backoff per channel (only reset after a connection stayed up), gap bookkeeping (a gap
starts at the last event, answer or pong, never at a close), bounded backlog (a slow consumer
costs a gap, never the connection), resync and risk recovery all live here, so the deterministic
simulator (``tests/test_stream_sim.py``) exercises exactly the code that runs in production.

Binance docs: https://developers.binance.com/docs/margin_trading/trade-data-stream and
https://developers.binance.com/docs/margin_trading/risk-data-stream
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import random
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, Final, NamedTuple, TypeVar

import orjson

from ._streamcore import (
    BackoffPolicy,
    OverlapFilter,
    RenewalPolicy,
    StreamStats,
    event_key,
    exponential_backoff,
    normalize_epoch_ms,
    planned_reconnect_at,
    server_window_ms,
    spread_jitter,
    stall_deadline,
)
from .errors import (
    InvalidListenKey,
    InvalidListenToken,
    IPBanned,
    ListenKeyNotFound,
    ParameterError,
    RateLimited,
    StreamError,
    SubscriptionActive,
    error_from_ws,
)
from .events import (
    Event,
    EventStreamTerminated,
    ListenKeyExpired,
    MarginLevelStatusChange,
    Resynced,
    StateChanged,
    StreamGap,
    UnknownEvent,
    decode_event,
    wire_key,
)
from .models import MarginLevelStatus

__all__ = [
    "CROSS",
    "Channel",
    "ChannelState",
    "CloseLink",
    "Failure",
    "FetchMarginLevel",
    "FetchSnapshot",
    "GetListenKey",
    "KeepaliveListenKey",
    "LinkPhase",
    "MintToken",
    "Now",
    "OpenLink",
    "Ping",
    "PolicyKnobs",
    "RestAction",
    "RoutePhase",
    "Send",
    "SessionConfig",
    "StreamConfig",
    "StreamSession",
]

CROSS: Final = "CROSS"
_SUBSCRIBE: Final = "userDataStream.subscribe.listenToken"
_UNSUBSCRIBE: Final = "userDataStream.unsubscribe"
# Trade events with nothing to decide: the dispatcher decodes them (cheaper for the GC, see
# UserDataStream), the session only routes their raw dict.
_PLAIN_TYPES: Final = frozenset(
    {"executionReport", "outboundAccountPosition", "balanceUpdate", "listStatus"}
)
# The hot path's keys as orjson's own objects: lookups end at the identity test (see wire_key).
_KEY_SUBSCRIPTION: Final = wire_key("subscriptionId")
_KEY_EVENT: Final = wire_key("event")
_KEY_TYPE: Final = wire_key("e")
# A StreamGap's server window is widened by this on each side beyond the clock's error: an event
# is stamped (E) a little before it is sent, and a cut is seen a little after it.
_IN_FLIGHT_MS: Final = 1000.0
# How soon to look again when a replacement or renewal waits for an overlap to end (normally
# at the new source's first new event; at most ``dedupe_grace`` after the old source ended).
_BUSY_RETRY: Final = 0.1
# serverShutdown replaces a connection at once, but never one younger than this: a storm of
# shutdowns costs at most four replacements a second.
_SHUTDOWN_SPACING: Final = 0.25


class Channel(StrEnum):
    """The two Binance channels merged into one feed."""

    TRADE = "trade"
    RISK = "risk"


class ChannelState(StrEnum):
    """Public state of one channel (``stream.state[channel]``)."""

    CONNECTING = "connecting"
    LIVE = "live"
    RECOVERING = "recovering"
    CLOSED = "closed"


class LinkPhase(Enum):
    """One WebSocket connection's life."""

    OPENING = "opening"  # the driver is connecting
    SUBSCRIBING = "subscribing"  # connected, accounts being subscribed (trade)
    LIVE = "live"  # carries the channel
    RETIRING = "retiring"  # closed on purpose (replaced); its end is not a loss
    FAILING = "failing"  # being closed because it is broken; its end is a loss
    CLOSED = "closed"


class RoutePhase(Enum):
    """One account's subscription on the current trade link."""

    IDLE = "idle"  # nothing requested on the current link
    MINTING = "minting"  # a listen token is being created
    SUBSCRIBING = "subscribing"  # subscribe request in flight
    LIVE = "live"
    TERMINATED = "terminated"  # ended by the server: being restored, a gap follows


class Now(NamedTuple):
    """The time of an input: local monotonic and wall seconds, and the server-clock estimate.

    ``offset_ms`` is the estimated server-minus-local offset and ``error_ms`` its error bound;
    both ``None`` until the offset was measured.
    """

    mono: float
    wall: float
    offset_ms: float | None = None
    error_ms: float | None = None

    @property
    def server_ms(self) -> float:
        """The server's clock now (the local clock when the offset is unknown)."""
        return self.wall * 1000.0 + (self.offset_ms or 0.0)

    def wall_of(self, mono: float) -> float:
        """The wall time of an earlier monotonic instant."""
        return self.wall - (self.mono - mono)


# Actions (what the driver must do)


@dataclass(frozen=True, slots=True)
class OpenLink:
    """Connect link ``link`` of ``channel`` (risk: to the stream of ``listen_key``)."""

    link: int
    channel: Channel
    listen_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CloseLink:
    """Close link ``link`` (politely; the driver reports :meth:`StreamSession.link_lost`)."""

    link: int
    reason: str


@dataclass(frozen=True, slots=True)
class Send:
    """Send one WS API request (text) on ``link``, through the limiter with ``weight``."""

    link: int
    payload: bytes = field(repr=False)
    weight: int = 2
    critical: bool = False  # may use the limiter's reserve (subscriptions keep the stream alive)
    secret: str | None = field(default=None, repr=False)  # a token inside: redact it in logs


@dataclass(frozen=True, slots=True)
class Ping:
    """Send a ping frame with ``payload`` on ``link``."""

    link: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class MintToken:
    """``POST /sapi/v1/userListenToken`` for ``account``; answer with ``token_result``."""

    account: str
    symbol: str | None
    validity_ms: int | None


@dataclass(frozen=True, slots=True)
class GetListenKey:
    """``POST /sapi/v1/margin/listen-key``; answer with ``listen_key_result``."""


@dataclass(frozen=True, slots=True)
class KeepaliveListenKey:
    """``PUT /sapi/v1/margin/listen-key``; answer with ``keepalive_result(key, ...)``."""

    listen_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    """Reload the mirror of ``account`` from REST; answer with ``snapshot_result``.

    ``initial``: part of the first load (:meth:`StreamSession.load_mirror`), not a resync after
    a gap; the answer carries it back.
    """

    account: str
    initial: bool = False


@dataclass(frozen=True, slots=True)
class FetchMarginLevel:
    """Read the cross margin level from REST; answer with ``margin_level_result``."""


RestAction = MintToken | GetListenKey | KeepaliveListenKey | FetchSnapshot | FetchMarginLevel
Action = OpenLink | CloseLink | Send | Ping | RestAction


class Failure:
    """Outbox item: an error for the ``on_error`` callbacks, in order with the events.

    ``recovered`` marks reports of losses the stream already recovered from (logged at WARNING,
    without a traceback, when nobody listens).
    """

    __slots__ = ("error", "recovered")

    def __init__(self, error: Exception, *, recovered: bool = False) -> None:
        self.error = error
        self.recovered = recovered


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyKnobs:
    """The knobs :class:`StreamConfig` and :class:`SessionConfig` share, declared once."""

    token_validity_ms: int | None = None
    renewal: RenewalPolicy = field(default_factory=RenewalPolicy)
    connection_lifetime: float = 86_400.0
    lifetime_margin: float = 600.0
    request_timeout: float = 10.0
    server_ping_interval: float = 20.0
    stall_grace: float = 40.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    risk_keepalive_interval: float = 1800.0
    backoff: BackoffPolicy = exponential_backoff
    stable_after: float = 30.0
    dedupe_capacity: int = 10_000
    dedupe_grace: float = 30.0
    resync_attempts: int = 3
    max_backlog: int = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig(PolicyKnobs):
    """The policy knobs of :class:`StreamSession` (see :class:`StreamConfig`)."""

    mirror: bool = False


_KNOBS: Final = tuple(f.name for f in fields(PolicyKnobs))


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig(PolicyKnobs):
    """Tuning of a :class:`~.stream.UserDataStream`: defaults follow Binance, tests shrink them.

    Listen tokens:
        token_validity_ms: ``validity`` asked for each listen token (``None``: Binance's default,
            24 h). renewal: when to renew (fraction window of the validity, see
            :class:`~._streamcore.RenewalPolicy`).

    Connections:
        connection_lifetime: the server cuts connections after this many seconds (24 h);
            lifetime_margin: start the make-before-break replacement this much earlier.
        open_timeout, close_timeout, request_timeout: seconds for the opening handshake, the
            closing handshake and a WS API answer. max_message_size: larger messages close
            the connection (websockets' ``max_size``).

    Liveness:
        server_ping_interval, stall_grace: the server pings every 20 s; a connection that
            received nothing for their sum (60 s, DESIGN §6) is dead. ping_interval,
            ping_timeout: our own pings (answered pongs also date a gap's start), ``None``
            disables them.

    Risk stream:
        risk_keepalive_interval: ``PUT /sapi/v1/margin/listen-key`` period (key valid 60 min).

    Recovery:
        backoff: factory of reconnect delays (one policy for connects and replacements).
            stable_after: a connection that lived this long resets the backoff when it is lost;
            a loss sooner continues it, so a storm of short-lived connections stays bounded.
        dedupe_capacity: copies remembered per account during a make-before-break overlap.
            dedupe_grace: longest life of that memory after the old connection closed (it
            normally ends at the new connection's first new event).
        resync_attempts: REST attempts to reload the mirror after a gap.

    Delivery:
        max_backlog: events that may wait for the dispatcher; past it events are dropped and
            reported as a StreamGap (with a resync) until the callbacks caught up to half.
        seed: seeds the renewal jitter (``None``: random), for reproducible tests.
    """

    open_timeout: float = 10.0
    close_timeout: float = 2.0
    max_message_size: int = 1 << 20
    seed: int | None = None

    def __post_init__(self) -> None:
        positive = {
            "connection_lifetime": self.connection_lifetime,
            "open_timeout": self.open_timeout,
            "close_timeout": self.close_timeout,
            "request_timeout": self.request_timeout,
            "server_ping_interval": self.server_ping_interval,
            "risk_keepalive_interval": self.risk_keepalive_interval,
            "max_message_size": self.max_message_size,
            "dedupe_capacity": self.dedupe_capacity,
            "resync_attempts": self.resync_attempts,
            "max_backlog": self.max_backlog,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ParameterError(name, "must be positive")
        for name, value in (
            ("lifetime_margin", self.lifetime_margin),
            ("stall_grace", self.stall_grace),
            ("dedupe_grace", self.dedupe_grace),
            ("stable_after", self.stable_after),
        ):
            if value < 0:
                raise ParameterError(name, "must be >= 0")
        if self.token_validity_ms is not None and not 0 < self.token_validity_ms <= 86_400_000:
            raise ParameterError("token_validity_ms", "must be in (0, 86400000]")

    def session_config(self, *, mirror: bool) -> SessionConfig:
        """The policy part, for :class:`StreamSession`."""
        knobs = {name: getattr(self, name) for name in _KNOBS}
        return SessionConfig(**knobs, mirror=mirror)


class _Link:
    """One connection and what its messages need."""

    __slots__ = (
        "by_id",
        "channel",
        "drain_from",
        "fast",
        "id",
        "last_activity",
        "last_received",
        "listen_key",
        "live_since",
        "next_request",
        "opened_at",
        "pending",
        "phase",
        "ping_sent",
        "pings",
        "reason",
        "retired_ids",
        "settle",
        "shutdown",
        "sid_of",
        "waiting",
    )

    def __init__(self, link_id: int, channel: Channel, listen_key: str | None) -> None:
        self.id = link_id
        self.channel = channel
        self.phase = LinkPhase.OPENING
        self.listen_key = listen_key
        self.by_id: dict[int, _Route] = {}
        self.retired_ids: set[int] = set()
        self.pending: dict[int, _Request] = {}
        self.next_request = 0
        self.opened_at = 0.0
        self.live_since = 0.0
        # Any bytes prove the path (stall detection); only an event, an answer or a pong proves
        # that nothing before it was lost (gap start). A close reply after a silence proves
        # nothing: the server may have dropped what it had meanwhile.
        self.last_received = 0.0
        self.last_activity = 0.0
        self.pings = 0
        self.ping_sent: float | None = None
        self.shutdown = False
        self.reason = ""
        self.drain_from: float | None = None  # retiring: needs a pong newer than this
        self.fast: dict[int, str] = {}  # sid -> account, for the hot path (_refresh_fast)
        self.settle: set[_Route] = set()  # overlaps that end with the next pong
        self.sid_of: dict[str, int] = {}  # account -> its subscription id on this link
        self.waiting: set[str] = set()  # accounts not yet subscribed on this (new) link


@dataclass(slots=True)
class _Request:
    method: str
    route: _Route | None
    sent_at: float
    token: str | None = None
    expiration_ms: int = 0
    sid: int | None = None
    retry: bool = False  # the second attempt after -1209: a failure now is a failure
    generation: int = 0  # the route's renew_gen when sent (a newer attempt supersedes it)


class _Route:
    """One account on one channel: subscription, overlap filter, held events, gap bookkeeping."""

    __slots__ = (
        "channel",
        "expiration_ms",
        "gap_reason",
        "gap_started",
        "held",
        "index",
        "link",
        "minting",
        "name",
        "overlap",
        "overlap_gen",
        "phase",
        "plain",
        "primary",
        "renew_at",
        "renew_attempt",
        "renew_gen",
        "renewing",
        "resync_attempt",
        "retry_next",
        "shed",
        "sid",
        "symbol",
        "token",
    )

    def __init__(self, name: str, channel: Channel, index: int) -> None:
        self.name = name
        self.channel = channel
        self.index = index
        self.symbol = None if name == CROSS else name
        self.phase = RoutePhase.IDLE
        self.link: _Link | None = None  # the link of the current subscription
        self.sid: int | None = None
        self.token: str | None = None
        self.expiration_ms = 0
        self.renew_at = 0.0
        self.renew_gen = 0
        self.renew_attempt = 0
        self.renewing = False  # a renewal (mint + subscribe) is in flight on ``link``
        self.minting: deque[_Link] = deque()  # the links outstanding token requests are for
        self.retry_next = False
        # Make-before-break: events of the old source (``primary``: link, sid) are delivered and
        # recorded; the new source's are held until the old one ends, then pass the filter.
        self.overlap: OverlapFilter | None = None
        self.primary: tuple[_Link, int | None] | None = None
        self.overlap_gen = 0
        self.held: list[tuple[_Link, int | None, Any, Event]] = []
        self.gap_started: float | None = None  # mono; set while a gap is open
        self.gap_reason = ""
        self.shed = False  # events dropped for a full backlog: a gap is owed
        self.resync_attempt = 0
        self.plain = True  # nothing of the above applies: route without looking

    def refresh(self) -> None:
        self.plain = self.overlap is None and self.phase is not RoutePhase.TERMINATED


class _ChannelState:
    __slots__ = (
        "backoff",
        "connect_failures",
        "kind",
        "link",
        "next",
        "recovering_from",
        "replacement",
        "replacements",
        "routes",
        "state",
    )

    def __init__(self, kind: Channel, routes: list[_Route]) -> None:
        self.kind = kind
        self.routes = routes
        self.state = ChannelState.CONNECTING
        self.link: _Link | None = None  # the link that carries the channel
        self.next: _Link | None = None  # a link being opened (recovery or replacement)
        self.replacement = False  # ``next`` replaces a live ``link`` (make-before-break)
        self.recovering_from: float | None = None  # mono: last activity before the loss
        self.backoff: Iterator[float] | None = None
        self.connect_failures = 0
        self.replacements = 0


_F = TypeVar("_F", bound=Callable[..., Any])


def _then_refresh(method: _F) -> _F:
    """An input that may change routes: rebuild the hot path's tables after it."""

    @functools.wraps(method)
    def wrapper(self: StreamSession, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self._refresh_fast()

    return wrapper  # type: ignore[return-value]


class StreamSession:
    """The stream's policy: feed it inputs with their time, carry out its actions.

    Args:
        accounts: trade accounts (``"CROSS"`` and isolated symbols), in subscription order.
        risk: follow the risk channel too.
        config: the policy (:class:`SessionConfig`).
        rng: jitter source (seed it for reproducible schedules).
        on_answer: limiter feedback for every WS API answer ``(status, rateLimits, error.data)``.
    """

    def __init__(
        self,
        accounts: Sequence[str],
        *,
        risk: bool,
        config: SessionConfig,
        rng: random.Random,
        on_answer: Callable[[int, Any, Any], None] | None = None,
    ) -> None:
        self.config = config
        self._rng = rng
        self._on_answer = on_answer
        self.outbox: deque[Any] = deque()
        self.outbox_accounts: deque[str] = deque()
        self.actions: list[Action] = []
        self.stats = StreamStats()
        self._timers: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._links: dict[int, _Link] = {}
        self._next_link = 0
        self._shedding = False
        self._shed_started = 0.0
        self._closed = False
        self._now = Now(0.0, 0.0)  # the time of the latest input
        self._keepalive_gen = 0
        self._key_pending = False
        self.risk_key: str | None = None
        self._last_status: MarginLevelStatus | str | None = None
        self._loading: deque[str] = deque()  # accounts the first mirror load has yet to load
        self._load_attempt = 0
        trade = [_Route(name, Channel.TRADE, i) for i, name in enumerate(accounts)]
        self.channels: dict[Channel, _ChannelState] = {}
        if trade:
            self.channels[Channel.TRADE] = _ChannelState(Channel.TRADE, trade)
        if risk:
            self.channels[Channel.RISK] = _ChannelState(
                Channel.RISK, [_Route(CROSS, Channel.RISK, 0)]
            )
        self._routes = {name: route for name, route in ((r.name, r) for r in trade)}

    # ------------------------------------------------------------------ public views

    @property
    def deadline(self) -> float | None:
        """Monotonic time of the next timer (``None``: nothing scheduled)."""
        return self._timers[0][0] if self._timers else None

    @property
    def state(self) -> dict[Channel, ChannelState]:
        """Each channel's public state."""
        return {kind: channel.state for kind, channel in self.channels.items()}

    def is_live(self) -> bool:
        """Every channel is live."""
        return all(c.state is ChannelState.LIVE for c in self.channels.values())

    @property
    def loading(self) -> bool:
        """The first mirror load (:meth:`load_mirror`) is still under way."""
        return bool(self._loading)

    @_then_refresh
    def unsubscribe_all(self, now: Now) -> bool:
        """Politely end every subscription of the live trade link (before :meth:`close`).

        Returns whether a request was sent (its answer still goes to ``on_answer``).
        """
        self._now = now
        channel = self.channels.get(Channel.TRADE)
        link = channel.link if channel is not None else None
        if link is None or link.phase is not LinkPhase.LIVE:
            return False
        link.phase = LinkPhase.RETIRING  # its end is not a loss any more
        self._request(link, _Request(_UNSUBSCRIBE, None, now.mono), {}, now)
        return True

    def secrets(self, link_id: int) -> Iterator[str]:
        """Credentials travelling on ``link_id`` (for log redaction)."""
        link = self._links.get(link_id)
        if link is not None and link.listen_key:
            yield link.listen_key
        for route in self._routes.values():
            if route.token:
                yield route.token

    # ------------------------------------------------------------------ inputs

    @_then_refresh
    def start(self, now: Now) -> None:
        """Open every channel."""
        self._now = now
        for channel in self.channels.values():
            self._open(channel, now)

    def load_mirror(self, now: Now) -> None:
        """Load the mirror for the first time (nothing without ``mirror``); call once every
        channel is first live, so that no event after a snapshot can be missed.

        One account after the other (a risk-only stream mirrors the cross account), each tried up
        to ``resync_attempts`` times with backoff, then given up with a report. No
        :class:`~.events.Resynced`: nothing was missed. :attr:`loading` until every account is
        done.
        """
        self._now = now
        if not self.config.mirror:
            return
        self._loading = deque(list(self._routes) or [CROSS])
        self._load_next(now)

    @_then_refresh
    def close(self, now: Now) -> None:
        """Stop: close every link, forget every timer; later inputs are ignored."""
        self._now = now
        self._closed = True
        self._timers.clear()
        for channel in self.channels.values():
            self._set_state(channel, ChannelState.CLOSED)
        for link in list(self._links.values()):
            if link.phase is not LinkPhase.CLOSED:
                link.phase = LinkPhase.RETIRING
                self.actions.append(CloseLink(link.id, "stream closed"))

    @_then_refresh
    def link_opened(self, link_id: int, now: Now) -> None:
        """The driver connected ``link_id`` (handshake done)."""
        self._now = now
        link = self._links.get(link_id)
        if link is None or self._closed or link.phase is not LinkPhase.OPENING:
            return
        link.opened_at = link.last_received = link.last_activity = now.mono
        channel = self.channels[link.channel]
        self._arm_link_timers(link, now)
        if link.channel is Channel.RISK:
            self._link_ready(channel, link, now)
            return
        link.phase = LinkPhase.SUBSCRIBING
        link.waiting = {route.name for route in channel.routes}
        for route in channel.routes:
            self._subscribe_on(route, link, now, reuse=True)

    @_then_refresh
    def link_failed(self, link_id: int, error: Exception, now: Now) -> None:
        """Connecting ``link_id`` failed (``error`` says why)."""
        self._now = now
        link = self._links.pop(link_id, None)
        if link is None or self._closed:
            return
        link.phase = LinkPhase.CLOSED
        link.fast.clear()
        channel = self.channels[link.channel]
        if channel.next is link:
            channel.next = None
        self._report(StreamError(f"connecting the {link.channel.value} stream: {error}"))
        if link.channel is Channel.RISK:
            self.risk_key = None  # a key the server may no longer know: ask again
        self._retry_later(channel, now, _server_wait(error, now))

    @_then_refresh
    def link_lost(self, link_id: int, reason: str, now: Now) -> None:
        """``link_id`` ended; every message it received was fed before this."""
        self._now = now
        link = self._links.pop(link_id, None)
        if link is None:
            return
        was = link.phase
        link.phase = LinkPhase.CLOSED
        link.fast.clear()
        if self._closed:
            return
        channel = self.channels[link.channel]
        for request in link.pending.values():
            if request.route is not None and request.route.link is link:
                request.route.renewing = False
        link.pending.clear()
        if was is LinkPhase.RETIRING and link.drain_from is not None:
            # Replaced, but silent since before the switch: what it did not deliver is lost.
            ended = link.drain_from
            for route in channel.routes:
                if link.last_activity < ended:
                    if route.gap_started is None or route.gap_started > link.last_activity:
                        route.gap_started = link.last_activity
                        route.gap_reason = f"replaced connection was silent: {reason}"
                    if route.phase is RoutePhase.LIVE:  # else it stays open until restored
                        self._close_gap(route, now, ended=ended)
        self._release_primary(link)
        if was is LinkPhase.RETIRING:
            return
        reason = link.reason or reason
        # Every account this link carried has a gap from its last event, answer or pong.
        for route in channel.routes:
            if route.link is link or channel.link is link:
                self._open_gap(route, link.last_activity, reason)
        if channel.next is link:
            channel.next = None
            self._report(StreamError(f"new {link.channel.value} connection lost: {reason}"))
            self._retry_later(channel, now)
            return
        if channel.link is not link:
            return
        channel.link = None
        self.stats.reconnects += 1
        self._report(StreamError(f"{link.channel.value} connection lost: {reason}"), recovered=True)
        if channel.next is not None:  # a replacement was on its way: it becomes the recovery
            channel.replacement = False
            self._set_state(channel, ChannelState.RECOVERING)
            new = channel.next
            for route in channel.routes:
                sid = new.sid_of.get(route.name)
                if sid is not None:  # already subscribed there: live from now on
                    self._adopt(route, new)
                    self._close_gap(route, now)
            if new.phase is LinkPhase.LIVE or (
                new.phase is LinkPhase.SUBSCRIBING and not new.waiting
            ):
                self._link_ready(channel, new, now)
            return
        # A loss shortly after a success continues the backoff (a storm does not reset it).
        if now.mono - link.live_since >= self.config.stable_after or channel.backoff is None:
            channel.backoff = self.config.backoff()
        self._set_state(channel, ChannelState.RECOVERING)
        if link.channel is Channel.RISK:
            self.risk_key = None  # a fresh key: the old one may be the reason
        self._at(now.mono + next(channel.backoff), self._open, channel)

    def _open_gap(self, route: _Route, started: float, reason: str) -> None:
        """``route`` lost its subscription: events from ``started`` on may be missing."""
        if route.gap_started is None or route.gap_started > started:
            route.gap_started = started
            route.gap_reason = reason
        route.phase = RoutePhase.IDLE
        route.link = None
        route.sid = None
        route.renewing = False
        route.refresh()

    def received(self, link_id: int, now: Now) -> None:
        """Bytes arrived on ``link_id``: call once per read, before its messages (liveness)."""
        self._now = now
        link = self._links.get(link_id)
        if link is not None:
            link.last_received = now.mono
        if self._shedding:
            self._check_shedding(now)

    @_then_refresh
    def pong(self, link_id: int, payload: bytes) -> None:
        """A pong of ``link_id`` (after :meth:`received`): nothing before it was lost."""
        link = self._links.get(link_id)
        if link is None:
            return
        if payload == str(link.pings).encode():
            link.ping_sent = None
            link.last_activity = link.last_received
            if link.phase is LinkPhase.RETIRING and link.drain_from is not None:
                link.drain_from = None  # proven: everything before the switch arrived
                self.actions.append(CloseLink(link.id, "replaced"))
            settled, link.settle = link.settle, set()
            for route in settled:  # every copy of the old link's events has arrived
                if route.primary is None and route.overlap is not None:
                    self._end_overlap(route)

    def message(self, link_id: int, data: bytes | bytearray | memoryview) -> None:
        """One text/binary message of ``link_id`` (see :meth:`handler`)."""
        link = self._links.get(link_id)
        if link is not None:
            self.handler(link_id)(data)

    def handler(self, link_id: int) -> Callable[[bytes | bytearray | memoryview], None]:
        """The message handler of ``link_id``: the hot path, parse, route and enqueue.

        An ordinary trade event of an account whose subscription on this link is live and has
        nothing held back is one dict lookup (``link.fast``, rebuilt after every other input)
        and two appends; everything else takes the general path.
        """
        link = self._links[link_id]
        loads = orjson.loads
        fast = link.fast
        plain = _PLAIN_TYPES
        outbox = self.outbox
        append = outbox.append
        append_account = self.outbox_accounts.append
        high = self.config.max_backlog
        general = self._message
        key_subscription = _KEY_SUBSCRIPTION
        key_event = _KEY_EVENT
        key_type = _KEY_TYPE

        def on_message(data: bytes | bytearray | memoryview) -> None:
            try:
                msg = loads(data)
                name = fast.get(msg.get(key_subscription))
            except Exception:  # not JSON, not an object, an unhashable id: the general path
                general(link, data)
                return
            if name is not None:
                raw = msg.get(key_event)
                if raw.__class__ is dict and raw.get(key_type) in plain:
                    link.last_activity = link.last_received
                    append(raw)
                    append_account(name)
                    if len(outbox) > high:
                        self._start_shedding()
                    return
            general(link, data, msg)

        return on_message

    def _refresh_fast(self) -> None:
        """Rebuild each link's fast routes (after any input but a fast-path message)."""
        for link in self._links.values():
            fast = link.fast
            fast.clear()
            if self._shedding or link.channel is Channel.RISK:
                continue
            if link.phase is LinkPhase.CLOSED or link.phase is LinkPhase.FAILING:
                continue
            for sid, route in link.by_id.items():
                if route.plain and route.link is link and route.sid == sid:
                    fast[sid] = route.name

    _NO_MESSAGE: Final = object()

    def _message(self, link: _Link, data: Any, msg: Any = _NO_MESSAGE) -> None:
        """The general path of a message: everything but an ordinary event of a live route."""
        try:
            self._message_general(link, data, msg)
        finally:
            self._refresh_fast()

    def _message_general(self, link: _Link, data: Any, msg: Any) -> None:
        if link.phase is LinkPhase.CLOSED or link.phase is LinkPhase.FAILING:
            # A broken link's last words are not trusted (e.g. events on a subscriptionId two
            # accounts share): the gap runs from its last activity before the failure.
            return
        link.last_activity = link.last_received
        if msg is self._NO_MESSAGE:
            try:
                msg = orjson.loads(data)
            except orjson.JSONDecodeError:
                self._malformed(link, data)
                return
        if link.channel is Channel.RISK:
            self._risk_message(link, msg, data)
            return
        if msg.__class__ is not dict:
            self._malformed(link, data)
            return
        sid = msg.get("subscriptionId")
        if sid is None:
            self._control(link, msg, data)
            return
        route = link.by_id.get(sid) if sid.__class__ is int else None
        if route is None:
            self.stats.malformed_frames += 1
            excerpt = bytes(data[:120]).decode("utf-8", "replace")
            self._report(StreamError(f"event for unknown subscriptionId {sid!r}: {excerpt!r}"))
            return
        raw = msg.get("event")
        if raw.__class__ is not dict:
            self._malformed(link, data)
            return
        self._trade_event(link, sid, route, raw)

    @_then_refresh
    def tick(self, now: Now) -> None:
        """Run the timers that are due."""
        self._now = now
        timers = self._timers
        while timers and timers[0][0] <= now.mono and not self._closed:
            _, _, fn, args = heapq.heappop(timers)
            fn(*args, now)
        self._check_shedding(now)

    @_then_refresh
    def listen_key_result(
        self, now: Now, *, key: str | None = None, error: Exception | None = None
    ) -> None:
        """The answer to :class:`GetListenKey`."""
        self._now = now
        self._key_pending = False
        channel = self.channels.get(Channel.RISK)
        if channel is None or self._closed or channel.next is not None:
            return
        if error is not None or key is None:
            self._report(StreamError(f"getting a risk listen key: {error}"))
            self._retry_later(channel, now, _server_wait(error, now))
            return
        self.risk_key = key
        self._open_link(channel, now)

    @_then_refresh
    def keepalive_result(self, key: str, now: Now, *, error: Exception | None = None) -> None:
        """The answer to :class:`KeepaliveListenKey` for ``key`` (applied to that key only)."""
        self._now = now
        channel = self.channels.get(Channel.RISK)
        if channel is None or self._closed:
            return
        interval = self.config.risk_keepalive_interval
        if error is None:
            self.stats.keepalives += 1
            return
        if key != self.risk_key:
            return  # an answer about a key we no longer use: the current one is fine
        if isinstance(error, InvalidListenKey | ListenKeyNotFound):
            self._report(StreamError(f"risk listen key rejected on keepalive: {error}"))
            link = channel.link
            if link is not None:
                self._fail(link, "listen key rejected")
            self.risk_key = None
            return
        self._report(StreamError(f"risk listen key keepalive failed: {error}"))
        self._keepalive_gen += 1  # this retry replaces the periodic chain
        self._at(now.mono + min(interval, 60.0) / 4, self._keepalive, key, self._keepalive_gen)

    @_then_refresh
    def snapshot_result(
        self, account: str, now: Now, *, error: Exception | None = None, initial: bool = False
    ) -> None:
        """The answer to :class:`FetchSnapshot` (``error``: failed or wrong-shaped; ``initial``:
        the action's)."""
        self._now = now
        if initial:
            self._initial_loaded(account, now, error)
            return
        route = self._routes.get(account) or self._risk_route()
        if route is None or self._closed:
            return
        if error is None:
            route.resync_attempt = 0
            self.outbox.append(Resynced(account, {"channel": route.channel.value}))
            return
        route.resync_attempt += 1
        self._report(StreamError(f"mirror resync of {account} failed: {error}"))
        if route.resync_attempt >= self.config.resync_attempts:
            route.resync_attempt = 0
            self._report(StreamError(f"mirror of {account} could not be reloaded; it may be stale"))
            return
        delay = _snapshot_backoff(route.resync_attempt) + _server_wait(error, now)
        self._at(now.mono + delay, self._resync, account)

    @_then_refresh
    def margin_level_result(
        self,
        now: Now,
        *,
        status: MarginLevelStatus | str | None = None,
        level: Any = None,
        error: Exception | None = None,
    ) -> None:
        """The answer to :class:`FetchMarginLevel`: a status change lost in a gap is delivered."""
        self._now = now
        if self._closed:
            return
        if error is not None or status is None:
            self._report(StreamError(f"reading the margin level after a risk gap: {error}"))
            return
        if status == self._last_status:
            return
        self._last_status = status
        event_time = int(now.server_ms)
        self.outbox.append(
            MarginLevelStatusChange(
                CROSS,
                event_time,
                level,
                status,
                {"e": "MARGIN_LEVEL_STATUS_CHANGE", "E": event_time, "s": str(status)},
                recovered=True,
            )
        )

    # ------------------------------------------------------------------ channels

    def _set_state(self, channel: _ChannelState, state: ChannelState) -> None:
        if channel.state is state:
            return
        previous, channel.state = channel.state, state
        self.outbox.append(StateChanged(channel.kind.value, state.value, previous.value))

    def _open(self, channel: _ChannelState, now: Now) -> None:
        if self._closed or channel.next is not None:
            return
        if channel.link is not None and channel.link.phase is LinkPhase.LIVE:
            return
        if channel.kind is Channel.RISK and self.risk_key is None:
            self._get_key()
            return
        self._open_link(channel, now)

    def _open_link(self, channel: _ChannelState, now: Now) -> None:
        self._next_link += 1
        link = _Link(self._next_link, channel.kind, self.risk_key)
        self._links[link.id] = link
        channel.next = link
        self.actions.append(OpenLink(link.id, channel.kind, link.listen_key))

    def _retry_later(self, channel: _ChannelState, now: Now, at_least: float = 0.0) -> None:
        if channel.backoff is None:
            channel.backoff = self.config.backoff()
        if channel.link is not None and channel.link.phase is LinkPhase.LIVE:
            self._retry_replace_later(channel, now)
            return
        delay = max(next(channel.backoff), at_least)
        self._at(now.mono + delay, self._open, channel)

    def _arm_link_timers(self, link: _Link, now: Now) -> None:
        cfg = self.config
        self._at(now.mono + cfg.server_ping_interval + cfg.stall_grace, self._check_stall, link)
        if cfg.ping_interval is not None:
            self._at(now.mono + cfg.ping_interval, self._ping, link)

    def _link_ready(self, channel: _ChannelState, link: _Link, now: Now) -> None:
        """``link`` carries every route now: switch to it."""
        link.phase = LinkPhase.LIVE
        link.live_since = now.mono
        channel.next = None
        old = channel.link
        channel.link = link
        if channel.replacement and old is not None and old.phase is not LinkPhase.CLOSED:
            channel.replacement = False
            self.stats.planned_reconnects += 1
            for route in channel.routes:
                self._adopt(route, link)
            if old.phase is LinkPhase.FAILING:
                # Broke while its replacement was subscribing: already being closed, and
                # what it did not deliver since its last activity is a gap when it ends.
                old.phase = LinkPhase.RETIRING
                old.drain_from = now.mono
            else:
                self._drain(old, now)
        channel.replacement = False
        if link.channel is Channel.RISK:
            route = channel.routes[0]
            # Restored after a loss: the gap ends now, also when a dedupe filter outlived its
            # lost primary (kept for copies of what that link delivered). Only a planned move,
            # whose old link still delivers as the primary, has no loss to announce here.
            if route.overlap is None or route.primary is None:
                self._close_gap(route, now)
            self._keepalive_gen += 1
            self._at(
                now.mono + self.config.risk_keepalive_interval,
                self._keepalive,
                link.listen_key,
                self._keepalive_gen,
            )
        self._at(
            planned_reconnect_at(
                now.mono, self.config.connection_lifetime, self.config.lifetime_margin
            ),
            self._replace,
            channel,
            link,
        )
        self._set_state(channel, ChannelState.LIVE)

    def _drain(self, old: _Link, now: Now) -> None:
        """Retire a replaced link once a pong proves it delivered everything until now.

        Make-before-break relies on the old link carrying every event until the new one took
        over; a link that went silent (half-open) before that did not, and its silence
        becomes a gap when it ends (:meth:`link_lost`).
        """
        old.phase = LinkPhase.RETIRING
        old.drain_from = now.mono
        old.pings += 1
        old.ping_sent = now.mono
        self.actions.append(Ping(old.id, str(old.pings).encode()))
        timeout = self.config.ping_timeout or self.config.request_timeout
        self._at(now.mono + timeout, self._drained, old)

    def _drained(self, old: _Link, now: Now) -> None:
        if old.phase is LinkPhase.RETIRING and old.id in self._links:
            self.actions.append(CloseLink(old.id, "replaced"))

    def _replace(self, channel: _ChannelState, link: _Link, now: Now) -> None:
        """Make-before-break: open a new link while ``link`` still delivers."""
        if channel.link is not link or link.phase is not LinkPhase.LIVE or self._closed:
            return
        if channel.next is not None:
            return
        if any(route.overlap is not None or route.renewing for route in channel.routes):
            # The previous switch is still draining its old source, or a renewal may answer
            # with a new subscription id (an overlap of its own): one overlap at a time.
            self._at(now.mono + _BUSY_RETRY, self._replace, channel, link)
            return
        channel.replacements += 1
        channel.replacement = True
        for route in channel.routes:
            self._begin_overlap(route, link, None)
        if channel.kind is Channel.RISK:
            self._get_key()  # the active key comes back, extended
            return
        self._open_link(channel, now)

    def _retry_replace_later(self, channel: _ChannelState, now: Now) -> None:
        link = channel.link
        for route in channel.routes:
            route.held = []  # copies from the failed new link: the old one delivers them
            self._end_overlap(route)
            if (
                link is not None
                and route.channel is Channel.TRADE
                and not route.renewing
                and now.mono >= route.renew_at
            ):
                self._subscribe_on(route, link, now, reuse=False)  # deferred while replacing
        channel.replacement = False
        if channel.backoff is None:
            channel.backoff = self.config.backoff()
        link = channel.link
        if link is not None:
            self._at(now.mono + next(channel.backoff), self._replace, channel, link)

    def _fail(self, link: _Link, reason: str) -> None:
        """Close ``link`` because it is broken: its end is a loss (recovery and a gap)."""
        if link.phase in (LinkPhase.CLOSED, LinkPhase.FAILING):
            return
        link.reason = reason
        if link.phase is not LinkPhase.RETIRING:
            link.phase = LinkPhase.FAILING
        self.actions.append(CloseLink(link.id, reason))

    def _check_stall(self, link: _Link, now: Now) -> None:
        if link.phase in (LinkPhase.CLOSED, LinkPhase.RETIRING, LinkPhase.FAILING):
            return
        cfg = self.config
        deadline = stall_deadline(link.last_received, cfg.server_ping_interval, cfg.stall_grace)
        if now.mono >= deadline:
            silent = now.mono - link.last_received
            self._fail(link, f"stalled: nothing received for {silent:.1f} s")
            return
        self._at(deadline, self._check_stall, link)

    def _ping(self, link: _Link, now: Now) -> None:
        if link.phase in (LinkPhase.CLOSED, LinkPhase.RETIRING, LinkPhase.FAILING):
            return
        cfg = self.config
        assert cfg.ping_interval is not None
        if link.ping_sent is not None:
            if cfg.ping_timeout is not None and now.mono - link.ping_sent >= cfg.ping_timeout:
                self._fail(link, f"no pong within {cfg.ping_timeout:g} s")
                return
        else:
            link.pings += 1
            link.ping_sent = now.mono
            self.actions.append(Ping(link.id, str(link.pings).encode()))
        step = (
            cfg.ping_interval
            if cfg.ping_timeout is None
            else min(cfg.ping_interval, cfg.ping_timeout)
        )
        self._at(now.mono + step, self._ping, link)

    # ------------------------------------------------------------------ trade subscriptions

    def _subscribe_on(self, route: _Route, link: _Link, now: Now, *, reuse: bool) -> None:
        """Subscribe ``route`` on ``link`` (its current token if not due, else a new one)."""
        if link is route.link:
            route.renewing = True
        if (
            reuse
            and route.token is not None
            and now.mono < route.renew_at
            and route.expiration_ms > now.server_ms
        ):
            self._send_subscribe(route, link, route.token, route.expiration_ms, now)
            return
        if route.phase is RoutePhase.IDLE:
            route.phase = RoutePhase.MINTING
        route.minting.append(link)
        self.actions.append(MintToken(route.name, route.symbol, self.config.token_validity_ms))

    @_then_refresh
    def token_result(
        self,
        account: str,
        now: Now,
        *,
        token: str | None = None,
        expiration_ms: int | None = None,
        error: Exception | None = None,
    ) -> None:
        """The answer to :class:`MintToken` (``expiration_ms`` in any epoch unit)."""
        self._now = now
        route = self._routes.get(account)
        if route is None or self._closed:
            return
        link = route.minting.popleft() if route.minting else None
        if route.phase is RoutePhase.MINTING:
            route.phase = RoutePhase.IDLE
        if link is None or link.phase in (LinkPhase.CLOSED, LinkPhase.RETIRING):
            return
        if error is not None or not token:
            self._subscription_failed(route, link, error or StreamError("empty token"), now)
            return
        validity = self.config.token_validity_ms or 86_400_000
        expiration = int(now.server_ms) + validity
        if expiration_ms is not None:
            with contextlib.suppress(ValueError):
                expiration = normalize_epoch_ms(expiration_ms)
        self._send_subscribe(route, link, token, expiration, now)

    def _send_subscribe(
        self, route: _Route, link: _Link, token: str, expiration_ms: int, now: Now
    ) -> None:
        if route.phase is RoutePhase.IDLE:
            route.phase = RoutePhase.SUBSCRIBING
        request = _Request(
            _SUBSCRIBE,
            route,
            now.mono,
            token,
            expiration_ms,
            retry=route.retry_next,
            generation=route.renew_gen,
        )
        route.retry_next = False
        self._request(link, request, {"listenToken": token}, now, secret=token)

    def _request(
        self,
        link: _Link,
        request: _Request,
        params: Mapping[str, Any],
        now: Now,
        *,
        secret: str | None = None,
    ) -> None:
        link.next_request += 1
        request_id = link.next_request
        link.pending[request_id] = request
        payload = orjson.dumps({"id": request_id, "method": request.method, "params": params})
        critical = request.method == _SUBSCRIBE
        self.actions.append(Send(link.id, payload, critical=critical, secret=secret))
        self._at(now.mono + self.config.request_timeout, self._request_timeout, link, request_id)

    def _request_timeout(self, link: _Link, request_id: int, now: Now) -> None:
        request = link.pending.pop(request_id, None)
        if request is None or link.phase in (LinkPhase.CLOSED, LinkPhase.RETIRING):
            return
        error = StreamError(f"{request.method}: no answer within {self.config.request_timeout:g} s")
        if request.method == _SUBSCRIBE and request.route is not None:
            if not _superseded(request, link):
                self._subscription_failed(request.route, link, error, now)
        elif request.route is not None:
            self._report(error)
            self._end_primary(request.route, link, request.sid, now)

    def _answer(self, link: _Link, msg: dict[str, Any], now: Now) -> None:
        status = msg.get("status")
        status = status if status.__class__ is int else 0
        error = msg.get("error")
        error = error if isinstance(error, dict) else {}
        if self._on_answer is not None:
            data = error.get("data")
            limits = msg.get("rateLimits")
            self._on_answer(
                status,
                limits if isinstance(limits, list) else None,
                data if isinstance(data, dict) else None,
            )
        request_id = msg.get("id")
        request = link.pending.pop(request_id, None) if request_id.__class__ is int else None
        if request is None or request.route is None:
            return  # the answer to a request that timed out, or to the final unsubscribe
        route = request.route
        if request.method == _UNSUBSCRIBE:
            if status != 200:
                self._report(StreamError(f"unsubscribing a replaced subscription: {error}"))
            # Its answer follows every event the old subscription delivered.
            self._end_primary(route, link, request.sid, now)
            return
        result = msg.get("result")
        if status == 200:
            sid = result.get("subscriptionId") if isinstance(result, dict) else None
            if sid.__class__ is not int:
                sid = link.sid_of.get(route.name)
            if sid is None:
                self._subscription_failed(route, link, StreamError("no subscriptionId"), now)
                return
            expiration = request.expiration_ms
            if isinstance(result, dict) and "expirationTime" in result:
                with contextlib.suppress(TypeError, ValueError):
                    expiration = normalize_epoch_ms(result["expirationTime"])
            assert request.token is not None
            self._subscribed(route, link, sid, request.token, expiration, now)
            return
        if _superseded(request, link):
            return
        exc = error_from_ws(status, error, now=now.wall)
        sid = link.sid_of.get(route.name)
        if isinstance(exc, SubscriptionActive) and sid is not None:
            # One subscription per account and connection: it is live here already.
            assert request.token is not None
            self._subscribed(route, link, sid, request.token, request.expiration_ms, now)
            return
        if isinstance(exc, InvalidListenToken) and not request.retry:
            route.token = None  # expired or revoked: a new one, at once (once)
            route.retry_next = True
            self._subscribe_on(route, link, now, reuse=False)
            return
        self._subscription_failed(route, link, exc, now)

    def _subscribed(
        self, route: _Route, link: _Link, sid: int, token: str, expiration: int, now: Now
    ) -> None:
        if link.phase in (LinkPhase.RETIRING, LinkPhase.CLOSED, LinkPhase.FAILING):
            return  # a connection on its way out (its renewal is redone on the new one)
        other = link.by_id.get(sid)
        if other is not None and other is not route:
            # Two accounts with one id: their events cannot be told apart. Never guess.
            self._report(
                StreamError(
                    f"the server gave {route.name} and {other.name} the same subscriptionId "
                    f"{sid}; reconnecting"
                )
            )
            self._fail(link, f"duplicate subscriptionId {sid}")
            return
        channel = self.channels[Channel.TRADE]
        renewal = route.renewing and link is route.link and route.sid is not None
        route.renewing = False
        route.renew_attempt = 0
        route.token = token
        route.expiration_ms = expiration
        self._schedule_renewal(route, now)
        old = link.sid_of.get(route.name)
        link.sid_of[route.name] = sid
        link.by_id[sid] = route
        if link is not route.link or link is channel.next:
            # A connection being opened (start, recovery or replacement).
            link.waiting.discard(route.name)
            if not channel.replacement:
                route.link, route.sid = link, sid
                route.phase = RoutePhase.LIVE
                route.refresh()
                self._close_gap(route, now)
            if not link.waiting and channel.next is link:
                self._link_ready(channel, link, now)
            return
        if renewal:
            self.stats.renewals += 1
        if old is not None and old != sid:
            # Renewed with a new id while the old one still delivers: the old one's events are
            # delivered (and recorded) until its unsubscribe is answered; the new one's wait.
            link.retired_ids.add(old)
            self._begin_overlap(route, link, old)
            self._request(
                link, _Request(_UNSUBSCRIBE, route, now.mono, sid=old), {"subscriptionId": old}, now
            )
        route.sid = sid
        if route.phase is RoutePhase.TERMINATED:
            route.phase = RoutePhase.LIVE
            route.refresh()
            self._close_gap(route, now)
        route.phase = RoutePhase.LIVE
        route.refresh()

    def _subscription_failed(self, route: _Route, link: _Link, error: Exception, now: Now) -> None:
        channel = self.channels[Channel.TRADE]
        route.renewing = False
        if link is channel.next or link.phase is LinkPhase.SUBSCRIBING:
            # A new connection that cannot carry every account is no use: drop it, try again.
            self._report(StreamError(f"subscribing {route.name} on a new connection: {error}"))
            self._fail(link, f"subscribing {route.name} failed")
            return
        route.renew_attempt += 1
        self._report(StreamError(f"renewing the {route.name} subscription: {error}"))
        delay = self.config.renewal.retry_delay(
            int(now.server_ms),
            route.expiration_ms,
            route.renew_attempt,
            at_least=_server_wait(error, now),
        )
        route.renew_gen += 1
        route.renew_at = now.mono + delay
        self._at(route.renew_at, self._renew, route, route.renew_gen)

    def _schedule_renewal(self, route: _Route, now: Now) -> None:
        """Renew at a jittered fraction of what remains *on the server's clock*.

        A token that already looks expired waits ``min_delay``: renewing it at once would mint
        and subscribe in a tight loop whenever the clocks disagree (one renewal per token and
        ``min_delay`` at most, whatever the skew).
        """
        policy = self.config.renewal
        count = len(self.channels[Channel.TRADE].routes)
        jitter = spread_jitter(route.index, count, self._rng.random())
        server_now = int(now.server_ms)
        if route.expiration_ms <= server_now:
            delay = policy.min_delay
        else:
            delay = policy.delay(server_now, route.expiration_ms, jitter)
        route.renew_gen += 1
        route.renew_at = now.mono + delay
        self._at(route.renew_at, self._renew, route, route.renew_gen)

    def _renew(self, route: _Route, generation: int, now: Now) -> None:
        if generation != route.renew_gen or route.renewing:
            return
        channel = self.channels[Channel.TRADE]
        link = route.link
        if link is None or link is not channel.link or link.phase is not LinkPhase.LIVE:
            return  # a reconnect subscribes a fresh token
        if channel.next is not None:
            return  # a replacement is subscribing: it renews what is due once live (_adopt)
        if route.overlap is not None:
            # A switch is still deduplicating its old source: one overlap at a time.
            self._at(now.mono + _BUSY_RETRY, self._renew, route, generation)
            return
        self._subscribe_on(route, link, now, reuse=False)

    # ------------------------------------------------------------------ messages

    def _control(self, link: _Link, msg: dict[str, Any], data: Any) -> None:
        now = self._now
        if "id" in msg or "status" in msg:
            self._answer(link, msg, now)
            return
        inner = msg.get("event")
        if isinstance(inner, dict) and inner.get("e") == "serverShutdown":
            channel = self.channels[link.channel]
            if link.shutdown or channel.link is not link:
                return
            link.shutdown = True
            # Move now, unless the connection is younger than _SHUTDOWN_SPACING: a server that
            # shuts every connection down at once must not make us replace in a tight loop.
            delay = max(0.0, link.live_since + _SHUTDOWN_SPACING - now.mono)
            self._at(now.mono + delay, self._replace, channel, link)
            return
        self._malformed(link, data)

    def _trade_event(self, link: _Link, sid: int, route: _Route, raw: dict[str, Any]) -> None:
        event = decode_event(raw, route.name)
        cls = event.__class__
        if cls is EventStreamTerminated:
            self._terminated(link, sid, route, event)
            return
        if cls is UnknownEvent:
            self._undecodable(event)
        self._admit(link, sid, route, raw, event)

    def _terminated(self, link: _Link, sid: int, route: _Route, event: Event) -> None:
        now = self._now
        link.by_id.pop(sid, None)
        if link.sid_of.get(route.name) == sid:
            del link.sid_of[route.name]
        if sid in link.retired_ids:
            link.retired_ids.discard(sid)
            self._end_primary(route, link, sid, now)
            return
        if link.phase is LinkPhase.RETIRING or link is not route.link or sid != route.sid:
            return  # an older subscription; the current one carries on
        channel = self.channels[Channel.TRADE]
        if channel.replacement and channel.next is not None:
            # The old link is no longer a contiguous source, which deduplicating the new one
            # against it assumes: drop the half-made replacement (and what it held); the old
            # link is restored below, with its gap, and replaced later. Nothing the dropped
            # link still says counts (its frames in flight are copies of the old link's): it is
            # closed as failing, which ignores them, and its end opens no gap (it carried none).
            new, channel.next = channel.next, None
            self._fail(new, "replacement abandoned")
            self._retry_replace_later(channel, now)
        # The live subscription ended (expired before renewal, or ended by the server): events
        # until it is restored may be lost, from the moment the exchange ended it (its E, on
        # our clock), not from when the notice arrived (it may have been held up on the wire).
        route.sid = None
        route.phase = RoutePhase.TERMINATED
        route.refresh()
        started = now.mono
        event_time = getattr(event, "event_time", None)
        if now.offset_ms is not None and isinstance(event_time, int):
            wall = (event_time - now.offset_ms - (now.error_ms or 0.0)) / 1000.0 - 0.001
            started = min(started, now.mono - (now.wall - wall))
        if route.gap_started is None or route.gap_started > started:
            route.gap_started = started
            route.gap_reason = "subscription terminated"
        self._deliver(route, event)
        route.renew_gen += 1
        route.renewing = False
        # Restoring a dark subscription starts its own retries from the shortest wait: the
        # failed renewals before had doubled theirs (to 32 s after six, sim seed 133120).
        route.renew_attempt = 0
        self._subscribe_on(route, link, now, reuse=False)

    def _risk_message(self, link: _Link, msg: Any, data: Any) -> None:
        channel = self.channels[Channel.RISK]
        route = channel.routes[0]
        event = decode_event(msg, CROSS)
        cls = event.__class__
        if cls is ListenKeyExpired:
            if link is channel.link and link.phase is LinkPhase.LIVE:
                self._deliver(route, event)
                self.risk_key = None
                self._fail(link, "listen key expired")
            return
        if cls is UnknownEvent:
            if not isinstance(msg, dict):
                self._malformed(link, data)
                return
            self._undecodable(event)
        self._admit(link, None, route, msg, event)

    def _admit(self, link: _Link, sid: int | None, route: _Route, raw: Any, event: Event) -> None:
        """Deliver an event that needs a look: during an overlap, or held."""
        overlap = route.overlap
        if overlap is None:
            if link is route.link and (sid is None or sid == route.sid):
                self._deliver(route, event)
            elif sid is not None and sid in link.retired_ids:
                self.stats.duplicates_dropped += 1
            else:
                self._deliver(route, event)
            return
        primary = route.primary
        if primary is not None and link is primary[0] and (primary[1] is None or sid == primary[1]):
            overlap.record(event_key(raw))
            self._deliver(route, event)
            return
        if primary is not None:
            route.held.append((link, sid, raw, event))
            return
        if overlap.duplicate(event_key(raw)):
            self.stats.duplicates_dropped += 1
            return
        if overlap.done:
            self._end_overlap(route)
        self._deliver(route, event)

    def _deliver(self, route: _Route, event: Any) -> None:
        if self._shedding:
            if not route.shed:
                route.shed = True
                if route.gap_started is None or route.gap_started > self._shed_started:
                    route.gap_started = self._shed_started
                    route.gap_reason = "slow consumer: backlog full"
            return
        self.outbox.append(event)
        if len(self.outbox) > self.config.max_backlog:
            self._start_shedding()

    def _malformed(self, link: _Link, data: Any) -> None:
        """Skip a frame that is not a well-formed message; it may have been an event of any
        account of the channel, so each gets a (zero-length) gap, and a resync."""
        now = self._now
        self.stats.malformed_frames += 1
        excerpt = bytes(data[:120]).decode("utf-8", "replace")
        self._report(StreamError(f"malformed {link.channel.value} frame skipped: {excerpt!r}"))
        for route in self.channels[link.channel].routes:
            if route.gap_started is None:
                route.gap_started = link.last_received
                route.gap_reason = "malformed frame"
                self._close_gap(route, now)

    def _undecodable(self, event: Event) -> None:
        if isinstance(event, UnknownEvent) and event.error is not None:
            self._report(StreamError(f"undecodable event for {event.account}: {event.error}"))

    # ------------------------------------------------------------------ overlap (dedupe)

    def _begin_overlap(self, route: _Route, link: _Link, sid: int | None) -> None:
        self._flush_held(route)
        route.overlap = OverlapFilter(self.config.dedupe_capacity)
        route.overlap_gen += 1
        route.primary = (link, sid)
        route.refresh()

    def _end_primary(self, route: _Route, link: _Link, sid: int | None, now: Now) -> None:
        """The old source of ``route`` ended: release what the new one held, minus copies."""
        primary = route.primary
        if primary is None or primary[0] is not link or primary[1] != sid:
            return
        route.primary = None
        held, route.held = route.held, []
        for h_link, h_sid, raw, event in held:
            self._admit(h_link, h_sid, route, raw, event)
        if route.overlap is None:
            return
        current = route.link
        if current is link and link.phase is not LinkPhase.CLOSED:
            # A renewal's new id on the same link: the server wrote each copy next to its
            # original, so every copy arrived before the old id's end. Nothing more to drop.
            self._end_overlap(route)
            return
        # Else the old source is gone: a link lost while its replacement was subscribing
        # still has copies of what it delivered coming on the replacement (sim seed 52053),
        # so the filter stays until they are settled.
        # Copies may still be on their way on the new link; a pong for a ping sent now comes
        # after all of them (and ``dedupe_grace`` bounds the wait if no pong comes).
        if current is not None and current.phase is LinkPhase.LIVE:
            current.settle.add(route)
            current.pings += 1
            if current.ping_sent is None:
                current.ping_sent = now.mono
            self.actions.append(Ping(current.id, str(current.pings).encode()))
        self._at(
            now.mono + self.config.dedupe_grace, self._overlap_expired, route, route.overlap_gen
        )

    def _release_primary(self, link: _Link) -> None:
        for channel in self.channels.values():
            for route in channel.routes:
                primary = route.primary
                if primary is not None and primary[0] is link:
                    self._end_primary(route, link, primary[1], self._now)

    def _adopt(self, route: _Route, link: _Link) -> None:
        """``route`` now belongs to its subscription on ``link`` (a replacement went live).

        A renewal that was due, or in flight on the old link, is done on ``link`` now: the
        subscription there may carry the token that renewal was replacing.
        """
        now = self._now
        due = route.renewing or (route.token is not None and now.mono >= route.renew_at)
        route.link = link
        route.sid = link.sid_of.get(route.name)
        route.phase = RoutePhase.LIVE
        route.renewing = False
        route.refresh()
        if route.gap_started is not None and route.channel is Channel.TRADE:
            # It was terminated on the old link meanwhile: ``link`` restored it.
            self._close_gap(route, now)
        if due and route.channel is Channel.TRADE and link.phase is LinkPhase.LIVE:
            self._subscribe_on(route, link, now, reuse=False)

    def _overlap_expired(self, route: _Route, generation: int, now: Now) -> None:
        if route.overlap_gen == generation and route.primary is None:
            self._end_overlap(route)

    def _end_overlap(self, route: _Route) -> None:
        route.overlap = None
        route.primary = None
        self._flush_held(route)
        route.refresh()

    def _flush_held(self, route: _Route) -> None:
        held, route.held = route.held, []
        for _, _, _, event in held:
            self._deliver(route, event)

    # ------------------------------------------------------------------ gaps, backlog, resync

    def _close_gap(self, route: _Route, now: Now, *, ended: float | None = None) -> None:
        """Announce the open gap of ``route`` (until now, or the monotonic ``ended``)."""
        started = route.gap_started
        if started is None:
            return
        route.gap_started = None
        route.shed = False
        self.stats.gaps += 1
        ended_wall = now.wall if ended is None else now.wall_of(ended)
        started_wall = min(now.wall_of(started), ended_wall)
        started_ms: int | None = None
        ended_ms: int | None = None
        if now.offset_ms is not None:
            started_ms, ended_ms = server_window_ms(
                started_wall, ended_wall, now.offset_ms, now.error_ms or 0.0, _IN_FLIGHT_MS
            )
        reason = route.gap_reason
        self.outbox.append(
            StreamGap(
                route.name,
                started_wall,
                ended_wall,
                {"channel": route.channel.value, "reason": reason},
                started_ms=started_ms,
                ended_ms=ended_ms,
                channel=route.channel.value,
                reason=reason,
            )
        )
        if self.config.mirror:
            self._resync(route.name, now)
        if route.channel is Channel.RISK:
            self.actions.append(FetchMarginLevel())

    def _resync(self, account: str, now: Now) -> None:
        self.actions.append(FetchSnapshot(account))

    def _initial_loaded(self, account: str, now: Now, error: Exception | None) -> None:
        if self._closed:
            return
        if error is not None:
            self._load_attempt += 1
            self._report(StreamError(f"mirror load of {account} failed: {error!r}"))
            if self._load_attempt < self.config.resync_attempts:
                # Not the server's Retry-After or ban (unlike a resync): ``async with`` waits for
                # this load, and an account given up is reported and resynced after the next gap.
                self._at(now.mono + _snapshot_backoff(self._load_attempt), self._load_next)
                return
            self._report(StreamError(f"mirror of {account} could not be loaded; it may be stale"))
        self._load_attempt = 0
        self._loading.popleft()
        self._load_next(now)

    def _load_next(self, now: Now) -> None:
        if self._loading:
            self.actions.append(FetchSnapshot(self._loading[0], initial=True))

    def _start_shedding(self) -> None:
        self._shedding = True
        for link in self._links.values():
            link.fast.clear()
        self._shed_started = self._now.mono
        self._report(
            StreamError(
                f"{len(self.outbox)} events wait for slow callbacks; later events are dropped "
                "(reported as a StreamGap, with a resync) until they catch up"
            )
        )
        self._shedding = True
        self._at(self._now.mono + 0.05, self._shedding_timer)

    def _shedding_timer(self, now: Now) -> None:
        if self._shedding:
            self._at(now.mono + 0.05, self._shedding_timer)

    def _check_shedding(self, now: Now) -> None:
        if not self._shedding or len(self.outbox) > self.config.max_backlog // 2:
            return
        self._shedding = False
        for channel in self.channels.values():
            for route in channel.routes:
                if route.shed:
                    self._close_gap(route, now)
        self._refresh_fast()

    # ------------------------------------------------------------------ risk key

    def _keepalive(self, key: str | None, generation: int, now: Now) -> None:
        if key is None or key != self.risk_key or generation != self._keepalive_gen:
            return
        self.actions.append(KeepaliveListenKey(key))
        self._at(now.mono + self.config.risk_keepalive_interval, self._keepalive, key, generation)

    def _get_key(self) -> None:
        if not self._key_pending:
            self._key_pending = True
            self.actions.append(GetListenKey())

    def _risk_route(self) -> _Route | None:
        channel = self.channels.get(Channel.RISK)
        return channel.routes[0] if channel is not None else None

    # ------------------------------------------------------------------ plumbing

    def _at(self, due: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, fn, args))

    def _report(self, error: Exception, *, recovered: bool = False) -> None:
        self.outbox.append(Failure(error, recovered=recovered))


def _superseded(request: _Request, link: _Link) -> bool:
    """A renewal whose failure no longer matters: a newer attempt for its route is under way
    (the subscription was terminated meanwhile and is being restored), and failing this one
    would start a second, parallel chain of retries."""
    route = request.route
    return route is not None and link is route.link and request.generation != route.renew_gen


def _snapshot_backoff(failures: int) -> float:
    """Seconds before the next snapshot attempt after ``failures`` failed ones: 1, 2, 4 ... 30."""
    return min(2.0 ** (failures - 1), 30.0)


def _server_wait(error: BaseException | None, now: Now) -> float:
    """Seconds the server asked us to wait (rate limit or ban), 0 when it did not."""
    if isinstance(error, IPBanned):
        return max(0.0, error.until - now.wall)
    if isinstance(error, RateLimited) and error.retry_after is not None:
        return error.retry_after
    return 0.0
