"""benchmarks/packaged.py: which packaged models a benchmark can measure, and why not the rest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.common import SOURCE_MODEL
from benchmarks.packaged import MODELS_ENV, feed, targets


def test_retinaface_is_found_with_its_source_and_640_bucket(served: Path) -> None:
    found, missing = targets()
    assert found[0].name == "retinaface"
    target = found[0]
    assert target.source == SOURCE_MODEL
    assert target.bucket == "640x640"
    assert target.bucket_file.is_file()
    assert target.inputs == {"input": (1, 3, 640, 640)}
    # `make models` packages RetinaFace alone; MTL and STAR only after `make zoo` (a checkout
    # where it ran packages them too). Each model not packaged says so and how to add it.
    packaged = set(json.loads((served / "manifest.json").read_text())["models"])
    assert {t.name for t in found} == {"retinaface", "mtl", "star"} & packaged
    assert {m.name for m in missing} == {"mtl", "star"} - packaged
    assert all("make zoo" in m.reason and "toolchain add" in m.reason for m in missing)


def test_a_schema_1_manifest_is_named_for_every_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 1}))
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    found, missing = targets()
    assert found == []
    assert [m.name for m in missing] == ["retinaface", "mtl", "star"]
    assert all("schema 1, not 2" in m.reason for m in missing)


def test_a_source_not_on_disk_is_named(served: Path, tmp_path: Path) -> None:
    manifest = json.loads((served / "manifest.json").read_text())
    manifest["models"]["retinaface"]["source"]["sha256"] = "0" * 64
    copy = tmp_path / "manifest.json"
    copy.write_text(json.dumps(manifest))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MODELS_ENV, str(tmp_path))
        found, missing = targets(("retinaface",))
    assert found == []
    assert "source (sha256 000000000000) not found" in missing[0].reason


def test_feed_has_the_bucket_shape_and_source_dtype(served: Path) -> None:
    (target,), _ = targets(("retinaface",))
    x = feed(target)
    assert x["input"].shape == (1, 3, 640, 640)
    assert x["input"].dtype == np.float32
    np.testing.assert_array_equal(x["input"], feed(target)["input"])
