"""MEAN over any axes, int8, as TFLM computes it: (sum - count*zp_in) * multiplier * 2^shift +
zp_out, with 1/count folded into the multiplier (LiteRT's QuantizedMeanOrSum).
Kernel: mean_s8 (adjacent axes: the tensor as outer x reduced x inner)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import Kernel, OpDef, Signature, Unsupported, register
from tinyq.ops.common import FLOAT, INT8, activation_tensor, clamp_int8, count, expect


@dataclass(frozen=True)
class Mean:
    axes: tuple[int, ...]
    keep_dims: bool = True


@dataclass(frozen=True)
class MeanParams:
    count: int
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


def reduced_axes(axes, rank: int) -> list[int]:
    return sorted({ax % rank for ax in axes})


@register
class MeanOp(OpDef):
    attrs = Mean
    name = "MEAN"
    signatures = (Signature((INT8,), (INT8,)), Signature((FLOAT,), (FLOAT,)))

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        axes = reduced_axes(a.axes, len(x.shape))
        shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
        if not a.keep_dims:
            shape = [d for i, d in enumerate(x.shape) if i not in axes]
        expect(y.shape == tuple(shape), f"output shape {y.shape}, expected {tuple(shape)}")
        activation_tensor(x, "input")
        activation_tensor(y, "output")

    def params(self, attrs, ins, outs):
        x, y = ins[0], outs[0]
        rank = len(x.shape)
        cells = int(np.prod([x.shape[ax % rank] for ax in set(attrs.axes)]))
        mult, shift = fx.quantize_multiplier(x.qparams.s / y.qparams.s)
        division_shift = min(cells.bit_length() - 1, 32, 31 + shift)
        mult = (mult << division_shift) // cells
        return MeanParams(cells, x.qparams.zp, y.qparams.zp, mult, shift - division_shift)

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0].astype(np.int64)
        axes = tuple(ax + 1 for ax in reduced_axes(a.axes, len(in_tensors[0].shape)))
        shifted_sum = x.sum(axis=axes) - p.input_zero_point * p.count
        out = fx.multiply_by_quantized_multiplier(shifted_sum, p.multiplier, p.shift) + p.output_zero_point
        return clamp_int8(out).reshape((x.shape[0],) + outs[0].shape)

    def forward(self, tf, op, graph, xs):
        return tf.reduce_mean(xs[0], axis=list(op.attrs.axes), keepdims=op.attrs.keep_dims)

    def kernel(self, op, graph, fast):
        return Kernel("mean_s8")

    def lower(self, ctx, kernel):
        p, x = ctx.params, ctx.tensor(0)
        axes = reduced_axes(ctx.op.attrs.axes, len(x.shape))
        if axes != list(range(axes[0], axes[-1] + 1)):
            raise Unsupported(f"{ctx.op.name}: MEAN over non-adjacent axes {axes} is not supported by the C kernels")
        outer = int(np.prod(x.shape[: axes[0]], dtype=np.int64))
        inner = int(np.prod(x.shape[axes[-1] + 1 :], dtype=np.int64))
        return {
            "count": p.count,
            "input_zero_point": p.input_zero_point,
            "output_zero_point": p.output_zero_point,
            "multiplier": p.multiplier,
            "shift": p.shift,
            "outer": outer,
            "inner": inner,
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        axes = r.constant(inputs[1], "MEAN axis").reshape(-1)
        keep = bool(r.options(op, "ReducerOptions").KeepDims())
        return Mean(tuple(int(a) for a in axes), keep), inputs[:1]

    def write_tflite(self, writer, op):
        axes = writer.constant(f"{op.name}/axes", np.array(op.attrs.axes, np.int32))
        writer.add_op(
            "MEAN",
            [writer.tensor(op.inputs[0]), axes],
            [writer.tensor(op.outputs[0])],
            writer.options("ReducerOptions", KeepDims=op.attrs.keep_dims),
        )
