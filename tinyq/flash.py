"""`tinyq flash`: upload a build's firmware with PlatformIO (`pio run -t upload`)."""
from __future__ import annotations

from pathlib import Path

from tinyq.boards import get_board
from tinyq.build import read_report
from tinyq.errors import TinyqError
from tinyq.target import platformio


def flash(build_dir: Path, upload_port: str | None = None) -> None:
    report = read_report(build_dir)
    board = get_board(report["board"])
    if board.target != "device":
        raise TinyqError(f"{board.name} is not a real board: nothing to flash (use tinyq bench --emulate)")
    if "firmware" not in report:
        raise TinyqError(f"{build_dir} holds no firmware (built with --no-compile?): run tinyq build without it")
    try:
        platformio.run(build_dir, board.name, target="upload", upload_port=upload_port)
    except platformio.PioError as err:
        elf = build_dir / report["firmware"]["elf"]
        raise TinyqError(f"upload failed: {err.reason} (log: {build_dir / 'pio.log'}); the firmware is {elf}: "
                         "program it with an SWD tool such as openocd or STM32CubeProgrammer") from None
