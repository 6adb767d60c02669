"""Range setting: which real interval each tensor's 256 (or 2^b) levels cover.

Activations (asymmetric, 8 bits): min-max, mean-max (the mean over calibration batches of
each batch's minimum and maximum, what training-time observers with a moving average see),
percentile, MSE (search the clipping range that minimizes the expected quantization error
over the calibration histogram) and BN-based (data-free: beta +- 6 gamma of the BatchNorm
that produced the tensor, as in Nagel et al. 2019).
Weights (symmetric, per channel or per tensor, 2-8 bits): min-max or MSE.
"""

from __future__ import annotations

import numpy as np

from tinyq.quant.observe import TensorStats

MSE_GRID = 64
BN_SIGMAS = 6.0
MIN_SCALE = 2.0**-100  # below, float32 limits (6 / scale for a ReLU6 clamp) overflow; ops' own limits follow


def asymmetric_params(lo: float, hi: float, bits: int = 8) -> tuple[float, int]:
    """TFLite's nudged asymmetric int8 parameters: (scale, zero point); 0 is exact."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    levels = (1 << bits) - 1
    qmin = -(1 << (bits - 1))
    scale = max((hi - lo) / levels, MIN_SCALE) if hi > lo else 1e-8
    zero_point = int(np.clip(np.round(qmin - lo / scale), qmin, qmin + levels))
    return float(np.float32(scale)), zero_point


def activation_params(lo: float, hi: float, bits: int = 8) -> tuple[float, int]:
    """An activation's (scale, zero point): int8 asymmetric (TFLite's nudged parameters), int16
    symmetric with zero point 0 (TFLM's 16x8 convention: the larger magnitude at 32767)."""
    if bits == 8:
        return asymmetric_params(lo, hi)
    peak = max(abs(lo), abs(hi))
    scale = max(peak / ((1 << (bits - 1)) - 1), MIN_SCALE) if peak > 0 else 1e-8
    return float(np.float32(scale)), 0


def _histogram_mse(centers, counts, candidates) -> np.ndarray:
    """Expected squared error of quantizing the histogram with each (lo, hi) candidate."""
    errors = np.empty(len(candidates))
    for i, (lo, hi) in enumerate(candidates):
        scale, zp = asymmetric_params(lo, hi)
        q = np.clip(np.round(centers / scale) + zp, -128, 127)
        errors[i] = np.sum(counts * (centers - (q - zp) * scale) ** 2)
    return errors


def mse_range(stats: TensorStats) -> tuple[float, float]:
    if not stats.binnable or stats.hist is None:
        return stats.lo, stats.hi
    centers, counts = stats.centers(), stats.hist
    fractions = np.linspace(1.0 / MSE_GRID, 1.0, MSE_GRID)
    if stats.lo >= 0 or stats.hi <= 0:  # one-sided (e.g. after ReLU): search the far end only
        candidates = [(stats.lo * f, stats.hi) if stats.hi <= 0 else (stats.lo, stats.hi * f) for f in fractions]
    else:
        coarse = fractions[::4]
        candidates = [(stats.lo * a, stats.hi * b) for a in coarse for b in coarse]
    lo, hi = candidates[int(np.argmin(_histogram_mse(centers, counts, candidates)))]
    if stats.lo < 0 < stats.hi:  # refine around the coarse optimum
        a0, b0 = lo / stats.lo, hi / stats.hi
        fine = np.linspace(-2.0 / MSE_GRID, 2.0 / MSE_GRID, 9)
        candidates = [
            (stats.lo * min(1, max(1e-3, a0 + da)), stats.hi * min(1, max(1e-3, b0 + db))) for da in fine for db in fine
        ]
        lo, hi = candidates[int(np.argmin(_histogram_mse(centers, counts, candidates)))]
    return float(lo), float(hi)


def percentile_range(stats: TensorStats, percentile: float) -> tuple[float, float]:
    if not stats.binnable or stats.hist is None:
        return stats.lo, stats.hi
    cdf = np.cumsum(stats.hist) / stats.hist.sum()
    edges = np.linspace(stats.lo, stats.hi, len(stats.hist) + 1)
    tail = (100.0 - percentile) / 100.0
    lo = edges[int(np.searchsorted(cdf, tail))] if stats.lo < 0 else stats.lo
    hi = edges[min(int(np.searchsorted(cdf, 1.0 - tail)) + 1, len(edges) - 1)]
    return float(lo), float(hi)


def bn_range(beta: np.ndarray, gamma: np.ndarray) -> tuple[float, float]:
    return float(np.min(beta - BN_SIGMAS * gamma)), float(np.max(beta + BN_SIGMAS * gamma))


# --- weights ------------------------------------------------------------------


def symmetric_scales(w: np.ndarray, axis: int | None, bits: int, method: str) -> np.ndarray:
    """Per-channel (along `axis`) or per-tensor (axis None) symmetric scales."""
    qmax = (1 << (bits - 1)) - 1
    moved = w.reshape(1, -1) if axis is None else np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    peak = np.maximum(np.abs(moved).max(axis=1), 1e-12)
    if method != "mse":
        return (peak / qmax).astype(np.float32)
    scales = np.empty(len(moved), np.float32)
    fractions = np.linspace(0.3, 1.0, 57)
    for c, (row, top) in enumerate(zip(moved, peak)):
        candidates = top * fractions / qmax
        q = np.clip(np.round(row[None, :] / candidates[:, None]), -qmax, qmax)
        errors = np.sum((row[None, :] - q * candidates[:, None]) ** 2, axis=1)
        scales[c] = candidates[int(np.argmin(errors))]
    return scales
