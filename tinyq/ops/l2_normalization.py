"""L2_NORMALIZATION over the last axis, int8 in, int8 out at scale 1/128 and zero point 0 (fixed
by TFLM's kernel, which assumes it without checking), with TFLM's integer arithmetic: the sum
of squared offset inputs, its inverse square root by gemmlowp's Newton-Raphson iteration on
3 integer bits (GetInvSqrtQuantizedMultiplierExp), each input requantized by it. No epsilon: a
sum of 0 or 1 takes the multiplier INT32_MAX. Kernel: l2_normalization_s8 (reads a row's sum before
writing it, then element i from index i: it may run in place)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import Activation
from tinyq.ops import InPlace, Kernel, OpDef, OutputQuant, Signature, Unsupported, register
from tinyq.ops.common import FLOAT, INT8, activation_tensor, clamp_int8, count, expect, same_shape

OUTPUT_SCALE, OUTPUT_ZERO_POINT = 1.0 / 128, 0
OUTPUT_SCALE_BITS = 7  # the output is in units of 2^-7
HALF_THREE_Q3 = (1 << 28) + (1 << 27)  # 1.5 with 3 integer bits
ONE_Q3 = 1 << 28
HALF_SQRT_2_Q0 = 1518500250


@dataclass(frozen=True)
class L2Normalization:
    pass


@dataclass(frozen=True)
class L2NormalizationParams:
    input_zero_point: int


def inv_sqrt_multiplier(acc):
    """GetInvSqrtQuantizedMultiplierExp(acc, kReverseShift) on int32 values: (multiplier,
    left shift) with 1/sqrt(acc) ~ multiplier * 2^(shift - 31)."""
    acc = np.asarray(acc, np.int64)
    x, shift = acc.copy(), np.full(acc.shape, 11, np.int64)
    for _ in range(2):  # an int32 drops below 2^29 after at most two divisions by 4
        big = x >= 1 << 29
        x, shift = np.where(big, x // 4, x), shift + big
    x = np.maximum(x, 2)  # (sums of 0 and 1 are answered below)
    pairs = (fx.count_leading_zeros32(x) - 1) // 2 - 1
    shift, x = shift - pairs, x << (2 * pairs)
    half_input = fx.rounding_divide_by_pot(x >> 1, 1)
    y = np.full(acc.shape, ONE_Q3, np.int64)
    srdhm = fx.saturating_rounding_doubling_high_mul
    for _ in range(5):
        y3 = fx.rescale(srdhm(srdhm(y, y), y), 9, 3)
        y = fx.rescale(fx.wrap32(srdhm(HALF_THREE_Q3, y) - srdhm(half_input, y3)), 6, 3)
    y = srdhm(y, HALF_SQRT_2_Q0)
    y = np.where(shift < 0, fx.wrap32(y << np.maximum(-shift, 0)), y)
    shift = -np.maximum(shift, 0)
    return np.where(acc <= 1, fx.INT32_MAX, y), np.where(acc <= 1, 0, shift)


@register
class L2NormalizationOp(OpDef):
    attrs = L2Normalization
    name = "L2_NORMALIZATION"
    signatures = (Signature((INT8,), (INT8,)), Signature((FLOAT,), (FLOAT,)))
    output_quant = OutputQuant.FIXED
    fixed_quant = (1 / 128, 0)

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        same_shape(x, y)
        expect(1 <= len(x.shape) <= 4, f"rank {len(x.shape)} (TFLM takes 1 to 4)")
        activation_tensor(x, "input")
        activation_tensor(y, "output")
        if y.dtype == INT8:
            expect(
                (y.qparams.s, y.qparams.zp) == (OUTPUT_SCALE, OUTPUT_ZERO_POINT),
                "int8 output must have scale 1/128 and zero point 0",
            )

    def params(self, attrs, ins, outs):
        return L2NormalizationParams(ins[0].qparams.zp)

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0].astype(np.int64) - p.input_zero_point
        acc = fx.wrap32((x * x).sum(axis=-1, keepdims=True))
        multiplier, shift = inv_sqrt_multiplier(acc)
        out = fx.multiply_by_quantized_multiplier(x, multiplier, shift + OUTPUT_SCALE_BITS)
        return clamp_int8(out)

    def forward(self, tf, op, graph, xs):
        return tf.math.l2_normalize(xs[0], axis=-1, epsilon=1e-6)

    def propagate_range(self, op, ranges):
        return -1.0, 1.0

    def kernel(self, op, graph, fast):
        return Kernel("l2_normalization_s8", in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        x = ctx.tensor(0)
        depth = x.shape[-1]
        return {
            "input_zero_point": ctx.params.input_zero_point,
            "rows": x.size // depth,
            "depth": depth,
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        activation = r.activation(r.options(op, "L2NormOptions").FusedActivationFunction())
        if activation != Activation.NONE:
            raise Unsupported(f"fused activation {activation.value} (TFLM takes none)")
        return L2Normalization(), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(
            self.name,
            [writer.tensor(op.inputs[0])],
            [writer.tensor(op.outputs[0])],
            writer.options("L2NormOptions", FusedActivationFunction=writer.activation_code(Activation.NONE)),
        )
