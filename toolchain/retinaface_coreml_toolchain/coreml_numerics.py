"""CoreML against CPU: pure comparisons of outputs, figures apart from the tolerance check.

CoreML may compute in float16 on the Neural Engine, so a compiled entry is held to a CoreML
tolerance rather than the bit-level one ``validate`` applies to the bucket models. RetinaFace
compares decoded faces (same faces, box IoU, landmark distance, score); any other model its
raw outputs, within a relative tolerance. Arrays and tolerances in, frozen records out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from retinaface_coreml.decode import Detections, pairwise_iou


@dataclass(frozen=True, kw_only=True)
class FaceTolerance:
    """Matched faces must overlap at ``min_iou``; each landmark within ``max_landmark_error``
    of the face's size (sqrt of the CPU box's area); scores within ``max_score_diff``.

    Every face must have its partner, except a borderline one: a face seen on one side only
    whose score is below the score threshold plus ``max_score_diff`` (float16 may move a score
    of 0.51 to 0.49; it must not lose a face of 0.9).
    """

    min_iou: float = 0.9
    max_landmark_error: float = 0.05
    max_score_diff: float = 0.05


@dataclass(frozen=True, kw_only=True)
class FaceFigures:
    """Over every validation input, e.g. 25 faces each side, min IoU 0.9586, 0.012 of a face."""

    faces_cpu: int
    faces_coreml: int
    unmatched: int
    borderline: int
    min_iou: float
    max_landmark_error: float
    max_landmark_px: float
    max_score_diff: float


def match_faces(cpu: Detections, coreml: Detections) -> list[tuple[int, int, float]]:
    """Greedy one-to-one pairs ``(cpu index, coreml index, IoU)``, best overlap first."""
    if not len(cpu) or not len(coreml):
        return []
    iou = pairwise_iou(cpu.boxes, coreml.boxes)
    pairs, used_cpu, used_coreml = [], set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, iou.shape)
        if i in used_cpu or j in used_coreml or iou[i, j] <= 0:
            continue
        used_cpu.add(i)
        used_coreml.add(j)
        pairs.append((int(i), int(j), float(iou[i, j])))
    return pairs


def compare_faces(
    cpu: Sequence[Detections],
    coreml: Sequence[Detections],
    *,
    score_threshold: float,
    tolerance: FaceTolerance,
) -> FaceFigures:
    """Figures over paired per-input detections (same order, same coordinates).

    ``score_threshold`` and ``tolerance.max_score_diff`` tell a borderline face from a lost one.
    """
    faces_cpu = faces_coreml = unmatched = borderline = 0
    min_iou, max_error, max_px, max_score = 1.0, 0.0, 0.0, 0.0
    for want, got in zip(cpu, coreml, strict=True):
        pairs = match_faces(want, got)
        faces_cpu += len(want)
        faces_coreml += len(got)
        alone = np.concatenate(
            [
                np.delete(want.scores, [i for i, _, _ in pairs]),
                np.delete(got.scores, [j for _, j, _ in pairs]),
            ]
        )
        near = int(np.sum(alone < score_threshold + tolerance.max_score_diff))
        borderline += near
        unmatched += len(alone) - near
        for i, j, iou in pairs:
            min_iou = min(min_iou, iou)
            distance = float(np.linalg.norm(want.landmarks[i] - got.landmarks[j], axis=-1).max())
            width, height = want.boxes[i, 2:] - want.boxes[i, :2]
            size = float(np.sqrt(max(width * height, 1e-12)))
            max_px = max(max_px, distance)
            max_error = max(max_error, distance / size)
            max_score = max(max_score, float(abs(want.scores[i] - got.scores[j])))
    return FaceFigures(
        faces_cpu=faces_cpu,
        faces_coreml=faces_coreml,
        unmatched=unmatched,
        borderline=borderline,
        min_iou=round(min_iou, 6),
        max_landmark_error=round(max_error, 6),
        max_landmark_px=round(max_px, 4),
        max_score_diff=round(max_score, 6),
    )


def face_shortfalls(figures: FaceFigures, tolerance: FaceTolerance) -> list[str]:
    """What is out of tolerance, one phrase each; empty when the entry may ship."""
    problems = []
    if figures.unmatched:
        problems.append(
            f"{figures.faces_coreml} faces on CoreML vs {figures.faces_cpu} on CPU "
            f"({figures.unmatched} unmatched)"
        )
    if figures.min_iou < tolerance.min_iou:
        problems.append(f"box IoU {figures.min_iou:.4f} < {tolerance.min_iou}")
    if figures.max_landmark_error > tolerance.max_landmark_error:
        problems.append(
            f"a landmark {figures.max_landmark_error:.3f} of the face size off "
            f"({figures.max_landmark_px:.1f} px) > {tolerance.max_landmark_error}"
        )
    if figures.max_score_diff > tolerance.max_score_diff:
        problems.append(f"score diff {figures.max_score_diff:.4f} > {tolerance.max_score_diff}")
    return problems


def relative_diff(cpu: Sequence[np.ndarray], coreml: Sequence[np.ndarray]) -> float:
    """max |cpu - coreml| / max |cpu| of one output over paired runs, e.g. ``2.9e-2``.

    Relative to the output's largest magnitude, not element-wise: float16 keeps about three
    significant digits of the largest values, and an element near zero has none to lose.
    """
    diff = scale = 0.0
    for want, got in zip(cpu, coreml, strict=True):
        want, got = np.asarray(want, np.float64), np.asarray(got, np.float64)
        if want.shape != got.shape:
            raise ValueError(f"shape {got.shape} on CoreML, {want.shape} on CPU")
        diff = max(diff, float(np.max(np.abs(want - got), initial=0.0)))
        scale = max(scale, float(np.max(np.abs(want), initial=0.0)))
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def relative_shortfalls(figures: Mapping[str, float], rtol: float) -> list[str]:
    """Outputs whose relative difference exceeds ``rtol``, e.g. ``["conf 3.1e-01 > 0.05"]``."""
    return [f"{name} {value:.1e} > {rtol}" for name, value in figures.items() if value > rtol]
