"""Weight-aware rate limiter modelling Binance's real pools; shared by REST and streams.

Binance limits (https://developers.binance.com/docs/margin_trading/general-info, "LIMITS"):

* ``/api/*`` and the WebSocket API share one **6 000 weight / minute** budget per IP
  (``Pool.API_IP``, header ``X-MBX-USED-WEIGHT-1M``).
* every ``/sapi/*`` endpoint has its **own** 12 000 / minute IP budget (``Pool.SAPI_IP``, header
  ``X-SAPI-USED-IP-WEIGHT-1M``) or its own 180 000 / minute UID budget (``Pool.SAPI_UID``, header
  ``X-SAPI-USED-UID-WEIGHT-1M``);
* order counts per account (10 s and 1 day), read from ``GET /sapi/v1/margin/rateLimit/order``
  and the ``X-MBX-ORDER-COUNT-*`` headers;
* 300 WebSocket connection attempts per 5 minutes per IP, each also costing 2 weight on ``API_IP``.

Model. Binance counts in **fixed windows aligned to the interval** (the used-weight header drops to
zero at each minute boundary), so every budget here is a fixed window aligned to epoch multiples of
its length. Local and server clocks differ by an offset, and a request reaches the server a little
after it leaves; both are covered by ``boundary_margin`` (*m*, default 0.25 s): a request granted at
local time *t* may be counted by the server in any window touched by ``[t - m, t + m]``, so it is
charged to the window of ``t - m`` *and*, within *m* of the next boundary, to the next window too.
In practice a new window's budget is used only *m* seconds after its boundary, and nothing is ever
charged to a window the server might already have counted as full. Bursts are not slowed: a full
window waits exactly until ``boundary + m``, and then the whole next budget is available.

Requests in flight. A granted request may wait in the HTTP connection pool or on the wire for
longer than *m* (a burst of thousands granted at once), and the server counts it when it arrives.
So every REST grant stays *pending* until its answer is reported; one not answered at least *m*
before the boundary is carried into the next window as well. The pairing of answer and grant is
per task (:meth:`RateLimiter.acquire` and :meth:`RateLimiter.on_response` in the same task, as
the REST client does); a grant that is never answered is carried once, then forgotten.

Identity. Binance keys each budget by who it belongs to, and so does the limiter: ``API_IP``,
the ``SAPI_IP`` pools, connection attempts, the per-IP request rules and bans by **IP**; the
``SAPI_UID`` pools and the order counts by **account**. Every method takes keyword-only
``account=`` and ``ip=`` labels (opaque strings; ``None`` means the limiter's default ``ip`` label,
or one default account). One limiter shared by clients of several accounts on one IP therefore
gives each account its full UID budget and order counts, while the IP budgets are shared, as on
the server. :class:`~.rest.MarginClient` passes its ``account`` label on every call.

Feedback: the server's counts (response headers, WS API ``rateLimits``) replace the local count when
higher (other processes on the same IP or account spend the same budget). HTTP 429 closes the pool
until ``Retry-After`` (to the end of its window when absent); HTTP 418 bans the IP, and every
reservation then raises :class:`~.errors.IPBanned` at once. A *critical reserve* keeps the last
``critical_reserve`` share of every budget for critical requests (cancels, repays, stream renewals)
so that a burst of reads can never starve a risk-reducing action. Closures and bans are capped at
:data:`MAX_BAN` (Binance's longest ban) so that a wild ``Retry-After`` never closes a pool for good.

:class:`LimiterCore` is the pure state machine (``now`` passed in, nothing awaited);
:class:`RateLimiter` is the asyncio shell with FIFO waiters.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Final, NamedTuple, Protocol

from .endpoints import DEFAULT_TRADING_SYMBOLS, ENDPOINTS, Endpoint, Pool
from .errors import IPBanned, ParameterError, RateLimited

__all__ = [
    "API_IP_KEY",
    "DEFAULT_ACCOUNT",
    "DEFAULT_IP",
    "DEFAULT_ORDER_LIMITS",
    "IP_REQUESTS_KEY",
    "MAX_BAN",
    "ORDERS_KEY",
    "WS_CONNECT_KEY",
    "WS_CONNECT_WEIGHT",
    "Limiter",
    "LimiterCore",
    "RateLimiter",
    "WindowCharge",
]

#: Pool key of the shared ``/api`` + WebSocket API budget (same as ``Endpoint.pool_key``).
API_IP_KEY: Final = "API_IP"
#: Prefix of the order-count windows in :meth:`LimiterCore.usage` (``"ORDERS:10S"`` ...).
ORDERS_KEY: Final = "ORDERS"
#: Prefix of the per-IP request-count rules (``"IP_REQUESTS:POST /sapi/v1/margin/max-leverage"``).
IP_REQUESTS_KEY: Final = "IP_REQUESTS"
#: The ``ip`` label used when none is given (one process usually has one egress IP).
DEFAULT_IP: Final = "local"
#: The ``account`` label used when none is given.
DEFAULT_ACCOUNT: Final = "default"
#: Longest closure or ban the limiter accepts from the server, in seconds: Binance's longest IP
#: ban, 3 days (https://developers.binance.com/docs/margin_trading/general-info, LIMITS).
MAX_BAN: Final = 3 * 86400.0
#: Pool key of the WebSocket connection-attempt budget.
WS_CONNECT_KEY: Final = "WS_CONNECT"
#: Request weight of one WebSocket API connection attempt, charged to ``API_IP``
#: (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/rate-limits).
WS_CONNECT_WEIGHT: Final = 2

#: Order-count limits used until the account's real ones are known: the example of
#: ``GET /sapi/v1/margin/rateLimit/order`` (PROTOCOL.md §2.3), as (window seconds, limit).
DEFAULT_ORDER_LIMITS: Final[tuple[tuple[float, int], ...]] = ((10.0, 10_000), (86_400.0, 20_000))

# Binance bans for 2 minutes at least; a 418 without Retry-After is held for that long.
_DEFAULT_BAN: Final = 120.0
# Headers and WS API `rateLimits` name the 1-minute weight window; when tests shrink the window
# (e.g. to 10 s, like the fake exchange), the 1-minute figures describe the shrunk window.
_CANONICAL_WINDOW: Final = 60.0
# Added to every computed wait: a refusal must be strictly positive (0.0 means "granted and
# recorded") even where float rounding puts `now` on the boundary itself, and sleeping the wait
# must land past the boundary rather than a hair before it.
_EPSILON: Final = 1e-6

_HEADER_UNIT: Final[Mapping[str, float]] = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_WS_INTERVAL: Final[Mapping[str, float]] = {
    "SECOND": 1.0,
    "MINUTE": 60.0,
    "HOUR": 3600.0,
    "DAY": 86400.0,
}
_MBX_WEIGHT: Final = "x-mbx-used-weight-"
_SAPI_IP_WEIGHT: Final = "x-sapi-used-ip-weight-"
_SAPI_UID_WEIGHT: Final = "x-sapi-used-uid-weight-"
_ORDER_COUNT: Final = "x-mbx-order-count-"


# Raw header name → its lower-case form when it carries rate-limit information, "" otherwise.
# Every response has ~10 headers and the names repeat, so one dict hit per header replaces a
# lower() and a prefix scan on the REST hot path. Bounded: a hostile server cannot grow it.
_HEADER_ROLES: dict[str, str] = {}
_HEADER_ROLES_MAX: Final = 256


def _header_role(name: str) -> str:
    lowered = name.lower()
    role = lowered if lowered.startswith(("x-mbx-", "x-sapi-")) or lowered == "retry-after" else ""
    if len(_HEADER_ROLES) < _HEADER_ROLES_MAX:
        _HEADER_ROLES[name] = role
    return role


def _label(length: float) -> str:
    """``60.0`` → ``"1M"``, ``10.0`` → ``"10S"``, ``86400.0`` → ``"1D"`` (Binance's style)."""
    for unit, letter in ((86400.0, "D"), (3600.0, "H"), (60.0, "M")):
        if length >= unit and length % unit == 0:
            return f"{int(length // unit)}{letter}"
    return f"{length:g}S"


def _header_interval(suffix: str) -> float | None:
    """``"1m"`` → 60.0, ``"10s"`` → 10.0; ``None`` when the suffix is not ``<n><s|m|h|d>``."""
    unit = _HEADER_UNIT.get(suffix[-1:])
    if unit is None or not (suffix[:-1].isascii() and suffix[:-1].isdigit()):
        return None
    return int(suffix[:-1]) * unit


def _as_count(value: object) -> int | None:
    """A non-negative int from a JSON value or header string, else ``None``."""
    if type(value) is int:  # the usual JSON case, first (a bool is not of type int)
        return value if value >= 0 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    # isascii: str.isdigit() also accepts digits like "²" that int() refuses.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _retry_after(value: str) -> float | None:
    """Seconds from a ``Retry-After`` header, at most :data:`MAX_BAN`; ``None`` when malformed
    (then treated as absent)."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(seconds, MAX_BAN) if math.isfinite(seconds) and seconds >= 0.0 else None


def _soft_cap(limit: int, reserve: float) -> int:
    """The share of ``limit`` that non-critical requests may use."""
    # Rounded before ceil so that a float product like 600.0000000000001 reserves 600, not 601.
    return limit - math.ceil(round(limit * reserve, 9))


class _Window:
    """One fixed budget of ``limit`` per ``length`` seconds, windows aligned to epoch multiples.

    ``idx`` is the index of the window that ``used`` refers to, as seen from ``now - margin``.
    Charges that the server may count in window ``idx + 1`` instead are carried into it:
    ``next_used`` holds grants made within ``margin`` of the boundary (clock offset), charged to
    both windows at once; ``pending`` holds the other tracked grants of window ``idx`` not yet known
    to have reached the server before the boundary (latency, queueing after ``acquire``).
    At the roll the next window starts from ``next_used + pending``.
    """

    __slots__ = (
        "idx",
        "length",
        "limit",
        "margin",
        "name",
        "next_used",
        "pending",
        "reserve",
        "soft",
        "used",
    )

    def __init__(self, name: str, length: float, limit: int, margin: float, reserve: float) -> None:
        self.name = name
        self.length = length
        # A margin of half a window or more would overlap both neighbours; tiny windows (a learned
        # 1 s limit) get a proportionally smaller one.
        self.margin = min(margin, length / 4.0)
        self.reserve = reserve
        self.limit = limit
        self.soft = _soft_cap(limit, reserve)
        self.idx = -math.inf
        self.used = 0
        self.next_used = 0
        self.pending = 0

    def set_limit(self, limit: int) -> None:
        self.limit = limit
        self.soft = _soft_cap(limit, self.reserve)

    def wait(self, weight: int, now: float, critical: bool) -> float:
        """Rolls to ``now``; 0.0 when ``weight`` fits, else the seconds until the next window."""
        lo = (now - self.margin) // self.length
        if lo > self.idx:
            self.used = self.next_used + self.pending if lo == self.idx + 1.0 else 0
            self.next_used = self.pending = 0
            self.idx = lo
        cap = self.limit if critical else self.soft
        if self.used + weight <= cap:
            return 0.0
        if weight > cap:
            raise self._too_heavy(weight, critical)
        # Also correct when the wall clock stepped back (idx > lo): wait for the window we counted.
        return max((self.idx + 1.0) * self.length + self.margin - now, 0.0) + _EPSILON

    def record(self, weight: int, now: float, track: bool) -> None:
        """Charges ``weight``; call right after :meth:`wait` returned 0.0 for the same ``now``.

        ``track``: the caller will report the answer (:meth:`settle`); until then the grant is
        assumed to reach the server late and is carried into the next window at the roll.
        """
        self.used += weight
        if (now + self.margin) // self.length > self.idx:
            self.next_used += weight
        elif track:
            self.pending += weight

    def settle(self, weight: int, granted_at: float, now: float) -> None:
        """The answer to a tracked grant made at ``granted_at`` arrived at ``now``."""
        granted = (granted_at - self.margin) // self.length
        if (
            granted == self.idx
            and (granted_at + self.margin) // self.length == granted
            # Answered this close to the boundary, the server may have counted it after it.
            and (now + self.margin) // self.length == granted
        ):
            self.pending = max(self.pending - weight, 0)

    def estimate(self, weight: int, total: int, now: float, critical: bool) -> float:
        """Seconds until ``total`` (queued weight ahead plus ``weight``) could have been granted.

        A lower bound that ignores how requests pack into windows; nothing is changed.
        """
        cap = self.limit if critical else self.soft
        if weight > cap:
            raise self._too_heavy(weight, critical)
        used = self.current(now)
        if used + total <= cap:
            return 0.0
        windows = math.ceil((used + total - cap) / max(cap, 1))
        idx = max(self.idx, (now - self.margin) // self.length)
        return max((idx + windows) * self.length + self.margin - now, 0.0) + _EPSILON

    def _roll(self, now: float) -> None:
        lo = (now - self.margin) // self.length
        if lo > self.idx:
            self.used = self.next_used + self.pending if lo == self.idx + 1.0 else 0
            self.next_used = self.pending = 0
            self.idx = lo

    def observe(self, count: int, now: float) -> None:
        """The server's count for the current window wins when it is higher."""
        self._roll(now)
        if count > self.used:
            self.used = count

    def fill(self, now: float) -> None:
        """Treats the current window as exhausted (a 429 without ``Retry-After``)."""
        self._roll(now)
        if self.used < self.limit:
            self.used = self.limit

    def current(self, now: float) -> int:
        """What is charged to the window containing ``now - margin``, without rolling."""
        lo = (now - self.margin) // self.length
        if lo <= self.idx:
            return self.used
        return self.next_used + self.pending if lo == self.idx + 1.0 else 0

    def _too_heavy(self, weight: int, critical: bool) -> ParameterError:
        if critical or self.soft == self.limit:
            detail = f"exceeds the limit {self.limit} of {self.name}"
        else:
            detail = (
                f"exceeds the non-critical share {self.soft} of the limit {self.limit} of "
                f"{self.name} (the rest is the critical reserve)"
            )
        return ParameterError("weight", f"{weight} {detail}; it could never be sent")


class _Pool:
    """One budget: its windows (the first is the primary one) and a 429 closure.

    ``rule`` is the key of an extra per-IP request-count rule that every grant of this pool also
    takes (``max-leverage``), ``None`` for almost every pool.
    """

    __slots__ = ("closed_until", "key", "rule", "windows")

    def __init__(self, key: str, windows: list[_Window], rule: str | None = None) -> None:
        self.key = key
        self.windows = windows
        self.rule = rule
        self.closed_until = 0.0

    def wait(self, weight: int, now: float, critical: bool) -> float:
        wait = self.closed_until - now + _EPSILON if self.closed_until > now else 0.0
        for window in self.windows:
            needed = window.wait(weight, now, critical)
            if needed > wait:
                wait = needed
        return wait

    def record(self, weight: int, now: float, track: bool) -> None:
        for window in self.windows:
            window.record(weight, now, track)

    def settle(self, weight: int, granted_at: float, now: float) -> None:
        for window in self.windows:
            window.settle(weight, granted_at, now)

    def charge(self, weight: int, now: float) -> None:
        """Records ``weight`` granted elsewhere: rolled to ``now``, budget not checked."""
        for window in self.windows:
            window._roll(now)
            window.record(weight, now, False)

    def estimate(self, weight: int, total: int, now: float, critical: bool) -> float:
        wait = self.closed_until - now + _EPSILON if self.closed_until > now else 0.0
        for window in self.windows:
            wait = max(wait, window.estimate(weight, total, now, critical))
        return wait

    def find(self, length: float, *, canonical: bool) -> _Window | None:
        for window in self.windows:
            if window.length == length:
                return window
        if canonical and length == _CANONICAL_WINDOW and self.windows:
            return self.windows[0]
        return None

    def close(self, until: float) -> None:
        if until > self.closed_until:
            self.closed_until = until


class _IPScope:
    """Everything Binance keys by IP: ``API_IP``, the ``SAPI_IP`` pools, the per-IP request rules,
    connection attempts and the ban."""

    __slots__ = ("api", "ban_until", "connects", "label", "pools")

    def __init__(self, label: str, api: _Pool, connects: _Pool) -> None:
        self.label = label
        self.api = api
        self.connects = connects
        self.pools: dict[str, _Pool] = {API_IP_KEY: api}
        self.ban_until = 0.0


class _AccountScope:
    """Everything Binance keys by account: the ``SAPI_UID`` pools and the order counts."""

    __slots__ = ("orders", "pools")

    def __init__(self, orders: _Pool) -> None:
        self.orders = orders
        self.pools: dict[str, _Pool] = {}


class WindowCharge(NamedTuple):
    """One window a request is charged to (see :meth:`LimiterCore.plan`)."""

    #: ``"ip:<label>"`` or ``"account:<label>"``: whose budget it is.
    scope: str
    #: The pool's key (closures by 429 apply to the whole pool).
    pool: str
    #: The window's name (``"API_IP"``, ``"ORDERS:10S"``, an endpoint's pool key...).
    name: str
    #: Window length in seconds (windows are aligned to epoch multiples of it).
    length: float
    #: The most this request may find used, itself included (the limit, or the non-critical share).
    cap: int
    #: What this request adds to the window.
    amount: int
    #: What this core has counted in the window at the ``now`` of the plan.
    used: int = 0
    #: End of the pool's 429 closure known to this core (epoch seconds; 0.0 for none).
    closed_until: float = 0.0


class _Route:
    """Where one request of one pool key, account and IP is charged, resolved once and cached:
    its pool, its IP, the account's order counts and the per-IP request rule (if any)."""

    __slots__ = ("orders", "pool", "rule", "scope")

    def __init__(self, pool: _Pool, scope: _IPScope, orders: _Pool, rule: _Pool | None) -> None:
        self.pool = pool
        self.scope = scope
        self.orders = orders
        self.rule = rule


#: Pool key → per-IP requests per window, from the endpoint table (``max-leverage``: 1 per minute).
_IP_REQUEST_RULES: Final[Mapping[str, int]] = {
    ep.pool_key: ep.ip_requests for ep in ENDPOINTS.values() if ep.ip_requests is not None
}


class LimiterCore:
    """Pure rate-limit accounting: every method takes ``now`` (epoch seconds) and never blocks.

    :meth:`reserve` grants and records a request (returns 0.0) or says how long to wait (nothing
    recorded). Feed it every response (:meth:`on_response`, :meth:`on_ws_response`) so that it
    learns the server's counts, 429 closures and 418 bans. Every method takes keyword-only
    ``account`` and ``ip`` labels (see the module docstring); ``None`` means the defaults.
    Docs: https://developers.binance.com/docs/margin_trading/general-info

    Args:
        api_ip_limit: weight per window shared by ``/api`` and the WebSocket API (per IP).
        sapi_ip_limit: weight per window of each IP-weighted SAPI endpoint (per IP).
        sapi_uid_limit: weight per window of each UID-weighted SAPI endpoint (per account).
        window: length of the weight windows in seconds (Binance: 60; tests shrink it).
        ws_connect_limit: WebSocket connection attempts per ``ws_connect_window`` seconds.
        ws_connect_window: length of the connection-attempt window.
        critical_reserve: share of every budget that only critical requests may use.
        boundary_margin: seconds of clock offset plus one-way latency tolerated around each
            window boundary (see the module docstring); a new window's budget is used only this
            long after the boundary.
        order_limits: initial order-count windows of every account as ``(seconds, limit)``;
            replace one account's with its real ones through :meth:`set_order_limits`.
        ip: the default ``ip`` label (the egress IP these budgets belong to).
    """

    __slots__ = (
        "_accounts",
        "_connect_limit",
        "_connect_window",
        "_default",
        "_ip",
        "_ips",
        "_limits",
        "_margin",
        "_order_limits",
        "_reserve",
        "_routes",
        "_window",
        "trading_symbols",
    )

    def __init__(
        self,
        *,
        api_ip_limit: int = 6000,
        sapi_ip_limit: int = 12000,
        sapi_uid_limit: int = 180000,
        window: float = 60.0,
        ws_connect_limit: int = 300,
        ws_connect_window: float = 300.0,
        critical_reserve: float = 0.1,
        boundary_margin: float = 0.25,
        order_limits: Sequence[tuple[float, int]] = DEFAULT_ORDER_LIMITS,
        ip: str = DEFAULT_IP,
    ) -> None:
        for name, limit in (
            ("api_ip_limit", api_ip_limit),
            ("sapi_ip_limit", sapi_ip_limit),
            ("sapi_uid_limit", sapi_uid_limit),
            ("ws_connect_limit", ws_connect_limit),
        ):
            if limit < 1:
                raise ParameterError(name, "must be at least 1")
        for name, length in (("window", window), ("ws_connect_window", ws_connect_window)):
            if not length > 0.0:
                raise ParameterError(name, "must be a positive number of seconds")
        if not 0.0 <= critical_reserve < 1.0:
            raise ParameterError("critical_reserve", "must be in [0, 1)")
        if not 0.0 <= boundary_margin <= window / 4.0:
            raise ParameterError("boundary_margin", "must be in [0, window / 4]")
        if not isinstance(ip, str) or not ip:
            raise ParameterError("ip", "must be a non-empty label")
        self._margin = boundary_margin
        self._reserve = critical_reserve
        self._window = window
        self._limits: dict[Pool, int] = {
            Pool.API_IP: api_ip_limit,
            Pool.SAPI_IP: sapi_ip_limit,
            Pool.SAPI_UID: sapi_uid_limit,
        }
        self._connect_limit = ws_connect_limit
        self._connect_window = ws_connect_window
        self._order_limits = tuple(order_limits)
        self._ip = ip
        self._ips: dict[str, _IPScope] = {}
        self._accounts: dict[str, _AccountScope] = {}
        # account -> pool key (or "<pool key>\0<ip>" when an ip is given) -> route: two dict hits
        # on the hot path, no tuple to build.
        self._routes: dict[str | None, dict[str, _Route]] = {}
        self._default = self._ip_scope(None)
        #: Number of symbols trading on the exchange: the weight of ``openOrders`` without
        #: ``symbol`` (see :data:`~.endpoints.DEFAULT_TRADING_SYMBOLS`); learned through
        #: :meth:`set_trading_symbols`.
        self.trading_symbols = DEFAULT_TRADING_SYMBOLS

    @property
    def ip(self) -> str:
        """The default ``ip`` label."""
        return self._ip

    # Granting

    def reserve(
        self,
        ep_pool: Pool,
        pool_key: str,
        weight: int,
        now: float,
        *,
        critical: bool = False,
        orders: int = 0,
        track: bool = False,
        account: str | None = None,
        ip: str | None = None,
    ) -> float:
        """Grants and records ``weight`` on ``pool_key`` (and ``orders`` order counts) if it fits.

        Returns 0.0 when granted and recorded, else the seconds to wait before it could be granted
        (nothing recorded; call again then). A pool closed by a 429 returns the time to its
        reopening. Non-critical requests may use only ``(1 - critical_reserve)`` of each budget.
        ``SAPI_UID`` pools and order counts are charged to ``account``, the others to ``ip``.

        ``track=True`` promises a :meth:`settle` call when the answer arrives: until then the
        request may still be queued or on the wire, so if a window boundary passes first it is
        also charged to the next window (the server counts it when it processes it).

        Raises:
            IPBanned: the IP is known to be banned (never send into a known ban).
            ParameterError: ``weight`` can never fit (larger than the limit, or than the
                non-critical share for a non-critical request), or is negative.
        """
        return self._grant(
            self._route(ep_pool, pool_key, account, ip), weight, now, critical, orders, track
        )

    def settle(
        self,
        pool_key: str,
        weight: int,
        granted_at: float,
        now: float,
        *,
        orders: int = 0,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """The answer to a request granted by ``reserve(..., track=True)`` at ``granted_at``."

        A request answered well before the window boundary was certainly counted in its own
        window, so it is no longer carried into the next one.
        """
        scope = self._ip_scope(ip)
        account_scope = self._accounts.get(account or DEFAULT_ACCOUNT)
        pool = scope.pools.get(pool_key)
        if pool is None and account_scope is not None:
            pool = account_scope.pools.get(pool_key)
        if pool is not None:
            pool.settle(weight, granted_at, now)
        if orders and account_scope is not None:
            account_scope.orders.settle(orders, granted_at, now)

    def reserve_connect(self, now: float, *, ip: str | None = None) -> float:
        """Like :meth:`reserve` for one WebSocket connection attempt (plus its 2 ``API_IP`` weight).

        Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/rate-limits
        """
        return self._grant_connect(self._ip_scope(ip), now)

    def estimate(
        self,
        ep_pool: Pool,
        pool_key: str,
        weight: int,
        now: float,
        *,
        critical: bool = False,
        orders: int = 0,
        ahead: int = 0,
        orders_ahead: int = 0,
        account: str | None = None,
        ip: str | None = None,
    ) -> float:
        """Lower bound of the wait for a request queued behind ``ahead`` weight (nothing recorded).

        Used to refuse a request whose wait would exceed ``max_wait`` without waiting at all.
        Raises like :meth:`reserve`.
        """
        route = self._route(ep_pool, pool_key, account, ip)
        return self._estimate(route, weight, now, critical, orders, ahead, orders_ahead)

    def estimate_connect(self, now: float, *, ahead: int = 0, ip: str | None = None) -> float:
        """:meth:`estimate` for a connection attempt queued behind ``ahead`` attempts."""
        return self._estimate_connect(self._ip_scope(ip), now, ahead)

    # Feedback

    def on_response(
        self,
        ep_pool: Pool,
        pool_key: str,
        status: int,
        headers: Mapping[str, str],
        now: float,
        *,
        counts_order: bool = False,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Learns from one REST response of an endpoint charged to ``pool_key``.

        ``X-MBX-USED-WEIGHT-<n><S|M|H|D>`` update ``API_IP``; ``X-SAPI-USED-IP-WEIGHT-1M`` and
        ``X-SAPI-USED-UID-WEIGHT-1M`` the endpoint's own pool; ``X-MBX-ORDER-COUNT-*`` the order
        counts. 429 closes the pool until ``Retry-After`` (to the end of its window when absent;
        for order-placing endpoints, whose order-count 429s come without it, the shortest
        order-count window instead); 418 bans the IP until ``Retry-After`` (2 minutes when absent).
        Both are capped at :data:`MAX_BAN`.
        Docs: https://developers.binance.com/docs/margin_trading/general-info
        """
        route = self._route(ep_pool, pool_key, account, ip)
        self._on_response(route, ep_pool, status, headers, now, counts_order)

    def on_ws_response(
        self,
        status: int,
        rate_limits: Sequence[Mapping[str, Any]] | None,
        error_data: Mapping[str, Any] | None,
        now: float,
        *,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Learns from one WebSocket API response (``status``, ``rateLimits``, ``error.data``).

        ``REQUEST_WEIGHT`` counts go to the IP's ``API_IP`` pool, ``ORDERS`` counts to the
        account. 429 closes ``API_IP`` until ``error.data.retryAfter`` (epoch ms) or the end of the
        window; 418 bans the IP until ``retryAfter`` (2 minutes when absent); both capped at
        :data:`MAX_BAN` from ``now``.
        Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/rate-limits
        """
        scope = self._ip_scope(ip)
        if rate_limits:
            self._observe_rate_limits(rate_limits, now, scope, account, replace_orders=False)
        if status != 429 and status != 418:
            return
        until: float | None = None
        if error_data is not None:
            retry_ms = error_data.get("retryAfter")
            if (
                isinstance(retry_ms, int | float)
                and not isinstance(retry_ms, bool)
                and math.isfinite(retry_ms)
            ):
                # Server epoch: the margin absorbs the clock offset.
                until = min(retry_ms / 1000.0 + self._margin, now + MAX_BAN)
        if status == 418:
            self._ban(scope, until if until is not None else now + _DEFAULT_BAN, now)
        elif until is not None:
            scope.api.close(until)
        else:
            scope.api.windows[0].fill(now)

    def set_order_limits(
        self, rate_limits: Sequence[Mapping[str, Any]], now: float, *, account: str | None = None
    ) -> None:
        """Replaces ``account``'s order-count windows with its real ones, and takes their counts.

        ``rate_limits`` is the JSON list of ``GET /sapi/v1/margin/rateLimit/order``:
        ``[{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10000,
        "count": 0}, ...]``. Entries of other types are ignored; windows not listed are dropped.
        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Current-Margin-Order-Count-Usage
        """
        self._observe_rate_limits(
            rate_limits, now, self._default, account, replace_orders=True, orders_only=True
        )

    def set_trading_symbols(self, count: int) -> None:
        """Sets the number of symbols trading on the exchange (the weight of ``openOrders``
        without ``symbol``), e.g. the length of ``GET /sapi/v1/margin/allPairs``.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ParameterError("count", "must be a positive int")
        self.trading_symbols = count

    def ban(self, until: float, *, now: float | None = None, ip: str | None = None) -> None:
        """Records an IP ban until ``until`` (epoch seconds); it never shortens a known ban.

        With ``now``, the ban is capped at ``now + MAX_BAN`` (a body's "banned until" is the
        server's word, but never worth more than Binance's longest ban).
        """
        scope = self._ip_scope(ip)
        self._ban(scope, until, now)

    # Introspection

    @property
    def banned_until(self) -> float:
        """End of the known ban of the default IP in epoch seconds (0.0 when none was seen)."""
        return self._default.ban_until

    def banned_until_for(self, ip: str | None = None) -> float:
        """End of the known ban of ``ip`` in epoch seconds (0.0 when none was seen)."""
        return self._ip_scope(ip).ban_until

    def check_ban(self, now: float, pool_key: str, *, ip: str | None = None) -> None:
        """Raises :class:`~.errors.IPBanned` (naming ``pool_key``) when ``ip`` is known to be
        banned at ``now``: for a limiter that grants from a shared store and skips :meth:`reserve`.
        """
        scope = self._ip_scope(ip)
        if now < scope.ban_until:
            raise self._banned(scope, pool_key, now)

    def usage(
        self, now: float, *, account: str | None = None, ip: str | None = None
    ) -> dict[str, int]:
        """Pool key → weight (or count) charged to the current primary window, for summaries.

        The pools of one ``ip`` and one ``account``: order counts appear as
        ``"ORDERS:10S"``/``"ORDERS:1D"``, connection attempts as ``"WS_CONNECT"``.
        """
        scope = self._ip_scope(ip)
        account_scope = self._account_scope(account)
        result = {key: pool.windows[0].current(now) for key, pool in scope.pools.items()}
        for key, pool in account_scope.pools.items():
            result[key] = pool.windows[0].current(now)
        for window in account_scope.orders.windows:
            result[window.name] = window.current(now)
        result[WS_CONNECT_KEY] = scope.connects.windows[0].current(now)
        return result

    # For limiters that keep the counts elsewhere (RedisRateLimiter)

    def plan(
        self,
        ep_pool: Pool | None,
        pool_key: str,
        weight: int,
        *,
        critical: bool = False,
        orders: int = 0,
        account: str | None = None,
        ip: str | None = None,
        now: float = 0.0,
    ) -> list[WindowCharge]:
        """Every window one request is charged to, with its limit: the same model as
        :meth:`reserve`, for a limiter that keeps the counts in a shared store.

        ``ep_pool=None`` plans one WebSocket connection attempt of ``ip``. Raises
        :class:`~.errors.ParameterError` like :meth:`reserve` for a weight that can never fit.
        Each charge also carries what this core counted in its window at ``now``.
        """
        # A connection attempt (ep_pool None) is charged to its IP's scope: route the API pool.
        route = self._route(
            ep_pool or Pool.API_IP, pool_key if ep_pool else API_IP_KEY, account, ip
        )
        scope = route.scope
        ip_scope = f"ip:{scope.label}"
        account_scope = f"account:{account or DEFAULT_ACCOUNT}"
        if ep_pool is None:
            parts = [
                (ip_scope, scope.connects, 1, True),
                (ip_scope, scope.api, WS_CONNECT_WEIGHT, True),
            ]
        else:
            if weight < 0:
                raise ParameterError("weight", "must not be negative")
            pool_scope = account_scope if ep_pool == Pool.SAPI_UID else ip_scope
            parts = [(pool_scope, route.pool, weight, critical)]
            if route.rule is not None:
                parts.append((ip_scope, route.rule, 1, critical))
            if orders:
                parts.append((account_scope, route.orders, orders, critical))
        charges: list[WindowCharge] = []
        for where, pool, amount, crit in parts:
            for window in pool.windows:
                cap = window.limit if crit else window.soft
                if amount > cap:
                    raise window._too_heavy(amount, crit)
                charges.append(
                    WindowCharge(
                        where,
                        pool.key,
                        window.name,
                        window.length,
                        cap,
                        amount,
                        window.current(now),
                        pool.closed_until,
                    )
                )
        return charges

    def bans(self, now: float) -> dict[str, float]:
        """``ip`` label → end of its ban (epoch seconds), for every IP banned at ``now``."""
        return {label: s.ban_until for label, s in self._ips.items() if s.ban_until > now}

    def spent(self, now: float) -> list[WindowCharge]:
        """Every window with something counted at ``now``, as charges of what was counted."""
        scopes: list[tuple[str, list[_Pool]]] = [
            (f"ip:{label}", [*scope.pools.values(), scope.connects])
            for label, scope in self._ips.items()
        ]
        scopes += [
            (f"account:{label}", [*scope.pools.values(), scope.orders])
            for label, scope in self._accounts.items()
        ]
        found: list[WindowCharge] = []
        for where, pools in scopes:
            # An alias of the API pool is the same pool: count it once.
            for pool in {id(pool): pool for pool in pools}.values():
                for window in pool.windows:
                    used = window.current(now)
                    if used > 0:
                        found.append(
                            WindowCharge(
                                where, pool.key, window.name, window.length, window.limit, 0, used
                            )
                        )
        return found

    def record(
        self,
        ep_pool: Pool | None,
        pool_key: str,
        weight: int,
        now: float,
        *,
        orders: int = 0,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Charges a request granted elsewhere (by a shared limiter) without checking the budget,
        so that this core knows what this process spent (``ep_pool=None``: a connection attempt).
        """
        route = self._route(
            ep_pool or Pool.API_IP, pool_key if ep_pool else API_IP_KEY, account, ip
        )
        if ep_pool is None:
            route.scope.connects.charge(1, now)
            route.scope.api.charge(WS_CONNECT_WEIGHT, now)
            return
        route.pool.charge(weight, now)
        if route.rule is not None:
            route.rule.charge(1, now)
        if orders:
            route.orders.charge(orders, now)

    # Internals shared with the asyncio shell (same module): resolved pools, no lookups twice

    def _ip_scope(self, ip: str | None) -> _IPScope:
        label = ip or self._ip
        scope = self._ips.get(label)
        if scope is None:
            if not isinstance(label, str):
                raise ParameterError("ip", "must be a str label")
            api = _Pool(
                API_IP_KEY, [self._new_window(API_IP_KEY, self._window, self._limits[Pool.API_IP])]
            )
            # Connection attempts are never refused for a critical reserve: a reconnect is what
            # keeps the user's fills flowing, so it always counts as critical.
            connects = _Pool(
                WS_CONNECT_KEY,
                [self._new_window(WS_CONNECT_KEY, self._connect_window, self._connect_limit)],
            )
            scope = self._ips[label] = _IPScope(label, api, connects)
        return scope

    def _account_scope(self, account: str | None) -> _AccountScope:
        label = account or DEFAULT_ACCOUNT
        scope = self._accounts.get(label)
        if scope is None:
            if not isinstance(label, str):
                raise ParameterError("account", "must be a str label")
            orders = _Pool(
                ORDERS_KEY,
                [self._order_window(length, limit) for length, limit in self._order_limits],
            )
            scope = self._accounts[label] = _AccountScope(orders)
        return scope

    def _route(self, ep_pool: Pool, pool_key: str, account: str | None, ip: str | None) -> _Route:
        routes = self._routes.get(account)
        if routes is None:
            routes = self._routes[account] = {}
        key = pool_key if ip is None else f"{pool_key}\0{ip}"
        route = routes.get(key)
        if route is None:
            scope = self._ip_scope(ip)
            account_scope = self._account_scope(account)
            pool = self._pool(ep_pool, pool_key, account_scope, scope)
            rule = self._rule(scope, pool.rule, pool_key) if pool.rule is not None else None
            route = routes[key] = _Route(pool, scope, account_scope.orders, rule)
        return route

    def _endpoint_route(self, endpoint: Endpoint, account: str | None, ip: str | None) -> _Route:
        # Hot path of the asyncio shell: a known route of the default IP is found without
        # building its key.
        if ip is None:
            routes = self._routes.get(account)
            if routes is not None:
                route = routes.get(endpoint.pool_key)
                if route is not None:
                    return route
        return self._route(endpoint.pool, endpoint.pool_key, account, ip)

    def _pool(self, ep_pool: Pool, pool_key: str, account: _AccountScope, scope: _IPScope) -> _Pool:
        pools = account.pools if ep_pool == Pool.SAPI_UID else scope.pools
        pool = pools.get(pool_key)
        if pool is None:
            if ep_pool == Pool.API_IP:
                pool = scope.api
            else:
                limit = self._limits[Pool(ep_pool)]
                pool = _Pool(
                    pool_key,
                    [self._new_window(pool_key, self._window, limit)],
                    f"{IP_REQUESTS_KEY}:{pool_key.partition(':')[2]}"
                    if pool_key in _IP_REQUEST_RULES
                    else None,
                )
            pools[pool_key] = pool
        return pool

    def _rule(self, scope: _IPScope, key: str, pool_key: str) -> _Pool:
        rule = scope.pools.get(key)
        if rule is None:
            # A count of requests, not weight: no critical reserve (it would leave 0 of 1).
            window = _Window(key, self._window, _IP_REQUEST_RULES[pool_key], self._margin, 0.0)
            rule = scope.pools[key] = _Pool(key, [window])
        return rule

    def _grant(
        self, route: _Route, weight: int, now: float, critical: bool, orders: int, track: bool
    ) -> float:
        scope = route.scope
        pool = route.pool
        if now < scope.ban_until:
            raise self._banned(scope, pool.key, now)
        if weight < 0:
            raise ParameterError("weight", "must not be negative")
        wait = pool.wait(weight, now, critical)
        rule = route.rule
        if rule is not None:
            needed = rule.wait(1, now, critical)
            if needed > wait:
                wait = needed
        if orders:
            needed = route.orders.wait(orders, now, critical)
            if needed > wait:
                wait = needed
        if wait > 0.0:
            return wait
        pool.record(weight, now, track)
        if rule is not None:
            rule.record(1, now, track)
        if orders:
            route.orders.record(orders, now, track)
        return 0.0

    def _grant_connect(self, scope: _IPScope, now: float) -> float:
        if now < scope.ban_until:
            raise self._banned(scope, WS_CONNECT_KEY, now)
        wait = max(
            scope.connects.wait(1, now, True),
            scope.api.wait(WS_CONNECT_WEIGHT, now, True),
        )
        if wait > 0.0:
            return wait
        # Untracked: the handshake's answer is not reported, and attempts are few.
        scope.connects.record(1, now, False)
        scope.api.record(WS_CONNECT_WEIGHT, now, False)
        return 0.0

    def _estimate(
        self,
        route: _Route,
        weight: int,
        now: float,
        critical: bool,
        orders: int,
        ahead: int,
        orders_ahead: int,
    ) -> float:
        scope = route.scope
        pool = route.pool
        if now < scope.ban_until:
            raise self._banned(scope, pool.key, now)
        wait = pool.estimate(weight, ahead + weight, now, critical)
        if route.rule is not None:
            # Requests queued ahead on this pool each take one request of the rule too.
            requests = 1 + (ahead // weight if weight else 0)
            wait = max(wait, route.rule.estimate(1, requests, now, critical))
        if orders:
            wait = max(wait, route.orders.estimate(orders, orders_ahead + orders, now, critical))
        return wait

    def _estimate_connect(self, scope: _IPScope, now: float, ahead: int) -> float:
        if now < scope.ban_until:
            raise self._banned(scope, WS_CONNECT_KEY, now)
        attempts = ahead + 1
        return max(
            scope.connects.estimate(1, attempts, now, True),
            scope.api.estimate(WS_CONNECT_WEIGHT, WS_CONNECT_WEIGHT * attempts, now, True),
        )

    def _on_response(
        self,
        route: _Route,
        ep_pool: Pool,
        status: int,
        headers: Mapping[str, str],
        now: float,
        counts_order: bool,
    ) -> None:
        pool = route.pool
        retry_after: float | None = None
        for name, value in headers.items():
            role = _HEADER_ROLES.get(name)
            if role is None:
                role = _header_role(name)
            if not role:
                continue
            if role == "retry-after":
                retry_after = _retry_after(value)
            else:
                self._observe_header(role, value, route, ep_pool, now)
        if status == 429:
            orders = route.orders if counts_order else None
            if retry_after is not None:
                pool.close(now + retry_after)
                if orders is not None:
                    # Cannot tell a weight 429 from an order-count one: hold both.
                    orders.close(now + retry_after)
            elif orders is not None and orders.windows:
                min(orders.windows, key=_window_length).fill(now)
            else:
                pool.windows[0].fill(now)
        elif status == 418:
            until = now + (retry_after if retry_after is not None else _DEFAULT_BAN)
            self._ban(route.scope, until, now)

    def _ban(self, scope: _IPScope, until: float, now: float | None) -> None:
        if now is not None and until > now + MAX_BAN:
            until = now + MAX_BAN
        if until > scope.ban_until:
            scope.ban_until = until

    def _new_window(self, name: str, length: float, limit: int) -> _Window:
        return _Window(name, length, limit, self._margin, self._reserve)

    def _order_window(self, length: float, limit: int) -> _Window:
        return self._new_window(f"{ORDERS_KEY}:{_label(length)}", length, limit)

    @staticmethod
    def _banned(scope: _IPScope, pool_key: str, now: float) -> IPBanned:
        return IPBanned(scope.ban_until, retry_after=scope.ban_until - now, pool=pool_key)

    def _observe_header(
        self,
        name: str,
        value: str,
        route: _Route,
        ep_pool: Pool,
        now: float,
    ) -> None:
        target: _Pool
        pool = route.pool
        if name.startswith(_MBX_WEIGHT):
            target, suffix = route.scope.api, name[len(_MBX_WEIGHT) :]
        elif name.startswith(_ORDER_COUNT):
            target, suffix = route.orders, name[len(_ORDER_COUNT) :]
        elif ep_pool == Pool.API_IP:
            # SAPI counts describe one endpoint's own pool; never mix them into the shared one.
            return
        # Either SAPI header is this endpoint's own count, even where the endpoint table names
        # the other kind of pool (Binance has moved endpoints between IP and UID before).
        elif name.startswith(_SAPI_IP_WEIGHT):
            target, suffix = pool, name[len(_SAPI_IP_WEIGHT) :]
        elif name.startswith(_SAPI_UID_WEIGHT):
            target, suffix = pool, name[len(_SAPI_UID_WEIGHT) :]
        else:
            return
        length = _header_interval(suffix)
        count = _as_count(value.strip())
        if length is None or count is None:
            return
        # Headers for an interval with no known limit (no matching window) carry nothing usable.
        window = target.find(length, canonical=target.key != ORDERS_KEY)
        if window is not None:
            window.observe(count, now)

    def _observe_rate_limits(
        self,
        rate_limits: Sequence[object],
        now: float,
        scope: _IPScope,
        account: str | None,
        *,
        replace_orders: bool,
        orders_only: bool = False,
    ) -> None:
        orders = self._account_scope(account).orders
        order_windows: list[_Window] = []
        for item in rate_limits:
            # Decoded JSON straight from the wire: skip anything that is not an object.
            if type(item) is not dict and not isinstance(item, Mapping):
                continue
            interval = item.get("interval")
            unit = _WS_INTERVAL.get(interval) if isinstance(interval, str) else None
            num = _as_count(item.get("intervalNum"))
            limit = _as_count(item.get("limit"))
            if unit is None or not num or not limit:
                continue
            length = unit * num
            kind = item.get("rateLimitType")
            if kind == "REQUEST_WEIGHT" and not orders_only:
                window = scope.api.find(length, canonical=True)
                if window is None:
                    window = self._new_window(f"{API_IP_KEY}:{_label(length)}", length, limit)
                    scope.api.windows.append(window)
                elif limit < window.limit:
                    # The constructor limit is an upper bound the user chose (e.g. to leave room
                    # for another process on the IP): the server may lower it, never raise it.
                    window.set_limit(limit)
            elif kind == "ORDERS":
                window = orders.find(length, canonical=False) or self._order_window(length, limit)
                # The default order limits are documentation examples: the server's replace them.
                if window.limit != limit:
                    window.set_limit(limit)
                if window not in orders.windows:
                    orders.windows.append(window)
                order_windows.append(window)
            else:
                # RAW_REQUESTS and future types are not modelled (no per-request accounting).
                continue
            count = _as_count(item.get("count"))
            if count is not None:
                window.observe(count, now)
        if replace_orders:
            orders.windows = order_windows


def _window_length(window: _Window) -> float:
    return window.length


class Limiter(Protocol):
    """What clients, streams and trading sessions need from a rate limiter.

    :class:`RateLimiter` (one process) and ``RedisRateLimiter`` (many processes and hosts, in
    :mod:`binance_margin_async.redis`) both satisfy it. ``account`` and ``ip`` are labels (see
    the module docstring); ``None`` means the limiter's defaults.
    """

    @property
    def trading_symbols(self) -> int:
        """Number of symbols trading on the exchange (weight of ``openOrders`` without symbol)."""
        ...

    async def acquire(
        self,
        endpoint: Endpoint,
        weight: int,
        *,
        critical: bool | None = None,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Waits until ``weight`` may be sent to ``endpoint`` and records it."""
        ...

    def on_response(
        self,
        endpoint: Endpoint,
        status: int,
        headers: Mapping[str, str],
        *,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Learns from one REST response (same task as its :meth:`acquire`)."""
        ...

    async def acquire_ws(
        self,
        weight: int,
        *,
        critical: bool = False,
        orders: int = 0,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Waits for one WebSocket API request (``API_IP`` weight, and ``orders`` order counts)."""
        ...

    async def acquire_ws_connect(self, *, ip: str | None = None) -> None:
        """Waits for one WebSocket connection attempt."""
        ...

    def on_ws_response(
        self,
        status: int,
        rate_limits: Sequence[Mapping[str, Any]] | None,
        error_data: Mapping[str, Any] | None,
        *,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Learns from one WebSocket API response."""
        ...

    def set_order_limits(
        self, rate_limits: Sequence[Mapping[str, Any]], *, account: str | None = None
    ) -> None:
        """Takes the account's order-count limits and counts."""
        ...

    def set_trading_symbols(self, count: int) -> None:
        """Sets the number of symbols trading on the exchange."""
        ...

    def ban(self, until: float, *, ip: str | None = None) -> None:
        """Records an IP ban until ``until`` (epoch seconds)."""
        ...

    def usage(self, *, account: str | None = None, ip: str | None = None) -> dict[str, int]:
        """Pool key → weight used in the current window, for one IP and one account."""
        ...


#: The last tracked grant of :meth:`RateLimiter.acquire` in this task, settled by
#: :meth:`RateLimiter.on_response` in the same task: a context variable pairs a response with its
#: grant without changing the acquire/on_response signatures. The grant is a list
#: ``[core, route, weight, orders, grant time]`` (a list, not an object: this is the hot path);
#: settling sets ``core`` to ``None``, so a task spawned after the grant, which inherits the same
#: list, cannot settle it a second time.
_GRANT: ContextVar[list[Any] | None] = ContextVar("binance_margin_async_grant", default=None)


class _Waiter:
    __slots__ = ("future", "orders", "weight")

    def __init__(self, future: asyncio.Future[None], weight: int, orders: int) -> None:
        self.future = future
        self.weight = weight
        self.orders = orders


class _Queue:
    """Waiters of one pool: critical ones are served before non-critical ones, each FIFO."""

    __slots__ = ("critical", "critical_idle", "normal", "orders", "weight")

    def __init__(self) -> None:
        self.critical: deque[_Waiter] = deque()
        self.normal: deque[_Waiter] = deque()
        # Queued weight/order counts, [critical, normal], for the max_wait estimate.
        self.weight = [0, 0]
        self.orders = [0, 0]
        # Resolved when the critical queue drains; the non-critical head waits on it.
        self.critical_idle: asyncio.Future[None] | None = None


class RateLimiter:
    """Asyncio shell over :class:`LimiterCore`; one instance may be shared by several clients.

    Share one instance between every client and stream of one process: budgets are kept per IP
    (``ip`` label) and per account (``account`` label, which :class:`~.rest.MarginClient` passes
    for its key), so clients of several accounts each get their account's full UID budget and
    order counts while sharing the IP's. ``acquire`` is called right before each request is sent
    and ``on_response`` right after it is answered, in the same task (that pairs the answer with
    its grant; see the module docstring).

    Waiting: per pool, waiters are served FIFO, critical ones before non-critical ones; only
    the head of each queue sleeps on a timer (no thundering herd). A request whose wait would
    exceed ``max_wait`` is refused at once with :class:`~.errors.RateLimited` (nothing sent,
    nothing slept); during a known IP ban every request raises :class:`~.errors.IPBanned`.
    Cancelling a waiting ``acquire`` leaves nothing recorded and no stuck waiter.

    Args:
        max_wait: longest wait (seconds) before a request is refused locally.
        ip: the default ``ip`` label: the egress IP of this process (any stable string).
        clock: returns epoch seconds (default :func:`time.time`; tests inject a fake).
        sleep: awaited to wait (default :func:`asyncio.sleep`; tests inject a fake).
        The other arguments are :class:`LimiterCore`'s.
    Docs: https://developers.binance.com/docs/margin_trading/general-info
    """

    __slots__ = ("_clock", "_core", "_max_wait", "_queues", "_sleep")

    def __init__(
        self,
        *,
        max_wait: float = 30.0,
        api_ip_limit: int = 6000,
        sapi_ip_limit: int = 12000,
        sapi_uid_limit: int = 180000,
        window: float = 60.0,
        ws_connect_limit: int = 300,
        ws_connect_window: float = 300.0,
        critical_reserve: float = 0.1,
        boundary_margin: float = 0.25,
        ip: str = DEFAULT_IP,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not max_wait >= 0.0:
            raise ParameterError("max_wait", "must be a non-negative number of seconds")
        self._core = LimiterCore(
            api_ip_limit=api_ip_limit,
            sapi_ip_limit=sapi_ip_limit,
            sapi_uid_limit=sapi_uid_limit,
            window=window,
            ws_connect_limit=ws_connect_limit,
            ws_connect_window=ws_connect_window,
            critical_reserve=critical_reserve,
            boundary_margin=boundary_margin,
            ip=ip,
        )
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._queues: dict[_Pool, _Queue] = {}

    @property
    def core(self) -> LimiterCore:
        """The pure accounting state (for inspection and advanced feeding)."""
        return self._core

    @property
    def trading_symbols(self) -> int:
        """Number of symbols trading on the exchange (see :meth:`set_trading_symbols`)."""
        return self._core.trading_symbols

    async def acquire(
        self,
        endpoint: Endpoint,
        weight: int,
        *,
        critical: bool | None = None,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Waits until ``weight`` may be sent to ``endpoint`` and records it.

        ``critical`` defaults to ``endpoint.critical``. Order-placing endpoints also take one
        order count of ``account``.

        Raises:
            RateLimited: the wait would exceed ``max_wait`` (nothing sent; ``retry_after`` set).
            IPBanned: the IP is known to be banned.
            ParameterError: ``weight`` can never fit the pool.
        """
        if critical is None:
            critical = endpoint.critical
        core = self._core
        route = core._endpoint_route(endpoint, account, ip)
        orders = endpoint.orders
        queue = self._queues.get(route.pool)
        now = self._clock()
        # Fast path: nobody queued ahead (critical requests only queue behind critical ones).
        if (
            queue is None or not (queue.critical or (queue.normal and not critical))
        ) and core._grant(route, weight, now, critical, orders, True) == 0.0:
            _GRANT.set([core, route, weight, orders, now])
            return
        now = await self._wait_turn(route, weight, critical, orders, True)
        _GRANT.set([core, route, weight, orders, now])

    async def acquire_ws(
        self,
        weight: int,
        *,
        critical: bool = False,
        orders: int = 0,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """:meth:`acquire` for one WebSocket API request (charged to the ``API_IP`` pool of ``ip``,
        and ``orders`` order counts to ``account`` for an order placed over the WebSocket API).

        Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/rate-limits
        """
        core = self._core
        route = core._route(Pool.API_IP, API_IP_KEY, account, ip)
        queue = self._queues.get(route.pool)
        if (
            queue is None or not (queue.critical or (queue.normal and not critical))
        ) and core._grant(route, weight, self._clock(), critical, orders, False) == 0.0:
            return
        # Untracked: WS API answers are read by another task, so they cannot be paired.
        await self._wait_turn(route, weight, critical, orders, False)

    async def acquire_ws_connect(self, *, ip: str | None = None) -> None:
        """Waits for one WebSocket connection attempt (300 / 5 min per IP, plus 2 ``API_IP``).

        Call it before every connect, including reconnects. Raises like :meth:`acquire`.
        Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/rate-limits
        """
        route = self._core._route(Pool.API_IP, API_IP_KEY, None, ip)
        if (
            route.scope.connects not in self._queues
            and self._core._grant_connect(route.scope, self._clock()) == 0.0
        ):
            return
        await self._wait_turn(route, WS_CONNECT_WEIGHT, True, 0, False, connect=True)

    def on_response(
        self,
        endpoint: Endpoint,
        status: int,
        headers: Mapping[str, str],
        *,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Learns from one REST response of ``endpoint`` (see :meth:`LimiterCore.on_response`).

        Call it from the task that called :meth:`acquire` for this request, with the same
        ``account`` and ``ip``: the grant is then settled, so that a request answered well before
        a window boundary is not also charged to the next window.
        """
        now = self._clock()
        core = self._core
        route = core._endpoint_route(endpoint, account, ip)
        grant = _GRANT.get()
        if grant is not None and grant[0] is core and grant[1] is route:
            grant[0] = None
            route.pool.settle(grant[2], grant[4], now)
            if grant[3]:
                route.orders.settle(grant[3], grant[4], now)
        core._on_response(route, endpoint.pool, status, headers, now, endpoint.orders > 0)

    def on_ws_response(
        self,
        status: int,
        rate_limits: Sequence[Mapping[str, Any]] | None,
        error_data: Mapping[str, Any] | None,
        *,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Learns from one WebSocket API response (see :meth:`LimiterCore.on_ws_response`)."""
        self._core.on_ws_response(
            status, rate_limits, error_data, self._clock(), account=account, ip=ip
        )

    def set_order_limits(
        self, rate_limits: Sequence[Mapping[str, Any]], *, account: str | None = None
    ) -> None:
        """Takes ``account``'s order-count limits from ``GET /sapi/v1/margin/rateLimit/order``.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Current-Margin-Order-Count-Usage
        """
        self._core.set_order_limits(rate_limits, self._clock(), account=account)

    def set_trading_symbols(self, count: int) -> None:
        """Sets the number of symbols trading on the exchange: the weight of
        ``GET /sapi/v1/margin/openOrders`` without ``symbol``.

        Docs: https://developers.binance.com/docs/margin_trading/trade/Query-Margin-Account-Open-Orders
        """
        self._core.set_trading_symbols(count)

    def ban(self, until: float, *, ip: str | None = None) -> None:
        """Records an IP ban until ``until`` (epoch seconds), e.g. from a ``-1003`` message body;
        capped at :data:`MAX_BAN` from now."""
        self._core.ban(until, now=self._clock(), ip=ip)

    def usage(self, *, account: str | None = None, ip: str | None = None) -> dict[str, int]:
        """Pool key → weight used in the current window, for one ``ip`` and one ``account``
        (see :meth:`LimiterCore.usage`)."""
        return self._core.usage(self._clock(), account=account, ip=ip)

    def queued(self) -> dict[str, int]:
        """Pool key → number of ``acquire`` calls currently waiting (for diagnostics)."""
        result: dict[str, int] = {}
        for pool, q in self._queues.items():
            result[pool.key] = result.get(pool.key, 0) + len(q.critical) + len(q.normal)
        return result

    # The slow path

    async def _wait_turn(
        self,
        route: _Route,
        weight: int,
        critical: bool,
        orders: int,
        track: bool,
        *,
        connect: bool = False,
    ) -> float:
        """Queues, waits for the turn and the budget, and returns the grant time.

        ``connect``: a WebSocket connection attempt of ``route``'s IP (queued on its own pool).
        """
        core = self._core
        scope = route.scope
        pool = scope.connects if connect else route.pool
        queue = self._queues.get(pool)
        now = self._clock()
        # Everything queued ahead will be served first: refuse now if that already takes too long.
        ahead = orders_ahead = 0
        if queue is not None:
            ahead = queue.weight[0] + (0 if critical else queue.weight[1])
            orders_ahead = queue.orders[0] + (0 if critical else queue.orders[1])
        if connect:
            wait = core._estimate_connect(scope, now, ahead // WS_CONNECT_WEIGHT)
        else:
            wait = core._estimate(route, weight, now, critical, orders, ahead, orders_ahead)
        if wait > self._max_wait:
            raise RateLimited(retry_after=wait, pool=pool.key)
        deadline = now + self._max_wait
        if queue is None:
            queue = self._queues[pool] = _Queue()
        lane = queue.critical if critical else queue.normal
        slot = 0 if critical else 1
        waiter = _Waiter(asyncio.get_running_loop().create_future(), weight, orders)
        lane.append(waiter)
        queue.weight[slot] += weight
        queue.orders[slot] += orders
        try:
            if lane[0] is not waiter:
                await waiter.future
            while True:
                if not critical and queue.critical:
                    # Only this head awaits it, so any earlier one is already done.
                    queue.critical_idle = asyncio.get_running_loop().create_future()
                    await queue.critical_idle
                    continue
                now = self._clock()
                if connect:
                    wait = core._grant_connect(scope, now)
                else:
                    wait = core._grant(route, weight, now, critical, orders, track)
                if wait == 0.0:
                    return now
                if self._clock() + wait > deadline:
                    raise RateLimited(retry_after=wait, pool=pool.key)
                await self._sleep(wait)
        finally:
            self._leave(pool, queue, lane, waiter, slot)

    def _leave(
        self, pool: _Pool, queue: _Queue, lane: deque[_Waiter], waiter: _Waiter, slot: int
    ) -> None:
        """Removes ``waiter`` (granted, refused or cancelled) and hands the turn on."""
        if lane[0] is waiter:
            lane.popleft()
            if lane and not lane[0].future.done():
                lane[0].future.set_result(None)
        else:
            lane.remove(waiter)
        queue.weight[slot] -= waiter.weight
        queue.orders[slot] -= waiter.orders
        if not queue.critical:
            idle = queue.critical_idle
            if idle is not None and not idle.done():
                idle.set_result(None)
            if not queue.normal and self._queues.get(pool) is queue:
                del self._queues[pool]
