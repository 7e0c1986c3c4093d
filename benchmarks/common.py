"""What every benchmark shares: the photos, the 1080p frame, box matching, the machine line."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime

from retinaface_coreml.decode import pairwise_iou
from tests.conftest import EXPECTED_FACES, FACES_DIR, reference_boxes

ROOT = Path(__file__).resolve().parent.parent
SOURCE_MODEL = ROOT / "weights" / "retinaface_mobilenet025.onnx"
SCORE_THRESHOLD = 0.5
NMS_THRESHOLD = 0.4
IOU_MATCH = 0.5
NEGATIVE = "skimage_chelsea.png"
FRAME_1080P = "1080p frame"
# The 1080p frame: faceapi_sample1.jpg (1920x1280) cropped to its top 1080 rows, which keeps its
# three faces (their boxes end above y=660) and their size: no resampling, a real video shape.
FRAME_1080P_SOURCE = "faceapi_sample1.jpg"

__all__ = [
    "EXPECTED_FACES",
    "FACES_DIR",
    "FRAME_1080P",
    "FRAME_1080P_SOURCE",
    "IOU_MATCH",
    "NEGATIVE",
    "NMS_THRESHOLD",
    "ROOT",
    "SCORE_THRESHOLD",
    "SOURCE_MODEL",
    "Match",
    "frame_1080p",
    "frames_1080p",
    "load_average",
    "load_photos",
    "machine_line",
    "markdown_table",
    "match_boxes",
    "median_ms",
    "reference_boxes",
    "top_1080_rows",
    "verdict",
]


def load_photos() -> dict[str, np.ndarray]:
    """Every photo of tests/data/faces decoded once as 3-channel BGR uint8, in SOURCES.md order."""
    photos = {}
    for name in EXPECTED_FACES:
        image = cv2.imread(str(FACES_DIR / name), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(FACES_DIR / name)
        photos[name] = image
    return photos


def top_1080_rows(name: str, image: np.ndarray) -> np.ndarray:
    """A 1920x1080 BGR frame made in memory from a 1920-wide photo: its top 1080 rows, no resize."""
    frame = np.ascontiguousarray(image[:1080])
    if frame.shape != (1080, 1920, 3):
        raise ValueError(f"{name}: expected 1920x1080 or taller, got shape {image.shape}")
    return frame


def frame_1080p(photos: dict[str, np.ndarray]) -> np.ndarray:
    """The 1080p frame: faceapi_sample1.jpg's top 1080 rows."""
    return top_1080_rows(FRAME_1080P_SOURCE, photos[FRAME_1080P_SOURCE])


def frames_1080p(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every 1920-wide photo (the six group photos) as a 1080p frame, photo name to frame."""
    return {
        name: top_1080_rows(name, image)
        for name, image in photos.items()
        if image.shape[1] == 1920 and image.shape[0] >= 1080
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``1.10, 1.03, 0.89``."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


@dataclass(frozen=True, kw_only=True)
class Match:
    """Found boxes against expected ones: ``matched`` pairs at IoU >= 0.5, and their IoUs."""

    found: int
    expected: int
    matched: int
    ious: tuple[float, ...]


def match_boxes(found: np.ndarray, expected: Sequence[Sequence[float]]) -> Match:
    """Greedy one-to-one matching, found boxes in the given (score) order, best free IoU first."""
    free = list(range(len(expected)))
    ious = []
    # Rows may carry more than a box (e.g. the adapter's 15 columns): the first four are it.
    boxes = np.array([row[:4] for row in found], dtype=np.float64).reshape(-1, 4)
    table = pairwise_iou(boxes, np.asarray(expected, dtype=np.float64).reshape(-1, 4))
    for row in table:
        scores = [row[j] for j in free]
        if scores and max(scores) >= IOU_MATCH:
            ious.append(max(scores))
            free.pop(int(np.argmax(scores)))
    return Match(found=len(found), expected=len(expected), matched=len(ious), ious=tuple(ious))


def median_ms(seconds: Sequence[float]) -> float:
    """The median of durations in seconds, in milliseconds."""
    return statistics.median(seconds) * 1e3


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """One line naming the CPU, cores, versions, thread settings and load, printed above tables.

    e.g. ``AMD EPYC, 2 cores (2 usable), Linux x86_64, Python 3.11.9, onnxruntime 1.32.0
    (CPUExecutionProvider, intra-op threads: ORT default), ...``
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = ", ".join(
        f"{name}={os.environ.get(name, 'unset')}"
        for name in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    )
    load = load_average()
    return (
        f"Machine: {_cpu_model()}, {os.cpu_count()} cores ({usable} usable), "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, "
        f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider only; intra-op threads: "
        f"ORT default, spinning: ORT default), numpy {np.__version__}, opencv {cv2.__version__} "
        f"({cv2.getNumThreads()} threads), {env}, load average {load}. "
        "All figures are CPU figures measured here; none is a CoreML figure."
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table with columns padded for reading in a terminal."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
