"""Input validation at compile time and at call time (DESIGN.md section A)."""

import re

import numpy as np
import pytest

import codegen
import symgraph as sg


@pytest.fixture
def two_inputs():
    x = sg.placeholder("x", shape=("batch", 3))
    z = sg.placeholder("z", shape=("batch",))
    f = codegen.compile([x, z], x.sum(axis=1) * z)
    return x, z, f


# -- call time: arity and shapes ----------------------------------------------------------


@pytest.mark.parametrize("n_args", [0, 1, 3])
def test_wrong_number_of_inputs_raises_type_error(two_inputs, n_args):
    _, _, f = two_inputs
    args = [np.ones((2, 3)), np.ones(2), np.ones(2)][:n_args]
    with pytest.raises(TypeError, match=r"\b2\b"):
        f(*args)


def test_wrong_ndim_names_placeholder_expected_and_actual_shape(two_inputs):
    _, _, f = two_inputs
    with pytest.raises(ValueError) as err:
        f(np.ones(6), np.ones(2))
    msg = str(err.value)
    assert "'x'" in msg
    assert "(batch, 3)" in msg
    assert "(6,)" in msg


def test_wrong_static_dim_names_placeholder_expected_and_actual_shape(two_inputs):
    _, _, f = two_inputs
    with pytest.raises(ValueError) as err:
        f(np.ones((2, 4)), np.ones(2))
    msg = str(err.value)
    assert "'x'" in msg
    assert "(batch, 3)" in msg
    assert "(2, 4)" in msg


def test_wrong_shape_of_second_input_names_it():
    x = sg.placeholder("x", shape=(3,))
    w = sg.placeholder("weights", shape=(3, 2))
    f = codegen.compile([x, w], x @ w)
    with pytest.raises(ValueError) as err:
        f(np.ones(3), np.ones((2, 3)))
    msg = str(err.value)
    assert "'weights'" in msg and "(3, 2)" in msg and "(2, 3)" in msg
    assert "'x'" not in msg


def test_scalar_placeholder_rejects_a_vector():
    s = sg.placeholder("s", shape=())
    f = codegen.compile([s], s * 2.0)
    np.testing.assert_allclose(f(3.0), 6.0)
    with pytest.raises(ValueError, match="'s'"):
        f(np.ones(1))


def test_inconsistent_named_dimension_names_both_inputs(two_inputs):
    _, _, f = two_inputs
    with pytest.raises(ValueError) as err:
        f(np.ones((4, 3)), np.ones(5))
    msg = str(err.value)
    assert "batch" in msg
    assert "'x'" in msg and "'z'" in msg
    assert re.search(r"\b4\b", msg) and re.search(r"\b5\b", msg)


def test_named_dimension_repeated_within_one_placeholder():
    m = sg.placeholder("m", shape=("n", "n"))
    f = codegen.compile([m], m @ m)
    np.testing.assert_allclose(f(np.eye(3) * 2.0), np.eye(3) * 4.0)
    with pytest.raises(ValueError, match="'n'"):
        f(np.ones((2, 3)))


def test_named_dimension_is_free_between_calls(two_inputs):
    _, _, f = two_inputs
    assert f(np.ones((4, 3)), np.ones(4)).shape == (4,)
    assert f(np.ones((7, 3)), np.ones(7)).shape == (7,)


def test_none_dims_accept_anything(rng):
    a = sg.placeholder("a", shape=(None, 2))
    b = sg.placeholder("b", shape=(None,))
    f = codegen.compile([a, b], [a.sum(), b.sum()])
    for n, k in [(1, 5), (3, 3), (6, 1), (0, 2)]:
        xa, xb = rng.normal(size=(n, 2)), rng.normal(size=k)
        ra, rb = f(xa, xb)
        np.testing.assert_allclose(ra, xa.sum())
        np.testing.assert_allclose(rb, xb.sum())
    with pytest.raises(ValueError, match="'a'"):
        f(np.ones((3, 3)), np.ones(2))  # the static dim is still checked


# -- call time: dtypes ---------------------------------------------------------------


def test_int_data_into_float_placeholder_is_cast():
    x = sg.placeholder("x", shape=(3,))
    f = codegen.compile([x], x / 2)
    r = f(np.array([1, 2, 3]))
    assert r.dtype == np.float64
    np.testing.assert_array_equal(r, [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(f([1, 2, 3]), [0.5, 1.0, 1.5])  # lists too


def test_integral_float_data_into_int_placeholder_is_accepted():
    y = sg.placeholder("y", shape=(4,), dtype="int64")
    f = codegen.compile([y], sg.one_hot(y, 3))
    r = f(np.array([0.0, 2.0, 1.0, 2.0]))
    np.testing.assert_array_equal(r, np.eye(3)[[0, 2, 1, 2]])


@pytest.mark.parametrize("bad", [[0.5, 1.0, 2.0, 0.0], [0.0, 1.0, np.nan, 0.0], [0.0, np.inf, 1.0, 1.0]])
def test_non_integral_float_data_into_int_placeholder_raises(bad):
    y = sg.placeholder("labels", shape=(4,), dtype="int64")
    f = codegen.compile([y], sg.one_hot(y, 3))
    with pytest.raises(ValueError, match="'labels'"):
        f(np.array(bad))


def test_out_of_range_integral_float_into_int_placeholder_raises():
    y = sg.placeholder("y", shape=(2,), dtype="int64")
    f = codegen.compile([y], y * 1)
    with pytest.raises(ValueError, match="'y'"):
        f(np.array([1e20, 1.0]))


def test_overflowing_int_data_into_narrow_int_placeholder_raises():
    y = sg.placeholder("y", shape=(2,), dtype="int32")
    f = codegen.compile([y], y * 1)
    with pytest.raises(ValueError, match="'y'"):
        f(np.array([2**40, 1], dtype=np.int64))


def test_int64_data_into_int32_placeholder_in_range_is_accepted():
    y = sg.placeholder("y", shape=(2,), dtype="int32")
    f = codegen.compile([y], y * 2)
    r = f(np.array([3, -4], dtype=np.int64))
    np.testing.assert_array_equal(r, [6, -8])


def test_float_data_into_bool_placeholder_raises():
    m = sg.placeholder("mask", shape=(2,), dtype="bool")
    f = codegen.compile([m], sg.where(m, 1.0, 0.0))
    np.testing.assert_array_equal(f(np.array([True, False])), [1.0, 0.0])
    with pytest.raises(ValueError, match="'mask'"):
        f(np.array([0.5, 1.0]))


def test_string_data_raises_value_error():
    x = sg.placeholder("x", shape=(2,))
    f = codegen.compile([x], x * 2.0)
    with pytest.raises(ValueError, match="'x'"):
        f(np.array(["a", "b"]))


# -- compile time ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["parameter", "constant", "op node", "array"])
def test_compile_with_non_placeholder_input_raises_type_error(kind):
    x = sg.placeholder("x", shape=(2,))
    W = sg.parameter("W", value=np.ones(2))
    bad = {"parameter": W, "constant": sg.constant(np.ones(2)), "op node": x * 2.0, "array": np.ones(2)}[kind]
    with pytest.raises(TypeError):
        codegen.compile([x, bad], x * W)


def test_compile_with_the_same_placeholder_twice_raises():
    x = sg.placeholder("x", shape=(2,))
    with pytest.raises(ValueError):
        codegen.compile([x, x], x * 2.0)


def test_compile_with_missing_placeholder_names_it():
    x = sg.placeholder("x", shape=(2,))
    hidden = sg.placeholder("hidden_input", shape=(2,))
    with pytest.raises(ValueError, match="hidden_input"):
        codegen.compile([x], [x * 2.0, sg.tanh(x + hidden)])


def test_compile_with_placeholder_missing_only_in_an_update_names_it():
    x = sg.placeholder("x", shape=(2,))
    lr = sg.placeholder("learning_rate", shape=())
    W = sg.parameter("W", value=np.ones(2))
    with pytest.raises(ValueError, match="learning_rate"):
        codegen.compile([x], (x * W).sum(), updates={W: W - lr * x})


def test_evaluate_with_incomplete_feed_names_the_missing_placeholder():
    x = sg.placeholder("x", shape=(2,))
    other = sg.placeholder("other", shape=(2,))
    with pytest.raises(ValueError, match="other"):
        codegen.evaluate(x + other, {x: np.ones(2)})


def test_backend_cupy_is_not_implemented_yet():
    x = sg.placeholder("x", shape=(2,))
    with pytest.raises(NotImplementedError, match="(?i)cupy"):
        codegen.compile([x], x * 2.0, backend="cupy")


@pytest.mark.parametrize("backend", ["torch", "NumPy", "", None])
def test_unknown_backend_raises_value_error(backend):
    x = sg.placeholder("x", shape=(2,))
    with pytest.raises(ValueError, match="backend"):
        codegen.compile([x], x * 2.0, backend=backend)


def test_numpy_backend_is_the_default_and_accepted_explicitly(rng):
    x = sg.placeholder("x", shape=(2,))
    xb = rng.normal(size=2)
    np.testing.assert_allclose(codegen.compile([x], x * 2.0, backend="numpy")(xb), xb * 2.0)
