"""More 16x8 (int16 activations) data movement as single-op converter-made models: TFLM's int16
SPLIT, SPLIT_V, PACK, UNPACK and RESIZE_NEAREST_NEIGHBOR (values moved as they are, the
quantization kept). TFLM runs MIRROR_PAD and GATHER on int8 only: tinyq refuses their int16
signatures, so they have no rows here. (int16 <-> int32 QUANTIZE, which the converter's 16x8
mode does not make, is tested on hand-built graphs in tests/test_int16_quantize.py.)"""

from __future__ import annotations

from support.cases import Case


def _after_op(tf, x):
    # a cheap op first: a movement op on the graph input itself may be folded at import
    return tf.nn.leaky_relu(x, 0.25)


def _resize(tf, x, size, align_corners=False, half_pixel_centers=False):
    return tf.compat.v1.image.resize_nearest_neighbor(
        x, size, align_corners=align_corners, half_pixel_centers=half_pixel_centers
    )


L = "LEAKY_RELU"

ROWS = [
    # SPLIT: equal parts along the last axis and along a middle one
    Case(
        "s16_split_channels_three",
        (5, 3, 9),
        lambda tf, x: tf.split(_after_op(tf, x), 3, axis=-1),
        (L, "SPLIT"),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_split_axis1_two",
        (6, 7),
        lambda tf, x: tf.split(_after_op(tf, x), 2, axis=1),
        (L, "SPLIT"),
        tf=True,
        int16=True,
    ),
    # SPLIT_V: given sizes, one of them -1 (the rest)
    Case(
        "s16_split_v_sizes",
        (3, 9, 5),
        lambda tf, x: tf.split(_after_op(tf, x), [2, 3, 4], axis=2),
        (L, "SPLIT_V"),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_split_v_rest",
        (7, 5),
        lambda tf, x: tf.split(_after_op(tf, x), [1, -1], axis=1),
        (L, "SPLIT_V"),
        tf=True,
        int16=True,
    ),
    # PACK: inputs of about one range; TFLM's int16 PACK copies values as they are, so the
    # converter requantizes (int16 -> int16 QUANTIZE) those whose scale differs from the output's
    Case(
        "s16_pack_axis1_two",
        (3, 5),
        lambda tf, a, b: tf.stack([a, b], axis=1),
        ("QUANTIZE", "PACK"),
        tf=True,
        int16=True,
        inputs=2,
    ),
    Case(
        "s16_pack_last_three",
        (3, 5),
        lambda tf, a, b, c: tf.stack([a, b, c], axis=-1),
        ("QUANTIZE", "PACK"),
        tf=True,
        int16=True,
        inputs=3,
    ),
    # UNPACK
    Case(
        "s16_unpack_axis1",
        (3, 5),
        lambda tf, x: tf.unstack(_after_op(tf, x), axis=1),
        (L, "UNPACK"),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_unpack_last",
        (4, 3, 3),
        lambda tf, x: tf.unstack(_after_op(tf, x), axis=-1),
        (L, "UNPACK"),
        tf=True,
        int16=True,
    ),
    # RESIZE_NEAREST_NEIGHBOR: up, down, align_corners, half_pixel_centers
    Case(
        "s16_resize_nearest_up",
        (3, 5, 2),
        lambda tf, x: _resize(tf, x, [7, 9]),
        ("RESIZE_NEAREST_NEIGHBOR",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_resize_nearest_down_align_corners",
        (7, 9, 3),
        lambda tf, x: _resize(tf, x, [3, 4], align_corners=True),
        ("RESIZE_NEAREST_NEIGHBOR",),
        tf=True,
        int16=True,
    ),
    Case(
        "s16_resize_nearest_half_pixel",
        (5, 3, 3),
        lambda tf, x: _resize(tf, x, [8, 7], half_pixel_centers=True),
        ("RESIZE_NEAREST_NEIGHBOR",),
        tf=True,
        int16=True,
    ),
]
