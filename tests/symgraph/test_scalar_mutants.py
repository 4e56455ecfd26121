"""scalar.py's mutation run (tests/MUTANTS.md): what the other tests left open, most of it built when
symgraph is imported (the built-in ops), which mutmut's forked run cannot see. Every built-in's name,
docstring and value and derivative (at the kinks too: relu, leaky_relu, prelu, elu at 0, hypot at the
origin), the builders' messages in full, the dtype rules of Elementwise.compute, the user builder's
labels and messages, and SymPy's Sigmoid / Softplus on numbers. Torch-free."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy as sp

import codegen
import symgraph as sg
from symgraph.ops import scalar as S

HERE = r" at \S*test_scalar_mutants\.py:\d+$"  # an op's message ends with the user's line
SQ2PI = np.sqrt(2 * np.pi)


def _erf(v):
    return np.array([float(sp.erf(float(t))) for t in np.ravel(v)]).reshape(np.shape(v))


def _sig(v):
    return 1 / (1 + np.exp(-v))


# name -> (NumPy value, hand-derived derivative, points)
UNARY = {
    "exp": (np.exp, np.exp, [-1.5, 0.0, 2.0]),
    "log": (np.log, lambda v: 1 / v, [0.5, 1.0, 3.0]),
    "sqrt": (np.sqrt, lambda v: 0.5 / np.sqrt(v), [0.25, 1.0, 4.0]),
    "square": (np.square, lambda v: 2 * v, [-1.5, 0.0, 2.0]),
    "abs": (np.abs, np.sign, [-1.5, 2.0]),
    "sin": (np.sin, np.cos, [-1.5, 0.0, 2.0]),
    "cos": (np.cos, lambda v: -np.sin(v), [-1.5, 0.0, 2.0]),
    "tanh": (np.tanh, lambda v: 1 - np.tanh(v) ** 2, [-1.5, 0.0, 2.0]),
    "sigmoid": (_sig, lambda v: _sig(v) * (1 - _sig(v)), [-1.5, 0.0, 2.0]),
    "softplus": (lambda v: np.log1p(np.exp(v)), _sig, [-1.5, 0.0, 2.0]),
    "relu": (lambda v: np.maximum(v, 0), lambda v: (v > 0) * 1.0, [-1.5, 0.0, 2.0]),
    "hard_tanh": (lambda v: np.clip(v, -1, 1), lambda v: (np.abs(v) < 1) * 1.0, [-1.5, -1.0, 0.0, 0.5, 1.0, 2.0]),
    "step": (lambda v: (v > 0) * 1.0, np.zeros_like, [-1.5, 0.0, 2.0]),
    "floor": (np.floor, np.zeros_like, [-1.5, 0.25, 2.0]),
    "sign": (np.sign, np.zeros_like, [-1.5, 0.0, 2.0]),
    "log1p": (np.log1p, lambda v: 1 / (1 + v), [-0.5, 0.0, 2.0]),
    "expm1": (np.expm1, np.exp, [-1.5, 0.0, 2.0]),
    "exp2": (np.exp2, lambda v: np.log(2) * np.exp2(v), [-1.5, 0.0, 2.0]),
    "log2": (np.log2, lambda v: 1 / (v * np.log(2)), [0.5, 1.0, 3.0]),
    "log10": (np.log10, lambda v: 1 / (v * np.log(10)), [0.5, 1.0, 3.0]),
    "reciprocal": (np.reciprocal, lambda v: -1 / v**2, [-1.5, 0.5, 2.0]),
    "tan": (np.tan, lambda v: 1 / np.cos(v) ** 2, [-1.0, 0.0, 0.5]),
    "sinh": (np.sinh, np.cosh, [-1.5, 0.0, 2.0]),
    "cosh": (np.cosh, np.sinh, [-1.5, 0.0, 2.0]),
    "arcsin": (np.arcsin, lambda v: 1 / np.sqrt(1 - v**2), [-0.5, 0.0, 0.75]),
    "arccos": (np.arccos, lambda v: -1 / np.sqrt(1 - v**2), [-0.5, 0.0, 0.75]),
    "arctan": (np.arctan, lambda v: 1 / (1 + v**2), [-1.5, 0.0, 2.0]),
    "arcsinh": (np.arcsinh, lambda v: 1 / np.sqrt(1 + v**2), [-1.5, 0.0, 2.0]),
    "arctanh": (np.arctanh, lambda v: 1 / (1 - v**2), [-0.5, 0.0, 0.75]),
    "ceil": (np.ceil, np.zeros_like, [-1.5, 0.25, 2.0]),
    "erf": (_erf, lambda v: 2 / np.sqrt(np.pi) * np.exp(-v**2), [-1.5, 0.0, 2.0]),
    "gelu": (lambda v: v * (1 + _erf(v / np.sqrt(2))) / 2,
             lambda v: (1 + _erf(v / np.sqrt(2))) / 2 + v * np.exp(-v**2 / 2) / SQ2PI, [-1.5, 0.0, 2.0]),
    "silu": (lambda v: v * _sig(v), lambda v: _sig(v) * (1 + v * (1 - _sig(v))), [-1.5, 0.0, 2.0]),
}
DOCS = {  # the builders given a docstring; the others get "Elementwise name(x) = expr."
    "sigmoid": "Logistic function 1 / (1 + exp(-x)); derivative s * (1 - s).",
    "relu": "max(x, 0); derivative 1 where x > 0, else 0.",
    "step": "1 where x > 0, else 0 (the perceptron's threshold); derivative 0.",
    "tan": "Tangent; derivative 1 + tan(x)**2.",
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_builtin_unary_value_and_derivative_against_numpy(name):
    """Values against NumPy, derivatives against the hand-derived ones (at 0 for relu, step, sign: 0,
    the derivative the built-in gives there), through the graph, the gradient and the compiled code."""
    f, df, pts = UNARY[name]
    build = getattr(sg, name)
    a = np.array(pts)
    x = sg.placeholder("x", a.shape)
    y = build(x)
    assert (y.op.name, y.shape, y.dtype) == (name, a.shape, np.float64)
    value, grad = codegen.evaluate([y, sg.grad(y.sum(), x)], {x: a})
    np.testing.assert_allclose(value, f(a), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, df(a), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_builtin_unary_name_doc_op_and_dprint(name):
    build = getattr(sg, name)
    assert build.__name__ == name
    assert build.op.name == name and isinstance(build.op, S.Elementwise)
    if name in DOCS:
        assert build.__doc__ == DOCS[name]
    elif name in ("exp", "log", "sin"):
        assert build.__doc__ == f"Elementwise {name}(x) = {name}(x0)."
    else:
        assert build.__doc__ and "XX" not in build.__doc__
    x = sg.placeholder("x", (3,))
    # a built-in shows as its name, not its expression; the simplifier matches it by name
    assert sg.dprint(build(x)).splitlines()[1] == f"%t1 = {name}(%x)  (3,) float64"
    assert build.op.show_expr is False


def test_integer_operands_are_converted_and_python_numbers_accepted():
    i = sg.placeholder("i", (3,), dtype="int32")
    y = sg.exp(i)
    assert y.dtype == np.float64 and y.inputs[0].op.name == "cast"
    np.testing.assert_allclose(codegen.evaluate(y, {i: np.array([0, 1, 2], np.int32)}), np.exp([0, 1, 2]))
    np.testing.assert_allclose(codegen.evaluate(sg.sqrt(4.0), {}), 2.0)


BOOL_ERRORS = [
    (lambda b, x: sg.exp(b), "exp: expects a numeric operand, got a boolean one (operand dtypes bool)"),
    (lambda b, x: sg.tanh(b), "tanh: expects a numeric operand, got a boolean one (operand dtypes bool)"),
    (lambda b, x: sg.elu(b), "elu: expects a numeric operand, got a boolean one (operand dtypes bool)"),
    (lambda b, x: sg.selu(b), "selu: expects a numeric operand, got a boolean one (operand dtypes bool)"),
    (lambda b, x: sg.prelu(b, x), "prelu: expects a numeric x, got a boolean one (operand dtypes bool, float64)"),
    (lambda b, x: sg.prelu(x, b), "prelu: expects a numeric slope, got a boolean one (operand dtypes float64, bool)"),
    (lambda b, x: sg.hypot(b, x), "hypot: expects numeric operands, got a boolean one (operand dtypes bool, float64)"),
    (lambda b, x: sg.arctan2(x, b),
     "arctan2: expects numeric operands, got a boolean one (operand dtypes float64, bool)"),
    (lambda b, x: sg.mod(b, b), "mod: expects numeric operands, got a boolean one (operand dtypes bool, bool)"),
]


@pytest.mark.parametrize("build, message", BOOL_ERRORS)
def test_boolean_operands_are_refused_with_the_whole_message(build, message):
    b, x = sg.placeholder("b", (3,), dtype="bool"), sg.placeholder("x", (3,))
    with pytest.raises(sg.DTypeError, match="^" + _re(message) + HERE):
        build(b, x)


def _re(text):
    import re

    return re.escape(text)


# -- SymPy functions --------------------------------------------------------------------------------
def test_sigmoid_and_softplus_evaluate_on_numbers():
    assert S.Sigmoid(sp.Integer(0)) == sp.Rational(1, 2)
    assert S.Sigmoid(sp.Integer(2)) == 1 / (1 + sp.exp(-2))
    assert float(S.Sigmoid(sp.Float(-1.5))) == pytest.approx(_sig(-1.5), rel=1e-14)
    assert S.Softplus(sp.Integer(0)) == sp.log(2)
    assert float(S.Softplus(sp.Float(1.5))) == pytest.approx(np.log1p(np.exp(1.5)), rel=1e-14)
    z = sp.Symbol("z")
    assert isinstance(S.Sigmoid(z), S.Sigmoid) and isinstance(S.Softplus(z), S.Softplus)  # symbols stay
    assert sp.diff(S.Sigmoid(z), z) == S.Sigmoid(z) * (1 - S.Sigmoid(z))
    assert sp.diff(S.Softplus(z), z) == S.Sigmoid(z)


def test_user_function_of_sigmoid_of_a_number_is_its_value():
    f = sg.elementwise(lambda z: z * S.Sigmoid(2) + S.Softplus(0), name="shifted")
    x = sg.placeholder("x", (2,))
    np.testing.assert_allclose(codegen.evaluate(f(x), {x: np.array([1.0, -3.0])}),
                               np.array([1.0, -3.0]) * _sig(2.0) + np.log(2), rtol=1e-14)


# -- Elementwise.compute: the dtype rules -----------------------------------------------------------
def _square_op():
    (s,) = S._symbols(1)
    return S.Elementwise("sq", s**2, (s,))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_compute_keeps_a_float_dtype(dtype):
    got = _square_op().compute(np.array([1.5, -2.0], dtype))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.array([2.25, 4.0], dtype))


def test_compute_converts_integers_to_float_before_computing():
    """int8 20**2 would wrap around to -112 in int8; computed in float16 (the smallest float that
    holds int8) it is 400."""
    got = _square_op().compute(np.array([20, -3], np.int8))
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, [400.0, 9.0])
    got = _square_op().compute(np.array([3_000_000_000], np.int64))
    assert got.dtype == np.float64 and got[0] == 9e18


def test_compute_mixed_dtypes_promote_and_broadcast():
    a, b = S._symbols(2)
    op = S.Elementwise("f", a / b, (a, b))
    got = op.compute(np.array([[1], [2]], np.int16), np.array([4.0, 8.0], np.float32))
    assert got.dtype == np.float32 and got.shape == (2, 2)
    np.testing.assert_array_equal(got, [[0.25, 0.125], [0.5, 0.25]])


# -- the user builder: labels and messages ------------------------------------------------------------
def test_user_elementwise_labels():
    def cube(z):
        return z**3

    assert sg.elementwise(cube).__name__ == "cube" and sg.elementwise(cube).op.name == "cube"
    lam = sg.elementwise(lambda z: z + 1)
    assert lam.__name__ == "elementwise" and lam.op.name == "elementwise"
    assert sg.elementwise(lambda z: z + 1, name="inc").__name__ == "inc"
    assert lam.__doc__ == "Elementwise elementwise: x0 + 1"
    assert sg.elementwise(cube).__doc__ == "Elementwise cube: x0**3"
    x = sg.placeholder("x", (3,))
    assert sg.dprint(sg.elementwise(cube)(x)).splitlines()[1] == "%t1 = cube(%x, expr=x0**3)  (3,) float64"


def test_user_elementwise_with_a_foreign_symbol_is_refused():
    w, v = sp.Symbol("w"), sp.Symbol("v")
    with pytest.raises(ValueError, match=r"^elementwise 'f': the expression uses symbols \['v', 'w'\] that are "
                                         r"not its arguments$"):
        sg.elementwise(lambda z: z * w + v, name="f")


def test_user_elementwise_called_with_the_wrong_number_of_inputs():
    f = sg.elementwise(lambda a, b: a * b, name="mul2")
    x = sg.placeholder("x", (3,))
    with pytest.raises(TypeError, match=r"^elementwise 'mul2' takes 2 input\(s\), got 1$"):
        f(x)


class _Quiet(sp.Function):
    """Its printer fails with an exception without a message."""

    def _numpycode(self, printer):
        raise RuntimeError()


class _Loud(sp.Function):
    """Printed as sin; its derivative is _Quiet."""

    def _numpycode(self, printer):
        return f"np.sin({printer._print(self.args[0])})"

    def fdiff(self, argindex=1):
        return _Quiet(self.args[0])


def test_unprintable_derivative_message_names_the_first_line_of_the_printer_error():
    with pytest.raises(ValueError) as e:
        sg.elementwise(sp.gamma, name="nodiff")
    assert str(e.value) == ("elementwise 'nodiff': its derivative with respect to argument 0, x1*polygamma(0, x0), "
                            "has no NumPy form (Unsupported by <class 'codegen.backends.scalar.ScalarPrinter'>: "
                            "polygamma)")
    with pytest.raises(ValueError) as e:  # no message: the exception's type instead
        sg.elementwise(lambda z: _Loud(z), name="quiet")
    assert str(e.value) == ("elementwise 'quiet': its derivative with respect to argument 0, _Quiet(x0), has no "
                            "NumPy form (RuntimeError)")


# -- leaky_relu, prelu, elu, selu ---------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_leaky_relu_value_and_derivative_also_at_zero(alpha):
    a = np.array([-2.0, 0.0, 3.0])
    x = sg.placeholder("x", (3,))
    y = sg.leaky_relu(x, alpha)
    value, grad = codegen.evaluate([y, sg.grad(y.sum(), x)], {x: a})
    np.testing.assert_allclose(value, [-2.0 * alpha, 0.0, 3.0], rtol=1e-15)
    np.testing.assert_allclose(grad, [alpha, alpha, 1.0], rtol=1e-15)  # alpha at 0, as PyTorch


def test_prelu_values_and_derivatives():
    xv = np.array([-2.0, 0.0, 3.0, -1.0])
    sv = np.array([0.25, 0.5, 0.5, -0.5])  # a negative slope: y > 0 at x < 0, the x-derivative reads x
    x, s = sg.placeholder("x", (4,)), sg.placeholder("s", (4,))
    y = sg.prelu(x, s)
    assert y.op.name == "prelu" and y.op is S._PRELU
    assert sg.dprint(y).splitlines()[-1] == "%t1 = prelu(%x, %s)  (4,) float64"
    value, gx, gs = codegen.evaluate([y, *sg.grad(y.sum(), [x, s])], {x: xv, s: sv})
    np.testing.assert_allclose(value, [-0.5, 0.0, 3.0, 0.5], rtol=1e-15)
    np.testing.assert_allclose(gx, [0.25, 0.5, 1.0, -0.5], rtol=1e-15)
    np.testing.assert_allclose(gs, [-2.0, 0.0, 0.0, -1.0], rtol=1e-15)


def test_prelu_slope_broadcasts_and_accepts_a_number():
    x = sg.placeholder("x", (2, 3))
    y = sg.prelu(x, 0.5)
    np.testing.assert_allclose(codegen.evaluate(y, {x: np.array([[-2.0, 1.0, 0.0], [4.0, -4.0, 2.0]])}),
                               [[-1.0, 1.0, 0.0], [4.0, -2.0, 2.0]])


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2])
def test_elu_value_and_derivative_also_at_zero_and_far_out(alpha):
    """The derivative is alpha at 0 (PyTorch's); far out neither branch overflows (no warning)."""
    a = np.array([-1.0, 0.0, 0.5, 1000.0])
    x = sg.placeholder("x", (4,))
    y = sg.elu(x, alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = codegen.evaluate([y, sg.grad(y.sum(), x)], {x: a})
    np.testing.assert_allclose(value, [alpha * np.expm1(-1.0), 0.0, 0.5, 1000.0], rtol=1e-14)
    np.testing.assert_allclose(grad, [alpha * np.exp(-1.0), alpha, 1.0, 1.0], rtol=1e-14)
    assert sg.dprint(y).splitlines()[-1] == "%t1 = elu(%x)  (4,) float64"


def test_elu_with_alpha_one_is_exactly_its_expression():
    (s,) = S._symbols(1)
    assert S._elu_op("elu", 1.0).expr == sp.Max(s, 0) + sp.Float(1.0) * S._Expm1(sp.Min(s, 0))
    assert S._elu_op("elu", 0.5).expr == sp.Max(s, 0) + sp.Float(0.5) * S._Expm1(sp.Min(s, 0))


def test_selu_value_and_derivative():
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    a = np.array([-1.0, 0.0, 0.5, 1000.0])
    x = sg.placeholder("x", (4,))
    y = sg.selu(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = codegen.evaluate([y, sg.grad(y.sum(), x)], {x: a})
    np.testing.assert_allclose(value, scale * np.array([alpha * np.expm1(-1.0), 0.0, 0.5, 1000.0]), rtol=1e-14)
    np.testing.assert_allclose(grad, scale * np.array([alpha * np.exp(-1.0), alpha, 1.0, 1.0]), rtol=1e-14)
    assert sg.dprint(y).splitlines()[-1] == "%t1 = selu(%x)  (4,) float64"


@pytest.mark.parametrize("alpha", [True, "1", float("inf"), float("nan"), None])
def test_elu_refuses_an_alpha_that_is_not_a_finite_number(alpha):
    with pytest.raises(ValueError, match=rf"^elu: alpha must be a finite number, got {_re(repr(alpha))}$"):
        sg.elu(sg.placeholder("x", (3,)), alpha)


# -- the binary built-ins ----------------------------------------------------------------------------
BINARY_DOCS = {
    "arctan2": "arctan2(y, x): the angle of the point (x, y), as np.arctan2; derivatives x / (x**2 + y**2) and "
               "-y / (x**2 + y**2).",
    "hypot": "hypot(a, b) = sqrt(a**2 + b**2) without overflow; derivatives a / hypot and b / hypot (0 at the origin).",
    "mod": "a mod b with the sign of b (Python's and NumPy's floor mod: a - b * floor(a / b)), in floating point; "
           "derivatives 1 and -floor(a / b). Also the ``%`` operator on nodes.",
}


@pytest.mark.parametrize("name", sorted(BINARY_DOCS))
def test_binary_builtin_name_doc_op_and_dprint(name):
    build = getattr(sg, name)
    assert build.__name__ == name and build.__doc__ == BINARY_DOCS[name]
    assert build.op is getattr(S, "_" + name.upper()) and build.op.name == name
    a, b = sg.placeholder("a", (3,)), sg.placeholder("b", (3,))
    y = build(a, b)
    assert y.op is build.op and y.inputs == (a, b)
    assert sg.dprint(y).splitlines()[-1] == f"%t1 = {name}(%a, %b)  (3,) float64"


def test_binary_builtin_values_and_derivatives():
    av = np.array([3.0, 0.0, -1.5, 5.5, -0.3])
    bv = np.array([4.0, 0.0, 2.0, -2.0, 1.0])
    a, b = sg.placeholder("a", (5,)), sg.placeholder("b", (5,))
    h = sg.hypot(a, b)
    got = codegen.evaluate([h, *sg.grad(h.sum(), [a, b])], {a: av, b: bv})
    r = np.hypot(av, bv)
    np.testing.assert_allclose(got[0], r, rtol=1e-15)
    np.testing.assert_allclose(got[1], np.where(r == 0, 0, av / np.where(r == 0, 1, r)), rtol=1e-15)  # 0 at the origin
    np.testing.assert_allclose(got[2], np.where(r == 0, 0, bv / np.where(r == 0, 1, r)), rtol=1e-15)
    assert got[1][1] == 0 and got[2][1] == 0
    keep = bv != 0
    y, x = av[keep], bv[keep]
    aa, bb = sg.placeholder("a", y.shape), sg.placeholder("b", y.shape)
    m = sg.mod(aa, bb)
    got = codegen.evaluate([m, *sg.grad(m.sum(), [aa, bb])], {aa: y, bb: x})
    np.testing.assert_allclose(got[0], np.mod(y, x), rtol=1e-15)
    np.testing.assert_array_equal(got[1], 1.0)
    np.testing.assert_array_equal(got[2], -np.floor(y / x))
    yy, xx = sg.placeholder("y", y.shape), sg.placeholder("x", x.shape)
    t = sg.arctan2(yy, xx)
    got = codegen.evaluate([t, *sg.grad(t.sum(), [yy, xx])], {yy: y, xx: x})
    np.testing.assert_allclose(got[0], np.arctan2(y, x), rtol=1e-15)
    np.testing.assert_allclose(got[1], x / (x**2 + y**2), rtol=1e-15)
    np.testing.assert_allclose(got[2], -y / (x**2 + y**2), rtol=1e-15)


def test_binary_builtin_numbers_take_the_node_dtype():
    x = sg.placeholder("x", (3,), dtype="float32")
    for y in (sg.hypot(x, 3.0), sg.hypot(3.0, x), sg.arctan2(2, x), sg.mod(x, 2)):
        assert y.dtype == np.float32 and y.shape == (3,)
    np.testing.assert_allclose(codegen.evaluate(sg.hypot(3.0, 4.0), {}), 5.0)
    np.testing.assert_allclose(codegen.evaluate(sg.mod(7.5, 2), {}), 1.5)
    got = codegen.evaluate(sg.hypot(x, 4.0), {x: np.array([3.0, 0.0, -4.0], np.float32)})
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [5.0, 4.0, np.hypot(4, 4)], rtol=1e-6)
    i = sg.placeholder("i", (2,), dtype="int64")
    y = sg.mod(i, 3)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(codegen.evaluate(y, {i: np.array([7, -1])}), [1.0, 2.0])


def test_hypot_derivatives_read_the_output():
    """a / hypot(a, b): the derivative ops take the primal's output (not a recomputation)."""
    a, b = sg.placeholder("a", (3,)), sg.placeholder("b", (3,))
    h = sg.hypot(a, b)
    da = S._HYPOT.derivative(h, 0)
    assert da.op.derivative_of == ("hypot", 0, ("x0", "y")) and da.inputs == (a, h)
    assert S._HYPOT.derivative(h, 1).op.derivative_of == ("hypot", 1, ("x1", "y"))


@pytest.mark.parametrize("build, line", [
    (lambda x: sg.elu(x, 0.5), "%t3 = delu(%x, expr=Piecewise((1.0, x0 > 0), (0.5*exp(Min(0, x0)), True)))  (3,) float64"),
    (sg.selu, "%t3 = dselu(%x, expr=Piecewise((1.05070098735548, x0 > 0), (1.75809934084738*exp(Min(0, x0)), True)))"
              "  (3,) float64"),
])
def test_elu_derivative_as_printed(build, line):
    """The derivative op as dprint (and the generated code's comment) shows it: exp of min(x, 0), so the
    branch NumPy evaluates but does not select never overflows."""
    x = sg.placeholder("x", (3,))
    assert sg.dprint(sg.grad(build(x).sum(), x)).splitlines()[2] == line


def test_hypot_derivatives_as_printed_and_plus_zero_at_the_origin():
    """a / (hypot + Heaviside(-hypot, 1)): the denominator is 1 exactly where hypot is 0, so the
    derivative at the origin is +0.0 (0 / 1), with no 0 / 0 in the generated code."""
    a, b = sg.placeholder("a", (3,)), sg.placeholder("b", (3,))
    h = sg.hypot(a, b)
    grads = sg.grad(h.sum(), [a, b])
    lines = sg.dprint(grads).splitlines()
    assert lines[4] == "%t3 = dhypot/d0(%a, %t1, expr=x0/(x1 + Heaviside(-x1, 1)))  (3,) float64"
    assert lines[6] == "%t4 = dhypot/d1(%b, %t1, expr=x0/(x1 + Heaviside(-x1, 1)))  (3,) float64"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ga, gb = codegen.evaluate(grads, {a: np.array([0.0, 3.0, -1e-300]), b: np.array([0.0, 4.0, 0.0])})
    np.testing.assert_array_equal(ga, [0.0, 0.6, -1.0])
    np.testing.assert_array_equal(gb, [0.0, 0.8, 0.0])
    assert not np.signbit(ga[0]) and not np.signbit(gb[0])


# -- user functions SymPy differentiates only almost everywhere (_diff) --------------------------------
class _NoDerivative(sp.Function):
    """A function NumPy can print (as sin) but SymPy cannot differentiate."""

    def _numpycode(self, printer):
        return f"np.sin({printer._print(self.args[0])})"


def test_an_underivable_user_function_is_refused_with_the_whole_message():
    with pytest.raises(ValueError) as e:
        sg.elementwise(lambda z: 2 * _NoDerivative(z), name="nodiff")
    assert str(e.value) == (
        "elementwise 'nodiff': SymPy cannot differentiate 2*_NoDerivative(x0) with respect to x0; it leaves "
        "Derivative(_NoDerivative(x0), x0) unevaluated, which has no NumPy form. Give the function a form SymPy "
        "differentiates (Piecewise, Heaviside, floor, Mod and Abs do), or wrap the argument in sg.stop_gradient if "
        "it needs no gradient")


def test_user_piecewise_constant_mod_and_frac_functions_differentiate_almost_everywhere():
    """floor, ceiling, sign, Heaviside: derivative 0 (no Dirac delta, no unevaluated Derivative);
    Mod(a, b) = a - b * floor(a / b): derivatives 1 and -floor(a / b); frac(a) = a - floor(a): 1."""
    av, bv = np.array([5.5, -0.3, 2.25, 7.0, -7.5]), np.array([2.0, 1.0, -2.0, 4.0, 2.0])
    a, b = sg.placeholder("a", (5,)), sg.placeholder("b", (5,))
    steps = [sg.elementwise(f, name=f"u{k}")(a) for k, f in enumerate(
        (lambda z: sp.floor(z) * z, lambda z: sp.ceiling(3 * z), lambda z: sp.sign(z) + z**2,
         lambda z: sp.Heaviside(z - 1) * 2))]
    umod = sg.elementwise(lambda p, q: sp.Mod(p, q) * 3, name="umod")(a, b)
    ufrac = sg.elementwise(lambda z: sp.frac(z) * z, name="ufrac")(a)
    outs = [sg.grad(s.sum(), a) for s in steps] + sg.grad(umod.sum(), [a, b]) + [sg.grad(ufrac.sum(), a), umod, ufrac]
    got = codegen.evaluate(outs, {a: av, b: bv})
    np.testing.assert_array_equal(got[0], np.floor(av))
    np.testing.assert_array_equal(got[1], np.zeros(5))
    np.testing.assert_array_equal(got[2], 2 * av)
    np.testing.assert_array_equal(got[3], np.zeros(5))
    np.testing.assert_array_equal(got[4], np.full(5, 3.0))
    np.testing.assert_array_equal(got[5], -3 * np.floor(av / bv))
    frac = av - np.floor(av)
    np.testing.assert_allclose(got[6], frac + av, rtol=1e-15)  # d/dz frac(z) * z = frac(z) + z
    np.testing.assert_allclose(got[7], 3 * np.mod(av, bv), rtol=1e-15)
    np.testing.assert_allclose(got[8], frac * av, rtol=1e-15)


def test_derivative_formulas_in_the_primal_variables():
    """What traces show for a derivative node: x for a unary op's input, x0, x1 for several, y the output."""
    from symgraph.trace import derivative_formula

    x, y = sg.placeholder("x", (3,)), sg.placeholder("y", (3,))
    sin, tanh, h = sg.sin(x), sg.tanh(x), sg.hypot(x, y)
    assert derivative_formula(sin.op.derivative(sin, 0)) == "sin'(x) = cos(x)"
    assert derivative_formula(tanh.op.derivative(tanh, 0)) == "tanh'(y) = 1 - y²"
    assert derivative_formula(h.op.derivative(h, 1)) == "hypot'_1(x1, y) = x1/(y + Heaviside(-y, 1))"
    f = sg.elementwise(lambda a, b: a * sp.sin(b), name="f")(x, y)
    assert derivative_formula(f.op.derivative(f, 1)) == "f'_1(x0, x1) = x0·cos(x1)"


def test_operands_that_do_not_broadcast_are_refused_with_the_whole_message():
    x, y = sg.placeholder("x", (3,)), sg.placeholder("y", (2, 4))
    with pytest.raises(sg.ShapeError, match=r"^hypot: operands cannot be broadcast together \(3 vs 4\) "
                                            r"\(operand shapes \(3,\), \(2, 4\)\)" + HERE):
        sg.hypot(x, y)


def test_a_user_function_of_no_inputs_is_a_float64_scalar():
    c = sg.elementwise(lambda: sp.pi, name="pi")()
    assert (c.shape, c.dtype) == ((), np.float64)
    assert codegen.evaluate(c, {}) == np.pi


def test_an_elementwise_op_applied_to_integers_directly_is_float_and_has_no_integer_gradient():
    """The builders convert integers first; the op's own rules, applied to an integer node, still
    infer a float result and give no cotangent to the integer operand."""
    from symgraph.graph import apply

    i, x = sg.placeholder("i", (3,), dtype="int32"), sg.placeholder("x", (3,), dtype="float32")
    n = apply(S._HYPOT, x, i)
    assert n.dtype == np.float64 and apply(sg.exp.op, i).dtype == np.float64
    assert apply(sg.exp.op, x).dtype == np.float32
    cot = sg.placeholder("c", (3,))
    gx, gi = S._HYPOT.vjp(n, cot)
    assert gi is None and gx is not None
    np.testing.assert_allclose(codegen.evaluate(gx, {x: np.array([3.0, 0.0, 1.0], np.float32), i: np.array([4, 0, 0], np.int32),
                                                     cot: np.ones(3)}), [0.6, 0.0, 1.0], rtol=1e-6)


def test_a_primal_elementwise_node_is_not_a_derivative():
    from symgraph.trace import derivative_formula, derivative_text

    x = sg.placeholder("x", (3,))
    for node in (sg.sin(x), sg.elementwise(lambda z: z**3, name="cube")(x)):
        assert node.op.derivative_of is None
        assert derivative_text(node) is None and derivative_formula(node) is None


def test_a_constant_derivative_has_the_node_dtype():
    """mod's derivative in a is the number 1: a constant of the node's dtype (float32 here)."""
    a, b = sg.placeholder("a", (3,), dtype="float32"), sg.placeholder("b", (3,), dtype="float32")
    m = sg.mod(a, b)
    d = m.op.derivative(m, 0)
    assert (d.shape, d.dtype) == ((), np.float32) and float(d.op.value) == 1.0
    lr = sg.leaky_relu(sg.placeholder("x", (2,), dtype="float32"), 0.0)
    assert lr.op.derivative(lr, 0).dtype == np.float32  # 0 + 1 * H0(y): reads y
