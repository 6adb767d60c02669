"""Shared test fixtures: the ../shared models, the TFLite converter cases, tools."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _find_shared() -> Path:
    """The project's shared folder: $TINYQ_SHARED, beside the checkout, or /work/shared."""
    candidates = [Path(p) for p in (os.environ.get("TINYQ_SHARED"),) if p]
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    return next((c for c in candidates if (c / "models").is_dir()), candidates[0])


SHARED = _find_shared()
MLPERF = SHARED / "models" / "mlperf_tiny"
MODELS = {"kws": MLPERF / "kws" / "kws_ref_model_int8.tflite",
          "ic": MLPERF / "ic" / "pretrainedResnet_int8.tflite",
          "ad": MLPERF / "ad" / "ad01_int8.tflite"}
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """A missing prerequisite fails the test in CI and skips it elsewhere."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"the tool {name!r}")
    return path


@pytest.fixture(scope="session")
def anchors() -> dict:
    path = SHARED / "anchors" / "tflm_cortex_m.json"
    require(path.exists(), str(path))
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def mlperf_model():
    def get(key: str) -> Path:
        require(MODELS[key].exists(), str(MODELS[key]))
        return MODELS[key]
    return get


@pytest.fixture(scope="session")
def builds(tmp_path_factory, mlperf_model):
    """MLPerf Tiny firmware builds, (key, board) -> (build dir, report), made once per session."""
    from tinyq.boards import get_board
    from tinyq.build import build
    from tinyq.importers.tflite import load_tflite
    cache = {}

    def get(key: str, board: str):
        if (key, board) not in cache:
            out = tmp_path_factory.mktemp(f"{key}_{board}")
            graph = load_tflite(mlperf_model(key))
            report = build(graph, get_board(board), out, source=str(mlperf_model(key)), quant={"algo": ["imported"]},
                           log=lambda message: None)
            cache[key, board] = (out, report)
        return cache[key, board]
    return get


def structured_input(shape) -> np.ndarray:
    """The anchors' input: byte i = (i*7+3) mod 256."""
    size = int(np.prod(shape))
    return ((np.arange(size) * 7 + 3) % 256).astype(np.uint8).view(np.int8).reshape(shape)


def random_inputs(graph, count: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        batch = []
        for name in graph.inputs:
            t = graph[name]
            if t.dtype == "float32":
                batch.append(rng.uniform(-1.5, 1.5, t.shape).astype(np.float32))
            else:
                batch.append(rng.integers(-128, 128, t.shape).astype(np.int8))
        batches.append(batch)
    return batches
