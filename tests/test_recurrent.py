"""Recurrent layers: converter-made LSTM models (the fused UNIDIRECTIONAL_SEQUENCE_LSTM) bit-exact
with TFLite Micro on every tensor, with the host C and QEMU, and after tinyq writes them back out;
Keras LSTM, GRU and SimpleRNN layers imported and quantized by tinyq, bit-exact from the reference
to the host C (and TFLM for LSTMs), close to float."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.tflite import parse_tflite
from tinyq.ops import definition

from support.graphs import side_by_side
from support.hostlib import HostModel
from support.inputs import random_inputs
from support.qemu_sample import assert_bit_exact_in_qemu
from support.recurrent import LSTM_CASES, lstm_tflite, ramp_input
from support.tflm import assert_every_tensor_matches, tflm_outputs


@pytest.fixture(scope="module")
def lstm_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("lstm_models")


def lstm_ops(graph):
    return [op for op in graph.ops if op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM"]


@pytest.mark.parametrize("case", LSTM_CASES, ids=lambda c: c.name)
def test_converter_lstm_bit_exact_with_tflm_and_host_c(case, lstm_dir, tmp_path):
    data = lstm_tflite(case, lstm_dir).read_bytes()
    graph = parse_tflite(data)
    assert len(lstm_ops(graph)) == case.layers
    assert all(op.attrs.time_major == case.time_major for op in lstm_ops(graph))
    assert ("STRIDED_SLICE" in {op.kind for op in graph.ops}) == (not case.return_sequences)
    host = HostModel(graph, tmp_path)
    ramp = [ramp_input(case.input_shape, case.time_major)]
    for inputs in random_inputs(graph, 4, seed=len(case.name)) + [ramp]:
        assert assert_every_tensor_matches(data, graph, inputs) >= 1 + case.layers
        assert np.array_equal(host.run(inputs)[0], ref.outputs(graph, inputs)[0])


def test_the_cell_clip_case_reaches_the_clip(lstm_dir):
    """The clipped row is only a test of the clip if clipping changes its outputs."""
    case = next(c for c in LSTM_CASES if c.accumulate)
    graph = parse_tflite(lstm_tflite(case, lstm_dir).read_bytes())
    op = lstm_ops(graph)[0]
    unclipped = graph.replace(ops=(replace(op, attrs=replace(op.attrs, cell_clip=0.0)),))
    ramp = [ramp_input(case.input_shape, case.time_major)]
    assert not np.array_equal(ref.outputs(graph, ramp)[0], ref.outputs(unclipped, ramp)[0])


FLOAT_CASES = ["lstm_u8_t5_f3", "lstm_u7_t9_f5_last", "lstm_u12_t8_f6_stacked", "lstm_u6_t40_f2_cell_clipped"]


@pytest.mark.parametrize("name", FLOAT_CASES)
def test_a_float_converter_lstm_imports_and_quantizes_bit_exact_with_tflm(name, lstm_dir):
    """A float .tflite LSTM (the converter without quantization): tinyq's float graph gives
    TFLite's interpreter's outputs; quantized by tinyq, TFLM runs the int8 file bit-exact."""
    import tensorflow as tf

    from tinyq.data import Dataset
    from tinyq.float_model import FloatModel
    from tinyq.quant import parse_config, quantize
    from tinyq.sim import FloatRunner

    case = {c.name: c for c in LSTM_CASES}[name]
    data = lstm_tflite(case, lstm_dir, quantized=False).read_bytes()
    graph = parse_tflite(data)
    assert len(lstm_ops(graph)) == case.layers and graph[graph.inputs[0]].dtype == "float32"
    x = np.random.default_rng(3).uniform(-1, 1, case.input_shape).astype(np.float32)
    interpreter = tf.lite.Interpreter(model_content=data)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    ours = FloatRunner(graph, keep=set(graph.outputs)).outputs([x])[0]
    np.testing.assert_allclose(ours.reshape(expected.shape), expected, atol=1e-5)
    calib = np.random.default_rng(4).uniform(-1, 1, (64, *case.input_shape[1:])).astype(np.float32)
    quantized = quantize(FloatModel(graph), Dataset(calib), parse_config("minmax", "w8a8"), quiet=True).graph
    written = to_tflite(quantized)
    for sample in random_inputs(quantized, 2, seed=5):
        assert np.array_equal(tflm_outputs(written, sample, 1)[0], ref.outputs(quantized, sample)[0])


def test_lstm_written_back_runs_in_tflm_unchanged(lstm_dir):
    """tinyq's own .tflite of an LSTM model (state tensors as variables) gives TFLM's outputs."""
    case = next(c for c in LSTM_CASES if c.time_major)
    graph = parse_tflite(lstm_tflite(case, lstm_dir).read_bytes())
    written = to_tflite(graph)
    again = parse_tflite(written)
    assert [op.attrs for op in lstm_ops(again)] == [op.attrs for op in lstm_ops(graph)]
    for inputs in random_inputs(graph, 3, seed=1):
        assert np.array_equal(tflm_outputs(written, inputs, 1)[0], ref.outputs(graph, inputs)[0])


def test_lstm_state_starts_from_zero_on_every_call(lstm_dir, tmp_path):
    """The host C resets h and c per call (TFLM keeps its variable tensors between invokes; tinyq's
    non-streaming build does not): the same input twice gives the same output, also after another."""
    case = LSTM_CASES[0]
    graph = parse_tflite(lstm_tflite(case, lstm_dir).read_bytes())
    host = HostModel(graph, tmp_path)
    a, b = random_inputs(graph, 2, seed=3)
    first = host.run(a)[0]
    host.run(b)
    assert np.array_equal(host.run(a)[0], first)
    assert np.array_equal(first, ref.outputs(graph, a)[0])


def with_lstm_weights(graph, change):
    """The graph with the first LSTM's input-to-input weights changed by `change(tensor)`."""
    w = graph[lstm_ops(graph)[0].inputs[1]]
    return graph.with_tensors(change(w))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda w: replace(w, qparams=ir.QParams.per_channel([w.qparams.s] * w.shape[0], 0)),
            "per-tensor symmetric int8",
        ),
        (lambda w: replace(w, qparams=ir.QParams.per_tensor(w.qparams.s, 3)), "per-tensor symmetric int8"),
        (
            lambda w: ir.Tensor(
                w.name,
                (w.shape[0], w.shape[1] + 1),
                w.dtype,
                w.qparams,
                np.zeros((w.shape[0], w.shape[1] + 1), np.int8),
            ),
            "input weights",
        ),
    ],
    ids=["per_channel", "asymmetric", "wrong_shape"],
)
def test_lstm_refuses_what_tflm_does_not_run(change, message, lstm_dir):
    graph = parse_tflite(lstm_tflite(LSTM_CASES[0], lstm_dir).read_bytes())
    with pytest.raises(ir.IRError, match=message):
        ir.verify(with_lstm_weights(graph, change))


QEMU_SAMPLE = [
    "lstm_u7_t9_f5_last",
    "lstm_u5_t7_f3_time_major_batch2",
    "lstm_u12_t8_f6_stacked",
    "lstm_u6_t40_f2_cell_clipped",
]


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500"])
def test_converter_lstm_models_in_qemu_match_the_reference(board, lstm_dir, tmp_path):
    """Four LSTM models side by side in one firmware, built by the Arm toolchain, run in QEMU."""
    cases = {c.name: c for c in LSTM_CASES}
    graph = side_by_side({n: parse_tflite(lstm_tflite(cases[n], lstm_dir).read_bytes()) for n in QEMU_SAMPLE}, "lstms")
    ramps = [ramp_input(cases[n].input_shape, cases[n].time_major) for n in QEMU_SAMPLE]
    assert_bit_exact_in_qemu(graph, board, tmp_path, random_inputs(graph, 2, seed=7) + [ramps], "LSTM sample")


# --- Keras recurrent layers, imported and quantized by tinyq -------------------------------

KERAS_RECURRENT = {
    "lstm_sequence_out": lambda L, x: L.LSTM(9, return_sequences=True)(x),
    "lstm_last_step_dense": lambda L, x: L.Dense(4)(L.LSTM(13)(x)),
    "lstm_stacked": lambda L, x: L.LSTM(6)(L.LSTM(10, return_sequences=True)(x)),
    "lstm_no_bias_conv_front": lambda L, x: L.LSTM(5, use_bias=False)(L.Conv1D(7, 3, activation="relu")(x)),
    "gru_reset_after": lambda L, x: L.GRU(7, return_sequences=True)(x),
    "gru_reset_before_last_step": lambda L, x: L.Dense(3)(L.GRU(11, reset_after=False)(x)),
    "gru_no_bias": lambda L, x: L.GRU(4, use_bias=False)(x),
    "simple_rnn_sequence_out": lambda L, x: L.SimpleRNN(8, return_sequences=True)(x),
    "simple_rnn_into_lstm": lambda L, x: L.LSTM(5)(L.SimpleRNN(6, return_sequences=True)(x)),
    "gru_into_simple_rnn": lambda L, x: L.SimpleRNN(3)(L.GRU(9, return_sequences=True)(x)),
    "lstm_go_backwards_last_step": lambda L, x: L.LSTM(6, go_backwards=True)(x),
    "simple_rnn_go_backwards_sequence": lambda L, x: L.SimpleRNN(5, go_backwards=True, return_sequences=True)(x),
    "bidirectional_lstm_concat_sequence": lambda L, x: L.Bidirectional(L.LSTM(5, return_sequences=True))(x),
    "bidirectional_gru_sum_last_step": lambda L, x: L.Dense(3)(L.Bidirectional(L.GRU(4), merge_mode="sum")(x)),
    "bidirectional_simple_rnn_ave": lambda L, x: L.Bidirectional(
        L.SimpleRNN(4, return_sequences=True), merge_mode="ave"
    )(x),
    "bidirectional_lstm_mul_last_step": lambda L, x: L.Bidirectional(L.LSTM(3), merge_mode="mul")(x),
}
RECURRENT_OPS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "TINYQ_GRU",
    "TINYQ_SIMPLE_RNN",
}  # (and REVERSE_V2 for backward layers)


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def keras_recurrent(keras, name, steps=11, features=6):
    keras.utils.set_random_seed(len(name))
    x = keras.Input((steps, features))
    model = keras.Model(x, KERAS_RECURRENT[name](keras.layers, x))
    rng = np.random.default_rng(len(name))
    for layer in model.layers:  # biases away from Keras's zeros (the forget gate's ones)
        weights = layer.get_weights()
        if weights:
            layer.set_weights([*weights[:-1], rng.normal(0, 0.5, weights[-1].shape).astype(np.float32)])
    return model


@pytest.mark.parametrize("name", KERAS_RECURRENT)
def test_keras_recurrent_float_import_matches_keras(name, keras):
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.sim import FloatRunner

    model = keras_recurrent(keras, name)
    x = np.random.default_rng(0).uniform(-2, 2, (16, 11, 6)).astype(np.float32)
    graph = float_model_from_keras(model).graph
    assert RECURRENT_OPS & {op.kind for op in graph.ops}
    ours = FloatRunner(graph, keep=set(graph.outputs)).outputs([x])[0]
    np.testing.assert_allclose(ours.reshape(16, -1), model.predict(x, verbose=0).reshape(16, -1), atol=2e-5)


@pytest.mark.parametrize("name", KERAS_RECURRENT)
def test_tinyq_quantized_keras_recurrent_models_are_bit_exact_everywhere(name, keras, tmp_path):
    """tinyq's own quantization of Keras recurrent layers: the host C gives the reference's outputs;
    so does TFLM on its .tflite when all its ops are TFLM's (LSTM), and tinyq on the file read back
    (GRU and SimpleRNN are CUSTOM operators there); the int8 model stays close to float."""
    from tinyq.data import Dataset
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.quant import parse_config, quantize
    from tinyq.quant.evaluate import dequantize, sqnr_db
    from tinyq.sim import FloatRunner

    fm = float_model_from_keras(keras_recurrent(keras, name))
    rng = np.random.default_rng(1)
    calib, test = (rng.uniform(-2, 2, (n, 11, 6)).astype(np.float32) for n in (200, 50))
    graph = quantize(fm, Dataset(calib), parse_config("minmax", "w8a8"), quiet=True).graph
    written = to_tflite(graph)
    again = parse_tflite(written)
    tflm_runs_it = not any(ops_def.custom for ops_def in map(definition, graph.ops))
    host = HostModel(graph, tmp_path)
    x_q = graph[graph.inputs[0]].qparams
    quantized = np.clip(np.round(test / x_q.s) + x_q.zp, -128, 127).astype(np.int8)
    for sample in quantized[:4]:
        expected = ref.outputs(graph, [sample[None]])[0]
        assert np.array_equal(host.run([sample[None]])[0], expected)
        assert np.array_equal(ref.outputs(again, [sample[None]])[0], expected)
        if tflm_runs_it:
            assert np.array_equal(tflm_outputs(written, [sample[None]], 1)[0], expected)
    floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test])[0]
    out = dequantize(graph[graph.outputs[0]], ref.outputs(graph, [quantized[:, None]], batched=True)[0])
    assert sqnr_db(floats, out.reshape(floats.shape)) > 25


@pytest.mark.parametrize(
    "layer, message",
    [
        (lambda L: L.Bidirectional(L.LSTM(4), merge_mode=None), "merge_mode None is not supported"),
        (lambda L: L.LSTM(4, activation="relu"), "activation 'relu' is not supported"),
        (lambda L: L.LSTM(4, recurrent_activation="hard_sigmoid"), "recurrent_activation 'hard_sigmoid'"),
        (lambda L: L.GRU(4, return_state=True), "return_state recurrent layers are not supported"),
        (lambda L: L.SimpleRNN(4, activation="relu"), "activation 'relu' is not supported"),
    ],
    ids=["bidirectional_unmerged", "relu_activation", "hard_sigmoid_gates", "gru_return_state", "relu_rnn"],
)
def test_keras_recurrent_forms_tinyq_does_not_deploy_are_refused(layer, message, keras):
    from tinyq.errors import TinyqError
    from tinyq.importers.keras import float_model_from_keras

    x = keras.Input((5, 3))
    y = layer(keras.layers)(x)
    with pytest.raises(TinyqError, match=message):
        float_model_from_keras(keras.Model(x, y[0] if isinstance(y, list) else y))


def test_tinyq_quantized_gru_and_simple_rnn_in_qemu_match_the_reference(keras, tmp_path):
    """GRU (both reset forms), SimpleRNN and an LSTM quantized by tinyq, side by side in one firmware
    built by the Arm toolchain, run in QEMU (Cortex-M4)."""
    from tinyq.data import Dataset
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.quant import parse_config, quantize

    calib = Dataset(np.random.default_rng(2).uniform(-2, 2, (100, 11, 6)).astype(np.float32))
    names = ["gru_reset_after", "gru_reset_before_last_step", "simple_rnn_into_lstm"]
    config = parse_config("minmax", "w8a8")
    graphs = {n: quantize(float_model_from_keras(keras_recurrent(keras, n)), calib, config, quiet=True) for n in names}
    graph = side_by_side({n: r.graph for n, r in graphs.items()}, "recurrent")
    assert_bit_exact_in_qemu(graph, "mps2_an386", tmp_path, random_inputs(graph, 2, seed=11), "recurrent sample")


def test_qat_of_a_keras_lstm_classifier_deploys_bit_exact_in_tflm(keras, tmp_path):
    """QAT runs on recurrent models: the activations around the LSTM learn their quantizers (its
    weights and int16 gate arithmetic train in float; its cell state is not fake-quantized), and the
    converted model is a valid int8 LSTM that TFLM runs with the reference's outputs."""
    from support.cli import tinyq

    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (256, 11, 6)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    keras.utils.set_random_seed(7)
    inputs = keras.Input((11, 6))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.LSTM(8)(inputs)))
    model.save(tmp_path / "lstm.keras")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    result = tinyq(
        "qat", tmp_path / "lstm.keras", "--data", tmp_path / "train.npz", "--epochs", "1", "-o", tmp_path / "q"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Gradients do not exist" not in result.stderr
    written = (tmp_path / "q" / "model_int8.tflite").read_bytes()
    graph = parse_tflite(written)
    assert [op.attrs.cell_scale > 0 for op in lstm_ops(graph)] == [True]
    for inputs in random_inputs(graph, 3, seed=8):
        assert np.array_equal(tflm_outputs(written, inputs, 1)[0], ref.outputs(graph, inputs)[0])
