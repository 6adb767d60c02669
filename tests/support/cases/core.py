"""The MLPerf Tiny operator set's awkward corners, as converter-made models."""

from __future__ import annotations

from support.cases import Case


def _branches(k, x, scale_a, scale_b):
    a = k.layers.Conv2D(4, 3, padding="same", kernel_initializer=k.initializers.RandomNormal(stddev=scale_a))(x)
    b = k.layers.Conv2D(4, 3, padding="same", kernel_initializer=k.initializers.RandomNormal(stddev=scale_b))(x)
    return a, b


def _softmax_at(stddev):
    def build(k, x):
        logits = k.layers.Dense(10, kernel_initializer=k.initializers.RandomNormal(stddev=stddev))(
            k.layers.Flatten()(x)
        )
        return k.layers.Softmax()(logits)

    return build


ROWS = [
    Case("conv3x3_s1_same", (9, 9, 3), lambda k, x: k.layers.Conv2D(8, 3, padding="same")(x), ("CONV_2D",)),
    Case(
        "conv3x3_s2_same_odd", (9, 9, 3), lambda k, x: k.layers.Conv2D(8, 3, strides=2, padding="same")(x), ("CONV_2D",)
    ),
    Case("conv3x3_s2_valid", (10, 10, 3), lambda k, x: k.layers.Conv2D(8, 3, strides=2)(x), ("CONV_2D",)),
    Case("conv1x1_relu", (6, 6, 8), lambda k, x: k.layers.Conv2D(16, 1, activation="relu")(x), ("CONV_2D",)),
    Case(
        "conv5x3_relu6",
        (11, 7, 2),
        lambda k, x: k.layers.Conv2D(8, (5, 3), padding="same", activation="relu6")(x),
        ("CONV_2D",),
    ),
    Case("conv_dilated", (12, 12, 3), lambda k, x: k.layers.Conv2D(4, 3, dilation_rate=2)(x), ("CONV_2D",)),
    Case(
        "conv_s2_nonsquare_stride",
        (12, 9, 3),
        lambda k, x: k.layers.Conv2D(4, (3, 2), strides=(2, 1), padding="same")(x),
        ("CONV_2D",),
    ),
    Case(
        "dw3x3_s1_same_relu",
        (8, 8, 6),
        lambda k, x: k.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x),
        ("DEPTHWISE_CONV_2D",),
    ),
    Case(
        "dw3x3_mult2_s2_valid",
        (9, 9, 4),
        lambda k, x: k.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2)(x),
        ("DEPTHWISE_CONV_2D",),
    ),
    Case(
        "dw3x5_mult3_same",
        (7, 9, 3),
        lambda k, x: k.layers.DepthwiseConv2D((3, 5), padding="same", depth_multiplier=3)(x),
        ("DEPTHWISE_CONV_2D",),
    ),
    Case(
        "fc_per_channel",
        (4, 4, 2),
        lambda k, x: k.layers.Dense(10)(k.layers.Flatten()(x)),
        ("FULLY_CONNECTED",),
        expect={"fc_per_channel": True},
    ),
    Case(
        "fc_per_tensor_relu",
        (4, 4, 2),
        lambda k, x: k.layers.Dense(10, activation="relu")(k.layers.Flatten()(x)),
        ("FULLY_CONNECTED",),
        per_tensor_dense=True,
        expect={"fc_per_channel": False},
    ),
    Case(
        "avgpool3_s2_same_padded",
        (7, 7, 4),
        lambda k, x: k.layers.AveragePooling2D(3, strides=2, padding="same")(k.layers.Conv2D(4, 1)(x)),
        ("AVERAGE_POOL_2D",),
    ),
    Case(
        "avgpool2_valid",
        (8, 6, 4),
        lambda k, x: k.layers.AveragePooling2D(2)(k.layers.Conv2D(4, 1)(x)),
        ("AVERAGE_POOL_2D",),
    ),
    Case(
        "maxpool2_valid", (8, 8, 4), lambda k, x: k.layers.MaxPooling2D(2)(k.layers.Conv2D(4, 1)(x)), ("MAX_POOL_2D",)
    ),
    Case(
        "maxpool3_s2_same",
        (9, 9, 4),
        lambda k, x: k.layers.MaxPooling2D(3, strides=2, padding="same")(k.layers.Conv2D(4, 1)(x)),
        ("MAX_POOL_2D",),
    ),
    Case("add_different_scales", (8, 8, 3), lambda k, x: k.layers.Add()(list(_branches(k, x, 0.05, 1.0))), ("ADD",)),
    Case(
        "sub_different_scales", (8, 8, 3), lambda k, x: k.layers.Subtract()(list(_branches(k, x, 1.0, 0.07))), ("SUB",)
    ),
    Case(
        "add_relu_fused",
        (8, 8, 3),
        lambda k, x: k.layers.ReLU()(k.layers.Add()(list(_branches(k, x, 0.5, 0.2)))),
        ("ADD",),
    ),
    Case("mul_two_branches", (6, 6, 3), lambda k, x: k.layers.Multiply()(list(_branches(k, x, 0.3, 0.6))), ("MUL",)),
    # x joins two concatenations whose other inputs differ 40x in range: the
    # converter must requantize (int8 -> int8 QUANTIZE) for at least one.
    Case(
        "concat_different_scales",
        (8, 8, 3),
        lambda k, x: [k.layers.Concatenate()([x, b]) for b in _branches(k, x, 0.05, 2.0)],
        ("CONCATENATION", "QUANTIZE"),
    ),
    Case("softmax_small_logits", (4, 4, 2), _softmax_at(0.02), ("SOFTMAX",)),
    Case("softmax_unit_logits", (4, 4, 2), _softmax_at(0.3), ("SOFTMAX",)),
    Case("softmax_large_logits", (4, 4, 2), _softmax_at(3.0), ("SOFTMAX",)),
    Case(
        "pad_asymmetric",
        (6, 5, 3),
        lambda k, x: k.layers.Conv2D(4, 3)(k.layers.ZeroPadding2D(((1, 2), (0, 3)))(x)),
        ("PAD",),
    ),
    Case("mean_global", (7, 5, 6), lambda k, x: k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(8, 1)(x)), ("MEAN",)),
    Case(
        "logistic",
        (4, 4, 2),
        lambda k, x: k.layers.Dense(8, activation="sigmoid")(k.layers.Flatten()(x)),
        ("LOGISTIC",),
    ),
    Case(
        "float_io_boundary",
        (6, 6, 3),
        lambda k, x: k.layers.Conv2D(4, 3, activation="relu")(x),
        ("QUANTIZE", "DEQUANTIZE"),
        float_io=True,
    ),
]
