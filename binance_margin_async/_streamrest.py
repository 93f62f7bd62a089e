"""The REST side of the user-data stream: the session's REST actions carried out by the client.

One job: turn a :class:`~._session.StreamSession` REST action (mint a listen token, get or keep
alive the risk listen key, reload the mirror, read the margin level) into client calls, and its
outcome into the session's matching input. No policy: when to call, whether to retry and what a
failure means are the session's decisions; this only maps answers and errors. Every call goes
through the client, and so through its rate limiter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from ._session import (
    CROSS,
    FetchMarginLevel,
    FetchSnapshot,
    GetListenKey,
    KeepaliveListenKey,
    MintToken,
    Now,
    RestAction,
    StreamSession,
)
from .errors import BinanceError
from .models import MarginLevelStatus

if TYPE_CHECKING:
    from ._streamcore import StreamClient
    from .mirror import AccountMirror

__all__ = ["StreamRest"]

# A failed or wrong-shaped snapshot is a report and a retry, never a crash.
_SNAPSHOT_ERRORS: Final = (BinanceError, KeyError, TypeError, ValueError)


class StreamRest:
    """Carries out the REST actions of one session and feeds it their outcomes.

    Args:
        client: the REST client (:class:`~._streamcore.StreamClient`).
        session: where the outcomes go.
        mirror: the account mirror :class:`FetchSnapshot` reloads (``None``: no mirror).
        now: the driver's clock, read when an outcome is fed.
        claim_start_error: offered a failed token or listen-key call first; returns ``True``
            when it took the error (the stream is starting: the error is raised from
            ``async with``), and then the session never hears of it.
    """

    __slots__ = ("_claim_start_error", "_client", "_mirror", "_now", "_session")

    def __init__(
        self,
        client: StreamClient,
        session: StreamSession,
        mirror: AccountMirror | None,
        now: Callable[[], Now],
        claim_start_error: Callable[[BaseException], bool],
    ) -> None:
        self._client = client
        self._session = session
        self._mirror = mirror
        self._now = now
        self._claim_start_error = claim_start_error

    async def run(self, action: RestAction) -> None:
        """Make the calls ``action`` asks for and feed their outcome to the session."""
        match action:
            case MintToken():
                await self._mint_token(action)
            case GetListenKey():
                await self._get_listen_key()
            case KeepaliveListenKey():
                await self._keepalive(action.listen_key)
            case FetchSnapshot():
                await self._fetch_snapshot(action)
            case FetchMarginLevel():
                await self._fetch_margin_level()

    async def _mint_token(self, action: MintToken) -> None:
        try:
            token = await self._client.create_listen_token(
                symbol=action.symbol, validity_ms=action.validity_ms
            )
        except BinanceError as exc:
            if not self._claim_start_error(exc):
                self._session.token_result(action.account, self._now(), error=exc)
            return
        self._session.token_result(
            action.account, self._now(), token=token.token, expiration_ms=token.expiration_time
        )

    async def _get_listen_key(self) -> None:
        try:
            key = await self._client.start_risk_data_stream()
        except BinanceError as exc:
            if not self._claim_start_error(exc):
                self._session.listen_key_result(self._now(), error=exc)
            return
        self._session.listen_key_result(self._now(), key=key.listen_key)

    async def _keepalive(self, listen_key: str) -> None:
        try:
            await self._client.keepalive_risk_data_stream(listen_key)
        except BinanceError as exc:
            self._session.keepalive_result(listen_key, self._now(), error=exc)
            return
        self._session.keepalive_result(listen_key, self._now())

    async def _fetch_snapshot(self, action: FetchSnapshot) -> None:
        try:
            await self._load_snapshot(action.account)
        except _SNAPSHOT_ERRORS as exc:
            self._session.snapshot_result(
                action.account, self._now(), error=exc, initial=action.initial
            )
            return
        self._session.snapshot_result(action.account, self._now(), initial=action.initial)

    async def _load_snapshot(self, account: str) -> None:
        """Reload the mirror of one account from REST.

        Absolute values (balances, orders, margin level) are stamped with the server time the
        requests were sent: a later event may replay an older value, but the newest one always
        follows. Liabilities change by deltas, so they are stamped with the time the answer
        *arrived*, after any retry the client made: a change stamped up to then is in the
        snapshot and never applied again.

        Both stamps are the earliest server time the clock allows (:meth:`ServerClock.earliest_ms
        <.clock.ServerClock.earliest_ms>`): a stamp estimated late would take changes made after
        the snapshot (a borrow right after ``async with stream``, with one slow clock sample) for
        part of it and drop them for good. Stamped early, an older absolute value is only
        replayed, and the ambiguity the mirror documents for liability changes during the round
        trip grows by that error bound.
        """
        mirror = self._mirror
        assert mirror is not None
        client = self._client
        clock = client.clock
        as_of = clock.earliest_ms(time.time())
        if account == CROSS:
            # Loaded the moment it arrives: no event may land between its arrival and the load.
            cross = await client.get_account()
            received = clock.earliest_ms(time.time())
            mirror.load_cross_snapshot(cross, as_of=as_of, received=received)
            orders = await client.get_open_orders()
        else:
            isolated = await client.get_isolated_account(symbols=[account])
            received = clock.earliest_ms(time.time())
            mirror.load_isolated_snapshot(isolated, as_of=as_of, received=received)
            orders = await client.get_open_orders(account, is_isolated=True)
        mirror.load_open_orders(account, orders, as_of=as_of)

    async def _fetch_margin_level(self) -> None:
        try:
            account = await self._client.get_account()
        except BinanceError as exc:
            self._session.margin_level_result(self._now(), error=exc)
            return
        status = account.raw.get("marginLevelStatus")
        level = account.margin_level
        self._session.margin_level_result(
            self._now(),
            status=_margin_status(status) if isinstance(status, str) else None,
            level=level if level is not None else Decimal(0),
        )


def _margin_status(value: str) -> MarginLevelStatus | str:
    """A known status as the enum; an unknown one kept as the string Binance sent."""
    try:
        return MarginLevelStatus(value)
    except ValueError:
        return value
