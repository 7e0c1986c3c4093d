"""The detector's result record: one face in frame pixels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retinaface_coreml.decode import Detections


@dataclass(frozen=True, kw_only=True)
class Face:
    """One face in the pixels of the frame given to ``detect``.

    ``box`` is ``(x1, y1, x2, y2)``, clipped to the frame; ``landmarks`` are five ``(x, y)``
    points in the model's order: two eye centres, nose tip, two mouth corners (image-left first).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self, *, ndigits: int | None = None) -> dict[str, Any]:
        """JSON-ready record, e.g. ``{"box": [x1, y1, x2, y2], "score": 0.99, "landmarks": [...]}``.

        ``ndigits`` rounds coordinates to that many decimals and the score to ``ndigits + 2``.
        """

        def r(value: float, extra: int = 0) -> float:
            return value if ndigits is None else round(value, ndigits + extra)

        return {
            "box": [r(v) for v in self.box],
            "score": r(self.score, 2),
            "landmarks": [[r(x), r(y)] for x, y in self.landmarks],
        }


def faces_from(detections: Detections) -> list[Face]:
    """Face records from decoded arrays (already in frame pixels), highest score first."""
    boxes = detections.boxes.tolist()
    scores = detections.scores.tolist()
    points = detections.landmarks.tolist()
    return [
        Face(
            box=(box[0], box[1], box[2], box[3]),
            score=score,
            landmarks=tuple((x, y) for x, y in marks),
        )
        for box, score, marks in zip(boxes, scores, points, strict=True)
    ]
