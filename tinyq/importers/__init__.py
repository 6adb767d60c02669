"""Model importers: a file in, an IR graph out."""

from __future__ import annotations

from pathlib import Path

from tinyq.errors import TinyqError
from tinyq.ir import Graph


def load_model(path: str | Path) -> Graph:
    """Load a .tflite (int8 or float), Keras (.keras, .h5) or float ONNX model as IR."""
    path = Path(path)
    if not path.exists():
        raise TinyqError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        from tinyq.importers.tflite import load_tflite

        return load_tflite(path)
    if suffix in (".keras", ".h5", ".hdf5"):
        from tinyq.importers.keras import load_keras

        return load_keras(path)
    if suffix == ".onnx":
        from tinyq.importers.onnx import load_onnx

        return load_onnx(path)
    raise TinyqError(f"{path}: unknown model format {suffix!r} (use .tflite, .keras, .h5 or .onnx)")


def is_integer_graph(graph: Graph) -> bool:
    """True when every op computes in integers (float only at a DEQUANTIZE output)."""
    return all(graph[op.outputs[0]].dtype != "float32" or op.kind == "DEQUANTIZE" for op in graph.ops)


def load_float_model(path: str | Path):
    """A float model to quantize: Keras (.keras, .h5), a float .tflite or a float ONNX model."""
    from tinyq.float_model import FloatModel
    from tinyq.importers.keras import load_float_keras

    path = Path(path)
    if path.suffix.lower() in (".keras", ".h5", ".hdf5"):
        if not path.exists():
            raise TinyqError(f"model file {path} does not exist")
        return load_float_keras(path)
    if path.suffix.lower() == ".onnx":
        from tinyq.importers.onnx import load_float_onnx

        return load_float_onnx(path)
    graph = load_model(path)
    if is_integer_graph(graph):
        raise TinyqError(f"{path} is already an int8 model: build or evaluate it as it is")
    return FloatModel(graph)
