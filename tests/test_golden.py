"""Golden files: the generated modules of the golden cases (tests/golden/cases.py) are checked in
as tests/golden/<case>.py. A change to the generated text fails here with a unified diff; the
checked-in modules are also run, so they are known to work, and to agree with the compiler."""

import contextlib
import difflib
import importlib.util
import inspect

import numpy as np
import pytest
from golden import cases

from codegen.testing import emulated_cupy

CASES = list(cases.CASES)


@pytest.mark.parametrize("name", CASES)
def test_generated_source_matches_the_golden_file(name):
    path = cases.golden_path(name)
    checked_in = path.read_text(encoding="utf-8") if path.exists() else ""
    generated = cases.build(name).source
    if generated != checked_in:
        where = path.relative_to(cases.ROOT).as_posix()
        diff = difflib.unified_diff(checked_in.splitlines(True), generated.splitlines(True),
                                    f"{where} (checked in)", f"{where} (generated now)")
        pytest.fail(f"the generated source of golden case {name!r} differs from {where}"
                    f"{'' if path.exists() else ' (missing)'}:\n{''.join(diff)}\n"
                    f"If the change is intended, regenerate from the repository root with\n"
                    f"    {cases.REGENERATE}\nand review `git diff tests/golden` before committing.", pytrace=False)


def load_golden(name):
    """The public function of the checked-in module tests/golden/<name>.py."""
    spec = importlib.util.spec_from_file_location(f"golden_module_{name}", cases.golden_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (function_name,) = module.__all__
    return getattr(module, function_name)


def sample(leaf, rng, batch=3):
    """Random data for a placeholder; named dimensions get ``batch`` rows."""
    shape = tuple(batch if isinstance(d, str) else d for d in leaf.shape)
    if leaf.dtype.kind in "iu":  # class labels: 0 and 1 are valid in every case
        return rng.integers(0, 2, size=shape).astype(leaf.dtype)
    return rng.normal(size=shape).astype(leaf.dtype)


def host(array):
    """A copy on the host (of a CuPy function's array, too)."""
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else np.array(array, copy=True)


def as_list(result):
    return list(result) if isinstance(result, (list, tuple)) else [result]


@pytest.mark.parametrize("name", CASES)
def test_golden_module_runs_and_agrees_with_the_compiled_function(name):
    device = "cupy" in name  # run on the CPU stand-in; its arrays are read with .get()
    with emulated_cupy() if device else contextlib.nullcontext() as cp:
        f = cases.build(name)
        golden = load_golden(name)
        keywords = [p.name for p in inspect.signature(golden).parameters.values() if p.kind is p.KEYWORD_ONLY]
        assert keywords == [p.name for p in f.params]
        rng = np.random.default_rng(0)
        inputs = [sample(leaf, rng) for leaf in f.inputs]
        state = {p.name: np.array(p.value, copy=True) for p in f.params}  # the golden module updates these in place

        expected = [host(r) for r in as_list(f(*inputs))]
        if device:
            state = {k: cp.asarray(v) for k, v in state.items()}
        got = [host(r) for r in as_list(golden(*inputs, **state))]
        state = {k: host(v) for k, v in state.items()}

    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, err_msg=f"{name}: output {i}")
    for p in f.params:
        np.testing.assert_allclose(state[p.name], host(p.value), rtol=1e-12, atol=1e-12, err_msg=f"{name}: {p.name} after")
