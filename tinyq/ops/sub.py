"""SUB: int8 subtraction as TFLM computes it, with broadcasting and a fused activation.

The arithmetic is ADD's: both inputs rescaled to twice the larger scale with
20 bits of headroom, the second subtracted from the first, the difference
requantized, with ADD's parameters. int16 (16x8, zero points 0) is ADD's int16 arithmetic
too (15 bits of headroom; TFLM's Sub and BroadcastQuantSubSlow on int16). (Some TFLM sources compute SUB's scale
ratios in float32; the pinned TFLM agrees with the double ones on every input
pair, and disagrees with float32 ratios: tests/test_binary_ops.py.)
Kernel: sub_s8 (portable, broadcast by strides; sub_s16 is it rendered with `int16`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyq.ir import Activation
from tinyq.ops import register
from tinyq.ops.add import add_min_scales, add_params, requantized_sum, rescaled_inputs
from tinyq.ops.binary import BINARY_WITH_INT16, BinaryOp


@dataclass(frozen=True)
class Sub:
    activation: Activation = Activation.NONE


@register
class SubOp(BinaryOp):
    attrs = Sub
    name = "SUB"
    signatures = BINARY_WITH_INT16
    options_table = "SubOptions"
    kernel_name = "sub_s8"

    def apply(self, tf, a, b):
        return a - b

    def params(self, attrs, ins, outs):
        return add_params(attrs.activation, ins, outs)

    def reference(self, a, p, ins, in_tensors, outs):
        s1, s2 = rescaled_inputs(p, ins, in_tensors, outs)
        return requantized_sum(p, s1 - s2, outs[0].dtype)

    def min_scales(self, op, graph, scale, bits=8):
        return add_min_scales(op, scale, bits)

    def propagate_range(self, op, ranges):
        if any(r is None for r in ranges):
            return None
        (lo1, hi1), (lo2, hi2) = ranges
        return lo1 - hi2, hi1 - lo2
