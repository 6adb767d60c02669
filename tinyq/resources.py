"""Where tinyq's data folders (templates/, firmware/, boards/) are.

In a wheel they sit inside the package (pyproject maps them there); in a
source checkout or an editable install they are at the repository top.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinyq's {name}/ folder is missing from the installation")
