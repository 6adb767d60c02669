"""TILE: the input repeated `multiples` times along each axis. Float models only: TFLite Micro
has no TILE kernel, so an int8 TILE has no arithmetic to be bit-exact with and is refused
(verify names the float signature)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ops import OpDef, OutputQuant, Signature, Unsupported, register
from tinyq.ops.common import FLOAT, activation_tensor, count, expect
from tinyq.ops.strided_copy import forward_on_samples


@dataclass(frozen=True)
class Tile:
    multiples: tuple[int, ...]


@register
class TileOp(OpDef):
    attrs = Tile
    name = "TILE"
    signatures = (Signature((FLOAT,), (FLOAT,)),)
    output_quant = OutputQuant.INPUT

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        expect(len(a.multiples) == len(x.shape), "one multiple per dimension")
        expect(all(m >= 0 for m in a.multiples), f"negative multiples {a.multiples}")
        shape = tuple(d * m for d, m in zip(x.shape, a.multiples))
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        activation_tensor(x, "input")
        activation_tensor(y, "output")

    def forward(self, tf, op, graph, xs):
        multiples = [1, *op.attrs.multiples]
        return forward_on_samples(tf, op, graph, xs, lambda v: tf.tile(v[0], multiples))

    def propagate_range(self, op, ranges):
        return ranges[0]

    def read_tflite(self, r, op, inputs, outputs):
        multiples = r.constant(inputs[1], "TILE multiples").reshape(-1)
        if multiples.size != len(r.tensor(inputs[0]).shape):
            raise Unsupported(f"{multiples.size} multiples for a rank-{len(r.tensor(inputs[0]).shape)} input")
        return Tile(tuple(int(m) for m in multiples)), inputs[:1]

    def write_tflite(self, writer, op):
        multiples = writer.constant(f"{op.name}/multiples", np.array(op.attrs.multiples, np.int32))
        writer.add_op(
            "TILE",
            [writer.tensor(op.inputs[0]), multiples],
            [writer.tensor(op.outputs[0])],
            writer.options("TileOptions"),
        )
