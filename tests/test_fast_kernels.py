"""Fast kernels against the numpy reference over a table of shapes: on the host
(portable twins of the DSP intrinsics) and in QEMU (the Arm DSP code).

Each row builds a one-op int8 (or 16x8: int16 activations, int64 bias) graph
directly in the IR and states the fast kernel it must get, so the table really covers the fast paths; the memory
plan lets the output overlap the dying input where the kernel allows it, so
a wrong overlap lead shows up as a wrong output.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinyq import ir, ref
from tinyq.codegen.lower import choose_kernels
from tinyq.ops import kernel_params
from tinyq.ops.affine import exact_requant
from tinyq.ops.conv import conv_overlap_lead

from support.env import require_tool
from support.graphs import side_by_side
from support.hostlib import HostModel
from support.one_op import Row, build_graph, random_batch

A = ir.Activation
RNG_SEED = 11


REFERENCE_KERNELS = {
    "conv": "convolve_s8",
    "dw": "depthwise_conv_s8",
    "fc": "fully_connected_s8",
    "add": "add_s8",
    "avgpool": "avgpool_s8",
}


ROWS = [
    Row("conv1x1_pointwise", "convolve_fast_s8", "conv", (1, 5, 5, 16), 24),
    Row("conv1x1_odd_channels_ragged_k", "convolve_fast_s8", "conv", (1, 3, 3, 7), 5, act=A.RELU),
    Row("conv3x3_same_odd_pixels", "convolve_fast_s8", "conv", (1, 7, 7, 4), 6, (3, 3), pad=(1, 1, 1, 1)),
    Row("conv3x3_s2_gather_path", "convolve_fast_s8", "conv", (1, 9, 9, 3), 8, (3, 3), (2, 2), (1, 1, 1, 1)),
    Row("conv5x3_relu6_c2", "convolve_fast_s8", "conv", (1, 8, 6, 2), 4, (5, 3), pad=(2, 2, 1, 1), act=A.RELU6),
    Row("conv_dilated", "convolve_fast_s8", "conv", (1, 10, 10, 4), 4, (3, 3), dilation=(2, 2)),
    Row("conv_stride_2x1_asymmetric_pad", "convolve_fast_s8", "conv", (1, 8, 5, 8), 3, (3, 2), (2, 1), (0, 1, 0, 1)),
    Row(
        "conv_batch2_per_tensor",
        "convolve_fast_s8",
        "conv",
        (2, 4, 4, 4),
        4,
        (3, 3),
        pad=(1, 1, 1, 1),
        per_channel=False,
    ),
    Row("conv_kws_first_layer", "convolve_fast_s8", "conv", (1, 49, 10, 1), 16, (10, 4), (2, 2), (4, 5, 1, 1)),
    Row("conv_multiplier_above_half", "convolve_fast_s8", "conv", (1, 4, 4, 4), 4, out_scale=1e-6),
    Row("dw_multiplier_above_half", "depthwise_conv_fast_s8", "dw", (1, 5, 5, 4), 4, (3, 3), out_scale=1e-5),
    Row("dw3x3_same_in_place", "depthwise_conv_fast_s8", "dw", (1, 6, 6, 6), 6, (3, 3), pad=(1, 1, 1, 1), act=A.RELU),
    Row("dw3x3_s2_valid", "depthwise_conv_fast_s8", "dw", (1, 9, 9, 8), 8, (3, 3), (2, 2)),
    Row("dw5x3_same_c3", "depthwise_conv_fast_s8", "dw", (1, 7, 9, 3), 3, (5, 3), pad=(2, 2, 1, 1)),
    Row("dw2x2_even_taps_batch2", "depthwise_conv_fast_s8", "dw", (2, 5, 5, 4), 4, (2, 2), pad=(0, 1, 0, 1)),
    Row("dw_dilated_keeps_reference", None, "dw", (1, 8, 8, 4), 4, (3, 3), dilation=(2, 2)),
    Row("fc_ragged_depth_units", "fully_connected_fast_s8", "fc", (1, 10), 7),
    Row("fc_units_multiple_of_4", "fully_connected_fast_s8", "fc", (1, 64), 8, act=A.RELU),
    Row("fc_batch3_per_tensor", "fully_connected_fast_s8", "fc", (3, 12), 6, per_channel=False),
    Row("conv1x1_int4_ragged_k", "convolve_fast_s4", "conv", (1, 5, 5, 7), 6, int4=True),
    Row(
        "conv3x3_int4_same",
        "convolve_fast_s4",
        "conv",
        (1, 6, 6, 8),
        5,
        (3, 3),
        pad=(1, 1, 1, 1),
        act=A.RELU,
        int4=True,
    ),
    Row("dw3x3_int4_s2", "depthwise_conv_fast_s4", "dw", (1, 7, 7, 5), 5, (3, 3), (2, 2), (1, 1, 1, 1), int4=True),
    Row("fc_int4_ragged", "fully_connected_fast_s4", "fc", (1, 20), 7, int4=True),
    Row("fc_int4_batch2", "fully_connected_fast_s4", "fc", (2, 64), 8, per_channel=False, int4=True),
    # 16x8: odd channels take the gather path, even ones copy words; k above 256 sums in chunks
    Row("conv3x3_s16_odd_channels", "convolve_fast_s16", "conv", (1, 7, 7, 3), 5, (3, 3), pad=(1, 1, 1, 1), int16=True),
    Row("conv1x1_s16_ragged_k", "convolve_fast_s16", "conv", (1, 5, 5, 6), 4, act=A.RELU, int16=True),
    Row(
        "conv3x3_s16_deep_chunked", "convolve_fast_s16", "conv", (1, 5, 6, 40), 6, (3, 3), pad=(1, 1, 1, 1), int16=True
    ),
    Row(
        "conv3x3_s16_s2_batch2_per_tensor",
        "convolve_fast_s16",
        "conv",
        (2, 8, 7, 4),
        3,
        (3, 3),
        (2, 2),
        per_channel=False,
        int16=True,
    ),
    Row(
        "dw3x3_s16_same_in_place",
        "depthwise_conv_fast_s16",
        "dw",
        (1, 6, 6, 6),
        6,
        (3, 3),
        pad=(1, 1, 1, 1),
        int16=True,
    ),
    Row(
        "dw5x3_s16_c3_relu6",
        "depthwise_conv_fast_s16",
        "dw",
        (1, 7, 9, 3),
        3,
        (5, 3),
        pad=(2, 2, 1, 1),
        act=A.RELU6,
        int16=True,
    ),
    Row("dw_s16_dilated_keeps_reference", None, "dw", (1, 8, 8, 4), 4, (3, 3), dilation=(2, 2), int16=True),
    Row("fc_s16_deep_ragged", "fully_connected_fast_s16", "fc", (1, 301), 7, int16=True),
    Row("fc_s16_batch3_per_tensor", "fully_connected_fast_s16", "fc", (3, 12), 6, per_channel=False, int16=True),
    Row("fc_s16_units_multiple_of_4", "fully_connected_fast_s16", "fc", (1, 64), 8, act=A.RELU, int16=True),
    Row("add_same_shape", "add_lut_s8", "add", (1, 4, 4, 6), act=A.RELU),
    Row(
        "avgpool3_s2_same",
        "avgpool_fast_s8",
        "avgpool",
        (1, 7, 7, 8),
        kernel_hw=(3, 3),
        stride=(2, 2),
        pad=(1, 1, 1, 1),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_fast_kernel_matches_reference_on_host(row, tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    graph = build_graph(row, rng)
    op = graph.ops[0]
    expected = row.kernel or REFERENCE_KERNELS[row.op].replace("_s8", "_s16" if row.int16 else "_s8")
    assert choose_kernels(graph)[op.name].name == expected
    model = HostModel(graph, tmp_path)
    assert [layer.kernel.name for layer in model.generated.layers] == [expected]
    for inputs in random_batch(graph, rng, 20):
        assert np.array_equal(model.run(inputs)[0], ref.outputs(graph, inputs)[0])


def test_requantization_variant_follows_the_multipliers():
    """Multipliers of 0.5 or more take the reference requantization arithmetic inside the
    fast kernel (a per-layer constant); the usual ones the one-SMLAL form."""
    rng = np.random.default_rng(RNG_SEED)
    for name, exact in (
        ("conv_multiplier_above_half", True),
        ("dw_multiplier_above_half", True),
        ("conv1x1_pointwise", False),
        ("dw3x3_s2_valid", False),
    ):
        graph = build_graph(next(r for r in ROWS if r.name == name), rng)
        op = graph.ops[0]
        assert exact_requant(op, graph, kernel_params(op, graph)) == exact, name


def test_reference_fallback_says_why():
    rng = np.random.default_rng(RNG_SEED)
    graph = build_graph(next(r for r in ROWS if r.name == "dw_dilated_keeps_reference"), rng)
    assert "dilation" in choose_kernels(graph)[graph.ops[0].name].reference_because
    conv = build_graph(next(r for r in ROWS if r.name == "conv3x3_same_odd_pixels"), rng)
    b = conv["b"]
    huge = ir.Tensor("b", b.shape, b.dtype, b.qparams, np.full(b.shape, 2**31 - 5, np.int32))
    conv = ir.Graph(conv.name, {**conv.tensors, "b": huge}, conv.ops, conv.inputs, conv.outputs)
    kernel = choose_kernels(conv)[conv.ops[0].name]
    assert kernel.name == "convolve_s8" and kernel.reference_because == "the folded bias leaves int32"


def _conv_steps(graph: ir.Graph):
    """The convolution kernel's order, replayed byte by byte: per step (a pixel pair), the
    input bytes it gathers, then the output bytes it writes."""
    op = graph.ops[0]
    (n, h, w, ci), (_, oh, ow, co) = graph[op.inputs[0]].shape, graph[op.outputs[0]].shape
    (kh, kw), (sh, sw), (dh, dw), pad = (
        graph[op.inputs[1]].shape[1:3],
        op.attrs.stride,
        op.attrs.dilation,
        op.attrs.padding,
    )
    pixels, size = n * oh * ow, graph[op.inputs[0]].nbytes // graph[op.inputs[0]].size  # bytes per element
    for pa in range(0, pixels, 2):
        reads, writes = set(), set()
        for p in {pa, min(pa + 1, pixels - 1)}:
            b, oy, ox = p // (oh * ow), p % (oh * ow) // ow, p % ow
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - pad.top + ky * dh, ox * sw - pad.left + kx * dw
                    if 0 <= iy < h and 0 <= ix < w:
                        first = ((b * h + iy) * w + ix) * ci
                        reads |= set(range(first * size, (first + ci) * size))
            writes |= set(range(p * co * size, (p + 1) * co * size))
        yield reads, writes


def _clobbers(steps, shift: int) -> bool:
    """With the output starting `shift` bytes before the input, does a write hit input
    bytes a later step still reads?"""
    steps = list(steps)
    for t, (_, writes) in enumerate(steps):
        future = set().union(*(reads for reads, _ in steps[t + 1 :]))
        if {byte - shift for byte in writes} & future:
            return True
    return False


@pytest.mark.parametrize(
    "name",
    [
        "conv3x3_same_odd_pixels",
        "conv3x3_s2_gather_path",
        "conv_dilated",
        "conv_stride_2x1_asymmetric_pad",
        "conv_batch2_per_tensor",
        "conv3x3_s16_odd_channels",
        "conv3x3_s16_s2_batch2_per_tensor",
    ],
)
def test_overlap_lead_is_safe_and_tight(name):
    """The planner's lead against a byte-level replay of the kernel: the output may start
    `lead` bytes before the input without clobbering a byte still to be read, and the
    lead is tight (a smaller one clobbers) unless a lead of 0 or less already suffices."""
    graph = build_graph(next(r for r in ROWS if r.name == name), np.random.default_rng(0))
    lead = conv_overlap_lead(graph.ops[0], graph)
    assert not _clobbers(_conv_steps(graph), lead)
    if lead > 0:
        assert _clobbers(_conv_steps(graph), lead - 1)


def combined_graph(rows: list[Row], rng: np.random.Generator) -> ir.Graph:
    """Every row's op side by side in one graph (one firmware), each with its own inputs and output."""
    return side_by_side({row.name: build_graph(row, rng) for row in rows}, "fast_kernels")


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500"])
def test_fast_kernels_in_qemu_match_reference(board, tmp_path):
    """The DSP code itself: every fast row, in one firmware for an emulated Cortex-M4/M7."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    rng = np.random.default_rng(RNG_SEED)
    graph = combined_graph([r for r in ROWS if r.kernel], rng)
    build(graph, get_board(board), tmp_path / "fw", source="fast kernel table", log=lambda message: None)
    for i, inputs in enumerate(random_batch(graph, rng, 3)):
        np.savez(tmp_path / f"x{i}.npz", *inputs)
        result = bench(tmp_path / "fw", emulate=True, input_path=tmp_path / f"x{i}.npz")
        assert result["bit_exact"]
        assert result["outputs"] == [o.reshape(-1).tolist() for o in ref.outputs(graph, inputs)]
