"""A sample of the heavier operators' C in QEMU (Cortex-M4, the Arm toolchain's code), against the
numpy reference: one firmware holding one converter-made model of each."""

from __future__ import annotations

import numpy as np

from tinyq import ref
from tinyq.importers.tflite import parse_tflite

from support.cases import CASES, convert
from support.env import require_tool
from support.graphs import side_by_side
from support.inputs import random_inputs

SAMPLE = [
    "transpose_conv_s2_same_odd",
    "batch_matmul_broadcast_adj_y",
    "resize_bilinear_half_pixel_up",
    "resize_nearest_align_corners",
    "tanh_saturating",
    "hard_swish_wide_range",
    "rsqrt_of_square",
    "squared_difference_broadcast_doubled",
    "mean_nonadjacent",
    "sum_all_but_batch",
    "reduce_max_nonadjacent_keep",
    "arg_max_last_axis",
    "l2_normalization_rank4",
    "log_softmax_rank4",
    "leaky_relu_alpha_0_2",
    "prelu_per_channel",
    "sub_different_scales",
]


def test_heavy_ops_in_qemu_match_the_reference(case_dir, tmp_path):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    cases = {c.name: c for c in CASES}
    graph = side_by_side({n: parse_tflite(convert(cases[n], case_dir).read_bytes()) for n in SAMPLE}, "heavy_ops")
    build(graph, get_board("mps2_an386"), tmp_path / "fw", source="operator sample", log=lambda message: None)
    for i, inputs in enumerate(random_inputs(graph, 2, seed=5)):
        np.savez(tmp_path / f"x{i}.npz", *inputs)
        result = bench(tmp_path / "fw", emulate=True, input_path=tmp_path / f"x{i}.npz")
        assert result["bit_exact"]
        assert result["outputs"] == [o.reshape(-1).tolist() for o in ref.outputs(graph, inputs)]
