"""What a packaged session adds to ``run``: ours against a raw session on the same bucket file.

One process, CPU EP. For each of RetinaFace (bucket 640x640), MTL and STAR (batch 1): a raw
``onnxruntime.InferenceSession(<bucket file>)`` and our ``retinaface_coreml.onnxruntime
.InferenceSession(<source file>)``, fed an input of the bucket's shape, so ours serves that very
bucket file (checked through ``last_served`` after the warm-up, and its outputs must equal the
raw session's). Calls alternate raw, ours / ours, raw, pair after pair; the table gives both
medians, the overhead of the medians and the median of the per-pair ratios (robust to load that
comes and goes), and both sides' ORT intra-op settings and OS threads started.
Run: ``python -m benchmarks.session_overhead [--seconds S]`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import onnxruntime

from benchmarks.common import load_average, machine_line, markdown_table, verdict
from benchmarks.packaged import (
    CPU_EP,
    Target,
    feed,
    measurable,
)
from benchmarks.threads import describe, ort_sessions, os_threads

TARGET = 0.05
WARMUP_CALLS = 3
MIN_PAIRS, MAX_PAIRS = 20, 400


def measure(target: Target, seconds: float) -> list[str]:
    """One table row for ``target``."""
    import retinaface_coreml.onnxruntime as ort

    x = feed(target)
    threads_0 = os_threads()
    raw = onnxruntime.InferenceSession(str(target.bucket_file), providers=[CPU_EP])
    raw_out = raw.run(None, x)
    threads_1, sessions_1 = os_threads(), {id(s) for s in ort_sessions()}
    ours = ort.InferenceSession(str(target.source), providers=[CPU_EP])
    ours_out = ours.run(None, x)
    threads_2 = os_threads()
    inner = [s for s in ort_sessions() if id(s) not in sessions_1]
    raw_threads = describe(
        [raw.get_session_options().intra_op_num_threads],
        None if threads_0 is None else threads_1 - threads_0,
    )
    ours_threads = describe(
        [s.get_session_options().intra_op_num_threads for s in inner],
        None if threads_1 is None else threads_2 - threads_1,
    )
    for _ in range(WARMUP_CALLS):
        raw.run(None, x)
        ours.run(None, x)
    served = ours.last_served
    same = all(np.array_equal(a, b) for a, b in zip(raw_out, ours_out, strict=True))
    start = time.perf_counter()
    raw.run(None, x)
    pairs = int(min(MAX_PAIRS, max(MIN_PAIRS, seconds / 2 / (time.perf_counter() - start))))
    times: dict[str, list[float]] = {"raw": [], "ours": []}
    sides = {"raw": raw, "ours": ours}
    for i in range(pairs):
        for side in ("raw", "ours") if i % 2 == 0 else ("ours", "raw"):
            start = time.perf_counter()
            sides[side].run(None, x)
            times[side].append(time.perf_counter() - start)
    raw_ms, ours_ms = (statistics.median(times[s]) * 1e3 for s in ("raw", "ours"))
    paired = statistics.median(o / r for o, r in zip(times["ours"], times["raw"], strict=True))
    overhead = ours_ms / raw_ms - 1
    return [
        target.name,
        f"{target.bucket} {'x'.join(map(str, next(iter(target.inputs.values()))))}",
        f"{ours.packaged_model}; {served.bucket}, {served.backend}",
        "yes" if same else "NO",
        str(pairs),
        f"{raw_ms:.2f}",
        f"{ours_ms:.2f}",
        f"{overhead:+.1%}",
        f"{paired - 1:+.1%}",
        raw_threads,
        ours_threads,
        verdict(
            overhead <= TARGET
            and served.bucket == target.bucket
            and ours.packaged_model == target.name
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per model")
    args = parser.parse_args(argv)
    chosen = measurable("session_overhead")
    if chosen is None:
        return 2
    found, missing = chosen
    load = load_average()
    rows = [measure(target, args.seconds) for target in found]
    rows += [[m.name, "–", f"not measured: {m.reason}", *["–"] * 8, "MISSING"] for m in missing]
    print(f"\n{machine_line()}")
    print(
        f"Load average at the start {load}, at the end {load_average()}. "
        f"Calls alternate raw/ours; target: ours' median at most {TARGET:.0%} over raw's.\n"
    )
    print(
        markdown_table(
            [
                "model",
                "bucket, input",
                "served (packaged_model; last_served)",
                "outputs equal",
                "pairs",
                "raw ms",
                "ours ms",
                "overhead (medians)",
                "overhead (paired)",
                "raw: ORT threads",
                "ours: ORT threads",
                "result",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
