"""Float IR + activation ranges -> the int8 IR that deploys.

TFLite's constraints are honoured so the result runs on TFLite Micro too; each
op's `output_quant` says which applies: data movement (pooling, reshape, pad)
shares its input's quantization; SOFTMAX and LOGISTIC outputs are fixed
(1/256, -128); CONCATENATION inputs share the output's quantization: a
producer that requantizes anyway (convolution, dense, add...) adopts it, any
other input gets an int8 -> int8 QUANTIZE (the op's `quantize` facet).
Weights are symmetric (zero point 0, [-(2^(b-1)-1), 2^(b-1)-1]), biases
int32 at input scale x weight scale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tinyq import ir, ops
from tinyq.errors import TinyqError
from tinyq.ops import OutputQuant
from tinyq.ops.affine import weight_axis
from tinyq.ops.common import INT16
from tinyq.ops.concatenation import Concatenation
from tinyq.ops.quantize import Quantize
from tinyq.quant.config import QuantConfig
from tinyq.quant.precision import DTYPES, Precision
from tinyq.quant.precision import uniform as precision_uniform
from tinyq.quant.ranges import activation_params, symmetric_scales


def fixed_outputs(graph: ir.Graph, bits: int = 8) -> dict[str, ir.QParams]:
    """The outputs whose quantization their kernel fixes (SOFTMAX's 1/256, -128, TANH's 1/128, 0...;
    at 16 bits each op's `fixed_quant_int16`), and the outputs of the pooling, reshape... that
    share such an output's quantization (a TANH into a global average pool)."""
    fixed = {}
    for op in graph.ops:
        definition = ops.definition(op)
        if definition.output_quant == OutputQuant.FIXED:
            quant = definition.fixed_quant if bits == 8 else definition.fixed_quant_int16
            fixed |= {name: ir.QParams.per_tensor(*quant) for name in op.outputs}
        elif definition.output_quant == OutputQuant.INPUT and op.inputs and op.inputs[0] in fixed:
            fixed |= {name: fixed[op.inputs[0]] for name in op.outputs}
    return fixed


@dataclass(frozen=True)
class WeightQuant:
    """Quantized weights of one op, before they become tensors."""

    values: np.ndarray  # integers in [-qmax, qmax]
    scales: np.ndarray  # per output channel (or one)
    axis: int | None
    bits: int | None = None  # None: the config's weight bits (a model's own encodings may mix 4 and 8)


def quantize_weights(
    op: ir.Op, graph: ir.Graph, config: QuantConfig, method: str, bits: int | None = None
) -> WeightQuant:
    """The op's weights at `bits` (default: the config's)."""
    bits = bits or config.weight_bits
    w = graph[op.inputs[1]].data
    axis = weight_axis(op) if config.per_channel else None
    scales = symmetric_scales(w, axis, bits, method)
    qmax = (1 << (bits - 1)) - 1
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    values = np.clip(np.round(w / scales.reshape(shape)), -qmax, qmax).astype(np.int8)
    return WeightQuant(values, scales, axis, bits)


def activation_groups(graph: ir.Graph) -> dict[str, str | None]:
    """Which tensor's quantization each activation tensor uses, as deployment constrains it:
    its own, another's (a pooling/reshape/pad output shares its input's; a concatenation input
    whose producer requantizes anyway takes the concatenation's), or None (SOFTMAX/LOGISTIC:
    fixed). The PTQ conversion and the QAT simulation both follow this one map."""
    groups: dict[str, str | None] = {name: name for name in graph.inputs}
    for op in graph.ops:
        rule = ops.definition(op).output_quant
        for out in op.outputs:
            source = groups.get(op.inputs[0], out)  # a constant source (a GATHER table): the output's own
            groups[out] = {OutputQuant.INPUT: source, OutputQuant.FIXED: None}.get(rule, out)
    producers, consumers = graph.producers(), graph.consumers()
    for op in graph.ops:
        if not isinstance(op.attrs, Concatenation):
            continue
        for name in op.inputs:
            source = producers.get(name)
            if (
                source is not None
                and ops.definition(source).output_quant == OutputQuant.OWN
                and len(consumers[name]) == 1
                and name not in graph.outputs
            ):
                groups[name] = op.outputs[0]

    def final(group):  # a concatenation feeding another adopts it in turn, and so do its inputs
        while group is not None and groups[group] != group:
            group = groups[group]
        return group

    return {name: final(group) for name, group in groups.items()}


def activation_qparams(graph: ir.Graph, ranges: dict[str, tuple[float, float]], bits: int = 8) -> dict[str, ir.QParams]:
    """Quantization of every activation tensor (int8, or int16 with `bits` 16) from its range,
    constraints applied; a concatenation's range covers its inputs' so that none is clipped."""
    producers = graph.producers()

    def qparams(name: str) -> ir.QParams:
        lo, hi = ranges[name]
        source = producers.get(name)
        if source is not None and isinstance(source.attrs, Concatenation):
            lo = min([lo, *(ranges[n][0] for n in source.inputs)])
            hi = max([hi, *(ranges[n][1] for n in source.inputs)])
        return ir.QParams.per_tensor(*activation_params(lo, hi, bits))

    groups, fixed = activation_groups(graph), fixed_outputs(graph, bits)
    own = {name: qparams(name) for name, group in groups.items() if group == name}
    _respect_min_scales(graph, groups, own, fixed, bits)
    return {name: fixed[name] if group is None else own[group] for name, group in groups.items()}


def _respect_min_scales(
    graph: ir.Graph,
    groups: dict[str, str | None],
    own: dict[str, ir.QParams],
    fixed: dict[str, ir.QParams],
    bits: int,
) -> None:
    """Raise the scales that are below an op's limit (a degenerate range: a dead channel's
    output, logits of a random-weight model), keeping their zero points, until every op's
    integer parameters exist. A raised output can raise the limit of the op after it."""

    def scale(name: str) -> float:
        group = groups.get(name, "")
        return fixed[name].s if group is None else own[group].s if group else 0.0

    for _ in range(len(graph.ops) + 1):
        raised = False
        for op in graph.ops:
            for name, limit in ops.definition(op).min_scales(op, graph, scale, bits).items():
                group = groups.get(name)
                if group and own[group].s < limit:
                    own[group] = ir.QParams.per_tensor(
                        float(np.nextafter(np.float32(limit), np.float32(np.inf))), own[group].zp
                    )
                    raised = True
        if not raised:
            return


@dataclass(frozen=True)
class ActivationQuant:
    """Every activation tensor's quantization at each precision in use (`by_bits`: 8 and/or 16
    -> tensor -> QParams, each map constrained on its own) and which precision holds it."""

    by_bits: dict[int, dict[str, ir.QParams]]
    precision: Precision

    @classmethod
    def of(
        cls, graph: ir.Graph, ranges: dict[int, dict[str, tuple[float, float]]], precision: Precision
    ) -> ActivationQuant:
        """From the float ranges at each precision in use (`ranges[bits]`)."""
        used = set(precision.op_bits.values()) | set(precision.tensor_bits.values())
        return cls({bits: activation_qparams(graph, ranges[bits], bits) for bits in sorted(used)}, precision)

    @classmethod
    def uniform(cls, graph: ir.Graph, qparams: dict[str, ir.QParams], bits: int) -> ActivationQuant:
        return cls({bits: qparams}, precision_uniform(graph, bits))

    @property
    def held(self) -> dict[str, ir.QParams]:
        """Each tensor's quantization at the precision that holds it."""
        return {name: self.by_bits[bits][name] for name, bits in self.precision.tensor_bits.items()}


def given_activation_quant(graph: ir.Graph, given: dict[str, ir.QParams], source: str) -> ActivationQuant:
    """int8 activation quantization taken from a quantized model (`source`: a QDQ file, AIMET's
    encodings), the deployment's constraints applied as for tinyq's own ranges: a pooling or
    reshape output shares its input's, SOFTMAX/LOGISTIC/TANH outputs take their fixed ones."""
    groups, fixed = activation_groups(graph), fixed_outputs(graph, 8)
    missing = sorted({g for g in groups.values() if g is not None and g not in given})
    if missing:
        raise TinyqError(f"{source} gives no quantization for tensor {missing[0]!r} (the deployment needs one)")
    held = {name: fixed[name] if group is None else given[group] for name, group in groups.items()}
    return ActivationQuant({8: held}, precision_uniform(graph, 8))


class Int8Context:
    """What an op's `quantize` facet works with while the int8 graph is built: the activation
    quantization (of the op's inputs and outputs at the op's precision, while its facet runs),
    each weighted op's quantized weights, and the tensors set so far. `dtype`: the
    activations' of the op being quantized."""

    def __init__(self, graph: ir.Graph, quant: ActivationQuant, config: QuantConfig, weights: dict[str, WeightQuant]):
        self.graph, self.config, self.weights = graph, config, weights
        self.qparams = quant.held
        self.dtype = config.activation_dtype
        self.tensors = {
            name: ir.Tensor(name, graph[name].shape, DTYPES[quant.precision.tensor_bits[name]], qp)
            for name, qp in self.qparams.items()
        }

    def set(self, tensor: ir.Tensor) -> None:
        self.tensors[tensor.name] = tensor

    def constant_as_activation(self, name: str, qparams: ir.QParams | None = None) -> None:
        """A constant operand (of ADD or MUL, say) quantized like an activation: over its own
        range, or with `qparams`."""
        t = self.graph[name]
        bits = 16 if self.dtype == INT16 else 8
        scale, zp = (
            (qparams.s, qparams.zp) if qparams else activation_params(float(t.data.min()), float(t.data.max()), bits)
        )
        info = np.iinfo(self.dtype)
        values = np.clip(np.round(t.data / scale) + zp, info.min, info.max).astype(self.dtype)
        self.set(ir.Tensor(name, t.shape, self.dtype, ir.QParams.per_tensor(scale, zp), values))


def to_int8(
    graph: ir.Graph,
    q: dict[str, ir.QParams] | ActivationQuant,
    config: QuantConfig,
    weights: dict[str, WeightQuant],
) -> ir.Graph:
    """Build the int8 (int16, or mixed) graph from activation quantization `q` (see
    activation_qparams: one precision, the config's; or an ActivationQuant) and `weights`, the
    quantized weights of each weighted op. An op whose input is held at the other precision
    reads a QUANTIZE'd copy of it (one per tensor and precision, made where first needed)."""
    quant = q if isinstance(q, ActivationQuant) else ActivationQuant.uniform(graph, q, config.activation_bits)
    context = Int8Context(graph, quant, config, weights)
    held = dict(context.qparams)
    deployed: list[ir.Op] = []
    for op in graph.ops:
        bits = quant.precision.op_bits[op.name]
        context.dtype = DTYPES[bits]
        foreign = {n: context.tensors[n] for n in op.inputs if n in held and quant.precision.tensor_bits[n] != bits}
        for name in foreign:  # the facet sees its inputs at its own precision
            context.qparams[name] = quant.by_bits[bits][name]
            context.tensors[name] = ir.Tensor(name, graph[name].shape, DTYPES[bits], context.qparams[name])
        produced = ops.definition(op).quantize(op, graph, context)
        copies = {}
        for name, kept in foreign.items():
            copy = f"{name}/int{bits}"
            if copy not in context.tensors:
                context.set(replace(context.tensors[name], name=copy))
                deployed.append(ir.Op(f"{name}/to_int{bits}", Quantize(), (name,), (copy,)))
            context.qparams[name], context.tensors[name] = held[name], kept  # back to the precision that holds it
            copies[name] = copy
        deployed += [ir.Op(o.name, o.attrs, tuple(copies.get(n, n) for n in o.inputs), o.outputs) for o in produced]
    return ir.verify(graph.replace(tensors=context.tensors, ops=tuple(deployed)))
