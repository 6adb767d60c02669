"""Static arena planning: every activation and scratch buffer gets a fixed offset.

The planner's contract is TFLite Micro's: `add_buffer(size, first, last)`
registers a buffer alive from op `first` to op `last` (inclusive), `plan()`
returns offsets and the peak. Placement is greedy (largest first, lowest gap
that fits among buffers alive at the same time); `find_overlaps` is the
oracle tests check plans against.

`plan_graph` turns a graph into buffers: a RESHAPE output shares its input's
buffer, elementwise ops write over an input that dies at that op, and each
op's scratch (im2col and the like) is a buffer alive for that op only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from tinyq.ir import Add, Graph, Logistic, Mul, Quantize, Reshape, Softmax

ALIGNMENT = 4
# Ops whose kernels may write their output over an input of the same size:
# each output element depends only on input elements at the same index (or,
# for SOFTMAX, on its row, which the kernel reads fully before writing).
IN_PLACE_OPS = (Add, Mul, Logistic, Softmax, Quantize)


def align(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class Buffer:
    size: int
    first: int
    last: int
    label: str = ""

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


class ArenaPlanner:
    def __init__(self, alignment: int = ALIGNMENT):
        self.alignment = alignment
        self.buffers: list[Buffer] = []

    def add_buffer(self, size: int, first: int, last: int, label: str = "") -> int:
        if size < 0 or first > last:
            raise ValueError(f"bad buffer: size {size}, lifetime {first}..{last}")
        self.buffers.append(Buffer(size, first, last, label))
        return len(self.buffers) - 1

    def plan(self) -> tuple[list[int], int]:
        """Offsets (one per buffer, in add order) and the arena's peak size."""
        order = sorted(range(len(self.buffers)), key=lambda i: (-self.buffers[i].size, self.buffers[i].first, i))
        offsets: list[int | None] = [None] * len(self.buffers)
        placed: list[int] = []
        for i in order:
            buf = self.buffers[i]
            offsets[i] = self._lowest_fit(buf, [(offsets[j], self.buffers[j]) for j in placed
                                                if self.buffers[j].overlaps_in_time(buf)])
            placed.append(i)
        peak = max((off + b.size for off, b in zip(offsets, self.buffers)), default=0)
        return offsets, align(peak, self.alignment)

    def _lowest_fit(self, buf: Buffer, live: list[tuple[int, Buffer]]) -> int:
        candidate = 0
        for offset, other in sorted(live, key=lambda item: item[0]):
            if candidate + buf.size <= offset:
                break
            candidate = max(candidate, align(offset + other.size, self.alignment))
        return candidate


def find_overlaps(buffers: list[Buffer], offsets: list[int]) -> list[tuple[int, int]]:
    """Pairs of buffers alive at the same time whose byte ranges intersect."""
    conflicts = []
    for i, a in enumerate(buffers):
        for j in range(i + 1, len(buffers)):
            b = buffers[j]
            if a.size and b.size and a.overlaps_in_time(b) and \
                    offsets[i] < offsets[j] + b.size and offsets[j] < offsets[i] + a.size:
                conflicts.append((i, j))
    return conflicts


@dataclass(frozen=True)
class MemoryPlan:
    arena_bytes: int
    offsets: Mapping[str, int]            # tensor name -> arena offset
    scratch: Mapping[str, tuple[int, int]]  # op name -> (offset, bytes)
    buffers: tuple[Buffer, ...]
    buffer_offsets: tuple[int, ...]

    def table(self) -> str:
        """A printable plan: one line per buffer, by offset."""
        rows = sorted(zip(self.buffer_offsets, self.buffers), key=lambda r: (r[0], r[1].first))
        width = max((len(b.label) for _, b in rows), default=5)
        lines = [f"arena {self.arena_bytes} bytes", f"{'offset':>8} {'bytes':>8} {'ops':>9}  buffer"]
        lines += [f"{off:>8} {b.size:>8} {f'{b.first}..{b.last}':>9}  {b.label:<{width}}" for off, b in rows]
        return "\n".join(lines)


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


def plan_graph(graph: Graph, scratch_bytes: Mapping[str, int] | None = None, *,
               in_place: bool = True, alignment: int = ALIGNMENT) -> MemoryPlan:
    scratch_bytes = scratch_bytes or {}
    life = lifetimes(graph)
    group = {name: name for name in life}           # tensor -> representative tensor of its buffer
    members = {name: [name] for name in life}

    def merge(keep: str, other: str) -> None:
        root = group[keep]
        for t in members.pop(group[other]):
            group[t] = root
            members[root].append(t)

    for i, op in enumerate(graph.ops):
        out = op.outputs[0]
        if isinstance(op.attrs, Reshape):
            merge(op.inputs[0], out)
        elif in_place and isinstance(op.attrs, IN_PLACE_OPS):
            for name in op.inputs:
                t = graph[name]
                if t.is_constant or t.nbytes != graph[out].nbytes:
                    continue
                if max(life[m][1] for m in members[group[name]]) == i and name not in graph.outputs:
                    merge(name, out)
                    break

    planner = ArenaPlanner(alignment)
    tensor_buffer = {}
    for root, names in members.items():
        size = max(graph[n].nbytes for n in names)
        first = max(0, min(life[n][0] for n in names))
        last = max(life[n][1] for n in names)
        tensor_buffer[root] = planner.add_buffer(size, first, last, " = ".join(names))
    scratch_ids = {}
    for i, op in enumerate(graph.ops):
        if scratch_bytes.get(op.name, 0) > 0:
            scratch_ids[op.name] = planner.add_buffer(scratch_bytes[op.name], i, i, f"scratch of {op.name}")
    offsets, peak = planner.plan()
    conflicts = find_overlaps(planner.buffers, offsets)
    if conflicts:
        raise AssertionError(f"memory plan overlaps: {conflicts}")
    return MemoryPlan(
        arena_bytes=peak,
        offsets={name: offsets[tensor_buffer[group[name]]] for name in life},
        scratch={op: (offsets[b], planner.buffers[b].size) for op, b in scratch_ids.items()},
        buffers=tuple(planner.buffers), buffer_offsets=tuple(offsets))
