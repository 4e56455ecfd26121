"""Safe, deterministic identifiers for generated code.

Every piece of user text (node names, dimension names, elementwise op names)
passes through :func:`identifier` before it reaches generated source, so a
name holding quotes, newlines or code can never inject anything.

Prefixes (documented in the README glossary): ``grad_<x>`` is the adjoint
(the gradient of the output with respect to ``x``), ``tan_<x>`` the tangent of
``x`` in forward mode; other unnamed values are named after their op
(``matmul1``, ``tanh2``); array constants are ``const1``, ``const2``.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import re
from collections import Counter

RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {"np", "cp", "base64"}


@functools.lru_cache(maxsize=8192)  # the same bases (matmul, tanh, grad_...) come back thousands of times
def identifier(text: str, fallback: str = "v") -> str:
    """``text`` turned into a valid, non-reserved Python identifier (ASCII only)."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", str(text))
    name = re.sub(r"__+", "_", name).strip("_") or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    return name + "_" if name in RESERVED else name


class Namer:
    """Hands out unique identifiers: the first ``x`` is ``x``, then ``x_2``, ``x_3``...
    Numbered bases (``matmul``) always carry a number: ``matmul1``, ``matmul2``."""

    def __init__(self, reserved=()):
        self.taken: set[str] = set(reserved)
        self.counts: Counter = Counter()

    def unique(self, text: str) -> str:
        base = identifier(text)
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def numbered(self, text: str) -> str:
        base = identifier(text).rstrip("_") or "v"  # the number already keeps sum1 off the builtin sum
        while True:
            self.counts[base] += 1
            name = f"{base}{self.counts[base]}"
            if name not in self.taken:
                self.taken.add(name)
                return name
