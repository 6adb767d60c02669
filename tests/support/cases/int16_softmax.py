"""16x8 (int16 activations) SOFTMAX as converter-made models: TFLM's SoftmaxInt16, the exp and
1/(1+x) tables with interpolation, output at scale 1/32768 and zero point 0."""

from __future__ import annotations

from support.cases import Case


def _dense_softmax(k, x):
    logits = k.layers.Dense(10, kernel_initializer=k.initializers.RandomNormal(stddev=0.3))(x)
    return k.layers.Softmax()(logits)


ROWS = [
    # a classifier head: 10 classes after a Dense layer
    Case("s16_softmax_dense_10_classes", (16,), _dense_softmax, ("FULLY_CONNECTED", "SOFTMAX"), int16=True),
    # the last axis of a rank-4 tensor: many rows of 7
    Case("s16_softmax_rank4_last_axis", (3, 4, 7), lambda tf, x: tf.nn.softmax(x), ("SOFTMAX",), tf=True, int16=True),
    # inputs to +-40: differences beyond the exp table's [-10, 0] saturate to its first entry
    Case(
        "s16_softmax_wide_range",
        (5, 16),
        lambda tf, x: tf.nn.softmax(x),
        ("SOFTMAX",),
        tf=True,
        int16=True,
        calib_scale=40.0,
    ),
]
