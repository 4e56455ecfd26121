"""Randomness inside a graph: counter-based, so every call is reproducible.

A random key is a state leaf holding ``[seed, counter]``. :class:`RandomUniform`
draws from a stream determined by the key alone, and the training function
advances the counter with an update (``next_key``), so each step sees new
numbers while a rerun with the same seed sees the same ones.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..graph import NoDerivative, Node, apply, as_node, parameter


class RandomUniform(NoDerivative):
    """Uniform noise in [0, 1) shaped like the second input (read only for its shape),
    drawn from the stream of the first input, a random key. No derivative."""

    name, params, shape_inputs = "random_uniform", ("dtype",), (1,)
    view_of, elementwise, writes_into = (), False, False  # a new array

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def infer(self, key, like):
        if key.shape != (2,) or key.dtype.kind not in "iu":
            raise self.dtype_error([key, like], "the key must be an integer [seed, counter] pair (see sg.random_key)")
        if self.dtype not in (np.float16, np.float32, np.float64):
            raise self.dtype_error([key, like], f"draws float16, float32 or float64 numbers, not {self.dtype}")
        return like.shape, self.dtype

    def compute(self, key, like):
        return kernels._uniform(key, like.shape, self.dtype)


def random_key(name: str, seed: int) -> Node:
    """A state leaf holding the random key ``[seed, 0]``; advance it with :func:`next_key`.
    ``seed`` is an int in [0, 2**63) (NumPy's generators take no negative seed)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"random_key {name!r}: seed must be an int, got {seed!r}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"random_key {name!r}: seed must be in [0, 2**63), got {seed}")
    return parameter(name, value=np.array([seed, 0], dtype=np.int64), dtype="int64", trainable=False)


def next_key(key: Node) -> Node:
    """The key for the next call: the counter plus one (use it as the key's update)."""
    return key + as_node(np.array([0, 1], dtype=key.dtype))


def random_uniform(key: Node, like: Node, dtype=None) -> Node:
    """Uniform [0, 1) noise with ``like``'s shape (and float dtype), drawn from ``key``."""
    like = as_node(like)
    dtype = dtype or (like.dtype if like.dtype.kind == "f" else np.float64)
    return apply(RandomUniform(dtype), key, like)
