"""RSQRT, 1 / sqrt(x), int8 as TFLM computes it: per element, 1/sqrt of the offset input code
by gemmlowp's Newton-Raphson (GetInvSqrtQuantizedMultiplierExp) as a multiplier, applied to
1 << 20, then requantized by 1 / (sqrt(s_in) s_out); zero gives 127. TFLM fails on inputs below
the zero point (negative values).

The result depends on the input code alone, so the generator tabulates TFLM's integer
arithmetic per code (the 5-step Newton iteration is not run on the device). Kernel: lut_s8.

int16 (16x8, zero points 0): TFLM's RsqrtEvalQuantized<int16_t>, the same arithmetic on the
int16 code (1/sqrt by the Newton iteration, applied to 1 << 20, requantized), saturated to
int16; zero gives 32767, a negative input fails. The output multiplier is QuantizeMultiplier of
1 / (sqrt(s_in) s_out) with the square root and the product in float32, as TFLM's
SetRsqrtOutputMultiplier. A table of every code would take 64 KB, so the kernel runs the
iteration per element. Kernel: rsqrt_s16."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.errors import TinyqError
from tinyq.ops import InPlace, Kernel, register
from tinyq.ops.common import INT8_MAX, INT8_MIN, INT16, WITH_INT16, clamp_to
from tinyq.ops.transcendental import INT8_CODES, TableOp, TableParams

VALUE_SHIFT = 20  # TFLM's kShift: 1 << 20 keeps the inverse square root an integer
HALF_THREE_Q3 = (1 << 28) + (1 << 27)  # 1.5 with 3 integer bits
ONE_Q3 = 1 << 28
HALF_SQRT_2 = 1518500250  # sqrt(2) / 2, Q0.31


@dataclass(frozen=True)
class Rsqrt:
    pass


@dataclass(frozen=True)
class RsqrtParams16:
    """int16: the output multiplier of 1 / (sqrt(s_in) s_out), applied per element."""

    multiplier: int
    shift: int


def rsqrt_codes(x, multiplier: int, shift: int, zero_code: int) -> np.ndarray:
    """TFLM's RsqrtEvalQuantized on offset codes x >= 0 (int64): 1/sqrt(x) as a multiplier
    applied to 1 << VALUE_SHIFT, then requantized; zero gives `zero_code` (the type's max)."""
    x = np.asarray(x, np.int64)
    inv_mult, inv_shift = inv_sqrt_multiplier(np.maximum(x, 1))
    data = fx.multiply_by_quantized_multiplier(1, inv_mult, inv_shift + VALUE_SHIFT)
    out = fx.multiply_by_quantized_multiplier(data, multiplier, shift - VALUE_SHIFT)
    return np.where(x == 0, zero_code, out)


def inv_sqrt_multiplier(value) -> tuple[np.ndarray, np.ndarray]:
    """TFLM's GetInvSqrtQuantizedMultiplierExp(value, kReverseShift) on an array of values:
    (multiplier, left shift) with 1/sqrt(value) ~ multiplier * 2^(shift - 31)."""
    mul = fx.saturating_rounding_doubling_high_mul
    value = np.asarray(value, np.int64)
    small = value <= 1  # TFLM's special case (0 is not a valid input, 1 would overflow)
    shift = np.full(value.shape, 11, np.int64)
    while np.any(value >= 1 << 29):
        big = value >= 1 << 29
        value, shift = np.where(big, value // 4, value), shift + big
    left_shift_bit_pairs = (fx.count_leading_zeros32(value) - 1) // 2 - 1
    shift = shift - left_shift_bit_pairs
    value = value << (2 * left_shift_bit_pairs)
    half_input = fx.rounding_divide_by_pot(value >> 1, 1)  # Q3.28
    x = np.full(value.shape, ONE_Q3, np.int64)
    for _ in range(5):  # x <- 1.5 x - (value / 2) x^3, all Q3.28
        x3 = fx.rescale(mul(mul(x, x), x), 9, 3)
        x = fx.rescale(fx.wrap32(mul(HALF_THREE_Q3, x) - mul(half_input, x3)), 6, 3)
    multiplier = mul(x, HALF_SQRT_2)
    multiplier = np.where(shift < 0, fx.wrap32(multiplier << np.maximum(-shift, 0)), multiplier)
    shift = np.maximum(shift, 0)
    return np.where(small, fx.INT32_MAX, multiplier), np.where(small, 0, -shift)


@register
class RsqrtOp(TableOp):
    attrs = Rsqrt
    name = "RSQRT"
    signatures = WITH_INT16

    def params(self, attrs, ins, outs):
        x, y = ins[0].qparams, outs[0].qparams
        if outs[0].dtype == INT16:  # float32 sqrt and product, as TFLM's SetRsqrtOutputMultiplier
            real = 1.0 / float(np.sqrt(np.float32(x.s)) * np.float32(y.s))
        else:
            real = 1.0 / (math.sqrt(x.s) * y.s)
        mult, shift = fx.quantize_multiplier(real)
        if shift - VALUE_SHIFT < -31:
            raise ValueError(f"output multiplier 2^{shift - VALUE_SHIFT} is beyond TFLM's shifts")
        if outs[0].dtype == INT16:
            return RsqrtParams16(mult, shift)
        value = INT8_CODES - x.zp
        out = np.clip(rsqrt_codes(np.maximum(value, 0), mult, shift, 0) + y.zp, INT8_MIN, INT8_MAX)
        # Zero saturates; negative values (below lowest_valid) are refused by the kernel.
        table = np.where(value <= 0, INT8_MAX, out)
        return TableParams(tuple(int(v) for v in table), lowest_valid=x.zp)

    def reference(self, a, p, ins, in_tensors, outs):
        if not isinstance(p, RsqrtParams16):
            return super().reference(a, p, ins, in_tensors, outs)
        x = ins[0].astype(np.int64)
        if np.any(x < 0):
            raise TinyqError(f"{self.name} input code below 0 (a negative value): TFLM fails on it, so does the kernel")
        return clamp_to(rsqrt_codes(x, p.multiplier, p.shift, 32767), INT16)

    def kernel(self, op, graph, fast):
        if graph[op.outputs[0]].dtype == INT16:
            return Kernel("rsqrt_s16", in_place=InPlace.ELEMENTWISE)
        return super().kernel(op, graph, fast)

    def lower(self, ctx, kernel):
        if kernel.name != "rsqrt_s16":
            return super().lower(ctx, kernel)
        p = ctx.params
        io = {"size": ctx.out.size, "input": ctx.input(), "output": ctx.output()}
        return {"multiplier": p.multiplier, "shift": p.shift} | io

    def forward(self, tf, op, graph, xs):
        return tf.math.rsqrt(xs[0])

    def propagate_range(self, op, ranges):
        if ranges[0] is None or ranges[0][0] <= 0:
            return None
        lo, hi = ranges[0]
        return 1 / math.sqrt(hi), 1 / math.sqrt(lo)
