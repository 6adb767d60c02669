"""kws, ic and ad in 16x8 (the converter's int16-activation models of their float Keras sources):
the numpy reference equals TFLM on every tensor, the host C and the Cortex-M4/M7 firmware in QEMU
equal the reference."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq import ref
from tinyq.importers.tflite import parse_tflite

from support.env import MLPERF, require_tool
from support.hostlib import HostModel
from support.inputs import random_inputs
from support.mlperf16 import convert_16x8
from support.tflm import tflm_outputs, tflm_tensors

KEYS = ["kws", "ic", "ad"]


@pytest.fixture(scope="module")
def model16(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlperf16")
    return lambda key: convert_16x8(key, MLPERF, out)


@pytest.mark.parametrize("key", KEYS)
def test_16x8_model_every_tensor_and_the_c_bit_exact(key, model16, tmp_path):
    data = model16(key).read_bytes()
    graph = parse_tflite(data)
    assert all(graph[n].dtype == "int16" for op in graph.ops for n in op.outputs)
    host = HostModel(graph, tmp_path)
    for inputs in random_inputs(graph, 3, seed=11):
        mine = ref.run(graph, inputs)
        theirs = tflm_tensors(data, inputs)
        for name, value in mine.items():
            assert np.array_equal(theirs[name].reshape(value.shape), value), f"{key}: tensor {name!r} differs"
        expected = [mine[n] for n in graph.outputs]
        assert all(np.array_equal(c, r) for c, r in zip(host.run(inputs), expected, strict=True))
        assert np.array_equal(tflm_outputs(data, inputs, 1)[0].reshape(expected[0].shape), expected[0])


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500"])
@pytest.mark.parametrize("key", KEYS)
def test_16x8_model_in_qemu_matches_the_reference(key, board, model16, tmp_path):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    graph = parse_tflite(model16(key).read_bytes())
    build(graph, get_board(board), tmp_path / "fw", source=f"{key} 16x8", log=lambda message: None)
    inputs = random_inputs(graph, 1, seed=12)[0]
    np.savez(tmp_path / "x.npz", *inputs)
    result = bench(tmp_path / "fw", emulate=True, input_path=tmp_path / "x.npz")
    assert result["bit_exact"]
    assert result["outputs"] == [o.reshape(-1).tolist() for o in ref.outputs(graph, inputs)]
