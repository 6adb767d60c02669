"""Lowering: one IR op -> one kernel call (template name + the values it needs).

Each lowering returns the kernel template's name and a dict of C literals and
expressions its `layer()` macro renders; constant tables (weights, biases,
multipliers) are registered with the `Constants` collector and referenced by
name. The integer parameters come from `tinyq.prepare`, the numpy reference's
own source, so C and reference cannot disagree about them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyq import ir
from tinyq.codegen import fast
from tinyq.analysis import macs
from tinyq.codegen.names import c_comment, c_identifier
from tinyq.errors import TinyqError
from tinyq.int4 import pack_int4
from tinyq.plan import MemoryPlan, plan_graph
from tinyq.prepare import prepare

_CTYPES = {"int8": "int8_t", "int32": "int32_t", "float32": "float", "int16": "int16_t"}
_PER_LINE = {"int8_t": 24, "uint8_t": 24, "int32_t": 8, "uint32_t": 8}


@dataclass
class CArray:
    name: str
    ctype: str
    values: np.ndarray
    comment: str

    """A constant array; a 2-D `values` is an array of structs, one row each."""

    @property
    def count(self) -> int:
        return int(self.values.shape[0]) if self.values.ndim == 2 else int(self.values.size)

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * (4 if self.values.ndim == 2 else np.dtype(self.values.dtype).itemsize)

    @property
    def body(self) -> str:
        if self.values.ndim == 2:
            return ",\n".join("    { " + ", ".join(str(v) for v in row) + " }" for row in self.values.tolist())
        flat = self.values.reshape(-1).tolist()
        step = _PER_LINE.get(self.ctype, 8)
        return ",\n".join("    " + ", ".join(str(v) for v in flat[i:i + step]) for i in range(0, len(flat), step))


@dataclass
class Constants:
    arrays: list[CArray] = field(default_factory=list)

    def add(self, name: str, values: np.ndarray, ctype: str, comment: str) -> str:
        self.arrays.append(CArray(name, ctype, np.asarray(values), c_comment(comment, 200)))
        return name


@dataclass
class Layer:
    index: int
    ident: str
    kernel: str
    comment: str
    specialized: bool
    scratch: str
    scratch_bytes: int
    args: dict


def dims4(shape) -> list[int]:
    shape = list(shape)
    if len(shape) > 4:
        raise TinyqError(f"tensors of rank {len(shape)} are not supported by the C kernels (at most 4)")
    return [1] * (4 - len(shape)) + shape


class _Ctx:
    """What a lowering function needs: the op, the graph, the plan, constants, and the
    fast kernel chosen for the op (None: the reference kernel)."""

    def __init__(self, op: ir.Op, index: int, graph: ir.Graph, plan: MemoryPlan, consts: Constants, ident: str,
                 fast: str | None):
        self.op, self.index, self.graph, self.plan, self.consts, self.ident = op, index, graph, plan, consts, ident
        self.fast = fast
        self.params = prepare(op, graph)

    def tensor(self, i: int) -> ir.Tensor:
        return self.graph[self.op.inputs[i]]

    @property
    def out(self) -> ir.Tensor:
        return self.graph[self.op.outputs[0]]

    def pointer(self, name: str, const: bool) -> str:
        ctype = _CTYPES[self.graph[name].dtype]
        return f"({'const ' if const else ''}{ctype} *)(tq_arena + {self.plan.offsets[name]})"

    def input(self, i: int = 0) -> str:
        return self.pointer(self.op.inputs[i], const=True)

    def output(self) -> str:
        return self.pointer(self.op.outputs[0], const=False)

    def _weights_array(self, w: ir.Tensor) -> str:
        """The weights in the layout the chosen kernel reads."""
        name, comment = f"tq_w_{self.ident}", self.weights_comment(w)
        if self.fast and self.fast.startswith("depthwise_conv_fast"):
            pairs = fast.paired_depthwise(self.op, self.graph)
            return self.consts.add(name, pairs, "uint8_t" if w.dtype == "int4" else "uint32_t",
                                   comment + " per channel and row in tap pairs (w[kx], w[kx+1])")
        if self.fast:
            block, per_word = fast.group(self.fast), 8 if w.dtype == "int4" else 4
            return self.consts.add(name, fast.interleaved_words(self.op, self.graph, block), "uint32_t",
                                   comment + f" as words, rows in blocks of {block} interleaved {per_word} k at a time")
        if w.dtype == "int4":
            return self.consts.add(name, pack_int4(w.data), "uint8_t", comment + " (two per byte, low nibble first)")
        return self.consts.add(name, w.data, "int8_t", comment)

    def weights_comment(self, t: ir.Tensor) -> str:
        q = t.qparams
        quant = "" if q is None else (f", per-channel axis {q.axis}" if q.per_channel_quantized else f", scale {q.s:.6g}")
        return f"{self.op.kind} {self.op.name}: {t.name} {t.dtype}{list(t.shape)}{quant}"

    def affine_tables(self) -> dict:
        """Weights, bias and requantization tables of CONV/DEPTHWISE/FC."""
        w, b = self.tensor(1), self.tensor(2)
        p = self.params
        per_channel = len(set(zip(p.multiplier, p.shift))) > 1
        count = len(p.multiplier) if per_channel else 1
        tables = {"filter": self._weights_array(w), "per_channel": int(per_channel), "input_offset": p.input_offset,
                  "output_offset": p.output_offset, "act": [p.act_min, p.act_max]}
        if not self.fast:
            return tables | {
                "bias": self.consts.add(f"tq_b_{self.ident}", b.data, "int32_t", self.weights_comment(b)),
                "multiplier": self.consts.add(f"tq_m_{self.ident}", np.array(p.multiplier[:count], np.int32),
                                              "int32_t", f"{self.op.name}: requantization multipliers"),
                "shift": self.consts.add(f"tq_s_{self.ident}", np.array(p.shift[:count], np.int32), "int32_t",
                                         f"{self.op.name}: requantization shifts")}
        rows = -(-b.shape[0] // fast.group(self.fast)) * fast.group(self.fast)
        exact = fast.exact_requant(self.op, self.graph)
        requant = fast.requant_table(p.multiplier, p.shift, p.output_offset, exact)
        return tables | {
            "bias": self.consts.add(f"tq_bf_{self.ident}", fast.padded(fast.folded_bias(self.op, self.graph), rows),
                                    "int32_t", f"{self.op.name}: bias with the input offset folded in"),
            "requant": self.consts.add(f"tq_q_{self.ident}", fast.padded(requant, rows) if per_channel else requant[:1],
                                       "tq_requant", f"{self.op.name}: requantization (multiplier, shift, rounding)"),
            "exact": int(exact)}


def _kernel_name(base: str, c: "_Ctx") -> str:
    return base.replace("_s8", "_s4") if c.tensor(1).dtype == "int4" else base



def _strides(shape, out_shape) -> list[int]:
    """Element strides of `shape` broadcast against `out_shape` (0 where broadcast)."""
    shape4, out4 = dims4(shape), dims4(out_shape)
    strides, step = [0] * 4, 1
    for axis in range(3, -1, -1):
        strides[axis] = 0 if shape4[axis] == 1 and out4[axis] != 1 else step
        step *= shape4[axis]
    return strides


def _conv(c: _Ctx) -> tuple[str, dict]:
    a = c.op.attrs
    x, w, b, y = c.tensor(0), c.tensor(1), c.tensor(2), c.out
    args = c.affine_tables() | {
        "stride": list(a.stride), "padding": [a.padding.top, a.padding.left], "dilation": list(a.dilation),
        "input_dims": dims4(x.shape), "filter_dims": dims4(w.shape), "bias_dims": [1, 1, 1, b.shape[0]],
        "output_dims": dims4(y.shape), "input": c.input(), "output": c.output()}
    if isinstance(a, ir.DepthwiseConv2D):
        return c.fast or _kernel_name("depthwise_conv_s8", c), args | {"ch_mult": a.depth_multiplier}
    return c.fast or _kernel_name("convolve_s8", c), args


def _fully_connected(c: _Ctx) -> tuple[str, dict]:
    x, w = c.tensor(0), c.tensor(1)
    units, depth = w.shape
    batch = x.size // depth
    return c.fast or _kernel_name("fully_connected_s8", c), c.affine_tables() | {
        "input_dims": [batch, 1, 1, depth], "filter_dims": [depth, 1, 1, units], "bias_dims": [1, 1, 1, units],
        "output_dims": [batch, 1, 1, units], "input": c.input(), "output": c.output()}


def _pool(c: _Ctx) -> tuple[str, dict]:
    a, p = c.op.attrs, c.params
    kernel = "avgpool_s8" if isinstance(a, ir.AveragePool2D) else "maxpool_s8"
    return c.fast or kernel, {"stride": list(a.stride), "padding": [a.padding.top, a.padding.left],
                              "act": [p.act_min, p.act_max], "input_dims": dims4(c.tensor(0).shape),
                              "filter_dims": [1, a.filter[0], a.filter[1], 1], "output_dims": dims4(c.out.shape),
                              "input": c.input(), "output": c.output()}


def _binary(c: _Ctx) -> tuple[str, dict]:
    p = c.params
    args = {f.name: getattr(p, f.name) for f in p.__dataclass_fields__.values()}
    args |= {"act": [args.pop("act_min"), args.pop("act_max")], "output_dims": dims4(c.out.shape),
             "input1_strides": _strides(c.tensor(0).shape, c.out.shape), "input1": c.input(0),
             "input2_strides": _strides(c.tensor(1).shape, c.out.shape), "input2": c.input(1),
             "output": c.output()}
    for i in (0, 1):   # a constant operand (e.g. a scalar) lives in flash
        if c.tensor(i).is_constant:
            args[f"input{i + 1}"] = c.consts.add(f"tq_k{i}_{c.ident}", c.tensor(i).data, "int8_t",
                                                 c.weights_comment(c.tensor(i)))
    return ("add_s8" if isinstance(c.op.attrs, ir.Add) else "mul_s8"), args


def _softmax(c: _Ctx) -> tuple[str, dict]:
    p, x = c.params, c.tensor(0)
    depth = x.shape[-1]
    return "softmax_s8", {"input_multiplier": p.input_multiplier, "input_left_shift": p.input_left_shift,
                          "diff_min": p.diff_min, "rows": x.size // depth, "depth": depth,
                          "input": c.input(), "output": c.output()}


def _logistic(c: _Ctx) -> tuple[str, dict]:
    p = c.params
    return "logistic_s8", {"input_zero_point": p.input_zero_point, "input_range_radius": p.input_range_radius,
                           "input_multiplier": p.input_multiplier, "input_left_shift": p.input_left_shift,
                           "size": c.out.size, "input": c.input(), "output": c.output()}


def _quantize(c: _Ctx) -> tuple[str, dict]:
    p = c.params
    common = {"size": c.out.size, "input": c.input(), "output": c.output()}
    if c.tensor(0).dtype == "float32":
        return "quantize_f32", common | {"scale": repr(float(np.float32(p.scale))), "zero_point": p.zero_point}
    return "requantize_s8", common | {"input_zero_point": p.input_zero_point,
                                      "output_zero_point": p.output_zero_point,
                                      "multiplier": p.multiplier, "shift": p.shift}


def _dequantize(c: _Ctx) -> tuple[str, dict]:
    p = c.params
    return "dequantize_s8", {"scale": repr(p.scale), "zero_point": p.zero_point, "size": c.out.size,
                             "input": c.input(), "output": c.output()}


def _mean(c: _Ctx) -> tuple[str, dict]:
    p, x = c.params, c.tensor(0)
    rank = len(x.shape)
    axes = sorted({ax % rank for ax in c.op.attrs.axes})
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise TinyqError(f"{c.op.name}: MEAN over non-adjacent axes {axes} is not supported by the C kernels")
    outer = int(np.prod(x.shape[:axes[0]], dtype=np.int64))
    inner = int(np.prod(x.shape[axes[-1] + 1:], dtype=np.int64))
    return "mean_s8", {"count": p.count, "input_zero_point": p.input_zero_point,
                       "output_zero_point": p.output_zero_point, "multiplier": p.multiplier, "shift": p.shift,
                       "outer": outer, "inner": inner, "input": c.input(), "output": c.output()}


def _concatenation(c: _Ctx) -> tuple[str, dict]:
    y = c.out
    axis = c.op.attrs.axis % len(y.shape)
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    parts, column = [], 0
    for i, name in enumerate(c.op.inputs):
        t = c.graph[name]
        block = t.size // outer
        source = c.consts.add(f"tq_k{i}_{c.ident}", t.data, "int8_t", c.weights_comment(t)) \
            if t.is_constant else c.input(i)
        parts.append({"block": block, "column": column, "input": source})
        column += block
    return "concatenation_s8", {"outer": outer, "output_block": y.size // outer, "parts": parts,
                                "output": c.output()}


def _pad(c: _Ctx) -> tuple[str, dict]:
    x = c.tensor(0)
    pads = c.op.attrs.paddings
    before = [0] * (4 - len(pads)) + [p[0] for p in pads]
    return "pad_s8", {"input_dims": dims4(x.shape), "pad_before": before, "value": x.qparams.zp,
                      "output_dims": dims4(c.out.shape), "input": c.input(), "output": c.output()}


def _reshape(c: _Ctx) -> tuple[str, dict]:
    aliased = c.plan.offsets[c.op.inputs[0]] == c.plan.offsets[c.op.outputs[0]]
    return "copy_s8", {"aliased": aliased, "size": c.out.nbytes, "input": c.input(), "output": c.output()}



def _add_lut(c: _Ctx) -> tuple[str, dict]:
    p = c.params
    tables = [c.consts.add(f"tq_t{i}_{c.ident}", t.astype(np.int32), "int32_t",
                           f"{c.op.name}: input {i} rescaled, indexed by code + 128")
              for i, t in enumerate(fast.add_tables(p), start=1)]
    requant = fast.requant_table([p.output_multiplier], [p.output_shift], p.output_offset)[0].tolist()
    return "add_lut_s8", {"requant": requant, "act": [p.act_min, p.act_max],
                          "table1": tables[0], "table2": tables[1], "size": c.out.size, "input1": c.input(0),
                          "input2": c.input(1), "output": c.output()}


_LOWER = {ir.Conv2D: _conv, ir.DepthwiseConv2D: _conv, ir.FullyConnected: _fully_connected,
          ir.AveragePool2D: _pool, ir.MaxPool2D: _pool, ir.Add: _binary, ir.Mul: _binary,
          ir.Softmax: _softmax, ir.Logistic: _logistic, ir.Quantize: _quantize, ir.Dequantize: _dequantize,
          ir.Mean: _mean, ir.Concatenation: _concatenation, ir.Pad: _pad, ir.Reshape: _reshape}


def plan_memory(graph: ir.Graph, use_fast: bool = True) -> MemoryPlan:
    """The arena plan for the kernels lowering will choose: their scratch buffers, and
    where they may write over a dying input (the reference kernels need neither)."""
    kernels = {op.name: fast.fast_kernel(op, graph) if use_fast else None for op in graph.ops}
    leads = {op.name: fast.overlap_lead(kernels[op.name], op, graph) for op in graph.ops}
    return plan_graph(graph, {op.name: fast.scratch_bytes(kernels[op.name], op, graph) for op in graph.ops},
                      aliases={name for name, k in kernels.items() if fast.writes_in_place(k)},
                      leads={name: lead for name, lead in leads.items() if lead is not None})


def lower(graph: ir.Graph, plan: MemoryPlan, consts: Constants, use_fast: bool = True) -> list[Layer]:
    layers = []
    for index, op in enumerate(graph.ops):
        if graph[op.outputs[0]].dtype == "float32" and not isinstance(op.attrs, ir.Dequantize):
            raise TinyqError(f"{op.name}: float {op.kind} cannot be generated; quantize the model first")
        ident = c_identifier(op.name, prefix=f"l{index:02d}_")
        ctx = _Ctx(op, index, graph, plan, consts, ident, fast.fast_kernel(op, graph) if use_fast else None)
        kernel, args = _add_lut(ctx) if ctx.fast == "add_lut_s8" else _LOWER[type(op.attrs)](ctx)
        scratch_off, scratch_size = plan.scratch.get(op.name, (0, 0))
        layers.append(Layer(
            index=index, ident=ident, kernel=kernel,
            comment=c_comment(f"{op.kind} {op.name} -> {graph[op.outputs[0]].name} {list(graph[op.outputs[0]].shape)}"),
            specialized=macs(op, graph) > 0 or isinstance(op.attrs, (ir.AveragePool2D, ir.MaxPool2D)),
            scratch=f"tq_arena + {scratch_off}" if scratch_size else "0", scratch_bytes=scratch_size, args=args))
    return layers
