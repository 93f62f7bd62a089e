"""The endpoint table: completeness against the seed documents, weights, pools, security."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from binance_margin_async.api import MarginAPI
from binance_margin_async.endpoints import (
    ENDPOINTS,
    ENDPOINTS_BY_ROUTE,
    EXCHANGE_INFO,
    EXCLUDED,
    RETIRED,
    SERVER_TIME,
    SPOT_ORDER_ENDPOINTS,
    Endpoint,
    Pool,
    Security,
    endpoint_for,
)

DATA = Path(__file__).parent / "data"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
_LINE = re.compile(r"^(GET|POST|PUT|DELETE) (/\S+)(?: \| (.+))?$")
_SEED_ROUTE = re.compile(r"(GET|POST|PUT|DELETE)[` *]*(/(?:sapi|api|v1)/[A-Za-z0-9/_-]+)")


def _seed_lines() -> list[tuple[str, str, str | None]]:
    lines = []
    for raw in (DATA / "seed_endpoints.txt").read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        match = _LINE.match(raw)
        assert match, f"malformed line in seed_endpoints.txt: {raw!r}"
        lines.append((match[1], match[2], match[3]))
    return lines


WRAPPED = {(ep.method, ep.path) for ep in ENDPOINTS.values()} | {
    (SERVER_TIME.method, SERVER_TIME.path),
    (EXCHANGE_INFO.method, EXCHANGE_INFO.path),
}
RETIRED_ROUTES = {(r.method, r.path) for r in RETIRED}
EXCLUDED_ROUTES = {(e.method, e.path) for e in EXCLUDED}


def test_every_seed_endpoint_is_wrapped_retired_or_excluded() -> None:
    lines = _seed_lines()
    assert len(lines) > 100
    missing = [
        f"{method} {path}"
        for method, path, _ in lines
        if (method, path) not in WRAPPED | RETIRED_ROUTES | EXCLUDED_ROUTES
    ]
    assert missing == []


def test_wrapped_retired_and_excluded_are_disjoint() -> None:
    assert WRAPPED.isdisjoint(RETIRED_ROUTES)
    assert WRAPPED.isdisjoint(EXCLUDED_ROUTES)
    assert RETIRED_ROUTES.isdisjoint(EXCLUDED_ROUTES)
    assert len(RETIRED_ROUTES) == len(RETIRED)
    assert len(EXCLUDED_ROUTES) == len(EXCLUDED)


def test_retired_and_excluded_say_why() -> None:
    for retired in RETIRED:
        assert retired.replacement and retired.note
        # A replacement naming a route must name one that the client wraps.
        route = re.match(r"(GET|POST|PUT|DELETE) (/\S+)", retired.replacement)
        if route and route[2].startswith("/sapi"):
            assert (route[1], route[2]) in WRAPPED, retired
    for excluded in EXCLUDED:
        assert excluded.reason


def test_the_retirements_the_protocol_names() -> None:
    for method in ("POST", "PUT", "DELETE"):
        assert (method, "/sapi/v1/userDataStream") in RETIRED_ROUTES
        assert (method, "/sapi/v1/userDataStream/isolated") in RETIRED_ROUTES
    for route in [
        ("GET", "/sapi/v1/margin/leverageBracket"),
        ("POST", "/sapi/v1/margin/loan"),
        ("POST", "/sapi/v1/margin/repay"),
        ("POST", "/sapi/v1/margin/transfer"),
        ("POST", "/sapi/v1/margin/isolated/transfer"),
        ("POST", "/sapi/v1/margin/isolated/create"),
        ("GET", "/sapi/v1/margin/asset"),
        ("GET", "/sapi/v1/margin/pair"),
        ("GET", "/sapi/v1/margin/isolated/pair"),
        ("POST", "/sapi/v1/margin/dust"),
    ]:
        assert route in RETIRED_ROUTES, route


@pytest.mark.skipif(not SEEDS.is_dir(), reason="seed documents are not in this checkout")
def test_seed_list_is_complete_against_the_seed_documents() -> None:
    listed = {(method, path) for method, path, _ in _seed_lines()}
    titles = {title for _, _, title in _seed_lines() if title}
    for seed in sorted(SEEDS.glob("00[0-3]_*.txt")):
        for method, path in _SEED_ROUTE.findall(seed.read_text()):
            if path.startswith("/v1/"):  # seed 003's typo for /sapi/v1/...
                path = "/sapi" + path
            assert (method, path) in listed, f"{seed.name}: {method} {path}"
    (page_seed,) = SEEDS.glob("004_*.txt")
    page_titles = set(re.findall(r"^(.+?) › Authorization$", page_seed.read_text(), re.M))
    assert page_titles
    assert page_titles <= titles


def test_key_weights_pools_and_security() -> None:
    new_order = ENDPOINTS["new_order"]
    assert (new_order.pool, new_order.weight, new_order.heavy_weight) == (Pool.SAPI_UID, 6, 1500)
    assert new_order.security is Security.SIGNED
    assert new_order.orders and not new_order.critical

    token = ENDPOINTS["create_listen_token"]
    assert (token.security, token.pool, token.weight) == (Security.USER_STREAM, Pool.SAPI_UID, 1)
    assert token.critical

    account = ENDPOINTS["get_account"]
    assert (account.security, account.pool, account.weight) == (Security.SIGNED, Pool.SAPI_IP, 10)

    assert (ENDPOINTS["get_max_borrowable"].pool, ENDPOINTS["get_max_borrowable"].weight) == (
        Pool.SAPI_UID,
        750,
    )
    assert ENDPOINTS["get_capital_flow"].weight == 100
    assert ENDPOINTS["close_risk_data_stream"].weight == 3000
    assert SERVER_TIME.security is Security.NONE
    assert (SERVER_TIME.pool, SERVER_TIME.weight, SERVER_TIME.pool_key) == (
        Pool.API_IP,
        1,
        "API_IP",
    )


@pytest.mark.parametrize("name", ["new_order", "new_oco", "new_oto", "new_otoco"])
def test_order_weight_depends_on_side_effect(name: str) -> None:
    ep = ENDPOINTS[name]
    assert ep.orders
    assert ep.weight_for([("symbol", "BTCUSDT")]) == 6
    assert ep.weight_for([("sideEffectType", "NO_SIDE_EFFECT")]) == 6
    assert ep.weight_for([("sideEffectType", "AUTO_REPAY")]) == 6
    assert ep.weight_for([("symbol", "X"), ("sideEffectType", "MARGIN_BUY")]) == 1500
    assert ep.weight_for([("sideEffectType", "AUTO_BORROW_REPAY")]) == 1500


def test_weight_that_depends_on_a_parameter() -> None:
    cross = ENDPOINTS["get_cross_margin_fee_data"]
    assert cross.weight_for([("coin", "BTC")]) == 1
    assert cross.weight_for([("vipLevel", "1")]) == 5
    isolated = ENDPOINTS["get_isolated_margin_fee_data"]
    assert isolated.weight_for([("symbol", "BTCUSDT")]) == 1
    assert isolated.weight_for([]) == 10
    assert ENDPOINTS["get_account"].weight_for([("anything", "1")]) == 10


def test_only_risk_reducing_and_stream_renewal_calls_are_critical() -> None:
    critical = {name for name, ep in ENDPOINTS.items() if ep.critical}
    assert critical == {
        "cancel_order",
        "cancel_open_orders",
        "cancel_order_list",
        "repay",
        "repay_liquidation_loan",
        "repay_loan_group",
        "create_listen_token",
        "start_risk_data_stream",
        "keepalive_risk_data_stream",
    }


def test_borrow_and_repay_share_one_route_and_budget() -> None:
    borrow, repay = ENDPOINTS["borrow"], ENDPOINTS["repay"]
    assert (borrow.method, borrow.path) == (repay.method, repay.path)
    assert borrow.pool_key == repay.pool_key == "SAPI_UID:POST /sapi/v1/margin/borrow-repay"
    assert (borrow.weight, repay.weight) == (1500, 1500)
    assert repay.critical and not borrow.critical


def test_routes_are_unique_apart_from_borrow_repay() -> None:
    seen: dict[tuple[str, str], list[str]] = {}
    for ep in ENDPOINTS.values():
        seen.setdefault((ep.method, ep.path), []).append(ep.name)
    shared = {route: names for route, names in seen.items() if len(names) > 1}
    assert shared == {("POST", "/sapi/v1/margin/borrow-repay"): ["borrow", "repay"]}
    assert endpoint_for("POST", "/sapi/v1/margin/borrow-repay") is ENDPOINTS["borrow"]
    assert endpoint_for("GET", "/sapi/v1/margin/account") is ENDPOINTS["get_account"]
    assert endpoint_for("GET", "/sapi/v1/margin/nope") is None
    assert len(ENDPOINTS_BY_ROUTE) == len(ENDPOINTS) - 1


def test_table_rows_are_well_formed() -> None:
    for name, ep in ENDPOINTS.items():
        assert ep.name == name
        assert ep.method in {"GET", "POST", "PUT", "DELETE"}
        assert ep.path.startswith("/sapi/")
        assert ep.pool in (Pool.SAPI_IP, Pool.SAPI_UID)
        assert ep.pool_key == f"{ep.pool}:{ep.method} {ep.path}"
        assert ep.weight >= 1
        assert ep.doc.startswith("https://developers.binance.com/docs/")
        # Only order placements are charged per order.
        assert bool(ep.orders) == (ep.heavy_weight is not None)
    # Keyed-only (no signature): stream tokens and MARKET_DATA endpoints without a timestamp.
    assert {n for n, ep in ENDPOINTS.items() if ep.security is Security.USER_STREAM} == {
        "create_listen_token",
        "start_risk_data_stream",
        "keepalive_risk_data_stream",
        "close_risk_data_stream",
        "get_all_assets",
        "get_all_pairs",
        "get_cross_margin_collateral_ratio",
        "get_price_index",
        "get_limit_price_pairs",
        "get_risk_based_liquidation_ratio",
        "get_restricted_assets",
    }


def test_endpoint_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ENDPOINTS["get_account"].weight = 1  # type: ignore[misc]
    ep = Endpoint("x", "GET", "/sapi/v1/x", Security.SIGNED, Pool.SAPI_IP, 3)
    assert ep.pool_key == "SAPI_IP:GET /sapi/v1/x"
    assert ep.weight_for([]) == 3


def test_one_documented_api_method_per_endpoint() -> None:
    for name, ep in ENDPOINTS.items():
        method = getattr(MarginAPI, name, None)
        assert method is not None, f"MarginAPI has no method {name}"
        assert inspect.iscoroutinefunction(method), name
        assert ep.doc in (method.__doc__ or ""), f"{name} docstring does not link {ep.doc}"
    public = {
        name
        for name, member in inspect.getmembers(MarginAPI, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    # Beyond the SAPI table: the /api/v3 calls (server time, symbol rules) and the special-key
    # cancel-replace, which has no SAPI route.
    extra = {"server_time", "get_exchange_info", "get_symbol_info", "cancel_replace_order"}
    assert public - set(ENDPOINTS) == extra
    for name, ep in (
        ("get_exchange_info", EXCHANGE_INFO),
        ("cancel_replace_order", SPOT_ORDER_ENDPOINTS["cancel_replace_order"]),
    ):
        assert ep.doc in (getattr(MarginAPI, name).__doc__ or ""), name


def test_order_lists_count_every_order() -> None:
    # Margin-Account-New-OCO: "an OCO counts as 2 orders"; New-OTO: 2; New-OTOCO: 3 (SEED 004).
    counts = {name: ENDPOINTS[name].orders for name in ("new_order", "new_oco", "new_oto")}
    assert counts == {"new_order": 1, "new_oco": 2, "new_oto": 2}
    assert ENDPOINTS["new_otoco"].orders == 3
    assert not ENDPOINTS["cancel_order_list"].orders


def test_special_key_routes_mirror_the_sapi_order_endpoints() -> None:
    for name, ep in SPOT_ORDER_ENDPOINTS.items():
        assert ep.name == name
        assert ep.path.startswith("/api/v3/")
        assert ep.pool is Pool.API_IP
        assert ep.security is Security.SIGNED
        if name != "cancel_replace_order":
            sapi = ENDPOINTS[name]
            assert ep.critical == sapi.critical, name
            assert ep.orders == sapi.orders, name
    # Spot weights: openOrders costs 6 for one symbol and 80 for all.
    open_orders = SPOT_ORDER_ENDPOINTS["get_open_orders"]
    assert open_orders.weight_for([("symbol", "BTCUSDT")]) == 6
    assert open_orders.weight_for([]) == 80
