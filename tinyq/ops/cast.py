"""CAST between int8 and int32, as TFLM's CAST does it: a C static_cast of every value,
quantization ignored (int8 -> int32 sign-extends, int32 -> int8 keeps the low byte).
TFLM's other casts involve float, int16 or bool tensors, which tinyq's kernels do not
hold. Kernel: cast_s8 (both directions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite

from tinyq.ops import Kernel, OpDef, Signature, register
from tinyq.ops.common import INT8, count, expect, index_tensor, same_shape

INT32 = "int32"
_TYPE_CODES = {INT8: tflite.TensorType.INT8, INT32: tflite.TensorType.INT32}


@dataclass(frozen=True)
class Cast:
    """The dtypes are the tensors'."""


@register
class CastOp(OpDef):
    attrs = Cast
    name = "CAST"
    signatures = (Signature((INT8,), (INT32,)), Signature((INT32,), (INT8,)))

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        same_shape(ins[0], outs[0])
        for t in ins + outs:
            if t.dtype == INT32:
                index_tensor(t, "operand")
            else:  # the values are cast as they are: an int8 side's quantization plays no part
                expect(
                    t.qparams is None or not t.qparams.per_channel_quantized,
                    f"operand {t.name!r} has per-channel quantization",
                )

    def params(self, attrs, ins, outs):
        return None  # a C cast: no parameters

    def reference(self, a, p, ins, in_tensors, outs):
        return ins[0].astype(np.dtype(outs[0].dtype))  # numpy wraps int32 -> int8 as C does

    def kernel(self, op, graph, fast):
        return Kernel("cast_s8")

    def lower(self, ctx, kernel):
        direction = "s8_s32" if ctx.tensor(0).dtype == INT8 else "s32_s8"
        return {"function": f"tq_cast_{direction}", "size": ctx.out.size, "input": ctx.input(), "output": ctx.output()}

    def read_tflite(self, r, op, inputs, outputs):
        return Cast(), inputs[:1]

    def write_tflite(self, writer, op):
        x, y = writer.graph[op.inputs[0]], writer.graph[op.outputs[0]]
        writer.add_op(
            "CAST",
            [writer.tensor(op.inputs[0])],
            [writer.tensor(op.outputs[0])],
            writer.options("CastOptions", InDataType=_TYPE_CODES[x.dtype], OutDataType=_TYPE_CODES[y.dtype]),
        )
