"""Integer-array (fancy) indexing (issue 16): ``take`` along an axis (``x[idx]``, ``x[:, idx]``),
``gather`` (NumPy's take_along_axis), and their adjoints, which scatter-add (repeated indices all
add). Indices are integer nodes (placeholders, constants) read at run time; the generated code
checks them against the axis length (0 .. n - 1: no counting from the end, as for labels). The
axis is stored negative, so leading basis axes of a tangent or cotangent pass through.

A boolean mask selects a number of entries known only at run time: indexing with a mask node is
refused (use ``sg.where(mask, x, 0)``); a NumPy mask, known when the graph is built, becomes
constant integer indices.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..graph import Node, Op, apply, as_node, constant
from ..shapes import numel


def _check_indices(op: Op, idx: Node, inputs):
    if idx.dtype.kind not in "iu":
        raise op.dtype_error(inputs, "indices must be integers")


class _AlongAxis(Op):
    """Base of take and gather: x's entries picked by integer indices (the labels input, checked
    against the length of ``axis``, negative) along one axis."""

    params = ("axis",)
    view_of, elementwise, writes_into = (), False, False  # fancy indexing copies
    labels_input = 1

    def __init__(self, axis: int):
        self.axis = axis

    def label_classes(self, node) -> int:
        return node.inputs[0].shape[self.axis]


class Take(_AlongAxis):
    """np.take(x, idx, axis): the entries idx (any shape) of x's axis ``axis`` (negative).
    vjp: untake(g, idx), a scatter-add into zeros. jvp: take(t, idx)."""

    name, labels_use = "take", "take (integer-array indexing)"

    def infer(self, x, idx):
        _check_indices(self, idx, [x, idx])
        if not -x.ndim <= self.axis < 0:
            raise self.shape_error([x, idx], f"axis {self.axis} is out of range")
        if not isinstance(x.shape[self.axis], int):
            raise self.shape_error([x, idx], "the indexed axis must have a static length")
        ax = x.ndim + self.axis
        return x.shape[:ax] + idx.shape + x.shape[ax + 1:], x.dtype

    def compute(self, x, idx):
        return np.take(x, idx, axis=self.axis)

    def vjp(self, node, g):
        x, idx = node.inputs
        return apply(Untake(self.axis, x.shape[self.axis]), g, idx), None

    def jvp(self, node, t):
        return None if t[0] is None else apply(self, t[0], node.inputs[1])

    def flops(self, node, sizes):
        return 0


class Untake(Op):
    """The adjoint of take: zeros with axis ``axis`` (negative, of length ``n``) in place of the index
    axes of ``values``, and each value added at its index (repeated indices add up).
    vjp: take(g, idx). jvp: untake(t, idx)."""

    name, params = "untake", ("axis", "n")
    view_of, elementwise, writes_into = (), False, False  # a new array of zeros with the values added in
    labels_input, labels_use = 1, "the gradient of take"

    def __init__(self, axis: int, n: int):
        self.axis, self.n = axis, n

    def label_classes(self, node) -> int:
        return self.n

    def infer(self, values, idx):
        _check_indices(self, idx, [values, idx])
        end = values.ndim + self.axis + 1
        start = end - idx.ndim
        if start < 0:
            raise self.shape_error([values, idx], "values have fewer axes than the indices need")
        return values.shape[:start] + (self.n,) + values.shape[end:], values.dtype

    def compute(self, values, idx):
        return kernels._untake(values, idx, self.n, self.axis)

    def vjp(self, node, g):
        return apply(Take(self.axis), g, node.inputs[1]), None

    def jvp(self, node, t):
        return None if t[0] is None else apply(self, t[0], node.inputs[1])

    def flops(self, node, sizes):
        return numel(node.inputs[0].shape, sizes)


def _index_node(idx) -> Node:
    """Integer indices as a node: a node as it is, a NumPy array or list as a constant."""
    if isinstance(idx, Node):
        if idx.dtype.kind == "b":
            raise TypeError(
                f"indexing with a boolean mask node {idx!r:.60}: the number of entries it selects is known only "
                "at run time, so the result would have no static shape; use sg.where(mask, x, 0) to keep the "
                "shape, or integer indices (sg.take) when the count is fixed")
        return idx
    array = np.asarray(idx)
    if array.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got {array.dtype} {idx!r:.60}")
    return constant(array)


def take(x, indices, axis: int = 0) -> Node:
    """np.take along ``axis``: x's entries at the integer ``indices`` (a node, or a NumPy array or list),
    which must lie in 0 .. n - 1 (checked on every call). Differentiable in x (a scatter-add)."""
    x = as_node(x)
    if not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"take: axis {axis!r} is out of range for an array of {x.ndim} dimension(s)")
    axis = int(axis) - x.ndim if axis >= 0 else int(axis)
    n = x.shape[axis]
    if not isinstance(indices, Node):
        array = np.asarray(indices)
        if array.dtype.kind in "iu" and isinstance(n, int):
            if array.size and (array.min() < -n or array.max() >= n):
                raise IndexError(f"take: an index is out of bounds for an axis of length {n}")
            indices = array % n if array.size else array.astype(np.int64)
    return apply(Take(axis), x, _index_node(indices))


class Gather(_AlongAxis):
    """np.take_along_axis(x, idx, axis): idx has x's number of axes (lengths 1 broadcast); entry i of
    the result is x at idx[i] along ``axis`` (negative). vjp: ungather (a scatter-add). jvp: gather(t)."""

    name, labels_use = "gather", "gather"

    def infer(self, x, idx):
        _check_indices(self, idx, [x, idx])
        if idx.ndim > x.ndim:
            raise self.shape_error([x, idx], "indices need as many axes as x")
        if not isinstance(x.shape[self.axis], int):
            raise self.shape_error([x, idx], "the gathered axis must have a static length")
        lead = x.shape[: x.ndim - idx.ndim]
        shape = []
        for k, (d, i) in enumerate(zip(x.shape[len(lead):], idx.shape)):
            if k == idx.ndim + self.axis:
                shape.append(i)
            elif d == 1:
                shape.append(i)
            elif i == 1 or d == i or not isinstance(i, int) or not isinstance(d, int):
                shape.append(d)
            else:
                raise self.shape_error([x, idx], "indices and x must have the same lengths off the axis (or 1)")
        return lead + tuple(shape), x.dtype

    def compute(self, x, idx):
        return kernels._gather(x, idx, self.axis)

    def vjp(self, node, g):
        x, idx = node.inputs
        return apply(Ungather(self.axis), g, idx, x), None

    def jvp(self, node, t):
        return None if t[0] is None else apply(self, t[0], node.inputs[1])

    def flops(self, node, sizes):
        return 0


class Ungather(Op):
    """The adjoint of gather: zeros shaped like ``like`` (read for its shape only; leading axes of
    ``values`` kept) with each value added at its index along ``axis``. vjp: gather(g, idx)."""

    name, params, shape_inputs = "ungather", ("axis",), (2,)
    view_of, elementwise, writes_into = (), False, False  # a new array of zeros with the values added in
    labels_input, labels_use = 1, "the gradient of gather"

    def __init__(self, axis: int):
        self.axis = axis

    def label_classes(self, node) -> int:
        return node.inputs[2].shape[self.axis]

    def infer(self, values, idx, like):
        _check_indices(self, idx, [values, idx])
        lead = values.shape[: values.ndim - like.ndim]
        return lead + like.shape, values.dtype

    def compute(self, values, idx, like):
        return kernels._ungather(values, idx, like.shape, self.axis)

    def vjp(self, node, g):
        return apply(Gather(self.axis), g, node.inputs[1]), None, None

    def jvp(self, node, t):
        return None if t[0] is None else apply(self, t[0], node.inputs[1], node.inputs[2])

    def flops(self, node, sizes):
        return numel(node.inputs[0].shape, sizes)


def gather(x, indices, axis: int = -1) -> Node:
    """np.take_along_axis: ``indices`` has x's number of axes; picks along ``axis`` (indices 0 .. n - 1,
    checked on every call). Differentiable in x (a scatter-add)."""
    x = as_node(x)
    idx = _index_node(indices)
    if idx.ndim != x.ndim:
        raise ValueError(f"gather: indices need {x.ndim} axes like x, got {idx.ndim}")
    if not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"gather: axis {axis!r} is out of range for an array of {x.ndim} dimension(s)")
    return apply(Gather(int(axis) - x.ndim if axis >= 0 else int(axis)), x, idx)


def fancy_getitem(x: Node, index, what: str = "getitem") -> Node:
    """x[index] where one entry of ``index`` is an integer array (node, NumPy array or list) or a NumPy
    boolean mask, the others ints, slices and at most one ``...``: a take along that axis, then the
    basic index. One array entry only (NumPy's rules for several are not supported)."""
    from .shape import getitem, transpose

    index = index if isinstance(index, tuple) else (index,)
    for i in index:
        if isinstance(i, Node) and i.dtype.kind == "b":
            raise TypeError(
                f"{what}: indexing with a boolean mask node {i!r:.60}: the number of entries it selects is known "
                "only at run time, so the result would have no static shape; use sg.where(mask, x, 0) to keep "
                "the shape, or integer indices (sg.take) when the count is fixed")
    arrays = [k for k, i in enumerate(index) if _is_array(i)]
    if len(arrays) != 1:
        raise TypeError(f"getitem: at most one integer-array index is supported, got {len(arrays)}")
    if sum(i is Ellipsis for i in index) > 1:  # (`in` and .index would compare arrays with ==)
        raise IndexError("getitem: an index can only have a single ellipsis")
    (k,) = arrays
    entry = index[k]
    mask = not isinstance(entry, Node) and np.asarray(entry).dtype == bool
    width = np.asarray(entry).ndim if mask else 1  # a mask covers as many axes as it has
    dots = [j for j, i in enumerate(index) if i is Ellipsis]
    if dots:
        at = dots[0]
        fill = x.ndim - (len(index) - 1) - (width - 1)
        index = index[:at] + (slice(None),) * fill + index[at + 1:]
        k = next(j for j, i in enumerate(index) if _is_array(i))
    if mask:
        m = np.asarray(entry)
        if tuple(x.shape[k:k + m.ndim]) != m.shape:
            raise IndexError(f"getitem: a mask of shape {m.shape} does not match axes of lengths "
                             f"{x.shape[k:k + m.ndim]}")
        if m.ndim > 1:
            x = reshape_axes(x, k, m.ndim)
        entry = np.flatnonzero(m)
    taken = take(x, entry, axis=k)
    rest = index[:k] + (slice(None),) * (entry.ndim if isinstance(entry, Node) else np.ndim(entry)) + index[k + 1:]
    out = getitem(taken, rest) if any(i != slice(None) for i in rest) else taken
    # NumPy counts the ints next to an array as array indices too: when a slice parts them from the
    # array entry, the entry's axes go first (x[1, :, [0, 2]] has shape (2, n), not (n, 2))
    advanced = [j for j, i in enumerate(index) if j == k or isinstance(i, (int, np.integer))]
    before = sum(isinstance(i, slice) for i in index[:k])  # the result's axes ahead of the entry's
    if advanced[-1] - advanced[0] + 1 != len(advanced) and before:
        width = np.ndim(entry)
        out = transpose(out, tuple(range(before, before + width)) + tuple(range(before))
                        + tuple(range(before + width, out.ndim)))
    return out


def reshape_axes(x: Node, k: int, m: int) -> Node:
    """x with axes k .. k + m - 1 merged into one."""
    from .shape import reshape

    return reshape(x, x.shape[:k] + (-1,) + x.shape[k + m:])


def _is_array(i) -> bool:
    if isinstance(i, Node):
        return True
    if isinstance(i, (np.ndarray, list)):
        return True
    return False
