"""A Python stand-in for tinyq firmware on a TCP socket, with fault injection.

It speaks the same framed protocol; its "model" reverses the input bytes.
Faults: corrupt the first N replies, stay silent, or reboot (banner, state
lost) in the middle of a LOAD.
"""

from __future__ import annotations

import socket
import struct
import threading
import zlib

from tinyq.target.link import START, frame


class FakeDevice:
    def __init__(self, *, input_size=16, corrupt_replies=0, silent=False, reset_on_load=None, model="fake"):
        self.input_size = input_size
        self.corrupt_replies = corrupt_replies
        self.silent = silent
        self.reset_on_load = reset_on_load  # index of the LOAD request that triggers a reboot
        self.model = model
        self.loads = 0
        self.stage = bytearray(input_size)
        self.output = bytearray(input_size)
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _recv(self, conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _send(self, conn, kind, seq, payload=b""):
        data = bytearray(frame(kind, seq, payload))
        if self.corrupt_replies > 0:
            self.corrupt_replies -= 1
            data[-1] ^= 0xFF
        conn.sendall(bytes(data))

    def _serve(self):
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b"m-init-done\r\nm-ready\r\n")
            try:
                while True:
                    if self._recv(conn, 1)[0] != START:
                        continue
                    header = self._recv(conn, 4)
                    kind, seq, length = struct.unpack("<BBH", header)
                    if length > 512:  # as the firmware does: refuse, never read past the buffer
                        self._send(conn, 0x7F, seq, b"\x02payload too long")
                        continue
                    body = self._recv(conn, length)
                    crc = struct.unpack("<I", self._recv(conn, 4))[0]
                    if self.silent:
                        continue
                    if crc != zlib.crc32(header + body):
                        self._send(conn, 0x7F, seq, b"\x01bad crc")
                        continue
                    self._handle(conn, kind, seq, body)
            except (ConnectionError, OSError):
                return

    def _handle(self, conn, kind, seq, body):
        if kind == 0x01:
            text = f"board=fake\nmodel={self.model}\ncounter_hz=1000000\ninput={self.input_size}\n"
            self._send(conn, 0x81, seq, text.encode())
        elif kind == 0x02:
            self.loads += 1
            if self.reset_on_load == self.loads:
                self.stage = bytearray(self.input_size)  # reboot: state lost, no reply
                conn.sendall(b"m-init-done\r\nm-ready\r\n")
                return
            offset = struct.unpack("<I", body[:4])[0]
            self.stage[offset : offset + len(body) - 4] = body[4:]
            self._send(conn, 0x82, seq)
        elif kind == 0x03:
            self.output = bytearray(reversed(self.stage))
            self._send(conn, 0x83, seq, struct.pack("<iIIII", 0, 1, 1000, 0, 1000))
        elif kind == 0x04:
            offset, count = struct.unpack("<IH", body)
            self._send(conn, 0x84, seq, bytes(self.output[offset : offset + count]))
        else:
            self._send(conn, 0x7F, seq, b"\x03unknown command")

    def close(self):
        self.server.close()
