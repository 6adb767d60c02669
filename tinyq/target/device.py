"""A tinyq firmware on the other end of a serial link: load, invoke, read, profile."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from tinyq.errors import TinyqError
from tinyq.target.link import MAX_PAYLOAD, Link

INFO, LOAD, INVOKE, READ, PROFILE = 0x01, 0x02, 0x03, 0x04, 0x05
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
                self.link.request(LOAD, struct.pack("<I", offset) + data[offset:offset + CHUNK])
            if self.link.stats.boots == before:
                self._input = data
                self._boots_seen = before
                return
        raise TinyqError("the device keeps resetting while the input is loaded")

    def _reloaded_after_reset(self) -> bool:
        if self.link.stats.boots == self._boots_seen:
            return False
        self.load(self._input)   # a reset wiped the staged input
        return True

    def invoke(self, runs: int = 1, timeout: float = 60.0) -> Invocation:
        for attempt in range(2):
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
