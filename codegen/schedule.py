"""Schedule: the order of the lines, the names, what to inline, and each line's section.

The first pass of the generator. It orders the nodes (topological, in the order the user
built them, with lines only the optimizer needs sunk to just before their first reader),
decides which values get a name and which are inlined into their single user, and prints
each named value as one :class:`Statement` record. Comments come from
:mod:`codegen.comments`; buffers are left to :mod:`codegen.memory`.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from symgraph.graph import Constant, Node, topo_sort
from symgraph.ops import Add, Subtract
from symgraph.provenance import Labels
from symgraph.shapes import format_shape

from .comments import Commenter
from .lowering import Lowered
from .naming import Namer, identifier
from .printer import Call, Code

# The header of the last section: it guarantees the atomic step (see README, "Conventions")
UPDATES = "updates: nothing above writes a parameter or state; each is read before it is overwritten"
INLINE_LIMIT = 60  # longest expression folded into its single user's line
SMALL_ARRAY = 64  # array constants up to this size are written as literals


@dataclass
class Program:
    """Everything needed to print one generated function."""

    name: str
    inputs: list[Node]
    outputs: list[Node]
    updates: list[tuple[Node, Node]]  # (state leaf, new value)
    params: list[Node] = field(default_factory=list)  # leaves passed as keyword arguments
    graph: list[Node] = field(default_factory=list)  # every node of the outputs and updates, in topological order
    early_updates: bool = False  # in-place updates may run before the end (see codegen.compile)
    buffer_cache: int | None = 8  # input sizes each thread keeps buffers for (None: all)


@dataclass(eq=False, slots=True)
class Statement:
    """One line of the function body: ``target op value  # comment``, in ``section``.

    ``node`` is the value the line computes (None for a shared subexpression, an update or a
    ``del``); ``reads`` the named values it reads. A line with a ``call`` writes into a buffer:
    the memory plan sets ``buffer`` (the schedule sets it to a state's own array for a new
    state written in place, with no ``target``), and the text is ``call`` with ``out=buffer``.
    A :class:`~codegen.lowering.Lowered` call is several lines, and also writes into the
    ``scratch`` buffers; ``aliased`` are the positions of its arguments whose memory is ``buffer``.
    """

    target: str
    value: str
    comment: str
    section: str
    node: Node | None = None
    reads: frozenset = frozenset()
    call: Call | None = None
    buffer: str | None = None
    op: str = "="  # also "-=" / "+=" (an in-place update), "del" and "call" (the value alone)
    scratch: tuple[str, ...] = ()
    aliased: frozenset = frozenset()

    @property
    def text(self) -> str:
        """The line's code: several lines (joined by newlines) for a lowered call."""
        if self.op == "del":
            return f"del {self.target}"
        if self.op == "call":  # a call that updates its argument in place
            return self.value
        if self.call is None:
            return f"{self.target} {self.op} {self.value}"
        *lines, last = self.call.lines(self.buffer, self.scratch, self.aliased)
        if self.target:
            lines.append(f"{self.target} {self.op} {last}")
        elif last != self.buffer:  # (a lowered call in blocks ends with its buffer's name)
            lines.append(last)
        return "\n".join(lines)


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


def derivative_section(origin) -> str:
    """The section of a line with a derivative origin."""
    forward = origin[0] == "jvp" or (origin[0] == "fit" and origin[4] == "jvp")
    return "forward mode: tangents" if forward else "backward"


class Schedule:
    """Orders, names and prints the nodes of a :class:`Program` as :class:`Statement` records."""

    def __init__(self, program: Program, backend, labels: Labels, show_rules: bool = False,
                 plan_memory: bool = True):
        self.p = program
        self.labels = labels
        self.plan_memory = plan_memory
        self.backend = backend
        self.printer = backend.printer()
        self.namer = Namer(reserved={program.name, *backend.helper_names(), "MAX_SIZES", "_THREAD", "_allocate",
                                     "_buffers", "threading"})
        self.names: dict[int, str] = {}  # node id -> variable (or would-be variable) name
        self.codes: dict[int, Code] = {}
        self.reads: dict[int, frozenset] = {}  # node id -> the named values its code reads
        self.named: set[int] = set()  # nodes held in a variable
        self.aliases: dict[int, Node] = {}  # node id -> the input it printed as (an identity)
        self.constants: list[str] = []  # module-level constant definitions
        self.filled: dict[tuple, str] = {}  # (fill, shape, dtype) -> name of a read-only array
        self.statements: list[Statement] = []
        self.update_of = {id(v): s for s, v in program.updates}
        self.output_ids = {id(o) for o in program.outputs}  # returned values get fresh arrays
        self.printer.temp_name = lambda: self.namer.numbered("shared")
        self.printer.unique_name = self.namer.unique
        self.printer.constant_array = self._constant_array
        self.comments = Commenter(self, show_rules)

    def run(self) -> list[Statement]:
        self._plan()
        self._sections()
        self._sink_optimizer_lines()
        self._write_states_in_place()
        for node in self.order:
            if id(node) not in self.codes:
                self._visit(node)
        return self.statements

    # -- names ---------------------------------------------------------------------
    def name_of(self, node: Node) -> str:
        key = id(node)
        if key not in self.names:
            self.names[key] = self._new_name(node)
        return self.names[key]

    def _new_name(self, node: Node) -> str:
        """``name`` (user's), ``grad_x`` / ``tan_x`` (derivatives), ``new_w`` (updates), else numbered."""
        name = self.labels.name(node) or self.labels.derivative_name(node, self.name_of)
        if name:
            return self.namer.unique(name)
        if id(node) in self.update_of:
            return self.namer.unique(f"new_{self.name_of(self.update_of[id(node)])}")
        if isinstance(node.op, Constant):
            return self.namer.numbered("const")
        return self.namer.numbered(identifier(getattr(node.op, "label", node.op.name)))

    # -- what to compute -------------------------------------------------------------
    def _plan(self):
        """The order, what must be computed, and how often each value is read."""
        p = self.p
        # An update w <- w - d (or w + d) that nothing else reads becomes an in-place
        # `w -= d`: only d is computed in the body, and the update block writes w.
        graph = p.graph or topo_sort(p.outputs + [v for _, v in p.updates])
        value_uses = Counter(id(v) for v in p.outputs) + Counter(id(i) for n in graph for i in n.inputs)
        self.inplace: dict[int, tuple[str, Node]] = {}
        self.updating = updating = Counter(id(v) for _, v in p.updates)  # a value may update two states
        for state, value in p.updates:
            step = inplace_step(state, value)
            if step is not None and value_uses[id(value)] == 0 and updating[id(value)] == 1:
                self.inplace[id(value)] = step
        self.step_of = {id(step): (self.update_of[key], sign) for key, (sign, step) in self.inplace.items()}
        # w -= a @ b (or +=) as one GEMM that adds the product into w: the step gets no line of its own
        states = {id(st) for st, _ in p.updates}
        self.folded: dict[int, Node] = {
            id(step): step for sign, step in self.inplace.values()
            if self.plan_memory and value_uses[id(step)] == 1 and step not in p.outputs
            and self.printer.folds_gemm(step) and not any(self._may_view(x, states) for x in step.inputs)}
        # what the body computes: the outputs, and each update value (or the step of an in-place one)
        self.results = p.outputs + [self.inplace[id(v)][1] if id(v) in self.inplace else v for _, v in p.updates]
        self.order = topo_sort(self.results + [s for s, _ in p.updates])
        for leaf in p.inputs + p.params:
            self.codes[id(leaf)] = Code(self.name_of(leaf))
            self.named.add(id(leaf))
            self.reads[id(leaf)] = frozenset([leaf])
        self.dims: dict[str, str] = {}  # named dimension -> code that reads its size from an input
        dim_namer = Namer()  # distinct identifiers for distinct dimensions ("a b" and "a_b" both sanitize to a_b)
        dims = dict.fromkeys(d for leaf in p.inputs + p.params for d in leaf.shape if isinstance(d, str))
        self.dim_ids = {d: dim_namer.unique(d) for d in dims}  # named dimension -> its identifier in the module
        for leaf in p.inputs:
            for axis, d in enumerate(leaf.shape):
                if isinstance(d, str):
                    self.dims.setdefault(d, f"{self.names[id(leaf)]}.shape[{axis}]")
        self._count_uses()

    @staticmethod
    def _may_view(node: Node, ids: set[int]) -> bool:
        """Whether ``node``'s value may share memory with one of the nodes ``ids`` (through views,
        or an op that declares none: it may alias all of its inputs)."""
        pending, seen = [node], set()
        while pending:
            n = pending.pop()
            if id(n) in ids:
                return True
            if id(n) not in seen:
                seen.add(id(n))
                view_of = n.op.view_of
                pending.extend(n.inputs if view_of is None else [n.inputs[i] for i in view_of])
        return False

    def _held(self, node: Node) -> bool:
        """Whether ``node``'s code is a name, or a view of named values (``h.T``): what an update
        at the end may read once the memory plan keeps those values alive (not inlined code that
        computes from values the plan may have overwritten by then)."""
        while id(node) in self.aliases:
            node = self.aliases[id(node)]
        if id(node) in self.named:
            return True
        view_of = node.op.view_of
        return bool(view_of) and all(self._held(node.inputs[i]) for i in view_of)

    def update_line(self, state: Node, sign: str, step: Node) -> tuple[str, str, str]:
        """(value, op, comment) of the in-place update ``state sign= step``."""
        name = self.names[id(state)]
        if id(step) in self.folded:
            a, b = (self.codes[id(x)].text for x in step.inputs)
            alpha = "-1.0" if sign == "-" else "1.0"
            return (self.printer.gemm_update(name, a, b, alpha), "call",
                    f"{name} {sign}= {a} @ {b}: one GEMM adds the product into {name}")
        return self.codes[id(step)].text, f"{sign}=", ""

    def _count_uses(self):
        """What must be computed: the roots and what they read, except values read only for a
        shape that the inputs' named dimensions already spell out; and how often each is read."""
        self.needed = {id(n) for n in self.results} | {id(s) for s, _ in self.p.updates}
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
        for node in self.results:
            uses[id(node)] += 2  # outputs and new values always get a name
        self.uses, self.shape_refs = uses, shape_refs
        # a value whose adjoint or tangent is printed as grad_<name> keeps its own name too
        about = self.labels.about
        self.has_derivative = {id(about[n][1]) for n in self.order if n in about}

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

    # -- sections ------------------------------------------------------------------
    def _sections(self):
        """Each needed node's section: a derivative's own section; "optimizer" for a value computed
        from derivatives without being one (without updates: its derivatives' section), or needed
        only by the updates; else "forward"."""
        origin, section = self.labels.origin, {}
        derived: set[int] = set()
        main = {id(n) for n in self.p.outputs}
        for node in self.order:
            if node in origin:
                derived.add(id(node))
                main.add(id(node))
                section[id(node)] = derivative_section(origin[node])
            elif not derived.isdisjoint(map(id, node.inputs)):
                derived.add(id(node))
                if not self.p.updates:  # no optimizer: it finishes what its derivative inputs started
                    section[id(node)] = next(section[id(i)] for i in node.inputs if id(i) in derived)
        for node in reversed(self.order):
            if id(node) in main:
                main.update(map(id, node.inputs))
        for node in self.order:
            if id(node) not in section:
                section[id(node)] = "optimizer" if id(node) in derived or id(node) not in main else "forward"
        self.section, self.derived = section, derived

    def _sink_optimizer_lines(self):
        """Move each value only the optimizer needs (not computed from derivatives) down to just
        before its first reader, so that it is printed with the optimizer, not amid the forward pass."""
        sinking = {id(n) for n in self.order
                   if n.inputs and self.section[id(n)] == "optimizer" and id(n) not in self.derived}
        if not sinking:
            return
        order, waiting = [], {}

        def place(node):
            for x in node.inputs:
                if id(x) in waiting:
                    place(waiting.pop(id(x)))
            order.append(node)

        for node in self.order:
            if id(node) in sinking:
                waiting[id(node)] = node
            else:
                place(node)
        for node in list(waiting.values()):  # read only by the updates: at the end
            if id(node) in waiting:
                place(waiting.pop(id(node)))
        self.order = order

    # -- new state written in place ---------------------------------------------------
    def _write_states_in_place(self):
        """Choose the new states computed straight into the state's own array: an elementwise value
        of the state's shape and dtype that no output reads, when every other reader of the old state
        has an array of its own (it is then printed as a line of its own, before the write). Those
        lines and every value computed from them move to the update section, each old state read
        before it is overwritten; a choice that makes that impossible (a cycle) is given up."""
        self.into_state: dict[int, Node] = {}  # new value id -> the state its array is
        self.keep_named: set[int] = set()  # readers of an old state that is overwritten
        if not self.plan_memory:
            return
        outputs_read = {id(n) for n in self.p.outputs}
        for node in reversed(self.order):
            if id(node) in outputs_read:
                outputs_read.update(map(id, node.inputs))
        readers: dict[int, list[Node]] = {}
        for node in self.order:
            if id(node) in self.needed:
                for x in dict.fromkeys(node.inputs):
                    readers.setdefault(id(x), []).append(node)
        read_at_end = {id(n) for n in self.results}
        chosen = {}
        for state, value in self.p.updates:
            others = [r for r in readers.get(id(state), []) if r is not value]
            if (id(value) in self.inplace or self.updating[id(value)] > 1 or value is state
                    or not (value.op.elementwise and value.op.writes_into) or value.dtype.kind != "f"
                    or (value.shape, value.dtype) != (state.shape, state.dtype) or id(value) in outputs_read
                    or id(state) in read_at_end or any(r.op.view_of != () for r in others)):
                continue
            chosen[id(value)] = (state, others)
        while chosen:
            order = self._old_states_read_first(chosen)
            if order is not None:
                break
            chosen.popitem()
        if not chosen:
            return
        self.order, late = order
        self.section.update({key: UPDATES for key in late})
        self.into_state = {key: state for key, (state, _) in chosen.items()}
        self.keep_named = {id(r) for _, others in chosen.values() for r in others}

    def _old_states_read_first(self, chosen: dict) -> tuple[list[Node], set[int]] | None:
        """(the order with the new states ``chosen`` and what reads them last, the ids of those late
        nodes), each late reader of an old state before its write; None if no such order exists."""
        late = set(chosen)
        for node in self.order:
            if not late.isdisjoint(map(id, node.inputs)):
                late.add(id(node))
        first = {id(n): {id(x) for x in n.inputs if id(x) in late} for n in self.order if id(n) in late}
        for key, (_, others) in chosen.items():
            first[key] |= {id(r) for r in others if id(r) in late}
        pending = [n for n in self.order if id(n) in late]
        placed: list[Node] = []
        done: set[int] = set()
        while pending:
            ready = next((n for n in pending if first[id(n)] <= done), None)
            if ready is None:
                return None
            pending.remove(ready)
            placed.append(ready)
            done.add(id(ready))
        return [n for n in self.order if id(n) not in late] + placed, late

    # -- statements ----------------------------------------------------------------
    def _visit(self, node: Node):
        key = id(node)
        if key not in self.needed:  # only its shape is read
            self.codes[key] = Code(f"<shape of {node.op.name}>", dims=self.dim_texts(node))
            self.reads[key] = frozenset()
        elif isinstance(node.op, Constant):
            self.codes[key] = self._constant(node)
            self.reads[key] = frozenset([node]) if key in self.named else frozenset()
        elif node.is_leaf:
            raise AssertionError(f"leaf {node!r} is neither an input nor a parameter")
        else:
            self._compute(node)

    def _compute(self, node: Node):
        """The node as a line (into a buffer when it can), an alias of an input, or inlined code."""
        args = [self.codes[id(i)] for i in node.inputs]
        reads = frozenset().union(*(self.reads[id(i)] for i in node.inputs))
        if id(node) in self.folded and not all(self._held(x) for x in node.inputs):
            del self.folded[id(node)]  # an operand is inlined code: the product gets its own line
        if id(node) in self.folded:  # computed by its update (see update_line)
            self.codes[id(node)] = Code(f"<folded into the update of {self.names[id(self.step_of[id(node)][0])]}>")
            self.reads[id(node)] = reads
            return
        section = self.section[id(node)]
        state = self.into_state.get(id(node))
        call = self.printer.out_call(node, args) if state is not None or self._bufferable(node) else None
        if call is not None:  # calls writing into a preallocated buffer, or into the state's array
            self._line(node, section, "", reads, call, state)
            return
        self.into_state.pop(id(node), None)  # no call: computed apart, copied into the state at the end
        code = self.printer.print(node, args)
        for temp, text in self.printer.pending:  # subexpressions the expression shares
            self.statements.append(Statement(temp, text, f"shared by {self.comments.line(node)}", section,
                                             reads=reads))
        self.printer.pending.clear()
        same = [i for i, a in zip(node.inputs, args) if a.text == code.text]
        if same:  # printed as a bare alias of an input
            self.aliases[id(node)] = same[0]
            self.codes[id(node)] = code
            self.reads[id(node)] = self.reads[id(same[0])]
        elif self._inline(node, code):
            self.codes[id(node)] = code
            self.reads[id(node)] = reads
        else:
            self._line(node, section, code.text, reads)

    def _line(self, node: Node, section: str, value: str, reads: frozenset, call: Call | Lowered | None = None,
              state: Node | None = None):
        """A line computing ``node``: bound to its name, or written into the array of ``state``."""
        name = self.name_of(node) if state is None else self.names.setdefault(id(node), self.names[id(state)])
        self.named.add(id(node))
        comment = self.comments.line(node)
        if isinstance(call, Lowered) and not comment.startswith("node "):  # (a node's comment has its formula)
            comment = f"{comment}: {call.expression}"
        target, buffer = ("", name) if state is not None else (name, None)
        self.statements.append(Statement(target, value, comment, section, node, reads, call, buffer))
        self.codes[id(node)] = Code(name)
        self.reads[id(node)] = frozenset([node])

    def _bufferable(self, node: Node) -> bool:
        """Whether the node's value may live in a preallocated buffer (it never leaves the call)."""
        return (self.plan_memory and node.op.writes_into and node.dtype.kind == "f" and node.ndim >= 1
                and id(node) not in self.output_ids and self.dim_texts(node) is not None)

    def _inline(self, node: Node, code: Code) -> bool:
        """Inline a value read once, unnamed, not a derivative and short."""
        return (
            self.uses[id(node)] == 1
            and id(node) not in self.keep_named
            and not self.labels.name(node)
            and node not in self.labels.about
            and id(node) not in self.shape_refs
            and id(node) not in self.has_derivative
            and len(code.text) <= INLINE_LIMIT
        )

    def _constant(self, node: Node) -> Code:
        value = node.op.value
        if value.ndim == 0:
            return self.printer.literal(value, node.op.weak)
        name = self.name_of(node)
        dtype = "np.bool_" if value.dtype.kind == "b" else f"np.{value.dtype.name}"
        if value.size == 0:
            body = f"np.zeros({value.shape}, dtype={dtype})"
        elif value.size <= SMALL_ARRAY and (value.dtype.kind != "f" or np.isfinite(value).all()):
            body = f"np.array({value.tolist()!r}, dtype={dtype})"
        else:
            data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
            body = (f"np.frombuffer(base64.b64decode({data!r}), dtype={np.dtype(value.dtype).str!r})"
                    f".reshape({value.shape})")
        self.constants.append(f"{name} = {self.printer.upload(body)}  # {format_shape(value.shape)} {value.dtype}")
        self.named.add(id(node))
        return Code(name)

    def _constant_array(self, fill: str, shape: tuple, dtype) -> str:
        """The name of an array of ``fill`` ("zeros" or "ones") allocated with the buffers (so it
        may have a named dimension) and never written: ufuncs run faster against it than
        against a broadcast scalar, and ``ones @ a`` sums columns faster than a reduction."""
        key = (fill, shape, np.dtype(dtype).str)
        if key not in self.filled:
            parts = [fill, *(str(d) if isinstance(d, int) else identifier(d) for d in shape)]
            self.filled[key] = self.namer.unique("_".join(parts))
        return self.filled[key]
