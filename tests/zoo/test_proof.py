"""`zoo.proof` on a small generated model: `toolchain add`, `build` into a wheel of its own, then
the proof's fresh venv, app-style runs and table; its judging on records that must fail.

`make zoo` runs the same module on RetinaFace, MTL and STAR.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.toolchain.conftest import project, source_weights  # noqa: F401 (fixtures)
from tests.toolchain.generated import conv_model
from tests.toolchain.test_any_model import run
from zoo import proof


@pytest.mark.slow
def test_the_proof_passes_on_a_packaged_model_and_says_what_served(
    project: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = conv_model(project / "weights" / "convnet.onnx")
    assert run(project, "add", "convnet", str(source)).exit_code == 0
    built = run(project, "build", "--models", "convnet")
    assert built.exit_code == 0, built.output
    out = tmp_path / "out"

    code = proof.main(
        ["--root", str(project), "--models", "convnet", "--out", str(out), "--check-recipes"]
    )

    table = capsys.readouterr().out
    assert code == 0, table
    record = json.loads((out / "proof.json").read_text())
    assert (out / "proof.md").read_text() == table
    assert record["wheel_models"] == ["convnet"] and not record["venv_failures"]
    assert "CoreMLExecutionProvider" not in record["available_providers"]
    assert "cpu: no CoreML EP in this onnxruntime; no CoreML figure claimed" in table
    (model,) = record["models"]
    assert model["packaged_model"] == "convnet" and model["failures"] == []
    assert model["recipe"] == "toolchain add"
    assert model["last_served"] == {"bucket": "1x3x16x16", "backend": "cpu", "slices": 1}
    assert list(model["max_rel_diff"]) == ["y"] and model["max_rel_diff"]["y"] <= 1e-4
    assert model["metadata_equal"] and model["format"] == "mlprogram"
    manifest = json.loads(
        (project / "src" / "retinaface_coreml" / "models" / "manifest.json").read_text()
    )
    for version in ("1.23", "1.32"):
        served = manifest["models"]["convnet"]["coverage"]["1x3x16x16"][version]["mlprogram"]
        assert model["partitions"][f"served {version}"] == served
        # the source as exported: five nodes (3 Conv, 2 Relu), all on CoreML, one partition
        assert model["partitions"][f"source {version}"] == {
            "nodes_in_graph": 5, "nodes_supported": 5, "partitions": 1, "mac_share": 1.0,
        }  # fmt: skip
    header, rule, row = table.splitlines()[:3]
    assert header.count(" | ") == rule.count("---|") - 1 == row.count(" | ")
    assert "| = `toolchain add` | 1x3x16x16 | `convnet` | 1x3x16x16, cpu | 1 |" in row
    assert row.endswith("| pass |")

    recipe = project / "models" / "convnet.toml"
    recipe.write_text(recipe.read_text().replace("count = 2", "count = 3"))
    origins = proof.recipe_origins(project, ("retinaface", "convnet"), ())
    assert origins["retinaface"] == "own (pypi-embedded source, detector recipe)"
    assert origins["convnet"] == "differs from toolchain add: -count = 2 +count = 3", origins
    assert not list((project / "models" / "build").glob("proof-add-*"))  # scratch removed

    lacking = proof.main(["--root", str(project), "--models", "retinaface", "--out", str(out)])
    assert lacking == 2
    err = capsys.readouterr().err.strip()
    assert "the wheel holds no model 'retinaface' (it has convnet)" in err and "\n" not in err


# --- judging, on records that must fail ---------------------------------------------------------

CASE = proof.Case(
    name="m", source=Path("m.onnx"), bucket="1x3x8x8", input_name="x", shape=(1, 3, 8, 8),
    dtype="tensor(float)", low=0.0, high=1.0, seed=0,
)  # fmt: skip
META = {
    "inputs": [{"name": "x", "shape": ["N", 3, 8, 8], "type": "tensor(float)"}],
    "outputs": [{"name": "y", "shape": ["N", 4, 8, 8], "type": "tensor(float)"}],
}
SERVED = {**META, "packaged_model": "m", "last_served": {"bucket": "1x3x8x8", "backend": "cpu"}}
Y = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)


def test_judge_passes_outputs_within_the_tolerance() -> None:
    near = Y + np.float32(0.5e-4) * np.abs(Y).max()
    judged = proof.judge(CASE, META, SERVED, [Y], [near], coreml_ep=False)
    assert judged.failures == [] and judged.metadata_equal
    assert 0.4e-4 < judged.max_rel_diff["y"] < 0.6e-4


@pytest.mark.parametrize(
    ("served", "outputs", "expected"),
    [
        ({}, [Y + np.float32(2e-4) * np.abs(Y).max()], "output y: relative diff 2.0"),
        ({}, [Y[:, :2]], "output y: float32[1, 2, 8, 8] != float32[1, 4, 8, 8]"),
        ({}, [], "0 outputs != 1"),
        ({"packaged_model": None}, [Y], "packaged_model None != 'm'"),
        ({"last_served": {"bucket": None, "backend": "cpu"}}, [Y], "bucket None != '1x3x8x8'"),
        ({"last_served": {"bucket": "1x3x8x8", "backend": "coreml"}}, [Y], "backend 'coreml'"),
        ({"outputs": [{**META["outputs"][0], "shape": [1, 4, 8, 8]}]}, [Y], "outputs metadata"),
    ],
)
def test_judge_fails_what_differs_from_plain_onnxruntime(served, outputs, expected) -> None:
    judged = proof.judge(CASE, META, {**SERVED, **served}, [Y], outputs, coreml_ep=False)
    assert len(judged.failures) == 1 and expected in judged.failures[0], judged.failures
    assert judged.metadata_equal == ("metadata" not in expected)


def test_relative_diff_of_an_all_zero_reference() -> None:
    zero = np.zeros(3, np.float32)
    assert proof.relative_diff(zero, zero) == 0.0
    assert proof.relative_diff(zero + 1, zero) == float("inf")
