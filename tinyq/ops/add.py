"""ADD: int8 addition as TFLM computes it (both inputs rescaled to twice the larger scale with
20 bits of headroom, summed, requantized), with broadcasting and a fused activation.

int16 (16x8, zero points 0): TFLM's general int16 path (AddGeneralParamScale and
BroadcastAdd6DSlow; its pot_scale_int16 path is never taken by TFLM), the same arithmetic with
15 bits of headroom instead of 20 (65535 << 15 still sums in int32), clamped to the fused
activation's int16 range.

Kernels: add_s8 (portable, broadcast by strides; add_s16 is it rendered with `int16`) and
add_lut_s8 (int8 only: same shapes, no constant operand, each input's rescaled value looked
up per int8 code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq import fixedpoint as fx
from tinyq.ir import Activation
from tinyq.ops import InPlace, Kernel, register
from tinyq.ops.affine import ACC_LIMIT, requant_fits, requant_table
from tinyq.ops.binary import BINARY_WITH_INT16, BinaryOp
from tinyq.ops.common import INT8, INT16, activation_range, aligned_operands, clamp_to

LEFT_SHIFT = 20
LEFT_SHIFT_INT16 = 15  # TFLM's headroom for int16 operands
MARGIN = 1 + 2**-10  # keeps a limit strict after float32 rounding of the scale


@dataclass(frozen=True)
class Add:
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def add_params(activation: Activation, ins, outs) -> AddParams:
    """TFLM's ADD (and SUB) parameters: inputs to twice the larger scale, the sum to the output."""
    a, b = (t.qparams for t in ins)
    y = outs[0].qparams
    left_shift = LEFT_SHIFT_INT16 if outs[0].dtype == INT16 else LEFT_SHIFT
    twice_max = 2 * max(a.s, b.s)
    m1 = fx.quantize_multiplier_smaller_than_one_exp(a.s / twice_max)
    m2 = fx.quantize_multiplier_smaller_than_one_exp(b.s / twice_max)
    mo = fx.quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift) * y.s))
    lo, hi = activation_range(activation, outs[0])
    return AddParams(-a.zp, -b.zp, y.zp, left_shift, *m1, *m2, *mo, lo, hi)


def add_min_scales(op, scale, bits: int) -> dict[str, float]:
    """The output multiplier 2 max(s1, s2) / (2^shift s_out) must stay below one (shift 20, or
    15 for int16 activations)."""
    shift = LEFT_SHIFT_INT16 if bits == 16 else LEFT_SHIFT
    return {op.outputs[0]: MARGIN * 2 * max(scale(op.inputs[0]), scale(op.inputs[1])) / (1 << shift)}


def rescaled_inputs(p: AddParams, ins, in_tensors, outs):
    """Both operands at the common scale (int64, broadcast-ready)."""
    x1, x2 = aligned_operands(ins, in_tensors, outs)
    s1 = fx.multiply_by_quantized_multiplier_smaller_than_one_exp(
        (x1 + p.input1_offset) << p.left_shift, p.input1_multiplier, p.input1_shift
    )
    s2 = fx.multiply_by_quantized_multiplier_smaller_than_one_exp(
        (x2 + p.input2_offset) << p.left_shift, p.input2_multiplier, p.input2_shift
    )
    return s1, s2


def requantized_sum(p: AddParams, total, dtype: str) -> np.ndarray:
    """The int32 sum (or difference) at the output scale, clamped as the output dtype."""
    raw = (
        fx.multiply_by_quantized_multiplier_smaller_than_one_exp(fx.wrap32(total), p.output_multiplier, p.output_shift)
        + p.output_offset
    )
    return clamp_to(raw, dtype, p.act_min, p.act_max)


def add_tables(p: AddParams) -> list[np.ndarray]:
    """Each input's rescaled value per int8 code (TFLM's arithmetic), indexed by code + 128."""
    codes = np.arange(-128, 128, dtype=np.int64)
    return [
        fx.multiply_by_quantized_multiplier_smaller_than_one_exp((codes + offset) << p.left_shift, mult, shift)
        for offset, mult, shift in (
            (p.input1_offset, p.input1_multiplier, p.input1_shift),
            (p.input2_offset, p.input2_multiplier, p.input2_shift),
        )
    ]


@register
class AddOp(BinaryOp):
    attrs = Add
    name = "ADD"
    signatures = BINARY_WITH_INT16
    options_table = "AddOptions"
    kernel_name = "add_s8"

    def apply(self, tf, a, b):
        return a + b

    def params(self, attrs, ins, outs):
        return add_params(attrs.activation, ins, outs)

    def reference(self, a, p, ins, in_tensors, outs):
        s1, s2 = rescaled_inputs(p, ins, in_tensors, outs)
        return requantized_sum(p, s1 + s2, outs[0].dtype)

    def min_scales(self, op, graph, scale, bits=8):
        return add_min_scales(op, scale, bits)

    def propagate_range(self, op, ranges):
        if any(r is None for r in ranges):
            return None
        (lo1, hi1), (lo2, hi2) = ranges
        return lo1 + lo2, hi1 + hi2

    def kernel(self, op, graph, fast):
        x1, x2, y = (graph[n] for n in op.inputs + op.outputs)
        if y.dtype == INT16:  # the table kernel is indexed by int8 code
            return Kernel(
                "add_s16",
                "add_s8",
                {"int16": True},
                in_place=InPlace.ELEMENTWISE,
                reference_because="int16 activations (the table kernel is int8 only)" if fast else None,
            )
        if fast and x1.shape == x2.shape == y.shape and not (x1.is_constant or x2.is_constant):
            p = self.params(op.attrs, [x1, x2], [y])
            reach = sum(int(np.abs(t).max()) for t in add_tables(p))
            if reach < ACC_LIMIT and requant_fits(
                np.array([reach]), [p.output_multiplier], [p.output_shift], p.output_offset
            ):
                return Kernel("add_lut_s8", in_place=InPlace.ELEMENTWISE)
        return Kernel(
            "add_s8",
            in_place=InPlace.ELEMENTWISE,
            reference_because="broadcast or constant operand, or sums too wide for the table" if fast else None,
        )

    def host_kernel(self, op, graph):
        """add_host_s8 for same-shape int8 inputs: the tables of add_lut_s8, sixteen elements at a
        time (an output multiplier below one, as TFLM's ADD makes it, keeps its shift <= 0)."""
        x1, x2, y = (graph[n] for n in op.inputs + op.outputs)
        if y.dtype != INT8 or not x1.shape == x2.shape == y.shape:
            return None
        if self.params(op.attrs, [x1, x2], [y]).output_shift > 0:
            return None
        return Kernel("add_host_s8", in_place=InPlace.ELEMENTWISE)

    def lower(self, ctx, kernel):
        if kernel.name not in ("add_lut_s8", "add_host_s8"):
            return super().lower(ctx, kernel)
        p = ctx.params
        tables = [
            ctx.constant(
                f"tq_t{i}_{ctx.ident}",
                t.astype(np.int32),
                "int32_t",
                f"{ctx.op.name}: input {i} rescaled, indexed by code + 128",
            )
            for i, t in enumerate(add_tables(p), start=1)
        ]
        if kernel.name == "add_host_s8":
            output = {"output_multiplier": p.output_multiplier, "output_shift": p.output_shift}
            output |= {"output_offset": p.output_offset}
        else:
            output = {"requant": requant_table([p.output_multiplier], [p.output_shift], p.output_offset)[0].tolist()}
        return output | {
            "act": [p.act_min, p.act_max],
            "table1": tables[0],
            "table2": tables[1],
            "size": ctx.out.size,
            "input1": ctx.input(0),
            "input2": ctx.input(1),
            "output": ctx.output(),
        }
