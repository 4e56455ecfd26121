import numpy as np

import codegen
import symgraph as sg


def test_mlp_gradient_compiles_runs_and_matches_finite_differences(rng):
    x = sg.placeholder("x", shape=("batch", 2))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W = sg.parameter("W", value=rng.normal(size=(2, 4)))
    V = sg.parameter("V", value=rng.normal(size=(4, 3)))
    loss = sg.softmax_cross_entropy(sg.tanh(x @ W) @ V + np.ones(3), y)
    f = codegen.compile([x, y], [loss, *sg.grad(loss, [W, V])])
    xb, yb = rng.normal(size=(5, 2)), np.array([0, 1, 2, 1, 0])
    _, gW, _ = f(xb, yb)
    eps, num = 1e-6, np.zeros_like(W.value)
    for i in np.ndindex(W.value.shape):
        w0 = W.value.copy()
        for sign in (1, -1):
            w = w0.copy()
            w[i] += sign * eps
            W.value = w
            num[i] += sign * codegen.evaluate(loss, {x: xb, y: yb}) / (2 * eps)
        W.value = w0
    np.testing.assert_allclose(gW, num, atol=1e-8)
