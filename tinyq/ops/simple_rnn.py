"""TINYQ_SIMPLE_RNN: a whole Keras SimpleRNN layer (tanh) over a sequence, int8.

TFLite's RNN builtins have no integer kernels (TFLite Micro has none): this is tinyq's own
operator, a CUSTOM operator with this code in .tflite, read back by tinyq only.
inputs (x [batch, time, features], input weights [units, features], recurrent weights
[units, units], bias [units]); output [batch, time, units], the hidden state at every step,
starting at zero (the output zero point) on every call, per batch row.

Float (Keras): h' = tanh(x W + b + h U). int8 (the gate arithmetic of TFLM's integer LSTM):
h' = sat8(round(tanh16(sat16(FC(x) + FC(h))) s_t / s_h) + zp), both FCs requantized to int16
Q3.12, tanh16 the int16 Tanh (Q0.15 out, s_t = 2^-15). Kernel: simple_rnn_s8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import OpDef, OverTime, Signature, State, Unsupported, register
from tinyq.ops.common import FLOAT, INT8, count
from tinyq.ops.recurrent import (
    GATE_INPUT_SCALE,
    GATE_OUTPUT_SCALE,
    INT16_RANGE,
    SIGMOID_GATE,
    check_layer,
    fc_arrays,
    fc_q312,
    pairs_bytes,
    product_multiplier,
    quantize_bias,
    quantize_weights,
    state_args,
    stateful_kernel,
)
from tinyq.ops.tanh import tanh_s16


@dataclass(frozen=True)
class SimpleRnn:
    streaming: bool = False  # the hidden state persists from call to call (tinyq_reset clears it)


@dataclass(frozen=True)
class SimpleRnnParams:
    input_offset: int
    hidden_offset: int
    hidden_zero_point: int
    input_multiplier: tuple[int, int]  # FC(x) -> Q3.12
    recurrent_multiplier: tuple[int, int]  # FC(h) -> Q3.12
    output_multiplier: tuple[int, int]  # tanh (Q0.15) -> hidden scale


@register
class SimpleRnnOp(OpDef):
    attrs = SimpleRnn
    name = "TINYQ_SIMPLE_RNN"
    over_time = OverTime.RECURRENT
    custom = True
    signatures = (Signature((INT8, INT8, INT8, "int32"), (INT8,)), Signature((FLOAT,) * 4, (FLOAT,)))

    def check(self, a, ins, outs):
        count(ins, outs, 4)
        check_layer(ins[0], outs[0], ("the",), ins[1:2], ins[2:3], ins[3:4])

    def params(self, a, ins, outs):
        x, w, u, _ = ins
        y = outs[0].qparams
        return SimpleRnnParams(
            -x.qparams.zp,
            -y.zp,
            y.zp,
            product_multiplier(x.qparams.s, w.qparams.s, GATE_INPUT_SCALE),
            product_multiplier(y.s, u.qparams.s, GATE_INPUT_SCALE),
            fx.quantize_multiplier(GATE_OUTPUT_SCALE / y.s),
        )

    def reference(self, a, p, ins, in_tensors, outs):
        return self.reference_with_state(a, p, ins, in_tensors, outs, State())

    def reference_with_state(self, a, p, ins, in_tensors, outs, state):
        x, w, u, b = ins
        x = x.astype(np.int64)
        n, batch, steps, _ = x.shape
        h = state.carried(outs[0].name, a.streaming, np.full((n, batch, w.shape[0]), p.hidden_zero_point, np.int64))
        out = np.empty((n, batch, steps, w.shape[0]), np.int8)
        for t in range(steps):
            pre = fc_q312(x[:, :, t], p.input_offset, w, b, p.input_multiplier)
            pre = np.clip(pre + fc_q312(h, p.hidden_offset, u, None, p.recurrent_multiplier), *INT16_RANGE)
            tanh = tanh_s16(pre, SIGMOID_GATE).astype(np.int64)
            h = np.clip(
                fx.multiply_by_quantized_multiplier(tanh, *p.output_multiplier) + p.hidden_zero_point, -128, 127
            )
            out[:, :, t] = h
        state.keep(outs[0].name, a.streaming, h)
        return out

    def forward(self, tf, op, graph, xs):
        x, w, u, b = xs
        y = graph[op.outputs[0]]
        _, steps, features = graph[op.inputs[0]].shape
        x = tf.reshape(x, (-1, steps, features))
        h = tf.zeros((tf.shape(x)[0], y.shape[-1]), x.dtype)
        hs = []
        for t in range(steps):
            h = tf.tanh(tf.matmul(x[:, t], w, transpose_b=True) + b + tf.matmul(h, u, transpose_b=True))
            hs.append(h)
        return tf.reshape(tf.stack(hs, axis=1), (-1,) + y.shape[1:])

    def propagate_range(self, op, ranges):
        return -1.0, 1.0

    def quantize(self, op, graph, context):
        """Weights per-tensor symmetric int8, the bias int32 at input x weight scale."""
        scales = quantize_weights(context, graph, op.inputs[1:3])
        quantize_bias(context, graph, op.inputs[3], context.qparams[op.inputs[0]].s * scales[0])
        return [op]

    def macs(self, op, graph):
        x, units = graph[op.inputs[0]], graph[op.inputs[1]].shape[0]
        return x.size // x.shape[-1] * units * (x.shape[-1] + units)

    # --- C ------------------------------------------------------------------------------
    def buffers(self, op, graph) -> tuple[int, int]:
        """(scratch, state) bytes: widened x and h, two int16 buffers; the hidden states."""
        batch, _, features = graph[op.inputs[0]].shape
        units = graph[op.inputs[1]].shape[0]
        return pairs_bytes(features) + pairs_bytes(units) + 2 * 2 * units, batch * units

    def kernel(self, op, graph, fast):
        return stateful_kernel("simple_rnn_s8", *self.buffers(op, graph), op.attrs.streaming)

    def lower(self, ctx, kernel):
        p = ctx.params
        batch, steps, features = ctx.tensor(0).shape
        w, b = fc_arrays(ctx, 1, 3, p.input_offset)
        u, c = fc_arrays(ctx, 2, None, p.hidden_offset)
        return {
            "dims": [batch, steps, features, ctx.tensor(1).shape[0], p.hidden_zero_point],
            "multipliers": [*p.input_multiplier, *p.recurrent_multiplier, *p.output_multiplier],
            "weights": [w, u, b, c],
            "hidden_zero_point": p.hidden_zero_point,
            "input": ctx.input(),
            "output": ctx.output(),
        } | state_args(ctx, kernel, self.buffers(ctx.op, ctx.graph)[0])

    # --- TFLite (a tinyq custom operator) -----------------------------------------------
    def read_tflite(self, r, op, inputs, outputs):
        if len(inputs) != 4:
            raise Unsupported("a TINYQ_SIMPLE_RNN needs 4 operands")
        return SimpleRnn(bool(r.custom_options(op).get("streaming", False))), inputs

    def write_tflite(self, writer, op):
        inputs = [writer.tensor(n) for n in op.inputs]
        writer.add_custom_op(
            self.name, inputs, [writer.tensor(op.outputs[0])], {"activation": "tanh", "streaming": op.attrs.streaming}
        )
