"""The host target: generated C built with the system compiler and run natively."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tinyq.boards import Board
from tinyq.errors import TinyqError
from tinyq.resources import data_dir

LIB = Path("lib") / "tinyq_model"
RUNNER = Path("host") / "tinyq_host"


def compiler(board: Board) -> str:
    cc = board.section("compiler").get("cc", "cc")
    path = shutil.which(cc)
    if path is None:
        raise TinyqError(f"no C compiler {cc!r} on PATH: install one (Debian: apt-get install gcc)")
    return path


def compile_runner(build_dir: Path, board: Board) -> Path:
    """Build DIR/host/tinyq_host from the generated library and the host runner."""
    (build_dir / "host").mkdir(exist_ok=True)
    main = build_dir / "host" / "main.c"
    shutil.copyfile(data_dir("firmware") / "host" / "main.c", main)
    sources = sorted((build_dir / LIB / "src").glob("*.c")) + [main]
    flags = board.section("compiler")
    cmd = [
        compiler(board),
        *flags.get("cflags", []),
        f"-I{build_dir / LIB / 'include'}",
        *map(str, sources),
        "-o",
        str(build_dir / RUNNER),
        *flags.get("ldflags", []),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        log = build_dir / "host" / "compile.log"
        log.write_text(result.stderr)
        first = (result.stderr.strip().splitlines() or ["(no output)"])[0]
        raise TinyqError(f"host compile failed: {first} (full log: {log})")
    return build_dir / RUNNER


def run(build_dir: Path, input_bytes: bytes, runs: int = 1) -> tuple[bytes, float]:
    """Run the host build once over `input_bytes`: (output bytes, ns per inference)."""
    runner = build_dir / RUNNER
    if not runner.exists():
        raise TinyqError(f"{runner} does not exist: build with `tinyq build MODEL --board host -o {build_dir}`")
    result = subprocess.run([str(runner), str(runs)], input=input_bytes, capture_output=True, timeout=600)
    if result.returncode != 0:
        raise TinyqError(f"host run failed: {result.stderr.decode(errors='replace').strip()}")
    ns = float(result.stderr.decode().split()[-1])
    return result.stdout, ns
