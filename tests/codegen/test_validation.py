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
    with pytest.raises(TypeError, match=r"compile: inputs\[1\] must be a placeholder, got "):
        codegen.compile([x, bad], x * W)


def test_compile_with_the_same_placeholder_twice_raises():
    x = sg.placeholder("x", shape=(2,))
    with pytest.raises(ValueError, match=re.escape("compile: placeholder 'x' appears twice in inputs "
                                                   "(inputs[0] and inputs[1])")):
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


@pytest.mark.parametrize("backend", ["torch", "NumPy", "", None])
def test_unknown_backend_raises_value_error(backend):
    x = sg.placeholder("x", shape=(2,))
    with pytest.raises(ValueError, match="backend"):
        codegen.compile([x], x * 2.0, backend=backend)


def test_numpy_backend_is_the_default_and_accepted_explicitly(rng):
    x = sg.placeholder("x", shape=(2,))
    xb = rng.normal(size=2)
    np.testing.assert_allclose(codegen.compile([x], x * 2.0, backend="numpy")(xb), xb * 2.0)


# -- inputs by keyword (issue 11: "Compiled functions accept inputs by keyword too") ---------


def test_inputs_by_position_keyword_or_both_give_the_same_result(two_inputs, rng):
    _, _, f = two_inputs
    xb, zb = rng.normal(size=(4, 3)), rng.normal(size=4)
    expected = f(xb, zb)
    for result in (f(x=xb, z=zb), f(z=zb, x=xb), f(xb, z=zb), f(x=xb.tolist(), z=zb)):
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("call, match", [
    (lambda f, a, b: f(a, x=a), r"multiple values for argument 'x'"),
    (lambda f, a, b: f(x=a), r"missing input\(s\) 'z'"),
    (lambda f, a, b: f(z=b), r"missing input\(s\) 'x'"),
    (lambda f, a, b: f(a, b, w=b), r"unexpected keyword argument 'w'"),
    (lambda f, a, b: f(a, b, b), r"takes 2 input\(s\) \('x', 'z'\) but 3"),
])
def test_keyword_mistakes_raise_type_error_naming_the_argument(two_inputs, call, match):
    _, _, f = two_inputs
    with pytest.raises(TypeError, match=match):
        call(f, np.ones((2, 3)), np.ones(2))


def test_a_parameter_is_not_a_keyword_of_the_compiled_function():
    x = sg.placeholder("x", shape=(2,))
    W = sg.parameter("W", value=np.ones(2))
    f = codegen.compile([x], x * W)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'W'"):  # it reads W.value
        f(x=np.ones(2), W=np.zeros(2))


def test_the_keyword_of_a_sanitized_name_is_its_identifier():
    x = sg.placeholder("my input", shape=(2,))
    f = codegen.compile([x], x * 2.0)
    np.testing.assert_array_equal(f(my_input=np.ones(2)), [2.0, 2.0])
    with pytest.raises(TypeError, match="'my input'"):
        f(**{"my input": np.ones(2)})


@pytest.mark.parametrize("name", ["self", "args", "kwargs", "fn", "body"])
def test_any_input_name_is_a_keyword(name, load_saved):
    x = sg.placeholder(name, shape=(2,))
    other = sg.placeholder("other", shape=(2,))
    f = codegen.compile([x, other], x - other)
    np.testing.assert_array_equal(f(other=np.ones(2), **{name: np.zeros(2)}), [-1.0, -1.0])
    np.testing.assert_array_equal(load_saved(f)(other=np.ones(2), **{name: np.zeros(2)}), [-1.0, -1.0])


# -- conversions that would change values (issue 11, defect 11) ---------------------------


@pytest.mark.parametrize("data, dtype", [
    ([1e300, 1.0], np.float64),   # finite float64 -> inf in float32
    ([-1e39, 1.0], np.float64),
    ([70000, 1], np.int64),       # int -> inf in float16 (below)
    ([1 + 1j, 1.0], np.complex128),
])
def test_data_that_would_change_in_a_float_placeholder_raises(data, dtype):
    want = "float16" if dtype is np.int64 else "float32"
    a = sg.placeholder("a", shape=(2,), dtype=want)
    f = codegen.compile([a], a * 2)
    with pytest.raises(ValueError, match=rf"input 'a' expects {want} data, got {np.dtype(dtype)}"):
        f(np.array(data, dtype=dtype))


@pytest.mark.parametrize("data", [[1.1, -2.7], [np.inf, np.nan], [3.3e38, -1e-50]])
def test_rounding_into_a_narrower_float_is_a_safe_cast(data):
    a = sg.placeholder("a", shape=(2,), dtype="float32")
    f = codegen.compile([a], a * 1)
    r = f(np.array(data))
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r, np.array(data, dtype=np.float32))


def test_huge_unsigned_data_into_a_signed_placeholder_raises():
    y = sg.placeholder("y", shape=(1,), dtype="int64")
    f = codegen.compile([y], y * 1)
    with pytest.raises(ValueError, match="'y'"):
        f(np.array([2**64 - 1], dtype=np.uint64))


# -- integer labels (issue 11, defect 8) --------------------------------------------------


@pytest.fixture
def cross_entropy():
    x = sg.placeholder("x", shape=("batch", 2))
    y = sg.placeholder("y", shape=("batch",), dtype="int64")
    W = sg.parameter("W", value=np.arange(6.0).reshape(2, 3) / 6)
    loss = sg.softmax_cross_entropy(x @ W, y)
    return codegen.compile([x, y], [loss, sg.grad(loss, W)])


@pytest.mark.parametrize("bad", [-1, -3, 3, 7])
def test_out_of_range_labels_raise_naming_the_input_loss_classes_and_value(cross_entropy, bad):
    with pytest.raises(ValueError, match=rf"labels 'y' of softmax_cross_entropy.*3 classes\), got {bad}$"):
        cross_entropy(np.ones((3, 2)), np.array([0, bad, 2]))


def test_labels_in_range_pass_the_check(cross_entropy):
    loss, _ = cross_entropy(np.ones((3, 2)), np.array([0, 1, 2]))
    assert np.isfinite(loss)


def test_labels_of_the_gradient_alone_and_of_one_hot_are_checked():
    x = sg.placeholder("x", shape=("batch", 3))
    y = sg.placeholder("y", shape=("batch",), dtype="int32")
    W = sg.parameter("W", value=np.ones((3, 4)))
    grad_only = codegen.compile([x, y], sg.grad(sg.softmax_cross_entropy(x @ W, y), W))
    one_hot = codegen.compile([y], sg.one_hot(y, 4))
    for f, args in ((grad_only, (np.ones((2, 3)),)), (one_hot, ())):
        with pytest.raises(ValueError, match=r"labels 'y' .*4 classes\), got 4"):
            f(*args, np.array([4, 0], dtype=np.int32))


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy", "softmax_cross_entropy"])
def test_an_empty_batch_gives_nan_for_every_loss_and_zero_gradients(loss):
    x = sg.placeholder("x", shape=("batch", 2))
    W = sg.parameter("W", value=np.ones((2, 3)))
    integer = loss == "softmax_cross_entropy"
    t = sg.placeholder("t", shape=("batch",) if integer else ("batch", 3), dtype="int64" if integer else "float64")
    cost = getattr(sg, loss)(x @ W, t)
    f = codegen.compile([x, t], [cost, sg.grad(cost, W)])
    with np.errstate(all="ignore"):  # NumPy's warnings for 0 / 0
        value, grad = f(np.zeros((0, 2)), np.zeros((0,) if integer else (0, 3), dtype=t.dtype))
    assert np.isnan(value)
    np.testing.assert_array_equal(grad, np.zeros((2, 3)))
