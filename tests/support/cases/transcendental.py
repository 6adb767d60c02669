"""TANH, HARD_SWISH and RSQRT alone, as the TFLite converter makes them (int8). The converter
keeps ELU in float (DEQUANTIZE, ELU, QUANTIZE) and TFLM has no int8 EXP or LOG, so those three
have no rows here. The rows avoid ADD and MUL with a constant operand: BinaryOp.lower asks the
memory plan for the constant's arena offset (a KeyError) before it registers the constant."""

from __future__ import annotations

from support.cases import Case


def _hard_swish(tf, x):
    return x * tf.nn.relu6(x + 3.0) / 6.0


ROWS = [
    Case("tanh_direct", (4, 5), lambda tf, x: tf.tanh(x), ("TANH",), tf=True),
    # Inputs beyond the 4-integer-bit radius (|x| up to 12) saturate.
    Case("tanh_saturating", (3, 5, 3), lambda tf, x: tf.tanh(x), ("TANH",), tf=True, calib_scale=12.0),
    Case("tanh_narrow_input", (37,), lambda tf, x: tf.tanh(x), ("TANH",), tf=True, calib_scale=0.2),
    Case("hard_swish_small_range", (4, 6), _hard_swish, ("HARD_SWISH",), tf=True),
    Case("hard_swish_wide_range", (3, 3, 7), _hard_swish, ("HARD_SWISH",), tf=True, calib_scale=8.0),
    Case("hard_swish_odd_sizes", (5, 1, 9), _hard_swish, ("HARD_SWISH",), tf=True, calib_scale=40.0),
    # RSQRT's input must not go below its zero point (TFLM fails on negative values): squares are
    # quantized from zero point -128. Constant operands are avoided (see the module docstring).
    Case("rsqrt_of_square", (4, 5), lambda tf, x: tf.math.rsqrt(x * x), ("RSQRT",), tf=True),
    Case(
        "rsqrt_sum_of_squares",
        (2, 3, 5),
        lambda tf, a, b: tf.math.rsqrt(a * a + b * b),
        ("RSQRT",),
        tf=True,
        inputs=2,
        calib_scale=3.0,
    ),
]
