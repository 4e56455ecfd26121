"""Memory plan: liveness, buffers, blocks, in-place updates and where they move.

The second pass of the generator, over the :class:`~codegen.schedule.Statement` records.
A line with a ``call`` gets a buffer: one whose value is dead (liveness over the lines),
or, for an op that declares ``elementwise``, the buffer of an input read for the last
time on that line. Buffers of different shapes never live at the same time share one
block. In-place updates ``w -= d`` move up to where nothing below reads ``w``. When a
buffer takes a new value, the names still bound to its old one are deleted, so every
name in the generated code means what it says.

What a value may share memory with comes from the ops' ``view_of`` facts: an op that
declares nothing is taken to alias all of its inputs.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter
from typing import NamedTuple

import numpy as np

from symgraph.graph import Constant, Node, Parameter

from .naming import identifier
from .schedule import UPDATES, Schedule, Statement

_BOOL = np.dtype(bool).str  # the dtype of a scratch buffer holding truth values
END = float("inf")  # where the live interval of a value read after the last line of the body ends


class MemoryPlan:
    """Buffers and in-place updates for the statements of one :class:`Schedule`."""

    def __init__(self, schedule: Schedule):
        self.s = schedule
        self.p = schedule.p
        self.updated = {id(s) for s, _ in self.p.updates}
        self.allocations: list[tuple[str, Array]] = []  # (buffer name, its shape and dtype)
        self.live: dict[str, list[tuple[int, float]]] = {}  # buffer -> (first, last line) of each value
        self.shared: dict[str, tuple[str, list[str]]] = {}  # buffer -> (block, its members)
        self._roots: dict[int, tuple[Node, ...]] = {}

    def run(self, statements: list[Statement], plan: bool) -> tuple[list[Statement], list[Statement], list[str]]:
        """(body statements, update statements for the end, returned names)."""
        self.buffered = {id(st.node) for st in statements if st.call is not None}
        moved: set[int] = set()
        if plan and self.p.early_updates:
            statements, moved = self._move_updates(statements)
        tail, returns = self._finish(moved)
        s = self.s
        kept = list(self.p.outputs) + [s.inplace[id(v)][1] if id(v) in s.inplace else v
                                       for _, v in self.p.updates if id(v) not in moved | s.into_state.keys()]
        kept += [x for n in kept if id(n) in s.folded for x in n.inputs]  # a GEMM at the end reads them
        self._assign_buffers(statements, kept)
        self._blocks()
        return self._release(statements), tail, returns

    def roots(self, node: Node) -> tuple[Node, ...]:
        """The values whose arrays ``node``'s value may share memory with: itself, or through
        views and aliases (an op without a ``view_of`` fact may alias every input)."""
        key = id(node)
        found = self._roots.get(key)
        if found is None:
            alias = self.s.aliases.get(key)
            view_of = node.op.view_of
            if alias is not None:
                found = self.roots(alias)
            elif view_of == ():
                found = (node,)
            else:
                sources = node.inputs if view_of is None else [node.inputs[i] for i in view_of]
                found = tuple(dict.fromkeys(((node,) if view_of is None else ()) +
                                            tuple(r for x in sources for r in self.roots(x))))
            self._roots[key] = found
        return found

    def _reads_state(self, node: Node) -> bool:
        return any(id(r) in self.updated for r in self.roots(node))

    def _last_reads(self, statements: list[Statement]) -> dict[int, float]:
        """Value id -> the last line reading it (or a view of it)."""
        last: dict[int, float] = {}
        for i, st in enumerate(statements):
            for n in st.reads:
                for r in self.roots(n):
                    last[id(r)] = i
        return last

    # -- in-place updates --------------------------------------------------------------
    def _move_updates(self, statements: list[Statement]) -> tuple[list[Statement], set[int]]:
        """Move each in-place update ``w -= step`` up to just after the last line that reads ``w``
        and the lines that compute ``step``, when nothing else left for the end reads ``w``: the
        step's buffer is free from there on, so the backward pass of a deep network needs one
        weight-gradient buffer rather than one per layer. Returns the ids of the moved values."""
        p, s = self.p, self.s
        defined = {id(st.node): i for i, st in enumerate(statements) if st.node is not None}
        last_read = self._last_reads(statements)
        late = list(p.outputs) + [s.inplace[id(v)][1] if id(v) in s.inplace else v for _, v in p.updates]
        # what is read at the end (outputs, updates), followed through views back to what they show
        read_late = Counter(id(r) for v in late for n in s.reads[id(v)] for r in self.roots(n))
        inserts: dict[int, list[Statement]] = {}
        moved = set()
        for state, value in p.updates:
            if id(value) not in s.inplace:
                continue
            sign, step = s.inplace[id(value)]
            reads = s.reads[id(step)]
            if (any(self._reads_state(n) for n in reads | {step})  # it reads a state: keep the order
                    or read_late[id(state)]):  # something else reads it (or a view of it) at the end
                continue
            j = max([last_read.get(id(state), -1)] + [defined.get(id(n), -1) for n in reads])
            if j < 0:
                continue
            name = s.names[id(state)]
            text, op, how = s.update_line(state, sign, step)
            inserts.setdefault(j, []).append(Statement(
                name, text, f"update {name} here: nothing below reads it" + (f" ({how})" if how else ""),
                statements[j].section, reads=reads | {state}, op=op))
            moved.add(id(value))
        if not inserts:
            return statements, moved
        out = []
        for i, st in enumerate(statements):
            out.append(st)
            out.extend(inserts.get(i, ()))
        return out, moved

    def _finish(self, moved: set[int]) -> tuple[list[Statement], list[str]]:
        """Statements that apply the updates (except those already ``moved`` into the body), and
        the names the function returns."""
        s = self.s
        tail, returns = [], []
        for out in self.p.outputs:
            name = s.codes[id(out)].text
            if self._must_copy(out):  # the caller gets its own array: not one a later update or call changes
                name = self._snapshot(tail, f"{identifier(name)}_out", out, "a copy for the caller")
            returns.append(name)
        assigns = []
        for state, value in self.p.updates:
            if id(value) in moved or id(value) in s.into_state:  # applied already, or written in place
                continue
            name = s.names[id(state)]
            sign, step = s.inplace.get(id(value), ("", value))
            text = s.codes[id(step)].text
            if self._reads_state(step):
                snap = f"step_{name}" if sign else f"new_{name}"
                text = self._snapshot(tail, snap, step, "read before any write")
            if sign and id(step) in s.folded:
                text, op, how = s.update_line(state, sign, step)
                assigns.append(Statement(name, text, f"update {name} in place: {how}", UPDATES, op=op))
            elif sign:
                comment = f"update {name} in place: {s.comments.describe(value)}"
                assigns.append(Statement(name, text, comment, UPDATES, op=f"{sign}="))
            else:
                assigns.append(Statement(f"{name}[...]", text, f"update {name}", UPDATES))
        return tail + assigns, returns

    def _must_copy(self, out: Node) -> bool:
        """Whether a returned value may be an array that an update or the next call changes."""
        return any(id(r) in self.updated or id(r) in self.buffered
                   or (isinstance(r.op, (Parameter, Constant)) and r.ndim) for r in self.roots(out))

    def _snapshot(self, tail: list[Statement], base: str, node: Node, comment: str) -> str:
        name = self.s.namer.unique(base)
        code = f"{self.s.printer.obj(self.s.codes[id(node)], node)}.copy()"
        tail.append(Statement(name, code, comment, UPDATES))
        return name

    # -- buffers -------------------------------------------------------------------------
    def _assign_buffers(self, statements: list[Statement], kept: list[Node]):
        """Give each line with a call a buffer: reuse one whose value is dead, or, for an
        elementwise op, the buffer of an input read for the last time by that line; and the
        scratch buffers a lowered call needs, live on that line only (never an input's)."""
        last = self._last_reads(statements)
        for n in kept:  # returned, or read by the updates after the last line
            for r in self.roots(n):
                last[id(r)] = END
        free: dict[tuple, list[str]] = {}
        held: list[tuple] = []  # heap of (last line reading the value, line writing it, buffer, key)
        self.buffer_of: dict[int, str] = {}  # value id -> its buffer
        for i, st in enumerate(statements):
            if st.call is None:
                continue
            node = st.node
            inputs_here = set()  # buffers of inputs read for the last time on this line
            while held and (held[0][0] < i or (node.op.elementwise and held[0][0] == i)):
                end, _, buf, key = heapq.heappop(held)
                free.setdefault(key, []).append(buf)
                if end == i:
                    inputs_here.add(buf)
            if st.buffer is None:  # (a new state written in place comes with its own array)
                key = (node.shape, node.dtype.str)
                buf = free[key].pop() if free.get(key) else self._allocate(node.shape, node.dtype)
                end = last.get(id(node), -1)
                heapq.heappush(held, (end, i, buf, key))
                self.live.setdefault(buf, []).append((i, max(i, end)))
                st.buffer = buf
            self.buffer_of[id(node)] = st.buffer
            st.aliased = self._aliased(st)
            taken = inputs_here | {st.buffer}
            kinds = st.call.scratch_kinds(st.aliased)
            shape = st.call.scratch_shape(node.shape, st.buffer, st.aliased) if kinds else node.shape
            keys = [(shape, _BOOL if boolean else node.dtype.str) for boolean in kinds]
            st.scratch = tuple(self._scratch(free.setdefault(key, []), taken, key, i) for key in keys)
            for key, buf in zip(keys, st.scratch):  # free after this line: next a scratch again, not a value's buffer
                free[key].insert(0, buf)

    def _allocate(self, shape, dtype) -> str:
        buf = self.s.namer.numbered("buf")
        self.allocations.append((buf, Array(shape, np.dtype(dtype))))
        return buf

    def _scratch(self, pool: list[str], taken: set, key: tuple, i: int) -> str:
        """A scratch buffer (shape, dtype ``key``) for line ``i``, none of ``taken``: a dead one from
        ``pool``, or a new one."""
        for k in range(len(pool) - 1, -1, -1):  # the last dead one: from the end, not a scan of the whole pool
            if pool[k] not in taken:
                buf = pool.pop(k)
                break
        else:
            buf = self._allocate(*key)
        taken.add(buf)
        self.live.setdefault(buf, []).append((i, i))
        return buf

    def _aliased(self, st: Statement) -> frozenset:
        """Positions of the line's arguments whose memory is its buffer (a view of it included)."""
        def shares(n):
            return any(self.buffer_of.get(id(r)) == st.buffer or self.s.names.get(id(r)) == st.buffer
                       for r in self.roots(n) if r is not st.node)
        return frozenset(k for k, x in enumerate(st.node.inputs) if any(shares(n) for n in self.s.reads[id(x)]))

    def _blocks(self):
        """Buffers of different shapes whose values are never live at the same time share one block
        of memory (the largest of them): ``shared[buffer] = (block, members, largest first)``, for
        blocks of two or more. Sizes compare when the shapes have the same named dimensions."""
        groups: dict[tuple, dict] = {}  # (dtype, named dims) -> {shape: buffers}
        for buf, node in self.allocations:
            named = tuple(sorted(d for d in node.shape if isinstance(d, str)))
            groups.setdefault((node.dtype.str, named), {}).setdefault(node.shape, []).append(buf)
        for by_shape in groups.values():
            blocks: list[list] = []  # [buffers, their live intervals: disjoint, sorted]
            # largest first; buffers of one shape always overlap (else the liveness pass would have
            # given them one buffer), so each shape only tries the blocks made by other shapes
            for shape, bufs in sorted(by_shape.items(), key=lambda kv: -_static_size(kv[0])):
                candidates = list(blocks)
                # a value kept to the end (a result, a gradient the updates read) never fits a block
                # that is also held to the end: it only tries the others, listed once per shape (else
                # packing is quadratic in the number of parameters when updates run at the end)
                not_to_end = [block for block in candidates if not (block[1] and block[1][-1][1] == END)]
                for buf in bufs:
                    mine = sorted(self.live.get(buf, []))
                    to_end = bool(mine) and mine[-1][1] == END
                    for block in not_to_end if to_end else candidates:
                        if not any(_overlaps(block[1], interval) for interval in mine):
                            block[0].append(buf)
                            for interval in mine:
                                bisect.insort(block[1], interval)
                            candidates.remove(block)
                            if block in not_to_end:
                                not_to_end.remove(block)
                            break
                    else:
                        blocks.append([[buf], mine])
            for bufs, _ in blocks:
                if len(bufs) > 1:
                    name = self.s.namer.numbered("block")
                    self.shared.update({b: (name, bufs) for b in bufs})

    def _release(self, statements: list[Statement]) -> list[Statement]:
        """After a line writes a buffer (or a block it shares), ``del`` the names still bound to the
        value the memory held before, so no name outlives its value in the generated code."""
        bound: dict[str, dict[str, str]] = {}  # memory (a block, or a buffer of its own) -> {name: its buffer}
        memory_of: dict[int, tuple[str, str]] = {}  # buffered value id -> (its memory, its buffer)
        out = []
        for st in statements:
            out.append(st)
            for buf in st.scratch:
                self._unbind(out, bound, buf, "is scratch space for the line above", st.section)
            if st.buffer is not None and st.target:  # (a state written in place binds no name)
                memory = self._unbind(out, bound, st.buffer, f"now holds {st.target}", st.section)
                bound[memory] = {st.target: st.buffer}
                memory_of[id(st.node)] = memory, st.buffer
            elif st.node is not None:  # a view of a buffered value is bound to that memory too
                for r in self.roots(st.node):
                    if id(r) in memory_of:
                        memory, buffer = memory_of[id(r)]
                        bound[memory][st.target] = buffer
        return out

    def _unbind(self, out: list[Statement], bound: dict, buffer: str, what: str, section: str) -> str:
        """``del`` the names bound to the memory of ``buffer`` before it is written; returns that memory."""
        memory = self.shared.get(buffer, (buffer,))[0]
        stale = bound.pop(memory, {})
        if stale:
            for names in bound.values():  # a view of values in two memories (einsum's) is bound to both: del once
                for name in stale:
                    names.pop(name, None)
            others = sorted(set(stale.values()) - {buffer})
            where = f"{buffer}, sharing {memory} with {', '.join(others)}," if others else buffer
            out.append(Statement(", ".join(stale), "", f"{where} {what}", section, op="del"))
        return memory


class Array(NamedTuple):
    """The shape and dtype of a buffer."""

    shape: tuple
    dtype: np.dtype


def _static_size(shape) -> int:
    return int(np.prod([d for d in shape if isinstance(d, int)], dtype=np.int64))


def _overlaps(intervals: list[tuple], interval: tuple) -> bool:
    """Whether ``interval`` (first, last), both ends included, meets one of the sorted disjoint ``intervals``."""
    a, b = interval
    k = bisect.bisect_left(intervals, (a, -1))
    return (k < len(intervals) and intervals[k][0] <= b) or (k > 0 and intervals[k - 1][1] >= a)
