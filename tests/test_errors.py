"""One clear line and exit code 2 for every class of bad input the issue lists.

Model files that are corrupt or truncated are covered by test_cli and test_fuzz,
unsupported layers and ops by test_keras_import and test_cli, noisy serial lines by
test_faults; this file covers the rest, one table row per case.
"""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest
import serial

from support.cli import assert_clean_error, tinyq
from support.env import require_tool


def _softmax_axis(L, x):
    return L.Softmax(axis=1)(L.Conv2D(4, 1)(x))


def _batchnorm_axis(L, x):
    return L.BatchNormalization(axis=1)(L.Conv2D(4, 1)(x))


def _shared_layer(L, x):
    conv = L.Conv2D(3, 1)
    return conv(conv(x))


def _too_big(L, x):
    return L.GlobalAveragePooling2D()(L.Conv2D(64, 3, padding="same")(x))


def _huge_dense(L, x):
    return L.Dense(2000)(L.Dense(3000)(L.Flatten()(x)))


# name -> (input shape, body, extra build options, expected fragment)
MODEL_CASES = {
    "unknown input size": ((None, None, 3), lambda L, x: L.Conv2D(4, 3)(x), [], "unknown dimension"),
    "softmax over a spatial axis": ((8, 8, 3), _softmax_axis, [], "softmax over axis 1 is not supported"),
    "batchnorm over a spatial axis": ((8, 8, 3), _batchnorm_axis, [], "BatchNormalization over axis"),
    "layer used twice": ((8, 8, 3), _shared_layer, [], "is used 2 times"),
    "activations over the RAM": (
        (1000, 1000, 3),
        _too_big,
        ["--board", "mps2_an386"],
        "over the 4,194,304-byte budget",
    ),
    "weights over the flash": (
        (8, 8, 3),
        _huge_dense,
        ["--board", "mps2_an386", "--max-flash", "1M"],
        "over the 1,048,576-byte budget (--max-flash)",
    ),
}


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


@pytest.mark.parametrize("name", MODEL_CASES)
def test_models_tinyq_cannot_deploy(name, keras, tmp_path):
    shape, body, options, fragment = MODEL_CASES[name]
    x = keras.Input(shape)
    keras.Model(x, body(keras.layers, x)).save(tmp_path / "m.keras")
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, *(d or 8 for d in shape)), np.float32))
    options = options or ["--board", "host"]
    assert_clean_error(
        tinyq("build", tmp_path / "m.keras", *options, "--calib", tmp_path / "calib.npz", "-o", tmp_path / "out"),
        fragment,
    )


CALIB_CASES = {
    "strings": (np.array([["a"] * 12] * 8), "dtype <U1; expected numbers"),
    "complex numbers": (np.zeros((8, 12), complex), "dtype complex128; expected numbers"),
    "wrong sample shape": (np.zeros((8, 5), np.float32), "the model expects [12]"),
    "no samples": (np.zeros((0, 12), np.float32), "holds no samples"),
    "infinite values": (np.full((8, 12), np.inf, np.float32), "NaN or infinite"),
}


@pytest.mark.parametrize("name", CALIB_CASES)
def test_bad_calibration_data(name, keras, tmp_path):
    from support import keras_models

    keras_models.build(keras, "dense_softmax").save(tmp_path / "m.keras")
    values, fragment = CALIB_CASES[name]
    np.savez(tmp_path / "c.npz", x=values)
    assert_clean_error(
        tinyq("quantize", tmp_path / "m.keras", "--calib", tmp_path / "c.npz", "-o", tmp_path / "o"), fragment
    )


def test_labels_that_are_not_classes(keras, tmp_path):
    from support import keras_models

    keras_models.build(keras, "dense_softmax").save(tmp_path / "m.keras")
    np.savez(tmp_path / "c.npz", x=np.zeros((8, 12), np.float32))
    np.savez(tmp_path / "d.npz", x=np.zeros((8, 12), np.float32), y=np.linspace(0, 1, 8))
    result = tinyq("eval", tmp_path / "m.keras", "--data", tmp_path / "d.npz", "--calib", tmp_path / "c.npz")
    assert_clean_error(result, "not class indices (e.g. 0.142857)")


def only_sh_on_path(tmp_path) -> dict:
    """A PATH with a shell and nothing else: no compilers, no QEMU."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to(shutil.which("sh"))
    return {"PATH": str(bin_dir)}


def test_missing_arm_toolchain(tmp_path, mlperf_model):
    result = tinyq(
        "build", mlperf_model("ad"), "--board", "mps2_an386", "-o", tmp_path / "o", env=only_sh_on_path(tmp_path)
    )
    assert_clean_error(result, "arm-none-eabi-gcc not found", "apt-get install gcc-arm-none-eabi")


def test_missing_host_compiler(tmp_path, mlperf_model):
    result = tinyq("build", mlperf_model("ad"), "--board", "host", "-o", tmp_path / "o", env=only_sh_on_path(tmp_path))
    assert_clean_error(result, "no C compiler", "apt-get install gcc")


@pytest.fixture(scope="module")
def device_build(builds):
    for tool in ("arm-none-eabi-gcc", "cc"):
        require_tool(tool)
    return builds("ad", "mps2_an386")[0]


def test_missing_qemu(device_build, tmp_path):
    result = tinyq("bench", device_build, "--emulate", env=only_sh_on_path(tmp_path))
    assert_clean_error(result, "qemu-system-arm not found", "apt-get install qemu-system-arm")


@pytest.fixture
def pty_port():
    """A pseudo-terminal: the tool opens its path like a board's /dev/ttyACM0; the test holds the other end."""
    controller, port = os.openpty()
    yield controller, os.ttyname(port)
    os.close(controller)
    os.close(port)


def test_busy_serial_port(device_build, pty_port):
    _, path = pty_port
    with serial.Serial(path, exclusive=True):  # e.g. a serial monitor left open
        assert_clean_error(tinyq("bench", device_build, "--port", path), f"serial port {path} is busy")


def test_silent_serial_port(device_build, pty_port):
    _, path = pty_port
    assert_clean_error(tinyq("bench", device_build, "--port", path), "INFO got no reply within 5 s after 4 tries")


def test_garbled_serial_port(device_build, pty_port):
    """A board at the wrong baud rate: a stream of random bytes, some looking like frame starts."""
    controller, path = pty_port
    stop = threading.Event()

    def babble():
        rng = np.random.default_rng(0)
        while not stop.is_set():
            chunk = rng.integers(0, 256, 64, dtype=np.uint8)
            chunk[::16] = 0xA5
            try:
                os.write(controller, chunk.tobytes())
            except OSError:
                return
            stop.wait(0.005)

    thread = threading.Thread(target=babble, daemon=True)
    thread.start()
    try:
        result = tinyq("bench", device_build, "--port", path)
    finally:
        stop.set()
        thread.join()
    assert_clean_error(result, "serial link failed: INFO got", "corrupt frames seen")


def test_quantization_options_on_an_int8_model(tmp_path, mlperf_model):
    result = tinyq("build", mlperf_model("ad"), "--board", "host", "--bits", "w4a8", "-o", tmp_path / "o")
    assert_clean_error(result, "already int8: quantization options")


def test_flashing_a_build_without_firmware(tmp_path, mlperf_model):
    built = tinyq("build", mlperf_model("ad"), "--board", "nucleo_f746", "--no-compile", "-o", tmp_path / "o")
    assert built.returncode == 0, built.stderr
    assert_clean_error(tinyq("flash", tmp_path / "o"), "holds no firmware")
