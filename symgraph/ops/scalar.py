"""Elementwise ops defined by a SymPy expression of scalar symbols.

An :class:`Elementwise` op maps its (broadcast) inputs through one scalar
expression. Its partial derivatives come from ``sympy.diff``; wherever a
derivative contains the forward expression itself (``tanh' = 1 - tanh**2``,
``exp' = exp``) that is replaced by the op's output, so the gradient reuses the
forward value instead of recomputing it. The built-in activations are defined
the same way, and :func:`elementwise` lets users add their own.
"""

from __future__ import annotations

import inspect

import numpy as np
import sympy as sp

from ..graph import Node, Op, apply, as_node
from ..shapes import broadcast_shapes, numel


# -- scalar functions SymPy lacks, with stable derivatives -----------------------
class Sigmoid(sp.Function):
    """Logistic function; derivative sigmoid * (1 - sigmoid)."""

    def fdiff(self, argindex=1):
        s = Sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sp.exp(-x))


class Softplus(sp.Function):
    """log(1 + exp(x)); derivative sigmoid(x)."""

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.log(1 + sp.exp(x))


def _numpy_function(expr: sp.Expr, symbols: tuple):
    """``expr`` as a NumPy function of one array per symbol: the NumPy backend's printed code, so the
    op's semantics and the generated code are one text (imported here, not when symgraph is imported)."""
    from codegen.backends.scalar import scalar_function

    return scalar_function(expr, symbols)


# piecewise-constant functions: derivative 0 almost everywhere (SymPy leaves it unevaluated)
_STEPS = (sp.floor, sp.ceiling, sp.sign, sp.Heaviside)


def _diff(expr: sp.Expr, symbol: sp.Symbol, label: str) -> sp.Expr:
    """d expr / d symbol, almost everywhere: piecewise-constant functions (floor, ceiling, sign,
    Heaviside) have derivative 0 and the jumps' Dirac deltas are dropped; Mod(a, b) and frac(a)
    are differentiated as a - b * floor(a / b) and a - floor(a) (derivatives 1 and -floor(a / b)).
    Raises ValueError when SymPy leaves a derivative it cannot evaluate (printing it would fail
    only at compile time)."""
    expr = expr.replace(sp.Mod, lambda a, b: a - b * sp.floor(a / b)).replace(sp.frac, lambda a: a - sp.floor(a))
    d = sp.diff(expr, symbol).replace(sp.DiracDelta, lambda *a: sp.S.Zero)
    d = d.replace(lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, _STEPS), lambda e: sp.S.Zero)
    d = d.replace(lambda e: isinstance(e, sp.Subs), lambda e: e.doit())
    left = d.atoms(sp.Derivative, sp.Subs)
    if left:
        raise ValueError(
            f"elementwise {label!r}: SymPy cannot differentiate {expr} with respect to {symbol}; it leaves "
            f"{sorted(map(str, left))[0]} unevaluated, which has no NumPy form. Give the function "
            "a form SymPy differentiates (Piecewise, Heaviside, floor, Mod and Abs do), or wrap the "
            "argument in sg.stop_gradient if it needs no gradient")
    return d


def _symbols(n: int) -> tuple[sp.Symbol, ...]:
    return tuple(sp.Symbol(f"x{i}", real=True) for i in range(n))


OUT = sp.Symbol("y", real=True)  # stands for the op's own output in derivatives


class Elementwise(Op):
    """``y = expr(x0, x1, ...)`` applied elementwise with NumPy broadcasting.

    ``symbols`` are the scalar arguments, in input order. ``derivatives``
    optionally overrides ``sympy.diff`` per argument (for a cleaner or stabler
    form); it may use the output symbol ``y`` to read the forward value.
    """

    name, params, broadcasting = "elementwise", ("name", "expr", "symbols"), True
    view_of, elementwise, writes_into = (), True, True  # a ufunc writing into a buffer, when the printer finds one

    def __init__(self, name: str, expr: sp.Expr, symbols: tuple, derivatives: tuple | None = None,
                 builtin: bool = False):
        self.name = name
        self.expr = sp.sympify(expr)
        self.symbols = tuple(symbols)
        self._derivatives = None if derivatives is None else tuple(sp.sympify(d) for d in derivatives)
        self._partials: dict = {}  # input index -> the derivative (see _partial), made on first use
        self._fn = None
        self.derivative_of = None  # (primal op name, input index or None, operand names): see _partial
        self.show_expr = not builtin  # dprint shows the expression of all but the built-in functions

    def _key(self):
        # everything that changes behaviour: a user's elementwise(..., name="softplus") is not sg.softplus,
        # which has its own derivative and is matched by the simplifier's rules
        return (Elementwise, self.name, self.expr, self.symbols, self._derivatives, self.show_expr)

    def infer(self, *inputs):
        try:
            shape = broadcast_shapes(*(i.shape for i in inputs))
        except ValueError as e:
            raise self.shape_error(inputs, f"operands cannot be broadcast together ({e})") from None
        dtype = np.result_type(*(i.dtype for i in inputs)) if inputs else np.dtype(np.float64)
        return shape, dtype if dtype.kind == "f" else np.dtype(np.float64)

    def compute(self, *arrays):
        if self._fn is None:
            self._fn = _numpy_function(self.expr, self.symbols)
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
        dtype = np.result_type(*arrays, np.float16)
        return np.broadcast_to(self._fn(*(np.asarray(a, dtype) for a in arrays)), shape).astype(dtype)

    def scalar_expr(self, *args):
        return self.expr.xreplace(dict(zip(self.symbols, args)))

    def derivative(self, node: Node, i: int) -> Node | None:
        """The partial derivative of the output with respect to input ``i``, as a node."""
        if i not in self._partials:  # SymPy work depends only on the op: done once per op and input
            self._partials[i] = self._partial(i)
        d = self._partials[i]
        if d is None:
            return None
        if isinstance(d, float):
            return as_node(d, like=node)
        op, positions = d
        operands = node.inputs + (node,)  # position len(inputs) is the op's own output y
        return apply(op, *(operands[k] for k in positions))

    def _partial(self, i: int):
        """None (zero), a float (a constant), or (derivative op, positions of its operands)."""
        if self._derivatives is not None:
            d = self._derivatives[i]
        else:
            d = _diff(self.expr, self.symbols[i], self.name)
            if OUT not in self.symbols:
                d = d.subs(self.expr, OUT)
        if d == 0:
            return None
        positions = [k for k, s in enumerate(self.symbols + (OUT,)) if d.has(s)]
        if not positions:
            return float(d)
        syms = [(self.symbols + (OUT,))[k] for k in positions]
        args = _symbols(len(syms))  # fresh names: the derivative op's own output is not y
        d = d.xreplace(dict(zip(syms, args)))
        label = f"d{self.name}" if len(self.symbols) == 1 else f"d{self.name}/d{i}"
        op = Elementwise(label, d, args)
        # for pictures and traces: tanh'(y) = 1 - y**2, written in the primal's own variables
        names = ["x"] if len(self.symbols) == 1 else [f"x{k}" for k in range(len(self.symbols))]
        op.derivative_of = (self.name, None if len(self.symbols) == 1 else i,
                            tuple((names + ["y"])[k] for k in positions))
        return op, positions

    def vjp(self, node, cot):
        out = []
        for i, x in enumerate(node.inputs):
            d = self.derivative(node, i) if x.dtype.kind == "f" else None
            out.append(None if d is None else cot * d)
        return out

    def jvp(self, node, tangents):
        total = None
        for i, t in enumerate(tangents):
            if t is None:
                continue
            d = self.derivative(node, i)
            if d is not None:
                total = t * d if total is None else total + t * d
        return total

    def flops(self, node, sizes):
        return numel(node.shape, sizes) * max(1, int(sp.count_ops(self.expr)))


def _as_float(x):
    """Elementwise functions compute in floating point: integer data is converted first."""
    from .arith import cast

    x = as_node(x)
    return cast(x, np.float64) if x.dtype.kind in "iub" else x


def elementwise(fn, name: str | None = None):
    """Turn a function of SymPy scalar symbols into an elementwise graph builder.

    ``fn`` takes one SymPy symbol per input and returns a SymPy expression,
    e.g. ``lambda z: sympy.log(1 + sympy.exp(z))``. Derivatives are derived
    by SymPy; the user writes no gradient rule.
    """
    params = [
        p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    symbols = _symbols(len(params))
    expr = sp.sympify(fn(*symbols))
    label = name or (fn.__name__ if fn.__name__.isidentifier() else "elementwise")
    extra = expr.free_symbols - set(symbols)
    if extra:
        raise ValueError(f"elementwise {label!r}: the expression uses symbols {sorted(map(str, extra))} that are not its arguments")
    _numpy_function(expr, symbols)  # raises now, not at compile time, if SymPy can't print it
    op = Elementwise(label, expr, symbols)
    for i in range(len(symbols)):  # the same for its derivatives: refused now, with the reason
        op._partials[i] = d = op._partial(i)
        if isinstance(d, tuple):
            try:
                _numpy_function(d[0].expr, d[0].symbols)
            except Exception as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ValueError(f"elementwise {label!r}: its derivative with respect to argument {i}, "
                                 f"{d[0].expr}, has no NumPy form ({first})") from e

    def build(*inputs):
        if len(inputs) != len(symbols):
            raise TypeError(f"elementwise {label!r} takes {len(symbols)} input(s), got {len(inputs)}")
        return apply(op, *(_as_float(x) for x in inputs))

    build.__name__ = label
    build.__doc__ = f"Elementwise {label}: {expr}"
    build.op = op
    return build


def _unary(name: str, make, derivative=None, doc: str = ""):
    (x,) = _symbols(1)
    op = Elementwise(name, make(x), (x,), None if derivative is None else (derivative(x, OUT),), builtin=True)

    def build(x):
        node = as_node(x)
        if node.dtype.kind == "b":
            raise op.dtype_error([node], "expects a numeric operand, got a boolean one")
        return apply(op, _as_float(node))

    build.__name__ = name
    build.__doc__ = doc or f"Elementwise {name}(x) = {op.expr}."
    build.op = op
    return build


_H0 = lambda x: sp.Heaviside(x, 0)  # noqa: E731  (step with H(0) = 0)

exp = _unary("exp", sp.exp)
log = _unary("log", sp.log)
sqrt = _unary("sqrt", sp.sqrt)
square = _unary("square", lambda x: x**2)
abs = _unary("abs", sp.Abs)  # noqa: A001 (the public name)
sin = _unary("sin", sp.sin)
cos = _unary("cos", sp.cos)
tanh = _unary("tanh", sp.tanh)
sigmoid = _unary("sigmoid", Sigmoid, doc="Logistic function 1 / (1 + exp(-x)); derivative s * (1 - s).")
softplus = _unary(
    "softplus",
    Softplus,
    derivative=lambda x, y: sp.exp(x - y),  # sigmoid(x) from the output: x - softplus(x) <= 0, no overflow
    doc="log(1 + exp(x)), stable for any x; derivative sigmoid(x), computed as exp(x - softplus(x)).",
)
relu = _unary("relu", lambda x: sp.Max(x, 0), derivative=lambda x, y: _H0(y), doc="max(x, 0); derivative 1 where x > 0, else 0.")
hard_tanh = _unary(
    "hard_tanh",
    lambda x: sp.Max(-1, sp.Min(1, x)),
    derivative=lambda x, y: _H0(1 - sp.Abs(x)),
    doc="clip(x, -1, 1); derivative 1 where |x| < 1, else 0.",
)
step = _unary("step", _H0, doc="1 where x > 0, else 0 (the perceptron's threshold); derivative 0.")
floor = _unary("floor", sp.floor, derivative=lambda x, y: sp.S.Zero, doc="The largest integer <= x; derivative 0.")
sign = _unary("sign", sp.sign, derivative=lambda x, y: sp.S.Zero, doc="-1, 0 or 1 by the sign of x; derivative 0.")


def leaky_relu(x, alpha: float = 0.01) -> Node:
    """max(x, alpha * x) for 0 <= alpha < 1; derivative 1 where x > 0, else alpha."""
    if not isinstance(alpha, (int, float)) or not 0 <= alpha < 1:
        raise ValueError(f"leaky_relu: alpha must be a number in [0, 1), got {alpha!r}")
    (s,) = _symbols(1)
    a = sp.Float(alpha)
    op = Elementwise("leaky_relu", sp.Max(s, a * s), (s,), (a + (1 - a) * _H0(OUT),), builtin=True)
    return apply(op, _as_float(x))


def _prelu_op() -> Elementwise:
    x, a = _symbols(2)
    # d/dx: 1 where x > 0, else a (read from x, not y: y's sign is not x's when a < 0); d/da: min(x, 0)
    return Elementwise("prelu", sp.Max(x, 0) + a * sp.Min(x, 0), (x, a), (a + (1 - a) * _H0(x), sp.Min(x, 0)),
                       builtin=True)


_PRELU = _prelu_op()


def prelu(x, slope) -> Node:
    """Parametric ReLU: ``max(x, 0) + slope * min(x, 0)``, ``slope`` broadcast against ``x``.

    ``slope`` is usually a learnable parameter (see :class:`symgraph.nn.PReLU`,
    which shapes it per channel); with a fixed number in [0, 1) this is
    ``leaky_relu``. Derivatives: 1 where x > 0, else ``slope``, with respect to
    ``x``; ``min(x, 0)`` with respect to ``slope``.
    """
    x, slope = as_node(x), as_node(slope)
    for v, what in ((x, "x"), (slope, "slope")):
        if v.dtype.kind == "b":
            raise _PRELU.dtype_error([x, slope], f"expects a numeric {what}, got a boolean one")
    return apply(_PRELU, _as_float(x), _as_float(slope))


# -- issue 16: more built-in elementwise functions, each with a stable derivative ----------------
# SymPy's C99 functions (log1p, expm1, ...) print as NumPy's ufuncs and as the CUDA math functions.
from sympy.codegen.cfunctions import exp2 as _Exp2, expm1 as _Expm1, hypot as _Hypot  # noqa: E402
from sympy.codegen.cfunctions import log1p as _Log1p, log2 as _Log2, log10 as _Log10  # noqa: E402

_SQRT2 = sp.sqrt(2)
# PyTorch's SELU constants (torch.nn.SELU)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _binary_builtin(name: str, expr, derivatives=None):
    a, b = _symbols(2)
    return Elementwise(name, expr(a, b), (a, b), None if derivatives is None else derivatives(a, b, OUT),
                       builtin=True)


def _binary_build(op: Elementwise, doc: str):
    def build(a, b):
        like = a if isinstance(a, Node) else b if isinstance(b, Node) else None
        a, b = as_node(a, like=like), as_node(b, like=like)
        for v in (a, b):
            if v.dtype.kind == "b":
                raise op.dtype_error([a, b], "expects numeric operands, got a boolean one")
        return apply(op, _as_float(a), _as_float(b))

    build.__name__ = op.name
    build.__doc__ = doc
    build.op = op
    return build


def _over_nonzero(numerator, denominator):
    """numerator / denominator for a denominator >= 0, with denominator 1 where it is 0 (for 0 / 0 at a kink: 0, not NaN,
    and no invalid-value warning from a division whose result a where would then discard)."""
    # Heaviside(-d, 1) is 1 where d = 0 (d >= 0 here), else 0, in d's dtype (np.where(d == 0, 1, 0) is int64)
    return numerator / (denominator + sp.Heaviside(-denominator, 1))


log1p = _unary("log1p", _Log1p, derivative=lambda x, y: 1 / (1 + x),
               doc="log(1 + x), accurate for tiny x; derivative 1 / (1 + x).")
expm1 = _unary("expm1", _Expm1, derivative=lambda x, y: sp.exp(x),
               doc="exp(x) - 1, accurate for tiny x; derivative exp(x).")
exp2 = _unary("exp2", _Exp2, derivative=lambda x, y: sp.log(2) * y, doc="2 ** x; derivative log(2) * 2 ** x.")
log2 = _unary("log2", _Log2, derivative=lambda x, y: 1 / (sp.log(2) * x), doc="Base-2 logarithm; derivative 1 / (x log 2).")
log10 = _unary("log10", _Log10, derivative=lambda x, y: 1 / (sp.log(10) * x),
               doc="Base-10 logarithm; derivative 1 / (x log 10).")
reciprocal = _unary("reciprocal", lambda x: 1 / x, derivative=lambda x, y: -(y**2), doc="1 / x; derivative -1 / x**2.")
tan = _unary("tan", sp.tan, derivative=lambda x, y: 1 + y**2, doc="Tangent; derivative 1 + tan(x)**2.")
sinh = _unary("sinh", sp.sinh, derivative=lambda x, y: sp.cosh(x), doc="Hyperbolic sine; derivative cosh(x).")
cosh = _unary("cosh", sp.cosh, derivative=lambda x, y: sp.sinh(x), doc="Hyperbolic cosine; derivative sinh(x).")
arcsin = _unary("arcsin", sp.asin, derivative=lambda x, y: 1 / sp.sqrt((1 - x) * (1 + x)),
                doc="Inverse sine on [-1, 1] (NaN outside); derivative 1 / sqrt((1 - x)(1 + x)).")
arccos = _unary("arccos", sp.acos, derivative=lambda x, y: -1 / sp.sqrt((1 - x) * (1 + x)),
                doc="Inverse cosine on [-1, 1] (NaN outside); derivative -1 / sqrt((1 - x)(1 + x)).")
arctan = _unary("arctan", sp.atan, derivative=lambda x, y: 1 / (1 + x**2), doc="Inverse tangent; derivative 1 / (1 + x**2).")
arcsinh = _unary("arcsinh", sp.asinh, derivative=lambda x, y: 1 / _Hypot(1, x),
                 doc="Inverse hyperbolic sine; derivative 1 / hypot(1, x) (no overflow of x**2).")
arctanh = _unary("arctanh", sp.atanh, derivative=lambda x, y: 1 / ((1 - x) * (1 + x)),
                 doc="Inverse hyperbolic tangent on (-1, 1); derivative 1 / ((1 - x)(1 + x)).")
ceil = _unary("ceil", sp.ceiling, derivative=lambda x, y: sp.S.Zero, doc="The smallest integer >= x; derivative 0.")
erf = _unary("erf", sp.erf, derivative=lambda x, y: 2 / sp.sqrt(sp.pi) * sp.exp(-(x**2)),
             doc="The error function; derivative 2 / sqrt(pi) * exp(-x**2).")
gelu = _unary(
    "gelu",
    lambda x: x * (1 + sp.erf(x / _SQRT2)) / 2,
    derivative=lambda x, y: (1 + sp.erf(x / _SQRT2)) / 2 + x * sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi),
    doc="GELU, exact erf form (PyTorch's default): x * (1 + erf(x / sqrt 2)) / 2; derivative "
        "Phi(x) + x * phi(x).",
)
silu = _unary(
    "silu",
    lambda x: x * Sigmoid(x),
    derivative=lambda x, y: Sigmoid(x) * (1 + x * (1 - Sigmoid(x))),
    doc="SiLU (swish): x * sigmoid(x); derivative s * (1 + x * (1 - s)) with s = sigmoid(x), stable for any x.",
)
swish = silu


def _elu_expr(x, alpha):
    # expm1 of min(x, 0): the unused branch never overflows (elu(1000) computes expm1(0), not expm1(1000))
    return sp.Max(x, 0) + alpha * _Expm1(sp.Min(x, 0))


def _elu_op(name: str, alpha: float, scale: float = 1.0) -> Elementwise:
    (s,) = _symbols(1)
    a, k = sp.Float(alpha), sp.Float(scale)
    expr = _elu_expr(s, a) if scale == 1.0 else k * _elu_expr(s, a)
    d = sp.Piecewise((k, s > 0), (k * a * sp.exp(sp.Min(s, 0)), True))
    return Elementwise(name, expr, (s,), (d,), builtin=True)


def elu(x, alpha: float = 1.0) -> Node:
    """ELU: x where x > 0, else alpha * (exp(x) - 1) (computed with expm1); derivative 1 where
    x > 0, else alpha * exp(x) (PyTorch's, also at 0)."""
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not np.isfinite(alpha):
        raise ValueError(f"elu: alpha must be a finite number, got {alpha!r}")
    node = as_node(x)
    op = _elu_op("elu", float(alpha))
    if node.dtype.kind == "b":
        raise op.dtype_error([node], "expects a numeric operand, got a boolean one")
    return apply(op, _as_float(node))


_SELU = _elu_op("selu", SELU_ALPHA, SELU_SCALE)


def selu(x) -> Node:
    """SELU with PyTorch's constants: scale * elu(x, alpha), alpha = 1.6732632423543772,
    scale = 1.0507009873554805; derivative scale where x > 0, else scale * alpha * exp(x)."""
    node = as_node(x)
    if node.dtype.kind == "b":
        raise _SELU.dtype_error([node], "expects a numeric operand, got a boolean one")
    return apply(_SELU, _as_float(node))


_ARCTAN2 = _binary_builtin(
    "arctan2", lambda y, x: sp.atan2(y, x),
    # x / (x**2 + y**2) and -y / (x**2 + y**2), as PyTorch's (NaN at the origin)
    lambda y, x, out: (x / (x**2 + y**2), -y / (x**2 + y**2)),
)
_HYPOT = _binary_builtin(
    "hypot", _Hypot,
    # a / hypot and b / hypot; 0 at the origin (a subgradient: |(a, b)| has its kink there)
    lambda a, b, out: (_over_nonzero(a, out), _over_nonzero(b, out)),
)
_MOD = _binary_builtin("mod", sp.Mod, lambda a, b, out: (sp.S.One, -sp.floor(a / b)))

arctan2 = _binary_build(_ARCTAN2, "arctan2(y, x): the angle of the point (x, y), as np.arctan2; derivatives "
                                  "x / (x**2 + y**2) and -y / (x**2 + y**2).")
hypot = _binary_build(_HYPOT, "hypot(a, b) = sqrt(a**2 + b**2) without overflow; derivatives a / hypot and "
                              "b / hypot (0 at the origin).")
mod = _binary_build(_MOD, "a mod b with the sign of b (Python's and NumPy's floor mod: a - b * floor(a / b)), "
                          "in floating point; derivatives 1 and -floor(a / b). Also the ``%`` operator on nodes.")
