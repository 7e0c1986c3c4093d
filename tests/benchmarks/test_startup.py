"""benchmarks/startup.py: the importtime table lists what the runtime's import adds."""

from __future__ import annotations

import os

from benchmarks.startup import importtime


def test_importtime_lists_the_runtime_modules_beyond_the_floor() -> None:
    rows, cumulative = importtime(dict(os.environ), runs=1)
    modules = [row[0] for row in rows]
    assert "retinaface_coreml" in modules
    assert "numpy" not in modules and "onnxruntime" not in modules  # loaded by the floor
    assert cumulative > 0
