"""16x8 (int16 activations) ADD, SUB and MUL as single-op converter-made models: TFLM's general
int16 paths (15 bits of headroom for ADD/SUB, zero points 0), same shapes with different input
scales, broadcast operands, constant operands, and a RELU the converter fuses into ADD."""

from __future__ import annotations

import numpy as np

from support.cases import Case

# a constant operand per channel (broadcast over the spatial axes)
_CHANNEL_GAIN = np.array([0.5, -1.5, 2.25], dtype=np.float32)

ROWS = [
    # --- ADD: a MUL by 0.1 in front gives the second operand a ten times finer scale
    Case("s16_add_different_scales", (6, 5, 3), lambda tf, x, y: x + 0.1 * y, ("ADD",), tf=True, int16=True, inputs=2),
    Case(
        "s16_add_broadcast",
        (4, 5, 3),
        lambda tf, x, y: x + y,
        ("ADD",),
        tf=True,
        int16=True,
        input_shapes=((4, 5, 3), (1, 5, 1)),
    ),
    Case(
        "s16_add_relu_fused",
        (5, 4, 3),
        lambda tf, x, y: tf.nn.relu(x + 0.3 * y),
        ("ADD",),
        tf=True,
        int16=True,
        inputs=2,
        calib_scale=2.0,
    ),
    # --- SUB
    Case("s16_sub_different_scales", (6, 5, 3), lambda tf, x, y: x - 0.2 * y, ("SUB",), tf=True, int16=True, inputs=2),
    Case(
        "s16_sub_broadcast",
        (4, 5, 3),
        lambda tf, x, y: x - y,
        ("SUB",),
        tf=True,
        int16=True,
        input_shapes=((4, 5, 3), (3,)),
    ),
    # --- MUL: y + 2 (an ADD of a scalar constant) has three times x's scale
    Case(
        "s16_mul_different_scales",
        (6, 5, 3),
        lambda tf, x, y: x * (y + 2.0),
        ("MUL",),
        tf=True,
        int16=True,
        inputs=2,
    ),
    Case(
        "s16_mul_broadcast",
        (4, 5, 3),
        lambda tf, x, y: x * y,
        ("MUL",),
        tf=True,
        int16=True,
        input_shapes=((4, 5, 3), (4, 1, 3)),
    ),
    Case(
        "s16_mul_constant_channels",
        (4, 5, 3),
        lambda tf, x: x * tf.constant(_CHANNEL_GAIN),
        ("MUL",),
        tf=True,
        int16=True,
    ),
]
