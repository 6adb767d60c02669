"""Import a Keras 3 model (.keras, .h5; Sequential or Functional) as a float IR graph.

Files load in Keras safe mode (no Lambda code runs). Each Keras layer class
has one row in `LAYERS`: a function that emits the layer's IR ops; the
keras.ops calls a functional model records (MobileNetV3's `x + 3.0`) have
theirs in `KERAS_OPS`. BatchNormalization, Rescaling and Normalization fold
into the convolution or dense layer before them, or become a per-channel
affine op; ReLU/ReLU6 fuse into the op that produces their input, as TFLite
fuses them, and other activations are ops of their own (`ACTIVATIONS`);
dropout and noise vanish. 1-D layers are their 2-D ops over an inserted unit
height, a RESHAPE around them, as TFLite's converter makes them. What the
graph cannot say (the statistics of each folded BatchNorm, used by BN-based
range setting and analytic bias correction) travels beside it in
`FloatModel.bn_stats`.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from tinyq import ir
from tinyq import tf as tinyq_tf
from tinyq.errors import TinyqError
from tinyq.float_model import FloatModel
from tinyq.ops.add import Add
from tinyq.ops.affine import is_affine
from tinyq.ops.broadcast_to import BroadcastTo
from tinyq.ops.concatenation import Concatenation
from tinyq.ops.conv import Conv2D
from tinyq.ops.depthwise_conv import DepthwiseConv2D
from tinyq.ops.elu import Elu
from tinyq.ops.fully_connected import FullyConnected
from tinyq.ops.gru import Gru
from tinyq.ops.hard_swish import HardSwish
from tinyq.ops.logistic import Logistic
from tinyq.ops.lstm import UnidirectionalSequenceLstm
from tinyq.ops.maximum_minimum import Maximum, Minimum
from tinyq.ops.mean import Mean
from tinyq.ops.mul import Mul
from tinyq.ops.pad import Pad, folded_into_convolutions
from tinyq.ops.pool import AveragePool2D, MaxPool2D
from tinyq.ops.prelu import Prelu
from tinyq.ops.relu import LeakyRelu, Relu, Relu6
from tinyq.ops.reshape import Reshape
from tinyq.ops.resize import ResizeBilinear, ResizeNearestNeighbor, nearest_sources
from tinyq.ops.reverse import ReverseV2
from tinyq.ops.rsqrt import Rsqrt
from tinyq.ops.simple_rnn import SimpleRnn
from tinyq.ops.slice import Slice
from tinyq.ops.softmax import Softmax
from tinyq.ops.squared_difference import SquaredDifference
from tinyq.ops.sub import Sub
from tinyq.ops.tanh import Tanh
from tinyq.ops.transpose import Transpose
from tinyq.ops.transpose_conv import TransposeConv2D
from tinyq.ops.window import SAME, VALID, out_size, padding_for

HDF5_WALK_SECONDS = 30
_HDF5_WALK = """
import sys, h5py
def read(name, obj):
    dict(obj.attrs)
    if isinstance(obj, h5py.Dataset):
        obj[()]
with h5py.File(sys.argv[1], "r") as f:
    dict(f.attrs)
    f.visititems(read)
"""


def _legacy_custom_objects() -> dict:
    """Older Keras wrote DepthwiseConv2D with a `groups` argument Keras 3 rejects."""
    keras = tinyq_tf.keras()

    class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
        def __init__(self, *args, groups=1, **kwargs):
            super().__init__(*args, **kwargs)

    return {"DepthwiseConv2D": DepthwiseConv2D}


def _check_hdf5_terminates(path: Path) -> None:
    """HDF5's C library can loop forever on some corrupt files, where no Python signal reaches
    it; read the whole file once in a child process with a time limit before Keras reads it here.
    A child that raises is fine: Keras then fails on the same file with its own message."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", _HDF5_WALK, str(path)], capture_output=True, timeout=HDF5_WALK_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise TinyqError(f"{path} is a corrupt HDF5 file: reading it did not finish in {HDF5_WALK_SECONDS} s") from None
    if result.returncode < 0:
        raise TinyqError(f"{path} is a corrupt HDF5 file: reading it crashed the HDF5 library") from None


def load_keras_model(path: str | Path):
    """The Keras model object, loaded safely; errors are one clear line."""
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5") and path.is_file():
        _check_hdf5_terminates(path)
    try:
        keras = tinyq_tf.keras()
    except ImportError:
        raise TinyqError("Keras models need TensorFlow/Keras: pip install tensorflow-cpu") from None
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True, custom_objects=_legacy_custom_objects())
    except ValueError as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "Lambda" in str(err) or "unsafe" in str(err).lower():
            raise TinyqError(
                f"{path}: refusing to run code stored in the model (Lambda layer); tinyq loads Keras files in safe mode"
            ) from None
        raise TinyqError(f"{path} is not a loadable Keras model: {text[:300]}") from None
    except Exception as err:  # h5py, zip and deserialization errors of corrupt files
        text = str(err).splitlines()[0] if str(err) else ""
        raise TinyqError(f"{path} is a corrupt or unreadable Keras file ({type(err).__name__}: {text[:200]})") from None


def load_keras(path: str | Path) -> ir.Graph:
    return load_float_keras(path).graph


def load_float_keras(path: str | Path) -> FloatModel:
    return float_model_from_keras(load_keras_model(path), Path(path).stem)


def float_model_from_keras(model, name: str | None = None) -> FloatModel:
    """A Keras model object (already in memory) as a float IR graph."""
    result = Converter(model, name or model.name).convert()
    result.keras_model = model
    return result


def _list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


class Converter:
    """Walks a Keras model's operations in order; each layer's row in LAYERS (each keras.ops
    function's row in KERAS_OPS) emits its IR ops here."""

    def __init__(self, model, name: str):
        self.model = model
        self.name = name
        self.tensors: dict[str, ir.Tensor] = {}
        self.ops: list[ir.Op] = []
        self.names: dict[int, str] = {}  # id(KerasTensor) -> IR tensor name
        self.bn_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.consumers: dict[int, int] = {}  # id(KerasTensor) -> layers reading it
        self.alias: dict[int, int] = {}  # id(output of a removed layer) -> id(its input)
        self.output = None  # the KerasTensor the layer being converted produces
        self.node = None  # the call of the layer being converted (its arguments)
        self.unit_height_shape = None  # the 4-D output shape a 1-D layer's 2-D ops produce
        self.squeezes: set[str] = set()  # the RESHAPEs that drop an inserted unit height

    # --- helpers of the layer functions --------------------------------------------------
    def shape(self, keras_tensor) -> tuple[int, ...]:
        shape = tuple(keras_tensor.shape)
        if any(d is None for d in shape[1:]):
            raise TinyqError(
                f"tensor {keras_tensor.name} has an unknown dimension {shape}: give the model a fixed input shape"
            )
        return (1,) + tuple(int(d) for d in shape[1:])

    @property
    def out_shape(self) -> tuple[int, ...]:
        """The shape of the output of the layer being converted (of its 2-D ops for a 1-D layer)."""
        return self.unit_height_shape or self.shape(self.output)

    def new(self, name: str, shape, data=None) -> str:
        """A new float tensor (a constant with `data`), named uniquely after `name`."""
        base, n = name, 1
        while name in self.tensors:
            n += 1
            name = f"{base}_{n}"
        self.tensors[name] = ir.Tensor(
            name, shape, "float32", None, None if data is None else np.asarray(data, np.float32)
        )
        return name

    def constant(self, name: str, data) -> str:
        data = np.asarray(data, np.float32)
        return self.new(name, data.shape, data)

    def emit(self, name: str, attrs, inputs, out_shape, out_name: str | None = None) -> str:
        """An op named uniquely after `name`; returns its output tensor."""
        out = self.new(out_name or name, tuple(out_shape))
        op_name = name
        existing = {op.name for op in self.ops}
        k = 1
        while op_name in existing:
            k += 1
            op_name = f"{name}_{k}"
        self.ops.append(ir.Op(op_name, attrs, tuple(inputs), (out,)))
        return out

    def producer(self, tensor: str) -> ir.Op | None:
        return next((op for op in reversed(self.ops) if tensor in op.outputs), None)

    def fusable_producer(self, tensor: str) -> ir.Op | None:
        """The op computing `tensor`, looking through the RESHAPE that ends a 1-D layer (an
        activation or a BatchNorm commutes with it; nothing else reads its input)."""
        op = self.producer(tensor)
        if op is not None and op.name in self.squeezes:
            return self.producer(op.inputs[0])
        return op

    def replace_op(self, old: ir.Op, new: ir.Op) -> None:
        self.ops[self.ops.index(old)] = new

    def rename(self, tensor: str, name: str) -> str:
        """Give a tensor no op reads yet a new name (made unique); returns it."""
        op = self.producer(tensor)
        new = self.new(name, self.tensors[tensor].shape)
        del self.tensors[tensor]
        self.bn_stats.pop(tensor, None)  # statistics of what it was before (a BatchNorm folded on)
        self.replace_op(op, ir.Op(op.name, op.attrs, op.inputs, tuple(new if t == tensor else t for t in op.outputs)))
        return new

    def resolve(self, key: int) -> int:
        while key in self.alias:
            key = self.alias[key]
        return key

    def single_use(self, keras_tensor) -> bool:
        """Is this tensor (after removed layers) read by exactly one layer and not a model output?"""
        key = self.resolve(id(keras_tensor))
        return self.consumers.get(key, 0) == 1 and not any(self.resolve(id(t)) == key for t in self.model.outputs)

    def activation(self, layer, out: str, activation_name: str, keras_in) -> str:
        """Apply a Keras activation to `out`: fuse it, or emit ops. `keras_in` is the
        activation layer's input (None for a layer's own activation argument)."""
        name = ACTIVATION_ALIASES.get(activation_name, activation_name)
        if name in ("linear", None):
            return out
        if name in FUSABLE:
            op = self.fusable_producer(out)
            if (
                op is not None
                and getattr(op.attrs, "activation", None) == ir.Activation.NONE
                and (keras_in is None or self.single_use(keras_in))
            ):
                self.replace_op(op, ir.Op(op.name, replace(op.attrs, activation=FUSABLE[name]), op.inputs, op.outputs))
                return out
        if name not in ACTIVATIONS:
            raise TinyqError(
                f"layer {layer.name!r}: activation {activation_name!r} has no exact int8 form in tinyq "
                f"(supported: linear, {', '.join([*ACTIVATIONS, *ACTIVATION_ALIASES])})"
            )
        return ACTIVATIONS[name](self, f"{layer.name}_{name}", out)

    def own_activation(self, layer, out: str) -> str:
        """A layer's `activation` argument applied to its output."""
        fn = getattr(layer, "activation", None)
        return self.activation(layer, out, getattr(fn, "__name__", "linear") if fn is not None else "linear", None)

    @staticmethod
    def padding(layer, x_shape, kernel, strides, dilation) -> ir.Padding2D:
        if layer.padding == "causal":  # 1-D layers only: zeros before the sequence
            return ir.Padding2D(left=(kernel[1] - 1) * dilation[1])
        if layer.padding not in ("valid", "same"):
            raise TinyqError(f"layer {layer.name!r}: padding {layer.padding!r} is not supported")
        return padding_for(SAME if layer.padding == "same" else VALID, x_shape[1:3], kernel, strides, dilation)

    @staticmethod
    def channels_last(layer) -> None:
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise TinyqError(f"layer {layer.name!r}: only channels_last data is supported")

    # --- the walk -------------------------------------------------------------------
    def _operations(self) -> list:
        """The model's layers and keras.ops calls, in order. A loaded Sequential's layers also
        keep the calls of its rebuilds; only the nodes of its functional graph count."""
        graph = getattr(self.model, "_functional", None) or self.model
        return list(graph.operations)

    def _own_nodes(self, operations) -> dict[int, list]:
        graph = getattr(self.model, "_functional", None) or self.model
        own = {id(node) for nodes in graph._nodes_by_depth.values() for node in nodes}
        return {id(op): [n for n in op._inbound_nodes if id(n) in own] for op in operations}

    def _row(self, operation):
        """The operation's row: LAYERS for a layer, KERAS_OPS for a keras.ops call."""
        kind = type(operation).__name__
        if isinstance(operation, tinyq_tf.keras().layers.Layer):
            if kind not in LAYERS:
                raise TinyqError(
                    f"unsupported layer {operation.name!r} of class {kind}; "
                    f"tinyq supports {', '.join(SUPPORTED_LAYERS)}"
                )
            return LAYERS[kind]
        if kind not in KERAS_OPS:
            raise TinyqError(
                f"unsupported operation {operation.name!r} (keras.ops {kind}); tinyq supports the keras.ops "
                f"{', '.join(KERAS_OPS)} of a tensor and a constant or of two tensors"
            )
        return KERAS_OPS[kind]

    def convert(self) -> FloatModel:
        operations = self._operations()
        nodes = self._own_nodes(operations)
        for layer in operations:
            for node in nodes[id(layer)]:
                for t in _list(node.input_tensors):
                    self.consumers[id(t)] = self.consumers.get(id(t), 0) + 1
        for t in self.model.inputs:
            self.names[id(t)] = self.new(t.name, self.shape(t))
        for layer in operations:
            kind = type(layer).__name__
            if kind == "InputLayer":
                continue
            if len(nodes[id(layer)]) != 1:
                raise TinyqError(
                    f"layer {layer.name!r} ({kind}) is used {len(nodes[id(layer)])} times; "
                    "shared layers are not supported"
                )
            row = self._row(layer)
            node = nodes[id(layer)][0]
            inputs = _list(node.input_tensors)
            missing = [t for t in inputs if id(t) not in self.names]
            if missing:
                raise TinyqError(
                    f"layer {layer.name!r} ({kind}) reads a tensor from outside this model "
                    "(nested models are not supported)"
                )
            self.output = node.output_tensors[0]  # the keras tensor this call of the layer produces
            self.node = node
            out = row(self, layer, [self.names[id(t)] for t in inputs], inputs)
            self.names[id(self.output)] = out
        graph = ir.Graph(
            self.name,
            self.tensors,
            tuple(self.ops),
            tuple(self.names[id(t)] for t in self.model.inputs),
            tuple(self.names[id(t)] for t in self.model.outputs),
        )
        return FloatModel(ir.verify(folded_into_convolutions(graph)), self.bn_stats)


# --- activations: (converter, op name, input tensor) -> output tensor


def _unary(attrs_class):
    def convert(cv: Converter, name: str, x: str) -> str:
        return cv.emit(name, attrs_class(), [x], cv.tensors[x].shape)

    return convert


def _leaky_relu_activation(cv: Converter, name: str, x: str) -> str:
    return cv.emit(name, LeakyRelu(0.2), [x], cv.tensors[x].shape)  # keras.activations.leaky_relu's slope


def _hard_sigmoid(cv: Converter, name: str, x: str) -> str:
    """Keras 3's relu6(x + 3) / 6: ADD of 3 with a fused ReLU6, then MUL by 1/6."""
    shape = cv.tensors[x].shape
    shifted = cv.emit(
        f"{name}_add", Add(ir.Activation.RELU6), [x, cv.constant(f"{name}/three", [3.0])], shape, f"{name}/shifted"
    )
    return cv.emit(name, Mul(), [shifted, cv.constant(f"{name}/sixth", [1.0 / 6.0])], shape)


def _silu(cv: Converter, name: str, x: str) -> str:
    """x * sigmoid(x): LOGISTIC, then MUL with the input."""
    shape = cv.tensors[x].shape
    gate = cv.emit(f"{name}_sigmoid", Logistic(), [x], shape, f"{name}/sigmoid")
    return cv.emit(name, Mul(), [x, gate], shape)


FUSABLE = {"relu": ir.Activation.RELU, "relu6": ir.Activation.RELU6}
ACTIVATIONS = {  # the Keras activations with an exact int8 form, by keras.activations name
    "relu": _unary(Relu),
    "relu6": _unary(Relu6),
    "leaky_relu": _leaky_relu_activation,
    "softmax": _unary(Softmax),
    "sigmoid": _unary(Logistic),
    "tanh": _unary(Tanh),
    "elu": _unary(Elu),
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": _unary(HardSwish),
    "silu": _silu,
}
ACTIVATION_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


# --- one function per Keras layer class: (converter, layer, input tensors, Keras inputs) -> output


def _pair(value) -> tuple[int, int]:
    """A 1-D layer's size or stride over the inserted unit height; a 2-D layer's as it is."""
    value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return (1, int(value[0])) if len(value) == 1 else (int(value[0]), int(value[1]))


def _kernel_2d(kernel: np.ndarray) -> np.ndarray:
    """A 1-D layer's kernel (k, ...) as the 2-D kernel (1, k, ...) over the unit height."""
    return kernel[None] if kernel.ndim == 3 else kernel


def _unit_height(convert):
    """A 1-D layer as its 2-D ops over an inserted unit height, a RESHAPE around them (as
    TFLite's converter runs 1-D convolutions and pooling)."""

    def convert_1d(cv: Converter, layer, ins, keras_in):
        cv.channels_last(layer)
        n, length, channels = cv.tensors[ins[0]].shape
        x = cv.emit(f"{layer.name}_expand", Reshape(), [ins[0]], (n, 1, length, channels), f"{layer.name}/input_2d")
        n, length, channels = cv.out_shape
        cv.unit_height_shape = (n, 1, length, channels)
        try:
            y = convert(cv, layer, [x], keras_in)
        finally:
            cv.unit_height_shape = None
        y = cv.rename(y, f"{layer.name}/output_2d")
        out = cv.emit(f"{layer.name}_squeeze", Reshape(), [y], cv.out_shape, layer.name)
        cv.squeezes.add(cv.producer(out).name)
        return out

    return convert_1d


def _conv(cv: Converter, layer, ins, keras_in):
    cv.channels_last(layer)
    if getattr(layer, "groups", 1) != 1:
        raise TinyqError(f"layer {layer.name!r}: grouped convolution is not supported")
    kernel = _kernel_2d(layer.kernel.numpy())
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[3], np.float32)
    x = cv.tensors[ins[0]]
    strides, dilation = _pair(layer.strides), _pair(layer.dilation_rate)
    attrs = Conv2D(strides, dilation, cv.padding(layer, x.shape, kernel.shape[:2], strides, dilation))
    w = cv.new(f"{layer.name}/kernel", (kernel.shape[3],) + kernel.shape[:3], kernel.transpose(3, 0, 1, 2))
    b = cv.new(f"{layer.name}/bias", bias.shape, bias)
    return cv.own_activation(layer, cv.emit(layer.name, attrs, [ins[0], w, b], cv.out_shape))


def _emit_depthwise(
    cv: Converter, layer, x_name: str, kernel: np.ndarray, bias: np.ndarray, out_shape, name: str
) -> str:
    x = cv.tensors[x_name]
    strides, dilation = _pair(layer.strides), _pair(layer.dilation_rate)
    kh, kw, channels, m = kernel.shape
    attrs = DepthwiseConv2D(strides, dilation, cv.padding(layer, x.shape, (kh, kw), strides, dilation), m)
    w = cv.new(f"{name}/depthwise_kernel", (1, kh, kw, channels * m), kernel.reshape(1, kh, kw, channels * m))
    b = cv.new(f"{name}/bias", bias.shape, bias)
    return cv.emit(name, attrs, [x_name, w, b], out_shape)


def _depthwise_conv(cv: Converter, layer, ins, keras_in):
    cv.channels_last(layer)
    kernel = _kernel_2d(layer.kernel.numpy())
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[2] * kernel.shape[3], np.float32)
    return cv.own_activation(layer, _emit_depthwise(cv, layer, ins[0], kernel, bias, cv.out_shape, layer.name))


def _separable_conv(cv: Converter, layer, ins, keras_in):
    cv.channels_last(layer)
    dw = _kernel_2d(layer.depthwise_kernel.numpy())
    pw = _kernel_2d(layer.pointwise_kernel.numpy())
    oh = cv.out_shape[1:3]
    mid_shape = (1, oh[0], oh[1], dw.shape[2] * dw.shape[3])
    mid = _emit_depthwise(
        cv, layer, ins[0], dw, np.zeros(mid_shape[3], np.float32), mid_shape, f"{layer.name}_depthwise"
    )
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(pw.shape[3], np.float32)
    w = cv.new(f"{layer.name}/pointwise_kernel", (pw.shape[3], 1, 1, pw.shape[2]), pw.transpose(3, 0, 1, 2))
    b = cv.new(f"{layer.name}/bias", bias.shape, bias)
    return cv.own_activation(layer, cv.emit(f"{layer.name}_pointwise", Conv2D(), [mid, w, b], cv.out_shape, layer.name))


def _conv_transpose(cv: Converter, layer, ins, keras_in):
    """Keras's kernel (kh, kw, filters, in) as TRANSPOSE_CONV's OHWI; the padding is the one
    of the forward convolution (output -> input), TensorFlow's SAME or VALID over the output."""
    cv.channels_last(layer)
    if any(d != 1 for d in _pair(layer.dilation_rate)):
        raise TinyqError(f"layer {layer.name!r}: dilated transposed convolution is not supported")
    kernel = _kernel_2d(layer.kernel.numpy())
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[2], np.float32)
    x, out_shape = cv.tensors[ins[0]].shape, cv.out_shape
    strides = _pair(layer.strides)
    if layer.padding not in ("valid", "same"):
        raise TinyqError(f"layer {layer.name!r}: padding {layer.padding!r} is not supported")
    mode = SAME if layer.padding == "same" else VALID
    padding = padding_for(mode, out_shape[1:3], kernel.shape[:2], strides)
    pads = ((padding.top, padding.bottom), (padding.left, padding.right))
    back = tuple(out_size(out_shape[1 + i], kernel.shape[i], strides[i], 1, *pads[i]) for i in (0, 1))
    if back != x[1:3]:
        raise TinyqError(
            f"layer {layer.name!r}: output_padding {layer.output_padding} gives an output {out_shape[1:3]} that "
            f"TFLite's TRANSPOSE_CONV ({mode} over the output) cannot produce from {x[1:3]}"
        )
    w = cv.new(
        f"{layer.name}/kernel", (kernel.shape[2], *kernel.shape[:2], kernel.shape[3]), kernel.transpose(2, 0, 1, 3)
    )
    b = cv.new(f"{layer.name}/bias", bias.shape, bias)
    attrs = TransposeConv2D(strides, padding)
    return cv.own_activation(layer, cv.emit(layer.name, attrs, [ins[0], w, b], out_shape))


def _dense(cv: Converter, layer, ins, keras_in):
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[1], np.float32)
    w = cv.new(f"{layer.name}/kernel", kernel.shape[::-1], kernel.T)
    b = cv.new(f"{layer.name}/bias", bias.shape, bias)
    return cv.own_activation(layer, cv.emit(layer.name, FullyConnected(), [ins[0], w, b], cv.out_shape))


def _channel_axis_only(cv: Converter, layer, x: str, axis, what: str) -> None:
    rank = len(cv.tensors[x].shape)
    if [a % rank for a in _list(axis)] != [rank - 1]:
        raise TinyqError(f"layer {layer.name!r}: {what} over axis {axis} is not supported (only the last axis)")


def _per_channel(cv: Converter, layer, x: str, value, what: str) -> np.ndarray:
    """A scalar or a per-channel vector (any leading ones) as one value per channel."""
    channels = cv.tensors[x].shape[-1]
    value = np.asarray(value, np.float64)
    if value.size == 1:
        return np.full(channels, float(value.reshape(-1)[0]))
    if value.shape[-1] != channels or value.size != channels:
        raise TinyqError(
            f"layer {layer.name!r}: {what} of shape {value.shape} is not a scalar or one value per channel"
        )
    return value.reshape(-1)


def _affine(cv: Converter, name: str, x: str, keras_x, scale, shift) -> str:
    """x * scale + shift per channel: folded into the convolution or dense layer before it, or
    a per-channel affine op of its own."""
    scale, shift = np.asarray(scale, np.float32), np.asarray(shift, np.float32)
    producer = cv.fusable_producer(x)
    if (
        producer is not None
        and is_affine(producer)
        and producer.attrs.activation == ir.Activation.NONE
        and cv.single_use(keras_x)
    ):
        return _fold_batchnorm(cv, producer, scale, shift, x, name)
    return _standalone_batchnorm(cv, name, x, scale, shift)


def _batch_normalization(cv: Converter, layer, ins, keras_in):
    rank = len(cv.tensors[ins[0]].shape)
    if [a % rank for a in _list(layer.axis)] != [rank - 1]:
        raise TinyqError(
            f"layer {layer.name!r}: BatchNormalization over axis {layer.axis} is not supported (only the channel axis)"
        )
    gamma = layer.gamma.numpy() if layer.scale else np.ones(layer.moving_mean.shape, np.float32)
    beta = layer.beta.numpy() if layer.center else np.zeros(layer.moving_mean.shape, np.float32)
    mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    scale = gamma / np.sqrt(var + layer.epsilon)
    shift = beta - mean * scale
    out = _affine(cv, layer.name, ins[0], keras_in[0], scale, shift)
    cv.bn_stats[out] = (beta.astype(np.float32), np.abs(gamma).astype(np.float32))
    return out


def _rescaling(cv: Converter, layer, ins, keras_in):
    """x * scale + offset, scalars or one value per channel."""
    scale = _per_channel(cv, layer, ins[0], layer.scale, "scale")
    offset = _per_channel(cv, layer, ins[0], layer.offset, "offset")
    return _affine(cv, layer.name, ins[0], keras_in[0], scale, offset)


def _normalization(cv: Converter, layer, ins, keras_in):
    """(x - mean) / max(sqrt(variance), epsilon), per channel."""
    if layer.invert:
        raise TinyqError(f"layer {layer.name!r}: Normalization with invert=True is not supported")
    if layer.axis not in ((), None):
        _channel_axis_only(cv, layer, ins[0], layer.axis, "Normalization")
    mean = _per_channel(cv, layer, ins[0], np.asarray(layer.mean), "mean")
    std = np.maximum(np.sqrt(_per_channel(cv, layer, ins[0], np.asarray(layer.variance), "variance")), 1e-7)
    return _affine(cv, layer.name, ins[0], keras_in[0], 1.0 / std, -mean / std)


def _layer_normalization(cv: Converter, layer, ins, keras_in):
    """TFLite's sequence: MEAN, SQUARED_DIFFERENCE, MEAN, ADD epsilon, RSQRT; SUB the mean, MUL,
    then MUL gamma and ADD beta. Keras adds epsilon to the variance, inside the square root."""
    x = ins[0]
    _channel_axis_only(cv, layer, x, layer.axis, "LayerNormalization")
    if layer.rms_scaling:
        raise TinyqError(f"layer {layer.name!r}: LayerNormalization with rms_scaling is not supported")
    shape = cv.tensors[x].shape
    axes = (len(shape) - 1,)
    reduced = shape[:-1] + (1,)
    name = layer.name
    mean = cv.emit(f"{name}_mean", Mean(axes), [x], reduced, f"{name}/mean")
    squares = cv.emit(f"{name}_squared_difference", SquaredDifference(), [x, mean], shape, f"{name}/squares")
    variance = cv.emit(f"{name}_variance", Mean(axes), [squares], reduced, f"{name}/variance")
    eps = cv.constant(f"{name}/epsilon", [layer.epsilon])
    padded = cv.emit(f"{name}_add_epsilon", Add(), [variance, eps], reduced, f"{name}/variance_epsilon")
    inv = cv.emit(f"{name}_rsqrt", Rsqrt(), [padded], reduced, f"{name}/rsqrt")
    centered = cv.emit(f"{name}_sub", Sub(), [x, mean], shape, f"{name}/centered")
    last = layer.scale or layer.center
    out = cv.emit(f"{name}_mul", Mul(), [centered, inv], shape, f"{name}/normalized" if last else name)
    if layer.scale:
        gamma = cv.constant(f"{name}/gamma", layer.gamma.numpy())
        out = cv.emit(f"{name}_gamma", Mul(), [out, gamma], shape, f"{name}/scaled" if layer.center else name)
    if layer.center:
        out = cv.emit(f"{name}_beta", Add(), [out, cv.constant(f"{name}/beta", layer.beta.numpy())], shape, name)
    return out


def _standalone_batchnorm(cv: Converter, name: str, x: str, scale, shift) -> str:
    """A BatchNorm with nothing to fold into: a per-channel affine op."""
    shape = cv.tensors[x].shape
    channels = shape[-1]
    b = cv.new(f"{name}/shift", (channels,), shift)
    if len(shape) == 4:
        w = cv.new(f"{name}/scale", (1, 1, 1, channels), scale.reshape(1, 1, 1, channels))
        return cv.emit(name, DepthwiseConv2D(), [x, w, b], shape)
    w = cv.new(f"{name}/scale", (channels, channels), np.diag(scale))
    return cv.emit(name, FullyConnected(), [x, w, b], shape)


def _fold_batchnorm(cv: Converter, op: ir.Op, scale, shift, x: str, name: str) -> str:
    """W' = W * scale (per output channel), b' = b * scale + shift; `x` (op's output, or the
    RESHAPE of it that ends a 1-D layer) is renamed after the folded layer."""
    w, b = cv.tensors[op.inputs[1]], cv.tensors[op.inputs[2]]
    axis = 3 if isinstance(op.attrs, DepthwiseConv2D) else 0
    shape = [1] * w.data.ndim
    shape[axis] = -1
    cv.tensors[w.name] = ir.Tensor(w.name, w.shape, "float32", None, w.data * scale.reshape(shape))
    cv.tensors[b.name] = ir.Tensor(b.name, b.shape, "float32", None, b.data * scale + shift)
    return cv.rename(x, name)


def _activation(cv: Converter, layer, ins, keras_in):
    fn = getattr(layer, "activation", None)
    return cv.activation(layer, ins[0], getattr(fn, "__name__", "linear") if fn is not None else "linear", keras_in[0])


def _relu(cv: Converter, layer, ins, keras_in):
    cfg = layer.get_config()
    slope, threshold, max_value = cfg.get("negative_slope", 0), cfg.get("threshold", 0), cfg.get("max_value")
    if threshold:
        raise TinyqError(f"layer {layer.name!r}: ReLU with a threshold is not supported")
    if slope:
        if max_value is not None:
            raise TinyqError(f"layer {layer.name!r}: ReLU with both a negative slope and a max_value is not supported")
        return cv.emit(layer.name, LeakyRelu(float(slope)), ins, cv.tensors[ins[0]].shape)
    if max_value is None:
        return cv.activation(layer, ins[0], "relu", keras_in[0])
    if float(max_value) == 6.0:
        return cv.activation(layer, ins[0], "relu6", keras_in[0])
    raise TinyqError(f"layer {layer.name!r}: ReLU with max_value {max_value} is not supported (None or 6)")


def _leaky_relu(cv: Converter, layer, ins, keras_in):
    return cv.emit(layer.name, LeakyRelu(float(layer.negative_slope)), ins, cv.tensors[ins[0]].shape)


def _prelu(cv: Converter, layer, ins, keras_in):
    """PRELU with alpha as a constant of Keras's shape (ones on the shared axes): it broadcasts."""
    alpha = cv.constant(f"{layer.name}/alpha", layer.alpha.numpy())
    return cv.emit(layer.name, Prelu(), [ins[0], alpha], cv.tensors[ins[0]].shape)


def _elu(cv: Converter, layer, ins, keras_in):
    if float(layer.alpha) != 1.0:
        raise TinyqError(f"layer {layer.name!r}: ELU with alpha {layer.alpha} is not supported (TFLite's ELU has 1)")
    return cv.emit(layer.name, Elu(), ins, cv.tensors[ins[0]].shape)


def _softmax(cv: Converter, layer, ins, keras_in):
    rank = len(cv.tensors[ins[0]].shape)
    if any(a % rank != rank - 1 for a in _list(layer.axis)):
        raise TinyqError(f"layer {layer.name!r}: softmax over axis {layer.axis} is not supported (last axis)")
    return cv.emit(layer.name, Softmax(), ins, cv.tensors[ins[0]].shape)


def _chain(cv: Converter, layer, attrs_class, ins, last_name: str) -> str:
    """A chain of binary ops over the inputs (broadcasting as they go)."""
    out = ins[0]
    for i, other in enumerate(ins[1:], start=1):
        shape = tuple(np.broadcast_shapes(cv.tensors[out].shape, cv.tensors[other].shape))
        out = cv.emit(last_name if i == len(ins) - 1 else f"{layer.name}_{i}", attrs_class(), [out, other], shape)
    return out


def _merge(attrs_class):
    """Add, Multiply, Maximum, ...: a chain of binary ops over the layer's inputs."""

    def convert(cv: Converter, layer, ins, keras_in):
        return _chain(cv, layer, attrs_class, ins, layer.name)

    return convert


def _average(cv: Converter, layer, ins, keras_in):
    """The inputs' ADD chain, then a MUL by the constant 1/n."""
    total = _chain(cv, layer, Add, ins, f"{layer.name}_sum")
    scale = cv.constant(f"{layer.name}/reciprocal", [1.0 / len(ins)])
    return cv.emit(layer.name, Mul(), [total, scale], cv.out_shape)


def _concatenate(cv: Converter, layer, ins, keras_in):
    rank = len(cv.tensors[ins[0]].shape)
    return cv.emit(layer.name, Concatenation(layer.axis % rank), ins, cv.out_shape)


def _pooling(attrs_class):
    def convert(cv: Converter, layer, ins, keras_in):
        cv.channels_last(layer)
        pool, strides = _pair(layer.pool_size), _pair(layer.strides or layer.pool_size)
        x = cv.tensors[ins[0]]
        attrs = attrs_class(pool, strides, cv.padding(layer, x.shape, pool, strides, (1, 1)))
        return cv.emit(layer.name, attrs, ins, cv.out_shape)

    return convert


def _global_pooling(attrs_class):
    """A pool over the whole image (a 1-D sequence over an inserted unit height), then a reshape
    to Keras's output (none for a 2-D keepdims)."""

    def convert(cv: Converter, layer, ins, keras_in):
        cv.channels_last(layer)
        x = ins[0]
        if len(cv.tensors[x].shape) == 3:
            n, length, c = cv.tensors[x].shape
            x = cv.emit(f"{layer.name}_expand", Reshape(), [x], (n, 1, length, c), f"{layer.name}/input_2d")
        n, h, w, c = cv.tensors[x].shape
        pooled = cv.emit(layer.name, attrs_class((h, w), (h, w)), [x], (n, 1, 1, c), out_name=f"{layer.name}/pooled")
        if cv.out_shape == (n, 1, 1, c):
            return pooled
        return cv.emit(f"{layer.name}_flatten", Reshape(), [pooled], cv.out_shape, layer.name)

    return convert


def _reshape(cv: Converter, layer, ins, keras_in):
    return cv.emit(layer.name, Reshape(), ins, cv.out_shape)


def _zero_padding(cv: Converter, layer, ins, keras_in):
    cv.channels_last(layer)
    pads = layer.padding if isinstance(layer.padding[0], (list, tuple)) else (layer.padding,)
    paddings = ((0, 0), *(tuple(int(p) for p in pair) for pair in pads), (0, 0))
    return cv.emit(layer.name, Pad(paddings), ins, cv.out_shape)


def _cropping(cv: Converter, layer, ins, keras_in):
    """SLICE: Keras's (before, after) crop of each spatial axis."""
    cv.channels_last(layer)
    crops = layer.cropping if isinstance(layer.cropping[0], (list, tuple)) else (layer.cropping,)
    begin = (0, *(int(before) for before, _ in crops), 0)
    return cv.emit(layer.name, Slice(begin, cv.out_shape), ins, cv.out_shape)


def _up_sampling(cv: Converter, layer, ins, keras_in):
    """Nearest: RESIZE_NEAREST_NEIGHBOR with half pixel centers, which picks exactly Keras's
    repeated pixels; bilinear: Keras's tf.image.resize, RESIZE_BILINEAR with half pixel centers."""
    cv.channels_last(layer)
    interpolation = getattr(layer, "interpolation", "nearest")
    x, y = cv.tensors[ins[0]].shape, cv.out_shape
    if interpolation == "nearest":
        for axis in (1, 2):
            sources = nearest_sources(x[axis], y[axis], False, True)
            if not np.array_equal(sources, np.arange(y[axis]) // (y[axis] // x[axis])):
                raise TinyqError(f"layer {layer.name!r}: TFLM's nearest resize does not repeat {x} to {y} exactly")
        return cv.emit(layer.name, ResizeNearestNeighbor(half_pixel_centers=True), ins, y)
    if interpolation == "bilinear":
        return cv.emit(layer.name, ResizeBilinear(half_pixel_centers=True), ins, y)
    raise TinyqError(f"layer {layer.name!r}: {interpolation} upsampling is not supported (nearest and bilinear are)")


def _permute(cv: Converter, layer, ins, keras_in):
    return cv.emit(layer.name, Transpose((0, *(int(d) for d in layer.dims))), ins, cv.out_shape)


def _repeat_vector(cv: Converter, layer, ins, keras_in):
    """(1, F) -> (1, 1, F), then BROADCAST_TO (1, n, F)."""
    n, features = cv.tensors[ins[0]].shape
    row = cv.emit(f"{layer.name}_expand", Reshape(), ins, (n, 1, features), f"{layer.name}/row")
    return cv.emit(layer.name, BroadcastTo(cv.out_shape), [row], cv.out_shape)


def _recurrent_config(layer, activations: dict[str, str]) -> dict:
    """The layer's config, refused unless it is the form tinyq deploys: the named activations,
    forward in time, no state carried between calls (streaming builds do that), no returned state."""
    config = layer.get_config()
    for key, want in activations.items():
        if config.get(key) != want:
            raise TinyqError(f"layer {layer.name!r}: {key} {config.get(key)!r} is not supported (only {want!r})")
    for key, why in (("stateful", "stateful"), ("return_state", "return_state")):
        if config.get(key):
            raise TinyqError(f"layer {layer.name!r}: {why} recurrent layers are not supported")
    return config


def _sequence_of(cv: Converter, layer, config: dict, x: str) -> str:
    """The sequence the layer reads: go_backwards reads it last step first (REVERSE_V2), and so
    returns its sequence in that order, as Keras does."""
    if not config.get("go_backwards"):
        return x
    return cv.emit(f"{layer.name}_reversed", ReverseV2((1,)), [x], cv.tensors[x].shape)


def _last_step(cv: Converter, layer, sequence: str) -> str:
    """The last step of a (1, time, units) sequence as (1, units): what return_sequences=False returns."""
    _, steps, units = cv.tensors[sequence].shape
    last = cv.emit(f"{layer.name}_last", Slice((0, steps - 1, 0), (1, 1, units)), [sequence], (1, 1, units))
    return cv.emit(f"{layer.name}_squeeze", Reshape(), [last], (1, units))


def _lstm(cv: Converter, layer, ins, keras_in):
    """UNIDIRECTIONAL_SEQUENCE_LSTM with Keras's gates (input, forget, cell, output) split into
    per-gate [units, features] matrices; its float form also outputs the cell state for calibration."""
    config = _recurrent_config(layer, {"activation": "tanh", "recurrent_activation": "sigmoid"})
    units, gates = config["units"], ("input", "forget", "cell", "output")
    bias = layer.cell.bias.numpy() if config["use_bias"] else np.zeros(4 * units, np.float32)
    w_in = _gate_blocks(cv, layer, layer.cell.kernel.numpy(), gates, "kernel")
    w_rec = _gate_blocks(cv, layer, layer.cell.recurrent_kernel.numpy(), gates, "recurrent")
    b = _gate_blocks(cv, layer, bias, gates, "bias")
    x = _sequence_of(cv, layer, config, ins[0])
    _, steps, _ = cv.tensors[x].shape
    shape = (1, steps, units)
    out = cv.new(layer.name, shape)
    cell = cv.new(f"{layer.name}/cell_state", shape)
    cv.ops.append(ir.Op(layer.name, UnidirectionalSequenceLstm(), (x, *w_in, *w_rec, *b), (out, cell)))
    return out if config["return_sequences"] else _last_step(cv, layer, out)


def _gate_blocks(cv: Converter, layer, matrix: np.ndarray, gates: tuple[str, ...], what: str) -> list[str]:
    """Keras's gate-concatenated matrix (or bias) split per gate, matrices as [units, depth]."""
    units = matrix.shape[-1] // len(gates)
    blocks = [matrix[..., k * units : (k + 1) * units] for k in range(len(gates))]
    return [cv.constant(f"{layer.name}/{g}_{what}", b.T) for g, b in zip(gates, blocks)]


def _gru(cv: Converter, layer, ins, keras_in):
    """TINYQ_GRU: Keras's gates (update, reset, candidate), input and recurrent biases split."""
    config = _recurrent_config(layer, {"activation": "tanh", "recurrent_activation": "sigmoid"})
    units, gates = config["units"], ("update", "reset", "candidate")
    if not config["use_bias"]:
        bias = np.zeros((2, 3 * units), np.float32)
    elif config["reset_after"]:
        bias = layer.cell.bias.numpy()
    else:  # one bias, on the input side
        bias = np.stack([layer.cell.bias.numpy(), np.zeros(3 * units, np.float32)])
    operands = [
        *_gate_blocks(cv, layer, layer.cell.kernel.numpy(), gates, "kernel"),
        *_gate_blocks(cv, layer, layer.cell.recurrent_kernel.numpy(), gates, "recurrent"),
        *_gate_blocks(cv, layer, bias[0], gates, "bias"),
        *_gate_blocks(cv, layer, bias[1], gates, "recurrent_bias"),
    ]
    x = _sequence_of(cv, layer, config, ins[0])
    _, steps, _ = cv.tensors[x].shape
    out = cv.emit(layer.name, Gru(config["reset_after"]), [x, *operands], (1, steps, units))
    return out if config["return_sequences"] else _last_step(cv, layer, out)


def _simple_rnn(cv: Converter, layer, ins, keras_in):
    config = _recurrent_config(layer, {"activation": "tanh"})
    units = config["units"]
    bias = layer.cell.bias.numpy() if config["use_bias"] else np.zeros(units, np.float32)
    operands = [
        cv.constant(f"{layer.name}/kernel", layer.cell.kernel.numpy().T),
        cv.constant(f"{layer.name}/recurrent", layer.cell.recurrent_kernel.numpy().T),
        cv.constant(f"{layer.name}/bias", bias),
    ]
    x = _sequence_of(cv, layer, config, ins[0])
    _, steps, _ = cv.tensors[x].shape
    out = cv.emit(layer.name, SimpleRnn(), [x, *operands], (1, steps, units))
    return out if config["return_sequences"] else _last_step(cv, layer, out)


BIDIRECTIONAL_MERGES = {"concat": Concatenation, "sum": Add, "mul": Mul}


def _bidirectional(cv: Converter, layer, ins, keras_in):
    """The forward layer, and the backward one on the reversed sequence (its sequence output
    reversed back, as Keras aligns it), merged: CONCATENATION, ADD, MUL, or ADD then x 0.5."""
    mode = layer.merge_mode
    if mode not in (*BIDIRECTIONAL_MERGES, "ave"):
        raise TinyqError(f"layer {layer.name!r}: merge_mode {mode!r} is not supported (concat, sum, mul, ave are)")
    halves = []
    for half in (layer.forward_layer, layer.backward_layer):
        kind = type(half).__name__
        if kind not in ("LSTM", "GRU", "SimpleRNN"):
            raise TinyqError(
                f"layer {layer.name!r}: a Bidirectional {kind} is not supported (LSTM, GRU, SimpleRNN are)"
            )
        halves.append(LAYERS[kind](cv, half, ins, keras_in))
    forward, backward = halves
    shape = cv.tensors[forward].shape
    if layer.return_sequences:
        backward = cv.emit(f"{layer.backward_layer.name}_aligned", ReverseV2((1,)), [backward], shape)
    if mode == "concat":
        return cv.emit(layer.name, Concatenation(len(shape) - 1), [forward, backward], cv.out_shape)
    if mode == "ave":
        total = cv.emit(f"{layer.name}_sum", Add(), [forward, backward], shape)
        return cv.emit(layer.name, Mul(), [total, cv.constant(f"{layer.name}/half", [0.5])], shape)
    return cv.emit(layer.name, BIDIRECTIONAL_MERGES[mode](), [forward, backward], shape)


def _dropout(cv: Converter, layer, ins, keras_in):
    """Inference ignores dropout (and noise, and regularization): its readers read its input instead."""
    source = cv.resolve(id(keras_in[0]))
    cv.alias[id(cv.output)] = source
    cv.consumers[source] = cv.consumers.get(source, 0) - 1 + cv.consumers.get(id(cv.output), 0)
    return ins[0]


LAYERS = {
    "Conv1D": _unit_height(_conv),
    "Conv2D": _conv,
    "DepthwiseConv1D": _unit_height(_depthwise_conv),
    "DepthwiseConv2D": _depthwise_conv,
    "SeparableConv1D": _unit_height(_separable_conv),
    "SeparableConv2D": _separable_conv,
    "Conv1DTranspose": _unit_height(_conv_transpose),
    "Conv2DTranspose": _conv_transpose,
    "Dense": _dense,
    "BatchNormalization": _batch_normalization,
    "LayerNormalization": _layer_normalization,
    "Rescaling": _rescaling,
    "Normalization": _normalization,
    "Activation": _activation,
    "ReLU": _relu,
    "LeakyReLU": _leaky_relu,
    "PReLU": _prelu,
    "ELU": _elu,
    "Softmax": _softmax,
    "Add": _merge(Add),
    "Subtract": _merge(Sub),
    "Multiply": _merge(Mul),
    "Maximum": _merge(Maximum),
    "Minimum": _merge(Minimum),
    "Average": _average,
    "Concatenate": _concatenate,
    "MaxPooling1D": _unit_height(_pooling(MaxPool2D)),
    "MaxPooling2D": _pooling(MaxPool2D),
    "AveragePooling1D": _unit_height(_pooling(AveragePool2D)),
    "AveragePooling2D": _pooling(AveragePool2D),
    "GlobalAveragePooling1D": _global_pooling(AveragePool2D),
    "GlobalAveragePooling2D": _global_pooling(AveragePool2D),
    "GlobalMaxPooling1D": _global_pooling(MaxPool2D),
    "GlobalMaxPooling2D": _global_pooling(MaxPool2D),
    "Flatten": _reshape,
    "Reshape": _reshape,
    "Permute": _permute,
    "RepeatVector": _repeat_vector,
    "ZeroPadding1D": _zero_padding,
    "ZeroPadding2D": _zero_padding,
    "Cropping1D": _cropping,
    "Cropping2D": _cropping,
    "UpSampling1D": _unit_height(_up_sampling),
    "UpSampling2D": _up_sampling,
    "LSTM": _lstm,
    "GRU": _gru,
    "SimpleRNN": _simple_rnn,
    "Bidirectional": _bidirectional,
    "Dropout": _dropout,
    "SpatialDropout1D": _dropout,
    "SpatialDropout2D": _dropout,
    "GaussianNoise": _dropout,
    "GaussianDropout": _dropout,
    "AlphaDropout": _dropout,
    "ActivityRegularization": _dropout,
}
SUPPORTED_LAYERS = ("InputLayer", *LAYERS)


# --- keras.ops calls recorded in a functional model (MobileNetV3's `x + 3.0`, `x * (1 / 6)`)


def _keras_op(attrs_class, reciprocal: bool = False):
    """A binary keras.ops function of two tensors, or of a tensor and a constant (a division by
    a constant is a MUL by its reciprocal)."""

    def convert(cv: Converter, layer, ins, keras_in):
        args = list(cv.node.arguments.args)
        if len(args) != 2 or cv.node.arguments.kwargs:
            raise TinyqError(f"operation {layer.name!r}: only two-operand calls are supported")
        operands = []
        for i, arg in enumerate(args):
            if id(arg) in cv.names:
                operands.append(cv.names[id(arg)])
                continue
            value = np.asarray(arg, np.float32)
            if reciprocal:
                if i != 1:
                    raise TinyqError(f"operation {layer.name!r}: only division by a constant is supported")
                value = 1.0 / value
            operands.append(cv.constant(f"{layer.name}/constant", value.reshape(-1) if value.ndim == 0 else value))
        if reciprocal and id(args[1]) in cv.names:
            raise TinyqError(f"operation {layer.name!r}: only division by a constant is supported")
        return cv.emit(layer.name, attrs_class(), operands, cv.out_shape)

    return convert


KERAS_OPS = {
    "Add": _keras_op(Add),
    "Subtract": _keras_op(Sub),
    "Multiply": _keras_op(Mul),
    "Divide": _keras_op(Mul, reciprocal=True),
    "TrueDivide": _keras_op(Mul, reciprocal=True),
}
