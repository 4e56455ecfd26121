"""index.py's mutation run (tests/MUTANTS.md): what test_ops left open. The messages of the builders
and of the ops' own checks in full (the ops applied directly, as a rule or a user may), negative and
edge indices of take, gather's axes and its broadcasting of length-1 and named axes, and the basic
index combined with an array entry (ellipses, masks of two axes, an entry of two axes, a 0-d entry)."""

from __future__ import annotations

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph.graph import apply
from symgraph.ops.index import Gather, Take, Ungather, Untake

P = sg.placeholder
RNG = np.random.default_rng(16)
HERE = r" at \S*test_index_mutants\.py:\d+$"  # an op's message ends with the user's line
MASK_NODE = (r"indexing with a boolean mask node <Node placeholder 'm' \(3,\) bool>: the number of entries it "
             r"selects is known only at run time, so the result would have no static shape; use "
             r"sg\.where\(mask, x, 0\) to keep the shape, or integer indices \(sg\.take\) when the count is fixed$")


def _run(out, feed):
    return codegen.evaluate([out], feed)[0]


def _x(shape=(3, 4)):
    return P("x", shape), RNG.normal(size=shape)


def _ints(name, shape):
    return P(name, shape, dtype="int64")


# -- the ops' own checks, in full -------------------------------------------------------------------
@pytest.mark.parametrize("build, name", [
    (lambda x, f: apply(Take(-1), x, f), "take"),
    (lambda x, f: apply(Untake(-1, 3), P("v", (2,)), f), "untake"),
    (lambda x, f: apply(Gather(-1), x, P("g", (3, 2))), "gather"),
    (lambda x, f: apply(Ungather(-1), P("v", (3, 2)), P("g", (3, 2)), x), "ungather"),
])
def test_float_indices_are_refused_by_each_op(build, name):
    with pytest.raises(sg.DTypeError, match=rf"^{name}: indices must be integers \(operand dtypes float64, float64\)"
                                            + HERE):
        build(P("x", (3, 4)), P("f", (2,)))


def test_take_op_checks_its_axis_and_its_length():
    x, i = P("x", (3, 4)), _ints("i", (2,))
    for axis in (0, 1, -3):
        with pytest.raises(sg.ShapeError, match=rf"^take: axis {axis} is out of range \(operand shapes \(3, 4\), \(2,\)\)"
                                                + HERE):
            apply(Take(axis), x, i)
    assert apply(Take(-2), x, i).shape == (2, 4)
    with pytest.raises(sg.ShapeError, match=r"^take: the indexed axis must have a static length \(operand shapes "
                                            r"\(n, 3\), \(1,\)\)" + HERE):
        sg.take(P("y", ("n", 3)), [0], axis=0)


def test_untake_op_needs_as_many_value_axes_as_the_indices():
    with pytest.raises(sg.ShapeError, match=r"^untake: values have fewer axes than the indices need \(operand shapes "
                                            r"\(2,\), \(2, 2\)\)" + HERE):
        apply(Untake(-1, 3), P("v", (2,)), _ints("i", (2, 2)))


def test_gather_op_checks():
    x = P("x", (3, 4))
    with pytest.raises(sg.ShapeError, match=r"^gather: indices need as many axes as x \(operand shapes \(3, 4\), "
                                            r"\(1, 3, 4\)\)" + HERE):
        apply(Gather(-1), x, _ints("i", (1, 3, 4)))
    with pytest.raises(sg.ShapeError, match=r"^gather: the gathered axis must have a static length \(operand shapes "
                                            r"\(n, 3\), \(2, 3\)\)" + HERE):
        sg.gather(P("y", ("n", 3)), _ints("j", (2, 3)), axis=0)
    with pytest.raises(sg.ShapeError, match=r"^gather: indices and x must have the same lengths off the axis \(or 1\) "
                                            r"\(operand shapes \(3, 4\), \(2, 3\)\)" + HERE):
        sg.gather(x, _ints("k", (2, 3)), axis=0)


# -- builders' messages ---------------------------------------------------------------------------
@pytest.mark.parametrize("build, error, message", [
    (lambda x: sg.take(x, [0], axis=2), ValueError, r"^take: axis 2 is out of range for an array of 2 dimension\(s\)$"),
    (lambda x: sg.take(x, [0], axis=5), ValueError, r"^take: axis 5 is out of range for an array of 2 dimension\(s\)$"),
    (lambda x: sg.take(x, [0], axis=1.5), ValueError,
     r"^take: axis 1\.5 is out of range for an array of 2 dimension\(s\)$"),
    (lambda x: sg.take(x, [0.5]), TypeError, r"^indices must be integers, got float64 \[0\.5\]$"),
    (lambda x: sg.take(x, [5.0]), TypeError, r"^indices must be integers, got float64 \[5\.0\]$"),
    (lambda x: sg.take(x, P("m", (3,), dtype="bool")), TypeError, "^" + MASK_NODE),
    (lambda x: sg.gather(x, P("m", (3,), dtype="bool")), TypeError, "^" + MASK_NODE),
    (lambda x: x[P("m", (3,), dtype="bool")], TypeError, r"^getitem of 'x': " + MASK_NODE),
    (lambda x: sg.gather(x, [0, 1]), ValueError, r"^gather: indices need 2 axes like x, got 1$"),
    (lambda x: sg.gather(x, [[0]], axis=2), ValueError,
     r"^gather: axis 2 is out of range for an array of 2 dimension\(s\)$"),
    (lambda x: sg.gather(x, [[0]], axis=5), ValueError,
     r"^gather: axis 5 is out of range for an array of 2 dimension\(s\)$"),
    (lambda x: sg.gather(x, [[0]], axis=1.5), ValueError,
     r"^gather: axis 1\.5 is out of range for an array of 2 dimension\(s\)$"),
    (lambda x: x[[0], [1]], TypeError, r"^getitem: at most one integer-array index is supported, got 2$"),
    (lambda x: x[..., [0], ...], IndexError, r"^getitem: an index can only have a single ellipsis$"),
    (lambda x: x[np.ones((3, 5), bool)], IndexError,
     r"^getitem: a mask of shape \(3, 5\) does not match axes of lengths \(3, 4\)$"),
    (lambda x: x[np.ones(4, bool)], IndexError,
     r"^getitem: a mask of shape \(4,\) does not match axes of lengths \(3,\)$"),
])
def test_builder_messages_in_full(build, error, message):
    with pytest.raises(error, match=message):
        build(P("x", (3, 4)))


# -- take's indices -------------------------------------------------------------------------------
def test_take_counts_negative_indices_from_the_end_down_to_minus_n():
    x, xv = _x()
    for idx in ([-3], [-1, 2], [[0, -2], [-3, 1]]):
        np.testing.assert_array_equal(_run(sg.take(x, idx), {x: xv}), np.take(xv, idx, axis=0))
        np.testing.assert_array_equal(_run(sg.take(x, idx, axis=-1), {x: xv}), np.take(xv, idx, axis=-1))
    with pytest.raises(IndexError, match=r"^take: an index is out of bounds for an axis of length 3$"):
        sg.take(x, [-4])


def test_take_stores_indices_in_0_to_n_minus_1():
    # the indices a graph holds count from 0 (as labels do; the module's rule), whatever the user gave
    out = sg.take(P("x", (3, 4)), [-1, 2, -3], axis=0)
    np.testing.assert_array_equal(out.inputs[1].op.value, [2, 2, 0])
    out = sg.take(P("y", (3, 4)), np.array([[-4, 3]]), axis=1)
    np.testing.assert_array_equal(out.inputs[1].op.value, [[0, 3]])


def test_take_of_no_indices():
    x, xv = _x()
    out = sg.take(x, np.array([], dtype=np.int64))
    assert out.shape == (0, 4)
    np.testing.assert_array_equal(_run(out * 1.0, {x: xv}), np.take(xv, np.array([], dtype=np.int64), axis=0))


# -- gather's axes and broadcasting ---------------------------------------------------------------
def test_gather_along_the_first_axis_counted_from_the_end():
    x, xv = _x()
    iv = np.array([[2, 0, 1, 1], [0, 0, 2, 1]])
    np.testing.assert_array_equal(_run(sg.gather(x, iv, axis=-2), {x: xv}), np.take_along_axis(xv, iv, -2))


def test_gather_broadcasts_length_one_axes_of_x_and_of_the_indices():
    x, xv = _x((3, 1))
    iv = np.array([[2, 0, 1, 1], [0, 0, 2, 1]])
    out = sg.gather(x, iv, axis=0)
    assert out.shape == (2, 4)
    np.testing.assert_array_equal(_run(out, {x: xv}), np.take_along_axis(xv, iv, 0))
    y, yv = _x((3, 2))
    jv = np.array([[2], [0]])
    out = sg.gather(y, jv, axis=0)
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(_run(out, {y: yv}), np.take_along_axis(yv, jv, 0))


def test_gather_keeps_a_named_length_off_the_axis():
    assert sg.gather(P("x", (3, "n")), np.zeros((2, 4), np.int64), axis=0).shape == (2, "n")
    assert sg.gather(P("y", (3, 4)), _ints("i", (2, "m")), axis=0).shape == (2, 4)


# -- fancy getitem ----------------------------------------------------------------------------------
def test_getitem_with_an_ellipsis_and_a_mask_of_two_axes():
    x, xv = _x((2, 3, 4))
    m = RNG.random((3, 4)) < 0.5
    np.testing.assert_array_equal(_run(x[..., m], {x: xv}), xv[..., m])
    n = RNG.random((2, 3)) < 0.5
    np.testing.assert_array_equal(_run(x[n, ...], {x: xv}), xv[n, ...])


def test_getitem_with_an_ellipsis_and_an_entry_of_two_axes():
    x, xv = _x((3, 4, 5))
    idx = np.array([[0, 4], [2, 3]])
    np.testing.assert_array_equal(_run(x[..., idx], {x: xv}), xv[..., idx])
    np.testing.assert_array_equal(_run(x[[0, 2], ...], {x: xv}), xv[[0, 2], ...])


def test_getitem_with_an_array_entry_and_a_slice_after_it():
    x, xv = _x((3, 4))
    np.testing.assert_array_equal(_run(x[[2, 0], 1:], {x: xv}), xv[[2, 0], 1:])
    np.testing.assert_array_equal(_run(x[sg.constant(np.array([2, 0])), 1:], {x: xv}), xv[[2, 0], 1:])
    np.testing.assert_array_equal(_run(x[:2, [3, 1]], {x: xv}), xv[:2, [3, 1]])


def test_getitem_with_a_0d_array_entry():
    x, xv = _x((3, 4))
    out = x[np.array(1), 2]
    assert out.shape == ()
    assert _run(out, {x: xv}) == xv[1, 2]


def test_a_1d_mask_takes_from_x_without_a_reshape():
    x, xv = _x((3, 4))
    out = x[np.array([True, False, True])]
    assert out.inputs[0] is x
    np.testing.assert_array_equal(_run(out, {x: xv}), xv[[True, False, True]])


# -- a bug the mutants led to: NumPy's order of the axes when an int and the array entry are apart --
@pytest.mark.parametrize("index", [
    (1, slice(None), [0, 2]), (1, ..., [0, 2]), (slice(None), 1, slice(None), [0, 2]), (1, slice(1, 3), 1, [0, 3]),
    (1, slice(None), [[0, 2], [1, 1]]), ([0, 1], slice(None), slice(None), 1), (slice(1, 3), 0, slice(None), [1, 2]),
    (0, slice(None), np.array([True, False, True, True]), 1), (np.array([[True, False, True], [False, True, True]]),
                                                                slice(None), 1),
    (1, [0, 2]), (slice(None), 1, [0, 2]), ([0, 1], slice(None), 1),  # adjacent: in place, as before
], ids=str)
def test_numpy_order_of_axes_for_ints_apart_from_the_array_entry(index):
    x, xv = _x((2, 3, 4, 5))
    out = x[index]
    assert out.shape == xv[index].shape
    np.testing.assert_array_equal(_run(out * 1.0, {x: xv}), xv[index])
    # and the gradient puts each entry back where it came from
    w = RNG.normal(size=out.shape)
    (g,) = sg.grad(sg.sum(out * w), [x])
    expected = np.zeros_like(xv)
    np.add.at(expected, index, w)
    np.testing.assert_array_equal(_run(g, {x: xv}), expected)


def test_scatter_flops_count_the_values_with_named_sizes():
    node = apply(Untake(-1, 3), P("v", ("n", 2)), _ints("i", (2,)))
    assert node.shape == ("n", 3)
    assert node.op.flops(node, {"n": 5}) == 10  # one add per value
    node = apply(Ungather(-1), P("w", ("n", 2)), _ints("j", ("n", 2)), P("like", ("n", 4)))
    assert node.shape == ("n", 4)
    assert node.op.flops(node, {"n": 5}) == 10
