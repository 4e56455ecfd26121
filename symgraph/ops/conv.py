"""Convolution and pooling over the last two axes, with PyTorch's layout and semantics.

``conv2d(x, w)``: x is N×C×H×W, w is O×(C/groups)×kH×kW, the result N×O×H'×W' (a
cross-correlation, as in PyTorch). Its two adjoints are ops of their own, and the three
are closed under differentiation, so a conv net's gradient can be differentiated again:

- ``conv_transpose2d(g, w)``, the adjoint in x (PyTorch's conv_transpose2d);
- ``conv2d_weight_grad(x, g)``, the adjoint in w (g correlated with x's windows).

All three are linear in each operand: with B(x, w, g) = <conv2d(x, w), g>, they are
B's partial derivatives, and each one's vjp and jvp is one of the three again.

``max_pool2d`` routes its gradient to each window's first maximum (``max_pool2d_grad``,
a scatter) and its tangent picks there (``max_pool2d_pick``, a gather): no one-hot arrays.
``avg_pool2d`` counts padding as zeros (PyTorch's count_include_pad=True); its adjoint is
``avg_pool2d_grad``. Max pooling pads with -inf, average pooling with zeros.

Attributes are stored normalized: ``stride`` and ``dilation`` as (rows, columns),
``padding`` as (top, bottom, left, right) (``"same"`` pads asymmetrically like PyTorch for
even kernels). Operands may carry extra leading axes (the basis axes of a Jacobian sweep),
which broadcast between them like matmul's batch axes.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..graph import Node, Op, apply, as_node
from ..shapes import broadcast_shapes, format_shape, numel
from .arith import add_opt
from .shape import ShapeOp, lead_of, reshape_to


# -- attribute normalization (the builders' arguments, checked like PyTorch checks them) ----------
def _pair(value, what: str, name: str, minimum: int) -> tuple[int, int]:
    items = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
                                  for v in items):
        raise ValueError(f"{what}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def _padding(value, what: str) -> tuple[int, int, int, int]:
    rows, cols = _pair(value, what, "padding", 0)
    return rows, rows, cols, cols


def _spatial(x: Node, op: Op, inputs, axes=(-2, -1)) -> tuple[int, ...]:
    dims = tuple(x.shape[a] for a in axes)
    if not all(isinstance(d, int) for d in dims):
        raise op.shape_error(inputs, f"the sizes {format_shape(dims)} must be static ints "
                                     "(only the batch dimension may be named)")
    return dims


def _out_size(size, kernel, stride, padding, dilation) -> tuple[int, int]:
    """(H', W'): how many windows fit along each of the two axes (PyTorch's formula, floor mode)."""
    out = []
    for n, k, s, before, after, d in zip(size, kernel, stride, padding[::2], padding[1::2], dilation):
        out.append((n + before + after - d * (k - 1) - 1) // s + 1)
    return tuple(out)


def _check_float(op: Op, inputs):
    if any(x.dtype.kind != "f" for x in inputs):
        raise op.dtype_error(inputs, f"{op.name} needs floating-point operands")


def _leads(op: Op, inputs, a: Node, b: Node, core_a: int, core_b: int) -> tuple:
    """The broadcast leading axes (beyond the core axes) of two operands."""
    if a.ndim < core_a or b.ndim < core_b:
        raise op.shape_error(inputs, f"expected operands with at least {core_a} and {core_b} dimensions")
    try:
        return broadcast_shapes(a.shape[: a.ndim - core_a], b.shape[: b.ndim - core_b])
    except ValueError as e:
        raise op.shape_error(inputs, f"leading dimensions cannot be broadcast ({e})") from None


def _same_dim(a, b) -> bool:
    return not (isinstance(a, int) and isinstance(b, int) and a != b)


# -- convolution ------------------------------------------------------------------------------
class _Conv(Op):
    """Base of the three convolution ops: the attributes they share and the text of their comments."""

    params = ("stride", "padding", "dilation", "groups")
    view_of, elementwise, writes_into = (), False, True  # a new array, or the plan's buffer: _conv2d(..., out=buf)

    def __init__(self, stride, padding, dilation, groups):
        self.stride, self.padding, self.dilation, self.groups = tuple(stride), tuple(padding), tuple(dilation), groups

    def kwargs(self) -> dict:
        """The helper's keyword arguments that differ from their defaults."""
        defaults = {"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1}
        return {k: getattr(self, k) for k in defaults if getattr(self, k) != defaults[k]}

    def detail(self, node) -> str:
        """What the generated line's comment says after the op: ``stride 1, padding 1``."""
        parts = [f"stride {_show(self.stride)}", f"padding {_show_padding(self.padding)}"]
        if self.dilation != (1, 1):
            parts.append(f"dilation {_show(self.dilation)}")
        if self.groups != 1:
            parts.append(f"groups {self.groups}")
        return ", ".join(parts)

    def _check_channels(self, inputs, c, o, cg):
        """c input channels, o output channels, w holding cg input channels per group."""
        g = self.groups
        if o % g:
            raise self.shape_error(inputs, f"{o} output channels do not split into {g} groups")
        if isinstance(c, int) and c != cg * g:
            raise self.shape_error(inputs, f"x has {c} channels but w expects {cg * g} "
                                           f"({cg} per group × {g} group{'s' if g > 1 else ''})")

    def cost(self, node, sizes, batch_shape, spatial_out, w: Node) -> int:
        """2 multiply-adds per tap: N·H'·W' windows × O outputs × C/groups·kH·kW taps."""
        return 2 * numel(batch_shape, sizes) * math.prod(spatial_out) * numel(w.shape[-4:], sizes)


def _show(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair}"


def _show_padding(p) -> str:
    if p[0] == p[1] == p[2] == p[3]:
        return str(p[0])
    if p[0] == p[1] and p[2] == p[3]:
        return f"({p[0]}, {p[2]})"
    return f"{p} (top, bottom, left, right)"


class Conv2D(_Conv):
    """conv2d(x, w[, b]): out[n, o, i, j] = sum over c, a, b of x_pad[n, c', i*s + a*d, j*s + b*d] * w[o, c, a, b]
    (+ b[o]) with c' = c + (o // (O/groups)) * C/groups (PyTorch's cross-correlation). Linear in each
    operand: vjp: (conv_transpose2d(g, w), conv2d_weight_grad(x, g), g summed over N, H', W');
    jvp: conv2d(tx, w) + conv2d(x, tw) + tb. The bias is added as the result is written: one pass."""

    name = "conv2d"

    def infer(self, x, w, b=None):
        inputs = [x, w] if b is None else [x, w, b]
        _check_float(self, inputs)
        lead = _leads(self, inputs, x, w, 4, 4)
        o, cg, kh, kw = _spatial(w, self, inputs, (-4, -3, -2, -1))
        c, h, wd = _spatial(x, self, inputs, (-3, -2, -1))
        self._check_channels(inputs, c, o, cg)
        ho, wo = _out_size((h, wd), (kh, kw), self.stride, self.padding, self.dilation)
        if ho < 1 or wo < 1:
            raise self.shape_error(inputs, f"the kernel {kh}×{kw} (dilation {_show(self.dilation)}) does not fit "
                                           f"the padded input {h + self.padding[0] + self.padding[1]}×"
                                           f"{wd + self.padding[2] + self.padding[3]}")
        if b is not None:
            if b.ndim < 1 or not _same_dim(b.shape[-1], o):
                raise self.shape_error(inputs, f"the bias must end in the {o} output channels")
            try:
                lead = broadcast_shapes(lead, b.shape[:-1])
            except ValueError as e:
                raise self.shape_error(inputs, f"leading dimensions cannot be broadcast ({e})") from None
        return lead + (x.shape[-4], o, ho, wo), np.result_type(*(v.dtype for v in inputs))

    def compute(self, x, w, b=None):
        return kernels._conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def vjp(self, node, g):
        x, w = node.inputs[:2]
        gx = apply(Conv2DTranspose(x.shape[-2:], self.stride, self.padding, self.dilation, self.groups), g, w)
        gw = apply(Conv2DWeightGrad(w.shape[-2:], self.stride, self.padding, self.dilation, self.groups), x, g)
        if len(node.inputs) == 2:
            return gx, gw
        from .reduce import reduce_sum

        return gx, gw, reduce_sum(g, axis=(-4, -2, -1))

    def jvp(self, node, t):
        x, w = node.inputs[:2]
        plain = Conv2D(self.stride, self.padding, self.dilation, self.groups)
        out = add_opt(None if t[0] is None else apply(plain, t[0], w), None if t[1] is None else apply(plain, x, t[1]))
        if len(t) == 2 or t[2] is None:
            return out
        from .shape import expand_dims

        tb = expand_dims(t[2], (-4, -2, -1))  # (..., O) -> (..., 1, O, 1, 1): the sweep broadcasts it
        return add_opt(out, tb)

    def flops(self, node, sizes):
        return self.cost(node, sizes, node.shape[:-3], node.shape[-2:], node.inputs[1])


class Conv2DTranspose(_Conv):
    """conv_transpose2d(g, w): the adjoint of conv2d in x, of size ``size`` (H, W): each entry of g
    spreads over its window through w. With B(x, w, g) = <conv2d(x, w), g> it is dB/dx, so
    vjp: (conv2d(c, w), conv2d_weight_grad(c, g)); jvp: conv_transpose2d(tg, w) + conv_transpose2d(g, tw)."""

    name = "conv_transpose2d"
    params = ("size",) + _Conv.params

    def __init__(self, size, stride, padding, dilation, groups):
        super().__init__(stride, padding, dilation, groups)
        self.size = tuple(size)

    def kwargs(self) -> dict:
        return {"size": self.size, **super().kwargs()}

    def infer(self, g, w):
        inputs = [g, w]
        _check_float(self, inputs)
        lead = _leads(self, inputs, g, w, 4, 4)
        o, cg, kh, kw = _spatial(w, self, inputs, (-4, -3, -2, -1))
        self._check_channels(inputs, None, o, cg)
        if not _same_dim(g.shape[-3], o):
            raise self.shape_error(inputs, f"g has {g.shape[-3]} channels but w has {o} output channels")
        windows = _out_size(self.size, (kh, kw), self.stride, self.padding, self.dilation)
        if any(not _same_dim(a, b) for a, b in zip(g.shape[-2:], windows)):
            raise self.shape_error(inputs, f"an input of size {self.size} has {windows} windows, "
                                           f"not {format_shape(g.shape[-2:])}")
        return lead + (g.shape[-4], cg * self.groups) + self.size, np.result_type(g.dtype, w.dtype)

    def compute(self, g, w):
        return kernels._conv_transpose2d(g, w, self.size, self.stride, self.padding, self.dilation, self.groups)

    def vjp(self, node, c):
        g, w = node.inputs
        forward = Conv2D(self.stride, self.padding, self.dilation, self.groups)
        weight = Conv2DWeightGrad(w.shape[-2:], self.stride, self.padding, self.dilation, self.groups)
        return apply(forward, c, w), apply(weight, c, g)

    def jvp(self, node, t):
        g, w = node.inputs
        tg, tw = t
        return add_opt(None if tg is None else apply(self, tg, w), None if tw is None else apply(self, g, tw))

    def flops(self, node, sizes):
        g, w = node.inputs  # (the leading axes of either operand: node.shape[:-3] is theirs and N)
        return self.cost(node, sizes, node.shape[:-3], g.shape[-2:], w)


class Conv2DWeightGrad(_Conv):
    """conv2d_weight_grad(x, g): the adjoint of conv2d in w, of kernel size ``kernel``: g correlated
    with x's windows, out[o, c, a, b] = sum over n, i, j of g[n, o, i, j] * x_pad[n, c', i*s + a*d, j*s + b*d].
    It is dB/dw for B(x, w, g) = <conv2d(x, w), g>, so vjp: (conv_transpose2d(g, c), conv2d(x, c));
    jvp: conv2d_weight_grad(tx, g) + conv2d_weight_grad(x, tg)."""

    name = "conv2d_weight_grad"
    params = ("kernel",) + _Conv.params

    def __init__(self, kernel, stride, padding, dilation, groups):
        super().__init__(stride, padding, dilation, groups)
        self.kernel = tuple(kernel)

    def kwargs(self) -> dict:
        return {"kernel": self.kernel, **super().kwargs()}

    def infer(self, x, g):
        inputs = [x, g]
        _check_float(self, inputs)
        lead = _leads(self, inputs, x, g, 4, 4)
        c, h, wd = _spatial(x, self, inputs, (-3, -2, -1))
        o = g.shape[-3]
        if not isinstance(o, int):
            raise self.shape_error(inputs, "the channels of g must be a static int")
        if c % self.groups:
            raise self.shape_error(inputs, f"{c} channels do not split into {self.groups} groups")
        self._check_channels(inputs, c, o, c // self.groups)
        windows = _out_size((h, wd), self.kernel, self.stride, self.padding, self.dilation)
        if not _same_dim(x.shape[-4], g.shape[-4]) or any(not _same_dim(a, b) for a, b in zip(g.shape[-2:], windows)):
            raise self.shape_error(inputs, f"g must be {format_shape((x.shape[-4], o) + windows)}: "
                                           f"x's batch, and the windows a {self.kernel} kernel has in x")
        return lead + (o, c // self.groups) + self.kernel, np.result_type(x.dtype, g.dtype)

    def compute(self, x, g):
        return kernels._conv2d_weight_grad(x, g, self.kernel, self.stride, self.padding, self.dilation, self.groups)

    def vjp(self, node, c):
        x, g = node.inputs
        back = Conv2DTranspose(x.shape[-2:], self.stride, self.padding, self.dilation, self.groups)
        forward = Conv2D(self.stride, self.padding, self.dilation, self.groups)
        return apply(back, g, c), apply(forward, x, c)

    def jvp(self, node, t):
        x, g = node.inputs
        tx, tg = t
        return add_opt(None if tx is None else apply(self, tx, g), None if tg is None else apply(self, x, tg))

    def flops(self, node, sizes):
        g = node.inputs[1]  # (the leading axes of either operand are node's, and N is g's)
        return self.cost(node, sizes, node.shape[:-4] + g.shape[-4:-3], g.shape[-2:], node)


# -- shared columns: what the code generator makes of a conv2d and its weight gradient -----------
class _FromColumns(_Conv):
    """Base of the ops codegen's conv_columns pass builds (never the differentiator). Those with a
    ``label`` stand for that op over an image x, reading x's columns instead: the variable is named
    like it, and comments show the node as ``conv2d(x, w, b)`` (see ``shown_as``)."""

    params = ("layout",) + _Conv.params
    differentiable = False

    def __init__(self, layout, stride, padding, dilation, groups):
        super().__init__(stride, padding, dilation, groups)
        self.layout = layout

    def kwargs(self) -> dict:
        return {"layout": self.layout}

    def vjp(self, node, cot):
        raise TypeError(f"{self.name} is built by the code generator after differentiation: "
                        f"differentiate the graph's {getattr(self, 'label', 'conv2d')} instead")

    jvp = vjp


def shown_as(node: Node) -> tuple | None:
    """(op name, inputs) a comment shows for a node reading an image's columns: the op it stands
    for, over the image; None for any other node."""
    if isinstance(node.op, _FromColumns) and hasattr(node.op, "label"):
        return node.op.label, (node.inputs[0].inputs[0],) + node.inputs[1:]
    return None


class ConvColumns(_FromColumns):
    """conv_columns(x): the windows of x (N, C, H, W) laid out as the columns of conv2d's matrix
    products (im2col), made once when a conv2d and its weight gradient both read x. ``layout``
    "flat" (stride 1): (N, groups, C/groups*kH*kW, L), each tap's column one run of the flattened
    padded rows, L = (H'-1)*Wp + W'; "batch": (groups, C/groups*kH*kW, H', W', N), the batch axis
    last (one product per group). Built by codegen's conv_columns pass, not by users."""

    name = "conv_columns"
    params = ("kernel",) + _FromColumns.params

    def __init__(self, kernel, layout, stride, padding, dilation, groups):
        super().__init__(layout, stride, padding, dilation, groups)
        self.kernel = tuple(kernel)
        if layout not in ("flat", "batch") or (layout == "flat" and self.stride != (1, 1)):
            raise ValueError(f"conv_columns: layout must be 'batch', or 'flat' with stride 1, got {layout!r} "
                             f"with stride {self.stride}")

    def kwargs(self) -> dict:
        return {"kernel": self.kernel, **_Conv.kwargs(self), "layout": self.layout}

    def detail(self, node) -> str:
        return f"im2col, kernel {_show(self.kernel)}, {super().detail(node)}, layout {self.layout!r}"

    def infer(self, x):
        _check_float(self, [x])
        if x.ndim != 4:
            raise self.shape_error([x], "expected an image batch N×C×H×W")
        c, h, wd = _spatial(x, self, [x], (-3, -2, -1))
        if c % self.groups:
            raise self.shape_error([x], f"{c} channels do not split into {self.groups} groups")
        ho, wo = _out_size((h, wd), self.kernel, self.stride, self.padding, self.dilation)
        if ho < 1 or wo < 1:
            raise self.shape_error([x], f"the kernel {self.kernel} does not fit the padded input")
        ckk = c // self.groups * self.kernel[0] * self.kernel[1]
        if self.layout == "flat":
            run = (ho - 1) * (wd + self.padding[2] + self.padding[3]) + wo
            return (x.shape[0], self.groups, ckk, run), x.dtype
        return (self.groups, ckk, ho, wo, x.shape[0]), x.dtype

    def compute(self, x):
        return kernels._conv_columns(x, self.kernel, self.stride, self.padding, self.dilation, self.groups, self.layout)

    def flops(self, node, sizes):
        return 0  # a copy


def _columns_shape(op: Op, inputs, cols: Node, windows) -> tuple:
    """(N, groups, C/groups·kH·kW) of columns in ``op.layout`` for (H', W') = windows; a ShapeError
    when the columns cannot hold those windows."""
    ho, wo = windows
    if op.layout == "flat" and cols.ndim == 4:  # (N, G, CKK, L), L = (H'-1)·Wp + W' with Wp >= W'
        run = cols.shape[3]
        fits = run == wo if ho == 1 else (run - wo) % (ho - 1) == 0 and run >= ho * wo
        if fits:
            return cols.shape[0], cols.shape[1], cols.shape[2]
    elif op.layout == "batch" and cols.ndim == 5 and tuple(cols.shape[2:4]) == (ho, wo):  # (G, CKK, H', W', N)
        return cols.shape[4], cols.shape[0], cols.shape[1]
    raise op.shape_error(inputs, f"the columns {format_shape(cols.shape)} do not hold {ho}×{wo} windows "
                                 f"in the {op.layout!r} layout")


class Conv2DFromColumns(_FromColumns):
    """conv2d_from_columns(cols, w[, b]): conv2d(x, w, b) from x's columns (``conv_columns(x)``, same
    attributes), (H', W') = ``windows``. Built by codegen's conv_columns pass, not by users."""

    name = "conv2d_from_columns"
    params = ("windows",) + _FromColumns.params
    label = "conv2d"

    def __init__(self, windows, layout, stride, padding, dilation, groups):
        super().__init__(layout, stride, padding, dilation, groups)
        self.windows = tuple(windows)

    def kwargs(self) -> dict:
        return {"layout": self.layout, "windows": self.windows}

    def infer(self, cols, w, b=None):
        inputs = [cols, w] if b is None else [cols, w, b]
        _check_float(self, inputs)
        n, groups, ckk = _columns_shape(self, inputs, cols, self.windows)
        o, cg, kh, kw = _spatial(w, self, inputs, (-4, -3, -2, -1)) if w.ndim == 4 else (1, 0, 0, 0)
        if w.ndim != 4 or o % groups or cg * kh * kw != ckk:
            raise self.shape_error(inputs, f"w must be O×C/groups×kH×kW with {ckk} = C/groups·kH·kW and O a "
                                           f"multiple of the {groups} groups")
        if b is not None and b.shape != (o,):
            raise self.shape_error(inputs, f"the bias must be ({o},)")
        return (n, o) + self.windows, np.result_type(*(v.dtype for v in inputs))

    def compute(self, cols, w, b=None):
        return kernels._conv2d_from_columns(cols, w, b, self.layout, self.windows)

    def flops(self, node, sizes):
        return self.cost(node, sizes, node.shape[:-3], self.windows, node.inputs[1])


class Conv2DWeightGradFromColumns(_FromColumns):
    """conv2d_weight_grad_from_columns(cols, g): conv2d_weight_grad(x, g) from x's columns
    (``conv_columns(x)``, same attributes). Built by codegen's conv_columns pass, not by users."""

    name = "conv2d_weight_grad_from_columns"
    params = ("kernel",) + _FromColumns.params
    label = "conv2d_weight_grad"

    def __init__(self, kernel, layout, stride, padding, dilation, groups):
        super().__init__(layout, stride, padding, dilation, groups)
        self.kernel = tuple(kernel)

    def kwargs(self) -> dict:
        return {"kernel": self.kernel, "layout": self.layout}

    def infer(self, cols, g):
        _check_float(self, [cols, g])
        if g.ndim != 4:
            raise self.shape_error([cols, g], "g must be N×O×H'×W'")
        n, groups, ckk = _columns_shape(self, [cols, g], cols, _spatial(g, self, [cols, g]))
        o, taps = g.shape[-3], self.kernel[0] * self.kernel[1]
        if not _same_dim(g.shape[0], n) or not isinstance(o, int) or o % groups or ckk % taps:
            raise self.shape_error([cols, g], f"g must be N×O×H'×W' with the columns' batch and O a multiple of the "
                                              f"{groups} groups, and {ckk} columns rows C/groups·{taps} taps")
        return (o, ckk // taps) + self.kernel, np.result_type(cols.dtype, g.dtype)

    def compute(self, cols, g):
        return kernels._conv2d_weight_grad_from_columns(cols, g, self.kernel, self.layout)

    def flops(self, node, sizes):
        g = node.inputs[1]
        return self.cost(node, sizes, g.shape[-4:-3], g.shape[-2:], node)


# -- pooling --------------------------------------------------------------------------------------
class _Pool(Op):
    """Base of the pooling ops: windows of the last two axes, ``kernel`` × ``stride`` × ``padding``."""

    params = ("kernel", "stride", "padding")
    view_of, elementwise, writes_into = (), False, True  # a new array, or the plan's buffer: _max_pool2d(..., out=buf)

    def __init__(self, kernel, stride, padding):
        self.kernel, self.stride, self.padding = tuple(kernel), tuple(stride), tuple(padding)

    def kwargs(self) -> dict:
        out = {"kernel": self.kernel, "stride": self.stride}
        if self.padding != (0, 0, 0, 0):
            out["padding"] = self.padding
        return out

    def detail(self, node) -> str:
        text = f"kernel {_show(self.kernel)}, stride {_show(self.stride)}"
        return text + (f", padding {_show_padding(self.padding)}" if any(self.padding) else "")

    def windows(self, x: Node, inputs) -> tuple[int, int]:
        """(H', W') for an input x (static H and W)."""
        size = _spatial(x, self, inputs)
        out = _out_size(size, self.kernel, self.stride, self.padding, (1, 1))
        if out[0] < 1 or out[1] < 1:
            raise self.shape_error(inputs, f"the window {self.kernel} does not fit the padded input "
                                           f"{size[0] + self.padding[0] + self.padding[1]}×"
                                           f"{size[1] + self.padding[2] + self.padding[3]}")
        return out

    def check_pooled(self, x: Node, y: Node, inputs) -> tuple:
        """The broadcast leading axes of x and of y, a value shaped like x pooled."""
        windows = self.windows(x, inputs)
        if y.ndim < 2 or any(not _same_dim(a, b) for a, b in zip(y.shape[-2:], windows)):
            raise self.shape_error(inputs, f"the second operand must end in the {windows} windows of the first")
        return _leads(self, inputs, x, y, 2, 2)

    def flops(self, node, sizes):
        return numel(node.shape, sizes) * self.kernel[0] * self.kernel[1]


class MaxPool2D(_Pool):
    """max_pool2d(x): the maximum of each window of x's last two axes (padding is -inf).
    vjp: max_pool2d_grad(x, g, max_pool2d(x)), g routed to each window's first maximum;
    jvp: max_pool2d_pick(x, t), t at each window's first maximum."""

    name = "max_pool2d"

    def infer(self, x):
        _check_float(self, [x])
        if x.ndim < 2:
            raise self.shape_error([x], "expected at least 2 dimensions")
        return x.shape[:-2] + self.windows(x, [x]), x.dtype

    def compute(self, x):
        return kernels._max_pool2d(x, self.kernel, self.stride, self.padding)

    def vjp(self, node, g):
        return (apply(MaxPool2DGrad(self.kernel, self.stride, self.padding), node.inputs[0], g, node),)

    def jvp(self, node, t):
        return apply(MaxPool2DPick(self.kernel, self.stride, self.padding), node.inputs[0], t[0])


class MaxPool2DPick(_Pool):
    """max_pool2d_pick(x, v): v's entry at the first maximum of each window of x (a gather; x only
    says where). Linear in v, constant in x: vjp: (None, max_pool2d_grad(x, c, max_pool2d(x)));
    jvp: max_pool2d_pick(x, tv)."""

    name = "max_pool2d_pick"
    writes_into = False  # (its helper makes a new array: no out= form)

    def infer(self, x, v):
        inputs = [x, v]
        _check_float(self, inputs)
        lead = _leads(self, inputs, x, v, 2, 2)
        if v.shape[-2:] != x.shape[-2:]:
            raise self.shape_error(inputs, "v must end in the same two dimensions as x")
        return lead + self.windows(x, inputs), v.dtype

    def compute(self, x, v):
        return kernels._max_pool2d_pick(x, v, self.kernel, self.stride, self.padding)

    def vjp(self, node, c):
        x = node.inputs[0]
        pooled = apply(MaxPool2D(self.kernel, self.stride, self.padding), x)
        return None, apply(MaxPool2DGrad(self.kernel, self.stride, self.padding), x, c, pooled)

    def jvp(self, node, t):
        return None if t[1] is None else apply(self, node.inputs[0], t[1])


class MaxPool2DGrad(_Pool):
    """max_pool2d_grad(x, g, pooled): zeros shaped like x with each entry of g added at the first
    maximum of its window (a scatter; x only says where, and ``pooled`` must be max_pool2d(x), which
    the forward pass has computed already). Linear in g, constant in x:
    vjp: (None, max_pool2d_pick(x, c), None); jvp: max_pool2d_grad(x, tg, pooled)."""

    name = "max_pool2d_grad"

    def infer(self, x, g, pooled):
        inputs = [x, g, pooled]
        _check_float(self, inputs)
        lead = self.check_pooled(x, g, inputs)
        if pooled.shape != x.shape[:-2] + self.windows(x, inputs):
            raise self.shape_error(inputs, "the third operand must be the first max-pooled")
        return lead + x.shape[-2:], g.dtype

    def compute(self, x, g, pooled):
        return kernels._max_pool2d_grad(x, g, pooled, self.kernel, self.stride, self.padding)

    def vjp(self, node, c):
        return None, apply(MaxPool2DPick(self.kernel, self.stride, self.padding), node.inputs[0], c), None

    def jvp(self, node, t):
        x, _, pooled = node.inputs
        return None if t[1] is None else apply(self, x, t[1], pooled)

    def flops(self, node, sizes):
        return numel(node.inputs[1].shape, sizes) * self.kernel[0] * self.kernel[1]


class AvgPool2D(_Pool):
    """avg_pool2d(x): the mean of each window of x's last two axes, padding counted as zeros
    (PyTorch's count_include_pad=True). Linear: vjp: avg_pool2d_grad(g); jvp: avg_pool2d(t)."""

    name = "avg_pool2d"

    def infer(self, x):
        _check_float(self, [x])
        if x.ndim < 2:
            raise self.shape_error([x], "expected at least 2 dimensions")
        return x.shape[:-2] + self.windows(x, [x]), x.dtype

    def compute(self, x):
        return kernels._avg_pool2d(x, self.kernel, self.stride, self.padding)

    def vjp(self, node, g):
        x = node.inputs[0]
        return (apply(AvgPool2DGrad(x.shape[-2:], self.kernel, self.stride, self.padding), g),)

    def jvp(self, node, t):
        return apply(self, t[0])


class AvgPool2DGrad(_Pool):
    """avg_pool2d_grad(g): each entry of g shared equally by the kH·kW places of its window, in an
    array whose last two axes are ``size``. The adjoint of avg_pool2d, linear:
    vjp: avg_pool2d(c); jvp: avg_pool2d_grad(t)."""

    name = "avg_pool2d_grad"
    params = ("size",) + _Pool.params

    def __init__(self, size, kernel, stride, padding):
        super().__init__(kernel, stride, padding)
        self.size = tuple(size)

    def kwargs(self) -> dict:
        return {"size": self.size, **super().kwargs()}

    def infer(self, g):
        _check_float(self, [g])
        windows = _out_size(self.size, self.kernel, self.stride, self.padding, (1, 1))
        if g.ndim < 2 or any(not _same_dim(a, b) for a, b in zip(g.shape[-2:], windows)):
            raise self.shape_error([g], f"an input of size {self.size} has {windows} windows")
        return g.shape[:-2] + self.size, g.dtype

    def compute(self, g):
        return kernels._avg_pool2d_grad(g, self.size, self.kernel, self.stride, self.padding)

    def vjp(self, node, c):
        return (apply(AvgPool2D(self.kernel, self.stride, self.padding), c),)

    def jvp(self, node, t):
        return apply(self, t[0])

    def flops(self, node, sizes):
        return numel(node.inputs[0].shape, sizes) * self.kernel[0] * self.kernel[1]


# -- flatten ----------------------------------------------------------------------------------------
class Flatten(ShapeOp):
    """flatten(x, start): x with its axes from ``start`` on merged into one (a reshape, a view where
    NumPy can). vjp: g reshaped back to x's shape; jvp: flatten(t) (past t's leading axes)."""

    name, params = "flatten", ("start",)

    def __init__(self, start: int):
        self.start = start

    def infer(self, x):
        if not 0 <= self.start < max(x.ndim, 1):
            raise self.shape_error([x], f"start_axis {self.start} is out of range for {x.ndim} dimension(s)")
        rest = x.shape[self.start:]
        size = math.prod(rest) if all(isinstance(d, int) for d in rest) else None
        return x.shape[: self.start] + (size,), x.dtype

    def compute(self, x):
        return x.reshape(x.shape[: self.start] + (math.prod(x.shape[self.start:]),))

    def vjp(self, node, g):
        return (reshape_to(g, node.inputs[0], lead_of(g, node)),)

    def jvp(self, node, t):
        lead = t[0].ndim - node.inputs[0].ndim
        return apply(Flatten(self.start + lead), t[0])


# -- builders ---------------------------------------------------------------------------------------
def conv2d(x, w, stride=1, padding=0, dilation=1, groups=1, *, bias=None) -> Node:
    """2-D convolution with PyTorch's layout and semantics (a cross-correlation).

    ``x`` is N×C×H×W, ``w`` is O×(C/groups)×kH×kW; the result is N×O×H'×W' with
    H' = (H + 2·padding - dilation·(kH - 1) - 1) // stride + 1. ``stride`` and ``dilation`` are
    an int or a pair; ``padding`` an int, a pair, ``"valid"`` (0) or ``"same"`` (H' = H, stride 1
    only; an even kernel pads one more row and column after than before, as PyTorch does).
    ``bias`` (O values, one per output channel) is added as the result is written.
    """
    x, w = as_node(x), as_node(w)
    b = None if bias is None else as_node(bias, like=x)
    stride, dilation = _pair(stride, "conv2d", "stride", 1), _pair(dilation, "conv2d", "dilation", 1)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if x.ndim != 4 or w.ndim != 4:
        from ..errors import ShapeError, user_location

        raise ShapeError(f"conv2d: x must be N×C×H×W and w O×(C/groups)×kH×kW, got x {format_shape(x.shape)} "
                         f"and w {format_shape(w.shape)} at {user_location()}")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"conv2d: padding='same' needs stride 1 (as in PyTorch), got stride {stride}")
            kernel = w.shape[-2:]
            if not all(isinstance(k, int) for k in kernel):
                raise ValueError(f"conv2d: padding='same' needs a static kernel size, got {format_shape(kernel)}")
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            padding = (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2)
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    else:
        padding = _padding(padding, "conv2d")
    return apply(Conv2D(stride, padding, dilation, int(groups)), x, w, *(() if b is None else (b,)))


def _pool_args(what, x, kernel, stride, padding):
    kernel = _pair(kernel, what, "kernel", 1)
    stride = kernel if stride is None else _pair(stride, what, "stride", 1)
    padding = _padding(padding, what)
    if padding[0] * 2 > kernel[0] or padding[2] * 2 > kernel[1]:
        raise ValueError(f"{what}: padding {padding[0], padding[2]} must be at most half the kernel {kernel} "
                         "(as in PyTorch)")
    if x.ndim not in (3, 4):
        from ..errors import ShapeError, user_location

        raise ShapeError(f"{what}: x must be N×C×H×W or C×H×W, got {format_shape(x.shape)} at {user_location()}")
    return kernel, stride, padding


def max_pool2d(x, kernel, stride=None, padding=0) -> Node:
    """Max pooling over the last two axes of x (N×C×H×W or C×H×W), PyTorch's semantics: ``stride``
    defaults to ``kernel``, padding (at most half the kernel) never wins. The gradient goes to
    each window's first maximum."""
    x = as_node(x)
    return apply(MaxPool2D(*_pool_args("max_pool2d", x, kernel, stride, padding)), x)


def avg_pool2d(x, kernel, stride=None, padding=0) -> Node:
    """Average pooling over the last two axes of x (N×C×H×W or C×H×W), PyTorch's semantics:
    ``stride`` defaults to ``kernel``; padding counts as zeros in the mean (count_include_pad=True)."""
    x = as_node(x)
    return apply(AvgPool2D(*_pool_args("avg_pool2d", x, kernel, stride, padding)), x)


def flatten(x, start_axis: int = 1) -> Node:
    """x with its axes from ``start_axis`` on merged into one: N×C×H×W -> N×(C·H·W) by default."""
    x = as_node(x)
    if not isinstance(start_axis, (int, np.integer)) or isinstance(start_axis, bool):
        raise TypeError(f"flatten: start_axis must be an int, got {start_axis!r}")
    start = int(start_axis) + x.ndim if start_axis < 0 else int(start_axis)
    if start == x.ndim - 1 and x.ndim:
        return x
    return apply(Flatten(start), x)
