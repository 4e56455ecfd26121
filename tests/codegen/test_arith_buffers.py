"""Arithmetic ops that NumPy can write into a buffer are lowered with ``out=`` (their ``writes_into``),
and the ones that cannot broadcast or mix dtypes are refused with messages naming the op."""

import operator

import numpy as np
import pytest

import codegen
import symgraph as sg


@pytest.mark.parametrize(
    "op, call",
    [(operator.add, "np.add(a, b, out=buf1)"), (operator.sub, "np.subtract(a, b, out=buf1)"),
     (operator.mul, "np.multiply(a, b, out=buf1)"), (operator.truediv, "np.divide(a, b, out=buf1)"),
     (operator.pow, "np.power(a, b, out=buf1)"), (lambda a, b: -a, "np.negative(a, out=buf1)"),
     (sg.maximum, "np.maximum(a, b, out=buf1)"), (sg.minimum, "np.minimum(a, b, out=buf1)")],
)
def test_materialized_arithmetic_writes_into_a_buffer(op, call):
    a, b, W = sg.placeholder("a", (5, 3)), sg.placeholder("b", (5, 3)), sg.placeholder("W", (3, 2))
    f = codegen.compile([a, b, W], [op(a, b) @ W])  # the matmul needs op(a, b) as an array
    assert call in f.source
    rng = np.random.default_rng(0)
    va, vb, vW = rng.uniform(1, 2, (5, 3)), rng.uniform(1, 2, (5, 3)), rng.normal(size=(3, 2))
    (got,) = f(va, vb, vW)
    want = {sg.maximum: np.maximum, sg.minimum: np.minimum}.get(op, op)(va, vb) @ vW
    np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("op, name", [(operator.add, "add"), (operator.sub, "subtract"), (operator.mul, "multiply"),
                                      (operator.truediv, "divide"), (operator.pow, "power"), (sg.maximum, "maximum"),
                                      (sg.minimum, "minimum"), (operator.lt, "less"), (operator.le, "less_equal"),
                                      (operator.gt, "greater"), (operator.ge, "greater_equal"), (sg.equal, "equal"),
                                      (sg.not_equal, "not_equal")])
def test_operands_that_do_not_broadcast_are_refused_naming_the_op(op, name):
    with pytest.raises(sg.ShapeError, match=rf"^{name}: operands cannot be broadcast together \(3 vs 4\)"):
        op(sg.placeholder("a", (5, 3)), sg.placeholder("b", (4,)))


def test_negation_writes_into_the_buffer_of_the_value_it_reads_for_the_last_time():
    """``-v`` is elementwise: it may take the buffer of its input on the line that reads it last."""
    x, W, V = sg.placeholder("x", (4, 3)), sg.placeholder("W", (3, 3)), sg.placeholder("V", (3, 2))
    f = codegen.compile([x, W, V], [(-(x @ W)) @ V])
    assert "matmul1 = np.dot(x, W, out=buf1)" in f.source
    assert "negative1 = np.negative(matmul1, out=buf1)" in f.source
    rng = np.random.default_rng(0)
    vx, vW, vV = rng.normal(size=(4, 3)), rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    np.testing.assert_allclose(f(vx, vW, vV)[0], -(vx @ vW) @ vV)


def test_a_cast_as_the_new_value_of_a_state_is_computed_before_the_updates_and_copied_in():
    """A cast has no ``out=`` form (``astype`` makes a new array), so the new value of a state that is a
    cast is never computed "into" the state: it is a line of the optimizer section, then copied."""
    x = sg.placeholder("x", (4, 3))
    s = sg.parameter("s", value=np.ones((4, 3), np.float32), dtype="float32")
    W = sg.parameter("W", value=np.full((4, 3), 2.0))
    f = codegen.compile([x], [sg.sum(x)], updates={s: sg.cast(sg.tanh(x * W) * 0.5, "float32")})
    body = f.source[f.source.index("# optimizer"):]
    assert body.index("new_s = multiply1.astype(np.float32)  # new value of s") < body.index("# updates:")
    assert "s[...] = new_s  # update s" in body
    vx = np.random.default_rng(1).normal(size=(4, 3))
    f(vx)
    np.testing.assert_allclose(s.value, (np.tanh(vx * 2.0) * 0.5).astype(np.float32), rtol=1e-6)
