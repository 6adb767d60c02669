"""The IR is immutable and verify() rejects malformed graphs with a reason."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tinyq import ir
from tinyq.ops.conv import Conv2D
from tinyq.ops.pool import MaxPool2D


def q(scale=0.1, zp=0):
    return ir.QParams.per_tensor(scale, zp)


def conv_graph(out_shape=(1, 4, 4, 2), w_axis=0, bias_shape=(2,), x_shape=(1, 4, 4, 3)):
    tensors = [
        ir.Tensor("x", x_shape, "int8", q()),
        ir.Tensor(
            "w", (2, 3, 3, 3), "int8", ir.QParams.per_channel([0.01, 0.02], w_axis), np.ones((2, 3, 3, 3), np.int8)
        ),
        ir.Tensor("b", bias_shape, "int32", q(0.001), np.zeros(bias_shape, np.int32)),
        ir.Tensor("y", out_shape, "int8", q(0.2, -3)),
    ]
    op = ir.Op("conv", Conv2D(padding=ir.Padding2D(1, 1, 1, 1)), ("x", "w", "b"), ("y",))
    return ir.Graph("g", {t.name: t for t in tensors}, (op,), ("x",), ("y",))


def test_valid_graph_verifies():
    g = conv_graph()
    assert ir.verify(g) is g


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"out_shape": (1, 3, 3, 2)}, "output shape"),
        ({"w_axis": 3}, "per-channel quantization must be on axis 0"),
        ({"bias_shape": (3,)}, "bias"),
        ({"x_shape": (1, 4, 4, 5)}, "input channels"),
    ],
)
def test_verify_rejects_inconsistent_ops(kwargs, message):
    with pytest.raises(ir.IRError, match=message):
        ir.verify(conv_graph(**kwargs))


def test_verify_rejects_use_before_definition_and_double_writes():
    g = conv_graph()
    relu = ir.Op("pool", MaxPool2D((1, 1)), ("y",), ("z",))
    g2 = g.with_tensors(ir.Tensor("z", (1, 4, 4, 2), "int8", q(0.2, -3)))
    with pytest.raises(ir.IRError, match="used before it is produced"):
        ir.verify(g2.replace(ops=(relu,) + g2.ops))
    twice = ir.Op("conv2", g.ops[0].attrs, ("x", "w", "b"), ("y",))
    with pytest.raises(ir.IRError, match="written twice"):
        ir.verify(g.replace(ops=g.ops + (twice,)))
    with pytest.raises(ir.IRError, match="never produced"):
        ir.verify(g2.replace(outputs=("z",)))


def test_verify_enforces_shared_quantization_for_data_movement():
    g = conv_graph()
    pool = ir.Op("pool", MaxPool2D((2, 2), (2, 2)), ("y",), ("z",))
    g2 = g.with_tensors(ir.Tensor("z", (1, 2, 2, 2), "int8", q(0.5, 0))).replace(ops=g.ops + (pool,), outputs=("z",))
    with pytest.raises(ir.IRError, match="share quantization"):
        ir.verify(g2)


@pytest.mark.parametrize(
    "perms, message",
    [({"y": (0, 1, 2, 3)}, "not a graph input"), ({"x": (1, 0, 2, 3)}, "batch first"), ({"x": (0, 1)}, "batch")],
)
def test_verify_rejects_bad_input_perms(perms, message):
    with pytest.raises(ir.IRError, match=message):
        ir.verify(conv_graph().replace(input_perms=perms))
    ir.verify(conv_graph().replace(input_perms={"x": (0, 2, 3, 1)}))


def test_ir_objects_are_immutable():
    g = conv_graph()
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.ops[0].attrs.stride = (2, 2)
    with pytest.raises(TypeError):
        g.tensors["x"] = g["y"]
    with pytest.raises(ValueError):
        g["w"].data[0, 0, 0, 0] = 5
    source = np.zeros(2, np.int32)
    t = ir.Tensor("c", (2,), "int32", None, source)
    source[0] = 7
    assert t.data[0] == 0


def test_quant_params_validate():
    with pytest.raises(ir.IRError):
        ir.QParams((0.1, 0.2), (0, 0), None)
    assert ir.QParams.per_channel([0.5, 0.25], 0).per_channel_quantized
    with pytest.raises(ir.IRError):
        _ = ir.QParams.per_channel([0.5, 0.25], 0).s
