"""A plain (non-editable) wheel carries every tinyq module and templates/, firmware/ and boards/."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tinyq.resources import data_dir

from support.env import ROOT


def test_wheel_contains_data_folders(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("tinyq-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "firmware", "boards"):
        shipped = {n for n in names if n.startswith(f"tinyq/{folder}/")}
        in_repo = {
            f"tinyq/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert in_repo and in_repo <= shipped, f"{folder}: missing {sorted(in_repo - shipped)[:5]}"
    assert "tinyq/cli.py" in names
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tinyq").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)[:5]}"


def test_data_dirs_resolve_in_this_install():
    for folder in ("templates", "firmware", "boards"):
        assert (data_dir(folder) / "README.md").is_file()
