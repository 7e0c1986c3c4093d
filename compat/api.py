"""Run one call on both sides and judge it: works, differs or error.

A probe is a function of one side (the app's module or ours) that makes the call and returns a
plain summary (a dict of facts, arrays allowed). Each side's outcome is caught, never raised, so
one failing call is one row. The default judge: the same summary (arrays within ``ATOL``), or
the same exception type, is *works*; our exception where the app returns is *error*; anything
else is *differs*. A check can bring its own judge where the app's behaviour is a bug we do not
copy (say so in its note).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

ATOL = 1e-4
WORKS, DIFFERS, ERROR = "works", "differs", "error"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one side's call gave: a summary, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self, limit: int = 90) -> str:
        text = render(self.value) if self.error is None else first_line(self.error)
        return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, kw_only=True)
class Verdict:
    status: str
    note: str = ""


Judge = Callable[[Outcome, Outcome], Verdict]


@dataclass(frozen=True, kw_only=True)
class Check:
    """One call, made the same way on both sides."""

    call: str
    probe: Callable[[Any], Any]
    judge: Judge | None = None


@dataclass(frozen=True, kw_only=True)
class ApiRow:
    call: str
    status: str
    app: str
    ours: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Sides:
    """The two things probed: drivers around the app's module and ours."""

    app: Any
    ours: Any


def first_line(exc: BaseException) -> str:
    """``TypeName: first line of the message``."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def attempt(probe: Callable[[Any], Any], side: Any) -> Outcome:
    """Call ``probe(side)`` with its prints swallowed (the app prints on construction)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return Outcome(value=probe(side))
    except Exception as exc:  # a row per failure: any exception is a result here
        return Outcome(error=exc)


def render(value: Any) -> str:
    """A short, stable text for a summary: arrays by dtype and shape, dicts as ``k=v; ...``."""
    if isinstance(value, np.ndarray):
        return f"ndarray {value.dtype} {tuple(value.shape)}"
    if isinstance(value, dict):
        return "; ".join(f"{k}={render(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        inner = ", ".join(render(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two summaries differ (``None`` when equal; float arrays within ``ATOL``)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return f"{where or 'value'}: {render(a)} vs {render(b)}"
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{where or 'array'}: {render(a)} vs {render(b)}"
        if a.dtype.kind == "f":
            diff = float(np.max(np.abs(a - b))) if a.size else 0.0
            return None if diff <= ATOL else f"{where or 'array'}: max |diff| {diff:.3g}"
        return None if np.array_equal(a, b) else f"{where or 'array'}: values differ"
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where or 'keys'}: {sorted(a)} vs {sorted(b)}"
        for key in a:
            found = difference(a[key], b[key], f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b):
        if len(a) != len(b):
            return f"{where or 'length'}: {len(a)} vs {len(b)} items"
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{where}[{k}]")
            if found:
                return found
        return None
    if isinstance(a, float) and isinstance(b, float):
        return None if abs(a - b) <= 1e-9 else f"{where or 'value'}: {a!r} vs {b!r}"
    return None if a == b and type(a) is type(b) else f"{where or 'value'}: {a!r} vs {b!r}"


def same_as_app(app: Outcome, ours: Outcome) -> Verdict:
    """The default judge: equal summaries, or the same exception type, work."""
    if app.ok and ours.ok:
        found = difference(app.value, ours.value)
        return Verdict(status=DIFFERS, note=found) if found else Verdict(status=WORKS)
    if app.ok:
        return Verdict(status=ERROR, note="the app's call returns; ours raises")
    if ours.ok:
        return Verdict(status=DIFFERS, note="the app raises; ours returns")
    a, b = type(app.error).__name__, type(ours.error).__name__
    return Verdict(status=WORKS if a == b else DIFFERS, note=f"both raise ({a} / {b})")


def run_check(check: Check, sides: Sides) -> ApiRow:
    """Probe both sides, judge, and return the row."""
    app, ours = attempt(check.probe, sides.app), attempt(check.probe, sides.ours)
    verdict = (check.judge or same_as_app)(app, ours)
    return ApiRow(
        call=check.call,
        status=verdict.status,
        app=app.describe(),
        ours=ours.describe(),
        note=verdict.note,
    )
