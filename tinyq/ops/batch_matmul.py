"""BATCH_MATMUL: int8 (or int16) matrix products over broadcast batch dimensions, as TFLM computes them.

inputs (lhs [..., M, K], rhs [..., K, N]), with adj_x / adj_y reading the last two
axes of lhs / rhs transposed; either may be a constant. Ranks 2 to 5; the batch
dimensions broadcast (a 1 repeats). Each output element is
sum_k (lhs - zp_lhs)(rhs - zp_rhs) in int32, requantized by one per-tensor
multiplier (lhs scale x rhs scale / output scale, in double) plus the output
zero point, over the whole int8 range (no fused activation). Kernel:
batch_matmul_s8.

int16 (both operands and the output int16 with zero point 0, a constant operand too: the
converter's 16x8 form): TFLM sums the products in int64 and requantizes with the int64
MultiplyByQuantizedMultiplier (multiplier rounded to 16 bits, one rounding shift), over
the whole int16 range. Kernel: batch_matmul_s16 (the same template with int16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import IRError
from tinyq.ops import Kernel, OpDef, Signature, register
from tinyq.ops.affine import exact_matmul
from tinyq.ops.common import FLOAT, INT8, INT16, activation_tensor, clamp_to, count, expect

BATCH_DIMS = 3  # TFLM extends every shape to rank 5: three batch dimensions, then the matrix


@dataclass(frozen=True)
class BatchMatMul:
    adj_x: bool = False  # lhs holds [..., K, M]
    adj_y: bool = False  # rhs holds [..., N, K]


@dataclass(frozen=True)
class BatchMatMulParams:
    lhs_offset: int
    rhs_offset: int
    output_offset: int
    multiplier: int
    shift: int
    dtype: str = INT8  # of both operands and the output; int16 accumulates and requantizes in int64


def matrix_dims(a: BatchMatMul, lhs_shape, rhs_shape) -> tuple[int, int, int, int]:
    """(M, K of lhs, K of rhs, N)."""
    m, k = (lhs_shape[-1], lhs_shape[-2]) if a.adj_x else (lhs_shape[-2], lhs_shape[-1])
    k_rhs, n = (rhs_shape[-1], rhs_shape[-2]) if a.adj_y else (rhs_shape[-2], rhs_shape[-1])
    return m, k, k_rhs, n


def batch_shape(lhs_shape, rhs_shape) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(lhs_shape[:-2], rhs_shape[:-2]))
    except ValueError:
        raise IRError(f"batch dimensions of {lhs_shape} and {rhs_shape} do not broadcast") from None


def batch_strides(shape, batch) -> list[int]:
    """Element strides of an operand's matrices along the output's batch dimensions padded to
    three (0 where the operand repeats: a size-1 or missing dimension)."""
    dims = [1] * (BATCH_DIMS - len(shape[:-2])) + list(shape[:-2])
    out = [1] * (BATCH_DIMS - len(batch)) + list(batch)
    strides, step = [0] * BATCH_DIMS, int(shape[-2] * shape[-1])
    for axis in range(BATCH_DIMS - 1, -1, -1):
        strides[axis] = 0 if dims[axis] == 1 and out[axis] != 1 else step
        step *= dims[axis]
    return strides


@register
class BatchMatMulOp(OpDef):
    attrs = BatchMatMul
    name = "BATCH_MATMUL"
    signatures = (
        Signature((INT8, INT8), (INT8,)),
        Signature((INT16, INT16), (INT16,)),
        Signature((FLOAT, FLOAT), (FLOAT,)),
    )

    def check(self, a, ins, outs):
        count(ins, outs, 2)
        lhs, rhs = ins
        y = outs[0]
        for t, role in ((lhs, "lhs"), (rhs, "rhs")):
            expect(2 <= len(t.shape) <= 5, f"{role} has rank {len(t.shape)} (2 to 5)")
            activation_tensor(t, role)
        m, k, k_rhs, n = matrix_dims(a, lhs.shape, rhs.shape)
        expect(
            k == k_rhs, f"lhs {lhs.shape} and rhs {rhs.shape} do not share a depth (adj_x {a.adj_x}, adj_y {a.adj_y})"
        )
        shape = batch_shape(lhs.shape, rhs.shape) + (m, n)
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        activation_tensor(y, "output")

    def params(self, attrs, ins, outs):
        lhs, rhs = ins
        y = outs[0]
        # GetQuantizedConvolutionMultipler: float32 scales widened to double
        real = float(np.float32(lhs.qparams.s)) * float(np.float32(rhs.qparams.s)) / float(np.float32(y.qparams.s))
        mult, shift = fx.quantize_multiplier(real)
        return BatchMatMulParams(-lhs.qparams.zp, -rhs.qparams.zp, y.qparams.zp, mult, shift, y.dtype)

    def reference(self, a, p, ins, in_tensors, outs):
        y = outs[0]
        rank = len(y.shape)

        def operand(x, t, offset, adjoint):
            x = x[None] if t.is_constant else x
            x = x.astype(np.int64).reshape((x.shape[0],) + (1,) * (rank - len(t.shape)) + t.shape) + offset
            return np.swapaxes(x, -1, -2) if adjoint else x

        lhs = operand(ins[0], in_tensors[0], p.lhs_offset, a.adj_x)
        rhs = operand(ins[1], in_tensors[1], p.rhs_offset, a.adj_y)
        acc = exact_matmul(lhs, rhs)
        if p.dtype == INT16:  # int64 sums, TFLM's int64 requantization (its int32 result wraps)
            out = fx.wrap32(fx.multiply_by_quantized_multiplier_int64(acc, p.multiplier, p.shift))
        else:
            out = fx.multiply_by_quantized_multiplier(fx.wrap32(acc), p.multiplier, p.shift)
        samples = max(lhs.shape[0], rhs.shape[0])
        return clamp_to(np.broadcast_to(out + p.output_offset, (samples,) + y.shape), p.dtype)

    def forward(self, tf, op, graph, xs):
        """Batched activations hold their samples along axis 0 (`samples x` the graph's first
        dimension): each operand gets a sample axis of its own, so that a constant's batch
        dimensions broadcast against the graph's, not against the samples."""
        y = graph[op.outputs[0]]
        rank = len(y.shape)

        def operand(x, name):
            t = graph[name]
            return tf.reshape(x, (1 if t.is_constant else -1,) + (1,) * (rank - len(t.shape)) + t.shape)

        a = op.attrs
        out = tf.linalg.matmul(
            operand(xs[0], op.inputs[0]), operand(xs[1], op.inputs[1]), adjoint_a=a.adj_x, adjoint_b=a.adj_y
        )
        return tf.reshape(out, (-1,) + y.shape[1:])

    def macs(self, op, graph):
        lhs, rhs = graph[op.inputs[0]], graph[op.inputs[1]]
        return graph[op.outputs[0]].size * matrix_dims(op.attrs, lhs.shape, rhs.shape)[1]

    def kernel(self, op, graph, fast):
        int16 = graph[op.inputs[0]].dtype == INT16
        return Kernel(
            "batch_matmul_s16" if int16 else "batch_matmul_s8", "batch_matmul_s8", {"int16": int16}, specialized=True
        )

    def lower(self, ctx, kernel):
        a, p, y = ctx.op.attrs, ctx.params, ctx.out
        lhs, rhs = ctx.tensor(0), ctx.tensor(1)
        m, k, _, n = matrix_dims(a, lhs.shape, rhs.shape)
        batch = [1] * (BATCH_DIMS - (len(y.shape) - 2)) + list(y.shape[:-2])

        return {
            "lhs_offset": p.lhs_offset,
            "rhs_offset": p.rhs_offset,
            "output_offset": p.output_offset,
            "multiplier": p.multiplier,
            "shift": p.shift,
            "batch": batch,
            "lhs_batch_stride": batch_strides(lhs.shape, y.shape[:-2]),
            "rhs_batch_stride": batch_strides(rhs.shape, y.shape[:-2]),
            "rows": m,
            "depth": k,
            "cols": n,
            # element (i, k) of lhs and (k, j) of rhs, either layout
            "lhs_step": [1, m] if a.adj_x else [k, 1],
            "rhs_step": [1, k] if a.adj_y else [n, 1],
            "lhs": ctx.operand(0),
            "rhs": ctx.operand(1),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "BatchMatMulOptions")
        return BatchMatMul(bool(o.AdjX()), bool(o.AdjY())), inputs[:2]

    def write_tflite(self, writer, op):
        a = op.attrs
        writer.add_op(
            "BATCH_MATMUL",
            [writer.tensor(n) for n in op.inputs],
            [writer.tensor(op.outputs[0])],
            writer.options("BatchMatMulOptions", AdjX=a.adj_x, AdjY=a.adj_y),
        )
