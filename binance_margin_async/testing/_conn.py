"""One server-side WebSocket connection of the fake exchange: ordered outbound queue, keepalive.

Every frame the server sends (responses, events, the malformed-frame fault, the final close) goes
through one FIFO queue drained by one writer task, so a response and the events that the same
request caused always leave in the order they were produced, and a ``stall`` holds all of them.

Keepalive follows the WebSocket API rules (PROTOCOL.md §3.2): a ping frame every
``ping_interval`` seconds; a client that has not answered a ping (pong echoing its payload) within
``pong_timeout`` is dropped; unsolicited pongs do not count. The connection is closed after
``lifetime`` seconds (24 h on Binance).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from aiohttp import WSCloseCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiohttp import web

__all__ = ["Connection"]

log = logging.getLogger(__name__)


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class _Pong:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Connection:
    """A WebSocket connection: ``send`` frames in order, ``close_soon``, ``abort``."""

    __slots__ = (
        "_closing",
        "_keepalive_task",
        "_queue",
        "_stalled_until",
        "_writer_task",
        "closed",
        "ip",
        "kind",
        "opened_at",
        "ping_seq",
        "transport",
        "unanswered_since",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        kind: str,
        stalled_until: Callable[[], float],
    ) -> None:
        self.ws: Final = ws
        self.transport: Final = request.transport
        self.ip: Final = request.remote or "unknown"
        self.kind: Final = kind  # "ws-api" | "risk"
        self.opened_at: Final = asyncio.get_running_loop().time()
        self.closed = False
        self.ping_seq = 0
        self.unanswered_since: float | None = None
        self._stalled_until = stalled_until
        self._queue: asyncio.Queue[str | _Close | _Pong] = asyncio.Queue()
        self._closing = False
        self._writer_task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None

    def start(self, *, ping_interval: float, pong_timeout: float, lifetime: float) -> None:
        """Start the writer and keepalive tasks (stopped by :meth:`stop`)."""
        self._writer_task = asyncio.create_task(self._writer())
        self._keepalive_task = asyncio.create_task(
            self._keepalive(ping_interval, pong_timeout, lifetime)
        )

    async def stop(self, close_timeout: float) -> None:
        """Stop the background tasks; a close handshake in progress gets ``close_timeout`` s."""
        self.closed = True
        tasks = [t for t in (self._keepalive_task, self._writer_task) if t is not None]
        if self._closing and self._writer_task is not None:
            # Let the writer finish the close handshake it started rather than cut it short.
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(asyncio.shield(self._writer_task), close_timeout)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task

    def send(self, frame: str) -> None:
        """Queue one text frame (dropped silently once the connection is closing)."""
        if not self.closed:
            self._queue.put_nowait(frame)

    def answer_ping(self, payload: bytes) -> None:
        """Queue the pong for a client's ping behind every frame queued before it, as a server
        writing one ordered stream does: a client may take the pong as proof that everything
        sent before its ping has arrived (make-before-break relies on it)."""
        if not self.closed:
            self._queue.put_nowait(_Pong(payload))

    def close_soon(self, code: int = WSCloseCode.OK, reason: str = "") -> None:
        """Close with a close frame once everything queued before has been sent."""
        if not self.closed:
            self._queue.put_nowait(_Close(code, reason))

    def abort(self) -> None:
        """Drop the TCP connection without a close frame: a network failure, as the peer sees it."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def pong(self, payload: bytes) -> None:
        """A pong arrived: it keeps the connection alive only if it echoes one of our pings."""
        if payload.isdigit() and 0 < int(payload) <= self.ping_seq:
            self.unanswered_since = None

    def stalled(self, now: float) -> bool:
        """Whether the ``stall`` fault currently freezes this connection's output."""
        return self._stalled_until() > now

    async def _wait_stall(self) -> bool:
        """Sleep through a stall; True if there was one."""
        loop = asyncio.get_running_loop()
        waited = False
        while (remaining := self._stalled_until() - loop.time()) > 0:
            waited = True
            await asyncio.sleep(remaining)
        return waited

    async def _writer(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                await self._wait_stall()
                if isinstance(item, _Close):
                    self.closed = self._closing = True
                    await self.ws.close(code=item.code, message=item.reason.encode())
                    return
                if isinstance(item, _Pong):
                    await self.ws.pong(item.payload)
                    continue
                await self.ws.send_str(item)
        except ConnectionError:
            # The peer went away (or `abort`): the reader side notices and cleans up.
            self.closed = True
        except Exception:
            log.exception("fake exchange: WebSocket writer failed; dropping the connection")
            self.abort()

    async def _keepalive(self, ping_interval: float, pong_timeout: float, lifetime: float) -> None:
        loop = asyncio.get_running_loop()
        end_of_life = self.opened_at + lifetime
        next_ping = self.opened_at + ping_interval
        try:
            while not self.closed:
                if await self._wait_stall():
                    # The server was frozen; its pong deadline restarts with the next ping.
                    self.unanswered_since = None
                    next_ping = loop.time() + ping_interval
                now = loop.time()
                if now >= end_of_life:
                    self.close_soon(WSCloseCode.OK, "connection lifetime reached")
                    return
                if (
                    self.unanswered_since is not None
                    and now >= self.unanswered_since + pong_timeout
                ):
                    # Binance just disconnects a peer that does not answer pings.
                    self.abort()
                    return
                if now >= next_ping:
                    self.ping_seq += 1
                    await self.ws.ping(str(self.ping_seq).encode())
                    if self.unanswered_since is None:
                        self.unanswered_since = now
                    next_ping = now + ping_interval
                wake = min(next_ping, end_of_life)
                if self.unanswered_since is not None:
                    wake = min(wake, self.unanswered_since + pong_timeout)
                await asyncio.sleep(max(0.0, wake - loop.time()))
        except ConnectionError:
            self.closed = True
        except Exception:
            log.exception("fake exchange: WebSocket keepalive failed; dropping the connection")
            self.abort()
