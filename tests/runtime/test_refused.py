"""Buckets the build's CoreML numerical gate refused are served on the CPU (refusal.py).

The packages are copies of the schema-2 test package (tests/runtime/schema2.py) whose manifest
records refusals the way ``toolchain precompile`` writes them (tests/toolchain/
test_coreml_gate.py proves the real build writes them; here the runtime reads them). CoreML is
the stand-in at coreml.py's seam (tests/runtime/standin.py); the models, caches, compile child
and CPU sessions are real. Each test that shows a refusal holding also shows the same setup
without it compiling or swapping, so it can fail.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

import retinaface_coreml.onnxruntime as ort
from retinaface_coreml import FaceDetector, ONNXRetinaFaceDetector, OptimizedFaceDetector
from retinaface_coreml.artifacts import MODELS_ENV, BucketInfo, Refusal, load_manifest
from retinaface_coreml.cli import main
from retinaface_coreml.errors import ArtifactError
from retinaface_coreml.packaged import backends, cache, refusal
from retinaface_coreml.packaged.session import Served
from tests.conftest import coreml_available
from tests.runtime import standin
from tests.runtime.photos import load_photo
from tests.runtime.test_backends import PHOTO, MacHost, built_on, shipped_package

DIGEST = "1e63e1b50d8d"  # the recipes' options: ModelFormat=MLProgram, MLComputeUnits=ALL
CONVNET_REFUSAL = {
    "reason": "y 2.1e-01 > 0.05",
    "figures": {"max_rel_diff": 0.2107, "relative_diff": {"y": 0.2107}},
}
FACES_REFUSAL = {
    "reason": "box IoU 0.8312 < 0.9",
    "figures": {"faces_cpu": 3, "faces_coreml": 3, "unmatched": 0, "min_iou": 0.8312},
}


def refuse(
    models: Path,
    dest: Path,
    model: str,
    refused: dict[str, dict],
    *,
    ort_version: str | None = None,
    macos: str = "14",
    digest: str = DIGEST,
) -> Path:
    """A copy of ``models`` whose ``model`` was refused, as one precompile run records it."""
    if not dest.exists():
        shutil.copytree(models, dest)
    path = dest / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["models"][model]["precompile"] = {
        "status": "built",
        "reason": "",
        "ort_version": ort_version or onnxruntime.__version__,
        "macos_major": macos,
        "options_digest": digest,
        "entries": {},
        "refused": refused,
    }
    path.write_text(json.dumps(manifest))
    return dest


def convnet(root: Path, options: dict[str, str] | None = None) -> backends.Target:
    packaged = load_manifest(root)
    return backends.target(packaged, packaged.model("convnet"), options)


def conv_input(batch: int = 1) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, 3, 16, 16)).astype(np.float32)


def stop(runner) -> None:
    """End a runner's compile child (the test has seen it start)."""
    assert isinstance(runner, backends.PendingRunner), "no compile child was started"
    if runner.process is not None:
        runner.process.kill()
        runner.process.wait()


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch) -> None:
    monkeypatch.setattr(refusal.log, "_once", set())


@pytest.fixture
def mac(monkeypatch, tmp_path: Path) -> MacHost:
    return MacHost(monkeypatch, tmp_path)


# --- the manifest ------------------------------------------------------------------------------


def test_refusals_are_read_per_bucket_from_one_run_or_every_merged_release(
    package_models, tmp_path
) -> None:
    assert all(not b.refusals for m in load_manifest(package_models).models.values()
               for b in m.buckets)  # fmt: skip
    one = refuse(package_models, tmp_path / "one", "convnet", {"b1_16x16": CONVNET_REFUSAL})
    model = load_manifest(one).model("convnet")
    (found,) = model.bucket("b1_16x16").refusals
    assert found == Refusal(
        ort_version=onnxruntime.__version__,
        macos_major="14",
        options_digest=DIGEST,
        reason=CONVNET_REFUSAL["reason"],
        figures=CONVNET_REFUSAL["figures"],
    )
    assert model.bucket("b2_16x16").refusals == ()
    # After merge-caches: one record per release; the top level names no single release.
    path = one / "manifest.json"
    manifest = json.loads(path.read_text())
    release = {"options_digest": DIGEST, "entries": {}}
    manifest["models"]["convnet"]["precompile"] = {
        "status": "built",
        "ort_version": "1.23.2, 1.32.0",
        "macos_major": "14",
        "releases": [
            {**release, "ort_version": "1.23.2", "macos_major": "14",
             "refused": {"b1_16x16": CONVNET_REFUSAL, "b2_16x16": CONVNET_REFUSAL}},
            {**release, "ort_version": "1.32.0", "macos_major": "15",
             "refused": {"b1_16x16": CONVNET_REFUSAL}},
        ],
    }  # fmt: skip
    path.write_text(json.dumps(manifest))
    model = load_manifest(one).model("convnet")
    assert [(r.ort_version, r.macos_major) for r in model.bucket("b1_16x16").refusals] == [
        ("1.23.2", "14"),
        ("1.32.0", "15"),
    ]
    assert [r.ort_version for r in model.bucket("b2_16x16").refusals] == ["1.23.2"]


@pytest.mark.parametrize(
    ("refused", "digest", "problem"),
    [
        (["b1_16x16"], DIGEST, "precompile.refused: not an object of buckets"),
        ({"b1_16x16": {"figures": {}}}, DIGEST, "['b1_16x16']: needs a 'reason' string"),
        ({"b1_16x16": {"reason": "x", "figures": [0.2]}}, DIGEST, "a 'figures' object"),
        ({"b9": CONVNET_REFUSAL}, DIGEST, "['b9']: no such bucket in this model"),
        # a refusal whose release does not say under which options it was measured
        ({"b1_16x16": CONVNET_REFUSAL}, "", "needs ort_version, macos_major and options_digest"),
    ],
)
def test_a_malformed_refusal_names_manifest_json_and_the_rebuild(
    package_models, tmp_path, refused, digest, problem
) -> None:
    root = refuse(package_models, tmp_path / "m", "convnet", refused, digest=digest)
    with pytest.raises(ArtifactError) as raised:
        load_manifest(root)
    message = str(raised.value)
    assert message.startswith(f"{root / 'manifest.json'}: malformed CoreML refusal record")
    assert "model 'convnet'" in message and problem in message
    assert "rebuild the wheel with `make models`" in message and "\n" not in message


# --- which release a refusal covers --------------------------------------------------------------


def _bucket(*refusals: Refusal) -> BucketInfo:
    return BucketInfo(name="b", model="m", file="m/b.onnx", inputs={"x": (1, 3)},
                      coreml_cache_key="mb", refusals=refusals)  # fmt: skip


def _refusal(ort_version: str, macos: str, digest: str = DIGEST) -> Refusal:
    return Refusal(ort_version=ort_version, macos_major=macos, options_digest=digest,
                   reason="r", figures={})  # fmt: skip


@pytest.mark.parametrize(
    ("recorded", "shipped_here", "holds"),
    [
        ([("1.32.0", "14")], False, True),  # measured on this very release
        ([("1.32.0", "14")], True, True),  # ... even beside a shipped entry from an older macOS
        ([("1.23.2", "14")], False, True),  # measured elsewhere, nothing measured here
        ([("1.32.0", "15")], False, True),
        ([("1.23.2", "14")], True, False),  # a gated entry shipped for this ORT wins
        ([], False, False),
    ],
)
def test_a_refusal_holds_on_every_release_unless_this_one_shipped_a_passing_entry(
    recorded, shipped_here, holds
) -> None:
    bucket = _bucket(*(_refusal(*r) for r in recorded))
    found = refusal.applicable(
        bucket, digest=DIGEST, ort_version="1.32.0", macos_major="14", shipped_here=shipped_here
    )
    assert (found is not None) == holds
    other = refusal.applicable(
        bucket, digest="0123456789ab", ort_version="1.32.0", macos_major="14", shipped_here=False
    )
    assert other is None  # other options were never measured


# --- serving -------------------------------------------------------------------------------------


def test_a_refused_bucket_is_served_on_cpu_without_a_compile_or_a_swap(
    package_models, mac, tmp_path, caplog
) -> None:
    x = conv_input()
    # The same setup without the refusal compiles in a child and swaps to CoreML.
    plain = convnet(package_models)
    bucket = plain.model.bucket("b1_16x16")
    runner = backends.open_runner(plain, bucket)
    assert isinstance(runner, backends.PendingRunner)
    runner.process.wait(timeout=120)
    runner.run({"x": x})
    assert runner.backend == "coreml" and standin.compiles(mac.events) == 1
    events = len(standin.events(mac.events))
    # Refused (same ORT, macOS and options): CPU at once, the user cache's entry left alone.
    refused = convnet(refuse(package_models, tmp_path / "r", "convnet",
                             {"b1_16x16": CONVNET_REFUSAL}))  # fmt: skip
    bucket = refused.model.bucket("b1_16x16")  # the record that carries the refusal
    opened = [backends.open_runner(refused, bucket, backend=b) for b in ("auto", "coreml", "auto")]
    assert [r.backend for r in opened] == ["cpu"] * 3
    assert not any(isinstance(r, backends.PendingRunner) for r in opened)
    assert len(standin.events(mac.events)) == events  # no compile, no load
    want = onnxruntime.InferenceSession(
        refused.manifest.read_verified(bucket.file), providers=["CPUExecutionProvider"]
    ).run(None, {"x": x})
    np.testing.assert_array_equal(opened[0].run({"x": x})[0], want[0])
    (warning,) = warnings_of(caplog)  # one per (model, bucket)
    assert warning.startswith("convnet b1_16x16: serving on the CPU, not CoreML: refused by the "
                              "build's CoreML numerical gate on onnxruntime")  # fmt: skip
    assert "y 2.1e-01 > 0.05" in warning and "relative_diff.y 0.2107" in warning
    assert "widen [coreml_tolerance] in models/convnet.toml" in warning
    assert "other CoreML provider options" in warning
    # A bucket the build did not refuse is untouched: it compiles as before.
    stop(backends.open_runner(refused, refused.model.bucket("b2_16x16")))


def test_other_coreml_options_are_not_covered_by_the_refusal(
    package_models, mac, tmp_path, caplog
) -> None:
    root = refuse(package_models, tmp_path / "r", "convnet", {"b1_16x16": CONVNET_REFUSAL})
    options = {"ModelFormat": "MLProgram", "MLComputeUnits": "CPUAndGPU"}
    # Compiled in a child under the options' own digest, as before.
    stop(backends.open_runner(convnet(root, options), convnet(root).model.bucket("b1_16x16")))
    assert warnings_of(caplog) == []


def test_a_refusal_on_another_release_holds_unless_this_one_shipped_a_passing_entry(
    package_models, mac, tmp_path
) -> None:
    mac.use(macos="15")

    def open_384(root: Path) -> backends.Runner:
        packaged = load_manifest(root)
        target = backends.target(packaged, packaged.detector_model())
        return backends.open_runner(target, target.model.bucket("384x640"))

    refused = {"384x640": FACES_REFUSAL}
    # Refused on onnxruntime 1.23.2, nothing shipped for this host: CPU, no child.
    runner = open_384(refuse(package_models, tmp_path / "e", "retinaface", refused,
                             ort_version="1.23.2"))  # fmt: skip
    assert runner.backend == "cpu" and not isinstance(runner, backends.PendingRunner)
    assert standin.events(mac.events) == []
    # An entry that passed the gate for this ORT, built on macOS 14, ships: it serves here.
    packaged = load_manifest(package_models)
    plain = backends.target(packaged, packaged.detector_model())
    key = plain.model.bucket("384x640").coreml_cache_key
    shipped = shipped_package(plain, tmp_path / "s", built_on(mac.layout(plain), "14"), key)
    refuse(package_models, shipped, "retinaface", refused, ort_version="1.23.2")
    assert open_384(shipped).backend == "coreml" and mac.kinds() == ["hit"]
    # Refused on this very release (ORT and macOS 15): the macOS 14 entry does not serve.
    runner = open_384(refuse(shipped, tmp_path / "h", "retinaface", refused, macos="15"))
    assert runner.backend == "cpu" and not isinstance(runner, backends.PendingRunner)
    assert mac.kinds() == ["hit"]


# --- what the user sees --------------------------------------------------------------------------


def test_info_says_a_bucket_is_refused_and_why(package_models, mac, tmp_path, capsys) -> None:
    root = refuse(package_models, tmp_path / "r", "convnet", {"b1_16x16": CONVNET_REFUSAL})
    record = backends.describe(convnet(root))
    states = {b["name"]: b for b in record["buckets"]}
    assert states["b1_16x16"]["coreml_cache"] == cache.REFUSED
    assert states["b1_16x16"]["backend"] == "cpu"
    detail = states["b1_16x16"]["coreml_cache_detail"]
    assert "numerical gate" in detail and "y 2.1e-01 > 0.05" in detail
    assert "served on the CPU" in detail and "[coreml_tolerance]" in detail
    assert states["b2_16x16"]["coreml_cache"] == cache.MISSING
    assert states["b2_16x16"]["coreml_refused"] == []
    assert record["backend"] == "cpu until compiled"
    # Without the refusal the same bucket is merely missing (compiled on first use).
    plain = {b["name"]: b for b in backends.describe(convnet(package_models))["buckets"]}
    assert plain["b1_16x16"]["coreml_cache"] == cache.MISSING
    assert main(["info", "--models-dir", str(root)]) == 0
    out = capsys.readouterr().out
    line = next(i for i, text in enumerate(out.splitlines()) if "bucket b1_16x16:" in text)
    lines = out.splitlines()
    assert lines[line].endswith("coreml cache: refused")
    assert "refused by the build's CoreML numerical gate" in lines[line + 1]
    assert "y 2.1e-01 > 0.05" in lines[line + 1]


def test_info_lists_the_builds_refusals_where_coreml_is_unavailable(
    package_models, tmp_path, capsys
) -> None:
    root = refuse(package_models, tmp_path / "r", "convnet", {"b1_16x16": CONVNET_REFUSAL})
    assert main(["info", "--models-dir", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    line = next(i for i, text in enumerate(lines) if "bucket b1_16x16:" in text)
    if not coreml_available():
        assert lines[line].endswith("coreml cache: unavailable")
    assert lines[line + 1].strip().startswith("refused by the build's CoreML numerical gate on")
    assert "y 2.1e-01 > 0.05" in lines[line + 1]


def test_the_detector_classes_serve_refused_buckets_on_cpu(
    package_models, mac, tmp_path, caplog
) -> None:
    photo = load_photo(PHOTO)
    # Without the refusal: the detector starts a compile child for its bucket.
    control = FaceDetector(models_dir=package_models)
    control.detect(photo)
    stop(control._runners["384x640"])
    events = len(standin.events(mac.events))
    retina = load_manifest(package_models).detector_model()
    root = refuse(package_models, tmp_path / "r", "retinaface",
                  {b.name: FACES_REFUSAL for b in retina.buckets})  # fmt: skip
    detector = FaceDetector(models_dir=root)
    assert len(detector.detect(photo)) == 3 and detector.backend == "cpu"
    assert not isinstance(detector._runners["384x640"], backends.PendingRunner)
    lines: list[str] = []
    FaceDetector(backend="coreml", models_dir=root).warmup(progress=lines.append)
    assert any(
        line.startswith("384x640: cpu backend, nothing to compile: refused") for line in lines
    )
    app = ONNXRetinaFaceDetector(None, use_coreml=True, models_dir=root)
    dets, _ = app.detect_faces(photo)
    assert len(dets) >= 3 and app.backend == "onnx_cpu"
    wrapper = OptimizedFaceDetector(tmp_path / "retinaface.pth", models_dir=root)
    wrapper.detect_faces(photo)
    assert wrapper.detector.backend == "onnx_cpu"
    assert len(standin.events(mac.events)) == events  # nothing compiled, nothing loaded
    warned = [w for w in warnings_of(caplog) if "not CoreML" in w]
    assert len(warned) == len(set(warned)) and "retinaface 384x640: serving on the CPU" in warned[0]
    assert "box IoU 0.8312 < 0.9" in warned[0] and "min_iou 0.8312" in warned[0]


def test_the_onnxruntime_drop_in_reports_the_cpu_for_a_refused_bucket(
    package_models, generated_sources, mac, tmp_path, monkeypatch
) -> None:
    root = refuse(package_models, tmp_path / "r", "convnet", {"b1_16x16": CONVNET_REFUSAL})
    monkeypatch.setenv(MODELS_ENV, str(root))
    session = ort.InferenceSession(
        str(generated_sources / "convnet.onnx"),
        providers=["CoreMLExecutionProvider", "CPUExecutionProvider"],
    )
    assert session.packaged_model == "convnet"
    session.run(None, {"x": conv_input(1)})
    assert session.last_served == Served(bucket="b1_16x16", backend="cpu")
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert not isinstance(session._runners["b1_16x16"], backends.PendingRunner)
    # The bucket the build did not refuse compiles in a child, as before.
    session.run(None, {"x": conv_input(2)})
    assert session.last_served == Served(bucket="b2_16x16", backend="cpu")  # while compiling
    stop(session._runners["b2_16x16"])
