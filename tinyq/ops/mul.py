"""MUL: int8 multiplication as TFLM computes it (the product of the offset inputs requantized
once), with broadcasting and a fused activation. Kernel: mul_s8."""

from __future__ import annotations

from dataclasses import dataclass

from tinyq import fixedpoint as fx
from tinyq.ir import Activation
from tinyq.ops import MAX_MULTIPLIER, register
from tinyq.ops.binary import BinaryOp
from tinyq.ops.common import activation_range, aligned_operands, clamp_int8


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
    options_table = "MulOptions"
    kernel_name = "mul_s8"

    def apply(self, tf, a, b):
        return a * b

    def min_scales(self, op, graph, scale):
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
        return clamp_int8(raw, p.act_min, p.act_max)
