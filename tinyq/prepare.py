"""Integer kernel parameters derived from tensor quantization (TFLM's Prepare).

`prepare(op, graph)` returns one frozen dataclass per op: multipliers, shifts,
offsets and clamps, computed exactly as TFLite Micro computes them (doubles
from float32 scales, the same operation order). The numpy reference and the
C code generator both read these, so they cannot drift apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import singledispatch

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import (Activation, Add, AveragePool2D, Concatenation, Conv2D, DepthwiseConv2D,
                      Dequantize, FullyConnected, Graph, Logistic, MaxPool2D, Mean, Mul, Op, Pad,
                      Quantize, Reshape, Softmax, Tensor)

INT8_MIN, INT8_MAX = -128, 127


def activation_range(activation: Activation, out: Tensor) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int8 output."""
    scale, zp = np.float32(out.qparams.s), out.qparams.zp

    def quantize(value: float) -> int:
        return zp + fx.round_half_away(float(np.float32(value) / scale))

    lo, hi = {Activation.NONE: (None, None), Activation.RELU: (0.0, None),
              Activation.RELU6: (0.0, 6.0), Activation.RELU_N1_TO_1: (-1.0, 1.0)}[activation]
    return (INT8_MIN if lo is None else max(INT8_MIN, quantize(lo)),
            INT8_MAX if hi is None else min(INT8_MAX, quantize(hi)))


@dataclass(frozen=True)
class AffineParams:
    """CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: one multiplier per output channel."""
    input_offset: int
    output_offset: int
    multiplier: tuple[int, ...]
    shift: tuple[int, ...]
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MulParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PoolParams:
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MeanParams:
    """TFLM's integer mean: (sum - count*zp_in) * multiplier * 2^shift + zp_out, with
    1/count folded into the multiplier (LiteRT's QuantizedMeanOrSum)."""
    count: int
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


@dataclass(frozen=True)
class LogisticParams:
    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


@dataclass(frozen=True)
class RequantizeParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


@dataclass(frozen=True)
class AffineQuantizeParams:
    """float32 -> int8 (scale as TFLM holds it: a double made from float32)."""
    scale: float
    zero_point: int


@dataclass(frozen=True)
class NoParams:
    pass


@singledispatch
def _prepare(attrs, ins: list[Tensor], outs: list[Tensor]):
    raise NotImplementedError(type(attrs).__name__)


def prepare(op: Op, graph: Graph):
    """Kernel parameters of an integer op (None for float ops)."""
    ins = [graph[n] for n in op.inputs]
    outs = [graph[n] for n in op.outputs]
    if outs[0].dtype == "float32" and not isinstance(op.attrs, Dequantize):
        return None
    return _prepare(op.attrs, ins, outs)


@_prepare.register(Conv2D)
@_prepare.register(DepthwiseConv2D)
@_prepare.register(FullyConnected)
def _affine(attrs, ins, outs):
    x, w, _ = ins
    y = outs[0]
    channels = w.shape[3] if isinstance(attrs, DepthwiseConv2D) else w.shape[0]
    scales = w.qparams.scale if w.qparams.per_channel_quantized else w.qparams.scale * channels
    pairs = [fx.quantize_multiplier(float(np.float32(x.qparams.s)) * float(np.float32(s))
                                    / float(np.float32(y.qparams.s))) for s in scales]
    lo, hi = activation_range(attrs.activation, y)
    return AffineParams(-x.qparams.zp, y.qparams.zp, tuple(m for m, _ in pairs),
                        tuple(s for _, s in pairs), lo, hi)


@_prepare.register(Add)
def _add(attrs, ins, outs):
    a, b = (t.qparams for t in ins)
    y = outs[0].qparams
    left_shift = 20
    twice_max = 2 * max(a.s, b.s)
    m1 = fx.quantize_multiplier_smaller_than_one_exp(a.s / twice_max)
    m2 = fx.quantize_multiplier_smaller_than_one_exp(b.s / twice_max)
    mo = fx.quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift) * y.s))
    lo, hi = activation_range(attrs.activation, outs[0])
    return AddParams(-a.zp, -b.zp, y.zp, left_shift, *m1, *m2, *mo, lo, hi)


@_prepare.register(Mul)
def _mul(attrs, ins, outs):
    a, b = (t.qparams for t in ins)
    y = outs[0].qparams
    mult, shift = fx.quantize_multiplier(a.s * b.s / y.s)
    lo, hi = activation_range(attrs.activation, outs[0])
    return MulParams(-a.zp, -b.zp, y.zp, mult, shift, lo, hi)


@_prepare.register(AveragePool2D)
@_prepare.register(MaxPool2D)
def _pool(attrs, ins, outs):
    return PoolParams(*activation_range(attrs.activation, outs[0]))


@_prepare.register(Mean)
def _mean(attrs, ins, outs):
    x, y = ins[0], outs[0]
    rank = len(x.shape)
    count = int(np.prod([x.shape[ax % rank] for ax in set(attrs.axes)]))
    mult, shift = fx.quantize_multiplier(x.qparams.s / y.qparams.s)
    division_shift = min(count.bit_length() - 1, 32, 31 + shift)
    mult = (mult << division_shift) // count
    return MeanParams(count, x.qparams.zp, y.qparams.zp, mult, shift - division_shift)


@_prepare.register(Softmax)
def _softmax(attrs, ins, outs):
    scaled_diff_integer_bits = 5
    real = min(float(np.float32(attrs.beta)) * ins[0].qparams.s * (1 << (31 - scaled_diff_integer_bits)),
               (1 << 31) - 1.0)
    mult, left_shift = fx.quantize_multiplier_greater_than_one(real)
    diff_min = -fx.calculate_input_radius(scaled_diff_integer_bits, left_shift)
    return SoftmaxParams(mult, left_shift, diff_min)


@_prepare.register(Logistic)
def _logistic(attrs, ins, outs):
    input_integer_bits = 4
    x = ins[0].qparams
    q, left_shift = math.frexp(x.s * (1 << (31 - input_integer_bits)))
    mult = fx.round_half_away(q * (1 << 31))
    radius = fx.calculate_input_radius(input_integer_bits, left_shift)
    return LogisticParams(x.zp, radius, mult, left_shift)


@_prepare.register(Quantize)
def _quantize(attrs, ins, outs):
    x, y = ins[0], outs[0]
    if x.dtype == "float32":
        return AffineQuantizeParams(y.qparams.s, y.qparams.zp)
    mult, shift = fx.quantize_multiplier(x.qparams.s / y.qparams.s)
    return RequantizeParams(x.qparams.zp, y.qparams.zp, mult, shift)


@_prepare.register(Dequantize)
def _dequantize(attrs, ins, outs):
    return AffineQuantizeParams(ins[0].qparams.s, ins[0].qparams.zp)


@_prepare.register(Reshape)
@_prepare.register(Pad)
@_prepare.register(Concatenation)
def _no_params(attrs, ins, outs):
    return NoParams()
