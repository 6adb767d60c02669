"""AIMET's quantization of an ONNX model (`sim.export` of aimet_torch or aimet_onnx: the ONNX
file plus its encodings JSON) deployed with AIMET's ranges and AIMET's rounded weights.

Both encodings formats AIMET writes are read: 0.6.1 (`activation_encodings` and
`param_encodings` map a tensor name to a list of one encoding, or one per output channel:
`bitwidth`, `dtype`, `is_symmetric`, `scale`, `offset`, `min`, `max`) and 1.0.0 (lists of
entries with `name`, `dtype`, `enc_type`, `bw`, `is_sym`, `scale` and `offset` lists). AIMET's
grid is unsigned: x = scale (q + offset), q in [0, 2^bw - 1].

What maps exactly to TFLite Micro's arithmetic, and what tinyq adjusts:
- 8-bit activations (asymmetric or symmetric): exactly, as int8 with zero point -(offset + 128).
- symmetric weights of 8 bits or fewer, per tensor or per output channel: exactly; each weight
  is AIMET's integer round(w / scale) (AIMET rounds to nearest; AdaRound's exported weights
  are already on the grid, so its rounding is kept), held in int8 or, at 4 bits or fewer,
  packed int4.
- asymmetric weights (TFLM's kernels take symmetric ones only): requantized symmetric over the
  encoding's larger magnitude, round to nearest, with a note; accuracy can differ slightly
  from AIMET's simulation.
- biases: AIMET leaves them float (or 32-bit); tinyq quantizes them at input x weight scale,
  as TFLM does.
- where TFLM constrains a tensor (a pooling or reshape output shares its input's quantization;
  SOFTMAX/LOGISTIC outputs are fixed) the constraint wins, as for tinyq's own quantization.
Refused in one line: a file that is not an encodings JSON, a tensor name the model does not
have, an activation of another bit width than 8, a tensor the deployment needs that has no
encoding, weights a BatchNormalization changed after AIMET encoded them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyq import ir
from tinyq.errors import TinyqError
from tinyq.ops.affine import weight_axis
from tinyq.quant.convert import WeightQuant

TRUE = {True, "True", "true"}


@dataclass(frozen=True)
class Encoding:
    """One tensor's encoding: per tensor (one scale) or per output channel."""

    bits: int
    symmetric: bool
    scale: np.ndarray
    offset: np.ndarray


@dataclass(frozen=True)
class Encodings:
    activations: dict[str, Encoding]
    params: dict[str, Encoding]
    path: str


def load_encodings(path: str | Path) -> Encodings:
    path = Path(path)
    if not path.exists():
        raise TinyqError(f"encodings file {path} does not exist")
    try:
        data = json.loads(path.read_text())
        return Encodings(_group(data["activation_encodings"]), _group(data["param_encodings"]), str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TinyqError(f"{path} is not an AIMET encodings file (not JSON: {err})") from None
    except (KeyError, TypeError, ValueError) as err:
        raise TinyqError(f"{path} is not an AIMET encodings file ({type(err).__name__}: {err})") from None


def _group(entries) -> dict[str, Encoding]:
    if isinstance(entries, dict):  # 0.6.1: name -> [encoding per channel]
        return {name: _legacy(name, per_channel) for name, per_channel in entries.items()}
    return {entry["name"]: _v1(entry) for entry in entries}  # 1.0.0


def _legacy(name: str, per_channel: list) -> Encoding:
    if not isinstance(per_channel, list) or not per_channel:
        raise ValueError(f"encoding of {name!r} is not a list of encodings")
    first = per_channel[0]
    if any(e.get("dtype", "int") != "int" for e in per_channel):
        raise ValueError(f"{name!r} has a float encoding; tinyq deploys integer ones")
    return Encoding(
        int(first["bitwidth"]),
        first.get("is_symmetric") in TRUE,
        np.array([float(e["scale"]) for e in per_channel]),
        np.array([int(e["offset"]) for e in per_channel]),
    )


def _v1(entry: dict) -> Encoding:
    if str(entry.get("dtype", "INT")).upper() != "INT":
        raise ValueError(f"{entry['name']!r} has a float encoding; tinyq deploys integer ones")
    return Encoding(
        int(entry["bw"]),
        entry.get("is_sym") in TRUE,
        np.asarray(entry["scale"], np.float64).reshape(-1),
        np.asarray(entry.get("offset", [0] * len(entry["scale"])), np.int64).reshape(-1),
    )


def activation_qparams(encodings: Encodings, converter) -> dict[str, ir.QParams]:
    """int8 quantization of each encoded activation's IR tensor."""
    unknown = sorted(set(encodings.activations) - set(converter.values) - set(converter.constants))
    if unknown:
        raise TinyqError(f"{encodings.path} encodes activation {unknown[0]!r}, which the ONNX model does not have")
    out = {}
    for name in converter.values:  # in graph order: a fused ReLU's encoding (after its conv's) wins
        e = encodings.activations.get(name)
        if e is None:
            continue
        if e.bits != 8 or e.scale.size != 1:
            raise TinyqError(
                f"{encodings.path}: activation {name!r} is encoded with {e.bits} bits"
                f"{' per channel' if e.scale.size > 1 else ''}; tinyq deploys 8-bit per-tensor activations"
            )
        out[converter.values[name].tensor] = ir.QParams.per_tensor(float(e.scale[0]), -(int(e.offset[0]) + 128))
    return out


def encoded_weights(encodings: Encodings, graph: ir.Graph, converter, weighted) -> tuple[dict[str, WeightQuant], list]:
    """Each weighted op's WeightQuant from its weights' encoding, and notes on what was adjusted."""
    known = set(converter.weight_sources.values()) | set(converter.constants)
    unknown = sorted(set(encodings.params) - known)
    if unknown:
        raise TinyqError(f"{encodings.path} encodes parameter {unknown[0]!r}, which the ONNX model does not have")
    weights, adjusted = {}, []
    for op in graph.ops:
        if not isinstance(op.attrs, weighted):
            continue
        source = converter.weight_sources.get(op.inputs[1])
        e = encodings.params.get(source)
        if e is None:
            raise TinyqError(f"{encodings.path} has no encoding for the weights {source!r} of {op.name!r}")
        if op.inputs[1] in converter.refolded:
            raise TinyqError(
                f"{op.name!r}: a BatchNormalization follows it in the ONNX model and changes the weights AIMET "
                "encoded; fold batch norms before creating the QuantizationSimModel"
            )
        weights[op.name] = _weight_quant(op, graph[op.inputs[1]].data, e, adjusted)
    notes = (
        [f"aimet: asymmetric weights of {', '.join(adjusted)} requantized symmetric (TFLM's kernels)"]
        if adjusted
        else []
    )
    return weights, notes


def _weight_quant(op: ir.Op, w: np.ndarray, e: Encoding, adjusted: list) -> WeightQuant:
    axis = weight_axis(op)
    if e.scale.size not in (1, w.shape[axis]):
        raise TinyqError(f"{op.name!r}: {e.scale.size} weight encodings for {w.shape[axis]} output channels")
    half = 1 << (e.bits - 1)
    scale = e.scale.astype(np.float64)
    if not e.symmetric or np.any(e.offset != -half):
        lo, hi = scale * e.offset, scale * (e.offset + 2 * half - 1)
        scale = np.maximum(np.abs(lo), np.abs(hi)) / (half - 1)
        adjusted.append(op.name)
    shape = [1] * w.ndim
    if scale.size > 1:
        shape[axis] = -1
    values = np.clip(np.round(w / scale.reshape(shape)), -half, half - 1).astype(np.int8)
    return WeightQuant(values, scale.astype(np.float32), axis if scale.size > 1 else None, e.bits)
