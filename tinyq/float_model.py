"""A float model to quantize: its IR graph and what the graph cannot say."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyq import ir


@dataclass
class FloatModel:
    """A float IR graph plus what quantization needs to know about it: the statistics of
    each folded BatchNorm (used by BN-based range setting and analytic bias correction)
    and, for Keras sources, the Keras model itself."""

    graph: ir.Graph
    bn_stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # tensor -> (beta, gamma)
    keras_model: object | None = None
