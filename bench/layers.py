"""Small Keras models of the newer layer kinds, trained on Fashion-MNIST, quantized by tinyq.

- `conv1d`: each image as a 28-step sequence of 28 features: Conv1D (causal), SeparableConv1D,
  MaxPooling1D, GlobalAveragePooling1D, LeakyReLU, a Dense head (accuracy).
- `autoencoder`: a convolutional autoencoder: strided Conv2D down, Conv2DTranspose up,
  sigmoid output (reconstruction SQNR against the float model).
- `unet`: a U-Net-like segmenter (foreground pixels above 0.5): Conv2D, MaxPooling2D,
  UpSampling2D and Concatenate skips, sigmoid mask (pixel accuracy).
- `se_swish`: a squeeze-and-excitation block with swish and hard-swish activations
  (accuracy).
Each is trained a few epochs (cached in bench/results/models/), quantized with tinyq's PTQ
(MSE ranges, 1,000 calibration images), and evaluated with the integer reference on the
10,000 test images; its host C is checked bit-exact against the reference on one image.
Run: python bench/layers.py [model ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import fashion
import numpy as np

from tinyq.boards import get_board
from tinyq.build import build
from tinyq.data import Dataset, quantize_input
from tinyq.importers.keras import load_float_keras
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.sim import FloatRunner

from common import print_table, write_results


def conv1d(keras):
    x = inputs = keras.Input((28, 28))
    x = keras.layers.Conv1D(32, 3, padding="causal")(x)
    x = keras.layers.LeakyReLU(0.1)(x)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.SeparableConv1D(48, 5, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name="conv1d")


def autoencoder(keras):
    x = inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x), name="autoencoder")


def unet(keras):
    x = inputs = keras.Input((28, 28, 1))
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    b = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(keras.layers.MaxPooling2D(2)(a))
    c = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(keras.layers.MaxPooling2D(2)(b))
    u = keras.layers.Concatenate()([keras.layers.UpSampling2D(2)(c), b])
    u = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(u)
    u = keras.layers.Concatenate()([keras.layers.UpSampling2D(2, interpolation="bilinear")(u), a])
    u = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(u)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(u), name="unet")


def se_swish(keras):
    x = inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(24, 3, strides=2, padding="same", activation="swish")(x)
    s = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = keras.layers.Conv2D(6, 1, activation="relu")(s)
    s = keras.layers.Conv2D(24, 1, activation="hard_sigmoid")(s)
    x = keras.layers.Multiply()([x, s])
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="hard_swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name="se_swish")


MODELS = {
    "conv1d": (conv1d, "classes"),
    "autoencoder": (autoencoder, "image"),
    "unet": (unet, "mask"),
    "se_swish": (se_swish, "classes"),
}


def trained(name: str, x_train, y_train, epochs: int = 3) -> Path:
    path = fashion.MODELS / f"layers_{name}.keras"
    if path.exists():
        return path
    import keras

    keras.utils.set_random_seed(0)
    builder, task = MODELS[name]
    model = builder(keras)
    x, y = task_data(name, x_train, y_train)
    loss = "sparse_categorical_crossentropy" if task == "classes" else "binary_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=loss)
    print(f"training {name} for {epochs} epochs...", file=sys.stderr)
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=2)
    fashion.MODELS.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def task_data(name: str, x, y):
    """Inputs and targets of a model's task."""
    task = MODELS[name][1]
    inputs = x[..., 0] if name == "conv1d" else x
    if task == "classes":
        return inputs, y
    if task == "image":
        return inputs, x
    return inputs, (x > 0.5).astype(np.float32)


def score(name: str, floats: np.ndarray, quantized: np.ndarray, target) -> tuple[float, float]:
    """(float, int8) task scores: accuracy in %, or SQNR in dB for the autoencoder."""
    task = MODELS[name][1]
    if task == "classes":
        return tuple(100 * float(np.mean(np.argmax(o.reshape(len(o), -1), 1) == target)) for o in (floats, quantized))
    if task == "mask":
        return tuple(
            100 * float(np.mean((o.reshape(target.shape) > 0.5) == (target > 0.5))) for o in (floats, quantized)
        )
    return sqnr_db(target, floats.reshape(target.shape)), sqnr_db(target, quantized.reshape(target.shape))


def main() -> None:
    x_train, y_train, x_test, y_test = fashion.load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sys.argv[1:] or list(MODELS):
            fm = load_float_keras(trained(name, x_train, y_train))
            calib_x, _ = task_data(name, x_train[:1000], y_train[:1000])
            test_x, target = task_data(name, x_test, y_test)
            graph = quantize(fm, Dataset(calib_x), parse_config("mse"), quiet=True).graph
            floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test_x])[0]
            ints = integer_outputs(graph, test_x, quiet=True)[0]
            deq = dequantize(graph[graph.outputs[0]], ints)
            float_score, int8_score = score(name, floats, deq, target)
            out = Path(tmp) / name
            report = build(graph, get_board("host"), out, source=name, log=lambda message: None)
            t = graph[graph.inputs[0]]
            np.save(out / "x.npy", quantize_input(test_x[0], t.qparams.s, t.qparams.zp).reshape(t.shape))
            from tinyq.bench import bench

            run = bench(out, input_path=out / "x.npy")
            metric = "SQNR dB" if MODELS[name][1] == "image" else "accuracy %"
            rows.append(
                {
                    "model": name,
                    "metric": metric,
                    "float": float_score,
                    "int8": int8_score,
                    "output_sqnr_db": sqnr_db(floats, deq.reshape(floats.shape)),
                    "ops": len(graph.ops),
                    "macs": report.model.macs,
                    "arena_bytes": report.memory.arena_bytes,
                    "bit_exact_c": run["bit_exact"],
                }
            )
            print(f"{name}: done", file=sys.stderr)
    print_table(
        rows,
        [
            ("model", "s"),
            ("metric", "s"),
            ("float", ".2f"),
            ("int8", ".2f"),
            ("output_sqnr_db", ".1f"),
            ("ops", "d"),
            ("macs", ","),
            ("arena_bytes", ","),
            ("bit_exact_c", ""),
        ],
    )
    print(f"wrote {write_results('layers', rows)}")


if __name__ == "__main__":
    main()
