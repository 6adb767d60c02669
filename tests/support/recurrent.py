"""Converter-made LSTM models: Keras 2 (tf_keras) LSTM layers with a fixed batch size and
unroll=False, converted to int8 with the settings that produce the fused
UNIDIRECTIONAL_SEQUENCE_LSTM (Keras 3's LSTM converts to a WHILE loop instead).

One row per shape: units, time steps, features, batch, return_sequences (False adds the
converter's STRIDED_SLICE of the last step), time_major, stacked layers, and a weight scale
(large weights saturate the gates), and `accumulate`: input and forget gates held open and the
cell gate the sign of the input, so a ramp input (`ramp_input`) drives the cell state up by
about 1 a step into the converter's cell clip (10) and back down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LstmCase:
    name: str
    units: int
    steps: int
    features: int
    batch: int = 1
    return_sequences: bool = True
    time_major: bool = False
    layers: int = 1
    weight_scale: float = 1.0
    calib_scale: float = 1.0
    accumulate: bool = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.time_major:
            return (self.steps, self.batch, self.features)
        return (self.batch, self.steps, self.features)


LSTM_CASES = [
    LstmCase("lstm_u8_t5_f3", 8, 5, 3),
    LstmCase("lstm_u1_t1_f1", 1, 1, 1),
    LstmCase("lstm_u7_t9_f5_last", 7, 9, 5, return_sequences=False),
    LstmCase("lstm_u16_t6_f4_batch3", 16, 6, 4, batch=3),
    LstmCase("lstm_u5_t7_f3_time_major_batch2", 5, 7, 3, batch=2, time_major=True),
    LstmCase("lstm_u12_t8_f6_stacked", 12, 8, 6, layers=2),
    LstmCase("lstm_u33_t4_f10_saturating", 33, 4, 10, weight_scale=6.0, calib_scale=3.0),
    LstmCase("lstm_u24_t28_f28_fashion_shape", 24, 28, 28, return_sequences=False),
    LstmCase("lstm_u6_t40_f2_cell_clipped", 6, 40, 2, accumulate=True),
]


def lstm_tflite(case: LstmCase, out_dir: Path, quantized: bool = True) -> Path:
    """The case converted to an int8 .tflite, or a float one (cached in out_dir)."""
    path = out_dir / f"{case.name}{'' if quantized else '_float'}.tflite"
    if path.exists():
        return path
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(len(case.name))
    layers = []
    for i in range(case.layers):
        last = i == case.layers - 1
        layers.append(
            tf_keras.layers.LSTM(
                case.units,
                return_sequences=case.return_sequences or not last,
                time_major=case.time_major,
                unroll=False,
            )
        )
    shape = case.input_shape
    inputs = tf_keras.Input(batch_shape=shape)
    y = inputs
    for layer in layers:
        y = layer(y)
    model = tf_keras.Model(inputs, y)
    rng = np.random.default_rng(0)
    for layer in layers:
        kernel, recurrent, bias = layer.get_weights()
        bias = rng.normal(0, 0.5, bias.shape).astype(np.float32)
        if case.accumulate:  # Keras's gate order: input, forget, cell, output
            bias[: 2 * case.units] += 6.0
            bias[2 * case.units : 3 * case.units] = 0.0
        layer.set_weights(
            [
                rng.normal(0, case.weight_scale / np.sqrt(kernel.shape[0]), kernel.shape).astype(np.float32),
                rng.normal(0, case.weight_scale / np.sqrt(recurrent.shape[0]), recurrent.shape).astype(np.float32),
                bias,
            ]
        )
        if case.accumulate:  # the cell gate ~ sign of the input's sum: c ramps up or down by ~1 a step
            kernel, recurrent, bias = layer.get_weights()
            kernel[:, 2 * case.units : 3 * case.units] = 3.0
            recurrent[:, 2 * case.units : 3 * case.units] = 0.0
            layer.set_weights([kernel, recurrent, bias])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if not quantized:
        path.write_bytes(converter.convert())
        return path
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(-case.calib_scale, case.calib_scale, shape).astype(np.float32)] for _ in range(64)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def ramp_input(shape: tuple[int, ...], time_major: bool) -> np.ndarray:
    """int8 input at +100 for the first 60 % of the steps, then -100."""
    steps = shape[0] if time_major else shape[1]
    sign = np.where(np.arange(steps) < 0.6 * steps, 100, -100).astype(np.int8)
    along = (slice(None), None, None) if time_major else (None, slice(None), None)
    return np.broadcast_to(sign[along], shape).copy()
