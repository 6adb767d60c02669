"""Inputs for bit-exactness runs: the anchors' structured input and seeded random ones."""

from __future__ import annotations

import numpy as np


def structured_input(shape) -> np.ndarray:
    """The anchors' input: byte i = (i*7+3) mod 256."""
    size = int(np.prod(shape))
    return ((np.arange(size) * 7 + 3) % 256).astype(np.uint8).view(np.int8).reshape(shape)


INDEX_BOUND = 2  # int32 inputs are indices (GATHER): 0 or 1, valid along any axis of two or more


def random_inputs(graph, count: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        batch = []
        for name in graph.inputs:
            t = graph[name]
            if t.dtype == "float32":
                batch.append(rng.uniform(-1.5, 1.5, t.shape).astype(np.float32))
            elif t.dtype == "int32":
                batch.append(rng.integers(0, INDEX_BOUND, t.shape).astype(np.int32))
            elif t.dtype == "int16":
                batch.append(rng.integers(-32768, 32768, t.shape).astype(np.int16))
            else:
                batch.append(rng.integers(-128, 128, t.shape).astype(np.int8))
        batches.append(batch)
    return batches
