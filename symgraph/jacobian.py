"""Jacobians, Hessians and the forward-versus-reverse cost model.

A Jacobian is built in ONE sweep: the tangents (forward mode) or cotangents
(reverse mode) carry an extra leading basis axis, seeded with the identity,
and every rule broadcasts over it. The graph therefore has the same number of
nodes for 10 inputs as for 1000; only the arrays grow.

Which mode is cheaper depends on the shapes: forward mode pushes one tangent
per input (n of them), reverse mode pulls one cotangent per output (m of
them). :func:`explain_mode` builds both Jacobian graphs, adds up the per-op
FLOP estimates, and picks the cheaper; for a chain of maps it also finds the
optimal bracketing of the Jacobian chain product by dynamic programming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .autodiff import _as_list, _check_differentiable, forward_sweep, grad, jvp, reverse_sweep, stabilized
from .graph import Node, as_node, gc_paused, topo_sort
from .ops.shape import basis, broadcast_to, reshape, transpose
from .provenance import Recorder
from .shapes import format_shape, is_static, numel
from .simplify import simplify

MODES = ("forward", "reverse", "auto")


def _check_static(node: Node, what: str, role: str):
    if not is_static(node.shape):
        raise ValueError(f"{what}: the {role} needs a static shape to size the Jacobian, "
                         f"got {format_shape(node.shape)}")


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

    ``mode`` is ``"forward"``, ``"reverse"`` or ``"auto"`` (the cost model's
    choice; see :func:`explain_mode`). Both shapes must be static.
    """
    if mode not in MODES:
        raise ValueError(f"jacobian: mode must be one of {MODES}, got {mode!r}")
    (output,), _ = _as_list([output], "jacobian", "output")
    (wrt,), _ = _as_list([wrt], "jacobian")
    _check_differentiable([wrt], "jacobian")
    _check_static(output, "jacobian", "output")
    _check_static(wrt, "jacobian", "input")
    if mode == "auto":
        mode = explain_mode(output, wrt).choice
    (stable,) = stabilized([output], [wrt])
    rec = Recorder([output, stable])
    build = _forward_jacobian if mode == "forward" else _reverse_jacobian
    return rec.results([build(stable, wrt, rec)])[0]


@gc_paused()
def hessian(cost, wrt) -> Node:
    """The Hessian of a scalar ``cost``, shape ``wrt.shape + wrt.shape``.

    Forward over reverse: the gradient graph is differentiated in forward mode
    with a batch of basis tangents, i.e. one batched Hessian-vector product.
    Row k is H e_k; H is symmetric, so no transpose is needed.
    """
    _check_static(wrt, "hessian", "input")
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


# -- the cost model -------------------------------------------------------------
def graph_flops(nodes, sizes: dict | None = None) -> int:
    """Estimated FLOPs to evaluate ``nodes`` (each op's own estimate, summed)."""
    return sum(n.op.flops(n, sizes or {}) for n in topo_sort(nodes if isinstance(nodes, list) else [nodes]))


@dataclass(frozen=True)
class ChainLink:
    node: Node
    rows: int  # size of the link's output
    cols: int  # size of the link's input
    diagonal: bool  # elementwise: the Jacobian is diagonal


@dataclass(frozen=True)
class ChainPlan:
    """The Jacobian of a chain of maps as a matrix chain product J_k ... J_1."""

    links: tuple[ChainLink, ...]
    forward_cost: int  # multiply-adds accumulating from the input side: J_k (... (J_2 J_1))
    reverse_cost: int  # from the output side: ((J_k J_{k-1}) ...) J_1
    best_cost: int
    best_order: str  # e.g. "(J3 (J2 J1))"


@dataclass(frozen=True)
class ModeReport:
    """Which mode ``"auto"`` picks for a Jacobian, and why."""

    choice: str
    forward_flops: int
    reverse_flops: int
    n_inputs: int
    n_outputs: int
    chain: ChainPlan | None = None

    def __str__(self):
        rows = [
            ("inputs (n)", f"{self.n_inputs}"),
            ("outputs (m)", f"{self.n_outputs}"),
            ("forward mode", f"{self.forward_flops:,} flops  ({_count(self.n_inputs, 'tangent')}, n)"),
            ("reverse mode", f"{self.reverse_flops:,} flops  ({_count(self.n_outputs, 'cotangent')}, m)"),
            ("choice", f"{self.choice}"),
        ]
        if self.chain is not None:
            c = self.chain
            rows += [
                ("chain", " . ".join(f"J{i + 1}:{l.rows}x{l.cols}{'(diag)' if l.diagonal else ''}"
                                     for i, l in reversed(list(enumerate(c.links))))),
                ("  input-first", f"{c.forward_cost:,} multiply-adds"),
                ("  output-first", f"{c.reverse_cost:,} multiply-adds"),
                ("  best order", f"{c.best_order}: {c.best_cost:,} multiply-adds"),
            ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def _chain(output: Node, wrt: Node) -> list[Node] | None:
    """The nodes from wrt to output when each one depends on wrt through exactly one input."""
    links = []
    node = output
    while node is not wrt:
        on_path = [i for i in node.inputs if i is wrt or _depends(i, wrt)]
        if len(on_path) != 1:
            return None
        links.append(node)
        node = on_path[0]
    return list(reversed(links))


def _depends(node: Node, wrt: Node) -> bool:
    return any(n is wrt for n in topo_sort([node]))


def _chain_plan(links: list[Node], wrt: Node) -> ChainPlan:
    """Matrix-chain order (dynamic programming) for J_k ... J_1, with dense costs
    p*q*r per product and a diagonal factor costing p*r."""
    dims = [numel(wrt.shape)] + [numel(n.shape) for n in links]  # J_i is dims[i] x dims[i-1]
    path = [wrt] + links[:-1]  # each link's input on the path
    diag = [n.op.broadcasting and x.shape == n.shape for n, x in zip(links, path)]
    k = len(links)
    info = [ChainLink(n, dims[i + 1], dims[i], diag[i]) for i, n in enumerate(links)]

    def product_cost(p, q, r, left_diag, right_diag):
        return p * r if (left_diag or right_diag) else p * q * r

    # best[i][j]: cost of J_j ... J_i (1-based, i <= j), the result is dims[j] x dims[i-1]
    best = [[0] * (k + 1) for _ in range(k + 1)]
    split = [[0] * (k + 1) for _ in range(k + 1)]
    is_diag = [[False] * (k + 1) for _ in range(k + 1)]
    for i in range(1, k + 1):
        is_diag[i][i] = diag[i - 1]
    for length in range(2, k + 1):
        for i in range(1, k - length + 2):
            j = i + length - 1
            best[i][j] = math.inf
            for s in range(i, j):  # (J_j ... J_{s+1}) (J_s ... J_i)
                cost = best[i][s] + best[s + 1][j] + product_cost(
                    dims[j], dims[s], dims[i - 1], is_diag[s + 1][j], is_diag[i][s])
                if cost < best[i][j]:
                    best[i][j], split[i][j] = cost, s
            is_diag[i][j] = all(diag[i - 1 : j])

    def order(i, j):
        if i == j:
            return f"J{i}"
        s = split[i][j]
        return f"({order(s + 1, j)} {order(i, s)})"

    def sweep(direction):
        total, acc_diag = 0, diag[0]
        if direction == "forward":  # A = J_1; A = J_i A
            for i in range(2, k + 1):
                total += product_cost(dims[i], dims[i - 1], dims[0], diag[i - 1], acc_diag)
                acc_diag = acc_diag and diag[i - 1]
        else:  # A = J_k; A = A J_i
            acc_diag = diag[k - 1]
            for i in range(k - 1, 0, -1):
                total += product_cost(dims[k], dims[i], dims[i - 1], acc_diag, diag[i - 1])
                acc_diag = acc_diag and diag[i - 1]
        return total

    return ChainPlan(tuple(info), sweep("forward"), sweep("reverse"), int(best[1][k]) if k else 0,
                     order(1, k) if k else "I")


def explain_mode(output, wrt) -> ModeReport:
    """Report which mode ``jacobian(..., mode="auto")`` picks for ``output`` and ``wrt``, and why.

    Both Jacobian graphs are built (they are small: one sweep each), simplified
    as compilation would, and their op FLOP estimates summed; the cheaper wins
    (reverse on a tie).
    """
    (output,), _ = _as_list([output], "explain_mode", "output")
    (wrt,), _ = _as_list([wrt], "explain_mode")
    _check_differentiable([wrt], "explain_mode")
    _check_static(output, "explain_mode", "output")
    _check_static(wrt, "explain_mode", "input")
    (stable,) = stabilized([output], [wrt])
    fwd = graph_flops(simplify(_forward_jacobian(stable, wrt, Recorder([stable])), fuse=False))  # cost what would run
    rev = graph_flops(simplify(_reverse_jacobian(stable, wrt, Recorder([stable])), fuse=False))
    links = _chain(output, wrt)
    chain = _chain_plan(links, wrt) if links else None
    choice = "forward" if fwd < rev else "reverse"
    return ModeReport(choice, fwd, rev, numel(wrt.shape), numel(output.shape), chain)
