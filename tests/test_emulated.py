"""Firmware in QEMU: MLPerf Tiny models on emulated Cortex-M4 and M7, over the serial link."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.importers.tflite import load_tflite
from tinyq.target.qemu import Emulator

from support.env import require_tool
from support.tflm import tflm_outputs


@pytest.fixture(scope="module", autouse=True)
def tools():
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cc"):
        require_tool(tool)


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500"])
@pytest.mark.parametrize("key", ["kws", "ic", "ad"])
def test_mlperf_in_qemu_bit_exact_and_deterministic(key, board, builds, anchors, mlperf_model, tmp_path):
    out, report = builds(key, board)
    assert report.firmware.builder == "pio"  # the local dev-platform builds offline
    assert report.memory.flash_bytes > report.memory.weights_bytes
    first = bench(out, emulate=True, runs=2)
    assert first["bit_exact"] and first["instructions_all_runs_equal"]
    assert first["outputs"][0] == anchors["models"][key]["output_int8"]
    graph = load_tflite(out / "model_int8.tflite")
    x = np.random.default_rng(1).integers(-128, 128, graph[graph.inputs[0]].shape).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    second = bench(out, emulate=True, input_path=tmp_path / "x.npy")
    expected = tflm_outputs(mlperf_model(key).read_bytes(), [x], 1)[0]
    assert second["bit_exact"] and second["outputs"][0] == expected.reshape(-1).tolist()
    third = bench(out, emulate=True)
    assert third["instructions"] == first["instructions"]  # the same input counts the same in every session


def test_instruction_count_matches_the_icount_timer(builds):
    """Plugin count vs the board timer under -icount (1 instruction = 1 ns)."""
    for board in ("mps2_an386", "netduinoplus2"):
        out, _ = builds("ad", board)
        result = bench(out, emulate=True)
        hz = {"mps2_an386": 25e6, "netduinoplus2": 1e9}[board]
        # the timer is read a few instructions inside the plugin's markers
        assert abs(result["counter_ticks"] - result["counter_ticks_expected"]) <= 1 + 40 * hz / 1e9


def test_profile_accounts_for_every_layer(builds):
    out, report = builds("kws", "mps2_an386")
    result = bench(out, emulate=True, profile=True)
    layers = result["per_layer"]
    assert [layer["name"] for layer in layers] == [op.name for op in report.ops]
    total = sum(layer["instructions"] for layer in layers)
    assert abs(result["instructions"] - total) < 60 * len(layers)  # call and marker overhead only
    convs = [(op.macs, layer["instructions"]) for op, layer in zip(report.ops, layers) if op.type == "CONV_2D"]
    assert max(convs)[1] == max(count for _, count in convs)  # the convolution with the most MACs costs most


def test_mlperf_runner_dialect(builds, anchors):
    """The EEMBC / MLPerf Tiny runner's ASCII commands drive the same firmware."""
    import time

    out, report = builds("ad", "mps2_an386")
    data = bytes((i * 7 + 3) % 256 for i in range(640))

    def command(port, text, seconds=20.0):
        port.write(text.encode())
        reply, deadline = b"", time.monotonic() + seconds
        while not reply.endswith(b"m-ready\r\n") and time.monotonic() < deadline:
            reply += port.read(4096)
        return reply.decode()

    with Emulator(
        get_board("mps2_an386"), out / report.firmware.elf, out / "emulator_eembc", count_instructions=False
    ) as emu:
        time.sleep(0.5)
        emu.serial.read(4096)  # the boot banner (unless pyserial dropped it on connect)
        assert "m-name-dut-[tinyq mps2_an386]" in command(emu.serial, "name%")
        assert "m-[Expecting 640 bytes]" in command(emu.serial, "db load 640%")
        replies = [command(emu.serial, f"db {data[i : i + 200].hex()}%") for i in range(0, 640, 200)]
        assert "m-load-done" in replies[-1]
        reply = command(emu.serial, "infer 2 1%")
        laps = [int(line.split("-")[-1]) for line in reply.split() if line.startswith("m-lap-us-")]
        assert len(laps) == 2 and laps[1] > laps[0]
        results = reply.split("m-results-[")[1].split("]")[0]
        assert [int(v) for v in results.split(",")] == anchors["models"]["ad"]["output_int8"]
        assert "e-[Unknown command: bogus]" in command(emu.serial, "bogus%")


def test_int4_weights_in_qemu(tmp_path):
    """A W4A8 model: weights packed two per byte, unpacked by the kernels, bit-exact in QEMU."""
    import keras

    from tinyq.data import Dataset
    from tinyq.importers.keras import load_float_keras
    from tinyq.quant import parse_config, quantize

    from support import keras_models

    keras_models.build(keras, "separable_conv").save(tmp_path / "m.keras")
    fm = load_float_keras(tmp_path / "m.keras")
    calib = Dataset(np.random.default_rng(0).normal(0, 1, (64, 8, 8, 4)).astype(np.float32))
    sizes = {}
    for bits in ("w8a8", "w4a8"):
        graph = quantize(fm, calib, parse_config("mse", bits), quiet=True).graph
        report = build(graph, get_board("mps2_an386"), tmp_path / bits, source="m", log=lambda m: None)
        result = bench(tmp_path / bits, emulate=True)
        assert result["bit_exact"], bits
        sizes[bits] = sum(graph[op.inputs[1]].nbytes for op in graph.ops)
        assert report.memory.flash_bytes > 0
    assert sizes["w4a8"] * 2 - sizes["w8a8"] <= 2  # half, up to the odd-length padding byte
