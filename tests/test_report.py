"""report.html: written by build, refreshed by bench, rendered by a real browser."""

from __future__ import annotations

import html
import subprocess

import numpy as np

from tinyq import ir
from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.importers.tflite import load_tflite
from tinyq.ops.conv import Conv2D
from tinyq.report import read_report

from support.env import ROOT, require_tool

ARTIFACTS = ROOT / "build" / "test-artifacts"
CHART_BLUE, CHART_ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's first two colours, used by the charts


def _pixels_near(image: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int((np.abs(image[..., :3].astype(int) - np.array(rgb)).sum(axis=-1) < 30).sum())


def test_kws_report_renders_in_headless_chromium(mlperf_model, tmp_path):
    chromium = require_tool("chromium")
    require_tool("qemu-system-arm")
    out = tmp_path / "kws"
    build(load_tflite(mlperf_model("kws")), get_board("mps2_an386"), out, source="kws", log=lambda message: None)
    before = (out / "report.html").read_text()
    assert "not run yet" in before and "instructions" not in before
    result = bench(out, emulate=True, profile=True)
    page = (out / "report.html").read_text()
    assert f"{result['instructions']:,}" in page and "bit-exact" in page
    for name in ("layers.png", "arena.png", "flash.png"):
        assert f'src="plots/{name}"' in page and (out / "plots" / name).stat().st_size > 5000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report_kws.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1200,2600",
            (out / "report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image

    image = (matplotlib.image.imread(shot) * 255).astype(np.uint8)
    assert image.shape[0] >= 2000 and image.shape[1] >= 1000
    # the bars of the per-layer chart show: the page loaded its PNGs and laid them out
    assert _pixels_near(image, CHART_BLUE) > 2000 and _pixels_near(image, CHART_ORANGE) > 2000


def test_report_escapes_names_from_the_model(tmp_path):
    """Layer names are user data: they reach the HTML escaped, never as markup."""
    rng = np.random.default_rng(0)
    q = ir.QParams.per_tensor
    name = '<script>alert("x")</script>'
    w = ir.Tensor(
        "w",
        (2, 1, 1, 2),
        "int8",
        ir.QParams.per_channel([0.02, 0.03], 0),
        rng.integers(-127, 128, (2, 1, 1, 2)).astype(np.int8),
    )
    b = ir.Tensor("b", (2,), "int32", None, np.zeros(2, np.int32))
    tensors = [ir.Tensor("x", (1, 4, 4, 2), "int8", q(0.05, 0)), w, b, ir.Tensor("y", (1, 4, 4, 2), "int8", q(0.05, 0))]
    graph = ir.verify(
        ir.Graph(name, {t.name: t for t in tensors}, (ir.Op(name, Conv2D(), ("x", "w", "b"), ("y",)),), ("x",), ("y",))
    )
    build(graph, get_board("host"), tmp_path / "b", source=name, compile=False)
    page = (tmp_path / "b" / "report.html").read_text()
    assert "<script>" not in page and html.escape(name) in page
    assert read_report(tmp_path / "b").model.name == name
