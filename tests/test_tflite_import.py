"""What the TFLite importer cleans up: conversion artefacts leave no op behind."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import tflite
from tflite.BuiltinOperator import BuiltinOperator

from tinyq import ir, ref
from tinyq.data import to_deployed_layout
from tinyq.exporters.tflite import write_flatbuffer
from tinyq.importers.tflite import parse_tflite
from tinyq.ops.quantize import Dequantize, Quantize

from support.cases import CASES, Case, convert
from support.cli import tinyq
from support.hostlib import HostModel
from support.inputs import random_inputs
from support.tflm import tflm_outputs

SHAPE_ARITHMETIC = {"SHAPE", "STRIDED_SLICE", "PACK"}
BUILTIN_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def flatbuffer_ops(data: bytes) -> list[str]:
    """The builtin operators of a .tflite, as the file lists them."""
    model = tflite.Model.GetRootAs(data, 0)
    subgraph = model.Subgraphs(0)
    codes = [model.OperatorCodes(subgraph.Operators(i).OpcodeIndex()) for i in range(subgraph.OperatorsLength())]
    return [BUILTIN_NAMES[max(c.BuiltinCode(), c.DeprecatedBuiltinCode())] for c in codes]


def test_a_dynamic_batch_leaves_no_shape_arithmetic(case_dir):
    """Keras 3's converter computes every Reshape's target at run time from SHAPE; tinyq folds
    the chain (static shapes) and the model's ops are the layers' own."""
    # the Reshape/Flatten rows (a dynamic-batch EXPAND_DIMS converts to EXPAND_DIMS alone)
    cases = [c for c in CASES if c.dynamic_batch and c.name.startswith("dynamic_batch_")]
    assert len(cases) >= 2
    for case in cases:
        data = convert(case, case_dir).read_bytes()
        assert SHAPE_ARITHMETIC <= set(flatbuffer_ops(data)), case.name  # the converter did emit the chain
        graph = parse_tflite(data)
        assert not SHAPE_ARITHMETIC & {op.kind for op in graph.ops}, case.name


def _round_trip(out_scale: float, out_zp: int) -> ir.Graph:
    q = ir.QParams.per_tensor
    t = {
        "x": ir.Tensor("x", (1, 16), "int8", q(0.05, 3)),
        "f": ir.Tensor("f", (1, 16), "float32"),
        "y": ir.Tensor("y", (1, 16), "int8", q(out_scale, out_zp)),
    }
    ops = (ir.Op("dq", Dequantize(), ("x",), ("f",)), ir.Op("q", Quantize(), ("f",), ("y",)))
    return ir.Graph("rt", t, ops, ("x",), ("y",))


def test_dequantize_then_quantize_to_the_same_quantization_is_dropped():
    """An identity round trip becomes an exact int8 copy; a real requantization through float
    stays as it is (no int8 requantization rounds as TFLM's float path does)."""
    for scale, zp, kinds in (
        (0.05, 3, [("QUANTIZE", "int8")]),
        (0.11, -7, [("DEQUANTIZE", "int8"), ("QUANTIZE", "float32")]),
    ):
        data = write_flatbuffer(_round_trip(scale, zp))
        graph = parse_tflite(data)
        assert [(op.kind, graph[op.inputs[0]].dtype) for op in graph.ops] == kinds
        x = np.arange(-128, 128, 16, dtype=np.int8).reshape(1, 16)
        assert np.array_equal(ref.outputs(graph, [x])[0], tflm_outputs(data, [x], 1)[0].reshape(1, 16))


def _nchw_model(tf, x, *, also_raw: bool = False):
    """A PyTorch-style model: NCHW in, transposed to NHWC first, then a convolution."""
    nhwc = tf.transpose(x, [0, 2, 3, 1])
    w = tf.constant(np.random.default_rng(1).normal(size=(3, 3, x.shape[1], 4)).astype(np.float32))
    y = tf.nn.relu(tf.nn.conv2d(nhwc, w, 1, "SAME"))
    return y + tf.reduce_mean(x) if also_raw else y  # the raw NCHW input used twice: not foldable


NCHW_CASES = [
    Case("nchw_input_int8", (3, 7, 5), _nchw_model, ("TRANSPOSE", "CONV_2D"), tf=True),
    Case("nchw_input_float_io", (2, 6, 6), _nchw_model, ("TRANSPOSE", "QUANTIZE"), tf=True, float_io=True),
]


@pytest.mark.parametrize("case", NCHW_CASES, ids=[c.name for c in NCHW_CASES])
def test_an_nchw_input_transpose_is_folded(case, case_dir, tmp_path):
    """The input is deployed channels-last with no TRANSPOSE left; data in the model's own NCHW
    layout, transposed once by tinyq, gives TFLM's outputs from the reference and the host C."""
    data = convert(case, case_dir).read_bytes()
    assert set(case.must_have) <= set(flatbuffer_ops(data))
    graph = parse_tflite(data)
    assert "TRANSPOSE" not in {op.kind for op in graph.ops}
    name = graph.inputs[0]
    assert graph.input_perms == {name: (0, 2, 3, 1)}
    assert graph[name].shape == (1,) + case.input_shape[1:] + case.input_shape[:1]
    model = HostModel(graph, tmp_path)
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = rng.uniform(-1, 1, (1,) + case.input_shape).astype(np.float32)
        if not case.float_io:
            x = rng.integers(-128, 128, x.shape).astype(np.int8)
        theirs = tflm_outputs(data, [x], 1)[0]
        deployed = to_deployed_layout(x, graph.input_perms[name])
        ours = ref.outputs(graph, [deployed])[0]
        assert np.array_equal(ours, theirs.reshape(ours.shape))
        assert np.array_equal(model.run([deployed])[0], ours)


def test_an_nchw_input_used_elsewhere_keeps_its_transpose(case_dir):
    case = Case("nchw_input_used_twice", (3, 4, 4), partial(_nchw_model, also_raw=True), ("TRANSPOSE",), tf=True)
    graph = parse_tflite(convert(case, case_dir).read_bytes())
    assert "TRANSPOSE" in {op.kind for op in graph.ops} and not graph.input_perms


def test_build_and_bench_take_data_in_the_model_layout(case_dir, tmp_path):
    """`tinyq build` says how the input is deployed (report and tinyq_model.h); `tinyq bench`
    and `tinyq eval` take NCHW data and transpose it."""
    model = convert(NCHW_CASES[0], case_dir)
    out = tmp_path / "build"
    result = tinyq("build", str(model), "--board", "host", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "deployed as [1, 7, 5, 3]: the model's [1, 3, 7, 5] input" in result.stdout
    header = (out / "lib" / "tinyq_model" / "include" / "tinyq_model.h").read_text()
    assert "the model's [1, 3, 7, 5] input, transposed by [0, 2, 3, 1]" in header
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["inputs"][0]["perm"] == [0, 2, 3, 1]
    x = np.random.default_rng(2).integers(-128, 128, (1, 3, 7, 5)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    result = tinyq("--print-json", "bench", str(out), "--input", str(tmp_path / "x.npy"))
    assert result.returncode == 0, result.stderr
    bench = json.loads(result.stdout)
    assert bench["bit_exact"]
    assert bench["outputs"][0] == tflm_outputs(model.read_bytes(), [x], 1)[0].reshape(-1).tolist()


def _pad_then_conv(tf, x):
    w = tf.constant(np.random.default_rng(3).normal(size=(3, 3, x.shape[-1], 5)).astype(np.float32))
    padded = tf.pad(tf.nn.leaky_relu(x, 0.25), [[0, 0], [1, 2], [0, 1], [0, 0]])
    return tf.nn.conv2d(padded, w, (1, 2), "VALID")


def test_a_pad_before_a_convolution_becomes_its_padding(case_dir, tmp_path):
    """PAD writes the zero point, which is what a convolution's padding reads: the PAD goes
    (one copy and one buffer fewer) and the outputs stay TFLM's, from the reference and the C.
    The same holds for Keras's ZeroPadding2D in front of a convolution."""
    import keras

    from tinyq.importers.keras import float_model_from_keras

    from support import keras_models

    case = Case("pad_then_conv", (7, 6, 3), _pad_then_conv, ("PAD", "CONV_2D"), tf=True)
    data = convert(case, case_dir).read_bytes()
    assert "PAD" in flatbuffer_ops(data)
    graph = parse_tflite(data)
    assert [op.kind for op in graph.ops] == ["LEAKY_RELU", "CONV_2D"]
    assert graph.ops[1].attrs.padding == ir.Padding2D(1, 2, 0, 1)
    model = HostModel(graph, tmp_path)
    for inputs in random_inputs(graph, 5, seed=8):
        ours = ref.outputs(graph, inputs)[0]
        assert np.array_equal(ours, tflm_outputs(data, inputs, 1)[0].reshape(ours.shape))
        assert np.array_equal(model.run(inputs)[0], ours)
    float_graph = float_model_from_keras(keras_models.build(keras, "zero_padding")).graph
    assert [op.kind for op in float_graph.ops] == ["CONV_2D"]
    # ZeroPadding1D pads the sequence before the 1-D layer's reshape to a unit-height image
    float_graph = float_model_from_keras(keras_models.build(keras, "zero_padding_1d_depthwise_causal")).graph
    assert "PAD" not in {op.kind for op in float_graph.ops}
