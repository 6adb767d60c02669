"""Model importers: a file in, an IR graph out."""
from __future__ import annotations

from pathlib import Path

from tinyq.errors import TinyqError
from tinyq.ir import Graph


def load_model(path: str | Path) -> Graph:
    """Load a .tflite (int8 or float) or Keras (.keras, .h5) model as IR."""
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
    raise TinyqError(f"{path}: unknown model format {suffix!r} (use .tflite, .keras or .h5)")
