"""Helpers the op modules share: rule checks, int8 clamps, fused activations, numeric twins of C."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import Activation, IRError, Tensor
from tinyq.ops import InPlace, Kernel, OpDef, OutputQuant, OverTime, Signature

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -32768, 32767
INT8 = "int8"
INT16 = "int16"
FLOAT = "float32"
INTEGER_RANGES = {"int8": (INT8_MIN, INT8_MAX), "int16": (INT16_MIN, INT16_MAX)}
NUMPY_TYPES = {"int8": np.int8, "int16": np.int16}


# --- rules ---------------------------------------------------------------------------


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise IRError(message)


def count(ins, outs, n_in: int, n_out: int = 1) -> None:
    expect(len(ins) == n_in and len(outs) == n_out, f"expects {n_in} inputs and {n_out} outputs")


def activation_tensor(t: Tensor, role: str) -> None:
    """An activation is float without quantization, or integer with per-tensor parameters:
    int8 with a zero point in int8, int16 symmetric (zero point 0, as TFLM's 16x8 kernels
    require)."""
    if t.dtype == FLOAT:
        expect(t.qparams is None, f"{role} {t.name!r} is float32 but carries quantization")
        return
    q = t.qparams
    expect(q is not None and not q.per_channel_quantized, f"{role} {t.name!r} needs per-tensor quantization")
    if t.dtype == INT16:
        expect(q.zp == 0, f"{role} {t.name!r} is int16 with zero point {q.zp}; 16x8 activations are symmetric")
    expect(INT8_MIN <= q.zp <= INT8_MAX, f"{role} {t.name!r} zero point {q.zp} outside int8")
    expect(q.s > 0 and np.isfinite(q.s), f"{role} {t.name!r} has scale {q.s}")


def index_tensor(t: Tensor, role: str) -> None:
    """An int32 tensor of indices or integer results (ARG_MAX, GATHER indices): no quantization."""
    expect(
        t.qparams is None or all(z == 0 for z in t.qparams.zero_point),
        f"{role} {t.name!r} is an {t.dtype} index tensor with a zero point",
    )


def same_quant(x: Tensor, y: Tensor, what: str) -> None:
    if x.dtype != FLOAT:
        expect(x.qparams == y.qparams, f"{what}: input and output must share quantization ({x.qparams} vs {y.qparams})")


def same_shape(x: Tensor, y: Tensor) -> None:
    expect(x.shape == y.shape, "input and output shapes differ")


def broadcast_shape(ins: list[Tensor]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*(t.shape for t in ins)))
    except ValueError:
        raise IRError(f"shapes {' and '.join(str(t.shape) for t in ins)} do not broadcast") from None


# int8, int16 (16x8) and float, one activation in and one out: the ops TFLM also runs on int16
WITH_INT16 = (Signature((INT8,), (INT8,)), Signature((INT16,), (INT16,)), Signature((FLOAT,), (FLOAT,)))


class UnaryOp(OpDef):
    """One int8 (or float) input, one output of its shape, each output element read from the
    same input element (so the kernel may write over its input)."""

    over_time = OverTime.STEP_WISE
    signatures = (Signature((INT8,), (INT8,)), Signature((FLOAT,), (FLOAT,)))
    kernel_name: str

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        same_shape(ins[0], outs[0])
        activation_tensor(ins[0], "input")
        activation_tensor(outs[0], "output")

    def kernel(self, op, graph, fast):
        return Kernel(self.kernel_name, in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        """The params' fields by name, the element count and the two buffers."""
        return asdict(ctx.params) | {"size": ctx.out.size, "input": ctx.input(), "output": ctx.output()}

    def read_tflite(self, r, op, inputs, outputs):
        return self.attrs(), inputs[:1]

    def write_tflite(self, writer, op):
        writer.add_op(self.name, [writer.tensor(op.inputs[0])], [writer.tensor(op.outputs[0])])


class Int16UnaryOp(UnaryOp):
    """A UnaryOp that TFLM also runs on int16: the int8 template rendered with `int16`."""

    signatures = WITH_INT16

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            name = self.kernel_name.removesuffix("_s8") + "_s16"
            return Kernel(name, self.kernel_name, {"int16": True}, in_place=InPlace.ELEMENTWISE)
        return super().kernel(op, graph, fast)


class ProbabilityOp(UnaryOp):
    """SOFTMAX and LOGISTIC: one input, an output of its shape in (0, 1), which int8 holds at
    scale 1/256 and zero point -128 (fixed by the kernel, as TFLM fixes it)."""

    output_quant = OutputQuant.FIXED

    def check(self, a, ins, outs):
        super().check(a, ins, outs)
        y = outs[0]
        if y.dtype == INT8:
            expect(
                abs(y.qparams.s - 1 / 256) < 1e-9 and y.qparams.zp == -128,
                "int8 output must have scale 1/256 and zero point -128",
            )

    def propagate_range(self, op, ranges):
        return 0.0, 1.0


# --- int8 arithmetic -------------------------------------------------------------------


def activation_range(activation: Activation, out: Tensor) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int8 or int16 output."""
    scale, zp = np.float32(out.qparams.s), out.qparams.zp

    def quantize(value: float) -> int:
        return zp + fx.round_half_away(float(np.float32(value) / scale))

    lo, hi = {
        Activation.NONE: (None, None),
        Activation.RELU: (0.0, None),
        Activation.RELU6: (0.0, 6.0),
        Activation.RELU_N1_TO_1: (-1.0, 1.0),
    }[activation]
    qmin, qmax = INTEGER_RANGES[out.dtype]
    return (
        qmin if lo is None else max(qmin, quantize(lo)),
        qmax if hi is None else min(qmax, quantize(hi)),
    )


def clamp_int8(x, lo: int = INT8_MIN, hi: int = INT8_MAX) -> np.ndarray:
    return np.clip(x, lo, hi).astype(np.int8)


def clamp_to(x, dtype: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """x clamped to [lo, hi] (default: the dtype's range) as the integer activation dtype."""
    qmin, qmax = INTEGER_RANGES[dtype]
    return np.clip(x, qmin if lo is None else lo, qmax if hi is None else hi).astype(NUMPY_TYPES[dtype])


def c_div(a, b):
    """C integer division (truncates toward zero)."""
    a = np.asarray(a, np.int64)
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def round_half_away_f32(v):
    """roundf(): float32 in, float32 out, ties away from zero."""
    v = np.asarray(v, np.float32)
    a = np.abs(v)
    r = np.floor(a)
    r = r + (a - r >= np.float32(0.5))
    return np.copysign(r, v).astype(np.float32)


def aligned_operands(ins, in_tensors, outs) -> list[np.ndarray]:
    """Elementwise operands as int64 with broadcast axes inserted after the sample axis
    (constants, which have no sample axis, get one of size 1)."""
    rank = len(outs[0].shape)
    operands = []
    for x, t in zip(ins, in_tensors):
        x = x[None] if t.is_constant else x
        operands.append(x.astype(np.int64).reshape((x.shape[0],) + (1,) * (rank - len(t.shape)) + t.shape))
    return operands


# --- C kernels --------------------------------------------------------------------------


def dims4(shape) -> list[int]:
    """A shape as the kernels' 4-D (n, h, w, c) dims."""
    shape = list(shape)
    if len(shape) > 4:
        raise IRError(f"tensors of rank {len(shape)} are not supported by the C kernels (at most 4)")
    return [1] * (4 - len(shape)) + shape


def broadcast_strides(shape, out_shape) -> list[int]:
    """Element strides of `shape` broadcast against `out_shape` (0 where broadcast)."""
    shape4, out4 = dims4(shape), dims4(out_shape)
    strides, step = [0] * 4, 1
    for axis in range(3, -1, -1):
        strides[axis] = 0 if shape4[axis] == 1 and out4[axis] != 1 else step
        step *= shape4[axis]
    return strides


# --- float ------------------------------------------------------------------------------


def activate(tf, x, activation: Activation):
    """A fused activation in TensorFlow."""
    if activation == Activation.RELU:
        return tf.nn.relu(x)
    if activation == Activation.RELU6:
        return tf.nn.relu6(x)
    if activation == Activation.RELU_N1_TO_1:
        return tf.clip_by_value(x, -1.0, 1.0)
    return x
