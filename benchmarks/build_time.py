"""`make models` wall time, RetinaFace alone: this branch against a baseline commit, side by side.

Each side is a fresh ``git clone`` of this repository checked out at its commit, in a temp
folder, built with ``make models`` from nothing (venv, fetch, build, wheel) against the same
warm pip cache and the same Python; the two alternate, round by round, so drift on a shared
machine falls on both. Prints the seconds, the ratio and the bar (issue 13: within 20 % of
today's time), and each wheel's size and sha256.

    python benchmarks/build_time.py                       # baseline f55449d vs HEAD, 1 round
    python benchmarks/build_time.py --rounds 3 --keep /tmp/bench-build
    python benchmarks/build_time.py --added-model mtl     # + the cost of one more model

``--added-model NAME`` (repeatable) is the hook for per-model cost: it builds the candidate again
with ``make models MODELS=retinaface,NAME`` and reports the extra seconds and wheel bytes. It
needs a Makefile that takes ``MODELS=`` (the multi-model build); until then it says so and stops.
Standard library only. Exit 0 when everything ran (a miss of the bar is a result), 2 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "f55449d"
BAR = 1.20
WHEEL_GLOB = "retinaface_coreml-*.whl"


class BenchError(Exception):
    """A side could not be built; the message names it and where its log is."""


@dataclass(frozen=True, kw_only=True)
class Build:
    """One timed `make models` in a fresh clone, e.g. 63.2 s, a 9.6 MB wheel."""

    label: str
    seconds: float
    wheel_bytes: int
    wheel_sha256: str


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def clone(ref: str, into: Path) -> Path:
    """A fresh clone of this repository at ``ref`` (committed state only): ``into``."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    _git("clone", "--quiet", "--no-checkout", str(ROOT), str(into))
    _git("checkout", "--quiet", "--detach", commit, cwd=into)
    return into


def default_python() -> str:
    """The interpreter both sides get: what this branch's scripts/find_python.sh picks."""
    script = ROOT / "scripts" / "find_python.sh"
    done = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(done.stderr.strip())
    return done.stdout.strip()


def make_models(tree: Path, label: str, python: str, *extra: str) -> Build:
    """Time ``make models`` from nothing in ``tree``; its output goes to ``tree/make.log``."""
    for stale in ("dist", ".venv", "models/build", "src/retinaface_coreml/models"):
        shutil.rmtree(tree / stale, ignore_errors=True)
    log = tree / "make.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        code = subprocess.run(
            ["make", "models", f"PYTHON={python}", *extra],
            cwd=tree,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    seconds = time.perf_counter() - started
    wheels = sorted((tree / "dist").glob(WHEEL_GLOB))
    if code != 0 or len(wheels) != 1:
        raise BenchError(f"{label}: make models exited {code}; see {log}")
    data = wheels[0].read_bytes()
    return Build(
        label=label,
        seconds=seconds,
        wheel_bytes=len(data),
        wheel_sha256=hashlib.sha256(data).hexdigest(),
    )


def takes_models(tree: Path) -> bool:
    """Whether this tree's Makefile builds a subset with ``MODELS=``."""
    return "MODELS" in (tree / "Makefile").read_text()


def render(rows: list[tuple[str, list[Build]]]) -> str:
    header = f"{'build':<34} {'median s':>9} {'runs s':<20} {'wheel bytes':>12}  sha256"
    lines = [header, "-" * (len(header) + 12)]
    for label, builds in rows:
        runs = ", ".join(f"{b.seconds:.1f}" for b in builds)
        last = builds[-1]
        median = statistics.median(b.seconds for b in builds)
        lines.append(
            f"{label:<34} {median:>9.1f} {runs:<20} {last.wheel_bytes:>12}  "
            f"{last.wheel_sha256[:16]}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/build_time.py", description=__doc__)
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with")
    parser.add_argument("--candidate", default="HEAD", help="commit to measure")
    parser.add_argument("--rounds", type=int, default=1, help="builds per side, alternating")
    parser.add_argument("--python", help="interpreter for both sides (default: find_python.sh)")
    parser.add_argument("--keep", type=Path, help="build here and keep the clones and logs")
    parser.add_argument(
        "--added-model", action="append", default=[], help="per-model cost (needs MODELS=)"
    )
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        python = args.python or default_python()
        work.mkdir(parents=True, exist_ok=True)
        base = clone(args.baseline, work / "baseline")
        cand = clone(args.candidate, work / "candidate")
        baseline, candidate = [], []
        for round_ in range(args.rounds):
            # Alternate who goes first, so a slow spell on the shared machine hits both sides.
            order = [(base, baseline), (cand, candidate)]
            for tree, into in order if round_ % 2 == 0 else order[::-1]:
                label = f"{tree.name} {_git('rev-parse', '--short', 'HEAD', cwd=tree)}"
                into.append(make_models(tree, label, python))
                print(f"round {round_ + 1}: {label}: {into[-1].seconds:.1f} s", flush=True)
        rows = [(baseline[0].label, baseline), (candidate[0].label, candidate)]
        for name in args.added_model:
            if not takes_models(cand):
                raise BenchError(
                    f"--added-model {name}: {cand / 'Makefile'} has no MODELS=; "
                    "the per-model cost needs the multi-model build"
                )
            build = make_models(cand, f"candidate + {name}", python, f"MODELS=retinaface,{name}")
            rows.append((build.label, [build]))
    except (BenchError, OSError) as exc:
        print(f"build_time: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(render(rows))
    base_s = statistics.median(b.seconds for b in baseline)
    cand_s = statistics.median(b.seconds for b in candidate)
    ratio = cand_s / base_s
    verdict = "PASS" if ratio <= BAR else "MISS"
    print(
        f"\nmake models, RetinaFace alone: {cand_s:.1f} s vs {base_s:.1f} s at "
        f"{args.baseline}: ratio {ratio:.3f} (bar {BAR:.2f}) {verdict}"
    )
    for label, builds in rows[2:]:
        extra_s = builds[0].seconds - cand_s
        extra_b = builds[0].wheel_bytes - candidate[-1].wheel_bytes
        print(f"{label}: +{extra_s:.1f} s build time, +{extra_b} wheel bytes")
    print(
        f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
        f"python {python}, {args.rounds} round(s); one Linux box shared with other jobs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
