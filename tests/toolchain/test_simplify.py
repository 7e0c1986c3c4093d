"""`toolchain simplify`: static buckets, no shape chains left, cache keys, bad input."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from retinaface_coreml_toolchain.cli import cli
from retinaface_coreml_toolchain.recipe import Bucket, load_recipe
from retinaface_coreml_toolchain.simplify import cache_key, simplify_buckets
from tests.toolchain.conftest import build_files


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, ["--recipe", str(project / "models" / "retinaface.toml"), *args])


def test_every_bucket_is_static_checked_and_keyed(project: Path) -> None:
    recipe = load_recipe(project / "models" / "retinaface.toml")
    result = simplify_buckets(recipe)
    assert [b.bucket for b in result.buckets] == [b.name for b in recipe.buckets]
    keys = set()
    for bucket, info in zip(recipe.buckets, result.buckets, strict=True):
        model = onnx.load(str(info.path))
        onnx.checker.check_model(model, full_check=True)
        dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert dims == [1, 3, bucket.height, bucket.width]
        ops = {n.op_type for n in model.graph.node}
        assert not ops & {"Shape", "Gather", "Unsqueeze"}, ops
        for output in model.graph.output:
            assert all(d.dim_value > 0 for d in output.type.tensor_type.shape.dim)
        props = {p.key: p.value for p in model.metadata_props}
        key = props["COREML_CACHE_KEY"]
        assert key == info.coreml_cache_key and key.isalnum() and len(key) <= 64
        keys.add(key)
        assert info.nodes_before == 237 and info.nodes_after < info.nodes_before
    assert len(keys) == len(recipe.buckets)
    record = json.loads((project / "models" / "build" / "retinaface" / "simplify.json").read_text())
    assert [b["bucket"] for b in record["buckets"]] == [b.name for b in recipe.buckets]


def test_simplify_is_deterministic(project: Path) -> None:
    recipe = load_recipe(project / "models" / "retinaface.toml")
    first = [b.sha256 for b in simplify_buckets(recipe).buckets]
    second = [b.sha256 for b in simplify_buckets(recipe).buckets]
    assert first == second


def test_cache_key_depends_on_content_and_bucket() -> None:
    a = cache_key(
        "retinaface", Bucket(name="640x640", inputs={"input": (1, 3, 640, 640)}), b"model-a"
    )
    assert a == cache_key(
        "retinaface", Bucket(name="640x640", inputs={"input": (1, 3, 640, 640)}), b"model-a"
    )
    assert a != cache_key(
        "retinaface", Bucket(name="640x640", inputs={"input": (1, 3, 640, 640)}), b"model-b"
    )
    assert a != cache_key(
        "retinaface", Bucket(name="384x640", inputs={"input": (1, 3, 384, 640)}), b"model-a"
    )
    assert a.isalnum() and len(a) <= 64


def _truncate_source(project: Path) -> Path:
    weights = project / "weights" / "retinaface_mobilenet025.onnx"
    weights.write_bytes(weights.read_bytes()[:900_000])
    # Record the truncated file as the fetched one, so what fails is the parse, not the pin.
    source = project / "models" / "build" / "retinaface" / "source.json"
    record = json.loads(source.read_text())
    record["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    source.write_text(json.dumps(record))
    return weights


def test_truncated_onnx_exits_2_with_one_line_and_writes_nothing(project: Path) -> None:
    weights = _truncate_source(project)
    before = build_files(project)
    result = run(project, "simplify")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(weights) in lines[0] and "fetch" in lines[0]
    assert "Traceback" not in result.output
    assert build_files(project) == before


def test_weights_changed_since_fetch_exits_2(project: Path) -> None:
    weights = project / "weights" / "retinaface_mobilenet025.onnx"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = run(project, "simplify")
    assert result.exit_code == 2 and "since `toolchain fetch`" in result.output


def test_unwritable_build_folder_exits_2_with_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests run as root, which ignores permission bits: the OS's refusal is raised instead."""
    import retinaface_coreml_toolchain.files

    build = project / "models" / "build" / "retinaface"

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(retinaface_coreml_toolchain.files.tempfile, "mkdtemp", refuse)
    before = build_files(project)
    result = run(project, "simplify")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(build) in lines[0] and "writable" in lines[0]
    assert "Permission denied" in lines[0] and "Traceback" not in result.output
    assert build_files(project) == before


def test_cache_key_keeps_ascii_letters_and_digits_only() -> None:
    # ORT tests each character with C's isalnum: "é" or "²" would make it fall back to a path hash.
    key = cache_key(
        "rétina²face", Bucket(name="640x640", inputs={"input": (1, 3, 640, 640)}), b"model-a"
    )
    assert key.startswith("rtinaface640x640")
    assert re.fullmatch(r"[A-Za-z0-9]{1,64}", key)
