"""`--bits auto` against uniform precision, and the greedy search against exhaustive search.

1. The two Fashion-MNIST models, 1,000 calibration images, the 10,000 test images on the
   integer reference: W8A8 (mse), uniform W4A8 with AdaRound (mse,adaround), and --bits auto
   with AdaRound (mse,adaround) under budgets of 100, 75, 60 and 50 % of the int8 weight bytes
   (the flash budget: those bytes plus the biases and requantization tables every choice has);
   the mixed model against uniform W4 wherever W4 fits, and against W8A8.
2. Greedy against exhaustive: on branchy (8 weighted layers, 256 configurations), every
   configuration's output SQNR measured as the search measures it (first 256 calibration images);
   at each budget, the best configuration that fits against the one the search picks.
3. MLPerf Tiny ic (the float Keras ResNet) forced under --max-flash 75 % of its W8A8 firmware on
   mps2_an386 (Cortex-M4): the command line as a user runs it (--algo mse,adaround for both),
   then QEMU, bit-exact, SQNR.
   The same with per-tensor weights (fashion-per-tensor), where int4 costs more. Accuracy
   differences are paired (the same 10,000 images) with their standard errors.
Run: python bench/bits_auto.py [fashion|fashion-per-tensor|exhaustive|mlperf]
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fashion
import numpy as np
from mlperf_keras import KERAS, datasets

from tinyq import codegen
from tinyq.bench import bench
from tinyq.budget import BudgetError
from tinyq.data import Dataset
from tinyq.importers.keras import load_float_keras
from tinyq.importers.tflite import load_tflite
from tinyq.ops.affine import is_affine
from tinyq.quant import parse_config, quantize
from tinyq.quant.bitsearch import Goal, choose_weight_bits
from tinyq.quant.convert import ActivationQuant, quantize_weights, to_int8
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.quant.observe import observe
from tinyq.quant.precision import uniform
from tinyq.quant.ptq import activation_ranges
from tinyq.report import read_report
from tinyq.sim import FloatRunner

from common import mlperf_path, print_table, shared_dir, write_results

SHARES = (1.0, 0.75, 0.6, 0.5)
BOARD = "mps2_an386"


def fashion_data():
    x_train, _, x_test, y_test = fashion.load()
    calib = Dataset(x_train[np.random.default_rng(0).choice(len(x_train), 1000, replace=False)])
    return calib, Dataset(x_test, y_test)


def correct(graph, test: Dataset) -> np.ndarray:
    """Per test image, whether the integer reference classifies it right."""
    out = integer_outputs(graph, test.x, quiet=True)[0]
    return np.argmax(out.reshape(len(out), -1), axis=1) == test.y


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Accuracy difference a - b in points on the same images, and its standard error."""
    d = a.astype(np.float64) - b
    return 100 * float(d.mean()), 100 * float(d.std(ddof=1) / np.sqrt(len(d)))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def fashion_rows(per_tensor: bool) -> list[dict]:
    calib, test = fashion_data()
    rows = []
    for name in ("mobilenet", "branchy"):
        fm = load_float_keras(fashion.trained(name))
        w8 = quantize(fm, calib, parse_config("mse", "w8a8", per_tensor), quiet=True).graph
        w4, t4 = timed(quantize, fm, calib, parse_config("mse,adaround", "w4a8", per_tensor), quiet=True)
        w4 = w4.graph
        size8, size4 = codegen.generate(w8).weights_bytes, codegen.generate(w4).weights_bytes
        weights8 = sum(w8[op.inputs[1]].nbytes for op in w8.ops if is_affine(op))
        right8, right4 = correct(w8, test), correct(w4, test)
        print(f"{name}: W8A8 {right8.mean():.2%} {size8:,} B, W4A8 {right4.mean():.2%} {size4:,} B", file=sys.stderr)
        for share in SHARES:
            budget = size8 - weights8 + math.ceil(share * weights8)
            config = parse_config("mse,adaround", "auto", per_tensor)
            try:
                mixed, seconds = timed(quantize, fm, calib, config, quiet=True, goal=Goal(max_flash=budget))
            except BudgetError as err:
                print(f"{name} {share:.0%}: {err}", file=sys.stderr)
                mixed = seconds = None
            right = None if mixed is None else correct(mixed.graph, test)
            vs4 = paired(right, right4) if right is not None and size4 <= budget else (None, None)
            vs8 = paired(right, right8) if right is not None else (None, None)
            rows.append(
                {
                    "model": name,
                    "weights": "per-tensor" if per_tensor else "per-channel",
                    "budget_pct": 100 * share,
                    "budget_bytes": budget,
                    "mixed_bytes": None if mixed is None else codegen.generate(mixed.graph).weights_bytes,
                    "int4_layers": "-"
                    if mixed is None
                    else f"{len(mixed.bits_choice.low)}/{len(mixed.bits_choice.table)}",
                    "mixed_pct": None if right is None else 100 * float(right.mean()),
                    "w4_bytes": size4,
                    "w4_pct": 100 * float(right4.mean()) if size4 <= budget else None,
                    "w8_pct": 100 * float(right8.mean()),
                    "vs_w4": vs4[0],
                    "vs_w4_se": vs4[1],
                    "vs_w8": vs8[0],
                    "vs_w8_se": vs8[1],
                    "search_s": seconds,
                    "w4_adaround_s": t4,
                }
            )
            print(f"{name} {share:.0%}: {rows[-1]['int4_layers']} int4, {rows[-1]['mixed_pct']} %", file=sys.stderr)
    return rows


def exhaustive_rows() -> list[dict]:
    """Greedy (the search's own measurements) against the best of every configuration."""
    calib, _ = fashion_data()
    fm = load_float_keras(fashion.trained("branchy"))
    graph = fm.graph
    config = parse_config("mse", "auto")
    stats = observe(graph, calib.x, histograms=True, quiet=True)
    quant = ActivationQuant.of(graph, {8: activation_ranges(fm, graph, stats, config, 8)}, uniform(graph, 8))
    affine = [op for op in graph.ops if is_affine(op)]
    weights8 = {op.name: quantize_weights(op, graph, config, "mse", 8) for op in affine}
    weights4 = {op.name: quantize_weights(op, graph, config, "mse", 4) for op in affine}
    reference = FloatRunner(graph).outputs([calib.x[:256]])[0]
    every = {}
    start = time.perf_counter()
    for mask in itertools.product((False, True), repeat=len(affine)):
        low = tuple(op.name for op, lowered in zip(affine, mask) if lowered)
        weights = {n: weights4[n] if n in low else w for n, w in weights8.items()}
        deployed = to_int8(graph, quant, config, weights)
        out = dequantize(deployed[deployed.outputs[0]], integer_outputs(deployed, calib.x[:256], quiet=True)[0])
        every[low] = (codegen.footprint(deployed)[0], sqnr_db(reference, out.reshape(reference.shape)))
    print(f"exhaustive: {len(every)} configurations in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    size8 = every[()][0]
    int8_bytes = sum(graph[op.inputs[1]].data.size for op in affine)
    rows = []
    for share in (0.9, 0.8, 0.75, 0.7, 0.6, 0.55, 0.5):
        budget = size8 - int8_bytes + math.ceil(share * int8_bytes)
        fitting = {low: v for low, v in every.items() if v[0] <= budget}
        if not fitting:
            continue
        best = max(fitting.items(), key=lambda kv: kv[1][1])
        choice = choose_weight_bits(graph, quant, config, weights8, weights4, calib.x, Goal(max_flash=budget), True)
        greedy = every[tuple(op.name for op in affine if op.name in choice.low)]
        rank = 1 + sum(v[1] > greedy[1] for v in fitting.values())
        rows.append(
            {
                "budget_pct": 100 * share,
                "budget_bytes": budget,
                "fitting": len(fitting),
                "best_sqnr_db": best[1][1],
                "best_int4": len(best[0]),
                "greedy_sqnr_db": greedy[1],
                "greedy_int4": len(choice.low),
                "gap_db": best[1][1] - greedy[1],
                "greedy_rank": rank,
            }
        )
    return rows


ALGO = ("--algo", "mse,adaround")  # both builds: the int4 layers' rounding learnt, as --bits auto applies it


def mlperf_rows() -> list[dict]:
    """ic, as a user runs it: W8A8 build, then --bits auto at 75 % of its firmware flash."""
    rows = []
    key = "ic"
    path = shared_dir() / "models" / "mlperf_tiny" / KERAS[key]
    official = load_tflite(mlperf_path(key))
    calib, test = datasets(key, official[official.inputs[0]])
    fm = load_float_keras(path)
    floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test.x])[0]
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "calib.npz", x=calib.x)
        flash = None
        for label, extra in (("w8a8", ("--bits", "w8a8")), ("auto", ("--bits", "auto", "--max-flash"))):
            out = Path(tmp) / label
            args = [str(path), "--board", BOARD, "--calib", str(Path(tmp) / "calib.npz"), "-o", str(out), *ALGO, *extra]
            if label == "auto":
                args.append(str(int(0.75 * flash)))
            run = subprocess.run([sys.executable, "-m", "tinyq", "build", *args], capture_output=True, text=True)
            if run.returncode:
                raise SystemExit(f"{label}: {run.stderr}")
            notes = [line for line in run.stderr.splitlines() if "bits auto" in line]
            result = bench(out, emulate=True)
            report = read_report(out)
            flash = flash or report.memory.flash_bytes
            graph = load_tflite(out / "model_int8.tflite")
            deq = dequantize(graph[graph.outputs[0]], integer_outputs(graph, test.x, quiet=True)[0])
            rows.append(
                {
                    "model": key,
                    "config": label,
                    "bits": report.quant.bits,
                    "max_flash": None if label == "w8a8" else int(0.75 * flash),
                    "flash_bytes": report.memory.flash_bytes,
                    "constants": report.memory.weights_bytes,
                    "arena_bytes": report.memory.arena_bytes,
                    "sqnr_db": sqnr_db(floats, deq.reshape(floats.shape)),
                    "instructions": result["instructions"],
                    "bit_exact": result["bit_exact"],
                }
            )
            print("\n".join(notes), file=sys.stderr)
    return rows


def main() -> None:
    parts = sys.argv[1:] or ["fashion", "fashion-per-tensor", "exhaustive", "mlperf"]
    for part, per_tensor in (("fashion", False), ("fashion-per-tensor", True)):
        if part not in parts:
            continue
        rows = fashion_rows(per_tensor)
        columns = [("model", "s"), ("weights", "s"), ("budget_pct", ".0f"), ("budget_bytes", ",")]
        columns += [("mixed_bytes", ","), ("int4_layers", "s"), ("mixed_pct", ".2f"), ("w4_bytes", ",")]
        columns += [("w4_pct", ".2f"), ("w8_pct", ".2f"), ("vs_w4", "+.2f"), ("vs_w4_se", ".2f"), ("vs_w8", "+.2f")]
        print_table(rows, columns + [("vs_w8_se", ".2f"), ("search_s", ".0f"), ("w4_adaround_s", ".0f")])
        print(f"JSON: {write_results('bits_auto_' + part.replace('-', '_'), rows)}")
    if "exhaustive" in parts:
        rows = exhaustive_rows()
        columns = [("budget_pct", ".0f"), ("budget_bytes", ","), ("fitting", "d"), ("best_sqnr_db", ".2f")]
        columns += [("best_int4", "d"), ("greedy_sqnr_db", ".2f"), ("greedy_int4", "d"), ("gap_db", ".2f")]
        print_table(rows, columns + [("greedy_rank", "d")])
        print(f"JSON: {write_results('bits_auto_exhaustive', rows)}")
    if "mlperf" in parts:
        rows = mlperf_rows()
        columns = [("model", "s"), ("config", "s"), ("bits", "s"), ("max_flash", ","), ("flash_bytes", ",")]
        columns += [("constants", ","), ("arena_bytes", ","), ("sqnr_db", ".1f"), ("instructions", ",")]
        print_table(rows, columns + [("bit_exact", "")])
        print(f"JSON: {write_results('bits_auto_mlperf', rows)}")


if __name__ == "__main__":
    main()
