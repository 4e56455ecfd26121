"""Learning-rate schedules: the step size as a function of the step count ``t``.

``t`` is the number of updates already applied (0 on the first call of a
training step). A schedule is written once, as a formula over a small math
namespace, and can be evaluated two ways from that one formula:

- called with a graph node ``t`` (an optimizer passes its step counter), it
  builds graph nodes, so the schedule is computed inside the compiled
  training step and can be read in its generated source;
- called with a number or a NumPy array, it returns numbers (for plots and
  tests): a float for a scalar, a float64 array for an array.

Example::

    lr = sg.schedules.warmup(sg.schedules.cosine(0.1, total_steps=1000), steps=50)
    opt = sg.optim.Momentum(lr)
    lr(np.arange(5))        # array([0.002, 0.004, 0.006, 0.008, 0.01 ]) (to rounding)

The schedules (``T`` = ``total_steps``):

==============================  ============================================
``constant(lr)``                lr
``inverse_time(lr, rate)``      lr / (1 + rate·t)
``inverse_sqrt(lr)``            lr / sqrt(t + 1)
``exponential(lr, rate)``       lr · exp(−rate·t)
``step(lr, factor, every)``     lr · factor^floor(t / every)
``cosine(lr, T, lr_min=0)``     lr_min + (lr − lr_min)·(1 + cos(π·min(t, T)/T))/2
``warmup(schedule, steps)``     schedule(t) · min(1, (t + 1)/steps)
==============================  ============================================
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .graph import Node, as_node
from .ops import cast, cos, exp, floor, minimum, sqrt

__all__ = [
    "Schedule", "constant", "cosine", "exponential", "inverse_sqrt", "inverse_time", "step", "warmup",
]


class _NumPyMath:
    """The functions a schedule formula may call, on numbers."""

    exp, sqrt, cos, floor, minimum = np.exp, np.sqrt, np.cos, np.floor, np.minimum


class _GraphMath:
    """The same functions, building graph nodes."""

    exp, sqrt, cos, floor, minimum = (staticmethod(f) for f in (exp, sqrt, cos, floor, minimum))


class Schedule:
    """A learning rate as a function of the step count ``t`` (see the module docstring).

    ``formula(t, m)`` computes the rate from ``t`` with arithmetic operators and
    the functions of namespace ``m`` (``exp sqrt cos floor minimum``), so the
    graph form and the numeric form are the same formula. ``uses_step`` is False
    when the rate does not depend on ``t`` (an optimizer then needs no step
    counter for it).
    """

    def __init__(self, name: str, formula, params: dict, uses_step: bool = True):
        self.name = name
        self.formula = formula
        self.params = params
        self.uses_step = uses_step

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def __call__(self, t):
        """The rate at step ``t``: a node for a node, a float for a number, an array for an array."""
        if isinstance(t, Node):
            if t.ndim != 0:
                raise ValueError(f"{self!r}: the step count must be a scalar node, got shape {t.shape}")
            t = cast(t, np.float64) if t.dtype.kind != "f" else t
            return as_node(self.formula(t, _GraphMath), like=t)
        values = np.asarray(t, dtype=np.float64)
        out = np.broadcast_to(np.asarray(self.formula(values, _NumPyMath), dtype=np.float64), values.shape)
        return float(out) if out.ndim == 0 else np.array(out)


# -- argument checks --------------------------------------------------------------
def _number(value, what: str, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{what} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{what} must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return float(value)


def _count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


# -- the schedules -------------------------------------------------------------------
def constant(lr) -> Schedule:
    """lr, whatever the step."""
    lr = _number(lr, "constant: lr")
    return Schedule("constant", lambda t, m: lr + 0.0 * t, {"lr": lr}, uses_step=False)


def inverse_time(lr, rate) -> Schedule:
    """Inverse-time decay: lr / (1 + rate·t)."""
    lr, rate = _number(lr, "inverse_time: lr"), _number(rate, "inverse_time: rate")
    return Schedule("inverse_time", lambda t, m: lr / (1.0 + rate * t), {"lr": lr, "rate": rate})


def inverse_sqrt(lr) -> Schedule:
    """lr / sqrt(t + 1)."""
    lr = _number(lr, "inverse_sqrt: lr")
    return Schedule("inverse_sqrt", lambda t, m: lr / m.sqrt(t + 1.0), {"lr": lr})


def exponential(lr, rate) -> Schedule:
    """Exponential decay: lr · exp(−rate·t)."""
    lr, rate = _number(lr, "exponential: lr"), _number(rate, "exponential: rate")
    return Schedule("exponential", lambda t, m: lr * m.exp(-rate * t), {"lr": lr, "rate": rate})


def step(lr, factor, every) -> Schedule:
    """Step decay: lr · factor^floor(t / every) (the rate is multiplied by ``factor`` every ``every`` steps)."""
    lr, factor = _number(lr, "step: lr"), _number(factor, "step: factor")
    every = _count(every, "step: every")
    return Schedule("step", lambda t, m: lr * factor ** m.floor(t / every),
                    {"lr": lr, "factor": factor, "every": every})


def cosine(lr, total_steps, lr_min=0.0) -> Schedule:
    """Cosine decay from lr to lr_min over T = ``total_steps`` steps, then lr_min:
    lr_min + (lr − lr_min)·(1 + cos(π·min(t, T)/T))/2."""
    lr, lr_min = _number(lr, "cosine: lr"), _number(lr_min, "cosine: lr_min")
    total = _count(total_steps, "cosine: total_steps")
    mid, half = (lr + lr_min) / 2.0, (lr - lr_min) / 2.0  # the same formula, without a `0.0 + ...` for lr_min = 0
    return Schedule(
        "cosine",
        lambda t, m: mid + half * m.cos(math.pi * m.minimum(t, float(total)) / total),
        {"lr": lr, "total_steps": total, "lr_min": lr_min},
    )


def warmup(schedule, steps) -> Schedule:
    """Linear warmup: schedule(t) · min(1, (t + 1)/steps). ``schedule`` may be a number (a constant rate)."""
    inner = schedule if isinstance(schedule, Schedule) else constant(schedule)
    steps = _count(steps, "warmup: steps")
    return Schedule(
        "warmup",
        lambda t, m: inner.formula(t, m) * m.minimum(1.0, (t + 1.0) / steps),
        {"schedule": inner, "steps": steps},
    )
