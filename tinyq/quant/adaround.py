"""Learnt rounding: AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training
Quantization", 2020) layer by layer, or block by block (BRECQ, Li et al. 2021), with
activation quantization dropped at random inside a block (QDrop, Wei et al. 2022).

For a layer with weights W and scales s, the soft-quantized weights are
    W~ = s * clip(floor(W / s) + h(V), -qmax, qmax),  h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)
and V minimizes the reconstruction error of a unit's output plus 0.3 x sum(1 - |2 h(V) - 1|^beta),
a regularizer that anneals beta from 20 to 2 and drives every h(V) to 0 or 1. A unit is one
layer (its fused activation included) or a block: the ops between two points of the graph where
one tensor carries everything onward (a residual block, two branches and their concatenation),
consecutive ones merged until a block holds two weighted layers (a depthwise layer starts one,
so it pairs with the pointwise layer after it). The error is measured relative to the output's
energy, so the regularizer weight does not depend on the data's scale. A unit's input is what
the quantized model gives it (earlier units rounded, activations fake-quantized), its target
the float unit on the float input, as AIMET does. Inside a block the activations are
fake-quantized with straight-through gradients; QDrop keeps each value of the block's input
and activations float with probability `drop`, so the rounding fits no one quantization noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from tinyq import ir
from tinyq.progress import progress
from tinyq.quant.convert import ActivationQuant, WeightQuant
from tinyq.quant.layerwise import Layerwise, dequantized
from tinyq.sim import forward, layer_fn
from tinyq.tf import tensorflow

ZETA, GAMMA = 1.1, -0.1
BLOCK_LAYERS = 2  # weighted layers a block gathers before it closes


@dataclass(frozen=True)
class Unit:
    """Ops whose rounding is learnt together; the activations entering and leaving them."""

    ops: tuple[ir.Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.ops[0].name if len(self.ops) == 1 else f"{self.ops[0].name}..{self.ops[-1].name}"


def _unit(graph: ir.Graph, ops: list[ir.Op]) -> Unit:
    produced = {n for op in ops for n in op.outputs}
    later = {n for op in graph.ops[graph.ops.index(ops[-1]) + 1 :] for n in op.inputs} | set(graph.outputs)
    inputs = [n for op in ops for n in op.inputs if n not in produced and not graph[n].is_constant]
    return Unit(tuple(ops), tuple(dict.fromkeys(inputs)), tuple(n for n in produced if n in later))


def layer_units(graph: ir.Graph, names: set[str]) -> list[Unit]:
    return [_unit(graph, [op]) for op in graph.ops if op.name in names]


def block_units(graph: ir.Graph, names: set[str]) -> list[Unit]:
    """Blocks of the ops between single-tensor cuts, merged as the module says; only blocks
    holding a layer in `names` are units, trimmed after their last one where that leaves one
    output."""
    last_use = {n: i for i, op in enumerate(graph.ops) for n in op.inputs}
    segments, current, live = [], [], set(graph.inputs)
    for i, op in enumerate(graph.ops):
        current.append(op)
        live = {n for n in live | set(op.outputs) if last_use.get(n, -1) > i or n in graph.outputs}
        if len(live) == 1:
            segments.append(current)
            current = []
    if current:
        segments.append(current)
    blocks, block = [], []
    for segment in segments:
        weighted = sum(op.name in names for op in block)
        starts_depthwise = segment[0].kind == "DEPTHWISE_CONV_2D" and segment[0].name in names
        if block and (weighted >= BLOCK_LAYERS or (starts_depthwise and weighted)):
            blocks.append(block)
            block = []
        block = block + segment
    blocks.append(block)
    units = []
    for b in blocks:
        if not any(op.name in names for op in b):
            continue
        # a block ends with its last weighted layer where the ops after it are a chain (the
        # graph's final softmax, say: its probabilities would be the target, not the logits)
        while b[-1].name not in names and len(_unit(graph, b[:-1]).outputs) == 1:
            b = b[:-1]
        units.append(_unit(graph, b))
    return units


def _rectified_sigmoid(tf, v):
    return tf.clip_by_value(tf.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _ste_fake_quant(tf, x, q: ir.QParams, qmin: int, qmax: int):
    """Quantize-dequantize with a straight-through gradient inside the range, zero outside."""
    lo, hi = (qmin - q.zp) * q.s, (qmax - q.zp) * q.s
    clipped = tf.clip_by_value(x, lo, hi)
    return clipped + tf.stop_gradient(tf.round(clipped / q.s) * q.s - clipped)


def reconstruct(
    unit: Unit,
    graph: ir.Graph,
    inputs: list[np.ndarray],
    quants: dict[str, WeightQuant],
    bits: int,
    *,
    iterations: int,
    float_inputs: list[np.ndarray] | None = None,
    activations: dict[str, tuple[ir.QParams, int, int]] | None = None,
    drop: float = 0.0,
    batch_size: int = 32,
    weight: float = 0.3,
    seed: int = 0,
    on_step=None,
) -> dict[str, WeightQuant]:
    """Learn the rounding of the unit's weighted layers (those in `quants`). `inputs` feed the
    quantized unit, the float unit on `float_inputs` (default: the same) is the target;
    `activations`: the unit's inner tensors' (qparams, qmin, qmax), fake-quantized."""
    tf = tensorflow()
    float_inputs = inputs if float_inputs is None else float_inputs
    sub = graph.replace(ops=unit.ops, inputs=unit.inputs, outputs=unit.outputs).pruned()
    layers = [op for op in unit.ops if op.name in quants]
    soft = {}  # weight tensor -> (V, floor, scales, qmax)
    for op in layers:
        q = quants[op.name]
        w = graph[op.inputs[1]].data.astype(np.float32)
        shape = [1] * w.ndim
        if q.axis is not None:
            shape[q.axis] = -1
        scales = q.scales.reshape(shape).astype(np.float32)
        floor = np.floor(w / scales)
        rest = np.clip(w / scales - floor, 0.01, 0.99)
        v = tf.Variable(-np.log((ZETA - GAMMA) / (rest - GAMMA) - 1).astype(np.float32))
        qmax = (1 << ((q.bits or bits) - 1)) - 1
        soft[op.inputs[1]] = (v, tf.constant(floor, tf.float32), tf.constant(scales, tf.float32), qmax)
    inner = {n: q for n, q in (activations or {}).items() if n in sub.tensors and n not in unit.outputs}
    generator = tf.random.Generator.from_seed(seed)

    def run(xs, soft_weights=None, mix=None):
        values = dict(zip(unit.inputs, xs))
        weight_hook = None if soft_weights is None else (lambda name, value: soft_weights.get(name, value))
        activation_hook = None
        if soft_weights is not None and inner:

            def activation_hook(name, value):
                if name not in inner:
                    return value
                quantized = _ste_fake_quant(tf, value, *inner[name])
                return mix(value, quantized) if mix else quantized

        out = forward(sub, values, weight=weight_hook, activation=activation_hook, keep=set(unit.outputs))
        return [out[n] for n in unit.outputs]

    def dropped(float_value, quantized):  # QDrop: each value float with probability `drop`
        return tf.where(generator.uniform(tf.shape(quantized)) < drop, float_value, quantized)

    variables = [v for v, *_ in soft.values()]
    chunks = [run([tf.constant(x[i : i + 64]) for x in float_inputs]) for i in range(0, len(float_inputs[0]), 64)]
    energy = 1e-12 + float(np.mean([np.mean([np.mean(np.square(y.numpy())) for y in ys]) for ys in chunks]))
    optimizer = tf.keras.optimizers.Adam(1e-2)

    @tf.function
    def step(xs, xs_float, beta, reg_weight):
        targets = run(xs_float)
        if drop:
            xs = [dropped(f, x) for f, x in zip(xs_float, xs)]
        with tf.GradientTape() as tape:
            hs = {name: _rectified_sigmoid(tf, v) for name, (v, *_) in soft.items()}
            soft_weights = {
                name: scales * tf.clip_by_value(floor + hs[name], -qmax, qmax)
                for name, (_, floor, scales, qmax) in soft.items()
            }
            ys = run(xs, soft_weights, dropped if drop else None)
            reconstruction = tf.add_n(
                [
                    tf.reduce_mean(tf.reduce_sum(tf.reshape(tf.square(y - t), (tf.shape(y)[0], -1)), axis=1))
                    for y, t in zip(ys, targets)
                ]
            )
            regularizer = tf.add_n([tf.reduce_sum(1.0 - tf.pow(tf.abs(2.0 * h - 1.0), beta)) for h in hs.values()])
            loss = reconstruction / energy + reg_weight * regularizer
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return reconstruction

    rng = np.random.default_rng(seed)
    warmup = iterations // 5
    for i in range(iterations):
        pick = rng.integers(0, len(inputs[0]), batch_size)
        progress_frac = max(0.0, (i - warmup) / max(iterations - warmup, 1))
        step(
            [tf.constant(x[pick]) for x in inputs],
            [tf.constant(x[pick]) for x in float_inputs],
            tf.constant(20.0 - 18.0 * progress_frac, tf.float32),
            tf.constant(weight if i >= warmup else 0.0),
        )
        if on_step:
            on_step()
    result = {}
    for op in layers:
        v, floor, _, qmax = soft[op.inputs[1]]
        rounded = floor.numpy() + (_rectified_sigmoid(tf, v).numpy() >= 0.5)
        q = quants[op.name]
        result[op.name] = WeightQuant(np.clip(rounded, -qmax, qmax).astype(np.int8), q.scales, q.axis, q.bits)
    return result


def adaround_layer(op: ir.Op, graph: ir.Graph, inputs: np.ndarray, quant: WeightQuant, bits: int, **options):
    """Learn the rounding of one layer (reconstruct's options; `float_inputs` one array)."""
    float_inputs = options.pop("float_inputs", None)
    unit = _unit(graph, [op])
    floats = None if float_inputs is None else [float_inputs]
    return reconstruct(unit, graph, [inputs], {op.name: quant}, bits, float_inputs=floats, **options)[op.name]


def apply_adaround(
    graph: ir.Graph,
    calib: np.ndarray,
    quants: dict[str, WeightQuant],
    bits: int,
    activation_quant: ActivationQuant,
    *,
    iterations: int = 1000,
    samples: int = 512,
    blocks: bool = False,
    drop: float = 0.0,
    quiet: bool = False,
) -> dict[str, WeightQuant]:
    """Learn the rounding of every affine layer, unit by unit in order (`blocks`: BRECQ's
    blocks, `drop`: QDrop's probability; else AdaRound's layers)."""
    sim = Layerwise(graph, calib[:samples], activation_quant)
    units = (block_units if blocks else layer_units)(graph, set(quants))
    activations = {n: (q, *sim.qrange[n]) for n, q in sim.activation_quant.items() if n in sim.qrange}
    label = ("qdrop" if drop else "brecq") if blocks else "adaround"
    result = dict(quants)
    with progress(quiet) as bar:
        for unit in units:
            task = bar.add_task(f"{label} {unit.name}", total=iterations)
            learnt = reconstruct(
                unit,
                graph,
                [sim.quantized(n) for n in unit.inputs],
                {op.name: quants[op.name] for op in unit.ops if op.name in quants},
                bits,
                iterations=iterations,
                float_inputs=[sim.floats(n) for n in unit.inputs],
                activations=activations,
                drop=drop,
                on_step=partial(bar.advance, task),
            )
            result.update(learnt)
            for op in unit.ops:
                if op.name in learnt:
                    sim.fix(op.inputs[1], dequantized(learnt[op.name]))
    return result


def reconstruction_error(op: ir.Op, graph: ir.Graph, inputs: np.ndarray, quant: WeightQuant) -> float:
    """Mean squared output error of a layer with quantized weights, float inputs."""
    tf = tensorflow()
    layer = layer_fn(tf, op, graph)
    x = tf.constant(inputs)
    w = tf.constant(graph[op.inputs[1]].data.astype(np.float32))
    return float(tf.reduce_mean(tf.square(layer(x, tf.constant(dequantized(quant))) - layer(x, w))))
