"""Arrays built from arrays (issue 16): stack, split, pad, roll, repeat, tile, flip, swapaxes,
moveaxis, triu, tril, clip.

Each is written with the existing ops (getitem, concatenate, expand_dims, broadcast_to, reshape,
transpose, where, maximum, minimum), so its derivatives, of every order, are theirs, and it runs
on every backend that has them. Ops that reshape or build blocks need the sizes they touch to be
static (ints); a named dimension there is refused with a ValueError.
"""

from __future__ import annotations

import numpy as np

from ..graph import Node, as_node, constant
from ..shapes import int_tuple, normalize_axes
from .arith import maximum, minimum, where
from .shape import broadcast_to, concatenate, expand_dims, getitem, reshape, transpose


def _int(value, what: str, minimum_value: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if minimum_value is not None and value < minimum_value:
        raise ValueError(f"{what} must be >= {minimum_value}, got {value!r}")
    return int(value)


def _static(x: Node, axes, what: str) -> None:
    """Refuse a named (symbolic) size along ``axes`` (all axes when None)."""
    dims = x.shape if axes is None else [x.shape[a] for a in axes]
    if not all(isinstance(d, int) for d in dims):
        where_ = "" if axes is None else f" along axis {tuple(a % x.ndim for a in axes)}"
        raise ValueError(f"{what}: needs static sizes{where_}, got shape {x.shape}")


def _along(ax: int, part) -> tuple:
    """An index taking ``part`` (a slice) along the negative axis ``ax``."""
    return (Ellipsis, part) + (slice(None),) * (-ax - 1)


def stack(xs, axis: int = 0) -> Node:
    """Join nodes of one shape along a new axis (``axis``: its position in the result), as ``np.stack``."""
    xs = [as_node(x) for x in xs]
    if not xs:
        raise ValueError("stack: needs at least one input")
    if any(x.shape != xs[0].shape for x in xs):
        raise ValueError(f"stack: all inputs must have the same shape, got {[x.shape for x in xs]}")
    (ax,) = normalize_axes(_int(axis, "stack: axis"), xs[0].ndim + 1, "stack")
    return concatenate([expand_dims(x, ax) for x in xs], axis=ax)


def split(x, indices_or_sections, axis: int = 0) -> list[Node]:
    """x split along ``axis`` into a list of nodes, as ``np.split``: ``sections`` equal parts (an
    int dividing the axis' length), or at the given indices (a sequence; parts may be empty)."""
    x = as_node(x)
    (ax,) = normalize_axes(_int(axis, "split: axis"), x.ndim, "split")
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)) and not isinstance(indices_or_sections, bool):
        sections = _int(indices_or_sections, "split: sections", 1)
        _static(x, (ax,), "split")
        if n % sections:
            raise ValueError(f"split: an axis of length {n} does not divide into {sections} equal sections")
        bounds = [i * (n // sections) for i in range(sections + 1)]
    else:
        cuts = [_int(i, "split: index") for i in indices_or_sections]
        bounds = [0, *cuts, None]
    return [getitem(x, _along(ax, slice(a, b))) for a, b in zip(bounds[:-1], bounds[1:])]


def _pad_widths(pad_width, ndim: int) -> list[tuple[int, int]]:
    widths = np.asarray(pad_width, dtype=object)
    try:
        pairs = np.broadcast_to(widths, (ndim, 2)).tolist()
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit {ndim} axes "
                         "(give an int, (before, after), or one pair per axis)") from None
    return [(_int(a, "pad: a pad width", 0), _int(b, "pad: a pad width", 0)) for a, b in pairs]


def pad(x, pad_width, constant_values=0) -> Node:
    """x padded with ``constant_values`` (a number) around each axis, as ``np.pad`` in constant mode:
    ``pad_width`` is an int, a pair (before, after) for every axis, or one pair per axis."""
    x = as_node(x)
    if isinstance(constant_values, Node) or np.ndim(constant_values) != 0:
        raise TypeError(f"pad: constant_values must be a number, got {constant_values!r}")
    for i, (before, after) in enumerate(_pad_widths(pad_width, x.ndim)):
        if not before and not after:
            continue
        _static(x, None, "pad")
        ax = i - x.ndim
        fill = as_node(constant_values, like=x)

        def block(k, x=x, ax=ax, fill=fill):
            shape = list(x.shape)
            shape[ax] = k
            return broadcast_to(fill, tuple(shape))

        x = concatenate(([block(before)] if before else []) + [x] + ([block(after)] if after else []), axis=ax)
    return x


def roll(x, shift, axis=None) -> Node:
    """x rolled by ``shift`` places along ``axis`` (an int or a tuple, with as many shifts; None: the
    flattened x, reshaped back), as ``np.roll``."""
    x = as_node(x)
    if axis is None:
        _static(x, None, "roll")
        return reshape(roll(reshape(x, -1), shift, 0), x.shape) if x.ndim != 1 else roll(x, shift, 0)
    axes, shifts = int_tuple(axis), int_tuple(shift)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: give one shift per axis, got shift={shift!r}, axis={axis!r}")
    for s, a in zip(shifts, axes):
        (ax,) = normalize_axes(_int(a, "roll: axis"), x.ndim, "roll")
        _static(x, (ax,), "roll")
        n = x.shape[ax]
        s = _int(s, "roll: shift") % n if n else 0
        if s:
            x = concatenate([getitem(x, _along(ax, slice(n - s, None))), getitem(x, _along(ax, slice(None, n - s)))],
                            axis=ax)
    return x


def repeat(x, repeats: int, axis=None) -> Node:
    """Each entry of x repeated ``repeats`` times along ``axis`` (None: of the flattened x), as
    ``np.repeat`` with one count for every entry."""
    x = as_node(x)
    repeats = _int(repeats, "repeat: repeats", 0)
    _static(x, None, "repeat")
    if axis is None:
        x, axis = reshape(x, -1), 0
    (ax,) = normalize_axes(_int(axis, "repeat: axis"), x.ndim, "repeat")
    i = ax + x.ndim
    spread = broadcast_to(expand_dims(x, i + 1), x.shape[:i + 1] + (repeats,) + x.shape[i + 1:])
    return reshape(spread, x.shape[:i] + (x.shape[i] * repeats,) + x.shape[i + 1:])


def tile(x, reps) -> Node:
    """x repeated as a whole ``reps`` times along each axis (an int or a tuple), as ``np.tile``."""
    x = as_node(x)
    reps = tuple(_int(r, "tile: a repetition count", 0) for r in int_tuple(reps))
    _static(x, None, "tile")
    ndim = max(x.ndim, len(reps))
    shape = (1,) * (ndim - x.ndim) + x.shape
    reps = (1,) * (ndim - len(reps)) + reps
    if all(r == 1 for r in reps):
        return reshape(x, shape)
    interleaved = tuple(v for d in shape for v in (1, d))
    spread = broadcast_to(reshape(x, interleaved), tuple(v for r, d in zip(reps, shape) for v in (r, d)))
    return reshape(spread, tuple(r * d for r, d in zip(reps, shape)))


def flip(x, axis=None) -> Node:
    """x reversed along ``axis`` (an int or a tuple; None: every axis), as ``np.flip``: a view."""
    x = as_node(x)
    axes = normalize_axes(axis, x.ndim, "flip")
    return getitem(x, tuple(slice(None, None, -1) if i - x.ndim in axes else slice(None) for i in range(x.ndim)))


def swapaxes(x, axis1: int, axis2: int) -> Node:
    """x with two axes exchanged, as ``np.swapaxes``."""
    x = as_node(x)
    (a,) = normalize_axes(_int(axis1, "swapaxes: axis1"), x.ndim, "swapaxes")
    (b,) = normalize_axes(_int(axis2, "swapaxes: axis2"), x.ndim, "swapaxes")
    order = list(range(x.ndim))
    order[a], order[b] = order[b], order[a]
    return transpose(x, tuple(order))


def moveaxis(x, source, destination) -> Node:
    """x with the axes ``source`` moved to positions ``destination`` (ints or tuples), as ``np.moveaxis``."""
    x = as_node(x)
    src, dst = int_tuple(source), int_tuple(destination)
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source!r} and destination {destination!r} differ in length")
    normalize_axes(src, x.ndim, "moveaxis"), normalize_axes(dst, x.ndim, "moveaxis")  # (range and repeats)
    src = [int(a) % x.ndim for a in src]  # in the order given (normalize_axes sorts)
    dst = [int(a) % x.ndim for a in dst]
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, tuple(order))


def _triangle(x, k, upper: bool, what: str) -> Node:
    x = as_node(x)
    k = _int(k, f"{what}: k")
    if x.ndim < 2:
        raise ValueError(f"{what}: needs an array of at least two dimensions, got shape {x.shape}")
    _static(x, (-2, -1), what)
    n, m = x.shape[-2:]
    keep = ~np.tri(n, m, k - 1, dtype=bool) if upper else np.tri(n, m, k, dtype=bool)
    return where(constant(keep), x, 0)


def triu(x, k: int = 0) -> Node:
    """x with the entries below the k-th diagonal of its last two axes set to 0, as ``np.triu``."""
    return _triangle(x, k, True, "triu")


def tril(x, k: int = 0) -> Node:
    """x with the entries above the k-th diagonal of its last two axes set to 0, as ``np.tril``."""
    return _triangle(x, k, False, "tril")


def clip(x, a_min=None, a_max=None) -> Node:
    """x limited to [a_min, a_max] elementwise (numbers or nodes, broadcast; None: no bound), as
    ``np.clip``: ``minimum(maximum(x, a_min), a_max)``. The gradient goes to x where it lies inside
    the bounds, ends included (as in ``torch.clamp``), and to a bound that node where it applies."""
    x = as_node(x)
    if a_min is None and a_max is None:
        raise ValueError("clip: give a_min, a_max or both")
    out = x if a_min is None else maximum(x, a_min)
    return out if a_max is None else minimum(out, a_max)
