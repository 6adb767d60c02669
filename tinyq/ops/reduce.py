"""The reductions over any set of axes: SUM (TFLM's QuantizedMeanOrSum with compute_sum, the
arithmetic of MEAN without the 1/count), REDUCE_MAX and REDUCE_MIN (int8 codes compared as they
are, so the output shares the input's quantization, as TFLM requires), and what MEAN shares
with them (tinyq/ops/mean.py): axes, keep_dims, the TFLite mapping and the C loops.

TFLM resolves the axes first (negative ones counted from the end, duplicates dropped) and sums
into int32 (wrapping) whatever the axes. The C kernels see the tensor as at most three kept
and three reduced loops (adjacent axes of one kind merged): any set of axes of a rank-6 tensor.
Kernels: mean_s8 (MEAN and SUM), reduce_max_min_s8.

int16 (16x8, zero points 0): MEAN and SUM take the same QuantizedMeanOrSum on int16 codes
(int32 sum, wrapping; the int32 MultiplyByQuantizedMultiplier; saturation to int16), kernel
mean_s16. REDUCE_MAX and REDUCE_MIN stay int8: TFLM's EvalMax has no int16 case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import Kernel, OpDef, OutputQuant, Signature, Unsupported, register
from tinyq.ops.common import FLOAT, INT8, INT16, WITH_INT16, activation_tensor, clamp_to, count, expect, same_quant

LOOPS = 3  # kept and reduced loops of the C kernels


def reduced_axes(axes, rank: int) -> list[int]:
    """TFLM's ResolveAxis: negative axes from the end, duplicates dropped (sorted here)."""
    return sorted({ax % rank for ax in axes})


def reduced_count(axes, shape) -> int:
    """Elements summed into each output (TFLM's num_elements_in_axis)."""
    return int(np.prod([shape[ax] for ax in reduced_axes(axes, len(shape))], dtype=np.int64))


def reduced_shape(axes, keep_dims: bool, shape) -> tuple[int, ...]:
    axes = reduced_axes(axes, len(shape)) if shape else []
    if keep_dims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def reduction_loops(axes, shape) -> tuple[list[list[int]], list[list[int]]]:
    """The tensor as the C kernels walk it: ([sizes], [strides]) of the kept loops (outermost
    first, so the output comes out in order) and of the reduced loops, each padded to LOOPS.
    Size-1 dimensions vanish; adjacent dimensions of one kind merge into one loop."""
    axes = set(reduced_axes(axes, len(shape))) if shape else set()
    loops: list[list] = []  # [size, stride, reduced], innermost first
    stride = 1
    for i in range(len(shape) - 1, -1, -1):
        if shape[i] != 1:
            if loops and loops[-1][2] == (i in axes):
                loops[-1][0] *= shape[i]  # its stride is the inner dimension's, already set
            else:
                loops.append([shape[i], stride, i in axes])
        stride *= shape[i]
    kept = [loop for loop in reversed(loops) if not loop[2]]
    reduced = [loop for loop in reversed(loops) if loop[2]]
    if len(kept) > LOOPS or len(reduced) > LOOPS:
        raise Unsupported(f"reducing axes {sorted(axes)} of shape {shape} needs more than {LOOPS} loops of each kind")

    def padded(part):
        part = [[1, 0]] * (LOOPS - len(part)) + [loop[:2] for loop in part]
        return [[size for size, _ in part], [stride for _, stride in part]]

    return padded(kept), padded(reduced)


@dataclass(frozen=True)
class MeanParams:
    count: int
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


def mean_or_sum_params(count: int, ins, outs, compute_sum: bool) -> MeanParams:
    """TFLM's Prepare (multiplier of s_in / s_out, in double) and, for MEAN, the 1/count that
    QuantizedMeanOrSum folds into the multiplier: shifted up by log2(count), at most 32 and at
    most 31 + shift bits, then divided (truncating)."""
    x, y = ins[0].qparams, outs[0].qparams
    mult, shift = fx.quantize_multiplier(x.s / y.s)
    if not compute_sum:
        division_shift = min(count.bit_length() - 1, 32, 31 + shift)
        mult = (mult << division_shift) // count
        shift -= division_shift
    return MeanParams(count, x.zp, y.zp, mult, shift)


def mean_or_sum(a, p: MeanParams, ins, in_tensors, outs) -> np.ndarray:
    """(sum - count * zp_in) requantized, plus zp_out; the sum wraps to int32 as TFLM's does."""
    x = ins[0].astype(np.int64)
    axes = tuple(ax + 1 for ax in reduced_axes(a.axes, len(in_tensors[0].shape)))
    shifted_sum = x.sum(axis=axes) - p.input_zero_point * p.count
    out = fx.multiply_by_quantized_multiplier(shifted_sum, p.multiplier, p.shift) + p.output_zero_point
    return clamp_to(out, outs[0].dtype).reshape((x.shape[0],) + outs[0].shape)


def lower_mean_or_sum(ctx) -> dict:
    p, x = ctx.params, ctx.tensor(0)
    kept, reduced = reduction_loops(ctx.op.attrs.axes, x.shape)
    return {
        "count": p.count,
        "input_zero_point": p.input_zero_point,
        "output_zero_point": p.output_zero_point,
        "multiplier": p.multiplier,
        "shift": p.shift,
        "kept": kept,
        "reduced": reduced,
        "input": ctx.input(),
        "output": ctx.output(),
    }


class ReduceOp(OpDef):
    """A reduction of one input over constant axes (TFLite's second operand), with keep_dims."""

    signatures = (Signature((INT8,), (INT8,)), Signature((FLOAT,), (FLOAT,)))

    def tf_reduce(self, tf):
        """The TensorFlow reduction (tf.reduce_sum, ...)."""
        raise NotImplementedError

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        shape = reduced_shape(a.axes, a.keep_dims, x.shape)
        expect(len(a.axes) > 0, "reduces no axis")  # (an empty axis tensor has no buffer in a flatbuffer)
        expect(all(-len(x.shape) <= ax < len(x.shape) for ax in a.axes), f"axes {a.axes} outside rank {len(x.shape)}")
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        activation_tensor(x, "input")
        activation_tensor(y, "output")

    def forward(self, tf, op, graph, xs):
        return self.tf_reduce(tf)(xs[0], axis=list(op.attrs.axes), keepdims=op.attrs.keep_dims)

    def read_tflite(self, r, op, inputs, outputs):
        axes = r.constant(inputs[1], f"{self.name} axis").reshape(-1)
        keep = bool(r.options(op, "ReducerOptions").KeepDims())
        return self.attrs(tuple(int(a) for a in axes), keep), inputs[:1]

    def write_tflite(self, writer, op):
        axes = writer.constant(f"{op.name}/axes", np.array(op.attrs.axes, np.int32))
        writer.add_op(
            self.name,
            [writer.tensor(op.inputs[0]), axes],
            [writer.tensor(op.outputs[0])],
            writer.options("ReducerOptions", KeepDims=op.attrs.keep_dims),
        )


@dataclass(frozen=True)
class Sum:
    axes: tuple[int, ...]
    keep_dims: bool = True


class MeanOrSumOp(ReduceOp):
    """MEAN and SUM: one kernel (mean_s8), TFLM's arithmetic told apart by `compute_sum`."""

    compute_sum: bool

    def params(self, attrs, ins, outs):
        return mean_or_sum_params(reduced_count(attrs.axes, ins[0].shape), ins, outs, compute_sum=self.compute_sum)

    def reference(self, a, p, ins, in_tensors, outs):
        return mean_or_sum(a, p, ins, in_tensors, outs)

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return Kernel("mean_s16", "mean_s8", {"int16": True})
        return Kernel("mean_s8")

    def lower(self, ctx, kernel):
        return lower_mean_or_sum(ctx)


@register
class SumOp(MeanOrSumOp):
    attrs = Sum
    name = "SUM"
    compute_sum = True
    # TFLM's EvalSum runs QuantizedMeanOrSum on int16 codes too (zero points 0)
    signatures = WITH_INT16

    def tf_reduce(self, tf):
        return tf.reduce_sum


class ExtremumOp(ReduceOp):
    """REDUCE_MAX and REDUCE_MIN: int8 codes compared as they are (TFLM requires the output's
    scale and zero point to be the input's)."""

    output_quant = OutputQuant.INPUT
    maximum: bool

    def check(self, a, ins, outs):
        super().check(a, ins, outs)
        same_quant(ins[0], outs[0], self.name)

    def params(self, attrs, ins, outs):
        return None  # comparisons only: no arithmetic

    def reference(self, a, p, ins, in_tensors, outs):
        axes = tuple(ax + 1 for ax in reduced_axes(a.axes, len(in_tensors[0].shape)))
        reduce = np.max if self.maximum else np.min
        return reduce(ins[0], axis=axes).reshape((ins[0].shape[0],) + outs[0].shape)

    def propagate_range(self, op, ranges):
        return ranges[0]

    def kernel(self, op, graph, fast):
        return Kernel("reduce_max_min_s8")

    def lower(self, ctx, kernel):
        kept, reduced = reduction_loops(ctx.op.attrs.axes, ctx.tensor(0).shape)
        return {
            "maximum": int(self.maximum),
            "kept": kept,
            "reduced": reduced,
            "input": ctx.input(),
            "output": ctx.output(),
        }


@dataclass(frozen=True)
class ReduceMax:
    axes: tuple[int, ...]
    keep_dims: bool = True


@dataclass(frozen=True)
class ReduceMin:
    axes: tuple[int, ...]
    keep_dims: bool = True


@register
class ReduceMaxOp(ExtremumOp):
    attrs = ReduceMax
    name = "REDUCE_MAX"
    maximum = True

    def tf_reduce(self, tf):
        return tf.reduce_max


@register
class ReduceMinOp(ExtremumOp):
    attrs = ReduceMin
    name = "REDUCE_MIN"
    maximum = False

    def tf_reduce(self, tf):
        return tf.reduce_min
