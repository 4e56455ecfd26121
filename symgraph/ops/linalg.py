"""Matrix products with NumPy's matmul semantics (vectors and batches)."""

from __future__ import annotations

import numpy as np

from ..graph import Node, Op, apply
from ..shapes import broadcast_shapes, numel
from .arith import add_opt
from .shape import Transpose, align_after, expand_dims, squeeze


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
