"""A stand-in for the CoreML EP, for hosts without it (DESIGN.md: fakes only there).

Two levels, one behaviour:

* ``StandIn``: a session factory ``factory(cache_dir)`` for compiler.py's own tests;
* ``activate``: replaces the runtime's two seams, ``coreml.detect_host`` (a macOS host with the
  CoreML EP) and ``coreml.create_session``, in this process and, through the environment and
  ``standin_site/sitecustomize.py``, in every Python process it starts (the compile child).

It keeps ORT's cache contract (spec §5.3-§5.4): given a cache directory, a missing
``<dir>/<key>/`` is "compiled" and an existing one is a hit, loaded without a check. A compile
spends ``compile_seconds`` inside real ``onnxruntime.InferenceSession`` calls of 1.5 s or more
each (constant-folding a chain of MatMuls), as ORT's convert-and-compile does: ORT 1.21-1.30
holds the GIL all that time, and on 1.31+ an interpreter exiting meanwhile aborts. Then it writes
ORT's folder layout file by file. The "compiled model" is the ONNX bucket model itself, so a hit
returns a real CPU session built from the published files: a truncated file fails to load, as a
half-written entry would.

Every compile and hit is appended to ``events`` (one line per event, O_APPEND: safe across
processes), which is how the tests count compiles and tell which process did what.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime

from retinaface_coreml import coreml
from retinaface_coreml.packaged.backends import CPU_EP, SessionRunner

BACKEND = "coreml-standin"
"""The runner label of the factory-level stand-in: says plainly that no CoreML ran."""

ENV_VAR = "RETINAFACE_COREML_STANDIN"
"""JSON settings of the seam-level stand-in, read by every process (see ``activate``)."""

SITE_DIR = Path(__file__).resolve().parent / "standin_site"
ROOT = Path(__file__).resolve().parents[2]

MODEL_FILE = "0_static_mlprogram/model/compiled_model.mlmodelc/model.onnx"
EXTRA_FILES = {
    "model.txt": b"",
    "0_static_mlprogram/model/Manifest.json": b'{"fileFormatVersion": "1.0.0"}\n',
}


@dataclass(kw_only=True)
class StandIn:
    """``factory(cache_dir)`` like ``backends.coreml_factory``; waits for ``release`` if given."""

    key: str
    model: bytes
    events: Path
    output_names: tuple[str, ...] = ("loc", "conf", "landmarks")
    release: threading.Event | None = None
    fail: str | None = None
    chunk_delay: float = 0.0
    compile_seconds: float = 0.0
    calls: list[str] = field(default_factory=list)

    def __call__(self, cache_dir: Path | None) -> SessionRunner:
        session = self.open(cache_dir)
        return SessionRunner(session, backend=BACKEND, output_names=self.output_names)

    def open(self, cache_dir: Path | None) -> onnxruntime.InferenceSession:
        """What ``coreml.create_session`` does with the CoreML EP, on the CPU EP."""
        if cache_dir is None:
            burn(self.compile_seconds)
            return self._session(self.model, "uncached")
        entry = cache_dir / self.key
        if entry.exists():
            self._event(f"hit {os.getpid()} {cache_dir}")
            return self._session((entry / MODEL_FILE).read_bytes(), "hit")
        self._event(f"compile {os.getpid()} {cache_dir}")
        if self.release is not None:
            self.release.wait()
        burn(self.compile_seconds)
        self._write(entry)
        if self.fail is not None:
            raise RuntimeError(self.fail)
        return self._session(self.model, "compiled")

    def _write(self, entry: Path) -> None:
        for rel, data in EXTRA_FILES.items():
            (entry / rel).parent.mkdir(parents=True, exist_ok=True)
            (entry / rel).write_bytes(data)
        path = entry / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            for start in range(0, len(self.model), 1 << 16):
                handle.write(self.model[start : start + (1 << 16)])
                handle.flush()
                if self.chunk_delay:
                    time.sleep(self.chunk_delay)  # widens the window a reader could race into
            if self.fail is not None:
                handle.truncate(len(self.model) // 2)

    def _session(self, model: bytes, how: str) -> onnxruntime.InferenceSession:
        self.calls.append(how)
        return onnxruntime.InferenceSession(model, providers=[CPU_EP])

    def _event(self, line: str) -> None:
        fd = os.open(self.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


# --- seconds inside real InferenceSession calls -----------------------------------------------

_SIZE = 512
_seconds_per_matmul: float | None = None


def _burner(matmuls: int) -> bytes:
    """A model whose session creation constant-folds ``matmuls`` chained 512x512 MatMuls."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((_SIZE, _SIZE)).astype(np.float32)
    nodes, previous = [], "w"
    for i in range(matmuls):
        nodes.append(helper.make_node("MatMul", [previous, "w"], [f"m{i}"]))
        previous = f"m{i}"
    nodes.append(helper.make_node("Add", ["x", previous], ["y"]))
    square = [_SIZE, _SIZE]
    graph = helper.make_graph(
        nodes,
        "burn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, square)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, square)],
        [numpy_helper.from_array(weight / math.sqrt(_SIZE), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _one_thread() -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return options


CHUNK_SECONDS = 1.5
"""Longest single session creation: longer than the 1 s a caller may be held up, so a compile
moved onto a caller's thread under ORT 1.21-1.30 (GIL held) fails the cold-start tests."""

_MAX_MATMULS = 300
"""ORT keeps every folded 1 MiB intermediate until the session is built: at most ~300 MiB."""


def burn(seconds: float) -> None:
    """Spend about ``seconds`` inside ``onnxruntime.InferenceSession(...)`` calls of at least
    ``CHUNK_SECONDS`` each (one call when ``seconds`` is shorter), memory bounded.
    """
    global _seconds_per_matmul
    if seconds <= 0:
        return
    if _seconds_per_matmul is None:
        # A first session pays ORT's one-time set-up; then two sizes, so that the fixed cost of
        # a session is not counted as MatMul time.
        timings = []
        for matmuls in (1, 10, 50):
            started = time.perf_counter()
            onnxruntime.InferenceSession(_burner(matmuls), _one_thread(), providers=[CPU_EP])
            timings.append(time.perf_counter() - started)
        _seconds_per_matmul = max((timings[2] - timings[1]) / 40, 1e-3)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        chunk = max(min(left, CHUNK_SECONDS), min(seconds, CHUNK_SECONDS))
        matmuls = min(_MAX_MATMULS, max(1, round(chunk / _seconds_per_matmul)))
        onnxruntime.InferenceSession(_burner(matmuls), _one_thread(), providers=[CPU_EP])


# --- the runtime's two seams -------------------------------------------------------------------


def settings() -> dict:
    """The seam-level settings in force, e.g. ``{"events": ..., "compile_seconds": 3.0}``."""
    return json.loads(os.environ[ENV_VAR])


def detect_host(**_: object) -> coreml.Host:
    """A macOS host with the CoreML EP (``macos`` and ``ort_version`` from the settings)."""
    config = settings()
    return coreml.Host(
        ort_version=config.get("ort_version") or onnxruntime.__version__,
        providers=(coreml.EP, coreml.CPU_EP),
        macos_major=str(config.get("macos", "14")),
        system="darwin",
    )


def create_session(model: bytes, *, options, cache_dir, session_options=None):
    """``coreml.create_session`` with the stand-in compiler in place of the CoreML EP."""
    config = settings()
    meta = onnxruntime.InferenceSession(model, providers=[CPU_EP]).get_modelmeta()
    standin = StandIn(
        key=meta.custom_metadata_map["COREML_CACHE_KEY"],
        model=model,
        events=Path(config["events"]),
        fail=config.get("fail"),
        chunk_delay=float(config.get("chunk_delay", 0.0)),
        compile_seconds=float(config.get("compile_seconds", 0.0)),
    )
    return standin.open(cache_dir)


def install() -> None:
    """Put the stand-in at both seams of this process (sitecustomize calls this)."""
    coreml.detect_host = detect_host
    coreml.create_session = create_session


def activate(monkeypatch, events: Path, **config: object) -> None:
    """Stand-in at both seams here and in every child process (undone by ``monkeypatch``).

    ``config``: ``compile_seconds``, ``fail``, ``macos``, ``ort_version``, ``chunk_delay``.
    """
    monkeypatch.setenv(ENV_VAR, json.dumps({"events": str(events), **config}))
    path = os.environ.get("PYTHONPATH", "")
    paths = (str(SITE_DIR), str(ROOT), path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.setattr(coreml, "detect_host", detect_host)
    monkeypatch.setattr(coreml, "create_session", create_session)


def events(path: Path) -> list[str]:
    """The event lines, e.g. ``["compile 4242 /tmp/.../.build-...", "hit 4242 /tmp/..."]``."""
    return path.read_text().splitlines() if path.exists() else []


def compiles(path: Path) -> int:
    return sum(line.startswith("compile ") for line in events(path))


def hits(path: Path) -> int:
    return sum(line.startswith("hit ") for line in events(path))


def compile_in_child(
    layout_fields: dict[str, str], key: str, model_path: str, events_path: str, start, results
) -> None:
    """One of the racing processes: wait for the others, then ``compile_entry`` with a StandIn.

    Puts ``(pid, how the session was opened, entry.json bytes, input shape ok)`` on ``results``.
    """
    from retinaface_coreml.packaged import compiler
    from retinaface_coreml.packaged.cache import ENTRY_RECORD, CacheLayout

    layout = CacheLayout(**{**layout_fields, "root": Path(layout_fields["root"])})
    standin = StandIn(
        key=key, model=Path(model_path).read_bytes(), events=Path(events_path), chunk_delay=0.005
    )
    start.wait()
    try:
        runner = compiler.compile_entry(layout, key, standin, label=f"child {os.getpid()}")
        record = (layout.entry(key) / ENTRY_RECORD).read_bytes()
        results.put((os.getpid(), standin.calls[-1], record, runner.backend))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put((os.getpid(), f"error: {exc!r}", b"", ""))
