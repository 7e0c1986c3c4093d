"""`toolchain validate`: bucket models against the source model on the real photos."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.errors import ValidationFailed
from retinaface_coreml_toolchain.recipe import load_recipe
from retinaface_coreml_toolchain.simplify import simplify_buckets
from retinaface_coreml_toolchain.validate import check_validation, shortfalls, validate_buckets


@pytest.fixture
def simplified(project: Path) -> Path:
    simplify_buckets(load_recipe(project / "models" / "retinaface.toml"))
    return project


def test_every_bucket_matches_the_source_on_every_photo(simplified: Path) -> None:
    recipe = load_recipe(simplified / "models" / "retinaface.toml")
    result = validate_buckets(recipe)
    assert len(result.images) == 10
    for b in result.buckets:
        assert b.images == 10
        assert b.worst_abs_diff <= recipe.validate.max_abs_diff
        # Full-resolution buckets see each photo cropped to their own size (faces at the edges
        # are cut off); the small buckets see whole photos, so all 25 faces (and more).
        full = recipe.find_bucket(b.bucket).full_resolution
        assert b.faces_bucket == b.faces_source >= (15 if full else 25)
        assert b.min_iou >= recipe.validate.min_iou
    assert shortfalls(result, recipe) == []
    record = json.loads((simplified / "models" / "build" / "validation.json").read_text())
    assert [b["bucket"] for b in record["buckets"]] == [b.name for b in recipe.buckets]


def test_gate_fails_when_the_tolerance_is_tighter_than_the_figures(simplified: Path) -> None:
    recipe = load_recipe(simplified / "models" / "retinaface.toml")
    result = validate_buckets(recipe)
    worse = replace(result.buckets[0], max_abs_diff={"loc": 5e-3, "conf": 0.0, "landmarks": 0.0})
    broken = replace(result, buckets=(worse, *result.buckets[1:]))
    with pytest.raises(ValidationFailed, match=r"640x640: max abs diff 5\.00e-03"):
        check_validation(broken, recipe)
    fewer = replace(result.buckets[1], faces_bucket=result.buckets[1].faces_source - 1)
    with pytest.raises(ValidationFailed, match=r"480x640: .* faces vs"):
        check_validation(replace(result, buckets=(fewer,)), recipe)


def test_a_bucket_model_from_other_weights_fails_validation(simplified: Path) -> None:
    """Swap in a bucket whose weights differ: the gate must catch it (exit 1)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    path = simplified / "models" / "build" / "retinaface" / "640x640.onnx"
    model = onnx.load(str(path))
    init = model.graph.initializer[5]
    init.CopyFrom(
        numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.01), init.name)
    )
    onnx.save(model, str(path))
    result = CliRunner().invoke(
        cli, ["--recipe", str(simplified / "models" / "retinaface.toml"), "validate"]
    )
    assert result.exit_code == 1
    assert "validation failed (640x640: max abs diff" in result.output


def test_missing_bucket_model_exits_2(project: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--recipe", str(project / "models" / "retinaface.toml"), "validate"]
    )
    assert result.exit_code == 2 and "run `toolchain simplify` first" in result.output


def test_an_app_style_export_is_built_validated_and_recognised(project: Path, tmp_path) -> None:
    """`make models SOURCE=export.onnx` (outputs loc, conf, landms; opset 12): the buckets are
    validated against that file, and the app's path to it then serves from them."""
    from dataclasses import replace as with_

    from retinaface_coreml import ONNXRetinaFaceDetector
    from retinaface_coreml.app_session import BucketSession
    from retinaface_coreml_toolchain.fetch import FetchRequest, fetch_weights
    from retinaface_coreml_toolchain.package import package_dir, stage
    from tests.conftest import write_landms_export
    from tests.runtime import schema2
    from tests.runtime.photos import load_photo

    export = write_landms_export(
        project / "weights" / "retinaface_mobilenet025.onnx", tmp_path / "export.onnx", opset=12
    )
    full = load_recipe(project / "models" / "retinaface.toml")
    recipe = with_(full, buckets=(full.find_bucket("640x640"), full.find_bucket("720x1280")))
    fetch_weights(recipe, FetchRequest(from_path=export))
    simplify_buckets(recipe)
    result = validate_buckets(recipe)
    assert shortfalls(result, recipe) == []
    assert all(set(b.max_abs_diff) == {"loc", "conf", "landms"} for b in result.buckets)
    manifest = stage(recipe)
    assert list(manifest["model"]["outputs"]) == ["loc", "conf", "landms"]
    # The build writes schema 1 until the multi-model build lands; the runtime reads schema 2.
    models = schema2.convert(package_dir(recipe), tmp_path / "schema2", source=export)
    detector = ONNXRetinaFaceDetector(str(export), models_dir=models)
    assert isinstance(detector.session, BucketSession)
    dets, _ = detector.detect_faces(load_photo("faceapi_sample5.jpg")[:720, :1280])
    assert len(dets[dets[:, 4] > 0.5]) >= 3
