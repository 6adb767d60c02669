"""MIRROR_PAD: pads with the input's own values mirrored at its edges, REFLECT (the edge not
repeated) or SYMMETRIC (repeated), as TFLM's GetInputDimension maps every output index to an
input index. The output shares the input's quantization. Kernel: mirror_pad_s8.

int8 only: the pinned TFLM's MIRROR_PAD has no int16 case (its Eval fails on int16 tensors)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import Kernel, OpDef, OutputQuant, Unsupported, register
from tinyq.ops.common import count, dims4, expect
from tinyq.ops.strided_copy import MOVEMENT_SIGNATURES, check_moved, check_ranks, forward_on_samples

REFLECT, SYMMETRIC = "reflect", "symmetric"
_MODES = {0: REFLECT, 1: SYMMETRIC}  # tflite.MirrorPadMode


@dataclass(frozen=True)
class MirrorPad:
    paddings: tuple[tuple[int, int], ...]
    mode: str = REFLECT

    @property
    def offset(self) -> int:
        """TFLM's offset: REFLECT skips the edge element, SYMMETRIC repeats it."""
        return 1 if self.mode == REFLECT else 0


def mirror_indices(size: int, before: int, after: int, offset: int) -> np.ndarray:
    """The input index of every output index along one axis (TFLM's GetInputDimension)."""
    out = np.arange(size + before + after)
    left = before + offset - 1
    right = size - (1 + offset)
    inside = out - before
    beyond = inside - size
    return np.where(
        out < before,
        left - np.minimum(out, left - offset),
        np.where(inside >= size, right - np.minimum(beyond, right), inside),
    )


@register
class MirrorPadOp(OpDef):
    attrs = MirrorPad
    name = "MIRROR_PAD"
    signatures = MOVEMENT_SIGNATURES
    output_quant = OutputQuant.INPUT

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        expect(a.mode in (REFLECT, SYMMETRIC), f"mode {a.mode!r}")
        expect(len(a.paddings) == len(x.shape), "one (before, after) pair per dimension")
        for (p, q), d in zip(a.paddings, x.shape):
            # TensorFlow's limit; beyond it TFLM's index map leaves the input
            expect(
                0 <= p <= d - a.offset and 0 <= q <= d - a.offset, f"{a.mode} padding ({p}, {q}) of a dimension of {d}"
            )
        shape = tuple(d + p + q for d, (p, q) in zip(x.shape, a.paddings))
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        check_moved(ins, outs, self.name)

    def params(self, attrs, ins, outs):
        return None  # data movement: no arithmetic

    def reference(self, a, p, ins, in_tensors, outs):
        x = ins[0]
        for axis, ((before, after), size) in enumerate(zip(a.paddings, in_tensors[0].shape)):
            x = np.take(x, mirror_indices(size, before, after, a.offset), axis=axis + 1)
        return x

    def forward(self, tf, op, graph, xs):
        pads, mode = [[0, 0], *(list(p) for p in op.attrs.paddings)], op.attrs.mode.upper()
        return forward_on_samples(tf, op, graph, xs, lambda v: tf.pad(v[0], pads, mode=mode))

    def propagate_range(self, op, ranges):
        return ranges[0]

    def kernel(self, op, graph, fast):
        return Kernel("mirror_pad_s8")

    def lower(self, ctx, kernel):
        check_ranks(ctx)
        pads = ctx.op.attrs.paddings
        lead = 4 - len(pads)
        return {
            "input_dims": dims4(ctx.tensor(0).shape),
            "pad_before": [0] * lead + [p for p, _ in pads],
            "offset": ctx.op.attrs.offset,
            "output_dims": dims4(ctx.out.shape),
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        rank = len(r.tensor(inputs[0]).shape)
        pads = r.constant(inputs[1], "MIRROR_PAD paddings")
        if pads.shape != (rank, 2):
            raise Unsupported(f"paddings of shape {pads.shape} for a rank-{rank} input")
        mode = int(r.options(op, "MirrorPadOptions").Mode())
        if mode not in _MODES:
            raise Unsupported(f"mirror padding mode {mode}")
        return MirrorPad(tuple((int(p), int(q)) for p, q in pads), _MODES[mode]), inputs[:1]

    def write_tflite(self, writer, op):
        pads = writer.constant(f"{op.name}/paddings", np.array(op.attrs.paddings, np.int32).reshape(-1, 2))
        mode = {m: code for code, m in _MODES.items()}[op.attrs.mode]
        writer.add_op(
            "MIRROR_PAD",
            [writer.tensor(op.inputs[0]), pads],
            [writer.tensor(op.outputs[0])],
            writer.options("MirrorPadOptions", Mode=mode),
        )
