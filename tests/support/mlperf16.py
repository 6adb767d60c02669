"""The MLPerf Tiny kws, ic and ad models in 16x8 (int16 activations, int8 weights), made by the
TFLite converter from their float Keras models. Keras 3 cannot load these .h5 files (nor kws's
SavedModel), so tinyq's Keras importer reads them and the converter traces the float graph
(tinyq.sim.forward, the same float arithmetic). Calibration: ad's real frames; kws and ic have no
dataset offline, so standard normal inputs (their int8 models' inputs span about +-3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

KERAS = {"kws": "kws/kws_ref_model.h5", "ic": "ic/pretrainedResnet.h5", "ad": "ad/ad01.h5"}
AD_FRAMES = "ad/sample_normal_id_01_00000000.bin"


def calibration(key: str, models: Path, shape) -> np.ndarray:
    if key == "ad":
        return np.fromfile(models / AD_FRAMES, np.float32).reshape((-1,) + tuple(shape))[:100]
    return np.random.default_rng(0).normal(0, 1, (50,) + tuple(shape)).astype(np.float32)


def convert_16x8(key: str, models: Path, out_dir: Path, samples: np.ndarray | None = None) -> Path:
    """models: the mlperf_tiny folder; `samples`: float calibration inputs (default: see
    calibration()). Cached in out_dir."""
    path = out_dir / f"{key}_16x8.tflite"
    if path.exists():
        return path
    import tensorflow as tf

    from tinyq.importers.keras import load_float_keras
    from tinyq.sim import forward

    graph = load_float_keras(models / KERAS[key]).graph
    name = graph.inputs[0]
    shape = graph[name].shape
    module = tf.Module()
    module.fn = tf.function(
        lambda x: [forward(graph, {name: x})[n] for n in graph.outputs],
        input_signature=[tf.TensorSpec(shape, tf.float32, name="x")],
        autograph=False,
    )
    samples = calibration(key, models, shape[1:]) if samples is None else samples
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.fn.get_concrete_function()], module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ({"x": s[None]} for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    converter.inference_input_type = tf.int16
    converter.inference_output_type = tf.int16
    path.write_bytes(converter.convert())
    return path
