"""Graph simplification: constant folding and dead-code removal.

Rewrites are functional: the result is built from new (or re-interned) nodes,
the input graph is never changed. Dead code disappears because only what the
requested nodes depend on is rebuilt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .graph import Constant, Node, current_graph, topo_sort

FOLD_LIMIT = 4096  # largest constant (in elements) that folding may create


@dataclass
class SimplifyReport:
    """What :func:`simplify` did: node counts before and after, and how often each rule fired."""

    nodes_before: int
    nodes_after: int
    rules: Counter = field(default_factory=Counter)

    def __str__(self):
        fired = ", ".join(f"{k}: {v}" for k, v in sorted(self.rules.items())) or "no rule fired"
        return f"simplify: {self.nodes_before} -> {self.nodes_after} nodes ({fired})"


def _is_constant(node: Node) -> bool:
    return isinstance(node.op, Constant)


def _fold(node: Node, inputs: list[Node]) -> Node | None:
    """The node's value as a constant, when every input is a (small) constant."""
    if not inputs or not all(_is_constant(i) for i in inputs):
        return None
    value = np.asarray(node.op.compute(*(i.op.value for i in inputs)), dtype=node.dtype)
    if value.size > FOLD_LIMIT or value.shape != node.shape:
        return None
    weak = value.ndim == 0 and all(i.op.weak for i in inputs)
    return current_graph().intern(Constant(np.array(value), weak=weak), ())


def _rebuild(node: Node, inputs: list[Node]) -> Node:
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return node
    new = current_graph().intern(node.op, tuple(inputs))
    if new is not node:
        new.origin = new.origin or node.origin
        new.about = new.about or node.about
        if node.name and not new.name:
            new.named(node.name)
    return new


def simplify(nodes, report: bool = False):
    """Equivalent, simplified nodes (a node or a list, matching the input).

    With ``report=True`` returns ``(nodes, report)``.
    """
    single = isinstance(nodes, Node)
    outputs = [nodes] if single else list(nodes)
    order = topo_sort(outputs)
    rules: Counter = Counter()
    new: dict[int, Node] = {}
    for node in order:
        inputs = [new[id(i)] for i in node.inputs]
        folded = _fold(node, inputs)
        if folded is not None:
            rules["constant_fold"] += 1
            new[id(node)] = folded
        else:
            new[id(node)] = _rebuild(node, inputs)
    result = [new[id(o)] for o in outputs]
    out = result[0] if single else result
    if report:
        return out, SimplifyReport(len(order), len(topo_sort(result)), rules)
    return out
