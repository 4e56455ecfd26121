"""Pictures of graphs a student can read: ``sg.to_dot``, ``sg.draw`` and ``sg.compare_modes``.

Each box is named as the generated code names the value (codegen's schedule names them,
see :func:`symgraph.trace.named_schedule`) and coloured by the part of the generated code
it belongs to: forward, backward (adjoints), tangents (forward mode) or optimizer. Outputs
have a double border; constants show small values; each edge carries the argument position
(0, 1, ...) its input fills; a derivative op says what it computes (``tanh'(y) = 1 - y²``).
Given a ``feed``, each box also shows its value and, for the values of a scalar output's
graph, its adjoint.

``sg.draw`` writes PNG or SVG: with Graphviz ``dot`` when it is installed, else with
matplotlib from a layered (networkx) layout, so it needs no system package.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass

import networkx as nx
import numpy as np

from .graph import Constant, Node, Parameter, topo_sort
from .inspect import _attrs_text, _dot_quote, to_networkx
from .provenance import labels_of
from .shapes import format_shape
from .trace import _leaf_values, _run, derivative_formula, format_value, named_schedule, trace

COLOURS = {  # fill of each kind of box (the legend of every picture)
    "input": "#ffffff", "parameter": "#e0e0e0", "constant": "#fff6c8",
    "forward": "#cfe3ff", "backward": "#ffd2b3", "tangent": "#c9f0c9", "optimizer": "#e5d0ff",
}
SECTIONS = {"forward": "forward", "backward": "backward", "forward mode: tangents": "tangent"}
SUFFIXES = (".png", ".svg")
MAX_REPR_NODES = 150  # Jupyter shows a picture of graphs up to this size


@dataclass
class Box:
    """One node as drawn: its key in :func:`sg.to_networkx`, lines of text, kind, output mark."""

    key: str
    node: Node
    lines: list[str]
    kind: str
    output: bool


def _as_list(nodes) -> list[Node]:
    return [nodes] if isinstance(nodes, Node) else list(nodes)


def _shown(text: str) -> str:
    """User text on one line, control characters escaped (a newline shows as \\n)."""
    return str(text).encode("unicode_escape").decode("ascii")


def boxes(outputs, feed: dict | None = None, updates: dict | None = None) -> tuple[list[Box], nx.DiGraph]:
    """The boxes of the graph of ``outputs`` (and ``updates``: {state: new value}) and its networkx graph."""
    outputs = _as_list(outputs)
    pairs = list((updates or {}).items())
    everything = outputs + [v for _, v in pairs]
    order = topo_sort(everything)
    labels = labels_of(everything)
    schedule = named_schedule(order, labels, pairs)
    comments = {id(s.node): s.comment for s in schedule.statements if s.node is not None}
    values, adjoints = _values(outputs, order, labels, feed)
    g = to_networkx(everything)
    key_of = {id(data["node"]): key for key, data in g.nodes(data=True)}
    result = []
    for node in order:
        name = schedule.name_of(node) if not _scalar_constant(node) else format_value(node.op.value)
        first = name if not node.name or _shown(node.name) == name else f"{name} (\"{_shown(node.name)}\")"
        kind = _kind(node, schedule)
        lines = [first, _what(node, comments), format_shape(node.shape) + ("" if node.dtype.kind == "f"
                                                                           else f" {node.dtype}")]
        if values is not None and kind != "constant":
            lines += _value_lines("= ", values[id(node)])
            if id(node) in adjoints:
                lines += _value_lines("grad = ", adjoints[id(node)])
        result.append(Box(key_of[id(node)], node, [line for line in lines if line], kind,
                          any(node is o for o in everything)))
    return result, g


def _value_lines(prefix: str, value) -> list[str]:
    """A value in a box: up to 16 numbers whole (a matrix row per line), else shape and range."""
    a = np.asarray(value)
    if a.size > 16 or a.ndim > 2:
        return [f"{prefix}{format_shape(a.shape)} in [{a.min():.3g}, {a.max():.3g}]" if a.size and a.dtype.kind in "biuf"
                else f"{prefix}{format_shape(a.shape)}"]
    text = np.array2string(a, precision=3, suppress_small=True, max_line_width=60)
    lines = text.splitlines()
    return [prefix + lines[0]] + [" " * len(prefix) + line for line in lines[1:]]


def _scalar_constant(node: Node) -> bool:
    return isinstance(node.op, Constant) and node.op.value.ndim == 0


def _kind(node: Node, schedule) -> str:
    if isinstance(node.op, Constant):
        return "constant"
    if node.is_leaf:
        return "parameter" if isinstance(node.op, Parameter) else "input"
    return SECTIONS.get(schedule.section.get(id(node)), "optimizer")


def _what(node: Node, comments: dict) -> str:
    """The op and what it computes: a derivative's formula, a constant's value, codegen's comment."""
    if isinstance(node.op, Constant):
        value = node.op.value
        return "constant" if value.ndim == 0 else (
            format_value(value) if value.size <= 6 else f"constant {format_shape(value.shape)}")
    if node.is_leaf:
        return node.op.name
    formula = derivative_formula(node)
    if formula:
        return formula
    comment = comments.get(id(node))  # codegen's comment: "vjp of tanh(add1) wrt add1", "node h: tanh(add1)"
    if comment:
        return _shown(comment.split(": ", 1)[1] if comment.startswith("node ") else comment)
    return _shown(node.op.name + (f"({_attrs_text(node)[2:]})" if _attrs_text(node) else ""))


def _values(outputs, order, labels, feed):
    """(value of each node, adjoint of each value of the first scalar output), or (None, {})."""
    if feed is None:
        return None, {}
    values = _run(order, _leaf_values(order, feed))
    adjoints = {}
    primal = next((o for o in outputs if o.shape == () and o.dtype.kind == "f" and o not in labels.about
                   and o not in labels.origin), None)
    if primal is not None:
        needed = {id(n) for n in topo_sort([primal])}
        t = trace(primal, {k: v for k, v in feed.items() if id(k) in needed})
        adjoints = {id(r.node): r.value for r in t.reverse}
    return values, adjoints


# -- DOT -------------------------------------------------------------------------------
def to_dot(outputs, feed: dict | None = None, updates: dict | None = None) -> str:
    """Graphviz DOT text of the graph: names as in generated code, colours by section (forward,
    backward, tangent, optimizer), outputs with a double border, argument positions on the edges,
    and, given a ``feed``, each node's value and adjoint. Every piece of user text is quoted."""
    items, g = boxes(outputs, feed, updates)
    lines = ["digraph symgraph {", "  rankdir=LR;",
             "  node [fontname=Helvetica, fontsize=10, style=filled];", "  edge [fontsize=9];"]
    for b in items:
        shape = "ellipse" if b.node.is_leaf else ("note" if b.kind == "constant" else "box")
        extra = ", peripheries=2, penwidth=2" if b.output else ""
        lines.append(f"  {_dot_quote(b.key)} [label={_dot_quote(chr(10).join(b.lines))}, shape={shape}, "
                     f"fillcolor={_dot_quote(COLOURS[b.kind])}{extra}];")
    for a, c, data in g.edges(data=True):
        lines.append(f"  {_dot_quote(a)} -> {_dot_quote(c)} [label={_dot_quote(','.join(map(str, data['positions'])))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- pictures --------------------------------------------------------------------------
def draw(outputs, path, feed: dict | None = None, updates: dict | None = None, engine: str = "auto") -> str:
    """Write a picture of the graph (see :func:`to_dot`) to ``path``, PNG or SVG by its suffix.

    ``engine``: ``"dot"`` (Graphviz, must be installed), ``"matplotlib"`` (a layered layout,
    no system package needed) or ``"auto"`` (dot when installed). Returns the path.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"draw: cannot tell the picture format from {path!r}; use a .png or .svg path")
    if engine not in ("auto", "dot", "matplotlib"):
        raise ValueError(f"draw: engine must be 'auto', 'dot' or 'matplotlib', got {engine!r}")
    dot = shutil.which("dot")
    if engine == "dot" and dot is None:
        raise ValueError("draw: engine='dot' needs Graphviz's dot program, which is not installed")
    if dot is not None and engine != "matplotlib":
        subprocess.run([dot, f"-T{suffix[1:]}", "-o", path], input=to_dot(outputs, feed, updates).encode("utf-8"),
                       check=True, capture_output=True)
        return path
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = figure([(outputs, feed, updates, None)])
    try:
        fig.savefig(path, format=suffix[1:], dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def figure(panels):
    """A matplotlib figure with one panel per ``(outputs, feed, updates, title)``, side by side."""
    import matplotlib.pyplot as plt

    laid = [(_layout(*boxes(o, f, u)), title) for o, f, u, title in panels]
    ratios = [max(2.0, 3.2 * w) for (_, _, w, _), _ in laid]
    height = max(max(2.0, 0.14 * h) for (_, _, _, h), _ in laid) + 0.8
    fig, axes = plt.subplots(1, len(laid), figsize=(min(sum(ratios), 80), min(height, 60)),
                             gridspec_kw={"width_ratios": ratios}, squeeze=False)
    for ax, ((items, pos, w, h), title) in zip(axes[0], laid):
        _panel(ax, items, pos, w, h, title)
    handles = [plt.Rectangle((0, 0), 1, 1, fc=c, ec="#555555") for c in COLOURS.values()]
    fig.legend(handles, list(COLOURS), loc="lower center", ncol=len(COLOURS), fontsize=8, frameon=False)
    return fig


def _layout(items: list[Box], g: nx.DiGraph):
    """Positions (x: layer, y: in text lines) of a layered layout: an op one layer right of its
    deepest input (networkx's topological generations), a leaf or constant just left of its first
    reader; each layer ordered by its inputs' mean height, so that edges cross less.
    Returns (boxes, positions, number of layers, height of the tallest layer)."""
    layer = {k: i for i, gen in enumerate(nx.topological_generations(g)) for k in gen}
    for b in items:
        if not b.node.inputs and g.out_degree(b.key):
            layer[b.key] = max(0, min(layer[k] for k in g.successors(b.key)) - 1)
    rank = {b.key: i for i, b in enumerate(items)}
    size = {b.key: len(b.lines) + 2 for b in items}
    pos: dict[str, tuple[float, float]] = {}
    depth = max(layer.values(), default=0) + 1
    tallest = 1
    for x in range(depth):
        keys = sorted((k for k in layer if layer[k] == x), key=rank.get)

        def height(k):
            ys = [pos[p][1] for p in g.predecessors(k) if p in pos]
            return -sum(ys) / len(ys) if ys else 0.0

        keys.sort(key=height)
        total = sum(size[k] for k in keys)
        tallest = max(tallest, total)
        top = total / 2
        for k in keys:
            pos[k] = (float(x), top - size[k] / 2)
            top -= size[k]
    return items, pos, depth, tallest


def _panel(ax, items, pos, width, height, title):
    ax.set_xlim(-0.6, width - 0.4)
    ax.set_ylim(-height / 2 - 1, height / 2 + 1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11, parse_math=False)
    key_of = {id(b.node): b.key for b in items}
    for b in items:
        for pos_in, x in enumerate(b.node.inputs):
            (x0, y0), (x1, y1) = pos[key_of[id(x)]], pos[b.key]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=1,
                        arrowprops=dict(arrowstyle="-|>", color="#777777", lw=0.7, shrinkA=30, shrinkB=30))
            ax.text(x0 + 0.75 * (x1 - x0), y0 + 0.75 * (y1 - y0), str(pos_in), fontsize=6, zorder=2,
                    color="#333333", ha="center", va="center", parse_math=False,
                    bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec="#999999", lw=0.5))
    for b in items:
        x, y = pos[b.key]
        style = "round,pad=0.3" if b.node.is_leaf else "square,pad=0.3"
        ax.text(x, y, "\n".join(_clip(line) for line in b.lines), ha="center", va="center", fontsize=6.5,
                family="DejaVu Sans Mono", parse_math=False, zorder=3,
                bbox=dict(boxstyle=style, fc=COLOURS[b.kind], ec="black" if b.output else "#555555",
                          lw=2.2 if b.output else 0.7))


def _clip(line: str, width: int = 38) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def svg(outputs, feed=None, updates=None) -> str:
    """The picture as SVG text (what Jupyter shows for a node: see ``Node._repr_svg_``)."""
    dot = shutil.which("dot")
    if dot is not None:
        done = subprocess.run([dot, "-Tsvg"], input=to_dot(outputs, feed, updates).encode("utf-8"),
                              check=True, capture_output=True)
        return done.stdout.decode("utf-8")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = figure([(outputs, feed, updates, None)])
    try:
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def repr_svg(node: Node) -> str | None:
    """SVG of the node's graph for Jupyter, or None (a text repr instead) for a large graph."""
    if len(topo_sort([node])) > MAX_REPR_NODES:
        return None
    return svg(node)


# -- forward versus reverse ------------------------------------------------------------
@dataclass
class ModeComparison:
    """Forward and reverse mode side by side for one small graph: the costs (``report``, from
    :func:`sg.explain_mode`), the two derivative graphs, and the traces of both sweeps."""

    report: object
    forward_graph: Node
    reverse_graph: Node
    forward_trace: object | None
    reverse_trace: object | None
    path: str | None = None

    def __str__(self):
        parts = ["== cost of each mode (sg.explain_mode) ==", str(self.report)]
        if self.forward_trace is not None:
            parts += ["", "== forward mode: one sweep pushes the tangent (seed: ones) ==", str(self.forward_trace)]
        if self.reverse_trace is not None:
            parts += ["", "== reverse mode: one sweep pulls back the adjoint (seed: ones) ==", str(self.reverse_trace)]
        if self.path:
            parts += ["", f"picture: {self.path}"]
        return "\n".join(parts)


def compare_modes(output: Node, wrt: Node, feed: dict | None = None, path=None) -> ModeComparison:
    """Forward versus reverse mode on a small graph: each mode's cost (``sg.explain_mode``), the
    Jacobian graph each mode builds (``sg.jacobian(..., mode=...)``), and, when the placeholders
    have values (``feed``), the trace of each sweep: forward mode seeded with ones on ``wrt``,
    reverse mode with ones on the output (a non-scalar output is traced through its sum, the
    cotangent of ones). With ``path`` (.png or .svg) the two derivative graphs are drawn side by
    side in one figure."""
    from .jacobian import explain_mode, jacobian
    from .ops import sum as total
    from .simplify import simplify

    report = explain_mode(output, wrt)
    graphs = {m: simplify(jacobian(output, wrt, mode=m), fuse=False) for m in ("forward", "reverse")}
    forward_trace = reverse_trace = None
    placeholders = [n for n in topo_sort([output]) if n.is_leaf and not isinstance(n.op, Parameter)]
    if feed is not None or not placeholders:
        forward_trace = trace(output, feed or {}, wrt=wrt, mode="forward")
        scalar = output if output.shape == () else total(output)
        reverse_trace = trace(scalar, feed or {}, wrt=[wrt])
    result = ModeComparison(report, graphs["forward"], graphs["reverse"], forward_trace, reverse_trace)
    if path is not None:
        result.path = _draw_side_by_side(graphs, feed, os.fspath(path))
    return result


def _draw_side_by_side(graphs: dict, feed, path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"compare_modes: cannot tell the picture format from {path!r}; use a .png or .svg path")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = figure([(graphs[m], feed, None, f"{m} mode: the Jacobian as {m}-mode builds it") for m in graphs])
    try:
        fig.savefig(path, format=suffix[1:], dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
