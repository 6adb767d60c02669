"""RESHAPE, CONCATENATION and PAD: data movement only."""
from __future__ import annotations

import numpy as np

from tinyq.ir import Concatenation, Pad, Reshape
from tinyq.ref.registry import kernel


@kernel(Reshape)
def reshape(a, p, ins, in_tensors, outs):
    return ins[0].reshape((ins[0].shape[0],) + outs[0].shape)


@kernel(Concatenation)
def concatenation(a, p, ins, in_tensors, outs):
    axis = a.axis % len(outs[0].shape) + 1
    return np.concatenate(ins, axis=axis)


@kernel(Pad)
def pad(a, p, ins, in_tensors, outs):
    x = ins[0]
    value = 0 if in_tensors[0].dtype == "float32" else in_tensors[0].qparams.zp
    return np.pad(x, ((0, 0),) + a.paddings, constant_values=value)
