"""Speed side by side, one process, CPU execution provider: the app's class against ours.

Four contenders, all at the app's default thresholds (0.02, 0.4): the app's
``ONNXRetinaFaceDetector(path)`` as shipped (the app pins its session to one intra-op thread);
the same object with its ``session`` swapped for one at ORT's default options, which isolates
the thread setting (the file itself stays unmodified); ours given the same path (the
full-resolution bucket); and ours at the fast default (``FaceDetector(backend="cpu",
score_threshold=0.02)``, small buckets). They run
round-robin, one call each per round, the order rotating every round, after ``pause`` seconds
of idle (ORT's worker threads spin for a while after a run; on 2 cores that would bill the next
contender). A timed call is what the caller pays: ``detect_faces(frame)`` or ``detect(frame)``.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime

from benchmarks.common import median_ms
from compat.api import first_line

CPU_EP = "CPUExecutionProvider"
APP = "app"
APP_THREADS = "app, default threads"
DROP_IN = "ours, same path"
FAST = "ours, fast default"
WARMUP_CALLS = 2


@dataclass(frozen=True, kw_only=True)
class SpeedRow:
    """Median ms per call of each contender on one frame (or pooled frames)."""

    frame: str
    size: str
    calls: int
    ms: dict[str, float]

    def ratio(self, contender: str) -> float:
        """How many times faster than the app as shipped: app ms / contender ms."""
        return self.ms[APP] / self.ms[contender]


def makers(app: ModuleType, ours: ModuleType, model: Path) -> dict[str, Callable[[], Callable]]:
    """Name to a function that builds that contender and returns its one-frame call."""

    def app_default_threads() -> Callable:
        detector = app.ONNXRetinaFaceDetector(str(model))
        detector.session = onnxruntime.InferenceSession(str(model), providers=[CPU_EP])
        return detector.detect_faces

    return {
        APP: lambda: app.ONNXRetinaFaceDetector(str(model)).detect_faces,
        APP_THREADS: app_default_threads,
        DROP_IN: lambda: ours.ONNXRetinaFaceDetector(str(model)).detect_faces,
        FAST: lambda: (
            ours.FaceDetector(backend="cpu", score_threshold=0.02, nms_threshold=0.4).detect
        ),
    }


def contenders(
    app: ModuleType, ours: ModuleType, model: Path
) -> tuple[dict[str, Callable], dict[str, str]]:
    """Name to a one-frame call, each detector built once (the app's prints swallowed), and the
    construction error of each contender that could not be built."""
    calls, errors = {}, {}
    for name, make in makers(app, ours, model).items():
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                calls[name] = make()
        except Exception as exc:  # the table says which contender is missing and why
            errors[name] = first_line(exc)
    return calls, errors


def interleaved(
    calls: dict[str, Callable], frame: np.ndarray, *, rounds: int, pause: float
) -> dict[str, list[float]]:
    """Seconds per call of each contender on ``frame``, round-robin with a rotating order."""
    names = list(calls)
    for _ in range(WARMUP_CALLS):
        for name in names:
            calls[name](frame)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            time.sleep(pause)
            start = time.perf_counter()
            calls[name](frame)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def measure(
    calls: dict[str, Callable],
    frames: dict[str, np.ndarray],
    *,
    pool: list[str],
    rounds: dict[str, int],
    pause: float,
) -> list[SpeedRow]:
    """One row per frame, then one row pooling the calls of the frames named in ``pool``."""
    rows, pooled = [], {name: [] for name in calls}
    for frame_name, frame in frames.items():
        seconds = interleaved(calls, frame, rounds=rounds[frame_name], pause=pause)
        rows.append(_row(frame_name, f"{frame.shape[1]}x{frame.shape[0]}", seconds))
        if frame_name in pool:
            for name, values in seconds.items():
                pooled[name] += values
    sizes = sorted({f"{frames[n].shape[1]}x{frames[n].shape[0]}" for n in pool})
    rows.append(_row(f"{len(pool)} photos pooled", ", ".join(sizes), pooled))
    return rows


def _row(frame: str, size: str, seconds: dict[str, list[float]]) -> SpeedRow:
    return SpeedRow(
        frame=frame,
        size=size,
        calls=len(next(iter(seconds.values()))),
        ms={name: median_ms(values) for name, values in seconds.items()},
    )
