"""16x8 PRELU (int16 input and output, int8 alpha): the converter refuses PRELU in 16x8 mode, so
hand-built one-op graphs, written as .tflite, check the reference against TFLM and the host C
against the reference, saturation and int16 extremes included."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.exporters.tflite import write_flatbuffer
from tinyq.ops.prelu import Prelu

from support.hostlib import HostModel
from support.tflm import tflm_outputs

# x shape, alpha shape, input scale, alpha scale, alpha zero point, output scale
ROWS = [
    ((1, 4, 5, 3), (1, 1, 3), 0.0004, 0.005, 0, 0.0003),
    ((1, 3, 5, 2), (3, 5, 2), 0.0002, 0.004, -20, 0.0005),
    ((1, 6, 4), (4,), 0.001, 0.01, 7, 0.00009),  # output/input ratio ~11: saturates
]


@pytest.mark.parametrize("row", ROWS, ids=[f"alpha{r[1]}" for r in ROWS])
def test_int16_prelu_matches_tflm(row, tmp_path):
    x_shape, alpha_shape, s_in, s_alpha, zp_alpha, s_out = row
    rng = np.random.default_rng(len(alpha_shape))
    q = ir.QParams.per_tensor
    alpha = rng.integers(-128, 128, alpha_shape).astype(np.int8)
    tensors = {
        "x": ir.Tensor("x", x_shape, "int16", q(s_in, 0)),
        "alpha": ir.Tensor("alpha", alpha_shape, "int8", q(s_alpha, zp_alpha), alpha),
        "y": ir.Tensor("y", x_shape, "int16", q(s_out, 0)),
    }
    graph = ir.verify(ir.Graph("g", tensors, (ir.Op("prelu_0", Prelu(), ("x", "alpha"), ("y",)),), ("x",), ("y",)))
    extremes = [-32768, -32767, 32767, 0, -1, 1]
    x = np.concatenate([extremes, rng.integers(-32768, 32768, int(np.prod(x_shape)) - len(extremes))])
    x = x.astype(np.int16).reshape(x_shape)
    expected = ref.outputs(graph, [x])[0]
    assert np.array_equal(tflm_outputs(write_flatbuffer(graph), [x], 1)[0].reshape(expected.shape), expected)
    assert np.array_equal(HostModel(graph, tmp_path).run([x])[0], expected)
    if row is ROWS[2]:
        assert (np.abs(expected.astype(np.int32)) == 32767).any() or (expected == -32768).any()
