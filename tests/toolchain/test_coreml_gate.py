"""The CoreML numerical gate of `toolchain precompile`, through the stand-in at coreml.py's seam.

The stand-in's "compiled" model is the bucket model as a float16 device computes it (weights
rounded to float16, every tensor stored as float16 between nodes) or worse; the recipe, the
bucket models, the photos, the CPU reference, the decoder and the record are real. RetinaFace is
compared face by face; a generated non-detector model output by output on its validation
inputs. No figure here is a CoreML figure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from retinaface_coreml.decode import Detections
from retinaface_coreml_toolchain.coreml_gate import check_outputs
from retinaface_coreml_toolchain.coreml_numerics import (
    FaceFigures,
    FaceTolerance,
    compare_faces,
    face_shortfalls,
    relative_diff,
)
from retinaface_coreml_toolchain.errors import RecipeError
from retinaface_coreml_toolchain.precompile import PrecompileRequest, precompile
from retinaface_coreml_toolchain.recipe import CoremlTolerance, load_recipe
from retinaface_coreml_toolchain.validate import _session, validation_feeds
from tests.runtime import standin
from tests.toolchain.conftest import add_convnet

BUCKETS = ("384x640", "1280x720")


def _precompile(built: Path, monkeypatch, tmp_path: Path, weight_bits: int):
    standin.activate(monkeypatch, tmp_path / "events", compile_seconds=1.0, weight_bits=weight_bits)
    recipe = load_recipe(built / "models" / "retinaface.toml")
    result = precompile(recipe, PrecompileRequest(buckets=BUCKETS))
    record = json.loads((recipe.build_dir / "precompile.json").read_text())
    assert record == result.to_dict()
    return result, record


def test_float16_outputs_within_tolerance_are_shipped(built: Path, monkeypatch, tmp_path) -> None:
    result, record = _precompile(built, monkeypatch, tmp_path, weight_bits=10)
    assert record["refused"] == {}
    assert sorted(record["entries"]) == sorted(BUCKETS)
    for name in BUCKETS:
        numerics = record["entries"][name]["numerics"]
        # float16 moved something (the stand-in is not the CPU model) but kept every face.
        assert numerics["passed"] is True
        assert 0 < numerics["max_rel_diff"] == max(numerics["relative_diff"].values()) < 0.1
        assert numerics["faces_cpu"] > 0 and numerics["images"] == 10
        # 384x640: a face scoring about 0.5 is seen on one side only (borderline, not lost).
        lost = abs(numerics["faces_cpu"] - numerics["faces_coreml"])
        assert lost <= numerics["borderline"] <= 1
        assert numerics["unmatched"] == 0 and numerics["min_iou"] >= FaceTolerance().min_iou
    for entry in result.entries:
        assert (built / "models" / "build" / "retinaface" / entry.dir).is_dir()


def test_outputs_beyond_tolerance_are_refused_with_the_reason(
    built: Path, monkeypatch, tmp_path
) -> None:
    result, record = _precompile(built, monkeypatch, tmp_path, weight_bits=3)
    assert result.entries == () and record["entries"] == {}
    assert sorted(record["refused"]) == sorted(BUCKETS)
    for name, refusal in record["refused"].items():
        assert refusal["reason"], name
        figures = refusal["figures"]
        assert figures["unmatched"] or figures["min_iou"] < FaceTolerance().min_iou
        assert refusal["reason"].split("; ") == face_shortfalls(
            FaceFigures(**{k: figures[k] for k in FaceFigures.__dataclass_fields__}),
            FaceTolerance(),
        )
    assert "2 refused by the numerical gate" in record["summary"]
    # Not staged: the published cache holds no entry directory at all.
    cache = built / "models" / "build" / "retinaface" / "coreml"
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_the_recipe_sets_the_tolerance_and_unknown_keys_are_refused(built: Path) -> None:
    path = built / "models" / "retinaface.toml"
    assert load_recipe(path).coreml_tolerance == CoremlTolerance()
    original = path.read_text()
    path.write_text(original + "\n[coreml_tolerance]\nmin_iou = 0.95\n")
    tolerance = load_recipe(path).coreml_tolerance
    assert tolerance.faces.min_iou == 0.95 and tolerance.rtol == CoremlTolerance().rtol
    assert tolerance.faces.max_landmark_error == FaceTolerance().max_landmark_error
    path.write_text(original + "\n[coreml_tolerance]\nmin_iuo = 0.95\n")
    with pytest.raises(
        RecipeError, match=r"retinaface.toml: coreml_tolerance.min_iuo: unknown key"
    ):
        load_recipe(path)


def _precompile_convnet(project: Path, monkeypatch, tmp_path: Path, weight_bits: int):
    recipe = add_convnet(project)
    standin.activate(monkeypatch, tmp_path / "events", compile_seconds=1.0, weight_bits=weight_bits)
    result = precompile(recipe)
    record = json.loads((recipe.build_dir / "precompile.json").read_text())
    assert record == result.to_dict()
    return recipe, result, record


def test_any_other_model_ships_outputs_within_rtol(project: Path, monkeypatch, tmp_path) -> None:
    recipe, result, record = _precompile_convnet(project, monkeypatch, tmp_path, weight_bits=10)
    assert record["refused"] == {} and sorted(record["entries"]) == ["1x3x8x8"]
    numerics = record["entries"]["1x3x8x8"]["numerics"]
    # float16 moved the output (the stand-in is not the CPU model), within rtol; no face figures.
    assert numerics["passed"] is True and "faces_cpu" not in numerics
    assert (
        0
        < numerics["max_rel_diff"]
        == numerics["relative_diff"]["y"]
        < recipe.coreml_tolerance.rtol
    )
    (entry,) = result.entries
    assert (recipe.build_dir / entry.dir).is_dir()


def test_any_other_model_beyond_rtol_is_refused(project: Path, monkeypatch, tmp_path) -> None:
    recipe, result, record = _precompile_convnet(project, monkeypatch, tmp_path, weight_bits=2)
    assert result.entries == () and record["entries"] == {}
    refusal = record["refused"]["1x3x8x8"]
    figure = refusal["figures"]["relative_diff"]["y"]
    assert figure > recipe.coreml_tolerance.rtol
    assert refusal["reason"] == f"y {figure:.1e} > {recipe.coreml_tolerance.rtol}"
    assert not [p for p in (recipe.build_dir / "coreml").rglob("*") if p.is_file()]
    # The gate ran the bucket's own validation inputs: the CPU figures say so.
    cpu = _session(str(recipe.bucket_path(recipe.buckets[0])))
    feeds = validation_feeds(recipe, 0, recipe.buckets[0], cpu)
    assert len(feeds) == recipe.validate.count and feeds[0]["x"].shape == (1, 3, 8, 8)
    # Nothing of a refused entry ships: no coreml_cache record, no file, a portable wheel.
    from retinaface_coreml_toolchain.package import build_wheel

    packaged = build_wheel([recipe])
    assert packaged.coreml_cache is False and packaged.wheel.name.endswith("-py3-none-any.whl")
    manifest = json.loads((project / "src/retinaface_coreml/models/manifest.json").read_text())
    model = manifest["models"]["convnet"]
    assert model["coreml_cache"] == [] and list(model["precompile"]["refused"]) == ["1x3x8x8"]
    assert not [rel for rel in manifest["files"] if rel.startswith("coreml/")]
    # The runtime reads that refusal and serves the bucket on the CPU: no compile child.
    from retinaface_coreml.artifacts import load_manifest
    from retinaface_coreml.packaged import backends, cache

    served = load_manifest(project / "src/retinaface_coreml/models")
    bucket = served.model("convnet").bucket("1x3x8x8")
    (read,) = bucket.refusals
    assert (read.reason, read.options_digest) == (refusal["reason"], result.options_digest)
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "user-cache"))
    events = standin.events(tmp_path / "events")
    runner = backends.open_runner(backends.target(served, served.model("convnet")), bucket)
    assert runner.backend == "cpu" and not isinstance(runner, backends.PendingRunner)
    assert standin.events(tmp_path / "events") == events


def test_a_looser_rtol_in_the_recipe_ships_it(project: Path, monkeypatch, tmp_path) -> None:
    recipe = add_convnet(project)
    with recipe.path.open("a") as handle:
        handle.write("\n[coreml_tolerance]\nrtol = 10.0\n")
    standin.activate(monkeypatch, tmp_path / "events", compile_seconds=1.0, weight_bits=2)
    result = precompile(load_recipe(recipe.path))
    assert result.refused == () and [e.bucket for e in result.entries] == ["1x3x8x8"]


@pytest.mark.parametrize(
    ("recipe_name", "table", "message"),
    [
        ("convnet", "min_iou = 0.9", "coreml_tolerance.min_iou: only a [detector] recipe"),
        ("retinaface", "rtol = 0.1", "coreml_tolerance.rtol: a [detector] recipe is compared"),
        ("convnet", "rtol = -1.0", "coreml_tolerance.rtol: must be >= 0"),
        ("retinaface", "min_iou = 1.5", "coreml_tolerance.min_iou: must be within 0..1"),
        ("convnet", 'rtol = "x"', "coreml_tolerance.rtol: wrong type str"),
    ],
)
def test_tolerance_keys_the_gate_would_not_read_are_refused(
    project: Path, recipe_name, table, message
) -> None:
    from tests.toolchain.generated import conv_model

    if recipe_name == "convnet":
        from click.testing import CliRunner

        from retinaface_coreml_toolchain.cli import cli

        source = conv_model(project / "weights" / "convnet.onnx", size=8)
        args = ["--recipe", str(project / "models" / "retinaface.toml"), "add", "convnet"]
        assert CliRunner().invoke(cli, [*args, str(source)]).exit_code == 0
    path = project / "models" / f"{recipe_name}.toml"
    path.write_text(path.read_text() + f"\n[coreml_tolerance]\n{table}\n")
    with pytest.raises(RecipeError, match=re.escape(message)) as raised:
        load_recipe(path)
    assert str(raised.value).count("\n") == 0 and str(path) in str(raised.value)


def _faces(*boxes: tuple[float, float, float, float], shift: float = 0.0, score=0.9):
    array = np.asarray(boxes, np.float32).reshape(-1, 4)
    corners = np.stack([array[:, :2]] * 5, axis=1) + shift
    return Detections(boxes=array, scores=np.full(len(array), score, np.float32), landmarks=corners)


def test_faces_are_matched_one_to_one_and_measured() -> None:
    tolerance = FaceTolerance()
    cpu = [_faces((0, 0, 10, 10), (20, 20, 40, 40)), _faces()]
    moved = [_faces((20, 20, 40, 41), (0, 0, 10, 10), shift=0.3), _faces()]
    figures = compare_faces(cpu, moved, score_threshold=0.5, tolerance=tolerance)
    assert (figures.faces_cpu, figures.faces_coreml, figures.unmatched) == (2, 2, 0)
    assert figures.min_iou == pytest.approx(400 / 420, abs=1e-6)
    assert figures.max_landmark_px == pytest.approx(np.hypot(0.3, 0.3), abs=1e-4)
    assert figures.max_landmark_error == pytest.approx(np.hypot(0.3, 0.3) / 10, abs=1e-5)
    assert face_shortfalls(figures, tolerance) == []
    strict = FaceTolerance(min_iou=0.99, max_landmark_error=0.01)
    assert face_shortfalls(figures, strict) == [
        "box IoU 0.9524 < 0.99",
        "a landmark 0.042 of the face size off (0.4 px) > 0.01",
    ]
    # A face of 0.9 seen on one side only is lost; one of 0.52 is borderline.
    lost = compare_faces(
        cpu,
        [_faces((0, 0, 10, 10)), _faces((5, 5, 9, 9))],
        score_threshold=0.5,
        tolerance=tolerance,
    )
    assert (lost.unmatched, lost.borderline) == (2, 0)
    assert face_shortfalls(lost, tolerance) == ["2 faces on CoreML vs 2 on CPU (2 unmatched)"]
    near = compare_faces(
        [_faces()], [_faces((5, 5, 9, 9), score=0.52)], score_threshold=0.5, tolerance=tolerance
    )
    assert (near.unmatched, near.borderline) == (0, 1)
    assert face_shortfalls(near, tolerance) == []


class _Fixed:
    """A session that answers every run with fixed outputs."""

    def __init__(self, *outputs: np.ndarray) -> None:
        self.outputs = outputs

    def run(self, names, feed):
        return list(self.outputs)


def test_any_model_compares_each_output_relative_to_its_largest_value() -> None:
    want = np.array([100.0, 1e-3, -50.0], np.float32)
    assert relative_diff([want], [want + np.float32(0.5)]) == pytest.approx(0.005, rel=1e-6)
    assert relative_diff([np.zeros(3)], [np.zeros(3)]) == 0.0
    with pytest.raises(ValueError, match="shape"):
        relative_diff([want], [want[:2]])
    cpu, near, far = _Fixed(want, want), _Fixed(want, want * 1.01), _Fixed(want, want * 1.2)
    feeds = [{"x": np.zeros(1, np.float32)}]
    ok = check_outputs("1x3", cpu, near, feeds, ("a", "b"), rtol=0.05)
    assert ok.passed and ok.figures == {
        "max_rel_diff": 0.01,
        "relative_diff": {"a": 0.0, "b": 0.01},
    }
    bad = check_outputs("1x3", cpu, far, feeds, ("a", "b"), rtol=0.05)
    assert not bad.passed and bad.reason == "b 2.0e-01 > 0.05"


def test_an_entry_whose_session_cannot_run_is_refused(built: Path, monkeypatch, tmp_path) -> None:
    standin.activate(monkeypatch, tmp_path / "events", compile_seconds=1.0)

    def feeds_a_wrong_input(bucket, session):
        session.run(None, {"no_such_input": np.zeros(1, np.float32)})  # ORT raises

    recipe = load_recipe(built / "models" / "retinaface.toml")
    result = precompile(recipe, PrecompileRequest(buckets=("384x640",)), gate=feeds_a_wrong_input)
    (refusal,) = result.refused
    assert result.entries == () and refusal.bucket == "384x640"
    assert refusal.reason.startswith("the CoreML session failed to run: ")
    assert "no_such_input" in refusal.reason
