"""MEAN over any axes, int8, as TFLM computes it: (sum - count*zp_in) * multiplier * 2^shift +
zp_out, with 1/count folded into the multiplier (QuantizedMeanOrSum). The pinned TFLM takes
this one path for every set of axes and quantization: no 2-D spatial special case, and no
integer Mean when the input and output share their quantization (older sources have both).
Kernel: mean_s8 (any axes: at most three kept and three reduced loops; tinyq/ops/reduce.py).

int16 (16x8, zero points 0): TFLM's same QuantizedMeanOrSum on int16 codes, the sum in int32
(wrapping), the int32 MultiplyByQuantizedMultiplier, saturation to int16. Kernel: mean_s16
(mean_s8 rendered with `int16`), shared with SUM (tinyq/ops/reduce.py)."""

from __future__ import annotations

from dataclasses import dataclass

from tinyq.ops import register
from tinyq.ops.common import WITH_INT16
from tinyq.ops.reduce import MeanOrSumOp, MeanParams, reduced_axes

__all__ = ["Mean", "MeanOp", "MeanParams", "reduced_axes"]


@dataclass(frozen=True)
class Mean:
    axes: tuple[int, ...]
    keep_dims: bool = True


@register
class MeanOp(MeanOrSumOp):
    attrs = Mean
    name = "MEAN"
    compute_sum = False
    signatures = WITH_INT16

    def tf_reduce(self, tf):
        return tf.reduce_mean
