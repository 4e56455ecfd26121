"""Reductions and the softmax family, stable for inputs of any size.

Axes are stored as negative indices, so a rule applied to a cotangent with
extra leading axes still reduces the same axes.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from .. import kernels
from ..graph import NoDerivative, Node, Op, apply, as_node
from ..shapes import is_static, normalize_axes, numel
from .arith import cast, equal
from .scalar import exp
from .shape import ExpandDims


class Reduce(Op):
    params = ("axes", "keepdims")
    keywords = {"axes": "axis"}  # the builder's name for the attribute, as dprint shows it
    view_of, elementwise, writes_into = (), False, False  # a reduction makes a new array

    def __init__(self, axes: tuple[int, ...], keepdims: bool = False):
        self.axes = tuple(axes)
        self.keepdims = bool(keepdims)

    def infer(self, x):
        if x.dtype.kind == "b" and self.name != "sum":
            raise self.dtype_error([x], "cannot reduce booleans; convert with .astype(...) first")
        drop = {a + x.ndim for a in self.axes}
        shape = tuple(1 if i in drop else d for i, d in enumerate(x.shape) if self.keepdims or i not in drop)
        return shape, self.out_dtype(x.dtype)

    def out_dtype(self, dtype):
        return dtype

    def kept(self, g: Node) -> Node:
        """g (shaped like the output) with the reduced axes back as length 1."""
        return g if self.keepdims or g.ndim == 0 else apply(ExpandDims(self.axes), g)

    def flops(self, node, sizes):
        return numel(node.inputs[0].shape, sizes)


class Sum(Reduce):
    """sum(x, axes). vjp: g with the summed axes back as length 1 (the
    differentiator broadcasts it to x's shape). jvp: sum(t)."""

    name = "sum"
    writes_into = True  # np.add.reduce(x, axis, out=buf)

    def out_dtype(self, dtype):
        return np.dtype(np.int64) if dtype.kind == "b" else dtype

    def compute(self, x):
        return np.sum(x, axis=self.axes, keepdims=self.keepdims)

    def vjp(self, node, g):
        return (self.kept(g),)

    def jvp(self, node, t):
        return apply(self, t[0])


class Mean(Reduce):
    """mean(x, axes). vjp: g divided by the count, with the averaged axes back
    as length 1 (broadcast to x's shape by the differentiator). jvp: mean(t)."""

    name = "mean"

    def out_dtype(self, dtype):
        return dtype if dtype.kind == "f" else np.dtype(np.float64)

    def compute(self, x):
        return np.mean(x, axis=self.axes, keepdims=self.keepdims)

    def vjp(self, node, g):
        return (self.kept(g) / count(node.inputs[0], self.axes),)

    def jvp(self, node, t):
        return apply(self, t[0])


class Max(Reduce):
    """max(x, axes). The gradient is shared equally between tied maxima.
    vjp: g * (x == max) / (number of maxima). jvp: sum(t * share)."""

    name = "max"

    def compute(self, x):
        return np.max(x, axis=self.axes, keepdims=self.keepdims)

    def share(self, node):
        x = node.inputs[0]
        hit = cast(equal(x, self.kept(node)), x.dtype)
        return hit / apply(Sum(self.axes, True), hit)

    def vjp(self, node, g):
        return (self.kept(g) * self.share(node),)

    def jvp(self, node, t):
        return apply(Sum(self.axes, self.keepdims), t[0] * self.share(node))


class LogSumExp(Reduce):
    """log(sum(exp(x))), shifted by the max. vjp: g * exp(x - out), i.e. g * softmax(x)."""

    name = "logsumexp"

    def out_dtype(self, dtype):
        return dtype if dtype.kind == "f" else np.dtype(np.float64)

    def compute(self, x):
        return kernels._logsumexp(x, self.axes, self.keepdims)

    def weights(self, node):
        return exp(node.inputs[0] - self.kept(node))

    def vjp(self, node, g):
        return (self.kept(g) * self.weights(node),)

    def jvp(self, node, t):
        return apply(Sum(self.axes, self.keepdims), t[0] * self.weights(node))

    def flops(self, node, sizes):
        return 4 * numel(node.inputs[0].shape, sizes)


class Softmax(Op):
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the max.
    vjp and jvp (the Jacobian is symmetric): s * (v - sum(v * s))."""

    name, params = "softmax", ("axis",)
    view_of, elementwise, writes_into = (), False, False  # the helper returns a new array

    def __init__(self, axis: int):
        self.axis = axis

    def infer(self, x):
        return x.shape, x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)

    def compute(self, x):
        return kernels._softmax(x, self.axis)

    def _apply_jacobian(self, node, v):
        return node * (v - apply(Sum((self.axis,), True), v * node))

    def vjp(self, node, g):
        return (self._apply_jacobian(node, g),)

    def jvp(self, node, t):
        return self._apply_jacobian(node, t[0])

    def flops(self, node, sizes):
        return 4 * numel(node.shape, sizes)


class LogSoftmax(Softmax):
    """x - logsumexp(x) along ``axis``. vjp: g - exp(out) * sum(g). jvp: t - sum(exp(out) * t)."""

    name = "log_softmax"

    def compute(self, x):
        return kernels._log_softmax(x, self.axis)

    def vjp(self, node, g):
        return (g - exp(node) * apply(Sum((self.axis,), True), g),)

    def jvp(self, node, t):
        return t[0] - apply(Sum((self.axis,), True), exp(node) * t[0])


class Count(NoDerivative):
    """The number of elements of x along ``axes``, read from x's shape at run time."""

    name, params, shape_inputs = "count", ("axes",), (0,)
    view_of, elementwise, writes_into = (), False, False  # a number, never an array of the input

    def __init__(self, axes):
        self.axes = tuple(axes)

    def infer(self, x):
        return (), x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)

    def compute(self, x):
        return np.array(math.prod(x.shape[a] for a in self.axes), dtype=self.infer(x)[1])


def count(x: Node, axes) -> Node:
    """How many elements of x lie along ``axes``: a constant when the shape is static."""
    axes = tuple(a - x.ndim if a >= 0 else a for a in axes)  # stored negative, like every reduction
    dims = [x.shape[a] for a in axes]
    if is_static(dims):
        return as_node(float(math.prod(dims)), like=x)
    return apply(Count(tuple(axes)), x)


# -- builders -----------------------------------------------------------------
def _reduce(cls, x, axis, keepdims):
    x = as_node(x)
    axes = normalize_axes(axis, x.ndim, cls.name)
    if not axes and not keepdims:
        return x if cls is not Mean or x.dtype.kind == "f" else cast(x, np.float64)
    if cls is Mean and x.dtype.kind in "iu":  # summed in float64, as np.mean does: an int64 sum may overflow
        x = cast(x, np.float64)
    return apply(cls(axes, keepdims), x)


def reduce_sum(x, axis=None, keepdims=False) -> Node:
    """Sum over ``axis`` (None: all axes)."""
    return _reduce(Sum, x, axis, keepdims)


def mean(x, axis=None, keepdims=False) -> Node:
    """Mean over ``axis`` (None: all axes)."""
    return _reduce(Mean, x, axis, keepdims)


def reduce_max(x, axis=None, keepdims=False) -> Node:
    """Maximum over ``axis`` (None: all axes); gradient split between ties."""
    return _reduce(Max, x, axis, keepdims)


def logsumexp(x, axis=None, keepdims=False) -> Node:
    """log(sum(exp(x))) over ``axis``, finite for inputs of any size."""
    return _reduce(LogSumExp, x, axis, keepdims)


def softmax(x, axis=-1) -> Node:
    """exp(x) / sum(exp(x)) along ``axis``, finite for inputs of any size."""
    x = as_node(x)
    (ax,) = normalize_axes(axis, x.ndim, "softmax")
    return apply(Softmax(ax), x)


def log_softmax(x, axis=-1) -> Node:
    """x - logsumexp(x) along ``axis``, finite for inputs of any size."""
    x = as_node(x)
    (ax,) = normalize_axes(axis, x.ndim, "log_softmax")
    return apply(LogSoftmax(ax), x)


def maxout(x, pieces: int) -> Node:
    """Maxout over the last axis: its ``units * pieces`` entries, taken ``pieces`` at a time
    (consecutive entries form one group), give ``units`` maxima.

    ``x`` of shape ``(..., units * pieces)`` gives ``(..., units)``; the gradient
    goes to each group's maximum (split between ties, as in ``max``). The leading
    axes may hold at most one named (symbolic) dimension.
    """
    x = as_node(x)
    if not isinstance(pieces, (int, np.integer)) or isinstance(pieces, bool) or pieces < 1:
        raise ValueError(f"maxout: pieces must be a positive int, got {pieces!r}")
    pieces = int(pieces)
    n = x.shape[-1] if x.ndim else None
    if not isinstance(n, int) or n % pieces:
        raise ValueError(f"maxout: the last axis must be a static multiple of pieces={pieces}, got shape {x.shape}")
    lead = x.shape[:-1]
    if sum(not isinstance(d, int) for d in lead) > 1:
        raise ValueError(f"maxout: the leading axes may hold at most one named dimension, got shape {x.shape}")
    if pieces == 1:
        return x
    grouped = x.reshape(tuple(d if isinstance(d, int) else -1 for d in lead) + (n // pieces, pieces))
    return apply(Max((-1,), False), grouped)


def var(x, axis=None, ddof=0, keepdims=False) -> Node:
    """Variance over ``axis`` (None: all axes), as NumPy's ``np.var``: the mean square deviation
    from the mean, with ``count - ddof`` in the denominator (NaN where that is 0)."""
    x = as_node(x)
    if not isinstance(ddof, (int, float)) or isinstance(ddof, bool) or ddof < 0:
        raise ValueError(f"var: ddof must be a non-negative number, got {ddof!r}")
    axes = normalize_axes(axis, x.ndim, "var")
    x = x if x.dtype.kind == "f" else cast(x, np.float64)
    deviation = x - mean(x, axes, keepdims=True) if axes else x - x
    square = deviation * deviation
    if not ddof:
        return mean(square, axes, keepdims)
    return reduce_sum(square, axes, keepdims) / (count(x, axes) - as_node(float(ddof), like=x))


def std(x, axis=None, ddof=0, keepdims=False) -> Node:
    """Standard deviation over ``axis``: ``sqrt(var(x, axis, ddof, keepdims))``, as ``np.std``.
    Its derivative is 0 where the spread is 0 (as in PyTorch), not the NaN of sqrt'(0) * 0."""
    return _std_sqrt(var(x, axis, ddof, keepdims))


def _std_sqrt(v: Node) -> Node:
    from .scalar import Elementwise, OUT, _symbols

    (s,) = _symbols(1)
    # d sqrt(v) / dv = 1 / (2 sqrt(v)), taken as 0 at v = 0: at zero spread every deviation is 0. The divisor
    # is sqrt(v) + (1 where sqrt(v) is 0), so the branch np.where does not take divides by no zero either
    safe = OUT + sp.Heaviside(-OUT, 1)
    op = Elementwise("std_sqrt", sp.sqrt(s), (s,), (sp.Piecewise((1 / (2 * safe), OUT > 0), (0, True)),),
                     builtin=True)
    return apply(op, v)


# -- issue 16 (redops): min, prod, argmax/argmin, logaddexp ----------------------------------------
class Min(Max):
    """min(x, axes). The gradient is shared equally between tied minima (as in ``max``).
    vjp: g * (x == min) / (number of minima). jvp: sum(t * share)."""

    name = "min"

    def compute(self, x):
        return np.min(x, axis=self.axes, keepdims=self.keepdims)


class Prod(Reduce):
    """The product of x over ``axes`` (``np.prod`` keeping x's dtype, as ``np.multiply.reduce`` does).

    The derivative of the product with respect to x_i is the product of the other entries, computed
    without dividing by x_i where it is 0: with ``q = prod(x where x != 0) / (x where x != 0, else 1)``
    and ``m`` the number of zeros among the other entries, it is ``q`` when ``m == 0``, ``q * z`` when
    ``m == 1`` (``z``: that other zero entry, whose value 0 carries its derivative) and 0 when ``m > 1``.
    So the gradient is exact at zeros, and so is the second derivative (a third would not be at zeros).
    vjp: g * d; jvp: sum(t * d)."""

    name = "prod"

    def compute(self, x):
        return np.prod(x, axis=self.axes, keepdims=self.keepdims, dtype=x.dtype)

    def others(self, node):
        """d prod / d x_i: the product of every other entry along the axes (shaped like x)."""
        from .arith import where

        x = node.inputs[0]
        zero = equal(x, 0)
        safe = where(zero, 1, x)
        q = apply(Prod(self.axes, True), safe) / safe
        zeros_here = cast(zero, x.dtype)
        others_zero = apply(Sum(self.axes, True), zeros_here) - zeros_here  # zeros among the other entries
        at_zero = where(zero, x, 0)
        z = apply(Sum(self.axes, True), at_zero) - at_zero  # the other zero entries, summed (value 0)
        return q * where(equal(others_zero, 0), 1, where(equal(others_zero, 1), z, 0))

    def vjp(self, node, g):
        return (self.kept(g) * self.others(node),)

    def jvp(self, node, t):
        return apply(Sum(self.axes, self.keepdims), t[0] * self.others(node))

    def flops(self, node, sizes):
        return numel(node.inputs[0].shape, sizes)


class ArgMax(NoDerivative):
    """The index (int64) of the first maximum of x along ``axis`` (None: of the flattened x), as
    ``np.argmax``. Piecewise constant: no derivative."""

    name, params = "argmax", ("axis", "keepdims")
    view_of, elementwise, writes_into = (), False, False  # a new array of indices

    def __init__(self, axis, keepdims=False):
        self.axis = axis
        self.keepdims = bool(keepdims)

    def infer(self, x):
        if x.dtype.kind == "b":
            raise self.dtype_error([x], "cannot search booleans; convert with .astype(...) first")
        if self.axis is None:
            shape = (1,) * x.ndim if self.keepdims else ()
        else:
            ax = self.axis + x.ndim
            shape = tuple(1 if i == ax else d for i, d in enumerate(x.shape) if self.keepdims or i != ax)
        return shape, np.dtype(np.int64)

    def compute(self, x):
        return np.argmax(x, axis=self.axis, keepdims=self.keepdims).astype(np.int64)

    def flops(self, node, sizes):
        return numel(node.inputs[0].shape, sizes)


class ArgMin(ArgMax):
    """The index (int64) of the first minimum of x along ``axis`` (None: of the flattened x), as
    ``np.argmin``. Piecewise constant: no derivative."""

    name = "argmin"

    def compute(self, x):
        return np.argmin(x, axis=self.axis, keepdims=self.keepdims).astype(np.int64)


class LogAddExp(Op):
    """log(exp(a) + exp(b)) elementwise with broadcasting, finite for inputs of any size (``np.logaddexp``).
    vjp: (g * exp(a - out), g * exp(b - out)), the two weights summing to 1 (each 1/2 at a == b).
    jvp: ta * exp(a - out) + tb * exp(b - out)."""

    name = "logaddexp"
    broadcasting = True
    view_of, elementwise, writes_into = (), True, False  # np.logaddexp(a, b): a new array

    def infer(self, a, b):
        from ..shapes import broadcast_shapes

        try:
            shape = broadcast_shapes(a.shape, b.shape)
        except ValueError as e:
            raise self.shape_error([a, b], f"operands cannot be broadcast together ({e})") from None
        dtype = np.result_type(a.dtype, b.dtype)
        if dtype.kind == "b":
            raise self.dtype_error([a, b], "arithmetic on booleans is not defined; convert with .astype(...) first")
        return shape, dtype if dtype.kind == "f" else np.dtype(np.float64)

    def compute(self, a, b):
        return np.asarray(np.logaddexp(a, b, dtype=self.infer_dtype(a, b)))

    @staticmethod
    def infer_dtype(a, b):
        dtype = np.result_type(a, b)
        return dtype if dtype.kind == "f" else np.dtype(np.float64)

    def vjp(self, node, g):
        a, b = node.inputs
        return g * exp(a - node), g * exp(b - node)

    def jvp(self, node, t):
        from .arith import add_opt

        a, b = node.inputs
        return add_opt(None if t[0] is None else t[0] * exp(a - node), None if t[1] is None else t[1] * exp(b - node))

    def flops(self, node, sizes):
        return 4 * numel(node.shape, sizes)


def reduce_min(x, axis=None, keepdims=False) -> Node:
    """Minimum over ``axis`` (None: all axes); gradient split between ties."""
    return _reduce(Min, x, axis, keepdims)


def prod(x, axis=None, keepdims=False) -> Node:
    """Product over ``axis`` (None: all axes), in x's dtype; its gradient is exact where x has zeros."""
    return _reduce(Prod, x, axis, keepdims)


def _arg(cls, x, axis, keepdims):
    x = as_node(x)
    if axis is not None:
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"{cls.name}: axis must be an int or None, got {axis!r}")
        (axis,) = normalize_axes(int(axis), x.ndim, cls.name)
    return apply(cls(axis, keepdims), x)


def argmax(x, axis=None, keepdims=False) -> Node:
    """The int64 index of the first maximum along ``axis`` (None: into the flattened x); no derivative."""
    return _arg(ArgMax, x, axis, keepdims)


def argmin(x, axis=None, keepdims=False) -> Node:
    """The int64 index of the first minimum along ``axis`` (None: into the flattened x); no derivative."""
    return _arg(ArgMin, x, axis, keepdims)


def logaddexp(a, b) -> Node:
    """log(exp(a) + exp(b)) elementwise (broadcasting), finite for inputs of any size."""
    return apply(LogAddExp(), a, b)
