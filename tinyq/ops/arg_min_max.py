"""ARG_MAX and ARG_MIN along one axis: int8 codes compared as they are (the quantization is
monotonic), int32 indices out. TFLM keeps the first index on ties (it replaces the candidate
only on a strict > or <) and implements only int32 outputs: an int64 output_type (TensorFlow's
default) is refused. Kernel: arg_min_max_s8 (the tensor as outer x axis x inner)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tflite.TensorType import TensorType

from tinyq.ops import Kernel, OpDef, Signature, Unsupported, register
from tinyq.ops.common import INT8, activation_tensor, count, expect, index_tensor

INT32 = "int32"
_TFLITE_INDEX_TYPES = {TensorType.INT32: "int32", TensorType.INT64: "int64"}


@dataclass(frozen=True)
class ArgMax:
    axis: int
    output_type: str = INT32


@dataclass(frozen=True)
class ArgMin:
    axis: int
    output_type: str = INT32


class ArgMinMaxOp(OpDef):
    signatures = (Signature((INT8,), (INT32,)),)
    options_table: str
    maximum: bool

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        rank = len(x.shape)
        expect(-rank <= a.axis < rank, f"axis {a.axis} outside rank {rank}")
        axis = a.axis % rank
        shape = x.shape[:axis] + x.shape[axis + 1 :]
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        expect(y.dtype == a.output_type, f"output is {y.dtype} but output_type is {a.output_type}")
        activation_tensor(x, "input")
        index_tensor(y, "output")

    def params(self, attrs, ins, outs):
        return None  # comparisons only: no arithmetic

    def reference(self, a, p, ins, in_tensors, outs):
        axis = a.axis % len(in_tensors[0].shape) + 1
        pick = np.argmax if self.maximum else np.argmin  # the first index of the extremum, as TFLM's
        return pick(ins[0], axis=axis).astype(np.int32)

    def kernel(self, op, graph, fast):
        return Kernel("arg_min_max_s8")

    def lower(self, ctx, kernel):
        x = ctx.tensor(0)
        axis = ctx.op.attrs.axis % len(x.shape)
        return {
            "maximum": int(self.maximum),
            "outer": int(np.prod(x.shape[:axis], dtype=np.int64)),
            "axis_size": x.shape[axis],
            "inner": int(np.prod(x.shape[axis + 1 :], dtype=np.int64)),
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        axis = r.constant(inputs[1], f"{self.name} axis").reshape(-1)
        if axis.size != 1:
            raise Unsupported(f"{axis.size} axes (one is taken)")
        code = r.options(op, self.options_table).OutputType()
        if code not in _TFLITE_INDEX_TYPES:
            raise Unsupported(f"output type code {code}")
        return self.attrs(int(axis[0]), _TFLITE_INDEX_TYPES[code]), inputs[:1]

    def write_tflite(self, writer, op):
        codes = {name: code for code, name in _TFLITE_INDEX_TYPES.items()}
        axis = writer.constant(f"{op.name}/axis", np.array([op.attrs.axis], np.int32))
        writer.add_op(
            self.name,
            [writer.tensor(op.inputs[0]), axis],
            [writer.tensor(op.outputs[0])],
            writer.options(self.options_table, OutputType=codes[op.attrs.output_type]),
        )


@register
class ArgMaxOp(ArgMinMaxOp):
    attrs = ArgMax
    name = "ARG_MAX"
    options_table = "ArgMaxOptions"
    maximum = True


@register
class ArgMinOp(ArgMinMaxOp):
    attrs = ArgMin
    name = "ARG_MIN"
    options_table = "ArgMinOptions"
    maximum = False
