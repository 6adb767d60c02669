"""What the TFLite importer cleans up: conversion artefacts leave no op behind."""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator

from tinyq import ir, ref
from tinyq.exporters.tflite import write_flatbuffer
from tinyq.importers.tflite import parse_tflite
from tinyq.ops.quantize import Dequantize, Quantize

from support.cases import CASES, convert
from support.tflm import tflm_outputs

SHAPE_ARITHMETIC = {"SHAPE", "STRIDED_SLICE", "PACK"}
BUILTIN_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def flatbuffer_ops(data: bytes) -> list[str]:
    """The builtin operators of a .tflite, as the file lists them."""
    model = tflite.Model.GetRootAs(data, 0)
    subgraph = model.Subgraphs(0)
    codes = [model.OperatorCodes(subgraph.Operators(i).OpcodeIndex()) for i in range(subgraph.OperatorsLength())]
    return [BUILTIN_NAMES[max(c.BuiltinCode(), c.DeprecatedBuiltinCode())] for c in codes]


def test_a_dynamic_batch_leaves_no_shape_arithmetic(case_dir):
    """Keras 3's converter computes every Reshape's target at run time from SHAPE; tinyq folds
    the chain (static shapes) and the model's ops are the layers' own."""
    for case in (c for c in CASES if c.dynamic_batch):
        data = convert(case, case_dir).read_bytes()
        assert SHAPE_ARITHMETIC <= set(flatbuffer_ops(data)), case.name  # the converter did emit the chain
        graph = parse_tflite(data)
        assert not SHAPE_ARITHMETIC & {op.kind for op in graph.ops}, case.name


def _round_trip(out_scale: float, out_zp: int) -> ir.Graph:
    q = ir.QParams.per_tensor
    t = {
        "x": ir.Tensor("x", (1, 16), "int8", q(0.05, 3)),
        "f": ir.Tensor("f", (1, 16), "float32"),
        "y": ir.Tensor("y", (1, 16), "int8", q(out_scale, out_zp)),
    }
    ops = (ir.Op("dq", Dequantize(), ("x",), ("f",)), ir.Op("q", Quantize(), ("f",), ("y",)))
    return ir.Graph("rt", t, ops, ("x",), ("y",))


def test_dequantize_then_quantize_to_the_same_quantization_is_dropped():
    """An identity round trip becomes an exact int8 copy; a real requantization through float
    stays as it is (no int8 requantization rounds as TFLM's float path does)."""
    for scale, zp, kinds in (
        (0.05, 3, [("QUANTIZE", "int8")]),
        (0.11, -7, [("DEQUANTIZE", "int8"), ("QUANTIZE", "float32")]),
    ):
        data = write_flatbuffer(_round_trip(scale, zp))
        graph = parse_tflite(data)
        assert [(op.kind, graph[op.inputs[0]].dtype) for op in graph.ops] == kinds
        x = np.arange(-128, 128, 16, dtype=np.int8).reshape(1, 16)
        assert np.array_equal(ref.outputs(graph, [x])[0], tflm_outputs(data, [x], 1)[0].reshape(1, 16))
