"""Instructions per inference in QEMU, next to TFLite Micro + CMSIS-NN measured the same way.

For kws, ic and ad on mps2_an386 (Cortex-M4) and mps2_an500 (Cortex-M7):
instructions per inference and per MAC, the ratio to TFLM+CMSIS-NN, arena
and firmware flash against TFLM's (../shared/anchors/tflm_cortex_m.json).
Outputs are checked bit-exact on every run. Run: python bench/emulated.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.importers import load_model

from common import anchors, mlperf_path, print_table, write_results

CORES = {"mps2_an386": "cortex-m4", "mps2_an500": "cortex-m7"}


def main() -> None:
    peer = anchors()["models"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in ("kws", "ic", "ad"):
            for board, core in CORES.items():
                out = Path(tmp) / f"{key}_{board}"
                report = build(
                    load_model(mlperf_path(key)), get_board(board), out, source=key, log=lambda message: None
                )
                result = bench(out, emulate=True, runs=2)
                tflm = peer[key][f"{core}/tflm+cmsis-nn"]
                mem = report.memory
                rows.append(
                    {
                        "model": key,
                        "board": board,
                        "instructions": result["instructions"],
                        "instr_per_mac": result["instructions_per_mac"],
                        "tflm_instructions": tflm["instructions_per_inference"],
                        "instr_ratio": result["instructions"] / tflm["instructions_per_inference"],
                        "arena_bytes": mem.arena_bytes,
                        "arena_ratio": mem.arena_bytes / tflm["arena_bytes"],
                        "flash_bytes": mem.flash_bytes,
                        "flash_ratio": mem.flash_bytes / tflm["flash_bytes"],
                        "ram_bytes": mem.ram_bytes,
                        "bit_exact": result["bit_exact"],
                        "deterministic": result["instructions_all_runs_equal"],
                    }
                )
                print(f"{key} on {board}: {result['instructions']:,} instructions", file=sys.stderr)
    print_table(
        rows,
        [
            ("model", "s"),
            ("board", "s"),
            ("instructions", ","),
            ("instr_per_mac", ".2f"),
            ("tflm_instructions", ","),
            ("instr_ratio", ".2f"),
            ("arena_bytes", ","),
            ("arena_ratio", ".2f"),
            ("flash_bytes", ","),
            ("flash_ratio", ".2f"),
            ("bit_exact", ""),
            ("deterministic", ""),
        ],
    )
    print(f"wrote {write_results('emulated', rows)}")
    if not all(r["bit_exact"] and r["deterministic"] for r in rows):
        raise SystemExit("a run was not bit-exact or not deterministic")


if __name__ == "__main__":
    main()
