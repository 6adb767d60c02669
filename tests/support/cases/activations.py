"""RELU, RELU6, LEAKY_RELU, PRELU and ABS as single-op converter-made models.

NEG has no row: the converter leaves it in float (between a DEQUANTIZE and a QUANTIZE) even in
int8 mode, and TFLM has no int8 NEG, so no such model reaches C."""

from __future__ import annotations

from support.cases import Case


def _prelu(shared_axes=None):
    def build(k, x):
        alpha = k.initializers.RandomUniform(-0.6, 0.6)
        return k.layers.PReLU(alpha_initializer=alpha, shared_axes=shared_axes)(x)

    return build


ROWS = [
    Case("relu_plain", (4, 5, 3), lambda tf, x: tf.nn.relu(x), ("RELU",), tf=True),
    Case("relu_odd_wide_range", (7, 13), lambda tf, x: tf.nn.relu(x), ("RELU",), tf=True, calib_scale=5.0),
    # TFLM's RELU6 clamps the input codes to [zp_in, code of 6.0] and keeps them: with inputs
    # to 8.0 the upper clamp bites; with inputs to 4.0 the code of 6.0 is beyond int8.
    Case("relu6_clamps_at_six", (4, 5, 3), lambda tf, x: tf.nn.relu6(x), ("RELU6",), tf=True, calib_scale=8.0),
    Case("relu6_six_beyond_range", (9,), lambda tf, x: tf.nn.relu6(x), ("RELU6",), tf=True, calib_scale=4.0),
    Case("leaky_relu_alpha_0_2", (4, 5, 3), lambda tf, x: tf.nn.leaky_relu(x, 0.2), ("LEAKY_RELU",), tf=True),
    Case("leaky_relu_negative_alpha", (11,), lambda tf, x: tf.nn.leaky_relu(x, -0.3), ("LEAKY_RELU",), tf=True),
    Case(
        "leaky_relu_alpha_above_one",
        (3, 7),
        lambda tf, x: tf.nn.leaky_relu(x, 1.7),
        ("LEAKY_RELU",),
        tf=True,
        calib_scale=2.0,
    ),
    Case("prelu_per_channel", (4, 5, 3), _prelu(shared_axes=[1, 2]), ("PRELU",)),
    Case("prelu_elementwise_alpha", (3, 5, 2), _prelu(), ("PRELU",)),
    Case("prelu_shared_height", (6, 5, 4), _prelu(shared_axes=[1]), ("PRELU",)),
    Case("abs_plain", (4, 5, 3), lambda tf, x: tf.abs(x), ("ABS",), tf=True),
    # a LEAKY_RELU output's range is lopsided: ABS then sees a zero point far from 0
    Case(
        "abs_of_lopsided_input",
        (6, 7),
        lambda tf, x: tf.abs(tf.nn.leaky_relu(x, 0.4)),
        ("LEAKY_RELU", "ABS"),
        tf=True,
        calib_scale=3.0,
    ),
]
