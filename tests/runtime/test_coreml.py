"""coreml.py: host detection from handed-in globals, options digest, provider options, session."""

from __future__ import annotations

from pathlib import Path

import pytest

from retinaface_coreml import coreml
from retinaface_coreml.artifacts import load_manifest
from tests.conftest import coreml_available


def test_macos_major_from_mac_ver() -> None:
    assert coreml.macos_major("14.4.1") == "14"
    assert coreml.macos_major("26.0") == "26"
    assert coreml.macos_major("") is None


def test_macos_26_seen_through_the_compat_shim_is_26() -> None:
    # A Python built with an older SDK reads "16.0" on macOS 26 (cpython gh-135675); no macOS
    # 16 to 25 exists, so the cache directory must not depend on which Python asks.
    assert coreml.macos_major("16.0") == "26"
    assert coreml.macos_major("16.1.2") == "26"
    assert coreml.macos_major("17.0") == "27"
    assert coreml.macos_major("15.7") == "15"
    assert (
        coreml.detect_host(ort_version="1.32.0", providers=(), mac_ver="16.0").macos_major == "26"
    )


def test_the_host_is_built_from_what_is_handed_in() -> None:
    mac = coreml.detect_host(
        ort_version="1.32.0",
        providers=(coreml.EP, coreml.CPU_EP),
        mac_ver="14.7.1",
        system="darwin",
    )
    assert (mac.macos_major, mac.coreml_available, mac.unavailable_reason) == ("14", True, "")
    linux = coreml.detect_host(
        ort_version="1.32.0", providers=(coreml.CPU_EP,), mac_ver="", system="linux"
    )
    assert not linux.coreml_available
    assert linux.unavailable_reason.startswith("CoreML is unavailable here: onnxruntime 1.32.0")
    assert "CPU backend is in use" in linux.unavailable_reason
    # A Linux ORT built with --use_coreml lists the EP, but it is a stub there.
    stub = coreml.detect_host(
        ort_version="1.32.0", providers=(coreml.EP,), mac_ver="", system="linux"
    )
    assert not stub.coreml_available and "needs macOS" in stub.unavailable_reason


def test_options_digest_is_short_stable_and_ignores_the_cache_directory() -> None:
    options = {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"}
    digest = coreml.options_digest(options)
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert coreml.options_digest(dict(reversed(options.items()))) == digest
    assert coreml.options_digest({**options, "ModelCacheDirectory": "/x"}) == digest
    assert coreml.options_digest({**options, "ModelFormat": "NeuralNetwork"}) != digest
    assert coreml.options_digest({**options, "RequireStaticInputShapes": "1"}) != digest


def test_provider_options_set_or_clear_the_cache_directory(tmp_path: Path) -> None:
    options = {"ModelFormat": "MLProgram", "ModelCacheDirectory": "/stale"}
    assert coreml.provider_options(options, tmp_path) == {
        "ModelFormat": "MLProgram",
        "ModelCacheDirectory": str(tmp_path),
    }
    assert coreml.provider_options(options, None) == {"ModelFormat": "MLProgram"}


@pytest.mark.coreml
@pytest.mark.skipif(not coreml_available(), reason="needs onnxruntime's CoreMLExecutionProvider")
def test_a_coreml_session_writes_its_entry_under_the_cache_key(package_models, tmp_path) -> None:
    manifest = load_manifest(package_models)
    bucket = manifest.detector_model().bucket("384x640")
    session = coreml.create_session(
        manifest.read_verified(bucket.file), options=coreml.DEFAULT_OPTIONS, cache_dir=tmp_path
    )
    assert session.get_providers()[0] == coreml.EP
    assert [p.name for p in tmp_path.iterdir()] == [bucket.coreml_cache_key]
