"""Compile generated C for the host as a shared library and call it via ctypes."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np

from tinyq import codegen
from tinyq.ir import Graph

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]


class HostModel:
    """A generated model loaded in-process; `run` mirrors ref.outputs."""

    def __init__(self, graph: Graph, workdir: Path):
        self.graph = graph
        self.generated = codegen.generate(graph)
        codegen.write(self.generated, workdir)
        lib = workdir / "libtinyq_model.so"
        sources = sorted(str(p) for p in (workdir / "src").glob("*.c"))
        result = subprocess.run(
            ["cc", *CFLAGS, f"-I{workdir / 'include'}", *sources, "-o", str(lib), "-lm"], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        self.lib = ctypes.CDLL(str(lib))
        self.lib.tinyq_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.in_bytes = sum(graph[n].nbytes for n in graph.inputs)
        self.out_bytes = sum(graph[n].nbytes for n in graph.outputs)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        packed = np.frombuffer(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs), np.uint8).copy()
        assert packed.size == self.in_bytes
        out = np.zeros(self.out_bytes, np.uint8)
        status = self.lib.tinyq_run(packed.ctypes.data, out.ctypes.data)
        assert status == 0, f"tinyq_run failed in layer {-status - 1}"
        results, offset = [], 0
        for name in self.graph.outputs:
            t = self.graph[name]
            results.append(out[offset : offset + t.nbytes].view(t.dtype).reshape(t.shape).copy())
            offset += t.nbytes
        return results
