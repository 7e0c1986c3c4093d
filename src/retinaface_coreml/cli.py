"""``python -m retinaface_coreml``: detect, info, warmup, compile (argparse; no logic beyond I/O).

``detect IMAGE... --json`` prints one JSON list, one entry per image, in argument order::

    [{"image": "a.jpg", "width": 1920, "height": 1280, "bucket": "384x640", "backend": "cpu",
      "faces": [{"box": [x1, y1, x2, y2], "score": 0.9987,
                 "landmarks": [[x, y], [x, y], [x, y], [x, y], [x, y]]}]}]

Coordinates are in the image's pixels (2 decimals), faces best score first, landmarks in the
model's order (eyes, nose tip, mouth corners). Errors a user can fix (unreadable image,
tampered artifact, unknown bucket or backend, bad threshold) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retinaface_coreml import __version__
from retinaface_coreml.errors import RetinaFaceError

if TYPE_CHECKING:
    import numpy as np

    from retinaface_coreml.faces import Face

EXIT_USER_ERROR = 2


class InputError(RetinaFaceError):
    """A command-line input (an image path, an output path) that cannot be used."""


def _models_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-dir",
        type=Path,
        metavar="DIR",
        help="models and manifest.json to use "
        "instead of the installed ones (e.g. a build's output)",
    )


def _detector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bucket",
        default="auto",
        help="'auto' (fast: the closest small bucket), 'full' (full resolution: the smallest "
        "bucket holding the frame unshrunk) or a bucket name (HxW)",
    )
    parser.add_argument("--backend", default="auto", choices=["auto", "cpu", "coreml"])
    _models_dir_option(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m retinaface_coreml", description="RetinaFace face detection."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True)

    detect = commands.add_parser("detect", help="detect faces in image files")
    detect.add_argument("images", nargs="+", metavar="IMAGE")
    detect.add_argument("--json", action="store_true", help="print a JSON list (see --help)")
    detect.add_argument(
        "--draw",
        metavar="OUT",
        help="write the image with boxes drawn to OUT (a directory when given several images)",
    )
    detect.add_argument("--score-threshold", type=float, default=0.5, metavar="T")
    _detector_options(detect)

    info = commands.add_parser("info", help="version, backend, buckets, manifest check")
    info.add_argument("--json", action="store_true")
    _models_dir_option(info)

    warmup = commands.add_parser("warmup", help="prepare every bucket now (installers, CI)")
    _detector_options(warmup)

    compile_ = commands.add_parser(
        "compile",
        help="compile one bucket's CoreML cache entry in this process "
        "(what the detector starts in the background; `warmup` is the command for people)",
    )
    compile_.add_argument("--model", default="retinaface", help="packaged model (recipe name)")
    compile_.add_argument("--bucket", required=True, help="bucket name (e.g. 384x640)")
    compile_.add_argument(
        "--options", default=None, help="CoreML provider options as JSON (default: the recipe's)"
    )
    _models_dir_option(compile_)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return _COMMANDS[args.command](args)
    except (RetinaFaceError, ValueError) as exc:
        # RetinaFaceError covers files and names; plain ValueError is a threshold out of range.
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


def read_image(path: str) -> np.ndarray:
    """Decode an image file as BGR uint8; raise InputError naming the path when it cannot."""
    import cv2
    import numpy as np

    try:
        data = np.fromfile(path, dtype=np.uint8)  # imdecode also copes with non-ASCII paths
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read ({exc.strerror}); pass an existing image file"
        ) from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path}: not an image OpenCV can decode; pass a JPEG, PNG, BMP or TIFF")
    return image


def _draw(image: np.ndarray, faces: list[Face], out: Path) -> None:
    import cv2

    canvas = image.copy()
    thickness = max(2, round(max(image.shape[:2]) / 500))
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), thickness)
        cv2.putText(
            canvas,
            f"{face.score:.2f}",
            (x1, max(0, y1 - 2 * thickness)),
            cv2.FONT_HERSHEY_SIMPLEX,
            thickness / 3,
            (0, 255, 0),
            thickness,
        )
        for x, y in face.landmarks:
            cv2.circle(canvas, (round(x), round(y)), thickness + 1, (0, 0, 255), -1)
    try:
        written = cv2.imwrite(str(out), canvas)
    except cv2.error:
        written = False
    if not written:
        raise InputError(f"{out}: cannot write the drawing; use a writable .jpg or .png path")


def _draw_target(draw: str, image_path: str, many: bool) -> Path:
    """Where ``--draw`` puts one image, e.g. ``out/sample1.jpg`` when OUT is a directory."""
    out = Path(draw)
    if many or out.is_dir():
        out.mkdir(parents=True, exist_ok=True)
        return out / Path(image_path).name
    return out


def cmd_detect(args: argparse.Namespace) -> int:
    from retinaface_coreml.detector import FaceDetector

    detector = FaceDetector(
        backend=args.backend,
        score_threshold=args.score_threshold,
        bucket=args.bucket,
        models_dir=args.models_dir,
    )
    many = len(args.images) > 1
    records: list[dict[str, Any]] = []
    for path in args.images:
        image = read_image(path)
        faces = detector.detect(image)
        if args.draw:
            _draw(image, faces, _draw_target(args.draw, path, many))
        record = {
            "image": path,
            "width": image.shape[1],
            "height": image.shape[0],
            "bucket": detector.bucket,
            "backend": detector.backend,
            "faces": [face.to_dict(ndigits=2) for face in faces],
        }
        records.append(record)
        if not args.json:
            _print_detect(record)
    if args.json:
        print(json.dumps(records, indent=2))
    return 0


def _print_detect(record: dict[str, Any]) -> None:
    faces = record["faces"]
    print(
        f"{record['image']}: {len(faces)} face{'' if len(faces) == 1 else 's'} "
        f"({record['width']}x{record['height']}, bucket {record['bucket']}, {record['backend']})"
    )
    for face in faces:
        box = ", ".join(f"{v:.0f}" for v in face["box"])
        print(f"  [{box}] score {face['score']:.3f}")


def info_record(models_dir: Path | None = None) -> dict[str, Any]:
    """What ``info`` reports: version, per model its buckets and backend state, manifest problems.

    The top-level ``backends`` and ``buckets`` are RetinaFace's (the detector's model).
    """
    from retinaface_coreml.artifacts import load_manifest
    from retinaface_coreml.packaged import backends

    manifest = load_manifest(models_dir)
    models = {}
    for name, model in sorted(manifest.models.items()):
        models[name] = {
            "source_sha256": model.source_sha256,
            "batch_independent": model.batch_independent,
            "backends": backends.describe(backends.target(manifest, model)),
            "buckets": [
                {
                    "name": b.name,
                    "inputs": {k: list(v) for k, v in b.inputs.items()},
                    "file": b.file,
                    **({"height": b.height, "width": b.width} if model.detector else {}),
                }
                for b in model.buckets
            ],
        }
    detector = next((n for n, m in manifest.models.items() if m.detector), None)
    main = models[detector] if detector else {"backends": {}, "buckets": []}
    return {
        "version": __version__,
        "models_dir": str(manifest.root),
        "backends": main["backends"],
        "buckets": main["buckets"],
        "models": models,
        "manifest_problems": manifest.verify_all(),
    }


def cmd_info(args: argparse.Namespace) -> int:
    record = info_record(args.models_dir)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"retinaface-coreml {record['version']}")
        print(f"models: {record['models_dir']}")
        for name, model in record["models"].items():
            _print_model(name, model)
        problems = record["manifest_problems"]
        print("manifest: ok" if not problems else f"manifest: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  {problem}")
    if record["manifest_problems"]:
        print(f"error: {record['manifest_problems'][0]}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def _print_model(name: str, model: dict[str, Any]) -> None:
    state = model["backends"]
    print(f"model {name}: onnxruntime {state['onnxruntime']}; backend: {state['backend']}")
    print(
        f"  coreml: {'available' if state['coreml']['available'] else 'unavailable'}"
        f" ({state['coreml']['reason']})"
    )
    caches = {b["name"]: b for b in state["buckets"]}
    for bucket in model["buckets"]:
        cache = caches.get(bucket["name"], {}).get("coreml_cache", "?")
        shapes = ", ".join(f"{k} {v}" for k, v in bucket["inputs"].items())
        print(f"  bucket {bucket['name']}: {shapes}, {bucket['file']}, coreml cache: {cache}")
        detail = caches.get(bucket["name"], {}).get("coreml_cache_detail")
        if detail:
            print(f"    {detail}")
        if cache != "refused":  # else the detail says it, for this host
            for refused in caches.get(bucket["name"], {}).get("coreml_refused", []):
                print(f"    {refused}")
    print(f"  shipped coreml cache: {state.get('shipped_cache', 'none')}")


def cmd_warmup(args: argparse.Namespace) -> int:
    from retinaface_coreml.detector import FaceDetector

    detector = FaceDetector(backend=args.backend, bucket=args.bucket, models_dir=args.models_dir)

    def progress(line: str) -> None:
        print(line, flush=True)

    detector.warmup(progress=progress)
    print("warmup done")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from retinaface_coreml.artifacts import load_manifest
    from retinaface_coreml.packaged import backends

    # The child's stderr is its log file (compile_process.py): say what happens, with times.
    logging.getLogger().handlers[0].setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    logging.getLogger("retinaface_coreml").setLevel(logging.DEBUG if args.debug else logging.INFO)
    manifest = load_manifest(args.models_dir)
    model = manifest.model(args.model)
    options = json.loads(args.options) if args.options else None
    backends.compile_bucket(backends.target(manifest, model, options), model.bucket(args.bucket))
    print(f"compiled {args.bucket}", flush=True)
    return 0


_COMMANDS = {
    "detect": cmd_detect,
    "info": cmd_info,
    "warmup": cmd_warmup,
    "compile": cmd_compile,
}
