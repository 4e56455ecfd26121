"""The CuPy backend: the NumPy backend's code on the GPU, each fused elementwise group one CUDA kernel.

Matrix products, reductions and shape ops print as the same calls as in NumPy, on ``cp``
(CuPy dispatches products to cuBLAS and writes into the planned buffers with ``out=``). An
elementwise node becomes a CUDA kernel printed from its SymPy expression
(:mod:`codegen.backends.cuda`), defined in the module beside a small Python function that
launches it: ``h1 = tanh_kernel(matmul1, b1, out=buf2)``. Row-wise ops call the CuPy helpers
of :mod:`codegen.backends.cupy_kernels`.

The generated module imports ``cupy``: generating it (``f.source``, ``f.save``) needs no
CuPy; running it needs CuPy and a device, or :func:`codegen.testing.emulated_cupy`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symgraph import kernels
from symgraph.graph import Constant
from symgraph.ops import Add, Cast, Divide, Multiply, Negative, Power, Subtract
from symgraph.ops.reduce import Count

from ..printer import Call, Code
from ..schedule import Statement
from . import cupy_checks, cupy_kernels
from .cuda import BLOCK, C_TYPES, Pattern, elementwise_kernel, fused_kernel, pattern
from .numpy import NumPyBackend, NumPyPrinter, _index_text, _shape_of

INSTALL = ('install CuPy for your CUDA version: pip install -e ".[cuda]" (CUDA 13: cupy-cuda13x; '
           'for CUDA 12 install cupy-cuda12x instead)')


_HOST_ARITHMETIC = (Add, Subtract, Multiply, Divide, Negative, Power, Cast)  # printed as Python operators


@functools.lru_cache(maxsize=4096)
def _on_host(node) -> bool:
    """Whether the node's code is a NumPy scalar, not a device array: a count of elements, a constant,
    or arithmetic printed as Python operators on those."""
    if isinstance(node.op, (Count, Constant)):
        return node.ndim == 0
    return isinstance(node.op, _HOST_ARITHMETIC) and all(_on_host(x) for x in node.inputs)


@dataclass(frozen=True)
class KernelCall(Call):
    """A launch of an elementwise kernel: ``fn(*args, out=buffer)``; ``spec`` is what the kernel
    computes (expression, symbols, patterns, input dtypes, output dtype, literals, ndim)."""

    spec: tuple = ()


class CuPyPrinter(NumPyPrinter):
    """Prints nodes as CuPy code; elementwise nodes as launches of kernels it defines (``kernels``)."""

    module = "cp"

    def __init__(self):
        super().__init__()
        self.kernels: dict[str, str] = {}  # launcher name -> its definition (kernel source and launcher)
        self._kernel_names: dict[tuple, str] = {}  # what a kernel computes -> its launcher's name
        self.unique_name = lambda base: base  # the scheduler's namer supplies unique names

    # -- elementwise nodes: CUDA kernels ------------------------------------------
    def _kernel(self, node, args: list[Code]) -> KernelCall | None:
        """The launch of an elementwise node's kernel, defining the kernel on first use;
        None for a dtype with no kernel (float16) or an unusual broadcast: CuPy expressions instead."""
        op = node.op
        if C_TYPES.get(node.dtype.name) is None or any(C_TYPES.get(x.dtype.name) is None for x in node.inputs):
            return None
        patterns, literals, texts = [], [], []
        for x, a in zip(node.inputs, args):
            if isinstance(x.op, Constant) and x.op.value.size == 1:  # a number: written into the kernel
                patterns.append(Pattern("literal"))
                literals.append(float(x.op.value.reshape(())))
                continue
            literals.append(None)
            if _on_host(x):  # a NumPy scalar: passed by value
                patterns.append(Pattern("value"))
            else:
                p = pattern(x.shape, node.shape)
                if p is None:  # an unusual broadcast (axes 0 and 2 of 3, ...): CuPy's own kernels
                    return None
                patterns.append(p)
            texts.append(a.text)
        blocks = any(p.kind == "block" for p in patterns)  # (only their indices depend on the rank)
        key = (op.expr, op.symbols, tuple(patterns), tuple(x.dtype.name for x in node.inputs), node.dtype.name,
               tuple(literals), node.ndim if blocks else None)
        name = self._kernel_names.get(key)
        if name is None:
            name = self._kernel_names[key] = self.unique_name(f"{getattr(op, 'label', op.name)}_kernel")
            self.kernels[name] = self._launcher(name, node, patterns, literals)
        self.helpers |= {name, "_blocks"}
        return KernelCall(name, tuple(texts), key)

    def _launcher(self, name: str, node, patterns: list[Pattern], literals: list) -> str:
        """The kernel's source as a module constant, and the Python function that launches it."""
        op = node.op
        kernel = elementwise_kernel(name if name.isascii() else "kernel", op.expr, op.symbols, tuple(patterns),
                                    tuple(x.dtype.name for x in node.inputs), node.dtype.name, tuple(literals),
                                    node.ndim)
        used = op.expr.free_symbols
        params = [f"x{k}" for k, p in enumerate(patterns) if p.kind != "literal"]
        passed, extra = [], []
        for k, (sym, p) in enumerate(zip(op.symbols, patterns)):
            if p.kind == "literal" or sym not in used:
                continue
            if p.kind == "value":
                passed.append(f"np.{node.inputs[k].dtype.name}(x{k})")
                continue
            passed.append(f"cp.ascontiguousarray(x{k})")
            if p.kind == "block":  # (see cuda.elementwise_kernel)
                after = node.shape[p.stop:]
                if after:
                    inner = (str(int(np.prod(after, dtype=np.int64))) if all(isinstance(d, int) for d in after)
                             else f"int(np.prod(out.shape[{p.stop - node.ndim}:]))")
                    extra.append(f"np.int64({inner})")
                if p.first:
                    extra.append(f"np.int64(x{k}.size)")
        shapes = [f"x{k}.shape" for k, p in enumerate(patterns) if p.kind not in ("literal", "value")]
        shape = "()" if not shapes else shapes[0] if len(shapes) == 1 else f"np.broadcast_shapes({', '.join(shapes)})"
        args = ", ".join([*passed, "out", "np.int64(n)", *extra])
        formula = " ".join(str(op.expr).split())
        return "\n".join([
            *_comment(f"{name}: {formula}, elementwise, in one CUDA kernel"),
            f'_{name} = cp.RawKernel(r"""',
            kernel.source.rstrip("\n"),
            f'""", {kernel.name!r})',
            "",
            "",
            f"def {name}({', '.join(params + ['out=None'])}):",
            f'    """Launches _{name} over the elements of out (allocated when not given)."""',
            "    if out is None:",
            f"        out = cp.empty({shape}, dtype={self.dtype(node.dtype)})",
            "    n = out.size",
            "    if n:",
            *_call_lines(f"_{name}(_blocks(n), ({BLOCK},), (", args, "))", "        "),
            "    return out",
        ])

    def _print_Elementwise(self, node, *args):
        kernel = self._kernel(node, list(args))
        if kernel is None:
            return super()._print_Elementwise(node, *args)
        return self.call(kernel.fn, *kernel.args)

    def _out_Elementwise(self, node, *args):
        return self._kernel(node, list(args))

    # -- reductions: CuPy's functions, which write into a buffer with out= -------------
    def _reduce(self, node, x, ufunc: str) -> Code:
        keep = ", keepdims=True" if node.op.keepdims else ""
        fn = {"add": "sum", "maximum": "max", "minimum": "min", "multiply": "prod"}[ufunc]
        return Code(f"cp.{fn}({self.array(x, node)}, axis={self._axis(node)}{keep})")

    def _out_Sum(self, node, x):
        if x.literal:
            return None
        keep = ("keepdims=True",) if node.op.keepdims else ()
        return Call("cp.sum", (x.text, f"axis={self._axis(node)}", *keep))

    def _print_Embed(self, node, values, like):
        index = f"np.s_[{_index_text(node.op.index, bool(node.op.lead))}]"
        return self.helper("_embed", self.array(values, node), _shape_of(like, node.op.lead), index)

    def upload(self, host: str) -> str:
        """Code for a module-level constant: NumPy code, copied to the device."""
        return f"cp.asarray({host})"


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, 98, break_long_words=False, break_on_hyphens=False)]


def _call_lines(head: str, args: str, tail: str, indent: str) -> list[str]:
    """``head + args + tail`` on one line when it fits in 100 columns, else the arguments wrapped."""
    if len(indent + head + args + tail) <= 100:
        return [indent + head + args + tail]
    wrapped = textwrap.wrap(args, 100 - len(indent) - 4, break_long_words=False, break_on_hyphens=False)
    return [indent + head, *(f"{indent}    {line}" for line in wrapped), indent + tail]


class CuPyBackend(NumPyBackend):
    """Generated modules that run on an NVIDIA GPU through CuPy (see the module's docstring).

    ``runtime()`` is the ``cupy`` module calls run with: the stand-in of
    :func:`codegen.testing.emulated_cupy` while one is installed, else CuPy itself.
    """

    name = "cupy"
    module = "cp"
    on_device = True
    imports = ("import numpy as np", "import cupy as cp")
    header = "Needs CuPy and NumPy; runs on an NVIDIA GPU. Outputs are CuPy arrays on the device."
    printer_class = CuPyPrinter
    kernels = cupy_kernels

    @staticmethod
    def runtime():
        """The ``cupy`` module (or its installed stand-in); ImportError saying how to install it."""
        module = sys.modules.get("cupy")
        if module is not None:
            return module
        try:
            return importlib.import_module("cupy")
        except ImportError as e:
            raise ImportError(f"a function compiled with backend='cupy' needs CuPy ({e}); {INSTALL}. "
                              "Without a GPU, codegen.testing.emulated_cupy() runs it on the CPU.") from None

    @staticmethod
    def check_device(runtime):
        """A RuntimeError when ``runtime`` (CuPy) finds no CUDA device, saying what to do."""
        try:
            count = runtime.cuda.runtime.getDeviceCount()
        except Exception as e:  # noqa: BLE001  (CuPy raises its own CUDARuntimeError without a driver)
            count, why = 0, f"{type(e).__name__}: {e}"
        else:
            why = "it counts 0 devices"
        if not count:
            raise RuntimeError(f"a function compiled with backend='cupy' needs a CUDA device, but CuPy finds none "
                               f"({why}); use backend='numpy', or codegen.testing.emulated_cupy() to run it on the CPU")

    @property
    def array_type(self):
        return self.runtime().ndarray

    def asarray(self, value, dtype=None):
        return self.runtime().asarray(value, dtype=dtype)

    def helper_names(self) -> list[str]:
        numpy_helpers = [n for n in dir(kernels) if n.startswith("_")]
        return sorted({*super().helper_names(), *numpy_helpers, "_host_input_array"})

    def finish(self, schedule, body: list, tail: list) -> tuple[list, list]:
        """Fuses each parameter's update with the state kernels it reads (see :func:`fuse_updates`)."""
        return fuse_updates(schedule, body, tail)

    def helper_source(self, name: str, printer=None) -> str:
        """A kernel the printer defined; else the helper of :mod:`codegen.backends.cupy_kernels`; else
        the NumPy helper of :mod:`symgraph.kernels`, whose ``np.`` calls CuPy has alike (``cp.``)."""
        if printer is not None and name in printer.kernels:
            return printer.kernels[name]
        if hasattr(self.kernels, name):
            return inspect.getsource(getattr(self.kernels, name)).rstrip()
        return re.sub(r"\bnp\.", "cp.", inspect.getsource(getattr(kernels, name)).rstrip())

    def check_sources(self, labels: bool) -> list[str]:
        """The NumPy checks, then the CuPy versions of the three that meet device arrays."""
        return super().check_sources(labels) + list(_device_check_sources())



@functools.lru_cache(maxsize=1)  # the same text every compile
def _device_check_sources() -> tuple[str, ...]:
    out = ["", "", "_host_input_array = _input_array  # the check above, for data still on the host"]
    for f in (cupy_checks._input_array, cupy_checks._state_array, cupy_checks._apart):
        out += ["", "", inspect.getsource(f).rstrip()]
    return tuple(out)


_FUSABLE = {"full", "one", "literal", "value"}  # patterns a fused update kernel reads


def fuse_updates(schedule, body: list, tail: list) -> tuple[list, list]:
    """Each in-place parameter update ``w -= d`` whose step ``d`` is a kernel's output, together with
    the kernels before it that write the states ``d`` reads in place (Adam's m and v, momentum's
    velocity), becomes one kernel: every element of the states and the parameter in one pass.

    A group is fused only when that changes no value: the step is read by nothing else, nothing
    between the state kernels and the step reads a state or overwrites what the kernels read, and
    nothing after the step reads the parameter. The fused kernel runs where the step was."""
    printer = schedule.printer
    made = {st.target or st.buffer: (k, st) for k, st in enumerate(body) if st.op == "=" and isinstance(st.call, KernelCall)}
    buffers = {st.target: st.buffer for st in body if st.buffer}
    shape_of = {schedule.names[id(s)]: s for s, _ in schedule.p.updates}
    fused, removed = {}, set()
    for u in tail:
        if u.op not in ("-=", "+=") or u.value not in made or u.target not in shape_of:
            continue
        k_step, step = made[u.value]
        state = shape_of[u.target]
        if (step.node is None or step.node.shape != state.shape or step.node.dtype != state.dtype
                or not _fusable(step.call) or _read_after(body, k_step, tail, u, step.node, u.target)):
            continue
        group = []
        for arg in dict.fromkeys(step.call.args):
            k, st = made.get(arg, (None, None))
            if (st is not None and st.target == "" and k < k_step and _fusable(st.call)
                    and st.node.shape == state.shape and _undisturbed(body, k, k_step, st, buffers)):
                group.append(st)
        fused[k_step] = _fused_statement(printer, group, step, u)
        removed |= {id(st) for st in group} | {id(u)}
    if not fused:
        return body, tail
    out = []
    for k, st in enumerate(body):
        if k in fused:
            out.append(fused[k])
        elif id(st) not in removed and not (st.op == "del" and st.comment.endswith(f"holds {body[k - 1].target}")
                                            and k - 1 in fused):
            out.append(st)
    tail = [u for u in tail if id(u) not in removed]
    text = "\n".join(st.text for st in out + tail)
    printer.helpers -= {k for k in printer.kernels if not re.search(rf"\b{k}\(", text)}  # fused away
    return out, tail


def _fusable(call) -> bool:
    return isinstance(call, KernelCall) and all(p.kind in _FUSABLE for p in call.spec[2])


def _read_after(body, k_step, tail, update, step_node, param: str) -> bool:
    """Whether anything after the step reads it (other than the update) or reads the parameter."""
    word = re.compile(rf"\b{re.escape(param)}\b")
    later = [st for st in body[k_step + 1:] if st.op != "del"]
    return (any(step_node in st.reads or word.search(st.text) for st in later)
            or any(word.search(st.value) for st in tail if st is not update))


def _undisturbed(body, k: int, k_step: int, st, buffers: dict) -> bool:
    """Whether the lines between a state kernel and the step leave its inputs and output alone."""
    inputs = {buffers.get(a, a) for a in st.call.args} | {st.buffer}
    return all(st.node not in x.reads and (x.buffer or x.target) not in inputs
               for x in body[k + 1:k_step] if x.op != "del")


def _fused_statement(printer, group: list, step, update):
    """The statement launching the fused kernel of ``group`` (state kernels), ``step`` and ``update``."""
    params, index = [], {}  # the launch's arguments: (code, C type, "pointer" or "value")

    def param(text: str, kind: str, dtype: str) -> int:
        if text not in index:
            index[text] = len(params)
            params.append((text, C_TYPES[dtype], kind))
        return index[text]

    steps = []
    parts = [(st, st.buffer, "=") for st in group] + [(step, update.target, update.op)]
    for st, out, assign in parts:
        expr, symbols, patterns, in_dtypes, out_dtype, literals, ndim = st.call.spec
        args = iter(st.call.args)
        indices = tuple(None if p.kind == "literal" else param(next(args), "value" if p.kind == "value" else "pointer", dt)
                        for p, dt in zip(patterns, in_dtypes))
        k_out = param(out, "pointer", out_dtype)
        names = {sym: sp.Symbol(f"x{k}") for sym, k in zip(symbols, indices) if k is not None}
        title = f"x{k_out} {assign} {' '.join(str(expr.xreplace(names)).split())}"
        steps.append((title, st.call.spec, indices, k_out, assign))
    signature = tuple((t, kind) for _, t, kind in params)
    key = ("fused", signature, tuple((spec[:6], *rest) for _, spec, *rest in steps))  # (ndim: no block patterns)
    name = printer._kernel_names.get(key)
    if name is None:
        name = printer._kernel_names[key] = printer.unique_name("update_kernel")
        source = fused_kernel(name, signature, tuple(steps), C_TYPES[step.call.spec[4]])
        printer.kernels[name] = _fused_launcher(name, source, params, steps)
    printer.helpers.add(name)
    written = ", ".join(out for _, out, _ in parts[:-1])
    comment = f"{'new ' + written + ', then ' if written else ''}{update.target} {update.op} step: one kernel, one pass"
    launch = Launch(name, tuple(text for text, _, _ in params))
    return Statement("", "", comment, step.section, step.node, step.reads, launch)


@dataclass(frozen=True)
class Launch(Call):
    """A kernel launched for what it writes in place (no ``out=``)."""

    def lines(self, out, scratch, aliased) -> list[str]:
        return [f"{self.fn}({', '.join(self.args)})"]


def _fused_launcher(name: str, source: str, params: list, steps: list) -> str:
    """The fused kernel's source as a module constant, and the function that launches it."""
    numpy_type = {"float": "np.float32", "double": "np.float64"}
    passed = [f"{numpy_type.get(t, 'np.int64')}(x{k})" if kind == "value" else f"x{k}"
              for k, (_, t, kind) in enumerate(params)]
    return "\n".join([
        *_comment(f"{name}: {'; then '.join(title for title, *_ in steps)}, elementwise, in one CUDA kernel"),
        f'_{name} = cp.RawKernel(r"""',
        source.rstrip("\n"),
        f'""", {name!r})',
        "",
        "",
        f"def {name}({', '.join(f'x{k}' for k in range(len(params)))}):",
        f'    """Launches _{name}: each thread does every step for its elements (arrays contiguous)."""',
        f"    n = x{steps[-1][3]}.size",
        "    if n:",
        *_call_lines(f"_{name}(_blocks(n), ({BLOCK},), (", ", ".join(passed + ["np.int64(n)"]), "))", "        "),
    ])
