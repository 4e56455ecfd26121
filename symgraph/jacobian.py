"""Jacobians, Hessians and the forward/reverse/optimal cost model.

A Jacobian is built in ONE sweep: the tangents (forward mode) or cotangents
(reverse mode) carry an extra leading basis axis, seeded with the identity,
and every rule broadcasts over it. The graph therefore has the same number of
nodes for 10 inputs as for 1000; only the arrays grow.

Which mode is cheaper depends on the shapes: forward mode pushes one tangent
per input (n of them), reverse mode pulls one cotangent per output (m of
them). When the graph is a chain of maps x -> h1 -> ... -> y, its Jacobian is
a product of the links' Jacobians, written as in the course from the input
side: ABCD for four links, where forward mode is ((AB)C)D and reverse mode is
A(B(CD)). Any bracketing gives the same matrix; dynamic programming finds the
cheapest, e.g. (AB)(CD), and ``mode="optimal"`` builds it: tangents pushed
from the input side up to the split, cotangents pulled from the output side
down to it, one product in the middle (recursively, per the bracketing).
:func:`explain_mode` costs all of these graphs and says which ``"auto"`` runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from .autodiff import _as_list, _between, _check_differentiable, forward_sweep, grad, jvp, reverse_sweep, stabilized
from .graph import Node, as_node, gc_paused, topo_sort
from .ops.linalg import matmul
from .ops.shape import basis, broadcast_to, reshape, transpose
from .provenance import Recorder
from .rules import RULE_SETS, RuleSet
from .shapes import format_shape, is_static, numel
from .simplify import simplify

MODES = ("forward", "reverse", "optimal", "auto")


def _check_static(node: Node, what: str, role: str):
    if not is_static(node.shape):
        label = f" {node.op.name} {node.name!r}" if node.name else ""
        raise ValueError(f"{what}: the {role}{label} needs a static shape to size the Jacobian, "
                         f"got {format_shape(node.shape)}")


def _checked(output, wrt, what: str) -> tuple[Node, Node]:
    (output,), _ = _as_list([output], what, "output")
    (wrt,), _ = _as_list([wrt], what)
    _check_differentiable([wrt], what)
    _check_static(output, what, "output")
    _check_static(wrt, what, "input")
    return output, wrt


def _forward_jacobian(output: Node, wrt: Node, rec: Recorder) -> Node:
    seed = basis(wrt.shape, wrt.dtype)  # (n,) + wrt.shape: tangent k is basis array k
    t = forward_sweep([output], [wrt], [seed], rec, lead=1).get(id(output))
    if t is None:
        return _zeros(output, wrt)
    if output.ndim:  # (n,) + out.shape -> out.shape + (n,)
        t = transpose(t, tuple(range(1, t.ndim)) + (0,))
    return reshape(t, output.shape + wrt.shape)


def _reverse_jacobian(output: Node, wrt: Node, rec: Recorder) -> Node:
    seed = basis(output.shape, output.dtype)  # (m,) + out.shape: cotangent k is basis array k
    c = reverse_sweep([output], [wrt], [seed], rec, lead=1).get(id(wrt))
    if c is None:
        return _zeros(output, wrt)
    return reshape(c, output.shape + wrt.shape)


def _zeros(output: Node, wrt: Node) -> Node:
    """The Jacobian of an output that does not depend on ``wrt``."""
    return broadcast_to(as_node(0, like=wrt), output.shape + wrt.shape)


@gc_paused()
def jacobian(output, wrt, mode: str = "auto") -> Node:
    """The Jacobian of ``output`` with respect to ``wrt``, shape ``output.shape + wrt.shape``.

    ``mode``: ``"forward"``, ``"reverse"``, ``"optimal"`` (the cheapest bracketing of
    a chain's Jacobian product, found by dynamic programming; a graph that is not a
    chain falls back to the cheaper pure mode) or ``"auto"`` (the cheapest of the
    three by the cost model; see :func:`explain_mode`). Both shapes must be static.
    The generated module's header records the mode, the costs and the bracketing.
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"jacobian: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    output, wrt = _checked(output, wrt, "jacobian")
    (stable,) = stabilized([output], [wrt])
    report = _report(stable, wrt) if mode in ("auto", "optimal") else None
    ran = {"auto": report and report.auto, "optimal": report and report.optimal_runs}.get(mode, mode)
    rec = Recorder([output, stable])
    if ran == "optimal":
        J = _optimal_jacobian(stable, wrt, report.chain, rec)
    else:
        J = (_forward_jacobian if ran == "forward" else _reverse_jacobian)(stable, wrt, rec)
    rec.labels.jacobians[J] = JacobianNote(stable, wrt, mode, ran, report)
    return rec.results([J])[0]


@gc_paused()
def hessian(cost, wrt) -> Node:
    """The Hessian of a scalar ``cost``, shape ``wrt.shape + wrt.shape``.

    Forward over reverse: the gradient graph is differentiated in forward mode
    with a batch of basis tangents, i.e. one batched Hessian-vector product.
    Row k is H e_k; H is symmetric, so no transpose is needed.
    """
    _check_differentiable([wrt], "hessian")
    _check_static(wrt, "hessian", "input")
    if isinstance(cost, Node) and cost.shape != ():
        raise ValueError(f"hessian: the cost must be a scalar node, but its shape is {format_shape(cost.shape)}; "
                         "reduce it first (for example with .sum() or .mean())")
    g = grad(cost, wrt, disconnected="zero")
    seed = basis(wrt.shape, wrt.dtype)
    rec = Recorder([g])
    t = forward_sweep([g], [wrt], [seed], rec, lead=1).get(id(g))
    h = _zeros(wrt, wrt) if t is None else reshape(t, wrt.shape + wrt.shape)
    return rec.results([h])[0]


def hvp(cost, wrt, vectors) -> list[Node]:
    """Hessian-vector products: the Hessian of ``cost`` with respect to all of
    ``wrt`` applied to ``vectors`` (lists in, lists out), by forward over reverse."""
    wrt, _ = _as_list(wrt, "hvp")
    grads = grad(cost, wrt, disconnected="zero")
    return jvp(grads, wrt, list(vectors))


# -- chains and their bracketings ------------------------------------------------------
@dataclass(frozen=True)
class ChainLink:
    """One map of a chain. In the course's notation (row vectors, ``x @ A``) its Jacobian
    is an ``n_in x n_out`` matrix named by a letter: A for the link nearest the input."""

    node: Node
    name: str  # "A", "B", ... (J1, J2, ... beyond 26 links)
    n_in: int  # size of the link's input
    n_out: int  # size of the link's output
    diagonal: bool  # elementwise: the Jacobian is diagonal


@dataclass(frozen=True)
class ChainPlan:
    """The Jacobian of a chain of maps as the matrix product of its links, input side first.

    A bracketing is a tree of 1-based link indices, e.g. ``((1, 2), (3, 4))`` for (AB)(CD).
    Costs are multiply-adds: p*q*r per dense (p x q)(q x r) product, p*r when a factor is
    diagonal.
    """

    links: tuple[ChainLink, ...]
    forward_cost: int  # from the input side: ((AB)C)D
    reverse_cost: int  # from the output side: A(B(CD))
    best_cost: int
    best_tree: object  # the cheapest bracketing (a pure one when it ties with the best)

    @property
    def product(self) -> str:
        """The product written left to right from the input side, e.g. ``ABCD``."""
        return _joiner(self.links).join(link.name for link in self.links)

    @property
    def best_order(self) -> str:
        """The cheapest bracketing in the course's notation, e.g. ``(AB)(CD)``."""
        return self.order(self.best_tree)

    @property
    def kind(self) -> str | None:
        """``"forward"`` or ``"reverse"`` when the cheapest bracketing is that pure mode,
        ``"optimal"`` when it mixes them, None for fewer than 3 links (every bracketing is both)."""
        k = len(self.links)
        if k < 3:
            return None
        return {_input_first(k): "forward", _output_first(k): "reverse"}.get(self.best_tree, "optimal")

    def order(self, tree) -> str:
        """A bracketing tree as text: ``((1, 2), (3, 4))`` -> ``(AB)(CD)``."""
        return _order_text(tree, self.links, top=True)

    def split(self) -> int:
        """The link after which the cheapest bracketing's outermost product splits the chain."""
        return _span(self.best_tree[0])[1]


def _joiner(links) -> str:
    return "" if len(links) <= 26 else " "


def _order_text(tree, links, top=False) -> str:
    if isinstance(tree, int):
        return links[tree - 1].name
    text = _joiner(links).join(_order_text(t, links) for t in tree)
    return text if top else f"({text})"


def _span(tree) -> tuple[int, int]:
    """The first and last link index of a bracketing tree."""
    return (tree, tree) if isinstance(tree, int) else (_span(tree[0])[0], _span(tree[1])[1])


def _input_first(k: int):
    tree = 1
    for i in range(2, k + 1):
        tree = (tree, i)
    return tree


def _output_first(k: int):
    tree = k
    for i in range(k - 1, 0, -1):
        tree = (i, tree)
    return tree


def _chain(output: Node, wrt: Node) -> list[Node] | None:
    """The nodes from wrt to output when each depends (differentiably) on wrt through exactly one input."""
    inside = {id(n) for n in _between([output], [wrt])}
    if id(output) not in inside:
        return None
    links, node = [], output
    while node is not wrt:
        on_path = [i for i in node.inputs if id(i) in inside]
        if len(on_path) != 1:
            return None
        links.append(node)
        node = on_path[0]
    return links[::-1]


def _chain_plan(links: list[Node], wrt: Node) -> ChainPlan:
    """Matrix-chain order (dynamic programming) for the product of the links' Jacobians."""
    k = len(links)
    dims = [numel(wrt.shape)] + [numel(n.shape) for n in links]  # link i maps R^dims[i-1] -> R^dims[i]
    path = [wrt] + links[:-1]  # each link's input on the path
    diag = [n.op.broadcasting and x.shape == n.shape for n, x in zip(links, path)]
    names = [chr(ord("A") + i) if k <= 26 else f"J{i + 1}" for i in range(k)]
    info = tuple(ChainLink(n, names[i], dims[i], dims[i + 1], diag[i]) for i, n in enumerate(links))

    def all_diagonal(i, j):
        return all(diag[i - 1 : j])

    def product_cost(i, s, j):  # (links i..s)(links s+1..j): dims[i-1] x dims[s] times dims[s] x dims[j]
        cheap = all_diagonal(i, s) or all_diagonal(s + 1, j)
        return dims[i - 1] * dims[j] * (1 if cheap else dims[s])

    def tree_cost(tree):
        if isinstance(tree, int):
            return 0
        (i, s), (_, j) = _span(tree[0]), _span(tree[1])
        return tree_cost(tree[0]) + tree_cost(tree[1]) + product_cost(i, s, j)

    best: dict[tuple[int, int], tuple[int, object]] = {(i, i): (0, i) for i in range(1, k + 1)}
    for length in range(2, k + 1):
        for i in range(1, k - length + 2):
            j = i + length - 1
            best[i, j] = min(((best[i, s][0] + best[s + 1, j][0] + product_cost(i, s, j),
                               (best[i, s][1], best[s + 1, j][1])) for s in range(i, j)), key=lambda c: c[0])
    if k == 0:
        return ChainPlan(info, 0, 0, 0, None)
    cost, tree = best[1, k]
    forward, reverse = tree_cost(_input_first(k)), tree_cost(_output_first(k))
    if forward == cost:  # prefer a pure mode on a tie: the same price, a simpler graph
        tree = _input_first(k)
    elif reverse == cost:
        tree = _output_first(k)
    return ChainPlan(info, forward, reverse, cost, tree)


# -- the optimal bracketing, built ---------------------------------------------------------
class _Disconnected(Exception):
    """A sweep found no derivative: the output does not depend differentiably on wrt."""


class _Bracketing:
    """Builds the Jacobian of a chain in the order of a bracketing tree.

    A block (links i..j) is held in one of three layouts: ``"tan"``, tangents of h_j
    for each input direction, ``(numel(h_{i-1}),) + h_j.shape``; ``"cot"``, cotangents
    of h_{i-1} for each output direction, ``(numel(h_j),) + h_{i-1}.shape``; ``"mat"``,
    the course's ``numel(h_{i-1}) x numel(h_j)`` matrix. A product whose output-side
    factor is one link (or all diagonal) pushes the input-side block's tangents through
    it; one whose input-side factor is one link (or all diagonal) pulls the output-side
    block's cotangents back through it; any other product is one matmul.
    """

    def __init__(self, wrt: Node, plan: ChainPlan, rec: Recorder):
        self.h = [wrt] + [link.node for link in plan.links]  # h[i] is link i's output
        self.diag = [False] + [link.diagonal for link in plan.links]
        self.rec = rec

    def jacobian(self, tree) -> Node:
        """The whole Jacobian, ``output.shape + wrt.shape``."""
        out, wrt = self.h[-1], self.h[0]
        return reshape(self._as(self._build(tree), "cot", tree), out.shape + wrt.shape)

    def _build(self, tree, side: str = "tan") -> tuple[Node, str]:
        """The block of ``tree`` as (node, layout). ``side`` breaks ties: ``"tan"`` (sweep
        forwards) on the input side of a split, ``"cot"`` (backwards) on its output side."""
        if isinstance(tree, int):  # one link's own Jacobian: seed the smaller side with the identity
            x, y = self.h[tree - 1], self.h[tree]
            p, q = numel(x.shape), numel(y.shape)
            if p < q or (p == q and side == "tan"):
                return self._push(basis(x.shape, x.dtype), tree, tree), "tan"
            return self._pull(basis(y.shape, y.dtype), tree, tree), "cot"
        left, right = tree
        (i, s), (_, j) = _span(left), _span(right)
        left_diagonal, right_diagonal = all(self.diag[i : s + 1]), all(self.diag[s + 1 : j + 1])
        through_right = right_diagonal or isinstance(right, int)  # cheap to push tangents through
        through_left = left_diagonal or isinstance(left, int)  # cheap to pull cotangents through
        if through_right and through_left:  # sweep through the diagonal side, else by side
            through_left = left_diagonal if left_diagonal != right_diagonal else side == "cot"
            through_right = not through_left
        if through_right:
            return self._push(self._as(self._build(left, "tan"), "tan", left), s + 1, j), "tan"
        if through_left:
            return self._pull(self._as(self._build(right, "cot"), "cot", right), i, s), "cot"
        left_block, right_block = self._build(left, "tan"), self._build(right, "cot")
        return matmul(self._as(left_block, "mat", left), self._as(right_block, "mat", right)), "mat"

    def _push(self, tangents: Node, i: int, j: int) -> Node:
        """Tangents of h_{i-1} pushed forward through links i..j: tangents of h_j."""
        t = forward_sweep([self.h[j]], [self.h[i - 1]], [tangents], self.rec, lead=1).get(id(self.h[j]))
        if t is None:
            raise _Disconnected
        return t

    def _pull(self, cotangents: Node, i: int, j: int) -> Node:
        """Cotangents of h_j pulled back through links j..i: cotangents of h_{i-1}."""
        c = reverse_sweep([self.h[j]], [self.h[i - 1]], [cotangents], self.rec, lead=1).get(id(self.h[i - 1]))
        if c is None:
            raise _Disconnected
        return c

    def _as(self, block: tuple[Node, str], layout: str, tree) -> Node:
        """A block in the layout asked for (reshapes and one transpose at most)."""
        node, have = block
        i, j = _span(tree)
        x, y = self.h[i - 1], self.h[j]
        p, q = numel(x.shape), numel(y.shape)
        if have == layout:
            return node
        matrix = node if have == "mat" else reshape(node, (p, q)) if have == "tan" else transpose(reshape(node, (q, p)))
        if layout == "mat":
            return matrix
        if layout == "tan":
            return reshape(matrix, (p,) + y.shape)
        return reshape(transpose(matrix), (q,) + x.shape)


def _optimal_jacobian(output: Node, wrt: Node, plan: ChainPlan, rec: Recorder) -> Node:
    """The Jacobian of a chain built in the order of ``plan``'s cheapest bracketing."""
    try:
        return _Bracketing(wrt, plan, rec).jacobian(plan.best_tree)
    except _Disconnected:
        return _zeros(output, wrt)


# -- the cost model -------------------------------------------------------------------
def graph_flops(nodes, sizes: dict | None = None) -> int:
    """Estimated FLOPs to evaluate ``nodes`` (each op's own estimate, summed)."""
    return sum(n.op.flops(n, sizes or {}) for n in topo_sort(nodes if isinstance(nodes, list) else [nodes]))


@lru_cache(maxsize=1)
def _unfolded_rules() -> tuple[RuleSet, ...]:
    """The simplifier's rule sets without constant folding."""
    return tuple(RuleSet(s.name, tuple(r for r in s.rules if r.name != "constant_fold")) for s in RULE_SETS)


def _cost(jac: Node) -> int:
    """FLOPs of a Jacobian graph simplified as compilation would, except that constants are
    not folded: a chain of constant matrices costs what the same chain of parameters would."""
    return graph_flops(simplify(jac, fuse=False, rule_sets=_unfolded_rules()))


def _flop_text(flops: int) -> str:
    """1234567 -> '1.2 MFLOP'."""
    for unit, size in (("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if flops >= size:
            return f"{flops / size:.1f} {unit}"
    return f"{flops} FLOP"


@dataclass(frozen=True)
class ModeReport:
    """How a Jacobian would be built, what each way costs, and which one ``"auto"`` runs.

    ``choice`` is the cheaper pure mode, ``"forward"`` or ``"reverse"``; ``auto`` is what
    ``mode="auto"`` runs: ``choice``, or ``"optimal"`` when a chain's cheapest bracketing
    mixes the two and its graph costs fewer flops than both. Flops are symgraph's estimates
    for the simplified Jacobian graphs, costed before constants are folded. ``str(report)``
    explains the choice in prose.
    """

    choice: str
    forward_flops: int
    reverse_flops: int
    n_inputs: int
    n_outputs: int
    chain: ChainPlan | None = None
    optimal_flops: int | None = None  # the mixed bracketing's graph; None when there is none

    @property
    def auto(self) -> str:
        """What ``mode="auto"`` runs: the optimal bracketing when it costs fewer flops than both pure modes."""
        cheaper = self.optimal_flops is not None and self.optimal_flops < min(self.forward_flops, self.reverse_flops)
        return "optimal" if cheaper else self.choice

    @property
    def optimal_runs(self) -> str:
        """What ``mode="optimal"`` runs: ``"optimal"`` for a mixed bracketing, else the
        pure mode the cheapest bracketing is, else (no chain) the cheaper pure mode."""
        kind = self.chain.kind if self.chain is not None else None
        return kind or ("forward" if self.forward_flops < self.reverse_flops else "reverse")

    def header_line(self, asked: str, ran: str) -> str:
        """One line for a generated module's header, e.g. ``jacobian: optimal bracketing
        (AB)(CD): 3.5 MFLOP vs forward 28.3 MFLOP, reverse 31.4 MFLOP (mode='auto')``."""
        costs = {"forward": self.forward_flops, "reverse": self.reverse_flops}
        if self.optimal_flops is not None:
            costs["optimal"] = self.optimal_flops
        bracketing = self.chain.best_order if self.chain is not None else ""
        label = {"forward": "forward", "reverse": "reverse", "optimal": f"optimal {bracketing}"}
        what = f"optimal bracketing {bracketing}" if ran == "optimal" else f"{ran} mode"
        others = ", ".join(f"{label[m]} {_flop_text(c)}" for m, c in costs.items() if m != ran)
        if self.chain is None:
            note = "; not a chain"
        elif self.optimal_flops is None and self.chain.kind:
            note = f"; cheapest bracketing {self.chain.best_order} is {self.chain.kind} mode"
        else:
            note = ""
        return f"jacobian: {what}: {_flop_text(costs[ran])} vs {others}{note} (mode={asked!r})"

    def __str__(self):
        n, m = self.n_inputs, self.n_outputs
        lines = [f"Jacobian: {m} x {n} (m = {_count(m, 'output')}, n = {_count(n, 'input')})."]
        rows = [("forward mode", self.forward_flops, f"{_count(n, 'tangent')}, one per input, from the input side"),
                ("reverse mode", self.reverse_flops, f"{_count(m, 'cotangent')}, one per output, from the output side")]
        c = self.chain
        if self.optimal_flops is not None:
            rows.append(("optimal", self.optimal_flops, f"bracketing {c.best_order}"))
        if c is not None and len(c.links) >= 3:
            lines += self._chain_text()
        elif c is not None:
            lines.append(f"The graph is a chain of {_count(len(c.links), 'map')}: "
                         "with so few there is no bracketing to choose.")
        else:
            lines.append("The graph is not a chain (the input reaches the output along more than one path, "
                         "or through an op with several inputs on the path), so there is no bracketing to choose: "
                         'mode="optimal" falls back to the cheaper pure mode.')
        lines.append("Cost of the Jacobian graphs symgraph builds (estimated flops, before constants are folded):")
        width = max(len(f"{f:,}") for _, f, _ in rows)
        lines += [f"  {label:<13} {f:>{width},} flops  ({why})" for label, f, why in rows]
        runs = "" if self.auto == self.choice else '; mode="auto" runs the optimal bracketing'
        lines.append(f"choice: {self.choice}{runs}. {self._why()}")
        return "\n".join(lines)

    def _chain_text(self) -> list[str]:
        c = self.chain
        k = len(c.links)
        lines = [f"The graph is a chain of {k} maps from the input to the output. Its Jacobian, written from "
                 f"the input side as in the course, is the product {c.product} of theirs:"]
        w0, w1, w2 = (max(len(str(f(link))) for link in c.links)
                      for f in (lambda l: l.name, lambda l: l.n_in, lambda l: l.n_out))
        lines += [f"  {link.name:<{w0}}  {link.n_in:>{w1}} x {link.n_out:<{w2}}  {link.node.op.name}"
                  + ("  (diagonal)" if link.diagonal else "") for link in c.links]
        rows = [("forward mode", c.order(_input_first(k)), c.forward_cost, "from the input side"),
                ("reverse mode", c.order(_output_first(k)), c.reverse_cost, "from the output side")]
        if c.kind == "optimal":
            rows.append(("optimal", c.best_order, c.best_cost,
                         f"dynamic programming's choice of {_catalan(k - 1):,} bracketings"))
        w1, w2 = max(len(r[1]) for r in rows), max(len(f"{r[2]:,}") for r in rows)
        lines.append("Every bracketing gives the same matrix at a different price (multiply-adds, chain alone):")
        lines += [f"  {label:<13} {order:<{w1}}  {cost:>{w2},}  {why}" for label, order, cost, why in rows]
        if c.kind != "optimal":
            lines.append(f"The cheapest of all {_catalan(k - 1):,} bracketings is {c.best_order}, "
                         f"{c.kind} mode itself.")
        return lines

    def _why(self) -> str:
        fwd, rev = self.forward_flops, self.reverse_flops
        pure = "forward" if fwd < rev else "reverse"
        if self.auto == "optimal":
            c, best = self.chain, min(fwd, rev)
            s = c.split()
            return (f"{c.best_order} costs {best / max(self.optimal_flops, 1):.1f}x fewer flops than {pure} mode, "
                    f"the cheaper pure mode: tangents run from the input side up to the split after "
                    f"{c.links[s - 1].name}, cotangents from the output side down to it, and one product joins "
                    "them (recursively, per the bracketing).")
        other = "reverse" if pure == "forward" else "forward"
        why = (f"{pure} mode costs the fewest flops ({min(fwd, rev):,} against {max(fwd, rev):,} for {other} mode"
               if fwd != rev else f"both pure modes cost {fwd:,} flops (a tie goes to reverse mode")
        if self.optimal_flops is not None:
            why += f" and {self.optimal_flops:,} for the optimal bracketing"
        return why + ")."


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def _catalan(k: int) -> int:
    """The number of bracketings of a product of k + 1 factors."""
    return math.comb(2 * k, k) // (k + 1)


def _report(stable: Node, wrt: Node) -> ModeReport:
    """:func:`explain_mode` for an output already stabilized."""
    fwd = _cost(_forward_jacobian(stable, wrt, Recorder([stable])))
    rev = _cost(_reverse_jacobian(stable, wrt, Recorder([stable])))
    links = _chain(stable, wrt)
    chain = _chain_plan(links, wrt) if links else None
    opt = None
    if chain is not None and chain.kind == "optimal":
        opt = _cost(_optimal_jacobian(stable, wrt, chain, Recorder([stable])))
    choice = "forward" if fwd < rev else "reverse"
    return ModeReport(choice, fwd, rev, numel(wrt.shape), numel(stable.shape), chain, opt)


@gc_paused()
def explain_mode(output, wrt) -> ModeReport:
    """Report which mode ``jacobian(..., mode="auto")`` runs for ``output`` and ``wrt``, and why.

    The Jacobian graphs are built (they are small: one sweep each), simplified as
    compilation would except that constants are not folded, and their op FLOP
    estimates summed: forward mode, reverse mode and, for a chain of maps whose
    cheapest bracketing mixes the two, that bracketing. The cheapest wins (among
    pure modes reverse on a tie; the mixed bracketing only when strictly cheaper).
    """
    output, wrt = _checked(output, wrt, "explain_mode")
    (stable,) = stabilized([output], [wrt])
    return _report(stable, wrt)


@dataclass
class JacobianNote:
    """What :func:`jacobian` records about one Jacobian, for the generated module's header:
    the mode asked for and the one run; the costs are computed when a header asks for them."""

    output: Node
    wrt: Node
    asked: str
    ran: str
    report: ModeReport | None = None

    def header_line(self) -> str:
        report = self.report or _report(self.output, self.wrt)
        return report.header_line(self.asked, self.ran)
