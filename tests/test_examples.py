"""The examples run end to end on the in-process fake exchange (real sockets on 127.0.0.1).

Each example is a script in ``examples/`` (not a package): it is loaded by path, with
``examples/`` on ``sys.path`` for its ``_common`` helper, and its ``run(args)`` is awaited with
``--fake``. The assertions read what it printed.

Load-proof: an example's ``run_until_stopped`` (its "run for --duration") is replaced by "run
until what the test checks has been printed" (bounded by a scaled deadline, tests/_timing.py),
so a busy machine makes the run longer, never different.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _redis import RedisServer
from _timing import until

from binance_margin_async import MarginClient
from binance_margin_async.cli import SetupError as SetupErrorType
from binance_margin_async.mirror import AccountMirror
from binance_margin_async.testing import FakeExchange

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALL = (
    "fill_listener",
    "position_monitor",
    "strategy_skeleton",
    "low_latency_maker",
    "fleet",
)


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``examples/<name>.py`` as a script would see it."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


Printed = Callable[[str], bool]  # a condition on everything the example printed so far


def printed(*patterns: str) -> Printed:
    """Whether every regular expression (multi-line) matches what was printed."""
    return lambda out: all(re.search(pattern, out, re.M) for pattern in patterns)


async def run_on_fake(
    name: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *stops: Printed,
) -> str:
    """Await ``run`` of an example with ``--fake`` + ``argv``; it must succeed and leave no task.
    Returns everything it printed.

    The n-th call of the example's ``run_until_stopped`` returns once ``stops[n]`` holds (its
    activities, such as the fake market, run meanwhile and are cancelled then), instead of
    after the duration: what the assertions look for happened, however slow the machine.
    """
    example = load(name, monkeypatch)
    out: list[str] = []
    pending = iter(stops)

    def so_far() -> str:
        out.append(capsys.readouterr().out)  # reading consumes: keep what was read
        return "".join(out)

    async def run_until_printed(
        duration: float | None, *activities: Coroutine[Any, Any, None]
    ) -> None:
        stop = next(pending)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(activity) for activity in activities]
            await until(lambda: stop(so_far()), f"the output {name} is checked for")
            for task in tasks:
                task.cancel()

    if stops:
        monkeypatch.setattr(example, "run_until_stopped", run_until_printed)
    assert await example.run(example.build_parser().parse_args(["--fake", *argv])) == 0
    assert next(pending, None) is None, "a stop condition was never used"
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    return so_far()


async def test_fill_listener_prints_every_fill_once_even_across_a_gap(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fill = r"^FILL \[{}\] {} {} .* {}, trade #"
    out = await run_on_fake(
        "fill_listener",
        ["--isolated", "ETHUSDT"],
        monkeypatch,
        capsys,
        printed(
            fill.format("CROSS", "BTCUSDT", "BUY", r"\w+"),
            fill.format("CROSS", "BTCUSDT", "SELL", r"\w+"),
            fill.format(r"ETHUSDT", "ETHUSDT", r"\w+", r"\w+"),
            fill.format(r"\w+", r"\w+", r"\w+", "maker"),
            r"^WARNING stream gap on CROSS",
            r"\(from REST\)",
        ),
    )

    fills = re.findall(
        r"^FILL \[(\w+)\] (\w+) (BUY|SELL) .* (maker|taker), trade #(\d+)", out, re.M
    )
    assert {(account, symbol) for account, symbol, *_ in fills} == {
        ("CROSS", "BTCUSDT"),
        ("ETHUSDT", "ETHUSDT"),
    }
    assert {side for _, _, side, _, _ in fills} == {"BUY", "SELL"}
    assert "maker" in {role for *_, role, _ in fills}  # a resting order filled by a price move
    # The fake script cuts the connections once: the gap is reported, and the fill traded
    # while offline comes from REST, so trade ids 1..n (the venue numbers them) have no hole
    # and none is printed twice.
    assert "WARNING stream gap on CROSS" in out
    assert "(from REST)" in out
    ids = [int(trade_id) for *_, trade_id in fills]
    assert sorted(ids) == list(range(1, len(ids) + 1))
    totals = out.split("\ntotals\n", 1)[1]
    assert re.search(r"BTCUSDT on CROSS: fills \d+, bought [\d.]+, sold [\d.]+", totals)
    assert "ETHUSDT on ETHUSDT: fills" in totals


async def test_position_monitor_alerts_before_and_at_the_margin_call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A level between the thresholds: the poll may also first see one below both, if it runs
    # before the stream delivers Binance's status change.
    own_alert = r"ALERT: margin level (1\.5\d*) fell below 1.6 \(REST poll\)"
    binance_alert = r"ALERT: Binance says MARGIN_CALL: margin level ([\d.]+)"
    status_line = r"^margin level [\d.]+ \(status \w+\) \| holds .*BTC 0\.3996.*\| owes USDT 15000$"
    out = await run_on_fake(
        "position_monitor",
        ["--interval", "0.2"],
        monkeypatch,
        capsys,
        # The poll sees a level between the thresholds once per downswing if it runs in time;
        # on a busy machine it may take another swing (the price keeps swinging).
        printed(f"{own_alert}(?s:.*){binance_alert}", "LIABILITY USDT BORROW", status_line),
    )

    own = re.search(own_alert, out)
    assert own is not None
    binance = re.compile(binance_alert).search(out, own.end())
    assert binance is not None  # the own threshold fires first
    assert Decimal("1.5") <= Decimal(own[1]) < Decimal("1.6")
    assert Decimal(binance[1]) < Decimal("1.5")
    assert "LIABILITY USDT BORROW: principal 15000, interest 0; owed now 15000 + 0" in out
    # The status line shows the mirror's view of the account: the bought BTC and the loan.
    assert re.search(status_line, out, re.M)


async def test_fleet_fails_over_and_every_consumer_sees_the_handover(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Child processes: two publisher candidates and one consumer; the publishing one is killed.
    argv = ["--consumers", "1", "--lease-ttl", "1", "--redis", redis_server.url]
    handover = r"\[alpha\] CROSS: GAP of [\d.]+ s \(publisher handover\)"
    killed = r"^fleet: SIGKILL pub\d \(pid \d+\)$"
    out = await run_on_fake(
        "fleet",
        argv,
        monkeypatch,
        capsys,
        # Before the failover: a publisher leads and the consumer reads what it publishes.
        printed(r"publishing \(fencing token \d+\)", r"\[alpha\] CROSS: balance USDT \+\d"),
        # After it: the consumer saw the handover (any time after the kill) and the resync.
        printed(f"{killed}(?s:.*){handover}(?s:.*)RESYNCED from REST"),
    )

    assert re.search(killed, out, re.M)
    assert re.search(r"^fleet: pub\d took over after [\d.]+ s$", out, re.M)
    tokens = [int(t) for t in re.findall(r"publishing \(fencing token (\d+)\)", out)]
    assert len(tokens) >= 2 and tokens == sorted(set(tokens))  # a new token per term
    # The children's lines are relayed as they come: the consumer may report the handover
    # before the parent relays the new publisher's "publishing", never before the kill.
    after = out.split("fleet: SIGKILL", 1)[1]
    assert re.search(handover, after)
    assert "[alpha] CROSS: RESYNCED from REST" in after
    assert re.search(r"\[alpha\] CROSS: balance USDT \+\d", out)
    assert re.search(r"^consumer alpha: \d+ events, [1-9]\d* reported gaps$", out, re.M)


async def test_position_monitor_alerts_once_per_crossing(monkeypatch: pytest.MonkeyPatch) -> None:
    example = load("position_monitor", monkeypatch)
    alerts: list[str] = []
    monkeypatch.setattr(example, "alert", alerts.append)
    async with MarginClient("k" * 64) as client:  # never called: check() is pure
        monitor = example.Monitor(client, AccountMirror(), Decimal("1.6"))
        for level in ("1.7", "1.59", "1.4", "1.59", "1.61", "1.55"):
            monitor.check(Decimal(level), "test")
    assert alerts == [
        "margin level 1.59 fell below 1.6 (test)",
        "margin level 1.55 fell below 1.6 (test)",
    ]


async def test_strategy_trades_reconciles_unknown_outcomes_and_cleans_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = r"^order (skel-\S+): outcome unknown; asking Binance$"
    out = await run_on_fake(
        "strategy_skeleton",
        [],
        monkeypatch,
        capsys,
        printed(
            r"^FILL BUY 0.01 @ [\d.]+ \(skel-",
            f"{unknown}(?s:.*){unknown}",
            r"^order skel-\S+ turned up after all; tracking it$",
        ),
    )

    assert "borrowed 1000 USDT" in out
    assert re.search(r"^placed skel-\w+-\d+: BUY 0.01 @ [\d.]+$", out, re.M)
    assert re.search(r"^FILL BUY 0.01 @ [\d.]+ \(skel-", out, re.M)
    # fail_next made two placements end unknown, each resolved by asking for the client id.
    rejected, late = re.findall(unknown, out, re.M)
    # The first (HTTP 500) was never executed...
    assert f"order {rejected}: Binance has no such order; it was not placed" in out
    assert f"order {rejected} turned up" not in out
    # ...the second (a backend timeout) reached the book after Binance said it had no such
    # order: the stream reports it, and the strategy adopts it.
    denied = f"order {late}: Binance has no such order; it was not placed\n"
    adopted = f"order {late} turned up after all; tracking it\n"
    assert denied in out and adopted in out
    assert out.index(denied) < out.index(adopted)
    # Exit: orders canceled, the position sold at market and its fill seen, the loan repaid.
    stop = out.split("stopping: cancel, flatten, repay\n", 1)[1]
    assert re.search(r"^placed skel-\S+: SELL [\d.]+ at market$", stop, re.M)
    assert re.search(r"^FILL SELL .* -> position 0 BTC", stop, re.M)
    assert "repaid 1000 USDT" in stop
    assert re.search(r"^done: \d+ fills seen, position 0 BTC", stop, re.M)


async def test_low_latency_maker_quotes_replaces_and_sees_its_own_fills(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Its fake market is a fixed number of steps (the same fills on a busy machine), not a wait.
    out = await run_on_fake("low_latency_maker", ["--duration", "2"], monkeypatch, capsys)
    assert re.search(r"^BTCUSDT: tick 0\.01, step [\d.]+$", out, re.M)
    assert re.search(r"^QUOTE BUY 0\.01 @ \d+(\.\d{1,2})?$", out, re.M)  # on the tick
    assert re.search(r"^MOVE  (BUY|SELL) -> \d+", out, re.M)  # cancel-replace
    fills = re.findall(r"^FILL (BUY|SELL) 0\.01 @ ", out, re.M)  # own events, same connection
    assert fills
    assert re.search(r"^cancelled \d+ open orders$", out, re.M)
    assert re.search(r"^summary: \d+ requests, \d+ replaces, bought", out, re.M)


@pytest.mark.parametrize("name", ALL)
def test_without_fake_or_keys_each_example_says_what_to_set(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    example = load(name, monkeypatch)
    assert example.main(["--duration", "1"]) == 2
    assert "set BINANCE_API_KEY and BINANCE_API_SECRET" in capsys.readouterr().err


def test_an_unreadable_key_file_is_reported_without_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "k" * 64)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    monkeypatch.setenv("BINANCE_PRIVATE_KEY_FILE", str(tmp_path / "missing.pem"))
    example = load("fill_listener", monkeypatch)
    assert example.main([]) == 2
    assert "cannot read BINANCE_PRIVATE_KEY_FILE" in capsys.readouterr().err


def test_ctrl_c_shuts_an_example_down_cleanly_and_exits_130() -> None:
    """Ctrl-C ends the wait, the example's own shutdown runs, then the status says interrupted."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "fill_listener.py"), "--fake"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("listening for fills"), first
        # A fill comes from the fake market, which runs inside run_until_stopped: from then on
        # Ctrl-C ends the wait (before, it would cancel the setup: 130 too, without totals).
        while not (line := proc.stdout.readline()).startswith("FILL"):
            assert line, "the example ended before its first fill"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "totals" in out  # the example's own shutdown ran
    assert "Traceback" not in err


async def test_examples_connect_where_the_url_options_say(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --fake, the keys of the environment and the URLs of a standalone fake exchange."""
    example = load("fill_listener", monkeypatch)
    async with FakeExchange(seed=9) as ex:
        creds = ex.add_account(margin_balances={"USDT": "100"})
        assert creds.api_secret is not None
        monkeypatch.setenv("BINANCE_API_KEY", creds.api_key)
        monkeypatch.setenv("BINANCE_API_SECRET", creds.api_secret)
        monkeypatch.delenv("BINANCE_PRIVATE_KEY_FILE", raising=False)
        argv = ["--duration", "0.2", "--base-url", ex.rest_url, "--ws-api-url", ex.ws_api_url,
                "--risk-stream-url", ex.risk_stream_url]  # fmt: skip
        assert await example.run(example.build_parser().parse_args(argv)) == 0
        assert ex.stats.requests > 0
    assert "listening for fills on CROSS" in capsys.readouterr().out
    with pytest.raises(SetupErrorType, match="--fake starts its own exchange"):
        parsed = example.build_parser().parse_args(["--fake", "--base-url", "http://x"])
        await example.run(parsed)
