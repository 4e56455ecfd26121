"""The argument checks of a generated CuPy module: :mod:`codegen.checks`, for device arrays.

A CuPy module carries the NumPy checks, then these functions, which replace three of them:
an input may be a CuPy array (checked where it is, on the device) or host data (checked on
the host by the NumPy check, kept as ``_host_input_array``, then copied to the device once);
parameters and state must be CuPy arrays. Keep them short and dependency-free.
"""

import numpy as np

try:  # only the text of these functions is needed to generate a module: CuPy may be missing here
    import cupy as cp
except ImportError:
    cp = None

_host_input_array = None  # the module's copy of codegen.checks._input_array (see codegen.backends.cupy)


def _input_array(fn, spec, value, dims):
    """The input as a CuPy array of its dtype, its shape checked; host data is checked on the host,
    then copied to the device; a device array of another dtype is converted on the host."""
    argument, shape, dtype, *name = spec
    if isinstance(value, cp.ndarray):
        if value.dtype == dtype:  # shape checks only: a host array of that shape with no memory of its own
            like = np.lib.stride_tricks.as_strided(np.zeros(1, value.dtype), value.shape, (0,) * value.ndim)
            _host_input_array(fn, spec, like, dims)
            return value
        value = value.get()
    return cp.asarray(_host_input_array(fn, spec, value, dims))


def _state_array(fn, spec, value, updated):
    """A parameter or state argument: a CuPy array of exactly its shape and dtype (never converted:
    an update must reach the caller's array); else a ValueError naming it."""
    argument, shape, dtype, *name = spec
    if isinstance(value, cp.ndarray) and value.shape == shape and value.dtype == dtype:
        return
    got = (f"shape {value.shape} and dtype {value.dtype}" if isinstance(value, cp.ndarray)
           else f"{type(value).__name__} {value!r:.60}")
    problem = f"must be a CuPy array of shape {_shape_text(shape)} and dtype {dtype}, got {got}"
    raise ValueError(f"{fn}: {_what('keyword argument', argument, *name)} {problem}")


def _apart(fn, updated, arguments):
    """A ValueError when an argument in ``updated`` shares memory with another of the (name, array)
    ``arguments``: writing it would change the other. Only arrays over the same buffer are compared."""
    by_buffer = {}
    for name, array in arguments:
        buffer = array
        while getattr(buffer, "base", None) is not None:
            buffer = buffer.base
        for other, seen in by_buffer.setdefault(id(buffer), []):
            if name in updated or other in updated:
                written, also = (name, other) if name in updated else (other, name)
                raise ValueError(f"{fn}: keyword argument {written!r} is updated in place, so it must share "
                                 f"no memory with another argument; it shares memory with {also!r}")
        by_buffer[id(buffer)].append((name, array))
