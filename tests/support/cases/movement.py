"""Data movement without arithmetic (the output shares the input's quantization), and CAST:
single-op models from TensorFlow operations."""

from __future__ import annotations

import numpy as np

from support.cases import Case

_TABLE = np.random.default_rng(5).uniform(-1.0, 1.0, (5, 3)).astype(np.float32)
_WIDE_TABLE = np.random.default_rng(6).uniform(-2.0, 1.0, (3, 4)).astype(np.float32)


def _strided(begin, end, strides, **masks):
    return lambda tf, x: tf.strided_slice(x, begin, end, strides, **masks)


T = ("LEAKY_RELU", "TRANSPOSE")


def _transpose_after_op(tf, x, perm):
    return tf.transpose(tf.nn.leaky_relu(x, 0.25), perm)


ROWS = [
    # TRANSPOSE
    # (after an op: a TRANSPOSE of the graph input itself is folded at import, tests/test_tflite_import.py)
    Case("transpose_nhwc_to_nchw", (3, 4, 5), lambda tf, x: _transpose_after_op(tf, x, [0, 3, 1, 2]), T, tf=True),
    Case("transpose_rank3", (6, 5), lambda tf, x: _transpose_after_op(tf, x, [0, 2, 1]), T, tf=True),
    Case("transpose_rotate", (2, 3, 4), lambda tf, x: _transpose_after_op(tf, x, [0, 2, 3, 1]), T, tf=True),
    # STRIDED_SLICE
    Case(
        "strided_slice_step_reverse_shrink", (6, 7, 5), lambda tf, x: x[:, 1:5:2, ::-1, 3], ("STRIDED_SLICE",), tf=True
    ),
    Case(
        "strided_slice_masks_negative_strides",
        (6, 7, 5),
        _strided([0, 5, 0, 4], [1, 0, 7, 0], [1, -1, 3, -2], begin_mask=4, end_mask=1),
        ("STRIDED_SLICE",),
        tf=True,
    ),
    Case("strided_slice_last_three", (6, 7, 5), lambda tf, x: x[..., -3:], ("STRIDED_SLICE",), tf=True),
    Case("strided_slice_rank3_odd", (9, 7), lambda tf, x: x[:, 1:-1, ::3], ("STRIDED_SLICE",), tf=True),
    # SLICE
    Case("slice_4d_to_end", (6, 7, 5), lambda tf, x: tf.slice(x, [0, 1, 2, 0], [1, 3, -1, 4]), ("SLICE",), tf=True),
    Case("slice_2d", (9,), lambda tf, x: tf.slice(x, [0, 2], [1, 5]), ("SLICE",), tf=True),
    # BROADCAST_TO
    Case("broadcast_to_rows", (1, 5), lambda tf, x: tf.broadcast_to(x, [1, 3, 4, 5]), ("BROADCAST_TO",), tf=True),
    Case("broadcast_to_middle", (3, 1, 4), lambda tf, x: tf.broadcast_to(x, [1, 3, 5, 4]), ("BROADCAST_TO",), tf=True),
    Case("broadcast_to_rank_up", (4,), lambda tf, x: tf.broadcast_to(x, [2, 3, 4]), ("BROADCAST_TO",), tf=True),
    # DEPTH_TO_SPACE, SPACE_TO_DEPTH
    Case("depth_to_space_2", (3, 4, 8), lambda tf, x: tf.nn.depth_to_space(x, 2), ("DEPTH_TO_SPACE",), tf=True),
    Case("depth_to_space_3", (2, 3, 18), lambda tf, x: tf.nn.depth_to_space(x, 3), ("DEPTH_TO_SPACE",), tf=True),
    Case("space_to_depth_2", (4, 6, 3), lambda tf, x: tf.nn.space_to_depth(x, 2), ("SPACE_TO_DEPTH",), tf=True),
    Case("space_to_depth_3", (6, 3, 2), lambda tf, x: tf.nn.space_to_depth(x, 3), ("SPACE_TO_DEPTH",), tf=True),
    # MIRROR_PAD
    Case(
        "mirror_pad_reflect",
        (4, 5, 3),
        lambda tf, x: tf.pad(x, [[0, 0], [1, 2], [2, 0], [0, 0]], mode="REFLECT"),
        ("MIRROR_PAD",),
        tf=True,
    ),
    Case(
        "mirror_pad_symmetric",
        (5, 4),
        lambda tf, x: tf.pad(x, [[0, 0], [2, 5], [0, 4]], mode="SYMMETRIC"),
        ("MIRROR_PAD",),
        tf=True,
    ),
    Case(
        "mirror_pad_reflect_channels",
        (3, 4, 6),
        lambda tf, x: tf.pad(x, [[0, 0], [0, 0], [1, 1], [2, 5]], mode="REFLECT"),
        ("MIRROR_PAD",),
        tf=True,
    ),
    # GATHER
    Case("gather_axis1", (5, 3), lambda tf, x: tf.gather(x, [0, 2, 4, 1], axis=1), ("GATHER",), tf=True),
    Case(
        "gather_last_axis_2d_indices",
        (4, 6),
        lambda tf, x: tf.gather(x, [[5, 0], [2, 2]], axis=2),
        ("GATHER",),
        tf=True,
    ),
    Case(
        "gather_batch_dims",
        (2, 5),
        lambda tf, x: tf.gather(x, [[[4, 0, 1], [3, 3, 2]]], axis=2, batch_dims=2),
        ("GATHER",),
        tf=True,
    ),
    Case(
        "gather_table_by_input_indices",
        (4,),
        lambda tf, i: tf.gather(tf.constant(_TABLE), i),
        ("GATHER",),
        tf=True,
        int32_inputs=((0, 2),),
    ),
    Case(
        "gather_table_columns_by_input_indices",
        (2, 2),
        lambda tf, i: tf.gather(tf.constant(_WIDE_TABLE), i, axis=1),
        ("GATHER",),
        tf=True,
        int32_inputs=((0, 2),),
    ),
    # PACK, UNPACK
    Case("pack_axis1", (4, 3), lambda tf, a, b: tf.stack([a, b], axis=1), ("PACK",), tf=True, inputs=2),
    Case("pack_last_axis", (2, 3), lambda tf, a, b, c: tf.stack([a, b, c], axis=-1), ("PACK",), tf=True, inputs=3),
    Case("unpack_axis1", (4, 3), lambda tf, x: tf.unstack(x, axis=1), ("UNPACK",), tf=True),
    Case("unpack_last_axis", (2, 4, 3), lambda tf, x: tf.unstack(x, axis=-1), ("UNPACK",), tf=True),
    # SPLIT, SPLIT_V
    Case("split_three_last_axis", (4, 6), lambda tf, x: tf.split(x, 3, axis=2), ("SPLIT",), tf=True),
    Case("split_two_axis1", (6, 2, 3), lambda tf, x: tf.split(x, 2, axis=1), ("SPLIT",), tf=True),
    Case("split_v_sizes", (4, 6), lambda tf, x: tf.split(x, [1, 3, 2], axis=-1), ("SPLIT_V",), tf=True),
    Case("split_v_rest", (5, 4, 3), lambda tf, x: tf.split(x, [2, -1], axis=1), ("SPLIT_V",), tf=True),
    # REVERSE_V2 (a Bidirectional layer's backward half reads its sequence reversed)
    Case(
        "reverse_time_axis", (7, 5), lambda tf, x: tf.reverse(tf.nn.leaky_relu(x, 0.25), [1]), ("REVERSE_V2",), tf=True
    ),
    Case(
        "reverse_two_adjacent_axes_rank4",
        (3, 4, 5),
        lambda tf, x: tf.reverse(tf.nn.leaky_relu(x, 0.25), [1, 2]),
        ("REVERSE_V2",),
        tf=True,
    ),
    # CAST (the converter makes int8 <-> int32 casts only between integer tensors)
    Case(
        "cast_int32_int8_int32",
        (4, 3),
        lambda tf, i: tf.cast(tf.cast(i, tf.int8), tf.int32),
        ("CAST",),
        tf=True,
        int32_inputs=((0, 2),),
    ),
]
