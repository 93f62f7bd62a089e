"""The demo and the monitor run end to end on the fake exchange (real sockets on 127.0.0.1)."""

from __future__ import annotations

import argparse
import asyncio
import io
import re
from pathlib import Path

import pytest

from binance_margin_async import __version__
from binance_margin_async.cli import add_monitor_options, main, monitor_main, run_demo, run_monitor


async def test_demo_runs_the_whole_lifecycle_and_reports_a_summary() -> None:
    out = io.StringIO()
    summary = await run_demo(out)
    text = out.getvalue()
    events = summary["events"]
    # Fund, borrow, trade, fills, margin call, repay: every kind of event shows up.
    for name in (
        "ExecutionReport",
        "AccountPosition",
        "BalanceUpdate",
        "LiabilityChange",
        "MarginLevelStatusChange",
    ):
        assert events.get(name, 0) > 0, name
    assert "MARGIN_CALL" in summary["statuses"]
    assert summary["statuses"][-1] == "EXCESSIVE"
    assert "StreamGap" not in events
    assert summary["latency_ms_p50"] is not None
    assert summary["latency_ms_p50"] <= summary["latency_ms_p99"]
    assert summary["weight_used"] > 0
    assert "TRADE/FILLED" in text and "summary" in text
    # Weight per pool, not a count of pools; every loan opened (cross and isolated) repaid.
    assert summary["weight_by_pool"]
    for pool, used in summary["weight_by_pool"].items():
        assert re.search(rf"^    {re.escape(pool)} +{used}$", text, re.M), pool
    assert "loans left: none" in text
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_monitor_on_the_fake_draws_frames_until_its_duration(tmp_path: Path) -> None:
    out = io.StringIO()  # not a terminal: whole plain frames, one after the other
    args = _monitor_args(["--fake", "--duration", "1.5", "--speed", "20"])
    assert await run_monitor(args, env={}, out=out) == 0
    text = out.getvalue()
    assert "── cross margin" in text and "── isolated ETHUSDT" in text
    assert "trade: live" in text and "risk: live" in text
    assert "weight used this minute, per pool" in text
    assert "0E-" not in text
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def _monitor_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_monitor_options(parser)
    return parser.parse_args(argv)


def test_help_lists_the_environment_and_version_is_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["--help"], ["monitor", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_PRIVATE_KEY_FILE"):
            assert name in text
    assert "--base-url" in text and "--risk-stream-url" in text
    with pytest.raises(SystemExit):
        monitor_main(["--version"])
    assert capsys.readouterr().out.strip() == f"binance-margin-monitor {__version__}"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "set BINANCE_API_KEY and BINANCE_API_SECRET"),
        (
            {"BINANCE_API_KEY": "k" * 20, "BINANCE_PRIVATE_KEY_FILE": "/nonexistent/key.pem"},
            "cannot read BINANCE_PRIVATE_KEY_FILE '/nonexistent/key.pem': No such file",
        ),
        (
            {"BINANCE_API_KEY": "k" * 20, "BINANCE_PRIVATE_KEY_FILE": "GARBAGE"},
            "BINANCE_PRIVATE_KEY_FILE 'GARBAGE': ",
        ),
    ],
)
def test_missing_or_unusable_keys_end_in_one_line_and_status_2(
    env: dict[str, str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if env.get("BINANCE_PRIVATE_KEY_FILE") == "GARBAGE":
        garbage = tmp_path / "GARBAGE"
        garbage.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
        monkeypatch.chdir(tmp_path)
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["monitor", "--duration", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert err.count("\n") == 1  # one line, no traceback
    assert "bm90IGEga2V5" not in err


def test_cli_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        main([])


def test_binance_or_network_failure_is_one_line_and_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "k" * 64)
    monkeypatch.setenv("BINANCE_API_SECRET", "s" * 64)
    monkeypatch.delenv("BINANCE_PRIVATE_KEY_FILE", raising=False)
    # Nothing listens on port 9 of the loopback: the first request cannot connect.
    assert main(["monitor", "--base-url", "http://127.0.0.1:9", "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: TransportError: ") and err.count("\n") == 1
    assert "s" * 64 not in err
