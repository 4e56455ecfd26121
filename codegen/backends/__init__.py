"""Backends by name: ``codegen.compile(..., backend="numpy")`` looks its backend up here.

A backend is one object owning its printer, scalar printer, imports, header, helper
kernels and array type (see :class:`codegen.backends.numpy.NumPyBackend`). Adding one is a
new module in this package and one entry in ``BACKENDS``.
"""

from __future__ import annotations

from .cupy import CuPyBackend
from .numpy import NumPyBackend, NumPyPrinter

BACKENDS = {"numpy": NumPyBackend(), "cupy": CuPyBackend()}
PLANNED: dict[str, str] = {}  # name -> why it is not built yet


def get(name: str):
    """The backend registered as ``name``; NotImplementedError for a planned one, else ValueError."""
    if name in BACKENDS:
        return BACKENDS[name]
    if name in PLANNED:
        raise NotImplementedError(f"compile: {PLANNED[name]}")
    known = tuple(BACKENDS) + tuple(PLANNED)
    raise ValueError(f"compile: backend must be one of {known}, got {name!r}")


__all__ = ["BACKENDS", "CuPyBackend", "NumPyBackend", "NumPyPrinter", "get"]
