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
from tinyq.ops.elu import Elu
from tinyq.ops.hard_swish import HardSwish
from tinyq.ops.l2_normalization import L2Normalization
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
        # tinyq's own operators are CUSTOM ones and must not shadow a builtin
        assert hasattr(BuiltinOperator, name) != definition.custom, f"{name}: builtin {hasattr(BuiltinOperator, name)}"


def _one_op_model(attrs, in_dtype: str, out_dtype: str) -> bytes:
    """One op with the given dtypes, written as it is (verify would refuse to export it)."""
    q = ir.QParams.per_tensor
    x = ir.Tensor("x", (1, 8), in_dtype, None if in_dtype == "float32" else q(0.1, 0))
    y = ir.Tensor("y", (1, 8), out_dtype, q(0.01, 0))
    op = ir.Op(f"{ops.definition(attrs).name.lower()}_0", attrs, ("x",), ("y",))
    return write_flatbuffer(ir.Graph("g", {"x": x, "y": y}, (op,), ("x",), ("y",)))


# Signatures no tinyq kernel implements (ELU, L2_NORMALIZATION, HARD_SWISH are int8-only in TFLM too): the
# op is refused at import, its dtypes and what it supports in the message.
REFUSED = [
    (Elu(), "int16", "int16", "op 0 (ELU 'elu_0'): dtypes (int16) -> int16 are not implemented; ELU supports (int8)"),
    (
        L2Normalization(),
        "int16",
        "int16",
        "op 0 (L2_NORMALIZATION 'l2_normalization_0'): dtypes (int16) -> int16 are not implemented",
    ),
    (  # neither TFLM nor the converter runs HARD_SWISH on int16
        HardSwish(),
        "int16",
        "int16",
        "op 0 (HARD_SWISH 'hard_swish_0'): dtypes (int16) -> int16 are not implemented",
    ),
    (Quantize(), "int8", "int32", "op 0 (QUANTIZE 'quantize_0'): dtypes (int8) -> int32 are not implemented"),
    (Quantize(), "int32", "int8", "op 0 (QUANTIZE 'quantize_0'): dtypes (int32) -> int8 are not implemented"),
]


@pytest.mark.parametrize("attrs, in_dtype, out_dtype, message", REFUSED, ids=[r[3][6:30] for r in REFUSED])
def test_unimplemented_signatures_are_refused_at_import_naming_op_and_dtypes(
    attrs, in_dtype, out_dtype, message, tmp_path
):
    path = tmp_path / "m.tflite"
    path.write_bytes(_one_op_model(attrs, in_dtype, out_dtype))
    with pytest.raises(TinyqError, match="unsupported model") as err:
        parse_tflite(path.read_bytes())
    assert message in str(err.value)
    assert_clean_error(tinyq("inspect", path), message)


def test_a_refused_model_never_reaches_codegen(tmp_path):
    """The bug the registry closed: an int16 ADD built 'successfully' with --no-compile."""
    path = tmp_path / "m.tflite"
    path.write_bytes(_one_op_model(Elu(), "int16", "int16"))
    assert_clean_error(
        tinyq("build", path, "--board", "host", "--no-compile", "-o", tmp_path / "out"), "ELU supports (int8)"
    )
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("refused_cases")


def test_the_int8_twin_of_a_refused_model_runs_bit_exact(case_dir):
    """The refusals are about dtypes: the same two-input ADD converted in int8 imports and
    matches TFLM."""
    case = Case("int8_add", (4, 4, 3), lambda k, xs: k.layers.Add()(xs), ("ADD",), inputs=2)
    data = convert(case, case_dir).read_bytes()
    graph = parse_tflite(data)
    assert [op.kind for op in graph.ops] == ["ADD"]
    for inputs in random_inputs(graph, 5, seed=1):
        assert np.array_equal(ref.outputs(graph, inputs)[0], tflm_outputs(data, inputs, 1)[0].reshape(1, 4, 4, 3))
