"""The docs match the code: the CLI reference lists exactly `--help`'s options, and
the tutorial's commands run as written (its board-only steps: the build runs,
flashing and the serial bench need a board)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tinyq import catalog, ops
from tinyq.cli import cli

from support.cli import tinyq
from support.env import require, require_tool

DOCS = Path(__file__).resolve().parent.parent / "docs"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def documented_options(text: str) -> dict[str, set[str]]:
    """Section heading's command -> the options in the first column of its table(s)."""
    shared = set(re.findall(r"^\| `(--[\w-]+)", text.split("## Quantization options")[1].split("\n## ")[0], re.M))
    result = {}
    for section in text.split("\n## ")[1:]:
        title = section.splitlines()[0]
        if title == "Global options":
            command = ""
        elif match := re.match(r"`tinyq (\w+)", title):
            command = match.group(1)
        else:
            continue
        rows = re.findall(r"^\| (.+?) \|", section, re.M)
        options = {o for row in rows for o in re.findall(r"`(-{1,2}[\w-]+)", row)}
        if any(row == "quantization options" for row in rows):
            options |= shared
        result[command] = options
    return result


def actual_options(command) -> set[str]:
    """The command's own options (click adds -h/--help to each; the reference lists them once, globally)."""
    return {o for param in command.params for o in (*param.opts, *param.secondary_opts) if o.startswith("-")}


def test_cli_reference_lists_exactly_the_options_help_shows():
    documented = documented_options((DOCS / "cli.md").read_text())
    assert set(documented) == {""} | set(cli.commands)
    assert documented[""] == actual_options(cli) | {"-h", "--help"}
    for name, command in cli.commands.items():
        assert documented[name] == actual_options(command), name


def test_operators_page_is_generated_from_the_registry():
    assert (DOCS / "operators.md").read_text() == catalog.markdown(), (
        "regenerate: tinyq ops --markdown > docs/operators.md"
    )


def test_the_tflm_operator_list_is_the_pinned_tflm():
    """catalog.TFLM_BUILTINS: the builtin operators the installed tflite-micro registers."""
    import tflite_micro
    from tflite.BuiltinOperator import BuiltinOperator

    library = next(Path(tflite_micro.__file__).parent.rglob("_runtime*.so"))
    symbols = subprocess.run([require_tool("nm"), "-C", str(library)], capture_output=True, text=True).stdout
    registered = set(re.findall(r"Register_([A-Z0-9_]+)\(\)", symbols))
    assert sorted(catalog.TFLM_BUILTINS) == sorted(n for n in registered if hasattr(BuiltinOperator, n))


def test_adding_an_op_names_every_facet_of_the_registry():
    """docs/adding-an-op.md's table lists every member an op module can define, and nothing else."""
    text = (DOCS / "adding-an-op.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    members = {name for name in vars(ops.OpDef) if not name.startswith("_")} - {"implements", "supported"}
    assert documented == members | {"attrs", "name"}


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def test_tutorial_runs_as_written(tmp_path):
    require(FASHION.is_dir(), f"{FASHION} (apt-get install dataset-fashion-mnist)")
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cc"):
        require_tool(tool)
    text = (DOCS / "tutorial.md").read_text()
    (script,) = blocks(text, "python")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    commands = [line for block in blocks(text, "sh") for line in block.splitlines() if line.strip()]
    assert len(commands) == 5 and all(c.startswith("tinyq ") for c in commands)
    for command in commands:
        result = tinyq(*shlex.split(command)[1:], cwd=tmp_path)
        assert result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
    assert "bit_exact" in result.stdout and "true" in result.stdout.split("bit_exact")[1].splitlines()[0]
    report = json.loads((tmp_path / "fw" / "report.json").read_text())
    assert report["bench"]["bit_exact"] and len(report["bench"]["per_layer"]) == len(report["ops"])
    assert (tmp_path / "fw" / "report.html").exists()
    # the board section: its build runs here (offline, with arm-none-eabi-gcc); flash and bench need the board
    board_lines = [line for block in blocks(text, "text") for line in block.splitlines() if line.startswith("tinyq")]
    (build,) = [line for line in board_lines if line.startswith("tinyq build")]
    assert {line.split()[1] for line in board_lines} == {"build", "flash", "bench"}
    result = tinyq(*shlex.split(build)[1:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "fw_nucleo" / "report.json").read_text())["board"] == "nucleo_f746zg"
