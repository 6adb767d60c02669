"""W8A8, W8A16 and mixed precision (`--a16 auto`) side by side: the two Fashion-MNIST models
(accuracy on the 10,000 test images, top-1 agreement with the float model and output SQNR
against float, all on the integer reference) and the MLPerf Tiny ad autoencoder, a regression
model (output SQNR against float on its real frames). Each configuration is built for
mps2_an386 (Cortex-M4) and run in QEMU: arena, flash and instructions per inference, bit-exact
with the reference.
Run: python bench/mixed.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import fashion
import numpy as np
from mlperf_keras import datasets

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.data import Dataset
from tinyq.importers.keras import load_float_keras
from tinyq.importers.tflite import load_tflite
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.report import QuantSummary
from tinyq.sim import FloatRunner

from common import mlperf_path, print_table, shared_dir, write_results

BOARD = "mps2_an386"
CONFIGS = {"w8a8": ("mse", "w8a8", None), "w8a16": ("mse", "w8a16", None), "mixed auto": ("mse", "w8a8", "auto")}


def models():
    """(name, float model, calibration, test data with labels or None)."""
    x_train, _, x_test, y_test = fashion.load()
    calib = Dataset(x_train[np.random.default_rng(0).choice(len(x_train), 1000, replace=False)])
    for name in ("mobilenet", "branchy"):
        yield name, load_float_keras(fashion.trained(name)), calib, Dataset(x_test, y_test)
    official = load_tflite(mlperf_path("ad"))
    ad_calib, ad_test = datasets("ad", official[official.inputs[0]])
    yield "ad (regression)", load_float_keras(shared_dir() / "models/mlperf_tiny/ad/ad01.h5"), ad_calib, ad_test


def _percent(predicted, expected) -> float | None:
    return None if expected is None else 100 * float(np.mean(predicted == expected))


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fm, calib, test in models():
            floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test.x])[0]
            for label, (method, bits, a16) in CONFIGS.items():
                result = quantize(fm, calib, parse_config(method, bits, a16=a16), quiet=True)
                graph = result.graph
                out = dequantize(graph[graph.outputs[0]], integer_outputs(graph, test.x, quiet=True)[0])
                out = out.reshape(floats.shape)
                out_dir = Path(tmp) / f"{name}_{label}".replace(" ", "_")
                report = build(
                    graph, get_board(BOARD), out_dir, source=name, quant=QuantSummary(bits, []), log=lambda m: None
                )
                run = bench(out_dir, emulate=True)
                int16 = sum(op.out_dtype == "int16" for op in report.ops)
                rows.append(
                    {
                        "model": name,
                        "config": label,
                        "int16 ops": f"{int16}/{len(report.ops)}",
                        "accuracy_pct": _percent(out.argmax(-1), test.y),
                        "float_accuracy_pct": _percent(floats.argmax(-1), test.y),
                        "agreement_pct": _percent(out.argmax(-1), None if test.y is None else floats.argmax(-1)),
                        "sqnr_db": sqnr_db(floats, out),
                        "arena_bytes": report.memory.arena_bytes,
                        "flash_bytes": report.memory.flash_bytes,
                        "instructions": run["instructions"],
                        "bit_exact": run["bit_exact"],
                    }
                )
                print(f"{name} {label}: done ({'; '.join(n for n in result.notes if 'a16' in n)})", file=sys.stderr)
    columns = [("model", "s"), ("config", "s"), ("int16 ops", "s"), ("accuracy_pct", ".2f")]
    columns += [
        ("float_accuracy_pct", ".2f"),
        ("agreement_pct", ".2f"),
        ("sqnr_db", ".1f"),
        ("arena_bytes", ","),
        ("flash_bytes", ","),
    ]
    columns += [("instructions", ","), ("bit_exact", "")]
    print_table(rows, columns)
    print(f"JSON: {write_results('mixed', rows)}")


if __name__ == "__main__":
    main()
