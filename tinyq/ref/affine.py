"""CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED as TFLM's per-channel kernels.

Accumulation runs as a float64 matrix product: every partial sum is an
integer far below 2^53, so the result is exact and BLAS-fast.
"""
from __future__ import annotations

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import Conv2D, DepthwiseConv2D, FullyConnected
from tinyq.ref.common import clamp_int8, windows
from tinyq.ref.registry import kernel


def requantize(acc, p) -> np.ndarray:
    """int32 accumulator -> int8 with per-channel (last axis) multipliers."""
    mult = np.asarray(p.multiplier, np.int64)
    shift = np.asarray(p.shift, np.int64)
    out = fx.multiply_by_quantized_multiplier(fx.wrap32(acc), mult, shift) + p.output_offset
    return clamp_int8(out, p.act_min, p.act_max)


def _exact_matmul(a, b) -> np.ndarray:
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def _batch_nhwc(x, t):
    """Fold the sample axis into the tensor's batch axis."""
    return x.reshape((-1,) + t.shape[1:]).astype(np.int64)


@kernel(Conv2D)
def conv2d(a, p, ins, in_tensors, outs):
    x, w, b = ins
    y = outs[0]
    xs = _batch_nhwc(x, in_tensors[0]) + p.input_offset
    o, kh, kw, c = w.shape
    cols = windows(xs, (kh, kw), a.stride, a.dilation, a.padding, y.shape[1:3], 0)
    n, oh, ow = cols.shape[:3]
    acc = _exact_matmul(cols.reshape(n * oh * ow, kh * kw * c), w.reshape(o, -1).T) + b
    return requantize(acc, p).reshape((x.shape[0],) + y.shape)


@kernel(DepthwiseConv2D)
def depthwise_conv2d(a, p, ins, in_tensors, outs):
    x, w, b = ins
    y = outs[0]
    xs = _batch_nhwc(x, in_tensors[0]) + p.input_offset
    _, kh, kw, cm = w.shape
    c = xs.shape[3]
    m = cm // c
    cols = windows(xs, (kh, kw), a.stride, a.dilation, a.padding, y.shape[1:3], 0)
    acc = np.einsum("nyxhwc,hwcm->nyxcm", cols.astype(np.float64),
                    w.reshape(kh, kw, c, m).astype(np.float64), optimize=True)
    acc = np.rint(acc).astype(np.int64).reshape(cols.shape[:3] + (cm,)) + b
    return requantize(acc, p).reshape((x.shape[0],) + y.shape)


@kernel(FullyConnected)
def fully_connected(a, p, ins, in_tensors, outs):
    x, w, b = ins
    units, depth = w.shape
    xs = x.reshape(-1, depth).astype(np.int64) + p.input_offset
    acc = _exact_matmul(xs, w.T) + b
    return requantize(acc, p).reshape((x.shape[0],) + outs[0].shape)
