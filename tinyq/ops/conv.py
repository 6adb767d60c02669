"""CONV_2D: int8 (or int4-weight) convolution with TFLM's per-channel requantization.

inputs (x NHWC, weights OHWI, bias[O]); output NHWC. Kernels: convolve_s8
(portable reference) and convolve_fast_s8 (register-blocked GEMM over an
im2col column, SMLAD on the DSP path), both also with int4 weights (`_s4`). 16x8:
convolve_s16 / convolve_s16_b32 (portable, int64 or int32 bias) and convolve_fast_s16
(int64 bias; the same GEMM over int16 columns, sums into int64 every 256 k).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import Activation, Padding2D
from tinyq.ops import Unsupported, register
from tinyq.ops.affine import (
    HOST_PIXELS,
    AffineOp,
    affine_tables,
    exact_matmul,
    host_kernel,
    host_lanes,
    requantize,
    round_up,
    why_not_fast,
)
from tinyq.ops.common import INT16, activation_tensor, count, dims4, expect
from tinyq.ops.window import nonnegative, out_size, padding_mode, tf_explicit_pad, windows


@dataclass(frozen=True)
class Conv2D:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: Padding2D = Padding2D()
    activation: Activation = Activation.NONE


def check_window(a, x, w_hw, channels, y) -> None:
    """Convolution geometry shared with DEPTHWISE_CONV_2D."""
    expect(nonnegative(a.padding), "negative padding")
    expect(min(a.stride + a.dilation) >= 1, "stride and dilation must be >= 1")
    n, h, wd, _ = x.shape
    oh = out_size(h, w_hw[0], a.stride[0], a.dilation[0], a.padding.top, a.padding.bottom)
    ow = out_size(wd, w_hw[1], a.stride[1], a.dilation[1], a.padding.left, a.padding.right)
    expect(y.shape == (n, oh, ow, channels), f"output shape {y.shape}, expected {(n, oh, ow, channels)}")
    activation_tensor(x, "input")
    activation_tensor(y, "output")


def write_window_op(writer, op, name: str, options: str, **fields) -> None:
    """Write a convolution, with a PAD in front when its padding is neither SAME nor VALID."""
    a, g = op.attrs, writer.graph
    x, y = g[op.inputs[0]], g[op.outputs[0]]
    kernel = g[op.inputs[1]].shape[1:3]
    mode = padding_mode(a.padding, x.shape[1:3], kernel, a.stride, a.dilation, y.shape[1:3])
    if mode is None:
        p = a.padding
        pads = np.array([[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]], np.int32)
        shape = (x.shape[0], x.shape[1] + p.top + p.bottom, x.shape[2] + p.left + p.right, x.shape[3])
        x_index, mode = writer.intermediate(f"{op.name}/explicit_pad", shape, x.dtype, x.qparams), "VALID"
        writer.add_op(
            "PAD",
            [writer.tensor(op.inputs[0]), writer.constant(f"{op.name}/paddings", pads)],
            [x_index],
            writer.options("PadOptions"),
        )
    else:
        x_index = writer.tensor(op.inputs[0])
    writer.add_op(
        name,
        [x_index, writer.tensor(op.inputs[1]), writer.tensor(op.inputs[2])],
        [writer.tensor(op.outputs[0])],
        writer.options(
            options,
            **fields,
            Padding=writer.padding_code(mode),
            StrideH=a.stride[0],
            StrideW=a.stride[1],
            FusedActivationFunction=writer.activation_code(a.activation),
            DilationHFactor=a.dilation[0],
            DilationWFactor=a.dilation[1],
        ),
    )


def window_args(ctx, kernel) -> dict:
    """The template values of a convolution (CONV_2D, DEPTHWISE_CONV_2D)."""
    a = ctx.op.attrs
    x, w, b, y = ctx.tensor(0), ctx.tensor(1), ctx.tensor(2), ctx.out
    return affine_tables(ctx, kernel) | {
        "stride": list(a.stride),
        "padding": [a.padding.top, a.padding.left],
        "dilation": list(a.dilation),
        "input_dims": dims4(x.shape),
        "filter_dims": dims4(w.shape),
        "bias_dims": [1, 1, 1, b.shape[0]],
        "output_dims": dims4(y.shape),
        "input": ctx.input(),
        "output": ctx.output(),
    }


def conv_overlap_lead(op, graph) -> int:
    """How many bytes before its (dying) input the fast kernel's output must start so it never
    writes over input it has yet to read: max over its steps of (output bytes written so far -
    first input byte still needed). A step gathers pixels (pa, pa + 1) before writing either."""
    x, y = graph[op.inputs[0]], graph[op.outputs[0]]
    n, h, w, ci = x.shape
    _, oh, ow, co = y.shape
    (sh, sw), pad = op.attrs.stride, op.attrs.padding
    pixel = np.arange(n * oh * ow)
    b, oy, ox = pixel // (oh * ow), pixel % (oh * ow) // ow, pixel % ow
    first_row, first_col = np.maximum(oy * sh - pad.top, 0), np.maximum(ox * sw - pad.left, 0)
    first = np.minimum(((b * h + first_row) * w + first_col) * ci, x.size)
    steps = np.arange(0, len(pixel), 2)
    later = np.append(np.minimum.accumulate(first[::-1])[::-1], x.size)
    written = np.minimum(steps + 2, len(pixel)) * co
    needed = later[np.minimum(steps + 2, len(pixel))]
    return int((written - needed).max()) * (x.nbytes // x.size)  # elements -> bytes (input and output share the dtype)


def conv_scratch_bytes(op, graph, int4: bool) -> int:
    """Twin of tq_convolve_fast_s8/s4/s16_get_buffer_size: the widened im2col columns."""
    k = int(np.prod(graph[op.inputs[1]].shape[1:]))
    if graph[op.inputs[0]].dtype == INT16:
        k4 = round_up(k, 4)
        return 4 * k4 + (2 * k4 if graph[op.inputs[0]].shape[3] % 2 else 0)
    if int4:
        return 5 * round_up(k, 8)
    k4 = round_up(k, 4)
    return 4 * k4 + (k4 if graph[op.inputs[0]].shape[3] % 4 else 0)


@register
class ConvOp(AffineOp):
    attrs = Conv2D
    name = "CONV_2D"

    def check(self, a, ins, outs):
        count(ins, outs, 3)
        x, w, b = ins
        expect(len(x.shape) == 4 and len(w.shape) == 4, "input and weights must be 4-D")
        o, kh, kw, ci = w.shape
        expect(ci == x.shape[3], f"weights expect {ci} input channels, input has {x.shape[3]}")
        check_window(a, x, (kh, kw), o, outs[0])
        self.check_weights(w, b, o)

    def linear(self, tf, op, graph, x, w):
        a = op.attrs
        return tf.nn.conv2d(
            tf_explicit_pad(tf, x, a.padding),
            tf.transpose(w, (1, 2, 3, 0)),
            (1,) + a.stride + (1,),
            "VALID",
            dilations=(1,) + a.dilation + (1,),
        )

    def reference(self, a, p, ins, in_tensors, outs):
        x, w, b = ins
        y = outs[0]
        # the columns in float64 straight away (exact integers): the matmul's operand without a copy
        xs = x.reshape((-1,) + in_tensors[0].shape[1:]).astype(np.float64) + p.input_offset
        o, kh, kw, c = w.shape
        cols = windows(xs, (kh, kw), a.stride, a.dilation, a.padding, y.shape[1:3], 0)
        n, oh, ow = cols.shape[:3]
        acc = exact_matmul(cols.reshape(n * oh * ow, kh * kw * c), w.reshape(o, -1).T) + b
        return requantize(acc, p).reshape((x.shape[0],) + y.shape)

    def macs(self, op, graph):
        return graph[op.outputs[0]].size * int(np.prod(graph[op.inputs[1]].shape[1:]))

    def kernel(self, op, graph, fast):
        int4 = graph[op.inputs[1]].dtype == "int4"
        int16 = graph[op.inputs[0]].dtype == INT16  # sums go to int64 every 256 k: always exact
        return self.choose(
            op,
            graph,
            fast,
            "convolve",
            None if int16 else why_not_fast(op, graph, gemm=True),
            lambda: {
                "scratch_bytes": conv_scratch_bytes(op, graph, int4),
                "overlap_lead": conv_overlap_lead(op, graph),
                "weight_layout": "interleaved k pairs" if int16 else "interleaved",
                "rows_per_block": 2,
            },
        )

    def host_kernel(self, op, graph):
        """Twin of tq_convolve_host_s8_get_buffer_size: padded bias, a round's sums, the padded
        input plane with room past it. Dilated columns are the portable kernel's."""
        a = op.attrs
        if a.dilation[1] != 1:
            return None
        _, kh, kw, c = graph[op.inputs[1]].shape
        _, oh, ow, _ = graph[op.outputs[0]].shape
        plane = ((oh - 1) * a.stride[0] + (kh - 1) * a.dilation[0] + 1) * ((ow - 1) * a.stride[1] + kw) * c
        lanes, pixel_bytes, quads = host_lanes(op, graph), a.stride[1] * c, round_up(kw * c, 4) // 4
        scratch = 4 * lanes + HOST_PIXELS * (4 * lanes + kh * 4 * quads + pixel_bytes) + plane + 4 * quads + 336
        return host_kernel(op, graph, "convolve", scratch, "host quads")

    def lower(self, ctx, kernel):
        return window_args(ctx, kernel)

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "Conv2DOptions")
        x, w = r.tensor(inputs[0]), r.tensor(inputs[1])
        r.need_rank(x, 4, "input")
        r.need_rank(w, 4, "weights")
        if w.shape[3] != x.shape[3]:
            raise Unsupported(f"grouped convolution ({x.shape[3]} input channels, filter depth {w.shape[3]})")
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        attrs = Conv2D(
            stride,
            dilation,
            r.padding(o.Padding(), x.shape[1:3], w.shape[1:3], stride, dilation),
            r.activation(o.FusedActivationFunction()),
        )
        return attrs, self.read_bias(r, inputs, w.shape[0])

    def write_tflite(self, writer, op):
        write_window_op(writer, op, "CONV_2D", "Conv2DOptions")
