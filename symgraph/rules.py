"""The simplifier's rewrite rules, grouped in named rule sets.

Each rule matches nodes of the ops it names and returns an equivalent node,
or ``None`` when it does not apply. The algebra is in the rule's docstring
(the first line is what reports and generated comments show). Rules build
nodes with the same public builders user code calls, never mutate a node,
and keep the node's shape and dtype. A rule that can change a value at a
domain edge (``exp(log x)`` at x <= 0, ``x - x`` at x = inf) is marked
``unsafe`` and only runs when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from .graph import Constant, Node, as_node, current_graph
from .graph import apply
from .ops import arith, linalg, nn, reduce, scalar, shape
from .shapes import is_static, numel


@dataclass(frozen=True)
class Rule:
    name: str
    ops: tuple[str, ...]  # op names of the node the rule matches
    fn: Callable[[Node], Node | None]
    unsafe: bool = False

    @property
    def doc(self) -> str:
        lines = (self.fn.__doc__ or "").strip().splitlines()
        return lines[0] if lines else ""  # a rule without a docstring (a user's rule) has no algebra to show


@dataclass(frozen=True)
class RuleSet:
    name: str
    rules: tuple[Rule, ...]


# -- predicates -------------------------------------------------------------------
def value(n: Node):
    """The array of a constant node, else None."""
    return n.op.value if isinstance(n.op, Constant) else None


def is_value(n: Node, v) -> bool:
    c = value(n)
    return c is not None and c.size > 0 and bool(np.all(c == v))


def fits(x: Node, node: Node) -> bool:
    """x can stand in for node: same shape and dtype."""
    return x.shape == node.shape and x.dtype == node.dtype


def name(n: Node) -> str:
    """The op's name for matching. A user-defined, derivative or fused elementwise op is just
    "elementwise", whatever its display name, so no rule mistakes it for a primitive."""
    return "elementwise" if getattr(n.op, "show_expr", False) else n.op.name


def scalar_source(n: Node) -> Node | None:
    """The 0-d value that n only broadcasts (through broadcast_to / expand_dims), if any."""
    while name(n) in ("broadcast_to", "expand_dims") and n.ndim:
        n = n.inputs[0]
    return n if n.ndim == 0 else None


def _binary(fn, a, b):
    return {"add": arith.add, "subtract": arith.subtract, "multiply": arith.multiply, "divide": arith.divide}[fn](a, b)


# -- algebra ------------------------------------------------------------------------
def add_zero(n):
    """x + 0 -> x"""
    a, b = n.inputs
    return b if is_value(a, 0) and fits(b, n) else a if is_value(b, 0) and fits(a, n) else None


def sub_zero(n):
    """x - 0 -> x; 0 - x -> -x"""
    a, b = n.inputs
    return a if is_value(b, 0) and fits(a, n) else arith.negative(b) if is_value(a, 0) and fits(b, n) else None


def sub_self(n):
    """x - x -> 0 (unsafe: inf - inf is nan)"""
    a, b = n.inputs
    return shape.zeros_like(n) if a is b else None


def mul_one(n):
    """x * 1 -> x"""
    a, b = n.inputs
    return b if is_value(a, 1) and fits(b, n) else a if is_value(b, 1) and fits(a, n) else None


def mul_minus_one(n):
    """x * -1 -> -x"""
    a, b = n.inputs
    return arith.negative(b) if is_value(a, -1) and fits(b, n) else (
        arith.negative(a) if is_value(b, -1) and fits(a, n) else None)


def mul_zero(n):
    """x * 0 -> 0 (unsafe: inf * 0 is nan)"""
    a, b = n.inputs
    return shape.zeros_like(n) if is_value(a, 0) or is_value(b, 0) else None


def mul_reciprocal(n):
    """x * (1 / d) -> x / d"""
    a, b = n.inputs
    for x, r in ((a, b), (b, a)):
        if name(r) == "divide" and is_value(r.inputs[0], 1) and x.dtype == n.dtype:
            out = arith.divide(x, r.inputs[1])
            return out if fits(out, n) else None
    return None


def div_one(n):
    """x / 1 -> x"""
    a, b = n.inputs
    return a if is_value(b, 1) and fits(a, n) else None


def neg_neg(n):
    """-(-x) -> x"""
    (a,) = n.inputs
    return a.inputs[0] if name(a) == "negative" else None


def add_neg(n):
    """a + (-b) -> a - b; (-a) + b -> b - a"""
    a, b = n.inputs
    if name(b) == "negative":
        return arith.subtract(a, b.inputs[0])
    return arith.subtract(b, a.inputs[0]) if name(a) == "negative" else None


def sub_neg(n):
    """a - (-b) -> a + b; (-a) - b -> -(a + b)"""
    a, b = n.inputs
    if name(b) == "negative":
        return arith.add(a, b.inputs[0])
    return arith.negative(arith.add(a.inputs[0], b)) if name(a) == "negative" else None


def pow_one(n):
    """x ** 1 -> x"""
    a, b = n.inputs
    return a if is_value(b, 1) and fits(a, n) else None


def pow_two(n):
    """x ** 2 -> square(x)"""
    a, b = n.inputs
    return scalar.square(a) if is_value(b, 2) and b.ndim == 0 and a.dtype.kind == "f" and fits(a, n) else None


def log_exp(n):
    """log(exp(x)) -> x"""
    (a,) = n.inputs
    return a.inputs[0] if name(a) == "exp" and fits(a.inputs[0], n) else None


def exp_log(n):
    """exp(log(x)) -> x (unsafe: differs for x <= 0)"""
    (a,) = n.inputs
    return a.inputs[0] if name(a) == "log" and fits(a.inputs[0], n) else None


def const_assoc(n):
    """(x op c1) op c2 -> x op (c1 op c2), for op in + and *, either operand order"""
    a, b = n.inputs
    if value(b) is None:  # c2 op (x op c1): both ops commute
        a, b = b, a
    if value(b) is None or name(a) != name(n):
        return None
    x, c1 = a.inputs
    if value(c1) is None:
        c1, x = x, c1
    if value(c1) is None or value(x) is not None:
        return None
    with np.errstate(all="ignore"):
        merged = np.asarray(n.op.compute(value(c1), value(b)))
    if not np.all(np.isfinite(merged)) or (name(n) == "multiply" and _underflows(merged, value(c1), value(b))):
        return None  # the merged constant would overflow or underflow where the original did not
    return _binary(name(n), x, _binary(name(n), c1, b))


def _underflows(product, c1, c2) -> bool:
    """c1 * c2 (= product) of nonzero factors is zero or subnormal: x * c1 * c2 need not be
    ((1e300 * 1e-200) * 1e-200 = 1e-100, but 1e300 * (1e-200 * 1e-200) = 0)."""
    if product.dtype.kind != "f":
        return False
    tiny = np.finfo(product.dtype).tiny
    return bool(np.any((np.abs(product) < tiny) & (np.asarray(c1) != 0) & (np.asarray(c2) != 0)))


def factor_common(n):
    """a * c + b * c -> (a + b) * c; a / c + b / c -> (a + b) / c; a * c + b * (-c) -> (a - b) * c"""
    a, b = n.inputs
    if name(a) != name(b) or name(a) not in ("multiply", "divide"):
        return None
    pairs = [(a.inputs, b.inputs)]
    if name(a) == "multiply":  # either factor may be the common one
        pairs = [(p, q) for p in (a.inputs, a.inputs[::-1]) for q in (b.inputs, b.inputs[::-1])]
    flip = {"add": "subtract", "subtract": "add"}[name(n)]
    for (x, c), (y, d) in pairs:
        if c is d:
            out = _binary(name(a), _binary(name(n), x, y), c)
        elif name(a) == "multiply" and name(d) == "negative" and _same(d.inputs[0], c):  # a*c + b*(-c)
            out = _binary("multiply", _binary(flip, x, y), c)
        elif name(a) == "multiply" and name(n) == "add" and name(c) == "negative" and _same(c.inputs[0], d):
            out = _binary("multiply", _binary("subtract", y, x), d)  # a*(-c) + b*c
        else:
            continue
        return out if fits(out, n) else None
    return None


def _same(a: Node, b: Node) -> bool:
    """a is b, or a only broadcasts the scalar b."""
    return a is b or scalar_source(a) is b


def drop_broadcast(n):
    """f(broadcast(s), y) -> f(s, y) when y already has the result's shape"""
    a, b = n.inputs
    for this, other, swap in ((a, b, False), (b, a, True)):
        s = scalar_source(this)
        if s is not None and s is not this and other.shape == n.shape:
            return _binary(name(n), other, s) if swap else _binary(name(n), s, other)
    return None


def transpose_transpose(n):
    """transpose(transpose(x, p), q) -> transpose(x, p[q])"""
    (a,) = n.inputs
    if name(a) != "transpose" or len(a.op.axes) != len(n.op.axes):
        return None
    axes = tuple(a.op.axes[q] for q in n.op.axes)
    inner = a.inputs[0]
    return inner if axes == tuple(range(len(axes))) else shape.transpose(inner, axes) if inner.ndim == len(axes) else None


def reshape_reshape(n):
    """reshape(reshape(x)) -> reshape(x)"""
    (a, *rest) = n.inputs
    if name(a) != "reshape" or rest or a.op.shape is None or not is_static(n.shape):
        return None
    x = a.inputs[0]
    return x if x.shape == n.shape else shape.reshape(x, n.shape)


def sum_of_broadcast(n):
    """sum(broadcast(s)) -> s * count, for a 0-d s summed over every axis"""
    (a,) = n.inputs
    s = scalar_source(a)
    if s is None or s is a or n.ndim or not is_static(a.shape) or s.dtype != n.dtype:
        return None
    count = numel(a.shape)
    return arith.multiply(s, as_node(float(count) if s.dtype.kind == "f" else count, like=s))


def squeeze_expand(n):
    """squeeze(expand_dims(x, axes), axes) -> x"""
    (a,) = n.inputs
    return a.inputs[0] if name(a) == "expand_dims" and a.op.axes == n.op.axes else None


def constant_fold(n):
    """op(constants) -> constant"""
    if not n.inputs or not all(isinstance(i.op, Constant) for i in n.inputs):
        return None
    with np.errstate(all="ignore"):  # log(0) is -inf, as the generated code would compute it: no warning to give
        result = np.asarray(n.op.compute(*(i.op.value for i in n.inputs)), dtype=n.dtype)
    if result.size > max(1, *(i.op.value.size for i in n.inputs)) or result.shape != n.shape:
        return None  # folding must not turn a broadcast into a stored array
    weak = result.ndim == 0 and all(i.op.weak for i in n.inputs)
    return current_graph().intern(Constant(np.array(result), weak=weak), ())


# -- linear algebra -----------------------------------------------------------------
def transpose_of_matmul(n):
    """transpose(a @ b) -> b.T @ a.T, when a or b is itself a transpose (one fewer transpose)"""
    (m,) = n.inputs
    if name(m) != "matmul" or n.op.axes != (1, 0) or m.ndim != 2:
        return None
    a, b = m.inputs
    if a.ndim != 2 or b.ndim != 2 or not (name(a) == "transpose" or name(b) == "transpose"):
        return None
    return linalg.matmul(shape.transpose(b), shape.transpose(a))


def matmul_of_basis(n):
    """I @ M -> M and M @ I -> M for the identity seed of a Jacobian (also e_k @ M row by row)"""
    a, b = n.inputs
    if name(a) == "basis" and a.ndim == 2 and fits(b, n):
        return b
    if name(b) == "basis" and b.ndim == 2 and fits(a, n):
        return a
    if name(a) == "expand_dims" and name(a.inputs[0]) == "basis" and a.inputs[0].ndim == 2 and a.op.axes == (-2,):
        out = shape.expand_dims(b, -2)  # row k of I @ M is M[k]
        return out if fits(out, n) else None
    if name(b) == "expand_dims" and name(b.inputs[0]) == "basis" and b.inputs[0].ndim == 2 and b.op.axes == (-1,):
        out = shape.expand_dims(shape.transpose(a), -1) if a.ndim == 2 else None  # M @ e_k is column k of M
        return out if out is not None and fits(out, n) else None
    return None


def stacked_matvec(n):
    """squeeze(A @ expand_dims(B, -1), -1) -> B @ A.T: a stack of matrix-vector products with one matrix A is one matrix product"""
    (m,) = n.inputs
    if name(m) != "matmul" or n.op.axes not in ((-1,), (-2,)):
        return None
    a, b = m.inputs
    if n.op.axes == (-1,) and a.ndim == 2 and name(b) == "expand_dims" and b.op.axes == (-1,):
        out = linalg.matmul(b.inputs[0], shape.transpose(a))  # row k: A @ B[k]
    elif n.op.axes == (-2,) and b.ndim == 2 and name(a) == "expand_dims" and a.op.axes == (-2,):
        out = linalg.matmul(a.inputs[0], b)  # row k: B[k] @ A
    else:
        return None
    return out if fits(out, n) else None


# -- stabilization ----------------------------------------------------------------
def log_of_softmax(n):
    """log(softmax(x)) -> log_softmax(x)"""
    (a,) = n.inputs
    return reduce.log_softmax(a.inputs[0], a.op.axis) if name(a) == "softmax" else None


def log_of_sigmoid(n):
    """log(sigmoid(x)) -> -softplus(-x); log(1 - sigmoid(x)) -> -softplus(x)"""
    (a,) = n.inputs
    if name(a) == "sigmoid":
        return arith.negative(scalar.softplus(arith.negative(a.inputs[0])))
    if name(a) == "subtract" and is_value(a.inputs[0], 1) and name(a.inputs[1]) == "sigmoid" and fits(a.inputs[1], n):
        return arith.negative(scalar.softplus(a.inputs[1].inputs[0]))
    return None


def log_one_plus_exp(n):
    """log(1 + exp(x)) -> softplus(x)"""
    (a,) = n.inputs
    if name(a) != "add":
        return None
    one, e = a.inputs if is_value(a.inputs[0], 1) else a.inputs[::-1]
    return scalar.softplus(e.inputs[0]) if is_value(one, 1) and name(e) == "exp" and fits(e, n) else None


def log_of_sum_exp(n):
    """log(sum(exp(x))) -> logsumexp(x)"""
    (a,) = n.inputs
    if name(a) != "sum" or name(a.inputs[0]) != "exp":
        return None
    x = a.inputs[0].inputs[0]
    return reduce.logsumexp(x, tuple(ax + x.ndim for ax in a.op.axes), a.op.keepdims)


def _plus_one(a: Node) -> Node | None:
    """x when a is 1 + x or x + 1 with the constant only broadcast (x has a's shape and dtype), else None."""
    if name(a) != "add":
        return None
    for one, x in (a.inputs, a.inputs[::-1]):
        if is_value(one, 1) and fits(x, a):
            return x
    return None


def log_one_plus(n):
    """log(1 + x) -> log1p(x) (exact for tiny x; log(1 + exp(x)) is left to log_one_plus_exp)"""
    x = _plus_one(n.inputs[0])
    if x is None or name(x) == "exp":
        return None
    out = scalar.log1p(x)
    return out if fits(out, n) else None


def exp_minus_one(n):
    """exp(x) - 1 -> expm1(x); exp(x) + (-1) -> expm1(x) (exact for tiny x)"""
    a, b = n.inputs
    if name(n) == "add" and name(a) != "exp":
        a, b = b, a
    minus_one = -1 if name(n) == "add" else 1
    if name(a) != "exp" or not is_value(b, minus_one) or not fits(a, n):
        return None
    return scalar.expm1(a.inputs[0])


def naive_softmax(n):
    """exp(x) / sum(exp(x), axis, keepdims) -> softmax(x, axis) (no overflow; also a 0-d sum of a vector)"""
    e, s = n.inputs
    if name(e) != "exp" or name(s) != "sum" or s.inputs[0] is not e or not fits(e, n):
        return None
    if s.op.keepdims and len(s.op.axes) == 1:
        axis = s.op.axes[0]
    elif e.ndim == 1 and s.ndim == 0:
        axis = -1
    else:
        return None
    out = reduce.softmax(e.inputs[0], axis)
    return out if fits(out, n) else None


def naive_sigmoid(n):
    """1 / (1 + exp(-x)) -> sigmoid(x); 1 / (1 + exp(x)) -> sigmoid(-x) (no overflow in value or gradient)"""
    one, d = n.inputs
    e = _plus_one(d)
    if not is_value(one, 1) or e is None or name(e) != "exp":
        return None
    x = e.inputs[0]
    out = scalar.sigmoid(x.inputs[0] if name(x) == "negative" else arith.negative(x))
    return out if fits(out, n) else None


def add_unpick(n):
    """a + unpick(v, labels) -> add_at(a, v, labels); a - unpick(v, labels) -> add_at(a, -v, labels)

    v is added at the labelled entries of a: no matrix of zeros (or of one-hot rows) is built."""
    a, u = n.inputs
    if name(u) != "unpick" and name(n) == "add":
        u, a = a, u
    if name(u) != "unpick" or not fits(a, n):
        return None
    values, labels = u.inputs
    if labels.shape != n.shape[:-1]:
        return None
    scalar = scalar_source(values)
    values = values if scalar is None else scalar
    if name(n) == "subtract":
        values = arith.negative(values)
    if np.result_type(a.dtype, values.dtype) != a.dtype:
        return None
    return nn.add_at(a, values, labels)


def unpick_of_negative(n):
    """unpick(-v, labels) -> -unpick(v, labels)"""
    values, labels = n.inputs
    return arith.negative(apply(n.op, values.inputs[0], labels)) if name(values) == "negative" else None


# -- masked gradients ----------------------------------------------------------------
def mask_product(n):
    """where(c, g, 0) * d -> where(c, g * d, 0), so d's inf/nan where c is false never leaks"""
    a, b = n.inputs
    for masked, d, swap in ((a, b, False), (b, a, True)):
        if name(masked) != "where" or (swap and name(n) == "divide"):
            continue
        c, x, y = masked.inputs
        product = (lambda v: _binary(name(n), d, v)) if swap else (lambda v: _binary(name(n), v, d))
        if is_value(y, 0) and not is_value(x, 0):
            return _fit_where(arith.where(c, product(x), 0), n)
        if is_value(x, 0) and not is_value(y, 0):
            return _fit_where(arith.where(c, 0, product(y)), n)
    return None


def negate_masked(n):
    """-where(c, x, 0) -> where(c, -x, 0), so the mask stays outermost"""
    (w,) = n.inputs
    if name(w) != "where":
        return None
    c, x, y = w.inputs
    if is_value(y, 0):
        return _fit_where(arith.where(c, arith.negative(x), 0), n)
    return _fit_where(arith.where(c, 0, arith.negative(y)), n) if is_value(x, 0) else None


def sum_of_masked(n):
    """sum(where(c, x, 0)) -> where(c, sum(x), 0) over axes c does not have (a broadcast mask)"""
    (w,) = n.inputs
    if name(w) != "where":
        return None
    c, x, y = w.inputs
    if any(a >= -c.ndim for a in n.op.axes):
        return None  # the mask varies along a summed axis
    if is_value(y, 0):
        return _fit_where(arith.where(c, apply(n.op, x), 0), n)
    return _fit_where(arith.where(c, 0, apply(n.op, y)), n) if is_value(x, 0) else None


def _fit_where(w: Node, n: Node) -> Node | None:
    return w if fits(w, n) else None


# -- conv nets ---------------------------------------------------------------------------
# Rules that need to know how many nodes use a value read the counts the simplifier keeps for the
# graph of its current pass (``counting_uses``); called outside the simplifier they never fire.
_USES: ContextVar[dict[int, int] | None] = ContextVar("symgraph_rule_uses", default=None)


@contextmanager
def counting_uses(counts: dict[int, int]):
    """Lets the rules ask how many nodes (and outputs) use each node of ``counts``, by id."""
    token = _USES.set(counts)
    try:
        yield
    finally:
        _USES.reset(token)


def sole_use(x: Node) -> bool:
    """x is used once in the graph being simplified (a node built in this pass counts as unknown: no)."""
    counts = _USES.get()
    return counts is not None and counts.get(id(x), 0) == 1


# Monotone non-decreasing built-in activations: f(max(a, b)) == max(f(a), f(b)) holds exactly (the
# computed f is monotone too), so f commutes with max pooling. Where f maps distinct inputs to one
# value (relu and hard_tanh where they are flat, a rounding tie of tanh far out) the derivative is
# 0 for the flat parts; a rounding tie routes the gradient to the larger input instead of the first.
MONOTONE = frozenset({"relu", "leaky_relu", "hard_tanh", "tanh", "sigmoid", "softplus"})


def pool_of_monotone(n):
    """max_pool2d(f(x)) -> f(max_pool2d(x)) for a monotone non-decreasing activation f used only there (f on k² times fewer values)"""
    (a,) = n.inputs
    if name(a) not in MONOTONE or len(a.inputs) != 1 or not sole_use(a):
        return None
    out = apply(a.op, apply(n.op, a.inputs[0]))
    return out if fits(out, n) else None


def conv_bias(n):
    """conv2d(x, w) + b -> conv2d(x, w, bias=b) for b of shape (O, 1, 1) or (1, O, 1, 1), the conv used only there (the bias added as the result is written: one pass fewer)"""
    for conv, b in (n.inputs, n.inputs[::-1]):
        if name(conv) != "conv2d" or len(conv.inputs) != 2 or conv.ndim != 4 or not sole_use(conv):
            continue
        o = conv.shape[1]
        if b.shape in ((o, 1, 1), (1, o, 1, 1)):
            out = apply(conv.op, *conv.inputs, shape.reshape(b, (o,)))
            return out if fits(out, n) else None
    return None


# -- the rule sets -------------------------------------------------------------------
ALGEBRA = RuleSet("algebra", (
    Rule("constant_fold", ("*",), constant_fold),
    Rule("add_zero", ("add",), add_zero),
    Rule("sub_zero", ("subtract",), sub_zero),
    Rule("sub_self", ("subtract",), sub_self, unsafe=True),
    Rule("mul_one", ("multiply",), mul_one),
    Rule("mul_minus_one", ("multiply",), mul_minus_one),
    Rule("mul_zero", ("multiply",), mul_zero, unsafe=True),
    Rule("mul_reciprocal", ("multiply",), mul_reciprocal),
    Rule("div_one", ("divide",), div_one),
    Rule("neg_neg", ("negative",), neg_neg),
    Rule("add_neg", ("add",), add_neg),
    Rule("sub_neg", ("subtract",), sub_neg),
    Rule("pow_one", ("power",), pow_one),
    Rule("pow_two", ("power",), pow_two),
    Rule("log_exp", ("log",), log_exp),
    Rule("exp_log", ("exp",), exp_log, unsafe=True),
    Rule("const_assoc", ("add", "multiply"), const_assoc),
    Rule("factor_common", ("add", "subtract"), factor_common),
    Rule("drop_broadcast", ("add", "subtract", "multiply", "divide"), drop_broadcast),
    Rule("transpose_transpose", ("transpose",), transpose_transpose),
    Rule("reshape_reshape", ("reshape",), reshape_reshape),
    Rule("sum_of_broadcast", ("sum",), sum_of_broadcast),
    Rule("squeeze_expand", ("squeeze",), squeeze_expand),
))

LINALG = RuleSet("linalg", (
    Rule("transpose_of_matmul", ("transpose",), transpose_of_matmul),
    Rule("matmul_of_basis", ("matmul",), matmul_of_basis),
    Rule("stacked_matvec", ("squeeze",), stacked_matvec),
))

STABILIZE = RuleSet("stabilize", (
    Rule("log_of_softmax", ("log",), log_of_softmax),
    Rule("log_of_sigmoid", ("log",), log_of_sigmoid),
    Rule("log_one_plus_exp", ("log",), log_one_plus_exp),
    Rule("log_of_sum_exp", ("log",), log_of_sum_exp),
    Rule("log_one_plus", ("log",), log_one_plus),
    Rule("exp_minus_one", ("subtract", "add"), exp_minus_one),
    Rule("naive_softmax", ("divide",), naive_softmax),
    Rule("naive_sigmoid", ("divide",), naive_sigmoid),
    Rule("unpick_of_negative", ("unpick",), unpick_of_negative),
    Rule("add_unpick", ("add", "subtract"), add_unpick),
))

MASKING = RuleSet("masking", (
    Rule("mask_product", ("multiply", "divide"), mask_product),
    Rule("negate_masked", ("negative",), negate_masked),
    Rule("sum_of_masked", ("sum",), sum_of_masked),
))

CONV = RuleSet("conv", (
    Rule("pool_of_monotone", ("max_pool2d",), pool_of_monotone),
    Rule("conv_bias", ("add",), conv_bias),
))

RULE_SETS = (ALGEBRA, LINALG, STABILIZE, MASKING, CONV)
BEFORE_DIFFERENTIATION = (STABILIZE, CONV)  # what the differentiator rewrites before it builds a derivative
