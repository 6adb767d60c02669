"""Small models, converted by the TFLite converter, that cover the awkward corners of the
int8 kernels. One row per case: a builder, the ops the converted model must contain (so each
row really covers what it claims), and converter switches (`int16`: the converter's 16x8 mode,
int16 activations). A builder is a Keras model body, or (with `tf`) TensorFlow operations on
the inputs, traced as one function: the way to make a single-op model of any TFLite operator.

The rows live in this package's modules, one per operator family (each a list ROWS); CASES
is all of them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    input_shape: tuple[int, ...]
    build: Callable  # (keras, input tensor) -> output tensor(s); with `tf`: (tf, *inputs) -> output(s)
    must_have: tuple[str, ...]
    per_tensor_dense: bool = False
    float_io: bool = False
    calib_scale: float = 1.0
    expect: dict = field(default_factory=dict)
    inputs: int = 1  # with more than one, `build` gets a list of inputs of input_shape
    int16: bool = False
    tf: bool = False
    input_shapes: tuple[tuple[int, ...], ...] = ()  # inputs of different shapes (default: `inputs` x input_shape)
    int32_inputs: tuple[tuple[int, int], ...] = ()  # (input position, exclusive bound): int32 index inputs
    dynamic_batch: bool = False  # a Keras model with batch None: the converter computes shapes at run time

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return self.input_shapes or (self.input_shape,) * self.inputs


def convert(case: Case, out_dir: Path) -> Path:
    """Build the case's Keras model and convert it to an int8 .tflite (cached)."""
    path = out_dir / f"{case.name}.tflite"
    if path.exists():
        return path
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(len(case.name))
    rng = np.random.default_rng(0)
    bounds = dict(case.int32_inputs)

    def sample(i, shape):
        if i in bounds:
            return rng.integers(0, bounds[i], (1,) + shape).astype(np.int32)
        return rng.uniform(-case.calib_scale, case.calib_scale, (1,) + shape).astype(np.float32)

    def representative():
        for _ in range(64):
            samples = [sample(i, shape) for i, shape in enumerate(case.shapes)]
            # a traced function's inputs are matched by name: the converter reorders them
            yield {f"in{i}": x for i, x in enumerate(samples)} if case.tf else samples

    if case.tf:
        specs = [
            tf.TensorSpec((1,) + s, tf.int32 if i in bounds else tf.float32, name=f"in{i}")
            for i, s in enumerate(case.shapes)
        ]
        module = tf.Module()
        module.fn = tf.function(lambda *xs: case.build(tf, *xs), input_signature=specs, autograph=False)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([module.fn.get_concrete_function()], module)
    else:
        xs = [keras.Input(shape, batch_size=None if case.dynamic_batch else 1) for shape in case.shapes]
        model = keras.Model(xs, case.build(keras, xs if len(xs) > 1 else xs[0]))
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    ops_set = (
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        if case.int16
        else tf.lite.OpsSet.TFLITE_BUILTINS_INT8
    )
    converter.target_spec.supported_ops = [ops_set]
    if not case.float_io:
        converter.inference_input_type = tf.int16 if case.int16 else tf.int8
        converter.inference_output_type = tf.int16 if case.int16 else tf.int8
    if case.per_tensor_dense:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    data = converter.convert()
    path.write_bytes(data)
    return path


def _all_rows() -> list[Case]:
    rows = []
    for module in pkgutil.iter_modules(__path__):
        rows += importlib.import_module(f"{__name__}.{module.name}").ROWS
    names = [c.name for c in rows]
    assert len(set(names)) == len(names), "two cases share a name"
    return rows


CASES = _all_rows()
