"""What the recurrent ops (UNIDIRECTIONAL_SEQUENCE_LSTM, TINYQ_GRU, TINYQ_SIMPLE_RNN) share: the
gate arithmetic of TFLite Micro's integer LSTM and the quantization of their weights.

A gate's pre-activation is the int16 sum of int8 x int8 dot products, each requantized to
Q3.12 (scale 2^-12, saturating at +-8, beyond which sigmoid and tanh are flat in int16); the
int16 Logistic and Tanh take Q3.12 to Q0.15. Weights are per-tensor symmetric int8 (TFLM's
LSTM takes no other), biases int32 at the scale of the activation they are added to."""

from __future__ import annotations

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import IRError, QParams, Tensor
from tinyq.ops import Kernel
from tinyq.ops.common import FLOAT, INT8, INT16_MAX, INT16_MIN, activation_tensor, expect
from tinyq.ops.logistic import SIGMOID_TABLE_U16, SigmoidLutParams

GATE_INPUT_SCALE = 2.0**-12  # Q3.12: the FC outputs, the input of the gate nonlinearities
GATE_OUTPUT_SCALE = 2.0**-15  # Q0.15: the gate outputs
SIGMOID_GATE = SigmoidLutParams(0, 0)  # Logistic and Tanh of Q3.12 (multiplier 3, no shift)
INT16_RANGE = (INT16_MIN, INT16_MAX)


def product_multiplier(s1: float, s2: float, out: float) -> tuple[int, int]:
    """TFLM's CreateInterGateMulParams: s1 s2 / out in double, quantized."""
    return fx.quantize_multiplier(float(s1) * float(s2) / float(out))


def fc_q312(x, offset: int, w, bias, multiplier: tuple[int, int], wide: bool = False):
    """(x + offset) . w^T (+ bias) requantized and saturated to int16: one FC of a gate.
    x (..., depth) int64, w (units, depth). `wide`: an int16 x, whose sum TFLM keeps in int64
    and requantizes with the int64 MultiplyByQuantizedMultiplier (its 16x8 FC)."""
    acc = (x + offset) @ w.astype(np.int64).T
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    requantize = fx.multiply_by_quantized_multiplier_int64 if wide else fx.multiply_by_quantized_multiplier
    return np.clip(requantize(acc, *multiplier), *INT16_RANGE)


def mul16(a, b, multiplier: tuple[int, int], lo: int = INT16_MIN, hi: int = INT16_MAX, offset: int = 0):
    """TFLM's MulElementwise of two symmetric int16 operands, requantized and saturated."""
    prod = fx.multiply_by_quantized_multiplier(a.astype(np.int64) * b.astype(np.int64), *multiplier)
    return np.clip(prod + offset, lo, hi)


def check_weights(weights: list[Tensor]) -> None:
    for w in weights:
        expect(w.is_constant, f"weights {w.name!r} must be constant")
        if w.dtype == FLOAT:
            continue
        q = w.qparams
        expect(
            q is not None and not q.per_channel_quantized and q.zp == 0 and q.s > 0,
            f"weights {w.name!r} must be per-tensor symmetric int8 (the recurrent kernels take no other)",
        )


def quantize_weights(context, graph, names) -> list[float]:
    """Each weight matrix per-tensor symmetric int8 over its largest magnitude; their scales."""
    scales = []
    for name in names:
        w = graph[name]
        scale = float(np.float32(max(float(np.abs(w.data).max()), 1e-30) / 127.0))
        values = np.clip(np.round(w.data / np.float32(scale)), -127, 127).astype(np.int8)
        context.set(Tensor(name, w.shape, INT8, QParams.per_tensor(scale), values))
        scales.append(scale)
    return scales


def quantize_bias(context, graph, name: str, scale: float, dtype: str = "int32") -> None:
    """int32 (int64 beside int16 activations, as TFLM's 16x8 kernels read it) at `scale`."""
    b, info = graph[name], np.iinfo(dtype)
    values = np.clip(np.round(b.data.astype(np.float64) / scale), info.min, info.max).astype(dtype)
    context.set(Tensor(name, b.shape, dtype, QParams.per_tensor(scale), values))


def sequence_sizes(time_major: bool, shape) -> tuple[int, int, int]:
    """(batch, time steps, features) of a sequence tensor."""
    first, second, features = shape
    return (second, first, features) if time_major else (first, second, features)


def fc_arrays(ctx, weights: int, bias: int | None, offset: int, wide: bool = False) -> tuple[str, str]:
    """The C arrays of one gate FC (see templates/kernels/_fc_q312.c.j2): input `weights` with
    rows zero-padded to a multiple of 4, and the bias with the input offset folded in
    (bias + offset x row sum, int32: the kernel adds the raw inputs; int64 when `wide`, for an
    int16 input, whose offset is 0)."""
    w = ctx.tensor(weights)
    units, depth = w.shape
    padded = np.zeros((units, -(-depth // 4) * 4), np.int8)
    padded[:, :depth] = w.data
    folded = offset * w.data.astype(np.int64).sum(axis=1)
    if bias is not None:
        folded = folded + ctx.tensor(bias).data
    if not wide and np.abs(folded).max(initial=0) >= 2**31:
        raise IRError(f"{w.name!r}: the bias with the input offset folded in leaves int32")
    what = ctx.weights_comment(w)
    bias_type = np.int64 if wide else np.int32
    return (
        ctx.constant(f"tq_k{weights}_{ctx.ident}", padded, "int8_t", what + ", rows padded to 4"),
        ctx.constant(
            f"tq_b{weights}_{ctx.ident}",
            folded.astype(bias_type),
            f"{np.dtype(bias_type).name}_t",
            what + ": bias + offset x row sum",
        ),
    )


def pairs_bytes(depth: int) -> int:
    """Scratch of one widened vector (tq_pairs_size)."""
    return 2 * (-(-depth // 4) * 4)


def stateful_kernel(
    name: str, buffer_bytes: int, state_bytes: int, streaming: bool, template: str = "", options=None
) -> Kernel:
    """A recurrent kernel's record: its buffers in scratch, its state in scratch too (cleared on
    every call) or, streaming, in the arena across calls."""
    return Kernel(
        name,
        template,
        options={"table": SIGMOID_TABLE_U16} | (options or {}),
        scratch_bytes=buffer_bytes + (0 if streaming else state_bytes),
        state_bytes=state_bytes if streaming else 0,
        specialized=True,
    )


def state_args(ctx, kernel: Kernel, buffer_bytes: int) -> dict:
    """Where the kernel finds its state and whether it clears it on each call."""
    if kernel.state_bytes:
        return {"state": f"(uint8_t *){ctx.state()}", "reset": 0}
    return {"state": f"((uint8_t *)ctx->buf + {buffer_bytes})", "reset": 1}


def check_layer(x: Tensor, y: Tensor, gates, w_in, w_rec, biases, time_major: bool = False) -> None:
    """The rules every recurrent op shares: a 3-D sequence in and out, per gate input weights
    [units, features] and recurrent weights [units, units] (per-tensor symmetric when integer),
    constant biases [units], per-tensor activations."""
    expect(len(x.shape) == 3, f"input {x.name!r} must be 3-D (batch, time, features), not {x.shape}")
    batch, steps, features = sequence_sizes(time_major, x.shape)
    units = w_in[0].shape[0] if len(w_in[0].shape) == 2 else -1
    expect(units > 0, f"weights {w_in[0].name!r} must be 2-D [units, features]")
    for gate, w in zip(gates, w_in):
        expect(w.shape == (units, features), f"{gate} input weights {w.name!r}: {w.shape}, need {(units, features)}")
    for gate, w in zip(gates, w_rec):
        expect(w.shape == (units, units), f"{gate} recurrent weights {w.name!r}: {w.shape}, need {(units, units)}")
    check_weights([*w_in, *w_rec])
    for b in biases:
        expect(b.is_constant and b.shape == (units,), f"bias {b.name!r} must be a constant of ({units},)")
    want = (steps, batch, units) if time_major else (batch, steps, units)
    expect(y.shape == want, f"output shape {y.shape}, need {want}")
    activation_tensor(x, "input")
    activation_tensor(y, "output")
