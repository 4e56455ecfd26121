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

from .graph import Node, current_graph, topo_sort


PREFIXES = {"grad": "grad", "tangent": "tan"}  # the README's glossary: grad_<x> adjoints, tan_<x> tangents


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
    - ``jacobians[n]``: n is a Jacobian built by ``sg.jacobian``; the value is its note
      (the mode asked for and run, and the costs), for the generated module's header.
    """

    about: dict = field(default_factory=dict)
    origin: dict = field(default_factory=dict)
    rules: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)
    jacobians: dict = field(default_factory=dict)

    def copy(self) -> Labels:
        """A copy whose tables can be extended without changing these."""
        return Labels(dict(self.about), dict(self.origin), dict(self.rules), dict(self.names), dict(self.jacobians))

    def name(self, node: Node) -> str | None:
        """The node's display name: its own, or the one it inherited through a rewrite."""
        return node.name or self.names.get(node)

    def derivative_name(self, node: Node, name_of) -> str | None:
        """``grad_<x>`` for the adjoint of x, ``tan_<x>`` for its tangent (``name_of(x)`` names x),
        None for a node that is neither. Generated code, dprint and to_dot all name them so."""
        about = self.about.get(node)
        return None if about is None else f"{PREFIXES[about[0]]}_{name_of(about[1])}"

    def __bool__(self):
        return bool(self.about or self.origin or self.rules or self.names or self.jacobians)

    def inherit(self, new: Node, old: Node, fresh: bool = True):
        """``new`` replaces ``old``: it keeps old's display name, and, when ``fresh`` (built for
        the replacement, not a value the graph had already), old's origin; it becomes the same
        derivative (grad_x, tan_x) as old when it is a derivative value itself."""
        if new is old or new.is_leaf:
            return
        name = self.name(old)
        if name and not self.name(new):
            self.names[new] = name
        if fresh and old in self.origin:
            self.origin.setdefault(new, self.origin[old])
        if old in self.about and new in self.origin:
            self.about.setdefault(new, self.about[old])

    def repoint(self, nodes, replaced: dict):
        """Re-point what the labels of ``nodes``' graph say about replaced values
        (``replaced``: {id(old): (old, new)}) at the values that replaced them."""

        def resolve(n):
            for _ in range(len(replaced) + 1):  # follow old -> new -> newer; replacements never cycle
                pair = replaced.get(id(n))
                if pair is None or pair[0] is not n:
                    return n
                n = pair[1]
            return n

        def remap(info):
            if isinstance(info, Node):
                return resolve(info)
            if not isinstance(info, tuple):
                return info
            if len(info) == 3 and info[0] == "vjp" and info[2] is not None:
                old, new = info[1], resolve(info[1])
                same_inputs = len(old.inputs) == len(new.inputs) and all(
                    resolve(a) is b for a, b in zip(old.inputs, new.inputs))
                return ("vjp", new, info[2] if same_inputs else None)  # else the index named other inputs
            return tuple(remap(x) for x in info)

        for node in topo_sort(nodes):
            if node in self.about:
                kind, primal = self.about[node]
                primal = resolve(primal)
                if primal is node:  # the value and its derivative became one node: no longer a derivative
                    del self.about[node]
                else:
                    self.about[node] = (kind, primal)
            if node in self.origin:
                self.origin[node] = remap(self.origin[node])

    def update(self, other: Labels):
        """Add ``other``'s entries for nodes this table says nothing about."""
        for mine, theirs in ((self.about, other.about), (self.origin, other.origin),
                             (self.rules, other.rules), (self.names, other.names),
                             (self.jacobians, other.jacobians)):
            for node, value in theirs.items():
                mine.setdefault(node, value)


def labels_of(nodes) -> Labels:
    """The labels of every call whose results the graph of ``nodes`` was built from, merged
    (where two calls label the same node, the first found in topological order wins)."""
    return _merged(topo_sort(nodes))


def _merged(order) -> Labels:
    merged, seen = Labels(), set()
    for node in order:
        if node.labels is not None and id(node.labels) not in seen:  # a call's results share its table
            seen.add(id(node.labels))
            merged.update(node.labels)
    return merged


def results(nodes: list, labels: Labels) -> list:
    """The call's results as copies that carry its ``labels`` (leaves, constants and ``None``
    are returned as they are; so is everything when the call has nothing to say)."""
    if not labels:
        return list(nodes)
    graph = current_graph()
    copies = [None if n is None or not n.inputs else graph.copy(n, labels) for n in nodes]
    for node, copy in zip(nodes, copies):
        if copy is not None:
            for table in (copy.labels.about, copy.labels.origin, copy.labels.rules, copy.labels.names):
                if node in table:
                    table.setdefault(copy, table[node])
    return [node if copy is None else copy for node, copy in zip(nodes, copies)]


class Recorder:
    """Fills one differentiation call's :class:`Labels` while its rules build nodes.

    ``given``: the nodes the call started from (the primal graph, the seeds); they are the
    caller's values and are never labelled by this call. Use ``with recorder.origin(info):``
    around rules: the nodes they build or reach came from ``info`` (the innermost wins).
    """

    def __init__(self, given):
        order = topo_sort(given)
        self.labels = Labels()
        self.given = {id(n) for n in order}
        self.inherited = _merged(order)  # what the given nodes came with
        self._infos: list = []
        self._watchers = current_graph()._watchers

    def origin(self, info) -> Recorder:
        self._infos.append(info)
        return self

    def __enter__(self):  # Graph.watching, without a generator's cost on this hot path
        self._watchers.append(self)

    def __exit__(self, *exc):
        self._watchers.pop()
        self._infos.pop()

    def __call__(self, node: Node):
        if node.inputs and id(node) not in self.given and node not in self.labels.origin:
            self.labels.origin[node] = self._infos[-1]

    def about(self, node: Node, kind: str, primal: Node):
        """``node`` is the adjoint (kind "grad") or tangent ("tangent") of ``primal``."""
        if node.inputs and id(node) not in self.given:
            self.labels.about.setdefault(node, (kind, primal))

    def results(self, nodes: list) -> list:
        """The call's results, carrying its labels and those its given nodes came with."""
        self.labels.update(self.inherited)
        return results(nodes, self.labels)
