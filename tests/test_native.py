"""The host evaluator (tinyq/target/native.py): the generated C with the host kernels, compiled
for this machine and called over batches, bit-exact with the numpy reference."""

from __future__ import annotations

import platform
import subprocess

import numpy as np
import pytest

from tinyq import codegen, ir, ref
from tinyq.importers.tflite import parse_tflite
from tinyq.quant.evaluate import evaluator, integer_outputs
from tinyq.resources import data_dir
from tinyq.target import native
from tinyq.target.native import NativeModel

from support.cases import CASES, convert
from support.env import require_tool
from support.graphs import side_by_side
from support.one_op import Row, build_graph
from support.recurrent import LSTM_CASES, lstm_tflite

SAMPLES = 24
HOST_KERNEL_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
# every case with a host kernel, and every seventh of the rest: each op family's portable kernels
# run inside the evaluator too
NATIVE_CASES = [c for i, c in enumerate(CASES) if set(c.must_have) & HOST_KERNEL_OPS or i % 7 == 0]
# what hosts without AVX-512 compile: the host kernels' plain C paths
BASELINE = "x86-64-v2" if platform.machine().lower() in ("x86_64", "amd64") else "native"
X86 = platform.machine().lower() in ("x86_64", "amd64")
# every path of the host kernels this machine can run: its own (AMX tiles where it has them),
# AVX-512 vectors without the tiles, and plain C
HOST_ARCHS = {"native": "-march=native"}
if X86:
    HOST_ARCHS |= {"vectors": "-march=native -mno-amx-tile -mno-amx-int8", "plain": f"-march={BASELINE}"}

A = ir.Activation
# convolutions over both of the host kernel's ways (wide window rows read from the padded plane
# in one run, narrow ones or unequal strides gathered), with channel tails, partial blocks of
# rows, dilated rows, batches and the plane narrower than the input; fully connected layers
HOST_ROWS = [
    Row("run3x3_same_channel_tail", "convolve_host_s8", "conv", (1, 9, 11, 16), 20, (3, 3), pad=(1, 1, 1, 1)),
    Row("run3x3_s2_three_groups", "convolve_host_s8", "conv", (1, 10, 9, 16), 37, (3, 3), (2, 2), (0, 1, 0, 1)),
    Row("run1x1_relu", "convolve_host_s8", "conv", (1, 7, 7, 24), 48, act=A.RELU),
    Row("run_ragged_window_row", "convolve_host_s8", "conv", (1, 8, 8, 18), 5, (3, 3), pad=(1, 1, 1, 1)),
    Row("run_dilated_rows", "convolve_host_s8", "conv", (1, 12, 8, 16), 7, (3, 3), dilation=(2, 1)),
    Row("run_deep_k", "convolve_host_s8", "conv", (1, 5, 5, 72), 16, (3, 3), pad=(1, 1, 1, 1), act=A.RELU6),
    Row("run_fewer_pixels_than_a_block", "convolve_host_s8", "conv", (1, 3, 3, 16), 9, (3, 3), pad=(1, 1, 1, 1)),
    Row("run_plane_narrower_than_input", "convolve_host_s8", "conv", (1, 10, 10, 16), 4, (2, 2), (3, 3)),
    Row("run_batch2_per_tensor", "convolve_host_s8", "conv", (2, 6, 6, 16), 3, (3, 3), per_channel=False),
    Row("gather_first_layer", "convolve_host_s8", "conv", (1, 28, 28, 1), 24, (3, 3), pad=(1, 1, 1, 1), act=A.RELU),
    Row("gather_kws_first_layer", "convolve_host_s8", "conv", (1, 49, 10, 1), 64, (10, 4), (2, 2), (4, 5, 1, 1)),
    Row("gather_rgb_s2", "convolve_host_s8", "conv", (1, 9, 9, 3), 8, (3, 3), (2, 2), (1, 1, 1, 1)),
    Row("gather_unequal_strides", "convolve_host_s8", "conv", (1, 12, 9, 16), 11, (3, 2), (2, 1), (0, 1, 0, 1)),
    Row("dilated_columns_are_portable", "convolve_s8", "conv", (1, 10, 10, 4), 4, (3, 3), dilation=(2, 2)),
    Row("fc_ragged", "fully_connected_host_s8", "fc", (1, 45), 19),
    Row("fc_batch3_per_tensor", "fully_connected_host_s8", "fc", (3, 64), 40, per_channel=False),
]


def batch_inputs(graph, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = []
    for name in graph.inputs:
        t = graph[name]
        shape = (count,) + t.shape
        if t.dtype == "float32":
            batch.append(rng.uniform(-1.5, 1.5, shape).astype(np.float32))
        elif t.dtype == "int32":
            batch.append(rng.integers(0, 2, shape).astype(np.int32))
        else:
            info = np.iinfo(t.dtype)
            batch.append(rng.integers(info.min, info.max + 1, shape).astype(t.dtype))
    return batch


def assert_native_matches_reference(graph, seed: int, workers: int = 2) -> None:
    inputs = batch_inputs(graph, SAMPLES, seed)
    expected = ref.outputs(graph, inputs, batched=True)
    with NativeModel(graph, workers=workers) as model:
        got = model.outputs(inputs)
    for name, e, g in zip(graph.outputs, expected, got, strict=True):
        assert g.dtype == e.dtype and np.array_equal(g, e), f"output {name} differs"


@pytest.mark.parametrize("case", NATIVE_CASES, ids=[c.name for c in NATIVE_CASES])
def test_converter_case_native_matches_reference(case, case_dir):
    require_tool("cc")
    assert_native_matches_reference(parse_tflite(convert(case, case_dir).read_bytes()), seed=len(case.name))


def test_the_host_kernels_are_the_ones_chosen(case_dir):
    """Otherwise the table above would test the portable kernels twice."""
    case = next(c for c in CASES if c.name == "dw3x3_mult2_s2_valid")
    graph = parse_tflite(convert(case, case_dir).read_bytes())
    names = {layer.kernel.name for layer in codegen.generate(graph, fast=False, host=True).layers}
    assert "depthwise_conv_host_s8" in names


@pytest.mark.parametrize("key", ["kws", "ic", "ad"])
def test_mlperf_model_native_matches_reference(key, mlperf_model):
    require_tool("cc")
    assert_native_matches_reference(parse_tflite(mlperf_model(key).read_bytes()), seed=len(key), workers=3)


@pytest.mark.parametrize("arch", HOST_ARCHS)
def test_host_kernels_match_reference_over_a_table_of_shapes(arch, monkeypatch):
    """Each row's op gets the host kernel it names, and every path of it is bit-exact."""
    require_tool("cc")
    rng = np.random.default_rng(13)
    graphs = {row.name: build_graph(row, rng) for row in HOST_ROWS}
    for row in HOST_ROWS:
        kernels = [layer.kernel.name for layer in codegen.generate(graphs[row.name], fast=False, host=True).layers]
        assert kernels == [row.kernel], row.name
    monkeypatch.setattr(native, "CFLAGS", [f for f in native.CFLAGS if f != "-march=native"] + HOST_ARCHS[arch].split())
    assert_native_matches_reference(side_by_side(graphs, "host_kernels"), seed=17, workers=1)


@pytest.mark.parametrize("key", ["kws", "ic"])
def test_the_portable_dot_product_matches_reference(key, mlperf_model, monkeypatch):
    """Hosts without AVX512-VNNI take tq_host_dot4's plain C: compiled for baseline x86-64 here
    (elsewhere -march=native is that path already), exact as well; odd k included (ic's 3x3x3)."""
    require_tool("cc")
    monkeypatch.setattr(native, "CFLAGS", [f.replace("native", BASELINE) for f in native.CFLAGS])
    assert_native_matches_reference(parse_tflite(mlperf_model(key).read_bytes()), seed=7, workers=1)


@pytest.mark.parametrize("case", LSTM_CASES[:2], ids=[c.name for c in LSTM_CASES[:2]])
def test_lstm_native_matches_reference(case, tmp_path):
    require_tool("cc")
    assert_native_matches_reference(parse_tflite(lstm_tflite(case, tmp_path).read_bytes()), seed=3, workers=1)


HARNESS = r"""
#include <stdio.h>
#include "tq_host.h"
int main(void) {
    const int32_t xs[] = {0, 1, -1, 2, -2, 3, 1000, -1000, 65535, -65536, 1 << 30, -(1 << 30), INT32_MAX, INT32_MIN,
                          INT32_MIN + 1, 123456789, -987654321};
    const int32_t ms[] = {1 << 30, 1518500250, INT32_MAX, 1073741825, 2147418112, INT32_MIN};
    int32_t x[TQ_HOST_LANES], m[TQ_HOST_LANES], sh[TQ_HOST_LANES], want[TQ_HOST_LANES], got[TQ_HOST_LANES];
    long checked = 0, filled = 0;
    for (int s = -31; s <= 8; ++s)
        for (unsigned i = 0; i < sizeof xs / sizeof *xs; ++i)
            for (unsigned j = 0; j < sizeof ms / sizeof *ms; ++j) {
                const int32_t a = tq_requantize(xs[i], ms[j], s), b = tq_host_requantize(xs[i], ms[j], s);
                if (a != b) { printf("x %d m %d shift %d: %d vs %d\n", xs[i], ms[j], s, a, b); return 1; }
                ++checked;
                /* the same values in the lanes of the vector path, each lane its own multiplier and shift */
                x[filled] = xs[i], m[filled] = ms[j], sh[filled] = s, want[filled++] = a;
                if (filled < TQ_HOST_LANES) continue;
                tq_host_requantize_lanes(x, m, sh, got);
                for (int k = 0; k < TQ_HOST_LANES; ++k)
                    if (got[k] != want[k]) {
                        printf("lane x %d m %d shift %d: %d vs %d\n", x[k], m[k], sh[k], want[k], got[k]);
                        return 1;
                    }
                filled = 0;
            }
    printf("%ld\n", checked);
    return 0;
}
"""


@pytest.mark.parametrize("arch", ["native", BASELINE])
def test_host_requantization_is_tflms_on_edge_values(arch, tmp_path):
    """The branch-free requantization, scalar and on vector lanes, against the portable kernels'
    (tq_requantize, checked against TFLM elsewhere) over shifts -31..8, the int32 extremes and
    the multipliers' range."""
    cc = require_tool("cc")
    (tmp_path / "harness.c").write_text(HARNESS)
    runtime = data_dir("templates") / "runtime"
    binary = tmp_path / "harness"
    subprocess.run(
        [cc, "-std=c99", "-O3", f"-march={arch}", "-Wall", "-Wextra", "-Werror", "-Wno-psabi", f"-I{runtime}"]
        + [str(tmp_path / "harness.c"), "-o", str(binary)],
        check=True,
    )
    result = subprocess.run([str(binary)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert int(result.stdout) == 40 * 17 * 6


def test_integer_outputs_agree_on_both_evaluators_from_float_samples(case_dir):
    """A float-input model: samples are quantized the same way before either evaluator runs."""
    require_tool("cc")
    case = next(c for c in CASES if c.name == "float_io_boundary")
    graph = parse_tflite(convert(case, case_dir).read_bytes())
    x = np.random.default_rng(5).uniform(-2, 2, (1200,) + graph[graph.inputs[0]].shape).astype(np.float32)
    native = integer_outputs(graph, x, quiet=True, engine="host C")
    reference = integer_outputs(graph, x, quiet=True, engine="numpy reference")
    assert all(np.array_equal(a, b) for a, b in zip(native, reference, strict=True))


def test_the_evaluator_compiles_only_for_enough_work(mlperf_model):
    require_tool("cc")
    graph = parse_tflite(mlperf_model("kws").read_bytes())
    assert evaluator(graph, 1) == "numpy reference"
    assert evaluator(graph, 10_000) == "host C"
