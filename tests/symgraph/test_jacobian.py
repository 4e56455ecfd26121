"""Jacobians, Hessians, Hessian-vector products and the forward/reverse cost model.

- ``sg.jacobian`` in forward and in reverse mode, compiled, equal each other
  and central finite differences of the compiled function (float64), for a
  table of functions (vector, scalar, matrix inputs and outputs; reductions,
  shape ops, broadcasting, cross-entropy with integer labels, a function that
  does not depend on ``wrt``). The result's shape is ``output.shape + wrt.shape``.
- ``sg.explain_mode``: the report's fields, its printable form, the choice of
  ``mode="auto"`` and the matrix-chain plan, checked against a brute force
  over all bracketings written here, independently of the implementation.
- One sweep per Jacobian: the graph has the same number of nodes for 10 and
  for 1000 inputs (forward, reverse, auto, Hessian).
- ``sg.hessian`` / ``sg.hvp`` against finite differences of the compiled
  gradient, and the course's linear-regression toy whose Hessian is exact.
- Errors: unknown mode, non-static shapes, integer ``wrt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import sympy

import codegen
import symgraph as sg

EPS = 1e-6  # central finite-difference step (float64)
FD_RTOL, FD_ATOL = 1e-6, 1e-8
MODE_RTOL, MODE_ATOL = 1e-11, 1e-12  # forward vs reverse: same math, different summation order


# -- helpers --------------------------------------------------------------------------
def fd_jacobian(f: Callable, x0: np.ndarray, out_shape: tuple) -> np.ndarray:
    """Central differences of ``f`` at ``x0``, shape ``out_shape + x0.shape``."""
    x0 = np.asarray(x0, dtype=np.float64)
    J = np.zeros(tuple(out_shape) + x0.shape)
    for idx in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[idx] += EPS
        xm[idx] -= EPS
        J[(Ellipsis,) + idx] = (np.asarray(f(xp)) - np.asarray(f(xm))) / (2 * EPS)
    return J


def node_count(nodes) -> int:
    return sum(sg.count_ops(nodes).values())


# -- the table of functions -------------------------------------------------------------
def normal(rng, shape):
    return rng.normal(size=shape)


def away_from_zero(rng, shape):
    """|x| in [0.2, 1.5]: away from the kinks of where(x > 0, ...) and maximum(x, 0)."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.5, size=shape)


def distinct(rng, shape):
    """Well-separated values (a shuffled grid plus a little noise): max never ties."""
    n = int(np.prod(shape))
    grid = np.linspace(-1.5, 1.5, n) + rng.uniform(-0.02, 0.02, size=n)
    return rng.permutation(grid).reshape(shape)


def C(seed, shape, scale=1.0):
    """A fixed random constant (deterministic per seed)."""
    return sg.constant(scale * np.random.default_rng(seed).normal(size=shape))


@dataclass
class Case:
    id: str
    wrt_shape: tuple
    build: Callable  # x -> output node
    out_shape: tuple
    sample: Callable = normal
    bugs: dict = field(default_factory=dict)  # mode -> the xfail mark of a known bug in that mode


def xfail(reason):
    return pytest.mark.xfail(strict=True, reason=reason)




def _case(id, wrt_shape, build, out_shape, sample=normal, bugs=None):
    return Case(id, wrt_shape, build, out_shape, sample, bugs or {})


def _misc_elementwise(x):
    softsign = sg.elementwise(lambda z: z / (1 + sympy.Abs(z)), name="softsign")
    return (sg.sqrt(1.0 + x * x) + sg.log(2.0 + sg.cos(x)) + sg.softplus(x) + sg.abs(x) + sg.relu(x)
            + sg.leaky_relu(x, 0.2) + sg.hard_tanh(1.5 * x) + sg.square(x) + x**3 + 2.0**x + softsign(x)
            + sg.minimum(x, -0.1) + 1.0 / (3.0 + x) - x / (2.5 - x))


CASES = [
    # R^5 -> R^3 and R^3 -> R^5: matmul with tanh/sigmoid/exp/sin, vector on either side of @
    _case("mlp_5_to_3", (5,), lambda x: sg.sigmoid(C(1, (3, 4)) @ sg.tanh(C(2, (4, 5)) @ x))
          + 0.3 * sg.exp(sg.sin(x) @ C(3, (5, 3), 0.5)), (3,)),
    _case("mlp_3_to_5", (3,), lambda x: sg.tanh(sg.sin(x @ C(4, (3, 7))) @ C(5, (7, 5)))
          * sg.exp(0.2 * (x @ C(6, (3, 5)))), (5,)),
    _case("scalar_output", (4,), lambda x: sg.sum(sg.exp(0.5 * sg.sin(x)) * C(7, (4,))) + sg.tanh(x @ C(8, (4,))),
          ()),
    _case("scalar_input", (), lambda x: sg.sin(x * C(9, (3,))) + sg.exp(0.3 * x) * C(10, (3,)) + x * x, (3,)),
    _case("scalar_to_scalar", (), lambda x: sg.tanh(x) * sg.sin(3.0 * x) + sg.sigmoid(x * x), ()),
    _case("matrix_in_matrix_out", (3, 2), lambda X: sg.tanh(X.T @ C(11, (3, 3))) + sg.sigmoid(X.T * C(12, (2, 3))),
          (2, 3)),
    _case("matrix_in_vector_out", (3, 2), lambda X: sg.sin(X @ C(13, (2,))) + sg.sum(X * X, axis=1), (3,)),
    _case("vector_in_matrix_out", (4,), lambda x: sg.exp(0.3 * sg.reshape(x @ C(14, (4, 6)), (2, 3))), (2, 3)),
    _case("batched_matmul_wrt_batch", (2, 3, 4), lambda X: sg.tanh(X @ C(25, (4, 2))), (2, 3, 2)),
    _case("batched_matmul_wrt_weights", (4, 2), lambda W: sg.tanh(C(26, (2, 3, 4)) @ W), (2, 3, 2)),
    _case("identity_matrix", (3, 2), lambda X: X, (3, 2)),
    _case("linear_transpose", (3, 2), lambda X: 2.0 * X.T - 1.0, (2, 3)),
    _case("fan_out", (4,), lambda x: x * sg.sin(x) + (x @ C(15, (4, 4))) * x + sg.sum(x) * x, (4,)),
    _case("misc_elementwise", (5,), _misc_elementwise, (5,), away_from_zero),
    # reductions
    _case("sum_mean_axes", (3, 4), lambda X: sg.sum(sg.tanh(X), axis=0) * sg.mean(X * X, axis=1, keepdims=True)
          + sg.mean(sg.exp(0.2 * X)) + sg.sum(X), (3, 4)),
    _case("max", (3, 4), lambda X: sg.max(X, axis=1, keepdims=True) * sg.max(X, axis=0) + sg.max(sg.sin(X)), (3, 4),
          distinct),
    _case("max_keepdims", (3, 4), lambda X: X - sg.max(X, axis=-1, keepdims=True), (3, 4), distinct),
    _case("softmax_last", (3, 4), lambda X: sg.softmax(X), (3, 4)),
    _case("softmax_axis0", (3, 4), lambda X: sg.softmax(X * C(16, (3, 4)), axis=0), (3, 4)),
    _case("log_softmax", (2, 3), lambda X: sg.log_softmax(X, axis=-1), (2, 3)),
    _case("logsumexp", (3, 4), lambda X: sg.logsumexp(X, axis=1, keepdims=True) * sg.logsumexp(X, axis=0)
          + sg.logsumexp(2.0 * X), (3, 4)),
    # shape ops
    _case("reshape_transpose", (2, 6), lambda X: sg.transpose(sg.reshape(sg.sin(X), (3, 4))) * C(17, (4, 3)),
          (4, 3)),
    _case("transpose_axes", (2, 3, 2), lambda X: sg.tanh(sg.transpose(X, (2, 0, 1))), (2, 2, 3)),
    _case("getitem", (4, 5), lambda X: X[1:3, ::2] * X[-1, 1:4] + X[2, 3] * sg.exp(X[::-2, -3:]), (2, 3)),
    _case("expand_squeeze", (3,), lambda x: sg.expand_dims(sg.sin(x), 0) * C(27, (2, 1))
          + sg.squeeze(sg.expand_dims(x * x, 1), 1), (2, 3)),
    _case("concatenate", (2, 3), lambda X: sg.concatenate([sg.tanh(X), X * X, C(18, (2, 1))], axis=1), (2, 7)),
    _case("concatenate_axis0_vector", (3,), lambda x: sg.concatenate([sg.sin(x), x[:2] * 2.0]), (5,)),
    # where / maximum (away from their kinks)
    _case("where_maximum", (2, 3), lambda X: sg.where(X > 0, sg.exp(0.5 * X), sg.sin(X))
          + sg.maximum(X, 0.1) * sg.maximum(C(19, (2, 3)), X) + sg.where(X < 0, X, 0.0), (2, 3), away_from_zero),
    _case("where_constant_cond", (4,), lambda x: sg.where(sg.constant(np.array([True, False, True, False])),
                                                          x * x, 3.0 * x), (4,)),
    # broadcasting between a (3,) and a (2, 3)
    _case("broadcast_vec_wrt", (3,), lambda x: sg.tanh(x + C(20, (2, 3))) * x, (2, 3)),
    _case("broadcast_mat_wrt", (2, 3), lambda X: sg.sin(X * C(21, (3,))) + C(22, (3,)) / (2.0 + X * X), (2, 3)),
    _case("broadcast_column", (2, 1), lambda X: sg.exp(0.3 * X) * C(23, (2, 3)) + X, (2, 3)),
    _case("broadcast_to_explicit", (3,), lambda x: sg.broadcast_to(sg.sin(x), (2, 3)), (2, 3)),
    _case("broadcast_to_of_scalar", (4,), lambda x: sg.broadcast_to(sg.sum(x * C(28, (4,))), (2, 3)), (2, 3)),
    # pick via softmax cross-entropy with integer labels (a constant)
    _case("xent_wrt_logits", (4, 3), lambda Z: sg.softmax_cross_entropy(Z, sg.constant(np.array([0, 2, 1, 2]))), ()),
    _case("xent_wrt_weights", (3, 3), lambda W: sg.softmax_cross_entropy(
        sg.tanh(C(24, (5, 3)) @ W), sg.constant(np.array([2, 0, 1, 1, 0]))), ()),
    _case("xent_none", (4, 3), lambda Z: sg.softmax_cross_entropy(Z, sg.constant(np.array([1, 1, 0, 2])),
                                                                  reduction="none"), (4,)),
    _case("xent_sum_onehot", (4, 3), lambda Z: sg.softmax_cross_entropy(
        Z, sg.one_hot(sg.constant(np.array([1, 0, 0, 2])), 3), reduction="sum"), ()),
]


def _by_mode(modes):
    return [pytest.param(c, mode, id=f"{c.id}-{mode}", marks=[c.bugs[m] for m in modes[mode] if m in c.bugs])
            for c in CASES for mode in modes]


@pytest.mark.parametrize("case, mode", _by_mode({"forward": ["forward"], "reverse": ["reverse"]}))
def test_jacobian_matches_finite_differences(case, mode, rng):
    x = sg.placeholder("x", case.wrt_shape)
    y = case.build(x)
    assert y.shape == case.out_shape
    J = sg.jacobian(y, x, mode=mode)
    assert J.shape == case.out_shape + case.wrt_shape
    assert J.dtype == np.float64
    f = codegen.compile([x], [y, J])
    for _ in range(2):
        x0 = case.sample(rng, case.wrt_shape)
        _, j = f(x0)
        assert j.shape == case.out_shape + case.wrt_shape
        fd = fd_jacobian(lambda v: f(v)[0], x0, case.out_shape)
        np.testing.assert_allclose(j, fd, rtol=FD_RTOL, atol=FD_ATOL)


@pytest.mark.parametrize("case, mode", _by_mode({"auto": ["forward", "reverse"], "optimal": ["forward", "reverse"]}))
def test_forward_reverse_and_auto_agree(case, mode, rng):
    x = sg.placeholder("x", case.wrt_shape)
    y = case.build(x)
    Jf, Jr, Ja = (sg.jacobian(y, x, mode=m) for m in ("forward", "reverse", mode))
    f = codegen.compile([x], [Jf, Jr, Ja])
    x0 = case.sample(rng, case.wrt_shape)
    jf, jr, ja = f(x0)
    assert jf.shape == jr.shape == ja.shape == case.out_shape + case.wrt_shape
    np.testing.assert_allclose(jf, jr, rtol=MODE_RTOL, atol=MODE_ATOL)
    np.testing.assert_allclose(ja, jr, rtol=MODE_RTOL, atol=MODE_ATOL)


def test_identity_jacobian_is_the_identity():
    x = sg.placeholder("x", (3, 2))
    for mode in ("forward", "reverse"):
        J = codegen.evaluate(sg.jacobian(x, x, mode=mode), {x: np.zeros((3, 2))})
        np.testing.assert_array_equal(J.reshape(6, 6), np.eye(6))


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto", "optimal"])
def test_jacobian_of_a_function_that_does_not_depend_on_wrt_is_zero(mode, rng):
    x = sg.placeholder("x", (3,))
    z = sg.placeholder("z", (2, 2))
    y = sg.tanh(z @ C(30, (2, 4)))  # (2, 4), no x anywhere
    J = sg.jacobian(y, x, mode=mode)
    assert J.shape == (2, 4, 3)
    got = codegen.compile([x, z], J)(rng.normal(size=3), rng.normal(size=(2, 2)))
    assert got.shape == (2, 4, 3)
    np.testing.assert_array_equal(got, np.zeros((2, 4, 3)))
    # an output that reaches x only through a non-differentiable path is zero too
    y2 = sg.where(x > 0, 1.0, 2.0) * sg.stop_gradient(x)
    got2 = codegen.evaluate(sg.jacobian(y2, x, mode=mode), {x: rng.normal(size=3)})
    np.testing.assert_array_equal(got2, np.zeros((3, 3)))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_with_respect_to_an_intermediate_node_and_a_parameter(mode, rng):
    x = sg.placeholder("x", (4,))
    W = sg.parameter("W", value=rng.normal(size=(4, 3)))
    h = x @ W
    y = sg.tanh(h)
    Jh = sg.jacobian(y, h, mode=mode)  # diag(1 - tanh(h)^2)
    JW = sg.jacobian(y, W, mode=mode)  # dy_i/dW_kj = (1 - y_i^2) x_k [i == j]
    assert Jh.shape == (3, 3) and JW.shape == (3, 4, 3)
    x0 = rng.normal(size=4)
    jh, jw = codegen.compile([x], [Jh, JW])(x0)
    d = 1 - np.tanh(x0 @ W.value) ** 2
    np.testing.assert_allclose(jh, np.diag(d), rtol=1e-13, atol=1e-15)
    expected = np.einsum("i,k,ij->ikj", d, x0, np.eye(3))
    np.testing.assert_allclose(jw, expected, rtol=1e-13, atol=1e-15)


# -- explain_mode and mode="auto" -----------------------------------------------------------
def _mlp(n, m, hidden=20):
    x = sg.placeholder("x", (n,))
    y = C(41, (m, hidden), 0.3) @ sg.tanh(C(40, (hidden, n), 0.3) @ x)
    return x, y


def test_explain_mode_report_fields_and_text():
    x, y = _mlp(7, 5)
    r = sg.explain_mode(y, x)
    assert isinstance(r, sg.ModeReport)
    assert r.choice in {"forward", "reverse"}
    assert (r.n_inputs, r.n_outputs) == (7, 5)
    assert isinstance(r.forward_flops, int) and isinstance(r.reverse_flops, int)
    assert r.forward_flops > 0 and r.reverse_flops > 0
    assert r.choice == ("forward" if r.forward_flops < r.reverse_flops else "reverse")
    text = str(r)
    for value in (r.forward_flops, r.reverse_flops):
        assert f"{value:,}" in text or str(value) in text
    assert "forward" in text and "reverse" in text and r.choice in text


@pytest.mark.parametrize("n, m, expected", [(1000, 1, "reverse"), (1, 1000, "forward")])
def test_explain_mode_picks_the_mode_with_fewer_seeds(n, m, expected):
    x, y = _mlp(n, m)
    r = sg.explain_mode(y, x)
    assert (r.n_inputs, r.n_outputs) == (n, m)
    assert r.choice == expected
    cheap, dear = (r.forward_flops, r.reverse_flops) if expected == "forward" else (r.reverse_flops, r.forward_flops)
    # Not a 1000-fold gap: the simplifier turns the identity seed times the first layer's
    # matrix into the matrix itself, so both modes pay about n * hidden for that layer.
    assert cheap < dear


def test_explain_mode_scalar_output_of_many_inputs_is_reverse():
    x = sg.placeholder("x", (1000,))
    r = sg.explain_mode(sg.sum(sg.tanh(x) * C(42, (1000,))), x)
    assert (r.n_inputs, r.n_outputs, r.choice) == (1000, 1, "reverse")


@pytest.mark.parametrize("n, m", [(1000, 1), (1, 1000), (30, 4), (4, 30)])
def test_auto_picks_what_explain_mode_says(n, m, rng):
    x, y = _mlp(n, m)
    choice = sg.explain_mode(y, x).choice
    other = "reverse" if choice == "forward" else "forward"
    Ja, Jc, Jo = (sg.jacobian(y, x, mode=mode) for mode in ("auto", choice, other))
    # hash-consing: the auto graph IS the chosen mode's graph, and not the other one
    assert Jo is not Jc, "the two modes should build different graphs for this test to mean something"
    assert Ja is Jc
    x0 = rng.normal(size=n)
    ja, jo = codegen.compile([x], [Ja, Jo])(x0)
    np.testing.assert_allclose(ja, jo, rtol=1e-10, atol=1e-12)


# -- the matrix-chain plan ------------------------------------------------------------------
# The course's notation: link i of a chain (A, B, C, ... from the input side) is a
# dims[i-1] x dims[i] matrix, the Jacobian is their product ABC..., and a bracketing
# is a tree (left, right) of 1-based link indices, the left factor on the input side.
def parse_order(text: str):
    """Parse a bracketing like "(A(BC))D" into nested pairs of 1-based ints; raise on bad syntax."""
    tokens = [t for t in text if not t.isspace()]
    pos = 0

    def factor():
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"unexpected end of {text!r}")
        tok = tokens[pos]
        pos += 1
        if tok.isalpha() and tok.isupper():
            return ord(tok) - ord("A") + 1
        if tok != "(":
            raise ValueError(f"unexpected {tok!r} in {text!r}")
        tree = product()
        if pos >= len(tokens) or tokens[pos] != ")":
            raise ValueError(f"missing ')' in {text!r}")
        pos += 1
        return tree

    def product():
        left = factor()
        return (left, factor()) if pos < len(tokens) and tokens[pos] != ")" else left

    tree = product()
    if pos != len(tokens):
        raise ValueError(f"trailing text in {text!r}")
    return tree


def test_parse_order():
    assert parse_order("(AB)(CD)") == ((1, 2), (3, 4))
    assert parse_order("((AB)C)D") == (((1, 2), 3), 4)
    assert parse_order("A(B(CD))") == (1, (2, (3, 4)))
    assert parse_order("A") == 1
    for bad, message in (("(AB", "missing ')' in '(AB'"), ("AB)", "trailing text in 'AB)'"),
                         ("A(", "unexpected end of 'A('"), ("ab", "unexpected 'a' in 'ab'")):
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_order(bad)


def leaves(tree):
    return [tree] if isinstance(tree, int) else leaves(tree[0]) + leaves(tree[1])


def tree_cost(tree, dims, diag):
    """(cost, rows, cols, is_diagonal) of a bracketed product; matrix i is dims[i-1] x dims[i].
    A product with a diagonal factor costs rows*cols, a dense one rows*inner*cols."""
    if isinstance(tree, int):
        return 0, dims[tree - 1], dims[tree], diag[tree - 1]
    cl, p, q, dl = tree_cost(tree[0], dims, diag)
    cr, q2, r, dr = tree_cost(tree[1], dims, diag)
    assert q == q2
    step = p * r if (dl or dr) else p * q * r
    return cl + cr + step, p, r, dl and dr


def all_bracketings(i, j):
    """Every full bracketing of the product of matrices i..j."""
    if i == j:
        yield i
        return
    for s in range(i, j):
        for left in all_bracketings(i, s):
            for right in all_bracketings(s + 1, j):
                yield (left, right)


def test_brute_force_helper_on_the_textbook_chain():
    # A 13x5, B 5x89, C 89x3, D 3x34: the optimum is (A(BC))D with 2856 multiplications.
    dims, diag = [13, 5, 89, 3, 34], [False] * 4
    costs = {t: tree_cost(t, dims, diag)[0] for t in all_bracketings(1, 4)}
    assert len(costs) == 5  # Catalan(3)
    assert min(costs.values()) == 2856
    assert min(costs, key=costs.get) == ((1, (2, 3)), 4)


def _matmul_chain(dims):
    """x (dims[0],) -> x @ W1 -> ... : a chain of dense matmul links with the given sizes."""
    x = sg.placeholder("x", (dims[0],))
    h = x
    for i in range(1, len(dims)):
        h = h @ C(50 + i, (dims[i - 1], dims[i]))
    return x, h


def check_plan(plan, dims, diag):
    k = len(dims) - 1
    assert len(plan.links) == k
    assert [(l.n_in, l.n_out) for l in plan.links] == [(dims[i - 1], dims[i]) for i in range(1, k + 1)]
    assert [l.diagonal for l in plan.links] == diag
    assert plan.product == "ABCDEFGHIJ"[:k]
    tree = parse_order(plan.best_order)
    assert leaves(tree) == list(range(1, k + 1))
    brute = min(tree_cost(t, dims, diag)[0] for t in all_bracketings(1, k))
    assert plan.best_cost == brute
    assert tree_cost(tree, dims, diag)[0] == plan.best_cost  # the order achieves the cost it claims
    input_first = 1
    for i in range(2, k + 1):
        input_first = (input_first, i)
    output_first = k
    for i in range(k - 1, 0, -1):
        output_first = (i, output_first)
    assert plan.forward_cost == tree_cost(input_first, dims, diag)[0]
    assert plan.reverse_cost == tree_cost(output_first, dims, diag)[0]
    assert plan.best_cost <= min(plan.forward_cost, plan.reverse_cost)
    if k >= 3:  # a tie with a pure mode is that pure mode
        expected = ("forward" if plan.best_cost == plan.forward_cost else
                    "reverse" if plan.best_cost == plan.reverse_cost else "optimal")
        assert plan.kind == expected


@pytest.mark.parametrize("dims", [[13, 5, 89, 3, 34], [30, 35, 15, 5, 10], [5, 40, 2, 40, 5], [3, 4, 5, 6, 7]])
def test_chain_plan_of_dense_matmuls_matches_brute_force(dims):
    x, y = _matmul_chain(dims)
    plan = sg.explain_mode(y, x).chain
    assert plan is not None
    check_plan(plan, dims, [False] * 4)


def test_chain_plan_of_the_textbook_chain_is_optimal_and_beats_both_sweeps():
    x, y = _matmul_chain([13, 5, 89, 3, 34])
    r = sg.explain_mode(y, x)
    assert r.chain.best_cost == 2856
    assert r.chain.best_order == "(A(BC))D"
    assert parse_order(r.chain.best_order) == ((1, (2, 3)), 4)
    assert r.chain.best_cost < min(r.chain.forward_cost, r.chain.reverse_cost)
    text = str(r)
    assert r.chain.best_order in text and f"{r.chain.best_cost:,}" in text


def test_chain_plan_with_elementwise_links():
    x = sg.placeholder("x", (6,))
    h1 = x @ C(60, (6, 20))
    h2 = sg.tanh(h1)
    h3 = h2 @ C(61, (20, 3))
    h4 = sg.exp(sg.sin(h3))
    y = h4 @ C(62, (3, 8))
    r = sg.explain_mode(y, x)
    plan = r.chain
    assert plan is not None
    assert [l.node for l in plan.links] == [h1, h2, h3, h4.inputs[0], h4, y]
    dims = [6, 20, 20, 3, 3, 3, 8]
    diag = [False, True, False, True, True, False]
    check_plan(plan, dims, diag)


@pytest.mark.parametrize("order", ["x_times_c", "c_times_x"])
def test_chain_plan_broadcasting_link_is_not_diagonal(order):
    x = sg.placeholder("x", (3,))
    c = C(64, (2, 3))
    h = x * c if order == "x_times_c" else c * x  # (2, 3): the link's Jacobian is 6 x 3, not diagonal
    y = sg.sum(sg.tanh(h), axis=0)  # (3,)
    plan = sg.explain_mode(y, x).chain
    assert plan is not None
    check_plan(plan, [3, 6, 6, 3], [False, True, False])


@pytest.mark.parametrize("seed", range(12))
def test_chain_plan_of_random_chains_matches_brute_force(seed):
    """Random chains of 1 to 7 links: dense matmuls to random sizes and diagonal elementwise maps."""
    r = np.random.default_rng(seed)
    dims, diag = [int(r.integers(1, 13))], []
    x = sg.placeholder("x", (dims[0],))
    h = x
    for i in range(int(r.integers(1, 8))):
        if r.random() < 0.5:
            dims.append(int(r.integers(1, 13)))
            h = h @ C(100 + 10 * seed + i, (dims[-2], dims[-1]))
            diag.append(False)
        else:
            h = [sg.tanh, sg.sin, sg.exp, sg.sigmoid][int(r.integers(4))](h)
            dims.append(dims[-1])
            diag.append(True)
    plan = sg.explain_mode(h, x).chain
    assert plan is not None
    check_plan(plan, dims, diag)


def test_no_chain_plan_when_the_path_branches():
    x = sg.placeholder("x", (4,))
    y = sg.tanh(x) * (x @ C(63, (4, 4)))  # two paths from x to y
    r = sg.explain_mode(y, x)
    assert r.chain is None
    assert r.choice in {"forward", "reverse"}
    str(r)


# -- mode="optimal": the cheapest bracketing, built ------------------------------------------
def _chain_graph(seed, dims, between=(), batch=None, wrt_weights=False):
    """x -> x @ W1 -> f1 -> ... -> @ Wk: dense matmuls of the given sizes, ``between[i]`` (an
    elementwise function, or None) after the i-th. ``batch``: x is (batch, dims[0]).
    ``wrt_weights``: differentiate with respect to W1 (a placeholder) instead of x."""
    x = sg.placeholder("x", (dims[0],) if batch is None else (batch, dims[0]))
    W1 = sg.placeholder("W1", (dims[0], dims[1]))
    h = x @ W1
    for i in range(1, len(dims)):
        f = between[i - 1] if i - 1 < len(between) else None
        if f is not None:
            h = f(h)
        if i < len(dims) - 1:
            h = h @ C(seed + i, (dims[i], dims[i + 1]), 1 / np.sqrt(dims[i]))
    return x, W1, h


OPTIMAL_CHAINS = [  # (id, dims, between, batch, wrt_weights)
    ("abcd", [30, 50, 2, 40, 10], (), None, False),
    ("abcd_tanh", [30, 50, 2, 40, 10], (sg.tanh, sg.tanh, sg.tanh), None, False),
    ("five_links_non_square", [7, 30, 3, 25, 2, 20], (None, sg.sin, None, sg.sigmoid), None, False),
    ("long_chain", [12, 3, 15, 2, 14, 3, 11, 4], (sg.tanh, None, sg.exp, None, None, sg.sin), None, False),
    ("batch", [6, 12, 2, 10, 5], (sg.tanh, None, sg.tanh), 3, False),
    ("wrt_weights", [4, 20, 2, 12, 6], (sg.tanh, None, None), 2, True),
    ("three_links", [5, 9, 4], (sg.tanh,), None, False),  # every bracketing is a pure mode
]


@pytest.mark.parametrize("dims, between, batch, wrt_weights", [pytest.param(*c[1:], id=c[0]) for c in OPTIMAL_CHAINS])
def test_optimal_jacobian_equals_forward_and_reverse(dims, between, batch, wrt_weights, rng):
    x, W1, y = _chain_graph(80, dims, between, batch, wrt_weights)
    wrt = W1 if wrt_weights else x
    report = sg.explain_mode(y, wrt)
    assert report.chain is not None
    Jf, Jr, Jo, Ja = (sg.jacobian(y, wrt, mode=m) for m in ("forward", "reverse", "optimal", "auto"))
    assert Jo.shape == y.shape + wrt.shape
    if report.chain.kind == "optimal":
        assert Jo is not Jf and Jo is not Jr  # a graph of its own
        assert report.optimal_flops is not None
    f = codegen.compile([x, W1], [Jf, Jr, Jo, Ja])
    jf, jr, jo, ja = f(rng.normal(size=x.shape), rng.normal(size=W1.shape) / 2)
    np.testing.assert_allclose(jo, jf, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(jo, jr, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ja, jr, rtol=1e-12, atol=1e-13)


def test_optimal_jacobian_matches_central_differences(rng):
    x, W1, y = _chain_graph(90, [8, 20, 2, 16, 5], (sg.tanh, None, sg.sin))
    assert sg.explain_mode(y, x).chain.kind == "optimal"
    f = codegen.compile([x, W1], [y, sg.jacobian(y, x, mode="optimal")])
    x0, w0 = rng.normal(size=8), rng.normal(size=(8, 20)) / 3
    fd = fd_jacobian(lambda v: f(v, w0)[0], x0, (5,))
    np.testing.assert_allclose(f(x0, w0)[1], fd, rtol=FD_RTOL, atol=FD_ATOL)


def test_auto_runs_the_optimal_bracketing_when_it_is_cheapest(rng):
    x, _, y = _chain_graph(100, [300, 500, 8, 400, 100])
    r = sg.explain_mode(y, x)
    assert r.chain.best_order == "(AB)(CD)" and r.chain.kind == "optimal"
    assert r.choice == "forward" and r.auto == r.optimal_runs == "optimal"  # (choice: the cheaper pure mode)
    assert r.optimal_flops * 4 < min(r.forward_flops, r.reverse_flops)
    # the costs are those of the chain: 2 flops per multiply-add (the identity seeds cost nothing)
    assert (r.forward_flops, r.reverse_flops, r.optimal_flops) == (
        2 * r.chain.forward_cost, 2 * r.chain.reverse_cost, 2 * r.chain.best_cost)
    assert sg.jacobian(y, x) is sg.jacobian(y, x, mode="optimal")


def test_a_chain_of_constants_is_costed_before_folding():
    """The course's ABCD chain with small constant matrices: its whole Jacobian is a constant,
    which compiling folds, but the report costs the products as if A..D were weights."""
    x = sg.placeholder("x", (6,))
    y = x
    for i, (a, b) in enumerate([(6, 8), (8, 2), (2, 8), (8, 4)]):
        y = y @ C(110 + i, (a, b))
    r = sg.explain_mode(y, x)
    assert (r.forward_flops, r.reverse_flops, r.optimal_flops) == (2 * 384, 2 * 320, 2 * 208)
    assert r.choice == "reverse" and r.auto == "optimal"


def test_the_report_explains_the_choice_in_the_course_notation():
    x, _, y = _chain_graph(100, [300, 500, 8, 400, 100])
    text = str(sg.explain_mode(y, x))
    for phrase in ("product ABCD", "((AB)C)D", "A(B(CD))", "(AB)(CD)", "14,160,000", "15,720,000", "1,760,000",
                   'choice: forward; mode="auto" runs the optimal bracketing', "from the input side", "from the output side", "split after B"):
        assert phrase in text, phrase
    lines = text.splitlines()
    assert [line.split()[:4] for line in lines if line.startswith("  ") and "matmul" in line] == [
        ["A", "300", "x", "500"], ["B", "500", "x", "8"], ["C", "8", "x", "400"], ["D", "400", "x", "100"]]


def test_a_chain_whose_best_bracketing_is_a_pure_mode():
    x, y = _matmul_chain([3, 4, 5, 6, 7])  # growing: multiply from the input side
    r = sg.explain_mode(y, x)
    assert r.chain.best_order == "((AB)C)D" and r.chain.kind == "forward"
    assert r.optimal_runs == "forward" and r.optimal_flops is None
    assert sg.jacobian(y, x, mode="optimal") is sg.jacobian(y, x, mode="forward")
    assert "forward mode itself" in str(r)


def test_optimal_falls_back_to_the_cheaper_pure_mode_off_chains():
    x = sg.placeholder("x", (30,))
    y = sg.tanh(x @ C(120, (30, 4))) * sg.sum(x)  # two paths from x: not a chain
    r = sg.explain_mode(y, x)
    assert r.chain is None and r.optimal_flops is None
    assert r.optimal_runs == r.choice == "reverse"
    assert sg.jacobian(y, x, mode="optimal") is sg.jacobian(y, x, mode="reverse")
    text = str(r)
    assert "not a chain" in text and "falls back" in text


def test_the_module_header_records_mode_costs_and_bracketing():
    x, W1, y = _chain_graph(100, [300, 500, 8, 400, 100])
    header = codegen.compile([x, W1], sg.jacobian(y, x, mode="optimal")).source.split('"""')[1]
    assert ("jacobian: optimal bracketing (AB)(CD): 3.5 MFLOP vs forward 28.3 MFLOP, reverse 31.4 MFLOP "
            "(mode='optimal')") in header
    header = codegen.compile([x, W1], sg.jacobian(y, x, mode="reverse")).source.split('"""')[1]
    assert "jacobian: reverse mode: 31.4 MFLOP vs forward 28.3 MFLOP, optimal (AB)(CD) 3.5 MFLOP" in header
    z = sg.placeholder("z", (3,))
    header = codegen.compile([z], sg.jacobian(sg.tanh(z) * sg.sum(z), z)).source.split('"""')[1]
    assert "jacobian: reverse mode:" in header and "not a chain (mode='auto')" in header


# -- derivatives of derivatives: a Jacobian of a Jacobian ------------------------------------
NESTED = [
    ("mlp", lambda x: sg.sigmoid(sg.tanh(x @ C(90, (3, 4))) @ C(91, (4, 2))), normal, {}),
    ("softmax", lambda x: sg.softmax(x * C(92, (3,))), normal, {}),
    ("max", lambda x: sg.max(sg.sin(x) * x) * C(93, (2,)), distinct, {}),
    ("getitem", lambda x: sg.sin(x[:2]) * x[1:], normal, {}),
    ("concatenate", lambda x: sg.concatenate([sg.sin(x), x * x]), normal, {}),
]


@pytest.mark.parametrize("name, build, sample, inner, outer", [
    pytest.param(name, build, sample, inner, outer, id=f"{name}-{outer}-over-{inner}",
                 marks=[bugs[(inner, outer)]] if (inner, outer) in bugs else [])
    for name, build, sample, bugs in NESTED for inner in ("forward", "reverse") for outer in ("forward", "reverse")
])
def test_jacobian_of_a_jacobian(name, build, sample, inner, outer, rng):
    x = sg.placeholder("x", (3,))
    y = build(x)
    J = sg.jacobian(y, x, mode=inner)
    JJ = sg.jacobian(J, x, mode=outer)
    assert JJ.shape == y.shape + (3, 3)
    f = codegen.compile([x], [J, JJ])
    x0 = sample(rng, (3,))
    _, jj = f(x0)
    np.testing.assert_allclose(jj, fd_jacobian(lambda v: f(v)[0], x0, y.shape + (3,)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jj, np.swapaxes(jj, -1, -2), rtol=1e-10, atol=1e-12)  # mixed partials commute


# -- the graph does not grow with n -------------------------------------------------------
def _jacobian_sizes(n, mode):
    with sg.fresh_graph():
        x = sg.placeholder("x", (n,))
        h = sg.tanh(x @ C(70, (n, 16), 0.1))
        y = sg.sigmoid(h @ C(71, (16, 5))) + sg.sum(sg.exp(0.01 * x)) * sg.softmax(h[:5])
        return node_count(sg.jacobian(y, x, mode=mode))


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_graph_size_does_not_depend_on_n(mode):
    small, large = _jacobian_sizes(10, mode), _jacobian_sizes(1000, mode)
    assert small == large
    assert small > 10  # a real graph was counted


def _hessian_size(n):
    with sg.fresh_graph():
        x = sg.placeholder("x", (n,))
        h = sg.tanh(x @ C(72, (n, 8), 0.1))
        cost = sg.softmax_cross_entropy(h @ C(73, (8, 3)), sg.constant(np.array(1))) + sg.sum(sg.sin(x) * x)
        return node_count(sg.hessian(cost, x))


def test_hessian_graph_size_does_not_depend_on_n():
    small, large = _hessian_size(10), _hessian_size(1000)
    assert small == large
    assert small > 10


# -- Hessians and Hessian-vector products ------------------------------------------------
def _cost(w):
    """A scalar function of a (3, 2) matrix: tanh layer, cross-entropy, a weight penalty."""
    logits = sg.tanh(C(80, (5, 3)) @ w) @ C(81, (2, 4))
    return sg.softmax_cross_entropy(logits, sg.constant(np.array([0, 3, 1, 1, 2]))) + 0.1 * sg.sum(sg.sin(w) * w)


def test_hessian_is_symmetric_and_matches_finite_differences_of_the_gradient(rng):
    w = sg.placeholder("w", (3, 2))
    cost = _cost(w)
    H = sg.hessian(cost, w)
    assert H.shape == (3, 2, 3, 2)
    f = codegen.compile([w], [sg.grad(cost, w), H])
    w0 = rng.normal(size=(3, 2))
    _, h = f(w0)
    assert h.shape == (3, 2, 3, 2)
    h2 = h.reshape(6, 6)
    np.testing.assert_allclose(h2, h2.T, rtol=1e-12, atol=1e-14)
    assert np.abs(h2).max() > 1e-3  # not trivially symmetric
    fd = fd_jacobian(lambda v: f(v)[0], w0, (3, 2))  # d grad / d w
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-8)


HESSIAN_COSTS = [
    ("concatenate", lambda x: sg.sum(sg.tanh(sg.concatenate([sg.sin(x), x * x, x[:2]])) * C(86, (8,)))),
    ("getitem", lambda x: sg.sum(sg.exp(x[::2]) * x[1:3])),
    ("broadcast", lambda x: sg.sum(sg.tanh(x + C(87, (2, 3))) ** 2 * C(88, (2, 3)))),
    ("xent", lambda x: sg.softmax_cross_entropy(sg.reshape(x, (1, 3)) * 2.0, sg.constant(np.array([1])))),
    ("max", lambda x: sg.max(sg.sin(x) * x) ** 2),
    ("logsumexp", lambda x: sg.logsumexp(x * x)),
    ("where", lambda x: sg.sum(sg.where(x > 0, x**3, sg.sin(x)))),
    ("mean_keepdims", lambda x: sg.sum(sg.square(x - sg.mean(x, keepdims=True)) * C(89, (3,)))),
    pytest.param("batched_matmul", lambda x: sg.sum(sg.tanh(C(94, (2, 4, 3)) @ sg.reshape(x, (3, 1)))),
                 id="batched_matmul"),
]


@pytest.mark.parametrize("name, build", [c if hasattr(c, "marks") else pytest.param(*c, id=c[0])
                                         for c in HESSIAN_COSTS])
def test_hessian_through_various_ops_matches_finite_differences(name, build, rng):
    x = sg.placeholder("x", (3,))
    cost = build(x)
    f = codegen.compile([x], [sg.grad(cost, x), sg.hessian(cost, x)])
    x0 = distinct(rng, (3,)) + 0.1  # distinct (for max) and away from 0 (for where)
    _, h = f(x0)
    np.testing.assert_allclose(h, fd_jacobian(lambda v: f(v)[0], x0, (3,)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h, h.T, rtol=1e-12, atol=1e-14)


def test_hessian_of_a_vector_function_and_of_a_scalar_input(rng):
    x = sg.placeholder("x", (4,))
    cost = sg.sum(sg.exp(0.5 * x) * sg.sin(x @ C(82, (4, 4))))
    H = sg.hessian(cost, x)
    fg = codegen.compile([x], [sg.grad(cost, x), H])
    x0 = rng.normal(size=4)
    _, h = fg(x0)
    np.testing.assert_allclose(h, fd_jacobian(lambda v: fg(v)[0], x0, (4,)), rtol=1e-6, atol=1e-8)
    s = sg.placeholder("s", ())
    c = sg.sin(s) * s * s
    hs = sg.hessian(c, s)
    assert hs.shape == ()
    s0 = 0.7
    expected = -np.sin(s0) * s0**2 + 4 * s0 * np.cos(s0) + 2 * np.sin(s0)
    np.testing.assert_allclose(codegen.evaluate(hs, {s: s0}), expected, rtol=1e-13)


def test_hessian_of_linear_and_constant_costs_is_zero(rng):
    x = sg.placeholder("x", (3,))
    z = sg.placeholder("z", (3,))
    for cost in (sg.sum(x * C(83, (3,))), sg.sum(sg.exp(z)), sg.sum(z * x)):
        H = sg.hessian(cost, x)
        assert H.shape == (3, 3)
        got = codegen.compile([x, z], H)(rng.normal(size=3), rng.normal(size=3))
        np.testing.assert_array_equal(got, np.zeros((3, 3)))


def test_hvp_equals_hessian_times_vector(rng):
    w = sg.placeholder("w", (3, 2))
    v = sg.placeholder("v", (3, 2))
    cost = _cost(w)
    (Hv,) = sg.hvp(cost, [w], [v])
    assert Hv.shape == (3, 2)
    f = codegen.compile([w, v], [Hv, sg.hessian(cost, w)])
    w0, v0 = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    hv, h = f(w0, v0)
    np.testing.assert_allclose(hv, (h.reshape(6, 6) @ v0.ravel()).reshape(3, 2), rtol=1e-10, atol=1e-12)


def test_hvp_with_two_inputs_matches_finite_differences_of_the_gradient(rng):
    a = sg.placeholder("a", (3,))
    b = sg.placeholder("b", (2, 3))
    va, vb = sg.placeholder("va", (3,)), sg.placeholder("vb", (2, 3))
    cost = sg.sum(sg.tanh(b * a) @ C(84, (3,))) + sg.sum(sg.exp(0.3 * a)) * sg.mean(b * b)
    ha, hb = sg.hvp(cost, [a, b], [va, vb])
    assert ha.shape == (3,) and hb.shape == (2, 3)
    g = codegen.compile([a, b], sg.grad(cost, [a, b]))
    f = codegen.compile([a, b, va, vb], [ha, hb])
    a0, b0, va0, vb0 = rng.normal(size=3), rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=(2, 3))
    got_a, got_b = f(a0, b0, va0, vb0)
    (pa, pb), (ma, mb) = g(a0 + EPS * va0, b0 + EPS * vb0), g(a0 - EPS * va0, b0 - EPS * vb0)
    np.testing.assert_allclose(got_a, (pa - ma) / (2 * EPS), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(got_b, (pb - mb) / (2 * EPS), rtol=1e-6, atol=1e-8)


def test_reverse_over_reverse_for_a_scalar_function_of_a_scalar():
    x = sg.placeholder("x", ())
    y = sg.sin(x) * x**3 + sg.exp(0.5 * x)
    d1 = sg.grad(y, x)
    d2 = sg.grad(d1, x)
    d3 = sg.grad(d2, x)
    assert d1.shape == d2.shape == d3.shape == ()
    f = codegen.compile([x], [d1, d2, d3, sg.hessian(y, x)])
    for x0 in (-1.3, 0.4, 2.0):
        g1, g2, g3, h = f(x0)
        s, c = np.sin(x0), np.cos(x0)
        np.testing.assert_allclose(g1, c * x0**3 + 3 * x0**2 * s + 0.5 * np.exp(0.5 * x0), rtol=1e-13)
        np.testing.assert_allclose(g2, -s * x0**3 + 6 * x0**2 * c + 6 * x0 * s + 0.25 * np.exp(0.5 * x0),
                                   rtol=1e-12)
        np.testing.assert_allclose(g3, -c * x0**3 - 9 * x0**2 * s + 18 * x0 * c + 6 * s
                                   + 0.125 * np.exp(0.5 * x0), rtol=1e-12)
        np.testing.assert_allclose(h, g2, rtol=1e-13)


# -- the course's linear-regression toy ---------------------------------------------------
X_TOY = np.array([[2.0, 2.0], [2.0, 0.0]])  # x1 = (2, 2), x2 = (2, 0)
Y_TOY = np.array([2.0, 0.0])  # y1 = 2, y2 = 0
A_TOY = np.array([[8.0, 4.0], [4.0, 4.0]])  # sum_i x_i x_i^T
B_TOY = np.array([4.0, 4.0])  # sum_i y_i x_i


def _toy_vectorized(w):
    return 0.5 * sg.sum(sg.square(sg.constant(Y_TOY) - sg.constant(X_TOY) @ w))


def _toy_per_sample(w):
    """1/2 sum_i (y_i - w^T x_i)^2 written term by term, w^T x_i as sum(w * x_i)."""
    terms = [(float(yi) - sg.sum(w * sg.constant(xi))) ** 2 for xi, yi in zip(X_TOY, Y_TOY)]
    return 0.5 * (terms[0] + terms[1])


@pytest.mark.parametrize("loss", [
    pytest.param(_toy_vectorized, id="vectorized"),
    pytest.param(_toy_per_sample, id="per_sample"),
])
def test_course_linear_regression_toy(loss, rng):
    assert np.array_equal(X_TOY.T @ X_TOY, A_TOY) and np.array_equal(X_TOY.T @ Y_TOY, B_TOY)
    w = sg.placeholder("w", (2,))
    L = loss(w)
    g = sg.grad(L, w)
    f = codegen.compile([w], [L, g, sg.hessian(L, w), sg.jacobian(g, w, mode="forward"),
                              sg.jacobian(g, w, mode="reverse")])
    for w0 in [np.zeros(2), np.array([1.0, -1.0]), np.array([0.5, 0.5]), *rng.normal(size=(3, 2)) * 3]:
        L0, g0, H, Jf, Jr = f(w0)
        np.testing.assert_allclose(L0, 0.5 * np.sum((Y_TOY - X_TOY @ w0) ** 2), rtol=1e-13)
        np.testing.assert_allclose(g0, A_TOY @ w0 - B_TOY, rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(H, A_TOY)  # exactly, for any w
        np.testing.assert_array_equal(Jr, A_TOY)  # the Jacobian of the gradient is the Hessian
        np.testing.assert_array_equal(Jf, A_TOY)
    # the minimizer solves A w = b: w* = (0, 1), where the gradient vanishes and the loss is 0
    L0, g0, *_ = f(np.array([0.0, 1.0]))
    assert L0 == 0.0 and np.array_equal(g0, np.zeros(2))


def test_hessian_through_a_sum_of_a_nonlinear_term(rng):
    # grad of sum(h)**2 broadcasts a w-dependent scalar to h's shape (4,): forward over reverse
    # must push a (3,)-batched tangent through that broadcast
    x = sg.placeholder("x", (3,))
    M = np.random.default_rng(85).normal(size=(3, 4))
    H = sg.hessian(sg.sum(sg.tanh(x @ sg.constant(M))) ** 2, x)
    x0 = rng.normal(size=3)
    t = np.tanh(x0 @ M)
    u = M @ (1 - t**2)  # gradient of s = sum(tanh(x @ M))
    expected = 2 * np.outer(u, u) + 2 * t.sum() * (M * (-2 * t * (1 - t**2))) @ M.T
    np.testing.assert_allclose(codegen.evaluate(H, {x: x0}), expected, rtol=1e-12, atol=1e-12)


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["Forward", "rev", "both", "best", "", None, 1])
def test_unknown_mode_is_a_value_error(mode):
    x = sg.placeholder("x", (3,))
    with pytest.raises(ValueError, match="mode"):
        sg.jacobian(sg.tanh(x), x, mode=mode)


@pytest.mark.parametrize("dim", ["batch", None])
def test_non_static_wrt_is_a_value_error(dim):
    x = sg.placeholder("x", (dim, 3))
    y = sg.sum(sg.tanh(x), axis=0)  # static (3,) output
    for call in (lambda: sg.jacobian(y, x, mode="forward"), lambda: sg.jacobian(y, x, mode="reverse"),
                 lambda: sg.jacobian(y, x), lambda: sg.explain_mode(y, x), lambda: sg.hessian(sg.sum(y), x)):
        with pytest.raises(ValueError, match=r"(jacobian|explain_mode|hessian): the input placeholder 'x' needs a "
                                             r"static shape to size the Jacobian, got \((batch|\?), 3\)"):
            call()


@pytest.mark.parametrize("dim", ["batch", None])
def test_non_static_output_is_a_value_error(dim):
    x = sg.placeholder("x", (3,))
    data = sg.placeholder("data", (dim, 3))
    y = sg.tanh(data @ x)  # shape (dim,)
    for call in (lambda: sg.jacobian(y, x, mode="forward"), lambda: sg.jacobian(y, x, mode="reverse"),
                 lambda: sg.jacobian(y, x), lambda: sg.explain_mode(y, x)):
        with pytest.raises(ValueError, match=r"(jacobian|explain_mode): the output needs a static shape to size the "
                                             r"Jacobian, got \((batch|\?),\)"):
            call()
    # reducing the named axis away makes it fine
    J = sg.jacobian(sg.sum(y), x, mode="reverse")
    assert J.shape == (3,)


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_integer_wrt_is_a_dtype_error(dtype):
    labels = sg.placeholder("labels", (4,), dtype=dtype)
    y = sg.tanh(sg.cast(labels, "float64"))
    what = f"cannot differentiate with respect to placeholder 'labels' of dtype {dtype}"
    for mode in ("forward", "reverse", "auto"):
        with pytest.raises(sg.DTypeError, match=rf"jacobian: {what}"):
            sg.jacobian(y, labels, mode=mode)
    with pytest.raises(sg.DTypeError, match=rf"explain_mode: {what}"):
        sg.explain_mode(y, labels)
    with pytest.raises(sg.DTypeError, match=rf"hessian: {what}"):
        sg.hessian(sg.sum(y), labels)


def test_hessian_of_a_non_scalar_is_a_value_error():
    x = sg.placeholder("x", (3,))
    with pytest.raises(ValueError, match=r"hessian: the cost must be a scalar node, but its shape is \(3,\)"):
        sg.hessian(sg.tanh(x), x)


def test_hessian_of_cross_entropy_through_add_at_matches_finite_differences(rng):
    """The simplified CE gradient is add_at(exp(z - lse) / N, -1/N, y); its own derivatives (add_at's
    jvp and vjp) give the Hessian, forward over reverse and reverse over reverse alike."""
    z = sg.placeholder("z", (4, 3))
    y = sg.placeholder("y", (4,), dtype="int64")
    loss = sg.softmax_cross_entropy(z, y)
    g = sg.grad(loss, z)
    zb, yb = rng.normal(size=(4, 3)), np.array([0, 2, 1, 2])
    step = codegen.compile([z, y], g)
    assert "_add_at(" in step.source
    h = 1e-5
    numeric = np.empty((4, 3, 4, 3))
    for i in range(4):
        for j in range(3):
            d = np.zeros_like(zb)
            d[i, j] = h
            numeric[:, :, i, j] = (step(zb + d, yb) - step(zb - d, yb)) / (2 * h)
    hessian, forward, reverse = codegen.compile(
        [z, y], [sg.hessian(loss, z), sg.jacobian(g, z, mode="forward"), sg.jacobian(g, z, mode="reverse")])(zb, yb)
    np.testing.assert_allclose(hessian, numeric, atol=1e-9)
    np.testing.assert_allclose(forward, reverse, atol=1e-15)
    np.testing.assert_allclose(forward, numeric, atol=1e-9)


@pytest.mark.parametrize("build", [
    pytest.param(lambda x: sg.tanh(x), id="tanh"),
    pytest.param(lambda x: x * 2.0, id="scale"),
])
def test_explain_mode_breaks_a_tie_in_favour_of_reverse_mode(build):
    """The documented rule: among the pure modes, reverse on a tie (an elementwise map of a vector
    has a diagonal Jacobian, the same price from either side)."""
    x = sg.placeholder("x", (4,))
    r = sg.explain_mode(build(x), x)
    assert r.forward_flops == r.reverse_flops > 0
    assert r.choice == "reverse" and r.auto == "reverse"
    assert "a tie goes to reverse mode" in str(r)
    J = sg.jacobian(build(x), x, mode="auto")
    assert J is sg.jacobian(build(x), x, mode="reverse")  # hash-consed: the very graph reverse mode builds
    assert J is not sg.jacobian(build(x), x, mode="forward")
    assert "jacobian: reverse mode" in codegen.compile([x], J).source
