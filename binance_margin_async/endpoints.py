"""The one table of Binance margin REST endpoints: path, security, weight pool and weight rule.

Pure data. The REST shell reads ``security`` to decide whether to send the API key and whether to
sign; the limiter reads ``pool``/``pool_key``/``weight_for`` to charge the right budget; the fake
exchange uses the same table so both sides agree on weights and headers.

Weight pools (PROTOCOL.md §2.1):

* ``Pool.API_IP``: ``/api/*`` and the WebSocket API share one 6,000/min budget per IP.
* ``Pool.SAPI_IP``: every SAPI endpoint marked "(IP)" has its *own* 12,000/min budget per IP.
* ``Pool.SAPI_UID``: every SAPI endpoint marked "(UID)" has its *own* 180,000/min budget per
  account.

Because SAPI budgets are per endpoint, ``pool_key`` names the pool *and* the endpoint
(``"SAPI_UID:POST /sapi/v1/margin/order"``); endpoints that share a route (``borrow``/``repay`` are
both ``POST /sapi/v1/margin/borrow-repay``) therefore share one budget, as on the server.

Weights follow PROTOCOL.md §2.2 where it is newer than the seeds or the official SDK (e.g.
``maxBorrowable`` is 750 UID since 2026-04-16).

Docs: https://developers.binance.com/docs/margin_trading/general-info
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "DEFAULT_TRADING_SYMBOLS",
    "ENDPOINTS",
    "ENDPOINTS_BY_ROUTE",
    "EXCHANGE_INFO",
    "EXCLUDED",
    "HEAVY_SIDE_EFFECTS",
    "RETIRED",
    "SERVER_TIME",
    "SPOT_ORDER_ENDPOINTS",
    "Endpoint",
    "ExcludedEndpoint",
    "Pool",
    "RetiredEndpoint",
    "Security",
    "endpoint_for",
]


class Security(StrEnum):
    """How a request is authenticated (PROTOCOL.md §1.1)."""

    #: Public: no API key, no signature.
    NONE = "NONE"
    #: API key header only, no timestamp/signature. Binance calls this ``USER_STREAM`` for stream
    #: tokens and ``MARKET_DATA`` for keyed market data; on the wire both are the same.
    USER_STREAM = "USER_STREAM"
    #: API key header plus ``timestamp``/``recvWindow``/``signature`` (TRADE, MARGIN, USER_DATA).
    SIGNED = "SIGNED"


class Pool(StrEnum):
    """Which rate-limit budget a request is charged to (PROTOCOL.md §2.1)."""

    API_IP = "API_IP"
    SAPI_IP = "SAPI_IP"
    SAPI_UID = "SAPI_UID"


#: How many symbols ``GET /sapi/v1/margin/openOrders`` without ``symbol`` is charged for until the
#: real number is known (:meth:`Endpoint.weight_for`'s ``trading_symbols``). Binance charges "the
#: number of symbols currently trading on the exchange" (Query-Margin-Account-Open-Orders); spot
#: lists about 1,500 trading symbols and cross margin a few hundred pairs, so 2,000 is a safe upper
#: bound: such a call may be refused locally, never answered with a 429.
DEFAULT_TRADING_SYMBOLS: Final = 2000

#: ``sideEffectType`` values that make an order/OCO/OTO/OTOCO cost ``heavy_weight`` (1500 UID)
#: instead of 6 (margin change log 2026-04-23, effective 2026-05-07).
HEAVY_SIDE_EFFECTS: Final = frozenset({"MARGIN_BUY", "AUTO_BORROW_REPAY"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST endpoint: route, authentication, weight pool and weight rule.

    ``weight_without`` covers endpoints whose weight depends on whether a parameter is present
    (``crossMarginData`` costs 1 with ``coin`` and 5 without): ``("coin", 5)`` means "5 when no
    ``coin`` parameter is sent". ``symbols_without`` names a parameter without which the request
    costs the number of trading symbols (``openOrders`` without ``symbol``), never less than
    ``weight``. ``ip_requests`` is an extra limit of requests per minute per IP on top of the
    weight (``max-leverage``: 1).
    """

    name: str
    method: str
    path: str
    security: Security
    pool: Pool
    weight: int
    heavy_weight: int | None = None
    critical: bool = False
    orders: int = 0
    doc: str = ""
    weight_without: tuple[str, int] | None = None
    symbols_without: str | None = None
    ip_requests: int | None = None
    pool_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Precomputed once: the limiter looks this up on every request.
        key = "API_IP" if self.pool is Pool.API_IP else f"{self.pool}:{self.method} {self.path}"
        object.__setattr__(self, "pool_key", key)

    def weight_for(
        self, params: Sequence[tuple[str, str]], trading_symbols: int = DEFAULT_TRADING_SYMBOLS
    ) -> int:
        """The weight this request costs, given the exact parameters that will be sent.

        ``trading_symbols`` is the number of symbols trading on the exchange (see
        :data:`DEFAULT_TRADING_SYMBOLS`); only endpoints with ``symbols_without`` use it.
        """
        if self.symbols_without is not None:
            for key, _ in params:
                if key == self.symbols_without:
                    return self.weight
            return max(self.weight, trading_symbols)
        if self.heavy_weight is not None:
            for key, value in params:
                if key == "sideEffectType":
                    return self.heavy_weight if value in HEAVY_SIDE_EFFECTS else self.weight
            return self.weight
        if self.weight_without is not None:
            name, weight = self.weight_without
            for key, _ in params:
                if key == name:
                    return self.weight
            return weight
        return self.weight


@dataclass(frozen=True, slots=True)
class RetiredEndpoint:
    """An endpoint named in the seed documents that Binance no longer serves."""

    method: str
    path: str
    replacement: str
    note: str


@dataclass(frozen=True, slots=True)
class ExcludedEndpoint:
    """An endpoint named in the seeds that still exists but is deliberately not wrapped."""

    method: str
    path: str
    reason: str


_MT: Final = "https://developers.binance.com/docs/margin_trading/"
_IL: Final = "https://developers.binance.com/docs/institutional_loan/"
_WALLET: Final = "https://developers.binance.com/docs/wallet/asset/"

_S = Security.SIGNED
_K = Security.USER_STREAM
_IP = Pool.SAPI_IP
_UID = Pool.SAPI_UID

_ORDER_HEAVY: Final = 1500
_SPOT_REST: Final = "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/"

_TABLE: Final[tuple[Endpoint, ...]] = (
    # Trade
    Endpoint("new_order", "POST", "/sapi/v1/margin/order", _S, _UID, 6,
             heavy_weight=_ORDER_HEAVY, orders=1,
             doc=_MT + "trade/Margin-Account-New-Order"),
    Endpoint("cancel_order", "DELETE", "/sapi/v1/margin/order", _S, _IP, 10, critical=True,
             doc=_MT + "trade/Margin-Account-Cancel-Order"),
    Endpoint("get_order", "GET", "/sapi/v1/margin/order", _S, _IP, 10,
             doc=_MT + "trade/Query-Margin-Account-Order"),
    Endpoint("get_open_orders", "GET", "/sapi/v1/margin/openOrders", _S, _IP, 10,
             symbols_without="symbol", doc=_MT + "trade/Query-Margin-Account-Open-Orders"),
    Endpoint("cancel_open_orders", "DELETE", "/sapi/v1/margin/openOrders", _S, _IP, 1,
             critical=True, doc=_MT + "trade/Margin-Account-Cancel-All-Open-Orders"),
    Endpoint("get_all_orders", "GET", "/sapi/v1/margin/allOrders", _S, _IP, 200,
             doc=_MT + "trade/Query-Margin-Account-All-Orders"),
    Endpoint("get_my_trades", "GET", "/sapi/v1/margin/myTrades", _S, _IP, 10,
             doc=_MT + "trade/Query-Margin-Account-Trade-List"),
    Endpoint("new_oco", "POST", "/sapi/v1/margin/order/oco", _S, _UID, 6,
             heavy_weight=_ORDER_HEAVY, orders=2,
             doc=_MT + "trade/Margin-Account-New-OCO"),
    Endpoint("new_oto", "POST", "/sapi/v1/margin/order/oto", _S, _UID, 6,
             heavy_weight=_ORDER_HEAVY, orders=2,
             doc=_MT + "trade/Margin-Account-New-OTO"),
    Endpoint("new_otoco", "POST", "/sapi/v1/margin/order/otoco", _S, _UID, 6,
             heavy_weight=_ORDER_HEAVY, orders=3,
             doc=_MT + "trade/Margin-Account-New-OTOCO"),
    Endpoint("cancel_order_list", "DELETE", "/sapi/v1/margin/orderList", _S, _UID, 1,
             critical=True, doc=_MT + "trade/Margin-Account-Cancel-OCO"),
    Endpoint("get_order_list", "GET", "/sapi/v1/margin/orderList", _S, _IP, 10,
             doc=_MT + "trade/Query-Margin-Account-OCO"),
    Endpoint("get_all_order_lists", "GET", "/sapi/v1/margin/allOrderList", _S, _IP, 200,
             doc=_MT + "trade/Query-Margin-Account-all-OCO"),
    Endpoint("get_open_order_lists", "GET", "/sapi/v1/margin/openOrderList", _S, _IP, 10,
             doc=_MT + "trade/Query-Margin-Account-Open-OCO"),
    Endpoint("get_order_count_usage", "GET", "/sapi/v1/margin/rateLimit/order", _S, _IP, 20,
             doc=_MT + "trade/Query-Current-Margin-Order-Count-Usage"),
    Endpoint("get_prevented_matches", "GET", "/sapi/v1/margin/myPreventedMatches", _S, _IP, 10,
             doc=_MT + "trade/Query-Prevented-Matches"),
    Endpoint("get_force_liquidation_records", "GET", "/sapi/v1/margin/forceLiquidationRec", _S,
             _IP, 1, doc=_MT + "trade/Get-Force-Liquidation-Record"),
    Endpoint("manual_liquidation", "POST", "/sapi/v1/margin/manual-liquidation", _S, _UID, 3000,
             doc=_MT + "trade/Margin-Manual-Liquidation"),
    Endpoint("get_small_liability_exchange_coins", "GET",
             "/sapi/v1/margin/exchange-small-liability", _S, _IP, 100,
             doc=_MT + "trade/Get-Small-Liability-Exchange-Coin-List"),
    Endpoint("small_liability_exchange", "POST", "/sapi/v1/margin/exchange-small-liability", _S,
             _UID, 3000, doc=_MT + "trade/Small-Liability-Exchange"),
    Endpoint("get_small_liability_exchange_history", "GET",
             "/sapi/v1/margin/exchange-small-liability-history", _S, _UID, 100,
             doc=_MT + "trade/Get-Small-Liability-Exchange-History"),
    # Special (low-latency) key management
    Endpoint("create_special_key", "POST", "/sapi/v1/margin/apiKey", _S, _UID, 1,
             doc=_MT + "trade/Create-Special-Key-of-Low-Latency-Trading"),
    Endpoint("delete_special_key", "DELETE", "/sapi/v1/margin/apiKey", _S, _UID, 1,
             doc=_MT + "trade/Delete-Special-Key-of-Low-Latency-Trading"),
    Endpoint("edit_special_key_ip", "PUT", "/sapi/v1/margin/apiKey/ip", _S, _UID, 1,
             doc=_MT + "trade/Edit-Ip-for-Special-Key-of-Low-Latency-Trading"),
    Endpoint("get_special_key", "GET", "/sapi/v1/margin/apiKey", _S, _UID, 1,
             doc=_MT + "trade/Query-Special-key-of-Low-Latency-Trading"),
    Endpoint("get_special_key_list", "GET", "/sapi/v1/margin/api-key-list", _S, _UID, 1,
             doc=_MT + "trade/Query-Special-key-List-of-Low-Latency-Trading"),
    Endpoint("exit_special_key_mode", "POST", "/sapi/v1/margin/exit-special-key-mode", _S, _UID,
             10, doc=_MT + "trade/Exit-Special-Key-Mode"),
    # Liquidation loan (2026-05-05)
    Endpoint("get_liquidation_loan", "GET", "/sapi/v1/margin/liquidation-loan", _S, _UID, 100,
             doc=_MT + "trade/Query-Liquidation-Loan"),
    Endpoint("repay_liquidation_loan", "POST", "/sapi/v1/margin/liquidation-loan/repay", _S, _UID,
             100, critical=True, doc=_MT + "trade/Liquidation-Loan-Repay"),
    Endpoint("get_liquidation_loan_repay_history", "GET",
             "/sapi/v1/margin/liquidation-loan/repay-history", _S, _UID, 100,
             doc=_MT + "trade/Query-Liquidation-Loan-Repay-History"),
    # Borrow and repay: one route, two methods; only repay may use the critical reserve.
    Endpoint("borrow", "POST", "/sapi/v1/margin/borrow-repay", _S, _UID, 1500,
             doc=_MT + "borrow-and-repay/Margin-Account-Borrow-Repay"),
    Endpoint("repay", "POST", "/sapi/v1/margin/borrow-repay", _S, _UID, 1500, critical=True,
             doc=_MT + "borrow-and-repay/Margin-Account-Borrow-Repay"),
    Endpoint("get_borrow_repay_records", "GET", "/sapi/v1/margin/borrow-repay", _S, _IP, 10,
             doc=_MT + "borrow-and-repay/Query-Borrow-Repay"),
    Endpoint("get_interest_history", "GET", "/sapi/v1/margin/interestHistory", _S, _IP, 1,
             doc=_MT + "borrow-and-repay/Get-Interest-History"),
    Endpoint("get_interest_rate_history", "GET", "/sapi/v1/margin/interestRateHistory", _S, _IP,
             1, doc=_MT + "borrow-and-repay/Query-Margin-Interest-Rate-History"),
    Endpoint("get_max_borrowable", "GET", "/sapi/v1/margin/maxBorrowable", _S, _UID, 750,
             doc=_MT + "borrow-and-repay/Query-Max-Borrow"),
    Endpoint("get_next_hourly_interest_rate", "GET", "/sapi/v1/margin/next-hourly-interest-rate",
             _S, _IP, 100, doc=_MT + "borrow-and-repay/Get-future-hourly-interest-rate"),
    # Account
    Endpoint("get_account", "GET", "/sapi/v1/margin/account", _S, _IP, 10,
             doc=_MT + "account/Query-Cross-Margin-Account-Details"),
    Endpoint("get_isolated_account", "GET", "/sapi/v1/margin/isolated/account", _S, _IP, 10,
             doc=_MT + "account/Query-Isolated-Margin-Account-Info"),
    Endpoint("enable_isolated_account", "POST", "/sapi/v1/margin/isolated/account", _S, _UID, 300,
             doc=_MT + "account/Enable-Isolated-Margin-Account"),
    Endpoint("disable_isolated_account", "DELETE", "/sapi/v1/margin/isolated/account", _S, _UID,
             300, doc=_MT + "account/Disable-Isolated-Margin-Account"),
    Endpoint("get_isolated_account_limit", "GET", "/sapi/v1/margin/isolated/accountLimit", _S,
             _IP, 1, doc=_MT + "account/Query-Enabled-Isolated-Margin-Account-Limit"),
    Endpoint("adjust_max_leverage", "POST", "/sapi/v1/margin/max-leverage", _S, _UID, 3000,
             ip_requests=1, doc=_MT + "account/Adjust-cross-margin-max-leverage"),
    Endpoint("get_capital_flow", "GET", "/sapi/v1/margin/capital-flow", _S, _IP, 100,
             doc=_MT + "account/Query-Cross-Isolated-Margin-Capital-Flow"),
    Endpoint("get_cross_margin_fee_data", "GET", "/sapi/v1/margin/crossMarginData", _S, _IP, 1,
             weight_without=("coin", 5), doc=_MT + "account/Query-Cross-Margin-Fee-Data"),
    Endpoint("get_isolated_margin_fee_data", "GET", "/sapi/v1/margin/isolatedMarginData", _S, _IP,
             1, weight_without=("symbol", 10),
             doc=_MT + "account/Query-Isolated-Margin-Fee-Data"),
    Endpoint("get_margin_summary", "GET", "/sapi/v1/margin/tradeCoeff", _S, _IP, 10,
             doc=_MT + "account/Get-Summary-of-Margin-account"),
    Endpoint("get_bnb_burn_status", "GET", "/sapi/v1/bnbBurn", _S, _IP, 1,
             doc=_MT + "account/Get-BNB-Burn-Status"),
    Endpoint("toggle_bnb_burn", "POST", "/sapi/v1/bnbBurn", _S, _IP, 1,
             doc=_WALLET + "Toggle-BNB-Burn-On-Spot-Trade-And-Margin-Interest"),
    # Transfers
    Endpoint("transfer", "POST", "/sapi/v1/asset/transfer", _S, _UID, 900,
             doc=_WALLET + "user-universal-transfer"),
    Endpoint("get_universal_transfer_history", "GET", "/sapi/v1/asset/transfer", _S, _IP, 1,
             doc=_WALLET + "query-user-universal-transfer"),
    Endpoint("get_transfer_history", "GET", "/sapi/v1/margin/transfer", _S, _IP, 1,
             doc=_MT + "transfer"),
    Endpoint("get_max_transferable", "GET", "/sapi/v1/margin/maxTransferable", _S, _IP, 50,
             doc=_MT + "transfer/Query-Max-Transfer-Out-Amount"),
    # Small-balance conversion (the wallet replacements of the retired margin dust endpoints)
    Endpoint("get_dust_assets", "POST", "/sapi/v1/asset/dust-btc", _S, _IP, 1,
             doc=_WALLET + "assets-can-convert-bnb"),
    Endpoint("convert_dust", "POST", "/sapi/v1/asset/dust", _S, _UID, 10,
             doc=_WALLET + "dust-transfer"),
    Endpoint("get_dust_log", "GET", "/sapi/v1/asset/dribblet", _S, _IP, 1,
             doc=_WALLET + "dust-log"),
    # Market data
    Endpoint("get_all_assets", "GET", "/sapi/v1/margin/allAssets", _K, _IP, 1,
             doc=_MT + "market-data/Get-All-Margin-Assets"),
    Endpoint("get_all_pairs", "GET", "/sapi/v1/margin/allPairs", _K, _IP, 1,
             doc=_MT + "market-data/Get-All-Cross-Margin-Pairs"),
    # Marked MARKET_DATA by Binance but the page lists ``timestamp`` as mandatory: sign it.
    Endpoint("get_all_isolated_pairs", "GET", "/sapi/v1/margin/isolated/allPairs", _S, _IP, 10,
             doc=_MT + "market-data/Get-All-Isolated-Margin-Symbol"),
    Endpoint("get_cross_margin_collateral_ratio", "GET",
             "/sapi/v1/margin/crossMarginCollateralRatio", _K, _IP, 100,
             doc=_MT + "market-data/Cross-margin-collateral-ratio"),
    Endpoint("get_isolated_margin_tier_data", "GET", "/sapi/v1/margin/isolatedMarginTier", _S,
             _IP, 1, doc=_MT + "market-data/Query-Isolated-Margin-Tier-Data"),
    Endpoint("get_delist_schedule", "GET", "/sapi/v1/margin/delist-schedule", _S, _IP, 100,
             doc=_MT + "market-data/Get-Delist-Schedule"),
    Endpoint("get_list_schedule", "GET", "/sapi/v1/margin/list-schedule", _S, _IP, 100,
             doc=_MT + "market-data/Get-list-Schedule"),
    Endpoint("get_available_inventory", "GET", "/sapi/v1/margin/available-inventory", _S, _UID,
             50, doc=_MT + "market-data/Query-margin-avaliable-inventory"),
    Endpoint("get_price_index", "GET", "/sapi/v1/margin/priceIndex", _K, _IP, 10,
             doc=_MT + "market-data/Query-Margin-PriceIndex"),
    Endpoint("get_limit_price_pairs", "GET", "/sapi/v1/margin/limit-price-pairs", _K, _IP, 1,
             doc=_MT + "market-data/Get-Limit-Price-Pairs"),
    Endpoint("get_risk_based_liquidation_ratio", "GET",
             "/sapi/v1/margin/risk-based-liquidation-ratio", _K, _IP, 1,
             doc=_MT + "market-data/Get-Margin-Asset-Risk-Based-Liquidation-Ratio"),
    Endpoint("get_restricted_assets", "GET", "/sapi/v1/margin/restricted-asset", _K, _IP, 1,
             doc=_MT + "market-data/Get-Margin-Restricted-Assets"),
    # Streams. Renewals are critical: a starved renewal silently kills the stream.
    Endpoint("create_listen_token", "POST", "/sapi/v1/userListenToken", _K, _UID, 1,
             critical=True, doc=_MT + "trade-data-stream/Listen-Token-Websocket-API"),
    Endpoint("start_risk_data_stream", "POST", "/sapi/v1/margin/listen-key", _K, _UID, 1,
             critical=True, doc=_MT + "risk-data-stream/Start-User-Data-Stream"),
    Endpoint("keepalive_risk_data_stream", "PUT", "/sapi/v1/margin/listen-key", _K, _UID, 1,
             critical=True, doc=_MT + "risk-data-stream/Keepalive-User-Data-Stream"),
    Endpoint("close_risk_data_stream", "DELETE", "/sapi/v1/margin/listen-key", _K, _UID, 3000,
             doc=_MT + "risk-data-stream/Close-User-Data-Stream"),
    # Institutional loan (risk units)
    Endpoint("get_loan_group_ltv_details", "GET", "/sapi/v1/margin/loan-group/ltv-details", _S,
             _IP, 200, doc=_IL + "account"),
    # First-version risk-unit queries (change log 2025-05-16): weight not published; charged like
    # ltv-details, which returns the same records.
    Endpoint("get_loan_groups", "GET", "/sapi/v1/margin/loan-groups", _S, _IP, 200,
             doc=_IL + "change-log"),
    Endpoint("get_loan_group", "GET", "/sapi/v1/margin/loan-group", _S, _IP, 200,
             doc=_IL + "change-log"),
    Endpoint("get_active_loan_groups", "GET", "/sapi/v1/margin/loan-groups/activated", _S, _IP,
             10, doc=_IL + "account/Query-Institution-Loan-Group_Activated"),
    Endpoint("get_closed_loan_groups", "GET", "/sapi/v1/margin/loan-groups/closed", _S, _IP, 1,
             doc=_IL + "account/Query-Closed-Group-Record"),
    Endpoint("close_loan_group", "DELETE", "/sapi/v1/margin/loan-group", _S, _UID, 1000,
             doc=_IL + "account/Institution-Loan-Group-Close"),
    Endpoint("add_loan_group_collateral_account", "POST", "/sapi/v1/margin/loan-group/edit-member",
             _S, _UID, 1000, doc=_IL + "account/Institution-Loan-Group-Edit-Member"),
    Endpoint("borrow_loan_group", "POST", "/sapi/v1/margin/loan-group/borrow", _S, _UID, 3000,
             doc=_IL + "borrow-and-repay"),
    Endpoint("repay_loan_group", "POST", "/sapi/v1/margin/loan-group/repay", _S, _UID, 3000,
             critical=True, doc=_IL + "borrow-and-repay/Institution-Loan-Group-Repay"),
    Endpoint("get_loan_group_borrow_repay_records", "GET",
             "/sapi/v1/margin/loan-group/borrow-repay", _S, _IP, 10,
             doc=_IL + "borrow-and-repay/Institution-Loan-Group-Borrow-Repay-Records"),
    Endpoint("get_loan_group_interest_history", "GET",
             "/sapi/v1/margin/loan-group/interest-history", _S, _IP, 10,
             doc=_IL + "borrow-and-repay/Institution-Loan-Group-Interest-History"),
    Endpoint("get_loan_group_force_liquidation_records", "GET",
             "/sapi/v1/margin/loan-group/force-liquidation", _S, _IP, 1, doc=_IL + "trade"),
    Endpoint("get_loan_group_force_liquidation_transfer_records", "GET",
             "/sapi/v1/margin/loan-group/force-liquidation-transfer-record", _S, _IP, 1,
             doc=_IL + "transfer/Query-Institution-Loan-Forced-Liquidation-Transfer-Records"),
    Endpoint("transfer_out_loan_group", "POST", "/sapi/v1/margin/loan-group/transfer-out", _S,
             _IP, 1, doc=_IL + "transfer"),
)  # fmt: skip

#: Every endpoint the client wraps, by ``MarginClient`` method name.
ENDPOINTS: Final[Mapping[str, Endpoint]] = MappingProxyType({ep.name: ep for ep in _TABLE})


def _by_route(table: Sequence[Endpoint]) -> Mapping[tuple[str, str], Endpoint]:
    routes: dict[tuple[str, str], Endpoint] = {}
    for ep in table:
        # First entry wins: for a shared route (borrow/repay) weight and pool are identical.
        routes.setdefault((ep.method, ep.path), ep)
    return MappingProxyType(routes)


#: ``(method, path)`` → endpoint, for the fake exchange and header bookkeeping.
ENDPOINTS_BY_ROUTE: Final[Mapping[tuple[str, str], Endpoint]] = _by_route(_TABLE)


def endpoint_for(method: str, path: str) -> Endpoint | None:
    """The endpoint served at ``method path``, or ``None`` if the client does not wrap it."""
    return ENDPOINTS_BY_ROUTE.get((method, path))


#: ``GET /api/v3/time``: used by the clock; charged to the shared ``/api`` IP pool.
SERVER_TIME: Final = Endpoint(
    "server_time",
    "GET",
    "/api/v3/time",
    Security.NONE,
    Pool.API_IP,
    1,
    doc="https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints",
)

_API = Pool.API_IP
_SPOT_TRADE: Final = _SPOT_REST + "trading-endpoints"
_SPOT_ACCOUNT: Final = _SPOT_REST + "account-endpoints"

#: The order endpoints a margin special key uses instead of the SAPI ones, by ``MarginAPI`` method
#: name (PROTOCOL.md §10): spot ``/api/v3`` routes, charged to the shared ``/api`` + WebSocket API
#: IP pool with the spot weights, order placements also to the account's order counts. The WebSocket
#: API methods of :class:`~binance_margin_async.trading.TradingSession` cost the same.
#: ``cancel_replace_order`` has no SAPI counterpart: it exists only here.
SPOT_ORDER_ENDPOINTS: Final[Mapping[str, Endpoint]] = MappingProxyType({ep.name: ep for ep in (
    Endpoint("new_order", "POST", "/api/v3/order", _S, _API, 1, orders=1,
             doc=_SPOT_TRADE),
    Endpoint("cancel_order", "DELETE", "/api/v3/order", _S, _API, 1, critical=True,
             doc=_SPOT_TRADE),
    Endpoint("get_order", "GET", "/api/v3/order", _S, _API, 4, doc=_SPOT_ACCOUNT),
    Endpoint("cancel_replace_order", "POST", "/api/v3/order/cancelReplace", _S, _API, 1,
             orders=1, doc=_SPOT_TRADE),
    Endpoint("get_open_orders", "GET", "/api/v3/openOrders", _S, _API, 6,
             weight_without=("symbol", 80), doc=_SPOT_ACCOUNT),
    Endpoint("cancel_open_orders", "DELETE", "/api/v3/openOrders", _S, _API, 1, critical=True,
             doc=_SPOT_TRADE),
    Endpoint("new_oco", "POST", "/api/v3/orderList/oco", _S, _API, 1, orders=2,
             doc=_SPOT_TRADE),
    Endpoint("new_oto", "POST", "/api/v3/orderList/oto", _S, _API, 1, orders=2,
             doc=_SPOT_TRADE),
    Endpoint("new_otoco", "POST", "/api/v3/orderList/otoco", _S, _API, 1, orders=3,
             doc=_SPOT_TRADE),
    Endpoint("cancel_order_list", "DELETE", "/api/v3/orderList", _S, _API, 1, critical=True,
             doc=_SPOT_TRADE),
)})  # fmt: skip

#: ``GET /api/v3/exchangeInfo``: the symbols' trading rules (tick, step, notional); weight 20 on
#: the shared ``/api`` IP pool.
EXCHANGE_INFO: Final = Endpoint(
    "get_exchange_info",
    "GET",
    "/api/v3/exchangeInfo",
    Security.NONE,
    Pool.API_IP,
    20,
    doc=_SPOT_REST + "general-endpoints",
)

_MARGIN_20240331 = "removed 2024-03-31 04:00 UTC (margin change log 2024-01-09)"

#: Endpoints named in the seeds that no longer exist, with what to use instead.
RETIRED: Final[tuple[RetiredEndpoint, ...]] = (
    RetiredEndpoint("POST", "/sapi/v1/userDataStream", "POST /sapi/v1/userListenToken + WS API "
                    "userDataStream.subscribe.listenToken",
                    "listenKey user streams retired 2026-02-20 07:00 UTC (PROTOCOL.md §5)"),
    RetiredEndpoint("PUT", "/sapi/v1/userDataStream", "POST /sapi/v1/userListenToken (renew)",
                    "retired 2026-02-20 (PROTOCOL.md §5)"),
    RetiredEndpoint("DELETE", "/sapi/v1/userDataStream", "WS API userDataStream.unsubscribe",
                    "retired 2026-02-20 (PROTOCOL.md §5)"),
    RetiredEndpoint("POST", "/sapi/v1/userDataStream/isolated",
                    "POST /sapi/v1/userListenToken (isIsolated=true&symbol=...)",
                    "retired 2026-02-20 (PROTOCOL.md §5)"),
    RetiredEndpoint("PUT", "/sapi/v1/userDataStream/isolated",
                    "POST /sapi/v1/userListenToken (renew)", "retired 2026-02-20 (PROTOCOL.md §5)"),
    RetiredEndpoint("DELETE", "/sapi/v1/userDataStream/isolated",
                    "WS API userDataStream.unsubscribe", "retired 2026-02-20 (PROTOCOL.md §5)"),
    RetiredEndpoint("GET", "/sapi/v1/margin/leverageBracket", "none",
                    "no longer supported from 2026-04-13: Cross Margin Pro sunset "
                    "(PROTOCOL.md §8)"),
    RetiredEndpoint("POST", "/sapi/v1/margin/transfer", "POST /sapi/v1/asset/transfer",
                    _MARGIN_20240331),
    RetiredEndpoint("POST", "/sapi/v1/margin/isolated/transfer", "POST /sapi/v1/asset/transfer",
                    _MARGIN_20240331),
    RetiredEndpoint("GET", "/sapi/v1/margin/isolated/transfer", "GET /sapi/v1/margin/transfer",
                    _MARGIN_20240331),
    RetiredEndpoint("POST", "/sapi/v1/margin/loan", "POST /sapi/v1/margin/borrow-repay",
                    _MARGIN_20240331),
    RetiredEndpoint("POST", "/sapi/v1/margin/repay", "POST /sapi/v1/margin/borrow-repay",
                    _MARGIN_20240331),
    RetiredEndpoint("GET", "/sapi/v1/margin/loan", "GET /sapi/v1/margin/borrow-repay",
                    _MARGIN_20240331),
    RetiredEndpoint("GET", "/sapi/v1/margin/repay", "GET /sapi/v1/margin/borrow-repay",
                    _MARGIN_20240331),
    RetiredEndpoint("GET", "/sapi/v1/margin/asset", "GET /sapi/v1/margin/allAssets",
                    _MARGIN_20240331),
    RetiredEndpoint("GET", "/sapi/v1/margin/pair", "GET /sapi/v1/margin/allPairs",
                    _MARGIN_20240331),
    RetiredEndpoint("GET", "/sapi/v1/margin/isolated/pair", "GET /sapi/v1/margin/isolated/allPairs",
                    _MARGIN_20240331),
    RetiredEndpoint("GET", "/sapi/v1/margin/dribblet", "GET /sapi/v1/asset/dribblet",
                    _MARGIN_20240331),
    RetiredEndpoint("GET", "/sapi/v1/margin/dust", "POST /sapi/v1/asset/dust-btc",
                    _MARGIN_20240331),
    RetiredEndpoint("POST", "/sapi/v1/margin/dust", "POST /sapi/v1/asset/dust", _MARGIN_20240331),
    RetiredEndpoint("POST", "/sapi/v1/margin/isolated/create",
                    "POST /sapi/v1/asset/transfer (MARGIN_ISOLATEDMARGIN creates the account)",
                    "discontinued 2021-05-15 08:00 UTC (margin change log 2021-04-28)"),
)  # fmt: skip

_WALLET_SCOPE = "wallet endpoint outside the margin scope"

#: Endpoints the seeds mention that exist but are not margin endpoints; each with the reason.
EXCLUDED: Final[tuple[ExcludedEndpoint, ...]] = (
    ExcludedEndpoint("GET", "/sapi/v1/account/status", _WALLET_SCOPE + " (account status)"),
    ExcludedEndpoint("GET", "/sapi/v1/account/apiTradingStatus",
                     _WALLET_SCOPE + " (spot API trading-rule indicators)"),
    ExcludedEndpoint("GET", "/sapi/v1/system/status", _WALLET_SCOPE + " (system maintenance)"),
    ExcludedEndpoint("GET", "/sapi/v1/accountSnapshot",
                     _WALLET_SCOPE + "; daily snapshots at weight 2400, use get_account for live"),
    ExcludedEndpoint("GET", "/sapi/v1/asset/assetDetail", _WALLET_SCOPE + " (deposit/withdraw)"),
    ExcludedEndpoint("GET", "/sapi/v1/asset/tradeFee", _WALLET_SCOPE + " (spot fee rates)"),
    ExcludedEndpoint("POST", "/sapi/v1/account/disableFastWithdrawSwitch",
                     _WALLET_SCOPE + " (withdrawals)"),
    ExcludedEndpoint("POST", "/sapi/v1/account/enableFastWithdrawSwitch",
                     _WALLET_SCOPE + " (withdrawals)"),
    ExcludedEndpoint("GET", "/sapi/v3/sub-account/assets", "sub-account API, not margin"),
    ExcludedEndpoint("GET", "/sapi/v1/blvt/tokenInfo", "leveraged-token (BLVT) product"),
    ExcludedEndpoint("GET", "/sapi/v1/blvt/userLimit", "leveraged-token (BLVT) product"),
)  # fmt: skip
