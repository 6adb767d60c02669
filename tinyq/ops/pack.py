"""PACK (tf.stack) and UNPACK (tf.unstack): inputs of one shape stacked along a new axis, and a
tensor cut into its slices along one. Neither requantizes: PACK's inputs share the output's
quantization (the quantizer requantizes the others with QUANTIZE first, as for
CONCATENATION), UNPACK's outputs the input's. Kernel: strided_copy_s8 (one walk per slice:
[outer, inner] blocks, every values-th block on the packed side).

int16 (16x8): TFLM's PACK and UNPACK move int16 values the same way (PACK's inputs, too, must
share the output's quantization: the quantizer requantizes the others int16 -> int16).
Kernel: strided_copy_s16."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import Op, Tensor
from tinyq.ops import OutputQuant, Signature, register
from tinyq.ops.common import FLOAT, INT8, INT16, activation_tensor, expect, same_quant
from tinyq.ops.quantize import Quantize
from tinyq.ops.strided_copy import (
    SPLIT_SIGNATURES,
    Copy,
    MovementOp,
    batched,
    check_moved,
    forward_on_samples,
    samples_of,
)


@dataclass(frozen=True)
class Pack:
    axis: int  # in the output's dimensions


@dataclass(frozen=True)
class Unpack:
    axis: int  # in the input's dimensions


def _slice_walks(packed_shape, axis: int, packing: bool) -> list[Copy]:
    """Slice k of the packed tensor along `axis`, [outer, inner], from or to its own tensor k."""
    values = packed_shape[axis]
    outer = int(np.prod(packed_shape[:axis], dtype=np.int64))
    inner = int(np.prod(packed_shape[axis + 1 :], dtype=np.int64))
    packed, single = (values * inner, 1), (inner, 1)
    walks = []
    for k in range(values):
        if packing:
            walks.append(Copy((outer, inner), single, packed, output_offset=k * inner, input=k))
        else:
            walks.append(Copy((outer, inner), packed, single, input_offset=k * inner, output=k))
    return walks


def _with_samples(tf, views, op, graph):
    """PACK's operands with the sample axis, constants repeated along it."""
    samples = next((tf.shape(v)[:1] for v, n in zip(views, op.inputs) if not graph[n].is_constant), [1])
    return [
        tf.broadcast_to(v[None], tf.concat([samples, graph[n].shape], 0)) if graph[n].is_constant else v
        for v, n in zip(views, op.inputs)
    ]


@register
class PackOp(MovementOp):
    attrs = Pack
    name = "PACK"
    signatures = (
        Signature((INT8,), (INT8,), variadic=True),
        Signature((INT16,), (INT16,), variadic=True),
        Signature((FLOAT,), (FLOAT,), variadic=True),
    )
    output_quant = OutputQuant.OWN  # its own range, which covers every input's

    def check(self, a, ins, outs):
        expect(len(ins) >= 1 and len(outs) == 1, "expects at least one input and one output")
        y = outs[0]
        rank = len(ins[0].shape) + 1
        expect(-rank <= a.axis < rank, f"axis {a.axis} outside a rank-{rank} output")
        axis = a.axis % rank
        shape = ins[0].shape[:axis] + (len(ins),) + ins[0].shape[axis:]
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        activation_tensor(y, "output")
        for t in ins:
            expect(t.shape == ins[0].shape, f"input {t.name!r} shape {t.shape} differs from {ins[0].shape}")
            activation_tensor(t, "input")
            same_quant(t, y, "pack (requantize inputs first)")

    def reference(self, a, p, ins, in_tensors, outs):
        samples = samples_of(ins, in_tensors)
        axis = a.axis % len(outs[0].shape)
        return np.stack([batched(x, t, samples) for x, t in zip(ins, in_tensors)], axis=axis + 1)

    def forward(self, tf, op, graph, xs):
        axis = op.attrs.axis % len(graph[op.outputs[0]].shape) + 1
        return forward_on_samples(tf, op, graph, xs, lambda v: tf.stack(_with_samples(tf, v, op, graph), axis=axis))

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
            if graph[name].is_constant:
                context.constant_as_activation(name)
            if context.tensors[name].qparams != out_q:
                requantized = f"{name}/requantized_for_{op.name}"
                context.set(Tensor(requantized, graph[name].shape, context.dtype, out_q))
                ops.append(Op(f"{op.name}_requantize_{len(inputs)}", Quantize(), (name,), (requantized,)))
                name = requantized
            inputs.append(name)
        return ops + [Op(op.name, op.attrs, tuple(inputs), op.outputs)]

    def copies(self, op, graph):
        y = graph[op.outputs[0]]
        return _slice_walks(y.shape, op.attrs.axis % len(y.shape), packing=True)

    def read_tflite(self, r, op, inputs, outputs):
        return Pack(int(r.options(op, "PackOptions").Axis())), inputs

    def write_tflite(self, writer, op):
        writer.add_op(
            "PACK",
            [writer.tensor(n) for n in op.inputs],
            [writer.tensor(op.outputs[0])],
            writer.options("PackOptions", ValuesCount=len(op.inputs), Axis=op.attrs.axis),
        )


@register
class UnpackOp(MovementOp):
    attrs = Unpack
    name = "UNPACK"
    signatures = SPLIT_SIGNATURES

    def check(self, a, ins, outs):
        expect(len(ins) == 1 and len(outs) >= 1, "expects one input and at least one output")
        x = ins[0]
        rank = len(x.shape)
        expect(-rank <= a.axis < rank, f"axis {a.axis} outside a rank-{rank} input")
        axis = a.axis % rank
        expect(x.shape[axis] == len(outs), f"{len(outs)} outputs for {x.shape[axis]} slices")
        shape = x.shape[:axis] + x.shape[axis + 1 :]
        for y in outs:
            expect(y.shape == shape, f"output {y.name!r} shape {y.shape}, expected {shape}")
        check_moved(ins, outs, self.name)

    def reference(self, a, p, ins, in_tensors, outs):
        axis = a.axis % len(in_tensors[0].shape)
        return tuple(np.take(ins[0], k, axis=axis + 1) for k in range(len(outs)))

    def forward(self, tf, op, graph, xs):
        axis = op.attrs.axis % len(graph[op.inputs[0]].shape) + 1
        return forward_on_samples(tf, op, graph, xs, lambda v: tf.unstack(v[0], axis=axis))

    def copies(self, op, graph):
        x = graph[op.inputs[0]]
        return _slice_walks(x.shape, op.attrs.axis % len(x.shape), packing=False)

    def read_tflite(self, r, op, inputs, outputs):
        return Unpack(int(r.options(op, "UnpackOptions").Axis())), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(
            "UNPACK",
            [writer.tensor(op.inputs[0])],
            [writer.tensor(n) for n in op.outputs],
            writer.options("UnpackOptions", Num=len(op.outputs), Axis=op.attrs.axis),
        )
