"""TRANSPOSE_CONV: int8 (or 16x8) transposed convolution with TFLM's per-channel requantization.

inputs (x NHWC, weights OHWI, bias[O]); output NHWC, its size given by the
output tensor (TFLite's output_shape input, a constant, becomes that shape).
TFLM scatters every input pixel times the kernel into an int32 buffer of the
output's size (positions outside the output are skipped), then adds the bias
and requantizes each element like CONV_2D (int32 sums wrap, so their order
does not matter). The padding is the one of the forward convolution (output
-> input): TFLite's SAME or VALID, made explicit at import from the output
size; the kernels use only its leading (top, left) part, as TFLM does.
Kernel: transpose_conv_s8 (portable; the int32 buffer is its scratch).

16x8 (int16 activations, zero point 0, int8 weights): TFLM's scratch buffer is int64
whatever the bias, the bias is read as int64 (an int32 one would be misread, so that
signature is refused; an absent one is the importer's int64 zeros), and each sum
requantizes with the int64 MultiplyByQuantizedMultiplier (multiplier rounded to 16 bits,
one rounding shift), then clamps to the fused activation's int16 range. Kernel:
transpose_conv_s16 (the same template with int16; its scratch is 8 bytes an element).

Not an AffineOp: the passes that walk affine ops (cross-layer equalization,
bias correction, QAT) know weights only as CONV_2D's, DEPTHWISE_CONV_2D's and
FULLY_CONNECTED's, and would misread these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import Activation, Padding2D, QParams, Tensor
from tinyq.ops import InPlace, Kernel, OpDef, Signature, Unsupported, register
from tinyq.ops.affine import (
    AffineOp,
    channel_multipliers,
    exact_matmul,
    plain_requant_tables,
    quantized_bias,
    requantize,
)
from tinyq.ops.common import FLOAT, INT8, INT16, activate, activation_range, activation_tensor, count, dims4, expect
from tinyq.ops.window import nonnegative, out_size, padding_mode


@dataclass(frozen=True)
class TransposeConv2D:
    stride: tuple[int, int] = (1, 1)
    padding: Padding2D = Padding2D()  # of the forward convolution, output -> input
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class TransposeConvParams:
    """One multiplier per output channel, as CONV_2D's; `pad` is the leading (top, left)
    padding, where the scatter of input pixel (0, 0) starts (at minus it)."""

    input_offset: int
    output_offset: int
    multiplier: tuple[int, ...]
    shift: tuple[int, ...]
    act_min: int
    act_max: int
    pad: tuple[int, int]
    out_dtype: str = INT8
    acc64: bool = False  # 16x8: int64 accumulators, bias and requantization (read by affine.requantize)


def in_bounds_taps(in_size: int, kernel: int, stride: int, pad: int, out_len: int) -> int:
    """How many (input position, kernel tap) pairs land inside the output along one axis."""
    positions = np.arange(in_size)[:, None] * stride - pad + np.arange(kernel)[None, :]
    return int(((positions >= 0) & (positions < out_len)).sum())


@register
class TransposeConvOp(OpDef):
    attrs = TransposeConv2D
    name = "TRANSPOSE_CONV"
    signatures = (
        Signature((INT8, INT8, "int32"), (INT8,)),
        Signature((INT16, INT8, "int64"), (INT16,)),
        Signature((FLOAT, FLOAT, FLOAT), (FLOAT,)),
    )
    weight_axis = 0  # read by the quantizer's weight quantization (tinyq.quant.convert.quantize_weights)

    def check(self, a, ins, outs):
        count(ins, outs, 3)
        x, w, b = ins
        y = outs[0]
        expect(len(x.shape) == 4 and len(w.shape) == 4 and len(y.shape) == 4, "input, weights and output must be 4-D")
        expect(nonnegative(a.padding), "negative padding")
        expect(min(a.stride) >= 1, "stride must be >= 1")
        o, kh, kw, ci = w.shape
        expect(ci == x.shape[3], f"weights expect {ci} input channels, input has {x.shape[3]}")
        expect(y.shape[0] == x.shape[0] and y.shape[3] == o, f"output shape {y.shape} does not fit {o} channels")
        p, (sh, sw) = a.padding, a.stride
        # the forward convolution of the output must give the input's size
        hw = (out_size(y.shape[1], kh, sh, 1, p.top, p.bottom), out_size(y.shape[2], kw, sw, 1, p.left, p.right))
        expect(
            hw == x.shape[1:3], f"output {y.shape[1:3]} with {p}, stride {a.stride} does not give input {x.shape[1:3]}"
        )
        activation_tensor(x, "input")
        activation_tensor(y, "output")
        AffineOp.check_weights(self, w, b, o)  # symmetric weights, per channel on axis 0 (self.weight_axis)

    def params(self, attrs, ins, outs) -> TransposeConvParams:
        x, w, _ = ins
        y = outs[0]
        pairs = channel_multipliers(x, w, y, w.shape[0])
        # the pinned TFLM clamps to the fused activation (sources before it passed kTfLiteActNone)
        lo, hi = activation_range(attrs.activation, y)
        return TransposeConvParams(
            -x.qparams.zp,
            y.qparams.zp,
            tuple(m for m, _ in pairs),
            tuple(s for _, s in pairs),
            lo,
            hi,
            (attrs.padding.top, attrs.padding.left),
            y.dtype,
            x.dtype == INT16,
        )

    def reference(self, a, p, ins, in_tensors, outs):
        x, w, b = ins
        y = outs[0]
        xs = x.reshape((-1,) + in_tensors[0].shape[1:]).astype(np.int64) + p.input_offset
        n, h, wd, c = xs.shape
        o, kh, kw, _ = w.shape
        _, oh, ow, _ = y.shape
        (sh, sw), (ph, pw) = a.stride, p.pad
        # input pixel (iy, ix) tap (ky, kx) lands on row iy*sh + ky - ph: accumulate over the
        # whole scatter (and at least the output window), then keep the output window
        rows, cols = max((h - 1) * sh + kh, ph + oh), max((wd - 1) * sw + kw, pw + ow)
        acc = np.zeros((n, rows, cols, o), np.int64)
        flat = xs.reshape(n * h * wd, c)
        for ky in range(kh):
            for kx in range(kw):
                taps = exact_matmul(flat, w[:, ky, kx, :].T).reshape(n, h, wd, o)
                acc[:, ky : ky + (h - 1) * sh + 1 : sh, kx : kx + (wd - 1) * sw + 1 : sw] += taps
        acc = acc[:, ph : ph + oh, pw : pw + ow] + b.astype(np.int64)
        return requantize(acc, p).reshape((x.shape[0],) + y.shape)

    def forward(self, tf, op, graph, xs):
        x, w, b = xs
        a, y = op.attrs, graph[op.outputs[0]]
        kernel = graph[op.inputs[1]].shape[1:3]
        mode = padding_mode(a.padding, y.shape[1:3], kernel, a.stride, out_hw=graph[op.inputs[0]].shape[1:3])
        p = a.padding
        padding = mode or [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]]
        shape = tf.stack([tf.shape(x)[0], *y.shape[1:]])
        out = tf.nn.conv2d_transpose(x, tf.transpose(w, (1, 2, 0, 3)), shape, (1, *a.stride, 1), padding)
        return activate(tf, out + b, a.activation)

    def macs(self, op, graph):
        """The products TFLM accumulates: those that land inside the output."""
        a, x, w, y = op.attrs, graph[op.inputs[0]], graph[op.inputs[1]], graph[op.outputs[0]]
        rows = in_bounds_taps(x.shape[1], w.shape[1], a.stride[0], a.padding.top, y.shape[1])
        cols = in_bounds_taps(x.shape[2], w.shape[2], a.stride[1], a.padding.left, y.shape[2])
        return x.shape[0] * rows * cols * x.shape[3] * w.shape[0]

    def quantize(self, op, graph, context):
        """Symmetric int8 weights (per channel on axis 0 when the config says so), the bias in
        int32 at input scale x weight scale, as CONV_2D's (int64 after an int16 input: 16x8)."""
        from tinyq.quant.convert import quantize_weights  # the quantizer imports the ops: import late

        wq = context.weights.get(op.name) or quantize_weights(op, graph, context.config, "minmax")
        w, b = graph[op.inputs[1]], graph[op.inputs[2]]
        per_channel = wq.axis is not None
        wparams = QParams.per_channel(wq.scales, wq.axis) if per_channel else QParams.per_tensor(float(wq.scales[0]))
        context.set(Tensor(w.name, w.shape, INT8, wparams, wq.values.astype(np.int8)))
        context.set(quantized_bias(b, context, op.inputs[0], wq))
        return [op]

    def kernel(self, op, graph, fast):
        # scratch: the int32 (16x8: int64) accumulators of the whole output (TFLM's scratch
        # buffer). The input is read in full before the first output byte is written, so the
        # output may take the input's place.
        int16 = graph[op.inputs[0]].dtype == INT16
        return Kernel(
            "transpose_conv_s16" if int16 else "transpose_conv_s8",
            "transpose_conv_s8",
            {"int16": int16},
            scratch_bytes=(8 if int16 else 4) * graph[op.outputs[0]].size,
            in_place=InPlace.FIRST_INPUT,
            specialized=True,
        )

    def lower(self, ctx, kernel):
        p, x, w, b, y = ctx.params, ctx.tensor(0), ctx.tensor(1), ctx.tensor(2), ctx.out
        return plain_requant_tables(ctx) | {
            "input_offset": p.input_offset,
            "output_offset": p.output_offset,
            "stride": list(ctx.op.attrs.stride),
            "padding": list(p.pad),
            "act": [p.act_min, p.act_max],
            "filter": ctx.constant(f"tq_w_{ctx.ident}", w.data, "int8_t", ctx.weights_comment(w)),
            "input_dims": dims4(x.shape),
            "filter_dims": dims4(w.shape),
            "bias_dims": [1, 1, 1, b.shape[0]],
            "output_dims": dims4(y.shape),
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        """TFLite's inputs are (output_shape, weights, x[, bias])."""
        o = r.options(op, "TransposeConvOptions")
        w, x, y = r.tensor(inputs[1]), r.tensor(inputs[2]), r.tensor(outputs[0])
        r.need_rank(x, 4, "input")
        r.need_rank(w, 4, "weights")
        r.need_rank(y, 4, "output")
        shape = tuple(int(d) for d in r.constant(inputs[0], "TRANSPOSE_CONV output_shape").reshape(-1))
        if shape != y.shape:
            raise Unsupported(f"output_shape {list(shape)} differs from the output tensor's {list(y.shape)}")
        stride = (o.StrideH(), o.StrideW())
        # SAME/VALID of the forward convolution over the output's size
        padding = r.padding(o.Padding(), y.shape[1:3], w.shape[1:3], stride, (1, 1))
        attrs = TransposeConv2D(stride, padding, r.activation(o.FusedActivationFunction()))
        bias = r.bias_or_zeros([inputs[2], inputs[1], *inputs[3:]], w.shape[0], inputs[2], inputs[1])
        return attrs, [inputs[2], inputs[1], bias]

    def write_tflite(self, writer, op):
        a, g = op.attrs, writer.graph
        x, w, y = g[op.inputs[0]], g[op.inputs[1]], g[op.outputs[0]]
        mode = padding_mode(a.padding, y.shape[1:3], w.shape[1:3], a.stride, out_hw=x.shape[1:3])
        if mode is None:
            raise Unsupported(f"{op.name}: TFLite's TRANSPOSE_CONV pads only as SAME or VALID, not {a.padding}")
        shape = writer.constant(f"{op.name}/output_shape", np.array(y.shape, np.int32))
        writer.add_op(
            "TRANSPOSE_CONV",
            [shape, writer.tensor(op.inputs[1]), writer.tensor(op.inputs[0]), writer.tensor(op.inputs[2])],
            [writer.tensor(op.outputs[0])],
            writer.options(
                "TransposeConvOptions",
                Padding=writer.padding_code(mode),
                StrideH=a.stride[0],
                StrideW=a.stride[1],
                FusedActivationFunction=writer.activation_code(a.activation),
            ),
        )
