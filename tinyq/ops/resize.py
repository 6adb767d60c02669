"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR: int8 NHWC images to the output's height and
width, as TFLM computes them. The output shares the input's quantization.

Which input pixels each output row and column reads depends only on the sizes and
the align_corners / half_pixel_centers flags; `params` computes those per-axis
tables once, in TFLM's arithmetic, and the C kernels read them from flash:

- nearest neighbour (GetNearestNeighbor): float32 scale (in / out, or (in - 1) /
  (out - 1) with align_corners), source = floor((dst + offset) * scale), or
  round half away from zero with align_corners, clamped to the image;
- bilinear (ResizeBilinearInteger, no float): scale in 1/1024 units,
  ((1024 in + out / 2) / out), a source position p = dst scale (+ scale / 2 - 512
  for half pixel centers), rows p / 1024 (C division, at least 0) and
  (p + 1023) / 1024 (at most in - 1), weight p - 1024 lo. The four weighted pixels
  sum in units of 2^-20, rounded half away from zero.

Kernels: resize_nearest_neighbor_s8, resize_bilinear_s8.

int16 (16x8): TFLM's RESIZE_NEAREST_NEIGHBOR copies int16 pixels the same way (kernel
resize_nearest_neighbor_s16, the template with int16_t elements); its RESIZE_BILINEAR is int8
(and float) only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import Kernel, OpDef, OutputQuant, Signature, Unsupported, register
from tinyq.ops.common import (
    FLOAT,
    INT8,
    INT16,
    WITH_INT16,
    activation_tensor,
    c_div,
    count,
    dims4,
    expect,
    round_half_away_f32,
    same_quant,
)

ONE = 1 << 10  # bilinear positions and weights are in units of 1/1024


@dataclass(frozen=True)
class ResizeBilinear:
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class ResizeNearestNeighbor:
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class BilinearParams:
    """Per output row and per output column: (first source, second source, weight of the
    second in 1/1024) as TFLM's ComputeInterpolationValuesInteger gives them."""

    rows: tuple[tuple[int, int, int], ...]
    cols: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class NearestParams:
    """The source row of each output row and the source column of each output column."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]


def nearest_sources(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """GetNearestNeighbor for every output index, in float32 as TFLM computes it."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    position = (np.arange(out_size).astype(f32) + offset) * scale
    source = round_half_away_f32(position) if align_corners else np.floor(position)
    source = np.minimum(source.astype(np.int64), in_size - 1)
    return np.maximum(source, 0) if half_pixel_centers else source


def bilinear_sources(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """(lo, hi, weight of hi) per output index, TFLM's integer arithmetic (int32 in C)."""
    if align_corners and out_size > 1:
        scale = (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = (ONE * in_size + out_size // 2) // out_size
    position = np.arange(out_size, dtype=np.int64) * scale
    if half_pixel_centers:
        position = position + scale // 2 - ONE // 2
    lo = np.maximum(c_div(position, ONE), 0)
    hi = np.minimum(c_div(position + ONE - 1, ONE), in_size - 1)
    return np.stack([lo, hi, position - ONE * lo], axis=1)


class ResizeOp(OpDef):
    """What both resizes share: NHWC int8 in and out, the size from the output tensor."""

    signatures = (Signature((INT8,), (INT8,)), Signature((FLOAT,), (FLOAT,)))
    output_quant = OutputQuant.INPUT
    options = ""  # the TFLite options table
    raw_op = ""  # the TensorFlow operation
    table = ""  # what the per-axis tables hold (their C comment)

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        expect(len(x.shape) == 4 and len(y.shape) == 4, "input and output must be 4-D (NHWC)")
        expect(
            y.shape[0] == x.shape[0] and y.shape[3] == x.shape[3],
            f"output {y.shape} must keep the batch and channels of input {x.shape}",
        )
        expect(min(y.shape[1:3]) >= 1, f"output size {y.shape[1:3]}")
        expect(
            not (a.align_corners and a.half_pixel_centers), "align_corners and half_pixel_centers exclude each other"
        )
        activation_tensor(x, "input")
        same_quant(x, y, self.name.lower())

    def forward(self, tf, op, graph, xs):
        a, y = op.attrs, graph[op.outputs[0]]
        resize = getattr(tf.raw_ops, self.raw_op)
        return resize(
            images=xs[0],
            size=list(y.shape[1:3]),
            align_corners=a.align_corners,
            half_pixel_centers=a.half_pixel_centers,
        )

    def propagate_range(self, op, ranges):
        return ranges[0]  # a convex combination (or a copy) of input pixels

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, self.options)
        size = tuple(int(v) for v in r.constant(inputs[1], f"{self.name} size").reshape(-1))
        y = r.tensor(outputs[0])
        if len(y.shape) != 4 or size != y.shape[1:3]:
            raise Unsupported(f"size {list(size)} differs from the output's shape {list(y.shape)}")
        return self.attrs(bool(o.AlignCorners()), bool(o.HalfPixelCenters())), inputs[:1]

    def write_tflite(self, writer, op):
        a = op.attrs
        size = np.array(writer.graph[op.outputs[0]].shape[1:3], np.int32)
        writer.add_op(
            self.name,
            [writer.tensor(op.inputs[0]), writer.constant(f"{op.name}/size", size)],
            [writer.tensor(op.outputs[0])],
            writer.options(self.options, AlignCorners=a.align_corners, HalfPixelCenters=a.half_pixel_centers),
        )

    def tables(self, ctx) -> dict:
        p = ctx.params
        return {
            "rows": ctx.constant(
                f"tq_rows_{ctx.ident}",
                np.array(p.rows, np.int32).reshape(-1),
                "int32_t",
                f"{ctx.op.name}: {self.table}",
            ),
            "cols": ctx.constant(
                f"tq_cols_{ctx.ident}",
                np.array(p.cols, np.int32).reshape(-1),
                "int32_t",
                f"{ctx.op.name}: {self.table}",
            ),
            "input_dims": dims4(ctx.tensor(0).shape),
            "output_dims": dims4(ctx.out.shape),
            "input": ctx.input(),
            "output": ctx.output(),
        }


@register
class ResizeNearestNeighborOp(ResizeOp):
    attrs = ResizeNearestNeighbor
    name = "RESIZE_NEAREST_NEIGHBOR"
    options = "ResizeNearestNeighborOptions"
    raw_op = "ResizeNearestNeighbor"
    table = "source index per output index"
    signatures = WITH_INT16

    def params(self, attrs, ins, outs):
        (_, h, w, _), (_, oh, ow, _) = ins[0].shape, outs[0].shape
        flags = attrs.align_corners, attrs.half_pixel_centers
        return NearestParams(
            tuple(int(v) for v in nearest_sources(h, oh, *flags)), tuple(int(v) for v in nearest_sources(w, ow, *flags))
        )

    def reference(self, a, p, ins, in_tensors, outs):
        return ins[0][:, :, list(p.rows)][:, :, :, list(p.cols)]

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return Kernel("resize_nearest_neighbor_s16", "resize_nearest_neighbor_s8", {"int16": True})
        return Kernel("resize_nearest_neighbor_s8")

    def lower(self, ctx, kernel):
        return self.tables(ctx)


@register
class ResizeBilinearOp(ResizeOp):
    attrs = ResizeBilinear
    name = "RESIZE_BILINEAR"
    options = "ResizeBilinearOptions"
    raw_op = "ResizeBilinear"
    table = "(first source, second source, weight of the second in 1/1024) per output index"

    def check(self, a, ins, outs):
        super().check(a, ins, outs)
        p = self.params(a, ins, outs)
        for axis, table in ((1, p.rows), (2, p.cols)):
            # TFLM clamps only the second source: a scale rounded too far reads past the image
            expect(
                max(lo for lo, _, _ in table) < ins[0].shape[axis],
                f"resizing {ins[0].shape[axis]} to {outs[0].shape[axis]} reads past the image in TFLM",
            )

    def params(self, attrs, ins, outs):
        (_, h, w, _), (_, oh, ow, _) = ins[0].shape, outs[0].shape
        flags = attrs.align_corners, attrs.half_pixel_centers
        rows, cols = bilinear_sources(h, oh, *flags), bilinear_sources(w, ow, *flags)
        return BilinearParams(tuple(map(tuple, rows.tolist())), tuple(map(tuple, cols.tolist())))

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0].astype(np.int64)
        rows, cols = np.array(p.rows, np.int64), np.array(p.cols, np.int64)
        fy = rows[:, 2].reshape(1, 1, -1, 1, 1)
        fx = cols[:, 2].reshape(1, 1, 1, -1, 1)

        def pick(r, c):
            return x[:, :, rows[:, r]][:, :, :, cols[:, c]]

        total = (
            pick(0, 0) * (ONE - fy) * (ONE - fx)
            + pick(1, 0) * fy * (ONE - fx)
            + pick(0, 1) * (ONE - fy) * fx
            + pick(1, 1) * fy * fx
        )
        rounding = np.where(total > 0, 1 << 19, -(1 << 19))
        return c_div(total + rounding, 1 << 20).astype(np.int8)

    def kernel(self, op, graph, fast):
        return Kernel("resize_bilinear_s8")

    def lower(self, ctx, kernel):
        return self.tables(ctx)
