"""TFLite Micro's streaming form: models whose state lives in resource variables (CALL_ONCE,
VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE), made by the TFLite converter. Run frame by frame
from a reset, every tensor of every frame is bit-exact with TFLM (one interpreter, its variables
kept between invocations), and so are the host C, the file tinyq writes back and QEMU."""

from __future__ import annotations

import copy

import flatbuffers
import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as schema

from tinyq import ir, ref
from tinyq.errors import TinyqError
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.tflite import parse_tflite
from tinyq.ops import State
from tinyq.ops.variable import AssignVariable, ReadVariable
from tinyq.streaming import frame_outputs, streaming

from support.cli import assert_clean_error, tinyq
from support.env import require_tool
from support.hostlib import HostModel
from support.tflm import tflm_frames
from support.variables import VARIABLE_CASES, variable_tflite

FRAMES = 14  # longer than every case's ring buffer, so the oldest frames are dropped


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("variable_models")


def frames_for(case, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = [rng.integers(-128, 128, case.frame_shape).astype(np.int8) for _ in range(FRAMES - 2)]
    return frames + [np.full(case.frame_shape, 127, np.int8), np.full(case.frame_shape, -128, np.int8)]


def reference_frames(graph, frames) -> list[dict[str, np.ndarray]]:
    state = State()
    return [ref.run(graph, [frame], state=state) for frame in frames]


@pytest.mark.parametrize("case", VARIABLE_CASES, ids=lambda c: c.name)
def test_every_tensor_of_every_frame_bit_exact_with_tflm(case, model_dir):
    data = variable_tflite(case, model_dir).read_bytes()
    graph = parse_tflite(data)
    reads = [op for op in graph.ops if isinstance(op.attrs, ReadVariable)]
    assert reads and len(reads) == sum(isinstance(op.attrs, AssignVariable) for op in graph.ops)
    frames = frames_for(case)
    mine_frames = reference_frames(graph, frames)
    for t, (mine, theirs) in enumerate(zip(mine_frames, tflm_frames(data, frames, mine_frames[0]))):
        for name, value in mine.items():
            assert np.array_equal(theirs[name].reshape(value.shape), value), f"frame {t}, tensor {name!r}"


@pytest.mark.parametrize("case", VARIABLE_CASES[::2], ids=lambda c: c.name)
def test_host_c_frame_by_frame_and_after_a_reset(case, model_dir, tmp_path):
    graph = parse_tflite(variable_tflite(case, model_dir).read_bytes())
    host = HostModel(graph, tmp_path)
    frames = frames_for(case, seed=1)
    expected = [step[0] for step in frame_outputs(graph, frames)]
    assert all(np.array_equal(host.run([f])[0], want) for f, want in zip(frames, expected))
    host.lib.tinyq_reset()
    assert all(np.array_equal(host.run([f])[0], want) for f, want in zip(frames[:3], expected))


def test_state_changes_the_outputs(model_dir):
    """The variables matter: the same frame gives other outputs once the ring holds other frames."""
    case = VARIABLE_CASES[0]
    graph = parse_tflite(variable_tflite(case, model_dir).read_bytes())
    frame, other = frames_for(case)[:2]
    first = frame_outputs(graph, [frame, frame])
    after = frame_outputs(graph, [other, frame])
    assert not np.array_equal(first[1][0], after[1][0])
    assert np.array_equal(ref.outputs(graph, [frame])[0], first[0][0])  # a fresh state is the initial one


def test_an_initial_value_other_than_zero_is_kept(model_dir):
    case = next(c for c in VARIABLE_CASES if c.kind == "average")
    graph = parse_tflite(variable_tflite(case, model_dir).read_bytes())
    read = next(op for op in graph.ops if isinstance(op.attrs, ReadVariable))
    initial = graph[read.inputs[0]]
    assert np.allclose((initial.data.astype(np.float64) - initial.qparams.zp) * initial.qparams.s, 0.5, atol=0.01)


@pytest.mark.parametrize("case", VARIABLE_CASES[:4:3], ids=lambda c: c.name)
def test_written_back_runs_in_tflm_frame_for_frame(case, model_dir):
    """tinyq's own file (CALL_ONCE and its init subgraph, VAR_HANDLE per variable) runs in TFLM
    with the same outputs, and reads back to the same graph."""
    graph = parse_tflite(variable_tflite(case, model_dir).read_bytes())
    written = to_tflite(graph)
    frames = frames_for(case, seed=2)
    mine = frame_outputs(graph, frames)
    output = graph.outputs[0]
    theirs = tflm_frames(written, frames, [output])
    assert all(np.array_equal(t[output].reshape(m[0].shape), m[0]) for m, t in zip(mine, theirs))
    assert frame_outputs(parse_tflite(written), frames)[-1][0].tolist() == mine[-1][0].tolist()


def test_streaming_keeps_a_frame_wise_model_as_it_is(model_dir):
    graph = parse_tflite(variable_tflite(VARIABLE_CASES[0], model_dir).read_bytes())
    assert streaming(graph).ops == graph.ops and streaming(graph).inputs == graph.inputs


def test_frames_in_qemu_equal_tflm(model_dir, tmp_path):
    """A ring-buffer model built for the M4 board: fed frame by frame over the serial link from a
    reset, each frame's outputs are TFLM's; the bench reports instructions per frame."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    case = VARIABLE_CASES[3]
    data = variable_tflite(case, model_dir).read_bytes()
    report = build(parse_tflite(data), get_board("mps2_an386"), tmp_path / "fw", source="vars", log=lambda m: None)
    assert report.model.streaming
    frames = frames_for(case, seed=3)
    np.save(tmp_path / "sequence.npy", np.concatenate(frames, axis=1)[0])
    result = bench(tmp_path / "fw", emulate=True, sequence_path=tmp_path / "sequence.npy")
    output = parse_tflite(data).outputs[0]
    assert result["outputs"] == [t[output].reshape(-1).tolist() for t in tflm_frames(data, frames, [output])]
    assert result["bit_exact"] and len(result["instructions_per_frame"]) == FRAMES


def _edited(data: bytes, edit) -> bytes:
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _opcode(model, index):
    code = model.operatorCodes[index]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _first(model, operators, kind):
    return next(op for op in operators if _opcode(model, op.opcodeIndex) == kind)


def _without_call_once(model):
    main = model.subgraphs[0]
    main.operators = [op for op in main.operators if _opcode(model, op.opcodeIndex) != schema.BuiltinOperator.CALL_ONCE]


def _init_from_activation(model):
    """The init subgraph assigns a tensor without data."""
    init = model.subgraphs[1]
    assign = _first(model, init.operators, schema.BuiltinOperator.ASSIGN_VARIABLE)
    init.tensors[assign.inputs[1]].buffer = 0


def _read_twice(model):
    main = model.subgraphs[0]
    read = _first(model, main.operators, schema.BuiltinOperator.READ_VARIABLE)
    second, value = copy.deepcopy(read), copy.deepcopy(main.tensors[read.outputs[0]])
    value.name = b"second_read"
    main.tensors.append(value)
    second.outputs = [len(main.tensors) - 1]
    main.operators.insert(main.operators.index(read) + 1, second)


def _assign_first(model):
    main = model.subgraphs[0]
    assign = _first(model, main.operators, schema.BuiltinOperator.ASSIGN_VARIABLE)
    main.operators.remove(assign)
    main.operators.insert(2, assign)  # after CALL_ONCE and VAR_HANDLE, before its value is produced


REFUSED = {
    "no CALL_ONCE": (_without_call_once, "has no initial value"),
    "init value not a constant": (_init_from_activation, "tinyq takes initial values that are constants"),
    "read twice": (_read_twice, "is read twice"),
    "assigned before it is produced": (_assign_first, "used before it is produced"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_variable_forms_tinyq_does_not_take_are_one_clear_error(name, model_dir, tmp_path):
    edit, message = REFUSED[name]
    path = tmp_path / "edited.tflite"
    path.write_bytes(_edited(variable_tflite(VARIABLE_CASES[0], model_dir).read_bytes(), edit))
    with pytest.raises(TinyqError, match=message):
        parse_tflite(path.read_bytes())
    assert_clean_error(tinyq("build", path, "--board", "mps2_an386", "-o", tmp_path / "fw"), message)


def test_an_assignment_without_a_read_is_refused():
    t = ir.Tensor("x", (1, 4), "int8", ir.QParams.per_tensor(0.1))
    graph = ir.Graph("g", {"x": t, "y": ir.Tensor("y", (1, 4), "int8", t.qparams)}, (), ("x",), ("x",))
    op = ir.Op("assign", AssignVariable("v"), ("x",), ())
    with pytest.raises(ir.IRError, match="assigned before it is read"):
        ir.verify(graph.replace(ops=(op,)))
