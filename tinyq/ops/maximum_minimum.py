"""MAXIMUM and MINIMUM, elementwise with broadcasting, int8: TFLM compares the int8 codes as they
are (no rescaling: its kernel has no Prepare), which means the real maximum only when both
inputs and the output share one quantization, as the TFLite converter makes them. tinyq requires
that, and its quantizer requantizes an input that differs (int8 -> int8 QUANTIZE), as it does
for CONCATENATION. No fused activation. Kernel: maximum_minimum_s8 (broadcast by strides).

int16 (16x8, zero points 0): TFLM's same MaximumMinimumBroadcastSlow on int16 codes, no
arithmetic. Kernel: maximum_minimum_s16 (maximum_minimum_s8 rendered with `int16`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import Op, Tensor
from tinyq.ops import register
from tinyq.ops.binary import BINARY_WITH_INT16, BinaryOp
from tinyq.ops.common import INT8, aligned_operands, broadcast_strides, clamp_to, dims4, same_quant
from tinyq.ops.quantize import Quantize


@dataclass(frozen=True)
class Maximum:
    pass


@dataclass(frozen=True)
class Minimum:
    pass


def operand_args(ctx) -> dict:
    """Both operands of an elementwise kernel: 4-D strides (0 where broadcast) and pointers
    (a constant operand lives in flash), and the output's dims."""
    args = {"output_dims": dims4(ctx.out.shape), "output": ctx.output()}
    for i in (0, 1):
        t = ctx.tensor(i)
        args[f"input{i + 1}_strides"] = broadcast_strides(t.shape, ctx.out.shape)
        args[f"input{i + 1}"] = ctx.operand(i)
    return args


def requantized_to_output(op: Op, graph, context) -> list[Op]:
    """The op in the int8 graph, each input whose quantization differs from the output's
    requantized to it first (a constant input is quantized at the output's quantization)."""
    out_q = context.qparams[op.outputs[0]]
    ops, inputs = [], []
    for i, name in enumerate(op.inputs):
        t = graph[name]
        if t.is_constant:
            values = np.clip(np.round(t.data / out_q.s) + out_q.zp, -128, 127).astype(np.int8)
            context.set(Tensor(name, t.shape, INT8, out_q, values))
        elif context.qparams[name] != out_q:
            requantized = f"{name}/requantized_for_{op.name}"
            context.set(Tensor(requantized, t.shape, INT8, out_q))
            ops.append(Op(f"{op.name}_requantize_{i}", Quantize(), (name,), (requantized,)))
            name = requantized
        inputs.append(name)
    return ops + [Op(op.name, op.attrs, tuple(inputs), op.outputs)]


class MaximumMinimumOp(BinaryOp):
    options_table = "MaximumMinimumOptions"
    kernel_name = "maximum_minimum_s8"
    signatures = BINARY_WITH_INT16
    maximum: bool

    def apply(self, tf, a, b):
        return tf.maximum(a, b) if self.maximum else tf.minimum(a, b)

    def check(self, a, ins, outs):
        super().check(a, ins, outs)
        for t in ins:
            same_quant(t, outs[0], f"{self.name} compares codes")

    def forward(self, tf, op, graph, xs):
        return self.apply(tf, *xs)

    def params(self, attrs, ins, outs):
        return None  # comparisons only: no arithmetic

    def reference(self, a, p, ins, in_tensors, outs):
        x1, x2 = aligned_operands(ins, in_tensors, outs)
        pick = np.maximum if self.maximum else np.minimum
        return clamp_to(pick(x1, x2), outs[0].dtype)  # codes picked as they are (already in range)

    def propagate_range(self, op, ranges):
        if any(r is None for r in ranges):
            return None
        (lo1, hi1), (lo2, hi2) = ranges
        pick = max if self.maximum else min
        return pick(lo1, lo2), pick(hi1, hi2)

    def quantize(self, op, graph, context):
        return requantized_to_output(op, graph, context)

    def lower(self, ctx, kernel):
        return {"maximum": int(self.maximum)} | operand_args(ctx)

    def read_tflite(self, r, op, inputs, outputs):
        return self.attrs(), inputs[:2]

    def write_tflite(self, writer, op):
        writer.add_op(
            self.name,
            [writer.tensor(n) for n in op.inputs],
            [writer.tensor(op.outputs[0])],
            writer.options(self.options_table),
        )


@register
class MaximumOp(MaximumMinimumOp):
    attrs = Maximum
    name = "MAXIMUM"
    maximum = True


@register
class MinimumOp(MaximumMinimumOp):
    attrs = Minimum
    name = "MINIMUM"
    maximum = False
