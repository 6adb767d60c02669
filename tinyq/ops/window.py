"""Windowed ops (convolution, pooling): output sizes, TF's SAME padding, sliding windows.

SAME padding is computed here and nowhere else: importers turn SAME/VALID
into explicit `Padding2D`, the exporter and the float forward pass ask
`padding_mode` whether an explicit padding is one of the two.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinyq.ir import Padding2D

SAME, VALID = "SAME", "VALID"


def out_size(size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    effective = (kernel - 1) * dilation + 1
    return (size + pad_before + pad_after - effective) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """TF/TFLite SAME padding: (out_size, pad_before, pad_after)."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return out, total // 2, total - total // 2


def padding_for(mode: str, in_hw, kernel, stride, dilation=(1, 1)) -> Padding2D:
    """The explicit padding of TF's SAME or VALID."""
    if mode == VALID:
        return Padding2D()
    _, top, bottom = same_padding(in_hw[0], kernel[0], stride[0], dilation[0])
    _, left, right = same_padding(in_hw[1], kernel[1], stride[1], dilation[1])
    return Padding2D(top, bottom, left, right)


def padding_mode(padding: Padding2D, in_hw, kernel, stride, dilation=(1, 1), out_hw=None) -> str | None:
    """SAME or VALID when the explicit padding is one of them (and gives `out_hw`), else None."""
    if (padding.top, padding.bottom, padding.left, padding.right) == (0, 0, 0, 0):
        return VALID
    same_hw = tuple(same_padding(in_hw[i], kernel[i], stride[i], dilation[i])[0] for i in range(2))
    if padding == padding_for(SAME, in_hw, kernel, stride, dilation) and out_hw in (None, same_hw):
        return SAME
    return None


def nonnegative(p: Padding2D) -> bool:
    return min(p.top, p.bottom, p.left, p.right) >= 0


def windows(x, kernel, stride, dilation, padding: Padding2D, out_hw, pad_value):
    """Sliding windows over NHWC `x`: returns (N, OH, OW, KH, KW, C).

    Positions outside the image read `pad_value`; TFLM skips them instead,
    which callers reproduce by padding with a value that contributes nothing.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    n, h, w, c = x.shape
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    need_h, need_w = (oh - 1) * sh + eff_h, (ow - 1) * sw + eff_w
    xp = np.pad(
        x,
        (
            (0, 0),
            (padding.top, max(need_h - h - padding.top, 0)),
            (padding.left, max(need_w - w - padding.left, 0)),
            (0, 0),
        ),
        constant_values=pad_value,
    )
    win = sliding_window_view(xp, (eff_h, eff_w), axis=(1, 2))
    win = win[:, : need_h - eff_h + 1 : sh, : need_w - eff_w + 1 : sw, :, ::dh, ::dw]
    return win.transpose(0, 1, 2, 4, 5, 3)


def tf_explicit_pad(tf, x, p: Padding2D):
    """Zero padding in TensorFlow (the float forward pass pads, then runs VALID)."""
    if (p.top, p.bottom, p.left, p.right) == (0, 0, 0, 0):
        return x
    return tf.pad(x, [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]])
