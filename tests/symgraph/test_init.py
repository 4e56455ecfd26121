"""symgraph.init: shapes, fans, seeding, and the variances and bounds each initializer promises.

Contract: DESIGN.md section A ("Training"): fan_in = shape[0], weights (fan_in, fan_out).
"""

import math
import re

import numpy as np
import pytest

import symgraph as sg
from symgraph import init

SEEDED = [
    ("normal", lambda seed: init.normal(0.5, seed=seed)),
    ("uniform", lambda seed: init.uniform(-2.0, 3.0, seed=seed)),
    ("glorot_uniform", lambda seed: init.glorot_uniform(seed=seed)),
    ("glorot_normal", lambda seed: init.glorot_normal(seed=seed)),
    ("he_normal", lambda seed: init.he_normal(seed=seed)),
    ("he_uniform", lambda seed: init.he_uniform(seed=seed)),
]
ALL = SEEDED + [("zeros", lambda seed: init.zeros()), ("constant", lambda seed: init.constant(0.25))]


@pytest.mark.parametrize("name, make", ALL, ids=[n for n, _ in ALL])
@pytest.mark.parametrize("shape", [(3, 5), (7,), (2, 3, 4), (), (0, 4)])
def test_shape_and_dtype(name, make, shape):
    value = make(0)(shape)
    assert isinstance(value, np.ndarray)
    assert value.shape == shape
    assert value.dtype == np.float64
    assert np.all(np.isfinite(value))


@pytest.mark.parametrize("name, make", SEEDED, ids=[n for n, _ in SEEDED])
def test_seeded_is_reproducible_and_seed_none_is_fresh(name, make):
    a = make(7)((4, 6))
    np.testing.assert_array_equal(a, make(7)((4, 6)))  # a fresh initializer with the same seed
    f = make(7)
    np.testing.assert_array_equal(f((4, 6)), f((4, 6)))  # stateless: the same object again
    assert not np.array_equal(a, make(8)((4, 6)))
    fresh = make(None)
    assert not np.array_equal(fresh((4, 6)), fresh((4, 6)))


def test_fans():
    assert init.fans((3, 5)) == (3, 5)
    assert init.fans((7,)) == (7, 7)
    assert init.fans((2, 3, 4)) == (2, 12)
    assert init.fans(()) == (1, 1)
    assert init.fans(6) == (6, 6)


def test_zeros_and_constant():
    np.testing.assert_array_equal(init.zeros()((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.constant(1.5)((4,)), np.full(4, 1.5))


# Large shapes: the sample variance of n draws has a relative std of about sqrt(2/n) (normal)
# or sqrt(0.8/n) (uniform); with n = 240,000 a 2% tolerance is more than 6 standard errors.
FAN_IN, FAN_OUT = 400, 600


def test_glorot_uniform_bounds_and_variance():
    w = init.glorot_uniform(seed=1)((FAN_IN, FAN_OUT))
    limit = math.sqrt(6 / (FAN_IN + FAN_OUT))
    assert w.min() >= -limit and w.max() < limit
    assert w.min() < -0.99 * limit and w.max() > 0.99 * limit  # the whole interval is used
    assert w.var() == pytest.approx(2 / (FAN_IN + FAN_OUT), rel=0.02)
    assert abs(w.mean()) < 0.01 * limit


def test_glorot_normal_variance():
    w = init.glorot_normal(seed=2)((FAN_IN, FAN_OUT))
    assert w.var() == pytest.approx(2 / (FAN_IN + FAN_OUT), rel=0.02)
    assert abs(w.mean()) < 0.01 * w.std()


def test_he_normal_variance():
    w = init.he_normal(seed=3)((FAN_IN, FAN_OUT))
    assert w.var() == pytest.approx(2 / FAN_IN, rel=0.02)
    assert abs(w.mean()) < 0.01 * w.std()


def test_he_uniform_bounds_and_variance():
    w = init.he_uniform(seed=4)((FAN_IN, FAN_OUT))
    limit = math.sqrt(6 / FAN_IN)
    assert w.min() >= -limit and w.max() < limit
    assert w.var() == pytest.approx(2 / FAN_IN, rel=0.02)


def test_fan_out_of_a_3d_weight_counts_every_output_axis():
    w = init.glorot_normal(seed=5)((200, 30, 40))
    assert w.var() == pytest.approx(2 / (200 + 1200), rel=0.02)


def test_normal_and_uniform():
    w = init.normal(0.3, seed=6)((500, 500))
    assert w.std() == pytest.approx(0.3, rel=0.01)
    u = init.uniform(-1.0, 3.0, seed=7)((500, 500))
    assert u.min() >= -1.0 and u.max() < 3.0
    assert u.mean() == pytest.approx(1.0, abs=0.02)
    assert u.var() == pytest.approx(16 / 12, rel=0.02)


def test_usable_as_parameter_init():
    W = sg.parameter("W", shape=(4, 3), init=init.glorot_uniform(seed=0))
    assert W.shape == (4, 3)
    np.testing.assert_array_equal(W.value, init.glorot_uniform(seed=0)((4, 3)))
    b = sg.parameter("b", shape=(3,), init=init.zeros())
    np.testing.assert_array_equal(b.value, np.zeros(3))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"init\.normal: std must be >= 0, got -1\.0"):
        init.normal(-1.0)
    with pytest.raises(ValueError, match=r"init\.uniform: need low <= high, got low=1\.0, high=0\.0"):
        init.uniform(1.0, 0.0)
    with pytest.raises(TypeError, match=r"init\.he_normal: seed must be an int or None, got 1\.5"):
        init.he_normal(seed=1.5)
    with pytest.raises(ValueError, match=re.escape("init.zeros: a parameter's shape must be non-negative ints, "
                                                   "got ('batch', 3)")):
        init.zeros()(("batch", 3))


def test_given_fans_override_the_shape():
    """A conv kernel O×C×kH×kW is not read as a matrix of O rows: nn.Conv2d passes its fans."""
    he = init.he_uniform(seed=0)
    w = he((8, 3, 3, 3), fans=(27, 72))
    assert np.abs(w).max() <= np.sqrt(6 / 27) and np.abs(w).max() > np.sqrt(6 / 27) * 0.9
    assert np.abs(he((8, 3, 3, 3))).max() > np.sqrt(6 / 27)  # read from the shape: fan_in = 8
    with pytest.raises(ValueError, match="init.he_uniform: fans must be a pair"):
        he((8, 3), fans=(3,))


def test_repr_names_the_initializer():
    assert repr(init.he_normal(seed=3)) == "init.he_normal(seed=3)"
    assert "std=0.5" in repr(init.normal(0.5))
