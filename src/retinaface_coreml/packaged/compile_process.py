"""The compile child: ``python -m retinaface_coreml compile --model M --bucket B``, started and
watched.

A CoreML compile takes 30-60 s inside ``onnxruntime.InferenceSession``. It runs in a detached
process of its own session (``start_new_session``) so that it survives the caller's exit, never
holds the caller's GIL (ORT 1.21-1.30 does for a whole session creation) and is never a thread
inside ORT when the caller's interpreter exits (ORT 1.31+ aborts then). The child takes the
per-key lock, publishes atomically (compiler.py) and writes its log next to the entry.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.packaged.cache import CacheLayout

log = get_logger(__name__)

_started: dict[Path, subprocess.Popen] = {}
_started_lock = threading.Lock()


def command(models_dir: Path, model: str, bucket: str, options: Mapping[str, str]) -> list[str]:
    """e.g. ``[python, "-m", "retinaface_coreml", "compile", "--model", "retinaface",
    "--bucket", "384x640", "--models-dir", ..., "--options", '{"MLComputeUnits": "ALL", ...}']``.
    """
    return [
        sys.executable,
        "-m",
        "retinaface_coreml",
        "compile",
        "--model",
        model,
        "--bucket",
        bucket,
        "--models-dir",
        str(models_dir),
        "--options",
        json.dumps(dict(options), sort_keys=True),
    ]


def start(
    layout: CacheLayout,
    key: str,
    *,
    models_dir: Path,
    model: str,
    bucket: str,
    options: Mapping[str, str],
    env: Mapping[str, str],
) -> subprocess.Popen:
    """Start the compile child for ``key``, or return the one this process started and that
    still runs. Its output is appended to ``layout.log_path(key)``, never to the caller's streams
    (a pipe held open by it would keep a caller's ``subprocess.run`` waiting).
    """
    entry = layout.entry(key)
    with _started_lock:
        running = _started.get(entry)
        if running is not None and running.poll() is None:
            return running
        layout.dir.mkdir(parents=True, exist_ok=True)
        with open(layout.log_path(key), "ab") as out:  # appended: a waiting child keeps the log
            process = subprocess.Popen(
                command(models_dir, model, bucket, options),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
                close_fds=True,
            )
        _started[entry] = process
    log.info("started the CoreML compile of %s: process %d, log %s", bucket, process.pid, out.name)
    return process


def wait(
    process: subprocess.Popen,
    *,
    report: Callable[[float], None],
    tick: float = 5.0,
) -> int:
    """Wait for ``process``, calling ``report(elapsed seconds)`` every ``tick``; its exit code.

    Interrupted (Ctrl-C), the caller stops waiting and the child goes on: the compile is not
    lost, and the next launch finds its entry.
    """
    started = time.monotonic()
    while True:
        try:
            return process.wait(timeout=tick)
        except subprocess.TimeoutExpired:
            report(time.monotonic() - started)


def last_line(layout: CacheLayout, key: str) -> str:
    """The last non-empty line of the child's log, e.g. ``"WARNING ...: compile failed"``."""
    try:
        lines = layout.log_path(key).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")
