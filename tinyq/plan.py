"""Static arena planning: every activation and scratch buffer gets a fixed offset.

The planner's contract is TFLite Micro's: `add_buffer(size, first, last)`
registers a buffer alive from op `first` to op `last` (inclusive), `plan()`
returns offsets and the peak. Placement is greedy (lowest offset that fits
among buffers alive at the same time), tried in a few orders -- TFLM's
largest-first and others -- keeping the smallest peak; `find_overlaps` is
the oracle tests check plans against. One extension: `allow_overlap(out,
into, lead)` lets an op's output share bytes with an input that dies at that
op, provided the output starts at least `lead` bytes before it (the kernel
writes in order and never overtakes its reads; the kernel's planner twin
computes the lead).

`plan_graph` turns a graph and the kernel chosen for each op into buffers:
what each kernel says about its memory decides the rest (an aliasing kernel's
output shares its input's buffer; an elementwise kernel, or one that writes in
place, writes over an input that dies at its op; a kernel with an overlap
lead may start its output just before its dying input), and each op's
scratch (im2col and the like) is a buffer alive for that op only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tinyq.ir import Graph
from tinyq.ops import InPlace, Kernel

ALIGNMENT = 4


def align(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class Buffer:
    size: int
    first: int
    last: int
    tensors: tuple[str, ...] = ()  # the tensors sharing this buffer
    scratch_of: str | None = None  # or the op whose scratch it is

    @property
    def label(self) -> str:
        return f"scratch of {self.scratch_of}" if self.scratch_of is not None else " = ".join(self.tensors)

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


def _intersect(a_off: int, a: Buffer, b_off: int, b: Buffer) -> bool:
    return a_off < b_off + b.size and b_off < a_off + a.size


def _conflict(i: int, i_off: int, j: int, j_off: int, buffers: list[Buffer], leads: Mapping) -> bool:
    """Do buffers i and j (alive together) clash at these offsets?"""
    a, b = buffers[i], buffers[j]
    if not (a.size and b.size and _intersect(i_off, a, j_off, b)):
        return False
    if (i, j) in leads:
        return i_off + leads[i, j] > j_off
    if (j, i) in leads:
        return j_off + leads[j, i] > i_off
    return True


class ArenaPlanner:
    def __init__(self, alignment: int = ALIGNMENT):
        self.alignment = alignment
        self.buffers: list[Buffer] = []
        self.leads: dict[tuple[int, int], int] = {}

    def allow_overlap(self, out: int, into: int, lead: int) -> None:
        """Buffer `out` may overlap buffer `into` if it starts at least `lead` bytes before it."""
        self.leads[out, into] = lead

    def add_buffer(
        self, size: int, first: int, last: int, tensors: tuple[str, ...] = (), scratch_of: str | None = None
    ) -> int:
        if size < 0 or first > last:
            raise ValueError(f"bad buffer: size {size}, lifetime {first}..{last}")
        self.buffers.append(Buffer(size, first, last, tuple(tensors), scratch_of))
        return len(self.buffers) - 1

    def plan(self) -> tuple[list[int], int]:
        """Offsets (one per buffer, in add order) and the arena's peak size: the best of
        greedy placements in a few orders (TFLM's largest-first among them)."""
        b = self.buffers
        orders = [
            lambda i: (-b[i].size, b[i].first, i),
            lambda i: (-b[i].size, -b[i].first, i),
            lambda i: (-b[i].size * (b[i].last - b[i].first + 1), i),
            lambda i: (b[i].first, -b[i].size, i),
        ]
        return min((self._place(sorted(range(len(b)), key=key)) for key in orders), key=lambda result: result[1])

    def _place(self, order: list[int]) -> tuple[list[int], int]:
        offsets: list = [None] * len(self.buffers)
        placed: list[int] = []
        for i in order:
            live = [j for j in placed if self.buffers[j].overlaps_in_time(self.buffers[i])]
            offsets[i] = self._lowest_fit(i, live, offsets)
            placed.append(i)
        peak = max((off + b.size for off, b in zip(offsets, self.buffers)), default=0)
        return offsets, align(peak, self.alignment)

    def _lowest_fit(self, i: int, live: list[int], offsets: list) -> int:
        """The lowest offset clashing with no live buffer: 0, the end of a live buffer, or
        where an allowed overlap may start."""
        candidates = {0} | {align(offsets[j] + self.buffers[j].size, self.alignment) for j in live}
        candidates |= {align(offsets[j] + self.leads[j, i], self.alignment) for j in live if (j, i) in self.leads}
        for c in sorted(candidates):
            if c >= 0 and not any(_conflict(i, c, j, offsets[j], self.buffers, self.leads) for j in live):
                return c
        raise AssertionError("unreachable: the end of the highest live buffer always fits")


def find_overlaps(
    buffers: list[Buffer], offsets: list[int], leads: Mapping[tuple[int, int], int] | None = None
) -> list[tuple[int, int]]:
    """Pairs of buffers alive at the same time whose byte ranges clash (an allowed
    overlap that keeps its lead does not)."""
    leads = leads or {}
    return [
        (i, j)
        for i, a in enumerate(buffers)
        for j in range(i + 1, len(buffers))
        if a.overlaps_in_time(buffers[j]) and _conflict(i, offsets[i], j, offsets[j], buffers, leads)
    ]


@dataclass(frozen=True)
class MemoryPlan:
    arena_bytes: int
    offsets: Mapping[str, int]  # tensor name -> arena offset
    scratch: Mapping[str, tuple[int, int]]  # op name -> (offset, bytes)
    state: Mapping[str, tuple[int, int]]  # op name -> (offset, bytes) of state kept across calls
    buffers: tuple[Buffer, ...]
    buffer_offsets: tuple[int, ...]
    leads: Mapping[tuple[int, int], int] = field(default_factory=dict)  # allowed overlaps (see ArenaPlanner)


def lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    """First and last op index touching each activation tensor. Graph inputs
    are born before op 0; graph outputs live past the last op."""
    end = len(graph.ops)
    span: dict[str, list[int]] = {name: [-1, -1] for name in graph.inputs}
    for i, op in enumerate(graph.ops):
        for name in op.outputs:
            span[name] = [i, i]
        for name in op.inputs:
            if name in span:
                span[name][1] = i
    for name in graph.outputs:
        span[name][1] = end
    return {name: (first, last) for name, (first, last) in span.items()}


def plan_graph(
    graph: Graph, kernels: Mapping[str, Kernel], *, in_place: bool = True, alignment: int = ALIGNMENT
) -> MemoryPlan:
    """The arena plan for `kernels` (op name -> the kernel chosen for it); `in_place=False`
    gives every tensor its own bytes (aliasing kernels aside)."""
    life = lifetimes(graph)
    group = {name: name for name in life}  # tensor -> representative tensor of its buffer
    members = {name: [name] for name in life}

    def merge(keep: str, other: str) -> None:
        root = group[keep]
        for t in members.pop(group[other]):
            group[t] = root
            members[root].append(t)

    def dies_at(name: str, i: int) -> bool:
        return max(life[m][1] for m in members[group[name]]) == i and name not in graph.outputs

    for i, op in enumerate(graph.ops):
        if not op.outputs:  # a variable's assignment: its input goes to the op's state
            continue
        out, mode = op.outputs[0], kernels[op.name].in_place
        if mode == InPlace.ALIAS:
            merge(op.inputs[0], out)
        elif in_place and mode == InPlace.ELEMENTWISE:
            for name in op.inputs:
                t = graph[name]
                if not t.is_constant and t.nbytes == graph[out].nbytes and dies_at(name, i):
                    merge(name, out)
                    break
        elif (
            in_place
            and mode == InPlace.FIRST_INPUT
            and graph[out].nbytes <= graph[op.inputs[0]].nbytes
            and dies_at(op.inputs[0], i)
        ):
            merge(op.inputs[0], out)

    planner = ArenaPlanner(alignment)
    tensor_buffer = {}
    for root, names in members.items():
        size = max(graph[n].nbytes for n in names)
        first = max(0, min(life[n][0] for n in names))
        last = max(life[n][1] for n in names)
        tensor_buffer[root] = planner.add_buffer(size, first, last, tuple(names))
    scratch_ids, state_ids = {}, {}
    for i, op in enumerate(graph.ops):
        kernel = kernels[op.name]
        if kernel.state_bytes > 0:  # alive from before the first op to after the last: never shared
            end = len(graph.ops)
            state_ids[op.name] = planner.add_buffer(kernel.state_bytes, -1, end, scratch_of=f"{op.name} state")
        if kernel.scratch_bytes > 0:
            scratch_ids[op.name] = planner.add_buffer(kernel.scratch_bytes, i, i, scratch_of=op.name)
        if kernel.overlap_lead is None:
            continue
        source, out = group[op.inputs[0]] if op.inputs[0] in group else None, group[op.outputs[0]]
        if in_place and source is not None and source != out and dies_at(op.inputs[0], i):
            planner.allow_overlap(tensor_buffer[out], tensor_buffer[source], kernel.overlap_lead)
    offsets, peak = planner.plan()
    conflicts = find_overlaps(planner.buffers, offsets, planner.leads)
    if conflicts:
        raise AssertionError(f"memory plan overlaps: {conflicts}")
    return MemoryPlan(
        arena_bytes=peak,
        offsets={name: offsets[tensor_buffer[group[name]]] for name in life},
        scratch={op: (offsets[b], planner.buffers[b].size) for op, b in scratch_ids.items()},
        state={op: (offsets[b], planner.buffers[b].size) for op, b in state_ids.items()},
        buffers=tuple(planner.buffers),
        buffer_offsets=tuple(offsets),
        leads=dict(planner.leads),
    )
