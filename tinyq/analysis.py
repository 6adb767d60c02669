"""Per-op cost figures: MACs, weight bytes, a one-line quantization summary."""
from __future__ import annotations

import numpy as np

from tinyq.ir import Conv2D, DepthwiseConv2D, FullyConnected, Graph, Op, QParams


def macs(op: Op, graph: Graph) -> int:
    """Multiply-accumulates of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED
    (the MLPerf Tiny convention: other ops count zero)."""
    out = graph[op.outputs[0]]
    w = graph[op.inputs[1]] if len(op.inputs) > 1 else None
    if isinstance(op.attrs, Conv2D):
        return out.size * int(np.prod(w.shape[1:]))
    if isinstance(op.attrs, DepthwiseConv2D):
        return out.size * w.shape[1] * w.shape[2]
    if isinstance(op.attrs, FullyConnected):
        return out.size * w.shape[1]
    return 0


def weight_bytes(op: Op, graph: Graph) -> int:
    return sum(graph[n].nbytes for n in op.inputs if graph[n].is_constant)


def describe_qparams(q: QParams | None, dtype: str) -> str:
    if q is None:
        return dtype
    if q.per_channel_quantized:
        return f"{dtype} per-channel x{len(q.scale)}"
    return f"{dtype} s={q.s:.4g} zp={q.zp}"


def summary(graph: Graph) -> list[dict]:
    """One row per op, as `tinyq inspect` and report.json show it."""
    rows = []
    for index, op in enumerate(graph.ops):
        x, y = graph[op.inputs[0]], graph[op.outputs[0]]
        w = graph[op.inputs[1]] if len(op.inputs) > 1 and graph[op.inputs[1]].is_constant else None
        rows.append({
            "index": index, "name": op.name, "type": op.kind, "output": y.name,
            "in_shape": list(x.shape), "out_shape": list(y.shape),
            "weights_quant": describe_qparams(w.qparams, w.dtype) if w is not None else "",
            "out_quant": describe_qparams(y.qparams, y.dtype),
            "macs": macs(op, graph), "weights_bytes": weight_bytes(op, graph),
        })
    return rows
