"""ONNX import: PyTorch models exported by both of torch.onnx.export's exporters and onnx.helper
graphs, their float IR equal to onnxruntime's outputs; the layout changed once at the input
(no TRANSPOSE inside); quantized by tinyq and bit-exact from the reference to the host C;
bad files refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper

from tinyq import ref
from tinyq.errors import TinyqError
from tinyq.exporters.tflite import to_tflite
from tinyq.importers.onnx import float_model_from_onnx, load_float_onnx
from tinyq.importers.tflite import parse_tflite
from tinyq.ops import definition
from tinyq.sim import FloatRunner

from support.cli import assert_clean_error, tinyq
from support.hostlib import HostModel
from support.onnx_models import exported, helper_model, ort_outputs, ort_qdq, torch_modules
from support.tflm import tflm_outputs

TORCH_MODELS = sorted(torch_modules())
# the model's own transpose (k^T), and a 4-D output given back NCHW as the model computes it
TRANSPOSES = {"attention_like_matmul": 1, "upsample_pad_clip": 1}


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx_models")


def float_outputs(graph, x_model_layout: np.ndarray) -> np.ndarray:
    perm = graph.input_perms.get(graph.inputs[0])
    x = np.transpose(x_model_layout, perm) if perm else x_model_layout
    return FloatRunner(graph, keep=set(graph.outputs)).outputs([x])[0]


def assert_close(ours, theirs, rtol=1e-4):
    theirs = np.asarray(theirs)
    assert ours.size == theirs.size
    scale = max(float(np.abs(theirs).max()), 1e-6)
    assert float(np.abs(ours.reshape(theirs.shape) - theirs).max()) <= rtol * scale


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript_opset13", "dynamo"])
@pytest.mark.parametrize("name", TORCH_MODELS)
def test_torch_exports_import_equal_to_onnxruntime(name, dynamo, onnx_dir):
    path = exported(name, onnx_dir, dynamo)
    graph = load_float_onnx(path).graph
    shape = torch_modules()[name][1]
    if len(shape) == 4:
        assert graph.input_perms[graph.inputs[0]] == (0, 2, 3, 1)
    assert [op.kind for op in graph.ops].count("TRANSPOSE") == TRANSPOSES.get(name, 0)
    for seed in range(2):
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        assert_close(float_outputs(graph, x), ort_outputs(path, x))


@pytest.mark.parametrize(
    "name",
    [
        "cnn_bn_flatten_linear",
        "depthwise_separable",
        "residual_concat_mean",
        "conv1d_sequence",
        "lstm_last_step_linear",
        "gru_sequence",
    ],
)
def test_onnx_models_quantized_by_tinyq_are_bit_exact_on_the_host(name, onnx_dir, tmp_path):
    from tinyq.data import Dataset
    from tinyq.quant import parse_config, quantize
    from tinyq.quant.evaluate import dequantize, sqnr_db

    fm = load_float_onnx(exported(name, onnx_dir))
    perm = fm.graph.input_perms.get(fm.graph.inputs[0])
    shape = torch_modules()[name][1]
    x = np.random.default_rng(1).standard_normal((96, *shape[1:])).astype(np.float32)
    deployed = np.transpose(x, perm) if perm else x
    graph = quantize(fm, Dataset(deployed[:64]), parse_config("minmax", "w8a8"), quiet=True).graph
    assert "TRANSPOSE" not in {op.kind for op in graph.ops}
    q = graph[graph.inputs[0]].qparams
    samples = np.clip(np.round(deployed[64:] / q.s) + q.zp, -128, 127).astype(np.int8)
    host = HostModel(graph, tmp_path)
    written = to_tflite(graph)  # the model's layout, then a TRANSPOSE: TFLM takes the NCHW data
    assert parse_tflite(written).input_perms == graph.input_perms
    for sample in samples[:3]:
        expected = ref.outputs(graph, [sample[None]])[0]
        assert np.array_equal(host.run([sample[None]])[0], expected)
        nchw = np.transpose(sample[None], np.argsort(perm)) if perm else sample[None]
        if not any(definition(op).custom for op in graph.ops):  # TFLM has no GRU (a tinyq custom op)
            assert np.array_equal(tflm_outputs(written, [nchw], 1)[0], expected)
    floats = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([deployed[64:]])[0]
    out = dequantize(graph[graph.outputs[0]], ref.outputs(graph, [samples[:, None]], batched=True)[0])
    assert sqnr_db(floats, out.reshape(floats.shape)) > 20


# --- QDQ models (onnxruntime's static quantization), deployed as they are ----------------------

QDQ_MODELS = [
    "cnn_bn_flatten_linear",
    "depthwise_separable",
    "residual_concat_mean",
    "mlp_on_image_prelu_softmax",  # its input is quantized only after a Reshape
    "attention_like_matmul",  # int8 constants (asymmetric) as ADD operands, a MatMul of two tensors
]


@pytest.mark.parametrize(
    "per_channel, activations",
    [(False, "QInt8"), (True, "QInt8"), (False, "QUInt8")],
    ids=["per_tensor", "per_channel", "uint8_activations"],
)
@pytest.mark.parametrize("name", QDQ_MODELS)
def test_qdq_models_deploy_as_they_are(name, per_channel, activations, onnx_dir, tmp_path):
    """The file's int8 weights and activation quantization (uint8 activations shifted by 128),
    no calibration: the host C and TFLM give the reference's outputs, which agree with
    onnxruntime's QDQ run."""
    from tinyq.importers.onnx import load_onnx
    from tinyq.quant.evaluate import dequantize

    shape = torch_modules()[name][1]
    rng = np.random.default_rng(2)
    calib = rng.standard_normal((32, *shape[1:])).astype(np.float32)
    qdq = ort_qdq(exported(name, onnx_dir), calib, tmp_path / "qdq.onnx", per_channel, activations)
    graph = load_onnx(qdq)
    assert all(graph[op.outputs[0]].dtype == "int8" for op in graph.ops)
    assert [op.kind for op in graph.ops].count("TRANSPOSE") == TRANSPOSES.get(name, 0)
    perm = graph.input_perms.get(graph.inputs[0])
    host, written = HostModel(graph, tmp_path), to_tflite(graph)
    q = graph[graph.inputs[0]].qparams
    out_q = graph[graph.outputs[0]].qparams
    for x in rng.standard_normal((3, *shape)).astype(np.float32):
        deployed = np.transpose(x, perm) if perm else x
        sample = np.clip(np.round(deployed / q.s) + q.zp, -128, 127).astype(np.int8)
        expected = ref.outputs(graph, [sample])[0]
        assert np.array_equal(host.run([sample])[0], expected)
        nchw = np.transpose(sample, np.argsort(perm)) if perm else sample
        assert np.array_equal(tflm_outputs(written, [nchw], 1)[0], expected)
        ours = dequantize(graph[graph.outputs[0]], expected)
        theirs = ort_outputs(qdq, x)  # onnxruntime rounds through float between the ops
        assert np.abs(ours.reshape(theirs.shape) - theirs).max() <= 8 * out_q.s + 0.05 * np.abs(theirs).max()


def test_qdq_models_tinyq_cannot_deploy_as_they_are_are_refused(onnx_dir, tmp_path):
    """uint8 (asymmetric) weights, which TFLM's kernels do not take; an operator onnxruntime left
    float (it does not quantize Div), with nothing after it to take a quantization from."""
    calib = np.random.default_rng(3).standard_normal((8, 1, 14, 14)).astype(np.float32)
    qdq = ort_qdq(
        exported("cnn_bn_flatten_linear", onnx_dir), calib, tmp_path / "u8.onnx", activations="QUInt8", weights="QUInt8"
    )
    assert_clean_error(tinyq("inspect", qdq), "are quantized uint8 with zero point", "symmetric int8 weights")
    calib = np.random.default_rng(3).standard_normal((8, 2, 6, 6)).astype(np.float32)
    qdq = ort_qdq(exported("upsample_pad_clip", onnx_dir), calib, tmp_path / "div.onnx")
    assert_clean_error(tinyq("inspect", qdq), "the QDQ model leaves MUL '/Div' float (no quantization of its output")


def test_cli_builds_a_qdq_model_as_it_is(onnx_dir, tmp_path):
    calib = np.random.default_rng(3).standard_normal((8, 1, 14, 14)).astype(np.float32)
    qdq = ort_qdq(exported("cnn_bn_flatten_linear", onnx_dir), calib, tmp_path / "qdq.onnx")
    result = tinyq("--print-json", "build", qdq, "--board", "host", "-o", tmp_path / "fw")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["quant"]["algo"] == ["imported"]
    result = tinyq("build", qdq, "--board", "host", "--calib", tmp_path / "x.npz", "-o", tmp_path / "fw2")
    assert_clean_error(result, "--calib does not apply (it is deployed as it is)")


def test_a_qdq_model_is_not_quantized_again(onnx_dir, tmp_path):
    calib = np.random.default_rng(3).standard_normal((8, 1, 14, 14)).astype(np.float32)
    qdq = ort_qdq(exported("cnn_bn_flatten_linear", onnx_dir), calib, tmp_path / "qdq.onnx")
    assert_clean_error(tinyq("quantize", qdq, "-o", tmp_path / "q"), "is already an int8 model: nothing to quantize")
    with pytest.raises(TinyqError, match=r"is a quantized \(QDQ\) ONNX model: build or evaluate it as it is"):
        load_float_onnx(qdq)


# --- onnx.helper graphs: what PyTorch's exporters do not write ------------------------------


def conv_bn_relu():
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["bn"], epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Add", ["r", "r"], ["sum"]),
        helper.make_node("BatchNormalization", ["sum", "g", "beta", "m", "v"], ["bn2"]),  # after an ADD: an op
        helper.make_node("GlobalAveragePool", ["bn2"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["y"]),
    ]
    stats = [("g", rng.uniform(0.5, 1.5, 4)), ("beta", rng.normal(0, 0.2, 4))]
    stats += [("m", rng.normal(0, 0.3, 4)), ("v", rng.uniform(0.5, 2, 4))]
    inits = [("w", rng.normal(0, 0.3, (4, 3, 3, 3))), ("b", rng.normal(0, 0.1, 4)), *stats]
    return helper_model(nodes, [("x", [1, 3, 8, 8])], [("y", [1, 4])], inits)


def nhwc_input_tf2onnx():
    """tf2onnx's form: an NHWC input, Transpose to NCHW, the convolution, Transpose back."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Transpose", ["c"], ["y"], perm=[0, 2, 3, 1]),
    ]
    inits = [("w", rng.normal(0, 0.3, (5, 2, 3, 3)))]
    return helper_model(nodes, [("x", ["batch", 7, 7, 2])], [("y", [1, 4, 4, 5])], inits)


def gemm_forms():
    """Gemm with B not transposed, alpha and beta; BatchNorm of a 2-D tensor; Clip to [-1, 1];
    ReduceMean with an axes attribute at opset 13."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "c"], ["g"], alpha=0.5, beta=2.0),
        helper.make_node("BatchNormalization", ["g", "s", "beta", "m", "v"], ["bn"]),
        helper.make_node("Clip", ["bn", "lo", "hi"], ["clip"]),
        helper.make_node("Unsqueeze", ["clip", "axes"], ["u"]),
        helper.make_node("ReduceMean", ["u"], ["y"], axes=[2], keepdims=0),
    ]
    inits = [("w", rng.normal(0, 0.5, (6, 5))), ("c", rng.normal(0, 0.2, 5)), ("s", rng.uniform(0.5, 1.5, 5))]
    inits += [("beta", rng.normal(0, 0.2, 5)), ("m", rng.normal(0, 0.2, 5)), ("v", rng.uniform(0.5, 2, 5))]
    inits += [("lo", np.array(-1.0)), ("hi", np.array(1.0)), ("axes", np.array([2], np.int64))]
    return helper_model(nodes, [("x", [1, 6])], [("y", [1, 5])], inits, opset=13)


def relu_after_a_shared_identity():
    """Conv -> Identity -> Relu while a Sigmoid reads the Conv output too: the Relu must not
    fuse into the convolution (the Identity's output is the same tensor)."""
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Identity", ["c"], ["i"]),
        helper.make_node("Relu", ["i"], ["r"]),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Add", ["r", "s"], ["y"]),
    ]
    return helper_model(nodes, [("x", [1, 2, 5, 5])], [("y", [1, 3, 3, 3])], [("w", rng.normal(0, 1, (3, 2, 3, 3)))])


HELPER_MODELS = {
    "conv_bn_relu": conv_bn_relu,
    "nhwc_input_tf2onnx": nhwc_input_tf2onnx,
    "gemm_forms": gemm_forms,
    "relu_after_a_shared_identity": relu_after_a_shared_identity,
}
# the one 4-D output given back NCHW
HELPER_TRANSPOSES = {"relu_after_a_shared_identity": 1}


@pytest.mark.parametrize("name", HELPER_MODELS)
def test_helper_graphs_import_equal_to_onnxruntime(name, tmp_path):
    import onnx

    model = HELPER_MODELS[name]()
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    fm = float_model_from_onnx(model)
    kinds = [op.kind for op in fm.graph.ops]
    assert kinds.count("TRANSPOSE") == HELPER_TRANSPOSES.get(name, 0)
    if name == "conv_bn_relu":  # the first BatchNorm folds, the second (after the Add) is a per-channel op
        assert kinds == ["CONV_2D", "ADD", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE"]
        assert fm.graph.ops[0].attrs.activation.name == "RELU" and len(fm.bn_stats) == 2
    shape = [d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    assert_close(float_outputs(fm.graph, x), ort_outputs(path, x))


# --- bad input: one line, exit 2 --------------------------------------------------------------


def gelu_model():
    nodes = [helper.make_node("Erf", ["x"], ["e"], name="encoder/gelu_erf"), helper.make_node("Relu", ["e"], ["y"])]
    return helper_model(nodes, [("x", [1, 4])], [("y", [1, 4])])


def dynamic_width_model():
    return helper_model(
        [helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 3, "height", 8])], [("y", [1, 3, "height", 8])]
    )


def grouped_conv_model():
    w = np.zeros((4, 2, 3, 3), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], group=2, name="grouped")]
    return helper_model(nodes, [("x", [1, 4, 5, 5])], [("y", [1, 4, 3, 3])], [("w", w)])


def old_opset_model():
    return helper_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 4])], [("y", [1, 4])], opset=12)


@pytest.mark.parametrize(
    "make, message",
    [
        (gelu_model, "unsupported ONNX operator Erf (node 'encoder/gelu_erf'); tinyq supports"),
        (dynamic_width_model, "input 'x' has a dynamic dimension 'height' at axis 2"),
        (grouped_conv_model, "node 'grouped': Conv with group 2 over 4 channels is not supported"),
        (old_opset_model, "opset 12: tinyq reads ONNX opsets 13 and later"),
        (lambda: b"\x08\x07garbage that is no protobuf \xff\xff", "is not a readable ONNX model"),
    ],
    ids=["unsupported_op", "dynamic_shape", "grouped_conv", "old_opset", "corrupt_protobuf"],
)
def test_bad_onnx_files_get_one_clear_line(make, message, tmp_path):
    import onnx

    path = tmp_path / "bad.onnx"
    model = make()
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    assert_clean_error(tinyq("inspect", path), message)
    with pytest.raises(TinyqError, match="."):
        load_float_onnx(path)
    if not isinstance(model, bytes):
        onnx.checker.check_model(model)  # a valid file: the refusal is tinyq's


def test_cli_builds_an_onnx_model_from_nchw_data(onnx_dir, tmp_path):
    """`tinyq build model.onnx --calib data.npz` with the data in PyTorch's NCHW layout: the
    report and tinyq_model.h state the deployed NHWC input."""
    path = exported("cnn_bn_flatten_linear", onnx_dir)
    x = np.random.default_rng(5).standard_normal((32, 1, 14, 14)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    result = tinyq("build", path, "--calib", tmp_path / "calib.npz", "--board", "mps2_an386", "-o", tmp_path / "fw")
    assert result.returncode == 0, result.stderr
    header = next((tmp_path / "fw").rglob("tinyq_model.h")).read_text()
    assert "[1, 1, 14, 14]" in header and "transposed" in header
