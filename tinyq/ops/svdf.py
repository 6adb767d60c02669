"""SVDF: a rank-factored filter over time (TFLite's builtin SVDF), as TFLite Micro's integer SVDF.

inputs (x [batch, input_size], the feature weights [filters, input_size], the time weights
[filters, memory], the optional int32 bias [units]); output [batch, units] with units =
filters / rank. int8 activations, per-tensor symmetric int8 feature weights and int16 time
weights (TFLM's "full integer" form). TFLM's other integer form, int8 time weights with an
int8 state, and per-channel weights (TFLM reads the first scale only) are refused.

State: TFLite's variable activation state [batch, memory x filters], one row of `memory`
slots per filter, newest last; int16, symmetric, at `state_scale`. TFLM zeros it when the
interpreter is built and keeps it from invocation to invocation. tinyq runs every invocation
from that fresh state (the state in the kernel's scratch, zeroed at every call), or, in a
streaming build (`streaming`), keeps it in the arena from call to call as TFLM does, until
tinyq_reset zeros it.

One invocation, as TFLM's EvalIntegerSvdfReference (svdf_common.cc):
- the state of every filter shifts left by one slot (the oldest dropped; TFLM shifts the whole
  buffer by one value, and the value crossing into a filter's newest slot is overwritten next);
  from the fresh zero state that moves only zeros;
- feature: for each filter f, the int32 dot product of the feature weights with x - zp_x,
  requantized (MultiplyByQuantizedMultiplier, double rounding) by s_x s_wf / s_state,
  clamped to int16, is the newest slot of the filter's state;
- time: for each filter, the int32 dot product of its state row with its time weights
  (int16 x int16 products, int32 sums that wrap);
- the bias (or 0) plus the rank consecutive filters of each unit, in int32, requantized by
  s_state s_wt / s_y, plus zp_y, clamped to int8.
Both multipliers are s1 s2 / out in double from the tensors' float32 scales, then
QuantizeMultiplier: what the pinned TFLM computes (tests/test_svdf.py pins it at scales where
float32 arithmetic, as TFLM's source reads, would round the multipliers differently).
The fused activation is kept in the file but TFLM's integer SVDF applies none: the output is
only clamped to int8. TFLM requires a bias scale within 1e-5 of s_state s_wt, and an int8
SVDF without a bias crashes its Prepare (it reads the absent bias's scale): tinyq's IR allows
no bias (zeros), and the file it writes holds zeros.
Kernel: svdf_s8 (one template; the state in its scratch, or streaming in the arena's state)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import Activation, QParams
from tinyq.ops import Kernel, OpDef, Signature, State, Unsupported, register
from tinyq.ops.common import INT8, INT16, INT16_MAX, INT16_MIN, activation_tensor, clamp_int8, expect

STATE_SLOT = 4  # TFLite's operand slot of the variable activation state
BIAS_SLOT = 3
BIAS_SCALE_TOLERANCE = 1e-5  # TFLM's Prepare: |s_bias - s_state s_wt| below this


@dataclass(frozen=True)
class Svdf:
    state_scale: float  # of the int16 activation state (zero point 0)
    rank: int = 1
    activation: Activation = Activation.NONE  # written to the file; TFLM's integer SVDF applies none
    streaming: bool = False  # the state persists from call to call (tinyq_reset clears it), as in TFLM


@dataclass(frozen=True)
class SvdfParams:
    input_zero_point: int
    feature_multiplier: int  # x . weights_feature -> state
    feature_shift: int
    output_multiplier: int  # state . weights_time -> y
    output_shift: int
    output_zero_point: int


def effective_multiplier(s1: float, s2: float, out: float) -> tuple[int, int]:
    """TFLM's effective scales: s1 s2 / out in double, quantized."""
    return fx.quantize_multiplier(float(s1) * float(s2) / float(out))


def symmetric_weights(w, dtype: str) -> None:
    q = w.qparams
    expect(w.is_constant, f"weights {w.name!r} must be constant")
    expect(
        q is not None and not q.per_channel_quantized and q.zp == 0 and q.s > 0,
        f"weights {w.name!r} must be per-tensor symmetric {dtype} (TFLite Micro's SVDF reads one scale, no zero point)",
    )


@register
class SvdfOp(OpDef):
    attrs = Svdf
    name = "SVDF"
    signatures = (
        Signature((INT8, INT8, INT16, "int32"), (INT8,)),
        Signature((INT8, INT8, INT16), (INT8,)),  # no bias
    )

    def check(self, a, ins, outs):
        expect(len(ins) in (3, 4) and len(outs) == 1, "expects 3 or 4 inputs (the bias is optional) and 1 output")
        x, w_feature, w_time, y = ins[0], ins[1], ins[2], outs[0]
        expect(len(x.shape) == 2, f"input {x.name!r} must be 2-D (batch, input size), not {x.shape}")
        batch, input_size = x.shape
        expect(len(w_feature.shape) == 2, f"feature weights {w_feature.name!r} must be 2-D [filters, input size]")
        filters = w_feature.shape[0]
        expect(
            w_feature.shape == (filters, input_size),
            f"feature weights {w_feature.name!r}: {w_feature.shape}, need ({filters}, {input_size})",
        )
        expect(
            len(w_time.shape) == 2 and w_time.shape[0] == filters and w_time.shape[1] > 0,
            f"time weights {w_time.name!r}: {w_time.shape}, need ({filters}, memory size)",
        )
        expect(a.rank > 0 and filters % a.rank == 0, f"{filters} filters are not a multiple of rank {a.rank}")
        units = filters // a.rank
        symmetric_weights(w_feature, INT8)
        symmetric_weights(w_time, INT16)
        expect(0 < a.state_scale < np.inf, f"activation state scale {a.state_scale}")
        if len(ins) == 4:
            b = ins[3]
            expect(b.is_constant and b.shape == (units,), f"bias {b.name!r} must be a constant of ({units},)")
            want = float(np.float32(a.state_scale) * np.float32(w_time.qparams.s))
            expect(
                b.qparams is not None
                and not b.qparams.per_channel_quantized
                and abs(b.qparams.s - want) < BIAS_SCALE_TOLERANCE,
                f"bias {b.name!r} scale must be the state scale x the time weights scale ({want:.6g}) as in TFLM",
            )
        expect(y.shape == (batch, units), f"output shape {y.shape}, need {(batch, units)}")
        activation_tensor(x, "input")
        activation_tensor(y, "output")

    def params(self, a, ins, outs):
        x, w_feature, w_time, y = ins[0], ins[1], ins[2], outs[0]
        feature = effective_multiplier(x.qparams.s, w_feature.qparams.s, float(np.float32(a.state_scale)))
        output = effective_multiplier(float(np.float32(a.state_scale)), w_time.qparams.s, y.qparams.s)
        return SvdfParams(x.qparams.zp, *feature, *output, y.qparams.zp)

    def reference(self, a, p, ins, in_tensors, outs):
        return self.reference_with_state(a, p, ins, in_tensors, outs, State())

    def reference_with_state(self, a, p, ins, in_tensors, outs, kept):
        x = ins[0].astype(np.int64)  # (n, batch, input size)
        w_feature, w_time = ins[1].astype(np.int64), ins[2].astype(np.int64)
        filters, memory = w_time.shape
        units = filters // a.rank
        n, batch, _ = x.shape
        state = np.zeros((n, batch, filters, memory), np.int64)
        # every filter's slots shift by one, the oldest dropped
        state[..., :-1] = kept.carried(outs[0].name, a.streaming, state)[..., 1:]
        feature = (x - p.input_zero_point) @ w_feature.T
        newest = fx.multiply_by_quantized_multiplier(feature, p.feature_multiplier, p.feature_shift)
        state[..., -1] = np.clip(newest, INT16_MIN, INT16_MAX)
        kept.keep(outs[0].name, a.streaming, state)
        per_filter = (state * w_time).sum(axis=-1)
        bias = ins[3].astype(np.int64) if len(ins) == 4 else np.zeros(units, np.int64)
        acc = fx.wrap32(bias + per_filter.reshape(n, batch, units, a.rank).sum(axis=-1))  # TFLM's int32 sums
        y = fx.multiply_by_quantized_multiplier(acc, p.output_multiplier, p.output_shift) + p.output_zero_point
        return clamp_int8(y)

    def macs(self, op, graph):
        batch, input_size = graph[op.inputs[0]].shape
        filters, memory = graph[op.inputs[2]].shape
        return batch * filters * (input_size + memory)

    # --- C ------------------------------------------------------------------------------
    def kernel(self, op, graph, fast):
        batch = graph[op.inputs[0]].shape[0]
        filters, memory = graph[op.inputs[2]].shape
        state = 2 * batch * filters * memory  # int16
        streaming = op.attrs.streaming
        return Kernel("svdf_s8", scratch_bytes=0 if streaming else state, state_bytes=state if streaming else 0)

    def lower(self, ctx, kernel):
        p, a = ctx.params, ctx.op.attrs
        batch, input_size = ctx.tensor(0).shape
        filters, memory = ctx.tensor(2).shape
        return {
            "dims": [batch, input_size, filters, memory, a.rank],
            "input_zero_point": p.input_zero_point,
            "feature_multiplier": [p.feature_multiplier, p.feature_shift],
            "output_multiplier": [p.output_multiplier, p.output_shift],
            "output_zero_point": p.output_zero_point,
            "weights_feature": ctx.operand(1),
            "weights_time": ctx.operand(2),
            "bias": ctx.operand(3) if len(ctx.op.inputs) == 4 else "NULL",
            "input": ctx.input(),
            "output": ctx.output(),
            "state": f"(int16_t *){ctx.state()}" if a.streaming else "(int16_t *)ctx->buf",
            "reset": int(not a.streaming),
            "state_bytes": 2 * batch * filters * memory,
        }

    # --- TFLite -------------------------------------------------------------------------
    def read_tflite(self, r, op, inputs, outputs):
        o = r.options(op, "SVDFOptions")
        if len(inputs) != 5:
            raise Unsupported(f"{len(inputs)} operands; TFLite's SVDF takes 5")
        state = r.peek(inputs[STATE_SLOT])
        if state.dtype != INT16 or state.qparams is None or state.qparams.zp != 0:
            raise Unsupported(
                f"activation state {state.name!r} must be symmetric int16 (tinyq implements TFLM's int16-state SVDF)"
            )
        attrs = Svdf(state.qparams.s, int(o.Rank()), r.activation(o.FusedActivationFunction()))
        present = [inputs[0], inputs[1], inputs[2]] + ([inputs[BIAS_SLOT]] if inputs[BIAS_SLOT] >= 0 else [])
        return attrs, present

    @staticmethod
    def zero_bias(writer, op) -> int:
        """TFLM's integer Prepare reads the bias scale without checking for a bias (a bias-less
        int8 SVDF crashes it), so the file carries zeros at the scale it requires."""
        units = writer.graph[op.inputs[1]].shape[0] // op.attrs.rank
        scale = float(np.float32(op.attrs.state_scale) * np.float32(writer.graph[op.inputs[2]].qparams.s))
        return writer.constant(f"{op.name}/zero_bias", np.zeros(units, np.int32), "int32", QParams.per_tensor(scale))

    def write_tflite(self, writer, op):
        a = op.attrs
        batch = writer.graph[op.inputs[0]].shape[0]
        filters, memory = writer.graph[op.inputs[2]].shape
        state = writer.variable(
            f"{op.name}/activation_state", (batch, memory * filters), INT16, QParams.per_tensor(a.state_scale)
        )
        t = [writer.tensor(n) for n in op.inputs]
        bias = t[3] if len(t) == 4 else self.zero_bias(writer, op)
        options = writer.options(
            "SVDFOptions", Rank=a.rank, FusedActivationFunction=writer.activation_code(a.activation)
        )
        writer.add_op(self.name, [t[0], t[1], t[2], bias, state], [writer.tensor(op.outputs[0])], options)
