"""Commands write only inside their output folder (and the tool caches in HOME).

A whole session (quantize, build for an emulated board, bench in QEMU, eval)
runs with a fresh HOME, working directory and TMPDIR; afterwards every file that
appeared or changed outside HOME is under the output folders, the inputs are
untouched, no temporary file is left behind, and HOME holds only the caches the
docs name (PlatformIO's core dir, ~/.cache/tinyq, matplotlib's font cache, Keras's config).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from support import keras_models
from support.cli import tinyq
from support.env import require_tool

HOME_CACHES = (".platformio/", ".cache/tinyq/", ".cache/matplotlib/", ".config/matplotlib/", ".keras/")


def snapshot(root: Path, skip: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and skip not in p.parents
    }


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def test_a_session_writes_only_to_its_output_folders(keras, tmp_path):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cc"):
        require_tool(tool)
    home, cwd, tmp, inputs = (tmp_path / d for d in ("home", "cwd", "tmp", "in"))
    for d in (home, cwd, tmp, inputs):
        d.mkdir()
    keras_models.build(keras, "dense_softmax").save(inputs / "m.keras")
    rng = np.random.default_rng(0)
    np.savez(inputs / "data.npz", x=rng.normal(0, 1, (32, 12)).astype(np.float32), y=rng.integers(0, 5, 32))
    before = snapshot(tmp_path, home)
    env = {
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PLATFORMIO_CORE_DIR": str(home / ".platformio"),
    }
    steps = [
        ("quantize", inputs / "m.keras", "--calib", inputs / "data.npz", "-o", "out/q"),
        ("build", inputs / "m.keras", "--board", "mps2_an386", "--calib", inputs / "data.npz", "-o", "out/b"),
        ("bench", "out/b", "--emulate", "--json", "out/bench.json"),
        ("eval", inputs / "m.keras", "--data", inputs / "data.npz", "--json", "out/eval.json"),
    ]
    for step in steps:
        result = tinyq(*step, cwd=cwd, env=env)
        assert result.returncode == 0, f"{step[0]}: {result.stderr[-2000:]}"
    after = snapshot(tmp_path, home)
    changed = {p for p in after if before.get(p) != after[p]}
    assert changed and all(p.startswith("cwd/out/") for p in changed), sorted(changed)
    assert set(before) <= set(after)  # nothing deleted
    assert not list(tmp.iterdir()), "temporary files were left behind"
    home_files = [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()]
    assert all(f.startswith(HOME_CACHES) for f in home_files), home_files
