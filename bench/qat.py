"""Quantization-aware training on Fashion-MNIST (MobileNet-like model), tinyq's LSQ QAT
against float and against PTQ (MSE ranges; + AdaRound at W4).

QAT fine-tunes from the trained float model for 2 epochs at learning rate
1e-4; so that fine-tuning is not mistaken for quantization, a float model
fine-tuned the same way is a row too. All quantized accuracies come from the
integer reference on the 10,000 test images. Run: python bench/qat.py
"""

from __future__ import annotations

import sys
import time

import fashion
import numpy as np

from tinyq import qat
from tinyq.data import Dataset
from tinyq.importers.keras import float_model_from_keras, load_float_keras
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import evaluate, integer_outputs
from tinyq.sim import FloatRunner
from tinyq.tf import keras as load_keras

from common import print_table, write_results

EPOCHS, LR = 2, 1e-4


def float_accuracy(graph, test) -> float:
    out = FloatRunner(graph, keep=set(graph.outputs)).outputs([test.x])[0]
    return 100 * float((out.reshape(len(out), -1).argmax(axis=1) == test.y).mean())


def main() -> None:
    x_train, y_train, x_test, y_test = fashion.load()
    test = Dataset(x_test, y_test)
    path = fashion.trained("mobilenet")
    fm = load_float_keras(path)
    rows = [
        {
            "row": "float",
            "bits": "-",
            "method": "trained 8 epochs",
            "accuracy": float_accuracy(fm.graph, test),
            "seconds": None,
        }
    ]
    keras = load_keras()
    tuned = keras.models.load_model(path)
    tuned.compile(optimizer=keras.optimizers.Adam(LR), loss="sparse_categorical_crossentropy")
    tuned.fit(x_train, y_train, batch_size=64, epochs=EPOCHS, verbose=0)
    rows.append(
        {
            "row": "float",
            "bits": "-",
            "method": f"+{EPOCHS} epochs fine-tuning (control)",
            "accuracy": float_accuracy(float_model_from_keras(tuned).graph, test),
            "seconds": None,
        }
    )
    calib = Dataset(x_train[:1000])
    for bits, algo in (("w8a8", "mse"), ("w4a8", "mse"), ("w4a8", "mse,adaround"), ("w3a8", "mse,adaround")):
        start = time.monotonic()
        graph = quantize(fm, calib, parse_config(algo, bits), quiet=True).graph
        rows.append(
            {
                "row": "PTQ",
                "bits": bits,
                "method": algo,
                "seconds": time.monotonic() - start,
                "accuracy": 100 * evaluate(None, graph, test, quiet=True)["quantized_accuracy"],
            }
        )
        print(rows[-1], file=sys.stderr)
    for bits, learnable in (("w8a8", True), ("w4a8", True), ("w4a8", False), ("w3a8", True)):
        start = time.monotonic()
        model = qat.prepare(fm, calib.x, bits=bits, learnable=learnable)
        qat.fit(model, x_train, y_train, epochs=EPOCHS, learning_rate=LR, quiet=True)
        graph = qat.convert(model)
        simulated = np.argmax(model.predict(test.x, verbose=0).reshape(len(test.x), -1), axis=1)
        ev = evaluate(None, graph, test, quiet=True)
        ints = integer_outputs(graph, test.x, quiet=True)[0].reshape(len(test.x), -1).argmax(axis=1)
        rows.append(
            {
                "row": "QAT",
                "bits": bits,
                "method": "LSQ" if learnable else "EMA ranges",
                "accuracy": 100 * ev["quantized_accuracy"],
                "seconds": time.monotonic() - start,
                "sim_agreement": 100 * float((simulated == ints).mean()),
            }
        )
        print(rows[-1], file=sys.stderr)
    print_table(rows, [("row", "s"), ("bits", "s"), ("method", "s"), ("accuracy", ".2f"), ("seconds", ".0f")])
    for row in rows:
        if "sim_agreement" in row:
            print(
                f"QAT {row['bits']} {row['method']}: fake-quant vs integer reference top-1 agreement "
                f"{row['sim_agreement']:.2f}%"
            )
    print(f"wrote {write_results('qat', rows)}")


if __name__ == "__main__":
    main()
