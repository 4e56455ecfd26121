"""NumPy helpers that generated code calls for ops with no one-call NumPy form.

Each function here is both the forward semantics of its op (``Op.compute``
calls it) and the text the code generator copies into a generated module, so
the two can never disagree. Keep them short, dependency-free (``np`` only) and
numerically stable; ``np`` may be CuPy in a generated module.
"""

import numpy as np


def _sigmoid(x, out=None):
    """Logistic function 1 / (1 + exp(-x)) = exp(-softplus(-x)), without overflow for any x."""
    s = np.logaddexp(0.0, np.negative(x), out=out)
    return np.exp(np.negative(s, out=out), out=out)


def _logsumexp(x, axis, keepdims=False):
    """log(sum(exp(x))) over axis, shifted so exp never overflows: by the largest entry of x when
    no entry is far below it (two fast whole-array reductions), else by the max along the axis."""
    if x.size:  # (an empty batch has no largest entry)
        hi, lo = np.maximum.reduce(x, axis=None), np.minimum.reduce(x, axis=None)
        if hi - lo <= (60 if x.dtype.itemsize >= 4 else 8):  # every exp(x - hi) is a normal number
            return np.log(np.add.reduce(np.exp(x - hi), axis=axis, keepdims=keepdims)) + hi
    # else also nan, inf and rows of -inf, which are shifted by 0 instead
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True))
    out += m
    return out if keepdims else out.squeeze(axis)


def _softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) over axis, shifted by the max so exp never overflows."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _log_softmax(x, axis=-1):
    """x - logsumexp(x) over axis, computed stably."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _one_hot(labels, num_classes, dtype):
    """Rows of the identity picked by integer labels: shape labels.shape + (num_classes,)."""
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)


def _pick(x, labels):
    """x[..., labels]: the entry of the last axis chosen by each integer label."""
    if x.ndim == 2 and labels.ndim == 1:  # rows of logits: plain fancy indexing is fastest
        return x[np.arange(len(labels)), labels]
    index = np.broadcast_to(labels[..., None], x.shape[:-1] + (1,))
    return np.take_along_axis(x, index, axis=-1)[..., 0]


def _embed(values, shape, index):
    """An array of zeros of ``shape`` with ``values`` written at ``index``."""
    out = np.zeros(shape, dtype=values.dtype)
    out[index] = values
    return out


def _unpick(values, labels, num_classes):
    """Zeros of shape values.shape + (num_classes,) with values at the labelled entries."""
    out = np.zeros(values.shape + (num_classes,), dtype=values.dtype)
    if values.ndim == 1 and labels.ndim == 1:
        out[np.arange(len(labels)), labels] = values
        return out
    index = np.broadcast_to(labels[..., None], values.shape + (1,))
    np.put_along_axis(out, index, values[..., None], axis=-1)
    return out


def _add_at(x, values, labels, out=None):
    """x plus ``values`` at the entries of the last axis the integer labels choose (one per row)."""
    if out is None:
        out = x.copy()
    elif out is not x:
        np.copyto(out, x)
    if labels.ndim == 1:
        out[np.arange(len(labels)), labels] += values
        return out
    index = labels[..., None]
    picked = np.take_along_axis(out, index, axis=-1)
    np.put_along_axis(out, index, picked + np.asarray(values)[..., None], axis=-1)
    return out


def _uniform(key, shape, dtype):
    """Uniform numbers in [0, 1) of ``shape``; the same key (seed, counter) gives the same numbers."""
    return np.random.default_rng([int(k) for k in key]).random(shape, dtype=dtype)
