"""LOGISTIC (sigmoid).

int8: int8 in, int8 out at scale 1/256 and zero point -128, with TFLM's fixed-point logistic
on 4 integer bits and its saturation radius. Kernel: logistic_s8.

int16 (16x8): int16 in, int16 out at scale 1/32768 and zero point 0 (TFLM requires both), as
TFLM's reference_integer_ops::Logistic for int16: the input is rescaled to units of
1/(3 x 4096) by an int16-sized multiplier and a rounding right shift (a power-of-two input
scale of 2^-12 takes the multiplier 3, no shift), so that +-2^17 is +-10.7; |x| indexes the
256-entry table of sigmoid(i/24) in 0.16 (SIGMOID_TABLE_U16) with 9 fraction bits of linear
interpolation (index |x| >> 9, at or past entry 255 the output saturates), the result in 0.25
is mirrored for negative inputs (1 - sigmoid|x|) and brought back to Q0.15 by >> 10 with
rounding. TANH shares the table (tanh x = 2 sigmoid 2x - 1). Kernel: logistic_s16 (template
sigmoid_lut_s16, the table a static constant shared with tanh_s16)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import InPlace, Kernel, register
from tinyq.ops.common import INT16, WITH_INT16, ProbabilityOp, expect

INPUT_INTEGER_BITS = 4
F32 = np.float32


def sigmoid_table_u16() -> tuple[int, ...]:
    """TFLM's sigmoid_table_uint16 (a constant in its source), rebuilt from its definition:
    sigmoid(i/24) in 0.16, each entry lowered by half the error linear interpolation makes at
    the midpoint of its step (so the error is balanced between the ends and the middle), rounded.
    This reproduces entries 0..254 exactly (the nearest value is 0.004 from a rounding tie in
    float64); entry 255, which only serves as the upper end of the last step, is the largest
    uint16 in TFLM (sigmoid's limit 1.0 saturated) rather than the formula's 65534."""
    x = np.arange(256, dtype=np.float64) / 24.0

    def sigmoid(v):
        return 65536.0 / (1.0 + np.exp(-v))

    sample, mid, nxt = sigmoid(x), sigmoid(x + 0.5 / 24.0), sigmoid(x + 1.0 / 24.0)
    table = np.floor(sample - ((sample + nxt) / 2.0 - mid) / 2.0 + 0.5).astype(np.int64)
    table[255] = 65535
    return tuple(int(v) for v in table)


SIGMOID_TABLE_U16 = sigmoid_table_u16()
SIGMOID_TABLE_NP = np.asarray(SIGMOID_TABLE_U16, np.int64)


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


def saturating_input_min_scales(op, bits: int = 8) -> dict[str, float]:
    """TFLM's int8 input left shift (frexp of s_in x 2^27) must not be negative; the int16
    path has no lower limit."""
    return {op.inputs[0]: 2.0 ** -(31 - INPUT_INTEGER_BITS)} if bits == 8 else {}


@dataclass(frozen=True)
class SigmoidLutParams:
    """LOGISTIC's and TANH's int16 input side in TFLM: the input rescaled to units of
    1/(3 x 4096) by `input_multiplier` (< 2^15) and a rounding right shift. A multiplier of 0
    marks TFLM's power-of-two case: the kernel then uses 3 << input_left_shift and no shift."""

    input_multiplier: int
    input_left_shift: int


def checked_log2(scale: float) -> tuple[int, bool]:
    """TFLite's CheckedLog2 in float32: the rounded log2 and whether it is within 1e-3."""
    log2 = F32(np.log(F32(scale))) * (F32(1) / F32(np.log(F32(2))))
    rounded = fx.round_half_away(float(log2))
    return rounded, abs(float(log2 - F32(rounded))) < 1e-3


def sigmoid_lut_params(x, pot_shifts: tuple[int, ...]) -> SigmoidLutParams:
    """TFLM's int16 Prepare of LOGISTIC (power-of-two shifts (0,)) and TANH ((0, 1))."""
    log2, pot = checked_log2(x.s)
    shift = (15 - 3) + log2  # 3 integer bits
    if pot and shift in pot_shifts:
        return SigmoidLutParams(0, shift)
    multiplier = float(F32(x.s)) * 4096.0 * 3.0
    shift = 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    if multiplier >= 32768.0:
        # TFLM only DCHECKs this; the int32 product input x multiplier would overflow
        raise ValueError(f"int16 input scale {x.s:.6g} too large: the multiplier {multiplier:.0f} exceeds 32767")
    return SigmoidLutParams(int(multiplier), shift)


def sigmoid_lut_input(x, p: SigmoidLutParams):
    """The input in units of 1/(3 x 4096), as TFLM's int16 kernels rescale it."""
    mult, shift = (3 << p.input_left_shift, 0) if p.input_multiplier == 0 else (p.input_multiplier, p.input_left_shift)
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    return (x.astype(np.int64) * mult + rounding) >> shift


def sigmoid_lut_lookup(magnitude, fraction_bits: int, saturated: int):
    """sigmoid(|x|) from the table with `fraction_bits` of linear interpolation, in
    0.(16 + fraction_bits); `saturated` from entry 255 on."""
    uh = magnitude >> fraction_bits
    index = np.minimum(uh, 254)
    ua, ub = SIGMOID_TABLE_NP[index], SIGMOID_TABLE_NP[index + 1]
    ut = magnitude & ((1 << fraction_bits) - 1)
    return np.where(uh >= 255, saturated, (ua << fraction_bits) + ut * (ub - ua))


def logistic_s16(x, p: SigmoidLutParams) -> np.ndarray:
    """TFLM's int16 Logistic (Q0.15 out), also the gates of UNIDIRECTIONAL_SEQUENCE_LSTM."""
    v = sigmoid_lut_input(x, p)
    r = sigmoid_lut_lookup(np.abs(v), 9, 0x7FFF << 10)  # 0.25
    # 1 - sigmoid|x| for negative inputs; both rounded on the way back to Q0.15
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return (r >> 10).astype(np.int16)


def check_int16_probability_output(y) -> None:
    """TFLM's int16 LOGISTIC and TANH: output zero point 0, scale 2^-15 (by CheckedLog2)."""
    log2, pot = checked_log2(y.qparams.s)
    expect(pot and log2 == -15 and y.qparams.zp == 0, "int16 output must have scale 1/32768 and zero point 0")


def sigmoid_lut_kernel(function: str) -> Kernel:
    """The int16 kernel of LOGISTIC or TANH: one template, the shared table in its options."""
    return Kernel(
        f"{function}_s16",
        template="sigmoid_lut_s16",
        options={"function": function, "table": SIGMOID_TABLE_U16},
        in_place=InPlace.ELEMENTWISE,
    )


def sigmoid_lut_lower(ctx) -> dict:
    p = ctx.params
    return {
        "input_multiplier": p.input_multiplier,
        "input_left_shift": p.input_left_shift,
        "size": ctx.out.size,
        "input": ctx.input(),
        "output": ctx.output(),
    }


@register
class LogisticOp(ProbabilityOp):
    attrs = Logistic
    name = "LOGISTIC"
    signatures = WITH_INT16

    def check(self, a, ins, outs):
        super().check(a, ins, outs)
        if outs[0].dtype == INT16:
            check_int16_probability_output(outs[0])

    def params(self, attrs, ins, outs):
        if ins[0].dtype == INT16:
            return sigmoid_lut_params(ins[0].qparams, pot_shifts=(0,))
        return saturating_input_params(ins[0].qparams)

    def min_scales(self, op, graph, scale, bits=8):
        return saturating_input_min_scales(op, bits)

    def reference(self, a, p, ins, in_tensors, outs):
        if isinstance(p, SigmoidLutParams):
            return logistic_s16(ins[0], p)
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
        if graph[op.inputs[0]].dtype == INT16:
            return sigmoid_lut_kernel("logistic")
        return Kernel("logistic_s8", in_place=InPlace.ELEMENTWISE)

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

    def read_tflite(self, r, op, inputs, outputs):
        return Logistic(), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op("LOGISTIC", [writer.tensor(op.inputs[0])], [writer.tensor(op.outputs[0])])
