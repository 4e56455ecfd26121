"""Static shapes with symbolic dimensions.

A dimension is an ``int``, a ``str`` (a named dimension: every dimension with
that name has the same size at call time) or ``None`` (unknown). Broadcasting
follows NumPy; an unknown or named dimension meeting a different size is
assumed to equal it (it is not assumed to be 1), so gradients only sum over
axes that are statically known to be broadcast.
"""

from __future__ import annotations

import math
import numbers

Dim = int | str | None
Shape = tuple[Dim, ...]


def format_dim(d: Dim) -> str:
    return "?" if d is None else str(d)


def format_shape(shape: Shape) -> str:
    inner = ", ".join(format_dim(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def is_integer(d) -> bool:
    """A Python or NumPy integer (``np.int64(3)``, as from ``x.shape`` or ``len``), not a bool."""
    return isinstance(d, numbers.Integral) and not isinstance(d, bool)


def int_tuple(entries) -> tuple:
    """``entries`` (one integer or a sequence) as a tuple, every integer (Python or NumPy) a Python ``int``."""
    items = (entries,) if is_integer(entries) else tuple(entries)
    return tuple(int(d) if is_integer(d) else d for d in items)


def check_shape(shape, what: str) -> Shape:
    """Validate a user-given shape: a tuple of integers >= 0 (NumPy integers become ``int``), str or None."""
    if isinstance(shape, str) or shape is None:
        shape = (shape,)
    try:
        shape = int_tuple(shape)
    except TypeError:
        raise TypeError(f"{what}: shape must be a tuple, got {shape!r}") from None
    for d in shape:
        ok = d is None or (isinstance(d, str) and d) or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
        if not ok:
            raise ValueError(f"{what}: shape entries must be int >= 0, a dimension name or None; got {d!r} in {shape!r}")
    return shape


def is_static(shape: Shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def numel(shape: Shape, sizes: dict | None = None, default: int = 1) -> int:
    """Number of elements; named/unknown dims take ``sizes[name]`` or ``default``."""
    sizes = sizes or {}
    return math.prod(d if isinstance(d, int) else sizes.get(d, default) for d in shape)


def _broadcast_dim(a: Dim, b: Dim) -> Dim:
    if a == b or b == 1:
        return a
    if a == 1:
        return b
    if a is None:
        return b
    if b is None or isinstance(a, int) and isinstance(b, str):
        return a
    if isinstance(a, str):
        return b if isinstance(b, int) else a
    raise ValueError(f"{a} vs {b}")


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting of static shapes; ``ValueError`` if incompatible."""
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = [1] * ndim
    for shape in shapes:
        for i, d in enumerate(shape, start=ndim - len(shape)):
            out[i] = _broadcast_dim(out[i], d)
    return tuple(out)


def normalize_axes(axis, ndim: int, what: str) -> tuple[int, ...]:
    """Normalize ``axis`` (None, int or sequence) to sorted negative indices."""
    if axis is None:
        return tuple(range(-ndim, 0))
    axes = int_tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, int) or isinstance(a, bool) or not -ndim <= a < ndim:
            raise _located(f"{what}: axis {a!r} is out of range for an array of {ndim} dimension(s)")
        out.append(a - ndim if a >= 0 else a)
    if len(set(out)) != len(out):
        raise _located(f"{what}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _located(message: str):
    from .errors import ShapeError, user_location

    return ShapeError(f"{message} at {user_location()}")
