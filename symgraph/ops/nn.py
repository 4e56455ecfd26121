"""Labels and losses: one_hot, picking by label, and the three losses.

Integer labels stay integers: cross-entropy picks the labelled logit with
``pick`` (whose adjoint ``unpick`` scatters back) instead of multiplying by a
one-hot matrix. Generated code checks integer labels against the class count on
every call (``labels_input``). Over an empty batch every loss is what its reduction
gives over zero elements: NaN for "mean", 0 for "sum", an empty array for "none".
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..graph import NoDerivative, Node, Op, apply, as_node
from ..shapes import format_shape, numel
from .reduce import log_softmax, logsumexp, mean, reduce_sum
from .scalar import softplus, square
from .shape import broadcast_to, fit_to_shape


def _check_labels(op: Op, labels: Node, inputs):
    if labels.dtype.kind not in "iu":
        raise op.dtype_error(inputs, "labels must be integer class indices")


class OneHot(NoDerivative):
    """Rows of the identity picked by integer labels; no derivative."""

    name, params = "one_hot", ("num_classes", "dtype")
    view_of, elementwise, writes_into = (), False, False  # a new array
    labels_input, labels_use = 0, "one_hot"

    def label_classes(self, node) -> int:
        return self.num_classes

    def __init__(self, num_classes: int, dtype):
        self.num_classes = num_classes
        self.dtype = np.dtype(dtype)

    def infer(self, labels):
        _check_labels(self, labels, [labels])
        return labels.shape + (self.num_classes,), self.dtype

    def compute(self, labels):
        return kernels._one_hot(labels, self.num_classes, self.dtype)


class Pick(Op):
    """x[..., labels]: the entry of the last axis each label chooses.
    vjp: unpick(g, labels), zeros with g at the labelled entries. jvp: pick(t, labels)."""

    name = "pick"
    view_of, elementwise, writes_into = (), False, False  # fancy indexing copies
    labels_input, labels_use = 1, "softmax_cross_entropy / pick"

    def label_classes(self, node) -> int:
        return node.inputs[0].shape[-1]

    def infer(self, x, labels):
        _check_labels(self, labels, [x, labels])
        if x.ndim < labels.ndim + 1 or not isinstance(x.shape[-1], int):
            raise self.shape_error([x, labels], "labels must have the shape of x without its last axis, which must be static")
        for a, b in zip(x.shape[x.ndim - 1 - labels.ndim : -1], labels.shape):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                raise self.shape_error([x, labels], "labels must have the shape of x without its last axis")
        return x.shape[:-1], x.dtype

    def compute(self, x, labels):
        return kernels._pick(x, labels)

    def vjp(self, node, g):
        x, labels = node.inputs
        return apply(Unpick(x.shape[-1]), g, labels), None

    def jvp(self, node, t):
        return None if t[0] is None else apply(self, t[0], node.inputs[1])


class Unpick(Op):
    """Zeros of shape values.shape + (num_classes,) with ``values`` at the labelled entries
    (labels broadcast against values). vjp: pick(g, labels). jvp: unpick(t, labels)."""

    name, params = "unpick", ("num_classes",)
    view_of, elementwise, writes_into = (), False, False  # a new array of zeros with the values written in
    labels_input, labels_use = 1, "the gradient of pick"

    def label_classes(self, node) -> int:
        return self.num_classes

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def infer(self, values, labels):
        _check_labels(self, labels, [values, labels])
        return values.shape + (self.num_classes,), values.dtype

    def compute(self, values, labels):
        return kernels._unpick(values, labels, self.num_classes)

    def vjp(self, node, g):
        return apply(Pick(), g, node.inputs[1]), None

    def jvp(self, node, t):
        return None if t[0] is None else apply(self, t[0], node.inputs[1])


class AddAt(Op):
    """x with ``values`` added at the labelled entries of its last axis: x + unpick(values, labels)
    without the matrix of zeros (the simplifier's rewrite of the cross-entropy gradient,
    softmax - one_hot). ``labels`` has the shape of x without its last axis; ``values`` broadcasts
    to it. vjp: g for x, pick(g, labels) summed to the shape of values. jvp: add_at(tx, tv, labels)."""

    name = "add_at"
    view_of, elementwise, writes_into = (), True, True  # may add in place over x's buffer
    labels_input, labels_use = 2, "the gradient of softmax_cross_entropy"

    def label_classes(self, node) -> int:
        return node.shape[-1]

    def infer(self, x, values, labels):
        _check_labels(self, labels, [x, values, labels])
        if x.shape[:-1] != labels.shape or not isinstance(x.shape[-1], int):
            raise self.shape_error([x, values, labels], "labels must have the shape of x without its last axis")
        if values.ndim > labels.ndim or any(
                v not in (1, w) for v, w in zip(values.shape[::-1], labels.shape[::-1])):
            raise self.shape_error([x, values, labels], "values must broadcast to the shape of labels")
        if np.result_type(x.dtype, values.dtype) != x.dtype:
            raise self.dtype_error([x, values, labels], "values must not widen the dtype of x")
        return x.shape, x.dtype

    def compute(self, x, values, labels):
        return kernels._add_at(x, values, labels)

    def vjp(self, node, g):
        _, values, labels = node.inputs
        return g, fit_to_shape(apply(Pick(), g, labels), values), None

    def jvp(self, node, t):
        x, _, labels = node.inputs
        tx, tv = t[0], t[1]
        if tv is None:
            return tx
        if tx is None:
            return apply(Unpick(x.shape[-1]), broadcast_to(tv, labels.shape), labels)
        return apply(self, tx, tv, labels)

    def flops(self, node, sizes):
        return numel(node.inputs[2].shape, sizes)


def add_at(x, values, labels) -> Node:
    """x + unpick(values, labels): x with ``values`` added at the entries the integer labels choose."""
    return apply(AddAt(), as_node(x), as_node(values, like=x), as_node(labels))


def one_hot(labels, num_classes: int, dtype="float64") -> Node:
    """Integer labels of any shape as one-hot rows: shape ``labels.shape + (num_classes,)``."""
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be a positive int, got {num_classes!r}")
    return apply(OneHot(int(num_classes), dtype), labels)


def pick(x, labels) -> Node:
    """x[..., labels]: for each row of x, the entry its integer label chooses."""
    return apply(Pick(), x, labels)


_REDUCTIONS = ("mean", "sum", "none")


def _reduce_loss(rows: Node, reduction: str, what: str) -> Node:
    if reduction == "mean":
        return mean(rows)
    if reduction == "sum":
        return reduce_sum(rows)
    if reduction == "none":
        return rows
    raise ValueError(f"{what}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_same_shape(what, a: Node, b: Node):
    ok = a.ndim == b.ndim and all(
        not (isinstance(x, int) and isinstance(y, int) and x != y) for x, y in zip(a.shape, b.shape)
    )
    if not ok:
        from ..errors import ShapeError, user_location

        raise ShapeError(
            f"{what}: prediction shape {format_shape(a.shape)} and target shape {format_shape(b.shape)} differ "
            f"at {user_location()}"
        )


def mse(pred, target, reduction: str = "mean") -> Node:
    """Mean squared error: (pred - target)**2, reduced ("mean" averages every element)."""
    pred = as_node(pred)
    target = as_node(target, like=pred)
    _check_same_shape("mse", pred, target)
    return _reduce_loss(square(pred - target), reduction, "mse")


def softmax_cross_entropy(logits, labels, reduction: str = "mean") -> Node:
    """Cross-entropy of softmax(logits) against labels, classes on the last axis.

    ``labels`` are integer class indices of shape ``logits.shape[:-1]``, or
    rows of class probabilities (e.g. one-hot) of shape ``logits.shape``.
    "none" gives one loss per row. Finite for logits of any size.
    """
    logits = as_node(logits)
    labels = as_node(labels)
    if labels.dtype.kind in "iu":
        rows = logsumexp(logits, axis=-1) - pick(logits, labels)
    else:
        _check_same_shape("softmax_cross_entropy", logits, labels)
        rows = -reduce_sum(labels * log_softmax(logits, axis=-1), axis=-1)
    return _reduce_loss(rows, reduction, "softmax_cross_entropy")


def binary_cross_entropy(logits, targets, reduction: str = "mean") -> Node:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1]:
    softplus(logits) - logits * targets, finite for logits of any size."""
    logits = as_node(logits)
    targets = as_node(targets, like=logits)
    _check_same_shape("binary_cross_entropy", logits, targets)
    return _reduce_loss(softplus(logits) - logits * targets, reduction, "binary_cross_entropy")
