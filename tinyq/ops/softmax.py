"""SOFTMAX over the last axis, int8 in, int8 out at scale 1/256 and zero point -128, with TFLM's
fixed-point exp (gemmlowp) and reciprocal. Kernel: softmax_s8 (reads a row fully before writing
it, so it may run in place)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import InPlace, Kernel, register
from tinyq.ops.common import ProbabilityOp

SCALED_DIFF_INTEGER_BITS = 5
MARGIN = 1 + 2**-10  # keeps a limit strict after float32 rounding of the scale
ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class Softmax:
    beta: float = 1.0


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


@register
class SoftmaxOp(ProbabilityOp):
    attrs = Softmax
    name = "SOFTMAX"

    def params(self, attrs, ins, outs):
        real = min(
            float(np.float32(attrs.beta)) * ins[0].qparams.s * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0
        )
        mult, left_shift = fx.quantize_multiplier_greater_than_one(real)
        diff_min = -fx.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
        return SoftmaxParams(mult, left_shift, diff_min)

    def min_scales(self, op, graph, scale):
        """TFLM needs beta x s_in x 2^26 above one (QuantizeMultiplierGreaterThanOne)."""
        beta = float(np.float32(op.attrs.beta))
        return {op.inputs[0]: MARGIN / (beta * (1 << (31 - SCALED_DIFF_INTEGER_BITS)))} if beta > 0 else {}

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0].astype(np.int64)
        diff = x - x.max(axis=-1, keepdims=True)
        valid = diff >= p.diff_min
        rescaled = fx.multiply_by_quantized_multiplier_greater_than_one(diff, p.input_multiplier, p.input_left_shift)
        exps = fx.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
        terms = np.where(valid, fx.rescale(exps, 0, ACCUMULATION_INTEGER_BITS), 0)
        sum_of_exps = fx.wrap32(terms.sum(axis=-1, keepdims=True))
        scale, bits_over_unit = fx.get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
        unsat = fx.rounding_divide_by_pot(
            fx.saturating_rounding_doubling_high_mul(scale, exps), bits_over_unit + 31 - 8
        )
        out = np.clip(unsat - 128, -128, 127)
        return np.where(valid, out, -128).astype(np.int8)

    def forward(self, tf, op, graph, xs):
        return tf.nn.softmax(xs[0] * op.attrs.beta, axis=-1)

    def kernel(self, op, graph, fast):
        return Kernel("softmax_s8", in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        p, x = ctx.params, ctx.tensor(0)
        depth = x.shape[-1]
        return {
            "input_multiplier": p.input_multiplier,
            "input_left_shift": p.input_left_shift,
            "diff_min": p.diff_min,
            "rows": x.size // depth,
            "depth": depth,
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        return Softmax(float(r.options(op, "SoftmaxOptions").Beta())), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(
            "SOFTMAX",
            [writer.tensor(op.inputs[0])],
            [writer.tensor(op.outputs[0])],
            writer.options("SoftmaxOptions", Beta=op.attrs.beta),
        )
