"""The simplifier's conv rules (issue 15): each fires, keeps values and gradients, and saves work.

``pool_of_monotone`` rewrites ``max_pool2d(f(x))`` to ``f(max_pool2d(x))``; the differentiator
applies it before it builds a derivative, so the reference gradients here are built with the
rule switched off (``rules.BEFORE_DIFFERENTIATION`` without it) and compiled unsimplified.
"""

from __future__ import annotations

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph import init, nn, rules
from symgraph.jacobian import graph_flops

RTOL = 1e-12
ACTIVATIONS = {
    "relu": sg.relu, "leaky_relu": lambda v: sg.leaky_relu(v, 0.1), "hard_tanh": sg.hard_tanh,
    "tanh": sg.tanh, "sigmoid": sg.sigmoid, "softplus": sg.softplus,
}
POOLS = [dict(kernel=2), dict(kernel=3, stride=2, padding=1), dict(kernel=(2, 3), stride=1)]


@pytest.fixture
def as_written(monkeypatch):
    """A context in which grad differentiates the graph as written (no conv rule first)."""

    class Off:
        def __enter__(self):
            monkeypatch.setattr(rules, "BEFORE_DIFFERENTIATION", (rules.STABILIZE,))

        def __exit__(self, *exc):
            monkeypatch.setattr(rules, "BEFORE_DIFFERENTIATION", (rules.STABILIZE, rules.CONV))

    return Off()


def without_conv_rules():
    return tuple(s for s in rules.RULE_SETS if s is not rules.CONV)


def distinct(rng, shape, scale=2.0):
    """Normal values with no ties anywhere (a permutation of well-separated levels)."""
    levels = np.linspace(-scale, scale, int(np.prod(shape)))
    return rng.permutation(levels).reshape(shape)


@pytest.mark.parametrize("pool", POOLS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_pool_of_monotone_keeps_values_and_routes_gradients_to_the_same_maxima(act, pool, rng, as_written):
    x = sg.placeholder("x", (2, 3, 7, 6))
    w = sg.constant(rng.normal(size=(2, 3) + sg.max_pool2d(x, **pool).shape[-2:]))
    cost = sg.sum(sg.max_pool2d(ACTIVATIONS[act](x), **pool) * w)
    with as_written:
        reference = codegen.compile([x], [cost, sg.grad(cost, x)], simplify=False)
    simplified, report = sg.simplify([cost, sg.grad(cost, x)], report=True)
    assert report.rules["pool_of_monotone"] >= 1
    assert not any(n.op.name == act and n.inputs[0].shape == x.shape for n in sg.topo_sort(simplified))
    rewritten = codegen.compile([x], simplified, simplify=False)
    feed = distinct(rng, x.shape)
    for a, b in zip(reference(feed), rewritten(feed)):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=0)


@pytest.mark.parametrize("act", ["relu", "hard_tanh"])
def test_pool_of_a_flat_activation_keeps_gradients_at_ties(act, as_written):
    """Where relu and hard_tanh are flat they tie a whole window, and there their derivative is 0."""
    x = sg.placeholder("x", (1, 1, 4, 4))
    cost = sg.sum(sg.max_pool2d(ACTIVATIONS[act](x), 2) * sg.constant(np.array([[[[1.0, 2.0], [3.0, 4.0]]]])))
    with as_written:
        reference = codegen.compile([x], [cost, sg.grad(cost, x)], simplify=False)
    compiled = codegen.compile([x], [cost, sg.grad(cost, x)])
    feed = np.array([[[[-3.0, -1.0, 2.0, 5.0], [-2.0, -0.5, 3.0, 4.0],
                       [0.0, -1.0, 0.5, 0.25], [0.0, 0.0, -7.0, 0.75]]]])
    for a, b in zip(reference(feed), compiled(feed)):
        np.testing.assert_array_equal(b, a)


def test_pool_of_monotone_declines_when_the_activation_has_another_use():
    x = sg.placeholder("x", (2, 3, 6, 6))
    r = sg.relu(x)
    _, report = sg.simplify([sg.max_pool2d(r, 2), sg.sum(r)], report=True)
    assert "pool_of_monotone" not in report.rules  # relu(x) is computed anyway: moving it adds work


@pytest.mark.parametrize("build", [
    lambda x: sg.max_pool2d(sg.sin(x), 2),  # not monotone
    lambda x: sg.max_pool2d(sg.prelu(x, sg.placeholder("slope", (3, 1, 1))), 2),  # the slope may be negative
    lambda x: sg.avg_pool2d(sg.relu(x), 2),  # relu does not commute with a mean
    lambda x: sg.max_pool2d(sg.elementwise(lambda v: v ** 3, name="relu")(x), 2),  # a user's op named relu
], ids=["sin", "prelu", "avg_pool", "user_op"])
def test_pool_of_monotone_matches_only_monotone_builtin_activations(build):
    x = sg.placeholder("x", (2, 3, 6, 6))
    _, report = sg.simplify(build(x), report=True)
    assert "pool_of_monotone" not in report.rules


@pytest.mark.parametrize("bias_shape, swapped", [((3, 1, 1), False), ((1, 3, 1, 1), True)], ids=["O11", "1O11_first"])
def test_conv_bias_fuses_a_per_channel_add_and_keeps_values_and_gradients(bias_shape, swapped, rng, as_written):
    x, w, b = sg.placeholder("x", (2, 2, 5, 5)), sg.placeholder("w", (3, 2, 3, 3)), sg.placeholder("b", bias_shape)
    y = sg.conv2d(x, w, padding=1)
    z = sg.tanh(b + y if swapped else y + b)
    cost = sg.sum(z * z)
    outputs = [z, *sg.grad(cost, [x, w, b])]
    with as_written:
        reference = codegen.compile([x, w, b], [z, *sg.grad(cost, [x, w, b])], simplify=False)
    simplified, report = sg.simplify(outputs, report=True)
    assert report.rules["conv_bias"] >= 1
    assert not any(n.op.name == "add" and any(i.op.name == "conv2d" for i in n.inputs) for n in sg.topo_sort(simplified))
    feed = [rng.normal(size=v.shape) for v in (x, w, b)]
    for a, e in zip(codegen.compile([x, w, b], simplified, simplify=False)(*feed), reference(*feed)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("build", [
    lambda x, w, b: sg.conv2d(x, w) + b.reshape((1, 3, 1)),  # varies along H': not a bias
    lambda x, w, b: [(c := sg.conv2d(x, w)) + sg.reshape(b, (3, 1, 1)), c],  # the conv is wanted too
    lambda x, w, b: sg.conv2d(x, w, bias=b) + sg.reshape(b, (3, 1, 1)),  # already has a bias
], ids=["not_per_channel", "other_use", "has_bias"])
def test_conv_bias_declines(build):
    x, w, b = sg.placeholder("x", (2, 2, 5, 5)), sg.placeholder("w", (3, 2, 3, 3)), sg.placeholder("b", (3,))
    y = build(x, w, b)
    _, report = sg.simplify(y if isinstance(y, list) else [y], report=True)
    assert "conv_bias" not in report.rules


def cnn_train_step(rng, activation=sg.relu):
    x = sg.placeholder("x", shape=(8, 3, 16, 16))
    y = sg.placeholder("y", shape=(8,), dtype="int64")
    model = nn.Sequential([
        nn.Conv2d(8, 3, padding=1, init=init.he_normal(seed=0)), activation, nn.MaxPool2d(2),
        nn.Conv2d(16, 3, padding=1, init=init.he_normal(seed=1)), activation, nn.MaxPool2d(2),
        nn.Flatten(), nn.Dense(10, init=init.glorot_uniform(seed=2)),
    ])
    for p in model.parameters:
        p.value = rng.normal(size=p.shape) * 0.3  # nonzero biases too
    loss = sg.softmax_cross_entropy(model(x), y)
    return [x, y], loss, model.parameters


@pytest.mark.parametrize("activation", [sg.relu, sg.tanh], ids=["relu", "tanh"])
def test_a_cnn_train_step_runs_its_activations_on_pooled_values(activation, rng, as_written):
    inputs, loss, params = cnn_train_step(rng, activation)
    with as_written:
        before_graph = sg.simplify([loss, *sg.grad(loss, params)], fuse=False, rule_sets=without_conv_rules())
        reference = codegen.compile(inputs, [loss, *sg.grad(loss, params)], simplify=False)
    outs = [loss, *sg.grad(loss, params)]
    after_graph, report = sg.simplify(outs, fuse=False, report=True)
    assert report.rules["pool_of_monotone"] == 2  # the loss's own forward, merged with the gradient's
    name = activation.__name__

    def activation_sizes(graph):
        return sorted(int(np.prod(n.shape)) for n in sg.topo_sort(graph) if n.op.name == name)

    assert activation_sizes(before_graph) == [8 * 16 * 8 * 8, 8 * 8 * 16 * 16]
    assert activation_sizes(after_graph) == [8 * 16 * 4 * 4, 8 * 8 * 8 * 8]  # k² = 4 times fewer values each
    assert sg.count_ops(after_graph)["max_pool2d"] == sg.count_ops(before_graph)["max_pool2d"] == 2
    saved = graph_flops(before_graph) - graph_flops(after_graph)
    # forward: relu (1 flop a value) on 3/4 fewer values; backward: its derivative, likewise
    assert saved > 0.75 * 2 * (8 * 8 * 16 * 16 + 8 * 16 * 8 * 8), (graph_flops(before_graph), graph_flops(after_graph))

    feeds = [distinct(rng, (8, 3, 16, 16)), rng.integers(0, 10, 8)]
    for a, b in zip(reference(*feeds), codegen.compile(inputs, outs)(*feeds)):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=0)
