"""The shape of a rule table, and what a predicate gets to look at."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from retinaface_coreml_toolchain.coverage.graph import DYNAMIC, Graph, Node

# ONNX TensorProto element types the rules mention.
FLOAT, UINT8, INT8, INT32, INT64, BOOL, FLOAT16 = 1, 2, 3, 6, 7, 9, 10
DTYPE_NAMES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    16: "bfloat16",
}  # fmt: skip

# The CoreML version GetCapability is assumed to run against (macOS 14 = CoreML 7, the oldest
# macOS the 1.24+ wheels install on; ORT's non-Apple stub also returns 7, spec §2.2). Only the
# float16 rules of Gather/Slice/DepthToSpace read it.
ASSUMED_COREML_VERSION = 7


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """Why a node stays on CPU: a stable ``code`` for grouping and a sentence to act on."""

    code: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Ctx:
    """What ORT's OpBuilderInputParams give a builder: graph, format, CoreML version, options."""

    graph: Graph
    mlprogram: bool
    require_static: bool
    coreml_version: int = ASSUMED_COREML_VERSION

    def shape(self, name: str) -> tuple[int, ...] | None:
        """ORT's GetShape: the shape with -1 for dynamic dims, None when the rank is unknown."""
        tensor = self.graph.tensor(name)
        return None if tensor is None else tensor.shape

    def static_shape(self, name: str) -> tuple[int, ...] | None:
        """ORT's GetStaticShape: the shape if every dim is known, else None."""
        shape = self.shape(name)
        return None if shape is None or DYNAMIC in shape else shape

    def dtype(self, name: str) -> int | None:
        tensor = self.graph.tensor(name)
        return None if tensor is None else tensor.elem_type

    def constant(self, name: str) -> Any | None:
        """ORT's GetConstantInitializer (numpy value), else None."""
        return self.graph.constant(name) if name else None

    def is_constant(self, name: str) -> bool:
        return bool(name) and name in self.graph.constants


Predicate = Callable[[Node, Ctx], "Rejection | None"]


@dataclass(frozen=True, kw_only=True)
class RuleTable:
    """Everything GetCapability decides per node for one ORT release series."""

    version: str
    # op type -> builder family (ORT registers builders by op type only; domain is ignored)
    builders: Mapping[str, str]
    # builder families whose SupportsMLProgram() is true
    mlprogram: frozenset[str]
    # op types whose builder rejects NeuralNetwork format silently in IsOpSupportedImpl
    nn_unsupported: frozenset[str]
    # GetMinSupportedOpSet per op type (default 1); GetMaxSupportedOpSet is the base default
    min_opset: Mapping[str, int]
    max_opset: int
    # generic IsInputSupported: largest dim allowed on any input (None: no such check)
    max_input_dim: int | None
    max_input_rank: int
    rejects_external_initializers: bool
    # HasSupportedInputsImpl overrides per family (others: input 0 float, or float16 in ML)
    input_types: Mapping[str, Predicate]
    # IsOpSupportedImpl per family (absent: always true)
    impl: Mapping[str, Predicate]
    # op types whose builder reports IsTrivial(); only read when drop_trivial_groups is set
    trivial: frozenset[str]
    drop_trivial_groups: bool
    # the builders' log/error strings in the release binary (read by `toolchain rules check`)
    messages: frozenset[str]


def fmt_shape(shape: tuple[int, ...] | None) -> str:
    """e.g. ``"[1, ?, ?, 2]"``; ``"unknown"`` without rank."""
    if shape is None:
        return "unknown"
    return "[" + ", ".join("?" if d == DYNAMIC else str(d) for d in shape) + "]"


def dtype_name(elem_type: int | None) -> str:
    return "unknown" if elem_type is None else DTYPE_NAMES.get(elem_type, f"type {elem_type}")
