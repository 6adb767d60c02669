"""The host side of tinyq's serial protocol (docs/serial-protocol.md).

Works over anything pyserial's `serial_for_url` opens: a real port, a
`socket://` (QEMU's UART) or `rfc2217://`. A request is retried after a
timeout or a corrupt reply; after the last retry the error says what was
asked and what went wrong. Bytes outside frames (the firmware's ASCII
banner, noise) are skipped; a fresh boot banner means the device reset.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass

from tinyq.errors import TinyqError

START = 0xA5
REPLY = 0x80
ERROR = 0x7F
MAX_PAYLOAD = 512
COMMANDS = {0x01: "INFO", 0x02: "LOAD", 0x03: "INVOKE", 0x04: "READ", 0x05: "PROFILE"}
BOOT_BANNER = b"m-init-done"


def frame(kind: int, seq: int, payload: bytes = b"") -> bytes:
    header = struct.pack("<BBH", kind, seq, len(payload))
    return bytes([START]) + header + payload + struct.pack("<I", zlib.crc32(header + payload))


class DeviceError(TinyqError):
    """The device answered with an error frame."""


@dataclass
class Stats:
    retries: int = 0
    bad_frames: int = 0
    boots: int = 0  # boot banners seen: the first is the power-up, more are resets


class Link:
    def __init__(self, port, *, timeout: float = 5.0, retries: int = 3):
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.seq = 0
        self.stats = Stats()
        self._noise = bytearray()

    def request(self, command: int, payload: bytes = b"", *, timeout: float | None = None) -> bytes:
        self.seq = (self.seq + 1) & 0xFF
        name = COMMANDS.get(command, hex(command))
        problem = "no reply"
        boots_before = self.stats.boots
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            self.port.write(frame(command, self.seq, payload))
            self.port.flush()
            deadline = time.monotonic() + (timeout or self.timeout)
            while True:
                got = self._read_frame(deadline)
                if got is None:
                    problem = f"no reply within {timeout or self.timeout:g} s"
                    break
                kind, seq, body = got
                if seq != self.seq:
                    continue  # a late reply to an earlier try
                if kind == ERROR:
                    code, text = (body[0], body[1:].decode(errors="replace")) if body else (0, "")
                    if code in (1, 2):  # the device saw a corrupt or oversized frame: send again
                        problem = f"device reported: {text}"
                        break
                    raise DeviceError(f"device refused {name}: {text} (code {code})")
                if kind == command | REPLY:
                    return body
        resets = self.stats.boots - max(boots_before, 1)  # the first banner seen is the power-up
        if resets > 0:
            raise TinyqError(
                f"serial link failed: {name} got {problem} after {self.retries + 1} tries and the "
                f"device reset {resets} time{'s' if resets > 1 else ''} meanwhile; "
                "check its power and look for a crash"
            )
        raise TinyqError(
            f"serial link failed: {name} got {problem} after {self.retries + 1} tries "
            f"({self.stats.bad_frames} corrupt frames seen); check the port, the baud rate "
            "and that the board runs tinyq firmware"
        )

    def _read_exact(self, count: int, deadline: float) -> bytes | None:
        data = bytearray()
        while len(data) < count:
            if time.monotonic() > deadline:
                return None
            chunk = self.port.read(count - len(data))
            data += chunk
        return bytes(data)

    def _read_frame(self, deadline: float):
        """Next well-formed frame, or None at the deadline."""
        while time.monotonic() <= deadline:
            byte = self.port.read(1)
            if not byte:
                continue
            if byte[0] != START:
                self._noise += byte
                if BOOT_BANNER in self._noise:
                    self.stats.boots += 1
                    self._noise.clear()
                del self._noise[: -len(BOOT_BANNER)]
                continue
            header = self._read_exact(4, deadline)
            if header is None:
                return None
            kind, seq, length = struct.unpack("<BBH", header)
            if length > MAX_PAYLOAD:
                self.stats.bad_frames += 1
                continue
            rest = self._read_exact(length + 4, deadline)
            if rest is None:
                return None
            body, crc = rest[:length], struct.unpack("<I", rest[length:])[0]
            if crc != zlib.crc32(header + body):
                self.stats.bad_frames += 1
                continue
            return kind, seq, body
        return None
