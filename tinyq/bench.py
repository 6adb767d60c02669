"""`tinyq bench`: run a build on one input and check it against the integer reference."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyq import ref
from tinyq.build import MODEL_FILE, read_report, write_report
from tinyq.errors import TinyqError
from tinyq.importers.tflite import load_tflite
from tinyq.ir import Graph
from tinyq.target import host


def pattern_input(shape, dtype: str) -> np.ndarray:
    """The deterministic default input: byte i = (i*7+3) mod 256 (the MLPerf anchors' input)."""
    size = int(np.prod(shape))
    data = ((np.arange(size) * 7 + 3) % 256).astype(np.uint8)
    if dtype == "float32":
        return (data.astype(np.float32) / 127.5 - 1.0).reshape(shape)
    return data.view(np.int8).reshape(shape)


def load_inputs(graph: Graph, path: Path | None) -> list[np.ndarray]:
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
        if array.size != t.size:
            raise TinyqError(f"input {path} has shape {array.shape}; the model expects {list(t.shape)}")
        if t.dtype == "int8" and array.dtype != np.int8:
            raise TinyqError(f"input {path} has dtype {array.dtype}; the model expects int8 "
                             f"(quantize with scale {t.qparams.s:.6g} and zero point {t.qparams.zp})")
        result.append(array.reshape(t.shape).astype(t.dtype))
    return result


def bench(build_dir: Path, input_path: Path | None = None, runs: int = 1) -> dict:
    report = read_report(build_dir)
    graph = load_tflite(build_dir / MODEL_FILE)
    inputs = load_inputs(graph, input_path)
    expected = ref.outputs(graph, inputs)
    raw, ns = host.run(build_dir, b"".join(x.tobytes() for x in inputs), runs)
    outputs, offset = [], 0
    for name, exp in zip(graph.outputs, expected):
        t = graph[name]
        outputs.append(np.frombuffer(raw[offset:offset + t.nbytes], dtype=t.dtype).reshape(t.shape))
        offset += t.nbytes
    bit_exact = all(np.array_equal(o, e) for o, e in zip(outputs, expected))
    result = {"target": "host", "runs": runs, "latency_ms": ns / 1e6, "bit_exact": bit_exact,
              "outputs": [o.reshape(-1).tolist() for o in outputs]}
    report["bench"] = result
    write_report(build_dir, report)
    return result
