"""conv2d, max_pool2d, avg_pool2d and flatten beyond the CASES table: against PyTorch (values,
gradients, Hessian-vector products), second derivatives through a conv net, Jacobians (whose
sweeps carry leading basis axes through the conv ops), error messages, and the generated code."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

import codegen
import symgraph as sg
from codegen import testing
from symgraph.ops import Conv2DTranspose

CONV_CONFIGS = [
    # x shape, w shape, keyword arguments
    pytest.param((2, 3, 7, 6), (4, 3, 3, 2), {}, id="plain_non_square"),
    pytest.param((2, 2, 9, 8), (3, 2, 3, 3), {"stride": 2, "padding": 1}, id="stride2_padding1"),
    pytest.param((1, 4, 7, 7), (6, 2, 2, 3), {"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1), "groups": 2},
                 id="batch1_everything"),
    pytest.param((2, 3, 6, 5), (3, 1, 3, 3), {"padding": "same", "groups": 3}, id="depthwise_same"),
    pytest.param((2, 2, 6, 7), (3, 2, 2, 4), {"padding": "same", "dilation": 2}, id="same_even_kernel_dilated"),
    pytest.param((3, 2, 5, 5), (2, 2, 5, 5), {"padding": "valid"}, id="valid_whole_image"),
]


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("xs, ws, kw", CONV_CONFIGS)
def test_conv2d_and_its_gradients_match_torch(xs, ws, kw, rng):
    torch = _torch()
    x_v, w_v = rng.normal(size=xs), rng.normal(size=ws)
    x, w = sg.placeholder("x", xs), sg.placeholder("w", ws)
    y = sg.conv2d(x, w, **kw)
    R = rng.normal(size=y.shape)
    gx, gw = sg.grad((y * R).sum(), [x, w])
    got_y, got_gx, got_gw = codegen.compile([x, w], [y, gx, gw])(x_v, w_v)

    xt, wt = torch.tensor(x_v, requires_grad=True), torch.tensor(w_v, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, **kw)
    (yt * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(got_y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_gx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_gw, wt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv_transpose2d_op_is_torchs(rng):
    torch = _torch()
    g_v, w_v = rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(4, 3, 3, 3))
    g, w = sg.placeholder("g", g_v.shape), sg.placeholder("w", w_v.shape)
    # the vjp of a conv2d in x is this op: an input of 8 x 6 has 4 x 3 windows with stride 2, padding 1
    x = sg.placeholder("x", (2, 6, 8, 6))
    (gx,) = sg.vjp([sg.conv2d(x, w, stride=2, padding=1, groups=2)], [x], [g])
    y = sg.graph.apply(Conv2DTranspose((8, 6), (2, 2), (1, 1, 1, 1), (1, 1), 2), g, w)
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(g_v), torch.tensor(w_v), stride=2, padding=1,
                                                    output_padding=(1, 1), groups=2)
    assert isinstance(sg.simplify(gx).op, Conv2DTranspose)
    for node in (y, gx):  # PyTorch's output_padding (1, 1) gives the same 8 x 6
        np.testing.assert_allclose(codegen.evaluate(node, {g: g_v, w: w_v}), expected.numpy(), rtol=1e-10, atol=1e-12)


POOL_CONFIGS = [
    pytest.param((2, 3, 6, 6), (2,), {}, id="2x2"),
    pytest.param((2, 2, 7, 6), ((3, 2),), {"stride": (2, 1), "padding": 1}, id="overlapping_padded"),
    pytest.param((3, 5, 5), (3,), {"stride": 2}, id="unbatched"),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("xs, args, kw", POOL_CONFIGS)
def test_pooling_and_its_gradient_match_torch(kind, xs, args, kw, rng):
    torch = _torch()
    x_v = rng.normal(size=xs)
    x = sg.placeholder("x", xs)
    y = getattr(sg, f"{kind}_pool2d")(x, *args, **kw)
    R = rng.normal(size=y.shape)
    gx = sg.grad((y * R).sum(), x)
    got_y, got_gx = codegen.compile([x], [y, gx])(x_v)

    xt = torch.tensor(x_v, requires_grad=True)
    yt = getattr(torch.nn.functional, f"{kind}_pool2d")(xt, *args, **kw)
    (yt * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(got_y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_gx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_max_pool_gradient_goes_to_the_first_maximum_like_torch():
    torch = _torch()
    x_v = np.array([[[[1.0, 1.0, 0.0], [1.0, 0.0, 2.0], [2.0, 2.0, 2.0]]]])  # ties everywhere
    x = sg.placeholder("x", x_v.shape)
    got = codegen.evaluate(sg.grad(sg.max_pool2d(x, 2, stride=1).sum(), x), {x: x_v})
    xt = torch.tensor(x_v, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, 2, stride=1).sum().backward()
    np.testing.assert_array_equal(got, xt.grad.numpy())


def _routed(x, g, k, s):
    """g added at each window's first maximum, one window at a time (a window holding a NaN routes nothing)."""
    out = np.zeros(x.shape)
    for idx in np.ndindex(g.shape):
        *lead, i, j = idx
        window = x[tuple(lead)][i * s:i * s + k, j * s:j * s + k]
        if not np.isnan(window).any():
            a, b = np.unravel_index(np.argmax(window), (k, k))
            out[(*lead, i * s + a, j * s + b)] += g[idx]
    return out


@pytest.mark.parametrize("size, k, s", [(6, 2, 2), (7, 2, 2), (6, 3, 3), (6, 2, 1)],
                         ids=["tiled", "cropped", "tiled_3x3", "overlapping"])
def test_max_pool_gradient_with_ties_nans_and_infinite_cotangents(size, k, s, rng):
    """The routing's fast path (one hit a window, a finite g) and its fallbacks give the same answer:
    ties go to the first maximum, a window holding a NaN routes nothing, and an inf or nan in g
    reaches only its window's maximum (0 elsewhere, never inf * 0)."""
    x = sg.placeholder("x", (2, 3, size, size))
    y = sg.max_pool2d(x, k, stride=s)
    g = sg.placeholder("g", y.shape)
    (gx,) = sg.vjp([y], [x], [g])
    f = codegen.compile([x, g], gx)
    x_v = np.maximum(rng.normal(size=x.shape).round(1), 0)  # ReLU'd and rounded: ties everywhere
    distinct = rng.permutation(x_v.size).reshape(x_v.shape).astype(float)  # no ties
    g_v = rng.normal(size=y.shape)
    same = functools.partial(np.testing.assert_allclose, rtol=1e-14, atol=1e-15)  # overlaps: sums in another order
    for case in (distinct, x_v):
        same(f(case, g_v), _routed(case, g_v, k, s))
    # a window with a NaN (no hit) next to a window with a two-way tie: the hits still number the windows
    one_nan = distinct.copy()
    one_nan[0, 0, 0, 0] = np.nan
    one_nan[0, 1, 0, 0] = one_nan[0, 1, 0, 1] = one_nan[0, 1, :k, :k].max() + 1
    same(f(one_nan, g_v), _routed(one_nan, g_v, k, s))
    if s == k:  # (disjoint windows: nothing else reaches the NaN's window)
        assert f(one_nan, g_v)[0, 0, :k, :k].tolist() == np.zeros((k, k)).tolist()
    g_inf = g_v.copy()
    g_inf[1, 2, 0, 0], g_inf[0, 0, 1, 1] = np.inf, np.nan
    got = f(distinct, g_inf)
    same(got, _routed(distinct, g_inf, k, s))
    assert 1 <= (~np.isfinite(got)).sum() <= 2  # each entry of g goes to one place (inf * 0 would spread nan)


@pytest.mark.parametrize("size, k, s", [(6, 2, 2), (6, 2, 1)], ids=["tiled", "overlapping"])
def test_max_pool_tangent_is_the_adjoint_of_its_gradient_with_ties_and_nans(size, k, s, rng):
    """jvp picks the tangent at each window's first maximum (0 for a window holding a NaN), so
    <jvp(v), c> = <v, vjp(c)> holds entry by entry, ties and NaNs included."""
    x = sg.placeholder("x", (2, 3, size, size))
    y = sg.max_pool2d(x, k, stride=s)
    v, c = sg.placeholder("v", x.shape), sg.placeholder("c", y.shape)
    f = codegen.compile([x, v, c], [*sg.jvp([y], [x], [v]), *sg.vjp([y], [x], [c])])
    x_v = np.maximum(rng.normal(size=x.shape).round(1), 0)  # ties everywhere
    x_v[0, 0, 0, 0] = np.nan
    v_v, c_v = rng.normal(size=x.shape), rng.normal(size=y.shape)
    picked, routed = f(x_v, v_v, c_v)
    np.testing.assert_allclose(np.sum(picked * c_v), np.sum(v_v * routed), rtol=1e-12)
    basis = np.zeros(y.shape)
    for idx in [(0, 0, 0, 0), (1, 2, 1, 1), (0, 1, 2, 0)]:  # each picked entry is v where the gradient goes
        basis[...] = 0
        basis[idx] = 1.0
        _, where = f(x_v, v_v, basis)
        assert picked[idx] == np.sum(where * v_v)
    assert picked[0, 0, 0, 0] == 0.0  # the NaN's window


# -- second derivatives ------------------------------------------------------------------------------
def _conv_net(x, w1, w2, v, y, pool):
    h = sg.tanh(sg.conv2d(x, w1, padding=1))
    h = pool(h, 2)
    h = sg.softplus(sg.conv2d(h, w2, stride=1, padding="same", groups=2))
    return sg.softmax_cross_entropy(sg.flatten(h) @ v, y)


SHAPES = {"x": (3, 2, 6, 6), "w1": (4, 2, 3, 3), "w2": (4, 2, 3, 3), "v": (36, 3)}


def _net_inputs(rng):
    return {k: rng.normal(size=s) * (0.5 if k != "x" else 1.0) for k, s in SHAPES.items()}


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_hvp_through_a_conv_net_matches_finite_differences_of_the_gradient(pool, rng):
    values = _net_inputs(rng)
    labels = np.array([0, 2, 1])
    nodes = {k: sg.placeholder(k, s) for k, s in SHAPES.items()}
    y = sg.constant(labels)
    loss = _conv_net(nodes["x"], nodes["w1"], nodes["w2"], nodes["v"], y, getattr(sg, f"{pool}_pool2d"))
    wrt = [nodes["x"], nodes["w1"], nodes["w2"]]
    vectors = [sg.placeholder(f"d{k}", SHAPES[k]) for k in ("x", "w1", "w2")]
    order = list(nodes.values())
    grads = codegen.compile(order, sg.grad(loss, wrt))
    hvp = codegen.compile(order + vectors, sg.hvp(loss, wrt, vectors))
    d = [rng.normal(size=SHAPES[k]) for k in ("x", "w1", "w2")]
    got = hvp(*values.values(), *d)

    eps = 1e-5
    plus, minus = dict(values), dict(values)
    for k, dk in zip(("x", "w1", "w2"), d):
        plus[k], minus[k] = values[k] + eps * dk, values[k] - eps * dk
    expected = [(a - b) / (2 * eps) for a, b in zip(grads(*plus.values()), grads(*minus.values()))]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-8)


def test_hvp_through_a_conv_net_matches_torch(rng):
    torch = _torch()
    values = _net_inputs(rng)
    labels = np.array([0, 2, 1])
    nodes = {k: sg.placeholder(k, s) for k, s in SHAPES.items()}
    loss = _conv_net(nodes["x"], nodes["w1"], nodes["w2"], nodes["v"], sg.constant(labels), sg.max_pool2d)
    wrt = [nodes["w1"], nodes["w2"], nodes["v"]]
    vectors = [sg.placeholder(f"d{k}", SHAPES[k]) for k in ("w1", "w2", "v")]
    d = [rng.normal(size=SHAPES[k]) for k in ("w1", "w2", "v")]
    got = codegen.compile(list(nodes.values()) + vectors, sg.hvp(loss, wrt, vectors))(*values.values(), *d)

    F = torch.nn.functional

    def torch_loss(w1, w2, v):
        h = F.max_pool2d(torch.tanh(F.conv2d(torch.tensor(values["x"]), w1, padding=1)), 2)
        h = F.softplus(F.conv2d(h, w2, padding="same", groups=2))
        return F.cross_entropy(h.flatten(1) @ v, torch.tensor(labels))

    primals = tuple(torch.tensor(values[k]) for k in ("w1", "w2", "v"))
    _, expected = torch.autograd.functional.hvp(torch_loss, primals, tuple(torch.tensor(a) for a in d))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_through_conv_and_pooling(mode, rng):
    """A Jacobian sweep carries a leading basis axis through every conv and pooling op."""
    x_v, w_v = rng.normal(size=(2, 2, 5, 4)), rng.normal(size=(3, 2, 2, 2))
    x, w = sg.placeholder("x", x_v.shape), sg.placeholder("w", w_v.shape)
    out = sg.flatten(sg.max_pool2d(sg.conv2d(x, w, padding=1), 2) + sg.avg_pool2d(sg.conv2d(x, w, padding=1), 2))
    jx, jw = (sg.jacobian(out, v, mode=mode) for v in (x, w))
    got_x, got_w = codegen.compile([x, w], [jx, jw])(x_v, w_v)
    f = codegen.compile([x, w], out)
    eps = 1e-6
    for got, arg in ((got_x, 0), (got_w, 1)):
        base = [x_v, w_v]
        for idx in [(0, 0, 0, 0), (1, 1, 2, 3), (0, 1, 1, 1)] if arg == 0 else [(0, 0, 0, 0), (2, 1, 1, 0)]:
            plus, minus = [a.copy() for a in base], [a.copy() for a in base]
            plus[arg][idx] += eps
            minus[arg][idx] -= eps
            np.testing.assert_allclose(got[(...,) + idx], (f(*plus) - f(*minus)) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_hvp_through_conv_runs_on_the_cupy_stand_in(rng):
    values = _net_inputs(rng)
    nodes = {k: sg.placeholder(k, s) for k, s in SHAPES.items()}
    loss = _conv_net(nodes["x"], nodes["w1"], nodes["w2"], nodes["v"], sg.constant(np.array([0, 2, 1])),
                     sg.max_pool2d)
    wrt = [nodes["w1"], nodes["w2"]]
    vectors = [sg.placeholder(f"d{k}", SHAPES[k]) for k in ("w1", "w2")]
    outs = [loss, *sg.grad(loss, wrt), *sg.hvp(loss, wrt, vectors)]
    args = [*values.values(), *(rng.normal(size=SHAPES[k]) for k in ("w1", "w2"))]
    expected = codegen.compile(list(nodes.values()) + vectors, outs)(*args)
    with testing.emulated_cupy():
        f = codegen.compile(list(nodes.values()) + vectors, outs, backend="cupy")
        got = [g.get() for g in f(*args)]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build, error, words", [
    (lambda x: sg.conv2d(x, sg.placeholder("w", (4, 2, 3, 3))), sg.ShapeError,
     ["conv2d", "x has 3 channels but w expects 2", "(2, 3, 8, 8), (4, 2, 3, 3)", "test_conv.py"]),
    (lambda x: sg.conv2d(x, sg.placeholder("w", (4, 1, 3, 3)), groups=2), sg.ShapeError,
     ["conv2d", "3 channels but w expects 2", "2 groups"]),
    (lambda x: sg.conv2d(x, sg.placeholder("w", (3, 1, 3, 3)), groups=2), sg.ShapeError,
     ["3 output channels do not split into 2 groups"]),
    (lambda x: sg.conv2d(x, sg.placeholder("w", (4, 3, 9, 3))), sg.ShapeError,
     ["kernel 9×3", "does not fit the padded input 8×8"]),
    (lambda x: sg.conv2d(x[0], sg.placeholder("w", (4, 3, 3, 3))), sg.ShapeError,
     ["conv2d: x must be N×C×H×W", "(3, 8, 8)"]),
    (lambda x: sg.conv2d(x, sg.placeholder("w", (4, 3, 3, 3)), stride=2, padding="same"), ValueError,
     ["padding='same' needs stride 1"]),
    (lambda x: sg.conv2d(x, sg.placeholder("w", (4, 3, 3, 3)), padding="full"), ValueError, ["'same' or 'valid'"]),
    (lambda x: sg.conv2d(x, sg.placeholder("w", (4, 3, 3, 3)), stride=0), ValueError, ["stride must be an int >= 1"]),
    (lambda x: sg.conv2d(x, sg.placeholder("w", (4, 3, 3, 3), dtype="int64")), sg.DTypeError,
     ["conv2d needs floating-point operands", "float64, int64"]),
    (lambda x: sg.conv2d(sg.placeholder("x", ("n", 3, "h", 8)), sg.placeholder("w", (4, 3, 3, 3))), sg.ShapeError,
     ["must be static ints"]),
    (lambda x: sg.conv2d(x, sg.placeholder("w", (4, 3, 3, 3)), bias=sg.placeholder("b", (3,))), sg.ShapeError,
     ["conv2d", "the bias must end in the 4 output channels", "(3,)"]),
    (lambda x: sg.max_pool2d(x, 9), sg.ShapeError, ["max_pool2d", "window (9, 9) does not fit", "(2, 3, 8, 8)"]),
    (lambda x: sg.max_pool2d(x, 2, padding=2), ValueError, ["at most half the kernel"]),
    (lambda x: sg.avg_pool2d(x.reshape(6, 64), 2), sg.ShapeError, ["avg_pool2d: x must be N×C×H×W or C×H×W"]),
])
def test_errors_name_the_op_the_shapes_and_the_problem(build, error, words):
    x = sg.placeholder("x", (2, 3, 8, 8))
    with pytest.raises(error) as info:
        build(x)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_conv_bias_is_added_as_the_result_is_written_and_differentiates(rng):
    """conv2d(x, w, bias=b) equals conv2d(x, w) + b[:, None, None] in value, gradient (b's: g summed over
    N, H', W'), a tangent in b alone (broadcast to the whole result), and a second derivative; a
    Conv2d layer's step computes it in one helper call, no separate add."""
    x, w, b = sg.placeholder("x", (2, 3, 6, 5)), sg.placeholder("w", (4, 3, 3, 3)), sg.placeholder("b", (4,))
    feed = {x: rng.normal(size=x.shape), w: rng.normal(size=w.shape), b: rng.normal(size=b.shape)}
    fused, plain = sg.conv2d(x, w, padding=1, bias=b), sg.conv2d(x, w, padding=1) + b.reshape((4, 1, 1))
    R = rng.normal(size=fused.shape)
    tb = rng.normal(size=(4,))
    got, want = ([(y * R).sum(), *sg.grad(sg.tanh(y * R).sum(), [x, w, b]), *sg.jvp([y], [b], [tb])]
                 for y in (fused, plain))
    for a, e in zip(codegen.evaluate(got, feed), codegen.evaluate(want, feed)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
    (jb,) = codegen.evaluate(sg.jvp([fused], [b], [tb]), feed)
    assert jb.shape == fused.shape and np.array_equal(jb, np.broadcast_to(tb[:, None, None], fused.shape))
    v = {n: rng.normal(size=n.shape) for n in (x, w, b)}
    hv = [sg.hvp(sg.tanh(y * R).sum(), [x, w, b], [sg.constant(v[n]) for n in (x, w, b)]) for y in (fused, plain)]
    for a, e in zip(codegen.evaluate(hv[0], feed), codegen.evaluate(hv[1], feed)):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)
    model = sg.nn.Sequential([sg.nn.Conv2d(4, 3, padding=1, name="conv1"), sg.nn.Flatten(), sg.nn.Dense(2)])
    source = codegen.compile([x], model(x)).source
    assert "conv1 = _conv2d(x, conv1_W, conv1_b, padding=(1, 1, 1, 1)" in source and "np.add(conv1" not in source


# -- the generated code ------------------------------------------------------------------------------
def test_generated_code_is_vectorized_and_says_what_each_line_is(rng):
    x = sg.placeholder("x", ("batch", 1, 8, 8))
    W = sg.parameter("conv1_W", value=rng.normal(size=(4, 1, 3, 3)))
    V = sg.parameter("fc_W", value=rng.normal(size=(64, 10)))
    y = sg.placeholder("y", ("batch",), dtype="int64")
    h = sg.max_pool2d(sg.relu(sg.conv2d(x, W, padding=1)), 2)
    loss = sg.softmax_cross_entropy(sg.flatten(h) @ V, y)
    f = codegen.compile([x, y], [loss, *sg.grad(loss, [W, V])])
    source = f.source
    body = source[source.index("def compute("):]
    assert "for " not in body.split('"""')[-1]  # no Python loops in the function: helpers do the work
    assert "# conv2d(x, conv1_W), stride 1, padding 1" in source
    # the forward line and the weight gradient share x's columns (im2col made once: codegen.conv_columns)
    assert "conv_columns1 = _conv_columns(x, kernel=(3, 3), padding=(1, 1, 1, 1), layout='batch'" in source
    assert re.search(r"_conv2d_weight_grad_from_columns\(conv_columns1, \w+, kernel=\(3, 3\), layout='batch'\)", source)
    assert "_max_pool2d_grad(" in source and "one_hot" not in source
    # loops in the helpers run over kernel taps only, never over pixels or batch rows
    loops = re.findall(r"for (\w+) in range\(([^)]*)\)", source)
    assert loops and {bound for _, bound in loops} <= {"kh", "kw", "kernel[0]", "kernel[1]"}
    assert "as_strided" in source and "np.matmul" in source  # windows are views; products are BLAS calls
    value, gW, gV = f(rng.normal(size=(5, 1, 8, 8)), rng.integers(0, 10, size=5))
    assert gW.shape == (4, 1, 3, 3) and gV.shape == (64, 10) and np.isfinite(value)


def test_flatten_is_a_view_and_passes_through_a_single_axis():
    x = sg.placeholder("x", (2, 3, 4))
    assert sg.flatten(x, start_axis=-1) is x
    node = sg.flatten(x)
    assert node.shape == (2, 12) and node.op.view_of == (0,)
    a = np.arange(24.0).reshape(2, 3, 4)
    assert np.shares_memory(node.op.compute(a), a)
    assert sg.flatten(sg.placeholder("n", ("batch", 2, 2))).shape == ("batch", 4)
