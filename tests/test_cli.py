"""The command line: help, inspect, and one clear error line for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyq.errors import TinyqError
from tinyq.importers.tflite import parse_tflite

from support.cases import Case, convert
from support.cli import assert_clean_error, tinyq


def test_help_lists_commands():
    result = tinyq("--help")
    assert result.returncode == 0
    assert "inspect" in result.stdout


def test_inspect_reports_the_published_mac_count(mlperf_model, anchors):
    for key in ("kws", "ic", "ad"):
        result = tinyq("--print-json", "inspect", mlperf_model(key))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["totals"]["macs"] == anchors["models"][key]["macs"]
        assert report["totals"]["ops"] == len(report["ops"])
    table = tinyq("inspect", mlperf_model("kws"))
    assert "DEPTHWISE_CONV_2D" in table.stdout and "2,656,768" in table.stdout


def test_truncated_model_is_one_clear_error(tmp_path, mlperf_model):
    data = mlperf_model("kws").read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: len(data) // 3])
    assert_clean_error(tinyq("inspect", path), "corrupt or truncated")


def test_every_truncation_raises_only_tinyq_errors(mlperf_model):
    data = mlperf_model("ic").read_bytes()
    for cut in np.linspace(0, len(data) - 1, 60).astype(int):
        with pytest.raises(TinyqError):
            parse_tflite(data[:cut])


def test_random_bytes_are_one_clear_error(tmp_path):
    path = tmp_path / "noise.tflite"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert_clean_error(tinyq("inspect", path), "not a TFLite model")
    garbage = bytearray(path.read_bytes())
    garbage[4:8] = b"TFL3"
    path.write_bytes(bytes(garbage))
    assert_clean_error(tinyq("inspect", path), "corrupt")


def test_unsupported_operator_names_op_index_and_supported_set(tmp_path):
    case = Case("gelu_dense", (4,), lambda k, x: k.layers.Dense(3, activation="gelu")(x), ())
    path = convert(case, tmp_path)
    result = tinyq("inspect", path)
    assert_clean_error(result, "unsupported operator GELU at index", "CONV_2D", "SOFTMAX")


def test_missing_file_and_unknown_format(tmp_path):
    assert_clean_error(tinyq("inspect", tmp_path / "nope.tflite"), "does not exist")
    other = tmp_path / "model.pt"
    other.write_bytes(b"\0")
    assert_clean_error(tinyq("inspect", other), "unknown model format")


def test_debug_flag_shows_the_traceback(tmp_path):
    path = tmp_path / "noise.tflite"
    path.write_bytes(b"\0" * 64)
    result = tinyq("--debug", "inspect", path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_json_mode_prints_one_json_document(mlperf_model, tmp_path):
    boards = json.loads(tinyq("--print-json", "boards").stdout)
    assert {"mps2_an386", "nucleo_f746zg", "host"} <= {b["name"] for b in boards}
    built = tinyq("--print-json", "build", mlperf_model("ad"), "--board", "host", "-o", tmp_path / "b")
    assert built.returncode == 0 and built.stderr == ""
    report = json.loads(built.stdout)
    assert (
        report["memory"]["arena_bytes"]
        == json.loads((tmp_path / "b" / "report.json").read_text())["memory"]["arena_bytes"]
    )
    bench = json.loads(tinyq("--print-json", "bench", tmp_path / "b").stdout)
    assert bench["bit_exact"] is True and bench["target"] == "host"
    failed = tinyq("--print-json", "build", mlperf_model("ad"), "--board", "nope", "-o", tmp_path / "c")
    assert failed.returncode == 2 and failed.stdout == "" and "unknown board" in failed.stderr


def test_quiet_mode_leaves_results_and_errors(tmp_path):
    data = tmp_path / "d.npz"
    x = np.random.default_rng(0).normal(0, 1, (32, 12)).astype(np.float32)
    np.savez(data, x=x, y=np.zeros(32, np.int64))
    import keras

    from support import keras_models

    keras_models.build(keras, "dense_softmax").save(tmp_path / "m.keras")
    loud = tinyq("eval", tmp_path / "m.keras", "--data", data)
    quiet = tinyq("-q", "eval", tmp_path / "m.keras", "--data", data)
    assert "calibrating on the first" in loud.stderr and quiet.stderr == ""
    assert quiet.returncode == 0 and "quantized_accuracy" in quiet.stdout
