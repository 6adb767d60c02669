"""Shared test fixtures: the ../shared models, the TFLite converter cases, tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.env import MODELS, SHARED, require


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
def case_dir(tmp_path_factory):
    """The converter-made case models, converted once per session for every test module."""
    return tmp_path_factory.mktemp("converted_cases")


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
            report = build(graph, get_board(board), out, source=str(mlperf_model(key)), log=lambda message: None)
            cache[key, board] = (out, report)
        return cache[key, board]

    return get
