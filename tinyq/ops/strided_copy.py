"""What the data-movement ops share (TRANSPOSE, SLICE, STRIDED_SLICE, BROADCAST_TO,
DEPTH_TO_SPACE, SPACE_TO_DEPTH, PACK, UNPACK, SPLIT, SPLIT_V): int8 in, int8 out under the
same quantization, no arithmetic, and one C kernel, strided_copy_s8.

Each of these ops is, for every output, a walk over a view of that output whose axes step
through the input by fixed strides (negative for a reversed slice, 0 for a broadcast axis).
An op module describes its walks as `Copy` records; `Copy.simplified` drops axes of one
element and merges axes that are contiguous on both sides, so the kernel copies runs of
bytes (`block`) and loops only where the layout really changes. The ops' numpy references
are written in numpy's own terms (np.transpose, slicing, np.stack...), not from the walks,
so the C kernel and the reference check each other.

int16 (16x8): TFLM moves int16 values the same way; an op that takes them lists an int16
signature (TRANSPOSE, SLICE and STRIDED_SLICE WITH_INT16; SPLIT, SPLIT_V and UNPACK
SPLIT_SIGNATURES; PACK its own) and gets strided_copy_s16 (the template with int16_t
elements; the walks count elements, so they are unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import Tensor
from tinyq.ops import Kernel, OpDef, OutputQuant, Signature, Unsupported
from tinyq.ops.common import FLOAT, INT8, INT16, activation_tensor, expect, same_quant

MAX_RANK = 4  # the C kernels' tensors (dims4), as TFLM's STRIDED_SLICE limits them
MAX_COPY_AXES = 8  # TQ_COPY_MAX_AXES in strided_copy_s8.c.j2: loops after simplification

MOVEMENT_SIGNATURES = (Signature((INT8,), (INT8,)), Signature((FLOAT,), (FLOAT,)))


@dataclass(frozen=True)
class SeveralOutputs(Signature):
    """A signature whose one output dtype repeats (SPLIT, UNPACK: any number of outputs)."""

    def matches(self, ins: tuple[str, ...], outs: tuple[str, ...]) -> bool:
        return ins == self.inputs and len(outs) >= 1 and all(d == self.outputs[0] for d in outs)

    def __str__(self) -> str:
        return f"({', '.join(self.inputs)}) -> {self.outputs[0]}, ..."


SPLIT_SIGNATURES = (
    SeveralOutputs((INT8,), (INT8,)),
    SeveralOutputs((INT16,), (INT16,)),
    SeveralOutputs((FLOAT,), (FLOAT,)),
)


def row_major_strides(shape) -> list[int]:
    """Element strides of a C-contiguous tensor."""
    strides, step = [0] * len(shape), 1
    for axis in range(len(shape) - 1, -1, -1):
        strides[axis] = step
        step *= int(shape[axis])
    return strides


@dataclass(frozen=True)
class Copy:
    """output[output_offset + sum(i_k * output_strides[k])] = input[input_offset + sum(i_k *
    input_strides[k])] for every index i < counts (in elements, which are bytes in int8).
    `input` is the position of the op input read; `output` the op output written."""

    counts: tuple[int, ...]
    input_strides: tuple[int, ...]
    output_strides: tuple[int, ...]
    input_offset: int = 0
    output_offset: int = 0
    input: int = 0
    output: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.counts, dtype=np.int64))

    def simplified(self) -> tuple[list[tuple[int, int, int]], int]:
        """(loops as (count, input stride, output stride), contiguous block length): axes of one
        element dropped, neighbours contiguous on both sides merged, the last axis a block when
        it steps by one element on both sides."""
        axes = [list(a) for a in zip(self.counts, self.input_strides, self.output_strides) if a[0] != 1]
        merged: list[list[int]] = []
        for count, in_step, out_step in axes:
            if merged and merged[-1][1] == in_step * count and merged[-1][2] == out_step * count:
                merged[-1] = [merged[-1][0] * count, in_step, out_step]
            else:
                merged.append([count, in_step, out_step])
        block = 1
        if merged and merged[-1][1] == 1 and merged[-1][2] == 1:
            block = merged.pop()[0]
        loops = [tuple(a) for a in merged] or [(1, 0, 0)]  # C has no empty arrays: one pass
        return loops, block


def check_ranks(ctx, limit: int = MAX_RANK) -> None:
    """The C kernels take tensors of rank `limit` at most (TFLite allows more)."""
    for name in ctx.op.inputs + ctx.op.outputs:
        rank = len(ctx.graph[name].shape)
        if rank > limit:
            raise Unsupported(
                f"{ctx.op.name}: {ctx.op.kind} on a rank-{rank} tensor {name!r} is not supported by the C kernels "
                f"(at most {limit})"
            )


def copy_lowering(ctx, copies: list[Copy]) -> dict:
    """The template values of strided_copy_s8: one kernel call per non-empty walk."""
    check_ranks(ctx)
    calls = []
    for c in copies:
        if c.size == 0:
            continue
        loops, block = c.simplified()
        if len(loops) > MAX_COPY_AXES:
            raise Unsupported(f"{ctx.op.name}: a copy of {len(loops)} nested loops (the kernel has {MAX_COPY_AXES})")
        calls.append(
            {
                "loops": [list(a) for a in loops],
                "block": block,
                "input": ctx.operand(c.input),
                "input_offset": c.input_offset,
                "output": ctx.output(c.output),
                "output_offset": c.output_offset,
            }
        )
    return {"copies": calls}


def forward_on_samples(tf, op, graph, xs, fn):
    """A float forward pass written, like the references, on a sample axis in front of the graph's
    shapes (so the ops' axes may include the graph's leading one): tinyq.sim batches along the
    graph's leading dimension instead, (batch,) + shape[1:]. `fn(views)` gets the inputs with the
    sample axis (constants without) and returns the output or outputs with it."""
    views = [x if graph[n].is_constant else tf.reshape(x, (-1,) + graph[n].shape) for x, n in zip(xs, op.inputs)]
    ys = fn(views)
    ys = tuple(ys) if isinstance(ys, (tuple, list)) else (ys,)
    outs = tuple(tf.reshape(y, (-1,) + graph[n].shape[1:]) for y, n in zip(ys, op.outputs))
    return outs if len(op.outputs) > 1 else outs[0]


def batched(x: np.ndarray, t: Tensor, samples: int) -> np.ndarray:
    """A reference operand with the sample axis (a constant has none: it is shared)."""
    return np.broadcast_to(x[None], (samples,) + x.shape) if t.is_constant else x


def samples_of(ins, in_tensors) -> int:
    return max((x.shape[0] for x, t in zip(ins, in_tensors) if not t.is_constant), default=1)


def check_moved(ins: list[Tensor], outs: list[Tensor], what: str) -> None:
    """Data movement's quantization rule: every output shares the (first) input's."""
    activation_tensor(ins[0], "input")
    for y in outs:
        expect(y.size > 0, f"output {y.name!r} of shape {y.shape} is empty (TFLM cannot allocate it)")
        activation_tensor(y, "output")
        same_quant(ins[0], y, what)


class MovementOp(OpDef):
    """One int8 input moved into the output(s) under the same quantization, by strided copies.
    Subclasses give `copies` (the walks) and the op's own rules, reference and TFLite mapping."""

    signatures = MOVEMENT_SIGNATURES
    output_quant = OutputQuant.INPUT

    def copies(self, op, graph) -> list[Copy]:
        raise NotImplementedError

    def params(self, attrs, ins, outs):
        return None  # data movement: no arithmetic

    def propagate_range(self, op, ranges):
        return ranges[0]

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return Kernel("strided_copy_s16", "strided_copy_s8", {"int16": True})
        return Kernel("strided_copy_s8")

    def lower(self, ctx, kernel):
        return copy_lowering(ctx, self.copies(ctx.op, ctx.graph))
