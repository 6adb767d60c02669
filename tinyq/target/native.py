"""The deployed arithmetic at host speed: the generated C compiled into a shared library.

`NativeModel(graph)` generates the same C sources a build writes, compiles them with the host
compiler into a shared library and calls it over batches of samples through ctypes. It is the
firmware's arithmetic, so it is bit-exact with the numpy reference by construction (the tests
check it over a table of models); it is what `eval` and the quantization passes use to score a
deployed graph. ctypes releases the GIL during a call, so each worker thread runs its own copy
of the library (its own static arena) on its share of the batch.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyq import codegen, ir
from tinyq.errors import TinyqError
from tinyq.resources import data_dir

# The host board's dialect, optimised for speed; no contraction of float multiply-adds, so the
# few float steps (quantizing a float input) round exactly as the reference and the firmware do.
CFLAGS = ["-std=c99", "-O3", "-march=native", "-ffp-contract=off", "-fPIC", "-shared", "-w"]


def compiler() -> str | None:
    """The host C compiler, or None when there is none."""
    return shutil.which(os.environ.get("CC", "cc"))


def workers_available() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class NativeModel:
    """A deployed graph compiled for the host; `outputs` runs batches of samples."""

    def __init__(self, graph: ir.Graph, workers: int | None = None):
        cc = compiler()
        if cc is None:
            raise TinyqError("no C compiler on PATH for the fast integer evaluator: install one (apt-get install gcc)")
        self.graph = graph
        self.inputs = [graph[n] for n in graph.inputs]
        self.results = [graph[n] for n in graph.outputs]
        generated = codegen.generate(graph, fast=False, host=True)
        self.stateful = any(layer.kernel.state_bytes for layer in generated.layers)
        self._dir = Path(tempfile.mkdtemp(prefix="tinyq-native-"))
        try:
            lib = self._compile(cc, generated)
            count = max(1, workers or workers_available())
            copies = [lib] + [shutil.copyfile(lib, lib.with_name(f"model{i}.so")) for i in range(1, count)]
            self._libs = [ctypes.CDLL(str(path)) for path in copies]
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        for lib in self._libs:
            lib.tinyq_run_batch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
            lib.tinyq_run_batch.restype = ctypes.c_int
        self._in_bytes = sum(t.nbytes for t in self.inputs)
        self._out_bytes = sum(t.nbytes for t in self.results)

    def _compile(self, cc: str, generated: codegen.GeneratedModel) -> Path:
        codegen.write(generated, self._dir)
        sources = sorted((self._dir / codegen.SOURCE).glob("*.c")) + [data_dir("firmware") / "host" / "batch.c"]
        lib = self._dir / "model0.so"
        cmd = [cc, *CFLAGS, f"-I{self._dir / codegen.INCLUDE}", *map(str, sources), "-o", str(lib), "-lm"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["(no output)"])[0]
            raise TinyqError(f"compiling the model for the host evaluator failed: {first}")
        return lib

    def close(self) -> None:
        self._libs = []
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> NativeModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def outputs(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Every output for a batch: `inputs[i]` has a leading sample axis and the graph's shape
        and dtype of input i (as `ref.outputs(..., batched=True)` takes them)."""
        count = len(inputs[0])
        packed = np.empty((count, self._in_bytes), np.uint8)
        at = 0
        for t, x in zip(self.inputs, inputs, strict=True):
            x = np.ascontiguousarray(x, t.values_dtype)
            if x.shape[1:] != t.shape or len(x) != count:
                raise ValueError(f"input {t.name!r} has shape {x.shape[1:]}, the model expects {t.shape}")
            packed[:, at : at + t.nbytes] = x.reshape(count, -1).view(np.uint8)
            at += t.nbytes
        out = np.empty((count, self._out_bytes), np.uint8)
        shares = np.array_split(np.arange(count), len(self._libs))
        jobs = [(lib, s[0], len(s)) for lib, s in zip(self._libs, shares) if len(s)]
        with ThreadPoolExecutor(len(jobs) or 1) as pool:
            statuses = list(pool.map(lambda job: self._run(packed, out, *job), jobs))
        failed = next((s for s in statuses if s != 0), 0)
        if failed:
            op = self.graph.ops[-failed - 1]
            raise TinyqError(f"the host evaluator failed in layer {op.name} ({op.kind})")
        results, at = [], 0
        for t in self.results:
            raw = np.ascontiguousarray(out[:, at : at + t.nbytes])
            results.append(raw.view(t.values_dtype).reshape((count,) + t.shape))
            at += t.nbytes
        return results

    def _run(self, packed: np.ndarray, out: np.ndarray, lib, start: int, count: int) -> int:
        return lib.tinyq_run_batch(
            packed[start:].ctypes.data, out[start:].ctypes.data, ctypes.c_long(count), int(self.stateful)
        )
