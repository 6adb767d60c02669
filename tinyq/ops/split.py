"""SPLIT (equal parts) and SPLIT_V (given sizes): the input cut along one axis into consecutive
parts, each output sharing the input's quantization. SPLIT's TFLite operands come axis first;
SPLIT_V's sizes may hold one -1 (the rest), resolved from the output shapes at import.
Kernel: strided_copy_s8 (one walk per part: [outer, part] blocks).

int16 (16x8): TFLM's SPLIT and SPLIT_V move int16 values the same way. Kernel: strided_copy_s16."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import Unsupported, register
from tinyq.ops.common import expect
from tinyq.ops.strided_copy import (
    SPLIT_SIGNATURES,
    Copy,
    MovementOp,
    check_moved,
    forward_on_samples,
)


@dataclass(frozen=True)
class Split:
    axis: int
    num_splits: int


@dataclass(frozen=True)
class SplitV:
    axis: int
    sizes: tuple[int, ...]  # resolved: no -1


def _scalar_axis(r, index: int, what: str) -> int:
    axis = r.constant(index, what).reshape(-1)
    if axis.size != 1:
        raise Unsupported(f"{what} of {axis.size} values")
    return int(axis[0])


# int8, int16 (16x8) and float: one input, any number of outputs of its dtype


class _SplitBase(MovementOp):
    signatures = SPLIT_SIGNATURES

    def part_sizes(self, a, dim: int) -> tuple[int, ...]:
        raise NotImplementedError

    def check(self, a, ins, outs):
        expect(len(ins) == 1 and len(outs) >= 1, "expects one input and at least one output")
        x = ins[0]
        rank = len(x.shape)
        expect(-rank <= a.axis < rank, f"axis {a.axis} outside a rank-{rank} input")
        axis = a.axis % rank
        sizes = self.part_sizes(a, x.shape[axis])
        expect(len(sizes) == len(outs), f"{len(outs)} outputs for {len(sizes)} parts")
        for y, size in zip(outs, sizes):
            shape = x.shape[:axis] + (size,) + x.shape[axis + 1 :]
            expect(y.shape == shape, f"output {y.name!r} shape {y.shape}, expected {shape}")
        check_moved(ins, outs, self.name)

    def reference(self, a, p, ins, in_tensors, outs):
        axis = a.axis % len(in_tensors[0].shape)
        sizes = self.part_sizes(a, in_tensors[0].shape[axis])
        return tuple(np.split(ins[0], np.cumsum(sizes)[:-1], axis=axis + 1))

    def forward(self, tf, op, graph, xs):
        x = graph[op.inputs[0]]
        axis = op.attrs.axis % len(x.shape)
        sizes = list(self.part_sizes(op.attrs, x.shape[axis]))
        return forward_on_samples(tf, op, graph, xs, lambda v: tf.split(v[0], sizes, axis=axis + 1))

    def copies(self, op, graph):
        x = graph[op.inputs[0]]
        axis = op.attrs.axis % len(x.shape)
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        inner = int(np.prod(x.shape[axis + 1 :], dtype=np.int64))
        walks, start = [], 0
        for k, size in enumerate(self.part_sizes(op.attrs, x.shape[axis])):
            row = (x.shape[axis] * inner, 1)
            walks.append(Copy((outer, size * inner), row, (size * inner, 1), input_offset=start * inner, output=k))
            start += size
        return walks


@register
class SplitOp(_SplitBase):
    attrs = Split
    name = "SPLIT"

    def part_sizes(self, a, dim):
        expect(a.num_splits > 0 and dim % a.num_splits == 0, f"{dim} does not split into {a.num_splits} parts")
        return (dim // a.num_splits,) * a.num_splits

    def read_tflite(self, r, op, inputs, outputs):
        axis = _scalar_axis(r, inputs[0], "SPLIT axis")
        return Split(axis, int(r.options(op, "SplitOptions").NumSplits())), inputs[1:2]

    def write_tflite(self, writer, op):
        axis = writer.constant(f"{op.name}/axis", np.array(op.attrs.axis, np.int32))
        writer.add_op(
            "SPLIT",
            [axis, writer.tensor(op.inputs[0])],
            [writer.tensor(n) for n in op.outputs],
            writer.options("SplitOptions", NumSplits=op.attrs.num_splits),
        )


@register
class SplitVOp(_SplitBase):
    attrs = SplitV
    name = "SPLIT_V"

    def part_sizes(self, a, dim):
        expect(all(s >= 0 for s in a.sizes) and sum(a.sizes) == dim, f"sizes {a.sizes} do not add up to {dim}")
        return a.sizes

    def read_tflite(self, r, op, inputs, outputs):
        axis = _scalar_axis(r, inputs[2], "SPLIT_V axis")
        rank = len(r.tensor(inputs[0]).shape)
        if not -rank <= axis < rank:
            raise Unsupported(f"axis {axis} outside a rank-{rank} input")
        sizes = tuple(r.tensor(o).shape[axis] for o in outputs)  # the -1 the file may hold, resolved
        given = r.constant(inputs[1], "SPLIT_V sizes").reshape(-1)
        if len(given) != len(sizes) or any(g not in (-1, s) for g, s in zip(given, sizes)):
            raise Unsupported(f"sizes {tuple(int(g) for g in given)} do not match the outputs' {sizes}")
        return SplitV(axis, sizes), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(
            "SPLIT_V",
            [
                writer.tensor(op.inputs[0]),
                writer.constant(f"{op.name}/size_splits", np.array(op.attrs.sizes, np.int32)),
                writer.constant(f"{op.name}/axis", np.array(op.attrs.axis, np.int32)),
            ],
            [writer.tensor(n) for n in op.outputs],
            writer.options("SplitVOptions", NumSplits=len(op.attrs.sizes)),
        )
