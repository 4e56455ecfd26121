"""Cumulative and ordering ops (issue 16): cumsum, cumprod, sort (through argsort and a permutation
along an axis), diff. Axes are stored as negative indices, so a rule applied to a tangent or
cotangent with extra leading (basis) axes still works along the same axis."""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..graph import NoDerivative, Node, Op, apply, as_node
from ..shapes import normalize_axes, numel
from .arith import cast, equal, where
from .shape import getitem, reshape


def _one_axis(x: Node, axis, what: str) -> tuple[Node, int]:
    """x (flattened when ``axis`` is None, as NumPy does) and the axis as a negative index."""
    if axis is None:
        return (x if x.ndim == 1 else reshape(x, -1)), -1
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{what}: axis must be an int or None, got {axis!r}")
    (ax,) = normalize_axes(int(axis), x.ndim, what)
    return x, ax


def _accumulated_dtype(op, x, ufunc) -> np.dtype:
    if x.dtype.kind == "b":
        raise op.dtype_error([x], "cannot accumulate booleans; convert with .astype(...) first")
    return ufunc.accumulate(np.zeros(1, x.dtype)).dtype


class CumSum(Op):
    """The running sum of x along ``axis`` (``np.cumsum``); with ``reverse``, summed from the end
    (``flip(cumsum(flip(x)))``). Linear: vjp is the running sum the other way, jvp cumsum(t)."""

    name, params = "cumsum", ("axis", "reverse")
    view_of, elementwise, writes_into = (), False, False  # a new array

    def __init__(self, axis: int, reverse: bool = False):
        self.axis = axis
        self.reverse = bool(reverse)

    def infer(self, x):
        return x.shape, _accumulated_dtype(self, x, np.add)

    def compute(self, x):
        if not self.reverse:
            return np.cumsum(x, axis=self.axis)
        return np.flip(np.cumsum(np.flip(x, self.axis), axis=self.axis), self.axis)

    def vjp(self, node, g):
        return (apply(CumSum(self.axis, not self.reverse), g),)

    def jvp(self, node, t):
        return apply(self, t[0])

    def flops(self, node, sizes):
        return numel(node.shape, sizes)


class CumProd(Op):
    """The running product of x along ``axis`` (``np.cumprod``).

    Derivatives without dividing by a zero. With ``safe`` x with its zeros taken as 1, ``first`` and
    ``second`` the first two zeros of x along the axis (if any), ``y1`` the running product with the
    first taken as 1, ``y12`` with both taken as 1, ``z`` the first zero's entry (value 0, carrying
    its derivative) and ``rcumsum`` the running sum from the end:

    - vjp: ``where(x == 0, 0, rcumsum(g * y) / safe) + where(first, rcumsum(g * y1), 0)
      + where(second, z * rcumsum(g * y12), 0)``: exact at zeros, and so is its derivative (the
      second derivative; a third would not be at zeros);
    - jvp: ``y * cumsum(where(x == 0, 0, t / safe)) + y1 * cumsum(where(first, t, 0))
      + z * y12 * cumsum(where(second, t, 0))``: exact at zeros, and so is its derivative (reverse
      over forward)."""

    name, params = "cumprod", ("axis",)
    view_of, elementwise, writes_into = (), False, False  # a new array

    def __init__(self, axis: int):
        self.axis = axis

    def infer(self, x):
        return x.shape, _accumulated_dtype(self, x, np.multiply)

    def compute(self, x):
        return np.cumprod(x, axis=self.axis)

    def zeros(self, x):
        """(x == 0, the first zero along the axis, the second), as boolean nodes."""
        zero = equal(x, 0)
        at = cast(zero, np.int64)
        count = apply(CumSum(self.axis), at) * at  # k at the k-th zero, 0 elsewhere
        return zero, equal(count, 1), equal(count, 2)

    def vjp(self, node, g):
        from .reduce import Sum

        x = node.inputs[0]
        zero, first, second = self.zeros(x)
        back = CumSum(self.axis, True)
        safe = where(zero, 1, x)
        y1 = apply(CumProd(self.axis), where(first, 1, x))
        y12 = apply(CumProd(self.axis), where(first, 1, where(second, 1, x)))
        z = apply(Sum((self.axis,), True), where(first, x, 0))
        return (where(zero, 0, apply(back, g * node) / safe) + where(first, apply(back, g * y1), 0)
                + where(second, z * apply(back, g * y12), 0),)

    def jvp(self, node, t):
        from .reduce import Sum

        x = node.inputs[0]
        zero, first, second = self.zeros(x)
        forward = CumSum(self.axis)
        y1 = apply(CumProd(self.axis), where(first, 1, x))
        y12 = apply(CumProd(self.axis), where(first, 1, where(second, 1, x)))
        z = apply(Sum((self.axis,), True), where(first, x, 0))
        return (node * apply(forward, where(zero, 0, t[0] / where(zero, 1, x)))
                + y1 * apply(forward, where(first, t[0], 0)) + z * y12 * apply(forward, where(second, t[0], 0)))

    def flops(self, node, sizes):
        return numel(node.shape, sizes)


class ArgSort(NoDerivative):
    """The int64 indices that sort x along ``axis`` (a stable sort: ties keep their order), as
    ``np.argsort(x, axis, kind="stable")``. Piecewise constant: no derivative."""

    name, params = "argsort", ("axis",)
    view_of, elementwise, writes_into = (), False, False  # a new array of indices

    def __init__(self, axis: int):
        self.axis = axis

    def infer(self, x):
        if x.dtype.kind == "b":
            raise self.dtype_error([x], "cannot sort booleans; convert with .astype(...) first")
        return x.shape, np.dtype(np.int64)

    def compute(self, x):
        return np.argsort(x, axis=self.axis, kind="stable").astype(np.int64)

    def flops(self, node, sizes):
        n = numel(node.shape, sizes)
        length = node.shape[self.axis] if node.ndim else 1
        return n * max(1, math.ceil(math.log2(length))) if isinstance(length, int) and length > 1 else n


class PermuteAlong(Op):
    """x reordered along ``axis`` by ``perm``, a permutation of each line of that axis (such as
    argsort's): ``take_along_axis(x, perm, axis)``; x may have more leading axes than perm (a batch
    of tangents or cotangents), which perm broadcasts over. Linear in x: vjp puts the cotangent
    back with the inverse permutation (``argsort(perm)``), jvp permutes the tangent."""

    name, params = "permute_along", ("axis",)
    view_of, elementwise, writes_into = (), False, False  # take_along_axis copies

    def __init__(self, axis: int):
        self.axis = axis

    def infer(self, x, perm):
        if perm.dtype.kind not in "iu":
            raise self.dtype_error([x, perm], "the permutation must be integers")
        tail = x.shape[x.ndim - perm.ndim:]
        if x.ndim < perm.ndim or any(isinstance(a, int) and isinstance(b, int) and a != b
                                     for a, b in zip(tail, perm.shape)):
            raise self.shape_error([x, perm], "the permutation must have the shape of x's last axes")
        return x.shape, x.dtype

    def compute(self, x, perm):
        return kernels._take_along(x, perm, self.axis)

    def vjp(self, node, g):
        perm = node.inputs[1]
        return apply(PermuteAlong(self.axis), g, apply(ArgSort(self.axis), perm)), None

    def jvp(self, node, t):
        return None if t[0] is None else apply(self, t[0], node.inputs[1])

    def flops(self, node, sizes):
        return 0


# -- builders -----------------------------------------------------------------
def cumsum(x, axis=None) -> Node:
    """The running sum along ``axis`` (None: of the flattened x), as ``np.cumsum``."""
    x, ax = _one_axis(as_node(x), axis, "cumsum")
    return apply(CumSum(ax), x)


def cumprod(x, axis=None) -> Node:
    """The running product along ``axis`` (None: of the flattened x), as ``np.cumprod``; its
    gradient is exact where x has zeros (see :class:`CumProd`)."""
    x, ax = _one_axis(as_node(x), axis, "cumprod")
    return apply(CumProd(ax), x)


def argsort(x, axis=-1) -> Node:
    """The int64 indices that sort x along ``axis`` (None: the flattened x), stably; no derivative."""
    x, ax = _one_axis(as_node(x), axis, "argsort")
    return apply(ArgSort(ax), x)


def sort(x, axis=-1) -> Node:
    """x sorted along ``axis`` (None: the flattened x), ascending, as ``np.sort``. The gradient
    goes back through the permutation: each entry's to the place it came from (between ties, in
    the stable order)."""
    x, ax = _one_axis(as_node(x), axis, "sort")
    return apply(PermuteAlong(ax), x, apply(ArgSort(ax), x))


def diff(x, n: int = 1, axis=-1) -> Node:
    """The n-th difference along ``axis``, as ``np.diff``: ``x[1:] - x[:-1]``, n times."""
    x = as_node(x)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"diff: order must be a non-negative int, got {n!r}")
    if x.ndim == 0:
        raise ValueError("diff: needs an array of at least one dimension")
    _, ax = _one_axis(x, axis, "diff")
    after = (slice(None),) * (-ax - 1)
    for _ in range(int(n)):
        x = getitem(x, (Ellipsis, slice(1, None)) + after) - getitem(x, (Ellipsis, slice(None, -1)) + after)
    return x
