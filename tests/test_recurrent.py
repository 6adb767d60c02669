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
