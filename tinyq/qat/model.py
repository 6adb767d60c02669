"""The QAT Keras model: tinyq's IR with learnable quantizers in the forward pass."""

from __future__ import annotations

import math

import numpy as np

from tinyq import ir, ops
from tinyq.ops.add import Add
from tinyq.ops.affine import is_affine, weight_axis
from tinyq.ops.concatenation import Concatenation
from tinyq.ops.pool import AveragePool2D
from tinyq.ops.softmax import Softmax
from tinyq.qat import integer
from tinyq.quant.convert import activation_groups, fixed_outputs
from tinyq.sim import forward
from tinyq.tf import keras as _keras
from tinyq.tf import tensorflow

EMA_MOMENTUM = 0.99
ACTIVATION_RANGES = {8: (-128.0, 127.0), 16: (-32768.0, 32767.0)}  # the int8 / int16 codes


def round_ste(tf, x):
    """round() forward (half to even, as numpy rounds weights), identity backward (the STE)."""
    return x + tf.stop_gradient(tf.round(x) - x)


def round_away_ste(tf, x):
    """Round half away from zero (as the kernels and input quantization do), identity backward."""
    return x + tf.stop_gradient(integer.round_half_away(tf, x) - x)


def scale_grad(tf, x, factor: float):
    """x forward, gradient times `factor` backward (LSQ's step-size gradient scale)."""
    return x * factor + tf.stop_gradient(x - x * factor)


def positive(tf, s):
    return tf.maximum(tf.abs(s), 1e-9)


def fake_quant_weights(tf, w, scale, qmax: int, grad_factor: float = 1.0):
    """Symmetric fake quantization: scale * clip(round(w / scale), -qmax, qmax)."""
    s = positive(tf, scale_grad(tf, scale, grad_factor))
    return s * tf.clip_by_value(round_ste(tf, w / s), -qmax, qmax)


def fake_quant_activations(tf, x, scale, offset, grad_factor: float = 1.0, bits: int = 8):
    """Activation fake quantization with a learnable step: asymmetric int8 with a (rounded)
    zero point, or (`bits` 16) symmetric int16 with zero point 0 (`offset` ignored)."""
    s = positive(tf, scale_grad(tf, scale, grad_factor))
    qmin, qmax = ACTIVATION_RANGES[bits]
    z = tf.constant(0.0) if bits == 16 else tf.clip_by_value(round_ste(tf, offset), qmin, qmax)
    return s * (tf.clip_by_value(round_away_ste(tf, x / s) + z, qmin, qmax) - z)


def _key(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)[:40]


def build_model_class():
    keras = _keras()

    class QATModel(keras.Model):
        """Simulates tinyq's deployed arithmetic (int8 or int16 activations, 2-8 bit weights) on a
        float IR graph. The forward pass computes the codes of the requantizing ops that have a
        TensorFlow twin (tinyq.qat.integer) exactly as the kernels do, the others by float fake
        quantization; gradients flow through float fake quantization (straight-through estimator)."""

        def __init__(
            self,
            graph: ir.Graph,
            qparams: dict[str, ir.QParams],
            weight_scales: dict[str, np.ndarray],
            bits: int,
            per_channel: bool,
            learnable: bool,
            activation_bits: int = 8,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.graph, self.bits, self.per_channel, self.learnable = graph, bits, per_channel, learnable
            self.activation_bits = activation_bits
            self.qmax = (1 << (bits - 1)) - 1
            self.act_min, self.act_max = ACTIVATION_RANGES[activation_bits]
            self.groups = activation_groups(graph)
            self.fixed = fixed_outputs(graph, activation_bits)
            self.producers = graph.producers()
            self.affine = [op for op in graph.ops if is_affine(op)]
            self.kernels, self.biases, self.weight_scales = {}, {}, {}
            for op in self.affine:
                w, b = graph[op.inputs[1]], graph[op.inputs[2]]
                self.kernels[op.name] = self._variable(f"{op.name}_kernel", w.data, True)
                self.biases[op.name] = self._variable(f"{op.name}_bias", b.data, True)
                shape = [1] * len(w.shape)
                if per_channel:
                    shape[weight_axis(op)] = -1
                self.weight_scales[op.name] = self._variable(
                    f"{op.name}_wscale", np.reshape(weight_scales[op.name], shape), learnable
                )
            # an op's internal state (an LSTM's cell state) is never an int8 tensor: not fake-quantized,
            # its range only tracked for the conversion (the quantize facet reads it)
            self.state = {op.outputs[i] for op in graph.ops for i in ops.definition(op).state_outputs}
            self.act_scales, self.act_offsets, self.act_lo, self.act_hi = {}, {}, {}, {}
            for name in sorted({g for g in self.groups.values() if g is not None}):
                q = qparams[name]
                trained = learnable and name not in self.state
                self.act_scales[name] = self._variable(f"{_key(name)}_scale", np.float32(q.s), trained)
                # int16 activations are symmetric: the zero point stays 0, not a trained offset
                self.act_offsets[name] = self._variable(
                    f"{_key(name)}_offset", np.float32(q.zp), trained and activation_bits == 8
                )
                if not learnable:
                    lo, hi = (self.act_min - q.zp) * q.s, (self.act_max - q.zp) * q.s
                    self.act_lo[name] = self._variable(f"{_key(name)}_lo", np.float32(lo), False)
                    self.act_hi[name] = self._variable(f"{_key(name)}_hi", np.float32(hi), False)
            self.kernel_of = {op.inputs[1]: op for op in self.affine}
            self.bias_of = {op.inputs[2]: op for op in self.affine}

        def _variable(self, name, value, trainable):
            value = np.asarray(value, np.float32)
            var = self.add_weight(shape=value.shape, initializer="zeros", name=name, trainable=trainable)
            var.assign(value)
            return var

        # --- quantizer parameters --------------------------------------------------
        def weight_scale(self, tf, op):
            if self.learnable:
                return positive(tf, self.weight_scales[op.name])
            w = self.kernels[op.name]
            axes = [i for i in range(len(w.shape)) if not self.per_channel or i != weight_axis(op)]
            return tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(w), axis=axes, keepdims=True), 1e-8) / self.qmax)

        def act_params(self, tf, name):
            """(scale, rounded zero point) as float32 tensors, for the tensor's group."""
            group = self.groups.get(name, name)
            if group is None:
                q = self.fixed[name]
                return tf.constant(q.s), tf.constant(float(q.zp))
            if self.activation_bits == 16:
                return positive(tf, self.act_scales[group]), tf.constant(0.0)
            return positive(tf, self.act_scales[group]), tf.clip_by_value(
                tf.round(self.act_offsets[group]), -128.0, 127.0
            )

        def _track(self, tf, name, value):
            """EMA of the observed range -> scale and zero point (the non-learnable mode)."""
            lo = EMA_MOMENTUM * self.act_lo[name] + (1 - EMA_MOMENTUM) * tf.minimum(tf.reduce_min(value), 0.0)
            hi = EMA_MOMENTUM * self.act_hi[name] + (1 - EMA_MOMENTUM) * tf.maximum(tf.reduce_max(value), 0.0)
            self.act_lo[name].assign(lo)
            self.act_hi[name].assign(hi)
            if self.activation_bits == 16:  # symmetric: the larger magnitude at 32767
                self.act_scales[name].assign(tf.maximum(tf.maximum(-lo, hi) / self.act_max, 1e-8))
                return
            scale = tf.maximum((hi - lo) / 255.0, 1e-8)
            self.act_scales[name].assign(scale)
            self.act_offsets[name].assign(tf.clip_by_value(tf.round(-128.0 - lo / scale), -128.0, 127.0))

        # --- exact integer codes of the deployed kernels ---------------------------------
        def _act_range(self, tf, op, scale, zp):
            """TFLite's CalculateActivationRangeQuantized (float32 arithmetic)."""
            floor, ceiling = getattr(op.attrs, "activation", ir.Activation.NONE).float_range()
            qmin, qmax = self.act_min, self.act_max
            lo = (
                tf.constant(qmin)
                if not np.isfinite(floor)
                else tf.maximum(qmin, zp + integer.round_half_away(tf, floor / scale))
            )
            hi = (
                tf.constant(qmax)
                if not np.isfinite(ceiling)
                else tf.minimum(qmax, zp + integer.round_half_away(tf, ceiling / scale))
            )
            return lo, hi

        def _affine_codes(self, tf, op, codes, out_scale, out_zp):
            x_scale, x_zp = self.act_params(tf, op.inputs[0])
            w_scale = self.weight_scale(tf, op)
            w_codes = tf.cast(
                tf.clip_by_value(tf.round(self.kernels[op.name] / w_scale), -self.qmax, self.qmax), tf.float64
            )
            product_scale = tf.cast(x_scale, tf.float64) * tf.reshape(tf.cast(w_scale, tf.float64), (-1,))
            b_codes = tf.round(tf.cast(self.biases[op.name], tf.float64) / product_scale)
            x = codes[op.inputs[0]] - tf.cast(x_zp, tf.float64)
            acc = ops.definition(op).linear(tf, op, self.graph, x, w_codes)
            acc = tf.reshape(acc, (-1,) + self.graph[op.outputs[0]].shape[1:])
            lo, hi = self._act_range(tf, op, out_scale, out_zp)
            real_scale = product_scale / tf.cast(out_scale, tf.float64)
            if self.activation_bits == 16:  # tinyq deploys 16x8 layers with an int64 bias
                b_codes = tf.clip_by_value(b_codes, -(2.0**46), 2.0**46)
                return integer.requantize_int64(tf, tf.cast(acc + b_codes, tf.int64), real_scale, lo, hi)
            return integer.requantize(tf, tf.cast(acc + b_codes, tf.int64), real_scale, out_zp, lo, hi)

        def _average_pool_codes(self, tf, op, codes, out_scale, out_zp):
            """Window mean of the codes rounded half away from zero, padding not counted: TF's
            float64 average of integers is exact enough (a tie, n/2 over n, is representable)."""
            mean = integer.round_half_away(tf, ops.definition(op).pool(tf, op, self.graph, codes[op.inputs[0]]))
            lo, hi = self._act_range(tf, op, out_scale, out_zp)
            return tf.clip_by_value(mean, tf.cast(lo, tf.float64), tf.cast(hi, tf.float64))

        def _concatenation_codes(self, tf, op, codes, out_scale, out_zp):
            """The inputs' codes joined; an input quantized otherwise than the output first goes
            through the QUANTIZE deployment inserts (TFLM's Requantize)."""

            def f64(v):
                return tf.cast(v, tf.float64)

            group = self.groups.get(op.outputs[0])
            parts = []
            for name in op.inputs:
                if group is not None and self.groups.get(name, name) == group:
                    parts.append(codes[name])
                    continue
                scale, zp = self.act_params(tf, name)
                requantized = integer.requantize_codes(
                    tf, codes[name], (f64(scale), zp), (f64(out_scale), out_zp), self.act_min, self.act_max
                )
                parts.append(requantized)
            lo, hi = self._act_range(tf, op, out_scale, out_zp)
            return tf.clip_by_value(tf.concat(parts, axis=op.attrs.axis), f64(lo), f64(hi))

        def _exact_codes(self, tf, op, codes, out_scale, out_zp):
            if op is None:
                return None
            if isinstance(op.attrs, Softmax) and self.activation_bits == 16:
                scale, _ = self.act_params(tf, op.inputs[0])
                return integer.softmax_int16(tf, codes[op.inputs[0]], scale, op.attrs.beta)
            if isinstance(op.attrs, Concatenation) and not any(self.graph[n].is_constant for n in op.inputs):
                return self._concatenation_codes(tf, op, codes, out_scale, out_zp)
            if is_affine(op):
                return self._affine_codes(tf, op, codes, out_scale, out_zp)
            if isinstance(op.attrs, AveragePool2D):
                return self._average_pool_codes(tf, op, codes, out_scale, out_zp)
            if isinstance(op.attrs, Add) and not any(self.graph[n].is_constant for n in op.inputs):
                (sa, za), (sb, zb) = (self.act_params(tf, n) for n in op.inputs)
                lo, hi = self._act_range(tf, op, out_scale, out_zp)

                def f64(v):
                    return tf.cast(v, tf.float64)

                return integer.add(
                    tf,
                    codes[op.inputs[0]],
                    codes[op.inputs[1]],
                    (f64(sa), za),
                    (f64(sb), zb),
                    (f64(out_scale), out_zp),
                    lo,
                    hi,
                    left_shift=15 if self.activation_bits == 16 else 20,
                )
            return None

        # --- forward --------------------------------------------------------------------
        def call(self, inputs, training=False, return_logits=False):
            tf = tensorflow()
            graph = self.graph
            softmax = self.producers.get(graph.outputs[0])
            logits = (
                softmax.inputs[0]
                if return_logits and softmax is not None and isinstance(softmax.attrs, Softmax)
                else None
            )
            codes: dict[str, object] = {}

            def activation(name, value):
                group = self.groups.get(name, name)
                if not self.learnable and training and group == name:
                    self._track(tf, name, value)
                if name in self.state:
                    return value
                scale, zp = self.act_params(tf, name)
                factor = (
                    1.0 / math.sqrt(graph[name].size * self.act_max) if self.learnable and group is not None else 1.0
                )
                bits = self.activation_bits
                if group is None:
                    fq = fake_quant_activations(tf, value, scale, zp, bits=bits)
                else:
                    offset = self.act_offsets[group]
                    fq = fake_quant_activations(tf, value, self.act_scales[group], offset, factor, bits=bits)
                exact = self._exact_codes(tf, self.producers.get(name), codes, scale, zp)
                if exact is None:
                    exact = tf.cast(integer.round_half_away(tf, fq / scale) + zp, tf.float64)
                codes[name] = exact
                real = tf.cast((exact - tf.cast(zp, tf.float64)) * tf.cast(scale, tf.float64), tf.float32)
                return fq + tf.stop_gradient(real - fq)

            def weight(name, value):
                if name in self.kernel_of:
                    op = self.kernel_of[name]
                    factor = 1.0 / math.sqrt(graph[name].size * self.qmax) if self.learnable else 1.0
                    scale = self.weight_scales[op.name] if self.learnable else self.weight_scale(tf, op)
                    return fake_quant_weights(tf, self.kernels[op.name], scale, self.qmax, factor)
                if name in self.bias_of:
                    op = self.bias_of[name]
                    x_scale, _ = self.act_params(tf, op.inputs[0])
                    product = tf.stop_gradient(tf.reshape(x_scale * self.weight_scale(tf, op), (-1,)))
                    return round_ste(tf, self.biases[op.name] / product) * product
                return value

            x = activation(graph.inputs[0], tf.convert_to_tensor(inputs, tf.float32))
            out = forward(
                graph, {graph.inputs[0]: x}, weight=weight, activation=activation, keep={logits or graph.outputs[0]}
            )
            return out[logits or graph.outputs[0]]

    return QATModel
