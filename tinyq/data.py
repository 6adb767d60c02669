"""Datasets for calibration and evaluation: `.npz` (arrays `x`, optional `y`) or a folder of `.npy` samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyq.errors import TinyqError
from tinyq.ir import Graph
from tinyq.ops.common import round_half_away_f32


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # float32, (N, *input shape without batch)
    y: np.ndarray | None = None  # integer labels (N,), or None


def load_dataset(path: str | Path, graph: Graph, *, samples: int | None = None, what: str = "data") -> Dataset:
    """Load and check samples against the graph's (single) input."""
    path = Path(path)
    if len(graph.inputs) != 1:
        raise TinyqError(f"{what}: models with {len(graph.inputs)} inputs are not supported for calibration data")
    perm = graph.input_perms.get(graph.inputs[0])
    want = model_layout_shape(graph[graph.inputs[0]].shape, perm)[1:]
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise TinyqError(f"{what} folder {path} holds no .npy files")
        x, y = np.stack([_load_npy(f) for f in files[:samples]]), None
    elif path.suffix == ".npz":
        try:
            archive = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise TinyqError(f"cannot read {what} {path}: {err}") from None
        if "x" not in archive.files:
            raise TinyqError(f"{what} {path} has no array 'x' (it has: {', '.join(archive.files) or 'none'})")
        x = archive["x"][:samples]
        y = archive["y"][:samples] if "y" in archive.files else None
    elif not path.exists():
        raise TinyqError(f"{what} {path} does not exist")
    else:
        raise TinyqError(f"{what} {path}: expected an .npz file or a folder of .npy files")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise TinyqError(f"{what} {path} has dtype {x.dtype}; expected numbers")
    if tuple(x.shape) == want:  # a single sample
        x = x[None]
    elif tuple(x.shape[1:]) != want:
        if x.ndim < 1 or int(np.prod(x.shape[1:])) != int(np.prod(want)):
            raise TinyqError(f"{what} {path} has samples of shape {list(x.shape[1:])}; the model expects {list(want)}")
        x = x.reshape((len(x),) + want)  # e.g. (N, 28, 28) for a (28, 28, 1) input
    x = to_deployed_layout(x.astype(np.float32), perm)
    if not np.all(np.isfinite(x)):
        raise TinyqError(f"{what} {path} contains NaN or infinite values")
    if y is not None:
        y = np.asarray(y).reshape(len(y), -1)
        if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
            raise TinyqError(f"{what} {path} has labels of dtype {y.dtype}; expected class indices or one-hot rows")
        y = y[:, 0] if y.shape[1] == 1 else np.argmax(y, axis=1)  # one-hot labels become indices
        bad = (y != np.round(y)) | (y < 0)
        if bad.any():
            raise TinyqError(f"{what} {path} has labels that are not class indices (e.g. {y[bad][0]:g})")
        y = y.astype(np.int64)
        if len(y) != len(x):
            raise TinyqError(f"{what} {path}: {len(x)} samples but {len(y)} labels")
    if len(x) == 0:
        raise TinyqError(f"{what} {path} holds no samples")
    return Dataset(x, y)


def model_layout_shape(shape, perm) -> tuple[int, ...]:
    """The shape of a deployed tensor in the model's own layout (see Graph.input_perms)."""
    if perm is None:
        return tuple(shape)
    own = [0] * len(shape)
    for axis, source in enumerate(perm):
        own[source] = shape[axis]
    return tuple(own)


def layout_note(shape, perm) -> str:
    """Why a deployed input's shape differs from the model's, for the user; '' if it does not."""
    if perm is None:
        return ""
    return (
        f"deployed as {list(shape)}: the model's {list(model_layout_shape(shape, perm))} input, transposed by "
        f"{list(perm)} (NHWC for the kernels); tinyq transposes data given in the model's layout"
    )


def to_deployed_layout(x: np.ndarray, perm) -> np.ndarray:
    """A batch in the model's own layout, as the deployed input takes it."""
    return x if perm is None else np.ascontiguousarray(np.transpose(x, perm))


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise TinyqError(f"cannot read {path}: {err}") from None


def quantize_input(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """float -> int8 (or int16) as TFLite's QUANTIZE computes it (round half away from zero)."""
    q = round_half_away_f32(np.asarray(x, np.float32) / np.float32(scale))
    info = np.iinfo(dtype)
    return np.clip(q + zero_point, info.min, info.max).astype(dtype)
