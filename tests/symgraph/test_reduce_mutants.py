"""reduce.py's mutation run (tests/MUTANTS.md): what the value tables of test_ops left open. The builders'
and ops' messages in full; dtypes (float32 kept, integers and booleans widened) of var, prod, count and
logaddexp, also from each op's own ``compute``; var over no axis; std's derivative at zero spread and
how dprint shows it; the second derivatives of prod at zeros; argmin/argmax's keepdims; logaddexp's jvp
along one operand; flop counts over named sizes."""

from __future__ import annotations

import re

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph.errors import DTypeError, ShapeError
from symgraph.graph import apply
from symgraph.ops.reduce import ArgMax, ArgMin, Count, LogAddExp, LogSumExp, Prod, Softmax, _std_sqrt

P = sg.placeholder
HERE = r" at \S*test_reduce_mutants\.py:\d+$"  # an op's message ends with the user's line


# -- messages, in full ------------------------------------------------------------------------------
ERRORS = [
    (lambda: sg.log_softmax(P("x", (2, 3)), axis=2), ShapeError,
     "log_softmax: axis 2 is out of range for an array of 2 dimension\\(s\\)" + HERE),
    (lambda: sg.var(P("x", (2, 3)), axis=-3), ShapeError,
     "var: axis -3 is out of range for an array of 2 dimension\\(s\\)" + HERE),
    (lambda: sg.std(P("x", (2, 3)), axis=2), ShapeError,
     "var: axis 2 is out of range for an array of 2 dimension\\(s\\)" + HERE),
    (lambda: sg.argmax(P("x", (2, 3)), axis=2), ShapeError,
     "argmax: axis 2 is out of range for an array of 2 dimension\\(s\\)" + HERE),
    (lambda: sg.argmin(P("x", (2, 3)), axis=-3), ShapeError,
     "argmin: axis -3 is out of range for an array of 2 dimension\\(s\\)" + HERE),
    (lambda: sg.maxout(P("x", (2, 4)), True), ValueError, r"maxout: pieces must be a positive int, got True$"),
    (lambda: sg.maxout(P("x", (2, 4)), 2.0), ValueError, r"maxout: pieces must be a positive int, got 2\.0$"),
    (lambda: sg.maxout(P("x", ()), 2), ValueError,
     r"maxout: the last axis must be a static multiple of pieces=2, got shape \(\)$"),
    (lambda: sg.var(P("x", (3,)), ddof=True), ValueError, r"var: ddof must be a non-negative number, got True$"),
    (lambda: sg.var(P("x", (3,)), ddof="1"), ValueError, r"var: ddof must be a non-negative number, got '1'$"),
    (lambda: sg.logaddexp(P("a", (2, 3)), P("b", (4,))), ShapeError,
     r"logaddexp: operands cannot be broadcast together \(3 vs 4\) \(operand shapes \(2, 3\), \(4,\)\)" + HERE),
    (lambda: sg.logaddexp(P("a", (2,), dtype="bool"), P("b", (2,), dtype="bool")), DTypeError,
     re.escape("logaddexp: arithmetic on booleans is not defined; convert with .astype(...) first "
               "(operand dtypes bool, bool)") + HERE),
]


@pytest.mark.parametrize("build, error, message", ERRORS, ids=range(len(ERRORS)))
def test_messages_in_full(build, error, message):
    with pytest.raises(error, match=message) as info:
        build()
    assert type(info.value) is error


# -- dtypes ---------------------------------------------------------------------------------------------
X = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -2.0]])


def test_var_and_std_keep_float32_and_widen_integers_and_booleans():
    for dtype, want in (("float32", np.float32), ("int16", np.float64), ("bool", np.float64)):
        x = P("x", (2, 3), dtype=dtype)
        value = (X > 0) if dtype == "bool" else X * 4 if dtype == "int16" else X
        value = value.astype(dtype)
        for ddof in (0, 1):
            v, s = sg.var(x, axis=1, ddof=ddof), sg.std(x, axis=0, ddof=ddof)
            assert v.dtype == want and s.dtype == want, (dtype, ddof, v.dtype, s.dtype)
            got_v, got_s = codegen.evaluate([v, s], {x: value})
            exact = value.astype(np.float64)
            np.testing.assert_allclose(got_v, np.var(exact, axis=1, ddof=ddof), rtol=1e-6)
            np.testing.assert_allclose(got_s, np.std(exact, axis=0, ddof=ddof), rtol=1e-6)


def test_var_over_no_axis_is_zero():
    x0, x = P("x0", ()), P("x", (2, 3))
    outputs = [sg.var(x0), sg.var(x0, ddof=0), sg.var(x, axis=()), sg.std(x0)]
    got = codegen.evaluate(outputs, {x0: np.array(2.5), x: X})
    assert [np.shape(g) for g in got] == [(), (), (2, 3), ()]
    for g in got:
        np.testing.assert_array_equal(g, 0.0)
    # over no axis nothing is averaged: the graph is (x - x)**2 with no mean in it
    assert "mean" not in sg.dprint(sg.var(x0)) and "mean" not in sg.dprint(sg.var(x, axis=()))


def test_count_computes_in_the_dtype_it_infers():
    for dtype, want in ((np.float32, np.float32), (np.float64, np.float64), (np.int32, np.float64)):
        got = Count((-1, -3)).compute(np.zeros((2, 3, 5), dtype=dtype))
        assert got.dtype == want and got.shape == () and got == 10, (dtype, got, got.dtype)


def test_prod_computes_in_the_dtype_of_x():
    for dtype in (np.int8, np.int32, np.uint16, np.float16, np.float32):
        a = np.array([[1, 2, 3], [2, 2, 2]], dtype=dtype)
        got = Prod((-1,), False).compute(a)
        assert got.dtype == dtype, (dtype, got.dtype)
        np.testing.assert_array_equal(got, [6, 8])


def test_logaddexp_dtypes():
    f32, f64 = P("a", (2,), dtype="float32"), P("b", (2,), dtype="float64")
    assert sg.logaddexp(f64, f32).dtype == np.float64 and sg.logaddexp(f32, f64).dtype == np.float64
    assert sg.logaddexp(f32, f32).dtype == np.float32
    assert sg.logaddexp(P("i", (2,), dtype="int8"), P("j", (2,), dtype="int8")).dtype == np.float64
    a, b = np.array([0.0, 1.0]), np.array([1.0, -2.0])
    for x, y, want in ((a.astype(np.float32), b.astype(np.float32), np.float32),
                       (a, b.astype(np.float32), np.float64), (a.astype(np.float32), b, np.float64),
                       (a.astype(np.int8), b.astype(np.int8), np.float64),  # NumPy's own loop would give float16
                       (a.astype(np.int64), b.astype(np.int64), np.float64)):
        got = LogAddExp().compute(x, y)
        assert got.dtype == want, (x.dtype, y.dtype, got.dtype)
        np.testing.assert_allclose(got, np.logaddexp(a, b), rtol=1e-6)
        assert LogAddExp.infer_dtype(x, y) == want


# -- std: its derivative at zero spread, and how it prints ---------------------------------------------
def test_std_sqrt_derivative_is_zero_at_zero_and_exact_elsewhere():
    v = P("v", (3,))
    (g,) = sg.grad(sg.sum(_std_sqrt(v)), [v])
    with np.errstate(divide="ignore"):  # np.where(v > 0, 0.5 / sqrt(v), 0) divides by 0 where it then takes 0
        got = codegen.evaluate(g, {v: np.array([0.0, 4.0, 0.25])})
    np.testing.assert_array_equal(got, [0.0, 0.25, 1.0])
    x = P("x", (3,))
    (gx,) = sg.grad(sg.std(x), [x])
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(codegen.evaluate(gx, {x: np.full(3, 2.0)}), [0.0, 0.0, 0.0])


def test_std_prints_as_a_builtin_function():
    x = P("x", (3,))
    assert sg.dprint(sg.std(x)).splitlines()[-1] == "%t5 = std_sqrt(%t4)  () float64"


# -- prod: second derivatives at zeros ------------------------------------------------------------------
def _prod_hessian_exact(x):
    n = len(x)
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                H[i, j] = np.prod([x[k] for k in range(n) if k not in (i, j)])
    return H


@pytest.mark.parametrize("value", [[2.0, 0.0, 3.0, 5.0], [2.0, 0.0, 3.0, 0.0], [0.0, 0.0, 3.0, 0.0],
                                   [2.0, -1.0, 3.0, 0.5]])
def test_prod_hessian_is_exact_at_zeros(value):
    x = P("x", (4,))
    H = codegen.evaluate(sg.hessian(sg.prod(x), x), {x: np.array(value)})
    np.testing.assert_allclose(H, _prod_hessian_exact(value), rtol=1e-12, atol=0)


# -- argmax / argmin --------------------------------------------------------------------------------------
def test_argmax_keepdims_is_false_unless_asked():
    x = P("x", (2, 3))
    assert apply(ArgMax(-1), x).shape == (2,) and apply(ArgMin(-2), x).shape == (3,)
    assert apply(ArgMax(-1, True), x).shape == (2, 1)


def test_argmin_compute_keeps_dims_when_asked():
    for cls, fn in ((ArgMin, np.argmin), (ArgMax, np.argmax)):
        got = cls(-1, True).compute(X)
        assert got.shape == (2, 1) and got.dtype == np.int64
        np.testing.assert_array_equal(got, fn(X, axis=-1, keepdims=True))
        np.testing.assert_array_equal(cls(-2, False).compute(X), fn(X, axis=0))


# -- logaddexp's jvp along one operand -------------------------------------------------------------------
def test_logaddexp_jvp_along_either_operand_alone():
    a, b = P("a", (2,)), P("b", (2,))
    out = sg.logaddexp(a, b)
    av, bv, t = np.array([0.5, -1.0]), np.array([2.0, 0.0]), np.array([1.5, -2.0])
    (ja,) = sg.jvp([out], [a], [sg.constant(t)])
    (jb,) = sg.jvp([out], [b], [sg.constant(t)])
    got_a, got_b = codegen.evaluate([ja, jb], {a: av, b: bv})
    np.testing.assert_allclose(got_a, t / (1 + np.exp(bv - av)), rtol=1e-12)
    np.testing.assert_allclose(got_b, t / (1 + np.exp(av - bv)), rtol=1e-12)


# -- flops over named sizes --------------------------------------------------------------------------------
def test_flops_count_named_sizes():
    x, y = P("x", ("n", 3)), P("y", ("n", 3))
    sizes = {"n": 7}
    cases = [
        (sg.logsumexp(x, axis=1), 4 * 21),
        (apply(LogSumExp((-1,), True), x), 4 * 21),
        (sg.softmax(x), 4 * 21),
        (sg.log_softmax(x, axis=0), 4 * 21),
        (apply(Softmax(-2), x), 4 * 21),
        (sg.prod(x, axis=1), 21),
        (sg.argmax(x, axis=0), 21),
        (sg.argmin(x), 21),
        (sg.logaddexp(x, y), 4 * 21),
        (sg.logaddexp(x, P("z", (3,))), 4 * 21),
    ]
    for node, expected in cases:
        got = node.op.flops(node, sizes)
        assert got == expected and isinstance(got, int), (node, got, expected)
