"""The conv_columns pass: a conv2d and its weight gradient that read the same image share its columns.

In a training step, ``conv2d(x, w)`` and the gradient of its weight, ``conv2d_weight_grad(x, g)``,
both lay x's windows out as the columns of a matrix product (im2col): the largest copy a
convolution makes, made twice (and once more for each other conv2d of x with the same kernel
size and attributes). This pass makes it once, as a node of its own::

    conv_columns1 = _conv_columns(x, kernel=(5, 5), layout='flat', out=buf1)
    conv2d1 = _conv2d_from_columns(conv_columns1, p0, p1, layout='flat', windows=(24, 24), out=buf2)
    ...
    grad_p0 = _conv2d_weight_grad_from_columns(conv_columns1, grad_conv2d1, kernel=(5, 5), layout='flat', out=buf9)

The memory plan keeps the columns from the forward line to the backward one. Comments still
say ``conv2d(x, p0, p1)`` and ``vjp of conv2d(x, p0, p1) wrt p0``: the labels are carried over.

Memory pays for it: the columns live from the forward line to the weight gradient instead of
being made and dropped twice (LeNet at batch 64: a step's peak 8.3 -> 12.2 MiB). So only
images whose columns take at most 256 KiB each are shared (67 KiB for LeNet's first layer;
2.4 MiB for 64 channels of 32×32 under a 3×3 kernel, which is left as it was).

The layout follows the sizes: "flat" (stride 1, at least 256 windows an image and a small weight:
one product per image over runs of whole padded rows, as ``_conv2d`` does) or "batch" (the batch
axis last: one product per group, better when each image has few windows). It runs after the
simplifier, on what the code generator prints, and never changes a value.
"""

from __future__ import annotations

from symgraph.graph import Node, topo_sort
from symgraph.ops import Conv2D, Conv2DFromColumns, Conv2DWeightGrad, Conv2DWeightGradFromColumns, ConvColumns
from symgraph.provenance import Labels

FLAT_WINDOWS = 256  # windows an image needs for the per-image ("flat") products to pay
FLAT_WEIGHT = 512  # the most weight entries a group's per-image product handles well (OpenBLAS's small kernels)
MAX_COLUMNS_PER_IMAGE = 256 * 1024  # bytes: larger columns are made twice rather than held through the step


def _key(node: Node):
    """(x, kernel, stride, padding, dilation, groups) of a plain 4-d conv2d or weight gradient, else None."""
    op, x = node.op, node.inputs[0] if node.inputs else None
    if type(op) is Conv2D:
        kernel = node.inputs[1].shape[-2:]
        plain = all(i.ndim == 4 for i in node.inputs[:2]) and (len(node.inputs) == 2 or node.inputs[2].ndim == 1)
    elif type(op) is Conv2DWeightGrad:
        kernel, plain = op.kernel, x.ndim == 4 and node.inputs[1].ndim == 4
    else:
        return None
    return (id(x), tuple(kernel), op.stride, op.padding, op.dilation, op.groups) if plain else None


def _columns_per_image(conv: Node) -> int:
    """Bytes of one image's columns (the "batch" layout's; the "flat" one's are a little larger)."""
    o, cg, kh, kw = conv.inputs[1].shape
    ho, wo = conv.shape[-2:]
    return conv.op.groups * cg * kh * kw * ho * wo * conv.dtype.itemsize


def _layout(conv: Node) -> str:
    op, w = conv.op, conv.inputs[1]
    ho, wo = conv.shape[-2:]
    o, cg, kh, kw = w.shape
    small = o // op.groups * cg * kh * kw <= FLAT_WEIGHT
    return "flat" if op.stride == (1, 1) and ho * wo >= FLAT_WINDOWS and small else "batch"


def _node(op, inputs: tuple, serial, like: Node | None = None) -> Node:
    """A node of ``op`` over ``inputs`` at ``serial`` (a replaced node's: the order stays the user's),
    carrying ``like``'s name and labels; its shape and dtype from ``op``'s rule."""
    shape, dtype = op.infer(*inputs)
    if like is None:
        return Node(op, inputs, shape, dtype, serial)
    node = Node(op, inputs, shape, dtype, serial, like.labels, like._name)
    node.is_copy = like.is_copy
    return node


def _same(node: Node, inputs: tuple) -> Node:
    """``node`` over new inputs (same op, shape, dtype, place and name)."""
    new = Node(node.op, inputs, node.shape, node.dtype, node.serial, node.labels, node._name)
    new.is_copy = node.is_copy
    return new


def share_columns(nodes: list[Node], labels: Labels) -> tuple[list[Node], Labels]:
    """``nodes`` with the conv2d nodes and weight gradients that read the same image with the same
    attributes (at least two of them, one a conv2d) rewritten to share that image's columns (see the
    module's docstring), and labels that say of the new nodes what they said of those they replace.
    Nothing to share: the same nodes and labels."""
    order = topo_sort(nodes)
    keys = {id(n): _key(n) for n in order}
    groups: dict = {}
    for n in order:
        if keys[id(n)] is not None:
            groups.setdefault(keys[id(n)], []).append(n)
    first_conv = {}  # key -> the group's first conv2d: its sizes choose the layout
    for key, group in groups.items():
        conv = next((n for n in group if type(n.op) is Conv2D), None)
        if conv is not None and len(group) > 1 and _columns_per_image(conv) <= MAX_COLUMNS_PER_IMAGE:
            first_conv[key] = conv
    if not first_conv:
        return nodes, labels
    labels = labels.copy()
    new: dict[int, Node] = {}
    columns: dict = {}  # key -> the columns node, made just before the group's first member
    shadows: dict[Node, Node] = {}  # replaced node -> its own op over the new inputs: what labels call it
    for n in order:
        inputs = tuple(new.get(id(i), i) for i in n.inputs)
        key = keys[id(n)]
        if key not in first_conv:
            if inputs != n.inputs:
                new[id(n)] = _same(n, inputs)
            continue
        op, layout = n.op, _layout(first_conv[key])
        geometry = (layout, op.stride, op.padding, op.dilation, op.groups)
        if key not in columns:
            columns[key] = _node(ConvColumns(key[1], *geometry), inputs[:1], n.serial - 0.5)
        if type(op) is Conv2D:
            rule = Conv2DFromColumns(n.shape[-2:], *geometry)
        else:
            rule = Conv2DWeightGradFromColumns(op.kernel, *geometry)
        new[id(n)] = _node(rule, (columns[key],) + inputs[1:], n.serial, n)
        shadows[n] = _same(n, inputs)
    for old in order:
        if id(old) in new:
            for table in (labels.about, labels.origin, labels.rules, labels.names, labels.jacobians):
                if old in table:
                    table.setdefault(new[id(old)], table[old])
    outputs = [new.get(id(n), n) for n in nodes]
    for node in topo_sort(outputs):  # a derivative's rule names the replaced node over the new inputs
        if node in labels.origin:
            labels.origin[node] = _remap(labels.origin[node], shadows)
    labels.repoint(outputs, {id(old): (old, new[id(old)]) for old in order if id(old) in new})
    return outputs, labels


def _remap(info, shadows: dict):
    """A label's value (a node, or a tuple of them and other values) with the replaced nodes' shadows."""
    if isinstance(info, Node):
        return shadows.get(info, info)
    if isinstance(info, tuple):
        return tuple(_remap(x, shadows) for x in info)
    return info
