"""GATHER: slices of the input picked along an axis by int32 indices (constant, or an input),
with TFLite's batch_dims. The output shares the input's quantization; an index outside the
axis is an error, as in TFLM (which returns kTfLiteError). Kernel: gather_s8.

int8 only: the pinned TFLM's GATHER refuses int16 params in Prepare."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.errors import TinyqError
from tinyq.ops import Kernel, OpDef, OutputQuant, Signature, register
from tinyq.ops.common import FLOAT, INT8, count, expect, index_tensor
from tinyq.ops.strided_copy import batched, check_moved, check_ranks, forward_on_samples, samples_of

INT32 = "int32"


@dataclass(frozen=True)
class Gather:
    axis: int = 0
    batch_dims: int = 0


@dataclass(frozen=True)
class GatherLayout:
    """The input as [batch, outer, axis, inner] and the indices as [batch, coords]."""

    batch: int
    outer: int
    axis_size: int
    coords: int
    inner: int


def _resolved(a: Gather, rank: int, index_rank: int) -> tuple[int, int]:
    axis = a.axis + rank if a.axis < 0 else a.axis
    batch_dims = a.batch_dims + index_rank if a.batch_dims < 0 else a.batch_dims
    return axis, batch_dims


def _size(dims) -> int:
    return int(np.prod(dims, dtype=np.int64))


def layout(a: Gather, shape, index_shape) -> GatherLayout:
    axis, batch_dims = _resolved(a, len(shape), len(index_shape))
    return GatherLayout(
        _size(shape[:batch_dims]),
        _size(shape[batch_dims:axis]),
        int(shape[axis]),
        _size(index_shape[batch_dims:]),
        _size(shape[axis + 1 :]),
    )


@register
class GatherOp(OpDef):
    attrs = Gather
    name = "GATHER"
    signatures = (Signature((INT8, INT32), (INT8,)), Signature((FLOAT, INT32), (FLOAT,)))
    output_quant = OutputQuant.INPUT

    def check(self, a, ins, outs):
        count(ins, outs, 2)
        x, indices, y = ins[0], ins[1], outs[0]
        rank, index_rank = len(x.shape), len(indices.shape)
        axis, batch_dims = _resolved(a, rank, index_rank)
        # TFLM's GatherPrepare
        expect(0 <= axis < rank, f"axis {a.axis} outside a rank-{rank} input")
        expect(0 <= batch_dims <= axis and batch_dims <= index_rank, f"batch_dims {a.batch_dims} with axis {a.axis}")
        expect(x.shape[:batch_dims] == indices.shape[:batch_dims], "batch dimensions of input and indices differ")
        shape = x.shape[:axis] + indices.shape[batch_dims:] + x.shape[axis + 1 :]
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        index_tensor(indices, "indices")
        check_moved(ins[:1], outs, self.name)

    def params(self, attrs, ins, outs):
        return None  # data movement: no arithmetic

    def reference(self, a, p, ins, in_tensors, outs):
        x_t, i_t = in_tensors
        g = layout(a, x_t.shape, i_t.shape)
        samples = samples_of(ins, in_tensors)
        x = batched(ins[0], x_t, samples).reshape(samples, g.batch, g.outer, g.axis_size, g.inner)
        idx = batched(ins[1], i_t, samples).reshape(samples, g.batch, 1, g.coords).astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= g.axis_size):
            raise TinyqError(f"GATHER index outside [0, {g.axis_size}) (TFLM fails the same way)")
        s = np.arange(samples)[:, None, None, None]
        b = np.arange(g.batch)[None, :, None, None]
        o = np.arange(g.outer)[None, None, :, None]
        return x[s, b, o, idx].reshape((samples,) + outs[0].shape)  # [samples, batch, outer, coords, inner]

    def forward(self, tf, op, graph, xs):
        x_t, i_t = graph[op.inputs[0]], graph[op.inputs[1]]
        axis, batch_dims = _resolved(op.attrs, len(x_t.shape), len(i_t.shape))

        def gather(views):
            """Both operands given the sample axis (constants repeated), one more batch dimension."""
            x, indices = views[0], tf.cast(views[1], tf.int32)
            if x_t.is_constant:
                x = tf.broadcast_to(x[None], tf.concat([tf.shape(indices)[:1], x_t.shape], 0))
            if i_t.is_constant:
                indices = tf.broadcast_to(indices[None], tf.concat([tf.shape(x)[:1], i_t.shape], 0))
            return tf.gather(x, indices, axis=axis + 1, batch_dims=batch_dims + 1)

        return forward_on_samples(tf, op, graph, xs, gather)

    def propagate_range(self, op, ranges):
        return ranges[0]

    def quantize(self, op, graph, context):
        """A constant table is quantized like an activation; constant indices stay int32."""
        table, indices = (graph[n] for n in op.inputs)
        if table.is_constant:
            context.constant_as_activation(table.name)
        if indices.is_constant:
            context.set(indices)
        return [op]

    def kernel(self, op, graph, fast):
        return Kernel("gather_s8")

    def lower(self, ctx, kernel):
        check_ranks(ctx)
        g = layout(ctx.op.attrs, ctx.tensor(0).shape, ctx.tensor(1).shape)
        return {
            "batch": g.batch,
            "outer": g.outer,
            "axis_size": g.axis_size,
            "coords": g.coords,
            "inner": g.inner,
            "input": ctx.operand(0),
            "indices": ctx.operand(1),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "GatherOptions")
        return Gather(int(o.Axis()), int(o.BatchDims())), inputs[:2]

    def write_tflite(self, writer, op):
        a = op.attrs
        writer.add_op(
            "GATHER",
            [writer.tensor(n) for n in op.inputs],
            [writer.tensor(op.outputs[0])],
            writer.options("GatherOptions", Axis=a.axis, BatchDims=a.batch_dims),
        )
