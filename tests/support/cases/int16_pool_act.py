"""16x8 (int16 activations) pooling, RELU-family activations and MEAN as single-op
converter-made models: TFLM's int16 paths of MAX_POOL_2D, AVERAGE_POOL_2D, RELU, RELU6,
LEAKY_RELU and MEAN."""

from __future__ import annotations

from support.cases import Case


def _pool(kind, size, stride, padding):
    def build(tf, x):
        return getattr(tf.nn, kind)(x, size, stride, padding)

    return build


ROWS = [
    Case("s16_maxpool2_valid", (8, 8, 3), _pool("max_pool2d", 2, 2, "VALID"), ("MAX_POOL_2D",), tf=True, int16=True),
    Case("s16_maxpool3_s1_same", (7, 6, 4), _pool("max_pool2d", 3, 1, "SAME"), ("MAX_POOL_2D",), tf=True, int16=True),
    # four channels: the fast int8 average pool would apply, so the portable kernel is chosen by dtype
    Case(
        "s16_avgpool2_valid", (8, 6, 4), _pool("avg_pool2d", 2, 2, "VALID"), ("AVERAGE_POOL_2D",), tf=True, int16=True
    ),
    # SAME padding: border windows average fewer cells (padded cells are not counted)
    Case(
        "s16_avgpool3_s1_same", (7, 7, 3), _pool("avg_pool2d", 3, 1, "SAME"), ("AVERAGE_POOL_2D",), tf=True, int16=True
    ),
    Case("s16_relu_plain", (4, 5, 3), lambda tf, x: tf.nn.relu(x), ("RELU",), tf=True, int16=True),
    Case("s16_relu_wide_range", (7, 13), lambda tf, x: tf.nn.relu(x), ("RELU",), tf=True, int16=True, calib_scale=5.0),
    # inputs to 8.0: the clamp at the code of 6.0 bites; inputs to 4.0: the code of 6.0 is beyond int16
    Case(
        "s16_relu6_clamps_at_six",
        (4, 5, 3),
        lambda tf, x: tf.nn.relu6(x),
        ("RELU6",),
        tf=True,
        int16=True,
        calib_scale=8.0,
    ),
    Case(
        "s16_relu6_six_beyond_range",
        (9,),
        lambda tf, x: tf.nn.relu6(x),
        ("RELU6",),
        tf=True,
        int16=True,
        calib_scale=4.0,
    ),
    Case(
        "s16_leaky_relu_alpha_0_2",
        (4, 5, 3),
        lambda tf, x: tf.nn.leaky_relu(x, 0.2),
        ("LEAKY_RELU",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_leaky_relu_negative_alpha",
        (11,),
        lambda tf, x: tf.nn.leaky_relu(x, -0.3),
        ("LEAKY_RELU",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_mean_spatial_keep",
        (6, 5, 4),
        lambda tf, x: tf.reduce_mean(x, axis=[1, 2], keepdims=True),
        ("MEAN",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_mean_one_axis",
        (5, 6, 3),
        lambda tf, x: tf.reduce_mean(x, axis=[2]),
        ("MEAN",),
        tf=True,
        int16=True,
    ),
]
