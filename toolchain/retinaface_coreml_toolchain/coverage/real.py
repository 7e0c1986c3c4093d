"""macOS only: run the real CoreML EP and read the partitioning it reports.

Two sources: the GetCapability summary line ORT logs (INFO when 1 partition, WARNING when more,
spec §2.4/§8; session log severity 1 shows both; it goes to the native stderr, so it is captured
at file-descriptor level), and on ORT >= 1.24 the per-partition node lists of
``InferenceSession.get_provider_graph_assignment_info()``. The subgraph attribute naming the
EP is ``ep_name`` (settled from the onnxruntime 1.32.0 wheel's pybind class
``OrtEpAssignedSubgraph``: ``ep_name``, ``get_nodes()``; nodes expose ``name``, ``op_type``,
``domain``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.errors import ToolchainError

PROVIDER = "CoreMLExecutionProvider"
SUMMARY = re.compile(
    r"number of partitions supported by CoreML: (\d+) number of nodes in the graph: (\d+) "
    r"number of nodes supported by CoreML: (\d+)"
)
PROVIDER_FORMAT = {"mlprogram": "MLProgram", "neuralnetwork": "NeuralNetwork"}


@dataclass(frozen=True, kw_only=True)
class RealCoverage:
    """The numbers the real EP reported for one model format."""

    model_format: str
    partitions: int
    nodes_in_graph: int
    nodes_supported: int
    partition_nodes: tuple[tuple[str, ...], ...] | None  # ORT >= 1.24 only


def unavailable_reason(*, platform: str, providers: Sequence[str]) -> str | None:
    """None when the real EP can run here, else the one line saying why not."""
    if platform == "darwin" and PROVIDER in providers:
        return None
    return (
        f"--real needs macOS with onnxruntime's {PROVIDER}; this is {platform} with "
        f"{', '.join(providers) or 'no providers'}"
    )


def parse_summary(log_text: str) -> tuple[int, int, int] | None:
    """(partitions, nodes in graph, nodes supported) from the first main-graph summary line."""
    match = SUMMARY.search(log_text)
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture fd 2 (native code writes there, past sys.stderr); yields a list filled on exit."""
    sys.stderr.flush()
    saved = os.dup(2)
    out: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            out.append(sink.read().decode(errors="replace"))


def require_coreml() -> None:
    """Raise ToolchainError (exit 2) unless the real CoreML EP can run here."""
    import onnxruntime as ort

    reason = unavailable_reason(platform=sys.platform, providers=ort.get_available_providers())
    if reason is not None:
        raise ToolchainError(reason)


def run_real(model: Path, *, model_format: str, require_static_shapes: bool) -> RealCoverage:
    """Create a CoreML EP session for ``model`` and read back the partitioning it chose."""
    import onnxruntime as ort

    require_coreml()
    options = ort.SessionOptions()
    options.log_severity_level = 1
    version = tuple(int(p) for p in ort.__version__.split(".")[:2])
    if version >= (1, 24):
        options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    provider_options = {
        "ModelFormat": PROVIDER_FORMAT[model_format],
        "RequireStaticInputShapes": "1" if require_static_shapes else "0",
    }
    with captured_stderr() as log:
        session = ort.InferenceSession(
            str(model), options, providers=[(PROVIDER, provider_options), "CPUExecutionProvider"]
        )
    found = parse_summary(log[0])
    if found is None:
        raise ToolchainError(f"{model.name}: ORT logged no CoreML GetCapability summary line")
    return RealCoverage(
        model_format=model_format,
        partitions=found[0],
        nodes_in_graph=found[1],
        nodes_supported=found[2],
        partition_nodes=_assigned(session) if version >= (1, 24) else None,
    )


def _assigned(session: Any) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(node.name for node in subgraph.get_nodes())
        for subgraph in session.get_provider_graph_assignment_info()
        if subgraph.ep_name == PROVIDER
    )


def render_side_by_side(record: dict[str, Any], reals: Sequence[RealCoverage]) -> str:
    """Predicted (a CoverageReport dict) next to what the real EP reported."""
    lines = [f"{record['model']}: predicted (ORT {record['rules']} rules) vs real CoreML EP"]
    lines.append(f"{'format':<14}{'':<12}{'predicted':>10}{'real':>8}")
    for real in reals:
        cov = record["formats"][real.model_format]
        for label, predicted, actual in (
            ("partitions", cov["partitions"], real.partitions),
            ("nodes", cov["nodes_in_graph"], real.nodes_in_graph),
            ("supported", cov["nodes_supported"], real.nodes_supported),
        ):
            mark = "" if predicted == actual else "  <- differs"
            lines.append(
                f"{PROVIDER_FORMAT[real.model_format]:<14}{label:<12}{predicted:>10}"
                f"{actual:>8}{mark}"
            )
        if real.partition_nodes is not None:
            same = sorted(map(sorted, real.partition_nodes)) == sorted(
                map(sorted, cov["partition_nodes"])
            )
            lines.append(f"{'':<14}partition node lists {'match' if same else 'differ'}")
    return "\n".join(lines)
