"""Write an IR graph as a TFLite flatbuffer (schema v3).

This is tinyq's file format for quantized models: TFLite Micro runs it, the
importer reads it back, and both agree bit for bit with the generated C.
Each op is written by its op module's `write_tflite` facet (tinyq/ops)
through the writer's helpers here; int4 weights are written as packed INT4
tensors.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import tflite
from flatbuffers import flexbuffers
from tflite.BuiltinOperator import BuiltinOperator as Op
from tflite.BuiltinOptions import BuiltinOptions as Opt

from tinyq import ir, ops
from tinyq.int4 import pack_int4
from tinyq.ops.window import SAME, VALID

_TYPES = {
    "float32": tflite.TensorType.FLOAT32,
    "int64": tflite.TensorType.INT64,
    "int32": tflite.TensorType.INT32,
    "int16": tflite.TensorType.INT16,
    "int8": tflite.TensorType.INT8,
    "int4": tflite.TensorType.INT4,
    "resource": tflite.TensorType.RESOURCE,
}
_ACT = {ir.Activation.NONE: 0, ir.Activation.RELU: 1, ir.Activation.RELU_N1_TO_1: 2, ir.Activation.RELU6: 3}
_PADDINGS = {SAME: tflite.Padding.SAME, VALID: tflite.Padding.VALID}


class _Writer:
    def __init__(self, graph: ir.Graph):
        self.graph = graph
        self.b = flatbuffers.Builder(1024)
        self.tensors: list[dict] = []  # pending tensor records
        self.index: dict[str, int] = {}
        self.buffers: list[bytes] = [b""]  # buffer 0 is the empty sentinel
        self.ops: list[tuple[int, list[int], list[int], int, int]] = []
        self.opcodes: list[tuple[int, str | None]] = []  # (builtin code, custom code)
        self.resources: dict[str, int] = {}  # variable -> its VAR_HANDLE's resource tensor
        self.initial: dict[str, str] = {}  # variable -> the constant tensor CALL_ONCE assigns it

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
        """A constant only the file holds (axes, shapes, paddings)."""
        return self._add(name, values.shape, dtype, qparams, np.ascontiguousarray(values).tobytes())

    def intermediate(self, name: str, shape, dtype: str, qparams) -> int:
        """An activation tensor only the file holds (the output of an inserted op)."""
        return self._add(name, shape, dtype, qparams, None)

    def variable(self, name: str, shape, dtype: str, qparams) -> int:
        """A variable tensor only the file holds (an LSTM's state, which the op updates in place)."""
        return self._add(name, shape, dtype, qparams, None, variable=True)

    def resource(self, variable: str, initial: str | None = None) -> int:
        """The resource tensor of a variable (its VAR_HANDLE written at first use); a read names
        the constant the init subgraph assigns it."""
        if initial is not None:
            self.initial[variable] = initial
        if variable not in self.resources:
            self.resources[variable] = self._add(f"{variable}/handle", (), "resource", None, None)
            self.add_op("VAR_HANDLE", [], [self.resources[variable]], self._handle_options(variable))
        return self.resources[variable]

    def _handle_options(self, variable: str) -> tuple[int, int]:
        return self.options("VarHandleOptions", SharedName=self.b.CreateString(variable))

    def _add(self, name, shape, dtype, qparams, data, variable: bool = False, into: list | None = None) -> int:
        buffer = 0
        if data is not None:
            self.buffers.append(data)
            buffer = len(self.buffers) - 1
        record = {"name": name, "shape": list(shape), "type": _TYPES[dtype], "q": qparams, "buffer": buffer}
        tensors = self.tensors if into is None else into
        tensors.append(record | {"variable": variable})
        return len(tensors) - 1

    # --- ops -------------------------------------------------------------
    def opcode(self, code: int, custom: str | None = None) -> int:
        if (code, custom) not in self.opcodes:
            self.opcodes.append((code, custom))
        return self.opcodes.index((code, custom))

    def add_op(self, name: str, inputs: list[int], outputs: list[int], options: tuple[int, int] | None = None):
        """An operator by its builtin name; `options` as `options()` returns them."""
        options_type, table = options or (0, None)
        self.ops.append((self.opcode(getattr(Op, name)), inputs, outputs, options_type, table, None))

    def add_custom_op(self, code: str, inputs: list[int], outputs: list[int], options: dict):
        """A tinyq operator TFLite has no builtin for: CUSTOM with `code`, `options` as a flexbuffer map."""
        self.ops.append((self.opcode(Op.CUSTOM, code), inputs, outputs, 0, None, flexbuffers.Dumps(options)))

    def options(self, table: str, **fields) -> tuple[int, int]:
        """An options table, e.g. options("Conv2DOptions", StrideH=2): (its union type, offset)."""
        getattr(tflite, f"{table}Start")(self.b)
        for field, value in fields.items():
            getattr(tflite, f"{table}Add{field}")(self.b, value)
        return getattr(Opt, table), getattr(tflite, f"{table}End")(self.b)

    @staticmethod
    def activation_code(activation: ir.Activation) -> int:
        return _ACT[activation]

    @staticmethod
    def padding_code(mode: str) -> int:
        return _PADDINGS[mode]

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

    def _init_subgraph(self) -> tuple[list[dict], list[tuple]]:
        """Subgraph 1, which the first operator (CALL_ONCE) runs once: each variable's
        VAR_HANDLE and the ASSIGN_VARIABLE of its initial value."""
        tensors, init_ops = [], []
        for variable, constant in self.initial.items():
            t = self.graph[constant]
            handle = self._add(f"{variable}/handle", (), "resource", None, None, into=tensors)
            value = self._add(t.name, t.shape, t.dtype, t.qparams, np.ascontiguousarray(t.data).tobytes(), into=tensors)
            init_ops.append((self.opcode(Op.VAR_HANDLE), [], [handle], *self._handle_options(variable), None))
            init_ops.append((self.opcode(Op.ASSIGN_VARIABLE), [handle, value], [], 0, None, None))
        self.ops.insert(
            0, (self.opcode(Op.CALL_ONCE), [], [], *self.options("CallOnceOptions", InitSubgraphIndex=1), None)
        )
        return tensors, init_ops

    def _subgraph(self, title: str, tensors: list[dict], operators: list[tuple], inputs, outputs) -> int:
        b = self.b
        op_offsets = []
        for opcode, op_inputs, op_outputs, opt_type, opt, custom in operators:
            ins, outs = self._vector(op_inputs, np.int32), self._vector(op_outputs, np.int32)
            custom_options = self._vector(np.frombuffer(custom, np.uint8), np.uint8) if custom else None
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, opcode)
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if opt is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opt_type)
                tflite.OperatorAddBuiltinOptions(b, opt)
            if custom_options is not None:
                tflite.OperatorAddCustomOptions(b, custom_options)
            op_offsets.append(tflite.OperatorEnd(b))
        tensor_offsets = []
        for t in tensors:
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
            if t["variable"]:
                tflite.TensorAddIsVariable(b, True)
            tensor_offsets.append(tflite.TensorEnd(b))
        tensor_vector = self._offset_vector(tflite.SubGraphStartTensorsVector, tensor_offsets)
        operator_vector = self._offset_vector(tflite.SubGraphStartOperatorsVector, op_offsets)
        input_vector, output_vector = self._vector(inputs, np.int32), self._vector(outputs, np.int32)
        sg_name = b.CreateString(title)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensor_vector)
        tflite.SubGraphAddInputs(b, input_vector)
        tflite.SubGraphAddOutputs(b, output_vector)
        tflite.SubGraphAddOperators(b, operator_vector)
        tflite.SubGraphAddName(b, sg_name)
        return tflite.SubGraphEnd(b)

    def finish(self) -> bytes:
        b, g = self.b, self.graph
        init = self._init_subgraph() if self.resources else None
        subgraphs = [
            self._subgraph(
                "main", self.tensors, self.ops, [self.index[n] for n in g.inputs], [self.index[n] for n in g.outputs]
            )
        ]
        if init is not None:
            subgraphs.append(self._subgraph("init", *init, [], []))
        buffer_offsets = []
        for data in self.buffers:
            vec = self._vector(np.frombuffer(data, np.uint8), np.uint8) if data else None
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buffer_offsets.append(tflite.BufferEnd(b))
        code_offsets = []
        for code, custom in self.opcodes:
            custom_code = b.CreateString(custom) if custom else None
            tflite.OperatorCodeStart(b)
            if custom_code is not None:
                tflite.OperatorCodeAddCustomCode(b, custom_code)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))
        codes = self._offset_vector(tflite.ModelStartOperatorCodesVector, code_offsets)
        subgraph_vector = self._offset_vector(tflite.ModelStartSubgraphsVector, subgraphs)
        buffers = self._offset_vector(tflite.ModelStartBuffersVector, buffer_offsets)
        description = b.CreateString(f"tinyq: {g.name}")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes)
        tflite.ModelAddSubgraphs(b, subgraph_vector)
        tflite.ModelAddBuffers(b, buffers)
        tflite.ModelAddDescription(b, description)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def write_flatbuffer(graph: ir.Graph) -> bytes:
    """The graph as a flatbuffer, as it is (unverified: tests use it to write models tinyq refuses)."""
    writer = _Writer(graph)
    for name in graph.inputs:
        writer.tensor(name)
    for op in graph.ops:
        for name in op.outputs:  # the outputs' indices come first, whatever the op writes
            writer.tensor(name)
        ops.definition(op).write_tflite(writer, op)
    return writer.finish()


def to_tflite(graph: ir.Graph) -> bytes:
    return write_flatbuffer(_with_input_transposes(ir.verify(graph)))


def _with_input_transposes(graph: ir.Graph) -> ir.Graph:
    """An input deployed in another layout than the model's (Graph.input_perms) is written in
    the model's layout and TRANSPOSEd: TFLM takes the user's data as the model did, and the
    importer folds the TRANSPOSE back into input_perms."""
    if not graph.input_perms:
        return graph
    from tinyq.data import model_layout_shape
    from tinyq.ops.transpose import Transpose

    tensors, transposes, rename = dict(graph.tensors), [], {}
    for name, perm in graph.input_perms.items():
        t = graph[name]
        deployed = f"{name}/deployed_layout"
        tensors[deployed] = ir.Tensor(deployed, t.shape, t.dtype, t.qparams)
        tensors[name] = ir.Tensor(name, model_layout_shape(t.shape, perm), t.dtype, t.qparams)
        transposes.append(ir.Op(f"{name}/to_deployed_layout", Transpose(tuple(perm)), (name,), (deployed,)))
        rename[name] = deployed
    moved = [ir.Op(op.name, op.attrs, tuple(rename.get(n, n) for n in op.inputs), op.outputs) for op in graph.ops]
    outputs = tuple(rename.get(n, n) for n in graph.outputs)
    return ir.verify(graph.replace(tensors=tensors, ops=(*transposes, *moved), outputs=outputs, input_perms={}))


def save_tflite(graph: ir.Graph, path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(to_tflite(graph))
    return path
