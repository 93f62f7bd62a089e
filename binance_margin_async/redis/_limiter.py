"""`RedisRateLimiter`: one rate budget shared by every process and host, kept in Redis.

The model is :class:`~binance_margin_async.ratelimit.LimiterCore`'s (it plans every request:
which windows, which limits, which critical share), only the counts live in Redis:

* **Pools keyed as Binance keys them.** IP pools, connection attempts, per-IP request rules and
  bans under ``ip:<label>`` (the ``ip=`` label: give every process behind one egress IP the same
  one; by default the local address this host uses to reach Redis), UID pools and order counts
  under ``account:<label>`` (the client's ``account`` label).
* **Fixed windows on Redis server time.** Windows are aligned to multiples of their length on the
  clock of the Redis server (``TIME``), so hosts with skewed clocks agree. A request is charged to
  the window of ``t - boundary_margin`` and, within the margin of the next boundary, to the next
  one too (clock offset and latency, as locally). A REST grant is also charged to the next window
  until its answer arrives well before the boundary (``on_response`` in the same task settles
  it): a request still queued or on the wire when the window ends is counted by the server in
  the next one, as the local limiter models it.
* **One atomic step per request.** One Lua script, loaded once and called by ``EVALSHA``, checks the
  IP's ban, the pools' 429 closures and every window the request touches, and charges all of them
  or none. All keys carry one hash tag (``hash_tag``, default ``bma``), so on Redis Cluster they
  live in one slot and every script is atomic there too.
* **Feedback.** Response headers and WebSocket ``rateLimits`` raise the shared counts (the higher
  count wins); a 429 closes the pool for every process until ``Retry-After``; a 418 bans the IP for
  every process: their next ``acquire`` raises :class:`~binance_margin_async.errors.IPBanned`
  before anything is sent. These writes run in the background (``on_response`` is not async).
* **Redis failures are explicit.** When Redis is unreachable or slower than ``redis_timeout``, the
  limiter logs a warning, :attr:`RedisRateLimiter.status` becomes ``"fallback"`` and requests are
  granted by a local :class:`~binance_margin_async.RateLimiter` holding ``local_share`` of every
  budget (document it as 1 / the number of processes sharing a budget); with
  ``on_failure="closed"`` they are refused with :class:`~binance_margin_async.errors.RateLimited`
  instead (``status == "closed"``). Every ``retry_interval`` seconds a request tries Redis again;
  the first that succeeds rejoins (``status == "shared"``, logged), adding what the process spent
  locally to the shared counts before its first shared grant, so that a restarted, empty Redis
  does not hand out the window twice; for a minute after, grants must also fit the local share
  (the other processes' spending reaches Redis only as each of them rejoins).

Docs: https://developers.binance.com/docs/margin_trading/general-info
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from ..endpoints import ENDPOINTS, Endpoint, Pool
from ..errors import IPBanned, ParameterError, RateLimited
from ..ratelimit import (
    API_IP_KEY,
    MAX_BAN,
    WS_CONNECT_KEY,
    LimiterCore,
    RateLimiter,
    WindowCharge,
)

__all__ = ["RedisRateLimiter"]

log = logging.getLogger(__name__)

Status = Literal["shared", "fallback", "closed"]

# KEYS: the IP's ban key, then the closure keys (gates), then two keys per window (this window and
# the next). ARGV: margin ms, number of gates (ban included), carry (1: the request is tracked
# until answered, so it is also charged to the next window until settled), then per window:
# length ms, index of the window of (now - margin), cap, amount. Replies {code, ms, server now
# ms}: 0 granted,
# 2 the caller's window indexes are stale (its clock estimate is off: retry with the returned
# time), 3 wait ms, 4 banned for ms.
_RESERVE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local margin = tonumber(ARGV[1])
local gates = tonumber(ARGV[2])
local carry = ARGV[3] == '1'
local ban = tonumber(redis.call('GET', KEYS[1]) or '0')
if ban > now then return {4, ban - now, now} end
local wait = 0
for i = 2, gates do
  local closed = tonumber(redis.call('GET', KEYS[i]) or '0')
  if closed - now > wait then wait = closed - now end
end
local windows = (#KEYS - gates) / 2
for j = 0, windows - 1 do
  local a = 4 + 4 * j
  local len, lo = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local cap, amount = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if math.floor((now - margin) / len) ~= lo then return {2, 0, now} end
  local over = tonumber(redis.call('GET', KEYS[gates + 2 * j + 1]) or '0') + amount > cap
  if not over and math.floor((now + margin) / len) ~= lo then
    over = tonumber(redis.call('GET', KEYS[gates + 2 * j + 2]) or '0') + amount > cap
  end
  if over and (lo + 1) * len + margin - now > wait then wait = (lo + 1) * len + margin - now end
end
if wait > 0 then return {3, wait, now} end
for j = 0, windows - 1 do
  local a = 4 + 4 * j
  local len, lo, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 3])
  local key = KEYS[gates + 2 * j + 1]
  redis.call('INCRBY', key, amount)
  redis.call('PEXPIRE', key, 2 * len + margin)
  if carry or math.floor((now + margin) / len) ~= lo then
    key = KEYS[gates + 2 * j + 2]
    redis.call('INCRBY', key, amount)
    redis.call('PEXPIRE', key, 3 * len)
  end
end
return {0, 0, now}
"""

# The server's count of one window (KEYS[1], index ARGV[2] of length ARGV[1]) wins when higher;
# ARGV[4] = "add" adds instead (a process rejoining after an outage). Ignored when the window
# is not the current one on the server's clock.
_OBSERVE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local len, idx, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local margin = tonumber(ARGV[5])
if math.floor((now - margin) / len) ~= idx then return 0 end
if ARGV[4] == 'add' then
  redis.call('INCRBY', KEYS[1], count)
elseif count > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], count)
else
  return 0
end
redis.call('PEXPIRE', KEYS[1], 2 * len + margin)
return 1
"""

# Settles carried grants: each KEYS[i] (a next window) less ARGV[i], if the key still exists.
_SETTLE: Final = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('DECRBY', KEYS[i], ARGV[i]) end
end
return 1
"""

# A ban or closure (KEYS[1]) until ARGV[1] ms of server time; never shortened.
_CLOSE: Final = """
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1])
  return 1
end
return 0
"""

_STALE_RETRIES: Final = 3
# After rejoining, grants also fit the local share this long: the longest request-weight window.
_REJOIN_LOCAL: Final = 60.0

#: The last tracked grant of :meth:`RedisRateLimiter.acquire` in this task, settled by its
#: :meth:`RedisRateLimiter.on_response` (the pairing the local limiter makes): ``[limiter, pool
#: key, carried]``; settling sets the limiter to ``None``.
_CARRY: ContextVar[list[Any] | None] = ContextVar("binance_margin_async_redis_carry", default=None)


def _redis_address(redis: str | aioredis.Redis | RedisCluster) -> tuple[str, int] | None:
    """Host and port of the Redis server (of a cluster's default node, once it is known)."""
    if isinstance(redis, str):
        parts = urlsplit(redis)
        return parts.hostname or "127.0.0.1", parts.port or 6379
    if isinstance(redis, RedisCluster):
        node = redis.get_default_node()
        return None if node is None else (node.host, int(node.port))
    kwargs = redis.connection_pool.connection_kwargs
    return str(kwargs.get("host", "127.0.0.1")), int(kwargs.get("port", 6379))


def _default_ip(redis: str | aioredis.Redis | RedisCluster) -> str:
    """The local address this host uses to reach the Redis server (no packet is sent); the host
    name when that server is not known yet (a cluster client that has not connected)."""
    address = _redis_address(redis)
    if address is None:
        return socket.gethostname() or "local"
    host, port = address
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))
            local: str = probe.getsockname()[0]
            return local
    except OSError:
        return socket.gethostname() or "local"


def _check_label(param: str, label: str | None) -> None:
    if label is not None and (
        not isinstance(label, str) or not label or "{" in label or "}" in label
    ):
        raise ParameterError(param, "must be a non-empty label without braces")


class RedisRateLimiter:
    """A :class:`~binance_margin_async.ratelimit.Limiter` whose budgets are shared through Redis.

    Usable wherever a :class:`~binance_margin_async.RateLimiter` is (``MarginClient(limiter=...)``,
    streams, trading sessions), as ``async with`` or closed with :meth:`aclose`. See the module
    docstring for the model, the keys and what happens when Redis fails.

    Args:
        url: ``redis://host:port/db`` (or ``rediss://``, ``unix://``) of a Redis or Valkey server,
            or a client to share: ``redis.asyncio.Redis``, or ``redis.asyncio.RedisCluster`` for a
            cluster (a client passed in is not closed by :meth:`aclose`).
        ip: this process's egress IP label (default: the local address used to reach Redis, or
            the host name for a cluster client that has not connected yet).
        prefix: prefix of every key; ``hash_tag``: the Redis Cluster hash tag of every key.
        on_failure: ``"local"`` (fall back to ``local_share`` of every budget) or ``"closed"``
            (refuse every request while Redis is away).
        local_share: the share of each budget one process may use while Redis is away.
        redis_timeout: seconds a Redis call may take before Redis counts as failed.
        retry_interval: seconds between attempts to rejoin Redis after a failure.
        lease: share of each window's budget reserved at once and spent locally (0: off): an
            ``acquire`` served from a lease costs no Redis round trip. The shared budget is never
            exceeded (a lease is reserved like a request); what is not used is lost for that
            window (given back on close), and a ban or closure from another process is seen at
            this process's next Redis call rather than at once.
        The other arguments are :class:`~binance_margin_async.RateLimiter`'s, with the same
        meaning (``max_wait``, the limits, ``window``, ``critical_reserve``, ...).
    """

    def __init__(
        self,
        url: str | aioredis.Redis | RedisCluster,
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
        ip: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        prefix: str = "bma:rl",
        hash_tag: str = "bma",
        on_failure: Literal["local", "closed"] = "local",
        local_share: float = 0.25,
        redis_timeout: float = 0.5,
        retry_interval: float = 1.0,
        lease: float = 0.0,
    ) -> None:
        _check_label("ip", ip)
        _check_label("hash_tag", hash_tag)
        if on_failure not in ("local", "closed"):
            raise ParameterError("on_failure", 'must be "local" or "closed"')
        if not 0.0 < local_share <= 1.0:
            raise ParameterError("local_share", "must be in (0, 1]")
        if not 0.0 <= lease < 1.0:
            raise ParameterError("lease", "must be in [0, 1)")
        if not redis_timeout > 0.0:
            raise ParameterError("redis_timeout", "must be positive")
        if not max_wait >= 0.0:
            raise ParameterError("max_wait", "must be a non-negative number of seconds")
        label = ip if ip is not None else _default_ip(url)
        limits: dict[str, Any] = {
            "api_ip_limit": api_ip_limit,
            "sapi_ip_limit": sapi_ip_limit,
            "sapi_uid_limit": sapi_uid_limit,
            "ws_connect_limit": ws_connect_limit,
        }
        common: dict[str, Any] = {
            "window": window,
            "ws_connect_window": ws_connect_window,
            "critical_reserve": critical_reserve,
            "boundary_margin": boundary_margin,
            "ip": label,
        }
        # The model: plans every request with the full limits, and learns order limits, new
        # windows and the trading-symbol count like a local limiter.
        self._model = LimiterCore(**limits, **common)
        # The fallback: a share of every budget; it also sees every shared grant of this process,
        # so that it starts from what the process already spent when Redis goes away.
        self._fallback = RateLimiter(
            max_wait=max_wait,
            clock=clock,
            sleep=sleep,
            **{name: max(1, math.floor(limit * local_share)) for name, limit in limits.items()},
            **common,
        )
        self._redis: aioredis.Redis | RedisCluster
        if isinstance(url, str):
            self._redis = aioredis.Redis.from_url(
                url, socket_timeout=redis_timeout, socket_connect_timeout=redis_timeout
            )
        else:
            self._redis = url
        self._owns_redis = isinstance(url, str)
        self._reserve = self._redis.register_script(_RESERVE)
        self._observe = self._redis.register_script(_OBSERVE)
        self._close = self._redis.register_script(_CLOSE)
        self._settle = self._redis.register_script(_SETTLE)
        self._prefix = f"{prefix}:{{{hash_tag}}}"
        self._margin_ms = round(boundary_margin * 1000)
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._on_failure = on_failure
        self._redis_timeout = redis_timeout
        self._retry_interval = retry_interval
        self._status: Status = "shared"
        self._retry_at = 0.0
        # Until then (a minute after rejoining) a grant must also fit this process's local share:
        # a restarted Redis learns the others' spending only as each of them rejoins.
        self._local_until = 0.0
        self._offset_ms = 0.0  # Redis server time minus local time, from the last reply
        self._locks: dict[str, asyncio.Lock] = {}
        # Leases: "<scope>:<window name>:<length ms>" -> (window index, weight left).
        self._lease = lease
        self._leases: dict[str, tuple[int, int]] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = False

    # Lifecycle

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Waits for the pending feedback writes and closes the Redis connections."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._status == "shared":
            await self._return_leases()
        if self._owns_redis:
            await self._redis.aclose()

    # Introspection

    @property
    def status(self) -> Status:
        """``"shared"`` (budgets in Redis), ``"fallback"`` (Redis away: the local share) or
        ``"closed"`` (Redis away, ``on_failure="closed"``: every request refused)."""
        return self._status

    @property
    def ip(self) -> str:
        """This limiter's default ``ip`` label."""
        return self._model.ip

    @property
    def trading_symbols(self) -> int:
        """Number of symbols trading on the exchange (see :meth:`set_trading_symbols`)."""
        return self._model.trading_symbols

    def usage(self, *, account: str | None = None, ip: str | None = None) -> dict[str, int]:
        """What *this process* charged to the current windows (the shared totals are in Redis)."""
        return self._fallback.usage(account=account, ip=ip)

    # Granting

    async def acquire(
        self,
        endpoint: Endpoint,
        weight: int,
        *,
        critical: bool | None = None,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Waits until ``weight`` may be sent to ``endpoint`` and records it in Redis.

        Raises like :meth:`RateLimiter.acquire <binance_margin_async.RateLimiter.acquire>`.
        """
        if critical is None:
            critical = endpoint.critical
        orders = endpoint.orders
        await self._acquire(
            endpoint.pool,
            endpoint.pool_key,
            weight,
            critical,
            orders,
            account,
            ip,
            lambda: self._fallback.acquire(
                endpoint, weight, critical=critical, account=account, ip=ip
            ),
            track=True,
        )

    async def acquire_ws(
        self,
        weight: int,
        *,
        critical: bool = False,
        orders: int = 0,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """One WebSocket API request: ``API_IP`` weight of ``ip``, ``orders`` of ``account``."""
        await self._acquire(
            Pool.API_IP,
            API_IP_KEY,
            weight,
            critical,
            orders,
            account,
            ip,
            lambda: self._fallback.acquire_ws(
                weight, critical=critical, orders=orders, account=account, ip=ip
            ),
        )

    async def acquire_ws_connect(self, *, ip: str | None = None) -> None:
        """One WebSocket connection attempt of ``ip`` (300 / 5 min, plus 2 ``API_IP``)."""
        await self._acquire(
            None,
            WS_CONNECT_KEY,
            0,
            True,
            0,
            None,
            ip,
            lambda: self._fallback.acquire_ws_connect(ip=ip),
        )

    async def _acquire(
        self,
        ep_pool: Pool | None,
        pool_key: str,
        weight: int,
        critical: bool,
        orders: int,
        account: str | None,
        ip: str | None,
        fallback: Callable[[], Awaitable[None]],
        track: bool = False,
    ) -> None:
        _check_label("account", account)
        _check_label("ip", ip)
        if self._status != "shared" and self._clock() < self._retry_at:
            await self._degraded(fallback)
            return
        now = self._clock()
        charges = self._model.plan(
            ep_pool,
            pool_key,
            weight,
            critical=critical,
            orders=orders,
            account=account,
            ip=ip,
            now=now,
        )
        if self._leases and self._status == "shared":
            self._fallback.core.check_ban(now, pool_key, ip=ip)
            if self._spend_lease(charges, now):
                self._fallback.core.record(
                    ep_pool, pool_key, weight, now, orders=orders, account=account, ip=ip
                )
                return
        # Waiters of one pool of one IP or account queue here, critical ones apart (they never
        # wait behind ordinary requests): one of them at a time asks Redis, no thundering herd.
        lock_key = f"{charges[0].scope}|{pool_key}|{critical}"
        lock = self._locks.get(lock_key)
        if lock is None:
            lock = self._locks[lock_key] = asyncio.Lock()
        deadline = self._clock() + self._max_wait
        async with lock:
            while True:
                # Rejoin before the first shared grant: a restarted, empty Redis must count
                # what this process spent alone first, or that grant is the one too many (a 429
                # when every process had spent its local share of the window).
                if self._status != "shared":
                    if not await self._add_local_spending():
                        break
                    self._status = "shared"
                    log.warning("Redis is back: rate limits are shared again")
                    self._local_until = self._clock() + _REJOIN_LOCAL
                if self._clock() < self._local_until:
                    now = self._clock()
                    core = self._fallback.core
                    if ep_pool is None:
                        wait = core.estimate_connect(now, ip=ip)
                    else:
                        wait = core.estimate(
                            ep_pool, pool_key, weight, now, critical=critical, orders=orders,
                            account=account, ip=ip,
                        )  # fmt: skip
                    if wait > 0.0:
                        if self._clock() + wait > deadline:
                            raise RateLimited(retry_after=wait, pool=pool_key)
                        await self._sleep(wait)
                        continue
                try:
                    wait, carried = await self._try(charges, ip, pool_key, track)
                except (RedisError, OSError, TimeoutError) as exc:
                    self._fail(exc)
                    break
                if wait == 0.0:
                    now = self._clock()
                    self._fallback.core.record(
                        ep_pool, pool_key, weight, now, orders=orders, account=account, ip=ip
                    )
                    _CARRY.set([self, pool_key, carried] if carried else None)
                    return
                if self._clock() + wait > deadline:
                    raise RateLimited(retry_after=wait, pool=pool_key)
                await self._sleep(wait)
        await self._degraded(fallback)

    async def _try(
        self, charges: Sequence[WindowCharge], ip: str | None, pool_key: str, track: bool
    ) -> tuple[float, list[tuple[str, int, int]]]:
        """Reservation scripts: (0.0, carried) when granted, else (seconds to wait, []); raises
        IPBanned. ``carried``: (next-window key, amount, its start in server ms) of a tracked
        grant, to settle when the answer comes well before that boundary.

        With leasing, a slice of each window is asked for first (untracked: a lease is not in
        flight); when that does not fit, only the request itself.
        """
        ip_scope = f"ip:{ip or self._model.ip}"
        gates = [self._key(ip_scope, "ban")]
        for charge in charges:
            closure = self._key(charge.scope, f"closed:{charge.pool}")
            if closure not in gates:
                gates.append(closure)
        amounts = [charge.amount for charge in charges]
        if self._lease:
            leased = [max(c.amount, math.floor(c.cap * self._lease)) for c in charges]
            wait, _ = await self._script(charges, gates, leased, ip, pool_key, False)
            if wait == 0.0:
                self._keep_leases(charges, leased)
                return 0.0, []
            if leased == amounts:
                return wait, []
        return await self._script(charges, gates, amounts, ip, pool_key, track)

    async def _script(
        self,
        charges: Sequence[WindowCharge],
        gates: list[str],
        amounts: Sequence[int],
        ip: str | None,
        pool_key: str,
        track: bool,
    ) -> tuple[float, list[tuple[str, int, int]]]:
        for _ in range(_STALE_RETRIES):
            server_ms = (self._clock() * 1000.0) + self._offset_ms
            keys = list(gates)
            args: list[int] = [self._margin_ms, len(gates), int(track)]
            # (next-window key, amount, boundary ms, length ms) of each window, for the carry.
            nexts: list[tuple[str, int, int, int]] = []
            for charge, amount in zip(charges, amounts, strict=True):
                length = round(charge.length * 1000)
                index = math.floor((server_ms - self._margin_ms) / length)
                name = self._key(charge.scope, f"{charge.name}:{length}")
                keys += [f"{name}:{index}", f"{name}:{index + 1}"]
                args += [length, index, charge.cap, amount]
                nexts.append((f"{name}:{index + 1}", amount, (index + 1) * length, length))
            sent = self._clock()
            reply = await asyncio.wait_for(self._reserve(keys=keys, args=args), self._redis_timeout)
            code, ms, now_ms = (int(value) for value in reply)
            # Half the round trip: the script ran about midway.
            self._offset_ms = now_ms - (sent + self._clock()) * 500.0
            if code == 4:
                until = self._clock() + ms / 1000.0
                self._fallback.core.ban(until, ip=ip)
                raise IPBanned(until, retry_after=ms / 1000.0, pool=pool_key)
            if code == 3:
                return ms / 1000.0, []
            if code == 0:
                # Carried (settle-able) only where the grant was not within the margin of the
                # boundary: there the next window is charged for good, as locally.
                carried = [
                    (key, amount, boundary)
                    for key, amount, boundary, length in nexts
                    if track and math.floor((now_ms + self._margin_ms) / length) * length < boundary
                ]
                return 0.0, carried
        raise RateLimited(retry_after=1.0, pool=pool_key)

    # Leasing

    def _lease_slot(self, charge: WindowCharge, server_ms: float) -> tuple[str, int] | None:
        """The lease key and window index a local grant would use, or ``None`` within the margin
        of the next boundary (there the next window must be charged too: ask Redis)."""
        length = round(charge.length * 1000)
        index = math.floor((server_ms - self._margin_ms) / length)
        if math.floor((server_ms + self._margin_ms) / length) != index:
            return None
        return f"{charge.scope}:{charge.name}:{length}", index

    def _keep_leases(self, charges: Sequence[WindowCharge], leased: Sequence[int]) -> None:
        """After a leased grant: what was reserved beyond the request is kept for later ones."""
        server_ms = self._clock() * 1000.0 + self._offset_ms
        for charge, amount in zip(charges, leased, strict=True):
            slot = self._lease_slot(charge, server_ms)
            if slot is None or amount <= charge.amount:
                continue
            key, index = slot
            held = self._leases.get(key)
            left = held[1] if held is not None and held[0] == index else 0
            self._leases[key] = (index, left + amount - charge.amount)

    def _spend_lease(self, charges: Sequence[WindowCharge], now: float) -> bool:
        """Grants from this process's leases when every window has enough left: no Redis call.

        A pool this process knows closed, or an IP it knows banned, always goes to Redis.
        """
        server_ms = now * 1000.0 + self._offset_ms
        slots: list[str] = []
        for charge in charges:
            if charge.closed_until > now:
                return False
            slot = self._lease_slot(charge, server_ms)
            if slot is None:
                return False
            held = self._leases.get(slot[0])
            if held is None or held[0] != slot[1] or held[1] < charge.amount:
                return False
            slots.append(slot[0])
        for key, charge in zip(slots, charges, strict=True):
            index, left = self._leases[key]
            self._leases[key] = (index, left - charge.amount)
        return True

    async def _return_leases(self) -> None:
        """Gives back what this process leased and did not use (on close)."""
        server_ms = self._clock() * 1000.0 + self._offset_ms
        for key, (index, left) in self._leases.items():
            length = int(key.rsplit(":", 1)[1])
            if left <= 0 or math.floor((server_ms - self._margin_ms) / length) != index:
                continue
            args: list[int | str] = [length, index, -left, "add", self._margin_ms]
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(
                    self._observe(keys=[f"{self._prefix}:{key}:{index}"], args=args),
                    self._redis_timeout,
                )
        self._leases.clear()

    # Feedback

    def on_response(
        self,
        endpoint: Endpoint,
        status: int,
        headers: Mapping[str, str],
        *,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Learns from one REST response: counts, 429 closures and 418 bans go to Redis too.

        Call it from the task that called :meth:`acquire`: an answer that came well before the
        window boundary settles the grant's carry into the next window (as locally).
        """
        grant = _CARRY.get()
        if grant is not None and grant[0] is self and grant[1] == endpoint.pool_key:
            grant[0] = None
            server_ms = self._clock() * 1000.0 + self._offset_ms
            settle = [
                (k, a) for k, a, boundary in grant[2] if server_ms + self._margin_ms < boundary
            ]
            if settle and self._status == "shared" and not self._closed:
                self._spawn(self._settle_carry(settle))
        self._fallback.on_response(endpoint, status, headers, account=account, ip=ip)
        self._model.on_response(
            endpoint.pool,
            endpoint.pool_key,
            status,
            headers,
            self._clock(),
            counts_order=endpoint.orders > 0,
            account=account,
            ip=ip,
        )
        self._share(
            endpoint.pool,
            endpoint.pool_key,
            status,
            account,
            ip,
            orders=endpoint.orders,
        )

    def on_ws_response(
        self,
        status: int,
        rate_limits: Sequence[Mapping[str, Any]] | None,
        error_data: Mapping[str, Any] | None,
        *,
        account: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Learns from one WebSocket API response (``rateLimits``, 429, 418)."""
        self._fallback.on_ws_response(status, rate_limits, error_data, account=account, ip=ip)
        self._model.on_ws_response(
            status, rate_limits, error_data, self._clock(), account=account, ip=ip
        )
        self._share(Pool.API_IP, API_IP_KEY, status, account, ip, orders=1)

    def set_order_limits(
        self, rate_limits: Sequence[Mapping[str, Any]], *, account: str | None = None
    ) -> None:
        """Takes ``account``'s order-count limits (this process's model; counts go to Redis)."""
        self._fallback.set_order_limits(rate_limits, account=account)
        self._model.set_order_limits(rate_limits, self._clock(), account=account)
        order = ENDPOINTS["new_order"]
        self._share(order.pool, order.pool_key, 200, account, None, orders=1)

    def set_trading_symbols(self, count: int) -> None:
        """Sets the number of symbols trading on the exchange (this process's model)."""
        self._model.set_trading_symbols(count)
        self._fallback.set_trading_symbols(count)

    def ban(self, until: float, *, ip: str | None = None) -> None:
        """Records an IP ban until ``until`` (epoch seconds) for every process on the IP."""
        now = self._clock()
        self._fallback.ban(until, ip=ip)
        self._model.ban(until, now=now, ip=ip)
        self._spawn(self._write_ban(ip))

    def _share(
        self,
        ep_pool: Pool,
        pool_key: str,
        status: int,
        account: str | None,
        ip: str | None,
        *,
        orders: int = 0,
    ) -> None:
        """Copies what the model learned from one answer to Redis, in the background: the counts
        of the windows the endpoint touches (the higher wins), 429 closures, a 418 ban."""
        if self._status != "shared" or self._closed:
            return
        now = self._clock()
        charges = self._model.plan(
            ep_pool, pool_key, 0, critical=True, orders=orders, account=account, ip=ip, now=now
        )
        counts = [(charge, charge.used) for charge in charges if charge.used > 0]
        closures: dict[str, float] = {}
        if status == 429:
            for charge in charges:
                if charge.closed_until > now:
                    closures[self._key(charge.scope, f"closed:{charge.pool}")] = charge.closed_until
        if counts or closures:
            self._spawn(self._write(counts, list(closures.items()), now))
        if status == 418:
            self._spawn(self._write_ban(ip))

    async def _write(
        self,
        counts: Sequence[tuple[WindowCharge, int]],
        closures: Sequence[tuple[str, float]],
        now: float,
        *,
        add: bool = False,
    ) -> bool:
        """Raise (or add to) the shared counts and closures; False if Redis failed."""
        try:
            server_ms = now * 1000.0 + self._offset_ms
            for charge, count in counts:
                length = round(charge.length * 1000)
                index = math.floor((server_ms - self._margin_ms) / length)
                key = f"{self._key(charge.scope, f'{charge.name}:{length}')}:{index}"
                args = [length, index, count, "add" if add else "max", self._margin_ms]
                await asyncio.wait_for(self._observe(keys=[key], args=args), self._redis_timeout)
            for key, until in closures:
                until_ms = round(until * 1000.0 + self._offset_ms)
                await asyncio.wait_for(
                    self._close(keys=[key], args=[until_ms]), self._redis_timeout
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._fail(exc)
            return False
        return True

    async def _settle_carry(self, settle: Sequence[tuple[str, int]]) -> None:
        try:
            await asyncio.wait_for(
                self._settle(keys=[k for k, _ in settle], args=[a for _, a in settle]),
                self._redis_timeout,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._fail(exc)

    async def _write_ban(self, ip: str | None) -> None:
        until = self._model.banned_until_for(ip)
        now = self._clock()
        until = min(until, now + MAX_BAN)
        if until > now:
            await self._write([], [(self._key(f"ip:{ip or self._model.ip}", "ban"), until)], now)

    # Redis failures

    def _fail(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + self._retry_interval
        if self._status == "shared":
            self._status = "fallback" if self._on_failure == "local" else "closed"
            log.warning(
                "Redis unreachable (%s): rate limits %s until it is back",
                type(exc).__name__,
                "use the local share" if self._status == "fallback" else "refuse every request",
            )

    async def _degraded(self, fallback: Callable[[], Awaitable[None]]) -> None:
        if self._status == "closed":
            raise RateLimited(
                retry_after=max(self._retry_at - self._clock(), 0.0), pool="redis unavailable"
            )
        await fallback()

    async def _add_local_spending(self) -> bool:
        """Before sharing again: add what this process spent locally and the bans it met to
        Redis. False (still degraded until ``retry_interval`` passes) if Redis failed."""
        now = self._clock()
        counts = [(charge, charge.used) for charge in self._fallback.core.spent(now)]
        # A 418 met while Redis was away still bans the IP for every process.
        bans = [
            (self._key(f"ip:{label}", "ban"), until)
            for label, until in self._fallback.core.bans(now).items()
        ]
        if not counts and not bans:
            # Nothing to add, but Redis must answer before the process says it is back.
            try:
                await asyncio.wait_for(self._redis.ping(), self._redis_timeout)
            except (RedisError, OSError, TimeoutError) as exc:
                self._fail(exc)
                return False
            return True
        return await self._write(counts, bans, now, add=True)

    def _key(self, scope: str, name: str) -> str:
        return f"{self._prefix}:{scope}:{name}"

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            # No running loop (a synchronous caller): Redis learns it from the next request.
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
