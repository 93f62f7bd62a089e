"""The one exception tree of binance_margin_async, and the one place that maps responses to it.

Every error the library raises derives from :class:`BinanceError`::

    BinanceError
    ├── ParameterError (also ValueError)      bad input, raised before anything is sent
    │   └── InvalidKeyError                   malformed api_secret / private_key
    ├── TransportError                        no response at all (refused, reset, timeout)
    ├── RedirectRefused                       a 3xx answer: never followed, nothing re-sent
    ├── InvalidResponse                       a response that is not Binance's JSON shape
    │   └── ResponseTooLarge                  a body over the client's max_response_bytes
    ├── BinanceAPIError                       Binance answered {"code", "msg"}; a class per code
    │   ├── BadRequest                        -1100 … -1130 request errors
    │   │   └── IllegalChars, TooManyParameters, MandatoryParamEmptyOrMalformed, …
    │   ├── AuthError                         InvalidSignature, BadApiKeyFormat, RejectedApiKey
    │   ├── InvalidTimestamp, NewOrderRejected, CancelRejected, NoSuchOrder, …
    │   └── TooManyRequests (-1003), TooManyOrders (-1015)   also RateLimited
    ├── RateLimited                           HTTP 429, or refused locally by the limiter
    │   ├── IPBanned                          HTTP 418 / "IP banned until …"; has .until
    │   └── TooManyRequests, TooManyOrders    (see above)
    ├── ExecutionStatusUnknown                a write with unknown outcome (timeout, 5xx, -1006/7)
    └── StreamError                           user-data stream failures
        └── EventQueueOverflow                the events() reader fell behind

:data:`ERROR_CODES` maps every code of PROTOCOL.md §6 to its class; codes Binance adds later
become a plain :class:`BinanceAPIError` with the code kept. :func:`error_from_response` (REST) and
:func:`error_from_ws` (WebSocket API error envelopes) share one mapping, so the same failure is the
same exception whichever transport carried it.

All exceptions pickle (they cross process pools and logging queues), and none carries a secret:
text that comes from outside (Binance's ``msg``, body excerpts) goes through
:func:`~.redaction.redact` first, and no exception chains a foreign library's error (aiohttp's
carry the request with its headers).

Binance error codes: https://developers.binance.com/docs/margin_trading/error-code
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Final

import orjson

from .redaction import redact

__all__ = [
    "ERROR_CODES",
    "UNKNOWN_OUTCOME_CODES",
    "AccountBorrowBanned",
    "AccountTradeBanned",
    "AssetBorrowBanned",
    "AssetTradeBanned",
    "AuthError",
    "BackendTimeout",
    "BadApiKeyFormat",
    "BadPrecision",
    "BadRequest",
    "BadSymbol",
    "BalanceNotEnough",
    "BelowMinBorrow",
    "BelowMinRepay",
    "BinanceAPIError",
    "BinanceError",
    "BorrowNotAllowed",
    "CancelRejected",
    "Disconnected",
    "EventQueueOverflow",
    "ExceedMaxBorrowable",
    "ExecutionStatusUnknown",
    "FewLiabilityLeft",
    "IPBanned",
    "IllegalChars",
    "InsufficientInventory",
    "InvalidKeyError",
    "InvalidListenKey",
    "InvalidListenToken",
    "InvalidMarginAsset",
    "InvalidMarginPair",
    "InvalidMessage",
    "InvalidOrderType",
    "InvalidParameter",
    "InvalidResponse",
    "InvalidSide",
    "InvalidSignature",
    "InvalidTimeInForce",
    "InvalidTimestamp",
    "ListenKeyNotFound",
    "LookupIntervalTooBig",
    "MandatoryParamEmptyOrMalformed",
    "MarginAccountNotFound",
    "MarginLevelTooLow",
    "MarginSystemBusy",
    "MaxSubscriptionIds",
    "NewOrderRejected",
    "NoSuchOrder",
    "OptionalParamsBadCombo",
    "PairNotTradable",
    "ParamEmpty",
    "ParamNotRequired",
    "ParameterError",
    "PendingTransaction",
    "PnlClearing",
    "PriceLimitExceeded",
    "RateLimited",
    "RedirectRefused",
    "RejectedApiKey",
    "RepayExceedsLiability",
    "RepayNotAllowed",
    "ResponseTooLarge",
    "ServerBusy",
    "ServerOverloaded",
    "StreamError",
    "SubscriptionActive",
    "SubscriptionInactive",
    "TimeInForceNotRequired",
    "TimeRangeTooLong",
    "TooManyOrders",
    "TooManyParameters",
    "TooManyRequests",
    "TransferOutExceedsMax",
    "TransportError",
    "UnexpectedResponse",
    "UnknownError",
    "UnknownParam",
    "UnreadParameters",
    "error_from_response",
    "error_from_ws",
]

#: Longest excerpt of an unparseable body kept on :class:`InvalidResponse`.
EXCERPT_CHARS = 200

# Binance's bans last 2 min … 3 days. When a 418 names no end at all, assume the shortest ban: the
# limiter then probes again after 2 minutes instead of locking the user out for an invented time.
_MIN_BAN_SECONDS = 120.0

# "Way too much request weight used; IP banned until 1659146400000. Please use …" (SPOT errors.md).
_BANNED_UNTIL = re.compile(r"banned until (\d{10,16})")

_TOO_MANY_REQUESTS = -1003


def _restore(cls: type[BinanceError], args: tuple[Any, ...], state: dict[str, Any]) -> BinanceError:
    """Rebuild a pickled exception without its ``__init__`` (signatures differ per class)."""
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class BinanceError(Exception):
    """Root of every exception raised by binance_margin_async."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduce calls cls(*self.args), but args holds only the rendered message while
        # the constructors take structured fields. Restore the fields from __dict__ instead.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ParameterError(BinanceError, ValueError):
    """An argument is invalid; raised before anything is sent.

    ``param`` is the offending parameter's name, and ``str(e)`` names it. The value itself is not
    repeated in the message, because it may be a secret.
    """

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        self.message = message
        super().__init__(f"invalid parameter {param!r}: {message}")


class InvalidKeyError(ParameterError):
    """``api_secret`` or ``private_key`` (or its password) is unusable; the key is never echoed."""


class TransportError(BinanceError):
    """The request got no HTTP response: connection refused or reset, DNS, timeout, broken socket.

    ``request_may_have_been_sent`` is False only when the connection never opened, so nothing can
    have reached Binance; for a non-idempotent call that is still True, the rest shell raises
    :class:`ExecutionStatusUnknown` instead.
    """

    def __init__(self, message: str, *, request_may_have_been_sent: bool = True) -> None:
        self.request_may_have_been_sent = request_may_have_been_sent
        super().__init__(message)


class RedirectRefused(BinanceError):
    """The server answered with an HTTP redirect (3xx); the client never follows one.

    Binance does not redirect API calls, so a 3xx comes from something in between (a captive
    portal, a hijacked DNS name, a misconfigured proxy). Following it would send the API key, and
    for a signed call the whole signed request, to another origin: nothing is re-sent anywhere.
    ``status`` is the HTTP status, ``target_host`` the host the ``Location`` header names
    (``None`` when absent or relative, i.e. the same host).
    """

    def __init__(self, status: int, target_host: str | None) -> None:
        self.status = status
        self.target_host = target_host
        where = "the same host" if target_host is None else f"host {target_host!r}"
        super().__init__(f"HTTP {status}: redirect to {where} refused; nothing was re-sent")


class InvalidResponse(BinanceError):
    """The server answered something that is not Binance's JSON shape (HTML error page, truncation).

    ``status`` is the HTTP (or WebSocket API) status; ``excerpt`` the start of the body, at most
    200 characters and redacted (:mod:`.redaction`), for logs.
    """

    def __init__(self, status: int, excerpt: str, reason: str = "unexpected response body") -> None:
        self.status = status
        # Redact before cutting: a cut could leave a secret without the name that marks it.
        self.excerpt = redact(excerpt)[:EXCERPT_CHARS]
        self.reason = redact(reason)
        super().__init__(f"HTTP {status}: {self.reason}: {self.excerpt!r}")


class ResponseTooLarge(InvalidResponse):
    """The body exceeded the client's ``max_response_bytes``; reading stopped at the limit.

    ``limit`` is that maximum in bytes.
    """

    def __init__(self, status: int, excerpt: str, limit: int) -> None:
        self.limit = limit
        super().__init__(status, excerpt, f"response body larger than {limit} bytes")


_REGISTRY: dict[int, type[BinanceAPIError]] = {}


class BinanceAPIError(BinanceError):
    """Binance rejected the request with ``{"code": …, "msg": …}``.

    Subclasses exist per code (class attribute ``CODE``) so callers can ``except NoSuchOrder``;
    an unknown code raises this base class with ``code`` kept. ``str(e)`` is
    ``"HTTP 400, code -2010: <msg>"``. https://developers.binance.com/docs/margin_trading/error-code
    """

    CODE: ClassVar[int | None] = None

    def __init_subclass__(cls, *, code: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.CODE = code
        if code is not None:
            if code in _REGISTRY:  # a copy-paste slip would silently shadow a class
                raise TypeError(f"code {code} registered twice: {_REGISTRY[code].__name__}")
            _REGISTRY[code] = cls

    def __init__(self, status: int, code: int, msg: str) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        # Not super(): in the TooManyRequests diamond the next class in the MRO is RateLimited,
        # whose constructor takes different arguments.
        BinanceError.__init__(self, f"HTTP {status}, code {code}: {msg}")


class RateLimited(BinanceError):
    """A rate limit was hit: HTTP 429 from Binance, or refused locally by the limiter.

    ``retry_after`` is seconds to wait (``None`` when unknown: Binance omits ``Retry-After`` on
    some order-count 429s). ``pool`` is the limiter pool key when known. ``status``, ``code`` and
    ``msg`` are Binance's answer; all ``None``/empty when the limiter refused without sending.
    https://developers.binance.com/docs/margin_trading/general-info
    """

    def __init__(
        self,
        retry_after: float | None = None,
        pool: str | None = None,
        status: int | None = None,
        code: int | None = None,
        msg: str = "",
    ) -> None:
        self.retry_after = retry_after
        self.pool = pool
        self.status = status
        self.code = code
        self.msg = msg
        BinanceError.__init__(self, self._describe())

    def _describe(self) -> str:
        if self.status is None:
            head = "rate limit reached locally, request not sent"
        elif self.code is None:
            head = f"HTTP {self.status}: rate limited"
        else:
            head = f"HTTP {self.status}, code {self.code}: {self.msg}"
        if self.pool is not None:
            head += f" (pool {self.pool})"
        if self.retry_after is not None:
            head += f"; retry after {self.retry_after:g} s"
        return head


class IPBanned(RateLimited):
    """The IP is banned (HTTP 418, or a ``-1003 … IP banned until <ms>`` message).

    ``until`` is the end of the ban in epoch seconds; nothing may be sent to Binance before it.
    """

    def __init__(
        self,
        until: float,
        *,
        retry_after: float | None = None,
        pool: str | None = None,
        status: int | None = None,
        code: int | None = None,
        msg: str = "",
    ) -> None:
        self.until = until
        super().__init__(retry_after, pool, status, code, msg)

    def _describe(self) -> str:
        stamp = datetime.fromtimestamp(self.until, UTC).isoformat(timespec="seconds")
        return f"IP banned until {stamp}; " + super()._describe()


#: Codes that mean "the server may or may not have executed it" (PROTOCOL.md §6): for a read that
#: only costs a retry; for an order or cancel the caller has to reconcile.
UNKNOWN_OUTCOME_CODES: Final = frozenset({-1000, -1006, -1007})


class ExecutionStatusUnknown(BinanceError):
    """A non-idempotent call (order, cancel, borrow, repay, transfer) may or may not have executed.

    Raised on a timeout after sending, HTTP 5xx, ``-1006``/``-1007`` (also in a 2xx body), or an
    answer over the client's ``max_response_bytes``. Never retried
    automatically: query the order by ``client_order_id`` (always set on orders) or the
    borrow/repay history before trying again (``hint`` says which records, and with which
    parameters the call was sent). ``endpoint`` names the call; ``status``/``code`` are set when
    Binance answered. The original error is chained as ``__cause__``.
    """

    def __init__(
        self,
        reason: str,
        *,
        client_order_id: str | None,
        endpoint: str,
        status: int | None = None,
        code: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.client_order_id = client_order_id
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.hint = hint
        order = "" if client_order_id is None else f", newClientOrderId={client_order_id}"
        where = "it" if hint is None else hint  # which records show whether it executed
        super().__init__(
            f"{reason} [{endpoint}{order}]: execution status unknown, query {where} before retrying"
        )


class StreamError(BinanceError):
    """A user-data stream failed in a way the stream cannot repair by itself."""


class EventQueueOverflow(StreamError):
    """The bounded ``events()`` queue overflowed: the reader fell behind and events were lost.

    Raised to the reader instead of dropping silently; callbacks registered with ``on`` still
    received every event.
    """


# --- one class per code users branch on (PROTOCOL.md §6). Names follow Binance's constants. ---


class UnknownError(BinanceAPIError, code=-1000):
    """-1000 UNKNOWN: an unknown error; for orders reconcile before retrying."""


class Disconnected(BinanceAPIError, code=-1001):
    """-1001 DISCONNECTED: internal error, "Please try again."; retry with backoff."""


class ServerBusy(BinanceAPIError, code=-1004):
    """-1004 SERVER_BUSY: "Server is busy, please wait and try again"."""


class UnexpectedResponse(BinanceAPIError, code=-1006):
    """-1006 UNEXPECTED_RESP: the backend's answer was lost; execution status unknown."""


class BackendTimeout(BinanceAPIError, code=-1007):
    """-1007 TIMEOUT: the backend did not answer in time; execution status unknown."""


class ServerOverloaded(BinanceAPIError, code=-1008):
    """-1008 SERVER_BUSY: the server is overloaded; retry after a delay."""


class InvalidMessage(BinanceAPIError, code=-1013):
    """-1013 INVALID_MESSAGE: rejected before the matching engine, e.g. a filter failure."""


class InvalidTimestamp(BinanceAPIError, code=-1021):
    """-1021 INVALID_TIMESTAMP: timestamp outside recvWindow or > 1 s ahead; resync the clock."""


class AuthError(BinanceAPIError):
    """The API key or signature was refused: a configuration problem, not worth retrying."""


class InvalidSignature(AuthError, code=-1022):
    """-1022 INVALID_SIGNATURE: wrong secret/key, or payload encoding mismatch."""


class BadApiKeyFormat(AuthError, code=-2014):
    """-2014 BAD_API_KEY_FMT: the API key format is invalid."""


class RejectedApiKey(AuthError, code=-2015):
    """-2015 REJECTED_MBX_KEY: "Invalid API-key, IP, or permissions for action."."""


class BadRequest(BinanceAPIError):
    """A -11xx request error: a parameter is missing, malformed or not allowed. Not retryable."""


class IllegalChars(BadRequest, code=-1100):
    """-1100 ILLEGAL_CHARS: illegal characters in a parameter."""


class TooManyParameters(BadRequest, code=-1101):
    """-1101 TOO_MANY_PARAMETERS: too many parameters sent."""


class MandatoryParamEmptyOrMalformed(BadRequest, code=-1102):
    """-1102 MANDATORY_PARAM_EMPTY_OR_MALFORMED: a mandatory parameter is missing or malformed."""


class UnknownParam(BadRequest, code=-1103):
    """-1103 UNKNOWN_PARAM: an unknown parameter was sent."""


class UnreadParameters(BadRequest, code=-1104):
    """-1104 UNREAD_PARAMETERS: not all sent parameters were read."""


class ParamEmpty(BadRequest, code=-1105):
    """-1105 PARAM_EMPTY: a parameter was empty."""


class ParamNotRequired(BadRequest, code=-1106):
    """-1106 PARAM_NOT_REQUIRED: a parameter was sent when not required."""


class BadPrecision(BadRequest, code=-1111):
    """-1111 BAD_PRECISION: more decimals than the symbol allows."""


class TimeInForceNotRequired(BadRequest, code=-1114):
    """-1114 TIF_NOT_REQUIRED: timeInForce sent when not required."""


class InvalidTimeInForce(BadRequest, code=-1115):
    """-1115 INVALID_TIF: invalid timeInForce."""


class InvalidOrderType(BadRequest, code=-1116):
    """-1116 INVALID_ORDER_TYPE: invalid order type."""


class InvalidSide(BadRequest, code=-1117):
    """-1117 INVALID_SIDE: invalid side."""


class BadSymbol(BadRequest, code=-1121):
    """-1121 BAD_SYMBOL: invalid symbol."""


class InvalidListenKey(BadRequest, code=-1125):
    """-1125 INVALID_LISTEN_KEY: the listen key does not exist; create a new one."""


class LookupIntervalTooBig(BadRequest, code=-1127):
    """-1127 MORE_THAN_XX_HOURS: the lookup interval is too big."""


class OptionalParamsBadCombo(BadRequest, code=-1128):
    """-1128 OPTIONAL_PARAMS_BAD_COMBO: combination of optional parameters invalid."""


class InvalidParameter(BadRequest, code=-1130):
    """-1130 INVALID_PARAMETER: invalid data sent for a parameter."""


class InvalidListenToken(BinanceAPIError, code=-1209):
    """-1209: invalid or expired listenToken; create a new token (POST /sapi/v1/userListenToken).

    https://developers.binance.com/docs/margin_trading/trade-data-stream/Listen-Token-Websocket-API
    """


class NewOrderRejected(BinanceAPIError, code=-2010):
    """-2010 NEW_ORDER_REJECTED: the matching engine rejected the order (balance, would match …)."""


class CancelRejected(BinanceAPIError, code=-2011):
    """-2011 CANCEL_REJECTED: e.g. "Unknown order sent." (already done); query the order."""


class NoSuchOrder(BinanceAPIError, code=-2013):
    """-2013 NO_SUCH_ORDER: the order does not exist."""


class SubscriptionActive(BinanceAPIError, code=-2035):
    """-2035 SUBSCRIPTION_ACTIVE: "User Data Stream subscription already active."."""


class SubscriptionInactive(BinanceAPIError, code=-2036):
    """-2036 SUBSCRIPTION_INACTIVE: the user data stream subscription is not active."""


class MaxSubscriptionIds(BinanceAPIError, code=-2042):
    """-2042 MAXIMUM_SUBSCRIPTION_IDS: the connection used up its subscription ids; reconnect."""


class MarginAccountNotFound(BinanceAPIError, code=-3003):
    """-3003: "Margin account does not exist." (margin not activated)."""


class ExceedMaxBorrowable(BinanceAPIError, code=-3006):
    """-3006 EXCEED_MAX_BORROWABLE: borrow amount exceeds the maximum; check maxBorrowable."""


class PendingTransaction(BinanceAPIError, code=-3007):
    """-3007 HAS_PENDING_TRANSACTION: borrow/repay are serialized per account; retry ≥ 100 ms."""


class BorrowNotAllowed(BinanceAPIError, code=-3008):
    """-3008: borrow not allowed."""


class RepayNotAllowed(BinanceAPIError, code=-3010):
    """-3010: repay not allowed."""


class AssetBorrowBanned(BinanceAPIError, code=-3012):
    """-3012 ASSET_ADMIN_BAN_BORROW: "Borrow is banned for this asset."."""


class BelowMinBorrow(BinanceAPIError, code=-3013):
    """-3013: borrow amount below the minimum."""


class AccountBorrowBanned(BinanceAPIError, code=-3014):
    """-3014: borrow is banned for this account."""


class RepayExceedsLiability(BinanceAPIError, code=-3015):
    """-3015 REPAY_EXCEED_LIABILITY: "Repay amount exceeds borrow amount."."""


class BelowMinRepay(BinanceAPIError, code=-3016):
    """-3016: repay amount below the minimum."""


class TransferOutExceedsMax(BinanceAPIError, code=-3020):
    """-3020: "Transfer out amount exceeds max amount."."""


class PairNotTradable(BinanceAPIError, code=-3021):
    """-3021: the pair is not tradable in margin."""


class AccountTradeBanned(BinanceAPIError, code=-3022):
    """-3022: trading is banned for this margin account."""


class MarginLevelTooLow(BinanceAPIError, code=-3023):
    """-3023: cannot transfer out or place an order under the current margin level."""


class FewLiabilityLeft(BinanceAPIError, code=-3024):
    """-3024 FEW_LIABILITY_LEFT: "The unpaid debt is too small after this repayment."."""


class InvalidMarginAsset(BinanceAPIError, code=-3027):
    """-3027 NOT_VALID_MARGIN_ASSET: not a valid margin asset."""


class InvalidMarginPair(BinanceAPIError, code=-3028):
    """-3028 NOT_VALID_MARGIN_PAIR: not a valid margin pair."""


class PnlClearing(BinanceAPIError, code=-3037):
    """-3037: "PNL is clearing. Wait a second."; retry after a short delay."""


class ListenKeyNotFound(BinanceAPIError, code=-3038):
    """-3038: "Listen key not found."; create a new listen key."""


class BalanceNotEnough(BinanceAPIError, code=-3041):
    """-3041 BALANCE_NOT_CLEARED: "Balance is not enough."."""


class MarginSystemBusy(BinanceAPIError, code=-3044):
    """-3044: "System busy."; retry with backoff."""


class InsufficientInventory(BinanceAPIError, code=-3045):
    """-3045 INSUFFICIENT_INVENTORY: "The system does not have enough asset now."; retry later."""


class PriceLimitExceeded(BinanceAPIError, code=-3064):
    """-3064 EXCEED_PRICE_LIMIT: limit price outside the allowed band around the index."""


class AssetTradeBanned(BinanceAPIError, code=-3067):
    """-3067 ASSET_BAN_TRADE: "This asset is currently not a supported margin asset…"."""


class TimeRangeTooLong(BinanceAPIError, code=-4047):
    """-4047: "Time interval must be within 0-7 days" (capital-flow); split the range."""


class _CodedRateLimit(BinanceAPIError, RateLimited):
    """A Binance code that means "rate limited": both a BinanceAPIError and a RateLimited.

    ``except RateLimited`` then catches every rate-limit answer, whatever the HTTP status.
    """

    # Binance always sends status and code here, so the narrower BinanceAPIError types hold.
    status: int
    code: int

    def __init__(
        self,
        status: int,
        code: int,
        msg: str,
        *,
        retry_after: float | None = None,
        pool: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.pool = pool
        BinanceAPIError.__init__(self, status, code, msg)
        if retry_after is not None:
            self.args = (f"{self.args[0]}; retry after {retry_after:g} s",)


class TooManyRequests(_CodedRateLimit, code=_TOO_MANY_REQUESTS):
    """-1003 TOO_MANY_REQUESTS: request weight or queue limit; wait ``retry_after``."""


class TooManyOrders(_CodedRateLimit, code=-1015):
    """-1015 TOO_MANY_ORDERS: order-count limit; wait for the interval to reset."""


ERROR_CODES: Mapping[int, type[BinanceAPIError]] = MappingProxyType(_REGISTRY)
"""Every error code of PROTOCOL.md §6 → its exception class."""


def _excerpt(body: bytes) -> str:
    # A little more than InvalidResponse keeps: it redacts first, then cuts to EXCERPT_CHARS.
    return body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")


def _retry_after_header(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:  # plain dicts are case-sensitive; aiohttp's CIMultiDict is not
        for key, item in headers.items():
            if key.lower() == "retry-after":
                value = item
                break
        else:
            return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP-date or garbage: Binance sends seconds, so treat as absent
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is absent too


def _from_fields(
    status: int,
    code: int | None,
    msg: str,
    *,
    now: float,
    retry_after: float | None,
    pool: str | None,
) -> BinanceError:
    """Shared REST/WS mapping once status, code, message and the wait (seconds) are known."""
    msg = redact(msg)
    banned = _BANNED_UNTIL.search(msg) if code == _TOO_MANY_REQUESTS else None
    if status == 418 or banned is not None:
        # The limiter compares `until` with the local clock, so a relative wait (Retry-After,
        # or retryAfter - serverTime) beats the server-clock instant named in the message.
        if retry_after is not None:
            until = now + retry_after
        elif banned is not None:
            until = int(banned.group(1)) / 1000.0
        else:
            until = now + _MIN_BAN_SECONDS
        return IPBanned(
            until,
            retry_after=max(until - now, 0.0),
            pool=pool,
            status=status,
            code=code,
            msg=msg,
        )
    if code is None:  # a 429 without a usable body
        return RateLimited(retry_after, pool, status, None, msg)
    cls = ERROR_CODES.get(code)
    if cls is not None and issubclass(cls, _CodedRateLimit):
        return cls(status, code, msg, retry_after=retry_after, pool=pool)
    if status == 429:
        # A 429 whose body names some other code is still a rate limit first.
        return RateLimited(retry_after, pool, status, code, msg)
    if cls is None:
        return BinanceAPIError(status, code, msg)
    return cls(status, code, msg)


def _code_and_msg(data: object) -> tuple[int, str] | None:
    if not isinstance(data, Mapping):
        return None
    code = data.get("code")
    msg = data.get("msg")
    # bool is an int subclass; {"code": true} is not a Binance error.
    if type(code) is not int or not isinstance(msg, str):
        return None
    return code, msg


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    pool: str | None = None,
) -> BinanceError:
    """Map a non-2xx REST response to the exception to raise.

    - 429 → :class:`RateLimited` (``retry_after`` from the ``Retry-After`` header in seconds,
      ``code``/``msg`` from the body when it has them); -1003/-1015 bodies give
      :class:`TooManyRequests`/:class:`TooManyOrders`, which are RateLimited too.
    - 418, or a ``-1003 … IP banned until <ms>`` message → :class:`IPBanned` with
      ``until = now + Retry-After``, else the time from the message, else ``now`` + 2 minutes.
    - ``{"code", "msg"}`` → the class in :data:`ERROR_CODES`, else :class:`BinanceAPIError`.
    - anything else → :class:`InvalidResponse` with the status and a short body excerpt.

    ``now`` is the local epoch time in seconds; ``pool`` the limiter pool key of the endpoint,
    copied onto rate-limit errors. Pure: never raises, returns the exception.
    """
    retry_after = _retry_after_header(headers)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    parsed = _code_and_msg(data)
    if parsed is None:
        if status in (418, 429):  # the status alone says enough; the body is decoration
            return _from_fields(status, None, "", now=now, retry_after=retry_after, pool=pool)
        reason = "response is not JSON" if data is None else "JSON without integer code and msg"
        return InvalidResponse(status, _excerpt(body), reason)
    code, msg = parsed
    return _from_fields(status, code, msg, now=now, retry_after=retry_after, pool=pool)


def error_from_ws(
    status: int,
    error: Mapping[str, Any],
    *,
    now: float,
    pool: str | None = None,
) -> BinanceError:
    """Map a WebSocket API error envelope to the same exceptions as :func:`error_from_response`.

    ``error`` is the ``"error"`` object of ``{"id", "status", "error": {"code", "msg", "data"}}``;
    ``data.retryAfter`` (epoch ms) gives ``retry_after``, measured against ``data.serverTime``
    when present (immune to clock skew), else against ``now``; on a ban ``until`` is
    ``now + retry_after``, i.e. on the local clock the limiter compares with.
    https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api/general-api-information
    """
    parsed = _code_and_msg(error)
    if parsed is None:
        return InvalidResponse(status, repr(error), "WebSocket API error without code and msg")
    code, msg = parsed
    retry_after: float | None = None
    data = error.get("data")
    if isinstance(data, Mapping):
        retry_at = data.get("retryAfter")
        if type(retry_at) is int:
            server_time = data.get("serverTime")
            # The server's own clock gives a skew-free wait; fall back to the local clock.
            base = server_time if type(server_time) is int else now * 1000.0
            retry_after = max(retry_at - base, 0.0) / 1000.0
    return _from_fields(status, code, msg, now=now, retry_after=retry_after, pool=pool)
