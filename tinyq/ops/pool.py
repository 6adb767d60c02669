"""AVERAGE_POOL_2D and MAX_POOL_2D over int8 or int16 NHWC, as TFLM computes them (padded cells
do not count; the average rounds half away from zero). The output shares the input's quantization.

int16 (16x8) is TFLM's same arithmetic on int16 codes: the window sum in int32, the rounded
division by the count of valid cells, the clamp to the fused activation's int16 range; the max
starts from -32768.

Kernels: avgpool_s8 and maxpool_s8 (portable; with `int16`, avgpool_s16 and maxpool_s16 from
the same templates), avgpool_fast_s8 (int8 only: four channels at a time, windows of at most
256 cells).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.errors import TinyqError
from tinyq.ir import Activation, Padding2D
from tinyq.ops import Kernel, OpDef, OutputQuant, register
from tinyq.ops.common import (
    INT16,
    WITH_INT16,
    activate,
    activation_range,
    activation_tensor,
    c_div,
    clamp_to,
    count,
    dims4,
    expect,
    same_quant,
)
from tinyq.ops.window import nonnegative, out_size, padding_mode, windows

FAST_MAX_WINDOW = 256


@dataclass(frozen=True)
class Pool2D:
    filter: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: Padding2D = Padding2D()
    activation: Activation = Activation.NONE


class AveragePool2D(Pool2D):
    """AVERAGE_POOL_2D's attrs."""


class MaxPool2D(Pool2D):
    """MAX_POOL_2D's attrs."""


@dataclass(frozen=True)
class PoolParams:
    act_min: int
    act_max: int


def _mode(op, graph, with_output: bool) -> str:
    a, x, y = op.attrs, graph[op.inputs[0]], graph[op.outputs[0]]
    mode = padding_mode(a.padding, x.shape[1:3], a.filter, a.stride, (1, 1), y.shape[1:3] if with_output else None)
    if mode is None:
        raise TinyqError(f"{op.name}: pooling padding {a.padding} is neither SAME nor VALID")
    return mode


class PoolOp(OpDef):
    signatures = WITH_INT16
    output_quant = OutputQuant.INPUT

    def tf_pool(self, tf):
        raise NotImplementedError

    def pool(self, tf, op, graph, x):
        """The pooling in TensorFlow, without the fused activation (QAT averages integer codes)."""
        return self.tf_pool(tf)(x, op.attrs.filter, op.attrs.stride, _mode(op, graph, with_output=False))

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        expect(len(x.shape) == 4, "input must be 4-D NHWC")
        expect(nonnegative(a.padding), "negative padding")
        n, h, w, c = x.shape
        oh = out_size(h, a.filter[0], a.stride[0], 1, a.padding.top, a.padding.bottom)
        ow = out_size(w, a.filter[1], a.stride[1], 1, a.padding.left, a.padding.right)
        expect(y.shape == (n, oh, ow, c), f"output shape {y.shape}, expected {(n, oh, ow, c)}")
        activation_tensor(x, "input")
        same_quant(x, y, "pooling")

    def params(self, attrs, ins, outs):
        return PoolParams(*activation_range(attrs.activation, outs[0]))

    def forward(self, tf, op, graph, xs):
        return activate(tf, self.pool(tf, op, graph, xs[0]), op.attrs.activation)

    def propagate_range(self, op, ranges):
        return ranges[0]

    def pool_windows(self, a, x, in_tensor, out_tensor, pad_value):
        xs = x.reshape((-1,) + in_tensor.shape[1:]).astype(np.int64)
        return windows(xs, a.filter, a.stride, (1, 1), a.padding, out_tensor.shape[1:3], pad_value)

    def lower(self, ctx, kernel):
        a, p = ctx.op.attrs, ctx.params
        return {
            "stride": list(a.stride),
            "padding": [a.padding.top, a.padding.left],
            "act": [p.act_min, p.act_max],
            "input_dims": dims4(ctx.tensor(0).shape),
            "filter_dims": [1, a.filter[0], a.filter[1], 1],
            "output_dims": dims4(ctx.out.shape),
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "Pool2DOptions")
        x = r.tensor(inputs[0])
        r.need_rank(x, 4, "input")
        kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        pad = r.padding(o.Padding(), x.shape[1:3], kernel, stride, (1, 1))
        return self.attrs(kernel, stride, pad, r.activation(o.FusedActivationFunction())), inputs[:1]

    def write_tflite(self, writer, op):
        a = op.attrs
        writer.add_op(
            self.name,
            [writer.tensor(op.inputs[0])],
            [writer.tensor(op.outputs[0])],
            writer.options(
                "Pool2DOptions",
                Padding=writer.padding_code(_mode(op, writer.graph, with_output=True)),
                StrideH=a.stride[0],
                StrideW=a.stride[1],
                FilterHeight=a.filter[0],
                FilterWidth=a.filter[1],
                FusedActivationFunction=writer.activation_code(a.activation),
            ),
        )


@register
class AveragePoolOp(PoolOp):
    attrs = AveragePool2D
    name = "AVERAGE_POOL_2D"

    def tf_pool(self, tf):
        return tf.nn.avg_pool2d

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0]
        sums = self.pool_windows(a, x, in_tensors[0], outs[0], 0).sum(axis=(3, 4))
        valid = np.ones((1,) + in_tensors[0].shape[1:3] + (1,), np.int64)
        counts = windows(valid, a.filter, a.stride, (1, 1), a.padding, outs[0].shape[1:3], 0).sum(axis=(3, 4))
        half = counts // 2
        avg = np.where(sums > 0, c_div(sums + half, counts), c_div(sums - half, counts))
        return clamp_to(avg, outs[0].dtype, p.act_min, p.act_max).reshape((x.shape[0],) + outs[0].shape)

    def kernel(self, op, graph, fast):
        a = op.attrs
        if graph[op.inputs[0]].dtype == INT16:
            # the fast kernel packs four int8 channels a word: int16 takes the portable one
            return Kernel(
                "avgpool_s16",
                "avgpool_s8",
                {"int16": True},
                specialized=True,
                reference_because="int16 activations (the fast average pool is int8 only)" if fast else None,
            )
        if fast and graph[op.inputs[0]].shape[3] % 4 == 0 and a.filter[0] * a.filter[1] <= FAST_MAX_WINDOW:
            return Kernel("avgpool_fast_s8", specialized=True)
        return Kernel(
            "avgpool_s8",
            specialized=True,
            reference_because=(
                f"channels not a multiple of 4, or a window above {FAST_MAX_WINDOW} cells" if fast else None
            ),
        )


@register
class MaxPoolOp(PoolOp):
    attrs = MaxPool2D
    name = "MAX_POOL_2D"

    def tf_pool(self, tf):
        return tf.nn.max_pool2d

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0]
        m = self.pool_windows(a, x, in_tensors[0], outs[0], -(1 << 20)).max(axis=(3, 4))
        return clamp_to(m, outs[0].dtype, p.act_min, p.act_max).reshape((x.shape[0],) + outs[0].shape)

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return Kernel("maxpool_s16", "maxpool_s8", {"int16": True}, specialized=True)
        return Kernel("maxpool_s8", specialized=True)
