"""`--a16 auto`: which layers to give int16 activations, from their sensitivity.

Every measurement is the deployed arithmetic (the integer reference) against the float model on
the first calibration samples: the output SQNR with every layer int8, with every layer that has
a 16x8 kernel int16, and, for each such layer, with every one int16 but it (what int8 there
costs). Quantization noise adds up along the graph, so a layer's cost is measured with the rest
int16, where its own noise is not hidden by the others'. Starting from all int16, layers go back
to int8 cheapest first while the model stays within MARGIN_DB of the all-int16 SQNR and the
arena does not grow (the QUANTIZE copies at the boundaries hold both precisions at once, so
fewer int16 layers is not always less memory): int16 accuracy in at most the all-int16 arena,
usually less. If int16 everywhere gains less than MARGIN_DB over int8, every layer stays int8.
"""

from __future__ import annotations

import numpy as np

from tinyq import ir
from tinyq.codegen.lower import choose_kernels
from tinyq.plan import plan_graph
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

    def measure(precision: Precision) -> tuple[float, int]:
        """Output SQNR on the samples, and the arena of the deployed graph."""
        deployed = to_int8(graph, ActivationQuant.of(graph, ranges, precision), config, weights)
        outs = integer_outputs(deployed, x, quiet=True)
        deq = [dequantize(deployed[n], o).reshape(len(x), -1) for n, o in zip(deployed.outputs, outs)]
        arena = plan_graph(deployed, choose_kernels(deployed)).arena_bytes
        return sqnr_db(reference, np.concatenate(deq, axis=1)), arena

    with progress(quiet) as bar:
        task = bar.add_task("a16 auto: layer sensitivity", total=2 + 2 * len(layers))
        (base, base_arena), (full, full_arena) = measure(uniform(graph, 8)), measure(with_int16(graph, layers))
        bar.advance(task, 2)
        head = (
            f"a16 auto: output SQNR {base:.1f} dB all int8 (arena {base_arena:,} B), "
            f"{full:.1f} dB with {len(layers)} layers int16 (arena {full_arena:,} B)"
        )
        if not layers or full - base < MARGIN_DB:
            return [], [f"{head}; int16 gains under {MARGIN_DB:g} dB, every layer stays int8"]
        cost = {}
        for name in layers:
            cost[name] = full - measure(with_int16(graph, [n for n in layers if n != name]))[0]
            bar.advance(task)
        kept, current, arena = list(layers), full, full_arena
        for name in sorted(layers, key=lambda n: cost[n]):
            trial = [n for n in kept if n != name]
            value, trial_arena = measure(with_int16(graph, trial))
            if value >= full - MARGIN_DB and trial_arena <= arena:
                kept, current, arena = trial, value, trial_arena
            bar.advance(task)
    ranked = ", ".join(f"{n} {cost[n]:.1f}" for n in sorted(layers, key=lambda n: -cost[n]))
    return kept, [
        f"{head}; what int8 costs on each layer, the rest int16 (dB): {ranked}",
        f"a16 auto: int16 on {', '.join(kept) or 'no layer'} -> {current:.1f} dB, arena {arena:,} B "
        f"(within {MARGIN_DB:g} dB of all int16, no larger arena), the rest int8",
    ]
