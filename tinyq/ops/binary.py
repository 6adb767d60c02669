"""What the elementwise binary ops (ADD, SUB, MUL, ...) share: broadcasting, options, lowering.

A binary op's C kernel reads both inputs through 4-D strides (0 on broadcast
dimensions); a constant operand (a scalar, say) lives in flash.
"""

from __future__ import annotations

from dataclasses import fields

from tinyq.ops import InPlace, Kernel, OpDef, OverTime, Signature
from tinyq.ops.common import (
    FLOAT,
    INT8,
    INT16,
    activate,
    activation_tensor,
    broadcast_shape,
    broadcast_strides,
    count,
    dims4,
    expect,
)

# the signatures of a binary op that also has TFLM's int16 (16x8) arithmetic
BINARY_WITH_INT16 = (
    Signature((INT8, INT8), (INT8,)),
    Signature((INT16, INT16), (INT16,)),
    Signature((FLOAT, FLOAT), (FLOAT,)),
)


class BinaryOp(OpDef):
    """An elementwise op of two broadcast operands with a fused activation."""

    over_time = OverTime.STEP_WISE
    signatures = (Signature((INT8, INT8), (INT8,)), Signature((FLOAT, FLOAT), (FLOAT,)))
    options_table: str  # the TFLite options table, e.g. "AddOptions"
    kernel_name: str  # the portable C kernel

    def apply(self, tf, a, b):
        """The op in TensorFlow, before the fused activation."""
        raise NotImplementedError

    def check(self, a, ins, outs):
        count(ins, outs, 2)
        shape = broadcast_shape(ins)
        expect(outs[0].shape == shape, f"output shape {outs[0].shape}, expected {shape}")
        for t in ins + outs:
            activation_tensor(t, "operand")

    def forward(self, tf, op, graph, xs):
        return activate(tf, self.apply(tf, *xs), op.attrs.activation)

    def kernel(self, op, graph, fast):
        if graph[op.outputs[0]].dtype == INT16:  # the int8 template rendered for int16 operands
            name = self.kernel_name.replace("_s8", "_s16")
            return Kernel(name, self.kernel_name, {"int16": True}, in_place=InPlace.ELEMENTWISE)
        return Kernel(self.kernel_name, in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        """The params as the kernel's struct, the strides of both operands."""
        p = ctx.params
        args = {f.name: getattr(p, f.name) for f in fields(p)}
        args |= {
            "act": [args.pop("act_min"), args.pop("act_max")],
            "output_dims": dims4(ctx.out.shape),
            "input1_strides": broadcast_strides(ctx.tensor(0).shape, ctx.out.shape),
            "input1": ctx.operand(0),
            "input2_strides": broadcast_strides(ctx.tensor(1).shape, ctx.out.shape),
            "input2": ctx.operand(1),
            "output": ctx.output(),
        }
        return args

    def read_tflite(self, r, op, inputs, outputs):
        return self.attrs(r.activation(r.options(op, self.options_table).FusedActivationFunction())), inputs[:2]

    def write_tflite(self, writer, op):
        writer.add_op(
            self.name,
            [writer.tensor(n) for n in op.inputs],
            [writer.tensor(op.outputs[0])],
            writer.options(self.options_table, FusedActivationFunction=writer.activation_code(op.attrs.activation)),
        )
