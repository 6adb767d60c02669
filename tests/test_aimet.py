"""AIMET's encodings (sim.export's JSON, both documented formats) deployed on an ONNX model:
AIMET's ranges and rounded weights, 8 and 4 bits, per tensor and per channel; the host C and
TFLM bit-exact with the reference, which stays close to the simulation AIMET's
QuantizationSimModel runs on the same encodings; the CLI builds it and QEMU runs it; an
encodings file that does not fit the model is refused in one line. No AIMET needed: the
encodings are made here (support/aimet_like.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyq import ref
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.onnx import deployed_with_encodings
from tinyq.quant.evaluate import dequantize

from support.aimet_like import as_v1, encodings_for, simulated, write
from support.cli import assert_clean_error, tinyq
from support.hostlib import HostModel
from support.onnx_models import exported, torch_modules
from support.tflm import tflm_outputs

CASES = {  # name: (model, weight bits, per channel, format)
    "cnn_w8_per_tensor_v061": ("cnn_bn_flatten_linear", 8, False, "0.6.1"),
    "cnn_w4_per_channel_v1": ("cnn_bn_flatten_linear", 4, True, "1.0.0"),
    "residual_w8_per_channel_v061": ("residual_concat_mean", 8, True, "0.6.1"),
    "separable_w4_per_channel_v061": ("depthwise_separable", 4, True, "0.6.1"),
}


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("aimet_models")


def model_and_encodings(case: str, onnx_dir, tmp_path):
    name, bits, per_channel, version = CASES[case]
    path = exported(name, onnx_dir)
    calib = np.random.default_rng(6).standard_normal((24, *torch_modules()[name][1][1:])).astype(np.float32)
    encodings = encodings_for(path, calib, bits, per_channel)
    return path, encodings, write(encodings if version == "0.6.1" else as_v1(encodings), tmp_path / "model.encodings")


@pytest.mark.parametrize("case", CASES)
def test_aimet_encodings_deploy_bit_exact_and_close_to_aimets_simulation(case, onnx_dir, tmp_path):
    path, encodings, encodings_path = model_and_encodings(case, onnx_dir, tmp_path)
    _, graph, notes = deployed_with_encodings(path, encodings_path)
    assert notes == []  # symmetric weights, 8-bit activations: nothing adjusted
    bits = CASES[case][1]
    weighted = [op for op in graph.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert {graph[op.inputs[1]].dtype for op in weighted} == {"int4" if bits == 4 else "int8"}
    x_q = graph[graph.inputs[0]].qparams
    first = encodings["activation_encodings"][next(iter(encodings["activation_encodings"]))][0]
    assert (x_q.s, x_q.zp) == pytest.approx((first["scale"], -(first["offset"] + 128)))
    perm = graph.input_perms.get(graph.inputs[0])
    host, written = HostModel(graph, tmp_path), to_tflite(graph)
    out_q = graph[graph.outputs[0]].qparams
    shape = torch_modules()[CASES[case][0]][1]
    for x in np.random.default_rng(7).standard_normal((3, *shape)).astype(np.float32):
        sample = np.clip(np.round(np.transpose(x, perm) / x_q.s) + x_q.zp, -128, 127).astype(np.int8)
        expected = ref.outputs(graph, [sample])[0]
        assert np.array_equal(host.run([sample])[0], expected)
        if bits == 8:  # the pinned TFLM refuses int4 FULLY_CONNECTED weights at Prepare; host C checks int4
            nchw = np.transpose(sample, np.argsort(perm))
            assert np.array_equal(tflm_outputs(written, [nchw], 1)[0], expected)
        theirs = simulated(path, encodings, x)
        ours = dequantize(graph[graph.outputs[0]], expected).reshape(theirs.shape)
        assert np.abs(ours - theirs).max() <= 8 * out_q.s + 0.05 * np.abs(theirs).max()


def test_asymmetric_weight_encodings_are_requantized_with_a_note(onnx_dir, tmp_path):
    path, encodings, _ = model_and_encodings("cnn_w8_per_tensor_v061", onnx_dir, tmp_path)
    for per_channel in encodings["param_encodings"].values():
        for e in per_channel:
            e["is_symmetric"], e["offset"] = "False", -100
    _, graph, notes = deployed_with_encodings(path, write(encodings, tmp_path / "asym.encodings"))
    assert len(notes) == 1 and "requantized symmetric" in notes[0]
    assert all(graph[op.inputs[1]].qparams.zp == 0 for op in graph.ops if op.kind == "CONV_2D")


def test_what_aimet_leaves_float_is_ranged_on_the_calibration_data(onnx_dir, tmp_path):
    """Without its model preparer AIMET quantizes no functional op (`x + y`): tinyq ranges such
    a tensor over --calib data (saying so), or refuses it without."""
    from tinyq.errors import TinyqError

    path, encodings, _ = model_and_encodings("residual_w8_per_channel_v061", onnx_dir, tmp_path)
    add = next(n for n in encodings["activation_encodings"] if "Add" in n)
    del encodings["activation_encodings"][add]
    partial = write(encodings, tmp_path / "partial.encodings")
    with pytest.raises(TinyqError, match="leaves ADD .* give --calib to range what AIMET left float"):
        deployed_with_encodings(path, partial)
    calib = np.random.default_rng(9).standard_normal((16, 8, 8, 3)).astype(np.float32)
    _, graph, notes = deployed_with_encodings(path, partial, calib)
    assert notes == [f"aimet: min-max ranges from the calibration data for what AIMET left float: {add}"]
    sample = np.zeros((1, 8, 8, 3), np.int8)
    assert np.array_equal(HostModel(graph, tmp_path).run([sample])[0], ref.outputs(graph, [sample])[0])


def edited(encodings: dict, edit) -> dict:
    copy = json.loads(json.dumps(encodings))
    edit(copy)
    return copy


BAD = {
    "unknown_parameter": (
        lambda e: e["param_encodings"].update({"conv9.weight": e["param_encodings"][next(iter(e["param_encodings"]))]}),
        "encodes parameter 'conv9.weight', which the ONNX model does not have",
    ),
    "missing_weights": (lambda e: e["param_encodings"].clear(), "has no encoding for the weights"),
    "sixteen_bit_activation": (
        lambda e: next(iter(e["activation_encodings"].values()))[0].update(bitwidth=16),
        "is encoded with 16 bits; tinyq deploys 8-bit per-tensor activations",
    ),
    "missing_activation": (lambda e: e["activation_encodings"].clear(), "leaves CONV_2D '/0/Conv' float"),
    "not_encodings": (lambda e: e.pop("activation_encodings"), "is not an AIMET encodings file (KeyError"),
}


@pytest.mark.parametrize("bad", BAD)
def test_encodings_that_do_not_fit_the_model_are_refused(bad, onnx_dir, tmp_path):
    path, encodings, _ = model_and_encodings("cnn_w8_per_tensor_v061", onnx_dir, tmp_path)
    edit, message = BAD[bad]
    wrong = write(edited(encodings, edit), tmp_path / "bad.encodings")
    assert_clean_error(tinyq("build", path, "--encodings", wrong, "--board", "host", "-o", tmp_path / "b"), message)


def test_encodings_options_that_do_not_apply(onnx_dir, tmp_path):
    path, _, encodings_path = model_and_encodings("cnn_w8_per_tensor_v061", onnx_dir, tmp_path)
    result = tinyq("quantize", path, "--encodings", encodings_path, "--bits", "w4a8", "-o", tmp_path / "q")
    assert_clean_error(result, "--encodings gives the quantization")
    (tmp_path / "m.tflite").write_bytes(b"\0")
    result = tinyq("quantize", tmp_path / "m.tflite", "--encodings", encodings_path, "-o", tmp_path / "q")
    assert_clean_error(result, "--encodings (AIMET's) applies to an ONNX model")
    (tmp_path / "broken.encodings").write_text("{not json")
    result = tinyq("quantize", path, "--encodings", tmp_path / "broken.encodings", "-o", tmp_path / "q")
    assert_clean_error(result, "is not an AIMET encodings file (not JSON")


def test_cli_builds_aimets_quantization_for_an_emulated_board_and_qemu_runs_it(onnx_dir, tmp_path):
    """`tinyq build model.onnx --encodings model.encodings --board mps2_an386`, then the firmware
    in QEMU on one NCHW image: bit-exact with the reference."""
    from support.env import require_tool

    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    path, _, encodings_path = model_and_encodings("cnn_w4_per_channel_v1", onnx_dir, tmp_path)
    fw = tmp_path / "fw"
    result = tinyq("build", path, "--encodings", encodings_path, "--board", "mps2_an386", "-o", fw)
    assert result.returncode == 0, result.stderr
    report = json.loads((fw / "report.json").read_text())
    assert report["quant"]["algo"] == ["aimet encodings"] and report["quant"]["bits"].startswith("w4")
    np.save(tmp_path / "x.npy", np.random.default_rng(8).standard_normal((1, 1, 14, 14)).astype(np.float32))
    run = tinyq("--print-json", "bench", fw, "--emulate", "--input", tmp_path / "x.npy")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["bit_exact"] is True
