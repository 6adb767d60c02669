"""`--bits auto`: int8 or int4 weights per layer, chosen to fit a flash budget or to meet an
accuracy target.

Every measurement is the deployed arithmetic (the integer reference, or the same arithmetic
compiled for the host) against the float model on the first calibration samples. A layer's
sensitivity is what int4 weights on it alone cost: the output noise power it adds to the
all-int8 model's (noise powers of independent layers add up along the graph, SQNR in dB does
not). Layers are lowered cheapest first per byte they save (the greedy knapsack order), and
every prefix of that order is measured: these points are the accuracy versus flash curve the
report plots. A flash budget takes the shortest prefix that fits, or that prefix with every
lowered layer the budget still has room for put back to int8 (costliest first), whichever
measures better: only what the budget needs is lowered. An accuracy target (`--data` with
labels) takes the smallest point that meets it. Layers on int16 activations keep int8 weights
(TFLM's 16x8 kernels take int8). The choice depends only on the model, the data and the goal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tinyq import codegen, ir
from tinyq.analysis import weight_bytes
from tinyq.budget import BudgetError
from tinyq.data import Dataset
from tinyq.errors import TinyqError
from tinyq.progress import progress
from tinyq.quant.config import QuantConfig
from tinyq.quant.convert import ActivationQuant, WeightQuant, to_int8
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.report import CurvePoint, LayerBits
from tinyq.sim import FloatRunner

LOW_BITS = 4
SAMPLES = 256  # calibration samples each measurement runs


@dataclass(frozen=True)
class Goal:
    """What `--bits auto` aims for: constant data within `max_flash` bytes (the arena within
    `max_ram`), and/or accuracy on `data` (labelled) of at least `target_accuracy`, or at most
    `max_drop` points below float's."""

    max_flash: int | None = None
    max_ram: int | None = None
    target_accuracy: float | None = None
    max_drop: float | None = None
    data: Dataset | None = None

    @property
    def wants_accuracy(self) -> bool:
        return self.target_accuracy is not None or self.max_drop is not None


@dataclass(frozen=True)
class BitsChoice:
    low: tuple[str, ...]  # the layers on int4 weights
    table: tuple[LayerBits, ...]
    curve: tuple[CurvePoint, ...]  # all int8 first, every layer int4 last
    notes: tuple[str, ...]


def _noise(sqnr: float) -> float:
    """Output noise power relative to the signal's."""
    return 0.0 if sqnr == float("inf") else 10 ** (-sqnr / 10)


class _Measure:
    """Deploys a choice of int4 layers and measures it, each configuration once."""

    def __init__(self, graph, quant, config, weights8, weights4, x, goal):
        self.graph, self.quant, self.config = graph, quant, config
        self.weights8, self.weights4 = weights8, weights4
        self.x = x[:SAMPLES]
        self.reference = self._flat(FloatRunner(graph).outputs([self.x]))
        self.data = goal.data if goal.wants_accuracy else None
        self.seen: dict[tuple[str, ...], CurvePoint] = {}
        self.sizes: dict[tuple[str, ...], tuple[int, int]] = {}
        self.max_flash, self.max_ram = goal.max_flash, goal.max_ram

    def size(self, low) -> tuple[int, int]:
        """The configuration's constant and arena bytes, as codegen makes them (layouts and
        scratch differ per kernel)."""
        key = tuple(sorted(low))
        if key not in self.sizes:
            self.sizes[key] = codegen.footprint(self.deploy(key))
        return self.sizes[key]

    def fits(self, low) -> bool:
        constants, arena = self.size(low)
        return (self.max_flash is None or constants <= self.max_flash) and (
            self.max_ram is None or arena <= self.max_ram
        )

    @staticmethod
    def _flat(outputs) -> np.ndarray:
        return np.concatenate([o.reshape(len(o), -1) for o in outputs], axis=1)

    def weights(self, low) -> dict[str, WeightQuant]:
        return {name: self.weights4[name] if name in low else w for name, w in self.weights8.items()}

    def deploy(self, low) -> ir.Graph:
        return to_int8(self.graph, self.quant, self.config, self.weights(low))

    def __call__(self, low, accuracy: bool = False) -> CurvePoint:
        """The configuration's measurement; with `accuracy`, also on the labelled data."""
        key = tuple(sorted(low))
        point = self.seen.get(key)
        if point is None:
            deployed = self.deploy(key)
            outs = integer_outputs(deployed, self.x, quiet=True)
            deq = self._flat([dequantize(deployed[n], o) for n, o in zip(deployed.outputs, outs)])
            point = CurvePoint(key, *self.size(key), sqnr_db(self.reference, deq))
        if accuracy and self.data is not None and point.accuracy is None:
            out = integer_outputs(self.deploy(key), self.data.x, quiet=True)[0]
            top = np.argmax(out.reshape(len(out), -1), axis=1)
            point = replace(point, accuracy=float(np.mean(top == self.data.y)))
        self.seen[key] = point
        return point


def _accuracy_target(goal: Goal, float_graph: ir.Graph) -> float | None:
    if not goal.wants_accuracy:
        return None
    if goal.data is None or goal.data.y is None:
        raise TinyqError("--target-accuracy / --max-drop measure accuracy: give --data with labels (y)")
    if goal.max_drop is None:
        return goal.target_accuracy
    out = FloatRunner(float_graph, keep=set(float_graph.outputs)).outputs([goal.data.x])[0]
    float_accuracy = float(np.mean(np.argmax(out.reshape(len(out), -1), axis=1) == goal.data.y))
    target = float_accuracy - goal.max_drop / 100
    return target if goal.target_accuracy is None else max(target, goal.target_accuracy)


def choose_weight_bits(
    graph: ir.Graph,
    quant: ActivationQuant,
    config: QuantConfig,
    weights8: dict[str, WeightQuant],
    weights4: dict[str, WeightQuant],
    x: np.ndarray,
    goal: Goal,
    quiet: bool = False,
) -> BitsChoice:
    """The layers to put on int4 weights for `goal` (see the module)."""
    layers = [n for n in weights8 if quant.precision.op_bits[n] == 8]
    if not layers:
        raise TinyqError("--bits auto: no layer with int8 activations has weights to lower to int4")
    target = _accuracy_target(goal, graph)
    measure = _Measure(graph, quant, config, weights8, weights4, x, goal)
    with progress(quiet) as bar:
        task = bar.add_task("bits auto: layer sensitivity", total=1 + 2 * len(layers))
        base = measure((), accuracy=True)
        bar.advance(task)
        single = {}  # each layer alone at int4
        for name in layers:
            single[name] = measure((name,), accuracy=True)
            bar.advance(task)
        cost = {n: max(_noise(p.sqnr_db) - _noise(base.sqnr_db), 0.0) for n, p in single.items()}
        saved = {n: base.constant_bytes - p.constant_bytes for n, p in single.items()}
        order = sorted(layers, key=lambda n: (cost[n] / max(saved[n], 1), n))
        curve = [base]
        for k in range(1, len(order) + 1):
            curve.append(measure(tuple(order[:k]), accuracy=True))
            bar.advance(task)
    chosen = _pick(curve, order, measure, target)
    sensitivity = {n: base.sqnr_db - p.sqnr_db for n, p in single.items()}
    drop = {n: 100 * (base.accuracy - p.accuracy) for n, p in single.items()} if base.accuracy is not None else {}
    final = measure.deploy(chosen.low)
    table = tuple(
        LayerBits(
            op.name,
            op.kind,
            LOW_BITS if op.name in chosen.low else 8,
            quant.precision.op_bits[op.name],
            weight_bytes(op, final),
            sensitivity.get(op.name),
            drop.get(op.name),
        )
        for op in graph.ops
        if op.name in weights8
    )
    what = f"{len(chosen.low)} of {len(layers)} layers int4"
    notes = [
        f"bits auto: {what}: constants {chosen.constant_bytes:,} B (all int8 {base.constant_bytes:,} B, "
        f"all int4 {curve[-1].constant_bytes:,} B), output SQNR {chosen.sqnr_db:.1f} dB "
        f"(all int8 {base.sqnr_db:.1f} dB, all int4 {curve[-1].sqnr_db:.1f} dB) on {len(measure.x)} samples"
        + (f", accuracy {chosen.accuracy:.2%} on --data" if chosen.accuracy is not None else "")
    ]
    points = curve if chosen in curve else [*curve, chosen]
    return BitsChoice(chosen.low, table, tuple(sorted(points, key=lambda p: -p.constant_bytes)), tuple(notes))


def _pick(curve: list[CurvePoint], order: list[str], measure: _Measure, target: float | None) -> CurvePoint:
    """The measured point the goal takes (see the module)."""
    smallest, least_ram = min(curve, key=lambda p: p.constant_bytes), min(curve, key=lambda p: p.arena_bytes)
    if measure.max_flash is not None and smallest.constant_bytes > measure.max_flash:
        raise BudgetError(
            f"the constant data needs at least {smallest.constant_bytes:,} bytes (every layer int4, the smallest "
            f"--bits auto can make), {smallest.constant_bytes - measure.max_flash:,} over the "
            f"{measure.max_flash:,}-byte budget (--max-flash); try a board with more flash"
        )
    if measure.max_ram is not None and least_ram.arena_bytes > measure.max_ram:
        raise BudgetError(
            f"the arena needs at least {least_ram.arena_bytes:,} bytes whatever the weight bits "
            f"({least_ram.label}), {least_ram.arena_bytes - measure.max_ram:,} over the {measure.max_ram:,}-byte "
            "budget (--max-ram); try a board with more RAM or a smaller input"
        )
    fitting = [p for p in curve if measure.fits(p.low)]
    if not fitting:
        raise BudgetError(
            "no choice of weight bits fits both --max-flash and --max-ram: int4 weights shrink the constants "
            f"but their kernels' scratch grows the arena (all int8: {curve[0].constant_bytes:,} B constants, "
            f"{curve[0].arena_bytes:,} B arena; all int4: {curve[-1].constant_bytes:,} B, {curve[-1].arena_bytes:,} B)"
        )
    if target is not None:
        meeting = [p for p in fitting if p.accuracy >= target]
        if not meeting:
            best = max(fitting, key=lambda p: (p.accuracy, -p.constant_bytes))
            raise TinyqError(
                f"--bits auto: no configuration reaches accuracy {target:.2%}"
                + (" within the budget" if measure.max_flash or measure.max_ram else "")
                + f"; the best is {best.accuracy:.2%} ({best.label}, {best.constant_bytes:,} B)"
            )
        return min(meeting, key=lambda p: (p.constant_bytes, -p.accuracy, len(p.low)))
    first = fitting[0]  # the fewest layers lowered that fit; put back what still fits, costliest first
    if not first.low:
        return first
    low = order[: len(first.low)]
    for name in reversed(order[: len(first.low)]):
        if measure.fits([n for n in low if n != name]):
            low.remove(name)
    refined = measure(tuple(low))
    return max([first, refined], key=lambda p: (p.sqnr_db, -p.constant_bytes, -len(p.low)))
