"""Degenerate models and calibration data never end in an internal error: they quantize, and
the host C equals the integer reference.

Dead channels, constant or all-zero activations, inputs scaled by 1e-30, logits of a
random-weight network: ranges that are empty or tiny. Each op's `min_scales` facet says the
smallest scale its integer parameters allow (SOFTMAX's input multiplier must exceed one, an
ADD's output multiplier stay below one, no requantization multiplier above 2^30), the
quantizer raises degenerate scales to it, tiny multipliers flush to zero as TFLite's
QuantizeMultiplier does, and what an imported model cannot represent is refused by verify.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinyq import fixedpoint as fx
from tinyq import ir, ref
from tinyq.data import Dataset
from tinyq.errors import TinyqError
from tinyq.exporters.tflite import write_flatbuffer
from tinyq.importers.keras import float_model_from_keras
from tinyq.importers.tflite import parse_tflite
from tinyq.ops.softmax import Softmax
from tinyq.quant import parse_config, quantize

from support import keras_models
from support.hostlib import HostModel
from support.inputs import random_inputs

MODELS = ["conv_bn_relu6", "add_relu", "dense_softmax", "concatenate", "global_average_pooling", "dense_bn_sigmoid"]
DATA = {
    "all zeros": lambda shape: np.zeros(shape, np.float32),
    "constant": lambda shape: np.full(shape, 0.7, np.float32),
    "scale 1e-30": lambda shape: (np.random.default_rng(0).normal(0, 1, shape) * 1e-30).astype(np.float32),
}
METHODS = ["minmax", "mse", "percentile", "bn"]


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("name", MODELS)
def test_degenerate_calibration_quantizes_and_runs(name, data, keras, tmp_path):
    fm = float_model_from_keras(keras_models.build(keras, name))
    shape = (16,) + fm.graph[fm.graph.inputs[0]].shape[1:]
    calib = Dataset(DATA[data](shape))
    for method in METHODS:
        graph = quantize(fm, calib, parse_config(method), quiet=True).graph
        c_model = HostModel(graph, tmp_path / method)
        for inputs in random_inputs(graph, 2, seed=1):
            assert np.array_equal(c_model.run(inputs)[0], ref.outputs(graph, inputs)[0]), method


def test_tiny_multipliers_flush_to_zero_as_tflite_does():
    assert fx.quantize_multiplier(2.0**-33) == (0, 0)  # frexp exponent -32: below TFLite's -31
    assert fx.quantize_multiplier(2.0**-32) == (1 << 30, -31)


def _softmax_model(input_scale: float) -> bytes:
    q = ir.QParams.per_tensor
    x = ir.Tensor("x", (1, 10), "int8", q(input_scale, 0))
    y = ir.Tensor("y", (1, 10), "int8", q(1 / 256, -128))
    return write_flatbuffer(ir.Graph("s", {"x": x, "y": y}, (ir.Op("s", Softmax(), ("x",), ("y",)),), ("x",), ("y",)))


def test_an_imported_model_tflm_cannot_represent_is_refused_at_import():
    """A SOFTMAX input scale below 2^-26 has no multiplier in TFLM (it aborts): one clear error."""
    parse_tflite(_softmax_model(1e-3))
    with pytest.raises(TinyqError, match=r"op 0 \(SOFTMAX 'softmax_0'\): its quantization has no integer form"):
        parse_tflite(_softmax_model(1e-12))


def test_a_random_weight_classifier_quantizes_its_tiny_logits(keras, tmp_path):
    """Random weights make near-constant logits: SOFTMAX's input range is raised to the least
    TFLM can represent, so the model builds (it used to end in 'multiplier ... must be > 1')."""
    L = keras.layers
    x = keras.Input((8, 8, 3))
    y = L.Dense(10, activation="softmax", kernel_initializer="zeros", bias_initializer="zeros")(
        L.Flatten()(L.Conv2D(4, 3)(x))
    )
    fm = float_model_from_keras(keras.Model(x, y))
    graph = quantize(
        fm,
        Dataset(np.random.default_rng(0).normal(0, 1, (8, 8, 8, 3)).astype(np.float32)),
        parse_config("minmax"),
        quiet=True,
    ).graph
    softmax = next(op for op in graph.ops if op.kind == "SOFTMAX")
    assert graph[softmax.inputs[0]].qparams.s > 2.0**-26
    model = HostModel(graph, tmp_path)
    for inputs in random_inputs(graph, 3, seed=3):
        assert np.array_equal(model.run(inputs)[0], ref.outputs(graph, inputs)[0])


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("name", MODELS)
def test_degenerate_calibration_quantizes_and_runs_with_int16_activations(name, data, keras, tmp_path):
    fm = float_model_from_keras(keras_models.build(keras, name))
    calib = Dataset(DATA[data]((16,) + fm.graph[fm.graph.inputs[0]].shape[1:]))
    for method in ("minmax", "mse"):
        graph = quantize(fm, calib, parse_config(method, "w8a16"), quiet=True).graph
        c_model = HostModel(graph, tmp_path / method)
        for inputs in random_inputs(graph, 2, seed=1):
            assert np.array_equal(c_model.run(inputs)[0], ref.outputs(graph, inputs)[0]), method
