"""CONCATENATION along any axis: int8 inputs that share the output's quantization (the
quantizer requantizes the others with QUANTIZE first). Kernel: concatenation_s8
(block copies; a constant input is read from flash).

int16 (16x8): TFLM's int16 CONCATENATION copies the values as they are (EvalUnquantized, no
input scales kept, unlike int8), so its inputs too must share the output's quantization; the
quantizer inserts int16 -> int16 QUANTIZE ops for the others. Kernel: concatenation_s16."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import Activation, Op, Tensor
from tinyq.ops import Kernel, OpDef, Signature, register
from tinyq.ops.common import FLOAT, INT8, INT16, activate, activation_tensor, expect, same_quant
from tinyq.ops.quantize import Quantize


@dataclass(frozen=True)
class Concatenation:
    axis: int
    activation: Activation = Activation.NONE


@register
class ConcatenationOp(OpDef):
    attrs = Concatenation
    name = "CONCATENATION"
    signatures = (
        Signature((INT8,), (INT8,), variadic=True),
        Signature((INT16,), (INT16,), variadic=True),
        Signature((FLOAT,), (FLOAT,), variadic=True),
    )

    def check(self, a, ins, outs):
        expect(len(ins) >= 1 and len(outs) == 1, "expects at least one input and one output")
        y = outs[0]
        rank = len(y.shape)
        axis = a.axis % rank
        for t in ins:
            expect(
                len(t.shape) == rank and all(t.shape[i] == y.shape[i] for i in range(rank) if i != axis),
                f"input {t.name!r} shape {t.shape} does not match output {y.shape} off axis {axis}",
            )
            activation_tensor(t, "input")
            same_quant(t, y, "concatenation (requantize inputs first)")
        expect(sum(t.shape[axis] for t in ins) == y.shape[axis], "concatenated sizes do not add up")

    def params(self, attrs, ins, outs):
        return None  # data movement: no arithmetic

    def reference(self, a, p, ins, in_tensors, outs):
        return np.concatenate(ins, axis=a.axis % len(outs[0].shape) + 1)

    def forward(self, tf, op, graph, xs):
        return activate(tf, tf.concat(xs, axis=op.attrs.axis), op.attrs.activation)

    def propagate_range(self, op, ranges):
        if any(r is None for r in ranges):
            return None
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def quantize(self, op, graph, context):
        """Inputs whose quantization differs from the output's get a QUANTIZE (int8 -> int8, or
        int16 -> int16 at 16x8)."""
        out_q = context.qparams[op.outputs[0]]
        ops, inputs = [], []
        for name in op.inputs:
            if context.qparams[name] != out_q:
                requantized = f"{name}/requantized_for_{op.name}"
                context.set(Tensor(requantized, graph[name].shape, context.dtype, out_q))
                ops.append(Op(f"{op.name}_requantize_{len(inputs)}", Quantize(), (name,), (requantized,)))
                name = requantized
            inputs.append(name)
        return ops + [Op(op.name, op.attrs, tuple(inputs), op.outputs)]

    def kernel(self, op, graph, fast):
        if graph[op.outputs[0]].dtype == INT16:
            return Kernel("concatenation_s16", "concatenation_s8", {"int16": True})
        return Kernel("concatenation_s8")

    def lower(self, ctx, kernel):
        y = ctx.out
        axis = ctx.op.attrs.axis % len(y.shape)
        outer = int(np.prod(y.shape[:axis], dtype=np.int64))
        parts, column = [], 0
        for i, name in enumerate(ctx.op.inputs):
            t = ctx.graph[name]
            block = t.size // outer
            source = ctx.operand(i)
            parts.append({"block": block, "column": column, "input": source})
            column += block
        return {"outer": outer, "output_block": y.size // outer, "parts": parts, "output": ctx.output()}

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "ConcatenationOptions")
        return Concatenation(int(o.Axis()), r.activation(o.FusedActivationFunction())), inputs

    def write_tflite(self, writer, op):
        a = op.attrs
        writer.add_op(
            "CONCATENATION",
            [writer.tensor(n) for n in op.inputs],
            [writer.tensor(op.outputs[0])],
            writer.options(
                "ConcatenationOptions", Axis=a.axis, FusedActivationFunction=writer.activation_code(a.activation)
            ),
        )
