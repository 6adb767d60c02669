"""Streaming builds: a recurrent model consuming one frame per call, its state kept in the arena
between calls. Frame for frame in QEMU against the integer reference of the whole sequence, past
the training length; RESET; a short frame over the serial link refused with the state untouched;
the models and uses --streaming refuses."""

from __future__ import annotations

import numpy as np
import pytest

from tinyq import ref
from tinyq.errors import TinyqError
from tinyq.streaming import frame_outputs, streaming, with_steps

from support.env import require_tool

STEPS, FEATURES = 10, 4


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def quantized(keras, body, seed=0):
    from tinyq.data import Dataset
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.quant import parse_config, quantize

    keras.utils.set_random_seed(seed)
    x = keras.Input((STEPS, FEATURES))
    model = keras.Model(x, body(keras.layers, x))
    calib = Dataset(np.random.default_rng(seed).uniform(-1, 1, (100, STEPS, FEATURES)).astype(np.float32))
    return quantize(float_model_from_keras(model), calib, parse_config("minmax", "w8a8"), quiet=True).graph


def sequence_model(keras):
    """Per-step outputs: an LSTM, a dense layer on every step, a GRU."""
    return quantized(
        keras, lambda L, x: L.GRU(5, return_sequences=True)(L.Dense(6)(L.LSTM(7, return_sequences=True)(x)))
    )


def last_step_model(keras):
    """The classifier form: SimpleRNN into a GRU's last step into a dense head."""
    return quantized(keras, lambda L, x: L.Dense(3)(L.GRU(6)(L.SimpleRNN(8, return_sequences=True)(x))), seed=1)


def frames_of(sequence):
    return [frame.reshape(1, 1, -1) for frame in sequence]


def built(graph, tmp_path):
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        require_tool(tool)
    from tinyq.boards import get_board
    from tinyq.build import build

    report = build(streaming(graph), get_board("mps2_an386"), tmp_path / "fw", source="stream", log=lambda m: None)
    assert report.model.streaming
    return tmp_path / "fw", report


def test_streamed_frames_in_qemu_equal_the_reference_of_the_whole_sequence(keras, tmp_path):
    """30 frames (three times the training length) one per call: frame t's outputs are step t of the
    non-streaming model's reference run once on all 30 steps."""
    from tinyq.bench import bench

    graph = sequence_model(keras)
    sequence = np.random.default_rng(2).integers(-128, 128, (3 * STEPS, FEATURES)).astype(np.int8)
    np.save(tmp_path / "sequence.npy", sequence)
    out, _ = built(graph, tmp_path)
    result = bench(out, emulate=True, sequence_path=tmp_path / "sequence.npy")
    whole = ref.outputs(with_steps(graph, 3 * STEPS), [sequence[None]])[0]
    assert result["outputs"] == [whole[:, t].reshape(-1).tolist() for t in range(3 * STEPS)]
    assert result["bit_exact"] and len(result["instructions_per_frame"]) == 3 * STEPS


def test_a_streamed_classifier_gives_the_reference_of_each_prefix(keras, tmp_path):
    """A last-step model: frame t's outputs are the model's over frames 0..t (the prefix run by the
    non-streaming reference; at the training length, the model as it was quantized)."""
    from tinyq.bench import bench

    graph = last_step_model(keras)
    sequence = np.random.default_rng(3).integers(-128, 128, (2 * STEPS + 3, FEATURES)).astype(np.int8)
    np.save(tmp_path / "sequence.npy", sequence)
    out, _ = built(graph, tmp_path)
    result = bench(out, emulate=True, sequence_path=tmp_path / "sequence.npy")
    assert result["bit_exact"]
    assert result["outputs"][STEPS - 1] == ref.outputs(graph, [sequence[None, :STEPS]])[0].reshape(-1).tolist()
    prefixes = [ref.outputs(with_steps(graph, t + 1), [sequence[None, : t + 1]])[0] for t in range(len(sequence))]
    assert result["outputs"] == [p.reshape(-1).tolist() for p in prefixes]


def test_reset_and_a_short_frame_over_the_serial_link(keras, tmp_path):
    """In one firmware session: the state carries over between sequences until RESET, which starts
    over exactly; a frame loaded short is refused before anything runs, and the sequence goes on
    from the state the refused frame did not touch."""
    from tinyq.boards import get_board
    from tinyq.target.device import Device
    from tinyq.target.link import DeviceError, Link
    from tinyq.target.qemu import Emulator

    graph = last_step_model(keras)
    out, report = built(graph, tmp_path)
    sequence = np.random.default_rng(4).integers(-128, 128, (8, FEATURES)).astype(np.int8)
    frames = [f.tobytes() for f in sequence]
    expected = b"".join(o.tobytes() for step in frame_outputs(streaming(graph), frames_of(sequence)) for o in step)
    size = sum(int(np.prod(t.shape)) for t in report.model.outputs)  # int8 outputs: one byte each
    with Emulator(
        get_board("mps2_an386"), out / report.firmware.elf, out / "emulator", count_instructions=False
    ) as emu:
        device = Device(Link(emu.serial, timeout=10.0))
        assert device.info()["model"] == report.model.hash  # and the boot banner is behind us
        _, first = device.stream(tuple(frames), size, timeout=30)
        assert first == expected
        carried = b""
        for frame in frames:  # no RESET: the state of the first sequence carries on
            device.load(frame)
            device.invoke(1)
            carried += device.read(size)
        assert carried != expected
        _, again = device.stream(tuple(frames), size, timeout=30)
        assert again == expected
        device.link.request(0x06)  # RESET
        device.load(frames[0])
        device.invoke(1)
        device.read(size)
        device.load(frames[1][:-1])  # one byte short
        with pytest.raises(DeviceError, match="needs a whole new frame"):
            device.invoke(1)
        rest = b""
        for frame in frames[1:]:
            device.load(frame)
            device.invoke(1)
            rest += device.read(size)
        assert rest == expected[size:]


def test_a_frame_of_the_wrong_size_is_refused_by_bench(keras, tmp_path):
    from tinyq.bench import bench

    out, _ = built(last_step_model(keras), tmp_path)
    np.save(tmp_path / "wide.npy", np.zeros((5, FEATURES + 1), np.int8))
    with pytest.raises(TinyqError, match=f"takes frames of {FEATURES} features"):
        bench(out, emulate=True, sequence_path=tmp_path / "wide.npy")


@pytest.mark.parametrize(
    "body, message",
    [
        (lambda L, x: L.LSTM(4)(L.Conv1D(5, 3)(x)), "not a causal convolution over time"),
        (lambda L, x: L.LSTM(4)(L.Conv1D(5, 3, strides=2, padding="causal")(x)), "not a causal convolution"),
        (lambda L, x: L.LSTM(4)(L.MaxPooling1D(2)(x)), "combines time steps"),
        (lambda L, x: L.LSTM(4)(L.DepthwiseConv1D(3)(L.ZeroPadding1D((1, 1))(x))), "not a causal convolution"),
        (lambda L, x: L.Dense(3)(L.Flatten()(L.LSTM(4, return_sequences=True)(x))), "combines time steps"),
        (lambda L, x: L.Dense(3)(L.Flatten()(x)), "combines time steps"),
        (lambda L, x: L.Dense(3)(x), "no recurrent layer"),
    ],
    ids=[
        "valid_conv_over_time",
        "strided_causal_conv",
        "pooling_over_time",
        "zero_padding_both_sides",
        "flatten_of_a_sequence",
        "no_sequence_layer",
        "dense_only",
    ],
)
def test_streaming_refuses_models_whose_layers_mix_time_steps(body, message, keras):
    graph = quantized(keras, body)
    with pytest.raises(TinyqError, match=message):
        streaming(graph)


def test_sequence_needs_a_streaming_build(keras, tmp_path):
    from tinyq.bench import bench
    from tinyq.boards import get_board
    from tinyq.build import build

    build(last_step_model(keras), get_board("host"), tmp_path / "fw", source="plain", log=lambda m: None)
    np.save(tmp_path / "sequence.npy", np.zeros((5, FEATURES), np.int8))
    with pytest.raises(TinyqError, match="build it with --streaming"):
        bench(tmp_path / "fw", sequence_path=tmp_path / "sequence.npy")


def test_an_image_read_row_by_row_streams(keras):
    """A (1, rows, columns, 1) input reshaped into a sequence of rows (the Fashion-MNIST form):
    each frame is one row, and the last frame's outputs are the whole image's."""
    from tinyq.data import Dataset
    from tinyq.importers.keras import float_model_from_keras
    from tinyq.quant import parse_config, quantize

    keras.utils.set_random_seed(5)
    x = keras.Input((STEPS, FEATURES, 1))
    y = keras.layers.Dense(3)(keras.layers.LSTM(6)(keras.layers.Reshape((STEPS, FEATURES))(x)))
    calib = Dataset(np.random.default_rng(5).uniform(0, 1, (100, STEPS, FEATURES, 1)).astype(np.float32))
    graph = quantize(float_model_from_keras(keras.Model(x, y)), calib, parse_config("minmax", "w8a8"), quiet=True).graph
    image = np.random.default_rng(6).integers(-128, 128, (1, STEPS, FEATURES, 1)).astype(np.int8)
    framed = streaming(graph)
    assert framed[framed.inputs[0]].shape == (1, 1, FEATURES, 1)
    frames = [image[:, t : t + 1] for t in range(STEPS)]
    assert np.array_equal(frame_outputs(framed, frames)[-1][0], ref.outputs(graph, [image])[0])


CAUSAL_BODIES = {
    "conv_dilated_conv_gru": lambda L, x: L.Dense(4)(
        L.GRU(5, return_sequences=True)(
            L.Conv1D(6, 2, padding="causal", dilation_rate=2)(L.Conv1D(8, 3, padding="causal", activation="relu")(x))
        )
    ),
    # Keras's depthwise and separable 1-D layers take no causal padding: ZeroPadding1D on the left
    "depthwise_separable_lstm": lambda L, x: L.LSTM(5, return_sequences=True)(
        L.SeparableConv1D(7, 3)(L.ZeroPadding1D((2, 0))(L.DepthwiseConv1D(4)(L.ZeroPadding1D((3, 0))(x))))
    ),
    "conv_simple_rnn_last": lambda L, x: L.Dense(3)(
        L.SimpleRNN(6)(L.Conv1D(7, 4, padding="causal", activation="relu6")(x))
    ),
    "tcn_only": lambda L, x: L.Dense(2)(
        L.Conv1D(5, 3, padding="causal", dilation_rate=3, activation="relu")(L.Conv1D(9, 1)(x))
    ),
}


@pytest.mark.parametrize("name", CAUSAL_BODIES)
def test_causal_convolutions_stream_through_ring_buffers(name, keras, tmp_path):
    """Causal convolutions over time keep ring buffers of their last input frames (a variable
    each): frame by frame, the reference and the host C give the whole sequence's reference at
    every step, past the training length; tinyq_reset starts the rings over."""
    from support.hostlib import HostModel

    graph = quantized(keras, CAUSAL_BODIES[name])
    framed = streaming(graph)
    assert {"READ_VARIABLE", "ASSIGN_VARIABLE"} <= {op.kind for op in framed.ops}
    steps = 3 * STEPS
    sequence = np.random.default_rng(7).integers(-128, 128, (1, steps, FEATURES)).astype(np.int8)
    whole = ref.outputs(with_steps(graph, steps), [sequence])[0]
    frames = [sequence[:, t : t + 1] for t in range(steps)]
    streamed = [step[0] for step in frame_outputs(framed, frames)]
    if whole.ndim == 3:  # a sequence output: step t of the whole run
        assert all(np.array_equal(whole[:, t : t + 1], s) for t, s in enumerate(streamed))
    else:  # the last step's head: the prefix runs
        assert np.array_equal(streamed[-1], whole)
    host = HostModel(framed, tmp_path)
    assert all(np.array_equal(host.run([f])[0], s) for f, s in zip(frames, streamed))
    host.lib.tinyq_reset()
    assert all(np.array_equal(host.run([f])[0], s) for f, s in zip(frames[:4], streamed))


def test_ring_buffers_in_qemu_equal_the_whole_sequence(keras, tmp_path):
    from tinyq.bench import bench

    graph = quantized(keras, CAUSAL_BODIES["conv_dilated_conv_gru"])
    steps = 2 * STEPS
    sequence = np.random.default_rng(8).integers(-128, 128, (steps, FEATURES)).astype(np.int8)
    np.save(tmp_path / "sequence.npy", sequence)
    out, report = built(graph, tmp_path)
    result = bench(out, emulate=True, sequence_path=tmp_path / "sequence.npy")
    whole = ref.outputs(with_steps(graph, steps), [sequence[None]])[0]
    assert result["outputs"] == [whole[:, t].reshape(-1).tolist() for t in range(steps)]
    assert result["bit_exact"] and len(result["instructions_per_frame"]) == steps
