"""Accuracy of the deployed arithmetic: float model vs the integer reference.

Quantized outputs come from the deployed integer arithmetic, never from a fake-quant
simulation: the generated C compiled for the host (tinyq/target/native.py) when there are
enough samples to pay for its compilation and a C compiler, else the numpy integer reference.
Both are bit-exact with each other, the firmware and TFLite Micro.
"""

from __future__ import annotations

import numpy as np

from tinyq import ir, ref
from tinyq.analysis import macs
from tinyq.data import Dataset, quantize_input
from tinyq.progress import progress
from tinyq.sim import FloatRunner
from tinyq.target import native

CHUNK = 500
NATIVE_MIN_WORK = 1e9  # samples x MACs from which compiling (about a second) beats the numpy reference


def sqnr_db(signal: np.ndarray, approx: np.ndarray) -> float:
    noise = np.sum((signal.astype(np.float64) - approx) ** 2)
    power = np.sum(signal.astype(np.float64) ** 2)
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(max(power, 1e-30) / noise))


def dequantize(t: ir.Tensor, values: np.ndarray) -> np.ndarray:
    return (values.astype(np.float64) - t.qparams.zp) * t.qparams.s


def evaluator(graph: ir.Graph, samples: int) -> str:
    """ "host C" or "numpy reference": which runs `samples` samples of the deployed graph."""
    work = samples * sum(macs(op, graph) for op in graph.ops)
    return "host C" if work >= NATIVE_MIN_WORK and native.compiler() is not None else "numpy reference"


def integer_outputs(graph: ir.Graph, x: np.ndarray, quiet: bool = False, engine: str | None = None) -> list[np.ndarray]:
    """Run the int8 graph on float samples (quantized at the input as TFLite does), on
    `engine` (default: `evaluator(graph, len(x))`)."""
    t = graph[graph.inputs[0]]
    engine = engine or evaluator(graph, len(x))
    results: list[list[np.ndarray]] = [[] for _ in graph.outputs]
    model = native.NativeModel(graph) if engine == "host C" else None
    try:
        with progress(quiet) as bar:
            task = bar.add_task(f"integer arithmetic ({engine})", total=len(x))
            chunk = CHUNK if model is None else 20 * CHUNK
            for start in range(0, len(x), chunk):
                xq = (
                    x[start : start + chunk]
                    if t.dtype == "float32"
                    else quantize_input(x[start : start + chunk], t.qparams.s, t.qparams.zp, t.dtype)
                )
                batch = [xq.reshape((len(xq),) + t.shape)]
                outs = ref.outputs(graph, batch, batched=True) if model is None else model.outputs(batch)
                for i, out in enumerate(outs):
                    results[i].append(out.reshape((len(xq),) + graph[graph.outputs[i]].shape[1:]))
                bar.advance(task, len(xq))
    finally:
        if model is not None:
            model.close()
    return [np.concatenate(r) for r in results]


def layer_sqnr(float_graph: ir.Graph, int_graph: ir.Graph, x: np.ndarray) -> dict[str, float]:
    """SQNR (dB) of every int8 activation against the float one, per tensor."""
    t = int_graph[int_graph.inputs[0]]
    names = [n for op in int_graph.ops for n in op.outputs if n in float_graph.tensors and int_graph[n].qparams]
    floats = next(FloatRunner(float_graph, keep=set(names)).batches([x], len(x)))[1]
    xq = quantize_input(x, t.qparams.s, t.qparams.zp, t.dtype).reshape((len(x),) + t.shape)
    ints = ref.run(int_graph, [xq], batched=True)
    return {n: sqnr_db(floats[n], dequantize(int_graph[n], ints[n]).reshape(floats[n].shape)) for n in names}


def evaluate(
    float_graph: ir.Graph | None, int_graph: ir.Graph, data: Dataset, *, sqnr_samples: int = 256, quiet: bool = False
) -> dict:
    """Accuracy, top-1 agreement and SQNR; without a float graph (an imported int8
    model), only the integer side."""
    engine = evaluator(int_graph, len(data.x))
    int_out = integer_outputs(int_graph, data.x, quiet, engine)[0]
    deq = dequantize(int_graph[int_graph.outputs[0]], int_out)
    int_top = np.argmax(deq.reshape(len(deq), -1), axis=1)
    result = {"samples": len(data.x), "evaluator": engine}
    if data.y is not None:
        result["quantized_accuracy"] = float(np.mean(int_top == data.y))
    if float_graph is None:
        return result
    float_out = FloatRunner(float_graph, keep=set(float_graph.outputs)).outputs([data.x])[0]
    float_top = np.argmax(float_out.reshape(len(float_out), -1), axis=1)
    result |= {
        "agreement": float(np.mean(float_top == int_top)),
        "output_sqnr_db": sqnr_db(float_out, deq),
        "layer_sqnr_db": layer_sqnr(float_graph, int_graph, data.x[:sqnr_samples]),
    }
    if data.y is not None:
        result["float_accuracy"] = float(np.mean(float_top == data.y))
    return result
