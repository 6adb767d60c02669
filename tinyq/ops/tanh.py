"""TANH.

int8: int8 in, int8 out at scale 1/128 and zero point 0, with TFLM's fixed-point tanh
(gemmlowp) on 4 integer bits and its saturation radius; the parameters are LOGISTIC's.
Kernel: tanh_s8. TFLM's kernel assumes the output quantization without checking it: `check`
does, and post-training quantization fixes it (OutputQuant.FIXED).

int16 (16x8): int16 in, int16 out at scale 1/32768 and zero point 0 (TFLM requires both), as
TFLM's reference_integer_ops::Tanh for int16, through LOGISTIC's sigmoid table with
tanh x = 2 sigmoid(2x) - 1: the input rescaled as LOGISTIC's int16 input (power-of-two input
scales 2^-12 and 2^-11 take the multiplier 3 << shift), |x| indexes the table with 8 fraction
bits of interpolation (so the table's argument is 2x), the result in 0.24 minus one half
(mirrored for negative inputs, with rounding) is shifted back to Q0.15 by >> 8.
Kernel: tanh_s16 (template sigmoid_lut_s16)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import QParams
from tinyq.ops import OutputQuant, register
from tinyq.ops.common import INT8, INT16, WITH_INT16, UnaryOp, expect
from tinyq.ops.logistic import (
    INPUT_INTEGER_BITS,
    SigmoidLutParams,
    check_int16_probability_output,
    saturating_input_min_scales,
    saturating_input_params,
    sigmoid_lut_input,
    sigmoid_lut_kernel,
    sigmoid_lut_lookup,
    sigmoid_lut_lower,
    sigmoid_lut_params,
)

OUTPUT_FRACTIONAL_BITS = 7
OUTPUT_QUANT = QParams.per_tensor(1.0 / (1 << OUTPUT_FRACTIONAL_BITS), 0)
ONE_Q2 = 1 << 29  # 1.0 with 2 integer bits


@dataclass(frozen=True)
class Tanh:
    pass


def one_minus_x_over_one_plus_x(a):
    """gemmlowp one_minus_x_over_one_plus_x_for_x_in_0_1: (1 - a) / (1 + a), Q0.31 in and out
    (the Newton-Raphson division of one_over_one_plus_x, then x - 1 instead of x / 2)."""
    mul = fx.saturating_rounding_doubling_high_mul
    half_denominator = fx.rounding_half_sum(a, fx.INT32_MAX)
    x = fx.wrap32(1515870810 + mul(half_denominator, -1010580540))  # 48/17 - 32/17 d, Q2.29
    for _ in range(3):
        one_minus = fx.wrap32(ONE_Q2 - mul(half_denominator, x))
        x = fx.wrap32(x + fx.rescale(mul(x, one_minus), 4, 2))
    return fx.rescale(fx.wrap32(x - ONE_Q2), 2, 0)


def tanh_fixed(a, integer_bits: int):
    """gemmlowp tanh: input with `integer_bits`, result Q0.31. For n = -|a|,
    tanh|a| = (1 - exp(2n)) / (1 + exp(2n)); doubling n is a change of format, not of raw."""
    a = np.asarray(a, np.int64)
    negative = a < 0
    n = np.where(negative, a, fx.wrap32(-a))
    t = one_minus_x_over_one_plus_x(fx.exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, fx.wrap32(-t), t))


def tanh_s16(x, p: SigmoidLutParams) -> np.ndarray:
    """TFLM's int16 Tanh (Q0.15 out), also the cell gate and cell output of UNIDIRECTIONAL_SEQUENCE_LSTM."""
    v = sigmoid_lut_input(x, p)
    r = sigmoid_lut_lookup(np.abs(v), 8, 0xFFFF << 8)  # sigmoid(2|x|) in 0.24
    # 2 sigmoid - 1 is (sigmoid - 1/2) one bit up: subtract a half, round, mirror if negative
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return (r >> 8).astype(np.int16)


@register
class TanhOp(UnaryOp):
    attrs = Tanh
    name = "TANH"
    kernel_name = "tanh_s8"
    signatures = WITH_INT16
    output_quant = OutputQuant.FIXED
    fixed_quant = (OUTPUT_QUANT.s, OUTPUT_QUANT.zp)
    fixed_quant_int16 = (1 / 32768, 0)

    def check(self, a, ins, outs):
        super().check(a, ins, outs)
        y = outs[0]
        if y.dtype == INT8:
            expect(
                abs(y.qparams.s - OUTPUT_QUANT.s) < 1e-9 and y.qparams.zp == 0,
                "int8 output must have scale 1/128 and zero point 0",
            )
        elif y.dtype == INT16:
            check_int16_probability_output(y)

    def params(self, attrs, ins, outs):
        if ins[0].dtype == INT16:
            return sigmoid_lut_params(ins[0].qparams, pot_shifts=(0, 1))
        return saturating_input_params(ins[0].qparams)

    def min_scales(self, op, graph, scale, bits=8):
        return saturating_input_min_scales(op, bits)

    def reference(self, a, p, ins, in_tensors, outs):
        if isinstance(p, SigmoidLutParams):
            return tanh_s16(ins[0], p)
        x = ins[0].astype(np.int64) - p.input_zero_point
        q4 = fx.multiply_by_quantized_multiplier(x, p.input_multiplier, p.input_left_shift)
        q7 = fx.rounding_divide_by_pot(tanh_fixed(q4, INPUT_INTEGER_BITS), 31 - OUTPUT_FRACTIONAL_BITS)
        out = np.where(x >= p.input_range_radius, 127, np.clip(q7, -128, 127))
        # TFLM tests the lower bound first: with a radius of 0 (input scales above 15), zero is -128.
        return np.where(x <= -p.input_range_radius, -128, out).astype(np.int8)

    def forward(self, tf, op, graph, xs):
        return tf.tanh(xs[0])

    def propagate_range(self, op, ranges):
        return -1.0, 1.0

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return sigmoid_lut_kernel("tanh")
        return super().kernel(op, graph, fast)

    def lower(self, ctx, kernel):
        p = ctx.params
        if isinstance(p, SigmoidLutParams):
            return sigmoid_lut_lower(ctx)
        return {
            "input_zero_point": p.input_zero_point,
            "input_range_radius": p.input_range_radius,
            "input_multiplier": p.input_multiplier,
            "input_left_shift": p.input_left_shift,
            "size": ctx.out.size,
            "input": ctx.input(),
            "output": ctx.output(),
        }
