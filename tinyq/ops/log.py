"""LOG, float32 only: TFLite Micro's LOG kernel evaluates float32 alone (an int8 tensor fails
its Eval), so an int8 LOG is refused at import, naming the dtypes it supports."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinyq.ops import Signature, register
from tinyq.ops.common import FLOAT, UnaryOp


@dataclass(frozen=True)
class Log:
    pass


@register
class LogOp(UnaryOp):
    attrs = Log
    name = "LOG"
    signatures = (Signature((FLOAT,), (FLOAT,)),)

    def forward(self, tf, op, graph, xs):
        return tf.math.log(xs[0])

    def propagate_range(self, op, ranges):
        if ranges[0] is None or ranges[0][0] <= 0:
            return None
        lo, hi = ranges[0]
        return math.log(lo), math.log(hi)
