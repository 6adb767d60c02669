"""Converter artefacts tinyq cleans up at import: shape arithmetic of a dynamic batch (SHAPE,
STRIDED_SLICE, PACK feeding RESHAPE), folded to constants."""

from __future__ import annotations

from support.cases import Case

ROWS = [
    Case(
        "dynamic_batch_flatten_dense_reshape",
        (6, 6, 3),
        lambda k, x: k.layers.Reshape((2, 2))(k.layers.Dense(4)(k.layers.Flatten()(k.layers.Conv2D(4, 3)(x)))),
        ("CONV_2D", "RESHAPE", "FULLY_CONNECTED"),
        dynamic_batch=True,
    ),
    Case(
        "dynamic_batch_global_pool_reshape",
        (5, 7, 4),
        lambda k, x: k.layers.Reshape((2, 4))(k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(8, 1)(x))),
        ("MEAN", "RESHAPE"),
        dynamic_batch=True,
    ),
]
