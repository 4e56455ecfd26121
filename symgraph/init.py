"""Initializers: callables ``shape -> np.ndarray`` (float64) for :func:`symgraph.parameter`.

    W = sg.parameter("W", shape=(784, 128), init=sg.init.he_normal(seed=0))

Each factory returns an :class:`Initializer`. Seeding is stateless: with a
``seed``, the array depends only on the seed and the shape, so the same seed
and shape give the same array on every call (in every process); with
``seed=None`` each call draws fresh numbers from the operating system's
entropy. Give layers that share a shape different seeds, or their weights
start equal.

Fans (weights are laid out ``(fan_in, fan_out)``, as in ``x @ W``): a shape is
read as a matrix of ``shape[0]`` rows, so

- 2-D ``(n_in, n_out)``: ``fan_in = n_in``, ``fan_out = n_out``;
- more dimensions ``(n_in, d1, d2, ...)``: ``fan_in = n_in``,
  ``fan_out = d1 * d2 * ...`` (the input axis is contracted; every other axis
  is an output);
- 1-D ``(n,)`` (a bias, a scale): ``fan_in = fan_out = n``;
- a scalar ``()``: ``fan_in = fan_out = 1``.

A weight laid out otherwise passes its fans: ``init(shape, fans=(fan_in,
fan_out))``. ``nn.Conv2d`` does, for its ``O × C/groups × kH × kW`` kernels,
with PyTorch's fans: ``fan_in = C/groups · kH · kW``, ``fan_out = O · kH · kW``.

Variances: Glorot (Xavier) ``2 / (fan_in + fan_out)``, He (Kaiming, for
ReLU) ``2 / fan_in``. The normal variants use a plain (untruncated) normal
distribution, as PyTorch's ``xavier_normal_`` and ``kaiming_normal_`` do; the
uniform variants draw from ``[-limit, limit)`` with ``limit = sqrt(3 *
variance)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "Initializer", "constant", "fans", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "normal",
    "uniform", "zeros",
]


def fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of this shape (see the module docstring)."""
    shape = _shape(shape)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], math.prod(shape[1:])


_fans = fans  # the function, for Initializer.__call__ (whose keyword argument is also called fans)


def _shape(shape, what: str = "init.fans") -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise ValueError(f"{what}: a parameter's shape must be non-negative ints, got {shape!r}")
    return tuple(int(d) for d in shape)


class Initializer:
    """``init(shape)`` returns a new float64 array of that shape; ``init(shape, fans=(fan_in, fan_out))``
    overrides the fans read from the shape (see the module docstring).

    ``draw(rng, shape, fan_in, fan_out)`` makes the numbers; ``seed`` fixes
    the generator (stateless: each call starts again from the seed).
    """

    def __init__(self, name: str, draw, seed: int | None = None, **attrs):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"init.{name}: seed must be an int or None, got {seed!r}")
        self.name = name
        self.seed = seed
        self.attrs = attrs
        self._draw = draw

    def __call__(self, shape, fans: tuple[int, int] | None = None) -> np.ndarray:
        shape = _shape(shape, f"init.{self.name}")
        rng = np.random.default_rng(self.seed)  # None: fresh entropy on every call
        if fans is None:
            fan_in, fan_out = _fans(shape)
        elif len(fans) != 2 or not all(isinstance(f, (int, np.integer)) and f >= 0 for f in fans):
            raise ValueError(f"init.{self.name}: fans must be a pair of non-negative ints, got {fans!r}")
        else:
            fan_in, fan_out = int(fans[0]), int(fans[1])
        return np.asarray(self._draw(rng, shape, fan_in, fan_out), dtype=np.float64)

    def __repr__(self):
        args = [f"{k}={v!r}" for k, v in self.attrs.items()] + [f"seed={self.seed!r}"]
        return f"init.{self.name}({', '.join(args)})"


def zeros() -> Initializer:
    """All zeros (biases, batch-norm shifts)."""
    return Initializer("zeros", lambda rng, shape, fi, fo: np.zeros(shape))


def constant(value: float) -> Initializer:
    """Every entry equal to ``value`` (e.g. ``constant(1.0)`` for a batch-norm scale)."""
    value = float(value)
    return Initializer("constant", lambda rng, shape, fi, fo: np.full(shape, value), value=value)


def normal(std: float = 1.0, seed: int | None = None) -> Initializer:
    """Normal with mean 0 and standard deviation ``std``."""
    if std < 0:
        raise ValueError(f"init.normal: std must be >= 0, got {std}")
    return Initializer("normal", lambda rng, shape, fi, fo: rng.normal(0.0, std, shape), seed, std=std)


def uniform(low: float = -0.05, high: float = 0.05, seed: int | None = None) -> Initializer:
    """Uniform on ``[low, high)``."""
    if not low <= high:
        raise ValueError(f"init.uniform: need low <= high, got low={low}, high={high}")
    return Initializer("uniform", lambda rng, shape, fi, fo: rng.uniform(low, high, shape), seed, low=low, high=high)


def _std(variance: float) -> float:
    return math.sqrt(variance) if variance > 0 else 0.0


def glorot_uniform(seed: int | None = None) -> Initializer:
    """Glorot/Xavier uniform: ``U[-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``; variance ``2/(fan_in+fan_out)``."""

    def draw(rng, shape, fi, fo):
        limit = math.sqrt(3.0) * _std(2.0 / max(fi + fo, 1))
        return rng.uniform(-limit, limit, shape)

    return Initializer("glorot_uniform", draw, seed)


def glorot_normal(seed: int | None = None) -> Initializer:
    """Glorot/Xavier normal: ``N(0, 2 / (fan_in + fan_out))``."""
    def draw(rng, shape, fi, fo):
        return rng.normal(0.0, _std(2.0 / max(fi + fo, 1)), shape)

    return Initializer("glorot_normal", draw, seed)


def he_normal(seed: int | None = None) -> Initializer:
    """He/Kaiming normal (for ReLU layers): ``N(0, 2 / fan_in)``."""
    return Initializer("he_normal", lambda rng, shape, fi, fo: rng.normal(0.0, _std(2.0 / max(fi, 1)), shape), seed)


def he_uniform(seed: int | None = None) -> Initializer:
    """He/Kaiming uniform: ``U[-l, l)`` with ``l = sqrt(6 / fan_in)``, variance ``2/fan_in``."""

    def draw(rng, shape, fi, fo):
        limit = math.sqrt(3.0) * _std(2.0 / max(fi, 1))
        return rng.uniform(-limit, limit, shape)

    return Initializer("he_uniform", draw, seed)
