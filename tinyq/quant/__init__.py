"""Post-training quantization: a float model + calibration data -> an int8 IR graph.

    result = quantize(float_model, calibration, QuantConfig(range_method="mse"))
    result.graph        # int8 IR, ready for codegen, export and the integer reference
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tinyq import ir
from tinyq.data import Dataset
from tinyq.errors import TinyqError
from tinyq.importers.keras import FloatModel
from tinyq.quant.config import QuantConfig, parse_config
from tinyq.quant.convert import quantize_weights, to_int8
from tinyq.quant.observe import activation_tensors, observe
from tinyq.quant.ranges import bn_range, mse_range, percentile_range

AFFINE = (ir.Conv2D, ir.DepthwiseConv2D, ir.FullyConnected)


@dataclass
class QuantResult:
    graph: ir.Graph                       # the int8 graph
    float_graph: ir.Graph                 # the float graph it was made from (after any passes)
    config: QuantConfig
    ranges: dict[str, tuple[float, float]]
    notes: list[str] = field(default_factory=list)


def _clip_to_activation(op: ir.Op | None, lo: float, hi: float) -> tuple[float, float]:
    act = getattr(op.attrs, "activation", ir.Activation.NONE) if op else ir.Activation.NONE
    floor, ceiling = act.float_range()
    return max(lo, floor), min(hi, ceiling)


def _propagated_range(op: ir.Op, ranges) -> tuple[float, float] | None:
    """Data-free range of an op's output from its inputs' ranges (for BN-based setting)."""
    ins = [ranges.get(n) for n in op.inputs]
    if any(r is None for r in ins[:1]):
        return None
    if isinstance(op.attrs, (ir.AveragePool2D, ir.MaxPool2D, ir.Reshape, ir.Pad)):
        return ins[0]
    if isinstance(op.attrs, (ir.Softmax, ir.Logistic)):
        return 0.0, 1.0
    if isinstance(op.attrs, ir.Add) and all(r is not None for r in ins):
        return ins[0][0] + ins[1][0], ins[0][1] + ins[1][1]
    if isinstance(op.attrs, ir.Concatenation) and all(r is not None for r in ins):
        return min(r[0] for r in ins), max(r[1] for r in ins)
    return None


def activation_ranges(fm: FloatModel, graph: ir.Graph, calib: Dataset | None, config: QuantConfig,
                      quiet: bool = False) -> dict[str, tuple[float, float]]:
    method = config.range_method
    stats = observe(graph, calib.x, histograms=method in ("mse", "percentile"), quiet=quiet) if calib else {}
    producers = graph.producers()
    ranges: dict[str, tuple[float, float]] = {}
    missing = []
    for name in activation_tensors(graph):
        op = producers.get(name)
        if method == "bn" and name in fm.bn_stats:
            r = _clip_to_activation(op, *bn_range(*fm.bn_stats[name]))
        elif method == "bn" and op is not None and _propagated_range(op, ranges) is not None:
            r = _clip_to_activation(op, *_propagated_range(op, ranges))
        elif name in stats:
            s = stats[name]
            r = {"mse": lambda: mse_range(s), "percentile": lambda: percentile_range(s, config.percentile)}.get(
                method, lambda: (s.lo, s.hi))()
        else:
            missing.append(name)
            continue
        ranges[name] = r
    if missing:
        raise TinyqError(f"no range for {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}: "
                         "give calibration data (--calib) — BatchNorm statistics cover only the layers they follow")
    return ranges


def quantize(fm: FloatModel, calib: Dataset | None, config: QuantConfig, *, quiet: bool = False) -> QuantResult:
    if calib is None and config.range_method != "bn":
        raise TinyqError(f"range method {config.range_method} needs calibration data (--calib DATA); "
                         "only 'bn' is data-free")
    graph = fm.graph
    ranges = activation_ranges(fm, graph, calib, config, quiet)
    weight_method = "mse" if config.range_method == "mse" else "minmax"
    weights = {op.name: quantize_weights(op, graph, config, weight_method)
               for op in graph.ops if isinstance(op.attrs, AFFINE)}
    return QuantResult(to_int8(graph, ranges, config, weights), graph, config, ranges)


__all__ = ["QuantConfig", "QuantResult", "parse_config", "quantize"]
