"""The arena planner: never two live buffers on the same bytes, and tight."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tinyq.codegen.lower import choose_kernels
from tinyq.importers import load_model
from tinyq.plan import ArenaPlanner, Buffer, find_overlaps, plan_graph

buffers = st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 30), st.integers(0, 10)), min_size=1, max_size=40)


@settings(max_examples=300)
@given(buffers)
def test_greedy_plan_never_overlaps_and_respects_bounds(specs):
    planner = ArenaPlanner()
    for size, first, length in specs:
        planner.add_buffer(size, first, first + length)
    offsets, peak = planner.plan()
    assert find_overlaps(planner.buffers, offsets) == []
    assert all(off % 4 == 0 for off in offsets)
    assert all(off + b.size <= peak for off, b in zip(offsets, planner.buffers))
    live_peak = max(sum(b.size for b in planner.buffers if b.first <= t <= b.last) for t in range(41))
    assert live_peak <= peak <= sum(-(-b.size // 4) * 4 for b in planner.buffers)


@settings(max_examples=200)
@given(buffers, st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39), st.integers(-64, 2000)), max_size=8))
def test_allowed_overlaps_keep_their_lead(specs, allowances):
    """An output allowed to overlap a dying input starts at least `lead` bytes before it
    or does not touch it; everything else is as strict as ever."""
    planner = ArenaPlanner()
    for size, first, length in specs:
        planner.add_buffer(size, first, first + length)
    for out, into, lead in allowances:
        if out < len(specs) and into < len(specs) and out != into and (into, out) not in planner.leads:
            planner.allow_overlap(out, into, lead)
    offsets, peak = planner.plan()
    assert find_overlaps(planner.buffers, offsets, planner.leads) == []
    for (out, into), lead in planner.leads.items():
        a, b = planner.buffers[out], planner.buffers[into]
        touching = (
            a.overlaps_in_time(b)
            and a.size
            and b.size
            and offsets[out] < offsets[into] + b.size
            and offsets[into] < offsets[out] + a.size
        )
        assert not touching or offsets[out] + lead <= offsets[into]
    assert all(off + b.size <= peak for off, b in zip(offsets, planner.buffers))


def test_an_allowed_overlap_saves_the_output_buffer():
    planner = ArenaPlanner()
    planner.add_buffer(1000, 0, 3)  # alive across both ops, like a residual
    x = planner.add_buffer(1000, 1, 2)
    y = planner.add_buffer(1000, 2, 3)
    planner.allow_overlap(y, x, 40)
    offsets, peak = planner.plan()
    assert peak == 2040 and offsets[y] + 40 <= offsets[x]
    assert find_overlaps(planner.buffers, offsets) != []  # it is an overlap...
    assert find_overlaps(planner.buffers, offsets, planner.leads) == []  # ...an allowed one


def test_overlap_checker_finds_a_planted_conflict():
    bufs = [Buffer(100, 0, 3), Buffer(50, 2, 5), Buffer(80, 4, 6)]
    assert find_overlaps(bufs, [0, 60, 110]) == [(0, 1)]
    assert find_overlaps(bufs, [0, 100, 0]) == []  # 2 and 0 never live together
    assert find_overlaps(bufs, [0, 100, 120]) == [(1, 2)]


def test_disjoint_lifetimes_share_memory():
    planner = ArenaPlanner()
    planner.add_buffer(1000, 0, 1)
    planner.add_buffer(1000, 2, 3)
    offsets, peak = planner.plan()
    assert offsets == [0, 0] and peak == 1000


def test_mlperf_plans_beat_tflm_arena(mlperf_model, anchors):
    for key in ("kws", "ic", "ad"):
        graph = load_model(mlperf_model(key))
        plan = plan_graph(graph, choose_kernels(graph, fast=False))
        assert find_overlaps(list(plan.buffers), list(plan.buffer_offsets)) == []
        assert plan.arena_bytes <= anchors["models"][key]["cortex-m4/tflm+cmsis-nn"]["arena_bytes"]
        # the graph's largest live pair of activations is a lower bound
        assert plan.arena_bytes >= max(graph[op.outputs[0]].nbytes for op in graph.ops)


def test_reshape_aliases_and_add_runs_in_place(mlperf_model):
    graph = load_model(mlperf_model("ic"))
    plan = plan_graph(graph, choose_kernels(graph, fast=False))
    for op in graph.ops:
        if op.kind == "RESHAPE":
            assert plan.offsets[op.inputs[0]] == plan.offsets[op.outputs[0]]
    adds = [op for op in graph.ops if op.kind == "ADD"]
    assert any(plan.offsets[op.outputs[0]] in (plan.offsets[op.inputs[0]], plan.offsets[op.inputs[1]]) for op in adds)
    no_in_place = plan_graph(graph, choose_kernels(graph, fast=False), in_place=False)
    assert no_in_place.arena_bytes >= plan.arena_bytes
