"""TensorFlow execution of an IR graph: float runs for calibration, and the
fake-quant forward pass for QAT and AdaRound.

`forward(graph, inputs)` maps every op to TF operations. Two hooks make it a
simulator: `weight(name, value)` may replace a constant (fake-quantized or
learnable weights) and `activation(name, value)` may transform an op's
output (fake-quantize it). Integer truth stays with the numpy reference;
this is the differentiable, batched float twin.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from tinyq import ir
from tinyq.errors import TinyqError
from tinyq.tf import tensorflow as _tf


def _same_or_valid(op: ir.Op, x_shape, kernel, stride, dilation) -> str | None:
    from tinyq.shapes import same_padding
    p = op.attrs.padding
    if (p.top, p.bottom, p.left, p.right) == (0, 0, 0, 0):
        return "VALID"
    h = same_padding(x_shape[1], kernel[0], stride[0], dilation[0])
    w = same_padding(x_shape[2], kernel[1], stride[1], dilation[1])
    if (p.top, p.bottom, p.left, p.right) == (h[1], h[2], w[1], w[2]):
        return "SAME"
    return None


def _activate(tf, x, activation: ir.Activation):
    if activation == ir.Activation.RELU:
        return tf.nn.relu(x)
    if activation == ir.Activation.RELU6:
        return tf.nn.relu6(x)
    if activation == ir.Activation.RELU_N1_TO_1:
        return tf.clip_by_value(x, -1.0, 1.0)
    return x


def _explicit_pad(tf, x, p: ir.Padding2D):
    if (p.top, p.bottom, p.left, p.right) == (0, 0, 0, 0):
        return x
    return tf.pad(x, [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]])


def forward(graph: ir.Graph, inputs: dict, *, weight: Callable | None = None,
            activation: Callable | None = None, keep: set[str] | None = None) -> dict:
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
        a = op.attrs
        x = values[op.inputs[0]] if not graph[op.inputs[0]].is_constant else const(op.inputs[0])
        out_shape = graph[op.outputs[0]].shape
        if isinstance(a, ir.Conv2D):
            w = tf.transpose(const(op.inputs[1]), (1, 2, 3, 0))
            y = tf.nn.conv2d(_explicit_pad(tf, x, a.padding), w, (1,) + a.stride + (1,), "VALID",
                             dilations=(1,) + a.dilation + (1,)) + const(op.inputs[2])
            y = _activate(tf, y, a.activation)
        elif isinstance(a, ir.DepthwiseConv2D):
            w = const(op.inputs[1])
            _, kh, kw, cm = graph[op.inputs[1]].shape
            c = graph[op.inputs[0]].shape[3]
            w = tf.reshape(w, (kh, kw, c, cm // c))
            y = tf.nn.depthwise_conv2d(_explicit_pad(tf, x, a.padding), w, (1,) + a.stride + (1,), "VALID",
                                       dilations=a.dilation) + const(op.inputs[2])
            y = _activate(tf, y, a.activation)
        elif isinstance(a, ir.FullyConnected):
            w = const(op.inputs[1])
            depth = graph[op.inputs[1]].shape[1]
            y = tf.matmul(tf.reshape(x, (-1, depth)), w, transpose_b=True) + const(op.inputs[2])
            y = _activate(tf, tf.reshape(y, (-1,) + out_shape[1:]), a.activation)
        elif isinstance(a, (ir.Add, ir.Mul)):
            other = values[op.inputs[1]] if not graph[op.inputs[1]].is_constant else const(op.inputs[1])
            y = _activate(tf, x + other if isinstance(a, ir.Add) else x * other, a.activation)
        elif isinstance(a, (ir.AveragePool2D, ir.MaxPool2D)):
            mode = _same_or_valid(op, graph[op.inputs[0]].shape, a.filter, a.stride, (1, 1))
            if mode is None:
                raise TinyqError(f"{op.name}: pooling padding {a.padding} is neither SAME nor VALID")
            pool = tf.nn.avg_pool2d if isinstance(a, ir.AveragePool2D) else tf.nn.max_pool2d
            y = _activate(tf, pool(x, a.filter, a.stride, mode), a.activation)
        elif isinstance(a, ir.Mean):
            y = tf.reduce_mean(x, axis=list(a.axes), keepdims=a.keep_dims)
        elif isinstance(a, ir.Reshape):
            y = tf.reshape(x, (-1,) + out_shape[1:])
        elif isinstance(a, ir.Softmax):
            y = tf.nn.softmax(x * a.beta, axis=-1)
        elif isinstance(a, ir.Concatenation):
            parts = [values[n] if not graph[n].is_constant else const(n) for n in op.inputs]
            y = _activate(tf, tf.concat(parts, axis=a.axis), a.activation)
        elif isinstance(a, ir.Pad):
            y = tf.pad(x, [list(p) for p in a.paddings])
        elif isinstance(a, ir.Logistic):
            y = tf.sigmoid(x)
        else:
            raise TinyqError(f"{op.name}: {op.kind} has no float simulation")
        values[op.outputs[0]] = activation(op.outputs[0], y)
    keep = set(keep) if keep is not None else {n for n in values if n in graph.tensors}
    return {n: v for n, v in values.items() if n in keep}


def layer_fn(tf, op: ir.Op, graph: ir.Graph, *, activation: bool = True):
    """One affine op as f(x, w[, bias]) on batched inputs (bias default: the graph's),
    for layer-wise optimization (AdaRound, bias correction)."""
    a = op.attrs
    default_bias = tf.constant(graph[op.inputs[2]].data, tf.float32)
    act = a.activation if activation else ir.Activation.NONE
    if isinstance(a, ir.Conv2D):
        def core(x, w):
            return tf.nn.conv2d(_explicit_pad(tf, x, a.padding), tf.transpose(w, (1, 2, 3, 0)), (1,) + a.stride + (1,),
                                "VALID", dilations=(1,) + a.dilation + (1,))
    elif isinstance(a, ir.DepthwiseConv2D):
        _, kh, kw, cm = graph[op.inputs[1]].shape
        c = graph[op.inputs[0]].shape[3]

        def core(x, w):
            return tf.nn.depthwise_conv2d(_explicit_pad(tf, x, a.padding), tf.reshape(w, (kh, kw, c, cm // c)),
                                          (1,) + a.stride + (1,), "VALID", dilations=a.dilation)
    else:
        depth = graph[op.inputs[1]].shape[1]

        def core(x, w):
            return tf.matmul(tf.reshape(x, (-1, depth)), w, transpose_b=True)

    def fn(x, w, bias=None):
        return _activate(tf, core(x, w) + (default_bias if bias is None else bias), act)
    return fn


def fake_quant(tf, x, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127):
    """Quantize-dequantize (forward only: no gradient trickery)."""
    q = tf.clip_by_value(tf.round(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


class FloatRunner:
    """Batched float execution of a float IR graph (a traced tf.function)."""

    def __init__(self, graph: ir.Graph, keep: set[str] | None = None, *, weight: Callable | None = None,
                 activation: Callable | None = None):
        tf = _tf()
        self.graph = graph
        self.keep = keep
        specs = [tf.TensorSpec((None,) + graph[n].shape[1:], tf.float32) for n in graph.inputs]

        @tf.function(input_signature=specs, reduce_retracing=True)
        def run(*xs):
            if activation is not None:   # the inputs are quantized too
                xs = [activation(n, x) for n, x in zip(graph.inputs, xs)]
            return forward(graph, dict(zip(graph.inputs, xs)), weight=weight, activation=activation, keep=keep)

        self._run = run

    def batches(self, inputs: list[np.ndarray], batch_size: int = 256) -> Iterator[tuple[int, dict]]:
        """Yields (first sample index, {tensor: numpy batch}) over the samples."""
        count = len(inputs[0])
        for start in range(0, count, batch_size):
            chunk = [x[start:start + batch_size].astype(np.float32) for x in inputs]
            out = self._run(*chunk)
            yield start, {k: v.numpy() for k, v in out.items()}

    def outputs(self, inputs: list[np.ndarray], batch_size: int = 256) -> list[np.ndarray]:
        results = {n: [] for n in self.graph.outputs}
        for _, values in self.batches(inputs, batch_size):
            for n in self.graph.outputs:
                results[n].append(values[n])
        return [np.concatenate(results[n]) for n in self.graph.outputs]
