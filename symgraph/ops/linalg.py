"""Matrix products with NumPy's matmul semantics (vectors and batches)."""

from __future__ import annotations

import re

import numpy as np

from ..graph import NoDerivative, Node, Op, apply, as_node
from ..shapes import broadcast_shapes, numel
from .arith import add_opt
from .shape import Transpose, align_after, expand_dims, reshape, squeeze


def swap_last(x: Node) -> Node:
    """x with its last two axes swapped (``x.T`` for a matrix)."""
    return apply(Transpose((1, 0)), x)


def _as_matrices(a: Node, b: Node) -> tuple[Node, Node]:
    """NumPy's matmul reading of vectors: a 1-D ``a`` is a row, a 1-D ``b`` a column."""
    return (a if a.ndim > 1 else expand_dims(a, -2)), (b if b.ndim > 1 else expand_dims(b, -1))


class MatMul(Op):
    """a @ b. For matrices, vjp: (g @ b.T, a.T @ g) and jvp: ta @ b + a @ tb.

    A 1-D ``a`` is a row vector and a 1-D ``b`` a column vector, as in NumPy;
    the rule lifts them to matrices, applies the matrix rule, and drops the
    axis again. Batch axes broadcast; the differentiator sums them away.
    """

    name, symbol = "matmul", "@"
    view_of, elementwise, writes_into = (), False, True  # np.dot(a, b, out=buf)

    def infer(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise self.shape_error([a, b], "matmul needs operands with at least one dimension; use * for scalars")
        if a.dtype.kind == "b" or b.dtype.kind == "b":
            raise self.dtype_error([a, b], "matmul of booleans is not defined")
        ka, kb = a.shape[-1], b.shape[-2 if b.ndim > 1 else -1]
        if isinstance(ka, int) and isinstance(kb, int) and ka != kb:
            raise self.shape_error([a, b], f"inner dimensions differ: {ka} != {kb}")
        try:
            batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError as e:
            raise self.shape_error([a, b], f"batch dimensions cannot be broadcast ({e})") from None
        rows = a.shape[-2:-1] if a.ndim > 1 else ()
        cols = b.shape[-1:] if b.ndim > 1 else ()
        return batch + rows + cols, np.result_type(a.dtype, b.dtype)

    def compute(self, a, b):
        return np.matmul(a, b)

    def vjp(self, node, g):
        a, b = node.inputs
        lifted = g.ndim > node.ndim  # g carries leading basis axes (a batched sweep)
        if a.ndim == 1 and b.ndim == 1:  # a . b
            g = expand_dims(g, -1) if g.ndim else g
            return g * b, g * a
        if b.ndim == 1:  # A @ v: the outer product g v^T, and A^T g
            ga = expand_dims(g, -1) * b
            gb = matmul(swap_last(a), g) if a.ndim == 2 and not lifted else squeeze(
                matmul(swap_last(a), expand_dims(g, -1)), -1)
            return ga, gb
        if a.ndim == 1:  # v @ B: B g, and the outer product v g^T
            ga = matmul(b, g) if b.ndim == 2 and not lifted else squeeze(matmul(b, expand_dims(g, -1)), -1)
            gb = expand_dims(a, -1) * expand_dims(g, -2)
            return ga, gb
        return matmul(g, swap_last(b)), matmul(swap_last(a), g)

    def jvp(self, node, t):
        a, b = node.inputs
        A, B = _as_matrices(a, b)
        batch = max(A.ndim, B.ndim) - 2  # batch axes of the product (basis axes not counted)

        def lifted(tangent, x, vector_axis):
            if tangent is None:
                return None
            lead = tangent.ndim - x.ndim
            tangent = tangent if x.ndim > 1 else expand_dims(tangent, vector_axis)
            return align_after(tangent, lead, batch + 2)  # basis axes first, then the batch axes

        ta, tb = lifted(t[0], a, -2), lifted(t[1], b, -1)
        out = add_opt(None if ta is None else matmul(ta, B), None if tb is None else matmul(A, tb))
        out = out if a.ndim > 1 else squeeze(out, -2)
        return out if b.ndim > 1 else squeeze(out, -1)

    def flops(self, node, sizes):
        a = node.inputs[0]
        return 2 * numel(node.shape, sizes) * numel(a.shape[-1:], sizes)


def matmul(a, b) -> Node:
    """Matrix product with NumPy semantics (``a @ b``)."""
    return apply(MatMul(), a, b)


# -- issue 16: einsum and the products built on it, solve/inv/det/slogdet, norm ------------------
# Every rule below builds its derivative from these same ops (and matmul, elementwise arithmetic,
# sums), so a derivative is differentiable again: Hessians of graphs that use them work.
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _fresh(used, k: int) -> str:
    """``k`` letters not in ``used``."""
    free = [c for c in _LETTERS if c not in set(used)]
    if len(free) < k:
        raise ValueError(f"einsum: more than {len(_LETTERS)} distinct axes")
    return "".join(free[:k])


class Einsum(Op):
    """np.einsum with explicit subscripts (``"ij,jk->ik"``; no ellipsis: the builder spells it out).

    Each letter stands for one axis; a letter repeated within an operand takes its diagonal; letters
    missing from the output are summed. vjp for operand k: the einsum of the cotangent with the other
    operands, producing operand k's letters (a repeated letter through an identity operand, a letter
    found nowhere else broadcast back by the differentiator). jvp: the sum over operands of the same
    einsum with that operand replaced by its tangent. Leading basis axes of a tangent or cotangent get
    letters of their own."""

    name, params = "einsum", ("subscripts",)
    view_of, elementwise, writes_into = None, False, False  # NumPy may return a view ("ij->ji", "ii->i")

    def __init__(self, subscripts: str):
        self.subscripts = subscripts
        ins, self.out = subscripts.split("->")
        self.ins = tuple(ins.split(","))

    def sizes(self, inputs) -> dict:
        sizes = {}
        for sub, x in zip(self.ins, inputs):
            for c, d in zip(sub, x.shape):
                known = sizes.get(c)
                if known is None or (not isinstance(known, int) and isinstance(d, int)):
                    sizes[c] = d
                elif isinstance(known, int) and isinstance(d, int) and known != d:
                    raise self.shape_error(inputs, f"axis {c!r} has lengths {known} and {d}")
        return sizes

    def infer(self, *xs):
        if len(xs) != len(self.ins):
            raise self.shape_error(xs, f"{self.subscripts!r} needs {len(self.ins)} operands, got {len(xs)}")
        for sub, x in zip(self.ins, xs):
            if len(sub) != x.ndim:
                raise self.shape_error(xs, f"{sub!r} names {len(sub)} axes of an operand with {x.ndim}")
            if x.dtype.kind == "b":
                raise self.dtype_error(xs, "einsum of booleans is not defined; convert with .astype(...) first")
        sizes = self.sizes(xs)
        return tuple(sizes[c] for c in self.out), np.result_type(*(x.dtype for x in xs))

    def compute(self, *xs):
        return np.asarray(np.einsum(self.subscripts, *xs, optimize=len(xs) > 1))

    def vjp(self, node, g):
        lead = _fresh(self.subscripts, g.ndim - node.ndim)
        sizes = self.sizes(node.inputs)
        out = []
        for k, x in enumerate(node.inputs):
            target, extra, eyes = "", [], []
            used = self.subscripts + lead
            for c in self.ins[k]:
                if c in target:  # a diagonal: a fresh letter tied to c by an identity operand
                    n = sizes[c]
                    if not isinstance(n, int):
                        raise NotImplementedError(f"einsum: the gradient of a diagonal over a named axis ({n!r})")
                    new = _fresh(used + target, 1)
                    used += new
                    eyes.append((c + new, np.eye(n, dtype=g.dtype)))
                    c = new
                target += c
            others = [(s, o) for j, (s, o) in enumerate(zip(self.ins, node.inputs)) if j != k]
            subs = [lead + self.out] + [s for s, _ in others] + [s for s, _ in eyes]
            present = set("".join(subs))
            kept = "".join(c for c in target if c in present)
            value = einsum(",".join(subs) + "->" + lead + kept, g, *(o for _, o in others),
                           *(as_node(e) for _, e in eyes))
            missing = tuple(i - len(target) for i, c in enumerate(target) if c not in present)
            out.append(expand_dims(value, missing) if missing else value)  # broadcast back by the differentiator
        return tuple(out)

    def jvp(self, node, t):
        terms = None
        for k, tk in enumerate(t):
            if tk is None:
                continue
            lead = _fresh(self.subscripts, tk.ndim - node.inputs[k].ndim)
            subs = [lead + s if j == k else s for j, s in enumerate(self.ins)]
            args = [tk if j == k else x for j, x in enumerate(node.inputs)]
            terms = add_opt(terms, einsum(",".join(subs) + "->" + lead + self.out, *args))
        return terms

    def flops(self, node, sizes):
        letters = self.sizes(node.inputs)
        work = numel(tuple(letters[c] for c in letters), sizes)
        return max(1, len(self.ins) - 1) * 2 * work if len(self.ins) > 1 else work


def _parse_einsum(subscripts: str, shapes) -> str:
    """Explicit subscripts (``"ij,jk->ik"``): the implicit output (letters used once, in alphabetical
    order) written out and each ``...`` replaced by letters of its own (right-aligned across operands)."""
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
    else:
        ins, out = subscripts, None
    ins = ins.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: {subscripts!r} names {len(ins)} operands, got {len(shapes)}")
    letters = "".join(c for c in subscripts if c.isalpha())
    # one pass: taking "..." out of "-...>" must not make an arrow that a second pass would accept
    bad = [c for c in re.sub(r"\.\.\.|->|,", "", subscripts) if c not in _LETTERS]
    if bad:
        raise ValueError(f"einsum: {subscripts!r}: subscripts are letters, ',' , '->' and '...'; got {bad[0]!r}")
    width = max((len(shape) - len(s.replace("...", "")) for s, shape in zip(ins, shapes) if "..." in s), default=0)
    dots = _fresh(letters, width)
    spelled = []
    for s, shape in zip(ins, shapes):
        if "..." in s:
            k = len(shape) - len(s.replace("...", ""))
            if k < 0:
                raise ValueError(f"einsum: {s!r} names more axes than its operand has ({len(shape)})")
            s = s.replace("...", dots[width - k:])
        spelled.append(s)
    if out is None:
        once = sorted(c for c in set(letters) if letters.count(c) == 1)
        out = dots + "".join(once)
    else:
        out = out.replace("...", dots)
    for c in out:
        if out.count(c) > 1 or c not in "".join(spelled):
            raise ValueError(f"einsum: output letter {c!r} appears twice or in no operand ({subscripts!r})")
    return ",".join(spelled) + "->" + out


def einsum(subscripts: str, *operands) -> Node:
    """Einstein summation with NumPy's subscripts (``"ij,jk->ik"``, implicit output, ``...``).
    Operands of an ellipsis must have equal lengths on its axes (no broadcasting of length 1)."""
    operands = [as_node(x) for x in operands]
    if not operands:
        raise ValueError("einsum: needs at least one operand")
    spec = _parse_einsum(subscripts, [x.shape for x in operands])
    ins, out = spec.split("->")
    if len(operands) == 1 and ins == out:
        return operands[0]
    return apply(Einsum(spec), *operands)


def dot(a, b) -> Node:
    """np.dot: a matrix product for vectors and matrices, else a sum over a's last axis and b's
    second-to-last (or only) axis; a scalar operand multiplies."""
    a, b = as_node(a), as_node(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    la = _LETTERS[: a.ndim]
    lb = _fresh(la, b.ndim)
    k = -2 if b.ndim > 1 else -1
    lb = lb[:k % b.ndim] + la[-1] + lb[k % b.ndim + 1:]
    return einsum(f"{la},{lb}->{la[:-1]}{lb.replace(la[-1], '')}", a, b)


def inner(a, b) -> Node:
    """np.inner: the sum over the last axes of a and b (a scalar operand multiplies)."""
    a, b = as_node(a), as_node(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    la = _LETTERS[: a.ndim]
    lb = _fresh(la, b.ndim - 1) + la[-1]
    return einsum(f"{la},{lb}->{la[:-1]}{lb[:-1]}", a, b)


def outer(a, b) -> Node:
    """np.outer: every product of an entry of a with an entry of b (both flattened)."""
    a, b = as_node(a), as_node(b)
    a = a if a.ndim == 1 else reshape(a, -1)
    b = b if b.ndim == 1 else reshape(b, -1)
    return einsum("i,j->ij", a, b)


def tensordot(a, b, axes=2) -> Node:
    """np.tensordot: sum over the last ``axes`` axes of a and the first ``axes`` of b, or over the
    axes paired by ``axes=(a_axes, b_axes)``."""
    a, b = as_node(a), as_node(b)
    if isinstance(axes, (int, np.integer)):
        axes = (list(range(a.ndim - int(axes), a.ndim)), list(range(int(axes))))
    axa, axb = ([x] if isinstance(x, (int, np.integer)) else list(x) for x in axes)
    if len(axa) != len(axb):
        raise ValueError(f"tensordot: axes {axes!r} pair {len(axa)} axes of a with {len(axb)} of b")
    axa = [int(i) % a.ndim for i in axa]
    axb = [int(i) % b.ndim for i in axb]
    la = _LETTERS[: a.ndim]
    lb = list(_fresh(la, b.ndim))
    for i, j in zip(axa, axb):
        lb[j] = la[i]
    lb = "".join(lb)
    out = "".join(c for i, c in enumerate(la) if i not in axa) + "".join(c for j, c in enumerate(lb) if j not in axb)
    return einsum(f"{la},{lb}->{out}", a, b)


def trace(x, axis1: int = 0, axis2: int = 1) -> Node:
    """np.trace (offset 0): the sum of the diagonal over two axes of equal length."""
    x = as_node(x)
    i, j = (int(a) % x.ndim for a in (axis1, axis2))
    if i == j:
        raise ValueError("trace: axis1 and axis2 must differ")
    letters = list(_LETTERS[: x.ndim])
    letters[j] = letters[i]
    out = "".join(c for k, c in enumerate(letters) if k not in (i, j))
    return einsum("".join(letters) + "->" + out, _square_over(x, i, j))


def diagonal(x, axis1: int = 0, axis2: int = 1) -> Node:
    """np.diagonal (offset 0): the diagonal over two axes as the last axis; a rectangular pair
    keeps min(n, m) entries."""
    x = as_node(x)
    i, j = (int(a) % x.ndim for a in (axis1, axis2))
    if i == j:
        raise ValueError("diagonal: axis1 and axis2 must differ")
    letters = list(_LETTERS[: x.ndim])
    letters[j] = letters[i]
    out = "".join(c for k, c in enumerate(letters) if k not in (i, j)) + letters[i]
    return einsum("".join(letters) + "->" + out, _square_over(x, i, j))


def _square_over(x: Node, i: int, j: int) -> Node:
    """x with axes i and j cut to their common length (static lengths only when they differ)."""
    n, m = x.shape[i], x.shape[j]
    if n == m:
        return x
    if not (isinstance(n, int) and isinstance(m, int)):
        raise ValueError(f"the diagonal of axes of lengths {n!r} and {m!r}: they must be equal or static")
    index = [slice(None)] * x.ndim
    index[i if n > m else j] = slice(0, min(n, m))
    return x[tuple(index)]


def diag(v, k: int = 0) -> Node:
    """np.diag (k = 0): a vector's diagonal matrix, or a matrix's diagonal."""
    v = as_node(v)
    if k != 0:
        raise NotImplementedError("diag: only the main diagonal (k=0)")
    if v.ndim == 2:
        return diagonal(v)
    if v.ndim != 1 or not isinstance(v.shape[0], int):
        raise ValueError(f"diag: needs a vector of static length or a matrix, got shape {v.shape}")
    return expand_dims(v, -1) * as_node(np.eye(v.shape[0], dtype=v.dtype if v.dtype.kind in "iuf" else np.int64))


def _check_square(op: Op, inputs, a: Node):
    if a.ndim < 2:
        raise op.shape_error(inputs, "needs a matrix (or a stack of them) as its first operand")
    n, m = a.shape[-2:]
    if isinstance(n, int) and isinstance(m, int) and n != m:
        raise op.shape_error(inputs, f"needs square matrices, got {n}x{m}")
    if a.dtype.kind != "f":
        raise op.dtype_error(inputs, "needs a float matrix; convert with .astype(...) first")


def _cube(a: Node, sizes) -> int:
    return numel(a.shape[:-2], sizes) * numel(a.shape[-1:], sizes) ** 3


class Solve(Op):
    """X = solve(A, B) = A^-1 B for A (..., M, M) and B (..., M, K) (batch axes broadcast; the builder
    lifts a vector b to a column). vjp: gB = solve(A^T, G), gA = -gB X^T. jvp: solve(A, tB - tA X)."""

    name = "solve"
    view_of, elementwise, writes_into = (), False, False  # a new array

    def infer(self, a, b):
        _check_square(self, [a, b], a)
        if b.ndim < 2:
            raise self.shape_error([a, b], "the right-hand side must be (..., M, K); sg.solve lifts a vector")
        m, k = a.shape[-1], b.shape[-2]
        if isinstance(m, int) and isinstance(k, int) and m != k:
            raise self.shape_error([a, b], f"the right-hand side has {k} rows, the matrix {m}")
        try:
            batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError as e:
            raise self.shape_error([a, b], f"batch dimensions cannot be broadcast ({e})") from None
        return batch + b.shape[-2:], np.result_type(a.dtype, b.dtype)

    def compute(self, a, b):
        from ..kernels import _solve

        return _solve(a, b)

    def vjp(self, node, g):
        a, _ = node.inputs
        gb = apply(Solve(), swap_last(a), g)
        return -matmul(gb, swap_last(node)), gb

    def jvp(self, node, t):
        a, _ = node.inputs
        rhs = add_opt(t[1], None if t[0] is None else -matmul(t[0], node))
        return None if rhs is None else apply(Solve(), a, rhs)

    def flops(self, node, sizes):
        a = node.inputs[0]
        return max(1, _cube(a, sizes) * 2 // 3 + 2 * numel(node.shape, sizes) * numel(a.shape[-1:], sizes))


def solve(a, b) -> Node:
    """The solution X of A X = B (np.linalg.solve): b a vector (M,) or matrices (..., M, K)."""
    a, b = as_node(a), as_node(b)
    if b.ndim == 1:
        return squeeze(apply(Solve(), a, expand_dims(b, -1)), -1)
    return apply(Solve(), a, b)


class Inv(Op):
    """The inverse X = A^-1 of square matrices (..., M, M). vjp: -X^T G X^T. jvp: -X tA X."""

    name = "inv"
    view_of, elementwise, writes_into = (), False, False  # a new array

    def infer(self, a):
        _check_square(self, [a], a)
        return a.shape, a.dtype

    def compute(self, a):
        return np.linalg.inv(a)

    def vjp(self, node, g):
        xt = swap_last(node)
        return (-matmul(matmul(xt, g), xt),)

    def jvp(self, node, t):
        return -matmul(matmul(node, t[0]), node)

    def flops(self, node, sizes):
        return max(1, 2 * _cube(node, sizes))


def inv(a) -> Node:
    """The inverse of square matrices (np.linalg.inv)."""
    return apply(Inv(), as_node(a))


def _inv_t_dot(a: Node, t: Node) -> Node:
    """trace(A^-1 t) over the last two axes, as sum(A^-T * t) (t may carry leading basis axes)."""
    from .reduce import reduce_sum

    return reduce_sum(swap_last(inv(a)) * t, axis=(-2, -1))


class Det(Op):
    """det(A) of square matrices (..., M, M). vjp: g det(A) A^-T. jvp: det(A) trace(A^-1 tA).
    Both go through A^-1: at a singular A they fail (NumPy raises), though det's gradient
    (the adjugate) exists there; use slogdet away from singular matrices."""

    name = "det"
    view_of, elementwise, writes_into = (), False, False  # a new array

    def infer(self, a):
        _check_square(self, [a], a)
        return a.shape[:-2], a.dtype

    def compute(self, a):
        return np.asarray(np.linalg.det(a))

    def vjp(self, node, g):
        (a,) = node.inputs
        return (expand_dims(g * node, (-2, -1)) * swap_last(inv(a)),)

    def jvp(self, node, t):
        return node * _inv_t_dot(node.inputs[0], t[0])

    def flops(self, node, sizes):
        return max(1, _cube(node.inputs[0], sizes) * 2 // 3)


def det(a) -> Node:
    """The determinant of square matrices (np.linalg.det)."""
    return apply(Det(), as_node(a))


class LogAbsDet(Op):
    """log|det(A)| (np.linalg.slogdet(A)[1]). vjp: g A^-T. jvp: trace(A^-1 tA)."""

    name = "logabsdet"
    view_of, elementwise, writes_into = (), False, False  # a new array

    def infer(self, a):
        _check_square(self, [a], a)
        return a.shape[:-2], a.dtype

    def compute(self, a):
        return np.asarray(np.linalg.slogdet(a)[1])

    def vjp(self, node, g):
        return (expand_dims(g, (-2, -1)) * swap_last(inv(node.inputs[0])),)

    def jvp(self, node, t):
        return _inv_t_dot(node.inputs[0], t[0])

    def flops(self, node, sizes):
        return max(1, _cube(node.inputs[0], sizes) * 2 // 3)


class SignDet(NoDerivative):
    """The sign of det(A) (np.linalg.slogdet(A)[0]): -1, 0 or 1; piecewise constant, no derivative."""

    name = "signdet"
    view_of, elementwise, writes_into = (), False, False  # a new array

    def infer(self, a):
        _check_square(self, [a], a)
        return a.shape[:-2], a.dtype

    def compute(self, a):
        return np.asarray(np.linalg.slogdet(a)[0])


def slogdet(a) -> tuple[Node, Node]:
    """(sign, log|det|) of square matrices, as np.linalg.slogdet: the log of a determinant
    that would overflow or underflow, and its sign (which has no derivative)."""
    a = as_node(a)
    return apply(SignDet(), a), apply(LogAbsDet(), a)


class Norm(Op):
    """The 2-norm sqrt(sum(x**2)) over ``axes`` (negative; a vector's norm, a matrix's Frobenius
    norm over two axes, all axes by default). vjp: g x / n, jvp: sum(x t) / n, where n = 0 is
    replaced by 1 in the division: at x = 0 (where the norm has no derivative) the gradient is
    0, one of its subgradients, as in PyTorch. Not rescaled: entries beyond ~1e154 overflow."""

    name, params = "norm", ("axes", "keepdims")
    keywords = {"axes": "axis"}
    view_of, elementwise, writes_into = (), False, False  # a reduction makes a new array

    def __init__(self, axes, keepdims=False):
        self.axes = tuple(axes)
        self.keepdims = bool(keepdims)

    def infer(self, x):
        if x.dtype.kind != "f":
            raise self.dtype_error([x], "needs a float operand (sg.norm converts integers)")
        drop = {a + x.ndim for a in self.axes}
        return tuple(1 if i in drop else d for i, d in enumerate(x.shape) if self.keepdims or i not in drop), x.dtype

    def compute(self, x):
        return np.sqrt(np.add.reduce(np.square(x), axis=tuple(a + x.ndim for a in self.axes), keepdims=self.keepdims))

    def _kept(self, v: Node) -> Node:
        return v if self.keepdims or not self.axes else expand_dims(v, self.axes)

    def _safe(self, node: Node) -> Node:
        from .arith import equal, where

        return where(equal(node, 0), 1, node)

    def vjp(self, node, g):
        (x,) = node.inputs
        return (self._kept(g) * x / self._kept(self._safe(node)),)

    def jvp(self, node, t):
        from .reduce import reduce_sum

        (x,) = node.inputs
        return reduce_sum(x * t[0], axis=self.axes, keepdims=self.keepdims) / self._safe(node)

    def flops(self, node, sizes):
        return 2 * numel(node.inputs[0].shape, sizes)


def norm(x, axis=None, keepdims: bool = False) -> Node:
    """The 2-norm of a vector, or the Frobenius norm over several axes (all by default):
    sqrt(sum(x**2)). Its gradient at x = 0 is 0 (see :class:`Norm`)."""
    from ..shapes import int_tuple, normalize_axes
    from .arith import cast

    x = as_node(x)
    if x.dtype.kind != "f":
        x = cast(x, np.float64)
    axes = tuple(range(-x.ndim, 0)) if axis is None else normalize_axes(int_tuple(axis), x.ndim, "norm")
    return apply(Norm(axes, keepdims), x)


# -- cholesky and eigh (issue 16): functions of a symmetric matrix --------------------------------
# NumPy reads only the lower triangle of A. The derivatives treat A as symmetric: a tangent T enters
# through its symmetric part (T + T^T) / 2, and the gradient returned is symmetric (PyTorch's and
# JAX's convention); differentiate through a symmetric construction (X X^T, X + X^T, ...) to get
# the derivative of that construction.
def _sym(t: Node) -> Node:
    return 0.5 * (t + swap_last(t))


def _static_n(op: Op, a: Node) -> int:
    n = a.shape[-1]
    if not isinstance(n, int):
        raise NotImplementedError(f"{op.name}: differentiating over matrices of a named size ({n!r})")
    return n


class Cholesky(Op):
    """The lower Cholesky factor L of symmetric positive definite A (..., M, M): A = L L^T.
    With Phi(X) = the lower triangle of X with its diagonal halved: jvp L Phi(L^-1 sym(T) L^-T);
    vjp sym(L^-T Phi(L^T G) L^-1). A matrix that is not positive definite raises (NumPy's LinAlgError)."""

    name = "cholesky"
    view_of, elementwise, writes_into = (), False, False  # a new array

    def infer(self, a):
        _check_square(self, [a], a)
        return a.shape, a.dtype

    def compute(self, a):
        return np.linalg.cholesky(a)

    def _phi(self, node, x: Node) -> Node:
        n = _static_n(self, node)
        return x * as_node((np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)).astype(x.dtype))

    def vjp(self, node, g):
        p = self._phi(node, matmul(swap_last(node), g))
        lt = swap_last(node)
        q = apply(Solve(), lt, p)  # L^-T P
        return (_sym(swap_last(apply(Solve(), lt, swap_last(q)))),)  # L^-T P L^-1

    def jvp(self, node, t):
        m = apply(Solve(), node, _sym(t[0]))  # L^-1 S
        m = apply(Solve(), node, swap_last(m))  # L^-1 S L^-T (symmetric)
        return matmul(node, self._phi(node, m))

    def flops(self, node, sizes):
        return max(1, _cube(node, sizes) // 3)


def cholesky(a) -> Node:
    """The lower Cholesky factor of symmetric positive definite matrices (np.linalg.cholesky)."""
    return apply(Cholesky(), as_node(a))


def _gaps(w: Node) -> Node:
    """F with F[i, j] = 1 / (w[j] - w[i]) off the diagonal and 0 on it (over w's last axis)."""
    n = w.shape[-1]
    eye = as_node(np.eye(n, dtype=w.dtype))
    return (1.0 - eye) / (expand_dims(w, -2) - expand_dims(w, -1) + eye)


class EighValues(Op):
    """The eigenvalues w of symmetric A (np.linalg.eigh(A)[0], ascending). jvp: diag(V^T sym(T) V);
    vjp: V diag(g) V^T. Defined wherever the eigenvalues are; differentiable where they are distinct."""

    name = "eigh_values"
    view_of, elementwise, writes_into = (), False, False  # a new array

    def infer(self, a):
        _check_square(self, [a], a)
        return a.shape[:-1], a.dtype

    def compute(self, a):
        return np.linalg.eigh(a)[0]

    def vjp(self, node, g):
        v = apply(EighVectors(), node.inputs[0])
        return (matmul(expand_dims(g, -2) * v, swap_last(v)),)

    def jvp(self, node, t):
        v = apply(EighVectors(), node.inputs[0])
        k = matmul(matmul(swap_last(v), _sym(t[0])), v)
        return einsum("...ii->...i", k)

    def flops(self, node, sizes):
        return max(1, 9 * _cube(node.inputs[0], sizes))


class EighVectors(Op):
    """The orthonormal eigenvectors V (columns) of symmetric A (np.linalg.eigh(A)[1]). With
    F[i, j] = 1 / (w[j] - w[i]) (i != j), 0 on the diagonal: jvp V (F * (V^T sym(T) V));
    vjp sym(V (F * (V^T G)) V^T). The derivative exists only where the eigenvalues are distinct:
    at a repeated eigenvalue the eigenvectors are not unique and F is infinite (inf/nan results)."""

    name = "eigh_vectors"
    view_of, elementwise, writes_into = (), False, False  # a new array

    def infer(self, a):
        _check_square(self, [a], a)
        return a.shape, a.dtype

    def compute(self, a):
        return np.linalg.eigh(a)[1]

    def vjp(self, node, g):
        _static_n(self, node)
        w = apply(EighValues(), node.inputs[0])
        inner = _gaps(w) * matmul(swap_last(node), g)
        return (_sym(matmul(matmul(node, inner), swap_last(node))),)

    def jvp(self, node, t):
        _static_n(self, node)
        w = apply(EighValues(), node.inputs[0])
        k = matmul(matmul(swap_last(node), _sym(t[0])), node)
        return matmul(node, _gaps(w) * k)

    def flops(self, node, sizes):
        return max(1, 9 * _cube(node.inputs[0], sizes))


def eigh(a) -> tuple[Node, Node]:
    """(eigenvalues ascending, eigenvectors as columns) of symmetric matrices, as np.linalg.eigh
    (which reads the lower triangle). Gradients treat A as symmetric and need distinct eigenvalues
    (see :class:`EighVectors`); the eigenvalues' gradient needs them distinct only to be unique."""
    a = as_node(a)
    return apply(EighValues(), a), apply(EighVectors(), a)
