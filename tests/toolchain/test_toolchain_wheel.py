"""The toolchain's own wheel: reproducible, light, and the README's CI step run as written.

The step is read from README.md ("The coverage check in your CI"), so the documented commands and
the tested ones cannot drift apart. The wheel goes into a fresh venv with neither the runtime nor
the build-only dependencies, and the step runs on the real RetinaFace source and a bucket model.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from retinaface_coreml_toolchain.toolchain_wheel import build_toolchain_wheel
from tests.conftest import ROOT

ENV = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
CI_HEADING = "### The coverage check in your CI"
RUNTIME_REQUIRES = {"numpy", "onnxruntime", "opencv-python-headless", "platformdirs", "filelock"}
"""What the runtime wheel requires today; the toolchain's split must add nothing to it."""
BUILD_ONLY = {"coremltools", "build", "hatchling"}


def ci_step(readme: str) -> list[str]:
    """The ``run: |`` lines of the first yaml block under the CI heading, dedented."""
    section = readme[readme.index(CI_HEADING) :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, f"no yaml block under {CI_HEADING!r}"
    lines = block.group(1).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "run: |") + 1
    indent = len(lines[start]) - len(lines[start].lstrip())
    run = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        run.append(line[indent:])
    return [line for line in run if line.strip()]


def requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
    return metadata.get_all("Requires-Dist") or []


def base_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def toolchain_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheel = build_toolchain_wheel(tmp_path_factory.mktemp("toolchain-wheel"), env=ENV)
    assert wheel is not None, "this test runs in a checkout"
    return wheel


def test_two_builds_are_byte_identical(toolchain_wheel: Path, tmp_path: Path) -> None:
    again = build_toolchain_wheel(tmp_path, env=ENV)
    assert again is not None and again.name == toolchain_wheel.name
    assert again.read_bytes() == toolchain_wheel.read_bytes()
    assert toolchain_wheel.name == "retinaface_coreml_toolchain-0.1.0-py3-none-any.whl"
    # Built in a temp folder and moved in: nothing else is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == [again.name]


def test_the_wheel_carries_the_runtimes_atomic_writer_and_a_console_script(
    toolchain_wheel: Path,
) -> None:
    link = ROOT / "toolchain" / "retinaface_coreml_toolchain" / "_atomic.py"
    runtime = ROOT / "src" / "retinaface_coreml" / "atomic.py"
    assert link.is_symlink() and link.resolve() == runtime.resolve()  # one implementation
    with zipfile.ZipFile(toolchain_wheel) as archive:
        assert archive.read("retinaface_coreml_toolchain/_atomic.py") == runtime.read_bytes()
        (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
        scripts = archive.read(entry_points).decode()
        assert not any(n.startswith("retinaface_coreml/") for n in archive.namelist())
    assert "retinaface-coreml-toolchain = retinaface_coreml_toolchain.cli:main" in scripts


def test_build_only_dependencies_are_an_extra(toolchain_wheel: Path) -> None:
    plain = {base_name(r) for r in requires(toolchain_wheel) if "extra ==" not in r}
    extra = {base_name(r) for r in requires(toolchain_wheel) if "extra == 'build'" in r}
    assert plain == {"onnx", "onnxsim", "onnxscript", "onnx-ir", "onnxruntime", "click", "igraph"}
    assert extra == BUILD_ONLY
    assert all("==" in r for r in requires(toolchain_wheel)), "the toolchain pins its dependencies"


def test_the_runtime_wheel_requires_nothing_new() -> None:
    wheels = sorted((ROOT / "dist").glob("retinaface_coreml-*.whl"))
    if len(wheels) != 1:
        pytest.fail(f"expected one runtime wheel in {ROOT / 'dist'}, found {wheels}: make models")
    plain = {base_name(r) for r in requires(wheels[0]) if "extra ==" not in r}
    assert plain == RUNTIME_REQUIRES


def test_the_readme_step_is_an_install_then_the_two_commands() -> None:
    install, *gate = ci_step((ROOT / "README.md").read_text())
    assert install == "python -m pip install retinaface_coreml_toolchain-*.whl"
    assert [line.split()[:2] for line in gate] == [
        ["retinaface-coreml-toolchain", "coverage"],
        ["retinaface-coreml-toolchain", "optimize"],
    ]
    assert "--ort-version 1.23 --format mlprogram --max-partitions 1" in gate[0]


# --- the README's step, in a fresh venv, on real models ----------------------------------------


@pytest.fixture(scope="module")
def ci_venv(tmp_path_factory: pytest.TempPathFactory, toolchain_wheel: Path) -> dict[str, str]:
    """A fresh venv in which the step's install line ran; the env a later step line sees."""
    work = tmp_path_factory.mktemp("ci")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in ENV.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    install, *_ = ci_step((ROOT / "README.md").read_text())
    shutil.copy(toolchain_wheel, work / toolchain_wheel.name)
    proc = _bash(install, cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr
    return env


def _bash(script: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """As Actions runs a ``shell: bash`` step: ``bash --noprofile --norc -eo pipefail {0}``."""
    path = cwd / "step.sh"
    path.write_text(script + "\n")
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def _installed(env: dict[str, str]) -> set[str]:
    out = subprocess.run(
        ["python", "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {line.split("==")[0].lower() for line in out.splitlines()}


@pytest.mark.slow
def test_the_fresh_venv_has_no_runtime_and_no_build_only_dependency(ci_venv) -> None:
    installed = _installed(ci_venv)
    assert "retinaface-coreml-toolchain" in installed
    assert not installed & {"retinaface-coreml", *BUILD_ONLY}
    usage = subprocess.run(
        ["retinaface-coreml-toolchain", "--help"], env=ci_venv, capture_output=True, text=True
    )
    assert usage.returncode == 0
    assert usage.stdout.startswith("Usage: retinaface-coreml-toolchain ")
    assert "2  bad input" in usage.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "code", "stderr"),
    [
        ("models/build/retinaface/buckets/640x640.onnx", 0, ""),
        ("weights/retinaface_mobilenet025.onnx", 1, "4 partitions, above 1"),
        ("not-onnx", 2, "model.onnx: onnxruntime cannot load it"),
        (None, 2, "model.onnx: no such model file"),
    ],
)
def test_the_readme_step_gates_with_exit_codes(
    ci_venv, tmp_path: Path, model: str | None, code: int, stderr: str
) -> None:
    _, *gate = ci_step((ROOT / "README.md").read_text())
    if model == "not-onnx":
        (tmp_path / "model.onnx").write_text("not an ONNX model\n")
    elif model is not None:
        shutil.copy(ROOT / model, tmp_path / "model.onnx")
    proc = _bash("\n".join(gate), cwd=tmp_path, env=ci_venv)
    assert proc.returncode == code, proc.stderr
    if code:
        # One line, no traceback; the gate stops the step before optimize writes anything.
        assert proc.stderr.count("\n") == 1 and stderr in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "model.coreml.onnx").exists()
    else:
        assert (tmp_path / "model.coreml.onnx").stat().st_size > 1_000_000
        assert "partitions supported by CoreML: 1 " in proc.stdout


@pytest.mark.slow
def test_the_wheel_carries_the_coverage_page_assets(ci_venv, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    bucket = ROOT / "models" / "build" / "retinaface" / "buckets" / "640x640.onnx"
    proc = subprocess.run(
        ["retinaface-coreml-toolchain", "coverage", str(bucket), "--format", "mlprogram",
         "--html", str(page)],
        cwd=tmp_path, env=ci_venv, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert page.stat().st_size > 10_000 and "<html" in page.read_text().lower()
