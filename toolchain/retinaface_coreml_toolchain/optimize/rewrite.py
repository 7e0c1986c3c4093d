"""Apply one pass to a ModelProto: onnx-ir in, onnxscript's rule driver, dead nodes out."""

from __future__ import annotations

import logging

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import (
    CommonSubexpressionEliminationPass,
    DeduplicateInitializersPass,
    LiftConstantsToInitializersPass,
    RemoveUnusedNodesPass,
)

from retinaface_coreml_toolchain.optimize.passes.common import Pass

log = logging.getLogger(__name__)


def apply_pass(model: onnx.ModelProto, rewrite: Pass) -> tuple[onnx.ModelProto, int]:
    """Return (rewritten model, number of rewrites); the input model when nothing matched.

    Shapes are inferred first (the conditions read static shapes); the result carries no
    value_info, so stale shapes never reach the next pass or the predictor.
    """
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    graph = ir.serde.deserialize_model(inferred)
    existing = {node.name for node in graph.graph}
    count = sum(rule.apply_to_model(graph) for rule in rewrite.rules)
    if count == 0:
        return model, 0
    # Rules that fire at several consumers of one value build the same nodes more than once:
    # equal constants are merged first, then equal nodes, then the dead originals dropped.
    LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(graph)
    DeduplicateInitializersPass(size_limit=1 << 20)(graph)
    CommonSubexpressionEliminationPass()(graph)
    RemoveUnusedNodesPass()(graph)
    _name_new_nodes(graph.graph, existing, prefix=rewrite.name)
    out = ir.serde.serialize_model(graph)
    del out.graph.value_info[:]
    log.info("%s: %d rewrite(s)", rewrite.name, count)
    return out, count


def _name_new_nodes(graph: ir.Graph, existing: set[str], *, prefix: str) -> None:
    """Name the nodes a pass made after it, e.g. ``compare_to_mask/Clip_0``, so reports
    say where a node came from (onnxscript names them ``node_Clip_5``)."""
    taken = {node.name for node in graph}
    for node in graph:
        if node.name in existing:
            continue
        index = 0
        while f"{prefix}/{node.op_type}_{index}" in taken:
            index += 1
        node.name = f"{prefix}/{node.op_type}_{index}"
        taken.add(node.name)
