"""tinyq's one IR: an immutable graph of typed ops over typed tensors.

Importers build it, passes return new graphs (`dataclasses.replace`,
`Graph.with_tensors`, ...), the reference executor and codegen read it. The
kind of an op is the class of its `attrs` (a frozen dataclass defined by the
op's module in tinyq/ops), never a string; `verify(graph)` checks structure,
refuses every dtype signature the op's kernels do not implement, and applies
the op's shape and quantization rules.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from tinyq import ops
from tinyq.errors import TinyqError


class IRError(TinyqError):
    """The graph breaks an IR invariant."""


class Activation(enum.Enum):
    NONE = "none"
    RELU = "relu"
    RELU6 = "relu6"
    RELU_N1_TO_1 = "relu_n1_to_1"

    def float_range(self) -> tuple[float, float]:
        return {
            Activation.NONE: (-np.inf, np.inf),
            Activation.RELU: (0.0, np.inf),
            Activation.RELU6: (0.0, 6.0),
            Activation.RELU_N1_TO_1: (-1.0, 1.0),
        }[self]


DTYPES = ("int4", "int8", "int16", "int32", "int64", "float32")


@dataclass(frozen=True)
class QParams:
    """Affine quantization: real = scale * (q - zero_point).

    `axis` is the quantized dimension for per-channel parameters, None for
    per-tensor. Scales are float32 values (stored as Python floats).
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def __post_init__(self):
        if len(self.scale) != len(self.zero_point) or not self.scale:
            raise IRError("quantization needs as many zero points as scales (at least one)")
        if self.axis is None and len(self.scale) != 1:
            raise IRError("per-tensor quantization has exactly one scale")

    @classmethod
    def per_tensor(cls, scale: float, zero_point: int = 0) -> QParams:
        return cls((float(np.float32(scale)),), (int(zero_point),))

    @classmethod
    def per_channel(cls, scales, axis: int) -> QParams:
        scales = tuple(float(s) for s in np.asarray(scales, np.float32))
        return cls(scales, (0,) * len(scales), axis)

    @property
    def per_channel_quantized(self) -> bool:
        return self.axis is not None

    @property
    def s(self) -> float:
        """The per-tensor scale (error for per-channel parameters)."""
        if self.axis is not None:
            raise IRError("per-channel quantization has no single scale")
        return self.scale[0]

    @property
    def zp(self) -> int:
        if self.axis is not None:
            raise IRError("per-channel quantization has no single zero point")
        return self.zero_point[0]


@dataclass(frozen=True, eq=False)
class Tensor:
    """A typed tensor; constants carry read-only `data`."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    qparams: QParams | None = None
    data: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise IRError(f"tensor {self.name!r}: unknown dtype {self.dtype!r}")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.data is not None:
            data = np.array(self.data, copy=True)
            if tuple(data.shape) != self.shape:
                raise IRError(f"tensor {self.name!r}: data shape {data.shape} != {self.shape}")
            data.flags.writeable = False
            object.__setattr__(self, "data", data)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def values_dtype(self) -> np.dtype:
        """The numpy dtype its values are held in (int4 values in int8)."""
        return np.dtype("int8" if self.dtype == "int4" else self.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes in memory (int4 packs two values per byte)."""
        if self.dtype == "int4":
            return (self.size + 1) // 2
        return self.size * np.dtype(self.dtype).itemsize


# --- attribute types shared by several op kinds ----------------------------


@dataclass(frozen=True)
class Padding2D:
    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


@dataclass(frozen=True)
class Op:
    name: str
    attrs: Any  # the attrs dataclass of the op's kind (see tinyq.ops)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def kind(self) -> str:
        """The op's TFLite operator name."""
        return ops.definition(self).name


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    tensors: Mapping[str, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # An input whose layout tinyq changed (an NCHW input deployed NHWC: an ONNX model's, or one whose
    # TRANSPOSE was folded away): the deployed tensor is np.transpose(data in the model's own layout,
    # perm), batch axis included.
    input_perms: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "tensors", MappingProxyType(dict(self.tensors)))
        object.__setattr__(self, "input_perms", MappingProxyType(dict(self.input_perms)))
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))

    def __getitem__(self, name: str) -> Tensor:
        return self.tensors[name]

    def producers(self) -> dict[str, Op]:
        return {out: op for op in self.ops for out in op.outputs}

    def consumers(self) -> dict[str, list[Op]]:
        result: dict[str, list[Op]] = {name: [] for name in self.tensors}
        for op in self.ops:
            for name in op.inputs:
                result[name].append(op)
        return result

    def replace(self, **changes) -> Graph:
        return replace(self, **changes)

    def with_tensors(self, *tensors: Tensor) -> Graph:
        merged = dict(self.tensors)
        merged.update({t.name: t for t in tensors})
        return replace(self, tensors=merged)

    def pruned(self) -> Graph:
        """Drop tensors no op or graph boundary refers to."""
        used = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(op.inputs)
            used.update(op.outputs)
        return replace(self, tensors={n: t for n, t in self.tensors.items() if n in used})


def _signature_error(definition: ops.OpDef, ins: list[Tensor], outs: list[Tensor]) -> str:
    hybrid = any(t.dtype == "float32" for t in ins + outs) and any(t.is_constant and t.dtype != "float32" for t in ins)
    return (
        f"dtypes {ops.signature_of(ins, outs)} are not implemented; {definition.name} supports "
        f"{definition.supported()}"
        + (
            "; float activations with integer weights (a dynamic-range "
            "'hybrid' model) are not supported: use the float32 or the fully "
            "int8 model"
            if hybrid
            else ""
        )
    )


def _check_params(where: str, definition: ops.OpDef, op: Op, ins: list[Tensor], outs: list[Tensor]) -> None:
    """An integer op's parameters must exist as TFLM computes them (a softmax input scale
    below 2^-26 has none, say): refuse it here, not in the middle of the reference or C."""
    if all(t.dtype == "float32" for t in ins + outs):
        return
    try:
        definition.params(op.attrs, ins, outs)
    except (ValueError, OverflowError, ZeroDivisionError) as err:
        raise IRError(f"{where}: its quantization has no integer form in TFLM's arithmetic ({err})") from None


def verify(graph: Graph) -> Graph:
    """Check the graph's invariants; return it unchanged, or raise IRError."""
    tensors = graph.tensors
    for name in graph.inputs + graph.outputs:
        if name not in tensors:
            raise IRError(f"graph boundary names unknown tensor {name!r}")
    for name, perm in graph.input_perms.items():
        if name not in graph.inputs:
            raise IRError(f"input_perms names {name!r}, which is not a graph input")
        if sorted(perm) != list(range(len(tensors[name].shape))) or perm[0] != 0:
            raise IRError(f"input_perms of {name!r}: {perm} does not permute its axes with the batch first")
    available = set(graph.inputs) | {n for n, t in tensors.items() if t.is_constant}
    produced: set[str] = set()
    names: set[str] = set()
    for index, op in enumerate(graph.ops):
        try:
            definition = ops.definition(op)
        except KeyError:
            raise IRError(f"op {index} ({op.name!r}): unknown attrs type {type(op.attrs).__name__}") from None
        where = f"op {index} ({definition.name} {op.name!r})"
        if op.name in names:
            raise IRError(f"{where}: duplicate op name")
        names.add(op.name)
        for name in op.inputs:
            if name not in tensors:
                raise IRError(f"{where}: unknown input tensor {name!r}")
            if name not in available:
                raise IRError(f"{where}: input {name!r} is used before it is produced")
        for name in op.outputs:
            if name not in tensors:
                raise IRError(f"{where}: unknown output tensor {name!r}")
            if name in produced or name in graph.inputs or tensors[name].is_constant:
                raise IRError(f"{where}: tensor {name!r} is written twice")
            produced.add(name)
            available.add(name)
        ins, outs = [tensors[n] for n in op.inputs], [tensors[n] for n in op.outputs]
        if not definition.implements(ins, outs):
            raise IRError(f"{where}: {_signature_error(definition, ins, outs)}")
        try:
            definition.check(op.attrs, ins, outs)
        except IRError as err:
            raise IRError(f"{where}: {err}") from None
        _check_params(where, definition, op, ins, outs)
    for name in graph.outputs:
        if name not in available:
            raise IRError(f"graph output {name!r} is never produced")
    from tinyq.ops.variable import check_variables  # the op modules import this module

    check_variables(graph)
    return graph
