"""Recipes for any model: `toolchain add`, then `toolchain build --models` into one wheel with
RetinaFace; the gate under every admitted ORT series; one line and exit 2 for bad input.

The models are generated here (onnx.helper): a few convolutions; the same with a dynamic batch;
and one with Softplus, which ORT's CoreML EP has a builder for from 1.24 on only.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.recipe import load_recipe
from tests.toolchain.conftest import only_buckets
from tests.toolchain.generated import conv_model


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, ["--recipe", str(project / "models" / "retinaface.toml"), *args])


@pytest.fixture
def sources(project: Path) -> dict[str, Path]:
    folder = project / "weights"
    return {
        "convnet": conv_model(folder / "convnet.onnx"),
        "dynbatch": conv_model(folder / "dynbatch.onnx", batch="N", size=8),
        "softplus": conv_model(folder / "softplus.onnx", middle="Softplus", size=8),
    }


def test_add_then_build_puts_every_model_in_one_wheel(project: Path, sources) -> None:
    added = run(project, "add", "convnet", str(sources["convnet"]))
    assert added.exit_code == 0, added.output
    recipe_file = project / "models" / "convnet.toml"
    assert f"wrote {recipe_file}" in added.output
    # The predicted coverage before and after optimize, for every admitted ORT series.
    rows = [line.split()[0] for line in added.output.splitlines() if line.startswith("  1.")]
    assert rows == ["1.22", "1.23", "1.24", "1.32"]
    dyn = run(
        project, "add", "dynbatch", str(sources["dynbatch"]), "--batch-independent",
        "--input", "x=1,3,8,8", "--input", "x=4,3,8,8",
    )  # fmt: skip
    assert dyn.exit_code == 0, dyn.output
    assert "input x: float32 [?, 3, 8, 8]" in dyn.output
    recipe = load_recipe(project / "models" / "dynbatch.toml")
    assert [(b.name, b.inputs) for b in recipe.buckets] == [
        ("1x3x8x8", {"x": (1, 3, 8, 8)}),
        ("4x3x8x8", {"x": (4, 3, 8, 8)}),
    ]
    assert recipe.batch_independent and recipe.source.path == sources["dynbatch"]

    only_buckets(project, ("384x640",))
    built = run(project, "build", "--models", "retinaface,convnet,dynbatch", "--json")
    assert built.exit_code == 0, built.output
    wheel = Path(json.loads(built.output)["package"]["wheel"])
    first = json.loads(built.output)["package"]["sha256"]
    again = run(project, "package", "--models", "retinaface,convnet,dynbatch", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["sha256"] == first  # byte-identical across rebuilds
    with zipfile.ZipFile(wheel) as archive:
        manifest = json.loads(archive.read("retinaface_coreml/models/manifest.json"))
        names = set(archive.namelist())
    assert manifest["schema_version"] == 2 and sorted(manifest["models"]) == [
        "convnet", "dynbatch", "retinaface",
    ]  # fmt: skip
    for rel in manifest["files"]:
        assert f"retinaface_coreml/models/{rel}" in names
    dynbatch = manifest["models"]["dynbatch"]
    assert dynbatch["inputs"] == [{"name": "x", "type": "tensor(float)", "shape": ["N", 3, 8, 8]}]
    assert dynbatch["batch_independent"] is True and "detector" not in dynbatch
    assert [b["file"] for b in dynbatch["buckets"]] == [
        "dynbatch/1x3x8x8.onnx", "dynbatch/4x3x8x8.onnx",
    ]  # fmt: skip
    for bucket in dynbatch["buckets"]:
        assert manifest["files"][bucket["file"]] == bucket["sha256"]
        for series in ("1.22", "1.23", "1.24", "1.32"):
            figures = dynbatch["coverage"][bucket["name"]][series]["mlprogram"]
            assert figures["partitions"] == 1 and figures["coverage"] == 1.0
    checks = dynbatch["validation"]["buckets"]
    assert all(
        b["worst_abs_diff"] <= 1e-4 and b["batch_slices_max_abs_diff"] <= 1e-4 for b in checks
    )
    assert manifest["models"]["convnet"]["coreml"]["provider_options"]["ModelFormat"] == "MLProgram"
    assert manifest["models"]["retinaface"]["detector"]["kind"] == "retinaface"
    keys = [b["coreml_cache_key"] for m in manifest["models"].values() for b in m["buckets"]]
    assert len(keys) == len(set(keys))
    # The runtime still finds RetinaFace in a schema 2 manifest.
    from retinaface_coreml.artifacts import load_manifest

    models_dir = project / "src" / "retinaface_coreml" / "models"
    read = load_manifest(models_dir)
    assert [b.name for b in read.detector_model().buckets] == ["384x640"]
    assert read.model("dynbatch").batch_independent


def test_an_op_only_newer_ort_builds_fails_the_gate_until_stated(project: Path, sources) -> None:
    added = run(project, "add", "softplus", str(sources["softplus"]))
    assert added.exit_code == 0, added.output
    rows = {line.split()[0]: line.split()[1:] for line in added.output.splitlines()
            if line.startswith("  1.")}  # fmt: skip
    # as exported, then after optimize: two partitions around Softplus under 1.22/1.23, one after
    assert rows["1.22"] == ["4/5,", "2", "4/5,", "2"] == rows["1.23"], added.output
    assert rows["1.24"] == ["5/5,", "1", "5/5,", "1"] == rows["1.32"], added.output
    dist = project / "dist"
    built = run(project, "build", "--models", "softplus")
    assert built.exit_code == 1
    (line,) = built.output.strip().splitlines()
    for part in (
        "model softplus", "bucket 1x3x8x8", "ORT 1.22 MLProgram", "2 partitions > max_partitions 1",
        "node 'softplus0'", "op Softplus", "rule no-builder", "[gate.exceptions]",
    ):  # fmt: skip
        assert part in line, line
    assert not list(dist.glob("*.whl")) if dist.exists() else True
    assert not (project / "src" / "retinaface_coreml" / "models").exists()

    recipe = project / "models" / "softplus.toml"
    text = recipe.read_text().replace(
        "[coreml]",
        '[gate.exceptions]\n"1.22" = { max_partitions = 2, min_coverage = 0.8 }\n'
        '"1.23" = { max_partitions = 2, min_coverage = 0.8 }\n\n[coreml]',
    )
    recipe.write_text(text)
    built = run(project, "build", "--models", "softplus", "--json")
    assert built.exit_code == 0, built.output
    manifest = json.loads(
        (project / "src" / "retinaface_coreml" / "models" / "manifest.json").read_text()
    )
    coverage = manifest["models"]["softplus"]["coverage"]["1x3x8x8"]
    assert coverage["1.22"]["mlprogram"] == {**coverage["1.22"]["mlprogram"], "partitions": 2,
                                             "exception": True}  # fmt: skip
    assert coverage["1.32"]["mlprogram"]["partitions"] == 1
    assert coverage["1.32"]["mlprogram"]["exception"] is False


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["add", "m", "{weights}/nope.onnx"], "nope.onnx: no such model file"),
        (["add", "m", "{weights}/../README.md"], "not a readable ONNX model"),
        (["add", "m", "{dyn}", "--input", "y=1,3,8,8"], "no input named 'y'"),
        (["add", "m", "{dyn}", "--input", "x=1,3,8"], "has rank 3, the input has rank 4"),
        (["add", "m", "{dyn}"], "input 'x' has dynamic dims [?, 3, 8, 8]; give --input x="),
        (["add", "retinaface", "{dyn}", "--input", "x=1,3,8,8"], "a recipe named 'retinaface'"),
    ],
)
def test_add_refuses_bad_input_in_one_line(project: Path, sources, args, expected) -> None:
    fill = {"weights": str(project / "weights"), "dyn": str(sources["dynbatch"])}
    result = run(project, *(a.format(**fill) for a in args))
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and expected in result.output, result.output
    assert sorted(p.name for p in (project / "models").glob("*.toml")) == ["retinaface.toml"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("optimize = true", "optimise = true"), "optimise: unknown key"),
        (lambda t: t.replace("[gate]", "[gate]\nmax_partition = 1"), "gate.max_partition: unknown"),
        (lambda t: t.replace('ModelFormat = "MLProgram"\n', ""), "coreml.ModelFormat: missing"),
        (lambda t: t.replace("weights/convnet.onnx", "weights/gone.onnx"), "source.path: "),
        (lambda t: t, "source.sha256: "),  # the file changed, below
    ],
)
def test_a_bad_recipe_is_one_line_naming_file_and_key(project: Path, sources, edit, expected):
    assert run(project, "add", "convnet", str(sources["convnet"])).exit_code == 0
    recipe = project / "models" / "convnet.toml"
    recipe.write_text(edit(recipe.read_text()))
    if expected == "source.sha256: ":
        conv_model(sources["convnet"], size=12)  # the pinned source changed
    result = run(project, "build", "--models", "convnet")
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert str(recipe) in line and expected in line, line
