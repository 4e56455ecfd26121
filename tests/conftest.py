import importlib.util

import numpy as np
import pytest

import symgraph as sg


@pytest.fixture(scope="session", autouse=True)
def every_cuda_kernel_compiles_with_nvcc():
    """After the last test: every CUDA kernel the tests compiled on the CuPy stand-in (codegen.testing
    records each one; the stand-in's own tests of compile errors excepted) compiles with nvcc; an error at this teardown names the kernel and nvcc's
    message. Without nvcc the check is skipped, with the reason printed."""
    yield
    from codegen import testing
    from codegen.testing import nvcc

    kernels = [(name, source) for name, source, _ in testing.kernel_sources(compiled=True)]
    found, reason = nvcc.nvcc_available()
    if kernels and not found:
        print(f"\nnvcc check skipped: {reason}")
    elif kernels:
        warnings = nvcc.check_with_nvcc(kernels)
        print(f"\nnvcc compiled all {len(kernels)} kernels the tests ran ({len(warnings)} warnings)")


@pytest.fixture(autouse=True)
def fresh_graph():
    """Each test builds its nodes in a new intern table."""
    with sg.fresh_graph() as graph:
        yield graph


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def load_saved(tmp_path):
    """``load_saved(f)``: ``f.save`` to a file, imported in this process; its public function."""

    def load(f, name="saved_module"):
        path = tmp_path / f"{name}.py"
        f.save(path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, module.__all__[0])

    return load
