"""`toolchain merge-caches`: several macOS builds' CoreML entries in one wheel, or one refusal.

The project is multi-model: RetinaFace (cut to two buckets) and a generated convnet. The entries
are real on-disk ORT-layout entries, written per model by ci.yml's macOS entries step (its exact
commands, run here once per ORT release) with the stand-in in place of the CoreML EP at the
runtime's seam (``tests/runtime/standin.py``). The merge runs the exact command of ci.yml's
fan-in step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from click.testing import CliRunner

from retinaface_coreml import coreml
from retinaface_coreml.artifacts import load_manifest, sha256_file
from retinaface_coreml.packaged import cache
from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.recipe import ort_floor
from retinaface_coreml_toolchain.wheel_tags import PIN_ENV
from tests.conftest import ROOT
from tests.runtime import standin
from tests.toolchain.conftest import (
    WEIGHTS,
    add_convnet,
    copy_build,
    make_project,
    only_buckets,
)

RELEASES = ("1.23.2", "1.32.0")
BUCKETS = {"retinaface": ("384x640", "640x640"), "convnet": ("1x3x8x8",)}
ENTRIES_STEP = "CoreML entries of every model for onnxruntime ${{ matrix.ort }}"
MERGE_STEP = "merge the entries of every ORT release into one wheel"


def ci_step_commands(name: str) -> str:
    """The ``run:`` of the ci.yml step called ``name``: one line, or a ``|`` block dedented."""
    lines = (ROOT / ".github" / "workflows" / "ci.yml").read_text().splitlines()
    at = lines.index(f"      - name: {name}")
    run_at = next(i for i in range(at + 1, len(lines)) if lines[i].strip().startswith("run:"))
    run = lines[run_at].strip()[len("run:") :].strip()
    if run != "|":
        return run
    indent = len(lines[run_at]) - len(lines[run_at].lstrip()) + 2
    block = []
    for line in lines[run_at + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        block.append(line[indent:])
    return "\n".join(block).strip() + "\n"


def _bash(commands: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", commands],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project as each macOS job leaves it: RetinaFace and convnet built, then ci.yml's
    entries step run once per ORT release under the stand-in, which fills
    ``entries/ort-<release>/<model>/{precompile.json,coreml/}``."""
    if not WEIGHTS.exists():
        pytest.fail(f"{WEIGHTS} is missing: run `make models` first")
    project = copy_build(make_project(tmp_path_factory.mktemp("macos-jobs")))
    only_buckets(project, BUCKETS["retinaface"])
    add_convnet(project)
    (project / ".venv").symlink_to(ROOT / ".venv")
    for ort in RELEASES:
        with pytest.MonkeyPatch.context() as monkeypatch:
            standin.activate(monkeypatch, project / "events", ort_version=ort, compile_seconds=0.3)
            env = {k: v for k, v in os.environ.items() if k != PIN_ENV}
            proc = _bash(ci_step_commands(ENTRIES_STEP), project, {**env, "ORT": ort})
        assert proc.returncode == 0, proc.stderr
        for model in BUCKETS:
            record = _record(project / "entries" / f"ort-{ort}" / model)
            assert record["status"] == "built" and record["ort_version"] == ort
            assert sorted(record["entries"]) == sorted(BUCKETS[model]) and not record["refused"]
    return project


@pytest.fixture
def uploaded(jobs: Path, tmp_path: Path) -> Path:
    """A copy of the built project with every job's entries in ``entries/`` (as the fan-in
    job downloads them)."""
    project = tmp_path / "fan-in"
    shutil.copytree(jobs, project, symlinks=True)
    return project


def _snapshot(project: Path) -> dict[str, str]:
    """sha256 of every file below models/build, for "nothing was written" checks."""
    build = project / "models" / "build"
    return {
        p.relative_to(build).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(build.rglob("*"))
        if p.is_file()
    }


def _record(folder: Path) -> dict:
    return json.loads((folder / "precompile.json").read_text())


def _write_record(folder: Path, record: dict) -> None:
    (folder / "precompile.json").write_text(json.dumps(record, indent=2))


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def test_the_ci_step_ships_every_release_of_every_model_in_one_wheel(uploaded: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {standin.ENV_VAR, PIN_ENV}}
    proc = _bash(ci_step_commands(MERGE_STEP), uploaded, env)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (uploaded / "dist").glob("retinaface_coreml-*.whl")
    assert wheel.name.startswith("retinaface_coreml-0.1.0-py3-none-macosx_14_0_")
    # The admitted range, as pyproject.toml states it: it installs beside an app's own ORT.
    requires = _metadata(wheel).get_all("Requires-Dist")
    assert f"onnxruntime>={ort_floor(ROOT)}" in requires
    assert not any("onnxruntime==" in r for r in requires)
    manifest = load_manifest(uploaded / "src" / "retinaface_coreml" / "models")
    assert sorted(manifest.models) == sorted(BUCKETS)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name, buckets in BUCKETS.items():
        model = manifest.model(name)
        digest = model.coreml.options_digest
        # One record per (ORT, macOS major), each with every bucket's entry.
        records = model.raw["coreml_cache"]
        assert [(r["ort_version"], r["macos_major"]) for r in records] == [
            (ort, "14") for ort in RELEASES
        ]
        for record in records:
            assert sorted(record["entries"]) == sorted(buckets)
            assert all(e["numerics"]["passed"] for e in record["entries"].values())
        precompile = model.raw["precompile"]
        assert precompile["ort_version"] == ", ".join(RELEASES)
        assert [r["refused"] for r in precompile["releases"]] == [{}, {}]
        # The runtime finds, for each release, that release's entry, each file checked.
        for ort in RELEASES:
            layout = cache.CacheLayout(
                root=uploaded / "user-cache", ort_version=ort, macos_major="15", digest=digest
            )
            for bucket in buckets:
                key = model.bucket(bucket).coreml_cache_key
                shipped = cache.matching_shipped(layout, cache.shipped_entries(manifest, key))
                assert shipped is not None and shipped.dir == f"coreml/{ort}/14/{digest}/{key}"
                target = uploaded / "copy" / ort / bucket
                cache.copy_shipped(manifest, shipped, target)
                source = uploaded / "entries" / f"ort-{ort}" / name / shipped.dir
                for rel in shipped.files:
                    assert sha256_file(target / rel) == sha256_file(source / rel)
                    assert f"retinaface_coreml/models/{shipped.dir}/{rel}" in names
    assert "retinaface: 4 entries for onnxruntime 1.23.2, 1.32.0 on macOS 14" in proc.stdout
    assert "convnet: 2 entries for onnxruntime 1.23.2, 1.32.0 on macOS 14" in proc.stdout


def test_one_release_with_the_opt_in_pin_requires_exactly_that_onnxruntime(
    uploaded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PIN_ENV, "1")
    result = CliRunner().invoke(
        cli,
        [
            "--recipe", str(uploaded / "models" / "retinaface.toml"),
            "merge-caches", str(uploaded / "entries" / "ort-1.23.2"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (wheel,) = (uploaded / "dist").glob("retinaface_coreml-*.whl")
    requires = _metadata(wheel).get_all("Requires-Dist")
    assert "onnxruntime==1.23.2" in requires and f"onnxruntime>={ort_floor(ROOT)}" not in requires


# --- refusals: one line, exit 2, nothing written -----------------------------------------------


def _rebuilt_with_other_bytes(entries: Path) -> None:
    shutil.copytree(entries / "ort-1.32.0", entries / "ort-1.32.0-rebuilt")
    copy = entries / "ort-1.32.0-rebuilt" / "retinaface"
    record = _record(copy)
    entry = record["entries"]["640x640"]
    rel = next(r for r in entry["files"] if r.endswith("model.onnx"))
    (copy / rel).write_bytes((copy / rel).read_bytes() + b"\0")
    entry["files"][rel] = sha256_file(copy / rel)
    _write_record(copy, record)


def _digest_edited(entries: Path) -> None:
    record = _record(entries / "ort-1.23.2" / "convnet")
    record["options_digest"] = "000000000000"
    _write_record(entries / "ort-1.23.2" / "convnet", record)


def _other_options(entries: Path) -> None:
    record = _record(entries / "ort-1.23.2" / "retinaface")
    record["provider_options"]["MLComputeUnits"] = "CPUOnly"
    record["options_digest"] = coreml.options_digest(record["provider_options"])
    _write_record(entries / "ort-1.23.2" / "retinaface", record)


def _key_of_other_models(entries: Path) -> None:
    folder = entries / "ort-1.23.2" / "retinaface"
    record = _record(folder)
    entry = record["entries"]["640x640"]
    old = entry["key"]
    entry["key"] = "retinaface640x640" + "0" * 16
    entry["dir"] = entry["dir"].replace(old, entry["key"])
    entry["files"] = {k.replace(old, entry["key"]): v for k, v in entry["files"].items()}
    os.replace(next(folder.glob(f"coreml/*/*/*/{old}")), folder / entry["dir"])
    _write_record(folder, record)


def _tampered_file(entries: Path) -> None:
    (model,) = (entries / "ort-1.32.0" / "retinaface").glob(
        "coreml/*/*/*/retinaface384x640*/**/model.onnx"
    )
    model.write_bytes(model.read_bytes()[:-10])


def _unlisted_entry(entries: Path) -> None:
    (digest_dir,) = (entries / "ort-1.32.0" / "convnet").glob("coreml/*/*/*")
    (digest_dir / "strangekey" / "model.txt").parent.mkdir()
    (digest_dir / "strangekey" / "model.txt").write_bytes(b"")


def _skipped(entries: Path) -> None:
    record = _record(entries / "ort-1.23.2" / "retinaface")
    record.update(status="skipped", reason="CoreML precompile skipped: needs macOS", entries={})
    _write_record(entries / "ort-1.23.2" / "retinaface", record)


def _no_record(entries: Path) -> None:
    (entries / "ort-1.23.2" / "convnet" / "precompile.json").unlink()


def _other_machine(entries: Path) -> None:
    record = _record(entries / "ort-1.32.0" / "convnet")
    record["machine"] = "arm64" if record["machine"] != "arm64" else "x86_64"
    _write_record(entries / "ort-1.32.0" / "convnet", record)


def _model_without_recipe(entries: Path) -> None:
    shutil.copytree(entries / "ort-1.23.2" / "convnet", entries / "ort-1.23.2" / "landmarks")


@pytest.mark.parametrize(
    ("spoil", "env", "message"),
    [
        (_rebuilt_with_other_bytes, {}, "hold different bytes for the same ORT, macOS, options"),
        (_digest_edited, {}, "options digest 000000000000 is not the digest of its provider"),
        (_other_options, {}, "built with CoreML options"),
        (_key_of_other_models, {}, "for bucket 640x640 matches no bucket model of this build"),
        (_tampered_file, {}, "differs from the sha256 precompile.json lists"),
        (_unlisted_entry, {}, "strangekey: an entry precompile.json does not list"),
        (_skipped, {}, "no entries were built (CoreML precompile skipped"),
        (_no_record, {}, "precompile.json: missing"),
        (_other_machine, {}, "one wheel carries one CPU architecture"),
        (_model_without_recipe, {}, "landmarks: not a model of this build"),
        (None, {PIN_ENV: "1"}, "an exact onnxruntime pin needs entries of one release"),
    ],
)
def test_disagreeing_entries_are_refused_before_anything_is_written(
    uploaded: Path, monkeypatch: pytest.MonkeyPatch, spoil, env, message
) -> None:
    if spoil is not None:
        spoil(uploaded / "entries")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = _snapshot(uploaded)
    sources = sorted(str(p) for p in (uploaded / "entries").glob("ort-*"))
    result = CliRunner().invoke(
        cli, ["--recipe", str(uploaded / "models" / "retinaface.toml"), "merge-caches", *sources]
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and message in result.output, result.output
    assert _snapshot(uploaded) == before
    assert (
        not (uploaded / "dist").exists()
        and not (uploaded / "src/retinaface_coreml/models").exists()
    )
