"""Smoke test of the stream benchmark's harness: it runs and counts every event.

No timing is asserted (CI is a loaded machine); this only keeps ``make bench``'s stream benchmark
from rotting silently, as it once did when its stand-in client lacked an attribute the stream
came to need.
"""

from __future__ import annotations

from benchmarks import bench_stream


def test_measure_counts_every_event_of_both_sides() -> None:
    # 30 frames cover all three event kinds (70/20/10) and all three accounts; two rounds run
    # both orders of the interleaving.
    result = bench_stream.measure(frames=30, rounds=2)
    assert result.floor_seen == [30, 30]
    assert result.ours_seen == [30, 30]
    assert len(result.floor) == len(result.ours) == 2
    assert len(result.paired_ratios()) == 2


def test_latency_delivers_every_paced_event() -> None:
    lat = bench_stream.latencies(total=20, rate=1000)
    assert len(lat) == 20
    assert lat == sorted(lat)


def test_the_key_sharing_report_runs() -> None:
    # A performance fact, reported by make bench and never asserted: only that it still runs.
    assert isinstance(bench_stream.wire_keys_shared(), bool)
