"""What ``install()`` plus the first session costs over a raw onnxruntime session on one file.

Fresh processes, CPU EP, for each packaged model (RetinaFace, MTL, STAR) and its source file.
Each child has numpy, onnxruntime (and, for ours, retinaface_coreml) imported before its clock
starts, so import cost is not counted here (``benchmarks/startup.py`` measures it). Three
children a round, run in turn, the order alternating:

* raw: ``onnxruntime.InferenceSession(path)``, ready; its first run; a second session;
* ours, 1st process: ``retinaface_coreml.install()``, then the same call (served by the
  package), ready; its first run; a second session on the same file in the same process (what
  the runtime remembers of the file is warm now);
* ours, 2nd process: the same again in a new process that shares the 1st one's user cache
  directory (``XDG_CACHE_HOME``, fresh each round): whatever the runtime keeps on disk is warm.

The first run is on an input of the packaged bucket's shape. A packaged session may open its
bucket's session lazily, at the first run, so the table gives both marks, each against raw's:
ready (the constructor returned) and the first result (ready + first run). Medians over rounds.
Run: ``python -m benchmarks.install_cost [--rounds N]`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.packaged import (
    CPU_EP,
    ROOT,
    Target,
    feed,
    measurable,
)

TARGET_MS = 50.0
RESULT = "RESULT "
RAW, FIRST, SECOND = "raw", "ours, 1st process", "ours, 2nd process"


def child(side: str, target: Target) -> dict:
    """Time one side in this fresh process: ms to ready, to the first result, to a 2nd session."""
    import onnxruntime

    x = feed(target)
    if side != RAW:
        import retinaface_coreml
    start = time.perf_counter()
    if side != RAW:
        retinaface_coreml.install()
    session = onnxruntime.InferenceSession(str(target.source), providers=[CPU_EP])
    ready = time.perf_counter()
    session.run(None, x)
    first = time.perf_counter()
    onnxruntime.InferenceSession(str(target.source), providers=[CPU_EP])
    second = time.perf_counter()
    return {
        "ready_ms": (ready - start) * 1e3,
        "first_run_ms": (first - ready) * 1e3,
        "second_ms": (second - first) * 1e3,
        "packaged": getattr(session, "packaged_model", None),
    }


def _dump(target: Target) -> str:
    return json.dumps(dataclasses.asdict(target), default=str)


def _load(text: str) -> Target:
    record = json.loads(text)
    return Target(
        name=record["name"],
        source=Path(record["source"]),
        bucket=record["bucket"],
        bucket_file=Path(record["bucket_file"]),
        inputs={k: tuple(v) for k, v in record["inputs"].items()},
        input_types=record["input_types"],
    )


def spawn(side: str, target: Target, cache: Path) -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.install_cost",
            "--child",
            side,
            "--target",
            _dump(target),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{target.name}, {side}: child exited {done.returncode}: {last}")
    return json.loads(lines[-1][len(RESULT) :])


def measure(target: Target, rounds: int) -> dict[str, list[dict]]:
    """Side name to its children's records, ``rounds`` of each."""
    records: dict[str, list[dict]] = {RAW: [], FIRST: [], SECOND: []}
    for r in range(rounds):
        with tempfile.TemporaryDirectory(prefix="install-cost-") as cache:
            order = (RAW, FIRST, SECOND) if r % 2 == 0 else (FIRST, SECOND, RAW)
            for side in order:
                records[side].append(spawn(side, target, Path(cache)))
    return records


def _median(records: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in records)


def rows_for(target: Target, records: dict[str, list[dict]]) -> list[list[str]]:
    """Five rows: raw's two sessions, ours' 1st and 2nd session, ours' 2nd process; each of
    ours against raw's session of the same rank."""
    from benchmarks.common import verdict

    raw_ready = _median(records[RAW], "ready_ms")
    raw_result = statistics.median(r["ready_ms"] + r["first_run_ms"] for r in records[RAW])
    size = f"{target.source.stat().st_size / 1e6:.1f} MB"
    rows = []
    raw_second = _median(records[RAW], "second_ms")
    for side, what in (
        (RAW, "onnxruntime.InferenceSession, 1st session"),
        (RAW, "onnxruntime.InferenceSession, 2nd session, same file"),
        (FIRST, "install() + 1st session, fresh process"),
        (FIRST, "2nd session, same process, same file"),
        (SECOND, "install() + 1st session, 2nd process, same cache dir"),
    ):
        second = "2nd session" in what
        if second:
            ready, result = _median(records[side], "second_ms"), None
        else:
            ready = _median(records[side], "ready_ms")
            result = statistics.median(r["ready_ms"] + r["first_run_ms"] for r in records[side])
        # The bar is the 2nd process's: the issue sets it knowing a full sha256 of MTL alone
        # takes longer than 50 ms, and asks for the hash to be remembered. The very first
        # process on a machine must hash each file once; its row is printed, not gated.
        gated = what.startswith("install() + 1st session, 2nd process")
        verdicts = (
            f"ready {verdict(ready - raw_ready <= TARGET_MS)}, "
            f"1st result {verdict(result - raw_result <= TARGET_MS)}"
            if gated and result is not None
            else "–"
        )
        rows.append(
            [
                target.name,
                size,
                what,
                str(len(records[side])),
                f"{ready:.1f}",
                "–" if side == RAW else f"{ready - (raw_second if second else raw_ready):+.1f}",
                "–" if result is None else f"{result:.1f}",
                "–" if side == RAW or result is None else f"{result - raw_result:+.1f}",
                str(records[side][0]["packaged"]),
                verdicts,
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--child", choices=(RAW, FIRST, SECOND), help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(RESULT + json.dumps(child(args.child, _load(args.target))), flush=True)
        return 0

    from benchmarks.common import load_average, machine_line, markdown_table

    chosen = measurable("install_cost")
    if chosen is None:
        return 2
    found, missing = chosen
    load = load_average()
    rows = []
    for target in found:
        rows += rows_for(target, measure(target, args.rounds))
    rows += [[m.name, "–", f"not measured: {m.reason}", *["–"] * 6, "MISSING"] for m in missing]
    print(f"\n{machine_line()}")
    print(
        f"Fresh processes, {args.rounds} rounds of raw / ours 1st process / ours 2nd process, "
        f"medians. Load average at the start {load}, at the end {load_average()}. Target: "
        f"install() + the 1st session at most {TARGET_MS:.0f} ms over raw in a process after "
        "the first (the first process on a machine hashes each file once; printed, not gated).\n"
    )
    print(
        markdown_table(
            [
                "model",
                "source size",
                "what (clock starts after the imports)",
                "processes",
                "ms to ready",
                "over raw ms",
                "ms to 1st result (ready + 1st run)",
                "over raw ms",
                "packaged_model",
                "result",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
