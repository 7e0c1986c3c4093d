"""compat/api.py and the judges of compat/checks.py: how a pair of outcomes becomes a row."""

from __future__ import annotations

import numpy as np

from compat.api import (
    ATOL,
    DIFFERS,
    ERROR,
    WORKS,
    Check,
    Outcome,
    Sides,
    attempt,
    difference,
    run_check,
    same_as_app,
)
from compat.checks import resize_means_original, signature, signature_compatible


def test_difference_compares_float_arrays_within_atol() -> None:
    a = np.zeros((2, 3), np.float32)
    assert difference(a, a + ATOL / 2) is None
    assert difference(a, a + 1.0) == "array: max |diff| 1"
    assert "float32" in difference(a, a.astype(np.float64))
    assert difference({"x": [a]}, {"x": [a + 1.0]}) == "x[0]: max |diff| 1"
    assert difference({"x": 1}, {"y": 1}) == "keys: ['x'] vs ['y']"
    assert difference(0.5, 0.5) is None
    assert difference(1, True) == "value: 1 vs True"


def test_same_as_app() -> None:
    ok = Outcome(value={"a": 1})
    assert same_as_app(ok, Outcome(value={"a": 1})).status == WORKS
    assert same_as_app(ok, Outcome(value={"a": 2})).status == DIFFERS
    assert same_as_app(ok, Outcome(error=TypeError("x"))).status == ERROR
    assert same_as_app(Outcome(error=TypeError("x")), ok).status == DIFFERS
    assert same_as_app(Outcome(error=TypeError("a")), Outcome(error=TypeError("b"))).status == WORKS
    assert (
        same_as_app(Outcome(error=TypeError("a")), Outcome(error=ValueError("b"))).status == DIFFERS
    )


def test_one_failing_side_is_one_row_not_a_crash(capsys) -> None:
    def probe(side: str) -> str:
        print("the app prints while loading")
        if side == "ours":
            raise AttributeError("'X' object has no attribute 'session'\nmore")
        return side

    row = run_check(Check(call="x.session", probe=probe), Sides(app="app", ours="ours"))
    assert (row.status, row.app, row.ours) == (
        ERROR,
        "'app'",
        "AttributeError: 'X' object has no attribute 'session'",
    )
    assert capsys.readouterr().out == ""
    assert attempt(lambda side: 1 / 0, None).error is not None


def _app(onnx_model_path, use_coreml=True, confidence_threshold=0.02): ...


def _extended(
    onnx_model_path=None, use_coreml=True, confidence_threshold=0.02, *, models_dir=None
): ...


def _other_default(onnx_model_path, use_coreml=True, confidence_threshold=0.5): ...


def _extra_required(onnx_model_path, use_coreml=True, confidence_threshold=0.02, *, models_dir): ...


def _renamed(path, use_coreml=True, confidence_threshold=0.02): ...


def _judge(ours) -> tuple[str, str]:
    verdict = signature_compatible(Outcome(value=signature(_app)), Outcome(value=signature(ours)))
    return verdict.status, verdict.note


def test_signature_compatible() -> None:
    assert _judge(_app) == (WORKS, "")
    assert _judge(_extended) == (
        WORKS,
        "ours: onnx_model_path defaults to None; adds models_dir=None (keyword-only)",
    )
    assert _judge(_other_default) == (DIFFERS, "confidence_threshold defaults to 0.5, app 0.02")
    assert _judge(_extra_required)[0] == ERROR
    assert _judge(_renamed) == (DIFFERS, "parameter 0 is path, app onnx_model_path")


def test_resize_must_give_the_original_frame() -> None:
    app = Outcome(error=RuntimeError("The size of tensor a (27120) must match"))
    good = Outcome(value={"frame is a copy": True, "frame equals input": True})
    resized = Outcome(value={"frame is a copy": True, "frame equals input": False})
    assert resize_means_original(app, good).status == DIFFERS
    assert resize_means_original(app, resized).status == ERROR
    assert resize_means_original(app, Outcome(error=RuntimeError("x"))).status == ERROR
