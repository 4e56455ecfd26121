"""``sg.trace``: the forward sweep and the reverse (or tangent) sweep of a graph, with values.

A trace is the course's backprop table made by the library: one row per value
``u1 ... un`` the forward sweep computes (its op and its value), then one row per
adjoint ``grad_u`` in the order the reverse sweep computes them (or, in forward
mode, one row per tangent ``tan_u``).

- Every value comes from running the graph: each node's own ``op.compute`` on its
  inputs' values, the reference semantics the code generator is tested against.
- Every name is the one :mod:`codegen` gives the value: the trace runs codegen's
  schedule (:class:`codegen.schedule.Schedule`, unsimplified, so that every value
  of the table keeps its own line) over the values and their derivatives, so
  ``grad_hidden`` here is ``grad_hidden`` in ``codegen.compile(...).source``.
- The derivatives are the sweeps :func:`sg.grad` and :func:`sg.jvp` run
  (:func:`symgraph.autodiff.reverse_sweep` / ``forward_sweep``), not a re-derivation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .autodiff import _check_differentiable, forward_sweep, reverse_sweep, stabilized
from .graph import Constant, Node, Parameter, Placeholder, as_node, host_array, topo_sort
from .provenance import PREFIXES, Recorder
from .shapes import format_shape

SMALL = 16  # arrays up to this many elements are shown whole
OP_WIDTH = 60  # longest op text shown in a table (longer ones end in "...")


@dataclass(frozen=True, eq=False)
class Row:
    """One line of a sweep: ``name = op`` has ``value``.

    ``name`` is the variable the generated code gives the value (``h``, ``matmul1``,
    ``grad_W1``, ``tan_x``); ``op`` the op and its arguments (``tanh(add1)``);
    ``node`` the graph node the row is about (for an adjoint or tangent, the primal
    node); ``value`` its NumPy array.
    """

    name: str
    op: str
    node: Node
    value: np.ndarray


@dataclass(eq=False)
class Trace:
    """The sweeps of one evaluation (see :func:`trace`); ``str(trace)`` is the table."""

    mode: str
    output: Node
    forward: list[Row] = field(default_factory=list)
    reverse: list[Row] = field(default_factory=list)
    tangents: list[Row] = field(default_factory=list)

    def _find(self, rows, node):
        return next((r.value for r in rows if r.node is node), None)

    def value(self, node: Node) -> np.ndarray:
        """The value of ``node`` in the forward sweep (a KeyError if the sweep has none)."""
        found = self._find(self.forward, node)
        if found is None:
            raise KeyError(f"trace: {_label(node)} is not computed by this trace's forward sweep")
        return found

    def adjoint(self, node: Node) -> np.ndarray | None:
        """d output / d node (reverse mode), or None when the sweep computes none for it."""
        return self._find(self.reverse, node)

    def tangent(self, node: Node) -> np.ndarray | None:
        """d node / d wrt applied to the seed (forward mode), or None."""
        return self._find(self.tangents, node)

    def __str__(self):
        derivative = {id(r.node): r for r in self.reverse or self.tangents}
        head = "adjoint" if self.mode == "reverse" else "tangent"
        rows = [(f"u{i}", r.name, _short(r.op), format_value(r.value),
                 format_value(derivative[id(r.node)].value) if id(r.node) in derivative else "")
                for i, r in enumerate(self.forward, 1)]
        parts = [f"forward sweep (values), then each value's {head}",
                 _table(("", "name", "op", "value", head), rows)]
        sweep = self.reverse if self.mode == "reverse" else self.tangents
        title = ("reverse sweep: the adjoints, in the order it computes them" if self.mode == "reverse"
                 else "forward-mode sweep: the tangents, in the order it computes them")
        parts += ["", title, _table(("name", "op", "value"),
                                    [(r.name, _short(r.op), format_value(r.value)) for r in sweep])]
        return "\n".join(parts)

    def __repr__(self):
        return f"<Trace {self.mode}: {len(self.forward)} values, {len(self.reverse or self.tangents)} derivatives>"


def trace(output: Node, feed: dict | None = None, wrt=None, mode: str = "reverse", seed=None) -> Trace:
    """Run ``output``'s graph on ``feed`` and record both sweeps, with values.

    ``feed`` maps each placeholder the output depends on to an array; parameters use
    their ``.value``. ``wrt``: the nodes to differentiate with respect to (default:
    every floating-point placeholder and parameter the output depends on).

    ``mode="reverse"``: ``output`` must be a scalar; the reverse sweep seeds its adjoint
    with 1 and records one adjoint per value between ``wrt`` and the output.
    ``mode="forward"``: ``wrt`` is one node; its tangent is ``seed`` (default: ones of
    its shape, i.e. the directional derivative along all-ones) and the sweep records
    the tangent of every value that depends on it.
    """
    if mode not in ("reverse", "forward"):
        raise ValueError(f"trace: mode must be 'reverse' or 'forward', got {mode!r}")
    if not isinstance(output, Node):
        raise TypeError(f"trace: output must be a graph node, got {type(output).__name__}")
    order = topo_sort([output])
    values = _leaf_values(order, feed)
    if wrt is None:
        wrt = [n for n in order if n.is_leaf and n.dtype.kind == "f"]
        if mode == "forward":
            if len(wrt) != 1:
                raise ValueError(f"trace: mode='forward' pushes one tangent: give wrt= one of "
                                 f"{', '.join(_label(w) for w in wrt) or 'the inputs'}")
            wrt = wrt[0]
    if mode == "forward":
        if not isinstance(wrt, Node):
            raise ValueError("trace: mode='forward' takes one node as wrt (one tangent is pushed forward)")
        wrt_list = [wrt]
    else:
        wrt_list = [wrt] if isinstance(wrt, Node) else list(wrt)
        if output.shape != ():
            raise ValueError(f"trace: mode='reverse' needs a scalar output, but its shape is "
                             f"{format_shape(output.shape)}; reduce it (.sum(), .mean()), trace the "
                             "forward mode, or pull back a cotangent with sg.vjp")
    _check_differentiable(wrt_list, "trace")
    (stable,) = stabilized([output], wrt_list)
    if mode == "reverse":
        start = as_node(1.0, like=stable)
        rec = Recorder([stable, start])
        derivatives = reverse_sweep([stable], wrt_list, [start], rec)
    else:
        start = as_node(np.ones(_static_shape(wrt, values)) if seed is None else seed, like=wrt)
        if start.shape != wrt.shape and not isinstance(seed, Node):
            raise ValueError(f"trace: the seed has shape {format_shape(start.shape)}, but "
                             f"{_label(wrt)} has shape {format_shape(wrt.shape)}")
        rec = Recorder([stable, start])
        derivatives = forward_sweep([stable], wrt_list, [start], rec)

    primal = [n for n in topo_sort([stable]) if not _inline_constant(n)]
    sweep = [n for n in (reversed(primal) if mode == "reverse" else primal) if id(n) in derivatives]
    computed = _run(topo_sort([stable, *(derivatives[id(n)] for n in sweep)]), values)
    names = _names(primal, [derivatives[id(n)] for n in sweep], rec.labels)
    prefix = PREFIXES["grad" if mode == "reverse" else "tangent"]
    if sweep and derivatives[id(sweep[0])] is start:  # the seed is a constant in generated code: call it
        names[id(start)] = f"{prefix}_{names[id(sweep[0])]}"  # after what it seeds (grad_loss, tan_x)

    result = Trace(mode, output)
    result.forward.extend(Row(names[id(n)], _op_text(n, names), n, computed[id(n)]) for n in primal)
    seen: dict[int, str] = {}  # derivative node -> the name of the first row that showed it
    rows = result.reverse if mode == "reverse" else result.tangents
    for n in sweep:
        d = derivatives[id(n)]
        if d is start:  # the seed: d output/d output = 1, or the wrt's tangent
            name, op = names[id(d)], "seed (ones)" if seed is None else "seed"
        elif id(d) in seen or id(d) in names and d in primal:  # the same value as an earlier row
            name, op = f"{prefix}_{names[id(n)]}", seen.get(id(d)) or names[id(d)]
        else:
            name, op = names[id(d)], _op_text(d, names)
        seen.setdefault(id(d), name)
        rows.append(Row(name, op, n, computed[id(d)]))
    return result


# -- feed, values, names ---------------------------------------------------------------
def _label(node: Node) -> str:
    return f"{node.op.name} {node.name!r}" if node.name else f"{node.op.name} node {format_shape(node.shape)}"


def _leaf_values(order: list[Node], feed) -> dict[int, np.ndarray]:
    """The leaves' arrays: placeholders from ``feed`` (checked), parameters from ``.value``."""
    feed = dict(feed or {})
    values: dict[int, np.ndarray] = {}
    needed = [n for n in order if type(n.op) is Placeholder]
    for key in feed:
        if not isinstance(key, Node) or type(key.op) is not Placeholder:
            raise ValueError(f"trace: feed keys must be placeholders, got {key!r:.80}")
        if not any(key is n for n in needed):
            raise ValueError(f"trace: the feed gives {_label(key)}, which the output does not depend on")
    dims: dict[str, int] = {}
    for leaf in order:
        if isinstance(leaf.op, Parameter):
            values[id(leaf)] = host_array(leaf.op.value)
        elif type(leaf.op) is Placeholder:
            if leaf not in feed:
                raise ValueError(f"trace: the feed has no value for {_label(leaf)}, which the output depends on")
            array = np.asarray(feed[leaf])
            if array.ndim != leaf.ndim or any(
                    isinstance(d, int) and d != s or isinstance(d, str) and dims.setdefault(d, s) != s
                    for d, s in zip(leaf.shape, array.shape)):
                raise ValueError(f"trace: {_label(leaf)} expects shape {format_shape(leaf.shape)}, got {array.shape}"
                                 + (f" (dimensions so far: {dims})" if dims else ""))
            values[id(leaf)] = array.astype(leaf.dtype, copy=False)
    return values


def _static_shape(node: Node, values: dict) -> tuple:
    if id(node) in values:
        return values[id(node)].shape
    if all(isinstance(d, int) for d in node.shape):
        return node.shape
    raise ValueError(f"trace: give seed= for {_label(node)}: its shape {format_shape(node.shape)} is not known")


def _run(order: list[Node], values: dict) -> dict[int, np.ndarray]:
    """Every node's value, each computed by its own op from its inputs' values."""
    values = dict(values)
    for node in order:
        if id(node) not in values:
            args = [values[id(i)] for i in node.inputs]
            values[id(node)] = np.asarray(node.op.compute(*args), dtype=node.dtype)
    return values


def _inline_constant(node: Node) -> bool:
    """A scalar constant: printed inline (``0.1``), it gets no row of its own."""
    return isinstance(node.op, Constant) and node.op.value.ndim == 0


def _names(primal: list[Node], derivatives: list[Node], labels) -> dict[int, str]:
    """The names codegen's schedule gives these values when they are all outputs (so every one
    gets a line of its own), unsimplified."""
    from codegen import backends
    from codegen.schedule import Program, Schedule

    outputs = list({id(n): n for n in primal + derivatives if not n.is_leaf and not _inline_constant(n)}.values())
    graph = topo_sort(outputs)
    inputs = [n for n in graph if type(n.op) is Placeholder]
    params = [n for n in graph if isinstance(n.op, Parameter)]
    schedule = Schedule(Program("trace", inputs, outputs, [], params, graph), backends.get("numpy"), labels,
                        plan_memory=False)
    schedule.run()
    return {id(n): schedule.name_of(n) for n in primal + derivatives if not _inline_constant(n)}


# -- text ----------------------------------------------------------------------------
def _op_text(node: Node, names: dict, depth: int = 0) -> str:
    """``tanh(add1)``: the op with its arguments, each by name (a value with no row of its own is
    spelled out as an op of its arguments, a scalar constant by its value)."""
    if node.is_leaf:
        return node.op.name
    if isinstance(node.op, Constant):
        return "constant"
    return f"{derivative_text(node) or node.op.name}({', '.join(_arg_text(i, names, depth) for i in node.inputs)})"


def _arg_text(node: Node, names: dict, depth: int) -> str:
    if _inline_constant(node):
        return format_value(node.op.value)
    if id(node) in names:
        return names[id(node)]
    return _op_text(node, names, depth + 1) if depth < 4 else "..."


def derivative_text(node: Node) -> str | None:
    """``tanh'`` for the derivative op a vjp or jvp of ``tanh`` builds, ``mul'_1`` for a partial
    of a function of several inputs (with respect to input 1); None for any other node."""
    about = getattr(node.op, "derivative_of", None)
    if about is None:
        return None
    base, index, _ = about
    return f"{base}'" if index is None else f"{base}'_{index}"


def derivative_formula(node: Node) -> str | None:
    """``tanh'(y) = 1 - y²``: what a derivative node computes, in the primal's variables (x its
    input, y its output); None for a node that is not a derivative."""
    about = getattr(node.op, "derivative_of", None)
    if about is None:
        return None
    import sympy as sp

    names = about[2]
    expr = node.op.expr.xreplace({s: sp.Symbol(v) for s, v in zip(node.op.symbols, names)})
    text = str(expr).replace("**2", "²").replace("**3", "³").replace("*", "·")
    return f"{derivative_text(node)}({', '.join(names)}) = {text}"


def format_value(value) -> str:
    """A small array whole on one line, a large one by shape and a summary."""
    a = np.asarray(value)
    if a.size <= SMALL:
        text = np.array2string(a, precision=4, suppress_small=True, separator=", ", max_line_width=10**6)
        return " ".join(text.split())
    if a.dtype.kind in "biuf":
        return (f"{format_shape(a.shape)} {a.dtype}: mean {a.mean():.4g}, min {a.min():.4g}, "
                f"max {a.max():.4g}")
    return f"{format_shape(a.shape)} {a.dtype}"


def _short(text: str) -> str:
    return text if len(text) <= OP_WIDTH else text[: OP_WIDTH - 3] + "..."


def _table(head: tuple, rows: list[tuple]) -> str:
    widths = [max(len(str(r[k])) for r in [head, *rows]) for k in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
