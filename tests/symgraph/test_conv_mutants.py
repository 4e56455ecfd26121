"""conv.py's mutation run (tests/MUTANTS.md): what the value tables of test_ops and test_conv left
open. Every message of the builders and of the ops in full; the comments and keyword arguments of
the generated calls; exact flop counts; the ops with leading (basis) axes on any operand, slice by
slice, and on 2-D inputs; windows that fit once, half-kernel padding, unbatched non-square pooling;
the Jacobian in a bias; and the memory plan's buffers around the windowed helpers. Torch-free."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph.graph import apply
from symgraph.ops import (
    AvgPool2D, AvgPool2DGrad, Conv2D, Conv2DTranspose, Conv2DWeightGrad, Flatten, MaxPool2D, MaxPool2DGrad,
    MaxPool2DPick,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_ops import (  # noqa: E402
    np_avg_pool2d, np_avg_pool2d_grad, np_conv2d, np_max_pool2d, np_max_pool2d_grad,
)

P = sg.placeholder
HERE = r" at \S*test_conv_mutants\.py:\d+$"  # an op's message ends with the user's line


def _x():
    return P("x", (2, 3, 8, 8))


def _w(shape=(4, 3, 3, 3), dtype="float64"):
    return P("w", shape, dtype=dtype)


# -- the builders' argument errors: the whole message --------------------------------------------
BUILDER_ERRORS = [
    (lambda: sg.conv2d(_x(), _w(), stride=1.5), ValueError,
     "conv2d: stride must be an int >= 1 or a pair of them, got 1.5"),
    (lambda: sg.conv2d(_x(), _w(), stride=(1.5, 1)), ValueError,
     "conv2d: stride must be an int >= 1 or a pair of them, got (1.5, 1)"),
    (lambda: sg.conv2d(_x(), _w(), stride=-1), ValueError,
     "conv2d: stride must be an int >= 1 or a pair of them, got -1"),
    (lambda: sg.conv2d(_x(), _w(), stride=True), ValueError,
     "conv2d: stride must be an int >= 1 or a pair of them, got True"),
    (lambda: sg.conv2d(_x(), _w(), dilation=(1, 1, 1)), ValueError,
     "conv2d: dilation must be an int >= 1 or a pair of them, got (1, 1, 1)"),
    (lambda: sg.conv2d(_x(), _w(), padding=-1), ValueError,
     "conv2d: padding must be an int >= 0 or a pair of them, got -1"),
    (lambda: sg.conv2d(_x(), _w(), groups=0), ValueError, "conv2d: groups must be a positive int, got 0"),
    (lambda: sg.conv2d(_x(), _w(), groups=1.0), ValueError, "conv2d: groups must be a positive int, got 1.0"),
    (lambda: sg.conv2d(_x(), _w(), stride=2, padding="same"), ValueError,
     "conv2d: padding='same' needs stride 1 (as in PyTorch), got stride (2, 2)"),
    (lambda: sg.conv2d(_x(), _w((4, 3, "k", 3)), padding="same"), ValueError,
     "conv2d: padding='same' needs a static kernel size, got (k, 3)"),
    (lambda: sg.conv2d(_x(), _w(), padding="full"), ValueError,
     "conv2d: padding must be an int, a pair, 'same' or 'valid', got 'full'"),
    (lambda: sg.max_pool2d(_x(), 0), ValueError, "max_pool2d: kernel must be an int >= 1 or a pair of them, got 0"),
    (lambda: sg.avg_pool2d(_x(), (2, 0)), ValueError,
     "avg_pool2d: kernel must be an int >= 1 or a pair of them, got (2, 0)"),
    (lambda: sg.max_pool2d(_x(), 2, stride=0), ValueError,
     "max_pool2d: stride must be an int >= 1 or a pair of them, got 0"),
    (lambda: sg.avg_pool2d(_x(), 2, padding=-1), ValueError,
     "avg_pool2d: padding must be an int >= 0 or a pair of them, got -1"),
    # padding may be half the kernel, no more: rows and columns each on their own
    (lambda: sg.max_pool2d(_x(), 2, padding=(2, 0)), ValueError,
     "max_pool2d: padding (2, 0) must be at most half the kernel (2, 2) (as in PyTorch)"),
    (lambda: sg.avg_pool2d(_x(), 2, padding=(0, 2)), ValueError,
     "avg_pool2d: padding (0, 2) must be at most half the kernel (2, 2) (as in PyTorch)"),
    (lambda: sg.flatten(_x(), 1.5), TypeError, "flatten: start_axis must be an int, got 1.5"),
    (lambda: sg.flatten(_x(), True), TypeError, "flatten: start_axis must be an int, got True"),
]


@pytest.mark.parametrize("build, error, message", BUILDER_ERRORS)
def test_builder_argument_errors_say_exactly_what_is_wrong(build, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        build()


# -- shape and dtype errors: "<op>: <problem> (operand shapes ...) at <the user's line>" -------------
def _conv(*args, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    return apply(Conv2D(stride, padding, dilation, groups), *args)


def _pool(op, *args, kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0)):
    return apply(op(kernel, stride, padding), *args)


ATTRS = ((1, 1), (0, 0, 0, 0), (1, 1))
SHAPE_ERRORS = [
    (lambda: sg.conv2d(_x(), P("w3", (4, 3, 3))), sg.ShapeError,
     "conv2d: x must be N×C×H×W and w O×(C/groups)×kH×kW, got x (2, 3, 8, 8) and w (4, 3, 3)"),
    (lambda: sg.conv2d(_x(), _w(dtype="int64")), sg.DTypeError,
     "conv2d: conv2d needs floating-point operands (operand dtypes float64, int64)"),
    (lambda: sg.conv2d(P("xn", ("n", 3, "h", 8)), _w()), sg.ShapeError,
     "conv2d: the sizes (3, h, 8) must be static ints (only the batch dimension may be named) "
     "(operand shapes (n, 3, h, 8), (4, 3, 3, 3))"),
    (lambda: sg.conv2d(_x(), _w((4, 2, 3, 3))), sg.ShapeError,
     "conv2d: x has 3 channels but w expects 2 (2 per group × 1 group) (operand shapes (2, 3, 8, 8), (4, 2, 3, 3))"),
    (lambda: sg.conv2d(_x(), _w((4, 1, 3, 3)), groups=2), sg.ShapeError,
     "conv2d: x has 3 channels but w expects 2 (1 per group × 2 groups) (operand shapes (2, 3, 8, 8), (4, 1, 3, 3))"),
    (lambda: sg.conv2d(P("x4", (2, 4, 8, 8)), _w((3, 2, 3, 3)), groups=2), sg.ShapeError,
     "conv2d: 3 output channels do not split into 2 groups (operand shapes (2, 4, 8, 8), (3, 2, 3, 3))"),
    # asymmetric padding (the op's own attribute): each side counts where it belongs
    (lambda: _conv(P("xs", (1, 1, 2, 2)), P("ws", (1, 1, 6, 15)), padding=(1, 2, 4, 8), dilation=(2, 1)),
     sg.ShapeError, "conv2d: the kernel 6×15 (dilation (2, 1)) does not fit the padded input 5×14 "
                    "(operand shapes (1, 1, 2, 2), (1, 1, 6, 15))"),
    (lambda: sg.conv2d(_x(), _w((4, 3, 9, 3))), sg.ShapeError,  # the rows alone
     "conv2d: the kernel 9×3 (dilation 1) does not fit the padded input 8×8 "
     "(operand shapes (2, 3, 8, 8), (4, 3, 9, 3))"),
    (lambda: sg.conv2d(_x(), _w((4, 3, 3, 9))), sg.ShapeError,  # the columns alone
     "conv2d: the kernel 3×9 (dilation 1) does not fit the padded input 8×8 "
     "(operand shapes (2, 3, 8, 8), (4, 3, 3, 9))"),
    (lambda: sg.conv2d(_x(), _w(), bias=P("b", (3,))), sg.ShapeError,
     "conv2d: the bias must end in the 4 output channels (operand shapes (2, 3, 8, 8), (4, 3, 3, 3), (3,))"),
    (lambda: _conv(P("x5", (2, 2, 3, 8, 8)), _w(), P("b2", (3, 4))), sg.ShapeError,
     "conv2d: leading dimensions cannot be broadcast (2 vs 3) (operand shapes (2, 2, 3, 8, 8), (4, 3, 3, 3), (3, 4))"),
    (lambda: _conv(P("x5", (2, 2, 3, 8, 8)), P("w5", (3, 4, 3, 3, 3))), sg.ShapeError,
     "conv2d: leading dimensions cannot be broadcast (2 vs 3) (operand shapes (2, 2, 3, 8, 8), (3, 4, 3, 3, 3))"),
    (lambda: _conv(P("x3", (3, 8, 8)), _w()), sg.ShapeError,
     "conv2d: expected operands with at least 4 and 4 dimensions (operand shapes (3, 8, 8), (4, 3, 3, 3))"),
    (lambda: _conv(_x(), P("w3", (3, 3, 3))), sg.ShapeError,
     "conv2d: expected operands with at least 4 and 4 dimensions (operand shapes (2, 3, 8, 8), (3, 3, 3))"),
    (lambda: apply(Conv2DTranspose((8, 8), *ATTRS, 1), P("g", (2, 5, 6, 6)), _w()), sg.ShapeError,
     "conv_transpose2d: g has 5 channels but w has 4 output channels (operand shapes (2, 5, 6, 6), (4, 3, 3, 3))"),
    (lambda: apply(Conv2DTranspose((7, 6), (2, 2), (1, 1, 1, 1), (1, 1), 1), P("g", (1, 2, 4, 5, 3)), _w()),
     sg.ShapeError, "conv_transpose2d: an input of size (7, 6) has (4, 3) windows, not (5, 3) "
                    "(operand shapes (1, 2, 4, 5, 3), (4, 3, 3, 3))"),
    (lambda: apply(Conv2DTranspose((8, 8), *ATTRS, 2), P("g", (2, 3, 6, 6)), _w((3, 1, 3, 3))), sg.ShapeError,
     "conv_transpose2d: 3 output channels do not split into 2 groups (operand shapes (2, 3, 6, 6), (3, 1, 3, 3))"),
    (lambda: apply(Conv2DWeightGrad((3, 3), *ATTRS, 1), _x(), P("g", (2, "o", 6, 6))), sg.ShapeError,
     "conv2d_weight_grad: the channels of g must be a static int (operand shapes (2, 3, 8, 8), (2, o, 6, 6))"),
    (lambda: apply(Conv2DWeightGrad((3, 3), *ATTRS, 2), _x(), P("g", (2, 4, 6, 6))), sg.ShapeError,
     "conv2d_weight_grad: 3 channels do not split into 2 groups (operand shapes (2, 3, 8, 8), (2, 4, 6, 6))"),
    (lambda: apply(Conv2DWeightGrad((3, 3), *ATTRS, 1), _x(), P("g", (2, 4, 5, 6))), sg.ShapeError,
     "conv2d_weight_grad: g must be (2, 4, 6, 6): x's batch, and the windows a (3, 3) kernel has in x "
     "(operand shapes (2, 3, 8, 8), (2, 4, 5, 6))"),
    (lambda: apply(Conv2DWeightGrad((3, 3), *ATTRS, 1), _x(), P("g", (3, 4, 6, 6))), sg.ShapeError,
     "conv2d_weight_grad: g must be (2, 4, 6, 6): x's batch, and the windows a (3, 3) kernel has in x "
     "(operand shapes (2, 3, 8, 8), (3, 4, 6, 6))"),
    # pooling: asymmetric padding, rows and columns each on their own
    (lambda: _pool(MaxPool2D, P("xp", (5, 6)), kernel=(9, 2), stride=(1, 1), padding=(1, 2, 3, 4)), sg.ShapeError,
     "max_pool2d: the window (9, 2) does not fit the padded input 8×13 (operand shapes (5, 6))"),
    (lambda: _pool(AvgPool2D, P("xp", (5, 6)), kernel=(2, 14), stride=(1, 1), padding=(1, 2, 3, 4)), sg.ShapeError,
     "avg_pool2d: the window (2, 14) does not fit the padded input 8×13 (operand shapes (5, 6))"),
    (lambda: _pool(MaxPool2D, P("x1", (5,)), kernel=(1, 1), stride=(1, 1)), sg.ShapeError,
     "max_pool2d: expected at least 2 dimensions (operand shapes (5,))"),
    (lambda: _pool(AvgPool2D, P("x1", (5,)), kernel=(1, 1), stride=(1, 1)), sg.ShapeError,
     "avg_pool2d: expected at least 2 dimensions (operand shapes (5,))"),
    (lambda: sg.max_pool2d(P("x2", (8, 8)), 2), sg.ShapeError,
     "max_pool2d: x must be N×C×H×W or C×H×W, got (8, 8)"),
    (lambda: sg.avg_pool2d(P("x5", (1, 2, 3, 8, 8)), 2), sg.ShapeError,
     "avg_pool2d: x must be N×C×H×W or C×H×W, got (1, 2, 3, 8, 8)"),
    (lambda: _pool(MaxPool2DPick, _x(), P("v", (2, 3, 8, 7))), sg.ShapeError,
     "max_pool2d_pick: v must end in the same two dimensions as x (operand shapes (2, 3, 8, 8), (2, 3, 8, 7))"),
    (lambda: _pool(MaxPool2DPick, _x(), P("v1", (8,))), sg.ShapeError,
     "max_pool2d_pick: expected operands with at least 2 and 2 dimensions (operand shapes (2, 3, 8, 8), (8,))"),
    (lambda: _pool(MaxPool2DGrad, _x(), P("g", (2, 3, 4, 3)), sg.max_pool2d(_x(), 2)), sg.ShapeError,
     "max_pool2d_grad: the second operand must end in the (4, 4) windows of the first "
     "(operand shapes (2, 3, 8, 8), (2, 3, 4, 3), (2, 3, 4, 4))"),
    (lambda: _pool(MaxPool2DGrad, _x(), P("g", (2, 3, 4, 4)), P("pp", (3, 4, 4))), sg.ShapeError,
     "max_pool2d_grad: the third operand must be the first max-pooled "
     "(operand shapes (2, 3, 8, 8), (2, 3, 4, 4), (3, 4, 4))"),
    (lambda: apply(AvgPool2DGrad((8, 8), (2, 2), (2, 2), (0, 0, 0, 0)), P("g", (2, 3, 4, 3))), sg.ShapeError,
     "avg_pool2d_grad: an input of size (8, 8) has (4, 4) windows (operand shapes (2, 3, 4, 3))"),
    (lambda: sg.flatten(P("x3", (2, 3, 4)), 3), sg.ShapeError,
     "flatten: start_axis 3 is out of range for 3 dimension(s) (operand shapes (2, 3, 4))"),
    (lambda: sg.flatten(P("v1", (5,)), 1), sg.ShapeError,
     "flatten: start_axis 1 is out of range for 1 dimension(s) (operand shapes (5,))"),
]


@pytest.mark.parametrize("build, error, message", SHAPE_ERRORS)
def test_shape_errors_name_the_op_the_problem_the_shapes_and_the_line(build, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}{HERE}"):
        build()


# -- what the generated code says: the comment after each call, and its keyword arguments -------------
@pytest.mark.parametrize("attrs, detail, kwargs", [
    (((1, 1), (0, 0, 0, 0), (1, 1), 1), "stride 1, padding 0", {}),
    (((2, 1), (1, 1, 1, 1), (2, 2), 2), "stride (2, 1), padding 1, dilation 2, groups 2",
     {"stride": (2, 1), "padding": (1, 1, 1, 1), "dilation": (2, 2), "groups": 2}),
    (((1, 2), (2, 2, 1, 1), (1, 2), 1), "stride (1, 2), padding (2, 1), dilation (1, 2)",
     {"stride": (1, 2), "padding": (2, 2, 1, 1), "dilation": (1, 2)}),
    (((1, 1), (0, 1, 1, 1), (2, 1), 3), "stride 1, padding (0, 1, 1, 1) (top, bottom, left, right), "
     "dilation (2, 1), groups 3", {"padding": (0, 1, 1, 1), "dilation": (2, 1), "groups": 3}),
    (((2, 2), (1, 0, 1, 1), (1, 1), 1), "stride 2, padding (1, 0, 1, 1) (top, bottom, left, right)",
     {"stride": (2, 2), "padding": (1, 0, 1, 1)}),
    (((1, 1), (1, 1, 0, 1), (1, 1), 1), "stride 1, padding (1, 1, 0, 1) (top, bottom, left, right)",
     {"padding": (1, 1, 0, 1)}),
])
def test_conv_comment_and_keywords_show_what_differs_from_the_defaults(attrs, detail, kwargs):
    for op in (Conv2D(*attrs), Conv2DTranspose((5, 6), *attrs), Conv2DWeightGrad((3, 2), *attrs)):
        assert op.detail(None) == detail
    assert Conv2D(*attrs).kwargs() == kwargs
    assert Conv2DTranspose((5, 6), *attrs).kwargs() == {"size": (5, 6), **kwargs}
    assert Conv2DWeightGrad((3, 2), *attrs).kwargs() == {"kernel": (3, 2), **kwargs}


@pytest.mark.parametrize("attrs, detail, kwargs", [
    (((2, 2), (2, 2), (0, 0, 0, 0)), "kernel 2, stride 2", {"kernel": (2, 2), "stride": (2, 2)}),
    (((3, 2), (2, 1), (1, 1, 1, 1)), "kernel (3, 2), stride (2, 1), padding 1",
     {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 1, 1, 1)}),
    (((3, 3), (1, 1), (1, 1, 0, 0)), "kernel 3, stride 1, padding (1, 0)",
     {"kernel": (3, 3), "stride": (1, 1), "padding": (1, 1, 0, 0)}),
])
def test_pool_comment_and_keywords(attrs, detail, kwargs):
    for op in (MaxPool2D(*attrs), MaxPool2DPick(*attrs), MaxPool2DGrad(*attrs), AvgPool2D(*attrs)):
        assert op.detail(None) == detail and op.kwargs() == kwargs
    assert AvgPool2DGrad((7, 5), *attrs).kwargs() == {"size": (7, 5), **kwargs}


def test_generated_calls_pass_only_what_differs_from_the_defaults(rng):
    x, w = P("x", (2, 3, 6, 5)), P("w", (4, 3, 3, 2))
    y = sg.conv2d(x, w) * 2.0
    source = codegen.compile([x, w], y).source
    assert re.search(r"= _conv2d\(x, w(, out=\w+)?\)\s+# conv2d\(x, w\), stride 1, padding 0$", source, re.M), source
    x_v, w_v = rng.normal(size=x.shape), rng.normal(size=w.shape)
    np.testing.assert_allclose(codegen.evaluate(y, {x: x_v, w: w_v}), 2 * np_conv2d(x_v, w_v), rtol=1e-12)


# -- flops: exact counts, leading axes included -------------------------------------------------------
def _flops(node):
    return node.op.flops(node, {})


CONV_ATTRS = dict(stride=(2, 1), padding=(1, 0, 2, 1), dilation=(1, 3), groups=2)
X, W, B, G = (3, 2, 8, 5), (6, 1, 3, 2), (6,), (3, 6, 4, 5)  # G: conv2d(x, w)'s shape; each one's sizes differ
SIZE, KERNEL = X[-2:], W[-2:]


def _ops():
    a = tuple(CONV_ATTRS.values())
    return Conv2D(*a), Conv2DTranspose(SIZE, *a), Conv2DWeightGrad(KERNEL, *a)


def test_flop_counts_are_two_per_tap_of_every_window():
    conv, back, weight = _ops()
    taps = 2 * G[0] * G[2] * G[3] * int(np.prod(W))  # 2 flops × N × H'·W' windows × O·C/groups·kH·kW taps
    cases = [
        (apply(conv, P("x", X), P("w", W)), taps),
        (apply(conv, P("x", X), P("w", W), P("b", B)), taps),
        (apply(conv, P("x", (3, *X)), P("w", W)), 3 * taps),  # a leading axis: three convolutions
        (apply(conv, P("x", X), P("w", (3, *W))), 3 * taps),
        (apply(back, P("g", G), P("w", W)), taps),
        (apply(back, P("g", (3, *G)), P("w", W)), 3 * taps),
        (apply(back, P("g", G), P("w", (3, *W))), 3 * taps),  # (a forward sweep in w of a gradient in x)
        (apply(weight, P("x", X), P("g", G)), taps),
        (apply(weight, P("x", X), P("g", (3, *G))), 3 * taps),
        (apply(weight, P("x", (3, *X)), P("g", G)), 3 * taps),  # (a forward sweep in x of a gradient in w)
        (apply(weight, P("x", ("n", *X[1:])), P("g", ("n", *G[1:]))), taps // G[0]),  # N named, counted as 1
    ]
    for node, expected in cases:
        assert _flops(node) == expected, (node, _flops(node), expected)
        assert isinstance(_flops(node), int)
    attrs = ((3, 2), (2, 1), (1, 1, 1, 1))
    x, pooled_shape = P("x", (2, 3, 7, 5)), (2, 3, 4, 6)
    for node, expected in [
        (apply(MaxPool2D(*attrs), x), 2 * 3 * 4 * 6 * 6),  # kH·kW per output
        (apply(AvgPool2D(*attrs), x), 2 * 3 * 4 * 6 * 6),
        (apply(MaxPool2DPick(*attrs), x, P("v", (5, 2, 3, 7, 5))), 5 * 2 * 3 * 4 * 6 * 6),
        (apply(MaxPool2DGrad(*attrs), x, P("g", (5, *pooled_shape)), apply(MaxPool2D(*attrs), x)),
         5 * 2 * 3 * 4 * 6 * 6),  # kH·kW per entry of g
        (apply(AvgPool2DGrad((7, 5), *attrs), P("g", (5, *pooled_shape))), 5 * 2 * 3 * 4 * 6 * 6),
    ]:
        assert _flops(node) == expected, (node, _flops(node), expected)


# -- leading axes (a Jacobian's basis) on any operand: each slice is the op on that slice ----------------
def _run(op, arrays, wrt, c, tangents):
    nodes = [P(f"a{i}", np.shape(a)) for i, a in enumerate(arrays)]
    out = apply(op, *nodes)
    vj = sg.vjp([out], [nodes[i] for i in wrt], [sg.constant(c)])
    (jv,) = sg.jvp([out], [nodes[i] for i in wrt], [sg.constant(t) for t in tangents])
    got = codegen.compile(nodes, [out, *vj, jv])(*arrays)
    assert all(isinstance(d, int) for d in out.shape) and got[0].shape == out.shape
    return got


def _check_slices(op, arrays, batched, wrt, rng):
    """op over operands of which those in ``batched`` carry a leading axis of 2: its value, vjp
    (summed over the slices for an operand without the axis) and jvp, slice by slice; and the vjp
    and jvp are each other's adjoints, <c, J t> = <J^T c, t>."""
    out_shape = apply(op, *[P(f"s{i}", np.shape(a)) for i, a in enumerate(arrays)]).shape
    c = rng.normal(size=out_shape)
    ts = [rng.normal(size=np.shape(arrays[i])) for i in wrt]
    value, *grads, tangent_out = _run(op, arrays, wrt, c, ts)
    lhs, rhs = np.sum(c * tangent_out), sum(np.sum(g * t) for g, t in zip(grads, ts))
    assert abs(lhs) > 1e-3 and np.isclose(lhs, rhs, rtol=1e-10, atol=0), (lhs, rhs)
    expected_grads = [np.zeros(np.shape(arrays[i])) for i in wrt]
    for s in range(2):
        part = [a[s] if i in batched else a for i, a in enumerate(arrays)]
        t_part = [t[s] if i in batched else t for i, t in zip(wrt, ts)]
        v_s, *g_s, t_s = _run(op, part, wrt, c[s], t_part)
        np.testing.assert_allclose(value[s], v_s, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tangent_out[s], t_s, rtol=1e-12, atol=1e-12)
        for k, i in enumerate(wrt):
            if i in batched:
                expected_grads[k][s] = g_s[k]
            else:
                expected_grads[k] += g_s[k]
    for got, expected in zip(grads, expected_grads):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def _lead(shape, on):
    return (2, *shape) if on else shape


@pytest.mark.parametrize("batched", [{0}, {1}, {0, 1}, {2}, {0, 1, 2}], ids=["x", "w", "x_w", "bias", "all"])
def test_conv2d_with_leading_axes_is_the_conv_of_each_slice(batched, rng):
    conv, _, _ = _ops()
    arrays = [rng.normal(size=_lead(s, i in batched)) for i, s in enumerate((X, W, B))]
    if batched in ({0}, {1}, {0, 1}):
        _check_slices(conv, arrays[:2], batched, [0, 1], rng)
    _check_slices(conv, arrays, batched, [0, 1, 2], rng)


@pytest.mark.parametrize("batched", [{0}, {1}, {0, 1}], ids=["first", "second", "both"])
def test_the_adjoints_with_leading_axes_are_those_of_each_slice(batched, rng):
    _, back, weight = _ops()
    for op, shapes in ((back, (G, W)), (weight, (X, G))):
        arrays = [rng.normal(size=_lead(s, i in batched)) for i, s in enumerate(shapes)]
        _check_slices(op, arrays, batched, [0, 1], rng)


POOL = ((3, 2), (2, 1), (1, 1, 1, 0))  # kernel, stride, padding (top, bottom, left, right)


@pytest.mark.parametrize("base", [(7, 5), (3, 7, 5)], ids=["HxW", "CxHxW"])
def test_pooling_ops_with_leading_axes_on_2d_and_3d_inputs(base, rng):
    """The ops take any number of leading axes, two spatial ones at least: here H×W and C×H×W
    (the builders ask for 3 or 4), each with a leading axis of 2 on the operand the sweeps carry."""
    x = rng.permutation(np.prod(base)).reshape(base).astype(float)  # no ties
    pooled = np_max_pool2d(x[None], POOL[0], POOL[1], POOL[2])[0]
    _check_slices(MaxPool2D(*POOL), [np.stack([x, -x])], {0}, [0], rng)
    _check_slices(AvgPool2D(*POOL), [rng.normal(size=(2, *base))], {0}, [0], rng)
    _check_slices(MaxPool2DPick(*POOL), [x, rng.normal(size=(2, *base))], {1}, [1], rng)
    _check_slices(MaxPool2DGrad(*POOL), [x, rng.normal(size=(2, *pooled.shape)), pooled], {1}, [1], rng)
    _check_slices(AvgPool2DGrad(base[-2:], *POOL), [rng.normal(size=(2, *pooled.shape))], {0}, [0], rng)
    # and the values themselves, on the unbatched operand (the references take N×C×H×W)
    x4 = x.reshape((1,) * (4 - x.ndim) + x.shape)
    g = rng.normal(size=pooled.shape)
    node = P("x", base)
    got = codegen.evaluate([apply(MaxPool2D(*POOL), node), apply(AvgPool2D(*POOL), node),
                            apply(MaxPool2DGrad(*POOL), node, sg.constant(g), apply(MaxPool2D(*POOL), node)),
                            apply(AvgPool2DGrad(base[-2:], *POOL), sg.constant(g))], {node: x})
    g4 = g.reshape(x4.shape[:2] + g.shape[-2:])
    expected = [np_max_pool2d(x4, *POOL), np_avg_pool2d(x4, *POOL), np_max_pool2d_grad(x4, g4, *POOL),
                np_avg_pool2d_grad(g4, base[-2:], *POOL)]
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e.reshape(a.shape), rtol=1e-12, atol=1e-12)


def test_a_forward_jacobian_differentiates_again(rng):
    """Reverse mode over a forward-mode Jacobian: the vjps of conv ops whose operands carry the
    Jacobian's basis axis. sum(J_w * R) is linear in x, and sum(J_x * R) in w: the gradient is
    exact, and finite differences find it to rounding."""
    x, w = P("x", (1, 2, 4, 3)), P("w", (2, 1, 2, 2))
    x_v, w_v = rng.normal(size=x.shape), rng.normal(size=w.shape)
    for wrt, other in ((w, x), (x, w)):
        y = sg.conv2d(x, w, padding=1, groups=2, stride=(2, 1))
        J = sg.jacobian(y, wrt, mode="forward")
        R = rng.normal(size=J.shape)
        s = (J * R).sum()
        (g,) = sg.grad(s, [other])
        f, df = codegen.compile([x, w], s), codegen.compile([x, w], g)
        got = df(x_v, w_v)
        base = [x_v, w_v]
        k = 0 if other is x else 1
        expected = np.zeros(base[k].shape)
        for idx in np.ndindex(base[k].shape):
            plus, minus = [a.copy() for a in base], [a.copy() for a in base]
            plus[k][idx] += 1.0
            minus[k][idx] -= 1.0
            expected[idx] = (f(*plus) - f(*minus)) / 2
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_in_the_bias_is_one_per_channel(mode, rng):
    """d conv2d(x, w, bias=b)[n, o, i, j] / d b[k] is 1 where o == k, else 0 (either sweep)."""
    x, w, b = P("x", (2, 3, 5, 4)), P("w", (4, 3, 2, 2)), P("b", (4,))
    y = sg.conv2d(x, w, stride=(1, 2), bias=b)
    J = codegen.evaluate(sg.jacobian(y, b, mode=mode), {x: rng.normal(size=x.shape), w: rng.normal(size=w.shape),
                                                         b: rng.normal(size=b.shape)})
    expected = np.broadcast_to(np.eye(4)[None, :, None, None, :], y.shape + (4,))
    assert J.shape == expected.shape and np.array_equal(J, expected)


# -- values at the edges -------------------------------------------------------------------------------------
def test_windows_that_fit_exactly_once(rng):
    """A kernel or window as large as the (padded) input: one output row and column."""
    x, w, b = P("x", (2, 3, 5, 4)), P("w", (2, 3, 5, 4)), P("b", (2,))
    feed = {x: rng.normal(size=x.shape), w: rng.normal(size=w.shape), b: rng.normal(size=b.shape)}
    conv = sg.conv2d(x, w, bias=b)
    wide = sg.conv2d(x, P("w", (2, 3, 3, 2)), padding=(0, 1), dilation=(2, 5))  # dilated to 5 rows, 6 columns
    mx, av = sg.max_pool2d(x, (5, 4)), sg.avg_pool2d(x, (6, 5), padding=(1, 2))
    assert conv.shape == (2, 2, 1, 1) and wide.shape == (2, 2, 1, 1) and mx.shape == av.shape == (2, 3, 1, 1)
    w2 = rng.normal(size=(2, 3, 3, 2))
    feed[wide.inputs[1]] = w2
    got = codegen.evaluate([conv, wide, mx, av], feed)
    xv = feed[x]
    expected = [np_conv2d(xv, feed[w]) + feed[b][:, None, None], np_conv2d(xv, w2, p=(0, 0, 1, 1), d=(2, 5)),
                np_max_pool2d(xv, (5, 4)), np_avg_pool2d(xv, (6, 5), p=(1, 1, 2, 2))]
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, padding", [((2, 3), 1), ((3, 2), (1, 1)), ((4, 2), (2, 1)), ((1, 2), 0),
                                             ((2, 1), (1, 0))])
def test_pooling_with_padding_half_the_kernel_and_one_wide_kernels(kernel, padding, rng):
    """PyTorch accepts padding up to half the kernel (2 for 4, 1 for 2 and 3), and a kernel one wide."""
    x = P("x", (2, 2, 5, 6))
    x_v = rng.permutation(int(np.prod(x.shape))).reshape(x.shape).astype(float)
    p = (padding, padding) if isinstance(padding, int) else padding
    pad4 = (p[0], p[0], p[1], p[1])
    got = codegen.evaluate([sg.max_pool2d(x, kernel, padding=padding), sg.avg_pool2d(x, kernel, 1, padding)],
                           {x: x_v})
    np.testing.assert_allclose(got[0], np_max_pool2d(x_v, kernel, None, pad4), rtol=1e-12)
    np.testing.assert_allclose(got[1], np_avg_pool2d(x_v, kernel, (1, 1), pad4), rtol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_unbatched_non_square_pooling_and_its_gradient(kind, rng):
    """C×H×W with C, H, W all different: the windows run over the last two axes."""
    x = P("x", (3, 7, 5))
    x_v = rng.permutation(int(np.prod(x.shape))).reshape(x.shape).astype(float)
    y = getattr(sg, f"{kind}_pool2d")(x, (3, 2), stride=(2, 1), padding=1)
    R = rng.normal(size=y.shape)
    got_y, got_g = codegen.compile([x], [y, sg.grad((y * R).sum(), x)])(x_v)
    p = (1, 1, 1, 1)
    if kind == "max":
        ey, eg = np_max_pool2d(x_v[None], (3, 2), (2, 1), p), np_max_pool2d_grad(x_v[None], R[None], (3, 2), (2, 1), p)
    else:
        ey, eg = np_avg_pool2d(x_v[None], (3, 2), (2, 1), p), np_avg_pool2d_grad(R[None], (7, 5), (3, 2), (2, 1), p)
    assert y.shape == (3, 4, 6)
    np.testing.assert_allclose(got_y, ey[0], rtol=1e-12)
    np.testing.assert_allclose(got_g, eg[0], rtol=1e-12, atol=1e-12)


def test_same_padding_with_a_kernel_even_one_way_and_odd_the_other(rng):
    """"same" pads (k-1)·d in all, the extra row or column after: (0, 1, 2, 2) for a 2×3 kernel of dilation (1, 2)."""
    x, w = P("x", (1, 2, 5, 6)), P("w", (3, 2, 2, 3))
    y = sg.conv2d(x, w, padding="same", dilation=(1, 2))
    assert y.op.padding == (0, 1, 2, 2) and y.shape == (1, 3, 5, 6)
    x_v, w_v = rng.normal(size=x.shape), rng.normal(size=w.shape)
    np.testing.assert_allclose(codegen.evaluate(y, {x: x_v, w: w_v}), np_conv2d(x_v, w_v, p=(0, 1, 2, 2), d=(1, 2)),
                               rtol=1e-12, atol=1e-12)


def test_flatten_from_the_first_axis_and_of_a_vector(rng):
    x = P("x", (2, 3, 4))
    a = rng.normal(size=x.shape)
    whole = sg.flatten(x, start_axis=0)
    assert whole.shape == (24,) and isinstance(whole.op, Flatten)
    assert sg.flatten(x, start_axis=-3).shape == (24,)
    np.testing.assert_array_equal(codegen.evaluate(whole * 1.0, {x: a}), a.reshape(-1))
    v = P("v", (5,))
    assert sg.flatten(v, 0) is v and sg.flatten(v, -1) is v


# -- the memory plan: the windowed helpers write into buffers, never into one they read ----------------------
HELPERS = ("_conv2d", "_conv_transpose2d", "_conv2d_weight_grad", "_max_pool2d", "_max_pool2d_grad",
           "_avg_pool2d", "_avg_pool2d_grad")


def _windowed_lines(source):
    """(value, helper, arguments, buffer) of each windowed helper's line written with out=, and the
    buffer each value's name is held in."""
    holder, lines = {}, []
    for line in source.splitlines():
        m = re.match(r"\s*(\w+) = (\w+)\((.*), out=(buf\d+)\)", line)
        if m:
            holder[m.group(1)] = m.group(4)
            lines.append(m.groups())
        m = re.search(r"# (buf\d+) now holds (\w+)", line)
        if m:
            holder[m.group(2)] = m.group(1)
    return [g for g in lines if g[1] in HELPERS], holder


def test_windowed_helpers_write_into_buffers_they_do_not_read(rng):
    """The conv and pooling helpers read their operands' windows as they write: their result takes a
    buffer of the plan (out=), but never the buffer of an operand of the same line, even one read
    there for the last time (they are not elementwise). Shapes are kept (padding 1, stride 1) so
    that every buffer would fit: a chain read once a value (forward), and a gradient."""
    x, w, b = P("x", (2, 2, 6, 6)), P("w", (2, 2, 3, 3)), P("b", (2,))
    h = sg.tanh(sg.conv2d(sg.tanh(x), w, padding=1, bias=b))
    p = sg.max_pool2d(h, 3, stride=1, padding=1)
    a = sg.avg_pool2d(sg.tanh(p), 3, stride=1, padding=1)
    loss = sg.sum(sg.tanh(a) * x)
    same = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    back = apply(Conv2DTranspose((6, 6), *same), sg.tanh(apply(Conv2D(*same), sg.tanh(x), w)), w)
    chain = sg.avg_pool2d(sg.tanh(sg.max_pool2d(sg.tanh(back), 3, stride=1, padding=1)), 3, stride=1, padding=1)
    values = {x: rng.normal(size=x.shape), w: rng.normal(size=w.shape), b: rng.normal(size=b.shape)}
    seen = set()
    for outputs in ([loss, *sg.grad(loss, [x, w, b])], [sg.sum(chain * x)]):
        f = codegen.compile([x, w, b], outputs)
        windowed, holder = _windowed_lines(f.source)
        seen |= {g[1] for g in windowed}
        for name, fn, args, buf in windowed:
            operands = re.findall(r"\b(\w+)\b", args.split("=")[0])
            assert all(holder.get(o) != buf for o in operands), (name, fn, args, buf, f.source)
        expected = codegen.compile([x, w, b], outputs, memory_plan=False)(*values.values())
        for got, e in zip(f(*values.values()), expected):
            np.testing.assert_allclose(got, e, rtol=1e-12, atol=1e-12)
    assert seen >= {"_conv2d", "_conv_transpose2d", "_max_pool2d", "_avg_pool2d", "_max_pool2d_grad",
                    "_avg_pool2d_grad"}, seen


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_flatten_jacobian(mode, rng):
    """d flatten(x * x)[n, k] / d x[m, i, j] = 2 x[m, i, j] where m == n and k == i * W + j (the
    sweep's basis axis comes first: flatten starts one axis later on a tangent)."""
    x = P("x", (2, 3, 2))
    x_v = rng.normal(size=x.shape)
    J = codegen.evaluate(sg.jacobian(sg.flatten(x * x), x, mode=mode), {x: x_v})
    expected = np.zeros((2, 6, 2, 3, 2))
    for m, i, j in np.ndindex(x_v.shape):
        expected[m, i * 2 + j, m, i, j] = 2 * x_v[m, i, j]
    np.testing.assert_allclose(J, expected, rtol=1e-12, atol=1e-12)
