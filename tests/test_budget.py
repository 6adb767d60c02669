"""RAM and flash budgets: the overshoot and the layers responsible, exit code 2."""

from __future__ import annotations

import json

import pytest

from tinyq import ir
from tinyq.boards import get_board
from tinyq.budget import BudgetError, parse_size
from tinyq.build import build
from tinyq.ops.quantize import Quantize

from support.cli import tinyq
from support.env import require_tool


@pytest.mark.parametrize(
    "text, size", [("4096", 4096), ("256K", 262144), ("256kb", 262144), ("1M", 1 << 20), (" 2 MiB ", 2 << 20)]
)
def test_sizes_parse(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "12Q", "-5", "1.5M", "K"])
def test_bad_sizes_are_clear_errors(text):
    with pytest.raises(Exception, match="cannot read the size"):
        parse_size(text)


def test_ram_budget_names_the_overshoot_and_the_buffers_at_the_peak(mlperf_model, tmp_path):
    result = tinyq("build", mlperf_model("kws"), "--board", "host", "--max-ram", "4K", "-o", tmp_path / "b")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    report = json.loads((tmp_path / "b" / "report.json").read_text())  # written, to see why
    over = report["memory"]["arena_bytes"] - 4096
    assert f"{over:,} over the 4,096-byte budget (--max-ram)" in result.stderr
    assert "the arena holds" in result.stderr and "conv_2d" in result.stderr


def test_flash_budget_names_the_largest_weights(mlperf_model, tmp_path):
    result = tinyq("build", mlperf_model("ad"), "--board", "host", "--max-flash", "100K", "-o", tmp_path / "b")
    assert result.returncode == 2 and "(--max-flash)" in result.stderr
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    largest = max(report["ops"], key=lambda op: op["weights_bytes"])
    assert f"largest weights: {largest['name']} {largest['weights_bytes']:,} B" in result.stderr


def test_board_memory_is_the_default_budget(tmp_path):
    """An activation bigger than the STM32F405's RAM fails before compiling."""
    q = ir.QParams.per_tensor
    x = ir.Tensor("x", (1, 128, 128, 16), "int8", q(0.05, 0))
    y = ir.Tensor("y", (1, 128, 128, 16), "int8", q(0.05, 0))
    graph = ir.verify(ir.Graph("big", {"x": x, "y": y}, (ir.Op("relu", Quantize(), ("x",), ("y",)),), ("x",), ("y",)))
    board = get_board("netduinoplus2")
    ram = board.section("memory")["ram_bytes"]
    assert ram < x.nbytes
    with pytest.raises(BudgetError, match=rf"{x.nbytes - ram:,} over the {ram:,}-byte budget \(--max-ram\)"):
        build(graph, board, tmp_path / "b", source="big", compile=False)


def test_int16_activations_count_two_bytes_before_calibration(tmp_path):
    """A float model whose largest layer fits the RAM at int8 but not at int16 fails at w8a16,
    before its calibration data is read (the path given here does not exist)."""
    import keras

    x = keras.Input((16, 16, 4), batch_size=1)
    keras.Model(x, keras.layers.Conv2D(4, 3, padding="same")(x)).save(tmp_path / "m.keras")
    need = 2 * 16 * 16 * 4  # input and output, one byte each
    args = [
        "build",
        tmp_path / "m.keras",
        "--board",
        "host",
        "--max-ram",
        str(need + 100),
        "--calib",
        tmp_path / "none.npz",
    ]
    assert "alone must hold its int16 input and output" in tinyq(*args, "--bits", "w8a16", "-o", tmp_path / "a").stderr
    assert "none.npz" in tinyq(*args, "-o", tmp_path / "b").stderr  # at int8 it fits: the missing data is next


def test_firmware_flash_is_checked_after_linking(mlperf_model, tmp_path):
    """Constants fit, the linked firmware (code included) does not."""
    require_tool("arm-none-eabi-gcc")
    from tinyq.importers.tflite import load_tflite

    graph = load_tflite(mlperf_model("kws"))
    first = build(graph, get_board("mps2_an386"), tmp_path / "a", source="kws", log=lambda m: None)
    budget = first.memory.weights_bytes + 1000
    assert first.memory.flash_bytes > budget
    with pytest.raises(BudgetError, match="the firmware's flash needs"):
        build(graph, get_board("mps2_an386"), tmp_path / "b", source="kws", log=lambda m: None, max_flash=budget)
    assert first.memory.budget.max_flash == 4 * 1024 * 1024
