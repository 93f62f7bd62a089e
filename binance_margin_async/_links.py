"""The connections of one user-data stream: every link the session asks for, by its id.

:class:`LinkSet` carries out the session's link actions (open, send, ping, close) and tells the
session when a link opened, failed to open or was lost. Each connection is a :class:`WsLink`;
every connection attempt goes through ``limiter.acquire_ws_connect`` and every WS API request,
in order, through ``limiter.acquire_ws``. No policy: when to open, what to send and what a loss
means are the session's decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from ._session import Channel, CloseLink, Now, OpenLink, Ping, Send, StreamConfig, StreamSession
from ._streamcore import StreamClient
from ._wslink import LinkHooks, RedactingLogger, WsLink
from .errors import StreamError
from .redaction import redact

__all__ = ["LinkSet"]


class LinkSet:
    """The driver's WebSocket connections, keyed by the session's link ids.

    Args:
        client: URLs and the shared limiter (:class:`~._streamcore.StreamClient`).
        session: gets every message, read and pong, and the opened/failed/lost reports.
        config: ``open_timeout``, ``close_timeout`` and ``max_message_size``.
        now: the driver's clock, read for every report.
        after_input: the driver's turn after each report (and each read).
        spawn: runs a connection attempt as a task of the driver.
        claim_start_error: offered a failed connection attempt first; returns ``True`` when it
            took the error (the stream is starting: it is raised from ``async with``), and then
            the session never hears of it.
        running: whether a cancelled attempt is a failure to report (not while stopping).
    """

    def __init__(
        self,
        client: StreamClient,
        session: StreamSession,
        config: StreamConfig,
        *,
        now: Callable[[], Now],
        after_input: Callable[[], None],
        spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]],
        claim_start_error: Callable[[BaseException], bool],
        running: Callable[[], bool],
    ) -> None:
        self._client = client
        self._session = session
        self._config = config
        self._now = now
        self._after_input = after_input
        self._spawn = spawn
        self._claim_start_error = claim_start_error
        self._running = running
        self._sockets: dict[int, WsLink] = {}
        self._opening: dict[int, asyncio.Task[Any]] = {}
        self._sends: deque[Send] = deque()
        self._send_waiter: asyncio.Future[None] | None = None
        self._hooks = LinkHooks(
            now=now,
            received=session.received,
            pong=session.pong,
            read_done=after_input,
            lost=self._lost,
            close_timeout=config.close_timeout,
        )

    def open(self, action: OpenLink) -> None:
        """Connect ``action.link`` in the background; the session hears how it went."""
        self._opening[action.link] = self._spawn(self._open(action), "open")

    def send(self, action: Send) -> None:
        """Queue a WS API request for :meth:`sender`."""
        self._sends.append(action)
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def ping(self, action: Ping) -> None:
        """Ping ``action.link`` (if it is still connected)."""
        socket = self._sockets.get(action.link)
        if socket is not None:
            socket.ping(action.payload)

    def close(self, action: CloseLink) -> None:
        """Close ``action.link`` politely, or give up connecting it."""
        socket = self._sockets.get(action.link)
        if socket is not None:
            socket.close(action.reason)
        elif action.link in self._opening:
            self._opening[action.link].cancel()

    async def close_all(self) -> None:
        """Stopping: cancel every attempt, let every connection close (bounded), abort the rest.

        Call after :meth:`StreamSession.close`, whose :class:`CloseLink` actions started the
        closing handshakes.
        """
        for task in list(self._opening.values()):
            task.cancel()
        closed = [s.closed for s in self._sockets.values()]
        if closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.close_timeout * 2):
                    await asyncio.gather(*closed)
        for socket in list(self._sockets.values()):
            socket.abort()

    async def sender(self) -> None:
        """Send WS API requests in order, each through the shared limiter; runs until cancelled."""
        sends = self._sends
        client = self._client
        limiter = client.limiter
        loop = asyncio.get_running_loop()
        while True:
            if not sends:
                self._send_waiter = loop.create_future()
                await self._send_waiter
                continue
            action = sends.popleft()
            await limiter.acquire_ws(
                action.weight, critical=action.critical, account=client.account
            )
            socket = self._sockets.get(action.link)
            if socket is not None:
                if action.secret:
                    socket.secrets.add(action.secret)  # redacted from its log lines from now on
                socket.send(action.payload)

    async def _open(self, action: OpenLink) -> None:
        cfg = self._config
        client = self._client
        session = self._session
        link = action.link
        secret = action.listen_key
        if action.channel is Channel.TRADE:
            url = display = client.ws_api_url
        else:
            base = client.risk_stream_url
            url, display = f"{base}/ws/{secret}", f"{base}/ws/<listenKey>"
        try:
            await client.limiter.acquire_ws_connect()
            secrets = set(session.secrets(link))
            try:
                uri = parse_uri(url)
            except InvalidURI:
                raise StreamError(f"invalid stream URL {display}") from None
            ws = ClientProtocol(uri, max_size=cfg.max_message_size, logger=RedactingLogger(secrets))
            loop = asyncio.get_running_loop()
            socket = WsLink(link, ws, secrets, self._hooks, session.handler(link))
            async with asyncio.timeout(cfg.open_timeout):
                await loop.create_connection(
                    lambda: socket,
                    uri.host,
                    uri.port,
                    ssl=ssl.create_default_context() if uri.secure else None,
                )
                self._sockets[link] = socket
                await socket.opened
        except asyncio.CancelledError:
            self._opening.pop(link, None)
            if self._running():
                session.link_failed(link, StreamError("cancelled"), self._now())
                self._after_input()
            raise
        except Exception as exc:
            self._opening.pop(link, None)
            socket_ = self._sockets.pop(link, None)
            if socket_ is not None:
                socket_.abort()
            # The library's one rule: the listen key shows as its masked prefix, if at all.
            text = redact(f"{type(exc).__name__}: {exc}", (secret,) if secret else ())
            error = StreamError(
                f"cannot connect the {action.channel.value} stream to {display}: {text}"
            )
            if not self._claim_start_error(error):
                session.link_failed(link, error, self._now())
                self._after_input()
            return
        self._opening.pop(link, None)
        session.link_opened(link, self._now())
        self._after_input()

    def _lost(self, socket: WsLink) -> None:
        if self._sockets.get(socket.link) is socket:
            del self._sockets[socket.link]
        if not socket.opened.done() or socket.link in self._opening:
            return  # _open reports it
        self._session.link_lost(socket.link, socket.reason, self._now())
        self._after_input()
