"""CuPy helpers that generated CuPy modules call, where the NumPy helper would not do.

A helper of :mod:`symgraph.kernels` whose ``np.`` calls CuPy has alike is copied into a CuPy
module with ``cp.`` for ``np.`` (see ``CuPyBackend.helper_source``); this module holds the
others, same names and semantics (checked by the parity tests): reductions along an axis
with ``cp.max``/``cp.sum``, labels read with ``cp.take_along_axis`` or integer indexing, never
through one-hot rows, and what CuPy spells differently. The generator copies each function a
module calls into it, so keep them short and dependency-free (``cp`` and ``np`` only).
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


def _pick(x, labels):
    """x[..., labels]: the entry of the last axis chosen by each integer label."""
    index = cp.broadcast_to(labels[..., None], x.shape[:-1] + (1,))
    return cp.take_along_axis(x, index, axis=-1)[..., 0]


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
    rng = np.random.default_rng([int(k) for k in cp.asnumpy(key)])
    if np.dtype(dtype) == np.float16:  # (multiples of 2**-11, as the NumPy helper draws them)
        return cp.asarray((rng.integers(0, 2048, size=shape) / 2048).astype(np.float16))
    return cp.asarray(rng.random(shape, dtype=dtype))


# -- convolution and pooling: windows of the last two axes, im2col and one matrix product --------
# The twins of symgraph.kernels' helpers, in CuPy's calls: views through as_strided (which has no
# writeable flag here), ties resolved without a device sync.


def _strided(x, shape, strides):
    """A view of x with the given shape and byte strides (its entries may overlap)."""
    return cp.lib.stride_tricks.as_strided(x, shape, strides)


def _first_maxima(x, pooled, kernel, stride, padding):
    """One boolean array per kernel tap (row-major), shaped like ``pooled`` (x max-pooled): True where
    that tap holds its window's first maximum, as PyTorch picks (a window holding a NaN has no maximum
    here: all False). Ties are always resolved: counting hits first would cost a device sync."""
    win = _windows(x, kernel, stride, padding, (1, 1), -cp.inf)
    masks, taken = [], None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            hit = win[..., i, j] == pooled
            if taken is None:
                taken = hit
            else:
                hit = hit & ~taken  # a tie with an earlier tap: the earlier one has it
                taken = taken | hit
            masks.append(hit)
    return masks


def _max_pool2d_grad(x, g, pooled, kernel, stride, padding=(0, 0, 0, 0), out=None):
    """g routed to the first maximum of each window of x (the vjp of max_pool2d; ``pooled`` is x
    max-pooled), summed where windows overlap: one pass per kernel tap, no index arrays (``cp.where``,
    never a finiteness test of g: that would cost a device sync)."""
    masks = _first_maxima(x, pooled, kernel, stride, padding)
    (top, bottom, left, right), (sh, sw), (kh, kw) = padding, stride, kernel
    h, w = x.shape[-2:]
    ho, wo = g.shape[-2:]
    shape = cp.broadcast_shapes(g.shape[:-2], x.shape[:-2]) + (top + h + bottom, left + w + right)
    acc = cp.zeros(shape, g.dtype)
    for t, mask in enumerate(masks):
        i, j = divmod(t, kw)
        acc[..., i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw] += cp.where(mask, g, 0)
    return _into(out, acc[..., top:top + h, left:left + w])
