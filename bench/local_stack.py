"""How long a warm local stack takes to start and to stop (binaries already built).

Run: ``.venv/bin/python -m bench.local_stack [runs]``. Prints one line per run and the median.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from canary.local import binaries, stack


def main(runs: int) -> None:
    binaries.ensure_built()
    ups, downs = [], []
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory(prefix="canary-bench-") as folder:
            began = time.perf_counter()
            stack.up(stack.StackOptions(state_dir=Path(folder)))
            started = time.perf_counter()
            stack.down(Path(folder))
            stopped = time.perf_counter()
        ups.append(started - began)
        downs.append(stopped - started)
        print(f"run {run}: up {ups[-1]:.2f}s (API ready, 2 nodes Ready, Prometheus ready), down {downs[-1]:.2f}s")
    print(f"median of {runs}: up {statistics.median(ups):.2f}s, down {statistics.median(downs):.2f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
