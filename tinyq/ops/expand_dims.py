"""EXPAND_DIMS: a dimension of one inserted; the same bytes under another shape, as RESHAPE.

The output shape says everything (the axis only chose it), so the op is RESHAPE in all
but its name: its output shares the input's buffer (kernel copy_s8, RESHAPE's, copies only
when the plan could not alias them). TFLM's EXPAND_DIMS copies int16 too (16x8): the same view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import Unsupported, register
from tinyq.ops.common import WITH_INT16, count, expect
from tinyq.ops.reshape import ViewOp
from tinyq.ops.strided_copy import check_moved


@dataclass(frozen=True)
class ExpandDims:
    axis: int  # in the output's dimensions (negative counts from the end)


@register
class ExpandDimsOp(ViewOp):
    attrs = ExpandDims
    name = "EXPAND_DIMS"
    signatures = WITH_INT16

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        rank = len(x.shape) + 1
        expect(-rank <= a.axis < rank, f"axis {a.axis} outside a rank-{rank} output")
        axis = a.axis % rank
        shape = x.shape[:axis] + (1,) + x.shape[axis:]
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        check_moved(ins, outs, self.name)

    def read_tflite(self, r, op, inputs, outputs):
        axis = r.constant(inputs[1], "EXPAND_DIMS axis").reshape(-1)
        if axis.size != 1:
            raise Unsupported(f"an axis of {axis.size} values")
        return ExpandDims(int(axis[0])), inputs[:1]

    def write_tflite(self, writer, op):
        axis = writer.constant(f"{op.name}/axis", np.array([op.attrs.axis], np.int32))
        writer.add_op(
            "EXPAND_DIMS",
            [writer.tensor(op.inputs[0]), axis],
            [writer.tensor(op.outputs[0])],
            writer.options("ExpandDimsOptions"),
        )
