"""SQUARED_DIFFERENCE, elementwise with broadcasting, int8, as TFLM computes it: ADD's
rescaling with 7 bits of headroom instead of 20 (so that 255^2 * 2^14 fits int32), both
inputs at half the larger scale, the difference squared, then requantized by
(2 max(s1, s2))^2 / (2^14 s_out) with a general multiplier. No fused activation.
Kernel: squared_difference_s8 (broadcast by strides).

int16 (16x8, zero points 0): TFLM's same arithmetic with a left shift of 0 (the codes already
have 16 bits; each rescaled input is at most 2^14 in magnitude, so the squared difference stays
below 2^30), the int32 multipliers, saturation to int16. Kernel: squared_difference_s16
(squared_difference_s8 rendered with `int16`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tinyq import fixedpoint as fx
from tinyq.ops import register
from tinyq.ops.add import AddParams, rescaled_inputs
from tinyq.ops.binary import BINARY_WITH_INT16, BinaryOp
from tinyq.ops.common import INT16, INTEGER_RANGES, clamp_to
from tinyq.ops.maximum_minimum import operand_args

LEFT_SHIFT = 7  # int8: 255^2 * 2^14 fits int32
LEFT_SHIFT_16 = 0  # int16: the codes already use 16 bits


@dataclass(frozen=True)
class SquaredDifference:
    pass


@register
class SquaredDifferenceOp(BinaryOp):
    attrs = SquaredDifference
    name = "SQUARED_DIFFERENCE"
    options_table = "SquaredDifferenceOptions"
    kernel_name = "squared_difference_s8"
    signatures = BINARY_WITH_INT16

    def apply(self, tf, a, b):
        return tf.math.squared_difference(a, b)

    def forward(self, tf, op, graph, xs):
        return self.apply(tf, *xs)

    def params(self, attrs, ins, outs):
        """TFLM's PrepareQuantized: ADD's parameters with its own left shift and output scale."""
        a, b = (t.qparams for t in ins)
        y = outs[0].qparams
        twice_max = 2 * max(a.s, b.s)
        m1 = fx.quantize_multiplier_smaller_than_one_exp(a.s / twice_max)
        m2 = fx.quantize_multiplier_smaller_than_one_exp(b.s / twice_max)
        left_shift = LEFT_SHIFT_16 if outs[0].dtype == INT16 else LEFT_SHIFT
        mo = fx.quantize_multiplier(twice_max * twice_max / ((1 << 2 * left_shift) * y.s))
        return AddParams(-a.zp, -b.zp, y.zp, left_shift, *m1, *m2, *mo, *INTEGER_RANGES[outs[0].dtype])

    def reference(self, a, p, ins, in_tensors, outs):
        s1, s2 = rescaled_inputs(p, ins, in_tensors, outs)
        # below 2^30: (255 * 2^7 or 2^15) at most, halved, squared
        squared = fx.wrap32((s1 - s2) * (s1 - s2))
        raw = fx.multiply_by_quantized_multiplier(squared, p.output_multiplier, p.output_shift) + p.output_offset
        return clamp_to(raw, outs[0].dtype, p.act_min, p.act_max)

    def propagate_range(self, op, ranges):
        if any(r is None for r in ranges):
            return None
        (lo1, hi1), (lo2, hi2) = ranges
        return 0.0, max((hi1 - lo2) ** 2, (hi2 - lo1) ** 2)

    def lower(self, ctx, kernel):
        """BinaryOp's values, the operands through operand_args (which reads a constant operand
        from flash without asking the arena for it)."""
        args = asdict(ctx.params)
        return args | {"act": [args.pop("act_min"), args.pop("act_max")]} | operand_args(ctx)

    def read_tflite(self, r, op, inputs, outputs):
        return SquaredDifference(), inputs[:2]

    def write_tflite(self, writer, op):
        writer.add_op(
            self.name,
            [writer.tensor(n) for n in op.inputs],
            [writer.tensor(op.outputs[0])],
            writer.options(self.options_table),
        )
