"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN as TFLM computes them for int8."""
from __future__ import annotations

import numpy as np

from tinyq.ir import AveragePool2D, MaxPool2D, Mean
from tinyq import fixedpoint as fx
from tinyq.ref.common import c_div, clamp_int8, windows
from tinyq.ref.registry import kernel


def _pool_windows(a, x, in_tensor, out_tensor, pad_value):
    xs = x.reshape((-1,) + in_tensor.shape[1:]).astype(np.int64)
    return windows(xs, a.filter, a.stride, (1, 1), a.padding, out_tensor.shape[1:3], pad_value)


@kernel(AveragePool2D)
def average_pool(a, p, ins, in_tensors, outs):
    """Rounds the window mean half away from zero; padded cells do not count."""
    x = ins[0]
    sums = _pool_windows(a, x, in_tensors[0], outs[0], 0).sum(axis=(3, 4))
    valid = np.ones((1,) + in_tensors[0].shape[1:3] + (1,), np.int64)
    counts = windows(valid, a.filter, a.stride, (1, 1), a.padding, outs[0].shape[1:3], 0).sum(axis=(3, 4))
    half = counts // 2
    avg = np.where(sums > 0, c_div(sums + half, counts), c_div(sums - half, counts))
    return clamp_int8(avg, p.act_min, p.act_max).reshape((x.shape[0],) + outs[0].shape)


@kernel(MaxPool2D)
def max_pool(a, p, ins, in_tensors, outs):
    x = ins[0]
    m = _pool_windows(a, x, in_tensors[0], outs[0], -(1 << 20)).max(axis=(3, 4))
    return clamp_int8(m, p.act_min, p.act_max).reshape((x.shape[0],) + outs[0].shape)


@kernel(Mean)
def mean(a, p, ins, in_tensors, outs):
    x = ins[0].astype(np.int64)
    rank = len(in_tensors[0].shape)
    axes = tuple(sorted({ax % rank + 1 for ax in a.axes}))
    shifted_sum = x.sum(axis=axes) - p.input_zero_point * p.count
    out = fx.multiply_by_quantized_multiplier(shifted_sum, p.multiplier, p.shift) + p.output_zero_point
    return clamp_int8(out).reshape((x.shape[0],) + outs[0].shape)
