"""MUL: int8 multiplication as TFLM computes it (the product of the offset inputs requantized
once), with broadcasting and a fused activation.

int16 (16x8, zero points 0, which TFLM's Prepare insists on): TFLM's same templated
MulElementwise / BroadcastMul4DSlow on int16 codes, the product (at most 2^30) in int32, the
int32 MultiplyByQuantizedMultiplier, the clamp to the fused activation's int16 range.
Kernel: mul_s8 (mul_s16 is it rendered with `int16`)."""

from __future__ import annotations

from dataclasses import dataclass

from tinyq import fixedpoint as fx
from tinyq.ir import Activation
from tinyq.ops import MAX_MULTIPLIER, register
from tinyq.ops.binary import BINARY_WITH_INT16, BinaryOp
from tinyq.ops.common import activation_range, aligned_operands, clamp_to


@dataclass(frozen=True)
class Mul:
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class MulParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@register
class MulOp(BinaryOp):
    attrs = Mul
    name = "MUL"
    signatures = BINARY_WITH_INT16
    options_table = "MulOptions"
    kernel_name = "mul_s8"

    def apply(self, tf, a, b):
        return a * b

    def min_scales(self, op, graph, scale, bits=8):
        return {op.outputs[0]: scale(op.inputs[0]) * scale(op.inputs[1]) / MAX_MULTIPLIER}

    def params(self, attrs, ins, outs):
        a, b = (t.qparams for t in ins)
        y = outs[0].qparams
        mult, shift = fx.quantize_multiplier(a.s * b.s / y.s)
        lo, hi = activation_range(attrs.activation, outs[0])
        return MulParams(-a.zp, -b.zp, y.zp, mult, shift, lo, hi)

    def reference(self, a, p, ins, in_tensors, outs):
        x1, x2 = aligned_operands(ins, in_tensors, outs)
        prod = (x1 + p.input1_offset) * (x2 + p.input2_offset)
        raw = fx.multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift) + p.output_offset
        return clamp_to(raw, outs[0].dtype, p.act_min, p.act_max)
