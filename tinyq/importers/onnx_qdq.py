"""A quantized ONNX model (QDQ: QuantizeLinear/DequantizeLinear around float operators, as
onnxruntime's static quantization writes it) deployed as it is, like an int8 `.tflite`.

The model is imported as float (the weights dequantized), then converted to tinyq's int8 IR
with the file's quantization instead of calibrated ranges: each weighted layer keeps the
file's int8 weights and their scales (per tensor or per output channel), each activation
the scale and zero point of its QuantizeLinear (uint8 ones shifted by 128: the same values
in int8), and the biases are requantized at input scale x weight scale, as the file's int32
biases are. Where TFLite Micro's arithmetic constrains a tensor (a pooling or reshape output
shares its input's quantization; SOFTMAX and LOGISTIC outputs are fixed) the constraint wins,
as for tinyq's own quantization. What TFLM's int8 kernels cannot take is refused, naming the
tensor: asymmetric or uint8 weights, per-axis activation quantization, other integer types,
weights changed after their DequantizeLinear (a BatchNormalization not folded first).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tinyq import ir
from tinyq.errors import TinyqError
from tinyq.importers.onnx import int8_range
from tinyq.ops.add import Add
from tinyq.ops.affine import weight_axis
from tinyq.ops.concatenation import Concatenation
from tinyq.ops.conv import Conv2D
from tinyq.ops.depthwise_conv import DepthwiseConv2D
from tinyq.ops.fully_connected import FullyConnected
from tinyq.ops.mean import Mean
from tinyq.ops.reduce import ReduceMax, ReduceMin
from tinyq.ops.transpose_conv import TransposeConv2D
from tinyq.quant.config import parse_config
from tinyq.quant.convert import WeightQuant, activation_groups, given_activation_quant, to_int8
from tinyq.quant.ranges import activation_params

WEIGHTED = (Conv2D, DepthwiseConv2D, FullyConnected, TransposeConv2D)
WITHIN_INPUT_RANGE = (Mean, ReduceMax, ReduceMin, Concatenation)
RELU_FOLDS_INTO = (Conv2D, DepthwiseConv2D, FullyConnected, Add)  # as onnxruntime folds it; TFLM fuses it there
INTEGER_TOLERANCE = 1e-3  # weights / scale this close to an integer are the file's integers


def file_weights(op: ir.Op, graph: ir.Graph, scales: np.ndarray) -> WeightQuant:
    """The file's integer weights of `op`, recovered from its dequantized weights."""
    w = graph[op.inputs[1]].data.astype(np.float64)
    axis = weight_axis(op)
    if scales.size not in (1, w.shape[axis]):
        raise TinyqError(f"{op.name!r}: {scales.size} weight scales for {w.shape[axis]} output channels")
    shape = [1] * w.ndim
    shape[axis] = -1
    exact = w / (scales.astype(np.float64).reshape(shape) if scales.size > 1 else float(scales[0]))
    values = np.round(exact)
    if (
        np.abs(exact - values).max(initial=0) > INTEGER_TOLERANCE
        or not -128 <= values.min(initial=0) <= values.max(initial=0) <= 127
    ):
        raise TinyqError(
            f"{op.name!r}: its weights are no longer the file's int8 values times their scales (a BatchNormalization "
            "or a Gemm alpha applied after DequantizeLinear): fold them before quantizing (onnxruntime's "
            "quant_pre_process)"
        )
    per_channel_axis = axis if scales.size > 1 else None
    return WeightQuant(values.astype(np.int8), scales.astype(np.float32), per_channel_axis)


def with_folded_relus(graph: ir.Graph, activation_qparams: dict) -> ir.Graph:
    """onnxruntime folds a Relu into the range of the QuantizeLinear after a Conv, Gemm or Add
    (zero point -128: the int8 clamp is the ReLU). Where tinyq's constraints give that output
    another quantization (a CONCATENATION's), the clamp would go with it: make it the op's
    fused RELU."""
    ops = []
    for op in graph.ops:
        q = activation_qparams.get(op.outputs[0])
        folded = q is not None and q.zp == -128 and isinstance(op.attrs, RELU_FOLDS_INTO)
        folded = folded and op.attrs.activation == ir.Activation.NONE
        ops.append(replace(op, attrs=replace(op.attrs, activation=ir.Activation.RELU)) if folded else op)
    return graph.replace(ops=tuple(ops))


def _covering(sources: list[ir.QParams]) -> ir.QParams:
    """One input's quantization, or the one covering all inputs' ranges."""
    if all(q == sources[0] for q in sources):
        return sources[0]
    ranges = [int8_range(q) for q in sources]
    return ir.QParams.per_tensor(*activation_params(min(r[0] for r in ranges), max(r[1] for r in ranges)))


def qdq_weights(graph: ir.Graph, weight_scales: dict) -> dict[str, WeightQuant]:
    weights = {}
    for op in graph.ops:
        if not isinstance(op.attrs, WEIGHTED):
            continue
        scales = weight_scales.get(op.inputs[1])
        if scales is None:
            raise TinyqError(f"{op.name!r} ({op.kind}) has float weights in the QDQ model; tinyq deploys it as it is")
        weights[op.name] = file_weights(op, graph, scales)
    return weights


def deployed(
    graph: ir.Graph,
    activation_qparams: dict,
    implied_ranges: dict,
    weights: dict,
    source: str,
    weight_bits: int = 8,
    ranges_of=None,
    hint: str = "tinyq deploys models quantized throughout",
) -> ir.Graph:
    """The int8 graph with given weights and activation quantization (a QDQ file's, AIMET's).
    `implied_ranges`: the float ranges of the inner tensors of a node tinyq runs as several ops
    (HardSigmoid's relu6(x + 3)), which the source cannot quantize. `ranges_of(tensors)`, if
    given, measures the float ranges of tensors the source leaves unquantized (else refused)."""
    given = {t: ir.QParams.per_tensor(*activation_params(*r)) for t, r in implied_ranges.items()} | activation_qparams
    missing = _unquantized(graph, given)
    if missing and ranges_of is None:
        op, out = missing[0]
        raise TinyqError(f"{source} leaves {op.kind} {op.name!r} float (no quantization of its output {out!r}); {hint}")
    if missing:
        measured = ranges_of([out for _, out in missing])
        given |= {t: ir.QParams.per_tensor(*activation_params(lo, hi)) for t, (lo, hi) in measured.items()}
        _unquantized(graph, given)
    quant = given_activation_quant(graph, given, source)
    return to_int8(graph, quant, parse_config("minmax", f"w{weight_bits}a8"), weights)


def _unquantized(graph: ir.Graph, given: dict) -> list[tuple[ir.Op, str]]:
    """The (op, output) pairs without quantization that cannot take one from the op's inputs
    (which `given` gains where it can: a mean, extremum or concatenation stays within its
    inputs' range)."""
    groups, missing = activation_groups(graph), []
    for op in graph.ops:  # a reshape (pooling...) quantized after but not before: its input shares it
        source = groups.get(op.inputs[0]) if op.inputs else None
        if groups.get(op.outputs[0]) == source and source not in given and op.outputs[0] in given:
            given[source] = given[op.outputs[0]]
    for op in graph.ops:
        for out in op.outputs:
            if groups[out] != out or out in given:
                continue
            sources = [given.get(n) or given.get(groups.get(n)) for n in op.inputs if not graph[n].is_constant]
            if isinstance(op.attrs, WITHIN_INPUT_RANGE) and sources and None not in sources:
                given[out] = _covering(sources)
            else:
                missing.append((op, out))
    return missing
