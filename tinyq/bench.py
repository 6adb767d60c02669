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


def bench(
    build_dir: Path,
    *,
    input_path: Path | None = None,
    runs: int = 1,
    emulate: bool = False,
    port: str | None = None,
    baud: int | None = None,
    profile: bool = False,
) -> dict:
    report = read_report(build_dir)
    board = get_board(report.board)
    graph = load_tflite(build_dir / MODEL_FILE)
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
    )
    result, raw = target_of(board).measure(build_dir, board, report, session)
    outputs = _unpack(graph, raw)
    result["bit_exact"] = all(np.array_equal(o, e) for o, e in zip(outputs, expected))
    result["outputs"] = [o.reshape(-1).tolist() for o in outputs]
    report.bench = result
    write_report(build_dir, report)
    return result
