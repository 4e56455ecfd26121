"""Looking at graphs: an SSA listing, op counts, a networkx export (DOT and pictures: :mod:`symgraph.picture`)."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import numpy as np

from .graph import Constant, Node, topo_sort
from .provenance import Labels, labels_of
from .shapes import format_shape


def _nodes(nodes) -> list[Node]:
    return [nodes] if isinstance(nodes, Node) else list(nodes)


def display_names(order: list[Node], labels: Labels | None = None) -> dict[int, str]:
    """A short unique label per node: leaves and named nodes by name, adjoints and tangents as
    ``grad_<x>`` / ``tan_<x>`` (as generated code names them), others t1, t2, ...

    Names are shown escaped (a newline as \\n), so every label stays on one line.
    """
    labels = labels if labels is not None else labels_of(order)
    names: dict[int, str] = {}
    used: set[str] = set()
    temp = 0

    def name_of(node: Node) -> str:
        nonlocal temp
        if id(node) in names:
            return names[id(node)]
        names[id(node)] = "?"  # a guard, should labels ever name a value after itself
        name = labels.name(node) or labels.derivative_name(node, name_of)
        if name:
            base = name.encode("unicode_escape").decode("ascii")
        else:
            temp += 1
            base = f"t{temp}"
        label, k = base, 1
        while label in used:
            k += 1
            label = f"{base}_{k}"
        used.add(label)
        names[id(node)] = label
        return label

    for node in order:
        name_of(node)
    return names


def _constant_text(node: Node) -> str | None:
    value = node.op.value
    if value.ndim == 0:
        return repr(value.item())
    return None


def _attrs_text(node: Node) -> str:
    """The op's attributes as keyword arguments, under the names its builder takes (``op.keywords``)."""
    keywords = getattr(node.op, "keywords", {})
    attrs = {keywords.get(k, k): v for k, v in node.op.attrs().items()
             if k not in ("name", "expr", "symbols", "weak") and v is not None and v != ()}
    if getattr(node.op, "show_expr", False):  # a derivative, fused or user-defined elementwise op
        attrs["expr"] = node.op.expr
    return "".join(f", {k}={v}" for k, v in attrs.items())


def dprint(nodes) -> str:
    """One line per node in topological order, SSA style: ``%t3 = tanh(%t2)  (2, 4) float64``."""
    order = topo_sort(_nodes(nodes))
    names = display_names(order)
    lines = []

    def ref(n: Node) -> str:
        if isinstance(n.op, Constant) and not n.name and _constant_text(n) is not None:
            return _constant_text(n)
        return "%" + names[id(n)]

    for node in order:
        if isinstance(node.op, Constant) and ref(node) != "%" + names[id(node)]:
            continue  # scalar constants are shown inline
        if node.inputs:
            rhs = f"{node.op.name}({', '.join(ref(i) for i in node.inputs)}{_attrs_text(node)})"
        elif isinstance(node.op, Constant):
            rhs = f"constant({np.array2string(node.op.value, threshold=6, separator=', ')})"
        else:
            rhs = node.op.name
        lines.append(f"%{names[id(node)]} = {rhs}  {format_shape(node.shape)} {node.dtype}")
    return "\n".join(lines)


def count_ops(nodes) -> dict[str, int]:
    """How many nodes of each op the outputs depend on (leaves and constants included)."""
    return dict(Counter(n.op.name for n in topo_sort(_nodes(nodes))))


def to_networkx(nodes) -> nx.DiGraph:
    """The graph as a networkx DiGraph: one vertex per node (keyed by its dprint label),
    with attributes ``node``, ``op``, ``shape`` and ``dtype``; edges run from input to user
    with ``positions`` (which argument slots the input fills)."""
    order = topo_sort(_nodes(nodes))
    names = display_names(order)
    g = nx.DiGraph()
    for node in order:
        g.add_node(names[id(node)], node=node, op=node.op.name, shape=node.shape, dtype=str(node.dtype))
        for pos, x in enumerate(node.inputs):
            edge = g.get_edge_data(names[id(x)], names[id(node)])
            if edge is None:
                g.add_edge(names[id(x)], names[id(node)], positions=[pos])
            else:
                edge["positions"].append(pos)
    return g


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'
