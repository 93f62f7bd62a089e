"""The exception tree and the one REST/WS response → exception mapping (pure, no event loop)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from binance_margin_async import errors
from binance_margin_async.errors import (
    ERROR_CODES,
    AuthError,
    BadRequest,
    BinanceAPIError,
    BinanceError,
    EventQueueOverflow,
    ExecutionStatusUnknown,
    IllegalChars,
    InvalidKeyError,
    InvalidListenToken,
    InvalidResponse,
    InvalidSignature,
    IPBanned,
    NewOrderRejected,
    ParameterError,
    RateLimited,
    StreamError,
    SubscriptionActive,
    TooManyOrders,
    TooManyRequests,
    TransportError,
    error_from_response,
    error_from_ws,
)

DATA = Path(__file__).parent / "data"
PROTOCOL_MD = Path(__file__).resolve().parents[2] / "shared" / "PROTOCOL.md"
NOW = 1_700_000_000.0


def _protocol_codes() -> list[int]:
    lines = (DATA / "protocol_error_codes.txt").read_text("utf-8").splitlines()
    return [int(line.split()[0]) for line in lines if line.startswith("-")]


def _body(code: int, msg: str) -> bytes:
    return orjson.dumps({"code": code, "msg": msg})


# --- ERROR_CODES covers PROTOCOL.md §6 ---


def test_codes_file_lists_62_distinct_codes() -> None:
    codes = _protocol_codes()
    assert len(codes) == len(set(codes)) == 62


@pytest.mark.parametrize("code", _protocol_codes())
def test_every_protocol_code_has_its_class(code: int) -> None:
    cls = ERROR_CODES[code]
    assert issubclass(cls, BinanceAPIError)
    assert code == cls.CODE


@pytest.mark.skipif(not PROTOCOL_MD.exists(), reason="shared PROTOCOL.md not next to the repo")
def test_codes_file_matches_protocol_section_6() -> None:
    text = PROTOCOL_MD.read_text("utf-8")
    section = text[text.index("## 6. Error codes") : text.index("## 7.")]
    assert set(_protocol_codes()) == {int(c) for c in re.findall(r"-\d{4}", section)}


def test_map_holds_only_protocol_codes() -> None:
    assert set(ERROR_CODES) == set(_protocol_codes())


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("TooManyRequests", -1003),
        ("InvalidTimestamp", -1021),
        ("InvalidSignature", -1022),
        ("NewOrderRejected", -2010),
        ("CancelRejected", -2011),
        ("NoSuchOrder", -2013),
        ("RejectedApiKey", -2015),
        ("InvalidListenToken", -1209),
        ("SubscriptionActive", -2035),
        ("MarginAccountNotFound", -3003),
        ("ExceedMaxBorrowable", -3006),
        ("PendingTransaction", -3007),
        ("RepayExceedsLiability", -3015),
        ("InsufficientInventory", -3045),
        ("TimeRangeTooLong", -4047),
    ],
)
def test_interface_names_map_to_their_codes(name: str, code: int) -> None:
    assert ERROR_CODES[code] is getattr(errors, name)


def test_all_exports_exist_and_derive_from_root() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, BinanceError), name


def test_registering_a_code_twice_fails() -> None:
    with pytest.raises(TypeError, match="-2010"):

        class Duplicate(BinanceAPIError, code=-2010):
            pass


def test_families() -> None:
    assert issubclass(IllegalChars, BadRequest)
    assert issubclass(InvalidSignature, AuthError)
    assert issubclass(TooManyRequests, RateLimited)
    assert issubclass(TooManyOrders, RateLimited)
    assert issubclass(IPBanned, RateLimited)
    assert issubclass(EventQueueOverflow, StreamError)
    assert issubclass(ParameterError, ValueError)
    assert issubclass(InvalidKeyError, ParameterError)


# --- messages ---


def test_api_error_str() -> None:
    exc = NewOrderRejected(400, -2010, "Account has insufficient balance for requested action.")
    assert (
        str(exc) == "HTTP 400, code -2010: Account has insufficient balance for requested action."
    )


def test_parameter_error_names_parameter() -> None:
    exc = ParameterError("quantity", "must be positive")
    assert exc.param == "quantity"
    assert "'quantity'" in str(exc)
    assert isinstance(exc, ValueError)


def test_local_rate_limit_says_not_sent() -> None:
    exc = RateLimited(retry_after=2.5, pool="SAPI_UID:POST /sapi/v1/margin/order")
    assert exc.status is None and exc.code is None
    assert "not sent" in str(exc)
    assert "SAPI_UID:POST /sapi/v1/margin/order" in str(exc)
    assert "2.5 s" in str(exc)


def test_execution_status_unknown_fields() -> None:
    exc = ExecutionStatusUnknown(
        "POST /sapi/v1/margin/order: read timeout",
        client_order_id="abc123",
        endpoint="new_order",
        status=None,
    )
    assert exc.client_order_id == "abc123"
    assert exc.endpoint == "new_order"
    assert "abc123" in str(exc) and "new_order" in str(exc)


def test_transport_error_defaults_to_maybe_sent() -> None:
    assert TransportError("reset").request_may_have_been_sent is True
    assert not TransportError(
        "refused", request_may_have_been_sent=False
    ).request_may_have_been_sent


# --- error_from_response ---


def test_json_error_maps_to_class() -> None:
    exc = error_from_response(400, {}, _body(-2010, "insufficient balance"), now=NOW)
    assert type(exc) is NewOrderRejected
    assert (exc.status, exc.code, exc.msg) == (400, -2010, "insufficient balance")


def test_unknown_code_is_base_api_error() -> None:
    exc = error_from_response(400, {}, _body(-9999, "new"), now=NOW)
    assert type(exc) is BinanceAPIError
    assert exc.code == -9999


def test_429_with_retry_after_and_body() -> None:
    exc = error_from_response(
        429, {"Retry-After": "7"}, _body(-1003, "Too much request weight used"), now=NOW, pool="P"
    )
    assert type(exc) is TooManyRequests
    assert isinstance(exc, RateLimited) and isinstance(exc, BinanceAPIError)
    assert (exc.retry_after, exc.pool, exc.status, exc.code) == (7.0, "P", 429, -1003)
    assert "retry after 7 s" in str(exc)


def test_429_header_lookup_is_case_insensitive_for_plain_dicts() -> None:
    exc = error_from_response(429, {"retry-after": "3"}, b"", now=NOW)
    assert type(exc) is RateLimited
    assert exc.retry_after == 3.0
    assert exc.code is None and exc.status == 429


def test_429_order_count_without_retry_after() -> None:
    exc = error_from_response(429, {}, _body(-1015, "Too many new orders"), now=NOW)
    assert type(exc) is TooManyOrders
    assert exc.retry_after is None


def test_429_with_unrelated_code_is_still_rate_limited() -> None:
    exc = error_from_response(429, {"Retry-After": "1"}, _body(-2010, "x"), now=NOW)
    assert type(exc) is RateLimited
    assert exc.code == -2010 and exc.retry_after == 1.0


def test_429_with_unparseable_retry_after() -> None:
    exc = error_from_response(429, {"Retry-After": "soon"}, b"<html>", now=NOW)
    assert type(exc) is RateLimited
    assert exc.retry_after is None


def test_418_until_from_retry_after() -> None:
    exc = error_from_response(418, {"Retry-After": "120"}, b"", now=NOW)
    assert type(exc) is IPBanned
    assert exc.until == NOW + 120 and exc.retry_after == 120.0 and exc.status == 418


def test_418_until_from_message() -> None:
    msg = "Way too much request weight used; IP banned until 1700000300000. Please use WebSocket."
    exc = error_from_response(418, {}, _body(-1003, msg), now=NOW)
    assert type(exc) is IPBanned
    assert exc.until == 1_700_000_300.0
    assert exc.retry_after == 300.0
    assert exc.code == -1003


def test_418_with_nothing_assumes_the_shortest_ban() -> None:
    exc = error_from_response(418, {}, b"", now=NOW)
    assert type(exc) is IPBanned
    assert exc.until == NOW + 120


def test_ban_message_on_429_is_a_ban() -> None:
    msg = "Way too much request weight used; IP banned until 1700000060000."
    exc = error_from_response(429, {}, _body(-1003, msg), now=NOW)
    assert type(exc) is IPBanned
    assert exc.until == 1_700_000_060.0


def test_non_json_body_is_invalid_response() -> None:
    body = b"<html><body>502 Bad Gateway</body></html>" + b"x" * 1000
    exc = error_from_response(502, {}, body, now=NOW)
    assert type(exc) is InvalidResponse
    assert exc.status == 502
    assert exc.excerpt.startswith("<html>")
    assert len(exc.excerpt) == 200


def test_excerpt_survives_a_cut_multibyte_character() -> None:
    exc = error_from_response(500, {}, "é".encode() * 500, now=NOW)
    assert type(exc) is InvalidResponse
    assert exc.excerpt == "é" * 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[1, 2]",
        b'"text"',
        b"null",
        b'{"msg": "no code"}',
        b'{"code": -1000}',
        b'{"code": "-1000", "msg": "string code"}',
        b'{"code": -1000, "msg": 5}',
        b'{"code": true, "msg": "bool code"}',
        b'{"code": -1.5, "msg": "float code"}',
    ],
)
def test_wrong_shape_is_invalid_response(body: bytes) -> None:
    exc = error_from_response(400, {}, body, now=NOW)
    assert type(exc) is InvalidResponse
    assert exc.status == 400


# --- error_from_ws ---


def test_ws_418_uses_server_time_for_the_wait() -> None:
    error = {
        "code": -1003,
        "msg": "Way too much request weight used; IP banned until 1659146400000.",
        "data": {"serverTime": 1659142907531, "retryAfter": 1659146400000},
    }
    exc = error_from_ws(418, error, now=NOW)
    assert type(exc) is IPBanned
    wait = (1659146400000 - 1659142907531) / 1000
    assert exc.retry_after == pytest.approx(wait)
    assert exc.until == pytest.approx(NOW + wait)  # on the local clock, whatever the skew


def test_ws_429_without_server_time_measures_against_now() -> None:
    error = {
        "code": -1003,
        "msg": "Too much request weight used",
        "data": {"retryAfter": 1_700_000_005_000},
    }
    exc = error_from_ws(429, error, now=NOW)
    assert type(exc) is TooManyRequests
    assert exc.retry_after == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("code", "cls"), [(-1209, InvalidListenToken), (-2035, SubscriptionActive)]
)
def test_ws_codes(code: int, cls: type[BinanceAPIError]) -> None:
    exc = error_from_ws(400, {"code": code, "msg": "m"}, now=NOW)
    assert type(exc) is cls


@pytest.mark.parametrize("error", [{}, {"code": -1209}, {"msg": "x"}, {"code": None, "msg": "x"}])
def test_ws_wrong_shape(error: dict[str, Any]) -> None:
    exc = error_from_ws(400, error, now=NOW)
    assert type(exc) is InvalidResponse


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_rest_and_ws_share_one_mapping(code: int) -> None:
    rest = error_from_response(400, {}, _body(code, "m"), now=NOW)
    ws = error_from_ws(400, {"code": code, "msg": "m"}, now=NOW)
    assert type(rest) is type(ws) is ERROR_CODES[code]


# --- pickling ---


@pytest.mark.parametrize(
    "exc",
    [
        NewOrderRejected(400, -2010, "m"),
        BinanceAPIError(400, -9999, "m"),
        TooManyRequests(429, -1003, "m", retry_after=3.0, pool="API_IP"),
        RateLimited(1.5, "API_IP"),
        IPBanned(NOW, retry_after=10.0, status=418, code=-1003, msg="banned"),
        ParameterError("symbol", "required"),
        InvalidKeyError("private_key", "bad PEM"),
        InvalidResponse(502, "<html>", "response is not JSON"),
        ExecutionStatusUnknown("timeout", client_order_id="c1", endpoint="new_order", code=-1007),
        TransportError("reset", request_may_have_been_sent=False),
        EventQueueOverflow("queue full"),
    ],
)
def test_pickle_round_trip(exc: BinanceError) -> None:
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is type(exc)
    assert str(clone) == str(exc)
    assert clone.__dict__ == exc.__dict__
