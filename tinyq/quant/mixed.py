"""`--a16 auto`: which layers to give int16 activations, from their sensitivity.

Every measurement is the deployed arithmetic (the integer reference) against the float model on
the first calibration samples: the output SQNR with every layer int8, with every layer that has
a 16x8 kernel int16, and, for each such layer, with every one int16 but it (what int8 there
costs). Quantization noise adds up along the graph, so a layer's cost is measured with the rest
int16, where its own noise is not hidden by the others'. Starting from all int16, layers go back
to int8 cheapest first while the model stays within MARGIN_DB of the all-int16 SQNR: int16
accuracy for the fewest 2-byte activations. If int16 everywhere gains less than MARGIN_DB over
int8, every layer stays int8.
"""

from __future__ import annotations

import numpy as np

from tinyq import ir
from tinyq.progress import progress
from tinyq.quant.config import QuantConfig
from tinyq.quant.convert import ActivationQuant, WeightQuant, to_int8
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.quant.precision import Precision, candidates, uniform, with_int16
from tinyq.sim import FloatRunner

SAMPLES = 256  # calibration samples each measurement runs
MARGIN_DB = 1.0


def choose_int16_layers(
    graph: ir.Graph,
    ranges: dict[int, dict[str, tuple[float, float]]],
    weights: dict[str, WeightQuant],
    config: QuantConfig,
    x: np.ndarray,
    quiet: bool = False,
) -> tuple[list[str], list[str]]:
    """The layers to run on int16 activations, and notes that say why."""
    x = x[:SAMPLES]
    reference = np.concatenate([o.reshape(len(x), -1) for o in FloatRunner(graph).outputs([x])], axis=1)
    layers = candidates(graph)

    def sqnr(precision: Precision) -> float:
        deployed = to_int8(graph, ActivationQuant.of(graph, ranges, precision), config, weights)
        outs = integer_outputs(deployed, x, quiet=True)
        deq = [dequantize(deployed[n], o).reshape(len(x), -1) for n, o in zip(deployed.outputs, outs)]
        return sqnr_db(reference, np.concatenate(deq, axis=1))

    with progress(quiet) as bar:
        task = bar.add_task("a16 auto: layer sensitivity", total=2 + 2 * len(layers))
        base = sqnr(uniform(graph, 8))
        full = sqnr(with_int16(graph, layers))
        bar.advance(task, 2)
        head = f"a16 auto: output SQNR {base:.1f} dB all int8, {full:.1f} dB with {len(layers)} layers int16"
        if not layers or full - base < MARGIN_DB:
            return [], [f"{head}; int16 gains under {MARGIN_DB:g} dB, every layer stays int8"]
        cost = {}
        for name in layers:
            cost[name] = full - sqnr(with_int16(graph, [n for n in layers if n != name]))
            bar.advance(task)
        kept, current = list(layers), full
        for name in sorted(layers, key=lambda n: cost[n]):
            trial = [n for n in kept if n != name]
            value = sqnr(with_int16(graph, trial))
            if value >= full - MARGIN_DB:
                kept, current = trial, value
            bar.advance(task)
    ranked = ", ".join(f"{n} {cost[n]:.1f}" for n in sorted(layers, key=lambda n: -cost[n]))
    return kept, [
        f"{head}; what int8 costs on each layer, the rest int16 (dB): {ranked}",
        f"a16 auto: int16 on {', '.join(kept) or 'no layer'} -> {current:.1f} dB "
        f"(within {MARGIN_DB:g} dB of all int16), the rest int8",
    ]
