"""The build report: what `tinyq build` made, typed in Python, `report.json` on disk.

`BuildReport.to_json()` is the document DESIGN.md specifies (model, board,
ops, memory, quant, firmware, bench); `read_report(dir)` reads it back into
the same objects, so later commands (bench, flash) never parse strings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tinyq.errors import TinyqError

REPORT_FILE = "report.json"


def short_name(tensor_name: str) -> str:
    """TFLite joins fused layer names with ';': the first is the layer's own."""
    return tensor_name.split(";")[0]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: list[int]
    dtype: str
    scale: float | None
    zero_point: int | None
    perm: list[int] | None = None  # data in the model's own layout is transposed by it (an input's folded TRANSPOSE)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    hash: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    macs: int
    streaming: bool = False  # one frame per call, recurrent state kept between calls (tinyq_reset)


@dataclass(frozen=True)
class OpReport:
    name: str
    type: str
    macs: int
    weights_bytes: int
    in_shape: list[int]
    out_shape: list[int]
    output: str
    arena_offset: int
    kernel: str
    scratch_bytes: int
    reference_because: str | None = None  # why the op keeps its reference kernel
    out_dtype: str = "int8"  # the output tensor's dtype (int16 activations take 2 bytes each)


@dataclass(frozen=True)
class BufferReport:
    """One buffer of the arena plan: the tensors sharing it, or an op's scratch."""

    offset: int
    bytes: int
    first_op: int
    last_op: int
    tensors: tuple[str, ...] = ()
    scratch_of: str | None = None

    @property
    def label(self) -> str:
        return f"scratch of {self.scratch_of}" if self.scratch_of is not None else " = ".join(self.tensors)

    @property
    def short_label(self) -> str:
        return (
            f"scratch of {short_name(self.scratch_of)}" if self.scratch_of is not None else short_name(self.tensors[0])
        )

    def live_at(self, op_index: int) -> bool:
        return self.first_op <= op_index <= self.last_op

    def to_json(self) -> dict:
        return {
            "offset": self.offset,
            "bytes": self.bytes,
            "first_op": self.first_op,
            "last_op": self.last_op,
            "tensors": self.label,
        }

    @classmethod
    def from_json(cls, d: dict) -> BufferReport:
        label = d["tensors"]
        if label.startswith("scratch of "):
            return cls(d["offset"], d["bytes"], d["first_op"], d["last_op"], (), label[len("scratch of ") :])
        return cls(d["offset"], d["bytes"], d["first_op"], d["last_op"], tuple(label.split(" = ")))


@dataclass(frozen=True)
class Budget:
    max_ram: int | None
    max_flash: int | None


@dataclass
class MemoryReport:
    arena_bytes: int
    weights_bytes: int
    plan: list[BufferReport]
    budget: Budget
    flash_bytes: int | None = None  # after linking firmware
    ram_bytes: int | None = None

    def to_json(self) -> dict:
        return {
            "arena_bytes": self.arena_bytes,
            "weights_bytes": self.weights_bytes,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "plan": [b.to_json() for b in self.plan],
            "budget": asdict(self.budget),
        }

    @classmethod
    def from_json(cls, d: dict) -> MemoryReport:
        return cls(
            d["arena_bytes"],
            d["weights_bytes"],
            [BufferReport.from_json(b) for b in d["plan"]],
            Budget(**d["budget"]),
            d["flash_bytes"],
            d["ram_bytes"],
        )


@dataclass(frozen=True)
class LayerBits:
    """One row of the table `--bits auto` chose."""

    name: str
    kind: str
    weight_bits: int
    activation_bits: int
    weight_bytes: int  # the layer's constants as chosen
    sensitivity_db: float | None  # output SQNR lost with only this layer int4 (None: not a candidate)
    accuracy_drop: float | None = None  # with --data: accuracy points lost with only this layer int4


@dataclass(frozen=True)
class CurvePoint:
    """A configuration `--bits auto` measured: `low` layers on int4 weights."""

    low: tuple[str, ...]
    constant_bytes: int
    arena_bytes: int
    sqnr_db: float
    accuracy: float | None = None

    @property
    def label(self) -> str:
        return f"{len(self.low)} layers int4"


@dataclass(frozen=True)
class QuantSummary:
    """How the deployed graph was quantized: `bits` is the one source of the model's bit widths."""

    bits: str
    algo: list[str]
    per_channel: bool | None = None
    notes: list[str] = field(default_factory=list)
    calibration_samples: int | None = None
    sqnr_db: dict[str, float] | None = None
    int16_layers: list[str] | None = None  # mixed precision (--a16): the ops on int16 activations
    layer_bits: list[LayerBits] | None = None  # --bits auto: the table it chose
    bits_curve: list[CurvePoint] | None = None  # --bits auto: SQNR (accuracy) against constant bytes

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, d: dict) -> QuantSummary:
        d = dict(d)
        if "layer_bits" in d:
            d["layer_bits"] = [LayerBits(**row) for row in d["layer_bits"]]
        if "bits_curve" in d:
            d["bits_curve"] = [CurvePoint(**(p | {"low": tuple(p["low"])})) for p in d["bits_curve"]]
        return cls(**d)


@dataclass(frozen=True)
class FirmwareReport:
    elf: str  # relative to the build folder
    builder: str  # "pio" or "gcc"
    note: str = ""


@dataclass
class BuildReport:
    model: ModelInfo
    board: str
    ops: list[OpReport]
    memory: MemoryReport
    quant: QuantSummary
    firmware: FirmwareReport | None = None
    bench: dict | None = None  # the bench section, as `tinyq bench` measured it

    def to_json(self) -> dict:
        doc = {
            "model": asdict(self.model),
            "board": self.board,
            "ops": [
                {k: v for k, v in asdict(op).items() if k != "reference_because" or v is not None} for op in self.ops
            ],
            "memory": self.memory.to_json(),
            "quant": self.quant.to_json(),
        }
        if self.firmware is not None:
            doc["firmware"] = asdict(self.firmware)
        if self.bench is not None:
            doc["bench"] = self.bench
        return doc

    @classmethod
    def from_json(cls, d: dict) -> BuildReport:
        model = dict(d["model"])
        model["inputs"] = [TensorInfo(**t) for t in model["inputs"]]
        model["outputs"] = [TensorInfo(**t) for t in model["outputs"]]
        return cls(
            ModelInfo(**model),
            d["board"],
            [OpReport(**op) for op in d["ops"]],
            MemoryReport.from_json(d["memory"]),
            QuantSummary.from_json(d["quant"]),
            FirmwareReport(**d["firmware"]) if "firmware" in d else None,
            d.get("bench"),
        )


def read_report(build_dir: Path) -> BuildReport:
    path = build_dir / REPORT_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise TinyqError(
            f"{build_dir} is not a tinyq build folder (no {REPORT_FILE}); run `tinyq build` first"
        ) from None
    except json.JSONDecodeError as err:
        raise TinyqError(f"{path} is corrupt: {err}") from None
    try:
        return BuildReport.from_json(doc)
    except (KeyError, TypeError) as err:
        raise TinyqError(
            f"{path} is not a report this tinyq wrote ({type(err).__name__}: {err}); build again"
        ) from None
