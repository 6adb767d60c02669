"""keras.applications networks with random weights, as a new user first tries them: imported
(tinyq's float IR equals Keras), quantized with every range method's hard cases (the softmax of
near-constant logits, MSE on near-empty ranges), built, and the host C equals the integer
reference. MCU input sizes and the full table with QEMU and the converter's int8 models are in
bench/applications.py; here the smallest input each network takes keeps the suite fast."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq import ref
from tinyq.data import Dataset
from tinyq.importers.keras import float_model_from_keras
from tinyq.quant import parse_config, quantize
from tinyq.sim import FloatRunner

from support.hostlib import HostModel
from support.inputs import random_inputs

APPLICATIONS = {
    "mobilenet_0.25": ("MobileNet", dict(alpha=0.25), "minmax"),
    "mobilenetv2_0.35": ("MobileNetV2", dict(alpha=0.35), "mse"),
    "mobilenetv3small_0.75": ("MobileNetV3Small", dict(alpha=0.75, include_preprocessing=False), "percentile"),
    "mobilenetv3small_min_0.75": (
        "MobileNetV3Small",
        dict(alpha=0.75, minimalistic=True, include_preprocessing=False),
        "mse",
    ),
    "efficientnetb0": ("EfficientNetB0", {}, "minmax"),
}
SIZE = 32


@pytest.mark.parametrize("name", APPLICATIONS)
def test_random_weight_application_builds_bit_exact(name, tmp_path):
    import keras

    builder, options, method = APPLICATIONS[name]

    def application(head):
        keras.utils.set_random_seed(0)  # the same weights with either head
        return getattr(keras.applications, builder)(
            input_shape=(SIZE, SIZE, 3), weights=None, classes=10, classifier_activation=head, **options
        )

    scale = 255.0 if builder.startswith("EfficientNet") else 1.0  # it rescales its input itself
    x = (np.random.default_rng(0).uniform(-1, 1, (8, SIZE, SIZE, 3)) * scale).astype(np.float32)
    logits = application(None)  # random weights make a near-uniform softmax: compare what feeds it
    fm = float_model_from_keras(logits, name)
    ours = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([x])[0]
    theirs = logits.predict(x, verbose=0)
    assert np.max(np.abs(ours - theirs)) <= 1e-4 * np.max(np.abs(theirs))
    assert np.ptp(theirs) > 0
    fm = float_model_from_keras(application("softmax"), name)
    graph = quantize(fm, Dataset(x), parse_config(method), quiet=True).graph
    c_model = HostModel(graph, tmp_path)
    for inputs in random_inputs(graph, 2, seed=4):
        assert np.array_equal(c_model.run(inputs)[0], ref.outputs(graph, inputs)[0])
