"""TRANSPOSE: the axes permuted (TFLM's reference Transpose moves int8 and int16 values as they are).
Kernel: strided_copy_s8 (the output walked in order, the input by the permuted strides)."""

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


@dataclass(frozen=True)
class Transpose:
    """Output axis i is input axis perm[i]."""

    perm: tuple[int, ...]


@register
class TransposeOp(MovementOp):
    attrs = Transpose
    name = "TRANSPOSE"
    signatures = WITH_INT16

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        expect(
            sorted(a.perm) == list(range(len(x.shape))), f"perm {a.perm} is not a permutation of {len(x.shape)} axes"
        )
        shape = tuple(x.shape[p] for p in a.perm)
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        check_moved(ins, outs, self.name)

    def reference(self, a, p, ins, in_tensors, outs):
        return np.transpose(ins[0], (0,) + tuple(q + 1 for q in a.perm))

    def forward(self, tf, op, graph, xs):
        perm = [0] + [q + 1 for q in op.attrs.perm]
        return forward_on_samples(tf, op, graph, xs, lambda v: tf.transpose(v[0], perm))

    def copies(self, op, graph):
        x, y = graph[op.inputs[0]], graph[op.outputs[0]]
        strides = row_major_strides(x.shape)
        perm = op.attrs.perm
        return [Copy(y.shape, tuple(strides[q] for q in perm), tuple(row_major_strides(y.shape)))]

    def read_tflite(self, r, op, inputs, outputs):
        perm = r.constant(inputs[1], "TRANSPOSE permutation").reshape(-1)
        rank = len(r.tensor(inputs[0]).shape)
        perm = tuple(int(q) + rank if q < 0 else int(q) for q in perm)
        if sorted(perm) != list(range(rank)):
            raise Unsupported(f"permutation {perm} for a rank-{rank} input")
        return Transpose(perm), inputs[:1]

    def write_tflite(self, writer, op):
        perm = writer.constant(f"{op.name}/perm", np.array(op.attrs.perm, np.int32))
        writer.add_op(
            "TRANSPOSE",
            [writer.tensor(op.inputs[0]), perm],
            [writer.tensor(op.outputs[0])],
            writer.options("TransposeOptions"),
        )
