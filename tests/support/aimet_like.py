"""AIMET-style encodings for tests, without AIMET: min-max ranges of every node output (AIMET's
default quantsim: asymmetric activations, symmetric weights per tensor or per channel), written
in AIMET's documented 0.6.1 or 1.0.0 format; and the simulation AIMET's QuantizationSimModel
runs on them (fake quantization at each encoded tensor, float arithmetic between), built as an
onnxruntime graph with QuantizeLinear/DequantizeLinear inserted: the oracle tinyq's deployment
is compared against."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _encoding(bits: int, symmetric: bool, scale: float, offset: int) -> dict:
    levels = (1 << bits) - 1
    return {
        "bitwidth": bits,
        "dtype": "int",
        "is_symmetric": str(symmetric),
        "scale": scale,
        "offset": offset,
        "min": offset * scale,
        "max": (offset + levels) * scale,
    }


def _activation(values: np.ndarray) -> dict:
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = (hi - lo) / 255 if hi > lo else 1.0
    return _encoding(8, False, scale, int(round(lo / scale)))


def _symmetric(peak: float, bits: int) -> dict:
    half = 1 << (bits - 1)
    return _encoding(bits, True, max(peak, 1e-8) / (half - 1), -half)


def encodings_for(model_path: Path, calib: np.ndarray, bits: int = 8, per_channel: bool = False) -> dict:
    """0.6.1 encodings of a float model: every node output's min-max over `calib` and the
    model input's; the Conv and Gemm weights symmetric at `bits`."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    names = [model.graph.input[0].name]
    names += [o for node in model.graph.node if node.op_type != "Constant" for o in node.output]
    probe = onnx.load(str(model_path))
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in known)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [session.get_outputs()[i].name for i in range(len(session.get_outputs()))]
    runs = [dict(zip(outputs, session.run(None, {names[0]: x[None]}))) for x in calib]
    runs = [r | {names[0]: x[None]} for r, x in zip(runs, calib)]
    activations = {n: [_activation(np.concatenate([r[n].reshape(-1) for r in runs]))] for n in names}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    params = {}
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm") and node.input[1] in inits:
            w = inits[node.input[1]]
            peaks = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) if per_channel else [np.abs(w).max()]
            params[node.input[1]] = [_symmetric(float(p), bits) for p in peaks]
    return {"version": "0.6.1", "activation_encodings": activations, "param_encodings": params}


def as_v1(encodings: dict) -> dict:
    """The same encodings in AIMET's 1.0.0 format."""

    def entry(name, per_channel):
        first = per_channel[0]
        return {
            "name": name,
            "dtype": "INT",
            "enc_type": "PER_CHANNEL" if len(per_channel) > 1 else "PER_TENSOR",
            "bw": first["bitwidth"],
            "is_sym": first["is_symmetric"] == "True",
            "scale": [e["scale"] for e in per_channel],
            "offset": [e["offset"] for e in per_channel],
        }

    return {
        "version": "1.0.0",
        "activation_encodings": [entry(n, e) for n, e in encodings["activation_encodings"].items()],
        "param_encodings": [entry(n, e) for n, e in encodings["param_encodings"].items()],
    }


def write(encodings: dict, path: Path) -> Path:
    path.write_text(json.dumps(encodings, indent=1))
    return path


def simulated(model_path: Path, encodings: dict, x: np.ndarray) -> np.ndarray:
    """What AIMET's QuantizationSimModel computes: weights rounded to their grid, each encoded
    activation quantized and dequantized where it is produced, float arithmetic between."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    for init in graph.initializer:
        per_channel = encodings["param_encodings"].get(init.name)
        if per_channel:
            w = numpy_helper.to_array(init)
            scale = np.array([e["scale"] for e in per_channel]).reshape((-1,) + (1,) * (w.ndim - 1))
            half = 1 << (per_channel[0]["bitwidth"] - 1)
            init.CopyFrom(
                numpy_helper.from_array(
                    (np.clip(np.round(w / scale), -half, half - 1) * scale).astype(np.float32), init.name
                )
            )
    nodes = []
    renamed = {}
    for name, (e,) in encodings["activation_encodings"].items():
        s, z = f"{name}/aimet_scale", f"{name}/aimet_zero"
        graph.initializer.append(numpy_helper.from_array(np.float32(e["scale"]), s))
        graph.initializer.append(numpy_helper.from_array(np.uint8(-e["offset"]), z))
        renamed[name] = f"{name}/aimet_fq"
        quantize = helper.make_node("QuantizeLinear", [name, s, z], [f"{name}/aimet_q"])
        dequantize = helper.make_node("DequantizeLinear", [f"{name}/aimet_q", s, z], [renamed[name]])
        nodes.append((name, [quantize, dequantize]))
    for node in graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
    by_producer = dict(nodes)
    order = [n for n in by_producer.get(graph.input[0].name, [])]
    for node in graph.node:
        order.append(node)
        for out in node.output:
            order += by_producer.get(out, [])
    del graph.node[:]
    graph.node.extend(order)
    for out in graph.output:
        if out.name in renamed:
            out.name = renamed[out.name]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {graph.input[0].name: x})[0]
