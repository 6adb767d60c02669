"""What tinyq deploys, generated from the registry: `tinyq ops` and docs/operators.md.

Beside it, TFLite Micro's builtin operators (those the pinned tflite-micro registers), so
the page says what tinyq lacks; tests/test_docs.py keeps both in step with the code.
"""

from __future__ import annotations

from tinyq import ops

# The TFLite builtin operators tflite-micro==0.dev20261023182759 registers (its Register_*
# functions that name a builtin; its signal-processing custom ops left out).
TFLM_BUILTINS = (
    "ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND BROADCAST_ARGS "
    "BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE "
    "DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD "
    "FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU "
    "LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN MINIMUM "
    "MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_ALL REDUCE_MAX REDUCE_MIN "
    "RELU RELU6 "
    "RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX "
    "SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM "
    "SVDF TANH TRANSPOSE TRANSPOSE_CONV UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE"
).split()


def operator_rows() -> list[dict]:
    """One row per TFLite operator tinyq reads: the op it becomes and the dtypes it deploys."""
    rows = []
    for definition in ops.all_ops():
        deployed = [str(s) for s in definition.signatures if not s.is_float]
        for name in (definition.name, *definition.tflite_aliases):
            rows.append(
                {
                    "operator": f"{name} (tinyq custom)" if definition.custom else name,
                    "op": definition.name,
                    "dtypes": deployed,
                    "float_forward": any(s.is_float for s in definition.signatures),
                }
            )
    return sorted(rows, key=lambda r: r["operator"])


def onnx_operators() -> list[str]:
    from tinyq.importers.onnx_nodes import NODES

    return sorted(NODES)


def keras_layers() -> list[str]:
    from tinyq.importers.keras import LAYERS

    return sorted(LAYERS)


def missing_from_tflm() -> list[str]:
    """TFLite Micro's builtin operators tinyq does not read."""
    from tinyq.importers.tflite import VARIABLE_SETUP

    read = {r["operator"] for r in operator_rows()} | set(VARIABLE_SETUP)
    return [name for name in TFLM_BUILTINS if name not in read]


def markdown() -> str:
    """docs/operators.md."""
    lines = [
        "# Operators",
        "",
        "Generated from tinyq's op registry (`tinyq ops --markdown`); `tests/test_docs.py` checks this page",
        "against the code. Every operator here has TFLite import and export, the numpy integer reference",
        "(bit-exact with TFLite Micro) and C kernels; `verify` refuses any dtypes not listed, naming the",
        "operator and what it supports, before the reference or the C runs. Fused activations: NONE,",
        "RELU, RELU6, RELU_N1_TO_1. A *tinyq custom* operator has no TFLite builtin (TFLite Micro",
        "has no kernel for it): tinyq writes it as a CUSTOM operator of that code and reads it back;",
        "its reference and C agree bit for bit.",
        "",
        "| TFLite operator | read as | dtypes deployed (inputs -> outputs) | float forward (quantization) |",
        "|---|---|---|---|",
    ]
    for r in operator_rows():
        lines.append(
            f"| {r['operator']} | {r['op']} | {'; '.join(r['dtypes'])} | {'yes' if r['float_forward'] else '-'} |"
        )
    lines += [
        "",
        "## Conversion artefacts cleaned up at import",
        "",
        "- VAR_HANDLE and CALL_ONCE (TFLite Micro's streaming models): each variable is named by its",
        "  handle, its initial value taken from CALL_ONCE's init subgraph (constants assigned, nothing",
        "  else); READ_VARIABLE and ASSIGN_VARIABLE then keep it in the arena from call to call.",
        "- SHAPE, and STRIDED_SLICE / PACK / CONCATENATION on constant shapes (a dynamic batch's",
        "  Reshape target): folded to constants.",
        "- DEQUANTIZE then QUANTIZE to the same quantization: dropped (different quantizations stay:",
        "  TFLM requantizes through float).",
        "- A TRANSPOSE the input feeds alone (through QUANTIZE at most) that keeps the batch first, as",
        "  in PyTorch-converted NCHW models: folded; the input is deployed in the transposed layout,",
        "  the report and `tinyq_model.h` say so, and `eval`, `bench` and calibration data are given in",
        "  the model's own layout and transposed once by tinyq.",
        "- A PAD whose only reader is a CONV_2D or DEPTHWISE_CONV_2D (and Keras's ZeroPadding2D before",
        "  one): folded into the convolution's padding, up to the kernel's extent less one a side",
        "  (PAD writes the zero point, which is what the padding reads: the values are unchanged).",
        "",
        "## Keras layers",
        "",
        "Float Keras models are imported layer by layer (BatchNorm folded, activations fused, dropout",
        "removed) and quantized by tinyq:",
        "",
        ", ".join(f"`{name}`" for name in keras_layers()) + ".",
        "",
        "## ONNX operators",
        "",
        "Float ONNX models (opsets 13 and later) are imported node by node, NCHW becoming NHWC once at",
        "the input (`docs/onnx.md`), and quantized by tinyq; nodes on constants only are evaluated at",
        "import:",
        "",
        ", ".join(f"`{name}`" for name in onnx_operators()) + ".",
        "",
        "## What TFLite Micro runs and tinyq does not",
        "",
        "TFLite Micro's builtin operators (the pinned `tflite-micro`) that tinyq refuses at import:",
        "",
        ", ".join(missing_from_tflm()) + ".",
    ]
    return "\n".join(lines) + "\n"
