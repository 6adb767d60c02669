"""LOG_SOFTMAX over the last axis, int8 in, int8 out at scale 16/256 and zero point 127 (fixed:
TFLM refuses any other), with TFLM's integer arithmetic: SOFTMAX's scaled differences and
fixed-point exp summed in Q12, gemmlowp's log (log_x_for_x_greater_than_or_equal_to_1, into
Q5.26), the difference to it rescaled to the output, and a cutoff below which the output is
-128 (diff_min, or the log-sum brought back by the reverse scaling divisor).
Kernel: log_softmax_s8 (reads a row fully before writing it, so it may run in place)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import InPlace, Kernel, OpDef, OutputQuant, Signature, register
from tinyq.ops.common import FLOAT, INT8, activation_tensor, count, expect, same_shape

OUTPUT_SCALE, OUTPUT_ZERO_POINT = 16.0 / 256, 127
INPUT_INTEGER_BITS = 5  # the scaled differences: Q5.26
ACCUMULATION_INTEGER_BITS = 12  # the sum of exps: Q12.19
OUTPUT_INTEGER_BITS = 4
LOG_ACCUM_INTEGER_BITS = INPUT_INTEGER_BITS + 1  # log's accumulator: one bit of headroom
MARGIN = 1 + 2**-10  # keeps a limit strict after float32 rounding of the scale

# gemmlowp's Q0.31 constants of log_x_for_x_greater_than_or_equal_to_1
LOG_2 = 1488522236
SQRT_SQRT_HALF = 1805811301
SQRT_HALF = 1518500250
ONE_QUARTER = 536870912
ALPHA_N = 117049297
ALPHA_D = 127690142
ALPHA_I = 1057819769
ALPHA_F = 638450708


@dataclass(frozen=True)
class LogSoftmax:
    pass


@dataclass(frozen=True)
class LogSoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    reverse_scaling_divisor: int
    reverse_scaling_shift: int  # a right shift, as a (negative) MultiplyByQuantizedMultiplier shift
    diff_min: int


def _shift_left_saturating(x, exponent):
    """SaturatingRoundingMultiplyByPOTParam for exponents >= 0 (one per element)."""
    x, exponent = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    threshold = (np.int64(1) << (31 - exponent)) - 1
    shifted = fx.wrap32(x << exponent)
    return np.where(x > threshold, fx.INT32_MAX, np.where(x < -threshold, fx.INT32_MIN, shifted))


def log_of_sum(z, input_integer_bits: int = ACCUMULATION_INTEGER_BITS):
    """gemmlowp's log_x_for_x_greater_than_or_equal_to_1 of raw values with `input_integer_bits`,
    into Q5.26 (raw), as TFLite's common.h computes it."""
    srdhm, wrap = fx.saturating_rounding_doubling_high_mul, fx.wrap32
    z = np.asarray(z, np.int64)
    accum_fraction_bits = 31 - LOG_ACCUM_INTEGER_BITS
    shifted_quarter = fx.rescale(ONE_QUARTER, 0, LOG_ACCUM_INTEGER_BITS)

    def saturating(v):
        return np.clip(v, fx.INT32_MIN, fx.INT32_MAX)

    headroom_plus_1 = fx.count_leading_zeros32(z)
    r_a = _shift_left_saturating(srdhm(_shift_left_saturating(z, headroom_plus_1 - 1), SQRT_HALF), 1)
    z_a_pow_2_adj = saturating(
        _shift_left_saturating(input_integer_bits - headroom_plus_1, accum_fraction_bits) + shifted_quarter
    )
    z_b_headroom = fx.count_leading_zeros32(srdhm(z, SQRT_HALF)) - 1
    r_b = _shift_left_saturating(z, z_b_headroom)
    z_b_pow_2_adj = saturating(
        _shift_left_saturating(input_integer_bits - z_b_headroom, accum_fraction_bits) - shifted_quarter
    )
    r = np.minimum(r_a, r_b)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)

    p = fx.rounding_half_sum(r, SQRT_SQRT_HALF)
    q = wrap(r - SQRT_SQRT_HALF)
    q = wrap(q + q)
    common_sq = srdhm(q, q)
    num = wrap(srdhm(q, r) + srdhm(srdhm(q, common_sq), ALPHA_N))
    denom_minus_one = wrap(srdhm(p, wrap(wrap(ALPHA_I + q) + srdhm(ALPHA_D, common_sq))) + srdhm(ALPHA_F, q))
    recip_denom = fx.one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = fx.rescale(num, 0, LOG_ACCUM_INTEGER_BITS)
    total = wrap(srdhm(z_pow_2_adj, LOG_2) + srdhm(num_scaled, recip_denom))
    return fx.rescale(total, LOG_ACCUM_INTEGER_BITS, INPUT_INTEGER_BITS)


@register
class LogSoftmaxOp(OpDef):
    attrs = LogSoftmax
    name = "LOG_SOFTMAX"
    signatures = (Signature((INT8,), (INT8,)), Signature((FLOAT,), (FLOAT,)))
    output_quant = OutputQuant.FIXED
    fixed_quant = (16 / 256, 127)

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        same_shape(x, y)
        expect(len(x.shape) >= 1, "a scalar has no last axis")
        activation_tensor(x, "input")
        activation_tensor(y, "output")
        if y.dtype == INT8:
            expect(
                (y.qparams.s, y.qparams.zp) == (OUTPUT_SCALE, OUTPUT_ZERO_POINT),
                "int8 output must have scale 16/256 and zero point 127",
            )

    def params(self, attrs, ins, outs):
        """TFLM's PreprocessLogSoftmaxScalingExp (beta 1) and CalculateInputRadius."""
        real = min(ins[0].qparams.s * (1 << (31 - INPUT_INTEGER_BITS)), (1 << 31) - 1.0)
        mult, left_shift = fx.quantize_multiplier_greater_than_one(real)
        divisor, divisor_shift = fx.quantize_multiplier_smaller_than_one_exp((1 << (31 - left_shift)) / mult)
        diff_min = -fx.calculate_input_radius(INPUT_INTEGER_BITS, left_shift)
        return LogSoftmaxParams(mult, left_shift, divisor, divisor_shift, diff_min)

    def min_scales(self, op, scale):
        """TFLM needs s_in x 2^26 above one (QuantizeMultiplierGreaterThanOne)."""
        return {op.inputs[0]: MARGIN / (1 << (31 - INPUT_INTEGER_BITS))}

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0].astype(np.int64)
        diff = x - x.max(axis=-1, keepdims=True)
        scaled = fx.multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift)
        exps = fx.rescale(fx.exp_on_negative_values(scaled, INPUT_INTEGER_BITS), 0, ACCUMULATION_INTEGER_BITS)
        sum_of_exps = fx.wrap32(np.where(diff >= p.diff_min, exps, 0).sum(axis=-1, keepdims=True))
        log_sum = log_of_sum(sum_of_exps)
        cutoff = np.maximum(
            p.diff_min - 1,
            fx.multiply_by_quantized_multiplier(
                fx.wrap32(log_sum + fx.INT32_MIN), p.reverse_scaling_divisor, p.reverse_scaling_shift
            ),
        )
        out_bits = 31 - INPUT_INTEGER_BITS - OUTPUT_INTEGER_BITS
        out = fx.rounding_divide_by_pot(fx.wrap32(scaled - log_sum), out_bits) + OUTPUT_ZERO_POINT
        return np.where(diff > cutoff, np.clip(out, -128, 127), -128).astype(np.int8)

    def forward(self, tf, op, graph, xs):
        return tf.nn.log_softmax(xs[0], axis=-1)

    def propagate_range(self, op, ranges):
        return -16.0, 0.0

    def kernel(self, op, graph, fast):
        return Kernel("log_softmax_s8", in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        p, x = ctx.params, ctx.tensor(0)
        depth = x.shape[-1]
        return {
            "input_multiplier": p.input_multiplier,
            "input_left_shift": p.input_left_shift,
            "reverse_scaling_divisor": p.reverse_scaling_divisor,
            "reverse_scaling_shift": p.reverse_scaling_shift,
            "diff_min": p.diff_min,
            "rows": x.size // depth,
            "depth": depth,
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        return LogSoftmax(), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(
            self.name,
            [writer.tensor(op.inputs[0])],
            [writer.tensor(op.outputs[0])],
            writer.options("LogSoftmaxOptions"),
        )
