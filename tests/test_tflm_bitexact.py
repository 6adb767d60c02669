"""The numpy integer reference against TFLite Micro, tensor by tensor."""

from __future__ import annotations

import pytest

from tinyq import ref
from tinyq.importers.tflite import parse_tflite

from support.cases import CASES, convert
from support.inputs import random_inputs, structured_input
from support.tflm import assert_every_tensor_matches

RANDOM_INPUTS = 20


@pytest.mark.parametrize("key", ["kws", "ic", "ad"])
def test_mlperf_model_every_tensor_bit_exact(key, mlperf_model, anchors):
    data = mlperf_model(key).read_bytes()
    graph = parse_tflite(data)
    x = structured_input(graph[graph.inputs[0]].shape)
    out = ref.outputs(graph, [x])[0]
    assert out.reshape(-1).tolist() == anchors["models"][key]["output_int8"]
    compared = assert_every_tensor_matches(data, graph, [x])
    assert compared == len(graph.ops) + len(graph.inputs)
    for inputs in random_inputs(graph, RANDOM_INPUTS, seed=hash(key) % 1000):
        assert_every_tensor_matches(data, graph, inputs)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_converter_case_every_tensor_bit_exact(case, case_dir):
    data = convert(case, case_dir).read_bytes()
    graph = parse_tflite(data)
    kinds = {op.kind for op in graph.ops}
    assert set(case.must_have) <= kinds, f"converted model has {sorted(kinds)}"
    if "fc_per_channel" in case.expect:
        fc = next(op for op in graph.ops if op.kind == "FULLY_CONNECTED")
        assert graph[fc.inputs[1]].qparams.per_channel_quantized == case.expect["fc_per_channel"]
    for inputs in random_inputs(graph, RANDOM_INPUTS + 1, seed=len(case.name)):
        assert_every_tensor_matches(data, graph, inputs)


def test_concat_and_add_cases_really_mix_scales(case_dir):
    """The 'different scales' rows must have inputs whose scales differ (for
    CONCATENATION the converter requantizes them to a shared scale first)."""
    for name, kind in (("add_different_scales", "ADD"), ("concat_different_scales", "CONCATENATION")):
        case = next(c for c in CASES if c.name == name)
        graph = parse_tflite(convert(case, case_dir).read_bytes())
        op = next(op for op in graph.ops if op.kind == kind)
        producers = graph.producers()

        def scale_before_requantize(tensor, graph=graph, producers=producers):
            source = producers.get(tensor)
            if source is not None and source.kind == "QUANTIZE":
                tensor = source.inputs[0]
            return graph[tensor].qparams.s

        assert len({scale_before_requantize(n) for n in op.inputs}) == 2, f"{name}: branches share one scale"
