"""16x8 TRANSPOSE_CONV and BATCH_MATMUL as single-op converter-made models: TFLM's int16
paths (TRANSPOSE_CONV: int64 scratch accumulators and an int64 bias, or none; BATCH_MATMUL:
both operands int16, a constant one too, int64 sums), each requantized with TFLM's int64
MultiplyByQuantizedMultiplier."""

from __future__ import annotations

from support.cases import Case
from support.cases.spatial import _constant, _transpose_conv

ROWS = [
    # --- TRANSPOSE_CONV -----------------------------------------------------------------------
    Case(  # no bias: the converter writes three inputs, the importer an int64 zero bias
        "s16_transpose_conv_s2_same_odd",
        (5, 5, 3),
        _transpose_conv((9, 9), (3, 3), 5, 2, "SAME"),
        ("TRANSPOSE_CONV",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_transpose_conv_s2_valid_bias_relu",
        (4, 3, 3),
        _transpose_conv((9, 7), (3, 3), 7, 2, "VALID", bias=True, relu=True),
        ("TRANSPOSE_CONV",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_transpose_conv_s1_same_bias",
        (6, 5, 5),
        _transpose_conv((6, 5), (3, 3), 3, 1, "SAME", bias=True),
        ("TRANSPOSE_CONV",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_transpose_conv_keras_s2_same",
        (5, 4, 3),
        lambda k, x: k.layers.Conv2DTranspose(5, 3, strides=2, padding="same", bias_initializer="random_normal")(x),
        ("TRANSPOSE_CONV",),
        int16=True,
    ),
    # --- BATCH_MATMUL -------------------------------------------------------------------------
    Case(
        "s16_batch_matmul_broadcast_adj_y",
        (2, 1, 3, 4),
        lambda tf, a, b: tf.matmul(a, b, transpose_b=True),
        ("BATCH_MATMUL",),
        tf=True,
        int16=True,
        input_shapes=((2, 1, 3, 4), (1, 3, 5, 4)),
    ),
    Case(
        "s16_batch_matmul_adj_x",
        (2, 5, 3),
        lambda tf, a, b: tf.matmul(a, b, transpose_a=True),
        ("BATCH_MATMUL",),
        tf=True,
        int16=True,
        input_shapes=((2, 5, 3), (2, 5, 7)),
    ),
    Case(  # the constant operand is int16 as well
        "s16_batch_matmul_constant_broadcast",
        (3, 4, 7),
        lambda tf, x: tf.matmul(x, _constant(tf, 3, (2, 1, 7, 5), 1.0)),
        ("BATCH_MATMUL",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_batch_matmul_constant_adj_y",
        (2, 3, 7),
        lambda tf, x: tf.matmul(x, _constant(tf, 4, (2, 5, 7), 1.0), transpose_b=True),
        ("BATCH_MATMUL",),
        tf=True,
        int16=True,
    ),
]
