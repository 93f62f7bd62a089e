"""The trading session's sans-I/O core: ids, answers, lost answers, dedupe, rotation; no loop."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from binance_margin_async._tradecore import TradingCore, signed_params
from binance_margin_async.errors import (
    CancelRejected,
    ExecutionStatusUnknown,
    InvalidResponse,
    IPBanned,
    TransportError,
)
from binance_margin_async.signing import Ed25519Signer, HmacSigner

# PROTOCOL.md §1.3/§1.4 vectors.
HMAC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
HMAC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIIJEYWtGBrhACmb9Dvy+qa8WEf0lQOl1s4CLIAB9m89u\n"
    "-----END PRIVATE KEY-----\n"
)


def _frame(**message: Any) -> bytes:
    return orjson.dumps(message)


def test_signed_params_match_the_documented_ws_api_vector() -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
    }
    stamped = signed_params(
        params,
        api_key=HMAC_KEY,
        signer=HmacSigner(HMAC_SECRET),
        timestamp_ms=1645423376532,
        recv_window="100",
    )
    assert stamped["signature"] == (
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    )
    assert stamped["apiKey"] == HMAC_KEY
    assert "signature" not in params  # the caller's mapping is left alone


def test_signed_params_logged_on_carry_no_key_or_signature() -> None:
    stamped = signed_params(
        {"symbol": "BTCUSDT"}, api_key="k", signer=None, timestamp_ms=5, recv_window="5000"
    )
    assert stamped == {"symbol": "BTCUSDT", "timestamp": "5", "recvWindow": "5000"}


def test_ed25519_signature_is_plain_base64_in_json() -> None:
    stamped = signed_params(
        {}, api_key="k", signer=Ed25519Signer(ED25519_PEM), timestamp_ms=1, recv_window=None
    )
    assert len(stamped["signature"]) == 88 and "%" not in stamped["signature"]
    assert "recvWindow" not in stamped


def test_pipelined_answers_match_by_id_in_any_order() -> None:
    core = TradingCore()
    core.link_opened(1, 0.0)
    ids = [core.request(1, "order.place", {"n": str(i)}, 0.0, write=True)[0] for i in range(3)]
    assert len(set(ids)) == 3
    frame = orjson.loads(core.request(1, "order.status", {}, 0.0, write=False)[1])
    assert frame["method"] == "order.status" and frame["params"] == {}
    answers = []
    for request_id in reversed(ids):
        got = core.receive(1, _frame(id=request_id, status=200, result={"n": request_id}), 1.0)
        answers += got.answers
    assert [a.request_id for a in answers] == list(reversed(ids))
    assert all(a.error is None and a.result == {"n": a.request_id} for a in answers)
    assert core.in_flight(1) == [frame["id"]]


def test_error_answer_maps_like_rest_and_feeds_rate_limits() -> None:
    core = TradingCore()
    request_id, _ = core.request(1, "order.cancel", {}, 0.0, write=True, client_order_id="c1")
    limits = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "count": 3}]
    message = {
        "id": request_id,
        "status": 400,
        "error": {"code": -2011, "msg": "Unknown order sent."},
        "rateLimits": limits,
    }
    (answer,) = core.receive(1, orjson.dumps(message), 1.0).answers
    assert isinstance(answer.error, CancelRejected)
    assert answer.status == 400 and answer.rate_limits == limits


def test_ban_answer_carries_error_data() -> None:
    core = TradingCore()
    request_id, _ = core.request(1, "order.status", {}, 0.0, write=False)
    data = {"serverTime": 1_000_000, "retryAfter": 1_060_000}
    message = {
        "id": request_id,
        "status": 418,
        "error": {
            "code": -1003,
            "msg": "Way too much request weight used; IP banned",
            "data": data,
        },
    }
    (answer,) = core.receive(1, orjson.dumps(message), 0.0).answers
    assert isinstance(answer.error, IPBanned)
    assert answer.error_data == data


@pytest.mark.parametrize(
    ("status", "code"), [(500, -1000), (503, -1001), (400, -1006), (400, -1007), (400, -1000)]
)
def test_unknown_outcome_on_a_write(status: int, code: int) -> None:
    core = TradingCore()
    request_id, _ = core.request(
        1, "order.place", {}, 0.0, write=True, client_order_id="abc", endpoint="new_order"
    )
    message = {"id": request_id, "status": status, "error": {"code": code, "msg": "x"}}
    (answer,) = core.receive(1, orjson.dumps(message), 1.0).answers
    assert isinstance(answer.error, ExecutionStatusUnknown)
    assert answer.error.client_order_id == "abc" and answer.error.endpoint == "new_order"
    assert answer.error.code == code and answer.error.status == status


def test_a_read_with_the_same_error_is_not_unknown() -> None:
    core = TradingCore()
    request_id, _ = core.request(1, "order.status", {}, 0.0, write=False)
    message = {"id": request_id, "status": 400, "error": {"code": -1007, "msg": "x"}}
    (answer,) = core.receive(1, orjson.dumps(message), 1.0).answers
    assert not isinstance(answer.error, ExecutionStatusUnknown)


def test_lost_connection_ends_its_requests_never_resent() -> None:
    core = TradingCore()
    core.link_opened(1, 0.0)
    core.link_opened(2, 0.0)
    write, _ = core.request(1, "order.place", {}, 0.0, write=True, client_order_id="w1")
    read, _ = core.request(1, "order.status", {}, 0.0, write=False)
    other, _ = core.request(2, "order.place", {}, 0.0, write=True)
    answers = {a.request_id: a for a in core.link_lost(1)}
    assert set(answers) == {write, read}
    lost = answers[write].error
    assert isinstance(lost, ExecutionStatusUnknown)
    assert lost.client_order_id == "w1"
    assert isinstance(answers[read].error, TransportError)
    assert not isinstance(answers[read].error, ExecutionStatusUnknown)
    assert answers[write].status == 0
    assert core.in_flight(2) == [other]
    # A late answer on the dead link resolves nothing.
    late = {"id": write, "status": 200, "result": {}}
    assert core.receive(1, orjson.dumps(late), 2.0).answers == []


def test_timeout_sweep_forget_and_send_failure() -> None:
    core = TradingCore()
    write, _ = core.request(1, "order.place", {}, 10.0, write=True, client_order_id="t1")
    read, _ = core.request(1, "order.status", {}, 12.0, write=False)
    assert core.expired(14.9, 5.0) == []
    (late,) = core.expired(15.0, 5.0)
    assert late.request_id == write and late.status == 0
    assert isinstance(late.error, ExecutionStatusUnknown) and late.error.client_order_id == "t1"
    # The answer after the timeout is dropped; the read times out later, retryable.
    answer = {"id": write, "status": 200, "result": {}}
    assert core.receive(1, orjson.dumps(answer), 15.1).answers == []
    (slow,) = core.expired(17.0, 5.0)
    assert slow.request_id == read
    assert isinstance(slow.error, TransportError)
    assert not isinstance(slow.error, ExecutionStatusUnknown)
    # A request whose caller gave up is forgotten: its answer resolves nothing.
    gone, _ = core.request(1, "order.status", {}, 20.0, write=False)
    core.forget(gone)
    assert core.receive(1, orjson.dumps({"id": gone, "status": 200}), 21.0).answers == []
    sent, _ = core.request(1, "order.cancel", {}, 0.0, write=True)
    assert isinstance(core.send_failed(sent), ExecutionStatusUnknown)
    assert isinstance(core.send_failed(999), TransportError)


def test_events_shutdown_and_malformed_frames() -> None:
    core = TradingCore()
    event = {"e": "executionReport", "E": 1, "i": 7}
    got = core.receive(1, orjson.dumps({"subscriptionId": 0, "event": event}), 0.0)
    assert got.events == [event] and not got.answers
    got = core.receive(1, orjson.dumps({"event": {"e": "serverShutdown", "E": 2}}), 0.0)
    assert got.shutdown
    for bad in (b"not json", b"[1]", b'{"event": {"e": "x"}}', b'{"id": "s", "status": 200}'):
        assert core.receive(1, bad, 0.0).malformed is not None
    assert core.receive(1, "{}", 0.0).malformed == "{}"


def test_overlap_delivers_each_event_once() -> None:
    core = TradingCore()
    first = orjson.dumps({"subscriptionId": 0, "event": {"e": "executionReport", "i": 1}})
    second = orjson.dumps({"subscriptionId": 3, "event": {"i": 2, "e": "executionReport"}})
    core.begin_overlap()
    assert len(core.receive(1, first, 0.0).events) == 1
    assert (
        core.receive(2, first.replace(b'"subscriptionId":0', b'"subscriptionId":5'), 0.0).events
        == []
    )
    assert len(core.receive(2, second, 0.0).events) == 1
    assert core.receive(1, second, 0.0).events == []
    core.end_overlap()
    # Outside an overlap nothing is deduplicated (a repeated event is Binance's to send).
    assert len(core.receive(2, first, 0.0).events) == 1
    assert len(core.receive(2, first, 0.0).events) == 1


def test_rotation_follows_the_connection_age() -> None:
    core = TradingCore(max_age=100.0)
    assert not core.rotation_due(1, 1e9) and core.rotation_at(1) is None
    core.link_opened(1, 50.0)
    assert core.rotation_at(1) == 150.0
    assert not core.rotation_due(1, 149.9)
    assert core.rotation_due(1, 150.0)
    core.link_lost(1)
    assert core.rotation_at(1) is None


def test_error_without_code_is_invalid_response() -> None:
    core = TradingCore()
    request_id, _ = core.request(1, "order.status", {}, 0.0, write=False)
    (answer,) = core.receive(1, orjson.dumps({"id": request_id, "status": 400}), 0.0).answers
    assert isinstance(answer.error, InvalidResponse)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["send", "answer", "error", "lose", "tick", "forget"]),
            st.integers(min_value=0, max_value=50),
            st.booleans(),
        ),
        max_size=200,
    )
)
def test_every_request_ends_exactly_once_and_writes_are_never_retried(
    steps: list[tuple[str, int, bool]],
) -> None:
    """Seeded schedules of sends, answers, errors, lost links, timeouts and cancellations."""
    core = TradingCore()
    link, now, timeout = 1, 0.0, 5.0
    core.link_opened(link, now)
    kinds: dict[int, bool] = {}  # request id -> write?
    ended: dict[int, int] = {}

    def end(answers: list[Any]) -> None:
        for answer in answers:
            ended[answer.request_id] = ended.get(answer.request_id, 0) + 1
            if isinstance(answer.error, ExecutionStatusUnknown):
                assert kinds[answer.request_id], "a read can always be asked again"
            if answer.status == 0:  # no answer arrived: writes unknown, reads retryable
                assert isinstance(answer.error, ExecutionStatusUnknown) == kinds[answer.request_id]

    for op, pick, flag in steps:
        open_ids = [rid for rid in kinds if rid not in ended]
        if op == "send":
            request_id, frame = core.request(link, "order.place", {}, now, write=flag)
            assert request_id not in kinds and orjson.loads(frame)["id"] == request_id
            kinds[request_id] = flag
        elif op in ("answer", "error") and open_ids:
            request_id = open_ids[pick % len(open_ids)]
            message: dict[str, Any] = {"id": request_id, "status": 200, "result": {}}
            if op == "error":
                message = {"id": request_id, "status": 503, "error": {"code": -1007, "msg": "x"}}
            end(core.receive(link, orjson.dumps(message), now).answers)
        elif op == "lose":
            end(core.link_lost(link))
            link += 1
            core.link_opened(link, now)
        elif op == "tick":
            now += pick / 10
            end(core.expired(now, timeout))
        elif op == "forget" and open_ids:
            request_id = open_ids[pick % len(open_ids)]
            core.forget(request_id)
            ended[request_id] = 1
        # A second answer for anything already ended resolves nothing.
        for request_id in list(ended)[-3:]:
            late = {"id": request_id, "status": 200, "result": {}}
            assert core.receive(link, orjson.dumps(late), now).answers == []
    end(core.link_lost(link))
    assert set(ended) == set(kinds)
    assert all(count == 1 for count in ended.values())
