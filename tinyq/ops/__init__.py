"""The op registry: everything tinyq knows about an op kind, in one module of this package.

An op module defines its attrs dataclass and one `OpDef` subclass, decorated
with `@register`: the dtype signatures its kernels implement, its shape and
quantization rules, its integer parameters (TFLM's Prepare), the numpy
reference kernel, the TensorFlow float forward pass, TFLite import and
export, and the choice and lowering of its C kernel. Every other part of
tinyq asks the registry (`definition(op)`), never the op's class, so adding
an op is adding a module here (and its template). Modules are found by
`all_ops()`; an op module needs no line anywhere else.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tinyq.errors import TinyqError

if TYPE_CHECKING:
    from tinyq.ir import Graph, Op, Tensor


class Unsupported(TinyqError):
    """A model construct the op does not implement (raised by TFLite import and lowering)."""


@dataclass(frozen=True)
class Signature:
    """The dtypes of one implemented combination of inputs and outputs. With `variadic`,
    the last input dtype repeats (CONCATENATION takes any number of inputs)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    variadic: bool = False

    def matches(self, ins: tuple[str, ...], outs: tuple[str, ...]) -> bool:
        if outs != self.outputs:
            return False
        if self.variadic:
            fixed = self.inputs[:-1]
            return (
                len(ins) >= len(self.inputs)
                and ins[: len(fixed)] == fixed
                and all(d == self.inputs[-1] for d in ins[len(fixed) :])
            )
        return ins == self.inputs

    @property
    def is_float(self) -> bool:
        """A float model's signature: verified and simulated, never lowered to C."""
        return "float32" in self.outputs and "float32" in self.inputs

    def __str__(self) -> str:
        ins = ", ".join(self.inputs) + (", ..." if self.variadic else "")
        return f"({ins}) -> {', '.join(self.outputs)}"


def signature_of(ins: list[Tensor], outs: list[Tensor]) -> str:
    return str(Signature(tuple(t.dtype for t in ins), tuple(t.dtype for t in outs)))


class InPlace(enum.Enum):
    """Whether a kernel's output may share memory with an input (the planner's question)."""

    NEVER = "never"
    ELEMENTWISE = "elementwise"  # any input of the output's size that dies here (element i reads index i)
    FIRST_INPUT = "first input"  # the first input, when it dies here and the output is no larger
    ALIAS = "alias"  # always the first input's memory (RESHAPE: same bytes)


class OverTime(enum.Enum):
    """How an op meets the time axis of a sequence in a streaming build (tinyq/streaming.py)."""

    MIXES = "mixes"  # combines time steps: refused on the sequence path (unless the pass has a rule for it)
    STEP_WISE = "step-wise"  # acts on each time step alone
    RECURRENT = "recurrent"  # consumes the sequence step by step, its state kept (its attrs' `streaming`)


class OutputQuant(enum.Enum):
    """How post-training quantization sets an op's output quantization."""

    OWN = "own"  # the op requantizes: its output gets its own range
    INPUT = "input"  # data movement: the output shares the first input's quantization
    FIXED = "fixed"  # fixed by the kernel (SOFTMAX, LOGISTIC: scale 1/256, zero point -128)


@dataclass(frozen=True)
class Kernel:
    """The C kernel chosen for one op, decided once and read by the memory plan, the
    lowering and the report. `name` is the kernel's header (tq_<name>.h); `template`
    the Jinja file in templates/kernels rendered with `options`."""

    name: str
    template: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    scratch_bytes: int = 0  # the Python twin of the kernel's *_get_buffer_size
    state_bytes: int = 0  # kept in the arena across calls (a streaming layer's state), cleared by tinyq_reset
    in_place: InPlace = InPlace.NEVER
    overlap_lead: int | None = None  # output may start this many bytes before its dying input
    reference_because: str | None = None  # why a fast kernel was not taken (None: it was, or none exists)
    weight_layout: str = "plain"  # plain | interleaved (rows in blocks, words of k) | interleaved k pairs | tap pairs
    # | host (int32 [k][channels padded]) | host quads (int8 [kernel row][k/4][channels padded][4]): the host
    # evaluator's
    rows_per_block: int = 1  # output channels per inner-loop block (interleaved layout)
    specialized: bool = False  # worth a layer function of its own (flatten, noinline)

    def __post_init__(self):
        if not self.template:
            object.__setattr__(self, "template", self.name)

    @property
    def template_file(self) -> str:
        return f"kernels/{self.template}.c.j2"


class State(dict):
    """What ops that keep state from call to call hold between the reference's calls, by name;
    `samples` is the leading sample axis of the current call."""

    samples: int = 1

    def carried(self, key: str, persists: bool, initial):
        """What a stateful op left under `key` on the last call, if its state persists (a
        streaming build), else `initial`."""
        return self.get(key, initial) if persists else initial

    def keep(self, key: str, persists: bool, value) -> None:
        if persists:
            self[key] = value


class OpDef:
    """One op kind. Subclasses set the class attributes and implement the facets their
    signatures claim: float signatures need `forward`; integer ones `params`,
    `reference`, `kernel` and `lower`; every op `check` and its TFLite mapping."""

    attrs: type  # the op's attrs dataclass
    name: str  # its TFLite builtin operator name (its custom code when `custom`)
    custom: bool = False  # no TFLite builtin: tinyq's own, written as a CUSTOM operator named `name`
    signatures: tuple[Signature, ...] = ()
    tflite_aliases: tuple[str, ...] = ()  # more builtin operators imported as this op
    output_quant: OutputQuant = OutputQuant.OWN
    over_time: OverTime = OverTime.MIXES
    fixed_quant: tuple[float, int] = (1 / 256, -128)  # (scale, zero point) of a FIXED output
    fixed_quant_int16: tuple[float, int] = (1 / 32768, 0)  # the same at 16x8 (TFLM's int16 kernels)
    # Outputs of the float op only, exposing internal state to calibration (an LSTM's cell state):
    # ranged by their observed extremes, never clipped, and dropped by the op's `quantize` facet.
    state_outputs: tuple[int, ...] = ()

    # --- rules -----------------------------------------------------------------------
    def check(self, attrs, ins: list[Tensor], outs: list[Tensor]) -> None:
        """Shape and quantization rules beyond the dtypes; raise IRError with the reason."""
        raise NotImplementedError

    # --- integer arithmetic ---------------------------------------------------------
    def params(self, attrs, ins: list[Tensor], outs: list[Tensor]):
        """The kernel's integer parameters, computed as TFLM's Prepare computes them."""
        raise NotImplementedError

    def reference(
        self, attrs, params, ins: list[np.ndarray], in_tensors: list[Tensor], outs: list[Tensor]
    ) -> np.ndarray:
        """The numpy reference: inputs carry a leading sample axis (constants do not). An op
        with several outputs returns a tuple, one array per output."""
        raise NotImplementedError

    def reference_with_state(self, attrs, params, ins, in_tensors, outs, state: State):
        """The reference of an op that keeps state from call to call: it reads and updates
        `state` (its entries, by name, carried by the caller of ref.run). Default: stateless."""
        return self.reference(attrs, params, ins, in_tensors, outs)

    # --- float semantics ------------------------------------------------------------
    def forward(self, tf, op: Op, graph: Graph, xs: list):
        """The op in TensorFlow float arithmetic on batched inputs (calibration, AdaRound, QAT);
        a tuple for an op with several outputs."""
        raise NotImplementedError

    # --- C --------------------------------------------------------------------------
    def kernel(self, op: Op, graph: Graph, fast: bool) -> Kernel:
        raise NotImplementedError

    def host_kernel(self, op: Op, graph: Graph) -> Kernel | None:
        """The kernel of the host evaluator (tinyq/target/native.py), shaped for a host's wide
        vectors, where the op has one; None: it runs its portable kernel there."""
        return None

    def lower(self, ctx, kernel: Kernel) -> dict:
        """The values the kernel template's layer() macro renders."""
        raise NotImplementedError

    # --- TFLite ---------------------------------------------------------------------
    def read_tflite(self, reader, op, inputs: list[int], outputs: list[int]) -> tuple:
        """(attrs, input tensor indices) of a TFLite operator, or (attrs, inputs, outputs) when
        the IR op has other outputs than the operator (a float LSTM's cell state)."""
        raise NotImplementedError

    def write_tflite(self, writer, op: Op) -> None:
        raise NotImplementedError

    # --- facts with defaults --------------------------------------------------------
    def macs(self, op: Op, graph: Graph) -> int:
        return 0

    def propagate_range(self, op: Op, ranges: list) -> tuple[float, float] | None:
        """A data-free range of the output from the inputs' ranges (None: unknown)."""
        return None

    def min_scales(self, op: Op, graph: Graph, scale, bits: int = 8) -> dict[str, float]:
        """The smallest scale each of the op's activation tensors may have for its integer
        parameters to exist (TFLM refuses or overflows on the others), given `scale(name)`, the
        float graph and the activation bits (8 or 16): post-training quantization widens a
        degenerate range to respect it. Default: no limit."""
        return {}

    def quantize(self, op: Op, graph: Graph, context) -> list[Op]:
        """The op in the int8 graph (see tinyq.quant.convert.Int8Context): by default the op
        itself, with float constant operands quantized like activations (a data-movement op's
        constant source, a GATHER table say, at its output's quantization)."""
        for name in op.inputs:
            if graph[name].is_constant and graph[name].dtype == "float32":
                shared = name == op.inputs[0] and self.output_quant == OutputQuant.INPUT
                context.constant_as_activation(name, context.qparams[op.outputs[0]] if shared else None)
        return [op]

    def implements(self, ins: list[Tensor], outs: list[Tensor]) -> bool:
        dtypes = tuple(t.dtype for t in ins), tuple(t.dtype for t in outs)
        return any(s.matches(*dtypes) for s in self.signatures)

    def supported(self) -> str:
        return ", ".join(str(s) for s in self.signatures)


MAX_MULTIPLIER = 2.0**30  # a requantization multiplier beyond this overflows TFLM's left shift


_BY_ATTRS: dict[type, OpDef] = {}
_BY_NAME: dict[str, OpDef] = {}
_DISCOVERED = False


def register(cls: type[OpDef]) -> type[OpDef]:
    """Class decorator: make an OpDef subclass the definition of its attrs class."""
    definition = cls()
    for key, table in ((definition.attrs, _BY_ATTRS), (definition.name, _BY_NAME)):
        if key in table:
            raise AssertionError(f"{key} is registered twice")
        table[key] = definition
    return cls


def all_ops() -> list[OpDef]:
    """Every registered op, after importing every module of this package once."""
    global _DISCOVERED
    if not _DISCOVERED:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _DISCOVERED = True
    return sorted(_BY_NAME.values(), key=lambda d: d.name)


def definition(op_or_attrs) -> OpDef:
    """The definition of an op (or of an attrs object); KeyError for an unknown kind."""
    attrs = getattr(op_or_attrs, "attrs", op_or_attrs)
    return _BY_ATTRS[type(attrs)]


def by_name(name: str) -> OpDef | None:
    all_ops()
    return _BY_NAME.get(name)


def per_output(op: Op, result) -> list:
    """A reference or forward result as one value per output of `op`."""
    values = list(result) if len(op.outputs) != 1 else [result]
    if len(values) != len(op.outputs):
        raise AssertionError(f"{op.name}: {len(values)} results for {len(op.outputs)} outputs")
    return values


def kernel_params(op: Op, graph: Graph):
    """The integer parameters of an op's kernel (None for a float op)."""
    ins, outs = [graph[n] for n in op.inputs], [graph[n] for n in op.outputs]
    if all(t.dtype == "float32" for t in ins + outs):
        return None
    return definition(op).params(op.attrs, ins, outs)
