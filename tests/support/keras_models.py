"""Tiny Keras models, one per supported layer kind, with non-trivial weights and BatchNorm statistics."""

from __future__ import annotations

import numpy as np


def randomize(model, seed: int = 0):
    """Random weights everywhere, and BatchNorm statistics far from the identity."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            c = weights[0].shape[0]
            layer.set_weights(
                [rng.uniform(0.5, 2, c), rng.normal(0, 0.5, c), rng.normal(0, 0.5, c), rng.uniform(0.2, 3, c)][
                    : len(weights)
                ]
            )
        else:
            layer.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in weights])
    return model


def _model(keras, shape, body):
    x = keras.Input(shape)
    return keras.Model(x, body(keras.layers, x))


CASES = {
    "conv_bias_relu_stride_same": (
        (9, 9, 3),
        lambda L, x: L.Conv2D(6, 3, strides=2, padding="same", activation="relu")(x),
    ),
    "conv_dilated_valid_no_bias": ((12, 12, 2), lambda L, x: L.Conv2D(4, 3, dilation_rate=2, use_bias=False)(x)),
    "conv_bn_relu6": ((8, 8, 3), lambda L, x: L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(5, 3, padding="same")(x)))),
    "depthwise_multiplier_bn": (
        (8, 8, 3),
        lambda L, x: L.Activation("relu")(
            L.BatchNormalization()(L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x))
        ),
    ),
    "separable_conv": ((8, 8, 4), lambda L, x: L.SeparableConv2D(6, 3, padding="same", activation="relu6")(x)),
    "dense_softmax": ((12,), lambda L, x: L.Dense(5, activation="softmax")(x)),
    "dense_bn_sigmoid": ((12,), lambda L, x: L.Activation("sigmoid")(L.BatchNormalization()(L.Dense(6)(x)))),
    "standalone_bn_4d": ((6, 6, 3), lambda L, x: L.Conv2D(2, 1)(L.BatchNormalization()(x))),
    "standalone_bn_2d": ((7,), lambda L, x: L.Dense(3)(L.BatchNormalization()(x))),
    "softmax_layer": ((4, 4, 3), lambda L, x: L.Softmax()(L.Conv2D(4, 1)(x))),
    "subtract_relu": (
        (6, 6, 3),
        lambda L, x: L.ReLU()(L.Subtract()([L.Conv2D(4, 3, padding="same")(x), L.Conv2D(4, 1)(x)])),
    ),
    "add_relu": ((6, 6, 3), lambda L, x: L.ReLU()(L.Add()([L.Conv2D(4, 3, padding="same")(x), L.Conv2D(4, 1)(x)]))),
    "add_three": ((6, 6, 3), lambda L, x: L.Add()([L.Conv2D(4, 1)(x), L.Conv2D(4, 1)(x), L.Conv2D(4, 1)(x)])),
    "concatenate": ((6, 6, 3), lambda L, x: L.Concatenate()([L.Conv2D(4, 1)(x), x])),
    "nested_concatenate": (
        (6, 6, 3),
        lambda L, x: L.Concatenate()([L.Concatenate()([L.Conv2D(4, 1)(x), L.Conv2D(3, 1)(x)]), L.Conv2D(2, 1)(x)]),
    ),
    "maxpool_same": ((7, 7, 3), lambda L, x: L.MaxPooling2D(3, strides=2, padding="same")(L.Conv2D(4, 1)(x))),
    "avgpool_valid": ((8, 6, 3), lambda L, x: L.AveragePooling2D(2)(L.Conv2D(4, 1)(x))),
    "avgpool_same": ((7, 7, 3), lambda L, x: L.AveragePooling2D(3, strides=2, padding="same")(L.Conv2D(4, 1)(x))),
    "global_average_pooling": ((5, 7, 3), lambda L, x: L.GlobalAveragePooling2D()(L.Conv2D(4, 1)(x))),
    "flatten_reshape": ((4, 4, 2), lambda L, x: L.Dense(3)(L.Reshape((8, 4))(L.Flatten()(L.Conv2D(2, 1)(x))))),
    "zero_padding": ((5, 5, 2), lambda L, x: L.Conv2D(3, 3)(L.ZeroPadding2D(((1, 2), (0, 1)))(x))),
    "dropout_removed": ((10,), lambda L, x: L.Dense(4)(L.Dropout(0.5)(L.Dense(8, activation="relu")(x)))),
}


def build(keras, name: str, seed: int = 0):
    shape, body = CASES[name]
    return randomize(_model(keras, shape, body), seed)
