"""benchmarks/threads.py: the intra-op settings of live sessions, read back from ORT."""

from __future__ import annotations

import onnxruntime

from benchmarks.common import SOURCE_MODEL
from benchmarks.threads import describe, ort_intra_op_settings, os_threads


def test_settings_of_live_sessions_are_read_back() -> None:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    before = ort_intra_op_settings()
    one = onnxruntime.InferenceSession(
        str(SOURCE_MODEL), options, providers=["CPUExecutionProvider"]
    )
    default = onnxruntime.InferenceSession(str(SOURCE_MODEL), providers=["CPUExecutionProvider"])
    after = ort_intra_op_settings()
    assert sorted(after) == sorted([*before, 1, 0])
    assert one and default
    assert os_threads() >= 1


def test_describe_names_ort_default() -> None:
    assert describe([0], 1) == "1 session: intra-op ORT default (0); +1 OS threads"
    assert describe([1, 1], None) == "2 sessions: intra-op 1; ? OS threads"
    assert describe([], 0) == "no ORT session; +0 OS threads"
