"""Run the benchmarks: ``python -m benchmarks [NAME ...]``.

Imports every ``benchmarks/bench_*.py`` (or only those whose name contains one of the NAME
arguments), calls its ``run() -> list[str]`` and prints the lines. A benchmark that raises is
reported and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence

import benchmarks


def discover(filters: Sequence[str] = ()) -> list[str]:
    """Module names of the benchmarks to run, sorted, filtered by substring."""
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(benchmarks.__path__)
        if info.name.startswith("bench_")
    )
    if filters:
        names = [name for name in names if any(f in name for f in filters)]
    return names


def main(argv: Sequence[str]) -> int:
    """Run the selected benchmarks and print their result lines; 0 when all succeeded."""
    failed = 0
    names = discover(argv)
    if not names:
        print(f"no benchmark matches {list(argv)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            run: Callable[[], list[str]] = module.run
            lines = run()
        except Exception:
            failed += 1
            traceback.print_exc()
            continue
        for line in lines:
            print(f"  {line}")
        print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
