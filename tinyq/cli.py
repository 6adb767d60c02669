"""The `tinyq` command line. Commands are thin: they parse, call a module, print.

Errors the user can act on (TinyqError) print one line and exit 2; `--debug`
shows the traceback of any failure. `--quiet` leaves only results and errors;
`--print-json` prints each command's result as one JSON document on stdout and
nothing else there (progress and notes go nowhere). A command's own
`--json FILE` writes its result to FILE.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from tinyq import __version__
from tinyq.errors import TinyqError

console = Console()
err_console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyq")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes: results and errors only.")
@click.option("--print-json", "as_json", is_flag=True, help="Print the result as JSON on stdout (implies --quiet).")
@click.option("--json", "old_json", is_flag=True, hidden=True)  # the 0.1 spelling of --print-json
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, as_json: bool, old_json: bool) -> None:
    """Quantize Keras/TFLite models to int8 and deploy them as bit-exact C on Cortex-M."""
    from tinyq.progress import set_quiet

    if old_json:
        err_console.print(
            "note: the global --json is now --print-json (a command's --json FILE writes a file)",
            highlight=False,
            soft_wrap=True,
        )
        as_json = True
    ctx.obj = {"debug": debug, "quiet": quiet or as_json, "json": as_json}
    set_quiet(quiet or as_json)
    console.quiet = as_json


def note(message: str) -> None:
    """Progress notes on stderr, silenced by --quiet and --json."""
    ctx = click.get_current_context(silent=True)
    if not (ctx and ctx.obj and ctx.obj.get("quiet")):
        err_console.print(message, highlight=False, soft_wrap=True)


def emit(result) -> None:
    """The command's result as JSON on stdout, when --json asked for it."""
    ctx = click.get_current_context(silent=True)
    if ctx and ctx.obj and ctx.obj.get("json"):
        click.echo(json.dumps(result, indent=1, default=str))


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the table here, as JSON.")
def inspect(model: str, json_out: str | None) -> None:
    """Layers, shapes, quantization, MACs and weight bytes of MODEL."""
    from pathlib import Path

    from tinyq.analysis import describe_qparams, summary
    from tinyq.data import layout_note
    from tinyq.importers import load_model
    from tinyq.report import short_name

    graph = load_model(model)
    rows = summary(graph)
    totals = {
        "ops": len(rows),
        "macs": sum(r["macs"] for r in rows),
        "weights_bytes": sum(r["weights_bytes"] for r in rows),
    }
    result = {"model": graph.name, "ops": rows, "totals": totals}
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1) + "\n")
    emit(result)
    cells = [
        [
            str(r["index"]),
            r["type"],
            str(r["out_shape"]),
            r["weights_quant"],
            r["out_quant"],
            f"{r['macs']:,}",
            f"{r['weights_bytes']:,}",
            short_name(r["output"]),
        ]
        for r in rows
    ]
    cells.append(["", "total", "", "", "", f"{totals['macs']:,}", f"{totals['weights_bytes']:,}", ""])
    table = Table(title=f"{graph.name}: {totals['ops']} ops", title_justify="left")
    headers = ["#", "op", "out shape", "weights", "output quant", "MACs", "weight bytes", "layer"]
    for i, col in enumerate(headers):
        fixed = max(len(col), *(len(row[i]) for row in cells))
        table.add_column(
            col,
            justify="right" if col in ("#", "MACs", "weight bytes") else "left",
            no_wrap=True,
            overflow="ellipsis",
            min_width=12 if col == "layer" else fixed,
        )
    for row in cells[:-1]:
        table.add_row(*row)
    table.add_section()
    table.add_row(*cells[-1])
    console.print(table)
    for role, names in (("input", graph.inputs), ("output", graph.outputs)):
        for name in names:
            t = graph[name]
            console.print(f"{role:6} {short_name(name)}: {list(t.shape)} {describe_qparams(t.qparams, t.dtype)}")
            if name in graph.input_perms:
                console.print(f"       {layout_note(t.shape, graph.input_perms[name])}", soft_wrap=True)


@cli.command(name="ops")
@click.option(
    "--markdown", is_flag=True, help="Print docs/operators.md (the table, Keras layers, what TFLM has beyond)."
)
def operators(markdown: bool) -> None:
    """The TFLite operators tinyq deploys, their dtypes, and the Keras layers it imports."""
    from tinyq import catalog

    rows = catalog.operator_rows()
    emit({"operators": rows, "keras_layers": catalog.keras_layers(), "tflm_only": catalog.missing_from_tflm()})
    if markdown:
        click.echo(catalog.markdown(), nl=False)
        return
    table = Table(title=f"{len(rows)} TFLite operators", title_justify="left")
    for col in ("operator", "read as", "dtypes deployed", "float forward"):
        table.add_column(col, no_wrap=col != "dtypes deployed")
    for r in rows:
        table.add_row(r["operator"], r["op"], "; ".join(r["dtypes"]), "yes" if r["float_forward"] else "-")
    console.print(table)
    console.print(f"Keras layers: {', '.join(catalog.keras_layers())}", soft_wrap=True)
    console.print(f"in TFLite Micro, not in tinyq: {', '.join(catalog.missing_from_tflm())}", soft_wrap=True)


@cli.command()
def boards() -> None:
    """List the boards tinyq can build for."""
    from tinyq.boards import all_boards

    table = Table(title="boards", title_justify="left")
    for col, justify in (
        ("name", "left"),
        ("core", "left"),
        ("clock", "right"),
        ("flash", "right"),
        ("RAM", "right"),
        ("target", "left"),
        ("description", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=col != "description")  # only the description wraps
    for board in all_boards().values():
        memory, clock = board.section("memory"), board.data.get("clock_hz")
        sizes = [f"{memory[k] // 1024:,} KB" if k in memory else "-" for k in ("flash_bytes", "ram_bytes")]
        table.add_row(
            board.name, board.core, f"{clock / 1e6:g} MHz" if clock else "-", *sizes, board.target, board.description
        )
    console.print(table)
    emit(
        [
            {
                "name": b.name,
                "aliases": list(b.aliases),
                "core": b.core,
                "target": b.target,
                "description": b.description,
            }
            | {k: v for k, v in b.section("memory").items() if k.endswith("_bytes")}
            for b in all_boards().values()
        ]
    )


def quant_options(fn):
    """Options shared by build, quantize and eval."""
    options = [
        click.option("--calib", type=click.Path(), help="Calibration data: .npz with x (and y), or a folder of .npy."),
        click.option(
            "--calib-samples",
            type=click.IntRange(1),
            default=1000,
            show_default=True,
            help="Use at most this many calibration samples.",
        ),
        click.option(
            "--algo",
            help="Range method (minmax|meanmax|percentile|mse|bn) plus passes (cle,bc and adaround|brecq|qdrop), "
            "comma separated [default: mse; below 8 weight bits and for --bits auto mse,adaround, with --per-tensor "
            "mse,cle,bc,qdrop].",
        ),
        click.option(
            "--bits",
            default="w8a8",
            show_default=True,
            help="Weight and activation bits: w8a8, w4a8, ..., w8a16 (int16 activations), or auto (int8 or int4 "
            "weights per layer, for --max-flash or an accuracy goal).",
        ),
        click.option(
            "--a16",
            metavar="LAYER[,LAYER...]|auto",
            help="Mixed precision: int16 activations on these layers (or on those their sensitivity picks), "
            "int8 elsewhere.",
        ),
        click.option("--per-tensor", is_flag=True, help="Per-tensor weight scales (default: per channel)."),
        click.option(
            "--percentile", type=float, default=99.99, show_default=True, help="Percentile for --algo percentile."
        ),
        click.option(
            "--encodings",
            type=click.Path(dir_okay=False),
            help="AIMET's encodings JSON (sim.export) of an ONNX MODEL: deploy AIMET's quantization.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def search_options(fn):
    """The goal of --bits auto (build and quantize)."""
    options = [
        click.option(
            "--target-accuracy",
            type=click.FloatRange(0, 100, min_open=True),
            help="--bits auto: the smallest model with at least this accuracy (percent) on --data.",
        ),
        click.option(
            "--max-drop",
            type=click.FloatRange(0, 100),
            help="--bits auto: the smallest model at most this many points below float's accuracy on --data.",
        ),
        click.option(
            "--data",
            "search_data",
            type=click.Path(),
            help="--bits auto: labelled data (.npz with x and y) the accuracy goals are measured on.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _deployable(
    model,
    calib,
    calib_samples,
    algo,
    bits,
    per_tensor,
    percentile,
    a16,
    encodings,
    target_accuracy=None,
    max_drop=None,
    search_data=None,
    **budgets,
):
    from tinyq.pipeline import deployable
    from tinyq.quant import parse_config

    config = parse_config(algo, bits, per_tensor, percentile, a16)
    deploy = deployable(
        model,
        calib=calib,
        calib_samples=calib_samples,
        config=config,
        encodings=encodings,
        target_accuracy=None if target_accuracy is None else target_accuracy / 100,
        max_drop=max_drop,
        data=search_data,
        **budgets,
    )
    for line in deploy.quant.notes:  # what the passes, --a16 and --bits auto decided, and why
        note(line)
    if deploy.quant.layer_bits:
        console.print(bits_table(deploy.quant.layer_bits))
    return deploy, config


def bits_table(rows) -> Table:
    """What --bits auto chose, layer by layer."""
    table = Table(title="--bits auto", title_justify="left")
    accuracy = any(row.accuracy_drop is not None for row in rows)
    for col in ("layer", "op", "weights", "acts", "bytes", "dB lost") + (("points lost",) if accuracy else ()):
        table.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for row in rows:
        lost = [row.sensitivity_db] + ([row.accuracy_drop] if accuracy else [])
        table.add_row(
            row.name,
            row.kind,
            f"int{row.weight_bits}",
            f"int{row.activation_bits}",
            f"{row.weight_bytes:,}",
            *("-" if v is None else f"{v:.2f}" for v in lost),
        )
    return table


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--board", "board_name", required=True, help="Board name (see `tinyq boards`).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Build folder.")
@click.option("--no-compile", is_flag=True, help="Render the sources and report only.")
@click.option("--max-ram", help="RAM budget (bytes, or e.g. 256K); default: the board's RAM.")
@click.option("--max-flash", help="Flash budget (bytes, or e.g. 1M); default: the board's flash.")
@click.option(
    "--streaming",
    is_flag=True,
    help="One frame per call: a sequence model's recurrent state stays in the arena between calls (tinyq_reset).",
)
@quant_options
@search_options
def build(
    model,
    board_name,
    out_dir,
    no_compile,
    max_ram,
    max_flash,
    streaming,
    calib,
    calib_samples,
    algo,
    bits,
    per_tensor,
    percentile,
    a16,
    encodings,
    **goal,
):
    """Quantize MODEL if it is float, generate C and build it for BOARD."""
    from pathlib import Path

    from tinyq.boards import get_board
    from tinyq.budget import FirmwareFlashError, board_budgets, parse_size
    from tinyq.build import build as run_build
    from tinyq.data import layout_note
    from tinyq.report import short_name

    board = get_board(board_name)
    default_ram, default_flash = board_budgets(board)
    budgets = {
        "max_ram": default_ram if max_ram is None else parse_size(max_ram),
        "max_flash": default_flash if max_flash is None else parse_size(max_flash),
    }
    constants_budget = budgets["max_flash"]
    for attempt in (1, 2):  # --bits auto fits the constants; a second choice leaves room for the code it measured
        deploy, config = _deployable(
            model, calib, calib_samples, algo, bits, per_tensor, percentile, a16, encodings,
            max_ram=budgets["max_ram"], max_flash=constants_budget, **goal,
        )  # fmt: skip
        graph = deploy.graph
        if streaming:
            from tinyq.streaming import streaming as streamed

            graph = streamed(graph)
        try:
            report = run_build(
                graph,
                board,
                Path(out_dir),
                source=str(model),
                quant=deploy.quant,
                compile=not no_compile,
                log=note,
                **budgets,
            )
            break
        except FirmwareFlashError as err:
            if not config.weights_auto or attempt == 2:
                raise
            constants_budget = budgets["max_flash"] - err.code_bytes
            note(
                f"bits auto: the firmware's code and data take {err.code_bytes:,} B of flash besides the constants; "
                f"choosing again for constants within {constants_budget:,} B"
            )
    mem = report.memory
    sizes = f", flash {mem.flash_bytes:,} B, RAM {mem.ram_bytes:,} B" if mem.flash_bytes is not None else ""
    console.print(
        f"built [bold]{report.model.name}[/] for {board.name}: {len(report.ops)} ops, "
        f"{report.model.macs:,} MACs, arena {mem.arena_bytes:,} B, "
        f"weights {mem.weights_bytes:,} B{sizes} -> {out_dir}",
        soft_wrap=True,
    )
    for t in report.model.inputs:
        if t.perm:
            console.print(f"input {short_name(t.name)}: {layout_note(t.shape, t.perm)}", soft_wrap=True)
    emit(report.to_json())


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--max-flash", help="--bits auto: the constant data's budget (bytes, or e.g. 96K).")
@quant_options
@search_options
def quantize(
    model, out_dir, max_flash, calib, calib_samples, algo, bits, per_tensor, percentile, a16, encodings, **goal
):
    """Quantize a float MODEL: DIR/model_int8.tflite and DIR/quant_report.json."""
    from pathlib import Path

    from tinyq.budget import parse_size
    from tinyq.exporters.tflite import save_tflite

    budget = {"max_flash": None if max_flash is None else parse_size(max_flash)}
    deploy, config = _deployable(
        model, calib, calib_samples, algo, bits, per_tensor, percentile, a16, encodings, **budget, **goal
    )
    if deploy.float_graph is None:
        raise TinyqError(f"{model} is already an int8 model: nothing to quantize")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_tflite(deploy.graph, out / "model_int8.tflite")
    layers = quant_layers(deploy)
    report = {
        "model": str(model),
        "algo": config.algo,
        "bits": deploy.quant.bits,
        "per_channel": config.per_channel,
        "calibration_samples": deploy.quant.calibration_samples,
        "notes": deploy.quant.notes,
        "int16_layers": deploy.quant.int16_layers or [],
        "layers": layers,
    }
    if deploy.quant.layer_bits:
        report |= {k: deploy.quant.to_json()[k] for k in ("layer_bits", "bits_curve")}
    (out / "quant_report.json").write_text(json.dumps(report, indent=1) + "\n")
    table = Table(title=f"{Path(model).name}: {deploy.quant.bits}, {'/'.join(config.algo)}", title_justify="left")
    for col in ("op", "layer", "dtype", "output scale", "zero point", "SQNR dB"):
        table.add_column(col, justify="left" if col in ("op", "layer", "dtype") else "right")
    for layer in layers:
        sqnr = layer["sqnr_db"]
        table.add_row(
            layer["type"],
            layer["name"],
            layer["dtype"],
            f"{layer['scale']:.4g}",
            str(layer["zero_point"]),
            "-" if sqnr is None else f"{sqnr:.1f}",
        )
    console.print(table)
    console.print(f"wrote {out / 'model_int8.tflite'} and {out / 'quant_report.json'}", soft_wrap=True)
    emit(report)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data_path", required=True, type=click.Path(), help="Training data: .npz with x and y.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--epochs", default=2, show_default=True, type=click.IntRange(1), help="Training epochs.")
@click.option(
    "--bits",
    default="w8a8",
    show_default=True,
    help="Weight and activation bits: w8a8, w4a8, ..., or w8a16 (int16 activations)",
)
@click.option("--per-tensor", is_flag=True, help="Per-tensor weight scales (default: per channel).")
@click.option("--fixed-ranges", is_flag=True, help="EMA activation ranges instead of learned (LSQ) step sizes.")
@click.option("--lr", "learning_rate", default=1e-4, show_default=True, type=float, help="Learning rate.")
@click.option("--batch-size", help="Training batch size.", default=64, show_default=True, type=click.IntRange(1))
@click.option(
    "--calib-samples",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Training samples used to initialize the quantizers.",
)
def qat(model, data_path, out_dir, epochs, bits, per_tensor, fixed_ranges, learning_rate, batch_size, calib_samples):
    """Quantization-aware training: DIR/model_int8.tflite, then `tinyq build` it."""
    from pathlib import Path

    from tinyq import qat as tq_qat
    from tinyq.data import load_dataset
    from tinyq.exporters.tflite import save_tflite
    from tinyq.importers import load_float_model
    from tinyq.quant import parse_config

    if parse_config("mse", bits, per_tensor).weights_auto:  # validates --bits before the long work
        raise TinyqError("qat trains at one precision: give --bits w8a8, w4a8, ... (auto is for quantize and build)")
    fm = load_float_model(model)
    data = load_dataset(data_path, fm.graph, what="training data")
    if data.y is None:
        raise TinyqError(f"training data {data_path} has no labels: add an array 'y' to the .npz")
    qat_model = tq_qat.prepare(
        fm, data.x[:calib_samples], bits=bits, per_channel=not per_tensor, learnable=not fixed_ranges
    )
    losses = tq_qat.fit(qat_model, data.x, data.y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_tflite(tq_qat.convert(qat_model), out / "model_int8.tflite")
    report = {
        "model": str(model),
        "bits": bits,
        "per_channel": not per_tensor,
        "learnable": not fixed_ranges,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "losses": losses,
    }
    (out / "qat_report.json").write_text(json.dumps(report, indent=1) + "\n")
    console.print(
        f"trained {epochs} epochs (loss {losses[0]:.4f} -> {losses[-1]:.4f}); wrote "
        f"{out / 'model_int8.tflite'} (deploy with: tinyq build {out / 'model_int8.tflite'} --board ...)"
    )
    emit(report)


def quant_layers(deploy) -> list[dict]:
    graph, sqnr = deploy.graph, deploy.quant.sqnr_db or {}
    return [
        {
            "name": op.name,
            "type": op.kind,
            "output": op.outputs[0],
            "dtype": graph[op.outputs[0]].dtype,
            "scale": graph[op.outputs[0]].qparams.s,
            "zero_point": graph[op.outputs[0]].qparams.zp,
            "sqnr_db": sqnr.get(op.outputs[0]),
        }
        for op in graph.ops
    ]


@cli.command(name="eval")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data_path", required=True, type=click.Path(), help="Labelled data: .npz with x and y.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the results here.")
@quant_options
def evaluate(model, data_path, json_out, calib, calib_samples, algo, bits, per_tensor, percentile, a16, encodings):
    """Float vs quantized accuracy of MODEL, the quantized one on the deployed integer arithmetic
    (the generated C compiled for this machine, or the numpy reference for a few samples)."""
    from pathlib import Path

    from tinyq.data import load_dataset
    from tinyq.pipeline import is_float_source
    from tinyq.quant.evaluate import evaluate as run_eval

    if calib is None and encodings is None and is_float_source(model):
        calib = data_path
        note(f"note: calibrating on the first {calib_samples} samples of --data (pass --calib to use separate data)")
    deploy, _ = _deployable(
        model, calib, calib_samples, algo, bits, per_tensor, percentile, a16, encodings, report_sqnr=False
    )
    data = load_dataset(data_path, deploy.float_graph or deploy.graph, what="data")
    result = run_eval(deploy.float_graph, deploy.graph, data)
    result |= {"algo": deploy.quant.algo, "bits": deploy.quant.bits}
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"eval {Path(model).name} on {result['samples']:,} samples ({result['evaluator']})")
    table = Table(show_header=False)
    table.add_column()
    table.add_column(justify="right")
    for key in ("float_accuracy", "quantized_accuracy", "agreement"):
        if result.get(key) is not None:
            table.add_row(key, f"{100 * result[key]:.2f}%")
    if "output_sqnr_db" in result:
        table.add_row("output SQNR", f"{result['output_sqnr_db']:.1f} dB")
    console.print(table)
    emit(result)


@cli.command()
@click.argument("build_dir", type=click.Path(file_okay=False))
@click.option("--emulate", is_flag=True, help="Run an emulated board's firmware in QEMU.")
@click.option("--port", help="Serial port or pyserial URL of a real board (/dev/ttyACM0, socket://h:p, rfc2217://...).")
@click.option("--baud", type=int, help="Baud rate (default: the board's).")
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False),
    help="Input .npy (.npz for several inputs), int8 or float (quantized as TFLite does); "
    "default: a fixed byte pattern.",
)
@click.option(
    "--sequence",
    "sequence_path",
    type=click.Path(dir_okay=False),
    help="A streaming build's sequence (.npy, time x features): reset, then one frame per call, each checked.",
)
@click.option("--runs", default=1, show_default=True, type=click.IntRange(1, 100000), help="Inferences to run.")
@click.option("--profile", is_flag=True, help="Also measure every layer.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the bench section here.")
def bench(
    build_dir: str,
    emulate: bool,
    port: str | None,
    baud: int | None,
    input_path: str | None,
    sequence_path: str | None,
    runs: int,
    profile: bool,
    json_out: str | None,
) -> None:
    """Run a build on one input, measure it, check it bit-exact against the integer reference."""
    from pathlib import Path

    from tinyq.bench import bench as run_bench

    result = run_bench(
        Path(build_dir),
        input_path=Path(input_path) if input_path else None,
        sequence_path=Path(sequence_path) if sequence_path else None,
        runs=runs,
        emulate=emulate,
        port=port,
        baud=baud,
        profile=profile,
    )
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1) + "\n")
    print_bench(result)
    emit(result)
    if not result["bit_exact"]:
        raise TinyqError("outputs differ from the integer reference (bit_exact: false)")


@cli.command()
@click.argument("build_dir", type=click.Path(file_okay=False))
@click.option("--port", "upload_port", help="Upload port (default: PlatformIO's detection).")
def flash(build_dir: str, upload_port: str | None) -> None:
    """Upload a build's firmware to its board with PlatformIO."""
    from pathlib import Path

    from tinyq.flash import flash as run_flash

    run_flash(Path(build_dir), upload_port)
    console.print(f"flashed {build_dir}", soft_wrap=True)
    emit({"flashed": build_dir})


def print_bench(result: dict) -> None:
    rows = [("target", result["target"]), ("runs", str(result["runs"]))]
    if "instructions" in result:
        rows += [
            ("instructions / inference", f"{result['instructions']:,}"),
            ("instructions / MAC", f"{result['instructions_per_mac']:.2f}"),
            ("identical every run", str(result["instructions_all_runs_equal"]).lower()),
        ]
    if "instructions_per_frame" in result:
        frames = result["instructions_per_frame"]
        rows.append(("instructions / frame", f"{min(frames):,} .. {max(frames):,} over {len(frames)} frames"))
    if "cycles" in result:
        rows += [("cycles / inference", f"{result['cycles']:,}"), ("cycles / MAC", f"{result['cycles_per_mac']:.2f}")]
    if "latency_ms" in result:
        rows.append(("latency", f"{result['latency_ms']:.3f} ms"))
    if "energy_uj" in result:
        rows.append(("energy", f"{result['energy_uj']:.1f} uJ ({result['energy_source']})"))
    verdict = "[green]true[/]" if result["bit_exact"] else "[bold red]false[/]"
    rows.append(("bit_exact", verdict))
    table = Table(show_header=False, title="bench", title_justify="left")
    table.add_column(justify="left")
    table.add_column(justify="right")
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if "per_layer" in result:
        unit = "instructions" if "instructions" in result["per_layer"][0] else "cycles"
        layers = Table(title=f"per layer ({unit})", title_justify="left")
        for col, justify in (("#", "right"), ("op", "left"), ("layer", "left"), (unit, "right"), ("share", "right")):
            layers.add_column(col, justify=justify)
        total = sum(layer[unit] for layer in result["per_layer"]) or 1
        for i, layer in enumerate(result["per_layer"]):
            layers.add_row(
                str(i), layer["type"], layer["name"], f"{layer[unit]:,}", f"{100 * layer[unit] / total:.1f}%"
            )
        console.print(layers)


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="tinyq", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except TinyqError as err:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as err:  # a bug: say so in one line, the traceback is behind --debug
        if debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(err).__name__}: {err} (run with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
