"""Per-op shape and quantization rules used by `ir.verify`.

Each rule gets the op and its input/output tensors and raises IRError with a
short reason. Rules are registered per attrs class.
"""
from __future__ import annotations

import numpy as np

from tinyq.ir import (Add, AveragePool2D, Concatenation, Conv2D, DepthwiseConv2D, Dequantize,
                      FullyConnected, IRError, Logistic, MaxPool2D, Mean, Mul, Op, Pad, Padding2D,
                      Quantize, Reshape, Softmax, Tensor)

_RULES = {}


def _rule(*kinds):
    def register(fn):
        for kind in kinds:
            _RULES[kind] = fn
        return fn
    return register


def check_op(op: Op, ins: list[Tensor], outs: list[Tensor]) -> None:
    _RULES[type(op.attrs)](op.attrs, ins, outs)


def window_out_size(size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    effective = (kernel - 1) * dilation + 1
    return (size + pad_before + pad_after - effective) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """TF/TFLite SAME padding: (out_size, pad_before, pad_after)."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return out, total // 2, total - total // 2


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise IRError(message)


def _count(ins, outs, n_in, n_out=1):
    _expect(len(ins) == n_in and len(outs) == n_out, f"expects {n_in} inputs and {n_out} outputs")


def _activation_tensor(t: Tensor, role: str) -> None:
    if t.dtype == "float32":
        _expect(t.qparams is None, f"{role} {t.name!r} is float32 but carries quantization")
        return
    _expect(t.dtype in ("int8", "int16"), f"{role} {t.name!r} has dtype {t.dtype}, expected int8 or float32")
    q = t.qparams
    _expect(q is not None and not q.per_channel_quantized,
            f"{role} {t.name!r} needs per-tensor quantization")
    _expect(-128 <= q.zp <= 127, f"{role} {t.name!r} zero point {q.zp} outside int8")
    _expect(q.s > 0 and np.isfinite(q.s), f"{role} {t.name!r} has scale {q.s}")


def _same_kind(x: Tensor, y: Tensor) -> None:
    _expect((x.dtype == "float32") == (y.dtype == "float32"),
            f"{x.name!r} ({x.dtype}) and {y.name!r} ({y.dtype}) mix float and integer")


def _weights(w: Tensor, b: Tensor, x: Tensor, channels: int, axis: int) -> None:
    _expect(w.is_constant, f"weights {w.name!r} must be constant")
    _expect(b.is_constant and b.shape == (channels,), f"bias {b.name!r} must be a constant of shape ({channels},)")
    if x.dtype == "float32":
        _expect(w.dtype == "float32" and b.dtype == "float32",
                f"float activations with {w.dtype} weights (a dynamic-range 'hybrid' model) are not supported: "
                "use the float32 or the fully int8 model")
        return
    _expect(w.dtype in ("int8", "int4"), f"weights {w.name!r} must be int8 or int4, not {w.dtype}")
    _expect(b.dtype == "int32", f"bias {b.name!r} must be int32, not {b.dtype}")
    q = w.qparams
    _expect(q is not None, f"weights {w.name!r} need quantization")
    _expect(all(z == 0 for z in q.zero_point), f"weights {w.name!r} must be symmetric (zero point 0)")
    if q.per_channel_quantized:
        _expect(q.axis == axis and len(q.scale) == channels,
                f"weights {w.name!r}: per-channel quantization must be on axis {axis} with {channels} scales")
    _expect(all(s > 0 and np.isfinite(s) for s in q.scale), f"weights {w.name!r} have a non-positive scale")


def _same_quant(x: Tensor, y: Tensor, what: str) -> None:
    if x.dtype != "float32":
        _expect(x.qparams == y.qparams, f"{what}: input and output must share quantization "
                                        f"({x.qparams} vs {y.qparams})")


def _pads(p: Padding2D):
    _expect(min(p.top, p.bottom, p.left, p.right) >= 0, "negative padding")


@_rule(Conv2D, DepthwiseConv2D)
def _conv(a, ins, outs):
    _count(ins, outs, 3)
    x, w, b = ins
    y = outs[0]
    _expect(len(x.shape) == 4 and len(w.shape) == 4, "input and weights must be 4-D")
    _pads(a.padding)
    _expect(min(a.stride + a.dilation) >= 1, "stride and dilation must be >= 1")
    n, h, wd, c = x.shape
    if isinstance(a, Conv2D):
        o, kh, kw, ci = w.shape
        _expect(ci == c, f"weights expect {ci} input channels, input has {c}")
        axis = 0
    else:
        one, kh, kw, o = w.shape
        _expect(one == 1 and a.depth_multiplier >= 1 and o == c * a.depth_multiplier,
                f"depthwise weights {w.shape} do not match {c} channels x multiplier {a.depth_multiplier}")
        axis = 3
    oh = window_out_size(h, kh, a.stride[0], a.dilation[0], a.padding.top, a.padding.bottom)
    ow = window_out_size(wd, kw, a.stride[1], a.dilation[1], a.padding.left, a.padding.right)
    _expect(y.shape == (n, oh, ow, o), f"output shape {y.shape}, expected {(n, oh, ow, o)}")
    _activation_tensor(x, "input")
    _activation_tensor(y, "output")
    _same_kind(x, y)
    _weights(w, b, x, o, axis)


@_rule(FullyConnected)
def _fc(a, ins, outs):
    _count(ins, outs, 3)
    x, w, b = ins
    y = outs[0]
    _expect(len(w.shape) == 2, "weights must be 2-D [units, depth]")
    units, depth = w.shape
    _expect(x.size % depth == 0, f"input size {x.size} is not a multiple of depth {depth}")
    _expect(y.size == x.size // depth * units and y.shape[-1] == units,
            f"output shape {y.shape} does not fit {x.size // depth} x {units}")
    _activation_tensor(x, "input")
    _activation_tensor(y, "output")
    _same_kind(x, y)
    _weights(w, b, x, units, 0)


@_rule(Add, Mul)
def _binary(a, ins, outs):
    _count(ins, outs, 2)
    try:
        shape = np.broadcast_shapes(ins[0].shape, ins[1].shape)
    except ValueError:
        raise IRError(f"shapes {ins[0].shape} and {ins[1].shape} do not broadcast") from None
    _expect(outs[0].shape == tuple(shape), f"output shape {outs[0].shape}, expected {tuple(shape)}")
    for t in ins + outs:
        _activation_tensor(t, "operand")
        _same_kind(t, outs[0])


@_rule(AveragePool2D, MaxPool2D)
def _pool(a, ins, outs):
    _count(ins, outs, 1)
    x, y = ins[0], outs[0]
    _expect(len(x.shape) == 4, "input must be 4-D NHWC")
    _pads(a.padding)
    n, h, w, c = x.shape
    oh = window_out_size(h, a.filter[0], a.stride[0], 1, a.padding.top, a.padding.bottom)
    ow = window_out_size(w, a.filter[1], a.stride[1], 1, a.padding.left, a.padding.right)
    _expect(y.shape == (n, oh, ow, c), f"output shape {y.shape}, expected {(n, oh, ow, c)}")
    _activation_tensor(x, "input")
    _same_quant(x, y, "pooling")


@_rule(Mean)
def _mean(a, ins, outs):
    _count(ins, outs, 1)
    x, y = ins[0], outs[0]
    axes = sorted({ax % len(x.shape) for ax in a.axes})
    shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
    if not a.keep_dims:
        shape = [d for i, d in enumerate(x.shape) if i not in axes]
    _expect(y.shape == tuple(shape), f"output shape {y.shape}, expected {tuple(shape)}")
    _activation_tensor(x, "input")
    _activation_tensor(y, "output")
    _same_kind(x, y)


@_rule(Reshape)
def _reshape(a, ins, outs):
    _count(ins, outs, 1)
    _expect(ins[0].size == outs[0].size, f"cannot reshape {ins[0].shape} to {outs[0].shape}")
    _activation_tensor(ins[0], "input")
    _same_quant(ins[0], outs[0], "reshape")


@_rule(Softmax, Logistic)
def _softmax(a, ins, outs):
    _count(ins, outs, 1)
    x, y = ins[0], outs[0]
    _expect(x.shape == y.shape, "input and output shapes differ")
    _activation_tensor(x, "input")
    _activation_tensor(y, "output")
    _same_kind(x, y)
    if y.dtype == "int8":
        _expect(abs(y.qparams.s - 1 / 256) < 1e-9 and y.qparams.zp == -128,
                "int8 output must have scale 1/256 and zero point -128")


@_rule(Concatenation)
def _concat(a, ins, outs):
    _expect(len(ins) >= 1 and len(outs) == 1, "expects at least one input and one output")
    y = outs[0]
    rank = len(y.shape)
    axis = a.axis % rank
    for t in ins:
        _expect(len(t.shape) == rank and all(t.shape[i] == y.shape[i] for i in range(rank) if i != axis),
                f"input {t.name!r} shape {t.shape} does not match output {y.shape} off axis {axis}")
        _activation_tensor(t, "input")
        _same_quant(t, y, "concatenation (requantize inputs first)")
    _expect(sum(t.shape[axis] for t in ins) == y.shape[axis], "concatenated sizes do not add up")


@_rule(Pad)
def _pad(a, ins, outs):
    _count(ins, outs, 1)
    x, y = ins[0], outs[0]
    _expect(len(a.paddings) == len(x.shape), "one (before, after) pair per dimension")
    _expect(all(p >= 0 for pair in a.paddings for p in pair), "negative padding")
    shape = tuple(d + p + q for d, (p, q) in zip(x.shape, a.paddings))
    _expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
    _activation_tensor(x, "input")
    _same_quant(x, y, "pad")


@_rule(Quantize)
def _quantize(a, ins, outs):
    _count(ins, outs, 1)
    x, y = ins[0], outs[0]
    _expect(x.shape == y.shape, "input and output shapes differ")
    _expect(x.dtype in ("float32", "int8") and y.dtype == "int8", "QUANTIZE maps float32 or int8 to int8")
    _activation_tensor(x, "input")
    _activation_tensor(y, "output")


@_rule(Dequantize)
def _dequantize(a, ins, outs):
    _count(ins, outs, 1)
    x, y = ins[0], outs[0]
    _expect(x.shape == y.shape, "input and output shapes differ")
    _expect(x.dtype == "int8" and y.dtype == "float32", "DEQUANTIZE maps int8 to float32")
    _activation_tensor(x, "input")
