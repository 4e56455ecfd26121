"""Safe, deterministic identifiers for generated code.

Every piece of user text (node names, dimension names, elementwise op names)
passes through :func:`identifier` before it reaches generated source, so a
name holding quotes, newlines or code can never inject anything.

Prefixes (documented in the README glossary): ``grad_<x>`` is the adjoint
(the gradient of the output with respect to ``x``), ``tan_<x>`` the tangent of
``x`` in forward mode; other unnamed values are named after their op
(``matmul1``, ``tanh2``); array constants are ``const1``, ``const2``.

Length: an identifier has at most ``MAX_LENGTH`` (40) characters (then ``_2``... when the name
is taken already). A longer name keeps its first 31 characters, then ``_`` and 8 hex digits of
the SHA-256 of the whole text, so it stays readable, distinct and the same on every run
(``a_very_long_placeholder_name_of_e3b0c442``). Docstrings and comments show the full
(sanitized) name beside it; generated lines never need to split a name.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import keyword
import re
from collections import Counter

MAX_LENGTH = 40  # longest generated identifier: a longer name is shortened, with a hash of the whole
HASH_DIGITS = 8

RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {"np", "cp", "base64"}


@functools.lru_cache(maxsize=8192)  # the same bases (matmul, tanh, grad_...) come back thousands of times
def identifier(text: str, fallback: str = "v") -> str:
    """``text`` turned into a valid, non-reserved Python identifier (ASCII only) of at most
    ``MAX_LENGTH`` characters: :func:`sanitized`, shortened (see the module docstring)."""
    name = sanitized(text, fallback)
    if len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:HASH_DIGITS]
    return f"{name[: MAX_LENGTH - HASH_DIGITS - 1].rstrip('_')}_{digest}"


def sanitized(text: str, fallback: str = "v") -> str:
    """``text`` as a valid, non-reserved ASCII identifier of any length: each other character
    becomes ``_``, runs of ``_`` one, a leading digit gets ``fallback`` before it."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", str(text))
    name = re.sub(r"__+", "_", name).strip("_") or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    return name + "_" if name in RESERVED else name


def full_name(text) -> str | None:
    """The sanitized name, in full, of a ``text`` whose identifier had to be shortened (what
    docstrings and comments show beside the identifier); None when it was not shortened."""
    name = sanitized(text)
    return name if len(name) > MAX_LENGTH else None


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
