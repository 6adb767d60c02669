"""REVERSE_V2: the order of the values along the given axes reversed (TFLM's reference moves int8
and int16 values as they are). A Keras Bidirectional layer's backward half, and a go_backwards
recurrent layer, read their sequence through it. Kernel: strided_copy_s8 (the input walked from
its last element backwards on the reversed axes). TFLM reverses adjacent axes only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import Unsupported, register
from tinyq.ops.common import WITH_INT16, count, expect, same_shape
from tinyq.ops.strided_copy import Copy, MovementOp, check_moved, forward_on_samples, row_major_strides


@dataclass(frozen=True)
class ReverseV2:
    axes: tuple[int, ...]  # non-negative, no batch offset (axis 0 is the tensor's first)


@register
class ReverseV2Op(MovementOp):
    attrs = ReverseV2
    name = "REVERSE_V2"
    signatures = WITH_INT16

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x = ins[0]
        expect(
            a.axes and len(set(a.axes)) == len(a.axes) and all(0 <= q < len(x.shape) for q in a.axes),
            f"axes {a.axes} for a rank-{len(x.shape)} input",
        )
        axes = sorted(a.axes)
        expect(axes == list(range(axes[0], axes[0] + len(axes))), f"axes {a.axes}: TFLM reverses adjacent axes only")
        same_shape(x, outs[0])
        check_moved(ins, outs, self.name)

    def reference(self, a, p, ins, in_tensors, outs):
        return np.flip(ins[0], tuple(q + 1 for q in a.axes))

    def forward(self, tf, op, graph, xs):
        axes = [q + 1 for q in op.attrs.axes]
        return forward_on_samples(tf, op, graph, xs, lambda v: tf.reverse(v[0], axes))

    def copies(self, op, graph):
        shape = graph[op.inputs[0]].shape
        strides = list(row_major_strides(shape))
        offset = 0
        for q in op.attrs.axes:
            offset += (shape[q] - 1) * strides[q]
            strides[q] = -strides[q]
        return [Copy(shape, tuple(strides), tuple(row_major_strides(shape)), input_offset=offset)]

    def read_tflite(self, r, op, inputs, outputs):
        axes = r.constant(inputs[1], "REVERSE_V2 axes").reshape(-1)
        rank = len(r.tensor(inputs[0]).shape)
        axes = tuple(sorted(int(q) + rank if q < 0 else int(q) for q in axes))
        if not axes or any(not 0 <= q < rank for q in axes) or len(set(axes)) != len(axes):
            raise Unsupported(f"axes {axes} for a rank-{rank} input")
        return ReverseV2(axes), inputs[:1]

    def write_tflite(self, writer, op):
        axes = writer.constant(f"{op.name}/axes", np.array(op.attrs.axes, np.int32))
        writer.add_op(
            "REVERSE_V2",
            [writer.tensor(op.inputs[0]), axes],
            [writer.tensor(op.outputs[0])],
            writer.options("ReverseV2Options"),
        )
