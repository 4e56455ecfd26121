"""symgraph.nn image layers: Conv2d, MaxPool2d, AvgPool2d, Flatten (issue 15).

Values and gradients are checked against torch.nn (when PyTorch imports) and central finite
differences (float64); a small convolutional network learns a toy task.
"""

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph import init, nn
from test_nn import finite_difference_check

def torch_or_skip():
    return pytest.importorskip("torch")


def to_torch(torch, a, grad=False):
    t = torch.from_numpy(np.array(a))
    return t.requires_grad_() if grad else t


# -- Conv2d ---------------------------------------------------------------------------


def test_conv2d_names_shapes_and_init_fans():
    x = sg.placeholder("x", shape=("batch", 4, 9, 8))
    layer = nn.Conv2d(6, (3, 2), groups=2, init=init.glorot_uniform(seed=0))
    assert layer.parameters == []
    out = layer(x)
    W, b = layer.parameters
    assert (W.name, W.shape, b.name, b.shape) == ("conv1_W", (6, 2, 3, 2), "conv1_b", (6,))
    assert out.shape == ("batch", 6, 7, 7)
    # PyTorch's fans for a kernel O×C/groups×kH×kW: fan_in = 2·3·2 = 12, fan_out = 6·3·2 = 36
    np.testing.assert_array_equal(W.value, init.glorot_uniform(seed=0)((6, 2, 3, 2), fans=(12, 36)))
    assert np.abs(W.value).max() <= np.sqrt(6 / (12 + 36))
    np.testing.assert_array_equal(b.value, np.zeros(6))
    assert layer.state == [] and layer.state_updates == {}
    assert layer(x, training=True) is out  # no mode dependence: the same (interned) node
    pointwise = nn.Conv2d(3, 1, use_bias=False, name="pw")
    pointwise(x)
    assert [p.name for p in pointwise.parameters] == ["pw_W"] and pointwise.W.shape == (3, 4, 1, 1)


CONV_CASES = [
    dict(),
    dict(stride=2),
    dict(padding=1),
    dict(padding=(2, 0), stride=(1, 2)),
    dict(dilation=2, padding=2),
    dict(groups=2),
    dict(padding="same"),
    dict(padding="valid", use_bias=False),
]


@pytest.mark.parametrize("kw", CONV_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_conv2d_values_and_gradients_match_torch(rng, kw):
    torch = torch_or_skip()
    x = sg.placeholder("x", shape=("batch", 4, 7, 6))
    layer = nn.Conv2d(6, 3, **kw)
    out = layer(x)
    params = layer.parameters
    for p in params:
        p.value = rng.normal(size=p.shape)
    xb = rng.normal(size=(2, 4, 7, 6))
    tkw = {("bias" if k == "use_bias" else k): v for k, v in kw.items()}
    ref = torch.nn.Conv2d(4, 6, 3, **tkw).double()
    with torch.no_grad():
        ref.weight.copy_(to_torch(torch, layer.W.value))
        if layer.b is not None:
            ref.bias.copy_(to_torch(torch, layer.b.value))
    t_x = to_torch(torch, xb, grad=True)
    t_out = ref(t_x)
    c = rng.normal(size=tuple(t_out.shape))
    (t_out * to_torch(torch, c)).sum().backward()
    loss = (out * sg.constant(c)).sum()
    value, g_x, *g_params = codegen.compile([x], [out, *sg.grad(loss, [x, *params])])(xb)
    np.testing.assert_allclose(value, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_x, t_x.grad.numpy(), rtol=1e-10, atol=1e-12)
    t_params = [ref.weight] + ([ref.bias] if layer.b is not None else [])
    for g, t in zip(g_params, t_params):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_gradients_match_finite_differences(rng):
    x = sg.placeholder("x", shape=(2, 2, 5, 5))
    layer = nn.Conv2d(4, 3, stride=2, padding=1, groups=2)
    out = layer(x)
    for p in layer.parameters:
        p.value = rng.normal(size=p.shape)
    loss = (sg.tanh(out) * sg.constant(rng.normal(size=out.shape))).sum()
    f = codegen.compile([x], [loss, *sg.grad(loss, layer.parameters)])
    finite_difference_check(f, layer.parameters, (rng.normal(size=(2, 2, 5, 5)),))


def test_conv2d_argument_errors_name_the_layer_and_argument():
    for kw, message in [
        (dict(out_channels=0, kernel_size=3), "Conv2d: out_channels must be a positive int"),
        (dict(out_channels=4, kernel_size=(3,)), "Conv2d: kernel_size must be a positive int or a pair"),
        (dict(out_channels=4, kernel_size=3, stride=0), "Conv2d: stride must be a positive int"),
        (dict(out_channels=4, kernel_size=3, padding=-1), "Conv2d: padding must be an int >= 0"),
        (dict(out_channels=4, kernel_size=3, padding="full"), "Conv2d: padding must be .* 'same' or 'valid'"),
        (dict(out_channels=4, kernel_size=3, dilation=(1, 0)), "Conv2d: dilation must be a positive int"),
        (dict(out_channels=4, kernel_size=3, groups=3), "Conv2d: groups=3 must divide out_channels=4"),
        (dict(out_channels=4, kernel_size=3, padding="same", stride=2), "Conv2d: padding='same' needs stride=1"),
    ]:
        with pytest.raises(ValueError, match=message):
            nn.Conv2d(**kw)
    with pytest.raises(TypeError, match="Conv2d: init must be an initializer"):
        nn.Conv2d(4, 3, init="he")


def test_conv2d_input_errors_name_the_layer():
    layer = nn.Conv2d(4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d 'conv1': expects N×C×H×W images"):
        layer(sg.placeholder("flat", shape=("batch", 12)))
    with pytest.raises(ValueError, match=r"Conv2d 'conv1': groups=2 must divide the input's channels \(3\)"):
        layer(sg.placeholder("rgb", shape=("batch", 3, 8, 8)))
    layer(sg.placeholder("x", shape=("batch", 2, 8, 8)))
    with pytest.raises(ValueError, match=r"Conv2d 'conv1': expects N×2×H×W images"):
        layer(sg.placeholder("x4", shape=("batch", 4, 8, 8)))


# -- pooling and Flatten -----------------------------------------------------------------


POOL_CASES = [dict(kernel=2), dict(kernel=3, stride=1), dict(kernel=(3, 2), stride=(2, 1), padding=(1, 0)),
              dict(kernel=3, stride=2, padding=1)]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("kw", POOL_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_pooling_values_and_gradients_match_torch(rng, kind, kw):
    torch = torch_or_skip()
    x = sg.placeholder("x", shape=("batch", 3, 7, 6))
    layer = (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(**kw)
    out = layer(x)
    assert layer.parameters == [] and layer.leaves == [] and layer.name == f"{kind}pool1"
    xb = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.1  # distinct values: no ties in the maxima
    tkw = dict(kernel_size=kw["kernel"], stride=kw.get("stride"), padding=kw.get("padding", 0))
    ref = (torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d)(**tkw)
    t_x = to_torch(torch, xb, grad=True)
    t_out = ref(t_x)
    c = rng.normal(size=tuple(t_out.shape))
    (t_out * to_torch(torch, c)).sum().backward()
    value, g_x = codegen.compile([x], [out, sg.grad((out * sg.constant(c)).sum(), x)])(xb)
    assert out.shape[1:] == tuple(t_out.shape[1:])
    np.testing.assert_allclose(value, t_out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g_x, t_x.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_pooling_argument_errors_name_the_layer_and_argument():
    with pytest.raises(ValueError, match="MaxPool2d: kernel must be a positive int"):
        nn.MaxPool2d(0)
    with pytest.raises(ValueError, match="AvgPool2d: stride must be a positive int"):
        nn.AvgPool2d(2, stride=(1, 2, 3))
    with pytest.raises(ValueError, match="MaxPool2d: padding must be at most half the kernel"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="AvgPool2d: padding must be an int >= 0"):
        nn.AvgPool2d(2, padding=-1)


def test_pooling_input_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"MaxPool2d 'maxpool1': expects N×C×H×W images"):
        nn.MaxPool2d(2)(sg.placeholder("x", shape=("batch", 8, 8)))


@pytest.mark.parametrize("start_axis", [1, 2, 0, -2])
def test_flatten_matches_torch(rng, start_axis):
    torch = torch_or_skip()
    x = sg.placeholder("x", shape=(2, 3, 4, 5))
    out = nn.Flatten(start_axis)(x)
    xb = rng.normal(size=(2, 3, 4, 5))
    ref = torch.nn.Flatten(start_dim=start_axis)(to_torch(torch, xb)).numpy()
    assert out.shape == ref.shape
    np.testing.assert_array_equal(codegen.evaluate(out, {x: xb}), ref)


def test_flatten_keeps_a_named_batch_axis():
    x = sg.placeholder("x", shape=("batch", 3, 4, 5))
    assert nn.Flatten()(x).shape == ("batch", 60)


def test_flatten_errors_name_the_layer_and_argument():
    with pytest.raises(TypeError, match="Flatten: start_axis must be an int"):
        nn.Flatten("1")
    with pytest.raises(ValueError, match=r"Flatten 'flatten1': start_axis=4 is out of range"):
        nn.Flatten(4)(sg.placeholder("x", shape=(2, 3, 4, 5)))


# -- a small convolutional network ---------------------------------------------------------


def bars(rng, n):
    """6×6 images holding one vertical (label 0) or horizontal (label 1) bar, plus noise."""
    X = rng.normal(scale=0.1, size=(n, 1, 6, 6))
    Y = rng.integers(0, 2, size=n)
    where = rng.integers(0, 6, size=n)
    for i in range(n):
        if Y[i]:
            X[i, 0, where[i], :] += 1.0
        else:
            X[i, 0, :, where[i]] += 1.0
    return X, Y


def cnn():
    return nn.Sequential([
        nn.Conv2d(4, 3, padding=1, init=init.he_normal(seed=0)),
        nn.PReLU(4),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 3, padding="same", groups=2, init=init.he_normal(seed=1)),
        sg.relu,
        nn.AvgPool2d(3),
        nn.Flatten(),
        nn.Dropout(0.1, seed=0),
        nn.Dense(2, init=init.glorot_uniform(seed=2)),
    ])


def test_a_small_cnn_trains_and_its_eval_graph_is_deterministic(rng):
    x = sg.placeholder("x", shape=("batch", 1, 6, 6))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    model = cnn()
    loss = sg.softmax_cross_entropy(model(x, training=True), y)
    logits = model(x, training=False)
    assert [p.name for p in model.parameters] == [
        "conv1_W", "conv1_b", "prelu1_slope", "conv2_W", "conv2_b", "dense1_W", "dense1_b"]
    assert [p.shape for p in model.parameters] == [(4, 1, 3, 3), (4,), (4,), (4, 2, 3, 3), (4,), (4, 2), (2,)]
    assert [s.name for s in model.state] == ["dropout1_key"]
    updates = {**sg.optim.Adam(0.03).updates(loss, model.parameters), **model.state_updates}
    step = codegen.compile([x, y], loss, updates=updates)
    predict = codegen.compile([x], logits)
    X, Y = bars(rng, 64)
    first = np.mean([step(X, Y) for _ in range(3)])
    for _ in range(150):
        last = step(X, Y)
    assert last < 0.25 * first, (first, last)
    X_test, Y_test = bars(rng, 64)
    out = predict(X_test)
    np.testing.assert_array_equal(predict(X_test), out)  # evaluation: no dropout, no state change
    assert np.mean(out.argmax(1) == Y_test) >= 0.9


def test_gradients_through_a_small_cnn_match_finite_differences(rng):
    x = sg.placeholder("x", shape=(2, 1, 6, 6))
    t = sg.placeholder("t", shape=(2, 2))
    model = nn.Sequential([nn.Conv2d(2, 3, stride=2, padding=1, init=init.glorot_normal(seed=0)), sg.tanh,
                           nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Dense(2, init=init.glorot_normal(seed=1))])
    loss = sg.mse(model(x), t)
    f = codegen.compile([x, t], [loss, *sg.grad(loss, model.parameters)])
    finite_difference_check(f, model.parameters, (rng.normal(size=(2, 1, 6, 6)), rng.normal(size=(2, 2))))
