"""One row per ONNX operator: a function (converter, node) that emits the node's IR ops and
defines its output values (see tinyq/importers/onnx.py for the layouts).

Conv with group 1 is CONV_2D, with one group per input channel DEPTHWISE_CONV_2D; 1-D Conv and
pooling run as their 2-D ops over a unit height. BatchNormalization folds into the
convolution or Gemm before it when nothing else reads that output (else a per-channel affine
op); Relu and Clip(0, 6) fuse into the op before them as TFLite fuses activations; Dropout
and Identity vanish; Div by a constant is a MUL by its reciprocal.
"""

from __future__ import annotations

import numpy as np

from tinyq import ir
from tinyq.errors import TinyqError
from tinyq.importers.onnx import Layout, OnnxConverter, as_4d, channels_last_shape, order_kept
from tinyq.ops.add import Add
from tinyq.ops.batch_matmul import BatchMatMul
from tinyq.ops.concatenation import Concatenation
from tinyq.ops.conv import Conv2D
from tinyq.ops.depthwise_conv import DepthwiseConv2D
from tinyq.ops.elu import Elu
from tinyq.ops.fully_connected import FullyConnected
from tinyq.ops.gru import Gru
from tinyq.ops.hard_swish import HardSwish
from tinyq.ops.logistic import Logistic
from tinyq.ops.lstm import UnidirectionalSequenceLstm
from tinyq.ops.maximum_minimum import Maximum, Minimum
from tinyq.ops.mean import Mean
from tinyq.ops.mirror_pad import REFLECT, MirrorPad
from tinyq.ops.mul import Mul
from tinyq.ops.pad import Pad
from tinyq.ops.pool import AveragePool2D, MaxPool2D
from tinyq.ops.prelu import Prelu
from tinyq.ops.reduce import ReduceMax, ReduceMin, Sum
from tinyq.ops.relu import LeakyRelu, Relu, Relu6
from tinyq.ops.reshape import Reshape
from tinyq.ops.resize import ResizeBilinear, ResizeNearestNeighbor, nearest_sources
from tinyq.ops.slice import Slice
from tinyq.ops.softmax import Softmax
from tinyq.ops.sub import Sub
from tinyq.ops.tanh import Tanh
from tinyq.ops.transpose import Transpose
from tinyq.ops.transpose_conv import TransposeConv2D
from tinyq.ops.window import SAME, out_size, padding_for

# ops that read NCHW as images (a 3-D input feeding one is deployed channels-last)
SPATIAL = {
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
}
FUSES_ACTIVATION = (Conv2D, DepthwiseConv2D, FullyConnected, TransposeConv2D, Add)


def attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _operand(node, index: int) -> str | None:
    return node.input[index] if len(node.input) > index and node.input[index] else None


def fold_constant_node(cv: OnnxConverter, node) -> bool:
    """Evaluate a node at import when its value cannot depend on the model's input: Constant,
    Shape of a tensor of known shape, any node whose inputs are all constants."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    if node.op_type == "Constant":
        attr = node.attribute[0]
        value = onnx.numpy_helper.to_array(attr.t) if attr.name == "value" else onnx.helper.get_attribute_value(attr)
        cv.constants[node.output[0]] = np.asarray(value)
        cv.shapes.setdefault(node.output[0], np.shape(value))
        return True
    if node.op_type == "DequantizeLinear" and cv.const(node.input[0]) is not None:
        _record_weight_scales(cv, node)
    if node.op_type == "Shape" and node.input[0] in cv.shapes:
        a = attributes(node)
        shape = np.array(cv.shapes[node.input[0]], np.int64)
        cv.constants[node.output[0]] = shape[a.get("start", 0) : a.get("end", len(shape))]
        return True
    names = [n for n in node.input if n]
    if not names or any(cv.const(n) is None for n in names):
        return False
    try:
        results = ReferenceEvaluator(node).run(None, {n: cv.const(n) for n in names})
    except Exception as err:  # the evaluator raises what the operator's implementation raises
        raise TinyqError(f"node {cv.node_name!r} ({node.op_type}) on constants could not be evaluated: {err}") from None
    for name, value in zip(node.output, results):
        cv.constants[name] = np.asarray(value)
        cv.shapes.setdefault(name, tuple(np.shape(value)))
    return True


# --- helpers -------------------------------------------------------------------------------


def _spatial(values, one_d: bool, default: int) -> tuple[int, int]:
    """An ONNX per-spatial-axis attribute as (height, width); 1-D layers have height 1."""
    values = list(values) if values is not None else [default] * (1 if one_d else 2)
    return (1, int(values[0])) if one_d else (int(values[0]), int(values[1]))


def _padding(cv: OnnxConverter, a: dict, in_hw, kernel, strides, dilation, one_d: bool) -> ir.Padding2D:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        p = padding_for(SAME, in_hw, kernel, strides, dilation)  # TensorFlow's SAME: the extra one after
        if auto == "SAME_LOWER":
            p = ir.Padding2D(p.bottom, p.top, p.right, p.left)
        return p
    if auto == "VALID":
        return ir.Padding2D()
    pads = [int(v) for v in a.get("pads", [0] * (2 if one_d else 4))]
    if any(v < 0 for v in pads):
        raise TinyqError(f"node {cv.node_name!r} ({cv.node.op_type}): negative pads {pads} are not supported")
    if one_d:
        return ir.Padding2D(0, 0, pads[0], pads[1])
    return ir.Padding2D(pads[0], pads[2], pads[1], pads[3])


def _fuse_activation(cv: OnnxConverter, x: str, activation: ir.Activation) -> str | None:
    """Fuse `activation` into the op producing ONNX value x, if that op takes one and nothing
    else reads x; the IR tensor it now computes (None: not fused)."""
    tensor = cv.values[x].tensor
    op = cv.producer(tensor)
    if (
        op is None
        or not isinstance(op.attrs, FUSES_ACTIVATION)
        or op.attrs.activation != ir.Activation.NONE
        or not cv.single_use(x)
    ):
        return None
    from dataclasses import replace

    cv.replace_op(op, ir.Op(op.name, replace(op.attrs, activation=activation), op.inputs, op.outputs))
    return tensor


def _activation(cv: OnnxConverter, node, activation: ir.Activation, attrs_class) -> None:
    x = node.input[0]
    fused = _fuse_activation(cv, x, activation)
    value = cv.values[x]
    if fused is not None:
        cv.define(node.output[0], fused, value.layout, value.chw)
        return
    _unary(attrs_class)(cv, node)


def _unary(attrs_class, **kwargs):
    def convert(cv: OnnxConverter, node) -> None:
        value = cv.values[node.input[0]]
        shape = cv.tensors[value.tensor].shape
        out = cv.emit(attrs_class(**kwargs), [value.tensor], shape, node.output[0])
        cv.define(node.output[0], out, value.layout, value.chw)

    return convert


def _in_layout(cv: OnnxConverter, data: np.ndarray, like: str, layout: Layout) -> np.ndarray:
    """A constant operand as the IR holds it beside value `like`: broadcast to its rank,
    channels-last when it is."""
    rank = cv.rank(like)
    data = np.asarray(data, np.float32)
    data = data.reshape((1,) * (rank - data.ndim) + data.shape) if data.ndim <= rank else data
    if layout != Layout.CHANNELS_LAST:
        return data.reshape(data.shape or (1,))
    if rank == 4:
        return data.transpose(0, 2, 3, 1)
    return data.transpose(0, 2, 1)[:, None]  # (N, C, L) -> (N, 1, L, C)


def _operands(cv: OnnxConverter, node, names) -> tuple[list[str], Layout]:
    """The IR tensors of an elementwise op's operands (constants made IR constants) in one layout."""
    live = [n for n in names if cv.const(n) is None]
    if not live:
        raise TinyqError(f"node {cv.node_name!r} ({node.op_type}) computes only on constants")
    tensors, layout = cv.same_layout(live)
    by_name = dict(zip(live, tensors))
    out = []
    for n in names:
        if n in by_name:
            out.append(by_name[n])
        else:
            out.append(cv.constant(f"{cv.node_name}/{n}", _in_layout(cv, cv.const(n), live[0], layout)))
    return out, layout


def _broadcast(cv: OnnxConverter, tensors) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(cv.tensors[t].shape for t in tensors)))


# --- rows ------------------------------------------------------------------------------------


def _alias(cv: OnnxConverter, node) -> None:
    cv.values[node.output[0]] = cv.values[node.input[0]]


def _conv(cv: OnnxConverter, node) -> None:
    a = attributes(node)
    x_name, out_name = node.input[0], node.output[0]
    w = cv.need_const(node.input[1], "the weights").astype(np.float32)
    one_d = w.ndim == 3
    if w.ndim not in (3, 4):
        raise TinyqError(f"node {cv.node_name!r}: {w.ndim - 2}-D convolution is not supported (1-D and 2-D are)")
    if one_d:
        w = w[:, :, None, :]
    out_channels, _, kh, kw = w.shape
    bias = cv.const(_operand(node, 2)) if _operand(node, 2) else np.zeros(out_channels, np.float32)
    _, channels, *in_spatial = cv.shapes[x_name]
    in_hw = (1, in_spatial[0]) if one_d else tuple(in_spatial)
    strides, dilation = _spatial(a.get("strides"), one_d, 1), _spatial(a.get("dilations"), one_d, 1)
    padding = _padding(cv, a, in_hw, (kh, kw), strides, dilation, one_d)
    group = int(a.get("group", 1))
    x = cv.channels_last(x_name)
    out_shape = channels_last_shape(cv.shapes[out_name])
    b = cv.new(f"{cv.node_name}/bias", (out_channels,), bias)
    if group == 1:
        weights = cv.weights(node.input[1], w.transpose(0, 2, 3, 1))
        out = cv.emit(Conv2D(strides, dilation, padding), [x, weights, b], out_shape, out_name)
    elif group == channels and w.shape[1] == 1:
        weights = cv.weights(node.input[1], w.transpose(1, 2, 3, 0))
        attrs = DepthwiseConv2D(strides, dilation, padding, out_channels // channels)
        out = cv.emit(attrs, [x, weights, b], out_shape, out_name)
    else:
        raise TinyqError(
            f"node {cv.node_name!r}: Conv with group {group} over {channels} channels is not supported "
            "(group 1, or one group per input channel: depthwise)"
        )
    cv.define(out_name, out, Layout.CHANNELS_LAST)


def _conv_transpose(cv: OnnxConverter, node) -> None:
    a = attributes(node)
    x_name, out_name = node.input[0], node.output[0]
    w = cv.need_const(node.input[1], "the weights").astype(np.float32)
    if w.ndim != 4 or int(a.get("group", 1)) != 1:
        raise TinyqError(f"node {cv.node_name!r}: ConvTranspose is supported 2-D with group 1")
    if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        raise TinyqError(f"node {cv.node_name!r}: dilated ConvTranspose is not supported")
    in_channels, out_channels, kh, kw = w.shape
    strides = _spatial(a.get("strides"), False, 1)
    out_shape = channels_last_shape(cv.shapes[out_name])
    pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    padding = ir.Padding2D(pads[0], pads[2], pads[1], pads[3])
    back = tuple(
        out_size(out_shape[1 + i], (kh, kw)[i], strides[i], 1, *((pads[0], pads[2]), (pads[1], pads[3]))[i])
        for i in (0, 1)
    )
    if back != tuple(cv.shapes[x_name][2:]) or any(a.get("output_padding", [0, 0])):
        raise TinyqError(
            f"node {cv.node_name!r}: ConvTranspose to {cv.shapes[out_name][2:]} (output_padding, or an output "
            "size the forward convolution does not map back) is not supported"
        )
    bias = cv.const(_operand(node, 2)) if _operand(node, 2) else np.zeros(out_channels, np.float32)
    weights = cv.weights(node.input[1], w.transpose(1, 2, 3, 0))
    b = cv.new(f"{cv.node_name}/bias", (out_channels,), bias)
    out = cv.emit(TransposeConv2D(strides, padding), [cv.channels_last(x_name), weights, b], out_shape, out_name)
    cv.define(out_name, out, Layout.CHANNELS_LAST)


def _dense(cv: OnnxConverter, node, x_name: str, w: np.ndarray, bias: np.ndarray, source: str) -> None:
    """FULLY_CONNECTED of x with weights w [units, depth]: reading a FLAT value, the weights'
    columns are permuted from the NCHW flatten order to the NHWC one."""
    value = cv.values[x_name]
    if value.layout == Layout.FLAT:
        c, h, wd = value.chw
        w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        x = value.tensor
    else:
        x = cv.plain(x_name)
    weights = cv.weights(source, w)
    b = cv.new(f"{cv.node_name}/bias", bias.shape, bias)
    out_name = node.output[0]
    cv.define(out_name, cv.emit(FullyConnected(), [x, weights, b], cv.shapes[out_name], out_name))


def _gemm(cv: OnnxConverter, node) -> None:
    a = attributes(node)
    if a.get("transA", 0):
        raise TinyqError(f"node {cv.node_name!r}: Gemm with transA is not supported")
    w = cv.need_const(node.input[1], "Gemm's B").astype(np.float32)
    w = (w if a.get("transB", 0) else w.T) * np.float32(a.get("alpha", 1.0))
    units = w.shape[0]
    c = cv.const(_operand(node, 2)) if _operand(node, 2) else None
    if _operand(node, 2) and c is None:
        raise TinyqError(f"node {cv.node_name!r}: Gemm's C must be a constant")
    bias = np.zeros(units, np.float32) if c is None else np.broadcast_to(c * a.get("beta", 1.0), (1, units))[0]
    _dense(cv, node, node.input[0], w, bias.astype(np.float32), node.input[1])


def _matmul(cv: OnnxConverter, node) -> None:
    rhs = cv.const(node.input[1])
    if rhs is not None and rhs.ndim == 2 and cv.const(node.input[0]) is None:
        _dense(cv, node, node.input[0], rhs.T.astype(np.float32), np.zeros(rhs.shape[1], np.float32), node.input[1])
        return
    tensors = [cv.plain(n) if cv.const(n) is None else cv.constant(n, cv.const(n)) for n in node.input]
    out_name = node.output[0]
    cv.define(out_name, cv.emit(BatchMatMul(), tensors, cv.shapes[out_name], out_name))


def _batch_normalization(cv: OnnxConverter, node) -> None:
    a = attributes(node)
    x_name, out_name = node.input[0], node.output[0]
    gamma, beta, mean, var = (cv.need_const(n, "BatchNormalization's statistics") for n in node.input[1:5])
    scale = (gamma / np.sqrt(var + a.get("epsilon", 1e-5))).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    rank = cv.rank(x_name)
    if rank in (3, 4):
        x, layout = cv.channels_last(x_name), Layout.CHANNELS_LAST
    elif rank == 2:
        x, layout = cv.plain(x_name), Layout.PLAIN
    else:
        raise TinyqError(f"node {cv.node_name!r}: BatchNormalization of a {rank}-D tensor is not supported")
    op = cv.producer(x)
    if (
        op is not None
        and isinstance(op.attrs, (Conv2D, DepthwiseConv2D, FullyConnected, TransposeConv2D))
        and op.attrs.activation == ir.Activation.NONE
        and cv.single_use(x_name)
    ):
        w, b = cv.tensors[op.inputs[1]], cv.tensors[op.inputs[2]]
        axis = 3 if isinstance(op.attrs, DepthwiseConv2D) else 0
        shape = [1] * w.data.ndim
        shape[axis] = -1
        cv.tensors[w.name] = ir.Tensor(w.name, w.shape, "float32", None, w.data * scale.reshape(shape))
        cv.refolded.add(w.name)
        cv.tensors[b.name] = ir.Tensor(b.name, b.shape, "float32", None, b.data * scale + shift)
        out = x
    else:
        channels = len(scale)
        b = cv.new(f"{cv.node_name}/shift", (channels,), shift)
        if layout == Layout.CHANNELS_LAST:
            w = cv.new(f"{cv.node_name}/scale", (1, 1, 1, channels), scale.reshape(1, 1, 1, channels))
            out = cv.emit(DepthwiseConv2D(), [x, w, b], cv.tensors[x].shape, out_name)
        else:
            w = cv.new(f"{cv.node_name}/scale", (channels, channels), np.diag(scale))
            out = cv.emit(FullyConnected(), [x, w, b], cv.tensors[x].shape, out_name)
    cv.bn_stats[out] = (beta.astype(np.float32), np.abs(gamma).astype(np.float32))
    cv.define(out_name, out, layout)


def _relu(cv: OnnxConverter, node) -> None:
    _activation(cv, node, ir.Activation.RELU, Relu)


def _clip(cv: OnnxConverter, node) -> None:
    a = attributes(node)
    lo = cv.need_const(_operand(node, 1), "Clip's min") if _operand(node, 1) else a.get("min")
    hi = cv.need_const(_operand(node, 2), "Clip's max") if _operand(node, 2) else a.get("max")
    lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])
    hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
    if lo == 0.0 and hi == 6.0:
        return _activation(cv, node, ir.Activation.RELU6, Relu6)
    if lo == 0.0 and hi is None:
        return _activation(cv, node, ir.Activation.RELU, Relu)
    value = cv.values[node.input[0]]
    out, shape = value.tensor, cv.tensors[value.tensor].shape
    given = cv.range_of(out)
    for bound, attrs_class in ((lo, Maximum), (hi, Minimum)):
        if bound is not None:
            limit = cv.constant(f"{cv.node_name}/{attrs_class.__name__.lower()}", [bound])
            out = cv.emit(attrs_class(), [out, limit], shape, op_name=f"{cv.node_name}_{attrs_class.__name__.lower()}")
            if given is not None:  # a QDQ model quantizes the node's output only: the bounds applied so far
                bounded = max if attrs_class is Maximum else min
                given = (bounded(given[0], bound), bounded(given[1], bound))
                cv.implied_ranges[out] = given
    cv.define(node.output[0], out, value.layout, value.chw)


def _leaky_relu(cv: OnnxConverter, node) -> None:
    _unary(LeakyRelu, alpha=float(attributes(node).get("alpha", 0.01)))(cv, node)


def _prelu(cv: OnnxConverter, node) -> None:
    x_name = node.input[0]
    slope = cv.need_const(node.input[1], "PRelu's slope")
    value = cv.values[x_name]
    if value.layout == Layout.FLAT:
        x, layout = cv.plain(x_name), Layout.PLAIN
    else:
        x, layout = value.tensor, value.layout
    alpha = _in_layout(cv, slope, x_name, layout)
    alpha = alpha.reshape(alpha.shape[1:]) if alpha.ndim > 1 and alpha.shape[0] == 1 else alpha
    a = cv.constant(f"{cv.node_name}/alpha", alpha)
    cv.define(node.output[0], cv.emit(Prelu(), [x, a], cv.tensors[x].shape, node.output[0]), layout)


def _hard_sigmoid(cv: OnnxConverter, node) -> None:
    """max(0, min(1, alpha x + beta)) = relu6(6 alpha x + 6 beta) / 6: an ADD with a fused
    ReLU6 (after a MUL when 6 alpha is not 1), then MUL by 1/6."""
    a = attributes(node)
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    value = cv.values[node.input[0]]
    x, shape, name = value.tensor, cv.tensors[value.tensor].shape, cv.node_name
    if abs(6 * alpha - 1) > 1e-7:
        given = cv.range_of(x)
        x = cv.emit(Mul(), [x, cv.constant(f"{name}/slope", [6 * alpha])], shape, op_name=f"{name}_slope")
        if given is not None:  # a QDQ model quantizes the node's output only
            cv.implied_ranges[x] = tuple(sorted(v * 6 * alpha for v in given))
    shifted = cv.emit(
        Add(ir.Activation.RELU6), [x, cv.constant(f"{name}/offset", [6 * beta])], shape, op_name=f"{name}_offset"
    )
    cv.implied_ranges[shifted] = (0.0, 6.0)
    out = cv.emit(Mul(), [shifted, cv.constant(f"{name}/sixth", [1 / 6])], shape, node.output[0])
    cv.define(node.output[0], out, value.layout, value.chw)


def _elu(cv: OnnxConverter, node) -> None:
    if float(attributes(node).get("alpha", 1.0)) != 1.0:
        raise TinyqError(f"node {cv.node_name!r}: Elu with alpha other than 1 is not supported (TFLite's ELU)")
    _unary(Elu)(cv, node)


def _softmax(cv: OnnxConverter, node) -> None:
    x_name = node.input[0]
    axis = int(attributes(node).get("axis", -1)) % cv.rank(x_name)
    value = cv.values[x_name]
    layout = value.layout if value.layout != Layout.FLAT else Layout.PLAIN
    if cv.ir_axis(x_name, axis, layout) != len(cv.ir_shape(x_name, layout)) - 1:
        layout = Layout.PLAIN
    if cv.ir_axis(x_name, axis, layout) != cv.rank(x_name) - 1:
        raise TinyqError(f"node {cv.node_name!r}: Softmax over axis {axis} is not supported (the last axis)")
    x = cv.channels_last(x_name) if layout == Layout.CHANNELS_LAST else cv.plain(x_name)
    cv.define(node.output[0], cv.emit(Softmax(), [x], cv.tensors[x].shape, node.output[0]), layout)


def _binary(attrs_class):
    def convert(cv: OnnxConverter, node) -> None:
        (x, y), layout = _operands(cv, node, list(node.input[:2]))
        out = cv.emit(attrs_class(), [x, y], _broadcast(cv, [x, y]), node.output[0])
        cv.define(node.output[0], out, layout)

    return convert


def _div(cv: OnnxConverter, node) -> None:
    divisor = cv.const(node.input[1])
    if divisor is None:
        raise TinyqError(f"node {cv.node_name!r}: Div is supported by a constant only")
    if np.any(divisor == 0):
        raise TinyqError(f"node {cv.node_name!r}: Div by a constant holding zeros")
    cv.constants[f"{node.input[1]}/reciprocal"] = (1.0 / divisor.astype(np.float64)).astype(np.float32)
    (x, y), layout = _operands(cv, node, [node.input[0], f"{node.input[1]}/reciprocal"])
    cv.define(node.output[0], cv.emit(Mul(), [x, y], _broadcast(cv, [x, y]), node.output[0]), layout)


def _concat(cv: OnnxConverter, node) -> None:
    axis = int(attributes(node)["axis"]) % cv.rank(node.input[0])
    tensors, layout = _operands(cv, node, list(node.input))
    ir_axis = cv.ir_axis(node.input[0], axis, layout)
    out_shape = cv.ir_shape(node.output[0], layout)
    cv.define(node.output[0], cv.emit(Concatenation(ir_axis), tensors, out_shape, node.output[0]), layout)


def _pool(attrs_class):
    def convert(cv: OnnxConverter, node) -> None:
        a = attributes(node)
        x_name, out_name = node.input[0], node.output[0]
        one_d = cv.rank(x_name) == 3
        kernel = _spatial(a["kernel_shape"], one_d, 1)
        strides = _spatial(a.get("strides"), one_d, 1)
        if any(int(d) != 1 for d in a.get("dilations", [1])):
            raise TinyqError(f"node {cv.node_name!r}: dilated pooling is not supported")
        in_hw = channels_last_shape(cv.shapes[x_name])[1:3]
        padding = _padding(cv, a, in_hw, kernel, strides, (1, 1), one_d)
        out_hw = channels_last_shape(cv.shapes[out_name])[1:3]
        x = cv.channels_last(x_name)
        if attrs_class is AveragePool2D and a.get("count_include_pad", 0) and padding != ir.Padding2D():
            pads = ((0, 0), (padding.top, padding.bottom), (padding.left, padding.right), (0, 0))
            n, h, w, c = cv.tensors[x].shape
            padded_shape = (n, h + padding.top + padding.bottom, w + padding.left + padding.right, c)
            x = cv.emit(Pad(pads), [x], padded_shape, op_name=f"{cv.node_name}_pad")
            in_hw, padding = padded_shape[1:3], ir.Padding2D()
        # ceil_mode: the last window may start in the padding's far side; extend it there
        extra = [
            max(0, (out_hw[i] - 1) * strides[i] + kernel[i] - (in_hw[i] + before + after))
            for i, (before, after) in enumerate(((padding.top, padding.bottom), (padding.left, padding.right)))
        ]
        if any(extra):
            if attrs_class is AveragePool2D:
                raise TinyqError(
                    f"node {cv.node_name!r}: AveragePool with ceil_mode growing the output is not supported"
                )
            padding = ir.Padding2D(padding.top, padding.bottom + extra[0], padding.left, padding.right + extra[1])
        out = cv.emit(attrs_class(kernel, strides, padding), [x], channels_last_shape(cv.shapes[out_name]), out_name)
        cv.define(out_name, out, Layout.CHANNELS_LAST)

    return convert


def _global_pool(attrs_class):
    def convert(cv: OnnxConverter, node) -> None:
        x_name, out_name = node.input[0], node.output[0]
        x = cv.channels_last(x_name)
        n, h, w, c = cv.tensors[x].shape
        out = cv.emit(attrs_class((h, w), (h, w)), [x], (n, 1, 1, c), out_name)
        cv.define(out_name, out, Layout.CHANNELS_LAST)

    return convert


def _reshaped(cv: OnnxConverter, node) -> None:
    """Flatten, Reshape, Squeeze, Unsqueeze: the output shape is shape inference's. A
    channels-last map flattened to (N, C x H x W) stays in NHWC order (FLAT)."""
    x_name, out_name = node.input[0], node.output[0]
    value, out_shape = cv.values[x_name], cv.shapes[out_name]
    in_shape = cv.shapes[x_name]
    if (
        value.layout == Layout.CHANNELS_LAST
        and len(out_shape) in (3, 4)
        and out_shape[:2] == in_shape[:2]
        and as_4d(out_shape) == as_4d(in_shape)
    ):  # (N, C, L) <-> (N, C, 1, L): one channels-last tensor holds both
        cv.define(out_name, value.tensor, Layout.CHANNELS_LAST)
        return
    if (
        value.layout == Layout.CHANNELS_LAST
        and not order_kept(in_shape)
        and len(out_shape) == 2
        and out_shape[0] == in_shape[0]
    ):
        _, c, h, w = in_shape if len(in_shape) == 4 else (in_shape[0], in_shape[1], 1, in_shape[2])
        out = cv.emit(Reshape(), [value.tensor], out_shape, out_name)
        cv.define(out_name, out, Layout.FLAT, (c, h, w))
        return
    if value.layout == Layout.FLAT and tuple(out_shape) == tuple(cv.tensors[value.tensor].shape):
        cv.values[out_name] = value
        return
    same_order = value.layout == Layout.CHANNELS_LAST and order_kept(in_shape)  # no conversion needed
    source = value.tensor if same_order else cv.plain(x_name)
    cv.define(out_name, cv.emit(Reshape(), [source], out_shape, out_name))


def _transpose(cv: OnnxConverter, node) -> None:
    x_name, out_name = node.input[0], node.output[0]
    rank = cv.rank(x_name)
    perm = tuple(int(p) for p in attributes(node).get("perm", range(rank)[::-1]))
    value = cv.values[x_name]
    if value.layout == Layout.PLAIN and rank == 4 and perm == (0, 3, 1, 2):  # NHWC -> NCHW: channels-last already
        cv.define(out_name, value.tensor, Layout.CHANNELS_LAST)
        return
    if value.layout == Layout.CHANNELS_LAST:  # transpose the IR tensor itself: axis i of x is its axis held[i]
        held = (0, 3, 1, 2) if rank == 4 else (0, 2, 1)
        source = value.tensor
        if rank == 3:  # (N, 1, L, C) -> (N, L, C)
            n, _, length, c = cv.tensors[source].shape
            source = cv.emit(Reshape(), [source], (n, length, c), op_name=f"{cv.node_name}_3d")
        perm = tuple(held[p] for p in perm)
    else:
        source = cv.plain(x_name)
    shape = cv.tensors[source].shape
    moved = [p for p in perm if shape[p] > 1]
    if moved == sorted(moved):  # only axes of size one move: the same values in the same order
        cv.define(
            out_name,
            source if perm == tuple(range(rank)) else cv.emit(Reshape(), [source], cv.shapes[out_name], out_name),
        )
        return
    cv.define(out_name, cv.emit(Transpose(perm), [source], cv.shapes[out_name], out_name))


def _pad(cv: OnnxConverter, node) -> None:
    a = attributes(node)
    x_name, out_name = node.input[0], node.output[0]
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = [int(p) for p in (cv.need_const(node.input[1], "Pad's pads") if _operand(node, 1) else a["pads"])]
    if _operand(node, 3):
        raise TinyqError(f"node {cv.node_name!r}: Pad over chosen axes is not supported")
    value = cv.const(_operand(node, 2)) if _operand(node, 2) else None
    if value is not None and float(np.asarray(value).reshape(-1)[0]) != 0.0:
        raise TinyqError(f"node {cv.node_name!r}: Pad with a constant other than 0 is not supported")
    rank = cv.rank(x_name)
    pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
    if any(p < 0 for pair in pairs for p in pair):
        raise TinyqError(f"node {cv.node_name!r}: negative pads (cropping) are not supported")
    layout = Layout.CHANNELS_LAST if cv.values[x_name].layout == Layout.CHANNELS_LAST else Layout.PLAIN
    x = cv.channels_last(x_name) if layout == Layout.CHANNELS_LAST else cv.plain(x_name)
    ir_pairs = [(0, 0)] * len(cv.tensors[x].shape)
    for axis, pair in enumerate(pairs):
        ir_pairs[cv.ir_axis(x_name, axis, layout)] = pair
    if mode == "constant":
        attrs = Pad(tuple(ir_pairs))
    elif mode == "reflect":
        attrs = MirrorPad(tuple(ir_pairs), REFLECT)
    else:
        raise TinyqError(f"node {cv.node_name!r}: Pad mode {mode!r} is not supported (constant, reflect)")
    cv.define(out_name, cv.emit(attrs, [x], cv.ir_shape(out_name, layout), out_name), layout)


def _resize(cv: OnnxConverter, node) -> None:
    a = attributes(node)
    x_name, out_name = node.input[0], node.output[0]
    text = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in a.items()}
    mode, transform = text.get("mode", "nearest"), text.get("coordinate_transformation_mode", "half_pixel")
    in_shape, out_shape = cv.shapes[x_name], cv.shapes[out_name]
    if cv.rank(x_name) != 4 or in_shape[:2] != out_shape[:2]:
        raise TinyqError(f"node {cv.node_name!r}: Resize is supported over the two spatial axes of a 4-D input")
    if mode == "nearest":
        nearest_mode = text.get("nearest_mode", "round_prefer_floor")
        attrs = None
        for candidate in (ResizeNearestNeighbor(), ResizeNearestNeighbor(half_pixel_centers=True)):
            if all(
                np.array_equal(
                    nearest_sources(in_shape[i], out_shape[i], False, candidate.half_pixel_centers),
                    _onnx_nearest(in_shape[i], out_shape[i], transform, nearest_mode),
                )
                for i in (2, 3)
            ):
                attrs = candidate
                break
        if attrs is None:
            raise TinyqError(
                f"node {cv.node_name!r}: nearest Resize ({transform}, {nearest_mode}) from {in_shape[2:]} to "
                f"{out_shape[2:]} picks other pixels than TFLite's nearest resize"
            )
    elif mode == "linear":
        forms = {
            "half_pixel": ResizeBilinear(half_pixel_centers=True),
            "pytorch_half_pixel": ResizeBilinear(half_pixel_centers=True),
            "align_corners": ResizeBilinear(align_corners=True),
            "asymmetric": ResizeBilinear(),
        }
        if transform not in forms or (transform == "pytorch_half_pixel" and min(out_shape[2:]) <= 1):
            raise TinyqError(f"node {cv.node_name!r}: linear Resize with {transform} coordinates is not supported")
        attrs = forms[transform]
    else:
        raise TinyqError(f"node {cv.node_name!r}: Resize mode {mode!r} is not supported (nearest, linear)")
    out = cv.emit(attrs, [cv.channels_last(x_name)], channels_last_shape(out_shape), out_name)
    cv.define(out_name, out, Layout.CHANNELS_LAST)


def _onnx_nearest(in_size: int, out_size_: int, transform: str, nearest_mode: str) -> np.ndarray | None:
    scale = out_size_ / in_size
    dst = np.arange(out_size_, dtype=np.float64)
    if transform == "asymmetric":
        src = dst / scale
    elif transform in ("half_pixel", "pytorch_half_pixel"):
        src = (dst + 0.5) / scale - 0.5
    elif transform == "align_corners":
        src = dst * (in_size - 1) / max(out_size_ - 1, 1)
    else:
        return None
    rounders = {
        "floor": np.floor,
        "ceil": np.ceil,
        "round_prefer_floor": lambda v: np.where(v - np.floor(v) == 0.5, np.floor(v), np.round(v)),
        "round_prefer_ceil": lambda v: np.where(v - np.floor(v) == 0.5, np.ceil(v), np.round(v)),
    }
    return np.clip(rounders[nearest_mode](src), 0, in_size - 1).astype(np.int64)


def _reduce(attrs_class):
    def convert(cv: OnnxConverter, node) -> None:
        a = attributes(node)
        x_name, out_name = node.input[0], node.output[0]
        rank = cv.rank(x_name)
        axes = cv.need_const(node.input[1], f"{node.op_type}'s axes") if _operand(node, 1) else a.get("axes")
        axes = sorted({int(v) % rank for v in (range(rank) if axes is None else axes)})
        keep = bool(a.get("keepdims", 1))
        value = cv.values[x_name]
        if value.layout == Layout.CHANNELS_LAST and not keep and rank == 4 and axes == [2, 3]:  # to (N, C)
            x, layout, ir_axes = value.tensor, Layout.PLAIN, (1, 2)
        else:
            layout = Layout.CHANNELS_LAST if value.layout == Layout.CHANNELS_LAST and keep else Layout.PLAIN
            x = cv.channels_last(x_name) if layout == Layout.CHANNELS_LAST else cv.plain(x_name)
            ir_axes = tuple(sorted(cv.ir_axis(x_name, ax, layout) for ax in axes))
        out = cv.emit(attrs_class(ir_axes, keep), [x], cv.ir_shape(out_name, layout), out_name)
        cv.define(out_name, out, layout)

    return convert


def _gather(cv: OnnxConverter, node) -> None:
    """Gather of constant indices that pick one position or a contiguous run along an axis
    (`y[:, -1]`): a SLICE (and a RESHAPE dropping the axis for a scalar index)."""
    x_name, out_name = node.input[0], node.output[0]
    indices = np.asarray(cv.need_const(node.input[1], "Gather's indices")).astype(np.int64)
    shape = cv.shapes[x_name]
    axis = int(attributes(node).get("axis", 0)) % len(shape)
    picked = indices.reshape(-1) % shape[axis]
    if picked.size == 0 or np.any(np.diff(picked) != 1):
        raise TinyqError(f"node {cv.node_name!r}: Gather is supported for one index or a contiguous run of them")
    x = cv.plain(x_name)
    begin = [0] * len(shape)
    begin[axis] = int(picked[0])
    size = list(shape)
    size[axis] = picked.size
    out = cv.emit(Slice(tuple(begin), tuple(size)), [x], size, op_name=f"{cv.node_name}_slice")
    if tuple(size) != tuple(cv.shapes[out_name]):
        out = cv.emit(Reshape(), [out], cv.shapes[out_name], out_name)
    cv.define(out_name, out)


def _recurrent_checks(cv: OnnxConverter, node, a: dict, initial_states) -> tuple[int, int, int]:
    """(time steps, batch, hidden) of an ONNX LSTM or GRU tinyq runs: forward, the default
    activations, no clip, time-major X, zero initial states, every sequence full length."""
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    what = f"node {cv.node_name!r} ({node.op_type})"
    if direction != "forward":
        raise TinyqError(f"{what}: direction {direction!r} is not supported (forward)")
    if a.get("activations") or a.get("clip") or a.get("layout", 0) or a.get("input_forget", 0):
        raise TinyqError(f"{what}: custom activations, clip, layout 1 or input_forget are not supported")
    steps, batch, _ = cv.shapes[node.input[0]]
    lengths = _operand(node, 4)
    if lengths and not np.all(cv.need_const(lengths, "sequence_lens") == steps):
        raise TinyqError(f"{what}: sequences shorter than {steps} steps (sequence_lens) are not supported")
    for index in initial_states:
        name = _operand(node, index)
        if name and (cv.const(name) is None or np.any(cv.const(name) != 0)):
            raise TinyqError(f"{what}: an initial state other than zeros is not supported")
    return steps, batch, int(a["hidden_size"])


def _sequence_outputs(cv: OnnxConverter, node, y: str, steps: int, batch: int, hidden: int) -> None:
    """Y [steps, 1, batch, hidden] and Y_h [1, batch, hidden] (the last step) from the IR
    sequence output (batch, steps, hidden), or (steps, batch, hidden) when time-major."""
    names = list(node.output) + ["", "", ""]
    if names[0]:
        cv.define(names[0], cv.emit(Reshape(), [y], (steps, 1, batch, hidden), names[0]))
    if names[1]:
        time_major = cv.tensors[y].shape[0] == steps and batch > 1
        begin, size = ((steps - 1, 0, 0), (1, batch, hidden)) if time_major else ((0, steps - 1, 0), (1, 1, hidden))
        last = cv.emit(Slice(begin, size), [y], size, op_name=f"{cv.node_name}_last_step")
        cv.define(names[1], cv.emit(Reshape(), [last], (1, batch, hidden), names[1]))
    if names[2] and cv.uses.get(names[2], 0):
        raise TinyqError(f"node {cv.node_name!r}: the cell state output Y_c is not supported")


def _gate_rows(cv: OnnxConverter, node, matrix: np.ndarray, order, what: str) -> list[str]:
    rows = np.split(matrix.astype(np.float32), len(order))
    return [cv.constant(f"{cv.node_name}/{what}_{gate}", rows[i]) for gate, i in order]


def _lstm(cv: OnnxConverter, node) -> None:
    """UNIDIRECTIONAL_SEQUENCE_LSTM: ONNX's gate blocks (i, o, f, c) in TFLite's order (i, f, c,
    o), the input and recurrent biases summed."""
    a = attributes(node)
    steps, batch, hidden = _recurrent_checks(cv, node, a, (5, 6))
    if _operand(node, 7):
        raise TinyqError(f"node {cv.node_name!r}: peephole LSTM weights (P) are not supported")
    order = (("input", 0), ("forget", 2), ("cell", 3), ("output", 1))
    w = cv.need_const(node.input[1], "W")[0]
    r = cv.need_const(node.input[2], "R")[0]
    b = cv.need_const(node.input[3], "B")[0] if _operand(node, 3) else np.zeros(8 * hidden, np.float32)
    operands = _gate_rows(cv, node, w, order, "input_weights") + _gate_rows(cv, node, r, order, "recurrent_weights")
    operands += _gate_rows(cv, node, b[: 4 * hidden] + b[4 * hidden :], order, "bias")
    x = cv.plain(node.input[0])
    features = cv.shapes[node.input[0]][2]
    time_major = batch > 1
    if not time_major:  # (steps, 1, features) and (1, steps, features) hold the same values
        x = cv.emit(Reshape(), [x], (1, steps, features), op_name=f"{cv.node_name}_batch_major")
    shape = (steps, batch, hidden) if time_major else (1, steps, hidden)
    y, _ = cv.emit_outputs(
        UnidirectionalSequenceLstm(time_major=time_major), [x, *operands], [shape, shape], [None, None]
    )
    _sequence_outputs(cv, node, y, steps, batch, hidden)


def _gru(cv: OnnxConverter, node) -> None:
    """TINYQ_GRU: ONNX's gate blocks (z, r, h) are Keras's (update, reset, candidate);
    linear_before_reset 1 (PyTorch's GRU) is Keras's reset_after."""
    a = attributes(node)
    steps, batch, hidden = _recurrent_checks(cv, node, a, (5,))
    if batch != 1:
        raise TinyqError(f"node {cv.node_name!r}: GRU over a batch of {batch} is not supported (batch 1)")
    order = (("update", 0), ("reset", 1), ("candidate", 2))
    w = cv.need_const(node.input[1], "W")[0]
    r = cv.need_const(node.input[2], "R")[0]
    b = cv.need_const(node.input[3], "B")[0] if _operand(node, 3) else np.zeros(6 * hidden, np.float32)
    operands = _gate_rows(cv, node, w, order, "input_weights") + _gate_rows(cv, node, r, order, "recurrent_weights")
    operands += _gate_rows(cv, node, b[: 3 * hidden], order, "bias")
    operands += _gate_rows(cv, node, b[3 * hidden :], order, "recurrent_bias")
    features = cv.shapes[node.input[0]][2]
    x = cv.emit(Reshape(), [cv.plain(node.input[0])], (1, steps, features), op_name=f"{cv.node_name}_batch_major")
    y = cv.emit(Gru(bool(a.get("linear_before_reset", 0))), [x, *operands], (1, steps, hidden))
    _sequence_outputs(cv, node, y, steps, batch, hidden)


def _record_weight_scales(cv: OnnxConverter, node) -> None:
    """DequantizeLinear of constant int8 values (weights): their scales, one per output channel
    (the axis ONNX quantizes them on is the output channel's in every weighted operator) or one."""
    values = cv.const(node.input[0])
    if values.dtype not in (np.int8, np.uint8):
        return  # an int32 bias: tinyq recomputes it from the input and weight scales
    zero = cv.const(_operand(node, 2)) if _operand(node, 2) else np.zeros(1, values.dtype)
    scales = np.asarray(cv.need_const(node.input[1], "the scale"), np.float32).reshape(-1)
    refusal = None  # a constant ADD operand may be asymmetric: only weights must be symmetric int8
    if values.dtype == np.uint8 or np.any(zero != 0):
        refusal = (
            f"weights {node.input[0]!r} are quantized {values.dtype.name} with zero point "
            f"{np.asarray(zero).reshape(-1)[0]}: TFLite Micro's int8 kernels take symmetric int8 weights "
            "(quantize with weight_type=QInt8, symmetric weights)"
        )
    cv.dequantized[node.output[0]] = (scales, refusal)


def _quantize_linear(cv: OnnxConverter, node) -> None:
    """An activation's int8 quantization (uint8 shifted by 128: the same values); the value
    itself passes on (the ops between Q and DQ are int8 in the deployment)."""
    scale = np.asarray(cv.need_const(node.input[1], "the scale")).reshape(-1)
    zero = cv.const(_operand(node, 2)) if _operand(node, 2) else np.zeros(1, np.uint8)
    zero = np.asarray(zero)
    if scale.size != 1:
        raise TinyqError(f"node {cv.node_name!r}: per-axis quantization of an activation is not supported")
    if zero.dtype not in (np.int8, np.uint8):
        raise TinyqError(
            f"node {cv.node_name!r}: activations quantized to {zero.dtype.name}; tinyq deploys int8 (and uint8) QDQ"
        )
    zp = int(zero.reshape(-1)[0]) - (128 if zero.dtype == np.uint8 else 0)
    value = cv.values[node.input[0]]
    cv.activation_qparams[value.tensor] = ir.QParams.per_tensor(float(scale[0]), zp)
    cv.values[node.output[0]] = value


NODES = {
    "Add": _binary(Add),
    "AveragePool": _pool(AveragePool2D),
    "BatchNormalization": _batch_normalization,
    "Clip": _clip,
    "Concat": _concat,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Div": _div,
    "DequantizeLinear": _alias,
    "Dropout": _alias,
    "Elu": _elu,
    "Flatten": _reshaped,
    "GRU": _gru,
    "Gemm": _gemm,
    "Gather": _gather,
    "GlobalAveragePool": _global_pool(AveragePool2D),
    "GlobalMaxPool": _global_pool(MaxPool2D),
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _unary(HardSwish),
    "Identity": _alias,
    "LSTM": _lstm,
    "LeakyRelu": _leaky_relu,
    "MatMul": _matmul,
    "MaxPool": _pool(MaxPool2D),
    "Mul": _binary(Mul),
    "PRelu": _prelu,
    "QuantizeLinear": _quantize_linear,
    "Pad": _pad,
    "ReduceMax": _reduce(ReduceMax),
    "ReduceMean": _reduce(Mean),
    "ReduceMin": _reduce(ReduceMin),
    "ReduceSum": _reduce(Sum),
    "Relu": _relu,
    "Reshape": _reshaped,
    "Resize": _resize,
    "Sigmoid": _unary(Logistic),
    "Softmax": _softmax,
    "Squeeze": _reshaped,
    "Sub": _binary(Sub),
    "Tanh": _unary(Tanh),
    "Transpose": _transpose,
    "Unsqueeze": _reshaped,
}
