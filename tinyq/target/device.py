"""A tinyq firmware on the other end of a serial link: load, invoke, read, profile; and the
bench of a real board over its serial port (cycles from its counter, latency and energy from
the board file)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tinyq.errors import TinyqError
from tinyq.target.link import MAX_PAYLOAD, Link

INFO, LOAD, INVOKE, READ, PROFILE, RESET = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
CHUNK = MAX_PAYLOAD - 8


@dataclass(frozen=True)
class Invocation:
    status: int
    runs: int
    total_ticks: int
    last_ticks: int


class Device:
    def __init__(self, link: Link):
        self.link = link
        self._input = b""
        self._boots_seen = link.stats.boots

    def info(self) -> dict[str, str]:
        text = self.link.request(INFO).decode(errors="replace")
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def load(self, data: bytes) -> None:
        """Stage the input; start over if the device resets part-way (it forgets what it had)."""
        for _ in range(3):
            before = self.link.stats.boots
            for offset in range(0, len(data), CHUNK):
                self.link.request(LOAD, struct.pack("<I", offset) + data[offset : offset + CHUNK])
            if self.link.stats.boots == before:
                self._input = data
                self._boots_seen = before
                return
        raise TinyqError("the device keeps resetting while the input is loaded")

    def _reloaded_after_reset(self) -> bool:
        if self.link.stats.boots == self._boots_seen:
            return False
        self.load(self._input)  # a reset wiped the staged input
        return True

    def invoke(self, runs: int = 1, timeout: float = 60.0) -> Invocation:
        for _ in range(2):
            self._reloaded_after_reset()
            reply = self.link.request(INVOKE, struct.pack("<I", runs), timeout=timeout)
            if self.link.stats.boots == self._boots_seen:
                status, count, lo, hi, last = struct.unpack("<iIIII", reply[:20])
                if status != 0:
                    raise TinyqError(f"the model failed on the device in layer {-status - 1}")
                return Invocation(status, count, lo | hi << 32, last)
        raise TinyqError("the device keeps resetting during inference (power, stack overflow or a fault?)")

    def read(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            count = min(CHUNK, size - len(data))
            data += self.link.request(READ, struct.pack("<IH", len(data), count))
        if self.link.stats.boots != self._boots_seen:
            raise TinyqError("the device reset while outputs were read; its outputs are lost")
        return bytes(data)

    def stream(self, frames: tuple[bytes, ...], out_size: int, timeout: float) -> tuple[list[Invocation], bytes]:
        """RESET, then each frame loaded, invoked once and its outputs read: a streaming build's
        sequence. A device reset part-way loses the state, so it fails the run."""
        boots = self.link.stats.boots
        self.link.request(RESET)
        invocations, outputs = [], bytearray()
        for frame in frames:
            self.load(frame)
            invocations.append(self.invoke(1, timeout=timeout))
            outputs += self.read(out_size)
        if self.link.stats.boots != boots:
            raise TinyqError("the device reset during the sequence: its recurrent state is lost")
        return invocations, bytes(outputs)

    def profile(self, layers: int, timeout: float = 60.0) -> list[int]:
        ticks: list[int] = []
        self._reloaded_after_reset()
        while len(ticks) < layers:
            reply = self.link.request(PROFILE, struct.pack("<H", len(ticks)), timeout=timeout)
            status, first = struct.unpack("<iH", reply[:6])
            if status != 0:
                raise TinyqError(f"the model failed on the device in layer {-status - 1}")
            values = struct.unpack(f"<{(len(reply) - 6) // 4}I", reply[6:])
            ticks += values[: layers - len(ticks)]
        return ticks


def invoke_timeout(report, runs: int) -> float:
    """Generous: slow portable kernels in a slow emulator, or a 4 MHz board."""
    return 30.0 + runs * report.model.macs * 60 / 20e6


def run_session(device: Device, report, session, profile: bool):
    """INFO (the board must run this build), LOAD, INVOKE, READ and optionally PROFILE (or a
    streaming build's frames): (info, last invocation, output bytes, per-layer ticks or None)."""
    info = device.info()
    if info.get("model") != report.model.hash:
        raise TinyqError(
            f"the board runs model {info.get('model')!r}, this build is {report.model.hash!r}: "
            "flash this build first (tinyq flash)"
        )
    timeout = invoke_timeout(report, session.runs)
    if session.frames:
        invocations, raw = device.stream(session.frames, session.out_size, timeout)
        return info, invocations[-1], raw, None
    device.load(session.packed)
    invocation = device.invoke(session.runs, timeout=timeout)
    raw = device.read(session.out_size)
    layer_ticks = device.profile(len(report.ops), timeout=timeout) if profile else None
    return info, invocation, raw, layer_ticks


def measure(board, report, session) -> tuple[dict, bytes]:
    """Bench a board on a serial port (anything pyserial's serial_for_url opens)."""
    import serial

    try:
        link_port = serial.serial_for_url(
            session.port,
            baudrate=session.baud or board.section("port").get("baud", 115200),
            timeout=0.05,
            exclusive=True,
        )
    except (serial.SerialException, OSError, ValueError) as err:
        if "exclusively lock" in str(err):  # another program (a serial monitor, a second bench) has it
            raise TinyqError(
                f"serial port {session.port} is busy: another program has it open; close that first"
            ) from None
        raise TinyqError(f"cannot open serial port {session.port}: {err}") from None
    with link_port:
        info, invocation, raw, layer_ticks = run_session(Device(Link(link_port)), report, session, session.profile)
    scale = board.data["clock_hz"] / int(info["counter_hz"])
    cycles = invocation.last_ticks * scale
    result = {
        "target": "device",
        "runs": session.runs,
        "cycles": int(cycles),
        "cycles_per_mac": cycles / max(report.model.macs, 1),
        "latency_ms": cycles / board.data["clock_hz"] * 1e3,
    }
    power = board.section("power")
    if power:
        result |= {
            "energy_uj": power["voltage"] * power["run_current_ma"] * result["latency_ms"],
            "energy_source": "model",
            "energy_basis": power["source"],
        }
    if session.profile:
        result["per_layer"] = [
            {"name": op.name, "type": op.type, "cycles": int(t * scale)} for op, t in zip(report.ops, layer_ticks)
        ]
    return result, raw
