"""Running the tinyq command line as a user would, and what a clean error looks like."""

from __future__ import annotations

import os
import subprocess
import sys


def tinyq(*args, cwd=None, env=None):
    env = dict(os.environ, COLUMNS="200", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "tinyq", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and lines[0].startswith("error:")
    for fragment in fragments:
        assert fragment in lines[0]
