"""A stand-in for the CoreML EP's compiler, for hosts without it (DESIGN.md: fakes only there).

It keeps ORT's cache contract (spec §5.3-§5.4): given a cache directory, a missing
``<dir>/<key>/`` is "compiled" (written file by file, slowly, in ORT's folder layout) and an
existing one is a hit, loaded without a check. The "compiled model" is the ONNX bucket model
itself, so the session a hit returns is a real CPU session built from the published files:
a truncated file fails to load, as a half-written CoreML entry would.

Every compile and hit is appended to ``events`` (one line per event, O_APPEND: safe across
processes), which is how the tests count compiles.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime

from retinaface_coreml.backends import CPU_EP, SessionRunner

BACKEND = "coreml-standin"
"""The runner label after a swap: says plainly that no CoreML ran."""

MODEL_FILE = "0_static_mlprogram/model/Data/com.microsoft.OnnxRuntime/model.mlmodel"
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
    input_name: str = "input"
    output_names: tuple[str, ...] = ("loc", "conf", "landmarks")
    release: threading.Event | None = None
    fail: str | None = None
    chunk_delay: float = 0.0
    calls: list[str] = field(default_factory=list)

    def __call__(self, cache_dir: Path | None) -> SessionRunner:
        if cache_dir is None:
            return self._runner(self.model, "uncached")
        entry = cache_dir / self.key
        if entry.exists():
            self._event(f"hit {os.getpid()} {cache_dir}")
            return self._runner((entry / MODEL_FILE).read_bytes(), "hit")
        self._event(f"compile {os.getpid()} {cache_dir}")
        if self.release is not None:
            self.release.wait()
        self._write(entry)
        if self.fail is not None:
            raise RuntimeError(self.fail)
        return self._runner(self.model, "compiled")

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

    def _runner(self, model: bytes, how: str) -> SessionRunner:
        self.calls.append(how)
        session = onnxruntime.InferenceSession(model, providers=[CPU_EP])
        return SessionRunner(
            session, backend=BACKEND, input_name=self.input_name, output_names=self.output_names
        )

    def _event(self, line: str) -> None:
        fd = os.open(self.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def events(path: Path) -> list[str]:
    """The event lines, e.g. ``["compile 4242 /tmp/.../.build-...", "hit 4242 /tmp/..."]``."""
    return path.read_text().splitlines() if path.exists() else []


def compiles(path: Path) -> int:
    return sum(line.startswith("compile ") for line in events(path))


def compile_in_child(
    layout_fields: dict[str, str], key: str, model_path: str, events_path: str, start, results
) -> None:
    """One of the racing processes: wait for the others, then ``compile_entry`` with a StandIn.

    Puts ``(pid, how the session was opened, entry.json bytes, input shape ok)`` on ``results``.
    """
    from retinaface_coreml import compiler
    from retinaface_coreml.cache import ENTRY_RECORD, CacheLayout

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
