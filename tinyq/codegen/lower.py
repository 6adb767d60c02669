"""Lowering: every op -> one call of its chosen kernel (template + the values it renders).

The kernel of each op is chosen once (`choose_kernels`, each op module's
`kernel` facet) and that record feeds both the memory plan and the lowering.
An op module's `lower` facet returns the C literals and expressions its
template's `layer()` macro renders, through a `LayerContext`; constant tables
(weights, biases, multipliers) are registered there and referenced by name.
The integer parameters come from the op's `params` facet, the numpy
reference's own source, so C and reference cannot disagree about them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyq import ir, ops
from tinyq.codegen.names import c_comment, c_identifier
from tinyq.errors import TinyqError
from tinyq.ops import Kernel
from tinyq.plan import MemoryPlan

_CTYPES = {"int8": "int8_t", "int32": "int32_t", "float32": "float", "int16": "int16_t"}
_PER_LINE = {"int8_t": 24, "uint8_t": 24, "int32_t": 8, "uint32_t": 8}
_SCALAR_TYPES = {"int8_t", "uint8_t", "int16_t", "int32_t", "uint32_t", "int64_t", "float"}


@dataclass
class CArray:
    """A constant array of a C scalar type (any shape, flattened), or of a struct of int32
    fields (tq_requant: a 2-D `values`, one row per struct)."""

    name: str
    ctype: str
    values: np.ndarray
    comment: str

    @property
    def is_struct(self) -> bool:
        return self.ctype not in _SCALAR_TYPES

    @property
    def count(self) -> int:
        return int(self.values.shape[0]) if self.is_struct else int(self.values.size)

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * (4 if self.is_struct else np.dtype(self.values.dtype).itemsize)

    @property
    def body(self) -> str:
        if self.is_struct:
            return ",\n".join("    { " + ", ".join(str(v) for v in row) + " }" for row in self.values.tolist())
        flat = self.values.reshape(-1).tolist()
        if self.ctype == "int64_t":  # the literal 9223372036854775808 does not exist in C: write INT64_MIN
            flat = ["INT64_MIN" if v == -(1 << 63) else v for v in flat]
        step = _PER_LINE.get(self.ctype, 8)
        return ",\n".join("    " + ", ".join(str(v) for v in flat[i : i + step]) for i in range(0, len(flat), step))


@dataclass
class Constants:
    arrays: list[CArray] = field(default_factory=list)

    def add(self, name: str, values: np.ndarray, ctype: str, comment: str) -> str:
        self.arrays.append(CArray(name, ctype, np.asarray(values), c_comment(comment, 200)))
        return name


@dataclass
class Layer:
    index: int
    ident: str
    kernel: Kernel
    comment: str
    scratch: str
    scratch_bytes: int
    args: dict


def choose_kernels(graph: ir.Graph, fast: bool = True, host: bool = False) -> dict[str, Kernel]:
    """The kernel of every op (fast ones where they are bit-exact, unless `fast` is off); with
    `host`, for the host evaluator: its host kernel where it has one, else the portable one."""
    kernels = {}
    for op in graph.ops:
        if graph[(op.outputs or op.inputs)[0]].dtype == "float32" and ops.kernel_params(op, graph) is None:
            raise TinyqError(f"{op.name}: float {op.kind} cannot be generated; quantize the model first")
        op_def = ops.definition(op)
        kernels[op.name] = (host and op_def.host_kernel(op, graph)) or op_def.kernel(op, graph, fast and not host)
    return kernels


class LayerContext:
    """What an op's `lower` facet needs: the op, the graph, the plan, the constants
    collector and the op's integer parameters."""

    def __init__(self, op: ir.Op, graph: ir.Graph, plan: MemoryPlan, consts: Constants, ident: str):
        self.op, self.graph, self.plan, self.consts, self.ident = op, graph, plan, consts, ident
        self.params = ops.kernel_params(op, graph)

    def tensor(self, i: int) -> ir.Tensor:
        return self.graph[self.op.inputs[i]]

    @property
    def out(self) -> ir.Tensor:
        return self.graph[self.op.outputs[0]]

    def pointer(self, name: str, const: bool) -> str:
        ctype = _CTYPES[self.graph[name].dtype]
        return f"({'const ' if const else ''}{ctype} *)(tq_arena + {self.plan.offsets[name]})"

    def state(self, owner: str | None = None) -> str:
        """The state kept in the arena across calls (its kernel's state_bytes) of this op, or of
        op `owner` (a variable's assignment writes where its read keeps the value)."""
        return f"(tq_arena + {self.plan.state[owner or self.op.name][0]})"

    def input(self, i: int = 0) -> str:
        return self.pointer(self.op.inputs[i], const=True)

    def output(self, i: int = 0) -> str:
        return self.pointer(self.op.outputs[i], const=False)

    def operand(self, i: int) -> str:
        """Input i, wherever it is: the arena for an activation, a constant array in flash for a
        constant operand (a scalar, say)."""
        t = self.tensor(i)
        if not t.is_constant:
            return self.input(i)
        return self.constant(f"tq_k{i}_{self.ident}", t.data.reshape(-1), _CTYPES[t.dtype], self.weights_comment(t))

    def constant(self, name: str, values: np.ndarray, ctype: str, comment: str) -> str:
        """A constant array in flash; returns its C name."""
        return self.consts.add(name, values, ctype, comment)

    def weights_comment(self, t: ir.Tensor) -> str:
        q = t.qparams
        quant = (
            "" if q is None else (f", per-channel axis {q.axis}" if q.per_channel_quantized else f", scale {q.s:.6g}")
        )
        return f"{self.op.kind} {self.op.name}: {t.name} {t.dtype}{list(t.shape)}{quant}"


def lower(graph: ir.Graph, plan: MemoryPlan, consts: Constants, kernels: dict[str, Kernel]) -> list[Layer]:
    layers = []
    for index, op in enumerate(graph.ops):
        ident = c_identifier(op.name, prefix=f"l{index:02d}_")
        kernel = kernels[op.name]
        try:
            args = ops.definition(op).lower(LayerContext(op, graph, plan, consts, ident), kernel)
        except ir.IRError as err:
            raise TinyqError(f"{op.name}: {err}") from None
        scratch_off, scratch_size = plan.scratch.get(op.name, (0, 0))
        out = graph[(op.outputs or op.inputs)[0]]
        arrow = "->" if op.outputs else "<-"
        layers.append(
            Layer(
                index=index,
                ident=ident,
                kernel=kernel,
                comment=c_comment(f"{op.kind} {op.name} {arrow} {out.name} {list(out.shape)}"),
                scratch=f"tq_arena + {scratch_off}" if scratch_size else "0",
                scratch_bytes=scratch_size,
                args=args,
            )
        )
    return layers
