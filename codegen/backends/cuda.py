"""CUDA C for the CuPy backend: one kernel per fused elementwise expression, printed from SymPy.

An elementwise node is a SymPy expression of scalar symbols (see :mod:`symgraph.ops.scalar`).
:func:`elementwise_kernel` prints it as the body of a grid-stride loop over the output's
elements, in the output's C type: ``tanhf``/``expf`` for float32, ``tanh``/``exp`` for
float64, literals with an ``F`` suffix in a float32 kernel (so nothing is silently computed
in double). Each input is read at the index its broadcast pattern gives (:func:`pattern`):
the element itself, a single value, or a contiguous block of the output's axes (a bias row:
``x[i % n]``; a column: ``x[i / n]``). Kernels use nothing but C arithmetic and the CUDA math
functions: no shared memory, no barriers, so they also run, thread after thread, under the
CPU stand-in of :mod:`codegen.testing`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.codegen.ast import float32, real
from sympy.printing.c import C99CodePrinter

from symgraph.ops.scalar import Sigmoid, Softplus

C_TYPES = {"float32": "float", "float64": "double", "float16": None, "int8": "signed char",
           "int16": "short", "int32": "int", "int64": "long long", "uint8": "unsigned char",
           "uint16": "unsigned short", "uint32": "unsigned int", "uint64": "unsigned long long",
           "bool": "bool"}

BLOCK = 256  # threads per block of every elementwise kernel

# Device functions a kernel defines before itself when its expression uses them. NaN propagates
# through the maximum and minimum as it does in NumPy (fmaxf would drop it).
_DEVICE_FUNCTIONS = {
    "sg_max": "__device__ __forceinline__ {T} sg_max({T} a, {T} b) {{ return (a > b || a != a) ? a : b; }}",
    "sg_min": "__device__ __forceinline__ {T} sg_min({T} a, {T} b) {{ return (a < b || a != a) ? a : b; }}",
    "sg_sigmoid": ("__device__ __forceinline__ {T} sg_sigmoid({T} x) {{  // never overflows\n"
                   "    return x >= 0 ? 1 / (1 + {exp}(-x)) : {exp}(x) / (1 + {exp}(x));\n}}"),
    # Mod as NumPy and Python compute it: the sign of the divisor (C's fmod takes the dividend's)
    "sg_mod": ("__device__ __forceinline__ {T} sg_mod({T} a, {T} b) {{  // np.mod\n"
               "    {T} m = {fmod}(a, b);\n"
               "    if (m != 0) {{ if ((b < 0) != (m < 0)) m += b; }} else {{ m = {copysign}(({T})0, b); }}\n"
               "    return m;\n}}"),
    "sg_softplus": ("__device__ __forceinline__ {T} sg_softplus({T} x) {{  // log(1 + exp(x)), stably\n"
                    "    return sg_max(x, 0) + {log1p}({exp}(-{fabs}(x)));\n}}"),
}


class CudaPrinter(C99CodePrinter):
    """A scalar SymPy expression as CUDA C in one floating type (float or double).

    Symbols print as the names given for them; unknown functions raise (strict), so no
    unprintable text reaches a kernel. ``used`` collects the device functions it calls.
    """

    def __init__(self, names: dict, dtype):
        self.single = np.dtype(dtype) == np.float32
        settings = {"strict": True}
        if self.single:
            settings["type_aliases"] = {real: float32}  # tanhf, expf, 0.5F
        super().__init__(settings)
        self._names = names
        self.used: set[str] = set()

    def _print(self, expr, **kwargs):
        # an irrational constant (pi, log(2), sqrt(2), 2/sqrt(pi)) as a literal of the kernel's type:
        # NVRTC defines no M_PI / M_LN2 macros, and sqrtf(2) would be computed at run time
        if isinstance(expr, sp.Expr) and expr.is_number and not expr.is_Rational and not expr.is_Float:
            value = sp.N(expr, 20)
            if value.is_real:
                return repr(float(value)) + ("F" if self.single else "")
        return super()._print(expr, **kwargs)

    def _math(self, name: str) -> str:
        return name + "f" if self.single else name

    def _print_Symbol(self, expr):
        return self._names[expr]

    def _print_Pow(self, expr):
        base, exp = expr.base, expr.exp
        if exp == 1:  # x**1, from an unevaluated division x / y = x * y**-1
            return self.parenthesize(base, 50)
        if exp == 2:  # in parentheses: a square may be a divisor, where a/x*x would be (a/x)*x
            b = self.parenthesize(base, 50)
            return f"({b}*{b})"
        if exp == -1:
            return f"{self._print(sp.Float(1.0))}/{self.parenthesize(base, 50)}"
        if exp == sp.Rational(1, 2):
            return f"{self._math('sqrt')}({self._print(base)})"
        if exp == -sp.Rational(1, 2):
            return f"{self._math('rsqrt')}({self._print(base)})"
        return f"{self._math('pow')}({self._print(base)}, {self._print(exp)})"

    def _nested(self, fn: str, args) -> str:
        self.used.add(fn)
        code = self._print(args[0])
        for a in args[1:]:
            code = f"{fn}({code}, {self._print(a)})"
        return code

    def _print_Max(self, expr):
        return self._nested("sg_max", sorted(expr.args, key=lambda a: a.is_Number))

    def _print_Min(self, expr):
        return self._nested("sg_min", sorted(expr.args, key=lambda a: a.is_Number))

    def _print_Heaviside(self, expr):
        at_zero = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        x = self._print(expr.args[0])
        one, zero, half = (self._print(sp.Float(v)) for v in (1.0, 0.0, float(at_zero)))
        return f"({x} > 0 ? {one} : ({x} < 0 ? {zero} : {half}))" if at_zero != 0 else f"({x} > 0 ? {one} : {zero})"

    def _print_sign(self, expr):
        x = self._print(expr.args[0])
        return f"({x} != {x} ? {x} : ({x} > 0) - ({x} < 0))"  # NaN stays NaN, as in NumPy

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        if cond != sp.true:
            raise ValueError("a Piecewise expression needs a final (value, True) branch")
        code = self._print(last)
        for value, c in reversed(pieces):
            code = f"({self._print(c)} ? {self._print(value)} : {code})"
        return code

    def _float_args(self, fn: str, expr) -> str:
        """fn(args) with numeric arguments as literals of the kernel's type: hypot(1, x) would call
        the C++ template overload for mixed types, a host function nvcc refuses in a kernel."""
        args = (self._print(sp.Float(float(a))) if a.is_number else self._print(a) for a in expr.args)
        return f"{self._math(fn)}({', '.join(args)})"

    def _print_hypot(self, expr):
        return self._float_args("hypot", expr)

    def _print_atan2(self, expr):
        return self._float_args("atan2", expr)

    def _print_Mod(self, expr):
        self.used.add("sg_mod")
        return f"sg_mod({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Sigmoid(self, expr):
        self.used.add("sg_sigmoid")
        return f"sg_sigmoid({self._print(expr.args[0])})"

    def _print_Softplus(self, expr):
        self.used |= {"sg_softplus", "sg_max"}
        return f"sg_softplus({self._print(expr.args[0])})"

    def device_functions(self, ctype: str) -> list[str]:
        order = ["sg_max", "sg_min", "sg_mod", "sg_sigmoid", "sg_softplus"]  # sg_softplus calls sg_max
        m = {k: self._math(k) for k in ("exp", "log1p", "fabs", "fmod", "copysign")}
        return [_DEVICE_FUNCTIONS[f].format(T=ctype, **m) for f in order if f in self.used]


# -- where each input is read -----------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    """How an input is indexed from the output's flat index ``i``.

    ``kind``: "full" (``x[i]``), "one" (``x[0]``: a single value), "block" (the input's
    non-unit axes are the output's axes ``first:stop``: ``x[(i / inner) % size]``), "value"
    (a host scalar passed by value) or "literal" (a number written into the kernel).
    """

    kind: str
    first: int = 0
    stop: int = 0


def pattern(shape: tuple, out_shape: tuple) -> Pattern | None:
    """The pattern of an input of ``shape`` broadcast to ``out_shape`` (dimensions may be names);
    None when its non-unit axes are not one contiguous run of the output's."""
    if tuple(shape) == tuple(out_shape):
        return Pattern("full")
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    kept = [k for k, d in enumerate(shape) if d != 1]
    if not kept:
        return Pattern("one")
    if kept != list(range(kept[0], kept[-1] + 1)) or any(shape[k] != out_shape[k] for k in kept):
        return None
    return Pattern("block", kept[0], kept[-1] + 1)


@dataclass(frozen=True)
class Kernel:
    """A printed elementwise kernel: the CUDA source of ``name`` and how its inputs are passed."""

    name: str
    source: str
    patterns: tuple[Pattern, ...]
    ctypes: tuple[str, ...]  # each input's C type


def literal(value, ctype: str) -> str:
    """A number as a C literal of ``ctype`` (``0.5F``, ``1e-08``, ``INFINITY``)."""
    v = float(value)
    if np.isnan(v):
        return "NAN"
    if np.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    text = repr(v)
    return text + "F" if ctype == "float" else text


@functools.lru_cache(maxsize=1024)
def elementwise_kernel(name: str, expr: sp.Expr, symbols: tuple, patterns: tuple, in_dtypes: tuple,
                       out_dtype: str, literals: tuple, ndim: int) -> Kernel:
    """The CUDA kernel computing ``expr`` elementwise into ``out`` (see the module's docstring).

    ``literals[k]`` is the number written into the kernel for input k, when its pattern is
    "literal". Parameters: the inputs read from memory (pointers) or passed by value, in
    order, then ``out``, the element count ``n``, and for each "block" input its ``inner``
    stride (the product of the output's ``ndim`` axes after the block: none for a trailing block)
    and its ``size`` (none for a leading block)."""
    ctype = C_TYPES[out_dtype]
    names, params, loads, extra = {}, [], [], []
    used = expr.free_symbols
    for k, (sym, pat, dt, lit) in enumerate(zip(symbols, patterns, in_dtypes, literals)):
        t = C_TYPES[dt]
        names[sym] = f"a{k}"
        if pat.kind == "literal":
            names[sym] = literal(lit, ctype)
            continue
        if sym not in used:
            continue
        if pat.kind == "value":
            params.append(f"const {t} x{k}")
            loads.append(f"const {ctype} a{k} = {'' if t == ctype else f'({ctype})'}x{k};")
            continue
        params.append(f"const {t}* x{k}")
        index = {"full": "i", "one": "0"}.get(pat.kind)
        if pat.kind == "block":  # (i / inner) % size; no division for a trailing block, no % for a leading one
            inner, size = pat.stop < ndim, pat.first > 0
            index = f"i / inner{k}" if inner else "i"
            index = f"{index} % size{k}" if size else index
            extra += [f"const long long inner{k}"] * inner + [f"const long long size{k}"] * size
        cast = "" if t == ctype else f"({ctype})"
        loads.append(f"const {ctype} a{k} = {cast}x{k}[{index}];")
    printer = CudaPrinter(names, out_dtype)
    body, value = _body(printer, expr, ctype)
    body.append(f"out[i] = {value};")
    params += [f"{ctype}* out", "const long long n", *extra]
    signature = f'extern "C" __global__ void {name}({", ".join(params)})'
    if len(signature) > 100:
        signature = "\n".join([f'extern "C" __global__ void {name}(', *(f"    {p}," for p in params[:-1]),
                               f"    {params[-1]})"])
    lines = [*printer.device_functions(ctype),
             signature,
             "{",
             "    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;",
             "         i += (long long)gridDim.x * blockDim.x) {",
             *(f"        {line}" for line in loads + body),
             "    }",
             "}"]
    return Kernel(name, "\n".join(lines) + "\n", patterns, tuple(C_TYPES[d] for d in in_dtypes))


def _body(printer: CudaPrinter, expr: sp.Expr, ctype: str) -> tuple[list[str], str]:
    """(lines defining SymPy's common subexpressions of ``expr``, the C of what is left)."""
    with sp.evaluate(False):
        shared, (reduced,) = sp.cse(expr, symbols=sp.numbered_symbols("s"))
    lines = []
    for sym, sub in shared:
        lines.append(f"const {ctype} {sym} = {printer.doprint(sub)};")
        printer._names[sym] = str(sym)
    return lines, printer.doprint(reduced)


@functools.lru_cache(maxsize=256)
def fused_kernel(name: str, params: tuple, steps: tuple, ctype: str) -> str:
    """One kernel running several elementwise steps over the same elements, each thread doing every
    step for its elements in order: a state updated in place, then a parameter updated from it.

    ``params``: (C type, "pointer" or "value") of each parameter ``x<k>``; ``steps``: (title, spec,
    argument parameter indices, output parameter index, assignment "=", "-=" or "+=") where ``spec``
    is an elementwise kernel's (expr, symbols, patterns, input dtypes, output dtype, literals, ndim)
    whose patterns are all "full", "one", "literal" or "value"."""
    written = {step[3] for step in steps}
    signature = [f"{'' if k in written else 'const '}{t}{'*' if kind == 'pointer' else ''} x{k}"
                 for k, (t, kind) in enumerate(params)]
    body, used = [], set()
    for title, (expr, symbols, patterns, in_dtypes, _, literals, _), args, out, assign in steps:
        names, loads = {}, []
        for sym, pat, dt, lit, k in zip(symbols, patterns, in_dtypes, literals, args):
            if pat.kind == "literal":
                names[sym] = literal(lit, ctype)
            elif sym in expr.free_symbols:
                names[sym] = f"a{len(loads)}"
                read = f"x{k}" if pat.kind == "value" else f"x{k}[{'i' if pat.kind == 'full' else '0'}]"
                cast = "" if C_TYPES[dt] == ctype else f"({ctype})"
                loads.append(f"const {ctype} {names[sym]} = {cast}{read};")
        printer = CudaPrinter(names, np.dtype("float32" if ctype == "float" else "float64"))
        shared, value = _body(printer, expr, ctype)
        used |= printer.used
        body += [f"{{  // {title}", *(f"    {line}" for line in loads + shared), f"    x{out}[i] {assign} {value};", "}"]
    device = CudaPrinter({}, np.dtype("float32" if ctype == "float" else "float64"))
    device.used = used | ({"sg_max"} if "sg_softplus" in used else set())
    lines = [*device.device_functions(ctype),
             f'extern "C" __global__ void {name}(',
             *(f"    {p}," for p in signature),
             "    const long long n)",
             "{",
             "    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;",
             "         i += (long long)gridDim.x * blockDim.x) {",
             *(f"        {line}" for line in body),
             "    }",
             "}"]
    return "\n".join(lines) + "\n"
