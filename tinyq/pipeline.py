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
) -> Deployable:
    """The int8 graph to deploy: imported as it is, quantized from a float model, or (an ONNX
    model with AIMET's `encodings`) quantized as the encodings say. With budgets, a float model
    that cannot fit fails before calibration starts."""
    path = Path(model)
    if encodings is not None:
        return _with_encodings(path, encodings, calib, calib_samples, config)
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
    check_float_graph(fm.graph, max_ram, max_flash, config.weight_bits, config.activation_bits)
    data = load_dataset(calib, fm.graph, samples=calib_samples, what="calibration data") if calib else None
    result = quantize(fm, data, config, quiet=quiet)
    quant = QuantSummary(
        config.bits,
        config.algo,
        config.per_channel,
        result.notes,
        len(data.x) if data is not None else None,
        layer_sqnr(result.float_graph, result.graph, data.x[:SQNR_SAMPLES]) if data else None,
        list(result.int16_layers) or None,
    )
    return Deployable(result.graph, result.float_graph, quant, data)


def _with_encodings(path: Path, encodings, calib, calib_samples, config: QuantConfig) -> Deployable:
    from tinyq.importers.onnx import deployed_with_encodings

    if path.suffix.lower() != ".onnx":
        raise TinyqError(f"--encodings (AIMET's) applies to an ONNX model, not {path.name}")
    if config != QuantConfig():
        raise TinyqError("--encodings gives the quantization: --algo, --bits, --per-tensor, --a16 do not apply")
    data = None
    if calib:
        data = load_dataset(calib, load_float_model(path).graph, samples=calib_samples, what="calibration data")
    fm, graph, notes = deployed_with_encodings(path, encodings, data.x if data else None)
    sqnr = layer_sqnr(fm.graph, graph, data.x[:SQNR_SAMPLES]) if data else None
    quant = QuantSummary(bits_of(graph), ["aimet encodings"], None, notes, len(data.x) if data else None, sqnr)
    return Deployable(graph, fm.graph, quant, data)
