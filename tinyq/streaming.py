"""Streaming builds (`--streaming`): a sequence model that consumes one frame per call.

The model's sequence input (1, time, features...) becomes one frame (1, 1, features...); its
state lives in the arena from call to call (tinyq_reset clears it), so frame t's outputs are the
model's outputs over the frames so far. State is of two kinds:
- recurrent layers (LSTM, GRU, SimpleRNN) keep their hidden (and cell) state;
- a causal convolution over time (Keras Conv1D, DepthwiseConv1D or SeparableConv1D with
  padding="causal", stride 1: a 2-D convolution of kernel height 1 over the unit-height image
  (1, 1, time, channels), padded (kernel - 1) x dilation steps on the left) gets a ring buffer
  of the last (kernel - 1) x dilation input frames, as TFLite Micro's streaming models hold
  one: a variable (tinyq/ops/variable.py) read and joined with the new frame, the convolution
  over that window, the window's newest steps assigned back. Its initial value is the input's
  zero point: the zeros causal padding reads.
Between the input and the last stateful layer only these and layers that act on each time step
alone may stand (dense layers, elementwise ones, reshapes within a step); a layer taking the last
step (return_sequences=False) takes the current frame. A model that already takes one frame per
call (TFLite Micro's streaming form: SVDF layers, variables read and assigned by the model) is
built as it is, its SVDF layers keeping their state.

`with_steps(graph, n)` is the same model over any number of steps (a sequence graph, no ring
buffers): the integer reference of a streaming build's frame t is that of `with_steps(graph,
t + 1)` on the frames so far, which is how the tests check streaming against whole sequences.
`frame_outputs` is the reference of a streaming build itself, frame by frame, its state carried."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from tinyq import ir, ref
from tinyq.errors import TinyqError
from tinyq.ops import OverTime, State, definition
from tinyq.ops.concatenation import Concatenation
from tinyq.ops.conv import Conv2D
from tinyq.ops.depthwise_conv import DepthwiseConv2D
from tinyq.ops.reshape import Reshape
from tinyq.ops.slice import Slice
from tinyq.ops.svdf import Svdf
from tinyq.ops.variable import AssignVariable, ReadVariable, has_variables

CONVOLUTIONS = (Conv2D, DepthwiseConv2D)
IMAGE_TIME_AXIS = 2  # of a unit-height image (1, 1, time, channels)


def _refuse(message: str):
    raise TinyqError(f"--streaming: {message}")


def _span(op: ir.Op) -> int:
    """Past steps a causal convolution over time reads: (kernel - 1) x dilation."""
    return op.attrs.padding.left


def _causal_over_time(op: ir.Op, graph: ir.Graph) -> bool:
    a, kernel = op.attrs, graph[op.inputs[1]].shape[1:3]
    return (
        kernel[0] == 1 and tuple(a.stride) == (1, 1) and a.padding == ir.Padding2D(left=(kernel[1] - 1) * a.dilation[1])
    )


def _reshaped_time_axis(axis: int, before: tuple, after: tuple) -> int | None:
    """Where the time axis of `before` is in `after`, for a reshape that keeps every step's values
    together: one that regroups within a step, or inserts or drops a unit axis before time."""
    if after[: axis + 1] == before[: axis + 1]:
        return axis
    if after == before[:axis] + (1,) + before[axis:]:
        return axis + 1
    if axis > 1 and before[axis - 1] == 1 and after == before[: axis - 1] + before[axis:]:
        return axis - 1
    return None


def with_steps(graph: ir.Graph, steps: int) -> ir.Graph:
    """The graph over `steps` time steps of its sequence input (see the module docstring)."""
    return _with_steps(graph, steps)[0]


def _with_steps(graph: ir.Graph, steps: int) -> tuple[ir.Graph, set[str]]:
    """with_steps, and the names of the causal convolutions over time it met."""
    if len(graph.inputs) != 1 or len(graph[graph.inputs[0]].shape) < 3 or graph[graph.inputs[0]].shape[0] != 1:
        _refuse("needs one sequence input of shape (1, time, features...)")
    source = graph.inputs[0]
    length = graph[source].shape[1]
    timed = {source: 1}  # tensor -> its time axis
    tensors, ops_out, stateful, convolutions = dict(graph.tensors), [], 0, set()
    for op in graph.ops:
        reads = [n for n in op.inputs if n in timed]
        if not reads:
            ops_out.append(op)
            continue
        where, attrs, axis = f"{op.kind} {op.name}", op.attrs, timed[reads[0]]
        out_axis, over_time = None, definition(op).over_time
        if over_time == OverTime.RECURRENT:
            if timed.get(op.inputs[0]) != 1 or getattr(attrs, "time_major", False):
                _refuse(f"{where} must read the (batch-major) sequence")
            stateful, out_axis = stateful + 1, 1
        elif over_time == OverTime.STEP_WISE:
            if any(timed.get(n) != axis and not graph[n].is_constant for n in op.inputs):
                _refuse(f"{where} mixes the sequence with a tensor that is not one")
            out_axis = axis
        elif isinstance(attrs, Reshape):
            out_axis = _reshaped_time_axis(axis, graph[op.inputs[0]].shape, graph[op.outputs[0]].shape)
        elif isinstance(attrs, CONVOLUTIONS) and axis == IMAGE_TIME_AXIS and op.inputs[0] in timed:
            if not _causal_over_time(op, graph):
                _refuse(f"{where} is not a causal convolution over time (padding='causal', stride 1)")
            stateful, out_axis = stateful + (_span(op) > 0), axis
            convolutions.add(op.name)
        elif isinstance(attrs, Slice) and attrs.size[axis] == 1 and attrs.begin[axis] == length - 1:
            begin = list(attrs.begin)
            begin[axis] = steps - 1
            op = replace(op, attrs=replace(attrs, begin=tuple(begin)))
        if out_axis is None and not isinstance(attrs, Slice):
            _refuse(
                f"{where} combines time steps; tinyq streams models whose layers act on each step alone, "
                "causal convolutions over time and recurrent layers up to the last stateful layer"
            )
        if out_axis is not None:
            timed.update(dict.fromkeys(op.outputs, out_axis))
        ops_out.append(op)
    if not stateful:
        _refuse("the model has no recurrent layer (LSTM, GRU, SimpleRNN), causal convolution, SVDF or variable")
    for name, axis in timed.items():
        t = tensors[name]
        shape = list(t.shape)
        shape[axis] = steps
        tensors[name] = ir.Tensor(name, tuple(shape), t.dtype, t.qparams, t.data)
    return ir.verify(graph.replace(tensors=tensors, ops=tuple(ops_out))), convolutions


def _ring_buffer(op: ir.Op, graph: ir.Graph) -> tuple[list[ir.Tensor], list[ir.Op]]:
    """A causal convolution over one frame as a ring buffer of its last `span` input frames."""
    x, span = graph[op.inputs[0]], _span(op)
    ring_shape = (*x.shape[:IMAGE_TIME_AXIS], span, *x.shape[IMAGE_TIME_AXIS + 1 :])
    window_shape = (*x.shape[:IMAGE_TIME_AXIS], span + 1, *x.shape[IMAGE_TIME_AXIS + 1 :])
    zero_point = x.qparams.zp if x.qparams else 0
    names = {part: f"{op.name}/ring_{part}" for part in ("initial", "read", "window", "kept")}
    tensors = [
        ir.Tensor(names["initial"], ring_shape, x.dtype, x.qparams, np.full(ring_shape, zero_point, x.dtype)),
        ir.Tensor(names["read"], ring_shape, x.dtype, x.qparams),
        ir.Tensor(names["window"], window_shape, x.dtype, x.qparams),
        ir.Tensor(names["kept"], ring_shape, x.dtype, x.qparams),
    ]
    begin = [0] * len(ring_shape)
    begin[IMAGE_TIME_AXIS] = 1
    variable = f"{op.name}/ring"
    ops = [
        ir.Op(f"{op.name}_ring_read", ReadVariable(variable), (names["initial"],), (names["read"],)),
        ir.Op(f"{op.name}_ring_join", Concatenation(IMAGE_TIME_AXIS), (names["read"], x.name), (names["window"],)),
        replace(op, attrs=replace(op.attrs, padding=ir.Padding2D()), inputs=(names["window"], *op.inputs[1:])),
        ir.Op(f"{op.name}_ring_shift", Slice(tuple(begin), ring_shape), (names["window"],), (names["kept"],)),
        ir.Op(f"{op.name}_ring_write", AssignVariable(variable), (names["kept"],), ()),
    ]
    return tensors, ops


def _stateful(op: ir.Op) -> bool:
    """An op whose state a streaming build keeps from call to call (its attrs' `streaming`)."""
    return "streaming" in {f.name for f in fields(op.attrs)}


def mark_streaming(graph: ir.Graph) -> ir.Graph:
    """Every recurrent and SVDF layer keeps its state from call to call."""
    ops = tuple(replace(op, attrs=replace(op.attrs, streaming=True)) if _stateful(op) else op for op in graph.ops)
    return graph.replace(ops=ops)


def _recurrent(graph: ir.Graph) -> bool:
    return any(definition(op).over_time == OverTime.RECURRENT for op in graph.ops)


def streaming(graph: ir.Graph) -> ir.Graph:
    """The graph built to consume one frame per call, its state kept between calls."""
    if not _recurrent(graph) and (has_variables(graph) or any(isinstance(op.attrs, Svdf) for op in graph.ops)):
        return mark_streaming(graph)  # frame-wise already
    framed, convolutions = _with_steps(graph, 1)
    tensors, ops = [], []
    for op in framed.ops:
        if op.name in convolutions and _span(op) > 0:
            more_tensors, more_ops = _ring_buffer(op, framed)
            tensors += more_tensors
            ops += more_ops
        else:
            ops.append(op)
    return ir.verify(mark_streaming(framed.with_tensors(*tensors).replace(ops=tuple(ops))))


def frame_outputs(graph: ir.Graph, frames: list[np.ndarray]) -> list[list[np.ndarray]]:
    """The integer reference of a streaming build (`graph`, as built) fed `frames` one per call
    from a reset: each frame's outputs, the state carried from frame to frame."""
    framed, state = mark_streaming(graph), State()
    return [ref.outputs(framed, [frame], state=state) for frame in frames]
