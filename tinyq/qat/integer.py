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
"""

from __future__ import annotations

import numpy as np

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


def add(tf, a_codes, b_codes, a, b, out, lo, hi):
    """TFLM's int8 ADD on codes; a, b, out are (scale float64, zero point) pairs."""
    left_shift = 20
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
