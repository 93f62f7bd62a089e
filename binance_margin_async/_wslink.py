"""The link transport of the user-data stream: one WebSocket connection, no policy.

websockets' documented sans-I/O ``ClientProtocol`` on our own :class:`asyncio.Protocol`, so every
message is handed on (to the session's handler) the moment it is parsed and every ping is
answered as it arrives, whatever the callbacks are doing (and no private websockets API is
touched). What to do with the messages, and when to open, ping or close, is the session's
business; the link reports through :class:`LinkHooks` and knows nothing else of its driver.

:class:`RedactingLogger` is websockets' own logger under the :mod:`.redaction` rule, for this link
and the trading session's; it lives here rather than in :mod:`.redaction` because it knows
websockets' ``Frame`` (and that module is dependency-free).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State

from .redaction import redact

if TYPE_CHECKING:
    from ._session import Now

__all__ = ["LinkHooks", "RedactingLogger", "WsLink"]

_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT
_PONG: Final = Opcode.PONG
# ClientProtocol parses every frame of the data it is given before handing any on, so all their
# Frame objects live at once; fed in slices, only a slice's frames do. That keeps the garbage
# collector, which runs as the dispatch backlog grows during a burst, from finding (and promoting
# towards the costly full collections) hundreds of live frames.
_SLICE: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class LinkHooks:
    """Where a :class:`WsLink` reports what happens on it: all it knows of its driver.

    One set serves every link of a driver; each callback gets the link's id. Per read:
    ``received(link, now())`` first (any bytes prove the path), then each message (to the link's
    own ``on_message``) and pong, then ``read_done()``. ``lost(link)`` once, when the connection
    ended (after its last read).
    """

    now: Callable[[], Now]
    received: Callable[[int, Now], None]
    pong: Callable[[int, bytes], None]
    read_done: Callable[[], None]
    lost: Callable[[WsLink], None]
    close_timeout: float  # how long the server gets to end TCP after the closing handshake


class WsLink(asyncio.Protocol):
    """One WebSocket connection: websockets' sans-I/O ``ClientProtocol`` on an asyncio transport.

    websockets documents this integration (feed ``receive_data``, write ``data_to_send``, read
    ``events_received``). Every message goes to the session as soon as it is parsed; pings are
    answered by the protocol right then (their pongs are in ``data_to_send``).

    Args:
        link: its id, passed back with every report.
        ws: the protocol, not yet connected.
        secrets: what its logger redacts (listen key, tokens sent on it); a live set.
        hooks: where it reports reads, pongs and its end (:class:`LinkHooks`).
        on_message: called with every complete message, as soon as it is parsed.
    """

    def __init__(
        self,
        link: int,
        ws: ClientProtocol,
        secrets: set[str],
        hooks: LinkHooks,
        on_message: Callable[[bytes | bytearray | memoryview], None],
    ) -> None:
        self.hooks = hooks
        self.link = link
        self.ws = ws
        self.secrets = secrets  # what its logger redacts (listen key, tokens sent on it)
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._fragments: list[Any] | None = None
        self._closer: asyncio.TimerHandle | None = None
        self.reason = ""
        self.on_message = on_message

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        hooks = self.hooks
        hooks.received(self.link, hooks.now())
        if len(data) <= _SLICE:
            self._receive(data)
        else:
            for start in range(0, len(data), _SLICE):  # see _SLICE
                self._receive(data[start : start + _SLICE])
        self._flush()
        hooks.read_done()

    def _receive(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        on_message = self.on_message
        for event in ws.events_received():
            if event.__class__ is Frame:
                opcode = event.opcode
                if opcode is _TEXT or opcode is _BINARY:
                    if event.fin:
                        on_message(event.data)
                    else:
                        self._fragments = [event.data]
                elif opcode is _CONT and self._fragments is not None:
                    # The protocol already checked the sequence and the total size.
                    self._fragments.append(event.data)
                    if event.fin:
                        message = b"".join(self._fragments)
                        self._fragments = None
                        on_message(message)
                elif opcode is _PONG:
                    self.hooks.pong(self.link, bytes(event.data))
            elif isinstance(event, Response) and not self.opened.done():
                if ws.handshake_exc is not None:
                    self.opened.set_exception(ws.handshake_exc)
                else:
                    self.opened.set_result(None)

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closer is not None:
            self._closer.cancel()
        if not self.reason:
            ws = self.ws
            if ws.state is State.CLOSED and ws.close_rcvd is not None:
                self.reason = f"closed by the server ({ws.close_rcvd})"
            elif exc is not None:
                self.reason = f"{type(exc).__name__}: {exc}"
            else:
                self.reason = "connection closed"
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.reason))
        self.closed.set_result(None)
        self.hooks.lost(self)

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()
        if self.ws.close_expected() and self._closer is None:
            # The closing handshake is under way: give the server close_timeout to end TCP.
            self._closer = asyncio.get_running_loop().call_later(
                self.hooks.close_timeout, transport.abort
            )

    def send(self, payload: bytes) -> None:
        if self.ws.state is State.OPEN:
            self.ws.send_text(payload)
            self._flush()

    def ping(self, payload: bytes) -> None:
        if self.ws.state is State.OPEN:
            self.ws.send_ping(payload)
            self._flush()

    def close(self, reason: str) -> None:
        """Close politely (bounded by close_timeout, then abort)."""
        if not self.reason:
            self.reason = reason
        if self.transport is None:
            return
        if self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self._flush()
        elif self._closer is None:
            self.transport.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' own logger (``websockets.client``) under the library's one redaction rule.

    At DEBUG, websockets logs the opening request line (the risk stream's URL carries its listen
    key) and every frame: the listen tokens we subscribe with, the listen key inside a
    ``listenKeyExpired`` event, the API key and the signature of every WebSocket API request.
    Records are formatted here and masked by :func:`.redaction.redact` before the wrapped logger
    sees them; frames are masked in their whole payload first, since websockets elides the
    middle of long payloads and would otherwise show a fragment of a secret (the tail of a
    signature, a listen key cut in half). ``secrets`` is the connection's live set (tokens join
    it as they are subscribed); secrets under a known name (``apiKey``, ``signature``) are masked
    without being listed. Costs nothing unless a record is emitted.
    """

    def __init__(self, secrets: set[str]) -> None:
        super().__init__(logging.getLogger("websockets.client"))
        self.secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log like the wrapped logger, with every secret masked (:func:`.redaction.mask`)."""
        if not self.isEnabledFor(level):
            return
        args = tuple(self._redact_frame(arg) for arg in args)
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):  # never raise into websockets from a log call
            text = f"{msg} {args!r}"
        exc_info = kwargs.get("exc_info")
        if exc_info:
            # A traceback is formatted by the handler, out of our reach: format it here and
            # send it, masked, as part of the message instead.
            if exc_info is True:
                exc_info = sys.exc_info()
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            kwargs["exc_info"] = None
            text += "\n" + "".join(traceback.format_exception(*exc_info)).rstrip()
        self.logger.log(level, redact(text, self.secrets), **kwargs)

    def _redact_frame(self, value: object) -> object:
        if not isinstance(value, Frame) or value.opcode not in (_TEXT, _BINARY, _CONT):
            return value
        # surrogateescape: a binary frame's bytes come back unchanged wherever nothing is masked
        text = bytes(value.data).decode("utf-8", "surrogateescape")
        data = redact(text, self.secrets).encode("utf-8", "surrogateescape")
        return Frame(value.opcode, data, value.fin)
