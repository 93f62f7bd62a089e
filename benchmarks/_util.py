"""Timing helpers shared by the benchmarks.

Wall-clock medians (``time.perf_counter_ns``) for micro-benchmarks, CPU time
(``time.process_time_ns``) for whole request paths where waiting on a socket must not count.
Both include the per-call overhead of invoking ``fn``; ours and the floor pay it alike.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

__all__ = ["calibrate", "compare_ns", "cpu_ns_per_call", "median_ns", "ratio_line"]


def calibrate(fn: Callable[[], object], *, min_seconds: float = 0.02) -> int:
    """How many calls of ``fn`` one timed run needs to last at least ``min_seconds``."""
    number = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        if time.perf_counter_ns() - start >= min_seconds * 1e9:
            return number
        number *= 2


def _run_ns(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(number):
        fn()
    return (time.perf_counter_ns() - start) / number


def median_ns(fn: Callable[[], object], *, repeat: int = 7, number: int | None = None) -> float:
    """Median wall-clock nanoseconds per call of ``fn`` over ``repeat`` timed runs.

    Each run makes ``number`` calls (calibrated to ~20 ms when omitted); the GC is paused while
    timing so a collection triggered by someone else's garbage does not land in one run.
    """
    count = calibrate(fn) if number is None else number
    enabled = gc.isenabled()
    gc.disable()
    try:
        return statistics.median(_run_ns(fn, count) for _ in range(repeat))
    finally:
        if enabled:
            gc.enable()


def compare_ns(
    candidate: Callable[[], object], floor: Callable[[], object], *, repeat: int = 31
) -> tuple[float, float]:
    """Median ns per call of ``candidate`` and of ``floor``, timed in alternation.

    Many short (~5 ms) runs, alternating between the two, expose both to the same frequency
    scaling and background load, so on a busy machine the ratio is steadier than two separate
    medians of long runs.
    """
    count = max(calibrate(candidate, min_seconds=0.005), calibrate(floor, min_seconds=0.005))
    ours: list[float] = []
    raw: list[float] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            ours.append(_run_ns(candidate, count))
            raw.append(_run_ns(floor, count))
    finally:
        if enabled:
            gc.enable()
    return statistics.median(ours), statistics.median(raw)


def cpu_ns_per_call(fn: Callable[[], object], number: int) -> float:
    """CPU nanoseconds (user + system of this process) per call of ``fn`` over ``number`` calls."""
    start = time.process_time_ns()
    for _ in range(number):
        fn()
    return (time.process_time_ns() - start) / number


def ratio_line(name: str, ours_ns: float, floor_ns: float) -> str:
    """``"name: X µs (ratio Y.YYx floor)"``."""
    return f"{name}: {ours_ns / 1000:.2f} µs (ratio {ours_ns / floor_ns:.2f}x floor)"
