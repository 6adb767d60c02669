"""Quantization: calibration statistics, range setting, the PTQ passes (CLE, bias correction,
AdaRound) and the int8 conversion; `quantize` (tinyq.quant.ptq) runs them."""

from tinyq.quant.config import QuantConfig, parse_config
from tinyq.quant.ptq import QuantResult, quantize

__all__ = ["QuantConfig", "QuantResult", "parse_config", "quantize"]
