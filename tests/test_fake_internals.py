"""Pure pieces of the fake exchange: payload parsing, parameter reads, limits, credentials."""

from __future__ import annotations

import base64
import random

import pytest

from binance_margin_async.signing import encode_params, load_signer
from binance_margin_async.testing._keys import make_credentials
from binance_margin_async.testing._limits import (
    BanBook,
    OrderCounts,
    WeightBook,
    retry_after_seconds,
)
from binance_margin_async.testing._params import (
    REPEATABLE,
    Params,
    check_timestamp,
    parse_payload,
)
from binance_margin_async.testing._streams import Session, StreamBook
from binance_margin_async.testing.ledger import LedgerError

# Payload parsing (PROTOCOL.md §1.1-1.2)


def test_signature_is_stripped_from_the_signed_bytes() -> None:
    payload = parse_payload("symbol=BTCUSDT&timestamp=1&signature=abc", b"")
    assert payload.signed == b"symbol=BTCUSDT&timestamp=1"
    assert payload.signature == "abc"
    assert payload.params == {"symbol": "BTCUSDT", "timestamp": "1", "signature": "abc"}


def test_query_and_body_are_concatenated_without_separator() -> None:
    # The documented mixed example: query "...timeInForce=GTC" + body "quantity=1...".
    payload = parse_payload(
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
        b"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=x",
    )
    assert payload.signed == (
        b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
        b"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )


def test_signed_bytes_stay_percent_encoded_and_values_are_decoded() -> None:
    query = encode_params([("symbol", "１２３"), ("note", "a b+c")])
    payload = parse_payload(query + "&signature=s%2Fg%3D", b"")
    assert payload.signed == query.encode()
    assert payload.params["symbol"] == "１２３"
    assert payload.params["note"] == "a b+c"
    assert payload.signature == "s/g="


def test_query_string_wins_over_body() -> None:
    assert parse_payload("a=1", b"a=2&b=3").params == {"a": "1", "b": "3"}


def test_documented_repeated_parameters_are_read_as_one_list() -> None:
    # POST /sapi/v1/asset/dust takes asset=BTC&asset=USDT; any other repeat stays -1101.
    repeatable = REPEATABLE[("POST", "/sapi/v1/asset/dust")]
    payload = parse_payload("", b"asset=BTC&asset=USDT&accountType=MARGIN&timestamp=1", repeatable)
    assert payload.params == {"asset": "BTC,USDT", "accountType": "MARGIN", "timestamp": "1"}
    with pytest.raises(LedgerError) as info:
        parse_payload("", b"asset=BTC&timestamp=1&timestamp=2", repeatable)
    assert info.value.code == -1101
    with pytest.raises(LedgerError) as info:
        parse_payload("asset=BTC&asset=ETH", b"")  # not repeatable on other routes
    assert info.value.code == -1101


@pytest.mark.parametrize(
    ("query", "body", "code"),
    [
        ("a=1&a=2", b"", -1101),
        ("signature=x", b"signature=y", -1101),
        ("a=1&signature=x&b=2", b"", -1022),
        ("a=%FF", b"", -1100),
        ("", b"a=\xff", -1100),
    ],
)
def test_payload_rejections(query: str, body: bytes, code: int) -> None:
    with pytest.raises(LedgerError) as info:
        parse_payload(query, body)
    assert info.value.code == code


# Typed reads


def test_params_typed_reads_and_unread_detection() -> None:
    p = Params({"qty": "1.5", "id": "12", "iso": "true", "side": "BUY", "extra": "x"})
    assert p.text("qty") == "1.5"
    assert p.long("id") == 12
    assert p.flag("iso") is True
    assert p.enum("side", ("BUY", "SELL")) == "BUY"
    assert p.text("missing") is None
    with pytest.raises(LedgerError) as info:
        p.finish()
    assert info.value.code == -1104
    assert "read '4' parameter(s) but was sent '5'" in info.value.msg
    p.skip("extra")
    p.finish()


@pytest.mark.parametrize(
    ("values", "read", "code"),
    [
        ({}, lambda p: p.text("symbol", required=True), -1102),
        ({"symbol": ""}, lambda p: p.text("symbol", required=True), -1102),
        ({"symbol": ""}, lambda p: p.text("symbol"), -1105),
        ({"orderId": "-1"}, lambda p: p.long("orderId"), -1100),
        ({"orderId": "1e5"}, lambda p: p.long("orderId"), -1100),
        ({"isIsolated": "yes"}, lambda p: p.flag("isIsolated"), -1100),
        ({"side": "UP"}, lambda p: p.enum("side", ("BUY", "SELL")), -1100),
    ],
)
def test_params_rejections(values: dict[str, str], read: object, code: int) -> None:
    p = Params(values)
    with pytest.raises(LedgerError) as info:
        read(p)  # type: ignore[operator]
    assert info.value.code == code


@pytest.mark.parametrize(
    ("timestamp", "recv_window", "code"),
    [
        (None, None, -1102),
        ("abc", None, -1100),
        ("100000", "60001", -1131),
        ("101000", None, -1021),  # 1000 ms ahead
        ("94999", None, -1021),  # older than the default 5000 ms window
        ("89999", "10000", -1021),
    ],
)
def test_timestamp_rejections(timestamp: str | None, recv_window: str | None, code: int) -> None:
    values = {k: v for k, v in (("timestamp", timestamp), ("recvWindow", recv_window)) if v}
    with pytest.raises(LedgerError) as info:
        check_timestamp(Params(values), 100_000)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("timestamp", "recv_window"), [("100999", None), ("95000", None), ("40000", "60000")]
)
def test_timestamp_accepted_at_the_edges(timestamp: str, recv_window: str | None) -> None:
    values = {"timestamp": timestamp} | ({"recvWindow": recv_window} if recv_window else {})
    check_timestamp(Params(values), 100_000)


# Limits


def test_weight_windows_are_fixed_and_epoch_aligned() -> None:
    book = WeightBook(60.0)
    assert book.charge("k", 50, 100, 119.0) == 50
    assert book.charge("k", 60, 100, 119.5) is None  # nothing recorded
    assert book.used("k", 119.9) == 50
    assert book.window_end(119.9) == 120.0
    assert book.charge("k", 60, 100, 120.0) == 60  # new window at the epoch multiple
    assert book.used("other", 120.0) == 0


def test_ban_after_ignored_429s_escalates_and_expires() -> None:
    bans = BanBook(window=60.0, ban_after_429s=2, ban_duration=120.0)
    assert bans.strike("ip", 0.0) is None
    assert bans.strike("ip", 1.0) is None
    first = bans.strike("ip", 2.0)
    assert first is not None and first.until == 122.0
    assert bans.banned_until("ip", 100.0) == 122.0
    assert bans.banned_until("other", 100.0) is None
    assert bans.banned_until("ip", 122.0) is None
    assert bans.strike("ip", 200.0) is None  # strikes restart after a ban
    assert bans.strike("ip", 201.0) is None
    second = bans.strike("ip", 202.0)
    assert second is not None and second.until == 202.0 + 240.0  # doubled


def test_strikes_reset_with_the_window() -> None:
    bans = BanBook(window=10.0, ban_after_429s=1, ban_duration=60.0)
    assert bans.strike("ip", 5.0) is None
    assert bans.strike("ip", 10.0) is None  # a new window: the first 429 there is tolerated
    assert bans.strike("ip", 11.0) is not None


def test_ban_duration_is_capped_at_three_days() -> None:
    bans = BanBook(window=60.0, ban_after_429s=0, ban_duration=86400.0)
    for _ in range(3):
        ban = bans.strike("ip", 0.0)
    assert ban is not None and ban.until == 3 * 86400.0


def test_order_counts_over_10s_and_day_windows() -> None:
    orders = OrderCounts(limit_10s=2, limit_1d=3)
    assert orders.place("a", 0.0) is None
    assert orders.place("a", 1.0) is None
    assert orders.place("a", 2.0) == (2, "10 SECOND", 10.0)
    assert orders.counts("a", 2.0) == (2, 2)
    assert orders.place("a", 10.0) is None
    assert orders.place("a", 11.0) == (3, "1 DAY", 86400.0)
    assert orders.counts("b", 11.0) == (0, 0)


def test_retry_after_is_whole_seconds_and_positive() -> None:
    assert retry_after_seconds(10.2, 10.0) == 1
    assert retry_after_seconds(10.0, 10.0) == 1
    assert retry_after_seconds(15.5, 10.0) == 6


# Credentials


@pytest.mark.parametrize("key_type", ["HMAC", "ED25519", "RSA"])
def test_credentials_are_deterministic_and_verify_the_client_signer(key_type: str) -> None:
    creds, verifier = make_credentials(7, 1, "acct1", key_type)  # type: ignore[arg-type]
    again, _ = make_credentials(7, 1, "acct1", key_type)  # type: ignore[arg-type]
    other, _ = make_credentials(8, 1, "acct1", key_type)  # type: ignore[arg-type]
    assert creds == again
    assert creds.api_key != other.api_key
    signer = load_signer(api_secret=creds.api_secret, private_key=creds.private_key)
    assert signer.key_type == key_type
    signature = signer.sign(b"symbol=BTCUSDT&timestamp=1")
    assert verifier.check(b"symbol=BTCUSDT&timestamp=1", signature)
    assert not verifier.check(b"symbol=BTCUSDT&timestamp=2", signature)


def test_hmac_signature_is_case_insensitive_and_others_are_not() -> None:
    creds, verifier = make_credentials(0, 1, "a", "HMAC")
    signature = load_signer(api_secret=creds.api_secret).sign(b"x=1")
    assert verifier.check(b"x=1", signature.upper())
    creds, verifier = make_credentials(0, 1, "a", "ED25519")
    signature = load_signer(private_key=creds.private_key).sign(b"x=1")
    assert not verifier.check(b"x=1", signature.swapcase())
    assert not verifier.check(b"x=1", "not base64!")
    assert not verifier.check(b"x=1", base64.b64encode(b"short").decode())


@pytest.mark.parametrize("key_type", ["HMAC", "ED25519", "RSA"])
def test_credentials_repr_hides_secrets(key_type: str) -> None:
    creds, verifier = make_credentials(0, 1, "acct1", key_type)  # type: ignore[arg-type]
    text = repr(creds) + str(creds) + repr(verifier)
    assert creds.api_key not in text
    for secret in (creds.api_secret, creds.private_key):
        if secret is not None:
            assert secret not in text
            assert secret[20:40] not in text
    assert "acct1" in text and key_type in text


# Stream bookkeeping


def _session() -> Session:
    # The book only stores the connection; any object stands in for one.
    return Session(conn=object(), connected_ms=0, return_rate_limits=True)  # type: ignore[arg-type]


def test_subscriptions_renew_in_place_and_ids_run_out() -> None:
    book = StreamBook(random.Random(0))
    session = _session()
    first = book.issue_token("a", "CROSS", 1_000)
    second = book.issue_token("a", "CROSS", 2_000)
    sub = book.subscribe(session, first, 0)
    assert book.subscribe(session, second, 0) is sub
    assert (sub.sid, sub.expires_ms, sub.token) == (0, 2_000, second)
    with pytest.raises(LedgerError) as info:
        book.subscribe(session, second, 0)
    assert info.value.code == -2035
    session.next_id = 65_536
    other = book.issue_token("a", "BTCUSDT", 1_000)
    with pytest.raises(LedgerError) as info:
        book.subscribe(session, other, 0)
    assert info.value.code == -2042


def test_token_expiry_ends_subscriptions_and_keeps_fresh_ones() -> None:
    book = StreamBook(random.Random(0))
    session = _session()
    short = book.issue_token("a", "CROSS", 100)
    long = book.issue_token("b", "CROSS", 10_000)
    ended_sub = book.subscribe(session, short, 0)
    kept = book.subscribe(session, long, 0)
    assert book.expire_tokens(100) == [ended_sub]
    assert dict(book.subscribers("a", "CROSS")) == {}
    assert list(book.subscribers("b", "CROSS").values()) == [kept]
    with pytest.raises(LedgerError) as info:
        book.subscribe(session, short, 50)
    assert info.value.code == -1209
    book.close_session(session)
    assert dict(book.subscribers("b", "CROSS")) == {}


def test_listen_keys_one_per_account() -> None:
    book = StreamBook(random.Random(0))
    key = book.open_listen_key("a", 100.0)
    assert book.open_listen_key("a", 200.0) is key and key.expires_at == 200.0
    assert book.owned_listen_key("a", None) is key
    with pytest.raises(LedgerError) as info:
        book.owned_listen_key("b", key.key)
    assert info.value.code == -1125
    assert book.expired_listen_keys(199.0) == []
    assert book.expired_listen_keys(200.0) == [key]
    assert book.listen_key(key.key) is None and book.listen_key_of("a") is None
    assert book.open_listen_key("a", 300.0).key != key.key
