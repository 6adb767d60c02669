"""Boards are data: one TOML file each in boards/. No board name appears in code."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache

from tinyq.errors import TinyqError
from tinyq.resources import data_dir


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    target: str  # "host", "emulator" or "device"
    aliases: tuple[str, ...] = ()
    data: dict = field(default_factory=dict, compare=False, repr=False)

    def section(self, name: str) -> dict:
        return self.data.get(name, {})


@cache
def all_boards() -> dict[str, Board]:
    boards = {}
    for path in sorted(data_dir("boards").glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text())
            board = Board(
                raw["name"], raw["description"], raw["core"], raw["target"], tuple(raw.get("aliases", ())), raw
            )
        except (tomllib.TOMLDecodeError, KeyError) as err:
            raise TinyqError(f"board file {path.name} is malformed: {err}") from None
        boards[board.name] = board
    return boards


def get_board(name: str) -> Board:
    boards = all_boards()
    for board in boards.values():
        if name == board.name or name in board.aliases:
            return board
    raise TinyqError(f"unknown board {name!r}; known boards: {', '.join(sorted(boards))} (see `tinyq boards`)")
