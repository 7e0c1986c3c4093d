"""`toolchain merge-caches`: several macOS builds' CoreML entries in one wheel, or one refusal.

The entries are real on-disk ORT-layout entries, written by ``precompile`` with the stand-in in
place of the CoreML EP at the runtime's seam (``tests/runtime/standin.py``), once per ORT release
as the macOS CI jobs do. The merge runs the exact command of ci.yml's fan-in step.
"""

from __future__ import annotations

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
from retinaface_coreml_toolchain.precompile import PrecompileRequest, precompile
from retinaface_coreml_toolchain.recipe import load_recipe
from retinaface_coreml_toolchain.wheel_tags import PIN_ENV
from tests.conftest import ROOT
from tests.runtime import standin

RELEASES = ("1.23.2", "1.32.0")
BUCKETS = ("384x640", "640x640")
MERGE_STEP = "merge the entries of every ORT release into one wheel"


def ci_step_command(name: str) -> str:
    """The one-line ``run:`` of the ci.yml step called ``name``."""
    lines = (ROOT / ".github" / "workflows" / "ci.yml").read_text().splitlines()
    at = lines.index(f"      - name: {name}")
    run = lines[at + 1].strip()
    assert run.startswith("run: "), run
    return run[len("run: ") :]


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<dir>/ort-<release>/{precompile.json,coreml/}`` for each release, as CI uploads them."""
    project = tmp_path_factory.mktemp("macos-jobs")
    build = project / "models" / "build"
    (build / "retinaface").mkdir(parents=True)
    shutil.copy(ROOT / "models" / "retinaface.toml", project / "models")
    shutil.copy(ROOT / "models" / "build" / "simplify.json", build)
    for name in BUCKETS:
        shutil.copy(ROOT / "models" / "build" / "retinaface" / f"{name}.onnx", build / "retinaface")
    recipe = load_recipe(project / "models" / "retinaface.toml")
    out = tmp_path_factory.mktemp("entries")
    for ort in RELEASES:
        with pytest.MonkeyPatch.context() as monkeypatch:
            standin.activate(monkeypatch, out / "events", ort_version=ort, compile_seconds=0.3)
            result = precompile(recipe, PrecompileRequest(buckets=BUCKETS))
        assert result.status == "built" and result.ort_version == ort
        shutil.copytree(build / "coreml", out / f"ort-{ort}" / "coreml")
        shutil.copy(build / "precompile.json", out / f"ort-{ort}")
    return out


@pytest.fixture
def uploaded(built: Path, entries: Path) -> Path:
    """The built project with the downloaded artifacts in ``entries/`` (as the fan-in job)."""
    for source in sorted(entries.glob("ort-*")):
        shutil.copytree(source, built / "entries" / source.name)
    return built


def _record(folder: Path) -> dict:
    return json.loads((folder / "precompile.json").read_text())


def _write_record(folder: Path, record: dict) -> None:
    (folder / "precompile.json").write_text(json.dumps(record, indent=2))


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def test_the_ci_step_ships_every_release_in_one_wheel(uploaded: Path) -> None:
    (uploaded / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if k not in {standin.ENV_VAR, PIN_ENV}}
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", ci_step_command(MERGE_STEP)],
        cwd=uploaded, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (uploaded / "dist").glob("retinaface_coreml-*.whl")
    assert wheel.name.startswith("retinaface_coreml-0.1.0-py3-none-macosx_14_0_")
    # The admitted range, as pyproject.toml states it: it installs beside an app's own ORT.
    requires = _metadata(wheel).get_all("Requires-Dist")
    assert "onnxruntime>=1.21" in requires and not any("onnxruntime==" in r for r in requires)
    manifest = load_manifest(uploaded / "src" / "retinaface_coreml" / "models")
    record = manifest.raw["coreml_cache"]
    assert [r["ort_version"] for r in record["releases"]] == list(RELEASES)
    assert record["ort_version"] == "1.23.2, 1.32.0" and len(record["entries"]) == 4
    digest = coreml.options_digest(record["provider_options"])
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    # The runtime finds, for each release, that release's entry, each file checked.
    for ort in RELEASES:
        layout = cache.CacheLayout(
            root=uploaded / "user-cache", ort_version=ort, macos_major="15", digest=digest
        )
        for bucket in BUCKETS:
            key = manifest.bucket(bucket).coreml_cache_key
            shipped = cache.matching_shipped(layout, cache.shipped_entries(manifest, key))
            assert shipped is not None and shipped.dir == f"coreml/{ort}/14/{digest}/{key}"
            cache.copy_shipped(manifest, shipped, uploaded / "copy" / ort / bucket)
            source = uploaded / "entries" / f"ort-{ort}" / shipped.dir
            for rel in shipped.files:
                assert sha256_file(uploaded / "copy" / ort / bucket / rel) == sha256_file(
                    source / rel
                )
                assert f"retinaface_coreml/models/{shipped.dir}/{rel}" in names
    assert "4 entries for onnxruntime 1.23.2, 1.32.0 on macOS 14" in proc.stdout


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
    assert "onnxruntime==1.23.2" in requires and "onnxruntime>=1.21" not in requires


# --- refusals: one line, exit 2, nothing written -----------------------------------------------


def _rebuilt_with_other_bytes(entries: Path) -> None:
    copy = entries / "ort-1.32.0-rebuilt"
    shutil.copytree(entries / "ort-1.32.0", copy)
    record = _record(copy)
    entry = record["entries"]["640x640"]
    rel = next(r for r in entry["files"] if r.endswith("model.onnx"))
    (copy / rel).write_bytes((copy / rel).read_bytes() + b"\0")
    entry["files"][rel] = sha256_file(copy / rel)
    _write_record(copy, record)


def _digest_edited(entries: Path) -> None:
    record = _record(entries / "ort-1.23.2")
    record["options_digest"] = "000000000000"
    _write_record(entries / "ort-1.23.2", record)


def _other_options(entries: Path) -> None:
    record = _record(entries / "ort-1.23.2")
    record["provider_options"]["MLComputeUnits"] = "CPUOnly"
    record["options_digest"] = coreml.options_digest(record["provider_options"])
    _write_record(entries / "ort-1.23.2", record)


def _key_of_other_models(entries: Path) -> None:
    folder = entries / "ort-1.23.2"
    record = _record(folder)
    entry = record["entries"]["640x640"]
    old = entry["key"]
    entry["key"] = "retinaface640x640" + "0" * 16
    entry["dir"] = entry["dir"].replace(old, entry["key"])
    entry["files"] = {k.replace(old, entry["key"]): v for k, v in entry["files"].items()}
    os.replace(next(folder.glob(f"coreml/*/*/*/{old}")), folder / entry["dir"])
    _write_record(folder, record)


def _tampered_file(entries: Path) -> None:
    (model,) = (entries / "ort-1.32.0").glob("coreml/*/*/*/retinaface384x640*/**/model.onnx")
    model.write_bytes(model.read_bytes()[:-10])


def _unlisted_entry(entries: Path) -> None:
    (digest_dir,) = (entries / "ort-1.32.0").glob("coreml/*/*/*")
    (digest_dir / "strangekey" / "model.txt").parent.mkdir()
    (digest_dir / "strangekey" / "model.txt").write_bytes(b"")


def _skipped(entries: Path) -> None:
    record = _record(entries / "ort-1.23.2")
    record.update(status="skipped", reason="CoreML precompile skipped: needs macOS", entries={})
    _write_record(entries / "ort-1.23.2", record)


def _no_record(entries: Path) -> None:
    (entries / "ort-1.23.2" / "precompile.json").unlink()


def _other_machine(entries: Path) -> None:
    record = _record(entries / "ort-1.23.2")
    record["machine"] = "arm64" if record["machine"] != "arm64" else "x86_64"
    _write_record(entries / "ort-1.23.2", record)


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
    sources = sorted(str(p) for p in (uploaded / "entries").glob("ort-*"))
    result = CliRunner().invoke(
        cli, ["--recipe", str(uploaded / "models" / "retinaface.toml"), "merge-caches", *sources]
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and message in result.output, result.output
    build = uploaded / "models" / "build"
    assert not (build / "coreml").exists() and not (build / "precompile.json").exists()
    assert (
        not (uploaded / "dist").exists()
        and not (uploaded / "src/retinaface_coreml/models").exists()
    )
