"""Quantization-aware training: STE and LSQ gradients, and a simulation that is the deployment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyq import qat, ref
from tinyq.data import quantize_input
from tinyq.importers.keras import load_float_keras
from tinyq.importers.tflite import parse_tflite
from tinyq.qat.model import fake_quant_activations, fake_quant_weights
from tinyq.tf import tensorflow

from support import keras_models
from support.cli import tinyq


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
    x = rng.normal(0, 1, (40,) + shape).astype(np.float32)
    simulated = model(x).numpy()
    t, out = graph[graph.inputs[0]], graph[graph.outputs[0]]
    ints = ref.outputs(graph, [quantize_input(x, t.qparams.s, t.qparams.zp).reshape((40,) + t.shape)], batched=True)[0]
    simulated_codes = np.round(simulated / out.qparams.s) + out.qparams.zp  # the sim's float is s * (code - zp)
    assert np.array_equal(simulated_codes.astype(np.int64), ints.reshape(simulated.shape).astype(np.int64))


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


def test_cli_qat(tmp_path):
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
        "w4a8",
        "-o",
        tmp_path / "q",
    )
    assert result.returncode == 0, result.stderr
    graph = parse_tflite((tmp_path / "q" / "model_int8.tflite").read_bytes())
    assert json.loads((tmp_path / "q" / "qat_report.json").read_text())["bits"] == "w4a8"
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
