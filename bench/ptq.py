"""Post-training quantization on Fashion-MNIST: tinyq's range methods against the TFLite converter.

Two models of our own (bench/fashion.py), 1000 calibration images from the
training set, accuracy on the 10,000 test images. Quantized accuracies are
computed with the integer reference (bit-exact with TFLite Micro); the
TFLite converter's full-int8 model (its own PTQ on the same calibration
images) is evaluated the same way. Run: python bench/ptq.py
"""

from __future__ import annotations

import os
import sys

import fashion
import numpy as np

from common import converter_int8, print_table, write_results

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tinyq.data import Dataset  # noqa: E402
from tinyq.importers.keras import load_float_keras  # noqa: E402
from tinyq.importers.tflite import parse_tflite  # noqa: E402
from tinyq.quant import parse_config, quantize  # noqa: E402
from tinyq.quant.evaluate import evaluate  # noqa: E402

CALIBRATION = 1000
METHODS = ("minmax", "percentile", "mse", "bn")


def tflite_converter_int8(model, calib: np.ndarray) -> bytes:
    import keras
    import tensorflow as tf

    inputs = keras.Input(calib.shape[1:], batch_size=1)  # batch 1: no dynamic-shape ops
    return converter_int8(tf, keras.Model(inputs, model(inputs)), calib)


def rows_for(name: str, x_train, y_train, x_test, y_test) -> list[dict]:
    fm = load_float_keras(fashion.trained(name))
    calib, test = Dataset(x_train[:CALIBRATION]), Dataset(x_test, y_test)
    rows = []
    converted = parse_tflite(tflite_converter_int8(fm.keras_model, calib.x))
    peer = evaluate(None, converted, test, quiet=True)
    first = None
    for per_channel in (True, False):
        for method in METHODS:
            config = parse_config(method, "w8a8", per_tensor=not per_channel)
            result = quantize(fm, calib, config, quiet=True)
            ev = evaluate(result.graph and fm.graph, result.graph, test, quiet=True)
            first = first or ev
            rows.append(
                {
                    "model": name,
                    "quantizer": "tinyq",
                    "granularity": "per-channel" if per_channel else "per-tensor",
                    "range": method,
                    "accuracy": 100 * ev["quantized_accuracy"],
                    "agreement": 100 * ev["agreement"],
                    "output_sqnr_db": ev["output_sqnr_db"],
                }
            )
            print(f"{name} {method} {'pc' if per_channel else 'pt'}: {rows[-1]['accuracy']:.2f}", file=sys.stderr)
    header = [
        {
            "model": name,
            "quantizer": "float",
            "granularity": "-",
            "range": "-",
            "accuracy": 100 * first["float_accuracy"],
            "agreement": 100.0,
            "output_sqnr_db": None,
        },
        {
            "model": name,
            "quantizer": "tflite-converter",
            "granularity": "per-channel",
            "range": "minmax",
            "accuracy": 100 * peer["quantized_accuracy"],
            "agreement": None,
            "output_sqnr_db": None,
        },
    ]
    return header + rows


def main() -> None:
    x_train, y_train, x_test, y_test = fashion.load()
    rows = []
    for name in ("mobilenet", "branchy"):
        rows += rows_for(name, x_train, y_train, x_test, y_test)
    print_table(
        rows,
        [
            ("model", "s"),
            ("quantizer", "s"),
            ("granularity", "s"),
            ("range", "s"),
            ("accuracy", ".2f"),
            ("agreement", ".2f"),
            ("output_sqnr_db", ".1f"),
        ],
    )
    print(f"wrote {write_results('ptq', rows)}")
    for name in ("mobilenet", "branchy"):
        mine = max(r["accuracy"] for r in rows if r["model"] == name and r["quantizer"] == "tinyq")
        peer = next(r["accuracy"] for r in rows if r["model"] == name and r["quantizer"] == "tflite-converter")
        print(f"{name}: best tinyq W8A8 {mine:.2f}% vs TFLite converter {peer:.2f}% ({'>=' if mine >= peer else '<'})")


if __name__ == "__main__":
    main()
