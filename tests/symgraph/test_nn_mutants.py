"""nn.py's mutation run (tests/MUTANTS.md): what the value tables of test_ops and test_nn left open.
one_hot in another dtype and with one class; the losses' dtypes against a Python number and their
messages for an unknown reduction; add_at's jvp along the values alone (x constant), with labels of
more than one axis and values that broadcast; add_at with a Python number, with labels that are not
integers, and its flop count over a named size."""

from __future__ import annotations

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph.errors import DTypeError
from symgraph.graph import apply
from symgraph.ops.nn import AddAt, OneHot, add_at

P = sg.placeholder


def test_one_hot_in_the_dtype_asked_for():
    labels = P("labels", (3,), dtype="int64")
    out = sg.one_hot(labels, 4, dtype="float32")
    assert out.dtype == np.float32 and out.shape == (3, 4)
    got = codegen.evaluate(out, {labels: np.array([2, 0, 3])})
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.eye(4)[[2, 0, 3]])
    direct = OneHot(4, "int32").compute(np.array([[1], [3]]))
    assert direct.dtype == np.int32 and direct.shape == (2, 1, 4)
    np.testing.assert_array_equal(direct, np.eye(4, dtype=np.int32)[[[1], [3]]])


def test_one_hot_with_a_single_class():
    labels = P("labels", (3,), dtype="int64")
    out = sg.one_hot(labels, 1)
    np.testing.assert_array_equal(codegen.evaluate(out, {labels: np.zeros(3, dtype=np.int64)}), np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"^one_hot: num_classes must be a positive int, got 0$"):
        sg.one_hot(labels, 0)


@pytest.mark.parametrize("loss, name", [(sg.mse, "mse"), (sg.binary_cross_entropy, "binary_cross_entropy")])
def test_losses_against_a_python_number_keep_the_prediction_dtype(loss, name):
    x = P("x", (), dtype="float32")
    for target in (0.25, 1):
        out = loss(x, target)
        assert out.dtype == np.float32, (name, target, out.dtype)
        got = codegen.evaluate(out, {x: np.float32(0.75)})
        expected = (0.75 - target) ** 2 if name == "mse" else np.logaddexp(0, 0.75) - 0.75 * target
        assert got.dtype == np.float32 and np.isclose(got, expected, rtol=1e-6), (name, got)
    message = rf"^{name}: reduction must be one of \('mean', 'sum', 'none'\), got 'avg'$"
    with pytest.raises(ValueError, match=message):
        loss(x, 0.5, reduction="avg")


def test_add_at_jvp_along_the_values_alone():
    x = sg.constant(np.arange(40.0).reshape(2, 4, 5))
    labels = P("labels", (2, 4), dtype="int64")
    values = P("values", (4,))
    out = add_at(x, values, labels)
    t = np.array([1.0, -2.0, 0.5, 3.0])
    (jv,) = sg.jvp([out], [values], [sg.constant(t)])
    assert jv.shape == (2, 4, 5)
    lv = np.array([[0, 4, 1, 1], [3, 2, 0, 4]])
    got = codegen.evaluate(jv, {labels: lv, values: np.zeros(4)})
    expected = np.zeros((2, 4, 5))
    for i in range(2):
        for j in range(4):
            expected[i, j, lv[i, j]] = t[j]
    np.testing.assert_array_equal(got, expected)


def test_add_at_flops_count_named_sizes():
    x = P("x", ("n", 3))
    node = apply(AddAt(), x, P("v", ("n",)), P("labels", ("n",), dtype="int64"))
    assert node.op.flops(node, {"n": 7}) == 7
    assert node.op.flops(node, {}) == 1  # an unknown size counts as 1


def test_add_at_takes_a_python_number_in_the_dtype_of_x():
    x, labels = P("x", (2, 3), dtype="float32"), P("labels", (2,), dtype="int64")
    out = add_at(x, 0.5, labels)
    assert out.dtype == np.float32
    got = codegen.evaluate(out, {x: np.ones((2, 3), dtype=np.float32), labels: np.array([2, 0])})
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[1, 1, 1.5], [1.5, 1, 1]])


def test_add_at_refuses_labels_that_are_not_integers():
    x, labels = P("x", (2, 3)), P("labels", (2,))
    message = r"^add_at: labels must be integer class indices \(operand dtypes float64, float64, float64\) at "
    with pytest.raises(DTypeError, match=message + r"\S*test_nn_mutants\.py:\d+$"):
        add_at(x, 0.5, labels)
