"""16x8 (int16 activations, int8 weights) CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED as
single-op converter-made models: TFLM's int16 paths (int64 accumulation, int64 bias or,
for FULLY_CONNECTED, the bias dtype the converter writes)."""

from __future__ import annotations

from support.cases import Case


def _bias(k):  # Keras zero-initializes biases: a real one exercises the bias dtype
    return k.initializers.RandomNormal(stddev=0.5)


ROWS = [
    Case(
        "s16_conv3x3_s1_same",
        (8, 8, 3),
        lambda k, x: k.layers.Conv2D(6, 3, padding="same", bias_initializer=_bias(k))(x),
        ("CONV_2D",),
        int16=True,
    ),
    Case(
        "s16_conv3x3_s2_same_relu",
        (9, 9, 3),
        lambda k, x: k.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x),
        ("CONV_2D",),
        int16=True,
    ),
    Case(  # no bias: the converter still writes an int64 (zero) one
        "s16_conv_dilated_no_bias",
        (10, 10, 2),
        lambda k, x: k.layers.Conv2D(4, 3, dilation_rate=2, use_bias=False)(x),
        ("CONV_2D",),
        int16=True,
    ),
    Case(
        "s16_dw3x3_s1_same_relu6",
        (8, 8, 4),
        lambda k, x: k.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x),
        ("DEPTHWISE_CONV_2D",),
        int16=True,
    ),
    Case(
        "s16_dw3x3_mult2_s2_valid",
        (9, 9, 3),
        lambda k, x: k.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, bias_initializer=_bias(k))(x),
        ("DEPTHWISE_CONV_2D",),
        int16=True,
    ),
    Case(
        "s16_fc_per_channel",
        (24,),
        lambda k, x: k.layers.Dense(10, bias_initializer=_bias(k))(x),
        ("FULLY_CONNECTED",),
        int16=True,
        expect={"fc_per_channel": True},
    ),
    Case(
        "s16_fc_per_tensor_relu",
        (32,),
        lambda k, x: k.layers.Dense(8, activation="relu", bias_initializer=_bias(k))(x),
        ("FULLY_CONNECTED",),
        int16=True,
        per_tensor_dense=True,
        expect={"fc_per_channel": False},
    ),
    # no bias: TFLM still accumulates in int64 (it reads any FULLY_CONNECTED bias as int64)
    Case(
        "s16_fc_no_bias",
        (20,),
        lambda k, x: k.layers.Dense(6, use_bias=False)(x),
        ("FULLY_CONNECTED",),
        int16=True,
    ),
]
