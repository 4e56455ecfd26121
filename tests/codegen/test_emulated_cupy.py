"""codegen.testing: the CPU stand-in for CuPy, its RawKernel, and the nvcc checker."""

import sys

import numpy as np
import pytest

from codegen.testing import CompileError, emulated_cupy, emulated_module, is_emulated, kernel_sources
from codegen.testing.nvcc import NvccError, check_with_nvcc, nvcc_available

SCALE_TANH = r"""
extern "C" __global__ void scale_tanh_{T}(const {T}* __restrict__ x, {T}* __restrict__ y, {T} a, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        y[i] = {TANH}(x[i]) * a;
    }
}
"""
SCALE_TANH_F32 = SCALE_TANH.replace("{T}", "float").replace("{TANH}", "tanhf")
SCALE_TANH_F64 = SCALE_TANH.replace("{T}", "double").replace("{TANH}", "tanh")

# out[r, c] = max(x[r, c] + b[c], 0): rows on blockIdx.y, columns on the x dimensions.
BIAS_RELU = r"""
__device__ __forceinline__ float relu(float v) { return fmaxf(v, 0.0f); }

extern "C" __global__ void bias_relu(const float* __restrict__ x, const float* __restrict__ b,
                                     float* __restrict__ out, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int r = blockIdx.y;
    if (r < rows && c < cols) {
        out[(long long)r * cols + c] = relu(x[(long long)r * cols + c] + __ldg(&b[c]));
    }
}
"""

# out[index[i]] += value[i]: a scatter-add that needs atomics on a GPU.
SCATTER_ADD = r"""
extern "C" __global__ void scatter_add(const long long* __restrict__ index, const double* __restrict__ value,
                                       double* __restrict__ out, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) {
        atomicAdd(&out[index[i]], value[i]);
    }
}
"""

HAND_WRITTEN = [("scale_tanh_float", SCALE_TANH_F32), ("scale_tanh_double", SCALE_TANH_F64),
                ("bias_relu", BIAS_RELU), ("scatter_add", SCATTER_ADD)]


@pytest.fixture
def cp():
    with emulated_cupy() as module:
        yield module


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh kernel cache directory (so compiler runs can be counted as libraries)."""
    monkeypatch.setenv("SYMGRAPH_EMULATED_CUPY_CACHE", str(tmp_path))
    return tmp_path


# --- the module and sys.modules ---------------------------------------------------------


def test_emulated_cupy_installs_and_restores_sys_modules():
    before = sys.modules.get("cupy")
    with emulated_cupy() as cp:
        import cupy

        assert cupy is cp is emulated_module() and is_emulated(cupy)
        with emulated_cupy():
            assert sys.modules["cupy"] is cp
        assert sys.modules["cupy"] is cp
    assert sys.modules.get("cupy") is before
    assert not is_emulated(np)


def test_emulated_cupy_restores_after_an_exception(monkeypatch):
    sentinel = object()
    monkeypatch.setitem(sys.modules, "cupy", sentinel)
    with pytest.raises(ZeroDivisionError), emulated_cupy():
        1 / 0
    assert sys.modules["cupy"] is sentinel
    monkeypatch.delitem(sys.modules, "cupy")
    with pytest.raises(KeyError), emulated_cupy():
        raise KeyError
    assert "cupy" not in sys.modules


def test_unknown_names_say_they_are_not_emulated(cp):
    with pytest.raises(AttributeError, match="'fft'.*does not emulate"):
        cp.fft
    with pytest.raises(AttributeError, match="'data'.*does not emulate"):
        cp.zeros(3).data


def test_cuda_namespace(cp):
    assert cp.cuda.runtime.getDeviceCount() == 1
    cp.cuda.Device(0).synchronize()
    cp.cuda.get_current_stream().synchronize()
    cp.cuda.Stream.null.synchronize()
    assert cp.cuda.compiler.CompileException is CompileError


# --- host and device ---------------------------------------------------------------------


def test_device_arrays_are_not_numpy_arrays(cp):
    x = cp.asarray(np.arange(3.0))
    assert not isinstance(x, np.ndarray) and isinstance(x, cp.ndarray)
    with pytest.raises(TypeError, match=r"Implicit conversion to a NumPy array is not allowed\. Please use `\.get\(\)`"):
        np.asarray(x)
    host = x.get()
    assert type(host) is np.ndarray and type(cp.asnumpy(x)) is np.ndarray
    host[0] = 5
    assert x[0].item() == 0  # get() copies
    assert cp.get_array_module(x) is cp and cp.get_array_module(host) is np


def test_mixing_host_and_device_raises(cp):
    x, host = cp.ones(3), np.ones(3)
    for mixed in (lambda: x + host, lambda: host + x, lambda: cp.add(x, host), lambda: cp.maximum(host, x),
                  lambda: cp.dot(x, host), lambda: cp.concatenate([x, host]), lambda: x.__setitem__(0, host)):
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            mixed()
    x += np.float32(1)  # NumPy and Python scalars are fine
    assert (x * 2 - 1.0).get().tolist() == [3.0, 3.0, 3.0]


def test_numpy_functions_dispatch_to_the_stand_in(cp):
    x = cp.arange(6, dtype=cp.float32).reshape(2, 3)
    assert isinstance(np.sum(x, axis=0), cp.ndarray) and isinstance(np.exp(x), cp.ndarray)
    np.testing.assert_array_equal(np.maximum(x, 2).get(), np.maximum(np.arange(6).reshape(2, 3), 2))


# --- arrays and functions ----------------------------------------------------------------


def test_views_share_memory(cp):
    x = cp.zeros((3, 4), dtype=cp.float32)
    row, column, element = x[1], x[:, 2], x[2, 3]
    row[...] = 1
    column += 2
    element[...] = 7  # single elements index as 0-d views, as in CuPy
    x.reshape(12)[0] = 5
    x.T[3, 0] = 9
    expected = np.zeros((3, 4), np.float32)
    expected[1] = 1
    expected[:, 2] += 2
    expected[2, 3], expected[0, 0], expected[0, 3] = 7, 5, 9
    np.testing.assert_array_equal(x.get(), expected)
    assert x.flags.c_contiguous and not x.T.flags.c_contiguous and x.strides == (16, 4)


def test_out_writes_into_the_given_array(cp):
    a, b = cp.asarray(np.arange(4.0)), cp.full(4, 2.0)
    out = cp.empty(4)
    assert cp.multiply(a, b, out=out) is out
    assert cp.tanh(a, out=out) is out
    np.testing.assert_allclose(out.get(), np.tanh(np.arange(4.0)))
    total = cp.empty(())
    assert cp.sum(a, out=total) is total and total.item() == 6
    m = cp.asarray(np.arange(6.0).reshape(2, 3))
    product, sums = cp.empty((2, 2)), cp.empty((1, 3))
    assert cp.dot(m, m.T, out=product) is product and cp.sum(m, axis=0, keepdims=True, out=sums) is sums
    np.testing.assert_array_equal(product.get(), np.arange(6.0).reshape(2, 3) @ np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(sums.get(), [[3, 5, 7]])
    with pytest.raises(TypeError, match="out must be a cupy.ndarray"):
        cp.add(a, b, out=np.empty(4))


def test_functions_match_numpy(cp):
    rng = np.random.default_rng(0)
    h = rng.standard_normal((3, 4)).astype(np.float32)
    d = cp.asarray(h)
    np.testing.assert_allclose(cp.logaddexp(d, 1.0).get(), np.logaddexp(h, 1.0), rtol=1e-6)
    np.testing.assert_array_equal(cp.where(d > 0, d, 0).get(), np.where(h > 0, h, 0))
    assert cp.isfinite(d / 0).sum().item() == 0  # no floating-point warnings, as on a GPU
    np.testing.assert_array_equal(cp.clip(d, -0.5, 0.5).get(), np.clip(h, -0.5, 0.5))
    np.testing.assert_array_equal(cp.argmax(d, axis=1).get(), h.argmax(1))
    np.testing.assert_allclose(d.mean(axis=0).get(), h.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(cp.moveaxis(cp.expand_dims(d, 0), 0, 2).shape, (3, 4, 1))
    np.testing.assert_array_equal(cp.take(d, cp.asarray([2, 0]), axis=0).get(), h[[2, 0]])
    np.testing.assert_array_equal(d[cp.asarray([1, 1])].get(), h[[1, 1]])
    assert cp.broadcast_shapes((3, 1), (4,)) == (3, 4)
    assert cp.add.reduce(d).shape == (4,) and cp.multiply.reduce(d, axis=1).shape == (3,)
    with pytest.raises(NotImplementedError):
        cp.maximum.reduce(d)
    assert [float(v) for v in cp.asarray([1.5, 2.5])] == [1.5, 2.5]
    assert repr(cp.asarray([1, 2])) == "array([1, 2])"
    assert cp.asarray(d) is d and cp.asarray(d, dtype=cp.float64).dtype == np.float64


# --- RawKernel ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, source", [(np.float32, SCALE_TANH_F32), (np.float64, SCALE_TANH_F64)])
def test_grid_stride_kernel(cp, dtype, source):
    name = f"scale_tanh_{'float' if dtype == np.float32 else 'double'}"
    kernel = cp.RawKernel(source, name)
    host = np.linspace(-3, 3, 1000).astype(dtype)
    x = cp.asarray(host)
    y = cp.empty_like(x)
    kernel((2,), (128,), (x, y, dtype(1.5), np.int64(x.size)))  # fewer threads than elements: the loop strides
    np.testing.assert_allclose(y.get(), np.tanh(host) * 1.5, rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert kernel.warnings == [] and (name, source, ()) in kernel_sources()


def test_broadcast_index_kernel_and_views(cp):
    rng = np.random.default_rng(1)
    x, b = rng.standard_normal((5, 37)).astype(np.float32), rng.standard_normal(37).astype(np.float32)
    wide = cp.asarray(np.stack([b, b + 1]))
    out = cp.zeros((5, 37), dtype=cp.float32)
    kernel = cp.RawKernel(BIAS_RELU, "bias_relu")
    kernel((2, 5), (32,), (cp.asarray(x), wide[1], out, np.int32(5), np.int32(37)))  # a view passes its own data
    np.testing.assert_allclose(out.get(), np.maximum(x + (b + 1), 0), rtol=1e-6)


def test_atomic_add_scatter(cp):
    rng = np.random.default_rng(2)
    index, value = rng.integers(0, 7, 500), rng.standard_normal(500)
    out = cp.zeros(7)
    cp.RawKernel(SCATTER_ADD, "scatter_add")((4,), (128,), (cp.asarray(index), cp.asarray(value), out, np.int64(500)))
    np.testing.assert_allclose(out.get(), np.bincount(index, value, minlength=7))


def test_kernel_arguments_are_checked(cp):
    kernel = cp.RawKernel(SCALE_TANH_F32, "scale_tanh_float")
    x = cp.zeros(4, dtype=cp.float32)
    n = np.int64(4)
    with pytest.raises(TypeError, match=r"argument 0: unsupported type <class 'numpy.ndarray'>"):
        kernel((1,), (4,), (np.zeros(4, np.float32), x, np.float32(1), n))
    with pytest.raises(TypeError, match="takes 4 arguments, got 3"):
        kernel((1,), (4,), (x, x, np.float32(1)))
    with pytest.raises(TypeError, match="argument 2: unsupported type <class 'float'>"):
        kernel((1,), (4,), (x, x, 1.0, n))
    with pytest.raises(TypeError, match="argument 2 is a float64 scalar but the parameter is a 4-byte floating"):
        kernel((1,), (4,), (x, x, np.float64(1), n))
    with pytest.raises(TypeError, match="argument 3 is a int32 scalar but the parameter is a 8-byte signed"):
        kernel((1,), (4,), (x, x, np.float32(1), np.int32(4)))
    with pytest.raises(TypeError, match="argument 0 is a float64 array but the parameter points to a 4-byte"):
        kernel((1,), (4,), (cp.zeros(4), x, np.float32(1), n))
    with pytest.raises(ValueError, match="grid must be a tuple"):
        kernel((1, 1, 1, 1), (4,), (x, x, np.float32(1), n))


def test_thread_cooperation_is_refused(cp):
    source = r"""
extern "C" __global__ void block_sum(const float* x, float* out) {
    __shared__ float partial[128];
    partial[threadIdx.x] = x[threadIdx.x];
    __syncthreads();
    if (threadIdx.x == 0) { out[0] = partial[0] + partial[1]; }
}
"""
    kernel = cp.RawKernel(source, "block_sum")
    x = cp.ones(128, dtype=cp.float32)
    with pytest.raises(CompileError, match="runs threads one after another and cannot emulate __shared__"):
        kernel((1,), (128,), (x, x))
    source = source.replace("__shared__ float partial[128];", "float partial[128];")
    with pytest.raises(CompileError, match="cannot emulate __syncthreads"):
        cp.RawKernel(source, "block_sum").compile()


def test_compile_errors_name_the_line_and_spare_the_other_kernels(cp, cache):
    bad = 'extern "C" __global__ void broken(float* y) {\n    y[0] = undefined_function(1.0f);\n}\n'
    good = cp.RawKernel(SCALE_TANH_F32, "scale_tanh_float")
    broken = cp.RawKernel(bad, "broken")
    with pytest.raises(CompileError) as error:
        broken((1,), (1,), (cp.zeros(1, dtype=cp.float32),))
    message = str(error.value)
    assert "broken.cu:2:" in message and "undefined_function" in message
    assert "   2 |     y[0] = undefined_function(1.0f);" in message
    with pytest.raises(CompileError):  # the error is kept, not recompiled
        broken.compile()
    x = cp.ones(3, dtype=cp.float32)
    good((1,), (3,), (x, x, np.float32(2), np.int64(3)))
    np.testing.assert_allclose(x.get(), np.tanh(1.0) * 2, rtol=1e-6)


def test_warnings_are_recorded(cp, cache):
    source = 'extern "C" __global__ void unused_local(float* y) {\n    int unused;\n    y[0] = 1.0f;\n}\n'
    kernel = cp.RawKernel(source, "unused_local")
    kernel.compile()
    assert any("unused_local.cu:2" in w and "unused" in w for w in kernel.warnings)


def test_kernels_compile_in_batches_and_are_cached(cp, cache):
    sources = [SCALE_TANH_F32.replace("a;", f"a + {i}.0f;") for i in range(3)]
    kernels = [cp.RawKernel(s, "scale_tanh_float") for s in sources]  # one name: three batches
    others = [cp.RawKernel(s.replace("scale_tanh_float", f"other_{i}"), f"other_{i}") for i, s in enumerate(sources)]
    x = cp.zeros(2, dtype=cp.float32)
    kernels[0]((1,), (2,), (x, x, np.float32(1), np.int64(2)))
    assert len(list(cache.glob("*.so"))) == 3  # every waiting kernel, in as few libraries as names allow
    for i, kernel in enumerate(kernels + others):
        y = cp.zeros(2, dtype=cp.float32)
        kernel((1,), (2,), (x, y, np.float32(1), np.int64(2)))
        assert y.get().tolist() == [i % 3] * 2
    assert len(list(cache.glob("*.so"))) == 3


# --- nvcc --------------------------------------------------------------------------------


def test_hand_written_kernels_compile_with_nvcc():
    available, reason = nvcc_available()
    if not available:
        pytest.skip(reason)
    assert check_with_nvcc(HAND_WRITTEN) == []


def test_nvcc_reports_errors_and_warnings():
    available, reason = nvcc_available()
    if not available:
        pytest.skip(reason)
    unused = 'extern "C" __global__ void unused_local(float* y) {\n    int unused;\n    y[0] = 1.0f;\n}\n'
    assert any("unused_local.cu(2)" in w for w in check_with_nvcc([("unused_local", unused)]))
    with pytest.raises(NvccError, match="undefined_function"):
        check_with_nvcc([("broken", 'extern "C" __global__ void broken(float* y) { y[0] = undefined_function(); }')])
