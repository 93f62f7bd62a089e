"""The sans-I/O core of :class:`~binance_margin_async.trading.TradingSession`.

It correlates WebSocket API requests and answers and decides what every outcome means; the shell
(:mod:`.trading`) only moves frames, awaits futures and feeds the limiter. No sockets, no loop, no
clock: ``now`` is passed in, so every path is tested without an event loop.

* Requests get increasing integer ids, unique per session (not per connection), so an answer can
  never be matched to a request of another connection, and many can be in flight at once.
* An answer resolves its request: ``status`` 200 → result; 5xx, ``-1000``/``-1006``/``-1007``
  on a write (order, cancel) → :class:`~.errors.ExecutionStatusUnknown` with the client order id;
  any other error → the same exception REST raises (:func:`~.errors.error_from_ws`).
* A write whose answer is lost (connection dropped, or no answer in time) is never resent: it
  ends as :class:`~.errors.ExecutionStatusUnknown`; a read ends as a retryable
  :class:`~.errors.TransportError`.
* User-data events (``{"subscriptionId": N, "event": {...}}``) are passed on; during a
  make-before-break overlap both connections carry the same events, so each is delivered once.
* ``serverShutdown`` and the connection's age (Binance cuts it at 24 h) ask for a planned move.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/general-api-information
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .errors import (
    UNKNOWN_OUTCOME_CODES,
    BinanceAPIError,
    BinanceError,
    ExecutionStatusUnknown,
    TransportError,
    error_from_ws,
)
from .signing import Signer, ws_api_payload

__all__ = ["Answer", "Pending", "Received", "TradingCore", "signed_params"]

#: Binance closes WebSocket API connections after 24 h; move well before (PROTOCOL.md §3.2).
DEFAULT_MAX_AGE: Final = 23.5 * 3600.0


@dataclass(slots=True)
class Pending:
    """A request sent and not answered yet."""

    request_id: int
    link: int
    method: str
    write: bool
    client_order_id: str | None
    endpoint: str
    sent_at: float


@dataclass(slots=True)
class Answer:
    """The end of one request: ``result`` when ``error`` is ``None``.

    ``status``/``rate_limits``/``error_data`` are what the limiter learns from (``status`` 0 when
    no answer arrived).
    """

    request_id: int
    status: int
    result: Any = None
    error: BinanceError | None = None
    rate_limits: list[Any] | None = None
    error_data: dict[str, Any] | None = None


@dataclass(slots=True)
class Received:
    """What one incoming frame produced."""

    answers: list[Answer] = field(default_factory=list)
    #: Inner user-data events (``{"e": ..., ...}``), deduplicated, in arrival order.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: ``serverShutdown``: move to a new connection soon.
    shutdown: bool = False
    #: A frame that is neither an answer nor an event (kept for the error report).
    malformed: str | None = None


def signed_params(
    params: Mapping[str, str],
    *,
    api_key: str,
    signer: Signer | None,
    timestamp_ms: int,
    recv_window: str | None,
) -> dict[str, str]:
    """``params`` stamped for the WebSocket API.

    With ``signer`` (not logged on): ``apiKey``, ``timestamp``, ``recvWindow`` and a
    ``signature`` over all of them sorted by name (:func:`~.signing.ws_api_payload`). Without
    (the session is logged on with ``session.logon``): ``timestamp`` and ``recvWindow`` only.
    https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/request-security
    """
    stamped = dict(params)
    stamped["timestamp"] = str(timestamp_ms)
    if recv_window is not None:
        stamped["recvWindow"] = recv_window
    if signer is not None:
        stamped["apiKey"] = api_key
        stamped["signature"] = signer.sign(ws_api_payload(stamped))
    return stamped


class TradingCore:
    """Request/answer correlation, outcome policy and event dedupe for one trading session."""

    __slots__ = ("_created", "_next_id", "_overlap", "_pending", "_seen", "max_age")

    def __init__(self, *, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.max_age = max_age
        self._next_id = 0
        self._pending: dict[int, Pending] = {}
        self._created: dict[int, float] = {}
        self._overlap = False
        self._seen: set[bytes] = set()

    # Connections

    def link_opened(self, link: int, now: float) -> None:
        """Connection ``link`` is open (its age counts from ``now``)."""
        self._created[link] = now

    def rotation_due(self, link: int, now: float) -> bool:
        """The connection is old enough to be replaced before Binance cuts it."""
        created = self._created.get(link)
        return created is not None and now - created >= self.max_age

    def rotation_at(self, link: int) -> float | None:
        """When :meth:`rotation_due` becomes true for ``link``."""
        created = self._created.get(link)
        return None if created is None else created + self.max_age

    def begin_overlap(self) -> None:
        """Two connections carry the same account's events: deliver each once."""
        self._overlap = True

    def end_overlap(self) -> None:
        """Back to one connection."""
        self._overlap = False
        self._seen.clear()

    def in_flight(self, link: int) -> list[int]:
        """Ids of the requests of ``link`` still waiting for an answer."""
        return [p.request_id for p in self._pending.values() if p.link == link]

    def link_lost(self, link: int) -> list[Answer]:
        """Connection ``link`` is gone: every request on it ends without an answer."""
        self._created.pop(link, None)
        lost = [p for p in self._pending.values() if p.link == link]
        for pending in lost:
            del self._pending[pending.request_id]
        return [
            Answer(p.request_id, 0, error=self._no_answer(p, "the connection was lost"))
            for p in lost
        ]

    # Requests

    def request(
        self,
        link: int,
        method: str,
        params: Mapping[str, str],
        now: float,
        *,
        write: bool,
        client_order_id: str | None = None,
        endpoint: str = "",
    ) -> tuple[int, bytes]:
        """Register one request on ``link``; returns its id and the frame to send (JSON text)."""
        self._next_id += 1
        request_id = self._next_id
        self._pending[request_id] = Pending(
            request_id, link, method, write, client_order_id, endpoint or method, now
        )
        frame = orjson.dumps({"id": request_id, "method": method, "params": params})
        return request_id, frame

    def expired(self, now: float, timeout: float) -> list[Answer]:
        """End every request sent ``timeout`` seconds or more before ``now`` without an answer.

        One sweep for all requests (the shell calls it periodically) instead of a timer per
        request: the hot path then only awaits the answer.
        """
        late = [p for p in self._pending.values() if now - p.sent_at >= timeout]
        for pending in late:
            del self._pending[pending.request_id]
        return [
            Answer(p.request_id, 0, error=self._no_answer(p, f"no answer within {timeout:g} s"))
            for p in late
        ]

    def forget(self, request_id: int) -> None:
        """The caller stopped waiting (cancelled): drop the request; a late answer is ignored."""
        self._pending.pop(request_id, None)

    def send_failed(self, request_id: int) -> BinanceError:
        """Writing the frame failed (the connection closed): it may have left or not."""
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return TransportError(f"request {request_id} was not pending")
        return self._no_answer(pending, "the connection closed while sending")

    # Frames

    def receive(self, link: int, data: str | bytes, now: float) -> Received:
        """One text frame from ``link``."""
        out = Received()
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            out.malformed = _excerpt(data)
            return out
        if not isinstance(message, dict):
            out.malformed = _excerpt(data)
            return out
        event = message.get("event")
        if isinstance(event, dict):
            if event.get("e") == "serverShutdown":
                out.shutdown = True
            elif "subscriptionId" in message:
                if self._first_time(event):
                    out.events.append(event)
            else:
                out.malformed = _excerpt(data)
            return out
        request_id = message.get("id")
        if type(request_id) is not int:
            out.malformed = _excerpt(data)
            return out
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return out  # the answer to a request already given up on (timed out)
        out.answers.append(self._answer(pending, message))
        return out

    # Policy

    def _answer(self, pending: Pending, message: dict[str, Any]) -> Answer:
        status = message.get("status")
        status = status if type(status) is int else 0
        rate_limits = message.get("rateLimits")
        answer = Answer(
            pending.request_id,
            status,
            rate_limits=rate_limits if isinstance(rate_limits, list) else None,
        )
        if status == 200:
            answer.result = message.get("result")
            return answer
        error = message.get("error")
        error = error if isinstance(error, dict) else {}
        data = error.get("data")
        answer.error_data = data if isinstance(data, dict) else None
        exc = error_from_ws(status, error, now=pending.sent_at)
        if pending.write and (
            status >= 500
            or (isinstance(exc, BinanceAPIError) and exc.code in UNKNOWN_OUTCOME_CODES)
        ):
            unknown = ExecutionStatusUnknown(
                f"{pending.method}: {exc}",
                client_order_id=pending.client_order_id,
                endpoint=pending.endpoint,
                status=status,
                code=exc.code if isinstance(exc, BinanceAPIError) else None,
            )
            unknown.__cause__ = exc
            answer.error = unknown
        else:
            answer.error = exc
        return answer

    @staticmethod
    def _no_answer(pending: Pending, reason: str) -> BinanceError:
        if pending.write:
            return ExecutionStatusUnknown(
                f"{pending.method}: {reason}",
                client_order_id=pending.client_order_id,
                endpoint=pending.endpoint,
            )
        # A read changed nothing: the caller may simply ask again.
        return TransportError(f"{pending.method}: {reason}", request_may_have_been_sent=True)

    def _first_time(self, event: dict[str, Any]) -> bool:
        if not self._overlap:
            return True
        # Both connections send byte-identical events for one account; the sorted JSON is the key.
        key = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _excerpt(data: str | bytes) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text[:200]
