"""Generated C, compiled for the host, against the numpy reference and TFLM."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.importers.tflite import parse_tflite
from tinyq.ops.conv import Conv2D

from support.cases import CASES, convert
from support.hostlib import HostModel
from support.inputs import random_inputs, structured_input
from support.tflm import tflm_outputs

RANDOM_INPUTS = 20


def assert_c_matches_ref_and_tflm(data: bytes, model: HostModel, inputs) -> None:
    mine = model.run(inputs)
    expected = ref.outputs(model.graph, inputs)
    theirs = tflm_outputs(data, inputs, len(expected))
    for c_out, r_out, t_out in zip(mine, expected, theirs):
        assert np.array_equal(c_out, r_out), f"C differs from reference in {np.sum(c_out != r_out)} elements"
        assert np.array_equal(c_out, t_out.reshape(c_out.shape)), "C differs from TFLM"


@pytest.mark.parametrize("key", ["kws", "ic", "ad"])
def test_mlperf_c_bit_exact(key, mlperf_model, anchors, tmp_path):
    data = mlperf_model(key).read_bytes()
    graph = parse_tflite(data)
    model = HostModel(graph, tmp_path)
    x = structured_input(graph[graph.inputs[0]].shape)
    assert model.run([x])[0].reshape(-1).tolist() == anchors["models"][key]["output_int8"]
    for inputs in [[x]] + random_inputs(graph, RANDOM_INPUTS, seed=7):
        assert_c_matches_ref_and_tflm(data, model, inputs)
    assert model.generated.plan.arena_bytes <= anchors["models"][key]["cortex-m4/tflm+cmsis-nn"]["arena_bytes"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corner_case_c_bit_exact(case, case_dir, tmp_path):
    data = convert(case, case_dir).read_bytes()
    graph = parse_tflite(data)
    model = HostModel(graph, tmp_path)
    for inputs in random_inputs(graph, RANDOM_INPUTS, seed=3):
        assert_c_matches_ref_and_tflm(data, model, inputs)


HOSTILE_NAMES = [
    "int",
    "a\"b'c",
    "line\nbreak",
    "*/ exit(1); /*",
    "??/",
    "caf\u00e9 \u2603",
    "a-b",
    "a_b",
    "",
    "9lives",
    "__reserved",
    "while",
]


def test_hostile_names_yield_valid_harmless_c(tmp_path):
    """Layer and tensor names are user data; the C must compile (-Werror) and run right."""
    rng = np.random.default_rng(0)
    q = ir.QParams.per_tensor
    tensors = {"x": ir.Tensor(HOSTILE_NAMES[1], (1, 4, 4, 2), "int8", q(0.05, -3))}
    ops, previous = [], HOSTILE_NAMES[1]
    for i, name in enumerate(HOSTILE_NAMES):
        w = ir.Tensor(
            f"{name}/w",
            (2, 1, 1, 2),
            "int8",
            ir.QParams.per_channel([0.02, 0.03], 0),
            rng.integers(-127, 128, (2, 1, 1, 2)).astype(np.int8),
        )
        b = ir.Tensor(f"{name}/b", (2,), "int32", None, rng.integers(-50, 50, 2).astype(np.int32))
        y = ir.Tensor(f"{name} out {i}", (1, 4, 4, 2), "int8", q(0.05 + 0.01 * i, i - 5))
        tensors |= {w.name: w, b.name: b, y.name: y}
        ops.append(ir.Op(name, Conv2D(activation=ir.Activation.RELU), (previous, w.name, b.name), (y.name,)))
        previous = y.name
    graph = ir.Graph(
        'evil "model" */', {t.name: t for t in tensors.values()}, tuple(ops), (HOSTILE_NAMES[1],), (previous,)
    )
    ir.verify(graph)
    model = HostModel(graph, tmp_path)
    source = (tmp_path / "src" / "tinyq_model.c").read_text()
    assert "exit(1)" not in source.replace("* / exit(1); / *", "")
    for _ in range(5):
        x = rng.integers(-128, 128, (1, 4, 4, 2)).astype(np.int8)
        assert np.array_equal(model.run([x])[0], ref.outputs(graph, [x])[0])
