"""symgraph.nn: layers build graph nodes; training and evaluation graphs from one model definition.

Checked against NumPy references (and torch.nn.BatchNorm1d when PyTorch is installed); gradients
through the layers against central finite differences.
"""

import re

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph import init, nn

# -- NumPy references ---------------------------------------------------------------


def bn_train_ref(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    """torch.nn.BatchNorm1d in training mode (features on the last axis): output and new running stats."""
    axes = tuple(range(x.ndim - 1))
    n = int(np.prod(x.shape[:-1]))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    y = gamma * (x - mean) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    return y, new_mean, new_var


def bn_eval_ref(x, gamma, beta, running_mean, running_var, eps=1e-5):
    return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta


def relu(z):
    return np.maximum(z, 0.0)


def finite_difference_check(f, params, args, eps=1e-6, rtol=1e-5, atol=1e-8):
    """f(*args) returns [loss, *grads of params]; compare each grad with central differences."""
    _, *grads = f(*args)
    for p, g in zip(params, grads):
        v0 = p.value.copy()
        numeric = np.zeros_like(v0)
        for idx in np.ndindex(v0.shape):
            v = v0.copy()
            v[idx] += eps
            p.value = v
            up = f(*args)[0]
            v[idx] -= 2 * eps
            p.value = v
            down = f(*args)[0]
            numeric[idx] = (up - down) / (2 * eps)
        p.value = v0
        np.testing.assert_allclose(g, numeric, rtol=rtol, atol=atol, err_msg=p.name)


def set_random_values(leaves, rng, positive=False):
    for leaf in leaves:
        v = rng.normal(size=leaf.shape)
        leaf.value = np.abs(v) + 0.5 if positive else v


# -- Dense -------------------------------------------------------------------------


def test_dense_forward_names_and_shapes(rng):
    x = sg.placeholder("x", shape=("batch", 3))
    layer = nn.Dense(4, activation=sg.tanh, init=init.glorot_uniform(seed=0))
    assert layer.parameters == []  # leaves are made on the first call
    out = layer(x)
    W, b = layer.parameters
    assert (W.name, W.shape, b.name, b.shape) == ("dense1_W", (3, 4), "dense1_b", (4,))
    np.testing.assert_array_equal(W.value, init.glorot_uniform(seed=0)((3, 4)))
    np.testing.assert_array_equal(b.value, np.zeros(4))
    assert out.shape == ("batch", 4)
    b.value = rng.normal(size=4)
    xb = rng.normal(size=(5, 3))
    np.testing.assert_allclose(codegen.evaluate(out, {x: xb}), np.tanh(xb @ W.value + b.value), rtol=1e-12)
    assert layer.state == [] and layer.state_updates == {}
    assert layer(x, training=True) is out  # same leaves, same (interned) nodes; mode does not matter
    assert layer.parameters == [W, b]


def test_dense_without_bias_and_batched_leading_axes(rng):
    x = sg.placeholder("x", shape=(2, 3, 5))
    layer = nn.Dense(2, use_bias=False, name="proj")
    out = layer(x)
    (W,) = layer.parameters
    assert W.name == "proj_W"
    xb = rng.normal(size=(2, 3, 5))
    np.testing.assert_allclose(codegen.evaluate(out, {x: xb}), xb @ W.value, rtol=1e-12)


def test_dense_errors():
    with pytest.raises(ValueError, match="Dense: units must be a positive int, got 0"):
        nn.Dense(0)
    with pytest.raises(TypeError, match=re.escape("Dense: activation must be a callable (such as sg.relu) "
                                                  "or None, got 'relu'")):
        nn.Dense(3, activation="relu")
    layer = nn.Dense(3)
    with pytest.raises(ValueError, match="static"):
        layer(sg.placeholder("x", shape=(2, "features")))
    layer(sg.placeholder("x", shape=(2, 4)))
    with pytest.raises(ValueError, match="last dimension 4"):
        layer(sg.placeholder("x2", shape=(2, 5)))
    with pytest.raises(TypeError, match="Dense 'dense1': call it on a graph node, got ndarray"):
        layer(np.ones((2, 4)))


def test_layer_names_are_numbered_per_class_and_restart_in_a_fresh_graph():
    layers = [nn.Dense(2), nn.BatchNorm(), nn.Dense(2), nn.Dropout(0.1), nn.BatchNorm(name="bn")]
    assert [la.name for la in layers] == ["dense1", "batchnorm1", "dense2", "dropout1", "bn"]
    with sg.fresh_graph():
        assert nn.Dense(2).name == "dense1"
    with pytest.raises(TypeError, match="Dense: name must be a non-empty str, got ''"):
        nn.Dense(2, name="")


# -- BatchNorm ----------------------------------------------------------------------


def test_batchnorm_training_matches_reference_and_updates_running_stats(rng):
    x = sg.placeholder("x", shape=("batch", 5))
    bn = nn.BatchNorm(momentum=0.2, eps=1e-3)
    y = bn(x, training=True)
    gamma, beta = bn.parameters
    running_mean, running_var = bn.state
    assert [leaf.name for leaf in bn.leaves] == [
        "batchnorm1_gamma", "batchnorm1_beta", "batchnorm1_running_mean", "batchnorm1_running_var"]
    np.testing.assert_array_equal(gamma.value, np.ones(5))
    np.testing.assert_array_equal(running_var.value, np.ones(5))
    assert set(bn.state_updates) == {running_mean, running_var}
    set_random_values([gamma, beta, running_mean], rng)
    set_random_values([running_var], rng, positive=True)
    step = codegen.compile([x], y, updates=bn.state_updates)
    rm, rv = running_mean.value.copy(), running_var.value.copy()
    for n in (4, 7):  # the batch size is read at run time: n / (n - 1) changes
        xb = rng.normal(size=(n, 5)) * 3 + 1
        out = step(xb)
        ref, rm, rv = bn_train_ref(xb, gamma.value, beta.value, rm, rv, momentum=0.2, eps=1e-3)
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(running_mean.value, rm, rtol=1e-12)
        np.testing.assert_allclose(running_var.value, rv, rtol=1e-12)


def test_batchnorm_eval_uses_running_stats_and_leaves_them_alone(rng):
    x = sg.placeholder("x", shape=("batch", 3))
    bn = nn.BatchNorm()
    train_out = bn(x, training=True)
    train_updates = bn.state_updates
    eval_out = bn(x, training=False)
    assert eval_out is not train_out
    assert bn.state_updates == train_updates  # an evaluation call records nothing
    set_random_values(bn.parameters, rng)
    running_mean, running_var = bn.state
    running_mean.value = rng.normal(size=3)
    running_var.value = rng.uniform(0.5, 2.0, size=3)
    before = [leaf.value.copy() for leaf in bn.leaves]
    predict = codegen.compile([x], eval_out)
    xb = rng.normal(size=(6, 3))
    out1 = predict(xb)
    gamma, beta = bn.parameters
    np.testing.assert_allclose(out1, bn_eval_ref(xb, gamma.value, beta.value, running_mean.value,
                                                 running_var.value), rtol=1e-12)
    np.testing.assert_array_equal(predict(xb), out1)  # deterministic
    for leaf, value in zip(bn.leaves, before):
        np.testing.assert_array_equal(leaf.value, value)
    # per-example: evaluation does not mix the rows of a batch
    np.testing.assert_allclose(predict(xb[:1]), out1[:1], rtol=1e-12)


def test_batchnorm_over_every_axis_but_the_features(rng):
    x = sg.placeholder("x", shape=(4, 3, 2))
    bn = nn.BatchNorm()
    f = codegen.compile([x], bn(x, training=True), updates=bn.state_updates)
    xb = rng.normal(size=(4, 3, 2))
    ref, rm, rv = bn_train_ref(xb, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))
    np.testing.assert_allclose(f(xb), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.state[1].value, rv, rtol=1e-12)


def test_batchnorm_needs_the_mode_and_more_than_one_value():
    x = sg.placeholder("x", shape=("batch", 3))
    with pytest.raises(TypeError, match="training=True or training=False"):
        nn.BatchNorm()(x)
    with pytest.raises(TypeError, match="training=True or training=False"):
        nn.Sequential([nn.Dense(3), nn.BatchNorm()])(x)
    with pytest.raises(ValueError, match="more than one value"):
        nn.BatchNorm()(sg.placeholder("one", shape=(1, 3)), training=True)
    with pytest.raises(ValueError, match=r"BatchNorm: momentum must be in \[0, 1\], got 2\.0"):
        nn.BatchNorm(momentum=2.0)


def bn2d_train_ref(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    """torch.nn.BatchNorm2d in training mode: per channel (axis 1), statistics over N, H and W."""
    y, new_mean, new_var = bn_train_ref(np.moveaxis(x, 1, -1), gamma, beta, running_mean, running_var, momentum, eps)
    return np.moveaxis(y, -1, 1), new_mean, new_var


def test_batchnorm2d_normalizes_each_channel_over_batch_and_space(rng):
    x = sg.placeholder("x", shape=("batch", 3, 4, 5))
    bn = nn.BatchNorm2d(momentum=0.2, eps=1e-3)
    y = bn(x, training=True)
    assert [leaf.name for leaf in bn.leaves] == [
        "batchnorm2d1_gamma", "batchnorm2d1_beta", "batchnorm2d1_running_mean", "batchnorm2d1_running_var"]
    assert all(leaf.shape == (3,) for leaf in bn.leaves)
    gamma, beta = bn.parameters
    set_random_values([gamma, beta], rng)
    cost = sg.sum(y * sg.constant(rng.normal(size=(2, 3, 4, 5))))
    step = codegen.compile([x], [y, cost, *sg.grad(cost, [x, gamma, beta])], updates=bn.state_updates)
    predict = codegen.compile([x], bn(x, training=False))
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(2):
        xb = rng.normal(size=(2, 3, 4, 5)) * 2 + 0.5
        out, *_ = step(xb)
        ref, rm, rv = bn2d_train_ref(xb, gamma.value, beta.value, rm, rv, momentum=0.2, eps=1e-3)
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.state[0].value, rm, rtol=1e-12)
        np.testing.assert_allclose(bn.state[1].value, rv, rtol=1e-12)
    xb = rng.normal(size=(1, 3, 4, 5))  # evaluation: the running statistics, one image at a time
    expected = np.moveaxis(bn_eval_ref(np.moveaxis(xb, 1, -1), gamma.value, beta.value, rm, rv, eps=1e-3), -1, 1)
    np.testing.assert_allclose(predict(xb), expected, rtol=1e-12)
    # gradients through the batch statistics, against central differences (x as a parameter)
    xp = sg.parameter("xp", value=rng.normal(size=(2, 3, 2, 2)))
    bn2 = nn.BatchNorm2d()
    loss = sg.sum(sg.tanh(bn2(xp, training=True)) * sg.constant(rng.normal(size=(2, 3, 2, 2))))
    set_random_values(bn2.parameters, rng)
    f = codegen.compile([], [loss, *sg.grad(loss, [xp, *bn2.parameters])])
    finite_difference_check(lambda: f(), [xp, *bn2.parameters], [])


def test_batchnorm2d_refuses_what_is_not_an_image_batch():
    with pytest.raises(ValueError, match=r"BatchNorm2d 'batchnorm2d1': expects N×C×H×W inputs with a static C, got shape \(4, 3\)"):
        nn.BatchNorm2d()(sg.placeholder("x", (4, 3)), training=True)
    bn = nn.BatchNorm2d(name="bn")
    bn(sg.placeholder("x", (2, 3, 4, 4)), training=True)
    with pytest.raises(ValueError, match=r"BatchNorm2d 'bn': expects N×3×H×W inputs, got shape \(2, 5, 4, 4\)"):
        bn(sg.placeholder("y", (2, 5, 4, 4)), training=True)
    with pytest.raises(ValueError, match=r"BatchNorm2d 'batchnorm2d\d+': training needs more than one value per feature"):
        nn.BatchNorm2d()(sg.placeholder("one", (1, 3, 1, 1)), training=True)
    with pytest.raises(ValueError, match=r"BatchNorm2d: momentum must be in \[0, 1\], got -1"):
        nn.BatchNorm2d(momentum=-1)


def test_batchnorm2d_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = sg.placeholder("x", shape=("batch", 4, 3, 3))
    bn = nn.BatchNorm2d(momentum=0.3, eps=1e-4)
    y = bn(x, training=True)
    gamma, beta = bn.parameters
    set_random_values([gamma, beta], rng)
    weights = rng.normal(size=(5, 4, 3, 3))
    loss = (y * sg.constant(weights)).sum()
    step = codegen.compile([x], [y, *sg.grad(loss, [x, gamma, beta])], updates=bn.state_updates)
    ref = torch.nn.BatchNorm2d(4, momentum=0.3, eps=1e-4).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(gamma.value))
        ref.bias.copy_(torch.from_numpy(beta.value))
    for _ in range(2):
        xb = rng.normal(size=(5, 4, 3, 3)) * 2 + 0.5
        out, gx, g_gamma, g_beta = step(xb)
        ref.zero_grad()
        xt = torch.from_numpy(xb).requires_grad_()
        t_out = ref(xt)
        (t_out * torch.from_numpy(weights)).sum().backward()
        np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
        for mine, theirs in [(gx, xt.grad), (g_gamma, ref.weight.grad), (g_beta, ref.bias.grad),
                             (bn.state[0].value, ref.running_mean), (bn.state[1].value, ref.running_var)]:
            np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_batchnorm_matches_torch_batchnorm1d(rng):
    torch = pytest.importorskip("torch")
    x = sg.placeholder("x", shape=("batch", 4))
    bn = nn.BatchNorm(momentum=0.3, eps=1e-4)
    y = bn(x, training=True)
    gamma, beta = bn.parameters
    set_random_values([gamma, beta], rng)
    weights = rng.normal(size=(6, 4))
    loss = (y * sg.constant(weights)).sum()
    step = codegen.compile([x], [y, *sg.grad(loss, [gamma, beta])], updates=bn.state_updates)
    predict = codegen.compile([x], bn(x, training=False))

    ref = torch.nn.BatchNorm1d(4, momentum=0.3, eps=1e-4).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(gamma.value))
        ref.bias.copy_(torch.from_numpy(beta.value))
    for _ in range(2):
        xb = rng.normal(size=(6, 4)) * 2 + 0.5
        out, g_gamma, g_beta = step(xb)
        ref.train()
        ref.zero_grad()
        t_out = ref(torch.from_numpy(xb))
        (t_out * torch.from_numpy(weights)).sum().backward()
        np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g_gamma, ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g_beta, ref.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.state[0].value, ref.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(bn.state[1].value, ref.running_var.numpy(), rtol=1e-12)
    ref.eval()
    xb = rng.normal(size=(3, 4))
    with torch.no_grad():
        np.testing.assert_allclose(predict(xb), ref(torch.from_numpy(xb)).numpy(), rtol=1e-10, atol=1e-12)


# -- Dropout ------------------------------------------------------------------------


def test_dropout_training_keep_rate_scaling_and_fresh_masks():
    x = sg.placeholder("x", shape=(200, 500))
    drop = nn.Dropout(0.3, seed=1)
    out = drop(x, training=True)
    (key,) = drop.state
    assert key.name == "dropout1_key" and drop.parameters == []
    assert list(drop.state_updates) == [key]
    step = codegen.compile([x], out, updates=drop.state_updates)
    ones = np.ones((200, 500))
    first = step(ones)
    kept = first != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)  # 100,000 draws: 0.01 is 7 standard errors
    np.testing.assert_allclose(first[kept], 1 / 0.7, rtol=1e-12)  # inverted dropout scaling
    assert first.mean() == pytest.approx(1.0, abs=0.015)  # expectation preserved
    np.testing.assert_array_equal(key.value, [1, 1])  # the counter advanced
    second = step(ones)
    assert (second != 0).mean() == pytest.approx(0.7, abs=0.01)
    assert not np.array_equal(first != 0, second != 0)


def test_dropout_masks_repeat_for_the_same_seed_and_differ_across_seeds():
    x = sg.placeholder("x", shape=(20, 30))
    ones = np.ones((20, 30))

    def masks(seed, calls=2):
        drop = nn.Dropout(0.5, seed=seed)
        step = codegen.compile([x], drop(x, training=True), updates=drop.state_updates)
        return [step(ones) for _ in range(calls)]

    a, b = masks(3), masks(3)  # two freshly built layers (dropout1, dropout2) with one seed
    for ma, mb in zip(a, b):
        np.testing.assert_array_equal(ma, mb)
    with sg.fresh_graph():
        for ma, mc in zip(a, masks(3)):
            np.testing.assert_array_equal(ma, mc)
    assert not np.array_equal(a[0], masks(4)[0])


def test_dropout_is_the_identity_in_eval_and_at_rate_zero():
    x = sg.placeholder("x", shape=("batch", 3))
    drop = nn.Dropout(0.5)
    assert drop(x, training=False) is x
    assert nn.Dropout(0.0)(x, training=True) is x
    with pytest.raises(TypeError, match="training=True or training=False"):
        drop(x)
    with pytest.raises(ValueError, match=r"Dropout: rate must be in \[0, 1\), got 1\.0"):
        nn.Dropout(1.0)


def test_dropout_gradient_is_the_mask(rng):
    x = sg.placeholder("x", shape=(4, 6))
    drop = nn.Dropout(0.5, seed=2)
    out = drop(x, training=True)
    c = rng.normal(size=(4, 6))
    g = sg.grad((out * sg.constant(c)).sum(), x)
    value, grad_x = codegen.compile([x], [out, g])(np.ones((4, 6)))
    np.testing.assert_allclose(grad_x, value * c, rtol=1e-12)  # value is the scaled mask here


# -- models: Sequential, train and eval from one definition ----------------------------------


def build_model():
    return nn.Sequential([
        nn.Dense(5, activation=sg.tanh, init=init.glorot_uniform(seed=0)),
        nn.BatchNorm(),
        nn.Dropout(0.4, seed=0),
        nn.Dense(3, init=init.glorot_uniform(seed=1)),
    ])


def numpy_model(model, xb, mask=None):
    """Evaluation-mode reference (dropout off unless a mask is given; then training-mode batch norm)."""
    W1, b1, gamma, beta, W2, b2 = (p.value for p in model.parameters)
    running_mean, running_var, _ = (s.value for s in model.state)
    h = np.tanh(xb @ W1 + b1)
    if mask is None:
        h = bn_eval_ref(h, gamma, beta, running_mean, running_var)
    else:
        h = bn_train_ref(h, gamma, beta, running_mean, running_var)[0] * mask
    return h @ W2 + b2


def test_sequential_exposes_parameters_state_and_updates(rng):
    x = sg.placeholder("x", shape=("batch", 4))
    model = build_model()
    assert model.parameters == [] and model.state == []
    model(x, training=True)
    assert [p.name for p in model.parameters] == [
        "dense1_W", "dense1_b", "batchnorm1_gamma", "batchnorm1_beta", "dense2_W", "dense2_b"]
    assert [s.name for s in model.state] == ["batchnorm1_running_mean", "batchnorm1_running_var", "dropout1_key"]
    assert model.leaves == sorted(model.parameters + model.state, key=lambda n: n.serial)
    assert set(model.state_updates) == set(model.state)
    assert all(p.op.trainable for p in model.parameters)


def test_eval_graph_is_deterministic_and_equals_the_network_without_dropout(rng):
    x = sg.placeholder("x", shape=("batch", 4))
    model = build_model()
    model(x, training=True)
    eval_out = model(x, training=False)
    assert "random_uniform" not in sg.count_ops(eval_out)
    set_random_values(model.parameters, rng)
    model.state[0].value = rng.normal(size=5)
    model.state[1].value = rng.uniform(0.5, 2.0, size=5)
    predict = codegen.compile([x], eval_out)
    xb = rng.normal(size=(7, 4))
    out = predict(xb)
    np.testing.assert_array_equal(predict(xb), out)
    np.testing.assert_allclose(out, numpy_model(model, xb), rtol=1e-10)


def test_training_forward_matches_numpy_with_the_drawn_mask(rng):
    x = sg.placeholder("x", shape=("batch", 4))
    model = build_model()
    train_out = model(x, training=True)
    drop = model.layers[2]
    mask_node = next(n for n in sg.topo_sort([train_out]) if n.name == "dropout1_mask")
    f = codegen.compile([x], [train_out, mask_node])
    xb = rng.normal(size=(8, 4))
    out, mask = f(xb)
    assert set(np.unique(mask)) <= {0.0, 1 / 0.6}
    np.testing.assert_allclose(out, numpy_model(model, xb, mask=mask), rtol=1e-10, atol=1e-12)
    assert drop.state[0].value.tolist() == [0, 0]  # compiled without updates: no state changes


def test_gradients_through_dense_batchnorm_dropout_match_finite_differences(rng):
    x = sg.placeholder("x", shape=("batch", 3))
    t = sg.placeholder("t", shape=("batch", 2))
    model = nn.Sequential([
        nn.Dense(4, activation=sg.tanh, init=init.glorot_normal(seed=3)),
        nn.BatchNorm(),
        nn.Dropout(0.25, seed=5),
        nn.Dense(2, init=init.glorot_normal(seed=4)),
    ])
    loss = sg.mse(model(x, training=True), t)
    set_random_values(model.parameters, rng)
    f = codegen.compile([x, t], [loss, *sg.grad(loss, model.parameters)])  # no updates: a fixed mask
    finite_difference_check(f, model.parameters, (rng.normal(size=(6, 3)), rng.normal(size=(6, 2))))


def test_gradients_through_batchnorm_eval_match_finite_differences(rng):
    x = sg.placeholder("x", shape=("batch", 3))
    model = nn.Sequential([nn.Dense(3, activation=sg.relu, init=init.he_normal(seed=0)), nn.BatchNorm()])
    out = model(x, training=False)
    model.state[1].value = rng.uniform(0.5, 2.0, size=3)
    loss = (sg.sigmoid(out) * sg.constant(rng.normal(size=(5, 3)))).sum()
    f = codegen.compile([x], [loss, *sg.grad(loss, model.parameters)])
    finite_difference_check(f, model.parameters, (rng.normal(size=(5, 3)),))


def test_one_sgd_train_step_and_shared_leaves(rng):
    x = sg.placeholder("x", shape=("batch", 4))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    model = build_model()
    loss = sg.softmax_cross_entropy(model(x, training=True), y)
    eval_logits = model(x, training=False)
    params = model.parameters
    grads = sg.grad(loss, params)
    updates = {p: p - 0.1 * g for p, g in zip(params, grads)}
    updates.update(model.state_updates)
    train_step = codegen.compile([x, y], loss, updates=updates, name="train_step")
    loss_and_grads = codegen.compile([x, y], [loss, *grads])
    predict = codegen.compile([x], eval_logits)

    source = train_step.source
    for name in ("def train_step(", "dense1_W", "batchnorm1_running_var", "dropout1_key", "grad_dense2_W"):
        assert name in source

    xb, yb = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    before = {leaf: leaf.value.copy() for leaf in model.leaves}
    ref_loss, *ref_grads = loss_and_grads(xb, yb)  # the same state, so the same dropout mask
    hidden = np.tanh(xb @ before[params[0]] + before[params[1]])
    running = [before[s] for s in model.state[:2]]
    _, ref_mean, ref_var = bn_train_ref(hidden, before[params[2]], before[params[3]], *running)
    assert train_step(xb, yb) == pytest.approx(ref_loss, rel=1e-12)
    for p, g in zip(params, ref_grads):  # simultaneous updates from the values before the step
        np.testing.assert_allclose(p.value, before[p] - 0.1 * g, rtol=1e-12, atol=1e-15)
    running_mean, running_var, key = model.state
    np.testing.assert_allclose(running_mean.value, ref_mean, rtol=1e-12)
    np.testing.assert_allclose(running_var.value, ref_var, rtol=1e-12)
    np.testing.assert_array_equal(key.value, [0, 1])
    # the evaluation function reads the same, now updated, leaves
    np.testing.assert_allclose(predict(xb), numpy_model(model, xb), rtol=1e-10)


def test_sequential_takes_plain_functions_and_nests():
    x = sg.placeholder("x", shape=("batch", 3))
    inner = nn.Sequential([nn.Dense(4), sg.relu])
    model = nn.Sequential([inner, nn.Dropout(0.5), nn.Dense(2)])
    model(x, training=True)
    assert [p.name for p in model.parameters] == ["dense1_W", "dense1_b", "dense2_W", "dense2_b"]
    assert [s.name for s in model.state] == ["dropout1_key"]
    assert inner(x) is inner(x, training=False)  # no mode-dependent layer inside: training may be left out
    with pytest.raises(TypeError, match="Sequential: item 1 is not a layer or a function: 3"):
        nn.Sequential([nn.Dense(2), 3])


# -- precision (issue 11: "float32 models must stay float32 end to end") -------------------


def _float32_mlp(layers: bool):
    """A float32 MLP trained with Adam: built from nn layers, or from sg.parameter with float32 values
    (dtype=None keeps them float32). Returns the compiled step, the updates and the loss."""
    x = sg.placeholder("x", ("batch", 4), dtype="float32")
    y = sg.placeholder("y", ("batch",), dtype="int64")
    if layers:
        model = nn.Sequential([nn.Dense(8, activation=sg.relu), nn.BatchNorm(), nn.Dropout(0.2, seed=1), nn.Dense(3)])
        logits = model(x, training=True)
        params, state_updates = model.parameters, model.state_updates
    else:
        rng = np.random.default_rng(0)
        W1 = sg.parameter("W1", value=rng.normal(size=(4, 8)).astype(np.float32))
        W2 = sg.parameter("W2", value=rng.normal(size=(8, 3)).astype(np.float32))
        logits, params, state_updates = sg.relu(x @ W1) @ W2, [W1, W2], {}
    loss = sg.softmax_cross_entropy(logits, y)
    updates = {**sg.optim.Adam(1e-2).updates(loss, params), **state_updates}
    return codegen.compile([x, y], loss, updates=updates), updates, loss


@pytest.mark.parametrize("layers", [True, False], ids=["nn_layers", "parameters"])
def test_a_float32_mlp_with_adam_stays_float32(layers):
    step, updates, loss = _float32_mlp(layers)
    leaves = sg.parameters_of([loss, *updates.values()], trainable=None)
    for leaf in leaves:  # the step counter is a float64 scalar by design (optim docstring); keys are ints
        want = np.float64 if leaf.name == "step" else np.int64 if leaf.name.endswith("_key") else np.float32
        assert leaf.dtype == want, leaf.name
    assert loss.dtype == np.float32 and all(v.dtype == leaf.dtype for leaf, v in updates.items())
    assert step(np.ones((5, 4), np.float32), np.arange(5) % 3).dtype == np.float32
    assert all(leaf.value.dtype == leaf.dtype for leaf in leaves)
    assert sum(leaf.dtype == np.float32 for leaf in leaves) >= 6  # parameters and Adam's moments


def test_layers_on_integer_inputs_make_float64_leaves():
    dense = nn.Dense(2)
    dense(sg.placeholder("i", ("batch", 3), dtype="int64"))
    assert dense.W.dtype == np.float64 and dense.b.dtype == np.float64


# -- PReLU, Maxout, RBF (issue 15) -----------------------------------------------------------


def prelu_ref(x, slope, axis=1):
    a = slope if slope.size == 1 else slope.reshape((-1,) + (1,) * (x.ndim - axis - 1))
    return np.where(x > 0, x, a * x)


def away_from_zero(rng, shape):
    """|x| >= 0.2: finite differences never straddle the kink at 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.5, size=shape)


@pytest.mark.parametrize("num_parameters, shape", [(1, (4, 3)), (3, (4, 3)), (1, (2, 3, 4, 5)), (3, (2, 3, 4, 5))])
def test_prelu_names_values_and_gradients_match_torch(rng, num_parameters, shape):
    torch = pytest.importorskip("torch")
    x = sg.placeholder("x", shape=("batch",) + shape[1:])
    layer = nn.PReLU(num_parameters)
    out = layer(x)
    (slope,) = layer.parameters
    assert (slope.name, slope.shape) == ("prelu1_slope", (num_parameters,))
    np.testing.assert_array_equal(slope.value, np.full(num_parameters, 0.25))
    assert out.shape == x.shape and layer.state == [] and layer.state_updates == {}
    slope.value = rng.normal(size=num_parameters)
    xb, c = away_from_zero(rng, shape), rng.normal(size=shape)
    loss = (out * sg.constant(c)).sum()
    value, g_x, g_slope = codegen.compile([x], [out, *sg.grad(loss, [x, slope])])(xb)

    ref = torch.nn.PReLU(num_parameters).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(slope.value))
    t_x = torch.from_numpy(xb).requires_grad_()
    t_out = ref(t_x)
    (t_out * torch.from_numpy(c)).sum().backward()
    np.testing.assert_allclose(value, t_out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(value, prelu_ref(xb, slope.value), rtol=1e-12)
    np.testing.assert_allclose(g_x, t_x.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g_slope, ref.weight.grad.numpy(), rtol=1e-10)


def test_prelu_gradients_match_finite_differences(rng):
    x = sg.placeholder("x", shape=(5, 3, 2))
    layer = nn.PReLU(3, init=0.1, name="act")
    loss = (layer(x) * sg.constant(rng.normal(size=(5, 3, 2)))).sum()
    assert layer.parameters[0].name == "act_slope"
    f = codegen.compile([x], [loss, *sg.grad(loss, layer.parameters)])
    finite_difference_check(f, layer.parameters, (away_from_zero(rng, (5, 3, 2)),))


def test_prelu_function_with_a_fixed_slope_is_leaky_relu(rng):
    x = sg.placeholder("x", shape=(3, 4))
    xb = rng.normal(size=(3, 4))
    a, b = codegen.evaluate([sg.prelu(x, 0.2), sg.leaky_relu(x, 0.2)], {x: xb})
    np.testing.assert_allclose(a, b, rtol=1e-15)
    assert sg.dprint(sg.prelu(x, 0.2)).count("prelu") == 1


def test_prelu_errors_name_the_layer_and_argument():
    with pytest.raises(ValueError, match="PReLU: num_parameters must be a positive int"):
        nn.PReLU(0)
    with pytest.raises(TypeError, match="PReLU: init must be a number"):
        nn.PReLU(init=sg.init.zeros())
    layer = nn.PReLU(4)
    with pytest.raises(ValueError, match=r"PReLU 'prelu1': num_parameters=4 must equal .*axis=1"):
        layer(sg.placeholder("x", shape=("batch", 3, 4)))
    with pytest.raises(sg.DTypeError, match="prelu"):
        sg.prelu(sg.placeholder("b", shape=(3,), dtype="bool"), 0.1)


def test_maxout_layer_values_names_and_gradients(rng):
    x = sg.placeholder("x", shape=("batch", 4))
    layer = nn.Maxout(3, pieces=2, init=init.glorot_normal(seed=0))
    out = layer(x)
    W, b = layer.parameters
    assert (W.name, W.shape, b.name, b.shape) == ("maxout1_W", (4, 6), "maxout1_b", (6,))
    assert out.shape == ("batch", 3) and layer(x, training=True) is out and layer.state_updates == {}
    b.value = rng.normal(size=6)
    xb = rng.normal(size=(5, 4))
    z = xb @ W.value + b.value
    np.testing.assert_allclose(codegen.evaluate(out, {x: xb}), z.reshape(5, 3, 2).max(-1), rtol=1e-12)
    loss = (out * sg.constant(rng.normal(size=(5, 3)))).sum()
    f = codegen.compile([x], [loss, *sg.grad(loss, layer.parameters)])
    finite_difference_check(f, layer.parameters, (xb,))


def test_maxout_function_and_errors():
    x = sg.placeholder("x", shape=("batch", 6))
    assert sg.maxout(x, 1) is x
    assert sg.maxout(x, 3).shape == ("batch", 2)
    with pytest.raises(ValueError, match="maxout: the last axis must be a static multiple of pieces=4"):
        sg.maxout(x, 4)
    with pytest.raises(ValueError, match="maxout: pieces must be a positive int"):
        sg.maxout(x, 0)
    with pytest.raises(ValueError, match="at most one named dimension"):
        sg.maxout(sg.placeholder("y", shape=("a", "b", 4)), 2)
    with pytest.raises(ValueError, match="Maxout: pieces must be a positive int"):
        nn.Maxout(3, pieces=0)
    with pytest.raises(ValueError, match="Maxout: units must be a positive int"):
        nn.Maxout(True)
    layer = nn.Maxout(2)
    layer(x)
    with pytest.raises(ValueError, match="Maxout 'maxout1': built for inputs with last dimension 6"):
        layer(sg.placeholder("z", shape=("batch", 5)))


def rbf_ref(x, centres, log_width):
    sq = ((x[..., None, :] - centres) ** 2).sum(-1)
    return np.exp(-sq / (2 * np.exp(log_width) ** 2))


def test_rbf_values_names_and_gradients(rng):
    x = sg.placeholder("x", shape=("batch", 3))
    layer = nn.RBF(4, width=0.5, init=init.normal(1.0, seed=0))
    out = layer(x)
    centres, log_width = layer.parameters
    assert (centres.name, centres.shape, log_width.name, log_width.shape) == (
        "rbf1_centres", (4, 3), "rbf1_log_width", (4,))
    np.testing.assert_allclose(log_width.value, np.log(0.5))
    assert out.shape == ("batch", 4) and layer.state_updates == {}
    log_width.value = rng.normal(scale=0.3, size=4)
    xb = rng.normal(size=(6, 3))
    np.testing.assert_allclose(codegen.evaluate(out, {x: xb}), rbf_ref(xb, centres.value, log_width.value),
                               rtol=1e-12)
    xb[0] = centres.value[1]  # at a centre the unit is exactly 1
    assert codegen.evaluate(out, {x: xb})[0, 1] == 1.0
    loss = (out * sg.constant(rng.normal(size=(6, 4)))).sum()
    f = codegen.compile([x], [loss, *sg.grad(loss, layer.parameters)])
    finite_difference_check(f, layer.parameters, (xb,))


def test_rbf_errors_name_the_layer_and_argument():
    with pytest.raises(ValueError, match="RBF: width must be a positive number"):
        nn.RBF(3, width=0.0)
    with pytest.raises(ValueError, match="RBF: units must be a positive int"):
        nn.RBF(-1)
    with pytest.raises(TypeError, match="RBF: init must be an initializer"):
        nn.RBF(3, init=0.5)
    layer = nn.RBF(2)
    layer(sg.placeholder("x", shape=(4, 3)))
    with pytest.raises(ValueError, match="RBF 'rbf1': built for inputs with last dimension 3"):
        layer(sg.placeholder("y", shape=(4, 2)))


def test_rbf_network_and_maxout_prelu_network_learn_xor():
    """Sequential models of the new layers fit XOR with Adam: the loss falls well below its start."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]) * 2 - 1
    Y = np.array([0, 1, 1, 0])
    models = [
        nn.Sequential([nn.RBF(4, init=init.uniform(-1.5, 1.5, seed=0)), nn.Dense(2, init=init.glorot_uniform(seed=1))]),
        nn.Sequential([nn.Maxout(4, pieces=3, init=init.glorot_uniform(seed=2)), nn.PReLU(4),
                       nn.Dense(2, init=init.glorot_uniform(seed=3))]),
    ]
    for model in models:
        x = sg.placeholder("x", shape=("batch", 2))
        y = sg.placeholder("y", shape=("batch",), dtype="int64")
        loss = sg.softmax_cross_entropy(model(x, training=True), y)
        step = codegen.compile([x, y], loss, updates=sg.optim.Adam(0.05).updates(loss, model.parameters))
        losses = [step(X, Y) for _ in range(300)]
        assert losses[-1] < 0.1 * losses[0], (model, losses[0], losses[-1])
        predict = codegen.compile([x], model(x, training=False))
        np.testing.assert_array_equal(predict(X).argmax(1), Y)
