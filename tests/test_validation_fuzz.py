"""Hostile input against every public ``MarginAPI`` method: a typed error or a well-formed request.

The methods are enumerated by introspection, so a method added later is covered without editing
this file. Each call runs through the pure request-building layer: a ``MarginAPI`` whose ``_call``
records the request and stops (no event loop, no socket). Every outcome must be either

* a :class:`ParameterError` naming one of the method's parameters, raised before anything is sent;
* or exactly one request whose parameters are all well formed (strings of Binance's shapes: no
  ``"None"``, no control characters, decimals in Binance's range, symbols in its pattern...).

Anything else (another exception, a malformed request, a coroutine that waits) fails the test.

Three drivers:

* a deterministic sweep: every parameter of every method gets every value of a hostile list while
  the others keep valid values (and ``None`` for every required parameter must be refused);
* hypothesis (derandomized, bounded examples): random mixes of valid, default and hostile values
  per method, plus arbitrary text;
* the requests the sweep lets through are sent to ``FakeExchange``, whose Binance-style parameter
  checks must accept them (business errors are fine, "malformed" codes are not).

A new public method is picked up automatically; if one of its required parameters has a name
unknown here, the baseline test fails until a valid value is added to ``_FIRST``/``_BASELINES``.

``python tests/test_validation_fuzz.py`` prints the sweep's counts.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import typing
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binance_margin_async.api import MarginAPI
from binance_margin_async.endpoints import Endpoint
from binance_margin_async.errors import BinanceAPIError, ParameterError
from binance_margin_async.testing import FakeExchange

# Public methods, found by introspection (server_time takes no arguments but is checked too).
METHODS: Final = sorted(
    name
    for name, member in inspect.getmembers(MarginAPI)
    if not name.startswith("_") and inspect.isfunction(member)
)


class _Sent(Exception):
    """Raised by the recording transport once the request is captured: nothing goes further."""


@dataclass
class _Request:
    endpoint: Endpoint
    params: list[tuple[str, str]]


class _Capture(MarginAPI):
    """The pure request-building layer with a transport that records one request and stops."""

    def __init__(self) -> None:
        self.requests: list[_Request] = []

    async def _call(
        self,
        endpoint: Endpoint,
        params: list[tuple[str, str]],
        *,
        client_order_id: str | None = None,
    ) -> Any:
        self.requests.append(_Request(endpoint, list(params)))
        raise _Sent


# Parameter shapes a well-formed request may carry, by wire name.
_DECIMAL: Final = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_LONG: Final = re.compile(r"[0-9]{1,19}")
_SYMBOL: Final = re.compile(r"[A-Z0-9_.-]{1,20}")
_CLIENT_ID: Final = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_SYMBOL_KEYS: Final = frozenset(
    {"symbol", "isolatedSymbol", "fromSymbol", "toSymbol", "asset", "assetName", "coin"}
)
_LIST_KEYS: Final = frozenset({"symbols", "assets", "assetNames"})
_AMOUNT_WORDS: Final = ("price", "qty", "quantity", "amount")


def _check_value(key: str, value: object, *, none_text_given: bool) -> None:
    """Assert that one wire parameter is a string of the shape Binance expects for ``key``.

    ``"None"`` on the wire means a ``None`` was stringified, unless the caller typed that text.
    """
    assert isinstance(key, str) and isinstance(value, str), (key, value)
    assert value, key
    assert value != "None" or none_text_given, key
    value.encode("utf-8")  # no lone surrogates: the signer would raise UnicodeEncodeError
    low = key.lower()
    if key == "publicKey":
        assert "\r" not in value and not _CONTROL.search(value.replace("\n", "")), key
    else:
        assert not _CONTROL.search(value), key
    if low.endswith("clientorderid"):
        assert _CLIENT_ID.fullmatch(value), (key, value)
    elif key in _SYMBOL_KEYS:
        assert _SYMBOL.fullmatch(value), (key, value)
    elif key == "symbols" and value.startswith("["):
        # exchangeInfo's JSON-array form, ["BTCUSDT","BNBBTC"]
        names = orjson.loads(value)
        assert names and all(_SYMBOL.fullmatch(item) for item in names), (key, value)
    elif key in _LIST_KEYS:
        assert all(_SYMBOL.fullmatch(item) for item in value.split(",")), (key, value)
    elif low.endswith(("time", "id", "delta")) or key in {"limit", "size", "current", "validity"}:
        assert _LONG.fullmatch(value), (key, value)
    elif any(word in low for word in _AMOUNT_WORDS):
        assert _DECIMAL.fullmatch(value), (key, value)


def _check_request(name: str, request: _Request, *, none_text_given: bool) -> None:
    keys = [key for key, _ in request.params]
    if name != "convert_dust":  # its asset list is a repeated parameter
        assert len(keys) == len(set(keys)), keys
    assert not {"timestamp", "recvWindow", "signature"} & set(keys)
    for key, value in request.params:
        _check_value(key, value, none_text_given=none_text_given)


def _drive(awaitable: Coroutine[Any, Any, Any]) -> None:
    """Run a coroutine that must finish (or raise) without ever waiting on anything."""
    try:
        awaitable.send(None)
    except StopIteration:
        return
    finally:
        awaitable.close()
    raise AssertionError("the request builder awaited something other than its transport")


@dataclass(frozen=True)
class Outcome:
    """How one call ended: ``"sent"`` (with the request) or ``"refused"`` (with the parameter)."""

    kind: str
    param: str | None = None
    request: _Request | None = None


def call(name: str, kwargs: dict[str, Any]) -> Outcome:
    """Call ``name`` with ``kwargs`` through the pure request-building layer.

    Fails (AssertionError) on any other exception, on a malformed request, or if the method
    sends more than one request before its first answer.
    """
    api = _Capture()
    method = getattr(api, name)
    parameters = inspect.signature(method).parameters
    try:
        result = method(**kwargs)
        if inspect.iscoroutine(result):
            _drive(result)
        else:  # an iter_* method: arguments are checked on the call, the request on the first step
            _drive(result.__anext__())
    except _Sent:
        (request,) = api.requests
        _check_request(name, request, none_text_given="None" in repr(kwargs))
        return Outcome("sent", request=request)
    except ParameterError as exc:
        assert api.requests == [], "a ParameterError after the request was sent"
        assert exc.param in parameters or exc.param.split("_", 1)[0] in ("working", "pending"), (
            name,
            exc.param,
        )
        assert exc.param in str(exc)
        return Outcome("refused", param=exc.param)
    raise AssertionError(f"{name} returned without sending a request or raising")


# Valid values, by parameter name (first match wins) and then by annotation.
def _valid_by_name(name: str) -> st.SearchStrategy[Any] | None:
    if name in ("symbol", "isolated_symbol", "from_symbol", "to_symbol"):
        return st.sampled_from(["BTCUSDT", "ETHUSDT", "BNBUSDT"])
    if name in ("symbols",):
        return st.sampled_from(["BTCUSDT", ["BTCUSDT", "ETHUSDT"]])
    if name in ("asset", "asset_name", "coin"):
        return st.sampled_from(["BTC", "USDT", "1000SATS"])
    if name in ("assets", "asset_names"):
        return st.sampled_from(["BTC", ["BTC", "ETH"], ("USDT",)])
    if name.endswith("client_order_id"):
        return st.from_regex(_CLIENT_ID, fullmatch=True)
    if name == "ip":
        return st.sampled_from(["1.2.3.4", ["10.0.0.1", "::1"]])
    if name == "sub_email":
        return st.just("member@example.com")
    if name in ("api_name", "api_key", "listen_key"):
        return st.sampled_from(["bot", "k3y-1"])
    if name == "public_key":
        return st.just("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----")
    if name == "max_leverage":
        return st.sampled_from([3, 5, 10, 20])
    if name in ("limit", "size", "current"):
        return st.integers(1, 100)
    if name == "validity_ms":
        return st.integers(1, 86_400_000)
    if name.endswith("time"):
        return st.integers(1_700_000_000_000, 1_700_000_100_000)
    if name.endswith("trailing_delta"):
        return st.integers(1, 1000)
    return None


def _annotation_parts(annotation: Any) -> list[Any]:
    parts = typing.get_args(annotation)
    return list(parts) if parts else [annotation]


def _valid_by_type(annotation: Any) -> st.SearchStrategy[Any]:
    parts = _annotation_parts(annotation)
    for part in parts:
        if inspect.isclass(part) and issubclass(part, StrEnum):
            members = list(part)
            return st.sampled_from(members + [member.value for member in members])
    if bool in parts:
        return st.booleans()
    if Decimal in parts:  # AmountLike
        return st.one_of(
            st.decimals(Decimal("0.00000001"), Decimal(10**6), places=8),
            st.sampled_from(["1", "0.5", "25000.01", 2, 0.1]),
        )
    if int in parts:
        return st.integers(1, 10**6)
    return st.sampled_from(["BTCUSDT", "bot"])


def _hints(name: str) -> dict[str, Any]:
    return typing.get_type_hints(getattr(MarginAPI, name))


def valid(name: str, param: str) -> st.SearchStrategy[Any]:
    """A strategy of valid values for ``param`` of method ``name``."""
    by_name = _valid_by_name(param)
    return by_name if by_name is not None else _valid_by_type(_hints(name)[param])


#: Hostile values tried on every parameter: None, wrong types, out-of-range numbers, strings that
#: ``Decimal``/``int`` would accept but Binance does not, and strings that break signing or the
#: query (NUL, surrogates, separators, other scripts, huge sizes).
HOSTILE: Final[list[Any]] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    10**30,
    1.5,
    -0.0,
    math.nan,
    math.inf,
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("-1"),
    Decimal("1e999999"),
    Decimal("6e99872863"),
    Decimal("1e-30"),
    "",
    " ",
    "None",
    "btcusdt",
    "BTC USDT",
    " BTCUSDT",
    "BTCUSDT\n",
    "BTC\x00USDT",
    "ВТСUSDT",
    "ＢＴＣＵＳＤＴ",
    "BTC#",
    "BTC%26",
    "BTC+USDT",
    "BTC/USDT",
    "a&b=c",
    "A" * 5000,
    "1_000",
    "١٢",
    "１２",
    " 12 ",
    "1e999999",
    "6e99872863",
    "9" * 1_000_000,
    "-5",
    "\ud800",
    "BTC\udfff",
    b"BTCUSDT",
    [],
    ["BTC", None],
    ["BTC"] * 101,
    {"BTC": 1},
    object(),
]


@dataclass
class Tally:
    """Outcomes of the sweep: calls made, and how each ended."""

    calls: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_method: Counter[str] = field(default_factory=Counter)
    sent: list[_Request] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.calls} bad-value calls over the {len(self.by_method)} public methods that take "
            f"arguments (of {len(METHODS)}): "
            f"{self.outcomes['refused']} refused with ParameterError naming the parameter, "
            f"{self.outcomes['sent']} sent as well-formed requests (the value was acceptable "
            f"there, e.g. 0 for an id), 0 other outcomes"
        )


def _baseline(name: str) -> dict[str, Any]:
    """Valid values for every parameter without a default."""
    signature = inspect.signature(getattr(MarginAPI, name))
    return {
        param.name: _BASELINES.get((name, param.name), _FIRST.get(param.name))
        for param in list(signature.parameters.values())[1:]
        if param.default is inspect.Parameter.empty
    }


# Deterministic valid values for the required parameters of the sweep.
_FIRST: Final[dict[str, Any]] = {
    "symbol": "BTCUSDT",
    "asset": "BTC",
    "asset_name": "USDT",
    "assets": ["BTC", "ETH"],
    "asset_names": ["BTC", "ETH"],
    "amount": "1",
    "api_name": "bot",
    "ip": "1.2.3.4",
    "listen_key": "k",
    "api_key": "k",
    "group_id": 1,
    "sub_email": "member@example.com",
    "enable_spot": True,
    "enable_margin": True,
    "max_leverage": 3,
    "start_time": 1_700_000_000_000,
    "end_time": 1_700_000_100_000,
    "side": "SELL",
    "quantity": "1",
    "price": "30000",
    "stop_price": "25000",
    "working_type": "LIMIT",
    "working_side": "BUY",
    "working_price": "100",
    "working_quantity": "1",
    "pending_type": "MARKET",
    "pending_side": "SELL",
    "pending_quantity": "1",
    "pending_above_type": "LIMIT_MAKER",
}
_BASELINES: Final[dict[tuple[str, str], Any]] = {
    ("new_order", "type"): "MARKET",
    ("cancel_replace_order", "type"): "MARKET",
    ("manual_liquidation", "type"): "MARGIN",
    ("get_available_inventory", "type"): "MARGIN",
    ("transfer", "type"): "MAIN_MARGIN",
    ("get_universal_transfer_history", "type"): "MAIN_MARGIN",
    ("iter_universal_transfer_history", "type"): "MAIN_MARGIN",
    ("get_borrow_repay_records", "type"): "BORROW",
    ("iter_borrow_repay_records", "type"): "BORROW",
    ("get_loan_group_borrow_repay_records", "type"): "BORROW",
    ("iter_loan_group_borrow_repay_records", "type"): "BORROW",
}
# Baselines that need more than the required parameters to be sendable.
_EXTRA: Final[dict[str, dict[str, Any]]] = {
    "new_order": {"quantity": "1"},
    "cancel_replace_order": {
        "cancel_replace_mode": "STOP_ON_FAILURE",
        "cancel_order_id": 1,
        "quantity": "1",
    },
    "cancel_order": {"order_id": 1},
    "get_order": {"order_id": 1},
    "cancel_order_list": {"order_list_id": 1},
    "get_order_list": {"order_list_id": 1},
    "get_prevented_matches": {"order_id": 1},
    "get_borrow_repay_records": {"start_time": 1_700_000_000_000},
    "toggle_bnb_burn": {"spot_bnb_burn": True},
    "delete_special_key": {"api_name": "bot"},
    "edit_special_key_ip": {"api_key": "k"},
    "new_oto": {"working_time_in_force": "GTC"},
    "new_otoco": {
        "working_time_in_force": "GTC",
        "pending_above_price": "110",
        "pending_below_type": "STOP_LOSS",
        "pending_below_stop_price": "90",
    },
}


def baseline_kwargs(name: str) -> dict[str, Any]:
    """Keyword arguments with which ``name`` sends a well-formed request."""
    kwargs = _baseline(name)
    kwargs.update(_EXTRA.get(name, {}))
    return kwargs


@functools.cache
def sweep() -> Tally:
    """Every hostile value in every parameter of every public method, the others valid (run
    once per session: the sweep test and the fake-exchange cross-check share it)."""
    tally = Tally()
    for name in METHODS:
        base = baseline_kwargs(name)
        assert call(name, base).kind == "sent", name
        signature = inspect.signature(getattr(MarginAPI, name))
        for param in list(signature.parameters.values())[1:]:
            for value in HOSTILE:
                outcome = call(name, {**base, param.name: value})
                if value is None and param.default is inspect.Parameter.empty:
                    assert (outcome.kind, outcome.param) == ("refused", param.name), name
                tally.calls += 1
                tally.outcomes[outcome.kind] += 1
                tally.by_method[name] += 1
                if outcome.request is not None:
                    tally.sent.append(outcome.request)
    return tally


def test_every_public_method_has_a_sendable_baseline() -> None:
    assert len(METHODS) >= 100
    for name in METHODS:
        outcome = call(name, baseline_kwargs(name))
        assert outcome.kind == "sent", f"{name}: no valid baseline for {outcome.param}"


def test_sweep_every_hostile_value_through_every_parameter() -> None:
    tally = sweep()
    print("\n" + tally.summary())  # shown with -s; the numbers go into the note
    # Most hostile values must be refused; the ones that are sent passed every wire check above.
    assert tally.outcomes["refused"] > 0.8 * tally.calls


#: Binance's codes for a malformed request (bad or missing parameter, bad signature).
_MALFORMED_CODES: Final = frozenset({-1022, -1100, -1101, -1102, -1103, -1104, -1105, -1106, -1111})


async def test_sent_requests_pass_the_fake_exchanges_parameter_checks() -> None:
    # The wire checks above, cross-checked against the fake's Binance-style ones: every baseline
    # request and every hostile-value request the sweep let through, sent for real, may be
    # refused for business reasons (no such order, -1020 where the fake has no logic) but never
    # as malformed.
    requests = [call(name, baseline_kwargs(name)).request for name in METHODS]
    requests += sweep().sent  # extends the local list; the cached tally is unchanged
    # Cancel-replace exists only on the special-key routes (/api/v3): the client refuses it for
    # this account's own key before sending, so it has no SAPI request to cross-check.
    requests = [r for r in requests if r is not None and not r.endpoint.path.startswith("/api/")]
    codes: Counter[int | str] = Counter()
    async with FakeExchange(seed=5) as ex:
        creds = ex.add_account(
            {"USDT": "100000", "BTC": "5"},
            margin_balances={"USDT": "100000", "BTC": "5"},
            isolated={"BTCUSDT": {"USDT": "1000"}},
        )
        async with ex.client(creds) as client:
            for request in requests:
                assert request is not None
                try:
                    await client._call(request.endpoint, request.params)
                    codes["ok"] += 1
                except BinanceAPIError as exc:
                    codes[exc.code] += 1
                    assert exc.code not in _MALFORMED_CODES, (request, exc.code, exc.msg)
    print(f"\nsent to the fake: {len(requests)} requests, answers {dict(codes)}")


@st.composite
def _arguments(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A mix of valid, default and hostile values for the parameters of ``name``."""
    kwargs: dict[str, Any] = {}
    signature = inspect.signature(getattr(MarginAPI, name))
    for param in list(signature.parameters.values())[1:]:
        choice = draw(st.sampled_from(["default", "valid", "valid", "hostile", "text"]))
        if choice == "default" and param.default is not inspect.Parameter.empty:
            continue
        if choice == "hostile":
            kwargs[param.name] = draw(st.sampled_from(HOSTILE))
        elif choice == "text":
            kwargs[param.name] = draw(
                st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
                | st.integers()
                | st.floats()
                | st.decimals()
            )
        else:
            kwargs[param.name] = draw(valid(name, param.name))
    return kwargs


#: Outcomes of the hypothesis examples, printed (with -s) when the module's tests end.
_RANDOM_OUTCOMES: Final[Counter[str]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _print_random_outcomes() -> Iterator[None]:
    yield
    if _RANDOM_OUTCOMES:
        total = sum(_RANDOM_OUTCOMES.values())
        print(
            f"\nhypothesis: {total} random calls: {_RANDOM_OUTCOMES['refused']} refused, "
            f"{_RANDOM_OUTCOMES['sent']} sent well formed, 0 other outcomes"
        )


@pytest.mark.parametrize("name", METHODS)
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_arguments_give_a_parameter_error_or_a_well_formed_request(
    name: str, data: st.DataObject
) -> None:
    _RANDOM_OUTCOMES[call(name, data.draw(_arguments(name))).kind] += 1


if __name__ == "__main__":  # pragma: no cover - a report, not a test
    print(sweep().summary())
