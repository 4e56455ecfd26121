"""Ops that move data without arithmetic: transpose, reshape, broadcast,
expand/squeeze, indexing, concatenation. All are linear; a few take a second
input only to read its shape at run time (when the shape is not static)."""

from __future__ import annotations

import math

import numpy as np

from ..graph import NoDerivative, Node, Op, apply, as_node
from ..shapes import broadcast_shapes, format_shape, int_tuple, is_static, normalize_axes


class ShapeOp(Op):
    """An op that moves data without arithmetic: it costs no FLOPs."""

    view_of, elementwise, writes_into = (0,), False, False  # moves data: NumPy returns a view where it can
    def flops(self, node, sizes):
        return 0


class Transpose(ShapeOp):
    """Permute the last ``len(axes)`` axes (leading axes, if any, stay). vjp: the inverse permutation."""

    name, params = "transpose", ("axes",)

    def __init__(self, axes: tuple[int, ...]):
        self.axes = tuple(axes)

    def infer(self, x):
        lead = x.ndim - len(self.axes)
        if lead < 0:
            raise self.shape_error([x], f"axes {self.axes} do not fit {x.ndim} dimension(s)")
        return x.shape[:lead] + tuple(x.shape[lead + a] for a in self.axes), x.dtype

    def full_axes(self, ndim: int) -> tuple[int, ...]:
        lead = ndim - len(self.axes)
        return tuple(range(lead)) + tuple(lead + a for a in self.axes)

    def compute(self, x):
        return np.transpose(x, self.full_axes(x.ndim))

    def vjp(self, node, g):
        return (apply(Transpose(tuple(np.argsort(self.axes).tolist())), g),)

    def jvp(self, node, t):
        return apply(self, t[0])


class Reshape(ShapeOp):
    """x with a new shape of the same size. ``shape`` may hold one -1; when it
    is None the target is ``lead`` followed by the second input's shape, read
    at run time. vjp: reshape back (keeping any leading basis axes)."""

    name, params, shape_inputs = "reshape", ("shape", "lead"), (1,)

    def __init__(self, shape, lead=()):
        self.shape = None if shape is None else tuple(shape)
        self.lead = tuple(lead)

    def infer(self, x, like=None):
        if self.shape is None:
            return self.lead + like.shape, x.dtype
        known = math.prod(d for d in self.shape if d != -1)
        static = [d for d in x.shape if isinstance(d, int)]
        symbolic = [d for d in x.shape if not isinstance(d, int)]
        if not symbolic:
            size = math.prod(static)
            if -1 in self.shape:
                if known == 0 or size % known:
                    raise self.shape_error([x], f"cannot reshape {size} elements into {self.shape}")
                return tuple(size // known if d == -1 else d for d in self.shape), x.dtype
            if size != known:
                raise self.shape_error([x], f"cannot reshape {size} elements into {self.shape}")
            return self.shape, x.dtype
        if -1 not in self.shape:
            return self.shape, x.dtype
        rest = math.prod(static)
        fill = symbolic[0] if len(symbolic) == 1 and rest == known else None
        return tuple(fill if d == -1 else d for d in self.shape), x.dtype

    def compute(self, x, like=None):
        return np.reshape(x, self.lead + like.shape if self.shape is None else self.shape)

    def vjp(self, node, g):
        return reshape_to(g, node.inputs[0], lead_of(g, node)), None

    def jvp(self, node, t):
        return reshape_to(t[0], node, lead_of(t[0], node.inputs[0]))


def lead_of(value: Node, primal: Node) -> tuple:
    """The leading (basis) axes a tangent or cotangent carries beyond its primal's shape."""
    return value.shape[: value.ndim - primal.ndim]


def reshape_to(x: Node, like: Node, lead: tuple = ()) -> Node:
    """x reshaped to ``lead + like.shape``, written statically when it can be (one unknown dim becomes -1)."""
    target = tuple(lead) + like.shape
    unknown = [i for i, d in enumerate(target) if not isinstance(d, int)]
    if target == x.shape:
        return x
    if len(unknown) > 1:
        return apply(Reshape(None, lead), x, like)
    return apply(Reshape(tuple(-1 if not isinstance(d, int) else d for d in target)), x)


class BroadcastTo(ShapeOp):
    """x broadcast to ``shape`` (or, when ``shape`` is None, to ``lead`` followed by
    the second input's shape, read at run time). vjp: the incoming cotangent;
    the differentiator sums it back over the broadcast axes."""

    name, params, shape_inputs = "broadcast_to", ("shape", "lead"), (1,)

    def __init__(self, shape, lead=()):
        self.shape = None if shape is None else tuple(shape)
        self.lead = tuple(lead)

    def infer(self, x, like=None):
        target = self.lead + like.shape if self.shape is None else self.shape
        try:
            out = broadcast_shapes(x.shape, target)
        except ValueError as e:
            raise self.shape_error([x], f"cannot broadcast to {format_shape(target)} ({e})") from None
        if len(out) != len(target) or any(o != t for o, t in zip(out, target) if isinstance(t, int)):
            raise self.shape_error([x], f"cannot broadcast to {format_shape(target)}")
        return target, x.dtype

    def compute(self, x, like=None):
        return np.broadcast_to(x, self.lead + like.shape if self.shape is None else self.shape)

    def vjp(self, node, g):
        return g, None

    def jvp(self, node, t):
        lead = lead_of(t[0], node.inputs[0])
        return broadcast_like(align_after(t[0], len(lead), node.ndim), node, lead)


def broadcast_like(x, like: Node, lead: tuple = ()) -> Node:
    """x broadcast to ``lead + like.shape`` (static when that shape is)."""
    x = as_node(x, like)
    target = tuple(lead) + like.shape
    if x.shape == target and is_static(target):
        return x
    if is_static(target):
        return apply(BroadcastTo(target), x)
    return apply(BroadcastTo(None, lead), x, like)


def align_after(value: Node, lead: int, ndim: int) -> Node:
    """Give a value with ``lead`` basis axes at least ``ndim`` more axes, inserting
    length-1 axes right after the basis ones, so that broadcasting lines its own
    axes up with the trailing axes of an ``ndim``-dimensional value."""
    missing = ndim - (value.ndim - lead)
    if lead == 0 or missing <= 0:
        return value
    return expand_dims(value, tuple(range(lead, lead + missing)))


def fit_to_shape(value: Node, like: Node, lead: int = 0) -> Node:
    """Make a cotangent or tangent exactly ``value.shape[:lead] + like.shape``, in ``like``'s dtype.

    Sums over the axes broadcasting created (extra leading axes after the
    ``lead`` basis axes, and axes where ``like`` has length 1), then broadcasts
    length-1 axes back up. The differentiator calls this for every value it
    passes on: it is the one place where broadcasting is undone.
    """
    from .arith import cast
    from .reduce import reduce_sum

    value = align_after(value, lead, like.ndim)
    basis = value.shape[:lead]
    body = value.shape[lead:]
    extra = len(body) - like.ndim
    if extra > 0:
        value = reduce_sum(value, axis=tuple(range(lead, lead + extra)))
        body = value.shape[lead:]
    tail = like.shape[like.ndim - len(body) :]
    stretched = tuple(i - len(body) for i, (d, want) in enumerate(zip(body, tail)) if want == 1 and d != 1)
    if stretched:
        value = reduce_sum(value, axis=stretched, keepdims=True)
    if value.shape != basis + like.shape:
        value = broadcast_like(value, like, basis)
    return value if value.dtype == like.dtype else cast(value, like.dtype)


def zeros_like(x: Node) -> Node:
    """Zeros of x's shape and dtype (a read-only broadcast of one zero)."""
    return broadcast_like(as_node(0, like=x), x)


class ExpandDims(ShapeOp):
    """Insert length-1 axes at ``axes`` (negative positions in the output). vjp: squeeze them."""

    name, params = "expand_dims", ("axes",)
    keywords = {"axes": "axis"}  # the builder's name for the attribute, as dprint shows it

    def __init__(self, axes):
        self.axes = tuple(axes)

    def infer(self, x):
        ndim = x.ndim + len(self.axes)
        shape = list(x.shape)
        for a in sorted(a + ndim for a in self.axes):
            shape.insert(a, 1)
        return tuple(shape), x.dtype

    def compute(self, x):
        return np.expand_dims(x, self.axes)

    def vjp(self, node, g):
        return (apply(Squeeze(self.axes), g),)

    def jvp(self, node, t):
        return apply(self, t[0])


class Squeeze(ShapeOp):
    """Remove length-1 axes at ``axes`` (negative positions in the input). vjp: expand them back."""

    name, params = "squeeze", ("axes",)
    keywords = {"axes": "axis"}

    def __init__(self, axes):
        self.axes = tuple(axes)

    def infer(self, x):
        drop = {a + x.ndim for a in self.axes}
        if any(x.shape[a] != 1 for a in drop):
            raise self.shape_error([x], f"cannot squeeze axes {self.axes}: their length is not 1")
        return tuple(d for i, d in enumerate(x.shape) if i not in drop), x.dtype

    def compute(self, x):
        return np.squeeze(x, self.axes)

    def vjp(self, node, g):
        return (apply(ExpandDims(self.axes), g),)

    def jvp(self, node, t):
        return apply(self, t[0])


def expand_dims(x, axis) -> Node:
    """x with new length-1 axes inserted at ``axis`` (an int or a tuple, positions in the result)."""
    x = as_node(x)
    axes = int_tuple(axis)
    return apply(ExpandDims(normalize_axes(axes, x.ndim + len(axes), "expand_dims")), x)


def squeeze(x, axis=None, *, axes=None) -> Node:
    """x without its length-1 axes at ``axis`` (an int or a tuple, NumPy's name; ``axes``
    is accepted as the same argument)."""
    if (axis is None) == (axes is None):
        raise TypeError(f"squeeze: give the axes to remove as axis=... (or axes=...), exactly once; "
                        f"got axis={axis!r}, axes={axes!r}")
    x = as_node(x)
    return apply(Squeeze(normalize_axes(axis if axes is None else axes, x.ndim, "squeeze")), x)


# -- indexing -----------------------------------------------------------------
def _normalize_index(index, shape, what):
    """A hashable index: a tuple with an int or a (start, stop, step) triple per axis."""
    if not isinstance(index, tuple):
        index = (index,)
    for i in index:
        if isinstance(i, (np.ndarray, list, Node, bool, np.bool_)):
            raise TypeError(f"{what}: only ints, slices and ... can index a node, got {_array_index_kind(i)}; "
                            f"select by a mask with sg.where(mask, x, 0), pick entries with sg.one_hot")
    if sum(i is Ellipsis for i in index) > 1:
        raise IndexError(f"{what}: an index can only have a single ellipsis")
    if Ellipsis in index:
        at = index.index(Ellipsis)
        fill = len(shape) - (len(index) - 1)
        index = index[:at] + (slice(None),) * fill + index[at + 1 :]
    if len(index) > len(shape):
        raise IndexError(f"{what}: too many indices ({len(index)}) for shape {format_shape(shape)}")
    out = []
    for i, d in zip(index + (slice(None),) * (len(shape) - len(index)), shape):
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            i = int(i)
            if isinstance(d, int):
                if not -d <= i < d:
                    raise IndexError(f"{what}: index {i} is out of bounds for an axis of length {d}")
                i %= d
            out.append(i)
        elif isinstance(i, slice):
            for part in (i.start, i.stop, i.step):
                if part is not None and not isinstance(part, (int, np.integer)):
                    raise TypeError(f"{what}: slice bounds must be ints, got {i!r}")
            if i.step == 0:
                raise ValueError(f"{what}: slice step cannot be zero")
            out.append((i.start, i.stop, i.step))
        else:
            raise TypeError(f"{what}: only ints, slices and ... can index a node, got {i!r}")
    return tuple(out)


def _array_index_kind(i) -> str:
    """How to name an index NumPy would treat as fancy indexing (a mask or an integer array)."""
    if isinstance(i, Node):
        return f"a graph node {i!r:.60}"
    array = np.asarray(i)
    if array.ndim == 0:
        return f"a {type(i).__name__} ({i!r})"
    kind = {"b": "a boolean mask", "i": "an integer array", "u": "an integer array"}.get(array.dtype.kind, "an array")
    return f"{kind} of shape {array.shape}"


def index_expr(index) -> tuple:
    """The Python index (ints and slices) for a normalized index."""
    return tuple(i if isinstance(i, int) else slice(*i) for i in index)


class GetItem(ShapeOp):
    """x[index] with ints and slices (over the last ``len(index)`` axes; leading
    basis axes pass through). vjp: the cotangent embedded in zeros of x's shape."""

    name, params = "getitem", ("index",)

    def __init__(self, index):
        self.index = index

    def infer(self, x):
        lead = x.ndim - len(self.index)
        shape = list(x.shape[:lead])
        for i, d in zip(self.index, x.shape[lead:]):
            if isinstance(i, int):
                continue
            if isinstance(d, int):
                shape.append(len(range(*slice(*i).indices(d))))
            else:
                shape.append(d if i == (None, None, None) else None)
        return tuple(shape), x.dtype

    def compute(self, x):
        return x[(Ellipsis,) + index_expr(self.index)]

    def vjp(self, node, g):
        return (apply(Embed(self.index, lead_of(g, node)), g, node.inputs[0]),)

    def jvp(self, node, t):
        return apply(self, t[0])


class Embed(ShapeOp):
    """Zeros of shape ``lead + like.shape`` (``like`` is the second input, read
    only for its shape), with the first input written at ``index``: the adjoint
    of ``getitem``."""

    name, params, shape_inputs = "embed", ("index", "lead"), (1,)
    view_of = ()  # a new array of zeros with the values written in

    def __init__(self, index, lead=()):
        self.index = index
        self.lead = tuple(lead)

    def infer(self, values, like):
        return self.lead + like.shape, values.dtype

    def compute(self, values, like):
        from ..kernels import _embed

        return _embed(values, self.lead + like.shape, (Ellipsis,) + index_expr(self.index))

    def vjp(self, node, g):
        return apply(GetItem(self.index), g), None

    def jvp(self, node, t):
        if t[0] is None:
            return None
        return apply(Embed(self.index, lead_of(t[0], node.inputs[0]) + self.lead), t[0], node.inputs[1])


def getitem(x, index) -> Node:
    x = as_node(x)
    if any(isinstance(i, (np.ndarray, list, Node)) for i in (index if isinstance(index, tuple) else (index,))):
        from .index import fancy_getitem  # integer arrays and NumPy masks (issue 16)

        return fancy_getitem(x, index, f"getitem of {x.name!r}" if x.name else "getitem")
    norm = _normalize_index(index, x.shape, f"getitem of {x.name!r}" if x.name else "getitem")
    if all(i == (None, None, None) for i in norm):
        return x
    return apply(GetItem(norm), x)


class Concatenate(ShapeOp):
    """Join inputs along ``axis`` (negative). vjp: the matching slices of the cotangent."""

    name, params = "concatenate", ("axis",)
    view_of = ()  # np.concatenate copies

    def __init__(self, axis: int):
        self.axis = axis

    def infer(self, *xs):
        ndim = xs[0].ndim
        if any(x.ndim != ndim for x in xs):
            raise self.shape_error(xs, "all inputs must have the same number of dimensions")
        ax = self.axis + ndim
        shape = list(xs[0].shape)
        for x in xs[1:]:
            for i, d in enumerate(x.shape):
                if i != ax and isinstance(d, int) and isinstance(shape[i], int) and d != shape[i]:
                    raise self.shape_error(xs, f"shapes differ outside the concatenation axis {self.axis}")
                if i != ax and not isinstance(shape[i], int):
                    shape[i] = d
        sizes = [x.shape[ax] for x in xs]
        shape[ax] = sum(sizes) if all(isinstance(s, int) for s in sizes) else None
        return tuple(shape), np.result_type(*(x.dtype for x in xs))

    def compute(self, *xs):
        return np.concatenate(xs, axis=self.axis)

    def vjp(self, node, g):
        ax = self.axis + node.ndim
        sizes = [x.shape[ax] for x in node.inputs]
        if not all(isinstance(s, int) for s in sizes):
            raise NotImplementedError(
                f"concatenate: differentiating along an axis of unknown length {sizes} is not supported"
            )
        offsets = np.cumsum([0] + sizes)
        after = (slice(None),) * (-self.axis - 1)  # counted from the end: leading basis axes pass through
        return [getitem(g, (Ellipsis, slice(int(a), int(b))) + after) for a, b in zip(offsets[:-1], offsets[1:])]

    def jvp(self, node, t):
        given = next(ti for ti in t if ti is not None)
        lead = lead_of(given, node)
        return apply(self, *(broadcast_like(0, x, lead) if ti is None else ti for x, ti in zip(node.inputs, t)))


def concatenate(xs, axis: int = 0) -> Node:
    """Join a sequence of nodes along an existing axis."""
    xs = [as_node(x) for x in xs]
    if not xs:
        raise ValueError("concatenate: needs at least one input")
    if len(xs) == 1:
        return xs[0]
    (ax,) = normalize_axes(axis, xs[0].ndim, "concatenate")
    return apply(Concatenate(ax), *xs)


# -- public builders ------------------------------------------------------------
def transpose(x, axes=None) -> Node:
    """Permute axes; with no ``axes``, reverse them (as in NumPy)."""
    x = as_node(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim if x.ndim else a for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {x.ndim} axes")
    return x if axes == tuple(range(x.ndim)) else apply(Transpose(axes), x)


def reshape(x, shape) -> Node:
    """x with a new shape (ints, at most one -1)."""
    x = as_node(x)
    shape = int_tuple(shape)
    if any(not isinstance(d, int) or d < -1 for d in shape) or shape.count(-1) > 1:
        raise ValueError(f"reshape: the new shape must be ints >= 0 with at most one -1, got {shape!r}")
    if shape == x.shape:
        return x
    return apply(Reshape(shape), x)


def broadcast_to(x, shape) -> Node:
    """x broadcast to a static shape of ints."""
    x = as_node(x)
    shape = int_tuple(shape)
    if not is_static(shape):
        raise ValueError(f"broadcast_to: the target shape must be ints, got {shape!r}")
    return x if x.shape == shape else apply(BroadcastTo(shape), x)


class Basis(NoDerivative):
    """The standard basis of arrays of ``shape``, stacked: shape ``(n,) + shape``
    with n = prod(shape); entry k is 1 at flat position k. It seeds a
    one-sweep Jacobian (identity tangents or cotangents). No inputs, no derivative."""

    name, params = "basis", ("shape", "dtype")
    view_of, elementwise, writes_into = (), False, False  # np.eye: a new array

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    def infer(self):
        return (math.prod(self.shape),) + self.shape, self.dtype

    def compute(self):
        n = math.prod(self.shape)
        return np.eye(n, dtype=self.dtype).reshape((n,) + self.shape)


def basis(shape, dtype) -> Node:
    """The identity, as a stack of basis arrays of ``shape`` (see :class:`Basis`)."""
    if not is_static(shape):
        raise ValueError(f"basis: needs a static shape, got {format_shape(tuple(shape))}")
    from ..graph import current_graph

    return current_graph().intern(Basis(shape, dtype), ())
