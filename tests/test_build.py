"""`tinyq build --board host` and `tinyq bench` end to end, as a user runs them."""

from __future__ import annotations

import json

import numpy as np

from tinyq.importers.tflite import load_tflite

from support.cli import assert_clean_error, tinyq


def test_build_and_bench_on_host(tmp_path, mlperf_model, anchors):
    out = tmp_path / "kws"
    result = tinyq("build", mlperf_model("kws"), "--board", "host", "-o", out)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["memory"]["arena_bytes"] <= anchors["models"]["kws"]["cortex-m4/tflm+cmsis-nn"]["arena_bytes"]
    assert report["model"]["macs"] == anchors["models"]["kws"]["macs"]
    assert sum(op["macs"] for op in report["ops"]) == report["model"]["macs"]
    assert report["memory"]["weights_bytes"] > sum(op["weights_bytes"] for op in report["ops"]) * 0.99
    bench = tinyq("bench", out, "--json", tmp_path / "b.json")
    assert bench.returncode == 0, bench.stderr
    section = json.loads((tmp_path / "b.json").read_text())
    assert section["bit_exact"] is True
    assert section["outputs"][0] == anchors["models"]["kws"]["output_int8"]
    assert json.loads((out / "report.json").read_text())["bench"] == section

    x = np.random.default_rng(0).integers(-128, 128, (1, 49, 10, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert tinyq("bench", out, "--input", tmp_path / "x.npy").returncode == 0
    np.save(tmp_path / "bad.npy", np.zeros((3, 3), np.int8))
    assert_clean_error(tinyq("bench", out, "--input", tmp_path / "bad.npy"), "the model expects")
    # a float sample is quantized with the input's parameters: values on the int8 grid come back as x
    q = load_tflite(out / "model_int8.tflite")
    q = q[q.inputs[0]].qparams
    np.save(tmp_path / "float.npy", ((x.astype(np.float32) - q.zp) * q.s).astype(np.float32))
    assert tinyq("bench", out, "--input", tmp_path / "float.npy", "--json", tmp_path / "f.json").returncode == 0
    assert tinyq("bench", out, "--input", tmp_path / "x.npy", "--json", tmp_path / "i.json").returncode == 0
    outputs = [json.loads((tmp_path / f"{name}.json").read_text())["outputs"] for name in ("f", "i")]
    assert outputs[0] == outputs[1]
    np.save(tmp_path / "uint8.npy", x.view(np.uint8))
    assert_clean_error(tinyq("bench", out, "--input", tmp_path / "uint8.npy"), "expects int8, or float")


def test_no_compile_renders_only(tmp_path, mlperf_model):
    out = tmp_path / "ad"
    assert tinyq("build", mlperf_model("ad"), "--board", "host", "-o", out, "--no-compile").returncode == 0
    assert (out / "lib" / "tinyq_model" / "src" / "tinyq_model.c").exists()
    assert not (out / "host" / "tinyq_host").exists()
    assert_clean_error(tinyq("bench", out), "does not exist")


def test_unknown_board_and_missing_build(tmp_path, mlperf_model):
    assert_clean_error(tinyq("build", mlperf_model("ad"), "--board", "nope", "-o", tmp_path / "x"), "unknown board")
    assert_clean_error(tinyq("bench", tmp_path / "nothing"), "not a tinyq build folder")
