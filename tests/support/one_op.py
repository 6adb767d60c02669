"""One-op graphs built directly in the IR from a row of a table (shape, kernel, stride,
padding, activation, weight and activation dtypes), with random int8 data: the kernel tables'
cases (tests/test_fast_kernels.py, tests/test_native.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import ir
from tinyq.ops.add import Add
from tinyq.ops.conv import Conv2D
from tinyq.ops.depthwise_conv import DepthwiseConv2D
from tinyq.ops.fully_connected import FullyConnected
from tinyq.ops.pool import AveragePool2D

A = ir.Activation


@dataclass(frozen=True)
class Row:
    name: str
    kernel: str | None  # the fast kernel the op must get (None: the reference kernel)
    op: str  # conv | dw | fc | add | avgpool
    shape: tuple  # input shape
    out: int = 0  # output channels / units
    kernel_hw: tuple = (1, 1)
    stride: tuple = (1, 1)
    pad: tuple = (0, 0, 0, 0)  # top, bottom, left, right
    dilation: tuple = (1, 1)
    act: ir.Activation = A.NONE
    per_channel: bool = True
    out_scale: float = 0.08
    int4: bool = False  # int4 weights (packed eight per word by the fast kernels)
    int16: bool = False  # 16x8: int16 activations (zero point 0), int8 weights, int64 bias


def _out_hw(row: Row) -> tuple[int, int]:
    (h, w), (kh, kw), (sh, sw), (dh, dw) = row.shape[1:3], row.kernel_hw, row.stride, row.dilation
    top, bottom, left, right = row.pad
    return (h + top + bottom - dh * (kh - 1) - 1) // sh + 1, (w + left + right - dw * (kw - 1) - 1) // sw + 1


def build_graph(row: Row, rng: np.random.Generator) -> ir.Graph:
    """A one-op graph: the row's op over a random int8 input, weights and biases."""
    q = ir.QParams.per_tensor
    act = "int16" if row.int16 else "int8"
    x = ir.Tensor("x", row.shape, act, q(0.05 / 256, 0) if row.int16 else q(0.05, int(rng.integers(-20, 20))))
    tensors, inputs = [x], ["x"]
    if row.op in ("conv", "dw", "fc"):
        depth = row.shape[-1]
        if row.op == "conv":
            w_shape, axis, attrs = (row.out, *row.kernel_hw, depth), 0, Conv2D
        elif row.op == "dw":
            w_shape, axis, attrs = (1, *row.kernel_hw, row.out), 3, DepthwiseConv2D
        else:
            w_shape, axis, attrs = (row.out, depth), 0, FullyConnected
        scales = rng.uniform(0.004, 0.02, row.out) if row.per_channel else np.full(row.out, 0.01)
        limit = 8 if row.int4 else 128
        w = ir.Tensor(
            "w",
            w_shape,
            "int4" if row.int4 else "int8",
            ir.QParams.per_channel(scales.tolist(), axis),
            rng.integers(1 - limit, limit, w_shape).astype(np.int8),
        )
        if row.int16:
            b = ir.Tensor("b", (row.out,), "int64", None, rng.integers(-(2**22), 2**22, row.out))
        else:
            b = ir.Tensor("b", (row.out,), "int32", None, rng.integers(-3000, 3000, row.out).astype(np.int32))
        tensors += [w, b]
        inputs += ["w", "b"]
        if row.op == "fc":
            out_shape, params = (row.shape[0], row.out), {"activation": row.act}
        else:
            out_shape = (row.shape[0], *_out_hw(row), row.out)
            params = {
                "stride": row.stride,
                "dilation": row.dilation,
                "padding": ir.Padding2D(*row.pad),
                "activation": row.act,
            }
        op_attrs = attrs(**params)
    elif row.op == "add":
        tensors.append(ir.Tensor("x2", row.shape, "int8", q(0.11, 7)))
        inputs.append("x2")
        out_shape, op_attrs = row.shape, Add(activation=row.act)
    else:
        out_shape = (row.shape[0], *_out_hw(row), row.shape[-1])
        op_attrs = AveragePool2D(filter=row.kernel_hw, stride=row.stride, padding=ir.Padding2D(*row.pad))
    zp_out = -128 if row.act in (A.RELU, A.RELU6) else int(rng.integers(-10, 10))
    out_q = x.qparams if row.op == "avgpool" else q(row.out_scale, zp_out)
    if row.int16:  # int16 outputs: zero point 0, and a scale that keeps most sums inside int16
        out_q = q(row.out_scale * np.sqrt(np.prod(row.kernel_hw) * row.shape[-1]) / 64, 0)
    tensors.append(ir.Tensor("y", out_shape, act, out_q))
    graph = ir.Graph(
        row.name,
        {t.name: t for t in tensors},
        (ir.Op(row.name, op_attrs, tuple(inputs), ("y",)),),
        tuple(n for n in inputs if n in ("x", "x2")),
        ("y",),
    )
    return ir.verify(graph)


def random_batch(graph: ir.Graph, rng: np.random.Generator, count: int) -> list[list[np.ndarray]]:
    def sample(t):
        info = np.iinfo(t.dtype)
        return rng.integers(info.min, info.max + 1, t.shape).astype(t.dtype)

    return [[sample(graph[n]) for n in graph.inputs] for _ in range(count)]
