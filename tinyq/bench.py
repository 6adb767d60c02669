"""`tinyq bench`: run a build on one input, measure it, check it against the integer reference.

The same code drives every target: the host runner, a QEMU-emulated board
(instructions counted exactly by the TCG plugin) and a real board on a serial
port (cycles from its counter, latency and energy from the board's figures).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyq import ref
from tinyq.boards import get_board
from tinyq.build import MODEL_FILE, write_report
from tinyq.data import model_layout_shape, quantize_input, to_deployed_layout
from tinyq.errors import TinyqError
from tinyq.importers.tflite import load_tflite
from tinyq.ir import Graph
from tinyq.report import read_report
from tinyq.streaming import frame_outputs
from tinyq.target import Session, target_of


def pattern_input(shape, dtype: str) -> np.ndarray:
    """The deterministic default input: byte i = (i*7+3) mod 256 (the MLPerf anchors' input),
    as int8 codes (int16: the same codes times 256, over the whole int16 range)."""
    size = int(np.prod(shape))
    data = ((np.arange(size) * 7 + 3) % 256).astype(np.uint8)
    if dtype == "float32":
        return (data.astype(np.float32) / 127.5 - 1.0).reshape(shape)
    if dtype == "int16":
        return (data.view(np.int8).astype(np.int16) * 256).reshape(shape)
    return data.view(np.int8).reshape(shape)


def load_inputs(graph: Graph, path: Path | None, perms: dict[str, list[int]] | None = None) -> list[np.ndarray]:
    """The inputs of one run, from `path` (integer or float, in the model's own layout: `perms`
    are the transposes of inputs whose layout the build changed), or the default pattern."""
    perms = perms or {}
    if path is None:
        return [pattern_input(graph[n].shape, graph[n].dtype) for n in graph.inputs]
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise TinyqError(f"cannot read input {path}: {err}") from None
    arrays = [loaded[k] for k in loaded.files] if isinstance(loaded, np.lib.npyio.NpzFile) else [loaded]
    if len(arrays) != len(graph.inputs):
        raise TinyqError(f"{path} holds {len(arrays)} arrays; the model has {len(graph.inputs)} inputs")
    result = []
    for array, name in zip(arrays, graph.inputs):
        t = graph[name]
        perm = perms.get(name)
        if array.size != t.size:
            expected = list(model_layout_shape(t.shape, perm))
            raise TinyqError(f"input {path} has shape {array.shape}; the model expects {expected}")
        integer = t.dtype in ("int8", "int16")
        if integer and np.issubdtype(array.dtype, np.floating):  # a float sample: quantize as TFLite does
            array = quantize_input(array, t.qparams.s, t.qparams.zp, t.dtype)
        elif integer and array.dtype != np.dtype(t.dtype):
            raise TinyqError(
                f"input {path} has dtype {array.dtype}; the model expects {t.dtype}, or float "
                f"values that tinyq quantizes (scale {t.qparams.s:.6g}, zero point {t.qparams.zp})"
            )
        array = to_deployed_layout(array.reshape(model_layout_shape(t.shape, perm)), perm)
        result.append(array.astype(t.dtype))
    return result


def _unpack(graph: Graph, raw: bytes) -> list[np.ndarray]:
    outputs, offset = [], 0
    for name in graph.outputs:
        t = graph[name]
        outputs.append(np.frombuffer(raw[offset : offset + t.nbytes], dtype=t.dtype).reshape(t.shape))
        offset += t.nbytes
    return outputs


def load_sequence(graph: Graph, path: Path) -> list[np.ndarray]:
    """A streaming build's input frames from `path`: (time, features...) or (1, time, features...),
    integer or float (quantized as TFLite does)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise TinyqError(f"cannot read sequence {path}: {err}") from None
    array = loaded[loaded.files[0]] if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    t = graph[graph.inputs[0]]
    features = t.size  # one step of one sequence
    steps = array.shape[1] if array.ndim > 2 and array.shape[0] == 1 and array.size > features else array.shape[0]
    if array.ndim < 2 or array.size != steps * features:
        raise TinyqError(f"sequence {path} has shape {array.shape}; the model takes frames of {features} features")
    array = array.reshape(steps, features)
    if np.issubdtype(array.dtype, np.floating):
        array = quantize_input(array, t.qparams.s, t.qparams.zp, t.dtype)
    elif array.dtype != np.dtype(t.dtype):
        raise TinyqError(f"sequence {path} has dtype {array.dtype}; the model expects {t.dtype} or float values")
    return [frame.reshape(t.shape).astype(t.dtype) for frame in array]


def bench(
    build_dir: Path,
    *,
    input_path: Path | None = None,
    sequence_path: Path | None = None,
    runs: int = 1,
    emulate: bool = False,
    port: str | None = None,
    baud: int | None = None,
    profile: bool = False,
) -> dict:
    """Run the build once on one input (or, streaming, on each frame of a sequence from a reset)
    and check its outputs against the integer reference."""
    report = read_report(build_dir)
    board = get_board(report.board)
    graph = load_tflite(build_dir / MODEL_FILE)
    if sequence_path is not None and not report.model.streaming:
        raise TinyqError("--sequence feeds a streaming build frame by frame: build it with --streaming")
    if sequence_path is not None:
        frames = load_sequence(graph, sequence_path)
        inputs, expected = [frames[0]], [o for step in frame_outputs(graph, frames) for o in step]
    else:
        frames = []
        inputs = load_inputs(graph, input_path, {t.name: t.perm for t in report.model.inputs if t.perm})
        expected = ref.outputs(graph, inputs)
    session = Session(
        b"".join(x.tobytes() for x in inputs),
        sum(graph[n].nbytes for n in graph.outputs),
        runs,
        profile,
        emulate,
        port,
        baud,
        tuple(f.tobytes() for f in frames),
    )
    result, raw = target_of(board).measure(build_dir, board, report, session)
    size = session.out_size
    outputs = [o for i in range(max(len(frames), 1)) for o in _unpack(graph, raw[i * size : (i + 1) * size])]
    result["bit_exact"] = len(outputs) == len(expected) and all(
        np.array_equal(o, e.reshape(o.shape)) for o, e in zip(outputs, expected)
    )
    result["outputs"] = [o.reshape(-1).tolist() for o in outputs]
    report.bench = result
    write_report(build_dir, report)
    return result
