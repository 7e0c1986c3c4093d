"""The per-node decision of the CoreML EP (spec §2.2): ORT's IsNodeSupported, step by step."""

from __future__ import annotations

from dataclasses import dataclass

from retinaface_coreml_toolchain.coverage.graph import DYNAMIC, Node
from retinaface_coreml_toolchain.coverage.rules.ort_1_22 import default_input_type
from retinaface_coreml_toolchain.coverage.rules.table import Ctx, Rejection, RuleTable, fmt_shape


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One node's result: supported, or the rule that rejected it."""

    index: int
    name: str
    op_type: str
    supported: bool
    code: str | None = None
    reason: str | None = None


def judge(node: Node, table: RuleTable, ctx: Ctx) -> Verdict:
    """IsNodeSupported for one node under ``table`` (order as BaseOpBuilder::IsOpSupported)."""
    found = _first_rejection(node, table, ctx)
    if found is None:
        return Verdict(index=node.index, name=node.name, op_type=node.op_type, supported=True)
    return Verdict(
        index=node.index,
        name=node.name,
        op_type=node.op_type,
        supported=False,
        code=found.code,
        reason=found.text,
    )


def _first_rejection(node: Node, table: RuleTable, ctx: Ctx) -> Rejection | None:
    family = table.builders.get(node.op_type)
    if family is None:  # builders are looked up by op type only; the domain is ignored
        return Rejection(
            code="no-builder",
            text=f"the CoreML EP of ORT {table.version} has no builder for {node.op_type}",
        )
    fmt = "MLProgram" if ctx.mlprogram else "NeuralNetwork"
    if ctx.mlprogram and family not in table.mlprogram:
        return Rejection(
            code="format",
            text=f"{node.op_type} is not supported in MLProgram format by ORT {table.version} "
            "(NeuralNetwork format supports it)",
        )
    low, high = table.min_opset.get(node.op_type, 1), table.max_opset
    if not low <= node.since_version <= high:
        return Rejection(
            code="opset",
            text=f"{node.op_type}-{node.since_version} is outside the supported opset range "
            f"[{low}, {high}] of ORT {table.version}",
        )
    for name in node.inputs:
        found = _input_check(name, table, ctx, allow_empty=family == "resize")
        if found is not None:
            return found
    found = table.input_types.get(family, default_input_type)(node, ctx)
    if found is not None:
        return found
    if table.rejects_external_initializers:
        external = [name for name in node.inputs if name in ctx.graph.external_initializers]
        if external:
            return Rejection(
                code="external-data",
                text=f"initializer '{external[0]}' is stored as external data, which ORT "
                f"{table.version} does not accept (save the model without external data)",
            )
    if node.op_type in table.nn_unsupported and not ctx.mlprogram:
        return Rejection(
            code="format",
            text=f"{node.op_type} is not supported in {fmt} format (use MLProgram)",
        )
    impl = table.impl.get(family)
    return None if impl is None else impl(node, ctx)


def _input_check(name: str, table: RuleTable, ctx: Ctx, *, allow_empty: bool) -> Rejection | None:
    """IsInputSupported: shape known, static if required, no 0 dims, size limit, rank <= 5."""
    if not name:  # a missing optional input is fine
        return None
    shape = ctx.shape(name)
    if shape is None:
        return Rejection(code="no-shape", text=f"input '{name}' has no shape information")
    if ctx.require_static and DYNAMIC in shape:
        return Rejection(
            code="dynamic-shape",
            text=f"input '{name}' has a dynamic shape {fmt_shape(shape)} and "
            "RequireStaticInputShapes is set",
        )
    if not allow_empty and 0 in shape:
        return Rejection(
            code="zero-dim",
            text=f"input '{name}' has a 0 dimension {fmt_shape(shape)}, which CoreML rejects",
        )
    if table.max_input_dim is not None and any(d > table.max_input_dim for d in shape):
        return Rejection(
            code="dim-limit",
            text=f"input '{name}' has a dimension above {table.max_input_dim} {fmt_shape(shape)}",
        )
    if len(shape) > table.max_input_rank:
        return Rejection(
            code="rank",
            text=f"input '{name}' has rank {len(shape)}; CoreML takes at most "
            f"{table.max_input_rank}",
        )
    return None
