"""What to quantize and how: parsed from --algo, --bits, --a16 and --per-tensor."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tinyq.errors import TinyqError

RANGE_METHODS = ("minmax", "meanmax", "percentile", "mse", "bn")
PASSES = ("cle", "bc", "adaround", "brecq", "qdrop")
ROUNDING = ("adaround", "brecq", "qdrop")  # learnt rounding: layer by layer, by blocks, by blocks with QDrop
# what --algo defaults to: weights below 8 bits (and --bits auto, whose low layers are int4) lose
# too much to rounding to nearest; per-tensor ones need CLE too, and learn best by blocks with
# QDrop; per-channel ones need neither (bench/low_bit.py)
DEFAULT_ALGO, LOW_BIT_ALGO, LOW_BIT_PER_TENSOR_ALGO = "mse", "mse,adaround", "mse,cle,bc,qdrop"


@dataclass(frozen=True)
class QuantConfig:
    range_method: str = "mse"
    passes: tuple[str, ...] = ()
    weight_bits: int = 8
    activation_bits: int = 8
    per_channel: bool = True
    percentile: float = 99.99
    int16_layers: tuple[str, ...] = ()  # --a16 LAYER,...: these layers on int16 activations
    int16_auto: bool = False  # --a16 auto: the layers chosen by their sensitivity
    weights_auto: bool = False  # --bits auto: int8 or int4 weights per layer, as the goal needs

    @property
    def activation_dtype(self) -> str:
        return "int16" if self.activation_bits == 16 else "int8"

    @property
    def algo(self) -> list[str]:
        return [self.range_method, *self.passes]

    @property
    def rounding(self) -> str | None:
        """The learnt-rounding pass, if any."""
        return next((p for p in self.passes if p in ROUNDING), None)

    @property
    def mixed(self) -> bool:
        return bool(self.int16_layers) or self.int16_auto

    @property
    def bits(self) -> str:
        if self.weights_auto:
            return "auto" + ("+a16" if self.mixed else "")
        return f"w{self.weight_bits}a{self.activation_bits}" + ("+a16" if self.mixed else "")


def parse_config(
    algo: str | None = "mse",
    bits: str = "w8a8",
    per_tensor: bool = False,
    percentile: float = 99.99,
    a16: str | None = None,
) -> QuantConfig:
    """`algo` None: the default for `bits` (DEFAULT_ALGO, or below 8 weight bits LOW_BIT_ALGO or
    LOW_BIT_PER_TENSOR_ALGO)."""
    if algo is None:
        low = bits.lower() == "auto" or re.fullmatch(r"w[2-7]a\d+", bits.lower()) is not None
        algo = (LOW_BIT_PER_TENSOR_ALGO if per_tensor else LOW_BIT_ALGO) if low else DEFAULT_ALGO
    parts = [p.strip().lower() for p in algo.split(",") if p.strip()]
    unknown = [p for p in parts if p not in RANGE_METHODS + PASSES]
    if unknown:
        raise TinyqError(
            f"unknown --algo {', '.join(unknown)}; choose a range method "
            f"({'|'.join(RANGE_METHODS)}) and any of {', '.join(PASSES)}"
        )
    methods = [p for p in parts if p in RANGE_METHODS]
    if len(methods) > 1:
        raise TinyqError(f"--algo names {len(methods)} range methods ({', '.join(methods)}); pick one")
    auto_bits = bits.lower() == "auto"
    match = re.fullmatch(r"w(\d)a(\d+)", "w8a8" if auto_bits else bits.lower())
    if not match or not 2 <= int(match.group(1)) <= 8 or int(match.group(2)) not in (8, 16):
        raise TinyqError(f"--bits {bits!r}: use wNa8 with N from 2 to 8 (e.g. w8a8, w4a8), w8a16, or auto")
    if int(match.group(2)) == 16 and int(match.group(1)) != 8:
        raise TinyqError(f"--bits {bits!r}: int16 activations take int8 weights (TFLM's 16x8); use w8a16")
    if not 50 < percentile <= 100:
        raise TinyqError(f"--percentile {percentile}: use a value in (50, 100]")
    passes = tuple(p for p in PASSES if p in parts)  # fixed order: cle, bc, then the rounding
    if len(rounding := [p for p in passes if p in ROUNDING]) > 1:
        raise TinyqError(f"--algo names {' and '.join(rounding)}: each learns the rounding; pick one")
    layers = tuple(dict.fromkeys(n.strip() for n in (a16 or "").split(",") if n.strip()))
    if a16 is not None and not layers:
        raise TinyqError("--a16: name layers (LAYER[,LAYER...]) or say auto")
    if layers and bits.lower() not in ("w8a8", "auto"):
        raise TinyqError(f"--a16 mixes int16 layers into a w8a8 model; it does not combine with --bits {bits}")
    auto = layers == ("auto",)
    return QuantConfig(
        methods[0] if methods else "mse",
        passes,
        int(match.group(1)),
        int(match.group(2)),
        not per_tensor,
        percentile,
        () if auto else layers,
        auto,
        auto_bits,
    )
