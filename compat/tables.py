"""The harness's tables, as GitHub markdown: API rows, Numbers (per input and summed up), speed."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from benchmarks.common import markdown_table
from compat.accuracy import NumbersRow
from compat.api import ApiRow
from compat.speed import APP, APP_THREADS, SpeedRow

DASH = "–"


def _num(value: float | None, digits: int) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _yes(value: bool | None) -> str:
    return DASH if value is None else ("yes" if value else "NO")


def _cell(text: str, limit: int = 70) -> str:
    text = text.replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def api_table(rows: Sequence[ApiRow]) -> str:
    return markdown_table(
        ["call", "status", "app", "ours", "note"],
        [[r.call, r.status, _cell(r.app), _cell(r.ours), _cell(r.note, 90)] for r in rows],
    )


def numbers_table(rows: Sequence[NumbersRow]) -> str:
    """One line per input and setting."""
    body = []
    for r in rows:
        c = r.comparison
        head = [r.image, r.size, r.ours, f"{r.resize:g}", f"{r.threshold:g}"]
        if c is None:
            gate = "FAIL" if r.gated else ""
            body.append([*head, "error", _cell(r.error or "", 60), "", "", "", "", gate])
            continue
        gate = ("FAIL: " + "; ".join(r.failures) if r.failures else "pass") if r.gated else ""
        body.append(
            [
                *head,
                f"{c.faces_app} / {c.faces_ours}",
                _num(c.iou_min, 3),
                _num(c.iou_median, 3),
                _num(c.score_diff_max, 4),
                _num(c.landmark_px_max, 2),
                _yes(c.first_same),
                gate,
            ]
        )
    return markdown_table(
        [
            "input",
            "size",
            "ours",
            "resize",
            "thr",
            "faces app / ours",
            "IoU min",
            "IoU median",
            "max |Δscore|",
            "landmarks max px",
            "dets[0] same",
            "gate",
        ],
        body,
    )


def summary_table(rows: Sequence[NumbersRow]) -> str:
    """One line per (ours, resize, threshold): every input pooled."""
    groups: dict[tuple[str, float, float], list[NumbersRow]] = {}
    for r in rows:
        groups.setdefault((r.ours, r.resize, r.threshold), []).append(r)
    body = []
    for (ours, resize, threshold), group in groups.items():
        done = [r.comparison for r in group if r.comparison is not None]
        ious = [iou for c in done for iou in c.ious]
        scores = [c.score_diff_max for c in done if c.score_diff_max is not None]
        landmarks = [c.landmark_px_max for c in done if c.landmark_px_max is not None]
        firsts = [c.first_same for c in done if c.first_same is not None]
        body.append(
            [
                ours,
                f"{resize:g}",
                f"{threshold:g}",
                f"{sum(c.faces_app for c in done)} / {sum(c.faces_ours for c in done)}",
                f"{sum(c.faces_app == c.faces_ours for c in done)} of {len(group)}",
                _num(min(ious) if ious else None, 3),
                _num(statistics.median(ious) if ious else None, 3),
                _num(max(scores) if scores else None, 4),
                _num(max(landmarks) if landmarks else None, 2),
                f"{sum(firsts)} of {len(firsts)}",
                str(len(group) - len(done)),
            ]
        )
    return markdown_table(
        [
            "ours",
            "resize",
            "thr",
            "faces app / ours",
            "same count",
            "IoU min",
            "IoU median",
            "max |Δscore|",
            "landmarks max px",
            "dets[0] same",
            "errors",
        ],
        body,
    )


def speed_table(rows: Sequence[SpeedRow], contenders: Sequence[str]) -> str:
    """Median ms per call, and how many times faster than the app as shipped each of ours is
    (the app with ORT's default threads is shown for reference)."""
    apps = [c for c in (APP, APP_THREADS) if c in contenders]
    ours = [c for c in contenders if c not in apps]
    headers = ["frame", "size", "calls", *(f"{a} ms" for a in apps)]
    for name in ours:
        headers += [f"{name} ms", "app / ours"]
    body = []
    for r in rows:
        cells = [r.frame, r.size, str(r.calls), *(f"{r.ms[a]:.1f}" for a in apps)]
        for name in ours:
            cells += [f"{r.ms[name]:.1f}", f"{r.ratio(name):.1f}x"]
        body.append(cells)
    return markdown_table(headers, body)
