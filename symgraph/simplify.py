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
from .graph import Node, current_graph, gc_paused, topo_sort
from .provenance import Labels, labels_of, results
from .rules import RULE_SETS, Rule, counting_uses
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


def _rebuild(node: Node, inputs: list[Node], labels: Labels, given: set[int], merge_copies: bool) -> Node:
    """``node`` over ``inputs``, interned; a named or labelled copy becomes the interned node it
    copies (with ``merge_copies``), its name and labels carried over in ``labels``."""
    if all(a is b for a, b in zip(inputs, node.inputs)) and not (merge_copies and node.is_copy):
        return node
    new = current_graph().intern(node.op, tuple(inputs))
    labels.inherit(new, node, fresh=id(new) not in given)
    return new


class _RuleWatch:
    """Labels what a rule builds: the rule's name, and the origin of the node it rewrites."""

    __slots__ = ("labels", "given", "rule", "origin")

    def __init__(self, labels: Labels, given: set[int]):
        self.labels, self.given, self.rule, self.origin = labels, given, None, None

    def __call__(self, node: Node):
        if node.inputs and id(node) not in self.given:
            self.labels.rules.setdefault(node, (self.rule,))
            if self.origin is not None:
                self.labels.origin.setdefault(node, self.origin)


def _reaches(node: Node, ids: set[int]) -> set[int]:
    return {id(n) for n in topo_sort([node])} & ids


def _rewrite(node: Node, by_op: dict[str, list[Rule]], counts: Counter, keep: set[int], watch: _RuleWatch) -> Node:
    watchers = current_graph()._watchers  # what Graph.watching does, without a context manager's cost
    for _ in range(MAX_REWRITES_PER_NODE):
        for rule in by_op.get(op_name(node), []) + by_op.get("*", []):
            watch.rule, watch.origin = rule.name, watch.labels.origin.get(node)
            watchers.append(watch)
            try:
                out = rule.fn(node)
            finally:
                watchers.pop()
            if out is None or out is node:
                continue
            if out.shape != node.shape or out.dtype != node.dtype:
                raise AssertionError(f"rule {rule.name} changed {node!r} into {out!r}")
            if keep and not _reaches(out, keep) >= _reaches(node, keep):
                continue  # the rewrite would cut a node the caller needs to stay in the graph
            watch.labels.inherit(out, node, fresh=id(out) not in watch.given)
            counts[rule.name] += 1
            node = out
            break
        else:
            return node
    return node


def _uses(order: list[Node], outputs: list[Node]) -> dict[int, int]:
    """How many times each node of the pass's graph is used: as an input, or as an output."""
    uses = Counter(id(i) for node in order for i in node.inputs)
    uses.update(id(o) for o in outputs)
    return uses


@gc_paused()
def simplify(nodes, report: bool = False, unsafe: bool = False, rule_sets=RULE_SETS, fuse: bool = True,
             keep=(), unfused=()):
    """Equivalent, simplified nodes (a node or a list, matching the input).

    Runs the rule sets of :mod:`symgraph.rules` (algebra, linalg, stabilize,
    masking, conv) bottom-up to a fixed point, then fuses elementwise trees into
    single SymPy-expression nodes (:mod:`symgraph.fusion`). Rules marked unsafe
    (those that can change a value at a domain edge) run only with
    ``unsafe=True``. Nodes in ``keep`` stay in the graph exactly as they are
    (not rewritten, not fused, and no rewrite removes a dependency on them).
    Nodes of ``nodes`` listed in ``unfused`` are simplified but not fused into
    one expression themselves (the code generator keeps ``w - d`` updates as
    they are, to apply them in place). With ``report=True`` returns
    ``(nodes, report)``.

    The results carry this call's labels (which rules built which node, the
    derivative labels of the graph given, re-pointed at the values that replaced
    their nodes), so a compile of them prints those labels.
    """
    single = isinstance(nodes, Node)
    outputs = [nodes] if single else list(nodes)
    out, labels, rep = simplify_labelled(outputs, labels_of(outputs), unsafe=unsafe, rule_sets=rule_sets,
                                         fuse=fuse, keep=keep, unfused=unfused)
    out = results(out, labels)
    out = out[0] if single else out
    return (out, rep) if report else out


def simplify_labelled(nodes: list[Node], labels: Labels, unsafe: bool = False, rule_sets=RULE_SETS,
                      fuse: bool = True, keep=(), unfused=(), merge_copies: bool = True):
    """:func:`simplify` for callers that keep the labels themselves (the code generator, the
    differentiator): ``(nodes, labels, report)``, where ``labels`` (a copy of the given
    :class:`~symgraph.provenance.Labels`, extended) speaks of the simplified nodes.
    ``merge_copies=False`` leaves named and labelled copies in place."""
    start = time.perf_counter()
    outputs = list(nodes)
    labels = labels.copy()
    before = topo_sort(outputs)
    given = {id(n) for n in before}
    watch = _RuleWatch(labels, given)
    by_op = _index([r for s in rule_sets for r in s.rules if unsafe or not r.unsafe])
    counts: Counter = Counter()
    keep_ids = {id(k) for k in keep}
    passes = 0
    replaced: dict[int, tuple[Node, Node]] = {}  # id(old) -> (old, new), to re-point labels at the end
    for passes in range(1, MAX_PASSES + 1):
        new: dict[int, Node] = {}
        order = topo_sort(outputs)  # (read twice: outputs change only at the end of the pass)
        with counting_uses(_uses(order, outputs)):
            for node in order:
                if id(node) in keep_ids:  # kept exactly: the caller holds on to this very node
                    new[id(node)] = node
                    continue
                rebuilt = _rebuild(node, [new[id(i)] for i in node.inputs], labels, given, merge_copies)
                new[id(node)] = _rewrite(rebuilt, by_op, counts, keep_ids, watch)
        result = [new[id(o)] for o in outputs]
        for node in order:
            if new[id(node)] is not node:
                replaced[id(node)] = (node, new[id(node)])
        if all(a is b for a, b in zip(result, outputs)):
            break
        outputs = result
    labels.repoint(outputs, replaced)  # fusion keeps the values named as derivatives' primals visible
    if fuse:
        unfused_ids = {id(u) for u in unfused}
        plain = {id(o) for o, original in zip(outputs, nodes) if id(original) in unfused_ids}
        outputs, fused, fusion_map = fuse_elementwise(outputs, labels, keep_ids | plain)
        replaced.update(fusion_map)
        if fused:
            counts["fuse_elementwise"] += fused
    labels.repoint(outputs, replaced)
    rep = SimplifyReport(len(before), len(topo_sort(outputs)), counts, passes, time.perf_counter() - start)
    return outputs, labels, rep
