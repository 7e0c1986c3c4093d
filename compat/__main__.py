"""``python -m compat``: the app's retinaface.py and ours, side by side; exit 1 on a failure.

Prints the API table, the Numbers tables and the speed table. Exit 1 on any API error, or when a
gated result (our drop-in class, resize 1.0, threshold 0.5) has another count, a box IoU below
0.99, landmarks more than 1 px off or another ``dets[0]``; exit 2 when the harness cannot run
(no venv, no weights). Run ``make compat``, which builds ``.venv-compat`` first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from compat import pins
from compat.api import ERROR, Sides, run_check
from compat.app import AppUnavailableError, app_file_sha256, load_app
from compat.checks import APP_DEFAULT_ONNX, Driver, ModelPaths, checks


def _paths(folder: Path) -> ModelPaths:
    """The app's model layout in ``folder``: a .pth path and the ONNX copy beside it."""
    shutil.copyfile(pins.SOURCE_MODEL, folder / APP_DEFAULT_ONNX)
    return ModelPaths(
        onnx=pins.SOURCE_MODEL,
        pth=folder / "Alignment_RetinaFace.pth",
        missing=folder / "no_such_model.onnx",
        not_onnx=pins.ROOT / "tests" / "data" / "faces" / "skimage_camera.png",
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(pins.ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _ours_against_head(package: Path) -> str:
    """Whether the loaded package's code is HEAD's ``src/retinaface_coreml``, e.g. ``the code of
    1c97e8c`` or ``NOT the code of 1c97e8c (adapter.py differs)``."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        differ = [
            path.name
            for path in sorted(package.glob("*.py"))
            if subprocess.run(
                ["git", "-C", str(pins.ROOT), "show", f"HEAD:src/retinaface_coreml/{path.name}"],
                capture_output=True,
                check=False,
            ).stdout
            != path.read_bytes()
        ]
    except (OSError, subprocess.CalledProcessError):
        return "not compared (no git)"
    return (
        f"NOT the code of {head} ({', '.join(differ)} differ)" if differ else f"the code of {head}"
    )


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _header(app_sha: str) -> str:
    import onnxruntime
    import torch

    import retinaface_coreml
    from benchmarks.common import machine_line
    from retinaface_coreml.artifacts import load_manifest

    package = Path(retinaface_coreml.__file__).parent
    buckets = load_manifest().detector_model().buckets
    return "\n".join(
        [
            f"App: {pins.APP_FILE.relative_to(pins.ROOT)} (pyfaceau {pins.APP_VERSION} sdist, "
            f"unmodified, sha256 {app_sha[:16]}), openface-test {pins.OPENFACE_VERSION}, "
            f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}",
            f"Ours: retinaface_coreml {retinaface_coreml.__version__} from {package}: "
            f"{_ours_against_head(package)}; buckets {', '.join(b.name for b in buckets)}",
            f"Model path given to both: {pins.SOURCE_MODEL.relative_to(pins.ROOT)}",
            machine_line(),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds-1080p", type=int, default=10)
    parser.add_argument("--rounds-photo", type=int, default=4)
    parser.add_argument("--pause-ms", type=float, default=60.0)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed table")
    args = parser.parse_args(argv)

    if not pins.SOURCE_MODEL.exists():
        print(f"compat: {pins.SOURCE_MODEL}: missing; run `make models` first", file=sys.stderr)
        return 2
    try:
        app_sha = app_file_sha256()
        app = load_app()
    except (AppUnavailableError, ImportError) as exc:
        print(f"compat: {exc}", file=sys.stderr)
        return 2
    import onnxruntime

    import retinaface_coreml
    from benchmarks.common import FRAME_1080P
    from compat import accuracy, speed, tables
    from compat.frames import inputs, wide_photos

    onnxruntime.set_default_logger_severity(3)  # the app asks for CoreML: ORT warns on Linux
    images = inputs()
    print(_header(app_sha))

    with tempfile.TemporaryDirectory(prefix="compat-") as folder:
        paths = _paths(Path(folder))
        sides = Sides(app=Driver("app", app, paths), ours=Driver("ours", retinaface_coreml, paths))
        api_rows = [run_check(check, sides) for check in checks(images, paths)]
    print("\n## API\n")
    print(tables.api_table(api_rows))

    numbers = accuracy.measure(app, retinaface_coreml, pins.SOURCE_MODEL, images)
    print("\n## Numbers (the app's detections against ours; IoU over both sides' faces)\n")
    print(tables.summary_table(numbers))
    print()
    print(tables.numbers_table(numbers))

    if not args.no_speed:
        calls, errors = speed.contenders(app, retinaface_coreml, pins.SOURCE_MODEL)
        photos = wide_photos(images)
        frames = {FRAME_1080P: images[FRAME_1080P], **{n: images[n] for n in photos}}
        rounds = {n: args.rounds_photo for n in photos} | {FRAME_1080P: args.rounds_1080p}
        print(
            f"\n## Speed (CPU EP; median ms per call, {args.pause_ms:.0f} ms idle before each; "
            "app / ours = times faster than the app; thresholds 0.02 and 0.4 for all; the app "
            "pins its session to 1 intra-op thread, 'app, default threads' swaps in a session "
            "at ORT's defaults, as ours use)\n"
        )
        if speed.APP in calls and len(calls) > 1:
            rows = speed.measure(
                calls, frames, pool=photos, rounds=rounds, pause=args.pause_ms / 1e3
            )
            print(tables.speed_table(rows, list(calls)))
            print(f"\nLoad average after the speed runs: {_load()}")
        for name, error in errors.items():
            print(f"not measured: {name}: {error}")

    api_errors = [r for r in api_rows if r.status == ERROR]
    gate = [(r, f) for r in numbers for f in r.failures]
    print()
    for r in api_errors:
        print(f"API error: {r.call}: {r.ours}")
    for r, failure in gate:
        print(f"gate: {r.image} ({r.size}, resize {r.resize:g}, thr {r.threshold:g}): {failure}")
    failed = bool(api_errors or gate)
    print(
        f"compat: {'FAIL' if failed else 'PASS'} ({len(api_errors)} API errors, "
        f"{len(gate)} gate failures in {sum(r.gated for r in numbers)} gated results)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
