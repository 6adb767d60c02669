"""Import a Keras 3 model (.keras, .h5; Sequential or Functional) as a float IR graph.

Files load in Keras safe mode (no Lambda code runs). Each Keras layer class
has one row in `LAYERS`: a function that emits the layer's IR ops.
BatchNormalization folds into the convolution or dense layer before it;
activations fuse into the op that produces their input, as TFLite fuses
them; Dropout vanishes. What the graph cannot say (the statistics of each
folded BatchNorm, used by BN-based range setting and analytic bias
correction) travels beside it in `FloatModel.bn_stats`.
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
from tinyq.ops.concatenation import Concatenation
from tinyq.ops.conv import Conv2D
from tinyq.ops.depthwise_conv import DepthwiseConv2D
from tinyq.ops.fully_connected import FullyConnected
from tinyq.ops.logistic import Logistic
from tinyq.ops.pad import Pad
from tinyq.ops.pool import AveragePool2D, MaxPool2D
from tinyq.ops.reshape import Reshape
from tinyq.ops.softmax import Softmax
from tinyq.ops.sub import Sub
from tinyq.ops.window import SAME, VALID, padding_for

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
    """Walks a Keras model's layers in order; each layer's row in LAYERS emits its ops here."""

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
        """The shape of the output of the layer being converted."""
        return self.shape(self.output)

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

    def emit(self, name: str, attrs, inputs, out_shape, out_name: str | None = None) -> str:
        """An op named uniquely after `name`; returns its output tensor."""
        out = self.new(out_name or name, out_shape)
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

    def replace_op(self, old: ir.Op, new: ir.Op) -> None:
        self.ops[self.ops.index(old)] = new

    def resolve(self, key: int) -> int:
        while key in self.alias:
            key = self.alias[key]
        return key

    def single_use(self, keras_tensor) -> bool:
        """Is this tensor (after removed layers) read by exactly one layer and not a model output?"""
        key = self.resolve(id(keras_tensor))
        return self.consumers.get(key, 0) == 1 and not any(self.resolve(id(t)) == key for t in self.model.outputs)

    def activation(self, layer, out: str, activation_name: str, keras_in) -> str:
        """Apply a Keras activation to `out`: fuse it, or emit an op. `keras_in` is the
        activation layer's input (None for a layer's own activation argument)."""
        if activation_name in ("linear", None):
            return out
        if activation_name in ("relu", "relu6"):
            fused = {"relu": ir.Activation.RELU, "relu6": ir.Activation.RELU6}[activation_name]
            op = self.producer(out)
            if (
                op is not None
                and getattr(op.attrs, "activation", None) == ir.Activation.NONE
                and (keras_in is None or self.single_use(keras_in))
            ):
                self.replace_op(op, ir.Op(op.name, replace(op.attrs, activation=fused), op.inputs, op.outputs))
                return out
            raise TinyqError(
                f"layer {layer.name!r}: {activation_name} cannot be fused into "
                f"{op.kind if op else 'the model input'}; tinyq fuses ReLU/ReLU6 into convolution, "
                "dense, add, pooling and concatenation layers"
            )
        if activation_name == "softmax":
            return self.emit(f"{layer.name}_softmax", Softmax(), [out], self.tensors[out].shape)
        if activation_name == "sigmoid":
            return self.emit(f"{layer.name}_sigmoid", Logistic(), [out], self.tensors[out].shape)
        raise TinyqError(
            f"layer {layer.name!r}: activation {activation_name!r} is not supported "
            "(linear, relu, relu6, softmax and sigmoid are)"
        )

    def own_activation(self, layer, out: str) -> str:
        """A layer's `activation` argument applied to its output."""
        fn = getattr(layer, "activation", None)
        return self.activation(layer, out, getattr(fn, "__name__", "linear") if fn is not None else "linear", None)

    @staticmethod
    def padding(layer, x_shape, kernel, strides, dilation) -> ir.Padding2D:
        if layer.padding not in ("valid", "same"):
            raise TinyqError(f"layer {layer.name!r}: padding {layer.padding!r} is not supported")
        return padding_for(SAME if layer.padding == "same" else VALID, x_shape[1:3], kernel, strides, dilation)

    @staticmethod
    def channels_last(layer) -> None:
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise TinyqError(f"layer {layer.name!r}: only channels_last data is supported")

    # --- the walk -------------------------------------------------------------------
    def _own_nodes(self) -> dict[int, list]:
        """Each layer's calls within this model's graph. A loaded Sequential's layers also keep
        the calls of its rebuilds; only the nodes of its functional graph count."""
        graph = getattr(self.model, "_functional", None) or self.model
        own = {id(node) for nodes in graph._nodes_by_depth.values() for node in nodes}
        return {id(layer): [n for n in layer._inbound_nodes if id(n) in own] for layer in self.model.layers}

    def convert(self) -> FloatModel:
        nodes = self._own_nodes()
        for layer in self.model.layers:
            for node in nodes[id(layer)]:
                for t in _list(node.input_tensors):
                    self.consumers[id(t)] = self.consumers.get(id(t), 0) + 1
        for t in self.model.inputs:
            self.names[id(t)] = self.new(t.name, self.shape(t))
        for layer in self.model.layers:
            kind = type(layer).__name__
            if kind == "InputLayer":
                continue
            if len(nodes[id(layer)]) != 1:
                raise TinyqError(
                    f"layer {layer.name!r} ({kind}) is used {len(nodes[id(layer)])} times; "
                    "shared layers are not supported"
                )
            if kind not in LAYERS:
                raise TinyqError(
                    f"unsupported layer {layer.name!r} of class {kind}; tinyq supports {', '.join(SUPPORTED_LAYERS)}"
                )
            node = nodes[id(layer)][0]
            inputs = _list(node.input_tensors)
            missing = [t for t in inputs if id(t) not in self.names]
            if missing:
                raise TinyqError(
                    f"layer {layer.name!r} ({kind}) reads a tensor from outside this model "
                    "(nested models are not supported)"
                )
            self.output = node.output_tensors[0]  # the keras tensor this call of the layer produces
            out = LAYERS[kind](self, layer, [self.names[id(t)] for t in inputs], inputs)
            self.names[id(self.output)] = out
        graph = ir.Graph(
            self.name,
            self.tensors,
            tuple(self.ops),
            tuple(self.names[id(t)] for t in self.model.inputs),
            tuple(self.names[id(t)] for t in self.model.outputs),
        ).pruned()
        return FloatModel(ir.verify(graph), self.bn_stats)


# --- one function per Keras layer class: (converter, layer, input tensors, Keras inputs) -> output


def _conv2d(cv: Converter, layer, ins, keras_in):
    cv.channels_last(layer)
    if getattr(layer, "groups", 1) != 1:
        raise TinyqError(f"layer {layer.name!r}: grouped convolution is not supported")
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[3], np.float32)
    x = cv.tensors[ins[0]]
    strides, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
    attrs = Conv2D(strides, dilation, cv.padding(layer, x.shape, kernel.shape[:2], strides, dilation))
    w = cv.new(f"{layer.name}/kernel", (kernel.shape[3],) + kernel.shape[:3], kernel.transpose(3, 0, 1, 2))
    b = cv.new(f"{layer.name}/bias", bias.shape, bias)
    return cv.own_activation(layer, cv.emit(layer.name, attrs, [ins[0], w, b], cv.out_shape))


def _emit_depthwise(
    cv: Converter, layer, x_name: str, kernel: np.ndarray, bias: np.ndarray, out_shape, name: str
) -> str:
    x = cv.tensors[x_name]
    strides, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
    kh, kw, channels, m = kernel.shape
    attrs = DepthwiseConv2D(strides, dilation, cv.padding(layer, x.shape, (kh, kw), strides, dilation), m)
    w = cv.new(f"{name}/depthwise_kernel", (1, kh, kw, channels * m), kernel.reshape(1, kh, kw, channels * m))
    b = cv.new(f"{name}/bias", bias.shape, bias)
    return cv.emit(name, attrs, [x_name, w, b], out_shape)


def _depthwise_conv2d(cv: Converter, layer, ins, keras_in):
    cv.channels_last(layer)
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[2] * kernel.shape[3], np.float32)
    return cv.own_activation(layer, _emit_depthwise(cv, layer, ins[0], kernel, bias, cv.out_shape, layer.name))


def _separable_conv2d(cv: Converter, layer, ins, keras_in):
    cv.channels_last(layer)
    dw = layer.depthwise_kernel.numpy()
    pw = layer.pointwise_kernel.numpy()
    oh = cv.out_shape[1:3]
    mid_shape = (1, oh[0], oh[1], dw.shape[2] * dw.shape[3])
    mid = _emit_depthwise(
        cv, layer, ins[0], dw, np.zeros(mid_shape[3], np.float32), mid_shape, f"{layer.name}_depthwise"
    )
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(pw.shape[3], np.float32)
    w = cv.new(f"{layer.name}/pointwise_kernel", (pw.shape[3], 1, 1, pw.shape[2]), pw.transpose(3, 0, 1, 2))
    b = cv.new(f"{layer.name}/bias", bias.shape, bias)
    return cv.own_activation(layer, cv.emit(f"{layer.name}_pointwise", Conv2D(), [mid, w, b], cv.out_shape, layer.name))


def _dense(cv: Converter, layer, ins, keras_in):
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[1], np.float32)
    w = cv.new(f"{layer.name}/kernel", kernel.shape[::-1], kernel.T)
    b = cv.new(f"{layer.name}/bias", bias.shape, bias)
    return cv.own_activation(layer, cv.emit(layer.name, FullyConnected(), [ins[0], w, b], cv.out_shape))


def _batch_normalization(cv: Converter, layer, ins, keras_in):
    axis = _list(layer.axis)
    rank = len(cv.tensors[ins[0]].shape)
    if [a % rank for a in axis] != [rank - 1]:
        raise TinyqError(
            f"layer {layer.name!r}: BatchNormalization over axis {layer.axis} is not supported (only the channel axis)"
        )
    gamma = layer.gamma.numpy() if layer.scale else np.ones(layer.moving_mean.shape, np.float32)
    beta = layer.beta.numpy() if layer.center else np.zeros(layer.moving_mean.shape, np.float32)
    mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    scale = gamma / np.sqrt(var + layer.epsilon)
    shift = beta - mean * scale
    producer = cv.producer(ins[0])
    if (
        producer is not None
        and is_affine(producer)
        and producer.attrs.activation == ir.Activation.NONE
        and cv.single_use(keras_in[0])
    ):
        out = _fold_batchnorm(cv, producer, scale, shift, layer.name)
    else:
        out = _standalone_batchnorm(cv, layer.name, ins[0], scale, shift)
    cv.bn_stats[out] = (beta.astype(np.float32), np.abs(gamma).astype(np.float32))
    return out


def _fold_batchnorm(cv: Converter, op: ir.Op, scale, shift, name: str) -> str:
    """W' = W * scale (per output channel), b' = b * scale + shift."""
    w, b = cv.tensors[op.inputs[1]], cv.tensors[op.inputs[2]]
    axis = 3 if isinstance(op.attrs, DepthwiseConv2D) else 0
    shape = [1] * w.data.ndim
    shape[axis] = -1
    cv.tensors[w.name] = ir.Tensor(w.name, w.shape, "float32", None, w.data * scale.reshape(shape))
    cv.tensors[b.name] = ir.Tensor(b.name, b.shape, "float32", None, b.data * scale + shift)
    old_out = op.outputs[0]
    out = cv.new(name, cv.tensors[old_out].shape)
    del cv.tensors[old_out]
    cv.replace_op(op, ir.Op(op.name, op.attrs, op.inputs, (out,)))
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


def _activation(cv: Converter, layer, ins, keras_in):
    fn = getattr(layer, "activation", None)
    return cv.activation(layer, ins[0], getattr(fn, "__name__", "linear") if fn is not None else "linear", keras_in[0])


def _relu(cv: Converter, layer, ins, keras_in):
    cfg = layer.get_config()
    if cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
        raise TinyqError(f"layer {layer.name!r}: ReLU with a negative slope or threshold is not supported")
    max_value = cfg.get("max_value")
    if max_value is None:
        return cv.activation(layer, ins[0], "relu", keras_in[0])
    if float(max_value) == 6.0:
        return cv.activation(layer, ins[0], "relu6", keras_in[0])
    raise TinyqError(f"layer {layer.name!r}: ReLU with max_value {max_value} is not supported (None or 6)")


def _softmax(cv: Converter, layer, ins, keras_in):
    rank = len(cv.tensors[ins[0]].shape)
    if any(a % rank != rank - 1 for a in _list(layer.axis)):
        raise TinyqError(f"layer {layer.name!r}: softmax over axis {layer.axis} is not supported (last axis)")
    return cv.emit(layer.name, Softmax(), ins, cv.tensors[ins[0]].shape)


def _merge(attrs_class):
    """Add, Multiply, ...: a chain of binary ops over the layer's inputs."""

    def convert(cv: Converter, layer, ins, keras_in):
        out = ins[0]
        for i, other in enumerate(ins[1:], start=1):
            out = cv.emit(
                layer.name if i == len(ins) - 1 else f"{layer.name}_{i}", attrs_class(), [out, other], cv.out_shape
            )
        return out

    return convert


def _concatenate(cv: Converter, layer, ins, keras_in):
    rank = len(cv.tensors[ins[0]].shape)
    return cv.emit(layer.name, Concatenation(layer.axis % rank), ins, cv.out_shape)


def _pooling(attrs_class):
    def convert(cv: Converter, layer, ins, keras_in):
        cv.channels_last(layer)
        pool, strides = tuple(layer.pool_size), tuple(layer.strides or layer.pool_size)
        x = cv.tensors[ins[0]]
        attrs = attrs_class(pool, strides, cv.padding(layer, x.shape, pool, strides, (1, 1)))
        return cv.emit(layer.name, attrs, ins, cv.out_shape)

    return convert


def _global_average_pooling2d(cv: Converter, layer, ins, keras_in):
    """An average pool over the whole image (integer and exact), then a reshape."""
    cv.channels_last(layer)
    n, h, w, c = cv.tensors[ins[0]].shape
    pooled = cv.emit(layer.name, AveragePool2D((h, w), (h, w)), ins, (n, 1, 1, c), out_name=f"{layer.name}/pooled")
    if getattr(layer, "keepdims", False):
        return pooled
    return cv.emit(f"{layer.name}_flatten", Reshape(), [pooled], cv.out_shape, layer.name)


def _reshape(cv: Converter, layer, ins, keras_in):
    return cv.emit(layer.name, Reshape(), ins, cv.out_shape)


def _zero_padding2d(cv: Converter, layer, ins, keras_in):
    cv.channels_last(layer)
    (top, bottom), (left, right) = layer.padding
    return cv.emit(layer.name, Pad(((0, 0), (top, bottom), (left, right), (0, 0))), ins, cv.out_shape)


def _dropout(cv: Converter, layer, ins, keras_in):
    """Inference ignores dropout: its readers read its input instead."""
    source = cv.resolve(id(keras_in[0]))
    cv.alias[id(cv.output)] = source
    cv.consumers[source] = cv.consumers.get(source, 0) - 1 + cv.consumers.get(id(cv.output), 0)
    return ins[0]


LAYERS = {
    "Conv2D": _conv2d,
    "DepthwiseConv2D": _depthwise_conv2d,
    "SeparableConv2D": _separable_conv2d,
    "Dense": _dense,
    "BatchNormalization": _batch_normalization,
    "Activation": _activation,
    "ReLU": _relu,
    "Softmax": _softmax,
    "Add": _merge(Add),
    "Subtract": _merge(Sub),
    "Concatenate": _concatenate,
    "MaxPooling2D": _pooling(MaxPool2D),
    "AveragePooling2D": _pooling(AveragePool2D),
    "GlobalAveragePooling2D": _global_average_pooling2d,
    "Flatten": _reshape,
    "Reshape": _reshape,
    "ZeroPadding2D": _zero_padding2d,
    "Dropout": _dropout,
    "SpatialDropout2D": _dropout,
}
SUPPORTED_LAYERS = ("InputLayer", *LAYERS)
