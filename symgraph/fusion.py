"""Elementwise fusion: a tree of elementwise nodes becomes one SymPy expression.

A float elementwise node absorbs each elementwise input that nobody else
uses (and that carries no name the reader should see: no display name, no
``grad_`` label, not an output). The result is one :class:`Elementwise` node
whose scalar expression is built from the ops' own scalar forms with SymPy's
automatic evaluation off (its identities, like exp(log x) = x, are unsafe at
domain edges). The printer prints it as one statement, naming the
subexpressions SymPy's ``cse`` finds shared. No blanket ``sympy.simplify``:
it can take unbounded time on large expressions and may change values.
"""

from __future__ import annotations

import functools
import math
from collections import Counter

import numpy as np
import sympy as sp

from .graph import Constant, Node, apply, current_graph, topo_sort
from .ops.scalar import Elementwise
from .provenance import Labels

MAX_LEAVES = 12  # a fused expression reads at most this many arrays
MAX_OPS = 16  # and has at most this many operations: a line stays readable, SymPy's recursion shallow


def _fusable(node: Node) -> bool:
    return node.op.scalar_expr is not None and node.dtype.kind == "f" and bool(node.inputs)


def fuse(outputs: list[Node], labels: Labels, keep: set[int] = frozenset()) -> tuple[list[Node], int, dict]:
    """Fuse elementwise trees in the graph of ``outputs``; returns (outputs, number of fused nodes,
    {id(old): (old, new)} for every node that was replaced). ``labels`` gets the fused nodes' labels.

    ``keep``: ids of nodes left exactly as they are (neither fused nor absorbed);
    outputs are never absorbed.
    """
    order = topo_sort(outputs)
    given = {id(n) for n in order}
    users: Counter = Counter(id(i) for n in order for i in n.inputs)
    visible = set(keep) | {id(o) for o in outputs}
    visible |= {id(about[1]) for n, about in labels.about.items() if id(n) in given}  # grad_<name>, tan_<name>
    original: dict[int, Node] = {}  # id of a rebuilt node -> the node it stands for

    def absorbable(x: Node) -> bool:
        o = original.get(id(x))
        return (o is not None and _fusable(x) and users[id(o)] == 1 and id(o) not in visible
                and not labels.name(o) and o not in labels.about)

    new: dict[int, Node] = {}
    sizes: dict[int, int] = {}  # id of a fused node -> the operations in its expression
    fused = 0
    graph = current_graph()
    for node in order:
        inputs = [new[id(i)] for i in node.inputs]
        rebuilt = node if all(a is b for a, b in zip(inputs, node.inputs)) else graph.intern(node.op, tuple(inputs))
        if rebuilt is not node:
            labels.inherit(rebuilt, node)
            if node in labels.about and rebuilt not in labels.about:
                labels.about[rebuilt] = labels.about[node]
        new[id(node)] = rebuilt
        original[id(rebuilt)] = node
        if id(node) in keep or not _fusable(rebuilt) or not any(absorbable(i) for i in rebuilt.inputs):
            continue
        tree, leaves, size = _tree(rebuilt, absorbable, sizes)
        built = _built(tree, len(leaves), rebuilt.dtype.str)
        if built is None:
            continue
        expr, symbols, complete = built
        if len(leaves) > MAX_LEAVES or not complete:
            continue  # too wide, or SymPy cancelled an operand (which may carry the broadcast shape)
        fused_op = Elementwise("fused", expr, symbols)
        fused_op.label = getattr(rebuilt.op, "label", rebuilt.op.name)  # names the variable: tanh1, add2
        out = apply(fused_op, *leaves)
        if out.shape != node.shape or out.dtype != node.dtype:
            continue
        labels.rules.setdefault(out, ("fuse_elementwise",))
        labels.inherit(out, node)
        if node in labels.about:
            labels.about.setdefault(out, labels.about[node])
        new[id(node)] = out
        original[id(out)] = node
        sizes[id(out)] = size
        fused += 1
    replaced = {id(n): (n, new[id(n)]) for n in order if new[id(n)] is not n}
    return [new[id(o)] for o in outputs], fused, replaced


def _leaf_symbol(k: int) -> sp.Symbol:
    return sp.Symbol(f"leaf{k}", real=True)


def _leaf_symbols(n: int) -> list[sp.Symbol]:
    return [_leaf_symbol(k) for k in range(n)]


def _tree(root: Node, absorbable, sizes: dict[int, int]) -> tuple[tuple, list[Node], int]:
    """(the elementwise tree under ``root``, leaves, operations). Inputs are absorbed depth first while
    the expression stays within MAX_OPS operations (``sizes``: those of nodes already fused); the rest
    are read as leaves. The tree holds ops, leaf positions and numbers only, so equal trees (every layer
    of a network has the same ones) give one SymPy expression: ``("op", op, operands)``,
    ``("leaf", k)`` or ``("number", kind, text)``."""
    leaves: list[Node] = []
    ops = 0

    def leaf(n: Node) -> tuple:
        if isinstance(n.op, Constant) and n.ndim == 0 and n.op.weak:  # a Python number, printed shortest
            v = n.op.value[()]
            return ("number", "f", str(v)) if n.dtype.kind == "f" else ("number", "i", int(v))
        for k, seen in enumerate(leaves):
            if seen is n:
                return ("leaf", k)
        leaves.append(n)
        return ("leaf", len(leaves) - 1)

    def fits(n: Node) -> bool:
        return absorbable(n) and ops + sizes.get(id(n), 1) <= MAX_OPS

    def walk(n: Node) -> tuple:
        nonlocal ops
        ops += sizes.get(id(n), 1)
        return ("op", n.op, tuple(walk(i) if fits(i) else leaf(i) for i in n.inputs))

    return walk(root), leaves, ops


@functools.lru_cache(maxsize=1024)  # the same trees come back in every layer: SymPy builds each once
def _built(tree: tuple, n_leaves: int, dtype: str) -> tuple[sp.Expr, tuple[sp.Symbol, ...], bool] | None:
    """(the expression of a :func:`_tree` over symbols x0, x1, ..., those symbols, whether it reads
    every one of them), or None when an op's scalar form refuses its operands. ``dtype``: the
    value's (numbers are merged only where that is exact in it, see :func:`_merge_scales`)."""
    with sp.evaluate(False):  # keep the graph's own expression: SymPy's automatic identities
        try:  # (exp(log x) = x, x*x/x = x) are unsafe at domain edges
            expr = _merge_scales(_sympy(tree), np.dtype(dtype))
        except (TypeError, ValueError):
            return None
        symbols = tuple(sp.Symbol(f"x{k}", real=True) for k in range(n_leaves))
        expr = expr.xreplace(dict(zip(_leaf_symbols(n_leaves), symbols)))
    return expr, symbols, expr.free_symbols == set(symbols)


def _power_of_two(c: sp.Number) -> bool:
    """|c| is 2**k for some integer k (frexp's mantissa is exactly 1/2)."""
    m, _ = math.frexp(abs(float(c)))
    return m == 0.5


def _merge_scales(expr: sp.Expr, dtype: np.dtype) -> sp.Expr:
    """``c1 * (c2 * e)`` as ``(c1 * c2) * e`` where c1 or c2 is a power of two and one of them a float
    (the weight decay's ``0.0005 * (2 * W)`` is ``0.001 * W``): one product fewer, and the same
    numbers, since scaling by a power of two is exact in any float dtype. Only where c1, c2 and the
    product are normal numbers of ``dtype``, as they are when the generated code casts them to it."""
    if not expr.args or dtype.kind != "f":
        return expr
    args = tuple(_merge_scales(a, dtype) for a in expr.args)
    if isinstance(expr, sp.Mul) and len(args) == 2:
        c1, inner = (args[0], args[1]) if args[0].is_Number else (args[1], args[0])
        numbers = [a for a in inner.args if a.is_Number] if isinstance(inner, sp.Mul) and c1.is_Number else []
        if len(numbers) == 1 and len(inner.args) == 2:
            c2 = numbers[0]
            info = np.finfo(dtype)
            merged = float(c1) * float(c2)
            normal = all(info.tiny <= abs(v) <= info.max for v in (float(c1), float(c2), merged))
            if normal and (_power_of_two(c1) or _power_of_two(c2)) and (c1.is_Float or c2.is_Float):
                rest = next(a for a in inner.args if a is not c2)
                return sp.Mul(sp.Float(repr(merged)), rest)
    return expr.func(*args) if args != expr.args else expr


def _sympy(tree: tuple) -> sp.Expr:
    kind, *rest = tree
    if kind == "leaf":
        return _leaf_symbol(rest[0])
    if kind == "number":
        return sp.Float(rest[1]) if rest[0] == "f" else sp.Integer(rest[1])
    op, operands = rest
    return sp.sympify(op.scalar_expr(*(_sympy(o) for o in operands)))
