"""The 16x8 LSTM (int16 activations, int8 weights, int64 biases, int16 cell state; TFLite
Micro's EvalLstm<int16_t, int8_t, int16_t, int64_t>). The TFLite converter refuses to make one
(its 16x8 mode leaves LSTMs in float), so tinyq quantizes Keras LSTM models at w8a16 (or one
layer with --a16) and TFLM runs the file tinyq writes: every tensor bit-exact with the reference,
then the host C, QEMU and a streaming build; more precise than the int8 LSTM on the same model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.tflite import parse_tflite
from tinyq.streaming import frame_outputs, streaming, with_steps

from support.graphs import side_by_side
from support.hostlib import HostModel
from support.inputs import random_inputs
from support.qemu_sample import assert_bit_exact_in_qemu
from support.tflm import assert_every_tensor_matches

LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"

# name: (time steps, features, body, weight scale); the weights are scaled after Keras's
# initialisation (large ones saturate the gates), the biases drawn away from Keras's zeros.
CASES = {
    "u9_t11_f6_sequence": (11, 6, lambda L, x: L.LSTM(9, return_sequences=True)(x), 1.0),
    "u1_t1_f1": (1, 1, lambda L, x: L.LSTM(1)(x), 1.0),
    "u13_t7_f5_last_step_dense": (7, 5, lambda L, x: L.Dense(4)(L.LSTM(13)(x)), 1.0),
    "u10_u6_stacked": (8, 6, lambda L, x: L.LSTM(6)(L.LSTM(10, return_sequences=True)(x)), 1.0),
    "u5_no_bias_conv_front": (9, 3, lambda L, x: L.LSTM(5, use_bias=False)(L.Conv1D(7, 3, activation="relu")(x)), 1.0),
    "u33_t4_f10_saturating": (4, 10, lambda L, x: L.LSTM(33, return_sequences=True)(x), 6.0),
    "u24_t28_f28_fashion_shape": (28, 28, lambda L, x: L.Dense(10)(L.LSTM(24)(x)), 1.0),
    "u6_t40_f2_long": (40, 2, lambda L, x: L.LSTM(6, return_sequences=True)(x), 1.5),
}


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def keras_model(keras, name):
    steps, features, body, weight_scale = CASES[name]
    keras.utils.set_random_seed(len(name))
    x = keras.Input((steps, features))
    model = keras.Model(x, body(keras.layers, x))
    rng = np.random.default_rng(len(name))
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            scaled = [w * weight_scale for w in weights[:-1]]
            layer.set_weights([*scaled, rng.normal(0, 0.5, weights[-1].shape).astype(np.float32)])
    return model


def calibration(name, count=200, seed=1):
    steps, features, _, _ = CASES[name]
    return np.random.default_rng(seed).uniform(-2, 2, (count, steps, features)).astype(np.float32)


def quantized(keras, name, bits="w8a16", a16=None, fm=None):
    from tinyq.data import Dataset
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.quant import parse_config, quantize

    fm = fm or float_model_from_keras(keras_model(keras, name))
    config = parse_config("minmax", bits, a16=a16)
    return fm, quantize(fm, Dataset(calibration(name)), config, quiet=True).graph


def as_input(graph, floats):
    t = graph[graph.inputs[0]]
    lo, hi = np.iinfo(t.dtype).min, np.iinfo(t.dtype).max
    return np.clip(np.round(floats / t.qparams.s) + t.qparams.zp, lo, hi).astype(t.dtype)


def lstm_ops(graph):
    return [op for op in graph.ops if op.kind == LSTM]


@pytest.mark.parametrize("name", CASES)
def test_16x8_lstm_is_bit_exact_with_tflm_on_every_tensor_and_with_the_host_c(name, keras, tmp_path):
    _, graph = quantized(keras, name)
    layers = lstm_ops(graph)
    assert layers and all(graph[op.inputs[0]].dtype == "int16" for op in layers)
    assert all(graph[b].dtype == "int64" for op in layers for b in op.inputs[9:13])
    written = to_tflite(graph)
    samples = as_input(graph, calibration(name, 3, seed=9))
    host = HostModel(graph, tmp_path)
    for sample in samples:
        assert assert_every_tensor_matches(written, graph, [sample[None]]) >= len(graph.ops)
        assert np.array_equal(host.run([sample[None]])[0], ref.outputs(graph, [sample[None]])[0])
    again = parse_tflite(written)
    assert [op.attrs for op in lstm_ops(again)] == [op.attrs for op in layers]
    assert np.array_equal(ref.outputs(again, [samples[:1]])[0], ref.outputs(graph, [samples[:1]])[0])


@pytest.mark.parametrize("name", ["u9_t11_f6_sequence", "u10_u6_stacked", "u24_t28_f28_fashion_shape"])
def test_16x8_lstm_is_closer_to_float_than_the_int8_lstm(name, keras):
    """The point of 16x8: on the same model and data, int16 activations and hidden state bring
    the deployed outputs at least 3 dB closer to float (int8 weights and the Q3.12 gate
    arithmetic, shared by both, bound the gain)."""
    from tinyq.quant.evaluate import dequantize, sqnr_db
    from tinyq.sim import FloatRunner

    test = calibration(name, 100, seed=3)
    sqnr = {}
    for bits in ("w8a8", "w8a16"):
        fm, graph = quantized(keras, name, bits)
        floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test])[0]
        out = ref.outputs(graph, [as_input(graph, test)[:, None]], batched=True)[0]
        sqnr[bits] = sqnr_db(floats, dequantize(graph[graph.outputs[0]], out).reshape(floats.shape))
    assert sqnr["w8a16"] > sqnr["w8a8"] + 3, sqnr


def test_one_16x8_lstm_in_an_int8_model_with_a16(keras, tmp_path):
    """--a16 on the first of two stacked LSTMs: it reads the int16 model input, a QUANTIZE
    carries its int16 sequence to the int8 LSTM after it, and TFLM runs the mixed file bit-exact."""
    from tinyq.importers.keras import float_model_from_keras

    fm = float_model_from_keras(keras_model(keras, "u10_u6_stacked"))
    first = lstm_ops(fm.graph)[0].name
    _, graph = quantized(keras, "u10_u6_stacked", "w8a8", a16=first, fm=fm)
    assert [graph[op.inputs[0]].dtype for op in lstm_ops(graph)] == ["int16", "int8"]
    assert [op.kind for op in graph.ops].count("QUANTIZE") == 1
    written = to_tflite(graph)
    for sample in as_input(graph, calibration("u10_u6_stacked", 2, seed=4)):
        assert assert_every_tensor_matches(written, graph, [sample[None]]) >= len(graph.ops)
    sample = as_input(graph, calibration("u10_u6_stacked", 1, seed=5))
    assert np.array_equal(HostModel(graph, tmp_path).run([sample])[0], ref.outputs(graph, [sample])[0])


def test_a_streamed_16x8_lstm_gives_the_whole_sequence_frame_by_frame(keras, tmp_path):
    """Built --streaming, the int16 hidden and cell states stay in the arena from call to call:
    frame t's outputs are step t of the whole sequence's reference, past the training length."""
    _, graph = quantized(keras, "u9_t11_f6_sequence")
    framed = streaming(graph)
    steps = 30
    sequence = as_input(graph, np.random.default_rng(8).uniform(-2, 2, (1, steps, 6)).astype(np.float32))
    whole = ref.outputs(with_steps(graph, steps), [sequence])[0]
    frames = [sequence[:, t : t + 1] for t in range(steps)]
    streamed = [outputs[0] for outputs in frame_outputs(framed, frames)]
    assert all(np.array_equal(whole[:, t : t + 1], s) for t, s in enumerate(streamed))
    host = HostModel(framed, tmp_path)
    assert all(np.array_equal(host.run([f])[0], s) for f, s in zip(frames, streamed))
    host.lib.tinyq_reset()
    assert all(np.array_equal(host.run([f])[0], s) for f, s in zip(frames[:3], streamed))


def with_int32_bias(graph, op):
    b = graph[op.inputs[9]]
    return {b.name: replace(b, dtype="int32", data=b.data.astype(np.int32))}


def with_asymmetric_input(graph, op):
    x = graph[op.inputs[0]]
    return {x.name: replace(x, qparams=ir.QParams.per_tensor(x.qparams.s, 3))}


@pytest.mark.parametrize(
    "edit, message",
    [
        (with_int32_bias, r"int32, int64, int64, int64\) -> int16 are not implemented"),
        (with_asymmetric_input, "int16 with zero point 3; 16x8 activations are symmetric"),
    ],
    ids=["int32_bias", "asymmetric_int16_input"],
)
def test_16x8_lstms_tflm_does_not_run_are_refused(edit, message, keras):
    _, graph = quantized(keras, "u9_t11_f6_sequence")
    edited = graph.replace(tensors={**graph.tensors, **edit(graph, lstm_ops(graph)[0])})
    with pytest.raises(ir.IRError, match=message):
        ir.verify(edited)


def test_16x8_lstms_in_qemu_match_the_reference(keras, tmp_path):
    """Three 16x8 LSTM models side by side in one firmware for the Cortex-M4 (the DSP path of
    the gate products), run in QEMU."""
    names = ["u13_t7_f5_last_step_dense", "u10_u6_stacked", "u33_t4_f10_saturating"]
    graph = side_by_side({n: quantized(keras, n)[1] for n in names}, "lstm16")
    assert_bit_exact_in_qemu(graph, "mps2_an386", tmp_path, random_inputs(graph, 2, seed=12), "16x8 LSTM sample")
