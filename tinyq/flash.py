"""`tinyq flash`: upload a build's firmware with PlatformIO (`pio run -t upload`)."""

from __future__ import annotations

from pathlib import Path

from tinyq.boards import get_board
from tinyq.errors import TinyqError
from tinyq.report import read_report
from tinyq.target import platformio, target_of


def flash(build_dir: Path, upload_port: str | None = None) -> None:
    report = read_report(build_dir)
    board = get_board(report.board)
    if not target_of(board).flashable(board):
        raise TinyqError(f"{board.name} is not a real board: nothing to flash (use tinyq bench --emulate)")
    if report.firmware is None:
        raise TinyqError(f"{build_dir} holds no firmware (built with --no-compile?): run tinyq build without it")
    try:
        platformio.run(build_dir, board.name, target="upload", upload_port=upload_port)
    except platformio.PioError as err:
        raise TinyqError(
            f"upload failed: {err.reason} (log: {build_dir / 'pio.log'}); the firmware is "
            f"{build_dir / report.firmware.elf}: program it with an SWD tool such as openocd or "
            "STM32CubeProgrammer"
        ) from None
