"""RELU, RELU6 and LEAKY_RELU, int8 and int16, as TFLM computes them.

- RELU requantizes (x - zp_in) to the output scale with one multiplier (double ratio),
  adds zp_out, and clamps to [max(-128, zp_out), 127]. Kernel: relu_s8.
- RELU6 does no arithmetic: TFLM clamps the input codes to [zp_in, zp_in + round(6 / s_in)]
  and writes them as they are, whatever the output's quantization (post-training
  quantization here gives the output the input's). Kernel: relu6_s8.
- LEAKY_RELU requantizes (x - zp_in) with one of two multipliers, the identity's for
  x >= zp_in and alpha's below (a negative alpha gives a negative multiplier). Some TFLM
  sources form both ratios in float32 before QuantizeMultiplier; the pinned TFLM agrees with
  double ratios (s_in / s_out, s_in * alpha / s_out) wherever the two differ, and with
  float32 ones nowhere, so tinyq uses double. Kernel: leaky_relu_s8.

int16 (16x8, zero points 0) is TFLM's same templated arithmetic on int16 codes: RELU and
LEAKY_RELU with the int32 MultiplyByQuantizedMultiplier (not the int64 one of the 16x8
affine kernels) and the int16 range ([0, 32767] for RELU), RELU6 clamping to the code of 6.0
in int16. Kernels: relu_s16, relu6_s16, leaky_relu_s16 (the int8 templates with `int16`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import Activation
from tinyq.ops import OutputQuant, register
from tinyq.ops.common import INTEGER_RANGES, Int16UnaryOp, activation_range, clamp_to


def piecewise_linear_range(f, ranges):
    """The range of f over the input's range, for f linear on each side of 0."""
    if ranges[0] is None:
        return None
    lo, hi = ranges[0]
    values = [f(lo), f(hi)] + ([f(0.0)] if lo < 0.0 < hi else [])
    return min(values), max(values)


def quantize_signed_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier for either sign: the rounding carry (q == 2^31) is halved for a
    positive multiplier only; -2^31 fits int32 and stays."""
    if real >= 0.0:
        return fx.quantize_multiplier(real)
    q, shift = math.frexp(real)
    q_fixed = fx.round_half_away(q * (1 << 31))
    if shift < -31:
        return 0, 0
    return q_fixed, shift


# --- RELU -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class RequantizeClampParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


@register
class ReluOp(Int16UnaryOp):
    attrs = Relu
    name = "RELU"
    kernel_name = "relu_s8"

    def params(self, attrs, ins, outs):
        x, y = ins[0].qparams, outs[0].qparams
        mult, shift = fx.quantize_multiplier(x.s / y.s)
        lo, hi = activation_range(Activation.RELU, outs[0])  # [max(qmin, zp_out), qmax]
        return RequantizeClampParams(x.zp, y.zp, mult, shift, lo, hi)

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0].astype(np.int64) - p.input_zero_point
        y = fx.multiply_by_quantized_multiplier(x, p.multiplier, p.shift) + p.output_zero_point
        return clamp_to(y, outs[0].dtype, p.act_min, p.act_max)

    def forward(self, tf, op, graph, xs):
        return tf.nn.relu(xs[0])

    def propagate_range(self, op, ranges):
        return piecewise_linear_range(lambda v: max(v, 0.0), ranges)


# --- RELU6 ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relu6:
    pass


@dataclass(frozen=True)
class ClampParams:
    """The input codes of real 0 and 6 (FloatToQuantizedType: float32 6 / s_in, rounded)."""

    lo: int
    hi: int


@register
class Relu6Op(Int16UnaryOp):
    attrs = Relu6
    name = "RELU6"
    kernel_name = "relu6_s8"
    output_quant = OutputQuant.INPUT  # TFLM's kernel keeps the input's codes

    def params(self, attrs, ins, outs):
        x = ins[0].qparams
        six = x.zp + fx.round_half_away(float(np.float32(6.0) / np.float32(x.s)))
        return ClampParams(x.zp, int(np.clip(six, *INTEGER_RANGES[ins[0].dtype])))

    def reference(self, a, p, ins, in_tensors, outs):
        return clamp_to(ins[0], outs[0].dtype, p.lo, p.hi)

    def forward(self, tf, op, graph, xs):
        return tf.nn.relu6(xs[0])

    def propagate_range(self, op, ranges):
        return piecewise_linear_range(lambda v: min(max(v, 0.0), 6.0), ranges)


# --- LEAKY_RELU -------------------------------------------------------------------------


@dataclass(frozen=True)
class LeakyRelu:
    alpha: float = 0.2


@dataclass(frozen=True)
class LeakyReluParams:
    input_zero_point: int
    output_zero_point: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int
    alpha_shift: int


@register
class LeakyReluOp(Int16UnaryOp):
    attrs = LeakyRelu
    name = "LEAKY_RELU"
    kernel_name = "leaky_relu_s8"

    def params(self, attrs, ins, outs):
        x, y = ins[0].qparams, outs[0].qparams
        alpha = float(np.float32(attrs.alpha))  # the options table holds a float32
        identity = fx.quantize_multiplier(x.s / y.s)
        scaled_alpha = quantize_signed_multiplier(x.s * alpha / y.s)
        return LeakyReluParams(x.zp, y.zp, *identity, *scaled_alpha)

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0].astype(np.int64) - p.input_zero_point
        positive = fx.multiply_by_quantized_multiplier(x, p.identity_multiplier, p.identity_shift)
        negative = fx.multiply_by_quantized_multiplier(x, p.alpha_multiplier, p.alpha_shift)
        return clamp_to(np.where(x >= 0, positive, negative) + p.output_zero_point, outs[0].dtype)

    def forward(self, tf, op, graph, xs):
        return tf.nn.leaky_relu(xs[0], alpha=op.attrs.alpha)

    def propagate_range(self, op, ranges):
        alpha = op.attrs.alpha
        return piecewise_linear_range(lambda v: v if v > 0 else alpha * v, ranges)

    def read_tflite(self, r, op, inputs, outputs):
        return LeakyRelu(float(r.options(op, "LeakyReluOptions").Alpha())), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(
            "LEAKY_RELU",
            [writer.tensor(op.inputs[0])],
            [writer.tensor(op.outputs[0])],
            writer.options("LeakyReluOptions", Alpha=float(np.float32(op.attrs.alpha))),
        )
