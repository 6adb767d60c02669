"""16x8 (int16 activations) data movement and the boundary conversions as single-op
converter-made models: TFLM's int16 RESHAPE, PAD, CONCATENATION, TRANSPOSE, STRIDED_SLICE and
SLICE (values moved as they are), and with float model inputs and outputs QUANTIZE float32 ->
int16 and DEQUANTIZE int16 -> float32. (int8 <-> int16 QUANTIZE, which the converter's 16x8
mode does not make, is tested on hand-built graphs in tests/test_int16_quantize.py.)"""

from __future__ import annotations

from support.cases import Case


def _transpose_after_op(tf, x, perm):
    # after an op: a TRANSPOSE of the graph input itself is folded at import
    return tf.transpose(tf.nn.leaky_relu(x, 0.25), perm)


T = ("LEAKY_RELU", "TRANSPOSE")

ROWS = [
    Case("s16_reverse_last_axis", (4, 6), lambda tf, x: tf.reverse(x, [-1]), ("REVERSE_V2",), tf=True, int16=True),
    # RESHAPE (SQUEEZE is imported as it)
    Case("s16_reshape_flatten", (4, 5, 3), lambda tf, x: tf.reshape(x, [1, 60]), ("RESHAPE",), tf=True, int16=True),
    Case("s16_reshape_squeeze", (1, 6, 1, 4), lambda tf, x: tf.squeeze(x, [1, 3]), ("RESHAPE",), tf=True, int16=True),
    # PAD: TFLM pads int16 with 0 (the zero point of symmetric int16)
    Case(
        "s16_pad_spatial_asymmetric",
        (5, 4, 3),
        lambda tf, x: tf.pad(x, [[0, 0], [1, 2], [0, 3], [0, 0]]),
        ("PAD",),
        tf=True,
        int16=True,
    ),
    Case("s16_pad_rank2_channels", (7,), lambda tf, x: tf.pad(x, [[0, 0], [2, 1]]), ("PAD",), tf=True, int16=True),
    # CONCATENATION: two inputs of one range (the converter gives them the output's scale)
    Case(
        "s16_concat_channels",
        (3, 4, 2),
        lambda tf, a, b: tf.concat([a, b], axis=-1),
        ("CONCATENATION",),
        tf=True,
        int16=True,
        inputs=2,
    ),
    Case(
        "s16_concat_three_axis1",
        (2, 3),
        lambda tf, a, b, c: tf.concat([a, b, c], axis=1),
        ("CONCATENATION",),
        tf=True,
        int16=True,
        inputs=3,
    ),
    # inputs of ranges 1 and 2: the converter requantizes one (int16 -> int16 QUANTIZE) to the
    # output's scale, since TFLM's int16 CONCATENATION copies values as they are
    Case(
        "s16_concat_requantized_input",
        (4, 3),
        lambda tf, x: tf.concat([x, tf.nn.leaky_relu(x, 2.0)], axis=1),
        ("LEAKY_RELU", "QUANTIZE", "CONCATENATION"),
        tf=True,
        int16=True,
    ),
    # TRANSPOSE
    Case(
        "s16_transpose_nhwc_to_nchw",
        (3, 4, 5),
        lambda tf, x: _transpose_after_op(tf, x, [0, 3, 1, 2]),
        T,
        tf=True,
        int16=True,
    ),
    Case("s16_transpose_rank3", (6, 5), lambda tf, x: _transpose_after_op(tf, x, [0, 2, 1]), T, tf=True, int16=True),
    # STRIDED_SLICE: steps, a reversed axis, a shrunk axis
    Case(
        "s16_strided_slice_step_reverse_shrink",
        (6, 7, 5),
        lambda tf, x: x[:, 1:5:2, ::-1, 3],
        ("STRIDED_SLICE",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_strided_slice_rank3_odd",
        (9, 7),
        lambda tf, x: x[:, 1:-1, ::3],
        ("STRIDED_SLICE",),
        tf=True,
        int16=True,
    ),
    # SLICE
    Case(
        "s16_slice_4d_to_end",
        (6, 7, 5),
        lambda tf, x: tf.slice(x, [0, 1, 2, 0], [1, 3, -1, 4]),
        ("SLICE",),
        tf=True,
        int16=True,
    ),
    Case("s16_slice_2d", (9,), lambda tf, x: tf.slice(x, [0, 2], [1, 5]), ("SLICE",), tf=True, int16=True),
    # float model inputs and outputs: QUANTIZE float32 -> int16 in front, DEQUANTIZE behind
    # (calibration to +-2: the test inputs, to +-1.5, stay inside the range)
    Case(
        "s16_float_io_reshape",
        (4, 6),
        lambda tf, x: tf.reshape(x, [1, 24]),
        ("QUANTIZE", "RESHAPE", "DEQUANTIZE"),
        tf=True,
        int16=True,
        float_io=True,
        calib_scale=2.0,
    ),
    # calibration to +-0.5: test inputs to +-1.5 go beyond, and QUANTIZE saturates at the int16 range
    Case(
        "s16_float_io_pad_wide",
        (5, 3),
        lambda tf, x: tf.pad(x, [[0, 0], [1, 0], [0, 2]]),
        ("QUANTIZE", "PAD", "DEQUANTIZE"),
        tf=True,
        int16=True,
        float_io=True,
        calib_scale=0.5,
    ),
]
