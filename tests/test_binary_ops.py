"""Elementwise binary ops against TFLM over random quantization: every int8 input pair.

Each row is an op kind; each trial draws the scales, zero points and fused
activation of a one-op graph (one quantization for all three tensors where the
op compares codes, as MAXIMUM does; no activation where the op has none), which
tinyq exports and TFLM runs on all 65,536
(a, b) code pairs, and once more with broadcast shapes. The integer reference,
TFLM and the host-compiled C must agree element for element. Parameter
arithmetic that is off by one in a multiplier's last bit shows here (a
converter-made model tries one quantization; this tries many).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.exporters.tflite import to_tflite
from tinyq.ops.add import Add
from tinyq.ops.maximum_minimum import Maximum, Minimum
from tinyq.ops.mul import Mul
from tinyq.ops.squared_difference import SquaredDifference
from tinyq.ops.sub import Sub

from support.hostlib import HostModel
from support.tflm import tflm_outputs


@dataclass(frozen=True)
class Row:
    attrs: type
    fused_activation: bool = True  # the attrs take a fused activation
    shared_quant: bool = False  # inputs and output share one quantization (MAXIMUM compares codes)


# Each row's trials draw from a generator seeded by the row's position here: new rows go last.
ROWS = {
    "ADD": Row(Add),
    "MUL": Row(Mul),
    "SUB": Row(Sub),
    "MAXIMUM": Row(Maximum, fused_activation=False, shared_quant=True),
    "MINIMUM": Row(Minimum, fused_activation=False, shared_quant=True),
    "SQUARED_DIFFERENCE": Row(SquaredDifference, fused_activation=False),
}
TRIALS = 64  # quantizations per op against TFLM (the reference's parameter arithmetic)
C_TRIALS = 4  # of which the host-compiled C runs too (the kernel's arithmetic)
PAIRS = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), axis=0).reshape(2, 1, -1).astype(np.int8)
BROADCAST = ((1, 4, 1, 3), (1, 1, 5, 3), (1, 4, 5, 3))


def one_op_graph(row: Row, shapes, rng) -> ir.Graph:
    q = ir.QParams.per_tensor
    scales = rng.uniform(1e-3, 0.25, 3)
    zero_points = rng.integers(-40, 40, 3)
    if row.shared_quant:
        scales, zero_points = scales[:1].repeat(3), zero_points[:1].repeat(3)
    names = ("a", "b", "y")
    tensors = {n: ir.Tensor(n, shape, "int8", q(s, z)) for n, shape, s, z in zip(names, shapes, scales, zero_points)}
    activation = ir.Activation(
        rng.choice([a.value for a in (ir.Activation.NONE, ir.Activation.RELU, ir.Activation.RELU6)])
    )
    attrs = row.attrs(activation=activation) if row.fused_activation else row.attrs()
    op = ir.Op("op", attrs, ("a", "b"), ("y",))
    return ir.verify(ir.Graph("binary", tensors, (op,), ("a", "b"), ("y",)))


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_code_pair_matches_tflm(name, tmp_path):
    rng = np.random.default_rng(list(ROWS).index(name))
    for trial in range(TRIALS):
        for shapes, inputs in (((PAIRS[0].shape,) * 3, [PAIRS[0], PAIRS[1]]), (BROADCAST, None)):
            graph = one_op_graph(ROWS[name], shapes, rng)
            if inputs is None:
                inputs = [rng.integers(-128, 128, s).astype(np.int8) for s in shapes[:2]]
            expected = ref.outputs(graph, inputs)[0]
            theirs = tflm_outputs(to_tflite(graph), inputs, 1)[0].reshape(expected.shape)
            bad = np.flatnonzero(theirs != expected)
            assert bad.size == 0, f"trial {trial}: {bad.size} elements differ from TFLM, first at {bad[0]}"
            if trial < C_TRIALS:
                c_out = HostModel(graph, tmp_path / f"{trial}_{len(shapes[0])}").run(inputs)[0]
                assert np.array_equal(c_out, expected), f"trial {trial}: C differs from the reference"
