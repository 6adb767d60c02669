"""The serial host against a scripted device: retries, resets, silence, bad frames."""

from __future__ import annotations

import time

import pytest
import serial

from tinyq.errors import TinyqError
from tinyq.target.device import Device
from tinyq.target.link import Link, frame

from support.fake_device import FakeDevice


def connect(device: FakeDevice, **kwargs) -> Link:
    return Link(serial.serial_for_url(device.url, timeout=0.02), **kwargs)


def run_model(device: Device, data: bytes) -> bytes:
    device.load(data)
    device.invoke(1, timeout=2)
    return device.read(len(data))


def test_clean_session_returns_the_model_output():
    fake = FakeDevice()
    dev = Device(connect(fake, timeout=2))
    assert dev.info()["model"] == "fake"
    assert run_model(dev, bytes(range(16))) == bytes(reversed(range(16)))


def test_corrupt_replies_are_retried():
    fake = FakeDevice(corrupt_replies=3)
    link = connect(fake, timeout=0.5, retries=3)
    assert run_model(Device(link), bytes(range(16))) == bytes(reversed(range(16)))
    assert link.stats.bad_frames == 3 and link.stats.retries == 3


def test_too_many_corrupt_replies_end_in_a_clear_error():
    fake = FakeDevice(corrupt_replies=100)
    link = connect(fake, timeout=0.3, retries=2)
    with pytest.raises(TinyqError, match=r"INFO got .* after 3 tries \(3 corrupt frames seen\)"):
        Device(link).info()


def test_silent_device_times_out_cleanly_and_quickly():
    fake = FakeDevice(silent=True)
    link = connect(fake, timeout=0.25, retries=2)
    start = time.monotonic()
    with pytest.raises(TinyqError, match="no reply within 0.25 s after 3 tries"):
        Device(link).info()
    assert time.monotonic() - start < 3


def test_reset_during_load_reloads_and_gives_the_right_answer():
    fake = FakeDevice(input_size=1200, reset_on_load=2)  # the second LOAD chunk reboots the device
    link = connect(fake, timeout=0.3, retries=3)
    data = bytes(i % 251 for i in range(1200))
    # Without noticing the reboot, the first chunk would be lost and the answer wrong.
    assert run_model(Device(link), data) == bytes(reversed(data))
    assert link.stats.boots >= 1  # the reset (pyserial may drop the power-up banner on connect)


def test_a_garbage_stream_before_a_reply_is_skipped():
    fake = FakeDevice()
    link = connect(fake, timeout=1)
    link.port.write(b"\xa5\xff\xff\xff\xff" + b"junk")  # a bogus oversized frame from our side is ignored
    assert Device(link).info()["board"] == "fake"


def test_frame_layout():
    data = frame(0x02, 7, b"\x01\x02")
    assert data[:5] == b"\xa5\x02\x07\x02\x00" and len(data) == 5 + 2 + 4
