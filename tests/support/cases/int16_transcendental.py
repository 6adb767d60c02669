"""16x8 (int16 activations) LOGISTIC and TANH as converter-made models: TFLM's int16 kernels,
the input rescaled to units of 1/(3 x 4096) and read from the 256-entry sigmoid table with
interpolation, the output at scale 1/32768 and zero point 0. HARD_SWISH has no rows: TFLM's
kernel takes float32 and int8 only, and the converter refuses it in 16x8 mode ("Quantization to
16x8-bit not yet supported for op: 'HARD_SWISH'")."""

from __future__ import annotations

from support.cases import Case

ROWS = [
    # moderate inputs (|x| up to 1): the steep middle of both curves
    Case("s16_logistic_moderate", (4, 5), lambda tf, x: tf.math.sigmoid(x), ("LOGISTIC",), tf=True, int16=True),
    # |x| up to 40: past the table's +-10.7, the output saturates
    Case(
        "s16_logistic_saturating",
        (3, 5, 3),
        lambda tf, x: tf.math.sigmoid(x),
        ("LOGISTIC",),
        tf=True,
        int16=True,
        calib_scale=40.0,
    ),
    # |x| up to 0.05: a tiny input scale, the multiplier doubled many times
    Case(
        "s16_logistic_narrow",
        (37,),
        lambda tf, x: tf.math.sigmoid(x),
        ("LOGISTIC",),
        tf=True,
        int16=True,
        calib_scale=0.05,
    ),
    Case("s16_tanh_moderate", (4, 5), lambda tf, x: tf.math.tanh(x), ("TANH",), tf=True, int16=True),
    # |x| up to 12: tanh's table ends at 5.3, beyond it the output saturates at +-32767
    Case(
        "s16_tanh_saturating",
        (3, 5, 3),
        lambda tf, x: tf.math.tanh(x),
        ("TANH",),
        tf=True,
        int16=True,
        calib_scale=12.0,
    ),
    Case("s16_tanh_narrow", (37,), lambda tf, x: tf.math.tanh(x), ("TANH",), tf=True, int16=True, calib_scale=0.05),
]
