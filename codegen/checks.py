"""Argument checks that every generated module carries with it, as text, like the helper kernels.

:func:`_checked` decorates the generated function: before any line of it runs, it binds the
arguments as Python would, converts the inputs (only when no value changes) and checks the
parameters and state. The compiled function's slow path runs the copy in its own module, for
its inputs (it passes each parameter's ``.value`` itself), so a compiled function and a saved
module bind, convert and refuse inputs alike, with the same messages. The generated code calls
``_check_labels`` where it reads integer labels. Keep them short and dependency-free (``np`` only).

An argument is described by ``(argument, shape, dtype)``: the identifier it is passed as, its
shape (ints, dimension names that must agree between arguments, None for any size) and its
dtype; then the graph's name for it when that differs from the identifier.
"""

import numpy as np


def _checked(fn, inputs, keywords=(), updated=()):
    """Decorator: ``fn`` checks its arguments first. ``inputs`` are passed by position or keyword
    and converted when no value changes; ``keywords`` (parameters and state it reads) and
    ``updated`` (those it writes in place) by keyword only, as NumPy arrays of exactly their shape
    and dtype, any strides; an updated one must be writable and share no memory with another argument."""

    input_names, written_names = [s[0] for s in inputs], {s[0] for s in updated}

    def decorate(body):
        def check(args, kwargs):
            values, state = _bind(fn, inputs, [*keywords, *updated], args, kwargs)
            dims = {}
            arrays = [_input_array(fn, spec, value, dims) for spec, value in zip(inputs, values)]
            for specs, written in ((keywords, False), (updated, True)):
                for spec in specs:
                    _state_array(fn, spec, state[spec[0]], written)
            _apart(fn, written_names, [*zip(input_names, arrays), *state.items()])
            return arrays, state

        def checked(*args, **kwargs):
            arrays, state = check(args, kwargs)
            return body(*arrays, **state)

        checked.__name__ = checked.__qualname__ = body.__name__
        checked.__doc__, checked.__wrapped__, checked.check = body.__doc__, body, check
        return checked

    return decorate


def _bind(fn, inputs, keywords, args, kwargs):
    """(input values in order, {keyword: value}), bound as Python binds ``def fn(x, y, *, W, b)``
    (inputs x, y; keywords W, b); a TypeError naming the argument missing, unexpected or given twice."""
    order, names = [s[0] for s in inputs], [s[0] for s in keywords]
    takes = f"takes {len(order)} input(s) ({', '.join(map(repr, order))})"
    if len(args) > len(order):
        raise TypeError(f"{fn}() {takes} but {len(args)} were given positionally")
    given = dict(zip(order, args))
    for key, value in kwargs.items():
        if key in given:
            raise TypeError(f"{fn}() got multiple values for argument {key!r}")
        if key not in order and key not in names:
            raise TypeError(f"{fn}() got an unexpected keyword argument {key!r}")
        given[key] = value
    for kind, expected, also in (("input(s)", order, f": it {takes}"), ("keyword argument(s)", names, "")):
        missing = [k for k in expected if k not in given]
        if missing:
            raise TypeError(f"{fn}() missing {kind} {', '.join(map(repr, missing))}{also}")
    return [given[k] for k in order], {k: given[k] for k in names}


def _what(kind, argument, name=None):
    """``input 'x'``; ``input 'my x' (argument my_x)`` when the argument's name in the graph differs."""
    return f"{kind} {argument!r}" if name is None else f"{kind} {name!r} (argument {argument})"


def _shape_text(shape):
    """``(batch, 3)``: a shape as messages show it (None as ``?``)."""
    inner = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _input_array(fn, spec, value, dims):
    """The input as an array of its dtype (see ``_convert``), its shape checked; else a ValueError.
    (Messages are only built for an error: this runs on every call of a saved module.)"""
    argument, shape, dtype, *name = spec
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise ValueError(f"{fn}: {_what('input', argument, *name)} is not an array of numbers ({e})") from None
    if array.ndim != len(shape):
        raise ValueError(f"{fn}: {_what('input', argument, *name)} expects shape {_shape_text(shape)}, got an "
                         f"array of shape {array.shape} ({array.ndim} dimensions instead of {len(shape)})")
    for axis, (want, got) in enumerate(zip(shape, array.shape)):
        if isinstance(want, int) and want != got:
            raise ValueError(f"{fn}: {_what('input', argument, *name)} expects shape {_shape_text(shape)}, got "
                             f"{array.shape}: axis {axis} has length {got}, expected {want}")
        if isinstance(want, str):
            seen, first = dims.setdefault(want, (got, spec))
            if seen != got:
                raise ValueError(f"{fn}: dimension {want!r} is {seen} in {_what('input', first[0], *first[3:])} "
                                 f"but {got} in {_what('input', argument, *name)} (shape {array.shape})")
    return array if array.dtype == dtype else _convert(fn, _what("input", argument, *name), array, np.dtype(dtype))


def _convert(fn, what, array, dtype):
    """The data in ``dtype`` when no value changes, else a ValueError. Accepted: bools; integers into
    a float (rounded to the nearest float, as 1.1 is in float32) or into an integer dtype that holds
    them; integral floats into an integer dtype that holds them; floats into a float (rounded).
    Refused: fractions, NaN, inf or out-of-range numbers into an integer dtype; a finite number that
    would become inf in a narrower float; numbers into bool; complex, string and object data."""
    ok = array.dtype.kind == "b" or (array.dtype.kind in "iuf" and dtype.kind != "b")
    if ok:
        with np.errstate(all="ignore"):
            converted = array.astype(dtype)
            if dtype.kind == "f":
                ok = not np.any(np.isinf(converted) & np.isfinite(array))
            else:
                ok = np.array_equal(converted.astype(array.dtype), array) and np.array_equal(converted < 0, array < 0)
    if not ok:
        raise ValueError(f"{fn}: {what} expects {dtype} data, got {array.dtype} data "
                         f"that cannot be converted without changing values")
    return converted


def _state_array(fn, spec, value, updated):
    """A parameter or state argument: a NumPy array of exactly its shape and dtype (never converted:
    an update must reach the caller's array), writable when it is ``updated`` in place; else a
    ValueError naming it."""
    argument, shape, dtype, *name = spec
    if isinstance(value, np.ndarray) and value.shape == shape and value.dtype == dtype:
        if value.flags.writeable or not updated:
            return
        problem = "is updated in place, so it must be writable; got a read-only array"
    else:
        got = (f"shape {value.shape} and dtype {value.dtype}" if isinstance(value, np.ndarray)
               else f"{type(value).__name__} {value!r:.60}")
        problem = f"must be a NumPy array of shape {_shape_text(shape)} and dtype {dtype}, got {got}"
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
            if (name in updated or other in updated) and np.shares_memory(array, seen):
                written, also = (name, other) if name in updated else (other, name)
                raise ValueError(f"{fn}: keyword argument {written!r} is updated in place, so it must share "
                                 f"no memory with another argument; it shares memory with {also!r}")
        by_buffer[id(buffer)].append((name, array))


def _check_labels(labels, num_classes, what):
    """Integer labels must be class indices 0 .. num_classes - 1 (NumPy would count -1 from the end)."""
    if labels.size:
        low, high = labels.min(), labels.max()
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(f"{what} must be class indices 0 to {num_classes - 1} ({num_classes} classes), "
                             f"got {bad}")
