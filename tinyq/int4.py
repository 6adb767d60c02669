"""int4 storage: two values per byte, low nibble first (TFLite's INT4 layout)."""

from __future__ import annotations

import numpy as np


def pack_int4(values: np.ndarray) -> np.ndarray:
    """int4 values (held in int8) -> uint8 bytes."""
    nibbles = (values.reshape(-1).astype(np.int16) & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """uint8 bytes -> `count` int4 values held in int8."""
    nibbles = np.stack([packed & 0xF, packed >> 4], axis=1).reshape(-1)[:count].astype(np.int8)
    return np.where(nibbles > 7, nibbles - 16, nibbles).astype(np.int8)
