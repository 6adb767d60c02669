"""UNIDIRECTIONAL_SEQUENCE_LSTM: a whole LSTM layer over a sequence, as TFLite Micro's integer LSTM.

inputs (x [batch, time, features] (or [time, batch, features] when time major), the input
weights of the input, forget, cell and output gates [units, features], their recurrent
weights [units, units], their int32 biases [units]); output [batch, time, units] (or time
major), the hidden state at every step. int8 activations with per-tensor symmetric int8
weights and int32 biases (TFLite's 8x8_16 form), or 16x8: int16 activations (zero point 0),
int8 weights, int64 biases. TFLite's peephole, projection, layer-norm and CIFG variants
are refused: TFLite Micro runs none of them.

State: the hidden state h is held at the output's type and quantization (TFLM copies h to
the output each step, so the two must agree); the cell state c is int16, symmetric, at
`cell_scale` (the converter picks a power of two). Both start at zero (h at the output zero
point, as TFLM resets its variable tensors) at every invocation, for each batch row.

One step, as TFLM's lstm_eval.h (every intermediate symmetric int16):
- gate g = act(FC(x_t) + FC(h)): each FC is an int8 x int8 dot product (the input offset
  -zp_x, the recurrent one -zp_h; bias only on the input side) requantized to int16 at 2^-12
  (multiplier s_x s_w / 2^-12), the two added with int16 saturation; act is the int16
  Logistic (input, forget, output gates) or Tanh (cell gate), Q3.12 in, Q0.15 out. In 16x8
  the dot products are int16 x int8 summed in int64 (with the int64 bias) and requantized by
  the int64 MultiplyByQuantizedMultiplier (multiplier rounded to 16 bits), as TFLM's 16x8 FC;
- c = sat16(sat16(f c 2^-15 / 1) + sat16(i g 2^-30 / s_c)), each product requantized by its
  multiplier, then clipped to +-cell_clip / s_c when cell_clip > 0;
- h = sat(tanh(c) o 2^-30 / s_h + zp_h) to int8 (int16 in 16x8), tanh(c) being the int16
  Tanh of c rescaled from s_c to 2^-12 (multiplier 3 and a rounding right shift when
  s_c < 2^-12, else 3 << shift).
Gates are computed in the order forget, input, cell, then the cell update, output, hidden.
Kernels: lstm_s8 and lstm_s16 (one template; state and gate buffers in their scratch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tinyq.ir import QParams, Tensor
from tinyq.ops import OpDef, OverTime, Signature, State, Unsupported, register
from tinyq.ops.common import FLOAT, INT8, INT16, INTEGER_RANGES, NUMPY_TYPES, count, expect
from tinyq.ops.logistic import SigmoidLutParams, logistic_s16
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
    sequence_sizes,
    state_args,
    stateful_kernel,
)
from tinyq.ops.tanh import tanh_s16

GATES = ("input", "forget", "cell", "output")  # TFLite's order of weights and biases
TANH_CODE = 4  # TFLite's ActivationFunctionType.TANH
# TFLite's operand slots of the LSTM variants TFLM refuses: present, they are peephole (9-11),
# projection (16, 17) or layer norm (20-23); absent, slot 1 (input-to-input weights) is CIFG.
VARIANT_SLOTS = {9: "peephole", 10: "peephole", 11: "peephole", 16: "projection", 17: "projection"} | {
    slot: "layer-norm" for slot in range(20, 24)
}
INPUT_GATE_SLOT = 1
HIDDEN_SLOT, CELL_SLOT = 18, 19
MIN_CELL_PEAK = 2.0**-8  # a cell state that never leaves zero still gets a usable scale


@dataclass(frozen=True)
class UnidirectionalSequenceLstm:
    cell_scale: float | None = None  # of the int16 cell state (zero point 0); None in a float graph
    cell_clip: float = 0.0  # |c| clipped to this (0: no clipping)
    time_major: bool = False
    streaming: bool = False  # the state persists from call to call (tinyq_reset clears it)


@dataclass(frozen=True)
class LstmGate:
    input_multiplier: int
    input_shift: int
    recurrent_multiplier: int
    recurrent_shift: int


@dataclass(frozen=True)
class LstmParams:
    gates: tuple[LstmGate, ...]  # in GATES order
    input_offset: int
    hidden_offset: int
    hidden_zero_point: int
    forget_multiplier: tuple[int, int]  # f x c -> c
    input_multiplier: tuple[int, int]  # i x g -> c
    output_multiplier: tuple[int, int]  # tanh(c) x o -> h
    cell_tanh: SigmoidLutParams  # c (at its scale) into the int16 Tanh
    quantized_cell_clip: int  # 0: none


def cell_tanh_params(cell_scale: float) -> SigmoidLutParams:
    """TFLM's lstm_internal::Tanh for the cell state: c at 2^p brought to Q3.12 for the table."""
    power = round(math.log2(cell_scale))  # TFLM's CheckedLog2, result used whether exact or not
    shift = 15 + power - 3
    return SigmoidLutParams(3, -shift) if shift < 0 else SigmoidLutParams(0, shift)


@register
class UnidirectionalSequenceLstmOp(OpDef):
    attrs = UnidirectionalSequenceLstm
    name = "UNIDIRECTIONAL_SEQUENCE_LSTM"
    over_time = OverTime.RECURRENT
    # A float LSTM also outputs its cell state at every step, for calibration to range it; the
    # quantized op drops it (the state lives in the kernel).
    signatures = (
        Signature((INT8,) + (INT8,) * 8 + ("int32",) * 4, (INT8,)),
        Signature((INT16,) + (INT8,) * 8 + ("int64",) * 4, (INT16,)),
        Signature((FLOAT,) * 13, (FLOAT, FLOAT)),
    )
    state_outputs = (1,)

    @staticmethod
    def sizes(a, x) -> tuple[int, int, int]:
        """(batch, time steps, features) of the input."""
        return sequence_sizes(a.time_major, x.shape)

    def check(self, a, ins, outs):
        x, y = ins[0], outs[0]
        count(ins, outs, 13, 2 if x.dtype == FLOAT else 1)
        check_layer(x, y, GATES, ins[1:5], ins[5:9], ins[9:13], a.time_major)
        expect(a.cell_clip >= 0, f"cell clip {a.cell_clip} is negative")
        if x.dtype == FLOAT:
            expect(outs[1].shape == y.shape, f"cell state output {outs[1].shape} differs from {y.shape}")
            return
        expect(a.cell_scale is not None and 0 < a.cell_scale < np.inf, f"cell state scale {a.cell_scale}")

    def params(self, a, ins, outs):
        x, y = ins[0], outs[0]
        gates = []
        for w_in, w_rec in zip(ins[1:5], ins[5:9]):
            m_in = product_multiplier(x.qparams.s, w_in.qparams.s, GATE_INPUT_SCALE)
            m_rec = product_multiplier(y.qparams.s, w_rec.qparams.s, GATE_INPUT_SCALE)
            gates.append(LstmGate(*m_in, *m_rec))
        clip = min(max(float(a.cell_clip) / float(np.float32(a.cell_scale)), -32768.0), 32767.0) if a.cell_clip else 0
        return LstmParams(
            tuple(gates),
            -x.qparams.zp,
            -y.qparams.zp,
            y.qparams.zp,
            product_multiplier(GATE_OUTPUT_SCALE, a.cell_scale, a.cell_scale),
            product_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, a.cell_scale),
            product_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, y.qparams.s),
            cell_tanh_params(a.cell_scale),
            int(clip),  # TFLM's static_cast<int16_t>: toward zero
        )

    def reference(self, a, p, ins, in_tensors, outs):
        return self.reference_with_state(a, p, ins, in_tensors, outs, State())

    def reference_with_state(self, a, p, ins, in_tensors, outs, state):
        x, kind = ins[0].astype(np.int64), outs[0].dtype
        wide = kind == INT16
        if a.time_major:  # (n, time, batch, features) -> (n, batch, time, features)
            x = x.transpose(0, 2, 1, 3)
        w_in, w_rec, biases = ins[1:5], ins[5:9], ins[9:13]
        n, batch, steps, _ = x.shape
        units = w_in[0].shape[0]
        fresh = (np.full((n, batch, units), p.hidden_zero_point, np.int64), np.zeros((n, batch, units), np.int64))
        h, c = state.carried(outs[0].name, a.streaming, fresh)
        out = np.empty((n, batch, steps, units), NUMPY_TYPES[kind])

        def gate(g, xt, h, activation):
            q = p.gates[g]
            a_in = fc_q312(xt, p.input_offset, w_in[g], biases[g], (q.input_multiplier, q.input_shift), wide)
            a_rec = fc_q312(h, p.hidden_offset, w_rec[g], None, (q.recurrent_multiplier, q.recurrent_shift), wide)
            return activation(np.clip(a_in + a_rec, *INT16_RANGE), SIGMOID_GATE).astype(np.int64)

        for t in range(steps):
            xt = x[:, :, t]
            f = gate(1, xt, h, logistic_s16)
            i = gate(0, xt, h, logistic_s16)
            g = gate(2, xt, h, tanh_s16)
            c = np.clip(mul16(f, c, p.forget_multiplier) + mul16(i, g, p.input_multiplier), *INT16_RANGE)
            if p.quantized_cell_clip:
                c = np.clip(c, -p.quantized_cell_clip, p.quantized_cell_clip)
            o = gate(3, xt, h, logistic_s16)
            cell = tanh_s16(c, p.cell_tanh).astype(np.int64)
            h = mul16(cell, o, p.output_multiplier, *INTEGER_RANGES[kind], p.hidden_zero_point)
            out[:, :, t] = h
        state.keep(outs[0].name, a.streaming, (h, c))
        return out.transpose(0, 2, 1, 3) if a.time_major else out

    def forward(self, tf, op, graph, xs):
        a, y = op.attrs, graph[op.outputs[0]]
        x, w_in, w_rec, biases = xs[0], xs[1:5], xs[5:9], xs[9:13]
        if a.time_major:
            x = tf.transpose(x, (1, 0, 2))
        steps, features = graph[op.inputs[0]].shape[0 if a.time_major else 1], graph[op.inputs[0]].shape[2]
        x = tf.reshape(x, (-1, steps, features))
        h = c = tf.zeros((tf.shape(x)[0], y.shape[-1]), x.dtype)
        hs, cs = [], []
        for t in range(steps):
            z = [
                tf.matmul(x[:, t], w_in[g], transpose_b=True) + tf.matmul(h, w_rec[g], transpose_b=True) + biases[g]
                for g in range(4)
            ]
            c = tf.sigmoid(z[1]) * c + tf.sigmoid(z[0]) * tf.tanh(z[2])
            if a.cell_clip:
                c = tf.clip_by_value(c, -a.cell_clip, a.cell_clip)
            h = tf.sigmoid(z[3]) * tf.tanh(c)
            hs.append(h)
            cs.append(c)

        def sequence(values):
            seq = tf.stack(values, axis=1)
            return tf.reshape(tf.transpose(seq, (1, 0, 2)) if a.time_major else seq, (-1,) + y.shape[1:])

        return sequence(hs), sequence(cs)

    def quantize(self, op, graph, context):
        """Each weight matrix per-tensor symmetric int8 over its largest magnitude (TFLM's LSTM
        takes no other), the biases int32 (int64 beside int16 activations) at input scale x
        input weight scale, and the cell state int16 at the power of two that covers its
        calibrated extremes (as the TFLite converter chooses it); the cell state output is
        dropped."""
        x_scale = context.qparams[op.inputs[0]].s
        weight_scales = quantize_weights(context, graph, op.inputs[1:9])
        bias_dtype = "int64" if context.dtype == INT16 else "int32"
        for name, w_scale in zip(op.inputs[9:13], weight_scales):
            quantize_bias(context, graph, name, x_scale * w_scale, bias_dtype)
        cell = context.qparams[op.outputs[1]]
        lo, hi = INTEGER_RANGES[context.tensors[op.outputs[1]].dtype]
        peak = max(abs((lo - cell.zp) * cell.s), abs((hi - cell.zp) * cell.s), MIN_CELL_PEAK)
        del context.tensors[op.outputs[1]]
        cell_scale = 2.0 ** math.ceil(math.log2(peak)) / 32768.0
        return [replace(op, attrs=replace(op.attrs, cell_scale=cell_scale), outputs=op.outputs[:1])]

    def macs(self, op, graph):
        x, units = graph[op.inputs[0]], graph[op.inputs[1]].shape[0]
        rows = x.size // x.shape[-1]
        return rows * 4 * units * (x.shape[-1] + units)

    # --- C ------------------------------------------------------------------------------
    def buffers(self, op, graph) -> tuple[int, int]:
        """(scratch, state) bytes: widened x and h and five int16 gate buffers; the cell states
        (int16) and hidden states (int8, or int16 in 16x8)."""
        batch, _, features = self.sizes(op.attrs, graph[op.inputs[0]])
        units = graph[op.inputs[1]].shape[0]
        hidden_bytes = np.dtype(NUMPY_TYPES[graph[op.outputs[0]].dtype]).itemsize
        return pairs_bytes(features) + pairs_bytes(units) + 5 * 2 * units, (2 + hidden_bytes) * batch * units

    def kernel(self, op, graph, fast):
        wide = graph[op.inputs[0]].dtype == INT16
        name = "lstm_s16" if wide else "lstm_s8"
        return stateful_kernel(name, *self.buffers(op, graph), op.attrs.streaming, "lstm", {"wide": wide})

    def lower(self, ctx, kernel):
        p, a = ctx.params, ctx.op.attrs
        batch, steps, features = self.sizes(a, ctx.tensor(0))
        units = ctx.tensor(1).shape[0]
        wide = ctx.tensor(0).dtype == INT16
        gates = []
        for g, q in enumerate(p.gates):
            w_in, b_in = fc_arrays(ctx, 1 + g, 9 + g, p.input_offset, wide)
            w_rec, b_rec = fc_arrays(ctx, 5 + g, None, p.hidden_offset, wide)
            gates.append(
                {
                    "input_multiplier": q.input_multiplier,
                    "input_shift": q.input_shift,
                    "recurrent_multiplier": q.recurrent_multiplier,
                    "recurrent_shift": q.recurrent_shift,
                    "input_weights": w_in,
                    "recurrent_weights": w_rec,
                    "input_bias": b_in,
                    "recurrent_bias": b_rec,
                }
            )
        return {
            "dims": [batch, steps, features, units, int(a.time_major)],
            "hidden_zero_point": p.hidden_zero_point,
            "forget_multiplier": list(p.forget_multiplier),
            "input_multiplier": list(p.input_multiplier),
            "output_multiplier": list(p.output_multiplier),
            "cell_tanh": [p.cell_tanh.input_multiplier, p.cell_tanh.input_left_shift],
            "cell_clip": p.quantized_cell_clip,
            "gates": gates,
            "input": ctx.input(),
            "output": ctx.output(),
        } | state_args(ctx, kernel, self.buffers(ctx.op, ctx.graph)[0])

    # --- TFLite -------------------------------------------------------------------------
    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "UnidirectionalSequenceLSTMOptions")
        if len(inputs) != 24:
            raise Unsupported(f"{len(inputs)} operands; TFLite Micro's LSTM takes 24")
        variants = [v for slot, v in VARIANT_SLOTS.items() if inputs[slot] >= 0]
        if inputs[INPUT_GATE_SLOT] < 0:
            variants.append("CIFG (coupled input and forget gates)")
        if variants:
            raise Unsupported(f"the {variants[0]} LSTM variant; TFLite Micro runs the standard LSTM only")
        if o.FusedActivationFunction() != TANH_CODE:
            raise Unsupported(f"cell activation {o.FusedActivationFunction()}; tinyq implements tanh (code 4)")
        if o.DiagonalRecurrentTensors():
            raise Unsupported("diagonal recurrent weights")
        hidden, cell = r.peek(inputs[HIDDEN_SLOT]), r.peek(inputs[CELL_SLOT])
        out = r.tensor(outputs[0])
        operands = [inputs[0], *inputs[1:9], *inputs[12:16]]
        if out.dtype == FLOAT:  # the IR's float LSTM also outputs its cell state, for calibration
            attrs = UnidirectionalSequenceLstm(None, float(o.CellClip()), bool(o.TimeMajor()))
            cells = r.add(Tensor(f"{out.name}/cell_state", out.shape, FLOAT))
            return attrs, operands, [outputs[0], cells]
        if hidden.qparams != out.qparams:
            raise Unsupported(f"hidden state quantization {hidden.qparams} differs from the output's {out.qparams}")
        if cell.dtype != "int16" or cell.qparams is None or cell.qparams.zp != 0:
            raise Unsupported(f"cell state {cell.name!r} must be symmetric int16 (TFLite Micro's integer LSTM)")
        attrs = UnidirectionalSequenceLstm(cell.qparams.s, float(o.CellClip()), bool(o.TimeMajor()))
        return attrs, operands

    def write_tflite(self, writer, op):
        a = op.attrs
        x, y = writer.graph[op.inputs[0]], writer.graph[op.outputs[0]]
        batch, _, _ = self.sizes(a, x)
        units = writer.graph[op.inputs[1]].shape[0]
        hidden = writer.variable(f"{op.name}/hidden_state", (batch, units), y.dtype, y.qparams)
        cell = writer.variable(f"{op.name}/cell_state", (batch, units), "int16", QParams.per_tensor(a.cell_scale))
        t = [writer.tensor(n) for n in op.inputs]
        operands = [t[0], *t[1:9], -1, -1, -1, *t[9:13], -1, -1, hidden, cell, -1, -1, -1, -1]
        options = writer.options(
            "UnidirectionalSequenceLSTMOptions",
            FusedActivationFunction=TANH_CODE,
            CellClip=float(a.cell_clip),
            TimeMajor=a.time_major,
        )
        writer.add_op(self.name, operands, [writer.tensor(op.outputs[0])], options)
