"""NEG: float32 only, because TFLM's is. Its kernel negates float32 and nothing else (an int8 NEG
fails at Invoke: "Type INT8 (9) not supported"), so tinyq has no int8 signature and an int8 NEG
is refused at import, naming the op and its dtypes. The TFLite converter, for its part, leaves
NEG in float between a DEQUANTIZE and a QUANTIZE even in int8 mode; such a model imports and runs
in the reference (negation is exact in float32, as TFLM's), but no C is generated for it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import Signature, register
from tinyq.ops.common import FLOAT, UnaryOp


@dataclass(frozen=True)
class Neg:
    pass


@register
class NegOp(UnaryOp):
    attrs = Neg
    name = "NEG"
    signatures = (Signature((FLOAT,), (FLOAT,)),)

    def reference(self, a, p, ins, in_tensors, outs):
        return np.negative(ins[0].astype(np.float32))

    def forward(self, tf, op, graph, xs):
        return tf.negative(xs[0])
