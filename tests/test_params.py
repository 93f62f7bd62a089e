"""Parameter validators: every bad input raises ParameterError naming the parameter."""

from __future__ import annotations

import itertools
import os
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_margin_async import params as P
from binance_margin_async.errors import ParameterError
from binance_margin_async.models import OrderSide, TransferType


def _fails(param: str, func: Any, *args: Any, **kwargs: Any) -> ParameterError:
    with pytest.raises(ParameterError) as info:
        func(*args, **kwargs)
    assert info.value.param == param
    assert param in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Decimal("1.50"), "1.5"),
        (Decimal("1E+3"), "1000"),
        ("0.00000001", "0.00000001"),
        ("1e-8", "0.00000001"),
        ("12.3400", "12.34"),
        (10, "10"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        (1e19, "10000000000000000000"),
        ("99999999999999999999.99999999999999999999", "99999999999999999999.99999999999999999999"),
        # 39 significant digits: more than the decimal context's 28, sent exactly, never rounded.
        (
            Decimal("12345678901234567890.1234567890123456789"),
            "12345678901234567890.1234567890123456789",
        ),
        (0.30000000000000004, "0.30000000000000004"),
        (Decimal("100"), "100"),
        (".5", "0.5"),
        ("7.", "7"),
        ("1E+2", "100"),
    ],
)
def test_amount_is_a_plain_decimal_string(value: Any, wire: str) -> None:
    assert P.amount("quantity", value) == wire
    assert "e" not in wire.lower()


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        "NaN",
        "inf",
        "abc",
        "",
        "1,5",
        # Only ASCII digits, nothing around them (Decimal() would accept all of these).
        "1_000",
        "١٢",
        "１２",
        " 2.50 ",
        "2.5\n",
        "+1",
        "0x10",
        # Bounded digits and exponent: no decimal.Overflow, no huge strings.
        "1e999999",
        "6e99872863",
        Decimal("6e99872863"),
        "9" * 1_000_000,
        Decimal("1e-21"),
        "0.000000000000000000001",
        "100000000000000000000",
        10**20,
        10**500,
        1e300,
        Decimal("sNaN"),
        "1e",
        ".",
        "\ud800",
        -1,
        "-0.5",
        0,
        "0.0",
        True,
        False,
        [1],
        None.__class__,
    ],
)
def test_amount_rejects(value: Any) -> None:
    _fails("quantity", P.amount, "quantity", value)


def test_amount_none_and_zero() -> None:
    assert P.amount("price", None) is None
    assert P.amount("price", 0, allow_zero=True) == "0"
    assert P.amount("price", Decimal("-0"), allow_zero=True) == "0"
    _fails("price", P.amount, "price", -1, allow_zero=True)


def test_integer_bounds_and_types() -> None:
    assert P.integer("limit", 5, minimum=1, maximum=10) == "5"
    assert P.integer("limit", None) is None
    _fails("limit", P.integer, "limit", 0, minimum=1)
    _fails("limit", P.integer, "limit", 11, maximum=10)
    _fails("limit", P.integer, "limit", True)
    _fails("limit", P.integer, "limit", 1.0)
    _fails("limit", P.integer, "limit", "5")
    _fails("start_time", P.timestamp, "start_time", -1)


def test_time_range() -> None:
    assert P.time_range(None, None) == (None, None)
    assert P.time_range(1, 2) == ("1", "2")
    assert P.time_range(5, 5) == ("5", "5")
    _fails("end_time", P.time_range, 2, 1)
    assert P.time_range(0, 10, max_span_ms=10) == ("0", "10")
    err = _fails("end_time", P.time_range, 0, 11, max_span_ms=10, span_text="10 ms")
    assert "10 ms" in str(err)
    _fails("start_time", P.time_range, "1", 2)


def test_time_windows_cover_the_range_without_gaps_or_overlap() -> None:
    week = P.CAPITAL_FLOW_WINDOW_MS
    windows = list(P.time_windows(0, 3 * week, week))
    assert windows[0] == (0, week - 1)
    assert windows[-1][1] == 3 * week
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == end + 1
    assert all(end - start < week for start, end in windows)
    assert len(windows) == 4
    assert list(P.time_windows(7, 7, week)) == [(7, 7)]
    _fails("end_time", P.time_windows, 10, 9, week)
    _fails("window_ms", P.time_windows, 0, 1, 0)


def test_symbol_and_text() -> None:
    assert P.symbol("symbol", "BTCUSDT") == "BTCUSDT"
    assert P.symbol("symbol", None) is None
    for bad in ["", "BTC USDT", "BTC,ETH", "A&B", "A=B", " BTC", "BTC\n"]:
        _fails("symbol", P.symbol, "symbol", bad)
    _fails("symbol", P.symbol, "symbol", 5)
    assert P.text("api_name", "my key") == "my key"
    _fails("api_name", P.text, "api_name", " padded")
    _fails("api_name", P.text, "api_name", "")


def test_joined() -> None:
    assert P.joined("symbols", ["BTCUSDT", "ETHUSDT"]) == "BTCUSDT,ETHUSDT"
    assert P.joined("symbols", "BTCUSDT,ETHUSDT") == "BTCUSDT,ETHUSDT"
    _fails("symbols", P.joined, "symbols", ["A", "B", "C"], max_count=2)
    _fails("symbols", P.joined, "symbols", [])
    _fails("symbols", P.joined, "symbols", ["A B"])
    assert P.as_sequence("assets", "BTC") == ["BTC"]
    assert P.as_sequence("assets", ("BTC", "ETH")) == ["BTC", "ETH"]
    _fails("assets", P.as_sequence, "assets", [])


def test_enum_value_accepts_member_value_or_name() -> None:
    assert P.enum_value("side", OrderSide.BUY, OrderSide) == "BUY"
    assert P.enum_value("side", "SELL", OrderSide) == "SELL"
    assert P.enum_value("side", None, OrderSide) is None
    assert P.enum_value("type", "ISOLATED_MARGIN_MARGIN", TransferType) == "ISOLATEDMARGIN_MARGIN"
    assert P.enum_value("type", "ISOLATEDMARGIN_MARGIN", TransferType) == "ISOLATEDMARGIN_MARGIN"
    err = _fails("side", P.enum_value, "side", "buy", OrderSide)
    assert "BUY, SELL" in str(err)
    _fails("side", P.enum_value, "side", 1, OrderSide)


def test_client_order_id_pattern() -> None:
    for good in ["a", "A.b:c/d_e-f", "x" * 36, "web_0123"]:
        assert P.client_order_id("new_client_order_id", good) == good
    for bad in ["", "x" * 37, "has space", "ünï", "a+b", "a#b"]:
        _fails("new_client_order_id", P.client_order_id, "new_client_order_id", bad)
    assert P.client_order_id("new_client_order_id", None) is None


def test_generated_client_order_ids_are_valid_and_unique() -> None:
    ids = {P.generate_client_order_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        assert re.fullmatch(r"bma[0-9a-f]{32}", value)
        assert P.client_order_id("x", value) == value


def test_a_forked_child_draws_its_own_client_order_ids() -> None:
    # The ids count up from a per-process random half; a child must not repeat its parent's.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.write(write_end, P.generate_client_order_id().encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = P.generate_client_order_id()
    assert re.fullmatch(r"bma[0-9a-f]{32}", child)
    assert child[:19] != parent[:19]


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"0{0,2}[0-9]{0,22}(\.[0-9]{0,22})?", fullmatch=True).filter(
        lambda text: any(c.isdigit() for c in text)
    )
)
def test_amount_texts_take_the_same_path_result_as_decimals(text: str) -> None:
    # Canonical texts are returned as they are (hot path); the result must be the Decimal path's.
    try:
        expected: str | None = P.amount("price", Decimal(text))
    except ParameterError:
        expected = None
    try:
        got: str | None = P.amount("price", text)
    except ParameterError:
        got = None
    assert got == expected


def test_booleans_render_as_binance_wants() -> None:
    assert P.upper_bool("is_isolated", True) == "TRUE"
    assert P.upper_bool("is_isolated", False) == "FALSE"
    assert P.lower_bool("is_isolated", True) == "true"
    assert P.lower_bool("is_isolated", False) == "false"
    _fails("is_isolated", P.upper_bool, "is_isolated", "true")
    _fails("is_isolated", P.lower_bool, "is_isolated", 1)


def test_isolated_needs_symbol_and_one_of() -> None:
    P.require_isolated_symbol(False, None)
    P.require_isolated_symbol(True, "BTCUSDT")
    _fails("symbol", P.require_isolated_symbol, True, None)
    _fails("is_isolated", P.require_isolated_symbol, "yes", "BTCUSDT")
    P.require_one_of(("order_id", 1), ("orig_client_order_id", None))
    err = _fails("order_id", P.require_one_of, ("order_id", None), ("orig_client_order_id", None))
    assert "orig_client_order_id" in str(err)


@pytest.mark.parametrize(
    ("kind", "from_symbol", "to_symbol", "error"),
    [
        ("MAIN_MARGIN", None, None, None),
        ("MAIN_MARGIN", "BTCUSDT", None, "from_symbol"),
        ("MARGIN_MAIN", None, "BTCUSDT", "to_symbol"),
        ("MARGIN_ISOLATEDMARGIN", None, "BTCUSDT", None),
        ("MARGIN_ISOLATEDMARGIN", None, None, "to_symbol"),
        ("ISOLATEDMARGIN_MARGIN", "BTCUSDT", None, None),
        ("ISOLATEDMARGIN_MARGIN", None, None, "from_symbol"),
        ("ISOLATEDMARGIN_MARGIN", "BTCUSDT", "ETHUSDT", "to_symbol"),
        ("ISOLATEDMARGIN_ISOLATEDMARGIN", "BTCUSDT", "ETHUSDT", None),
        ("ISOLATEDMARGIN_ISOLATEDMARGIN", "BTCUSDT", None, "to_symbol"),
        ("MAIN_ISOLATEDMARGIN", None, "BTCUSDT", None),
        ("ISOLATEDMARGIN_MAIN", "BTCUSDT", None, None),
        ("UMFUTURE_MARGIN", None, None, None),
    ],
)
def test_transfer_symbols(
    kind: str, from_symbol: str | None, to_symbol: str | None, error: str | None
) -> None:
    if error is None:
        assert P.transfer_symbols(kind, from_symbol, to_symbol) == (from_symbol, to_symbol)
    else:
        _fails(error, P.transfer_symbols, kind, from_symbol, to_symbol)


def test_parameter_error_is_a_value_error() -> None:
    err = _fails("quantity", P.amount, "quantity", "x")
    assert isinstance(err, ValueError)


def test_amount_bounds_match_binance_decimal_range() -> None:
    assert P.amount("price", "0.00000000000000000001") == "0.00000000000000000001"
    assert P.amount("price", Decimal("99999999999999999999")) == "99999999999999999999"
    assert P.amount("price", "1.000E-20") == "0.00000000000000000001"
    err = _fails("price", P.amount, "price", "0.000000000000000000011")
    assert "20 decimal places" in str(err)
    _fails("price", P.amount, "price", "1" * 65)


def test_required_values_are_never_none() -> None:
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        (P.amount, ("quantity", None)),
        (P.integer, ("limit", None)),
        (P.timestamp, ("start_time", None)),
        (P.symbol, ("symbol", None)),
        (P.text, ("api_name", None)),
        (P.email, ("sub_email", None)),
        (P.client_order_id, ("new_client_order_id", None)),
        (P.key, ("api_key", None)),
        (P.enum_value, ("side", None, OrderSide)),
    ]
    for func, args in cases:
        name = args[0]
        err = _fails(name, func, *args, required=True)
        assert "required" in str(err)
        assert func(*args) is None  # not required: None means "not given"
    _fails("symbols", P.joined, "symbols", None)
    _fails("ip", P.ip_list, "ip", None)
    _fails("assets", P.as_sequence, "assets", None)


def test_integers_stay_in_binance_long_range_and_times_are_bounded() -> None:
    assert P.integer("order_id", P.MAX_LONG) == str(2**63 - 1)
    _fails("order_id", P.integer, "order_id", 2**63)
    _fails("order_id", P.integer, "order_id", 10**5000)
    assert P.timestamp("end_time", P.MAX_TIMESTAMP_MS) == "253402300799999"
    _fails("end_time", P.timestamp, "end_time", P.MAX_TIMESTAMP_MS + 1)
    _fails("end_time", P.time_range, 0, 2**63)


def test_time_windows_are_lazy_and_bounded() -> None:
    week = P.CAPITAL_FLOW_WINDOW_MS
    windows = P.time_windows(0, P.MAX_WINDOWS * week - 1, week)
    assert next(windows) == (0, week - 1)  # generated on demand, not built up front
    _fails("end_time", P.time_windows, 0, P.MAX_WINDOWS * week, week)
    _fails("end_time", P.time_windows, 0, 2**63, week)
    _fails("start_time", P.time_windows, None, 1, week)


@pytest.mark.parametrize(
    "bad",
    [
        "btcusdt",
        "BTC-USDT ",
        "ВТСUSDT",
        "ＢＴＣ",
        "BTC\x00",
        "BTC#",
        "BTC%26",
        "BTC+",
        "BTC/USDT",
        "A" * 21,
        "A" * 5000,
        "\ud800",
        "",
        b"BTCUSDT",
        5,
        ["BTCUSDT"],
    ],
)
def test_symbols_follow_binance_pattern(bad: Any) -> None:
    _fails("symbol", P.symbol, "symbol", bad)


def test_symbol_pattern_accepts_binance_names() -> None:
    for good in ["BTCUSDT", "1000SATSUSDT", "BTC-200925", "A.B_C", "A" * 20]:
        assert P.symbol("symbol", good) == good


def test_text_rejects_controls_surrogates_and_huge_values() -> None:
    for bad in ["a\x00b", "a\nb", "\ud800", "x" * (P.MAX_TEXT_CHARS + 1), 5]:
        _fails("api_name", P.text, "api_name", bad)
    pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"
    assert P.text("public_key", pem, multiline=True, max_length=8192) == pem
    _fails("public_key", P.text, "public_key", pem.replace("\n", "\r\n"), multiline=True)
    assert P.email("sub_email", "a.b@example.com") == "a.b@example.com"
    for bad_mail in ["example.com", "a@b@c", "a b@c.d"]:
        _fails("sub_email", P.email, "sub_email", bad_mail)


def test_lists_are_typed_and_bounded() -> None:
    assert P.ip_list("ip", "1.2.3.4,::1") == "1.2.3.4,::1"
    assert P.ip_list("ip", ["10.0.0.1"]) == "10.0.0.1"
    for bad in ["1.2.3", "１.2.3.4", "host.example", [1], 5, b"1.2.3.4", {"1.2.3.4": 1}]:
        _fails("ip", P.ip_list, "ip", bad)
    _fails("ip", P.ip_list, "ip", ["1.1.1.1"] * 31)
    # An endless iterable is read no further than the bound.
    _fails("symbols", P.joined, "symbols", itertools.repeat("BTCUSDT"), max_count=5)
    _fails("assets", P.as_sequence, "assets", itertools.repeat("BTC"))
    _fails("symbols", P.joined, "symbols", [None])


_BINANCE_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, min_value=Decimal("1e-20"), places=20
    ).filter(lambda d: d < Decimal(10) ** 20)
)
def test_amounts_in_binance_range_round_trip_exactly(value: Decimal) -> None:
    wire = P.amount("price", value)
    assert _BINANCE_DECIMAL.fullmatch(wire)
    assert Decimal(wire) == value
    assert P.amount("price", wire) == wire  # the wire form is itself a valid input


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.one_of(
        st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
        st.from_regex(r"[-+ ]?[0-9_.eE+-]{0,30}", fullmatch=True),
        st.decimals(),
        st.floats(),
        st.integers(),
    )
)
def test_any_amount_input_is_refused_or_sent_in_binance_range(value: Any) -> None:
    try:
        wire = P.amount("quantity", value)
    except ParameterError as exc:
        assert exc.param == "quantity"
    else:
        assert _BINANCE_DECIMAL.fullmatch(wire)
        assert Decimal(wire) > 0
