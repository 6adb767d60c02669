"""PRELU, int8, as TFLM computes it: x - zp_in requantized to the output scale when non-negative
(s_in / s_out), and (x - zp_in)(alpha - zp_alpha) requantized when negative (s_in s_alpha / s_out),
both ratios in double; plus zp_out, saturated. Alpha is a tensor (a constant in converter-made
models, quantized per tensor) that broadcasts against the input. Kernel: prelu_s8 (4-D strides,
0 on broadcast dimensions; a constant alpha lives in flash).

int16 (16x8): TFLM's same BroadcastPrelu4DSlow and parameters on an int16 input and output
(zero points 0) with an int8 alpha, the int32 MultiplyByQuantizedMultiplier (the product fits:
2^15 * 2^8), saturation to int16. Kernel: prelu_s16 (prelu_s8 rendered with `int16`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import InPlace, Kernel, OpDef, Signature, register
from tinyq.ops.common import (
    FLOAT,
    INT8,
    INT16,
    activation_tensor,
    aligned_operands,
    broadcast_shape,
    broadcast_strides,
    clamp_to,
    count,
    dims4,
    expect,
)


@dataclass(frozen=True)
class Prelu:
    """Alpha is the op's second input."""


@dataclass(frozen=True)
class PreluParams:
    input_offset: int
    alpha_offset: int
    output_offset: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int
    alpha_shift: int


@register
class PreluOp(OpDef):
    attrs = Prelu
    name = "PRELU"
    # TFLM's int16 PRELU reads an int8 alpha
    signatures = (
        Signature((INT8, INT8), (INT8,)),
        Signature((INT16, INT8), (INT16,)),
        Signature((FLOAT, FLOAT), (FLOAT,)),
    )

    def check(self, a, ins, outs):
        count(ins, outs, 2)
        shape = broadcast_shape(ins)
        expect(outs[0].shape == shape, f"output shape {outs[0].shape}, expected {shape}")
        activation_tensor(ins[0], "input")
        activation_tensor(ins[1], "alpha")
        activation_tensor(outs[0], "output")

    def params(self, attrs, ins, outs):
        x, alpha, y = ins[0].qparams, ins[1].qparams, outs[0].qparams
        return PreluParams(
            -x.zp,
            -alpha.zp,
            y.zp,
            *fx.quantize_multiplier(x.s / y.s),
            *fx.quantize_multiplier(x.s * alpha.s / y.s),
        )

    def reference(self, a, p, ins, in_tensors, outs):
        x, alpha = aligned_operands(ins, in_tensors, outs)
        x = x + p.input_offset
        positive = fx.multiply_by_quantized_multiplier(x, p.identity_multiplier, p.identity_shift)
        negative = fx.multiply_by_quantized_multiplier(x * (alpha + p.alpha_offset), p.alpha_multiplier, p.alpha_shift)
        return clamp_to(np.where(x >= 0, positive, negative) + p.output_offset, outs[0].dtype)

    def forward(self, tf, op, graph, xs):
        x, alpha = xs
        return tf.maximum(x, 0.0) + alpha * tf.minimum(x, 0.0)

    def kernel(self, op, graph, fast):
        if graph[op.outputs[0]].dtype == INT16:
            return Kernel("prelu_s16", "prelu_s8", {"int16": True}, in_place=InPlace.ELEMENTWISE)
        return Kernel("prelu_s8", in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        """The params as the kernel's struct, both operands' strides; a constant operand in flash."""

        return asdict(ctx.params) | {
            "output_dims": dims4(ctx.out.shape),
            "input_strides": broadcast_strides(ctx.tensor(0).shape, ctx.out.shape),
            "input": ctx.operand(0),
            "alpha_strides": broadcast_strides(ctx.tensor(1).shape, ctx.out.shape),
            "alpha": ctx.operand(1),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        return Prelu(), inputs[:2]

    def write_tflite(self, writer, op):
        writer.add_op("PRELU", [writer.tensor(n) for n in op.inputs], [writer.tensor(op.outputs[0])])
