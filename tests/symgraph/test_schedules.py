"""Learning-rate schedules: numeric values against their formulas, and the graph form
(compiled with codegen) against the numeric form."""

import math

import numpy as np
import pytest

import codegen
import symgraph as sg
from symgraph import schedules

N = 25  # t = 0 .. N - 1

# (schedule, its documented formula for one t, written with the math module)
CASES = [
    (schedules.constant(0.3), lambda t: 0.3),
    (schedules.inverse_time(0.3, 0.25), lambda t: 0.3 / (1 + 0.25 * t)),
    (schedules.inverse_sqrt(0.3), lambda t: 0.3 / math.sqrt(t + 1)),
    (schedules.exponential(0.3, 0.1), lambda t: 0.3 * math.exp(-0.1 * t)),
    (schedules.step(0.3, 0.5, every=4), lambda t: 0.3 * 0.5 ** math.floor(t / 4)),
    (schedules.step(1.0, 0.1, every=1), lambda t: 1.0 * 0.1**t),
    (schedules.cosine(0.3, total_steps=10), lambda t: 0.3 * (1 + math.cos(math.pi * min(t, 10) / 10)) / 2),
    (schedules.cosine(0.3, total_steps=7, lr_min=0.05),
     lambda t: 0.05 + (0.3 - 0.05) * (1 + math.cos(math.pi * min(t, 7) / 7)) / 2),
    (schedules.warmup(schedules.exponential(0.3, 0.1), steps=5),
     lambda t: 0.3 * math.exp(-0.1 * t) * min(1, (t + 1) / 5)),
    (schedules.warmup(0.3, steps=3), lambda t: 0.3 * min(1, (t + 1) / 3)),
    (schedules.warmup(schedules.cosine(0.3, 20, lr_min=0.01), steps=4),
     lambda t: (0.01 + 0.29 * (1 + math.cos(math.pi * min(t, 20) / 20)) / 2) * min(1, (t + 1) / 4)),
]
IDS = [repr(s) for s, _ in CASES]


@pytest.mark.parametrize("schedule, formula", CASES, ids=IDS)
def test_numeric_values_follow_the_formula(schedule, formula):
    want = np.array([formula(t) for t in range(N)])
    got = schedule(np.arange(N))
    assert isinstance(got, np.ndarray) and got.shape == (N,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    for t in (0, 3, N - 1):
        value = schedule(t)
        assert isinstance(value, float)
        assert value == pytest.approx(formula(t), rel=1e-12)
    assert schedule(np.arange(6).reshape(2, 3)).shape == (2, 3)


@pytest.mark.parametrize("schedule, formula", CASES, ids=IDS)
def test_graph_form_matches_the_numeric_form(schedule, formula):
    t = sg.placeholder("t", ())
    rate = schedule(t)
    assert isinstance(rate, sg.Node) and rate.shape == () and rate.dtype == np.float64
    f = codegen.compile([t], rate)
    got = np.array([f(np.float64(k)) for k in range(N)])
    np.testing.assert_allclose(got, schedule(np.arange(N)), rtol=1e-13, atol=1e-300)


def test_graph_form_driven_by_a_step_counter_state_leaf():
    s = schedules.warmup(schedules.step(0.3, 0.5, every=3), steps=2)
    step = sg.state("step", np.array(0.0))
    f = codegen.compile([], s(step), updates={step: step + 1.0})
    got = [float(f()) for _ in range(10)]
    np.testing.assert_allclose(got, s(np.arange(10)), rtol=1e-14)
    assert "np.floor" in f.source


def test_integer_step_nodes_are_converted_to_float():
    t = sg.placeholder("t", (), dtype="int64")
    rate = schedules.inverse_sqrt(1.0)(t)
    assert rate.dtype == np.float64
    assert float(codegen.compile([t], rate)(3)) == 0.5


def test_landmark_values():
    step = schedules.step(0.8, 0.5, every=10)
    assert [step(t) for t in (0, 9, 10, 19, 20)] == [0.8, 0.8, 0.4, 0.4, 0.2]
    cos = schedules.cosine(1.0, total_steps=10, lr_min=0.1)
    assert cos(0) == pytest.approx(1.0) and cos(5) == pytest.approx(0.55)
    assert cos(10) == pytest.approx(0.1) and cos(1000) == pytest.approx(0.1)  # stays at lr_min after T
    assert schedules.cosine(1.0, total_steps=4)(4) == 0.0
    warm = schedules.warmup(schedules.constant(1.0), steps=4)
    assert [warm(t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert schedules.inverse_sqrt(1.0)(3) == 0.5
    assert schedules.inverse_time(1.0, 1.0)(1) == 0.5
    assert schedules.exponential(2.0, 0.0)(7) == 2.0


def test_uses_step_and_repr():
    assert not schedules.constant(0.1).uses_step
    assert schedules.warmup(schedules.constant(0.1), 3).uses_step
    assert repr(schedules.step(0.1, 0.5, 10)) == "step(lr=0.1, factor=0.5, every=10)"
    assert "cosine(lr=0.1, total_steps=5" in repr(schedules.warmup(schedules.cosine(0.1, 5), 2))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="lr"):
        schedules.constant(-1.0)
    with pytest.raises(TypeError, match="lr"):
        schedules.exponential("0.1", 0.1)
    with pytest.raises(TypeError, match="rate"):
        schedules.inverse_time(0.1, float("nan"))
    with pytest.raises(ValueError, match="every"):
        schedules.step(0.1, 0.5, every=0)
    with pytest.raises(ValueError, match="total_steps"):
        schedules.cosine(0.1, total_steps=2.5)
    with pytest.raises(ValueError, match="steps"):
        schedules.warmup(schedules.constant(0.1), steps=0)
    with pytest.raises(ValueError, match="scalar"):
        schedules.constant(0.1)(sg.placeholder("t", (3,)))
