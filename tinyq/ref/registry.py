"""Kernel registry: attrs class -> reference kernel.

A kernel is called as kernel(attrs, params, inputs, input_tensors,
output_tensors) and returns the output array (leading batch axis included; constants have none).
"""
KERNELS = {}


def kernel(*kinds):
    def register(fn):
        for kind in kinds:
            KERNELS[kind] = fn
        return fn
    return register
