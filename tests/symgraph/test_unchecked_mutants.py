"""Mutants that mutmut's forked run left unchecked (tests/MUTANTS.md), run afterwards one at a time in a
fresh process with a narrow selection: the ones that selection did not kill."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import codegen
import symgraph as sg


def test_softmax_cross_entropy_names_itself_when_the_reduction_is_unknown():
    logits, labels = sg.placeholder("logits", (3, 4)), sg.placeholder("labels", (3,), dtype="int64")
    with pytest.raises(ValueError, match=r"^softmax_cross_entropy: reduction must be one of "
                                         r"\('mean', 'sum', 'none'\), got 'avg'$"):
        sg.softmax_cross_entropy(logits, labels, reduction="avg")


def test_a_users_frac_has_derivative_one_between_the_integers():
    """SymPy cannot differentiate frac(a); it is differentiated as a - floor(a)."""
    frac = sg.elementwise(lambda a: sympy.frac(a), name="frac")
    x = sg.placeholder("x", (5,))
    (g,) = sg.grad(sg.sum(frac(x)), [x])
    v = np.array([-1.5, -0.25, 0.3, 1.7, 2.2])
    value, grad = codegen.evaluate([frac(x), g], {x: v})
    np.testing.assert_allclose(value, v - np.floor(v))
    np.testing.assert_array_equal(grad, np.ones(5))


class _NoDerivative(sympy.Function):
    """A function NumPy can print (as sin) but SymPy cannot differentiate."""

    def _numpycode(self, printer):
        return f"np.sin({printer._print(self.args[0])})"


def test_the_refusal_of_an_underivable_function_shows_the_rewritten_expression_and_says_what_to_do():
    with pytest.raises(ValueError) as info:
        sg.elementwise(lambda z: sympy.frac(z) + _NoDerivative(z), name="odd")
    assert str(info.value) == (
        "elementwise 'odd': SymPy cannot differentiate x0 + _NoDerivative(x0) - floor(x0) with respect to x0; "
        "it leaves Derivative(_NoDerivative(x0), x0) unevaluated, which has no NumPy form. Give the function a "
        "form SymPy differentiates (Piecewise, Heaviside, floor, Mod and Abs do), or wrap the argument in "
        "sg.stop_gradient if it needs no gradient")


# -- add_at's own checks (the op applied directly, as the simplifier's cross-entropy rule does) -----------
def _add_at(x, values, labels):
    from symgraph.graph import apply
    from symgraph.ops import AddAt

    return apply(AddAt(), x, values, labels)


HERE = r" at \S*test_unchecked_mutants\.py:\d+$"


@pytest.mark.parametrize("x, values, labels, message", [
    ((3, 4), (3, 4), (3,), r"values must broadcast to the shape of labels \(operand shapes \(3, 4\), \(3, 4\), \(3,\)\)"),
    ((3, 4), (2,), (3,), r"values must broadcast to the shape of labels \(operand shapes \(3, 4\), \(2,\), \(3,\)\)"),
    ((2, 3, 4), (3, 1), (2, 3), r"values must broadcast to the shape of labels"),
    ((2, 3, 4), (3, 3), (2, 3), r"values must broadcast to the shape of labels"),
    ((3, 4), (3,), (4,), r"labels must have the shape of x without its last axis \(operand shapes \(3, 4\), \(3,\), "
                          r"\(4,\)\)"),
])
def test_add_at_refuses_values_and_labels_of_the_wrong_shape(x, values, labels, message):
    with pytest.raises(sg.ShapeError, match=rf"^add_at: {message}.*{HERE}"):
        _add_at(sg.placeholder("x", x), sg.placeholder("v", values), sg.placeholder("l", labels, dtype="int64"))


def test_add_at_accepts_values_that_broadcast_to_the_labels():
    x, labels = sg.placeholder("x", (2, 3, 4)), sg.placeholder("l", (2, 3), dtype="int64")
    for shape in [(), (1,), (3,), (2, 1), (1, 3), (2, 3)]:
        assert _add_at(x, sg.placeholder("v", shape), labels).shape == (2, 3, 4), shape


def test_add_at_refuses_values_that_widen_x_and_takes_narrower_ones():
    labels = sg.placeholder("l", (3,), dtype="int64")
    with pytest.raises(sg.DTypeError, match=r"^add_at: values must not widen the dtype of x \(operand dtypes "
                                            r"float32, float64, int64\)" + HERE):
        _add_at(sg.placeholder("x", (3, 4), dtype="float32"), sg.placeholder("v", (3,)), labels)
    out = _add_at(sg.placeholder("x", (3, 4)), sg.placeholder("v", (3,), dtype="float32"), labels)
    assert out.dtype == np.float64


def test_a_users_elementwise_shows_its_expression_and_a_builtin_does_not():
    x = sg.placeholder("x", (3,))
    user = sg.elementwise(lambda a: a ** 3 + 1, name="cube_plus_one")
    assert user(x).op.show_expr and not sg.tanh(x).op.show_expr


def test_add_at_refuses_float_labels_and_a_named_class_axis():
    with pytest.raises(sg.DTypeError, match=r"^add_at: labels must be integer class indices \(operand dtypes "
                                            r"float64, float64, float64\)" + HERE):
        _add_at(sg.placeholder("x", (3, 4)), sg.placeholder("v", (3,)), sg.placeholder("l", (3,)))
    with pytest.raises(sg.ShapeError, match=r"^add_at: labels must have the shape of x without its last axis "
                                            r"\(operand shapes \(3, k\), \(3,\), \(3,\)\)" + HERE):
        _add_at(sg.placeholder("x", (3, "k")), sg.placeholder("v", (3,)), sg.placeholder("l", (3,), dtype="int64"))


def test_pick_compares_every_leading_axis_with_the_labels_and_unpick_refuses_float_labels():
    from symgraph.graph import apply
    from symgraph.ops import Pick, Unpick

    with pytest.raises(sg.ShapeError, match=r"^pick: labels must have the shape of x without its last axis "
                                            r"\(operand shapes \(2, 3, 4\), \(2, 5\)\)" + HERE):
        apply(Pick(), sg.placeholder("x", (2, 3, 4)), sg.placeholder("l", (2, 5), dtype="int64"))
    with pytest.raises(sg.DTypeError, match=r"^unpick: labels must be integer class indices \(operand dtypes "
                                            r"float64, float64\)" + HERE):
        apply(Unpick(4), sg.placeholder("v", (3,)), sg.placeholder("l", (3,)))


def test_pick_refuses_a_named_class_axis():
    from symgraph.graph import apply
    from symgraph.ops import Pick

    with pytest.raises(sg.ShapeError, match=r"^pick: labels must have the shape of x without its last axis, which must "
                                            r"be static \(operand shapes \(3, k\), \(3,\)\)" + HERE):
        apply(Pick(), sg.placeholder("x", (3, "k")), sg.placeholder("l", (3,), dtype="int64"))


def test_reductions_other_than_sum_refuse_booleans_and_drop_their_axes_by_default():
    from symgraph.graph import apply
    from symgraph.ops import Max, Mean, Sum

    b = sg.placeholder("b", (3, 4), dtype="bool")
    for op, name in [(Max((-2,)), "max"), (Mean((-2,)), "mean")]:
        with pytest.raises(sg.DTypeError, match=rf"^{name}: cannot reduce booleans; convert with \.astype\(\.\.\.\) "
                                                r"first \(operand dtypes bool\)" + HERE):
            apply(op, b)
    assert apply(Sum((-2,)), b).shape == (4,)  # a count: booleans sum
    assert apply(Mean((-2,)), sg.placeholder("x", (3, 4))).shape == (4,)


def test_pick_refuses_float_labels_and_labels_with_as_many_axes_as_x():
    from symgraph.graph import apply
    from symgraph.ops import Pick

    with pytest.raises(sg.DTypeError, match=r"^pick: labels must be integer class indices \(operand dtypes "
                                            r"float64, float64\)" + HERE):
        apply(Pick(), sg.placeholder("x", (3, 4)), sg.placeholder("l", (3,)))
    with pytest.raises(sg.ShapeError, match=r"^pick: labels must have the shape of x without its last axis, which must "
                                            r"be static \(operand shapes \(4,\), \(4,\)\)" + HERE):
        apply(Pick(), sg.placeholder("x", (4,)), sg.placeholder("l", (4,), dtype="int64"))


def test_a_mean_keeps_float32_and_widens_integers():
    from symgraph.graph import apply
    from symgraph.ops import Mean

    assert apply(Mean((-1,)), sg.placeholder("x", (3, 4), dtype="float32")).dtype == np.float32
    assert apply(Mean((-1,)), sg.placeholder("i", (3, 4), dtype="int32")).dtype == np.float64


def test_a_mean_of_integers_does_not_overflow():
    """mean casts integers to float64 first, as np.mean does: summed as int64, two entries of 2**62
    overflowed (the generated code printed np.add.reduce(i, axis=0) / 2 and gave -2**62)."""
    i = sg.placeholder("i", (2,), dtype="int64")
    big = np.array([2**62, 2**62], dtype=np.int64)
    assert float(codegen.evaluate(sg.mean(i), {i: big})) == 2.0**62
    assert "np.add.reduce(i.astype(np.float64), axis=None) / 2" in codegen.compile([i], [sg.mean(i)]).source


def test_a_mean_of_integers_is_float64_and_other_reductions_keep_the_dtype():
    i = sg.placeholder("i", (2,), dtype="int64")
    x32 = sg.placeholder("x", (3, 4), dtype="float32")
    assert sg.mean(x32).dtype == np.float32 and sg.mean(x32, axis=()) is x32
    assert sg.sum(i).dtype == np.int64 and sg.sum(i, axis=()) is i and sg.mean(i, axis=()).dtype == np.float64
    with pytest.raises(sg.ShapeError, match=r"^sum: axis 5 is out of range for an array of 1 dimension\(s\)" + HERE):
        sg.sum(i, axis=5)


def test_count_is_a_constant_of_xs_dtype_and_logsumexp_keeps_float32():
    from symgraph.ops.reduce import count

    x32 = sg.placeholder("x", (3, 4), dtype="float32")
    n = count(x32, (-2, -1))
    assert n.dtype == np.float32 and float(codegen.evaluate(n, {})) == 12.0
    assert sg.logsumexp(x32, axis=-1).dtype == np.float32
    assert sg.logsumexp(sg.placeholder("i", (3,), dtype="int32")).dtype == np.float64


def test_add_at_gradient_with_respect_to_values_that_broadcast(rng):
    from symgraph.graph import apply
    from symgraph.ops import AddAt

    x, labels = sg.placeholder("x", (3, 4)), sg.placeholder("l", (3,), dtype="int64")
    w = rng.normal(size=(3, 4))
    lv = np.array([2, 0, 2])
    for shape in [(3,), (1,), ()]:
        v = sg.placeholder("v", shape)
        loss = sg.sum(apply(AddAt(), x, v, labels) * w)
        (g,) = sg.grad(loss, [v])
        got = codegen.evaluate(g, {x: np.zeros((3, 4)), v: np.zeros(shape), labels: lv})
        want = w[np.arange(3), lv]  # d loss / d v_r = w[r, labels[r]], summed where v broadcasts
        np.testing.assert_allclose(got, want if shape == (3,) else want.sum().reshape(shape))


def test_broadcast_to_and_transpose_ops_check_their_operand():
    from symgraph.graph import apply
    from symgraph.ops import BroadcastTo, Transpose
    from symgraph.ops.shape import broadcast_like

    with pytest.raises(sg.ShapeError, match=r"^broadcast_to: cannot broadcast to \(2, 3\) \(4 vs 3\) \(operand shapes "
                                            r"\(4,\)\)" + HERE):
        apply(BroadcastTo((2, 3)), sg.placeholder("x", (4,)))
    with pytest.raises(sg.ShapeError, match=r"^broadcast_to: cannot broadcast to \(3,\) \(operand shapes \(3, 3\)\)"
                                            + HERE):
        apply(BroadcastTo((3,)), sg.placeholder("x", (3, 3)))
    with pytest.raises(sg.ShapeError, match=r"^transpose: axes \(1, 0, 2\) do not fit 2 dimension\(s\) \(operand shapes "
                                            r"\(3, 4\)\)" + HERE):
        apply(Transpose((1, 0, 2)), sg.placeholder("x", (3, 4)))
    x32 = sg.placeholder("x", (2, 3), dtype="float32")
    assert broadcast_like(0.5, x32).dtype == np.float32 and broadcast_like(0.5, x32).shape == (2, 3)

