"""CuPy helpers that generated CuPy modules call: the row-wise ops, in CuPy's own calls.

The CuPy twin of :mod:`symgraph.kernels` (same names, same semantics, checked against it
by the parity tests): reductions along an axis with ``cp.max``/``cp.sum``, labels read with
``cp.take_along_axis`` or integer indexing, never through one-hot rows. The generator copies
each function a module calls into it, so keep them short and dependency-free (``cp`` and
``np`` only).
"""

import numpy as np

try:  # only the text of these functions is needed to generate a module: CuPy may be missing here
    import cupy as cp
except ImportError:
    cp = None


def _blocks(n):
    """The grid of an elementwise kernel over n elements: 256 threads a block, at most 65,536 blocks
    (each thread's grid-stride loop covers the rest)."""
    return (min((n + 255) // 256, 65536),)


def _sigmoid(x, out=None):
    """Logistic function 1 / (1 + exp(-x)) = exp(-softplus(-x)), without overflow for any x."""
    s = cp.logaddexp(0.0, cp.negative(x), out=out)
    return cp.exp(cp.negative(s, out=out), out=out)


def _logsumexp(x, axis, keepdims=False):
    """log(sum(exp(x))) over axis, shifted by the max along it so exp never overflows (rows of
    -inf, or with inf or nan, are shifted by 0)."""
    m = cp.max(x, axis=axis, keepdims=True)
    m = cp.where(cp.isfinite(m), m, 0)
    out = cp.log(cp.sum(cp.exp(x - m), axis=axis, keepdims=True))
    out += m
    return out if keepdims else out.squeeze(axis)


def _softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) over axis, shifted by the max so exp never overflows."""
    e = cp.exp(x - cp.max(x, axis=axis, keepdims=True))
    e /= cp.sum(e, axis=axis, keepdims=True)
    return e


def _log_softmax(x, axis=-1):
    """x - logsumexp(x) over axis, computed stably."""
    shifted = x - cp.max(x, axis=axis, keepdims=True)
    return shifted - cp.log(cp.sum(cp.exp(shifted), axis=axis, keepdims=True))


def _one_hot(labels, num_classes, dtype):
    """Rows of the identity picked by integer labels: shape labels.shape + (num_classes,)."""
    return (labels[..., None] == cp.arange(num_classes)).astype(dtype)


def _pick(x, labels):
    """x[..., labels]: the entry of the last axis chosen by each integer label."""
    index = cp.broadcast_to(labels[..., None], x.shape[:-1] + (1,))
    return cp.take_along_axis(x, index, axis=-1)[..., 0]


def _embed(values, shape, index):
    """An array of zeros of ``shape`` with ``values`` written at ``index``."""
    out = cp.zeros(shape, dtype=values.dtype)
    out[index] = values
    return out


def _unpick(values, labels, num_classes):
    """Zeros of shape values.shape + (num_classes,) with values at the labelled entries."""
    out = cp.zeros(values.shape + (num_classes,), dtype=values.dtype)
    rows = out.reshape(-1, num_classes)
    rows[cp.arange(rows.shape[0]), cp.broadcast_to(labels, values.shape).ravel()] = values.ravel()
    return out


def _add_at(x, values, labels, out=None):
    """x plus ``values`` at the entries of the last axis the integer labels choose (one per row)."""
    if out is None:
        out = x.copy()
    elif out is not x:
        out[...] = x
    rows = out.reshape(-1, out.shape[-1])  # a view: out is contiguous (a fresh copy or a buffer)
    index = cp.arange(rows.shape[0]), cp.broadcast_to(labels, out.shape[:-1]).ravel()
    rows[index] += cp.broadcast_to(values, out.shape[:-1]).ravel()  # one entry per row: no two adds collide
    return out


def _uniform(key, shape, dtype):
    """Uniform numbers in [0, 1) of ``shape``, drawn on the host by NumPy's generator from the key
    (seed, counter) and copied to the device, so a CuPy step draws the numbers a NumPy step draws."""
    key = cp.asnumpy(key)
    return cp.asarray(np.random.default_rng([int(k) for k in key]).random(shape, dtype=dtype))
