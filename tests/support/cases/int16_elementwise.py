"""16x8 (int16 activations) SUM, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, RSQRT and EXPAND_DIMS as
single-op converter-made models, each on TFLM's int16 kernel: SUM's QuantizedMeanOrSum on int16
codes, MAXIMUM/MINIMUM comparing codes, SQUARED_DIFFERENCE's rescaling with no left shift,
RSQRT's per-element inverse square root, and EXPAND_DIMS copying values. PRELU has no row: the
converter refuses it in 16x8 mode ("Quantization to 16x8-bit not yet supported for op: 'PRELU'")."""

from __future__ import annotations

from support.cases import Case


def _expand_after_op(axis):
    # a dynamic batch keeps EXPAND_DIMS (with static shapes the converter makes it a RESHAPE);
    # after an op, as EXPAND_DIMS of the graph input itself would fold into the input
    return lambda k, x: k.ops.expand_dims(k.layers.LeakyReLU(0.25)(x), axis)


ROWS = [
    # --- SUM: QuantizedMeanOrSum without the 1/count
    Case("s16_sum_nonadjacent", (4, 5, 3), lambda tf, x: tf.reduce_sum(x, axis=[1, 3]), ("SUM",), tf=True, int16=True),
    Case(
        "s16_sum_one_axis_keep",
        (4, 5, 3),
        lambda tf, x: tf.reduce_sum(x, axis=[2], keepdims=True),
        ("SUM",),
        tf=True,
        int16=True,
    ),
    # --- MAXIMUM / MINIMUM: codes compared, one quantization for inputs and output
    Case(
        "s16_maximum_broadcast",
        (4, 5, 3),
        lambda tf, a, b: tf.maximum(a, b),
        ("MAXIMUM",),
        tf=True,
        int16=True,
        input_shapes=((4, 5, 3), (1, 5, 1)),
    ),
    Case(
        "s16_maximum_same_shape",
        (6, 7),
        lambda tf, a, b: tf.maximum(a, b),
        ("MAXIMUM",),
        tf=True,
        int16=True,
        inputs=2,
    ),
    Case(
        "s16_minimum_same_shape",
        (4, 5, 3),
        lambda tf, a, b: tf.minimum(a, b),
        ("MINIMUM",),
        tf=True,
        int16=True,
        inputs=2,
    ),
    Case(
        "s16_minimum_broadcast_rank",
        (3, 4),
        lambda tf, a, b: tf.minimum(a, b),
        ("MINIMUM",),
        tf=True,
        int16=True,
        input_shapes=((3, 4), (4,)),
    ),
    # --- SQUARED_DIFFERENCE: both inputs at half the larger scale, no left shift
    Case(
        "s16_squared_difference_same_shape",
        (4, 5, 3),
        lambda tf, a, b: tf.math.squared_difference(a, b),
        ("SQUARED_DIFFERENCE",),
        tf=True,
        int16=True,
        inputs=2,
    ),
    Case(
        "s16_squared_difference_broadcast_doubled",
        (4, 5, 3),
        lambda tf, a, b: tf.math.squared_difference(a, b + b),
        ("SQUARED_DIFFERENCE",),
        tf=True,
        int16=True,
        input_shapes=((4, 5, 3), (4, 1, 3)),
    ),
    # --- EXPAND_DIMS: values copied as they are
    Case(
        "s16_expand_dims_middle",
        (4, 5),
        _expand_after_op(2),
        ("LEAKY_RELU", "EXPAND_DIMS"),
        int16=True,
        dynamic_batch=True,
    ),
    Case(
        "s16_expand_dims_last",
        (3, 4, 2),
        _expand_after_op(-1),
        ("LEAKY_RELU", "EXPAND_DIMS"),
        int16=True,
        dynamic_batch=True,
    ),
    # --- RSQRT: TFLM's Newton-Raphson inverse square root per element; squares keep the input
    # non-negative (TFLM fails on negative values)
    Case("s16_rsqrt_of_square", (4, 5), lambda tf, x: tf.math.rsqrt(x * x), ("RSQRT",), tf=True, int16=True),
    Case(
        "s16_rsqrt_sum_of_squares",
        (2, 3, 5),
        lambda tf, a, b: tf.math.rsqrt(a * a + b * b),
        ("RSQRT",),
        tf=True,
        int16=True,
        inputs=2,
        calib_scale=3.0,
    ),
]
