"""Arithmetic, comparisons and selection, with NumPy broadcasting.

Cotangents returned by ``vjp`` have the op's (broadcast) output shape: the
differentiator sums them back to each input's shape in one place. Tangents
may be ``None`` (a symbolic zero) and rules never build a zero array.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..graph import Constant, NoDerivative, Node, Op, apply, as_node
from ..shapes import broadcast_shapes, numel


def add_opt(a: Node | None, b: Node | None) -> Node | None:
    """a + b where ``None`` is a symbolic zero."""
    return b if a is None else a if b is None else add(a, b)


class Binary(Op):
    """Base of broadcasting elementwise ops. ``result`` picks the output dtype:
    ``"same"`` (NumPy promotion), ``"float"`` (promoted to float) or ``"bool"``."""

    result = "same"
    broadcasting = True
    symbol = ""  # the Python operator, for printing and dprint
    view_of, elementwise, writes_into = (), True, False  # result element i from operand elements at i (broadcast)

    def broadcast(self, inputs):
        try:
            return broadcast_shapes(*(i.shape for i in inputs))
        except ValueError as e:
            raise self.shape_error(inputs, f"operands cannot be broadcast together ({e})") from None

    def infer(self, *inputs):
        shape = self.broadcast(inputs)
        dtype = np.result_type(*(i.dtype for i in inputs))
        if self.result == "bool":
            return shape, np.dtype(bool)
        if dtype.kind == "b":
            raise self.dtype_error(inputs, "arithmetic on booleans is not defined; convert with .astype(...) first")
        if self.result == "float" and dtype.kind != "f":
            dtype = np.dtype(np.float64)
        return shape, dtype

    def flops(self, node, sizes):
        return numel(node.shape, sizes)


class Add(Binary):
    """a + b. vjp: (g, g). jvp: ta + tb."""

    name, symbol = "add", "+"
    writes_into = True  # np.add(a, b, out=buf)

    def compute(self, a, b):
        return np.add(a, b)

    def scalar_expr(self, a, b):
        return a + b

    def vjp(self, node, g):
        return g, g

    def jvp(self, node, t):
        return add_opt(*t)


class Subtract(Binary):
    """a - b. vjp: (g, -g). jvp: ta - tb."""

    name, symbol = "subtract", "-"
    writes_into = True  # np.subtract(a, b, out=buf)

    def compute(self, a, b):
        return np.subtract(a, b)

    def scalar_expr(self, a, b):
        return a - b

    def vjp(self, node, g):
        return g, negative(g)

    def jvp(self, node, t):
        ta, tb = t
        return ta if tb is None else negative(tb) if ta is None else subtract(ta, tb)


class Multiply(Binary):
    """a * b. vjp: (g * b, g * a). jvp: ta * b + a * tb."""

    name, symbol = "multiply", "*"
    writes_into = True  # np.multiply(a, b, out=buf)

    def compute(self, a, b):
        return np.multiply(a, b)

    def scalar_expr(self, a, b):
        return a * b

    def vjp(self, node, g):
        a, b = node.inputs
        if a is b:  # x * x: one contribution 2 g x instead of two equal ones
            return g * (as_node(2, like=a) * a), None
        return g * b, g * a

    def jvp(self, node, t):
        a, b = node.inputs
        ta, tb = t
        return add_opt(None if ta is None else ta * b, None if tb is None else a * tb)


class Divide(Binary):
    """a / b (true division). vjp: (g / b, -g * q / b) with q = a / b. jvp: (ta - q * tb) / b."""

    name, symbol, result = "divide", "/", "float"
    writes_into = True  # np.divide(a, b, out=buf)

    def compute(self, a, b):
        return np.true_divide(a, b)

    def scalar_expr(self, a, b):
        return a / b

    def vjp(self, node, g):
        b = node.inputs[1]
        return g / b, negative(g * node) / b

    def jvp(self, node, t):
        ta, tb = t
        num = ta if tb is None else negative(node * tb) if ta is None else ta - node * tb
        return num / node.inputs[1]


class Negative(Op):
    """-a. vjp: -g. jvp: -t."""

    name, symbol = "negative", "-"
    view_of, elementwise, writes_into = (), True, True  # np.negative(a, out=buf)

    def infer(self, a):
        if a.dtype.kind == "b":
            raise self.dtype_error([a], "cannot negate a boolean; use sg.where or ~ on the comparison")
        return a.shape, a.dtype

    def compute(self, a):
        return np.negative(a)

    def scalar_expr(self, a):
        return -a

    def vjp(self, node, g):
        return (negative(g),)

    def jvp(self, node, t):
        return negative(t[0])


class Power(Binary):
    """a ** b. vjp: (g * b * a**(b-1), g * a**b * log(a)). jvp: the same, with tangents."""

    name, symbol = "power", "**"
    writes_into = True  # np.power(a, b, out=buf), np.square for b = 2

    def compute(self, a, b):
        return np.power(a, b)

    def scalar_expr(self, a, b):
        return a**b

    def _partials(self, node, wrt_b: bool):
        """(d out/d a, d out/d b); None is a zero (the second is None unless asked for).

        As in PyTorch, d/da is 0 where b == 0 (not 0 * a**-1, NaN at a = 0) and d/db is 0
        where a == 0 and b >= 0 (not a**b * log(0), NaN for b > 0), -inf where a == 0 and b < 0.
        The masks are left out where a constant operand shows they cannot matter."""
        from .scalar import log

        a, b = node.inputs
        if isinstance(b.op, Constant) and b.ndim == 0:  # x ** c: the usual case, kept short
            c = b.op.value.item()
            da = None if c == 0 else as_node(c, like=a) if c == 1 else (
                as_node(c, like=a) * (a if c == 2 else power(a, c - 1)))
        elif _nonzero_constant(b):
            da = b * power(a, b - 1)
        else:  # b * a**(b - 1), and 0 where b == 0: there the power reads a**0 = 1, no 0 * a**-1
            da = b * power(a, where(equal(b, 0), 1, b) - 1)
        if not wrt_b:
            return da, None
        # at a == 0: -inf where b < 0 (inf * log 0), else 0; log reads 1 there, so no branch computes 0 * -inf
        at_zero = where(less(b, 0), as_node(-np.inf, like=node), 0)
        if isinstance(a.op, Constant) and not np.any(a.op.value):  # 0 ** y: no test of a needed
            db = at_zero
        elif _nonzero_constant(a):
            db = node * log(a)
        else:
            zero = equal(a, 0)
            db = where(zero, at_zero, node * log(where(zero, 1, a)))
        return da, db

    def vjp(self, node, g):
        da, db = self._partials(node, node.inputs[1].dtype.kind == "f")
        return None if da is None else g * da, None if db is None else g * db

    def jvp(self, node, t):
        da, db = self._partials(node, t[1] is not None)
        return add_opt(None if t[0] is None or da is None else t[0] * da, None if t[1] is None else t[1] * db)


def _nonzero_constant(n: Node) -> bool:
    """n is a constant with no zero entry."""
    return isinstance(n.op, Constant) and n.op.value.size > 0 and bool(np.all(n.op.value != 0))


class Maximum(Binary):
    """max(a, b) elementwise; ties send the gradient to a. vjp: (g where a >= b, g where a < b)."""

    name = "maximum"
    writes_into = True  # np.maximum(a, b, out=buf); Minimum inherits it

    def compute(self, a, b):
        return np.maximum(a, b)

    def scalar_expr(self, a, b):
        return sp.Max(a, b)

    def _mask(self, node):
        return greater_equal(*node.inputs)

    def vjp(self, node, g):
        mask = self._mask(node)
        return where(mask, g, 0), where(mask, 0, g)

    def jvp(self, node, t):
        mask = self._mask(node)
        return where(mask, 0 if t[0] is None else t[0], 0 if t[1] is None else t[1])


class Minimum(Maximum):
    """min(a, b) elementwise; ties send the gradient to a."""

    name = "minimum"

    def compute(self, a, b):
        return np.minimum(a, b)

    def scalar_expr(self, a, b):
        return sp.Min(a, b)

    def _mask(self, node):
        return less_equal(*node.inputs)


class Compare(Binary):
    """A comparison: boolean result, no derivative."""

    result, differentiable = "bool", False

    def vjp(self, node, g):
        return None, None

    def jvp(self, node, t):
        return None


class Less(Compare):
    """a < b elementwise (boolean); no derivative."""

    name, symbol = "less", "<"

    def compute(self, a, b):
        return np.less(a, b)


class LessEqual(Compare):
    """a <= b elementwise (boolean); no derivative."""

    name, symbol = "less_equal", "<="

    def compute(self, a, b):
        return np.less_equal(a, b)


class Greater(Compare):
    """a > b elementwise (boolean); no derivative."""

    name, symbol = "greater", ">"

    def compute(self, a, b):
        return np.greater(a, b)


class GreaterEqual(Compare):
    """a >= b elementwise (boolean); no derivative."""

    name, symbol = "greater_equal", ">="

    def compute(self, a, b):
        return np.greater_equal(a, b)


class Equal(Compare):
    """a == b elementwise (boolean); no derivative."""

    name, symbol = "equal", "=="

    def compute(self, a, b):
        return np.equal(a, b)


class NotEqual(Compare):
    """a != b elementwise (boolean); no derivative."""

    name, symbol = "not_equal", "!="

    def compute(self, a, b):
        return np.not_equal(a, b)


class Where(Binary):
    """cond ? a : b elementwise. vjp: (none, g where cond, g where not cond). jvp: where(cond, ta, tb)."""

    name = "where"

    def infer(self, cond, a, b):
        if cond.dtype.kind != "b":
            raise self.dtype_error([cond, a, b], "the condition must be boolean (a comparison)")
        return self.broadcast([cond, a, b]), np.result_type(a.dtype, b.dtype)

    def compute(self, cond, a, b):
        return np.where(cond, a, b)

    def vjp(self, node, g):
        cond = node.inputs[0]
        return None, where(cond, g, 0), where(cond, 0, g)

    def jvp(self, node, t):
        if t[1] is None and t[2] is None:
            return None
        return where(node.inputs[0], 0 if t[1] is None else t[1], 0 if t[2] is None else t[2])


class Cast(Op):
    """x converted to ``dtype``. Gradient flows only between float dtypes."""

    name, params = "cast", ("dtype",)
    view_of, elementwise, writes_into = (), True, False  # astype makes a new array; no out= form printed

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def infer(self, x):
        return x.shape, self.dtype

    def compute(self, x):
        return np.asarray(x).astype(self.dtype)

    def vjp(self, node, g):
        x = node.inputs[0]
        return (cast(g, x.dtype) if self.dtype.kind == "f" else None,)

    def jvp(self, node, t):
        return cast(t[0], self.dtype) if self.dtype.kind == "f" else None


class StopGradient(NoDerivative):
    """x, treated as a constant by differentiation."""

    name = "stop_gradient"
    view_of, elementwise, writes_into = (0,), False, False  # the value itself, not a copy

    def infer(self, x):
        return x.shape, x.dtype

    def compute(self, x):
        return x


# -- builders -----------------------------------------------------------------
def add(a, b) -> Node:
    return apply(Add(), a, b)


def subtract(a, b) -> Node:
    return apply(Subtract(), a, b)


def multiply(a, b) -> Node:
    return apply(Multiply(), a, b)


def divide(a, b) -> Node:
    return apply(Divide(), a, b)


def negative(a) -> Node:
    return apply(Negative(), a)


def power(a, b) -> Node:
    return apply(Power(), a, b)


def maximum(a, b) -> Node:
    """Elementwise max(a, b); the gradient at ties goes to a."""
    return apply(Maximum(), a, b)


def minimum(a, b) -> Node:
    """Elementwise min(a, b); the gradient at ties goes to a."""
    return apply(Minimum(), a, b)


def less(a, b) -> Node:
    return apply(Less(), a, b)


def less_equal(a, b) -> Node:
    return apply(LessEqual(), a, b)


def greater(a, b) -> Node:
    return apply(Greater(), a, b)


def greater_equal(a, b) -> Node:
    return apply(GreaterEqual(), a, b)


def equal(a, b) -> Node:
    """Elementwise a == b as a boolean node (``==`` on nodes keeps identity semantics)."""
    return apply(Equal(), a, b)


def not_equal(a, b) -> Node:
    """Elementwise a != b as a boolean node."""
    return apply(NotEqual(), a, b)


def where(cond, a, b) -> Node:
    """Elementwise ``a`` where ``cond`` is true, else ``b`` (``cond`` must be boolean)."""
    return apply(Where(), cond, a, b)


def cast(x, dtype) -> Node:
    """x converted to ``dtype`` (returns x itself when it already has that dtype)."""
    x = as_node(x)
    return x if x.dtype == np.dtype(dtype) else apply(Cast(dtype), x)


def stop_gradient(x) -> Node:
    """x, but differentiation treats it as a constant (its gradient is zero)."""
    return apply(StopGradient(), x)
