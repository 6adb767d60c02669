"""The MLPerf Tiny Keras models through tinyq's own quantizer: import, quantize, build, run.

kws_ref_model.h5, pretrainedResnet.h5 and ad01.h5 are imported from Keras,
quantized (W8A8, MSE ranges, per channel), built for mps2_an386 and run in
QEMU. Reported: the int8-vs-float SQNR of the outputs (integer reference) and,
for comparison, the same SQNR of the MLPerf int8 .tflite files (the TFLite
converter, calibrated on the real datasets: on synthetic inputs their ranges
do not fit, so that column means something for ad only). Data: ad uses the real frames shipped with
the model; kws and ic have no dataset offline, so they use smooth synthetic
inputs spanning the int8 models' input ranges. Run: python bench/mlperf_keras.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

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

KERAS = {"kws": "kws/kws_ref_model.h5", "ic": "ic/pretrainedResnet.h5", "ad": "ad/ad01.h5"}


def smooth_noise(count: int, shape, lo: float, hi: float, seed: int) -> np.ndarray:
    """Random fields low-passed along the two spatial axes, scaled into [lo, hi]."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (count,) + shape)
    for axis in (1, 2):
        x = (x + np.roll(x, 1, axis) + np.roll(x, -1, axis)) / 3
        x = (x + np.roll(x, 1, axis) + np.roll(x, -1, axis)) / 3
    x = (x - x.min()) / (x.max() - x.min())
    return (lo + (hi - lo) * x).astype(np.float32)


def datasets(key: str, int8_input) -> tuple[Dataset, Dataset]:
    q = int8_input.qparams
    lo, hi = (-128 - q.zp) * q.s, (127 - q.zp) * q.s
    if key == "ad":
        frames = np.fromfile(shared_dir() / "models/mlperf_tiny/ad/sample_normal_id_01_00000000.bin", np.float32)
        frames = frames.reshape(-1, 640)
        return Dataset(frames[:20]), Dataset(frames)
    shape = int8_input.shape[1:]
    return Dataset(smooth_noise(500, shape, lo, hi, 0)), Dataset(smooth_noise(200, shape, lo, hi, 1))


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key, rel in KERAS.items():
            fm = load_float_keras(shared_dir() / "models" / "mlperf_tiny" / rel)
            official = load_tflite(mlperf_path(key))
            calib, test = datasets(key, official[official.inputs[0]])
            result = quantize(fm, calib, parse_config("mse"), quiet=True)
            floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test.x])[0]

            def output_sqnr(graph, test=test, floats=floats):
                out = integer_outputs(graph, test.x, quiet=True)[0]
                return sqnr_db(floats, dequantize(graph[graph.outputs[0]], out).reshape(floats.shape))

            out_dir = Path(tmp) / key
            report = build(
                result.graph,
                get_board("mps2_an386"),
                out_dir,
                source=rel,
                quant=QuantSummary("w8a8", ["mse"]),
                log=lambda message: None,
            )
            run = bench(out_dir, emulate=True)
            rows.append(
                {
                    "model": key,
                    "ops": len(result.graph.ops),
                    "calibration": len(calib.x),
                    "tinyq_sqnr_db": output_sqnr(result.graph),
                    "mlperf_int8_sqnr_db": output_sqnr(official),
                    "arena_bytes": report.memory.arena_bytes,
                    "flash_bytes": report.memory.flash_bytes,
                    "instructions": run["instructions"],
                    "bit_exact": run["bit_exact"],
                }
            )
            print(f"{key}: done", file=sys.stderr)
    print_table(
        rows,
        [
            ("model", "s"),
            ("ops", "d"),
            ("calibration", "d"),
            ("tinyq_sqnr_db", ".1f"),
            ("mlperf_int8_sqnr_db", ".1f"),
            ("arena_bytes", ","),
            ("flash_bytes", ","),
            ("instructions", ","),
            ("bit_exact", ""),
        ],
    )
    print(f"wrote {write_results('mlperf_keras', rows)}")


if __name__ == "__main__":
    main()
