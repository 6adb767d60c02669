"""Post-training quantization: a float model + calibration data -> an int8 IR graph.

    result = quantize(float_model, calibration, QuantConfig(range_method="mse"))
    result.graph        # int8 IR, ready for codegen, export and the integer reference

Ranges (calibration statistics or BatchNorm statistics), then the passes the
config names: CLE before ranges, AdaRound on the weights, bias correction on
the converted graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyq import ir, ops
from tinyq.data import Dataset
from tinyq.errors import TinyqError
from tinyq.float_model import FloatModel
from tinyq.ops.affine import is_affine
from tinyq.quant.adaround import apply_adaround
from tinyq.quant.bias_correction import bias_shift, corrected_biases_empirical, input_means_analytic
from tinyq.quant.bitsearch import LOW_BITS, BitsChoice, Goal, choose_weight_bits
from tinyq.quant.cle import equalize
from tinyq.quant.config import QuantConfig
from tinyq.quant.convert import ActivationQuant, quantize_weights, to_int8
from tinyq.quant.evaluate import dequantize, integer_outputs
from tinyq.quant.layerwise import dequantized
from tinyq.quant.mixed import choose_int16_layers
from tinyq.quant.observe import activation_tensors, observe
from tinyq.quant.precision import uniform, with_int16
from tinyq.quant.ranges import bn_range, mse_range, percentile_range
from tinyq.sim import FloatRunner

QDROP = 0.5  # QDrop's probability of keeping a value float (Wei et al. 2022)


@dataclass
class QuantResult:
    graph: ir.Graph  # the int8 graph
    float_graph: ir.Graph  # the float graph it was made from (after any passes)
    config: QuantConfig
    ranges: dict[str, tuple[float, float]]  # at the config's activation bits (int8 for --a16)
    notes: list[str] = field(default_factory=list)
    int16_layers: tuple[str, ...] = ()  # mixed precision: the ops on int16 activations
    bits_choice: BitsChoice | None = None  # --bits auto: the weight bits per layer, and the curve


def _clip_to_activation(op: ir.Op | None, lo: float, hi: float) -> tuple[float, float]:
    act = getattr(op.attrs, "activation", ir.Activation.NONE) if op else ir.Activation.NONE
    floor, ceiling = act.float_range()
    return max(lo, floor), min(hi, ceiling)


def _propagated_range(op: ir.Op, ranges) -> tuple[float, float] | None:
    """Data-free range of an op's output from its inputs' ranges (for BN-based setting)."""
    ins = [ranges.get(n) for n in op.inputs]
    if ins[0] is None:
        return None
    return ops.definition(op).propagate_range(op, ins)


def _calibrated_range(s, config: QuantConfig, bits: int) -> tuple[float, float]:
    """The config's range of calibrated statistics `s`. MSE, percentile and mean-max clipping
    trade int8's 256 levels against outliers; at 16 bits a level is 256 times finer and clipping
    costs more than rounding saves, so int16 tensors take the observed range."""
    if bits == 8 and config.range_method == "mse":
        return mse_range(s)
    if bits == 8 and config.range_method == "percentile":
        return percentile_range(s, config.percentile)
    if bits == 8 and config.range_method == "meanmax":
        return s.mean_range()
    return s.lo, s.hi


def activation_ranges(
    fm: FloatModel, graph: ir.Graph, stats: dict, config: QuantConfig, bits: int
) -> dict[str, tuple[float, float]]:
    """Every activation tensor's float range for `bits`-bit activations: from BatchNorm (`bn`)
    or from the calibration statistics `stats`."""
    method = config.range_method
    producers = graph.producers()
    ranges: dict[str, tuple[float, float]] = {}
    missing = []
    state = {op.outputs[i] for op in graph.ops for i in ops.definition(op).state_outputs}
    for name in activation_tensors(graph):
        op = producers.get(name)
        if name in state and name in stats:
            r = stats[name].lo, stats[name].hi
        elif method == "bn" and name in fm.bn_stats:
            r = _clip_to_activation(op, *bn_range(*fm.bn_stats[name]))
        elif method == "bn" and op is not None and (propagated := _propagated_range(op, ranges)) is not None:
            r = _clip_to_activation(op, *propagated)
        elif name in stats:
            r = _calibrated_range(stats[name], config, bits)
        else:
            missing.append(name)
            continue
        ranges[name] = r
    if missing:
        raise TinyqError(
            f"no range for {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}: "
            "give calibration data (--calib) — BatchNorm statistics cover only the layers they follow"
        )
    return ranges


def _corrected_biases_analytic(graph: ir.Graph, weights: dict, bn_stats: dict) -> list[ir.Tensor]:
    """Data-free bias correction from BatchNorm statistics."""
    means = input_means_analytic(graph, bn_stats)
    tensors = []
    for op in graph.ops:
        if op.name in weights and op.inputs[0] in means:
            shift = bias_shift(op, graph[op.inputs[1]].data, dequantized(weights[op.name]), means[op.inputs[0]])
            b = graph[op.inputs[2]]
            tensors.append(ir.Tensor(b.name, b.shape, "float32", None, (b.data - shift).astype(np.float32)))
    return tensors


def quantize(
    fm: FloatModel,
    calib: Dataset | None,
    config: QuantConfig,
    *,
    quiet: bool = False,
    adaround_iterations: int = 1000,
    goal: Goal | None = None,
) -> QuantResult:
    """`goal`: what --bits auto aims for (default: no budget, every layer int8)."""
    if calib is None and config.range_method != "bn":
        raise TinyqError(
            f"range method {config.range_method} needs calibration data (--calib DATA); only 'bn' is data-free"
        )
    if calib is None and config.rounding:
        raise TinyqError(f"{config.rounding} learns from calibration data: give --calib DATA")
    notes: list[str] = []
    if "cle" in config.passes:
        fm, cle_notes = equalize(fm)
        notes += cle_notes
    graph = fm.graph
    if config.int16_auto and calib is None:
        raise TinyqError("--a16 auto measures each layer on calibration data: give --calib DATA")
    if config.weights_auto and calib is None:
        raise TinyqError("--bits auto measures each layer on calibration data: give --calib DATA")
    named = with_int16(graph, config.int16_layers) if config.int16_layers else None  # a bad name fails first
    method = config.range_method
    stats = observe(graph, calib.x, histograms=method in ("mse", "percentile"), quiet=quiet) if calib else {}
    needed = {8, 16} if config.mixed else {config.activation_bits}
    ranges = {bits: activation_ranges(fm, graph, stats, config, bits) for bits in sorted(needed)}
    weight_method = "mse" if config.range_method == "mse" else "minmax"
    weights = {op.name: quantize_weights(op, graph, config, weight_method) for op in graph.ops if is_affine(op)}
    if named is not None:
        precision = named
        notes.append(f"a16: int16 activations on {', '.join(config.int16_layers)}")
    elif config.int16_auto:
        names, auto_notes = choose_int16_layers(graph, ranges, weights, config, calib.x, quiet)
        precision = with_int16(graph, names)
        notes += auto_notes
    else:
        precision = uniform(graph, config.activation_bits)
    qparams = ActivationQuant.of(graph, ranges, precision)
    choice = None
    if config.weights_auto:
        low = {
            n: quantize_weights(op, graph, config, weight_method, LOW_BITS)
            for op in graph.ops
            if (n := op.name) in weights
        }
        choice = choose_weight_bits(graph, qparams, config, weights, low, calib.x, goal or Goal(), quiet)
        weights = {n: low[n] if n in choice.low else w for n, w in weights.items()}
        notes += choice.notes
    if config.rounding:
        weights = apply_adaround(
            graph,
            calib.x,
            weights,
            config.weight_bits,
            qparams,
            iterations=adaround_iterations,
            blocks=config.rounding in ("brecq", "qdrop"),
            drop=QDROP if config.rounding == "qdrop" else 0.0,
            quiet=quiet,
        )
    deployed = to_int8(graph, qparams, config, weights)
    if "bc" in config.passes and calib is None:
        corrected = _corrected_biases_analytic(graph, weights, fm.bn_stats)
        notes.append(f"bc: analytic bias correction (BatchNorm statistics) of {len(corrected)} layers")
        deployed = to_int8(graph.with_tensors(*corrected), qparams, config, weights)
    elif "bc" in config.passes:
        deployed, note = _best_bias_correction(graph, calib.x, qparams, config, weights, deployed)
        notes.append(note)
    int16_layers = precision.int16_ops if config.mixed else ()
    return QuantResult(deployed, graph, config, ranges[config.activation_bits], notes, int16_layers, choice)


def _best_bias_correction(graph, x, qparams, config, weights, uncorrected):
    """Empirical bias correction fitted on the first 3/4 of the calibration data; the variant
    with the lowest output error on the last quarter wins (no correction is a candidate)."""
    split = max(1, len(x) * 3 // 4)
    fit, held_out = x[:split], x[split:] if len(x) > split else x
    reference = FloatRunner(graph, keep=set(graph.outputs)).outputs([held_out])[0]
    candidates = {"none": uncorrected}
    for total_shift, label in ((False, "weight error"), (True, "total shift")):
        corrected = corrected_biases_empirical(graph, fit, weights, qparams, total_shift=total_shift)
        candidates[label] = to_int8(graph.with_tensors(*corrected), qparams, config, weights)
    errors = {}
    for label, candidate in candidates.items():
        out = integer_outputs(candidate, held_out, quiet=True)[0]
        deq = dequantize(candidate[candidate.outputs[0]], out).reshape(reference.shape)
        errors[label] = float(np.mean((deq - reference) ** 2))
    best = min(errors, key=errors.get)
    detail = ", ".join(f"{k} {v:.3g}" for k, v in errors.items())
    if best == "none":
        return uncorrected, f"bc: no correction lowered the held-out output error ({detail}); biases kept"
    return candidates[best], f"bc: empirical bias correction ({best}); held-out output MSE {detail}"
