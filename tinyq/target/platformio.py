"""Running PlatformIO offline.

PlatformIO runs SCons from its own `tool-scons` package, which it would
download. tinyq assembles that package from the `scons` Python package it
depends on (same SCons release), so `pio run` works without network for
tinyq's local dev-platform.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tinyq.errors import TinyqError

SCONS_PACKAGE_VERSION = "4.41101.0"  # PlatformIO's name for SCons 4.11.1
_LAUNCHER = '''"""SCons launcher for PlatformIO, assembled by tinyq from the scons Python package."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from SCons.Script import main  # noqa: E402

if __name__ == "__main__":
    main()
'''


class PioError(Exception):
    def __init__(self, reason: str, log: str):
        super().__init__(reason)
        self.reason, self.log = reason, log


def core_dir() -> Path:
    return Path(os.environ.get("PLATFORMIO_CORE_DIR", Path.home() / ".platformio"))


def ensure_scons_package() -> Path:
    """Create PlatformIO's tool-scons package from the installed SCons, once."""
    package = core_dir() / "packages" / "tool-scons"
    if (package / ".piopm").exists():
        return package
    try:
        import SCons
    except ImportError:
        raise TinyqError("the scons Python package is missing: pip install scons==4.11.1") from None
    staging = package.with_name("tool-scons.tinyq-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(Path(SCons.__file__).parent, staging / "SCons", ignore=shutil.ignore_patterns("__pycache__"))
    (staging / "scons.py").write_text(_LAUNCHER)
    (staging / "package.json").write_text(
        json.dumps(
            {
                "name": "tool-scons",
                "version": SCONS_PACKAGE_VERSION,
                "description": "SCons (from PyPI, via tinyq)",
                "system": "*",
            },
            indent=1,
        )
    )
    (staging / ".piopm").write_text(
        json.dumps(
            {
                "type": "tool",
                "name": "tool-scons",
                "version": SCONS_PACKAGE_VERSION,
                "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None},
            }
        )
    )
    shutil.rmtree(package, ignore_errors=True)
    staging.rename(package)
    return package


def pio_environment() -> dict:
    env = dict(os.environ)
    env.update(
        PLATFORMIO_SETTING_ENABLE_TELEMETRY="No",
        PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL="3650",
        PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD="0",
        PLATFORMIO_NO_ANSI="true",
    )
    return env


def run(project: Path, env_name: str, target: str | None = None, upload_port: str | None = None) -> Path:
    """`pio run` in `project`; returns the ELF. Raises PioError with the reason."""
    ensure_scons_package()
    cmd = [sys.executable, "-m", "platformio", "run", "-d", str(project), "-e", env_name]
    if target:
        cmd += ["-t", target]
    if upload_port:
        cmd += ["--upload-port", upload_port]
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, env=pio_environment(), timeout=900, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise PioError("pio timed out after 15 minutes", "") from None
    log = result.stdout + result.stderr
    (project / "pio.log").write_text(log)
    if result.returncode != 0:
        raise PioError(_reason(log), log)
    elf = project / ".pio" / "build" / env_name / "firmware.elf"
    if not elf.exists():
        raise PioError("pio reported success but wrote no firmware.elf", log)
    return elf


def _reason(log: str) -> str:
    if "HTTPClientError" in log or "Could not resolve" in log or "ConnectionError" in log:
        return "it needs the network to install the board's platform and toolchain packages"
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in lines:
        lowered = line.lower()
        if any(k in lowered for k in ("could not", "error:", "unknown", "httpclient", "connection", "internet")):
            return line[:200]
    return lines[-1][:200] if lines else "no output"
