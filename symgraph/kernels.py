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


def _erf(x):
    """The error function, elementwise: the C library's erf (Python's math.erf), one call per element
    (NumPy has no erf ufunc); in x's floating dtype."""
    import math

    x = np.asarray(x)
    # frompyfunc gives a Python float for a 0-d x: asarray first, then [()] makes it a NumPy scalar as a ufunc would
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x)).astype(x.dtype if x.dtype.kind == "f" else np.float64)[()]


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
    """Uniform numbers in [0, 1) of ``shape``; the same key (seed, counter) gives the same numbers.
    float16 ones are multiples of 2**-11 (NumPy's generator draws float32 and float64 only)."""
    rng = np.random.default_rng([int(k) for k in key])
    if np.dtype(dtype) == np.float16:
        return (rng.integers(0, 2048, size=shape) / 2048).astype(np.float16)
    return rng.random(shape, dtype=dtype)


# -- convolution and pooling: windows of the last two axes, im2col and one matrix product --------
# Attributes are tuples: stride (rows, columns), padding (top, bottom, left, right), dilation (rows,
# columns). Leading axes beyond N×C×H×W (a batch of tangents or cotangents) broadcast between the
# operands, as matmul's batch axes do.
def _into(out, value):
    """``value`` written into ``out`` (a buffer of the memory plan) when one is given, else as a new
    C-contiguous array (the generated code's other calls may take it for a buffer of their own)."""
    if out is None:
        return np.ascontiguousarray(value)
    out[...] = value
    return out


def _pad2d(x, padding, fill=0):
    """x with ``padding`` (top, bottom, left, right) rows and columns of ``fill`` around its last two axes."""
    top, bottom, left, right = padding
    if not (top or bottom or left or right):
        return x
    h, w = x.shape[-2:]
    out = np.full(x.shape[:-2] + (top + h + bottom, left + w + right), fill, dtype=x.dtype)
    out[..., top:top + h, left:left + w] = x
    return out


def _strided(x, shape, strides):
    """A read-only view of x with the given shape and byte strides (its entries may overlap)."""
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)


def _windows(x, kernel, stride, padding, dilation=(1, 1), fill=0):
    """The windows of x's last two axes, padded with ``fill``: a view (..., H', W', kH, kW) of the padded
    array; window (i, j) starts at row i * stride[0], column j * stride[1], its taps dilation apart."""
    x = _pad2d(x, padding, fill)
    h, w = x.shape[-2:]
    ho = (h - (kernel[0] - 1) * dilation[0] - 1) // stride[0] + 1
    wo = (w - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1
    *lead, sh, sw = x.strides
    shape = x.shape[:-2] + (ho, wo) + tuple(kernel)
    return _strided(x, shape, (*lead, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1]))


def _im2col(x, kernel, stride, padding, dilation, groups):
    """The windows of x (..., N, C, H, W) as one matrix per image and group, (..., N, groups,
    C/groups*kH*kW, H'*W') (im2col: the one copy of the input a convolution makes), and (H', W')."""
    win = _windows(x, kernel, stride, padding, dilation)  # (..., N, C, H', W', kH, kW), a view
    *lead, n, c, ho, wo, kh, kw = win.shape
    cols = np.empty((*lead, n, c, kh, kw, ho, wo), x.dtype)
    cols[...] = np.moveaxis(win, (-4, -3), (-2, -1))
    return cols.reshape((*lead, n, groups, c // groups * kh * kw, ho * wo)), (ho, wo)


def _flat_cols(x, kernel, padding, dilation, groups, out=None):
    """im2col for stride 1 over each padded image's rows laid end to end: the tap (i, j) of output
    (r, c) is entry (r + i*dH) * Wp + c + j*dW of the flattened plane, so each tap's column is one
    contiguous run of L = (H'-1) * Wp + W' numbers (Wp - W' of every Wp straddle two rows and are
    thrown away). (..., N, groups, C/groups*kH*kW, L), into ``out`` when given, and (H', W', Wp)."""
    x = np.ascontiguousarray(_pad2d(x, padding))
    *lead, n, c, hp, wp = x.shape
    (kh, kw), (dh, dw) = kernel, dilation
    ho, wo = hp - (kh - 1) * dh, wp - (kw - 1) * dw
    run = (ho - 1) * wp + wo
    *s, sn, sc, sy, sx = x.strides
    shape = (*lead, n, groups, c // groups * kh * kw, run)
    cols = np.empty(shape, x.dtype) if out is None else out
    taps = (*lead, n, c, kh, kw, run)
    cols.reshape(taps)[...] = _strided(x, taps, (*s, sn, sc, sy * dh, sx * dw, sx))
    return cols, (ho, wo, wp)


def _batch_last(g, groups):
    """g (..., N, O, H', W') as one matrix per group with the batch axis last: (..., groups, O/groups, H'*W'*N)."""
    *lead, n, o, ho, wo = g.shape
    gm = np.moveaxis(g.reshape((*lead, n, groups, o // groups, ho, wo)), -5, -1)  # (the one copy of g)
    return gm.reshape((*lead, groups, o // groups, ho * wo * n))


def _im2col_batch_last(x, kernel, stride, padding, dilation, groups, out=None):
    """The windows of x (..., N, C, H, W) as one matrix per group with the batch axis last, (..., groups,
    C/groups*kH*kW, H', W', N), into ``out`` when given: im2col for the backward products, copied in
    runs of N numbers, not of W'."""
    *lead, n, c, h, w = x.shape
    (top, bottom, left, right), (sh, sw), (dh, dw), (kh, kw) = padding, stride, dilation, kernel
    xp = np.zeros((*lead, c, top + h + bottom, left + w + right, n), dtype=x.dtype)  # padded, batch axis last
    xp[..., top:top + h, left:left + w, :] = np.moveaxis(x, -4, -1)
    ho = (top + h + bottom - (kh - 1) * dh - 1) // sh + 1
    wo = (left + w + right - (kw - 1) * dw - 1) // sw + 1
    *s, sc, sy, sx, sn = xp.strides
    shape = (*lead, groups, c // groups, kh, kw, ho, wo, n)
    cols = np.empty((*lead, groups, c // groups * kh * kw, ho, wo, n), x.dtype) if out is None else out
    cols.reshape(shape)[...] = _strided(xp, shape, (*s, sc * (c // groups), sc, sy * dh, sx * dw, sy * sh, sx * sw, sn))
    return cols


def _conv2d(x, w, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, out=None):
    """PyTorch's conv2d (a cross-correlation): x (..., N, C, H, W), w (..., O, C/groups, kH, kW), bias
    (..., O) or None -> (..., N, O, H', W'); im2col, then one small matrix product per image and group
    (each image's columns stay in cache, and the products come out N×O×... already), the bias added as
    the result is written. Stride 1 takes the columns of the flattened rows (``_flat_cols``: runs of a
    whole row, not of W' numbers)."""
    if stride == (1, 1):
        cols, (ho, wo, _) = _flat_cols(x, w.shape[-2:], padding, dilation, groups)
    else:  # (the per-image columns of H'*W' numbers: runs with no row to skip, Wp = W')
        cols, (ho, wo) = _im2col(x, w.shape[-2:], stride, padding, dilation, groups)
    return _conv2d_from_columns(cols, w, bias, "flat", (ho, wo), out)


def _add_bias(y, bias, out):
    """y (..., N, O, H', W') plus bias (..., O) (None: nothing), written into ``out`` or a new C-ordered array."""
    if bias is None:
        return _into(out, y)
    b = bias[..., None, :, None, None]  # (..., 1, O, 1, 1)
    return np.ascontiguousarray(np.add(y, b)) if out is None else np.add(y, b, out=out)


def _conv_columns(x, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, layout="flat", out=None):
    """The windows of x (..., N, C, H, W) as the columns of conv2d's matrix products (im2col), made once for
    a conv2d and its weight gradient: ``layout`` "flat" (stride 1 only), (..., N, groups, C/groups*kH*kW, L)
    in runs of the flattened padded rows (``_flat_cols``); "batch", (..., groups, C/groups*kH*kW, H', W', N),
    the batch axis last (``_im2col_batch_last``)."""
    if layout == "flat":
        return _flat_cols(x, kernel, padding, dilation, groups, out)[0]
    return _im2col_batch_last(x, kernel, stride, padding, dilation, groups, out)


def _conv2d_from_columns(cols, w, bias=None, layout="flat", windows=None, out=None):
    """conv2d(x, w, bias) from x's columns (``_conv_columns``), (H', W') = windows -> (..., N, O, H', W').
    "flat": one product per image and group, read out of its runs (W' numbers of every Wp); "batch":
    one product per group, the batch axis moved back to the front as the bias is added."""
    o, cg, kh, kw = w.shape[-4:]
    ho, wo = windows
    if layout == "flat":
        *lead, n, groups, ckk, run = cols.shape
        wp = (run - wo) // (ho - 1) if ho > 1 else wo  # (one row of windows: no row to skip)
        y = np.matmul(w.reshape(w.shape[:-4] + (1, groups, o // groups, ckk)), cols)  # output (r, c) at r * Wp + c
        if wp == wo:  # (runs with no row to skip: the products as they are)
            return _add_bias(y.reshape(y.shape[:-3] + (o, ho, wo)), bias, out)
        y = y.reshape(y.shape[:-3] + (o, run))
        *s, so, sl = y.strides
        return _add_bias(_strided(y, y.shape[:-1] + (ho, wo), (*s, so, sl * wp, sl)), bias, out)
    *lead, groups, ckk, _, _, n = cols.shape
    y = np.matmul(w.reshape(w.shape[:-4] + (groups, o // groups, ckk)), cols.reshape((*lead, groups, ckk, ho * wo * n)))
    return _add_bias(np.moveaxis(y.reshape(y.shape[:-3] + (o, ho, wo, n)), -1, -4), bias, out)


def _conv2d_weight_grad_from_columns(cols, g, kernel, layout="flat", out=None):
    """conv2d_weight_grad(x, g) from x's columns (``_conv_columns``) -> (..., O, C/groups, kH, kW).
    "flat": g laid out like the runs (zeros where they straddle two rows), one product per image,
    summed over the batch; "batch": g with the batch axis last, one product per group (columns × g)."""
    o, (ho, wo) = g.shape[-3], g.shape[-2:]
    if layout == "flat":
        *lead, n, groups, ckk, run = cols.shape
        wp = (run - wo) // (ho - 1) if ho > 1 else wo
        if wp == wo:  # (runs with no row to skip: g as it is)
            gm = g.reshape(g.shape[:-2] + (ho * wo,))
        else:
            gp = np.zeros(g.shape[:-2] + (ho, wp), g.dtype)
            gp[..., :wo] = g
            gm = gp.reshape(g.shape[:-2] + (ho * wp,))[..., :run]
        gm = gm.reshape(gm.shape[:-2] + (groups, o // groups, run))  # (..., N, G, O/G, L)
        dw = np.matmul(gm, np.swapaxes(cols, -1, -2)).sum(axis=-4)  # (..., G, O/G, C/G*kH*kW)
    else:
        *lead, groups, ckk, _, _, n = cols.shape
        cm = cols.reshape((*lead, groups, ckk, ho * wo * n))
        dw = np.swapaxes(np.matmul(cm, np.swapaxes(_batch_last(g, groups), -1, -2)), -1, -2)
    return _into(out, dw.reshape(dw.shape[:-3] + (o, ckk // kernel[0] // kernel[1]) + tuple(kernel)))


def _conv_transpose2d(g, w, size, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, out=None):
    """The adjoint of conv2d in x (PyTorch's conv_transpose2d): g (..., N, O, H', W'), w (..., O, C/groups,
    kH, kW) -> (..., N, C, H, W) with (H, W) = size. One matrix product per group gives each window's
    share (col2im); one strided addition per kernel tap (kH*kW of them) puts the shares in place. The
    batch axis goes last meanwhile, so each addition moves runs of W'*N numbers, not of W'. Stride 1 takes
    ``_conv_transpose2d_rows``: kH additions, not kH*kW."""
    if stride == (1, 1):
        return _conv_transpose2d_rows(g, w, size, padding, dilation, groups, out)
    o, cg, kh, kw = w.shape[-4:]
    n, ho, wo = g.shape[-4], g.shape[-2], g.shape[-1]
    wm = w.reshape(w.shape[:-4] + (groups, o // groups, cg * kh * kw))
    cols = np.matmul(np.swapaxes(wm, -1, -2), _batch_last(g, groups))  # (..., G, C/G*kH*kW, H'*W'*N)
    lead = cols.shape[:-3]
    k = len(lead)
    cols = cols.reshape((*lead, groups, cg, kh, kw, ho, wo, n))
    (top, bottom, left, right), (sh, sw), (dh, dw), (h, w_) = padding, stride, dilation, size
    acc = np.zeros((*lead, groups, cg, top + h + bottom, left + w_ + right, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            acc[..., i * dh:i * dh + (ho - 1) * sh + 1:sh, j * dw:j * dw + (wo - 1) * sw + 1:sw, :] += cols[..., i, j, :, :, :]
    acc = acc[..., top:top + h, left:left + w_, :].transpose(*range(k), k + 4, k, k + 1, k + 2, k + 3)  # N first
    return _into(out, acc.reshape((*lead, n, groups * cg, h, w_)))  # (a view: groups and C/groups are adjacent)


def _conv_transpose2d_rows(g, w, size, padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, out=None):
    """conv_transpose2d for stride 1, one kernel row at a time: g's columns along the width (each
    window's row of kW taps: g shifted by j*dW, zeros outside) make one product per group that sums
    over the output channels and the kW taps of every kernel row at once; kH row-shifted additions
    put the rows in place. Batch axis last meanwhile (runs of Wp*N numbers), then first again."""
    o, cg, kh, kw = w.shape[-4:]
    *lead_g, n, _, ho, wo = g.shape
    (top, bottom, left, right), (dh, dw), (h, w_) = padding, dilation, size
    hp, wp = top + h + bottom, left + w_ + right  # (= H' + (kH-1)*dH and W' + (kW-1)*dW)
    og, span = o // groups, (kw - 1) * dw
    gpad = np.zeros((*lead_g, groups, og, ho, wp + span, n), g.dtype)  # batch axis last, span zeros each side
    gpad[..., span:span + wo, :] = np.moveaxis(g.reshape((*lead_g, n, groups, og, ho, wo)), -5, -1)
    *s, sy, sx, sn = gpad.strides
    # taps[..., o, j, y, X, n] = g[n, o, y, X - (kW-1-j)*dW]: j counts the kernel's columns from the right
    taps = _strided(gpad, (*lead_g, groups, og, kw, ho, wp, n), (*s, sx * dw, sy, sx, sn))
    taps = taps.reshape((*lead_g, groups, og * kw, ho * wp * n))  # (the copy: contiguous columns)
    wm = np.swapaxes(w.reshape(w.shape[:-4] + (groups, og, cg, kh, kw))[..., ::-1], -4, -2)  # (.., G, kH, C/G, O/G, kW)
    rows = np.matmul(wm.reshape(wm.shape[:-5] + (groups, kh * cg, og * kw)), taps)
    rows = rows.reshape(rows.shape[:-3] + (groups, kh, cg, ho, wp, n))
    acc = np.zeros(rows.shape[:-6] + (groups, cg, hp, wp, n), g.dtype)
    for i in range(kh):
        acc[..., i * dh:i * dh + ho, :, :] += rows[..., i, :, :, :, :]
    acc = acc[..., top:top + h, left:left + w_, :]
    return _into(out, np.moveaxis(acc.reshape(acc.shape[:-5] + (groups * cg, h, w_, n)), -1, -4))


def _conv2d_weight_grad(x, g, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, out=None):
    """The adjoint of conv2d in w: x (..., N, C, H, W), g (..., N, O, H', W') -> (..., O, C/groups, kH, kW),
    the correlation of g with x's windows. A small weight (a first layer's) takes one product per image,
    summed over the batch; else im2col with the batch axis last and one product per group, taken as
    columns × g (the long axis inner on both sides: faster in BLAS than g × columns, and as exact)."""
    o, c = g.shape[-3], x.shape[-3]
    if o // groups * (c // groups) * kernel[0] * kernel[1] <= 512:  # (OpenBLAS's small-matrix kernels)
        cols, _ = _im2col(x, kernel, stride, padding, dilation, groups)  # (..., N, G, C/G*kH*kW, H'*W')
        return _conv2d_weight_grad_from_columns(cols, g, kernel, "flat", out)
    cols = _im2col_batch_last(x, kernel, stride, padding, dilation, groups)  # (..., G, C/G*kH*kW, H', W', N)
    return _conv2d_weight_grad_from_columns(cols, g, kernel, "batch", out)


def _max_pool2d(x, kernel, stride, padding=(0, 0, 0, 0), out=None):
    """The maximum of each window of x's last two axes (padding is -inf: it never wins), one kernel tap at a time."""
    win = _windows(x, kernel, stride, padding, (1, 1), -np.inf)  # (..., H', W', kH, kW), a view
    taps = [win[..., i, j] for i in range(kernel[0]) for j in range(kernel[1])]
    if len(taps) == 1:
        return _into(out, taps[0])
    out = np.maximum(taps[0], taps[1], out=out)
    for tap in taps[2:]:
        np.maximum(out, tap, out=out)
    return out


def _first_maxima(x, pooled, kernel, stride, padding):
    """One boolean array per kernel tap (row-major), shaped like ``pooled`` (x max-pooled): True where
    that tap holds its window's first maximum, as PyTorch picks (a window holding a NaN has no maximum
    here: all False). Ties are rare in real data: they are resolved only when the taps' hits
    outnumber the windows (or a NaN makes a window without any)."""
    win = _windows(x, kernel, stride, padding, (1, 1), -np.inf)
    masks = [win[..., i, j] == pooled for i in range(kernel[0]) for j in range(kernel[1])]
    if sum(np.count_nonzero(m) for m in masks) == pooled.size and not np.isnan(pooled).any():
        return masks  # one hit a window: each is its window's only maximum
    taken = masks[0].copy()
    for hit in masks[1:]:
        hit &= ~taken  # a tie with an earlier tap: the earlier one has it
        taken |= hit
    return masks


def _max_pool2d_pick(x, v, kernel, stride, padding=(0, 0, 0, 0)):
    """v's entry at the first maximum of each window of x (the tangent of max_pool2d, the adjoint of
    ``_max_pool2d_grad``: a window holding a NaN picks 0); v may have more leading axes. One masked
    add per kernel tap, with the masks the gradient uses; no index arrays."""
    masks = _first_maxima(x, _max_pool2d(x, kernel, stride, padding), kernel, stride, padding)
    taps = _windows(v, kernel, stride, padding)  # (..., H', W', kH, kW), a view
    out = None
    for t, mask in enumerate(masks):
        tap = taps[..., t // kernel[1], t % kernel[1]]
        out = np.where(mask, tap, 0) if out is None else out + np.where(mask, tap, 0)
    return out


def _max_pool2d_grad(x, g, pooled, kernel, stride, padding=(0, 0, 0, 0), out=None):
    """g routed to the first maximum of each window of x (the vjp of max_pool2d; ``pooled`` is x
    max-pooled), summed where windows overlap: one pass per kernel tap (g times the tap's mask: where
    it does not hold the maximum, 0), no index arrays."""
    masks = _first_maxima(x, pooled, kernel, stride, padding)
    (top, bottom, left, right), (sh, sw), (kh, kw) = padding, stride, kernel
    h, w = x.shape[-2:]
    ho, wo = g.shape[-2:]
    shape = np.broadcast_shapes(g.shape[:-2], x.shape[:-2]) + (top + h + bottom, left + w + right)
    disjoint = sh >= kh and sw >= kw  # each place is in one window at most: assign, don't add
    tiled = disjoint and (sh, sw) == (kh, kw) and (ho * sh, wo * sw) == shape[-2:]  # and every place is in one
    acc = out if out is not None and not any(padding) else np.empty(shape, g.dtype)  # (padded: cropped at the end)
    if not tiled:
        acc[...] = 0
    finite = bool(np.isfinite(g).all())  # else g * False would be nan, not 0, where inf or nan are not routed
    for t, mask in enumerate(masks):
        i, j = divmod(t, kw)
        tap = acc[..., i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]
        if disjoint and finite:
            np.multiply(g, mask, out=tap)
        elif disjoint:
            tap[...] = np.where(mask, g, 0)
        else:
            tap += np.multiply(g, mask) if finite else np.where(mask, g, 0)
    return acc if acc is out else _into(out, acc[..., top:top + h, left:left + w])


def _avg_pool2d(x, kernel, stride, padding=(0, 0, 0, 0), out=None):
    """The mean of each window of x's last two axes, padding counted as zeros (PyTorch's count_include_pad)."""
    out = _windows(x, kernel, stride, padding).sum(axis=(-2, -1), out=out)
    out /= kernel[0] * kernel[1]
    return out


def _avg_pool2d_grad(g, size, kernel, stride, padding=(0, 0, 0, 0), out=None):
    """The vjp of avg_pool2d: each entry of g shared equally by its window, summed where windows overlap
    (one strided addition per kernel tap); (H, W) = size."""
    (top, bottom, left, right), (sh, sw), (h, w) = padding, stride, size
    ho, wo = g.shape[-2:]
    share = g / (kernel[0] * kernel[1])
    shape = g.shape[:-2] + (top + h + bottom, left + w + right)
    acc = out if out is not None and not any(padding) else np.empty(shape, share.dtype)  # (padded: cropped at the end)
    acc[...] = 0
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            acc[..., i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw] += share
    return acc if acc is out else _into(out, acc[..., top:top + h, left:left + w])


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


# -- linear algebra (issue 16) -------------------------------------------------------------------
def _solve(a, b):
    """A^-1 B for A (..., M, M) and B (..., M, K): batch axes broadcast first, so B is never read
    as a stack of vectors (NumPy 1's rule for b.ndim == a.ndim - 1)."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    return np.linalg.solve(a, b)


# -- integer-array indexing (issue 16): take, gather and their scatter-add adjoints ---------------
def _untake(values, indices, n, axis):
    """The adjoint of np.take(x, indices, axis) (axis counted from the end): zeros with an axis of
    length n in place of the index axes of values, each value added at its index (repeats add up)."""
    start = values.ndim + axis + 1 - indices.ndim
    out = np.zeros(values.shape[:start] + (n,) + values.shape[start + indices.ndim:], dtype=values.dtype)
    np.add.at(out, (slice(None),) * start + (indices,), values)
    return out


def _gather(x, indices, axis):
    """np.take_along_axis(x, indices, axis); x may have more leading axes than indices."""
    indices = indices.reshape((1,) * (x.ndim - indices.ndim) + indices.shape)
    return np.take_along_axis(x, indices, axis=axis)


def _ungather(values, indices, shape, axis):
    """The adjoint of _gather: zeros of values' leading axes + shape, each value added at its index
    along axis (counted from the end) and at its own position along the other axes (repeats add up)."""
    out = np.zeros(values.shape[:values.ndim - len(shape)] + tuple(shape), dtype=values.dtype)
    indices = indices.reshape((1,) * (out.ndim - indices.ndim) + indices.shape)
    index = tuple(indices if d == out.ndim + axis
                  else np.arange(out.shape[d]).reshape((-1,) + (1,) * (out.ndim - d - 1)) for d in range(out.ndim))
    np.add.at(out, index, values)
    return out


# -- issue 16 (redops): cumulative and ordering ops ----------------------------------------------------
def _take_along(x, index, axis):
    """x reordered along ``axis`` by integer ``index`` (x's last axes; x's extra leading axes broadcast)."""
    return np.take_along_axis(x, np.broadcast_to(index, x.shape), axis=axis)
