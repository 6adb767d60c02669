"""Range setting on distributions whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq.quant.observe import BINS, TensorStats, observe
from tinyq.quant.ranges import asymmetric_params, bn_range, mse_range, percentile_range, symmetric_scales


def stats_of(values: np.ndarray) -> TensorStats:
    lo, hi = float(values.min()), float(values.max())
    return TensorStats(lo, hi, np.histogram(values, bins=BINS, range=(lo, hi))[0])


def quant_mse(values, lo, hi):
    scale, zp = asymmetric_params(lo, hi)
    q = np.clip(np.round(values / scale) + zp, -128, 127)
    return float(np.mean((values - (q - zp) * scale) ** 2))


@pytest.mark.parametrize("lo, hi", [(-1.0, 3.0), (0.0, 6.0), (-2.5, -0.5), (0.3, 0.9)])
def test_asymmetric_params_represent_zero_exactly_and_cover_the_range(lo, hi):
    scale, zp = asymmetric_params(lo, hi)
    assert -128 <= zp <= 127 and float(zp).is_integer()  # real 0 is the code zp, exactly
    assert (-128 - zp) * scale <= min(lo, 0) + scale / 2
    assert (127 - zp) * scale >= max(hi, 0) - scale / 2


def test_observe_merges_batches_into_the_whole_range():
    """The calibration observer sees the data in batches; its range and histogram cover all of it."""
    import keras

    from tinyq.importers.keras import float_model_from_keras

    from support import keras_models

    graph = float_model_from_keras(keras_models.build(keras, "dense_softmax")).graph
    x = np.random.default_rng(0).uniform(-3, 5, (1000, 12)).astype(np.float32)
    x[617, 3], x[42, 0] = -7.5, 9.25  # the extremes sit in different batches
    stats = observe(graph, x, histograms=True, batch_size=64, quiet=True)[graph.inputs[0]]
    assert (stats.lo, stats.hi) == (-7.5, 9.25)
    assert stats.hist.sum() == x.size and stats.hist[0] >= 1 and stats.hist[-1] >= 1


def test_meanmax_is_the_mean_of_each_batchs_extremes():
    """Batches of known extremes, the last one short: mean-max averages the batches' minima and
    maxima (each batch weighing the same), min-max keeps the outermost."""
    import keras

    from tinyq.importers.keras import float_model_from_keras

    from support import keras_models

    graph = float_model_from_keras(keras_models.build(keras, "dense_softmax")).graph
    batches = [(-1.0, 2.0), (-3.0, 1.0), (-0.5, 4.0), (-2.0, 0.5)]
    sizes = [10, 10, 10, 3]
    rng = np.random.default_rng(1)
    x = []
    for (lo, hi), n in zip(batches, sizes, strict=True):
        b = rng.uniform(lo, hi, (n, 12)).astype(np.float32)
        b[0, 0], b[-1, -1] = lo, hi  # each batch's extremes exactly
        x.append(b)
    stats = observe(graph, np.concatenate(x), histograms=False, batch_size=10, quiet=True)[graph.inputs[0]]
    assert stats.batches == 4
    assert stats.mean_range() == pytest.approx((-1.625, 1.875))
    assert (stats.lo, stats.hi) == (-3.0, 4.0)


def test_meanmax_ranges_clip_the_rare_extremes(tmp_path):
    """quantize(..., meanmax) sets each activation's range from the batch means: inside the
    min-max range, the input's exactly the mean of its batches' extremes."""
    import keras

    from tinyq.data import Dataset
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.quant import parse_config, quantize

    from support import keras_models

    fm = float_model_from_keras(keras_models.build(keras, "dense_softmax"))
    x = np.random.default_rng(2).normal(0, 1, (512, 12)).astype(np.float32)
    mean = quantize(fm, Dataset(x), parse_config("meanmax"), quiet=True).ranges
    full = quantize(fm, Dataset(x), parse_config("minmax"), quiet=True).ranges
    name = fm.graph.inputs[0]
    per_batch = x.reshape(4, 128, 12)
    assert mean[name] == pytest.approx((per_batch.min(axis=(1, 2)).mean(), per_batch.max(axis=(1, 2)).mean()))
    for tensor, (lo, hi) in mean.items():
        assert full[tensor][0] <= lo <= hi <= full[tensor][1], tensor
    assert mean[name][1] < full[name][1]


def test_mse_clips_heavy_tails_and_beats_minmax():
    """For 8-bit Laplace(b=1) the MSE-optimal clip is near 9.9 b (Banner et al. 2019), inside the sample max."""
    values = np.random.default_rng(1).laplace(0, 1, 1_000_000)
    lo, hi = mse_range(stats_of(values))
    assert 7.5 < hi < 12 and -12 < lo < -7.5 and hi < 0.9 * values.max()
    assert quant_mse(values, lo, hi) < quant_mse(values, values.min(), values.max())


def test_mse_keeps_the_full_range_of_a_uniform_distribution():
    values = np.random.default_rng(2).uniform(0, 4, 200_000)  # one-sided, like after ReLU
    lo, hi = mse_range(stats_of(values))
    assert lo == pytest.approx(values.min()) and hi > 0.95 * values.max()


def test_percentile_of_a_gaussian():
    values = np.random.default_rng(3).normal(0, 1, 1_000_000)
    lo, hi = percentile_range(stats_of(values), 99.9)
    assert hi == pytest.approx(3.09, abs=0.05) and lo == pytest.approx(-3.09, abs=0.05)


def test_bn_range_is_six_sigma_of_the_widest_channel():
    lo, hi = bn_range(np.array([0.0, 1.0]), np.array([1.0, 0.5]))  # channels: [-6, 6] and [-2, 4]
    assert (lo, hi) == (-6.0, 6.0)
    assert bn_range(np.array([2.0]), np.array([0.25])) == (0.5, 3.5)


@pytest.mark.parametrize("bits", [8, 4])
def test_weight_mse_scales_never_lose_to_minmax(bits):
    w = np.random.default_rng(4).standard_t(3, size=(8, 3, 3, 16)).astype(np.float32)  # heavy tails
    qmax = (1 << (bits - 1)) - 1
    errors = {}
    for method in ("minmax", "mse"):
        s = symmetric_scales(w, 0, bits, method)
        q = np.clip(np.round(w / s[:, None, None, None]), -qmax, qmax)
        errors[method] = np.sum((w - q * s[:, None, None, None]) ** 2, axis=(1, 2, 3))
    assert np.all(errors["mse"] <= errors["minmax"] + 1e-9)
    assert errors["mse"].sum() < errors["minmax"].sum()


def test_per_tensor_weights_have_one_scale():
    w = np.random.default_rng(5).normal(0, 1, (4, 10)).astype(np.float32)
    s = symmetric_scales(w, None, 8, "minmax")
    assert s.shape == (1,) and s[0] == pytest.approx(np.abs(w).max() / 127)
