"""Feed model files to tinyq's loaders in one process; print one JSON line per outcome.

For each path: load it, verify and summarize the graph; an integer graph is also
run once through the numpy reference and rendered to C. Outcomes: "ok", "error"
(a TinyqError: the clear one-line message a user would see) or "crash" (any other
exception, with its traceback). A "start" line precedes each file so the parent
can name the file a hang happened on. Run: python tests/fuzz_worker.py FILE...
"""

from __future__ import annotations

import json
import signal
import sys
import traceback

import numpy as np

from tinyq import analysis, codegen, ir, ref
from tinyq.errors import TinyqError
from tinyq.importers import is_integer_graph, load_model

SECONDS_PER_FILE = 60
MAX_ELEMENTS = 1 << 22  # larger tensors are legal but not worth a reference run here


class Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise Hang()


def exercise(path: str) -> str:
    """The summary line of a successfully handled file."""
    graph = ir.verify(load_model(path))
    analysis.summary(graph)
    if not is_integer_graph(graph):
        return f"float graph, {len(graph.ops)} ops"
    sizes = [int(np.prod(t.shape)) for t in graph.tensors.values()]
    if max(sizes, default=0) <= MAX_ELEMENTS:
        rng = np.random.default_rng(0)
        inputs = [rng.integers(-128, 128, graph[name].shape).astype(graph[name].dtype) for name in graph.inputs]
        ref.outputs(graph, inputs)
        codegen.generate(graph)
    return f"int graph, {len(graph.ops)} ops"


def main(paths: list[str]) -> None:
    signal.signal(signal.SIGALRM, _on_alarm)
    for path in paths:
        print(json.dumps({"file": path, "event": "start"}), flush=True)
        signal.alarm(SECONDS_PER_FILE)
        try:
            record = {"outcome": "ok", "detail": exercise(path)}
        except TinyqError as err:
            record = {"outcome": "error", "detail": str(err)}
        except Hang:
            record = {"outcome": "hang", "detail": f"still running after {SECONDS_PER_FILE} s"}
        except BaseException:  # noqa: BLE001 - a fuzz crash is whatever escaped the loader
            record = {"outcome": "crash", "detail": traceback.format_exc()}
        finally:
            signal.alarm(0)
        print(json.dumps({"file": path, "event": "done", **record}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
