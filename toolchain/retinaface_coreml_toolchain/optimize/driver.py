"""The acceptance loop: fix shapes, simplify, then try each registered pass in turn.

A pass is kept only when the predictor scores the rewritten model better under at least one
requested ORT version and worse under none (score: partitions, then nodes left on CPU, for
the deciding model format), and when its outputs still match the input model's on the check
inputs. Passes never call the predictor or ORT themselves; this module does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import onnx

from retinaface_coreml_toolchain.optimize import equality
from retinaface_coreml_toolchain.optimize.passes import REGISTRY
from retinaface_coreml_toolchain.optimize.passes.common import Pass
from retinaface_coreml_toolchain.optimize.predict import Prediction, predict
from retinaface_coreml_toolchain.optimize.rewrite import apply_pass
from retinaface_coreml_toolchain.optimize.shapes import Shape, fix_and_simplify, resolve_shapes

log = logging.getLogger(__name__)

KEPT, NO_MATCH, NO_GAIN, BREAKS_EQUALITY = "kept", "no-match", "no-gain", "breaks-equality"


@dataclass(frozen=True, kw_only=True)
class OptimizeOptions:
    """What to fix and what decides: input shapes, ORT versions, the deciding format."""

    input_shapes: Mapping[str, Shape] = field(default_factory=dict)
    ort_versions: tuple[str, ...] = ("1.32",)
    model_format: str = "mlprogram"
    passes: tuple[Pass, ...] = REGISTRY
    check_inputs: int = equality.CHECK_INPUTS
    tolerance: float = equality.TOLERANCE


@dataclass(frozen=True, kw_only=True)
class PassOutcome:
    """What happened to one pass: its rewrites, the scores it was judged on, the verdict."""

    name: str
    summary: str
    rewrites: int
    status: str
    scores_before: dict[str, tuple[int, int]] = field(default_factory=dict)
    scores_after: dict[str, tuple[int, int]] = field(default_factory=dict)
    worst: equality.Difference | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "rewrites": self.rewrites,
            "status": self.status,
            "scores_before": {v: list(s) for v, s in self.scores_before.items()},
            "scores_after": {v: list(s) for v, s in self.scores_after.items()},
            "max_abs_diff": None if self.worst is None else self.worst.max_abs_diff,
            "max_abs_value": None if self.worst is None else self.worst.max_abs_value,
            "output": None if self.worst is None else self.worst.output,
        }


@dataclass(frozen=True, kw_only=True)
class Optimized:
    model: onnx.ModelProto
    simplified: onnx.ModelProto
    shapes: dict[str, Shape]
    outcomes: tuple[PassOutcome, ...]

    @property
    def changed(self) -> bool:
        return any(o.status == KEPT for o in self.outcomes)


class ReferenceCheck:
    """The reference outputs of the input model, computed on first use."""

    def __init__(
        self, source: onnx.ModelProto, shapes: dict[str, Shape], count: int, *, name: str
    ) -> None:
        self.source, self.shapes, self.count, self.name = source, shapes, count, name

    @cached_property
    def feeds(self):
        return equality.check_feeds(
            self.shapes, equality.input_dtypes(self.source), count=self.count
        )

    @cached_property
    def reference(self):
        return equality.run_all(self.source, self.feeds, name=self.name)

    def diffs(self, model: onnx.ModelProto) -> tuple[equality.Difference, ...]:
        got = equality.run_all(model, self.feeds, name=f"{self.name} (rewritten)")
        return equality.compare(self.reference, got)


def optimize_model(
    source: onnx.ModelProto, options: OptimizeOptions, *, name: str
) -> tuple[Optimized, ReferenceCheck]:
    """Fix shapes, simplify, and run the pass registry on ``source`` (``name`` for errors)."""
    shapes = resolve_shapes(source, options.input_shapes, source=name)
    simplified = fix_and_simplify(source, shapes, source=name)
    checker = ReferenceCheck(source, shapes, options.check_inputs, name=name)
    current, current_prediction = simplified, None
    outcomes: dict[str, PassOutcome] = {}
    progress = True
    # Rounds until none keeps a rewrite: a pass that gained nothing alone (an Einsum made
    # CoreML between two CPU islands adds a partition) is tried again once others have run.
    while progress:
        progress = False
        for rewrite in options.passes:
            previous = outcomes.get(rewrite.name)
            if previous is not None and previous.status == BREAKS_EQUALITY:
                continue
            candidate, count = apply_pass(current, rewrite)
            if count == 0:
                outcome = _outcome(rewrite, 0, NO_MATCH)
            else:
                if current_prediction is None:
                    current_prediction = predict(
                        current, options.ort_versions, (options.model_format,)
                    )
                after = predict(candidate, options.ort_versions, (options.model_format,))
                outcome = _judge(
                    rewrite, count, current_prediction, after, candidate, checker, options
                )
                if outcome.status == KEPT:
                    current, current_prediction, progress = candidate, after, True
            outcomes[rewrite.name] = _merge(previous, outcome)
    optimized = Optimized(
        model=current,
        simplified=simplified,
        shapes=shapes,
        outcomes=tuple(outcomes[p.name] for p in options.passes),
    )
    return optimized, checker


def _judge(rewrite, count, before, after, candidate, checker, options) -> PassOutcome:
    """Kept only if the predictor scores it better (and nowhere worse) and the numbers match."""
    before_s, after_s = _scores(before, options), _scores(after, options)
    better = any(after_s[v] < before_s[v] for v in before_s)
    worse = any(after_s[v] > before_s[v] for v in before_s)
    if not better or worse:
        return _outcome(rewrite, count, NO_GAIN, before_s, after_s)
    worst = equality.worst(checker.diffs(candidate))
    if worst is not None and worst.relative > options.tolerance:
        log.warning("%s breaks equality: %s", rewrite.name, worst)
        return _outcome(rewrite, count, BREAKS_EQUALITY, before_s, after_s, worst)
    return _outcome(rewrite, count, KEPT, before_s, after_s, worst)


def _merge(previous: PassOutcome | None, latest: PassOutcome) -> PassOutcome:
    """A pass kept in an earlier round stays kept; rewrites of its rounds add up."""
    if previous is None or previous.status != KEPT:
        return latest
    if latest.status != KEPT:
        return previous
    return replace(latest, rewrites=previous.rewrites + latest.rewrites)


def _scores(prediction: Prediction, options: OptimizeOptions) -> dict[str, tuple[int, int]]:
    return {v: prediction.score(v, options.model_format) for v in options.ort_versions}


def _outcome(rewrite: Pass, count: int, status: str, before=None, after=None, worst=None):
    return PassOutcome(
        name=rewrite.name,
        summary=rewrite.summary,
        rewrites=count,
        status=status,
        scores_before=before or {},
        scores_after=after or {},
        worst=worst,
    )
