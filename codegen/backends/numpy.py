"""The NumPy backend: its printer (one ``_print_<Op>`` method per op, ``_out_<Op>`` for the ops
that can write into a buffer), its scalar printer, imports, header, helper kernels and array type.

A new backend (CuPy, ...) is one module like this one, registered in
:mod:`codegen.backends`; it usually subclasses :class:`NumPyPrinter` and overrides the
array module and the elementwise kernels, little else.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

import numpy as np
import sympy as sp

from symgraph import kernels
from symgraph.ops.shape import index_expr
from symgraph.shapes import broadcast_shapes

from .. import checks
from ..lowering import Blocks, Leaf, Lowered, Op
from ..printer import ATOM, COMPARE, POWER, SUM, TERM, UNARY, Call, Code, Printer
from . import scalar

# The printer's precedence levels in SymPy's scale (sympy.printing.precedence.PRECEDENCE).
_SYMPY_LEVEL = {POWER: 60, UNARY: 50, TERM: 50, SUM: 40, COMPARE: 35}

_SCALAR_UFUNCS = {"exp": "exp", "log": "log", "sqrt": "sqrt", "tanh": "tanh", "sin": "sin", "cos": "cos",
                  "Abs": "absolute", "Softplus": "logaddexp", "Sigmoid": "sigmoid"}


def _is_step(expr) -> bool:
    """Heaviside(x, 0): 1 where x > 0, else 0."""
    return isinstance(expr, sp.Heaviside) and len(expr.args) == 2 and expr.args[1] == 0


@functools.lru_cache(maxsize=4096)
def _loses_shape(expr, symbols: tuple) -> bool:
    """Whether the expression leaves out an argument, so that its value alone would lose the broadcast shape."""
    return bool(set(symbols) - expr.free_symbols)


@functools.lru_cache(maxsize=4096)  # ops are shared by many nodes: decompose each expression once
def _ufunc_form(expr, symbols: tuple):
    """(ufunc name, operand expressions) for the outermost operation of ``expr``, or None (also when
    the expression alone would lose the broadcast shape: an argument it does not use)."""
    if _loses_shape(expr, symbols):
        return None
    if isinstance(expr, (sp.Add, sp.Mul)) and len(expr.args) >= 2:
        first, *rest = expr.args
        if isinstance(expr, sp.Mul):
            over = [f.base for f in expr.args if isinstance(f, sp.Pow) and f.exp == -1]
            times = [f for f in expr.args if not (isinstance(f, sp.Pow) and f.exp == -1)]
            if over and times:  # a / b, not a * b**-1
                return "divide", (sp.Mul(*times, evaluate=False), sp.Mul(*over, evaluate=False))
            return "multiply", (first, sp.Mul(*rest, evaluate=False))
        second = sp.Add(*rest, evaluate=False)
        negated = -second if second.could_extract_minus_sign() else None
        return ("subtract", (first, negated)) if negated is not None else ("add", (first, second))
    if isinstance(expr, sp.Pow) and expr.exp == 2:
        return "square", (expr.base,)
    if isinstance(expr, sp.Max) and len(expr.args) == 2:
        return "maximum", tuple(sorted(expr.args, key=lambda a: a.is_Number))
    if isinstance(expr, sp.Function) and len(expr.args) == 1 and type(expr).__name__ in _SCALAR_UFUNCS:
        return _SCALAR_UFUNCS[type(expr).__name__], (expr.args[0],)
    return None


def _index_text(index, leading: bool = False) -> str:
    """``[:, 0]``-style text for a normalized index, dropping trailing full
    slices; with ``leading``, the index applies after leading axes (``..., 0, :``)."""
    parts = list(index_expr(index))
    while parts and parts[-1] == slice(None) and not leading:
        parts.pop()
    out = []
    for p in parts:
        if isinstance(p, int):
            out.append(str(p))
        else:
            text = ":".join("" if v is None else str(v) for v in (p.start, p.stop))
            out.append(text + ("" if p.step is None else f":{p.step}"))
    return ", ".join((["..."] if leading else []) + out) or "..."


def _shape_of(like: Code, lead: tuple) -> str:
    """Text for ``lead + like.shape``."""
    if like.dims is not None:
        return _tuple_text(tuple(str(d) for d in lead) + like.dims)
    text = like.text if like.prec >= ATOM else f"({like.text})"
    return f"{lead!r} + {text}.shape" if lead else f"{text}.shape"


def _tuple_text(items) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _axis_text(axes, ndim: int) -> str:
    pos = [a + ndim for a in axes]
    return str(pos[0]) if len(pos) == 1 else str(tuple(pos))


class NumPyPrinter(Printer):
    """Prints nodes as NumPy expressions; ``module`` is the array module's name."""

    module = "np"
    scalar_printer = scalar.ScalarPrinter  # SymPy expressions of elementwise ops -> code
    # a lowered expression over a large array of static shape runs its calls on blocks of rows of
    # about this many bytes, which stay in cache between the calls (None: never; see Blocks). For
    # NumPy arrays only (module "np"): on a GPU each block's call would be a kernel launch
    block_bytes = 256 * 1024

    # w -= a @ b as one GEMM into w (the helper _gemm_update: NumPy's own BLAS through ctypes) for
    # matrices of at least this many entries: the product's array and the pass that subtracts it
    # cost more than the call (a few microseconds); None: never
    gemm_fold_entries = 16384

    def folds_gemm(self, step) -> bool:
        if self.gemm_fold_entries is None or self.module != "np" or type(step.op).__name__ != "MatMul":
            return False
        a, b = step.inputs
        return (a.ndim == b.ndim == 2 and a.dtype == b.dtype == step.dtype and step.dtype.name in ("float32", "float64")
                and all(isinstance(d, int) for d in step.shape) and int(np.prod(step.shape)) >= self.gemm_fold_entries)

    def gemm_update(self, w: str, a: str, b: str, alpha: str) -> str:
        self.helpers |= {"_gemm_update", "_blas_layout", "_blas_gemm"}
        return f"_gemm_update({w}, {a}, {b}, {alpha})"

    def dtype(self, dtype) -> str:
        dtype = np.dtype(dtype)
        return f"{self.module}.bool_" if dtype.kind == "b" else f"{self.module}.{dtype.name}"

    def obj(self, code: Code, node=None) -> str:
        """Text for ``code`` used before ``.method`` or ``[index]``."""
        if code.literal:
            return f"{self.dtype(node.dtype if node is not None else np.float64)}({code.text})"
        return self.wrap(code, ATOM)

    def array(self, code: Code, node) -> str:
        """Text for an argument a helper reads as an array (a literal becomes a typed NumPy scalar)."""
        return self.obj(code, node) if code.literal else code.text

    def literal(self, value: np.ndarray, weak: bool) -> Code:
        """A scalar constant: a Python literal when weak, else a typed NumPy scalar."""
        v = value[()]
        if value.dtype.kind == "b":
            return Code(str(bool(v)))
        if value.dtype.kind == "f" and not np.isfinite(v):
            text = f"{self.module}.nan" if np.isnan(v) else f"{self.module}.inf"
            text = "-" + text if v < 0 else text
        else:
            text = str(v) if value.dtype.kind == "f" else str(int(v))
        if not weak:
            return Code(f"{self.dtype(value.dtype)}({text})")
        return Code(text, UNARY if text.startswith("-") else ATOM, literal=True)

    # -- writing into a preallocated buffer (ops that declare ``writes_into``) -----------
    def _ufunc(self, name: str, *args: Code) -> Call:
        return Call(f"{self.module}.{name}", tuple(a.text for a in args))

    def _out_Add(self, node, a, b):
        return self._ufunc("add", a, b)

    def _out_Subtract(self, node, a, b):
        return self._ufunc("subtract", a, b)

    def _out_Multiply(self, node, a, b):
        return self._ufunc("multiply", a, b)

    def _out_Divide(self, node, a, b):
        return self._ufunc("divide", a, b)

    def _out_Power(self, node, a, b):
        return self._ufunc("square", a) if b.text in ("2", "2.0") else self._ufunc("power", a, b)

    def _out_Maximum(self, node, a, b):
        return self._ufunc("maximum", a, b)

    def _out_Minimum(self, node, a, b):
        return self._ufunc("minimum", a, b)

    def _out_Negative(self, node, a):
        return self._ufunc("negative", a)

    def _out_MatMul(self, node, a, b):
        if a.literal or b.literal:
            return None
        # np.dot dispatches faster than np.matmul for matrices and vectors (same BLAS call)
        return self._ufunc("dot" if max(i.ndim for i in node.inputs) <= 2 else "matmul", a, b)

    def _out_AddAt(self, node, x, values, labels):
        """Adds in place when the buffer is x's own."""
        self.helpers.add("_add_at")
        return Call("_add_at", (x.text, self.array(values, node), labels.text))

    def _out_Sum(self, node, x):
        if x.literal:
            return None
        source = node.inputs[0]
        if source.ndim == 2 and node.op.axes == (-2,) and not node.op.keepdims and self.constant_array:
            # column sums as a matrix-vector product: several times faster than a reduction
            ones = self.constant_array("ones", source.shape[:1], source.dtype)
            return Call(f"{self.module}.dot", (ones, x.text))
        keep = ("keepdims=True",) if node.op.keepdims else ()
        return Call(f"{self.module}.add.reduce", (x.text, f"axis={self._axis(node)}", *keep))

    def _out_Elementwise(self, node, *args):
        """An elementwise expression as ufunc calls writing into buffers (:mod:`codegen.lowering`)
        when it takes more than one; else, when its outermost operation is a ufunc, as that ufunc
        writing into the buffer: ``np.maximum(add1, zeros_batch_8, out=buf)``."""
        op = node.op
        lowered = _Lowering(self, node, args).lowered()
        if lowered is not None:
            return lowered
        split = _ufunc_form(op.expr, op.symbols)
        if split is None:
            return None
        fn, operands = split
        if fn == "maximum" and operands[1] == 0 and self.constant_array:  # relu, against an array of zeros
            x = self._expression(operands[0], op.symbols, args)
            if x is not None:
                return Call(f"{self.module}.maximum", (x, self.constant_array("zeros", node.shape, node.dtype)))
        texts = []
        for operand in operands:
            if fn == "multiply" and _is_step(operand):  # a 0/1 factor: the comparison, cast by the ufunc
                text = self._positive(operand.args[0], node, args)
            else:
                text = self._expression(operand, op.symbols, args)
            if text is None:
                return None
            texts.append(text)
        if fn == "sigmoid":
            self.helpers.add("_sigmoid")
            return Call("_sigmoid", tuple(texts))
        if fn == "logaddexp":  # softplus(x) = log(exp(0) + exp(x)), against an array of zeros if it can
            zeros = self.constant_array("zeros", node.shape, node.dtype) if self.constant_array else "0.0"
            texts.insert(0, zeros)
        return Call(f"{self.module}.{fn}", tuple(texts))

    def _positive(self, expr, node, args: list[Code]) -> str | None:
        """``expr > 0`` as np.greater, against an array of zeros when ``expr`` is an input of the
        node's shape (a comparison with a broadcast scalar is slower)."""
        text = self._expression(sp.StrictGreaterThan(expr, 0), node.op.symbols, args)
        if text is not None and expr in node.op.symbols and self.constant_array is not None:
            source = node.inputs[node.op.symbols.index(expr)]
            if source.shape == node.shape and source.dtype == node.dtype:
                zeros = self.constant_array("zeros", node.shape, node.dtype)
                text = f"{self.module}.greater({args[node.op.symbols.index(expr)].text}, {zeros})"
        return text

    def _expression(self, expr, symbols, args: list[Code]) -> str | None:
        """``expr`` over ``symbols`` printed with ``args`` substituted; None if it would need
        shared subexpressions of its own."""
        levels = tuple(_SYMPY_LEVEL[a.prec] if a.prec < ATOM else None for a in args)
        shared, _, templates = scalar.templates(expr, symbols, levels, self.module, self.scalar_printer)
        if shared:
            return None
        self.helpers |= scalar.helpers_used(expr)
        return scalar.fill(templates[-1], [a.text for a in args])

    def upload(self, host: str) -> str:
        """Code for a module-level constant from NumPy code (the device is the host here)."""
        return host

    def _axis(self, node) -> str:
        ndim = node.inputs[0].ndim
        return "None" if len(node.op.axes) == ndim else _axis_text(node.op.axes, ndim)

    # -- leaves ------------------------------------------------------------------
    def _print_Placeholder(self, node):
        raise AssertionError("leaves print as their variable names")

    _print_Parameter = _print_Constant = _print_Placeholder

    # -- arithmetic --------------------------------------------------------------
    def _print_Add(self, node, a, b):
        return self.binary(a, "+", b, SUM)

    def _print_Subtract(self, node, a, b):
        return self.binary(a, "-", b, SUM)

    def _print_Multiply(self, node, a, b):
        return self.binary(a, "*", b, TERM)

    def _print_Divide(self, node, a, b):
        return self.binary(a, "/", b, TERM)

    def _print_Power(self, node, a, b):
        return self.binary(a, "**", b, POWER, right_assoc=True)

    def _print_Negative(self, node, a):
        return Code(f"-{self.wrap(a, UNARY)}", UNARY)

    def _print_MatMul(self, node, a, b):
        return self.binary(a, "@", b, TERM)

    def _print_Maximum(self, node, a, b):
        return self.call(f"{self.module}.maximum", a.text, b.text)

    def _print_Minimum(self, node, a, b):
        return self.call(f"{self.module}.minimum", a.text, b.text)

    def _compare(self, node, a, b):
        # comparisons chain in Python (a < b == c), so neither side may be a bare comparison
        return Code(f"{self.wrap(a, COMPARE + 1)} {node.op.symbol} {self.wrap(b, COMPARE + 1)}", COMPARE)

    _print_Less = _print_LessEqual = _print_Greater = _print_GreaterEqual = _compare
    _print_Equal = _print_NotEqual = _compare

    def _print_Where(self, node, c, a, b):
        if a.literal and b.literal:  # np.where of two Python numbers would be float64/int64
            return self.call(f"{self.module}.where", c.text, self.obj(a, node), b.text)
        return self.call(f"{self.module}.where", c.text, a.text, b.text)

    def _print_Cast(self, node, x):
        return Code(f"{self.obj(x, node.inputs[0])}.astype({self.dtype(node.dtype)})")

    def _print_StopGradient(self, node, x):
        return x

    def _print_Elementwise(self, node, *args):
        """A SymPy expression; subexpressions SymPy's cse finds repeated get their own statements."""
        symbols = node.op.symbols
        levels = tuple(_SYMPY_LEVEL[a.prec] if a.prec < ATOM else None for a in args)
        shared, expr, templates = scalar.templates(node.op.expr, symbols, levels, self.module, self.scalar_printer)
        self.helpers |= scalar.helpers_used(node.op.expr)
        texts = [a.text for a in args]
        for sym, template in zip((s for s, _ in shared), templates[:-1]):
            name = self.temp_name()
            self.pending.append((name, scalar.fill(template, texts)))
            texts.append(name)
        text = scalar.fill(templates[-1], texts)
        if _loses_shape(node.op.expr, node.op.symbols):
            shapes = ", ".join(f"{self.module}.shape({a.text})" for a in args)
            text = (f"{self.module}.broadcast_to({text}, {self.module}.broadcast_shapes({shapes}))"
                    f".astype({self.dtype(node.dtype)})")
            return Code(text)
        prec = ATOM if (expr.is_Function or expr.is_Symbol) else SUM if expr.is_Add else TERM if expr.is_Mul else UNARY
        return Code(text, prec)

    # -- shapes ------------------------------------------------------------------
    def _print_Transpose(self, node, x):
        ndim = node.ndim
        if ndim == 2 and node.op.axes == (1, 0):
            return Code(f"{self.obj(x, node)}.T")
        if node.op.axes == (1, 0):
            return self.call(f"{self.module}.swapaxes", x.text, "-1", "-2")
        return self.call(f"{self.module}.transpose", x.text, str(node.op.full_axes(ndim)))

    def _print_Reshape(self, node, x, like=None):
        shape = _shape_of(like, node.op.lead) if node.op.shape is None else str(node.op.shape)
        return Code(f"{self.obj(x, node)}.reshape({shape})")

    def _print_BroadcastTo(self, node, x, like=None):
        shape = _shape_of(like, node.op.lead) if node.op.shape is None else str(node.op.shape)
        # a Python number would broadcast as int64/float64: typed (np.float32(0.0)) it keeps the node's dtype
        return self.call(f"{self.module}.broadcast_to", self.array(x, node), shape)

    def _print_ExpandDims(self, node, x):
        first = min(node.op.axes)
        parts = ["None" if a in node.op.axes else ":" for a in range(first, 0)]
        return Code(f"{self.obj(x, node)}[..., {', '.join(parts)}]")

    def _print_Squeeze(self, node, x):
        first = min(node.op.axes)
        parts = ["0" if a in node.op.axes else ":" for a in range(first, 0)]
        return Code(f"{self.obj(x, node)}[..., {', '.join(parts)}]")

    def _print_GetItem(self, node, x):
        leading = node.inputs[0].ndim > len(node.op.index)
        return Code(f"{self.obj(x, node)}[{_index_text(node.op.index, leading)}]")

    def _print_Embed(self, node, values, like):
        index = f"{self.module}.s_[{_index_text(node.op.index, bool(node.op.lead))}]"
        return self.helper("_embed", self.array(values, node), _shape_of(like, node.op.lead), index)

    def _print_Concatenate(self, node, *xs):
        items = ", ".join(x.text for x in xs)
        return self.call(f"{self.module}.concatenate", f"[{items}]", f"axis={node.op.axis + node.ndim}")

    def _print_Basis(self, node):
        n, shape = node.shape[0], node.op.shape
        eye = f"{self.module}.eye({n}, dtype={self.dtype(node.dtype)})"
        return Code(eye if shape == (n,) else f"{eye}.reshape({(n,) + shape})")

    # -- reductions --------------------------------------------------------------
    def _reduce(self, node, x, ufunc: str) -> Code:
        """``np.<ufunc>.reduce``: what ``x.sum()`` and ``x.max()`` call, without their Python wrapper."""
        keep = ", keepdims=True" if node.op.keepdims else ""
        return Code(f"{self.module}.{ufunc}.reduce({self.array(x, node)}, axis={self._axis(node)}{keep})")

    def _print_Sum(self, node, x):
        return self._reduce(node, x, "add")

    def _print_Mean(self, node, x):
        if node.inputs[0].dtype == np.float16:  # np.mean accumulates float16 in float32
            keep = ", keepdims=True" if node.op.keepdims else ""
            return Code(f"{self.obj(x, node)}.mean(axis={self._axis(node)}{keep})")
        return self.binary(self._reduce(node, x, "add"), "/", self._count(node.inputs[0], x, node.op.axes), TERM)

    def _print_Max(self, node, x):
        return self._reduce(node, x, "maximum")

    def _print_LogSumExp(self, node, x):
        keep = ", keepdims=True" if node.op.keepdims else ""
        return self.helper("_logsumexp", self.array(x, node), f"axis={self._axis(node)}{keep}")

    def _print_Softmax(self, node, x):
        return self.helper("_softmax", self.array(x, node), f"axis={node.op.axis}")

    def _print_LogSoftmax(self, node, x):
        return self.helper("_log_softmax", self.array(x, node), f"axis={node.op.axis}")

    def _print_Count(self, node, x):
        """A typed scalar, like the node: dividing by a count of zero (an empty batch) gives inf, not an error."""
        count = self._count(node.inputs[0], x, node.op.axes)
        return count if count.literal else self.call(self.dtype(node.dtype), count.text)

    def _count(self, source, x: Code, axes) -> Code:
        """The number of elements of ``source`` (printed as ``x``) along ``axes``."""
        ndim = source.ndim
        if all(isinstance(source.shape[a], int) for a in axes):
            return Code(str(int(np.prod([source.shape[a] for a in axes], dtype=np.int64))), literal=True)
        if x.dims is not None:
            dims = [x.dims[a] for a in axes]
        elif len(axes) == ndim:
            return Code(f"{self.obj(x)}.size")
        else:
            dims = [f"{self.obj(x)}.shape[{a + ndim}]" for a in axes]
        return Code(" * ".join(dims), TERM if len(dims) > 1 else ATOM)

    # -- issue 16 (redops): min, prod, argmax/argmin, logaddexp --------------------------------
    def _print_Min(self, node, x):
        return self._reduce(node, x, "minimum")

    def _print_Prod(self, node, x):
        return self._reduce(node, x, "multiply")

    def _print_ArgMax(self, node, x, fn="argmax"):
        axis = "None" if node.op.axis is None else str(node.op.axis + node.inputs[0].ndim)
        keep = ", keepdims=True" if node.op.keepdims else ""
        return Code(f"{self.module}.{fn}({self.array(x, node.inputs[0])}, axis={axis}{keep})")

    def _print_ArgMin(self, node, x):
        return self._print_ArgMax(node, x, "argmin")

    def _print_LogAddExp(self, node, a, b):
        return self.call(f"{self.module}.logaddexp", a.text, b.text)

    # -- issue 16 (redops): cumulative and ordering ops ------------------------------------------
    def _print_CumSum(self, node, x):
        axis = str(node.op.axis + node.ndim)
        if not node.op.reverse:
            return self.call(f"{self.module}.cumsum", self.array(x, node), f"axis={axis}")
        flipped = f"{self.module}.flip({self.array(x, node)}, {axis})"
        return self.call(f"{self.module}.flip", f"{self.module}.cumsum({flipped}, axis={axis})", axis)

    def _print_CumProd(self, node, x):
        return self.call(f"{self.module}.cumprod", self.array(x, node), f"axis={node.op.axis + node.ndim}")

    def _print_ArgSort(self, node, x):
        return self.call(f"{self.module}.argsort", self.array(x, node.inputs[0]), f"axis={node.op.axis + node.ndim}",
                         'kind="stable"')

    def _print_PermuteAlong(self, node, x, perm):
        return self.helper("_take_along", self.array(x, node), perm.text, str(node.op.axis))

    def _print_RandomUniform(self, node, key, like):
        return self.helper("_uniform", key.text, _shape_of(like, ()), self.dtype(node.dtype))

    # -- labels ------------------------------------------------------------------
    def _print_OneHot(self, node, labels):
        return self.helper("_one_hot", labels.text, str(node.op.num_classes), self.dtype(node.dtype))

    def _print_Pick(self, node, x, labels):
        return self.helper("_pick", self.array(x, node), labels.text)

    def _print_AddAt(self, node, x, values, labels):
        return self.helper("_add_at", x.text, self.array(values, node), labels.text)

    def _print_Unpick(self, node, values, labels):
        return self.helper("_unpick", self.array(values, node), labels.text, str(node.op.num_classes))


    # -- convolution and pooling: helpers over windows, one matrix product per group -----------
    def _windowed_call(self, node, name: str, *args: Code) -> Call:
        """A call of helper ``name`` (and of the helpers it calls) with the op's attributes as keywords;
        as ``_out_<Op>``, the line's buffer is passed as ``out=`` (every helper takes one)."""
        self.helpers.update((name, *_HELPER_NEEDS.get(name, ())))
        keywords = [f"{k}={v!r}" for k, v in node.op.kwargs().items()]
        return Call(name, (*(self.array(a, node) for a in args), *keywords))

    def _windowed(self, node, name: str, *args: Code) -> Code:
        call = self._windowed_call(node, name, *args)
        return self.call(call.fn, *call.args)

    def _print_Conv2D(self, node, *xwb):
        return self._windowed(node, "_conv2d", *xwb)

    def _out_Conv2D(self, node, *xwb):
        return self._windowed_call(node, "_conv2d", *xwb)

    def _print_Conv2DTranspose(self, node, g, w):
        return self._windowed(node, "_conv_transpose2d", g, w)

    def _out_Conv2DTranspose(self, node, g, w):
        return self._windowed_call(node, "_conv_transpose2d", g, w)

    def _print_Conv2DWeightGrad(self, node, x, g):
        return self._windowed(node, "_conv2d_weight_grad", x, g)

    def _out_Conv2DWeightGrad(self, node, x, g):
        return self._windowed_call(node, "_conv2d_weight_grad", x, g)

    def _print_ConvColumns(self, node, x):
        return self._windowed(node, "_conv_columns", x)

    def _out_ConvColumns(self, node, x):
        return self._windowed_call(node, "_conv_columns", x)

    def _print_Conv2DFromColumns(self, node, *cwb):
        return self._windowed(node, "_conv2d_from_columns", *cwb)

    def _out_Conv2DFromColumns(self, node, *cwb):
        return self._windowed_call(node, "_conv2d_from_columns", *cwb)

    def _print_Conv2DWeightGradFromColumns(self, node, cols, g):
        return self._windowed(node, "_conv2d_weight_grad_from_columns", cols, g)

    def _out_Conv2DWeightGradFromColumns(self, node, cols, g):
        return self._windowed_call(node, "_conv2d_weight_grad_from_columns", cols, g)

    def _print_MaxPool2D(self, node, x):
        return self._windowed(node, "_max_pool2d", x)

    def _out_MaxPool2D(self, node, x):
        return self._windowed_call(node, "_max_pool2d", x)

    def _print_MaxPool2DPick(self, node, x, v):
        return self._windowed(node, "_max_pool2d_pick", x, v)

    def _print_MaxPool2DGrad(self, node, x, g, pooled):
        return self._windowed(node, "_max_pool2d_grad", x, g, pooled)

    def _out_MaxPool2DGrad(self, node, x, g, pooled):
        return self._windowed_call(node, "_max_pool2d_grad", x, g, pooled)

    def _print_AvgPool2D(self, node, x):
        return self._windowed(node, "_avg_pool2d", x)

    def _out_AvgPool2D(self, node, x):
        return self._windowed_call(node, "_avg_pool2d", x)

    def _print_AvgPool2DGrad(self, node, g):
        return self._windowed(node, "_avg_pool2d_grad", g)

    def _out_AvgPool2DGrad(self, node, g):
        return self._windowed_call(node, "_avg_pool2d_grad", g)

    def _print_Flatten(self, node, x):
        """``x.reshape((N, C*H*W))``; a named leading dimension is read from x's shape."""
        start, source = node.op.start, node.inputs[0]
        size = node.shape[-1]
        tail = f"({size},)" if isinstance(size, int) else "(-1,)"
        head = source.shape[:start]
        if all(isinstance(d, int) for d in head) and isinstance(size, int):
            shape = _tuple_text(tuple(str(d) for d in head + (size,)))
        else:
            shape = f"{self.obj(x, source)}.shape[:{start}] + {tail}"
        return Code(f"{self.obj(x, source)}.reshape({shape})")

    # -- linear algebra (issue 16): einsum, solve, inv, det, slogdet, norm ------------------------
    def _print_Einsum(self, node, *xs):
        optimize = ("optimize=True",) if len(xs) > 1 else ()
        return self.call(f"{self.module}.einsum", repr(node.op.subscripts),
                         *(self.array(x, i) for x, i in zip(xs, node.inputs)), *optimize)

    def _print_Solve(self, node, a, b):
        return self.helper("_solve", self.array(a, node), self.array(b, node))

    def _linalg(self, name: str, node, x: Code) -> Code:
        return self.call(f"{self.module}.linalg.{name}", self.array(x, node))

    def _print_Inv(self, node, a):
        return self._linalg("inv", node, a)

    def _print_Det(self, node, a):
        return self._linalg("det", node, a)

    def _print_LogAbsDet(self, node, a):
        return Code(f"{self._linalg('slogdet', node, a).text}[1]")

    def _print_SignDet(self, node, a):
        return Code(f"{self._linalg('slogdet', node, a).text}[0]")

    def _print_Cholesky(self, node, a):
        return self._linalg("cholesky", node, a)

    def _print_EighValues(self, node, a):
        return Code(f"{self._linalg('eigh', node, a).text}[0]")

    def _print_EighVectors(self, node, a):
        return Code(f"{self._linalg('eigh', node, a).text}[1]")

    def _print_Take(self, node, x, idx):
        return self.call(f"{self.module}.take", self.array(x, node), idx.text, f"axis={node.op.axis}")

    def _print_Untake(self, node, values, idx):
        return self.helper("_untake", self.array(values, node), idx.text, str(node.op.n), str(node.op.axis))

    def _print_Gather(self, node, x, idx):
        return self.helper("_gather", self.array(x, node), idx.text, str(node.op.axis))

    def _print_Ungather(self, node, values, idx, like):
        return self.helper("_ungather", self.array(values, node), idx.text, _shape_of(like, ()), str(node.op.axis))

    def _print_Norm(self, node, x):
        keep = ", keepdims=True" if node.op.keepdims else ""
        square = f"{self.module}.square({self.array(x, node)})"
        return self.call(f"{self.module}.sqrt", f"{self.module}.add.reduce({square}, axis={self._axis(node)}{keep})")


# The helpers each convolution and pooling helper calls (the module needs their text too).
_HELPER_NEEDS = {
    "_conv2d": ("_flat_cols", "_conv2d_from_columns", "_add_bias", "_im2col", "_windows", "_strided", "_pad2d",
                "_into"),
    "_conv_transpose2d": ("_conv_transpose2d_rows", "_batch_last", "_strided", "_into"),
    "_conv2d_weight_grad": ("_im2col", "_im2col_batch_last", "_conv2d_weight_grad_from_columns", "_batch_last",
                            "_windows", "_strided", "_pad2d", "_into"),
    "_conv_columns": ("_flat_cols", "_im2col_batch_last", "_strided", "_pad2d"),
    "_conv2d_from_columns": ("_add_bias", "_strided", "_into"),
    "_conv2d_weight_grad_from_columns": ("_batch_last", "_into"),
    "_max_pool2d": ("_windows", "_strided", "_pad2d", "_into"),
    "_max_pool2d_pick": ("_max_pool2d", "_first_maxima", "_windows", "_strided", "_pad2d", "_into"),
    "_max_pool2d_grad": ("_first_maxima", "_windows", "_strided", "_pad2d", "_into"),
    "_avg_pool2d": ("_windows", "_strided", "_pad2d"),
    "_avg_pool2d_grad": ("_into",),
}


class _NoForm(Exception):
    """A part of the expression has no ufunc form here."""


class _Lowering:
    """The :class:`~codegen.lowering.Lowered` form of an elementwise node (see :class:`_Form`), or None."""

    def __init__(self, printer: NumPyPrinter, node, args: list[Code]):
        self.printer, self.node, self.args = printer, node, args

    def lowered(self) -> Lowered | None:
        """The node as ufunc calls into buffers, or None when it is one call or a part has no form."""
        node, printer = self.node, self.printer
        form, helpers, zeros = _lowering_form(type(printer), node.op.expr, node.op.symbols,
                                              tuple(x.shape for x in node.inputs), node.shape,
                                              tuple(a.prec for a in self.args), printer.constant_array is not None)
        printer.helpers |= helpers
        texts = [a.text for a in self.args]
        if zeros:  # (also when the form fails after asking for them, as building it for this node would)
            texts.append(printer.constant_array("zeros", node.shape, node.dtype))
        if form is None:
            return None
        lowered = form.mapped(lambda template: scalar.fill(template, texts))
        return dataclasses.replace(lowered, blocks=self.blocks(lowered))

    def blocks(self, lowered: Lowered) -> Blocks | None:
        """Blocks of rows (a divisor of the first axis) of about ``block_bytes`` when the value has
        a static shape of several blocks, takes three calls or more (two gain nothing measurable),
        and every operand is a number or an argument (one that has the value's rows is sliced with
        it, so it must be a name; an expression would be evaluated again for each block)."""
        shape, target = self.node.shape, self.printer.block_bytes
        static = bool(shape) and all(isinstance(d, int) for d in shape)
        if not target or self.printer.module != "np" or lowered.tree.calls < 3 or not static:
            return None
        if any(leaf.compound or (leaf.rows and not leaf.text.isidentifier()) for leaf in lowered.leaves()):
            return None
        row = self.node.dtype.itemsize * int(np.prod(shape[1:]))
        if row * shape[0] < 4 * target:  # (small: it runs in cache anyway)
            return None
        fits = [r for r in range(1, shape[0] // 2 + 1) if shape[0] % r == 0 and r * row <= target]
        return Blocks(max(fits), shape[0]) if fits and max(fits) * row * 4 >= target else None


@functools.lru_cache(maxsize=1024)  # ops are shared by many nodes: build each expression's form once
def _lowering_form(printer_class, expr, symbols: tuple, shapes: tuple, shape: tuple, precs: tuple, zeros: bool):
    """(the :class:`Lowered` form with placeholders for the arguments' code, the helpers it calls, whether
    it reads an array of zeros) for an expression over arguments of these shapes and precedences."""
    form = _Form(printer_class(), expr, symbols, shapes, shape, precs, zeros)
    return form.lowered(), frozenset(form.printer.helpers), form.zeros_used


class _Form:
    """Builds the :class:`~codegen.lowering.Op` tree of an elementwise node's SymPy expression: one
    ufunc per operation at the node's size, sums and products folded left as the plain expression
    associates them; arguments, numbers and parts smaller than the node (scalar factors) are leaves.
    Argument k prints as the placeholder ``\\x00k\\x00`` of :func:`scalar.fill`; the array of zeros (when
    ``zeros``: the scheduler supplies one) as the placeholder after the arguments'."""

    FUNCTIONS = {"exp", "log", "sqrt", "tanh", "sin", "cos", "Abs"}  # one-argument ufuncs, see _SCALAR_UFUNCS

    def __init__(self, printer: NumPyPrinter, expr, symbols: tuple, shapes: tuple, shape: tuple, precs: tuple,
                 zeros: bool):
        self.printer, self.expr, self.symbols, self.shape = printer, expr, symbols, shape
        self.args = [Code(f"\x00{k}\x00", prec) for k, prec in enumerate(precs)]
        self.shapes = dict(zip(symbols, shapes))
        self.zeros_text = f"\x00{len(symbols)}\x00" if zeros else None
        self.zeros_used = False

    def lowered(self) -> Lowered | None:
        if _loses_shape(self.expr, self.symbols):
            return None
        expression = self.printer._expression(self.expr, self.symbols, self.args)  # None: it has shared parts
        try:
            tree = self.build(self.expr) if expression is not None else None
        except _NoForm:
            return None
        if not isinstance(tree, Op) or tree.calls < 2:
            return None
        return Lowered(tree, expression)

    def ufunc(self, name: str, *operands, boolean: bool = False) -> Op:
        return Op(f"{self.printer.module}.{name}", operands, boolean)

    def full(self, expr) -> bool:
        """Whether the subexpression has the node's shape (else it stays an operand for NumPy)."""
        return bool(expr.free_symbols) and broadcast_shapes(*(self.shapes[s] for s in expr.free_symbols)) == self.shape

    def leaf(self, expr) -> Leaf:
        """An operand NumPy evaluates: an argument (``rows`` when it has the value's rows), a number,
        or an expression of arguments smaller than the value (``compound``)."""
        text = self.printer._expression(expr, self.symbols, self.args)
        if text is None:
            raise _NoForm(expr)
        shape = self.shapes.get(expr)
        rows = shape is not None and len(shape) == len(self.shape) >= 1 and shape[0] == self.shape[0] != 1
        compound = bool(expr.free_symbols) and shape is None
        return Leaf(text, frozenset(self.symbols.index(s) for s in expr.free_symbols), rows, compound)

    def zeros(self) -> Leaf:
        """0, as an array of zeros of the node's shape when there is one (ufuncs compare faster against it)."""
        if self.zeros_text is None:
            return Leaf("0")
        self.zeros_used = True
        return Leaf(self.zeros_text, rows=len(self.shape) >= 1)

    def build(self, expr):
        if expr.is_Symbol or not self.full(expr):
            return self.leaf(expr)
        if isinstance(expr, sp.Add):
            return self.add(list(expr.args))
        if isinstance(expr, sp.Mul):
            return self.mul(expr)
        if isinstance(expr, sp.Pow):
            return self.power(expr.base, expr.exp)
        if isinstance(expr, (sp.Max, sp.Min)) and len(expr.args) == 2:
            a, b = (self.zeros() if x == 0 else self.build(x) for x in sorted(expr.args, key=lambda a: a.is_Number))
            return self.ufunc("maximum" if isinstance(expr, sp.Max) else "minimum", a, b)
        if _is_step(expr):  # 1 where x > 0: a comparison, cast by the ufunc that reads it
            x = self.build(expr.args[0])
            if not isinstance(x, Leaf):
                raise _NoForm(expr)
            return self.ufunc("greater", x, self.zeros(), boolean=True)
        if isinstance(expr, sp.Function) and len(expr.args) == 1 and type(expr).__name__ in self.FUNCTIONS:
            return self.ufunc(_SCALAR_UFUNCS[type(expr).__name__], self.build(expr.args[0]))
        raise _NoForm(expr)

    def fold(self, name: str, kind, first, rest: list) -> Op | Leaf:
        """``((first name r1) name r2) ...``; a partial result smaller than the node stays a leaf."""
        acc, acc_expr = self.build(first), first
        for r in rest:
            acc_expr = kind(acc_expr, r, evaluate=False)
            acc = self.ufunc(name, acc, self.build(r)) if self.full(acc_expr) else self.leaf(acc_expr)
        return acc

    def add(self, terms: list) -> Op | Leaf:
        """Terms folded left; a negated term is subtracted (``-a + b`` as ``b - a``)."""
        negated = [t.could_extract_minus_sign() for t in terms]
        if negated[0] and not negated[1]:
            terms[:2], negated[:2] = terms[1::-1], negated[1::-1]
        acc = self.ufunc("negative", self.build(-terms[0])) if negated[0] else self.build(terms[0])
        acc_expr = terms[0]
        for t, neg in zip(terms[1:], negated[1:]):
            acc_expr = sp.Add(acc_expr, t, evaluate=False)
            if not self.full(acc_expr):
                acc = self.leaf(acc_expr)
            else:
                acc = self.ufunc("subtract", acc, self.build(-t)) if neg else self.ufunc("add", acc, self.build(t))
        return acc

    def mul(self, expr) -> Op | Leaf:
        """Factors folded left, ``a * b**-1`` as a division, ``x * x`` as a square, ``-1 * x`` as a negation."""
        coeff, rest = expr.as_coeff_Mul()
        if coeff == -1:
            return self.ufunc("negative", self.build(rest))
        over = [f.base for f in expr.args if isinstance(f, sp.Pow) and f.exp == -1]
        times = [f for f in expr.args if not (isinstance(f, sp.Pow) and f.exp == -1)]
        if len(times) == 2 and times[0] == times[1]:
            numerator = self.ufunc("square", self.build(times[0]))
        elif times:
            numerator = self.fold("multiply", sp.Mul, times[0], times[1:])
        else:
            numerator = Leaf("1")
        if not over:
            return numerator
        return self.ufunc("divide", numerator, self.fold("multiply", sp.Mul, over[0], over[1:]))

    def power(self, base, exp) -> Op:
        if exp == 2:
            return self.ufunc("square", self.build(base))
        if exp == sp.Rational(1, 2):
            return self.ufunc("sqrt", self.build(base))
        if exp == -1:
            return self.ufunc("divide", Leaf("1"), self.build(base))
        return self.ufunc("power", self.build(base), self.build(exp))


@functools.lru_cache(maxsize=2)  # the same text every compile: inspect.getsource reads and tokenizes the file
def _check_sources(labels: bool) -> tuple[str, ...]:
    functions = [f for f in vars(checks).values() if inspect.isfunction(f)]
    out = []
    for f in sorted(functions, key=lambda f: f.__code__.co_firstlineno):
        if f is checks._check_labels and not labels:
            continue
        out += ["", "", inspect.getsource(f).rstrip()]
    return tuple(out)


class NumPyBackend:
    """Generated modules that need only NumPy: everything the generator asks a backend for.

    ``printer()`` prints the ops (its ``scalar_printer`` the SymPy expressions of elementwise ops),
    ``imports`` and ``header`` open the module, ``helper_source`` gives the text of a helper
    kernel the code calls, ``array_type`` and ``asarray`` serve the compiled function's call path
    (an input of exactly ``array_type`` with the right dtype and shape skips conversion).
    """

    name = "numpy"
    module = "np"
    on_device = False  # calls run on the host (a device backend's functions keep parameters on the device)
    share_conv_columns = True  # a conv2d and its weight gradient share the image's columns (codegen.conv_columns)
    imports = ("import numpy as np",)
    header = "Needs only NumPy."
    array_type = np.ndarray
    asarray = staticmethod(np.asarray)
    printer_class = NumPyPrinter
    kernels = kernels  # the helpers' source: each is also the forward semantics of its op

    def printer(self) -> NumPyPrinter:
        return self.printer_class()

    def finish(self, schedule, body: list, tail: list) -> tuple[list, list]:
        """The statements after the memory plan, for a backend's last rewrite (here: as they are)."""
        return body, tail

    def helper_names(self) -> list[str]:
        """Names the generated code must leave free for the helper kernels."""
        return [n for n in dir(self.kernels) if n.startswith("_")]

    def helper_source(self, name: str, printer=None) -> str:
        """The text of helper ``name`` (``printer``: the one that printed the module, for helpers it defines)."""
        return inspect.getsource(getattr(self.kernels, name)).rstrip()

    def check_sources(self, labels: bool) -> list[str]:
        """The functions of codegen.checks, in their order there (``_check_labels`` when ``labels`` are checked)."""
        return list(_check_sources(labels))
