"""The demo and the monitor run end to end on the fake exchange (real sockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import io

from binance_margin_async.cli import main, run_demo, run_monitor


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
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_monitor_on_the_fake_shows_the_account() -> None:
    out = io.StringIO()
    code = await run_monitor(fake=True, duration=1.5, interval=0.5, env={}, out=out)
    assert code == 0
    text = out.getvalue()
    assert "margin level" in text
    assert "USDT" in text
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_monitor_without_keys_explains_what_to_set() -> None:
    code = await run_monitor(fake=False, duration=0.1, interval=0.1, env={}, out=io.StringIO())
    assert code == 2


def test_cli_requires_a_command() -> None:
    import pytest

    with pytest.raises(SystemExit):
        main([])
