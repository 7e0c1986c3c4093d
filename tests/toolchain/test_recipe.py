"""The recipe: fast buckets are multiples of 32, full-resolution buckets the frame's own size."""

from __future__ import annotations

from pathlib import Path

import pytest

from retinaface_coreml_toolchain.errors import RecipeError
from retinaface_coreml_toolchain.recipe import load_recipe
from tests.conftest import ROOT


def _bucket(height: int, width: int, *, full: bool = False) -> str:
    shape = f"[1, 3, {height}, {width}]"
    text = f'[[buckets]]\nname = "{height}x{width}"\ninputs = {{ input = {shape} }}\n'
    return text + ("full_resolution = true\n" if full else "") + "\n"


def _with_buckets(tmp_path: Path, buckets: str) -> Path:
    text = (ROOT / "models" / "retinaface.toml").read_text()
    head, rest = text.split("[[buckets]]", 1)
    tail = rest[rest.index("[validate]") :]
    path = tmp_path / "models" / "retinaface.toml"
    path.parent.mkdir()
    (tmp_path / "tests" / "data" / "faces").mkdir(parents=True)
    path.write_text(head + buckets + "\n" + tail)
    return path


def test_the_shipped_recipe_has_the_full_resolution_video_sizes() -> None:
    recipe = load_recipe(ROOT / "models" / "retinaface.toml")
    full = {b.name for b in recipe.buckets if b.full_resolution}
    assert full == {"1080x1920", "1920x1080", "720x1280", "1280x720"}
    assert all(b.height % 32 == 0 == b.width % 32 for b in recipe.buckets if not b.full_resolution)
    assert recipe.source.override is None and recipe.source.kind == "pypi-embedded"


def test_a_full_resolution_bucket_is_the_frame_size_unpadded(tmp_path: Path) -> None:
    path = _with_buckets(
        tmp_path,
        _bucket(640, 640) + _bucket(1080, 1920, full=True),
    )
    buckets = load_recipe(path).buckets
    assert [(b.name, b.full_resolution) for b in buckets] == [
        ("640x640", False),
        ("1080x1920", True),
    ]


@pytest.mark.parametrize(
    ("buckets", "message"),
    [
        (_bucket(1080, 1920), r"buckets\[0\]\.inputs: H and W must be multiples of 32"),
        (_bucket(1080, 1920, full=True), "buckets: no bucket without full_resolution"),
        (_bucket(0, 640, full=True), r"buckets\[0\]\.inputs\.input: must be a list of positive"),
    ],
)
def test_bad_buckets_name_the_recipe(tmp_path: Path, buckets: str, message: str) -> None:
    path = _with_buckets(tmp_path, buckets)
    with pytest.raises(RecipeError, match=rf"{path}: {message}"):
        load_recipe(path)
