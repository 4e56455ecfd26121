"""Symbol-to-symbol differentiation: sg.grad, sg.vjp and sg.jvp.

Checks the contract of each entry point (argument checking, disconnected
inputs, return types), the shape of the gradient graphs it builds (only the
nodes between ``wrt`` and the cost, one sum per fan-out, no materialized
zeros), and values against analytic derivatives and finite differences.
Per-op gradient tables live in test_ops.py.
"""

import numpy as np
import pytest
import sympy

import codegen
import symgraph as sg


def _numeric_grad(f, arrays, eps=1e-6):
    """Central finite differences of the scalar ``f(*arrays)`` with respect to each array."""
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            args = [b.copy() for b in arrays]
            args[k][i] = a[i] + eps
            up = float(f(*args))
            args[k][i] = a[i] - eps
            down = float(f(*args))
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def _zero_broadcasts(nodes):
    """broadcast_to nodes whose input is an all-zero constant: materialized zero arrays."""
    found = []
    for n in sg.topo_sort(nodes if isinstance(nodes, list) else [nodes]):
        if n.op.name == "broadcast_to" and n.inputs[0].op.name == "constant" and not np.any(n.inputs[0].value):
            found.append(n)
        if n.op.name == "constant" and n.ndim > 0 and not np.any(n.value):
            found.append(n)
    return found


# -- grad: arguments and return types ----------------------------------------------------------
def test_grad_requires_a_scalar_cost():
    x = sg.placeholder("x", (3, 4))
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        sg.grad(sg.tanh(x), x)
    with pytest.raises(ValueError, match=r"grad: the cost must be a scalar node, but its shape is \(4,\)"):
        sg.grad(sg.tanh(x).sum(axis=0), x)
    with pytest.raises(ValueError, match=r"grad: the cost must be a scalar node, but its shape is \(1, 1\)"):
        sg.grad(sg.tanh(x).sum(axis=0, keepdims=True).sum(axis=1, keepdims=True), x)  # shape (1, 1)
    assert sg.grad(sg.tanh(x).sum(), x).shape == (3, 4)


def test_grad_argument_checks():
    x = sg.placeholder("x", (3,))
    cost = sg.tanh(x).sum()
    with pytest.raises(TypeError, match=r"grad: cost must be a graph node, got float"):
        sg.grad(1.0, x)
    with pytest.raises(TypeError, match=r"grad: wrt must hold graph nodes, got float64"):
        sg.grad(cost, np.ones(3))
    with pytest.raises(ValueError, match="disconnected"):
        sg.grad(cost, x, disconnected="ignore")


@pytest.mark.parametrize("call, match", [
    (lambda x, c: sg.grad(c, 3.0), r"grad: wrt must be a graph node or a list of nodes, got float 3.0"),
    (lambda x, c: sg.grad(c, [x, 3.0]), r"grad: wrt must hold graph nodes, got float 3.0"),
    (lambda x, c: sg.vjp(3.0, x, [1.0]), r"vjp: outputs must be a graph node or a list of nodes, got float"),
    (lambda x, c: sg.jvp([c], 3, [1.0]), r"jvp: wrt must be a graph node or a list of nodes, got int 3"),
    (lambda x, c: sg.hvp(c, 3.0, [1.0]), r"hvp: wrt must be a graph node or a list of nodes, got float"),
])
def test_a_number_where_nodes_belong_is_named(call, match):  # issue 11: "'float' object is not iterable"
    x = sg.placeholder("x", ())
    with pytest.raises(TypeError, match=match):
        call(x, sg.tanh(x))


def test_grad_of_a_single_node_is_a_node_and_of_a_list_is_a_list():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (2,))
    cost = sg.tanh(x).sum() * sg.exp(y).sum()
    single = sg.grad(cost, x)
    assert isinstance(single, sg.Node) and single.shape == (3,)
    one = sg.grad(cost, [x])
    assert isinstance(one, list) and len(one) == 1 and one[0] is single
    both = sg.grad(cost, [y, x])
    assert isinstance(both, list) and [g.shape for g in both] == [(2,), (3,)]
    assert both[1] is single  # hash-consing: the same gradient graph
    from_tuple = sg.grad(cost, (x, y))
    assert isinstance(from_tuple, list) and len(from_tuple) == 2


def test_grad_returns_graph_nodes_matching_finite_differences(rng):
    x = sg.placeholder("x", (3, 4))
    W = sg.parameter("W", value=rng.normal(size=(4, 2)))
    b = sg.parameter("b", value=rng.normal(size=(2,)))
    cost = (sg.sigmoid(x @ W + b) * sg.sin(x.sum(axis=1, keepdims=True))).mean()
    gx, gW, gb = sg.grad(cost, [x, W, b])
    assert all(isinstance(g, sg.Node) for g in (gx, gW, gb))
    assert (gx.shape, gW.shape, gb.shape) == ((3, 4), (4, 2), (2,))
    xv = rng.normal(size=(3, 4))
    f = codegen.compile([x], [gx, gW, gb])
    got = f(xv)

    def cost_of(xa, Wa, ba):
        s = 1 / (1 + np.exp(-(xa @ Wa + ba)))
        return (s * np.sin(xa.sum(axis=1, keepdims=True))).mean()

    want = _numeric_grad(cost_of, [xv, W.value, b.value])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)


def test_grad_undoes_broadcasting_in_each_input_shape(rng):
    x = sg.placeholder("x", ("batch", 4))
    row = sg.placeholder("row", (4,))
    col = sg.placeholder("col", (3, 1))
    scale = sg.placeholder("scale", (1, 4))
    cost = sg.tanh(x * scale + row).sum() + (sg.sin(col + row) * scale).sum()
    grads = sg.grad(cost, [x, row, col, scale])
    assert [g.shape for g in grads] == [("batch", 4), (4,), (3, 1), (1, 4)]
    vals = [rng.normal(size=s) for s in [(3, 4), (4,), (3, 1), (1, 4)]]
    got = codegen.evaluate(grads, dict(zip([x, row, col, scale], vals)))

    def cost_of(xa, ra, ca, sa):
        return np.tanh(xa * sa + ra).sum() + (np.sin(ca + ra) * sa).sum()

    for g, w in zip(got, _numeric_grad(cost_of, vals)):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)


def test_grad_with_named_and_unknown_dims(rng):
    x = sg.placeholder("x", ("batch", 3))
    W = sg.parameter("W", value=rng.normal(size=(3, 2)))
    b = sg.placeholder("b", (1, 2))
    u = sg.placeholder("u", (None, 2))
    cost = sg.tanh(x @ W + b).mean() + (sg.sin(x @ W) * u).mean(axis=0).sum()
    grads = sg.grad(cost, [x, W, b, u])
    assert [g.shape for g in grads] == [("batch", 3), (3, 2), (1, 2), (None, 2)]
    xv, bv, uv = rng.normal(size=(5, 3)), rng.normal(size=(1, 2)), rng.normal(size=(5, 2))
    got = codegen.compile([x, b, u], grads)(xv, bv, uv)

    def cost_of(xa, Wa, ba, ua):
        return np.tanh(xa @ Wa + ba).mean() + (np.sin(xa @ Wa) * ua).mean(axis=0).sum()

    for g, w in zip(got, _numeric_grad(cost_of, [xv, W.value, bv, uv])):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)


def test_grad_through_a_cast_has_the_input_dtype():
    x = sg.placeholder("x", (3,))
    cost = sg.tanh(x.astype("float32")).sum()  # a float32 cost of float64 data
    g = sg.grad(cost, x)
    assert g.dtype == np.float64 and g.shape == (3,)
    xv = np.array([0.0, 0.5, -1.0])
    np.testing.assert_allclose(codegen.evaluate(g, {x: xv}), 1 - np.tanh(xv) ** 2, rtol=1e-6)


def test_grad_with_respect_to_the_same_node_twice():
    x = sg.placeholder("x", (3,))
    g1, g2 = sg.grad(sg.tanh(x).sum(), [x, x])
    assert g1 is g2


def test_grad_keeps_float32_graphs_float32():
    x = sg.placeholder("x", (2, 3), dtype="float32")
    g = sg.grad((sg.tanh(x) * 2.0 + x**2).mean(), x)
    assert g.dtype == np.float32
    assert all(n.dtype == np.float32 for n in sg.topo_sort([g]) if n.dtype.kind == "f")


# -- disconnected inputs --------------------------------------------------------------------------
def test_disconnected_raise_names_the_input():
    x = sg.placeholder("x", (3,))
    unused = sg.placeholder("unused_input", (2,))
    cost = sg.tanh(x).sum()
    with pytest.raises(ValueError, match="unused_input"):
        sg.grad(cost, unused)
    with pytest.raises(ValueError, match="unused_input"):
        sg.grad(cost, [x, unused], disconnected="raise")


def test_disconnected_raise_describes_an_unnamed_node():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (2,))
    with pytest.raises(ValueError, match="exp"):
        sg.grad(sg.tanh(x).sum(), sg.exp(y))


def test_disconnected_zero_gives_zeros_of_the_input_shape():
    x = sg.placeholder("x", (3,))
    W = sg.parameter("W", value=np.ones((2, 5)))
    cost = sg.tanh(x).sum()
    gx, gW = sg.grad(cost, [x, W], disconnected="zero")
    assert gW.shape == (2, 5) and gW.dtype == np.float64
    got_x, got_W = codegen.evaluate([gx, gW], {x: np.array([0.0, 1.0, -1.0])})
    np.testing.assert_array_equal(got_W, np.zeros((2, 5)))
    np.testing.assert_allclose(got_x, 1 - np.tanh([0.0, 1.0, -1.0]) ** 2)


def test_disconnected_none_gives_none_in_place():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (4,))
    cost = sg.tanh(x).sum()
    assert sg.grad(cost, y, disconnected="none") is None
    gy, gx = sg.grad(cost, [y, x], disconnected="none")
    assert gy is None and isinstance(gx, sg.Node)


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_grad_with_respect_to_an_integer_or_boolean_node_is_an_error(dtype):
    x = sg.placeholder("x", (3,))
    labels = sg.placeholder("labels", (3,), dtype=dtype)
    cost = (x * labels.astype("float64")).sum()
    with pytest.raises(sg.DTypeError, match="labels"):
        sg.grad(cost, labels)
    with pytest.raises(ValueError, match=rf"grad: cannot differentiate with respect to placeholder 'labels' of dtype {dtype}"):
        sg.grad(cost, [x, labels])


def test_stop_gradient_gives_zeros_but_counts_as_connected():
    x = sg.placeholder("x", (3,))
    cost = sg.stop_gradient(x).sum()
    g = sg.grad(cost, x)  # "raise" is the default: must not raise
    assert g.shape == (3,)
    np.testing.assert_array_equal(codegen.evaluate(g, {x: np.array([1.0, 2.0, 3.0])}), np.zeros(3))
    g_none = sg.grad(cost, x, disconnected="none")  # connected: zeros, not None
    assert isinstance(g_none, sg.Node) and g_none.shape == (3,) and g_none.dtype == x.dtype
    np.testing.assert_array_equal(codegen.evaluate(g_none, {x: np.array([1.0, 2.0, 3.0])}), np.zeros(3))


def test_stop_gradient_blocks_only_its_own_path():
    x = sg.placeholder("x", (3,))
    cost = (sg.stop_gradient(x) * x).sum()  # d/dx = stop_gradient(x) = x, not 2x
    xv = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(codegen.evaluate(sg.grad(cost, x), {x: xv}), xv)


def test_gradient_through_comparisons_only_is_zero_and_connected():
    x = sg.placeholder("x", (3,))
    cost = sg.where(x > 0, 1.0, -1.0).sum()
    g = sg.grad(cost, x)
    np.testing.assert_array_equal(codegen.evaluate(g, {x: np.array([1.0, -2.0, 0.5])}), np.zeros(3))


# -- grad with respect to intermediate nodes ----------------------------------------------------
def test_grad_with_respect_to_an_intermediate_node(rng):
    x = sg.placeholder("x", (3, 4))
    W = sg.parameter("W", value=rng.normal(size=(4, 2)))
    C = rng.normal(size=(3, 2))
    h = sg.tanh(x @ W)
    cost = (sg.sin(h) * C).sum() + (x * x).sum()
    gh = sg.grad(cost, h)
    assert gh.shape == (3, 2)
    forward = {id(n) for n in sg.topo_sort([cost])}
    built = [n.op.name for n in sg.topo_sort([gh]) if id(n) not in forward]
    assert built and "matmul" not in built and "transpose" not in built  # nothing upstream of h is differentiated
    xv = rng.normal(size=(3, 4))
    hv = np.tanh(xv @ W.value)
    np.testing.assert_allclose(codegen.evaluate(gh, {x: xv}), np.cos(hv) * C, rtol=1e-12)


def test_grad_with_respect_to_a_node_and_its_ancestor(rng):
    x = sg.placeholder("x", (3,))
    h = sg.sin(x)
    cost = (h * x).sum()  # x reaches the cost directly and through h
    gh, gx = sg.grad(cost, [h, x])
    xv = rng.normal(size=3)
    got_h, got_x = codegen.evaluate([gh, gx], {x: xv})
    np.testing.assert_allclose(got_h, xv)  # partial: h treated as independent
    np.testing.assert_allclose(got_x, np.sin(xv) + xv * np.cos(xv))  # total derivative


def test_grad_of_a_node_with_respect_to_itself_is_one():
    x = sg.placeholder("x", ())
    c = sg.tanh(x)
    g = sg.grad(c, c)
    assert g.shape == () and g.dtype == np.float64
    assert codegen.evaluate(g * x, {x: np.array(0.3)}) == pytest.approx(0.3)


def test_grad_of_grad_of_a_quadratic_is_a_constant_that_compiles():
    s = sg.placeholder("s", ())
    d2 = sg.grad(sg.grad(s * s, s), s)
    assert codegen.evaluate([d2, s], {s: np.array(0.7)})[0] == pytest.approx(2.0)


# -- the gradient graph holds only what it needs ---------------------------------------------------
def test_an_unrelated_branch_adds_no_gradient_nodes(rng):
    x = sg.placeholder("x", (3, 4))
    y = sg.placeholder("y", (5,))
    W = sg.parameter("W", value=rng.normal(size=(4, 2)))
    main = sg.tanh(x @ W).sum()
    side = (sg.exp(y) * sg.sin(y)).sum() + sg.sigmoid(y).sum()
    alone = sg.grad(main, [x, W])
    with_side = sg.grad(main + side, [x, W])
    assert sg.count_ops(with_side) == sg.count_ops(alone)
    for op in ("exp", "sin", "sigmoid", "dsigmoid", "dsin"):
        assert op not in sg.count_ops(with_side)


def _forbidden(*args):
    raise AssertionError("a derivative rule ran for a node that is not between wrt and the cost")


def _guarded_op(monkeypatch):
    """A user elementwise op whose vjp and jvp must never run."""
    side = sg.elementwise(lambda z: sympy.sin(z) * 2, name="side_op")
    monkeypatch.setattr(side.op, "vjp", _forbidden)
    monkeypatch.setattr(side.op, "jvp", _forbidden)
    return side


def test_rules_run_only_for_nodes_between_wrt_and_cost(monkeypatch):
    side = _guarded_op(monkeypatch)
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (3,))
    # 1. a branch that does not depend on wrt
    cost = sg.tanh(x).sum() + side(y).sum()
    sg.grad(cost, x)
    sg.vjp([cost], [x], [1.0])
    sg.jvp([cost], [x], [np.ones(3)])
    # 2. a node upstream of wrt
    h = side(x)
    sg.grad(sg.tanh(h).sum(), h)
    # 3. a branch that depends on wrt but reaches the cost only through a comparison
    cost3 = sg.tanh(x).sum() + sg.where(side(x) > 0, 1.0, 0.0).sum()
    g = sg.grad(cost3, x)
    np.testing.assert_allclose(codegen.evaluate(g, {x: np.array([0.0, 0.5, 1.0])}), 1 - np.tanh([0.0, 0.5, 1.0]) ** 2)


def test_the_guard_itself_fires(monkeypatch):
    side = _guarded_op(monkeypatch)
    x = sg.placeholder("x", (3,))
    with pytest.raises(AssertionError, match="derivative rule ran"):
        sg.grad(side(x).sum(), x)


def test_no_zero_arrays_for_paths_that_contribute_nothing():
    x = sg.placeholder("x", (3, 4))
    y = sg.placeholder("y", (3, 4))
    b = sg.placeholder("b", (4,))
    labels = sg.placeholder("labels", (3,), dtype="int64")
    cost = (
        (sg.relu(x) * sg.stop_gradient(y)).sum()
        + sg.where(x > 0, x, 0.0).sum()
        + sg.maximum(x, y).mean()
        + (x[:, 1:3] * 2.0).sum()
        + ((x > 0).astype("float64") * y).sum()
        + sg.softmax_cross_entropy(x + b, labels)
        + sg.one_hot(labels, 4).sum() * sg.tanh(b).sum()
    )
    grads = sg.grad(cost, [x, b])
    assert _zero_broadcasts(grads) == []
    assert _zero_broadcasts(sg.vjp([cost], [x, b], [1.0])) == []
    assert _zero_broadcasts(sg.jvp([cost], [x, b], [np.ones((3, 4)), np.ones(4)])) == []


def test_fan_out_accumulates_one_sum(rng):
    x = sg.placeholder("x", (3,))
    cost = (sg.sin(x) * sg.cos(x) * sg.exp(x)).sum()  # x used three times, no adds in the forward graph
    g = sg.grad(cost, x)
    ops = sg.count_ops(g)
    assert ops.get("add", 0) == 2  # three contributions: exactly two additions
    assert g.op.name == "add"
    assert _zero_broadcasts(g) == []
    xv = rng.normal(size=3)
    want = np.cos(2 * xv) * np.exp(xv) + np.sin(xv) * np.cos(xv) * np.exp(xv)
    np.testing.assert_allclose(codegen.evaluate(g, {x: xv}), want, rtol=1e-12)


def test_fan_out_through_a_shared_intermediate(rng):
    x = sg.placeholder("x", (4,))
    h = sg.tanh(x)  # h used twice; x used once directly
    cost = (h * h).sum() + (h * x).sum()
    g = sg.grad(cost, x)
    xv = rng.normal(size=4)
    hv = np.tanh(xv)
    want = (2 * hv + xv) * (1 - hv**2) + hv
    np.testing.assert_allclose(codegen.evaluate(g, {x: xv}), want, rtol=1e-12)
    adds = sg.count_ops(g).get("add", 0)
    assert adds <= 4  # the forward add plus one sum per fanned-out node, not one per use pair


# -- derivatives of derivatives ----------------------------------------------------------------
SECOND_DERIVATIVES = [
    pytest.param(lambda s: s**3, lambda v: 6 * v, id="cube"),
    pytest.param(sg.sin, lambda v: -np.sin(v), id="sin"),
    pytest.param(sg.exp, np.exp, id="exp"),
    pytest.param(sg.log, lambda v: -1 / v**2, id="log"),
    pytest.param(sg.tanh, lambda v: -2 * np.tanh(v) * (1 - np.tanh(v) ** 2), id="tanh"),
    pytest.param(sg.sigmoid, lambda v: (lambda s: s * (1 - s) * (1 - 2 * s))(1 / (1 + np.exp(-v))), id="sigmoid"),
    pytest.param(sg.sqrt, lambda v: -0.25 * v**-1.5, id="sqrt"),
    pytest.param(sg.softplus, lambda v: (lambda s: s * (1 - s))(1 / (1 + np.exp(-v))), id="softplus"),
    pytest.param(sg.square, lambda v: 2.0, id="square"),  # a constant: the graph folds to a number
]


@pytest.mark.parametrize("f, second", SECOND_DERIVATIVES)
def test_grad_of_grad_matches_the_analytic_second_derivative(f, second):
    s = sg.placeholder("s", ())
    d1 = sg.grad(f(s), s)
    d2 = sg.grad(d1, s)
    assert d2.shape == () and isinstance(d2, sg.Node)
    got = codegen.evaluate([d2, s], {s: np.array(0.7)})[0]
    assert got == pytest.approx(second(0.7), rel=1e-10)


@pytest.mark.parametrize(
    "f, third",
    [
        pytest.param(sg.tanh, lambda v: (lambda t: (1 - t**2) * (6 * t**2 - 2))(np.tanh(v)), id="tanh"),
        pytest.param(sg.sigmoid, lambda v: (lambda s: s * (1 - s) * (1 - 6 * s + 6 * s**2))(1 / (1 + np.exp(-v))), id="sigmoid"),
        pytest.param(lambda s: s**4, lambda v: 24 * v, id="fourth_power"),
    ],
)
def test_third_derivatives(f, third):
    s = sg.placeholder("s", ())
    d3 = sg.grad(sg.grad(sg.grad(f(s), s), s), s)
    got = codegen.evaluate([d3, s], {s: np.array(0.7)})[0]
    assert got == pytest.approx(third(0.7), rel=1e-10)


def test_grad_of_grad_of_a_vector_function(rng):
    x = sg.placeholder("x", (4,))
    v = rng.normal(size=4)
    g = sg.grad((x**3).sum(), x)  # 3 x^2
    hv = sg.grad((g * v).sum(), x)  # Hessian-vector product: 6 x v
    xv = rng.normal(size=4)
    np.testing.assert_allclose(codegen.evaluate(hv, {x: xv}), 6 * xv * v, rtol=1e-12)


def test_forward_over_reverse(rng):
    x = sg.placeholder("x", (4,))
    g = sg.grad((x**3).sum(), x)
    t = rng.normal(size=4)
    (hvp,) = sg.jvp([g], [x], [t])
    xv = rng.normal(size=4)
    np.testing.assert_allclose(codegen.evaluate(hvp, {x: xv}), 6 * xv * t, rtol=1e-12)


def test_grad_of_nodes_built_before_a_fresh_graph(rng):
    W = sg.parameter("W", value=rng.normal(size=(3,)))
    x = sg.placeholder("x", (3,))
    for i in range(5):
        sg.placeholder(f"other{i}", (1,))
    with sg.fresh_graph():
        g = sg.grad(sg.tanh(x * W).sum(), x)
        xv = rng.normal(size=3)
        got = codegen.evaluate(g, {x: xv})
    np.testing.assert_allclose(got, (1 - np.tanh(xv * W.value) ** 2) * W.value)


# -- vjp and jvp ----------------------------------------------------------------------------------
def _two_outputs():
    x1 = sg.placeholder("x1", (3,))
    x2 = sg.placeholder("x2", (3,))
    y1 = x1 * x2
    y2 = sg.sin(x1).sum()
    return x1, x2, y1, y2


def test_vjp_takes_and_returns_lists(rng):
    x1, x2, y1, y2 = _two_outputs()
    c1 = rng.normal(size=3)
    c2 = 0.7
    out = sg.vjp([y1, y2], [x1, x2], [c1, c2])
    assert isinstance(out, list) and len(out) == 2
    a, b = rng.normal(size=3), rng.normal(size=3)
    g1, g2 = codegen.evaluate(out, {x1: a, x2: b})
    np.testing.assert_allclose(g1, c1 * b + c2 * np.cos(a))
    np.testing.assert_allclose(g2, c1 * a)


def test_vjp_with_a_symbolic_cotangent(rng):
    x = sg.placeholder("x", (2, 3))
    ct = sg.placeholder("ct", (2, 3))
    (g,) = sg.vjp([sg.tanh(x)], [x], [ct])
    xv, cv = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    np.testing.assert_allclose(codegen.evaluate(g, {x: xv, ct: cv}), cv * (1 - np.tanh(xv) ** 2))


def test_vjp_of_outputs_independent_of_wrt_is_zeros():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (2,))
    (g,) = sg.vjp([sg.tanh(y)], [x], [np.ones(2)])
    assert g.shape == (3,)
    np.testing.assert_array_equal(codegen.evaluate(g, {x: np.ones(3)}), np.zeros(3))


def test_vjp_cotangent_shape_mismatch_is_a_shape_error():
    x = sg.placeholder("x", (3,))
    y = sg.tanh(x)
    with pytest.raises(sg.ShapeError, match=r"\(4,\).*\(3,\)"):
        sg.vjp([y], [x], [np.ones(4)])
    with pytest.raises(sg.ShapeError, match=r"vjp: cotangent shape \(3, 1\) does not match output shape \(3,\)"):
        sg.vjp([y], [x], [np.ones((3, 1))])
    with pytest.raises(sg.ShapeError, match=r"vjp: cotangent shape \(2, 3\) does not match output shape \(3,\)") as info:
        sg.vjp([y], [x], [sg.placeholder("c", (2, 3))])  # err:vjp
    # located at the user's line, not in contextlib (vjp is wrapped by a contextmanager decorator)
    assert f"{__file__}:" in str(info.value) and "contextlib" not in str(info.value)


def test_vjp_with_too_few_cotangents_is_an_error():
    x1, x2, y1, y2 = _two_outputs()
    with pytest.raises(ValueError, match=r"vjp: 2 output\(s\) but 1 cotangent\(s\)"):
        sg.vjp([y1, y2], [x1], [np.ones(3)])


def test_vjp_with_too_many_cotangents_is_an_error():
    x1, x2, y1, y2 = _two_outputs()
    with pytest.raises(ValueError, match=r"vjp: 1 output\(s\) but 2 cotangent\(s\)"):
        sg.vjp([y1], [x1], [np.ones(3), np.ones(3)])


def test_jvp_takes_and_returns_lists(rng):
    x1, x2, y1, y2 = _two_outputs()
    t1, t2 = rng.normal(size=3), rng.normal(size=3)
    out = sg.jvp([y1, y2], [x1, x2], [t1, t2])
    assert isinstance(out, list) and len(out) == 2
    assert out[0].shape == (3,) and out[1].shape == ()
    a, b = rng.normal(size=3), rng.normal(size=3)
    d1, d2 = codegen.evaluate(out, {x1: a, x2: b})
    np.testing.assert_allclose(d1, t1 * b + a * t2)
    np.testing.assert_allclose(d2, np.sum(np.cos(a) * t1))


def test_jvp_of_outputs_independent_of_wrt_is_zeros():
    x = sg.placeholder("x", (3,))
    y = sg.placeholder("y", (2,))
    (t,) = sg.jvp([sg.tanh(y)], [x], [np.ones(3)])
    assert t.shape == (2,)
    np.testing.assert_array_equal(codegen.evaluate(t, {y: np.ones(2)}), np.zeros(2))


def test_jvp_argument_errors():
    x = sg.placeholder("x", (3,))
    labels = sg.placeholder("labels", (3,), dtype="int64")
    with pytest.raises(sg.DTypeError, match=r"jvp: cannot differentiate with respect to placeholder 'labels' of dtype int64"):
        sg.jvp([x * labels], [labels], [np.ones(3)])
    with pytest.raises(ValueError, match=r"jvp: 2 input\(s\) but 1 tangent\(s\)"):
        sg.jvp([sg.tanh(x)], [x, labels], [np.ones(3)])
    with pytest.raises(sg.ShapeError, match=r"jvp: tangent shape \(4,\) does not match the shape \(3,\) "
                                         r"of placeholder 'x' at "):
        sg.jvp([sg.tanh(x)], [x], [np.ones(4)])


def test_jvp_with_too_many_tangents_is_an_error():
    x = sg.placeholder("x", (3,))
    with pytest.raises(ValueError, match=r"jvp: 1 input\(s\) but 2 tangent\(s\)"):
        sg.jvp([sg.tanh(x)], [x], [np.ones(3), np.ones(3)])


def test_jvp_and_vjp_agree_and_match_finite_differences(rng):
    x = sg.placeholder("x", (3, 4))
    W = sg.placeholder("W", (4, 2))
    b = sg.placeholder("b", (2,))
    out = sg.tanh(x @ W + b) * sg.sigmoid(x.sum(axis=1, keepdims=True)) + sg.softmax(x @ W, axis=0)
    wrt = [x, W, b]
    vals = [rng.normal(size=s) for s in [(3, 4), (4, 2), (2,)]]
    tans = [rng.normal(size=s) for s in [(3, 4), (4, 2), (2,)]]
    cot = rng.normal(size=(3, 2))
    feed = dict(zip(wrt, vals))
    (jt,) = codegen.evaluate(sg.jvp([out], wrt, tans), feed)
    vjps = codegen.evaluate(sg.vjp([out], wrt, [cot]), feed)
    lhs = np.sum(cot * jt)
    rhs = sum(np.sum(g * t) for g, t in zip(vjps, tans))
    assert lhs == pytest.approx(rhs, rel=1e-10)
    f = codegen.compile(wrt, out)
    eps = 1e-6
    numeric = (f(*[v + eps * t for v, t in zip(vals, tans)]) - f(*[v - eps * t for v, t in zip(vals, tans)])) / (2 * eps)
    np.testing.assert_allclose(jt, numeric, rtol=1e-6, atol=1e-9)


# -- power at its edges (issue 16): zeros where PyTorch gives zeros, not 0 * inf = nan -----------
def _torch_power_grads(a, b):
    torch = pytest.importorskip("torch")
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    (ta ** tb).sum().backward()
    return ta.grad.numpy(), tb.grad.numpy()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_power_with_a_zero_exponent_has_zero_derivatives_at_zero():
    x = sg.placeholder("x", (3,))
    xv = np.array([0.0, 1.5, -2.0])
    g = sg.grad((x**0.0).sum(), x)  # was 0 * x**-1: nan at x = 0
    h = sg.hessian((x**0.0).sum(), x)  # was nan on the diagonal at x = 0
    (t,) = sg.jvp([x**0.0], [x], [np.ones(3)])
    got_g, got_h, got_t = codegen.evaluate([g, h, t], {x: xv})
    np.testing.assert_array_equal(got_g, np.zeros(3))
    np.testing.assert_array_equal(got_h, np.zeros((3, 3)))
    np.testing.assert_array_equal(got_t, np.zeros(3))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_power_derivatives_at_a_zero_base_or_exponent_match_pytorch():
    a = sg.placeholder("a", (6,))
    b = sg.placeholder("b", (6,))
    av = np.array([0.0, 0.0, 0.0, 0.0, 2.0, 0.5])
    bv = np.array([0.0, 2.0, 0.5, -1.0, 0.0, 3.0])
    ga, gb = codegen.evaluate(sg.grad((a**b).sum(), [a, b]), {a: av, b: bv})
    ta, tb = _torch_power_grads(av, bv)
    np.testing.assert_array_equal(ga[:3], [0.0, 0.0, np.inf])  # b = 0: 0, not 0 * 0**-1 = nan
    np.testing.assert_array_equal(gb[:3], [0.0, 0.0, 0.0])  # a = 0, b >= 0: 0, not 0 * log(0) = nan
    np.testing.assert_allclose(ga, ta, rtol=1e-12)
    np.testing.assert_allclose(gb, tb, rtol=1e-12)
    # forward mode gives the same partials
    (t,) = sg.jvp([a**b], [a, b], [np.ones(6), np.ones(6)])
    np.testing.assert_allclose(codegen.evaluate(t, {a: av, b: bv}), ta + tb, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_gradient_of_a_zero_base_with_respect_to_the_exponent_is_zero():
    y = sg.placeholder("y", (3,))
    g = sg.grad((0.0**y).sum(), y)  # was 0**y * log(0): nan for y > 0
    np.testing.assert_array_equal(codegen.evaluate(g, {y: np.array([2.0, 0.5, 0.0])}), np.zeros(3))
