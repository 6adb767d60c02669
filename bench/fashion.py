"""Fashion-MNIST (Debian's dataset-fashion-mnist) and the two models the PTQ/QAT benches use.

- `mobilenet`: depthwise-separable blocks with BatchNorm + ReLU6, global pooling, dense head.
- `branchy`: Concatenate, Add and MaxPooling, a Dense head.
- `lstm`, `gru`, `simple_rnn`: the image as a sequence of 28 rows of 28 pixels into one
  recurrent layer of 64 units, a Dense head.
Models are trained once and cached in bench/results/models/ (delete to retrain).
"""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DATA = Path("/usr/share/datasets/fashion-mnist")
MODELS = Path(__file__).resolve().parent / "results" / "models"


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test); images float32 in [0, 1], shape (N, 28, 28, 1)."""
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: apt-get install dataset-fashion-mnist")
    x_train = _idx(DATA / "train-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    x_test = _idx(DATA / "t10k-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    return (
        x_train,
        _idx(DATA / "train-labels-idx1-ubyte.gz").astype(np.int64),
        x_test,
        _idx(DATA / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
    )


def mobilenet(keras):
    """Depthwise-separable, BatchNorm + ReLU6 everywhere (MobileNet v1 style)."""
    x = inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    for filters, stride in ((32, 1), (64, 2), (64, 1), (128, 2)):
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
        x = keras.layers.Conv2D(filters, 1, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name="mobilenet")


def branchy(keras):
    """Two branches concatenated, a residual Add, max pooling and a Dense head."""
    x = inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(24, 3, padding="same", activation="relu")(x)
    a = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    b = keras.layers.Conv2D(16, 1, padding="same", activation="relu")(x)
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.MaxPooling2D(2)(x)
    y = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(32, 3, padding="same")(y)
    x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(48, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name="branchy")


def recurrent(layer: str, units: int = 64):
    """The image as 28 time steps of 28 features into one recurrent layer, then a Dense head."""

    def build(keras):
        x = inputs = keras.Input((28, 28, 1))
        x = keras.layers.Reshape((28, 28))(x)
        x = getattr(keras.layers, layer)(units)(x)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name=layer.lower())

    return build


def causal_conv_gru(keras):
    """The rows through two causal Conv1D layers (the second dilated: a receptive field of 7 rows)
    into a GRU: a streaming build keeps ring buffers for the convolutions."""
    x = inputs = keras.Input((28, 28, 1))
    x = keras.layers.Reshape((28, 28))(x)
    x = keras.layers.Conv1D(32, 3, padding="causal", activation="relu")(x)
    x = keras.layers.Conv1D(32, 3, padding="causal", dilation_rate=2, activation="relu")(x)
    x = keras.layers.GRU(64)(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name="conv_gru")


BUILDERS = {
    "mobilenet": mobilenet,
    "branchy": branchy,
    "lstm": recurrent("LSTM"),
    "gru": recurrent("GRU"),
    "simple_rnn": recurrent("SimpleRNN"),
    "conv_gru": causal_conv_gru,
}


def trained(name: str, epochs: int = 8) -> Path:
    """Path to the trained model, training it first if needed."""
    path = MODELS / f"{name}.keras"
    if path.exists():
        return path
    import keras

    keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = load()
    model = BUILDERS[name](keras)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"training {name} for {epochs} epochs...", file=sys.stderr)
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_data=(x_test, y_test), verbose=2)
    MODELS.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def save_npz(path: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, **({"y": y} if y is not None else {}))
    return path
