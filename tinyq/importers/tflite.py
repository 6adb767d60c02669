"""Import a `.tflite` flatbuffer (int8 or float) into the IR.

Subgraph 0 is the model (and a CALL_ONCE's subgraph, if any, the initial values of its
variables: see tinyq/ops/variable.py). Each builtin operator is read by its op module's
`read_tflite` facet (tinyq/ops), through the reader's helpers here; an
operator no op module reads is an error naming it, its index and the
supported set, and `verify` refuses dtypes the kernels do not implement. A
file that is not a well-formed TFLite flatbuffer (truncated, random bytes,
dangling offsets) is one clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tflite
from flatbuffers import flexbuffers
from tflite.BuiltinOperator import BuiltinOperator

from tinyq import ir, ops
from tinyq.errors import TinyqError
from tinyq.int4 import unpack_int4
from tinyq.ops.pad import folded_into_convolutions
from tinyq.ops.window import SAME, VALID, padding_for

_DTYPES = {
    tflite.TensorType.FLOAT32: "float32",
    tflite.TensorType.INT32: "int32",
    tflite.TensorType.INT16: "int16",
    tflite.TensorType.INT8: "int8",
    tflite.TensorType.INT4: "int4",
    tflite.TensorType.INT64: "int64",
    tflite.TensorType.UINT8: "uint8",
    tflite.TensorType.BOOL: "bool",
}
_NUMPY = {
    "float32": np.float32,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "int64": np.int64,
    "uint8": np.uint8,
    "bool": np.bool_,
}
_ACTIVATIONS = {
    tflite.ActivationFunctionType.NONE: ir.Activation.NONE,
    tflite.ActivationFunctionType.RELU: ir.Activation.RELU,
    tflite.ActivationFunctionType.RELU6: ir.Activation.RELU6,
    tflite.ActivationFunctionType.RELU_N1_TO_1: ir.Activation.RELU_N1_TO_1,
}
_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_PADDINGS = {tflite.Padding.SAME: SAME, tflite.Padding.VALID: VALID}
VARIABLE_SETUP = ("VAR_HANDLE", "CALL_ONCE")  # read by the importer: the model's variables and their initial values


def _readers() -> dict[int | str, ops.OpDef]:
    """Builtin operator code (or a tinyq custom operator's custom code) -> the op that reads it."""
    return {
        name if definition.custom else getattr(BuiltinOperator, name): definition
        for definition in ops.all_ops()
        for name in (definition.name, *definition.tflite_aliases)
    }


def supported_ops() -> list[str]:
    return sorted(c if isinstance(c, str) else _OP_NAMES[c] for c in _readers())


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
        raise TinyqError(f"{source} is a corrupt or truncated TFLite model ({type(err).__name__}: {err})") from None
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


def _without_quantize_round_trips(graph: ir.Graph) -> ir.Graph:
    """DEQUANTIZE then QUANTIZE to the same quantization (a converter artefact where a float op
    was folded away) is the identity: nothing (or, at a graph output, an exact int8 copy). With
    different quantizations the pair stays: TFLM rounds through float, which no int8
    requantization reproduces bit for bit."""
    producers, consumers = graph.producers(), graph.consumers()
    rename: dict[str, str] = {}
    kept = []
    for op in graph.ops:
        source = producers.get(op.inputs[0]) if op.inputs else None
        if (
            op.kind == "QUANTIZE"
            and source is not None
            and source.kind == "DEQUANTIZE"
            and len(consumers[op.inputs[0]]) == 1
            and op.inputs[0] not in graph.outputs
        ):
            x, y = graph[source.inputs[0]], graph[op.outputs[0]]
            if x.qparams == y.qparams and y.name not in graph.outputs:
                rename[y.name] = x.name
                continue
            if x.qparams == y.qparams:
                op = ir.Op(op.name, op.attrs, (x.name,), op.outputs)
        kept.append(ir.Op(op.name, op.attrs, tuple(rename.get(n, n) for n in op.inputs), op.outputs))
    used = {n for op in kept for n in op.inputs} | set(graph.outputs)
    kept = [op for op in kept if op.kind != "DEQUANTIZE" or op.outputs[0] in used]
    return graph.replace(ops=tuple(kept))


def _with_input_transposes_folded(graph: ir.Graph) -> ir.Graph:
    """A PyTorch-converted model takes NCHW and transposes it to NHWC first: deploy the input
    channels-last instead and drop the TRANSPOSE (a copy and a second input-sized buffer).
    The input keeps its name; `input_perms` records the permutation, and data given in the
    model's own layout is transposed once on the host. Where the layout allows: the input
    feeds only that TRANSPOSE (through per-tensor QUANTIZE ops at most), which keeps the
    batch axis first."""
    for name in graph.inputs:
        consumers = graph.consumers()
        chain, tensor = [], name
        while len(consumers[tensor]) == 1 and tensor not in graph.outputs:
            op = consumers[tensor][0]
            if op.kind == "QUANTIZE" and not graph[op.outputs[0]].qparams.per_channel_quantized:
                chain.append(op)
                tensor = op.outputs[0]
                continue
            if op.kind == "TRANSPOSE" and op.attrs.perm[0] == 0 and op.attrs.perm != tuple(range(len(op.attrs.perm))):
                graph = _fold_input_transpose(graph, name, chain, op)
            break
    return graph


def _fold_input_transpose(graph: ir.Graph, name: str, chain: list[ir.Op], transpose: ir.Op) -> ir.Graph:
    perm = transpose.attrs.perm
    moved = [name] + [op.outputs[0] for op in chain]
    last, target = moved[-1], transpose.outputs[0]
    tensors = {n: ir.Tensor(n, tuple(graph[n].shape[p] for p in perm), graph[n].dtype, graph[n].qparams) for n in moved}
    rename = {last: target} if chain else {target: name}
    ops_out = []
    for op in graph.ops:
        if op is transpose:
            continue
        ops_out.append(
            ir.Op(
                op.name,
                op.attrs,
                tuple(rename.get(n, n) for n in op.inputs),
                tuple(rename.get(n, n) for n in op.outputs),
            )
        )
    perms = dict(graph.input_perms) | {name: perm}
    outputs = tuple(rename.get(n, n) for n in graph.outputs)
    return graph.with_tensors(*tensors.values()).replace(ops=tuple(ops_out), outputs=outputs, input_perms=perms)


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
        self.resources: dict[int, str] = {}  # a VAR_HANDLE's resource tensor -> the variable's name
        self.initial: dict[str, ir.Tensor] = {}  # what CALL_ONCE's init subgraph assigns each variable
        self.initial_index: dict[str, int] = {}

    # --- tensors -------------------------------------------------------
    def _raw(self, index: int):
        if not 0 <= index < self.sg.TensorsLength():
            raise TinyqError(f"tensor index {index} out of range")
        return self.sg.Tensors(index)

    def tensor(self, index: int) -> ir.Tensor:
        name = self.names[index] if 0 <= index < len(self.names) else None
        if name in self.tensors:
            return self.tensors[name]
        tensor = self.peek(index)
        self.tensors[name] = tensor
        return tensor

    def peek(self, index: int) -> ir.Tensor:
        """Tensor `index` read without adding it to the graph (an LSTM's state operands)."""
        t = self._raw(index)
        name = self.names[index]
        dtype = _DTYPES.get(t.Type(), f"type code {t.Type()}")
        if dtype not in ir.DTYPES:
            raise TinyqError(f"tensor {name!r} has unsupported type {dtype}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d < 0 for d in shape):
            raise TinyqError(f"tensor {name!r} has a dynamic shape {shape}")
        return ir.Tensor(name, shape, dtype, self._qparams(t), self._buffer(t, dtype, shape))

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
            raw = self.buf[b.Offset() : b.Offset() + b.Size()]
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
        return ir.QParams(tuple(float(s) for s in scales), tuple(int(z) for z in zps), int(q.QuantizedDimension()))

    # --- graph ---------------------------------------------------------
    def graph(self) -> ir.Graph:
        readers = _readers()
        graph_ops = []
        for i in range(self.sg.OperatorsLength()):
            op = self.sg.Operators(i)
            if op.OpcodeIndex() >= self.model.OperatorCodesLength():
                raise TinyqError(f"operator {i} has an opcode index out of range")
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            kind = _OP_NAMES.get(code, f"builtin code {code}")
            if code == BuiltinOperator.CUSTOM:
                code = kind = (oc.CustomCode() or b"").decode(errors="replace") or "CUSTOM"
            inputs = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
            outputs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
            if kind == "SHAPE" and len(inputs) == 1:  # of a static shape: a constant
                self._fold(outputs[0], np.array(self.tensor(inputs[0]).shape))
                continue
            if kind in VARIABLE_SETUP:
                self._variable_handle(op, outputs) if kind == "VAR_HANDLE" else self._init_subgraph(op)
                continue
            if code not in readers:
                raise TinyqError(
                    f"unsupported operator {kind} at index {i}; tinyq supports {', '.join(supported_ops())}"
                )
            if not outputs and all(s.outputs for s in readers[code].signatures):
                raise TinyqError(f"operator {kind} at index {i} has no outputs")
            try:
                attrs, in_indices, *out_indices = readers[code].read_tflite(self, op, inputs, outputs)
            except ops.Unsupported as err:
                raise TinyqError(f"operator {kind} at index {i}: {err}") from None
            op_ir = ir.Op(
                f"{kind.lower()}_{i}",
                attrs,
                tuple(self.tensor(t).name for t in in_indices),
                tuple(self.tensor(t).name for t in (out_indices[0] if out_indices else outputs)),
            )
            if not self._folded_shape_arithmetic(op_ir, outputs):
                graph_ops.append(op_ir)
        inputs = [self.tensor(int(t)).name for t in self.sg.InputsAsNumpy()] if self.sg.InputsLength() else []
        outputs = [self.tensor(int(t)).name for t in self.sg.OutputsAsNumpy()] if self.sg.OutputsLength() else []
        graph = ir.Graph(self.name, self.tensors, tuple(graph_ops), tuple(inputs), tuple(outputs))
        return folded_into_convolutions(_with_input_transposes_folded(_without_quantize_round_trips(graph)))

    # --- resource variables: VAR_HANDLE names one, CALL_ONCE's subgraph initialises them --
    def _handle_name(self, op) -> str:
        o = self.options(op, "VarHandleOptions")
        container, shared = (o.Container() or b"").decode(), (o.SharedName() or b"").decode()
        if not shared:
            raise ops.Unsupported("VAR_HANDLE without a shared name")
        return f"{container}/{shared}" if container else shared

    def _variable_handle(self, op, outputs: list[int]) -> None:
        self.resources[outputs[0]] = self._handle_name(op)

    def _init_subgraph(self, op) -> None:
        """CALL_ONCE's subgraph: VAR_HANDLE and ASSIGN_VARIABLE of constants, nothing else."""
        index = self.options(op, "CallOnceOptions").InitSubgraphIndex()
        if not 0 < index < self.model.SubgraphsLength():
            raise TinyqError(f"CALL_ONCE names subgraph {index}, which the model does not have")
        sg, handles = self.model.Subgraphs(index), {}
        for i in range(sg.OperatorsLength()):
            init_op = sg.Operators(i)
            oc = self.model.OperatorCodes(init_op.OpcodeIndex())
            kind = _OP_NAMES.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "CUSTOM")
            ins = [int(v) for v in init_op.InputsAsNumpy()] if init_op.InputsLength() else []
            if kind == "VAR_HANDLE":
                handles[int(init_op.OutputsAsNumpy()[0])] = self._handle_name(init_op)
                continue
            value = sg.Tensors(ins[1]) if kind == "ASSIGN_VARIABLE" and len(ins) == 2 else None
            dtype = _DTYPES.get(value.Type()) if value is not None else None
            shape = tuple(int(d) for d in value.ShapeAsNumpy()) if value is not None and value.ShapeLength() else ()
            data = self._buffer(value, dtype, shape) if dtype else None
            if data is None or ins[0] not in handles:
                raise TinyqError(
                    f"CALL_ONCE's init subgraph {index} runs {kind} (operator {i}); tinyq takes initial "
                    "values that are constants assigned to variables"
                )
            name = handles[ins[0]]
            self.initial[name] = ir.Tensor(f"{name}/initial", shape, dtype, self._qparams(value), data)

    def variable(self, resource: int) -> tuple[str, int]:
        """The variable a resource tensor names, and the index of its initial value."""
        if resource not in self.resources:
            raise ops.Unsupported(f"tensor {resource} is not the resource of a VAR_HANDLE before it")
        name = self.resources[resource]
        if name not in self.initial:
            raise ops.Unsupported(f"variable {name!r} has no initial value (CALL_ONCE assigns it none)")
        if name not in self.initial_index:
            self.tensors[self.initial[name].name] = self.initial[name]
            self.names.append(self.initial[name].name)
            self.initial_index[name] = len(self.names) - 1
        return name, self.initial_index[name]

    # --- conversion artefacts: shape arithmetic on static shapes, folded ---------------
    def _fold(self, index: int, value: np.ndarray) -> None:
        """Tensor `index` becomes a constant holding `value` (in the tensor's own dtype)."""
        t = self._raw(index)
        dtype = _DTYPES.get(t.Type(), "int32")
        name = self.names[index]
        self.tensors[name] = ir.Tensor(name, value.shape, dtype, None, value.astype(_NUMPY.get(dtype, np.int32)))

    def _folded_shape_arithmetic(self, op: ir.Op, outputs: list[int]) -> bool:
        """The converter computes a Reshape's target from SHAPE with STRIDED_SLICE, PACK and
        CONCATENATION (a dynamic batch): on constants, run the op's reference once and keep
        its int32 results as constants."""
        ins = [self.tensors[n] for n in op.inputs]
        outs = [self.tensors[n] for n in op.outputs]
        if not ins or not all(t.is_constant for t in ins) or any(t.dtype not in ("int32", "int64") for t in outs):
            return False
        as_inputs = [ir.Tensor(t.name, t.shape, t.dtype, t.qparams) for t in ins]
        definition = ops.definition(op)
        try:
            params = definition.params(op.attrs, as_inputs, outs)
            result = definition.reference(op.attrs, params, [t.data[None] for t in ins], as_inputs, outs)
        except Exception:  # not foldable here: verify judges the op as it is
            return False
        for index, value in zip(outputs, ops.per_output(op, result)):
            self._fold(index, np.asarray(value)[0])
        return True

    # --- helpers of the op modules' read_tflite ---------------------------------------
    @staticmethod
    def custom_options(op) -> dict:
        """A tinyq custom operator's options (a flexbuffer map)."""
        if not op.CustomOptionsLength():
            raise ops.Unsupported("missing custom options")
        options = flexbuffers.Loads(op.CustomOptionsAsNumpy().tobytes())
        if not isinstance(options, dict):
            raise ops.Unsupported("custom options are not a map")
        return options

    def options(self, op, table: str):
        """The operator's builtin options, read as the named table (e.g. "Conv2DOptions")."""
        raw = op.BuiltinOptions()
        if raw is None:
            raise ops.Unsupported("missing builtin options")
        opts = getattr(tflite, table)()
        opts.Init(raw.Bytes, raw.Pos)
        return opts

    @staticmethod
    def activation(code: int) -> ir.Activation:
        if code not in _ACTIVATIONS:
            raise ops.Unsupported(f"fused activation {code} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1 are)")
        return _ACTIVATIONS[code]

    @staticmethod
    def padding(kind: int, in_hw, kernel, stride, dilation) -> ir.Padding2D:
        if kind not in _PADDINGS:
            raise ops.Unsupported(f"padding type {kind}")
        return padding_for(_PADDINGS[kind], in_hw, kernel, stride, dilation)

    @staticmethod
    def need_rank(t: ir.Tensor, rank: int, role: str) -> None:
        if len(t.shape) != rank:
            raise ops.Unsupported(f"{role} {t.name!r} has shape {t.shape}, expected rank {rank}")

    def bias_or_zeros(self, inputs, channels: int, x_index: int, w_index: int) -> int:
        """TFLite allows an absent bias (-1); the IR always has one."""
        if len(inputs) > 2 and inputs[2] >= 0:
            return inputs[2]
        x, w = self.tensor(x_index), self.tensor(w_index)
        name = f"{w.name}/zero_bias"
        if x.dtype == "float32":
            return self.add(ir.Tensor(name, (channels,), "float32", None, np.zeros(channels, np.float32)))
        scales = [x.qparams.s * s for s in w.qparams.scale]
        q = ir.QParams.per_channel(scales, 0) if len(scales) > 1 else ir.QParams.per_tensor(scales[0])
        dtype = "int64" if x.dtype == "int16" else "int32"  # 16x8 biases are int64 (TFLM's FC reads no other)
        return self.add(ir.Tensor(name, (channels,), dtype, q, np.zeros(channels, dtype)))

    def add(self, tensor: ir.Tensor) -> int:
        """A tensor the IR needs that the file does not hold; its index."""
        self.tensors[tensor.name] = tensor
        self.names.append(tensor.name)
        return len(self.names) - 1
