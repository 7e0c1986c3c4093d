"""The runtime wheel's size per ORT release whose CoreML entries it ships (`merge-caches`).

    .venv/bin/python -m benchmarks.wheel_size [--releases 1.23.2 1.30.0 1.32.0]

No Mac here: each release's entries are written by ``precompile`` with the stand-in at the
runtime's seam (``tests/runtime/standin.py``), whose "compiled model" is the bucket ONNX itself
plus two small files. The figures are the wheel's bytes with those entries; a real Core ML entry
(an .mlmodelc with its weights) has another size, unknown here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from retinaface_coreml_toolchain.merge_caches import MergeRequest, merge_caches
from retinaface_coreml_toolchain.package import build_wheel
from retinaface_coreml_toolchain.precompile import precompile
from retinaface_coreml_toolchain.recipe import load_recipe
from tests.runtime import standin
from tests.toolchain.conftest import copy_build, make_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", nargs="+", default=["1.23.2", "1.30.0", "1.32.0"])
    releases = parser.parse_args().releases
    with tempfile.TemporaryDirectory() as tmp:
        project = copy_build(make_project(Path(tmp) / "project"))
        recipe = load_recipe(project / "models" / "retinaface.toml")
        entries = Path(tmp) / "entries"
        entries.mkdir()
        for ort in releases:
            with pytest.MonkeyPatch.context() as monkeypatch:
                standin.activate(
                    monkeypatch, entries / "events", ort_version=ort, compile_seconds=0.3
                )
                precompile(recipe)
            # One macOS job's upload, laid out as models/build/ (ci.yml's entries step).
            shutil.copytree(recipe.build_dir / "coreml", entries / ort / recipe.name / "coreml")
            shutil.copy(recipe.build_dir / "precompile.json", entries / ort / recipe.name)
        (recipe.build_dir / "precompile.json").unlink()
        shutil.rmtree(recipe.build_dir / "coreml")
        sizes = [build_wheel(recipe).wheel.stat().st_size]
        for n in range(1, len(releases) + 1):
            sources = tuple(entries / ort for ort in releases[:n])
            merge_caches([recipe], MergeRequest(sources=sources), env=os.environ)
            sizes.append(build_wheel(recipe).wheel.stat().st_size)
    buckets = len(recipe.buckets)
    print(f"runtime wheel size, {buckets} buckets, stand-in entries (not Core ML's real size)")
    print(f"{'releases shipped':<40} {'wheel MB':>9} {'added MB':>9}")
    for n, size in enumerate(sizes):
        label = ", ".join(releases[:n]) or "none (py3-none-any)"
        added = "" if n == 0 else f"{(size - sizes[n - 1]) / 1e6:>9.2f}"
        print(f"{label:<40} {size / 1e6:>9.2f} {added:>9}")


if __name__ == "__main__":
    main()
