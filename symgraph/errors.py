"""Errors raised while a graph is built, located at the user's own line."""

from __future__ import annotations

import contextlib
import os
import sys

_PACKAGE_DIRS = tuple(
    os.path.dirname(os.path.abspath(__file__)).rsplit(os.sep, 1)[0] + os.sep + pkg + os.sep
    for pkg in ("symgraph", "codegen")
) + (os.path.abspath(contextlib.__file__),)  # a decorator made with contextmanager (gc_paused) is not the user


class ShapeError(ValueError):
    """An op was given operands whose shapes it cannot combine."""


class DTypeError(ValueError):
    """An op was given operands of a dtype it does not accept."""


def user_location() -> str:
    """``file:line`` of the innermost stack frame outside symgraph and codegen."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIRS) and "importlib" not in filename:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"
