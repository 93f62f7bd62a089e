"""Margin level between Binance's risk events: the mirror's balances valued at current prices.

Binance pushes ``MARGIN_LEVEL_STATUS_CHANGE`` only when the cross account changes band, and
nothing at all for isolated pairs; between events a position monitor would read a stale level.
This module keeps the level current from prices:

* :class:`PriceBook` (pure) holds the margin pairs (symbol, base, quote) and the latest price of
  the ones that matter, and converts any asset into the valuation asset along the shortest chain
  of priced pairs;
* :func:`value_account` (pure) computes one account's total asset and total liability in the
  valuation asset, its margin level as Binance defines it, **total asset value ÷ (total borrowed
  + total accrued interest)** (``999`` with no debt, as the REST account reports), its status per
  the documented bands (:class:`MarginLevelBands`), and for the account's largest exposure the
  price at which it would reach ``MARGIN_CALL`` and ``FORCE_LIQUIDATION``;
* :class:`RiskEstimator` (pure) does that for every account of an
  :class:`~binance_margin_async.mirror.AccountMirror` and returns a :class:`MarginLevelEstimate`
  each time an account's *estimated* status changes;
* :class:`PriceIndexPoller` (the shell) polls ``GET /sapi/v1/margin/priceIndex`` for the symbols
  the mirror's assets need, within the limiter budget, and feeds the estimator.

Where the numbers come from and how fresh they are: balances, borrowed and interest are the
mirror's (REST snapshot, then stream events: immediate for free/locked and, on cross, for
liabilities; isolated liabilities change only on a REST reload, Binance sends no isolated
liability event); prices are Binance's margin price index, the price Binance itself uses for the
margin level, at most one poll interval old (``calc_time`` of each price is kept).

Bands: https://www.binance.com/en/support/faq/detail/360030493931
Price index: https://developers.binance.com/docs/margin_trading/market-data/Query-Margin-PriceIndex
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from .errors import BinanceError, ParameterError
from .models import MarginLevelStatus

if TYPE_CHECKING:
    from .mirror import AccountMirror, AssetBalance
    from .rest import MarginClient

__all__ = [
    "CROSS_BANDS",
    "ISOLATED_BANDS",
    "NO_DEBT_LEVEL",
    "AccountValuation",
    "MarginLevelBands",
    "MarginLevelEstimate",
    "PriceBook",
    "PriceIndexPoller",
    "RiskEstimator",
    "StatusPrice",
    "value_account",
]

log = logging.getLogger(__name__)

CROSS: Final = "CROSS"
NO_DEBT_LEVEL: Final = Decimal(999)
"""The margin level Binance reports for an account without debt."""
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class MarginLevelBands:
    """Binance's margin level bands of one account kind.

    A level ``>= excessive`` is ``EXCESSIVE``, ``>= margin_call`` ``NORMAL``, ``>= pre_liquidation``
    ``MARGIN_CALL``, ``>= force_liquidation`` ``PRE_LIQUIDATION``, below that
    ``FORCE_LIQUIDATION``. https://www.binance.com/en/support/faq/detail/360030493931
    """

    margin_call: Decimal
    pre_liquidation: Decimal
    force_liquidation: Decimal
    excessive: Decimal = Decimal(2)

    def __post_init__(self) -> None:
        if not 1 < self.force_liquidation < self.pre_liquidation < self.margin_call:
            raise ParameterError(
                "bands", "need 1 < force_liquidation < pre_liquidation < margin_call"
            )
        if self.excessive < self.margin_call:
            raise ParameterError("bands", "need excessive >= margin_call")

    def status(self, level: Decimal) -> MarginLevelStatus:
        """The ``marginLevelStatus`` of ``level``."""
        if level >= self.excessive:
            return MarginLevelStatus.EXCESSIVE
        if level >= self.margin_call:
            return MarginLevelStatus.NORMAL
        if level >= self.pre_liquidation:
            return MarginLevelStatus.MARGIN_CALL
        if level >= self.force_liquidation:
            return MarginLevelStatus.PRE_LIQUIDATION
        return MarginLevelStatus.FORCE_LIQUIDATION


CROSS_BANDS: Final = MarginLevelBands(Decimal("1.5"), Decimal("1.25"), Decimal("1.1"))
"""Cross Margin Classic (3x): margin call below 1.5, pre-liquidation below 1.25, liquidation
below 1.1."""
ISOLATED_BANDS: Final = MarginLevelBands(Decimal("1.2"), Decimal("1.15"), Decimal("1.1"))
"""Isolated margin (5x pairs): margin call below 1.2, pre-liquidation below 1.15, liquidation
below 1.1. Pairs with another leverage have other bands: pass your own."""


@dataclass(frozen=True, slots=True)
class _Pair:
    symbol: str
    base: str
    quote: str


class PriceBook:
    """Margin pairs and their latest prices; values assets along the shortest chain of pairs.

    Pure: prices come in through :meth:`update` with their time; nothing here reads a clock.
    """

    __slots__ = ("_graph", "_pairs", "_prices")

    def __init__(self, pairs: Iterable[tuple[str, str, str]]) -> None:
        """``pairs``: ``(symbol, base, quote)`` of every pair that may be used for valuing."""
        self._pairs: dict[str, _Pair] = {}
        self._graph: dict[str, list[tuple[str, _Pair]]] = {}
        for symbol, base, quote in pairs:
            pair = _Pair(symbol, base, quote)
            self._pairs[symbol] = pair
            self._graph.setdefault(base, []).append((quote, pair))
            self._graph.setdefault(quote, []).append((base, pair))
        self._prices: dict[str, tuple[Decimal, int]] = {}  # symbol -> (price, time ms)

    def update(self, symbol: str, price: Decimal, at: int) -> None:
        """Record ``price`` of ``symbol`` as of server time ``at`` (ms); older ones are ignored."""
        if symbol not in self._pairs:
            raise ParameterError("symbol", f"{symbol!r} is not a pair of this price book")
        if price <= 0:
            raise ParameterError("price", f"must be positive (got {price} for {symbol})")
        held = self._prices.get(symbol)
        if held is None or at >= held[1]:
            self._prices[symbol] = (price, at)

    def price(self, symbol: str) -> tuple[Decimal, int] | None:
        """``(price, time ms)`` of ``symbol``, or ``None`` before its first update."""
        return self._prices.get(symbol)

    def path(self, asset: str, into: str) -> tuple[str, ...] | None:
        """Symbols of the shortest chain from ``asset`` to ``into`` (priced or not), or ``None``.

        These are the symbols to fetch prices for; ``()`` when ``asset`` is ``into``.
        """
        frontier: list[tuple[str, tuple[str, ...]]] = [(asset, ())]
        seen = {asset}
        while frontier:
            following: list[tuple[str, tuple[str, ...]]] = []
            for current, symbols in frontier:
                if current == into:
                    return symbols
                for other, pair in self._graph.get(current, ()):
                    if other not in seen:
                        seen.add(other)
                        following.append((other, (*symbols, pair.symbol)))
            frontier = following
        return None

    def rate(self, asset: str, into: str) -> tuple[Decimal, int] | None:
        """Value of one ``asset`` in ``into`` and the time of its oldest price; ``None`` while a
        price on the way is missing."""
        symbols = self.path(asset, into)
        if symbols is None:
            return None
        factor = Decimal(1)
        oldest: int | None = None
        current = asset
        for symbol in symbols:
            priced = self._prices.get(symbol)
            if priced is None:
                return None
            price, at = priced
            pair = self._pairs[symbol]
            if pair.base == current:
                factor *= price
                current = pair.quote
            else:
                factor /= price
                current = pair.base
            oldest = at if oldest is None else min(oldest, at)
        return factor, (oldest if oldest is not None else _NEVER)


_ISOLATED_BATCH: Final = 5  # symbols per GET /sapi/v1/margin/isolated/account
_NEVER: Final = 2**62  # "as of" of a value that needs no price at all (the valuation asset)


@dataclass(frozen=True, slots=True)
class StatusPrice:
    """Where one asset's price would move the account into a band (others held constant)."""

    asset: str
    price: Decimal  # current price of the asset in the valuation asset
    margin_call: Decimal | None  # price at which the level reaches the margin-call threshold
    force_liquidation: Decimal | None  # ... the force-liquidation threshold
    # None: no positive price gets there (e.g. the account holds no exposure to this asset).


@dataclass(frozen=True, slots=True)
class AccountValuation:
    """One account valued at current prices (amounts in ``quote``)."""

    account: str
    quote: str
    total_asset: Decimal
    total_liability: Decimal
    level: Decimal
    status: MarginLevelStatus
    prices_as_of: int | None  # server ms of the oldest price used; None: no price needed
    exposure: StatusPrice | None  # the largest non-quote exposure and its band prices

    @property
    def net(self) -> Decimal:
        """Total asset minus total liability."""
        return self.total_asset - self.total_liability


def _level(assets: Decimal, liabilities: Decimal) -> Decimal:
    return NO_DEBT_LEVEL if liabilities <= 0 else assets / liabilities


def _band_price(
    target: Decimal, other_assets: Decimal, other_debt: Decimal, held: Decimal, owed: Decimal
) -> Decimal | None:
    """Price p of one asset at which (A + held·p) / (L + owed·p) == target, if positive."""
    slope = held - target * owed
    if slope == 0:
        return None
    price = (target * other_debt - other_assets) / slope
    return price if price > 0 else None


def value_account(
    account: str,
    balances: Mapping[str, AssetBalance],
    book: PriceBook,
    *,
    quote: str,
    bands: MarginLevelBands,
) -> AccountValuation | None:
    """Value ``balances`` (one account of the mirror) in ``quote`` at the book's prices.

    ``None`` while the liabilities are unknown (no REST snapshot yet) or an asset held or owed
    has no price yet.
    """
    assets = liabilities = _ZERO
    oldest: int | None = None
    legs: list[tuple[str, Decimal, Decimal, Decimal]] = []  # asset, rate, held, owed
    for name, balance in balances.items():
        if balance.borrowed is None or balance.interest is None:
            return None
        held = balance.free + balance.locked
        owed = balance.borrowed + balance.interest
        if not held and not owed:
            continue
        rated = book.rate(name, quote)
        if rated is None:
            return None
        rate, at = rated
        if name != quote:
            oldest = at if oldest is None else min(oldest, at)
            legs.append((name, rate, held, owed))
        assets += held * rate
        liabilities += owed * rate
    level = _level(assets, liabilities)
    exposure = None
    if legs:
        name, rate, held, owed = max(legs, key=lambda leg: abs(leg[2] - leg[3]) * leg[1])
        other_assets = assets - held * rate
        other_debt = liabilities - owed * rate
        exposure = StatusPrice(
            name,
            rate,
            _band_price(bands.margin_call, other_assets, other_debt, held, owed)
            if liabilities
            else None,
            _band_price(bands.force_liquidation, other_assets, other_debt, held, owed)
            if liabilities
            else None,
        )
    return AccountValuation(
        account, quote, assets, liabilities, level, bands.status(level), oldest, exposure
    )


@dataclass(frozen=True, slots=True)
class MarginLevelEstimate:
    """Local event: an account's *estimated* margin level status changed (not from Binance).

    Emitted by :class:`RiskEstimator` when the mirror's balances valued at current price-index
    prices put the account into another band. ``previous`` is ``None`` for the first estimate.
    ``raw`` is empty: nothing came over the wire.
    """

    account: str
    event_time: int  # server ms of the oldest price used (or of the estimate, with no price)
    margin_level: Decimal
    status: MarginLevelStatus
    previous: MarginLevelStatus | None
    valuation: AccountValuation
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


class RiskEstimator:
    """Values every account of ``mirror`` at the prices of ``book``; reports band changes.

    Pure: call :meth:`update` after prices or the mirror changed (a poll, an event) with the
    server time; it returns a :class:`MarginLevelEstimate` per account whose estimated status is
    not the one it last reported.

    Args:
        quote: the valuation asset of the cross account (isolated pairs are valued in their own
            quote asset, as Binance does).
        cross_bands / isolated_bands: the thresholds (defaults: Binance's documented ones).
        isolated_pairs: ``symbol -> (base, quote)`` of the isolated accounts the mirror follows.
    """

    __slots__ = ("_book", "_cross_bands", "_isolated", "_isolated_bands", "_mirror", "_quote",
                 "_reported")  # fmt: skip

    def __init__(
        self,
        mirror: AccountMirror,
        book: PriceBook,
        *,
        quote: str = "USDT",
        cross_bands: MarginLevelBands = CROSS_BANDS,
        isolated_bands: MarginLevelBands = ISOLATED_BANDS,
        isolated_pairs: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self._mirror = mirror
        self._book = book
        self._quote = quote
        self._cross_bands = cross_bands
        self._isolated_bands = isolated_bands
        self._isolated = dict(isolated_pairs or {})
        self._reported: dict[str, MarginLevelStatus] = {}

    @property
    def book(self) -> PriceBook:
        """The prices used."""
        return self._book

    @property
    def mirror(self) -> AccountMirror:
        """The balances used."""
        return self._mirror

    @property
    def isolated_symbols(self) -> tuple[str, ...]:
        """The isolated accounts valued in their own quote asset."""
        return tuple(self._isolated)

    def quote_of(self, account: str) -> str:
        """The valuation asset of ``account``."""
        pair = self._isolated.get(account)
        return self._quote if pair is None else pair[1]

    def symbols_needed(self) -> list[str]:
        """The symbols whose prices value every asset the mirror's accounts hold or owe."""
        needed: dict[str, None] = {}
        for account in self._mirror.accounts():
            quote = self.quote_of(account)
            for asset, balance in self._mirror.balances(account).items():
                # Binance lists every margin asset in the cross account, most of them at zero:
                # only what is held or owed needs a price.
                if balance.free or balance.locked or balance.borrowed or balance.interest:
                    for symbol in self._book.path(asset, quote) or ():
                        needed[symbol] = None
        return list(needed)

    def valuation(self, account: str) -> AccountValuation | None:
        """``account`` valued now, or ``None`` while a price or the liabilities are missing."""
        bands = self._isolated_bands if account in self._isolated else self._cross_bands
        return value_account(
            account,
            self._mirror.balances(account),
            self._book,
            quote=self.quote_of(account),
            bands=bands,
        )

    def update(self, now: int) -> list[MarginLevelEstimate]:
        """Re-value every account; one event per account whose estimated status changed."""
        changes = []
        for account in self._mirror.accounts():
            valued = self.valuation(account)
            if valued is None:
                continue
            previous = self._reported.get(account)
            if valued.status == previous:
                continue
            self._reported[account] = valued.status
            stamp = now if valued.prices_as_of is None else valued.prices_as_of
            changes.append(
                MarginLevelEstimate(account, stamp, valued.level, valued.status, previous, valued)
            )
        return changes


EstimateCallback = Callable[[MarginLevelEstimate], "Awaitable[None] | None"]


class PriceIndexPoller:
    """Polls the margin price index of the symbols an estimator needs and feeds it.

    Every ``interval`` seconds it asks ``GET /sapi/v1/margin/priceIndex`` (IP weight 10 in that
    endpoint's own 12,000/min pool) for each symbol of :meth:`RiskEstimator.symbols_needed`, all
    through the client's rate limiter. With ``refresh_isolated`` (the default) each round also
    reloads the estimator's isolated accounts into the mirror with
    ``GET /sapi/v1/margin/isolated/account`` (IP weight 10 per 5 pairs): Binance sends no
    liability event for isolated accounts, so their borrowed and interest would otherwise change
    only when the stream resyncs. The interval is stretched so that polling stays within
    ``budget`` (a share of that pool): ``n`` symbols every ``t`` seconds cost ``600·n/t`` weight a
    minute. After each round :meth:`RiskEstimator.update` runs and every
    :class:`MarginLevelEstimate` goes to the callbacks registered with :meth:`on`.

    Use it as an async context manager; leaving it stops the polling task.
    """

    WEIGHT: Final = 10  # per request, https://developers.binance.com/docs/margin_trading/market-data/Query-Margin-PriceIndex
    POOL: Final = 12_000  # per minute, this endpoint's own IP pool

    def __init__(
        self,
        client: MarginClient,
        estimator: RiskEstimator,
        *,
        interval: float = 2.0,
        budget: float = 0.25,
        refresh_isolated: bool = True,
    ) -> None:
        if interval <= 0:
            raise ParameterError("interval", "must be positive")
        if not 0 < budget <= 1:
            raise ParameterError("budget", "must be in (0, 1]")
        self._client = client
        self._estimator = estimator
        self._interval = interval
        self._budget = budget
        self._refresh_isolated = refresh_isolated
        self._callbacks: list[EstimateCallback] = []
        self._task: asyncio.Task[None] | None = None
        self.polls = 0
        """Completed polling rounds."""
        self.last_error: BaseException | None = None
        """The last error of a round (the poller goes on; a price is then one round older)."""

    def on(self, callback: EstimateCallback) -> None:
        """Call ``callback`` (sync or async) with every :class:`MarginLevelEstimate`."""
        self._callbacks.append(callback)

    def interval_for(self, symbols: int) -> float:
        """Seconds between rounds for ``symbols`` symbols: the asked interval, or longer when
        that would use more than ``budget`` of the endpoint's pool."""
        floor = symbols * self.WEIGHT * 60 / (self.POOL * self._budget)
        return max(self._interval, floor)

    async def poll_once(self) -> list[MarginLevelEstimate]:
        """One round: fetch the prices needed, update the estimator, deliver the changes."""
        estimator = self._estimator
        if self._refresh_isolated:
            pairs = estimator.isolated_symbols
            for start in range(0, len(pairs), _ISOLATED_BATCH):
                batch = pairs[start : start + _ISOLATED_BATCH]
                as_of = self._client.clock.timestamp_ms(time.time())
                snapshot = await self._client.get_isolated_account(symbols=batch)
                estimator.mirror.load_isolated_snapshot(snapshot, as_of=as_of)
        for symbol in estimator.symbols_needed():
            index = await self._client.get_price_index(symbol)
            if index.price is not None:
                self._estimator.book.update(symbol, index.price, index.calc_time or 0)
        self.polls += 1
        return await self.publish()

    async def publish(self) -> list[MarginLevelEstimate]:
        """Re-estimate with the current prices (e.g. after a mirror change) and deliver changes."""
        changes = self._estimator.update(self._client.clock.timestamp_ms(time.time()))
        for change in changes:
            for callback in self._callbacks:
                result = callback(change)
                if inspect.isawaitable(result):
                    await result
        return changes

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except BinanceError as exc:
                self.last_error = exc
                log.warning("price index poll failed: %s", exc)
            await asyncio.sleep(self.interval_for(len(self._estimator.symbols_needed())))

    async def __aenter__(self) -> PriceIndexPoller:
        self._task = asyncio.create_task(self._run(), name="price-index-poller")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
