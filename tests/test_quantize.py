"""Post-training quantization end to end on small Keras models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.data import Dataset, quantize_input
from tinyq.errors import TinyqError
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.keras import load_float_keras
from tinyq.importers.tflite import parse_tflite
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import integer_outputs, sqnr_db
from tinyq.sim import FloatRunner

from support import keras_models
from support.cli import assert_clean_error, tinyq
from support.hostlib import HostModel
from support.inputs import random_inputs
from support.tflm import tflm_outputs


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def float_model(keras, name, tmp_path):
    model = keras_models.build(keras, name)
    model.save(tmp_path / f"{name}.keras")
    return load_float_keras(tmp_path / f"{name}.keras")


def calibration(fm, count=200, seed=0):
    shape = fm.graph[fm.graph.inputs[0]].shape[1:]
    return Dataset(np.random.default_rng(seed).normal(0, 1, (count,) + shape).astype(np.float32))


@pytest.mark.parametrize("method", ["minmax", "percentile", "mse", "bn"])
@pytest.mark.parametrize(
    "name",
    [
        "conv_bn_relu6",
        "separable_conv",
        "add_relu",
        "concatenate",
        "nested_concatenate",
        "maxpool_same",
        "global_average_pooling",
        "dense_softmax",
        "depthwise_multiplier_bn",
    ],
)
def test_quantized_model_tracks_the_float_one(name, method, keras, tmp_path):
    fm = float_model(keras, name, tmp_path)
    calib = calibration(fm)
    result = quantize(fm, calib, parse_config(method), quiet=True)
    graph = ir.verify(result.graph)
    test = calibration(fm, 100, seed=1)
    floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test.x])[0]
    ints = integer_outputs(graph, test.x, quiet=True)[0]
    out = graph[graph.outputs[0]]
    deq = (ints.astype(np.float64) - out.qparams.zp) * out.qparams.s
    assert sqnr_db(floats, deq.reshape(floats.shape)) > 20


@pytest.mark.parametrize("name", sorted(keras_models.CASES))
def test_every_keras_layer_quantizes_exports_and_runs_in_tflm_bit_exact(name, keras, tmp_path):
    """Each layer kind through quantization and the TFLite export: TFLM runs the exported file
    exactly like the numpy reference runs the graph it came from."""
    fm = float_model(keras, name, tmp_path)
    graph = quantize(fm, calibration(fm, 64), parse_config("minmax"), quiet=True).graph
    data = to_tflite(graph)
    reread = parse_tflite(data)
    for inputs in random_inputs(graph, 5, seed=2):
        expected = ref.outputs(graph, inputs)
        assert all(np.array_equal(a, b) for a, b in zip(ref.outputs(reread, inputs), expected, strict=True))
        theirs = tflm_outputs(data, inputs, len(expected))
        assert all(np.array_equal(e, t.reshape(e.shape)) for e, t in zip(expected, theirs, strict=True)), name


def test_tflite_export_runs_in_tflm_exactly_like_our_c(keras, tmp_path):
    """The exported model_int8.tflite: TFLM == tinyq's C == the numpy reference."""
    model = keras_models.build(keras, "concatenate")
    conv = next(layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    conv.set_weights([w * 10 for w in conv.get_weights()])  # wider than the input it joins
    model.save(tmp_path / "wide.keras")
    fm = load_float_keras(tmp_path / "wide.keras")
    graph = quantize(fm, calibration(fm), parse_config("mse"), quiet=True).graph
    assert any(op.kind == "QUANTIZE" for op in graph.ops)  # the input is requantized for the concat
    data = to_tflite(graph)
    reread = parse_tflite(data)
    model = HostModel(reread, tmp_path / "c")
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.integers(-128, 128, reread[reread.inputs[0]].shape).astype(np.int8)
        c_out = model.run([x])[0]
        assert np.array_equal(c_out, ref.outputs(graph, [x])[0])
        assert np.array_equal(c_out, tflm_outputs(data, [x], 1)[0].reshape(c_out.shape))


def test_deployment_constraints(keras, tmp_path):
    fm = float_model(keras, "maxpool_same", tmp_path)
    g = quantize(fm, calibration(fm), parse_config("minmax"), quiet=True).graph
    pool = next(op for op in g.ops if op.kind == "MAX_POOL_2D")
    assert g[pool.inputs[0]].qparams == g[pool.outputs[0]].qparams
    fm = float_model(keras, "dense_softmax", tmp_path)
    g = quantize(fm, calibration(fm), parse_config("minmax"), quiet=True).graph
    assert g[g.outputs[0]].qparams == ir.QParams.per_tensor(1 / 256, -128)


def test_per_tensor_and_low_bit_weights(keras, tmp_path):
    fm = float_model(keras, "conv_bn_relu6", tmp_path)
    g = quantize(fm, calibration(fm), parse_config("mse", "w4a8", per_tensor=True), quiet=True).graph
    w = g[g.ops[0].inputs[1]]
    assert not w.qparams.per_channel_quantized
    assert w.data.min() >= -7 and w.data.max() <= 7 and len(np.unique(w.data)) > 8


def test_bn_range_setting_is_data_free_where_batchnorm_tells(keras, tmp_path):
    fm = float_model(keras, "conv_bn_relu6", tmp_path)
    with pytest.raises(TinyqError, match="give calibration data"):
        quantize(fm, None, parse_config("bn"), quiet=True)  # the model input has no BatchNorm
    with pytest.raises(TinyqError, match="needs calibration data"):
        quantize(fm, None, parse_config("mse"), quiet=True)
    result = quantize(fm, calibration(fm), parse_config("bn"), quiet=True)
    beta, gamma = fm.bn_stats[fm.graph.ops[0].outputs[0]]
    assert result.ranges[fm.graph.ops[0].outputs[0]] == (
        max(0.0, float(np.min(beta - 6 * gamma))),
        min(6.0, float(np.max(beta + 6 * gamma))),
    )


def test_quantize_input_rounds_half_away_from_zero():
    assert quantize_input(np.array([0.5, -0.5, 1.5, 300.0]), 1.0, 0).tolist() == [1, -1, 2, 127]


def test_cli_quantize_eval_and_build(keras, tmp_path):
    fm_model = keras_models.build(keras, "dense_softmax")
    fm_model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (300, 12)).astype(np.float32)
    y = np.argmax(fm_model.predict(x, verbose=0), axis=1)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    result = tinyq("quantize", tmp_path / "m.keras", "--calib", tmp_path / "data.npz", "-o", tmp_path / "q")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "q" / "quant_report.json").read_text())
    assert report["bits"] == "w8a8" and all(layer["sqnr_db"] > 20 for layer in report["layers"])
    parse_tflite((tmp_path / "q" / "model_int8.tflite").read_bytes())
    result = tinyq(
        "eval",
        tmp_path / "m.keras",
        "--data",
        tmp_path / "data.npz",
        "--calib",
        tmp_path / "data.npz",
        "--json",
        tmp_path / "e.json",
    )
    assert result.returncode == 0, result.stderr
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["float_accuracy"] == 1.0 and ev["quantized_accuracy"] > 0.95 and ev["agreement"] > 0.95
    result = tinyq(
        "build", tmp_path / "m.keras", "--board", "host", "--calib", tmp_path / "data.npz", "-o", tmp_path / "b"
    )
    assert result.returncode == 0, result.stderr
    assert tinyq("bench", tmp_path / "b").returncode == 0


def test_cli_rejects_bad_calibration_data(keras, tmp_path):
    keras_models.build(keras, "dense_softmax").save(tmp_path / "m.keras")
    np.savez(tmp_path / "shape.npz", x=np.zeros((10, 5), np.float32))
    assert_clean_error(
        tinyq("quantize", tmp_path / "m.keras", "--calib", tmp_path / "shape.npz", "-o", tmp_path / "o"),
        "the model expects [12]",
    )
    np.savez(tmp_path / "nan.npz", x=np.full((10, 12), np.nan, np.float32))
    assert_clean_error(
        tinyq("quantize", tmp_path / "m.keras", "--calib", tmp_path / "nan.npz", "-o", tmp_path / "o"), "NaN"
    )
    np.savez(tmp_path / "nox.npz", images=np.zeros((10, 12)))
    assert_clean_error(
        tinyq("quantize", tmp_path / "m.keras", "--calib", tmp_path / "nox.npz", "-o", tmp_path / "o"), "no array 'x'"
    )
    assert_clean_error(
        tinyq(
            "quantize", tmp_path / "m.keras", "--calib", tmp_path / "nox.npz", "--algo", "fancy", "-o", tmp_path / "o"
        ),
        "unknown --algo fancy",
    )


@pytest.mark.parametrize(
    "algo, message",
    [
        ("mse,adaround,brecq", "--algo names adaround and brecq: each learns the rounding; pick one"),
        ("minmax,meanmax", "--algo names 2 range methods (minmax, meanmax); pick one"),
    ],
)
def test_algo_combinations_that_contradict_are_refused(algo, message):
    with pytest.raises(TinyqError) as error:
        parse_config(algo, "w4a8")
    assert str(error.value) == message


def test_rounding_passes_parse_into_one_learnt_rounding():
    assert parse_config("mse,cle,qdrop,bc").passes == ("cle", "bc", "qdrop")
    assert [parse_config(f"mse,{p}").rounding for p in ("adaround", "brecq", "qdrop")] == ["adaround", "brecq", "qdrop"]
    assert parse_config("mse,bc").rounding is None


def test_the_default_algo_learns_the_rounding_below_8_bits():
    assert parse_config(None).algo == ["mse"] and parse_config(None, "w8a16").algo == ["mse"]
    for bits in ("w4a8", "w3a8", "w2a8", "auto"):
        assert parse_config(None, bits).algo == ["mse", "adaround"], bits
        assert parse_config(None, bits, per_tensor=True).algo == ["mse", "cle", "bc", "qdrop"], bits
    assert parse_config("minmax", "w4a8").algo == ["minmax"]  # an explicit --algo is kept as it is
