"""PyTorch models trained on Fashion-MNIST, their ONNX exports and onnxruntime's static int8 quantization of them.

- `cnn_bn`: Conv + BatchNorm + ReLU blocks, max pooling, a Linear on the flattened 7x7 map, a Linear head.
- `separable`: a stem conv then depthwise (BN + ReLU6) / pointwise (BN + ReLU) blocks, global pooling, Linear.
- `residual`: a channel concat of two branches (one Hardswish), a residual Add, average pooling, mean, Linear.

`train` trains a model once, `exported` writes its ONNX file (legacy TorchScript exporter at opset 13, or the
dynamo exporter at its default opset) checked against PyTorch with onnxruntime, `ort_static_int8` runs
onnxruntime's quantize_static (QDQ, int8 activations and weights, MinMax). Everything is cached in
bench/results/onnx/ (delete a file to redo it). Run: python bench/torch_fashion.py
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import fashion
import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime import quantization as oq
from torch import nn

CACHE = Path(__file__).resolve().parent / "results" / "onnx"
CALIBRATION = 1000


def cnn_bn() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16),
        nn.MaxPool2d(2),
        *block(16, 32),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )


def separable() -> nn.Module:
    layers = [nn.Conv2d(1, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
    for cin, cout, stride in ((16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2)):
        layers += [
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU6(),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        ]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(16, 16, 1), nn.Hardswish())
        self.pool = nn.AvgPool2d(2)
        self.block = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1))
        self.head = nn.Sequential(nn.Conv2d(32, 48, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(48, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.pool(torch.cat([self.a(x), self.b(x)], dim=1))
        x = self.pool(torch.relu(x + self.block(x)))
        return self.fc(self.head(x).mean(dim=(2, 3)))  # a ReduceMean, where separable has GlobalAveragePool


BUILDERS = {"cnn_bn": cnn_bn, "separable": separable, "residual": Residual}


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """fashion.load() with the images in NCHW."""
    x_train, y_train, x_test, y_test = fashion.load()
    return x_train.transpose(0, 3, 1, 2).copy(), y_train, x_test.transpose(0, 3, 1, 2).copy(), y_test


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def torch_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    pred = torch.cat([model(torch.from_numpy(x[i : i + 1000])).argmax(1) for i in range(0, len(x), 1000)])
    return 100.0 * float((pred.numpy() == y).mean())


def train(name: str, epochs: int = 3) -> nn.Module:
    """The trained model in eval mode; trained (Adam, batch 128) and cached on the first call."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = BUILDERS[name]()
    path = CACHE / f"{name}.pt"
    if path.exists():
        model.load_state_dict(torch.load(path))
        return model.eval()
    np.random.seed(0)
    x_train, y_train, x_test, y_test = data()
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = np.random.permutation(len(x))
        for i in range(0, len(x), 128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[order[i : i + 128]]), y[order[i : i + 128]]).backward()
            opt.step()
        acc = torch_accuracy(model.eval(), x_test, y_test)
        print(f"{name} epoch {epoch + 1}: test {acc:.2f}% ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # single small images: threads cost more than they give
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_outputs(sess: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """Outputs for a batch of images, one run per image when the model's batch is fixed at 1."""
    inp = sess.get_inputs()[0]
    if inp.shape[0] == 1:
        return np.concatenate([sess.run(None, {inp.name: x[i : i + 1]})[0] for i in range(len(x))])
    return sess.run(None, {inp.name: x})[0]


def exported(name: str, dynamo: bool = False) -> Path:
    """The trained model's ONNX file for a (1, 1, 28, 28) input, exported and checked on the first call.

    The legacy exporter folds BatchNorm into Conv in its eval mode; TrainingMode.PRESERVE on the eval model
    keeps the BatchNormalization nodes (still in inference form) and the other constant folding.
    The dynamo exporter's optimizer folds BatchNorm into Conv whatever is asked.
    """
    path = CACHE / f"{name}{'_dynamo' if dynamo else ''}.onnx"
    if path.exists():
        return path
    model = train(name)
    x = torch.from_numpy(data()[2][:1])
    names = {"input_names": ["input"], "output_names": ["logits"]}
    with warnings.catch_warnings():
        # the legacy exporter's deprecation notice, and its constant-folding advice meant for models in train mode
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "It is recommended that constant folding")
        if dynamo:
            torch.onnx.export(model, (x,), path, dynamo=True, external_data=False, verbose=False, **names)
        else:
            training = torch.onnx.TrainingMode.PRESERVE
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=13, training=training, **names)
    check = data()[2][:100]
    got = ort_outputs(session(path), check)
    with torch.no_grad():
        want = model(torch.from_numpy(check)).numpy()
    err = np.abs(got - want).max() / np.abs(want).max()
    if err > 1e-4:
        path.unlink()
        raise AssertionError(f"{path.name}: onnxruntime differs from PyTorch by {err:.2e} (relative)")
    return path


def ort_accuracy(path: Path, x_nchw: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy (percent) of an ONNX file run by onnxruntime on the CPU."""
    return 100.0 * float((ort_outputs(session(path), x_nchw).argmax(1) == y).mean())


class Images(oq.CalibrationDataReader):
    def __init__(self, x: np.ndarray, input_name: str):
        self.feeds = iter({input_name: x[i : i + 1]} for i in range(len(x)))

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def ort_static_int8(name: str, calib_nchw: np.ndarray, per_channel: bool = False) -> Path:
    """onnxruntime's quantize_static of the legacy export: QDQ, int8 activations and weights, MinMax ranges."""
    path = CACHE / f"{name}_qdq{'_pc' if per_channel else ''}.onnx"
    if path.exists():
        return path
    # shape inference and onnxruntime's graph optimizations (BatchNorm folded into Conv), as ORT recommends
    pre = CACHE / f"{name}_pre.onnx"
    oq.quant_pre_process(exported(name), pre)
    oq.quantize_static(
        pre,
        path,
        Images(calib_nchw, "input"),
        quant_format=oq.QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=oq.QuantType.QInt8,
        weight_type=oq.QuantType.QInt8,
        calibrate_method=oq.CalibrationMethod.MinMax,
    )
    return path


def op_types(path: Path) -> str:
    return ", ".join(f"{op} {n}" for op, n in Counter(n.op_type for n in onnx.load(path).graph.node).items())


if __name__ == "__main__":
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = data()
    calib = x_train[np.random.default_rng(0).choice(len(x_train), CALIBRATION, replace=False)]
    header = ("model", "params", "torch %", "ort float %", "ort dynamo %", "qdq int8 %", "qdq int8 pc %")
    rows, ops = [], []
    for name in BUILDERS:
        model = train(name)
        files = {
            "legacy": exported(name),
            "dynamo": exported(name, dynamo=True),
            "qdq": ort_static_int8(name, calib),
            "qdq_pc": ort_static_int8(name, calib, per_channel=True),
        }
        accs = [torch_accuracy(model, x_test, y_test)] + [ort_accuracy(f, x_test, y_test) for f in files.values()]
        rows.append((name, f"{parameters(model):,}", *(f"{a:.2f}" for a in accs)))
        ops += [f"{name} {kind}: {op_types(f)}" for kind, f in files.items()]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths)))
    print("\n" + "\n".join(ops))
    print(f"\n{time.perf_counter() - start:.0f} s")
