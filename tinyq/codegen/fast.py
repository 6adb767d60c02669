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
from tinyq.prepare import prepare

ACC_LIMIT = 1 << 30


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
    if graph[op.inputs[1]].dtype != "int8":
        return f"{graph[op.inputs[1]].dtype} weights"
    if len(op.inputs) < 3 or graph[op.inputs[2]].data is None:
        return "no constant bias"
    folded = folded_bias(op, graph)
    reach = np.abs(_rows(op, graph)).sum(axis=1) * 128 + np.abs(folded)
    if reach.max() >= ACC_LIMIT:
        return "accumulators may reach 2^30"
    p = prepare(op, graph)
    if not _requant_fits(reach, p.multiplier, p.shift, p.output_offset):
        return "a requantization multiplier of 0.5 or more, or a shift too wide to fold the output offset"
    return None


def fast_kernel(op: ir.Op, graph: ir.Graph) -> str | None:
    """The fast kernel for an op, when one applies (else the reference kernel runs)."""
    a = op.attrs
    if isinstance(a, (ir.Conv2D, ir.FullyConnected)):
        if why_not_fast(op, graph) is None:
            return "convolve_fast_s8" if isinstance(a, ir.Conv2D) else "fully_connected_fast_s8"
    elif isinstance(a, ir.DepthwiseConv2D):
        if a.depth_multiplier == 1 and tuple(a.dilation) == (1, 1) and why_not_fast(op, graph) is None:
            return "depthwise_conv_fast_s8"
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
    if isinstance(a, (ir.Conv2D, ir.DepthwiseConv2D, ir.FullyConnected)):
        return why_not_fast(op, graph)
    if isinstance(a, ir.Add):
        return "broadcast or constant operand, or sums too wide for the table"
    if isinstance(a, ir.AveragePool2D):
        return "channels not a multiple of 4, or a window above 256 cells"
    return None


def scratch_bytes(kernel: str | None, op: ir.Op, graph: ir.Graph) -> int:
    """The Python twin of the fast kernels' *_get_buffer_size functions."""
    w = graph[op.inputs[1]] if kernel in ("convolve_fast_s8", "fully_connected_fast_s8") else None
    if kernel == "convolve_fast_s8":
        k4 = _round_up(int(np.prod(w.shape[1:])), 4)
        return 4 * k4 + (k4 if graph[op.inputs[0]].shape[3] % 4 else 0)
    if kernel == "fully_connected_fast_s8":
        return 2 * _round_up(w.shape[1], 4)
    if kernel == "depthwise_conv_fast_s8":   # the padded int16 plane the output windows cover
        (_, kh, kw, _), (_, oh, ow, _) = graph[op.inputs[1]].shape, graph[op.outputs[0]].shape
        return 2 * ((oh - 1) * op.attrs.stride[0] + kh) * ((ow - 1) * op.attrs.stride[1] + kw)
    return 0


def group(kernel: str) -> int:
    """Output channels per inner-loop block: rows are padded to a multiple of it."""
    return {"convolve_fast_s8": 2, "fully_connected_fast_s8": 4}.get(kernel, 1)


def interleaved_words(op: ir.Op, graph: ir.Graph, rows_per_block: int) -> np.ndarray:
    """Weight rows padded to a multiple of 4 bytes and of `rows_per_block` rows, then
    interleaved: for each block, four k of every row in turn, as little-endian words."""
    rows = _rows(op, graph).astype(np.int8)
    n, k = rows.shape
    padded = np.zeros((_round_up(n, rows_per_block), _round_up(k, 4)), np.int8)
    padded[:n, :k] = rows
    blocks = padded.reshape(-1, rows_per_block, padded.shape[1] // 4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(blocks).reshape(-1).view("<u4")


def paired_depthwise(op: ir.Op, graph: ir.Graph) -> np.ndarray:
    """Depthwise weights per channel and kernel row as int16 pairs (w[kx], w[kx+1]) in
    words, an odd last tap paired with zero."""
    w = graph[op.inputs[1]].data[0]
    kh, kw, ch = w.shape
    taps = np.zeros((ch, kh, _round_up(kw, 2)), np.int64)
    taps[:, :, :kw] = np.moveaxis(w, 2, 0)
    taps &= 0xFFFF
    return (taps[..., 0::2] | (taps[..., 1::2] << 16)).astype(np.uint32).reshape(-1)


def padded(values: np.ndarray, count: int) -> np.ndarray:
    """`values` extended to `count` entries by repeating the last (padding rows are never stored)."""
    return np.concatenate([values, np.repeat(values[-1:], count - len(values), axis=0)])


def requant_table(multipliers, shifts, output_offset: int) -> np.ndarray:
    """(multiplier, right shift r, 2^(r-1) + output_offset 2^r) per channel: tq_requant."""
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


def writes_in_place(kernel: str | None) -> bool:
    """The planar depthwise kernel copies input channel c before it writes output channel
    c, and output channel c's bytes are input channel c's: it may run in place."""
    return kernel == "depthwise_conv_fast_s8"


def overlap_lead(kernel: str | None, op: ir.Op, graph: ir.Graph) -> int | None:
    """How many bytes before its (dying) input the output must start so the kernel never
    writes over input it has yet to read: max over the kernel's steps of (output bytes
    written so far - first input byte still needed). None: no overlap is safe to plan."""
    x, y = graph[op.inputs[0]], graph[op.outputs[0]]
    if kernel == "fully_connected_fast_s8":   # row b is widened into scratch before its outputs
        rows, depth, units = x.size // x.shape[-1], x.shape[-1], y.shape[-1]
        written = np.arange(1, rows + 1) * units
        needed = np.minimum(np.arange(1, rows + 1) * depth, x.nbytes)
        return int((written - needed).max())
    if kernel != "convolve_fast_s8":
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
