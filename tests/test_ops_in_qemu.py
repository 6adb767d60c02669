"""A sample of the heavier operators' C in QEMU (Cortex-M4, the Arm toolchain's code), against the
numpy reference: one firmware holding one converter-made model of each; and the same for 16x8
(int16 activations) models on the Cortex-M4 and M7 boards."""

from __future__ import annotations

import pytest

from tinyq.importers.tflite import parse_tflite

from support.cases import CASES, convert
from support.graphs import side_by_side
from support.inputs import random_inputs
from support.qemu_sample import assert_bit_exact_in_qemu

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

SAMPLE_16X8 = [
    "s16_conv3x3_s2_same_relu",
    "s16_conv_dilated_no_bias",
    "s16_dw3x3_s1_same_relu6",
    "s16_dw3x3_mult2_s2_valid",
    "s16_fc_per_channel",
    "s16_transpose_conv_s2_same_odd",
    "s16_batch_matmul_broadcast_adj_y",
    "s16_add_different_scales",
    "s16_mul_broadcast",
    "s16_avgpool3_s1_same",
    "s16_mean_spatial_keep",
    "s16_softmax_rank4_last_axis",
    "s16_logistic_saturating",
    "s16_tanh_moderate",
    "s16_rsqrt_sum_of_squares",
    "s16_squared_difference_broadcast_doubled",
    "s16_leaky_relu_negative_alpha",
    "s16_resize_nearest_half_pixel",
]


def _sample_in_qemu(names, board, case_dir, tmp_path):
    cases = {c.name: c for c in CASES}
    graph = side_by_side({n: parse_tflite(convert(cases[n], case_dir).read_bytes()) for n in names}, "heavy_ops")
    assert_bit_exact_in_qemu(graph, board, tmp_path, random_inputs(graph, 2, seed=5), "operator sample")


def test_heavy_ops_in_qemu_match_the_reference(case_dir, tmp_path):
    _sample_in_qemu(SAMPLE, "mps2_an386", case_dir, tmp_path)


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500"])
def test_heavy_16x8_ops_in_qemu_match_the_reference(board, case_dir, tmp_path):
    _sample_in_qemu(SAMPLE_16X8, board, case_dir, tmp_path)
