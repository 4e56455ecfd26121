"""Run generated CuPy modules without a GPU: a CPU stand-in for ``cupy``.

The stand-in is a module object that plays ``cupy`` for code that does ``import cupy as
cp``. Its arrays (:class:`ndarray`) hold NumPy arrays but are not NumPy arrays: like CuPy's
they refuse to mix with host arrays (``TypeError: Unsupported type <class
'numpy.ndarray'>``) and to be converted implicitly (``numpy.asarray(x)`` raises), so a
module that forgets a host-device copy fails here as it would on a GPU. It emulates the
slice of CuPy a generated module uses: creation and copies, ufuncs and reductions with
``out=``, shape functions, views that share memory, ``cupy.cuda`` synchronization, and
``RawKernel``, whose CUDA C++ source is compiled unchanged by the host C++ compiler and
run one (block, thread) after another (see :mod:`codegen.testing._kernels`).

It refuses what it cannot emulate faithfully: kernels that synchronize threads, share
memory or use warp operations fail to compile with a message saying so, and names of
CuPy it does not emulate raise AttributeError. :mod:`codegen.testing.nvcc` checks the same
kernel sources with the real CUDA compiler when one is installed.

``emulated_cupy()`` swaps ``sys.modules["cupy"]``, which is process-wide, not
thread-local: it is for tests, not for code running beside other threads that import CuPy.
"""

from __future__ import annotations

import contextlib
import sys
import types

from ._cupy import _MODULE, ndarray
from ._kernels import CompileError, RawKernel, cache_dir, kernel_sources

_MISSING = object()


def emulated_module() -> types.ModuleType:
    """The stand-in ``cupy`` module (one per process), without installing it."""
    return _MODULE


def is_emulated(module) -> bool:
    """Whether ``module`` is the stand-in (rather than, say, the real ``cupy``)."""
    return module is _MODULE


@contextlib.contextmanager
def emulated_cupy():
    """Within the block, ``import cupy`` gives the stand-in module, which is yielded.

    ``sys.modules["cupy"]`` is restored on exit (to the previous module, or to absent),
    also when the block raises; blocks nest. Process-wide, so not for threaded code.
    """
    previous = sys.modules.get("cupy", _MISSING)
    sys.modules["cupy"] = _MODULE
    try:
        yield _MODULE
    finally:
        if previous is _MISSING:
            sys.modules.pop("cupy", None)
        else:
            sys.modules["cupy"] = previous


__all__ = ["CompileError", "RawKernel", "cache_dir", "emulated_cupy", "emulated_module", "is_emulated",
           "kernel_sources", "ndarray"]
