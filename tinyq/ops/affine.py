"""What CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED share: weights and bias, per-channel
requantization, and the fast kernels' conditions and data layouts.

A fast kernel replaces the reference kernel of an op only when it is
bit-exact for every input: the folded bias (bias + input offset x weight sum)
fits int32, every accumulator stays below 2^30 in magnitude, and every output
channel's requantization shifts right by at least one bit (the conditions of
tq_requant_apply); a layer whose multipliers or reach break the one-SMLAL
form keeps the fast kernel with the reference requantization (`exact`).

16x8 (int16 activations, zero point 0, int8 weights): TFLM's AccumScalar is the bias
dtype. An int64 bias accumulates in int64 and requantizes with the int64
MultiplyByQuantizedMultiplier (multiplier rounded to 16 bits, one rounding shift);
an int32 bias (or none: the importer's int32 zeros) accumulates in int32 and
requantizes with the int32 (double rounding) one. No output offset (zero point 0).
The fast 16x8 kernels (int64 bias only) read the int16 activations as SMLAD pairs
as they are, with weight words in (k0, k2, k1, k3) byte order ("interleaved k
pairs"); their int32 sums are exact (summed 256 k at a time into int64 by conv and
dense; the depthwise kernel's whole window, when the weights bound it below 2^31).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.int4 import pack_int4
from tinyq.ir import Graph, Op, QParams, Tensor
from tinyq.ops import MAX_MULTIPLIER, Kernel, OpDef, Signature, definition
from tinyq.ops.common import FLOAT, INT8, INT16, activate, activation_range, clamp_to, expect

ACC_LIMIT = 1 << 30
INT32 = (-(1 << 31), (1 << 31) - 1)
INT64_BIAS = (-(2.0**46), 2.0**46)  # TFLM's int64 MultiplyByQuantizedMultiplier assumes |acc| < 2^47
SIGNATURES = (
    Signature((INT8, INT8, "int32"), (INT8,)),
    Signature((INT8, "int4", "int32"), (INT8,)),
    Signature((INT16, INT8, "int64"), (INT16,)),
    Signature((INT16, INT8, "int32"), (INT16,)),
    Signature((FLOAT, FLOAT, FLOAT), (FLOAT,)),
)


@dataclass(frozen=True)
class AffineParams:
    """One multiplier per output channel."""

    input_offset: int
    output_offset: int
    multiplier: tuple[int, ...]
    shift: tuple[int, ...]
    act_min: int
    act_max: int
    out_dtype: str = INT8
    acc64: bool = False  # int64 accumulator and requantization (a 16x8 layer with an int64 bias)


class AffineOp(OpDef):
    """An op y = act(W x + b) with constant weights (input 1) and bias (input 2)."""

    signatures = SIGNATURES
    weight_axis = 0  # the output-channel axis of the weights

    def acc64(self, x: Tensor, b: Tensor) -> bool:
        """Whether TFLM accumulates and requantizes in int64: a 16x8 layer with an int64 bias
        (CONV_2D and DEPTHWISE_CONV_2D take an int32 one, or none, in int32)."""
        return x.dtype == INT16 and b.dtype == "int64"

    def linear(self, tf, op: Op, graph: Graph, x, w):
        """W x in TensorFlow (float, or integer codes held in float64), without bias or activation."""
        raise NotImplementedError

    def forward(self, tf, op, graph, xs):
        x, w, b = xs
        return activate(tf, self.linear(tf, op, graph, x, w) + b, op.attrs.activation)

    def check_weights(self, w: Tensor, b: Tensor, channels: int) -> None:
        expect(w.is_constant, f"weights {w.name!r} must be constant")
        expect(b.is_constant and b.shape == (channels,), f"bias {b.name!r} must be a constant of shape ({channels},)")
        if w.dtype == FLOAT:
            return
        q = w.qparams
        expect(q is not None, f"weights {w.name!r} need quantization")
        expect(all(z == 0 for z in q.zero_point), f"weights {w.name!r} must be symmetric (zero point 0)")
        if q.per_channel_quantized:
            expect(
                q.axis == self.weight_axis and len(q.scale) == channels,
                f"weights {w.name!r}: per-channel quantization must be on axis {self.weight_axis} "
                f"with {channels} scales",
            )
        expect(all(s > 0 and np.isfinite(s) for s in q.scale), f"weights {w.name!r} have a non-positive scale")

    def params(self, attrs, ins, outs) -> AffineParams:
        x, w, b = ins
        y = outs[0]
        pairs = channel_multipliers(x, w, y, w.shape[self.weight_axis])
        lo, hi = activation_range(attrs.activation, y)
        return AffineParams(
            -x.qparams.zp,
            y.qparams.zp,
            tuple(m for m, _ in pairs),
            tuple(s for _, s in pairs),
            lo,
            hi,
            y.dtype,
            self.acc64(x, b),
        )

    def min_scales(self, op, graph, scale, bits=8):
        """The multiplier s_in s_w / s_out at most 2^30, for any weight bit width (s_w <= max |w|)."""
        peak = float(np.abs(graph[op.inputs[1]].data).max())
        return {op.outputs[0]: scale(op.inputs[0]) * peak / MAX_MULTIPLIER}

    def quantize(self, op, graph, context):
        """Weights as `context` quantized them (int4 when 4 bits or fewer), the bias at input
        scale x weight scale in int32 (int64 after an int16 input: TFLM's 16x8 form)."""
        wq = context.weights[op.name]
        w, b = graph[op.inputs[1]], graph[op.inputs[2]]
        wparams = (
            QParams.per_channel(wq.scales, wq.axis) if wq.axis is not None else QParams.per_tensor(float(wq.scales[0]))
        )
        bits = wq.bits or context.config.weight_bits
        context.set(Tensor(w.name, w.shape, "int4" if bits <= 4 else INT8, wparams, wq.values))
        context.set(quantized_bias(b, context, op.inputs[0], wq))
        return [op]

    def choose(self, op: Op, graph: Graph, fast: bool, family: str, refusal: str | None, fast_facts) -> Kernel:
        """`family`_fast when fast kernels are on and `refusal` is None (with the record fields
        `fast_facts()` returns), else the reference `family` kernel and why; both with int4
        weights as `_s4` (the same template, rendered with int4). A 16x8 layer takes the
        portable `family`_s16 (int64 bias) or `family`_s16_b32 (int32 bias), or with an int64
        bias and no refusal `family`_fast_s16."""
        if graph[op.inputs[0]].dtype == INT16:
            acc64 = self.acc64(graph[op.inputs[0]], graph[op.inputs[2]])
            refusal = refusal if acc64 else "the fast 16x8 kernels take an int64 bias"
            if fast and refusal is None:
                facts = {"template": f"{family}_fast_s16"} | fast_facts()
                return Kernel(f"{family}_fast_s16", options={"int4": False, "s16": True}, specialized=True, **facts)
            return Kernel(
                f"{family}_s16" + ("" if acc64 else "_b32"),
                f"{family}_s8",
                {"int4": False, "s16": True, "acc64": acc64},
                reference_because=refusal if fast else None,
                specialized=True,
            )
        int4 = graph[op.inputs[1]].dtype == "int4"
        suffix = "_s4" if int4 else "_s8"
        if fast and refusal is None:
            facts = {"template": f"{family}_fast_s8"} | fast_facts()
            return Kernel(f"{family}_fast{suffix}", options={"int4": int4}, specialized=True, **facts)
        return Kernel(
            f"{family}{suffix}",
            f"{family}_s8",
            {"int4": int4},
            reference_because=refusal if fast else None,
            specialized=True,
        )

    def read_bias(self, reader, inputs, channels: int) -> list[int]:
        return [inputs[0], inputs[1], reader.bias_or_zeros(inputs, channels, inputs[0], inputs[1])]


def quantized_bias(b: Tensor, context, input_name: str, wq) -> Tensor:
    """The bias at input scale x weight scale (per channel when the weights are): int32, or
    int64 after an int16 input (TFLM's 16x8 form), clipped to what the kernels assume."""
    scales = np.broadcast_to(np.float64(context.qparams[input_name].s) * wq.scales.astype(np.float64), b.shape)
    wide = context.tensors[input_name].dtype == INT16
    dtype = "int64" if wide else "int32"
    values = np.clip(np.round(b.data.astype(np.float64) / scales), *(INT64_BIAS if wide else INT32)).astype(dtype)
    bparams = QParams.per_channel(scales, 0) if wq.axis is not None else QParams.per_tensor(float(scales[0]))
    return Tensor(b.name, b.shape, dtype, bparams, values)


def channel_multipliers(x: Tensor, w: Tensor, y: Tensor, channels: int) -> list[tuple[int, int]]:
    """(multiplier, shift) of s_in s_w / s_out per output channel, as TFLM's
    PopulateConvolutionQuantizationParams forms them (float32 scales widened to double)."""
    scales = w.qparams.scale if w.qparams.per_channel_quantized else w.qparams.scale * channels
    return [
        fx.quantize_multiplier(float(np.float32(x.qparams.s)) * float(np.float32(s)) / float(np.float32(y.qparams.s)))
        for s in scales
    ]


def is_affine(op: Op) -> bool:
    """Convolution, depthwise and dense layers: the ops whose weights quantization chooses."""
    return isinstance(definition(op), AffineOp)


def weight_axis(op: Op) -> int:
    return definition(op).weight_axis


# --- reference ----------------------------------------------------------------------------


def requantize(acc, p) -> np.ndarray:
    """Exact accumulator -> int8 (or int16) with per-channel (last axis) multipliers: TFLM's
    int32 accumulator (wrapped) and requantization, or (acc64) its int64 ones. `p`: an
    AffineParams, or TRANSPOSE_CONV's params (the same fields)."""
    mult = np.asarray(p.multiplier, np.int64)
    shift = np.asarray(p.shift, np.int64)
    if p.acc64:
        out = fx.wrap32(fx.multiply_by_quantized_multiplier_int64(acc, mult, shift))  # TFLM returns int32
    else:
        out = fx.multiply_by_quantized_multiplier(fx.wrap32(acc), mult, shift)
    return clamp_to(out + p.output_offset, p.out_dtype, p.act_min, p.act_max)


def exact_matmul(a, b) -> np.ndarray:
    """Integer matrix product through float64: every partial sum is an integer far below
    2^53, so the result is exact and BLAS-fast (float64 operands are used as they are)."""
    return np.rint(np.asarray(a, np.float64) @ np.asarray(b, np.float64)).astype(np.int64)


# --- fast kernels: conditions ------------------------------------------------------------


def weight_rows(op: Op, graph: Graph) -> np.ndarray:
    """The weights as (output channels, k) int64 rows."""
    w = graph[op.inputs[1]].data.astype(np.int64)
    axis = definition(op).weight_axis
    return np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)


def folded_bias(op: Op, graph: Graph) -> np.ndarray:
    """bias + input_offset x (sum of each output channel's weights), as int64."""
    offset = -graph[op.inputs[0]].qparams.zp
    return graph[op.inputs[2]].data.astype(np.int64) + offset * weight_rows(op, graph).sum(axis=1)


def s16_window_fits_int32(op: Op, graph: Graph) -> bool:
    """Whether every output channel's whole sum of int8 x int16 products stays inside int32."""
    return bool(np.abs(weight_rows(op, graph)).sum(axis=1).max() * (1 << 15) < INT32[1])


def why_not_fast(op: Op, graph: Graph, gemm: bool) -> str | None:
    """None when the op may take a fast kernel, else the reason it may not."""
    folded = folded_bias(op, graph)
    if folded.min() < INT32[0] or folded.max() > INT32[1]:
        return "the folded bias leaves int32"
    if (
        graph[op.inputs[1]].dtype == "int4"
        and gemm
        and 16 * np.abs(weight_rows(op, graph)).sum(axis=1).max() * 128 >= INT32[1]
    ):
        return "int4 sums (kept 16x) may leave int32"
    return None


def exact_requant(op: Op, graph: Graph, p: AffineParams) -> bool:
    """Whether the layer needs the reference requantization arithmetic: a multiplier of 0.5
    or more, accumulators that may reach 2^30, or an output offset too wide to fold."""
    reach = np.abs(weight_rows(op, graph)).sum(axis=1) * 128 + np.abs(folded_bias(op, graph))
    return bool(reach.max() >= ACC_LIMIT) or not requant_fits(reach, p.multiplier, p.shift, p.output_offset)


def requant_table(multipliers, shifts, output_offset: int, exact: bool = False) -> np.ndarray:
    """(multiplier, right shift r, 2^(r-1) + output_offset 2^r) per channel: tq_requant; for
    an exact layer, TFLM's (multiplier, shift, output_offset)."""
    if exact:
        return np.stack(
            [
                np.asarray(multipliers, np.int64),
                np.asarray(shifts, np.int64),
                np.full(len(shifts), output_offset, np.int64),
            ],
            axis=1,
        )
    r = -np.asarray(shifts, np.int64)
    return np.stack([np.asarray(multipliers, np.int64), r, np.left_shift(1, r - 1) + output_offset * (1 << r)], axis=1)


def requant_fits(reach: np.ndarray, multipliers, shifts, output_offset: int) -> bool:
    """tq_requant_apply's conditions: right shifts of at least 1, and the high word
    (acc m / 2^31 plus the rounding and offset terms) within int32."""
    if max(shifts) > -1:
        return False
    table = requant_table(multipliers, shifts, output_offset)
    high = reach * table[:, 0] // (1 << 31) + 2 + np.abs(table[:, 2])
    return bool(high.max() < (1 << 31))


# --- fast kernels: data layouts ----------------------------------------------------------


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def interleaved_words(op: Op, graph: Graph, rows_per_block: int, k_pairs: bool = False) -> np.ndarray:
    """Weight rows padded to whole words (4 int8 or 8 int4 k) and to a multiple of
    `rows_per_block` rows, then interleaved: for each block, one word of every row in turn.
    `k_pairs`: each word's bytes in the order (k0, k2, k1, k3), so SXTB16 gives (w0, w1)."""
    rows = weight_rows(op, graph).astype(np.int8)
    int4 = graph[op.inputs[1]].dtype == "int4"
    n, k = rows.shape
    padded = np.zeros((round_up(n, rows_per_block), round_up(k, 8 if int4 else 4)), np.int8)
    padded[:n, :k] = rows
    packed = np.stack([pack_int4(r) for r in padded]) if int4 else padded
    blocks = packed.view(np.uint8).reshape(-1, rows_per_block, packed.shape[1] // 4, 4).transpose(0, 2, 1, 3)
    if k_pairs:
        blocks = blocks[..., [0, 2, 1, 3]]
    return np.ascontiguousarray(blocks).reshape(-1).view("<u4")


def paired_taps(op: Op, graph: Graph) -> np.ndarray:
    """Depthwise weights per channel and kernel row in pairs (w[kx], w[kx+1]), an odd last
    tap paired with zero: int16 halves of a word, or (int4) nibbles of a byte."""
    w = graph[op.inputs[1]].data[0]
    kh, kw, ch = w.shape
    taps = np.zeros((ch, kh, round_up(kw, 2)), np.int64)
    taps[:, :, :kw] = np.moveaxis(w, 2, 0)
    if graph[op.inputs[1]].dtype == "int4":
        taps &= 0xF
        return (taps[..., 0::2] | (taps[..., 1::2] << 4)).astype(np.uint8).reshape(-1)
    taps &= 0xFFFF
    return (taps[..., 0::2] | (taps[..., 1::2] << 16)).astype(np.uint32).reshape(-1)


def padded_rows(values: np.ndarray, count: int) -> np.ndarray:
    """`values` extended to `count` entries by repeating the last (padding rows are never stored)."""
    return np.concatenate([values, np.repeat(values[-1:], count - len(values), axis=0)])


# --- lowering ------------------------------------------------------------------------------


HOST_LANES, HOST_PIXELS = 16, 4 * 12  # tq_host.h's TQ_HOST_LANES and TQ_HOST_BLOCKS x TQ_HOST_ROWS


def host_lanes(op: Op, graph: Graph) -> int:
    """Output channels padded to the host kernels' vector width."""
    return round_up(weight_rows(op, graph).shape[0], HOST_LANES)


def host_kernel(op: Op, graph: Graph, family: str, scratch_bytes: int, layout: str = "host") -> Kernel | None:
    """`family`_host_s8 (templates/runtime/tq_host.h): int8 activations and int8 weights only;
    `layout` "host" (int32 [k][channels], the depthwise kernel's) or "host quads" (int8
    [k/4][channels][4], the GEMM's)."""
    if graph[op.inputs[0]].dtype != INT8 or graph[op.inputs[1]].dtype != INT8:
        return None
    return Kernel(f"{family}_host_s8", scratch_bytes=scratch_bytes, weight_layout=layout, specialized=True)


def weights_array(ctx, kernel) -> str:
    """The weights in the layout the chosen kernel reads."""
    w = ctx.tensor(1)
    name, comment = f"tq_w_{ctx.ident}", ctx.weights_comment(w)
    if kernel.weight_layout == "host":
        rows, lanes = weight_rows(ctx.op, ctx.graph), host_lanes(ctx.op, ctx.graph)
        table = np.zeros((rows.shape[1], lanes), np.int32)
        table[:, : rows.shape[0]] = rows.T
        return ctx.constant(name, table, "int32_t", comment + f" as int32 [k][output channels padded to {lanes}]")
    if kernel.weight_layout == "host quads":
        rows, lanes = weight_rows(ctx.op, ctx.graph), host_lanes(ctx.op, ctx.graph)
        kernel_rows = w.shape[1] if len(w.shape) == 4 else 1  # a convolution's (OHWI), else the whole depth
        k = rows.shape[1] // kernel_rows
        table = np.zeros((kernel_rows, round_up(k, 4), lanes), np.int8)
        table[:, :k, : rows.shape[0]] = rows.T.reshape(kernel_rows, k, rows.shape[0])
        table = table.reshape(-1, 4, lanes).transpose(0, 2, 1)
        what = f" [kernel row][k/4][output channels padded to {lanes}][4]"
        return ctx.constant(name, table, "int8_t", comment + what)
    if kernel.weight_layout == "tap pairs":
        return ctx.constant(
            name,
            paired_taps(ctx.op, ctx.graph),
            "uint8_t" if w.dtype == "int4" else "uint32_t",
            comment + " per channel and row in tap pairs (w[kx], w[kx+1])",
        )
    if kernel.weight_layout in ("interleaved", "interleaved k pairs"):
        block, per_word = kernel.rows_per_block, 8 if w.dtype == "int4" else 4
        pairs = kernel.weight_layout == "interleaved k pairs"
        return ctx.constant(
            name,
            interleaved_words(ctx.op, ctx.graph, block, pairs),
            "uint32_t",
            comment
            + f" as words, rows in blocks of {block} interleaved {per_word} k at a time"
            + (", bytes in the order (k0, k2, k1, k3)" if pairs else ""),
        )
    if w.dtype == "int4":
        return ctx.constant(name, pack_int4(w.data), "uint8_t", comment + " (two per byte, low nibble first)")
    return ctx.constant(name, w.data, "int8_t", comment)


def wrapped_int32(values: np.ndarray) -> np.ndarray:
    """int64 values modulo 2^32 as int32: a folded bias wraps as the kernel's int32 sums do."""
    return ((values + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def plain_requant_tables(ctx, bias: np.ndarray | None = None) -> dict:
    """The portable kernels' int32 bias (or `bias`, what a kernel folded into it) and per-channel
    (or one) multiplier and shift arrays, with the flag that says which."""
    p, b = ctx.params, ctx.tensor(2)
    wide = getattr(p, "acc64", False)  # an int64 accumulator reads an int64 bias
    per_channel = len(set(zip(p.multiplier, p.shift))) > 1
    channels = len(p.multiplier) if per_channel else 1

    def table(prefix, values, what):
        return ctx.constant(f"{prefix}_{ctx.ident}", np.array(values[:channels], np.int32), "int32_t", what)

    return {
        "per_channel": int(per_channel),
        "bias": ctx.constant(
            f"tq_b_{ctx.ident}",
            b.data.astype(np.int64 if wide else np.int32) if bias is None else bias,
            "int64_t" if wide else "int32_t",
            ctx.weights_comment(b) + ("" if bias is None else ", (input offset - 128) x the weight sum folded in"),
        ),
        "multiplier": table("tq_m", p.multiplier, f"{ctx.op.name}: requantization multipliers"),
        "shift": table("tq_s", p.shift, f"{ctx.op.name}: requantization shifts"),
    }


def affine_tables(ctx, kernel) -> dict:
    """Weights, bias and requantization tables of CONV/DEPTHWISE/FC."""
    b = ctx.tensor(2)
    p = ctx.params
    per_channel = len(set(zip(p.multiplier, p.shift))) > 1
    tables = {
        "filter": weights_array(ctx, kernel),
        "per_channel": int(per_channel),
        "input_offset": p.input_offset,
        "output_offset": p.output_offset,
        "act": [p.act_min, p.act_max],
    }
    if kernel.weight_layout == "host quads":  # uint8 columns of x + 128: the rest of the offset in the bias
        folded = folded_bias(ctx.op, ctx.graph) - 128 * weight_rows(ctx.op, ctx.graph).sum(axis=1)
        return tables | plain_requant_tables(ctx, wrapped_int32(folded))
    if kernel.weight_layout == "host":  # the bias with the input offset folded in, for whole windows
        what = f"{ctx.op.name}: bias with the input offset folded in"
        folded = ctx.constant(f"tq_bf_{ctx.ident}", wrapped_int32(folded_bias(ctx.op, ctx.graph)), "int32_t", what)
        return tables | plain_requant_tables(ctx) | {"folded": folded}
    if kernel.weight_layout == "plain" or ctx.tensor(0).dtype == INT16:
        return tables | plain_requant_tables(ctx)
    rows = round_up(b.shape[0], kernel.rows_per_block)
    exact = exact_requant(ctx.op, ctx.graph, p)
    requant = requant_table(p.multiplier, p.shift, p.output_offset, exact)
    return tables | {
        "bias": ctx.constant(
            f"tq_bf_{ctx.ident}",
            padded_rows(folded_bias(ctx.op, ctx.graph), rows),
            "int32_t",
            f"{ctx.op.name}: bias with the input offset folded in",
        ),
        "requant": ctx.constant(
            f"tq_q_{ctx.ident}",
            padded_rows(requant, rows) if per_channel else requant[:1],
            "tq_requant",
            f"{ctx.op.name}: requantization (multiplier, shift, rounding)",
        ),
        "exact": int(exact),
    }
