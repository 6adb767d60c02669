"""ABS, int8, as TFLM computes it: |x - zp_in|, requantized to the output scale when the scales
differ (one multiplier, double ratio), plus zp_out, saturated. Kernel: abs_s8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import register
from tinyq.ops.common import UnaryOp, clamp_int8

# TFLM skips the multiply when the scales are equal; 2^30 * 2^(1-31) is that identity, exactly,
# for every int8 magnitude (|x - zp| < 2^8): one code path for both.
IDENTITY_MULTIPLIER, IDENTITY_SHIFT = 1 << 30, 1


@dataclass(frozen=True)
class Abs:
    pass


@dataclass(frozen=True)
class AbsParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


@register
class AbsOp(UnaryOp):
    attrs = Abs
    name = "ABS"
    kernel_name = "abs_s8"

    def params(self, attrs, ins, outs):
        x, y = ins[0].qparams, outs[0].qparams
        if np.float32(x.s) == np.float32(y.s):
            return AbsParams(x.zp, y.zp, IDENTITY_MULTIPLIER, IDENTITY_SHIFT)
        return AbsParams(x.zp, y.zp, *fx.quantize_multiplier(x.s / y.s))

    def reference(self, a, p, ins, in_tensors, outs):
        magnitude = np.abs(ins[0].astype(np.int64) - p.input_zero_point)
        y = fx.multiply_by_quantized_multiplier(magnitude, p.multiplier, p.shift) + p.output_zero_point
        return clamp_int8(y)

    def forward(self, tf, op, graph, xs):
        return tf.abs(xs[0])

    def propagate_range(self, op, ranges):
        if ranges[0] is None:
            return None
        lo, hi = ranges[0]
        return (0.0 if lo <= 0.0 <= hi else min(abs(lo), abs(hi))), max(abs(lo), abs(hi))
