"""Advanced PTQ on Fashion-MNIST: nearest rounding, +CLE, +BC, +AdaRound and all three,
for W8A8 per-tensor, W4A8 per-tensor and W4A8 per-channel, MSE ranges throughout.

Accuracy on the 10,000 test images is computed with the integer reference
(bit-exact with the generated C); the wall time is tinyq's quantization on
this machine (AdaRound: 1000 iterations per layer, 512 calibration images).
Run: python bench/advanced_ptq.py
"""

from __future__ import annotations

import sys
import time

import fashion

from tinyq.data import Dataset
from tinyq.importers.keras import load_float_keras
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import evaluate
from tinyq.sim import FloatRunner

from common import print_table, write_results

SETTINGS = (("w8a8", True), ("w4a8", True), ("w4a8", False))
PASSES = (("nearest", ""), ("+CLE", ",cle"), ("+BC", ",bc"), ("+AdaRound", ",adaround"), ("all", ",cle,bc,adaround"))


def main() -> None:
    x_train, _, x_test, y_test = fashion.load()
    calib, test = Dataset(x_train[:1000]), Dataset(x_test, y_test)
    rows = []
    for name in ("mobilenet", "branchy"):
        fm = load_float_keras(fashion.trained(name))
        floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test.x])[0]
        float_acc = 100 * float((floats.argmax(axis=1) == test.y).mean())
        rows.append(
            {
                "model": name,
                "bits": "float",
                "granularity": "-",
                "passes": "-",
                "accuracy": float_acc,
                "delta": 0.0,
                "seconds": None,
            }
        )
        for bits, per_tensor in SETTINGS:
            for label, passes in PASSES:
                start = time.monotonic()
                result = quantize(fm, calib, parse_config("mse" + passes, bits, per_tensor), quiet=True)
                seconds = time.monotonic() - start
                acc = 100 * evaluate(None, result.graph, test, quiet=True)["quantized_accuracy"]
                rows.append(
                    {
                        "model": name,
                        "bits": bits,
                        "granularity": "per-tensor" if per_tensor else "per-channel",
                        "passes": label,
                        "accuracy": acc,
                        "delta": acc - float_acc,
                        "seconds": seconds,
                    }
                )
                print(
                    f"{name} {bits} {'pt' if per_tensor else 'pc'} {label}: {acc:.2f} ({seconds:.1f} s)",
                    file=sys.stderr,
                )
    print_table(
        rows,
        [
            ("model", "s"),
            ("bits", "s"),
            ("granularity", "s"),
            ("passes", "s"),
            ("accuracy", ".2f"),
            ("delta", "+.2f"),
            ("seconds", ".1f"),
        ],
    )
    print(f"wrote {write_results('advanced_ptq', rows)}")
    for name in ("mobilenet", "branchy"):
        for bits, per_tensor in SETTINGS:
            best = max(
                (
                    r
                    for r in rows
                    if r["model"] == name
                    and r["bits"] == bits
                    and r["granularity"] == ("per-tensor" if per_tensor else "per-channel")
                ),
                key=lambda r: r["accuracy"],
            )
            print(f"{name} {bits} {best['granularity']}: best {best['passes']} {best['delta']:+.2f} points")


if __name__ == "__main__":
    main()
