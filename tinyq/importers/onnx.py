"""Import a float ONNX model (as torch.onnx.export and tf2onnx write them; opsets 13 and later)
as a float IR graph.

ONNX computes in NCHW (NCL for 1-D layers); tinyq's kernels, like TFLite's, in NHWC. The
layout changes once, at the boundary: a 4-D input is deployed NHWC (`Graph.input_perms`: the
user's NCHW data is transposed by tinyq), and every value keeps a `Layout` saying how its IR
tensor holds it, so no TRANSPOSE is left inside the graph:
- PLAIN: the IR tensor is the ONNX value;
- CHANNELS_LAST: a 4-D (N, C, H, W) value held as (N, H, W, C); a 3-D (N, C, L) one as
  (N, 1, L, C), so 1-D layers run as their 2-D ops over a unit height;
- FLAT: the ONNX Flatten/Reshape of a channels-last map to (N, C x H x W), held as the
  flatten of the NHWC map (N, H x W x C); the Gemm or MatMul reading it permutes its
  weight rows instead of the data.
A value is converted to the form an op needs where it is read: by a RESHAPE when the
transposition only moves axes of size one, otherwise by a TRANSPOSE (a plain 4-D value
that reaches a convolution, which torch models do not make).

Constant subgraphs (the Shape -> Gather -> Concat chains of `x.view(x.size(0), -1)`,
Constant nodes) are evaluated at import by onnx's reference evaluator. A dynamic batch
dimension is taken as 1; any other dynamic dimension is refused, naming the input. Each
ONNX operator has one row in `onnx_nodes.NODES`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyq import ir
from tinyq.errors import TinyqError
from tinyq.float_model import FloatModel
from tinyq.ops.pad import folded_into_convolutions
from tinyq.ops.reshape import Reshape
from tinyq.ops.transpose import Transpose

MIN_OPSET = 13
FLOAT_TYPES = {1: "float32"}  # TensorProto.FLOAT


class Layout(enum.Enum):
    PLAIN = "plain"
    CHANNELS_LAST = "channels_last"
    FLAT = "flat"


@dataclass(frozen=True)
class Value:
    """An ONNX value as the IR holds it: the IR tensor and how (see the module docstring);
    `chw` is the (C, H, W) of the map a FLAT value was flattened from."""

    tensor: str
    layout: Layout = Layout.PLAIN
    chw: tuple[int, int, int] = (0, 0, 0)


def channels_last_axes(rank: int) -> tuple[int, ...]:
    """For each ONNX axis of a rank-3 or rank-4 value, its axis in the channels-last IR tensor."""
    return (0, 3, 1, 2) if rank == 4 else (0, 3, 2)


def channels_last_shape(shape) -> tuple[int, ...]:
    if len(shape) == 4:
        n, c, h, w = shape
        return (n, h, w, c)
    n, c, length = shape
    return (n, 1, length, c)


def int8_range(q: ir.QParams) -> tuple[float, float]:
    """The float values an int8 tensor of this quantization can hold."""
    return (-128 - q.zp) * q.s, (127 - q.zp) * q.s


def as_4d(shape) -> tuple[int, int, int, int]:
    return tuple(shape) if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])


def order_kept(shape) -> bool:
    """Whether NCHW -> NHWC of this (rank-3 or -4) shape only moves axes of size one: the two
    layouts then hold the same values in the same order, and a RESHAPE converts them."""
    _, c, h, w = as_4d(shape)
    return c == 1 or h * w == 1


def load_onnx_proto(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError) as err:
        raise TinyqError(f"{path} is not a readable ONNX model ({type(err).__name__}: {err})") from None
    if not model.graph.node:
        raise TinyqError(f"{path} is not a readable ONNX model (its graph has no nodes)")
    return model


def load_onnx(path: str | Path) -> ir.Graph:
    """The IR of an ONNX file: float, or int8 for a quantized (QDQ) model."""
    return graph_from_onnx(_read(path), Path(path).stem)


def load_float_onnx(path: str | Path) -> FloatModel:
    return float_model_from_onnx(_read(path), Path(path).stem)


def _read(path: str | Path):
    path = Path(path)
    if not path.exists():
        raise TinyqError(f"model file {path} does not exist")
    return load_onnx_proto(path)


def graph_from_onnx(model, name: str = "onnx_model") -> ir.Graph:
    from tinyq.importers.onnx_qdq import deployed, qdq_weights, with_folded_relus

    converter = OnnxConverter(model, name)
    graph = converter.convert().graph
    if not converter.quantized:
        return graph
    graph = with_folded_relus(graph, converter.activation_qparams)
    weights = qdq_weights(graph, converter.weight_scales)
    return deployed(graph, converter.activation_qparams, converter.implied_ranges, weights, "the QDQ model")


def deployed_with_encodings(
    path: str | Path, encodings_path: str | Path, calib: np.ndarray | None = None
) -> tuple[FloatModel, ir.Graph, list[str]]:
    """A float ONNX model quantized as AIMET's encodings say (tinyq/importers/aimet.py): the
    float model, the int8 graph, and notes on what tinyq adjusted. Tensors AIMET leaves
    unquantized (functional ops its model preparer did not wrap: `x + y`, `torch.cat`) take
    min-max ranges over `calib` (deployed-layout samples), else they are refused."""
    from tinyq.importers.aimet import activation_qparams, encoded_weights, load_encodings
    from tinyq.importers.onnx_qdq import WEIGHTED, deployed

    encodings = load_encodings(encodings_path)
    converter = OnnxConverter(_read(path), Path(path).stem)
    fm = converter.convert()
    if converter.quantized:
        raise TinyqError(f"{path} is already quantized (QDQ): --encodings applies to a float model")
    weights, notes = encoded_weights(encodings, fm.graph, converter, WEIGHTED)
    given = activation_qparams(encodings, converter)
    bits = max((w.bits for w in weights.values()), default=8)

    def ranges_of(tensors: list[str]) -> dict[str, tuple[float, float]]:
        from tinyq.quant.observe import observe

        stats = observe(fm.graph, calib, histograms=False, quiet=True)
        notes.append(f"aimet: min-max ranges from the calibration data for what AIMET left float: {', '.join(tensors)}")
        return {t: (min(stats[t].lo, 0.0), max(stats[t].hi, 0.0)) for t in tensors}

    measure = ranges_of if calib is not None else None
    hint = "give --calib to range what AIMET left float"
    graph = deployed(fm.graph, given, converter.implied_ranges, weights, encodings.path, bits, measure, hint)
    return fm, graph, notes


def float_model_from_onnx(model, name: str = "onnx_model") -> FloatModel:
    converter = OnnxConverter(model, name)
    fm = converter.convert()
    if converter.quantized:
        raise TinyqError(f"{name} is a quantized (QDQ) ONNX model: build or evaluate it as it is")
    return fm


def _opset(model) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise TinyqError("the ONNX model imports no default-domain opset")
    if versions[0] < MIN_OPSET:
        raise TinyqError(f"opset {versions[0]}: tinyq reads ONNX opsets {MIN_OPSET} and later (re-export it)")
    return versions[0]


def _fixed_inputs(model, initializers: set[str]) -> None:
    """Give a dynamic batch dimension the size 1; refuse every other dynamic dimension."""
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type not in FLOAT_TYPES:
            raise TinyqError(f"input {value.name!r} has ONNX element type {tensor_type.elem_type}; tinyq takes float32")
        if not tensor_type.HasField("shape"):
            raise TinyqError(f"input {value.name!r} has no shape: export the model with a fixed input size")
        for axis, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if axis == 0:
                dim.Clear()
                dim.dim_value = 1
                continue
            what = f"'{dim.dim_param}'" if dim.dim_param else "unknown"
            raise TinyqError(
                f"input {value.name!r} has a dynamic dimension {what} at axis {axis}: "
                "export the model with a fixed input size (torch.onnx.export without dynamic_axes there)"
            )


ALIASES = {"Identity", "Dropout", "QuantizeLinear", "DequantizeLinear"}  # their output is their input's tensor


def _readers(graph) -> dict[str, int]:
    """For each ONNX value, how many nodes (and graph outputs) read the IR tensor holding it:
    the readers of the value it aliases (through Identity, Dropout, Q/DQ), counted through
    every alias of that value, aliases themselves not counted."""
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    counted: dict[str, int] = {}

    def through(name: str) -> int:
        if name not in counted:
            readers = consumers.get(name, [])
            counted[name] = (name in outputs) + sum(
                through(n.output[0]) if n.op_type in ALIASES else 1 for n in readers
            )
        return counted[name]

    root: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in ALIASES:
            root[node.output[0]] = root.get(node.input[0], node.input[0])
    names = {n for node in graph.node for n in (*node.input, *node.output)} | outputs
    return {name: through(root.get(name, name)) for name in names}


def _tidied(graph: ir.Graph) -> ir.Graph:
    """Each run of RESHAPEs (layout conversions meeting the model's own reshapes) as one, and
    without the ops nothing reads (an ONNX output no node uses, as Y_h often is)."""
    producers, readers = {}, {}
    for op in graph.ops:
        for n in op.inputs:
            readers[n] = readers.get(n, 0) + 1
    ops = []
    for op in graph.ops:
        source = producers.get(op.inputs[0]) if op.inputs else None
        chained = source is not None and readers[source.outputs[0]] == 1 and source.outputs[0] not in graph.outputs
        if isinstance(op.attrs, Reshape) and chained and isinstance(source.attrs, Reshape):
            op = ir.Op(op.name, op.attrs, (source.inputs[0], *op.inputs[1:]), op.outputs)
        producers |= {out: op for out in op.outputs}
        ops.append(op)
    while True:
        read = {n for op in ops for n in op.inputs} | set(graph.outputs)
        live = [op for op in ops if any(out in read for out in op.outputs)]
        if len(live) == len(ops):
            return graph.replace(ops=tuple(ops)).pruned()
        ops = live


@dataclass
class OnnxConverter:
    """Walks the ONNX graph's nodes in order; each node's row in onnx_nodes.NODES emits its IR
    ops here."""

    model: object
    name: str
    tensors: dict[str, ir.Tensor] = field(default_factory=dict)
    ops: list[ir.Op] = field(default_factory=list)
    values: dict[str, Value] = field(default_factory=dict)  # ONNX value -> how the IR holds it
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # ONNX value -> its data
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # ONNX value -> its ONNX shape
    uses: dict[str, int] = field(default_factory=dict)  # ONNX value -> readers of its IR tensor (_readers)
    bn_stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    conversions: dict[tuple[str, Layout], str] = field(default_factory=dict)
    node: object = None  # the node being converted
    # a QDQ model's quantization: each QuantizeLinear's (IR tensor -> int8 parameters), and each
    # DequantizeLinear of constant integers (ONNX value -> per-channel scales), then of the IR
    # weights made from them (IR tensor -> scales)
    activation_qparams: dict[str, ir.QParams] = field(default_factory=dict)
    implied_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # of ops one node became
    dequantized: dict[str, tuple[np.ndarray, str | None]] = field(default_factory=dict)  # (scales, why refused)
    weight_scales: dict[str, np.ndarray] = field(default_factory=dict)
    weight_sources: dict[str, str] = field(default_factory=dict)  # IR weights -> the ONNX value they came from
    refolded: set[str] = field(default_factory=set)  # IR weights a BatchNormalization folded into

    # --- values ---------------------------------------------------------------------------
    def new(self, name: str, shape, data=None) -> str:
        """A new float IR tensor (a constant with `data`) named uniquely after `name`."""
        base, n = name or "tensor", 1
        name = base
        while name in self.tensors:
            n += 1
            name = f"{base}_{n}"
        values = None if data is None else np.asarray(data, np.float32).reshape(shape)
        self.tensors[name] = ir.Tensor(name, tuple(int(d) for d in shape), "float32", None, values)
        return name

    def constant(self, name: str, data) -> str:
        data = np.asarray(data, np.float32)
        return self.new(name, data.shape, data)

    def weights(self, source: str, data: np.ndarray) -> str:
        """The IR weights of the node being converted, made from ONNX value `source`; in a QDQ
        model they keep the scales of the DequantizeLinear that made `source`."""
        name = self.new(f"{self.node_name}/weights", data.shape, data)
        self.weight_sources[name] = source
        if source in self.dequantized:
            scales, refusal = self.dequantized[source]
            if refusal:
                raise TinyqError(refusal)
            self.weight_scales[name] = scales
        return name

    def range_of(self, tensor: str) -> tuple[float, float] | None:
        """The float range a QDQ model's quantization gives an IR tensor (None: none given)."""
        q = self.activation_qparams.get(tensor)
        return None if q is None else int8_range(q)

    @property
    def quantized(self) -> bool:
        """A QDQ model: QuantizeLinear gives its activations' quantization."""
        return bool(self.activation_qparams)

    def emit(self, attrs, inputs, shape, out_name: str | None = None, op_name: str | None = None) -> str:
        """An IR op (named after the node being converted) with one new output; returns it."""
        return self.emit_outputs(attrs, inputs, [shape], [out_name], op_name)[0]

    def emit_outputs(self, attrs, inputs, shapes, out_names, op_name: str | None = None) -> list[str]:
        base = op_name or self.node_name
        names, name, k = {op.name for op in self.ops}, base, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        outs = [self.new(out or f"{name}/out{i or ''}", shape) for i, (shape, out) in enumerate(zip(shapes, out_names))]
        self.ops.append(ir.Op(name, attrs, tuple(inputs), tuple(outs)))
        return outs

    @property
    def node_name(self) -> str:
        return self.node.name or f"{self.node.op_type}_{self.node.output[0]}"

    def const(self, name: str) -> np.ndarray | None:
        """The data of a constant ONNX value (None: it is computed at run time)."""
        return self.constants.get(name)

    def need_const(self, name: str, what: str) -> np.ndarray:
        data = self.const(name)
        if data is None:
            raise TinyqError(f"node {self.node_name!r} ({self.node.op_type}): {what} must be a constant")
        return data

    def define(self, name: str, tensor: str, layout: Layout = Layout.PLAIN, chw=(0, 0, 0)) -> None:
        self.values[name] = Value(tensor, layout, chw)

    def rank(self, name: str) -> int:
        return len(self.shapes[name])

    def plain(self, name: str) -> str:
        """The IR tensor holding ONNX value `name` in its ONNX layout."""
        value = self.values[name]
        if value.layout == Layout.PLAIN:
            return value.tensor
        key = (name, Layout.PLAIN)
        if key not in self.conversions:
            shape = self.shapes[name]
            if value.layout == Layout.FLAT:
                c, h, w = value.chw
                nhwc = self.emit(Reshape(), [value.tensor], (shape[0], h, w, c), op_name=f"{name}/unflatten")
                nchw = self.emit(Transpose((0, 3, 1, 2)), [nhwc], (shape[0], c, h, w), op_name=f"{name}/to_nchw")
                self.conversions[key] = self.emit(Reshape(), [nchw], shape, op_name=f"{name}/flatten_nchw")
            elif order_kept(shape):
                self.conversions[key] = self.emit(Reshape(), [value.tensor], shape, op_name=f"{name}/to_plain")
            else:
                perm = (0, 3, 1, 2) if len(shape) == 4 else (0, 2, 1)
                source = value.tensor
                if len(shape) == 3:  # (N, 1, L, C) -> (N, L, C) first
                    source = self.emit(Reshape(), [source], (shape[0], shape[2], shape[1]), op_name=f"{name}/to_3d")
                self.conversions[key] = self.emit(Transpose(perm), [source], shape, op_name=f"{name}/to_nchw")
        return self.conversions[key]

    def channels_last(self, name: str) -> str:
        """The IR tensor holding rank-3 or rank-4 ONNX value `name` channels-last."""
        value = self.values[name]
        if value.layout == Layout.CHANNELS_LAST:
            return value.tensor
        shape = self.shapes[name]
        if len(shape) not in (3, 4):
            raise TinyqError(f"node {self.node_name!r} ({self.node.op_type}) needs a 3-D or 4-D input, not {shape}")
        key = (name, Layout.CHANNELS_LAST)
        if key not in self.conversions:
            source, target = self.plain(name), channels_last_shape(shape)
            if order_kept(shape):
                self.conversions[key] = self.emit(Reshape(), [source], target, op_name=f"{name}/to_nhwc")
            else:
                n, c, h, w = as_4d(shape)
                nhwc = self.emit(Transpose((0, 2, 3, 1)), [self._as_4d(source, shape)], (n, h, w, c))
                self.conversions[key] = nhwc
        return self.conversions[key]

    def _as_4d(self, tensor: str, shape) -> str:
        if len(shape) == 4:
            return tensor
        return self.emit(Reshape(), [tensor], as_4d(shape), op_name=f"{tensor}/as_4d")

    def same_layout(self, names) -> tuple[list[str], Layout]:
        """Several values in one layout (channels-last if any is, when all can be), for
        elementwise ops and concatenation."""
        layouts = {self.values[n].layout for n in names if n in self.values}
        ranks = {self.rank(n) for n in names}
        if Layout.CHANNELS_LAST in layouts and ranks <= {3, 4} and len(ranks) == 1:
            return [self.channels_last(n) for n in names], Layout.CHANNELS_LAST
        return [self.plain(n) for n in names], Layout.PLAIN

    def ir_shape(self, name: str, layout: Layout) -> tuple[int, ...]:
        shape = self.shapes[name]
        return channels_last_shape(shape) if layout == Layout.CHANNELS_LAST else shape

    def ir_axis(self, name: str, axis: int, layout: Layout) -> int:
        rank = self.rank(name)
        axis = axis % rank
        return channels_last_axes(rank)[axis] if layout == Layout.CHANNELS_LAST else axis

    def single_use(self, name: str) -> bool:
        """Whether one node alone reads the IR tensor holding ONNX value `name` (and it is no
        graph output): an activation or BatchNorm may then change it in place."""
        return self.uses.get(name, 0) == 1

    def producer(self, tensor: str) -> ir.Op | None:
        return next((op for op in reversed(self.ops) if tensor in op.outputs), None)

    def replace_op(self, old: ir.Op, new: ir.Op) -> None:
        self.ops[self.ops.index(old)] = new

    # --- the walk -------------------------------------------------------------------------
    def _infer_shapes(self) -> None:
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, strict_mode=True, data_prop=True)
        except Exception as err:  # onnx raises its own InferenceError and ValidationError types
            raise TinyqError(f"ONNX shape inference failed: {err}") from None
        for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
            dims = info.type.tensor_type.shape.dim
            if info.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
                self.shapes[info.name] = tuple(int(d.dim_value) for d in dims)

    def _fold_constants(self) -> None:
        """Evaluate every node that computes on constants only (or on shapes), and infer shapes
        again, until none is left: shapes behind computed pads or sizes become known."""
        import onnx

        from tinyq.importers.onnx_nodes import fold_constant_node

        while True:
            self._infer_shapes()
            kept = []
            for node in self.model.graph.node:
                self.node = node
                if not fold_constant_node(self, node):
                    kept.append(node)
            if len(kept) == len(self.model.graph.node):
                return
            graph = self.model.graph
            known = {init.name for init in graph.initializer}
            needed = {n for node in kept for n in node.input} | {o.name for o in graph.output}
            graph.initializer.extend(
                onnx.numpy_helper.from_array(np.asarray(self.constants[n]), n)
                for n in sorted(needed - known)
                if n in self.constants
            )
            del graph.node[:]
            graph.node.extend(kept)

    def convert(self) -> FloatModel:
        import onnx

        from tinyq.importers.onnx_nodes import NODES

        _opset(self.model)
        graph = self.model.graph
        for init in graph.initializer:
            self.constants[init.name] = onnx.numpy_helper.to_array(init)
        _fixed_inputs(self.model, set(self.constants))
        self._fold_constants()
        self.uses = _readers(graph)
        inputs, perms = [], {}
        for value in graph.input:
            if value.name in self.constants:
                continue
            inputs.append(self._input(value.name, perms))
        for node in graph.node:
            self.node = node
            if node.domain not in ("", "ai.onnx"):
                raise TinyqError(f"node {self.node_name!r}: operator {node.domain}.{node.op_type} is not supported")
            if node.op_type not in NODES:
                raise TinyqError(
                    f"unsupported ONNX operator {node.op_type} (node {self.node_name!r}); "
                    f"tinyq supports {', '.join(sorted(NODES))}"
                )
            missing = [n for n in node.output if n and n not in self.shapes]
            if missing:
                raise TinyqError(f"node {self.node_name!r} ({node.op_type}): the shape of {missing[0]!r} is unknown")
            NODES[node.op_type](self, node)
        outputs = [self._output(value.name) for value in graph.output]
        result = ir.Graph(self.name, self.tensors, tuple(self.ops), tuple(inputs), tuple(outputs), perms)
        return FloatModel(ir.verify(folded_into_convolutions(_tidied(result))), self.bn_stats)

    def _input(self, name: str, perms: dict) -> str:
        from tinyq.importers.onnx_nodes import SPATIAL

        shape = self.shapes[name]
        readers = [node.op_type for node in self.model.graph.node if name in node.input]
        if len(shape) == 4:  # NCHW, unless only Transposes read it (tf2onnx's NHWC input)
            spatial = not readers or any(kind != "Transpose" for kind in readers)
        else:
            spatial = len(shape) == 3 and bool(SPATIAL & set(readers))
        if not spatial:
            self.define(name, self.new(name, shape))
            return self.values[name].tensor
        if len(shape) == 4:
            tensor = self.new(name, channels_last_shape(shape))
            perms[tensor] = (0, 2, 3, 1)
            self.define(name, tensor, Layout.CHANNELS_LAST)
            return tensor
        n, c, length = shape  # deployed (N, L, C); the 1-D layers read it as (N, 1, L, C)
        tensor = self.new(name, (n, length, c))
        perms[tensor] = (0, 2, 1)
        unit_height = self.emit(Reshape(), [tensor], (n, 1, length, c), op_name=f"{name}/unit_height")
        self.define(name, unit_height, Layout.CHANNELS_LAST)
        return tensor

    def _output(self, name: str) -> str:
        if name in self.constants or name not in self.values:
            raise TinyqError(f"output {name!r} is a constant: tinyq deploys models whose outputs are computed")
        tensor = self.plain(name)
        if self.producer(tensor) is None:  # an input passed through
            tensor = self.emit(Reshape(), [tensor], self.shapes[name], op_name=f"{name}/output")
        return tensor
