"""Layer-by-layer quantization passes (AdaRound, empirical bias correction) see each
layer's input as the quantized model produces it: earlier layers already
quantized (and corrected), every activation fake-quantized. The float model's
own input to the layer is the reference."""

from __future__ import annotations

import numpy as np

from tinyq import ir
from tinyq.quant.convert import ActivationQuant, WeightQuant
from tinyq.sim import FloatRunner, fake_quant
from tinyq.tf import tensorflow


def dequantized(q: WeightQuant) -> np.ndarray:
    shape = [1] * q.values.ndim
    if q.axis is not None:
        shape[q.axis] = -1
    return (q.values * q.scales.reshape(shape)).astype(np.float32)


class Layerwise:
    def __init__(self, graph: ir.Graph, x: np.ndarray, activation_quant: ActivationQuant):
        """Each activation fake-quantized at the precision that holds it (int8 or int16)."""
        self.graph, self.x = graph, x
        self.activation_quant = activation_quant.held
        self.qrange = {
            name: (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
            for name, bits in activation_quant.precision.tensor_bits.items()
        }
        self.fixed: dict[str, np.ndarray] = {}  # constant tensor -> its value in the quantized model

    def fix(self, name: str, value: np.ndarray) -> None:
        self.fixed[name] = value.astype(np.float32)

    def _run(self, name: str, quantized: bool) -> np.ndarray:
        tf = tensorflow()
        weight = activation = None
        if quantized:

            def weight(tensor, value):
                return tf.constant(self.fixed[tensor]) if tensor in self.fixed else value

            def activation(tensor, value):
                q = self.activation_quant.get(tensor)
                return value if q is None else fake_quant(tf, value, q.s, q.zp, *self.qrange[tensor])

        runner = FloatRunner(self.graph, keep={name}, weight=weight, activation=activation)
        return np.concatenate([values[name] for _, values in runner.batches([self.x])])

    def quantized(self, name: str) -> np.ndarray:
        """Tensor `name` as the quantized model computes it."""
        return self._run(name, quantized=True)

    def floats(self, name: str) -> np.ndarray:
        """Tensor `name` as the float model computes it."""
        return self._run(name, quantized=False)
