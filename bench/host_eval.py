"""Integer evaluation on the host: tinyq's evaluator (the generated C compiled for the host,
tinyq/target/native.py) against LiteRT's interpreter on the same int8 model and inputs.

Models: the two Fashion-MNIST models as tinyq quantizes them (mse, 1,000 calibration images;
LiteRT runs tinyq's exported .tflite, the same int8 model) on the 10,000 test images, and the
MLPerf Tiny ic and kws int8 files on 2,000 random int8 inputs. LiteRT: `tf.lite.Interpreter`,
one thread, one image per invoke (the models' RESHAPE ops fix a batch of one).
tinyq: one worker thread, and every core. Every run is checked bit-exact against the numpy
integer reference (the first 200 inputs). Also `tinyq eval` end to end on the Fashion models
(float .keras, --calib, --data the 10,000 test images), as a user runs it.
Run: python bench/host_eval.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fashion
import numpy as np

from tinyq import ref
from tinyq.data import Dataset
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.keras import load_float_keras
from tinyq.importers.tflite import load_tflite
from tinyq.quant import parse_config, quantize
from tinyq.target.native import NativeModel, workers_available
from tinyq.tf import tensorflow

from common import mlperf_path, print_table, write_results

CHECKED = 200


def litert_seconds(model: bytes, x: np.ndarray) -> tuple[float, np.ndarray]:
    """LiteRT on `x` (count, 1, ...), an image per invoke."""
    tf = tensorflow()
    interpreter = tf.lite.Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    out_index = interpreter.get_output_details()[0]["index"]
    outs = []
    start = time.perf_counter()
    for i in range(len(x)):
        interpreter.set_tensor(detail["index"], x[i])
        interpreter.invoke()
        outs.append(interpreter.get_tensor(out_index).copy())
    return time.perf_counter() - start, np.concatenate(outs)


def tinyq_seconds(graph, x: np.ndarray, workers: int) -> tuple[float, np.ndarray]:
    with NativeModel(graph, workers=workers) as model:
        model.outputs([x[:1]])  # loaded and warm; compilation is timed in `tinyq eval`
        start = time.perf_counter()
        out = model.outputs([x])[0]
        return time.perf_counter() - start, out


def int8_inputs(graph, x_float: np.ndarray | None, count: int) -> np.ndarray:
    t = graph[graph.inputs[0]]
    """Samples as the evaluator takes them: (count,) + the model's input shape."""
    if x_float is None:
        return np.random.default_rng(0).integers(-128, 128, (count,) + t.shape, dtype=np.int8)
    if t.dtype == "float32":  # a float input the model quantizes itself
        return x_float.reshape((len(x_float),) + t.shape).astype(np.float32)
    q = np.round(x_float / t.qparams.s) + t.qparams.zp
    return np.clip(q, -128, 127).astype(np.int8).reshape((len(x_float),) + t.shape)


def row(name: str, graph, x: np.ndarray) -> dict:
    model = to_tflite(graph)
    expected = ref.outputs(graph, [x[:CHECKED]], batched=True)[0]
    lite1, lite_out = litert_seconds(model, x)
    one, out1 = tinyq_seconds(graph, x, 1)
    every, out_all = tinyq_seconds(graph, x, workers_available())
    exact = all(np.array_equal(o[:CHECKED].reshape(expected.shape), expected) for o in (out1, out_all))
    litert = len(x) / lite1
    return {
        "model": name,
        "images": len(x),
        "litert_img_s": litert,
        "tinyq_1_img_s": len(x) / one,
        "tinyq_all_img_s": len(x) / every,
        "ratio_1_thread": (len(x) / one) / litert,
        "ratio_all": (len(x) / every) / litert,
        "litert_agrees_pct": 100 * float(np.mean(lite_out.reshape(len(lite_out), -1) == out1.reshape(len(out1), -1))),
        "bit_exact": exact,
    }


def eval_seconds(name: str, tmp: Path, calib: Dataset, test: Dataset) -> float:
    np.savez(tmp / "calib.npz", x=calib.x)
    np.savez(tmp / "test.npz", x=test.x, y=test.y)
    args = [str(fashion.trained(name)), "--data", str(tmp / "test.npz"), "--calib", str(tmp / "calib.npz")]
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "tinyq", "-q", "eval", *args], capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(run.stderr)
    return time.perf_counter() - start


def main() -> None:
    x_train, _, x_test, y_test = fashion.load()
    calib = Dataset(x_train[np.random.default_rng(0).choice(len(x_train), 1000, replace=False)])
    test = Dataset(x_test, y_test)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mobilenet", "branchy"):
            graph = quantize(load_float_keras(fashion.trained(name)), calib, parse_config("mse"), quiet=True).graph
            rows.append(
                row(name, graph, int8_inputs(graph, test.x, 0)) | {"eval_s": eval_seconds(name, Path(tmp), calib, test)}
            )
            print(f"{name}: done", file=sys.stderr)
    for key in ("ic", "kws"):
        graph = load_tflite(mlperf_path(key))
        rows.append(row(key, graph, int8_inputs(graph, None, 2000)) | {"eval_s": None})
        print(f"{key}: done", file=sys.stderr)
    columns = [("model", "s"), ("images", ","), ("litert_img_s", ",.0f")]
    columns += [("tinyq_1_img_s", ",.0f"), ("tinyq_all_img_s", ",.0f"), ("ratio_1_thread", ".2f"), ("ratio_all", ".2f")]
    columns += [("litert_agrees_pct", ".2f"), ("bit_exact", ""), ("eval_s", ".1f")]
    print_table(rows, columns)
    print(f"JSON: {write_results('host_eval', rows)}")


if __name__ == "__main__":
    main()
