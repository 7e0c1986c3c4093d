"""How many threads a contender runs with: ORT's intra-op setting per session, and OS threads.

ORT's ``intra_op_num_threads`` is read back from every live ``InferenceSession`` (0 means ORT's
default, one thread per physical core); the OS threads a contender started are counted in
``/proc/self/task`` before and after it was built and warmed up, which also shows what ORT's
default resolved to (a pool of N threads starts N - 1 workers beside the caller's thread) and any
pool another library starts (torch's, in the app's process).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

# The class onnxruntime defines, not the module attribute: install() replaces the latter.
from onnxruntime.capi.onnxruntime_inference_collection import InferenceSession

TASKS = Path("/proc/self/task")


def os_threads() -> int | None:
    """Threads of this process now, e.g. ``3``; None where /proc is missing."""
    try:
        return len(os.listdir(TASKS))
    except OSError:
        return None


def ort_sessions() -> list[InferenceSession]:
    """Every live onnxruntime session of this process: the exact class, so a packaged session
    (a subclass that serves through sessions of its own) is not counted for them."""
    return [obj for obj in gc.get_objects() if type(obj) is InferenceSession]


def ort_intra_op_settings() -> list[int]:
    """``intra_op_num_threads`` of every live onnxruntime session, e.g. ``[1]`` or ``[0, 0]``."""
    return sorted(s.get_session_options().intra_op_num_threads for s in ort_sessions())


def describe(settings: list[int], started: int | None) -> str:
    """One cell, e.g. ``1 session: intra-op 1; +0 OS threads`` or ``... ORT default (0) ...``."""
    more = "?" if started is None else f"{started:+d}"
    if not settings:
        return f"no ORT session; {more} OS threads"
    values = ", ".join("ORT default (0)" if v == 0 else str(v) for v in sorted(set(settings)))
    plural = "" if len(settings) == 1 else "s"
    return f"{len(settings)} session{plural}: intra-op {values}; {more} OS threads"
