"""The stand-in ``cupy`` module: device arrays that are NumPy arrays in disguise.

:class:`ndarray` wraps a NumPy array and is not one, so the mistakes real CuPy punishes are
punished here too: a host ``numpy.ndarray`` mixed into an operation raises ``TypeError:
Unsupported type <class 'numpy.ndarray'>`` and ``numpy.asarray(device_array)`` raises
CuPy's "Implicit conversion to a NumPy array is not allowed" TypeError. Copies between
host and device are explicit: ``cupy.asarray`` (host to device), ``.get()`` and
``cupy.asnumpy`` (device to host). NumPy functions and ufuncs called on stand-in arrays
dispatch to the stand-in, as they do for CuPy arrays.

Functions take the keyword arguments of the NumPy function of the same name and write into
an ``out=`` stand-in array's storage, returning that array. Views (slicing, ``reshape``,
``transpose``, ``T``...) share memory with their base, and creation functions allocate
C-ordered storage, so a kernel given a view reads the view's own data pointer, as on a GPU.
Type promotion is the installed NumPy's. Names real CuPy lacks are not provided, and names
it has that this module does not emulate raise AttributeError saying so.
"""

from __future__ import annotations

import types

import numpy as np

from ._kernels import CompileError, RawKernel

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")
_SCALARS = (bool, int, float, complex, np.generic)


def _unsupported(value):
    return TypeError(f"Unsupported type {type(value)}")


def _unwrap(value):
    """NumPy's view of an argument: device arrays unwrapped (in lists and tuples too); host arrays refused."""
    if isinstance(value, ndarray):
        return value._data
    if isinstance(value, np.ndarray):
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    """Device arrays for NumPy's results (a NumPy scalar becomes a 0-d array, as in CuPy)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return ndarray._of(np.asarray(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


def _call(numpy_function, args, kwargs):
    """``numpy_function`` on the unwrapped arguments; an ``out=`` array is written and returned.
    Floating-point errors pass silently, as on a GPU (``x / 0`` is ``inf`` without a warning)."""
    out = kwargs.pop("out", None)
    args, kwargs = _unwrap(args), {k: _unwrap(v) for k, v in kwargs.items()}
    if out is not None and not isinstance(out, ndarray):
        raise TypeError(f"out must be a cupy.ndarray, got {type(out)}")
    with np.errstate(all="ignore"):
        if out is None:
            return _wrap(numpy_function(*args, **kwargs))
        numpy_function(*args, out=out._data, **kwargs)
    return out


def _function(numpy_function, name: str | None = None):
    """A stand-in for the CuPy function that mirrors ``numpy_function``."""

    def function(*args, **kwargs):
        return _call(numpy_function, args, kwargs)

    function.__name__ = function.__qualname__ = name or numpy_function.__name__
    function.__doc__ = f"Emulated ``cupy.{function.__name__}`` (NumPy's ``{numpy_function.__name__}`` on device arrays)."
    return function


class ufunc:
    """An emulated ``cupy.ufunc``: array and scalar operands only (lists and host arrays raise)."""

    def __init__(self, numpy_ufunc: np.ufunc):
        self._ufunc = numpy_ufunc
        self.name = self.__name__ = f"cupy_{numpy_ufunc.__name__}"
        self.nin, self.nout, self.nargs = numpy_ufunc.nin, numpy_ufunc.nout, numpy_ufunc.nargs

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    def __call__(self, *args, out=None, dtype=None, casting="same_kind"):
        for arg in args:
            if not isinstance(arg, (ndarray, *_SCALARS)):
                raise _unsupported(arg)
        return _call(self._ufunc, args, {"out": out, "dtype": dtype, "casting": casting})

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        """Like CuPy 13, only ``add.reduce`` (a sum) and ``multiply.reduce`` (a product)."""
        if self._ufunc not in (np.add, np.multiply):
            raise NotImplementedError(f"`{self.name}.reduce` is not supported yet")
        if not isinstance(array, ndarray):
            raise _unsupported(array)
        return _call(self._ufunc.reduce, (array,), {"axis": axis, "dtype": dtype, "out": out, "keepdims": keepdims})

    def at(self, a, indices, b=None):
        """Like CuPy 13's ``ufunc.at``, in place; only ``add.at`` (a scatter-add: repeated indices all add)."""
        if self._ufunc is not np.add:
            raise NotImplementedError(f"`{self.name}.at` is not emulated")
        if not isinstance(a, ndarray) or not isinstance(b, (ndarray, *_SCALARS)):
            raise _unsupported(a if not isinstance(a, ndarray) else b)
        key = indices if isinstance(indices, tuple) else (indices,)
        key = tuple(k._data if isinstance(k, ndarray) else k for k in key)
        self._ufunc.at(a._data, key, _unwrap(b))


_UFUNCS = {name: ufunc(getattr(np, name)) for name in (
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "remainder", "power",
    "negative", "square", "sqrt", "exp", "log", "log1p", "expm1", "tanh", "sin", "cos", "absolute",
    "sign", "floor", "maximum", "minimum", "logaddexp", "isfinite", "isnan",
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
    "bitwise_and", "bitwise_or", "bitwise_xor", "invert",
)}


def _operator(name: str, reflected: bool = False):
    operation = _UFUNCS[name]
    if reflected:
        return lambda self, other: operation(other, self)
    return lambda self, other: operation(self, other)


def _in_place(name: str):
    operation = _UFUNCS[name]

    def method(self, other):
        operation(self, other, out=self)
        return self

    return method


class _Flags:
    """``ndarray.flags``: the memory layout flags CuPy reports."""

    def __init__(self, data: np.ndarray):
        self.c_contiguous = data.flags.c_contiguous
        self.f_contiguous = data.flags.f_contiguous
        self.owndata = data.flags.owndata

    def __repr__(self):
        return f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}\n  OWNDATA : {self.owndata}"


class ndarray:
    """An emulated ``cupy.ndarray``: a NumPy array that only device operations may touch."""

    __slots__ = ("_data", "__weakref__")

    def __init__(self, shape, dtype=float):
        self._data = np.empty(shape, dtype)

    @classmethod
    def _of(cls, data: np.ndarray) -> ndarray:
        array = object.__new__(cls)
        array._data = data
        return array

    def __getattr__(self, name):
        raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}: "
                             "the emulated CuPy (codegen.testing) does not emulate it")

    # Host interoperability: refused implicitly, explicit with get().
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, numpy_ufunc, method, *inputs, **kwargs):
        device = _UFUNCS.get(numpy_ufunc.__name__)
        if device is None or method not in ("__call__", "reduce"):
            return NotImplemented
        if "out" in kwargs:  # NumPy passes out as a tuple
            (kwargs["out"],) = kwargs["out"]
        return getattr(device, method)(*inputs, **kwargs)

    def __array_function__(self, numpy_function, types_, args, kwargs):
        device = _API.get(numpy_function.__name__)
        if not callable(device) or isinstance(device, type):
            return NotImplemented
        return device(*args, **kwargs)

    def get(self, stream=None, order="C", out=None) -> np.ndarray:
        """A host copy (into the host array ``out`` if given)."""
        if out is None:
            return np.array(self._data, order=order, copy=True)
        np.copyto(out, self._data)
        return out

    # Attributes.
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    itemsize = property(lambda self: self._data.itemsize)
    nbytes = property(lambda self: self._data.nbytes)
    strides = property(lambda self: self._data.strides)
    flags = property(lambda self: _Flags(self._data))
    T = property(lambda self: ndarray._of(self._data.T))

    def __repr__(self):
        return repr(self._data)

    def __str__(self):
        return str(self._data)

    # Conversions of size-1 arrays, length and iteration.
    def item(self):
        return self._data.item()

    def __float__(self):
        return float(self._data)

    def __int__(self):
        return int(self._data)

    def __bool__(self):
        return bool(self._data)

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    # Indexing: basic indexing gives views, also of single elements (0-d arrays).
    def __getitem__(self, key):
        key = _unwrap_key(key)
        return ndarray._of(self._data[key])

    def __setitem__(self, key, value):
        if not isinstance(value, (ndarray, *_SCALARS)):
            raise _unsupported(value)
        self._data[_unwrap_key(key)] = _unwrap(value)

    # Copies, casts and shapes.
    def copy(self, order="C"):
        return ndarray._of(self._data.copy(order))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return ndarray._of(self._data.astype(dtype, order=order, copy=copy))

    def fill(self, value):
        if not isinstance(value, _SCALARS):
            raise _unsupported(value)
        self._data.fill(value)

    def reshape(self, *shape, order="C"):
        return ndarray._of(self._data.reshape(*shape, order=order))

    def ravel(self, order="C"):
        return ndarray._of(self._data.ravel(order))

    def transpose(self, *axes):
        return ndarray._of(self._data.transpose(*axes))

    def squeeze(self, axis=None):
        return ndarray._of(self._data.squeeze(axis))

    # Reductions.
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return _call(np.sum, (self,), {"axis": axis, "dtype": dtype, "out": out, "keepdims": keepdims})

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        return _call(np.prod, (self,), {"axis": axis, "dtype": dtype, "out": out, "keepdims": keepdims})

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return _call(np.mean, (self,), {"axis": axis, "dtype": dtype, "out": out, "keepdims": keepdims})

    def max(self, axis=None, out=None, keepdims=False):
        return _call(np.max, (self,), {"axis": axis, "out": out, "keepdims": keepdims})

    def min(self, axis=None, out=None, keepdims=False):
        return _call(np.min, (self,), {"axis": axis, "out": out, "keepdims": keepdims})

    def argmax(self, axis=None, out=None, keepdims=False):
        return _call(np.argmax, (self,), {"axis": axis, "out": out, "keepdims": keepdims})

    # Operators.
    __add__, __radd__, __iadd__ = _operator("add"), _operator("add", True), _in_place("add")
    __sub__, __rsub__, __isub__ = _operator("subtract"), _operator("subtract", True), _in_place("subtract")
    __mul__, __rmul__, __imul__ = _operator("multiply"), _operator("multiply", True), _in_place("multiply")
    __truediv__, __rtruediv__ = _operator("true_divide"), _operator("true_divide", True)
    __itruediv__ = _in_place("true_divide")
    __floordiv__, __rfloordiv__ = _operator("floor_divide"), _operator("floor_divide", True)
    __mod__, __rmod__ = _operator("remainder"), _operator("remainder", True)
    __pow__, __rpow__ = _operator("power"), _operator("power", True)
    __and__, __rand__ = _operator("bitwise_and"), _operator("bitwise_and", True)
    __or__, __ror__ = _operator("bitwise_or"), _operator("bitwise_or", True)
    __xor__, __rxor__ = _operator("bitwise_xor"), _operator("bitwise_xor", True)
    __lt__, __le__ = _operator("less"), _operator("less_equal")
    __gt__, __ge__ = _operator("greater"), _operator("greater_equal")
    __eq__, __ne__ = _operator("equal"), _operator("not_equal")
    __hash__ = None

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return _UFUNCS["negative"](self)

    def __pos__(self):
        return self.copy()

    def __abs__(self):
        return _UFUNCS["absolute"](self)

    def __invert__(self):
        return _UFUNCS["invert"](self)


def _unwrap_key(key):
    """An index for NumPy: device index arrays unwrapped, and a trailing ``...`` so that
    indexing single elements gives a 0-d view (CuPy's result) rather than a NumPy scalar."""
    key = key if isinstance(key, tuple) else (key,)
    key = tuple(k._data if isinstance(k, ndarray) else k for k in key)
    if not any(k is Ellipsis for k in key):
        key += (Ellipsis,)
    return key


# Creation and host <-> device copies.
def asarray(a, dtype=None, order=None):
    """A device array of ``a``: host data is copied, a device array passes through (cast if asked)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return ndarray._of(np.array(a, dtype=dtype, order="K" if order is None else order, copy=True))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    """A device array of ``obj``: always a copy, unless ``copy=False`` and ``obj`` is a device array of ``dtype``."""
    if isinstance(obj, ndarray):
        return ndarray._of(np.array(obj._data, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    return ndarray._of(np.array(obj, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise _unsupported(a)
    return ndarray._of(np.ascontiguousarray(a._data, dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None):
    """A host array: a device array's copy; anything else through ``numpy.asarray``."""
    if isinstance(a, ndarray):
        return a.get(stream, order, out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    """The stand-in module if any argument is a device array, else ``numpy``."""
    return _MODULE if any(isinstance(a, ndarray) for a in args) else np


def where(condition, x=None, y=None):
    if (x is None) != (y is None):
        raise ValueError("Must provide both 'x' and 'y' or neither.")
    for arg in (condition, x, y):
        if arg is not None and not isinstance(arg, (ndarray, *_SCALARS)):
            raise _unsupported(arg)
    return _call(np.where, (condition,) if x is None else (condition, x, y), {})


def matmul(a, b, out=None):
    return _call(np.matmul, (a, b), {"out": out})


def argmax(a, axis=None, dtype=None, out=None, keepdims=False):
    index = _call(np.argmax, (a,), {"axis": axis, "keepdims": keepdims})
    if dtype is not None:
        index = index.astype(dtype)
    if out is None:
        return index
    out[...] = index
    return out


def argmin(a, axis=None, dtype=None, out=None, keepdims=False):
    index = _call(np.argmin, (a,), {"axis": axis, "keepdims": keepdims})
    if dtype is not None:
        index = index.astype(dtype)
    if out is None:
        return index
    out[...] = index
    return out


def _stable(numpy_sort, name):
    """CuPy's sorts are stable; ``kind`` may only be None or "stable"."""

    def sort(a, axis=-1, kind=None):
        if kind not in (None, "stable"):
            raise ValueError(f"{name}: kind={kind!r} is not supported (CuPy sorts are stable)")
        return _call(numpy_sort, (a,), {"axis": axis, "kind": "stable"})

    sort.__name__ = sort.__qualname__ = name
    sort.__doc__ = f"Emulated ``cupy.{name}``: a stable sort."
    return sort


argsort, sort = _stable(np.argsort, "argsort"), _stable(np.sort, "sort")


def as_strided(x, shape=None, strides=None):
    """``cupy.lib.stride_tricks.as_strided``: a view of x's memory with these shape and strides (bytes).
    Read-only here (windows overlap: writing through one would change others)."""
    if not isinstance(x, ndarray):
        raise _unsupported(x)
    return ndarray._of(np.lib.stride_tricks.as_strided(x._data, shape, strides, writeable=False))


class _Namespace(types.ModuleType):
    """A (sub)module whose missing attributes are reported as not emulated."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}: "
                             "the emulated CuPy (codegen.testing) does not emulate it")


def _namespace(name: str, doc: str, **attributes) -> _Namespace:
    module = _Namespace(name, doc)
    module.__dict__.update(attributes)
    return module


class _Device:
    """``cupy.cuda.Device``: the one emulated device, which is always synchronized."""

    def __init__(self, device=0):
        if device not in (0, None):
            raise ValueError(f"the emulated CuPy has one device (0), got {device!r}")
        self.id = 0

    def synchronize(self):
        pass

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


class _Stream:
    """``cupy.cuda.Stream``: work runs when it is launched, so synchronizing does nothing."""

    null: _Stream

    def synchronize(self):
        pass


_Stream.null = _Stream()

_cuda = _namespace(
    "cupy.cuda", "Emulated ``cupy.cuda``: one device, the null stream, the kernel compiler's exception.",
    Device=_Device, Stream=_Stream, get_current_stream=lambda: _Stream.null,
    runtime=_namespace("cupy.cuda.runtime", "Emulated ``cupy.cuda.runtime``.", getDeviceCount=lambda: 1),
    compiler=_namespace("cupy.cuda.compiler", "Emulated ``cupy.cuda.compiler``.", CompileException=CompileError),
)

_lib = _namespace(
    "cupy.lib", "Emulated ``cupy.lib``: stride tricks.",
    stride_tricks=_namespace("cupy.lib.stride_tricks", "Emulated ``cupy.lib.stride_tricks``.", as_strided=as_strided),
)

_FUNCTIONS = {
    # creation
    "empty": np.empty, "zeros": np.zeros, "ones": np.ones, "full": np.full, "eye": np.eye, "arange": np.arange,
    "zeros_like": np.zeros_like, "empty_like": np.empty_like, "ones_like": np.ones_like, "full_like": np.full_like,
    # elementwise functions that are not ufuncs in CuPy
    "clip": np.clip,
    # linear algebra
    "dot": np.dot, "tensordot": np.tensordot, "outer": np.outer,
    # reductions
    "sum": np.sum, "prod": np.prod, "mean": np.mean, "amax": np.max, "max": np.max, "amin": np.min, "min": np.min,
    # shapes and indexing
    "broadcast_to": np.broadcast_to, "reshape": np.reshape, "transpose": np.transpose, "swapaxes": np.swapaxes,
    "moveaxis": np.moveaxis, "expand_dims": np.expand_dims, "squeeze": np.squeeze, "concatenate": np.concatenate,
    "stack": np.stack, "take": np.take, "take_along_axis": np.take_along_axis, "atleast_1d": np.atleast_1d,
    # linear algebra and indexing (issue 16): calls real CuPy 13 has
    "einsum": np.einsum,
    # cumulative and ordering (issue 16): names and keywords real CuPy 13 has
    "cumsum": np.cumsum, "cumprod": np.cumprod, "flip": np.flip,
}

_linalg = _namespace(
    "cupy.linalg", "Emulated ``cupy.linalg``: the calls of real CuPy 13 that generated code uses.",
    **{name: _function(getattr(np.linalg, name), name) for name in ("solve", "inv", "det", "cholesky", "norm")},
    # CuPy returns a plain tuple where NumPy 2 returns a named one
    **{name: _function(lambda *a, _f=getattr(np.linalg, name): tuple(_f(*a)), name) for name in ("slogdet", "eigh")},
)

_API = {
    **{name: _function(f, name) for name, f in _FUNCTIONS.items()},
    **_UFUNCS,
    "abs": _UFUNCS["absolute"],
    "asarray": asarray, "array": array, "ascontiguousarray": ascontiguousarray, "asnumpy": asnumpy,
    "where": where, "matmul": matmul, "argmax": argmax, "get_array_module": get_array_module,
    "argmin": argmin, "argsort": argsort, "sort": sort,  # issue 16 (redops)
    "broadcast_shapes": np.broadcast_shapes,  # CuPy re-exports NumPy's
    "ndarray": ndarray, "ufunc": ufunc, "RawKernel": RawKernel, "cuda": _cuda, "lib": _lib, "linalg": _linalg,
    "dtype": np.dtype, "nan": np.nan, "inf": np.inf, "newaxis": np.newaxis, "pi": np.pi, "e": np.e,
    **{name: getattr(np, name) for name in (
        "float16", "float32", "float64", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64", "bool_")},
}

_MODULE = _namespace("cupy", __doc__, **_API, __version__="13.6.0+emulated", _symgraph_emulated=True)
