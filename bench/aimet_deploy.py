"""AIMET's exports of the PyTorch Fashion-MNIST models (bench/aimet_export.py, run first in
its own venv) deployed by tinyq with `--encodings`: tinyq's integer accuracy on the 10,000
test images against AIMET's QuantizationSimModel accuracy (W8A8, and W4A8 with AdaRound; what
AIMET leaves float, functional ops its model preparer would wrap, ranged by tinyq on the same
calibration images), and
each build for mps2_an386 (Cortex-M4) run in QEMU on a test image: instructions, arena, flash,
bit-exact with the reference.
Run: python bench/aimet_deploy.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import fashion
import numpy as np

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.importers.onnx import deployed_with_encodings
from tinyq.quant.evaluate import integer_outputs

from common import RESULTS, print_table, write_results

EXPORTS = RESULTS / "aimet"
BOARD = "mps2_an386"


def main() -> None:
    x_train, _, x_test, y_test = fashion.load()
    x_nchw = x_test.transpose(0, 3, 1, 2)
    # what AIMET left float (functional ops: x + y) is ranged on the 1,000 calibration images AIMET used
    calib = x_train[np.random.default_rng(0).choice(len(x_train), 1000, replace=False)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in json.loads((EXPORTS / "aimet.json").read_text()):
            _, graph, notes = deployed_with_encodings(EXPORTS / row["onnx"], EXPORTS / row["encodings"], calib)
            x = np.transpose(x_nchw, graph.input_perms[graph.inputs[0]])
            out = integer_outputs(graph, x, quiet=True)[0].reshape(len(y_test), -1)
            tinyq_pct = 100.0 * float(np.mean(out.argmax(-1) == y_test))
            fw = Path(tmp) / row["onnx"]
            report = build(graph, get_board(BOARD), fw, source=row["onnx"], log=lambda m: None)
            np.save(fw / "x.npy", x_nchw[0])
            run = bench(fw, emulate=True, input_path=fw / "x.npy")
            rows.append(
                {
                    "model": row["model"],
                    "config": row["config"],
                    "float_pct": row["float_pct"],
                    "aimet_sim_pct": row["aimet_sim_pct"],
                    "tinyq_pct": tinyq_pct,
                    "diff_points": tinyq_pct - row["aimet_sim_pct"],
                    "aimet_s": row["aimet_s"],
                    "m4_instructions": run["instructions"],
                    "arena_bytes": report.memory.arena_bytes,
                    "flash_bytes": report.memory.flash_bytes,
                    "bit_exact": run["bit_exact"],
                    "notes": "; ".join(notes) or "-",
                }
            )
    columns = [("model", ""), ("config", ""), ("float_pct", ".2f"), ("aimet_sim_pct", ".2f"), ("tinyq_pct", ".2f")]
    columns += [("diff_points", "+.2f"), ("aimet_s", ".0f"), ("m4_instructions", ","), ("arena_bytes", ",")]
    columns += [("flash_bytes", ","), ("bit_exact", ""), ("notes", "")]
    print_table(rows, columns)
    print(f"JSON: {write_results('aimet_deploy', rows)}")


if __name__ == "__main__":
    main()
