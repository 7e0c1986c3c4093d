"""CoreML EP rules of ONNX Runtime 1.22.x: the base table the newer versions amend.

Facts from ../shared/specs/coreml_ep_rules.md §2.2-§3 (BIN 1.22.1 = the release binary; SRC =
microsoft/onnxruntime sources under onnxruntime/core/providers/coreml/builders/impl/). Every
predicate returns ORT's decision as a Rejection in words a user can act on, or None.

Settled by reading microsoft/onnxruntime sources (index ids in brackets), where the spec left
a point open or the RetinaFace graph depends on it:
* order of the steps: builders/impl/base_op_builder.cc [2619457053] (format, opset, inputs +
  HasSupportedInputsImpl, external initializers, IsOpSupportedImpl);
* Resize: builders/impl/resize_op_builder.cc [7339088292]: 'sizes' wins over an empty Resize-11
  'scales'; with constant sizes MLProgram has no static-shape rule, NeuralNetwork needs a static
  input; only the 'scales' path needs fixed H and W;
* Reshape: builders/impl/reshape_op_builder.cc [231463319]: the constant-shape test comes before
  the static-data test, so a dynamic head Reshape with a constant shape reports the data input;
* Unsqueeze-11 takes 'axes' from the attribute, -13 from a constant input; NN returns false:
  builders/impl/squeeze_op_builder.cc [23163617924];
* Shape/Slice input types: builders/impl/shape_op_builder.cc [3390682946],
  builders/impl/slice_op_builder.cc [5687274159] (Slice of an int64 shape vector is supported
  when its shape is static and starts/ends are constant);
* Concat NN rank/axis: builders/impl/concat_op_builder.cc [7247451078].
"""

from __future__ import annotations

import math

from retinaface_coreml_toolchain.coverage.graph import DYNAMIC, Node
from retinaface_coreml_toolchain.coverage.rules.table import (
    FLOAT,
    FLOAT16,
    INT32,
    INT64,
    Ctx,
    Predicate,
    Rejection,
    RuleTable,
    dtype_name,
    fmt_shape,
)

VERSION = "1.22"

# op type -> builder family; op_builder_factory.cc (spec §3.1, SRC id 3076644166).
BUILDERS: dict[str, str] = {
    **dict.fromkeys(["Sigmoid", "Tanh", "Relu", "PRelu", "LeakyRelu", "Gelu"], "activation"),
    **dict.fromkeys(["Erf", "Reciprocal", "Round", "Sqrt"], "unary"),
    **dict.fromkeys(["Add", "Div", "Mul", "Max", "Pow", "Sub"], "binary"),
    **dict.fromkeys(["AveragePool", "GlobalAveragePool", "GlobalMaxPool", "MaxPool"], "pool"),
    **dict.fromkeys(
        ["ReduceMean", "ReduceMin", "ReduceMax", "ReduceProd", "ReduceSum"], "reduction"
    ),
    **dict.fromkeys(
        ["GroupNormalization", "InstanceNormalization", "LayerNormalization"], "normalization"
    ),
    **dict.fromkeys(["Gemm", "MatMul"], "gemm"),
    **dict.fromkeys(["Squeeze", "Unsqueeze"], "squeeze"),
    "BatchNormalization": "batchnorm",
    "ArgMax": "argmax",
    "Cast": "cast",
    "Clip": "clip",
    "Concat": "concat",
    "Conv": "conv",
    "ConvTranspose": "convtranspose",
    "DepthToSpace": "depthtospace",
    "Flatten": "flatten",
    "Gather": "gather",
    "GridSample": "gridsample",
    "LRN": "lrn",
    "Pad": "pad",
    "Reshape": "reshape",
    "Resize": "resize",
    "Shape": "shape",
    "Slice": "slice",
    "Softmax": "softmax",
    "Split": "split",
    "Transpose": "transpose",
}

# SupportsMLProgram() == true, by disassembly (spec §3.1): the 1.20.1 set, plus ArgMax,
# BatchNormalization, Cast, Normalization, Reduction, Shape, Softmax, Squeeze in 1.21.1, plus
# Gather in 1.22.1. Never MLProgram: Flatten, LRN, Pad.
MLPROGRAM = frozenset(
    {
        "activation", "binary", "clip", "concat", "conv", "convtranspose", "depthtospace",
        "gemm", "gridsample", "pool", "reshape", "resize", "slice", "split", "transpose",
        "unary", "argmax", "batchnorm", "cast", "normalization", "reduction", "shape",
        "softmax", "squeeze", "gather",
    }
)  # fmt: skip

# Builders that return false for NeuralNetwork format inside IsOpSupportedImpl (spec §3.2
# "NN rejected silently"); the md lists agree.
NN_UNSUPPORTED = frozenset(
    {
        "Gelu", "Max", "Erf", "Round", "Unsqueeze", "ConvTranspose", "GridSample",
        "ReduceMax", "ReduceMin", "ReduceProd",
        "GroupNormalization", "InstanceNormalization", "LayerNormalization",
    }
)  # fmt: skip

# GetMinSupportedOpSet overrides (disassembly, spec §3.1); every other op: 1.
MIN_OPSET: dict[str, int] = {
    **dict.fromkeys(["Sigmoid", "Tanh", "Relu", "PRelu", "LeakyRelu", "Gelu"], 6),
    **dict.fromkeys(["Add", "Div", "Mul", "Max", "Pow", "Sub"], 7),
    "BatchNormalization": 7,
    "Pad": 11,
    "Reshape": 5,
    "Resize": 11,
    "Slice": 10,
    "Split": 13,
}

MAX_OPSET = 21  # base GetMaxSupportedOpSet in 1.20.1/1.21.1/1.22.1 (disassembly, spec §2.2)
MAX_INPUT_DIM = 16384  # generic IsInputSupported check of 1.20-1.22 (BIN 1.22.1 vs 1.23.2)
MAX_INPUT_RANK = 5

# The builders' log and error strings in the release binary (BIN 1.22.1, arm64 slice, as
# coverage/ep_binary.py reads them: every C string with a space between the first and the last
# builders/impl source path). `toolchain rules check` diffs a release against this list, so a
# builder whose wording changes shows up before its rule silently drifts.
MESSAGES = frozenset(
    {
        " B input must be a constant initializer",
        " C shape:",
        " Change to size of axis ",
        " and scale_w: ",
        " currently due to output diffs that need to be investigated",
        " is not a factor of input height: ",
        " is not a factor of input width: ",
        " is not a multiple of input_size_h: ",
        " is not a multiple of input_size_w: ",
        " is not a whole number",
        " is not in valid range [-",
        " mode is not supported",
        " must both be >= 1 or <= 1",
        " only supports rank-4 tensor, input [",
        " please export it for inferencing.",
        "'axes' has an axis outside of the tensor dimension count",
        "'axes' has duplicates",
        "'step' value cannot be 0",
        ") with step ",
        ", actual rank: ",
        ", new shape: ",
        ", requested shape:",
        "A dimension cannot be less than -1, got ",
        "ActivationOpBuilder::AddToModelBuilderImpl, unknown op: ",
        "Argmax has both cast and other downstream nodes.",
        "Argmax in maxpooling is not supported",
        "At most one dimension can be -1.",
        "Available version is CoreML ",
        "Axes input has duplicate values.",
        "Axes of reduction must be a constant initializer",
        "B of BN must be a constant initializer",
        "BN only support 4d shape for now, input is ",
        "Bias must be a constant initializer",
        "BinaryOpBuilder::AddToModelBuilderImpl, unexpected op: ",
        "C of Gemm must be a constant initializer",
        "Cannot get shape",
        "Cannot get shape of data",
        "Cases that input data being empty due to a dimension with value of 0 is not supported",
        "Cast has no preceding nodes.",
        "Cast's producing node [",
        "Cast's producing node is not ArgMax is not supported.",
        "ComputePad: pad type not supported.",
        "Concat only support 2+ inputs, actual number of inputs: ",
        "Concat only support 4d shape for now, input is ",
        "Concat only support axis to be -3, actual axis: ",
        "Conv [",
        "ConvTranspose: ML Program required",
        "ConvTranspose: all pad values must be the same for CoreML to return consistent results",
        "ConvTranspose: bias must be constant",
        "ConvTranspose: failed to get input shape",
        "ConvTranspose: failed to get weight shape",
        "ConvTranspose: kernel_shape attribute does not match the weight shape",
        "ConvTranspose: output_padding is not supported",
        "ConvTranspose: output_shape is not supported as the CoreML output is inconsistent",
        "ConvTranspose: support for SAME_LOWER/SAME_UPPER is not implemented yet",
        "ConvTranspose: weight must be constant",
        "CoreML 'splits' input must be a constant initializer.",
        "CoreML Split must produce at least 2 outputs.",
        "CoreML SplitND requires at least 2 outputs. num_outputs: ",
        "CoreML only supports padding on last two dimensions.",
        "Current producing node: [",
        "Data type for starts and ends inputs' is not supported in this build. Got ",
        "DepthToSpace: CRD mode requires static shape",
        "DepthToSpace: DCR mode with float16 input requires at least CoreML version 7.",
        "DepthToSpace: no input shape",
        "Dilation not supported for AutoPadType::SAME_UPPER or AutoPadType::SAME_LOWER.",
        "Dilations of pooling is not supported",
        "Dim at the splitting axis is not allowed to be dynamic.",
        "Divide by zero",
        "Empty input data is not supported.",
        "Empty range is not supported: [",
        "Error getting input shape",
        "Error getting validated scales",
        "Error getting validated sizes",
        "Failed to get 'data' shape",
        "Failed to get 'indices' shape",
        "Failed to get constant initializer.",
        "Failed to get input shape",
        "Failed to get input shape.",
        "Failed to get input type",
        "Failed to get shape of X.",
        "Flatten does not support empty input shape",
        "Gather does not support output with rank greater than 5",
        "Gather does not support scalar 'indices'",
        "GetClipMinMax failed",
        "GridSample does not support mode of ",
        "GridSample does not support mode:",
        "GridSample is not supported.",
        "GridSample only supports 4D input. Got:",
        "GridSample: failed to get input shape",
        "Initializer [",
        "Input axes must be known",
        "Input index [",
        "Input types of LayerNorm must be float or float16",
        "Input types of LayerNorm must be the same",
        "Invalid num_outputs provided.\n. The value should be smaller or equal to the size of dimension being split. num_outputs: ",  # noqa: E501 (the binary's string, verbatim)
        "Invalid num_outputs. The value cannot be lower than 2.\n",
        "Invalid value in 'splits' input.",
        "IsAxisInRange(axis, tensor_rank)",
        "LRN does not support empty input shape",
        "LRN only supports input rank equals to 3 or 4, input rank is ",
        "MatMul with C input is not supported",
        "Mean of BN must be a constant initializer",
        "Mismatch between the sum of 'split'. Expected: ",
        "Negative pad value is not supported: pads[",
        "NeuralNetwork doesn't support noop on empty axes for reduction layers",
        "New shape of reshape cannot be empty",
        "New shape of reshape must be a constant initializer",
        "No 'num_outputs' provided. For split 18+, num_outputs is a required attribute.",
        "Non-spatial BN is not supported",
        "Only 1D and 2D Conv are supported currently.",
        "Only `constant` mode Pad is currently supported for now, mode: ",
        "Only pooling 2d is supported",
        "Only support for transA == 0, alpha == 1.0 ",
        "Operator [",
        "Operator name: [",
        "PRelu 'X' input must have 3 or 4 dimensions, it has ",
        "PRelu 'X' input must have a known third from last dimension.",
        "PRelu 'slope' input must be a constant initializer tensor",
        "PRelu 'slope' input must either have shape [C, 1, 1] or have a single value",
        "PRelu single 'slope' value in CoreML weight is not supported",
        "Pad requires input shape to be at least 2d, input is ",
        "Pad type of SAME_LOWER  [",
        "Perm and input should have same dimension",
        "PoolOpBuilder, unexpected op: ",
        "PrepareSliceComputeMetadata failed:",
        "ReductionOpBuilder::AddToModelBuilderImpl, unexpected op: ",
        "ReductionOpBuilder::AddToModelBuilderImpl, unknown op: ",
        "Reshape does not support empty input shape",
        "Reshape does not support new shape with 0 as dimension when allowzero is enabled. Input shape: ",  # noqa: E501 (the binary's string, verbatim)
        "Reshape does not support new shape with rank greater than 5. Input shape: ",
        "Resize 'scales' input must be a constant initializer",
        "Resize 'sizes' input must be a constant initializer",
        "Resize does not support 'exclude_outside'",
        "Resize does not support antialias",
        "Resize input shape has with dimension values of 0 which is not supported.",
        "Resize input shape with dynamic dimensions is not supported.",
        "Resize only support 4d shape. Got: ",
        "Resize only supports 'asymmetric' coordinate_transformation_mode. Got: ",
        "Resize only supports 'floor' nearest_mode. Got: ",
        "Resize only supports 3D to 5D input. Got: ",
        "Resize only supports keep_aspect_ratio_policy of 'stretch'. Got ",
        "Resize only supports resizing the last two axes. Input rank: ",
        "Resize only supports resizing the last two axes. Scale of axis ",
        "Resize requires 'scales' or 'sizes' input",
        "Resize unsupported input mode: ",
        "Resize with 'mode' of 'linear' requires 'coordinate_transformation_mode' of 'half_pixel', or 'align_corners', or 'asymmetric' with 'sizes' input. Got: ",  # noqa: E501 (the binary's string, verbatim)
        "Resize with 'mode' of 'nearest' requires 'coordinate_transformation_mode' of 'asymmetric' . Got: ",  # noqa: E501 (the binary's string, verbatim)
        "Resize with 'scales' requires the H and W dimensions to have fixed values",
        "Resize: downsampling is not supported.",
        "Resize: downsampling scale ",
        "Resize: input shape was not known",
        "Resize: output_size_h: ",
        "Resize: output_size_w: ",
        "Resize: scale_h: ",
        "Resize: scale_w: ",
        "Scale must be a constant initializer",
        "Scale of BN must be a constant initializer",
        "Shape does not support 'end' attribute",
        "Shape does not support 'start' attribute with value other than 0",
        "Shape does not support slicing when size is 0",
        "Shape does not support slicing when tensor_shape is not available",
        "Shape of C Gemm input must be {}, {1}, {N}, or {1, N}. N:",
        "Skipping due to bug in CoreML ML Program when one of the inputs is 1D.",
        "The bias of Conv [",
        "The dimension with value zero exceeds the dimension size of the input tensor.",
        "The initializer of graph has unsupported type, name: ",
        "The input tensor cannot be reshaped to the requested shape. Input shape:",
        "The input tensor must not have any dynamic (-1) dimensions. Input shape:",
        "The weight of Conv [",
        "UnaryOpBuilder::AddToModelBuilderImpl, unexpected op: ",
        "UnaryOpBuilder::AddToModelBuilderImpl, unknown op: ",
        "Unknown AutoPadType String",
        "Unsqueeze axes is empty.",
        "Unsqueeze to output shape with > 5 dimensions is not supported",
        "Unsupported cast type: ",
        "Var of BN must be a constant initializer",
        "Your onnx model (with LayerNormalization) may be in training mode,",
        "Your onnx model may be in training mode, please export it in test mode.",
        "] = ",
        "] Get Input type failed",
        "] Input shape is missing",
        "] Input type: [",
        "] Output type: [",
        "] does not support MLProgram",
        "] does not support this opset",
        "] has actual dim count ",
        "] has external initializers",
        "] has unsupported inputs",
        "] is ",
        "] is not a supported op.",
        "] is not currently supported",
        "] is not supported",
        "] is not supported by the impl",
        "] is not supported for now",
        "] is not supported until CoreML 6.",
        "] is not supported.",
        "] is out of range",
        "] kernel_shape attribute does not match the weight shape",
        "] must be a constant initializer",
        "] type: [",
        "] was added",
        "] with external data location are not currently supported",
        "`constant_value` input is required for constant mode Pad op.",
        "a and b inputs must be 2D. ",
        "and beta == 1.0 is currently implemented.",
        "axes_corrected.size() == axes.size()",
        "axes_corrected.size() > 0",
        "ceil_mode == 1 is not supported for pooling",
        "constant_value must be a constant initializer.",
        "d shape",
        "dilations size does not equal 1 for Conv 1d",
        "i < input_shape.NumDimensions()",
        "if provided, `axes` input is required to a constant initializer",
        "input name ",
        "input_shape_size != -1",
        "input_shape_size == size",
        "is only supported for opset [",
        "onnx_pads size does not equal 2 for Conv 1d",
        "pads must be a constant initializer.",
        "requested_shape[i] >= -1",
        "select_last_index for ArgMax is not supported",
        "size != 0 && (input_shape_size % size) == 0",
        "slope initializer has unsupported data type: ",
        "stash_type != 1 is not supported",
        "storage_order == 1 is not supported",
        "strides size does not equal 1 for Conv 1d",
        "unknown_dim == -1",
    }
)


def reject(code: str, text: str) -> Rejection:
    return Rejection(code=code, text=text)


def _attr(node: Node, name: str, default: object) -> object:
    return node.attrs.get(name, default)


def _input(node: Node, slot: int) -> str:
    """The input at ``slot``, or "" when it is absent (ORT's NodeArg::Exists() is false)."""
    return node.inputs[slot] if slot < len(node.inputs) else ""


def _not_constant(node: Node, slot: int, what: str) -> Rejection:
    return reject(
        "input-not-constant",
        f"the {what} input ('{_input(node, slot)}') is not a constant initializer; "
        "fix the input shape (e.g. onnxsim with overwrite_input_shapes) so it folds",
    )


def _dynamic(name: str, shape: tuple[int, ...] | None, what: str = "input") -> Rejection:
    return reject(
        "dynamic-shape",
        f"the {what} '{name}' has a dynamic shape {fmt_shape(shape)}; it needs static "
        "dimensions (fix the model's input shape)",
    )


def _unknown_shape(name: str, what: str = "input") -> Rejection:
    return reject("no-shape", f"the {what} '{name}' has no shape information")


# -- HasSupportedInputsImpl -------------------------------------------------------------------


def default_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """BaseOpBuilder: only input 0's type is checked: float32, or float16 in MLProgram."""
    elem = ctx.dtype(node.inputs[0])
    if elem == FLOAT or (ctx.mlprogram and elem == FLOAT16):
        return None
    allowed = "float32 or float16" if ctx.mlprogram else "float32"
    return reject(
        "input-type",
        f"input '{node.inputs[0]}' is {dtype_name(elem)}; the CoreML EP takes {allowed} here "
        "(shape arithmetic on int64 stays on CPU)",
    )


def binary_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """Binary: input 0 float (float16 in ML); Pow needs both inputs of one type (SRC 2499451864)."""
    found = default_input_type(node, ctx)
    if found is None and node.op_type == "Pow":
        a, b = ctx.dtype(node.inputs[0]), ctx.dtype(_input(node, 1))
        if a != b:
            return reject(
                "input-type",
                f"Pow's inputs have different types ({dtype_name(a)}, {dtype_name(b)})",
            )
    return found


def cast_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """Cast: ML takes int32/int64/float32/float16 inputs; NN only the int64 ArgMax pattern."""
    elem = ctx.dtype(node.inputs[0])
    allowed = {INT32, INT64, FLOAT, FLOAT16} if ctx.mlprogram else {INT64}
    if elem in allowed:
        return None
    return reject("input-type", f"Cast input '{node.inputs[0]}' is {dtype_name(elem)}")


def gather_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """Gather: data float32, int64, or float16 in ML on CoreML >= 6 (SRC gather_op_builder.cc)."""
    elem = ctx.dtype(node.inputs[0])
    if elem in (FLOAT, INT64) or (elem == FLOAT16 and ctx.mlprogram and ctx.coreml_version >= 6):
        return None
    return reject("input-type", f"Gather data '{node.inputs[0]}' is {dtype_name(elem)}")


def normalization_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """Normalization: inputs 0, 1, 2 of one type, float32 or float16 (SRC id 5859128201)."""
    types = {ctx.dtype(name) for name in node.inputs[:3] if name}
    if len(types) == 1 and types <= {FLOAT, FLOAT16}:
        return None
    names = ", ".join(dtype_name(t) for t in sorted(types, key=str))
    return reject("input-type", f"inputs must share one float type; got {names}")


def shape_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """Shape: ML takes int32/float32/float16 input, NN float32 only (SRC shape_op_builder.cc)."""
    elem = ctx.dtype(node.inputs[0])
    if elem in ((INT32, FLOAT, FLOAT16) if ctx.mlprogram else (FLOAT,)):
        return None
    return reject("input-type", f"Shape input '{node.inputs[0]}' is {dtype_name(elem)}")


def slice_input_type(node: Node, ctx: Ctx) -> Rejection | None:
    """Slice: float32, int64, or float16 in ML on CoreML >= 6 (SRC slice_op_builder.cc)."""
    elem = ctx.dtype(node.inputs[0])
    if elem in (FLOAT, INT64) or (elem == FLOAT16 and ctx.mlprogram and ctx.coreml_version >= 6):
        return None
    return reject("input-type", f"Slice data '{node.inputs[0]}' is {dtype_name(elem)}")


INPUT_TYPES: dict[str, Predicate] = {
    "binary": binary_input_type,
    "cast": cast_input_type,
    "gather": gather_input_type,
    "normalization": normalization_input_type,
    "shape": shape_input_type,
    "slice": slice_input_type,
}


# -- IsOpSupportedImpl, one predicate per builder family --------------------------------------


def activation(node: Node, ctx: Ctx) -> Rejection | None:
    """PRelu's slope layout, Gelu's approximation (SRC activation_op_builder.cc, id 5855867705)."""
    if node.op_type == "Gelu" and _attr(node, "approximate", "none") not in ("none", "tanh"):
        return reject("attribute", "Gelu 'approximate' must be 'none' or 'tanh'")
    if node.op_type != "PRelu":
        return None
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) not in (3, 4):
        return reject("rank", f"PRelu input must be 3-D or 4-D; got {fmt_shape(shape)}")
    channels = shape[-3]
    if channels == DYNAMIC:
        return _dynamic(node.inputs[0], shape)
    slope = ctx.constant(_input(node, 1))
    if slope is None:
        return _not_constant(node, 1, "slope")
    if slope.size == 1:
        if channels == 1:
            return reject("attribute", "PRelu with a single slope value and C == 1")
        return None
    if tuple(slope.shape) != (channels, 1, 1):
        return reject("attribute", f"PRelu slope must be [C, 1, 1]; got {list(slope.shape)}")
    return None


def concat(node: Node, ctx: Ctx) -> Rejection | None:
    """2+ inputs; NN: rank 4 and the channel axis only (SRC concat_op_builder.cc)."""
    if len(node.inputs) < 2:
        return reject("inputs", "Concat needs at least 2 inputs")
    shape = ctx.shape(node.inputs[0])
    if shape is None:
        return _unknown_shape(node.inputs[0])
    if not ctx.mlprogram:
        rank = len(shape)
        if rank != 4:
            return reject(
                "nn-rank",
                f"NeuralNetwork Concat takes rank-4 inputs only; got rank {rank} "
                "(MLProgram format supports it)",
            )
        axis = int(_attr(node, "axis", 1))
        if (axis + rank if axis < 0 else axis) != rank - 3:
            return reject(
                "nn-axis", f"NeuralNetwork Concat joins on the channel axis only; axis is {axis}"
            )
    return None


def conv(node: Node, ctx: Ctx) -> Rejection | None:
    """Constant weight (NN), 1-D/2-D, constant bias, kernel_shape matches (SRC id 1202573288)."""
    weight = _input(node, 1)
    if not ctx.mlprogram and not ctx.is_constant(weight):
        return _not_constant(node, 1, "weight")
    w_shape = ctx.shape(weight)
    if w_shape is not None and len(w_shape) not in (3, 4):
        return reject("rank", f"only 1-D and 2-D Conv are supported; weight is {len(w_shape)}-D")
    bias = _input(node, 2)
    if bias and not ctx.is_constant(bias):
        return _not_constant(node, 2, "bias")
    kernel = _attr(node, "kernel_shape", None)
    if kernel is not None and w_shape is not None and tuple(kernel) != tuple(w_shape[2:]):
        return reject("attribute", "kernel_shape differs from the weight's spatial dims")
    return None


def convtranspose(node: Node, ctx: Ctx) -> Rejection | None:
    """MLProgram only; constant weight/bias; symmetric pads; no output_shape/padding."""
    if ctx.shape(node.inputs[0]) is None:
        return _unknown_shape(node.inputs[0])
    if not ctx.is_constant(_input(node, 1)):
        return _not_constant(node, 1, "weight")
    if _input(node, 2) and not ctx.is_constant(_input(node, 2)):
        return _not_constant(node, 2, "bias")
    if str(_attr(node, "auto_pad", "NOTSET")).startswith("SAME"):
        return reject("attribute", "auto_pad SAME_* is not implemented")
    pads = tuple(_attr(node, "pads", ()))
    if pads and len(set(pads)) > 1:
        return reject("attribute", "pads must all be equal")
    if "output_shape" in node.attrs:
        return reject("attribute", "'output_shape' is not supported")
    if any(int(p) != 0 for p in _attr(node, "output_padding", ())):
        return reject("attribute", "'output_padding' is not supported")
    return None


def reshape(node: Node, ctx: Ctx) -> Rejection | None:
    """Constant, non-empty new shape; data fully static; rank <= 5 (SRC id 231463319)."""
    new_shape = ctx.constant(_input(node, 1))
    if new_shape is None:
        return _not_constant(node, 1, "shape")
    if new_shape.size == 0:
        return reject("attribute", "the new shape is empty")
    data = node.inputs[0]
    shape = ctx.shape(data)
    if shape is None or DYNAMIC in shape:
        return _dynamic(data, shape, "data input")
    if len(shape) == 0:
        return reject("rank", "Reshape of a scalar is not supported")
    if new_shape.size > 5:
        return reject("rank", f"the new shape has rank {new_shape.size} (> 5)")
    if int(_attr(node, "allowzero", 0)) == 1 and 0 in new_shape.tolist():
        return reject("attribute", "allowzero=1 with a 0 in the new shape")
    return None


def softmax(node: Node, ctx: Ctx) -> Rejection | None:
    """1.20-1.22: the input must be static and non-empty (SRC id 21325148)."""
    data = node.inputs[0]
    shape = ctx.static_shape(data)
    if shape is None:
        return _dynamic(data, ctx.shape(data))
    if math.prod(shape) == 0:
        return reject("empty", "empty input data")
    return None


def resize(node: Node, ctx: Ctx) -> Rejection | None:
    """Rank, modes, constant scales/sizes, last two axes only (SRC id 7339088292)."""
    data = node.inputs[0]
    shape = ctx.shape(data)
    if shape is None:
        return _unknown_shape(data)
    if 0 in shape:
        return reject("zero-dim", f"input '{data}' has a 0 dimension {fmt_shape(shape)}")
    rank = len(shape)
    if ctx.mlprogram and not 3 <= rank <= 5:
        return reject("rank", f"MLProgram Resize takes 3-D to 5-D input; got {rank}-D")
    if not ctx.mlprogram and rank != 4:
        return reject("nn-rank", f"NeuralNetwork Resize takes 4-D input only; got {rank}-D")
    if int(_attr(node, "antialias", 0)) != 0:
        return reject("attribute", "antialias is not supported")
    mode = _attr(node, "mode", "nearest")
    if mode not in ("nearest", "linear"):
        return reject("attribute", f"mode '{mode}' is not supported (nearest or linear only)")
    if mode == "nearest" and _attr(node, "nearest_mode", "round_prefer_floor") != "floor":
        return reject("attribute", "nearest mode needs nearest_mode='floor'")
    if int(_attr(node, "exclude_outside", 0)) != 0:
        return reject("attribute", "exclude_outside is not supported")
    if _attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
        return reject("attribute", "keep_aspect_ratio_policy must be 'stretch'")
    # Resize-11 requires an (often empty) scales input; sizes wins when present (SRC comment).
    sizes_name, scales_name = _input(node, 3), _input(node, 2)
    using_sizes = bool(sizes_name)
    if not using_sizes and not scales_name:
        return reject("inputs", "Resize needs a 'scales' or 'sizes' input")
    axes = list(_attr(node, "axes", ())) or list(range(rank))
    axes = [a + rank if a < 0 else a for a in axes]
    out_hw: tuple[float, float]
    if not using_sizes:
        if DYNAMIC in shape[-2:]:
            return reject(
                "dynamic-shape",
                f"Resize with 'scales' needs fixed H and W; input '{data}' is {fmt_shape(shape)}",
            )
        scales = ctx.constant(scales_name)
        if scales is None:
            return _not_constant(node, 2, "scales")
        scales = [float(s) for s in scales.tolist()]
        for axis, scale in zip(axes, scales, strict=False):
            if axis < rank - 2 and scale != 1.0:
                return reject("attribute", "Resize may only change the last two axes")
        scale_h, scale_w = scales[-2], scales[-1]
        if scale_h >= 1 and scale_w >= 1:
            if round(scale_h) != scale_h or round(scale_w) != scale_w:
                return reject("attribute", f"upsample scales {scale_h}, {scale_w} not whole")
        elif scale_h <= 1 and scale_w <= 1:
            if not ctx.mlprogram:
                return reject("attribute", "NeuralNetwork Resize cannot downsample")
            for dim, scale in ((shape[-2], scale_h), (shape[-1], scale_w)):
                factor = 1 / scale
                if round(factor) != factor or dim % round(factor) != 0:
                    return reject("attribute", f"downsample scale {scale} does not divide {dim}")
        else:
            return reject("attribute", "scales must be both >= 1 or both <= 1")
        out_hw = (shape[-2] * scale_h, shape[-1] * scale_w)
    else:
        sizes = ctx.constant(sizes_name)
        if sizes is None:
            return _not_constant(node, 3, "sizes")
        sizes = [int(s) for s in sizes.tolist()]
        for idx, axis in enumerate(axes):
            if axis < rank - 2 and shape[idx] != sizes[idx]:
                return reject("attribute", "Resize may only change the last two axes")
        if not ctx.mlprogram:
            if DYNAMIC in shape:
                return _dynamic(data, shape)
            if sizes[-2] % shape[-2] or sizes[-1] % shape[-1]:
                return reject("attribute", "NeuralNetwork Resize sizes must be multiples of H, W")
        out_hw = (sizes[-2], sizes[-1])
    mode_ct = _attr(node, "coordinate_transformation_mode", "half_pixel")
    if not ctx.mlprogram or mode == "nearest":
        if mode_ct != "asymmetric":
            return reject(
                "attribute",
                f"coordinate_transformation_mode '{mode_ct}' needs to be 'asymmetric' here",
            )
        return None
    if mode_ct == "pytorch_half_pixel" and out_hw[0] > 1 and out_hw[1] > 1:
        mode_ct = "half_pixel"
    if mode_ct in ("half_pixel", "align_corners") or (using_sizes and mode_ct == "asymmetric"):
        return None
    return reject("attribute", f"linear Resize with coordinate_transformation_mode '{mode_ct}'")


def shape_op(node: Node, ctx: Ctx) -> Rejection | None:
    """NN: no start/end; ML: the sliced range must be non-empty (SRC id 3390682946)."""
    start = int(_attr(node, "start", 0))
    if not ctx.mlprogram:
        if "end" in node.attrs or start != 0:
            return reject("attribute", "NeuralNetwork Shape takes no 'start'/'end' slicing")
        return None
    if "end" not in node.attrs and start == 0:
        return None
    shape = ctx.shape(node.inputs[0])
    if shape is None:
        return _unknown_shape(node.inputs[0])
    rank = len(shape)
    end = int(_attr(node, "end", rank))
    end = end + rank if end < 0 else end
    start = start + rank if start < 0 else start
    if end - start == 0:
        return reject("empty", "Shape slice is empty")
    return None


def gather(node: Node, ctx: Ctx) -> Rejection | None:
    """Shapes known; scalar indices rejected; output rank <= 5 (SRC id 272324375)."""
    data_shape, idx_shape = ctx.shape(node.inputs[0]), ctx.shape(_input(node, 1))
    if data_shape is None:
        return _unknown_shape(node.inputs[0], "data")
    if idx_shape is None:
        return _unknown_shape(_input(node, 1), "indices")
    if len(idx_shape) == 0:
        return reject(
            "scalar-indices",
            "scalar (rank-0) 'indices' are not supported before ORT 1.32; fix the input shape "
            "so this shape arithmetic folds",
        )
    if len(data_shape) + len(idx_shape) - 1 > 5:
        return reject("rank", "Gather output rank would exceed 5")
    return None


def squeeze(node: Node, ctx: Ctx) -> Rejection | None:
    """Opset >= 13 axes input constant; Unsqueeze: ML only, output rank <= 5 (SRC id 3192888111)."""
    axes_name = _input(node, 1)
    if node.since_version > 12 and axes_name and not ctx.is_constant(axes_name):
        return _not_constant(node, 1, "axes")
    if node.op_type != "Unsqueeze":
        return None
    if node.since_version > 12:
        axes = ctx.constant(axes_name)
        new_dims = 0 if axes is None else axes.size
    else:
        new_dims = len(_attr(node, "axes", ()))
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) + new_dims > 5:
        return reject("rank", "Unsqueeze output would have more than 5 dimensions")
    return None


def _slice_ranges(node: Node, ctx: Ctx, shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """ONNX Slice start/end/step per input axis after clamping (ORT's PrepareForComputeMetadata)."""
    rank = len(shape)
    starts = ctx.constant(node.inputs[1]).tolist()
    ends = ctx.constant(node.inputs[2]).tolist()
    axes_value = ctx.constant(_input(node, 3))
    steps_value = ctx.constant(_input(node, 4))
    axes = axes_value.tolist() if axes_value is not None else list(range(len(starts)))
    steps = steps_value.tolist() if steps_value is not None else [1] * len(starts)
    ranges = [(0, dim, 1) for dim in shape]
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=False):
        axis = axis + rank if axis < 0 else axis
        dim = shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        ranges[axis] = (start, end, step)
    return ranges


def slice_op(node: Node, ctx: Ctx) -> Rejection | None:
    """Static data; constant starts/ends/axes/steps; no empty range (SRC id 5687274159)."""
    data = node.inputs[0]
    shape = ctx.static_shape(data)
    if shape is None:
        return _dynamic(data, ctx.shape(data), "data input")
    for slot, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        if (slot < 3 or _input(node, slot)) and not ctx.is_constant(_input(node, slot)):
            return _not_constant(node, slot, what)
    for start, end, step in _slice_ranges(node, ctx, shape):
        if step == 0:
            return reject("attribute", "a Slice step of 0 is invalid")
        if (step > 0 and start >= end) or (step < 0 and start <= end):
            return reject("empty", f"empty range [{start}, {end}) with step {step}")
    return None


def cast(node: Node, ctx: Ctx) -> Rejection | None:
    """Needs a producing node; ML: to int32/int64/float/fp16; NN: ArgMax -> int32 only."""
    producer = ctx.graph.producer(node.inputs[0])
    if producer is None:
        return reject("inputs", "Cast fed directly by a graph input or initializer")
    to = int(_attr(node, "to", 0))
    if ctx.mlprogram:
        if to not in (INT32, INT64, FLOAT, FLOAT16):
            return reject("attribute", f"Cast to {dtype_name(to)} is not supported")
        return None
    if ctx.graph.nodes[producer].op_type != "ArgMax" or to != INT32:
        return reject("nn-pattern", "NeuralNetwork Cast is only supported as ArgMax -> int32")
    return None


def flatten(node: Node, ctx: Ctx) -> Rejection | None:
    shape = ctx.shape(node.inputs[0])
    if not shape:
        return reject("rank", "Flatten input shape is empty or unknown")
    return None


def gemm(node: Node, ctx: Ctx) -> Rejection | None:
    """A, B shapes known; constant B; Gemm attrs default; C broadcastable (SRC id 863612775)."""
    a, b = node.inputs[0], _input(node, 1)
    a_shape, b_shape = ctx.shape(a), ctx.shape(b)
    if a_shape is None or b_shape is None:
        return _unknown_shape(a if a_shape is None else b)
    if node.op_type == "MatMul":
        if ctx.mlprogram:
            if len(a_shape) == 1 or len(b_shape) == 1:
                return reject("rank", "MLProgram MatMul with a 1-D input (a CoreML bug)")
            return None
        if len(a_shape) != 2 or len(b_shape) != 2:
            return reject("nn-rank", "NeuralNetwork MatMul takes 2-D inputs only")
        if not ctx.is_constant(b):
            return _not_constant(node, 1, "B")
        return None
    if not ctx.is_constant(b):
        return _not_constant(node, 1, "B")
    if int(_attr(node, "transA", 0)) != 0:
        return reject("attribute", "Gemm transA=1 is not supported")
    if float(_attr(node, "alpha", 1.0)) != 1.0 or float(_attr(node, "beta", 1.0)) != 1.0:
        return reject("attribute", "Gemm alpha and beta must be 1")
    c = _input(node, 2)
    if c:
        value = ctx.constant(c)
        if value is None:
            return _not_constant(node, 2, "C")
        n = b_shape[0] if int(_attr(node, "transB", 0)) else b_shape[-1]
        if tuple(value.shape) not in ((), (1,), (n,), (1, n)):
            return reject("attribute", f"Gemm C of shape {list(value.shape)} is not supported")
    return None


def batchnorm(node: Node, ctx: Ctx) -> Rejection | None:
    if len([o for o in node.outputs if o]) != 1:
        return reject("attribute", "training-mode BatchNormalization (several outputs)")
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) != 4:
        return reject("rank", f"BatchNormalization input must be 4-D; got {fmt_shape(shape)}")
    if int(_attr(node, "spatial", 1)) != 1:
        return reject("attribute", "spatial=0 is not supported")
    for slot, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
        if not ctx.is_constant(_input(node, slot)):
            return _not_constant(node, slot, what)
    return None


def normalization(node: Node, ctx: Ctx) -> Rejection | None:
    if len([o for o in node.outputs if o]) != 1:
        return reject("attribute", f"{node.op_type} with more than one output")
    if ctx.shape(node.inputs[0]) is None:
        return _unknown_shape(node.inputs[0])
    if node.op_type != "InstanceNormalization" and int(_attr(node, "stash_type", 1)) != 1:
        return reject("attribute", "stash_type must be 1")
    for slot, what in ((1, "scale"), (2, "bias")):
        if _input(node, slot) and not ctx.is_constant(_input(node, slot)):
            return _not_constant(node, slot, what)
    return None


def pad(node: Node, ctx: Ctx, *, modes: tuple[str, ...] = ("constant",)) -> Rejection | None:
    """NN only before 1.32: constant mode, constant non-negative pads on the last two dims."""
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) < 2:
        return reject("rank", f"Pad input must be at least 2-D; got {fmt_shape(shape)}")
    if 0 in shape:
        return reject("zero-dim", "Pad of an empty tensor")
    mode = str(_attr(node, "mode", "constant"))
    if mode not in modes:
        return reject("attribute", f"Pad mode '{mode}' is not supported ({', '.join(modes)})")
    pads = ctx.constant(_input(node, 1))
    if pads is None:
        return _not_constant(node, 1, "pads")
    if mode == "constant" and not ctx.is_constant(_input(node, 2)):
        return _not_constant(node, 2, "constant_value")
    if _input(node, 3) and not ctx.is_constant(_input(node, 3)):
        return _not_constant(node, 3, "axes")
    values = pads.tolist()
    half = len(values) // 2
    if any(v < 0 for v in values):
        return reject("attribute", "negative pads are not supported")
    if _input(node, 3) == "" and any(values[i] or values[i + half] for i in range(half - 2)):
        return reject("attribute", "only the last two dimensions may be padded")
    return None


def pool(node: Node, ctx: Ctx) -> Rejection | None:
    """Rank 4; no storage order, dilations or indices; NN: ceil_mode 0 (SRC id 303635993)."""
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) != 4:
        return reject("rank", f"{node.op_type} input must be 4-D; got {fmt_shape(shape)}")
    if node.op_type.startswith("Global"):
        return None
    if int(_attr(node, "storage_order", 0)) != 0:
        return reject("attribute", "storage_order=1 is not supported")
    if len(_attr(node, "kernel_shape", ())) != 2:
        return reject("attribute", "only 2-D kernels are supported")
    if any(int(d) != 1 for d in _attr(node, "dilations", ())):
        return reject("attribute", "dilations are not supported")
    if len([o for o in node.outputs if o]) > 1:
        return reject("attribute", "the MaxPool indices output is not supported")
    if not ctx.mlprogram and int(_attr(node, "ceil_mode", 0)) != 0:
        return reject("attribute", "NeuralNetwork pooling needs ceil_mode=0")
    return None


def reduction(node: Node, ctx: Ctx) -> Rejection | None:
    axes = _input(node, 1)
    if axes and not ctx.is_constant(axes):
        return _not_constant(node, 1, "axes")
    empty = not axes and not _attr(node, "axes", ())
    if not ctx.mlprogram and empty and int(_attr(node, "noop_with_empty_axes", 0)) == 1:
        return reject("attribute", "noop_with_empty_axes with empty axes")
    return None


def split(node: Node, ctx: Ctx) -> Rejection | None:
    """Constant split sizes or num_outputs; static split axis (SRC id 3051490922)."""
    shape = ctx.shape(node.inputs[0])
    if shape is None:
        return _unknown_shape(node.inputs[0])
    axis = int(_attr(node, "axis", 0))
    axis = axis + len(shape) if axis < 0 else axis
    dim = shape[axis]
    if dim == DYNAMIC:
        return _dynamic(node.inputs[0], shape)
    outputs = len(node.outputs)
    split_name = _input(node, 1)
    if split_name:
        sizes = ctx.constant(split_name)
        if sizes is None:
            return _not_constant(node, 1, "split")
        values = sizes.tolist()
        if len(values) < 2 or sum(values) != dim or 0 in values:
            return reject("attribute", f"split sizes {values} do not divide axis size {dim}")
        return None
    if node.since_version >= 18:
        num = int(_attr(node, "num_outputs", 0))
        if num < 2 or num != outputs or num > dim:
            return reject("attribute", "num_outputs must be >= 2, match the outputs, fit the axis")
    elif outputs < 2:
        return reject("attribute", "Split needs at least 2 outputs")
    return None


def clip(node: Node, ctx: Ctx) -> Rejection | None:
    for slot, what in ((1, "min"), (2, "max")):
        if _input(node, slot) and not ctx.is_constant(_input(node, slot)):
            return _not_constant(node, slot, what)
    return None


def argmax(node: Node, ctx: Ctx) -> Rejection | None:
    if int(_attr(node, "select_last_index", 0)) != 0:
        return reject("attribute", "select_last_index=1 is not supported")
    if not ctx.mlprogram:
        consumers = {e.dst for e in ctx.graph.output_edges(node.index)}
        kinds = {ctx.graph.nodes[i].op_type for i in consumers}
        if "Cast" in kinds and len(kinds) > 1:
            return reject("nn-pattern", "NeuralNetwork ArgMax feeding a Cast and other nodes")
    return None


def depthtospace(node: Node, ctx: Ctx) -> Rejection | None:
    shape = ctx.shape(node.inputs[0])
    if shape is None:
        return _unknown_shape(node.inputs[0])
    mode = _attr(node, "mode", "DCR")
    if not ctx.mlprogram and mode != "DCR":
        return reject("attribute", "NeuralNetwork DepthToSpace supports DCR mode only")
    if ctx.mlprogram and mode == "CRD" and DYNAMIC in shape:
        return _dynamic(node.inputs[0], shape)
    if mode == "DCR" and ctx.dtype(node.inputs[0]) == FLOAT16 and ctx.coreml_version < 7:
        return reject("attribute", "float16 DCR DepthToSpace needs CoreML 7")
    return None


def lrn(node: Node, ctx: Ctx) -> Rejection | None:
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) not in (3, 4):
        return reject("rank", f"LRN input must be 3-D or 4-D; got {fmt_shape(shape)}")
    return None


def gridsample(node: Node, ctx: Ctx) -> Rejection | None:
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) != 4:
        return reject("rank", f"GridSample input must be 4-D; got {fmt_shape(shape)}")
    mode, padding = _attr(node, "mode", "linear"), _attr(node, "padding_mode", "zeros")
    if (mode, padding, int(_attr(node, "align_corners", 0))) == ("linear", "reflection", 0):
        return reject("attribute", "GridSample linear/reflection/align_corners=0 (output diffs)")
    return None


IMPL: dict[str, Predicate] = {
    "activation": activation,
    "argmax": argmax,
    "batchnorm": batchnorm,
    "cast": cast,
    "clip": clip,
    "concat": concat,
    "conv": conv,
    "convtranspose": convtranspose,
    "depthtospace": depthtospace,
    "flatten": flatten,
    "gather": gather,
    "gemm": gemm,
    "gridsample": gridsample,
    "lrn": lrn,
    "normalization": normalization,
    "pad": pad,
    "pool": pool,
    "reduction": reduction,
    "reshape": reshape,
    "resize": resize,
    "shape": shape_op,
    "slice": slice_op,
    "softmax": softmax,
    "split": split,
    "squeeze": squeeze,
}

TABLE = RuleTable(
    version=VERSION,
    builders=BUILDERS,
    mlprogram=MLPROGRAM,
    nn_unsupported=NN_UNSUPPORTED,
    min_opset=MIN_OPSET,
    max_opset=MAX_OPSET,
    max_input_dim=MAX_INPUT_DIM,
    max_input_rank=MAX_INPUT_RANK,
    rejects_external_initializers=True,  # removed in 1.23 (BIN 1.22.1 vs 1.23.2)
    input_types=INPUT_TYPES,
    impl=IMPL,
    trivial=frozenset(),
    drop_trivial_groups=False,
    messages=MESSAGES,
)
