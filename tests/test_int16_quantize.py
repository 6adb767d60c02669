"""QUANTIZE between int8 and int16 (int8 -> int16, int16 -> int8, int16 -> int16), between int16
and int32 (int16 -> int32, int32 -> int16) and float32 <-> int16 at the boundary, on hand-built
one-op graphs: the converter's 16x8 mode never makes an int8 <-> int16 or int16 <-> int32
QUANTIZE. The numpy reference, the host-compiled C and TFLM (the graph written as a .tflite)
must agree with each other and with TFLM's formula computed here on its own: QuantizeMultiplier
of the double ratio s_in / s_out, the int32 MultiplyByQuantizedMultiplier
(SaturatingRoundingDoublingHighMul, RoundingDivideByPOT), then the output type's range (int32
arithmetic wrapping, as C's does on every target tinyq builds for); float32 -> int16 as
roundf(x / scale) + zero point, clamped."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.exporters.tflite import write_flatbuffer
from tinyq.ops.quantize import Dequantize, Quantize

from support.graphs import side_by_side
from support.hostlib import HostModel
from support.tflm import tflm_outputs

RANGES = {"int8": (-128, 127), "int16": (-32768, 32767), "int32": (-(1 << 31), (1 << 31) - 1)}
SIZE = 512


def _quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: a Q31 mantissa and a power-of-two exponent."""
    mantissa, shift = math.frexp(real)
    q = round(mantissa * (1 << 31))  # TfRound: halves away from zero (mantissa > 0)
    if q == 1 << 31:
        q, shift = q // 2, shift + 1
    return q, shift


def _multiply_by_quantized_multiplier(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """TFLM's int32 MultiplyByQuantizedMultiplier, element by element in Python integers."""
    left, right = max(shift, 0), max(-shift, 0)
    out = []
    for v in x.tolist():
        a = ((v << left) + (1 << 31)) % (1 << 32) - (1 << 31)  # the int32 left shift wraps
        ab = a * multiplier
        t = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
        high = t // (1 << 31) if t >= 0 else -((-t) // (1 << 31))  # C division truncates toward zero
        if a == multiplier == -(1 << 31):
            high = (1 << 31) - 1
        mask = (1 << right) - 1
        threshold = (mask >> 1) + (1 if high < 0 else 0)
        out.append((high >> right) + (1 if (high & mask) > threshold else 0))
    return np.array(out, np.int64)


def _requantize_formula(x, s_in, zp_in, s_out, zp_out, out_dtype) -> np.ndarray:
    ratio = float(np.float32(s_in)) / float(np.float32(s_out))  # TFLM: double of the float32 scales
    multiplier, shift = _quantize_multiplier(ratio)
    shifted = _wrap32(x.astype(np.int64).reshape(-1) - zp_in)  # int32 input less its zero point
    y = _multiply_by_quantized_multiplier(shifted, multiplier, shift) + zp_out
    if out_dtype == "int32":
        return _wrap32(y).astype(np.int32).reshape(x.shape)  # int32 output plus its zero point
    return np.clip(y, *RANGES[out_dtype]).astype(out_dtype).reshape(x.shape)


def _wrap32(x: np.ndarray) -> np.ndarray:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def _graph(attrs, x: ir.Tensor, y: ir.Tensor) -> ir.Graph:
    op = ir.Op("quantize_0" if isinstance(attrs, Quantize) else "dequantize_0", attrs, ("x",), ("y",))
    return ir.verify(ir.Graph("g", {"x": x, "y": y}, (op,), ("x",), ("y",)))


def _inputs(dtype: str) -> np.ndarray:
    """Every int8 code, or the int16 extremes, codes around zero and a spread of the rest."""
    lo, hi = RANGES[dtype]
    if dtype == "int8":
        values = np.arange(lo, hi + 1)
    elif dtype == "int32":  # the extremes, around zero, the int16 range and the whole int32 range
        rng = np.random.default_rng(32)
        values = np.concatenate(
            [
                [lo, lo + 1, hi - 1, hi],
                np.arange(-60, 60),
                rng.integers(-40000, 40000, 200),
                rng.integers(lo, hi + 1, 200),
            ]
        )
    else:
        rng = np.random.default_rng(16)
        values = np.concatenate([[lo, lo + 1, hi - 1, hi], np.arange(-126, 126), rng.integers(lo, hi + 1, 4096)])
    values = np.resize(values, SIZE) if values.size < SIZE else values[:SIZE]
    return values.astype(dtype).reshape(1, SIZE)


# (input dtype, scale, zero point) -> (output dtype, scale, zero point): multipliers above and
# below one, outputs that saturate, and int8 zero points on either side
REQUANTIZE = [
    ("int8", 0.05, -7, "int16", 0.0007, 0),  # ratio ~71: no saturation
    ("int8", 0.05, 20, "int16", 0.0001, 0),  # ratio 500: saturates at the int16 range
    ("int8", 0.02, 0, "int16", 0.3, 0),  # ratio below one: many codes round to the same value
    ("int16", 0.0003, 0, "int8", 0.04, 5),  # ratio 0.0075: the large codes saturate
    ("int16", 0.00002, 0, "int8", 0.01, -128),  # zero point -128: negatives clamp to -128
    ("int16", 0.0003, 0, "int16", 0.00017, 0),  # ratio ~1.76: saturates
    ("int16", 0.0001, 0, "int16", 0.00037, 0),  # ratio ~0.27
    ("int16", 0.0003, 0, "int32", 0.0003 / 16000, 0),  # ratio 16000: a left shift by 14, no wrap
    ("int16", 0.001, 0, "int32", 0.0001, 5),  # ratio 10, an int32 zero point
    ("int16", 0.0001, 0, "int32", 0.003, 0),  # ratio below one
    ("int32", 1e-6, 0, "int16", 0.0001, 0),  # ratio 0.01: the large codes saturate
    ("int32", 2e-5, -3, "int16", 0.00013, 0),  # ratio ~0.15, an int32 zero point (wraps at INT32_MIN)
    ("int32", 1e-9, 0, "int16", 3e-5, 0),  # ratio ~3.3e-5: the whole int32 range to about +-71600
    ("int32", 0.001, 0, "int16", 0.0007, 0),  # ratio ~1.43: a left shift, which wraps large codes
]


@pytest.mark.parametrize(
    "in_dtype, s_in, zp_in, out_dtype, s_out, zp_out",
    REQUANTIZE,
    ids=[f"{r[0]}_to_{r[3]}_{r[1]}_{r[4]}" for r in REQUANTIZE],
)
def test_requantize_matches_tflm_and_its_formula(in_dtype, s_in, zp_in, out_dtype, s_out, zp_out, tmp_path):
    q = ir.QParams.per_tensor
    x = ir.Tensor("x", (1, SIZE), in_dtype, q(s_in, zp_in))
    y = ir.Tensor("y", (1, SIZE), out_dtype, q(s_out, zp_out))
    graph = _graph(Quantize(), x, y)
    inputs = [_inputs(in_dtype)]
    expected = _requantize_formula(inputs[0], s_in, zp_in, s_out, zp_out, out_dtype)
    reference = ref.outputs(graph, inputs)[0]
    assert reference.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(reference, expected)
    tflm = tflm_outputs(write_flatbuffer(graph), inputs, 1)[0]
    np.testing.assert_array_equal(tflm.reshape(expected.shape), expected)
    c = HostModel(graph, tmp_path).run(inputs)[0]
    np.testing.assert_array_equal(c, expected)
    if out_dtype == "int16" and s_in / s_out > 100:
        assert (expected == 32767).any() and (expected == -32768).any(), "the row is meant to saturate"


def _float_inputs(scale: float) -> np.ndarray:
    """Values around and far beyond the int16 range of `scale`, near-ties, zero and tiny ones. (Not
    beyond int32: TFLM's float -> int32 conversion is undefined there, INT32_MIN on the host and
    saturating on a Cortex-M; tinyq saturates.)"""
    rng = np.random.default_rng(7)
    limit = 32768 * scale
    values = np.concatenate(
        [
            rng.uniform(-1.5 * limit, 1.5 * limit, SIZE - 40),
            (np.arange(-10, 10) + 0.5) * scale,
            [0.0, -0.0, 1e-30, -1e-30, limit, -limit, 2 * limit, -2 * limit, 1000 * limit, -1000 * limit],
            np.arange(-5, 5) * scale,
        ]
    )
    return values.astype(np.float32).reshape(1, SIZE)


@pytest.mark.parametrize("scale", [1 / 32768, 0.0013])
def test_float_to_int16_matches_tflm_and_its_formula(scale, tmp_path):
    x = ir.Tensor("x", (1, SIZE), "float32")
    y = ir.Tensor("y", (1, SIZE), "int16", ir.QParams.per_tensor(scale, 0))
    graph = _graph(Quantize(), x, y)
    inputs = [_float_inputs(scale)]
    quotient = (inputs[0] / np.float32(scale)).astype(np.float64)  # float32 division, as TFLM's
    rounded = np.sign(quotient) * np.floor(np.abs(quotient) + 0.5)  # std::round: halves away from zero
    expected = np.clip(rounded, -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(ref.outputs(graph, inputs)[0], expected)
    np.testing.assert_array_equal(tflm_outputs(write_flatbuffer(graph), inputs, 1)[0].reshape(1, SIZE), expected)
    np.testing.assert_array_equal(HostModel(graph, tmp_path).run(inputs)[0], expected)
    assert (expected == 32767).any() and (expected == -32768).any()


def test_int16_to_float_matches_tflm_and_its_formula(tmp_path):
    scale = 0.00123
    x = ir.Tensor("x", (1, SIZE), "int16", ir.QParams.per_tensor(scale, 0))
    y = ir.Tensor("y", (1, SIZE), "float32")
    graph = _graph(Dequantize(), x, y)
    inputs = [_inputs("int16")]
    expected = (float(np.float32(scale)) * inputs[0].astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(ref.outputs(graph, inputs)[0], expected)
    np.testing.assert_array_equal(tflm_outputs(write_flatbuffer(graph), inputs, 1)[0].reshape(1, SIZE), expected)
    np.testing.assert_array_equal(HostModel(graph, tmp_path).run(inputs)[0], expected)


def test_int8_int16_and_int32_variants_of_one_template_build_into_one_model(tmp_path):
    """requantize_s8, requantize_s8_s16, requantize_s16_s16, requantize_s16_s8, requantize_s16_s32
    and requantize_s32_s16 share their params type: one model with all six compiles (-Werror) and
    matches the reference."""
    q = ir.QParams.per_tensor
    graphs = {}
    for i, (in_dtype, s_in, zp_in, out_dtype, s_out, zp_out) in enumerate(
        [
            ("int8", 0.05, -7, "int8", 0.03, 4),
            REQUANTIZE[0],
            REQUANTIZE[5],
            REQUANTIZE[3],
            REQUANTIZE[8],
            REQUANTIZE[10],
        ]
    ):
        x = ir.Tensor("x", (1, SIZE), in_dtype, q(s_in, zp_in))
        y = ir.Tensor("y", (1, SIZE), out_dtype, q(s_out, zp_out))
        graphs[f"g{i}"] = _graph(Quantize(), x, y)
    graph = side_by_side(graphs, "mixed")
    inputs = [_inputs(graph[n].dtype) for n in graph.inputs]
    host = HostModel(graph, tmp_path)
    kernels = {name.removeprefix("include/tq_").removesuffix(".h") for name in host.generated.files}
    expected_kernels = ("s8", "s8_s16", "s16_s16", "s16_s8", "s16_s32", "s32_s16")
    assert {f"requantize_{k}" for k in expected_kernels} <= kernels
    for c, expected in zip(host.run(inputs), ref.outputs(graph, inputs)):
        np.testing.assert_array_equal(c, expected)
