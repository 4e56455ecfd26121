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


# -- convolution and pooling: windows of the last two axes, im2col and one matrix product --------
# The twins of symgraph.kernels' helpers, in CuPy's calls: windows through as_strided, products
# through cp.matmul (cuBLAS).
def _pad2d(x, padding, fill=0):
    """x with ``padding`` (top, bottom, left, right) rows and columns of ``fill`` around its last two axes."""
    top, bottom, left, right = padding
    if not (top or bottom or left or right):
        return x
    h, w = x.shape[-2:]
    out = cp.full(x.shape[:-2] + (top + h + bottom, left + w + right), fill, dtype=x.dtype)
    out[..., top:top + h, left:left + w] = x
    return out


def _windows(x, kernel, stride, padding, dilation=(1, 1), fill=0):
    """The windows of x's last two axes, padded with ``fill``: a view (..., H', W', kH, kW) of the padded
    array; window (i, j) starts at row i * stride[0], column j * stride[1], its taps dilation apart."""
    x = _pad2d(x, padding, fill)
    h, w = x.shape[-2:]
    ho = (h - (kernel[0] - 1) * dilation[0] - 1) // stride[0] + 1
    wo = (w - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1
    *lead, sh, sw = x.strides
    shape = x.shape[:-2] + (ho, wo) + tuple(kernel)
    strides = (*lead, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    return cp.lib.stride_tricks.as_strided(x, shape, strides)


def _im2col(x, kernel, stride, padding, dilation, groups):
    """The windows of x (..., N, C, H, W) as one matrix per group, (..., groups, C/groups*kH*kW, N*H'*W')
    (im2col: the one copy of the input a convolution makes), and (N, H', W')."""
    win = _windows(x, kernel, stride, padding, dilation)  # (..., N, C, H', W', kH, kW), a view
    *lead, n, c, ho, wo, kh, kw = win.shape
    k = len(lead)
    win = win.reshape((*lead, n, groups, c // groups, ho, wo, kh, kw))
    cols = win.transpose(*range(k), k + 1, k + 2, k + 5, k + 6, k, k + 3, k + 4)  # (..., G, C/G, kH, kW, N, H', W')
    return cols.reshape((*lead, groups, c // groups * kh * kw, n * ho * wo)), (n, ho, wo)


def _batch_last(g, groups):
    """g (..., N, O, H', W') as one matrix per group with the batch axis last: (..., groups, O/groups, H'*W'*N)."""
    *lead, n, o, ho, wo = g.shape
    gm = cp.moveaxis(g.reshape((*lead, n, groups, o // groups, ho, wo)), -5, -1)  # (the one copy of g)
    return gm.reshape((*lead, groups, o // groups, ho * wo * n))


def _im2col_batch_last(x, kernel, stride, padding, dilation, groups):
    """The windows of x (..., N, C, H, W) as one matrix per group with the batch axis last, (..., groups,
    C/groups*kH*kW, H'*W'*N): im2col for the backward products, copied in runs of N numbers, not of W'."""
    *lead, n, c, h, w = x.shape
    (top, bottom, left, right), (sh, sw), (dh, dw), (kh, kw) = padding, stride, dilation, kernel
    xp = cp.zeros((*lead, c, top + h + bottom, left + w + right, n), dtype=x.dtype)  # padded, batch axis last
    xp[..., top:top + h, left:left + w, :] = cp.moveaxis(x, -4, -1)
    ho = (top + h + bottom - (kh - 1) * dh - 1) // sh + 1
    wo = (left + w + right - (kw - 1) * dw - 1) // sw + 1
    *s, sc, sy, sx, sn = xp.strides
    shape = (*lead, groups, c // groups, kh, kw, ho, wo, n)
    strides = (*s, sc * (c // groups), sc, sy * dh, sx * dw, sy * sh, sx * sw, sn)
    win = cp.lib.stride_tricks.as_strided(xp, shape, strides)
    return win.reshape((*lead, groups, c // groups * kh * kw, ho * wo * n))


def _conv2d(x, w, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """PyTorch's conv2d (a cross-correlation): x (..., N, C, H, W), w (..., O, C/groups, kH, kW) ->
    (..., N, O, H', W'); im2col, then one matrix product per group."""
    o, cg, kh, kw = w.shape[-4:]
    cols, (n, ho, wo) = _im2col(x, (kh, kw), stride, padding, dilation, groups)
    out = cp.matmul(w.reshape(w.shape[:-4] + (groups, o // groups, cg * kh * kw)), cols)  # (..., G, O/G, N*H'*W')
    k = out.ndim - 3
    out = out.reshape(out.shape[:-1] + (n, ho, wo)).transpose(*range(k), k + 2, k, k + 1, k + 3, k + 4)
    return out.reshape(out.shape[:k] + (n, o, ho, wo))  # (the one copy of the output, N first)


def _conv_transpose2d(g, w, size, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """The adjoint of conv2d in x (PyTorch's conv_transpose2d): g (..., N, O, H', W'), w (..., O, C/groups,
    kH, kW) -> (..., N, C, H, W) with (H, W) = size. One matrix product per group gives each window's
    share (col2im); one strided addition per kernel tap (kH*kW of them) puts the shares in place. The
    batch axis goes last meanwhile, so each addition moves runs of W'*N numbers, not of W'."""
    o, cg, kh, kw = w.shape[-4:]
    n, ho, wo = g.shape[-4], g.shape[-2], g.shape[-1]
    wm = w.reshape(w.shape[:-4] + (groups, o // groups, cg * kh * kw))
    cols = cp.matmul(cp.swapaxes(wm, -1, -2), _batch_last(g, groups))  # (..., G, C/G*kH*kW, H'*W'*N)
    lead = cols.shape[:-3]
    k = len(lead)
    cols = cols.reshape((*lead, groups, cg, kh, kw, ho, wo, n))
    (top, bottom, left, right), (sh, sw), (dh, dw), (h, w_) = padding, stride, dilation, size
    out = cp.zeros((*lead, groups, cg, top + h + bottom, left + w_ + right, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[..., i * dh:i * dh + (ho - 1) * sh + 1:sh, j * dw:j * dw + (wo - 1) * sw + 1:sw, :] += cols[..., i, j, :, :, :]
    out = out[..., top:top + h, left:left + w_, :].transpose(*range(k), k + 4, k, k + 1, k + 2, k + 3)  # N first
    return cp.ascontiguousarray(out).reshape((*lead, n, groups * cg, h, w_))  # (the one copy of the result)


def _conv2d_weight_grad(x, g, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """The adjoint of conv2d in w: x (..., N, C, H, W), g (..., N, O, H', W') -> (..., O, C/groups, kH, kW),
    the correlation of g with x's windows: im2col, then one matrix product per group."""
    cols = _im2col_batch_last(x, kernel, stride, padding, dilation, groups)  # (..., G, C/G*kH*kW, H'*W'*N)
    out = cp.matmul(_batch_last(g, groups), cp.swapaxes(cols, -1, -2))  # (..., G, O/G, C/G*kH*kW)
    return out.reshape(out.shape[:-3] + (g.shape[-3], x.shape[-3] // groups) + tuple(kernel))


def _max_pool2d(x, kernel, stride, padding=(0, 0, 0, 0)):
    """The maximum of each window of x's last two axes (padding is -inf: it never wins), one kernel tap at a time."""
    win = _windows(x, kernel, stride, padding, (1, 1), -cp.inf)  # (..., H', W', kH, kW), a view
    taps = [win[..., i, j] for i in range(kernel[0]) for j in range(kernel[1])]
    if len(taps) == 1:
        return taps[0].copy()
    out = cp.maximum(taps[0], taps[1])
    for tap in taps[2:]:
        cp.maximum(out, tap, out=out)
    return out


def _first_maxima(x, kernel, stride, padding):
    """One boolean array per kernel tap (row-major), shaped like x pooled: True where that tap holds its
    window's first maximum, as PyTorch picks (a window holding a NaN has no maximum here: all False)."""
    win = _windows(x, kernel, stride, padding, (1, 1), -cp.inf)
    pooled = _max_pool2d(x, kernel, stride, padding)
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


def _window_argmax(x, kernel, stride, padding):
    """For each window of x's last two axes, where its first maximum lies (row * kW + column), as PyTorch picks."""
    win = _windows(x, kernel, stride, padding, (1, 1), -cp.inf)
    return win.reshape(win.shape[:-2] + (kernel[0] * kernel[1],)).argmax(axis=-1)


def _max_pool2d_pick(x, v, kernel, stride, padding=(0, 0, 0, 0)):
    """v's entry at the first maximum of each window of x (the tangent of max_pool2d); v may have more leading axes."""
    arg = _window_argmax(x, kernel, stride, padding)
    ho, wo = arg.shape[-2:]
    vp = _pad2d(v, padding)
    hp, wp = vp.shape[-2:]
    index = ((cp.arange(ho)[:, None] * stride[0] + arg // kernel[1]) * wp
             + cp.arange(wo) * stride[1] + arg % kernel[1])  # into the padded plane
    lead = np.broadcast_shapes(vp.shape[:-2], index.shape[:-2])
    index = cp.broadcast_to(index.reshape(index.shape[:-2] + (ho * wo,)), lead + (ho * wo,))
    flat = cp.broadcast_to(vp.reshape(vp.shape[:-2] + (hp * wp,)), lead + (hp * wp,))
    return cp.take_along_axis(flat, index, axis=-1).reshape(lead + (ho, wo))


def _max_pool2d_grad(x, g, kernel, stride, padding=(0, 0, 0, 0)):
    """g routed to the first maximum of each window of x (the vjp of max_pool2d), summed where windows
    overlap: one pass per kernel tap (g where that tap holds the first maximum, else 0), no index arrays."""
    masks = _first_maxima(x, kernel, stride, padding)
    (top, bottom, left, right), (sh, sw) = padding, stride
    h, w = x.shape[-2:]
    ho, wo = g.shape[-2:]
    out = cp.zeros(np.broadcast_shapes(g.shape[:-2], x.shape[:-2]) + (top + h + bottom, left + w + right), g.dtype)
    disjoint = sh >= kernel[0] and sw >= kernel[1]  # each place is in one window at most: assign, don't add
    for t, mask in enumerate(masks):
        i, j = divmod(t, kernel[1])
        tap = out[..., i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]
        if disjoint:
            tap[...] = cp.where(mask, g, 0)
        else:
            tap += cp.where(mask, g, 0)
    return out[..., top:top + h, left:left + w]


def _avg_pool2d(x, kernel, stride, padding=(0, 0, 0, 0)):
    """The mean of each window of x's last two axes, padding counted as zeros (PyTorch's count_include_pad)."""
    return _windows(x, kernel, stride, padding).sum(axis=(-2, -1)) / (kernel[0] * kernel[1])


def _avg_pool2d_grad(g, size, kernel, stride, padding=(0, 0, 0, 0)):
    """The vjp of avg_pool2d: each entry of g shared equally by its window, summed where windows overlap
    (one strided addition per kernel tap); (H, W) = size."""
    (top, bottom, left, right), (sh, sw), (h, w) = padding, stride, size
    ho, wo = g.shape[-2:]
    share = g / (kernel[0] * kernel[1])
    out = cp.zeros(g.shape[:-2] + (top + h + bottom, left + w + right), dtype=share.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            out[..., i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw] += share
    return out[..., top:top + h, left:left + w]


# -- linear algebra (issue 16) -------------------------------------------------------------------
def _solve(a, b):
    """A^-1 B for A (..., M, M) and B (..., M, K): batch axes broadcast first, so B is never read
    as a stack of vectors (NumPy 1's rule for b.ndim == a.ndim - 1)."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = cp.broadcast_to(a, batch + a.shape[-2:])
    b = cp.broadcast_to(b, batch + b.shape[-2:])
    return cp.linalg.solve(a, b)


# -- integer-array indexing (issue 16): take, gather and their scatter-add adjoints ---------------
def _untake(values, indices, n, axis):
    """The adjoint of np.take(x, indices, axis) (axis counted from the end): zeros with an axis of
    length n in place of the index axes of values, each value added at its index (repeats add up)."""
    start = values.ndim + axis + 1 - indices.ndim
    out = cp.zeros(values.shape[:start] + (n,) + values.shape[start + indices.ndim:], dtype=values.dtype)
    cp.add.at(out, (slice(None),) * start + (indices,), values)
    return out


def _gather(x, indices, axis):
    """np.take_along_axis(x, indices, axis); x may have more leading axes than indices."""
    indices = indices.reshape((1,) * (x.ndim - indices.ndim) + indices.shape)
    return cp.take_along_axis(x, indices, axis=axis)


def _ungather(values, indices, shape, axis):
    """The adjoint of _gather: zeros of values' leading axes + shape, each value added at its index
    along axis (counted from the end) and at its own position along the other axes (repeats add up)."""
    out = cp.zeros(values.shape[:values.ndim - len(shape)] + tuple(shape), dtype=values.dtype)
    indices = indices.reshape((1,) * (out.ndim - indices.ndim) + indices.shape)
    index = tuple(indices if d == out.ndim + axis
                  else cp.arange(out.shape[d]).reshape((-1,) + (1,) * (out.ndim - d - 1)) for d in range(out.ndim))
    cp.add.at(out, index, values)
    return out


# -- issue 16 (redops): cumulative and ordering ops ----------------------------------------------------
def _take_along(x, index, axis):
    """x reordered along ``axis`` by integer ``index`` (x's last axes; x's extra leading axes broadcast)."""
    return cp.take_along_axis(x, cp.broadcast_to(index, x.shape), axis=axis)
