"""SLICE and STRIDED_SLICE: a box of the input (STRIDED_SLICE: every stride-th element, backwards
for a negative stride, with axes dropped by the shrink mask), resolved as TFLM resolves it.
Kernel: strided_copy_s8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import Unsupported, register
from tinyq.ops.common import WITH_INT16, count, expect
from tinyq.ops.strided_copy import (
    Copy,
    MovementOp,
    check_moved,
    forward_on_samples,
    row_major_strides,
)

STRIDED_SLICE_MAX_RANK = 4  # TFLM's STRIDED_SLICE Prepare: "input dim should not exceed 4"


@dataclass(frozen=True)
class Slice:
    begin: tuple[int, ...]
    size: tuple[int, ...]  # resolved: no -1


@dataclass(frozen=True)
class StridedSlice:
    """TFLite's operands and masks as the file holds them (bit i of a mask is axis i)."""

    begin: tuple[int, ...]
    end: tuple[int, ...]
    strides: tuple[int, ...]
    begin_mask: int = 0
    end_mask: int = 0
    shrink_axis_mask: int = 0

    def axis_ranges(self, shape) -> list[tuple[int, int, int]]:
        """(start, stop, stride) per axis, as TFLM's Eval computes them
        (StridedSliceStartForAxis / StridedSliceEndForAxis)."""
        ranges = []
        for axis, size in enumerate(shape):
            stride = self.strides[axis]
            start = self.begin[axis] + (size if self.begin[axis] < 0 else 0)
            start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
            if self.begin_mask >> axis & 1:
                start = 0 if stride > 0 else size - 1
            if self.shrink_axis_mask >> axis & 1:
                stop = start if start >= size else start + 1
            else:
                stop = self.end[axis] + (size if self.end[axis] < 0 else 0)
                stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
                if self.end_mask >> axis & 1:
                    stop = size if stride > 0 else -1
            ranges.append((start, stop, stride))
        return ranges

    def shape(self, shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(the sliced shape with every axis, the output shape without the shrunk ones)."""
        full = tuple(len(range(*r)) for r in self.axis_ranges(shape))
        return full, tuple(d for axis, d in enumerate(full) if not self.shrink_axis_mask >> axis & 1)


def _strided_copy(x_shape, ranges) -> Copy:
    """The walk of a strided box: the output in order, the input from the box's first
    element by stride-multiplied steps."""
    strides = row_major_strides(x_shape)
    counts = tuple(len(range(*r)) for r in ranges)
    return Copy(
        counts,
        tuple(s * r[2] for s, r in zip(strides, ranges)),
        tuple(row_major_strides(counts)),
        input_offset=sum(s * r[0] for s, r in zip(strides, ranges)),
    )


def _vector(r, index: int, what: str, rank: int) -> tuple[int, ...]:
    values = r.constant(index, what).reshape(-1)
    if values.size != rank:
        raise Unsupported(f"{what} has {values.size} values for a rank-{rank} input")
    return tuple(int(v) for v in values)


@register
class SliceOp(MovementOp):
    attrs = Slice
    name = "SLICE"
    signatures = WITH_INT16

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        rank = len(x.shape)
        expect(len(a.begin) == rank and len(a.size) == rank, "one begin and one size per dimension")
        for b, s, d in zip(a.begin, a.size, x.shape):
            expect(0 <= b <= d and 0 <= s <= d - b, f"slice [{b}, {b + s}) outside a dimension of {d}")
        expect(y.shape == a.size, f"output shape {y.shape}, expected {a.size}")
        check_moved(ins, outs, self.name)

    def reference(self, a, p, ins, in_tensors, outs):
        return ins[0][(slice(None),) + tuple(slice(b, b + s) for b, s in zip(a.begin, a.size))]

    def forward(self, tf, op, graph, xs):
        a = op.attrs
        return forward_on_samples(tf, op, graph, xs, lambda v: tf.slice(v[0], [0, *a.begin], [-1, *a.size]))

    def copies(self, op, graph):
        a = op.attrs
        return [_strided_copy(graph[op.inputs[0]].shape, [(b, b + s, 1) for b, s in zip(a.begin, a.size)])]

    def read_tflite(self, r, op, inputs, outputs):
        shape = r.tensor(inputs[0]).shape
        begin = _vector(r, inputs[1], "SLICE begin", len(shape))
        size = _vector(r, inputs[2], "SLICE size", len(shape))
        return Slice(begin, tuple(d - b if s == -1 else s for b, s, d in zip(begin, size, shape))), inputs[:1]

    def write_tflite(self, writer, op):
        a = op.attrs
        writer.add_op(
            "SLICE",
            [
                writer.tensor(op.inputs[0]),
                writer.constant(f"{op.name}/begin", np.array(a.begin, np.int32)),
                writer.constant(f"{op.name}/size", np.array(a.size, np.int32)),
            ],
            [writer.tensor(op.outputs[0])],
            writer.options("SliceOptions"),
        )


@register
class StridedSliceOp(MovementOp):
    attrs = StridedSlice
    name = "STRIDED_SLICE"
    signatures = WITH_INT16

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        rank = len(x.shape)
        expect(rank <= STRIDED_SLICE_MAX_RANK, f"rank {rank}: TFLM's STRIDED_SLICE takes at most 4 dimensions")
        expect(len(a.begin) == len(a.end) == len(a.strides) == rank, "one begin, end and stride per dimension")
        expect(all(s != 0 for s in a.strides), "a stride of zero")
        for axis, (start, _, _) in enumerate(a.axis_ranges(x.shape)):
            if a.shrink_axis_mask >> axis & 1:
                expect(0 <= start < x.shape[axis], f"shrunk axis {axis} index {a.begin[axis]} out of range")
        shape = a.shape(x.shape)[1]
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        check_moved(ins, outs, self.name)

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0]
        for axis, r in enumerate(a.axis_ranges(in_tensors[0].shape)):
            x = np.take(x, np.arange(*r), axis=axis + 1)
        return x.reshape((x.shape[0],) + outs[0].shape)

    def forward(self, tf, op, graph, xs):
        ranges = op.attrs.axis_ranges(graph[op.inputs[0]].shape)

        def strided(views):
            x = views[0]
            for axis, r in enumerate(ranges):
                x = tf.gather(x, np.arange(*r, dtype=np.int32), axis=axis + 1)
            return x  # shrunk axes of one element: the wrapper's reshape drops them

        return forward_on_samples(tf, op, graph, xs, strided)

    def copies(self, op, graph):
        x = graph[op.inputs[0]]
        return [_strided_copy(x.shape, op.attrs.axis_ranges(x.shape))]

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "StridedSliceOptions")
        if o.EllipsisMask() or o.NewAxisMask():
            raise Unsupported("ellipsis and new-axis masks are not supported (TFLM ignores them)")
        if o.Offset():
            raise Unsupported("the offset form (end relative to begin) is not supported")
        rank = len(r.tensor(inputs[0]).shape)
        attrs = StridedSlice(
            _vector(r, inputs[1], "STRIDED_SLICE begin", rank),
            _vector(r, inputs[2], "STRIDED_SLICE end", rank),
            _vector(r, inputs[3], "STRIDED_SLICE strides", rank),
            int(o.BeginMask()),
            int(o.EndMask()),
            int(o.ShrinkAxisMask()),
        )
        return attrs, inputs[:1]

    def write_tflite(self, writer, op):
        a = op.attrs
        writer.add_op(
            "STRIDED_SLICE",
            [
                writer.tensor(op.inputs[0]),
                writer.constant(f"{op.name}/begin", np.array(a.begin, np.int32)),
                writer.constant(f"{op.name}/end", np.array(a.end, np.int32)),
                writer.constant(f"{op.name}/strides", np.array(a.strides, np.int32)),
            ],
            [writer.tensor(op.outputs[0])],
            writer.options(
                "StridedSliceOptions", BeginMask=a.begin_mask, EndMask=a.end_mask, ShrinkAxisMask=a.shrink_axis_mask
            ),
        )
