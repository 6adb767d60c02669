"""A faulty serial line: a TCP man-in-the-middle between the host and QEMU's UART.

It forwards both directions byte by byte and, on every `every`-th byte of one
direction, flips it, drops it, holds the line for a while, or calls a reset
hook, `budget` times (then the line is clean; a negative budget never ends).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TO_DEVICE, TO_HOST = "to_device", "to_host"


@dataclass(frozen=True)
class Fault:
    kind: str  # flip | drop | delay | reset
    direction: str  # TO_DEVICE or TO_HOST
    every: int
    budget: int
    seconds: float = 0.0  # how long a delay holds the line


class FaultyLine:
    def __init__(self, target_port: int, fault: Fault, on_reset: Callable[[], None] | None = None):
        self.fault, self.on_reset = fault, on_reset
        self.budget = fault.budget
        self.counts = {TO_DEVICE: 0, TO_HOST: 0}
        self.injected = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.upstream = socket.create_connection(("127.0.0.1", target_port))
        threading.Thread(target=self._run, daemon=True).start()

    def _due(self, direction: str) -> bool:
        self.counts[direction] += 1
        if direction != self.fault.direction or self.budget == 0:
            return False
        if self.counts[direction] % self.fault.every:
            return False
        self.budget -= 1
        self.injected += 1
        return True

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while data := src.recv(4096):
                out = bytearray()
                for byte in data:
                    if self._due(direction):
                        if self.fault.kind == "drop":
                            continue
                        if self.fault.kind == "flip":
                            byte ^= 0x5A
                        else:  # delay or reset: what came before goes out first
                            dst.sendall(out)
                            out.clear()
                            if self.fault.kind == "delay":
                                time.sleep(self.fault.seconds)
                            else:
                                self.on_reset()
                    out.append(byte)
                dst.sendall(out)
        except OSError:
            pass

    def _run(self) -> None:
        client, _ = self.server.accept()
        threading.Thread(target=self._pump, args=(client, self.upstream, TO_DEVICE), daemon=True).start()
        self._pump(self.upstream, client, TO_HOST)
