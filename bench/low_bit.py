"""Low-bit accuracy: rounding methods at W4A8 and W3A8, and an ablation of what the W4 result
depends on.

1. methods: the two Fashion-MNIST models (1,000 calibration images drawn with seed 0, the
   10,000 test images), W4A8 per tensor and per channel and W3A8 per channel: nearest rounding
   (mse), AdaRound, BRECQ, QDrop (each on mse ranges) and mse,cle,bc,adaround. Accuracy is the
   deployed integer arithmetic's (the host evaluator, bit-exact with the numpy reference); the
   difference to float is paired (the same images), with its 95 % interval. W3 weights deploy
   in int4 storage (values in -3..3): W3's accuracy, int4's flash.
2. ablation (mobilenet, W4A8 per tensor, the hard case): the range method under AdaRound
   (minmax, meanmax, percentile, mse), AdaRound's iterations per unit, the calibration set's
   size, CLE and bias correction around AdaRound, layers against blocks.
Wall time: tinyq's quantization on this machine (two cores).
Run: python bench/low_bit.py [methods|ablation]
"""

from __future__ import annotations

import math
import sys
import time

import fashion
import numpy as np

from tinyq.data import Dataset
from tinyq.importers.keras import load_float_keras
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import dequantize, integer_outputs
from tinyq.sim import FloatRunner

from common import print_table, write_results

METHODS = (
    ("nearest", "mse"),
    ("adaround", "mse,adaround"),
    ("brecq", "mse,brecq"),
    ("qdrop", "mse,qdrop"),
    ("cle+bc+adaround", "mse,cle,bc,adaround"),
)
SETTINGS = (("w4a8", True), ("w4a8", False), ("w3a8", False))
ABLATION = (  # (what varies, label, algo, AdaRound iterations, calibration images)
    ("range", "minmax", "minmax,adaround", 1000, 1000),
    ("range", "meanmax", "meanmax,adaround", 1000, 1000),
    ("range", "percentile", "percentile,adaround", 1000, 1000),
    ("range", "mse", "mse,adaround", 1000, 1000),
    ("iterations", "300", "mse,adaround", 300, 1000),
    ("iterations", "3000", "mse,adaround", 3000, 1000),
    ("calibration", "256 images", "mse,adaround", 1000, 256),
    ("passes", "+cle", "mse,cle,adaround", 1000, 1000),
    ("passes", "+bc", "mse,bc,adaround", 1000, 1000),
    ("passes", "+cle+bc", "mse,cle,bc,adaround", 1000, 1000),
    ("units", "blocks +cle+bc", "mse,cle,bc,brecq", 1000, 1000),
    ("units", "qdrop +cle+bc", "mse,cle,bc,qdrop", 1000, 1000),
)


def correct(graph, x, y) -> np.ndarray:
    out = dequantize(graph[graph.outputs[0]], integer_outputs(graph, x, quiet=True)[0])
    return np.argmax(out.reshape(len(out), -1), axis=1) == y


def row(name, fm, calib, test, float_correct, bits, per_tensor, label, algo, iterations=1000) -> dict:
    start = time.perf_counter()
    graph = quantize(fm, calib, parse_config(algo, bits, per_tensor), quiet=True, adaround_iterations=iterations).graph
    seconds = time.perf_counter() - start
    ok = correct(graph, test.x, test.y)
    diff = ok.astype(np.float64) - float_correct
    half = 1.96 * 100 * float(diff.std(ddof=1)) / math.sqrt(len(diff))
    result = {
        "model": name,
        "bits": bits,
        "weights": "per-tensor" if per_tensor else "per-channel",
        "method": label,
        "algo": algo,
        "accuracy": 100 * float(ok.mean()),
        "vs_float": 100 * float(diff.mean()),
        "ci95": half,
        "seconds": seconds,
    }
    print(f"{name} {bits} {result['weights']} {label}: {result['accuracy']:.2f} ({seconds:.0f} s)", file=sys.stderr)
    return result


def setup(name, calib_images=1000):
    x_train, _, x_test, y_test = fashion.load()
    pick = np.random.default_rng(0).choice(len(x_train), 1000, replace=False)[:calib_images]
    calib, test = Dataset(x_train[pick]), Dataset(x_test, y_test)
    fm = load_float_keras(fashion.trained(name))
    floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test.x])[0]
    return fm, calib, test, (np.argmax(floats.reshape(len(floats), -1), axis=1) == test.y).astype(np.float64)


COLUMNS = [("model", "s"), ("bits", "s"), ("weights", "s"), ("method", "s"), ("accuracy", ".2f")]
COLUMNS += [("vs_float", "+.2f"), ("ci95", ".2f"), ("seconds", ".0f")]


def methods() -> list[dict]:
    rows = []
    for name in ("mobilenet", "branchy"):
        fm, calib, test, float_correct = setup(name)
        rows.append({"model": name, "bits": "float", "weights": "-", "method": "-", "algo": "-"})
        rows[-1] |= {"accuracy": 100 * float_correct.mean(), "vs_float": 0.0, "ci95": None, "seconds": None}
        for bits, per_tensor in SETTINGS:
            for label, algo in METHODS:
                rows.append(row(name, fm, calib, test, float_correct, bits, per_tensor, label, algo))
    return rows


def ablation() -> list[dict]:
    rows = []
    for what, label, algo, iterations, images in ABLATION:
        fm, calib, test, float_correct = setup("mobilenet", images)
        r = row("mobilenet", fm, calib, test, float_correct, "w4a8", True, label, algo, iterations)
        rows.append({"varies": what} | r)
    return rows


def main() -> None:
    parts = sys.argv[1:] or ["methods", "ablation"]
    if "methods" in parts:
        rows = methods()
        print_table(rows, COLUMNS)
        print(f"JSON: {write_results('low_bit_methods', rows)}")
    if "ablation" in parts:
        rows = ablation()
        print_table(rows, [("varies", "s")] + COLUMNS[3:])
        print(f"JSON: {write_results('low_bit_ablation', rows)}")


if __name__ == "__main__":
    main()
