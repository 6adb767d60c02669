"""Per-op cost figures: MACs, weight bytes, a one-line quantization summary."""

from __future__ import annotations

from tinyq import ops
from tinyq.ir import Graph, Op, QParams


def macs(op: Op, graph: Graph) -> int:
    """Multiply-accumulates of an op (the MLPerf Tiny convention: only convolutions and dense
    layers count)."""
    return ops.definition(op).macs(op, graph)


def bits_of(graph: Graph) -> str:
    """The bit widths of an integer graph as its tensors say: w4 when every weight is int4, w8a8+w4
    when some are (mixed precision); a16 when every activation is int16, w8a8+a16 when some are."""
    dtypes = {graph[op.inputs[1]].dtype for op in graph.ops if len(op.inputs) > 1 and graph[op.inputs[1]].is_constant}
    activations = {graph[name].dtype for op in graph.ops for name in op.outputs} & {"int8", "int16"}
    weights = "w4" if dtypes == {"int4"} else "w8"
    mixed_weights = "+w4" if "int4" in dtypes and weights == "w8" else ""
    if activations == {"int16"}:
        return weights + "a16" + mixed_weights
    return weights + "a8" + mixed_weights + ("+a16" if "int16" in activations else "")


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
        rows.append(
            {
                "index": index,
                "name": op.name,
                "type": op.kind,
                "output": y.name,
                "in_shape": list(x.shape),
                "out_shape": list(y.shape),
                "weights_quant": describe_qparams(w.qparams, w.dtype) if w is not None else "",
                "out_quant": describe_qparams(y.qparams, y.dtype),
                "macs": macs(op, graph),
                "weights_bytes": weight_bytes(op, graph),
            }
        )
    return rows
