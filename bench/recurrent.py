"""Recurrent models on Fashion-MNIST as sequences (28 time steps of 28 pixels): float accuracy
(LSTM, GRU, SimpleRNN, and causal Conv1D layers into a GRU) against tinyq's integer deployment
(int8 with an int16 cell state for the LSTM; the LSTM also 16x8, int16 activations) measured
with the integer reference on the 10,000 test images, with top-1 agreement and output SQNR;
each model built for mps2_an386 (Cortex-M4) and run in QEMU for instructions per inference,
arena and flash, bit-exact with the reference. Then each model built --streaming and fed one
test image row by row (28 frames, after a RESET; the convolutions keep ring buffers of past
rows): instructions per frame, every frame bit-exact with the reference of the rows so far,
the last frame equal to the whole-image inference.
Run: python bench/recurrent.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import fashion
import numpy as np

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.data import Dataset
from tinyq.importers.keras import load_float_keras
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.report import QuantSummary
from tinyq.sim import FloatRunner
from tinyq.streaming import streaming

from common import print_table, write_results

BOARD = "mps2_an386"
# (model, bits): the LSTM also 16x8 (int16 activations and hidden state)
VARIANTS = (("lstm", "w8a8"), ("lstm", "w8a16"), ("gru", "w8a8"), ("simple_rnn", "w8a8"), ("conv_gru", "w8a8"))
EPOCHS = 15


def _streamed(graph, image: np.ndarray, out_dir: Path) -> dict:
    """The model built --streaming, fed the image's 28 rows one per call in QEMU."""
    report = build(streaming(graph), get_board(BOARD), out_dir, source="streaming", log=lambda m: None)
    np.save(out_dir / "rows.npy", image.reshape(28, 28))
    run = bench(out_dir, emulate=True, sequence_path=out_dir / "rows.npy")
    whole = integer_outputs(graph, image[None], quiet=True)[0].reshape(-1).tolist()
    return run | {"arena_bytes": report.memory.arena_bytes, "last_equals_whole": run["outputs"][-1] == whole}


def main() -> None:
    x_train, _, x_test, y_test = fashion.load()
    calib = Dataset(x_train[np.random.default_rng(0).choice(len(x_train), 1000, replace=False)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, bits in VARIANTS:
            fm = load_float_keras(fashion.trained(name, epochs=EPOCHS))
            floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([x_test])[0]
            start = time.perf_counter()
            graph = quantize(fm, calib, parse_config("minmax", bits), quiet=True).graph
            quantize_s = time.perf_counter() - start
            start = time.perf_counter()
            out = dequantize(graph[graph.outputs[0]], integer_outputs(graph, x_test, quiet=True)[0])
            eval_s = time.perf_counter() - start
            out = out.reshape(floats.shape)
            out_dir = Path(tmp) / f"{name}_{bits}"
            summary = QuantSummary(bits, [])
            report = build(graph, get_board(BOARD), out_dir, source=name, quant=summary, log=lambda m: None)
            run = bench(out_dir, emulate=True)
            streamed = _streamed(graph, x_test[0], Path(tmp) / f"{name}_{bits}_streaming")
            float_acc = 100 * float(np.mean(floats.argmax(-1) == y_test))
            integer_acc = 100 * float(np.mean(out.argmax(-1) == y_test))
            rows.append(
                {
                    "model": name,
                    "bits": bits,
                    "float_accuracy_pct": float_acc,
                    "integer_accuracy_pct": integer_acc,
                    "drop_points": float_acc - integer_acc,
                    "agreement_pct": 100 * float(np.mean(out.argmax(-1) == floats.argmax(-1))),
                    "sqnr_db": sqnr_db(floats, out),
                    "quantize_s": quantize_s,
                    "eval_s": eval_s,
                    "macs": sum(op.macs for op in report.ops),
                    "arena_bytes": report.memory.arena_bytes,
                    "flash_bytes": report.memory.flash_bytes,
                    "instructions": run["instructions"],
                    "bit_exact": run["bit_exact"],
                    "frame_instructions_max": max(streamed["instructions_per_frame"]),
                    "frame_arena_bytes": streamed["arena_bytes"],
                    "frames_bit_exact": streamed["bit_exact"] and streamed["last_equals_whole"],
                }
            )
            print(f"{name} {bits}: done", file=sys.stderr)
    columns = [("model", "s"), ("bits", "s"), ("float_accuracy_pct", ".2f"), ("integer_accuracy_pct", ".2f")]
    columns += [("drop_points", ".2f")]
    columns += [("agreement_pct", ".2f"), ("sqnr_db", ".1f"), ("quantize_s", ".1f"), ("eval_s", ".1f")]
    columns += [("macs", ","), ("arena_bytes", ","), ("flash_bytes", ","), ("instructions", ","), ("bit_exact", "")]
    columns += [("frame_instructions_max", ","), ("frame_arena_bytes", ","), ("frames_bit_exact", "")]
    print_table(rows, columns)
    print(f"JSON: {write_results('recurrent', rows)}")


if __name__ == "__main__":
    main()
