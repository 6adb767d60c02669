"""DEPTHWISE_CONV_2D: int8 (or int4-weight) depthwise convolution, TFLM's per-channel requantization.

inputs (x NHWC, weights 1HW(C*M), bias[C*M]); output NHW(C*M). Kernels:
depthwise_conv_s8 (portable reference, any multiplier and dilation) and
depthwise_conv_fast_s8 (one channel plane at a time through an int16 scratch
plane, tap pairs by SMLAD; it may run in place), both also with int4 weights. 16x8:
depthwise_conv_s16 / _s16_b32 (portable) and depthwise_conv_fast_s16 (int64 bias, the
fast template with int16 planes, when the weights keep a window's sum inside int32).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import Activation, Padding2D
from tinyq.ops import InPlace, Unsupported, register
from tinyq.ops.affine import AffineOp, host_kernel, host_lanes, requantize, s16_window_fits_int32, why_not_fast
from tinyq.ops.common import INT16, count, expect
from tinyq.ops.conv import check_window, window_args, write_window_op
from tinyq.ops.window import tf_explicit_pad, windows

MAX_INT4_TAP_PAIRS = 64  # TQ_DW_MAX_PAIRS: the int4 fast kernel unpacks at most this many tap pairs


@dataclass(frozen=True)
class DepthwiseConv2D:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: Padding2D = Padding2D()
    depth_multiplier: int = 1
    activation: Activation = Activation.NONE


def _fast_refusal(op, graph) -> str | None:
    a = op.attrs
    if a.depth_multiplier != 1 or tuple(a.dilation) != (1, 1):
        return "depth multiplier above 1 or dilation"
    if graph[op.inputs[0]].dtype == INT16:
        return None if s16_window_fits_int32(op, graph) else "16x8 sums may leave int32"
    reason = why_not_fast(op, graph, gemm=False)
    if reason is not None:
        return reason
    _, kh, kw, _ = graph[op.inputs[1]].shape
    if graph[op.inputs[1]].dtype == "int4" and kh * -(-kw // 2) > MAX_INT4_TAP_PAIRS:
        return f"int4 kernel larger than {MAX_INT4_TAP_PAIRS} tap pairs"
    return None


@register
class DepthwiseConvOp(AffineOp):
    attrs = DepthwiseConv2D
    name = "DEPTHWISE_CONV_2D"
    weight_axis = 3

    def check(self, a, ins, outs):
        count(ins, outs, 3)
        x, w, b = ins
        expect(len(x.shape) == 4 and len(w.shape) == 4, "input and weights must be 4-D")
        one, kh, kw, o = w.shape
        expect(
            one == 1 and a.depth_multiplier >= 1 and o == x.shape[3] * a.depth_multiplier,
            f"depthwise weights {w.shape} do not match {x.shape[3]} channels x multiplier {a.depth_multiplier}",
        )
        check_window(a, x, (kh, kw), o, outs[0])
        self.check_weights(w, b, o)

    def linear(self, tf, op, graph, x, w):
        a = op.attrs
        _, kh, kw, cm = graph[op.inputs[1]].shape
        c = graph[op.inputs[0]].shape[3]
        # TensorFlow's depthwise convolution takes equal strides only (a Conv1D's are (1, s)):
        # then every window at stride one, and the strided ones kept
        equal = a.stride[0] == a.stride[1]
        y = tf.nn.depthwise_conv2d(
            tf_explicit_pad(tf, x, a.padding),
            tf.reshape(w, (kh, kw, c, cm // c)),
            (1,) + (a.stride if equal else (1, 1)) + (1,),
            "VALID",
            dilations=a.dilation,
        )
        return y if equal else y[:, :: a.stride[0], :: a.stride[1], :]

    def reference(self, a, p, ins, in_tensors, outs):
        x, w, b = ins
        y = outs[0]
        xs = x.reshape((-1,) + in_tensors[0].shape[1:]).astype(np.int64) + p.input_offset
        _, kh, kw, cm = w.shape
        c = xs.shape[3]
        cols = windows(xs, (kh, kw), a.stride, a.dilation, a.padding, y.shape[1:3], 0)
        acc = np.einsum(
            "nyxhwc,hwcm->nyxcm",
            cols.astype(np.float64),
            w.reshape(kh, kw, c, cm // c).astype(np.float64),
            optimize=True,
        )
        acc = np.rint(acc).astype(np.int64).reshape(cols.shape[:3] + (cm,)) + b
        return requantize(acc, p).reshape((x.shape[0],) + y.shape)

    def macs(self, op, graph):
        w = graph[op.inputs[1]]
        return graph[op.outputs[0]].size * w.shape[1] * w.shape[2]

    def kernel(self, op, graph, fast):
        def plane():  # the padded int16 plane of one channel
            (_, kh, kw, _), (_, oh, ow, _) = graph[op.inputs[1]].shape, graph[op.outputs[0]].shape
            return 2 * ((oh - 1) * op.attrs.stride[0] + kh) * ((ow - 1) * op.attrs.stride[1] + kw)

        return self.choose(
            op,
            graph,
            fast,
            "depthwise_conv",
            _fast_refusal(op, graph),
            lambda: {
                "scratch_bytes": plane(),
                "in_place": InPlace.FIRST_INPUT,
                "weight_layout": "tap pairs",
                "template": "depthwise_conv_fast_s8",  # one template; 16x8 renders it with s16
            },
        )

    def host_kernel(self, op, graph):
        """Scratch: a pixel's sums and the input plane padded with its zero point."""
        (_, kh, kw, _), (_, oh, ow, _) = graph[op.inputs[1]].shape, graph[op.outputs[0]].shape
        (sh, sw), (dh, dw) = op.attrs.stride, op.attrs.dilation
        plane = ((oh - 1) * sh + (kh - 1) * dh + 1) * ((ow - 1) * sw + (kw - 1) * dw + 1) * graph[op.inputs[0]].shape[3]
        return host_kernel(op, graph, "depthwise_conv", 4 * host_lanes(op, graph) + 128 + plane)

    def lower(self, ctx, kernel):
        return window_args(ctx, kernel) | {"ch_mult": ctx.op.attrs.depth_multiplier}

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "DepthwiseConv2DOptions")
        x, w = r.tensor(inputs[0]), r.tensor(inputs[1])
        r.need_rank(x, 4, "input")
        r.need_rank(w, 4, "weights")
        if w.shape[3] % x.shape[3]:
            raise Unsupported(f"{w.shape[3]} output channels are not a multiple of {x.shape[3]} inputs")
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        attrs = DepthwiseConv2D(
            stride,
            dilation,
            r.padding(o.Padding(), x.shape[1:3], w.shape[1:3], stride, dilation),
            w.shape[3] // x.shape[3],
            r.activation(o.FusedActivationFunction()),
        )
        return attrs, self.read_bias(r, inputs, w.shape[3])

    def write_tflite(self, writer, op):
        write_window_op(
            writer, op, "DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions", DepthMultiplier=op.attrs.depth_multiplier
        )
