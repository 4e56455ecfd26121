"""Graph simplification: rewrite rules applied bottom-up to a fixed point.

Rewrites are functional: the result is built from new (or re-interned)
nodes and the input graph is never changed. Re-interning makes nodes that a
rewrite turned equal into one node (common-subexpression elimination), and
dead code disappears because only what the requested nodes depend on is
rebuilt. The rules themselves live in :mod:`symgraph.rules`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from .fusion import fuse as fuse_elementwise
from .graph import Node, current_graph, next_serial, topo_sort
from .rules import RULE_SETS, Rule
from .rules import name as op_name

MAX_PASSES = 20  # bottom-up passes before giving up on a fixed point
MAX_REWRITES_PER_NODE = 8


@dataclass
class SimplifyReport:
    """What :func:`simplify` did: node counts before and after, and how often each rule fired."""

    nodes_before: int
    nodes_after: int
    rules: Counter = field(default_factory=Counter)
    passes: int = 0
    seconds: float = 0.0

    def __str__(self):
        fired = ", ".join(f"{k} x{v}" for k, v in sorted(self.rules.items(), key=lambda kv: (-kv[1], kv[0])))
        return f"simplify: {self.nodes_before} -> {self.nodes_after} nodes ({fired or 'no rule fired'})"


def _index(rules: list[Rule]) -> dict[str, list[Rule]]:
    by_op: dict[str, list[Rule]] = {}
    for r in rules:
        for op in r.ops:
            by_op.setdefault(op, []).append(r)
    return by_op


def _rebuild(node: Node, inputs: list[Node]) -> Node:
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return node
    graph = current_graph()
    with graph.origin(node.origin):
        new = graph.intern(node.op, tuple(inputs))
    _inherit(new, node)
    return new


def _inherit(new: Node, old: Node):
    """A node that replaces ``old`` keeps its display name and derivative label, if it has none."""
    if new is old or new.is_leaf:
        return
    if old.name and not new.name:
        new.named(old.name)
    if old.about is not None and new.about is None:
        new.about = old.about


def _repoint_labels(outputs: list[Node], replaced: dict[int, tuple[Node, Node]]):
    """Derivative labels and provenance name primal nodes; re-point those the simplifier replaced,
    so grad_<x> and the comments name the values the simplified program actually computes."""

    def resolve(n: Node) -> Node:
        for _ in range(MAX_PASSES + 2):
            old_new = replaced.get(id(n))
            if old_new is None or old_new[0] is not n:
                return n
            n = old_new[1]
        return n

    def remap(info):
        if isinstance(info, Node):
            return resolve(info)
        if not isinstance(info, tuple):
            return info
        if len(info) == 3 and info[0] == "vjp" and resolve(info[1]) is not info[1]:
            return ("vjp", resolve(info[1]), None)  # the input index named the replaced node's inputs
        return tuple(remap(x) for x in info)

    for node in topo_sort(outputs):
        if node.about is not None:
            node.about = (node.about[0], resolve(node.about[1]))
        if node.origin is not None:
            node.origin = remap(node.origin)


def _reaches(node: Node, ids: set[int]) -> set[int]:
    return {id(n) for n in topo_sort([node])} & ids


def _rewrite(node: Node, by_op: dict[str, list[Rule]], counts: Counter, keep: set[int]) -> Node:
    graph = current_graph()
    for _ in range(MAX_REWRITES_PER_NODE):
        for rule in by_op.get(op_name(node), []) + by_op.get("*", []):
            first_new = next_serial()
            graph._origin.append(node.origin)  # what graph.origin() / graph.applying() do, without
            graph._rules.append(rule.name)  # the context managers' cost on this hot path
            try:
                out = rule.fn(node)
            finally:
                graph._origin.pop()
                graph._rules.pop()
            if out is None or out is node:
                continue
            if out.shape != node.shape or out.dtype != node.dtype:
                raise AssertionError(f"rule {rule.name} changed {node!r} into {out!r}")
            if keep and not _reaches(out, keep) >= _reaches(node, keep):
                continue  # the rewrite would cut a node the caller needs to stay in the graph
            if out.serial >= first_new:
                _inherit(out, node)
            else:  # an existing value now stands for this one
                if node.name and not out.name and not out.is_leaf:
                    out.named(node.name)
                if node.about is not None and out.about is None and out.origin is not None:
                    out.about = node.about  # a derivative value stays grad_<x> after a rewrite
            counts[rule.name] += 1
            node = out
            break
        else:
            return node
    return node


def simplify(nodes, report: bool = False, unsafe: bool = False, rule_sets=RULE_SETS, fuse: bool = True,
             keep=(), unfused=()):
    """Equivalent, simplified nodes (a node or a list, matching the input).

    Runs the rule sets of :mod:`symgraph.rules` (algebra, linalg, stabilize,
    masking) bottom-up to a fixed point, then fuses elementwise trees into
    single SymPy-expression nodes (:mod:`symgraph.fusion`). Rules marked unsafe
    (those that can change a value at a domain edge) run only with
    ``unsafe=True``. Nodes in ``keep`` stay in the graph exactly as they are
    (not rewritten, not fused, and no rewrite removes a dependency on them).
    Nodes of ``nodes`` listed in ``unfused`` are simplified but not fused into
    one expression themselves (the code generator keeps ``w - d`` updates as
    they are, to apply them in place). With ``report=True`` returns
    ``(nodes, report)``.
    """
    start = time.perf_counter()
    single = isinstance(nodes, Node)
    outputs = [nodes] if single else list(nodes)
    before = len(topo_sort(outputs))
    by_op = _index([r for s in rule_sets for r in s.rules if unsafe or not r.unsafe])
    counts: Counter = Counter()
    keep_ids = {id(k) for k in keep}
    passes = 0
    replaced: dict[int, tuple[Node, Node]] = {}  # id(old) -> (old, new), to re-point labels at the end
    for passes in range(1, MAX_PASSES + 1):
        new: dict[int, Node] = {}
        for node in topo_sort(outputs):
            if id(node) in keep_ids:  # kept exactly: the caller holds on to this very node
                new[id(node)] = node
                continue
            rebuilt = _rebuild(node, [new[id(i)] for i in node.inputs])
            new[id(node)] = _rewrite(rebuilt, by_op, counts, keep_ids)
        result = [new[id(o)] for o in outputs]
        for node in topo_sort(outputs):
            if new[id(node)] is not node:
                replaced[id(node)] = (node, new[id(node)])
        if all(a is b for a, b in zip(result, outputs)):
            break
        outputs = result
    if fuse:
        originals = [nodes] if single else list(nodes)
        unfused_ids = {id(u) for u in unfused}
        plain = {id(o) for o, original in zip(outputs, originals) if id(original) in unfused_ids}
        outputs, fused, fusion_map = fuse_elementwise(outputs, keep_ids | plain)
        replaced.update(fusion_map)
        if fused:
            counts["fuse_elementwise"] += fused
    _repoint_labels(outputs, replaced)
    out = outputs[0] if single else outputs
    if report:
        return out, SimplifyReport(before, len(topo_sort(outputs)), counts, passes, time.perf_counter() - start)
    return out


def simplify_labelled(nodes: list[Node], labels, **options):
    """:func:`simplify` for the code generator: ``(nodes, labels, report)``, where ``labels``
    (a :class:`symgraph.provenance.Labels`) now speaks of the simplified nodes."""
    from .provenance import labels_of  # TRANSITIONAL

    out, report = simplify(list(nodes), report=True, **options)
    return out, labels_of(out), report
