"""Fixed-point arithmetic exactly as TFLite Micro's default kernels compute it.

Everything here works on numpy arrays of int64 that hold int32 values, so it
vectorizes and stays exact; results are int32 values (still held in int64).
The gemmlowp-style helpers (exp, reciprocal, logistic) exist for SOFTMAX and
LOGISTIC. TFLM requantizes with *double rounding*: a saturating rounding
doubling high multiply, then a rounding divide by a power of two.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def round_half_away(x: float) -> int:
    """C's std::round / TfLiteRound on a double."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real ~= multiplier * 2^(shift - 31).

    Handles the q == 2^31 rounding carry and flushes multipliers below 2^-31
    to zero, as TFLite does (no shift > 30 saturation: that is single-rounding
    only).
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if abs(q_fixed) == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    if real <= 1.0:
        raise ValueError(f"multiplier {real} must be > 1")
    return quantize_multiplier(real)


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} must be in (0, 1)")
    return quantize_multiplier(real)


def wrap32(x):
    """Two's-complement wrap to int32, as the C arithmetic does."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _i64(x):
    return np.asarray(x, dtype=np.int64)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31), ties up."""
    a, b = _i64(a), _i64(b)
    # C's (ab + nudge) / 2^31, the nudge 2^30 or 1 - 2^30 by the sign and the division truncating,
    # is floor((ab + 2^30) / 2^31) for every product: for ab < 0, truncating adds 2^31 - 1
    # before flooring, which with 1 - 2^30 makes 2^30
    high = (a * b + (1 << 30)) >> 31
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high) if overflow.any() else high


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, ties away from zero."""
    x, exponent = _i64(x), _i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLM's MultiplyByQuantizedMultiplier (double rounding)."""
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap32(_i64(x) * (np.int64(1) << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_int64(x, multiplier, shift):
    """TFLM's MultiplyByQuantizedMultiplier for an int64 accumulator (the 16x8 kernels): the
    multiplier reduced to 16 bits (rounded, capped at 0x7FFF), one rounding shift by 15 - shift."""
    m = _i64(multiplier)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - _i64(shift)
    return (_i64(x) * reduced + (np.int64(1) << (total - 1))) >> total


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, left_shift):
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -_i64(left_shift))


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift):
    return saturating_rounding_doubling_high_mul(wrap32(_i64(x) * (np.int64(1) << _i64(left_shift))), multiplier)


# --- gemmlowp fixed-point helpers (raw int32 values; the integer-bit count
# --- of each quantity is tracked by the caller, as in gemmlowp's templates)


def saturating_rounding_multiply_by_pot(x, exponent: int):
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    out = wrap32(x << exponent)
    out = np.where(x > threshold, INT32_MAX, out)
    return np.where(x < -threshold, INT32_MIN, out)


def rescale(x, src_integer_bits: int, dst_integer_bits: int):
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def _fx_mul(a, b):
    return saturating_rounding_doubling_high_mul(a, b)


def rounding_half_sum(a, b):
    s = _i64(a) + _i64(b)
    s = s + np.where(s >= 0, 1, -1)
    return np.where(s >= 0, s // 2, -((-s) // 2))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a in [-1/4, 0), a and result with 0 integer bits."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = wrap32(_i64(a) + (1 << 28))  # a + 1/8
    x2 = _fx_mul(x, x)
    x3 = _fx_mul(x2, x)
    x4 = _fx_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(wrap32(_fx_mul(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return wrap32(constant_term + _fx_mul(constant_term, wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int):
    """gemmlowp exp_on_negative_values: a (<= 0) with `integer_bits`, result Q0.31."""
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0)
    )
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, _fx_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp: 1/(1+a) for a in [0,1), both Q0.31."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = wrap32(1515870810 + _fx_mul(half_denominator, -1010580540))  # Q2.29
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = _fx_mul(half_denominator, x)
        one_minus = wrap32(one_q2 - half_denominator_times_x)
        x = wrap32(x + rescale(_fx_mul(x, one_minus), 4, 2))
    return rescale(x, 1, 0)  # ExactMulByPot<-1> turns Q2 into Q1 with the same raw


def count_leading_zeros32(x):
    """Leading zero bits of x as a uint32 (32 for zero)."""
    v = _i64(x) & 0xFFFFFFFF
    n = np.zeros_like(v)
    for bits in (16, 8, 4, 2, 1):
        small = v < (1 << (32 - bits))
        n = n + np.where(small, bits, 0)
        v = np.where(small, v << bits, v)
    return np.where(_i64(x) & 0xFFFFFFFF == 0, 32, n)


def get_reciprocal(x, x_integer_digits: int):
    """TFLite GetReciprocal: (raw Q0.31 of 1/x scaled to [0.5, 1), num_bits_over_unit)."""
    ux = _i64(x) & 0xFFFFFFFF
    headroom_plus_one = count_leading_zeros32(ux)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap32(((ux << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def logistic(a, integer_bits: int):
    """gemmlowp logistic: input with `integer_bits`, result Q0.31."""
    a = _i64(a)
    positive = a > 0
    abs_a = np.where(positive, a, wrap32(-a))
    result_pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_a), integer_bits))
    result_neg = wrap32(INT32_MAX - result_pos)
    out = np.where(positive, result_pos, result_neg)
    return np.where(a == 0, 1 << 30, out)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * (1 << (total_signed_bits - input_integer_bits))
        / (1 << input_left_shift)
    )
    return int(math.floor(max_input_rescaled))
