"""int16 activations (16x8) on the MLPerf Tiny kws, ic and ad models, built for mps2_an386 (Cortex-M4)
and run in QEMU: tinyq's own W8A8, W8A16 and mixed (`--a16 auto`) quantization of the float Keras models (output SQNR
against float with the integer reference, arena, flash, instructions per inference), and the TFLite
converter's 16x8 model of the same float model (same calibration samples) deployed as it is. Data
as in mlperf_keras.py (ad's real frames; smooth synthetic inputs for kws and ic).
Run: python bench/int16.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mlperf_keras import KERAS, datasets

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.importers.keras import load_float_keras
from tinyq.importers.tflite import load_tflite
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.report import QuantSummary
from tinyq.sim import FloatRunner

from common import mlperf_path, print_table, shared_dir, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.mlperf16 import convert_16x8  # noqa: E402  (the tests' converter recipe, shared)

BOARD = "mps2_an386"
CONFIGS = {"w8a8": ("mse", "w8a8", None), "w8a16": ("mse", "w8a16", None), "w8a8+a16 auto": ("mse", "w8a8", "auto")}


def main() -> None:
    rows = []
    models = shared_dir() / "models" / "mlperf_tiny"
    with tempfile.TemporaryDirectory() as tmp:
        for key, rel in KERAS.items():
            fm = load_float_keras(models / rel)
            official = load_tflite(mlperf_path(key))
            calib, test = datasets(key, official[official.inputs[0]])
            floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test.x])[0]

            def run(label, graph, bits, floats=floats, test=test, key=key, rel=rel):
                out = integer_outputs(graph, test.x, quiet=True)[0]
                sqnr = sqnr_db(floats, dequantize(graph[graph.outputs[0]], out).reshape(floats.shape))
                out_dir = Path(tmp) / f"{key}_{label}"
                report = build(
                    graph, get_board(BOARD), out_dir, source=rel, quant=QuantSummary(bits, []), log=lambda m: None
                )
                result = bench(out_dir, emulate=True)
                return {
                    "model": key,
                    "quantized by": label,
                    "ops": len(graph.ops),
                    "sqnr_db": sqnr,
                    "arena_bytes": report.memory.arena_bytes,
                    "flash_bytes": report.memory.flash_bytes,
                    "instructions": result["instructions"],
                    "bit_exact": result["bit_exact"],
                }

            for bits, (method, spec, a16) in CONFIGS.items():
                graph = quantize(fm, calib, parse_config(method, spec, a16=a16), quiet=True).graph
                rows.append(run(f"tinyq {bits}", graph, bits))
            converted = load_tflite(convert_16x8(key, models, Path(tmp), calib.x))  # the same calibration
            rows.append(run("converter 16x8", converted, "w8a16"))
            print(f"{key}: done", file=sys.stderr)
    columns = [("model", "s"), ("quantized by", "s"), ("ops", "d"), ("sqnr_db", ".1f"), ("arena_bytes", ",")]
    columns += [("flash_bytes", ","), ("instructions", ","), ("bit_exact", "")]
    print_table(rows, columns)
    print(f"JSON: {write_results('int16', rows)}")


if __name__ == "__main__":
    main()
