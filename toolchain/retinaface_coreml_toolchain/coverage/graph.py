"""The graph the CoreML EP sees: ORT's post-level-1 graph, with shapes, edges and constants.

ORT applies its level-1 (basic) transformers before any EP's GetCapability runs, so the file
on disk is not what the EP judges. A CPU session at ORT_ENABLE_BASIC with
``optimized_model_filepath`` writes that graph; we load it back (spec §1.4).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.errors import ModelError

log = logging.getLogger(__name__)

# A dimension ORT cannot name a value for: ORT's GetShape reports it as -1.
DYNAMIC = -1


@dataclass(frozen=True, kw_only=True)
class Tensor:
    """What ORT knows about one value: element type and shape (None = rank unknown)."""

    name: str
    elem_type: int | None
    shape: tuple[int, ...] | None

    @property
    def is_static(self) -> bool:
        return self.shape is not None and DYNAMIC not in self.shape


@dataclass(frozen=True, kw_only=True)
class Node:
    """One node; ``index`` is its position in the saved graph (ORT's NodeIndex on reload)."""

    index: int
    name: str
    op_type: str
    domain: str
    since_version: int
    inputs: tuple[str, ...]  # "" marks a missing optional input, as in ONNX
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]

    @property
    def label(self) -> str:
        """e.g. ``"Reshape /class_head/Reshape"``."""
        return f"{self.op_type} {self.name}"


@dataclass(frozen=True, kw_only=True)
class Edge:
    """A data edge, ORT's Node::EdgeEnd: producer output slot -> consumer input slot."""

    src: int
    dst: int
    src_arg: int
    dst_arg: int


@dataclass(frozen=True, kw_only=True)
class Graph:
    """The post-level-1 main graph, and which onnxruntime wrote it."""

    model_name: str
    produced_by_ort: str
    nodes: tuple[Node, ...]
    tensors: Mapping[str, Tensor]
    # ORT's GetConstantInitializer: initializers that are not also graph inputs (overridable).
    constants: Mapping[str, Any] = field(repr=False)
    external_initializers: frozenset[str]
    graph_outputs: tuple[str, ...]
    edges: tuple[Edge, ...]

    def tensor(self, name: str) -> Tensor | None:
        return self.tensors.get(name)

    def constant(self, name: str) -> Any | None:
        """The numpy value of a constant initializer, else None."""
        return self.constants.get(name)

    def producer(self, value: str) -> int | None:
        """Index of the node producing ``value`` (None for graph inputs and initializers)."""
        return self._producers.get(value)

    def input_edges(self, index: int) -> tuple[Edge, ...]:
        return self._input_edges.get(index, ())

    def output_edges(self, index: int) -> tuple[Edge, ...]:
        """Sorted as ORT's EdgeSet: consumer index, then source slot, then destination slot."""
        return self._output_edges.get(index, ())

    @cached_property
    def _producers(self) -> dict[str, int]:
        return {out: node.index for node in self.nodes for out in node.outputs if out}

    @cached_property
    def _input_edges(self) -> dict[int, tuple[Edge, ...]]:
        grouped: dict[int, list[Edge]] = {}
        for edge in self.edges:
            grouped.setdefault(edge.dst, []).append(edge)
        return {k: tuple(v) for k, v in grouped.items()}

    @cached_property
    def _output_edges(self) -> dict[int, tuple[Edge, ...]]:
        grouped: dict[int, list[Edge]] = {}
        for edge in self.edges:
            grouped.setdefault(edge.src, []).append(edge)
        return {
            k: tuple(sorted(v, key=lambda e: (e.dst, e.src_arg, e.dst_arg)))
            for k, v in grouped.items()
        }


def optimized_model(model_path: Path, out_dir: Path) -> tuple[Path, str]:
    """Write ORT's post-level-1 graph into ``out_dir``; return its path and ORT's version."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    target = out_dir / "level1.onnx"
    options.optimized_model_filepath = str(target)
    try:
        ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
        raise ModelError(f"{model_path}: onnxruntime cannot load it: {exc}") from exc
    return target, ort.__version__


def load_graph(model_path: Path) -> Graph:
    """Load the graph the CoreML EP would see for ``model_path`` (main graph only)."""
    import onnx

    if not model_path.is_file():
        raise ModelError(f"{model_path}: no such model file")
    with tempfile.TemporaryDirectory(prefix="coverage-") as tmp:
        path, ort_version = optimized_model(model_path, Path(tmp))
        model = onnx.load(str(path))
    return graph_from_model(model, model_name=model_path.name, produced_by_ort=ort_version)


def graph_from_model(model: Any, *, model_name: str, produced_by_ort: str) -> Graph:
    """Build a Graph from an (already level-1 optimised) ModelProto."""
    import onnx
    from onnx import numpy_helper

    # ORT saves value_info only for values the input model described; for the others, run
    # ONNX shape inference, which calls the same per-op inference functions ORT's
    # Graph::Resolve does (ORT links ONNX's schemas; neither does data propagation).
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:  # pragma: no cover - onnx raises various types
        log.warning("%s: shape inference failed (%s); using saved shapes only", model_name, exc)
    graph = model.graph
    opsets = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}

    tensors: dict[str, Tensor] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensors[info.name] = _tensor_from_value_info(info)
    graph_inputs = {info.name for info in graph.input}
    constants: dict[str, Any] = {}
    external: set[str] = set()
    for init in graph.initializer:
        tensors[init.name] = Tensor(
            name=init.name, elem_type=init.data_type, shape=tuple(int(d) for d in init.dims)
        )
        if init.data_location == onnx.TensorProto.EXTERNAL:
            external.add(init.name)
        if init.name not in graph_inputs:
            constants[init.name] = None if init.name in external else numpy_helper.to_array(init)

    nodes = tuple(
        Node(
            index=index,
            name=proto.name or f"#{index}",
            op_type=proto.op_type,
            domain=proto.domain,
            since_version=_since_version(proto.op_type, proto.domain, opsets),
            inputs=tuple(proto.input),
            outputs=tuple(proto.output),
            attrs={a.name: _attr_value(a) for a in proto.attribute},
        )
        for index, proto in enumerate(graph.node)
    )
    producer: dict[str, tuple[int, int]] = {}
    for node in nodes:
        for slot, out in enumerate(node.outputs):
            if out:
                producer[out] = (node.index, slot)
    edges = tuple(
        Edge(src=producer[name][0], dst=node.index, src_arg=producer[name][1], dst_arg=slot)
        for node in nodes
        for slot, name in enumerate(node.inputs)
        if name in producer
    )
    return Graph(
        model_name=model_name,
        produced_by_ort=produced_by_ort,
        nodes=nodes,
        tensors=tensors,
        constants=constants,
        external_initializers=frozenset(external),
        graph_outputs=tuple(out.name for out in graph.output),
        edges=edges,
    )


def _tensor_from_value_info(info: Any) -> Tensor:
    tensor_type = info.type.tensor_type
    elem_type = tensor_type.elem_type or None
    if not tensor_type.HasField("shape"):
        return Tensor(name=info.name, elem_type=elem_type, shape=None)
    dims = tuple(d.dim_value if d.HasField("dim_value") else DYNAMIC for d in tensor_type.shape.dim)
    return Tensor(name=info.name, elem_type=elem_type, shape=dims)


def _since_version(op_type: str, domain: str, opsets: Mapping[str, int]) -> int:
    """ORT's Node::SinceVersion(): the schema version in force at the model's opset."""
    import onnx

    key = domain or "ai.onnx"
    version = opsets.get(key, opsets.get("ai.onnx", 1))
    try:
        return onnx.defs.get_schema(op_type, version, domain).since_version
    except Exception:  # onnx.defs.SchemaError: not an ONNX-domain op (e.g. com.microsoft)
        return 1


def _attr_value(attr: Any) -> Any:
    from onnx import helper

    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return tuple(v.decode() if isinstance(v, bytes) else v for v in value)
    return value
