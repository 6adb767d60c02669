"""TINYQ_GRU: a whole GRU layer over a sequence, Keras's GRU (reset_after true or false), int8.

TFLite has no GRU builtin and TFLite Micro no GRU kernel: this is tinyq's own operator, written
to .tflite as a CUSTOM operator with this code and read back by tinyq (nothing else runs it).
inputs (x [batch, time, features], the input weights of the update (z), reset (r) and
candidate (h) gates [units, features], their recurrent weights [units, units], their input
biases and their recurrent biases [units]); output [batch, time, units], the hidden state at
every step, which starts at zero (the output zero point) on every call, per batch row.

Float (Keras): z = sigmoid(x Wz + bz + h Uz + cz), r likewise, and the candidate
  reset_after:     n = tanh(x Wh + bh + r * (h Uh + ch))
  not reset_after: n = tanh(x Wh + bh + (r * h) Uh + ch)
then h' = z h + (1 - z) n.

int8 (the arithmetic of TFLM's integer LSTM, int8 weights per tensor, int32 biases at input x
weight scale, the recurrent ones at hidden x weight scale): every FC is requantized to int16
Q3.12 (2^-12) and saturated, z and r are the int16 Logistic of the saturating sum of their two
FCs (Q0.15), the candidate's pre-activation is
  reset_after:     sat16(FC(x) + r FC(h) 2^-15), the product requantized to Q3.12,
  not reset_after: sat16(FC(x) + FC(r h)), r h = sat8((h - zp) r 2^-15 + zp) at the hidden scale,
n is its int16 Tanh (Q0.15), and
  h' = sat8(round(z (h - zp) 2^-15) + round((32768 - z) n 2^-30 / s_h) + zp),
each product requantized on its own (TFLM's MultiplyByQuantizedMultiplier).
Kernel: gru_s8 (hidden state and gate buffers in its scratch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ops import OpDef, OverTime, Signature, State, Unsupported, register
from tinyq.ops.common import FLOAT, INT8, count
from tinyq.ops.logistic import logistic_s16
from tinyq.ops.recurrent import (
    GATE_INPUT_SCALE,
    GATE_OUTPUT_SCALE,
    INT16_RANGE,
    SIGMOID_GATE,
    check_layer,
    fc_arrays,
    fc_q312,
    mul16,
    pairs_bytes,
    product_multiplier,
    quantize_bias,
    quantize_weights,
    state_args,
    stateful_kernel,
)
from tinyq.ops.tanh import tanh_s16

GATES = ("update", "reset", "candidate")  # Keras's order
ONE_Q15 = 1 << 15  # 1.0 in Q0.15 (one past int16: 1 - z is formed in int32)


@dataclass(frozen=True)
class Gru:
    reset_after: bool = True
    streaming: bool = False  # the hidden state persists from call to call (tinyq_reset clears it)


@dataclass(frozen=True)
class GruParams:
    input_offset: int
    hidden_offset: int
    hidden_zero_point: int
    input_multipliers: tuple[tuple[int, int], ...]  # per gate: FC(x) -> Q3.12
    recurrent_multipliers: tuple[tuple[int, int], ...]  # per gate: FC(h) (FC(r h)) -> Q3.12
    reset_multiplier: tuple[int, int]  # r x FC(h) -> Q3.12, or r x (h - zp) -> hidden scale
    keep_multiplier: tuple[int, int]  # z x (h - zp) -> hidden scale
    update_multiplier: tuple[int, int]  # (1 - z) x n -> hidden scale


@register
class GruOp(OpDef):
    attrs = Gru
    name = "TINYQ_GRU"
    over_time = OverTime.RECURRENT
    custom = True
    signatures = (
        Signature((INT8,) + (INT8,) * 6 + ("int32",) * 6, (INT8,)),
        Signature((FLOAT,) * 13, (FLOAT,)),
    )

    def check(self, a, ins, outs):
        count(ins, outs, 13)
        check_layer(ins[0], outs[0], GATES, ins[1:4], ins[4:7], ins[7:13])

    def params(self, a, ins, outs):
        x, y = ins[0].qparams, outs[0].qparams
        return GruParams(
            -x.zp,
            -y.zp,
            y.zp,
            tuple(product_multiplier(x.s, w.qparams.s, GATE_INPUT_SCALE) for w in ins[1:4]),
            tuple(product_multiplier(y.s, w.qparams.s, GATE_INPUT_SCALE) for w in ins[4:7]),
            fx.quantize_multiplier(GATE_OUTPUT_SCALE),
            fx.quantize_multiplier(GATE_OUTPUT_SCALE),
            product_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, y.s),
        )

    def reference(self, a, p, ins, in_tensors, outs):
        return self.reference_with_state(a, p, ins, in_tensors, outs, State())

    def reference_with_state(self, a, p, ins, in_tensors, outs, state):
        x = ins[0].astype(np.int64)
        w_in, w_rec, b_in, b_rec = ins[1:4], ins[4:7], ins[7:10], ins[10:13]
        n, batch, steps, _ = x.shape
        units = w_in[0].shape[0]
        h = state.carried(outs[0].name, a.streaming, np.full((n, batch, units), p.hidden_zero_point, np.int64))
        out = np.empty((n, batch, steps, units), np.int8)

        def fc_x(g, xt):
            return fc_q312(xt, p.input_offset, w_in[g], b_in[g], p.input_multipliers[g])

        def fc_h(g, state):
            return fc_q312(state, p.hidden_offset, w_rec[g], b_rec[g], p.recurrent_multipliers[g])

        for t in range(steps):
            xt = x[:, :, t]
            z = logistic_s16(np.clip(fc_x(0, xt) + fc_h(0, h), *INT16_RANGE), SIGMOID_GATE).astype(np.int64)
            r = logistic_s16(np.clip(fc_x(1, xt) + fc_h(1, h), *INT16_RANGE), SIGMOID_GATE).astype(np.int64)
            if a.reset_after:
                recurrent = mul16(r, fc_h(2, h), p.reset_multiplier)
            else:
                reset_h = mul16(r, h + p.hidden_offset, p.reset_multiplier, -128, 127, p.hidden_zero_point)
                recurrent = fc_h(2, reset_h)
            candidate = tanh_s16(np.clip(fc_x(2, xt) + recurrent, *INT16_RANGE), SIGMOID_GATE).astype(np.int64)
            keep = fx.multiply_by_quantized_multiplier(z * (h + p.hidden_offset), *p.keep_multiplier)
            new = fx.multiply_by_quantized_multiplier((ONE_Q15 - z) * candidate, *p.update_multiplier)
            h = np.clip(keep + new + p.hidden_zero_point, -128, 127)
            out[:, :, t] = h
        state.keep(outs[0].name, a.streaming, h)
        return out

    def forward(self, tf, op, graph, xs):
        x, w_in, w_rec, b_in, b_rec = xs[0], xs[1:4], xs[4:7], xs[7:10], xs[10:13]
        y = graph[op.outputs[0]]
        _, steps, features = graph[op.inputs[0]].shape
        x = tf.reshape(x, (-1, steps, features))
        h = tf.zeros((tf.shape(x)[0], y.shape[-1]), x.dtype)

        def fc(v, w, b):
            return tf.matmul(v, w, transpose_b=True) + b

        hs = []
        for t in range(steps):
            xt = x[:, t]
            z = tf.sigmoid(fc(xt, w_in[0], b_in[0]) + fc(h, w_rec[0], b_rec[0]))
            r = tf.sigmoid(fc(xt, w_in[1], b_in[1]) + fc(h, w_rec[1], b_rec[1]))
            recurrent = r * fc(h, w_rec[2], b_rec[2]) if op.attrs.reset_after else fc(r * h, w_rec[2], b_rec[2])
            h = z * h + (1 - z) * tf.tanh(fc(xt, w_in[2], b_in[2]) + recurrent)
            hs.append(h)
        return tf.reshape(tf.stack(hs, axis=1), (-1,) + y.shape[1:])

    def quantize(self, op, graph, context):
        """Weights per-tensor symmetric int8; input biases at input x weight scale, recurrent
        ones at hidden (output) x weight scale, int32."""
        x_scale, h_scale = context.qparams[op.inputs[0]].s, context.qparams[op.outputs[0]].s
        scales = quantize_weights(context, graph, op.inputs[1:7])
        for name, w_scale in zip(op.inputs[7:10], scales[:3]):
            quantize_bias(context, graph, name, x_scale * w_scale)
        for name, w_scale in zip(op.inputs[10:13], scales[3:]):
            quantize_bias(context, graph, name, h_scale * w_scale)
        return [op]

    def macs(self, op, graph):
        x, units = graph[op.inputs[0]], graph[op.inputs[1]].shape[0]
        return x.size // x.shape[-1] * 3 * units * (x.shape[-1] + units)

    # --- C ------------------------------------------------------------------------------
    def buffers(self, op, graph) -> tuple[int, int]:
        """(scratch, state) bytes: widened x and h, four int16 gate buffers (z, r, candidate,
        recurrent term) and r h; the hidden states."""
        batch, _, features = graph[op.inputs[0]].shape
        units = graph[op.inputs[1]].shape[0]
        return pairs_bytes(features) + pairs_bytes(units) + 4 * 2 * units + units, batch * units

    def kernel(self, op, graph, fast):
        return stateful_kernel("gru_s8", *self.buffers(op, graph), op.attrs.streaming)

    def lower(self, ctx, kernel):
        p = ctx.params
        batch, steps, features = ctx.tensor(0).shape
        units = ctx.tensor(1).shape[0]
        gates = []
        for g in range(3):
            w_in, b_in = fc_arrays(ctx, 1 + g, 7 + g, p.input_offset)
            w_rec, b_rec = fc_arrays(ctx, 4 + g, 10 + g, p.hidden_offset)
            gates.append(
                {
                    "input_multiplier": list(p.input_multipliers[g]),
                    "recurrent_multiplier": list(p.recurrent_multipliers[g]),
                    "input_weights": w_in,
                    "recurrent_weights": w_rec,
                    "input_bias": b_in,
                    "recurrent_bias": b_rec,
                }
            )
        return {
            "dims": [batch, steps, features, units, int(ctx.op.attrs.reset_after)],
            "offsets": [p.hidden_offset, p.hidden_zero_point],
            "multipliers": [*p.reset_multiplier, *p.keep_multiplier, *p.update_multiplier],
            "gates": gates,
            "hidden_zero_point": p.hidden_zero_point,
            "input": ctx.input(),
            "output": ctx.output(),
        } | state_args(ctx, kernel, self.buffers(ctx.op, ctx.graph)[0])

    # --- TFLite (a tinyq custom operator) -----------------------------------------------
    def read_tflite(self, r, op, inputs, outputs):
        options = r.custom_options(op)
        if len(inputs) != 13 or not isinstance(options.get("reset_after"), bool):
            raise Unsupported("a TINYQ_GRU needs 13 operands and a boolean reset_after option")
        return Gru(options["reset_after"], bool(options.get("streaming", False))), inputs

    def write_tflite(self, writer, op):
        inputs = [writer.tensor(n) for n in op.inputs]
        outputs = [writer.tensor(op.outputs[0])]
        writer.add_custom_op(
            self.name, inputs, outputs, {"reset_after": op.attrs.reset_after, "streaming": op.attrs.streaming}
        )
