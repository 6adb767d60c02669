"""Quantization-aware training: prepare (the simulating Keras model), fit, convert."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tinyq import ir
from tinyq.data import Dataset
from tinyq.errors import TinyqError
from tinyq.float_model import FloatModel
from tinyq.importers.keras import float_model_from_keras, load_float_keras
from tinyq.ops.affine import is_affine, weight_axis
from tinyq.progress import progress
from tinyq.qat.model import build_model_class
from tinyq.quant import parse_config, quantize
from tinyq.quant.convert import WeightQuant, activation_qparams, to_int8
from tinyq.tf import keras as _keras
from tinyq.tf import tensorflow


def prepare(
    model,
    calib: np.ndarray,
    *,
    bits: str = "w8a8",
    per_channel: bool = True,
    learnable: bool = True,
    range_method: str = "mse",
    quiet: bool = True,
):
    """A Keras model simulating the deployment of `model` (a path, a keras.Model or a FloatModel)."""
    if isinstance(model, (str, Path)):
        fm = load_float_keras(model)
    elif isinstance(model, FloatModel):
        fm = model
    else:
        fm = float_model_from_keras(model)
    if len(fm.graph.inputs) != 1 or len(fm.graph.outputs) != 1:
        raise TinyqError("quantization-aware training supports models with one input and one output")
    config = parse_config(range_method, bits, per_tensor=not per_channel)
    result = quantize(fm, Dataset(np.asarray(calib, np.float32)), config, quiet=quiet)
    qparams = activation_qparams(fm.graph, result.ranges, config.activation_bits)
    scales = {
        op.name: np.asarray(result.graph[op.inputs[1]].qparams.scale, np.float32)
        for op in fm.graph.ops
        if is_affine(op)
    }
    qat = build_model_class()(
        fm.graph,
        qparams,
        scales,
        config.weight_bits,
        per_channel,
        learnable,
        config.activation_bits,
        name=f"{fm.graph.name}_qat",
    )
    qat(np.zeros((1,) + fm.graph[fm.graph.inputs[0]].shape[1:], np.float32))  # build
    return qat


def fit(
    qat_model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 2,
    batch_size: int = 64,
    learning_rate: float = 1e-4,
    quiet: bool = False,
    seed: int = 0,
) -> list[float]:
    """Train with cross-entropy on the logits (the input of a final SOFTMAX); returns epoch losses."""
    tf = tensorflow()
    keras = _keras()
    optimizer = keras.optimizers.Adam(learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = qat_model.trainable_variables

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            logits = qat_model(xb, training=True, return_logits=True)
            loss = loss_fn(yb, tf.reshape(logits, (tf.shape(logits)[0], -1)))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(seed)
    losses = []
    steps = math.ceil(len(x) / batch_size)
    with progress(quiet) as bar:
        task = bar.add_task("quantization-aware training", total=epochs * steps)
        for _ in range(epochs):
            order = rng.permutation(len(x))
            total = 0.0
            for i in range(steps):
                idx = order[i * batch_size : (i + 1) * batch_size]
                total += float(step(tf.constant(x[idx], tf.float32), tf.constant(y[idx])))
                bar.advance(task)
            losses.append(total / steps)
    return losses


def convert(qat_model) -> ir.Graph:
    """The quantized IR of a (trained) QAT model, what `tinyq build` deploys: int8 activations,
    or for w8a16 TFLM's 16x8 form (int16 activations with zero point 0, int64 biases)."""
    tf = tensorflow()
    graph = qat_model.graph
    tensors, weights = [], {}
    for op in qat_model.affine:
        w = qat_model.kernels[op.name].numpy()
        scale = qat_model.weight_scale(tf, op).numpy()
        values = np.clip(np.round(w / scale), -qat_model.qmax, qat_model.qmax).astype(np.int8)
        axis = weight_axis(op) if qat_model.per_channel else None
        weights[op.name] = WeightQuant(values, scale.reshape(-1).astype(np.float32), axis)
        wt, bt = graph[op.inputs[1]], graph[op.inputs[2]]
        tensors.append(ir.Tensor(wt.name, wt.shape, "float32", None, w))
        tensors.append(ir.Tensor(bt.name, bt.shape, "float32", None, qat_model.biases[op.name].numpy()))
    qparams = {}
    for name in qat_model.groups:
        scale, zp = qat_model.act_params(tf, name)
        qparams[name] = ir.QParams.per_tensor(float(scale.numpy()), int(zp.numpy()))
    bits = f"w{qat_model.bits}a{qat_model.activation_bits}"
    config = parse_config("minmax", bits, per_tensor=not qat_model.per_channel)
    return to_int8(graph.with_tensors(*tensors), qparams, config, weights)
