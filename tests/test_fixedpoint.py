"""Fixed-point arithmetic against exact computations in Python integers."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyq import fixedpoint as fx

INT32 = st.integers(fx.INT32_MIN, fx.INT32_MAX)
EXPONENT = st.integers(0, 31)


def exact_round_half_up(q: Fraction) -> int:
    return math.floor(q + Fraction(1, 2))


def exact_round_half_away(q: Fraction) -> int:
    return int(math.copysign(math.floor(abs(q) + Fraction(1, 2)), q))


def exact_srdhm(a: int, b: int) -> int:
    if a == b == fx.INT32_MIN:
        return fx.INT32_MAX
    return exact_round_half_up(Fraction(a * b, 1 << 31))


@settings(max_examples=2000)
@given(INT32, INT32)
def test_srdhm_is_round_half_up_of_the_doubled_high_product(a, b):
    assert int(fx.saturating_rounding_doubling_high_mul(a, b)) == exact_srdhm(a, b)


def test_srdhm_edge_cases():
    assert fx.saturating_rounding_doubling_high_mul(fx.INT32_MIN, fx.INT32_MIN) == fx.INT32_MAX
    assert fx.saturating_rounding_doubling_high_mul(fx.INT32_MIN, fx.INT32_MAX) == -fx.INT32_MAX
    # a*b/2^31 = -0.5 and +0.5: gemmlowp's nudge rounds both ties upward
    assert fx.saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15) == 0
    assert fx.saturating_rounding_doubling_high_mul(1 << 15, 1 << 15) == 1
    assert fx.saturating_rounding_doubling_high_mul(-3 << 15, 1 << 15) == -1


@settings(max_examples=2000)
@given(INT32, EXPONENT)
def test_rounding_divide_by_pot_rounds_half_away_from_zero(x, e):
    assert int(fx.rounding_divide_by_pot(x, e)) == exact_round_half_away(Fraction(x, 1 << e))


def test_rounding_divide_by_pot_negative_ties():
    assert fx.rounding_divide_by_pot(-1, 1) == -1  # -0.5 -> -1
    assert fx.rounding_divide_by_pot(-3, 1) == -2  # -1.5 -> -2
    assert fx.rounding_divide_by_pot(-5, 2) == -1  # -1.25 -> -1
    assert fx.rounding_divide_by_pot(5, 1) == 3


@settings(max_examples=2000)
@given(st.integers(-(1 << 24), 1 << 24), st.integers(1 << 30, fx.INT32_MAX), st.integers(-31, 6))
def test_multiply_by_quantized_multiplier_is_double_rounded(x, m, shift):
    left, right = max(shift, 0), max(-shift, 0)
    high = exact_srdhm(x << left, m)
    expected = exact_round_half_away(Fraction(high, 1 << right))
    got = int(fx.multiply_by_quantized_multiplier(x, m, shift))
    assert got == expected
    # Double rounding stays within one unit of the exact product.
    assert abs(got - Fraction(x * m, 1 << 31) * Fraction(2) ** shift) <= 1


def test_double_rounding_differs_from_single_rounding():
    """The case the anchors warn about: TFLM's double rounding != one rounding."""
    x, m, shift = 3, 1 << 30, -2  # 3 * 0.5 / 4 = 0.375 -> SRDHM gives 2, 2/4 = 0.5 rounds to 1
    assert fx.multiply_by_quantized_multiplier(x, m, shift) == 1
    assert round(Fraction(x * m, 1 << 31) / 4) == 0


@settings(max_examples=2000)
@given(st.floats(min_value=2.0**-40, max_value=2.0**20, allow_nan=False))
def test_quantize_multiplier_reconstructs_the_real(real):
    m, shift = fx.quantize_multiplier(real)
    if real < 2.0**-32:
        assert (m, shift) == (0, 0)
        return
    assert (1 << 30) <= m < (1 << 31)
    error = abs(Fraction(m) * Fraction(2) ** (shift - 31) - Fraction(real))
    assert error <= Fraction(2) ** (shift - 32)


def test_quantize_multiplier_edge_cases():
    assert fx.quantize_multiplier(0.0) == (0, 0)
    assert fx.quantize_multiplier(1.0) == (1 << 30, 1)
    assert fx.quantize_multiplier(1 - 2.0**-40) == (1 << 30, 1)  # rounds up to 2^31: carry
    assert fx.quantize_multiplier(2.0**-33) == (0, 0)  # flushed to zero
    assert fx.quantize_multiplier(2.0**-32) == (1 << 30, -31)  # smallest kept
    assert fx.quantize_multiplier(-0.75) == (-(3 << 29), 0)


def test_gemmlowp_functions_track_the_real_functions():
    """Float-vs-int comparison: tolerances are fine here."""
    xs = np.linspace(-31.9, 0, 4001)
    exp = fx.exp_on_negative_values(np.round(xs * 2**26).astype(np.int64), 5) / 2**31
    assert np.max(np.abs(exp - np.exp(xs))) < 2e-6
    assert fx.exp_on_negative_values(0, 5) == fx.INT32_MAX
    ys = np.linspace(0, 0.999, 2001)
    inv = fx.one_over_one_plus_x_for_x_in_0_1(np.round(ys * 2**31).astype(np.int64)) / 2**31
    assert np.max(np.abs(inv - 1 / (1 + ys))) < 1e-8
    zs = np.linspace(-15.9, 15.9, 4001)
    lg = fx.logistic(np.round(zs * 2**27).astype(np.int64), 4) / 2**31
    assert np.max(np.abs(lg - 1 / (1 + np.exp(-zs)))) < 1e-6
    sums = np.array([1 << 19, 3 << 18, 12345678, 1])
    scale, bits = fx.get_reciprocal(sums, 12)
    approx = scale / 2**31 * 2.0 ** -bits.astype(float)
    assert np.allclose(approx, 1 / (sums / 2**19), rtol=1e-7)


@given(st.integers(0, 0xFFFFFFFF))
def test_count_leading_zeros(x):
    assert int(fx.count_leading_zeros32(x)) == 32 - x.bit_length()
