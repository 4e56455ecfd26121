"""Regularization as graph pieces: penalty terms, gradient clipping, parameter averaging.

Everything here builds graph nodes (nothing is computed until a compiled
function runs), so the generated training step shows each term:

    loss = data_loss + regularize.l2_penalty(model.parameters, 1e-4)
    grads = regularize.clip_by_global_norm(sg.grad(loss, params), max_norm=1.0)
    updates = {p: p - lr * g for p, g in zip(params, grads)}
    averages, ema_updates = regularize.ema(params, decay=0.999, updates=updates)
    step = codegen.compile([x, y], loss, updates={**updates, **ema_updates})

Each function takes one node or a list of nodes; a list in gives a list out.
"""

from __future__ import annotations

import numpy as np

from .graph import Node, as_node, state
from .ops import abs as abs_, maximum, minimum, sqrt, square
from .shapes import format_shape

__all__ = ["clip_by_global_norm", "clip_by_value", "ema", "global_norm", "l1_penalty", "l2_penalty"]


def _nodes(values, what: str) -> tuple[list[Node], bool]:
    single = isinstance(values, Node)
    nodes = [values] if single else list(values)
    for i, n in enumerate(nodes):
        if not isinstance(n, Node):
            raise TypeError(f"{what}: expected graph nodes, got {type(n).__name__} at position {i}")
        if n.dtype.kind != "f":
            raise TypeError(f"{what}: {n.name or n.op.name} has dtype {n.dtype}; expected a float node")
    if not nodes:
        raise ValueError(f"{what}: got no nodes")
    return nodes, single


def _total(terms: list[Node]) -> Node:
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def l2_penalty(params, weight: float) -> Node:
    """``weight / 2 * sum(p**2)`` over every entry of every parameter: a scalar cost term.

    The 1/2 makes its gradient ``weight * p``, so adding this term to the loss
    and training with SGD is exactly PyTorch's ``weight_decay=weight`` (which
    adds ``weight * p`` to the gradient). Usually applied to weight matrices only,
    not to biases or batch-norm parameters.
    """
    nodes, _ = _nodes(params, "l2_penalty")
    return (weight / 2) * _total([square(p).sum() for p in nodes])


def l1_penalty(params, weight: float) -> Node:
    """``weight * sum(|p|)``: a scalar cost term whose gradient is ``weight * sign(p)``."""
    nodes, _ = _nodes(params, "l1_penalty")
    return weight * _total([abs_(p).sum() for p in nodes])


def global_norm(grads) -> Node:
    """The Euclidean norm of all gradients taken together, ``sqrt(sum_g sum(g**2))``."""
    nodes, _ = _nodes(grads, "global_norm")
    return sqrt(_total([square(g).sum() for g in nodes]))


def clip_by_global_norm(grads, max_norm: float, eps: float = 1e-6):
    """Rescale gradients so their global norm is at most ``max_norm``.

    Every gradient is multiplied by ``min(1, max_norm / (global_norm + eps))``,
    as ``torch.nn.utils.clip_grad_norm_`` does (with its ``eps = 1e-6``): the
    directions are kept, and gradients whose norm is already within the bound
    come back unchanged. Returns new gradient nodes (a node for a node, a list
    for a list); use them in place of the originals when building the updates.
    """
    if not max_norm > 0:
        raise ValueError(f"clip_by_global_norm: max_norm must be > 0, got {max_norm}")
    nodes, single = _nodes(grads, "clip_by_global_norm")
    norm = global_norm(nodes)
    scale = minimum(1.0, max_norm / (norm + eps))
    clipped = [g * scale for g in nodes]
    return clipped[0] if single else clipped


def clip_by_value(grads, low: float, high: float):
    """Clamp every gradient entry into ``[low, high]`` (``torch.nn.utils.clip_grad_value_``
    with ``low = -high``). Returns new gradient nodes."""
    if not low <= high:
        raise ValueError(f"clip_by_value: need low <= high, got low={low}, high={high}")
    nodes, single = _nodes(grads, "clip_by_value")
    clipped = [minimum(maximum(g, low), high) for g in nodes]
    return clipped[0] if single else clipped


def ema(params, decay: float = 0.999, updates: dict | None = None):
    """Polyak averaging: an exponential moving average of each parameter, kept in state leaves.

    Returns ``(averages, ema_updates)``: one state leaf per parameter, named
    ``<param>_ema`` and starting at the parameter's current value, and the
    updates ``average <- decay * average + (1 - decay) * p`` to merge into a
    training step's updates (``{**updates, **ema_updates}``).

    Updates in one compiled call are simultaneous, so ``p`` there is the value
    before the step. Pass the step's own ``updates`` dict to average the
    values after the step instead (``updates[p]`` replaces ``p``), as
    ``torch.optim.swa_utils.AveragedModel`` does when called after
    ``optimizer.step()``.

    To evaluate with the averages, copy them in (``p.value = avg.value``) or
    compile the evaluation from a model built on them.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"ema: decay must be in [0, 1], got {decay}")
    nodes, single = _nodes(params, "ema")
    averages, ema_updates = [], {}
    for i, p in enumerate(nodes):
        if not hasattr(p.op, "value") or not p.is_leaf:
            label = f"{p.op.name} {p.name!r}" if p.name else f"{p.op.name} node {format_shape(p.shape)}"
            raise TypeError(f"ema: expected parameter leaves, got {label} at position {i}")
        avg = state(f"{p.name}_ema", np.array(p.value, copy=True))
        new_p = as_node(updates[p], like=p) if updates is not None and p in updates else p
        ema_updates[avg] = decay * avg + (1.0 - decay) * new_p
        averages.append(avg)
    return (averages[0] if single else averages), ema_updates
