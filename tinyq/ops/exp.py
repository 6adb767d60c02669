"""EXP, float32 only: TFLite Micro's EXP kernel takes float32 alone (its Prepare refuses int8),
so an int8 EXP is refused at import, naming the dtypes it supports."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinyq.ops import Signature, register
from tinyq.ops.common import FLOAT, UnaryOp


@dataclass(frozen=True)
class Exp:
    pass


@register
class ExpOp(UnaryOp):
    attrs = Exp
    name = "EXP"
    signatures = (Signature((FLOAT,), (FLOAT,)),)

    def forward(self, tf, op, graph, xs):
        return tf.exp(xs[0])

    def propagate_range(self, op, ranges):
        if ranges[0] is None:
            return None
        lo, hi = ranges[0]
        return math.exp(min(lo, 700.0)), math.exp(min(hi, 700.0))
