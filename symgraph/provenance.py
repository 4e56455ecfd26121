"""Labels that belong to one call, not to the shared nodes.

Nodes are hash-consed and shared by every graph that reaches them, so what a
differentiation or simplification call knows about a node (this is the adjoint
of ``w``, this value came from the vjp of ``tanh``, these rules built it) is
kept in a :class:`Labels` table owned by that call, never written on the node.

A call hands its table on with its results: each result it returns is a
*labelled copy* of the value (same op, same inputs, a distinct object that
carries the table), so a graph built from those results finds the table, and
the same value built by anyone else does not. :func:`labels_of` collects the
tables reachable from some nodes; the simplifier merges a labelled copy with
the interned node it copies and carries the labels over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .graph import Node, topo_sort


@dataclass
class Labels:
    """One call's knowledge about nodes, keyed by node (identity).

    - ``about[n] = ("grad", x)``: n is the adjoint of x (printed ``grad_x``);
      ``("tangent", x)``: the tangent of x (``tan_x``).
    - ``origin[n]``: the rule that built n: ``("vjp", primal, input index or None)``,
      ``("jvp", primal)``, ``("sum", primal, number of contributions)`` or
      ``("fit", like, shape, parent origin, "vjp" | "jvp")`` (un-broadcasting).
    - ``rules[n]``: the simplifier rules that built n.
    - ``names[n]``: a display name n inherited from the value it replaced.
    """

    about: dict = field(default_factory=dict)
    origin: dict = field(default_factory=dict)
    rules: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)

    def name(self, node: Node) -> str | None:
        """The node's display name: its own, or the one it inherited through a rewrite."""
        return node.name or self.names.get(node)

    def __bool__(self):
        return bool(self.about or self.origin or self.rules or self.names)

    def update(self, other: Labels):
        """Add ``other``'s entries for nodes this table says nothing about."""
        for mine, theirs in ((self.about, other.about), (self.origin, other.origin),
                             (self.rules, other.rules), (self.names, other.names)):
            for node, value in theirs.items():
                mine.setdefault(node, value)


def labels_of(nodes) -> Labels:
    """The labels of every call whose results the graph of ``nodes`` was built from, merged
    (where two calls label the same node, the first found in topological order wins)."""
    merged = Labels()
    for node in topo_sort(nodes):  # TRANSITIONAL: read from the nodes until the calls keep their own tables
        if node.about is not None:
            merged.about[node] = node.about
        if node.origin is not None:
            merged.origin[node] = node.origin
        if node.rules:
            merged.rules[node] = node.rules
    return merged
