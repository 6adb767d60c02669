"""W4A8 on the device: the Fashion-MNIST MobileNet with int4 weights packed two per
byte, built for mps2_an386 and run in QEMU, next to its W8A8 build.

Reports weight bytes (the generated constant arrays: weights, biases,
requantization tables), weight-tensor bytes, flash, accuracy on the test
set (integer reference) and whether the QEMU run matches the host
reference bit for bit. Run: python bench/int4.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import fashion
import numpy as np

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.data import Dataset, quantize_input
from tinyq.importers.keras import load_float_keras
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import evaluate
from tinyq.report import QuantSummary

from common import print_table, write_results


def main() -> None:
    x_train, _, x_test, y_test = fashion.load()
    calib, test = Dataset(x_train[:1000]), Dataset(x_test, y_test)
    fm = load_float_keras(fashion.trained("mobilenet"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for bits, algo in (("w8a8", "mse"), ("w4a8", "mse,cle,bc,adaround")):
            graph = quantize(fm, calib, parse_config(algo, bits), quiet=True).graph
            out = Path(tmp) / bits
            report = build(
                graph,
                get_board("mps2_an386"),
                out,
                source="mobilenet",
                quant=QuantSummary(bits, algo.split(",")),
                log=lambda message: None,
            )
            t = graph[graph.inputs[0]]
            np.save(out / "x.npy", quantize_input(test.x[0], t.qparams.s, t.qparams.zp).reshape(t.shape))
            run = bench(out, emulate=True, input_path=out / "x.npy")
            tensor_bytes = sum(
                graph[op.inputs[1]].nbytes for op in graph.ops if len(op.inputs) > 1 and graph[op.inputs[1]].is_constant
            )
            rows.append(
                {
                    "bits": bits,
                    "algo": algo,
                    "weight_tensor_bytes": tensor_bytes,
                    "constant_bytes": report.memory.weights_bytes,
                    "flash_bytes": report.memory.flash_bytes,
                    "accuracy": 100 * evaluate(None, graph, test, quiet=True)["quantized_accuracy"],
                    "instructions": run["instructions"],
                    "bit_exact": run["bit_exact"],
                }
            )
    base = rows[0]
    for row in rows:
        row["weights_vs_w8a8"] = row["weight_tensor_bytes"] / base["weight_tensor_bytes"]
    print_table(
        rows,
        [
            ("bits", "s"),
            ("algo", "s"),
            ("weight_tensor_bytes", ","),
            ("weights_vs_w8a8", ".2f"),
            ("constant_bytes", ","),
            ("flash_bytes", ","),
            ("accuracy", ".2f"),
            ("instructions", ","),
            ("bit_exact", ""),
        ],
    )
    print(f"wrote {write_results('int4', rows)}")


if __name__ == "__main__":
    main()
