"""Cross-layer equalization and high-bias absorption (Nagel et al., "Data-Free
Quantization Through Weight Equalization and Bias Correction", 2019).

For two consecutive layers A -> B with a positive-homogeneous activation in
between (ReLU or none), scaling A's output channel i by 1/s_i and B's input
channel i by s_i leaves the function unchanged. Choosing s_i = sqrt(r1_i / r2_i)
(r1: range of A's output channel, r2: range of B's input channel) equalizes
the per-channel weight ranges, which is what per-tensor quantization needs.
ReLU6 does not commute with scaling: like AIMET, CLE replaces it by ReLU in the
pairs it equalizes, and says so in the notes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tinyq import ir
from tinyq.float_model import FloatModel
from tinyq.ops.affine import is_affine, weight_axis
from tinyq.ops.conv import Conv2D
from tinyq.ops.depthwise_conv import DepthwiseConv2D

HOMOGENEOUS = (ir.Activation.NONE, ir.Activation.RELU, ir.Activation.RELU6)
ABSORB_SIGMAS = 3.0


def _in_axis(op: ir.Op) -> int:
    return 3 if isinstance(op.attrs, (Conv2D, DepthwiseConv2D)) else 1


def _per_channel(w: np.ndarray, axis: int, fn) -> np.ndarray:
    return fn(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1), axis=1)


def _in_channel_view(op: ir.Op, w: np.ndarray, channels: int) -> np.ndarray:
    """B's weights grouped by input channel: (channels, -1)."""
    if isinstance(op.attrs, DepthwiseConv2D):  # output c*M+m reads input channel c
        return np.moveaxis(w, 3, 0).reshape(channels, -1)
    return np.moveaxis(w, _in_axis(op), 0).reshape(channels, -1)


def _scale_in_channels(op: ir.Op, w: np.ndarray, s: np.ndarray) -> np.ndarray:
    if isinstance(op.attrs, DepthwiseConv2D):
        return w * np.repeat(s, w.shape[3] // len(s)).reshape(1, 1, 1, -1)
    shape = [1] * w.ndim
    shape[_in_axis(op)] = -1
    return w * s.reshape(shape)


def find_pairs(graph: ir.Graph) -> list[tuple[ir.Op, ir.Op]]:
    """(A, B): A's output feeds only B, directly, through ReLU or no activation."""
    consumers = graph.consumers()
    pairs = []
    for a in graph.ops:
        out = a.outputs[0]
        if not is_affine(a) or a.attrs.activation not in HOMOGENEOUS or out in graph.outputs:
            continue
        readers = consumers[out]
        if len(readers) == 1 and is_affine(readers[0]) and readers[0].inputs[0] == out:
            pairs.append((a, readers[0]))
    return pairs


def equalize(fm: FloatModel, *, iterations: int = 20, absorb_bias: bool = True) -> tuple[FloatModel, list[str]]:
    graph = fm.graph
    pairs = find_pairs(graph)
    weights = {op.name: graph[op.inputs[1]].data.astype(np.float64) for pair in pairs for op in pair}
    biases = {op.name: graph[op.inputs[2]].data.astype(np.float64) for pair in pairs for op in pair}
    stats = {k: (v[0].astype(np.float64), v[1].astype(np.float64)) for k, v in fm.bn_stats.items()}
    notes = []
    relu6 = [a.name for a, _ in pairs if a.attrs.activation == ir.Activation.RELU6]
    if relu6:
        notes.append(
            f"cle: replaced ReLU6 by ReLU in {len(relu6)} equalized layers (as AIMET does): "
            f"{', '.join(relu6[:5])}{' ...' if len(relu6) > 5 else ''}"
        )
    for _ in range(iterations):
        for a, b in pairs:
            channels = graph[a.outputs[0]].shape[-1]
            r1 = _per_channel(np.abs(weights[a.name]), weight_axis(a), np.max)
            r2 = np.max(np.abs(_in_channel_view(b, weights[b.name], channels)), axis=1)
            s = np.where((r1 > 0) & (r2 > 0), np.sqrt(r1 / np.where(r2 > 0, r2, 1)), 1.0)
            shape = [1] * weights[a.name].ndim
            shape[weight_axis(a)] = -1
            weights[a.name] = weights[a.name] / s.reshape(shape)
            biases[a.name] = biases[a.name] / s
            weights[b.name] = _scale_in_channels(b, weights[b.name], s)
            if a.outputs[0] in stats:
                beta, gamma = stats[a.outputs[0]]
                stats[a.outputs[0]] = (beta / s, gamma / s)
    if absorb_bias:
        absorbed = _absorb_high_biases(graph, pairs, weights, biases, stats)
        if absorbed:
            notes.append(f"cle: absorbed high biases into the next layer in {absorbed} layers")
    tensors = []
    for a_or_b in {op.name: op for pair in pairs for op in pair}.values():
        w, b = graph[a_or_b.inputs[1]], graph[a_or_b.inputs[2]]
        tensors.append(ir.Tensor(w.name, w.shape, "float32", None, weights[a_or_b.name].astype(np.float32)))
        tensors.append(ir.Tensor(b.name, b.shape, "float32", None, biases[a_or_b.name].astype(np.float32)))
    renamed = {a.name for a, _ in pairs if a.attrs.activation == ir.Activation.RELU6}
    ops = tuple(
        ir.Op(op.name, replace(op.attrs, activation=ir.Activation.RELU), op.inputs, op.outputs)
        if op.name in renamed
        else op
        for op in graph.ops
    )
    new_graph = ir.verify(graph.with_tensors(*tensors).replace(ops=ops))
    new_stats = {k: (v[0].astype(np.float32), v[1].astype(np.float32)) for k, v in stats.items()}
    return FloatModel(new_graph, new_stats, fm.keras_model), notes


def _absorb_high_biases(graph, pairs, weights, biases, stats) -> int:
    """Move c = max(0, beta - 3 gamma) of a ReLU layer's pre-activations into the next layer's bias."""
    count = 0
    for a, b in pairs:
        if a.outputs[0] not in stats or a.attrs.activation == ir.Activation.NONE:
            continue
        beta, gamma = stats[a.outputs[0]]
        c = np.maximum(0.0, beta - ABSORB_SIGMAS * gamma)
        if not np.any(c > 0):
            continue
        channels = len(c)
        biases[a.name] = biases[a.name] - c
        w = weights[b.name]
        if isinstance(b.attrs, DepthwiseConv2D):
            per_out = w.sum(axis=(0, 1, 2)) * np.repeat(c, w.shape[3] // channels)
        elif isinstance(b.attrs, Conv2D):
            per_out = np.einsum("ohwi,i->o", w, c)
        else:
            per_out = w @ c
        biases[b.name] = biases[b.name] + per_out
        stats[a.outputs[0]] = (beta - c, gamma)
        count += 1
    return count
