"""symgraph.regularize: penalty terms, gradient clipping and parameter averaging, compiled and
checked against NumPy (and PyTorch's conventions: weight_decay, clip_grad_norm_)."""

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph import regularize


@pytest.fixture
def weights(rng):
    W = sg.parameter("W", value=rng.normal(size=(3, 4)))
    b = sg.parameter("b", value=rng.normal(size=4))
    return W, b


def test_l2_penalty_value_and_gradient(weights):
    W, b = weights
    penalty = regularize.l2_penalty([W, b], 0.3)
    assert penalty.shape == ()
    value, gW, gb = codegen.compile([], [penalty, *sg.grad(penalty, [W, b])])()
    assert value == pytest.approx(0.15 * ((W.value**2).sum() + (b.value**2).sum()))
    np.testing.assert_allclose(gW, 0.3 * W.value, rtol=1e-12)  # = PyTorch's weight_decay=0.3
    np.testing.assert_allclose(gb, 0.3 * b.value, rtol=1e-12)


def test_l2_penalty_in_sgd_matches_torch_weight_decay(rng, weights):
    W, _ = weights
    x = sg.placeholder("x", shape=("batch", 3))
    data_loss = sg.square(x @ W).mean()
    lr, wd = 0.1, 0.01
    loss = data_loss + regularize.l2_penalty(W, wd)
    step = codegen.compile([x], loss, updates={W: W - lr * sg.grad(loss, W)})
    xb = rng.normal(size=(5, 3))
    w0 = W.value.copy()
    data_grad = 2 * xb.T @ (xb @ w0) / (5 * 4)
    step(xb)
    np.testing.assert_allclose(W.value, w0 - lr * (data_grad + wd * w0), rtol=1e-12)  # torch.optim.SGD formula


def test_l1_penalty_value_and_gradient(weights):
    W, b = weights
    penalty = regularize.l1_penalty([W, b], 0.2)
    value, gW, gb = codegen.compile([], [penalty, *sg.grad(penalty, [W, b])])()
    assert value == pytest.approx(0.2 * (np.abs(W.value).sum() + np.abs(b.value).sum()))
    np.testing.assert_allclose(gW, 0.2 * np.sign(W.value))
    np.testing.assert_allclose(gb, 0.2 * np.sign(b.value))


def _clip_reference(grads, max_norm, eps=1e-6):
    norm = np.sqrt(sum((g**2).sum() for g in grads))
    return [g * min(1.0, max_norm / (norm + eps)) for g in grads], norm


@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_by_global_norm(rng, max_norm):
    a = sg.placeholder("a", shape=(3, 4))
    b = sg.placeholder("b", shape=(4,))
    clipped = regularize.clip_by_global_norm([a, b], max_norm)
    norm = regularize.global_norm([a, b])
    av, bv = rng.normal(size=(3, 4)), rng.normal(size=4)
    ca, cb, n = codegen.compile([a, b], [*clipped, norm])(av, bv)
    (ra, rb), rn = _clip_reference([av, bv], max_norm)
    assert n == pytest.approx(rn)
    np.testing.assert_allclose(ca, ra, rtol=1e-12)
    np.testing.assert_allclose(cb, rb, rtol=1e-12)
    if max_norm < rn:  # scaled down to the bound, directions kept
        assert np.sqrt((ca**2).sum() + (cb**2).sum()) == pytest.approx(max_norm, rel=1e-5)
    else:  # small gradients come back unchanged, exactly
        np.testing.assert_array_equal(ca, av)
        np.testing.assert_array_equal(cb, bv)


def test_clip_by_global_norm_on_gradients_before_the_update(rng, weights):
    W, b = weights
    x = sg.placeholder("x", shape=("batch", 3))
    loss = sg.square(x @ W + b - 10.0).mean()
    grads = sg.grad(loss, [W, b])
    clipped = regularize.clip_by_global_norm(grads, 1.0)
    f = codegen.compile([x], [*grads, *clipped])
    gW, gb, cW, cb = f(rng.normal(size=(6, 3)))
    (rW, rb), norm = _clip_reference([gW, gb], 1.0)
    assert norm > 1.0
    np.testing.assert_allclose(cW, rW, rtol=1e-10)
    np.testing.assert_allclose(cb, rb, rtol=1e-10)


def test_single_node_in_single_node_out():
    g = sg.placeholder("g", shape=(3,))
    assert isinstance(regularize.clip_by_global_norm(g, 1.0), sg.Node)
    assert isinstance(regularize.clip_by_value(g, -1.0, 1.0), sg.Node)
    out = codegen.compile([g], regularize.clip_by_global_norm(g, 1.0))(np.array([3.0, 4.0, 0.0]))
    np.testing.assert_allclose(out, np.array([0.6, 0.8, 0.0]), rtol=1e-5)


def test_clip_by_value(rng):
    a = sg.placeholder("a", shape=(5, 6))
    b = sg.placeholder("b", shape=(2,))
    ca, cb = codegen.compile([a, b], regularize.clip_by_value([a, b], -0.5, 0.25))(
        av := rng.normal(size=(5, 6)), bv := np.array([-3.0, 0.1])
    )
    np.testing.assert_array_equal(ca, np.clip(av, -0.5, 0.25))
    np.testing.assert_array_equal(cb, np.clip(bv, -0.5, 0.25))


def test_ema_updates_average_the_values_before_the_step(rng, weights):
    W, b = weights
    averages, ema_updates = regularize.ema([W, b], decay=0.9)
    assert [a.name for a in averages] == ["W_ema", "b_ema"]
    assert not any(a.op.trainable for a in averages)
    np.testing.assert_array_equal(averages[0].value, W.value)
    step = codegen.compile([], [], updates={W: W + 1.0, b: b * 2.0, **ema_updates})
    ref_W, ref_b, w, bb = W.value.copy(), b.value.copy(), W.value.copy(), b.value.copy()
    for _ in range(3):
        step()
        ref_W, ref_b = 0.9 * ref_W + 0.1 * w, 0.9 * ref_b + 0.1 * bb  # simultaneous: the old values
        w, bb = w + 1.0, bb * 2.0
        np.testing.assert_allclose(averages[0].value, ref_W, rtol=1e-12)
        np.testing.assert_allclose(averages[1].value, ref_b, rtol=1e-12)
    np.testing.assert_allclose(W.value, w)


def test_ema_with_updates_averages_the_values_after_the_step(rng, weights):
    W, _ = weights
    x = sg.placeholder("x", shape=("batch", 3))
    loss = sg.square(x @ W - 1.0).mean()
    updates = {W: W - 0.1 * sg.grad(loss, W)}
    (avg,), ema_updates = regularize.ema([W], decay=0.5, updates=updates)
    step = codegen.compile([x], loss, updates={**updates, **ema_updates})
    ref = W.value.copy()
    for _ in range(3):
        step(rng.normal(size=(4, 3)))
        ref = 0.5 * ref + 0.5 * W.value
        np.testing.assert_allclose(avg.value, ref, rtol=1e-12)


def test_bad_arguments(weights):
    W, _ = weights
    with pytest.raises(ValueError, match=r"clip_by_global_norm: max_norm must be > 0, got 0\.0"):
        regularize.clip_by_global_norm([W], 0.0)
    with pytest.raises(ValueError, match=r"clip_by_value: need low <= high, got low=1\.0, high=-1\.0"):
        regularize.clip_by_value([W], 1.0, -1.0)
    with pytest.raises(ValueError, match=r"ema: decay must be in \[0, 1\], got 1\.5"):
        regularize.ema([W], decay=1.5)
    with pytest.raises(TypeError, match=r"ema: expected parameter leaves, got multiply node \(3, 4\) at position 0"):
        regularize.ema([W * 2.0], decay=0.9)
    with pytest.raises(TypeError, match="l2_penalty: expected graph nodes, got ndarray at position 0"):
        regularize.l2_penalty([np.ones(3)], 0.1)
    with pytest.raises(ValueError, match="l2_penalty: got no nodes"):
        regularize.l2_penalty([], 0.1)
