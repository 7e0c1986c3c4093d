"""The README's speed table: the app's class against ours, each contender in its own process.

``make compat`` times its contenders round-robin in one process, where one contender's threads
(the app's torch, ORT's spinning workers) can slow the next one down. Here every contender runs
alone in a fresh process of ``.venv-compat`` (the app's pinned torch and onnxruntime), one after
another, the order rotating every run; a slow contender cannot inflate another's figure. Each
child builds one detector, warms it up, then times ``--calls`` calls on each of the six group
photos as 1920x1080 frames (their top 1080 rows), frames interleaved, at the app's default
thresholds (0.02, 0.4), CPU EP:

* app: pyfaceau 1.4.1's ``ONNXRetinaFaceDetector(path)``, unmodified (it pins its ORT session
  to one intra-op thread); ``app, default threads`` is that object with a session at ORT's
  defaults, for reference;
* ours, same path: our ``ONNXRetinaFaceDetector(path)`` (the 1080x1920 full-resolution bucket);
* ours, fast default: ``FaceDetector(backend="cpu", score_threshold=0.02)`` (small buckets).

Ours is the working tree's ``src/`` (``make models`` first). Each child reports its sessions'
``intra_op_num_threads`` and the OS threads it started (``benchmarks/threads.py``).
Run: ``make bench-app`` (builds ``.venv-compat`` when missing), or
``.venv/bin/python -m benchmarks.speed_per_process [--runs N] [--calls N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from compat.speed import APP, APP_THREADS, DROP_IN, FAST

ROOT = Path(__file__).resolve().parent.parent
COMPAT_PYTHON = ROOT / ".venv-compat" / "bin" / "python"
RESULT = "RESULT "
WARMUP_CALLS = 2
# The app as shipped first: the ratios' reference.
CONTENDERS = (APP, APP_THREADS, DROP_IN, FAST)


@dataclass(frozen=True, kw_only=True)
class ChildRun:
    """One contender's process: seconds per call per frame, faces per frame, threads, load."""

    name: str
    run: int
    seconds: dict[str, list[float]]
    faces: dict[str, int]
    threads: str
    detail: str
    versions: str
    load_before: float

    @property
    def median_ms(self) -> float:
        return statistics.median(s for values in self.seconds.values() for s in values) * 1e3


def child(name: str, calls: int, pause: float) -> dict:
    """Build one contender in this process, time it, and return the record the parent reads."""
    from benchmarks.common import SOURCE_MODEL, frames_1080p, load_photos
    from benchmarks.threads import describe, ort_intra_op_settings, os_threads
    from compat.speed import makers

    frames = frames_1080p(load_photos())
    before = os_threads()
    with contextlib.redirect_stdout(io.StringIO()):  # the app prints as it loads and detects
        if name in (APP, APP_THREADS):
            from compat.app import load_app

            app, ours, detail = load_app(), None, "pyfaceau 1.4.1 retinaface.py"
        else:
            import retinaface_coreml

            app, ours = None, retinaface_coreml
            detail = f"retinaface_coreml from {Path(retinaface_coreml.__file__).parent}"
        call = makers(app, ours, SOURCE_MODEL)[name]()
        results = {}
        for _ in range(WARMUP_CALLS):
            for frame_name, frame in frames.items():
                results[frame_name] = call(frame)
        after = os_threads()
        seconds: dict[str, list[float]] = {frame_name: [] for frame_name in frames}
        for _ in range(calls):
            for frame_name, frame in frames.items():
                time.sleep(pause)
                start = time.perf_counter()
                call(frame)
                seconds[frame_name].append(time.perf_counter() - start)
    started = None if before is None or after is None else after - before
    import cv2
    import numpy
    import onnxruntime

    versions = (
        f"onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}, "
        f"opencv {cv2.__version__}"
    )
    if "torch" in sys.modules:
        versions += f", torch {sys.modules['torch'].__version__}"
    return {
        "versions": versions,
        "seconds": seconds,
        "faces": {n: len(r[0] if isinstance(r, tuple) else r) for n, r in results.items()},
        "threads": describe(ort_intra_op_settings(), started),
        "detail": detail,
    }


def spawn(python: Path, name: str, run: int, *, calls: int, pause_ms: float) -> ChildRun:
    """Run one contender in a fresh ``python`` process and parse its record."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = [str(python), "-m", "benchmarks.speed_per_process", "--child", name]
    command += ["--calls", str(calls), "--pause-ms", str(pause_ms)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{name}: child exited {done.returncode}: {last}")
    record = json.loads(lines[-1][len(RESULT) :])
    return ChildRun(name=name, run=run, load_before=load, **record)


def _ratio(app: float, ours: float) -> str:
    return f"{app / ours:.1f}x"


def report(runs: list[ChildRun], *, calls: int, python: Path) -> str:
    """The contender table, the per-frame table, and how they were measured."""
    from benchmarks.common import load_average, machine_line, markdown_table

    names = [n for n in CONTENDERS if any(r.name == n for r in runs)]
    by_name = {n: [r for r in runs if r.name == n] for n in names}
    pooled = {
        n: statistics.median(s for r in rs for v in r.seconds.values() for s in v) * 1e3
        for n, rs in by_name.items()
    }
    frames = list(by_name[names[0]][0].seconds)
    rows = []
    for n, rs in by_name.items():
        per_run = [r.median_ms for r in rs]
        ratio, spread = "–", "–"
        if APP in by_name and n != APP:
            ratio = _ratio(pooled[APP], pooled[n])
            app_by_run = {r.run: r.median_ms for r in by_name[APP]}
            each = [app_by_run[r.run] / r.median_ms for r in rs if r.run in app_by_run]
            spread = f"{min(each):.1f}-{max(each):.1f}x" if each else "–"
        rows.append(
            [
                n,
                rs[0].threads,
                str(len(rs)),
                str(sum(len(v) for r in rs for v in r.seconds.values())),
                f"{pooled[n]:.1f}",
                f"{min(per_run):.1f}-{max(per_run):.1f}",
                ratio,
                spread,
            ]
        )
    frame_rows = []
    for f in frames:
        cells = [f"{f} (top 1080 rows)"]
        ms = {
            n: statistics.median(s for r in rs for s in r.seconds[f]) * 1e3
            for n, rs in by_name.items()
        }
        for n in names:
            cells.append(f"{ms[n]:.1f}")
            if APP in ms and n != APP:
                cells.append(_ratio(ms[APP], ms[n]))
        cells.append(" / ".join(str(by_name[n][0].faces[f]) for n in names))
        frame_rows.append(cells)
    frame_headers = ["frame"]
    for n in names:
        frame_headers += [f"{n} ms"] + (["app / this"] if APP in by_name and n != APP else [])
    frame_headers.append("faces (" + " / ".join(names) + ")")
    loads = [r.load_before for r in runs]
    processes = len(runs) // len(names)
    lines = [
        machine_line(),
        f"Children: {python} (each contender alone in a fresh process, {processes} process(es) per "
        f"contender run in turn, order rotating; {WARMUP_CALLS} warm-up calls per frame, then "
        f"{calls} timed calls per frame, the {len(frames)} frames interleaved). "
        + "; ".join(
            f"{n}: {by_name[n][0].detail} ({by_name[n][0].versions})"
            for n in names
            if n in (APP, DROP_IN)
        ),
        f"1-minute load average before each child: {min(loads):.2f}-{max(loads):.2f}; "
        f"after the last: {load_average()}.",
        "",
        markdown_table(
            [
                "contender",
                "ORT threads (intra-op setting; OS threads started)",
                "processes",
                "calls",
                "median ms per frame",
                "per-process medians ms",
                "app / this",
                "app / this per run",
            ],
            rows,
        ),
        "",
        markdown_table(frame_headers, frame_rows),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="processes per contender")
    parser.add_argument("--calls", type=int, default=5, help="timed calls per frame per process")
    parser.add_argument("--pause-ms", type=float, default=0.0, help="idle before each call")
    parser.add_argument("--python", type=Path, default=COMPAT_PYTHON)
    parser.add_argument("--only", choices=CONTENDERS, action="append", help="repeatable")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        record = child(args.child, args.calls, args.pause_ms / 1e3)
        print(RESULT + json.dumps(record), flush=True)
        return 0
    if not args.python.exists():
        print(
            f"speed_per_process: {args.python}: missing; run `make bench-app` "
            "(or python3 -m compat.setup_env) to build .venv-compat",
            file=sys.stderr,
        )
        return 2
    names = args.only or list(CONTENDERS)
    runs, errors = [], {}
    for run in range(args.runs):
        for k in range(len(names)):
            name = names[(run + k) % len(names)]
            if name in errors:
                continue
            try:
                runs.append(spawn(args.python, name, run, calls=args.calls, pause_ms=args.pause_ms))
            except RuntimeError as exc:
                errors[name] = str(exc)
            print(f"run {run + 1}/{args.runs}: {name} done", file=sys.stderr, flush=True)
    if runs:
        print(report(runs, calls=args.calls, python=args.python))
    for error in errors.values():
        print(f"not measured: {error}")
    return 0 if runs else 1


if __name__ == "__main__":
    sys.exit(main())
