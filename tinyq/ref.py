"""The numpy integer reference: the bit-exact twin of every generated kernel.

`run(graph, inputs)` executes a verified graph, op by op through each op's
reference kernel (tinyq/ops), and returns every tensor's value. Arrays carry
one extra leading axis (a batch of independent samples) in front of the
graph's shapes, so accuracy runs evaluate thousands of samples per call;
`run` adds and removes that axis for single samples. Constant inputs
(weights, biases) reach kernels without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tinyq.ir import Graph
from tinyq.ops import State, definition, kernel_params, per_output


def run(
    graph: Graph,
    inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
    *,
    batched: bool = False,
    state: State | None = None,
) -> dict[str, np.ndarray]:
    """Run the graph; returns {tensor name: array} for every non-constant tensor.

    With `batched=True` every input has a leading sample axis and so does
    every result. Ops that keep state from call to call (a model's variables) start from
    their initial state, or from `state` as an earlier call left it (and update it).
    """
    state = State() if state is None else state
    if not isinstance(inputs, Mapping):
        inputs = dict(zip(graph.inputs, inputs, strict=True))
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        t = graph[name]
        x = np.asarray(inputs[name])
        x = x if batched else x[None]
        if tuple(x.shape[1:]) != t.shape:
            raise ValueError(f"input {name!r} has shape {x.shape[1:]}, the model expects {t.shape}")
        values[name] = x.astype(t.values_dtype, copy=False)
        state.samples = x.shape[0]
    for op in graph.ops:
        in_tensors = [graph[n] for n in op.inputs]
        ins = [t.data if t.is_constant else values[t.name] for t in in_tensors]
        result = definition(op).reference_with_state(
            op.attrs, kernel_params(op, graph), ins, in_tensors, [graph[n] for n in op.outputs], state
        )
        values.update(zip(op.outputs, per_output(op, result)))
    return values if batched else {n: v[0] for n, v in values.items()}


def outputs(graph: Graph, inputs, *, batched: bool = False, state: State | None = None) -> list[np.ndarray]:
    values = run(graph, inputs, batched=batched, state=state)
    return [values[n] for n in graph.outputs]
