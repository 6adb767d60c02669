"""SOFTMAX over the last axis. Kernels read a row fully before writing it, so they may run in place.

int8: int8 in, int8 out at scale 1/256 and zero point -128, with TFLM's fixed-point exp (gemmlowp)
and reciprocal. Kernel: softmax_s8.

int16 (16x8): int16 in, int16 out at scale 1/32768 and zero point 0 (TFLM requires both), through
two 513-entry int16 tables TFLM's Prepare fills in float32 (gen_lut): exp over [-10, 0] and
1 / (1 + x) over [0, 1], read with linear interpolation between entries (index value >> 7, the
low 7 bits weighting the slope). Per row: diff = x - max, rescaled by MultiplyByQuantizedMultiplier
with the multiplier of s_in x beta / (10 / 65535) (so [-65535, 0] is [-10, 0]), + 32767, saturated
to int16, looked up in the exp table (Q0.15); the int32 sum of those is normalized by its leading
zeros to [1, 2) in Q1.14 (rounded), recentred to [-32768, 32767] and looked up in the 1/(1+x)
table; each exp times that reciprocal is shifted right by 31 - leading zeros with rounding and
clamped to [0, 32767]. Kernel: softmax_s16 (the tables are flash constants)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import InPlace, Kernel, register
from tinyq.ops.common import INT16, WITH_INT16, ProbabilityOp, expect, round_half_away_f32
from tinyq.ops.elu import expf

SCALED_DIFF_INTEGER_BITS = 5
MARGIN = 1 + 2**-10  # keeps a limit strict after float32 rounding of the scale
ACCUMULATION_INTEGER_BITS = 12
LUT_STEPS = 512  # int16 tables: 512 entries and one more for the last slope
EXP_INPUT_RANGE = 10.0  # the exp table covers [-10, 0]: exp(-10) is negligible in the sum


@dataclass(frozen=True)
class Softmax:
    beta: float = 1.0


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


@dataclass(frozen=True)
class SoftmaxInt16Params:
    input_multiplier: int
    input_shift: int  # TFLM's QuantizeMultiplier shift (either sign)
    exp_lut: tuple[int, ...]
    one_over_one_plus_x_lut: tuple[int, ...]


F32 = np.float32


def gen_lut_int16(func, input_min: float, input_max: float) -> np.ndarray:
    """TFLM's gen_lut<float, int16_t, int16_t> with output range [-1, 1], in float32 throughout:
    each entry is func's sample, corrected by half the error the interpolation makes at the
    midpoint of its step; entry 512 is func(input_max)."""
    lo, hi = F32(input_min), F32(input_max)
    step = (hi - lo) / F32(LUT_STEPS)
    half_step = step / F32(2)
    scaling = F32(65536) / (F32(1) - F32(-1))
    i = np.arange(LUT_STEPS, dtype=np.int64)
    x = lo + i.astype(F32) * step
    val = func(x)
    val_mid = func(x + half_step)
    val_next = func(lo + (i + 1).astype(F32) * step)
    rnd = round_half_away_f32
    sample = rnd(val * scaling)
    interp = rnd((val_next * scaling + rnd(val * scaling)) / F32(2))
    bias = rnd((interp - rnd(val_mid * scaling)) / F32(2))
    last = np.clip(rnd(func(np.array([hi], F32)) * scaling), -32768, 32767)
    return np.concatenate([np.clip(sample - bias, -32768, 32767), last]).astype(np.int16)


def _one_over_one_plus_x(x):
    return (F32(1) / (F32(1) + np.asarray(x, F32))).astype(F32)


EXP_LUT = tuple(int(v) for v in gen_lut_int16(expf, -EXP_INPUT_RANGE, 0.0))
ONE_OVER_ONE_PLUS_X_LUT = tuple(int(v) for v in gen_lut_int16(_one_over_one_plus_x, 0.0, 1.0))


def lut_lookup_int16(value, lut: np.ndarray):
    """TFLM's lut_lookup_with_interpolation for int16: entry 256 + (value >> 7) plus the int16
    slope to the next entry times the low 7 bits, rounded (>> 7 after + 64)."""
    value = np.asarray(value, np.int64)
    index = 256 + (value >> 7)
    offset = value & 0x7F
    base = lut[index]
    slope = ((lut[index + 1] - base + 32768) & 0xFFFF) - 32768  # int16 arithmetic
    delta = (slope * offset + 64) >> 7
    return ((base + delta + 32768) & 0xFFFF) - 32768


@register
class SoftmaxOp(ProbabilityOp):
    attrs = Softmax
    name = "SOFTMAX"
    signatures = WITH_INT16

    def check(self, a, ins, outs):
        super().check(a, ins, outs)
        y = outs[0]
        if y.dtype == INT16:
            # TFLM: zero point 0 and the scale within 0.1 % of 1/32768
            expect(
                abs(float(F32(y.qparams.s)) - 1 / 32768) <= 0.001 / 32768 and y.qparams.zp == 0,
                "int16 output must have scale 1/32768 and zero point 0",
            )

    def params(self, attrs, ins, outs):
        if ins[0].dtype == INT16:
            # double(float scale) x double(float beta) / (10 / 65535): [-65535, 0] maps to [-10, 0]
            real = float(F32(ins[0].qparams.s)) * float(F32(attrs.beta)) / (10.0 / 65535.0)
            mult, shift = fx.quantize_multiplier(real)
            return SoftmaxInt16Params(mult, shift, EXP_LUT, ONE_OVER_ONE_PLUS_X_LUT)
        real = min(
            float(np.float32(attrs.beta)) * ins[0].qparams.s * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0
        )
        mult, left_shift = fx.quantize_multiplier_greater_than_one(real)
        diff_min = -fx.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
        return SoftmaxParams(mult, left_shift, diff_min)

    def min_scales(self, op, graph, scale, bits=8):
        """TFLM needs beta x s_in x 2^26 above one (QuantizeMultiplierGreaterThanOne)."""
        beta = float(np.float32(op.attrs.beta))
        return {op.inputs[0]: MARGIN / (beta * (1 << (31 - SCALED_DIFF_INTEGER_BITS)))} if beta > 0 else {}

    def reference(self, a, p, ins, in_tensors, outs):
        if isinstance(p, SoftmaxInt16Params):
            return self._reference_int16(p, ins[0])
        x = ins[0].astype(np.int64)
        diff = x - x.max(axis=-1, keepdims=True)
        valid = diff >= p.diff_min
        rescaled = fx.multiply_by_quantized_multiplier_greater_than_one(diff, p.input_multiplier, p.input_left_shift)
        exps = fx.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
        terms = np.where(valid, fx.rescale(exps, 0, ACCUMULATION_INTEGER_BITS), 0)
        sum_of_exps = fx.wrap32(terms.sum(axis=-1, keepdims=True))
        scale, bits_over_unit = fx.get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
        unsat = fx.rounding_divide_by_pot(
            fx.saturating_rounding_doubling_high_mul(scale, exps), bits_over_unit + 31 - 8
        )
        out = np.clip(unsat - 128, -128, 127)
        return np.where(valid, out, -128).astype(np.int8)

    def _reference_int16(self, p: SoftmaxInt16Params, x):
        x = x.astype(np.int64)
        exp_lut = np.asarray(p.exp_lut, np.int64)
        recip_lut = np.asarray(p.one_over_one_plus_x_lut, np.int64)
        diff = x - x.max(axis=-1, keepdims=True)
        scaled = fx.multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_shift)
        exps = lut_lookup_int16(np.clip(scaled + 32767, -32768, 32767), exp_lut)  # Q0.15
        sum_of_exps = fx.wrap32(exps.sum(axis=-1, keepdims=True))  # Q16.15
        headroom_plus_one = fx.count_leading_zeros32(sum_of_exps)
        shifted_sum = ((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14
        # the table holds 1/(1+x): x = sum - 1, recentred from [0, 65535] to [-32768, 32767]
        sym = np.clip(shifted_sum - ((1 << 15) + (1 << 16)), -32768, 32767)
        reciprocal = lut_lookup_int16(sym, recip_lut)  # Q0.15
        right_shift = 31 - headroom_plus_one
        out = (exps * reciprocal + (np.int64(1) << (right_shift - 1))) >> right_shift
        return np.clip(out, 0, 32767).astype(np.int16)

    def forward(self, tf, op, graph, xs):
        return tf.nn.softmax(xs[0] * op.attrs.beta, axis=-1)

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return Kernel("softmax_s16", in_place=InPlace.ELEMENTWISE)
        return Kernel("softmax_s8", in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        p, x = ctx.params, ctx.tensor(0)
        depth = x.shape[-1]
        if isinstance(p, SoftmaxInt16Params):
            tables = {
                "exp_lut": ctx.constant(
                    f"tq_softmax_exp_{ctx.ident}",
                    np.asarray(p.exp_lut, np.int16),
                    "int16_t",
                    f"{ctx.op.name}: exp over [-10, 0] in Q0.15, 512 steps and the last slope (TFLM's gen_lut)",
                ),
                "one_over_one_plus_x_lut": ctx.constant(
                    f"tq_softmax_recip_{ctx.ident}",
                    np.asarray(p.one_over_one_plus_x_lut, np.int16),
                    "int16_t",
                    f"{ctx.op.name}: 1/(1+x) over [0, 1] in Q0.15, 512 steps and the last slope (TFLM's gen_lut)",
                ),
            }
            return tables | {
                "input_multiplier": p.input_multiplier,
                "input_shift": p.input_shift,
                "rows": x.size // depth,
                "depth": depth,
                "input": ctx.input(),
                "output": ctx.output(),
            }
        return {
            "input_multiplier": p.input_multiplier,
            "input_left_shift": p.input_left_shift,
            "diff_min": p.diff_min,
            "rows": x.size // depth,
            "depth": depth,
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        return Softmax(float(r.options(op, "SoftmaxOptions").Beta())), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(
            "SOFTMAX",
            [writer.tensor(op.inputs[0])],
            [writer.tensor(op.outputs[0])],
            writer.options("SoftmaxOptions", Beta=op.attrs.beta),
        )
