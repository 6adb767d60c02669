"""QUANTIZE (float32 -> int8 or int16 at the graph boundary, or a requantization between int8
and int16: int8 -> int8, int8 -> int16, int16 -> int8, int16 -> int16; and int16 <-> int32) and
DEQUANTIZE (int8 or int16 -> float32), as TFLM computes them.

Kernels: quantize_f32 (roundf of x / scale in float32, bounded, plus the zero point, then the
output type's range), requantize_s8 (one multiplier: TFLM's templated Requantize, the int32
MultiplyByQuantizedMultiplier for every pair of types, not the int64 one of the 16x8 affine
kernels; then the output type's range), dequantize_s8 (scale * (q - zero point) in double).
The int16 variants are the same templates with options (int16 codes, symmetric: zero point 0).

int16 <-> int32: TFLM's Requantize<int16_t, int32_t> and <int32_t, int16_t>, the same int32
arithmetic: the int32 input less its zero point and an int32 output plus its zero point wrap as
two's complement (C int32 arithmetic), and an int32 output's range clamps nothing. Kernels:
requantize_s16_s32 and requantize_s32_s16, the template with options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import MAX_MULTIPLIER, InPlace, Kernel, OpDef, OverTime, Signature, register
from tinyq.ops.common import (
    FLOAT,
    INT8,
    INT16,
    activation_tensor,
    clamp_to,
    count,
    round_half_away_f32,
    same_shape,
)

INT32 = "int32"

# quantize_f32 bounds x / scale before converting it to an integer (beyond the bound the output
# saturates anyway; the bound keeps C's float -> int32 conversion defined)
QUANTIZE_BOUND = {INT8: 1000.0, INT16: 100000.0}


@dataclass(frozen=True)
class Quantize:
    """float32 -> int8/int16 at the graph boundary, or a requantization between int8 and int16."""


@dataclass(frozen=True)
class Dequantize:
    """int8 or int16 -> float32 at the graph boundary."""


@dataclass(frozen=True)
class RequantizeParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


@dataclass(frozen=True)
class AffineQuantizeParams:
    """float32 <-> int8 or int16 (scale as TFLM holds it: a double made from float32)."""

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
    over_time = OverTime.STEP_WISE
    signatures = (
        Signature((FLOAT,), (INT8,)),
        Signature((INT8,), (INT8,)),
        Signature((FLOAT,), (INT16,)),
        Signature((INT8,), (INT16,)),
        Signature((INT16,), (INT8,)),
        Signature((INT16,), (INT16,)),
        Signature((INT16,), (INT32,)),
        Signature((INT32,), (INT16,)),
    )

    def check(self, a, ins, outs):
        _check(ins, outs)

    def min_scales(self, op, graph, scale, bits=8):
        return {op.outputs[0]: scale(op.inputs[0]) / MAX_MULTIPLIER}

    def params(self, attrs, ins, outs):
        x, y = ins[0], outs[0]
        if x.dtype == FLOAT:
            return AffineQuantizeParams(y.qparams.s, y.qparams.zp)
        mult, shift = fx.quantize_multiplier(x.qparams.s / y.qparams.s)
        return RequantizeParams(x.qparams.zp, y.qparams.zp, mult, shift)

    def reference(self, a, p, ins, in_tensors, outs):
        x, dtype = ins[0], outs[0].dtype
        if in_tensors[0].dtype == FLOAT:
            bound = np.float32(QUANTIZE_BOUND[dtype])
            q = round_half_away_f32(x.astype(np.float32) / np.float32(p.scale))
            q = np.fmin(np.fmax(q, -bound), bound)
            return clamp_to(q.astype(np.int64) + p.zero_point, dtype)
        # TFLM's Requantize<input_type, output_type>: the int32 multiply for int16 too; int32
        # arithmetic wraps (only an int32 input less its zero point, or an int32 output plus its
        # zero point, can reach beyond int32)
        shifted = fx.wrap32(x.astype(np.int64) - p.input_zero_point)
        out = fx.multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift) + p.output_zero_point
        if dtype == INT32:
            return fx.wrap32(out).astype(np.int32)
        return clamp_to(out, dtype)

    def kernel(self, op, graph, fast):
        x, y = graph[op.inputs[0]].dtype, graph[op.outputs[0]].dtype
        # in place only when output element i ends before input element i + 1 starts: int8 -> int16
        # (or int16 -> int32) would overwrite the next input element before reading it
        in_place = InPlace.NEVER if (x, y) in ((INT8, INT16), (INT16, INT32)) else InPlace.ELEMENTWISE
        if x == FLOAT:
            if y == INT16:
                return Kernel("quantize_f32_s16", "quantize_f32", {"int16": True}, in_place=in_place)
            return Kernel("quantize_f32", in_place=in_place)
        if x == INT8 and y == INT8:
            return Kernel("requantize_s8", in_place=in_place)
        code = {INT8: "s8", INT16: "s16", INT32: "s32"}
        options = {"input_s16": x == INT16, "output_s16": y == INT16, "input_s32": x == INT32, "output_s32": y == INT32}
        return Kernel(f"requantize_{code[x]}_{code[y]}", "requantize_s8", options, in_place=in_place)

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
    signatures = (Signature((INT8,), (FLOAT,)), Signature((INT16,), (FLOAT,)))

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        same_shape(ins[0], outs[0])
        activation_tensor(ins[0], "input")

    def params(self, attrs, ins, outs):
        return AffineQuantizeParams(ins[0].qparams.s, ins[0].qparams.zp)

    def reference(self, a, p, ins, in_tensors, outs):
        return (p.scale * (ins[0].astype(np.float64) - p.zero_point)).astype(np.float32)

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return Kernel("dequantize_s16", "dequantize_s8", {"int16": True})
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
