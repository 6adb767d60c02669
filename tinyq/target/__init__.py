"""Targets: where generated C is compiled and run. A board file's `target` names one of three:

  host      the system C compiler; bench runs the native runner
  emulator  a QEMU board: a firmware project, bench --emulate counts instructions
  device    a real board: a firmware project, bench --port reads its cycle counter
            (or --emulate in Renode, for boards with a [renode] section)

Build and bench ask `target_of(board)`; nothing else compares target names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyq.boards import Board
from tinyq.errors import TinyqError
from tinyq.target import device, firmware, host, qemu, renode


@dataclass(frozen=True)
class Session:
    """One bench request: the packed input, what to run, and how to reach the target."""

    packed: bytes
    out_size: int
    runs: int
    profile: bool
    emulate: bool
    port: str | None
    baud: int | None
    frames: tuple[bytes, ...] = ()  # a streaming build's sequence, one input frame per call (from a RESET)


class Target:
    name: str

    def render(self, build_dir: Path, board: Board) -> None:
        """Write what the build folder needs beyond the generated library."""

    def compile(self, build_dir: Path, board: Board, log):
        """Compile; returns the firmware build (None when there is no firmware image)."""
        raise NotImplementedError

    def measure(self, build_dir: Path, board: Board, report, session: Session) -> tuple[dict, bytes]:
        """Run the build: (the bench section, the raw output bytes)."""
        raise NotImplementedError

    def flashable(self, board: Board) -> bool:
        return False


class HostTarget(Target):
    name = "host"

    def compile(self, build_dir, board, log):
        host.compile_runner(build_dir, board)
        return None

    def measure(self, build_dir, board, report, session):
        if session.frames:
            raise TinyqError("a sequence runs on an emulated or real board; the host runner takes one input")
        raw, ns = host.run(build_dir, session.packed, session.runs)
        return {"target": "host", "runs": session.runs, "latency_ms": ns / 1e6}, raw


class FirmwareTarget(Target):
    """A Cortex-M board: a PlatformIO project, measured over its serial port or in an emulator."""

    how = "--port PORT"

    def render(self, build_dir, board):
        firmware.render_project(build_dir, board)

    def compile(self, build_dir, board, log):
        return firmware.build_firmware(build_dir, board, log=log)

    def emulate(self, build_dir, board, report, session) -> tuple[dict, bytes]:
        raise TinyqError(f"{board.name} is a real board with no emulator: use --port PORT")

    @staticmethod
    def firmware_of(build_dir, report) -> Path:
        if report.firmware is None:
            raise TinyqError(f"{build_dir} has no firmware: build without --no-compile")
        return build_dir / report.firmware.elf

    def measure(self, build_dir, board, report, session):
        if session.emulate:
            return self.emulate(build_dir, board, report, session)
        if session.port:
            return device.measure(board, report, session)
        article = "an" if self.name[0] in "aeiou" else "a"
        raise TinyqError(f"{board.name} is {article} {self.name} board: run with {self.how}")


class EmulatorTarget(FirmwareTarget):
    name = "emulator"
    how = "--emulate"

    def emulate(self, build_dir, board, report, session):
        return qemu.measure(self.firmware_of(build_dir, report), build_dir, board, report, session)


class DeviceTarget(FirmwareTarget):
    name = "device"

    def compile(self, build_dir, board, log):
        built = super().compile(build_dir, board, log)
        if board.section("renode"):
            renode.write_script(build_dir, board, built.elf)
        return built

    def emulate(self, build_dir, board, report, session):
        if not board.section("renode"):
            return super().emulate(build_dir, board, report, session)
        self.firmware_of(build_dir, report)
        return renode.measure(build_dir, board, report, session)

    def flashable(self, board):
        return True


TARGETS = {t.name: t for t in (HostTarget(), EmulatorTarget(), DeviceTarget())}


def target_of(board: Board) -> Target:
    if board.target not in TARGETS:
        raise TinyqError(f"board {board.name}: unknown target {board.target!r} (one of {', '.join(TARGETS)})")
    return TARGETS[board.target]
