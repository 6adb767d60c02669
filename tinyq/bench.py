"""`tinyq bench`: run a build on one input, measure it, check it against the integer reference.

The same code drives every target: the host runner, a QEMU-emulated board
(instructions counted exactly by the TCG plugin) and a real board on a serial
port (cycles from its counter, latency and energy from the board's figures).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyq import ref
from tinyq.boards import Board, get_board
from tinyq.build import MODEL_FILE, read_report, write_report
from tinyq.data import quantize_input
from tinyq.errors import TinyqError
from tinyq.importers.tflite import load_tflite
from tinyq.ir import Graph
from tinyq.target import host
from tinyq.target.device import Device
from tinyq.target.link import Link
from tinyq.target.qemu import NS_PER_INSTRUCTION, Emulator
from tinyq.target.renode import Renode


def pattern_input(shape, dtype: str) -> np.ndarray:
    """The deterministic default input: byte i = (i*7+3) mod 256 (the MLPerf anchors' input)."""
    size = int(np.prod(shape))
    data = ((np.arange(size) * 7 + 3) % 256).astype(np.uint8)
    if dtype == "float32":
        return (data.astype(np.float32) / 127.5 - 1.0).reshape(shape)
    return data.view(np.int8).reshape(shape)


def load_inputs(graph: Graph, path: Path | None) -> list[np.ndarray]:
    if path is None:
        return [pattern_input(graph[n].shape, graph[n].dtype) for n in graph.inputs]
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise TinyqError(f"cannot read input {path}: {err}") from None
    arrays = [loaded[k] for k in loaded.files] if isinstance(loaded, np.lib.npyio.NpzFile) else [loaded]
    if len(arrays) != len(graph.inputs):
        raise TinyqError(f"{path} holds {len(arrays)} arrays; the model has {len(graph.inputs)} inputs")
    result = []
    for array, name in zip(arrays, graph.inputs):
        t = graph[name]
        if array.size != t.size:
            raise TinyqError(f"input {path} has shape {array.shape}; the model expects {list(t.shape)}")
        if t.dtype == "int8" and np.issubdtype(array.dtype, np.floating):   # a float sample: quantize as TFLite does
            array = quantize_input(array, t.qparams.s, t.qparams.zp)
        elif t.dtype == "int8" and array.dtype != np.int8:
            raise TinyqError(f"input {path} has dtype {array.dtype}; the model expects int8, or float "
                             f"values that tinyq quantizes (scale {t.qparams.s:.6g}, zero point {t.qparams.zp})")
        result.append(array.reshape(t.shape).astype(t.dtype))
    return result


def _unpack(graph: Graph, raw: bytes) -> list[np.ndarray]:
    outputs, offset = [], 0
    for name in graph.outputs:
        t = graph[name]
        outputs.append(np.frombuffer(raw[offset:offset + t.nbytes], dtype=t.dtype).reshape(t.shape))
        offset += t.nbytes
    return outputs


def _invoke_timeout(report: dict, runs: int) -> float:
    """Generous: slow portable kernels in a slow emulator, or a 4 MHz board."""
    return 30.0 + runs * report["model"]["macs"] * 60 / 20e6


def _device_session(device: Device, report: dict, packed: bytes, out_size: int, runs: int, profile: bool):
    info = device.info()
    if info.get("model") != report["model"]["hash"]:
        raise TinyqError(f"the board runs model {info.get('model')!r}, this build is {report['model']['hash']!r}: "
                         "flash this build first (tinyq flash)")
    device.load(packed)
    timeout = _invoke_timeout(report, runs)
    invocation = device.invoke(runs, timeout=timeout)
    raw = device.read(out_size)
    layer_ticks = device.profile(len(report["ops"]), timeout=timeout) if profile else None
    return info, invocation, raw, layer_ticks


def _bench_emulated(build_dir: Path, board: Board, report: dict, packed: bytes, out_size: int, runs: int,
                    profile: bool) -> tuple:
    if "firmware" not in report:
        raise TinyqError(f"{build_dir} has no firmware: build without --no-compile")
    if board.target == "device":
        return _bench_renode(build_dir, board, report, packed, out_size, runs, profile)
    with Emulator(board, build_dir / report["firmware"]["elf"], build_dir / "emulator") as emu:
        device = Device(Link(emu.serial, timeout=10.0))
        info, invocation, raw, layer_ticks = _device_session(device, report, packed, out_size, runs, profile)
        marks = emu.marks()
    per_run = [marks[i + 1] - marks[i] for i in range(0, 2 * runs, 2)]
    counter_hz = int(info["counter_hz"])
    result = {"target": "emulated", "runs": runs, "instructions": per_run[0],
              "instructions_per_mac": per_run[0] / max(report["model"]["macs"], 1),
              "instructions_all_runs_equal": len(set(per_run)) == 1,
              "counter_ticks": invocation.last_ticks,
              "counter_ticks_expected": per_run[0] * NS_PER_INSTRUCTION * counter_hz / 1e9}
    if profile:
        layer_marks = marks[2 * runs:]
        result["per_layer"] = [
            {"name": op["name"], "type": op["type"], "instructions": layer_marks[2 + 2 * i] - layer_marks[1 + 2 * i],
             "counter_ticks": ticks} for i, (op, ticks) in enumerate(zip(report["ops"], layer_ticks))]
    return result, raw


def _bench_renode(build_dir: Path, board: Board, report: dict, packed: bytes, out_size: int, runs: int,
                  profile: bool) -> tuple:
    """A real board's own firmware in Renode: cycles from the modelled counter."""
    with Renode(board, build_dir) as emu:
        info, invocation, raw, _ = _device_session(Device(Link(emu.serial, timeout=10.0)), report, packed, out_size,
                                                   runs, False)
    cycles = invocation.last_ticks * board.data["clock_hz"] / int(info["counter_hz"])
    return {"target": "emulated", "emulator": "renode", "runs": runs, "cycles": int(cycles),
            "cycles_per_mac": cycles / max(report["model"]["macs"], 1)}, raw


def _bench_device(board: Board, report: dict, port: str, baud: int | None, packed: bytes, out_size: int,
                  runs: int, profile: bool) -> tuple:
    import serial
    try:
        link_port = serial.serial_for_url(port, baudrate=baud or board.section("port").get("baud", 115200),
                                          timeout=0.05, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as err:
        if "exclusively lock" in str(err):     # another program (a serial monitor, a second bench) has it
            raise TinyqError(f"serial port {port} is busy: another program has it open; close that first") from None
        raise TinyqError(f"cannot open serial port {port}: {err}") from None
    with link_port:
        info, invocation, raw, layer_ticks = _device_session(Device(Link(link_port)), report, packed, out_size,
                                                             runs, profile)
    scale = board.data["clock_hz"] / int(info["counter_hz"])
    cycles = invocation.last_ticks * scale
    result = {"target": "device", "runs": runs, "cycles": int(cycles),
              "cycles_per_mac": cycles / max(report["model"]["macs"], 1),
              "latency_ms": cycles / board.data["clock_hz"] * 1e3}
    power = board.section("power")
    if power:
        result |= {"energy_uj": power["voltage"] * power["run_current_ma"] * result["latency_ms"],
                   "energy_source": "model", "energy_basis": power["source"]}
    if profile:
        result["per_layer"] = [{"name": op["name"], "type": op["type"], "cycles": int(t * scale)}
                               for op, t in zip(report["ops"], layer_ticks)]
    return result, raw


def bench(build_dir: Path, *, input_path: Path | None = None, runs: int = 1, emulate: bool = False,
          port: str | None = None, baud: int | None = None, profile: bool = False) -> dict:
    report = read_report(build_dir)
    board = get_board(report["board"])
    graph = load_tflite(build_dir / MODEL_FILE)
    inputs = load_inputs(graph, input_path)
    expected = ref.outputs(graph, inputs)
    packed = b"".join(x.tobytes() for x in inputs)
    out_size = sum(graph[n].nbytes for n in graph.outputs)
    if board.target == "host":
        raw, ns = host.run(build_dir, packed, runs)
        result = {"target": "host", "runs": runs, "latency_ms": ns / 1e6}
    elif emulate:
        if board.target == "device" and not board.section("renode"):
            raise TinyqError(f"{board.name} is a real board with no emulator: use --port PORT")
        result, raw = _bench_emulated(build_dir, board, report, packed, out_size, runs, profile)
    elif port:
        result, raw = _bench_device(board, report, port, baud, packed, out_size, runs, profile)
    else:
        how = "--emulate" if board.target == "emulator" else "--port PORT"
        raise TinyqError(f"{board.name} is a{'n' if board.target == 'emulator' else ''} {board.target} board: "
                         f"run with {how}")
    outputs = _unpack(graph, raw)
    result["bit_exact"] = all(np.array_equal(o, e) for o, e in zip(outputs, expected))
    result["outputs"] = [o.reshape(-1).tolist() for o in outputs]
    report["bench"] = result
    write_report(build_dir, report)
    return result
