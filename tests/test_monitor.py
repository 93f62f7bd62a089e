"""The monitor: its frame from a mirror (pure), and the real app in a pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from decimal import Decimal
from pathlib import Path

from binance_margin_async._monitor import STATUS_STYLE, MonitorState, frame, render_plain
from binance_margin_async.events import MarginLevelStatusChange, StreamGap
from binance_margin_async.mirror import AccountMirror
from binance_margin_async.models import MarginLevelStatus
from binance_margin_async.risk import PriceBook, RiskEstimator

ROOT = Path(__file__).resolve().parent.parent


def _mirror() -> AccountMirror:
    mirror = AccountMirror()
    zero = "0.00000000"
    mirror.load_cross_snapshot(
        {
            "marginLevel": "1.4",
            "userAssets": [
                {"asset": "BTC", "free": "0.4", "locked": zero, "borrowed": zero, "interest": zero},
                {"asset": "USDT", "free": "1000", "locked": zero, "borrowed": "15000",
                 "interest": "0.5"},
                {"asset": "BNB", "free": zero, "locked": zero, "borrowed": zero, "interest": zero},
            ],
        }
    )  # fmt: skip
    mirror.load_open_orders(
        "CROSS",
        [
            {"symbol": "BTCUSDT", "orderId": 42, "clientOrderId": "my-order-1", "side": "SELL",
             "type": "LIMIT", "timeInForce": "GTC", "price": "61500.00", "origQty": "0.02",
             "executedQty": zero, "cummulativeQuoteQty": zero, "status": "NEW", "time": 1_000,
             "updateTime": 1_000},
        ],
    )  # fmt: skip
    return mirror


def test_frame_shows_level_distances_balances_orders_events_and_weights() -> None:
    mirror = _mirror()
    book = PriceBook([("BTCUSDT", "BTC", "USDT")])
    book.update("BTCUSDT", Decimal(50000), 1)
    estimator = RiskEstimator(mirror, book)
    state = MonitorState(["CROSS"])
    state.live(0.0)
    (estimate,) = estimator.update(2)
    state.on_estimate(estimate, 1.0)
    binance = MarginLevelStatusChange("CROSS", 3, Decimal("1.39"), MarginLevelStatus.MARGIN_CALL)
    state.on_event("CROSS", "MARGIN LEVEL", binance, 2.0)
    state.on_event("CROSS", "STREAM GAP", StreamGap("CROSS", 2.5, 3.0), 3.0)
    lines = frame(
        state,
        mirror,
        estimator,
        usage={"SAPI_IP:GET /sapi/v1/margin/priceIndex": 30, "API_IP": 0},
        now=61.0,
        now_ms=91_000,
        title="test",
    )
    text = render_plain(lines)
    # (1000 + 0.4·50000) / 15000.5 = 1.39995...: MARGIN_CALL, in its colour.
    assert "margin level 1.400 MARGIN_CALL" in text
    assert ("1.400 MARGIN_CALL", STATUS_STYLE["MARGIN_CALL"]) in [s for line in lines for s in line]
    assert "net 5999.5 USDT" in text and "liabilities 15000.5" in text
    # The BTC price of the next bands: (1000 + 0.4p) / 15000.5 = 1.5 → p = 53751.875 (above:
    # already in MARGIN_CALL), = 1.1 → p = 38751.375.
    assert "MARGIN_CALL at 53751.88 (+7.5%)" in text
    assert "FORCE_LIQUIDATION at 38751.38 (-22.5%)" in text
    assert "Binance: MARGIN_CALL at level 1.39" in text
    assert re.search(r"USDT +1000 +0 +15000 +0.5", text)
    assert "BNB" not in text  # nothing held or owed
    assert "0E-" not in text and "0.00000000" not in text
    assert re.search(r"#42 +my-order-1 +BTCUSDT +SELL +LIMIT +0.02 @ 61500 +age 1m30s", text)
    assert "gaps 1 (last 00:00:03)" in text
    assert "estimate         EXCESSIVE" not in text and "estimate         MARGIN_CALL" in text
    assert re.search(r"SAPI_IP:GET /sapi/v1/margin/priceIndex +30", text)
    assert "API_IP " not in text  # unused pools are left out


def _read_until(fd: int, buf: bytearray, pattern: bytes, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if re.search(pattern, buf):
            return True
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:  # the child closed the terminal
                return bool(re.search(pattern, buf))
            if not data:
                return bool(re.search(pattern, buf))
            buf += data
    return False


def test_fake_monitor_runs_ten_scenario_minutes_in_a_terminal_and_exits_130_on_ctrl_c() -> None:
    """Two margin calls and their recoveries (cross and isolated), then Ctrl-C."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the monitor on the terminal side of the pty
        os.chdir(ROOT)
        args = ["-m", "binance_margin_async", "monitor", "--fake", "--speed", "150"]
        # A terminal big enough for the whole frame, whatever the test runner's own one is.
        env = {**os.environ, "COLUMNS": "140", "LINES": "70", "TERM": "xterm-256color"}
        os.execve(sys.executable, [sys.executable, *args], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 70, 140, 0, 0))
    buf = bytearray()
    try:
        # 10 scenario minutes at x150 take ~4 s of wall time; the bound is for a loaded machine.
        assert _read_until(fd, buf, rb"scenario time (1\dm|\dh)", time.monotonic() + 90), bytes(
            buf[-2000:]
        )
        os.write(fd, b"\x03")  # Ctrl-C, through the terminal's line discipline
        _read_until(fd, buf, rb"(?!)", time.monotonic() + 30)  # drain until the child exits
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 130
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", bytes(buf)).decode("utf-8", "replace")
    assert "Traceback" not in text and "error" not in text
    assert "cycles done 1" in text
    for account in ("CROSS", "ETHUSDT"):
        into = rf"\[ *{account}\] estimate +NORMAL → MARGIN_CALL"
        back = rf"\[ *{account}\] estimate +MARGIN_CALL → NORMAL"
        assert re.search(into, text) and re.search(back, text), account
    assert "MARGIN LEVEL     MARGIN_CALL" in text  # Binance's own event, from the fake
