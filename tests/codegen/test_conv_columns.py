"""codegen.conv_columns: a conv2d and its weight gradient share the image's columns (im2col made once).

The pass must never change a value: every step here is compared with the same step compiled
without it (the backend's ``share_conv_columns`` off) and with the graph interpreted op by op,
and the gradients with central differences in float64.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codegen
import symgraph as sg
from codegen import conv_columns
from codegen.backends import BACKENDS
from codegen.conv_columns import share_columns
from symgraph.graph import apply, topo_sort
from symgraph.ops import Conv2DFromColumns, Conv2DWeightGradFromColumns, ConvColumns
from symgraph.provenance import Labels

# (input C×H×W, conv kwargs, kernel O×C/groups×kH×kW, bias, the layout the pass should choose)
GEOMETRIES = {
    "flat_valid": ((1, 20, 20), {}, (3, 1, 3, 3), True, "flat"),
    "flat_padded_dilated": ((2, 18, 17), {"padding": (1, 2), "dilation": (2, 1)}, (2, 2, 2, 3), False, "flat"),
    "batch_small_image": ((3, 6, 6), {"padding": 1}, (4, 3, 3, 3), True, "batch"),
    "batch_stride2_groups": ((4, 9, 8), {"stride": 2, "groups": 2}, (6, 2, 3, 3), True, "batch"),
    "batch_wide_weight": ((8, 17, 17), {}, (9, 8, 3, 3), True, "batch"),  # 648 weight entries: no per-image products
}


def _step(geometry, rng, dtype="float64"):
    """(inputs, outputs [loss, grads of the kernel, bias and image], parameters) of a one-conv net."""
    (c, h, w), kwargs, kshape, bias, _ = GEOMETRIES[geometry]
    x = sg.placeholder("x", ("batch", c, h, w), dtype=dtype)
    K = sg.parameter("K", value=rng.normal(size=kshape).astype(dtype))
    b = sg.parameter("b", value=rng.normal(size=kshape[0]).astype(dtype)) if bias else None
    y = sg.conv2d(x, K, bias=b, **kwargs)
    loss = (sg.tanh(y) ** 2).sum()
    wrt = [K, x] + ([b] if bias else [])
    return x, [loss, *sg.grad(loss, wrt)], [K] + ([b] if bias else [])


def _compile(inputs, outputs, share, monkeypatch):
    monkeypatch.setattr(BACKENDS["numpy"], "share_conv_columns", share)
    return codegen.compile(inputs, outputs)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_sharing_changes_no_value(geometry, rng, monkeypatch, interpret):
    x, outputs, _ = _step(geometry, rng)
    data = rng.normal(size=(3,) + GEOMETRIES[geometry][0])
    shared = _compile([x], outputs, True, monkeypatch)
    plain = _compile([x], outputs, False, monkeypatch)
    assert "_conv_columns(" in shared.source and "_conv_columns(" not in plain.source
    expected = interpret(outputs, {x: data})
    for got in (shared(data), plain(data)):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_shared_weight_gradient_matches_central_differences(geometry, rng, monkeypatch):
    x, outputs, params = _step(geometry, rng)
    data = rng.normal(size=(2,) + GEOMETRIES[geometry][0])
    f = _compile([x], outputs, True, monkeypatch)
    K = params[0]
    grad_K = f(data)[1]
    base = K.value.copy()
    loss_only = _compile([x], outputs[0], True, monkeypatch)
    eps = 1e-6
    for index in [(0, 0, 0, 0), tuple(d - 1 for d in base.shape), (1, 0, 1, 1)]:
        K.value[...] = base
        K.value[index] += eps
        up = float(loss_only(data))
        K.value[index] -= 2 * eps
        down = float(loss_only(data))
        K.value[...] = base
        assert grad_K[index] == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_the_pass_picks_the_layout_and_makes_the_columns_once(geometry, rng, monkeypatch):
    x, outputs, _ = _step(geometry, rng)
    source = _compile([x], outputs, True, monkeypatch).source
    layout = GEOMETRIES[geometry][-1]
    body = source[source.index("def compute("):]
    assert len(re.findall(r"conv_columns1 = _conv_columns\(x, ", body)) == 1
    assert f"layout='{layout}'" in body and "conv_columns2" not in body
    assert re.search(r"conv2d1 = _conv2d_from_columns\(conv_columns1, K", body)
    assert re.search(r"grad_K = _conv2d_weight_grad_from_columns\(conv_columns1, ", body)
    assert "_conv2d(" not in body and "_conv2d_weight_grad(" not in body
    # the comments still speak of the graph's conv2d
    assert re.search(r"# conv2d\(x, K(, b)?\), stride", body)
    assert re.search(r"# vjp of conv2d\(x, K(, b)?\) wrt K\n", body)
    assert "# vjp of conv2d(x, K" in body and "wrt x" in body


def test_nothing_is_shared_without_a_weight_gradient(rng):
    x = sg.placeholder("x", ("batch", 1, 20, 20))
    K = sg.parameter("K", value=rng.normal(size=(3, 1, 3, 3)))
    y = sg.conv2d(x, K).sum()
    assert "_conv_columns(" not in codegen.compile([x], y).source  # inference: one conv2d, nothing to share
    # the image's gradient alone reads no columns either
    source = codegen.compile([x], sg.grad(y, [x])).source
    assert "_conv_columns(" not in source and "_conv_transpose2d(" in source


def test_a_weight_gradient_of_another_geometry_is_not_shared(rng, interpret):
    x = sg.placeholder("x", (2, 1, 9, 9))
    K = sg.parameter("K", value=rng.normal(size=(2, 1, 3, 3)))
    a = sg.conv2d(x, K, padding=1)
    b = sg.conv2d(x, K, stride=2)  # the same image and kernel, another stride: its own columns
    loss = (a ** 2).sum() + (b ** 2).sum()
    f = codegen.compile([x], [loss, *sg.grad(loss, [K])])
    body = f.source[f.source.index("def compute("):]
    assert body.count("= _conv_columns(x, ") == 2 and "stride=(2, 2)" in body
    data = rng.normal(size=(2, 1, 9, 9))
    for g, e in zip(f(data), interpret([loss, *sg.grad(loss, [K])], {x: data})):
        np.testing.assert_allclose(g, e, rtol=1e-12)


def test_a_hessian_vector_product_of_a_conv_net_shares_and_agrees(rng, monkeypatch, interpret):
    """The gradient's own derivative holds conv2d, its two adjoints and their adjoints again:
    every pair the pass finds must still give the same values."""
    x = sg.placeholder("x", (2, 2, 6, 6))
    K = sg.parameter("K", value=rng.normal(size=(3, 2, 3, 3)))
    v = sg.placeholder("v", (3, 2, 3, 3))
    loss = (sg.tanh(sg.conv2d(x, K, padding=1)) ** 2).sum()
    (gK,) = sg.grad(loss, [K])
    (hv,) = sg.grad((gK * v).sum(), [K])
    data, direction = rng.normal(size=(2, 2, 6, 6)), rng.normal(size=(3, 2, 3, 3))
    shared = _compile([x, v], [gK, hv], True, monkeypatch)
    assert "_conv_columns(" in shared.source
    expected = interpret([gK, hv], {x: data, v: direction})
    for got, e in zip(shared(data, direction), expected):
        np.testing.assert_allclose(got, e, rtol=1e-10, atol=1e-12)


def test_sweeps_with_leading_axes_are_left_alone(rng, interpret):
    x = sg.placeholder("x", (2, 1, 5, 5))
    K = sg.parameter("K", value=rng.normal(size=(2, 1, 3, 3)))
    y = sg.conv2d(x, K)
    J = sg.jacobian(y.sum(axis=(0, 2, 3)), K, mode="forward")  # tangents of K carry a basis axis
    labels = Labels()
    nodes, _ = share_columns([J], labels)
    assert not any(isinstance(n.op, ConvColumns) for n in topo_sort(nodes))
    data = rng.normal(size=(2, 1, 5, 5))
    np.testing.assert_allclose(codegen.compile([x], J)(data), interpret([J], {x: data})[0], rtol=1e-12)


def test_float32_steps_agree_with_and_without_sharing(rng, monkeypatch):
    x, outputs, _ = _step("flat_valid", rng, dtype="float32")
    data = rng.normal(size=(4, 1, 20, 20)).astype(np.float32)
    a = _compile([x], outputs, True, monkeypatch)(data)
    b = _compile([x], outputs, False, monkeypatch)(data)
    for u, w in zip(a, b):
        assert u.dtype == w.dtype == np.float32
        np.testing.assert_allclose(u, w, rtol=2e-5, atol=1e-5)


def test_the_column_ops_refuse_differentiation_and_bad_shapes(rng):
    x = sg.placeholder("x", (2, 3, 6, 6))
    op = ConvColumns((3, 3), "batch", (1, 1), (0, 0, 0, 0), (1, 1), 1)
    cols = apply(op, x)
    assert cols.shape == (1, 27, 4, 4, 2)
    with pytest.raises(TypeError, match=r"^conv_columns is built by the code generator after differentiation"):
        op.vjp(cols, None)
    w = sg.placeholder("w", (4, 3, 3, 3))
    forward = Conv2DFromColumns((4, 4), "batch", (1, 1), (0, 0, 0, 0), (1, 1), 1)
    assert apply(forward, cols, w).shape == (2, 4, 4, 4)
    with pytest.raises(TypeError, match="differentiate the graph's conv2d instead"):
        forward.jvp(None, None)
    with pytest.raises(sg.ShapeError, match=r"do not hold 5×4 windows in the 'batch' layout"):
        apply(Conv2DFromColumns((5, 4), "batch", (1, 1), (0, 0, 0, 0), (1, 1), 1), cols, w)
    for bad in [(4, 2, 3, 3), (4, 27)]:
        with pytest.raises(sg.ShapeError, match="C/groups·kH·kW"):
            apply(forward, cols, sg.placeholder("w2", bad))
    g = sg.placeholder("g", (2, 4, 4, 4))
    weight = Conv2DWeightGradFromColumns((3, 3), "batch", (1, 1), (0, 0, 0, 0), (1, 1), 1)
    assert apply(weight, cols, g).shape == (4, 3, 3, 3)
    with pytest.raises(sg.ShapeError, match="the columns' batch"):
        apply(weight, cols, sg.placeholder("g3", (3, 4, 4, 4)))
    with pytest.raises(sg.ShapeError, match="g must be N×O×H'×W'"):
        apply(weight, cols, sg.placeholder("g4", (4, 4)))
    with pytest.raises(ValueError, match=r"^conv_columns: layout must be 'batch', or 'flat' with stride 1"):
        ConvColumns((3, 3), "flat", (2, 2), (0, 0, 0, 0), (1, 1), 1)


@pytest.mark.parametrize("options", [{"memory_plan": False}, {"early_updates": True}],
                         ids=["no_memory_plan", "early_updates"])
def test_a_train_step_shares_under_every_compile_option(options, rng, interpret):
    """A conv layer trained by SGD: the step with shared columns updates the kernel as the graph says."""
    x = sg.placeholder("x", ("batch", 1, 18, 18))
    K = sg.parameter("K", value=rng.normal(size=(2, 1, 3, 3)))
    loss = (sg.tanh(sg.conv2d(x, K, padding=1)) ** 2).mean()
    (gK,) = sg.grad(loss, [K])
    data, start = rng.normal(size=(3, 1, 18, 18)), K.value.copy()
    expected_loss, expected_grad = interpret([loss, gK], {x: data})
    f = codegen.compile([x], loss, updates={K: K - 0.1 * gK}, **options)
    assert "= _conv_columns(x, " in f.source and "layout='flat'" in f.source
    np.testing.assert_allclose(f(data), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(K.value, start - 0.1 * expected_grad, rtol=1e-12, atol=1e-15)


def test_two_convolutions_of_one_image_share_its_columns(rng, monkeypatch, interpret):
    """Two branches over the same image with the same kernel size and attributes (an inception-like
    block): one columns node feeds both conv2d lines and both weight gradients."""
    x = sg.placeholder("x", ("batch", 2, 7, 7))
    A = sg.parameter("A", value=rng.normal(size=(3, 2, 3, 3)))
    B = sg.parameter("B", value=rng.normal(size=(5, 2, 3, 3)))
    C = sg.parameter("C", value=rng.normal(size=(4, 2, 2, 2)))  # another kernel size: columns of its own
    a, b, c = (sg.conv2d(x, W, padding=1) for W in (A, B, C))
    loss = (sg.tanh(a) ** 2).sum() + (b ** 2).sum() + sg.sigmoid(c).sum()
    outputs = [loss, *sg.grad(loss, [A, B, C, x])]
    data = rng.normal(size=(2, 2, 7, 7))
    f = _compile([x], outputs, True, monkeypatch)
    body = f.source[f.source.index("def compute("):]
    assert body.count("= _conv_columns(x, kernel=(3, 3)") == 1 and body.count("= _conv_columns(x, kernel=(2, 2)") == 1
    assert body.count("_conv2d_from_columns(conv_columns1, ") == 2
    assert body.count("_conv2d_weight_grad_from_columns(conv_columns1, ") == 2
    for got, e in zip(f(data), interpret(outputs, {x: data})):
        np.testing.assert_allclose(got, e, rtol=1e-12, atol=1e-12)
    # inference: the two conv2d lines alone share them too
    predict = _compile([x], [a, b], True, monkeypatch)
    assert predict.source.count("= _conv_columns(x, ") == 1
    for got, e in zip(predict(data), interpret([a, b], {x: data})):
        np.testing.assert_allclose(got, e, rtol=1e-12)


def test_columns_too_large_to_hold_through_the_step_are_made_twice(rng):
    """64 channels of 32×32 under a 3×3 kernel: 2.4 MiB of columns an image, over the 256 KiB cap."""
    from codegen import conv_columns

    x = sg.placeholder("x", ("batch", 64, 32, 32), dtype="float32")
    K = sg.parameter("K", value=rng.normal(size=(8, 64, 3, 3)).astype(np.float32))
    loss = sg.conv2d(x, K, padding=1).sum()
    outputs = [loss, *sg.grad(loss, [K])]
    assert 64 * 9 * 32 * 32 * 4 > conv_columns.MAX_COLUMNS_PER_IMAGE
    source = codegen.compile([x], outputs).source
    assert "_conv_columns(" not in source and "_conv2d(x, K" in source and "_conv2d_weight_grad(x, " in source
    small = sg.placeholder("s", ("batch", 16, 8, 8), dtype="float32")  # 16·9·64·4 = 36 KiB an image: shared
    V = sg.parameter("V", value=rng.normal(size=(8, 16, 3, 3)).astype(np.float32))
    loss = sg.conv2d(small, V, padding=1).sum()
    assert "= _conv_columns(s, " in codegen.compile([small], [loss, *sg.grad(loss, [V])]).source


def test_an_unsimplified_step_prints_the_graph_as_built(rng, interpret):
    """simplify=False (the explorer's default): no rewrite at all, each conv2d node its own line."""
    x = sg.placeholder("x", ("batch", 1, 18, 18))
    K = sg.parameter("K", value=rng.normal(size=(2, 1, 3, 3)))
    loss = (sg.tanh(sg.conv2d(x, K, padding=1)) ** 2).mean()
    (gK,) = sg.grad(loss, [K])
    f = codegen.compile([x], [loss, gK], simplify=False)
    assert "_conv_columns(" not in f.source and "= _conv2d(x, K, " in f.source
    data = rng.normal(size=(3, 1, 18, 18))
    for got, e in zip(f(data), interpret([loss, gK], {x: data})):
        np.testing.assert_allclose(got, e, rtol=1e-12)


def test_an_image_updated_in_place_and_a_returned_conv_output(rng, interpret):
    """The image is itself a parameter updated by the step (as when an input is optimized), and the
    conv2d output is returned: the columns are taken before the update, the output is not a buffer
    the step reuses."""
    img = sg.parameter("img", value=rng.normal(size=(2, 2, 17, 16)))
    K = sg.parameter("K", value=rng.normal(size=(3, 2, 3, 3)))
    y = sg.conv2d(img, K, padding=1)
    loss = (sg.tanh(y) ** 2).sum()
    gK, gimg = sg.grad(loss, [K, img])
    start_img, start_K = img.value.copy(), K.value.copy()
    expected = interpret([y, loss, gK, gimg], {})
    f = codegen.compile([], [y, loss], updates={K: K - 0.01 * gK, img: img - 0.01 * gimg})
    assert "= _conv_columns(img, " in f.source
    out, value = f()
    np.testing.assert_allclose(out, expected[0], rtol=1e-12)
    np.testing.assert_allclose(value, expected[1], rtol=1e-12)
    np.testing.assert_allclose(K.value, start_K - 0.01 * expected[2], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(img.value, start_img - 0.01 * expected[3], rtol=1e-12, atol=1e-14)
    again, _ = f()  # a second step: the returned array of the first is not overwritten
    np.testing.assert_allclose(out, expected[0], rtol=1e-12)
    assert not np.allclose(again, out)


@st.composite
def _geometries(draw):
    """A conv2d that fits its input: groups, kernel, stride, padding, dilation and sizes drawn small."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    stride = draw(st.sampled_from([(1, 1), (1, 1), (2, 2), (1, 2), (2, 1)]))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h, w = draw(st.integers(kh * dh, 9)), draw(st.integers(kw * dw, 9))
    return dict(n=draw(st.integers(1, 3)), c=cg * groups, h=h, w=w, kernel=(og * groups, cg, kh, kw),
                stride=stride, padding=padding, dilation=(dh, dw), groups=groups, bias=draw(st.booleans()),
                flat_windows=draw(st.sampled_from([1, conv_columns.FLAT_WINDOWS])))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(geometry=_geometries())
def test_any_geometry_shares_without_changing_a_value(geometry, monkeypatch, interpret):
    """Random geometries, both layouts (the flat one forced on small images too): the shared step's loss
    and gradients are the interpreted graph's."""
    monkeypatch.setattr(conv_columns, "FLAT_WINDOWS", geometry["flat_windows"])
    rng = np.random.default_rng(0)
    with sg.fresh_graph():
        x = sg.placeholder("x", (geometry["n"], geometry["c"], geometry["h"], geometry["w"]))
        K = sg.parameter("K", value=rng.normal(size=geometry["kernel"]))
        b = sg.parameter("b", value=rng.normal(size=geometry["kernel"][0])) if geometry["bias"] else None
        y = sg.conv2d(x, K, bias=b, stride=geometry["stride"], padding=geometry["padding"],
                      dilation=geometry["dilation"], groups=geometry["groups"])
        loss = (sg.tanh(y) ** 2).sum()
        outputs = [loss, *sg.grad(loss, [K, x] + ([b] if b is not None else []))]
        data = rng.normal(size=x.shape)
        f = codegen.compile([x], outputs)
        assert "= _conv_columns(x, " in f.source
        for got, expected in zip(f(data), interpret(outputs, {x: data})):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
