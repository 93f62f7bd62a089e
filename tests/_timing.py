"""The one factor for every wall-clock bound of the tests: ``BMA_TEST_TIMEOUT_SCALE``.

Tests on real sockets, child processes and the wall clock (the fake exchange, Redis, the
examples) never assert a duration: they wait for a condition, bounded by a generous deadline,
and every liveness threshold they configure is far above what a loaded machine stalls for. The
factor (default 1, never less) stretches all of those together on a machine slower still.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

__all__ = ["SCALE", "scaled", "until"]

SCALE = max(1.0, float(os.environ.get("BMA_TEST_TIMEOUT_SCALE", "1")))


def scaled(seconds: float) -> float:
    """A generous timeout, stretched by ``BMA_TEST_TIMEOUT_SCALE`` on slow machines."""
    return seconds * SCALE


async def until(predicate: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Wait until ``predicate()`` holds, for at most ``scaled(limit)``; fail naming ``what``.

    The limit only bounds a failure: a passing test waits for the condition, never for it.
    """
    try:
        async with asyncio.timeout(scaled(limit)):
            # Polling on purpose: the conditions are states of streams, exchanges and printed
            # output, which offer no event to wait on (and must not grow one just for tests).
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
