"""Serial fault injection in emulation: a faulty line between the host and QEMU's UART.

Flipped, dropped and delayed bytes in either direction and a board reset in the
middle of a transfer are retried and end in the reference's exact answer; faults
that never stop end in one clear error within a bounded time, never a hang.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import serial

from tinyq import ref
from tinyq.boards import get_board
from tinyq.errors import TinyqError
from tinyq.importers.tflite import load_tflite
from tinyq.target.device import Device
from tinyq.target.link import Link
from tinyq.target.qemu import Emulator

from support.cli import assert_clean_error, tinyq
from support.env import require_tool
from support.fault_line import TO_DEVICE, TO_HOST, Fault, FaultyLine

RECOVERABLE = {
    "flipped replies": Fault("flip", TO_HOST, every=97, budget=5),
    "dropped reply bytes": Fault("drop", TO_HOST, every=101, budget=4),
    "flipped requests": Fault("flip", TO_DEVICE, every=89, budget=4),
    "dropped request bytes": Fault("drop", TO_DEVICE, every=89, budget=3),
    "replies held past the timeout": Fault("delay", TO_HOST, every=150, budget=3, seconds=1.0),
    "requests held past the timeout": Fault("delay", TO_DEVICE, every=400, budget=2, seconds=1.0),
    "reset during LOAD": Fault("reset", TO_DEVICE, every=300, budget=1),
}
ENDLESS = {
    "line noise": (Fault("flip", TO_HOST, every=5, budget=-1), r"INFO got .* after 4 tries"),
    "dead line": (Fault("drop", TO_HOST, every=1, budget=-1), r"INFO got no reply within 0.5 s after 4 tries"),
    # at least two resets seen: the banner of the last one may arrive after the final try's timeout
    "board keeps resetting": (Fault("reset", TO_DEVICE, every=300, budget=-1), r"LOAD .* device reset [2-9] times"),
}


@pytest.fixture(scope="module")
def firmware(builds):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cc"):
        require_tool(tool)
    out, report = builds("ad", "mps2_an386")
    graph = load_tflite(out / "model_int8.tflite")
    x = np.random.default_rng(5).integers(-128, 128, graph[graph.inputs[0]].shape).astype(np.int8)
    return out, report, x, ref.outputs(graph, [x])[0].tobytes()


def emulator(out, report, workdir) -> Emulator:
    return Emulator(
        get_board("mps2_an386"), out / report.firmware.elf, workdir, count_instructions=False, resettable=True
    )


def through(emu: Emulator, fault: Fault) -> FaultyLine:
    """Put a faulty line between the host and QEMU's UART (the emulator's own connection is closed)."""
    emu.serial.close()
    emu.serial = None
    return FaultyLine(emu.port, fault, on_reset=emu.reset)


def infer(device: Device, x: np.ndarray, size: int) -> bytes:
    device.load(x.tobytes())
    device.invoke(1, timeout=3)
    return device.read(size)


@pytest.mark.parametrize("name", RECOVERABLE)
def test_faults_are_retried_and_the_answer_is_exact(name, firmware, tmp_path):
    out, report, x, expected = firmware
    fault = RECOVERABLE[name]
    with emulator(out, report, tmp_path) as emu:
        line = through(emu, fault)
        link = Link(serial.serial_for_url(line.url, timeout=0.05), timeout=0.5, retries=6)
        device = Device(link)
        assert device.info()["model"] == report.model.hash
        boots = link.stats.boots  # the power-up banner, if pyserial kept it
        assert infer(device, x, len(expected)) == expected
    assert line.injected == fault.budget  # every planned fault happened
    if fault.kind == "reset":
        assert link.stats.boots == boots + 1  # the reset we caused was noticed
    else:
        assert link.stats.retries > 0


@pytest.mark.parametrize("name", ENDLESS)
def test_endless_faults_end_in_one_clear_error(name, firmware, tmp_path):
    out, report, x, expected = firmware
    fault, message = ENDLESS[name]
    with emulator(out, report, tmp_path) as emu:
        line = through(emu, fault)
        link = Link(serial.serial_for_url(line.url, timeout=0.05), timeout=0.5, retries=3)
        device = Device(link)
        start = time.monotonic()
        with pytest.raises(TinyqError, match=message):
            device.info()
            infer(device, x, len(expected))
        assert time.monotonic() - start < 60


def test_bench_over_a_noisy_port_is_one_line_exit_2(firmware, tmp_path):
    out, report, _, _ = firmware
    with emulator(out, report, tmp_path) as emu:
        line = through(emu, Fault("flip", TO_HOST, every=3, budget=-1))
        result = tinyq("bench", out, "--port", line.url)
    assert_clean_error(result, "serial link failed")


def test_missing_serial_port_is_one_line_exit_2(firmware, tmp_path):
    out, _, _, _ = firmware
    assert_clean_error(tinyq("bench", out, "--port", tmp_path / "ttyACM9"), "cannot open serial port")
