"""RESHAPE (and SQUEEZE, imported as it): the same bytes under another shape.

The output shares its input's buffer in the arena (kernel copy_s8 then moves
nothing); it copies only when the plan could not alias them. int16 (16x8) is the same
(TFLM copies the bytes whatever the type): kernel copy_s16, the template with int16_t pointers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import InPlace, Kernel, OpDef, OutputQuant, register
from tinyq.ops.common import INT16, WITH_INT16, activation_tensor, count, expect, same_quant


@dataclass(frozen=True)
class Reshape:
    """Output shape is the output tensor's shape."""


class ViewOp(OpDef):
    """An op whose output is its input's bytes under the output tensor's shape (RESHAPE,
    EXPAND_DIMS): no arithmetic, the buffer aliased."""

    output_quant = OutputQuant.INPUT

    def params(self, attrs, ins, outs):
        return None  # data movement: no arithmetic

    def reference(self, a, p, ins, in_tensors, outs):
        return ins[0].reshape((ins[0].shape[0],) + outs[0].shape)

    def forward(self, tf, op, graph, xs):
        return tf.reshape(xs[0], (-1,) + graph[op.outputs[0]].shape[1:])

    def propagate_range(self, op, ranges):
        return ranges[0]

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return Kernel("copy_s16", "copy_s8", {"int16": True}, in_place=InPlace.ALIAS)
        return Kernel("copy_s8", in_place=InPlace.ALIAS)

    def lower(self, ctx, kernel):
        aliased = ctx.plan.offsets[ctx.op.inputs[0]] == ctx.plan.offsets[ctx.op.outputs[0]]
        return {"aliased": aliased, "size": ctx.out.nbytes, "input": ctx.input(), "output": ctx.output()}


@register
class ReshapeOp(ViewOp):
    attrs = Reshape
    name = "RESHAPE"
    tflite_aliases = ("SQUEEZE",)
    signatures = WITH_INT16

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        expect(ins[0].size == outs[0].size, f"cannot reshape {ins[0].shape} to {outs[0].shape}")
        activation_tensor(ins[0], "input")
        same_quant(ins[0], outs[0], "reshape")

    def read_tflite(self, r, op, inputs, outputs):
        return Reshape(), inputs[:1]

    def write_tflite(self, writer, op):
        shape = np.array(writer.graph[op.outputs[0]].shape, np.int32)
        writer.add_op(
            "RESHAPE",
            [writer.tensor(op.inputs[0]), writer.constant(f"{op.name}/shape", shape)],
            [writer.tensor(op.outputs[0])],
        )
