"""`--bits auto`: int8 or int4 weights per layer for a flash budget or an accuracy target.

Sizes are checked against the constants codegen emits for the uniform W8A8 and W4A8 builds;
accuracy against the integer reference run here on the labelled data; the mixed graphs deploy
bit-exact (host C and TFLM equal to the reference, and in QEMU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_mixed_precision import assert_deploys_bit_exact
from test_quantize import calibration, float_model

from tinyq import codegen, ref
from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.data import Dataset, quantize_input
from tinyq.quant import parse_config, quantize
from tinyq.quant.bitsearch import Goal
from tinyq.sim import FloatRunner

from support import keras_models
from support.cli import assert_clean_error, tinyq
from support.env import require_tool


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import keras

    return float_model(keras, "small_cnn", tmp_path_factory.mktemp("bits"))


@pytest.fixture(scope="module")
def sizes(model):
    """Constant bytes of the uniform int8 and int4 deployments, as codegen emits them."""
    calib = calibration(model)
    return {
        bits: codegen.generate(quantize(model, calib, parse_config("mse", bits), quiet=True).graph).weights_bytes
        for bits in ("w8a8", "w4a8")
    }


def int4_layers(graph) -> set[str]:
    return {op.name for op in graph.ops if len(op.inputs) > 1 and graph[op.inputs[1]].dtype == "int4"}


def auto(model, goal: Goal, **config):
    return quantize(model, calibration(model), parse_config("mse", "auto", **config), quiet=True, goal=goal)


def accuracy(graph, data: Dataset) -> float:
    t = graph[graph.inputs[0]]
    xq = quantize_input(data.x, t.qparams.s, t.qparams.zp, t.dtype).reshape((len(data.x),) + t.shape)
    out = ref.outputs(graph, [xq], batched=True)[0]
    return float(np.mean(np.argmax(out.reshape(len(out), -1), axis=1) == data.y))


@pytest.mark.parametrize("share", [1.0, 0.75, 0.6])
def test_a_budget_between_int8_and_int4_is_met_with_int4_where_needed(model, sizes, share, tmp_path):
    budget = sizes["w4a8"] + int(share * (sizes["w8a8"] - sizes["w4a8"]))
    result = auto(model, Goal(max_flash=budget))
    graph = result.graph
    assert sizes["w4a8"] <= codegen.generate(graph).weights_bytes <= budget
    low = int4_layers(graph)
    assert low == set(result.bits_choice.low)
    assert (not low) if share == 1.0 else (0 < len(low) < 4)
    assert {row.name for row in result.bits_choice.table if row.weight_bits == 4} == low
    curve = result.bits_choice.curve
    assert curve[0].low == () and len(curve[-1].low) == 4  # all int8 ... all int4, by falling size
    assert [p.constant_bytes for p in curve] == sorted((p.constant_bytes for p in curve), reverse=True)
    if share < 1.0:
        assert_deploys_bit_exact(graph, tmp_path)


def test_the_choice_is_deterministic(model, sizes):
    goal = Goal(max_flash=(sizes["w8a8"] + sizes["w4a8"]) // 2)
    first, second = auto(model, goal), auto(model, goal)
    assert first.bits_choice == second.bits_choice
    assert all(
        np.array_equal(first.graph[name].data, second.graph[name].data)
        for name, t in first.graph.tensors.items()
        if t.is_constant
    )


def test_an_accuracy_target_takes_the_smallest_measured_point_that_meets_it(model):
    x = np.random.default_rng(5).normal(0, 1, (300,) + model.graph[model.graph.inputs[0]].shape[1:])
    x = x.astype(np.float32)
    labels = np.argmax(FloatRunner(model.graph).outputs([x])[0].reshape(len(x), -1), axis=1)
    data = Dataset(x, labels)  # float's accuracy is 100 %
    result = auto(model, Goal(max_drop=3.0, data=data))
    chosen = accuracy(result.graph, data)
    assert chosen >= 0.97
    smaller = [p for p in result.bits_choice.curve if p.constant_bytes < codegen.generate(result.graph).weights_bytes]
    assert all(p.accuracy < 0.97 for p in smaller)
    point = next(p for p in result.bits_choice.curve if set(p.low) == int4_layers(result.graph))
    assert point.accuracy == chosen  # the curve's accuracy is the reference's
    curve = {p.low: p for p in result.bits_choice.curve}
    single = next(p for p in curve.values() if len(p.low) == 1)  # the cheapest layer, alone at int4
    row = next(r for r in result.bits_choice.table if r.name == single.low[0])
    assert row.accuracy_drop == pytest.approx(100 * (curve[()].accuracy - single.accuracy))


def test_int16_layers_keep_int8_weights(model, sizes):
    dense = model.graph.ops[-2].name  # the dense before the softmax: 16x8 takes int8 weights
    assert model.graph.ops[-2].kind == "FULLY_CONNECTED"
    result = auto(model, Goal(max_flash=sizes["w4a8"] + 64), a16=dense)
    row = next(r for r in result.bits_choice.table if r.name == dense)
    assert (row.weight_bits, row.activation_bits, row.sensitivity_db) == (8, 16, None)
    assert dense not in int4_layers(result.graph) and len(int4_layers(result.graph)) == 3


def test_a_budget_nothing_meets_fails_naming_the_smallest_size(model, sizes, tmp_path):
    model_path = tmp_path / "m.keras"
    import keras

    keras_models.build(keras, "small_cnn").save(model_path)
    np.savez(tmp_path / "calib.npz", x=calibration(model).x)
    budget = sizes["w4a8"] - 1
    args = ("quantize", model_path, "--calib", tmp_path / "calib.npz", "--bits", "auto", "-o", tmp_path / "q")
    result = tinyq(*args, "--max-flash", budget)
    assert_clean_error(result, f"at least {sizes['w4a8']:,} bytes", "every layer int4", f"{budget:,}-byte budget")


def test_the_arena_counts_too(model, sizes):
    """int4 kernels' scratch may grow the arena: every choice is checked against --max-ram, and
    a RAM budget under the smallest arena any choice has fails naming it."""
    from tinyq.budget import BudgetError
    from tinyq.codegen.lower import choose_kernels
    from tinyq.plan import plan_graph

    result = auto(model, Goal(max_flash=(sizes["w8a8"] + sizes["w4a8"]) // 2))
    arenas = {p.low: p.arena_bytes for p in result.bits_choice.curve}
    graph = result.graph
    assert plan_graph(graph, choose_kernels(graph)).arena_bytes == arenas[tuple(sorted(result.bits_choice.low))]
    with pytest.raises(BudgetError, match=f"arena needs at least {min(arenas.values()):,} bytes"):
        auto(model, Goal(max_flash=sizes["w8a8"], max_ram=min(arenas.values()) - 1))


def test_goal_errors_are_one_line(model, tmp_path):
    import keras

    keras_models.build(keras, "small_cnn").save(tmp_path / "m.keras")
    np.savez(tmp_path / "calib.npz", x=calibration(model).x)
    base = ("quantize", tmp_path / "m.keras", "--calib", tmp_path / "calib.npz", "-o", tmp_path / "q")
    assert_clean_error(tinyq(*base, "--bits", "auto"), "needs a goal")
    assert_clean_error(tinyq(*base, "--max-drop", "1"), "need --bits auto")
    assert_clean_error(tinyq(*base, "--bits", "auto", "--max-drop", "1"), "give --data with labels")


def test_cli_prints_the_table_and_the_report_plots_the_curve(model, sizes, tmp_path):
    import keras

    keras_models.build(keras, "small_cnn").save(tmp_path / "m.keras")
    np.savez(tmp_path / "calib.npz", x=calibration(model).x)
    budget = (sizes["w8a8"] + sizes["w4a8"]) // 2
    args = ("build", tmp_path / "m.keras", "--board", "mps2_an386", "--calib", tmp_path / "calib.npz")
    result = tinyq(*args, "--bits", "auto", "--max-flash", budget, "--no-compile", "-o", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert "--bits auto" in result.stdout and "dB lost" in result.stdout and "int4" in result.stdout
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["quant"]["bits"] == "w8a8+w4"
    assert len(report["quant"]["layer_bits"]) == 4 and len(report["quant"]["bits_curve"]) >= 5
    assert (tmp_path / "b" / "plots" / "bits.png").stat().st_size > 0
    assert "bits.png" in (tmp_path / "b" / "report.html").read_text()


def test_a_mixed_choice_runs_bit_exact_in_qemu(model, sizes, tmp_path):
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    result = auto(model, Goal(max_flash=(sizes["w8a8"] + sizes["w4a8"]) // 2))
    assert 0 < len(int4_layers(result.graph)) < 4
    build(result.graph, get_board("mps2_an386"), tmp_path / "b", source="m", log=lambda m: None)
    assert bench(tmp_path / "b", emulate=True)["bit_exact"]
