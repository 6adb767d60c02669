"""Quantization-aware training for Keras 3.

    qat_model = tinyq.qat.prepare("model.keras", calib_x, bits="w4a8")   # a keras.Model
    tinyq.qat.fit(qat_model, x_train, y_train, epochs=3)                 # or your own loop
    graph = tinyq.qat.convert(qat_model)                                 # the int8 IR tinyq deploys

`bits="w8a16"` simulates and converts to TFLite Micro's 16x8 form instead: every
activation int16 (symmetric, zero point 0, not learned), int8 weights, int64 biases.

`prepare` imports the model into tinyq's IR (BatchNorm folded as deployment
folds it), initializes every quantizer from post-training quantization (MSE
ranges by default) and returns a Keras model whose forward pass simulates the
deployed arithmetic: weights fake-quantized per channel (or per tensor) at
2-8 bits, biases at input scale x weight scale, activations at int8 (int16 for
w8a16) where deployment quantizes them (after fused activations, at ADD and
CONCATENATION outputs; pooling keeps its input's parameters; SOFTMAX and
LOGISTIC at 1/256, or 1/32768 at int16), and the requantizing ops' codes computed exactly as the
integer kernels compute them. Rounding uses the straight-through estimator.

Exact at both precisions: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (int16: the
int64-bias form, TFLM's int64 MultiplyByQuantizedMultiplier), ADD of two activations
(int16: 15-bit headroom), AVERAGE_POOL_2D, CONCATENATION (with the QUANTIZE of an input
of another scale), data movement; SOFTMAX exact at int16 only (TFLM's tables). Float
fake quantization (a code off at most, at int16 a code or two of 65536): SOFTMAX at
int8, LOGISTIC, TANH and every other requantizing op (MEAN, MUL, SUB, ...).

Step sizes and activation offsets are learnable (LSQ, Esser et al. 2020, with
its gradient scaling); with `learnable=False`, activation ranges follow an
exponential moving average of the observed min/max and weight scales their
current max.

The algorithms are in tinyq.qat.train; the Keras model in tinyq.qat.model.
"""

from tinyq.qat.train import convert, fit, prepare

__all__ = ["convert", "fit", "prepare"]
