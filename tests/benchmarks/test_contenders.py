"""benchmarks/contenders.py: each contender the accuracy and speed benchmarks time still runs."""

from __future__ import annotations

import pytest

from benchmarks.common import SOURCE_MODEL, load_photos, match_boxes
from benchmarks.contenders import ours, source_full_resolution
from tests.conftest import reference_boxes


@pytest.mark.parametrize("make", [ours, source_full_resolution])
def test_a_contender_finds_the_reference_faces(make) -> None:
    if not SOURCE_MODEL.exists():
        pytest.fail(f"{SOURCE_MODEL} is missing: run `make models` first")
    contender = make()
    photo = "faceapi_sample2.jpg"
    rows = contender.boxes(contender.run(contender.prepare(load_photos()[photo])))
    assert match_boxes(rows[:, :4], reference_boxes()[photo]).matched == 3
