"""AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training
Quantization", 2020): learn, per layer, whether each weight rounds up or down.

For a layer with weights W and scales s, the soft-quantized weights are
    W~ = s * clip(floor(W / s) + h(V), -qmax, qmax),  h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)
and V minimizes the layer's output reconstruction error on cached
calibration inputs (the fused activation included; measured relative to the
output's energy, so the regularizer weight does not depend on the data's
scale) plus 0.3 x sum(1 - |2 h(V) - 1|^beta), a regularizer that anneals beta
from 20 to 2 and drives every h(V) to 0 or 1. Each layer is independent, so the cost is a few seconds per
layer on a CPU.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from tinyq import ir
from tinyq.progress import progress
from tinyq.quant.convert import ActivationQuant, WeightQuant
from tinyq.quant.layerwise import Layerwise, dequantized
from tinyq.sim import layer_fn
from tinyq.tf import tensorflow

ZETA, GAMMA = 1.1, -0.1


def _rectified_sigmoid(tf, v):
    return tf.clip_by_value(tf.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def adaround_layer(
    op: ir.Op,
    graph: ir.Graph,
    inputs: np.ndarray,
    quant: WeightQuant,
    bits: int,
    *,
    iterations: int,
    float_inputs: np.ndarray | None = None,
    batch_size: int = 32,
    weight: float = 0.3,
    seed: int = 0,
    on_step=None,
) -> WeightQuant:
    """Learn the rounding of one layer. `inputs` feed the quantized layer; the target is the
    float layer on `float_inputs` (default: the same inputs)."""
    tf = tensorflow()
    float_inputs = inputs if float_inputs is None else float_inputs
    w = graph[op.inputs[1]].data.astype(np.float32)
    qmax = (1 << (bits - 1)) - 1
    shape = [1] * w.ndim
    if quant.axis is not None:
        shape[quant.axis] = -1
    scales = quant.scales.reshape(shape).astype(np.float32)
    floor = np.floor(w / scales)
    rest = np.clip(w / scales - floor, 0.01, 0.99)
    v = tf.Variable(-np.log((ZETA - GAMMA) / (rest - GAMMA) - 1).astype(np.float32))
    floor_t, scales_t = tf.constant(floor, tf.float32), tf.constant(scales, tf.float32)
    layer = layer_fn(tf, op, graph)
    optimizer = tf.keras.optimizers.Adam(1e-2)
    w_t = tf.constant(w)
    # The regularizer weight of the paper assumes outputs of unit scale: measure the
    # reconstruction relative to the layer's output energy so any scale behaves alike.
    energy = (
        float(
            np.mean(
                [
                    np.mean(np.square(layer(tf.constant(float_inputs[i : i + 64]), w_t).numpy()))
                    for i in range(0, len(float_inputs), 64)
                ]
            )
        )
        + 1e-12
    )

    @tf.function
    def step(x, x_float, beta, reg_weight):
        target = layer(x_float, w_t)
        with tf.GradientTape() as tape:
            h = _rectified_sigmoid(tf, v)
            soft = scales_t * tf.clip_by_value(floor_t + h, -qmax, qmax)
            reconstruction = (
                tf.reduce_mean(
                    tf.reduce_sum(tf.reshape(tf.square(layer(x, soft) - target), (tf.shape(x)[0], -1)), axis=1)
                )
                / energy
            )
            regularizer = tf.reduce_sum(1.0 - tf.pow(tf.abs(2.0 * h - 1.0), beta))
            loss = reconstruction + reg_weight * regularizer
        optimizer.apply_gradients([(tape.gradient(loss, v), v)])
        return reconstruction

    rng = np.random.default_rng(seed)
    warmup = iterations // 5
    for i in range(iterations):
        pick = rng.integers(0, len(inputs), batch_size)
        progress_frac = max(0.0, (i - warmup) / max(iterations - warmup, 1))
        beta = 20.0 - 18.0 * progress_frac
        step(
            tf.constant(inputs[pick]),
            tf.constant(float_inputs[pick]),
            tf.constant(beta, tf.float32),
            tf.constant(weight if i >= warmup else 0.0),
        )
        if on_step:
            on_step()
    rounded = floor + (_rectified_sigmoid(tf, v).numpy() >= 0.5)
    return WeightQuant(np.clip(rounded, -qmax, qmax).astype(np.int8), quant.scales, quant.axis, quant.bits)


def apply_adaround(
    graph: ir.Graph,
    calib: np.ndarray,
    quants: dict[str, WeightQuant],
    bits: int,
    activation_quant: ActivationQuant,
    *,
    iterations: int = 1000,
    samples: int = 512,
    quiet: bool = False,
) -> dict[str, WeightQuant]:
    """AdaRound every affine layer in order. Each layer sees the inputs the quantized model
    gives it (earlier layers rounded, activations quantized) and reconstructs the float
    layer's output on the float inputs, as AIMET does."""
    sim = Layerwise(graph, calib[:samples], activation_quant)
    result = dict(quants)
    with progress(quiet) as bar:
        for op in [op for op in graph.ops if op.name in quants]:
            task = bar.add_task(f"adaround {op.name}", total=iterations)
            result[op.name] = adaround_layer(
                op,
                graph,
                sim.quantized_inputs(op),
                quants[op.name],
                quants[op.name].bits or bits,
                iterations=iterations,
                float_inputs=sim.float_inputs(op),
                on_step=partial(bar.advance, task),
            )
            sim.fix(op.inputs[1], dequantized(result[op.name]))
    return result


def reconstruction_error(op: ir.Op, graph: ir.Graph, inputs: np.ndarray, quant: WeightQuant) -> float:
    """Mean squared output error of a layer with quantized weights, float inputs."""
    tf = tensorflow()
    layer = layer_fn(tf, op, graph)
    x = tf.constant(inputs)
    w = tf.constant(graph[op.inputs[1]].data.astype(np.float32))
    return float(tf.reduce_mean(tf.square(layer(x, tf.constant(dequantized(quant))) - layer(x, w))))
