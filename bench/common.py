"""Shared bits of the benchmark scripts: where the models and peer figures are, output."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def shared_dir() -> Path:
    candidates = [Path(p) for p in (os.environ.get("TINYQ_SHARED"),) if p]
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    for c in candidates:
        if (c / "models").is_dir():
            return c
    raise SystemExit("cannot find the shared folder with models/ and anchors/ (set TINYQ_SHARED)")


MLPERF = {"kws": "kws/kws_ref_model_int8.tflite", "ic": "ic/pretrainedResnet_int8.tflite", "ad": "ad/ad01_int8.tflite"}


def mlperf_path(key: str) -> Path:
    return shared_dir() / "models" / "mlperf_tiny" / MLPERF[key]


def anchors() -> dict:
    return json.loads((shared_dir() / "anchors" / "tflm_cortex_m.json").read_text())


def write_results(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(rows, indent=1) + "\n")
    return path


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """columns: (key, format spec); prints an aligned plain-text table."""
    cells = [[format(r[k], f) if r[k] is not None else "-" for k, f in columns] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, (k, _) in enumerate(columns)]
    print("  ".join(k.rjust(w) for (k, _), w in zip(columns, widths)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths)))


def converter_int8(tf, model, calib) -> bytes:
    """The TFLite converter's full-integer model (int8 in and out) of a Keras model."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in calib)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()
