"""Fast kernels: which op gets one, and the constant data in the layout it reads.

A fast kernel replaces the reference kernel of an op only when it is
bit-exact for every input: the folded bias (bias + input offset x weight sum)
fits int32, every accumulator stays below 2^30 in magnitude, and every output
channel's requantization shifts right by at least one bit (the conditions of
tq_requant_apply). Otherwise the op keeps its reference kernel and the
report says why.
"""
from __future__ import annotations

import numpy as np

from tinyq import fixedpoint as fx
from tinyq import ir
from tinyq.int4 import pack_int4
from tinyq.prepare import prepare

ACC_LIMIT = 1 << 30
INT32 = (-(1 << 31), (1 << 31) - 1)
DW_MAX_PAIRS = 64   # TQ_DW_MAX_PAIRS: the int4 depthwise kernel unpacks at most this many tap pairs


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _rows(op: ir.Op, graph: ir.Graph) -> np.ndarray:
    """The weights as (output channels, k) int64 rows."""
    w = graph[op.inputs[1]].data.astype(np.int64)
    if isinstance(op.attrs, ir.DepthwiseConv2D):
        return np.moveaxis(w, 3, 0).reshape(w.shape[3], -1)
    return w.reshape(w.shape[0], -1)


def folded_bias(op: ir.Op, graph: ir.Graph) -> np.ndarray:
    """bias + input_offset x (sum of each output channel's weights), as int64."""
    offset = -graph[op.inputs[0]].qparams.zp
    return graph[op.inputs[2]].data.astype(np.int64) + offset * _rows(op, graph).sum(axis=1)


def why_not_fast(op: ir.Op, graph: ir.Graph) -> str | None:
    """None when the affine op may take a fast kernel, else the reason it may not."""
    dtype = graph[op.inputs[1]].dtype
    gemm = not isinstance(op.attrs, ir.DepthwiseConv2D)
    if len(op.inputs) < 3 or graph[op.inputs[2]].data is None:
        return "no constant bias"
    folded = folded_bias(op, graph)
    if folded.min() < INT32[0] or folded.max() > INT32[1]:
        return "the folded bias leaves int32"
    if dtype == "int4" and gemm and 16 * np.abs(_rows(op, graph)).sum(axis=1).max() * 128 >= INT32[1]:
        return "int4 sums (kept 16x) may leave int32"
    return None


def exact_requant(op: ir.Op, graph: ir.Graph) -> bool:
    """Whether the layer needs the reference requantization arithmetic: a multiplier of 0.5
    or more, accumulators that may reach 2^30, or an output offset too wide to fold."""
    reach = np.abs(_rows(op, graph)).sum(axis=1) * 128 + np.abs(folded_bias(op, graph))
    p = prepare(op, graph)
    return bool(reach.max() >= ACC_LIMIT) or not _requant_fits(reach, p.multiplier, p.shift, p.output_offset)


def fast_kernel(op: ir.Op, graph: ir.Graph) -> str | None:
    """The fast kernel for an op, when one applies (else the reference kernel runs)."""
    a = op.attrs
    if isinstance(a, (ir.Conv2D, ir.FullyConnected)):
        if why_not_fast(op, graph) is None:
            suffix = "_s4" if graph[op.inputs[1]].dtype == "int4" else "_s8"
            return ("convolve_fast" if isinstance(a, ir.Conv2D) else "fully_connected_fast") + suffix
    elif isinstance(a, ir.DepthwiseConv2D):
        _, kh, kw, _ = graph[op.inputs[1]].shape
        int4 = graph[op.inputs[1]].dtype == "int4"
        if a.depth_multiplier == 1 and tuple(a.dilation) == (1, 1) and why_not_fast(op, graph) is None \
                and not (int4 and kh * -(-kw // 2) > DW_MAX_PAIRS):
            return "depthwise_conv_fast_s4" if int4 else "depthwise_conv_fast_s8"
    elif isinstance(a, ir.Add):
        x1, x2, y = (graph[n] for n in op.inputs + op.outputs)
        if x1.shape == x2.shape == y.shape and not (x1.is_constant or x2.is_constant):
            p = prepare(op, graph)
            reach = sum(int(np.abs(t).max()) for t in add_tables(p))
            if reach < ACC_LIMIT and _requant_fits(np.array([reach]), [p.output_multiplier], [p.output_shift],
                                                    p.output_offset):
                return "add_lut_s8"
    elif isinstance(a, ir.AveragePool2D):
        if graph[op.inputs[0]].shape[3] % 4 == 0 and a.filter[0] * a.filter[1] <= 256:
            return "avgpool_fast_s8"
    return None


def reference_reason(op: ir.Op, graph: ir.Graph) -> str | None:
    """Why an op that has a fast kernel in general runs its reference kernel (for the report)."""
    if fast_kernel(op, graph) is not None:
        return None
    a = op.attrs
    if isinstance(a, ir.DepthwiseConv2D) and (a.depth_multiplier != 1 or tuple(a.dilation) != (1, 1)):
        return "depth multiplier above 1 or dilation"
    if isinstance(a, ir.DepthwiseConv2D) and why_not_fast(op, graph) is None:
        return f"int4 kernel larger than {DW_MAX_PAIRS} tap pairs"
    if isinstance(a, (ir.Conv2D, ir.DepthwiseConv2D, ir.FullyConnected)):
        return why_not_fast(op, graph)
    if isinstance(a, ir.Add):
        return "broadcast or constant operand, or sums too wide for the table"
    if isinstance(a, ir.AveragePool2D):
        return "channels not a multiple of 4, or a window above 256 cells"
    return None


def scratch_bytes(kernel: str | None, op: ir.Op, graph: ir.Graph) -> int:
    """The Python twin of the fast kernels' *_get_buffer_size functions."""
    w = graph[op.inputs[1]] if len(op.inputs) > 1 else None
    if kernel == "convolve_fast_s8":
        k4 = _round_up(int(np.prod(w.shape[1:])), 4)
        return 4 * k4 + (k4 if graph[op.inputs[0]].shape[3] % 4 else 0)
    if kernel == "convolve_fast_s4":
        return 5 * _round_up(int(np.prod(w.shape[1:])), 8)
    if kernel in ("fully_connected_fast_s8", "fully_connected_fast_s4"):
        return 2 * _round_up(w.shape[1], 8 if kernel.endswith("_s4") else 4)
    if kernel in ("depthwise_conv_fast_s8", "depthwise_conv_fast_s4"):   # the padded int16 plane
        (_, kh, kw, _), (_, oh, ow, _) = graph[op.inputs[1]].shape, graph[op.outputs[0]].shape
        return 2 * ((oh - 1) * op.attrs.stride[0] + kh) * ((ow - 1) * op.attrs.stride[1] + kw)
    return 0


def group(kernel: str) -> int:
    """Output channels per inner-loop block: rows are padded to a multiple of it."""
    return 2 if kernel.startswith("convolve_fast") else 4 if kernel.startswith("fully_connected_fast") else 1


def interleaved_words(op: ir.Op, graph: ir.Graph, rows_per_block: int) -> np.ndarray:
    """Weight rows padded to whole words (4 int8 or 8 int4 k) and to a multiple of
    `rows_per_block` rows, then interleaved: for each block, one word of every row in turn."""
    rows = _rows(op, graph).astype(np.int8)
    int4 = graph[op.inputs[1]].dtype == "int4"
    n, k = rows.shape
    padded = np.zeros((_round_up(n, rows_per_block), _round_up(k, 8 if int4 else 4)), np.int8)
    padded[:n, :k] = rows
    packed = np.stack([pack_int4(r) for r in padded]) if int4 else padded
    blocks = packed.view(np.uint8).reshape(-1, rows_per_block, packed.shape[1] // 4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(blocks).reshape(-1).view("<u4")


def paired_depthwise(op: ir.Op, graph: ir.Graph) -> np.ndarray:
    """Depthwise weights per channel and kernel row in pairs (w[kx], w[kx+1]), an odd last
    tap paired with zero: int16 halves of a word, or (int4) nibbles of a byte."""
    w = graph[op.inputs[1]].data[0]
    kh, kw, ch = w.shape
    taps = np.zeros((ch, kh, _round_up(kw, 2)), np.int64)
    taps[:, :, :kw] = np.moveaxis(w, 2, 0)
    if graph[op.inputs[1]].dtype == "int4":
        taps &= 0xF
        return (taps[..., 0::2] | (taps[..., 1::2] << 4)).astype(np.uint8).reshape(-1)
    taps &= 0xFFFF
    return (taps[..., 0::2] | (taps[..., 1::2] << 16)).astype(np.uint32).reshape(-1)


def padded(values: np.ndarray, count: int) -> np.ndarray:
    """`values` extended to `count` entries by repeating the last (padding rows are never stored)."""
    return np.concatenate([values, np.repeat(values[-1:], count - len(values), axis=0)])


def requant_table(multipliers, shifts, output_offset: int, exact: bool = False) -> np.ndarray:
    """(multiplier, right shift r, 2^(r-1) + output_offset 2^r) per channel: tq_requant; for
    an exact layer, TFLM's (multiplier, shift, output_offset)."""
    if exact:
        return np.stack([np.asarray(multipliers, np.int64), np.asarray(shifts, np.int64),
                         np.full(len(shifts), output_offset, np.int64)], axis=1)
    r = -np.asarray(shifts, np.int64)
    return np.stack([np.asarray(multipliers, np.int64), r, np.left_shift(1, r - 1) + output_offset * (1 << r)], axis=1)


def _requant_fits(reach: np.ndarray, multipliers, shifts, output_offset: int) -> bool:
    """tq_requant_apply's conditions: right shifts of at least 1, and the high word
    (acc m / 2^31 plus the rounding and offset terms) within int32."""
    if max(shifts) > -1:
        return False
    table = requant_table(multipliers, shifts, output_offset)
    high = reach * table[:, 0] // (1 << 31) + 2 + np.abs(table[:, 2])
    return bool(high.max() < (1 << 31))


def add_tables(p) -> list[np.ndarray]:
    """Each ADD input's rescaled value per int8 code (TFLM's arithmetic), indexed by code + 128."""
    codes = np.arange(-128, 128, dtype=np.int64)
    return [fx.multiply_by_quantized_multiplier_smaller_than_one_exp((codes + offset) << p.left_shift, mult, shift)
            for offset, mult, shift in ((p.input1_offset, p.input1_multiplier, p.input1_shift),
                                        (p.input2_offset, p.input2_multiplier, p.input2_shift))]


def _gemm(kernel: str | None, name: str) -> bool:
    return kernel in (f"{name}_s8", f"{name}_s4")


def writes_in_place(kernel: str | None) -> bool:
    """The planar depthwise kernel copies input channel c before it writes output channel
    c, and output channel c's bytes are input channel c's: it may run in place."""
    return kernel in ("depthwise_conv_fast_s8", "depthwise_conv_fast_s4")


def overlap_lead(kernel: str | None, op: ir.Op, graph: ir.Graph) -> int | None:
    """How many bytes before its (dying) input the output must start so the kernel never
    writes over input it has yet to read: max over the kernel's steps of (output bytes
    written so far - first input byte still needed). None: no overlap is safe to plan."""
    x, y = graph[op.inputs[0]], graph[op.outputs[0]]
    if _gemm(kernel, "fully_connected_fast"):   # row b is widened into scratch before its outputs
        rows, depth, units = x.size // x.shape[-1], x.shape[-1], y.shape[-1]
        written = np.arange(1, rows + 1) * units
        needed = np.minimum(np.arange(1, rows + 1) * depth, x.nbytes)
        return int((written - needed).max())
    if not _gemm(kernel, "convolve_fast"):
        return None
    n, h, w, ci = x.shape
    _, oh, ow, co = y.shape
    (sh, sw), pad = op.attrs.stride, op.attrs.padding
    pixel = np.arange(n * oh * ow)
    b, oy, ox = pixel // (oh * ow), pixel % (oh * ow) // ow, pixel % ow
    first_row, first_col = np.maximum(oy * sh - pad.top, 0), np.maximum(ox * sw - pad.left, 0)
    first_byte = np.minimum(((b * h + first_row) * w + first_col) * ci, x.nbytes)
    # a step takes pixels (pa, pa + 1): both are gathered before either is written
    steps = np.arange(0, len(pixel), 2)
    later = np.append(np.minimum.accumulate(first_byte[::-1])[::-1], x.nbytes)
    written = np.minimum(steps + 2, len(pixel)) * co
    needed = later[np.minimum(steps + 2, len(pixel))]
    return int((written - needed).max())
