"""Quantization-aware training: STE and LSQ gradients, and a simulation that is the deployment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyq import qat, ref
from tinyq.data import quantize_input
from tinyq.importers.keras import float_model_from_keras, load_float_keras
from tinyq.importers.tflite import parse_tflite
from tinyq.qat.model import fake_quant_activations, fake_quant_weights
from tinyq.tf import tensorflow

from support import keras_models
from support.cli import tinyq
from support.hostlib import HostModel
from support.inputs import random_inputs


@pytest.fixture(scope="module")
def tf():
    return tensorflow()


def test_ste_gradient_is_identity_inside_the_range_and_zero_outside(tf):
    scale, zp = 0.1, -20.0  # codes -128..127 cover [-10.8, 14.7]
    x = tf.constant(np.linspace(-13, 17, 301), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fake_quant_activations(tf, x, tf.constant(scale), tf.constant(zp))
    grad = tape.gradient(y, x).numpy()
    codes = np.sign(x.numpy() / scale) * np.floor(np.abs(x.numpy() / scale) + 0.5) + zp  # before clipping
    inside = (codes >= -128) & (codes <= 127)
    assert inside.sum() > 200 and (~inside).sum() > 40
    assert np.all(grad[inside] == 1.0) and np.all(grad[~inside] == 0.0)
    w = tf.constant(np.linspace(-2, 2, 101), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(w)
        v = fake_quant_weights(tf, w, tf.constant(0.1), 7)  # 4 bits: [-0.7, 0.7]
    grad = tape.gradient(v, w).numpy()
    codes = np.round(w.numpy() / 0.1)
    assert np.all(grad[np.abs(codes) <= 7] == 1.0) and np.all(grad[np.abs(codes) > 7] == 0.0)


@pytest.mark.parametrize("x", [0.33, 0.27, -0.41, 12.5, -11.9, 5.07])
def test_lsq_step_gradient_matches_finite_differences(tf, x):
    """d x_hat / d s with rounding's offset frozen (the STE surrogate), three ways: autodiff,
    a central difference, and LSQ's closed form."""
    s0, zp, qmin, qmax = 0.1, -20.0, -128.0, 127.0
    scale = tf.Variable(s0)
    with tf.GradientTape() as tape:
        y = fake_quant_activations(tf, tf.constant(x), scale, tf.constant(zp))
    autodiff = float(tape.gradient(y, scale))
    rounded = np.sign(x / s0) * np.floor(abs(x / s0) + 0.5)  # activations round half away from zero
    delta = rounded - x / s0  # the rounding offset, frozen

    def surrogate(s):
        return s * (np.clip(x / s + delta + zp, qmin, qmax) - zp)

    eps = 1e-6
    finite = (surrogate(s0 + eps) - surrogate(s0 - eps)) / (2 * eps)
    q = x / s0 + zp
    closed = (qmin - zp) if q < qmin else (qmax - zp) if q > qmax else delta
    assert autodiff == pytest.approx(finite, abs=1e-3) and autodiff == pytest.approx(closed, abs=1e-4)


@pytest.mark.parametrize(
    "name, bits, per_channel",
    [
        ("conv_bn_relu6", "w8a8", True),
        ("add_relu", "w8a8", True),
        ("concatenate", "w8a8", True),
        ("nested_concatenate", "w8a8", True),
        ("global_average_pooling", "w4a8", True),
        ("separable_conv", "w4a8", False),
        ("avgpool_same", "w8a8", True),
        ("dense_softmax", "w3a8", True),
        # 16x8: int64-accumulator requantization, ADD's 15-bit headroom, int16 average pooling
        # and TFLM's int16 SOFTMAX tables, all exact
        ("conv_bn_relu6", "w8a16", True),
        ("add_relu", "w8a16", True),
        ("separable_conv", "w8a16", False),
        ("avgpool_same", "w8a16", True),
        ("dense_softmax", "w8a16", True),
    ],
)
def test_convert_preserves_the_simulated_outputs(name, bits, per_channel, tmp_path):
    import keras

    keras_models.build(keras, name).save(tmp_path / "m.keras")
    fm = load_float_keras(tmp_path / "m.keras")
    shape = fm.graph[fm.graph.inputs[0]].shape[1:]
    rng = np.random.default_rng(0)
    model = qat.prepare(fm, rng.normal(0, 1, (64,) + shape).astype(np.float32), bits=bits, per_channel=per_channel)
    graph = qat.convert(model)
    if bits.endswith("a16"):
        assert_16x8(graph)
    x = rng.normal(0, 1 if "softmax" not in name else 4, (40,) + shape).astype(np.float32)  # softmax: wide logits
    assert np.array_equal(*simulated_and_deployed_codes(model, graph, x))


def assert_16x8(graph) -> None:
    """TFLM's 16x8 form: every activation int16 with zero point 0, int8 weights, int64 biases."""
    activations = [graph[graph.inputs[0]]] + [graph[n] for op in graph.ops for n in op.outputs]
    assert {t.dtype for t in activations} == {"int16"} and {t.qparams.zp for t in activations} == {0}
    affine = [op for op in graph.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert affine and {graph[op.inputs[1]].dtype for op in affine} == {"int8"}
    assert {graph[op.inputs[2]].dtype for op in affine} == {"int64"}


def simulated_and_deployed_codes(model, graph, x):
    """The QAT model's outputs read as codes, and the integer reference's outputs of `graph`."""
    simulated = model(x).numpy()
    t, out = graph[graph.inputs[0]], graph[graph.outputs[0]]
    xq = quantize_input(x, t.qparams.s, t.qparams.zp, t.dtype).reshape((len(x),) + t.shape)
    ints = ref.outputs(graph, [xq], batched=True)[0]
    simulated_codes = np.round(simulated / out.qparams.s) + out.qparams.zp  # the sim's float is s * (code - zp)
    return simulated_codes.astype(np.int64), ints.reshape(simulated.shape).astype(np.int64)


@pytest.mark.parametrize("bits", ["w8a8", "w8a16"])
def test_a_concatenation_input_of_another_scale_is_requantized_exactly(bits):
    """A concatenation input that cannot adopt the output's quantization gets a QUANTIZE in the
    deployed graph (TFLM's Requantize); the simulation computes the same codes."""
    import keras

    model = keras_models.build(keras, "concatenate")
    conv = next(layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    conv.set_weights([w * 10 for w in conv.get_weights()])  # wider than the input it joins
    rng = np.random.default_rng(5)
    qat_model = qat.prepare(model, rng.normal(0, 1, (64, 6, 6, 3)).astype(np.float32), bits=bits)
    graph = qat.convert(qat_model)
    assert [op.kind for op in graph.ops] == ["CONV_2D", "QUANTIZE", "CONCATENATION"]
    simulated, deployed = simulated_and_deployed_codes(qat_model, graph, rng.normal(0, 1, (200, 6, 6, 3)))
    assert np.array_equal(simulated, deployed)


def test_int16_logistic_is_simulated_within_one_code(tmp_path):
    """LOGISTIC has no exact twin: its 16x8 output is float fake quantization of the sigmoid at
    1/32768, against TFLM's interpolated uint16 table (error under 1.5 / 32768); its input, the
    dense layer's int16 codes, is exact."""
    import keras

    model = keras_models.build(keras, "dense_bn_sigmoid")
    rng = np.random.default_rng(6)
    shape = model.input_shape[1:]
    qat_model = qat.prepare(model, rng.normal(0, 1, (64,) + shape).astype(np.float32), bits="w8a16")
    graph = qat.convert(qat_model)
    assert_16x8(graph)
    simulated, deployed = simulated_and_deployed_codes(qat_model, graph, rng.normal(0, 2, (500,) + shape))
    diff = np.abs(simulated - deployed)
    assert diff.max() <= 1 and np.mean(diff > 0) < 0.5


def test_training_updates_quantizers_and_stays_deployable(tmp_path):
    import keras

    keras_models.build(keras, "dense_softmax").save(tmp_path / "m.keras")
    fm = load_float_keras(tmp_path / "m.keras")
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (256, 12)).astype(np.float32)
    y = rng.integers(0, 5, 256)
    for learnable in (True, False):
        model = qat.prepare(fm, x[:64], bits="w4a8", learnable=learnable)
        scales = {k: float(v.numpy()) for k, v in model.act_scales.items()}
        losses = qat.fit(model, x, y, epochs=3, learning_rate=1e-2, quiet=True)
        assert losses[-1] < losses[0]
        assert any(abs(float(v.numpy()) - scales[k]) > 1e-7 for k, v in model.act_scales.items())
        graph = qat.convert(model)
        xq = quantize_input(x[:8], graph[graph.inputs[0]].qparams.s, graph[graph.inputs[0]].qparams.zp)
        assert np.array_equal(
            np.argmax(model(x[:8]).numpy(), axis=1),
            np.argmax(ref.outputs(graph, [xq[:, None]], batched=True)[0].reshape(8, -1), axis=1),
        )


def test_int16_training_stays_deployable(tmp_path):
    """A short w8a16 fit: the zero points stay 0, the step sizes move (LSQ) or follow the EMA, the
    simulation still equals the integer reference, and the exported 16x8 .tflite's host C equals it."""
    import keras

    from tinyq.exporters.tflite import to_tflite

    fm = float_model_from_keras(keras_models.build(keras, "dense_softmax"))
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (128, 12)).astype(np.float32)
    y = rng.integers(0, 5, 128)
    for learnable in (True, False):
        model = qat.prepare(fm, x[:64], bits="w8a16", learnable=learnable)
        scales = {k: float(v.numpy()) for k, v in model.act_scales.items()}
        losses = qat.fit(model, x, y, epochs=1, batch_size=32, learning_rate=1e-2, quiet=True)
        assert len(losses) == 1 and np.isfinite(losses[0])
        assert any(abs(float(v.numpy()) - scales[k]) > 1e-9 for k, v in model.act_scales.items())
        graph = qat.convert(model)
        assert_16x8(graph)
        assert np.array_equal(*simulated_and_deployed_codes(model, graph, x[:32]))
    deployed = parse_tflite(to_tflite(graph))
    assert_16x8(deployed)
    host = HostModel(deployed, tmp_path / "c")
    for inputs in random_inputs(deployed, 5, seed=8):
        expected = ref.outputs(graph, inputs)[0]
        assert np.array_equal(host.run(inputs)[0], expected)


@pytest.mark.parametrize("bits", ["w4a8", "w8a16"])
def test_cli_qat(bits, tmp_path):
    import keras

    model = keras_models.build(keras, "dense_softmax")
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(2).normal(0, 1, (200, 12)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=np.argmax(model.predict(x, verbose=0), axis=1))
    result = tinyq(
        "qat",
        tmp_path / "m.keras",
        "--data",
        tmp_path / "train.npz",
        "--epochs",
        "1",
        "--bits",
        bits,
        "-o",
        tmp_path / "q",
    )
    assert result.returncode == 0, result.stderr
    graph = parse_tflite((tmp_path / "q" / "model_int8.tflite").read_bytes())
    assert json.loads((tmp_path / "q" / "qat_report.json").read_text())["bits"] == bits
    if bits == "w8a16":
        assert_16x8(graph)
    else:
        assert {graph[op.inputs[1]].dtype for op in graph.ops if op.kind == "FULLY_CONNECTED"} == {"int4"}
    assert tinyq("build", tmp_path / "q" / "model_int8.tflite", "--board", "host", "-o", tmp_path / "b").returncode == 0


def test_docs_python_example_runs(tmp_path, monkeypatch):
    """docs/qat.md's Python example, run as written on a small model and data set."""
    import keras

    text = (Path(__file__).parent.parent / "docs" / "qat.md").read_text()
    code = text.split("```python\n")[1].split("```")[0]
    model = keras_models.build(keras, "dense_softmax")
    model.save(tmp_path / "model.keras")
    x = np.random.default_rng(3).normal(0, 1, (128, 12)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=np.argmax(model.predict(x, verbose=0), axis=1))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "docs/qat.md", "exec"), scope)
    assert len(scope["losses"]) == 2
    graph = parse_tflite((tmp_path / "model_w4a8.tflite").read_bytes())
    assert {graph[op.inputs[1]].dtype for op in graph.ops if op.kind == "FULLY_CONNECTED"} == {"int4"}
