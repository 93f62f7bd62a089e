"""Performance harness: ``python -m benchmarks`` (``make bench``) runs every ``bench_*.py``.

Each module exposes ``run() -> list[str]``; results are ratios to a raw floor measured in the
same run (DESIGN.md §9), so they compare across machines.
"""
