"""PAD (and PADV2 with the zero point as its value): pads with real 0.0, the zero point in int8.
The output shares the input's quantization. Kernel: pad_s8.

int16 (16x8): TFLM pads with 0 (its int16 Eval ignores the zero point, which 16x8 activations
have at 0 anyway: the same real 0.0). Kernel: pad_s16, the template with int16_t elements."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tinyq.ops import Kernel, OpDef, OutputQuant, Unsupported, definition, register
from tinyq.ops.common import FLOAT, INT16, WITH_INT16, activation_tensor, count, dims4, expect, same_quant


@dataclass(frozen=True)
class Pad:
    """Pads with the zero point (value 0.0 in real terms)."""

    paddings: tuple[tuple[int, int], ...]


def _paddings(r, index: int, rank: int):
    pads = r.constant(index, "PAD paddings")
    if pads.shape != (rank, 2):
        raise Unsupported(f"paddings of shape {pads.shape} for a rank-{rank} input")
    return tuple((int(a), int(b)) for a, b in pads)


@register
class PadOp(OpDef):
    attrs = Pad
    name = "PAD"
    tflite_aliases = ("PADV2",)
    signatures = WITH_INT16
    output_quant = OutputQuant.INPUT

    def check(self, a, ins, outs):
        count(ins, outs, 1)
        x, y = ins[0], outs[0]
        expect(len(a.paddings) == len(x.shape), "one (before, after) pair per dimension")
        expect(all(p >= 0 for pair in a.paddings for p in pair), "negative padding")
        shape = tuple(d + p + q for d, (p, q) in zip(x.shape, a.paddings))
        expect(y.shape == shape, f"output shape {y.shape}, expected {shape}")
        activation_tensor(x, "input")
        same_quant(x, y, "pad")

    def params(self, attrs, ins, outs):
        return None  # data movement: no arithmetic

    def reference(self, a, p, ins, in_tensors, outs):
        value = 0 if in_tensors[0].dtype == FLOAT else in_tensors[0].qparams.zp
        return np.pad(ins[0], ((0, 0),) + a.paddings, constant_values=value)

    def forward(self, tf, op, graph, xs):
        return tf.pad(xs[0], [list(p) for p in op.attrs.paddings])

    def propagate_range(self, op, ranges):
        return ranges[0]

    def kernel(self, op, graph, fast):
        if graph[op.inputs[0]].dtype == INT16:
            return Kernel("pad_s16", "pad_s8", {"int16": True})
        return Kernel("pad_s8")

    def lower(self, ctx, kernel):
        x = ctx.tensor(0)
        pads = ctx.op.attrs.paddings
        before = [0] * (4 - len(pads)) + [p[0] for p in pads]
        return {
            "input_dims": dims4(x.shape),
            "pad_before": before,
            "value": x.qparams.zp,
            "output_dims": dims4(ctx.out.shape),
            "input": ctx.input(),
            "output": ctx.output(),
        }

    def read_tflite(self, r, op, inputs, outputs):
        x = r.tensor(inputs[0])
        if len(inputs) > 2:  # PADV2: a constant value, which must be real 0.0
            value = r.constant(inputs[2], "PADV2 constant").reshape(-1)
            zero = 0 if x.dtype == FLOAT else x.qparams.zp
            if value.size != 1 or value[0] != zero:
                raise Unsupported("padding with a value other than zero is not supported")
        return Pad(_paddings(r, inputs[1], len(x.shape))), inputs[:1]

    def write_tflite(self, writer, op):
        pads = writer.constant(f"{op.name}/paddings", np.array(op.attrs.paddings, np.int32))
        writer.add_op(
            "PAD", [writer.tensor(op.inputs[0]), pads], [writer.tensor(op.outputs[0])], writer.options("PadOptions")
        )


def folded_into_convolutions(graph):
    """A PAD whose only reader is a CONV_2D or DEPTHWISE_CONV_2D becomes part of that
    convolution's padding: PAD writes the zero point (real 0.0), exactly what a convolution's
    padding stands for, so the values are unchanged and one copy and one buffer go. Only the
    spatial axes, and at most the kernel's extent less one on each side (the padding TFLM's
    SAME produces; every window still reads the input)."""
    from tinyq.ir import Op, Padding2D

    graph = _pads_after_unit_height(graph)
    consumers = graph.consumers()
    producers = graph.producers()
    rename, kept = {}, []
    for op in graph.ops:
        source = producers.get(op.inputs[0]) if op.inputs else None
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and source is not None and source.kind == "PAD":
            padding = _merged_padding(source, op, graph, consumers)
            if padding is not None:
                rename[source.outputs[0]] = source.inputs[0]
                op = Op(op.name, replace(op.attrs, padding=Padding2D(*padding)), op.inputs, op.outputs)
        kept.append(op)
    kept = [
        Op(op.name, op.attrs, tuple(rename.get(n, n) for n in op.inputs), op.outputs)
        for op in kept
        if not (op.kind == "PAD" and op.outputs[0] in rename)
    ]
    return graph.replace(ops=tuple(kept)).pruned()


def _merged_padding(pad, conv, graph, consumers) -> tuple[int, int, int, int] | None:
    (n0, n1), (top, bottom), (left, right), (c0, c1) = pad.attrs.paddings
    ins, outs = [graph[n] for n in conv.inputs], [graph[n] for n in conv.outputs]
    if not definition(conv).implements(ins, outs):
        return None  # (an int16 convolution before its kernel exists, say) verify names the op
    if n0 or n1 or c0 or c1 or len(consumers[pad.outputs[0]]) != 1 or pad.outputs[0] in graph.outputs:
        return None
    p = conv.attrs.padding
    merged = (p.top + top, p.bottom + bottom, p.left + left, p.right + right)
    kh, kw = graph[conv.inputs[1]].shape[1:3]
    extent_h, extent_w = (kh - 1) * conv.attrs.dilation[0] + 1, (kw - 1) * conv.attrs.dilation[1] + 1
    if max(merged[:2]) >= extent_h or max(merged[2:]) >= extent_w:
        return None
    return merged


def _pads_after_unit_height(graph):
    """A 1-D layer's PAD of the sequence (Keras's ZeroPadding1D, the causal padding of layers that
    take none) before the RESHAPE to the unit-height image its convolution reads: the RESHAPE
    first, then the PAD of the image's width, which `folded_into_convolutions` can fold."""
    from tinyq.ir import Op, Tensor

    consumers, producers = graph.consumers(), graph.producers()
    ops, tensors = [], []
    for op in graph.ops:
        pad = producers.get(op.inputs[0]) if op.kind == "RESHAPE" else None
        x = graph[pad.inputs[0]] if pad is not None and pad.kind == "PAD" else None
        if (
            x is None
            or len(x.shape) != 3
            or len(consumers[pad.outputs[0]]) != 1
            or pad.outputs[0] in graph.outputs
            or graph[op.outputs[0]].shape != (x.shape[0], 1, *graph[pad.outputs[0]].shape[1:])
        ):
            ops.append(op)
            continue
        image = Tensor(f"{op.outputs[0]}/unpadded", (x.shape[0], 1, *x.shape[1:]), x.dtype, x.qparams)
        tensors.append(image)
        ops.remove(pad)
        paddings = ((0, 0), (0, 0), *pad.attrs.paddings[1:])
        ops += [Op(op.name, op.attrs, (x.name,), (image.name,)), Op(pad.name, Pad(paddings), (image.name,), op.outputs)]
    return graph.with_tensors(*tensors).replace(ops=tuple(ops)).pruned()
