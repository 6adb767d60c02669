"""TensorFlow execution of an IR graph: float runs for calibration, and the
fake-quant forward pass for QAT and AdaRound.

`forward(graph, inputs)` maps every op to TF operations. Two hooks make it a
simulator: `weight(name, value)` may replace a constant (fake-quantized or
learnable weights) and `activation(name, value)` may transform an op's
output (fake-quantize it). Integer truth stays with the numpy reference;
this is the differentiable, batched float twin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from tinyq import ir, ops
from tinyq.errors import TinyqError
from tinyq.ops.common import activate
from tinyq.tf import tensorflow as _tf


def forward(
    graph: ir.Graph,
    inputs: dict,
    *,
    weight: Callable | None = None,
    activation: Callable | None = None,
    keep: set[str] | None = None,
) -> dict:
    """Run the graph on batched TF inputs; returns {tensor: value} for `keep`
    (default: every activation tensor)."""
    tf = _tf()
    weight = weight or (lambda name, value: value)
    activation = activation or (lambda name, value: value)
    values = dict(inputs)

    def const(name):
        t = graph[name]
        return weight(name, tf.constant(t.data, dtype=tf.float32))

    for op in graph.ops:
        definition = ops.definition(op)
        if not any(sig.is_float for sig in definition.signatures):
            raise TinyqError(f"{op.name}: {op.kind} has no float simulation")
        xs = [const(n) if graph[n].is_constant else values[n] for n in op.inputs]
        for name, value in zip(op.outputs, ops.per_output(op, definition.forward(tf, op, graph, xs))):
            values[name] = activation(name, value)
    keep = set(keep) if keep is not None else {n for n in values if n in graph.tensors}
    return {n: v for n, v in values.items() if n in keep}


def layer_fn(tf, op: ir.Op, graph: ir.Graph, *, activation: bool = True):
    """One affine op as f(x, w[, bias]) on batched inputs (bias default: the graph's),
    for layer-wise optimization (AdaRound, bias correction)."""
    definition = ops.definition(op)
    default_bias = tf.constant(graph[op.inputs[2]].data, tf.float32)
    act = op.attrs.activation if activation else ir.Activation.NONE

    def fn(x, w, bias=None):
        return activate(tf, definition.linear(tf, op, graph, x, w) + (default_bias if bias is None else bias), act)

    return fn


def fake_quant(tf, x, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127):
    """Quantize-dequantize (forward only: no gradient trickery)."""
    q = tf.clip_by_value(tf.round(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


class FloatRunner:
    """Batched float execution of a float IR graph (a traced tf.function)."""

    def __init__(
        self,
        graph: ir.Graph,
        keep: set[str] | None = None,
        *,
        weight: Callable | None = None,
        activation: Callable | None = None,
    ):
        tf = _tf()
        self.graph = graph
        self.keep = keep
        specs = [tf.TensorSpec((None,) + graph[n].shape[1:], tf.float32) for n in graph.inputs]

        @tf.function(input_signature=specs, reduce_retracing=True)
        def run(*xs):
            if activation is not None:  # the inputs are quantized too
                xs = [activation(n, x) for n, x in zip(graph.inputs, xs)]
            return forward(graph, dict(zip(graph.inputs, xs)), weight=weight, activation=activation, keep=keep)

        self._run = run

    def batches(self, inputs: list[np.ndarray], batch_size: int = 256) -> Iterator[tuple[int, dict]]:
        """Yields (first sample index, {tensor: numpy batch}) over the samples."""
        count = len(inputs[0])
        for start in range(0, count, batch_size):
            chunk = [x[start : start + batch_size].astype(np.float32) for x in inputs]
            out = self._run(*chunk)
            yield start, {k: v.numpy() for k, v in out.items()}

    def outputs(self, inputs: list[np.ndarray], batch_size: int = 256) -> list[np.ndarray]:
        results = {n: [] for n in self.graph.outputs}
        for _, values in self.batches(inputs, batch_size):
            for n in self.graph.outputs:
                results[n].append(values[n])
        return [np.concatenate(results[n]) for n in self.graph.outputs]
