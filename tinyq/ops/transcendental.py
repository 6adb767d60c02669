"""What the one-input elementwise ops of the transcendental family (TANH, HARD_SWISH, ELU, EXP,
LOG, RSQRT) share: their rules, TFLite mapping and kernel record, and the 256-entry table that
ELU and RSQRT run through (kernel lut_s8: one lookup per element)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyq.errors import TinyqError
from tinyq.ops.common import INT8_MIN, UnaryOp

INT8_CODES = np.arange(INT8_MIN, 128, dtype=np.int64)  # every int8 code, in table order


@dataclass(frozen=True)
class TableParams:
    """The output code of every input code (indexed by code + 128), and the lowest input code
    the op is defined for (TFLM fails on lower ones: RSQRT of a negative number)."""

    table: tuple[int, ...]
    lowest_valid: int = INT8_MIN


class TableOp(UnaryOp):
    """An int8 op whose output depends on the input code alone, run through a table that the
    generator fills with the op's TFLM arithmetic (`params` computes it)."""

    kernel_name = "lut_s8"

    def reference(self, a, p: TableParams, ins, in_tensors, outs):
        x = ins[0].astype(np.int64)
        if p.lowest_valid > INT8_MIN and np.any(x < p.lowest_valid):
            raise TinyqError(
                f"{self.name} input code below {p.lowest_valid} (a negative value): TFLM fails on it, "
                "and so does the generated kernel"
            )
        return np.asarray(p.table, np.int8)[x - INT8_MIN]

    def lower(self, ctx, kernel):
        p = ctx.params
        table = ctx.constant(
            f"tq_lut_{ctx.ident}",
            np.asarray(p.table, np.int8),
            "int8_t",
            f"{ctx.op.name}: {self.name} of each int8 code, indexed by code + 128",
        )
        return {
            "lowest_valid": p.lowest_valid,
            "table": table,
            "size": ctx.out.size,
            "input": ctx.input(),
            "output": ctx.output(),
        }
