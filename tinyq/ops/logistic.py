"""LOGISTIC (sigmoid), int8 in, int8 out at scale 1/256 and zero point -128, with TFLM's
fixed-point logistic on 4 integer bits and its saturation radius. Kernel: logistic_s8."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import InPlace, Kernel, register
from tinyq.ops.common import ProbabilityOp

INPUT_INTEGER_BITS = 4


@dataclass(frozen=True)
class Logistic:
    pass


@dataclass(frozen=True)
class SaturatingInputParams:
    """LOGISTIC's and TANH's input side in TFLM: the int8 input rescaled to Q4.27 by a
    multiplier and left shift, and the radius beyond which the output saturates."""

    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


def saturating_input_params(x) -> SaturatingInputParams:
    q, left_shift = math.frexp(x.s * (1 << (31 - INPUT_INTEGER_BITS)))
    mult = fx.round_half_away(q * (1 << 31))
    radius = fx.calculate_input_radius(INPUT_INTEGER_BITS, left_shift)
    return SaturatingInputParams(x.zp, radius, mult, left_shift)


def saturating_input_min_scales(op) -> dict[str, float]:
    """TFLM's input left shift (frexp of s_in x 2^27) must not be negative."""
    return {op.inputs[0]: 2.0 ** -(31 - INPUT_INTEGER_BITS)}


@register
class LogisticOp(ProbabilityOp):
    attrs = Logistic
    name = "LOGISTIC"

    def params(self, attrs, ins, outs):
        return saturating_input_params(ins[0].qparams)

    def min_scales(self, op, graph, scale, bits=8):
        return saturating_input_min_scales(op)

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0].astype(np.int64) - p.input_zero_point
        q4 = fx.multiply_by_quantized_multiplier(x, p.input_multiplier, p.input_left_shift)
        q23 = fx.rounding_divide_by_pot(fx.logistic(q4, INPUT_INTEGER_BITS), 31 - 8)
        out = np.clip(q23 - 128, -128, 127)
        out = np.where(x >= p.input_range_radius, 127, out)
        # TFLM tests the lower bound first: with a radius of 0 (an input scale above ~15) x = 0 gives -128
        return np.where(x <= -p.input_range_radius, -128, out).astype(np.int8)

    def forward(self, tf, op, graph, xs):
        return tf.sigmoid(xs[0])

    def kernel(self, op, graph, fast):
        return Kernel("logistic_s8", in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        p = ctx.params
        return {
            "input_zero_point": p.input_zero_point,
            "input_range_radius": p.input_range_radius,
            "input_multiplier": p.input_multiplier,
            "input_left_shift": p.input_left_shift,
            "size": ctx.out.size,
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        return Logistic(), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op("LOGISTIC", [writer.tensor(op.inputs[0])], [writer.tensor(op.outputs[0])])
