"""The integer arithmetic of the deployed kernels, in TensorFlow, for the QAT forward pass.

Fake quantization in float (round(y / s) + z) and TFLite Micro's integer
requantization (a 31-bit multiplier, then double rounding) disagree by one
code on a few percent of the elements, and the disagreements compound over
layers. The QAT model therefore computes each requantizing op's output codes
exactly as the kernels do (int64 accumulators, QuantizeMultiplier, saturating
rounding doubling high multiply, rounding divide by a power of two) and uses
them in the forward pass, with the float fake-quant path's gradient (the
straight-through estimator). These are the TensorFlow twins of
tinyq.fixedpoint and of the ops' `params` facets (tinyq/ops).

16x8 (int16 activations, zero points 0): an affine layer with an int64 bias (the
form tinyq deploys) requantizes with TFLM's int64 MultiplyByQuantizedMultiplier
(`requantize_int64`: the multiplier rounded to 16 bits, one rounding shift), and ADD
keeps 15 bits of headroom instead of 20 (`add(..., left_shift=15)`); SOFTMAX is TFLM's
int16 kernel (`softmax_int16`: the exp and 1/(1+x) tables with interpolation).
"""

from __future__ import annotations

import numpy as np

from tinyq.ops.softmax import EXP_LUT, ONE_OVER_ONE_PLUS_X_LUT

INT32_MIN = -(1 << 31)


def quantize_multiplier(tf, real):
    """TFLite's QuantizeMultiplier on a float64 tensor of positive reals: (multiplier, shift) int64."""
    exponent = tf.math.floor(tf.math.log(real) / np.log(2.0)) + 1.0
    q = real / tf.pow(tf.constant(2.0, tf.float64), exponent)
    # log2 in floating point can miss by one near powers of two: put q back in [0.5, 1)
    exponent = tf.where(q >= 1.0, exponent + 1, tf.where(q < 0.5, exponent - 1, exponent))
    q = real / tf.pow(tf.constant(2.0, tf.float64), exponent)
    fixed = tf.floor(q * 2.0**31 + 0.5)
    carry = fixed >= 2.0**31
    fixed = tf.where(carry, fixed / 2, fixed)
    exponent = tf.where(carry, exponent + 1, exponent)
    flush = exponent < -31
    zero = tf.zeros_like(fixed)
    return tf.cast(tf.where(flush, zero, fixed), tf.int64), tf.cast(tf.where(flush, zero, exponent), tf.int64)


def _truncdiv_pow2_31(tf, x):
    return tf.where(x >= 0, x // (1 << 31), -((-x) // (1 << 31)))


def srdhm(tf, a, b):
    ab = a * b
    nudge = tf.where(ab >= 0, tf.constant(1 << 30, tf.int64), tf.constant(1 - (1 << 30), tf.int64))
    overflow = tf.logical_and(tf.equal(a, INT32_MIN), tf.equal(b, INT32_MIN))
    return tf.where(overflow, tf.constant((1 << 31) - 1, tf.int64), _truncdiv_pow2_31(tf, ab + nudge))


def rounding_divide_by_pot(tf, x, exponent):
    mask = tf.bitwise.left_shift(tf.ones_like(exponent), exponent) - 1
    remainder = tf.bitwise.bitwise_and(x, mask)
    threshold = tf.bitwise.right_shift(mask, tf.ones_like(mask)) + tf.cast(x < 0, tf.int64)
    return tf.bitwise.right_shift(x, exponent) + tf.cast(remainder > threshold, tf.int64)


def multiply_by_quantized_multiplier(tf, x, multiplier, shift):
    left = tf.maximum(shift, 0)
    right = tf.maximum(-shift, 0)
    shifted = x * tf.bitwise.left_shift(tf.ones_like(left), left)
    return rounding_divide_by_pot(tf, srdhm(tf, shifted, multiplier), right)


def requantize(tf, acc, real_scale, zero_point, lo, hi):
    """int64 accumulators -> int8 codes (as float64), per-channel `real_scale` on the last axis."""
    multiplier, shift = quantize_multiplier(tf, real_scale)
    out = multiply_by_quantized_multiplier(tf, acc, multiplier, shift) + tf.cast(zero_point, tf.int64)
    return tf.cast(tf.clip_by_value(out, tf.cast(lo, tf.int64), tf.cast(hi, tf.int64)), tf.float64)


def requantize_codes(tf, codes, in_params, out_params, lo, hi):
    """TFLM's Requantize (the int8 -> int8 or int16 -> int16 QUANTIZE before a concatenation):
    codes less the input zero point, the int32 MultiplyByQuantizedMultiplier of s_in / s_out,
    plus the output zero point. `in_params`, `out_params`: (scale float64, zero point) pairs."""
    multiplier, shift = quantize_multiplier(tf, in_params[0] / out_params[0])
    shifted = tf.cast(codes, tf.int64) - tf.cast(in_params[1], tf.int64)
    out = multiply_by_quantized_multiplier(tf, shifted, multiplier, shift) + tf.cast(out_params[1], tf.int64)
    return tf.cast(tf.clip_by_value(out, tf.cast(lo, tf.int64), tf.cast(hi, tf.int64)), tf.float64)


def wrap32(tf, x):
    """Two's-complement wrap of int64 values to int32, as the C arithmetic does."""
    return tf.bitwise.bitwise_and(x + (1 << 31), tf.constant(0xFFFFFFFF, tf.int64)) - (1 << 31)


def multiply_by_quantized_multiplier_int64(tf, x, multiplier, shift):
    """TFLM's MultiplyByQuantizedMultiplier for int64 accumulators (the 16x8 kernels): the 31-bit
    multiplier reduced to 16 bits (rounded, capped at 0x7FFF), one rounding shift by 15 - shift."""
    reduced = tf.where(
        multiplier < 0x7FFF0000,
        tf.bitwise.right_shift(multiplier + (1 << 15), tf.constant(16, tf.int64)),
        tf.constant(0x7FFF, tf.int64),
    )
    total = 15 - shift
    rounding = tf.bitwise.left_shift(tf.ones_like(total), total - 1)
    return tf.bitwise.right_shift(x * reduced + rounding, total)


def requantize_int64(tf, acc, real_scale, lo, hi):
    """int64 accumulators -> int16 codes (as float64) of a 16x8 layer with an int64 bias (output
    zero point 0), per-channel `real_scale` on the last axis."""
    multiplier, shift = quantize_multiplier(tf, real_scale)
    out = wrap32(tf, multiply_by_quantized_multiplier_int64(tf, acc, multiplier, shift))  # TFLM returns int32
    return tf.cast(tf.clip_by_value(out, tf.cast(lo, tf.int64), tf.cast(hi, tf.int64)), tf.float64)


def add(tf, a_codes, b_codes, a, b, out, lo, hi, left_shift: int = 20):
    """TFLM's ADD on codes; a, b, out are (scale float64, zero point) pairs; `left_shift` is the
    headroom: 20 for int8, 15 for int16."""
    twice_max = 2.0 * tf.maximum(a[0], b[0])
    m1, s1 = quantize_multiplier(tf, a[0] / twice_max)
    m2, s2 = quantize_multiplier(tf, b[0] / twice_max)
    mo, so = quantize_multiplier(tf, twice_max / ((1 << left_shift) * out[0]))

    def scaled(codes, zp, m, s):
        shifted = (tf.cast(codes, tf.int64) - tf.cast(zp, tf.int64)) * (1 << left_shift)
        return rounding_divide_by_pot(tf, srdhm(tf, shifted, m), -s)

    total = scaled(a_codes, a[1], m1, s1) + scaled(b_codes, b[1], m2, s2)
    result = rounding_divide_by_pot(tf, srdhm(tf, total, mo), -so) + tf.cast(out[1], tf.int64)
    return tf.cast(tf.clip_by_value(result, tf.cast(lo, tf.int64), tf.cast(hi, tf.int64)), tf.float64)


def round_half_away(tf, x):
    """roundf() in TensorFlow; floor(|x| + 0.5) would round float32 0.49999997 up."""
    a = tf.abs(x)
    r = tf.floor(a)
    return tf.sign(x) * (r + tf.cast(a - r >= 0.5, x.dtype))


def lut_lookup_int16(tf, value, lut):
    """TFLM's lut_lookup_with_interpolation for int16 (tinyq.ops.softmax.lut_lookup_int16)."""
    table = tf.constant(np.asarray(lut, np.int64))
    index = 256 + tf.bitwise.right_shift(value, tf.constant(7, tf.int64))
    offset = tf.bitwise.bitwise_and(value, tf.constant(0x7F, tf.int64))
    base = tf.gather(table, index)
    mask = tf.constant(0xFFFF, tf.int64)
    slope = tf.bitwise.bitwise_and(tf.gather(table, index + 1) - base + 32768, mask) - 32768  # int16 arithmetic
    delta = tf.bitwise.right_shift(slope * offset + 64, tf.constant(7, tf.int64))
    return tf.bitwise.bitwise_and(base + delta + 32768, mask) - 32768


def softmax_int16(tf, codes, input_scale, beta: float):
    """TFLM's int16 SOFTMAX on the last axis of int16 codes (as float64) at `input_scale`;
    output codes at 1/32768 (tinyq.ops.softmax's int16 reference)."""
    real = tf.cast(input_scale, tf.float64) * float(np.float32(beta)) / (10.0 / 65535.0)
    multiplier, shift = quantize_multiplier(tf, real)
    x = tf.cast(codes, tf.int64)
    diff = x - tf.reduce_max(x, axis=-1, keepdims=True)
    scaled = multiply_by_quantized_multiplier(tf, diff, multiplier, shift)
    exps = lut_lookup_int16(tf, tf.clip_by_value(scaled + 32767, -32768, 32767), EXP_LUT)  # Q0.15
    total = wrap32(tf, tf.reduce_sum(exps, axis=-1, keepdims=True))  # Q16.15, positive
    headroom_plus_one = tf.add_n([tf.cast(total < (1 << k), tf.int64) for k in range(32)])  # leading zeros
    shifted_sum = tf.bitwise.right_shift(tf.bitwise.left_shift(total, headroom_plus_one - 1) + (1 << 13), 14)
    sym = tf.clip_by_value(shifted_sum - ((1 << 15) + (1 << 16)), -32768, 32767)
    reciprocal = lut_lookup_int16(tf, sym, ONE_OVER_ONE_PLUS_X_LUT)  # Q0.15
    right_shift = 31 - headroom_plus_one
    rounding = tf.bitwise.left_shift(tf.ones_like(right_shift), right_shift - 1)
    out = tf.bitwise.right_shift(exps * reciprocal + rounding, right_shift)
    return tf.cast(tf.clip_by_value(out, 0, 32767), tf.float64)
