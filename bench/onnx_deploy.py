"""PyTorch models on Fashion-MNIST (bench/torch_fashion.py: a CNN with BatchNorm, a
depthwise-separable net, one with a residual Add and a Concat), exported with torch.onnx.export
and deployed by tinyq three ways, every accuracy on the 10,000 test images:
- tinyq's float IR of the ONNX file against onnxruntime (largest output difference, relative);
- tinyq's own int8 PTQ (min-max ranges as onnxruntime's, per-tensor and per-channel weights;
  and mse ranges, the default) and W4A8 with AdaRound (mse ranges, CLE, bias correction)
  measured with the integer reference, against onnxruntime's static int8 quantization (MinMax)
  of the same model on the same 1,000 calibration images;
- onnxruntime's QDQ file deployed as it is: tinyq's integer accuracy against onnxruntime's run
  of the same file, and its build for mps2_an386 (Cortex-M4) in QEMU: instructions, arena,
  flash, bit-exact with the reference on a test image.
Run: python bench/onnx_deploy.py (the models train once, about five minutes; then cached)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch_fashion as tf_models

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.data import Dataset
from tinyq.importers.onnx import load_float_onnx, load_onnx
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import integer_outputs
from tinyq.sim import FloatRunner

from common import print_table, write_results

BOARD = "mps2_an386"
# label: (--algo, --bits, per-tensor weights); minmax is the range method onnxruntime's quantization used
CONFIGS = {
    "int8 minmax pt": ("minmax", "w8a8", True),
    "int8 minmax pc": ("minmax", "w8a8", False),
    "int8 mse pc": ("mse", "w8a8", False),
    "w4a8 adaround pt": ("mse,cle,bc,adaround", "w4a8", True),
    "w4a8 adaround pc": ("mse,cle,bc,adaround", "w4a8", False),
}


def deployed_layout(graph, x_nchw: np.ndarray) -> np.ndarray:
    perm = graph.input_perms.get(graph.inputs[0])
    return np.transpose(x_nchw, perm) if perm else x_nchw


def accuracy(graph, x_nchw: np.ndarray, y: np.ndarray) -> float:
    out = integer_outputs(graph, deployed_layout(graph, x_nchw), quiet=True)[0].reshape(len(y), -1)
    return 100.0 * float(np.mean(out.argmax(-1) == y))


def float_row(name: str, x_test, y_test) -> dict:
    path = tf_models.exported(name)
    fm = load_float_onnx(path)
    ours = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([deployed_layout(fm.graph, x_test)])[0]
    theirs = tf_models.ort_outputs(tf_models.session(path), x_test)
    diff = float(np.abs(ours.reshape(theirs.shape) - theirs).max() / np.abs(theirs).max())
    kinds = [op.kind for op in fm.graph.ops]
    return {
        "model": name,
        "float_pct": 100.0 * float(np.mean(ours.reshape(len(y_test), -1).argmax(-1) == y_test)),
        "ort_float_pct": tf_models.ort_accuracy(path, x_test, y_test),
        "max_rel_diff": diff,
        "transposes": kinds.count("TRANSPOSE"),
        "ops": len(kinds),
    }, fm


def qdq_row(name: str, per_channel: bool, calib, x_test, y_test, out_dir: Path) -> dict:
    path = tf_models.ort_static_int8(name, calib, per_channel=per_channel)
    graph = load_onnx(path)
    report = build(graph, get_board(BOARD), out_dir, source=path.name, log=lambda m: None)
    np.save(out_dir / "x.npy", x_test[0])
    run = bench(out_dir, emulate=True, input_path=out_dir / "x.npy")
    ours, theirs = accuracy(graph, x_test, y_test), tf_models.ort_accuracy(path, x_test, y_test)
    return {
        "model": name,
        "weights": "per-channel" if per_channel else "per-tensor",
        "ort_qdq_pct": theirs,
        "tinyq_pct": ours,
        "diff_points": ours - theirs,
        "m4_instructions": run["instructions"],
        "arena_bytes": report.memory.arena_bytes,
        "flash_bytes": report.memory.flash_bytes,
        "bit_exact": run["bit_exact"],
    }


def main() -> None:
    x_train, _, x_test, y_test = tf_models.data()
    calib = x_train[np.random.default_rng(0).choice(len(x_train), tf_models.CALIBRATION, replace=False)]
    float_rows, ptq_rows, qdq_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in tf_models.BUILDERS:
            tf_models.train(name)
            row, fm = float_row(name, x_test, y_test)
            float_rows.append(row)
            deployed_calib = Dataset(deployed_layout(fm.graph, calib))
            ptq = {"model": name, "float_pct": row["float_pct"]}
            for pc in (False, True):
                path = tf_models.ort_static_int8(name, calib, per_channel=pc)
                ptq[f"ort_int8_{'pc' if pc else 'pt'}_pct"] = tf_models.ort_accuracy(path, x_test, y_test)
            for label, (algo, bits, per_tensor) in CONFIGS.items():
                start = time.perf_counter()
                config = parse_config(algo, bits, per_tensor=per_tensor)
                graph = quantize(fm, deployed_calib, config, quiet=True).graph
                ptq[f"{label} pct"] = accuracy(graph, x_test, y_test)
                ptq[f"{label} s"] = time.perf_counter() - start
            ptq_rows.append(ptq)
            for pc in (False, True):
                qdq_rows.append(qdq_row(name, pc, calib, x_test, y_test, Path(tmp) / f"{name}_{pc}"))
            print(f"{name}: done", file=sys.stderr)
    for rows in (float_rows, ptq_rows, qdq_rows):
        print_table(rows, [(key, _format(key)) for key in rows[0]])
        print()
    print(f"JSON: {write_results('onnx_deploy', float_rows + ptq_rows + qdq_rows)}")


def _format(key: str) -> str:
    if key.endswith(("pct", "points")):
        return ".2f"
    if key.endswith(("instructions", "bytes")):
        return ","
    return {"max_rel_diff": ".1e"}.get(key, ".0f" if key.endswith(" s") else "")


if __name__ == "__main__":
    main()
