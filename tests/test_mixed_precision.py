"""Mixed precision (`--a16`): int16 activations on some layers, int8 on the rest, QUANTIZE
int8 <-> int16 at the boundaries. Each mixed graph deploys bit-exact (host C and TFLM equal to
the integer reference); named layers get exactly the precision asked for; `auto` keeps the
promise its notes make, measured here independently on held-out data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_quantize import calibration, float_model
from test_quantize_int16 import output_sqnr

from tinyq import ir, ref
from tinyq.analysis import bits_of
from tinyq.codegen.lower import choose_kernels
from tinyq.data import Dataset
from tinyq.errors import TinyqError
from tinyq.exporters.tflite import to_tflite
from tinyq.plan import plan_graph
from tinyq.quant import parse_config, quantize
from tinyq.quant.precision import with_int16

from support import keras_models
from support.cli import assert_clean_error, tinyq
from support.env import require_tool
from support.hostlib import HostModel
from support.inputs import random_inputs
from support.tflm import tflm_outputs


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def arena(graph: ir.Graph) -> int:
    return plan_graph(graph, choose_kernels(graph)).arena_bytes


def _dtypes(graph: ir.Graph) -> dict[str, str]:
    return {op.name: graph[op.outputs[0]].dtype for op in graph.ops}


def _boundaries(graph: ir.Graph) -> list[tuple[str, str]]:
    return [(graph[op.inputs[0]].dtype, graph[op.outputs[0]].dtype) for op in graph.ops if op.kind == "QUANTIZE"]


def assert_deploys_bit_exact(graph: ir.Graph, workdir) -> None:
    data, host = to_tflite(graph), HostModel(graph, workdir)
    for inputs in random_inputs(graph, 4, seed=3):
        expected = ref.outputs(graph, inputs)
        assert all(np.array_equal(h, e) for h, e in zip(host.run(inputs), expected))
        assert np.array_equal(tflm_outputs(data, inputs, 1)[0].reshape(expected[0].shape), expected[0])


# (model, layers named int16 by their position among the float ops, the QUANTIZE ops expected)
NAMED = [
    ("small_cnn", [0], [("int16", "int8")]),  # the input itself is int16 (its one reader is)
    ("small_cnn", [1], [("int8", "int16"), ("int16", "int8")]),  # the max pool follows the depthwise
    ("small_cnn", [6], [("int8", "int16"), ("int16", "int8")]),  # the dense into an int8 softmax...
    ("small_cnn", [6, 7], [("int8", "int16")]),  # ... or into an int16 one (the output is int16)
    ("add_relu", [0], [("int8", "int16"), ("int16", "int8")]),  # one input read at both precisions
    ("concatenate", [1], [("int8", "int16"), ("int8", "int16")]),  # both of its inputs
    ("activation_hard_swish", [0], [("int16", "int8")]),  # HARD_SWISH has no 16x8 kernel: int8
]


@pytest.mark.parametrize(("name", "positions", "boundaries"), NAMED, ids=[f"{n}-{p}" for n, p, _ in NAMED])
def test_named_layers_run_int16_and_deploy_bit_exact(name, positions, boundaries, keras, tmp_path):
    fm = float_model(keras, name, tmp_path)
    names = [fm.graph.ops[i].name for i in positions]
    result = quantize(fm, calibration(fm), parse_config("minmax", "w8a8", a16=",".join(names)), quiet=True)
    graph = result.graph
    dtypes = _dtypes(graph)
    assert all(dtypes[n] == "int16" for n in names)
    follows = {"MAX_POOL_2D", "RESHAPE", "AVERAGE_POOL_2D"}  # data movement takes its input's precision
    assert all(
        dtypes[op.name] == "int8" for op in graph.ops if op.name not in names and op.kind not in follows | {"QUANTIZE"}
    )
    assert _boundaries(graph) == boundaries
    affine = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    biases = {op.name: graph[op.inputs[2]].dtype for op in graph.ops if op.kind in affine}
    assert all(dtype == ("int64" if name in names else "int32") for name, dtype in biases.items())
    assert set(result.int16_layers) >= set(names)
    assert bits_of(graph) == "w8a8+a16"  # what a report says of the graph imported back
    assert_deploys_bit_exact(graph, tmp_path / "c")


@pytest.mark.parametrize("name", ["small_cnn", "separable_conv", "dense_softmax"])
def test_auto_keeps_int16_accuracy_within_its_margin(name, keras, tmp_path):
    fm = float_model(keras, name, tmp_path)
    calib, held_out = calibration(fm, 300), calibration(fm, 300, seed=7)
    a8 = quantize(fm, calib, parse_config("minmax", "w8a8"), quiet=True).graph
    a16 = quantize(fm, calib, parse_config("minmax", "w8a16"), quiet=True).graph
    mixed = quantize(fm, calib, parse_config("minmax", "w8a8", a16="auto"), quiet=True)
    assert mixed.int16_layers and any("a16 auto: int16 on" in n for n in mixed.notes)
    assert (bits_of(a8), bits_of(a16)) == ("w8a8", "w8a16")
    sqnr = {k: output_sqnr(fm, g, held_out.x) for k, g in (("a8", a8), ("a16", a16), ("mixed", mixed.graph))}
    assert sqnr["a16"] >= sqnr["a8"] and sqnr["mixed"] > sqnr["a8"] + 3
    assert sqnr["mixed"] >= sqnr["a16"] - 1.5  # the 1 dB margin on calibration, some slack on held-out data
    assert arena(mixed.graph) <= arena(a16)  # never more memory than int16 everywhere
    assert_deploys_bit_exact(mixed.graph, tmp_path / "c")


def test_passes_run_on_mixed_precision(keras, tmp_path):
    """AdaRound and bias correction fake-quantize each activation at the precision that holds it."""
    fm = float_model(keras, "small_cnn", tmp_path)
    layer = fm.graph.ops[1].name
    result = quantize(
        fm, calibration(fm), parse_config("mse,bc,adaround", "w8a8", a16=layer), quiet=True, adaround_iterations=50
    )
    assert _dtypes(result.graph)[layer] == "int16"
    assert_deploys_bit_exact(result.graph, tmp_path / "c")


def test_precision_rules_refuse_what_cannot_deploy(keras, tmp_path):
    fm = float_model(keras, "activation_hard_swish", tmp_path)
    hard_swish = next(op.name for op in fm.graph.ops if op.kind == "HARD_SWISH")
    with pytest.raises(TinyqError, match=r"HARD_SWISH\) has no 16x8 kernel"):
        with_int16(fm.graph, [hard_swish])
    with pytest.raises(TinyqError, match="no layer named nope; the layers are"):
        with_int16(fm.graph, ["nope"])
    pooled = float_model(keras, "small_cnn", tmp_path)
    pool = next(op.name for op in pooled.graph.ops if op.kind == "MAX_POOL_2D")
    with pytest.raises(TinyqError, match=r"MAX_POOL_2D\) only moves values"):
        with_int16(pooled.graph, [pool])
    with pytest.raises(TinyqError, match="does not combine with --bits w8a16"):
        parse_config("mse", "w8a16", a16="conv")
    with pytest.raises(TinyqError, match="name layers"):
        parse_config("mse", "w8a8", a16=" , ")
    with pytest.raises(TinyqError, match="calibration data"):
        quantize(fm, None, parse_config("bn", "w8a8", a16="auto"), quiet=True)
    wrong_shape = Dataset(np.zeros((4, 3), np.float32))  # calibration would fail on it: the name fails first
    with pytest.raises(TinyqError, match="no layer named nope"):
        quantize(fm, wrong_shape, parse_config("mse", "w8a8", a16="nope"), quiet=True)


def test_cli_auto_reports_which_layers_and_why(keras, tmp_path):
    model = keras_models.build(keras, "small_cnn")
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).normal(0, 1, (200, 10, 10, 3)).astype(np.float32))
    result = tinyq(
        "quantize", tmp_path / "m.keras", "--calib", tmp_path / "calib.npz", "--a16", "auto", "-o", tmp_path / "q"
    )
    assert result.returncode == 0, result.stderr
    assert "what int8 costs on each layer" in result.stderr and "a16 auto: int16 on" in result.stderr
    report = json.loads((tmp_path / "q" / "quant_report.json").read_text())
    assert report["bits"] == "w8a8+a16" and report["int16_layers"]
    dtypes = {layer["name"]: layer["dtype"] for layer in report["layers"]}
    assert all(dtypes[n] == "int16" for n in report["int16_layers"])
    assert_clean_error(
        tinyq(
            "quantize", tmp_path / "m.keras", "--calib", tmp_path / "calib.npz", "--a16", "nope", "-o", tmp_path / "e"
        ),
        "--a16: no layer named nope",
    )


def test_mixed_model_in_qemu_matches_the_reference(keras, tmp_path):
    """The fast int8 and 16x8 kernels and the boundary QUANTIZE ops in one firmware (Cortex-M4)."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    fm = float_model(keras, "small_cnn", tmp_path)
    layers = f"{fm.graph.ops[1].name},{fm.graph.ops[3].name}"
    graph = quantize(fm, calibration(fm), parse_config("minmax", "w8a8", a16=layers), quiet=True).graph
    report = build(graph, get_board("mps2_an386"), tmp_path / "fw", source="mixed", log=lambda message: None)
    kernels = {layer.kernel for layer in report.ops}
    assert {"depthwise_conv_fast_s16", "convolve_fast_s8", "requantize_s8_s16"} <= kernels
    for i, inputs in enumerate(random_inputs(graph, 2, seed=9)):
        np.savez(tmp_path / f"x{i}.npz", *inputs)
        result = bench(tmp_path / "fw", emulate=True, input_path=tmp_path / f"x{i}.npz")
        assert result["bit_exact"]
        assert result["outputs"] == [o.reshape(-1).tolist() for o in ref.outputs(graph, inputs)]
