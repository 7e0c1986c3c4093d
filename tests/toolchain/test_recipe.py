"""The recipe: fast buckets are multiples of 32, full-resolution buckets the frame's own size."""

from __future__ import annotations

from pathlib import Path

import pytest

from retinaface_coreml_toolchain.errors import RecipeError
from retinaface_coreml_toolchain.recipe import load_recipe
from tests.conftest import ROOT


def _with_buckets(tmp_path: Path, buckets: str) -> Path:
    text = (ROOT / "models" / "retinaface.toml").read_text()
    head, rest = text.split("[[buckets]]", 1)
    tail = rest[rest.index("[validate]") :]
    path = tmp_path / "models" / "retinaface.toml"
    path.parent.mkdir()
    path.write_text(head + buckets + "\n" + tail)
    return path


def test_the_shipped_recipe_has_the_full_resolution_video_sizes() -> None:
    recipe = load_recipe(ROOT / "models" / "retinaface.toml")
    full = {b.name for b in recipe.buckets if b.full_resolution}
    assert full == {"1080x1920", "1920x1080", "720x1280", "1280x720"}
    assert all(b.height % 32 == 0 == b.width % 32 for b in recipe.buckets if not b.full_resolution)
    assert recipe.weights.source is None


def test_a_full_resolution_bucket_is_the_frame_size_unpadded(tmp_path: Path) -> None:
    path = _with_buckets(
        tmp_path,
        "[[buckets]]\nheight = 640\nwidth = 640\n\n"
        "[[buckets]]\nheight = 1080\nwidth = 1920\nfull_resolution = true\n",
    )
    buckets = load_recipe(path).buckets
    assert [(b.name, b.full_resolution) for b in buckets] == [
        ("640x640", False),
        ("1080x1920", True),
    ]


@pytest.mark.parametrize(
    ("buckets", "message"),
    [
        ("[[buckets]]\nheight = 1080\nwidth = 1920\n", "multiples of 32"),
        ("[[buckets]]\nheight = 1080\nwidth = 1920\nfull_resolution = true\n", "no bucket without"),
        ("[[buckets]]\nheight = 0\nwidth = 640\nfull_resolution = true\n", "positive"),
    ],
)
def test_bad_buckets_name_the_recipe(tmp_path: Path, buckets: str, message: str) -> None:
    path = _with_buckets(tmp_path, buckets)
    with pytest.raises(RecipeError, match=rf"{path}: malformed recipe .*{message}"):
        load_recipe(path)
