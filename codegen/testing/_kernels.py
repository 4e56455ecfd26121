"""``RawKernel`` for the stand-in: CUDA C++ kernels compiled by the host C++ compiler.

A kernel's source is compiled unchanged, after :data:`CUDA_HOST_HEADER`, which gives
host meanings to the CUDA C++ a generated elementwise or scatter kernel uses. A launch
runs every (block, thread) pair one after another on the calling thread, so only kernels
whose threads do not wait for or talk to each other can be emulated; the ones that do
(``__syncthreads``, ``__shared__``, warp primitives) are refused with a
:class:`CompileError` before the compiler runs.

Compiling is lazy and batched: the first launch (or ``compile()``) of any kernel compiles
every kernel created and not compiled yet in one compiler run, one shared library, each
kernel's source in its own namespace behind a ``#line`` marker so diagnostics name it.
Libraries are cached on disk under :func:`cache_dir`, keyed by a hash of everything that
goes into them, so a test run recompiles only kernels it has not seen before.

The launcher calls each kernel through its real C signature: a variadic template deduces
the parameter types from the kernel's address and exports their count, sizes and kinds,
which the launch checks every argument against (the pointee's too, stricter than CuPy,
which would run a ``float*`` kernel on a float64 array).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np

CXX = "g++"
# The kernels of two modules may share (extern "C") names, and so may the shim's template instances
# for them: -fno-gnu-unique keeps those instances per library (GCC otherwise makes the dynamic linker
# share one across all libraries), -Wl,-Bsymbolic makes each library call its own kernels
CXX_FLAGS = ("-std=c++17", "-O1", "-Wall", "-fPIC", "-shared", "-pipe", "-fno-gnu-unique", "-Wl,-Bsymbolic")
CACHE_ENV = "SYMGRAPH_EMULATED_CUPY_CACHE"

CUDA_HOST_HEADER = r"""// CUDA C++ on the host, for symgraph's emulated CuPy (codegen.testing).
#include <cmath>
#include <math.h>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))

struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x = 1, unsigned int y = 1, unsigned int z = 1) : x(x), y(y), z(z) {}
};
static thread_local uint3 threadIdx, blockIdx;
static thread_local dim3 blockDim, gridDim;

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float x, float y) { return x / y; }

// CUDA overloads min and max for every arithmetic pair; the common type decides here.
template <class A, class B, class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <class A, class B, class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

// Threads run one after another, so an atomic update is a plain one.
template <class T> inline T symgraph_atomic_add(T* p, T v) { T old = *p; *p = old + v; return old; }
inline float atomicAdd(float* p, float v) { return symgraph_atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return symgraph_atomic_add(p, v); }
inline int atomicAdd(int* p, int v) { return symgraph_atomic_add(p, v); }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { return symgraph_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return symgraph_atomic_add(p, v); }
template <class T> inline T __ldg(const T* p) { return *p; }

namespace symgraph_emu {

// 'f' floating, 'i' signed, 'u' unsigned, 'b' bool, 'p' pointer, '?' anything else.
template <class T> constexpr char kind() {
    if constexpr (std::is_pointer_v<T>) return 'p';
    else if constexpr (std::is_same_v<T, bool>) return 'b';
    else if constexpr (std::is_floating_point_v<T>) return 'f';
    else if constexpr (std::is_integral_v<T>) return std::is_signed_v<T> ? 'i' : 'u';
    else return '?';
}
template <class T> constexpr std::size_t size_of() {
    if constexpr (std::is_void_v<T>) return 0; else return sizeof(T);
}
template <class T> using pointee = std::remove_cv_t<std::remove_pointer_t<T>>;

struct Entry {  // what the Python launcher reads; the arrays end with a 0 so none is empty
    int nargs;
    const std::size_t* sizes;          // sizeof each parameter
    const char* kinds;                 // kind of each parameter
    const std::size_t* pointee_sizes;  // sizeof *p for pointers (0 for void*), else 0
    const char* pointee_kinds;         // kind of *p for pointers, else 0
    void (*launch)(void** args, const unsigned int* grid, const unsigned int* block);
};

template <auto K> struct Kernel;
template <class... A, void (*K)(A...)> struct Kernel<K> {
    static constexpr std::size_t sizes[] = {sizeof(A)..., 0};
    static constexpr char kinds[] = {kind<A>()..., 0};
    static constexpr std::size_t pointee_sizes[] = {(std::is_pointer_v<A> ? size_of<pointee<A>>() : 0)..., 0};
    static constexpr char pointee_kinds[] = {(std::is_pointer_v<A> ? kind<pointee<A>>() : '\0')..., 0};

    template <std::size_t... I>
    static void run(void** args, const unsigned int* g, const unsigned int* b, std::index_sequence<I...>) {
        gridDim = dim3(g[0], g[1], g[2]);
        blockDim = dim3(b[0], b[1], b[2]);
        for (unsigned int bz = 0; bz < g[2]; ++bz)
        for (unsigned int by = 0; by < g[1]; ++by)
        for (unsigned int bx = 0; bx < g[0]; ++bx) {
            blockIdx = uint3{bx, by, bz};
            for (unsigned int tz = 0; tz < b[2]; ++tz)
            for (unsigned int ty = 0; ty < b[1]; ++ty)
            for (unsigned int tx = 0; tx < b[0]; ++tx) {
                threadIdx = uint3{tx, ty, tz};
                K(*static_cast<A*>(args[I])...);
            }
        }
    }
    static void launch(void** args, const unsigned int* grid, const unsigned int* block) {
        run(args, grid, block, std::index_sequence_for<A...>{});
    }
    static constexpr Entry entry = {int(sizeof...(A)), sizes, kinds, pointee_sizes, pointee_kinds, launch};
};

}  // namespace symgraph_emu
"""

# Constructs whose meaning depends on threads running together; a sequential launch
# would silently compute something else, so they are refused.
_UNSUPPORTED = re.compile(
    r"\b(__syncthreads\w*|__syncwarp|__shared__|__shfl\w*|__ballot_sync|__any_sync|__all_sync"
    r"|__activemask|__match\w*_sync|__reduce\w*_sync|cooperative_groups)\b"
)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
# NVRTC options with a host meaning: macros are passed on, the others do not change results here.
_PASSED_OPTIONS = re.compile(r"-[DU]\S+")
_IGNORED_OPTIONS = re.compile(r"(--?std=c\+\+\d\d|--?use_fast_math|-lineinfo|--?device-as-default-execution-space)$")


class CompileError(Exception):
    """A kernel did not compile; like ``cupy.cuda.compiler.CompileException``.

    The message holds the compiler's diagnostics and the kernel source with line numbers.
    """

    def __init__(self, name: str, source: str, messages: str):
        numbered = "\n".join(f"{i:4d} | {line}" for i, line in enumerate(source.splitlines(), 1))
        super().__init__(f"kernel {name!r} does not compile:\n{messages.rstrip()}\n\nsource:\n{numbered}")
        self.name = name
        self.source = source
        self.messages = messages


class _Entry(ctypes.Structure):
    _fields_ = [
        ("nargs", ctypes.c_int),
        ("sizes", ctypes.POINTER(ctypes.c_size_t)),
        ("kinds", ctypes.POINTER(ctypes.c_char)),
        ("pointee_sizes", ctypes.POINTER(ctypes.c_size_t)),
        ("pointee_kinds", ctypes.POINTER(ctypes.c_char)),
        ("launch", ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint),
                                    ctypes.POINTER(ctypes.c_uint))),
    ]


class _Compiled:
    """A compiled kernel: its launcher and its parameters, as the shim exported them."""

    def __init__(self, library: ctypes.CDLL, symbol: str):
        entry = _Entry.in_dll(library, symbol)
        n = entry.nargs
        self.library = library  # keeps the library loaded while the launcher is in use
        self.launch = entry.launch
        self.sizes = entry.sizes[:n]
        self.kinds = entry.kinds[:n].decode()
        self.pointee_sizes = entry.pointee_sizes[:n]
        self.pointee_kinds = entry.pointee_kinds[:n].decode()


def cache_dir() -> Path:
    """Where compiled kernel libraries are kept: ``$SYMGRAPH_EMULATED_CUPY_CACHE``, else the
    user cache (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/symgraph/emulated_cupy``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symgraph" / "emulated_cupy"


@functools.cache
def _compiler_version() -> str:
    try:
        done = subprocess.run([CXX, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"emulated CuPy kernels need the host C++ compiler {CXX!r}: {error}") from None
    return done.stdout


# Kernels created and not compiled yet (weakly: a kernel dropped unlaunched is not compiled),
# compiled functions by (name, source, options), and every kernel source seen, in order.
_lock = threading.RLock()
_pending: list[weakref.ref] = []
_compiled: dict[tuple, _Compiled] = {}
_sources: dict[tuple, None] = {}


def kernel_sources(compiled: bool = False) -> list[tuple[str, str, tuple]]:
    """Every (name, source, options) of a ``RawKernel`` created in this process, without repeats;
    with ``compiled``, only those the host compiler has compiled (launched, or compiled with them)."""
    with _lock:
        return [key for key in _sources if not compiled or key in _compiled]


class RawKernel:
    """``cupy.RawKernel`` on the host: ``kernel(grid, block, args)`` runs the CUDA C++
    kernel ``name`` of ``code`` for every block and thread, one after another.

    ``args`` are stand-in arrays (passed as their data pointers) and NumPy scalars; host
    arrays and Python scalars raise TypeError. Each argument must match its parameter's
    size and kind (and an array's dtype the pointee's). ``warnings`` lists the compiler's
    warnings for this kernel once it is compiled.
    """

    def __init__(self, code: str, name: str, options: tuple = (), backend: str = "nvrtc", *,
                 translate_cucomplex: bool = False, enable_cooperative_groups: bool = False,
                 jitify: bool = False):
        if not isinstance(code, str) or not isinstance(name, str) or not isinstance(options, tuple):
            raise TypeError("RawKernel(code: str, name: str, options: tuple)")
        if enable_cooperative_groups or jitify or translate_cucomplex:
            raise NotImplementedError("the emulated CuPy RawKernel supports neither cooperative groups, "
                                      "jitify nor cuComplex translation")
        self.code, self.name, self.options, self.backend = code, name, options, backend
        self.warnings: list[str] = []
        self._key = (name, code, options)
        self._function: _Compiled | None = None
        self._error: CompileError | None = None
        with _lock:
            _sources[self._key] = None
            if self._key in _compiled:
                self._function = _compiled[self._key]
            else:
                _pending.append(weakref.ref(self))

    def __repr__(self):
        return f"<emulated RawKernel {self.name!r}>"

    def compile(self, log_stream=None):
        """Compile now (with every other kernel waiting to be compiled); CompileError if it does not."""
        if self._function is None and self._error is None:
            _compile_pending(self)
        if self._error is not None:
            raise self._error
        if log_stream is not None and self.warnings:
            log_stream.write("\n".join(self.warnings) + "\n")

    def __call__(self, grid, block, args, *, shared_mem=0):
        self.compile()
        function = self._function
        grid, block = _dims("grid", grid), _dims("block", block)
        if shared_mem:
            raise ValueError("the emulated CuPy cannot emulate shared memory (shared_mem must be 0)")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"{self.name}: args must be a tuple, got {type(args).__name__}")
        if len(args) != len(function.sizes):
            raise TypeError(f"{self.name} takes {len(function.sizes)} arguments, got {len(args)}")
        keep = [self._argument(i, arg, function) for i, arg in enumerate(args)]
        pointers = (ctypes.c_void_p * max(len(keep), 1))(*(ctypes.addressof(k) for k in keep))
        function.launch(pointers, (ctypes.c_uint * 3)(*grid), (ctypes.c_uint * 3)(*block))

    def _argument(self, i: int, arg, function: _Compiled):
        """The C storage of argument ``i``, checked against its parameter."""
        from ._cupy import ndarray

        size, kind = function.sizes[i], function.kinds[i]
        where = f"{self.name}: argument {i}"
        if isinstance(arg, ndarray):
            if kind != "p":
                raise TypeError(f"{where} is an array but the parameter is not a pointer")
            dtype = arg.dtype
            pointee_kind, pointee_size = function.pointee_kinds[i], function.pointee_sizes[i]
            if pointee_kind in "fiub" and (pointee_size, pointee_kind) != (dtype.itemsize, dtype.kind):
                raise TypeError(f"{where} is a {dtype} array but the parameter points to a "
                                f"{pointee_size}-byte {_KIND_NAMES[pointee_kind]}")
            return ctypes.c_void_p(arg._data.ctypes.data)
        if isinstance(arg, np.generic):
            if kind == "p":
                raise TypeError(f"{where} is a scalar but the parameter is a pointer")
            if kind != "?" and (size, kind) != (arg.itemsize, arg.dtype.kind):
                raise TypeError(f"{where} is a {arg.dtype} scalar but the parameter is a "
                                f"{size}-byte {_KIND_NAMES[kind]}")
            return ctypes.create_string_buffer(arg.tobytes(), size)
        raise TypeError(f"{where}: unsupported type {type(arg)} (pass stand-in arrays and NumPy scalars "
                        "such as numpy.float32(x); a host numpy.ndarray must be copied with cupy.asarray)")


_KIND_NAMES = {"f": "floating point", "i": "signed integer", "u": "unsigned integer", "b": "bool",
               "p": "pointer", "?": "value"}


def _dims(what: str, dims) -> tuple[int, int, int]:
    if isinstance(dims, int):
        dims = (dims,)
    if not (isinstance(dims, tuple) and 1 <= len(dims) <= 3
            and all(isinstance(d, (int, np.integer)) and d >= 1 for d in dims)):
        raise ValueError(f"{what} must be a tuple of 1 to 3 positive ints, got {dims!r}")
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))


def _compile_pending(kernel: RawKernel) -> None:
    """Compile ``kernel`` and every other kernel waiting, in as few compiler runs as names allow."""
    with _lock:
        waiting = [k for k in (ref() for ref in _pending) if k is not None]
        waiting = [k for k in waiting if k._function is None and k._error is None]
        if kernel not in waiting:
            waiting.append(kernel)
        _pending.clear()
        unique = {}
        for k in waiting:
            if k._key in _compiled:
                k._function = _compiled[k._key]
            elif not _refuse(k):
                unique.setdefault(k._key, []).append(k)
        batches: list[list[tuple]] = []
        for key in unique:  # options split batches, and so do repeated names
            batch = next((b for b in batches if b[0][2] == key[2] and key[0] not in {k[0] for k in b}), None)
            if batch is None:
                batches.append([key])
            else:
                batch.append(key)
        for batch in batches:
            _build(batch, unique)


def _refuse(kernel: RawKernel) -> bool:
    """Give ``kernel`` its CompileError if it uses what the stand-in cannot run or compile."""
    found = _UNSUPPORTED.search(_COMMENT.sub(" ", kernel.code))
    if found:
        message = (f"{found.group(1)}: the stand-in runs threads one after another and cannot emulate "
                   f"{found.group(1)} (synchronisation, shared memory or warp-level operations)")
    else:
        unknown = [o for o in kernel.options if not (_PASSED_OPTIONS.fullmatch(o) or _IGNORED_OPTIONS.match(o))]
        if not unknown:
            return False
        message = f"the stand-in does not emulate the NVRTC options {unknown}"
    kernel._error = CompileError(kernel.name, kernel.code, message)
    return True


def _build(keys: list[tuple], kernels: dict[tuple, list[RawKernel]]) -> None:
    """Compile the kernels ``keys`` as one library; when that fails, the ones its errors name
    each alone (so each error is its own) and the others again together."""
    ok, log, library = _compile_library(keys)
    if ok:
        for i, key in enumerate(keys):
            function = _compiled[key] = _Compiled(library, f"symgraph_kernel_{i}")
            warnings = _diagnostics(log, i, key[0])
            for k in kernels[key]:
                k._function, k.warnings = function, warnings
        return
    if len(keys) == 1:
        error = CompileError(keys[0][0], keys[0][1], _diagnostics(log, 0, keys[0][0], joined=True) or log)
        for k in kernels[keys[0]]:
            k._error = error
        return
    failed = [key for i, key in enumerate(keys) if " error: " in _diagnostics(log, i, key[0], joined=True)]
    for key in failed or keys:
        _build([key], kernels)
    if failed:
        rest = [key for key in keys if key not in failed]
        if rest:
            _build(rest, kernels)


def _diagnostics(log: str, i: int, name: str, joined: bool = False):
    """The compiler's lines about kernel ``i``: its source's (file tag renamed ``name.cu``)
    and its launcher's (where a missing or overloaded kernel ``name`` is reported)."""
    renames = {f"symgraph_kernel_{i}.cu:": f"{name}.cu:", f"symgraph_shim_{i}.cpp:": f"{name} launcher:"}
    lines = [renamed + line[len(tag):] for line in log.splitlines()
             for tag, renamed in renames.items() if line.startswith(tag)]
    return "\n".join(lines) if joined else lines


def _translation_unit(keys: list[tuple]) -> str:
    parts = [CUDA_HOST_HEADER]
    for i, (name, code, _) in enumerate(keys):
        parts.append(f'namespace symgraph_source_{i} {{\n#line 1 "symgraph_kernel_{i}.cu"\n{code}\n}}\n'
                     f'#line 1 "symgraph_shim_{i}.cpp"\n'
                     f'extern "C" const symgraph_emu::Entry symgraph_kernel_{i} = '
                     f"symgraph_emu::Kernel<&symgraph_source_{i}::{name}>::entry;\n")
    return "\n".join(parts)


def _compile_library(keys: list[tuple]) -> tuple[bool, str, ctypes.CDLL | None]:
    """(compiled?, compiler output, loaded library), from the disk cache when it has it."""
    unit = _translation_unit(keys)
    options = list(keys[0][2])
    flags = [*CXX_FLAGS, *(o for o in options if _PASSED_OPTIONS.fullmatch(o))]
    digest = hashlib.sha256("\0".join([_compiler_version(), *flags, unit]).encode()).hexdigest()[:32]
    directory = cache_dir()
    library, log_path = directory / f"{digest}.so", directory / f"{digest}.log"
    if library.exists() and log_path.exists():
        return True, log_path.read_text(), ctypes.CDLL(str(library))
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as work:
        source, output = Path(work) / "kernels.cpp", Path(work) / "kernels.so"
        source.write_text(unit)
        done = subprocess.run([CXX, *flags, "-o", str(output), str(source)], capture_output=True, text=True)
        if done.returncode != 0:
            return False, done.stderr, None
        log_path.write_text(done.stderr)
        os.replace(output, library)  # the log first: a library without its log is not a hit
    return True, done.stderr, ctypes.CDLL(str(library))
