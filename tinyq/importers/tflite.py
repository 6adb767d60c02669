"""Import a `.tflite` flatbuffer (int8 or float) into the IR.

Only subgraph 0 is read. Each supported builtin operator has one small
converter below; anything else is an error naming the operator, its index
and the supported set. A file that is not a well-formed TFLite flatbuffer
(truncated, random bytes, dangling offsets) is one clear error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator

from tinyq import ir
from tinyq.errors import TinyqError
from tinyq.int4 import unpack_int4
from tinyq.shapes import same_padding

_DTYPES = {tflite.TensorType.FLOAT32: "float32", tflite.TensorType.INT32: "int32",
           tflite.TensorType.INT16: "int16", tflite.TensorType.INT8: "int8",
           tflite.TensorType.INT4: "int4", tflite.TensorType.INT64: "int64",
           tflite.TensorType.UINT8: "uint8", tflite.TensorType.BOOL: "bool"}
_NUMPY = {"float32": np.float32, "int32": np.int32, "int16": np.int16, "int8": np.int8,
          "int64": np.int64, "uint8": np.uint8, "bool": np.bool_}
_ACTIVATIONS = {tflite.ActivationFunctionType.NONE: ir.Activation.NONE,
                tflite.ActivationFunctionType.RELU: ir.Activation.RELU,
                tflite.ActivationFunctionType.RELU6: ir.Activation.RELU6,
                tflite.ActivationFunctionType.RELU_N1_TO_1: ir.Activation.RELU_N1_TO_1}
_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_CONVERTERS = {}


class _Unsupported(TinyqError):
    pass


def _converter(code):
    def register(fn):
        _CONVERTERS[code] = fn
        return fn
    return register


def supported_ops() -> list[str]:
    return sorted(_OP_NAMES[c] for c in _CONVERTERS)


def load_tflite(path: str | Path) -> ir.Graph:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise TinyqError(f"cannot read {path}: {err.strerror}") from None
    return parse_tflite(data, name=path.stem, source=str(path))


def parse_tflite(data: bytes, name: str = "model", source: str = "<bytes>") -> ir.Graph:
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TinyqError(f"{source} is not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        graph = _Reader(data, name).graph()
    except TinyqError as err:
        raise TinyqError(f"{source}: {err}") from None
    except Exception as err:  # a malformed flatbuffer fails anywhere inside the generated reader
        raise TinyqError(f"{source} is a corrupt or truncated TFLite model "
                         f"({type(err).__name__}: {err})") from None
    try:
        return ir.verify(graph)
    except ir.IRError as err:
        raise TinyqError(f"{source}: unsupported model: {err}") from None


def _unique_names(subgraph) -> list[str]:
    names, seen = [], set()
    for i in range(subgraph.TensorsLength()):
        raw = subgraph.Tensors(i).Name()
        base = raw.decode("utf-8", "replace") if raw else f"tensor_{i}"
        unique = base if base not in seen else f"{base}#{i}"
        seen.add(unique)
        names.append(unique)
    return names


def tensor_names(data: bytes) -> list[str]:
    """IR tensor name of each TFLite tensor index in subgraph 0."""
    return _unique_names(tflite.Model.GetRootAs(data, 0).Subgraphs(0))


class _Reader:
    def __init__(self, data: bytes, name: str):
        self.buf = data
        self.name = name
        self.model = tflite.Model.GetRootAs(data, 0)
        if self.model.SubgraphsLength() < 1:
            raise TinyqError("the model has no subgraph")
        self.sg = self.model.Subgraphs(0)
        self.names = _unique_names(self.sg)
        self.tensors: dict[str, ir.Tensor] = {}

    # --- tensors -------------------------------------------------------
    def _raw(self, index: int):
        if not 0 <= index < self.sg.TensorsLength():
            raise TinyqError(f"tensor index {index} out of range")
        return self.sg.Tensors(index)

    def tensor(self, index: int) -> ir.Tensor:
        name = self.names[index] if 0 <= index < len(self.names) else None
        if name in self.tensors:
            return self.tensors[name]
        t = self._raw(index)
        dtype = _DTYPES.get(t.Type(), f"type code {t.Type()}")
        if dtype not in ir.DTYPES:
            raise TinyqError(f"tensor {name!r} has unsupported type {dtype}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d < 0 for d in shape):
            raise TinyqError(f"tensor {name!r} has a dynamic shape {shape}")
        tensor = ir.Tensor(name, shape, dtype, self._qparams(t), self._buffer(t, dtype, shape))
        self.tensors[name] = tensor
        return tensor

    def constant(self, index: int, what: str) -> np.ndarray:
        t = self._raw(index)
        dtype = _DTYPES.get(t.Type())
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        data = self._buffer(t, dtype, shape) if dtype else None
        if data is None:
            raise TinyqError(f"{what} (tensor {self.names[index]!r}) must be a constant")
        return data

    def _buffer(self, t, dtype: str, shape) -> np.ndarray | None:
        if t.Buffer() == 0 or t.Buffer() >= self.model.BuffersLength():
            return None
        b = self.model.Buffers(t.Buffer())
        if b.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = self.buf[b.Offset(): b.Offset() + b.Size()]
        elif b.DataLength():
            raw = b.DataAsNumpy().tobytes()
        else:
            return None
        count = int(np.prod(shape, dtype=np.int64))
        if dtype == "int4":
            packed = np.frombuffer(raw, np.uint8)
            if packed.size != (count + 1) // 2:
                raise TinyqError(f"int4 buffer of {packed.size} bytes for {count} values")
            return unpack_int4(packed, count).reshape(shape)
        values = np.frombuffer(raw, _NUMPY[dtype])
        if values.size != count:
            raise TinyqError(f"buffer holds {values.size} values, shape {shape} needs {count}")
        return values.reshape(shape)

    @staticmethod
    def _qparams(t) -> ir.QParams | None:
        q = t.Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        scales = q.ScaleAsNumpy().astype(np.float32)
        zps = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(len(scales), np.int64)
        if len(zps) != len(scales):
            raise TinyqError(f"{len(scales)} scales but {len(zps)} zero points")
        if len(scales) == 1:
            return ir.QParams.per_tensor(float(scales[0]), int(zps[0]))
        return ir.QParams(tuple(float(s) for s in scales), tuple(int(z) for z in zps),
                          int(q.QuantizedDimension()))

    # --- graph ---------------------------------------------------------
    def graph(self) -> ir.Graph:
        ops = []
        for i in range(self.sg.OperatorsLength()):
            op = self.sg.Operators(i)
            if op.OpcodeIndex() >= self.model.OperatorCodesLength():
                raise TinyqError(f"operator {i} has an opcode index out of range")
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            kind = _OP_NAMES.get(code, f"builtin code {code}")
            if code not in _CONVERTERS:
                raise TinyqError(f"unsupported operator {kind} at index {i}; "
                                 f"tinyq supports {', '.join(supported_ops())}")
            inputs = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
            outputs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
            if len(outputs) != 1:
                raise TinyqError(f"operator {kind} at index {i} has {len(outputs)} outputs")
            try:
                attrs, in_indices = _CONVERTERS[code](self, op, inputs, outputs)
            except _Unsupported as err:
                raise TinyqError(f"operator {kind} at index {i}: {err}") from None
            in_names = [self.tensor(t).name for t in in_indices]
            out_names = [self.tensor(t).name for t in outputs]
            ops.append(ir.Op(f"{kind.lower()}_{i}", attrs, tuple(in_names), tuple(out_names)))
        inputs = [self.tensor(int(t)).name for t in self.sg.InputsAsNumpy()] if self.sg.InputsLength() else []
        outputs = [self.tensor(int(t)).name for t in self.sg.OutputsAsNumpy()] if self.sg.OutputsLength() else []
        return ir.Graph(self.name, self.tensors, tuple(ops), tuple(inputs), tuple(outputs))

    def options(self, op, cls):
        table = op.BuiltinOptions()
        opts = cls()
        if table is None:
            raise _Unsupported("missing builtin options")
        opts.Init(table.Bytes, table.Pos)
        return opts

    def bias_or_zeros(self, inputs, channels: int, x_index: int, w_index: int) -> int:
        """TFLite allows an absent bias (-1); the IR always has one."""
        if len(inputs) > 2 and inputs[2] >= 0:
            return inputs[2]
        x, w = self.tensor(x_index), self.tensor(w_index)
        name = f"{w.name}/zero_bias"
        if x.dtype == "float32":
            self.tensors[name] = ir.Tensor(name, (channels,), "float32", None, np.zeros(channels, np.float32))
        else:
            scales = [x.qparams.s * s for s in w.qparams.scale]
            q = ir.QParams.per_channel(scales, 0) if len(scales) > 1 else ir.QParams.per_tensor(scales[0])
            self.tensors[name] = ir.Tensor(name, (channels,), "int32", q, np.zeros(channels, np.int32))
        self.names.append(name)
        return len(self.names) - 1


def _activation(code: int) -> ir.Activation:
    if code not in _ACTIVATIONS:
        raise _Unsupported(f"fused activation {code} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1 are)")
    return _ACTIVATIONS[code]


def _padding(kind: int, in_hw, kernel, stride, dilation) -> ir.Padding2D:
    if kind == tflite.Padding.VALID:
        return ir.Padding2D()
    if kind != tflite.Padding.SAME:
        raise _Unsupported(f"padding type {kind}")
    _, top, bottom = same_padding(in_hw[0], kernel[0], stride[0], dilation[0])
    _, left, right = same_padding(in_hw[1], kernel[1], stride[1], dilation[1])
    return ir.Padding2D(top, bottom, left, right)


def _need_rank(t: ir.Tensor, rank: int, role: str):
    if len(t.shape) != rank:
        raise _Unsupported(f"{role} {t.name!r} has shape {t.shape}, expected rank {rank}")


@_converter(BuiltinOperator.CONV_2D)
def _conv(r: _Reader, op, inputs, outputs):
    o = r.options(op, tflite.Conv2DOptions)
    x, w = r.tensor(inputs[0]), r.tensor(inputs[1])
    _need_rank(x, 4, "input")
    _need_rank(w, 4, "weights")
    if w.shape[3] != x.shape[3]:
        raise _Unsupported(f"grouped convolution ({x.shape[3]} input channels, filter depth {w.shape[3]})")
    stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    pad = _padding(o.Padding(), x.shape[1:3], w.shape[1:3], stride, dilation)
    attrs = ir.Conv2D(stride, dilation, pad, _activation(o.FusedActivationFunction()))
    return attrs, [inputs[0], inputs[1], r.bias_or_zeros(inputs, w.shape[0], inputs[0], inputs[1])]


@_converter(BuiltinOperator.DEPTHWISE_CONV_2D)
def _depthwise(r: _Reader, op, inputs, outputs):
    o = r.options(op, tflite.DepthwiseConv2DOptions)
    x, w = r.tensor(inputs[0]), r.tensor(inputs[1])
    _need_rank(x, 4, "input")
    _need_rank(w, 4, "weights")
    if w.shape[3] % x.shape[3]:
        raise _Unsupported(f"{w.shape[3]} output channels are not a multiple of {x.shape[3]} inputs")
    stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    pad = _padding(o.Padding(), x.shape[1:3], w.shape[1:3], stride, dilation)
    attrs = ir.DepthwiseConv2D(stride, dilation, pad, w.shape[3] // x.shape[3],
                               _activation(o.FusedActivationFunction()))
    return attrs, [inputs[0], inputs[1], r.bias_or_zeros(inputs, w.shape[3], inputs[0], inputs[1])]


@_converter(BuiltinOperator.FULLY_CONNECTED)
def _fully_connected(r: _Reader, op, inputs, outputs):
    o = r.options(op, tflite.FullyConnectedOptions)
    if o.WeightsFormat() != tflite.FullyConnectedOptionsWeightsFormat.DEFAULT:
        raise _Unsupported("shuffled weights format")
    w = r.tensor(inputs[1])
    _need_rank(w, 2, "weights")
    attrs = ir.FullyConnected(_activation(o.FusedActivationFunction()))
    return attrs, [inputs[0], inputs[1], r.bias_or_zeros(inputs, w.shape[0], inputs[0], inputs[1])]


@_converter(BuiltinOperator.ADD)
def _add(r, op, inputs, outputs):
    return ir.Add(_activation(r.options(op, tflite.AddOptions).FusedActivationFunction())), inputs[:2]


@_converter(BuiltinOperator.MUL)
def _mul(r, op, inputs, outputs):
    return ir.Mul(_activation(r.options(op, tflite.MulOptions).FusedActivationFunction())), inputs[:2]


def _pool(cls):
    def convert(r: _Reader, op, inputs, outputs):
        o = r.options(op, tflite.Pool2DOptions)
        x = r.tensor(inputs[0])
        _need_rank(x, 4, "input")
        kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        pad = _padding(o.Padding(), x.shape[1:3], kernel, stride, (1, 1))
        return cls(kernel, stride, pad, _activation(o.FusedActivationFunction())), inputs[:1]
    return convert


_converter(BuiltinOperator.AVERAGE_POOL_2D)(_pool(ir.AveragePool2D))
_converter(BuiltinOperator.MAX_POOL_2D)(_pool(ir.MaxPool2D))


@_converter(BuiltinOperator.MEAN)
def _mean(r: _Reader, op, inputs, outputs):
    axes = r.constant(inputs[1], "MEAN axis").reshape(-1)
    keep = bool(r.options(op, tflite.ReducerOptions).KeepDims())
    return ir.Mean(tuple(int(a) for a in axes), keep), inputs[:1]


@_converter(BuiltinOperator.RESHAPE)
def _reshape(r, op, inputs, outputs):
    return ir.Reshape(), inputs[:1]


@_converter(BuiltinOperator.SQUEEZE)
def _squeeze(r, op, inputs, outputs):
    return ir.Reshape(), inputs[:1]


@_converter(BuiltinOperator.SOFTMAX)
def _softmax(r, op, inputs, outputs):
    return ir.Softmax(float(r.options(op, tflite.SoftmaxOptions).Beta())), inputs[:1]


@_converter(BuiltinOperator.CONCATENATION)
def _concatenation(r, op, inputs, outputs):
    o = r.options(op, tflite.ConcatenationOptions)
    return ir.Concatenation(int(o.Axis()), _activation(o.FusedActivationFunction())), inputs


def _paddings(r: _Reader, index: int, rank: int):
    pads = r.constant(index, "PAD paddings")
    if pads.shape != (rank, 2):
        raise _Unsupported(f"paddings of shape {pads.shape} for a rank-{rank} input")
    return tuple((int(a), int(b)) for a, b in pads)


@_converter(BuiltinOperator.PAD)
def _pad(r, op, inputs, outputs):
    x = r.tensor(inputs[0])
    return ir.Pad(_paddings(r, inputs[1], len(x.shape))), inputs[:1]


@_converter(BuiltinOperator.PADV2)
def _padv2(r, op, inputs, outputs):
    x = r.tensor(inputs[0])
    value = r.constant(inputs[2], "PADV2 constant").reshape(-1)
    zero = 0 if x.dtype == "float32" else x.qparams.zp
    if value.size != 1 or value[0] != zero:
        raise _Unsupported("padding with a value other than zero is not supported")
    return ir.Pad(_paddings(r, inputs[1], len(x.shape))), inputs[:1]


@_converter(BuiltinOperator.LOGISTIC)
def _logistic(r, op, inputs, outputs):
    return ir.Logistic(), inputs[:1]


@_converter(BuiltinOperator.QUANTIZE)
def _quantize(r, op, inputs, outputs):
    return ir.Quantize(), inputs[:1]


@_converter(BuiltinOperator.DEQUANTIZE)
def _dequantize(r, op, inputs, outputs):
    return ir.Dequantize(), inputs[:1]
