"""`tinyq build`: an int8 IR graph -> generated C, a compiled target, report.json.

The build folder holds everything later commands need:
  report.json           what was built: ops, MACs, memory, quantization
  report.html, plots/   the same for people, with charts
  model_int8.tflite     the exact int8 model (the reference `bench` checks against)
  lib/tinyq_model/      generated sources (include/, src/)
  host/                 the host runner (host board)
"""

from __future__ import annotations

import json
from pathlib import Path

from tinyq import budget, codegen
from tinyq.analysis import bits_of, macs, weight_bytes
from tinyq.boards import Board
from tinyq.exporters.tflite import save_tflite
from tinyq.ir import Graph
from tinyq.report import (
    REPORT_FILE,
    Budget,
    BufferReport,
    BuildReport,
    FirmwareReport,
    MemoryReport,
    ModelInfo,
    OpReport,
    QuantSummary,
    TensorInfo,
)
from tinyq.report_html import write_html
from tinyq.target import host, target_of

MODEL_FILE = "model_int8.tflite"


def _tensor_info(graph: Graph, name: str) -> TensorInfo:
    t = graph[name]
    q = t.qparams
    perm = graph.input_perms.get(name)
    return TensorInfo(
        t.name, list(t.shape), t.dtype, q.s if q else None, q.zp if q else None, list(perm) if perm else None
    )


def make_report(
    graph: Graph, board: Board, generated: codegen.GeneratedModel, source: str, quant: QuantSummary, limits: Budget
) -> BuildReport:
    plan = generated.plan
    ops = [
        OpReport(
            op.name,
            op.kind,
            macs(op, graph),
            weight_bytes(op, graph),
            list(graph[op.inputs[0]].shape),
            list(graph[result].shape),
            result,
            plan.offsets[result],
            layer.kernel.name,
            layer.scratch_bytes,
            layer.kernel.reference_because,
            graph[result].dtype,
        )
        for op, layer in zip(graph.ops, generated.layers)
        for result in [(op.outputs or op.inputs)[0]]  # a variable's assignment: the value it stores
    ]
    buffers = [
        BufferReport(off, b.size, b.first, b.last, b.tensors, b.scratch_of)
        for off, b in sorted(zip(plan.buffer_offsets, plan.buffers), key=lambda r: r[0])
    ]
    model = ModelInfo(
        graph.name,
        source,
        generated.model_hash,
        [_tensor_info(graph, n) for n in graph.inputs],
        [_tensor_info(graph, n) for n in graph.outputs],
        sum(op.macs for op in ops),
        any(layer.kernel.state_bytes for layer in generated.layers),
    )
    return BuildReport(
        model, board.name, ops, MemoryReport(plan.arena_bytes, generated.weights_bytes, buffers, limits), quant
    )


def build(
    graph: Graph,
    board: Board,
    out_dir: Path,
    *,
    source: str,
    quant: QuantSummary | None = None,
    compile: bool = True,
    log=print,
    max_ram: int | None = None,
    max_flash: int | None = None,
) -> BuildReport:
    """Generate, compile and report. `quant` says how the graph was quantized (default: an
    imported int8 graph). `max_ram`/`max_flash` default to the board's memory; a build over
    budget writes its report (to see why) and raises BudgetError."""
    out_dir.mkdir(parents=True, exist_ok=True)
    default_ram, default_flash = budget.board_budgets(board)
    limits = Budget(default_ram if max_ram is None else max_ram, default_flash if max_flash is None else max_flash)
    generated = codegen.generate(graph)
    codegen.write(generated, out_dir / host.LIB)
    save_tflite(graph, out_dir / MODEL_FILE)
    report = make_report(graph, board, generated, source, quant or QuantSummary(bits_of(graph), ["imported"]), limits)
    try:
        budget.check_plan(report)
    except budget.BudgetError:
        write_report(out_dir, report)
        raise
    target = target_of(board)
    target.render(out_dir, board)
    if compile:
        built = target.compile(out_dir, board, log)
        if built is not None:
            report.memory.flash_bytes, report.memory.ram_bytes = built.flash_bytes, built.ram_bytes
            report.firmware = FirmwareReport(built.elf.relative_to(out_dir).as_posix(), built.builder, built.note)
    write_report(out_dir, report)
    budget.check_firmware(report)
    return report


def write_report(build_dir: Path, report: BuildReport) -> None:
    """report.json, and report.html rendered from it."""
    doc = report.to_json()
    (build_dir / REPORT_FILE).write_text(json.dumps(doc, indent=1) + "\n")
    write_html(build_dir, doc)
