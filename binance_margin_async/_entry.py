"""Console-script entry points that stay quiet on Ctrl-C during start-up.

Importing the client (aiohttp, websockets, the models) takes a noticeable moment on a slow
machine; a Ctrl-C in that moment would print a traceback from the middle of an import. Each
entry point imports its command inside a guard instead and exits 130 like the command itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

__all__ = ["demo_or_monitor", "fake", "monitor"]

INTERRUPTED = 130  # 128 + SIGINT


def _run(module: str, function: str, argv: Sequence[str] | None) -> int:
    try:
        entry = getattr(importlib.import_module(module, __package__), function)
    except KeyboardInterrupt:
        return INTERRUPTED
    result: int = entry(argv)
    return result


def demo_or_monitor(argv: Sequence[str] | None = None) -> int:
    """``python -m binance_margin_async``."""
    return _run(".cli", "main", argv)


def monitor(argv: Sequence[str] | None = None) -> int:
    """``binance-margin-monitor``."""
    return _run(".cli", "monitor_main", argv)


def fake(argv: Sequence[str] | None = None) -> int:
    """``binance-margin-fake``."""
    return _run(".testing.__main__", "main", argv)
