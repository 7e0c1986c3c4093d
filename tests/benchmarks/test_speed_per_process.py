"""benchmarks/speed_per_process.py: a child times its one contender; the report reads them."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.speed_per_process import DROP_IN, FAST, ChildRun, child, report


def test_children_time_ours_on_the_six_frames_and_the_report_reads_them(served: Path) -> None:
    runs = []
    for name in (DROP_IN, FAST):
        record = child(name, calls=1, pause=0.0)
        assert len(record["seconds"]) == 6  # the six group photos as 1080p frames
        assert all(len(s) == 1 and s[0] > 0 for s in record["seconds"].values())
        assert record["faces"]["faceapi_sample2.jpg"] >= 3  # its three faces are in the top rows
        assert "intra-op ORT default (0)" in record["threads"]
        runs.append(ChildRun(name=name, run=0, load_before=0.0, **record))
    text = report(runs, calls=1, python=Path("python"))
    assert "| ours, same path " in text and "| ours, fast default " in text
    assert "faceapi_sample6.jpg (top 1080 rows)" in text
    assert re.search(r"\d\.\dx", text) is None  # no app run: no ratio is printed
