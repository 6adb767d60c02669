"""ELU (alpha 1), int8 through the 256-entry table TFLM's Prepare fills in float32: each code
dequantized, exp(x) - 1 below zero, requantized with roundf. Kernel: lut_s8.

The table's float arithmetic is TFLM's to the bit: float32 products and roundf, and expf from
the C library TFLM calls (glibc's expf is not correctly rounded: about 1 float in 10^4 differs
by an ulp from exp in double rounded to float32)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from dataclasses import dataclass

import numpy as np

from tinyq.ops import register
from tinyq.ops.common import INT8_MAX, INT8_MIN, round_half_away_f32
from tinyq.ops.transcendental import INT8_CODES, TableOp, TableParams

INT32_LIMIT = 2.0**31


@dataclass(frozen=True)
class Elu:
    pass


@functools.cache
def _libm_expf():
    name = ctypes.util.find_library("m")
    if name is None:
        return None
    try:
        expf = ctypes.CDLL(name).expf
    except (OSError, AttributeError):
        return None
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return expf


def expf(x: np.ndarray) -> np.ndarray:
    """C's expf on float32 values: the C library's own where it can be called (what TFLM computes
    with), else exp in double rounded to float32 (the correctly rounded value)."""
    x = np.asarray(x, np.float32)
    libm = _libm_expf()
    if libm is None:
        return np.exp(x.astype(np.float64)).astype(np.float32)
    return np.array([libm(float(v)) for v in x.reshape(-1)], np.float32).reshape(x.shape)


def float_to_int32(v: np.ndarray) -> np.ndarray:
    """static_cast<int32_t>(float) as x86 computes it: truncation, and INT32_MIN (the 'integer
    indefinite') for values out of range; TFLM's table is built with it."""
    v = np.asarray(v, np.float64)
    inside = (v > -INT32_LIMIT - 1) & (v < INT32_LIMIT)
    return np.where(inside, np.trunc(np.where(inside, v, 0.0)), -INT32_LIMIT).astype(np.int64)


def lut_int8(in_scale: float, in_zp: int, out_scale: float, out_zp: int, transform) -> tuple[int, ...]:
    """TFLM's int8 LUTPopulate, all in float32: (code - zp) x scale, transform, x (1 / out scale),
    roundf, + zero point, truncated to int32 and clamped to int8. `transform` maps float32 arrays."""
    inverse_scale = np.float32(1) / np.float32(out_scale)
    dequantized = np.float32(in_scale) * (INT8_CODES - in_zp).astype(np.float32)
    rescaled = round_half_away_f32(np.asarray(transform(dequantized), np.float32) * inverse_scale)
    quantized = float_to_int32(rescaled + np.float32(out_zp))
    return tuple(int(v) for v in np.clip(quantized, INT8_MIN, INT8_MAX))


def elu_f32(x: np.ndarray) -> np.ndarray:
    """TFLM's transform: value < 0 ? expf(value) - 1.0f : value."""
    return np.where(x < 0, expf(x) - np.float32(1), x).astype(np.float32)


@register
class EluOp(TableOp):
    attrs = Elu
    name = "ELU"

    def params(self, attrs, ins, outs):
        x, y = ins[0].qparams, outs[0].qparams
        return TableParams(lut_int8(x.s, x.zp, y.s, y.zp, elu_f32))

    def forward(self, tf, op, graph, xs):
        return tf.nn.elu(xs[0])

    def propagate_range(self, op, ranges):
        if ranges[0] is None:
            return None
        lo, hi = ranges[0]
        return (math.expm1(lo) if lo < 0 else lo), (math.expm1(hi) if hi < 0 else hi)
