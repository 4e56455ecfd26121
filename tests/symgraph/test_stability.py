"""Numerical stability (issue 4, item 3): huge logits, naive formulas, masked gradients.

Losses and gradients are compared with analytic values computed stably in NumPy. Calls run
under ``np.errstate(all="raise", under="ignore")``: any overflow, division by zero or
invalid operation (inf - inf, 0 * inf) raises. Underflow is allowed: exp(-2000) is 0 in
float64, and 0 is the correct softmax weight there.

The naive formulas (log of softmax, log of sigmoid, log(1 + exp), log of a sum of exps)
must come out finite and right both when ``codegen.compile`` simplifies (its default) and,
for the gradient, when it does not: ``sg.grad`` applies the stabilization rules before it
differentiates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import codegen
import symgraph as sg

STRICT = {"all": "raise", "under": "ignore"}
RTOL, ATOL = 1e-12, 1e-15

# rows of large logits: +-1000, near ties, all hugely negative, all hugely positive
Z = np.array([
    [1000.0, -1000.0, 0.0],
    [-1000.0, 1000.0, 999.5],
    [0.0, 0.0, -1000.0],
    [1000.0, 1000.0, -1000.0],
    [-1000.0, -1000.0, -1000.0],
    [1000.0, 1000.0, 1000.0],
])
LABELS = np.array([1, 2, 0, 0, 2, 1])
ONE_HOT = np.eye(3)[LABELS]
TARGETS = np.array([  # BCE targets in [0, 1]
    [1.0, 0.0, 0.5],
    [0.0, 1.0, 1.0],
    [0.25, 1.0, 0.0],
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.75],
    [1.0, 1.0, 0.0],
])
N = Z.shape[0]


# -- analytic references (stable NumPy) ---------------------------------------------------------------
def ref_logsumexp(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        return np.squeeze(m + np.log(np.exp(z - m).sum(axis=axis, keepdims=True)), axis=axis)


def ref_softmax(z):
    with np.errstate(under="ignore"):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_sigmoid(z):
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def ref_softplus(z):
    with np.errstate(under="ignore"):
        return np.logaddexp(0.0, z)


def check(actual, expected, what):
    actual = np.asarray(actual)
    assert np.all(np.isfinite(actual)), f"{what}: not finite: {actual}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def strict_call(f, *args):
    with np.errstate(**STRICT):
        return f(*args)


def test_references_are_what_they_claim():  # the analytic side must itself be right
    np.testing.assert_allclose(ref_logsumexp(Z)[[2, 4, 5]], [np.log(2.0), -1000 + np.log(3.0), 1000 + np.log(3.0)],
                               rtol=1e-15)
    np.testing.assert_allclose(ref_softmax(Z)[3], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(ref_sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(ref_softplus(np.array([-1000.0, 0.0, 1000.0])), [0.0, np.log(2.0), 1000.0])


# -- built-in stable ops with huge inputs --------------------------------------------------------------
@pytest.mark.parametrize("simplify", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_with_integer_labels(simplify, reduction):
    z = sg.placeholder("z", ("batch", 3))
    y = sg.placeholder("y", ("batch",), dtype="int64")
    loss = sg.softmax_cross_entropy(z, y, reduction=reduction)
    f = codegen.compile([z, y], [loss, sg.grad(loss, z)], simplify=simplify)
    loss_v, grad_v = strict_call(f, Z, LABELS)
    rows = ref_logsumexp(Z) - Z[np.arange(N), LABELS]
    scale = 1.0 / N if reduction == "mean" else 1.0
    check(loss_v, rows.sum() * scale, "loss")
    check(grad_v, (ref_softmax(Z) - ONE_HOT) * scale, "gradient")
    assert loss_v / scale > 2000  # row 0 alone costs 2000: nothing was clipped


@pytest.mark.parametrize("simplify", [True, False])
def test_softmax_cross_entropy_with_one_hot_labels(simplify):
    z = sg.placeholder("z", ("batch", 3))
    t = sg.placeholder("t", ("batch", 3))
    loss = sg.softmax_cross_entropy(z, t)
    f = codegen.compile([z, t], [loss, sg.grad(loss, z)], simplify=simplify)
    loss_v, grad_v = strict_call(f, Z, ONE_HOT)
    check(loss_v, np.mean(ref_logsumexp(Z) - Z[np.arange(N), LABELS]), "loss")
    check(grad_v, (ref_softmax(Z) - ONE_HOT) / N, "gradient")


@pytest.mark.parametrize("simplify", [True, False])
def test_softmax_cross_entropy_per_row_with_its_vjp(simplify):
    z = sg.placeholder("z", ("batch", 3))
    y = sg.placeholder("y", ("batch",), dtype="int64")
    rows = sg.softmax_cross_entropy(z, y, reduction="none")
    w = sg.placeholder("w", ("batch",))
    (vjp,) = sg.vjp([rows], [z], [w])
    f = codegen.compile([z, y, w], [rows, vjp], simplify=simplify)
    wv = np.linspace(-1.0, 2.0, N)
    rows_v, vjp_v = strict_call(f, Z, LABELS, wv)
    check(rows_v, ref_logsumexp(Z) - Z[np.arange(N), LABELS], "rows")
    check(vjp_v, wv[:, None] * (ref_softmax(Z) - ONE_HOT), "vjp")


@pytest.mark.parametrize("simplify", [True, False])
def test_binary_cross_entropy_from_logits(simplify):
    z = sg.placeholder("z", ("batch", 3))
    t = sg.placeholder("t", ("batch", 3))
    loss = sg.binary_cross_entropy(z, t)
    f = codegen.compile([z, t], [loss, sg.grad(loss, z)], simplify=simplify)
    loss_v, grad_v = strict_call(f, Z, TARGETS)
    check(loss_v, np.mean(ref_softplus(Z) - Z * TARGETS), "loss")
    check(grad_v, (ref_sigmoid(Z) - TARGETS) / Z.size, "gradient")


@pytest.mark.parametrize("simplify", [True, False])
def test_log_softmax_of_large_inputs(simplify):
    z = sg.placeholder("z", ("batch", 3))
    w = sg.constant(np.arange(Z.size, dtype=float).reshape(Z.shape) / 7.0 - 1.0)
    out = sg.log_softmax(z)
    cost = sg.sum(w * out)
    f = codegen.compile([z], [out, sg.grad(cost, z)], simplify=simplify)
    out_v, grad_v = strict_call(f, Z)
    wv = w.value
    check(out_v, Z - ref_logsumexp(Z)[:, None], "log_softmax")
    check(grad_v, wv - ref_softmax(Z) * wv.sum(axis=-1, keepdims=True), "gradient")


@pytest.mark.parametrize("simplify", [True, False])
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_logsumexp_of_large_inputs(simplify, axis):
    z = sg.placeholder("z", Z.shape)
    out = sg.logsumexp(z, axis=axis)
    cost = sg.sum(out * sg.constant(np.linspace(0.5, 1.5, int(np.prod(out.shape))).reshape(out.shape)))
    f = codegen.compile([z], [out, sg.grad(cost, z)], simplify=simplify)
    out_v, grad_v = strict_call(f, Z)
    flat = Z.reshape(1, -1) if axis is None else (Z if axis == -1 else Z.T)
    expected = ref_logsumexp(flat)
    weights = np.linspace(0.5, 1.5, expected.size)
    grad = weights[:, None] * ref_softmax(flat)
    grad = grad.reshape(Z.shape) if axis is None else (grad if axis == -1 else grad.T)
    check(out_v, expected.reshape(np.shape(out_v)), "logsumexp")
    check(grad_v, grad, "gradient")


@pytest.mark.parametrize("simplify", [True, False])
def test_softmax_and_sigmoid_of_large_inputs(simplify):
    z = sg.placeholder("z", ("batch", 3))
    w = sg.constant(np.cos(np.arange(Z.size)).reshape(Z.shape))
    s, p = sg.softmax(z), sg.sigmoid(z)
    cost = sg.sum(w * s) + sg.sum(w * p)
    f = codegen.compile([z], [s, p, sg.grad(cost, z)], simplify=simplify)
    s_v, p_v, g_v = strict_call(f, Z)
    wv, sm, sig = w.value, ref_softmax(Z), ref_sigmoid(Z)
    check(s_v, sm, "softmax")
    check(p_v, sig, "sigmoid")
    check(g_v, sm * (wv - (wv * sm).sum(axis=-1, keepdims=True)) + wv * sig * (1 - sig), "gradient")


# -- naive formulas, rescued ------------------------------------------------------------------------------
def naive_cross_entropy(z, t):
    return -sg.mean(sg.sum(t * sg.log(sg.softmax(z)), axis=-1))


def naive_log_sigmoid(z, t):
    return -sg.mean(t * sg.log(sg.sigmoid(z)))


def naive_log_one_minus_sigmoid(z, t):
    return -sg.mean((1 - t) * sg.log(1 - sg.sigmoid(z)))


def naive_binary_cross_entropy(z, t):
    return -sg.mean(t * sg.log(sg.sigmoid(z)) + (1 - t) * sg.log(1 - sg.sigmoid(z)))


def naive_softplus(z, t):
    return sg.sum(t * sg.log(1 + sg.exp(z)))


def naive_logsumexp(z, t):
    return sg.sum(sg.log(sg.sum(sg.exp(z), axis=-1)) * sg.sum(t, axis=-1))


NAIVE = {  # name: (build, targets, analytic loss, analytic gradient wrt z)
    "log(softmax(z))": (naive_cross_entropy, ONE_HOT,
                        lambda z, t: np.mean(ref_logsumexp(z) - (t * z).sum(-1)),
                        lambda z, t: (ref_softmax(z) - t) / N),
    "log(sigmoid(z))": (naive_log_sigmoid, TARGETS,
                        lambda z, t: np.mean(t * ref_softplus(-z)),
                        lambda z, t: -t * (1 - ref_sigmoid(z)) / z.size),
    "log(1 - sigmoid(z))": (naive_log_one_minus_sigmoid, TARGETS,
                            lambda z, t: np.mean((1 - t) * ref_softplus(z)),
                            lambda z, t: (1 - t) * ref_sigmoid(z) / z.size),
    "binary cross-entropy": (naive_binary_cross_entropy, TARGETS,
                             lambda z, t: np.mean(ref_softplus(z) - z * t),
                             lambda z, t: (ref_sigmoid(z) - t) / z.size),
    "log(1 + exp(z))": (naive_softplus, TARGETS,
                        lambda z, t: np.sum(t * ref_softplus(z)),
                        lambda z, t: t * ref_sigmoid(z)),
    "log(sum(exp(z)))": (naive_logsumexp, TARGETS,
                         lambda z, t: np.sum(ref_logsumexp(z) * t.sum(-1)),
                         lambda z, t: t.sum(-1, keepdims=True) * ref_softmax(z)),
}


NAIVE_NUMPY = {  # the same formulas evaluated op by op in plain NumPy
    "log(softmax(z))": lambda: np.log(np.exp(Z) / np.exp(Z).sum(-1, keepdims=True)),
    "log(sigmoid(z))": lambda: np.log(1 / (1 + np.exp(-Z))),
    "log(1 - sigmoid(z))": lambda: np.log(1 - 1 / (1 + np.exp(-Z))),
    "binary cross-entropy": lambda: np.log(1 / (1 + np.exp(-Z))) + np.log(1 - 1 / (1 + np.exp(-Z))),
    "log(1 + exp(z))": lambda: np.log(1 + np.exp(Z)),
    "log(sum(exp(z)))": lambda: np.log(np.exp(Z).sum(-1)),
}


@pytest.mark.parametrize("name", sorted(NAIVE))
def test_the_naive_formula_really_fails_in_plain_numpy(name):
    """Overflow or log(0): there is something to rescue."""
    with np.errstate(**STRICT), pytest.raises(FloatingPointError):
        NAIVE_NUMPY[name]()


@pytest.mark.parametrize("name", sorted(NAIVE))
def test_naive_formula_is_rescued_by_the_simplifier(name):
    build, targets, loss_ref, grad_ref = NAIVE[name]
    z = sg.placeholder("z", ("batch", 3))
    t = sg.placeholder("t", ("batch", 3))
    loss = build(z, t)
    f = codegen.compile([z, t], [loss, sg.grad(loss, z)])  # default: simplify=True
    loss_v, grad_v = strict_call(f, Z, targets)
    check(loss_v, loss_ref(Z, targets), f"loss of {name}")
    check(grad_v, grad_ref(Z, targets), f"gradient of {name}")


@pytest.mark.parametrize("name", sorted(NAIVE))
def test_naive_formula_gradient_is_stable_without_the_simplifier(name):
    build, targets, _, grad_ref = NAIVE[name]
    z = sg.placeholder("z", ("batch", 3))
    t = sg.placeholder("t", ("batch", 3))
    g = sg.grad(build(z, t), z)  # sg.grad differentiates the stabilized graph
    (grad_v,) = strict_call(codegen.compile([z, t], [g], simplify=False), Z, targets)
    check(grad_v, grad_ref(Z, targets), f"gradient of {name}")
    assert "log" not in sg.count_ops([g]), sg.dprint(g)  # built from the stable forms only


def test_naive_cross_entropy_gradient_graph_is_built_from_log_softmax():
    z = sg.placeholder("z", ("batch", 3))
    t = sg.placeholder("t", ("batch", 3))
    g = sg.grad(naive_cross_entropy(z, t), z)
    ops = sg.count_ops([g])
    assert ops.get("log_softmax") == 1 and "softmax" not in ops and "log" not in ops, sg.dprint(g)


def test_naive_formulas_in_a_jvp_are_stable_too():
    z = sg.placeholder("z", ("batch", 3))
    out = sg.log(sg.softmax(z)) + sg.log(1 + sg.exp(z))
    v = np.sin(np.arange(Z.size)).reshape(Z.shape)
    (tangent,) = sg.jvp([out], [z], [sg.constant(v)])
    (tan_v,) = strict_call(codegen.compile([z], [tangent], simplify=False), Z)
    sm = ref_softmax(Z)
    check(tan_v, v - (sm * v).sum(-1, keepdims=True) + ref_sigmoid(Z) * v, "tangent")


# -- masked gradients without NaN --------------------------------------------------------------------
# JAX (jax.grad), autograd, tinygrad and MLX all return NaN for these gradients at the masked
# points: the untaken branch's derivative (inf or nan) is multiplied by the zero cotangent
# (0 * inf = nan). Users there need the "double where" trick; symgraph's mask_product rule
# rewrites where(c, g, 0) * d into where(c, g * d, 0) so the untaken branch never leaks.
X = np.array([0.0, -0.0, -1.0, -np.inf, 1e-300, 0.25, 2.0])
POS = X > 0


def square_plus_sin(y):
    return y * y + sg.sin(y)


def safe(f):
    """f where x > 0 else 0, evaluated without touching the masked points."""
    out = np.zeros_like(X)
    out[POS] = f(X[POS])
    return out


MASKED = {  # name: (build(x), analytic value, analytic gradient of sum(value))
    "where(x > 0, sqrt(x), 0)": (lambda x: sg.where(x > 0, sg.sqrt(x), 0.0),
                                 safe(np.sqrt), safe(lambda v: 0.5 / np.sqrt(v))),
    "where(x > 0, log(x), 0)": (lambda x: sg.where(x > 0, sg.log(x), 0.0),
                                safe(np.log), safe(lambda v: 1.0 / v)),
    "where(x <= 0, 0, log(x))": (lambda x: sg.where(x <= 0, 0.0, sg.log(x)),
                                 safe(np.log), safe(lambda v: 1.0 / v)),
    "sin(3 where(x > 0, log(sqrt(x) + x), 0)) * 2": (
        lambda x: sg.sin(3.0 * sg.where(x > 0, sg.log(sg.sqrt(x) + x), 0.0)) * 2.0,
        2 * np.sin(3 * safe(lambda v: np.log(np.sqrt(v) + v))),
        safe(lambda v: 6 * np.cos(3 * np.log(np.sqrt(v) + v)) * (0.5 / np.sqrt(v) + 1) / (np.sqrt(v) + v))),
    "exp(where(x > 0, sqrt(x), 0)) ** 2": (
        lambda x: sg.exp(sg.where(x > 0, sg.sqrt(x), 0.0)) ** 2.0,
        np.exp(safe(np.sqrt)) ** 2,
        safe(lambda v: 2 * np.exp(2 * np.sqrt(v)) * 0.5 / np.sqrt(v))),
    "y*y + sin(y), y = where(x > 0, sqrt(x), 0)": (
        lambda x: square_plus_sin(sg.where(x > 0, sg.sqrt(x), 0.0)),
        safe(lambda v: v + np.sin(np.sqrt(v))),
        safe(lambda v: (2 * np.sqrt(v) + np.cos(np.sqrt(v))) * 0.5 / np.sqrt(v))),
}


def masked_gradient(build, x_values):
    x = sg.placeholder("x", (x_values.size,))
    value = build(x)
    f = codegen.compile([x], [sg.sum(value), sg.grad(sg.sum(value), x)])
    with np.errstate(invalid="ignore", divide="ignore"):  # the masked-out branch is nan/inf in the forward pass
        return f(x_values)


@pytest.mark.parametrize("name", list(MASKED))
def test_masked_gradient_is_finite_and_one_sided(name):
    build, value_ref, grad_ref = MASKED[name]
    total, grad = masked_gradient(build, X)
    np.testing.assert_allclose(total, value_ref.sum(), rtol=RTOL)
    assert np.all(np.isfinite(grad)), f"{name}: {grad}"
    np.testing.assert_allclose(grad, grad_ref, rtol=RTOL, atol=0)
    assert np.all(grad[~POS] == 0.0)


def test_masked_gradient_through_a_weighted_cost_and_a_leaky_branch():
    x = sg.placeholder("x", (X.size,))
    w = np.linspace(-2.0, 2.0, X.size)
    value = sg.where(x > 0, sg.log(x), x)  # the other branch is not zero: its gradient 1 must survive
    cost = sg.sum(value * sg.constant(w))
    f = codegen.compile([x], sg.grad(cost, x))
    with np.errstate(invalid="ignore", divide="ignore"):
        grad = f(X)
    expected = np.where(POS, w / np.where(POS, X, 1.0), w)
    np.testing.assert_allclose(grad, expected, rtol=RTOL, atol=0)


def test_masked_gradient_of_a_reciprocal():
    x_values = np.array([0.0, -0.0, -1.0, -np.inf, 0.25, 2.0])
    _, grad = masked_gradient(lambda x: sg.where(x > 0, 1.0 / x, 0.0), x_values)
    np.testing.assert_allclose(grad, [0.0, 0.0, 0.0, 0.0, -16.0, -0.25], rtol=RTOL, atol=0)


def test_masked_gradient_when_the_taken_branch_broadcasts():
    x = sg.placeholder("x", (X.size,))
    W = np.arange(2.0 * X.size).reshape(2, X.size) + 1.0
    cost = sg.sum(sg.where(x > 0, sg.sqrt(x) * sg.constant(W), 0.0))
    f = codegen.compile([x], sg.grad(cost, x))
    with np.errstate(invalid="ignore", divide="ignore"):
        grad = f(X)
    np.testing.assert_allclose(grad, safe(lambda v: 0.5 / np.sqrt(v)) * W.sum(axis=0), rtol=RTOL, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spread", [1.0, 50.0, 80.0, 1e4])
def test_logsumexp_kernel_shifts_by_the_global_or_the_row_max_alike(dtype, spread):
    """The kernel shifts by the largest entry when every exp(x - max) is a normal number, and by
    each row's max otherwise: both must agree with an exact reference to the dtype's precision."""
    from symgraph.kernels import _logsumexp

    rng = np.random.default_rng(7)
    x = rng.uniform(-spread, 0, size=(16, 5)) + rng.uniform(-3, 3, size=(16, 1)) * spread
    x[3] = -spread * 4  # a row far below the others
    ref = np.array([math.fsum(math.exp(v - r.max()) for v in r) for r in x])
    ref = np.log(ref) + x.max(axis=1)
    got = _logsumexp(x.astype(dtype), axis=1)
    assert got.dtype == dtype
    eps = np.finfo(dtype).eps
    error = np.abs(got - ref) / (1 + np.abs(ref))
    assert error.max() <= 8 * eps, (error.max() / eps, x[error.argmax()])
    row = np.array([[-np.inf, -np.inf], [0.0, -np.inf]], dtype)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for a row of -inf
        np.testing.assert_array_equal(_logsumexp(row, axis=1), [-np.inf, 0.0])


# -- masked derivatives compute no 0 * inf and no division by zero in the branch they drop ---------
def test_std_gradient_at_zero_spread_raises_no_floating_point_error():
    """sqrt's derivative is taken as 0 where the spread is 0: np.where evaluates both branches, so the
    one it drops must not divide by that zero either (it did: 0.5 / 0, a RuntimeWarning)."""
    x = sg.placeholder("x", (3, 2))
    (g,) = sg.grad(sg.std(x, axis=0).sum(), [x])
    f = codegen.compile([x], g)
    data = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 5.0]])  # the first column has no spread
    with np.errstate(**STRICT):
        got = f(data)
    expected = (data[:, 1] - data[:, 1].mean()) / (3 * data[:, 1].std())
    np.testing.assert_allclose(got, np.stack([np.zeros(3), expected], axis=1), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("simplify", [True, False])
def test_power_gradients_at_a_zero_base_raise_no_floating_point_error(simplify):
    """d(a**b)/da is 0 where b == 0 and d/db is 0 where a == 0 <= b (PyTorch's values), with no
    0 * inf behind them: 0**-1 (for b == 0) and 0 * log(0) (for a == 0) are never computed."""
    a, b = sg.placeholder("a", (4,)), sg.placeholder("b", (4,))
    z = sg.placeholder("z", (3,))
    outputs = [*sg.grad((a ** b).sum(), [a, b]), *sg.grad((0.0 ** z).sum(), [z])]
    f = codegen.compile([a, b, z], outputs, simplify=simplify)
    with np.errstate(**STRICT):
        ga, gb, gz = f(np.array([0.0, 0.0, 2.0, 3.0]), np.array([2.0, 0.0, 0.5, 0.0]), np.array([2.0, 0.5, 0.0]))
    np.testing.assert_allclose(ga, [0.0, 0.0, 0.5 / np.sqrt(2.0), 0.0], rtol=RTOL)
    np.testing.assert_allclose(gb, [0.0, 0.0, np.sqrt(2.0) * np.log(2.0), np.log(3.0)], rtol=RTOL)
    np.testing.assert_array_equal(gz, [0.0, 0.0, 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):  # a negative exponent of 0: the pole itself
        ga, gb, gz = f(np.zeros(4), np.array([-1.0, -2.0, 1.0, 0.0]), np.array([-1.0, -0.5, 1.0]))
    np.testing.assert_array_equal(gb, [-np.inf, -np.inf, 0.0, 0.0])
    np.testing.assert_array_equal(gz, [-np.inf, -np.inf, 0.0])
    np.testing.assert_array_equal(ga, [-np.inf, -np.inf, 1.0, 0.0])


def test_constant_folding_gives_no_warning_for_an_infinite_constant():
    """log(0) folded while compiling is -inf, as the generated code would compute it, without NumPy's warning."""
    import warnings

    from symgraph.graph import constant

    x = sg.placeholder("x", (2,))
    y = x + sg.log(constant(np.array([0.0, 1.0])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = codegen.compile([x], y)
    assert "np.log" not in f.source  # folded
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [-np.inf, 2.0])
