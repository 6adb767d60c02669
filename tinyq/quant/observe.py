"""Activation statistics over calibration data: exact min/max (and the mean of each batch's
minimum and maximum), then histograms.

Two passes of the float graph: the first finds each tensor's range, the
second bins its values into fixed histograms over that range, which is what
the percentile and MSE range setters search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import ir
from tinyq.progress import progress
from tinyq.sim import FloatRunner

BINS = 2048


@dataclass
class TensorStats:
    lo: float
    hi: float
    hist: np.ndarray | None = None  # counts over BINS equal bins of [lo, hi]
    batch_lo_sum: float = 0.0  # sums over the batches of each batch's minimum and maximum
    batch_hi_sum: float = 0.0
    batches: int = 0

    def add_batch(self, lo: float, hi: float) -> None:
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        self.batch_lo_sum, self.batch_hi_sum, self.batches = (
            self.batch_lo_sum + lo,
            self.batch_hi_sum + hi,
            self.batches + 1,
        )

    def mean_range(self) -> tuple[float, float]:
        """The mean over batches of each batch's minimum and maximum (mean-max)."""
        return self.batch_lo_sum / self.batches, self.batch_hi_sum / self.batches

    @property
    def binnable(self) -> bool:
        """Whether [lo, hi] holds BINS distinct float32 bin edges (a near-constant tensor, say
        1.0 +- 1e-9, does not: all its values count in the first bin)."""
        return self.hi - self.lo > 4 * BINS * float(np.spacing(np.float32(max(abs(self.lo), abs(self.hi)))))

    def centers(self) -> np.ndarray:
        edges = np.linspace(self.lo, self.hi, BINS + 1)
        return (edges[:-1] + edges[1:]) / 2


def activation_tensors(graph: ir.Graph) -> list[str]:
    names = list(graph.inputs)
    names += [name for op in graph.ops for name in op.outputs]
    return names


def observe(
    graph: ir.Graph, x: np.ndarray, *, histograms: bool, batch_size: int = 128, quiet: bool = False
) -> dict[str, TensorStats]:
    names = activation_tensors(graph)
    runner = FloatRunner(graph, keep=set(names))
    stats: dict[str, TensorStats] = {}
    passes = 2 if histograms else 1
    with progress(quiet) as bar:
        task = bar.add_task("calibrating", total=passes * len(x))
        for _, values in runner.batches([x], batch_size):
            for name in names:
                v = values[name]
                lo, hi = float(v.min()), float(v.max())
                stats.setdefault(name, TensorStats(lo, hi)).add_batch(lo, hi)
            bar.advance(task, len(values[names[0]]))
        if histograms:
            for s in stats.values():
                s.hist = np.zeros(BINS, np.int64)
            for _, values in runner.batches([x], batch_size):
                for name in names:
                    s = stats[name]
                    if s.binnable:
                        s.hist += np.histogram(values[name], bins=BINS, range=(s.lo, s.hi))[0]
                    else:
                        s.hist[0] += values[name].size
                bar.advance(task, len(values[names[0]]))
    return stats
