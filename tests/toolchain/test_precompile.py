"""`toolchain precompile`: the skip off macOS, the cache it builds, the hit check, the package.

Off macOS the CoreML session is a stand-in that keeps ORT's cache contract (it reads
COREML_CACHE_KEY from the model's metadata, writes ``<dir>/<key>/`` when it is missing and
nothing on a hit); the recipe, the bucket models, the record and the package step are real.
"""

from __future__ import annotations

import json
import sys
import time
import zipfile
from pathlib import Path

import onnx
import onnxruntime
import pytest
from click.testing import CliRunner

from retinaface_coreml import coreml
from retinaface_coreml.artifacts import load_manifest, sha256_file
from retinaface_coreml.packaged import cache
from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.errors import GateFailed
from retinaface_coreml_toolchain.precompile import SKIPPED, PrecompileRequest, precompile
from retinaface_coreml_toolchain.recipe import load_recipe
from tests.conftest import coreml_available

MAC = coreml.Host(
    ort_version=onnxruntime.__version__,
    providers=(coreml.EP, coreml.CPU_EP),
    macos_major="14",
    system="darwin",
)
LINUX = coreml.Host(
    ort_version=onnxruntime.__version__,
    providers=(coreml.CPU_EP,),
    macos_major=None,
    system="linux",
)


class StandInSession:
    """ORT's cache behaviour without CoreML; ``rewrite_on_hit`` breaks the hit on purpose."""

    def __init__(self, *, rewrite_on_hit: bool = False, write_entry: bool = True) -> None:
        self.rewrite_on_hit = rewrite_on_hit
        self.write_entry = write_entry
        self.calls: list[tuple[str, Path]] = []

    def __call__(self, model: bytes, options, cache_dir: Path):
        proto = onnx.load_from_string(model)
        key = {p.key: p.value for p in proto.metadata_props}["COREML_CACHE_KEY"]
        entry = cache_dir / key
        hit = entry.exists()
        self.calls.append(("hit" if hit else "compile", cache_dir))
        if (not hit and self.write_entry) or (hit and self.rewrite_on_hit):
            target = entry / "0_static_mlprogram" / "model" / "Data" / "model.mlmodel"
            target.parent.mkdir(parents=True, exist_ok=True)
            time.sleep(0.3)  # a compile is slower than a hit; the step gates on that
            target.write_bytes(model + (b"again" if hit else b""))
            (entry / "model.txt").write_bytes(b"")
        return onnxruntime.InferenceSession(model, providers=[coreml.CPU_EP])


def recipe_of(project: Path):
    return load_recipe(project / "models" / "retinaface.toml")


def test_off_macos_it_prints_the_one_line_and_succeeds(built: Path) -> None:
    if sys.platform == "darwin" and coreml_available():
        pytest.skip("the real precompile runs here")
    result = CliRunner().invoke(
        cli, ["--recipe", str(built / "models" / "retinaface.toml"), "precompile"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == SKIPPED + "\n"
    assert SKIPPED == (
        "CoreML precompile skipped: needs macOS with onnxruntime's CoreML execution provider"
    )


def test_the_skip_record_keeps_the_options_and_removes_an_old_cache(built: Path) -> None:
    stale = built / "models" / "build" / "retinaface" / "coreml" / "1.31.0" / "14" / "x" / "key"
    stale.mkdir(parents=True)
    result = precompile(recipe_of(built), host=LINUX)
    record = json.loads((built / "models" / "build" / "retinaface" / "precompile.json").read_text())
    assert record == result.to_dict()
    assert record["status"] == "skipped" and record["entries"] == {}
    assert record["provider_options"] == {"MLComputeUnits": "ALL", "ModelFormat": "MLProgram"}
    assert record["options_digest"] == coreml.options_digest(record["provider_options"])
    assert not (built / "models" / "build" / "retinaface" / "coreml").exists()


def test_on_macos_each_bucket_is_compiled_hashed_and_checked_as_a_hit(built: Path) -> None:
    recipe = recipe_of(built)
    session = StandInSession()
    result = precompile(
        recipe, PrecompileRequest(buckets=("384x640", "640x640")), host=MAC, open_session=session
    )
    build = built / "models" / "build" / "retinaface"
    digest = coreml.options_digest(recipe.coreml_options)
    assert [c[0] for c in session.calls] == ["compile", "hit", "compile", "hit"]
    assert result.status == "built" and [e.bucket for e in result.entries] == ["384x640", "640x640"]
    keys = {
        b["bucket"]: b["coreml_cache_key"]
        for b in json.loads((build / "simplify.json").read_text())["buckets"]
    }
    for entry in result.entries:
        assert entry.key == keys[entry.bucket]
        assert entry.dir == f"coreml/{onnxruntime.__version__}/14/{digest}/{entry.key}"
        on_disk = {
            p.relative_to(build).as_posix(): sha256_file(p)
            for p in (build / entry.dir).rglob("*")
            if p.is_file()
        }
        assert entry.files == on_disk and len(on_disk) == 2
        assert entry.hit_seconds < entry.compile_seconds
    record = json.loads((build / "precompile.json").read_text())
    assert record["entries"]["384x640"]["dir"] == result.entries[0].dir
    assert record["macos_major"] == "14"
    # Compiled in a staging folder, then published whole: no leftovers beside it.
    assert sorted(p.name for p in build.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("session", "message"),
    [
        (StandInSession(rewrite_on_hit=True), "not a cache hit"),
        (StandInSession(write_entry=False), "wrote no cache entry"),
    ],
)
def test_a_second_session_that_is_no_hit_fails_the_build(built: Path, session, message) -> None:
    with pytest.raises(GateFailed, match=message):
        precompile(
            recipe_of(built),
            PrecompileRequest(buckets=("384x640",)),
            host=MAC,
            open_session=session,
        )
    build = built / "models" / "build" / "retinaface"
    assert not (build / "coreml").exists() and not (build / "precompile.json").exists()


def test_the_package_ships_the_cache_where_the_runtime_looks_for_it(built: Path) -> None:
    """precompile -> package -> the runtime's shipped-entry lookup, with one options digest."""
    from retinaface_coreml_toolchain.package import build_wheel

    recipe = recipe_of(built)
    precompile(
        recipe, PrecompileRequest(buckets=("384x640",)), host=MAC, open_session=StandInSession()
    )
    packaged = build_wheel(recipe)
    assert packaged.coreml_cache is True
    assert packaged.wheel.name.startswith("retinaface_coreml-0.1.0-py3-none-macosx_14_0_")
    models = built / "src" / "retinaface_coreml" / "models"
    manifest = load_manifest(models)
    model = manifest.model("retinaface")
    key = model.bucket("384x640").coreml_cache_key
    layout = cache.CacheLayout(
        root=built / "user-cache",
        ort_version=onnxruntime.__version__,
        macos_major="14",
        digest=model.coreml.options_digest,
    )
    shipped = cache.matching_shipped(layout, cache.shipped_entries(manifest, key))
    assert shipped is not None and len(shipped.files) == 2
    (record,) = model.raw["coreml_cache"]  # one record per (ORT, macOS major)
    assert record["entries"]["384x640"]["dir"] == shipped.dir and record["macos_major"] == "14"
    cache.copy_shipped(manifest, shipped, built / "copy")  # every file matches manifest.json
    with zipfile.ZipFile(packaged.wheel) as wheel:
        names = wheel.namelist()
    assert f"retinaface_coreml/models/{shipped.dir}/model.txt" in names


@pytest.mark.coreml
@pytest.mark.skipif(not coreml_available(), reason="needs onnxruntime's CoreMLExecutionProvider")
def test_real_precompile_builds_a_hit_for_one_bucket(built: Path) -> None:
    result = precompile(recipe_of(built), PrecompileRequest(buckets=("384x640",)))
    (entry,) = result.entries
    assert result.status == "built" and entry.files
    assert entry.hit_seconds < entry.compile_seconds
    assert any(rel.endswith("Manifest.json") for rel in entry.files)


def test_build_precompiles_every_model_with_its_own_gate(
    built: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`build` on RetinaFace and a generated convnet under the stand-in (a float16 device):
    each model's entries are gated its own way and both ship in one macOS wheel."""
    from retinaface_coreml_toolchain.wheel_tags import PIN_ENV
    from tests.runtime import standin
    from tests.toolchain.conftest import add_convnet, only_buckets

    only_buckets(built, ("384x640",))
    add_convnet(built)
    monkeypatch.delenv(PIN_ENV, raising=False)
    standin.activate(monkeypatch, tmp_path / "events", compile_seconds=0.3, weight_bits=10)
    result = CliRunner().invoke(
        cli,
        ["--recipe", str(built / "models" / "retinaface.toml"), "build", "--json",
         "--models", "retinaface,convnet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    pre = {m["name"]: m["precompile"] for m in record["models"]}
    faces = pre["retinaface"]["entries"]["384x640"]["numerics"]
    outputs = pre["convnet"]["entries"]["1x3x8x8"]["numerics"]
    assert faces["passed"] and faces["images"] == 10 and faces["faces_cpu"] > 0
    assert outputs["passed"] and "faces_cpu" not in outputs and outputs["relative_diff"]["y"] > 0
    for name in pre:
        assert (built / "models" / "build" / name / "precompile.json").is_file()
    wheel = Path(record["package"]["wheel"])
    assert wheel.name.startswith("retinaface_coreml-0.1.0-py3-none-macosx_14_0_")
    manifest = load_manifest(built / "src" / "retinaface_coreml" / "models")
    for name, bucket in (("retinaface", "384x640"), ("convnet", "1x3x8x8")):
        (cached,) = manifest.model(name).raw["coreml_cache"]
        assert list(cached["entries"]) == [bucket] and cached["macos_major"] == "14"
