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


def _gemm_update(c, a, b, alpha):
    """``c += alpha * (a @ b)`` in place as one GEMM of NumPy's own BLAS (beta = 1: the product is
    never stored apart, and c is read and written once), for float32/float64 matrices, ``c``
    C-contiguous, ``a`` and ``b`` C-ordered or transposed ones (``x.T`` is passed as a flag, never
    copied). Otherwise, or without that BLAS, the two NumPy steps (which allocate the product)."""
    gemm = _blas_gemm(c.dtype) if type(c) is np.ndarray and a.dtype == b.dtype == c.dtype else None
    fits = c.ndim == 2 and a.shape[0] == c.shape[0] and b.shape == (a.shape[1], c.shape[1])  # (else NumPy says why)
    if gemm is not None and fits and c.flags.c_contiguous and c.size and a.shape[1]:
        (ta, lda), (tb, ldb) = _blas_layout(a), _blas_layout(b)
        if lda and ldb:
            gemm(101, ta, tb, c.shape[0], c.shape[1], a.shape[1], alpha, a.ctypes.data, lda, b.ctypes.data, ldb,
                 1.0, c.ctypes.data, c.shape[1])  # 101: row-major
            return c
    c += alpha * np.dot(a, b)
    return c


def _blas_layout(m):
    """(cblas transpose flag, leading dimension) of a matrix BLAS reads in place; (0, 0) if none."""
    (rows, cols), (s0, s1), size = m.shape, m.strides, m.itemsize
    if s1 == size and s0 % size == 0 and s0 >= max(cols, 1) * size:
        return 111, s0 // size  # no transpose
    if s0 == size and s1 % size == 0 and s1 >= max(rows, 1) * size:
        return 112, s1 // size  # the transpose of a C-ordered matrix
    return 0, 0


def _blas_gemm(dtype, _found={}):  # (_found: looked up once per dtype, then kept)
    """cblas_sgemm / cblas_dgemm of the OpenBLAS that NumPy's wheel bundles (``numpy.libs``, or
    ``.dylibs`` on macOS), through ctypes: the library NumPy has loaded already, so its own thread
    pool (a second BLAS, such as SciPy's, would bring a second pool fighting it). None when there
    is no such library or symbol (NumPy built against another BLAS): callers then use NumPy."""
    dtype = np.dtype(dtype)
    if dtype not in _found:
        import ctypes
        import glob
        import os

        _found[dtype] = None
        char, real = {"float32": ("s", ctypes.c_float), "float64": ("d", ctypes.c_double)}.get(dtype.name, ("", None))
        here = os.path.dirname(np.__file__)
        paths = glob.glob(here + ".libs/*openblas*") + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))
        names = [(f"scipy_cblas_{char}gemm64_", ctypes.c_int64), (f"scipy_cblas_{char}gemm", ctypes.c_int),
                 (f"cblas_{char}gemm64_", ctypes.c_int64), (f"cblas_{char}gemm", ctypes.c_int)]
        found = ((fn, int_t) for path in (paths if char else ()) for name, int_t in names
                 for fn in [getattr(ctypes.CDLL(path), name, None)] if fn is not None)
        for fn, int_t in found:  # the first: (order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            p, flag = ctypes.c_void_p, ctypes.c_int
            fn.restype, fn.argtypes = None, [flag] * 3 + [int_t] * 3 + [real, p, int_t, p, int_t, real, p, int_t]
            _found[dtype] = fn
            break
    return _found[dtype]
