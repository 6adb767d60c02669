"""keras.applications at MCU sizes through tinyq, and through the TFLite converter + TFLM.

For each model: tinyq's float IR against Keras (largest error relative to the largest
output), tinyq's own build (PTQ, minmax ranges) run in QEMU on an emulated Cortex-M4
(bit-exact against the integer reference, instructions, arena, flash), its output SQNR against
the float model, and the TFLite converter's int8 model of the same network deployed by tinyq
(every output bit-exact with TFLM on the test inputs; TFLM's arena as the x86-64 tflite-micro
package records it, larger than on a 32-bit target).

Two sets of weights:
- random (default): Keras's initialisation, the classifier's logits as output (random weights
  give a near-uniform softmax: its SQNR says nothing, and its input scale is below what TFLM's
  SOFTMAX can represent, see tests/test_robust_ranges.py);
- `--trained`: each network trained briefly on Fashion-MNIST (4,000 images, two epochs;
  resized, three channels; cached in bench/results/models/; BatchNorm statistics estimated
  afresh), softmax kept; float, tinyq int8 and converter int8 accuracy on
  1,000 test images (the integer reference, the deployed arithmetic).
Run: python bench/applications.py [--trained] [model ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import fashion
import numpy as np

from tinyq.bench import bench
from tinyq.boards import get_board
from tinyq.build import build
from tinyq.data import Dataset, quantize_input
from tinyq.errors import TinyqError
from tinyq.importers.keras import float_model_from_keras
from tinyq.importers.tflite import parse_tflite
from tinyq.quant import parse_config, quantize
from tinyq.quant.evaluate import dequantize, integer_outputs, sqnr_db
from tinyq.sim import FloatRunner

from common import converter_int8, print_table, write_results

SIZES = {
    "mobilenet_0.25_96": 96,
    "mobilenetv2_0.35_96": 96,
    "mobilenetv3small_0.75_96": 96,
    "mobilenetv3small_min_0.75_96": 96,
    "efficientnetb0_64": 64,
}
# EfficientNetB0's 4 MB of int8 weights do not fit the emulated board's flash: int4 weights
BITS = {"efficientnetb0_64": "w4a8"}
TRAIN_IMAGES, TRAIN_EPOCHS, TEST_IMAGES = 4000, 2, 1000


def application(keras, name: str, head):
    a, shape = keras.applications, (SIZES[name], SIZES[name], 3)
    common = dict(input_shape=shape, weights=None, classes=10, classifier_activation=head)
    if name.startswith("mobilenetv3"):
        return a.MobileNetV3Small(alpha=0.75, minimalistic="_min_" in name, include_preprocessing=False, **common)
    return {
        "mobilenet_0.25_96": lambda: a.MobileNet(alpha=0.25, **common),
        "mobilenetv2_0.35_96": lambda: a.MobileNetV2(alpha=0.35, **common),
        "efficientnetb0_64": lambda: a.EfficientNetB0(**common),
    }[name]()


def images(name: str, x: np.ndarray) -> np.ndarray:
    """Fashion-MNIST images as the network takes them: resized, three channels, in [-1, 1]
    (EfficientNet: [0, 255], it rescales inside)."""
    import tensorflow as tf

    size = SIZES[name]
    resized = tf.image.resize(x, (size, size)).numpy()
    resized = np.repeat(resized, 3, axis=-1)
    return resized * 255.0 if name.startswith("efficientnet") else resized * 2.0 - 1.0


def trained_model(keras, name: str):
    """Trained briefly (cached), then its BatchNorm statistics estimated afresh on 512 training
    images: after 250 steps Keras's moving averages are still far from the data (the network
    then predicts one class in inference mode)."""
    path = fashion.MODELS / f"{name}.keras"
    x_train, y_train, _, _ = fashion.load()
    if path.exists():
        model = keras.models.load_model(path)
    else:
        keras.utils.set_random_seed(0)
        model = application(keras, name, "softmax")
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        print(f"training {name} on {TRAIN_IMAGES} images for {TRAIN_EPOCHS} epochs...", file=sys.stderr)
        x = images(name, x_train[:TRAIN_IMAGES])
        model.fit(x, y_train[:TRAIN_IMAGES], batch_size=32, epochs=TRAIN_EPOCHS, verbose=2)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0  # the moving statistics become those of the one batch below
    model(images(name, x_train[:512]), training=True)
    return model


def tflm_run(data: bytes, xs: np.ndarray) -> tuple[np.ndarray, int]:
    """TFLM's outputs for each input of `xs`, and the arena bytes its recording allocator
    reports (printed by C++ on file descriptor 2, so read from there)."""
    import os

    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(data, arena_size=10 * len(data) + (1 << 22))
    outs = []
    for x in xs:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outs.append(np.array(interpreter.get_output(0)).reshape(-1))
    with tempfile.TemporaryFile("w+") as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        totals = [line for line in captured.read().splitlines() if "allocation total" in line]
    return np.stack(outs), int(totals[0].split()[-2]) if totals else 0


def tflm_refuses(data: bytes) -> str:
    """'' if TFLM runs the model, else its error, shortened."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(data, arena_size=10 * len(data) + (1 << 22))
        interpreter.invoke()
    except Exception as err:  # TFLM reports any failure as a RuntimeError with its log
        return " ".join(str(err).split())[:80] or type(err).__name__
    return ""


def converter_row(tf, model, calib: np.ndarray, test: np.ndarray, labels, out: Path) -> dict:
    """The TFLite converter's int8 model of the network, deployed by tinyq: every output
    bit-exact with TFLM on the first test inputs; with labels, its accuracy (tinyq's reference
    on all of them). If tinyq refuses it, whether TFLM runs it."""
    converted = converter_int8(tf, model, calib)
    row = dict.fromkeys(
        ("converter_ops", "converter_bit_exact_tflm", "converter_acc", "converter_arena_bytes", "tflm_arena_bytes_x86")
    )
    try:
        imported = parse_tflite(converted)
    except TinyqError as err:
        tflm = tflm_refuses(converted)
        verdict = f"TFLM fails too ({tflm})" if tflm else "TFLM runs it"
        return row | {"converter_note": f"tinyq refuses it ({str(err).split(': ', 2)[-1][:90]}); {verdict}"}
    t = imported[imported.inputs[0]]
    xq = quantize_input(test[:16], t.qparams.s, t.qparams.zp).reshape((-1,) + t.shape)
    tflm_out, tflm_arena = tflm_run(converted, xq)
    ours = integer_outputs(imported, test, quiet=True)[0].reshape(len(test), -1)
    report = build(imported, get_board("host"), out, source="converter", compile=False)
    return row | {
        "converter_ops": len(imported.ops),
        "converter_bit_exact_tflm": bool(np.array_equal(ours[:16], tflm_out)),
        "converter_acc": None if labels is None else float(np.mean(np.argmax(ours, 1) == labels)),
        "converter_arena_bytes": report.memory.arena_bytes,
        "tflm_arena_bytes_x86": tflm_arena,
        "converter_note": "",
    }


def data_for(keras, name: str, trained: bool, rng):
    """(model, calibration images, test images, test labels or None)."""
    if trained:
        x_train, _, x_test, y_test = fashion.load()
        model = trained_model(keras, name)
        calib = images(name, x_train[-200:])  # not among the training images
        return model, calib, images(name, x_test[:TEST_IMAGES]), y_test[:TEST_IMAGES]
    model = application(keras, name, None)
    shape = (SIZES[name], SIZES[name], 3)
    scale = 255.0 if name.startswith("efficientnet") else 1.0
    calib = (rng.uniform(-1, 1, (32,) + shape) * scale).astype(np.float32)
    return model, calib, (rng.uniform(-1, 1, (16,) + shape) * scale).astype(np.float32), None


def main() -> None:
    import keras
    import tensorflow as tf

    trained = "--trained" in sys.argv
    chosen = [a for a in sys.argv[1:] if a != "--trained"] or list(SIZES)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            model, calib, test, labels = data_for(keras, name, trained, rng)
            fm = float_model_from_keras(model, name)
            ours = FloatRunner(fm.graph, keep=set(fm.graph.outputs)).outputs([test[:16]])[0].reshape(16, -1)
            theirs = model.predict(test, verbose=0).reshape(len(test), -1)
            float_error = float(np.max(np.abs(ours - theirs[:16])) / max(np.max(np.abs(theirs[:16])), 1e-12))
            bits = BITS.get(name, "w8a8")
            graph = quantize(fm, Dataset(calib), parse_config("minmax", bits), quiet=True).graph
            out = dequantize(graph[graph.outputs[0]], integer_outputs(graph, test, quiet=True)[0]).reshape(theirs.shape)
            build_dir = Path(tmp) / name
            report = build(graph, get_board("mps2_an386"), build_dir, source=name, log=lambda message: None)
            t = graph[graph.inputs[0]]
            np.save(build_dir / "x.npy", quantize_input(test[0], t.qparams.s, t.qparams.zp).reshape(t.shape))
            run = bench(build_dir, emulate=True, input_path=build_dir / "x.npy")
            rows.append(
                {
                    "model": name,
                    "weights": "trained" if trained else "random",
                    "bits": bits,
                    "ops": len(graph.ops),
                    "macs": report.model.macs,
                    "float_rel_error": float_error,
                    "sqnr_db": sqnr_db(theirs, out),
                    "float_acc": None if labels is None else float(np.mean(np.argmax(theirs, 1) == labels)),
                    "tinyq_acc": None if labels is None else float(np.mean(np.argmax(out, 1) == labels)),
                    "bit_exact_qemu": run["bit_exact"],
                    "instructions_m4": run["instructions"],
                    "arena_bytes": report.memory.arena_bytes,
                    "flash_bytes": report.memory.flash_bytes,
                    **converter_row(tf, model, calib, test, labels, Path(tmp) / f"{name}_converter"),
                }
            )
            print(f"{name}: done", file=sys.stderr)
    print_table(
        rows,
        [
            ("model", "s"),
            ("weights", "s"),
            ("bits", "s"),
            ("ops", "d"),
            ("macs", ","),
            ("float_rel_error", ".1e"),
            ("sqnr_db", ".1f"),
            ("float_acc", ".3f"),
            ("tinyq_acc", ".3f"),
            ("bit_exact_qemu", ""),
            ("instructions_m4", ","),
            ("arena_bytes", ","),
            ("flash_bytes", ","),
            ("converter_ops", "d"),
            ("converter_bit_exact_tflm", ""),
            ("converter_acc", ".3f"),
            ("converter_arena_bytes", ","),
            ("tflm_arena_bytes_x86", ","),
        ],
    )
    for row in rows:
        if row["converter_note"]:
            print(f"{row['model']}: converter model: {row['converter_note']}")
    print(f"wrote {write_results('applications_trained' if trained else 'applications', rows)}")


if __name__ == "__main__":
    main()
