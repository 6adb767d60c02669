"""TFLite Micro (the `tflite-micro` package) as the oracle for bit-exactness."""

from __future__ import annotations

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from tinyq import ref
from tinyq.importers.tflite import tensor_names

ARENA_HEADROOM = 1 << 22  # the package sizes the arena as 10x the model: too small for large activations


def _interpreter(model: bytes, **options):
    return runtime.Interpreter.from_bytes(model, arena_size=10 * len(model) + ARENA_HEADROOM, **options)


def tflm_tensors(model: bytes, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Run TFLM once, keeping every tensor; {IR tensor name: value}."""
    interpreter = _interpreter(model, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i, x in enumerate(inputs):
        interpreter.set_input(x, i)
    interpreter.invoke()
    values = {}
    for index, name in enumerate(tensor_names(model)):
        data = interpreter.GetTensor(index, 0)["tensor_data"]
        values[name] = np.array(data)
    return values


def tflm_outputs(model: bytes, inputs: list[np.ndarray], count: int) -> list[np.ndarray]:
    interpreter = _interpreter(model)
    for i, x in enumerate(inputs):
        interpreter.set_input(x, i)
    interpreter.invoke()
    return [np.array(interpreter.get_output(i)) for i in range(count)]


def assert_every_tensor_matches(model: bytes, graph, inputs) -> int:
    """Compare all non-constant tensors; returns how many were compared."""
    mine = ref.run(graph, inputs)
    theirs = tflm_tensors(model, inputs)
    for name, value in mine.items():
        expected = theirs[name].reshape(value.shape)
        bad = np.flatnonzero(expected != value)
        assert bad.size == 0, (
            f"tensor {name!r}: {bad.size} of {value.size} elements differ from TFLM, "
            f"first at {bad[0]}: tinyq {value.flat[bad[0]]} vs TFLM {expected.flat[bad[0]]}"
        )
    return len(mine)


def tflm_frames(model: bytes, frames: list[np.ndarray], names) -> list[dict[str, np.ndarray]]:
    """Run TFLM once per frame on one interpreter (its variables kept from call to call); for each
    frame, {IR tensor name: value} of the tensors `names` (not a resource handle: TFLM's
    GetTensor crashes on one)."""
    interpreter = _interpreter(model, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    index = {name: i for i, name in enumerate(tensor_names(model))}
    results = []
    for frame in frames:
        interpreter.set_input(frame, 0)
        interpreter.invoke()
        results.append({name: np.array(interpreter.GetTensor(index[name], 0)["tensor_data"]) for name in names})
    return results
