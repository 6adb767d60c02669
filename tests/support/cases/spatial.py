"""Spatial operators: TRANSPOSE_CONV, BATCH_MATMUL, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR.

Two-input rows give shapes that multiply in either order: the converter lists the traced
function's inputs in reverse, and its calibration feeds the representative samples by position.
"""

from __future__ import annotations

import numpy as np

from support.cases import Case


def _constant(tf, seed: int, shape, stddev: float = 0.3):
    return tf.constant(np.random.default_rng(seed).normal(0.0, stddev, shape).astype(np.float32))


def _nonnegative(tf, x, seed: int):
    """A 1x1 CONV_2D with a fused ReLU: an activation whose zero point is -128, far from 0."""
    w = _constant(tf, seed, (1, 1, x.shape[-1], x.shape[-1]), 1.0)
    return tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME") + 0.1)


def _transpose_conv(out_hw, kernel, channels, stride, padding, bias=False, relu=False, offset_input=False):
    """tf.nn.conv2d_transpose, with a bias and ReLU the converter fuses into it."""

    def build(tf, x):
        x = _nonnegative(tf, x, 5) if offset_input else x
        w = _constant(tf, 1, (*kernel, channels, x.shape[-1]))
        y = tf.nn.conv2d_transpose(x, w, (1, *out_hw, channels), stride, padding)
        if bias:
            y = y + _constant(tf, 2, (channels,))
        return tf.nn.relu(y) if relu else y

    return build


def _resize(op: str, size, align_corners=False, half_pixel_centers=False):
    """tf.raw_ops.ResizeBilinear or ResizeNearestNeighbor, to `size` (height, width)."""

    def build(tf, x):
        resize = getattr(tf.raw_ops, op)
        return resize(images=x, size=size, align_corners=align_corners, half_pixel_centers=half_pixel_centers)

    return build


ROWS = [
    # --- TRANSPOSE_CONV -----------------------------------------------------------------------
    Case(
        "transpose_conv_s2_same_odd",
        (5, 5, 4),
        _transpose_conv((9, 9), (3, 3), 5, 2, "SAME"),
        ("TRANSPOSE_CONV",),
        tf=True,
    ),
    Case(
        "transpose_conv_s2_valid_bias_relu",
        (4, 3, 3),
        _transpose_conv((9, 7), (3, 3), 6, 2, "VALID", bias=True, relu=True),
        ("TRANSPOSE_CONV",),
        tf=True,
    ),
    Case(
        "transpose_conv_nonsquare_same_bias",
        (4, 5, 3),
        _transpose_conv((4, 10), (2, 3), 4, (1, 2), "SAME", bias=True, offset_input=True),
        ("CONV_2D", "TRANSPOSE_CONV"),
        tf=True,
    ),
    Case(
        "transpose_conv_s3_valid_extra_row",
        (4, 4, 2),
        _transpose_conv((12, 11), (2, 2), 3, 3, "VALID"),
        ("TRANSPOSE_CONV",),
        tf=True,
    ),
    Case(
        "transpose_conv_keras_same",
        (5, 5, 4),
        lambda k, x: k.layers.Conv2DTranspose(6, 3, strides=2, padding="same", bias_initializer="random_normal")(x),
        ("TRANSPOSE_CONV",),
    ),
]

ROWS += [
    # --- BATCH_MATMUL -------------------------------------------------------------------------
    Case(
        "batch_matmul_two_inputs",
        (3, 5, 5),
        lambda tf, a, b: tf.matmul(_nonnegative(tf, a, 6), b),
        ("CONV_2D", "BATCH_MATMUL"),
        tf=True,
        inputs=2,
    ),
    Case(
        "batch_matmul_broadcast_adj_y",
        (2, 1, 3, 4),
        lambda tf, a, b: tf.matmul(a, b, transpose_b=True),
        ("BATCH_MATMUL",),
        tf=True,
        input_shapes=((2, 1, 3, 4), (1, 3, 5, 4)),
    ),
    Case(
        "batch_matmul_adj_x",
        (2, 5, 3),
        lambda tf, a, b: tf.matmul(a, b, transpose_a=True),
        ("BATCH_MATMUL",),
        tf=True,
        input_shapes=((2, 5, 3), (2, 5, 4)),
    ),
    Case(
        "batch_matmul_constant_broadcast",
        (3, 4, 6),
        lambda tf, x: tf.matmul(x, _constant(tf, 3, (2, 1, 6, 5), 1.0)),
        ("BATCH_MATMUL",),
        tf=True,
    ),
    Case(
        "batch_matmul_constant_adj_y",
        (2, 3, 7),
        lambda tf, x: tf.matmul(x, _constant(tf, 4, (2, 4, 7), 1.0), transpose_b=True),
        ("BATCH_MATMUL",),
        tf=True,
    ),
    Case(
        "batch_matmul_rank5_constant",
        (2, 1, 3, 4),
        lambda tf, x: tf.matmul(x, _constant(tf, 7, (2, 1, 3, 4, 2), 1.0)),
        ("BATCH_MATMUL",),
        tf=True,
    ),
]

ROWS += [
    # --- RESIZE_BILINEAR ----------------------------------------------------------------------
    Case("resize_bilinear_up_odd", (5, 7, 3), _resize("ResizeBilinear", (9, 11)), ("RESIZE_BILINEAR",), tf=True),
    Case("resize_bilinear_up_x2_ties", (4, 4, 3), _resize("ResizeBilinear", (8, 8)), ("RESIZE_BILINEAR",), tf=True),
    Case(
        "resize_bilinear_align_corners_down",
        (9, 8, 2),
        _resize("ResizeBilinear", (4, 5), align_corners=True),
        ("RESIZE_BILINEAR",),
        tf=True,
    ),
    Case(
        "resize_bilinear_half_pixel_up",
        (4, 5, 3),
        _resize("ResizeBilinear", (7, 13), half_pixel_centers=True),
        ("RESIZE_BILINEAR",),
        tf=True,
    ),
    Case(
        "resize_bilinear_half_pixel_down",
        (11, 9, 2),
        _resize("ResizeBilinear", (4, 3), half_pixel_centers=True),
        ("RESIZE_BILINEAR",),
        tf=True,
    ),
    # --- RESIZE_NEAREST_NEIGHBOR --------------------------------------------------------------
    Case(
        "resize_nearest_up_odd",
        (5, 7, 3),
        _resize("ResizeNearestNeighbor", (9, 11)),
        ("RESIZE_NEAREST_NEIGHBOR",),
        tf=True,
    ),
    Case(
        "resize_nearest_align_corners",
        (5, 7, 3),
        _resize("ResizeNearestNeighbor", (9, 4), align_corners=True),
        ("RESIZE_NEAREST_NEIGHBOR",),
        tf=True,
    ),
    Case(
        "resize_nearest_half_pixel_down",
        (9, 8, 2),
        _resize("ResizeNearestNeighbor", (4, 5), half_pixel_centers=True),
        ("RESIZE_NEAREST_NEIGHBOR",),
        tf=True,
    ),
    Case(
        "resize_nearest_half_pixel_up",
        (3, 4, 3),
        _resize("ResizeNearestNeighbor", (7, 10), half_pixel_centers=True),
        ("RESIZE_NEAREST_NEIGHBOR",),
        tf=True,
    ),
]
