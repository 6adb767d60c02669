"""Post-training quantization with int16 activations (`--bits w8a16`, TFLM's 16x8): the graph
deploys (host C equal to the reference, the exported .tflite equal in TFLM) and tracks the float
model at least as closely as W8A8."""

from __future__ import annotations

import numpy as np
import pytest
from test_quantize import calibration, float_model

from tinyq import ir, ref
from tinyq.errors import TinyqError
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.keras import float_model_from_keras
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.sim import FloatRunner

from support import keras_models
from support.cli import assert_clean_error, tinyq
from support.hostlib import HostModel
from support.inputs import random_inputs
from support.tflm import tflm_outputs

MODELS = [
    "conv_bias_relu_stride_same",
    "conv_bn_relu6",
    "separable_conv",
    "add_relu",
    "avgpool_same",
    "concatenate",
    "nested_concatenate",
    "dense_softmax",
    "dense_bn_sigmoid",
]


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def output_sqnr(fm, graph, x) -> float:
    floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([x])[0]
    ints = integer_outputs(graph, x, quiet=True)[0]
    return sqnr_db(floats, dequantize(graph[graph.outputs[0]], ints).reshape(floats.shape))


@pytest.mark.parametrize("name", MODELS)
def test_w8a16_deploys_bit_exact_and_beats_w8a8(name, keras, tmp_path):
    fm = float_model(keras, name, tmp_path)
    calib, test = calibration(fm), calibration(fm, 100, seed=1)
    a16 = ir.verify(quantize(fm, calib, parse_config("minmax", "w8a16"), quiet=True).graph)
    a8 = quantize(fm, calib, parse_config("minmax", "w8a8"), quiet=True).graph
    activations = [a16[n] for op in a16.ops for n in op.outputs] + [a16[a16.inputs[0]]]
    assert all(t.dtype == "int16" and t.qparams.zp == 0 for t in activations)
    biases = [a16[op.inputs[2]] for op in a16.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert all(b.dtype == "int64" for b in biases)
    assert output_sqnr(fm, a16, test.x) > output_sqnr(fm, a8, test.x) + 3  # the int8 weights then dominate the error
    data = to_tflite(a16)
    host = HostModel(a16, tmp_path / "c")
    for inputs in random_inputs(a16, 5, seed=4):
        expected = ref.outputs(a16, inputs)[0]
        assert np.array_equal(host.run(inputs)[0], expected)
        assert np.array_equal(tflm_outputs(data, inputs, 1)[0].reshape(expected.shape), expected)


def test_int16_activations_take_the_observed_range_whatever_the_method(keras, tmp_path):
    """MSE and percentile clipping are for int8's 256 levels; at w8a16 they would clip for nothing."""
    fm = float_model(keras, "conv_bn_relu6", tmp_path)
    calib = calibration(fm)
    observed = quantize(fm, calib, parse_config("minmax", "w8a16"), quiet=True).ranges
    for method in ("mse", "percentile"):
        assert quantize(fm, calib, parse_config(method, "w8a16"), quiet=True).ranges == observed
    clipped = quantize(fm, calib, parse_config("percentile", "w8a8", percentile=99.0), quiet=True).ranges
    assert clipped != quantize(fm, calib, parse_config("minmax", "w8a8"), quiet=True).ranges  # int8 does clip


def test_a_concatenation_input_of_another_scale_is_requantized_in_int16(keras, tmp_path):
    model = keras_models.build(keras, "concatenate")
    conv = next(layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    conv.set_weights([w * 10 for w in conv.get_weights()])  # wider than the input it joins
    fm = float_model_from_keras(model)
    graph = quantize(fm, calibration(fm), parse_config("minmax", "w8a16"), quiet=True).graph
    requantize = [op for op in graph.ops if op.kind == "QUANTIZE"]
    assert [(graph[op.inputs[0]].dtype, graph[op.outputs[0]].dtype) for op in requantize] == [("int16", "int16")]
    data = to_tflite(graph)
    for inputs in random_inputs(graph, 3, seed=5):
        expected = ref.outputs(graph, inputs)[0]
        assert np.array_equal(tflm_outputs(data, inputs, 1)[0].reshape(expected.shape), expected)


def test_int16_activations_take_int8_weights():
    with pytest.raises(TinyqError, match="use w8a16"):
        parse_config("mse", "w4a16")
    with pytest.raises(TinyqError, match="w8a16"):
        parse_config("mse", "w8a12")


def test_qat_checks_int16_bits_before_training(tmp_path):
    """`tinyq qat` takes w8a16 (tests/test_qat.py trains it) and refuses w4a16 before it reads
    the model or the data (both empty files here)."""
    for name in ("none.keras", "none.npz"):
        (tmp_path / name).write_bytes(b"")
    assert_clean_error(
        tinyq("qat", tmp_path / "none.keras", "--data", tmp_path / "none.npz", "--bits", "w4a16", "-o", tmp_path),
        "use w8a16",
    )
