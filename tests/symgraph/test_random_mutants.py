"""random.py's mutation run (tests/MUTANTS.md): what the other tests left open. The key check's
whole message and both of its conditions, the draw's dtype from RandomUniform.compute itself, the key
as a state leaf (not trainable), next_key keeping an int32 key's dtype, and random_uniform's float
dtype for an integer ``like``."""

from __future__ import annotations

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph.ops import RandomUniform

HERE = r" at \S*test_random_mutants\.py:\d+$"


@pytest.mark.parametrize("shape, dtype, dtypes", [
    ((3,), "int64", "int64, float64"),  # an integer key of the wrong shape
    ((2,), "float64", "float64, float64"),  # a pair of the wrong dtype
    ((2, 1), "float32", "float32, float64"),  # both wrong
])
def test_a_key_that_is_not_an_integer_pair_is_refused_with_the_whole_message(shape, dtype, dtypes):
    key = sg.placeholder("k", shape, dtype=dtype)
    with pytest.raises(sg.DTypeError, match=r"^random_uniform: the key must be an integer \[seed, counter\] pair "
                                            rf"\(see sg\.random_key\) \(operand dtypes {dtypes}\){HERE}"):
        sg.random_uniform(key, sg.placeholder("x", (4,)))


@pytest.mark.parametrize("dtype", ["int32", "uint8", "int64"])
def test_integer_pairs_of_any_integer_dtype_are_keys(dtype):
    key = sg.placeholder("k", (2,), dtype=dtype)
    u = sg.random_uniform(key, sg.placeholder("x", (4, 2)))
    assert (u.shape, u.dtype) == ((4, 2), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compute_draws_in_the_op_dtype(dtype):
    """The op's own NumPy rule (not a cast by the evaluator): float32 numbers are drawn as float32."""
    got = RandomUniform(dtype).compute(np.array([7, 0]), np.zeros((5,)))
    assert got.dtype == dtype and got.shape == (5,)
    np.testing.assert_array_equal(got, np.random.default_rng([7, 0]).random((5,), dtype=dtype))


def test_random_key_is_a_state_leaf_not_a_trainable_parameter():
    key = sg.random_key("key", 5)
    assert sg.parameters_of([key], trainable=False) == [key]
    assert sg.parameters_of([key], trainable=True) == []
    assert key.op.trainable is False
    np.testing.assert_array_equal(key.op.value, [5, 0])
    assert key.op.value.dtype == np.int64


def test_next_key_keeps_the_key_dtype_and_adds_one_to_the_counter():
    key = sg.placeholder("k", (2,), dtype="int32")
    nxt = sg.next_key(key)
    assert nxt.dtype == np.int32
    got = codegen.evaluate(nxt, {key: np.array([9, 4], dtype=np.int32)})
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [9, 5])


@pytest.mark.parametrize("like_dtype, expected", [("int64", np.float64), ("bool", np.float64), ("int32", np.float64),
                                                  ("float32", np.float32)])
def test_random_uniform_is_float_for_any_like(like_dtype, expected):
    key = sg.random_key("key", 1)
    like = sg.placeholder("x", (3,), dtype=like_dtype)
    u = sg.random_uniform(key, like)
    assert u.dtype == expected
    got = codegen.evaluate(u, {like: np.zeros(3, dtype=like_dtype)})
    assert got.dtype == expected and np.all((0 <= got) & (got < 1))


@pytest.mark.parametrize("seed, error, message", [
    (1.5, TypeError, "random_key 'k': seed must be an int, got 1.5"),  # was truncated to seed 1
    ("3", TypeError, "random_key 'k': seed must be an int, got '3'"),  # was parsed as 3
    (True, TypeError, "random_key 'k': seed must be an int, got True"),
    (-1, ValueError, r"random_key 'k': seed must be in \[0, 2\*\*63\), got -1"),  # was refused by NumPy at run time
    (2**63, ValueError, r"random_key 'k': seed must be in \[0, 2\*\*63\), got 9223372036854775808"),
])
def test_random_key_refuses_a_seed_that_is_not_an_int_in_range(seed, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        sg.random_key("k", seed)


@pytest.mark.parametrize("seed", [0, 2**63 - 1, np.int32(12), np.uint64(2**63 - 1)])
def test_random_key_takes_any_int_seed_in_range(seed):
    key = sg.random_key("k", seed)
    assert key.op.value.dtype == np.int64 and key.op.value.tolist() == [int(seed), 0]
    x = sg.placeholder("x", (3,))
    got = codegen.evaluate(sg.random_uniform(key, x), {x: np.zeros(3)})
    np.testing.assert_array_equal(got, np.random.default_rng([int(seed), 0]).random(3))


def test_random_uniform_draws_float16_on_a_grid_in_the_unit_interval():
    """NumPy's generator has no float16: such numbers are multiples of 2**-11 in [0, 1), never 1."""
    key = sg.random_key("key", 5)
    like = sg.placeholder("x", (4000,), dtype="float16")
    u = sg.random_uniform(key, like)
    assert u.dtype == np.float16
    got = codegen.evaluate(u, {like: np.zeros(4000, dtype=np.float16)})
    assert got.dtype == np.float16 and got.min() >= 0 and got.max() < 1
    np.testing.assert_array_equal(got * 2048, np.round(got.astype(np.float64) * 2048))  # on the grid
    assert abs(float(got.astype(np.float64).mean()) - 0.5) < 0.02 and len(np.unique(got)) > 1000
    np.testing.assert_array_equal(got, u.op.compute(np.array([5, 0]), np.zeros(4000, np.float16)))


@pytest.mark.parametrize("dtype", ["int64", "complex128", "bool"])
def test_random_uniform_refuses_a_dtype_it_cannot_draw(dtype):
    with pytest.raises(sg.DTypeError, match=f"^random_uniform: draws float16, float32 or float64 numbers, not {dtype}"):
        sg.random_uniform(sg.random_key("key", 1), sg.placeholder("x", (3,)), dtype=dtype)
