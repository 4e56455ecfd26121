"""sg.trace: both sweeps with values, named as the generated code names them."""

import re

import numpy as np
import pytest

import codegen
import symgraph as sg

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0], dtype=np.float64)


def xor_net(seed=0):
    rng = np.random.default_rng(seed)
    x = sg.placeholder("x", shape=("batch", 2))
    y = sg.placeholder("y", shape=("batch",))
    W = sg.parameter("W", value=rng.normal(size=(2, 4)))
    c = sg.parameter("c", value=rng.normal(size=4))
    w = sg.parameter("w", value=rng.normal(size=4))
    b = sg.parameter("b", value=0.3)
    hidden = sg.tanh(x @ W + c).named("hidden")
    out = (hidden @ w + b).named("output")
    loss = sg.mse(out, y).named("loss")
    return x, y, W, c, w, b, hidden, out, loss


def by_name(rows):
    return {r.name: r for r in rows}


def test_forward_values_match_numpy():
    x, y, W, c, w, b, hidden, out, loss = xor_net()
    t = sg.trace(loss, {x: X, y: Y})
    h = np.tanh(X @ W.value + c.value)
    o = h @ w.value + b.value
    np.testing.assert_allclose(t.value(hidden), h)
    np.testing.assert_allclose(t.value(out), o)
    np.testing.assert_allclose(t.value(loss), np.mean((o - Y) ** 2))
    rows = by_name(t.forward)
    assert rows["hidden"].op == "tanh(add1)" and rows["add1"].op == "add(matmul1, c)"
    assert rows["matmul1"].op == "matmul(x, W)"
    assert [r.name for r in t.forward][-1] == "loss" and t.mode == "reverse" and t.tangents == []


def test_adjoints_match_grad_and_hand_derivation():
    x, y, W, c, w, b, hidden, out, loss = xor_net()
    t = sg.trace(loss, {x: X, y: Y})
    params = [W, c, w, b]
    expected = codegen.evaluate(sg.grad(loss, params), {x: X, y: Y})
    for p, e in zip(params, expected):
        np.testing.assert_allclose(t.adjoint(p), e, rtol=1e-12, atol=1e-14)
    h = np.tanh(X @ W.value + c.value)
    g_out = 2 * (h @ w.value + b.value - Y) / len(Y)  # d mean((o - y)^2) / d o, by hand
    np.testing.assert_allclose(t.adjoint(out), g_out)
    np.testing.assert_allclose(t.adjoint(hidden), np.outer(g_out, w.value))
    assert float(t.adjoint(loss)) == 1.0
    assert t.reverse[0].name == "grad_loss" and t.reverse[0].node is loss


def test_adjoint_against_central_differences():
    x, y, W, c, w, b, hidden, out, loss = xor_net(1)
    t = sg.trace(loss, {x: X, y: Y}, wrt=[W])
    f = codegen.compile([x, y], loss)
    eps, numeric = 1e-6, np.zeros_like(W.value)
    base = W.value.copy()
    for idx in np.ndindex(base.shape):
        for sign in (1, -1):
            W.value = base.copy()
            W.value[idx] += sign * eps
            numeric[idx] += sign * float(f(X, Y)) / (2 * eps)
    W.value = base
    np.testing.assert_allclose(t.adjoint(W), numeric, rtol=1e-6, atol=1e-8)
    assert t.adjoint(x) is None  # not in wrt


def test_reverse_rows_follow_the_reverse_sweep():
    x, y, W, c, w, b, hidden, out, loss = xor_net()
    names = [r.name for r in sg.trace(loss, {x: X, y: Y}, wrt=[W, c, w, b]).reverse]
    assert names.index("grad_loss") < names.index("grad_hidden") < names.index("grad_add1") < names.index("grad_W")
    assert len(names) == len(set(names))


def test_names_agree_with_generated_source():
    x, y, W, c, w, b, hidden, out, loss = xor_net()
    t = sg.trace(loss, {x: X, y: Y}, wrt=[W, c, w, b])
    rows = [r for r in t.forward if r.node.inputs] + t.reverse[1:]  # (the seed is a literal 1.0 in code)
    own = [r for r in rows if not re.fullmatch(r"grad_\w+", r.op)]  # not an alias of an earlier row
    nodes = [r.node for r in t.forward if r.node.inputs] + sg.grad(loss, [W, c, w, b])
    source = codegen.compile([x, y], nodes, simplify=False, memory_plan=False).source
    assigned = set(re.findall(r"^\s+(\w+) = ", source, flags=re.M))
    for r in own:
        assert r.name in assigned, r.name
    # and the names a user sees in the ordinary (simplified) train step
    step = codegen.compile([x, y], [loss, *sg.grad(loss, [W, c, w, b])]).source
    for name in ("hidden", "grad_hidden", "grad_add1", "grad_W", "grad_c", "grad_w", "grad_b", "grad_subtract1"):
        assert name in by_name(t.reverse) or name in by_name(t.forward)
        assert re.search(rf"^\s+{name} = ", step, flags=re.M), name


def test_forward_mode_tangents_match_jvp():
    x, y, W, c, w, b, hidden, out, loss = xor_net()
    t = sg.trace(out, {x: X}, wrt=c, mode="forward")
    assert t.mode == "forward" and t.reverse == []
    ones = np.ones(4)
    (expected,) = codegen.evaluate(sg.jvp([out], [c], [sg.constant(ones)]), {x: X})
    np.testing.assert_allclose(t.tangent(out), expected)
    h = np.tanh(X @ W.value + c.value)
    np.testing.assert_allclose(t.tangent(hidden), (1 - h**2) * ones)
    assert t.tangents[0].name == "tan_c" and t.tangents[0].op == "seed (ones)"
    seed = np.array([1.0, 0, 0, 0])
    t2 = sg.trace(out, {x: X}, wrt=c, mode="forward", seed=seed)
    np.testing.assert_allclose(t2.tangent(out), (1 - h[:, 0] ** 2) * w.value[0])


def test_scalars_and_the_course_example():
    # f(x1, x2) = x1 * x2 + sin(x1) at (2, 3): the classic table
    x1 = sg.placeholder("x1", shape=())
    x2 = sg.placeholder("x2", shape=())
    f = (x1 * x2 + sg.sin(x1)).named("f")
    t = sg.trace(f, {x1: 2.0, x2: 3.0})
    assert float(t.value(f)) == pytest.approx(6 + np.sin(2))
    assert float(t.adjoint(x1)) == pytest.approx(3 + np.cos(2))
    assert float(t.adjoint(x2)) == pytest.approx(2)
    text = str(t)
    assert "u1" in text and "grad_x1" in text and "sin(x1)" in text


def test_large_arrays_are_summarized():
    x = sg.placeholder("x", shape=(50, 40))
    loss = sg.sum(sg.square(x)).named("loss")
    text = str(sg.trace(loss, {x: np.ones((50, 40))}))
    assert "(50, 40) float64: mean 1" in text
    assert len(text.splitlines()) < 20


def test_clear_errors():
    x, y, W, c, w, b, hidden, out, loss = xor_net()
    with pytest.raises(ValueError, match="sg.vjp"):
        sg.trace(out, {x: X})
    with pytest.raises(ValueError, match="no value for placeholder 'y'"):
        sg.trace(loss, {x: X})
    other = sg.placeholder("z", shape=(2,))
    with pytest.raises(ValueError, match="does not depend on"):
        sg.trace(loss, {x: X, y: Y, other: np.ones(2)})
    with pytest.raises(ValueError, match="must be placeholders"):
        sg.trace(loss, {W: X, x: X, y: Y})
    with pytest.raises(ValueError, match="expects shape"):
        sg.trace(loss, {x: X[:, :1], y: Y})
    with pytest.raises(ValueError, match="expects shape"):
        sg.trace(loss, {x: X, y: Y[:3]})  # named dimension 'batch' disagrees
    with pytest.raises(ValueError, match="mode"):
        sg.trace(loss, {x: X, y: Y}, mode="sideways")
    with pytest.raises(ValueError, match="one"):
        sg.trace(out, {x: X}, mode="forward")  # several inputs: which tangent?
