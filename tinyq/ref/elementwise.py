"""ADD, MUL, LOGISTIC, QUANTIZE and DEQUANTIZE as TFLM computes them for int8."""
from __future__ import annotations

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import Add, Dequantize, Logistic, Mul, Quantize
from tinyq.ref.common import clamp_int8, round_half_away_f32
from tinyq.ref.registry import kernel


def _aligned(x, t, out_rank):
    """Insert broadcast axes after the sample axis so ranks line up."""
    return x.astype(np.int64).reshape((x.shape[0],) + (1,) * (out_rank - len(t.shape)) + t.shape)


def _operands(ins, in_tensors, outs):
    rank = len(outs[0].shape)
    return [_aligned(x[None] if t.is_constant else x, t, rank) for x, t in zip(ins, in_tensors)]


@kernel(Add)
def add(a, p, ins, in_tensors, outs):
    x1, x2 = _operands(ins, in_tensors, outs)
    s1 = fx.multiply_by_quantized_multiplier_smaller_than_one_exp(
        (x1 + p.input1_offset) << p.left_shift, p.input1_multiplier, p.input1_shift)
    s2 = fx.multiply_by_quantized_multiplier_smaller_than_one_exp(
        (x2 + p.input2_offset) << p.left_shift, p.input2_multiplier, p.input2_shift)
    raw = fx.multiply_by_quantized_multiplier_smaller_than_one_exp(
        fx.wrap32(s1 + s2), p.output_multiplier, p.output_shift) + p.output_offset
    return clamp_int8(raw, p.act_min, p.act_max)


@kernel(Mul)
def mul(a, p, ins, in_tensors, outs):
    x1, x2 = _operands(ins, in_tensors, outs)
    prod = (x1 + p.input1_offset) * (x2 + p.input2_offset)
    raw = fx.multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift) + p.output_offset
    return clamp_int8(raw, p.act_min, p.act_max)


@kernel(Logistic)
def logistic(a, p, ins, in_tensors, outs):
    x = ins[0].astype(np.int64) - p.input_zero_point
    q4 = fx.multiply_by_quantized_multiplier(x, p.input_multiplier, p.input_left_shift)
    q23 = fx.rounding_divide_by_pot(fx.logistic(q4, 4), 31 - 8)
    out = np.clip(q23 - 128, -128, 127)
    out = np.where(x <= -p.input_range_radius, -128, out)
    return np.where(x >= p.input_range_radius, 127, out).astype(np.int8)


@kernel(Quantize)
def quantize(a, p, ins, in_tensors, outs):
    x = ins[0]
    if in_tensors[0].dtype == "float32":
        q = round_half_away_f32(x.astype(np.float32) / np.float32(p.scale))
        q = np.fmin(np.fmax(q, np.float32(-1000)), np.float32(1000))   # as the C kernel bounds it
        return clamp_int8(q.astype(np.int64) + p.zero_point)
    out = fx.multiply_by_quantized_multiplier(x.astype(np.int64) - p.input_zero_point, p.multiplier, p.shift)
    return clamp_int8(out + p.output_zero_point)


@kernel(Dequantize)
def dequantize(a, p, ins, in_tensors, outs):
    return (p.scale * (ins[0].astype(np.float64) - p.zero_point)).astype(np.float32)
