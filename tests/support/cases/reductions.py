"""Single-op models of the reductions and the comparisons: MAXIMUM, MINIMUM, SQUARED_DIFFERENCE,
REDUCE_MAX, REDUCE_MIN, SUM, MEAN over any axes, ARG_MAX, ARG_MIN, L2_NORMALIZATION and
LOG_SOFTMAX, each as TensorFlow operations the converter turns into that operator. Shapes
omit the batch axis of 1 the converter adds, which the axes count (axis 1 is the first shown)."""

from __future__ import annotations

from support.cases import Case


def _doubled_second(op):
    """op(a, b + b): the second operand's range is twice the first's, so the converter must
    reconcile the two scales (MAXIMUM and MINIMUM compare codes) or SQUARED_DIFFERENCE rescales
    them."""
    return lambda tf, a, b: op(tf)(a, b + b)


ROWS = [
    # --- MAXIMUM / MINIMUM: codes compared, one quantization for inputs and output
    Case("maximum_same_shape", (4, 5, 3), lambda tf, a, b: tf.maximum(a, b), ("MAXIMUM",), tf=True, inputs=2),
    Case(
        "maximum_broadcast",
        (4, 5, 3),
        lambda tf, a, b: tf.maximum(a, b),
        ("MAXIMUM",),
        tf=True,
        input_shapes=((4, 5, 3), (1, 5, 1)),
    ),
    Case("maximum_constant", (6, 7), lambda tf, x: tf.maximum(x, 0.25), ("MAXIMUM",), tf=True),
    Case(
        "minimum_doubled_branch",
        (4, 5, 3),
        _doubled_second(lambda tf: tf.minimum),
        ("MINIMUM",),
        tf=True,
        inputs=2,
    ),
    Case(
        "minimum_broadcast_rank",
        (3, 4),
        lambda tf, a, b: tf.minimum(a, b),
        ("MINIMUM",),
        tf=True,
        input_shapes=((3, 4), (4,)),
    ),
    # --- SQUARED_DIFFERENCE: ADD's rescaling with 7 bits of headroom
    Case(
        "squared_difference_same_shape",
        (4, 5, 3),
        lambda tf, a, b: tf.math.squared_difference(a, b),
        ("SQUARED_DIFFERENCE",),
        tf=True,
        inputs=2,
    ),
    Case(
        "squared_difference_broadcast_doubled",
        (4, 5, 3),
        _doubled_second(lambda tf: tf.math.squared_difference),
        ("SQUARED_DIFFERENCE",),
        tf=True,
        input_shapes=((4, 5, 3), (4, 1, 3)),
    ),
    Case(
        "squared_difference_constant",
        (6, 7),
        lambda tf, x: tf.math.squared_difference(x, 0.5),
        ("SQUARED_DIFFERENCE",),
        tf=True,
    ),
    # --- REDUCE_MAX / REDUCE_MIN: codes compared, the input's quantization kept
    Case("reduce_max_axis", (4, 5, 3), lambda tf, x: tf.reduce_max(x, axis=[1]), ("REDUCE_MAX",), tf=True),
    Case(
        "reduce_max_nonadjacent_keep",
        (4, 5, 3),
        lambda tf, x: tf.reduce_max(x, axis=[1, 3], keepdims=True),
        ("REDUCE_MAX",),
        tf=True,
    ),
    Case(
        "reduce_min_batch_and_width_keep",
        (4, 5, 3),
        lambda tf, x: tf.reduce_min(x, axis=[0, 2], keepdims=True),
        ("REDUCE_MIN",),
        tf=True,
    ),
    Case("reduce_min_negative_axis", (6, 7), lambda tf, x: tf.reduce_min(x, axis=[-1]), ("REDUCE_MIN",), tf=True),
    # --- SUM: QuantizedMeanOrSum without the 1/count
    Case("sum_nonadjacent", (4, 5, 3), lambda tf, x: tf.reduce_sum(x, axis=[1, 3]), ("SUM",), tf=True),
    Case("sum_one_axis_keep", (4, 5, 3), lambda tf, x: tf.reduce_sum(x, axis=[2], keepdims=True), ("SUM",), tf=True),
    Case("sum_all_but_batch", (3, 4, 5), lambda tf, x: tf.reduce_sum(x, axis=[1, 2, 3]), ("SUM",), tf=True),
    # --- MEAN over any axes (the C kernel once refused non-adjacent ones)
    Case("mean_nonadjacent", (4, 5, 3), lambda tf, x: tf.reduce_mean(x, axis=[1, 3]), ("MEAN",), tf=True),
    Case(
        "mean_spatial_keep", (6, 5, 4), lambda tf, x: tf.reduce_mean(x, axis=[1, 2], keepdims=True), ("MEAN",), tf=True
    ),
    Case("mean_negative_axes", (5, 6), lambda tf, x: tf.reduce_mean(x, axis=[-1, 1]), ("MEAN",), tf=True),
    Case(
        "mean_rank5_nonadjacent",
        (3, 2, 4, 5),
        lambda tf, x: tf.reduce_mean(x, axis=[1, 3], keepdims=True),
        ("MEAN",),
        tf=True,
    ),
    # --- ARG_MAX / ARG_MIN: int32 indices, ties to the first
    Case(
        "arg_max_last_axis",
        (4, 5, 3),
        lambda tf, x: tf.math.argmax(x, axis=-1, output_type=tf.int32),
        ("ARG_MAX",),
        tf=True,
    ),
    Case("arg_max_rank2", (10,), lambda tf, x: tf.math.argmax(x, axis=1, output_type=tf.int32), ("ARG_MAX",), tf=True),
    Case(
        "arg_min_middle_axis",
        (4, 5, 3),
        lambda tf, x: tf.math.argmin(x, axis=2, output_type=tf.int32),
        ("ARG_MIN",),
        tf=True,
    ),
    Case(
        "arg_min_first_axis",
        (4, 5, 3),
        lambda tf, x: tf.math.argmin(x, axis=1, output_type=tf.int32),
        ("ARG_MIN",),
        tf=True,
    ),
    # --- L2_NORMALIZATION and LOG_SOFTMAX: fixed output quantization
    Case(
        "l2_normalization_rank4",
        (4, 5, 8),
        lambda tf, x: tf.math.l2_normalize(x, axis=-1),
        ("L2_NORMALIZATION",),
        tf=True,
    ),
    Case(
        "l2_normalization_rank2_wide",
        (37,),
        lambda tf, x: tf.math.l2_normalize(x, axis=-1),
        ("L2_NORMALIZATION",),
        tf=True,
        calib_scale=4.0,
    ),
    Case("log_softmax_rank4", (4, 5, 7), lambda tf, x: tf.nn.log_softmax(x), ("LOG_SOFTMAX",), tf=True),
    Case(
        "log_softmax_large_logits",
        (10,),
        lambda tf, x: tf.nn.log_softmax(x),
        ("LOG_SOFTMAX",),
        tf=True,
        calib_scale=12.0,
    ),
    Case(
        "log_softmax_small_logits",
        (3, 16),
        lambda tf, x: tf.nn.log_softmax(x),
        ("LOG_SOFTMAX",),
        tf=True,
        calib_scale=0.1,
    ),
]
