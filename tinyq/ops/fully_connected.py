"""FULLY_CONNECTED: int8 (or int4-weight) dense layer with TFLM's per-channel requantization.

inputs (x [..., K], weights [N, K], bias[N]); output [..., N]. Kernels:
fully_connected_s8 (portable reference) and fully_connected_fast_s8 (each input
row widened once, four units at a time by SMLAD), both also with int4 weights.

16x8 (int16 x, int8 weights): TFLM reads the bias as int64 whatever its dtype, so it
always accumulates in int64 and requantizes with the int64 MultiplyByQuantizedMultiplier;
the bias must be int64 (an absent one is imported as int64 zeros). Kernels:
fully_connected_s16 (portable) and fully_connected_fast_s16 (SMLAD over the int16 row as it is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import Activation
from tinyq.ops import OverTime, Unsupported, register
from tinyq.ops.affine import (
    AffineOp,
    affine_tables,
    exact_matmul,
    host_kernel,
    host_lanes,
    requantize,
    round_up,
    why_not_fast,
)
from tinyq.ops.common import INT16, activate, activation_tensor, count, expect

DEFAULT_WEIGHTS_FORMAT = 0  # TFLite's FullyConnectedOptionsWeightsFormat.DEFAULT


@dataclass(frozen=True)
class FullyConnected:
    activation: Activation = Activation.NONE


def fc_overlap_lead(op, graph) -> int:
    """Row b is widened into scratch before its outputs are written: the output may start
    this many bytes before its dying input."""
    x, y = graph[op.inputs[0]], graph[op.outputs[0]]
    rows, depth, units = x.size // x.shape[-1], x.shape[-1], y.shape[-1]
    written = np.arange(1, rows + 1) * units
    needed = np.minimum(np.arange(1, rows + 1) * depth, x.size)
    return int((written - needed).max()) * (x.nbytes // x.size)  # elements -> bytes (input and output share the dtype)


@register
class FullyConnectedOp(AffineOp):
    attrs = FullyConnected
    name = "FULLY_CONNECTED"
    over_time = OverTime.STEP_WISE

    def acc64(self, x, b):
        return x.dtype == INT16  # TFLM's int16 path takes an int64 bias (or none) only

    def check(self, a, ins, outs):
        count(ins, outs, 3)
        x, w, b = ins
        y = outs[0]
        expect(len(w.shape) == 2, "weights must be 2-D [units, depth]")
        units, depth = w.shape
        expect(x.size % depth == 0, f"input size {x.size} is not a multiple of depth {depth}")
        expect(
            y.size == x.size // depth * units and y.shape[-1] == units,
            f"output shape {y.shape} does not fit {x.size // depth} x {units}",
        )
        activation_tensor(x, "input")
        activation_tensor(y, "output")
        self.check_weights(w, b, units)
        expect(
            x.dtype != INT16 or b.dtype == "int64",
            f"bias {b.name!r}: a 16x8 FULLY_CONNECTED needs an int64 bias (TFLite Micro reads it as int64)",
        )

    def linear(self, tf, op, graph, x, w):
        """Rows of the flattened input times W: (rows, units)."""
        return tf.matmul(tf.reshape(x, (-1, graph[op.inputs[1]].shape[1])), w, transpose_b=True)

    def forward(self, tf, op, graph, xs):
        x, w, b = xs
        y = self.linear(tf, op, graph, x, w) + b
        return activate(tf, tf.reshape(y, (-1,) + graph[op.outputs[0]].shape[1:]), op.attrs.activation)

    def reference(self, a, p, ins, in_tensors, outs):
        x, w, b = ins
        xs = x.reshape(-1, w.shape[1]).astype(np.int64) + p.input_offset
        acc = exact_matmul(xs, w.T) + b
        return requantize(acc, p).reshape((x.shape[0],) + outs[0].shape)

    def macs(self, op, graph):
        return graph[op.outputs[0]].size * graph[op.inputs[1]].shape[1]

    def kernel(self, op, graph, fast):
        int4 = graph[op.inputs[1]].dtype == "int4"
        int16 = graph[op.inputs[0]].dtype == INT16  # sums go to int64 every 256 k: always exact
        return self.choose(
            op,
            graph,
            fast,
            "fully_connected",
            None if int16 else why_not_fast(op, graph, gemm=True),
            lambda: {
                "scratch_bytes": 2 * round_up(graph[op.inputs[1]].shape[1], 8 if int4 else 4),  # the (widened) row
                "overlap_lead": fc_overlap_lead(op, graph),
                "weight_layout": "interleaved k pairs" if int16 else "interleaved",
                "rows_per_block": 4,
            },
        )

    def host_kernel(self, op, graph):
        depth = graph[op.inputs[1]].shape[1]
        scratch = round_up(depth, 4) + 4 * host_lanes(op, graph) + 128
        return host_kernel(op, graph, "fully_connected", scratch, "host quads")

    def lower(self, ctx, kernel):
        x, w = ctx.tensor(0), ctx.tensor(1)
        units, depth = w.shape
        batch = x.size // depth
        return affine_tables(ctx, kernel) | {
            "input_dims": [batch, 1, 1, depth],
            "filter_dims": [depth, 1, 1, units],
            "bias_dims": [1, 1, 1, units],
            "output_dims": [batch, 1, 1, units],
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "FullyConnectedOptions")
        if o.WeightsFormat() != DEFAULT_WEIGHTS_FORMAT:
            raise Unsupported("shuffled weights format")
        w = r.tensor(inputs[1])
        r.need_rank(w, 2, "weights")
        return FullyConnected(r.activation(o.FusedActivationFunction())), self.read_bias(r, inputs, w.shape[0])

    def write_tflite(self, writer, op):
        keep = len(writer.graph[op.outputs[0]].shape) != 2
        writer.add_op(
            "FULLY_CONNECTED",
            [writer.tensor(n) for n in op.inputs],
            [writer.tensor(op.outputs[0])],
            writer.options(
                "FullyConnectedOptions",
                FusedActivationFunction=writer.activation_code(op.attrs.activation),
                KeepNumDims=keep,
            ),
        )
