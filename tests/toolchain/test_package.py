"""`toolchain package`: manifest, reproducible wheel, and the wheel used in a fresh venv."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.package import build_wheel
from retinaface_coreml_toolchain.recipe import load_recipe
from tests.conftest import EXPECTED_FACES, ROOT
from zoo.proof import fresh_venv as venv_with


def test_manifest_lists_every_file_with_its_sha256(built: Path) -> None:
    recipe = load_recipe(built / "models" / "retinaface.toml")
    result = build_wheel([recipe])
    models = built / "src" / "retinaface_coreml" / "models"
    manifest = json.loads((models / "manifest.json").read_text())
    on_disk = sorted(p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file())
    on_disk.remove("manifest.json")
    assert manifest["schema_version"] == 2
    assert sorted(manifest["files"]) == on_disk
    assert on_disk == sorted(f"retinaface/{b.name}.onnx" for b in recipe.buckets)
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((models / name).read_bytes()).hexdigest() == digest
    assert set(manifest["versions"]) >= {"onnx", "onnxsim", "onnxruntime"}
    model = manifest["models"]["retinaface"]
    assert [b["name"] for b in model["buckets"]] == [b.name for b in recipe.buckets]
    for bucket in model["buckets"]:
        assert manifest["files"][bucket["file"]] == bucket["sha256"]
        assert bucket["inputs"]["input"][:2] == [1, 3]
    assert model["inputs"] == [
        {"name": "input", "type": "tensor(float)", "shape": ["batch_size", 3, "height", "width"]}
    ]
    assert model["detector"]["outputs"] == ["loc", "conf", "landmarks"]
    assert model["batch_independent"] is False
    assert model["coreml"]["provider_options"]["ModelFormat"] == "MLProgram"
    assert model["validation"]["buckets"][0]["worst_abs_diff"] <= 1e-4
    # Gated under every admitted ORT series, 1.22 under its stated exception.
    cov = model["coverage"]["640x640"]
    assert sorted(cov) == ["1.22", "1.23", "1.24", "1.32"]
    assert cov["1.32"]["mlprogram"]["partitions"] == 1 and cov["1.22"]["mlprogram"]["exception"]
    with zipfile.ZipFile(result.wheel) as wheel:
        names = set(wheel.namelist())
    assert {f"retinaface_coreml/models/{n}" for n in [*on_disk, "manifest.json"]} <= names
    assert result.wheel.name == "retinaface_coreml-0.1.0-py3-none-any.whl"


def test_two_builds_give_byte_identical_wheels(built: Path) -> None:
    recipe = load_recipe(built / "models" / "retinaface.toml")
    first = build_wheel(recipe).sha256
    second = build_wheel(recipe).sha256
    assert first == second


def test_package_without_validation_exits_2(built: Path) -> None:
    (built / "models" / "build" / "retinaface" / "validation.json").unlink()
    result = CliRunner().invoke(
        cli, ["--recipe", str(built / "models" / "retinaface.toml"), "package"]
    )
    assert result.exit_code == 2 and "run `toolchain validate` first" in result.output
    assert not (built / "src" / "retinaface_coreml" / "models").exists()


# --- the real wheel, installed into a venv that has none of the toolchain's dependencies ---


@pytest.fixture(scope="session")
def wheel() -> Path:
    wheels = sorted((ROOT / "dist").glob("retinaface_coreml-*.whl"))
    if len(wheels) != 1:
        pytest.fail(f"expected one wheel in {ROOT / 'dist'}, found {wheels}: run `make models`")
    return wheels[0]


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    return venv_with(wheel, tmp_path_factory.mktemp("wheelvenv"))


def _freeze(python: Path) -> set[str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {line.split("==")[0].lower() for line in out.splitlines()}


@pytest.mark.slow
def test_fresh_venv_has_none_of_the_toolchain_dependencies(fresh_venv: Path) -> None:
    installed = _freeze(fresh_venv)
    assert "retinaface-coreml" in installed
    assert not installed & {"onnx", "onnxsim", "coremltools", "click", "build", "hatchling"}


@pytest.mark.slow
def test_installed_wheel_detects_the_expected_faces(fresh_venv: Path) -> None:
    photos = sorted((ROOT / "tests" / "data" / "faces").glob("faceapi_sample*.jpg"))
    singles = ("matplotlib_grace_hopper.jpg", "skimage_astronaut.png", "skimage_chelsea.png")
    photos += [ROOT / "tests" / "data" / "faces" / name for name in singles]
    proc = subprocess.run(
        [str(fresh_venv), "-m", "retinaface_coreml", "detect", *map(str, photos), "--json"],
        capture_output=True, text=True, cwd=ROOT.parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    counts = {Path(r["image"]).name: len(r["faces"]) for r in results}
    assert counts == {p.name: EXPECTED_FACES[p.name] for p in photos}
    assert [counts[f"faceapi_sample{i}.jpg"] for i in range(1, 7)] == [3, 3, 3, 4, 5, 4]


@pytest.mark.slow
def test_installed_runtime_loads_no_build_dependencies(fresh_venv: Path) -> None:
    script = (
        "import sys, cv2\n"
        "import retinaface_coreml as r\n"
        f"img = cv2.imread({str(ROOT / 'tests/data/faces/faceapi_sample1.jpg')!r})\n"
        "faces = r.FaceDetector().detect(img)\n"
        "assert len(faces) == 3, faces\n"
        "bad = sorted(m for m in ('onnx', 'onnxsim', 'coremltools') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run(
        [str(fresh_venv), "-c", script], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.slow
def test_installed_tampered_artifact_is_refused(fresh_venv: Path, wheel: Path) -> None:
    site = subprocess.run(
        [str(fresh_venv), "-c", "import retinaface_coreml as r; print(r.__path__[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    target = Path(site) / "models" / "retinaface" / "640x640.onnx"
    original = target.read_bytes()
    try:
        target.write_bytes(original[:-100])
        image = ROOT / "tests" / "data" / "faces" / "skimage_astronaut.png"
        proc = subprocess.run(
            [str(fresh_venv), "-m", "retinaface_coreml", "detect", str(image), "--bucket=640x640"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 2
        assert str(target) in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        target.write_bytes(original)
