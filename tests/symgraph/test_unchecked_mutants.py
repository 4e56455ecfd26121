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
