"""CLE, bias correction, AdaRound and int4 weights."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq import codegen, ir, ref
from tinyq.data import Dataset
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.keras import load_float_keras
from tinyq.ops.conv import Conv2D
from tinyq.quant import parse_config, quantize
from tinyq.quant.adaround import adaround_layer, apply_adaround, block_units, layer_units, reconstruction_error
from tinyq.quant.bias_correction import bias_shift, clipped_gaussian_mean
from tinyq.quant.cle import equalize, find_pairs
from tinyq.quant.convert import quantize_weights
from tinyq.sim import FloatRunner

from support import keras_models
from support.hostlib import HostModel
from support.tflm import tflm_outputs


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def chain(keras, activation, tmp_path):
    """conv -> conv -> depthwise -> pointwise, with very uneven channel ranges."""
    x = inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation=activation)(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation=activation)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation=activation)(x)
    x = keras.layers.Conv2D(5, 1)(x)
    model = keras_models.randomize(keras.Model(inputs, x), seed=3)
    rng = np.random.default_rng(4)
    for layer in model.layers[1:]:
        w = layer.get_weights()
        channels = w[0].shape[-1]
        w[0] = w[0] * rng.uniform(0.05, 20, channels)  # per-output-channel ranges 400x apart
        w[1] = w[1] * rng.uniform(0.05, 20, channels)
        layer.set_weights(w)
    model.save(tmp_path / f"chain_{activation}.keras")
    return load_float_keras(tmp_path / f"chain_{activation}.keras")


def test_cle_leaves_the_float_function_unchanged_and_equalizes(keras, tmp_path):
    fm = chain(keras, "relu", tmp_path)
    equalized, notes = equalize(fm, absorb_bias=False)
    x = np.random.default_rng(0).normal(0, 1, (32, 10, 10, 3)).astype(np.float32)
    before = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([x])[0]
    after = FloatRunner(equalized.graph, keep=set(fm.graph.outputs)).outputs([x])[0]
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())
    for a, b in find_pairs(equalized.graph):
        r1 = (
            np.abs(np.moveaxis(equalized.graph[a.inputs[1]].data, 3 if a.kind.startswith("DEPTH") else 0, 0))
            .reshape(equalized.graph[a.outputs[0]].shape[-1], -1)
            .max(axis=1)
        )
        w2 = equalized.graph[b.inputs[1]].data
        r2 = np.abs(np.moveaxis(w2, 3, 0)).reshape(w2.shape[3], -1).max(axis=1)
        np.testing.assert_allclose(r1, r2, rtol=1e-3)
    assert notes == []


def test_cle_replaces_relu6_and_says_so(keras, tmp_path):
    fm = chain(keras, "relu6", tmp_path)
    equalized, notes = equalize(fm)
    assert any("replaced ReLU6 by ReLU in 3" in n for n in notes)
    assert all(op.attrs.activation != ir.Activation.RELU6 for op in equalized.graph.ops)


@pytest.mark.parametrize("lo, hi", [(0.0, np.inf), (0.0, 6.0), (-np.inf, np.inf)])
def test_clipped_gaussian_mean_matches_sampling(lo, hi):
    rng = np.random.default_rng(0)
    mu, sigma = np.array([-1.0, 0.5, 3.0, 5.5]), np.array([1.0, 2.0, 1.5, 0.7])
    samples = np.clip(rng.normal(mu, sigma, (2_000_000, 4)), lo, hi)
    np.testing.assert_allclose(clipped_gaussian_mean(mu, sigma, lo, hi), samples.mean(axis=0), atol=5e-3)


def test_analytic_bias_correction_matches_brute_force(keras, tmp_path):
    """E[(W_q - W) x] for inputs x = ReLU(N(beta, gamma^2)) per channel, against sampling."""
    rng = np.random.default_rng(1)
    beta, gamma = rng.normal(0.5, 1, 4), rng.uniform(0.3, 2, 4)
    w = rng.normal(0, 1, (6, 3, 3, 4))
    w_quant = np.round(w * 2) / 2  # a coarse quantizer, so the shift is visible
    op = ir.Op("conv", Conv2D(), ("x", "w", "b"), ("y",))
    analytic = bias_shift(op, w, w_quant, clipped_gaussian_mean(beta, gamma, 0.0, np.inf))
    x = np.maximum(rng.normal(beta, gamma, (400_000, 3, 3, 4)), 0)  # one receptive field per sample
    brute = np.einsum("ohwi,nhwi->no", w_quant - w, x).mean(axis=0)
    np.testing.assert_allclose(analytic, brute, atol=0.01 * np.abs(brute).max() + 1e-3)


def test_adaround_reduces_reconstruction_error():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (16, 3, 3, 8)).astype(np.float32)
    tensors = {
        "x": ir.Tensor("x", (1, 8, 8, 8), "float32"),
        "w": ir.Tensor("w", w.shape, "float32", None, w),
        "b": ir.Tensor("b", (16,), "float32", None, rng.normal(0, 0.1, 16).astype(np.float32)),
        "y": ir.Tensor("y", (1, 8, 8, 16), "float32"),
    }
    op = ir.Op("conv", Conv2D(padding=ir.Padding2D(1, 1, 1, 1), activation=ir.Activation.RELU), ("x", "w", "b"), ("y",))
    graph = ir.verify(ir.Graph("g", tensors, (op,), ("x",), ("y",)))
    x = np.maximum(rng.normal(0.3, 1, (256, 8, 8, 8)), 0).astype(np.float32)
    nearest = quantize_weights(op, graph, parse_config("minmax", "w4a8"), "minmax")
    learned = adaround_layer(op, graph, x, nearest, 4, iterations=1000, seed=0)
    assert np.any(learned.values != nearest.values)
    assert reconstruction_error(op, graph, x, learned) < 0.8 * reconstruction_error(op, graph, x, nearest)


def residual_net(keras, tmp_path):
    """stem conv -> residual block (conv, conv, add) -> depthwise -> pointwise -> dense -> softmax."""
    x = inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(8, 3, padding="same")(y)
    x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(12, 1, activation="relu")(x)
    x = keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(x))
    keras_models.randomize(keras.Model(inputs, x), seed=6).save(tmp_path / "residual.keras")
    return load_float_keras(tmp_path / "residual.keras")


def test_blocks_follow_the_graphs_single_tensor_cuts(keras, tmp_path):
    """A residual block's layers learn together, a depthwise layer with the pointwise one after
    it, the last dense layer against its logits (not the softmax after it); every weighted layer
    is in exactly one unit, and a unit's ops are consecutive."""
    graph = residual_net(keras, tmp_path).graph
    weighted = {op.name for op in graph.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}
    units = block_units(graph, weighted)
    kinds = [[op.kind for op in u.ops if op.name in weighted] for u in units]
    assert kinds == [["CONV_2D", "CONV_2D", "CONV_2D"], ["DEPTHWISE_CONV_2D", "CONV_2D"], ["FULLY_CONNECTED"]]
    assert any(op.kind == "ADD" for op in units[0].ops) and units[0].inputs == graph.inputs
    assert [op.kind for op in units[-1].ops] == ["RESHAPE", "FULLY_CONNECTED"]
    assert graph.ops[-1].kind == "SOFTMAX"
    positions = [[graph.ops.index(op) for op in u.ops] for u in units]
    assert all(p == list(range(p[0], p[0] + len(p))) for p in positions)
    assert sorted(op.name for u in units for op in u.ops if op.name in weighted) == sorted(weighted)
    assert [len(u.ops) for u in layer_units(graph, weighted)] == [1] * len(weighted)


def test_block_reconstruction_beats_layerwise_adaround_on_the_blocks_output(keras, tmp_path):
    """On the residual block (fixed seed, W4 per tensor, fake-quantized activations inside),
    learning the three layers' rounding together leaves less output error than learning each
    layer alone, and both less than rounding to nearest."""
    import tensorflow as tf

    from tinyq.quant.adaround import _ste_fake_quant
    from tinyq.quant.convert import ActivationQuant
    from tinyq.quant.layerwise import Layerwise, dequantized
    from tinyq.quant.observe import observe
    from tinyq.quant.precision import uniform
    from tinyq.quant.ptq import activation_ranges
    from tinyq.sim import forward

    fm = residual_net(keras, tmp_path)
    graph, config = fm.graph, parse_config("minmax", "w4a8", per_tensor=True)
    x = np.random.default_rng(7).normal(0, 1, (256, 8, 8, 4)).astype(np.float32)
    ranges = activation_ranges(fm, graph, observe(graph, x, histograms=False, quiet=True), config, 8)
    qparams = ActivationQuant.of(graph, {8: ranges}, uniform(graph, 8))
    weighted = {op.name for op in graph.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}
    block = block_units(graph, weighted)[0]
    nearest = {op.name: quantize_weights(op, graph, config, "minmax") for op in block.ops if op.name in weighted}
    sim = Layerwise(graph, x, qparams)
    acts = {n: (q, *sim.qrange[n]) for n, q in sim.activation_quant.items()}
    x_q = [sim.quantized(n) for n in block.inputs]

    def block_error(quants):
        sub = graph.replace(ops=block.ops, inputs=block.inputs, outputs=block.outputs).pruned()
        weights = {op.inputs[1]: tf.constant(dequantized(quants[op.name])) for op in block.ops if op.name in quants}
        inner = {n: acts[n] for n in sub.tensors if n in acts and n not in block.outputs}
        out = forward(
            sub,
            dict(zip(block.inputs, map(tf.constant, x_q))),
            weight=lambda n, v: weights.get(n, v),
            activation=lambda n, v: _ste_fake_quant(tf, v, *inner[n]) if n in inner else v,
        )[block.outputs[0]].numpy()
        target = forward(sub, dict(zip(block.inputs, map(tf.constant, x_q))))[block.outputs[0]].numpy()
        return float(np.mean((out - target) ** 2))

    together = apply_adaround(graph, x, nearest, 4, qparams, iterations=600, blocks=True, quiet=True)
    alone = apply_adaround(graph, x, nearest, 4, qparams, iterations=600, quiet=True)
    errors = [block_error(q) for q in (together, alone, nearest)]
    assert errors[0] < errors[1] < errors[2]


def test_all_passes_improve_per_tensor_w4(keras, tmp_path):
    fm = chain(keras, "relu", tmp_path)
    rng = np.random.default_rng(5)
    calib, test = (Dataset(rng.normal(0, 1, (n, 10, 10, 3)).astype(np.float32)) for n in (256, 128))
    floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test.x])[0]

    def error(algo):
        result = quantize(fm, calib, parse_config(algo, "w4a8", per_tensor=True), quiet=True, adaround_iterations=200)
        out = result.graph[result.graph.outputs[0]]
        ints = ref.outputs(
            result.graph,
            [
                (
                    np.clip(
                        np.round(test.x / result.graph[result.graph.inputs[0]].qparams.s)
                        + result.graph[result.graph.inputs[0]].qparams.zp,
                        -128,
                        127,
                    ).astype(np.int8)
                )[:, None]
            ],
            batched=True,
        )[0]
        deq = (ints.astype(np.float64) - out.qparams.zp) * out.qparams.s
        return float(np.mean((deq.reshape(floats.shape) - floats) ** 2))

    assert error("mse,cle,bc,adaround") < 0.75 * error("mse")


def test_int4_weights_deploy_packed_and_bit_exact(keras, tmp_path):
    model = keras_models.build(keras, "separable_conv")
    model.save(tmp_path / "m.keras")
    fm = load_float_keras(tmp_path / "m.keras")
    calib = Dataset(np.random.default_rng(0).normal(0, 1, (128, 8, 8, 4)).astype(np.float32))
    w8 = quantize(fm, calib, parse_config("mse", "w8a8"), quiet=True).graph
    w4 = quantize(fm, calib, parse_config("mse", "w4a8"), quiet=True).graph
    assert {w4[op.inputs[1]].dtype for op in w4.ops} == {"int4"}
    c8, c4 = HostModel(w8, tmp_path / "c8"), HostModel(w4, tmp_path / "c4")
    weights8 = sum(w8[n].nbytes for op in w8.ops for n in op.inputs[1:2])
    weights4 = sum(w4[n].nbytes for op in w4.ops for n in op.inputs[1:2])
    assert weights4 == sum((w8[n].size + 1) // 2 for op in w8.ops for n in op.inputs[1:2])
    # like for like (the reference kernels' layouts; fast kernels may pad or pair int8 weights)
    portable8, portable4 = (codegen.generate(g, fast=False).weights_bytes for g in (w8, w4))
    assert portable8 - portable4 == weights8 - weights4
    assert c4.generated.weights_bytes < c8.generated.weights_bytes  # and with the fast kernels' layouts
    data = to_tflite(w4)
    rng = np.random.default_rng(1)
    for _ in range(10):
        x = rng.integers(-128, 128, (1, 8, 8, 4)).astype(np.int8)
        out = c4.run([x])[0]
        assert np.array_equal(out, ref.outputs(w4, [x])[0])
        assert np.array_equal(out, tflm_outputs(data, [x], 1)[0].reshape(out.shape))  # TFLM reads INT4 too
