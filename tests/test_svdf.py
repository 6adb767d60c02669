"""SVDF (int8 activations, int16 time weights and state): IR-built models bit-exact with TFLite
Micro and with the host C, read back unchanged, and refused where TFLM does not run them."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, replace

import numpy as np
import pytest

from tinyq import fixedpoint as fx
from tinyq import ir, ref
from tinyq.exporters.tflite import to_tflite, write_flatbuffer
from tinyq.importers.tflite import parse_tflite
from tinyq.ir import Activation, QParams, Tensor
from tinyq.ops import kernel_params
from tinyq.ops.svdf import Svdf, SvdfOp
from tinyq.streaming import frame_outputs, streaming

from support.env import require_tool
from support.graphs import side_by_side
from support.hostlib import HostModel
from support.inputs import random_inputs
from support.qemu_sample import assert_bit_exact_in_qemu
from support.tflm import assert_every_tensor_matches, tflm_frames, tflm_outputs, tflm_tensors

TIME_SCALE = 2.0**-14  # of the int16 time weights: |w| up to 2


@dataclass(frozen=True)
class SvdfCase:
    name: str
    batch: int
    input_size: int
    units: int
    rank: int
    memory: int
    bias: bool = True
    activation: Activation = Activation.NONE
    input_zero_point: int = 5
    input_scale: float = 0.05
    feature_scale: float = 0.01
    time_scale: float = TIME_SCALE
    state_scale: float = 2.0**-8
    output_scale: float = 0.5
    output_zero_point: int = -3

    @property
    def filters(self) -> int:
        return self.units * self.rank


SATURATING = dict(state_scale=2.0**-16, output_scale=2.0**-9)  # the int16 state and the int8 output clamp

CASES = [
    SvdfCase("b1_i1_u1_r1_m1", 1, 1, 1, 1, 1),
    SvdfCase("b1_i7_u3_r2_m10", 1, 7, 3, 2, 10),
    SvdfCase("b2_i40_u5_r1_m10_relu", 2, 40, 5, 1, 10, activation=Activation.RELU),
    SvdfCase("b2_i7_u3_r2_m1_no_bias", 2, 7, 3, 2, 1, bias=False),
    SvdfCase("b2_i40_u3_r2_m10_no_bias_relu", 2, 40, 3, 2, 10, bias=False, activation=Activation.RELU),
    SvdfCase("b1_i40_u5_r2_m10_saturating", 1, 40, 5, 2, 10, input_zero_point=-20, **SATURATING),
    SvdfCase("b2_i7_u7_r1_m10_saturating_relu", 2, 7, 7, 1, 10, activation=Activation.RELU, **SATURATING),
]


def svdf_graph(case: SvdfCase, seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    f, n = case.filters, case.input_size
    tensors = [
        Tensor("x", (case.batch, n), "int8", QParams.per_tensor(case.input_scale, case.input_zero_point)),
        Tensor(
            "w_feature",
            (f, n),
            "int8",
            QParams.per_tensor(case.feature_scale),
            rng.integers(-127, 128, (f, n)).astype(np.int8),
        ),
        Tensor(
            "w_time",
            (f, case.memory),
            "int16",
            QParams.per_tensor(case.time_scale),
            rng.integers(-32767, 32768, (f, case.memory)).astype(np.int16),
        ),
        Tensor("y", (case.batch, case.units), "int8", QParams.per_tensor(case.output_scale, case.output_zero_point)),
    ]
    if case.bias:
        bias_scale = float(np.float32(case.state_scale) * np.float32(case.time_scale))
        values = rng.integers(-(1 << 24), 1 << 24, case.units).astype(np.int32)
        tensors.append(Tensor("bias", (case.units,), "int32", QParams.per_tensor(bias_scale), values))
    op = ir.Op(
        "svdf",
        Svdf(case.state_scale, case.rank, case.activation),
        ("x", "w_feature", "w_time") + (("bias",) if case.bias else ()),
        ("y",),
    )
    return ir.verify(ir.Graph("svdf", {t.name: t for t in tensors}, (op,), ("x",), ("y",)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_svdf_bit_exact_with_tflm_and_host_c(case, tmp_path):
    graph = svdf_graph(case)
    model = to_tflite(graph)
    host = HostModel(graph, tmp_path)
    for inputs in random_inputs(graph, 4, seed=len(case.name)):
        mine = ref.outputs(graph, inputs)[0]
        assert np.array_equal(tflm_outputs(model, inputs, 1)[0], mine)
        assert assert_every_tensor_matches(model, graph, inputs) >= 2
        assert np.array_equal(host.run(inputs)[0], mine)


@pytest.mark.parametrize("case", [c for c in CASES if "saturating" in c.name], ids=lambda c: c.name)
def test_the_saturating_cases_reach_both_clamps(case):
    """A saturating row only tests saturation if TFLM's int16 state and int8 output both clamp."""
    graph = svdf_graph(case)
    model = to_tflite(graph)
    inputs = random_inputs(graph, 1, seed=len(case.name))[0]
    state = tflm_tensors(model, inputs)["svdf/activation_state"]
    assert {-32768, 32767} <= set(state.ravel().tolist())
    assert {-128, 127} <= set(ref.outputs(graph, inputs)[0].ravel().tolist())


def test_int32_sums_wrap_as_in_tflm(tmp_path):
    """Two filters of one unit, each 2^30 (-32768 x -32768), sum to 2^31: TFLM's int32 wraps it
    to -2^31, so the output is -128 where an exact sum would give 127."""
    case = SvdfCase("wrap", 1, 4, 1, 2, 1, False, input_zero_point=0, output_zero_point=0, **SATURATING)
    graph = svdf_graph(case)
    extremes = {
        "w_feature": np.full((2, 4), -127, np.int8),
        "w_time": np.full((2, 1), -32768, np.int16),
    }
    graph = graph.with_tensors(*(replace(graph[n], data=v) for n, v in extremes.items()))
    inputs = [np.full((1, 4), 127, np.int8)]
    mine = ref.outputs(graph, inputs)[0]
    assert mine.tolist() == [[-128]]
    assert np.array_equal(tflm_outputs(to_tflite(graph), inputs, 1)[0], mine)
    assert np.array_equal(HostModel(graph, tmp_path).run(inputs)[0], mine)


def test_tflm_applies_no_fused_relu():
    """TFLM's integer SVDF only clamps to int8: a RELU model still outputs below its zero point."""
    case = next(c for c in CASES if c.activation == Activation.RELU and "saturating" not in c.name)
    graph = svdf_graph(case)
    outputs = [tflm_outputs(to_tflite(graph), inputs, 1)[0] for inputs in random_inputs(graph, 2, seed=0)]
    assert min(int(y.min()) for y in outputs) < case.output_zero_point


def float32_multiplier(s1: float, s2: float, out: float) -> tuple[int, int]:
    """s1 s2 / out in float32 arithmetic, as TFLM's svdf_common.cc reads (not what it computes)."""
    f = np.float32
    return fx.quantize_multiplier(float(f(f(s1) * f(s2)) / f(out)))


def test_the_feature_multiplier_is_computed_in_double():
    """At these scales the float32 and double multipliers of the feature requantization differ,
    and TFLM's state (every int8 input times every feature weight) shows it uses the double one."""
    s_x, s_wf = 0.05664437264204025, 0.09383188188076019
    case = SvdfCase("grid", 256, 1, 255, 1, 1, False, input_zero_point=0, input_scale=s_x, feature_scale=s_wf)
    graph = svdf_graph(case)
    weights = np.arange(-127, 128, dtype=np.int8).reshape(255, 1)
    graph = graph.with_tensors(replace(graph["w_feature"], data=weights))
    inputs = [np.arange(-128, 128, dtype=np.int8).reshape(256, 1)]
    state = tflm_tensors(to_tflite(graph), inputs)["svdf/activation_state"].reshape(256, 255)
    products = inputs[0].astype(np.int64) @ weights.T.astype(np.int64)

    def newest_slots(multiplier):
        return np.clip(fx.multiply_by_quantized_multiplier(products, *multiplier), -32768, 32767)

    p = kernel_params(graph.ops[0], graph)
    assert np.array_equal(state, newest_slots((p.feature_multiplier, p.feature_shift)))
    assert not np.array_equal(state, newest_slots(float32_multiplier(s_x, s_wf, case.state_scale)))


def test_the_output_multiplier_is_computed_in_double():
    """A zero input leaves a zero state, so each output is its bias requantized: at these scales
    the float32 and double output multipliers round these two biases differently."""
    s_state, s_wt, s_y = 0.012652384117245674, 1.5212651305773761e-05, 0.0008230161620303988
    case = SvdfCase(
        "biases", 1, 1, 2, 1, 1, state_scale=s_state, time_scale=s_wt, output_scale=s_y, output_zero_point=0
    )
    graph = svdf_graph(case)
    biases = np.array([-425455, 425455], np.int32)
    graph = graph.with_tensors(replace(graph["bias"], data=biases))
    inputs = [np.full((1, 1), case.input_zero_point, np.int8)]
    theirs = tflm_outputs(to_tflite(graph), inputs, 1)[0]
    assert np.array_equal(theirs, ref.outputs(graph, inputs)[0])
    with_float32 = fx.multiply_by_quantized_multiplier(biases, *float32_multiplier(s_state, s_wt, s_y))
    assert not np.array_equal(theirs.ravel(), np.clip(with_float32, -128, 127))


@pytest.mark.parametrize("case", CASES[1:5], ids=lambda c: c.name)
def test_svdf_read_back_gives_the_same_op(case):
    graph = svdf_graph(case)
    (op,) = parse_tflite(to_tflite(graph)).ops
    assert op.kind == "SVDF"
    assert op.attrs == graph.ops[0].attrs
    assert len(op.inputs) == 4  # a bias-less op is written with zeros, which TFLM needs


def test_a_bias_less_file_reads_as_a_bias_less_op_and_crashes_tflm(monkeypatch, tmp_path):
    """TFLite allows no bias (-1) but TFLM's int8 Prepare reads its scale anyway: it crashes,
    which is why tinyq writes a zero bias. tinyq reads such a file as an op without bias."""
    graph = svdf_graph(CASES[3])
    monkeypatch.setattr(SvdfOp, "zero_bias", staticmethod(lambda writer, op: -1))
    model = to_tflite(graph)
    read = parse_tflite(model)
    assert len(read.ops[0].inputs) == 3
    inputs = random_inputs(graph, 1, seed=1)[0]
    assert np.array_equal(ref.outputs(read, inputs)[0], ref.outputs(graph, inputs)[0])
    path = tmp_path / "no_bias.tflite"
    path.write_bytes(model)
    script = (
        "import sys, numpy as np; sys.path.insert(0, 'tests'); from support.tflm import tflm_outputs; "
        f"tflm_outputs(open({str(path)!r}, 'rb').read(), [np.zeros((2, 7), np.int8)], 1)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode < 0  # killed by a signal (SIGSEGV with the pinned TFLM), not an error return


def refuse(graph: ir.Graph, match: str):
    with pytest.raises(ir.IRError, match=match):
        ir.verify(graph)


@pytest.fixture
def graph():
    return svdf_graph(CASES[1])


def test_refuses_int8_time_weights(graph):
    w = graph["w_time"]
    refuse(graph.with_tensors(replace(w, dtype="int8", data=w.data.astype(np.int8))), "SVDF supports")


def test_refuses_per_channel_weights(graph):
    w = graph["w_feature"]
    per_channel = QParams.per_channel(np.full(w.shape[0], 0.01), 0)
    refuse(graph.with_tensors(replace(w, qparams=per_channel)), "per-tensor symmetric int8")


def test_refuses_time_weights_with_a_zero_point(graph):
    refuse(graph.with_tensors(replace(graph["w_time"], qparams=QParams.per_tensor(TIME_SCALE, 3))), "symmetric int16")


def test_refuses_a_3d_input(graph):
    x, y = graph["x"], graph["y"]
    refuse(graph.with_tensors(replace(x, shape=(1, 1, 7)), replace(y, shape=(1, 1, 3))), "must be 2-D")


def test_refuses_a_bias_at_another_scale(graph):
    refuse(graph.with_tensors(replace(graph["bias"], qparams=QParams.per_tensor(1e-3))), "bias 'bias' scale")


def test_refuses_filters_not_a_multiple_of_rank(graph):
    op = graph.ops[0]
    refuse(graph.replace(ops=(replace(op, attrs=replace(op.attrs, rank=4)),)), "not a multiple of rank 4")


def test_tflm_has_no_int16_activation_svdf(capfd):
    """TFLM's SVDF Prepare takes int8 or float32 inputs only: an int16-activation model fails."""
    graph = svdf_graph(CASES[1])
    x, y = graph["x"], graph["y"]
    graph = graph.with_tensors(
        replace(x, dtype="int16", qparams=QParams.per_tensor(0.05)),
        replace(y, dtype="int16", qparams=QParams.per_tensor(0.25)),
    )
    refuse(graph, "SVDF supports")
    with pytest.raises(RuntimeError, match="failed to allocate"):
        tflm_outputs(write_flatbuffer(graph), [np.zeros((1, 7), np.int16)], 1)
    assert "input->type == kTfLiteFloat32 || input->type == kTfLiteInt8" in "".join(capfd.readouterr())


def test_svdf_models_in_qemu_match_the_reference(tmp_path):
    """Four SVDF layers side by side in one firmware, built by the Arm toolchain, run in QEMU (Cortex-M4)."""
    graph = side_by_side({c.name: svdf_graph(c) for c in CASES[1:5]}, "svdfs")
    assert_bit_exact_in_qemu(graph, "mps2_an386", tmp_path, random_inputs(graph, 2, seed=13), "SVDF sample")


def svdf_frames(graph, count: int, seed: int) -> list[np.ndarray]:
    return [inputs[0] for inputs in random_inputs(graph, count, seed=seed)]


@pytest.mark.parametrize("case", CASES[1:], ids=lambda c: c.name)
def test_streaming_svdf_keeps_its_state_as_tflm_does(case, tmp_path):
    """Built --streaming, the state persists from call to call: frame by frame from a reset, the
    reference and the host C give what one TFLM interpreter gives over the same invocations."""
    graph = svdf_graph(case)
    framed = streaming(graph)
    frames = svdf_frames(graph, case.memory + 4, seed=len(case.name))
    expected = [step[0] for step in frame_outputs(graph, frames)]
    theirs = tflm_frames(to_tflite(graph), frames, ["y"])
    assert all(np.array_equal(t["y"].reshape(e.shape), e) for t, e in zip(theirs, expected))
    fresh = ref.outputs(graph, [frames[-1]])[0]
    assert np.array_equal(expected[-1], fresh) == (case.memory == 1)  # the state matters with a memory
    host = HostModel(framed, tmp_path)
    assert all(np.array_equal(host.run([f])[0], e) for f, e in zip(frames, expected))
    host.lib.tinyq_reset()
    assert np.array_equal(host.run([frames[0]])[0], expected[0])


def test_streaming_svdf_in_qemu_matches_tflm(tmp_path):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    graph = svdf_graph(CASES[1])
    frames = svdf_frames(graph, 14, seed=5)
    report = build(streaming(graph), get_board("mps2_an386"), tmp_path / "fw", source="svdf", log=lambda m: None)
    assert report.model.streaming and report.memory.arena_bytes > 0
    np.save(tmp_path / "sequence.npy", np.concatenate(frames))
    result = bench(tmp_path / "fw", emulate=True, sequence_path=tmp_path / "sequence.npy")
    theirs = tflm_frames(to_tflite(graph), frames, ["y"])
    assert result["outputs"] == [t["y"].reshape(-1).tolist() for t in theirs]
    assert result["bit_exact"] and len(result["instructions_per_frame"]) == len(frames)
