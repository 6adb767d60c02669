"""Write an IR graph as a TFLite flatbuffer (schema v3).

This is tinyq's file format for quantized models: TFLite Micro runs it, the
importer reads it back, and both agree bit for bit with the generated C.
Explicit paddings that are neither SAME nor VALID become a PAD op in front
of the convolution; int4 weights are written as packed INT4 tensors.
"""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator as Op
from tflite.BuiltinOptions import BuiltinOptions as Opt

from tinyq import ir
from tinyq.errors import TinyqError
from tinyq.int4 import pack_int4
from tinyq.shapes import same_padding

_TYPES = {"float32": tflite.TensorType.FLOAT32, "int32": tflite.TensorType.INT32, "int16": tflite.TensorType.INT16,
          "int8": tflite.TensorType.INT8, "int4": tflite.TensorType.INT4}
_ACT = {ir.Activation.NONE: 0, ir.Activation.RELU: 1, ir.Activation.RELU_N1_TO_1: 2, ir.Activation.RELU6: 3}


class _Writer:
    def __init__(self, graph: ir.Graph):
        self.graph = graph
        self.b = flatbuffers.Builder(1024)
        self.tensors: list[dict] = []           # pending tensor records
        self.index: dict[str, int] = {}
        self.buffers: list[bytes] = [b""]       # buffer 0 is the empty sentinel
        self.ops: list[tuple[int, list[int], list[int], int, int]] = []
        self.opcodes: list[int] = []

    # --- tensors ---------------------------------------------------------
    def tensor(self, name: str) -> int:
        if name not in self.index:
            t = self.graph[name]
            data = None
            if t.is_constant:
                data = pack_int4(t.data).tobytes() if t.dtype == "int4" else np.ascontiguousarray(t.data).tobytes()
            self.index[name] = self._add(t.name, t.shape, t.dtype, t.qparams, data)
        return self.index[name]

    def constant(self, name: str, values: np.ndarray, dtype: str = "int32", qparams=None) -> int:
        return self._add(name, values.shape, dtype, qparams, np.ascontiguousarray(values).tobytes())

    def activation(self, name: str, shape, dtype: str, qparams) -> int:
        return self._add(name, shape, dtype, qparams, None)

    def _add(self, name, shape, dtype, qparams, data) -> int:
        buffer = 0
        if data is not None:
            self.buffers.append(data)
            buffer = len(self.buffers) - 1
        self.tensors.append({"name": name, "shape": list(shape), "type": _TYPES[dtype], "q": qparams, "buffer": buffer})
        return len(self.tensors) - 1

    # --- ops -------------------------------------------------------------
    def opcode(self, code: int) -> int:
        if code not in self.opcodes:
            self.opcodes.append(code)
        return self.opcodes.index(code)

    def add_op(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0, options=None):
        self.ops.append((self.opcode(code), inputs, outputs, options_type, options))

    def options(self, table, **fields) -> int:
        """Build an options table, e.g. options(tflite.Conv2DOptions, StrideH=2)."""
        name = table.__name__
        getattr(tflite, f"{name}Start")(self.b)
        for field, value in fields.items():
            getattr(tflite, f"{name}Add{field}")(self.b, value)
        return getattr(tflite, f"{name}End")(self.b)

    # --- serialization ----------------------------------------------------
    def _vector(self, values, dtype) -> int:
        return self.b.CreateNumpyVector(np.asarray(values, dtype=dtype))

    def _offset_vector(self, start_fn, offsets) -> int:
        start_fn(self.b, len(offsets))
        for off in reversed(offsets):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()

    def _quantization(self, q: ir.QParams) -> int:
        scale = self._vector(q.scale, np.float32)
        zero = self._vector(q.zero_point, np.int64)
        tflite.QuantizationParametersStart(self.b)
        tflite.QuantizationParametersAddScale(self.b, scale)
        tflite.QuantizationParametersAddZeroPoint(self.b, zero)
        tflite.QuantizationParametersAddQuantizedDimension(self.b, q.axis or 0)
        return tflite.QuantizationParametersEnd(self.b)

    def finish(self) -> bytes:
        b = self.b
        op_offsets = []
        for opcode, inputs, outputs, opt_type, opt in self.ops:
            ins, outs = self._vector(inputs, np.int32), self._vector(outputs, np.int32)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, opcode)
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if opt is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opt_type)
                tflite.OperatorAddBuiltinOptions(b, opt)
            op_offsets.append(tflite.OperatorEnd(b))
        tensor_offsets = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = self._vector(t["shape"], np.int32)
            quant = self._quantization(t["q"]) if t["q"] is not None else None
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, t["type"])
            tflite.TensorAddBuffer(b, t["buffer"])
            tflite.TensorAddName(b, name)
            if quant is not None:
                tflite.TensorAddQuantization(b, quant)
            tensor_offsets.append(tflite.TensorEnd(b))
        g = self.graph
        tensors = self._offset_vector(tflite.SubGraphStartTensorsVector, tensor_offsets)
        operators = self._offset_vector(tflite.SubGraphStartOperatorsVector, op_offsets)
        inputs = self._vector([self.index[n] for n in g.inputs], np.int32)
        outputs = self._vector([self.index[n] for n in g.outputs], np.int32)
        sg_name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors)
        tflite.SubGraphAddInputs(b, inputs)
        tflite.SubGraphAddOutputs(b, outputs)
        tflite.SubGraphAddOperators(b, operators)
        tflite.SubGraphAddName(b, sg_name)
        subgraph = tflite.SubGraphEnd(b)
        buffer_offsets = []
        for data in self.buffers:
            vec = self._vector(np.frombuffer(data, np.uint8), np.uint8) if data else None
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buffer_offsets.append(tflite.BufferEnd(b))
        code_offsets = []
        for code in self.opcodes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))
        codes = self._offset_vector(tflite.ModelStartOperatorCodesVector, code_offsets)
        subgraphs = self._offset_vector(tflite.ModelStartSubgraphsVector, [subgraph])
        buffers = self._offset_vector(tflite.ModelStartBuffersVector, buffer_offsets)
        description = b.CreateString(f"tinyq: {g.name}")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes)
        tflite.ModelAddSubgraphs(b, subgraphs)
        tflite.ModelAddBuffers(b, buffers)
        tflite.ModelAddDescription(b, description)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _padding_kind(op: ir.Op, x: ir.Tensor, y: ir.Tensor, kernel, stride, dilation) -> int | None:
    """TFLite padding enum matching the op's explicit padding, or None."""
    p = op.attrs.padding
    explicit = (p.top, p.bottom, p.left, p.right)
    if explicit == (0, 0, 0, 0):
        return tflite.Padding.VALID
    h = same_padding(x.shape[1], kernel[0], stride[0], dilation[0])
    w = same_padding(x.shape[2], kernel[1], stride[1], dilation[1])
    if explicit == (h[1], h[2], w[1], w[2]) and y.shape[1:3] == (h[0], w[0]):
        return tflite.Padding.SAME
    return None


def _conv_input(w: _Writer, op: ir.Op, kernel, stride, dilation) -> tuple[int, int]:
    """(input tensor index, padding enum), inserting a PAD op for odd paddings."""
    x, y = w.graph[op.inputs[0]], w.graph[op.outputs[0]]
    kind = _padding_kind(op, x, y, kernel, stride, dilation)
    if kind is not None:
        return w.tensor(op.inputs[0]), kind
    p = op.attrs.padding
    pads = np.array([[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]], np.int32)
    padded_shape = (x.shape[0], x.shape[1] + p.top + p.bottom, x.shape[2] + p.left + p.right, x.shape[3])
    padded = w.activation(f"{op.name}/explicit_pad", padded_shape, x.dtype, x.qparams)
    w.add_op(Op.PAD, [w.tensor(op.inputs[0]), w.constant(f"{op.name}/paddings", pads)], [padded],
             Opt.PadOptions, w.options(tflite.PadOptions))
    return padded, tflite.Padding.VALID


def _write_op(w: _Writer, op: ir.Op) -> None:
    a, g = op.attrs, w.graph
    out = [w.tensor(op.outputs[0])]
    if isinstance(a, (ir.Conv2D, ir.DepthwiseConv2D)):
        kernel = g[op.inputs[1]].shape[1:3]
        x, pad = _conv_input(w, op, kernel, a.stride, a.dilation)
        ins = [x, w.tensor(op.inputs[1]), w.tensor(op.inputs[2])]
        common = dict(Padding=pad, StrideH=a.stride[0], StrideW=a.stride[1], FusedActivationFunction=_ACT[a.activation],
                      DilationHFactor=a.dilation[0], DilationWFactor=a.dilation[1])
        if isinstance(a, ir.Conv2D):
            w.add_op(Op.CONV_2D, ins, out, Opt.Conv2DOptions, w.options(tflite.Conv2DOptions, **common))
        else:
            w.add_op(Op.DEPTHWISE_CONV_2D, ins, out, Opt.DepthwiseConv2DOptions,
                     w.options(tflite.DepthwiseConv2DOptions, DepthMultiplier=a.depth_multiplier, **common))
    elif isinstance(a, ir.FullyConnected):
        keep = len(g[op.outputs[0]].shape) != 2
        w.add_op(Op.FULLY_CONNECTED, [w.tensor(n) for n in op.inputs], out, Opt.FullyConnectedOptions,
                 w.options(tflite.FullyConnectedOptions, FusedActivationFunction=_ACT[a.activation], KeepNumDims=keep))
    elif isinstance(a, (ir.Add, ir.Mul)):
        code, opt, table = (Op.ADD, Opt.AddOptions, tflite.AddOptions) if isinstance(a, ir.Add) else \
            (Op.MUL, Opt.MulOptions, tflite.MulOptions)
        w.add_op(code, [w.tensor(n) for n in op.inputs], out, opt,
                 w.options(table, FusedActivationFunction=_ACT[a.activation]))
    elif isinstance(a, (ir.AveragePool2D, ir.MaxPool2D)):
        kind = _padding_kind(op, g[op.inputs[0]], g[op.outputs[0]], a.filter, a.stride, (1, 1))
        if kind is None:
            raise TinyqError(f"{op.name}: pooling padding {a.padding} is neither SAME nor VALID")
        code = Op.AVERAGE_POOL_2D if isinstance(a, ir.AveragePool2D) else Op.MAX_POOL_2D
        w.add_op(code, [w.tensor(op.inputs[0])], out, Opt.Pool2DOptions, w.options(
            tflite.Pool2DOptions, Padding=kind, StrideH=a.stride[0], StrideW=a.stride[1], FilterHeight=a.filter[0],
            FilterWidth=a.filter[1], FusedActivationFunction=_ACT[a.activation]))
    elif isinstance(a, ir.Mean):
        axes = w.constant(f"{op.name}/axes", np.array(a.axes, np.int32))
        w.add_op(Op.MEAN, [w.tensor(op.inputs[0]), axes], out, Opt.ReducerOptions,
                 w.options(tflite.ReducerOptions, KeepDims=a.keep_dims))
    elif isinstance(a, ir.Reshape):
        shape = np.array(g[op.outputs[0]].shape, np.int32)
        w.add_op(Op.RESHAPE, [w.tensor(op.inputs[0]), w.constant(f"{op.name}/shape", shape)], out)
    elif isinstance(a, ir.Softmax):
        w.add_op(Op.SOFTMAX, [w.tensor(op.inputs[0])], out, Opt.SoftmaxOptions,
                 w.options(tflite.SoftmaxOptions, Beta=a.beta))
    elif isinstance(a, ir.Concatenation):
        w.add_op(Op.CONCATENATION, [w.tensor(n) for n in op.inputs], out, Opt.ConcatenationOptions,
                 w.options(tflite.ConcatenationOptions, Axis=a.axis, FusedActivationFunction=_ACT[a.activation]))
    elif isinstance(a, ir.Pad):
        pads = w.constant(f"{op.name}/paddings", np.array(a.paddings, np.int32))
        w.add_op(Op.PAD, [w.tensor(op.inputs[0]), pads], out, Opt.PadOptions, w.options(tflite.PadOptions))
    else:
        code = {ir.Logistic: Op.LOGISTIC, ir.Quantize: Op.QUANTIZE, ir.Dequantize: Op.DEQUANTIZE}[type(a)]
        w.add_op(code, [w.tensor(op.inputs[0])], out)


def to_tflite(graph: ir.Graph) -> bytes:
    ir.verify(graph)
    writer = _Writer(graph)
    for name in graph.inputs:
        writer.tensor(name)
    for op in graph.ops:
        _write_op(writer, op)
    return writer.finish()


def save_tflite(graph: ir.Graph, path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(to_tflite(graph))
    return path

