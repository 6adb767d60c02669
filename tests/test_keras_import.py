"""Keras 3 importer: every supported layer kind round-trips to float tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq.errors import TinyqError
from tinyq.importers.keras import load_float_keras
from tinyq.sim import FloatRunner

from support import keras_models


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


@pytest.mark.parametrize("name", sorted(keras_models.CASES))
def test_layer_round_trip(name, keras, tmp_path):
    model = keras_models.build(keras, name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    fm = load_float_keras(path)
    x = np.random.default_rng(1).normal(0, 1, (16,) + model.input_shape[1:]).astype(np.float32)
    expected = model.predict(x, verbose=0)
    got = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([x])[0]
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_sequential_models_round_trip(suffix, keras, tmp_path):
    """Loading a Sequential rebuilds it: its layers then hold several calls, one of them the model's."""
    L = keras.layers
    model = keras_models.randomize(
        keras.Sequential(
            [
                keras.Input((10, 10, 2)),
                L.Conv2D(6, 3, padding="same", use_bias=False),
                L.BatchNormalization(),
                L.ReLU(6.0),
                L.DepthwiseConv2D(3, activation="relu"),
                L.MaxPooling2D(),
                L.Flatten(),
                L.Dense(5, activation="softmax"),
            ]
        )
    )
    model.save(tmp_path / f"m{suffix}")
    fm = load_float_keras(tmp_path / f"m{suffix}")
    assert [op.kind for op in fm.graph.ops] == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MAX_POOL_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    x = np.random.default_rng(2).normal(0, 1, (8, 10, 10, 2)).astype(np.float32)
    got = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([x])[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_batchnorm_folds_exactly_and_keeps_its_statistics(keras, tmp_path):
    model = keras_models.build(keras, "conv_bn_relu6")
    model.save(tmp_path / "m.keras")
    fm = load_float_keras(tmp_path / "m.keras")
    assert [op.kind for op in fm.graph.ops] == ["CONV_2D"]  # BN folded, ReLU6 fused
    assert fm.graph.ops[0].attrs.activation.value == "relu6"
    bn = model.layers[2]
    beta, gamma = fm.bn_stats[fm.graph.ops[0].outputs[0]]
    np.testing.assert_array_equal(beta, bn.beta.numpy())
    np.testing.assert_array_equal(gamma, np.abs(bn.gamma.numpy()))


def test_h5_files_load_too(keras, tmp_path):
    model = keras_models.build(keras, "depthwise_multiplier_bn")
    model.save(tmp_path / "m.h5")
    fm = load_float_keras(tmp_path / "m.h5")
    assert [op.kind for op in fm.graph.ops] == ["DEPTHWISE_CONV_2D"]


def test_legacy_mlperf_h5_with_groups_argument_loads(mlperf_model):
    path = mlperf_model("kws").parent / "kws_ref_model.h5"
    fm = load_float_keras(path)
    assert [op.kind for op in fm.graph.ops][:3] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]


def test_unsupported_layer_is_named_with_its_class(keras, tmp_path):
    x = keras.Input((8,))
    model = keras.Model(x, keras.layers.UnitNormalization(name="unit_one")(keras.layers.Dense(4)(x)))
    model.save(tmp_path / "m.keras")
    with pytest.raises(TinyqError, match=r"unsupported layer 'unit_one' of class UnitNormalization; tinyq supports"):
        load_float_keras(tmp_path / "m.keras")


# Layers and arguments without an exact int8 form: refused in one line naming the layer and what is supported.
REFUSED = {
    "gelu": (lambda L, x: L.Dense(4, activation="gelu")(x), "activation 'gelu' has no exact int8 form"),
    "elu alpha": (lambda L, x: L.ELU(alpha=0.5)(L.Dense(4)(x)), "ELU"),
    "normalization axis": (
        lambda L, x: L.Normalization(axis=1, mean=[0.0, 1.0], variance=[1.0, 2.0])(L.Reshape((2, 4))(L.Dense(8)(x))),
        "axis",
    ),
    "layernorm axis": (lambda L, x: L.LayerNormalization(axis=1)(L.Reshape((2, 2))(L.Dense(4)(x))), "axis"),
    "bicubic upsampling": (
        lambda L, x: L.UpSampling2D(interpolation="bicubic")(L.Reshape((2, 2, 1))(L.Dense(4)(x))),
        "bicubic",
    ),
}


@pytest.mark.parametrize("name", REFUSED)
def test_layers_without_an_exact_int8_form_are_refused_in_one_line(name, keras, tmp_path):
    body, fragment = REFUSED[name]
    x = keras.Input((8,))
    keras.Model(x, body(keras.layers, x)).save(tmp_path / "m.keras")
    with pytest.raises(TinyqError, match=fragment) as err:
        load_float_keras(tmp_path / "m.keras")
    assert "\n" not in str(err.value)


def test_lambda_code_never_runs(keras, tmp_path):
    marker = tmp_path / "pwned"
    # the layer's code creates the marker whenever it runs: at model construction and on an unsafe load
    code = eval(f"lambda t: t * 2 + float(__import__('os').system('touch {marker}'))")  # noqa: S307
    x = keras.Input((4,))
    keras.Model(x, keras.layers.Lambda(code)(x)).save(tmp_path / "m.keras")
    marker.unlink()
    with pytest.raises(TinyqError, match="safe mode"):
        load_float_keras(tmp_path / "m.keras")
    assert not marker.exists()
    keras.models.load_model(tmp_path / "m.keras", safe_mode=False)  # the control: unsafe loading runs it
    assert marker.exists()


def test_corrupt_keras_file_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(TinyqError, match="corrupt or unreadable|not a loadable"):
        load_float_keras(path)
