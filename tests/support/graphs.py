"""Graphs for firmware tests: several one-op graphs side by side in one (one firmware, one QEMU run)."""

from __future__ import annotations

from tinyq import ir


def side_by_side(graphs: dict[str, ir.Graph], name: str) -> ir.Graph:
    """Every graph's ops in one graph, each keeping its own inputs and outputs (names prefixed)."""
    tensors, ops, inputs, outputs = {}, [], [], []
    for prefix, g in graphs.items():
        rename = {n: f"{prefix}/{n}" for n in g.tensors}
        tensors |= {rename[n]: ir.Tensor(rename[n], t.shape, t.dtype, t.qparams, t.data) for n, t in g.tensors.items()}
        ops += [
            ir.Op(
                f"{prefix}/{op.name}",
                op.attrs,
                tuple(rename[n] for n in op.inputs),
                tuple(rename[n] for n in op.outputs),
            )
            for op in g.ops
        ]
        inputs += [rename[n] for n in g.inputs]
        outputs += [rename[n] for n in g.outputs]
    return ir.verify(ir.Graph(name, tensors, tuple(ops), tuple(inputs), tuple(outputs)))
