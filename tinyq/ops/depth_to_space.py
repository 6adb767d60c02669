"""DEPTH_TO_SPACE and SPACE_TO_DEPTH (NHWC, TensorFlow's DCR order): blocks of channels become
block x block patches of pixels, and back. Both are a walk over a 6-D view of the output:
DEPTH_TO_SPACE's output [n, h*b + i, w*b + j, c] is the input [n, h, w, (i*b + j)*c' + c],
SPACE_TO_DEPTH's the converse. Kernel: strided_copy_s8."""

from __future__ import annotations

from dataclasses import dataclass

from tinyq.ops import register
from tinyq.ops.common import count, expect
from tinyq.ops.strided_copy import Copy, MovementOp, check_moved, row_major_strides


@dataclass(frozen=True)
class DepthToSpace:
    block_size: int


@dataclass(frozen=True)
class SpaceToDepth:
    block_size: int


def _depth_to_space_shape(shape, b: int):
    n, h, w, c = shape
    return (n, h * b, w * b, c // (b * b)) if c % (b * b) == 0 else None


def _space_to_depth_shape(shape, b: int):
    n, h, w, c = shape
    return (n, h // b, w // b, c * b * b) if h % b == 0 and w % b == 0 else None


class _BlockOp(MovementOp):
    shape_of: staticmethod
    options_table: str

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        expect(len(x.shape) == 4, f"{self.name} takes a 4-D (NHWC) input, not {x.shape}")
        expect(a.block_size > 0, f"block size {a.block_size}")
        shape = self.shape_of(x.shape, a.block_size)
        expect(shape is not None, f"input {x.shape} does not divide into blocks of {a.block_size}")
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        check_moved(ins, outs, self.name)

    def read_tflite(self, r, op, inputs, outputs):
        return self.attrs(int(r.options(op, self.options_table).BlockSize())), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(
            self.name,
            [writer.tensor(op.inputs[0])],
            [writer.tensor(op.outputs[0])],
            writer.options(self.options_table, BlockSize=op.attrs.block_size),
        )


@register
class DepthToSpaceOp(_BlockOp):
    attrs = DepthToSpace
    name = "DEPTH_TO_SPACE"
    shape_of = staticmethod(_depth_to_space_shape)
    options_table = "DepthToSpaceOptions"

    def reference(self, a, p, ins, in_tensors, outs):
        x, b = ins[0], a.block_size
        s, n, h, w, c = x.shape
        x = x.reshape(s, n, h, w, b, b, c // (b * b)).transpose(0, 1, 2, 4, 3, 5, 6)
        return x.reshape((s,) + outs[0].shape)

    def forward(self, tf, op, graph, xs):
        return tf.nn.depth_to_space(xs[0], op.attrs.block_size)

    def copies(self, op, graph):
        n, h, w, c = graph[op.inputs[0]].shape
        b = op.attrs.block_size
        view = (n, h, b, w, b, c // (b * b))  # the output [n, h*b + i, w*b + j, c'] in order
        input_strides = (h * w * c, w * c, b * view[5], c, view[5], 1)
        return [Copy(view, input_strides, tuple(row_major_strides(view)))]


@register
class SpaceToDepthOp(_BlockOp):
    attrs = SpaceToDepth
    name = "SPACE_TO_DEPTH"
    shape_of = staticmethod(_space_to_depth_shape)
    options_table = "SpaceToDepthOptions"

    def reference(self, a, p, ins, in_tensors, outs):
        x, b = ins[0], a.block_size
        s, n, h, w, c = x.shape
        x = x.reshape(s, n, h // b, b, w // b, b, c).transpose(0, 1, 2, 4, 3, 5, 6)
        return x.reshape((s,) + outs[0].shape)

    def forward(self, tf, op, graph, xs):
        return tf.nn.space_to_depth(xs[0], op.attrs.block_size)

    def copies(self, op, graph):
        n, h, w, c = graph[op.inputs[0]].shape
        b = op.attrs.block_size
        view = (n, h // b, w // b, b, b, c)  # the output [n, h', w', (i*b + j)*c + c] in order
        input_strides = (h * w * c, b * w * c, b * c, w * c, c, 1)
        return [Copy(view, input_strides, tuple(row_major_strides(view)))]
