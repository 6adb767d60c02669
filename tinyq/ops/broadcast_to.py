"""BROADCAST_TO: the input repeated along its axes of one (and new leading axes) up to a shape.
Kernel: strided_copy_s8 (input stride 0 along the repeated axes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import register
from tinyq.ops.common import count, expect
from tinyq.ops.strided_copy import Copy, MovementOp, check_moved, forward_on_samples, row_major_strides


@dataclass(frozen=True)
class BroadcastTo:
    shape: tuple[int, ...]


def leading_ones(shape, rank: int) -> tuple[int, ...]:
    """A shape with ones in front up to `rank` dimensions (broadcasting aligns trailing axes)."""
    return (1,) * (rank - len(shape)) + tuple(shape)


@register
class BroadcastToOp(MovementOp):
    attrs = BroadcastTo
    name = "BROADCAST_TO"

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        padded = leading_ones(x.shape, len(a.shape))
        expect(
            len(x.shape) <= len(a.shape) and all(d in (1, s) for d, s in zip(padded, a.shape)),
            f"shape {x.shape} does not broadcast to {a.shape}",
        )
        expect(y.shape == a.shape, f"output shape {y.shape}, expected {a.shape}")
        check_moved(ins, outs, self.name)

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0]
        x = x.reshape((x.shape[0],) + leading_ones(in_tensors[0].shape, len(a.shape)))
        return np.broadcast_to(x, (x.shape[0],) + a.shape).copy()

    def forward(self, tf, op, graph, xs):
        shape = op.attrs.shape
        padded = leading_ones(graph[op.inputs[0]].shape, len(shape))

        def broadcast(views):
            x = tf.reshape(views[0], (-1,) + padded)
            return tf.broadcast_to(x, tf.concat([tf.shape(x)[:1], tf.constant(shape, tf.int32)], 0))

        return forward_on_samples(tf, op, graph, xs, broadcast)

    def copies(self, op, graph):
        shape = op.attrs.shape
        padded = leading_ones(graph[op.inputs[0]].shape, len(shape))
        steps = row_major_strides(padded)
        strides = tuple(0 if d == 1 and s != 1 else step for d, s, step in zip(padded, shape, steps))
        return [Copy(shape, strides, tuple(row_major_strides(shape)))]

    def read_tflite(self, r, op, inputs, outputs):
        shape = r.constant(inputs[1], "BROADCAST_TO shape").reshape(-1)
        return BroadcastTo(tuple(int(d) for d in shape)), inputs[:1]

    def write_tflite(self, writer, op):
        shape = writer.constant(f"{op.name}/shape", np.array(op.attrs.shape, np.int32))
        writer.add_op(
            "BROADCAST_TO",
            [writer.tensor(op.inputs[0]), shape],
            [writer.tensor(op.outputs[0])],
            writer.options("BroadcastToOptions"),
        )
