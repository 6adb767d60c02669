"""QUANTIZE (float32 -> int8 at the graph boundary, or int8 -> int8 requantization) and
DEQUANTIZE (int8 -> float32), as TFLM computes them.

Kernels: quantize_f32 (roundf of x / scale, bounded, plus the zero point),
requantize_s8 (one multiplier), dequantize_s8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import MAX_MULTIPLIER, InPlace, Kernel, OpDef, Signature, register
from tinyq.ops.common import FLOAT, INT8, activation_tensor, clamp_int8, count, round_half_away_f32, same_shape

QUANTIZE_BOUND = 1000.0  # quantize_f32 bounds x / scale before converting it to an integer


@dataclass(frozen=True)
class Quantize:
    """float32 -> int8 at the graph boundary, or int8 -> int8 requantization."""


@dataclass(frozen=True)
class Dequantize:
    """int8 -> float32 at the graph boundary."""


@dataclass(frozen=True)
class RequantizeParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


@dataclass(frozen=True)
class AffineQuantizeParams:
    """float32 <-> int8 (scale as TFLM holds it: a double made from float32)."""

    scale: float
    zero_point: int


def _check(ins, outs) -> None:
    count(ins, outs, 1)
    same_shape(ins[0], outs[0])
    activation_tensor(ins[0], "input")
    activation_tensor(outs[0], "output")


@register
class QuantizeOp(OpDef):
    attrs = Quantize
    name = "QUANTIZE"
    signatures = (Signature((FLOAT,), (INT8,)), Signature((INT8,), (INT8,)))

    def check(self, a, ins, outs):
        _check(ins, outs)

    def min_scales(self, op, graph, scale):
        return {op.outputs[0]: scale(op.inputs[0]) / MAX_MULTIPLIER}

    def params(self, attrs, ins, outs):
        x, y = ins[0], outs[0]
        if x.dtype == FLOAT:
            return AffineQuantizeParams(y.qparams.s, y.qparams.zp)
        mult, shift = fx.quantize_multiplier(x.qparams.s / y.qparams.s)
        return RequantizeParams(x.qparams.zp, y.qparams.zp, mult, shift)

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0]
        if in_tensors[0].dtype == FLOAT:
            q = round_half_away_f32(x.astype(np.float32) / np.float32(p.scale))
            q = np.fmin(np.fmax(q, np.float32(-QUANTIZE_BOUND)), np.float32(QUANTIZE_BOUND))
            return clamp_int8(q.astype(np.int64) + p.zero_point)
        out = fx.multiply_by_quantized_multiplier(x.astype(np.int64) - p.input_zero_point, p.multiplier, p.shift)
        return clamp_int8(out + p.output_zero_point)

    def kernel(self, op, graph, fast):
        name = "quantize_f32" if graph[op.inputs[0]].dtype == FLOAT else "requantize_s8"
        return Kernel(name, in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        p = ctx.params
        common = {"size": ctx.out.size, "input": ctx.input(), "output": ctx.output()}
        if ctx.tensor(0).dtype == FLOAT:
            return common | {"scale": repr(float(np.float32(p.scale))), "zero_point": p.zero_point}
        return common | {
            "input_zero_point": p.input_zero_point,
            "output_zero_point": p.output_zero_point,
            "multiplier": p.multiplier,
            "shift": p.shift,
        }

    def read_tflite(self, r, op, inputs, outputs):
        return Quantize(), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op("QUANTIZE", [writer.tensor(op.inputs[0])], [writer.tensor(op.outputs[0])])


@register
class DequantizeOp(OpDef):
    attrs = Dequantize
    name = "DEQUANTIZE"
    signatures = (Signature((INT8,), (FLOAT,)),)

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        same_shape(ins[0], outs[0])
        activation_tensor(ins[0], "input")

    def params(self, attrs, ins, outs):
        return AffineQuantizeParams(ins[0].qparams.s, ins[0].qparams.zp)

    def reference(self, a, p, ins, in_tensors, outs):
        return (p.scale * (ins[0].astype(np.float64) - p.zero_point)).astype(np.float32)

    def kernel(self, op, graph, fast):
        return Kernel("dequantize_s8")

    def lower(self, ctx, kernel):
        p = ctx.params
        return {
            "scale": repr(p.scale),
            "zero_point": p.zero_point,
            "size": ctx.out.size,
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        return Dequantize(), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op("DEQUANTIZE", [writer.tensor(op.inputs[0])], [writer.tensor(op.outputs[0])])
