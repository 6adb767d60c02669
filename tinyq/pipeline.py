"""From whatever the user has to the int8 graph to deploy: the front half of build, quantize and eval."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyq import ir
from tinyq.analysis import bits_of
from tinyq.budget import check_float_graph
from tinyq.data import Dataset, load_dataset
from tinyq.errors import TinyqError
from tinyq.importers import is_integer_graph, load_float_model, load_model
from tinyq.quant import QuantConfig, quantize
from tinyq.quant.bitsearch import LOW_BITS, Goal
from tinyq.quant.evaluate import layer_sqnr
from tinyq.report import QuantSummary

SQNR_SAMPLES = 256


@dataclass
class Deployable:
    graph: ir.Graph  # int8
    float_graph: ir.Graph | None  # None for an imported int8 model
    quant: QuantSummary  # the report's "quant" section
    calib: Dataset | None


def is_float_source(path: str | Path) -> bool:
    path = Path(path)
    return path.suffix.lower() in (".keras", ".h5", ".hdf5") or not is_integer_graph(load_model(path))


def deployable(
    model: str | Path,
    *,
    calib: str | Path | None,
    calib_samples: int | None,
    config: QuantConfig,
    quiet: bool = False,
    max_ram: int | None = None,
    max_flash: int | None = None,
    encodings: str | Path | None = None,
    target_accuracy: float | None = None,
    max_drop: float | None = None,
    data: str | Path | None = None,
    report_sqnr: bool = True,
) -> Deployable:
    """The int8 graph to deploy: imported as it is, quantized from a float model, or (an ONNX
    model with AIMET's `encodings`) quantized as the encodings say. With budgets, a float model
    that cannot fit fails before calibration starts. `--bits auto` fits its constant data in
    `max_flash` and/or meets `target_accuracy` (`max_drop` points below float) on `data`.
    `report_sqnr`: measure each layer's SQNR on the calibration samples for the report (`eval`
    measures its own on its data)."""
    if not config.weights_auto and (target_accuracy is not None or max_drop is not None):
        raise TinyqError("--target-accuracy and --max-drop choose the bits per layer: they need --bits auto")
    if config.weights_auto and max_flash is None and target_accuracy is None and max_drop is None:
        raise TinyqError("--bits auto needs a goal: --max-flash, --target-accuracy or --max-drop (with --data)")
    path = Path(model)
    if encodings is not None:
        return _with_encodings(path, encodings, calib, calib_samples, config, report_sqnr)
    if path.suffix.lower() in (".tflite", ".onnx"):
        graph = load_model(path)
        if is_integer_graph(graph):
            if calib is not None:
                raise TinyqError(f"{path} is already quantized: --calib does not apply (it is deployed as it is)")
            if config != QuantConfig():
                raise TinyqError(
                    f"{path} is already int8: quantization options (--algo, --bits, --per-tensor, "
                    "--percentile) do not apply (it is deployed as it is)"
                )
            return Deployable(graph, None, QuantSummary(bits_of(graph), ["imported"]), None)
    fm = load_float_model(path)
    low_bits = LOW_BITS if config.weights_auto else config.weight_bits
    check_float_graph(fm.graph, max_ram, max_flash, low_bits, config.activation_bits)
    calibration = load_dataset(calib, fm.graph, samples=calib_samples, what="calibration data") if calib else None
    goal = None
    if config.weights_auto:
        labelled = load_dataset(data, fm.graph, what="--data") if data else None
        goal = Goal(max_flash, max_ram, target_accuracy, max_drop, labelled)
    result = quantize(fm, calibration, config, quiet=quiet, goal=goal)
    choice = result.bits_choice
    quant = QuantSummary(
        bits_of(result.graph) if config.weights_auto else config.bits,
        config.algo,
        config.per_channel,
        result.notes,
        len(calibration.x) if calibration is not None else None,
        layer_sqnr(result.float_graph, result.graph, calibration.x[:SQNR_SAMPLES])
        if calibration and report_sqnr
        else None,
        list(result.int16_layers) or None,
        list(choice.table) if choice else None,
        list(choice.curve) if choice else None,
    )
    return Deployable(result.graph, result.float_graph, quant, calibration)


def _with_encodings(path: Path, encodings, calib, calib_samples, config: QuantConfig, report_sqnr: bool) -> Deployable:
    from tinyq.importers.onnx import deployed_with_encodings

    if path.suffix.lower() != ".onnx":
        raise TinyqError(f"--encodings (AIMET's) applies to an ONNX model, not {path.name}")
    if config != QuantConfig():
        raise TinyqError("--encodings gives the quantization: --algo, --bits, --per-tensor, --a16 do not apply")
    data = None
    if calib:
        data = load_dataset(calib, load_float_model(path).graph, samples=calib_samples, what="calibration data")
    fm, graph, notes = deployed_with_encodings(path, encodings, data.x if data else None)
    sqnr = layer_sqnr(fm.graph, graph, data.x[:SQNR_SAMPLES]) if data and report_sqnr else None
    quant = QuantSummary(bits_of(graph), ["aimet encodings"], None, notes, len(data.x) if data else None, sqnr)
    return Deployable(graph, fm.graph, quant, data)
