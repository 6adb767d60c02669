"""Helpers shared by the reference kernels."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinyq.ir import Padding2D


def clamp_int8(x, lo: int = -128, hi: int = 127) -> np.ndarray:
    return np.clip(x, lo, hi).astype(np.int8)


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


def windows(x, kernel, stride, dilation, padding: Padding2D, out_hw, pad_value):
    """Sliding windows over NHWC `x`: returns (N, OH, OW, KH, KW, C).

    Positions outside the image read `pad_value`; TFLM skips them instead,
    which callers reproduce by padding with a value that contributes nothing.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    n, h, w, c = x.shape
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    need_h, need_w = (oh - 1) * sh + eff_h, (ow - 1) * sw + eff_w
    xp = np.pad(x, ((0, 0), (padding.top, max(need_h - h - padding.top, 0)),
                    (padding.left, max(need_w - w - padding.left, 0)), (0, 0)),
                constant_values=pad_value)
    win = sliding_window_view(xp, (eff_h, eff_w), axis=(1, 2))
    win = win[:, :need_h - eff_h + 1:sh, :need_w - eff_w + 1:sw, :, ::dh, ::dw]
    return win.transpose(0, 1, 2, 4, 5, 3)
