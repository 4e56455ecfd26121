"""Symbol-to-symbol differentiation: reverse mode (vjp, grad) and forward mode (jvp).

Both are one short loop over the nodes that lie between ``wrt`` and the
outputs, calling each op's rule. The rules return graph nodes, so the result
is an ordinary graph that can be simplified, printed, compiled, or
differentiated again. ``None`` is the symbolic zero: no zero array is ever
built for a path that does not contribute.
"""

from __future__ import annotations

from .errors import DTypeError, ShapeError, user_location
from .graph import Node, as_node, gc_paused, topo_sort
from .ops.arith import add
from .ops.shape import align_after, fit_to_shape, zeros_like
from .provenance import Labels, Recorder
from .shapes import broadcast_shapes, format_shape


def _as_list(nodes, what: str, argument: str = "wrt") -> tuple[list[Node], bool]:
    """``(list of nodes, whether a single node was given)``; ``argument`` names it in errors."""
    single = isinstance(nodes, Node)
    try:
        items = [nodes] if single else list(nodes)
    except TypeError:
        raise TypeError(f"{what}: {argument} must be a graph node or a list of nodes, "
                        f"got {type(nodes).__name__} {nodes!r:.60}") from None
    for n in items:
        if not isinstance(n, Node):
            raise TypeError(f"{what}: {argument} must hold graph nodes, got {type(n).__name__} {n!r:.60}")
    return items, single


def _paired(values, nodes: list[Node], what: str, nodes_noun: str, values_noun: str) -> list[Node]:
    """One value per node (a node or a list), as nodes of the matching dtype."""
    values = [values] if isinstance(values, Node) else list(values)
    if len(values) != len(nodes):
        raise ValueError(f"{what}: {len(nodes)} {nodes_noun} but {len(values)} {values_noun}")
    return [as_node(v, like=n) for v, n in zip(values, nodes)]


def _check_differentiable(wrt: list[Node], what: str):
    for w in wrt:
        if w.dtype.kind != "f":
            label = f" {w.name!r}" if w.name else ""
            raise DTypeError(f"{what}: cannot differentiate with respect to {w.op.name}{label} of dtype {w.dtype}; "
                             "integer and boolean tensors (such as labels) are not differentiable")


def _between(outputs: list[Node], wrt: list[Node]) -> list[Node]:
    """Nodes that depend on some ``wrt`` and that some output depends on, in topological order."""
    order = topo_sort(outputs)
    wrt_ids = {id(w) for w in wrt}
    reached: set[int] = set()
    for node in order:
        if id(node) in wrt_ids or (node.op.differentiable and any(
            id(i) in reached and i.dtype.kind == "f" and pos not in node.op.shape_inputs
            for pos, i in enumerate(node.inputs)
        )):
            reached.add(id(node))
    return [n for n in order if id(n) in reached]


def stabilized(outputs: list[Node], wrt: list[Node]) -> list[Node]:
    """The outputs with numerically fragile patterns (log of softmax, log of sigmoid, ...)
    rewritten into stable ops before they are differentiated, so the derivative is
    built from the stable form; and with an activation before a max pool moved after it
    (``rules.BEFORE_DIFFERENTIATION``), so the derivative runs it on the pooled values too.
    ``wrt`` nodes are never rewritten away."""
    from . import rules
    from .simplify import simplify_labelled

    stable, _, _ = simplify_labelled(outputs, Labels(), rule_sets=rules.BEFORE_DIFFERENTIATION, fuse=False, keep=wrt,
                                     merge_copies=False)
    return stable


def _fit(value: Node, like: Node, lead: int, sweep: str, rec: Recorder, parent=None) -> Node:
    """:func:`fit_to_shape`, recording where the value came from for the generated comments."""
    if value.shape[lead:] == like.shape and value.dtype == like.dtype:
        return value
    with rec.origin(("fit", like, value.shape, parent or rec.labels.origin.get(value), sweep)):
        return fit_to_shape(value, like, lead)


def _align(t: Node | None, x: Node, node: Node, lead: int) -> Node | None:
    """A batched tangent of a lower-rank operand, given length-1 axes after its
    basis axes, so that broadcasting lines it up with the other operands."""
    return None if t is None else align_after(t, lead, node.ndim)


def _or_zeros(node: Node | None, like: Node) -> Node:
    return zeros_like(like) if node is None else node


@gc_paused()
def vjp(outputs, wrt, cotangents) -> list[Node]:
    """Reverse mode: the cotangents pulled back through the outputs to each ``wrt``.

    Lists in, lists out. Returns, for each ``wrt``, the node
    ``sum_k cotangents[k] . d outputs[k] / d wrt`` (zeros when none depend on it).
    """
    outputs, _ = _as_list(outputs, "vjp", "outputs")
    wrt, _ = _as_list(wrt, "vjp")
    cots = _paired(cotangents, outputs, "vjp", "output(s)", "cotangent(s)")
    for o, c in zip(outputs, cots):
        if len(c.shape) != len(o.shape) or any(
            isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(c.shape, o.shape)
        ):
            raise ShapeError(f"vjp: cotangent shape {format_shape(c.shape)} does not match output shape "
                             f"{format_shape(o.shape)} at {user_location()}")
    _check_differentiable(wrt, "vjp")
    stable = stabilized(outputs, wrt)
    rec = Recorder(outputs + stable + cots)
    grads = reverse_sweep(stable, wrt, cots, rec)
    return rec.results([_or_zeros(grads.get(id(w)), w) for w in wrt])


def reverse_sweep(outputs, wrt, cots, rec: Recorder, lead: int = 0) -> dict[int, Node]:
    """Pull ``cots`` back from ``outputs``; returns {id(node): adjoint} for the nodes between,
    labelling what it builds in ``rec``.

    Cotangents may carry ``lead`` extra leading (basis) axes: every rule
    broadcasts over them, so one sweep computes many vjps at once.
    """
    between = _between(outputs, wrt)
    inside = {id(n) for n in between}
    wrt_ids = {id(w) for w in wrt}
    contributions: dict[int, list[Node]] = {}
    for o, c in zip(outputs, cots):
        if id(o) in inside:
            contributions.setdefault(id(o), []).append(_fit(c, o, lead, "vjp", rec))
    grads: dict[int, Node] = {}
    for node in reversed(between):
        parts = contributions.pop(id(node), None)
        if not parts:
            continue
        with rec.origin(("sum", node, len(parts))):
            g = parts[0]
            for p in parts[1:]:
                g = add(g, p)
        rec.about(g, "grad", node)
        grads[id(node)] = g
        if not node.inputs or (id(node) in wrt_ids and not any(id(i) in inside for i in node.inputs)):
            continue
        info = ("vjp", node, None)
        with rec.origin(info):
            cts = node.op.vjp(node, g)
        for i, (x, ct) in enumerate(zip(node.inputs, cts)):
            if ct is None or id(x) not in inside or x.dtype.kind != "f":
                continue
            if rec.labels.origin.get(ct) is info:  # built for this input alone: say which
                rec.labels.origin[ct] = ("vjp", node, i)
            contributions.setdefault(id(x), []).append(_fit(ct, x, lead, "vjp", rec, ("vjp", node, i)))
    return grads


@gc_paused()
def grad(cost, wrt, disconnected: str = "raise"):
    """The gradient of a scalar ``cost`` with respect to ``wrt`` (a node or a list), as new nodes.

    ``disconnected`` says what to return for a ``wrt`` the cost does not depend
    on: ``"raise"`` (a ValueError naming it), ``"zero"`` (zeros of its shape)
    or ``"none"`` (None). A ``wrt`` reached only through ``stop_gradient`` or
    comparisons is connected and gets zeros.
    """
    if disconnected not in ("raise", "zero", "none"):
        raise ValueError(f"grad: disconnected must be 'raise', 'zero' or 'none', got {disconnected!r}")
    if not isinstance(cost, Node):
        raise TypeError(f"grad: cost must be a graph node, got {type(cost).__name__}")
    if cost.shape != ():
        raise ValueError(f"grad: the cost must be a scalar node, but its shape is {format_shape(cost.shape)}; "
                         "reduce it first (for example with .sum() or .mean()), or use sg.vjp")
    wrt_list, single = _as_list(wrt, "grad")
    _check_differentiable(wrt_list, "grad")
    stable = stabilized([cost], wrt_list)
    seed = as_node(1.0, like=cost)
    rec = Recorder([cost, seed] + stable)
    grads = reverse_sweep(stable, wrt_list, [seed], rec)
    connected = {id(n) for n in topo_sort([cost])}
    found = []
    for w in wrt_list:
        g = grads.get(id(w))
        if g is None and id(w) not in connected:
            if disconnected == "raise":
                label = f"{w.op.name} {w.name!r}" if w.name else f"{w.op.name} node {format_shape(w.shape)}"
                raise ValueError(f"grad: the cost does not depend on {label}; "
                                 "pass disconnected='zero' or 'none' to allow this")
            g = zeros_like(w) if disconnected == "zero" else None
        elif g is None:
            g = zeros_like(w)
        found.append(g)
    found = rec.results(found)
    return found[0] if single else found


@gc_paused()
def jvp(outputs, wrt, tangents) -> list[Node]:
    """Forward mode: the tangents pushed forward from each ``wrt`` to the outputs.

    Lists in, lists out. Returns, for each output, the node
    ``sum_k d output / d wrt[k] . tangents[k]`` (zeros when it depends on none).
    """
    outputs, _ = _as_list(outputs, "jvp", "outputs")
    wrt, _ = _as_list(wrt, "jvp")
    tans = _paired(tangents, wrt, "jvp", "input(s)", "tangent(s)")
    _check_differentiable(wrt, "jvp")
    for w, t in zip(wrt, tans):
        try:
            broadcast_shapes(t.shape, w.shape)
        except ValueError:
            label = f" {w.name!r}" if w.name else ""
            raise ShapeError(f"jvp: tangent shape {format_shape(t.shape)} does not match the shape "
                             f"{format_shape(w.shape)} of {w.op.name}{label} at {user_location()}") from None
    stable = stabilized(outputs, wrt)
    rec = Recorder(outputs + stable + tans)
    tangent = forward_sweep(stable, wrt, tans, rec)
    return rec.results([_or_zeros(tangent.get(id(s)), o) for s, o in zip(stable, outputs)])


def forward_sweep(outputs, wrt, tans, rec: Recorder, lead: int = 0) -> dict[int, Node]:
    """Push ``tans`` forward from ``wrt``; returns {id(node): tangent} for the nodes between,
    labelling what it builds in ``rec``.

    Tangents may carry ``lead`` extra leading (basis) axes, as in :func:`reverse_sweep`.
    """
    tangent: dict[int, Node] = {id(w): _fit(t, w, lead, "jvp", rec) for w, t in zip(wrt, tans)}
    for node in _between(outputs, wrt):
        if id(node) in tangent:
            continue
        ts = [tangent.get(id(i)) if i.dtype.kind == "f" and pos not in node.op.shape_inputs else None
              for pos, i in enumerate(node.inputs)]
        if all(t is None for t in ts):
            continue
        with rec.origin(("jvp", node)):
            if lead and node.op.broadcasting:
                ts = [_align(t, x, node, lead) for t, x in zip(ts, node.inputs)]
            t = node.op.jvp(node, ts)
        if t is not None:
            t = _fit(t, node, lead, "jvp", rec)
            rec.about(t, "tangent", node)
            tangent[id(node)] = t
    return tangent
