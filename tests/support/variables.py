"""Converter-made streaming models in TFLite Micro's form: a tf.Module whose state lives in
tf.Variables, read and assigned on each call, converted to int8 with resource variables enabled
(CALL_ONCE runs an init subgraph that assigns each variable its initial value; the model reads
it with VAR_HANDLE + READ_VARIABLE and writes it back with ASSIGN_VARIABLE).

One row per model: `kind` picks the body, one frame (1, 1, features) in, one frame out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class VariableCase:
    name: str
    kind: str  # ring (a causal Conv1D's ring buffer), stacked (two ring buffers), depthwise, average
    features: int
    kernel: int = 3
    filters: int = 5
    dilation: int = 1

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (1, 1, self.features)


VARIABLE_CASES = [
    VariableCase("ring_k3_f4", "ring", 4),
    VariableCase("ring_k5_f7_dilated", "ring", 7, kernel=5, filters=3, dilation=2),
    VariableCase("ring_k2_f1", "ring", 1, kernel=2, filters=6),
    VariableCase("stacked_k3_f6", "stacked", 6, filters=8),
    VariableCase("depthwise_k4_f5", "depthwise", 5, kernel=4),
    VariableCase("average_f9", "average", 9),
]


def _module(case: VariableCase):
    import tensorflow as tf

    rng = np.random.default_rng(len(case.name))
    span = (case.kernel - 1) * case.dilation  # past frames a causal convolution needs

    def weights(*shape):
        return tf.constant(rng.normal(0, 0.5, shape).astype(np.float32))

    class Streaming(tf.Module):
        def __init__(self):
            super().__init__()
            self.ring = tf.Variable(tf.zeros((1, span, case.features)), trainable=False)
            if case.kind == "stacked":
                self.ring2 = tf.Variable(tf.zeros((1, span, case.filters)), trainable=False)
            if case.kind == "average":  # starts away from zero: the init value is not the zero point
                self.mean = tf.Variable(tf.fill((1, 1, case.features), 0.5), trainable=False)
            self.w = weights(case.kernel, case.features, case.filters)
            self.w2 = weights(case.kernel, case.filters, 4)
            self.dw = weights(1, case.kernel, case.features, 1)

        @staticmethod
        def _window(ring, x):
            window = tf.concat([ring, x], axis=1)
            ring.assign(window[:, 1:])
            return window

        @tf.function(input_signature=[tf.TensorSpec(case.frame_shape, tf.float32)])
        def __call__(self, x):
            if case.kind == "average":
                mean = 0.75 * self.mean + 0.25 * x
                self.mean.assign(mean)
                return tf.nn.relu(mean - 0.25)
            window = self._window(self.ring, x)
            if case.kind == "depthwise":
                image = tf.expand_dims(window, 1)  # (1, 1, time, features)
                y = tf.nn.depthwise_conv2d(image, self.dw, (1, 1, 1, 1), "VALID", dilations=(1, case.dilation))
                return tf.reshape(tf.nn.relu6(y), (1, 1, case.features))
            y = tf.nn.relu(tf.nn.conv1d(window, self.w, 1, "VALID", dilations=case.dilation))
            if case.kind == "stacked":
                y = tf.nn.conv1d(self._window(self.ring2, y), self.w2, 1, "VALID", dilations=case.dilation)
            return y

    return Streaming()


def variable_tflite(case: VariableCase, directory: Path) -> Path:
    """The int8 model of `case` (cached in `directory`)."""
    path = directory / f"{case.name}.tflite"
    if path.exists():
        return path
    import tensorflow as tf

    module = _module(case)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    converter.experimental_enable_resource_variables = True
    converter._experimental_variable_quantization = True  # int8 variables, as TFLM's streaming models have
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: (
        [rng.normal(0, 1, case.frame_shape).astype(np.float32)] for _ in range(100)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path
