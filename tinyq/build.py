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
from tinyq.analysis import macs, weight_bytes
from tinyq.codegen.fast import reference_reason
from tinyq.boards import Board
from tinyq.errors import TinyqError
from tinyq.exporters.tflite import save_tflite
from tinyq.ir import Graph
from tinyq.report_html import write_html
from tinyq.target import firmware, host, renode

MODEL_FILE = "model_int8.tflite"
REPORT_FILE = "report.json"


def _tensor_info(graph: Graph, name: str) -> dict:
    t = graph[name]
    q = t.qparams
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
            "scale": q.s if q else None, "zero_point": q.zp if q else None}


def weight_bits(graph: Graph) -> int:
    dtypes = {graph[op.inputs[1]].dtype for op in graph.ops
              if len(op.inputs) > 1 and graph[op.inputs[1]].is_constant}
    return 4 if dtypes == {"int4"} else 8


def make_report(graph: Graph, board: Board, generated: codegen.GeneratedModel, source: str, quant: dict) -> dict:
    plan = generated.plan
    ops = [{"name": op.name, "type": op.kind, "macs": macs(op, graph), "weights_bytes": weight_bytes(op, graph),
            "in_shape": list(graph[op.inputs[0]].shape), "out_shape": list(graph[op.outputs[0]].shape),
            "output": op.outputs[0], "arena_offset": plan.offsets[op.outputs[0]], "kernel": layer.kernel,
            "scratch_bytes": layer.scratch_bytes}
           | ({"reference_because": reason} if (reason := reference_reason(op, graph)) else {})
           for op, layer in zip(graph.ops, generated.layers)]
    return {
        "model": {"name": graph.name, "source": source, "hash": generated.model_hash,
                  "inputs": [_tensor_info(graph, n) for n in graph.inputs],
                  "outputs": [_tensor_info(graph, n) for n in graph.outputs],
                  "macs": sum(op["macs"] for op in ops)},
        "board": board.name,
        "ops": ops,
        "memory": {"arena_bytes": plan.arena_bytes, "weights_bytes": generated.weights_bytes,
                   "flash_bytes": None, "ram_bytes": None,
                   "plan": [{"offset": off, "bytes": b.size, "first_op": b.first, "last_op": b.last, "tensors": b.label}
                            for off, b in sorted(zip(plan.buffer_offsets, plan.buffers), key=lambda r: r[0])]},
        "quant": {"bits": f"w{weight_bits(graph)}a8"} | quant,
    }


def build(graph: Graph, board: Board, out_dir: Path, *, source: str, quant: dict, compile: bool = True,
          log=print, max_ram: int | None = None, max_flash: int | None = None) -> dict:
    """Generate, compile and report. `max_ram`/`max_flash` default to the board's memory; a
    build over budget writes its report (to see why) and raises BudgetError."""
    out_dir.mkdir(parents=True, exist_ok=True)
    default_ram, default_flash = budget.board_budgets(board)
    max_ram = default_ram if max_ram is None else max_ram
    max_flash = default_flash if max_flash is None else max_flash
    generated = codegen.generate(graph)
    codegen.write(generated, out_dir / host.LIB)
    save_tflite(graph, out_dir / MODEL_FILE)
    report = make_report(graph, board, generated, source, quant)
    report["memory"]["budget"] = {"max_ram": max_ram, "max_flash": max_flash}
    try:
        budget.check_plan(report, max_ram, max_flash)
    except budget.BudgetError:
        write_report(out_dir, report)
        raise
    if board.target != "host":
        firmware.render_project(out_dir, board)
    if compile and board.target == "host":
        host.compile_runner(out_dir, board)
    elif compile:
        built = firmware.build_firmware(out_dir, board, log=log)
        report["memory"].update(flash_bytes=built.flash_bytes, ram_bytes=built.ram_bytes)
        report["firmware"] = {"elf": built.elf.relative_to(out_dir).as_posix(), "builder": built.builder,
                              "note": built.note}
        if board.section("renode"):
            renode.write_script(out_dir, board, built.elf)
    write_report(out_dir, report)
    budget.check_firmware(report, max_ram, max_flash)
    return report


def read_report(build_dir: Path) -> dict:
    path = build_dir / REPORT_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TinyqError(f"{build_dir} is not a tinyq build folder (no {REPORT_FILE}); run `tinyq build` first") from None
    except json.JSONDecodeError as err:
        raise TinyqError(f"{path} is corrupt: {err}") from None


def write_report(build_dir: Path, report: dict) -> None:
    """report.json, and report.html rendered from it."""
    (build_dir / REPORT_FILE).write_text(json.dumps(report, indent=1) + "\n")
    write_html(build_dir, report)
