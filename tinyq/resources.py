"""Where tinyq's data folders (templates/, firmware/, boards/) are.

In a wheel they sit inside the package (pyproject maps them there); in a
source checkout or an editable install they are at the repository top.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinyq's {name}/ folder is missing from the installation")


@cache
def templates() -> jinja2.Environment:
    """tinyq's one template environment, over templates/: strict (an undefined name is an
    error), blocks trimmed as C and config files want them, no HTML escaping."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
