"""shape.py's mutation run (tests/MUTANTS.md): what the value tables of test_ops left open. Every message
of the builders, of the ops and of indexing in full; the bounds of an int index; what the builders
return unchanged (an identity transpose or broadcast); the static shapes inferred for named
dimensions by getitem, concatenate and reshape_to; reshape_to's two forms (a static -1, or the
target's shape read at run time after leading axes); the ops' own ``compute`` (reshape to a shape
read at run time, squeeze of some of the length-1 axes, the basis)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph.errors import ShapeError
from symgraph.graph import apply
from symgraph.ops.shape import Basis, Concatenate, Reshape, Squeeze, basis, reshape_to

P = sg.placeholder
HERE = r" at \S*test_shape_mutants\.py:\d+$"  # a message that ends with the user's line


def _x():
    return P("x", (2, 3))


# -- messages, in full ----------------------------------------------------------------------------------
def _index(index):
    return lambda: _x()[index]


ERRORS = [
    (lambda: sg.reshape(_x(), (4, 2)), ShapeError,
     re.escape("reshape: cannot reshape 6 elements into (4, 2) (operand shapes (2, 3))") + HERE),
    (lambda: sg.reshape(_x(), ("n", 6)), ValueError,
     re.escape("reshape: the new shape must be ints >= 0 with at most one -1, got ('n', 6)") + "$"),
    (lambda: sg.reshape(_x(), (-2, 3)), ValueError,
     re.escape("reshape: the new shape must be ints >= 0 with at most one -1, got (-2, 3)") + "$"),
    (lambda: sg.squeeze(_x(), axis=0), ShapeError,
     re.escape("squeeze: cannot squeeze axes (-2,): their length is not 1 (operand shapes (2, 3))") + HERE),
    (lambda: sg.squeeze(_x(), axis=2), ShapeError,
     re.escape("squeeze: axis 2 is out of range for an array of 2 dimension(s)") + HERE),
    (lambda: sg.expand_dims(_x(), 3), ShapeError,
     re.escape("expand_dims: axis 3 is out of range for an array of 3 dimension(s)") + HERE),
    (lambda: sg.concatenate([_x(), _x()], axis=2), ShapeError,
     re.escape("concatenate: axis 2 is out of range for an array of 2 dimension(s)") + HERE),
    (lambda: sg.concatenate([_x(), P("y", (3,))], axis=1), ShapeError,
     re.escape("concatenate: all inputs must have the same number of dimensions (operand shapes (2, 3), (3,))")
     + HERE),
    (lambda: sg.concatenate([]), ValueError, r"^concatenate: needs at least one input$"),
    (lambda: sg.transpose(_x(), (0, 0)), ValueError,
     re.escape("transpose: axes (0, 0) are not a permutation of 2 axes") + "$"),
    (lambda: sg.transpose(P("s", ()), (0,)), ValueError,
     re.escape("transpose: axes (0,) are not a permutation of 0 axes") + "$"),
    (lambda: sg.broadcast_to(_x(), ("n", 3)), ValueError,
     re.escape("broadcast_to: the target shape must be ints, got ('n', 3)") + "$"),
    (lambda: basis(("n", 3), "float64"), ValueError, re.escape("basis: needs a static shape, got (n, 3)") + "$"),
    (_index((Ellipsis, 0, Ellipsis)), IndexError,
     re.escape("getitem of 'x': an index can only have a single ellipsis") + "$"),
    (_index((0, 1, 0)), IndexError, re.escape("getitem of 'x': too many indices (3) for shape (2, 3)") + "$"),
    (_index(2), IndexError, re.escape("getitem of 'x': index 2 is out of bounds for an axis of length 2") + "$"),
    (_index((0, -4)), IndexError, re.escape("getitem of 'x': index -4 is out of bounds for an axis of length 3") + "$"),
    (_index(slice(1.5, None)), TypeError,
     re.escape("getitem of 'x': slice bounds must be ints, got slice(1.5, None, None)") + "$"),
    (_index(slice(None, None, 0)), ValueError, re.escape("getitem of 'x': slice step cannot be zero") + "$"),
    (_index("a"), TypeError,
     re.escape("getitem of 'x': only ints, slices and ... can index a node, got 'a'") + "$"),
    (_index((0, None)), TypeError,
     re.escape("getitem of 'x': only ints, slices and ... can index a node, got None") + "$"),
]


@pytest.mark.parametrize("build, error, message", ERRORS, ids=range(len(ERRORS)))
def test_messages_in_full(build, error, message):
    with pytest.raises(error, match=message) as info:
        build()
    assert type(info.value) is error


def test_differentiating_concatenate_along_a_named_axis_says_so():
    x, y = P("x", ("n",)), P("y", (3,))
    with pytest.raises(NotImplementedError, match=re.escape(
            "concatenate: differentiating along an axis of unknown length ['n', 3] is not supported") + "$"):
        sg.grad(sg.sum(sg.concatenate([x, y])), [x])


# -- indexing: the bounds, and the shapes inferred for named dimensions ----------------------------------
def test_int_index_bounds_are_those_of_numpy():
    x = _x()
    value = np.arange(6.0).reshape(2, 3)
    outputs = [x[-2], x[1], x[:, -3], x[:, 2], x[::1], x[-1, ::-1]]
    got = codegen.evaluate(outputs, {x: value})
    for g, want in zip(got, [value[-2], value[1], value[:, -3], value[:, 2], value[::1], value[-1, ::-1]]):
        np.testing.assert_array_equal(g, want)


def test_getitem_keeps_a_named_dimension_it_takes_whole():
    x = P("x", ("n", 3))
    assert x[:, 0].shape == ("n",)
    assert x[..., 1:].shape == ("n", 2)
    assert x[1:, 0].shape == (None,)


# -- concatenate: shapes of named dimensions, one input ------------------------------------------------
def test_concatenate_infers_named_dimensions():
    a, b = P("a", ("n", 2)), P("b", (3, 2))
    assert sg.concatenate([a, b], axis=1).shape == (3, 4)
    assert sg.concatenate([b, a], axis=1).shape == (3, 4)
    assert sg.concatenate([a, b], axis=0).shape == (None, 2)
    assert sg.concatenate([b, a, P("c", (3, "m"))], axis=0).shape == (None, 2)
    assert sg.concatenate([a, P("c", ("n", 5))], axis=1).shape == ("n", 7)


def test_concatenate_op_of_one_input_is_that_input():
    x = _x()
    out = apply(Concatenate(-1), x)
    assert out.shape == (2, 3)
    value = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(codegen.evaluate(out, {x: value}), value)


# -- the builders return x itself when nothing changes -------------------------------------------------
def test_identity_transpose_and_broadcast_return_x():
    x = _x()
    assert sg.transpose(x, (0, 1)) is x and sg.transpose(x, (-2, -1)) is x
    assert sg.broadcast_to(x, (2, 3)) is x
    assert sg.transpose(x).shape == (3, 2) and sg.broadcast_to(x, (4, 2, 3)).shape == (4, 2, 3)


# -- reshape_to: static when it can be, else the target read at run time after the leading axes ----------
def test_reshape_to_one_named_dimension_is_a_static_reshape():
    x, like = P("x", ("n", 6)), P("like", ("n", 2, 3))
    out = reshape_to(x, like)
    assert out.shape == ("n", 2, 3)
    assert out.op.shape == (-1, 2, 3) and out.inputs == (x,)
    value = np.arange(24.0).reshape(4, 6)
    np.testing.assert_array_equal(codegen.evaluate(out, {x: value}), value.reshape(4, 2, 3))


def test_reshape_to_two_named_dimensions_reads_the_shape_after_the_leading_axes():
    x, like = P("x", (5, "k")), P("like", ("n", "m"))
    out = reshape_to(x, like, lead=(5,))
    assert out.shape == (5, "n", "m") and out.op.lead == (5,) and out.op.shape is None
    value = np.arange(30.0).reshape(5, 6)
    got = codegen.evaluate(out, {x: value, like: np.zeros((2, 3))})
    np.testing.assert_array_equal(got, value.reshape(5, 2, 3))


# -- the ops' own compute ---------------------------------------------------------------------------------
def test_reshape_compute_to_the_shape_of_its_second_input():
    x = np.arange(12.0)
    got = Reshape(None, (2,)).compute(x, np.zeros((3, 2)))
    assert got.shape == (2, 3, 2)
    np.testing.assert_array_equal(got, x.reshape(2, 3, 2))
    np.testing.assert_array_equal(Reshape((3, -1)).compute(x), x.reshape(3, 4))


def test_squeeze_compute_removes_only_its_axes():
    x = np.arange(3.0).reshape(1, 1, 3, 1)
    assert Squeeze((-4,)).compute(x).shape == (1, 3, 1)
    assert Squeeze((-4, -1)).compute(x).shape == (1, 3)


def test_basis_in_its_dtype():
    for dtype in ("float32", "float64", "int8"):
        node = basis((2, 3), dtype)
        assert node.dtype == np.dtype(dtype) and node.shape == (6, 2, 3)
        for got in (node.op.compute(), Basis((2, 3), dtype).compute(), codegen.evaluate(node, {})):
            assert got.dtype == np.dtype(dtype) and got.shape == (6, 2, 3)
            np.testing.assert_array_equal(got, np.eye(6).reshape(6, 2, 3))
    np.testing.assert_array_equal(Basis((4,), "float64").compute(), np.eye(4))
