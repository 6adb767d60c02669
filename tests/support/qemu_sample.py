"""Several models side by side in one firmware, built by the Arm toolchain and run in QEMU, each
input set checked against the integer reference."""

from __future__ import annotations

import numpy as np

from tinyq import ref

from support.env import require_tool


def assert_bit_exact_in_qemu(graph, board: str, tmp_path, input_sets, source: str) -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    build(graph, get_board(board), tmp_path / "fw", source=source, log=lambda message: None)
    for i, inputs in enumerate(input_sets):
        np.savez(tmp_path / f"x{i}.npz", *inputs)
        result = bench(tmp_path / "fw", emulate=True, input_path=tmp_path / f"x{i}.npz")
        assert result["bit_exact"]
        assert result["outputs"] == [o.reshape(-1).tolist() for o in ref.outputs(graph, inputs)]
