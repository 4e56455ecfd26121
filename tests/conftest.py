import importlib.util
import os

import numpy as np
import pytest

import symgraph as sg
from symgraph.graph import topo_sort

# Under mutmut 3 (tests/MUTANTS.md) every call of a mutated function passes through mutmut's trampoline,
# which is not the user's line, and the nvcc check below would run once for every mutant.
MUTATING = "MUTANT_UNDER_TEST" in os.environ
if MUTATING:
    import mutmut
    import symgraph.errors

    symgraph.errors._PACKAGE_DIRS += (os.path.dirname(os.path.abspath(mutmut.__file__)) + os.sep,)

    import gc
    import sys
    import weakref

    import sympy.core.cache

    from symgraph.ops.scalar import Elementwise

    _ELEMENTWISE_OPS = weakref.WeakSet(o for o in gc.get_objects() if isinstance(o, Elementwise))
    _elementwise_init = Elementwise.__init__

    def _remembered_init(self, *args, **kwargs):
        _elementwise_init(self, *args, **kwargs)
        _ELEMENTWISE_OPS.add(self)

    Elementwise.__init__ = _remembered_init

    @pytest.fixture(autouse=True)
    def nothing_cached_from_an_earlier_test():
        """Under mutmut every test computes afresh: mutmut forks each mutant's run from a process that
        has run the tests once, so a result cached then (SymPy's cache, the lru_caches, an elementwise
        op's derivatives and NumPy function) would bypass the mutated code."""
        sympy.core.cache.clear_cache()
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] in ("symgraph", "codegen"):
                for value in list(vars(module).values()):
                    if callable(getattr(value, "cache_clear", None)):
                        value.cache_clear()
        for op in list(_ELEMENTWISE_OPS):
            op._partials, op._fn = {}, None
        yield


@pytest.fixture(scope="session", autouse=True)
def every_cuda_kernel_compiles_with_nvcc():
    """After the last test: every CUDA kernel the tests compiled on the CuPy stand-in (codegen.testing
    records each one; the stand-in's own tests of compile errors excepted) compiles with nvcc; an error at this teardown names the kernel and nvcc's
    message. Without nvcc the check is skipped, with the reason printed."""
    yield
    if MUTATING:
        return
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


def _interpret(outputs, feed: dict):
    """The graph run through each node's ``op.compute`` (no code generation involved): the values of
    ``outputs`` for ``feed`` ({placeholder: array}); parameters read their own values."""
    values = {id(k): v for k, v in feed.items()}
    for node in topo_sort(outputs):
        if id(node) not in values:
            values[id(node)] = node.value if node.is_leaf else node.op.compute(*(values[id(i)] for i in node.inputs))
    return [values[id(o)] for o in outputs]


@pytest.fixture
def interpret():
    """``interpret(outputs, feed)``: the reference semantics, each op's ``compute`` (see ``_interpret``)."""
    return _interpret


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
