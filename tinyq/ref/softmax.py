"""int8 SOFTMAX with TFLM's fixed-point exp (gemmlowp), over the last axis."""
from __future__ import annotations

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import Softmax
from tinyq.ref.registry import kernel

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


@kernel(Softmax)
def softmax(a, p, ins, in_tensors, outs):
    x = ins[0].astype(np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= p.diff_min
    rescaled = fx.multiply_by_quantized_multiplier_greater_than_one(diff, p.input_multiplier, p.input_left_shift)
    exps = fx.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
    terms = np.where(valid, fx.rescale(exps, 0, ACCUMULATION_INTEGER_BITS), 0)
    sum_of_exps = fx.wrap32(terms.sum(axis=-1, keepdims=True))
    scale, bits_over_unit = fx.get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    unsat = fx.rounding_divide_by_pot(fx.saturating_rounding_doubling_high_mul(scale, exps),
                                      bits_over_unit + 31 - 8)
    out = np.clip(unsat - 128, -128, 127)
    return np.where(valid, out, -128).astype(np.int8)
