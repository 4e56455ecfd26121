"""The NumPy backend's scalar printer: a SymPy expression of scalar symbols as NumPy code over arrays.

Elementwise ops are SymPy expressions; this prints one as a NumPy expression whose
symbols stand for array code. ``Elementwise.compute`` evaluates the same text (through
:func:`scalar_function`), so the generated code and the op's semantics cannot disagree.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter as SymPyNumPyPrinter

from symgraph import kernels
from symgraph.ops.scalar import Sigmoid


class ScalarPrinter(SymPyNumPyPrinter):
    """Prints a scalar SymPy expression as a NumPy expression over arrays.

    Symbols print as the code given for them in ``names``; ``np`` is the
    array module's name. Unknown functions raise (SymPy's strict mode), so no
    unprintable text can reach generated code.
    """

    def __init__(self, names: dict, module: str = "np", levels: dict | None = None):
        super().__init__({"fully_qualified_modules": True, "strict": True, "order": "none"})  # keep term order
        self._names = names
        self._levels = levels or {}  # SymPy precedence level of each symbol's code (atoms if absent)
        self._alias = module

    def _print(self, expr, **kwargs):
        # an irrational constant (log(2), sqrt(2), pi) as a Python float: np.log(2) is a float64
        # scalar, which would turn float32 arrays into float64 ones (NEP 50)
        if isinstance(expr, sp.Expr) and expr.is_number and not expr.is_Rational and not expr.is_Float:
            value = sp.N(expr, 20)
            if value.is_real:
                return repr(float(value))
        return super()._print(expr, **kwargs)

    def _module_format(self, fqn, register=True):
        return self._alias + fqn[len("numpy") :] if fqn.startswith("numpy.") else fqn

    def _print_Symbol(self, expr):
        return self._names[expr]

    def parenthesize(self, item, level, strict=False):
        if isinstance(item, (sp.Rational, sp.Float)) and item >= 0:  # prints as a plain number: 0.5
            return self._print(item)
        if item in self._levels:  # compound code standing in for a symbol: SymPy can't see inside it
            wrap = self._levels[item] <= level  # always strict: it may be a denominator or a power's base
            return f"({self._names[item]})" if wrap else self._names[item]
        return super().parenthesize(item, level, strict)

    def _print_Pow(self, expr, rational=False):
        if expr.exp == 1:  # x**1 from an unevaluated division x / y = x * y**-1
            return self.parenthesize(expr.base, 60)
        return super()._print_Pow(expr, rational=rational)

    def _print_Mul(self, expr):
        text = super()._print_Mul(expr)  # SymPy writes a*b/c: space the operators as PEP 8 does
        return re.sub(r"\s*(?<!\*)([*/])(?!\*)\s*", r" \1 ", text)

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Half(self, expr):
        return "0.5"

    def _print_Max(self, expr):
        return self._nested("maximum", expr.args)

    def _print_Min(self, expr):
        return self._nested("minimum", expr.args)

    def _nested(self, fn, args):
        code = self._print(args[0])
        for a in args[1:]:
            code = f"{self._alias}.{fn}({code}, {self._print(a)})"
        return code

    def _print_Heaviside(self, expr):
        h0 = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        return f"{self._alias}.heaviside({self._print(expr.args[0])}, {self._print(h0)})"

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        if cond != sp.true:
            raise ValueError("a Piecewise expression needs a final (value, True) branch")
        code = self._print(last)
        for value, c in reversed(pieces):
            code = f"{self._alias}.where({self._print(c)}, {self._print(value)}, {code})"
        return code

    def _print_Sigmoid(self, expr):
        return f"_sigmoid({self._print(expr.args[0])})"

    def _print_Softplus(self, expr):
        return f"{self._alias}.logaddexp(0.0, {self._print(expr.args[0])})"

    def _print_erf(self, expr):  # NumPy has no erf ufunc
        return f"_erf({self._print(expr.args[0])})"


def scalar_code(expr: sp.Expr, names: dict, module: str = "np", levels: dict | None = None) -> str:
    """``expr`` as NumPy code; ``names`` maps symbols to code, ``levels`` to its SymPy precedence."""
    return ScalarPrinter(names, module, levels).doprint(expr)


@functools.lru_cache(maxsize=4096)
def helpers_used(expr: sp.Expr) -> frozenset[str]:
    """Names of :mod:`symgraph.kernels` helpers the printed expression calls."""
    return frozenset(name for name, f in (("_sigmoid", Sigmoid), ("_erf", sp.erf)) if expr.has(f))


def scalar_function(expr: sp.Expr, symbols: tuple):
    """A Python function of arrays, one per symbol, computing ``expr`` with NumPy (raises if SymPy
    cannot print it)."""
    names = [f"a{i}" for i in range(len(symbols))]
    code = scalar_code(expr, dict(zip(symbols, names)))
    namespace = {"np": np, "_sigmoid": kernels._sigmoid, "_erf": kernels._erf}
    return eval(f"lambda {', '.join(names)}: {code}", namespace)  # text from our own printer only


@functools.lru_cache(maxsize=4096)
def templates(expr, symbols, levels, module, printer=None):
    """SymPy's common subexpressions of ``expr`` and the text ``printer`` (a :class:`ScalarPrinter`
    class) gives each, with placeholders for the arguments (and the shared names), computed once per
    expression and precedences."""
    printer = printer or ScalarPrinter
    with sp.evaluate(False):  # cse rebuilds the tree: don't let SymPy apply identities on the way
        shared, (reduced,) = sp.cse(expr, symbols=sp.numbered_symbols("_cse"))
    names = {s: f"\x00{k}\x00" for k, s in enumerate(symbols)}
    level_of = {s: lv for s, lv in zip(symbols, levels) if lv is not None}
    texts = []
    for sym, sub in shared:
        texts.append(printer(names, module, level_of).doprint(sub))
        names[sym] = f"\x00{len(names)}\x00"
    texts.append(printer(names, module, level_of).doprint(reduced))
    return tuple(shared), reduced, tuple(texts)


def fill(template: str, texts: list[str]) -> str:
    """A template from :func:`templates` with the code of each argument (and shared name) put in."""
    return re.sub("\x00(\\d+)\x00", lambda m: texts[int(m.group(1))], template)
