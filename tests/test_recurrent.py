"""Recurrent layers: converter-made LSTM models (the fused UNIDIRECTIONAL_SEQUENCE_LSTM) bit-exact
with TFLite Micro on every tensor, with the host C, and after tinyq writes them back out."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.tflite import parse_tflite

from support.env import require_tool
from support.graphs import side_by_side
from support.hostlib import HostModel
from support.inputs import random_inputs
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
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    cases = {c.name: c for c in LSTM_CASES}
    graph = side_by_side({n: parse_tflite(lstm_tflite(cases[n], lstm_dir).read_bytes()) for n in QEMU_SAMPLE}, "lstms")
    build(graph, get_board(board), tmp_path / "fw", source="LSTM sample", log=lambda message: None)
    ramps = [ramp_input(cases[n].input_shape, cases[n].time_major) for n in QEMU_SAMPLE]
    for i, inputs in enumerate(random_inputs(graph, 2, seed=7) + [ramps]):
        np.savez(tmp_path / f"x{i}.npz", *inputs)
        result = bench(tmp_path / "fw", emulate=True, input_path=tmp_path / f"x{i}.npz")
        assert result["bit_exact"]
        assert result["outputs"] == [o.reshape(-1).tolist() for o in ref.outputs(graph, inputs)]


# --- Keras LSTM layers, imported and quantized by tinyq -------------------------------------

KERAS_LSTMS = {
    "sequence_out": lambda L, x: L.LSTM(9, return_sequences=True)(x),
    "last_step_dense": lambda L, x: L.Dense(4)(L.LSTM(13)(x)),
    "stacked": lambda L, x: L.LSTM(6)(L.LSTM(10, return_sequences=True)(x)),
    "no_bias_conv_front": lambda L, x: L.LSTM(5, use_bias=False)(L.Conv1D(7, 3, activation="relu")(x)),
}


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def keras_lstm(keras, name, steps=11, features=6):
    keras.utils.set_random_seed(len(name))
    x = keras.Input((steps, features))
    return keras.Model(x, KERAS_LSTMS[name](keras.layers, x))


@pytest.mark.parametrize("name", KERAS_LSTMS)
def test_keras_lstm_float_import_matches_keras(name, keras):
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.sim import FloatRunner

    model = keras_lstm(keras, name)
    x = np.random.default_rng(0).uniform(-2, 2, (16, 11, 6)).astype(np.float32)
    graph = float_model_from_keras(model).graph
    ours = FloatRunner(graph, keep=set(graph.outputs)).outputs([x])[0]
    np.testing.assert_allclose(ours.reshape(16, -1), model.predict(x, verbose=0).reshape(16, -1), atol=2e-5)


@pytest.mark.parametrize("name", KERAS_LSTMS)
def test_tinyq_quantized_keras_lstm_runs_bit_exact_in_tflm_and_host_c(name, keras, tmp_path):
    """tinyq's own quantization of a Keras LSTM (per-tensor weights, power-of-two cell scale from
    the calibrated cell state) is a model TFLM runs: its .tflite gives the reference's outputs,
    and so does the host C; and the int8 model stays close to float."""
    from tinyq.data import Dataset
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.quant import parse_config, quantize
    from tinyq.quant.evaluate import dequantize, sqnr_db
    from tinyq.sim import FloatRunner

    fm = float_model_from_keras(keras_lstm(keras, name))
    rng = np.random.default_rng(1)
    calib, test = (rng.uniform(-2, 2, (n, 11, 6)).astype(np.float32) for n in (200, 50))
    graph = quantize(fm, Dataset(calib), parse_config("minmax", "w8a8"), quiet=True).graph
    assert all(op.attrs.cell_scale > 0 for op in lstm_ops(graph))
    written = to_tflite(graph)
    host = HostModel(graph, tmp_path)
    x_q = graph[graph.inputs[0]].qparams
    for sample in test[:4]:
        inputs = [np.clip(np.round(sample[None] / x_q.s) + x_q.zp, -128, 127).astype(np.int8)]
        assert np.array_equal(tflm_outputs(written, inputs, 1)[0], ref.outputs(graph, inputs)[0])
        assert np.array_equal(host.run(inputs)[0], ref.outputs(graph, inputs)[0])
    floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test])[0]
    quantized = np.clip(np.round(test / x_q.s) + x_q.zp, -128, 127).astype(np.int8)
    out = dequantize(graph[graph.outputs[0]], ref.outputs(graph, [quantized[:, None]], batched=True)[0])
    assert sqnr_db(floats, out.reshape(floats.shape)) > 25


@pytest.mark.parametrize(
    "layer, message",
    [
        (lambda L: L.LSTM(4, go_backwards=True), "backward recurrent layers are not supported"),
        (lambda L: L.LSTM(4, activation="relu"), "activation 'relu' is not supported"),
        (lambda L: L.LSTM(4, recurrent_activation="hard_sigmoid"), "recurrent_activation 'hard_sigmoid'"),
    ],
    ids=["go_backwards", "relu_activation", "hard_sigmoid_gates"],
)
def test_keras_lstm_forms_tinyq_does_not_deploy_are_refused(layer, message, keras):
    from tinyq.errors import TinyqError
    from tinyq.importers.keras import float_model_from_keras

    x = keras.Input((5, 3))
    with pytest.raises(TinyqError, match=message):
        float_model_from_keras(keras.Model(x, layer(keras.layers)(x)))
