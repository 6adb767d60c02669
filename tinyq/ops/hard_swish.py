"""HARD_SWISH, x * relu6(x + 3) / 6, int8 as TFLM computes it: on 16-bit fixed point, the
input at a 'hires' scale (x 2^7) times a 'reluish' multiplier in [0, 1] (the input rescaled
so that 3.0 is 2^15, saturated, shifted to [0, 1]), with int16 multipliers that TFLM's Prepare
derives in float32. Kernel: hard_swish_s8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import register
from tinyq.ops.common import INT8_MAX, INT8_MIN, UnaryOp, c_div

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
HIRES_SHIFT = 7  # the input is put on a scale 2^7 finer before the 16-bit arithmetic
MARGIN = 1 + 2**-10  # keeps a limit strict after float32 rounding of the scale


@dataclass(frozen=True)
class HardSwish:
    pass


@dataclass(frozen=True)
class HardSwishParams:
    input_zero_point: int
    output_zero_point: int
    output_multiplier: int  # int16
    output_exponent: int  # <= 0
    reluish_multiplier: int  # int16
    reluish_exponent: int


def downscale_to_int16(multiplier: int) -> int:
    """TFLM's DownScaleInt32ToInt16Multiplier: the top 16 bits, rounded, saturated."""
    if multiplier >= fx.INT32_MAX - (1 << 15):
        return INT16_MAX
    return (multiplier + (1 << 15)) >> 16


def wrap16(x):
    """Narrowing to int16 (two's complement), as the C assignments do."""
    return ((np.asarray(x, np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)


def srdhm16(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int16: round(a*b / 2^15)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    high = c_div(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 1 << 15)
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, wrap16(high))


def sdhm16(a, b):
    """TFLM's SaturatingDoublingHighMul on int16: a*b / 2^15 truncated toward zero."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, wrap16(c_div(a * b, 1 << 15)))


def rdbp16(x, exponent: int):
    """gemmlowp RoundingDivideByPOT on int16. Its mask is (2^exponent - 1) narrowed to int16,
    which is -1 from exponent 16 on: reproduced, as TFLM computes it."""
    x = np.asarray(x, np.int64)
    mask = int(wrap16((1 << exponent) - 1))
    threshold = wrap16((mask >> 1) + (x < 0))
    return wrap16((x >> exponent) + ((x & mask) > threshold))


def saturating_left_shift16(x, amount: int):
    return np.clip(np.asarray(x, np.int64) * (1 << amount), INT16_MIN, INT16_MAX)


def hard_swish_float(x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


@register
class HardSwishOp(UnaryOp):
    attrs = HardSwish
    name = "HARD_SWISH"
    kernel_name = "hard_swish_s8"

    def params(self, attrs, ins, outs):
        x, y = ins[0].qparams, outs[0].qparams
        # TFLM's Prepare divides the scales in float32 before the multipliers go to double.
        hires_input_scale = np.float32(1.0 / (1 << HIRES_SHIFT)) * np.float32(x.s)
        reluish_scale = np.float32(3.0) / np.float32(32768.0)
        out_mult, out_exp = fx.quantize_multiplier(float(hires_input_scale / np.float32(y.s)))
        if out_exp > 0:
            raise ValueError(f"output scale {y.s:.6g} must exceed the input scale / 128 ({hires_input_scale:.6g})")
        relu_mult, relu_exp = fx.quantize_multiplier(float(hires_input_scale / reluish_scale))
        return HardSwishParams(
            x.zp, y.zp, downscale_to_int16(out_mult), out_exp, downscale_to_int16(relu_mult), relu_exp
        )

    def min_scales(self, op, graph, scale, bits=8):
        """TFLM refuses an output multiplier (s_in / 128 / s_out) of one or more."""
        return {op.outputs[0]: scale(op.inputs[0]) / (1 << HIRES_SHIFT) * MARGIN}

    def reference(self, a, p, ins, in_tensors, outs):
        hires = (ins[0].astype(np.int64) - p.input_zero_point) << HIRES_SHIFT
        preshift_output = srdhm16(hires, p.output_multiplier)
        # The input on the scale where 3.0 is 2^15, saturated: [-3, 3] -> [-1, 1]. A left shift
        # saturates in two steps so that only the last bit's saturation shows.
        reluish = hires
        if p.reluish_exponent > 0:
            reluish = saturating_left_shift16(reluish, p.reluish_exponent - 1)
        reluish = srdhm16(reluish, p.reluish_multiplier)
        if p.reluish_exponent > 0:
            reluish = saturating_left_shift16(reluish, 1)
        if p.reluish_exponent < 0:
            reluish = rdbp16(reluish, -p.reluish_exponent)
        reluish = (reluish + (1 << 15)) >> 1  # [-1, 1] -> [0, 1]
        out = rdbp16(sdhm16(reluish, preshift_output), -p.output_exponent)
        return np.clip(wrap16(out + p.output_zero_point), INT8_MIN, INT8_MAX).astype(np.int8)

    def forward(self, tf, op, graph, xs):
        x = xs[0]
        return x * tf.nn.relu6(x + 3.0) / 6.0

    def propagate_range(self, op, ranges):
        if ranges[0] is None:
            return None
        lo, hi = ranges[0]
        values = [hard_swish_float(lo), hard_swish_float(hi)] + ([-0.375] if lo < -1.5 < hi else [])
        return min(values), max(values)

    def lower(self, ctx, kernel):
        p = ctx.params
        return {
            "params": [
                p.input_zero_point,
                p.output_zero_point,
                p.output_multiplier,
                p.output_exponent,
                p.reluish_multiplier,
                p.reluish_exponent,
            ],
            "size": ctx.out.size,
            "input": ctx.input(),
            "output": ctx.output(),
        }
