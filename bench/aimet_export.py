"""AIMET's quantization of the PyTorch Fashion-MNIST models (bench/torch_fashion.py), exported
for tinyq: run in a separate venv with aimet-torch (it is large; never a tinyq dependency):

    python -m venv /tmp/aimet && /tmp/aimet/bin/pip install torch==2.13.0 onnx onnxruntime ...
    /tmp/aimet/bin/pip install --no-deps aimet-torch   # plus its pure-Python dependencies
    cd bench && /tmp/aimet/bin/python aimet_export.py

aimet_torch imports torchvision, and PyPI's torchvision does not load beside this machine's
torch 2.13.0 CPU build: the bench venv gets a stand-in `torchvision` package whose datasets,
transforms, ops and models modules hand out placeholder classes (aimet uses them only for
ImageNet helpers and type tables, none of which this bench touches).

For each model: batch norms folded, then W8A8 (QuantizationSimModel, tf_enhanced ranges over
the same 1,000 calibration images as the other benches) and W4A8 with AdaRound (4-bit weights,
`ADAROUND_ITERATIONS` per layer, frozen into the sim), each sim's accuracy on the 10,000 test
images and its `sim.export` (ONNX + encodings) in bench/results/aimet/. bench/aimet_deploy.py
then deploys the exports with tinyq. Writes bench/results/aimet/aimet.json.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
import torch_fashion as models
from aimet_torch.adaround.adaround_weight import Adaround, AdaroundParameters
from aimet_torch.batch_norm_fold import fold_all_batch_norms
from aimet_torch.common.defs import QuantScheme
from aimet_torch.quantsim import QuantizationSimModel

OUT = models.CACHE.parent / "aimet"
ADAROUND_ITERATIONS = 2000
SCHEME = QuantScheme.post_training_tf_enhanced


@torch.no_grad()
def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    pred = torch.cat([model(torch.from_numpy(x[i : i + 500])).argmax(1) for i in range(0, len(x), 500)])
    return 100.0 * float((pred.numpy() == y).mean())


def calibrate(calib: np.ndarray):
    @torch.no_grad()
    def forward(model, _):
        for i in range(0, len(calib), 100):
            model(torch.from_numpy(calib[i : i + 100]))

    return forward


def quantized(name: str, bits: int, calib, dummy) -> tuple[QuantizationSimModel, float]:
    model = models.train(name)
    fold_all_batch_norms(model, input_shapes=tuple(dummy.shape))
    start = time.perf_counter()
    if bits < 8:
        loader = torch.utils.data.DataLoader(torch.from_numpy(calib), batch_size=50)
        params = AdaroundParameters(loader, num_batches=len(loader), default_num_iterations=ADAROUND_ITERATIONS)
        model = Adaround.apply_adaround(
            model, dummy, params, str(OUT), f"{name}_adaround", default_param_bw=bits, default_quant_scheme=SCHEME
        )
    sim = QuantizationSimModel(model, dummy, quant_scheme=SCHEME, default_param_bw=bits, default_output_bw=8)
    if bits < 8:
        sim.set_and_freeze_param_encodings(encoding_path=str(OUT / f"{name}_adaround.encodings"))
    sim.compute_encodings(calibrate(calib), None)
    return sim, time.perf_counter() - start


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    x_train, _, x_test, y_test = models.data()
    calib = x_train[np.random.default_rng(0).choice(len(x_train), models.CALIBRATION, replace=False)]
    dummy = torch.from_numpy(x_test[:1])
    rows = []
    for name in models.BUILDERS:
        for label, bits in (("w8a8", 8), ("w4a8_adaround", 4)):
            sim, seconds = quantized(name, bits, calib, dummy)
            prefix = f"{name}_{label}"
            sim.export(str(OUT), prefix, dummy)
            rows.append(
                {
                    "model": name,
                    "config": label,
                    "float_pct": accuracy(models.train(name), x_test, y_test),
                    "aimet_sim_pct": accuracy(sim.model, x_test, y_test),
                    "aimet_s": seconds,
                    "onnx": f"{prefix}.onnx",
                    "encodings": f"{prefix}.encodings",
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    (OUT / "aimet.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
