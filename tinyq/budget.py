"""RAM and flash budgets: `--max-ram` / `--max-flash`, by default the board's memory.

Checked three times: before quantizing a float model, on lower bounds (an op's
int8 input and output must be in RAM together; every weight takes at least its
bit-width), so a model far too big fails in seconds, not after calibration;
before compiling, on what the plan knows exactly (the arena must fit the RAM
budget, the constant data the flash budget); and after linking, on the
firmware's real flash and RAM. A miss names the overshoot and the layers
responsible: the buffers live at the arena's peak, or the largest weights.
"""

from __future__ import annotations

import math
import re

from tinyq.errors import TinyqError

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20}


class BudgetError(TinyqError):
    """The model does not fit the RAM or flash budget."""


class FirmwareFlashError(BudgetError):
    """The linked firmware exceeds the flash budget; `code_bytes` of it are not constant data."""

    def __init__(self, message: str, code_bytes: int):
        super().__init__(message)
        self.code_bytes = code_bytes


def parse_size(text: str) -> int:
    """'262144', '256K', '256KB', '1M' -> bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else None
    if not match or unit not in _UNITS:
        raise TinyqError(f"cannot read the size {text!r}: give bytes, or a number with K or M (e.g. 256K)")
    return int(match.group(1)) * _UNITS[unit]


def board_budgets(board) -> tuple[int | None, int | None]:
    memory = board.section("memory")
    return memory.get("ram_bytes"), memory.get("flash_bytes")


def _peak_buffers(report, count: int = 3) -> str:
    """The largest buffers live at the op where the arena's live bytes peak."""
    plan, ops = report.memory.plan, report.ops
    live = [sum(b.bytes for b in plan if b.live_at(i)) for i in range(len(ops))]
    peak = max(range(len(ops)), key=live.__getitem__) if ops else 0
    at_peak = sorted((b for b in plan if b.live_at(peak)), key=lambda b: -b.bytes)[:count]
    names = ", ".join(f"{b.short_label} {b.bytes:,} B" for b in at_peak)
    return f"at op {peak} ({ops[peak].name if ops else '-'}) the arena holds {names}"


def _largest_weights(report, count: int = 3) -> str:
    ops = sorted(report.ops, key=lambda op: -op.weights_bytes)[:count]
    return "largest weights: " + ", ".join(f"{op.name} {op.weights_bytes:,} B" for op in ops)


def _fail(what: str, need: int, budget: int, option: str, culprits: str, hint: str) -> BudgetError:
    return BudgetError(
        f"{what} needs {need:,} bytes, {need - budget:,} over the {budget:,}-byte budget ({option}); {culprits}; {hint}"
    )


def check_float_graph(
    graph, max_ram: int | None, max_flash: int | None, weight_bits: int = 8, activation_bits: int = 8
) -> None:
    """Before quantizing: lower bounds of the arena and the weights against the budgets
    (weights of 4 bits or fewer deploy packed two per byte, wider ones as int8; activations
    take one byte, two at `activation_bits` 16)."""

    def activation_bytes(op):
        names = dict.fromkeys(n for n in (*op.inputs, *op.outputs) if not graph[n].is_constant)
        return sum(math.prod(graph[n].shape) for n in names) * activation_bits // 8

    if max_ram is not None and graph.ops:
        op = max(graph.ops, key=activation_bytes)
        need = activation_bytes(op)
        if need > max_ram:
            raise _fail(
                "the arena",
                need,
                max_ram,
                "--max-ram",
                f"layer {op.name} ({op.kind}) alone must hold its int{activation_bits} input and output at once",
                "try a board with more RAM or a smaller input",
            )
    params = sum(math.prod(graph[n].shape) for op in graph.ops for n in op.inputs if graph[n].is_constant)
    need = params * (4 if weight_bits <= 4 else 8) // 8
    if max_flash is not None and need > max_flash:
        largest = sorted(graph.ops, key=lambda op: -sum(graph[n].data.size for n in op.inputs if graph[n].is_constant))
        names = ", ".join(op.name for op in largest[:3])
        raise _fail(
            "the constant data",
            need,
            max_flash,
            "--max-flash",
            f"{params:,} weights, the most in {names}",
            "try a board with more flash"
            if weight_bits <= 4
            else "try fewer bits (--bits w4a8 or auto) or a board with more flash",
        )


def check_plan(report) -> None:
    """Before compiling: the arena against the RAM budget, constants against the flash budget."""
    mem, limits = report.memory, report.memory.budget
    if limits.max_ram is not None and mem.arena_bytes > limits.max_ram:
        raise _fail(
            "the arena",
            mem.arena_bytes,
            limits.max_ram,
            "--max-ram",
            _peak_buffers(report),
            "try a board with more RAM or a smaller input",
        )
    if limits.max_flash is not None and mem.weights_bytes > limits.max_flash:
        raise _fail(
            "the constant data",
            mem.weights_bytes,
            limits.max_flash,
            "--max-flash",
            _largest_weights(report),
            "try int4 weights (--bits w4a8) or a board with more flash",
        )


def check_firmware(report) -> None:
    """After linking: the firmware's flash and RAM (code, data, stack included)."""
    mem, limits = report.memory, report.memory.budget
    if limits.max_ram is not None and mem.ram_bytes is not None and mem.ram_bytes > limits.max_ram:
        raise _fail(
            "the firmware's RAM",
            mem.ram_bytes,
            limits.max_ram,
            "--max-ram",
            f"arena {mem.arena_bytes:,} B; " + _peak_buffers(report),
            "try a board with more RAM",
        )
    if limits.max_flash is not None and mem.flash_bytes is not None and mem.flash_bytes > limits.max_flash:
        failure = _fail(
            "the firmware's flash",
            mem.flash_bytes,
            limits.max_flash,
            "--max-flash",
            f"constants {mem.weights_bytes:,} B; " + _largest_weights(report),
            "try int4 weights (--bits w4a8 or auto) or a board with more flash",
        )
        raise FirmwareFlashError(str(failure), mem.flash_bytes - mem.weights_bytes)
