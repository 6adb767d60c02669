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
        elif type(layer).__name__ == "Normalization":  # mean, variance (positive), count
            c = weights[0].shape
            layer.set_weights([rng.normal(0, 0.5, c), rng.uniform(0.2, 3, c), weights[2]])
            layer.finalize_state()  # its mean and variance tensors are computed from the weights
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
    "noise_and_regularization_removed": (
        (10,),
        lambda L, x: L.Dense(4)(
            L.ActivityRegularization(0.1)(
                L.AlphaDropout(0.2)(L.GaussianDropout(0.3)(L.GaussianNoise(0.5)(L.Dense(8, activation="relu")(x))))
            )
        ),
    ),
    # 1-D layers: their 2-D ops over an inserted unit height
    "conv1d_valid": ((12, 3), lambda L, x: L.Conv1D(4, 3)(x)),
    "conv1d_same_strided_relu": ((11, 3), lambda L, x: L.Conv1D(4, 3, strides=2, padding="same", activation="relu")(x)),
    "conv1d_causal_dilated": ((12, 2), lambda L, x: L.Conv1D(3, 3, padding="causal", dilation_rate=2)(x)),
    "conv1d_bn_relu": ((10, 3), lambda L, x: L.ReLU()(L.BatchNormalization()(L.Conv1D(4, 3, padding="same")(x)))),
    "depthwise_conv1d": ((10, 3), lambda L, x: L.DepthwiseConv1D(3, depth_multiplier=2, padding="same")(x)),
    "separable_conv1d": (
        (12, 4),
        lambda L, x: L.SeparableConv1D(5, 3, strides=2, padding="same", activation="relu6")(x),
    ),
    "maxpool1d_same": ((11, 3), lambda L, x: L.MaxPooling1D(3, strides=2, padding="same")(L.Conv1D(4, 1)(x))),
    "avgpool1d_valid": ((12, 3), lambda L, x: L.AveragePooling1D(2)(L.Conv1D(4, 1)(x))),
    "avgpool1d_same": ((11, 3), lambda L, x: L.AveragePooling1D(3, strides=2, padding="same")(L.Conv1D(4, 1)(x))),
    "global_average_pooling_1d": ((9, 3), lambda L, x: L.Dense(3)(L.GlobalAveragePooling1D()(L.Conv1D(4, 1)(x)))),
    "global_max_pooling_1d_keepdims": (
        (9, 3),
        lambda L, x: L.GlobalMaxPooling1D(keepdims=True)(L.Conv1D(4, 1)(x)),
    ),
    "global_max_pooling_2d": ((5, 7, 3), lambda L, x: L.Dense(2)(L.GlobalMaxPooling2D()(L.Conv2D(4, 1)(x)))),
    "global_max_pooling_2d_keepdims": ((5, 6, 3), lambda L, x: L.GlobalMaxPooling2D(keepdims=True)(L.Conv2D(4, 1)(x))),
    "global_average_pooling_keepdims": (
        (5, 6, 3),
        lambda L, x: L.GlobalAveragePooling2D(keepdims=True)(L.Conv2D(4, 1)(x)),
    ),
    "zero_padding_1d": ((8, 2), lambda L, x: L.Conv1D(3, 3)(L.ZeroPadding1D((1, 2))(x))),
    "zero_padding_1d_depthwise_causal": (
        (9, 3),
        lambda L, x: L.SeparableConv1D(4, 2)(L.ZeroPadding1D((1, 0))(L.DepthwiseConv1D(3)(L.ZeroPadding1D((2, 0))(x)))),
    ),
    "cropping_1d": ((9, 3), lambda L, x: L.Cropping1D((1, 2))(L.SpatialDropout1D(0.3)(L.Conv1D(3, 1)(x)))),
    "cropping_2d": ((7, 8, 3), lambda L, x: L.Cropping2D(((1, 0), (2, 1)))(L.Conv2D(3, 1)(x))),
    "upsampling_1d": ((5, 3), lambda L, x: L.UpSampling1D(3)(L.Conv1D(3, 1)(x))),
    "upsampling_2d_nearest": ((4, 5, 3), lambda L, x: L.UpSampling2D((2, 3))(L.Conv2D(3, 1)(x))),
    "upsampling_2d_bilinear": (
        (4, 5, 3),
        lambda L, x: L.UpSampling2D((2, 3), interpolation="bilinear")(L.Conv2D(3, 1)(x)),
    ),
    "conv2d_transpose_same_relu": (
        (5, 4, 3),
        lambda L, x: L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(x),
    ),
    "conv2d_transpose_valid": ((4, 5, 3), lambda L, x: L.Conv2DTranspose(3, (3, 2), strides=(2, 1))(x)),
    "conv2d_transpose_output_padding": (
        (4, 4, 2),
        lambda L, x: L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=0, use_bias=False)(x),
    ),
    "conv1d_transpose": ((6, 3), lambda L, x: L.Conv1DTranspose(4, 3, strides=2, padding="same")(x)),
    "conv1d_transpose_valid": ((6, 3), lambda L, x: L.Conv1DTranspose(2, 4, strides=3)(x)),
    "permute": ((3, 4, 2), lambda L, x: L.Permute((2, 1, 3))(L.Conv2D(3, 1)(x))),
    "repeat_vector": ((6,), lambda L, x: L.RepeatVector(3)(L.Dense(4)(x))),
    # merges over two or more inputs
    "multiply_three": (
        (6, 6, 3),
        lambda L, x: L.Multiply()([L.Conv2D(4, 1)(x), L.Conv2D(4, 1)(x), L.Conv2D(4, 3, padding="same")(x)]),
    ),
    "maximum_three": ((6, 6, 3), lambda L, x: L.Maximum()([L.Conv2D(4, 1)(x), L.Conv2D(4, 1)(x), L.Conv2D(4, 1)(x)])),
    "minimum_two": ((8,), lambda L, x: L.Minimum()([L.Dense(4)(x), L.Dense(4)(x)])),
    "average_three": ((6, 6, 3), lambda L, x: L.Average()([L.Conv2D(4, 1)(x), L.Conv2D(4, 1)(x), L.Conv2D(4, 1)(x)])),
    # activations
    "leaky_relu_layer": ((6, 6, 3), lambda L, x: L.LeakyReLU(0.1)(L.Conv2D(4, 3)(x))),
    "relu_negative_slope": ((8,), lambda L, x: L.ReLU(negative_slope=0.25)(L.Dense(5)(x))),
    "prelu_shared_axes": ((6, 6, 3), lambda L, x: L.PReLU(shared_axes=[1, 2])(L.Conv2D(4, 3)(x))),
    "prelu_per_element": ((8,), lambda L, x: L.PReLU()(L.Dense(5)(x))),
    "elu_layer": ((6, 6, 3), lambda L, x: L.ELU()(L.Conv2D(4, 3)(x))),
    "small_cnn": (  # five layers of four kinds, pooling between: mixed-precision boundaries of every sort
        (10, 10, 3),
        lambda L, x: L.Dense(4, activation="softmax")(
            L.GlobalAveragePooling2D()(
                L.Conv2D(6, 3, padding="same", activation="relu")(
                    L.MaxPooling2D(2)(
                        L.DepthwiseConv2D(3, padding="same", activation="relu6")(
                            L.Conv2D(8, 3, padding="same", activation="relu")(x)
                        )
                    )
                )
            )
        ),
    ),
    "activation_tanh": ((8,), lambda L, x: L.Dense(5, activation="tanh")(x)),
    "activation_elu": ((6, 6, 3), lambda L, x: L.Activation("elu")(L.Conv2D(4, 3)(x))),
    "activation_hard_sigmoid": ((6, 6, 3), lambda L, x: L.Conv2D(4, 3, activation="hard_sigmoid")(x)),
    "activation_hard_swish": ((6, 6, 3), lambda L, x: L.Activation("hard_swish")(L.Conv2D(4, 3)(x))),
    "activation_swish": ((6, 6, 3), lambda L, x: L.Conv2D(4, 3, activation="swish")(x)),
    "activation_leaky_relu": ((8,), lambda L, x: L.Dense(5, activation="leaky_relu")(x)),
    "relu_relu6_unfused": (
        (6, 6, 3),
        lambda L, x: (lambda c: L.Concatenate()([L.ReLU()(c), L.Activation("relu6")(c), c]))(L.Conv2D(4, 1)(x)),
    ),
    "relu_on_the_input": ((8,), lambda L, x: L.Dense(3)(L.ReLU()(x))),
    # per-channel affine layers and LayerNormalization
    "rescaling_scalar": ((5, 5, 3), lambda L, x: L.Conv2D(4, 3)(L.Rescaling(1 / 2.5, offset=-0.5)(x))),
    "rescaling_per_channel": (
        (5, 5, 3),
        lambda L, x: L.Conv2D(4, 3)(L.Rescaling([0.5, 2.0, -1.0], offset=[0.1, 0.0, -0.3])(x)),
    ),
    "conv_rescaling_folds": ((5, 5, 3), lambda L, x: L.Rescaling(0.25, offset=1.0)(L.Conv2D(4, 3)(x))),
    "rescaling_sequence": ((6, 3), lambda L, x: L.Conv1D(2, 1)(L.Rescaling([0.5, 2.0, -1.0], offset=0.25)(x))),
    "normalization_weights": ((5, 5, 3), lambda L, x: L.Conv2D(4, 3)(L.Normalization()(x))),
    "normalization_constants": (
        (7,),
        lambda L, x: L.Dense(3)(L.Normalization(mean=[0.5] * 7, variance=[0.1, 1, 2, 3, 4, 5, 0.5])(x)),
    ),
    "rescaling_normalization_input": (
        (6, 6, 3),
        lambda L, x: L.Conv2D(4, 3)(L.Normalization()(L.Rescaling(1 / 2.0)(x))),
    ),
    "layer_normalization_dense": ((8,), lambda L, x: L.LayerNormalization()(L.Dense(6)(x))),
    "layer_normalization_sequence": ((7, 3), lambda L, x: L.LayerNormalization(center=False)(L.Conv1D(5, 1)(x))),
    "layer_normalization_image": (
        (4, 4, 3),
        lambda L, x: L.Conv2D(2, 1)(L.LayerNormalization(scale=False, epsilon=1e-2)(L.Conv2D(6, 1)(x))),
    ),
    # squeeze-and-excitation blocks
    "squeeze_excite_mobilenet_v3": ((8, 8, 3), lambda L, x: _se_mobilenet_v3(L, L.Conv2D(8, 3, padding="same")(x))),
    "squeeze_excite_efficientnet": ((8, 8, 3), lambda L, x: _se_efficientnet(L, L.Conv2D(8, 3, padding="same")(x))),
}


def _se_mobilenet_v3(L, x):
    """keras.applications.MobileNetV3's block: keepdims pooling, conv, ReLU, conv, the hard
    sigmoid as keras.ops calls (relu6(x + 3) * (1 / 6)), a broadcast Multiply, hard swish."""
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.ReLU()(L.Conv2D(4, 1, padding="same")(s))
    s = L.Conv2D(8, 1, padding="same")(s)
    s = L.ReLU(6.0)(s + 3.0) * (1.0 / 6.0)
    return L.Activation("hard_swish")(L.Multiply()([x, s]))


def _se_efficientnet(L, x):
    """keras.applications.EfficientNet's block: pooling, Reshape, swish and sigmoid convs, Multiply."""
    s = L.Reshape((1, 1, 8))(L.GlobalAveragePooling2D()(x))
    s = L.Conv2D(2, 1, padding="same", activation="swish")(s)
    s = L.Conv2D(8, 1, padding="same", activation="sigmoid")(s)
    return L.Multiply()([x, s])


def build(keras, name: str, seed: int = 0):
    shape, body = CASES[name]
    return randomize(_model(keras, shape, body), seed)
