"""READ_VARIABLE and ASSIGN_VARIABLE: state a model keeps from call to call, as TFLite's resource
variables (the form of TFLite Micro's streaming models: a convolution's ring buffer is a
variable read, concatenated with the new frame, and its newest steps assigned back).

In the IR a variable is named by `variable`. READ_VARIABLE's one input is the variable's initial
value (a constant: what the file's CALL_ONCE init subgraph assigns, and what `tinyq_reset`
restores); its output is the variable's value when the call starts. ASSIGN_VARIABLE has one
input, the value the next call reads, and no output. Each variable is read by one
READ_VARIABLE and assigned by at most one ASSIGN_VARIABLE after it (`check_variables`): the
importer refuses other orders. TFLite Micro copies the variable's bytes both ways, whatever the
tensors' quantization, and so does tinyq: only shapes and dtypes must agree.

The integer reference keeps the values in the `state` of `ref.run` (a fresh state, the initial
values, unless a caller carries one from call to call). Kernel `variable_copy`: the value lives
in the arena's state region; a read copies it out, an assignment copies into it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.ir import IRError
from tinyq.ops import Kernel, OpDef, Signature, Unsupported, register
from tinyq.ops.common import INT8, INT16, count, expect

DTYPES = (INT8, INT16, "int32")


@dataclass(frozen=True)
class ReadVariable:
    variable: str


@dataclass(frozen=True)
class AssignVariable:
    variable: str


@register
class ReadVariableOp(OpDef):
    attrs = ReadVariable
    name = "READ_VARIABLE"
    signatures = tuple(Signature((d,), (d,)) for d in DTYPES)

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        initial, value = ins[0], outs[0]
        expect(initial.is_constant, f"initial value {initial.name!r} of variable {a.variable!r} must be a constant")
        expect(
            initial.shape == value.shape,
            f"variable {a.variable!r}: initial value {initial.shape}, read as {value.shape}",
        )

    def params(self, a, ins, outs):
        return None

    def reference(self, a, p, ins, in_tensors, outs):
        raise AssertionError("READ_VARIABLE runs with a state (ref.run)")

    def reference_with_state(self, a, p, ins, in_tensors, outs, state):
        if a.variable not in state:
            state[a.variable] = np.broadcast_to(ins[0], (state.samples, *ins[0].shape))
        return state[a.variable]

    def kernel(self, op, graph, fast):
        return Kernel("variable_copy", state_bytes=graph[op.outputs[0]].nbytes)

    def lower(self, ctx, kernel):
        initial = ctx.tensor(0)
        return {
            "size": ctx.out.nbytes,
            "source": ctx.state(),
            "target": f"(uint8_t *){ctx.output()}",
            "initial": ctx.constant(
                f"tq_k0_{ctx.ident}", initial.data.reshape(-1), f"{initial.dtype}_t", ctx.weights_comment(initial)
            ),
        }

    def read_tflite(self, r, op, inputs, outputs):
        variable, initial = r.variable(inputs[0])
        return ReadVariable(variable), [initial]

    def write_tflite(self, writer, op):
        resource = writer.resource(op.attrs.variable, op.inputs[0])
        writer.add_op(self.name, [resource], [writer.tensor(op.outputs[0])])


@register
class AssignVariableOp(OpDef):
    attrs = AssignVariable
    name = "ASSIGN_VARIABLE"
    signatures = tuple(Signature((d,), ()) for d in DTYPES)

    def check(self, a, ins, outs):
        count(ins, outs, 1, 0)

    def params(self, a, ins, outs):
        return None

    def reference(self, a, p, ins, in_tensors, outs):
        raise AssertionError("ASSIGN_VARIABLE runs with a state (ref.run)")

    def reference_with_state(self, a, p, ins, in_tensors, outs, state):
        state[a.variable] = ins[0]
        return ()

    def kernel(self, op, graph, fast):
        return Kernel("variable_copy")

    def lower(self, ctx, kernel):
        read = next(
            op
            for op in ctx.graph.ops
            if isinstance(op.attrs, ReadVariable) and op.attrs.variable == ctx.op.attrs.variable
        )
        return {
            "size": ctx.tensor(0).nbytes,
            "source": f"(const uint8_t *){ctx.input()}",
            "target": ctx.state(read.name),
        }

    def read_tflite(self, r, op, inputs, outputs):
        if len(inputs) != 2:
            raise Unsupported(f"{len(inputs)} operands; ASSIGN_VARIABLE takes a resource and a value")
        variable, _ = r.variable(inputs[0])
        return AssignVariable(variable), [inputs[1]]

    def write_tflite(self, writer, op):
        writer.add_op(self.name, [writer.resource(op.attrs.variable), writer.tensor(op.inputs[0])], [])


def check_variables(graph) -> None:
    """Each variable read by one READ_VARIABLE and assigned at most once, after the read, a
    value of the shape and dtype read."""
    reads: dict[str, object] = {}
    for op in graph.ops:
        if isinstance(op.attrs, ReadVariable):
            if op.attrs.variable in reads:
                raise IRError(f"variable {op.attrs.variable!r} is read twice (tinyq keeps one read per variable)")
            reads[op.attrs.variable] = op
        elif isinstance(op.attrs, AssignVariable):
            read = reads.pop(op.attrs.variable, None)
            if read is None:
                raise IRError(
                    f"variable {op.attrs.variable!r} is assigned before it is read, or twice, or never read "
                    "(tinyq takes one read, then at most one assignment, per call)"
                )
            was, value = graph[read.outputs[0]], graph[op.inputs[0]]
            if (was.shape, was.dtype) != (value.shape, value.dtype):
                raise IRError(
                    f"variable {op.attrs.variable!r} is read as {was.dtype}{list(was.shape)} "
                    f"but assigned {value.dtype}{list(value.shape)}"
                )
            reads[op.attrs.variable] = None  # assigned: no further read or assignment


def has_variables(graph) -> bool:
    return any(isinstance(op.attrs, ReadVariable) for op in graph.ops)
