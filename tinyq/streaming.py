"""Streaming builds (`--streaming`): a sequence model that consumes one frame per call.

The model's sequence input (1, time, features...) becomes one frame (1, 1, features...); its
recurrent layers keep their state in the arena from call to call (tinyq_reset clears it), so
frame t's outputs are the model's outputs over the frames so far. A model that already takes
one frame per call (TFLite Micro's streaming form: SVDF layers, variables read and assigned by
the model) is built as it is, its SVDF layers keeping their state. Between the input and the
last recurrent layer only layers that act on each time step alone may stand (dense layers,
elementwise ones, reshapes within a step); a layer taking the last step (return_sequences=False) takes the current
frame. Convolutions over time would need ring buffers, which tinyq does not build yet.

`with_steps(graph, n)` is the same rewrite to any length: the integer reference of a streaming
build's frame t is the reference of `with_steps(graph, t + 1)` on the frames so far, which is
how `tinyq bench --sequence` checks a run frame for frame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tinyq import ir, ref
from tinyq.errors import TinyqError
from tinyq.ops import State
from tinyq.ops.add import Add
from tinyq.ops.fully_connected import FullyConnected
from tinyq.ops.gru import Gru
from tinyq.ops.hard_swish import HardSwish
from tinyq.ops.logistic import Logistic
from tinyq.ops.lstm import UnidirectionalSequenceLstm
from tinyq.ops.mul import Mul
from tinyq.ops.quantize import Quantize
from tinyq.ops.relu import LeakyRelu, Relu, Relu6
from tinyq.ops.reshape import Reshape
from tinyq.ops.simple_rnn import SimpleRnn
from tinyq.ops.slice import Slice
from tinyq.ops.sub import Sub
from tinyq.ops.svdf import Svdf
from tinyq.ops.tanh import Tanh
from tinyq.ops.variable import has_variables

RECURRENT = (UnidirectionalSequenceLstm, Gru, SimpleRnn)
# act on each time step alone: a (1, time, x) input gives a (1, time, y) output, step by step
STEP_WISE = (FullyConnected, Add, Sub, Mul, Logistic, Tanh, Relu, Relu6, LeakyRelu, HardSwish, Quantize)


def _refuse(message: str):
    raise TinyqError(f"--streaming: {message}")


def with_steps(graph: ir.Graph, steps: int) -> ir.Graph:
    """The graph over `steps` time steps of its sequence input (see the module docstring)."""
    if len(graph.inputs) != 1 or len(graph[graph.inputs[0]].shape) < 3 or graph[graph.inputs[0]].shape[0] != 1:
        _refuse("needs one sequence input of shape (1, time, features...)")
    source = graph.inputs[0]
    length = graph[source].shape[1]
    timed, tensors, ops_out = {source}, dict(graph.tensors), []
    recurrent = 0
    for op in graph.ops:
        reads = [n for n in op.inputs if n in timed]
        if not reads:
            ops_out.append(op)
            continue
        where = f"{op.kind} {op.name}"
        attrs = op.attrs
        if isinstance(attrs, RECURRENT):
            if op.inputs[0] not in timed or getattr(attrs, "time_major", False):
                _refuse(f"{where} must read the (batch-major) sequence")
            recurrent += 1
            timed.update(op.outputs)
        elif isinstance(attrs, STEP_WISE):
            if any(n not in timed and not graph[n].is_constant for n in op.inputs):
                _refuse(f"{where} mixes the sequence with a tensor that is not one")
            timed.update(op.outputs)
        elif isinstance(attrs, Reshape) and graph[op.outputs[0]].shape[:2] == graph[op.inputs[0]].shape[:2]:
            timed.update(op.outputs)  # regroups each step's features (a (1, 28, 28, 1) image as 28 rows)
        elif isinstance(attrs, Slice) and attrs.size[1] == 1 and attrs.begin[1] == length - 1:
            begin = list(attrs.begin)
            begin[1] = steps - 1
            op = replace(op, attrs=replace(attrs, begin=tuple(begin)))
        else:
            _refuse(
                f"{where} combines time steps; tinyq streams models whose layers act on each step alone up to "
                "the last recurrent layer (convolutions over time would need ring buffers, not built yet)"
            )
        ops_out.append(op)
    if not recurrent:
        _refuse("the model has no recurrent layer (LSTM, GRU, SimpleRNN), SVDF or variable to keep state")
    for name in timed:
        t = tensors[name]
        tensors[name] = ir.Tensor(name, (1, steps, *t.shape[2:]), t.dtype, t.qparams, t.data)
    return ir.verify(graph.replace(tensors=tensors, ops=tuple(ops_out)))


def _frame_wise(graph: ir.Graph) -> bool:
    """The model already takes one frame per call, its state in SVDF layers or variables."""
    return not any(isinstance(op.attrs, RECURRENT) for op in graph.ops) and (
        has_variables(graph) or any(isinstance(op.attrs, Svdf) for op in graph.ops)
    )


def streaming(graph: ir.Graph) -> ir.Graph:
    """The graph built to consume one frame per call, its recurrent state kept between calls (a
    model of SVDF layers or variables, TFLite Micro's streaming form, as it is: its SVDF layers
    keep their state)."""
    if _frame_wise(graph):
        framed, kinds = graph, (Svdf,)
    else:
        framed, kinds = with_steps(graph, 1), RECURRENT
    ops = tuple(
        replace(op, attrs=replace(op.attrs, streaming=True)) if isinstance(op.attrs, kinds) else op for op in framed.ops
    )
    return framed.replace(ops=ops)


def frame_outputs(graph: ir.Graph, frames: list[np.ndarray]) -> list[list[np.ndarray]]:
    """The integer reference of a streaming build fed `frames` (each one input frame) from a
    reset: for frame t, the outputs of the graph over frames 0..t (a sequence output's last step).
    A model already frame-wise (SVDF, variables) runs frame by frame, its state carried."""
    if _frame_wise(graph):
        state, framed = State(), streaming(graph)
        return [ref.outputs(framed, [frame], state=state) for frame in frames]
    results = []
    for t in range(len(frames)):
        prefix = with_steps(graph, t + 1)
        outputs = ref.outputs(prefix, [np.concatenate(frames[: t + 1], axis=1)])
        results.append([o[:, -1:] if prefix[n].shape != graph[n].shape else o for n, o in zip(prefix.outputs, outputs)])
    return results
