"""The op registry: every op has the facets its signatures claim, and every dtype signature no
kernel implements is refused at import (one line, exit 2), before the reference or C run."""

from __future__ import annotations

import numpy as np
import pytest
from tflite.BuiltinOperator import BuiltinOperator

from tinyq import ir, ops, ref
from tinyq.errors import TinyqError
from tinyq.exporters.tflite import write_flatbuffer
from tinyq.importers.tflite import parse_tflite
from tinyq.ops import OpDef
from tinyq.ops.quantize import Quantize

from support.cases import Case, convert
from support.cli import assert_clean_error, tinyq
from support.inputs import random_inputs
from support.tflm import tflm_outputs

INTEGER_FACETS = ("params", "reference", "kernel", "lower")
FLOAT_FACETS = ("forward",)
EVERY_OP_FACETS = ("check", "read_tflite", "write_tflite")


def claimed_facets(definition: OpDef) -> list[str]:
    facets = list(EVERY_OP_FACETS)
    if any(not s.is_float for s in definition.signatures):
        facets += INTEGER_FACETS
    if any(s.is_float for s in definition.signatures):
        facets += FLOAT_FACETS
    return facets


@pytest.mark.parametrize("definition", ops.all_ops(), ids=lambda d: d.name)
def test_every_op_implements_the_facets_it_claims(definition):
    assert definition.signatures, f"{definition.name} implements no dtype signature"
    missing = [f for f in claimed_facets(definition) if getattr(type(definition), f) is getattr(OpDef, f)]
    assert not missing, f"{definition.name} claims {missing} but does not implement them"
    for name in (definition.name, *definition.tflite_aliases):
        assert hasattr(BuiltinOperator, name), f"{name} is not a TFLite builtin operator"


def _pad_input(k, x):
    return k.layers.ZeroPadding2D(((1, 0), (0, 2)))(x)


# Models the TFLite converter makes in 16x8 mode (int16 activations): the first op of each is the
# one refused, with its dtypes in the message.
REFUSED_16X8 = [
    (
        Case("int16_add", (4, 4, 3), lambda k, xs: k.layers.Add()(xs), ("ADD",), inputs=2, int16=True),
        "op 0 (ADD 'add_0'): dtypes (int16, int16) -> int16 are not implemented; ADD supports (int8, int8) -> int8",
    ),
    (
        Case("int16_pad", (4, 4, 3), _pad_input, ("PAD",), int16=True),
        "op 0 (PAD 'pad_0'): dtypes (int16) -> int16 are not implemented; PAD supports (int8) -> int8",
    ),
    (
        Case("int16_conv", (6, 6, 3), lambda k, x: k.layers.Conv2D(4, 3)(x), ("CONV_2D",), int16=True),
        "op 0 (CONV_2D 'conv_2d_0'): dtypes (int16, int8, int64) -> int16 are not implemented; CONV_2D supports "
        "(int8, int8, int32) -> int8, (int8, int4, int32) -> int8",
    ),
    (
        Case("int16_fully_connected", (12,), lambda k, x: k.layers.Dense(5)(x), ("FULLY_CONNECTED",), int16=True),
        "(FULLY_CONNECTED 'fully_connected_0'): dtypes (int16, int8, int32) -> int16 are not implemented",
    ),
    (
        Case(
            "int16_float_io",
            (6, 6, 3),
            lambda k, x: k.layers.Conv2D(4, 3)(x),
            ("QUANTIZE", "CONV_2D"),
            float_io=True,
            int16=True,
        ),
        "op 0 (QUANTIZE 'quantize_0'): dtypes (float32) -> int16 are not implemented; QUANTIZE supports "
        "(float32) -> int8, (int8) -> int8",
    ),
]


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("refused_cases")


@pytest.mark.parametrize("case, message", REFUSED_16X8, ids=[c.name for c, _ in REFUSED_16X8])
def test_16x8_models_are_refused_at_import_naming_op_and_dtypes(case, message, case_dir):
    path = convert(case, case_dir)
    data = path.read_bytes()
    with pytest.raises(TinyqError, match="unsupported model") as err:
        parse_tflite(data)
    assert message in str(err.value)
    assert_clean_error(tinyq("inspect", path), message)


def test_a_16x8_model_never_reaches_codegen(case_dir):
    """The bug the registry closed: an int16 ADD built 'successfully' with --no-compile."""
    path = convert(REFUSED_16X8[0][0], case_dir)
    assert_clean_error(
        tinyq("build", path, "--board", "host", "--no-compile", "-o", case_dir / "out"),
        "ADD supports (int8, int8) -> int8",
    )
    assert not (case_dir / "out").exists()


def _one_op_model(in_dtype: str, out_dtype: str) -> bytes:
    """A QUANTIZE with the given dtypes, written as it is (verify would refuse to export it)."""
    q = ir.QParams.per_tensor
    x = ir.Tensor("x", (1, 8), in_dtype, None if in_dtype == "float32" else q(0.1, 0))
    y = ir.Tensor("y", (1, 8), out_dtype, q(0.01, 0))
    return write_flatbuffer(ir.Graph("g", {"x": x, "y": y}, (ir.Op("q", Quantize(), ("x",), ("y",)),), ("x",), ("y",)))


@pytest.mark.parametrize(
    "in_dtype, out_dtype", [("int8", "int32"), ("int16", "int32"), ("int16", "int8"), ("int8", "int16")]
)
def test_quantize_signatures_outside_int8_are_refused(in_dtype, out_dtype, tmp_path):
    path = tmp_path / "q.tflite"
    path.write_bytes(_one_op_model(in_dtype, out_dtype))
    assert_clean_error(
        tinyq("inspect", path),
        f"op 0 (QUANTIZE 'quantize_0'): dtypes ({in_dtype}) -> {out_dtype} "
        "are not implemented; QUANTIZE supports (float32) -> int8",
    )


def test_the_int8_twin_of_a_refused_model_runs_bit_exact(case_dir):
    """The refusals are about dtypes: the same two-input ADD converted in int8 imports and
    matches TFLM."""
    case = Case("int8_add", (4, 4, 3), lambda k, xs: k.layers.Add()(xs), ("ADD",), inputs=2)
    data = convert(case, case_dir).read_bytes()
    graph = parse_tflite(data)
    assert [op.kind for op in graph.ops] == ["ADD"]
    for inputs in random_inputs(graph, 5, seed=1):
        assert np.array_equal(ref.outputs(graph, inputs)[0], tflm_outputs(data, inputs, 1)[0].reshape(1, 4, 4, 3))
