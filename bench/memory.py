"""Arena and weight memory of tinyq's plan against TFLite Micro's, on MLPerf Tiny.

TFLM's figures (arena_used_bytes on a 32-bit Cortex-M, model flatbuffer size)
come from ../shared/anchors/tflm_cortex_m.json. Run: python bench/memory.py
"""

from __future__ import annotations

from tinyq import codegen
from tinyq.importers import load_model

from common import anchors, mlperf_path, print_table, write_results


def main() -> None:
    peer = anchors()["models"]
    rows = []
    for key in ("kws", "ic", "ad"):
        generated = codegen.generate(load_model(mlperf_path(key)))
        tflm = peer[key]["cortex-m4/tflm+cmsis-nn"]
        rows.append(
            {
                "model": key,
                "arena_bytes": generated.plan.arena_bytes,
                "tflm_arena_bytes": tflm["arena_bytes"],
                "arena_ratio": generated.plan.arena_bytes / tflm["arena_bytes"],
                "weights_bytes": generated.weights_bytes,
                "tflm_model_bytes": tflm["model_flatbuffer_bytes"],
            }
        )
    print_table(
        rows,
        [
            ("model", "s"),
            ("arena_bytes", ","),
            ("tflm_arena_bytes", ","),
            ("arena_ratio", ".3f"),
            ("weights_bytes", ","),
            ("tflm_model_bytes", ","),
        ],
    )
    print(f"wrote {write_results('memory', rows)}")


if __name__ == "__main__":
    main()
