"""Float IR + activation ranges -> the int8 IR that deploys.

TFLite's constraints are honoured so the result runs on TFLite Micro too:
pooling, reshape and pad share their input's quantization; SOFTMAX and
LOGISTIC outputs are fixed (1/256, -128); CONCATENATION inputs share the
output's quantization: a producer that requantizes anyway (convolution,
dense, add...) adopts it, any other input gets an int8 -> int8 QUANTIZE.
Weights are symmetric (zero point 0, [-(2^(b-1)-1), 2^(b-1)-1]), biases
int32 at input scale x weight scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import ir
from tinyq.quant.config import QuantConfig
from tinyq.quant.ranges import asymmetric_params, symmetric_scales

SHARES_INPUT_QUANT = (ir.AveragePool2D, ir.MaxPool2D, ir.Reshape, ir.Pad)
FIXED_OUTPUT = (ir.Softmax, ir.Logistic)
REQUANTIZES = (ir.Conv2D, ir.DepthwiseConv2D, ir.FullyConnected, ir.Add, ir.Mul, ir.Concatenation, ir.Mean,
               ir.Quantize)
SOFTMAX_QUANT = ir.QParams.per_tensor(1.0 / 256.0, -128)


@dataclass(frozen=True)
class WeightQuant:
    """Quantized weights of one op, before they become tensors."""
    values: np.ndarray       # integers in [-qmax, qmax]
    scales: np.ndarray       # per output channel (or one)
    axis: int | None


def weight_axis(attrs) -> int:
    return 3 if isinstance(attrs, ir.DepthwiseConv2D) else 0


def quantize_weights(op: ir.Op, graph: ir.Graph, config: QuantConfig, method: str) -> WeightQuant:
    w = graph[op.inputs[1]].data
    axis = weight_axis(op.attrs) if config.per_channel else None
    scales = symmetric_scales(w, axis, config.weight_bits, method)
    qmax = (1 << (config.weight_bits - 1)) - 1
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    values = np.clip(np.round(w / scales.reshape(shape)), -qmax, qmax).astype(np.int8)
    return WeightQuant(values, scales, axis)


def activation_groups(graph: ir.Graph) -> dict[str, str | None]:
    """Which tensor's quantization each activation tensor uses, as deployment constrains it:
    its own, another's (a pooling/reshape/pad output shares its input's; a concatenation input
    whose producer requantizes anyway takes the concatenation's), or None (SOFTMAX/LOGISTIC:
    fixed). The PTQ conversion and the QAT simulation both follow this one map."""
    groups: dict[str, str | None] = {name: name for name in graph.inputs}
    for op in graph.ops:
        out = op.outputs[0]
        if isinstance(op.attrs, SHARES_INPUT_QUANT):
            groups[out] = groups[op.inputs[0]]
        elif isinstance(op.attrs, FIXED_OUTPUT):
            groups[out] = None
        else:
            groups[out] = out
    producers, consumers = graph.producers(), graph.consumers()
    for op in graph.ops:
        if not isinstance(op.attrs, ir.Concatenation):
            continue
        for name in op.inputs:
            source = producers.get(name)
            if source is not None and isinstance(source.attrs, REQUANTIZES) and len(consumers[name]) == 1 \
                    and name not in graph.outputs:
                groups[name] = op.outputs[0]

    def final(group):      # a concatenation feeding another adopts it in turn, and so do its inputs
        while group is not None and groups[group] != group:
            group = groups[group]
        return group
    return {name: final(group) for name, group in groups.items()}


def activation_qparams(graph: ir.Graph, ranges: dict[str, tuple[float, float]]) -> dict[str, ir.QParams]:
    """Quantization of every activation tensor from its range, constraints applied; a
    concatenation's range covers its inputs' so that none of them is clipped."""
    producers = graph.producers()

    def qparams(name: str) -> ir.QParams:
        lo, hi = ranges[name]
        source = producers.get(name)
        if source is not None and isinstance(source.attrs, ir.Concatenation):
            lo = min([lo, *(ranges[n][0] for n in source.inputs)])
            hi = max([hi, *(ranges[n][1] for n in source.inputs)])
        return ir.QParams.per_tensor(*asymmetric_params(lo, hi))

    groups = activation_groups(graph)
    own = {name: qparams(name) for name, group in groups.items() if group == name}
    return {name: SOFTMAX_QUANT if group is None else own[group] for name, group in groups.items()}


def to_int8(graph: ir.Graph, q: dict[str, ir.QParams], config: QuantConfig,
            weights: dict[str, WeightQuant]) -> ir.Graph:
    """Build the int8 graph from activation quantization `q` (see activation_qparams) and
    `weights`, the quantized weights of each affine op."""
    tensors: dict[str, ir.Tensor] = {}
    for name, qp in q.items():
        tensors[name] = ir.Tensor(name, graph[name].shape, "int8", qp)
    ops: list[ir.Op] = []
    for op in graph.ops:
        if isinstance(op.attrs, (ir.Conv2D, ir.DepthwiseConv2D, ir.FullyConnected)):
            wq = weights[op.name]
            w, b = graph[op.inputs[1]], graph[op.inputs[2]]
            wparams = ir.QParams.per_channel(wq.scales, wq.axis) if wq.axis is not None \
                else ir.QParams.per_tensor(float(wq.scales[0]))
            dtype = "int4" if config.weight_bits <= 4 else "int8"     # int4 deploys packed, two per byte
            tensors[w.name] = ir.Tensor(w.name, w.shape, dtype, wparams, wq.values)
            bias_scales = (np.float64(q[op.inputs[0]].s) * wq.scales.astype(np.float64))
            bias = np.clip(np.round(b.data.astype(np.float64) / np.broadcast_to(bias_scales, b.shape)),
                           -(1 << 31), (1 << 31) - 1).astype(np.int32)
            bparams = ir.QParams.per_channel(np.broadcast_to(bias_scales, b.shape), 0) if wq.axis is not None \
                else ir.QParams.per_tensor(float(bias_scales[0]))
            tensors[b.name] = ir.Tensor(b.name, b.shape, "int32", bparams, bias)
            ops.append(op)
        elif isinstance(op.attrs, ir.Concatenation):
            inputs = []
            for name in op.inputs:
                if q[name] != q[op.outputs[0]]:
                    requantized = f"{name}/requantized_for_{op.name}"
                    tensors[requantized] = ir.Tensor(requantized, graph[name].shape, "int8", q[op.outputs[0]])
                    ops.append(ir.Op(f"{op.name}_requantize_{len(inputs)}", ir.Quantize(), (name,), (requantized,)))
                    name = requantized
                inputs.append(name)
            ops.append(ir.Op(op.name, op.attrs, tuple(inputs), op.outputs))
        else:
            for name in op.inputs:
                t = graph[name]
                if t.is_constant:   # e.g. a constant operand of ADD or MUL: quantize as an activation
                    scale, zp = asymmetric_params(float(t.data.min()), float(t.data.max()))
                    values = np.clip(np.round(t.data / scale) + zp, -128, 127).astype(np.int8)
                    tensors[name] = ir.Tensor(name, t.shape, "int8", ir.QParams.per_tensor(scale, zp), values)
            ops.append(op)
    return ir.verify(ir.Graph(graph.name, tensors, tuple(ops), graph.inputs, graph.outputs))
