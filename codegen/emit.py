"""From a scheduled graph to the text of a Python module.

The pipeline is: order the nodes (topological, in the order the user built
them), decide which values get a name and which are inlined into their single
user, print each named value as one statement with a comment saying where it
came from, then wrap the statements in a function and a module.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import re
import textwrap
import inspect as pyinspect
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

import symgraph
from symgraph import kernels
from symgraph.graph import Constant, Node, Parameter, topo_sort
from symgraph.ops import Add, StopGradient, Subtract
from symgraph.shapes import format_shape

from .naming import Namer, identifier
from .printer import Code, NumPyPrinter

INLINE_LIMIT = 60  # longest expression folded into its single user's line
COMMENT_COLUMN = 44  # comments start here (or one space after longer code)
SMALL_ARRAY = 64  # array constants up to this size are written as literals
OUT = "\x00out\x00"  # stands for the buffer a line writes into, until buffers are assigned
LINE_LIMIT = 100  # a longer statement gets its comment on the line above

_VIEWS = ("transpose", "reshape", "broadcast_to", "expand_dims", "squeeze", "getitem", "stop_gradient")


def inplace_step(state: Node, value: Node) -> tuple[str, Node] | None:
    """("-", d) when value is state - d, ("+", d) when it is state + d or d + state; else None."""
    if value.dtype != state.dtype or value.shape != state.shape or len(value.inputs) != 2:
        return None
    a, b = value.inputs
    if isinstance(value.op, Subtract) and a is state and b is not state:
        return "-", b
    if isinstance(value.op, Add) and (a is state) != (b is state):
        return "+", b if a is state else a
    return None


def _op_label(node: Node) -> str:
    """The op's name for a comment (user-named elementwise ops are reduced to safe characters)."""
    return re.sub(r"[^0-9A-Za-z_/]", "_", node.op.name)


def _section(origin) -> str:
    """Which part of the generated function a derivative line belongs to."""
    forward = origin[0] == "jvp" or (origin[0] == "fit" and origin[4] == "jvp")
    return "forward mode: tangents" if forward else "backward"


@dataclass
class Program:
    """Everything needed to print one generated function."""

    name: str
    inputs: list[Node]
    outputs: list[Node]
    updates: list[tuple[Node, Node]]  # (state leaf, new value)
    params: list[Node] = field(default_factory=list)  # leaves passed as keyword arguments


def _shape_text(shape) -> str:
    return format_shape(tuple(identifier(d) if isinstance(d, str) else d for d in shape))


class Emitter:
    """Prints a :class:`Program` as module source with one function."""

    def __init__(self, program: Program, labels, printer: NumPyPrinter | None = None, header: str = "",
                 show_rules: bool = False, plan_memory: bool = True):
        self.p = program
        self.labels = labels
        self.show_rules = show_rules
        self.plan_memory = plan_memory
        self.printer = printer or NumPyPrinter()
        self.header = header
        self.namer = Namer(reserved={program.name, *(n for n in dir(kernels) if n.startswith("_")),
                                     "_BUFFERS", "_allocate", "buffers", "key"})
        self.names: dict[int, str] = {}  # node id -> variable (or would-be variable) name
        self.codes: dict[int, Code] = {}
        self.constants: list[str] = []  # module-level constant definitions
        self.lines: list[tuple[str, str, str]] = []  # (section, statement, comment)
        self.aliases: dict[int, Node] = {}  # node id -> the input it printed as (an identity)
        self.named: set[int] = set()  # nodes held in a variable
        self.line_nodes: list[Node | None] = []  # the value each line computes (None for helpers)
        self.line_reads: list[set] = []  # the named values each line reads
        self.reads: dict[int, frozenset] = {}  # node id -> the named values its code reads
        self.buffered: dict[int, int] = {}  # line index -> 0 for lines that write into a buffer
        self.allocations: list[tuple[str, Node]] = []  # (buffer name, a value it holds)
        self.live: dict[str, list[tuple[int, float]]] = {}  # buffer -> (first, last line) of each value
        self.derived: set[int] = set()  # nodes computed from derivatives
        self.buffered_ids: set[int] = set()  # nodes whose value lives in a buffer
        self.printer.temp_name = lambda: self.namer.numbered("shared")
        self.printer.constant_array = self._constant_array
        self.filled: dict[tuple, str] = {}  # (fill, shape, dtype) -> name of a read-only array
        self.update_of = {id(v): s for s, v in program.updates}
        self.output_ids = {id(o) for o in program.outputs}  # returned values get fresh arrays

    # -- names -------------------------------------------------------------------
    def name_of(self, node: Node) -> str:
        key = id(node)
        if key not in self.names:
            about = self.labels.about.get(node)
            if self.labels.name(node):
                self.names[key] = self.namer.unique(self.labels.name(node))
            elif about is not None:
                kind, primal = about
                prefix = "grad" if kind == "grad" else "tan"
                self.names[key] = self.namer.unique(f"{prefix}_{self.name_of(primal)}")
            elif key in self.update_of:
                self.names[key] = self.namer.unique(f"new_{self.name_of(self.update_of[key])}")
            elif isinstance(node.op, Constant):
                self.names[key] = self.namer.numbered("const")
            else:
                self.names[key] = self.namer.numbered(identifier(getattr(node.op, "label", node.op.name)))
        return self.names[key]

    def describe(self, node: Node, depth: int = 0) -> str:
        """The node as ``op(arg, ...)`` over variable names, for comments."""
        key = id(node)
        code = self.codes.get(key)
        if depth > 0 and (key in self.named or (code is not None and code.literal)):
            return self.names[key] if key in self.named else code.text
        if not node.inputs:
            if code is not None:
                return code.text
            return identifier(self.labels.name(node)) if self.labels.name(node) else node.op.name
        if depth >= 3:
            return "..."
        if getattr(node.op, "show_expr", False):  # a fused or user expression: show it over its inputs
            names = {s: sp.Symbol(self.describe(i, depth + 1)) for s, i in zip(node.op.symbols, node.inputs)}
            with sp.evaluate(False):
                return re.sub(r"[^ -~]", "_", str(node.op.expr.xreplace(names)))
        args = ", ".join(self.describe(i, depth + 1) for i in node.inputs)
        return f"{_op_label(node)}({args})"

    def comment(self, node: Node) -> str:
        text = self.comment_for(self.labels.origin.get(node), node)
        if self.show_rules:
            rules = self.rules_in(node)
            text += f" [rules: {', '.join(rules)}]" if rules else ""
        return text

    def rules_in(self, node: Node) -> list[str]:
        """The simplifier rules that built this line: its node and the values inlined into it."""
        found: list[str] = []
        stack = [node]
        while stack:
            n = stack.pop()
            found += [r for r in self.labels.rules.get(n, ()) if r not in found]
            stack += [i for i in n.inputs if i.inputs and id(i) not in self.named]
        return found

    def comment_for(self, origin, node: Node) -> str:
        if origin is None:
            if getattr(node.op, "label", None) and not self.labels.name(node):  # fused: the code already spells it out
                kinds = sorted({type(e).__name__.lower() for e in sp.preorder_traversal(node.op.expr)
                                if e.args and not e.is_Symbol})
                return f"fused elementwise: {', '.join(kinds)}"
            what = self.describe(node)
            return f"node {self.names[id(node)]}: {what}" if self.labels.name(node) else what
        kind = origin[0]
        if kind == "vjp":
            _, primal, index = origin
            wrt = "" if index is None else f" wrt {self.describe(primal.inputs[index], 1)}"
            return f"vjp of {self.describe(primal)}{wrt}"
        if kind == "jvp":
            return f"jvp of {self.describe(origin[1])}"
        if kind == "sum":
            return f"adjoint of {self.describe(origin[1], 1)}: sum of {origin[2]} contributions"
        if kind == "fit":
            _, like, shape, parent, _ = origin
            if node.op.name == "broadcast_to":
                source = self.comment_for(parent, node)
                return f"{source}, broadcast to {_shape_text(node.shape)}"
            return f"un-broadcast {self.describe(like, 1)} {_shape_text(like.shape)} <- {_shape_text(shape)}"
        return self.describe(node)

    def root(self, node: Node) -> Node:
        """The array ``node``'s value may share memory with (through views and aliases)."""
        while node.op.name in _VIEWS or id(node) in self.aliases:
            node = self.aliases[id(node)] if id(node) in self.aliases else node.inputs[0]
        return node

    # -- scheduling ----------------------------------------------------------------
    def _plan(self):
        p = self.p
        # An update w <- w - d (or w + d) that nothing else reads becomes an in-place
        # `w -= d`: only d is computed in the body, and the update block writes w.
        value_uses = Counter(id(v) for v in p.outputs) + Counter(
            id(i) for n in topo_sort(p.outputs + [v for _, v in p.updates]) for i in n.inputs)
        self.inplace: dict[int, tuple[str, Node]] = {}
        updating = Counter(id(v) for _, v in p.updates)  # a value may be the new value of two states
        for state, value in p.updates:
            step = inplace_step(state, value)
            if step is not None and value_uses[id(value)] == 0 and updating[id(value)] == 1:
                self.inplace[id(value)] = step
        roots = p.outputs + [self.inplace[id(v)][1] if id(v) in self.inplace else v for _, v in p.updates]
        self.order = topo_sort(roots + [s for s, _ in p.updates])
        for leaf in p.inputs + p.params:
            self.codes[id(leaf)] = Code(self.name_of(leaf))
            self.named.add(id(leaf))
            self.reads[id(leaf)] = frozenset([leaf])
        self.dims: dict[str, str] = {}  # named dimension -> code that reads its size from an input
        for leaf in p.inputs:
            for axis, d in enumerate(leaf.shape):
                if isinstance(d, str):
                    self.dims.setdefault(d, f"{self.names[id(leaf)]}.shape[{axis}]")
        # What must be computed: the roots and what they read, except values read only
        # for a shape that the inputs' named dimensions already spell out.
        self.needed = {id(n) for n in roots} | {id(s) for s, _ in p.updates}
        uses: Counter = Counter()
        shape_refs: set[int] = set()
        for node in reversed(self.order):
            if id(node) not in self.needed:
                continue
            for pos, x in enumerate(node.inputs):
                if pos in node.op.shape_inputs:
                    shape_refs.add(id(x))
                    if self.dim_texts(x) is not None:
                        continue
                uses[id(x)] += 1
                self.needed.add(id(x))
        for node in roots:
            uses[id(node)] += 2  # outputs and new values always get a name
        self.uses, self.shape_refs = uses, shape_refs
        # a value whose adjoint or tangent is printed as grad_<name> keeps its own name too
        self.has_derivative = {id(self.labels.about[n][1]) for n in self.order if n in self.labels.about}

    def dim_texts(self, node: Node) -> tuple[str, ...] | None:
        """Code for each of the node's dimensions, when they are static or named by an input."""
        texts = []
        for d in node.shape:
            if isinstance(d, int):
                texts.append(str(d))
            elif d in self.dims:
                texts.append(self.dims[d])
            else:
                return None
        return tuple(texts)

    def _inline(self, node: Node, code: Code) -> bool:
        return (
            self.uses[id(node)] == 1
            and not self.labels.name(node)
            and node not in self.labels.about
            and id(node) not in self.shape_refs
            and id(node) not in self.has_derivative
            and len(code.text) <= INLINE_LIMIT
            and not isinstance(node.op, StopGradient)
        )

    def _constant(self, node: Node) -> Code:
        value = node.op.value
        if value.ndim == 0:
            return self.printer.literal(value, node.op.weak)
        name = self.name_of(node)
        dtype = self.printer.dtype(value.dtype)
        if value.size == 0:
            body = f"{self.printer.module}.zeros({value.shape}, dtype={dtype})"
        elif value.size <= SMALL_ARRAY and (value.dtype.kind != "f" or np.isfinite(value).all()):
            body = f"{self.printer.module}.array({value.tolist()!r}, dtype={dtype})"
        else:
            data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
            body = (f"{self.printer.module}.frombuffer(base64.b64decode({data!r}), "
                    f"dtype={np.dtype(value.dtype).str!r}).reshape({value.shape})")
        self.constants.append(f"{name} = {body}  # {format_shape(value.shape)} {value.dtype}")
        self.named.add(id(node))
        return Code(name)

    def _statements(self):
        for node in self.order:
            if id(node) in self.codes:
                continue
            if id(node) not in self.needed:  # only its shape is read
                self.codes[id(node)] = Code(f"<shape of {node.op.name}>", dims=self.dim_texts(node))
                self.reads[id(node)] = frozenset()
                continue
            if isinstance(node.op, Constant):
                self.codes[id(node)] = self._constant(node)
                self.reads[id(node)] = frozenset([node]) if id(node) in self.named else frozenset()
                continue
            if node.is_leaf:
                raise AssertionError(f"leaf {node!r} is neither an input nor a parameter")
            args = [self.codes[id(i)] for i in node.inputs]
            reads = frozenset().union(*(self.reads[id(i)] for i in node.inputs))
            origin = self.labels.origin.get(node)
            after = origin is not None or any(id(i) in self.derived for i in node.inputs)
            if after:
                self.derived.add(id(node))
            if origin is not None:
                own = _section(origin)
            elif after:  # computed from derivatives, by the differentiator's caller: an optimizer
                own = "optimizer"
            else:  # the user's own graph: part of whatever section its line lands in
                own = None
            section = own or (self.lines[-1][0] if self.lines else "forward")
            if self._bufferable(node):
                text = self.printer.out_call(node, args, OUT)
                if text is not None:  # one NumPy call writing into a preallocated buffer
                    self.buffered[len(self.lines)] = 0
                    self.buffered_ids.add(id(node))
                    self._line(node, section, f"{self.name_of(node)} = {text}", self.comment(node), reads)
                    continue
            code = self.printer.print(node, args)
            for temp, text in self.printer.pending:  # subexpressions the expression shares
                self.lines.append((section, f"{temp} = {text}", f"shared by {self.comment(node)}"))
                self.line_nodes.append(None)
                self.line_reads.append(reads)
            self.printer.pending.clear()
            same = [i for i, a in zip(node.inputs, args) if a.text == code.text]
            if same:  # printed as a bare alias of an input
                self.aliases[id(node)] = same[0]
                self.codes[id(node)] = code
                self.reads[id(node)] = self.reads[id(same[0])]
                continue
            if self._inline(node, code):
                self.codes[id(node)] = code
                self.reads[id(node)] = reads
                continue
            self._line(node, section, f"{self.name_of(node)} = {code.text}", self.comment(node), reads)

    def _line(self, node: Node, section: str, stmt: str, comment: str, reads: frozenset):
        self.named.add(id(node))
        self.lines.append((section, stmt, comment))
        self.line_nodes.append(node)
        self.line_reads.append(reads)
        self.codes[id(node)] = Code(self.names[id(node)])
        self.reads[id(node)] = frozenset([node])

    def _bufferable(self, node: Node) -> bool:
        """Whether the node's value may live in a preallocated buffer (it never leaves the call)."""
        return (self.plan_memory and node.dtype.kind == "f" and node.ndim >= 1
                and id(node) not in self.output_ids and self.dim_texts(node) is not None)

    def _assign_buffers(self, kept: list[Node]):
        """Give each buffered line a buffer: reuse one whose value is dead (liveness over the lines),
        or, for an elementwise op, the buffer of an input read for the last time by that line."""
        last: dict[int, float] = {}
        for i, reads in enumerate(self.line_reads):
            for n in reads:
                last[id(self.root(n))] = i
        for n in kept:  # returned, or read by the updates after the last line
            last[id(self.root(n))] = float("inf")
        free: dict[tuple, list[str]] = {}
        held: list[tuple] = []  # heap of (last line reading the value, line writing it, buffer, key)
        for i in sorted(self.buffered):
            node = self.line_nodes[i]
            elementwise = node.op.name not in ("matmul", "sum", "mean")
            while held and (held[0][0] < i or (elementwise and held[0][0] == i)):
                _, _, buf, key = heapq.heappop(held)
                free.setdefault(key, []).append(buf)
            key = (node.shape, node.dtype.str)
            if free.get(key):
                buf = free[key].pop()
            else:
                buf = self.namer.numbered("buf")
                self.allocations.append((buf, node))
            end = last.get(id(node), -1)
            heapq.heappush(held, (end, i, buf, key))
            self.live.setdefault(buf, []).append((i, max(i, end)))
            section, stmt, comment = self.lines[i]
            self.lines[i] = (section, stmt.replace(OUT, buf), comment)

    def _blocks(self) -> dict[str, tuple[str, list]]:
        """Buffers of different shapes whose values are never live at the same time share one block
        of memory (the largest of them): {buffer: (block, members, largest first)}, blocks of two or
        more only. Sizes compare when the shapes have the same named dimensions."""
        groups: dict[tuple, dict] = {}  # (dtype, named dims) -> {shape: buffers}
        for buf, node in self.allocations:
            named = tuple(sorted(d for d in node.shape if isinstance(d, str)))
            groups.setdefault((node.dtype.str, named), {}).setdefault(node.shape, []).append(buf)
        shared = {}
        for by_shape in groups.values():
            blocks: list[list] = []  # [buffers, their live intervals: disjoint, sorted]
            # largest first; buffers of one shape always overlap (else the liveness pass would have
            # given them one buffer), so each shape only tries the blocks made by other shapes
            for shape, bufs in sorted(by_shape.items(), key=lambda kv: -_static_size(kv[0])):
                candidates = list(blocks)
                for buf in bufs:
                    mine = self.live.get(buf, [])
                    for block in candidates:
                        if not any(_overlaps(block[1], interval) for interval in mine):
                            block[0].append(buf)
                            for interval in mine:
                                bisect.insort(block[1], interval)
                            candidates.remove(block)
                            break
                    else:
                        blocks.append([[buf], sorted(mine)])
            for bufs, _ in blocks:
                if len(bufs) > 1:
                    name = self.namer.numbered("block")
                    shared.update({b: (name, bufs) for b in bufs})
        return shared

    def _constant_array(self, fill: str, shape: tuple, dtype) -> str:
        """The name of an array of ``fill`` ("zeros" or "ones") allocated with the buffers (so it
        may have a named dimension) and never written: ufuncs run faster against it than
        against a broadcast scalar, and ``ones @ a`` sums columns faster than a reduction."""
        key = (fill, shape, np.dtype(dtype).str)
        if key not in self.filled:
            self.filled[key] = self.namer.unique("_".join([fill, *(str(d) if isinstance(d, int) else identifier(d) for d in shape)]))
        return self.filled[key]

    def _buffer_prologue(self) -> tuple[list[str], list[str]]:
        """(module-level definitions, first lines of the function body) for the buffers."""
        if not self.allocations and not self.filled:
            return [], []
        arrays = [("empty", buf, node.shape, node.dtype, buf) for buf, node in self.allocations]
        arrays += [(fill, name, shape, np.dtype(dtype), f"{name}: read only")
                   for (fill, shape, dtype), name in self.filled.items()]
        dims = []
        for *_, shape, _, _ in arrays:
            dims += [d for d in shape if isinstance(d, str) and d not in dims]
        params = [identifier(d) for d in dims]
        shared = self._blocks()
        blocks, rows = [], []
        for fill, name, shape, dtype, comment in arrays:
            shape = tuple(identifier(d) if isinstance(d, str) else d for d in shape)
            text = f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"
            array = f"{self.printer.module}.{fill}({text}, dtype={self.printer.dtype(dtype)})"
            if name in shared:
                block, members = shared[name]
                size = " * ".join(map(str, shape))
                view = block if name == members[0] else f"{block}[:{size}]"
                array = view if len(shape) == 1 else f"{view}.reshape({', '.join(map(str, shape))})"
                if name == members[0]:  # the largest: the block is its size
                    names = ", ".join(sorted(members, key=lambda b: int(b[3:])))
                    blocks.append(f"    {block} = {self.printer.module}.empty({size}, dtype={self.printer.dtype(dtype)})"
                                  f"  # {names}: never live at the same time")
            rows.append(f"        {array},  # {comment}")
        fn = self.p.name
        module = [f"_BUFFERS = {{}}  # the arrays {fn} keeps its intermediate values in, one set per input size",
                  "", "",
                  f"def _allocate({', '.join(params)}):",
                  f'    """Buffers for one set of input sizes; {fn} reuses them on every call with those sizes."""',
                  *blocks, "    return (", *rows, "    )"]
        key = "(" + "".join(f"{self.dims[d]}, " for d in dims).rstrip(" ") + ")" if dims else "()"
        names = ", ".join(name for _, name, *_ in arrays)
        body = [f"key = {key}  # the input sizes the buffers depend on",
                "buffers = _BUFFERS.get(key)  # allocated by the first call with these sizes",
                "if buffers is None:  # a new size: allocate once, reuse from then on",
                "    buffers = _BUFFERS[key] = _allocate(*key)",
                *_wrapped(f"{names}{',' if len(arrays) == 1 else ''} = buffers",
                          "# buf<n>: written with out= below" + ("; ones_/zeros_: read only" if self.filled else ""))]
        return module, body

    def _finish(self, moved: set[int]) -> tuple[list[str], list[str]]:
        """Statements that apply the updates (except those already ``moved`` into the body), and
        the names the function returns."""
        p = self.p
        updated = {id(s) for s, _ in p.updates}
        tail = []
        returns = []
        for out in p.outputs:
            name = self.codes[id(out)].text
            root = self.root(out)
            in_buffer = id(root) in self.buffered_ids
            if id(root) in updated or in_buffer or isinstance(root.op, (Parameter, Constant)) and root.ndim:
                # the caller gets its own array: not one a later update or call would change
                snap = self.namer.unique(f"{identifier(name)}_out")
                tail.append((f"{snap} = {self.printer.obj(self.codes[id(out)], out)}.copy()", "a copy for the caller"))
                name = snap
            returns.append(name)
        assigns = []
        for state, value in p.updates:
            if id(value) in moved:
                continue
            if id(value) in self.inplace:
                symbol, step = self.inplace[id(value)]
                text = self.codes[id(step)].text
                if id(self.root(step)) in updated:
                    snap = self.namer.unique(f"step_{self.names[id(state)]}")
                    tail.append((f"{snap} = {self.printer.obj(self.codes[id(step)], step)}.copy()",
                                 "read before any write"))
                    text = snap
                assigns.append((f"{self.names[id(state)]} {symbol}= {text}",
                                f"update {self.names[id(state)]} in place: {self.comment(value)}"))
                continue
            text = self.codes[id(value)].text
            if id(self.root(value)) in updated:
                snap = self.namer.unique(f"new_{self.names[id(state)]}")
                tail.append((f"{snap} = {self.printer.obj(self.codes[id(value)], value)}.copy()", "read before any write"))
                text = snap
            assigns.append((f"{self.names[id(state)]}[...] = {text}", f"update {self.names[id(state)]}"))
        return tail + assigns, returns

    # -- the module --------------------------------------------------------------
    def _early_updates(self) -> set[int]:
        """Move each in-place update ``w -= step`` up to just after the last line that reads ``w``
        and the lines that compute ``step``, when nothing else left for the end reads ``w``: the
        step's buffer is free from there on, so the backward pass of a deep network needs one
        weight-gradient buffer rather than one per layer. Returns the ids of the moved values."""
        p = self.p
        updated = {id(s) for s, _ in p.updates}
        defined = {id(n): i for i, n in enumerate(self.line_nodes) if n is not None}
        last_read: dict[int, int] = {}
        for i, reads in enumerate(self.line_reads):
            for n in reads:
                last_read[id(self.root(n))] = i
        late = list(p.outputs) + [v if id(v) not in self.inplace else self.inplace[id(v)][1] for _, v in p.updates]
        read_late = Counter(id(n) for v in late for n in self.reads[id(v)])  # by the end: outputs, updates
        inserts: dict[int, list[tuple]] = {}
        moved = set()
        for state, value in p.updates:
            if id(value) not in self.inplace:
                continue
            symbol, step = self.inplace[id(value)]
            reads = self.reads[id(step)]
            if (any(id(self.root(n)) in updated for n in reads | {step})  # it reads a state: keep the order
                    or read_late[id(state)] > (state in reads)):  # something else reads it at the end
                continue
            j = max([last_read.get(id(state), -1)] + [defined.get(id(n), -1) for n in reads])
            if j < 0:
                continue
            stmt = f"{self.names[id(state)]} {symbol}= {self.codes[id(step)].text}"
            comment = f"update {self.names[id(state)]} here: nothing below reads it"
            inserts.setdefault(j, []).append((stmt, comment, reads | {state}))
            moved.add(id(value))
        if inserts:
            lines, nodes, line_reads, buffered = [], [], [], {}
            for i, line in enumerate(self.lines):
                if i in self.buffered:
                    buffered[len(lines)] = 0
                lines.append(line)
                nodes.append(self.line_nodes[i])
                line_reads.append(self.line_reads[i])
                for stmt, comment, reads in inserts.get(i, []):
                    lines.append((line[0], stmt, comment))
                    nodes.append(None)
                    line_reads.append(reads)
            self.lines, self.line_nodes, self.line_reads, self.buffered = lines, nodes, line_reads, buffered
        return moved

    def source(self) -> str:
        self._plan()
        self._statements()
        moved = self._early_updates() if self.plan_memory else set()
        tail, returns = self._finish(moved)
        p = self.p
        kept = list(p.outputs) + [self.inplace[id(v)][1] if id(v) in self.inplace else v
                                  for _, v in p.updates if id(v) not in moved]
        self._assign_buffers(kept)
        buffer_defs, prologue = self._buffer_prologue()
        body = ["# buffers", *prologue] if prologue else []
        width = min(COMMENT_COLUMN, max((len(s) for _, s, _ in self.lines), default=0) + 2)
        section = None
        for sec, stmt, comment in self.lines:
            if sec != section:
                body.append(f"# {sec}")
                section = sec
            body.extend(_with_comment(stmt, comment, width))
        if tail:
            body.append("# updates, applied together after every value above is computed")
            for stmt, comment in tail:
                body.extend(_with_comment(stmt, comment, 0))
        body.append(f"return {', '.join(returns)}" if returns else "return None")

        args = [self.names[id(i)] for i in p.inputs]
        kwargs = [self.names[id(q)] for q in p.params]
        signature = ", ".join(args + (["*"] + kwargs if kwargs else []))
        doc = self._docstring(returns)
        helpers = [pyinspect.getsource(getattr(kernels, h)).rstrip() for h in sorted(self.printer.helpers)]
        imports = ["import numpy as np"] + (["import base64"] if any("base64" in c for c in self.constants) else [])

        out = [f'"""{self.header}"""' if self.header else None, "", *imports, "", f'__all__ = ["{p.name}"]']
        if self.constants:
            out += ["", *self.constants]
        if buffer_defs:
            out += ["", *buffer_defs]
        for h in helpers:
            out += ["", "", h]
        header = f"def {p.name}({signature}):"
        if len(header) > LINE_LIMIT:  # one argument group per line
            header = "\n".join([f"def {p.name}(", *("    " + line for line in textwrap.wrap(
                signature + ",", LINE_LIMIT - 4, break_on_hyphens=False)), "):"])
        out += ["", "", header, *(("    " + line).rstrip() for line in doc), *("    " + b for b in body)]
        return "\n".join(x for x in out if x is not None).lstrip("\n") + "\n"

    def _docstring(self, returns: list[str]) -> list[str]:
        p = self.p

        def entry(name, node):
            return f"    {name}: {_shape_text(node.shape)} {node.dtype}"

        lines = ['"""Generated by symgraph.', ""]
        if p.inputs:
            lines += ["Inputs:", *(entry(self.names[id(n)], n) for n in p.inputs)]
        if p.params:
            lines += ["Keyword arguments (parameters and state):", *(entry(self.names[id(n)], n) for n in p.params)]
        if p.outputs:
            lines += ["Returns:", *(entry(r, n) for r, n in zip(returns, p.outputs))]
        if p.updates:
            names = ", ".join(self.names[id(s)] for s, _ in p.updates) + "."
            lines += textwrap.wrap("Updates in place: " + names, LINE_LIMIT - 4, break_on_hyphens=False)
        lines.append('"""')
        return lines


def _static_size(shape) -> int:
    return int(np.prod([d for d in shape if isinstance(d, int)], dtype=np.int64))


def _overlaps(intervals: list[tuple], interval: tuple) -> bool:
    """Whether ``interval`` (first, last), both ends included, meets one of the sorted disjoint ``intervals``."""
    a, b = interval
    k = bisect.bisect_left(intervals, (a, -1))
    return (k < len(intervals) and intervals[k][0] <= b) or (k > 0 and intervals[k - 1][1] >= a)


def _wrapped(stmt: str, comment: str) -> list[str]:
    """``a, b, c = value  # comment``, split over lines inside parentheses when too long."""
    if len(stmt) + 3 + len(comment) <= LINE_LIMIT:
        return [f"{stmt}  {comment}"]
    targets, value = stmt.rsplit(" = ", 1)
    lines = textwrap.wrap(targets, LINE_LIMIT - 8, break_on_hyphens=False)
    return [f"(  {comment}", *("    " + line for line in lines), f") = {value}"]


def _with_comment(stmt: str, comment: str, width: int) -> list[str]:
    """The statement with its comment aligned at ``width``, or on the line above when too long."""
    if len(stmt) + 2 <= width and width + 2 + len(comment) <= LINE_LIMIT:
        return [f"{stmt:<{width}}# {comment}"]
    if len(stmt) + 4 + len(comment) <= LINE_LIMIT:
        return [f"{stmt}  # {comment}"]
    return [f"# {comment}", stmt]


def module_header(program: Program, mode: str, simplify_report) -> str:
    lines = [f"Generated by symgraph {symgraph.__version__}: {program.name}. Do not edit; regenerate instead."]
    lines.append(f"differentiation: {mode}")
    if simplify_report is not None and simplify_report.rules:
        lines.append(f"{simplify_report}")
    lines.append("Needs only NumPy.")
    return "\n".join(lines) + "\n"


def parameters_read(order: list[Node]) -> list[Node]:
    return [n for n in order if isinstance(n.op, Parameter)]
