"""sg.to_dot, sg.draw, sg.compare_modes and the Jupyter pictures."""

import re

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph import picture as drawing

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0], dtype=np.float64)


def net():
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", shape=("batch", 2))
    y = sg.placeholder("y", shape=("batch",))
    W = sg.parameter("W", value=rng.normal(size=(2, 3)))
    w = sg.parameter("w", value=rng.normal(size=3))
    h = sg.tanh(x @ W).named("h")
    loss = sg.mse(h @ w, y).named("loss")
    return x, y, W, w, h, loss


def labels(dot):
    """{vertex id: label} of the DOT text, unescaped."""
    found = re.findall(r'^  "((?:[^"\\]|\\.)*)" \[label="((?:[^"\\]|\\.)*)"', dot, flags=re.M)
    return {k: re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], v) for k, v in found}


def test_to_dot_names_as_generated_code_and_says_what_derivatives_compute():
    x, y, W, w, h, loss = net()
    grads = sg.grad(loss, [W, w])
    dot = sg.to_dot([loss, *grads])
    shown = [label.split("\n")[0] for label in labels(dot).values()]
    source = codegen.compile([x, y], [loss, *grads], simplify=False, memory_plan=False).source
    for name in ("matmul1", "h", "loss", "grad_h", "grad_W", "grad_w", "grad_matmul1"):
        assert name in shown and re.search(rf"^\s+{name} = ", source, flags=re.M), name
    assert "tanh'(y) = 1 - y²" in dot and "dtanh" not in dot.replace("dtanh1", "")
    assert "vjp of tanh(matmul1) wrt matmul1" in dot


def test_to_dot_colours_outputs_edges_and_constants():
    x, y, W, w, h, loss = net()
    (gW,) = sg.grad(loss, [W])
    dot = sg.to_dot([loss, gW], updates=None)
    assert drawing.COLOURS["forward"] in dot and drawing.COLOURS["backward"] in dot
    assert dot.count("peripheries=2") == 2  # loss and grad_W
    assert re.search(r'"x" -> "\w+" \[label="0"\]', dot) and re.search(r'"W" -> "\w+" \[label="1"\]', dot)
    both = sg.to_dot(x * x)
    assert '[label="0,1"]' in both  # an input used twice fills both argument slots
    c = sg.to_dot(x @ sg.constant(np.array([1.5, -2.0])))
    assert "[1.5, -2.]" in c or "[ 1.5, -2. ]" in c
    t = sg.to_dot(sg.jvp([h], [W], [sg.constant(np.ones((2, 3)))]))
    assert drawing.COLOURS["tangent"] in t
    step = {W: W - 0.1 * gW}
    opt = sg.to_dot([loss], updates=step)
    assert drawing.COLOURS["optimizer"] in opt


def test_to_dot_with_a_feed_shows_values_and_adjoints():
    x, y, W, w, h, loss = net()
    dot = labels(sg.to_dot(loss, feed={x: X, y: Y}))
    value = float(np.mean((np.tanh(X @ W.value) @ w.value - Y) ** 2))
    loss_label = next(v for v in dot.values() if v.startswith("loss"))
    assert f"= {value:.3f}"[:6] in loss_label and "grad = 1" in loss_label
    w_label = next(v for v in dot.values() if v.startswith("w\n"))
    gw = codegen.evaluate(sg.grad(loss, w), {x: X, y: Y})
    assert "grad = " in w_label
    assert np.allclose([float(v) for v in re.findall(r"-?\d+\.\d*", w_label.split("grad = ")[1])], gw, atol=1e-3)


def test_no_user_text_reaches_dot_unescaped():
    evil = 'x"];\n evil -> "pwn'
    x = sg.placeholder(evil, (2,))
    dot = sg.to_dot(sg.tanh(x).sum())
    assert "\n evil" not in dot and 'x"];' not in dot
    for line in dot.splitlines():
        assert len(re.findall(r'(?<!\\)(?:\\\\)*"', line)) % 2 == 0


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_draw_writes_a_picture_without_graphviz(tmp_path, suffix):
    x, y, W, w, h, loss = net()
    path = sg.draw([loss, *sg.grad(loss, [W, w])], tmp_path / f"g{suffix}", feed={x: X, y: Y}, engine="matplotlib")
    data = open(path, "rb").read()
    assert len(data) > 10_000
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]


def test_draw_errors(tmp_path):
    x, y, W, w, h, loss = net()
    with pytest.raises(ValueError, match=".png or .svg"):
        sg.draw(loss, tmp_path / "g.jpg")
    with pytest.raises(ValueError, match="engine"):
        sg.draw(loss, tmp_path / "g.png", engine="ascii")
    with pytest.raises(ValueError, match="no value for placeholder 'y'"):
        sg.draw(loss, tmp_path / "g.png", feed={x: X})


def test_jupyter_reprs():
    x = sg.placeholder("x<script>", (3,))
    out = sg.tanh(x).sum()
    svg = out._repr_svg_()
    assert "<svg" in svg and "<script>" not in svg
    f = codegen.compile([x], out)
    html = f._repr_html_()
    assert html.startswith("<pre>") and "<script>" not in html and "def compute(" in html


def test_compare_modes_costs_traces_and_picture(tmp_path):
    x = sg.placeholder("x", (3,))
    h = sg.tanh(x * 2.0).named("h")
    feed = {x: np.array([0.1, 0.2, 0.3])}
    r = sg.compare_modes(h, x, feed=feed, path=tmp_path / "modes.png")
    report = sg.explain_mode(h, x)
    assert (r.report.forward_flops, r.report.reverse_flops) == (report.forward_flops, report.reverse_flops)
    expected = 2 * (1 - np.tanh(2 * feed[x]) ** 2)  # the Jacobian is diagonal: J @ ones = 1^T J = its diagonal
    np.testing.assert_allclose(r.forward_trace.tangent(h), expected)
    np.testing.assert_allclose(r.reverse_trace.adjoint(x), expected)
    np.testing.assert_allclose(codegen.evaluate(r.forward_graph, feed), np.diag(expected))
    np.testing.assert_allclose(codegen.evaluate(r.reverse_graph, feed), np.diag(expected))
    text = str(r)
    assert "forward mode" in text and "reverse mode" in text and "tan_h" in text and "grad_x" in text
    assert open(r.path, "rb").read(4) == b"\x89PNG"
    assert str(sg.compare_modes(h, x)).count("==") == 2  # no feed: costs only
