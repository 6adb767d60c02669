"""Emulated boards: QEMU with the UART on a TCP socket and an instruction-counting plugin.

QEMU starts with `-chardev socket,...,server=on,wait=on` so the guest runs only
once the host is connected (nothing it prints is lost) and `-icount shift=0`
so timers count executed instructions (1 ns of virtual time each). The TCG
plugin in firmware/qemu/ counts instructions exactly between calls of the
firmware's tq_mark(). QEMU never outlives the `Emulator` context. A guest-initiated reset ends QEMU
(`-no-reboot`: a crashing firmware must not loop) unless the emulator is
`resettable`: then its monitor listens on a TCP port and `reset()` reboots the
board the way a reset button would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import serial

from tinyq.boards import Board
from tinyq.errors import TinyqError
from tinyq.resources import data_dir

NS_PER_INSTRUCTION = 1  # -icount shift=0


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    path = base / "tinyq"
    path.mkdir(parents=True, exist_ok=True)
    return path


def plugin_library() -> Path:
    """The instruction-counting plugin, built for this host once per source version."""
    source = data_dir("firmware") / "qemu" / "tq_icount.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    library = cache_dir() / f"tq_icount-{digest}.so"
    if library.exists():
        return library
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise TinyqError("no host C compiler to build the QEMU plugin: install gcc (apt-get install gcc)")
    staging = library.with_suffix(".tmp")
    result = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", str(source), "-o", str(staging)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise TinyqError(f"building the QEMU plugin failed: {result.stderr.strip()[:300]}")
    staging.rename(library)
    return library


def symbol_address(elf: Path, name: str) -> int:
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        raise TinyqError("arm-none-eabi-nm not found: apt-get install gcc-arm-none-eabi")
    out = subprocess.run([nm, str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise TinyqError(f"{elf} has no symbol {name}: it is not a tinyq firmware")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    def __init__(
        self, board: Board, elf: Path, workdir: Path, *, count_instructions: bool = True, resettable: bool = False
    ):
        emulator = board.section("emulator")
        if not emulator:
            raise TinyqError(f"board {board.name} is not emulated; use --port with a real board")
        self.program = shutil.which(emulator.get("program", "qemu-system-arm"))
        if self.program is None:
            raise TinyqError(
                f"{emulator.get('program', 'qemu-system-arm')} not found: "
                "install QEMU (Debian: apt-get install qemu-system-arm)"
            )
        self.board, self.elf, self.workdir = board, elf, workdir
        self.machine = emulator["machine"]
        self.count_instructions = count_instructions
        self.resettable = resettable
        self.monitor_port = 0
        self.marks_file = workdir / "marks.txt"
        self.process: subprocess.Popen | None = None
        self.serial = None
        self.port = 0

    def command(self) -> list[str]:
        if self.resettable:
            monitor = ["-monitor", f"tcp:127.0.0.1:{self.monitor_port},server=on,wait=off"]
        else:
            monitor = ["-monitor", "none", "-no-reboot"]
        cmd = [
            self.program,
            "-M",
            self.machine,
            "-display",
            "none",
            *monitor,
            "-chardev",
            f"socket,id=uart,host=127.0.0.1,port={self.port},server=on,wait=on",
            "-serial",
            "chardev:uart",
            "-icount",
            "shift=0",
            "-kernel",
            str(self.elf),
        ]
        if self.count_instructions:
            marker = symbol_address(self.elf, "tq_mark")
            cmd += ["-plugin", f"{plugin_library()},marker={marker:#x},out={self.marks_file}"]
        return cmd

    def __enter__(self) -> Emulator:
        """Start QEMU and connect to its UART (the guest starts on connection)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self.port, self.monitor_port = _free_port(), _free_port()
            with open(self.workdir / "qemu.log", "w") as log:
                self.process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            self.serial = self._connect()
            if self.serial is not None:
                return self
            self.close()  # most likely another program took the port first: try a new one
        raise TinyqError(f"QEMU did not start: {self._log_tail()}")

    def _connect(self, seconds: float = 15.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                return serial.serial_for_url(f"socket://127.0.0.1:{self.port}", timeout=0.05)
            except (serial.SerialException, OSError):
                time.sleep(0.05)
        return None

    def reset(self) -> None:
        """Reboot the emulated board (its RAM state is lost, the UART stays connected)."""
        if not self.resettable:
            raise TinyqError("this emulator was started without a monitor; create it with resettable=True")
        with socket.create_connection(("127.0.0.1", self.monitor_port), timeout=5) as monitor:
            monitor.sendall(b"system_reset\n")
            seen = b""
            while seen.count(b"(qemu)") < 2:  # the banner's prompt, then the one after our command
                chunk = monitor.recv(4096)
                if not chunk:
                    break
                seen += chunk

    def marks(self) -> list[int]:
        if not self.marks_file.exists():
            return []
        return [int(line) for line in self.marks_file.read_text().split()]

    def _log_tail(self) -> str:
        path = self.workdir / "qemu.log"
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        return text.splitlines()[-1] if text else "no output"

    def close(self) -> None:
        if self.serial is not None:
            self.serial.close()
            self.serial = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __exit__(self, *exc) -> None:
        self.close()


def measure(elf: Path, build_dir: Path, board: Board, report, session) -> tuple[dict, bytes]:
    """Bench an emulated board: instructions per inference counted exactly by the plugin."""
    from tinyq.target.device import Device, run_session
    from tinyq.target.link import Link

    with Emulator(board, elf, build_dir / "emulator") as emu:
        device = Device(Link(emu.serial, timeout=10.0))
        info, invocation, raw, layer_ticks = run_session(device, report, session, session.profile)
        marks = emu.marks()
    runs = len(session.frames) or session.runs
    per_run = [marks[i + 1] - marks[i] for i in range(0, 2 * runs, 2)]
    counter_hz = int(info["counter_hz"])
    result = {
        "target": "emulated",
        "runs": runs,
        "instructions": per_run[0],
        "instructions_per_mac": per_run[0] / max(report.model.macs, 1),
        "instructions_all_runs_equal": len(set(per_run)) == 1,
        **({"instructions_per_frame": per_run} if session.frames else {}),
        "counter_ticks": invocation.last_ticks,
        "counter_ticks_expected": per_run[0] * NS_PER_INSTRUCTION * counter_hz / 1e9,
    }
    if session.profile:
        layer_marks = marks[2 * runs :]
        result["per_layer"] = [
            {
                "name": op.name,
                "type": op.type,
                "instructions": layer_marks[2 + 2 * i] - layer_marks[1 + 2 * i],
                "counter_ticks": ticks,
            }
            for i, (op, ticks) in enumerate(zip(report.ops, layer_ticks))
        ]
    return result, raw
