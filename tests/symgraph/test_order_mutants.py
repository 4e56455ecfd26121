"""order.py's mutation run (tests/MUTANTS.md): what test_ops left open. Each builder's messages in
full, diff's order checks (0 allowed, floats and bools refused), the reverse running sum computed by
op.compute, the second derivative of cumprod where x has two zeros (its vjp's terms that are 0 in
value but not in derivative), argsort's FLOP estimate along an axis longer than 2, and
PermuteAlong's checks of the permutation it is given."""

from __future__ import annotations

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph.graph import apply, topo_sort
from symgraph.ops import ArgSort, CumSum, PermuteAlong

P = sg.placeholder
RNG = np.random.default_rng(16)
HERE = r" at \S*test_order_mutants\.py:\d+$"  # an op's message ends with the user's line


@pytest.mark.parametrize("build", [sg.cumsum, sg.cumprod, sg.argsort, sg.sort, sg.diff],
                         ids=["cumsum", "cumprod", "argsort", "sort", "diff"])
def test_each_builder_names_itself_for_a_bad_axis(build):
    name = build.__name__
    x = P("x", (3, 4))
    with pytest.raises(sg.ShapeError, match=rf"^{name}: axis 2 is out of range for an array of 2 dimension\(s\)" + HERE):
        build(x, axis=2)
    with pytest.raises(TypeError, match=rf"^{name}: axis must be an int or None, got 1\.5$"):
        build(x, axis=1.5)


def test_a_1d_array_is_not_reshaped_when_axis_is_none():
    x = P("x", (5,))
    for build in (sg.cumsum, sg.cumprod, sg.argsort):
        assert build(x, axis=None).inputs == (x,)  # flattening a 1-D array adds no node


def test_cumsum_of_booleans_is_refused_naming_cumsum():
    with pytest.raises(sg.DTypeError, match=r"^cumsum: cannot accumulate booleans; convert with \.astype\(\.\.\.\) "
                                            r"first \(operand dtypes bool\)" + HERE):
        sg.cumsum(P("b", (3,), dtype="bool"))


def test_the_reverse_running_sum_through_op_compute(interpret):
    x = P("x", (3, 4))
    xv = RNG.normal(size=(3, 4))
    for axis in (-1, -2):
        (got,) = interpret([apply(CumSum(axis, True), x)], {x: xv})
        np.testing.assert_allclose(got, np.flip(np.cumsum(np.flip(xv, axis), axis=axis), axis), rtol=1e-14)
    # the gradient of cumsum is that reverse running sum
    w = RNG.normal(size=(3, 4))
    (g,) = sg.grad(sg.sum(sg.cumsum(x, axis=1) * w), [x])
    (got,) = interpret([g], {x: xv})
    np.testing.assert_allclose(got, np.flip(np.cumsum(np.flip(w, 1), axis=1), 1), rtol=1e-14)


def _cumprod_hessian(xv, w):
    """d2/dx_a dx_b of sum_k w_k prod_{i<=k} x_i, by the product rule (no division: exact at zeros)."""
    n = len(xv)
    h = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if a != b:
                h[a, b] = sum(w[k] * np.prod([xv[i] for i in range(k + 1) if i not in (a, b)])
                              for k in range(max(a, b), n))
    return h


@pytest.mark.parametrize("xv", [
    np.array([1.5, 0.0, -2.0, 0.0, 0.5, 3.0]),   # two zeros
    np.array([0.0, 2.0, 0.0, 0.0, -1.5, 1.25]),  # three zeros, the first at the start
    np.array([1.5, -0.5, 2.0, 0.0, 0.5, 3.0]),   # one zero
], ids=["two_zeros", "three_zeros", "one_zero"])
def test_cumprod_second_derivative_is_exact_at_zeros(xv):
    w = np.array([0.3, -1.1, 0.7, 1.9, -0.4, 0.8])
    x = P("x", (6,))
    cost = sg.sum(sg.cumprod(x) * w)
    (h,) = codegen.evaluate([sg.hessian(cost, x)], {x: xv})
    np.testing.assert_allclose(h, _cumprod_hessian(xv, w), rtol=1e-12, atol=1e-12)
    # and reverse over reverse: the gradient of <grad, v>
    v = np.array([0.9, -0.2, 1.3, 0.6, -0.8, 0.4])
    (g,) = sg.grad(cost, [x])
    (hv,) = sg.grad(sg.sum(g * v), [x])
    (got,) = codegen.evaluate([hv], {x: xv})
    np.testing.assert_allclose(got, _cumprod_hessian(xv, w) @ v, rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(got))


def test_argsort_flops_grow_with_the_log_of_the_axis():
    x = P("x", (2, 8))
    for axis, length in ((-1, 8), (0, 2)):
        node = sg.argsort(x, axis=axis)
        expected = 16 * max(1, int(np.ceil(np.log2(length))))
        assert node.op.flops(node, {}) == expected
    y = P("y", (3, 5))
    node = sg.argsort(y)
    assert node.op.flops(node, {}) == 15 * 3
    z = P("z", (4, "n"))
    node = sg.argsort(z)
    assert node.op.flops(node, {"n": 6}) == 24  # a named length: no log factor
    node = apply(ArgSort(-1), P("s", ()))  # a 0-d x (only applied directly): one entry, no axis to read
    assert node.op.flops(node, {}) == 1


def test_cumulative_flops_count_named_sizes():
    x = P("x", ("n", 4))
    for build in (sg.cumsum, sg.cumprod):
        node = build(x, axis=1)
        assert node.op.flops(node, {"n": 3}) == 12


def test_permute_along_checks_its_permutation():
    x = P("x", (3, 4))
    with pytest.raises(sg.DTypeError, match=r"^permute_along: the permutation must be integers \(operand dtypes "
                                            r"float64, float64\)" + HERE):
        apply(PermuteAlong(-1), x, P("p", (3, 4)))
    with pytest.raises(sg.ShapeError, match=r"^permute_along: the permutation must have the shape of x's last axes "
                                            r"\(operand shapes \(3, 4\), \(3, 5\)\)" + HERE):
        apply(PermuteAlong(-1), x, P("q", (3, 5), dtype="int64"))
    with pytest.raises(sg.ShapeError, match=r"^permute_along: the permutation must have the shape of x's last axes"):
        apply(PermuteAlong(-1), x, P("r", (2, 4), dtype="int64"))
    with pytest.raises(sg.ShapeError, match=r"^permute_along: the permutation must have the shape of x's last axes"):
        apply(PermuteAlong(-1), P("s", (4,)), P("t", (3, 4), dtype="int64"))
    # a batch of leading axes on x is fine; perm broadcasts over it
    perm = apply(ArgSort(-1), P("u", (3, 4)))
    assert apply(PermuteAlong(-1), P("v", (2, 3, 4)), perm).shape == (2, 3, 4)


@pytest.mark.parametrize("n", [1.5, True, -1, np.float64(2.0)])
def test_diff_refuses_an_order_that_is_not_a_non_negative_int(n):
    with pytest.raises(ValueError, match=rf"^diff: order must be a non-negative int, got {n!r}$".replace("(", r"\(")
                       .replace(")", r"\)")):
        sg.diff(P("x", (3, 4)), n)


def test_diff_of_order_zero_is_x():
    x = P("x", (3, 4))
    assert sg.diff(x, 0) is x
    xv = RNG.normal(size=(3, 4))
    np.testing.assert_array_equal(codegen.evaluate([sg.diff(x, 0) * 1.0], {x: xv})[0], np.diff(xv, 0))
    np.testing.assert_array_equal(codegen.evaluate([sg.diff(x, 2, axis=0)], {x: xv})[0], np.diff(xv, 2, axis=0))


def test_diff_of_a_scalar_is_refused():
    with pytest.raises(ValueError, match=r"^diff: needs an array of at least one dimension$"):
        sg.diff(P("s", ()))


@pytest.mark.parametrize("x", [[1.5, -2.0, 0.5, 3.0, 0.7], [1.5, 0.0, 0.5, 3.0, 0.7],
                               [1.5, 0.0, 0.5, 0.0, 0.7], [0.0, 2.0, 0.0, 0.0, 0.7]])
def test_cumprod_reverse_over_forward_is_exact_at_zeros(x):
    """The gradient of cumprod's jvp (reverse over forward: H t) at one, two and three zeros; the jvp's own
    derivative took t / 1 at a zero, so H t was off at the zeros' neighbours."""
    x, w, t = np.array(x), np.array([0.3, -1.2, 0.8, 2.0, -0.5]), np.array([0.4, 1.1, -0.7, 0.25, 0.9])
    xs, ts = sg.placeholder("x", (5,)), sg.placeholder("t", (5,))
    (tangent,) = sg.jvp([sg.sum(sg.cumprod(xs) * w)], [xs], [ts])
    (ht,) = sg.grad(tangent, [xs])
    np.testing.assert_allclose(codegen.evaluate(ht, {xs: x, ts: t}), _cumprod_hessian(x, w) @ t, atol=1e-12)
