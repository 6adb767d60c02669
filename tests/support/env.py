"""Where the shared models are, whether this is CI, and how a missing prerequisite behaves."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _find_shared() -> Path:
    """The project's shared folder: $TINYQ_SHARED, beside the checkout, or /work/shared."""
    candidates = [Path(p) for p in (os.environ.get("TINYQ_SHARED"),) if p]
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    return next((c for c in candidates if (c / "models").is_dir()), candidates[0])


SHARED = _find_shared()
MLPERF = SHARED / "models" / "mlperf_tiny"
MODELS = {
    "kws": MLPERF / "kws" / "kws_ref_model_int8.tflite",
    "ic": MLPERF / "ic" / "pretrainedResnet_int8.tflite",
    "ad": MLPERF / "ad" / "ad01_int8.tflite",
}
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
