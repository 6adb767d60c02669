"""Bias correction (Nagel et al. 2019): quantization shifts the mean of each
layer's outputs; subtracting the shift from the bias removes that error.

Empirical (with calibration data): layer by layer, on the inputs the
quantized model gives the layer, either the shift the weight quantization
causes, E[(W_q - W) x], or the layer's whole mean shift against the float
model (activation clipping included). Which helps depends on the model (a
bias applies to every sample, clipping hits a few), so quantize() keeps the
variant — or none — with the smallest output error on held-out calibration
samples. Analytic (data-free): the
weight error's shift (W_q - W) E[x], with E[x] from the BatchNorm statistics
of the layer that produced the input, a Gaussian N(beta, gamma^2) through
its ReLU or ReLU6.
"""

from __future__ import annotations

import math

import numpy as np

from tinyq import ir
from tinyq.ops.affine import is_affine
from tinyq.ops.conv import Conv2D
from tinyq.ops.depthwise_conv import DepthwiseConv2D
from tinyq.quant.convert import ActivationQuant, WeightQuant
from tinyq.quant.layerwise import Layerwise, dequantized
from tinyq.sim import layer_fn
from tinyq.tf import tensorflow


def _phi(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def clipped_gaussian_mean(mu: np.ndarray, sigma: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """E[clip(z, lo, hi)] for z ~ N(mu, sigma^2), elementwise (lo/hi may be infinite)."""
    sigma = np.maximum(sigma, 1e-12)
    a = (lo - mu) / sigma if np.isfinite(lo) else np.full_like(mu, -np.inf)
    b = (hi - mu) / sigma if np.isfinite(hi) else np.full_like(mu, np.inf)
    pa = np.where(np.isfinite(a), _phi(np.where(np.isfinite(a), a, 0)), 0.0)
    pb = np.where(np.isfinite(b), _phi(np.where(np.isfinite(b), b, 0)), 0.0)
    ca = np.where(np.isfinite(a), _cdf(np.where(np.isfinite(a), a, 0)), 0.0)
    cb = np.where(np.isfinite(b), _cdf(np.where(np.isfinite(b), b, 0)), 1.0)
    inside = mu * (cb - ca) + sigma * (pa - pb)
    return inside + (lo * ca if np.isfinite(lo) else 0.0) + (hi * (1 - cb) if np.isfinite(hi) else 0.0)


def corrected_biases_empirical(
    graph: ir.Graph,
    x: np.ndarray,
    weights: dict[str, WeightQuant],
    activation_quant: ActivationQuant,
    *,
    total_shift: bool,
    samples: int = 512,
) -> list[ir.Tensor]:
    """Layer by layer, on the inputs the quantized model gives each layer: the mean shift of
    its pre-activations caused by the weight quantization (E[(W_q - W) x]), or, with
    `total_shift`, the whole shift against the float model (activation clipping included)."""
    tf = tensorflow()
    sim = Layerwise(graph, x[:samples], activation_quant)
    tensors = []
    for op in graph.ops:
        if op.name not in weights:
            continue
        fn = layer_fn(tf, op, graph, activation=False)
        w_float = tf.constant(graph[op.inputs[1]].data.astype(np.float32))
        w_quant = dequantized(weights[op.name])
        x_quant = tf.constant(sim.quantized(op.inputs[0]))
        x_float = tf.constant(sim.floats(op.inputs[0])) if total_shift else x_quant
        y_quant, y_float = fn(x_quant, tf.constant(w_quant)).numpy(), fn(x_float, w_float).numpy()
        shift = y_quant.reshape(-1, y_quant.shape[-1]).mean(axis=0) - y_float.reshape(-1, y_float.shape[-1]).mean(
            axis=0
        )
        b = graph[op.inputs[2]]
        corrected = (b.data - shift).astype(np.float32)
        tensors.append(ir.Tensor(b.name, b.shape, "float32", None, corrected))
        sim.fix(op.inputs[1], w_quant)
        sim.fix(b.name, corrected)
    return tensors


def input_means_analytic(graph: ir.Graph, bn_stats: dict) -> dict[str, np.ndarray]:
    """E[input] of affine ops whose input comes straight from a BatchNorm-followed layer."""
    producers = graph.producers()
    means = {}
    for op in graph.ops:
        if not is_affine(op):
            continue
        name = op.inputs[0]
        source = producers.get(name)
        if name not in bn_stats or source is None:
            continue
        beta, gamma = (np.asarray(v, np.float64) for v in bn_stats[name])
        lo, hi = getattr(source.attrs, "activation", ir.Activation.NONE).float_range()
        means[name] = clipped_gaussian_mean(beta, gamma, lo, hi)
    return means


def bias_shift(op: ir.Op, w: np.ndarray, w_quant: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """E[(W_q - W) x] per output channel, for an input with per-channel mean `mean`."""
    error = w_quant.astype(np.float64) - w.astype(np.float64)
    if isinstance(op.attrs, Conv2D):
        return np.einsum("ohwi,i->o", error, mean)
    if isinstance(op.attrs, DepthwiseConv2D):
        return error.sum(axis=(0, 1, 2)) * np.repeat(mean, error.shape[3] // len(mean))
    return error @ mean
