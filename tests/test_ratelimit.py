"""Rate limiter tests: the pure core without an event loop, the async shell on a fake clock."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from binance_margin_async.endpoints import (
    DEFAULT_TRADING_SYMBOLS,
    ENDPOINTS,
    SERVER_TIME,
    Endpoint,
    Pool,
    Security,
)
from binance_margin_async.errors import IPBanned, ParameterError, RateLimited
from binance_margin_async.ratelimit import (
    API_IP_KEY,
    IP_REQUESTS_KEY,
    MAX_BAN,
    WS_CONNECT_KEY,
    WS_CONNECT_WEIGHT,
    LimiterCore,
    RateLimiter,
)

W = 10.0  # the shrunk window the fake exchange uses too
M = 0.25  # default boundary margin
BOUNDARY = 1_700_000_000.0  # a multiple of W: a window starts here
T0 = BOUNDARY + 0.5  # inside that window, clear of the margin

READ_A = Endpoint("read_a", "GET", "/sapi/v1/a", Security.SIGNED, Pool.SAPI_IP, 10)
READ_B = Endpoint("read_b", "GET", "/sapi/v1/b", Security.SIGNED, Pool.SAPI_IP, 10)
UID_EP = Endpoint("uid_ep", "POST", "/sapi/v1/c", Security.SIGNED, Pool.SAPI_UID, 10)
API_EP = Endpoint("api_ep", "GET", "/api/v3/x", Security.NONE, Pool.API_IP, 1)
NEW_ORDER = ENDPOINTS["new_order"]
CANCEL = ENDPOINTS["cancel_order"]


def core(**kwargs: float) -> LimiterCore:
    settings: dict[str, float] = {
        "api_ip_limit": 100,
        "sapi_ip_limit": 100,
        "sapi_uid_limit": 100,
        "window": W,
        "critical_reserve": 0.0,
    }
    settings.update(kwargs)
    return LimiterCore(**settings)  # type: ignore[arg-type]


def take(c: LimiterCore, ep: Endpoint, weight: int, now: float, *, critical: bool = False) -> float:
    return c.reserve(ep.pool, ep.pool_key, weight, now, critical=critical, orders=ep.orders)


# Windows


def test_grant_records_and_full_window_waits_until_boundary_plus_margin() -> None:
    c = core()
    assert take(c, READ_A, 60, T0) == 0.0
    assert take(c, READ_A, 40, T0) == 0.0
    assert c.usage(T0)[READ_A.pool_key] == 100
    wait = take(c, READ_A, 1, T0)
    assert wait == pytest.approx(BOUNDARY + W + M - T0)
    # Nothing was recorded by the refused call.
    assert c.usage(T0)[READ_A.pool_key] == 100


def test_new_window_budget_is_used_only_after_the_margin() -> None:
    c = core()
    assert take(c, READ_A, 100, T0) == 0.0
    just_after = BOUNDARY + W + 0.1
    assert take(c, READ_A, 1, just_after) == pytest.approx(M - 0.1, abs=1e-5)
    after_margin = BOUNDARY + W + M
    assert take(c, READ_A, 100, after_margin) == 0.0
    assert c.usage(after_margin)[READ_A.pool_key] == 100


def test_sleeping_the_returned_wait_always_lands_in_the_next_window() -> None:
    # Float rounding must never leave the clock a hair before the boundary + margin.
    c = core(boundary_margin=0.1)
    now = BOUNDARY + 3.3
    assert take(c, READ_A, 100, now) == 0.0
    for _ in range(50):
        wait = take(c, READ_A, 100, now)
        assert wait > 0.0
        now += wait
        assert take(c, READ_A, 100, now) == 0.0


def test_requests_near_a_boundary_are_charged_to_both_windows() -> None:
    # The server may count a request sent just before the boundary in the next window.
    c = core()
    assert take(c, READ_A, 50, BOUNDARY + W - 0.1) == 0.0
    later = BOUNDARY + W + M + 0.01
    assert c.usage(later)[READ_A.pool_key] == 50
    assert take(c, READ_A, 50, later) == 0.0
    assert take(c, READ_A, 1, later) > 0.0


def test_windows_further_apart_start_empty() -> None:
    c = core()
    assert take(c, READ_A, 100, T0) == 0.0
    assert c.usage(T0 + 5 * W)[READ_A.pool_key] == 0
    assert take(c, READ_A, 100, T0 + 5 * W) == 0.0


def test_a_clock_stepping_back_keeps_the_count() -> None:
    c = core()
    assert take(c, READ_A, 100, T0 + W) == 0.0
    wait = take(c, READ_A, 1, T0)
    assert wait == pytest.approx(BOUNDARY + 2 * W + M - T0)


# Requests in flight across a boundary


def tracked(c: LimiterCore, ep: Endpoint, weight: int, now: float) -> float:
    return c.reserve(ep.pool, ep.pool_key, weight, now, orders=ep.orders, track=True)


NEXT = BOUNDARY + W + M + 0.01  # the next window, past its margin


def test_unanswered_tracked_grant_is_carried_into_the_next_window() -> None:
    # It may still be queued or on the wire: the server would count it when it arrives.
    c = core()
    assert tracked(c, READ_A, 60, T0) == 0.0
    assert c.usage(NEXT)[READ_A.pool_key] == 60
    assert take(c, READ_A, 41, NEXT) > 0.0
    assert take(c, READ_A, 40, NEXT) == 0.0


def test_answered_grant_is_not_carried() -> None:
    c = core()
    assert tracked(c, READ_A, 60, T0) == 0.0
    c.settle(READ_A.pool_key, 60, T0, T0 + 1.0)
    assert c.usage(NEXT)[READ_A.pool_key] == 0


def test_answer_close_to_the_boundary_keeps_the_carry() -> None:
    c = core()
    assert tracked(c, READ_A, 60, T0) == 0.0
    c.settle(READ_A.pool_key, 60, T0, BOUNDARY + W - 0.1)
    assert c.usage(NEXT)[READ_A.pool_key] == 60


def test_carry_lasts_one_window_and_late_answers_change_nothing() -> None:
    c = core()
    assert tracked(c, READ_A, 60, T0) == 0.0
    assert take(c, READ_A, 10, NEXT) == 0.0
    c.settle(READ_A.pool_key, 60, T0, NEXT)
    assert c.usage(NEXT)[READ_A.pool_key] == 70
    assert c.usage(NEXT + W)[READ_A.pool_key] == 0


def test_tracked_grant_near_the_boundary_is_charged_to_the_next_window_once() -> None:
    c = core()
    assert tracked(c, READ_A, 50, BOUNDARY + W - 0.1) == 0.0
    assert c.usage(NEXT)[READ_A.pool_key] == 50
    c.settle(READ_A.pool_key, 50, BOUNDARY + W - 0.1, BOUNDARY + W - 0.05)
    assert c.usage(NEXT)[READ_A.pool_key] == 50


def test_tracked_orders_are_carried_and_settled_too() -> None:
    c = LimiterCore(window=W, critical_reserve=0.0, order_limits=((10.0, 3),))
    assert tracked(c, NEW_ORDER, 6, T0) == 0.0
    assert tracked(c, NEW_ORDER, 6, T0) == 0.0
    c.settle(NEW_ORDER.pool_key, 6, T0, T0 + 0.5, orders=1)
    assert c.usage(NEXT)["ORDERS:10S"] == 1
    assert c.usage(NEXT)[NEW_ORDER.pool_key] == 6


def test_settle_of_an_unknown_pool_is_ignored() -> None:
    c = core()
    c.settle("SAPI_IP:GET /sapi/v1/never", 5, T0, T0)
    assert "SAPI_IP:GET /sapi/v1/never" not in c.usage(T0)


# Pools


def test_sapi_pools_are_per_endpoint_and_api_ip_is_shared() -> None:
    c = core()
    assert take(c, READ_A, 100, T0) == 0.0
    assert take(c, READ_B, 100, T0) == 0.0
    assert take(c, UID_EP, 100, T0) == 0.0
    assert take(c, READ_A, 1, T0) > 0.0
    assert take(c, API_EP, 60, T0) == 0.0
    assert take(c, SERVER_TIME, 40, T0) == 0.0
    assert take(c, API_EP, 1, T0) > 0.0
    usage = c.usage(T0)
    assert usage[API_IP_KEY] == 100
    assert usage[READ_B.pool_key] == 100


def test_any_key_of_the_api_pool_is_the_shared_pool() -> None:
    c = core()
    assert c.reserve(Pool.API_IP, "API_IP:alias", 60, T0) == 0.0
    assert take(c, API_EP, 41, T0) > 0.0
    assert c.usage(T0)[API_IP_KEY] == 60


def test_sapi_limits_come_from_the_pool_type() -> None:
    c = LimiterCore(sapi_ip_limit=50, sapi_uid_limit=70, window=W, critical_reserve=0.0)
    assert take(c, READ_A, 50, T0) == 0.0
    assert take(c, READ_A, 1, T0) > 0.0
    assert take(c, UID_EP, 70, T0) == 0.0
    assert take(c, UID_EP, 1, T0) > 0.0


def test_weight_larger_than_the_limit_is_an_error_not_a_wait() -> None:
    c = core()
    with pytest.raises(ParameterError, match="exceeds the limit 100") as info:
        take(c, READ_A, 101, T0, critical=True)
    assert info.value.param == "weight"
    with pytest.raises(ParameterError, match="must not be negative"):
        take(c, READ_A, -1, T0)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"api_ip_limit": 0}, "api_ip_limit"),
        ({"window": 0.0}, "window"),
        ({"critical_reserve": 1.0}, "critical_reserve"),
        ({"boundary_margin": 3.0}, "boundary_margin"),
        ({"boundary_margin": -0.1}, "boundary_margin"),
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, float], param: str) -> None:
    with pytest.raises(ParameterError) as info:
        core(**kwargs)
    assert info.value.param == param


# Critical reserve


def test_critical_reserve_keeps_a_slice_for_critical_requests() -> None:
    c = core(critical_reserve=0.1)
    assert take(c, READ_A, 90, T0) == 0.0
    assert take(c, READ_A, 1, T0) > 0.0
    assert take(c, READ_A, 10, T0, critical=True) == 0.0
    assert take(c, READ_A, 1, T0, critical=True) > 0.0


def test_non_critical_weight_above_its_share_is_an_error() -> None:
    c = core(critical_reserve=0.1)
    with pytest.raises(ParameterError, match="non-critical share 90"):
        take(c, READ_A, 95, T0)
    assert take(c, READ_A, 95, T0, critical=True) == 0.0


# Header feedback


def test_server_count_wins_when_higher() -> None:
    c = core()
    assert take(c, READ_A, 10, T0) == 0.0
    c.on_response(READ_A.pool, READ_A.pool_key, 200, {"X-SAPI-USED-IP-WEIGHT-1M": "95"}, T0)
    assert c.usage(T0)[READ_A.pool_key] == 95
    c.on_response(READ_A.pool, READ_A.pool_key, 200, {"X-SAPI-USED-IP-WEIGHT-1M": "20"}, T0)
    assert c.usage(T0)[READ_A.pool_key] == 95
    assert take(c, READ_A, 6, T0) > 0.0
    assert take(c, READ_A, 5, T0) == 0.0


def test_header_names_are_case_insensitive_and_sapi_uid_is_read() -> None:
    c = core()
    c.on_response(UID_EP.pool, UID_EP.pool_key, 200, {"x-sapi-used-uid-weight-1m": "70"}, T0)
    assert c.usage(T0)[UID_EP.pool_key] == 70
    # What aiohttp hands over.
    headers = CIMultiDictProxy(CIMultiDict({"X-SAPI-USED-UID-WEIGHT-1M": "80", "Retry-After": "4"}))
    c.on_response(UID_EP.pool, UID_EP.pool_key, 429, headers, T0)
    assert c.usage(T0)[UID_EP.pool_key] == 80
    assert take(c, UID_EP, 1, T0) == pytest.approx(4.0, abs=1e-5)


def test_mbx_weight_headers_feed_the_shared_pool() -> None:
    c = core()
    headers = {"X-MBX-USED-WEIGHT-1M": "80", "X-MBX-USED-WEIGHT-1H": "500"}
    c.on_response(API_EP.pool, API_EP.pool_key, 200, headers, T0)
    usage = c.usage(T0)
    assert usage[API_IP_KEY] == 80
    # The shrunk window answers to its own length too; a 1H count with no known limit is ignored.
    c.on_response(API_EP.pool, API_EP.pool_key, 200, {"X-MBX-USED-WEIGHT-10S": "90"}, T0)
    assert c.usage(T0)[API_IP_KEY] == 90
    assert take(c, API_EP, 11, T0) > 0.0


def test_sapi_headers_never_touch_the_shared_pool_and_junk_is_ignored() -> None:
    c = core()
    headers = {
        "X-SAPI-USED-IP-WEIGHT-1M": "99",
        "X-MBX-USED-WEIGHT-1M": "not a number",
        "X-MBX-USED-WEIGHT-": "50",
        "X-MBX-USED-WEIGHT-²M": "50",
        "X-MBX-USED-WEIGHT-10S": "²",
        "X-Other": "1",
    }
    c.on_response(API_EP.pool, API_EP.pool_key, 200, headers, T0)
    assert c.usage(T0)[API_IP_KEY] == 0


def test_unrelated_headers_are_ignored() -> None:
    c = core()
    headers = {"Content-Type": "application/json", "X-Trace-Id": "7", "X-SAPI-USED-IP-WEIGHT": "5"}
    c.on_response(READ_A.pool, READ_A.pool_key, 200, headers, T0)
    assert c.usage(T0)[READ_A.pool_key] == 0


def test_header_counts_apply_to_the_current_window_only() -> None:
    c = core()
    c.on_response(READ_A.pool, READ_A.pool_key, 200, {"X-SAPI-USED-IP-WEIGHT-1M": "100"}, T0)
    assert take(c, READ_A, 1, T0) > 0.0
    assert take(c, READ_A, 100, T0 + W) == 0.0


# 429 and 418


def test_429_closes_that_pool_until_retry_after() -> None:
    c = core()
    c.on_response(READ_A.pool, READ_A.pool_key, 429, {"Retry-After": "7"}, T0)
    assert take(c, READ_A, 1, T0) == pytest.approx(7.0, abs=1e-5)
    assert take(c, READ_A, 1, T0 + 6.9) > 0.0
    assert take(c, READ_B, 1, T0) == 0.0
    assert take(c, API_EP, 1, T0) == 0.0
    assert take(c, READ_A, 1, T0 + 7.0) == 0.0


def test_429_without_retry_after_closes_to_the_end_of_the_window() -> None:
    c = core()
    c.on_response(API_EP.pool, API_EP.pool_key, 429, {}, T0)
    assert take(c, API_EP, 1, T0) == pytest.approx(BOUNDARY + W + M - T0)
    assert take(c, SERVER_TIME, 1, T0) > 0.0
    assert take(c, READ_A, 1, T0) == 0.0
    assert take(c, API_EP, 1, BOUNDARY + W + M) == 0.0


def test_a_429_never_shortens_a_known_closure() -> None:
    c = core()
    c.on_response(READ_A.pool, READ_A.pool_key, 429, {"Retry-After": "7"}, T0)
    c.on_response(READ_A.pool, READ_A.pool_key, 429, {"Retry-After": "3"}, T0)
    assert take(c, READ_A, 1, T0 + 5.0) == pytest.approx(2.0, abs=1e-5)
    c.on_response(READ_B.pool, READ_B.pool_key, 200, {"X-SAPI-USED-IP-WEIGHT-1M": "100"}, T0)
    c.on_response(READ_B.pool, READ_B.pool_key, 429, {}, T0)
    assert c.usage(T0)[READ_B.pool_key] == 100


def test_429_with_malformed_retry_after_counts_as_absent() -> None:
    c = core()
    c.on_response(READ_A.pool, READ_A.pool_key, 429, {"Retry-After": "soon"}, T0)
    assert take(c, READ_A, 1, T0) == pytest.approx(BOUNDARY + W + M - T0)


def test_order_count_429_without_retry_after_holds_orders_for_the_short_window() -> None:
    c = core(sapi_uid_limit=100_000)
    c.on_response(NEW_ORDER.pool, NEW_ORDER.pool_key, 429, {}, T0, counts_order=True)
    # The order-count window is 10 s: orders wait for it, not for the endpoint's weight window.
    assert take(c, NEW_ORDER, 6, T0) == pytest.approx(BOUNDARY + 10.0 + M - T0)
    assert c.usage(T0)[NEW_ORDER.pool_key] == 0
    assert take(c, NEW_ORDER, 6, BOUNDARY + 10.0 + M) == 0.0


def test_order_endpoint_429_with_retry_after_holds_every_order_endpoint() -> None:
    c = core(sapi_uid_limit=100_000)
    c.on_response(
        NEW_ORDER.pool, NEW_ORDER.pool_key, 429, {"Retry-After": "3"}, T0, counts_order=True
    )
    oco = ENDPOINTS["new_oco"]
    assert take(c, oco, 6, T0) == pytest.approx(3.0, abs=1e-5)
    assert take(c, CANCEL, 10, T0) == 0.0


def test_418_bans_every_pool_until_retry_after() -> None:
    c = core()
    c.on_response(READ_A.pool, READ_A.pool_key, 418, {"Retry-After": "300"}, T0)
    for ep in (READ_A, READ_B, UID_EP, API_EP, CANCEL):
        with pytest.raises(IPBanned) as info:
            take(c, ep, 1, T0 + 1, critical=True)
        assert info.value.until == T0 + 300
        assert info.value.retry_after == pytest.approx(299.0)
    with pytest.raises(IPBanned):
        c.reserve_connect(T0 + 1)
    with pytest.raises(IPBanned):
        c.estimate(READ_A.pool, READ_A.pool_key, 1, T0 + 1)
    with pytest.raises(IPBanned):
        c.estimate_connect(T0 + 1)
    assert take(c, READ_A, 1, T0 + 300) == 0.0


def test_418_without_retry_after_bans_for_the_minimum_two_minutes() -> None:
    c = core()
    c.on_response(API_EP.pool, API_EP.pool_key, 418, {}, T0)
    assert c.banned_until == T0 + 120.0


def test_ban_from_a_message_body_never_shortens_a_known_ban() -> None:
    c = core()
    c.ban(T0 + 50)
    c.ban(T0 + 10)
    assert c.banned_until == T0 + 50
    with pytest.raises(IPBanned):
        take(c, READ_A, 1, T0 + 49)


# Order counts


def test_order_count_headers_block_orders_but_not_other_requests() -> None:
    c = core(sapi_uid_limit=100_000)
    headers = {"X-MBX-ORDER-COUNT-10S": "10000", "X-MBX-ORDER-COUNT-1D": "10000"}
    c.on_response(NEW_ORDER.pool, NEW_ORDER.pool_key, 200, headers, T0)
    assert c.usage(T0)["ORDERS:10S"] == 10000
    assert c.usage(T0)["ORDERS:1D"] == 10000
    assert take(c, NEW_ORDER, 6, T0) == pytest.approx(BOUNDARY + 10.0 + M - T0)
    assert take(c, CANCEL, 10, T0) == 0.0


def test_set_order_limits_replaces_the_windows_and_takes_counts() -> None:
    c = core(sapi_uid_limit=100_000)
    c.set_order_limits(
        [
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 3},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 5},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 0},
            {"rateLimitType": "OTHER", "interval": "DAY", "intervalNum": 1, "limit": 1},
        ],
        T0,
    )
    assert {k for k in c.usage(T0) if k.startswith("ORDERS")} == {"ORDERS:10S", "ORDERS:1M"}
    for _ in range(3):
        assert take(c, NEW_ORDER, 6, T0) == 0.0
    assert take(c, NEW_ORDER, 6, T0) > 0.0
    c.set_order_limits(
        [
            {
                "rateLimitType": "ORDERS",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 5,
                "count": 4,
            }
        ],
        T0 + W,
    )
    assert c.usage(T0 + W)["ORDERS:1M"] == 4
    assert take(c, NEW_ORDER, 6, T0 + W) == 0.0
    assert take(c, NEW_ORDER, 6, T0 + W) > 0.0


def test_orders_share_the_critical_reserve_rule() -> None:
    c = LimiterCore(window=W, critical_reserve=0.5, order_limits=((10.0, 4),))
    assert take(c, NEW_ORDER, 6, T0) == 0.0
    assert take(c, NEW_ORDER, 6, T0) == 0.0
    assert take(c, NEW_ORDER, 6, T0) > 0.0
    assert take(c, NEW_ORDER, 6, T0, critical=True) == 0.0


# WebSocket API


def test_ws_rate_limits_raise_counts_and_can_only_lower_the_weight_limit() -> None:
    c = core()
    c.on_ws_response(
        200,
        [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
                "count": 40,
            }
        ],
        None,
        T0,
    )
    assert c.usage(T0)[API_IP_KEY] == 40
    assert take(c, API_EP, 60, T0) == 0.0
    assert take(c, API_EP, 1, T0) > 0.0
    lowered = {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 10}
    c.on_ws_response(200, [{**lowered, "limit": 50, "count": 0}], None, T0 + W)
    assert take(c, API_EP, 50, T0 + W) == 0.0
    assert take(c, API_EP, 1, T0 + W) > 0.0


def test_ws_rate_limits_learn_a_new_interval_and_ws_orders() -> None:
    c = core(sapi_uid_limit=100_000)
    c.on_ws_response(
        200,
        [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "HOUR", "intervalNum": 1, "limit": 150},
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": 2,
                "count": True,
            },
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 9},
            {"rateLimitType": "ORDERS", "interval": "WEEK", "intervalNum": 1, "limit": 2},
            {"rateLimitType": "ORDERS", "interval": 7, "intervalNum": 1, "limit": 2},
            "junk",  # type: ignore[list-item]
        ],
        None,
        T0,
    )
    assert take(c, API_EP, 100, T0) == 0.0
    assert take(c, API_EP, 50, T0 + W) == 0.0
    # 150 per hour is spent although each 10 s window has room again.
    assert take(c, API_EP, 1, T0 + 2 * W) > 60.0
    assert take(c, NEW_ORDER, 6, T0) == 0.0
    assert take(c, NEW_ORDER, 6, T0) == 0.0
    assert take(c, NEW_ORDER, 6, T0) > 0.0


def test_ws_429_closes_the_shared_pool_until_retry_after() -> None:
    c = core()
    retry_ms = int((T0 + 5.0) * 1000)
    c.on_ws_response(429, None, {"serverTime": int(T0 * 1000), "retryAfter": retry_ms}, T0)
    assert take(c, API_EP, 1, T0) == pytest.approx(5.0 + M, abs=1e-3)
    assert take(c, READ_A, 1, T0) == 0.0


def test_ws_429_without_retry_after_closes_to_the_end_of_the_window() -> None:
    c = core()
    c.on_ws_response(429, None, {"retryAfter": True}, T0)
    assert take(c, API_EP, 1, T0) == pytest.approx(BOUNDARY + W + M - T0)


def test_ws_418_bans_until_retry_after_or_two_minutes() -> None:
    c = core()
    c.on_ws_response(418, None, {"retryAfter": int((T0 + 600) * 1000)}, T0)
    assert c.banned_until == pytest.approx(T0 + 600 + M)
    other = core()
    other.on_ws_response(418, None, None, T0)
    assert other.banned_until == T0 + 120.0


# Connection attempts


def test_connection_attempts_are_limited_and_cost_shared_weight() -> None:
    c = LimiterCore(window=W, ws_connect_limit=3, ws_connect_window=300.0)
    start = 1_700_000_100.5  # just after a multiple of 300
    for _ in range(3):
        assert c.reserve_connect(start) == 0.0
    assert c.reserve_connect(start) == pytest.approx(300.0 + M - 0.5)
    assert c.usage(start)[WS_CONNECT_KEY] == 3
    assert c.usage(start)[API_IP_KEY] == 6


def test_connection_attempts_wait_for_shared_weight() -> None:
    c = core()
    assert take(c, API_EP, 99, T0) == 0.0
    assert c.reserve_connect(T0) > 0.0
    assert c.usage(T0)[WS_CONNECT_KEY] == 0


# Estimates


def test_estimate_counts_the_queue_ahead_without_recording() -> None:
    c = core()
    assert take(c, READ_A, 100, T0) == 0.0
    first = c.estimate(READ_A.pool, READ_A.pool_key, 10, T0)
    assert first == pytest.approx(BOUNDARY + W + M - T0)
    behind = c.estimate(READ_A.pool, READ_A.pool_key, 10, T0, ahead=150)
    assert behind == pytest.approx(BOUNDARY + 2 * W + M - T0)
    assert c.usage(T0)[READ_A.pool_key] == 100
    with pytest.raises(ParameterError):
        c.estimate(READ_A.pool, READ_A.pool_key, 101, T0)
    assert c.estimate_connect(T0, ahead=0) == 0.0
    assert c.estimate(NEW_ORDER.pool, NEW_ORDER.pool_key, 6, T0, orders=1) == 0.0


# The async shell


class FakeTime:
    """A virtual clock; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class ManualTime(FakeTime):
    """``sleep`` blocks until the test calls :meth:`advance`, which wakes every sleeper."""

    def __init__(self, start: float = T0) -> None:
        super().__init__(start)
        self.sleepers: list[asyncio.Future[None]] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        sleeper = asyncio.get_running_loop().create_future()
        self.sleepers.append(sleeper)
        await sleeper

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for sleeper in self.sleepers:
            if not sleeper.done():
                sleeper.set_result(None)
        self.sleepers.clear()


async def send(
    lim: RateLimiter, ep: Endpoint, weight: int, *, critical: bool | None = None
) -> None:
    """What the REST client does around one request answered at once: acquire, then report."""
    await lim.acquire(ep, weight, critical=critical)
    lim.on_response(ep, 200, {})


def limiter(time: FakeTime, **kwargs: float | str) -> RateLimiter:
    settings: dict[str, float | str] = {
        "api_ip_limit": 100,
        "sapi_ip_limit": 100,
        "sapi_uid_limit": 100,
        "window": W,
        "critical_reserve": 0.0,
        "max_wait": 1000.0,
    }
    settings.update(kwargs)
    return RateLimiter(clock=time.clock, sleep=time.sleep, **settings)  # type: ignore[arg-type]


async def test_acquire_with_budget_does_not_sleep() -> None:
    t = FakeTime()
    lim = limiter(t)
    await send(lim, READ_A, 60)
    await send(lim, NEW_ORDER, 6)
    assert t.sleeps == []
    usage = lim.usage()
    assert usage[READ_A.pool_key] == 60
    assert usage["ORDERS:10S"] == 1


async def test_acquire_waits_for_the_next_window() -> None:
    t = FakeTime()
    lim = limiter(t)
    await send(lim, READ_A, 100)
    await send(lim, READ_A, 10)
    assert t.sleeps == [pytest.approx(BOUNDARY + W + M - T0, abs=1e-5)]
    assert lim.usage()[READ_A.pool_key] == 10


async def test_thousand_concurrent_acquires_never_exceed_any_window() -> None:
    t = FakeTime()
    lim = limiter(t, boundary_margin=M)
    rng = random.Random(7)
    weights = [rng.randint(1, 10) for _ in range(1000)]
    grants: list[tuple[int, float, int]] = []

    async def one(i: int, weight: int) -> None:
        await send(lim, READ_A, weight)
        grants.append((i, t.clock(), weight))

    await asyncio.gather(*(one(i, w) for i, w in enumerate(weights)))
    # Also as a server whose clock is up to the margin ahead or behind would count them.
    for offset in (-M + 1e-3, 0.0, M - 1e-3):
        shifted: dict[float, int] = defaultdict(int)
        for _, at, weight in grants:
            shifted[(at + offset) // W] += weight
        assert max(shifted.values()) <= 100
    per_window: dict[float, int] = defaultdict(int)
    for _, at, weight in grants:
        per_window[at // W] += weight
    # FIFO: granted in arrival order.
    assert [i for i, _, _ in grants] == list(range(1000))
    # No budget wasted: each window is filled up to the last request that fit.
    windows_used = len(per_window)
    assert windows_used <= sum(weights) // (100 - 9) + 1
    # No thundering herd: one timer per window, not one per waiter.
    assert len(t.sleeps) == windows_used - 1
    assert lim.queued() == {}


async def test_thousand_acquires_with_critical_ones_mixed_in() -> None:
    t = FakeTime()
    lim = limiter(t, critical_reserve=0.2)
    grants: list[tuple[float, int, bool]] = []

    async def one(i: int) -> None:
        critical = i % 10 == 0
        await send(lim, READ_A, 5, critical=critical)
        grants.append((t.clock(), 5, critical))

    await asyncio.gather(*(one(i) for i in range(1000)))
    per_window: dict[float, int] = defaultdict(int)
    normal: dict[float, int] = defaultdict(int)
    for at, weight, critical in grants:
        per_window[at // W] += weight
        if not critical:
            normal[at // W] += weight
    assert max(per_window.values()) <= 100
    assert max(normal.values()) <= 80
    assert len(grants) == 1000


async def test_critical_request_passes_queued_non_critical_ones() -> None:
    t = ManualTime()
    lim = limiter(t, critical_reserve=0.1)
    await send(lim, READ_A, 90)
    waiting = asyncio.create_task(send(lim, READ_A, 10))
    await asyncio.sleep(0)
    assert lim.queued() == {READ_A.pool_key: 1}
    # The reserve is there for it: no wait although a read is queued.
    await send(lim, READ_A, 10, critical=True)
    assert lim.usage()[READ_A.pool_key] == 100
    t.advance(W)
    await waiting


async def test_critical_waiters_are_served_before_earlier_non_critical_ones() -> None:
    t = ManualTime()
    lim = limiter(t)
    await send(lim, READ_A, 100)
    order: list[str] = []

    async def one(name: str, weight: int, critical: bool) -> None:
        await send(lim, READ_A, weight, critical=critical)
        order.append(name)

    tasks = [
        asyncio.create_task(one("read1", 60, False)),
        asyncio.create_task(one("read2", 10, False)),
    ]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(one("cancel", 60, True)))
    await asyncio.sleep(0)
    t.advance(W)
    await asyncio.wait_for(asyncio.gather(*tasks[2:]), 1.0)
    await asyncio.sleep(0)
    # read1 (60) no longer fits after the critical 60; read2 stays behind it (FIFO).
    assert order == ["cancel"]
    t.advance(W)
    await asyncio.wait_for(asyncio.gather(*tasks), 1.0)
    assert order == ["cancel", "read1", "read2"]


async def test_max_wait_refuses_at_once_without_sleeping() -> None:
    t = FakeTime()
    lim = limiter(t, max_wait=1.0)
    await send(lim, READ_A, 100)
    with pytest.raises(RateLimited) as info:
        await send(lim, READ_A, 1)
    assert info.value.retry_after == pytest.approx(BOUNDARY + W + M - T0, abs=1e-5)
    assert info.value.pool == READ_A.pool_key
    assert info.value.status is None
    assert t.sleeps == []
    assert lim.queued() == {}


async def test_max_wait_counts_the_queue_ahead() -> None:
    t = ManualTime()
    lim = limiter(t, max_wait=15.0)
    await send(lim, READ_A, 100)
    first = asyncio.create_task(send(lim, READ_A, 100))
    await asyncio.sleep(0)
    # This one fits only two windows ahead (> 15 s): refused now, not after waiting.
    with pytest.raises(RateLimited) as info:
        await send(lim, READ_A, 50)
    assert info.value.retry_after is not None
    assert info.value.retry_after > 15.0
    assert t.sleeps == [pytest.approx(BOUNDARY + W + M - T0, abs=1e-5)]
    t.advance(W)
    await first


async def test_a_waiter_is_refused_when_the_pool_closes_meanwhile() -> None:
    t = ManualTime()
    lim = limiter(t, max_wait=30.0)
    await send(lim, READ_A, 100)
    waiting = asyncio.create_task(send(lim, READ_A, 10))
    await asyncio.sleep(0)
    lim.on_response(READ_A, 429, {"Retry-After": "120"})
    t.advance(W)
    with pytest.raises(RateLimited) as info:
        await waiting
    assert info.value.retry_after == pytest.approx(120.0 - W, abs=1e-5)
    assert lim.queued() == {}


async def test_max_wait_refuses_a_closed_pool() -> None:
    t = FakeTime()
    lim = limiter(t, max_wait=5.0)
    lim.on_response(READ_A, 429, {"Retry-After": "60"})
    with pytest.raises(RateLimited) as info:
        await send(lim, READ_A, 1)
    assert info.value.retry_after == pytest.approx(60.0, abs=1e-5)
    lim.on_response(READ_B, 429, {"Retry-After": "2"})
    await send(lim, READ_B, 1)
    assert t.sleeps == [pytest.approx(2.0, abs=1e-5)]


async def test_ban_fails_every_acquire_fast() -> None:
    t = FakeTime()
    lim = limiter(t)
    lim.on_response(READ_A, 418, {"Retry-After": "600"})
    for call in (
        lim.acquire(CANCEL, 10),
        lim.acquire(UID_EP, 1),
        lim.acquire_ws(2, critical=True),
        lim.acquire_ws_connect(),
    ):
        with pytest.raises(IPBanned) as info:
            await call
        assert info.value.until == T0 + 600
    assert t.sleeps == []
    lim.ban(T0 + 900)
    with pytest.raises(IPBanned) as info:
        await send(lim, READ_B, 1)
    assert info.value.until == T0 + 900


async def test_queued_waiters_fail_with_ipbanned_when_a_ban_arrives() -> None:
    t = ManualTime()
    lim = limiter(t)
    await send(lim, READ_A, 100)
    tasks = [asyncio.create_task(send(lim, READ_A, 10)) for _ in range(3)]
    await asyncio.sleep(0)
    lim.ban(T0 + 1000)
    t.advance(W)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, IPBanned) for r in results)
    assert lim.queued() == {}
    assert lim.usage()[READ_A.pool_key] == 0


async def test_cancelled_waiters_leave_no_weight_and_no_stuck_queue() -> None:
    t = ManualTime()
    lim = limiter(t)
    await send(lim, READ_A, 100)
    head = asyncio.create_task(send(lim, READ_A, 30))
    middle = asyncio.create_task(send(lim, READ_A, 30))
    tail = asyncio.create_task(send(lim, READ_A, 30))
    await asyncio.sleep(0)
    assert lim.queued() == {READ_A.pool_key: 3}
    assert len(t.sleeps) == 1  # only the head sleeps
    middle.cancel()
    head.cancel()
    await asyncio.gather(head, middle, return_exceptions=True)
    assert head.cancelled() and middle.cancelled()
    t.advance(W)
    await asyncio.wait_for(tail, 1.0)
    assert lim.usage()[READ_A.pool_key] == 30
    assert lim.queued() == {}
    # The fast path is open again.
    await send(lim, READ_A, 70)
    assert lim.usage()[READ_A.pool_key] == 100


async def test_waiter_cancelled_right_after_being_woken_passes_the_turn_on() -> None:
    t = ManualTime()
    lim = limiter(t)
    await send(lim, READ_A, 100)

    async def head_then_cancel_second() -> None:
        await send(lim, READ_A, 10)
        # The head has just handed the turn to `second`, which has not run yet: cancel it now.
        second.cancel()

    head = asyncio.create_task(head_then_cancel_second())
    second = asyncio.create_task(send(lim, READ_A, 10))
    third = asyncio.create_task(send(lim, READ_A, 10))
    await asyncio.sleep(0)
    t.advance(W)
    await asyncio.wait_for(asyncio.gather(head, third), 1.0)
    assert second.cancelled()
    assert lim.usage()[READ_A.pool_key] == 20
    assert lim.queued() == {}


async def test_cancelled_non_critical_head_waiting_behind_a_critical_one() -> None:
    t = ManualTime()
    lim = limiter(t)
    await send(lim, READ_A, 100)
    read = asyncio.create_task(send(lim, READ_A, 10))
    await asyncio.sleep(0)
    cancel = asyncio.create_task(send(lim, READ_A, 10, critical=True))
    await asyncio.sleep(0)
    t.advance(W)
    await asyncio.sleep(0)
    read.cancel()
    await asyncio.gather(read, cancel, return_exceptions=True)
    assert read.cancelled()
    assert cancel.result() is None
    assert lim.usage()[READ_A.pool_key] == 10
    assert lim.queued() == {}


async def test_acquire_is_settled_by_the_response_in_the_same_task() -> None:
    t = FakeTime()
    lim = limiter(t)
    await lim.acquire(READ_A, 60)
    # A response for another pool does not settle this grant.
    lim.on_response(READ_B, 200, {})
    t.now = NEXT
    assert lim.usage()[READ_A.pool_key] == 60
    await lim.acquire(READ_A, 30)
    lim.on_response(READ_A, 200, {})
    t.now = NEXT + W
    assert lim.usage()[READ_A.pool_key] == 0


async def test_response_read_by_another_task_does_not_settle() -> None:
    # Like a stream reader: a task that already runs when the request is granted.
    t = FakeTime()
    lim = limiter(t)
    answered = asyncio.Event()

    async def reader() -> None:
        await answered.wait()
        lim.on_response(READ_A, 200, {})

    reading = asyncio.create_task(reader())
    await lim.acquire(READ_A, 60)
    other = RateLimiter(clock=t.clock, sleep=t.sleep, window=W)
    other.on_response(READ_A, 200, {})  # another limiter's response: not ours either
    answered.set()
    await reading
    t.now = NEXT
    assert lim.usage()[READ_A.pool_key] == 60


async def test_a_grant_is_settled_once_even_if_a_spawned_task_reports_it() -> None:
    t = FakeTime()
    lim = limiter(t)
    unanswered = asyncio.create_task(lim.acquire(READ_A, 40))
    await unanswered
    await lim.acquire(READ_A, 30)

    async def report() -> None:
        lim.on_response(READ_A, 200, {})

    await asyncio.create_task(report())  # inherits this task's grant and settles it
    lim.on_response(READ_A, 200, {})  # the same grant again: nothing more to settle
    t.now = NEXT
    assert lim.usage()[READ_A.pool_key] == 40


async def test_requests_delivered_after_the_boundary_use_the_next_window() -> None:
    # Granted late in a window but stuck in the HTTP connection pool until after the boundary:
    # the server counts them in the next window, so that budget must not be spent again.
    t = FakeTime(start=BOUNDARY + W - 1.0)
    lim = limiter(t)
    delivered = asyncio.Event()

    async def queued_request() -> None:
        await lim.acquire(READ_A, 1)
        await delivered.wait()
        lim.on_response(READ_A, 200, {})

    first = [asyncio.create_task(queued_request()) for _ in range(100)]
    await asyncio.sleep(0)
    assert lim.usage()[READ_A.pool_key] == 100
    t.now = BOUNDARY + W + 0.5  # the server receives and counts all 100 now
    delivered.set()
    await asyncio.gather(*first)
    assert lim.usage()[READ_A.pool_key] == 100
    await send(lim, READ_A, 1)
    assert t.now >= BOUNDARY + 2 * W


async def test_ws_requests_share_the_api_pool_with_rest() -> None:
    t = FakeTime()
    lim = limiter(t)
    await send(lim, SERVER_TIME, 50)
    await lim.acquire_ws(50)
    assert lim.usage()[API_IP_KEY] == 100
    await lim.acquire_ws(2, critical=True)
    assert len(t.sleeps) == 1
    lim.on_ws_response(
        200,
        [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
                "count": 90,
            }
        ],
        None,
    )
    assert lim.usage()[API_IP_KEY] == 90


async def test_acquire_ws_connect_waits_within_the_attempt_limit() -> None:
    t = FakeTime(start=1_700_000_100.5)
    lim = limiter(t, ws_connect_limit=2, ws_connect_window=300.0)
    await lim.acquire_ws_connect()
    await lim.acquire_ws_connect()
    assert t.sleeps == []
    await lim.acquire_ws_connect()
    assert t.sleeps == [pytest.approx(300.0 + M - 0.5, abs=1e-5)]
    assert lim.usage()[WS_CONNECT_KEY] == 1


async def test_acquire_ws_connect_refused_beyond_max_wait() -> None:
    t = FakeTime()
    lim = limiter(t, ws_connect_limit=1, ws_connect_window=300.0, max_wait=10.0)
    await lim.acquire_ws_connect()
    with pytest.raises(RateLimited) as info:
        await lim.acquire_ws_connect()
    assert info.value.pool == WS_CONNECT_KEY
    assert t.sleeps == []


async def test_order_limits_from_the_rate_limit_endpoint() -> None:
    t = FakeTime()
    lim = limiter(t, sapi_uid_limit=100_000)
    lim.set_order_limits(
        [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": 2,
                "count": 1,
            }
        ]
    )
    await send(lim, NEW_ORDER, 6)
    assert t.sleeps == []
    await send(lim, NEW_ORDER, 6)
    assert len(t.sleeps) == 1
    lim.on_response(NEW_ORDER, 200, {"X-MBX-ORDER-COUNT-10S": "2"})
    assert lim.usage()["ORDERS:10S"] == 2


async def test_invalid_weight_raises_from_acquire() -> None:
    lim = limiter(FakeTime())
    with pytest.raises(ParameterError):
        await send(lim, READ_A, 101)
    with pytest.raises(ParameterError, match="max_wait"):
        RateLimiter(max_wait=-1.0)


async def test_default_clock_and_sleep() -> None:
    lim = RateLimiter()
    await send(lim, SERVER_TIME, 1)
    assert lim.usage()[API_IP_KEY] >= 1
    assert isinstance(lim.core, LimiterCore)


# Accounts and IPs: pools keyed as Binance keys them


def test_uid_pools_are_per_account_and_ip_pools_are_shared_by_every_account() -> None:
    c = core()
    for account in ("alice", "bob", "carol"):
        # Each account has its own full UID budget for the same endpoint...
        assert c.reserve(UID_EP.pool, UID_EP.pool_key, 100, T0, account=account) == 0.0
        assert c.reserve(UID_EP.pool, UID_EP.pool_key, 1, T0, account=account) > 0.0
    # ...while an IP pool is one budget for every account on the IP.
    assert c.reserve(READ_A.pool, READ_A.pool_key, 60, T0, account="alice") == 0.0
    assert c.reserve(READ_A.pool, READ_A.pool_key, 41, T0, account="bob") > 0.0
    assert c.reserve(API_EP.pool, API_EP.pool_key, 100, T0, account="alice") == 0.0
    assert c.reserve(API_EP.pool, API_EP.pool_key, 1, T0, account="carol") > 0.0
    assert c.usage(T0, account="bob")[UID_EP.pool_key] == 100
    assert c.usage(T0, account="dave").get(UID_EP.pool_key) is None
    assert c.usage(T0, account="dave")[READ_A.pool_key] == 60


def test_ip_pools_bans_and_connections_are_per_ip_label() -> None:
    c = LimiterCore(
        api_ip_limit=100,
        sapi_ip_limit=100,
        sapi_uid_limit=100,
        window=W,
        critical_reserve=0.0,
        ip="10.0.0.1",
    )
    assert c.ip == "10.0.0.1"
    assert take(c, READ_A, 100, T0) == 0.0
    assert c.reserve(READ_A.pool, READ_A.pool_key, 100, T0, ip="10.0.0.2") == 0.0
    assert take(c, READ_A, 1, T0) > 0.0
    # The UID budget is the account's, whichever IP the request leaves from.
    assert c.reserve(UID_EP.pool, UID_EP.pool_key, 100, T0, ip="10.0.0.2") == 0.0
    assert take(c, UID_EP, 1, T0) > 0.0
    c.on_response(READ_A.pool, READ_A.pool_key, 418, {"Retry-After": "60"}, T0, ip="10.0.0.2")
    with pytest.raises(IPBanned):
        c.reserve(READ_B.pool, READ_B.pool_key, 1, T0, ip="10.0.0.2")
    assert take(c, READ_B, 1, T0) == 0.0
    assert c.banned_until == 0.0
    assert c.banned_until_for("10.0.0.2") == T0 + 60
    assert c.reserve_connect(T0, ip="10.0.0.3") == 0.0
    assert c.usage(T0, ip="10.0.0.3")[WS_CONNECT_KEY] == 1
    assert c.usage(T0)[WS_CONNECT_KEY] == 0


def test_order_counts_and_their_limits_are_per_account() -> None:
    c = core(sapi_uid_limit=100_000)
    limits = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 2}]
    c.set_order_limits(limits, T0, account="alice")
    for _ in range(2):
        assert c.reserve(NEW_ORDER.pool, NEW_ORDER.pool_key, 6, T0, orders=1, account="alice") == 0
    assert c.reserve(NEW_ORDER.pool, NEW_ORDER.pool_key, 6, T0, orders=1, account="alice") > 0.0
    # Bob keeps the default limits and his own count.
    assert c.reserve(NEW_ORDER.pool, NEW_ORDER.pool_key, 6, T0, orders=1, account="bob") == 0.0
    assert c.usage(T0, account="bob")["ORDERS:10S"] == 1
    assert c.usage(T0, account="alice")["ORDERS:10S"] == 2
    # Order-count headers and a 429 of one account never touch another's.
    headers = {"X-MBX-ORDER-COUNT-10S": "10000"}
    c.on_response(NEW_ORDER.pool, NEW_ORDER.pool_key, 200, headers, T0, account="carol")
    assert c.usage(T0, account="carol")["ORDERS:10S"] == 10000
    assert c.usage(T0, account="bob")["ORDERS:10S"] == 1
    c.on_response(
        NEW_ORDER.pool, NEW_ORDER.pool_key, 429, {}, T0, counts_order=True, account="carol"
    )
    assert c.reserve(NEW_ORDER.pool, NEW_ORDER.pool_key, 6, T0, orders=1, account="bob") == 0.0


def test_uid_weight_headers_feed_the_accounts_own_pool() -> None:
    c = core()
    header = {"X-SAPI-USED-UID-WEIGHT-1M": "95"}
    c.on_response(UID_EP.pool, UID_EP.pool_key, 200, header, T0, account="alice")
    assert c.usage(T0, account="alice")[UID_EP.pool_key] == 95
    assert c.reserve(UID_EP.pool, UID_EP.pool_key, 6, T0, account="alice") > 0.0
    assert c.reserve(UID_EP.pool, UID_EP.pool_key, 100, T0, account="bob") == 0.0


def test_ws_rate_limits_feed_the_ip_and_the_account() -> None:
    c = core()
    rate_limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": 100, "count": 70},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
         "limit": 50, "count": 7},
    ]  # fmt: skip
    c.on_ws_response(200, rate_limits, None, T0, account="alice", ip="10.0.0.2")
    assert c.usage(T0, account="alice", ip="10.0.0.2")[API_IP_KEY] == 70
    assert c.usage(T0, account="alice")["ORDERS:10S"] == 7
    assert c.usage(T0, account="bob")["ORDERS:10S"] == 0
    assert c.usage(T0)[API_IP_KEY] == 0


def test_identity_labels_must_be_strings() -> None:
    with pytest.raises(ParameterError) as info:
        LimiterCore(ip="")
    assert info.value.param == "ip"
    c = core()
    with pytest.raises(ParameterError) as info:
        c.reserve(UID_EP.pool, UID_EP.pool_key, 1, T0, account=7)  # type: ignore[arg-type]
    assert info.value.param == "account"


# Weight rules that depend on parameters


def test_open_orders_without_symbol_cost_the_trading_symbols() -> None:
    ep = ENDPOINTS["get_open_orders"]
    assert ep.weight_for([("symbol", "BTCUSDT")]) == 10
    assert ep.weight_for([]) == DEFAULT_TRADING_SYMBOLS
    assert ep.weight_for([("isIsolated", "FALSE")], 412) == 412
    assert ep.weight_for([], 3) == 10  # never less than with a symbol
    c = core()
    assert c.trading_symbols == DEFAULT_TRADING_SYMBOLS
    c.set_trading_symbols(412)
    assert c.trading_symbols == 412
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ParameterError):
            c.set_trading_symbols(bad)  # type: ignore[arg-type]


def test_max_leverage_takes_one_request_per_window_per_ip_besides_its_uid_weight() -> None:
    ep = ENDPOINTS["adjust_max_leverage"]
    c = core(sapi_uid_limit=100_000)
    assert c.reserve(ep.pool, ep.pool_key, 3000, T0, account="alice") == 0.0
    # Another account on the same IP: its UID budget is untouched, but the IP rule is spent.
    wait = c.reserve(ep.pool, ep.pool_key, 3000, T0, account="bob")
    assert wait == pytest.approx(BOUNDARY + W + M - T0)
    assert c.reserve(ep.pool, ep.pool_key, 3000, T0, account="bob", ip="10.0.0.2") == 0.0
    assert c.reserve(ep.pool, ep.pool_key, 3000, T0 + wait, account="bob") == 0.0
    assert c.usage(T0 + wait)[f"{IP_REQUESTS_KEY}:POST /sapi/v1/margin/max-leverage"] == 1
    # The estimate counts the rule too (one request per queued request).
    assert c.estimate(ep.pool, ep.pool_key, 3000, T0 + wait, account="carol") > 0.0


# Capped closures and bans


def test_a_wild_retry_after_closes_a_pool_for_three_days_at_most() -> None:
    c = core()
    c.on_response(READ_A.pool, READ_A.pool_key, 429, {"Retry-After": "1e12"}, T0)
    assert take(c, READ_A, 1, T0) == pytest.approx(MAX_BAN, abs=1e-3)
    assert take(c, READ_A, 1, T0 + MAX_BAN) == 0.0
    c.on_response(API_EP.pool, API_EP.pool_key, 418, {"Retry-After": "1e12"}, T0)
    assert c.banned_until == T0 + MAX_BAN
    assert MAX_BAN == 3 * 86400.0


def test_ws_and_body_bans_are_capped_too() -> None:
    c = core()
    c.on_ws_response(418, None, {"retryAfter": 10**18}, T0)
    assert c.banned_until == T0 + MAX_BAN
    other = core()
    other.on_ws_response(429, None, {"retryAfter": float("inf")}, T0)
    assert take(other, API_EP, 1, T0) == pytest.approx(BOUNDARY + W + M - T0)
    body = core()
    body.ban(1e15, now=T0)
    assert body.banned_until == T0 + MAX_BAN


async def test_shell_ban_from_a_body_is_capped_at_three_days() -> None:
    t = FakeTime()
    lim = limiter(t)
    lim.ban(1e15)
    with pytest.raises(IPBanned) as info:
        await lim.acquire(READ_A, 1)
    assert info.value.until == T0 + MAX_BAN


# The shell with accounts


async def test_one_shared_limiter_gives_three_accounts_their_full_order_budget() -> None:
    # The case: 3 accounts x 50 orders, each within its own UID budget of 25 orders per
    # window. Pooled across accounts this needed 6 windows; per account it needs 2, the minimum.
    t = FakeTime()
    lim = limiter(t, sapi_uid_limit=150)
    grants: dict[str, list[float]] = defaultdict(list)

    async def orders(account: str) -> None:
        for _ in range(50):
            await lim.acquire(NEW_ORDER, 6, account=account)
            lim.on_response(NEW_ORDER, 200, {}, account=account)
            grants[account].append(t.clock())

    await asyncio.gather(*(orders(a) for a in ("alice", "bob", "carol")))
    for account in ("alice", "bob", "carol"):
        per_window: dict[float, int] = defaultdict(int)
        for at in grants[account]:
            per_window[(at - M) // W] += 1
        assert sorted(per_window.values()) == [25, 25], account
    assert lim.usage(account="alice")["ORDERS:10S"] == 25
    assert lim.queued() == {}


async def test_grant_is_settled_only_by_the_same_accounts_response() -> None:
    t = FakeTime(BOUNDARY + W - 1.0)  # a second before the boundary: carried unless settled
    lim = limiter(t)
    await lim.acquire(UID_EP, 40, account="alice")
    lim.on_response(UID_EP, 200, {}, account="bob")  # another account's pool: not this grant
    t.now = BOUNDARY + W + M + 0.1
    assert lim.usage(account="alice")[UID_EP.pool_key] == 40  # carried: not settled
    await lim.acquire(UID_EP, 40, account="carol")
    lim.on_response(UID_EP, 200, {}, account="carol")
    t.now += W
    assert lim.usage(account="carol")[UID_EP.pool_key] == 0


async def test_ws_requests_take_orders_of_the_account_and_weight_of_the_ip() -> None:
    t = FakeTime()
    lim = limiter(t, ip="10.0.0.1")
    await lim.acquire_ws(1, orders=1, account="alice")
    await lim.acquire_ws(2, ip="10.0.0.2")
    await lim.acquire_ws_connect(ip="10.0.0.2")
    assert lim.usage(account="alice")["ORDERS:10S"] == 1
    assert lim.usage()[API_IP_KEY] == 1
    assert lim.usage(ip="10.0.0.2")[API_IP_KEY] == 2 + WS_CONNECT_WEIGHT
    lim.on_ws_response(418, None, None, ip="10.0.0.2")
    with pytest.raises(IPBanned):
        await lim.acquire_ws(1, ip="10.0.0.2")
    await lim.acquire_ws(1)
    lim.set_order_limits(
        [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 1}],
        account="alice",
    )
    await lim.acquire_ws(1, orders=1, account="bob")
    assert t.sleeps == []
    await lim.acquire_ws(1, orders=1, account="alice")  # alice's 1 order per 10 s is spent
    assert t.sleeps == [pytest.approx(BOUNDARY + 10.0 + M - T0, abs=1e-5)]


# The plan a shared limiter charges (RedisRateLimiter)


def test_plan_lists_every_window_of_a_request_with_its_scope_and_cap() -> None:
    c = core(sapi_uid_limit=100, critical_reserve=0.1)
    charges = c.plan(NEW_ORDER.pool, NEW_ORDER.pool_key, 6, orders=1, account="alice", ip="1.2.3.4")
    assert [(ch.scope, ch.name, ch.length, ch.cap, ch.amount) for ch in charges] == [
        ("account:alice", NEW_ORDER.pool_key, W, 90, 6),
        ("account:alice", "ORDERS:10S", 10.0, 9000, 1),
        ("account:alice", "ORDERS:1D", 86400.0, 18000, 1),
    ]
    assert c.plan(NEW_ORDER.pool, NEW_ORDER.pool_key, 6, critical=True)[0].cap == 100
    leverage = ENDPOINTS["adjust_max_leverage"]
    rule = c.plan(leverage.pool, leverage.pool_key, 50, ip="1.2.3.4")[1]
    assert (rule.scope, rule.cap, rule.amount) == ("ip:1.2.3.4", 1, 1)
    connect = c.plan(None, WS_CONNECT_KEY, 0, ip="1.2.3.4")
    assert [(ch.scope, ch.name, ch.amount) for ch in connect] == [
        ("ip:1.2.3.4", WS_CONNECT_KEY, 1),
        ("ip:1.2.3.4", API_IP_KEY, WS_CONNECT_WEIGHT),
    ]
    with pytest.raises(ParameterError):
        c.plan(READ_A.pool, READ_A.pool_key, 95)


def test_record_charges_without_checking_and_spent_lists_what_was_counted() -> None:
    c = core()
    c.record(READ_A.pool, READ_A.pool_key, 150, T0)  # beyond the limit: recorded anyway
    c.record(NEW_ORDER.pool, NEW_ORDER.pool_key, 6, T0, orders=1, account="alice")
    c.record(None, WS_CONNECT_KEY, 0, T0)
    assert c.usage(T0)[READ_A.pool_key] == 150
    assert take(c, READ_A, 1, T0) > 0.0
    spent = {(ch.scope, ch.name): ch.used for ch in c.spent(T0)}
    assert spent == {
        ("ip:local", READ_A.pool_key): 150,
        ("ip:local", API_IP_KEY): WS_CONNECT_WEIGHT,
        ("ip:local", WS_CONNECT_KEY): 1,
        ("account:alice", NEW_ORDER.pool_key): 6,
        ("account:alice", "ORDERS:10S"): 1,
        ("account:alice", "ORDERS:1D"): 1,
    }
    assert c.spent(T0 + 2 * 86400) == []
