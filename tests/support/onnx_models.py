"""ONNX models for the importer's tests: PyTorch modules exported by torch.onnx.export (the
TorchScript exporter at opset 13 and the dynamo exporter at its default opset), and graphs
written with onnx.helper for what PyTorch does not emit (unfolded BatchNormalization, the
NHWC input and Transpose tf2onnx writes). onnxruntime is the float oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def torch_modules():
    """name -> (module builder, input shape NCHW or NCL)."""
    import torch
    from torch import nn

    class Lambda(nn.Module):
        def __init__(self, body, *layers):
            super().__init__()
            self.layers = nn.ModuleList(layers)
            self.body = body

        def forward(self, x):
            return self.body(x, *self.layers)

    def residual_concat():
        a, b, c = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1), nn.Conv2d(6, 4, 1)

        def body(x, a, b, c):
            y = torch.relu(a(x))
            y = y + torch.relu(b(y))
            return torch.cat([y, torch.sigmoid(c(y))], dim=1).mean(dim=(2, 3))

        return Lambda(body, a, b, c)

    def upsample_pad():
        conv, up = nn.Conv2d(2, 5, 3), nn.ConvTranspose2d(5, 3, 2, stride=2)

        def body(x, conv, up):
            y = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
            y = nn.functional.interpolate(nn.functional.hardswish(conv(y)), scale_factor=2, mode="nearest")
            y = nn.functional.interpolate(up(y), size=(20, 20), mode="bilinear", align_corners=False)
            return torch.clamp(y, -0.5, 2.0) / 3.0 - 1.0

        return Lambda(body, conv, up)

    def sequence_1d():
        a, b = nn.Conv1d(4, 8, 5, padding=2, dilation=1), nn.Conv1d(8, 6, 3, stride=2)

        def body(x, a, b):
            y = nn.functional.max_pool1d(nn.functional.elu(a(x)), 2)
            return nn.functional.adaptive_avg_pool1d(torch.tanh(b(y)), 1).flatten(1)

        return Lambda(body, a, b)

    def mlp_on_image():
        fc1, fc2, act = nn.Linear(3 * 6 * 6, 12), nn.Linear(12, 5), nn.PReLU(12)

        def body(x, fc1, fc2, act):
            return nn.functional.softmax(fc2(act(fc1(x.reshape(x.shape[0], -1)))), dim=1)

        return Lambda(body, fc1, fc2, act)

    def attention_like():
        q, k = nn.Linear(6, 6), nn.Linear(6, 6)

        def body(x, q, k):
            scores = torch.matmul(q(x), k(x).transpose(1, 2)) / 4.0
            return torch.softmax(scores, dim=-1)

        return Lambda(body, q, k)

    def recurrent(cell, last_step: bool):
        rnn, fc = cell(6, 9, batch_first=True), nn.Linear(9, 4)

        def body(x, rnn, fc):
            y, _ = rnn(x)
            return fc(y[:, -1]) if last_step else torch.tanh(y)

        return Lambda(body, rnn, fc)

    def pools_and_reductions():
        conv = nn.Conv2d(3, 4, 3)

        def body(x, conv):
            y = nn.functional.avg_pool2d(conv(nn.functional.pad(x, (1, 0, 2, 1))), 3, 1, 1)  # count_include_pad
            y = nn.functional.interpolate(y, size=(11, 9), mode="bilinear", align_corners=True)
            return torch.cat([y.amin(dim=(2, 3)), y.sum(dim=(2, 3)), y.amax(dim=(2, 3))], dim=1)

        return Lambda(body, conv)

    return {
        "pools_and_reductions": (pools_and_reductions, (1, 3, 7, 6)),
        "lstm_last_step_linear": (lambda: recurrent(nn.LSTM, True), (1, 7, 6)),
        "gru_sequence": (lambda: recurrent(nn.GRU, False), (1, 7, 6)),
        "cnn_bn_flatten_linear": (
            lambda: nn.Sequential(
                nn.Conv2d(1, 6, 3, padding=1),
                nn.BatchNorm2d(6),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(6, 5, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(5),
                nn.ReLU6(),
                nn.Flatten(),
                nn.Linear(5 * 4 * 4, 10),
            ),
            (1, 1, 14, 14),
        ),
        "depthwise_separable": (
            lambda: nn.Sequential(
                nn.Conv2d(3, 8, 3, stride=2, padding=1),
                nn.ReLU6(),
                nn.Conv2d(8, 8, 3, padding=1, groups=8),
                nn.BatchNorm2d(8),
                nn.ReLU6(),
                nn.Conv2d(8, 16, 1),
                nn.Conv2d(16, 32, 3, padding=1, groups=16),  # depth multiplier 2
                nn.LeakyReLU(0.1),
                nn.AvgPool2d(2),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(32, 4),
            ),
            (1, 3, 16, 16),
        ),
        "residual_concat_mean": (residual_concat, (1, 3, 8, 8)),
        "upsample_pad_clip": (upsample_pad, (1, 2, 6, 6)),
        "conv1d_sequence": (sequence_1d, (1, 4, 30)),
        "mlp_on_image_prelu_softmax": (mlp_on_image, (1, 3, 6, 6)),
        "attention_like_matmul": (attention_like, (1, 5, 6)),
        "hardsigmoid_max_pool_ceil": (
            lambda: nn.Sequential(
                nn.Conv2d(2, 4, 3), nn.Hardsigmoid(), nn.MaxPool2d(2, ceil_mode=True), nn.AdaptiveMaxPool2d(1)
            ),
            (1, 2, 9, 9),
        ),
    }


def exported(name: str, out_dir: Path, dynamo: bool = False, seed: int = 0) -> Path:
    """The module exported with a fixed input shape (cached in out_dir)."""
    import torch

    path = out_dir / f"{name}{'_dynamo' if dynamo else ''}.onnx"
    if path.exists():
        return path
    torch.manual_seed(seed)
    build, shape = torch_modules()[name]
    module = build().eval()
    with torch.no_grad():  # BatchNorm statistics away from the identity
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    x = torch.randn(shape)
    if dynamo:
        torch.onnx.export(module, (x,), str(path), dynamo=True, verbose=False)
    else:
        torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=13)
    return path


def ort_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def helper_model(nodes, inputs, outputs, initializers=(), opset: int = 17):
    """An onnx.helper graph: inputs/outputs as (name, shape), initializers as (name, array;
    float arrays as float32, integer ones as they are)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "helper",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(_float32(np.asarray(a)), n) for n, a in initializers],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def _float32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype.kind == "f" else a


def ort_qdq(
    path: Path,
    calib: np.ndarray,
    out: Path,
    per_channel: bool = False,
    activations: str = "QInt8",
    weights: str = "QInt8",
) -> Path:
    """onnxruntime's static quantization of a float model (QDQ, MinMax ranges over `calib`;
    activations and weights QInt8 or QUInt8)."""
    from onnxruntime import quantization as q

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.samples = iter(calib)

        def get_next(self):
            sample = next(self.samples, None)
            return None if sample is None else {"input": sample[None]}

    renamed = out.with_suffix(".float.onnx")
    _with_input_named(path, renamed, "input")
    q.quantize_static(
        str(renamed),
        str(out),
        Reader(),
        quant_format=q.QuantFormat.QDQ,
        activation_type=getattr(q.QuantType, activations),
        weight_type=getattr(q.QuantType, weights),
        per_channel=per_channel,
        calibrate_method=q.CalibrationMethod.MinMax,
    )
    return out


def _with_input_named(path: Path, out: Path, name: str) -> None:
    import onnx

    model = onnx.load(str(path))
    old = model.graph.input[0].name
    model.graph.input[0].name = name
    for node in model.graph.node:
        node.input[:] = [name if n == old else n for n in node.input]
    onnx.save(model, str(out))
