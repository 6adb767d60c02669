"""Activation precision per layer: which ops run on int16 activations (16x8) and which on int8.

A named op runs at 16 bits; an op that only moves or picks values (its output shares its
input's quantization: reshape, pooling, pad...) follows the op that feeds it, so a run of
int16 layers is not cut by needless conversions; every other op runs at 8 bits. A tensor is
held at its producer's precision (a graph input at its consumers', int8 when they differ);
a consumer of the other precision reads a copy made by a QUANTIZE (int8 <-> int16), exactly
as TFLM executes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tinyq import ir, ops
from tinyq.errors import TinyqError
from tinyq.ops import OutputQuant
from tinyq.ops.common import INT8, INT16

DTYPES = {8: INT8, 16: INT16}


@dataclass(frozen=True)
class Precision:
    """Activation bits (8 or 16) of every op and of every activation tensor."""

    op_bits: Mapping[str, int]
    tensor_bits: Mapping[str, int]

    @property
    def int16_ops(self) -> tuple[str, ...]:
        return tuple(name for name, bits in self.op_bits.items() if bits == 16)


def runs_int16(op: ir.Op) -> bool:
    """Whether the op has a 16x8 kernel (an int16 activation input)."""
    return any(INT16 in s.inputs for s in ops.definition(op).signatures)


def follows_input(op: ir.Op) -> bool:
    """Data movement and value picking: the op adopts the precision of what feeds it."""
    return ops.definition(op).output_quant == OutputQuant.INPUT


def uniform(graph: ir.Graph, bits: int) -> Precision:
    tensors = {name: bits for name in graph.inputs} | {name: bits for op in graph.ops for name in op.outputs}
    return Precision({op.name: bits for op in graph.ops}, tensors)


def with_int16(graph: ir.Graph, names: Iterable[str]) -> Precision:
    """`names` (op names) at 16 bits, the ops that follow them as the module says, the rest at 8."""
    wanted = list(dict.fromkeys(names))
    by_name = {op.name: op for op in graph.ops}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        layers = ", ".join(op.name for op in graph.ops if not follows_input(op))
        raise TinyqError(f"--a16: no layer named {', '.join(unknown)}; the layers are: {layers}")
    refused = [f"{n} ({by_name[n].kind})" for n in wanted if not runs_int16(by_name[n])]
    if refused:
        raise TinyqError(f"--a16: {', '.join(refused)} has no 16x8 kernel (see `tinyq ops`); leave it int8")
    movers = [f"{n} ({by_name[n].kind})" for n in wanted if follows_input(by_name[n])]
    if movers:
        raise TinyqError(
            f"--a16: {', '.join(movers)} only moves values and takes the precision of the layer before it; "
            "name that layer"
        )
    consumers = graph.consumers()
    tensor_bits: dict[str, int] = {}
    for name in graph.inputs:
        readers = consumers.get(name, [])
        tensor_bits[name] = 16 if readers and all(op.name in wanted for op in readers) else 8
    op_bits: dict[str, int] = {}
    for op in graph.ops:
        source = tensor_bits.get(op.inputs[0], 8) if op.inputs else 8
        if op.name in wanted:
            bits = 16
        elif follows_input(op) and runs_int16(op):
            bits = source
        else:
            bits = 8
        op_bits[op.name] = bits
        tensor_bits |= {name: bits for name in op.outputs}
    return Precision(op_bits, tensor_bits)


def candidates(graph: ir.Graph) -> list[str]:
    """The layers `--a16 auto` weighs: ops with their own arithmetic that have a 16x8 kernel."""
    return [op.name for op in graph.ops if runs_int16(op) and not follows_input(op)]
